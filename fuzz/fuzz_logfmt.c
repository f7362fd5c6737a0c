/*
 * fuzz_logfmt: libFuzzer harness for src/util/logfmt.c.
 *
 * The input is a log line's fields (any bytes: what a peer put in a value,
 * raw or escaped) given to logfmt_json at a size taken from the first
 * byte and to logfmt_journal.  Besides the sanitisers, it aborts when:
 *  - a JSON line is longer than its buffer, does not end in "}\n", holds a
 *    '\n' before its end, a byte below 0x20, or is not valid UTF-8;
 *  - a journal datagram is longer than its buffer or does not parse back
 *    as NAME=value / NAME + 64-bit length fields with names [A-Z0-9_].
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/logfmt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* which check failed, for the crash report */
static void
fail(int line)
{
	fprintf(stderr, "fuzz_logfmt: check at line %d failed\n", line);
	abort();
}

static size_t
utf8_len(const unsigned char *s, size_t n)
{
	size_t need = s[0] < 0x80 ? 1 : s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : 2;

	if (s[0] >= 0x80 && (s[0] < 0xc2 || s[0] > 0xf4))
		return 0;
	if (n < need)
		return 0;
	for (size_t i = 1; i < need; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return need;
}

static void
check_json(const char *out, size_t n, size_t cap)
{
	const unsigned char *u = (const unsigned char *)out;
	size_t i = 0, k;

	if (n == 0)
		return;
	if (n > cap || n < 3 || out[n - 1] != '\n' || out[n - 2] != '}')
		fail(__LINE__);
	while (i < n - 1) {
		if (u[i] < 0x20)
			fail(__LINE__);
		if ((k = utf8_len(u + i, n - 1 - i)) == 0)
			fail(__LINE__);
		i += k;
	}
}

static void
check_journal(const char *p, size_t n, size_t cap)
{
	size_t i = 0;

	if (n > cap)
		fail(__LINE__);
	while (i < n) {
		const char *nl = memchr(p + i, '\n', n - i);
		size_t k = i, len;

		if (nl == NULL)
			fail(__LINE__);
		while (k < (size_t)(nl - p) && p[k] != '=') {
			if (!((p[k] >= 'A' && p[k] <= 'Z') ||
				(p[k] >= '0' && p[k] <= '9') || p[k] == '_'))
				fail(__LINE__);
			k++;
		}
		if (k == i)
			fail(__LINE__);
		if (k < (size_t)(nl - p)) {
			i = (size_t)(nl - p) + 1;
			continue;
		}
		/* NAME\n<le64>value\n */
		i = (size_t)(nl - p) + 1;
		if (i + 8 > n)
			fail(__LINE__);
		len = 0;
		for (int b = 7; b >= 0; b--)
			len = len << 8 | (unsigned char)p[i + (size_t)b];
		if (len > n || i + 8 + len + 1 > n || p[i + 8 + len] != '\n')
			fail(__LINE__);
		i += 8 + len + 1;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char out[LOGFMT_JOURNAL_MAX];
	size_t cap, n;

	if (size < 1 || size > 8192)
		return 0;
	cap = 100 + (size_t)data[0] * 16;
	n = logfmt_json(out, cap, "2026-01-01T00:00:00.000Z", "info", "ternd",
	    1, (const char *)data + 1, size - 1);
	check_json(out, n, cap);
	cap = 400 + (size_t)data[0] * 96;
	n = logfmt_journal(out, cap, 6, "ternd", 1, (const char *)data + 1,
	    size - 1, (const char *)data + 1, size - 1);
	check_journal(out, n, cap);
	return 0;
}
