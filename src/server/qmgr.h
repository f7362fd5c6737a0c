/*
 * qmgr: the queue manager's adapter on the event loop.  The decisions are
 * src/queue's (sched.h: the schedule; attempt.h: an attempt's groups,
 * results and expiry; dsn.h: the reports owed and their assembly); this
 * part owns what needs the world: the timer, the worker jobs that load,
 * rewrite and remove envelopes, the table lookups of routes and of DSN
 * senders, remote and Maildir delivery, the DSN rate limits, storing the
 * reports, and the control commands of `tern queue`.
 *
 * Owns: struct qmgr.  May call: deliver (remote), queue, table (through
 * the lookups), the rest of server (workers, lookups, inject).  Event
 * loop only.
 */
#ifndef TERN_SERVER_QMGR_H
#define TERN_SERVER_QMGR_H

#include <stdbool.h>

#include "conf/conf.h"
#include "queue/dsn.h"
#include "queue/queue.h"
#include "util/util.h"

struct server;
struct qmgr;
/* Opens nothing: s->spool must be open.  Loads every envelope (spool_scan)
 * and schedules them. */
struct qmgr *qmgr_new(struct server *s);
void qmgr_free(struct qmgr *q);
/* A committed envelope (ownership moves); schedules its first attempt. */
void qmgr_add(struct qmgr *q, struct queue_env *env);
/*
 * RFC 3461 5.2.2: a "delivered" (or "expanded") DSN to sender for the
 * recipients that asked NOTIFY=SUCCESS and were delivered into Maildirs
 * at the end of data (struct dsn_delivered, queue/dsn.h).  Built now
 * from msg (the message as received, for RET), stored like every DSN
 * (its sender's Maildir, LMTP or the queue) on a worker; failures are
 * logged, nothing is returned.
 */
void qmgr_dsn_delivered(struct qmgr *q, const struct dsn_delivered *d);
bool qmgr_idle(const struct qmgr *q); /* no attempt or job in flight */
/* ternd is stopping: deliveries waiting for a destination's pause are
 * deferred now (remote_stop), so the exit does not wait for it. */
void qmgr_stop(struct qmgr *q);
/* Messages in the queue and the age in seconds of the oldest (0: none),
 * for the metrics; walks the schedule (loop only). */
void qmgr_depth(struct qmgr *q, size_t *n_out, uint64_t *oldest_age_out);
/*
 * A reload (reload.c), in two steps.  qmgr_settings_new: the delivery
 * settings of nc (qsettings.h), the smarthost password file read again,
 * the engine made when one of its keys changed; NULL with err when any
 * of that fails (the reload is refused).  Then either qmgr_settings_use:
 * new attempts take them (attempts under way keep theirs), and when the
 * retry schedule changed, every waiting message's next try is brought
 * within the new one (retry_latest); or qsettings_free (qsettings.h)
 * when a later step refused the reload.
 */
struct qsettings;
struct qsettings *qmgr_settings_new(
    struct qmgr *q, const struct conf *nc, char *err, size_t errlen);
void qmgr_settings_use(struct qmgr *q, struct qsettings *st, unsigned gen);
/* A reload: limits.dsn_per_client and _per_domain of cf, the counts of
 * the last hour kept (dsnlimit.h).  Loop only, as every DSN's check. */
void qmgr_dsn_limits(struct qmgr *q, const struct conf *cf);
/* Control: each replies into out (JSON) and calls done(arg) later. */
void qmgr_control(struct qmgr *q, const char *line, struct buf *out,
    void (*done)(void *arg), void *arg);

#endif
