/*
 * fuzz_inbound: libFuzzer harness for src/mailauth/inbound.c.
 *
 * The input is a received message (header section and body), as ternd's
 * end of data hands it over.  Besides the sanitisers, it aborts when:
 *  - inbound_from_domain() says OK with a domain that is empty, not lower
 *    case, or not NUL-terminated within its buffer;
 *  - the pieces inbound_pieces() keeps around the A-R fields that claim
 *    "mx.test" leave the message, overlap, are out of order or empty, do
 *    not add up to the message less the spans;
 *  - inbound_overrides_parse() on the input as text says OK with an entry
 *    whose domain is empty or holds ':' or '*'.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mailauth/inbound.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_SPANS 16

static void
fz_from(const char *msg, size_t len)
{
	char out[PSL_NAME_MAX + 1];

	memset(out, 'X', sizeof(out));
	if (inbound_from_domain(msg, len, out, sizeof(out)) != INBOUND_FROM_OK)
		return;
	if (memchr(out, '\0', sizeof(out)) == NULL || out[0] == '\0')
		abort();
	for (const char *p = out; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			abort();
}

static void
fz_pieces(const char *msg, size_t len)
{
	struct authres_span spans[FZ_SPANS];
	struct inbound_piece p[FZ_SPANS + 1];
	size_t n = authres_ours_in(msg, len, "mx.test", spans, FZ_SPANS), k;
	size_t cut = 0, kept = 0, at = 0;
	char *copy;

	if (n > FZ_SPANS)
		return;
	for (size_t i = 0; i < n; i++)
		cut += spans[i].len;
	k = inbound_pieces(len, spans, n, p, FZ_SPANS + 1);
	if (k == 0 && len > cut)
		abort();
	copy = malloc(len + 1);
	if (copy == NULL)
		return;
	for (size_t i = 0; i < k; i++) {
		if (p[i].len == 0 || p[i].off < at || p[i].off + p[i].len > len)
			abort();
		memcpy(copy + kept, msg + p[i].off, p[i].len);
		kept += p[i].len;
		at = p[i].off + p[i].len;
	}
	if (kept != len - cut)
		abort();
	free(copy);
}

static void
fz_overrides(const uint8_t *data, size_t size)
{
	struct dmarc_override o[INBOUND_OVERRIDES_MAX];
	char err[256], *text = malloc(size + 1);
	size_t n;

	if (text == NULL)
		return;
	memcpy(text, data, size);
	text[size] = '\0';
	if (inbound_overrides_parse(
		text, o, INBOUND_OVERRIDES_MAX, &n, err, sizeof(err)) == 0)
		for (size_t i = 0; i < n; i++)
			if (o[i].domain[0] == '\0' ||
			    strpbrk(o[i].domain, ":*") != NULL)
				abort();
	free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *msg = (const char *)data;

	fz_from(msg, size);
	fz_pieces(msg, size);
	fz_overrides(data, size);
	return 0;
}
