/*
 * Unit tests of the per-key rate table (src/rate/rate.c): a burst of N
 * per window, then one per window/N; keys independent; two keys in one
 * slot; limit 0 means no limit; the table never locks a key out; what is
 * left and when the next event may come; blocks (penalties); and a clock
 * that goes back frees nobody.  The scripted cases are a table: each row
 * a table's limit and window and a list of steps with what each must
 * answer.
 */
#include <stdlib.h>

#include "rate/rate.h"
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

/* ---- the table of scripted cases ---------------------------------- */

enum rstep_op {
	R_END,
	R_ALLOW,     /* check, and take when allowed: want 1/0 */
	R_CHECK,     /* check only: want 1/0 */
	R_TAKE,	     /* take whatever the check says */
	R_REMAINING, /* rate_remaining == want */
	R_RETRY,     /* rate_retry_after == want ms */
	R_BLOCK,     /* rate_block for want ms */
	R_LIMIT,     /* rate_table_set_limit to want (key unused) */
};

struct rstep {
	enum rstep_op op;
	uint64_t key, now, want;
};

struct rcase {
	const char *name;
	unsigned limit;
	uint64_t window;
	struct rstep steps[16];
};

#define MIN_MS 60000u

static const struct rcase rcases[] = {
    {"burst of 6 then refused, retry in one interval", 6, MIN_MS,
	{{R_REMAINING, 1, 1000, 6}, {R_ALLOW, 1, 1000, 1},
	    {R_ALLOW, 1, 1000, 1}, {R_REMAINING, 1, 1000, 4},
	    {R_ALLOW, 1, 1000, 1}, {R_ALLOW, 1, 1000, 1}, {R_ALLOW, 1, 1000, 1},
	    {R_ALLOW, 1, 1000, 1}, {R_ALLOW, 1, 1000, 0},
	    {R_REMAINING, 1, 1000, 0}, {R_RETRY, 1, 1000, 10000},
	    {R_RETRY, 1, 6000, 5000}, {R_CHECK, 1, 10999, 0},
	    {R_ALLOW, 1, 11000, 1}, {R_ALLOW, 1, 11000, 0},
	    {R_REMAINING, 2, 11000, 6}}},
    {"a clock that goes back frees nobody", 6, MIN_MS,
	{{R_ALLOW, 7, 100000, 1}, {R_ALLOW, 7, 100000, 1},
	    {R_ALLOW, 7, 100000, 1}, {R_ALLOW, 7, 100000, 1},
	    {R_ALLOW, 7, 100000, 1}, {R_ALLOW, 7, 100000, 1},
	    {R_CHECK, 7, 50000, 0}, {R_RETRY, 7, 50000, 60000},
	    {R_TAKE, 7, 50000, 0}, {R_CHECK, 7, 1, 0},
	    {R_CHECK, 7, 100000 + 10000, 0}, {R_ALLOW, 7, 100000 + 20000, 1},
	    {R_ALLOW, 7, 100000 + 20000, 0}}},
    {"a clock gone far back (more than two windows) frees nobody", 2, MIN_MS,
	{{R_ALLOW, 9, 10 * MIN_MS, 1}, {R_ALLOW, 9, 10 * MIN_MS, 1},
	    {R_TAKE, 9, 10 * MIN_MS, 0}, {R_TAKE, 9, 0 + 5, 0},
	    {R_CHECK, 9, 5, 0}, {R_CHECK, 9, 10 * MIN_MS, 0},
	    {R_ALLOW, 9, 12 * MIN_MS, 1}}},
    {"a penalty: blocked until it ends, to the ms", 1, 1,
	{{R_CHECK, 3, 5000, 1}, {R_BLOCK, 3, 5000, 900000},
	    {R_CHECK, 3, 5000, 0}, {R_RETRY, 3, 5000, 900000},
	    {R_CHECK, 3, 904999, 0}, {R_CHECK, 3, 905000, 1},
	    {R_CHECK, 4, 5000, 1}}},
    {"a penalty survives a clock gone back", 1, 1,
	{{R_BLOCK, 3, 500000, 1000}, {R_CHECK, 3, 1000, 0},
	    {R_RETRY, 3, 1000, 500000}, {R_CHECK, 3, 501000, 1}}},
    {"a shorter penalty does not shorten a longer one", 1, 1,
	{{R_BLOCK, 5, 1000, 100000}, {R_BLOCK, 5, 2000, 10},
	    {R_CHECK, 5, 50000, 0}, {R_CHECK, 5, 101000, 1}}},
    {"a penalty on a counting table", 6, MIN_MS,
	{{R_BLOCK, 8, 1000, 30000}, {R_CHECK, 8, 30999, 0},
	    {R_REMAINING, 8, 30999, 0}, {R_ALLOW, 8, 31000, 1},
	    {R_ALLOW, 8, 31000, 0}}},
    {"limit 0: no limit, nothing to wait, blocks ignored", 0, MIN_MS,
	{{R_ALLOW, 1, 1, 1}, {R_BLOCK, 1, 1, 1000}, {R_ALLOW, 1, 2, 1},
	    {R_REMAINING, 1, 2, UINT32_MAX}, {R_RETRY, 1, 2, 0}}},
    {"a window shorter than the limit: one ms per event", 10, 5,
	{{R_ALLOW, 1, 100, 1}, {R_ALLOW, 1, 100, 1}, {R_ALLOW, 1, 100, 1},
	    {R_ALLOW, 1, 100, 1}, {R_ALLOW, 1, 100, 1}, {R_ALLOW, 1, 100, 0},
	    {R_ALLOW, 1, 101, 1}}},
    /* a reload (rate_table_set_limit): the counts stay, the limit moves */
    {"limit lowered: the events counted before count against it", 10, MIN_MS,
	{{R_TAKE, 1, 1000, 0}, {R_TAKE, 1, 1000, 0}, {R_TAKE, 1, 1000, 0},
	    {R_REMAINING, 1, 1000, 7}, {R_LIMIT, 0, 1000, 4},
	    {R_REMAINING, 1, 1000, 1}, {R_ALLOW, 1, 1000, 1},
	    {R_ALLOW, 1, 1000, 0}, {R_REMAINING, 2, 1000, 4},
	    {R_RETRY, 1, 1000, 15000}}},
    {"limit under the count: refused until it drains (capped)", 10, MIN_MS,
	{{R_TAKE, 1, 0, 0}, {R_TAKE, 1, 0, 0}, {R_TAKE, 1, 0, 0},
	    {R_TAKE, 1, 0, 0}, {R_TAKE, 1, 0, 0}, {R_LIMIT, 0, 0, 2},
	    {R_CHECK, 1, 0, 0}, {R_CHECK, 1, 90000 - 1, 0},
	    {R_ALLOW, 1, 90000, 1}}},
    {"limit raised: the same count leaves more", 2, MIN_MS,
	{{R_ALLOW, 1, 0, 1}, {R_ALLOW, 1, 0, 1}, {R_ALLOW, 1, 0, 0},
	    {R_LIMIT, 0, 0, 6}, {R_REMAINING, 1, 0, 4}, {R_ALLOW, 1, 0, 1}}},
    {"limit to 0 and back: nothing counted while off", 3, MIN_MS,
	{{R_ALLOW, 1, 0, 1}, {R_ALLOW, 1, 0, 1}, {R_LIMIT, 0, 0, 0},
	    {R_ALLOW, 1, 0, 1}, {R_ALLOW, 1, 0, 1}, {R_LIMIT, 0, 0, 3},
	    {R_REMAINING, 1, 0, 3}}},
    {"the same limit again changes nothing", 3, MIN_MS,
	{{R_ALLOW, 1, 0, 1}, {R_LIMIT, 0, 0, 3}, {R_REMAINING, 1, 0, 2}}},
};

static void
rcase_run(const struct rcase *rc)
{
	struct rate_table *t = rate_table_new(64, rc->limit, rc->window);
	const struct rstep *st;
	bool ok;

	T_CHECK(t != NULL);
	for (st = rc->steps; t != NULL && st->op != R_END; st++) {
		switch (st->op) {
		case R_ALLOW:
			ok = rate_check(t, st->key, st->now);
			if (ok)
				rate_take(t, st->key, st->now);
			T_CHECK_INT(ok, st->want);
			break;
		case R_CHECK:
			T_CHECK_INT(rate_check(t, st->key, st->now), st->want);
			break;
		case R_TAKE:
			rate_take(t, st->key, st->now);
			break;
		case R_REMAINING:
			T_CHECK_INT(
			    rate_remaining(t, st->key, st->now), st->want);
			break;
		case R_RETRY:
			T_CHECK_INT(
			    rate_retry_after(t, st->key, st->now), st->want);
			break;
		case R_BLOCK:
			rate_block(t, st->key, st->now, st->want);
			break;
		case R_LIMIT:
			rate_table_set_limit(t, (unsigned)st->want, st->now);
			break;
		case R_END:
			break;
		}
	}
	rate_table_free(t);
}

int
main(void)
{
	size_t i;

	for (i = 0; i < sizeof(rcases) / sizeof(rcases[0]); i++) {
		t_case(rcases[i].name);
		rcase_run(&rcases[i]);
		t_case_end();
	}
	T_RUN(test_burst_then_steady);
	T_RUN(test_keys_are_independent);
	T_RUN(test_collisions);
	T_RUN(test_no_limit);
	return t_summary();
}
