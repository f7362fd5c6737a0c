/*
 * retry: the retry schedule of deferred messages.
 *
 * After attempt n (n >= 1) the next try waits first * 2^(n-1) seconds,
 * capped at max_interval, as Postfix's backoff between minimal_ and
 * maximal_backoff_time does: with the defaults 300, 600, 1200, 2400, then
 * 4000 s until the message is 5 days old.  Each wait is varied by up to
 * RETRY_JITTER_PERCENT either way, by a hash of (seed, attempt): messages
 * that failed together (a peer down) then spread out instead of hitting
 * the peer in lockstep every interval, and a given message's schedule is
 * still reproducible, which the tests rely on.
 *
 * Invariants: no signed overflow for any input (64-bit arithmetic on
 * unsigned widths, saturating additions); the next try is after now; it is
 * not after the expiry time while that lies ahead, so the last attempt is
 * made as the message expires and the bounce is not late by an interval.
 *
 * Pure: no clock, no I/O.
 */
#include "queue/retry.h"

#include <limits.h>

_Static_assert(sizeof(time_t) == sizeof(int64_t) && (time_t)-1 < 0,
    "time_t is a signed 64-bit count of seconds");
#define RETRY_TIME_MAX ((time_t)INT64_MAX)

void
retry_policy_default(struct retry_policy *p)
{
	p->first = RETRY_FIRST_DEFAULT;
	p->max_interval = RETRY_MAX_INTERVAL_DEFAULT;
	p->lifetime = RETRY_LIFETIME_DEFAULT;
	p->delay_warning = 0;
}

/* a + b for b >= 0, saturating at the largest time_t */
static time_t
retry_add(time_t a, uint64_t b)
{
	if (b > (uint64_t)INT64_MAX || a > RETRY_TIME_MAX - (time_t)b)
		return RETRY_TIME_MAX;
	return a + (time_t)b;
}

/* The un-jittered wait after `attempts` (>= 1) failures. */
static uint64_t
retry_interval(const struct retry_policy *p, unsigned attempts)
{
	uint64_t first = p->first ? p->first : RETRY_FIRST_DEFAULT;
	uint64_t cap =
	    p->max_interval ? p->max_interval : RETRY_MAX_INTERVAL_DEFAULT;
	unsigned shift = attempts - 1;

	if (cap < first)
		cap = first;
	/* first < 2^32, so a shift below 32 cannot overflow 64 bits */
	if (shift >= 32 || (first << shift) >= cap)
		return cap;
	return first << shift;
}

/* A well-mixed 32-bit value of (seed, attempts) (a murmur3 finaliser). */
static uint32_t
retry_mix(uint32_t seed, unsigned attempts)
{
	uint32_t h = seed ^ (attempts * 0x9e3779b9u);

	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

/* interval varied by up to RETRY_JITTER_PERCENT either way, at least 1 */
static uint64_t
retry_jitter(uint64_t interval, uint32_t seed, unsigned attempts)
{
	uint64_t j = interval * RETRY_JITTER_PERCENT / 100;
	uint64_t r = retry_mix(seed, attempts) % (2 * j + 1);

	interval = interval - j + r;
	return interval ? interval : 1;
}

time_t
retry_next(const struct retry_policy *p, time_t created, unsigned attempts,
    time_t now, uint32_t jitter_seed)
{
	time_t next, deadline;

	if (attempts == 0)
		return now;
	next = retry_add(now,
	    retry_jitter(retry_interval(p, attempts), jitter_seed, attempts));
	deadline = retry_add(created, p->lifetime);
	if (deadline > now && next > deadline)
		next = deadline;
	return next;
}

/* Past this many attempts every interval is the longest (32 doublings
 * leave any 32-bit first interval above any cap). */
#define RETRY_ATTEMPTS_CAPPED 33u

time_t
retry_latest(const struct retry_policy *p, time_t created, time_t now,
    uint32_t jitter_seed)
{
	if (retry_expired(p, created, now))
		return now;
	return retry_next(p, created, RETRY_ATTEMPTS_CAPPED, now, jitter_seed);
}

/* now - created in seconds, 0 if the clock went back, saturating. */
static uint64_t
retry_age(time_t created, time_t now)
{
	time_t age;

	if (now <= created)
		return 0;
	if (__builtin_sub_overflow(now, created, &age))
		return UINT64_MAX;
	return (uint64_t)age;
}

bool
retry_expired(const struct retry_policy *p, time_t created, time_t now)
{
	return retry_age(created, now) >= p->lifetime;
}

bool
retry_warn_due(
    const struct retry_policy *p, time_t created, time_t now, bool warned)
{
	if (p->delay_warning == 0 || warned || retry_expired(p, created, now))
		return false;
	return retry_age(created, now) >= p->delay_warning;
}
