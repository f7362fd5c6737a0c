/*
 * dkim_sign: the signer of RFC 6376 5, rsa-sha256 and ed25519-sha256
 * (RFC 8463), relaxed/relaxed, and the public key record of a key.
 *
 * h= lists each field of dkim_sign_fields once per copy present, and
 * From, Subject and Date once more than present: the extra name selects
 * no field now, so a copy added on the way (a second From above the
 * signed one, which many clients display) breaks the signature (RFC 6376
 * 8.15, "over-signing").  List-* fields are signed as they are, so a
 * list that adds its own breaks the signature as it should.
 *
 * The field is folded at DKIM_FOLD_WIDTH: tags where they fit, base64
 * anywhere (3.2 allows FWS inside base64string and around the ':' of h=).
 */
#include <string.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "auth/auth.h"
#include "mailauth/dkim_int.h"

static const struct {
	const char *name;
	bool over; /* listed once more than present */
} sn_fields[] = {
    {"From", true},
    {"To", false},
    {"Cc", false},
    {"Subject", true},
    {"Date", true},
    {"Message-ID", false},
    {"MIME-Version", false},
    {"Content-Type", false},
    {"Content-Transfer-Encoding", false},
    {"Reply-To", false},
    {"In-Reply-To", false},
    {"References", false},
};

struct sn_names {
	const char *name[DKIM_H_NAMES_MAX];
	size_t len[DKIM_H_NAMES_MAX];
	size_t n;
};

static int
sn_add(struct sn_names *h, const char *name, size_t len, size_t times)
{
	for (; times > 0; times--) {
		if (h->n == DKIM_H_NAMES_MAX)
			return -1;
		h->name[h->n] = name;
		h->len[h->n++] = len;
	}
	return 0;
}

static size_t
sn_count(const struct dkim_msg *m, const char *name, size_t len)
{
	size_t k, c = 0;

	for (k = 0; k < m->n; k++)
		c += dkim_field_is(m, k, name, len);
	return c;
}

/* List-* fields, each distinct name once per copy, in message order. */
static int
sn_lists(const struct dkim_msg *m, struct sn_names *h)
{
	size_t k, j;

	for (k = 0; k < m->n; k++) {
		const char *f = m->p + m->f[k].off;
		size_t nl = m->f[k].name_len;

		if (nl <= 5 || !str_case_eq(f, 5, "list-"))
			continue;
		for (j = 0; j < k; j++)
			if (dkim_field_is(m, j, f, nl))
				break;
		if (j < k)
			continue; /* counted with its first copy */
		if (nl > DKIM_FIELD_NAME_MAX ||
		    sn_add(h, f, nl, sn_count(m, f, nl)) != 0)
			return -1;
	}
	return 0;
}

static int
sn_choose(const struct dkim_msg *m, struct sn_names *h)
{
	size_t k, c;

	h->n = 0;
	for (k = 0; k < sizeof(sn_fields) / sizeof(*sn_fields); k++) {
		c = sn_count(m, sn_fields[k].name, strlen(sn_fields[k].name));
		if (sn_add(h, sn_fields[k].name, strlen(sn_fields[k].name),
			c + sn_fields[k].over) != 0)
			return -1;
	}
	return sn_lists(m, h);
}

/* ---- folding ----------------------------------------------------------------
 */

struct sn_fold {
	struct buf *b;
	size_t col;
	int err;
};

static void
sn_raw(struct sn_fold *f, const char *p, size_t n)
{
	if (!f->err && buf_append(f->b, p, n) != 0)
		f->err = 1;
	f->col += n;
}

/* A token that stays on one line; sp: a space before it on the line. */
static void
sn_token(struct sn_fold *f, const char *p, size_t n, bool sp)
{
	if (f->col + sp + n > DKIM_FOLD_WIDTH && f->col > 8) {
		sn_raw(f, "\r\n\t", 3);
		f->col = 8;
	} else if (sp) {
		sn_raw(f, " ", 1);
	}
	sn_raw(f, p, n);
}

/* Text that may be cut anywhere (base64): fills each line. */
static void
sn_flow(struct sn_fold *f, const char *p, size_t n)
{
	size_t room;

	while (n > 0) {
		if (f->col >= DKIM_FOLD_WIDTH) {
			sn_raw(f, "\r\n\t", 3);
			f->col = 8;
		}
		room = DKIM_FOLD_WIDTH - f->col;
		if (room > n)
			room = n;
		sn_raw(f, p, room);
		p += room;
		n -= room;
	}
}

static void
sn_tagf(struct sn_fold *f, const char *fmt, const char *v)
{
	char t[2 * DKIM_DOMAIN_MAX + 64];

	if (str_fmt(t, sizeof(t), fmt, v) != 0)
		f->err = 1;
	else
		sn_token(f, t, strlen(t), true);
}

/* "bh=...;" or "b=..." with the value flowing over lines. */
static void
sn_b64(struct sn_fold *f, const char *tag, const unsigned char *v, size_t n,
    bool semi)
{
	char enc[2 * DKIM_B_MAX];
	size_t len;

	if (auth_b64_encode(v, n, enc, sizeof(enc), &len) != 0) {
		f->err = 1;
		return;
	}
	if (*tag != '\0')
		sn_token(f, tag, strlen(tag), true);
	sn_flow(f, enc, len);
	if (semi)
		sn_raw(f, ";", 1);
}

static void
sn_header_names(struct sn_fold *f, const struct sn_names *h)
{
	char t[DKIM_FIELD_NAME_MAX + 8];
	size_t k;

	sn_token(f, "h=", 2, true);
	for (k = 0; k < h->n; k++) {
		if (str_fmt(t, sizeof(t), "%.*s%s", (int)h->len[k], h->name[k],
			k + 1 < h->n ? ":" : ";") != 0) {
			f->err = 1;
			return;
		}
		sn_token(f, t, strlen(t), false);
	}
}

static const char *const sn_field_names[] = {
    [DKIM_KIND_SIG] = "DKIM-Signature:",
    [DKIM_KIND_AMS] = "ARC-Message-Signature:",
    [DKIM_KIND_AS] = "ARC-Seal:",
};

/* The tags before a=: v= of DKIM, i= (and the seal's cv=) of ARC. */
static void
sn_lead(struct sn_fold *f, const struct dkim_sign_req *r)
{
	char num[32];

	if (r->kind == DKIM_KIND_SIG) {
		sn_tagf(f, "v=1;", "");
		return;
	}
	if (str_fmt(num, sizeof(num), "%u", r->instance) != 0)
		f->err = 1;
	else
		sn_tagf(f, "i=%s;", num);
	if (r->kind == DKIM_KIND_AS)
		sn_tagf(f, "cv=%s;", r->cv);
}

/* The field up to "b=", which the signature is computed over. */
static int
sn_template(const struct dkim_sign_req *r, enum dkim_alg alg,
    const struct sn_names *h, const unsigned char *bh, size_t bh_len,
    struct buf *out)
{
	const struct dkim_sign_opts *o = r->o;
	struct sn_fold f = {out, 0, 0};
	const char *name = sn_field_names[r->kind];
	char num[32];

	sn_raw(&f, name, strlen(name));
	sn_lead(&f, r);
	sn_tagf(&f, "a=%s;", dkim_alg_name(alg));
	if (r->kind != DKIM_KIND_AS)
		sn_tagf(&f, "c=relaxed/relaxed;%s", "");
	sn_tagf(&f, "d=%s;", o->domain);
	sn_tagf(&f, "s=%s;", o->selector);
	if (r->kind == DKIM_KIND_SIG && o->identity != NULL)
		sn_tagf(&f, "i=%s;", o->identity);
	if (str_fmt(num, sizeof(num), "%lld", (long long)o->t) != 0)
		return -1;
	sn_tagf(&f, "t=%s;", num);
	if (r->kind == DKIM_KIND_SIG && o->expire > 0) {
		if (str_fmt(num, sizeof(num), "%lld",
			(long long)(o->t + o->expire)) != 0)
			return -1;
		sn_tagf(&f, "x=%s;", num);
	}
	if (r->kind != DKIM_KIND_AS) {
		sn_header_names(&f, h);
		sn_b64(&f, "bh=", bh, bh_len, true);
	}
	sn_token(&f, "b=", 2, true);
	return f.err ? -1 : (int)f.col;
}

/* ---- the signature ----------------------------------------------------------
 */

static int
sn_sign(EVP_PKEY *key, enum dkim_alg alg, const struct buf *data,
    unsigned char *sig, size_t *sig_len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char h[32];
	int ok = 0;

	if (ctx == NULL)
		return -1;
	if (alg == DKIM_ALG_ED25519_SHA256)
		ok = EVP_Digest(data->data, data->len, h, NULL, EVP_sha256(),
			 NULL) == 1 &&
		     EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1 &&
		     EVP_DigestSign(ctx, sig, sig_len, h, sizeof(h)) == 1;
	else
		ok = EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) ==
			 1 &&
		     EVP_DigestSign(ctx, sig, sig_len,
			 (const unsigned char *)data->data, data->len) == 1;
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -1;
}

static int
sn_alg(EVP_PKEY *key, enum dkim_alg *alg, char *err, size_t errlen)
{
	int bits = EVP_PKEY_get_bits(key);

	switch (EVP_PKEY_get_base_id(key)) {
	case EVP_PKEY_ED25519:
		*alg = DKIM_ALG_ED25519_SHA256;
		return 0;
	case EVP_PKEY_RSA:
		*alg = DKIM_ALG_RSA_SHA256;
		if (bits >= DKIM_RSA_BITS_MIN && bits <= DKIM_RSA_BITS_MAX)
			return 0;
		str_fmt_cut(err, errlen, "RSA key of %d bits (%d-%d)", bits,
		    DKIM_RSA_BITS_MIN, DKIM_RSA_BITS_MAX);
		return -1;
	default:
		str_fmt_cut(err, errlen, "key is neither RSA nor Ed25519");
		return -1;
	}
}

/*
 * The header section to sign into hm: msg's own when there is no head;
 * else head and msg's header section joined in hdr (only the header
 * lines are copied, never the body, which bm indexes in place).
 */
static void
sn_index(struct dkim_msg *hm, struct dkim_msg *bm, struct buf *hdr,
    const char *head, size_t head_len, const char *msg, size_t len)
{
	dkim_msg_index(bm, msg, len);
	if (head_len == 0) {
		*hm = *bm;
		return;
	}
	if (buf_append(hdr, head, head_len) != 0 ||
	    buf_append(hdr, msg, bm->body_off) != 0) {
		hm->overflow = true;
		return;
	}
	dkim_msg_index(hm, hdr->data, hdr->len);
}

/*
 * The header hash input of r into data, the field's template (up to
 * "b=") into tmpl; the template's last column, or -1 with err.  m indexes
 * the header fields to sign, bm the body to hash (the same message, or
 * bm the client's part of a message stored in two: sn_index).
 */
static int
sn_input(const struct dkim_sign_req *r, enum dkim_alg alg,
    const struct dkim_msg *m, const struct dkim_msg *bm, struct buf *tmpl,
    struct buf *data, char *err, size_t errlen)
{
	struct sn_names h;
	unsigned char bh[EVP_MAX_MD_SIZE];
	unsigned bh_len = 0;
	uint64_t blen;
	int col;

	h.n = 0;
	if (r->kind == DKIM_KIND_AS) {
		/* RFC 8617 5.1.1: the sets, then the seal being made */
		if ((col = sn_template(r, alg, &h, bh, 0, tmpl)) < 0 ||
		    buf_append(data, r->prefix->data, r->prefix->len) != 0 ||
		    dkim_header_input_self(
			DKIM_CANON_RELAXED, tmpl->data, tmpl->len, data) != 0)
			goto fail;
		return col;
	}
	if (m->overflow || sn_choose(m, &h) != 0) {
		str_fmt_cut(err, errlen, "too many header fields to sign");
		return -1;
	}
	if (sn_count(m, "From", 4) != 1) {
		str_fmt_cut(err, errlen, "not exactly one From field");
		return -1;
	}
	if (dkim_body_hash(bm, DKIM_CANON_RELAXED, EVP_sha256(), false, 0, bh,
		&bh_len, &blen) != 0 ||
	    (col = sn_template(r, alg, &h, bh, bh_len, tmpl)) < 0 ||
	    dkim_header_input(m, DKIM_CANON_RELAXED, h.name, h.len, h.n,
		tmpl->data, tmpl->len, data) != 0)
		goto fail;
	return col;
fail:
	str_fmt_cut(err, errlen, "signing failed");
	return -1;
}

int
dkim_sign_kind(const struct dkim_sign_req *r, const char *msg, size_t len,
    struct buf *out, char *err, size_t errlen)
{
	struct dkim_msg *m = xmalloc(sizeof(*m));
	struct dkim_msg *bm = xmalloc(sizeof(*bm));
	struct buf tmpl, data, hdr;
	unsigned char sig[DKIM_B_MAX];
	size_t sig_len = sizeof(sig);
	size_t pre = r->kind == DKIM_KIND_AS ? r->prefix->len : 0;
	enum dkim_alg alg;
	int col, rc = -1;
	struct sn_fold f;

	buf_init(&tmpl, DKIM_SIG_FIELD_MAX);
	buf_init(&hdr, r->head_len + len + 1);
	sn_index(m, bm, &hdr, r->head, r->head_len, msg, len);
	/* the header hash input: the header lines twice at most (relaxed
	 * never grows them), the field, and a seal's sets */
	buf_init(&data,
	    2 * (bm->body_off + r->head_len) + 2 * DKIM_SIG_FIELD_MAX + pre);
	if (sn_alg(r->o->key, &alg, err, errlen) != 0 ||
	    (col = sn_input(r, alg, m, bm, &tmpl, &data, err, errlen)) < 0)
		goto out;
	if (sn_sign(r->o->key, alg, &data, sig, &sig_len) != 0) {
		str_fmt_cut(err, errlen, "signing failed");
		goto out;
	}
	f.b = out;
	f.col = (size_t)col;
	f.err = buf_append(out, tmpl.data, tmpl.len) != 0;
	sn_b64(&f, "", sig, sig_len, false);
	sn_raw(&f, "\r\n", 2);
	if (f.err)
		str_fmt_cut(err, errlen, "output buffer full");
	else
		rc = 0;
out:
	buf_free(&tmpl);
	buf_free(&data);
	buf_free(&hdr);
	free(m);
	free(bm);
	return rc;
}

int
dkim_sign_parts(const struct dkim_sign_opts *o, const char *head,
    size_t head_len, const char *msg, size_t len, struct buf *out, char *err,
    size_t errlen)
{
	struct dkim_sign_req r = {
	    DKIM_KIND_SIG, o, 0, NULL, NULL, head, head_len};

	return dkim_sign_kind(&r, msg, len, out, err, errlen);
}

int
dkim_sign(const struct dkim_sign_opts *o, const char *msg, size_t len,
    struct buf *out, char *err, size_t errlen)
{
	return dkim_sign_parts(o, NULL, 0, msg, len, out, err, errlen);
}

/* ---- keys -------------------------------------------------------------------
 */

EVP_PKEY *
dkim_pkey_from_pem(const char *pem, size_t len, char *err, size_t errlen)
{
	BIO *bio = len > INT32_MAX ? NULL : BIO_new_mem_buf(pem, (int)len);
	EVP_PKEY *pk = NULL;
	enum dkim_alg alg;

	if (bio == NULL) {
		str_fmt_cut(err, errlen, "out of memory");
		BIO_free(bio);
		return NULL;
	}
	pk = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (pk == NULL) {
		str_fmt_cut(err, errlen, "not a PEM private key");
		return NULL;
	}
	if (sn_alg(pk, &alg, err, errlen) != 0) {
		EVP_PKEY_free(pk);
		return NULL;
	}
	return pk;
}

int
dkim_pkey_record(EVP_PKEY *key, struct buf *out, unsigned *bits_out)
{
	unsigned char raw[DKIM_P_MAX], *p = raw;
	char enc[2 * DKIM_P_MAX];
	size_t n = sizeof(raw), elen;
	int der_len;
	bool ed = EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519;

	if (ed) {
		if (EVP_PKEY_get_raw_public_key(key, raw, &n) != 1)
			return -1;
	} else if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA) {
		der_len = i2d_PUBKEY(key, NULL);
		if (der_len <= 0 || (size_t)der_len > sizeof(raw) ||
		    i2d_PUBKEY(key, &p) != der_len)
			return -1;
		n = (size_t)der_len;
	} else {
		return -1;
	}
	if (bits_out != NULL)
		*bits_out = ed ? 256 : (unsigned)EVP_PKEY_get_bits(key);
	if (auth_b64_encode(raw, n, enc, sizeof(enc), &elen) != 0)
		return -1;
	return buf_printf(
	    out, "v=DKIM1; k=%s; p=%s", ed ? "ed25519" : "rsa", enc);
}
