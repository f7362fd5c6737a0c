/*
 * Unit tests of the per-key rate table (src/queue/ratelimit.c): a burst
 * of N per window, then one per window/N; keys independent; two keys in
 * one slot; limit 0 means no limit; the table never locks a key out.
 */
#include <stdlib.h>

#include "queue/ratelimit.h"
#include "t.h"

#define HOUR_MS (3600u * 1000u)

/* Allowed events for key at now, taking each one allowed. */
static unsigned
burst(struct rate_table *t, uint64_t key, uint64_t now, unsigned tries)
{
	unsigned ok = 0;

	while (tries-- > 0)
		if (rate_check(t, key, now)) {
			rate_take(t, key, now);
			ok++;
		}
	return ok;
}

static void
test_burst_then_steady(void)
{
	struct rate_table *t = rate_table_new(64, 5, HOUR_MS);
	uint64_t now = 1000000;

	T_CHECK(t != NULL);
	T_CHECK_INT(burst(t, 42, now, 20), 5);
	T_CHECK(!rate_check(t, 42, now + HOUR_MS / 5 - 1));
	T_CHECK_INT(
	    burst(t, 42, now + HOUR_MS / 5, 20), 1); /* one interval on */
	T_CHECK_INT(
	    burst(t, 42, now + 2 * HOUR_MS, 20), 5); /* quiet: whole burst */
	rate_table_free(t);
}

static void
test_keys_are_independent(void)
{
	struct rate_table *t = rate_table_new(64, 3, HOUR_MS);

	T_CHECK_INT(burst(t, 1, 10, 10), 3);
	T_CHECK_INT(burst(t, 2, 10, 10), 3);
	T_CHECK_INT(burst(t, 1, 11, 10), 0);
	rate_table_free(t);
}

/* Two slots: a third key sharing both pushes out the least busy one,
 * which then starts again with a whole budget (never locked out). */
static void
test_collisions(void)
{
	struct rate_table *t = rate_table_new(2, 2, HOUR_MS);
	uint64_t a = 0x0000000000000000ull, b = 0x0000000100000001ull,
		 c = 0x0000000000000001ull;

	T_CHECK_INT(burst(t, a, 5, 5), 2);
	T_CHECK_INT(burst(t, b, 5, 1), 1);
	T_CHECK_INT(burst(t, c, 5, 5), 2); /* replaced b (earlier arrival) */
	T_CHECK_INT(burst(t, a, 5, 5), 0); /* a kept its count */
	T_CHECK_INT(burst(t, b, 5, 5), 2); /* b forgotten: a fresh budget */
	rate_table_free(t);
}

static void
test_no_limit(void)
{
	struct rate_table *t = rate_table_new(8, 0, HOUR_MS);

	T_CHECK_INT(burst(t, 7, 1, 1000), 1000);
	rate_table_free(t);
	rate_table_free(NULL);
}

int
main(void)
{
	T_RUN(test_burst_then_steady);
	T_RUN(test_keys_are_independent);
	T_RUN(test_collisions);
	T_RUN(test_no_limit);
	return t_summary();
}
