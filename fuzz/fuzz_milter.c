/*
 * fuzz_milter: libFuzzer harness for the milter codec (src/milter).
 *
 * The input is a stream of bytes "from a milter".  Replies are parsed one
 * after the other, as the client does, abort() on a broken property:
 *  - the result is -1, 0 or 1; a whole packet consumed 5..MILTER_REPLY_MAX+4
 *    octets within the input, and one octet less asks for more;
 *  - every view lies inside the packet, and a string view ends at a NUL;
 *  - a reply code is 400..599 and matches its text's first digits.
 * The input is also sent back through the encoders (as a header, body
 * chunks), which must frame it exactly or refuse it, and taken as a
 * message: the header walk stays inside it and moves forward, and the
 * rewrite with edits (add, insert, change, delete) and a replaced body
 * ends its header with a blank line and never fails for room.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "milter/milter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
in_packet(const struct milter_str *s, const uint8_t *p, size_t n, bool nul)
{
	const uint8_t *q = (const uint8_t *)s->p;

	if (s->p == NULL) {
		if (s->len != 0)
			abort();
		return;
	}
	if (q < p || q + s->len > p + n)
		abort();
	if (nul && (q + s->len >= p + n || q[s->len] != '\0' ||
		       memchr(q, '\0', s->len) != NULL))
		abort();
}

static void
check_reply(const uint8_t *p, size_t n, const struct milter_reply *r)
{
	bool body = r->cmd == MILTER_R_REPLBODY;

	in_packet(&r->text, p, n, !body);
	in_packet(&r->args, p, n, true);
	in_packet(&r->name, p, n, true);
	in_packet(&r->value, p, n, true);
	if (r->cmd == MILTER_R_REPLYCODE &&
	    (r->code < 400 || r->code > 599 ||
		r->text.p[0] != '0' + r->code / 100))
		abort();
	if (r->cmd != MILTER_R_REPLYCODE && r->code != 0)
		abort();
	if ((r->cmd == MILTER_R_ADDHEADER || r->cmd == MILTER_R_CHGHEADER ||
		r->cmd == MILTER_R_INSHEADER) &&
	    r->name.len == 0)
		abort();
	(void)milter_reply_name(r->cmd);
}

static void
parse_stream(const uint8_t *p, size_t n)
{
	size_t off = 0;

	while (off < n) {
		struct milter_reply r;
		size_t used;
		int rc = milter_reply_parse(p + off, n - off, &r, &used);

		if (rc < -1 || rc > 1)
			abort();
		if (rc != 1) {
			if (used != 0)
				abort();
			return;
		}
		if (used < 5 || used > n - off || used > MILTER_REPLY_MAX + 4)
			abort();
		check_reply(p + off, used, &r);
		{
			struct milter_reply r2;
			size_t u2;

			if (milter_reply_parse(p + off, used - 1, &r2, &u2) !=
			    0)
				abort();
		}
		off += used;
	}
}

static uint32_t
len_of(const struct buf *b, size_t at)
{
	const uint8_t *q = (const uint8_t *)b->data + at;

	return (uint32_t)q[0] << 24 | (uint32_t)q[1] << 16 |
	       (uint32_t)q[2] << 8 | (uint32_t)q[3];
}

static void
encode(const uint8_t *p, size_t n)
{
	struct buf b;
	const char *s = (const char *)p;
	size_t half = n / 2;
	bool has_nul = memchr(p, '\0', n) != NULL;
	int rc;

	buf_init(&b, 1 << 21);
	rc = milter_enc_header(&b, s, half, s + half, n - half);
	if (rc == 0) {
		if (half == 0 || memchr(p, '\0', n) != NULL ||
		    len_of(&b, 0) != n + 3 || b.len != n + 7 ||
		    memcmp(b.data + 5, s, half) != 0)
			abort();
	} else if (b.len != 0 || (half != 0 && !has_nul)) {
		abort();
	}
	buf_reset(&b);
	for (size_t off = 0; off < n; off += MILTER_CHUNK) {
		size_t k = n - off < MILTER_CHUNK ? n - off : MILTER_CHUNK;
		size_t at = b.len;

		if (milter_enc_body(&b, s + off, k) != 0 ||
		    len_of(&b, at) != k + 1 || b.data[at + 4] != 'B' ||
		    memcmp(b.data + at + 5, s + off, k) != 0)
			abort();
	}
	buf_free(&b);
}

static void
message(const uint8_t *p, size_t n)
{
	const char *s = (const char *)p;
	struct milter_hdr h;
	size_t off = 0, nh = 0;
	struct buf out, v;
	struct milter_edit e[4] = {
	    {MILTER_EDIT_ADD, 0, "X-Add", "a\nb"},
	    {MILTER_EDIT_INSERT, (uint32_t)(n % 5), "X-Ins", "i"},
	    {MILTER_EDIT_CHANGE, 1, "Subject", "new"},
	    {MILTER_EDIT_CHANGE, (uint32_t)(n % 3), "Received", ""},
	};

	buf_init(&v, n + 1);
	while (milter_header_next(s, n, &off, &h)) {
		if (h.field < s || h.field + h.fieldlen > s + n ||
		    h.namelen == 0 || h.namelen >= h.fieldlen ||
		    memchr(h.name, ':', h.namelen) != NULL || ++nh > n)
			abort();
		buf_reset(&v);
		if (milter_header_value(&h, &v) != 0 || v.len >= h.fieldlen)
			abort();
	}
	if (off > n)
		abort();
	buf_free(&v);
	buf_init(&out, 4 * n + 1024);
	if (milter_rewrite(s, n, e, 4, (n & 1) ? s : NULL, n / 2, &out) != 0)
		abort();
	if (out.len < 2 ||
	    (n & 1 && (memmem(out.data, out.len, "\r\n\r\n", 4) == NULL)))
		abort();
	buf_free(&out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	parse_stream(data, size);
	encode(data, size);
	message(data, size);
	return 0;
}
