/*
 * attempt: one delivery attempt of a queued message, as decisions.  Given
 * the envelope and where each pending recipient goes now (the table's
 * answers, asked by the caller), it plans the attempt's groups (one per
 * remote domain or smarthost, per LMTP target, and one for the Maildirs
 * here); given a group's results, it merges them into the recipients'
 * states and next tries; at the end it fails what has been queued too
 * long and says when the message is tried next.
 *
 * Owns: struct attempt_plan, struct attempt_rcpt (what an attempt learns
 * per recipient) and the recipient state transitions of an attempt
 * (docs/queue.md).  May call: queue (envelope types), retry, smtp (result
 * and recipient types), addr, util.  Used by the queue manager's adapter
 * (server/qmgr.c), which asks the table, runs the deliveries and logs.
 *
 * Pure: no clock, no I/O, no logging; the time and the randomness of the
 * retry schedule come in struct attempt_clock.  Event loop or not: the
 * caller's thread; nothing is shared.
 */
#ifndef TERN_QUEUE_ATTEMPT_H
#define TERN_QUEUE_ATTEMPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "addr/addr.h"
#include "queue/queue.h"
#include "queue/retry.h"

#define ATTEMPT_GROUPS_MAX 64  /* destinations per message and attempt */
#define ATTEMPT_MX_MAX	   255 /* a host name (DSN Remote-MTA) */

/* Where a pending recipient goes in this attempt: the table's answer. */
enum attempt_route {
	ATTEMPT_ROUTE_REMOTE,  /* by MX, or the smarthost */
	ATTEMPT_ROUTE_LMTP,    /* to an LMTP server (way.lmtp) */
	ATTEMPT_ROUTE_MAILDIR, /* into Maildirs here (way.boxes) */
	ATTEMPT_ROUTE_TEMP,    /* the table could not answer: 451 4.3.0 */
	ATTEMPT_ROUTE_NOUSER,  /* a local domain without this user: 550 */
	ATTEMPT_ROUTE_MOVED,   /* aliased elsewhere since it was queued */
	ATTEMPT_ROUTE_SKIP     /* not pending: not tried */
};

struct attempt_way {
	enum attempt_route route;
	const char *lmtp;	  /* ROUTE_LMTP: the target */
	const char *const *boxes; /* ROUTE_MAILDIR: the Maildirs */
	size_t nboxes;
};

/* One destination of the attempt and its recipients. */
struct attempt_group {
	bool lmtp;  /* to an LMTP server: final delivery */
	bool local; /* into Maildirs here: final delivery */
	char domain[ADDR_DOMAIN_MAX + 1]; /* or the LMTP target, smarthost */
	char **paths;			  /* local: the Maildirs, each once */
	size_t npaths;
	size_t *idx;			/* envelope recipient indexes */
	struct smtp_client_rcpt *rcpts; /* the same, for the client */
	size_t n;
};

struct attempt_plan {
	struct attempt_group groups[ATTEMPT_GROUPS_MAX];
	size_t ngroups;
	bool route_temp; /* a route lookup failed: the caller logs why */
};

/* What this attempt learned about each recipient (one per envelope's). */
struct attempt_rcpt {
	enum queue_rcpt_state before; /* when the envelope was loaded */
	bool final;		      /* delivered to its mailbox now */
	bool expired;		      /* failed by age now (attempt_expire) */
	char mx[ATTEMPT_MX_MAX + 1];  /* the host that answered now, or "" */
};

/* The clock and the spread of the retry schedule. */
struct attempt_clock {
	const struct retry_policy *retry;
	time_t now;
	uint32_t (*jitter)(void); /* a random value per deferred result */
};

/* One struct attempt_rcpt per recipient of env, before = its state now
 * (free). */
struct attempt_rcpt *attempt_track(const struct queue_env *env);

/*
 * Plan the attempt: each pending recipient whose way is REMOTE, LMTP or
 * MAILDIR joins the group of its destination (its domain, lowercased, or
 * smarthost when not NULL; its LMTP target; the Maildirs).  A recipient
 * the table could not place gets its result now: TEMP and MOVED are 4xx
 * (tried again later), NOUSER a 5xx.  Past ATTEMPT_GROUPS_MAX groups, the
 * rest waits for the next attempt untouched.  ways: one per recipient.
 */
void attempt_plan_build(struct attempt_plan *p, struct queue_env *env,
    const struct attempt_way *ways, const char *smarthost,
    const struct attempt_clock *clk);
void attempt_plan_free(struct attempt_plan *p);

/*
 * r's result in this attempt: OK delivers (or relays: NOTIFY=SUCCESS not
 * passed on by a relay, RFC 3461 5.2.2), PERM fails, TEMP keeps it
 * pending with its next try from the retry schedule.  final: the peer is
 * the mailbox (LMTP, Maildir), not a relay on the way.
 */
void attempt_result_apply(struct queue_rcpt *r, time_t created,
    const struct smtp_client_result *res, bool final,
    const struct attempt_clock *clk);

/*
 * Group g's results (res[i] for g's i-th recipient, n of them) into env,
 * and into track: final deliveries, and mx (the host that answered, when
 * the answer came from a remote MTA, not an LMTP server).
 */
void attempt_merge(struct queue_env *env, struct attempt_rcpt *track,
    const struct attempt_group *g, const struct smtp_client_result *res,
    size_t n, const char *mx, const struct attempt_clock *clk);

/*
 * RFC 5321 4.5.4.1: once env is queue.lifetime old, every pending
 * recipient fails (queue_rcpt_expire) and track[i].expired is set.
 * Returns how many expired.
 */
size_t attempt_expire(struct queue_env *env, struct attempt_rcpt *track,
    const struct retry_policy *p, time_t now);

/*
 * r fails for good with status 4.4.7 (RFC 3463: delivery time expired),
 * whatever its last attempt said; the last reply's enhanced code moves to
 * the front of its text, so the DSN still quotes the reply whole.
 */
void queue_rcpt_expire(struct queue_rcpt *r);
/* Failed by expiry, not by a 5xx: a temporary last reply and 4.4.7. */
bool queue_rcpt_expired(const struct queue_rcpt *r);

/* The earliest next try of env's pending recipients; 0 if none. */
time_t queue_env_next_try(const struct queue_env *env);

#endif
