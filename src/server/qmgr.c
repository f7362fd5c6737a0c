/*
 * qmgr: the queue manager's adapter on the event loop (qmgr.h).  The
 * schedule (queue/sched.h), an attempt's plan, merge and expiry
 * (queue/attempt.h) and the DSNs owed and their text (queue/dsn.h) are
 * decided in src/queue without a clock or I/O; this file gives them the
 * time and the world's answers: it arms the timer, loads and rewrites
 * envelopes on the workers, asks the table where each recipient and each
 * DSN sender goes, hands groups to remote or Maildir delivery, applies
 * the DSN rate limits, stores the reports and logs.
 *
 * An attempt: load the envelope and open the data (worker), route the
 * pending recipients (lookup), plan the groups, deliver each, merge the
 * per-recipient results, then (worker again) store the DSNs that are due
 * and rewrite or remove the envelope.  The envelope on disk is always the
 * truth: the schedule's entry is only a schedule.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "deliver/mtasts.h"
#include "deliver/remote.h"
#include "metrics/metrics.h"
#include "queue/admin.h"
#include "queue/attempt.h"
#include "queue/bounce.h"
#include "queue/dsn.h"
#include "queue/retry.h"
#include "queue/sched.h"
#include "server/dkimsign.h"
#include "server/dsnlimit.h"
#include "server/lookup.h"
#include "server/qsettings.h"
#include "server/server.h"
#include "server/srsmap.h"
#include "server/tlsrptd.h"

#define QMGR_INFLIGHT_MAX 256 /* messages being tried at once */

struct qmgr {
	struct server *srv;
	struct sched *sched; /* the queued messages by id and next try */
	unsigned inflight;
	unsigned jobs; /* worker jobs and remote groups outstanding */
	struct event *timer;
	struct dns *dns;
	/* the MTA-STS policies, made when sts.enable is first on (at start
	   or by a reload) and kept to exit; or NULL */
	struct mtasts *sts;
	/* what every delivery engine shares (qsettings.h) */
	struct qsettings_world world;
	/* the delivery settings new attempts take (qmgr_settings_use), and
	   the list of every one alive: the current one and the older ones
	   an attempt still holds */
	struct qsettings *cur;
	struct qsettings *all;
	struct dsn_limit *dsnlim; /* limits.dsn_per_client, _per_domain */
	/* attempts loaded on the loop (spool_load_now), their done() run
	   from loaded_ev: not inside qmgr_run_due's walk of the schedule */
	struct job *loaded, **loaded_tail;
	struct event *loaded_ev;
};

static void qmgr_kick(struct qmgr *q);
static time_t qent_latest(
    const struct qmgr *q, const struct sched_ent *e, time_t when, time_t now);

static void
qent_reschedule(struct qmgr *q, struct sched_ent *e, time_t when)
{
	sched_reschedule(q->sched, e, when);
	qmgr_kick(q);
}

static uint32_t
qmgr_jitter(void)
{
	return (uint32_t)random();
}

/* The clock and the retry schedule of the decisions (attempt.h): those
 * of the settings the attempt began under. */
static struct attempt_clock
qmgr_clock(const struct qsettings *st)
{
	struct attempt_clock c = {&st->retry, time(NULL), qmgr_jitter};

	return c;
}

/* ---- delivery settings ------------------------------------------------ */

/* The current settings, for an attempt that begins (qsettings.h). */
static struct qsettings *
qset_hold(struct qmgr *q)
{
	q->cur->refs++;
	return q->cur;
}

/* An attempt under st ended: st goes with its last one unless current. */
static void
qset_release(struct qmgr *q, struct qsettings *st)
{
	struct qsettings **pp;

	if (st == NULL || --st->refs > 0)
		return;
	for (pp = &q->all; *pp != NULL && *pp != st; pp = &(*pp)->next)
		;
	if (*pp == st)
		*pp = st->next;
	if (!q->srv->stopping)
		log_info("event=reload_delivery_done generation=%u "
			 "note=\"no delivery attempt is left under these "
			 "settings\"",
		    st->gen);
	if (q->srv->stopping)
		qsettings_free(st);
	else
		qsettings_retire(st);
}

/* ---- attempts ---------------------------------------------------------- */

/* A group of the attempt's plan, with its attempt: delivery's callback. */
struct group {
	struct attempt *at;
	struct attempt_group *g;
	void *mapbase; /* group_local: the mapping of the content */
	size_t mapbaselen;
};

/* Where each recipient goes in this attempt, asked of the table at once. */
struct rcpt_way {
	enum attempt_route route;
	char box[512];		 /* the row's mailbox ("lmtp:..." too) */
	const char *lmtp;	 /* ATTEMPT_ROUTE_LMTP: into box or conf */
	struct table_targets tt; /* ATTEMPT_ROUTE_MAILDIR: the Maildirs */
	const char **boxes;	 /* the same, as the plan takes them */
};

struct route_lookup {
	struct lookup lk;
	struct attempt *at;
	/* the configuration of the attempt's settings (delivery.lmtp), not
	   srv->conf, which a reload swaps on the loop while a lookup thread
	   runs route_ask (reload.h: every configuration lives until exit) */
	const struct conf *cf;
};

struct attempt {
	struct job job;
	struct route_lookup route;
	struct rcpt_way *ways; /* per recipient */
	struct qmgr *q;
	struct qsettings *st; /* the delivery settings it began under */
	struct sched_ent *e;
	struct queue_env env;
	struct spool_data data; /* the content; fd -1 until loaded */
	int rc;
	int err_no; /* errno of a failed load */
	char err[256];
	struct attempt_plan plan;
	struct group groups[ATTEMPT_GROUPS_MAX];
	size_t groups_left;
	struct attempt_rcpt *track; /* per recipient: what this attempt saw */
	/* the second job: DSNs and the envelope write */
	struct buf dsn[DSN_KINDS];
	char hostname[256];
	char date[64];
};

static void attempt_finish(struct attempt *at);

static void
attempt_load_run(struct job *j)
{
	struct attempt *at = (struct attempt *)j;

	at->rc = spool_load(
	    at->q->srv->spool, at->e->id, &at->env, at->err, sizeof(at->err));
	if (at->rc == 0 &&
	    spool_open_data(at->q->srv->spool, at->e->id, &at->data) != 0)
		at->rc = -1;
	at->err_no = at->rc != 0 ? errno : 0;
}

static const char *
rcpt_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at ? at + 1 : "";
}

/*
 * Where a queued recipient goes now.  Not a local domain: by MX (or the
 * smarthost).  A local one: its row's "lmtp:TARGET", else delivery.lmtp,
 * else its Maildir(s) here (*tt gets them): mail queued for a domain that
 * has become local since, or for a user whose LMTP target was removed, is
 * delivered here rather than sent by MX back to ourselves.
 */
static enum attempt_route
rcpt_route(const struct conf *cf, struct table *t, const struct queue_rcpt *r,
    char *box, size_t boxlen, const char **lmtp, struct table_targets *tt)
{
	const char *domain = rcpt_domain(r->addr);
	enum table_status st;
	struct addr a;
	size_t i;

	if (t == NULL)
		return ATTEMPT_ROUTE_TEMP;
	st = table_domain_is_local(t, domain); /* conf domains too */
	if (st != TABLE_OK)
		return st == TABLE_TEMPFAIL ? ATTEMPT_ROUTE_TEMP
					    : ATTEMPT_ROUTE_REMOTE;
	st = table_user_mailbox(t, r->addr, box, boxlen);
	if (st == TABLE_TEMPFAIL)
		return ATTEMPT_ROUTE_TEMP;
	if (st == TABLE_OK && table_mailbox_is_lmtp(box)) {
		*lmtp = box + strlen(TABLE_LMTP_PREFIX);
		return ATTEMPT_ROUTE_LMTP;
	}
	if ((*lmtp = cf->delivery_lmtp) != NULL)
		return ATTEMPT_ROUTE_LMTP;
	if (addr_parse_mailbox(r->addr, strlen(r->addr), ADDR_F_UTF8, &a) !=
	    ADDR_OK)
		return ATTEMPT_ROUTE_NOUSER;
	st = table_resolve(t, &a, tt);
	if (st == TABLE_TEMPFAIL)
		return ATTEMPT_ROUTE_TEMP;
	if (st != TABLE_OK)
		return ATTEMPT_ROUTE_NOUSER;
	for (i = 0; i < tt->n; i++)
		if (!tt->v[i].local || table_mailbox_is_lmtp(tt->v[i].mailbox))
			return ATTEMPT_ROUTE_MOVED; /* aliased elsewhere since:
						       see docs */
	return ATTEMPT_ROUTE_MAILDIR;
}

/* On a lookup thread (remote table) or inline: every pending recipient. */
static void
route_ask(struct lookup *lk, struct table *t)
{
	struct attempt *at = ((struct route_lookup *)lk)->at;
	const struct conf *cf = ((struct route_lookup *)lk)->cf;
	size_t i;

	for (i = 0; i < at->env.nrcpt; i++) {
		struct rcpt_way *w = &at->ways[i];

		if (at->env.rcpt[i].state != QUEUE_RCPT_PENDING)
			w->route = ATTEMPT_ROUTE_SKIP;
		else
			w->route = rcpt_route(cf, t, &at->env.rcpt[i], w->box,
			    sizeof(w->box), &w->lmtp, &w->tt);
	}
}

/* The table's answers (route_ask) as the plan takes them. */
static struct attempt_way *
attempt_ways(struct attempt *at)
{
	struct attempt_way *v =
	    xcalloc(at->env.nrcpt ? at->env.nrcpt : 1, sizeof(*v));
	size_t i, k;

	for (i = 0; i < at->env.nrcpt; i++) {
		struct rcpt_way *w = &at->ways[i];

		v[i].route = w->route;
		v[i].lmtp = w->lmtp;
		if (w->route != ATTEMPT_ROUTE_MAILDIR || w->tt.n == 0)
			continue;
		w->boxes = xcalloc(w->tt.n, sizeof(*w->boxes));
		for (k = 0; k < w->tt.n; k++)
			w->boxes[k] = w->tt.v[k].mailbox;
		v[i].boxes = w->boxes;
		v[i].nboxes = w->tt.n;
	}
	return v;
}

/* Each recipient's result of a group in the metrics: by transport, and
 * by destination domain over SMTP. */
static void
group_metrics(const struct attempt *at, const struct attempt_group *g,
    const struct smtp_client_result *results, size_t n, time_t now)
{
	enum metrics_transport tr = g->local  ? METRICS_T_MAILDIR
				    : g->lmtp ? METRICS_T_LMTP
					      : METRICS_T_SMTP;
	uint64_t age = now > at->env.created
			   ? (uint64_t)(now - at->env.created) * 1000000
			   : 0;
	size_t i;

	for (i = 0; i < n; i++) {
		enum metrics_outcome o = METRICS_O_DEFERRED;

		if (results[i].cls == SMTP_RESULT_OK)
			o = METRICS_O_DELIVERED;
		else if (results[i].cls == SMTP_RESULT_PERM)
			o = METRICS_O_BOUNCED;
		metrics_delivery(
		    tr, o, tr == METRICS_T_SMTP ? g->domain : NULL, age);
	}
}

static void
group_done(void *arg, const struct smtp_client_result *results, size_t n,
    const char *mx)
{
	struct group *gr = arg;
	struct attempt *at = gr->at;
	struct attempt_clock clk = qmgr_clock(at->st);

	group_metrics(at, gr->g, results, n, clk.now);
	/* remote.c logged each result with its MX */
	attempt_merge(&at->env, at->track, gr->g, results, n, mx, &clk);
	at->q->jobs--;
	if (--at->groups_left == 0)
		attempt_finish(at);
}

/* The local group's Maildir delivery is done: one result for all. */
static void
group_local_done(struct inject *ij)
{
	struct group *gr = ij->arg;
	struct attempt_group *g = gr->g;
	struct smtp_client_result *res = xcalloc(g->n ? g->n : 1, sizeof(*res));
	size_t i;

	for (i = 0; i < g->n; i++) {
		if (ij->rc == 0)
			smtp_client_result_set(&res[i], SMTP_RESULT_OK, 250,
			    "2.0.0", "Delivered into the local Maildir");
		else if (ij->err_no == ENOSPC || ij->err_no == EDQUOT)
			smtp_client_result_set(
			    &res[i], SMTP_RESULT_TEMP, 452, "4.3.1", ij->err);
		else
			smtp_client_result_set(
			    &res[i], SMTP_RESULT_TEMP, 451, "4.3.0", ij->err);
	}
	if (ij->rc != 0)
		log_err("id=%s event=local_delivery_failed error=\"%s\"",
		    gr->at->env.id, ij->err);
	else
		log_info(
		    "id=%s event=delivered_from_queue mailboxes=%zu file=%s",
		    gr->at->env.id, g->npaths, ij->name);
	if (gr->mapbase != NULL)
		(void)munmap(gr->mapbase, gr->mapbaselen);
	gr->mapbase = NULL;
	inject_clear(ij);
	free(ij);
	group_done(gr, res, g->n, NULL);
	free(res);
}

/*
 * Map the content d (d->len > 0) read-only into gr: a mapping starts at a
 * page boundary, the content anywhere (the queue's log).  The content,
 * or NULL with errno.
 */
static const char *
map_content(struct group *gr, const struct spool_data *d)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t base = d->off - d->off % page, n = d->len + (d->off - base);
	void *p;

	if (n > SIZE_MAX) {
		errno = EFBIG;
		return NULL;
	}
	p = mmap(NULL, (size_t)n, PROT_READ, MAP_SHARED, d->fd, (off_t)base);
	if (p == MAP_FAILED)
		return NULL;
	gr->mapbase = p;
	gr->mapbaselen = (size_t)n;
	return (const char *)p + (d->off - base);
}

/*
 * Recipients of a local domain with no LMTP server: the queued content
 * (our Received line is its first header) goes into their Maildirs as at
 * the end of data, with its Return-Path.
 */
static void
group_local(struct attempt *at, struct group *gr)
{
	struct inject *ij = xcalloc(1, sizeof(*ij));
	struct attempt_group *g = gr->g;
	size_t i;
	const char *map = NULL;

	inject_init(ij, at->q->srv->store);
	if ((at->data.len > 0 && (map = map_content(gr, &at->data)) == NULL) ||
	    buf_printf(&ij->return_path, "Return-Path: <%s>\r\n",
		at->env.sender) != 0) {
		ij->rc = -1;
		ij->err_no = errno;
		if (str_copy(ij->err, sizeof(ij->err),
			"cannot read the queued content", 30) != 0)
			ij->err[0] = '\0';
		ij->body_len = 0;
		ij->arg = gr;
		group_local_done(ij);
		return;
	}
	ij->body = map != NULL ? map : "";
	ij->body_len = map != NULL ? (size_t)at->data.len : 0;
	ij->boxes = xcalloc(g->npaths ? g->npaths : 1, sizeof(*ij->boxes));
	for (i = 0; i < g->npaths; i++)
		ij->boxes[i].path = g->paths[i];
	ij->nboxes = g->npaths;
	ij->arg = gr;
	inject_submit(ij, group_local_done);
}

/* Hand a planned group to its delivery: the Maildirs here, or remote
 * delivery (MX, smarthost or LMTP); group_done gets its results. */
static void
group_start(struct attempt *at, struct group *gr)
{
	struct attempt_group *g = gr->g;
	struct remote_msg m = {
	    .id = at->env.id,
	    .domain = g->domain,
	    .sender = at->env.sender,
	    .rcpts = g->rcpts,
	    .nrcpts = g->n,
	    .data_fd = at->data.fd,
	    .data_off = at->data.off,
	    .data_len = at->data.len,
	    .size = at->env.size,
	    .body_8bit = at->env.body_8bit,
	    .smtputf8 = at->env.smtputf8,
	    .requiretls = at->env.requiretls,
	    .tls_required_no = at->env.tls_required_no,
	    .ret = at->env.ret,
	    .envid = at->env.envid[0] ? at->env.envid : NULL,
	    .lmtp = g->lmtp ? g->domain : NULL,
	};

	at->q->jobs++;
	if (g->local)
		group_local(at, gr);
	else
		remote_deliver(at->st->remote, &m, group_done, gr);
}

/* Plan the groups from the table's answers (logging a table failure
 * once: the DSN text stays vague) and hand each to its delivery. */
static void
attempt_start_groups(struct attempt *at)
{
	struct attempt_clock clk = qmgr_clock(at->st);
	struct attempt_way *ways = attempt_ways(at);
	size_t i;

	/* the smarthost of the attempt's engine, which its groups go to */
	attempt_plan_build(
	    &at->plan, &at->env, ways, at->st->conf->relay_smarthost, &clk);
	free(ways);
	if (at->plan.route_temp) {
		char q[600];

		log_warn("id=%s event=table_error step=route error=\"%s\"",
		    at->env.id,
		    log_quote(q, sizeof(q), at->route.lk.err,
			strlen(at->route.lk.err)));
	}
	at->groups_left = at->plan.ngroups;
	if (at->plan.ngroups == 0) {
		attempt_finish(at);
		return;
	}
	for (i = 0; i < at->plan.ngroups; i++) {
		at->groups[i].at = at;
		at->groups[i].g = &at->plan.groups[i];
	}
	for (i = 0; i < at->plan.ngroups; i++)
		group_start(at, &at->groups[i]);
}

static void
attempt_free(struct attempt *at)
{
	size_t i;

	attempt_plan_free(&at->plan);
	for (i = 0; i < DSN_KINDS; i++)
		buf_free(&at->dsn[i]);
	if (at->data.fd >= 0)
		close(at->data.fd);
	if (at->ways != NULL)
		for (i = 0; i < at->env.nrcpt; i++) {
			table_targets_free(&at->ways[i].tt);
			free(at->ways[i].boxes);
		}
	free(at->ways);
	free(at->track);
	queue_env_free(&at->env);
	qset_release(at->q, at->st);
	free(at);
}

static void
route_answer(struct lookup *lk)
{
	struct attempt *at = ((struct route_lookup *)lk)->at;

	at->q->jobs--;
	attempt_start_groups(at);
}

/*
 * What `tern queue requeue` and `tern queue bounce` asked of this message
 * (qmgr_control), done now that its envelope is here: requeue forgets the
 * DNS answers of its pending recipients' domains, so the attempt asks
 * again; bounce fails every pending recipient and goes straight to the
 * end of the attempt (the failure DSN, the message removed).  true when
 * the attempt was ended so.
 */
static bool
attempt_admin(struct attempt *at)
{
	struct sched_ent *e = at->e;
	char to[QUEUE_ADDR_MAX * 4 + 1];
	const char *at_sign;
	size_t i;

	if (e->requeue) {
		e->requeue = false;
		for (i = 0; i < at->env.nrcpt; i++)
			if (at->env.rcpt[i].state == QUEUE_RCPT_PENDING &&
			    (at_sign = strrchr(at->env.rcpt[i].addr, '@')) !=
				NULL)
				remote_forget_dns(at->st->remote, at_sign + 1);
	}
	if (!e->bounce)
		return false;
	e->bounce = false;
	for (i = 0; i < at->env.nrcpt; i++)
		if (at->env.rcpt[i].state == QUEUE_RCPT_PENDING)
			log_info("id=%s event=bounced by=admin to=<%s> "
				 "code=%d enh=%s text=\"%s\"",
			    at->env.id,
			    log_sanitize(to, sizeof(to), at->env.rcpt[i].addr,
				strlen(at->env.rcpt[i].addr)),
			    QUEUE_ADMIN_BOUNCE_CODE, QUEUE_ADMIN_BOUNCE_ENH,
			    QUEUE_ADMIN_BOUNCE_TEXT);
	(void)queue_env_admin_bounce(&at->env, time(NULL));
	attempt_finish(at);
	return true;
}

static void
attempt_load_done(struct job *j)
{
	struct attempt *at = (struct attempt *)j;
	struct sched_ent *e = at->e;

	at->q->jobs--;
	if (at->rc != 0 || e->deleted || at->env.held) {
		if (at->rc != 0)
			log_err("id=%s event=queue_load_failed error=\"%s\"",
			    e->id, at->err);
		e->busy = false;
		at->q->inflight--;
		if (e->deleted || at->err_no == ENOENT)
			sched_del(at->q->sched, e);
		else
			qent_reschedule(at->q, e, time(NULL) + 60);
		attempt_free(at);
		return;
	}
	at->track = attempt_track(&at->env);
	if (attempt_admin(at))
		return;
	at->ways =
	    xcalloc(at->env.nrcpt ? at->env.nrcpt : 1, sizeof(*at->ways));
	at->route.at = at;
	at->route.lk.ask = route_ask;
	at->route.cf = at->st->conf;
	at->route.lk.answer = route_answer;
	at->q->jobs++; /* route_answer: now (SQLite) or from a lookup thread */
	lookup_ask(at->q->srv->lookups, &at->route.lk);
}

/* The attempts loaded on the loop go on, as a worker's would. */
static void
on_loaded(evutil_socket_t fd, short what, void *arg)
{
	struct qmgr *q = arg;
	struct job *j = q->loaded, *next;

	(void)fd;
	(void)what;
	q->loaded = NULL;
	q->loaded_tail = &q->loaded;
	for (; j != NULL; j = next) {
		next = j->next;
		j->done(j);
	}
}

/*
 * The envelope and the content of a message just committed are in the
 * log's index and the page cache: reading them here costs less than the
 * hop to a worker and back (a futex wake, an eventfd write and read, two
 * context switches).  false when that would block: a worker does it.
 */
static bool
attempt_load_now(struct qmgr *q, struct attempt *at)
{
	int r = spool_load_now(q->srv->spool, at->e->id, &at->env, &at->data,
	    at->err, sizeof(at->err));

	if (r == -2)
		return false;
	at->rc = r;
	at->err_no = r != 0 ? errno : 0;
	at->job.next = NULL;
	*q->loaded_tail = &at->job;
	q->loaded_tail = &at->job.next;
	event_active(q->loaded_ev, EV_TIMEOUT, 1);
	return true;
}

static void
attempt_begin(struct qmgr *q, struct sched_ent *e)
{
	struct attempt *at = xcalloc(1, sizeof(*at));

	at->q = q;
	at->st = qset_hold(q);
	at->e = e;
	at->data.fd = -1;
	for (size_t i = 0; i < DSN_KINDS; i++)
		buf_init(&at->dsn[i], BOUNCE_RETURN_MAX_DEFAULT + (1u << 20));
	queue_env_init(&at->env);
	at->job.run = attempt_load_run;
	at->job.done = attempt_load_done;
	e->busy = true;
	q->inflight++;
	q->jobs++;
	if (!attempt_load_now(q, at))
		workers_submit(q->srv->workers, &at->job);
}

/* ---- the end of an attempt: DSNs, envelope, schedule ----------------- */

struct finish {
	struct job job;
	struct attempt *at;
	struct dsn_plan plan; /* the reports due and who is in each */
	struct inject *ij[DSN_KINDS];
	int rc;
	int err_no; /* errno of a failed update/remove */
};

/* A recipient of the DSN that goes through the queue. */
static int
dsn_env_add(struct inject *ij, const char *addr)
{
	struct queue_rcpt *r;

	if (ij->env == NULL) {
		ij->env = xcalloc(1, sizeof(*ij->env));
		queue_env_init(ij->env);
		/* QUEUE_PROTO_MAX holds every protocol name */
		if (str_copy(ij->env->proto, sizeof(ij->env->proto), "local",
			strlen("local")) != 0)
			panic("event=dsn error=\"proto too long\"");
	}
	if ((r = queue_env_add_rcpt(ij->env, addr)) == NULL)
		return -1;
	r->notify = SMTP_NOTIFY_NEVER;
	return 0;
}

/*
 * RFC 8689 5: the report on a REQUIRETLS message is itself sent with
 * REQUIRETLS (when it goes through the queue: a local Maildir is the
 * final hop); its content is headers only (dsn.c).
 */
static void
dsn_requiretls(struct inject *ij, bool requiretls)
{
	if (ij->env != NULL)
		ij->env->requiretls = requiretls;
}

/*
 * Where a DSN to the original sender goes, asked of the table (on a lookup
 * thread for a remote table): its Maildir(s), or the queue.
 */
struct sender_route {
	struct lookup lk;
	struct qmgr *q;
	char sender[QUEUE_ADDR_MAX + 1];
	bool parsed;
	enum table_status st;
	struct table_targets tt;
	void (*then)(struct sender_route *);
	void *arg;
};

static void
sender_route_ask(struct lookup *lk, struct table *t)
{
	struct sender_route *sr = (struct sender_route *)lk;
	struct addr a;

	sr->parsed = addr_parse_mailbox(sr->sender, strlen(sr->sender),
			 ADDR_F_UTF8, &a) == ADDR_OK;
	if (!sr->parsed)
		sr->st = TABLE_INVALID;
	else
		sr->st =
		    t != NULL ? table_resolve(t, &a, &sr->tt) : TABLE_TEMPFAIL;
}

static void
sender_route_answer(struct lookup *lk)
{
	struct sender_route *sr = (struct sender_route *)lk;
	struct qmgr *q = sr->q;

	q->jobs--;
	sr->then(sr);
	table_targets_free(&sr->tt);
	free(sr);
}

/* then(sr) once the sender's targets are known; sr is freed after it. */
static void
sender_route(struct qmgr *q, const char *sender,
    void (*then)(struct sender_route *), void *arg)
{
	struct sender_route *sr = xcalloc(1, sizeof(*sr));
	char orig[SRS_ADDR_MAX + 1];

	sr->q = q;
	sr->then = then;
	sr->arg = arg;
	/* a forwarded message's sender is our SRS address: the report goes
	 * to the address it stands for (connsrs.c made it) */
	if (srsmap_reverse(
		q->srv->srs, sender, time(NULL), orig, sizeof(orig)) == SRS_OK)
		sender = orig;
	/* A sender that does not fit cannot be routed: left "", it is
	 * refused by the parse in sender_route_ask (TABLE_INVALID). */
	if (str_copy(sr->sender, sizeof(sr->sender), sender, strlen(sender)) !=
	    0)
		sr->sender[0] = '\0';
	sr->lk.ask = sender_route_ask;
	sr->lk.answer = sender_route_answer;
	q->jobs++; /* the qmgr is not idle meanwhile */
	lookup_ask(q->srv->lookups, &sr->lk);
}

/*
 * The DSN's store: each target of a local sender where mail to it goes
 * (its Maildir, or the queue for an alias pointing out or a mailbox behind
 * LMTP); a remote sender, or a table that cannot answer now, the queue
 * (whose attempts route it again).  NULL: no way to reach the sender.
 */
static struct inject *
dsn_inject_new(struct qmgr *q, const struct sender_route *sr)
{
	struct inject *ij = xcalloc(1, sizeof(*ij));
	const struct table_targets *tt = &sr->tt;
	size_t i;

	inject_init(ij, q->srv->store);
	if (sr->st == TABLE_NOTLOCAL || sr->st == TABLE_TEMPFAIL) {
		if (sr->st == TABLE_TEMPFAIL) {
			char e[600];

			log_warn("event=table_error step=dsn_route to=<%s> "
				 "error=\"%s\" "
				 "action=queued",
			    sr->sender,
			    log_quote(
				e, sizeof(e), sr->lk.err, strlen(sr->lk.err)));
		}
		if (dsn_env_add(ij, sr->sender) != 0)
			goto fail;
	} else if (sr->st == TABLE_OK) {
		ij->boxes = xcalloc(tt->n ? tt->n : 1, sizeof(*ij->boxes));
		for (i = 0; i < tt->n; i++) {
			if (!tt->v[i].local ||
			    server_mailbox_is_lmtp(q->srv, tt->v[i].mailbox)) {
				if (dsn_env_add(ij, tt->v[i].address) != 0)
					goto fail;
			} else {
				ij->boxes[ij->nboxes++].path =
				    xstrdup(tt->v[i].mailbox);
			}
		}
		if (buf_append_str(&ij->return_path, "Return-Path: <>\r\n") !=
		    0)
			goto fail;
	} else {
		goto fail;
	}
	return ij;
fail:
	log_warn("event=dsn_undeliverable to=<%s> reason=\"sender cannot be "
		 "reached\"",
	    sr->sender);
	inject_clear(ij);
	free(ij);
	return NULL;
}

static void
dsn_inject_free(struct inject *ij)
{
	size_t i;

	if (ij == NULL)
		return;
	for (i = 0; i < ij->nboxes; i++)
		free((void *)(uintptr_t)ij->boxes[i].path);
	inject_clear(ij);
	free(ij);
}

/*
 * The DSN rate limits (dsnlimit.h): may tern originate one more report of
 * this kind for mail from client_ip to sender?  A report refused is
 * dropped, and that is logged here.
 */
static bool
dsn_rate_ok(struct qmgr *q, const char *id, const char *kind,
    const char *client_ip, const char *sender)
{
	const char *which = "";
	char safe[QUEUE_ADDR_MAX * 4 + 1];

	if (dsn_limit_allow(
		q->dsnlim, client_ip, sender, time_now_ms(), &which))
		return true;
	log_sanitize(safe, sizeof(safe), sender, strlen(sender));
	log_warn("id=%s event=dsn_dropped reason=rate_limit limit=%s kind=%s "
		 "to=<%s> client=%s",
	    id, which, kind, safe, client_ip);
	return false;
}

void
qmgr_dsn_limits(struct qmgr *q, const struct conf *cf)
{
	dsn_limit_reload(q->dsnlim, cf, time_now_ms());
}

/* A success DSN between its build and its store. */
struct dsn_success {
	struct buf body;
	char id[ID_LEN + 1];
	bool requiretls; /* the original's: the report keeps it */
};

static void
dsn_delivered_done(struct inject *ij)
{
	struct dsn_success *ds = ij->arg;

	if (ij->rc != 0)
		log_err(
		    "id=%s event=dsn_store_failed kind=success error=\"%s\"",
		    ds->id, ij->err);
	buf_free(&ds->body);
	free(ds);
	dsn_inject_free(ij);
}

static void
dsn_delivered_routed(struct sender_route *sr)
{
	struct dsn_success *ds = sr->arg;
	struct inject *ij = dsn_inject_new(sr->q, sr);

	if (ij == NULL) {
		buf_free(&ds->body);
		free(ds);
		return;
	}
	ij->body = ds->body.data;
	ij->body_len = ds->body.len;
	ij->arg = ds;
	dsn_requiretls(ij, ds->requiretls);
	dkimsign_attach(sr->q->srv, ij, "", ds->id, "");
	log_info("id=%s event=dsn kind=success to=<%s>", ds->id, sr->sender);
	inject_submit(ij, dsn_delivered_done);
}

/* The Date and Message-ID of a new report, from the clock and a new id. */
static void
dsn_stamp(const char *host, time_t now, char *msgid, size_t msgidlen,
    char *date, size_t datelen)
{
	char nid[ID_LEN + 1];

	id_new(nid);
	if (str_fmt(msgid, msgidlen, "<%s.dsn@%s>", nid, host) != 0)
		msgid[0] = '\0';
	if (time_rfc5322(date, datelen, (int64_t)now) == 0)
		date[0] = '\0';
}

void
qmgr_dsn_delivered(struct qmgr *q, const struct dsn_delivered *d)
{
	struct dsn_success *ds;
	char msgid[300], date[64];
	struct dsn_origin o = {q->srv->conf->hostname, date, msgid, 0};
	time_t now = time(NULL);

	if (d->sender[0] == '\0' || d->nrcpts == 0)
		return; /* never a DSN to <> */
	if (!d->trusted &&
	    !dsn_rate_ok(q, d->id, "success", d->client_ip, d->sender))
		return;
	dsn_stamp(o.hostname, now, msgid, sizeof(msgid), date, sizeof(date));
	ds = xcalloc(1, sizeof(*ds));
	buf_init(&ds->body, BOUNCE_RETURN_MAX_DEFAULT + (1u << 20));
	if (str_copy(ds->id, sizeof(ds->id), d->id, strlen(d->id)) != 0)
		ds->id[0] = '\0';
	ds->requiretls = d->requiretls;
	if (dsn_build_delivered(d, &o, now, &ds->body) != 0) {
		log_err("id=%s event=dsn_build_failed kind=success", d->id);
		buf_free(&ds->body);
		free(ds);
		return;
	}
	sender_route(q, d->sender, dsn_delivered_routed, ds);
}

/* Read the original message back for the DSN (worker thread). */
static int
read_original(const struct spool_data *d, struct buf *out)
{
	size_t want = d->len > BOUNCE_RETURN_MAX_DEFAULT + 65536
			  ? BOUNCE_RETURN_MAX_DEFAULT + 65536
			  : (size_t)d->len;
	size_t got = 0;

	if (buf_reserve(out, want) != 0)
		return -1;
	while (got < want) {
		ssize_t n = pread(
		    d->fd, out->data + got, want - got, (off_t)(d->off + got));

		if (n <= 0)
			return n == 0 ? 0 : -1;
		got += (size_t)n;
		out->len = got;
	}
	out->data[out->len] = '\0';
	return 0;
}

/* The report of kind k of f's attempt, from the original orig. */
static int
finish_build(struct finish *f, int k, const struct buf *orig, struct buf *out)
{
	struct attempt *at = f->at;
	char msgid[300], nid[ID_LEN + 1];
	struct dsn_origin o = {at->hostname, at->date, msgid,
	    at->env.created + (time_t)at->st->retry.lifetime};

	id_new(nid);
	if (str_fmt(msgid, sizeof(msgid), "<%s.dsn@%s>", nid, at->hostname) !=
	    0)
		msgid[0] = '\0';
	return dsn_build(
	    &at->env, &f->plan, at->track, k, &o, orig->data, orig->len, out);
}

/* An owed DSN keeps the message queued and brings its next attempt near. */
static void
finish_owed_schedule(struct finish *f)
{
	struct attempt *at = f->at;
	unsigned wait = dsn_plan_owed_reschedule(
	    &f->plan, &at->env, &at->st->retry, time(NULL));

	log_warn(
	    "id=%s event=dsn_owed retry_in=%u note=\"kept in the queue until "
	    "the report is stored\"",
	    at->env.id, wait);
}

static void
finish_run(struct job *j)
{
	struct finish *f = (struct finish *)j;
	struct attempt *at = f->at;
	struct buf orig;
	int k;

	buf_init(&orig, BOUNCE_RETURN_MAX_DEFAULT + 65536 + 1);
	if ((f->plan.want[0] || f->plan.want[1] || f->plan.want[2]) &&
	    read_original(&at->data, &orig) != 0)
		log_err("id=%s event=dsn_read_failed error=\"%s\"", at->env.id,
		    strerror(errno));
	for (k = 0; k < DSN_KINDS; k++) {
		if (!f->plan.want[k] || f->ij[k] == NULL)
			continue;
		if (finish_build(f, k, &orig, &at->dsn[k]) != 0) {
			log_err("id=%s event=dsn_build_failed kind=%d",
			    at->env.id, k);
			continue;
		}
		f->ij[k]->body = at->dsn[k].data;
		f->ij[k]->body_len = at->dsn[k].len;
		inject_store(f->ij[k]);
		if (f->ij[k]->rc != 0) {
			log_err(
			    "id=%s event=dsn_store_failed kind=%s error=\"%s\"",
			    at->env.id, dsn_kind_names[k], f->ij[k]->err);
			dsn_plan_owe(&f->plan, &at->env, k);
		} else {
			log_info("id=%s event=dsn kind=%s to=<%s>", at->env.id,
			    dsn_kind_names[k], at->env.sender);
		}
	}
	buf_free(&orig);
	if (f->plan.owed)
		finish_owed_schedule(f);
	f->rc = f->plan.remove
		    ? spool_remove_done(at->q->srv->spool, at->env.id)
		    : spool_update(at->q->srv->spool, &at->env);
	f->err_no = f->rc != 0 ? errno : 0;
}

static void
finish_done(struct job *j)
{
	struct finish *f = (struct finish *)j;
	struct attempt *at = f->at;
	struct qmgr *q = at->q;
	struct sched_ent *e = at->e;
	int k;

	q->jobs--;
	for (k = 0; k < DSN_KINDS; k++) {
		if (f->ij[k] != NULL && f->ij[k]->queued) {
			qmgr_add(q, f->ij[k]->env);
			f->ij[k]->env = NULL;
		}
		dsn_inject_free(f->ij[k]);
	}
	e->busy = false;
	q->inflight--;
	if (f->rc != 0 && !f->plan.remove)
		log_err("id=%s event=queue_update_failed", e->id);
	if (f->plan.remove || e->deleted ||
	    (f->rc != 0 && f->err_no == ENOENT)) {
		if (f->plan.remove)
			log_info("id=%s event=removed", e->id);
		sched_del(q->sched, e);
	} else if (at->st != q->cur) {
		/* a reload came during the attempt: its next try is within
		   the schedule now in force */
		qent_reschedule(
		    q, e, qent_latest(q, e, at->env.next_try, time(NULL)));
	} else {
		qent_reschedule(q, e, at->env.next_try);
	}
	dsn_plan_free(&f->plan);
	free(f);
	attempt_free(at);
	qmgr_kick(q); /* a slot is free: the next due message goes now */
	server_maybe_exit(q->srv);
}

/* Expired recipients fail for good (RFC 5321 4.5.4.1: give up after days). */
static void
finish_expire(struct attempt *at, time_t now)
{
	size_t i;

	if (attempt_expire(&at->env, at->track, &at->st->retry, now) == 0)
		return;
	for (i = 0; i < at->env.nrcpt; i++)
		if (at->track[i].expired) {
			log_info("id=%s event=expired to=<%s> status=4.4.7",
			    at->env.id, at->env.rcpt[i].addr);
			metrics_expired();
		}
}

/*
 * Each recipient that failed for good in this attempt and gets no failure
 * report: say why, so the log shows the failure was decided and the report
 * left out on purpose (RFC 3461 NOTIFY, or a null sender that must never
 * get one).
 */
static void
finish_log_suppressed(const struct finish *f)
{
	const struct attempt *at = f->at;
	const char *why;
	size_t i;

	for (i = 0; i < at->env.nrcpt; i++) {
		why = dsn_suppressed(&at->env, &at->env.rcpt[i],
		    at->track[i].before, f->plan.kinds[i]);
		if (why != NULL)
			log_info("id=%s event=dsn_suppressed to=<%s> reason=%s",
			    at->env.id, at->env.rcpt[i].addr, why);
	}
}

static void finish_submit(struct finish *f);
static void finish_routed(struct sender_route *sr);

/*
 * Success and delay reports of untrusted mail go through the DSN rate
 * limits; failure reports never do (docs/security.md: a bounce of real
 * mail must not be lost, and tern refuses unknown recipients at RCPT, so
 * a failure report needs a failed relay, which needs AUTH or relay.networks).
 */
static void
finish_rate_limit(struct finish *f)
{
	static const int limited[] = {DSN_DELAY, DSN_SUCCESS};
	struct attempt *at = f->at;
	size_t j;

	if (!queue_env_untrusted(&at->env))
		return;
	for (j = 0; j < sizeof(limited) / sizeof(limited[0]); j++) {
		int k = limited[j];

		if (!f->plan.want[k] || f->plan.was_owed[k] ||
		    dsn_rate_ok(at->q, at->env.id, dsn_kind_names[k],
			at->env.ip, at->env.sender))
			continue;
		dsn_plan_drop(&f->plan, k);
	}
}

/*
 * Every group is back: expiry, the reports due (dsn.h), the rate limits,
 * then the sender's route and the worker.
 */
static void
attempt_finish(struct attempt *at)
{
	struct finish *f = xcalloc(1, sizeof(*f));
	time_t now = time(NULL);
	bool warn;

	f->at = at;
	finish_expire(at, now);
	warn = retry_warn_due(
	    &at->st->retry, at->env.created, now, at->env.warned != 0);
	dsn_plan_make(&f->plan, &at->env, at->track, warn, now);
	finish_log_suppressed(f);
	finish_rate_limit(f);
	if (f->plan.want[DSN_FAILURE] || f->plan.want[DSN_DELAY] ||
	    f->plan.want[DSN_SUCCESS]) {
		sender_route(at->q, at->env.sender, finish_routed, f);
		return;
	}
	finish_submit(f);
}

/* The DSNs' stores are known (sr): on to the worker. */
static void
finish_routed(struct sender_route *sr)
{
	struct finish *f = sr->arg;
	int k;

	for (k = 0; k < DSN_KINDS; k++)
		if (f->plan.want[k] &&
		    (f->ij[k] = dsn_inject_new(f->at->q, sr)) != NULL) {
			dsn_requiretls(f->ij[k], f->at->env.requiretls);
			dkimsign_attach(
			    f->at->q->srv, f->ij[k], "", f->at->env.id, "");
		}
	finish_submit(f);
}

static void
finish_submit(struct finish *f)
{
	struct attempt *at = f->at;
	time_t now = time(NULL);

	if (str_copy(at->hostname, sizeof(at->hostname),
		at->q->srv->conf->hostname,
		strlen(at->q->srv->conf->hostname)) != 0)
		at->hostname[0] = '\0';
	if (time_rfc5322(at->date, sizeof(at->date), (int64_t)now) == 0)
		at->date[0] = '\0';
	f->job.run = finish_run;
	f->job.done = finish_done;
	at->q->jobs++;
	workers_submit(at->q->srv->workers, &f->job);
}

/* ---- the timer -------------------------------------------------------- */

static void
qmgr_run_due(struct qmgr *q)
{
	time_t now = time(NULL);
	struct sched_ent *e;

	while (q->inflight < QMGR_INFLIGHT_MAX && !q->srv->stopping &&
	       (e = sched_pop_due(q->sched, now)) != NULL)
		attempt_begin(q, e);
}

static void
on_qmgr_timer(evutil_socket_t fd, short what, void *arg)
{
	struct qmgr *q = arg;

	(void)fd;
	(void)what;
	qmgr_run_due(q);
	qmgr_kick(q);
}

/* Arm the timer for the earliest entry (or a slow tick when at capacity). */
static void
qmgr_kick(struct qmgr *q)
{
	struct timeval tv = {1, 0};
	time_t now = time(NULL), next;

	if (q->srv->stopping || !sched_next(q->sched, &next)) {
		evtimer_del(q->timer);
		return;
	}
	if (q->inflight >= QMGR_INFLIGHT_MAX) {
		/* full: finish_done kicks again; the tick only backs that up,
		 * and re-arming it on every new message would keep pushing it
		 * back */
		if (!evtimer_pending(q->timer, NULL))
			evtimer_add(q->timer, &tv);
		return;
	}
	tv.tv_sec = next <= now ? 0 : next - now;
	evtimer_add(q->timer, &tv);
}

void
qmgr_add(struct qmgr *q, struct queue_env *env)
{
	if (sched_find(q->sched, env->id) == NULL)
		sched_add(q->sched, env->id, env->next_try, env->held);
	log_info("id=%s event=queued from=<%s> rcpts=%zu size=%llu%s%s",
	    env->id, env->sender, env->nrcpt, (unsigned long long)env->size,
	    env->requiretls ? " requiretls=yes" : "",
	    env->tls_required_no ? " tls_required=no" : "");
	queue_env_free(env);
	free(env);
	qmgr_kick(q);
}

struct qmgr_depth {
	size_t n;
	time_t oldest; /* 0: none */
};

/* A queue id begins with its creation second in 8 hex digits (id_new):
 * false when this one does not. */
static bool
qent_created(const struct sched_ent *e, time_t *created_out)
{
	unsigned long created = 0;
	int i;

	for (i = 0; i < 8; i++) {
		char ch = e->id[i];
		int v = ch >= '0' && ch <= '9'	 ? ch - '0'
			: ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
						 : -1;

		if (v < 0)
			return false;
		created = created * 16 + (unsigned long)v;
	}
	*created_out = (time_t)created;
	return true;
}

/* when, or sooner: the latest next try the current retry schedule gives
 * e from now (retry_latest). */
static time_t
qent_latest(
    const struct qmgr *q, const struct sched_ent *e, time_t when, time_t now)
{
	time_t created, latest;

	if (!qent_created(e, &created))
		return when;
	latest = retry_latest(&q->cur->retry, created, now, qmgr_jitter());
	return latest < when ? latest : when;
}

static void
depth_one(struct sched_ent *e, void *arg)
{
	struct qmgr_depth *d = arg;
	time_t created;

	d->n++;
	if (!qent_created(e, &created))
		return;
	if (d->oldest == 0 || created < d->oldest)
		d->oldest = created;
}

void
qmgr_depth(struct qmgr *q, size_t *n_out, uint64_t *oldest_age_out)
{
	struct qmgr_depth d = {0, 0};
	time_t now = time(NULL);

	sched_each(q->sched, depth_one, &d);
	*n_out = d.n;
	*oldest_age_out =
	    d.oldest != 0 && now > d.oldest ? (uint64_t)(now - d.oldest) : 0;
}

bool
qmgr_idle(const struct qmgr *q)
{
	return q == NULL || q->jobs == 0;
}

/* ---- start and stop --------------------------------------------------- */

void
qmgr_stop(struct qmgr *q)
{
	struct qsettings *st;

	if (q == NULL)
		return;
	/* an engine shared by several settings is stopped once per user:
	   remote_stop() may be called again */
	for (st = q->all; st != NULL; st = st->next)
		remote_stop(st->remote);
	if (q->sts != NULL) /* also when no engine uses it now */
		mtasts_stop(q->sts);
}

static void
scan_cb(struct queue_env *env, void *ctx)
{
	struct qmgr *q = ctx;

	if (sched_find(q->sched, env->id) == NULL)
		sched_add(q->sched, env->id, env->next_try, env->held);
}

/* Where ternd listens, so that remote delivery knows itself in an MX. */
static size_t
listening_addresses(
    const struct server *s, struct sockaddr_storage *out, size_t max)
{
	socklen_t len;
	size_t n = 0;
	unsigned i;

	for (i = 0; i < s->nlisteners && n < max; i++) {
		len = sizeof(out[n]);
		if (getsockname(s->listeners[i].fd, (struct sockaddr *)&out[n],
			&len) == 0)
			n++;
	}
	return n;
}

/* The MTA-STS fetcher's part of cf. */
static struct mtasts_conf
qmgr_sts_conf(const struct conf *cf)
{
	struct mtasts_conf mc = {cf->state_dir, cf->tls_ca_file,
	    cf->tls_ca_path, cf->sts_cache_entries, cf->sts_fetch_timeout};

	return mc;
}

/*
 * MTA-STS (sts.enable): the policy cache in STATE/mta-sts, made the first
 * time a configuration turns it on and then kept, the policies with it,
 * while a later one turns it off (its engines do not ask).  The TLS
 * contexts are each engine's (qsettings.c).
 */
static int
qmgr_sts_make(struct qmgr *q, const struct conf *cf, char *err, size_t errlen)
{
	struct mtasts_conf mc = qmgr_sts_conf(cf);

	if (!cf->sts_enable || q->sts != NULL)
		return 0;
	if ((q->sts = mtasts_new(q->srv->base, q->dns, &mc, err, errlen)) ==
	    NULL)
		return -1;
	q->world.sts = q->sts;
	return 0;
}

/* What every engine shares, and the settings of the configuration ternd
 * started with. */
static void
qmgr_settings_start(struct qmgr *q, struct server *s)
{
	struct qsettings_world *w = &q->world;
	char err[512];

	w->base = s->base;
	w->dns = q->dns;
	w->tlsrpt = tlsrptd_table(s->tlsrptd); /* NULL: not counted */
	w->nself = listening_addresses(s, w->self, REMOTE_SELF_MAX);
	if ((q->cur = qsettings_new(w, s->conf, s->smarthost_pass, NULL, err,
		 sizeof(err))) == NULL)
		fatalx("event=startup step=remote error=\"%s\"", err);
	q->cur->refs = 1; /* current */
	q->all = q->cur;
}

struct qmgr *
qmgr_new(struct server *s)
{
	struct qmgr *q = xcalloc(1, sizeof(*q));
	uint64_t t0 = time_now_ms();
	char err[512];
	int n;

	q->srv = s;
	q->sched = sched_new();
	q->dsnlim = dsn_limit_new(s->conf);
	if ((n = spool_scan(s->spool, scan_cb, q)) < 0)
		fatal("event=startup step=queue_scan");
	log_info("event=queue_loaded messages=%d ms=%llu", n,
	    (unsigned long long)(time_now_ms() - t0));
	q->dns = s->dns; /* the daemon's resolver (server.h) */
	if (qmgr_sts_make(q, s->conf, err, sizeof(err)) != 0)
		fatalx("event=startup step=mta_sts error=\"%s\"", err);
	qmgr_settings_start(q, s);
	q->timer = evtimer_new(s->base, on_qmgr_timer, q);
	q->loaded_tail = &q->loaded;
	if ((q->loaded_ev = event_new(s->base, -1, 0, on_loaded, q)) == NULL)
		fatal("event=startup step=qmgr_event");
	qmgr_kick(q);
	return q;
}

void
qmgr_free(struct qmgr *q)
{
	struct qsettings *st, *next;

	if (q == NULL)
		return;
	/* attempts still under way (a stop) are not freed: their settings
	   and engines go with the rest */
	for (st = q->all; st != NULL; st = next) {
		next = st->next;
		qsettings_free(st);
	}
	remote_free_retired();
	mtasts_free(q->sts); /* after the engines: they ask no more */
	dsn_limit_free(q->dsnlim);
	event_free(q->timer);
	event_free(q->loaded_ev);
	sched_free(q->sched);
	free(q);
}

/* ---- reload ------------------------------------------------------------ */

/*
 * relay.smarthost_password_file read again, as ternd's user.  ternd read
 * it as root at start (main.c), so a root-only file fails now with EACCES
 * although nothing about it changed: for the running configuration's own
 * path the running copy stays.  Another path must be readable.
 */
static int
qmgr_password(struct qmgr *q, const struct conf *nc, char *pass, size_t passlen,
    char *err, size_t errlen)
{
	const char *path = nc->relay_smarthost_password_file;
	const char *running = q->cur->conf->relay_smarthost_password_file;
	char q1[1200];

	if (path == NULL ||
	    qsettings_password_read(path, pass, passlen, err, errlen) == 0)
		return 0;
	if ((errno != EACCES && errno != EPERM) || running == NULL ||
	    strcmp(path, running) != 0 || q->cur->pass[0] == '\0')
		return -1;
	log_warn("event=reload step=smarthost_password "
		 "action=kept_start_copy reason=\"%s\"",
	    log_quote(q1, sizeof(q1), err, strlen(err)));
	return str_copy(pass, passlen, q->cur->pass, strlen(q->cur->pass));
}

struct qsettings *
qmgr_settings_new(
    struct qmgr *q, const struct conf *nc, char *err, size_t errlen)
{
	char pass[QSETTINGS_PASS_MAX] = "";
	struct qsettings *st = NULL;

	/* a fetcher for the engines of a configuration that turns MTA-STS
	   on for the first time; kept even if the reload is refused later */
	if (qmgr_sts_make(q, nc, err, errlen) == 0 &&
	    qmgr_password(q, nc, pass, sizeof(pass), err, errlen) == 0)
		st = qsettings_new(&q->world, nc, pass, q->cur, err, errlen);
	explicit_bzero(pass, sizeof(pass));
	return st;
}

struct retry_cap {
	struct qmgr *q;
	time_t now;
	size_t n;
};

/* A waiting message's next try, brought forward to the latest the
 * current schedule allows from now. */
static void
retry_cap_one(struct sched_ent *e, void *arg)
{
	struct retry_cap *rc = arg;
	time_t latest;

	if (e->busy || e->held)
		return;
	latest = qent_latest(rc->q, e, e->next_try, rc->now);
	if (e->next_try <= latest)
		return;
	sched_reschedule(rc->q->sched, e, latest); /* no entry added */
	rc->n++;
}

void
qmgr_settings_use(struct qmgr *q, struct qsettings *st, unsigned gen)
{
	struct qsettings *old = q->cur;
	struct retry_cap rc = {q, time(NULL), 0};

	st->gen = gen;
	st->refs = 1; /* current */
	st->next = q->all;
	q->all = st;
	q->cur = st;
	if (q->sts != NULL) { /* fetches from now on: the new store */
		struct mtasts_conf mc = qmgr_sts_conf(st->conf);

		mtasts_configure(q->sts, &mc);
	}
	log_info("event=reload step=delivery generation=%u engine=%s "
		 "trust_store=%s",
	    gen, st->new_engine ? "new" : "kept",
	    st->new_store ? "new" : "kept");
	if (qsettings_retry_differs(old, st)) {
		/* messages already waiting: not past the new schedule's
		   longest wait; their next attempt takes the rest of it */
		sched_each(q->sched, retry_cap_one, &rc);
		log_info("event=reload step=retry rescheduled=%zu", rc.n);
		qmgr_kick(q);
	}
	qset_release(q, old);
}

/* ---- control: tern queue ... ------------------------------------------ */

struct ctl {
	struct job job;
	struct qmgr *q;
	char cmd[16];
	char **ids; /* LIST/SHOW/PURGE: the messages to read */
	size_t nids;
	struct queue_filter filt; /* LIST, PURGE */
	bool *hit;		  /* PURGE: ids[i] was removed */
	struct buf *out;
	int rc;
	void (*done)(void *arg);
	void *arg;
};

/* A reply that outgrew the control buffer (control.c's limit) is
 * replaced whole: a cut JSON document would mislead `tern queue`. */
static void
ctl_too_large(struct buf *out)
{
	static const char msg[] = "{\"ok\":false,\"error\":\"the reply is too "
				  "large for the control socket\"}\n";

	buf_reset(out);
	if (buf_append_str(out, msg) != 0)
		log_err("event=control error=\"no room for a reply\"");
}

/* A whole reply of its own: out holds nothing else. */
static void
ctl_reply(struct buf *out, const char *json)
{
	buf_reset(out);
	if (buf_append_str(out, json) != 0)
		ctl_too_large(out);
}

static bool
ctl_is(const struct ctl *c, const char *cmd)
{
	return strcmp(c->cmd, cmd) == 0;
}

/* PURGE: remove each message the filter selects, without a DSN. */
static void
ctl_purge_run(struct ctl *c)
{
	struct spool *sp = c->q->srv->spool;
	time_t now = time(NULL);
	char err[256];
	size_t i, n = 0;

	for (i = 0; i < c->nids; i++) {
		struct queue_env env;

		queue_env_init(&env);
		if (spool_load(sp, c->ids[i], &env, err, sizeof(err)) == 0 &&
		    queue_filter_match(&c->filt, &env, now) &&
		    spool_remove(sp, c->ids[i]) == 0) {
			c->hit[i] = true;
			n++;
		}
		queue_env_free(&env);
	}
	buf_reset(c->out);
	if (buf_printf(c->out, "{\"ok\":true,\"purged\":%zu}\n", n) != 0)
		ctl_too_large(c->out);
}

static void
ctl_run(struct job *j)
{
	struct ctl *c = (struct ctl *)j;
	struct spool *sp = c->q->srv->spool;
	time_t now = time(NULL);
	char err[256];
	size_t i, shown = 0;
	bool list = ctl_is(c, "LIST");
	int rc;

	c->rc = 0;
	if (ctl_is(c, "PURGE")) {
		ctl_purge_run(c);
		return;
	}
	if (ctl_is(c, "DELETE") || ctl_is(c, "HOLD") || ctl_is(c, "RELEASE") ||
	    ctl_is(c, "BOUNCE")) {
		/* BOUNCE comes here for a held message only: it is
		 * released first, as RELEASE would */
		c->rc = c->cmd[0] == 'D'   ? spool_remove(sp, c->ids[0])
			: c->cmd[0] == 'H' ? spool_hold(sp, c->ids[0])
					   : spool_release(sp, c->ids[0]);
		ctl_reply(c->out,
		    c->rc == 0 ? "{\"ok\":true}\n"
			       : "{\"ok\":false,\"error\":\"the queue could "
				 "not be changed (see ternd's log)\"}\n");
		return;
	}
	rc = buf_append_str(c->out,
	    list ? "{\"ok\":true,\"messages\":[" : "{\"ok\":true,\"message\":");
	for (i = 0; i < c->nids && rc == 0; i++) {
		struct queue_env env;

		queue_env_init(&env);
		if (spool_load(sp, c->ids[i], &env, err, sizeof(err)) == 0 &&
		    (!list || queue_filter_match(&c->filt, &env, now))) {
			if (shown++ > 0)
				rc = buf_append_str(c->out, ",");
			if (rc == 0)
				rc = queue_env_json(&env, c->out);
		}
		queue_env_free(&env);
	}
	if (rc != 0) {
		ctl_too_large(c->out);
		return;
	}
	if (!list && shown == 0) {
		ctl_reply(
		    c->out, "{\"ok\":false,\"error\":\"no such message\"}\n");
		return;
	}
	if (buf_append_str(c->out, list ? "]}\n" : "}\n") != 0)
		ctl_too_large(c->out);
}

/* PURGE's end: forget what was removed, put the rest back as it was. */
static void
ctl_purge_done(struct ctl *c)
{
	struct sched_ent *e;
	size_t i;

	for (i = 0; i < c->nids; i++) {
		if ((e = sched_find(c->q->sched, c->ids[i])) == NULL)
			continue;
		e->busy = false;
		if (c->hit[i]) {
			log_info(
			    "id=%s event=deleted by=admin reason=purge", e->id);
			sched_del(c->q->sched, e);
		} else if (!e->held) {
			sched_reschedule(c->q->sched, e, e->next_try);
		}
	}
	qmgr_kick(c->q);
}

static void
ctl_done(struct job *j)
{
	struct ctl *c = (struct ctl *)j;
	struct sched_ent *e = c->nids == 1 && !ctl_is(c, "PURGE")
				  ? sched_find(c->q->sched, c->ids[0])
				  : NULL;
	size_t i;

	c->q->jobs--;
	if (ctl_is(c, "PURGE"))
		ctl_purge_done(c);
	if (e != NULL && c->rc == 0) {
		if (ctl_is(c, "DELETE")) {
			log_info("id=%s event=deleted by=admin", e->id);
			sched_del(c->q->sched, e);
			e = NULL;
		} else if (ctl_is(c, "HOLD")) {
			sched_hold(c->q->sched, e);
		} else if (ctl_is(c, "RELEASE") || ctl_is(c, "BOUNCE")) {
			e->bounce = ctl_is(c, "BOUNCE");
			if (e->bounce)
				log_info(
				    "id=%s event=bounce_asked by=admin", e->id);
			sched_release(c->q->sched, e, time(NULL));
			qmgr_kick(c->q);
		}
	}
	if (e != NULL && e->busy) {
		e->busy = false;
		if (c->rc != 0 && !e->held)
			qent_reschedule(c->q, e, time(NULL));
	}
	c->done(c->arg);
	for (i = 0; i < c->nids; i++)
		free(c->ids[i]);
	free(c->ids);
	free(c->hit);
	free(c);
}

static unsigned
qmgr_flush(struct qmgr *q)
{
	unsigned n = (unsigned)sched_flush(q->sched, time(NULL));

	qmgr_kick(q);
	return n;
}

static void
ctl_collect_one(struct sched_ent *e, void *arg)
{
	struct ctl *c = arg;

	c->ids[c->nids++] = xstrdup(e->id);
}

static void
ctl_collect_all(struct qmgr *q, struct ctl *c)
{
	size_t n = sched_count(q->sched);

	c->ids = xcalloc(n ? n : 1, sizeof(*c->ids));
	c->nids = 0;
	sched_each(q->sched, ctl_collect_one, c);
}

/* An answer made on the loop: c is done with. */
static void
ctl_answer_now(struct ctl *c, const char *json)
{
	size_t i;

	if (json != NULL)
		ctl_reply(c->out, json);
	for (i = 0; i < c->nids; i++)
		free(c->ids[i]);
	free(c->ids);
	free(c);
}

/*
 * REQUEUE ID|ALL: due now, and the DNS answers of its destinations
 * forgotten when its attempt starts (attempt_admin).  A held message is
 * left held (RELEASE is what frees it) and one being delivered now is
 * tried again after this attempt anyway; ALL skips both, ID says so.
 */
static void
ctl_requeue(struct qmgr *q, struct ctl *c, const char *id)
{
	time_t now = time(NULL);
	struct sched_ent *e;
	size_t i, n = 0;

	if (strcmp(id, "ALL") == 0) {
		ctl_collect_all(q, c);
	} else if (!queue_id_valid(id) ||
		   (e = sched_find(q->sched, id)) == NULL) {
		ctl_answer_now(c, "{\"ok\":false,\"error\":\"no such "
				  "message\"}\n");
		return;
	} else if (e->held || e->busy) {
		ctl_answer_now(c, e->held ? "{\"ok\":false,\"error\":\"the "
					    "message is held (tern queue "
					    "release)\"}\n"
					  : "{\"ok\":false,\"error\":\"the "
					    "message is being delivered; try "
					    "again\"}\n");
		return;
	} else {
		c->ids = xcalloc(1, sizeof(*c->ids));
		c->ids[c->nids++] = xstrdup(id);
	}
	for (i = 0; i < c->nids; i++) {
		e = sched_find(q->sched, c->ids[i]);
		if (e == NULL || e->held || e->busy)
			continue;
		e->requeue = true;
		sched_reschedule(q->sched, e, now);
		log_info("id=%s event=requeued by=admin", e->id);
		n++;
	}
	qmgr_kick(q);
	buf_reset(c->out);
	if (buf_printf(c->out, "{\"ok\":true,\"requeued\":%zu}\n", n) != 0)
		ctl_too_large(c->out);
	ctl_answer_now(c, NULL);
}

/* PURGE FILTER: every message not being delivered now is read by the
 * job (ctl_purge_run); none is tried meanwhile. */
static void
ctl_purge_take(struct qmgr *q, struct ctl *c)
{
	struct sched_ent *e;
	size_t i, k = 0;

	ctl_collect_all(q, c);
	for (i = 0; i < c->nids; i++) {
		e = sched_find(q->sched, c->ids[i]);
		if (e == NULL || e->busy) {
			free(c->ids[i]);
			continue;
		}
		e->busy = true;
		sched_take(q->sched, e);
		c->ids[k++] = c->ids[i];
	}
	c->nids = k;
	c->hit = xcalloc(k ? k : 1, sizeof(*c->hit));
}

void
qmgr_control(struct qmgr *q, const char *line, struct buf *out,
    void (*done)(void *arg), void *arg)
{
	struct ctl *c = xcalloc(1, sizeof(*c));
	char cmd[16] = "", id[64] = "", err[200], reply[400];
	struct sched_ent *e = NULL;
	const char *args;

	if (sscanf(line, "%15s %63s", cmd, id) < 1)
		cmd[0] = '\0';
	/* cmd[16] and c->cmd[16]: the sscanf width keeps it in */
	if (str_copy(c->cmd, sizeof(c->cmd), cmd, strlen(cmd)) != 0)
		panic("event=control error=\"command too long\"");
	c->q = q;
	c->out = out;
	c->done = done;
	c->arg = arg;
	if (strcmp(cmd, "FLUSH") == 0) {
		buf_reset(out);
		if (buf_printf(out, "{\"ok\":true,\"flushed\":%u}\n",
			qmgr_flush(q)) != 0)
			ctl_too_large(out);
		free(c);
		done(arg);
		return;
	}
	if (strcmp(cmd, "REQUEUE") == 0) {
		ctl_requeue(q, c, id);
		done(arg);
		return;
	}
	if (strcmp(cmd, "LIST") == 0 || strcmp(cmd, "PURGE") == 0) {
		args = line + strlen(cmd);
		err[0] = '\0';
		if (queue_filter_parse(&c->filt, args, err, sizeof(err)) != 0 ||
		    (cmd[0] == 'P' && !c->filt.any)) {
			/* err: fixed ASCII without quotes (queue/admin.h) */
			str_fmt_cut(reply, sizeof(reply),
			    "{\"ok\":false,\"error\":\"%s\"}\n",
			    err[0] != '\0' ? err
					   : "purge needs a filter (to=, "
					     "from=, older=, deferred)");
			ctl_answer_now(c, reply);
			done(arg);
			return;
		}
		if (cmd[0] == 'L')
			ctl_collect_all(q, c);
		else
			ctl_purge_take(q, c);
	} else if (strcmp(cmd, "SHOW") == 0 || strcmp(cmd, "DELETE") == 0 ||
		   strcmp(cmd, "HOLD") == 0 || strcmp(cmd, "RELEASE") == 0 ||
		   strcmp(cmd, "BOUNCE") == 0) {
		if (!queue_id_valid(id) ||
		    (e = sched_find(q->sched, id)) == NULL || e->busy) {
			ctl_reply(
			    out, e != NULL && e->busy
				     ? "{\"ok\":false,\"error\":\"the message "
				       "is being delivered; try again\"}\n"
				     : "{\"ok\":false,\"error\":\"no such "
				       "message\"}\n");
			free(c);
			done(arg);
			return;
		}
		if (strcmp(cmd, "BOUNCE") == 0 && !e->held) {
			/* no file changes: the next attempt bounces it */
			e->bounce = true;
			log_info("id=%s event=bounce_asked by=admin", e->id);
			qent_reschedule(q, e, time(NULL));
			ctl_reply(out, "{\"ok\":true}\n");
			free(c);
			done(arg);
			return;
		}
		if (strcmp(cmd, "SHOW") != 0) {
			e->busy =
			    true; /* no attempt starts while the job runs */
			sched_take(q->sched, e);
		}
		c->ids = xcalloc(1, sizeof(*c->ids));
		c->ids[0] = xstrdup(id);
		c->nids = 1;
	} else {
		ctl_reply(
		    out, "{\"ok\":false,\"error\":\"unknown command\"}\n");
		free(c);
		done(arg);
		return;
	}
	c->job.run = ctl_run;
	c->job.done = ctl_done;
	q->jobs++;
	workers_submit(q->srv->workers, &c->job);
}
