/*
 * qsettings: the delivery settings of one configuration (qsettings.h).
 *
 * An engine is a struct remote with the count of the settings using it.
 * Settings share the engine of the settings before them when every key
 * the engine is made from is the same (qs_engine_same): a reload that
 * changes a limit or a domain does not throw away the DNS answers, the TLS
 * sessions and the slowdown state of outbound delivery.  A new engine has
 * its own smarthost TLS context (relay.smarthost_tls, _ca_file), made
 * here, before the switch, so that a file that does not load refuses the
 * reload instead of breaking the mail after it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls/tls.h"
#include "util/util.h"
#include "server/qsettings.h"

struct qengine {
	unsigned refs; /* settings using it */
	struct remote *remote;
};

/* The keys remote_new() reads, besides [tls_policy] (no single key). */
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
    NULL,
};

static bool
qs_str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* May the engine of prev serve cf with pass? */
static bool
qs_engine_same(
    const struct qsettings *prev, const struct conf *cf, const char *pass)
{
	size_t i;

	if (prev == NULL || !qs_str_eq(prev->pass, pass) ||
	    !qs_str_eq(prev->conf->tls_policy, cf->tls_policy))
		return false;
	for (i = 0; qs_engine_keys[i] != NULL; i++)
		if (conf_key_differs(prev->conf, cf, qs_engine_keys[i]))
			return false;
	return true;
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
	*out =
	    tls_client_ctx_store(cf->relay_smarthost_tls == CONF_SMTLS_VERIFY,
		sm_file != NULL ? sm_file : cf->tls_ca_file,
		sm_file != NULL ? NULL : cf->tls_ca_path, err, errlen);
	return *out != NULL ? 0 : -1;
}

static struct qengine *
qs_engine_new(const struct qsettings_world *w, const struct conf *cf,
    const char *pass, char *err, size_t errlen)
{
	struct remote_conf rc = {0};
	struct qengine *e;
	struct remote *r;
	SSL_CTX *sm_ctx;

	if (qs_smarthost_ctx(cf, &sm_ctx, err, errlen) != 0)
		return NULL;
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
	rc.sts = w->sts;
	rc.sts_ctx = w->sts_ctx;
	rc.tlsrpt = w->tlsrpt;
	rc.timeout_connect = 30;
	rc.timeout_command = 300;
	rc.dnssec = cf->dns_dnssec;
	rc.tls_policy = cf->tls_policy;
	r = remote_new(w->base, w->dns, w->client_ctx, &rc);
	SSL_CTX_free(sm_ctx); /* remote_new took its own reference */
	if (r == NULL) {
		str_fmt_cut(err, errlen, "bad relay settings (see above)");
		return NULL;
	}
	e = xcalloc(1, sizeof(*e));
	e->remote = r;
	return e;
}

static void
qs_engine_drop(struct qengine *e)
{
	if (e == NULL || --e->refs > 0)
		return;
	remote_free(e->remote);
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
	} else if ((st->eng = qs_engine_new(w, cf, st->pass, err, errlen)) ==
		   NULL) {
		explicit_bzero(st->pass, sizeof(st->pass));
		free(st);
		return NULL;
	} else {
		st->new_engine = true;
	}
	st->eng->refs++;
	st->remote = st->eng->remote;
	return st;
}

void
qsettings_free(struct qsettings *st)
{
	if (st == NULL)
		return;
	qs_engine_drop(st->eng);
	explicit_bzero(st->pass, sizeof(st->pass));
	free(st);
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

	out[0] = '\0';
	if ((f = fopen(path, "re")) == NULL) {
		str_fmt_cut(err, errlen, "%s: %s", path, strerror(errno));
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
		return -1;
	}
	return 0;
}
