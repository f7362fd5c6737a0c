/*
 * t.h: the unit-test harness, header only.  A test binary is one .c file:
 *
 *   static void test_x(void) { T_CHECK(1 + 1 == 2); }
 *   int main(void) { T_RUN(test_x); return t_summary(); }
 *
 * Table-driven tests call t_case("name") per row; every row counts as one
 * case.  A check made while no case is open fails the binary (it could
 * not be counted otherwise).  t_summary() prints "RESULT passed=N failed=M",
 * read by tests/run.py.  t_guard() places bytes right before an unreadable
 * page, so a one-byte over-read crashes the test.  t_split_points() gives the
 * split positions every parser test feeds at (whole, byte by byte, random).
 */
#ifndef TERN_T_H
#define TERN_T_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int t_passed, t_failed;
static const char *t_cur = NULL;
static bool t_cur_failed;

/*
 * Every check belongs to a case: one made while none is open (a test
 * function called without T_RUN, a helper before its t_case) would have
 * nowhere to record a failure, so it fails the binary on its own, passed
 * or not, and names its line.
 */
static inline void
t_checked(const char *file, int line)
{
	if (t_cur != NULL)
		return;
	t_failed++;
	fprintf(stderr, "FAIL %s:%d: check outside any case\n", file, line);
}

static void
t_case_end(void)
{
	if (t_cur == NULL)
		return;
	if (t_cur_failed)
		t_failed++;
	else
		t_passed++;
	t_cur = NULL;
}

static inline void
t_case(const char *name)
{
	t_case_end();
	t_cur = name;
	t_cur_failed = false;
}

#define T_CHECK(c)                                                             \
	do {                                                                   \
		t_checked(__FILE__, __LINE__);                                 \
		if (!(c)) {                                                    \
			t_cur_failed = true;                                   \
			fprintf(stderr, "FAIL %s:%d [%s]: %s\n", __FILE__,     \
			    __LINE__, t_cur ? t_cur : "?", #c);                \
		}                                                              \
	} while (0)

#define T_CHECK_INT(a, b)                                                      \
	do {                                                                   \
		t_checked(__FILE__, __LINE__);                                 \
		long long t_a_ = (long long)(a), t_b_ = (long long)(b);        \
		if (t_a_ != t_b_) {                                            \
			t_cur_failed = true;                                   \
			fprintf(stderr,                                        \
			    "FAIL %s:%d [%s]: %s == %lld, want %lld\n",        \
			    __FILE__, __LINE__, t_cur ? t_cur : "?", #a, t_a_, \
			    t_b_);                                             \
		}                                                              \
	} while (0)

#define T_CHECK_STR(a, b)                                                      \
	do {                                                                   \
		t_checked(__FILE__, __LINE__);                                 \
		const char *t_a_ = (a), *t_b_ = (b);                           \
		if (t_a_ == NULL || t_b_ == NULL || strcmp(t_a_, t_b_) != 0) { \
			t_cur_failed = true;                                   \
			fprintf(stderr,                                        \
			    "FAIL %s:%d [%s]: %s == \"%s\", want \"%s\"\n",    \
			    __FILE__, __LINE__, t_cur ? t_cur : "?", #a,       \
			    t_a_ ? t_a_ : "(null)", t_b_ ? t_b_ : "(null)");   \
		}                                                              \
	} while (0)

#define T_RUN(fn)                                                              \
	do {                                                                   \
		t_case(#fn);                                                   \
		fn();                                                          \
		t_case_end();                                                  \
	} while (0)

static inline int
t_summary(void)
{
	t_case_end();
	printf("RESULT passed=%d failed=%d\n", t_passed, t_failed);
	return t_failed ? 1 : 0;
}

/*
 * Copy n bytes so that they end exactly at a PROT_NONE page.  Returns the
 * copy; t_unguard() releases it.  Reading past the end faults.
 */
static inline const char *
t_guard(const void *p, size_t n, void **map_out, size_t *maplen_out)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	size_t data_pages = (n + pg - 1) / pg;
	size_t maplen = (data_pages + 1) * pg;
	char *m = mmap(NULL, maplen, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (m == MAP_FAILED)
		abort();
	if (mprotect(m + data_pages * pg, pg, PROT_NONE) != 0)
		abort();
	char *start = m + data_pages * pg - n;
	if (n > 0)
		memcpy(start, p, n);
	*map_out = m;
	*maplen_out = maplen;
	return start;
}

static inline void
t_unguard(void *map, size_t maplen)
{
	munmap(map, maplen);
}

/* Deterministic pseudo-random numbers for split points (xorshift). */
static uint64_t t_rng_state = 0x9e3779b97f4a7c15ull;

static inline uint64_t
t_rand(void)
{
	t_rng_state ^= t_rng_state << 13;
	t_rng_state ^= t_rng_state >> 7;
	t_rng_state ^= t_rng_state << 17;
	return t_rng_state;
}

/*
 * Feeding modes every parser test runs: T_FEED_WHOLE gives one chunk,
 * T_FEED_BYTES one byte per chunk, T_FEED_RANDOM chunks of random sizes.
 * t_next_chunk() returns the size of the next chunk for the mode.
 */
enum t_feed { T_FEED_WHOLE, T_FEED_BYTES, T_FEED_RANDOM, T_FEED_NMODES };

static inline size_t
t_next_chunk(enum t_feed mode, size_t remaining)
{
	if (remaining == 0)
		return 0;
	switch (mode) {
	case T_FEED_WHOLE:
		return remaining;
	case T_FEED_BYTES:
		return 1;
	default:
		return 1 + (size_t)(t_rand() % remaining);
	}
}

static inline const char *
t_feed_name(enum t_feed m)
{
	return m == T_FEED_WHOLE   ? "whole"
	       : m == T_FEED_BYTES ? "bytes"
				   : "random";
}

#endif
