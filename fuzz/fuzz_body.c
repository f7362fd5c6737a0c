/*
 * fuzz_body: libFuzzer harness for the DATA / BDAT content reader
 * (src/smtp/smtp_body.c).
 *
 * Input: 4 header octets, then the content stream.
 *   [0]  max_size: 0 none, 1..127 that many octets, 128.. (v-128)*16
 *   [1]  largest chunk when splitting, minus one (0: byte by byte)
 *   [2..3] seed of the split positions
 * Each mode (DATA, BDAT) is fed whole and split; both results (sink
 * content, error, consumed, done, size) must be equal, and equal to a
 * slow one-octet-at-a-time reference model written here from the
 * contract.  Clean content must hold no bare CR, bare LF or NUL.  ASan sees a
 * one-octet over-read (the rest of the input is poisoned around each
 * chunk).  Any difference abort()s.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/asan_interface.h>
#endif
#endif
#ifndef ASAN_POISON_MEMORY_REGION
#define ASAN_POISON_MEMORY_REGION(p, n)	  ((void)(p), (void)(n))
#define ASAN_UNPOISON_MEMORY_REGION(p, n) ((void)(p), (void)(n))
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct out {
	char *p;
	size_t len, cap;
	size_t consumed;
	enum smtp_body_error err;
	bool done;
	uint64_t size;
};

static void
out_add(struct out *o, const char *p, size_t n)
{
	if (n > o->cap - o->len)
		abort(); /* more content than input: impossible */
	memcpy(o->p + o->len, p, n);
	o->len += n;
}

static void
sink(void *ctx, const char *p, size_t n)
{
	if (n == 0)
		abort(); /* empty runs are wasted calls */
	out_add(ctx, p, n);
}

static void
out_init(struct out *o, size_t cap)
{
	memset(o, 0, sizeof(*o));
	o->cap = cap;
	o->p = malloc(cap + 1);
	if (o->p == NULL)
		abort();
}

/* ---- the reference model: one octet at a time ------------------------ */

struct ref {
	struct out *o;
	uint64_t max;
	int st;	 /* 0 line start, 1 mid, 2 ".", 3 ".\r" */
	bool cr; /* previous content octet was CR */
	size_t line;
};

static void
ref_fail(struct ref *r, enum smtp_body_error e)
{
	if (r->o->err == SMTP_BODY_OK)
		r->o->err = e;
}

static void
ref_content(struct ref *r, char c)
{
	if (r->cr && c != '\n')
		ref_fail(r, SMTP_BODY_ERR_BARE_CR);
	if (!r->cr && c == '\n')
		ref_fail(r, SMTP_BODY_ERR_BARE_LF);
	if (c == '\0')
		ref_fail(r, SMTP_BODY_ERR_NUL);
	if (++r->line > SMTP_TEXT_LINE_MAX)
		ref_fail(r, SMTP_BODY_ERR_LINE_LONG);
	if (r->max != 0 && r->o->size + 1 > r->max)
		ref_fail(r, SMTP_BODY_ERR_TOO_BIG);
	if (r->o->err == SMTP_BODY_OK)
		out_add(r->o, &c, 1);
	r->o->size++;
	r->st = 1;
	if (c == '\n' && r->cr) {
		r->st = 0;
		r->line = 0;
	}
	r->cr = c == '\r';
}

static void
ref_run(const char *in, size_t len, bool dot, uint64_t max, struct out *o)
{
	struct ref r = {o, max, 0, false, 0};
	size_t i;

	for (i = 0; i < len && !o->done; i++) {
		char c = in[i];

		if (r.st == 3) {
			if (c == '\n') {
				o->done = true;
				continue;
			}
			r.line = 1;
			ref_content(&r, '\r');
		} else if (r.st == 2 && c == '\r') {
			r.st = 3;
			continue;
		} else if (r.st == 0 && dot && c == '.') {
			r.st = 2;
			r.line = 1;
			continue;
		}
		ref_content(&r, c);
	}
	o->consumed = i;
	if (!dot) {
		if (r.cr && o->err == SMTP_BODY_OK)
			o->err = SMTP_BODY_ERR_BARE_CR;
		o->done = true;
	}
}

/* ---- the reader under test ------------------------------------------- */

static uint32_t
rng_next(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/*
 * Feed in[off, off+n) from a copy of the whole input in which everything
 * outside the chunk is poisoned, so ASan catches an over-read (or an
 * under-read) without one allocation per chunk.
 */
static size_t
feed_poisoned(struct smtp_body *b, char *copy, size_t len, size_t off, size_t n)
{
	size_t got;

	ASAN_POISON_MEMORY_REGION(copy, off);
	ASAN_POISON_MEMORY_REGION(copy + off + n, len - off - n);
	got = smtp_body_feed(b, copy + off, n);
	ASAN_UNPOISON_MEMORY_REGION(copy, len);
	return got;
}

static void
impl_run(const char *in, size_t len, bool dot, uint64_t max, unsigned maxchunk,
    uint32_t seed, struct out *o)
{
	struct smtp_body b;
	size_t off = 0;
	char *copy = malloc(len + 1);

	if (copy == NULL)
		abort();
	memcpy(copy, in, len);
	smtp_body_init(&b, dot, max, sink, o);
	while (off < len) {
		size_t n = len - off, got;

		if (maxchunk != 0) {
			n = 1 + rng_next(&seed) % maxchunk;
			if (n > len - off)
				n = len - off;
		}
		got = maxchunk ? feed_poisoned(&b, copy, len, off, n)
			       : smtp_body_feed(&b, in + off, n);
		if (got > n || (got < n && (!dot || !b.done)))
			abort();
		off += got;
		if (got < n)
			break;
	}
	free(copy);
	if (!dot)
		smtp_body_finish(&b);
	o->consumed = off;
	o->err = b.error;
	o->done = b.done;
	o->size = b.size;
}

static bool
out_eq(const struct out *a, const struct out *b)
{
	return a->len == b->len && memcmp(a->p, b->p, a->len) == 0 &&
	       a->consumed == b->consumed && a->err == b->err &&
	       a->done == b->done && a->size == b->size;
}

/* Clean content: CRLF line ends only, no NUL, short lines, size right. */
static void
check_clean(const struct out *o, bool dot, uint64_t max)
{
	size_t line = 0;

	if (o->err != SMTP_BODY_OK)
		return;
	if (o->size != o->len || (max != 0 && o->len > max))
		abort();
	for (size_t i = 0; i < o->len; i++) {
		char c = o->p[i];

		if (c == '\0' || (c == '\n' && (i == 0 || o->p[i - 1] != '\r')))
			abort();
		if (c == '\r' && i + 1 < o->len && o->p[i + 1] != '\n')
			abort();
		/* with its CRLF a line is at most 1000 octets, before that 999
		 */
		if (c == '\n' && line > SMTP_TEXT_LINE_MAX - 1)
			abort();
		line = c == '\n' ? 0 : line + 1;
		if (line > SMTP_TEXT_LINE_MAX)
			abort();
	}
	/* DATA done: the last line was ended by the CRLF before the dot */
	if (dot && o->done && o->len > 0 &&
	    (o->len < 2 || memcmp(o->p + o->len - 2, "\r\n", 2) != 0))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 4)
		return 0;
	uint64_t max = data[0] == 0    ? 0
		       : data[0] < 128 ? data[0]
				       : (uint64_t)(data[0] - 128) * 16;
	unsigned maxchunk = (unsigned)data[1] + 1;
	uint32_t seed = ((uint32_t)data[2] << 8 | data[3]) | 0x10000;
	const char *in = (const char *)data + 4;
	size_t len = size - 4;

	for (int dot = 0; dot <= 1; dot++) {
		struct out whole, split, ref;

		out_init(&whole, len);
		out_init(&split, len);
		out_init(&ref, len);
		impl_run(in, len, dot, max, 0, seed, &whole);
		impl_run(in, len, dot, max, maxchunk, seed, &split);
		ref_run(in, len, dot, max, &ref);
		if (!out_eq(&whole, &split) || !out_eq(&whole, &ref))
			abort();
		check_clean(&whole, dot, max);
		free(whole.p);
		free(split.p);
		free(ref.p);
	}
	return 0;
}
