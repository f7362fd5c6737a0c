/*
 * srs.c: SRS0/SRS1 addresses made and checked (srs.h has the form).
 *
 * Invariants: every input is bounded by SRS_ADDR_MAX before a byte of it
 * is hashed, so the hash input fits its stack buffer; out is written only
 * by srs_put, which leaves it "" unless the whole address fitted; the hash
 * comparison looks at every secret and every character whatever the
 * outcome, so its time says nothing of how close a forgery came.
 */
#include <stdbool.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "mailauth/srs.h"
#include "util/util.h"

static const char srs_b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
static const char srs_b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char srs_seps[] = "=+-"; /* after the tag, on input */

#define SRS_DAY 86400

/* a field of an address: a view into the caller's text */
struct srs_span {
	const char *p;
	size_t n;
};

const char *
srs_status_name(enum srs_status st)
{
	switch (st) {
	case SRS_OK:
		return "ok";
	case SRS_NOT_SRS:
		return "not_srs";
	case SRS_BAD_HASH:
		return "bad_hash";
	case SRS_EXPIRED:
		return "expired";
	case SRS_MALFORMED:
		return "malformed";
	case SRS_TOO_LONG:
		return "too_long";
	}
	return "unknown";
}

static char
srs_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/*
 * HHHH for one secret: HMAC-SHA1 over the fields lower-cased and joined
 * (libsrs2 hashes each field lower-cased, one after the other: the same
 * bytes).  The first 4 base64 characters are the first 3 digest octets.
 */
static void
srs_hash(const struct srs_secret *key, const struct srs_span *f, size_t nf,
    char out[SRS_HASH_LEN])
{
	unsigned char data[SRS_ADDR_MAX + 1], md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	size_t n = 0, i, j;

	for (i = 0; i < nf; i++)
		for (j = 0; j < f[i].n; j++) {
			if (n >= sizeof(data))
				panic("event=srs_hash error=\"input over "
				      "SRS_ADDR_MAX\"");
			data[n++] = (unsigned char)srs_lower(f[i].p[j]);
		}
	if (HMAC(EVP_sha1(), key->p, (int)key->len, data, n, md, &mdlen) ==
		NULL ||
	    mdlen < 3)
		panic("event=srs_hash error=\"HMAC-SHA1 unavailable\"");
	out[0] = srs_b64[md[0] >> 2];
	out[1] = srs_b64[((md[0] & 0x03) << 4) | (md[1] >> 4)];
	out[2] = srs_b64[((md[1] & 0x0f) << 2) | (md[2] >> 6)];
	out[3] = srs_b64[md[2] & 0x3f];
	explicit_bzero(data, n);
}

/*
 * Does hash (of SRS_HASH_LEN characters) match the fields under any
 * secret?  Case-insensitive like libsrs2 and postsrsd (a mailer may have
 * lower-cased the local part); constant time in the secrets' order and in
 * where a mismatch is.
 */
static bool
srs_hash_ok(
    const struct srs *s, const char *hash, const struct srs_span *f, size_t nf)
{
	unsigned ok = 0;
	size_t k, i;

	for (k = 0; k < s->nsecrets; k++) {
		char want[SRS_HASH_LEN];
		unsigned diff = 0;

		srs_hash(&s->secrets[k], f, nf, want);
		for (i = 0; i < SRS_HASH_LEN; i++)
			diff |= (unsigned)(unsigned char)(srs_lower(hash[i]) ^
							  srs_lower(want[i]));
		ok |= diff == 0;
	}
	return ok != 0;
}

void
srs_timestamp(time_t now, char out[3])
{
	uint64_t day = now < 0 ? 0 : (uint64_t)now / SRS_DAY;

	out[0] = srs_b32[(day >> 5) & 31];
	out[1] = srs_b32[day & 31];
	out[2] = '\0';
}

/* The day a timestamp names (0..1023), or -1 when it is not base32. */
static int
srs_timestamp_decode(const char *t)
{
	const char *a = strchr(
	    srs_b32, t[0] >= 'a' && t[0] <= 'z' ? t[0] - 'a' + 'A' : t[0]);
	const char *b = strchr(
	    srs_b32, t[1] >= 'a' && t[1] <= 'z' ? t[1] - 'a' + 'A' : t[1]);

	if (t[0] == '\0' || t[1] == '\0' || a == NULL || b == NULL)
		return -1;
	return (int)((a - srs_b32) << 5 | (b - srs_b32));
}

/* Days since the stamp, counted modulo the 1024 slots (a stamp "in the
 * future" is 1023 days old, as libsrs2 counts it). */
static bool
srs_timestamp_fresh(const struct srs *s, int then, time_t now)
{
	char t[3];
	int today, age;

	srs_timestamp(now, t);
	today = srs_timestamp_decode(t);
	age = (today - then + SRS_TIME_SLOTS) % SRS_TIME_SLOTS;
	return age <= (int)s->max_age;
}

/* out = the pieces joined; "" and -1 when they do not fit. */
static int
srs_put(char *out, size_t outlen, const struct srs_span *v, size_t nv)
{
	size_t n = 0, i;

	for (i = 0; i < nv; i++) {
		if (v[i].n >= outlen - n) {
			if (outlen > 0)
				out[0] = '\0';
			return -1;
		}
		memcpy(out + n, v[i].p, v[i].n);
		n += v[i].n;
	}
	out[n] = '\0';
	return 0;
}

/* local@domain split at the last '@'; false when either side is empty. */
static bool
srs_split(const char *addr, struct srs_span *local, struct srs_span *domain)
{
	const char *at = strrchr(addr, '@');

	if (at == NULL || at == addr || at[1] == '\0')
		return false;
	local->p = addr;
	local->n = (size_t)(at - addr);
	domain->p = at + 1;
	domain->n = strlen(at + 1);
	return true;
}

int
srs_local_is_srs(const char *local, size_t n)
{
	return n > 4 &&
	       (strncasecmp(local, "SRS0", 4) == 0 ||
		   strncasecmp(local, "SRS1", 4) == 0) &&
	       strchr(srs_seps, local[4]) != NULL && local[4] != '\0';
}

/*
 * The next '='-separated field of [p, end): *f gets it, p moves past its
 * '='.  NULL when there is no '=' (the field would be the rest) or the
 * field is empty.
 */
static const char *
srs_field(const char *p, const char *end, struct srs_span *f)
{
	const char *eq = memchr(p, '=', (size_t)(end - p));

	if (eq == NULL || eq == p)
		return NULL;
	f->p = p;
	f->n = (size_t)(eq - p);
	return eq + 1;
}

/*
 * A domain the scheme can carry inside a local part: a name (letters,
 * digits, '-', '.', and UTF-8 for SMTPUTF8), never an address literal,
 * whose brackets no dot-atom allows.
 */
static bool
srs_domain_ok(const struct srs_span *d)
{
	size_t i;

	for (i = 0; i < d->n; i++) {
		unsigned char c = (unsigned char)d->p[i];

		if (!(c >= 0x80 || (c >= 'a' && c <= 'z') ||
			(c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			c == '-' || c == '.'))
			return false;
	}
	return true;
}

/* SRS1 of an SRS1 local part: its first hop and rest kept, hash remade. */
static enum srs_status
srs_forward_srs1(const struct srs *s, const struct srs_span *local,
    const struct srs_span *at_dom, char *out, size_t outlen)
{
	const char *end = local->p + local->n, *p;
	struct srs_span hash, host, rest;
	char h[SRS_HASH_LEN];

	/* the rest is the first hop's SRS0 from its separator on */
	if ((p = srs_field(local->p + 5, end, &hash)) == NULL ||
	    (p = srs_field(p, end, &host)) == NULL || p == end ||
	    strchr(srs_seps, *p) == NULL)
		return SRS_MALFORMED;
	rest.p = p;
	rest.n = (size_t)(end - p);
	{
		struct srs_span f[] = {host, rest};

		srs_hash(&s->secrets[0], f, 2, h);
	}
	{
		struct srs_span v[] = {{"SRS1=", 5}, {h, SRS_HASH_LEN},
		    {"=", 1}, host, {"=", 1}, rest, *at_dom};

		return srs_put(out, outlen, v, 7) == 0 ? SRS_OK : SRS_TOO_LONG;
	}
}

/* SRS0 of an ordinary address, or SRS1 of an SRS0 one. */
static enum srs_status
srs_forward_plain(const struct srs *s, const struct srs_span *local,
    const struct srs_span *dom, const struct srs_span *at_dom, time_t now,
    char *out, size_t outlen)
{
	char h[SRS_HASH_LEN], t[3];

	if (srs_local_is_srs(local->p, local->n)) {
		/* an SRS0 of the first hop: its part from the separator on */
		struct srs_span rest = {local->p + 4, local->n - 4};
		struct srs_span f[] = {*dom, rest};
		struct srs_span v[] = {{"SRS1=", 5}, {h, SRS_HASH_LEN},
		    {"=", 1}, *dom, {"=", 1}, rest, *at_dom};

		srs_hash(&s->secrets[0], f, 2, h);
		return srs_put(out, outlen, v, 7) == 0 ? SRS_OK : SRS_TOO_LONG;
	}
	srs_timestamp(now, t);
	{
		struct srs_span f[] = {{t, 2}, *dom, *local};
		struct srs_span v[] = {{"SRS0=", 5}, {h, SRS_HASH_LEN},
		    {"=", 1}, {t, 2}, {"=", 1}, *dom, {"=", 1}, *local,
		    *at_dom};

		srs_hash(&s->secrets[0], f, 3, h);
		return srs_put(out, outlen, v, 9) == 0 ? SRS_OK : SRS_TOO_LONG;
	}
}

enum srs_status
srs_forward(const struct srs *s, const char *sender, time_t now, char *out,
    size_t outlen)
{
	struct srs_span local, dom, at_dom;
	char at[SRS_ADDR_MAX + 2];
	enum srs_status st;
	const char *a;

	if (outlen > 0)
		out[0] = '\0';
	if (strlen(sender) > SRS_ADDR_MAX)
		return SRS_TOO_LONG;
	if (!srs_split(sender, &local, &dom) || local.p[0] == '"' ||
	    !srs_domain_ok(&dom))
		return SRS_MALFORMED;
	if (str_fmt(at, sizeof(at), "@%s", s->domain) != 0)
		return SRS_TOO_LONG;
	at_dom.p = at;
	at_dom.n = strlen(at);
	if (local.n > 4 && strncasecmp(local.p, "SRS1", 4) == 0 &&
	    srs_local_is_srs(local.p, local.n))
		st = srs_forward_srs1(s, &local, &at_dom, out, outlen);
	else
		st = srs_forward_plain(
		    s, &local, &dom, &at_dom, now, out, outlen);
	/* RFC 5321 4.5.3.1.1: receivers may refuse a longer local part */
	if (st == SRS_OK && ((a = strrchr(out, '@')) == NULL ||
				(size_t)(a - out) > SRS_LOCAL_MAX ||
				strlen(out) > SRS_ADDR_MAX))
		st = SRS_TOO_LONG;
	if (st != SRS_OK && outlen > 0)
		out[0] = '\0';
	return st;
}

/* SRS0=HHHH=TT=domain=local: the original sender, checked. */
static enum srs_status
srs_reverse_srs0(const struct srs *s, const struct srs_span *local, time_t now,
    char *out, size_t outlen)
{
	const char *end = local->p + local->n, *p;
	struct srs_span hash, stamp, host, user;
	int then;

	if ((p = srs_field(local->p + 5, end, &hash)) == NULL ||
	    (p = srs_field(p, end, &stamp)) == NULL ||
	    (p = srs_field(p, end, &host)) == NULL || p == end ||
	    hash.n != SRS_HASH_LEN || stamp.n != 2)
		return SRS_MALFORMED;
	user.p = p;
	user.n = (size_t)(end - p);
	{
		char t[3] = {stamp.p[0], stamp.p[1], '\0'};

		if ((then = srs_timestamp_decode(t)) < 0)
			return SRS_MALFORMED;
	}
	{
		struct srs_span f[] = {stamp, host, user};

		if (!srs_hash_ok(s, hash.p, f, 3))
			return SRS_BAD_HASH;
	}
	if (!srs_timestamp_fresh(s, then, now))
		return SRS_EXPIRED;
	{
		struct srs_span v[] = {user, {"@", 1}, host};

		return srs_put(out, outlen, v, 3) == 0 ? SRS_OK : SRS_TOO_LONG;
	}
}

/* SRS1=HHHH=host==rest: the first hop's SRS0 address, checked. */
static enum srs_status
srs_reverse_srs1(
    const struct srs *s, const struct srs_span *local, char *out, size_t outlen)
{
	const char *end = local->p + local->n, *p;
	struct srs_span hash, host, rest;

	if ((p = srs_field(local->p + 5, end, &hash)) == NULL ||
	    (p = srs_field(p, end, &host)) == NULL || p == end ||
	    hash.n != SRS_HASH_LEN || strchr(srs_seps, *p) == NULL)
		return SRS_MALFORMED;
	rest.p = p;
	rest.n = (size_t)(end - p);
	{
		struct srs_span f[] = {host, rest};

		if (!srs_hash_ok(s, hash.p, f, 2))
			return SRS_BAD_HASH;
	}
	{
		struct srs_span v[] = {{"SRS0", 4}, rest, {"@", 1}, host};

		return srs_put(out, outlen, v, 4) == 0 ? SRS_OK : SRS_TOO_LONG;
	}
}

enum srs_status
srs_reverse(
    const struct srs *s, const char *addr, time_t now, char *out, size_t outlen)
{
	struct srs_span local, dom;
	enum srs_status st;

	if (outlen > 0)
		out[0] = '\0';
	if (!srs_split(addr, &local, &dom) ||
	    !str_case_eq(dom.p, dom.n, s->domain) ||
	    !srs_local_is_srs(local.p, local.n))
		return SRS_NOT_SRS;
	if (strlen(addr) > SRS_ADDR_MAX)
		return SRS_MALFORMED;
	if (local.p[3] == '0')
		st = srs_reverse_srs0(s, &local, now, out, outlen);
	else
		st = srs_reverse_srs1(s, &local, out, outlen);
	if (st != SRS_OK && outlen > 0)
		out[0] = '\0';
	return st;
}

int
srs_secrets_parse(
    const char *text, size_t len, struct srs_secret *v, size_t max)
{
	const char *p = text, *end = text + len;
	size_t n = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl != NULL ? nl : end;
		const char *next = nl != NULL ? nl + 1 : end;

		while (
		    e > p && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e > p && p[0] != '#') {
			if ((size_t)(e - p) > SRS_SECRET_MAX || n >= max)
				return -1;
			v[n].p = (const unsigned char *)p;
			v[n].len = (size_t)(e - p);
			n++;
		}
		p = next;
	}
	return (int)n;
}
