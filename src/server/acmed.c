/*
 * acmed: ACME orders for ternd's own certificate; see acmed.h.
 *
 * One order at a time, as one struct ad_run that goes to the worker pool
 * twice: first the check of the pair on disk, the account key and the
 * order up to its challenges (acme_client_run stops at ACME_SM_PUBLISH);
 * then, once the loop serves the key authorizations (or the worker wrote
 * them under acme.webroot), the rest: challenges, polls, finalize, the
 * chain, the files.  The loop only starts runs, serves challenges, loads
 * the new context and keeps the back-off.
 *
 * Invariants: the run reads the configuration it was started under (a
 * configuration lives until exit, reload.h); a file is written whole as
 * NAME.acme-new, fsync'ed, renamed over NAME and its directory fsync'ed,
 * key before certificate, so a crash leaves the old pair, the new pair,
 * or a new key beside the old certificate, which does not load: the
 * check after the restart orders again (tlsconn_ctx_load serves the
 * self-signed pair meanwhile).  Every key is wiped from memory after use.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "acme/acme.h"
#include "acme/client.h"
#include "fs/file.h"
#include "server/acmed.h"
#include "server/httpsrv.h"
#include "server/listen.h"
#include "server/server.h"
#include "server/tlsconn.h"
#include "workers/workers.h"

#define AD_WHO	       "acme"
#define AD_DIR	       "acme"
#define AD_ACCOUNT_KEY "account.key"
#define AD_ACCOUNT_URL "account.url"
#define AD_LAST	       "last" /* the last order's outcome, for tern doctor */
#define AD_NEW	       ".acme-new"
#define AD_CHAL_PATH   "/.well-known/acme-challenge/"
#define AD_ERR_MAX     700

enum ad_outcome {
	AD_FRESH,   /* the pair on disk is good for now */
	AD_PUBLISH, /* challenges to serve, then the second half */
	AD_ISSUED,
	AD_FAILED,
};

struct ad_run {
	struct job job;
	struct acmed *ad;
	const struct conf *cf;
	char **domains;
	size_t n;
	EVP_PKEY *akey, *ckey;
	struct acme_sm *sm;
	enum ad_outcome outcome;
	bool rejected;
	int64_t not_after;
	char note[200]; /* why an order was needed */
	char err[AD_ERR_MAX];
};

struct acmed {
	struct server *srv;
	int fd; /* acme.http, bound; -1 once httpsrv owns it, or none */
	struct httpsrv *http;
	struct event *timer;
	struct ad_run *run;	/* the order in flight, or NULL */
	struct acme_chal *chal; /* served while an order waits */
	size_t nchal;
	unsigned failures; /* in a row */
	bool stopping;
	atomic_bool cancel;
};

/* ---- files (worker) ------------------------------------------------------ */

/* Read path whole (at most ACMED_FILE_MAX); 0, or -1 with errno. */
static int
ad_read(const char *path, struct buf *out)
{
	char chunk[4096];
	ssize_t r;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return -1;
	while ((r = read(fd, chunk, sizeof(chunk))) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || buf_append(out, chunk, (size_t)r) != 0) {
			if (r >= 0)
				errno = EFBIG;
			fd_close_quiet(fd);
			return -1;
		}
	}
	fd_close_quiet(fd);
	return 0;
}

/* The directory of an absolute path, opened, and the last name in it. */
static int
ad_open_dir(const char *path, const char **base_out)
{
	const char *slash = strrchr(path, '/');
	char dir[4096];

	if (slash == NULL || slash[1] == '\0' ||
	    str_copy(dir, sizeof(dir), path,
		slash == path ? 1 : (size_t)(slash - path)) != 0) {
		errno = EINVAL;
		return -1;
	}
	*base_out = slash + 1;
	return open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* path + AD_NEW written and fsync'ed (mode exactly mode). */
static int
ad_stage(
    const char *path, const struct buf *data, mode_t mode, const char **step)
{
	const char *base;
	char tmp[300];
	struct iovec iov = {data->data, data->len};
	int dfd = ad_open_dir(path, &base), rc = -1;

	*step = "open_dir";
	if (dfd < 0)
		return -1;
	*step = "name";
	if (str_fmt(tmp, sizeof(tmp), "%s%s", base, AD_NEW) == 0) {
		unlinkat_quiet(dfd, tmp); /* an earlier crash's */
		rc = file_write_new_mode(
		    AD_WHO, dfd, tmp, mode, &iov, 1, true, NULL, step);
	}
	fd_close_quiet(dfd);
	return rc;
}

/* path + AD_NEW renamed over path, the directory fsync'ed. */
static int
ad_commit(const char *path, const char **step)
{
	const char *base;
	char tmp[300];
	int dfd = ad_open_dir(path, &base), rc = -1;

	*step = "open_dir";
	if (dfd < 0)
		return -1;
	*step = "rename";
	if (str_fmt(tmp, sizeof(tmp), "%s%s", base, AD_NEW) == 0 &&
	    file_rename(AD_WHO, dfd, tmp, dfd, base, 0) == 0) {
		*step = "fsync_dir";
		rc = file_sync_dir(AD_WHO, dfd);
	}
	fd_close_quiet(dfd);
	return rc;
}

/* A whole file put in place durably. */
static int
ad_put(const char *path, const struct buf *data, mode_t mode, const char **step)
{
	if (ad_stage(path, data, mode, step) != 0)
		return -1;
	return ad_commit(path, step);
}

static void
ad_fail_errno(struct ad_run *r, const char *what, const char *step)
{
	str_fmt_cut(
	    r->err, sizeof(r->err), "%s: %s: %s", what, step, strerror(errno));
	r->outcome = AD_FAILED;
}

/* ---- the pair on disk, the account (worker) ------------------------------ */

/* Is the pair good for acme.renew_before more?  Else r->note says why. */
static bool
ad_pair_fresh(struct ad_run *r)
{
	struct buf cert, key;
	char why[160];
	int64_t left;
	bool fresh = false;

	buf_init(&cert, ACMED_FILE_MAX);
	buf_init(&key, ACMED_FILE_MAX);
	if (ad_read(r->cf->tls_cert, &cert) != 0 ||
	    ad_read(r->cf->tls_key, &key) != 0)
		str_fmt_cut(r->note, sizeof(r->note),
		    "cannot read the pair: %s", strerror(errno));
	else if (acme_pair_check(cert.data, cert.len, key.data, key.len,
		     (const char *const *)r->domains, r->n, &r->not_after, why,
		     sizeof(why)) != 0)
		str_fmt_cut(r->note, sizeof(r->note), "%s", why);
	else if ((left = r->not_after - (int64_t)time(NULL)) <=
		 (int64_t)r->cf->acme_renew_before)
		str_fmt_cut(r->note, sizeof(r->note), "expires in %lld s",
		    (long long)left);
	else
		fresh = true;
	buf_free(&cert);
	buf_wipe(&key);
	return fresh;
}

static int
ad_state_path(const struct ad_run *r, const char *name, char *out, size_t len)
{
	return name == NULL
		   ? str_fmt(out, len, "%s/%s", r->cf->state_dir, AD_DIR)
		   : str_fmt(
			 out, len, "%s/%s/%s", r->cf->state_dir, AD_DIR, name);
}

/* STATE/acme/account.key, made on first use. */
static int
ad_account(struct ad_run *r)
{
	char path[4096];
	const char *step = "mkdir";
	struct buf pem;
	int rc = -1;

	if (ad_state_path(r, NULL, path, sizeof(path)) != 0 ||
	    (mkdir(path, 0700) != 0 && errno != EEXIST) ||
	    ad_state_path(r, AD_ACCOUNT_KEY, path, sizeof(path)) != 0) {
		ad_fail_errno(r, "STATE/acme", step);
		return -1;
	}
	buf_init(&pem, ACMED_FILE_MAX);
	if (ad_read(path, &pem) == 0) {
		if ((r->akey = acme_key_from_pem(pem.data, pem.len)) == NULL)
			str_fmt_cut(r->err, sizeof(r->err),
			    "%s: not an EC P-256 private key", path);
		rc = r->akey != NULL ? 0 : -1;
	} else if (errno != ENOENT) {
		ad_fail_errno(r, path, "read");
	} else if ((r->akey = acme_key_new()) == NULL ||
		   acme_key_pem(r->akey, &pem) != 0) {
		str_fmt_cut(r->err, sizeof(r->err), "cannot make a key");
	} else if (ad_put(path, &pem, 0600, &step) != 0) {
		ad_fail_errno(r, path, step);
	} else {
		rc = 0;
	}
	buf_wipe(&pem);
	if (rc != 0)
		r->outcome = AD_FAILED;
	return rc;
}

/* STATE/acme/account.url, when it changed (for the administrator: the
 * key alone finds the account again, RFC 8555 7.3.1). */
static void
ad_save_account_url(struct ad_run *r)
{
	char path[4096];
	const char *url = acme_sm_account(r->sm), *step = "write";
	struct buf old, line;

	if (url[0] == '\0' ||
	    ad_state_path(r, AD_ACCOUNT_URL, path, sizeof(path)) != 0)
		return;
	buf_init(&old, 4096);
	buf_init(&line, 4096);
	if ((ad_read(path, &old) != 0 || old.len != strlen(url) + 1 ||
		memcmp(old.data, url, old.len - 1) != 0) &&
	    buf_printf(&line, "%s\n", url) == 0 &&
	    ad_put(path, &line, 0600, &step) != 0)
		log_warn("event=acme_account_url path=%s step=%s error=\"%s\"",
		    path, step, strerror(errno));
	buf_free(&old);
	buf_free(&line);
}

/* STATE/acme/last: one line, "UNIXTIME result=issued domains=...
 * not_after=UNIXTIME" or "UNIXTIME result=error|rejected error=...";
 * best effort (the log has it too). */
static void
ad_save_last(struct ad_run *r)
{
	char path[4096];
	const char *step = "write";
	struct buf line;
	char q[AD_ERR_MAX];
	int rc;

	if (ad_state_path(r, AD_LAST, path, sizeof(path)) != 0)
		return;
	buf_init(&line, 2048);
	if (r->outcome == AD_ISSUED)
		rc = buf_printf(&line,
		    "%lld result=issued domains=%s "
		    "not_after=%lld\n",
		    (long long)time(NULL), r->cf->acme_domains,
		    (long long)r->not_after);
	else
		rc = buf_printf(&line, "%lld result=%s error=%s\n",
		    (long long)time(NULL), r->rejected ? "rejected" : "error",
		    log_quote(q, sizeof(q), r->err, strlen(r->err)));
	if (rc == 0 && ad_put(path, &line, 0600, &step) != 0)
		log_warn("event=acme_last path=%s step=%s error=\"%s\"", path,
		    step, strerror(errno));
	buf_free(&line);
}

/* ---- webroot (worker) ---------------------------------------------------- */

static int
ad_token_path(const struct ad_run *r, const char *token, char *out, size_t len)
{
	return str_fmt(
	    out, len, "%s%s%s", r->cf->acme_webroot, AD_CHAL_PATH, token);
}

static int
ad_webroot_dirs(const struct ad_run *r)
{
	char path[4096];

	if (str_fmt(path, sizeof(path), "%s/.well-known",
		r->cf->acme_webroot) != 0 ||
	    (mkdir(path, 0755) != 0 && errno != EEXIST) ||
	    str_fmt(path, sizeof(path), "%s%s", r->cf->acme_webroot,
		"/.well-known/acme-challenge") != 0 ||
	    (mkdir(path, 0755) != 0 && errno != EEXIST))
		return -1;
	return 0;
}

/* The key authorizations as files a web server reads (0644). */
static int
ad_webroot_write(struct ad_run *r)
{
	const struct acme_chal *c;
	char path[4096];
	const char *step = "mkdir";
	struct buf data;
	size_t i, n;
	int rc = 0;

	c = acme_sm_challenges(r->sm, &n);
	if (ad_webroot_dirs(r) != 0) {
		ad_fail_errno(r, r->cf->acme_webroot, step);
		return -1;
	}
	buf_init(&data, ACME_KEYAUTH_MAX + 1);
	for (i = 0; rc == 0 && i < n; i++) {
		buf_reset(&data);
		if (ad_token_path(r, c[i].token, path, sizeof(path)) != 0 ||
		    buf_append_str(&data, c[i].keyauth) != 0 ||
		    ad_put(path, &data, 0644, &step) != 0) {
			ad_fail_errno(r, path, step);
			rc = -1;
		}
	}
	buf_free(&data);
	return rc;
}

static void
ad_webroot_clean(struct ad_run *r)
{
	const struct acme_chal *c;
	char path[4096];
	size_t i, n;

	if (r->cf->acme_webroot == NULL || r->sm == NULL)
		return;
	c = acme_sm_challenges(r->sm, &n);
	for (i = 0; i < n; i++)
		if (ad_token_path(r, c[i].token, path, sizeof(path)) == 0)
			unlinkat_quiet(AT_FDCWD, path);
}

/* ---- the order (worker) -------------------------------------------------- */

/* The new pair, key first (see the invariants above). */
static void
ad_install(struct ad_run *r)
{
	const struct buf *chain = acme_sm_chain(r->sm);
	const char *step = "encode";
	struct buf key;
	char why[160];

	buf_init(&key, ACMED_FILE_MAX);
	if (acme_key_pem(r->ckey, &key) != 0) {
		str_fmt_cut(r->err, sizeof(r->err), "cannot encode the key");
		r->outcome = AD_FAILED;
	} else if (acme_pair_check(chain->data, chain->len, key.data, key.len,
		       (const char *const *)r->domains, r->n, &r->not_after,
		       why, sizeof(why)) != 0) {
		str_fmt_cut(
		    r->err, sizeof(r->err), "the chain served: %s", why);
		r->outcome = AD_FAILED;
	} else if (ad_stage(r->cf->tls_key, &key, 0600, &step) != 0 ||
		   ad_stage(r->cf->tls_cert, chain, 0644, &step) != 0 ||
		   ad_commit(r->cf->tls_key, &step) != 0 ||
		   ad_commit(r->cf->tls_cert, &step) != 0) {
		ad_fail_errno(r, r->cf->tls_cert, step);
	} else {
		r->outcome = AD_ISSUED;
	}
	buf_wipe(&key);
}

static void
ad_after(struct ad_run *r, enum acme_act act)
{
	ad_save_account_url(r);
	if (act == ACME_SM_DONE) {
		ad_install(r);
		return;
	}
	if (act == ACME_SM_PUBLISH) {
		r->outcome = AD_PUBLISH;
		if (r->cf->acme_webroot != NULL && ad_webroot_write(r) != 0) {
			acme_sm_fail(r->sm, r->err);
			ad_webroot_clean(r);
		}
		return;
	}
	str_fmt_cut(r->err, sizeof(r->err), "%s", acme_sm_error(r->sm));
	r->rejected = acme_sm_rejected(r->sm);
	r->outcome = AD_FAILED;
}

static void
ad_client_conf(const struct ad_run *r, struct acme_client_conf *cc)
{
	cc->ca_file = r->cf->tls_ca_file;
	cc->ca_path = r->cf->tls_ca_path;
	cc->cancel = &r->ad->cancel;
}

static void
ad_run_first(struct job *j)
{
	struct ad_run *r = (struct ad_run *)j;
	struct acme_client_conf cc;

	if (ad_pair_fresh(r)) {
		r->outcome = AD_FRESH;
		return;
	}
	if (ad_account(r) != 0) {
		ad_save_last(r);
		return;
	}
	if ((r->ckey = acme_key_new()) == NULL) {
		str_fmt_cut(r->err, sizeof(r->err), "cannot make a key");
		r->outcome = AD_FAILED;
		return;
	}
	r->sm = acme_sm_new(r->cf->acme_directory, r->akey, r->ckey,
	    r->cf->acme_email, (const char *const *)r->domains, r->n);
	ad_client_conf(r, &cc);
	ad_after(r, acme_client_run(r->sm, &cc));
	if (r->outcome != AD_PUBLISH)
		ad_save_last(r);
}

static void
ad_run_second(struct job *j)
{
	struct ad_run *r = (struct ad_run *)j;
	struct acme_client_conf cc;
	enum acme_act act;

	ad_client_conf(r, &cc);
	act = acme_client_run(r->sm, &cc);
	ad_webroot_clean(r);
	if (act == ACME_SM_PUBLISH) /* once per order: a second is a bug */
		acme_sm_fail(r->sm, "challenges asked twice");
	ad_after(r, act == ACME_SM_PUBLISH ? ACME_SM_FAIL : act);
	ad_save_last(r);
}

/* ---- the loop ------------------------------------------------------------ */

static void ad_done(struct job *j);

static void
ad_run_free(struct ad_run *r)
{
	size_t i;

	if (r == NULL)
		return;
	acme_sm_free(r->sm);
	EVP_PKEY_free(r->akey);
	EVP_PKEY_free(r->ckey);
	for (i = 0; i < r->n; i++)
		free(r->domains[i]);
	free(r->domains);
	free(r);
}

/* acme.domains ("a,b") as an array. */
static void
ad_split_domains(struct ad_run *r, const char *list)
{
	const char *p = list, *comma;

	r->domains = xcalloc(ACME_DOMAINS_MAX, sizeof(*r->domains));
	while (*p != '\0' && r->n < ACME_DOMAINS_MAX) {
		comma = strchr(p, ',');
		if (comma == NULL)
			comma = p + strlen(p);
		r->domains[r->n++] = xstrndup(p, (size_t)(comma - p));
		p = *comma == ',' ? comma + 1 : comma;
	}
}

static void
ad_arm(struct acmed *ad, unsigned secs)
{
	struct timeval tv = {(time_t)secs, 0};

	if (!ad->stopping)
		evtimer_add(ad->timer, &tv);
}

static void
ad_check(struct acmed *ad)
{
	struct ad_run *r;

	if (ad->run != NULL || ad->stopping)
		return;
	r = xcalloc(1, sizeof(*r));
	r->ad = ad;
	r->cf = ad->srv->conf;
	ad_split_domains(r, r->cf->acme_domains);
	r->job.run = ad_run_first;
	r->job.done = ad_done;
	ad->run = r;
	workers_submit(ad->srv->workers, &r->job);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	ad_check(arg);
}

static void
ad_serve(struct acmed *ad, const struct ad_run *r)
{
	const struct acme_chal *c;
	size_t n;

	free(ad->chal);
	ad->chal = NULL;
	ad->nchal = 0;
	if (r == NULL)
		return;
	c = acme_sm_challenges(r->sm, &n);
	ad->chal = xcalloc(n + 1, sizeof(*ad->chal));
	memcpy(ad->chal, c, n * sizeof(*c));
	ad->nchal = n;
}

static void
ad_format_time(int64_t t, char *out, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		str_fmt_cut(out, len, "%lld", (long long)t);
}

static void
ad_failed(struct acmed *ad, const struct ad_run *r)
{
	unsigned secs = ad->srv->conf->acme_retry_first, i;
	char q[AD_ERR_MAX + 16];

	ad->failures++;
	for (i = 1; i < ad->failures && secs < ACMED_RETRY_MAX; i++)
		secs *= 2;
	if (secs > ACMED_RETRY_MAX)
		secs = ACMED_RETRY_MAX;
	log_err("event=acme result=%s domains=%s error=\"%s\" retry_in=%u",
	    r->rejected ? "rejected" : "error", r->cf->acme_domains,
	    log_quote(q, sizeof(q), r->err, strlen(r->err)), secs);
	ad_arm(ad, secs);
}

static void
ad_issued(struct acmed *ad, const struct ad_run *r)
{
	struct server *s = ad->srv;
	char when[40];

	/* as SIGHUP does: new sessions get it, live ones keep theirs */
	if (tlsconn_ctx_load(s->conf, &s->tls_ctx) != 0) {
		struct ad_run tmp = *r;

		str_fmt_cut(tmp.err, sizeof(tmp.err),
		    "the new pair does not load (see event=tls_load)");
		ad_failed(ad, &tmp);
		return;
	}
	ad->failures = 0;
	ad_format_time(r->not_after, when, sizeof(when));
	log_info("event=acme result=issued domains=%s not_after=%s note=\"%s\"",
	    r->cf->acme_domains, when, r->note);
	ad_arm(ad, ACMED_CHECK_SECS);
}

static void
ad_done(struct job *j)
{
	struct ad_run *r = (struct ad_run *)j;
	struct acmed *ad = r->ad;
	char when[40];

	/* stopping too: the cancelled second half fails at once and removes
	   the webroot's files on its worker */
	if (r->outcome == AD_PUBLISH) {
		if (ad->http != NULL)
			ad_serve(ad, r);
		r->job.run = ad_run_second;
		workers_submit(ad->srv->workers, &r->job);
		return;
	}
	ad_serve(ad, NULL);
	ad->run = NULL;
	if (r->outcome == AD_FRESH) {
		ad->failures = 0;
		ad_format_time(r->not_after, when, sizeof(when));
		log_debug("event=acme result=fresh not_after=%s", when);
		ad_arm(ad, ACMED_CHECK_SECS);
	} else if (r->outcome == AD_ISSUED && !ad->stopping) {
		ad_issued(ad, r);
	} else if (!ad->stopping) {
		ad_failed(ad, r);
	}
	ad_run_free(r);
	if (ad->stopping)
		server_maybe_exit(ad->srv);
}

/* ---- HTTP-01 on acme.http (loop) ----------------------------------------- */

static const char *
ad_keyauth(const struct acmed *ad, const char *path)
{
	size_t i, plen = sizeof(AD_CHAL_PATH) - 1;

	if (strncmp(path, AD_CHAL_PATH, plen) != 0)
		return NULL;
	for (i = 0; i < ad->nchal; i++)
		if (strcmp(path + plen, ad->chal[i].token) == 0)
			return ad->chal[i].keyauth;
	return NULL;
}

static void
on_request(struct evhttp_request *req, void *arg)
{
	struct acmed *ad = arg;
	const char *path = httpsrv_path(req);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	const char *ka = path != NULL ? ad_keyauth(ad, path) : NULL;
	struct evbuffer *body;

	if (ka == NULL || !httpsrv_get_or_head(req) ||
	    (body = evbuffer_new()) == NULL) {
		httpsrv_error(req, 404, "Not Found");
		return;
	}
	evhttp_add_header(h, "Content-Type", "application/octet-stream");
	if (evbuffer_add(body, ka, strlen(ka)) != 0) {
		evbuffer_free(body);
		evhttp_send_error(req, 500, "Internal Server Error");
		return;
	}
	evhttp_send_reply(req, 200, "OK", body);
	evbuffer_free(body);
}

static void
ad_http_start(struct acmed *ad)
{
	static const struct httpsrv_limits lim = {"acme_http",
	    ACMED_HTTP_HEADERS, ACMED_HTTP_TIMEOUT, ACMED_HTTP_ADMIT};

	if (ad->fd < 0)
		return;
	ad->http = httpsrv_start(ad->srv->base, ad->fd, &lim, on_request, ad);
	ad->fd = -1; /* httpsrv_free closes it */
}

/* ---- interface ----------------------------------------------------------- */

int
acmed_bind(struct server *s)
{
	const struct conf *cf = s->conf;
	struct acmed *ad;

	if (cf->acme_directory == NULL)
		return 0;
	/* before any thread exists (it counts: tlsrptd and MTA-STS may
	   call it too) */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_err("event=startup step=acme error=curl_global_init");
		return -1;
	}
	ad = xcalloc(1, sizeof(*ad));
	ad->srv = s;
	ad->fd = -1;
	atomic_init(&ad->cancel, false);
	s->acme = ad;
	if (cf->acme_http == NULL)
		return 0;
	if (listen_socket(cf->acme_http, &ad->fd) != 0)
		return -1;
	log_info("event=listen listener=acme addr=%s", cf->acme_http);
	return 0;
}

void
acmed_start(struct server *s)
{
	struct acmed *ad = s->acme;

	if (ad == NULL)
		return;
	ad_http_start(ad);
	if ((ad->timer = evtimer_new(s->base, on_timer, ad)) == NULL)
		fatalx("event=startup step=acme error=evtimer_new");
	ad_check(ad);
}

void
acmed_reloaded(struct server *s)
{
	struct acmed *ad = s->acme;

	if (ad == NULL || ad->run != NULL)
		return;
	evtimer_del(ad->timer);
	ad->failures = 0;
	ad_check(ad);
}

void
acmed_stop(struct server *s)
{
	struct acmed *ad = s->acme;

	if (ad == NULL || ad->stopping)
		return;
	ad->stopping = true;
	atomic_store_explicit(&ad->cancel, true, memory_order_relaxed);
	if (ad->timer != NULL)
		evtimer_del(ad->timer);
	httpsrv_free(ad->http);
	ad->http = NULL;
}

bool
acmed_idle(const struct server *s)
{
	return s->acme == NULL || s->acme->run == NULL;
}

void
acmed_free(struct server *s)
{
	struct acmed *ad = s->acme;

	if (ad == NULL)
		return;
	acmed_stop(s);
	if (ad->timer != NULL)
		event_free(ad->timer);
	if (ad->fd >= 0)
		close(ad->fd);
	free(ad->chal);
	ad_run_free(ad->run);
	free(ad);
	s->acme = NULL;
	curl_global_cleanup();
}
