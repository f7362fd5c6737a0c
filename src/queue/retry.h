/*
 * retry: when a deferred message is tried again, when it has waited too
 * long and bounces, when its sender is told it is delayed.
 *
 * Owns: the retry schedule (struct retry_policy and its arithmetic).  May
 * call: libc only.  Used by attempt.c and dsn.c, and by the queue
 * manager (server/qmgr.c) for the policy.
 *
 * Pure: no clock, no I/O; every time is a parameter (seconds since the
 * epoch), so the schedule is testable and the scheduler owns "now".
 */
#ifndef TERN_QUEUE_RETRY_H
#define TERN_QUEUE_RETRY_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define RETRY_FIRST_DEFAULT	   300	/* s, like minimal_backoff_time */
#define RETRY_MAX_INTERVAL_DEFAULT 4000 /* s, like maximal_backoff_time */
/* s, like maximal_queue_lifetime */
#define RETRY_LIFETIME_DEFAULT (5 * 86400)
#define RETRY_JITTER_PERCENT   10 /* each interval varies +-10% */

struct retry_policy {
	unsigned first;	       /* s; the first interval; 0 = the default */
	unsigned max_interval; /* s; intervals stop doubling here; 0 = default;
				  below first, first is used */
	unsigned lifetime;     /* s; a message this old bounces; 0 = no retry:
				  the first temporary failure is final */
	unsigned
	    delay_warning; /* s; tell the sender once after this; 0 = off */
};

/* The defaults above, delay warnings off. */
void retry_policy_default(struct retry_policy *p);

/*
 * When to try again, after `attempts` failed attempts (attempts 0: now).
 * The interval doubles from first to max_interval, varied by +-10% with a
 * value derived from jitter_seed and attempts (use a hash of the queue
 * id), so messages deferred together spread out.  The answer is never
 * before now + 1, and never after created + lifetime while that is still
 * ahead: the last try happens at expiry, not up to an interval past it.
 * Saturates instead of overflowing, for any attempts and times.
 */
time_t retry_next(const struct retry_policy *p, time_t created,
    unsigned attempts, time_t now, uint32_t jitter_seed);

/*
 * The latest next try p gives a message waiting now, whatever its count
 * of attempts: the longest interval (jittered) from now, or its expiry
 * when that comes first; now once it has expired.  A reload that shortens
 * the schedule brings each waiting message's next try forward to this.
 */
time_t retry_latest(const struct retry_policy *p, time_t created, time_t now,
    uint32_t jitter_seed);

/* now - created >= lifetime: stop retrying, bounce what is left. */
bool retry_expired(const struct retry_policy *p, time_t created, time_t now);

/*
 * A delay warning is due: warnings are on, none was sent yet, the message
 * is at least delay_warning old and not yet expired (then it bounces).
 */
bool retry_warn_due(
    const struct retry_policy *p, time_t created, time_t now, bool warned);

#endif
