/*
 * fuzz_sasl: libFuzzer harness for src/auth/sasl.c (base64, PLAIN, LOGIN).
 *
 * Each input is used four ways, and any broken invariant aborts:
 *   - as base64 text: if it decodes, encoding the result gives back the
 *     very same text (strict decoding means one encoding per value);
 *   - as bytes: encode then decode gives them back;
 *   - as a decoded PLAIN message, and as base64 of one: on success the
 *     fields rebuild the input and obey the limits; on failure every
 *     output is wiped;
 *   - as LOGIN response lines separated by '\n' (the first line may be
 *     the initial response): the state machine only moves forward, a
 *     completed exchange holds valid fields, a failed one holds none.
 *
 * src/auth/sasl.c is part of the Makefile's FUZZ_LIB (it needs only libc
 * and util).
 */
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                               \
	do {                                                                   \
		if (!(c))                                                      \
			abort();                                               \
	} while (0)

static bool
all_zero(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != 0)
			return false;
	return true;
}

static void
fuzz_b64(const uint8_t *data, size_t size)
{
	unsigned char dec[4096];
	char enc[8192];
	size_t n, m;

	if (auth_b64_decode((const char *)data, size, dec, sizeof(dec), &n) ==
	    0) {
		CHECK(n <= size / 4 * 3);
		CHECK(auth_b64_encode(dec, n, enc, sizeof(enc), &m) == 0);
		CHECK(m == size && memcmp(enc, data, size) == 0);
	}
	if (size <= sizeof(dec)) {
		CHECK(auth_b64_encode(data, size, enc, sizeof(enc), &m) == 0);
		CHECK(m == auth_b64_encoded_len(size) && enc[m] == '\0');
		CHECK(auth_b64_decode(enc, m, dec, sizeof(dec), &n) == 0);
		CHECK(n == size && memcmp(dec, data, size) == 0);
	}
}

static void
plain_check(const uint8_t *msg, size_t size, int rc, const char *az,
    const char *ac, const char *pw)
{
	size_t la = strlen(az), lc = strlen(ac), lp = strlen(pw);

	if (rc != SASL_OK) {
		CHECK(rc == SASL_ERR_SYNTAX || rc == SASL_ERR_AUTHZ);
		CHECK(all_zero(az, AUTH_FIELD_MAX + 1) &&
		      all_zero(ac, AUTH_FIELD_MAX + 1) &&
		      all_zero(pw, AUTH_FIELD_MAX + 1));
		return;
	}
	CHECK(lc >= 1 && lc <= AUTH_FIELD_MAX && lp >= 1 &&
	      lp <= AUTH_FIELD_MAX && la <= AUTH_FIELD_MAX);
	CHECK(la == 0 || strcmp(az, ac) == 0);
	if (msg != NULL) {
		/* the fields and two NULs are the whole message */
		CHECK(size == la + lc + lp + 2);
		CHECK(memcmp(msg, az, la) == 0 && msg[la] == 0);
		CHECK(
		    memcmp(msg + la + 1, ac, lc) == 0 && msg[la + 1 + lc] == 0);
		CHECK(memcmp(msg + la + lc + 2, pw, lp) == 0);
	}
}

static void
fuzz_plain(const uint8_t *data, size_t size)
{
	char az[AUTH_FIELD_MAX + 1], ac[AUTH_FIELD_MAX + 1];
	char pw[AUTH_FIELD_MAX + 1];
	int rc;

	memset(az, 'x', sizeof(az));
	rc = sasl_plain_parse(
	    data, size, az, sizeof(az), ac, sizeof(ac), pw, sizeof(pw));
	plain_check(data, size, rc, az, ac, pw);
	rc = sasl_plain_parse_b64((const char *)data, size, az, sizeof(az), ac,
	    sizeof(ac), pw, sizeof(pw));
	plain_check(NULL, 0, rc, az, ac, pw);
}

static void
login_check_done(const struct sasl_login *l)
{
	size_t lu = strnlen(l->user, sizeof(l->user));
	size_t lp = strnlen(l->pass, sizeof(l->pass));

	CHECK(l->state == SASL_LOGIN_DONE);
	CHECK(
	    lu >= 1 && lu <= AUTH_FIELD_MAX && lp >= 1 && lp <= AUTH_FIELD_MAX);
}

static void
fuzz_login(const uint8_t *data, size_t size)
{
	struct sasl_login l;
	char chal[SASL_LOGIN_CHAL_MAX];
	const char *p = (const char *)data, *end = p + size;
	int rc = SASL_CONTINUE;
	bool first = true;

	sasl_login_init(&l);
	/* an input starting with '\n' means: no initial response */
	if (size > 0 && data[0] == '\n') {
		rc = sasl_login_step(&l, NULL, 0, chal, sizeof(chal));
		CHECK(rc == SASL_CONTINUE && strcmp(chal, "VXNlcm5hbWU6") == 0);
		p++;
		first = false;
	}
	while (p <= end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = (size_t)((nl != NULL ? nl : end) - p);
		enum sasl_login_state before = l.state;

		rc = sasl_login_step(&l, p, len, chal, sizeof(chal));
		if (rc == SASL_CONTINUE)
			CHECK(l.state > before && (first || before != 0) &&
			      strcmp(chal, "UGFzc3dvcmQ6") == 0);
		else if (rc == SASL_OK)
			login_check_done(&l);
		else
			CHECK(rc == SASL_ERR_SYNTAX &&
			      l.state == SASL_LOGIN_FAILED &&
			      l.pass[0] == '\0' && l.user[0] == '\0');
		first = false;
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	sasl_login_wipe(&l);
	CHECK(all_zero(l.pass, sizeof(l.pass)));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_b64(data, size);
	fuzz_plain(data, size);
	fuzz_login(data, size);
	return 0;
}
