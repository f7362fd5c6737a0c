/*
 * dkim: the tag-list parser (RFC 6376 3.2), the DKIM-Signature parser
 * (3.5) and the key record parser (3.6.1), with RFC 8301's and RFC 8463's
 * rules on algorithms and key sizes.
 *
 * Everything parsed is untrusted network input (a header field, a DNS
 * answer): every copy is bounded by a named limit of dkim.h, and any
 * malformed part makes the whole list a permerror, as 3.2 and 6.1.1 ask.
 * Values are views into the caller's text until copied into struct
 * dkim_sig's fixed arrays.
 */
#include <string.h>

#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "auth/auth.h"
#include "mailauth/dkim_int.h"

static const char *const dkim_result_names[] = {
    [DKIM_NONE] = "none",
    [DKIM_PASS] = "pass",
    [DKIM_FAIL] = "fail",
    [DKIM_POLICY] = "policy",
    [DKIM_NEUTRAL] = "neutral",
    [DKIM_TEMPERROR] = "temperror",
    [DKIM_PERMERROR] = "permerror",
};

const char *
dkim_result_name(enum dkim_result r)
{
	if ((unsigned)r >=
	    sizeof(dkim_result_names) / sizeof(*dkim_result_names))
		return "permerror";
	return dkim_result_names[r];
}

const char *
dkim_alg_name(enum dkim_alg a)
{
	switch (a) {
	case DKIM_ALG_RSA_SHA1:
		return "rsa-sha1";
	case DKIM_ALG_ED25519_SHA256:
		return "ed25519-sha256";
	default:
		return "rsa-sha256";
	}
}

/* ---- tag lists --------------------------------------------------------------
 */

static bool
tg_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool
tg_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
tg_digit(char c)
{
	return c >= '0' && c <= '9';
}

static size_t
tg_skip_ws(const char *s, size_t len, size_t i)
{
	while (i < len && tg_ws(s[i]))
		i++;
	return i;
}

/* tag-name = ALPHA *ALNUMPUNC: the end of the name starting at i. */
static size_t
tg_name_end(const char *s, size_t len, size_t i)
{
	if (i >= len || !tg_alpha(s[i]))
		return i;
	i++;
	while (i < len && (tg_alpha(s[i]) || tg_digit(s[i]) || s[i] == '_'))
		i++;
	return i;
}

/* A value octet: VALCHAR, FWS, or 8-bit (UTF-8 of RFC 8616, tolerated). */
static bool
tg_value_ok(unsigned char c)
{
	return tg_ws((char)c) || (c >= 0x21 && c != ';' && c != 0x7f);
}

static bool
tg_dup(const struct dkim_tag *tags, size_t n, const char *name, size_t len)
{
	size_t k;

	for (k = 0; k < n; k++)
		if (tags[k].name_len == len &&
		    memcmp(tags[k].name, name, len) == 0)
			return true;
	return false;
}

int
dkim_tags_parse(const char *s, size_t len, struct dkim_tag *tags, size_t max,
    size_t *n_out, const char **why)
{
	size_t i = 0, n = 0, ne, vs, ve;

	*n_out = 0;
	for (;;) {
		i = tg_skip_ws(s, len, i);
		if (i == len)
			break; /* the end, or a last ';' */
		ne = tg_name_end(s, len, i);
		if (ne == i) {
			*why = "tag name expected";
			return -1;
		}
		if (tg_dup(tags, n, s + i, ne - i)) {
			*why = "duplicate tag";
			return -1;
		}
		if (n == max) {
			*why = "too many tags";
			return -1;
		}
		tags[n].name = s + i;
		tags[n].name_len = ne - i;
		i = tg_skip_ws(s, len, ne);
		if (i == len || s[i] != '=') {
			*why = "'=' expected after a tag name";
			return -1;
		}
		vs = tg_skip_ws(s, len, i + 1);
		for (i = vs; i < len && s[i] != ';'; i++)
			if (!tg_value_ok((unsigned char)s[i])) {
				*why = "control character in a tag value";
				return -1;
			}
		for (ve = i; ve > vs && tg_ws(s[ve - 1]); ve--)
			;
		tags[n].value = s + vs;
		tags[n].value_len = ve - vs;
		n++;
		if (i == len)
			break;
		i++; /* the ';' */
	}
	*n_out = n;
	return 0;
}

/* A whole tag list of at most max octets into DKIM_TAGS_MAX tags. */
static bool
tg_split(const char *s, size_t len, size_t max, struct dkim_tag *tags,
    size_t *n, const char **why)
{
	if (len > max) {
		*why = "tag list too long";
		return false;
	}
	return dkim_tags_parse(s, len, tags, DKIM_TAGS_MAX, n, why) == 0;
}

const struct dkim_tag *
dkim_tag_find(const struct dkim_tag *tags, size_t n, const char *name)
{
	size_t k, len = strlen(name);

	for (k = 0; k < n; k++)
		if (tags[k].name_len == len &&
		    memcmp(tags[k].name, name, len) == 0)
			return &tags[k];
	return NULL;
}

static bool
tg_is(const struct dkim_tag *t, const char *v)
{
	return t->value_len == strlen(v) &&
	       memcmp(t->value, v, t->value_len) == 0;
}

/* ---- base64 with folding ----------------------------------------------------
 */

int
dkim_b64_fws_decode(
    const char *s, size_t len, unsigned char *out, size_t outlen, size_t *n_out)
{
	char tmp[DKIM_SIG_FIELD_MAX];
	size_t i, n = 0;

	for (i = 0; i < len; i++) {
		if (tg_ws(s[i]))
			continue;
		if (n == sizeof(tmp))
			return -1;
		tmp[n++] = s[i];
	}
	return auth_b64_decode(tmp, n, out, outlen, n_out);
}

/* ---- values -----------------------------------------------------------------
 */

/*
 * A domain (or selector) copied lower case into out: labels of letters,
 * digits, '-' and '_' (selectors and some d= have underscores), none
 * empty.  0 or -1.
 */
static int
sg_domain(const struct dkim_tag *t, char *out, size_t outlen)
{
	size_t k;
	char c, prev = '.';

	if (t->value_len == 0 || t->value_len >= outlen)
		return -1;
	for (k = 0; k < t->value_len; k++) {
		c = t->value[k];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c == '.'
			? prev == '.'
			: !(tg_alpha(c) || tg_digit(c) || c == '-' || c == '_'))
			return -1;
		out[k] = prev = c;
	}
	if (prev == '.')
		return -1;
	out[k] = '\0';
	return 0;
}

/* Decimal digits only (1..18 of them, so it fits int64). */
static int
sg_time(const struct dkim_tag *t, int64_t *out)
{
	uint64_t v;
	size_t k;

	if (t->value_len == 0 || t->value_len > 18)
		return -1;
	for (k = 0; k < t->value_len; k++)
		if (!tg_digit(t->value[k]))
			return -1;
	if (str_to_u64(t->value, t->value_len, &v) != 0)
		return -1;
	*out = (int64_t)v;
	return 0;
}

/* l=: digits; a value past uint64 saturates (it is past any body). */
static int
sg_length(const struct dkim_tag *t, uint64_t *out)
{
	size_t k;

	if (t->value_len == 0 || t->value_len > 76) /* 3.5: 1*76DIGIT */
		return -1;
	for (k = 0; k < t->value_len; k++)
		if (!tg_digit(t->value[k]))
			return -1;
	if (str_to_u64(t->value, t->value_len, out) != 0)
		*out = UINT64_MAX;
	return 0;
}

static int
sg_alg(const struct dkim_tag *t, enum dkim_alg *out)
{
	if (tg_is(t, "rsa-sha256"))
		*out = DKIM_ALG_RSA_SHA256;
	else if (tg_is(t, "rsa-sha1"))
		*out = DKIM_ALG_RSA_SHA1;
	else if (tg_is(t, "ed25519-sha256"))
		*out = DKIM_ALG_ED25519_SHA256;
	else
		return -1;
	return 0;
}

static int
sg_canon_word(const char *p, size_t n, enum dkim_canon *out)
{
	if (n == 6 && memcmp(p, "simple", 6) == 0)
		*out = DKIM_CANON_SIMPLE;
	else if (n == 7 && memcmp(p, "relaxed", 7) == 0)
		*out = DKIM_CANON_RELAXED;
	else
		return -1;
	return 0;
}

/* c=header[/body]; the body's default is simple (3.5). */
static int
sg_canon(const struct dkim_tag *t, struct dkim_sig *s)
{
	const char *slash = memchr(t->value, '/', t->value_len);
	size_t hn = slash ? (size_t)(slash - t->value) : t->value_len;

	s->bcanon = DKIM_CANON_SIMPLE;
	if (sg_canon_word(t->value, hn, &s->hcanon) != 0)
		return -1;
	if (slash == NULL)
		return 0;
	return sg_canon_word(slash + 1, t->value_len - hn - 1, &s->bcanon);
}

/* Is one of the ':'-separated items of t's value word (case-insens.)? */
static bool
sg_list_has(const struct dkim_tag *t, const char *word)
{
	const char *p = t->value, *end = t->value + t->value_len;

	while (p <= end) {
		const char *c = memchr(p, ':', (size_t)(end - p));
		const char *e = c ? c : end, *a = p;

		while (a < e && tg_ws(*a))
			a++;
		while (e > a && tg_ws(e[-1]))
			e--;
		if (str_case_eq(a, (size_t)(e - a), word))
			return true;
		if (c == NULL)
			break;
		p = c + 1;
	}
	return false;
}

/* h=: names separated by ':' with FWS around them, copied into s->h. */
static const char *
sg_names(const struct dkim_tag *t, struct dkim_sig *s)
{
	const char *p = t->value, *end = t->value + t->value_len;
	size_t used = 0;
	bool from = false;

	s->n_names = 0;
	while (p <= end) {
		const char *c = memchr(p, ':', (size_t)(end - p));
		const char *e = c ? c : end, *a = p, *q;

		while (a < e && tg_ws(*a))
			a++;
		while (e > a && tg_ws(e[-1]))
			e--;
		if (a == e)
			return "empty name in h=";
		for (q = a; q < e; q++)
			if (*q <= ' ' || *q >= 0x7f)
				return "bad character in an h= name";
		if ((size_t)(e - a) > DKIM_FIELD_NAME_MAX)
			return "h= name too long";
		if (s->n_names == DKIM_H_NAMES_MAX)
			return "too many names in h=";
		memcpy(s->h + used, a, (size_t)(e - a));
		s->names[s->n_names] = s->h + used;
		s->names_len[s->n_names++] = (size_t)(e - a);
		used += (size_t)(e - a);
		s->h[used++] = '\0';
		from = from || str_case_eq(a, (size_t)(e - a), "from");
		if (c == NULL)
			break;
		p = c + 1;
	}
	return from ? NULL : "h= does not include From";
}

/* i= must be in d= or a subdomain of it (3.5). */
static const char *
sg_identity(const struct dkim_tag *t, struct dkim_sig *s)
{
	const char *at = NULL;
	size_t k, dl, dn = strlen(s->d);

	if (t == NULL) {
		s->i[0] = '@';
		memcpy(s->i + 1, s->d, dn + 1);
		return NULL;
	}
	if (t->value_len >= sizeof(s->i))
		return "i= too long";
	for (k = 0; k < t->value_len; k++)
		if (t->value[k] == '@')
			at = t->value + k;
	if (at == NULL)
		return "i= has no '@'";
	dl = t->value_len - (size_t)(at + 1 - t->value);
	if (!(dl == dn || (dl > dn && at[dl - dn] == '.')) ||
	    !str_case_eq(at + 1 + dl - dn, dn, s->d))
		return "i= is not in d=";
	memcpy(s->i, t->value, t->value_len);
	s->i[t->value_len] = '\0';
	return NULL;
}

/* The required tags: 3.5, and RFC 8617 4.1.2 and 4.1.3 for ARC. */
static const char *const sg_required[][7] = {
    [DKIM_KIND_SIG] = {"v", "a", "b", "bh", "d", "h", "s"},
    [DKIM_KIND_AMS] = {"i", "a", "b", "bh", "d", "h", "s"},
    [DKIM_KIND_AS] = {"i", "a", "b", "cv", "d", "s", NULL},
};

static const char *
sg_fill(enum dkim_sig_kind kind, const struct dkim_tag *tags, size_t n,
    struct dkim_sig *s)
{
	const struct dkim_tag *t;
	size_t k;

	for (k = 0; k < 7 && sg_required[kind][k] != NULL; k++)
		if (dkim_tag_find(tags, n, sg_required[kind][k]) == NULL)
			return kind == DKIM_KIND_SIG
				   ? "a required tag is missing (v, a, b, bh, "
				     "d, h, s)"
				   : "a required tag is missing";
	if (kind == DKIM_KIND_SIG && !tg_is(dkim_tag_find(tags, n, "v"), "1"))
		return "v= is not 1";
	if (sg_alg(dkim_tag_find(tags, n, "a"), &s->alg) != 0)
		return "unknown algorithm a=";
	t = dkim_tag_find(tags, n, "b");
	if (dkim_b64_fws_decode(
		t->value, t->value_len, s->b, sizeof(s->b), &s->b_len) != 0 ||
	    s->b_len == 0)
		return "b= is not base64 (or too long, or empty)";
	t = dkim_tag_find(tags, n, "bh");
	if (kind != DKIM_KIND_AS &&
	    (dkim_b64_fws_decode(t->value, t->value_len, s->bh, sizeof(s->bh),
		 &s->bh_len) != 0 ||
		s->bh_len == 0))
		return "bh= is not base64 (or too long, or empty)";
	if (sg_domain(dkim_tag_find(tags, n, "d"), s->d, sizeof(s->d)) != 0)
		return "d= is not a domain";
	if (sg_domain(dkim_tag_find(tags, n, "s"), s->s, sizeof(s->s)) != 0)
		return "s= is not a selector";
	/* 4.1.3: the seal is always relaxed, and has no c= of its own */
	if (kind == DKIM_KIND_AS)
		s->hcanon = s->bcanon = DKIM_CANON_RELAXED;
	else if ((t = dkim_tag_find(tags, n, "c")) != NULL &&
		 sg_canon(t, s) != 0)
		return "unknown canonicalization c=";
	if ((t = dkim_tag_find(tags, n, "q")) != NULL &&
	    !sg_list_has(t, "dns/txt"))
		return "q= does not offer dns/txt";
	return NULL;
}

/* ARC's i=: the instance, 1..DKIM_ARC_INSTANCE_MAX, and no AUID. */
static const char *
sg_instance(const struct dkim_tag *t, struct dkim_sig *s)
{
	int64_t v;

	if (sg_time(t, &v) != 0 || v < 1 || v > DKIM_ARC_INSTANCE_MAX)
		return "i= is not an instance (1-50)";
	s->instance = (unsigned)v;
	s->i[0] = '@';
	memcpy(s->i + 1, s->d, strlen(s->d) + 1);
	return NULL;
}

/* h= of an ARC kind: the seal has none, the AMS never signs a seal. */
static const char *
sg_names_kind(
    enum dkim_sig_kind kind, const struct dkim_tag *t, struct dkim_sig *s)
{
	const char *why;
	size_t k;

	if (kind == DKIM_KIND_AS)
		return t == NULL ? NULL : "h= is not allowed in ARC-Seal";
	if ((why = sg_names(t, s)) != NULL)
		return why;
	for (k = 0; kind == DKIM_KIND_AMS && k < s->n_names; k++)
		if (str_case_eq(s->names[k], s->names_len[k], "arc-seal"))
			return "h= of ARC-Message-Signature names ARC-Seal";
	return NULL;
}

static const char *
sg_fill_more(enum dkim_sig_kind kind, const struct dkim_tag *tags, size_t n,
    struct dkim_sig *s)
{
	const struct dkim_tag *t = dkim_tag_find(tags, n, "i");
	const char *why;

	if ((why = sg_names_kind(kind, dkim_tag_find(tags, n, "h"), s)) != NULL)
		return why;
	if ((why = kind == DKIM_KIND_SIG ? sg_identity(t, s)
					 : sg_instance(t, s)) != NULL)
		return why;
	if ((t = dkim_tag_find(tags, n, "l")) != NULL) {
		if (sg_length(t, &s->l) != 0)
			return "l= is not a number";
		s->has_l = true;
	}
	if ((t = dkim_tag_find(tags, n, "t")) != NULL) {
		if (sg_time(t, &s->t) != 0)
			return "t= is not a time";
		s->has_t = true;
	}
	if ((t = dkim_tag_find(tags, n, "x")) != NULL) {
		if (sg_time(t, &s->x) != 0)
			return "x= is not a time";
		s->has_x = true;
	}
	/* 3.5 wants x > t; x == t is accepted as dkimpy and OpenDKIM do */
	if (s->has_t && s->has_x && s->x < s->t)
		return "x= is before t=";
	return NULL;
}

enum dkim_result
dkim_sig_parse_kind(enum dkim_sig_kind kind, const char *value, size_t len,
    struct dkim_sig *out, const char **why)
{
	struct dkim_tag tags[DKIM_TAGS_MAX];
	size_t n;

	memset(out, 0, sizeof(*out));
	if (!tg_split(value, len, DKIM_SIG_FIELD_MAX, tags, &n, why))
		return DKIM_PERMERROR;
	if ((*why = sg_fill(kind, tags, n, out)) != NULL ||
	    (*why = sg_fill_more(kind, tags, n, out)) != NULL)
		return DKIM_PERMERROR;
	*why = "";
	return DKIM_PASS;
}

enum dkim_result
dkim_sig_parse(
    const char *value, size_t len, struct dkim_sig *out, const char **why)
{
	return dkim_sig_parse_kind(DKIM_KIND_SIG, value, len, out, why);
}

/* ---- key records ------------------------------------------------------------
 */

void
dkim_key_clear(struct dkim_key *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->pkey);
	memset(k, 0, sizeof(*k));
}

/* An RSA public key: SubjectPublicKeyInfo, or a bare RSAPublicKey. */
static EVP_PKEY *
ky_rsa(const unsigned char *der, size_t n)
{
	const unsigned char *p = der;
	EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, (long)n);

	if (pk != NULL &&
	    (p != der + n || EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA)) {
		EVP_PKEY_free(pk);
		return NULL;
	}
	if (pk != NULL)
		return pk;
	p = der;
	pk = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, (long)n);
	if (pk != NULL && p != der + n) {
		EVP_PKEY_free(pk);
		pk = NULL;
	}
	return pk;
}

static const char *
ky_load(const struct dkim_tag *p, struct dkim_key *k)
{
	unsigned char der[DKIM_P_MAX];
	size_t n;

	if (dkim_b64_fws_decode(p->value, p->value_len, der, sizeof(der), &n) !=
	    0)
		return "p= is not base64 (or too long)";
	if (n == 0) {
		k->revoked = true;
		return NULL;
	}
	if (k->type == DKIM_KEY_ED25519) {
		/* RFC 8463 4: the raw 32-octet public key, no ASN.1 */
		if (n != 32)
			return "p= is not an Ed25519 key";
		k->pkey =
		    EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, der, n);
		k->bits = 256;
		return k->pkey ? NULL : "p= is not an Ed25519 key";
	}
	if ((k->pkey = ky_rsa(der, n)) == NULL)
		return "p= is not an RSA key";
	k->bits = (unsigned)EVP_PKEY_get_bits(k->pkey);
	if (k->bits < DKIM_RSA_BITS_MIN)
		return "RSA key below 1024 bits (RFC 8301)";
	if (k->bits > DKIM_RSA_BITS_MAX)
		return "RSA key above 4096 bits";
	return NULL;
}

static const char *
ky_fill(const struct dkim_tag *tags, size_t n, struct dkim_key *k)
{
	const struct dkim_tag *t;

	/* 3.6.1: v=, when present, is the first tag and is DKIM1 */
	if ((t = dkim_tag_find(tags, n, "v")) != NULL &&
	    (t != &tags[0] || !tg_is(t, "DKIM1")))
		return "v= is not DKIM1 or not first";
	if ((t = dkim_tag_find(tags, n, "k")) != NULL) {
		if (tg_is(t, "ed25519"))
			k->type = DKIM_KEY_ED25519;
		else if (!tg_is(t, "rsa"))
			return "unknown key type k=";
	}
	if ((t = dkim_tag_find(tags, n, "h")) != NULL) {
		k->hashes = DKIM_KEY_HASH_LISTED;
		if (sg_list_has(t, "sha1"))
			k->hashes |= DKIM_KEY_HASH_SHA1;
		if (sg_list_has(t, "sha256"))
			k->hashes |= DKIM_KEY_HASH_SHA256;
	}
	if ((t = dkim_tag_find(tags, n, "s")) != NULL && !sg_list_has(t, "*") &&
	    !sg_list_has(t, "email"))
		return "key not for email (s=)";
	if ((t = dkim_tag_find(tags, n, "t")) != NULL) {
		k->testing = sg_list_has(t, "y");
		k->strict = sg_list_has(t, "s");
	}
	if ((t = dkim_tag_find(tags, n, "p")) == NULL)
		return "p= is missing";
	return ky_load(t, k);
}

enum dkim_result
dkim_key_parse(
    const char *txt, size_t len, struct dkim_key *out, const char **why)
{
	struct dkim_tag tags[DKIM_TAGS_MAX];
	size_t n;

	memset(out, 0, sizeof(*out));
	if (!tg_split(txt, len, DKIM_KEY_RECORD_MAX, tags, &n, why))
		return DKIM_PERMERROR;
	if ((*why = ky_fill(tags, n, out)) != NULL) {
		dkim_key_clear(out);
		return DKIM_PERMERROR;
	}
	*why = "";
	return DKIM_PASS;
}
