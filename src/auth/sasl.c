/*
 * sasl: base64 and the SASL PLAIN and LOGIN mechanisms, as pure code.
 *
 * What: auth_b64_decode/encode (RFC 4648 4), sasl_plain_parse (RFC 4616)
 * and the LOGIN exchange (draft-murchison-sasl-login) as a two-step state
 * machine.  No I/O, no allocation, no library beyond libc and util, so
 * the fuzzer builds it with nothing else.
 *
 * Invariants: every output is written within the length the caller gave
 * and is NUL-terminated where it is a string; a field that does not fit
 * is an error, never truncated.  A name or password handed out is valid
 * UTF-8 of 1..AUTH_FIELD_MAX octets without NUL.
 *
 * Limits: fields at most AUTH_FIELD_MAX (255) octets (RFC 4616 2), so a
 * PLAIN message is at most AUTH_PLAIN_MAX octets; anything longer is a
 * syntax error.
 *
 * Security: base64 is strict (no whitespace, no junk after padding,
 * non-zero pad bits refused) so one credential has exactly one encoding
 * and nothing is silently skipped.  Every buffer that held a password is
 * wiped on every error path here; on success the caller owns the secret
 * and wipes it (sasl_login_wipe()).  PLAIN refuses an authzid that names
 * another user instead of ignoring it: proxy authorization is not
 * supported, and accepting it quietly would let a client believe it acts
 * as someone else.  Nothing here logs.
 */
#include <string.h>

#include "auth/auth.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* base64 of "Username:" and "Password:", the challenges every client knows */
static const char login_chal_user[] = "VXNlcm5hbWU6";
static const char login_chal_pass[] = "UGFzc3dvcmQ6";

/* ---- base64 ------------------------------------------------------------- */

/* The 6-bit value of an alphabet character, or -1. */
static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * One group of four characters: how many '=' end it (0..2), or -1 if the
 * group is malformed.  Padding is allowed only when last is true.
 */
static int
b64_group(const unsigned char *g, bool last, int v[4])
{
	int pad = 0, i;

	if (last && g[3] == '=')
		pad = (g[2] == '=') ? 2 : 1;
	for (i = 0; i < 4 - pad; i++)
		if ((v[i] = b64_value(g[i])) < 0)
			return -1;
	for (; i < 4; i++)
		v[i] = 0;
	/* The bits the padding leaves unused must be zero (RFC 4648 3.5). */
	if (pad == 2 && (v[1] & 0x0f) != 0)
		return -1;
	if (pad == 1 && (v[2] & 0x03) != 0)
		return -1;
	return pad;
}

int
auth_b64_decode(const char *in, size_t len, unsigned char *out, size_t outlen,
    size_t *n_out)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t i, o = 0;

	*n_out = 0;
	if (len % 4 != 0)
		return -1;
	for (i = 0; i < len; i += 4) {
		int v[4], pad = b64_group(p + i, i + 4 == len, v);
		unsigned char b[3];
		size_t nb;

		if (pad < 0)
			return -1;
		nb = 3 - (size_t)pad;
		if (outlen - o < nb)
			return -1;
		b[0] = (unsigned char)((v[0] << 2) | (v[1] >> 4));
		b[1] = (unsigned char)(((v[1] & 0x0f) << 4) | (v[2] >> 2));
		b[2] = (unsigned char)(((v[2] & 0x03) << 6) | v[3]);
		memcpy(out + o, b, nb);
		explicit_bzero(b, sizeof(b));
		o += nb;
	}
	*n_out = o;
	return 0;
}

size_t
auth_b64_encoded_len(size_t len)
{
	return (len / 3 + (len % 3 != 0)) * 4;
}

int
auth_b64_encode(const unsigned char *in, size_t len, char *out, size_t outlen,
    size_t *n_out)
{
	size_t i, o = 0;

	*n_out = 0;
	if (outlen > 0)
		out[0] = '\0';
	/* len / 3 * 4 cannot overflow; the check keeps the sum in range */
	if (len / 3 >= (SIZE_MAX - 8) / 4 ||
	    auth_b64_encoded_len(len) >= outlen)
		return -1;
	for (i = 0; i < len; i += 3) {
		size_t left = len - i;
		unsigned v = (unsigned)in[i] << 16;

		if (left > 1)
			v |= (unsigned)in[i + 1] << 8;
		if (left > 2)
			v |= in[i + 2];
		out[o++] = b64_alphabet[(v >> 18) & 0x3f];
		out[o++] = b64_alphabet[(v >> 12) & 0x3f];
		out[o++] = left > 1 ? b64_alphabet[(v >> 6) & 0x3f] : '=';
		out[o++] = left > 2 ? b64_alphabet[v & 0x3f] : '=';
	}
	out[o] = '\0';
	*n_out = o;
	return 0;
}

/* ---- UTF-8 -------------------------------------------------------------- */

/*
 * Length of the well-formed UTF-8 sequence at s[0..n) (RFC 3629 4: no
 * overlong forms, no surrogates, nothing past U+10FFFF), or 0.  NUL is
 * refused too: no SASL field may carry one.
 */
static size_t
utf8_seq_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t len, i;

	if (c == 0)
		return 0;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0; /* overlong */
	else if (c == 0xed)
		hi = 0x9f; /* surrogates */
	else if (c == 0xf0)
		lo = 0x90; /* overlong */
	else if (c == 0xf4)
		hi = 0x8f; /* past U+10FFFF */
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

/* A SASL field: 1..AUTH_FIELD_MAX octets of UTF-8 without NUL. */
static bool
sasl_field_ok(const unsigned char *s, size_t n)
{
	size_t i = 0;

	if (n == 0 || n > AUTH_FIELD_MAX)
		return false;
	while (i < n) {
		size_t l = utf8_seq_len(s + i, n - i);

		if (l == 0)
			return false;
		i += l;
	}
	return true;
}

/* ---- PLAIN -------------------------------------------------------------- */

static void
plain_wipe(char *authzid, size_t azlen, char *authcid, size_t aclen, char *pass,
    size_t plen)
{
	explicit_bzero(authzid, azlen);
	explicit_bzero(authcid, aclen);
	explicit_bzero(pass, plen);
}

/*
 * Split msg at its NULs into the three fields.  Exactly two NULs; the
 * field views point into msg.
 */
static int
plain_split(const unsigned char *msg, size_t n, const unsigned char *f[3],
    size_t flen[3])
{
	const unsigned char *end = msg + n, *p = msg;
	int i;

	for (i = 0; i < 3; i++) {
		const unsigned char *nul = memchr(p, 0, (size_t)(end - p));

		if ((nul == NULL) != (i == 2))
			return -1; /* fewer or more than two NULs */
		f[i] = p;
		flen[i] = (size_t)((nul != NULL ? nul : end) - p);
		if (nul != NULL)
			p = nul + 1;
	}
	return 0;
}

int
sasl_plain_parse(const unsigned char *msg, size_t n, char *authzid,
    size_t azlen, char *authcid, size_t aclen, char *pass, size_t plen)
{
	const unsigned char *f[3];
	size_t fl[3];

	plain_wipe(authzid, azlen, authcid, aclen, pass, plen);
	if (n == 0 || n > AUTH_PLAIN_MAX || plain_split(msg, n, f, fl) != 0)
		return SASL_ERR_SYNTAX;
	if ((fl[0] != 0 && !sasl_field_ok(f[0], fl[0])) ||
	    !sasl_field_ok(f[1], fl[1]) || !sasl_field_ok(f[2], fl[2]))
		return SASL_ERR_SYNTAX;
	if (fl[0] != 0 && (fl[0] != fl[1] || memcmp(f[0], f[1], fl[0]) != 0))
		return SASL_ERR_AUTHZ;
	if (str_copy(authzid, azlen, (const char *)f[0], fl[0]) != 0 ||
	    str_copy(authcid, aclen, (const char *)f[1], fl[1]) != 0 ||
	    str_copy(pass, plen, (const char *)f[2], fl[2]) != 0) {
		plain_wipe(authzid, azlen, authcid, aclen, pass, plen);
		return SASL_ERR_SYNTAX;
	}
	return SASL_OK;
}

int
sasl_plain_parse_b64(const char *b64, size_t len, char *authzid, size_t azlen,
    char *authcid, size_t aclen, char *pass, size_t plen)
{
	unsigned char msg[AUTH_PLAIN_MAX];
	size_t n;
	int rc;

	if (len == 1 && b64[0] == '=')
		len = 0; /* RFC 4954 4: "=" is an empty initial response */
	if (auth_b64_decode(b64, len, msg, sizeof(msg), &n) != 0) {
		plain_wipe(authzid, azlen, authcid, aclen, pass, plen);
		rc = SASL_ERR_SYNTAX;
	} else {
		rc = sasl_plain_parse(
		    msg, n, authzid, azlen, authcid, aclen, pass, plen);
	}
	explicit_bzero(msg, sizeof(msg));
	return rc;
}

/* ---- LOGIN -------------------------------------------------------------- */

void
sasl_login_init(struct sasl_login *l)
{
	explicit_bzero(l, sizeof(*l));
	l->state = SASL_LOGIN_START;
}

void
sasl_login_wipe(struct sasl_login *l)
{
	explicit_bzero(l->user, sizeof(l->user));
	explicit_bzero(l->pass, sizeof(l->pass));
}

/* Decode one base64 response into field (AUTH_FIELD_MAX + 1 bytes). */
static int
login_field(const char *resp, size_t len, char *field)
{
	size_t n;

	if (auth_b64_decode(
		resp, len, (unsigned char *)field, AUTH_FIELD_MAX, &n) != 0 ||
	    !sasl_field_ok((const unsigned char *)field, n))
		return -1;
	field[n] = '\0';
	return 0;
}

static int
login_fail(struct sasl_login *l)
{
	sasl_login_wipe(l);
	l->state = SASL_LOGIN_FAILED;
	return SASL_ERR_SYNTAX;
}

static int
login_challenge(struct sasl_login *l, enum sasl_login_state next,
    const char *chal, char *chal_out, size_t chal_len)
{
	if (str_copy(chal_out, chal_len, chal, strlen(chal)) != 0)
		panic(
		    "sasl_login_step: challenge buffer of %zu bytes", chal_len);
	l->state = next;
	return SASL_CONTINUE;
}

int
sasl_login_step(struct sasl_login *l, const char *resp, size_t len,
    char *chal_out, size_t chal_len)
{
	if (chal_len > 0)
		chal_out[0] = '\0';
	switch (l->state) {
	case SASL_LOGIN_START:
		if (resp == NULL)
			return login_challenge(l, SASL_LOGIN_USER,
			    login_chal_user, chal_out, chal_len);
		/* the initial response is the user name */
		__attribute__((fallthrough));
	case SASL_LOGIN_USER:
		if (resp == NULL || login_field(resp, len, l->user) != 0)
			return login_fail(l);
		return login_challenge(
		    l, SASL_LOGIN_PASS, login_chal_pass, chal_out, chal_len);
	case SASL_LOGIN_PASS:
		if (resp == NULL || login_field(resp, len, l->pass) != 0)
			return login_fail(l);
		l->state = SASL_LOGIN_DONE;
		return SASL_OK;
	default:
		return login_fail(l);
	}
}
