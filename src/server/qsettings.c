/*
 * qsettings: the delivery settings of one configuration (qsettings.h).
 *
 * An engine is a struct remote with the count of the settings using it.
 * Settings share the engine of the settings before them when every key
 * the engine is made from is the same and the CA files it loaded are the
 * same files (qs_engine_same): a reload that changes a limit or a domain
 * does not throw away the DNS answers, the TLS sessions and the slowdown
 * state of outbound delivery.  A new engine has its own TLS contexts: MX
 * delivery's (opportunistic) and MTA-STS enforce's (verifying) on the
 * trust store of tls.ca_file and tls.ca_path (those of the engine before
 * it when that store is the same), and the smarthost's
 * (relay.smarthost_tls, _ca_file), made here, before the switch, so that
 * a file that does not load refuses the reload instead of breaking the
 * mail after it.  The engine's struct remote holds the contexts (and each
 * connection its own reference), so an attempt under way finishes on the
 * store it began with and the last user frees it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tls/tls.h"
#include "util/util.h"
#include "server/qsettings.h"
#include "server/sandbox.h"

/* Which file a CA path named when an engine loaded it: a bundle replaced
 * under the same name is another trust store. */
struct qs_stamp {
	bool ok; /* stat() answered */
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

struct qengine {
	unsigned refs; /* settings using it */
	struct remote *remote;
	/* MX delivery's contexts (a reference each), for the next engine on
	   the same trust store */
	SSL_CTX *mx_ctx, *sts_ctx;
	bool new_store; /* those contexts made for it, not shared */
	struct qs_stamp ca_file, sm_ca_file; /* tls.ca_file, the smarthost's */
};

/* The keys remote_new() reads, besides [tls_policy] (no single key), and
 * those of the trust store its contexts are made on. */
static const char *const qs_engine_keys[] = {
    "relay.port",
    "relay.smarthost",
    "relay.smarthost_user",
    "relay.smarthost_password_file",
    "relay.smarthost_tls",
    "relay.smarthost_ca_file",
    "relay.smarthost_require_tls",
    "delivery.lmtp",
    "delivery.concurrency_per_destination",
    "delivery.destination_concurrency",
    "tls.ca_file",
    "tls.ca_path",
    "sts.enable",
    NULL,
};

static bool
qs_str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static void
qs_stamp_of(const char *path, struct qs_stamp *out)
{
	struct stat st;

	memset(out, 0, sizeof(*out));
	if (path == NULL || stat(path, &st) != 0)
		return;
	out->ok = true;
	out->dev = st.st_dev;
	out->ino = st.st_ino;
	out->size = st.st_size;
	out->mtime = st.st_mtim;
}

static bool
qs_stamp_eq(const struct qs_stamp *a, const struct qs_stamp *b)
{
	return a->ok == b->ok && a->dev == b->dev && a->ino == b->ino &&
	       a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
	       a->mtime.tv_nsec == b->mtime.tv_nsec;
}

/* The keys MX delivery's contexts are made from (qs_mx_ctx). */
static const char *const qs_trust_keys[] = {
    "tls.ca_file",
    "tls.ca_path",
    "sts.enable",
    NULL,
};

static bool
qs_keys_same(
    const struct conf *a, const struct conf *b, const char *const *keys)
{
	size_t i;

	for (i = 0; keys[i] != NULL; i++)
		if (conf_key_differs(a, b, keys[i]))
			return false;
	return true;
}

/* May the engine of prev serve cf with pass? */
static bool
qs_engine_same(
    const struct qsettings *prev, const struct conf *cf, const char *pass)
{
	struct qs_stamp ca, sm_ca;

	if (prev == NULL || !qs_str_eq(prev->pass, pass) ||
	    !qs_str_eq(prev->conf->tls_policy, cf->tls_policy) ||
	    !qs_keys_same(prev->conf, cf, qs_engine_keys))
		return false;
	qs_stamp_of(cf->tls_ca_file, &ca);
	qs_stamp_of(cf->relay_smarthost_ca_file, &sm_ca);
	return qs_stamp_eq(&prev->eng->ca_file, &ca) &&
	       qs_stamp_eq(&prev->eng->sm_ca_file, &sm_ca);
}

static void
qs_retry(struct retry_policy *p, const struct conf *c)
{
	retry_policy_default(p);
	if (c->queue_retry_first)
		p->first = c->queue_retry_first;
	if (c->queue_retry_max)
		p->max_interval = c->queue_retry_max;
	p->lifetime = c->queue_lifetime;
	p->delay_warning = c->queue_delay_warning;
}

static enum remote_tls
qs_smarthost_tls(enum conf_smarthost_tls t)
{
	switch (t) {
	case CONF_SMTLS_VERIFY:
		return REMOTE_TLS_VERIFY;
	case CONF_SMTLS_ENCRYPT:
		return REMOTE_TLS_ENCRYPT;
	case CONF_SMTLS_MAY:
	case CONF_SMTLS_UNSET: /* conf_load() never leaves it so */
	default:
		return REMOTE_TLS_MAY;
	}
}

/*
 * Can ternd read the CA file or directory of key now?  Asked first, so
 * that a path the start-up sandbox does not cover is named as such (with
 * the fix: a restart) rather than as a store that does not load.
 */
static int
qs_ca_readable(
    const char *key, const char *path, bool dir, char *err, size_t errlen)
{
	char why[1024];

	if (path == NULL || sandbox_readable(path, dir, why, sizeof(why)) == 0)
		return 0;
	str_fmt_cut(err, errlen, "%s: %s", key, why);
	return -1;
}

/*
 * The contexts of MX delivery on the trust store of tls.ca_file and
 * tls.ca_path (the system store without them): opportunistic (the store
 * only says verified=yes|no in the log), and with sts.enable the
 * verifying one of MX hosts under MTA-STS enforce (else NULL).
 */
static int
qs_mx_ctx(const struct conf *cf, SSL_CTX **mx_out, SSL_CTX **sts_out, char *err,
    size_t errlen)
{
	char why[1024];

	*mx_out = *sts_out = NULL;
	if (qs_ca_readable(
		"tls.ca_file", cf->tls_ca_file, false, err, errlen) != 0 ||
	    qs_ca_readable("tls.ca_path", cf->tls_ca_path, true, err, errlen) !=
		0)
		return -1;
	if ((*mx_out = tls_client_ctx_store(false, cf->tls_ca_file,
		 cf->tls_ca_path, why, sizeof(why))) == NULL ||
	    (cf->sts_enable &&
		(*sts_out = tls_client_ctx_store(true, cf->tls_ca_file,
		     cf->tls_ca_path, why, sizeof(why))) == NULL)) {
		str_fmt_cut(err, errlen, "tls.ca_file, tls.ca_path: %s", why);
		SSL_CTX_free(*mx_out);
		*mx_out = NULL;
		return -1;
	}
	return 0;
}

/*
 * The smarthost's context as relay.smarthost_tls says, on the trust store
 * of relay.smarthost_ca_file when that is set, else of tls.ca_file and
 * tls.ca_path (the system store without them).  NULL *out: no smarthost.
 */
static int
qs_smarthost_ctx(const struct conf *cf, SSL_CTX **out, char *err, size_t errlen)
{
	const char *sm_file = cf->relay_smarthost_ca_file;

	*out = NULL;
	if (cf->relay_smarthost == NULL)
		return 0;
	if (qs_ca_readable(
		"relay.smarthost_ca_file", sm_file, false, err, errlen) != 0)
		return -1;
	*out =
	    tls_client_ctx_store(cf->relay_smarthost_tls == CONF_SMTLS_VERIFY,
		sm_file != NULL ? sm_file : cf->tls_ca_file,
		sm_file != NULL ? NULL : cf->tls_ca_path, err, errlen);
	return *out != NULL ? 0 : -1;
}

/*
 * MX delivery's contexts for a new engine: those of prev's engine when the
 * trust store is the same (an engine made for a new smarthost or limit
 * does not load the store again), else made from cf.  A reference each.
 */
static int
qs_mx_ctx_for(const struct qsettings *prev, const struct conf *cf,
    const struct qs_stamp *ca, SSL_CTX **mx_out, SSL_CTX **sts_out,
    bool *made_out, char *err, size_t errlen)
{
	if (prev == NULL || !qs_keys_same(prev->conf, cf, qs_trust_keys) ||
	    !qs_stamp_eq(&prev->eng->ca_file, ca)) {
		*made_out = true;
		return qs_mx_ctx(cf, mx_out, sts_out, err, errlen);
	}
	*made_out = false;
	*mx_out = prev->eng->mx_ctx;
	*sts_out = prev->eng->sts_ctx;
	if (*mx_out != NULL)
		SSL_CTX_up_ref(*mx_out);
	if (*sts_out != NULL)
		SSL_CTX_up_ref(*sts_out);
	return 0;
}

static struct qengine *
qs_engine_new(const struct qsettings_world *w, const struct conf *cf,
    const char *pass, const struct qsettings *prev, char *err, size_t errlen)
{
	struct remote_conf rc = {0};
	struct qs_stamp ca, sm_ca;
	struct qengine *e;
	struct remote *r;
	SSL_CTX *mx_ctx, *sts_ctx, *sm_ctx;
	bool made;

	/* before the files are read: one replaced meanwhile differs at the
	   next reload and is read again then */
	qs_stamp_of(cf->tls_ca_file, &ca);
	qs_stamp_of(cf->relay_smarthost_ca_file, &sm_ca);
	if (qs_mx_ctx_for(
		prev, cf, &ca, &mx_ctx, &sts_ctx, &made, err, errlen) != 0)
		return NULL;
	if (qs_smarthost_ctx(cf, &sm_ctx, err, errlen) != 0) {
		SSL_CTX_free(mx_ctx);
		SSL_CTX_free(sts_ctx);
		return NULL;
	}
	rc.helo = cf->hostname;
	rc.port = cf->relay_port;
	rc.smarthost = cf->relay_smarthost;
	rc.smarthost_user = cf->relay_smarthost_user;
	rc.smarthost_pass = pass != NULL && pass[0] != '\0' ? pass : NULL;
	rc.smarthost_tls = qs_smarthost_tls(cf->relay_smarthost_tls);
	rc.smarthost_ctx = sm_ctx;
	rc.lmtp = cf->delivery_lmtp;
	rc.self = w->self;
	rc.nself = w->nself;
	rc.max_per_dest = cf->delivery_concurrency_per_destination;
	rc.destination_concurrency = cf->delivery_destination_concurrency;
	rc.sts = cf->sts_enable ? w->sts : NULL;
	rc.sts_ctx = sts_ctx;
	rc.tlsrpt = w->tlsrpt;
	rc.timeout_connect = 30;
	rc.timeout_command = 300;
	rc.dnssec = cf->dns_dnssec;
	rc.tls_policy = cf->tls_policy;
	r = remote_new(w->base, w->dns, mx_ctx, &rc);
	SSL_CTX_free(sm_ctx); /* remote_new took its own reference */
	if (r == NULL) {
		SSL_CTX_free(mx_ctx);
		SSL_CTX_free(sts_ctx);
		str_fmt_cut(err, errlen, "bad relay settings (see above)");
		return NULL;
	}
	e = xcalloc(1, sizeof(*e));
	e->remote = r;
	e->mx_ctx = mx_ctx;
	e->sts_ctx = sts_ctx;
	e->new_store = made;
	e->ca_file = ca;
	e->sm_ca_file = sm_ca;
	return e;
}

/* The last settings using e are gone: while ternd runs, its remote
 * retires (its idle sessions QUIT first); at exit it is freed. */
static void
qs_engine_drop(struct qengine *e, bool running)
{
	if (e == NULL || --e->refs > 0)
		return;
	if (running)
		remote_retire(e->remote);
	else
		remote_free(e->remote);
	SSL_CTX_free(e->mx_ctx);
	SSL_CTX_free(e->sts_ctx);
	free(e);
}

struct qsettings *
qsettings_new(const struct qsettings_world *w, const struct conf *cf,
    const char *pass, const struct qsettings *prev, char *err, size_t errlen)
{
	struct qsettings *st = xcalloc(1, sizeof(*st));

	if (pass == NULL)
		pass = "";
	if (str_copy(st->pass, sizeof(st->pass), pass, strlen(pass)) != 0) {
		str_fmt_cut(err, errlen, "the smarthost password is too long");
		free(st);
		return NULL;
	}
	st->conf = cf;
	qs_retry(&st->retry, cf);
	if (qs_engine_same(prev, cf, st->pass)) {
		st->eng = prev->eng;
	} else if ((st->eng = qs_engine_new(
			w, cf, st->pass, prev, err, errlen)) == NULL) {
		explicit_bzero(st->pass, sizeof(st->pass));
		free(st);
		return NULL;
	} else {
		st->new_engine = true;
	}
	st->eng->refs++;
	st->remote = st->eng->remote;
	st->new_store = st->new_engine && st->eng->new_store;
	return st;
}

static void
qs_free(struct qsettings *st, bool running)
{
	if (st == NULL)
		return;
	qs_engine_drop(st->eng, running);
	explicit_bzero(st->pass, sizeof(st->pass));
	free(st);
}

void
qsettings_free(struct qsettings *st)
{
	qs_free(st, false);
}

void
qsettings_retire(struct qsettings *st)
{
	qs_free(st, true);
}

bool
qsettings_retry_differs(const struct qsettings *a, const struct qsettings *b)
{
	return a->retry.first != b->retry.first ||
	       a->retry.max_interval != b->retry.max_interval ||
	       a->retry.lifetime != b->retry.lifetime ||
	       a->retry.delay_warning != b->retry.delay_warning;
}

int
qsettings_password_read(
    const char *path, char *out, size_t outlen, char *err, size_t errlen)
{
	FILE *f;
	int e;

	out[0] = '\0';
	if ((f = fopen(path, "re")) == NULL) {
		e = errno;
		/* says so when the sandbox is what refuses it */
		if (sandbox_readable(path, false, err, errlen) == 0)
			str_fmt_cut(err, errlen, "%s: %s", path, strerror(e));
		errno = e;
		return -1;
	}
	if (fgets(out, (int)outlen, f) == NULL)
		out[0] = '\0';
	(void)fclose(f);
	out[strcspn(out, "\r\n")] = '\0';
	if (out[0] == '\0') {
		str_fmt_cut(err, errlen,
		    "%s: empty (the password is its "
		    "first line)",
		    path);
		errno = 0;
		return -1;
	}
	return 0;
}
