/*
 * dsn.c: the DSN decisions of an attempt and the assembly of its reports
 * (dsn.h).  Only what changed in an attempt is reported, plus what an
 * earlier attempt owes; a recipient is in at most one report per attempt.
 */
#include <stdlib.h>
#include <string.h>

#include "queue/bounce.h"
#include "queue/dsn.h"

_Static_assert(QUEUE_DSN_FAILURE == DSN_FAILURE + 1 &&
		   QUEUE_DSN_DELAY == DSN_DELAY + 1 &&
		   QUEUE_DSN_SUCCESS == DSN_SUCCESS + 1,
    "owed marks follow the DSN kinds");

const char *const dsn_kind_names[DSN_KINDS] = {"failure", "delay", "success"};

static const enum bounce_kind dsn_bounce_kinds[DSN_KINDS] = {
    BOUNCE_FAILURE, BOUNCE_DELAY, BOUNCE_SUCCESS};
static const enum bounce_action dsn_actions[DSN_KINDS] = {
    BOUNCE_ACTION_FAILED, BOUNCE_ACTION_DELAYED, BOUNCE_ACTION_RELAYED};

int
dsn_kind_new(const struct queue_rcpt *r, enum queue_rcpt_state before,
    bool final, bool warn_now)
{
	if (r->notify & SMTP_NOTIFY_NEVER)
		return -1;
	if (r->state == QUEUE_RCPT_FAILED && before != QUEUE_RCPT_FAILED &&
	    (r->notify == 0 || (r->notify & SMTP_NOTIFY_FAILURE)))
		return DSN_FAILURE;
	if (r->state == QUEUE_RCPT_RELAYED && before != QUEUE_RCPT_RELAYED &&
	    (r->notify & SMTP_NOTIFY_SUCCESS))
		return DSN_SUCCESS;
	/* RFC 3461 5.2.2: final delivery (LMTP) with SUCCESS: "delivered" */
	if (final && r->state == QUEUE_RCPT_DELIVERED &&
	    (r->notify & SMTP_NOTIFY_SUCCESS))
		return DSN_SUCCESS;
	if (warn_now && r->state == QUEUE_RCPT_PENDING &&
	    (r->notify == 0 || (r->notify & SMTP_NOTIFY_DELAY)))
		return DSN_DELAY;
	return -1;
}

int
dsn_kind_for(const struct queue_rcpt *r, enum queue_rcpt_state before,
    bool final, bool warn_now)
{
	int k = dsn_kind_new(r, before, final, warn_now);

	if (k >= 0 || r->dsn_owed == QUEUE_DSN_NONE)
		return k;
	if (r->dsn_owed == QUEUE_DSN_DELAY && r->state != QUEUE_RCPT_PENDING)
		return -1;
	return (int)r->dsn_owed - 1;
}

const char *
dsn_suppressed(const struct queue_env *env, const struct queue_rcpt *r,
    enum queue_rcpt_state before, int kind)
{
	if (r->state != QUEUE_RCPT_FAILED || before == QUEUE_RCPT_FAILED ||
	    (kind >= 0 && env->sender[0] != '\0'))
		return NULL;
	if (env->sender[0] == '\0')
		return "null_sender";
	if (r->notify & SMTP_NOTIFY_NEVER)
		return "notify_never";
	return "notify_without_failure";
}

bool
queue_env_untrusted(const struct queue_env *env)
{
	return env->auth[0] == '\0' && strncmp(env->ip, "uid=", 4) != 0 &&
	       strcmp(env->proto, "local") != 0;
}

void
dsn_plan_make(struct dsn_plan *p, struct queue_env *env,
    const struct attempt_rcpt *track, bool warn_now, time_t now)
{
	size_t n = env->nrcpt ? env->nrcpt : 1, i;
	bool pending = false;

	memset(p, 0, sizeof(*p));
	p->nrcpt = env->nrcpt;
	p->marks = xcalloc(n, sizeof(*p->marks));
	p->kinds = xcalloc(n, sizeof(*p->kinds));
	for (i = 0; i < env->nrcpt; i++) {
		struct queue_rcpt *r = &env->rcpt[i];
		int k =
		    dsn_kind_for(r, track[i].before, track[i].final, warn_now);

		p->kinds[i] = k;
		if (k >= 0 && r->dsn_owed == (enum queue_dsn_owed)(k + 1))
			p->was_owed[k] = true; /* counted when it was due */
		/* reported now, or moot: dsn_plan_owe marks it again */
		r->dsn_owed = QUEUE_DSN_NONE;
		pending |= r->state == QUEUE_RCPT_PENDING;
		if (k >= 0 && env->sender[0] != '\0') {
			p->marks[i] = (unsigned char)(k + 1);
			p->want[k] = true;
		}
	}
	/* once per message, even when the rate limit drops it: it is not due
	 * again at the next attempt */
	if (warn_now && p->want[DSN_DELAY])
		env->warned = now;
	p->remove = !pending;
	env->next_try = queue_env_next_try(env);
}

void
dsn_plan_free(struct dsn_plan *p)
{
	free(p->marks);
	free(p->kinds);
	p->marks = NULL;
	p->kinds = NULL;
}

void
dsn_plan_drop(struct dsn_plan *p, int kind)
{
	size_t i;

	p->want[kind] = false;
	for (i = 0; i < p->nrcpt; i++)
		if (p->marks[i] == kind + 1)
			p->marks[i] = 0;
}

void
dsn_plan_owe(struct dsn_plan *p, struct queue_env *env, int kind)
{
	size_t i;

	for (i = 0; i < env->nrcpt; i++)
		if (p->marks[i] == kind + 1)
			env->rcpt[i].dsn_owed = (enum queue_dsn_owed)(kind + 1);
	p->owed = true;
}

unsigned
dsn_plan_owed_reschedule(struct dsn_plan *p, struct queue_env *env,
    const struct retry_policy *retry, time_t now)
{
	unsigned wait = retry->first ? retry->first : RETRY_FIRST_DEFAULT;
	time_t when = now + (time_t)wait;

	p->remove = false;
	if (env->next_try == 0 || env->next_try > when)
		env->next_try = when;
	return wait;
}

static enum bounce_ret
dsn_ret(enum smtp_ret ret, bool requiretls)
{
	/* RFC 8689 5: a report on a REQUIRETLS message returns the header
	   only, as if RET=HDRS, even when RET=FULL was asked */
	if (requiretls)
		return BOUNCE_RET_HDRS;
	return ret == SMTP_RET_HDRS   ? BOUNCE_RET_HDRS
	       : ret == SMTP_RET_FULL ? BOUNCE_RET_FULL
				      : BOUNCE_RET_DEFAULT;
}

/*
 * The remote server's whole reply, as RFC 3464 2.3.6 wants it (expired:
 * its enhanced code is in the text already, see queue_rcpt_expire); ""
 * when it does not fit.
 */
static void
dsn_diag(const struct queue_rcpt *r, char *out, size_t outlen)
{
	int rc;

	if (queue_rcpt_expired(r))
		rc = str_fmt(out, outlen, "%d %s", r->code, r->text);
	else
		rc = str_fmt(out, outlen, "%d %s%s%s", r->code, r->enh,
		    r->enh[0] ? " " : "", r->text);
	if (rc != 0)
		out[0] = '\0';
}

/* The bounce_rcpt of recipient i in the report of kind. */
static void
dsn_rcpt(const struct queue_env *env, const struct attempt_rcpt *track,
    size_t i, int kind, time_t retry_until, char *diag, size_t diaglen,
    struct bounce_rcpt *br)
{
	const struct queue_rcpt *r = &env->rcpt[i];

	br->final = r->addr;
	br->orcpt_type = r->orcpt_type[0] ? r->orcpt_type : NULL;
	br->orcpt = r->orcpt_type[0] ? r->orcpt : NULL;
	br->action = dsn_actions[kind];
	if (kind == DSN_SUCCESS && r->state == QUEUE_RCPT_DELIVERED)
		br->action = BOUNCE_ACTION_DELIVERED;
	br->status = r->enh[0] ? r->enh : NULL;
	if (r->code)
		dsn_diag(r, diag, diaglen);
	br->diag = r->code ? diag : NULL;
	br->remote_mta = track[i].mx[0] ? track[i].mx : NULL;
	br->last_attempt = r->last_try;
	br->retry_until = kind == DSN_DELAY ? retry_until : 0;
}

int
dsn_build(const struct queue_env *env, const struct dsn_plan *p,
    const struct attempt_rcpt *track, int kind, const struct dsn_origin *o,
    const char *msg, size_t msg_len, struct buf *out)
{
	struct bounce_rcpt *br = xcalloc(env->nrcpt + 1, sizeof(*br));
	char(*diag)[QUEUE_TEXT_MAX + 32] =
	    xcalloc(env->nrcpt + 1, sizeof(*diag));
	struct bounce_in in = {0};
	size_t i, n = 0;
	int rc;

	for (i = 0; i < env->nrcpt && n < BOUNCE_RCPTS_MAX; i++) {
		if (p->marks[i] != kind + 1)
			continue;
		dsn_rcpt(env, track, i, kind, o->retry_until, diag[n],
		    sizeof(diag[n]), &br[n]);
		n++;
	}
	in.reporting_mta = o->hostname;
	in.sender = env->sender;
	in.envid = env->envid[0] ? env->envid : NULL;
	in.arrival = env->created;
	in.kind = dsn_bounce_kinds[kind];
	in.ret = dsn_ret(env->ret, env->requiretls);
	in.smtputf8 = env->smtputf8;
	in.rcpts = br;
	in.nrcpts = n;
	in.msg = msg != NULL ? msg : "";
	in.msg_len = msg_len;
	in.date = o->date;
	in.message_id = o->message_id;
	rc = n > 0 && bounce_build(&in, out) >= 0 ? 0 : -1;
	free(diag);
	free(br);
	return rc;
}

int
dsn_build_delivered(const struct dsn_delivered *d, const struct dsn_origin *o,
    time_t now, struct buf *out)
{
	size_t i,
	    n = d->nrcpts < BOUNCE_RCPTS_MAX ? d->nrcpts : BOUNCE_RCPTS_MAX;
	struct bounce_rcpt *br = xcalloc(n ? n : 1, sizeof(*br));
	struct bounce_in in = {0};
	int rc;

	for (i = 0; i < n; i++) {
		br[i].final = d->rcpts[i].addr;
		br[i].orcpt_type = d->rcpts[i].orcpt_type;
		br[i].orcpt = d->rcpts[i].orcpt;
		br[i].action = d->rcpts[i].expanded ? BOUNCE_ACTION_EXPANDED
						    : BOUNCE_ACTION_DELIVERED;
		br[i].status = "2.0.0";
		br[i].last_attempt = now;
	}
	in.reporting_mta = o->hostname;
	in.sender = d->sender;
	in.envid = d->envid != NULL && d->envid[0] ? d->envid : NULL;
	in.arrival = now;
	in.kind = BOUNCE_SUCCESS;
	in.ret = dsn_ret(d->ret, d->requiretls);
	in.smtputf8 = d->smtputf8;
	in.rcpts = br;
	in.nrcpts = n;
	in.msg = d->msg;
	in.msg_len = d->msg_len;
	in.date = o->date;
	in.message_id = o->message_id;
	rc = bounce_build(&in, out) < 0 ? -1 : 0;
	free(br);
	return rc;
}
