/*
 * mime_int: the segments of a struct mime_plan (mime.h), private to
 * mime7.c and its fuzzer (fuzz/fuzz_mime7.c), which replays each encoded
 * segment alone and checks that the segments tile the input.  Nothing
 * else includes this header.
 */
#ifndef TERN_MIME_INT_H
#define TERN_MIME_INT_H

#include <stddef.h>

/* what a segment produces from its range of the input */
enum seg_kind {
	SEG_COPY, /* the octets as they are */
	SEG_MASK, /* preamble, epilogue: 8-bit and NUL as '?', lines cut */
	SEG_QP,	  /* quoted-printable */
	SEG_B64,  /* base64 */
	SEG_LIT,  /* no input: one of the fixed header lines below */
};

/* SEG_LIT's lines (mime7.c's lits[], in this order) */
enum lit_id {
	LIT_CTE_QP,
	LIT_CTE_B64,
	LIT_CTE_7BIT,
	LIT_MIME_VERSION,
	LIT_CTYPE_UNKNOWN,
};

struct mime_seg {
	enum seg_kind kind;
	enum lit_id lit; /* SEG_LIT only */
	size_t off, len; /* the input range (none for SEG_LIT) */
};

#endif
