/*
 * fuzz_formats: libFuzzer harness for the version readers of tern's
 * durable formats (docs/formats.md): the text of STATE/versions
 * (state_versions_parse, src/fs/verparse.c), an envelope's first line
 * (queue_env_peek_version, src/queue/envelope.c) and screen.cache's first
 * line and verdict lines (screen_file_version, screen_line_parse,
 * src/screen/dnsbl.c).  The whole input goes to each.  Besides the
 * sanitisers, it aborts when:
 *  - STATE/versions text is accepted but does not end in a newline (or
 *    is not empty), or the error text is empty on a refusal;
 *  - a version is read from a first line that is not exactly
 *    "V <that number>\n..." or "tern-screen-cache <that number>";
 *  - a verdict line is accepted and does not format back to itself.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/versions.h"
#include "queue/queue.h"
#include "screen/dnsbl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_state_versions(const char *p, size_t n)
{
	char err[160] = "";
	int r = state_versions_parse(p, n, err, sizeof(err));

	if (r == 0 && n > 0 && p[n - 1] != '\n')
		abort();
	if (r != 0 && (r != -1 || err[0] == '\0'))
		abort();
}

static void
check_peek(const char *p, size_t n)
{
	char want[32];
	unsigned long v = queue_env_peek_version(p, n);
	int k;

	if (v == 0)
		return;
	k = snprintf(want, sizeof(want), "V %lu\n", v);
	if (k < 0 || (size_t)k > n || memcmp(p, want, (size_t)k) != 0)
		abort();
}

static void
check_screen(const char *p, size_t n)
{
	char want[64], text[SCREEN_TEXT_MAX], again[SCREEN_LINE_MAX + 1];
	unsigned long v = screen_file_version(p, n);
	uint8_t key[SCREEN_KEY_LEN];
	uint64_t expires;
	bool pass;
	int k;

	if (v != 0) {
		k = snprintf(want, sizeof(want), "tern-screen-cache %lu", v);
		if (k < 0 || (size_t)k != n || memcmp(p, want, n) != 0)
			abort();
	}
	if (screen_line_parse(p, n, key, &pass, &expires, text, sizeof(text)) !=
	    0)
		return;
	if (screen_line_format(
		again, sizeof(again), key, pass, expires, text) != 0 ||
	    strlen(again) != n || memcmp(again, p, n) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;

	check_state_versions(p, size);
	check_peek(p, size);
	check_screen(p, size);
	return 0;
}
