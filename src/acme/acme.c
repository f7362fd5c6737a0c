/*
 * acme: the parsers of an ACME server's answers and the state machine of
 * one order (acme.h).  Pure: the caller sends, waits and serves.
 *
 * Invariants: every URL, nonce and token kept is checked to be safe inside
 * a JSON string without escaping (no '"', '\\' or control octet; URLs are
 * https:, tokens and nonces base64url), since jws.c writes them as they
 * are; every copy is bounded and a longer value fails the parse.  The
 * machine never sends without a nonce and never polls more than
 * ACME_POLLS_MAX times per order.
 */
#include <string.h>
#include <strings.h>
#include <time.h>

#include "acme/acme.h"
#include "util/json.h"

#define SM_ERR_MAX 600

static const struct json_limits acme_json_limits = {ACME_JSON_MAX, 16, 4096};

/* ---- small checks and copies -------------------------------------------- */

static bool
acme_b64url_str(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') ||
			(s[i] >= 'a' && s[i] <= 'z') ||
			(s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
			s[i] == '_'))
			return false;
	return i > 0;
}

/* Text that can go into a JSON string as it is. */
static bool
acme_json_safe(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == '"' || *s == '\\' ||
		    *s == 0x7f)
			return false;
	return true;
}

static int
acme_copy_url(char *dst, const struct json_node *obj, const char *key,
    char *err, size_t errlen)
{
	const char *v = json_get_str(obj, key);

	if (v == NULL || strncmp(v, "https://", 8) != 0 || !acme_json_safe(v) ||
	    str_copy(dst, ACME_URL_MAX + 1, v, strlen(v)) != 0) {
		str_fmt_cut(err, errlen,
		    "\"%s\" missing, too long or not an "
		    "https: URL",
		    key);
		return -1;
	}
	return 0;
}

static enum acme_status
acme_status_of(const char *s)
{
	static const struct {
		const char *name;
		enum acme_status st;
	} names[] = {
	    {"pending", ACME_ST_PENDING},
	    {"ready", ACME_ST_READY},
	    {"processing", ACME_ST_PROCESSING},
	    {"valid", ACME_ST_VALID},
	    {"invalid", ACME_ST_INVALID},
	    {"deactivated", ACME_ST_INVALID},
	    {"expired", ACME_ST_INVALID},
	    {"revoked", ACME_ST_INVALID},
	};
	size_t i;

	for (i = 0; s != NULL && i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(s, names[i].name) == 0)
			return names[i].st;
	return ACME_ST_UNKNOWN;
}

/* The document's root object, or NULL with err. */
static struct json_doc *
acme_json(const char *in, size_t len, const struct json_node **root_out,
    char *err, size_t errlen)
{
	struct json_doc *d =
	    json_parse(in, len, &acme_json_limits, err, errlen);

	if (d == NULL)
		return NULL;
	*root_out = json_root(d);
	if ((*root_out)->type != JSON_OBJECT) {
		str_fmt_cut(err, errlen, "not a JSON object");
		json_free(d);
		return NULL;
	}
	return d;
}

/* ---- parsers ------------------------------------------------------------- */

int
acme_directory_parse(const char *in, size_t len, struct acme_directory *out,
    char *err, size_t errlen)
{
	const struct json_node *root;
	struct json_doc *d = acme_json(in, len, &root, err, errlen);
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (d == NULL)
		return -1;
	if (acme_copy_url(out->new_nonce, root, "newNonce", err, errlen) == 0 &&
	    acme_copy_url(out->new_account, root, "newAccount", err, errlen) ==
		0 &&
	    acme_copy_url(out->new_order, root, "newOrder", err, errlen) == 0)
		rc = 0;
	json_free(d);
	return rc;
}

static int
acme_order_authz(const struct json_node *root, struct acme_order *out,
    char *err, size_t errlen)
{
	const struct json_node *a = json_get(root, "authorizations"), *e;

	if (a == NULL || a->type != JSON_ARRAY || a->len == 0) {
		str_fmt_cut(err, errlen, "no authorizations");
		return -1;
	}
	for (e = a->child; e != NULL; e = e->next) {
		if (out->nauthz == ACME_DOMAINS_MAX) {
			str_fmt_cut(err, errlen, "more than %d authorizations",
			    ACME_DOMAINS_MAX);
			return -1;
		}
		if (e->type != JSON_STRING ||
		    strncmp(e->str, "https://", 8) != 0 ||
		    !acme_json_safe(e->str) ||
		    str_copy(out->authz[out->nauthz], ACME_URL_MAX + 1, e->str,
			e->len) != 0) {
			str_fmt_cut(err, errlen,
			    "an authorization URL is "
			    "not an https: URL");
			return -1;
		}
		out->nauthz++;
	}
	return 0;
}

int
acme_order_parse(const char *in, size_t len, struct acme_order *out, char *err,
    size_t errlen)
{
	const struct json_node *root;
	struct json_doc *d = acme_json(in, len, &root, err, errlen);
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (d == NULL)
		return -1;
	out->status = acme_status_of(json_get_str(root, "status"));
	if (out->status == ACME_ST_UNKNOWN)
		str_fmt_cut(err, errlen, "no known order status");
	else if (acme_order_authz(root, out, err, errlen) == 0 &&
		 acme_copy_url(out->finalize, root, "finalize", err, errlen) ==
		     0 &&
		 (json_get(root, "certificate") == NULL ||
		     acme_copy_url(out->certificate, root, "certificate", err,
			 errlen) == 0))
		rc = 0;
	json_free(d);
	return rc;
}

/* The problem of a failed challenge, for the log. */
static void
acme_chal_error(const struct json_node *ch, struct acme_authz *out)
{
	const struct json_node *e = json_get(ch, "error");
	const char *t = json_get_str(e, "type"),
		   *dt = json_get_str(e, "detail");

	if (e != NULL)
		str_fmt_cut(out->error, sizeof(out->error), "%s: %s",
		    t != NULL ? t : "?", dt != NULL ? dt : "");
}

static int
acme_authz_http01(const struct json_node *root, struct acme_authz *out,
    char *err, size_t errlen)
{
	const struct json_node *a = json_get(root, "challenges"), *c;
	const char *type, *tok;

	if (a == NULL || a->type != JSON_ARRAY) {
		str_fmt_cut(err, errlen, "no challenges");
		return -1;
	}
	for (c = a->child; c != NULL; c = c->next) {
		type = json_get_str(c, "type");
		if (type == NULL || strcmp(type, "http-01") != 0)
			continue;
		tok = json_get_str(c, "token");
		if (tok == NULL || !acme_b64url_str(tok) ||
		    str_copy(out->token, sizeof(out->token), tok,
			strlen(tok)) != 0 ||
		    acme_copy_url(out->chal_url, c, "url", err, errlen) != 0) {
			str_fmt_cut(err, errlen,
			    "http-01 challenge without "
			    "a base64url token or URL");
			return -1;
		}
		out->chal_status = acme_status_of(json_get_str(c, "status"));
		acme_chal_error(c, out);
		out->has_http01 = true;
		return 0;
	}
	return 0;
}

int
acme_authz_parse(const char *in, size_t len, struct acme_authz *out, char *err,
    size_t errlen)
{
	const struct json_node *root, *id;
	struct json_doc *d = acme_json(in, len, &root, err, errlen);
	const char *v;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (d == NULL)
		return -1;
	out->status = acme_status_of(json_get_str(root, "status"));
	id = json_get(root, "identifier");
	v = json_get_str(id, "value");
	if (out->status == ACME_ST_UNKNOWN)
		str_fmt_cut(err, errlen, "no known authorization status");
	else if (v == NULL || !acme_json_safe(v) ||
		 str_copy(out->domain, sizeof(out->domain), v, strlen(v)) != 0)
		str_fmt_cut(err, errlen, "no identifier value");
	else
		rc = acme_authz_http01(root, out, err, errlen);
	json_free(d);
	return rc;
}

int
acme_problem_parse(const char *in, size_t len, struct acme_problem *out)
{
	const struct json_node *root;
	struct json_doc *d;
	const char *t, *dt;
	char err[8];

	memset(out, 0, sizeof(*out));
	if ((d = acme_json(in, len, &root, err, sizeof(err))) == NULL)
		return -1;
	t = json_get_str(root, "type");
	dt = json_get_str(root, "detail");
	if (t != NULL)
		str_fmt_cut(out->type, sizeof(out->type), "%s", t);
	if (dt != NULL)
		str_fmt_cut(out->detail, sizeof(out->detail), "%s", dt);
	json_free(d);
	return t != NULL ? 0 : -1;
}

int
acme_retry_after_parse(
    const char *v, size_t len, int64_t now, unsigned *secs_out)
{
	char tmp[64];
	struct tm tm;
	const char *end;
	uint64_t n;
	int64_t t;

	while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	while (len > 0 && (*v == ' ' || *v == '\t'))
		v++, len--;
	if (len > 0 && str_to_u64(v, len, &n) == 0) {
		*secs_out = n > UINT32_MAX ? UINT32_MAX : (unsigned)n;
		return 0;
	}
	/* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
	if (len != 29 || str_copy(tmp, sizeof(tmp), v, len) != 0)
		return -1;
	memset(&tm, 0, sizeof(tm));
	end = strptime(tmp, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (end == NULL || *end != '\0')
		return -1;
	t = (int64_t)timegm(&tm);
	*secs_out = t <= now		   ? 0
		    : t - now > UINT32_MAX ? UINT32_MAX
					   : (unsigned)(t - now);
	return 0;
}

/* ---- the state machine --------------------------------------------------- */

enum sm_step {
	SM_DIR,
	SM_NONCE,
	SM_ACCOUNT,
	SM_ORDER,
	SM_AUTHZ,
	SM_PUBLISH,
	SM_CHALLENGE,
	SM_POLL_AUTHZ,
	SM_POLL_READY,
	SM_FINALIZE,
	SM_POLL_VALID,
	SM_CERT,
	SM_DONE,
	SM_FAIL,
};

static const char *const sm_step_names[] = {
    "directory",
    "newNonce",
    "newAccount",
    "newOrder",
    "authorization",
    "publish",
    "challenge",
    "authorization",
    "order",
    "finalize",
    "order",
    "certificate",
    "done",
    "failed",
};

struct acme_sm {
	enum sm_step step;
	EVP_PKEY *akey, *ckey;
	char *email;
	char **domains;
	size_t n;
	char directory[ACME_URL_MAX + 1];
	struct acme_directory dir;
	char nonce[ACME_NONCE_MAX + 1];
	char kid[ACME_URL_MAX + 1];
	char order_url[ACME_URL_MAX + 1];
	struct acme_order order;
	size_t i; /* the authorization or challenge at hand */
	struct acme_chal chal[ACME_DOMAINS_MAX];
	size_t chal_authz[ACME_DOMAINS_MAX]; /* its authorization */
	char chal_url[ACME_DOMAINS_MAX][ACME_URL_MAX + 1];
	size_t nchal;
	char thumb[ACME_THUMB_LEN + 1];
	unsigned polls, wait;
	bool waiting, nonce_retried, rejected;
	bool nonce_fetch; /* a HEAD newNonce between two steps */
	struct buf payload, body, chain;
	char err[SM_ERR_MAX];
};

struct acme_sm *
acme_sm_new(const char *directory, EVP_PKEY *account_key, EVP_PKEY *cert_key,
    const char *email, const char *const *domains, size_t ndomains)
{
	struct acme_sm *sm = xcalloc(1, sizeof(*sm));
	size_t i;

	sm->akey = account_key;
	sm->ckey = cert_key;
	sm->email = email != NULL ? xstrdup(email) : NULL;
	sm->n = ndomains;
	sm->domains = xcalloc(ndomains + 1, sizeof(*sm->domains));
	for (i = 0; i < ndomains; i++)
		sm->domains[i] = xstrdup(domains[i]);
	buf_init(&sm->payload, ACME_JSON_MAX);
	buf_init(&sm->body, ACME_JSON_MAX * 2);
	buf_init(&sm->chain, ACME_CHAIN_MAX);
	if (strncmp(directory, "https://", 8) != 0 ||
	    !acme_json_safe(directory) ||
	    str_copy(sm->directory, sizeof(sm->directory), directory,
		strlen(directory)) != 0)
		acme_sm_fail(sm, "the directory is not an https: URL");
	else if ((email != NULL && !acme_json_safe(email)) || ndomains == 0 ||
		 ndomains > ACME_DOMAINS_MAX)
		acme_sm_fail(sm, "bad contact or domain list");
	else if (acme_thumbprint(account_key, sm->thumb) != 0)
		acme_sm_fail(sm, "the account key has no thumbprint");
	for (i = 0; i < ndomains && sm->step != SM_FAIL; i++)
		if (!acme_json_safe(domains[i]))
			acme_sm_fail(sm, "bad domain");
	return sm;
}

void
acme_sm_free(struct acme_sm *sm)
{
	size_t i;

	if (sm == NULL)
		return;
	for (i = 0; i < sm->n; i++)
		free(sm->domains[i]);
	free(sm->domains);
	free(sm->email);
	buf_free(&sm->payload);
	buf_free(&sm->body);
	buf_free(&sm->chain);
	free(sm);
}

void
acme_sm_fail(struct acme_sm *sm, const char *why)
{
	if (sm->step == SM_FAIL)
		return;
	str_fmt_cut(
	    sm->err, sizeof(sm->err), "%s: %s", sm_step_names[sm->step], why);
	sm->step = SM_FAIL;
}

const struct acme_chal *
acme_sm_challenges(const struct acme_sm *sm, size_t *n_out)
{
	*n_out = sm->nchal;
	return sm->chal;
}

const struct buf *
acme_sm_chain(const struct acme_sm *sm)
{
	return &sm->chain;
}

const char *
acme_sm_account(const struct acme_sm *sm)
{
	return sm->kid;
}

const char *
acme_sm_error(const struct acme_sm *sm)
{
	return sm->err;
}

bool
acme_sm_rejected(const struct acme_sm *sm)
{
	return sm->rejected;
}

/* ---- answers ------------------------------------------------------------- */

/* A poll that must come again: after Retry-After, or a second. */
static void
sm_poll_later(struct acme_sm *sm, const struct acme_resp *r)
{
	unsigned w = ACME_WAIT_DEFAULT;

	if (++sm->polls > ACME_POLLS_MAX) {
		acme_sm_fail(sm, "still not done after the last poll");
		return;
	}
	if (r->retry_after != NULL &&
	    acme_retry_after_parse(
		r->retry_after, strlen(r->retry_after), r->now, &w) != 0)
		w = ACME_WAIT_DEFAULT;
	sm->wait = w > ACME_WAIT_MAX ? ACME_WAIT_MAX : w;
	sm->waiting = true;
}

/* A non-2xx answer: the problem document names what went wrong. */
static void
sm_problem(struct acme_sm *sm, const struct acme_resp *r)
{
	struct acme_problem p;
	char why[SM_ERR_MAX];

	if (acme_problem_parse(r->body, r->len, &p) == 0) {
		sm->rejected = r->status >= 400 && r->status < 500;
		str_fmt_cut(why, sizeof(why), "HTTP %ld %s: %s", r->status,
		    p.type, p.detail);
	} else {
		str_fmt_cut(why, sizeof(why), "HTTP %ld", r->status);
	}
	acme_sm_fail(sm, why);
}

static bool
sm_bad_nonce(const struct acme_resp *r)
{
	struct acme_problem p;

	return r->status == 400 &&
	       acme_problem_parse(r->body, r->len, &p) == 0 &&
	       strcmp(p.type, "urn:ietf:params:acme:error:badNonce") == 0;
}

static void
sm_on_order(struct acme_sm *sm, const struct acme_resp *r)
{
	char err[200];

	if (acme_order_parse(r->body, r->len, &sm->order, err, sizeof(err)) !=
	    0) {
		acme_sm_fail(sm, err);
		return;
	}
	switch (sm->order.status) {
	case ACME_ST_READY:
		if (sm->step == SM_POLL_READY) {
			sm->step = SM_FINALIZE;
			break;
		}
		/* finalize taken but not started yet: wait for valid */
		sm->step = SM_POLL_VALID;
		sm_poll_later(sm, r);
		break;
	case ACME_ST_VALID:
		sm->step = SM_CERT;
		if (sm->order.certificate[0] == '\0')
			acme_sm_fail(sm, "valid without a certificate URL");
		break;
	case ACME_ST_PENDING:
	case ACME_ST_PROCESSING:
		if (sm->step == SM_FINALIZE)
			sm->step = SM_POLL_VALID;
		sm_poll_later(sm, r);
		break;
	default:
		sm->rejected = true;
		acme_sm_fail(sm, "the order is invalid");
	}
}

/* The authorization answered; false (and sm failed) when it does not
 * parse. */
static bool
sm_authz(struct acme_sm *sm, const struct acme_resp *r, struct acme_authz *a)
{
	char err[200];

	if (acme_authz_parse(r->body, r->len, a, err, sizeof(err)) == 0)
		return true;
	acme_sm_fail(sm, err);
	return false;
}

static void
sm_on_authz(struct acme_sm *sm, const struct acme_resp *r)
{
	struct acme_authz a;

	if (!sm_authz(sm, r, &a))
		return;
	if (a.status == ACME_ST_VALID) {
		if (++sm->i == sm->order.nauthz)
			sm->step = sm->nchal > 0 ? SM_PUBLISH : SM_POLL_READY;
		return;
	}
	if (a.status != ACME_ST_PENDING || !a.has_http01) {
		sm->rejected = true;
		acme_sm_fail(sm, a.status != ACME_ST_PENDING
				     ? "authorization not pending"
				     : "no http-01 challenge offered");
		return;
	}
	memcpy(sm->chal[sm->nchal].token, a.token, sizeof(a.token));
	memcpy(sm->chal_url[sm->nchal], a.chal_url, sizeof(a.chal_url));
	sm->chal_authz[sm->nchal] = sm->i;
	if (acme_key_authz(a.token, sm->thumb, sm->chal[sm->nchal].keyauth,
		sizeof(sm->chal[0].keyauth)) != 0) {
		acme_sm_fail(sm, "bad token");
		return;
	}
	sm->nchal++;
	if (++sm->i == sm->order.nauthz)
		sm->step = SM_PUBLISH;
}

static void
sm_on_poll_authz(struct acme_sm *sm, const struct acme_resp *r)
{
	struct acme_authz a;
	char err[200];

	if (!sm_authz(sm, r, &a))
		return;
	if (a.status == ACME_ST_VALID) {
		if (++sm->i == sm->nchal)
			sm->step = SM_POLL_READY;
	} else if (a.status == ACME_ST_PENDING ||
		   a.status == ACME_ST_PROCESSING) {
		sm_poll_later(sm, r);
	} else {
		sm->rejected = true;
		str_fmt_cut(err, sizeof(err), "%s not validated: %s", a.domain,
		    a.error[0] != '\0' ? a.error : "invalid");
		acme_sm_fail(sm, err);
	}
}

static void
sm_on_cert(struct acme_sm *sm, const struct acme_resp *r)
{
	static const char pem[] = "-----BEGIN CERTIFICATE-----";

	if (r->len < sizeof(pem) - 1 || memcmp(r->body, pem, sizeof(pem) - 1) ||
	    r->len > ACME_CHAIN_MAX || buf_append(&sm->chain, r->body, r->len))
		acme_sm_fail(sm, "not a PEM certificate chain");
	else
		sm->step = SM_DONE;
}

static int
sm_save(char *dst, const char *v)
{
	return v != NULL && strncmp(v, "https://", 8) == 0 &&
		       acme_json_safe(v) &&
		       str_copy(dst, ACME_URL_MAX + 1, v, strlen(v)) == 0
		   ? 0
		   : -1;
}

/* A 2xx answer to the step at hand. */
static void
sm_on_ok(struct acme_sm *sm, const struct acme_resp *r)
{
	char err[200];

	switch (sm->step) {
	case SM_DIR:
		if (acme_directory_parse(
			r->body, r->len, &sm->dir, err, sizeof(err)) != 0)
			acme_sm_fail(sm, err);
		else
			sm->step = SM_NONCE;
		break;
	case SM_NONCE:
		sm->step = SM_ACCOUNT;
		break;
	case SM_ACCOUNT:
		if (sm_save(sm->kid, r->location) != 0)
			acme_sm_fail(sm, "no account URL (Location)");
		else
			sm->step = SM_ORDER;
		break;
	case SM_ORDER:
		if (sm_save(sm->order_url, r->location) != 0)
			acme_sm_fail(sm, "no order URL (Location)");
		else if (acme_order_parse(r->body, r->len, &sm->order, err,
			     sizeof(err)) != 0)
			acme_sm_fail(sm, err);
		else
			sm->step = SM_AUTHZ;
		break;
	case SM_AUTHZ:
		sm_on_authz(sm, r);
		break;
	case SM_CHALLENGE:
		if (++sm->i == sm->nchal) {
			sm->step = SM_POLL_AUTHZ;
			sm->i = 0;
		}
		break;
	case SM_POLL_AUTHZ:
		sm_on_poll_authz(sm, r);
		break;
	case SM_POLL_READY:
	case SM_FINALIZE:
	case SM_POLL_VALID:
		sm_on_order(sm, r);
		break;
	case SM_CERT:
		sm_on_cert(sm, r);
		break;
	default:
		acme_sm_fail(sm, "answer out of turn");
	}
}

static void
sm_answer(struct acme_sm *sm, const struct acme_resp *r)
{
	size_t n = r->nonce != NULL ? strlen(r->nonce) : 0;

	if (n > 0 && n <= ACME_NONCE_MAX && acme_b64url_str(r->nonce))
		memcpy(sm->nonce, r->nonce, n + 1);
	if (sm->nonce_fetch) {
		sm->nonce_fetch = false;
		if (r->status < 200 || r->status > 299)
			sm_problem(sm, r);
		else if (sm->nonce[0] == '\0')
			acme_sm_fail(sm, "no Replay-Nonce");
		return;
	}
	if (sm_bad_nonce(r) && !sm->nonce_retried) {
		sm->nonce_retried = true; /* the same request, once (6.5) */
		return;
	}
	sm->nonce_retried = false;
	if (r->status < 200 || r->status > 299) {
		sm_problem(sm, r);
		return;
	}
	if (sm->step == SM_NONCE && sm->nonce[0] == '\0')
		acme_sm_fail(sm, "no Replay-Nonce");
	else
		sm_on_ok(sm, r);
}

/* ---- requests ------------------------------------------------------------ */

static int
sm_payload_account(struct acme_sm *sm)
{
	struct buf *p = &sm->payload;

	if (sm->email == NULL)
		return buf_append_str(p, "{\"termsOfServiceAgreed\":true}");
	return buf_printf(p,
	    "{\"termsOfServiceAgreed\":true,\"contact\":[\"mailto:%s\"]}",
	    sm->email);
}

static int
sm_payload_order(struct acme_sm *sm)
{
	struct buf *p = &sm->payload;
	int rc = buf_append_str(p, "{\"identifiers\":[");
	size_t i;

	for (i = 0; rc == 0 && i < sm->n; i++)
		rc = buf_printf(p, "%s{\"type\":\"dns\",\"value\":\"%s\"}",
		    i > 0 ? "," : "", sm->domains[i]);
	return rc != 0 ? -1 : buf_append_str(p, "]}");
}

static int
sm_payload_csr(struct acme_sm *sm)
{
	int rc = buf_append_str(&sm->payload, "{\"csr\":\"");

	if (rc == 0)
		rc = acme_csr(sm->ckey, (const char *const *)sm->domains, sm->n,
		    &sm->payload);
	return rc != 0 ? -1 : buf_append_str(&sm->payload, "\"}");
}

/* The URL and payload of a POST step; NULL url on failure. */
static const char *
sm_post_target(struct acme_sm *sm, bool *want_pem)
{
	int rc = 0;

	*want_pem = false;
	switch (sm->step) {
	case SM_ACCOUNT:
		rc = sm_payload_account(sm);
		return rc == 0 ? sm->dir.new_account : NULL;
	case SM_ORDER:
		rc = sm_payload_order(sm);
		return rc == 0 ? sm->dir.new_order : NULL;
	case SM_AUTHZ:
		return sm->order.authz[sm->i];
	case SM_CHALLENGE:
		rc = buf_append_str(&sm->payload, "{}");
		return rc == 0 ? sm->chal_url[sm->i] : NULL;
	case SM_POLL_AUTHZ:
		return sm->order.authz[sm->chal_authz[sm->i]];
	case SM_POLL_READY:
	case SM_POLL_VALID:
		return sm->order_url;
	case SM_FINALIZE:
		rc = sm_payload_csr(sm);
		return rc == 0 ? sm->order.finalize : NULL;
	case SM_CERT:
		*want_pem = true;
		return sm->order.certificate;
	default:
		return NULL;
	}
}

static enum acme_act
sm_post(struct acme_sm *sm, struct acme_req *req)
{
	const char *url;
	bool pem;

	buf_reset(&sm->payload);
	buf_reset(&sm->body);
	if ((url = sm_post_target(sm, &pem)) == NULL) {
		acme_sm_fail(sm, "cannot build the request");
		return ACME_SM_FAIL;
	}
	if (acme_jws(sm->akey, sm->step == SM_ACCOUNT ? NULL : sm->kid,
		sm->nonce, url,
		sm->payload.data != NULL ? sm->payload.data : "",
		&sm->body) != 0) {
		acme_sm_fail(sm, "cannot sign the request");
		return ACME_SM_FAIL;
	}
	sm->nonce[0] = '\0'; /* used: the answer brings the next one */
	req->method = ACME_POST;
	req->url = url;
	req->body = sm->body.data;
	req->len = sm->body.len;
	req->want_pem = pem;
	return ACME_SM_SEND;
}

static enum acme_act
sm_request(struct acme_sm *sm, struct acme_req *req, unsigned *wait_out)
{
	memset(req, 0, sizeof(*req));
	if (sm->waiting) {
		sm->waiting = false;
		*wait_out = sm->wait;
		return ACME_SM_WAIT;
	}
	switch (sm->step) {
	case SM_FAIL:
		return ACME_SM_FAIL;
	case SM_DONE:
		return ACME_SM_DONE;
	case SM_DIR:
		req->method = ACME_GET;
		req->url = sm->directory;
		return ACME_SM_SEND;
	case SM_PUBLISH:
		sm->step = SM_CHALLENGE;
		sm->i = 0;
		return ACME_SM_PUBLISH;
	default:
		break;
	}
	if (sm->step == SM_NONCE || sm->nonce[0] == '\0') {
		/* no nonce left (an answer without one): ask for one */
		req->method = ACME_HEAD;
		req->url = sm->dir.new_nonce;
		sm->nonce_fetch = sm->step != SM_NONCE; /* no step's answer */
		return ACME_SM_SEND;
	}
	return sm_post(sm, req);
}

enum acme_act
acme_sm_next(struct acme_sm *sm, const struct acme_resp *resp,
    struct acme_req *req_out, unsigned *wait_out)
{
	*wait_out = 0;
	if (resp != NULL && sm->step != SM_FAIL && sm->step != SM_DONE)
		sm_answer(sm, resp);
	return sm_request(sm, req_out, wait_out);
}
