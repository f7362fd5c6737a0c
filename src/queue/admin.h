/*
 * queue/admin: what `tern queue` asks of the queue besides reading it
 * (queue's third small interface): which messages a filter selects
 * (list, purge) and an administrator's bounce of a message's recipients.
 *
 * Pure: no clock (now is a parameter), no I/O, no logging.  Used by the
 * queue manager's control jobs (server/qmgr.c) on a worker thread or the
 * event loop: nothing is shared.
 */
#ifndef TERN_QUEUE_ADMIN_H
#define TERN_QUEUE_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "queue/queue.h"

#define QUEUE_FILTER_DOMAIN_MAX 255
/* RFC 3463: X.0.0, "other undefined status": no subject class (address,
 * mailbox, mail system, routing, protocol, content, security) describes
 * an administrator's decision at the sending MTA. */
#define QUEUE_ADMIN_BOUNCE_CODE 550
#define QUEUE_ADMIN_BOUNCE_ENH	"5.0.0"
#define QUEUE_ADMIN_BOUNCE_TEXT "bounced by the administrator"

/* Criteria that all must hold; an empty filter selects every message. */
struct queue_filter {
	char to[QUEUE_FILTER_DOMAIN_MAX + 1]; /* a pending recipient's domain */
	char from[QUEUE_ADDR_MAX + 1]; /* the sender: an address (with '@'),
					  a domain, or "<>"; "" none */
	uint64_t older;		       /* queued at least this many s ago */
	bool deferred;		       /* a pending recipient was tried */
	bool any;		       /* some criterion is set */
};

/*
 * The filter of a request's arguments: words "to=DOMAIN", "from=ADDR",
 * "from=DOMAIN", "from=<>", "older=SECONDS", "deferred", separated by
 * spaces.  0, or -1 with a reason in err (an unknown word, an empty or
 * over-long value, a value with a byte other than a domain's or an
 * address's).
 */
int queue_filter_parse(
    struct queue_filter *f, const char *args, char *err, size_t errlen);

/* Does env pass every criterion of f at now?  Names match without case. */
bool queue_filter_match(
    const struct queue_filter *f, const struct queue_env *env, time_t now);

/*
 * Every pending recipient of env fails for good now, with the reply
 * QUEUE_ADMIN_BOUNCE_* (what its DSN and `tern queue show` say).
 * Returns how many.
 */
size_t queue_env_admin_bounce(struct queue_env *env, time_t now);

/* "1h", "2d", "90m", "30s", "1w" or plain seconds into *secs: 0 or -1. */
int queue_duration_parse(const char *s, uint64_t *secs);

#endif
