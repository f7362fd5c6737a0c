/*
 * fuzz_mime7: libFuzzer harness for src/mime/mime7.c (the 7-bit form of a
 * message for a peer without 8BITMIME).  The plan's segments, which the
 * round-trip checks replay one by one, come from mime_int.h.
 *
 * The input is a message.  Besides the sanitisers, it aborts when a
 * property breaks:
 *  - out_size is the length of the output read whole, and reading in
 *    small chunks (their size taken from the input) gives the same octets;
 *  - a plan without MIME_F_CHANGED gives the input unchanged;
 *  - a convertible plan (no MIME_F_IMPOSSIBLE, no MIME_F_HDR_8BIT) gives
 *    7-bit output: no octet >= 0x80, no NUL; and every line over 998
 *    octets is one copied from the input (a header or delimiter line the
 *    module does not touch), never one it made;
 *  - every encoded range decodes (quoted-printable, base64) to exactly the
 *    input octets it came from, and its lines are at most 76 characters;
 *  - the plan's ranges tile the input in order, skipping nothing but the
 *    Content-Transfer-Encoding fields it replaces.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime/mime.h"
#include "mime/mime_int.h"

#define IN_MAX (256 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
read_whole(struct mime_plan *p, struct buf *out, size_t chunk)
{
	int rc;

	mime_plan_rewind(p);
	buf_reset(out);
	while ((rc = mime_plan_read(p, out, chunk)) == 0)
		;
	if (rc != 1)
		abort();
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode what read_qp wrote (only the forms it writes are accepted). */
static void
qp_decode(const char *s, size_t n, struct buf *out)
{
	size_t i = 0, col = 0;

	while (i < n) {
		if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n') {
			if (buf_append(out, "\r\n", 2) != 0)
				abort();
			i += 2;
			col = 0;
			continue;
		}
		if (s[i] == '=' && i + 2 < n && s[i + 1] == '\r' &&
		    s[i + 2] == '\n') {
			i += 3;
			col = 0;
			continue;
		}
		if (s[i] == '=') {
			char c;

			if (i + 2 >= n + 0 || hexval(s[i + 1]) < 0 ||
			    hexval(s[i + 2]) < 0)
				abort();
			c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			if (buf_append(out, &c, 1) != 0)
				abort();
			i += 3;
			col += 3;
		} else {
			if ((unsigned char)s[i] < 32 && s[i] != '\t')
				abort();
			if (buf_append(out, s + i, 1) != 0)
				abort();
			i++;
			col++;
		}
		if (col > 76)
			abort();
	}
}

static void
b64_decode(const char *s, size_t n, struct buf *out)
{
	static const char a[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned v = 0, bits = 0;
	size_t i, col = 0;

	for (i = 0; i < n; i++) {
		const char *p;

		if (s[i] == '\r' || s[i] == '\n') {
			col = 0;
			continue;
		}
		if (++col > 76)
			abort();
		if (s[i] == '=')
			continue;
		if ((p = strchr(a, s[i])) == NULL || s[i] == '\0')
			abort();
		v = (v << 6) | (unsigned)(p - a);
		bits += 6;
		if (bits >= 8) {
			char c = (char)((v >> (bits - 8)) & 0xff);

			bits -= 8;
			if (buf_append(out, &c, 1) != 0)
				abort();
		}
	}
}

/* Each encoded segment, alone, decodes to its input range. */
static void
check_segments(const struct mime_plan *p, const char *in)
{
	struct buf enc, dec;
	size_t i;

	buf_init(&enc, 4 * IN_MAX);
	buf_init(&dec, 4 * IN_MAX);
	for (i = 0; i < p->nsegs; i++) {
		struct mime_plan one;
		struct mime_seg sg = p->segs[i];

		if (sg.kind != SEG_QP && sg.kind != SEG_B64)
			continue;
		memset(&one, 0, sizeof(one));
		one.msg = in;
		one.len = p->len;
		one.segs = &sg;
		one.nsegs = one.cap = 1;
		read_whole(&one, &enc, SIZE_MAX);
		buf_reset(&dec);
		if (sg.kind == SEG_QP)
			qp_decode(enc.data, enc.len, &dec);
		else
			b64_decode(enc.data, enc.len, &dec);
		if (dec.len != sg.len ||
		    (sg.len > 0 && memcmp(dec.data, in + sg.off, sg.len) != 0))
			abort();
	}
	buf_free(&enc);
	buf_free(&dec);
}

/*
 * The segments tile the input in order: each range starts where the last
 * ended, except over a replaced Content-Transfer-Encoding field; the last
 * ends at the input's end.
 */
static void
check_tiling(const struct mime_plan *p)
{
	static const char cte[] = "content-transfer-encoding";
	size_t i, next = 0;

	for (i = 0; i < p->nsegs; i++) {
		const struct mime_seg *sg = &p->segs[i];

		if (sg->kind == SEG_LIT)
			continue;
		if (sg->off < next)
			abort();
		if (sg->off > next &&
		    (sg->off - next < sizeof(cte) - 1 ||
			strncasecmp(p->msg + next, cte, sizeof(cte) - 1) != 0))
			abort();
		next = sg->off + sg->len;
	}
	if (next != p->len &&
	    (p->len - next < sizeof(cte) - 1 ||
		strncasecmp(p->msg + next, cte, sizeof(cte) - 1) != 0))
		abort();
}

static void
check_7bit(const char *out, size_t n, const char *in, size_t len)
{
	size_t i, start = 0;

	for (i = 0; i <= n; i++) {
		size_t e;

		if (i < n && ((unsigned char)out[i] >= 0x80 || out[i] == 0))
			abort();
		if (i < n && out[i] != '\n')
			continue;
		e = i;
		if (e > start && out[e - 1] == '\r')
			e--;
		if (e - start > MIME_LINE_MAX &&
		    memmem(in, len, out + start, e - start) == NULL)
			abort();
		start = i + 1;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	struct mime_plan p;
	struct buf a, b;
	size_t chunk;

	if (size < 1 || size > IN_MAX)
		return 0;
	chunk = 1 + data[0] % 97;
	buf_init(&a, 4 * IN_MAX);
	buf_init(&b, 4 * IN_MAX);
	mime_plan_7bit(&p, in, size);
	read_whole(&p, &a, SIZE_MAX);
	if (a.len != p.out_size)
		abort();
	read_whole(&p, &b, chunk);
	if (b.len != a.len || (a.len > 0 && memcmp(a.data, b.data, a.len) != 0))
		abort();
	if (!(p.flags & MIME_F_CHANGED) &&
	    (a.len != size || memcmp(a.data, in, size) != 0))
		abort();
	if (!(p.flags & (MIME_F_IMPOSSIBLE | MIME_F_HDR_8BIT)))
		check_7bit(a.data, a.len, in, size);
	check_segments(&p, in);
	check_tiling(&p);
	mime_plan_free(&p);
	buf_free(&a);
	buf_free(&b);
	return 0;
}
