/*
 * arc: RFC 8617's chain, read, validated and sealed.
 *
 * Reading (ar_scan) groups the ARC fields by instance without trusting
 * them: a field whose i= cannot be read, an instance outside 1..50, two
 * fields of one kind in one instance, a gap, a field longer than
 * ARC_FIELD_MAX all make the chain malformed (5.2 step 2), and the highest
 * instance seen is kept even then, so a sealer knows which instance comes
 * next.  The AAR's text after "i=N;" is not judged: it is what an earlier
 * hop said, and only its bytes are signed.
 *
 * Validation follows 5.2 in order: no set is "none"; a malformed chain or
 * a newest seal with cv=fail is "fail" with no lookup made; then the
 * newest AMS (a DKIM signature with i= as instance), the older AMSs for
 * oldest-pass, and every AS from the newest down.  The AS of instance k
 * signs, relaxed, the AAR, AMS and AS of each instance 1..k in that order,
 * its own b= emptied and without its last CRLF (5.1.1): the canonical
 * sets are made once, and seal k hashes their first part up to its own.
 *
 * Everything DKIM already does (tags, canonicalisation, keys, body hash,
 * the public key operations, signing and folding) is dkim_int.h's.
 */
#include <string.h>

#include "mailauth/arc.h"
#include "mailauth/dkim_int.h"

enum { AR_AAR = 0, AR_AMS, AR_AS, AR_KINDS };

static const char *const ar_field_names[AR_KINDS] = {
    "ARC-Authentication-Results",
    "ARC-Message-Signature",
    "ARC-Seal",
};

#define AR_NOFIELD ((size_t)-1)

/* What the scan of the header section found. */
struct ar_chain {
	struct dkim_msg msg;
	size_t slot[ARC_INSTANCE_MAX + 1][AR_KINDS]; /* field index by i= */
	int cv[ARC_INSTANCE_MAX + 1]; /* each AS's cv=, -1: unknown */
	unsigned n;		      /* the highest instance seen */
	const char *why;	      /* NULL: well formed so far */
	bool newest_fail;	      /* the AS of instance n says cv=fail */
};

/* One set, parsed (validation only). */
struct ar_set {
	struct dkim_sig ams, as;
	enum arc_cv cv;
	size_t ams_key, as_key; /* into arc_verify.keys */
};

struct ar_key {
	char name[2 * DKIM_DOMAIN_MAX + 16];
	bool answered;
	enum dkim_result r; /* DKIM_PASS: key is good */
	const char *why;
	struct dkim_key key;
};

struct arc_verify {
	struct ar_chain c;
	struct ar_set *sets; /* sets[k - 1] is instance k */
	struct ar_key *keys;
	size_t nkeys;
	int64_t now;
	bool settled; /* the outcome is final */
	struct arc_outcome out;
};

static const char *const ar_cv_names[] = {"none", "pass", "fail"};

const char *
arc_result_name(enum arc_result r)
{
	return (unsigned)r <= ARC_FAIL ? ar_cv_names[r] : "fail";
}

const char *
arc_cv_name(enum arc_cv cv)
{
	return (unsigned)cv <= ARC_CV_FAIL ? ar_cv_names[cv] : "fail";
}

/* ---- reading ----------------------------------------------------------------
 */

static bool
ar_fws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int
ar_kind(const struct dkim_msg *m, size_t k)
{
	int i;

	for (i = 0; i < AR_KINDS; i++)
		if (dkim_field_is(
			m, k, ar_field_names[i], strlen(ar_field_names[i])))
			return i;
	return -1;
}

/* 1..50 from digits p[0..n), or 0. */
static unsigned
ar_number(const char *p, size_t n)
{
	unsigned v = 0;
	size_t k;

	if (n == 0 || n > 2)
		return 0;
	for (k = 0; k < n; k++) {
		if (p[k] < '0' || p[k] > '9')
			return 0;
		v = v * 10 + (unsigned)(p[k] - '0');
	}
	return v <= ARC_INSTANCE_MAX ? v : 0;
}

/* AAR: "i=N;" before the A-R payload (RFC 8617 4.1.1).  0: unreadable. */
static unsigned
ar_aar_instance(const char *v, size_t len)
{
	size_t i = 0, s;

	while (i < len && ar_fws(v[i]))
		i++;
	if (i == len || v[i++] != 'i')
		return 0;
	while (i < len && ar_fws(v[i]))
		i++;
	if (i == len || v[i++] != '=')
		return 0;
	while (i < len && ar_fws(v[i]))
		i++;
	for (s = i; i < len && v[i] >= '0' && v[i] <= '9'; i++)
		;
	{
		size_t e = i;

		while (i < len && ar_fws(v[i]))
			i++;
		if (i == len || v[i] != ';')
			return 0;
		return ar_number(v + s, e - s);
	}
}

/*
 * AMS, AS: i= from the tag list (0: unreadable), and the seal's cv= into
 * *cv_out (-1 when absent or not none, pass or fail).
 */
static unsigned
ar_sig_instance(const char *v, size_t len, int *cv_out)
{
	struct dkim_tag tags[DKIM_TAGS_MAX];
	const struct dkim_tag *t, *cv;
	const char *why;
	size_t n;
	int k;

	*cv_out = -1;
	if (dkim_tags_parse(v, len, tags, DKIM_TAGS_MAX, &n, &why) != 0 ||
	    (t = dkim_tag_find(tags, n, "i")) == NULL)
		return 0;
	cv = dkim_tag_find(tags, n, "cv");
	for (k = 0; cv != NULL && k <= ARC_CV_FAIL; k++)
		if (str_case_eq(cv->value, cv->value_len, ar_cv_names[k]))
			*cv_out = k;
	return ar_number(t->value, t->value_len);
}

/* The value of field k (after its colon) as a view. */
static const char *
ar_value(const struct dkim_msg *m, size_t k, size_t *len_out)
{
	const char *f = m->p + m->f[k].off;
	const char *colon = memchr(f, ':', m->f[k].len);

	*len_out = m->f[k].len - (size_t)(colon + 1 - f);
	return colon + 1;
}

static void
ar_bad(struct ar_chain *c, const char *why)
{
	if (c->why == NULL)
		c->why = why;
}

/* One ARC field: its instance and slot. */
static void
ar_take(struct ar_chain *c, size_t k, int kind)
{
	size_t len;
	const char *p = ar_value(&c->msg, k, &len);
	int cv = -1;
	unsigned i;

	if (c->msg.f[k].len > ARC_FIELD_MAX) {
		ar_bad(c, "an ARC field is too long");
		return;
	}
	i = kind == AR_AAR ? ar_aar_instance(p, len)
			   : ar_sig_instance(p, len, &cv);
	if (i == 0) {
		ar_bad(c, "an ARC field has no instance i= of 1 to 50");
		return;
	}
	if (c->slot[i][kind] != AR_NOFIELD) {
		ar_bad(c, "two ARC fields of one kind in one instance");
		return;
	}
	c->slot[i][kind] = k;
	if (kind == AR_AS)
		c->cv[i] = cv;
	if (i > c->n)
		c->n = i;
}

static void
ar_scan(struct ar_chain *c, const char *msg, size_t len)
{
	size_t k, i;
	int kind;

	dkim_msg_index(&c->msg, msg, len);
	c->n = 0;
	c->why = NULL;
	c->newest_fail = false;
	for (i = 0; i <= ARC_INSTANCE_MAX; i++)
		for (kind = 0; kind < AR_KINDS; kind++)
			c->slot[i][kind] = AR_NOFIELD;
	for (k = 0; k < c->msg.n; k++)
		if ((kind = ar_kind(&c->msg, k)) >= 0)
			ar_take(c, k, kind);
	if (c->n > 0 && c->msg.overflow)
		ar_bad(c, "too many header fields");
	/* 5.2 step 3, and what ends a chain for a sealer (5.1.2) */
	c->newest_fail = c->n > 0 && c->slot[c->n][AR_AS] != AR_NOFIELD &&
			 c->cv[c->n] == ARC_CV_FAIL;
	for (i = 1; i <= c->n; i++)
		for (kind = 0; kind < AR_KINDS; kind++)
			if (c->slot[i][kind] == AR_NOFIELD)
				ar_bad(c, "an ARC set is incomplete or missing "
					  "(5.2)");
}

/* ---- validation -------------------------------------------------------------
 */

static void
ar_settle(struct arc_verify *v, enum arc_result r, const char *why)
{
	v->out.result = r;
	v->settled = true;
	str_fmt_cut(v->out.reason, sizeof(v->out.reason), "%s", why);
}

/* The key slot for sig's query, added when new. */
static size_t
ar_key_for(struct arc_verify *v, const struct dkim_sig *s)
{
	char name[sizeof(v->keys[0].name)];
	size_t k;

	/* s= and d= hold DKIM_DOMAIN_MAX octets each: it always fits */
	if (str_fmt(name, sizeof(name), "%s._domainkey.%s", s->s, s->d) != 0)
		panic("arc: key name of %zu octets", strlen(s->d));
	for (k = 0; k < v->nkeys; k++)
		if (strcmp(v->keys[k].name, name) == 0)
			return k;
	memcpy(v->keys[v->nkeys].name, name, sizeof(name));
	return v->nkeys++;
}

/* Parse every set's two signatures (5.2 steps 2 to 4). */
static const char *
ar_parse_sets(struct arc_verify *v)
{
	const struct dkim_msg *m = &v->c.msg;
	const char *why, *val;
	size_t len;
	unsigned i;

	v->sets = xcalloc(v->c.n, sizeof(*v->sets));
	v->keys = xcalloc(2 * (size_t)v->c.n, sizeof(*v->keys));
	for (i = 1; i <= v->c.n; i++) {
		struct ar_set *s = &v->sets[i - 1];

		val = ar_value(m, v->c.slot[i][AR_AMS], &len);
		if (dkim_sig_parse_kind(
			DKIM_KIND_AMS, val, len, &s->ams, &why) != DKIM_PASS)
			return "malformed ARC-Message-Signature";
		val = ar_value(m, v->c.slot[i][AR_AS], &len);
		if (dkim_sig_parse_kind(DKIM_KIND_AS, val, len, &s->as, &why) !=
		    DKIM_PASS)
			return "malformed ARC-Seal";
		if (v->c.cv[i] < 0)
			return "ARC-Seal with an unknown cv=";
		s->cv = (enum arc_cv)v->c.cv[i];
		/* 5.2 step 4: none for the first, pass for the others */
		if (s->cv != (i == 1 ? ARC_CV_NONE : ARC_CV_PASS))
			return i == 1 ? "cv= of instance 1 is not none"
				      : "cv= of an instance above 1 is not "
					"pass";
		s->ams_key = ar_key_for(v, &s->ams);
		s->as_key = ar_key_for(v, &s->as);
	}
	return NULL;
}

struct arc_verify *
arc_verify_new(const char *msg, size_t len, int64_t now)
{
	struct arc_verify *v = xcalloc(1, sizeof(*v));
	const char *why;

	v->now = now;
	v->out.oldest_pass = -1;
	ar_scan(&v->c, msg, len);
	v->out.n = v->c.n;
	if (v->c.n == 0 && v->c.why == NULL) {
		ar_settle(v, ARC_NONE, "");
		return v;
	}
	if (v->c.why != NULL) {
		ar_settle(v, ARC_FAIL, v->c.why);
		return v;
	}
	if (v->c.newest_fail) {
		ar_settle(v, ARC_FAIL, "the newest ARC-Seal says cv=fail");
		return v;
	}
	if ((why = ar_parse_sets(v)) != NULL) {
		ar_settle(v, ARC_FAIL, why);
		v->nkeys = 0;
		return v;
	}
	memcpy(v->out.ams_d, v->sets[v->c.n - 1].ams.d, sizeof(v->out.ams_d));
	memcpy(v->out.as_d, v->sets[v->c.n - 1].as.d, sizeof(v->out.as_d));
	return v;
}

void
arc_verify_free(struct arc_verify *v)
{
	size_t k;

	if (v == NULL)
		return;
	for (k = 0; k < v->nkeys; k++)
		dkim_key_clear(&v->keys[k].key);
	free(v->keys);
	free(v->sets);
	free(v);
}

size_t
arc_verify_queries(const struct arc_verify *v)
{
	return v->settled ? 0 : v->nkeys;
}

const char *
arc_verify_query(const struct arc_verify *v, size_t k)
{
	return k < arc_verify_queries(v) ? v->keys[k].name : NULL;
}

void
arc_verify_key(struct arc_verify *v, size_t k, enum dkim_dns status,
    const char *const *txt, const size_t *txt_len, size_t n)
{
	struct ar_key *key;

	if (k >= arc_verify_queries(v) || v->keys[k].answered)
		return;
	key = &v->keys[k];
	key->answered = true;
	key->r = dkim_key_pick(status, txt, txt_len, n, &key->key, &key->why);
}

/* Can the key of slot k check sig?  DKIM_PASS, or why not. */
static enum dkim_result
ar_key_ok(const struct arc_verify *v, size_t k, const struct dkim_sig *s,
    const char **why)
{
	const struct ar_key *key = &v->keys[k];

	if (!key->answered) {
		*why = "key lookup not answered";
		return DKIM_TEMPERROR;
	}
	if (key->r != DKIM_PASS) {
		*why = key->why;
		return key->r;
	}
	if (s->alg == DKIM_ALG_RSA_SHA1) {
		*why = "rsa-sha1 is not accepted (RFC 8301)";
		return DKIM_FAIL;
	}
	if ((*why = dkim_key_fits(s, &key->key)) != NULL)
		return DKIM_PERMERROR;
	return DKIM_PASS;
}

static enum dkim_result
ar_check_ams(const struct arc_verify *v, unsigned i, const char **why)
{
	const struct ar_set *s = &v->sets[i - 1];
	enum dkim_result r;
	uint64_t blen;

	if ((r = ar_key_ok(v, s->ams_key, &s->ams, why)) != DKIM_PASS)
		return r;
	if (s->ams.has_x && s->ams.x < v->now) {
		*why = "ARC-Message-Signature expired (x=)";
		return DKIM_FAIL;
	}
	return dkim_sig_check(&v->c.msg, v->c.slot[i][AR_AMS], &s->ams,
	    &v->keys[s->ams_key].key, &blen, why);
}

/*
 * The canonical sets: each AAR, AMS, AS of 1..n, relaxed, into sets;
 * before[i] is the length of the part before the AS of instance i.
 */
static int
ar_canon_sets(
    const struct ar_chain *c, unsigned n, struct buf *sets, size_t *before)
{
	static const int order[] = {AR_AAR, AR_AMS, AR_AS};
	const struct dkim_msg *m = &c->msg;
	unsigned i;
	int j;

	for (i = 1; i <= n; i++)
		for (j = 0; j < 3; j++) {
			size_t k = c->slot[i][order[j]];

			if (before != NULL && order[j] == AR_AS)
				before[i] = sets->len;
			if (dkim_canon_header(DKIM_CANON_RELAXED,
				m->p + m->f[k].off, m->f[k].len, sets) != 0)
				return -1;
		}
	return 0;
}

static enum dkim_result
ar_check_as(const struct arc_verify *v, unsigned i, const struct buf *sets,
    const size_t *before, const char **why)
{
	const struct ar_set *s = &v->sets[i - 1];
	const struct dkim_field *f = &v->c.msg.f[v->c.slot[i][AR_AS]];
	enum dkim_result r;
	struct buf fb, data;

	if ((r = ar_key_ok(v, s->as_key, &s->as, why)) != DKIM_PASS)
		return r;
	buf_init(&fb, ARC_FIELD_MAX + 64);
	buf_init(&data, before[i] + 2 * ARC_FIELD_MAX + 64);
	r = DKIM_FAIL;
	*why = "ARC-Seal did not verify";
	if (buf_append(&data, sets->data, before[i]) != 0 ||
	    dkim_strip_b(v->c.msg.p + f->off, f->len, &fb) != 0 ||
	    dkim_header_input_self(
		DKIM_CANON_RELAXED, fb.data, fb.len, &data) != 0)
		*why = "ARC-Seal too large to hash";
	else if (dkim_pk_verify(v->keys[s->as_key].key.pkey, s->as.alg, &data,
		     s->as.b, s->as.b_len) == 0)
		r = DKIM_PASS;
	buf_free(&fb);
	buf_free(&data);
	return r;
}

/* A failed signature: settle with its instance and why. */
static void
ar_fail(struct arc_verify *v, const char *what, unsigned i, enum dkim_result r,
    const char *why)
{
	v->out.result = ARC_FAIL;
	v->out.temp = r == DKIM_TEMPERROR;
	v->settled = true;
	str_fmt_cut(
	    v->out.reason, sizeof(v->out.reason), "%s %u: %s", what, i, why);
}

/* 5.2 step 6: the oldest instance from which every AMS verifies. */
static void
ar_oldest_pass(struct arc_verify *v)
{
	const char *why;
	unsigned i;

	v->out.oldest_pass = 0;
	for (i = v->c.n - 1; i >= 1; i--)
		if (ar_check_ams(v, i, &why) != DKIM_PASS) {
			v->out.oldest_pass = (int)i + 1;
			break;
		}
}

void
arc_verify_run(struct arc_verify *v)
{
	struct buf sets;
	size_t before[ARC_INSTANCE_MAX + 1];
	enum dkim_result r;
	const char *why;
	unsigned i;

	if (v->settled)
		return;
	r = ar_check_ams(v, v->c.n, &why);
	if (r != DKIM_PASS) {
		ar_fail(v, "ARC-Message-Signature", v->c.n, r, why);
		return;
	}
	ar_oldest_pass(v);
	buf_init(&sets, (size_t)v->c.n * 3 * (2 * ARC_FIELD_MAX + 2));
	if (ar_canon_sets(&v->c, v->c.n, &sets, before) != 0) {
		buf_free(&sets);
		ar_settle(v, ARC_FAIL, "ARC sets too large to hash");
		return;
	}
	for (i = v->c.n; i >= 1; i--) {
		r = ar_check_as(v, i, &sets, before, &why);
		if (r != DKIM_PASS) {
			ar_fail(v, "ARC-Seal", i, r, why);
			break;
		}
	}
	buf_free(&sets);
	if (v->settled) {
		v->out.oldest_pass = -1;
		return;
	}
	/* 0 to 50: it always fits */
	if (str_fmt(v->out.oldest_pass_str, sizeof(v->out.oldest_pass_str),
		"%d", v->out.oldest_pass) != 0)
		panic("arc: oldest-pass %d", v->out.oldest_pass);
	ar_settle(v, ARC_PASS, "");
}

const struct arc_outcome *
arc_verify_result(const struct arc_verify *v)
{
	return &v->out;
}

enum arc_cv
arc_seal_cv(const struct arc_outcome *r)
{
	switch (r->result) {
	case ARC_NONE:
		return ARC_CV_NONE;
	case ARC_PASS:
		return ARC_CV_PASS;
	default:
		return ARC_CV_FAIL;
	}
}

void
arc_authres(const struct arc_outcome *r, const char *remote_ip,
    struct authres_result *out)
{
	memset(out, 0, sizeof(*out));
	out->method = "arc";
	out->result = arc_result_name(r->result);
	if (r->result == ARC_FAIL && r->reason[0] != '\0')
		out->reason = r->reason;
	if (r->result == ARC_PASS)
		out->props[out->nprops++] = (struct authres_prop){
		    "header", "oldest-pass", r->oldest_pass_str};
	if (remote_ip != NULL)
		out->props[out->nprops++] =
		    (struct authres_prop){"smtp", "remote-ip", remote_ip};
}

/* ---- sealing ----------------------------------------------------------------
 */

/* An authserv-id we write as a bare token (RFC 8601 2.2, a host name). */
static bool
ar_id_ok(const char *id)
{
	size_t k, n = strlen(id);

	if (n == 0 || n > AUTHRES_ID_MAX)
		return false;
	for (k = 0; k < n; k++)
		if (id[k] <= ' ' || id[k] >= 0x7f ||
		    strchr("()<>@,;:\\\"/[]?=", id[k]) != NULL)
			return false;
	return true;
}

/*
 * The resinfo text, its outer FWS trimmed, into *p / *n.  Line breaks
 * must be CRLF followed by WSP (a fold); other controls are refused.
 */
static bool
ar_results_ok(const char *r, const char **p, size_t *n)
{
	size_t len = r ? strlen(r) : 0, k;

	while (len > 0 && ar_fws(*r)) {
		r++;
		len--;
	}
	while (len > 0 && ar_fws(r[len - 1]))
		len--;
	if (len > ARC_RESULTS_MAX)
		return false;
	for (k = 0; k < len; k++) {
		unsigned char c = (unsigned char)r[k];

		if (c == '\r') {
			if (k + 2 >= len || r[k + 1] != '\n' ||
			    (r[k + 2] != ' ' && r[k + 2] != '\t'))
				return false;
			k++;
		} else if ((c < ' ' && c != '\t') || c == 0x7f) {
			return false;
		}
	}
	*p = r;
	*n = len;
	return true;
}

/* Why this chain takes no seal with cv, or NULL. */
static const char *
ar_seal_refused(const struct ar_chain *c, enum arc_cv cv)
{
	if ((unsigned)cv > ARC_CV_FAIL)
		return "unknown cv";
	if (c->newest_fail)
		return "the chain was sealed with cv=fail: nothing follows";
	if (c->n >= ARC_INSTANCE_MAX)
		return "the chain has 50 sets already";
	if (c->n == 0 && c->why == NULL && cv != ARC_CV_NONE)
		return "no ARC set on the message: cv must be none";
	if ((c->n > 0 || c->why != NULL) && cv == ARC_CV_NONE)
		return "ARC fields on the message: cv cannot be none";
	if (c->why != NULL && cv == ARC_CV_PASS)
		return "the chain is malformed: cv must be fail";
	return NULL;
}

static int
ar_seal_fields(const struct arc_seal_opts *o, const struct ar_chain *c,
    const char *msg, size_t len, struct buf *out, char *err, size_t errlen)
{
	struct dkim_sign_opts so = {
	    o->domain, o->selector, o->key, o->t, 0, NULL};
	unsigned inst = c->n + 1;
	struct dkim_sign_req ams = {
	    DKIM_KIND_AMS, &so, inst, NULL, NULL, NULL, 0};
	struct dkim_sign_req as = {
	    DKIM_KIND_AS, &so, inst, arc_cv_name(o->cv), NULL, NULL, 0};
	struct buf aar, amsf, prefix;
	const char *res;
	size_t rlen;
	int rc = -1;

	if (!ar_results_ok(o->results, &res, &rlen)) {
		str_fmt_cut(err, errlen,
		    "results text is not a folded "
		    "A-R resinfo list (or too long)");
		return -1;
	}
	buf_init(&aar, ARC_FIELD_MAX);
	buf_init(&amsf, DKIM_SIG_FIELD_MAX);
	buf_init(&prefix, ((size_t)inst * 3) * (2 * ARC_FIELD_MAX + 2));
	if (buf_printf(&aar, "ARC-Authentication-Results: i=%u; %s;", inst,
		o->authserv_id) != 0 ||
	    (rlen == 0 ? buf_append_str(&aar, " none")
		       : buf_append_str(&aar, "\r\n\t") != 0 ||
			     buf_append(&aar, res, rlen)) != 0 ||
	    buf_append_str(&aar, "\r\n") != 0) {
		str_fmt_cut(err, errlen, "AAR too long");
		goto out;
	}
	if (dkim_sign_kind(&ams, msg, len, &amsf, err, errlen) != 0)
		goto out;
	/* 5.1.2: a seal of a failed chain covers its own set only */
	if ((o->cv != ARC_CV_FAIL &&
		ar_canon_sets(c, c->n, &prefix, NULL) != 0) ||
	    dkim_canon_header(DKIM_CANON_RELAXED, aar.data, aar.len, &prefix) !=
		0 ||
	    dkim_canon_header(
		DKIM_CANON_RELAXED, amsf.data, amsf.len, &prefix) != 0) {
		str_fmt_cut(err, errlen, "ARC sets too large to seal");
		goto out;
	}
	as.prefix = &prefix;
	if (dkim_sign_kind(&as, msg, len, out, err, errlen) != 0)
		goto out;
	if (buf_append(out, amsf.data, amsf.len) != 0 ||
	    buf_append(out, aar.data, aar.len) != 0) {
		str_fmt_cut(err, errlen, "output buffer full");
		goto out;
	}
	rc = 0;
out:
	buf_free(&aar);
	buf_free(&amsf);
	buf_free(&prefix);
	return rc;
}

int
arc_seal(const struct arc_seal_opts *o, const char *msg, size_t len,
    struct buf *out, char *err, size_t errlen)
{
	struct ar_chain *c;
	const char *why;
	size_t start = out->len;
	int rc;

	if (o->authserv_id == NULL || !ar_id_ok(o->authserv_id)) {
		str_fmt_cut(err, errlen, "authserv-id is not a host name");
		return -1;
	}
	/* a first line in WSP would continue our AAR once on top */
	if (len > 0 && (msg[0] == ' ' || msg[0] == '\t')) {
		str_fmt_cut(err, errlen, "message starts with a folded line");
		return -1;
	}
	c = xmalloc(sizeof(*c));
	ar_scan(c, msg, len);
	if ((why = ar_seal_refused(c, o->cv)) != NULL) {
		str_fmt_cut(err, errlen, "%s", why);
		free(c);
		return -1;
	}
	rc = ar_seal_fields(o, c, msg, len, out, err, errlen);
	if (rc != 0) {
		out->len = start;
		if (out->data != NULL)
			out->data[start] = '\0';
	}
	free(c);
	return rc;
}
