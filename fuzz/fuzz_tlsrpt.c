/*
 * fuzz_tlsrpt: libFuzzer harness for src/tlsrpt/tlsrpt.c: the
 * "_smtp._tls" TXT record parser (network input) and the reader of
 * STATE/tlsrpt.state (a damaged file must be refused, never trusted).
 *
 * The first input byte chooses: even, the rest is a TXT record; odd, a
 * state file.  Besides the sanitisers, it aborts when:
 *  - a parse keeps more URIs than TLSRPT_RUA_MAX, or one that is not
 *    mailto: (with an address holding '@') or https://, or holds a byte
 *    outside printable ASCII;
 *  - OK is returned with no URI, or a URI is kept without "v=TLSRPTv1";
 *  - a state that decodes does not encode, or its encoding does not
 *    decode to the same encoding (the text form is a fixed point), or a
 *    report of one of its domains cannot be built in 1 MiB.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tlsrpt/tlsrpt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_uri(const struct tlsrpt_uri *u)
{
	const char *p;

	for (p = u->uri; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			abort();
	if (u->mailto) {
		if (strncasecmp(u->uri, "mailto:", 7) != 0 ||
		    strchr(u->addr, '@') == NULL)
			abort();
	} else if (strncasecmp(u->uri, "https://", 8) != 0) {
		abort();
	}
}

static void
fuzz_record(const char *txt, size_t len)
{
	struct tlsrpt_record r;
	enum tlsrpt_parse p = tlsrpt_record_parse(txt, len, &r);
	size_t i;

	if (r.nrua > TLSRPT_RUA_MAX)
		abort();
	if (p == TLSRPT_PARSE_OK && r.nrua == 0)
		abort();
	if (r.nrua > 0 && (len < 10 || memcmp(txt, "v=TLSRPTv1", 10) != 0))
		abort();
	for (i = 0; i < r.nrua; i++)
		check_uri(&r.rua[i]);
}

static void
fuzz_state(const char *in, size_t len)
{
	struct tlsrpt *t = tlsrpt_new(0, 50), *u;
	struct buf a, b, j;
	char err[256];
	size_t i;
	struct tlsrpt_meta m = {"org", "r@example.org", "id", 0, 1};

	if (tlsrpt_decode(t, in, len, err, sizeof(err)) != 0) {
		tlsrpt_free(t);
		return;
	}
	buf_init(&a, 1 << 22);
	buf_init(&b, 1 << 22);
	buf_init(&j, 1 << 20);
	if (tlsrpt_encode(t, &a) != 0)
		abort();
	u = tlsrpt_new(0, 50);
	if (tlsrpt_decode(u, a.data, a.len, err, sizeof(err)) != 0 ||
	    tlsrpt_encode(u, &b) != 0 || a.len != b.len ||
	    memcmp(a.data, b.data, a.len) != 0)
		abort();
	for (i = 0; i < tlsrpt_ndomains(t); i++) {
		buf_reset(&j);
		if (tlsrpt_report_json(t, i, &m, &j) != 0)
			abort();
	}
	buf_free(&a);
	buf_free(&b);
	buf_free(&j);
	tlsrpt_free(u);
	tlsrpt_free(t);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;

	if (size == 0)
		return 0;
	s = malloc(size);
	if (s == NULL)
		return 0;
	memcpy(s, data + 1, size - 1);
	if (data[0] % 2 == 0)
		fuzz_record(s, size - 1);
	else
		fuzz_state(s, size - 1);
	free(s);
	return 0;
}
