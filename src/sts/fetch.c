/*
 * sts/fetch: one HTTPS GET of an MTA-STS policy with libcurl, on the
 * calling (worker) thread.  See fetch.h for the rules it keeps.
 *
 * Invariants: the body is never longer than STS_POLICY_MAX (the write
 * callback refuses the octet past it, which aborts the transfer); libcurl
 * never resolves a name itself (every name it could ask for is in
 * CURLOPT_RESOLVE, and any other would fail: the URL's host is the only
 * one, redirects are off); no signal is used (CURLOPT_NOSIGNAL: threads).
 */
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "util/util.h"
#include "sts/fetch.h"
#include "sts/sts.h"
#include "tls/curltls.h"

#define STS_FETCH_URL_MAX 320

struct fetch_sink {
	struct buf *body;
	bool too_large;
};

static size_t
fetch_write(char *p, size_t size, size_t n, void *arg)
{
	struct fetch_sink *s = arg;
	size_t len = size * n;

	if (s->body->len + len > STS_POLICY_MAX) {
		s->too_large = true;
		return 0; /* CURLE_WRITE_ERROR */
	}
	if (buf_append(s->body, p, len) != 0)
		return 0;
	return len;
}

/*
 * ternd's disk workers already run when the queue manager starts: the
 * init must be one that is safe with other threads about, which libcurl
 * says with CURL_VERSION_THREADSAFE (7.84 and later, Debian 12's 7.88).
 */
int
sts_fetch_global_init(char *err, size_t errlen)
{
	const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
	CURLcode rc;

	if (v == NULL || !(v->features & CURL_VERSION_THREADSAFE)) {
		str_fmt_cut(err, errlen,
		    "libcurl %s does not say its init is thread-safe "
		    "(7.84 or later needed)",
		    v != NULL ? v->version : "?");
		return -1;
	}
	rc = curl_global_init(CURL_GLOBAL_DEFAULT);
	if (rc != CURLE_OK) {
		str_fmt_cut(err, errlen, "curl_global_init: %s",
		    curl_easy_strerror(rc));
		return -1;
	}
	return 0;
}

const char *
sts_fetch_result_type(enum sts_fetch_status st)
{
	switch (st) {
	case STS_FETCH_ERROR:
		return "sts-policy-fetch-error";
	case STS_FETCH_WEBPKI:
		return "sts-webpki-invalid";
	case STS_FETCH_INVALID:
		return "sts-policy-invalid";
	case STS_FETCH_OK:
	default:
		return "";
	}
}

/* "mta-sts.DOMAIN:443:a1,[v6],..." for CURLOPT_RESOLVE. */
static struct curl_slist *
fetch_resolve_list(const struct sts_fetch_req *req, char *err, size_t errlen)
{
	struct curl_slist *l;
	struct buf b;
	size_t i;
	int rc;

	buf_init(&b, 4096);
	rc = buf_printf(&b, "mta-sts.%s:443:", req->domain);
	for (i = 0; rc == 0 && i < req->naddrs && i < STS_FETCH_ADDRS_MAX; i++)
		rc = buf_printf(&b,
		    strchr(req->addrs[i], ':') != NULL ? "%s[%s]" : "%s%s",
		    i > 0 ? "," : "", req->addrs[i]);
	if (rc == 0)
		rc = buf_append(&b, "", 1);
	if (rc != 0 || req->naddrs == 0) {
		buf_free(&b);
		str_fmt_cut(
		    err, errlen, "no address for mta-sts.%s", req->domain);
		return NULL;
	}
	l = curl_slist_append(NULL, b.data);
	buf_free(&b);
	if (l == NULL)
		str_fmt_cut(err, errlen, "out of memory");
	return l;
}

/* Everything the RFC asks of the transfer (3.3). */
static int
fetch_setup(CURL *h, const struct sts_fetch_req *req, struct curl_slist *res,
    struct fetch_sink *sink, char *url, size_t urllen)
{
	if (str_fmt(url, urllen, "https://mta-sts.%s/.well-known/mta-sts.txt",
		req->domain) != 0)
		return -1;
	if (curl_easy_setopt(h, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_RESOLVE, res) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_PROXY, "") != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)req->timeout_s) !=
		CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)req->timeout_s) !=
		CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT,
		(long)STS_FETCH_LOW_SPEED) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME,
		(long)STS_FETCH_LOW_TIME) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE,
		(curl_off_t)STS_POLICY_MAX) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, fetch_write) !=
		CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_WRITEDATA, sink) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_USERAGENT, "tern") != CURLE_OK)
		return -1;
	if (curltls_setup(h, req->ca_file, req->ca_path, req->cancel) != 0)
		return -1;
	return 0;
}

static bool
fetch_webpki(CURLcode rc)
{
	return rc == CURLE_PEER_FAILED_VERIFICATION ||
	       rc == CURLE_SSL_CACERT_BADFILE || rc == CURLE_SSL_ISSUER_ERROR;
}

/* The answer: 200, text/plain, a policy that parses. */
static enum sts_fetch_status
fetch_check(
    CURL *h, struct buf *body, struct sts_policy *pol, char *err, size_t errlen)
{
	long code = 0;
	char *type = NULL, perr[160];
	size_t n;

	if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK ||
	    code != 200) {
		str_fmt_cut(err, errlen,
		    "HTTP status %ld (only 200 is a "
		    "policy; redirects are not followed)",
		    code);
		return STS_FETCH_ERROR;
	}
	if (curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &type) != CURLE_OK ||
	    type == NULL) {
		str_fmt_cut(err, errlen, "no media type (text/plain expected)");
		return STS_FETCH_ERROR;
	}
	n = strcspn(type, "; \t");
	if (n != 10 || strncasecmp(type, "text/plain", 10) != 0) {
		char q[80];

		str_fmt_cut(err, errlen, "media type %s (text/plain expected)",
		    log_sanitize(q, sizeof(q), type, strlen(type)));
		return STS_FETCH_ERROR;
	}
	if (sts_policy_parse(body->data != NULL ? body->data : "", body->len,
		pol, perr, sizeof(perr)) != 0) {
		str_fmt_cut(err, errlen, "invalid policy: %s", perr);
		return STS_FETCH_INVALID;
	}
	return STS_FETCH_OK;
}

static enum sts_fetch_status
fetch_run(CURL *h, struct fetch_sink *sink, const char *curl_err,
    struct sts_policy *pol, char *err, size_t errlen)
{
	CURLcode rc = curl_easy_perform(h);

	if (sink->too_large || rc == CURLE_FILESIZE_EXCEEDED) {
		str_fmt_cut(err, errlen, "policy larger than %d octets",
		    STS_POLICY_MAX);
		return STS_FETCH_ERROR;
	}
	if (rc != CURLE_OK) {
		str_fmt_cut(err, errlen, "%s%s%s", curl_easy_strerror(rc),
		    curl_err[0] != '\0' ? ": " : "", curl_err);
		return fetch_webpki(rc) ? STS_FETCH_WEBPKI : STS_FETCH_ERROR;
	}
	return fetch_check(h, sink->body, pol, err, errlen);
}

enum sts_fetch_status
sts_fetch(const struct sts_fetch_req *req, struct buf *body,
    struct sts_policy *pol, char *err, size_t errlen)
{
	struct fetch_sink sink = {body, false};
	char url[STS_FETCH_URL_MAX], curl_err[CURL_ERROR_SIZE] = "";
	struct curl_slist *res;
	enum sts_fetch_status st = STS_FETCH_ERROR;
	CURL *h;

	err[0] = '\0';
	buf_reset(body);
	if ((res = fetch_resolve_list(req, err, errlen)) == NULL)
		return STS_FETCH_ERROR;
	if ((h = curl_easy_init()) == NULL) {
		curl_slist_free_all(res);
		str_fmt_cut(err, errlen, "curl_easy_init failed");
		return STS_FETCH_ERROR;
	}
	if (fetch_setup(h, req, res, &sink, url, sizeof(url)) != 0 ||
	    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_err) != CURLE_OK)
		str_fmt_cut(err, errlen, "cannot set up the transfer");
	else
		st = fetch_run(h, &sink, curl_err, pol, err, errlen);
	curl_easy_cleanup(h);
	curl_slist_free_all(res);
	return st;
}
