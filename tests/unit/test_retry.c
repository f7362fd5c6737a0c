/*
 * Unit tests for src/queue/retry.c: the default schedule (first retry
 * within minutes, doubling, the 4000 s cap, expiry at 5 days, the last
 * try clamped to expiry), jitter bounds and spread, overflow safety for
 * huge attempt counts and times at the ends of time_t, delay warnings,
 * the latest next try of a schedule (retry_latest, for a reload).
 */
#include <stdint.h>

#include "t.h"
#include "queue/retry.h"

#define T0  ((time_t)1700000000)
#define DAY 86400

static struct retry_policy
defaults(void)
{
	struct retry_policy p;

	retry_policy_default(&p);
	return p;
}

/* next - now must lie within +-10% of want. */
static void
check_within(time_t next, time_t now, long long want)
{
	long long d = (long long)(next - now), j = want / 10;

	T_CHECK(d >= want - j && d <= want + j);
}

static void
test_default_sequence(void)
{
	static const long long want[] = {
	    300, 600, 1200, 2400, 4000, 4000, 4000};
	struct retry_policy p = defaults();
	time_t now = T0;
	unsigned n;

	t_case("defaults");
	T_CHECK_INT(p.first, 300);
	T_CHECK_INT(p.max_interval, 4000);
	T_CHECK_INT(p.lifetime, 5 * DAY);
	T_CHECK_INT(p.delay_warning, 0);
	t_case("attempt 0 is now");
	T_CHECK_INT(retry_next(&p, T0, 0, T0, 7), T0);
	t_case("doubling to the cap");
	for (n = 1; n <= sizeof(want) / sizeof(want[0]); n++) {
		time_t next = retry_next(&p, T0, n, now, 12345);

		check_within(next, now, want[n - 1]);
		now = next;
	}
	t_case("first retry within minutes");
	T_CHECK(retry_next(&p, T0, 1, T0, 0) - T0 <= 330);
	T_CHECK(retry_next(&p, T0, 1, T0, 0) - T0 >= 270);
}

/* Simulate a message failing every time: count tries, find the bounce. */
static void
test_lifetime(void)
{
	struct retry_policy p = defaults();
	time_t now = T0, last = T0;
	unsigned n = 1;

	t_case("retried until 5 days, then expired");
	T_CHECK(!retry_expired(&p, T0, T0));
	while (!retry_expired(&p, T0, now) && n < 10000) {
		time_t next = retry_next(&p, T0, n, now, 99);

		T_CHECK(next > now);
		last = now;
		now = next;
		n++;
	}
	T_CHECK_INT(now, T0 + 5 * DAY); /* last try exactly at expiry */
	T_CHECK(last < T0 + 5 * DAY);
	/* 4 growing steps (4500 s) then 4000 s +-10%: about 108 attempts */
	T_CHECK(n > 95 && n < 125);
	T_CHECK(retry_expired(&p, T0, T0 + 5 * DAY));
	T_CHECK(!retry_expired(&p, T0, T0 + 5 * DAY - 1));
	t_case("clock went back: not expired");
	T_CHECK(!retry_expired(&p, T0, T0 - 10 * DAY));
	t_case("lifetime 0: first failure is final");
	p.lifetime = 0;
	T_CHECK(retry_expired(&p, T0, T0));
	t_case("already expired: next is not clamped into the past");
	p = defaults();
	T_CHECK(retry_next(&p, T0, 3, T0 + 6 * DAY, 1) > T0 + 6 * DAY);
}

static void
test_jitter(void)
{
	struct retry_policy p = defaults();
	long long lo = 1LL << 40, hi = 0, d;
	unsigned seed, distinct = 0, prev = 0;

	t_case("jitter within +-10%, spread across seeds");
	for (seed = 0; seed < 20000; seed++) {
		d = (long long)(retry_next(&p, T0, 7, T0, seed * 2654435761u) -
				T0);
		T_CHECK(d >= 3600 && d <= 4400);
		if (d < lo)
			lo = d;
		if (d > hi)
			hi = d;
		if ((unsigned)d != prev)
			distinct++;
		prev = (unsigned)d;
	}
	T_CHECK(lo <= 3620 && hi >= 4380);
	T_CHECK(distinct > 15000);
	t_case("same seed, same schedule; differs by attempt");
	T_CHECK_INT(
	    retry_next(&p, T0, 5, T0, 42), retry_next(&p, T0, 5, T0, 42));
	T_CHECK(
	    retry_next(&p, T0, 5, T0, 42) != retry_next(&p, T0, 6, T0, 42) ||
	    retry_next(&p, T0, 6, T0, 42) != retry_next(&p, T0, 7, T0, 42));
	t_case("tiny intervals never reach zero");
	p.first = 1;
	p.max_interval = 1;
	for (seed = 0; seed < 100; seed++)
		T_CHECK_INT(retry_next(&p, T0, 3, T0, seed), T0 + 1);
}

static void
test_overflow(void)
{
	struct retry_policy p = defaults();
	time_t big = (time_t)INT64_MAX;
	unsigned n;

	t_case("huge attempt counts stay at the cap");
	for (n = 8; n < 200; n++)
		check_within(retry_next(&p, T0, n, T0, n), T0, 4000);
	check_within(retry_next(&p, T0, UINT32_MAX, T0, 1), T0, 4000);
	check_within(retry_next(&p, T0, 33, T0, 1), T0, 4000);
	check_within(retry_next(&p, T0, 64, T0, 1), T0, 4000);
	t_case("huge first and cap");
	p.first = UINT32_MAX;
	p.max_interval = UINT32_MAX;
	p.lifetime = UINT32_MAX;
	check_within(retry_next(&p, T0, 40, T0, 3), T0, UINT32_MAX);
	t_case("cap below first uses first");
	p = defaults();
	p.first = 5000;
	check_within(retry_next(&p, T0, 9, T0, 3), T0, 5000);
	t_case("zero fields mean defaults");
	p.first = 0;
	p.max_interval = 0;
	check_within(retry_next(&p, T0, 1, T0, 3), T0, 300);
	check_within(retry_next(&p, T0, 30, T0, 3), T0, 4000);
	t_case("times at the ends of time_t saturate");
	p = defaults();
	T_CHECK_INT(retry_next(&p, big - 10, 5, big - 10, 1), big);
	T_CHECK(retry_next(&p, big, 5, big - 100000, 1) > big - 100000);
	T_CHECK(retry_expired(&p, -big, big));
	T_CHECK(!retry_expired(&p, big, -big));
	T_CHECK(!retry_expired(&p, big, big));
	p.delay_warning = 3600;
	T_CHECK(!retry_warn_due(&p, -big, big, false)); /* expired */
}

static void
test_warning(void)
{
	struct retry_policy p = defaults();

	t_case("warnings off by default");
	T_CHECK(!retry_warn_due(&p, T0, T0 + 3 * DAY, false));
	t_case("warning at delay_warning, once");
	p.delay_warning = 4 * 3600;
	T_CHECK(!retry_warn_due(&p, T0, T0 + 4 * 3600 - 1, false));
	T_CHECK(retry_warn_due(&p, T0, T0 + 4 * 3600, false));
	T_CHECK(retry_warn_due(&p, T0, T0 + 2 * DAY, false));
	T_CHECK(!retry_warn_due(&p, T0, T0 + 2 * DAY, true));
	t_case("no warning once expired: it bounces instead");
	T_CHECK(!retry_warn_due(&p, T0, T0 + 5 * DAY, false));
	t_case("clock went back");
	T_CHECK(!retry_warn_due(&p, T0, T0 - DAY, false));
}

/* retry_latest: what a reload that shortens the schedule brings a
 * waiting message's next try forward to. */
static void
test_latest(void)
{
	struct retry_policy p = defaults();
	uint32_t seed;

	t_case("latest: the longest interval from now, jittered");
	for (seed = 0; seed < 200; seed++)
		check_within(
		    retry_latest(&p, T0, T0 + 60, seed), T0 + 60, 4000);
	t_case("latest: a short max_interval is the bound");
	p.first = 1;
	p.max_interval = 2;
	for (seed = 0; seed < 50; seed++) {
		time_t l = retry_latest(&p, T0, T0 + 60, seed);

		T_CHECK(l >= T0 + 61 && l <= T0 + 63);
	}
	t_case("latest: expiry when it comes first");
	p = defaults();
	T_CHECK_INT(retry_latest(&p, T0, T0 + 5 * DAY - 100, 7), T0 + 5 * DAY);
	t_case("latest: an expired message is due now");
	p.lifetime = 3600;
	T_CHECK_INT(retry_latest(&p, T0, T0 + 7200, 7), T0 + 7200);
	p.lifetime = 0;
	T_CHECK_INT(retry_latest(&p, T0, T0 + 1, 7), T0 + 1);
}

int
main(void)
{
	T_RUN(test_default_sequence);
	T_RUN(test_lifetime);
	T_RUN(test_jitter);
	T_RUN(test_overflow);
	T_RUN(test_warning);
	T_RUN(test_latest);
	return t_summary();
}
