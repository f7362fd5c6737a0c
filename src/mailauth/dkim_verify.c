/*
 * dkim_verify: the verifier of RFC 6376 6, one message at a time.
 *
 * dkim_verify_new() parses the first DKIM_SIG_CHECKED signatures (the
 * rest are counted, never parsed: 100 signatures cost no more than 5) and
 * settles at once the ones that need no key: malformed (permerror),
 * rsa-sha1 (policy, RFC 8301 3.1) and expired (fail).  The others wait
 * for their key record; dkim_verify_key() then checks the record against
 * the signature, hashes the body and the header and runs the public key
 * operation.  A DNS failure is a temperror and nothing else: the message
 * might verify in a minute.
 */
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "auth/auth.h"
#include "mailauth/dkim_int.h"

struct vf_sig {
	struct dkim_sig sig;
	size_t field; /* index into msg.f */
	bool pending; /* waiting for its key */
	char query[2 * DKIM_DOMAIN_MAX + 16];
	struct dkim_sig_result res;
};

struct dkim_verify {
	struct dkim_msg msg;
	struct vf_sig sigs[DKIM_SIG_CHECKED];
	size_t n, skipped;
	int64_t now;
};

static void
vf_settle(struct vf_sig *s, enum dkim_result r, const char *why)
{
	s->res.result = r;
	s->pending = false;
	str_fmt_cut(s->res.reason, sizeof(s->res.reason), "%s", why);
}

/* d, s, i and b's first characters for the results (RFC 6008). */
static void
vf_describe(struct vf_sig *s, const char *value, size_t len)
{
	struct dkim_tag tags[DKIM_TAGS_MAX];
	const char *why;
	size_t n, k, j;

	memcpy(s->res.d, s->sig.d, sizeof(s->res.d));
	memcpy(s->res.s, s->sig.s, sizeof(s->res.s));
	memcpy(s->res.i, s->sig.i, sizeof(s->res.i));
	s->res.alg = s->sig.alg;
	s->res.has_l = s->sig.has_l;
	s->res.l = s->sig.l;
	if (dkim_tags_parse(value, len, tags, DKIM_TAGS_MAX, &n, &why) != 0)
		return;
	for (k = 0; k < n; k++) {
		if (tags[k].name_len != 1 || tags[k].name[0] != 'b')
			continue;
		for (j = 0; j < tags[k].value_len && strlen(s->res.b8) < 8; j++)
			if (tags[k].value[j] > ' ')
				s->res.b8[strlen(s->res.b8)] = tags[k].value[j];
	}
}

static void
vf_open(struct dkim_verify *v, struct vf_sig *s)
{
	const struct dkim_field *f = &v->msg.f[s->field];
	const char *fp = v->msg.p + f->off;
	const char *colon = memchr(fp, ':', f->len);
	const char *why;
	size_t vlen = f->len - (size_t)(colon + 1 - fp);

	if (v->msg.overflow) {
		vf_settle(s, DKIM_PERMERROR, "too many header fields");
		return;
	}
	if (dkim_sig_parse(colon + 1, vlen, &s->sig, &why) != DKIM_PASS) {
		vf_settle(s, DKIM_PERMERROR, why);
		return;
	}
	vf_describe(s, colon + 1, vlen);
	if (s->sig.alg == DKIM_ALG_RSA_SHA1) {
		vf_settle(
		    s, DKIM_POLICY, "rsa-sha1 is not accepted (RFC 8301)");
		return;
	}
	if (s->sig.has_x && s->sig.x < v->now) {
		vf_settle(s, DKIM_FAIL, "signature expired (x=)");
		return;
	}
	if (str_fmt(s->query, sizeof(s->query), "%s._domainkey.%s", s->sig.s,
		s->sig.d) != 0) {
		vf_settle(s, DKIM_PERMERROR, "key name too long");
		return;
	}
	s->pending = true;
}

struct dkim_verify *
dkim_verify_new(const char *msg, size_t len, int64_t now)
{
	struct dkim_verify *v = xcalloc(1, sizeof(*v));
	size_t k;

	v->now = now;
	dkim_msg_index(&v->msg, msg, len);
	for (k = 0; k < v->msg.n; k++) {
		if (!dkim_field_is(&v->msg, k, "DKIM-Signature", 14))
			continue;
		if (v->n == DKIM_SIG_CHECKED) {
			v->skipped++;
			continue;
		}
		v->sigs[v->n].field = k;
		vf_open(v, &v->sigs[v->n]);
		v->n++;
	}
	return v;
}

void
dkim_verify_free(struct dkim_verify *v)
{
	free(v);
}

size_t
dkim_verify_count(const struct dkim_verify *v)
{
	return v->n;
}

size_t
dkim_verify_skipped(const struct dkim_verify *v)
{
	return v->skipped;
}

const char *
dkim_verify_query(const struct dkim_verify *v, size_t i)
{
	if (i >= v->n || !v->sigs[i].pending)
		return NULL;
	return v->sigs[i].query;
}

const struct dkim_sig_result *
dkim_verify_result(const struct dkim_verify *v, size_t i)
{
	return i < v->n ? &v->sigs[i].res : NULL;
}

/* ---- one signature against its key
 * ------------------------------------------- */

const char *
dkim_key_fits(const struct dkim_sig *s, const struct dkim_key *k)
{
	const char *at = strrchr(s->i, '@');

	if (k->revoked)
		return "key revoked (empty p=)";
	if ((s->alg == DKIM_ALG_ED25519_SHA256) !=
	    (k->type == DKIM_KEY_ED25519))
		return "key type does not match a=";
	if (k->hashes != 0 && !(k->hashes & DKIM_KEY_HASH_SHA256))
		return "key's h= does not allow sha256";
	if (k->strict && (at == NULL || strcasecmp(at + 1, s->d) != 0))
		return "key's t=s needs i= in d= itself";
	return NULL;
}

static enum dkim_result
vf_body(const struct dkim_msg *m, const struct dkim_sig *sig,
    uint64_t *body_len, const char **why)
{
	unsigned char bh[EVP_MAX_MD_SIZE];
	unsigned n;

	if (dkim_body_hash(m, sig->bcanon, EVP_sha256(), sig->has_l, sig->l, bh,
		&n, body_len) != 0) {
		*why = "hashing failed";
		return DKIM_TEMPERROR;
	}
	/* 6.1.3: a body shorter than l= fails (it was cut, or l= lies) */
	if (sig->has_l && sig->l > *body_len) {
		*why = "l= is beyond the body";
		return DKIM_FAIL;
	}
	if (n != sig->bh_len || CRYPTO_memcmp(bh, sig->bh, n) != 0) {
		*why = "body hash did not verify";
		return DKIM_FAIL;
	}
	return DKIM_PASS;
}

/* RFC 8463 3: Ed25519 signs the SHA-256 of the header input, not the
 * input itself. */
int
dkim_pk_verify(EVP_PKEY *pk, enum dkim_alg alg, const struct buf *data,
    const unsigned char *sig, size_t sig_len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char h[32];
	int ok = -1;

	if (ctx == NULL)
		return -1;
	if (alg == DKIM_ALG_ED25519_SHA256) {
		if (EVP_Digest(data->data, data->len, h, NULL, EVP_sha256(),
			NULL) == 1 &&
		    EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pk) == 1)
			ok = EVP_DigestVerify(ctx, sig, sig_len, h, sizeof(h));
	} else if (EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pk) ==
		   1) {
		ok = EVP_DigestVerify(ctx, sig, sig_len,
		    (const unsigned char *)data->data, data->len);
	}
	EVP_MD_CTX_free(ctx);
	return ok == 1 ? 0 : -1;
}

static enum dkim_result
vf_header(const struct dkim_msg *m, size_t field, const struct dkim_sig *sig,
    EVP_PKEY *pk, const char **why)
{
	const struct dkim_field *f = &m->f[field];
	struct buf fb, data;
	enum dkim_result r = DKIM_FAIL;

	buf_init(&fb, DKIM_SIG_FIELD_MAX + 64);
	/* each field is hashed at most once: bounded by the header section */
	buf_init(&data, 2 * m->body_off + 2 * DKIM_SIG_FIELD_MAX + 64);
	*why = "signature did not verify";
	if (dkim_strip_b(m->p + f->off, f->len, &fb) != 0 ||
	    dkim_header_input(m, sig->hcanon, sig->names, sig->names_len,
		sig->n_names, fb.data, fb.len, &data) != 0) {
		*why = "header too large to hash";
		r = DKIM_PERMERROR;
	} else if (dkim_pk_verify(pk, sig->alg, &data, sig->b, sig->b_len) ==
		   0) {
		*why = "";
		r = DKIM_PASS;
	}
	buf_free(&fb);
	buf_free(&data);
	return r;
}

enum dkim_result
dkim_sig_check(const struct dkim_msg *m, size_t field,
    const struct dkim_sig *sig, const struct dkim_key *k,
    uint64_t *body_len_out, const char **why)
{
	enum dkim_result r;

	*body_len_out = 0;
	if ((*why = dkim_key_fits(sig, k)) != NULL)
		return DKIM_PERMERROR;
	if ((r = vf_body(m, sig, body_len_out, why)) != DKIM_PASS)
		return r;
	return vf_header(m, field, sig, k->pkey, why);
}

static void
vf_with_key(struct dkim_verify *v, struct vf_sig *s, const struct dkim_key *k)
{
	const char *why;
	enum dkim_result r;

	s->res.bits = k->bits;
	s->res.testing = k->testing;
	r = dkim_sig_check(
	    &v->msg, s->field, &s->sig, k, &s->res.body_len, &why);
	vf_settle(s, r, why);
}

enum dkim_result
dkim_key_pick(enum dkim_dns status, const char *const *txt,
    const size_t *txt_len, size_t n, struct dkim_key *k, const char **why)
{
	const char *w;
	size_t j;

	if (status == DKIM_DNS_TEMP) {
		*why = "key lookup failed for now";
		return DKIM_TEMPERROR;
	}
	*why = "no key record";
	if (status != DKIM_DNS_OK || n == 0)
		return DKIM_PERMERROR;
	for (j = 0; j < n; j++) {
		if (dkim_key_parse_cached(txt[j], txt_len[j], k, &w) ==
		    DKIM_PASS)
			return DKIM_PASS;
		if (j == 0)
			*why = w;
	}
	return DKIM_PERMERROR;
}

void
dkim_verify_key(struct dkim_verify *v, size_t i, enum dkim_dns status,
    const char *const *txt, const size_t *txt_len, size_t n)
{
	struct dkim_key k;
	enum dkim_result r;
	const char *why;

	if (i >= v->n || !v->sigs[i].pending)
		return;
	r = dkim_key_pick(status, txt, txt_len, n, &k, &why);
	if (r != DKIM_PASS) {
		vf_settle(&v->sigs[i], r, why);
		return;
	}
	vf_with_key(v, &v->sigs[i], &k);
	dkim_key_clear(&k);
}
