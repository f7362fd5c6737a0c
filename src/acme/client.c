/*
 * acme/client: an ACME order's HTTPS requests with libcurl, on the calling
 * (worker) thread.  See client.h for the rules every request keeps.
 *
 * Invariants: an answer's body never grows past its limit (the write
 * callback refuses the octet past it, which aborts the transfer); the
 * headers kept are those of the last response (a 1xx's are dropped);
 * no signal is used (CURLOPT_NOSIGNAL: threads); a wait is slept one
 * second at a time so a stop ends it.
 */
#include <strings.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "acme/client.h"
#include "tls/curltls.h"
#include "util/util.h"

struct cl_resp {
	struct buf body;
	bool too_large;
	char location[ACME_CLIENT_HEADER_MAX + 1];
	char nonce[ACME_CLIENT_HEADER_MAX + 1];
	char retry_after[ACME_CLIENT_HEADER_MAX + 1];
	char ctype[ACME_CLIENT_HEADER_MAX + 1];
};

static size_t
cl_write(char *p, size_t size, size_t n, void *arg)
{
	struct cl_resp *r = arg;

	if (buf_append(&r->body, p, size * n) != 0) {
		r->too_large = true;
		return 0; /* CURLE_WRITE_ERROR */
	}
	return size * n;
}

/* "Name: value": the value into dst when the name is name (a value too
 * long to keep is as good as absent). */
static void
cl_header_take(const char *line, size_t len, const char *name, char *dst)
{
	size_t nl = strlen(name);

	if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
		return;
	line += nl + 1;
	len -= nl + 1;
	while (len > 0 && (*line == ' ' || *line == '\t'))
		line++, len--;
	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n' ||
			      line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	if (str_copy(dst, ACME_CLIENT_HEADER_MAX + 1, line, len) != 0)
		dst[0] = '\0';
}

static size_t
cl_header(char *p, size_t size, size_t n, void *arg)
{
	struct cl_resp *r = arg;
	size_t len = size * n;

	if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
		/* a new response (after a 1xx): its own headers only */
		r->location[0] = r->nonce[0] = '\0';
		r->retry_after[0] = r->ctype[0] = '\0';
		return len;
	}
	cl_header_take(p, len, "Location", r->location);
	cl_header_take(p, len, "Replay-Nonce", r->nonce);
	cl_header_take(p, len, "Retry-After", r->retry_after);
	cl_header_take(p, len, "Content-Type", r->ctype);
	return len;
}

static int
cl_setup_trust(CURL *h, const struct acme_client_conf *cc)
{
	return curltls_setup(h, cc->ca_file, cc->ca_path, cc->cancel);
}

static int
cl_setup_method(CURL *h, const struct acme_req *req)
{
	if (req->method == ACME_HEAD)
		return curl_easy_setopt(h, CURLOPT_NOBODY, 1L) == CURLE_OK ? 0
									   : -1;
	if (req->method == ACME_GET)
		return 0;
	if (curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
		(curl_off_t)req->len) != CURLE_OK)
		return -1;
	return 0;
}

static int
cl_setup(CURL *h, const struct acme_req *req, const struct acme_client_conf *cc,
    struct curl_slist *hdr, struct cl_resp *r)
{
	if (curl_easy_setopt(h, CURLOPT_URL, req->url) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_PROXY, "") != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)ACME_CLIENT_TIMEOUT_S) !=
		CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT,
		(long)ACME_CLIENT_LOW_SPEED) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME,
		(long)ACME_CLIENT_LOW_TIME) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE,
		(curl_off_t)r->body.max) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, cl_write) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_WRITEDATA, r) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, cl_header) !=
		CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_HEADERDATA, r) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_USERAGENT, "tern-acme") != CURLE_OK)
		return -1;
	return cl_setup_trust(h, cc) != 0 || cl_setup_method(h, req) != 0 ? -1
									  : 0;
}

static struct curl_slist *
cl_headers(const struct acme_req *req)
{
	struct curl_slist *l, *more;

	l = curl_slist_append(
	    NULL, req->want_pem ? "Accept: application/pem-certificate-chain"
				: "Accept: application/json");
	if (l == NULL || req->method != ACME_POST)
		return l;
	more = curl_slist_append(l, "Content-Type: application/jose+json");
	if (more == NULL)
		curl_slist_free_all(l);
	return more;
}

/* One request: 0 with out filled (any HTTP status), or -1 with err. */
static int
cl_send(const struct acme_req *req, const struct acme_client_conf *cc,
    struct cl_resp *r, long *status_out, char *err, size_t errlen)
{
	char curl_err[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdr = NULL;
	CURL *h = curl_easy_init();
	CURLcode rc = CURLE_FAILED_INIT;

	buf_reset(&r->body);
	r->too_large = false;
	r->location[0] = r->nonce[0] = r->retry_after[0] = r->ctype[0] = '\0';
	hdr = cl_headers(req);
	if (h != NULL && hdr != NULL && cl_setup(h, req, cc, hdr, r) == 0 &&
	    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_err) == CURLE_OK)
		rc = curl_easy_perform(h);
	if (rc == CURLE_OK && curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE,
				  status_out) != CURLE_OK)
		rc = CURLE_FAILED_INIT;
	if (r->too_large || rc == CURLE_FILESIZE_EXCEEDED)
		str_fmt_cut(
		    err, errlen, "answer larger than %zu octets", r->body.max);
	else if (rc != CURLE_OK)
		str_fmt_cut(err, errlen, "%s%s%s", curl_easy_strerror(rc),
		    curl_err[0] != '\0' ? ": " : "", curl_err);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	return rc == CURLE_OK && !r->too_large ? 0 : -1;
}

static const char *
cl_opt(const char *v)
{
	return v[0] != '\0' ? v : NULL;
}

/* Sleep secs, a second at a time; -1 when told to stop. */
static int
cl_wait(unsigned secs, const struct acme_client_conf *cc)
{
	struct timespec one = {1, 0};

	for (; secs > 0; secs--) {
		if (cc->cancel != NULL &&
		    atomic_load_explicit(cc->cancel, memory_order_relaxed))
			return -1;
		nanosleep(&one, NULL);
	}
	return 0;
}

enum acme_act
acme_client_run(struct acme_sm *sm, const struct acme_client_conf *cc)
{
	struct cl_resp r;
	struct acme_resp ar;
	struct acme_req req;
	unsigned wait;
	char err[CURL_ERROR_SIZE + 64];
	enum acme_act act = acme_sm_next(sm, NULL, &req, &wait);

	memset(&r, 0, sizeof(r));
	for (;;) {
		if (act == ACME_SM_WAIT) {
			if (cl_wait(wait, cc) != 0)
				acme_sm_fail(sm, "stopped");
			act = acme_sm_next(sm, NULL, &req, &wait);
			continue;
		}
		if (act != ACME_SM_SEND)
			break;
		buf_init(
		    &r.body, req.want_pem ? ACME_CHAIN_MAX : ACME_JSON_MAX);
		memset(&ar, 0, sizeof(ar));
		if (cl_send(&req, cc, &r, &ar.status, err, sizeof(err)) != 0) {
			buf_free(&r.body);
			acme_sm_fail(sm, err);
			act = acme_sm_next(sm, NULL, &req, &wait);
			continue;
		}
		ar.location = cl_opt(r.location);
		ar.nonce = cl_opt(r.nonce);
		ar.retry_after = cl_opt(r.retry_after);
		ar.content_type = cl_opt(r.ctype);
		ar.body = r.body.data != NULL ? r.body.data : "";
		ar.len = r.body.len;
		ar.now = (int64_t)time(NULL);
		act = acme_sm_next(sm, &ar, &req, &wait);
		buf_free(&r.body);
	}
	return act;
}
