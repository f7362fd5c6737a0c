/*
 * dsn: which delivery status notifications (RFC 3461, 3464) an attempt
 * owes the sender, and the reports themselves.  A failure report for
 * recipients that failed for good (or expired) unless NOTIFY said
 * otherwise; a delay warning once after queue.delay_warning; a "relayed"
 * report when NOTIFY asked for SUCCESS and the next hop did not take DSN
 * parameters, a "delivered" one when an LMTP server or a Maildir here
 * took it.  Nothing is ever reported to the null sender <>, so DSNs
 * cannot loop; a report whose store failed stays owed in the envelope
 * (queue_rcpt.dsn_owed) until a later attempt stores it.
 *
 * Owns: struct dsn_plan (the reports of one attempt and who is in each),
 * the DSN decision table, the assembly of a report from the envelope and
 * the original message (through bounce.h).  May call: queue (envelope),
 * attempt (per-recipient results), bounce, retry, smtp, util.  Used by
 * the queue manager's adapter (server/qmgr.c), which asks the DSN rate
 * limits, reads the original, stores the reports and logs.
 *
 * Pure: no clock, no I/O, no logging; every time, the report's Date and
 * Message-ID come from the caller.
 */
#ifndef TERN_QUEUE_DSN_H
#define TERN_QUEUE_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "queue/attempt.h"
#include "queue/queue.h"
#include "queue/retry.h"

/* The report kinds; a recipient's owed mark is its kind plus one. */
enum dsn_kind { DSN_FAILURE, DSN_DELAY, DSN_SUCCESS, DSN_KINDS };

extern const char *const dsn_kind_names[DSN_KINDS]; /* "failure"... */

/*
 * Which report, if any (-1), tells what changed for r in this attempt:
 * before is its state when loaded, final that its mailbox took it (LMTP,
 * Maildir), warn_now that the message's delay warning is due.  NOTIFY=
 * NEVER: none; FAILURE and DELAY are on by default (no NOTIFY), SUCCESS
 * only when asked.
 */
int dsn_kind_new(const struct queue_rcpt *r, enum queue_rcpt_state before,
    bool final, bool warn_now);
/*
 * dsn_kind_new, else the report an earlier attempt owes (r->dsn_owed).
 * An owed delay warning is moot once r is no longer pending: its final
 * report goes instead.
 */
int dsn_kind_for(const struct queue_rcpt *r, enum queue_rcpt_state before,
    bool final, bool warn_now);

/*
 * r failed for good in this attempt and gets no failure report (kind is
 * its dsn_kind_for): why, for the log ("null_sender", "notify_never",
 * "notify_without_failure"); NULL when it is not such a recipient.
 */
const char *dsn_suppressed(const struct queue_env *env,
    const struct queue_rcpt *r, enum queue_rcpt_state before, int kind);

/* Mail that came over the network without AUTH (not sendmail's socket,
 * whose sessions record "uid=N" as their address, nor a DSN of ours):
 * its success and delay reports go through the DSN rate limits. */
bool queue_env_untrusted(const struct queue_env *env);

struct dsn_plan {
	bool want[DSN_KINDS];	  /* a report of this kind is due */
	bool was_owed[DSN_KINDS]; /* made again for an owed mark: it was
				     rate limited when it was first due */
	unsigned char *marks; /* per recipient: its report's kind + 1, or 0 */
	int *kinds;	      /* per recipient: dsn_kind_for's answer */
	bool remove;	      /* no recipient pending: the message goes */
	bool owed;	      /* a report's store failed (dsn_plan_owe) */
	size_t nrcpt;	      /* private: of marks and kinds */
};

/*
 * The end of an attempt (after attempt_expire): the reports due for each
 * recipient of env, each owed mark cleared (dsn_plan_owe sets it again if
 * its store fails), env->warned set to now when the delay warning is
 * made, env->next_try from its pending recipients.  warn_now: the
 * message's delay warning is due (retry_warn_due).  Free with
 * dsn_plan_free.
 */
void dsn_plan_make(struct dsn_plan *p, struct queue_env *env,
    const struct attempt_rcpt *track, bool warn_now, time_t now);
void dsn_plan_free(struct dsn_plan *p);

/* The rate limits refused the report of kind: nobody is in it. */
void dsn_plan_drop(struct dsn_plan *p, int kind);

/*
 * The report of kind could not be stored: its recipients keep an owed
 * mark in the envelope, so a later attempt (or one after a restart) makes
 * it instead of losing it with the recipient's final state.
 */
void dsn_plan_owe(struct dsn_plan *p, struct queue_env *env, int kind);

/*
 * An owed report keeps the message queued and brings its next attempt
 * near: queue.retry_first from now at the latest.  Returns that wait (s).
 */
unsigned dsn_plan_owed_reschedule(struct dsn_plan *p, struct queue_env *env,
    const struct retry_policy *retry, time_t now);

/* A report's own fields, from the caller's configuration and clock. */
struct dsn_origin {
	const char *hostname;	/* Reporting-MTA */
	const char *date;	/* the report's Date value */
	const char *message_id; /* "<id@host>" */
	time_t retry_until;	/* delay reports: when retries stop */
};

/*
 * Append to out the report of kind for the recipients p marks with it, as
 * RFC 3464 wants it: each recipient's action, status, the remote server's
 * whole last reply (Diagnostic-Code) and the host that gave it (track's
 * mx), with msg (the original, CRLF form) returned as RET says.  Returns 0,
 * or -1 when nobody is in it or bounce_build refuses.
 */
int dsn_build(const struct queue_env *env, const struct dsn_plan *p,
    const struct attempt_rcpt *track, int kind, const struct dsn_origin *o,
    const char *msg, size_t msg_len, struct buf *out);

/*
 * RFC 3461 5.2.2: a "delivered" (or "expanded") report to sender for the
 * recipients that asked NOTIFY=SUCCESS and were delivered into Maildirs
 * at the end of data.  msg is the message as received (for RET).
 */
struct dsn_delivered_rcpt {
	char *addr;		  /* as given in RCPT */
	char *orcpt_type, *orcpt; /* NULL: no ORCPT */
	bool expanded;		  /* an alias with several targets */
};
struct dsn_delivered {
	const char *id, *sender, *envid; /* envid: NULL or "" for none */
	enum smtp_ret ret;
	bool smtputf8;
	bool requiretls; /* RFC 8689 5: headers only, whatever ret says */
	const struct dsn_delivered_rcpt *rcpts;
	size_t nrcpts;
	const char *msg;
	size_t msg_len;
	const char *client_ip; /* the session's (DSN rate limits) */
	bool trusted;	       /* AUTH or local: never rate limited */
};
/* The report for d (its first BOUNCE_RCPTS_MAX recipients), arrived and
 * tried at now; 0, or -1 when bounce_build refuses. */
int dsn_build_delivered(const struct dsn_delivered *d,
    const struct dsn_origin *o, time_t now, struct buf *out);

#endif
