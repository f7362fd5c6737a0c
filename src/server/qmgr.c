/*
 * qmgr: the queue's scheduler.  It keeps a small index entry per queued
 * message (id, next attempt, state) in a hash table and a binary heap
 * ordered by next attempt, so nothing rescans the disk per message: the
 * disk is read once at start-up (spool_scan) and then only to load the
 * envelope of the message being tried.
 *
 * An attempt: load the envelope and open the data (worker), group the
 * pending recipients by domain (or one group for relay.smarthost), hand
 * each group to remote delivery, merge the per-recipient results, then
 * (worker again) send the DSNs that are due and rewrite or remove the
 * envelope.  The envelope on disk is always the truth: the in-memory entry
 * is only a schedule.
 *
 * DSNs (RFC 3461, 3464): a failure report for recipients that failed for
 * good (or expired) unless NOTIFY said otherwise; a delay warning once
 * after queue.delay_warning; a "relayed" success report when NOTIFY asked
 * for SUCCESS and the next hop did not take DSN parameters.  A DSN has the
 * null sender <> and is never sent to <>, so DSNs cannot loop.
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

#include "../deliver/remote.h"
#include "../queue/bounce.h"
#include "../queue/retry.h"
#include "../tls/tls.h"
#include "dsnlimit.h"
#include "server.h"

#define QMGR_BUCKETS	  65536
#define QMGR_INFLIGHT_MAX 256 /* messages being tried at once */
#define QMGR_DOMAINS_MAX  64  /* destinations per message and attempt */

struct qent {
	struct qent *hnext; /* hash chain */
	char id[QUEUE_ID_LEN + 1];
	time_t next_try;
	size_t heap_idx; /* SIZE_MAX: not in the heap */
	bool held;
	bool busy;    /* an attempt or a control job has it */
	bool deleted; /* delete asked while busy */
};

struct qmgr {
	struct server *srv;
	struct qent *buckets[QMGR_BUCKETS];
	struct qent **heap;
	size_t nheap, heapcap;
	size_t nentries;
	unsigned inflight;
	unsigned jobs; /* worker jobs and remote groups outstanding */
	struct event *timer;
	struct remote *remote;
	struct dns *dns;
	SSL_CTX *client_ctx;	/* MX delivery: opportunistic */
	SSL_CTX *smarthost_ctx; /* relay.smarthost_tls, _ca_file; or NULL */
	struct retry_policy retry;
	struct dsn_limit *dsnlim; /* limits.dsn_per_client, _per_domain */
};

/* ---- index: hash table + heap ------------------------------------------ */

static uint32_t
qent_hash(const char *id)
{
	uint32_t h = 2166136261u;

	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 16777619u;
	return h % QMGR_BUCKETS;
}

static struct qent *
qent_find(struct qmgr *q, const char *id)
{
	struct qent *e;

	for (e = q->buckets[qent_hash(id)]; e != NULL; e = e->hnext)
		if (strcmp(e->id, id) == 0)
			return e;
	return NULL;
}

static void
heap_swap(struct qmgr *q, size_t a, size_t b)
{
	struct qent *t = q->heap[a];

	q->heap[a] = q->heap[b];
	q->heap[b] = t;
	q->heap[a]->heap_idx = a;
	q->heap[b]->heap_idx = b;
}

static void
heap_up(struct qmgr *q, size_t i)
{
	while (i > 0 && q->heap[(i - 1) / 2]->next_try > q->heap[i]->next_try) {
		heap_swap(q, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void
heap_down(struct qmgr *q, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < q->nheap && q->heap[l]->next_try < q->heap[m]->next_try)
			m = l;
		if (r < q->nheap && q->heap[r]->next_try < q->heap[m]->next_try)
			m = r;
		if (m == i)
			return;
		heap_swap(q, i, m);
		i = m;
	}
}

static void
heap_push(struct qmgr *q, struct qent *e)
{
	if (q->nheap == q->heapcap) {
		q->heapcap = q->heapcap ? q->heapcap * 2 : 1024;
		q->heap = realloc(q->heap, q->heapcap * sizeof(*q->heap));
		if (q->heap == NULL)
			panic("event=oom where=qmgr_heap");
	}
	e->heap_idx = q->nheap;
	q->heap[q->nheap++] = e;
	heap_up(q, e->heap_idx);
}

static void
heap_remove(struct qmgr *q, struct qent *e)
{
	size_t i = e->heap_idx;

	if (i == SIZE_MAX)
		return;
	q->nheap--;
	if (i != q->nheap) {
		q->heap[i] = q->heap[q->nheap];
		q->heap[i]->heap_idx = i;
		heap_down(q, i);
		heap_up(q, i);
	}
	e->heap_idx = SIZE_MAX;
}

static struct qent *
qent_add(struct qmgr *q, const char *id, time_t next_try, bool held)
{
	struct qent *e = xcalloc(1, sizeof(*e));
	uint32_t h = qent_hash(id);

	if (str_copy(e->id, sizeof(e->id), id, strlen(id)) != 0)
		panic("event=bad_id");
	e->next_try = next_try;
	e->held = held;
	e->heap_idx = SIZE_MAX;
	e->hnext = q->buckets[h];
	q->buckets[h] = e;
	q->nentries++;
	if (!held)
		heap_push(q, e);
	return e;
}

static void
qent_del(struct qmgr *q, struct qent *e)
{
	struct qent **pp = &q->buckets[qent_hash(e->id)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	heap_remove(q, e);
	q->nentries--;
	free(e);
}

static void qmgr_kick(struct qmgr *q);

static void
qent_reschedule(struct qmgr *q, struct qent *e, time_t when)
{
	heap_remove(q, e);
	e->next_try = when;
	if (!e->held)
		heap_push(q, e);
	qmgr_kick(q);
}

/* ---- attempts ---------------------------------------------------------- */

struct group {
	struct attempt *at;
	bool lmtp;  /* to an LMTP server: final delivery */
	bool local; /* into Maildirs here (see group_local) */
	char domain[ADDR_DOMAIN_MAX + 1]; /* or the LMTP target */
	char **paths; /* local: the Maildirs, deduplicated */
	size_t npaths;
	size_t *idx; /* envelope recipient indexes */
	size_t n;
	struct smtp_client_rcpt *rcpts;
};

enum route {
	ROUTE_REMOTE,
	ROUTE_LMTP,
	ROUTE_MAILDIR,
	ROUTE_TEMP,
	ROUTE_NOUSER,
	ROUTE_MOVED,
	ROUTE_SKIP
};

/* Where each recipient goes in this attempt, asked of the table at once. */
struct rcpt_way {
	enum route route;
	char box[512];		 /* the row's mailbox ("lmtp:..." too) */
	const char *lmtp;	 /* ROUTE_LMTP: into box or conf */
	struct table_targets tt; /* ROUTE_MAILDIR: the Maildirs */
};

struct route_lookup {
	struct lookup lk;
	struct attempt *at;
};

struct attempt {
	struct job job;
	struct route_lookup route;
	struct rcpt_way *ways; /* per recipient */
	struct qmgr *q;
	struct qent *e;
	struct queue_env env;
	int data_fd;
	int rc;
	int err_no; /* errno of a failed load */
	char err[256];
	struct group groups[QMGR_DOMAINS_MAX];
	size_t ngroups, groups_left;
	/* the second job: DSNs and the envelope write */
#define DSN_BUFS 3
	struct buf dsn[DSN_BUFS]; /* failure, delay, success */
	bool all_done;
	char hostname[256];
	char date[64];
	unsigned char *before; /* recipient states when loaded */
	unsigned char *final;  /* per recipient: delivered to its
				  mailbox (LMTP) in this attempt */
	char (*mx)[256];       /* per recipient: the host that answered
				  in this attempt (DSN Remote-MTA) */
};

static void attempt_finish(struct attempt *at);

static void
attempt_load_run(struct job *j)
{
	struct attempt *at = (struct attempt *)j;

	at->rc = spool_load(
	    at->q->srv->spool, at->e->id, &at->env, at->err, sizeof(at->err));
	if (at->rc == 0 &&
	    (at->data_fd = spool_open_data(at->q->srv->spool, at->e->id)) < 0)
		at->rc = -1;
	at->err_no = at->rc != 0 ? errno : 0;
}

static const char *
rcpt_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at ? at + 1 : "";
}

static struct group *
group_for(struct attempt *at, const char *domain, bool lmtp, bool local)
{
	size_t i;

	for (i = 0; i < at->ngroups; i++)
		if (at->groups[i].lmtp == lmtp &&
		    at->groups[i].local == local &&
		    (local ||
			(lmtp ? strcmp(at->groups[i].domain, domain)
			      : strcasecmp(at->groups[i].domain, domain)) == 0))
			return &at->groups[i];
	if (at->ngroups == QMGR_DOMAINS_MAX)
		return NULL; /* the rest waits for the next attempt */
	struct group *g = &at->groups[at->ngroups++];
	g->at = at;
	g->lmtp = lmtp;
	g->local = local;
	if (str_copy(g->domain, sizeof(g->domain), domain, strlen(domain)) != 0)
		g->domain[0] = '\0';
	if (!lmtp)
		str_lower(g->domain);
	g->idx = xcalloc(at->env.nrcpt, sizeof(*g->idx));
	g->rcpts = xcalloc(at->env.nrcpt, sizeof(*g->rcpts));
	return g;
}

static void result_apply(struct attempt *at, struct queue_rcpt *r,
    const struct smtp_client_result *res, time_t now, bool final);

/*
 * Where a queued recipient goes now.  Not a local domain: by MX (or the
 * smarthost).  A local one: its row's "lmtp:TARGET", else delivery.lmtp,
 * else its Maildir(s) here (*tt gets them): mail queued for a domain that
 * has become local since, or for a user whose LMTP target was removed, is
 * delivered here rather than sent by MX back to ourselves.
 */
static enum route
rcpt_route(const struct conf *cf, struct table *t, const struct queue_rcpt *r,
    char *box, size_t boxlen, const char **lmtp, struct table_targets *tt)
{
	const char *domain = rcpt_domain(r->addr);
	enum table_status st;
	struct addr a;
	size_t i;

	if (t == NULL)
		return ROUTE_TEMP;
	st = table_domain_is_local(t, domain); /* conf domains too */
	if (st != TABLE_OK)
		return st == TABLE_TEMPFAIL ? ROUTE_TEMP : ROUTE_REMOTE;
	st = table_user_mailbox(t, r->addr, box, boxlen);
	if (st == TABLE_TEMPFAIL)
		return ROUTE_TEMP;
	if (st == TABLE_OK && table_mailbox_is_lmtp(box)) {
		*lmtp = box + strlen(TABLE_LMTP_PREFIX);
		return ROUTE_LMTP;
	}
	if ((*lmtp = cf->delivery_lmtp) != NULL)
		return ROUTE_LMTP;
	if (addr_parse_mailbox(r->addr, strlen(r->addr), ADDR_F_UTF8, &a) !=
	    ADDR_OK)
		return ROUTE_NOUSER;
	st = table_resolve(t, &a, tt);
	if (st == TABLE_TEMPFAIL)
		return ROUTE_TEMP;
	if (st != TABLE_OK)
		return ROUTE_NOUSER;
	for (i = 0; i < tt->n; i++)
		if (!tt->v[i].local || table_mailbox_is_lmtp(tt->v[i].mailbox))
			return ROUTE_MOVED; /* aliased elsewhere since: see docs
					     */
	return ROUTE_MAILDIR;
}

/* On a lookup thread (remote table) or inline: every pending recipient. */
static void
route_ask(struct lookup *lk, struct table *t)
{
	struct attempt *at = ((struct route_lookup *)lk)->at;
	const struct conf *cf = lk->srv->conf;
	size_t i;

	for (i = 0; i < at->env.nrcpt; i++) {
		struct rcpt_way *w = &at->ways[i];

		if (at->env.rcpt[i].state != QUEUE_RCPT_PENDING)
			w->route = ROUTE_SKIP;
		else
			w->route = rcpt_route(cf, t, &at->env.rcpt[i], w->box,
			    sizeof(w->box), &w->lmtp, &w->tt);
	}
}

static void
result_set(struct smtp_client_result *res, enum smtp_result_class cls, int code,
    const char *enh, const char *text)
{
	memset(res, 0, sizeof(*res));
	res->cls = cls;
	res->code = code;
	(void)!str_copy(res->enh, sizeof(res->enh), enh, strlen(enh));
	(void)!str_copy(res->text, sizeof(res->text), text, strlen(text));
}

/* The Maildirs of tt into the local group g, each once. */
static void
group_add_paths(struct group *g, const struct table_targets *tt)
{
	size_t i, j;

	for (i = 0; i < tt->n; i++) {
		for (j = 0; j < g->npaths; j++)
			if (strcmp(g->paths[j], tt->v[i].mailbox) == 0)
				break;
		if (j < g->npaths)
			continue;
		char **np = xcalloc(g->npaths + 1, sizeof(*np));

		if (g->npaths > 0)
			memcpy(np, g->paths, g->npaths * sizeof(*np));
		free(g->paths);
		g->paths = np;
		g->paths[g->npaths++] = xstrdup(tt->v[i].mailbox);
	}
}

static void
group_build(struct attempt *at)
{
	const char *smarthost = at->q->srv->conf->relay_smarthost;
	struct smtp_client_result tf;
	bool logged = false;
	size_t i;

	memset(&tf, 0, sizeof(tf));
	tf.cls = SMTP_RESULT_TEMP;
	tf.code = 451;
	(void)!str_copy(tf.enh, sizeof(tf.enh), "4.3.0", 5);
	(void)!str_copy(tf.text, sizeof(tf.text),
	    "Temporary lookup failure of the local domains", 45);
	for (i = 0; i < at->env.nrcpt; i++) {
		struct queue_rcpt *r = &at->env.rcpt[i];
		struct smtp_client_result nouser;
		struct group *g;
		const char *lmtp = at->ways[i].lmtp;
		enum route route = at->ways[i].route;

		if (route == ROUTE_SKIP || r->state != QUEUE_RCPT_PENDING)
			continue;
		if (route == ROUTE_TEMP && !logged) {
			char q[600];

			/* the DSN text stays vague; the log says what to fix */
			log_warn(
			    "id=%s event=table_error step=route error=\"%s\"",
			    at->env.id,
			    log_quote(q, sizeof(q), at->route.lk.err,
				strlen(at->route.lk.err)));
			logged = true;
		}
		if (route == ROUTE_TEMP || route == ROUTE_NOUSER ||
		    route == ROUTE_MOVED) {
			if (route == ROUTE_NOUSER)
				result_set(&nouser, SMTP_RESULT_PERM, 550,
				    "5.1.1",
				    "No such user here (the recipient's domain "
				    "is local)");
			else if (route == ROUTE_MOVED)
				result_set(&nouser, SMTP_RESULT_TEMP, 451,
				    "4.3.0",
				    "The recipient became an alias to other "
				    "places since "
				    "this mail was queued: waiting for the "
				    "admin");
			result_apply(at, r, route == ROUTE_TEMP ? &tf : &nouser,
			    time(NULL), route == ROUTE_NOUSER);
			continue;
		}
		g = group_for(at,
		    route == ROUTE_LMTP ? lmtp
		    : smarthost		? smarthost
					: rcpt_domain(r->addr),
		    route == ROUTE_LMTP, route == ROUTE_MAILDIR);
		if (g != NULL && route == ROUTE_MAILDIR)
			group_add_paths(g, &at->ways[i].tt);
		if (g == NULL)
			continue;
		g->idx[g->n] = i;
		g->rcpts[g->n].addr = r->addr;
		g->rcpts[g->n].notify = r->notify;
		g->rcpts[g->n].orcpt_type =
		    r->orcpt_type[0] ? r->orcpt_type : NULL;
		g->rcpts[g->n].orcpt = r->orcpt_type[0] ? r->orcpt : NULL;
		g->n++;
	}
}

/* final: the peer is the mailbox (LMTP), not a relay on the way. */
static void
result_apply(struct attempt *at, struct queue_rcpt *r,
    const struct smtp_client_result *res, time_t now, bool final)
{
	r->attempts++;
	r->last_try = now;
	r->code = res->code;
	(void)!str_copy(r->enh, sizeof(r->enh), res->enh, strlen(res->enh));
	if (str_copy(r->text, sizeof(r->text), res->text, strlen(res->text)) !=
	    0)
		(void)!str_copy(
		    r->text, sizeof(r->text), res->text, sizeof(r->text) - 1);
	if (res->cls == SMTP_RESULT_OK) {
		/* RFC 3461 5.2.2: SUCCESS asked but not passed on: "relayed" */
		r->state = (r->notify & SMTP_NOTIFY_SUCCESS) &&
				   !res->dsn_passed && !final
			       ? QUEUE_RCPT_RELAYED
			       : QUEUE_RCPT_DELIVERED;
	} else if (res->cls == SMTP_RESULT_PERM) {
		r->state = QUEUE_RCPT_FAILED;
	} else {
		r->next_try = retry_next(&at->q->retry, at->env.created,
		    r->attempts, now, (uint32_t)random());
	}
}

static void
group_done(void *arg, const struct smtp_client_result *results, size_t n,
    const char *mx)
{
	struct group *g = arg;
	struct attempt *at = g->at;
	time_t now = time(NULL);
	size_t i;

	/* remote.c logged each result with its MX */
	for (i = 0; i < n && i < g->n; i++) {
		result_apply(at, &at->env.rcpt[g->idx[i]], &results[i], now,
		    g->lmtp || g->local);
		if ((g->lmtp || g->local) && results[i].cls == SMTP_RESULT_OK)
			at->final[g->idx[i]] = 1;
		if (mx != NULL && results[i].remote &&
		    !g->lmtp) /* not an MTA */
			(void)!str_copy(at->mx[g->idx[i]], sizeof(at->mx[0]),
			    mx, strlen(mx));
	}
	at->q->jobs--;
	if (--at->groups_left == 0)
		attempt_finish(at);
}

/* The local group's Maildir delivery is done: one result for all. */
static void
group_local_done(struct inject *ij)
{
	struct group *g = ij->arg;
	struct smtp_client_result *res = xcalloc(g->n ? g->n : 1, sizeof(*res));
	size_t i;

	for (i = 0; i < g->n; i++) {
		if (ij->rc == 0)
			result_set(&res[i], SMTP_RESULT_OK, 250, "2.0.0",
			    "Delivered into the local Maildir");
		else if (ij->err_no == ENOSPC || ij->err_no == EDQUOT)
			result_set(
			    &res[i], SMTP_RESULT_TEMP, 452, "4.3.1", ij->err);
		else
			result_set(
			    &res[i], SMTP_RESULT_TEMP, 451, "4.3.0", ij->err);
	}
	if (ij->rc != 0)
		log_err("id=%s event=local_delivery_failed error=\"%s\"",
		    g->at->env.id, ij->err);
	else
		log_info(
		    "id=%s event=delivered_from_queue mailboxes=%zu file=%s",
		    g->at->env.id, g->npaths, ij->name);
	if (ij->body_len > 0)
		(void)munmap((void *)(uintptr_t)ij->body, ij->body_len);
	inject_clear(ij);
	free(ij);
	group_done(g, res, g->n, NULL);
	free(res);
}

/*
 * Recipients of a local domain with no LMTP server: the queued content
 * (our Received line is its first header) goes into their Maildirs as at
 * the end of data, with its Return-Path.
 */
static void
group_local(struct attempt *at, struct group *g)
{
	struct inject *ij = xcalloc(1, sizeof(*ij));
	struct stat st;
	size_t i;
	void *map = NULL;

	inject_init(ij, at->q->srv->store);
	if (fstat(at->data_fd, &st) != 0 ||
	    (st.st_size > 0 &&
		(map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED,
		     at->data_fd, 0)) == MAP_FAILED) ||
	    buf_printf(&ij->return_path, "Return-Path: <%s>\r\n",
		at->env.sender) != 0) {
		ij->rc = -1;
		ij->err_no = errno;
		(void)!str_copy(ij->err, sizeof(ij->err),
		    "cannot read the queued content", 30);
		ij->body_len = 0;
		ij->arg = g;
		group_local_done(ij);
		return;
	}
	ij->body = map != NULL ? map : "";
	ij->body_len = map != NULL ? (size_t)st.st_size : 0;
	ij->boxes = xcalloc(g->npaths ? g->npaths : 1, sizeof(*ij->boxes));
	for (i = 0; i < g->npaths; i++)
		ij->boxes[i].path = g->paths[i];
	ij->nboxes = g->npaths;
	ij->arg = g;
	inject_submit(ij, group_local_done);
}

static void
attempt_start_groups(struct attempt *at)
{
	size_t i;

	group_build(at);
	at->groups_left = at->ngroups;
	if (at->ngroups == 0) {
		attempt_finish(at);
		return;
	}
	for (i = 0; i < at->ngroups; i++) {
		struct group *g = &at->groups[i];
		struct remote_msg m = {
		    .id = at->env.id,
		    .domain = g->domain,
		    .sender = at->env.sender,
		    .rcpts = g->rcpts,
		    .nrcpts = g->n,
		    .data_fd = at->data_fd,
		    .size = at->env.size,
		    .body_8bit = at->env.body_8bit,
		    .smtputf8 = at->env.smtputf8,
		    .ret = at->env.ret,
		    .envid = at->env.envid[0] ? at->env.envid : NULL,
		    .lmtp = g->lmtp ? g->domain : NULL,
		};

		at->q->jobs++;
		if (g->local)
			group_local(at, g);
		else
			remote_deliver(at->q->remote, &m, group_done, g);
	}
}

static void
attempt_free(struct attempt *at)
{
	size_t i;

	for (i = 0; i < at->ngroups; i++) {
		free(at->groups[i].idx);
		free(at->groups[i].rcpts);
		for (size_t k = 0; k < at->groups[i].npaths; k++)
			free(at->groups[i].paths[k]);
		free(at->groups[i].paths);
	}
	for (i = 0; i < 3; i++)
		buf_free(&at->dsn[i]);
	if (at->data_fd >= 0)
		close(at->data_fd);
	if (at->ways != NULL)
		for (i = 0; i < at->env.nrcpt; i++)
			table_targets_free(&at->ways[i].tt);
	free(at->ways);
	free(at->before);
	free(at->final);
	free(at->mx);
	queue_env_free(&at->env);
	free(at);
}

static void
route_answer(struct lookup *lk)
{
	struct attempt *at = ((struct route_lookup *)lk)->at;

	at->q->jobs--;
	attempt_start_groups(at);
}

static void
attempt_load_done(struct job *j)
{
	struct attempt *at = (struct attempt *)j;
	struct qent *e = at->e;

	at->q->jobs--;
	if (at->rc != 0 || e->deleted || at->env.held) {
		if (at->rc != 0)
			log_err("id=%s event=queue_load_failed error=\"%s\"",
			    e->id, at->err);
		e->busy = false;
		at->q->inflight--;
		if (e->deleted || at->err_no == ENOENT)
			qent_del(at->q, e);
		else
			qent_reschedule(at->q, e, time(NULL) + 60);
		attempt_free(at);
		return;
	}
	at->before = xcalloc(at->env.nrcpt ? at->env.nrcpt : 1, 1);
	at->final = xcalloc(at->env.nrcpt ? at->env.nrcpt : 1, 1);
	at->mx = xcalloc(at->env.nrcpt ? at->env.nrcpt : 1, sizeof(*at->mx));
	for (size_t i = 0; i < at->env.nrcpt; i++)
		at->before[i] = (unsigned char)at->env.rcpt[i].state;
	at->ways =
	    xcalloc(at->env.nrcpt ? at->env.nrcpt : 1, sizeof(*at->ways));
	at->route.at = at;
	at->route.lk.ask = route_ask;
	at->route.lk.answer = route_answer;
	if (lookups_async(at->q->srv)) {
		at->q->jobs++;
		lookup_submit(at->q->srv, &at->route.lk);
		return;
	}
	lookup_inline(at->q->srv, &at->route.lk);
	attempt_start_groups(at);
}

static void
attempt_begin(struct qmgr *q, struct qent *e)
{
	struct attempt *at = xcalloc(1, sizeof(*at));

	at->q = q;
	at->e = e;
	at->data_fd = -1;
	for (size_t i = 0; i < DSN_BUFS; i++)
		buf_init(&at->dsn[i], BOUNCE_RETURN_MAX_DEFAULT + (1u << 20));
	queue_env_init(&at->env);
	at->job.run = attempt_load_run;
	at->job.done = attempt_load_done;
	e->busy = true;
	q->inflight++;
	q->jobs++;
	workers_submit(q->srv->workers, &at->job);
}

/* ---- the end of an attempt: DSNs, envelope, schedule ----------------- */

enum { DSN_FAILURE, DSN_DELAY, DSN_SUCCESS, DSN_KINDS };
/* a recipient's owed mark is its DSN kind plus one (queue.h) */
_Static_assert(QUEUE_DSN_FAILURE == DSN_FAILURE + 1 &&
		   QUEUE_DSN_DELAY == DSN_DELAY + 1 &&
		   QUEUE_DSN_SUCCESS == DSN_SUCCESS + 1,
    "owed marks follow the DSN kinds");

struct finish {
	struct job job;
	struct attempt *at;
	bool want[DSN_KINDS];
	unsigned char *marks; /* per recipient: which DSN reports it */
	struct inject *ij[DSN_KINDS];
	bool remove;		  /* every recipient is final */
	bool owed;		  /* a DSN's store failed: owed marks set */
	bool was_owed[DSN_KINDS]; /* made again for an owed mark */
	int rc;
	int err_no; /* errno of a failed update/remove */
};

/* Which DSN, if any, reports what changed for recipient r in this attempt. */
static int
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

/*
 * Which DSN reports r now: what changed in this attempt, else the DSN an
 * earlier attempt owes (its store failed).  An owed delay warning is moot
 * once the recipient is no longer pending: its final report goes instead.
 */
static int
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

/* A recipient of the DSN that goes through the queue. */
static int
dsn_env_add(struct inject *ij, const char *addr)
{
	struct queue_rcpt *r;

	if (ij->env == NULL) {
		ij->env = xcalloc(1, sizeof(*ij->env));
		queue_env_init(ij->env);
		(void)!str_copy(
		    ij->env->proto, sizeof(ij->env->proto), "local", 5);
	}
	if ((r = queue_env_add_rcpt(ij->env, addr)) == NULL)
		return -1;
	r->notify = SMTP_NOTIFY_NEVER;
	return 0;
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

	sr->q = q;
	sr->then = then;
	sr->arg = arg;
	(void)!str_copy(sr->sender, sizeof(sr->sender), sender, strlen(sender));
	sr->lk.ask = sender_route_ask;
	sr->lk.answer = sender_route_answer;
	if (lookups_async(q->srv)) {
		q->jobs++; /* the qmgr is not idle meanwhile */
		lookup_submit(q->srv, &sr->lk);
		return;
	}
	lookup_inline(q->srv, &sr->lk);
	q->jobs++;
	sender_route_answer(&sr->lk);
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

/* A success DSN between its build and its store. */
struct dsn_success {
	struct buf body;
	char id[ID_LEN + 1];
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
	log_info("id=%s event=dsn kind=success to=<%s>", ds->id, sr->sender);
	inject_submit(ij, dsn_delivered_done);
}

void
qmgr_dsn_delivered(struct qmgr *q, const struct dsn_delivered *d)
{
	struct bounce_rcpt *br;
	struct bounce_in in = {0};
	struct dsn_success *ds;
	char msgid[300], nid[ID_LEN + 1], date[64];
	const char *host = q->srv->conf->hostname;
	size_t i,
	    n = d->nrcpts < BOUNCE_RCPTS_MAX ? d->nrcpts : BOUNCE_RCPTS_MAX;
	time_t now = time(NULL);

	if (d->sender[0] == '\0' || n == 0)
		return; /* never a DSN to <> */
	if (!d->trusted &&
	    !dsn_rate_ok(q, d->id, "success", d->client_ip, d->sender))
		return;
	br = xcalloc(n, sizeof(*br));
	for (i = 0; i < n; i++) {
		br[i].final = d->rcpts[i].addr;
		br[i].orcpt_type = d->rcpts[i].orcpt_type;
		br[i].orcpt = d->rcpts[i].orcpt;
		br[i].action = d->rcpts[i].expanded ? BOUNCE_ACTION_EXPANDED
						    : BOUNCE_ACTION_DELIVERED;
		br[i].status = "2.0.0";
		br[i].last_attempt = now;
	}
	id_new(nid);
	if (str_fmt(msgid, sizeof(msgid), "<%s.dsn@%s>", nid, host) != 0)
		msgid[0] = '\0';
	if (time_rfc5322(date, sizeof(date), (int64_t)now) == 0)
		date[0] = '\0';
	in.reporting_mta = host;
	in.sender = d->sender;
	in.envid = d->envid != NULL && d->envid[0] ? d->envid : NULL;
	in.arrival = now;
	in.kind = BOUNCE_SUCCESS;
	in.ret = d->ret == SMTP_RET_HDRS   ? BOUNCE_RET_HDRS
		 : d->ret == SMTP_RET_FULL ? BOUNCE_RET_FULL
					   : BOUNCE_RET_DEFAULT;
	in.smtputf8 = d->smtputf8;
	in.rcpts = br;
	in.nrcpts = n;
	in.msg = d->msg;
	in.msg_len = d->msg_len;
	in.date = date;
	in.message_id = msgid;
	ds = xcalloc(1, sizeof(*ds));
	buf_init(&ds->body, BOUNCE_RETURN_MAX_DEFAULT + (1u << 20));
	(void)!str_copy(ds->id, sizeof(ds->id), d->id, strlen(d->id));
	if (bounce_build(&in, &ds->body) < 0) {
		log_err("id=%s event=dsn_build_failed kind=success", d->id);
		buf_free(&ds->body);
		free(ds);
		free(br);
		return;
	}
	free(br);
	sender_route(q, d->sender, dsn_delivered_routed, ds);
}

/* Read the original message back for the DSN (worker thread). */
static int
read_original(int fd, uint64_t size, struct buf *out)
{
	size_t want = size > BOUNCE_RETURN_MAX_DEFAULT + 65536
			  ? BOUNCE_RETURN_MAX_DEFAULT + 65536
			  : (size_t)size;
	size_t got = 0;

	if (buf_reserve(out, want) != 0)
		return -1;
	while (got < want) {
		ssize_t n = pread(fd, out->data + got, want - got, (off_t)got);

		if (n <= 0)
			return n == 0 ? 0 : -1;
		got += (size_t)n;
		out->len = got;
	}
	out->data[out->len] = '\0';
	return 0;
}

/*
 * A recipient whose time in the queue is over fails for good with status
 * 4.4.7 (RFC 3463: a persistent transient failure, "delivery time
 * expired"), whatever the last attempt said: that is why it failed.  The
 * last reply is kept whole for the DSN's Diagnostic-Code (rcpt_expired):
 * its enhanced code moves to the front of the text, so "451 4.7.1
 * greylisted" is still quoted as the server said it.  docs/queue.md.
 */
static void
rcpt_expire(struct queue_rcpt *r)
{
	char text[QUEUE_TEXT_MAX + 1];

	r->state = QUEUE_RCPT_FAILED;
	if (r->code != 0 && r->enh[0] != '\0') {
		/* cut (terminated) if it does not fit: it is a diagnostic */
		(void)!str_fmt(text, sizeof(text), "%s %s", r->enh, r->text);
		memcpy(r->text, text, sizeof(r->text));
	}
	(void)!str_copy(r->enh, sizeof(r->enh), "4.4.7", 5);
}

/* Failed by expiry (not by a 5xx): a temporary last reply and 4.4.7. */
static bool
rcpt_expired(const struct queue_rcpt *r)
{
	return r->state == QUEUE_RCPT_FAILED && strcmp(r->enh, "4.4.7") == 0 &&
	       (r->code == 0 || (r->code >= 400 && r->code < 500));
}

static const enum bounce_kind dsn_kinds[DSN_KINDS] = {
    BOUNCE_FAILURE, BOUNCE_DELAY, BOUNCE_SUCCESS};
static const enum bounce_action dsn_actions[DSN_KINDS] = {
    BOUNCE_ACTION_FAILED, BOUNCE_ACTION_DELAYED, BOUNCE_ACTION_RELAYED};

static int
dsn_build(struct finish *f, int kind, const struct buf *orig, struct buf *out)
{
	struct attempt *at = f->at;
	struct bounce_rcpt *br = xcalloc(at->env.nrcpt, sizeof(*br));
	char(*diag)[QUEUE_TEXT_MAX + 32] =
	    xcalloc(at->env.nrcpt, sizeof(*diag));
	char msgid[300], nid[ID_LEN + 1];
	struct bounce_in in = {0};
	size_t i, n = 0;
	int rc;

	for (i = 0; i < at->env.nrcpt && n < BOUNCE_RCPTS_MAX; i++) {
		const struct queue_rcpt *r = &at->env.rcpt[i];

		if (f->marks[i] != kind + 1)
			continue;
		br[n].final = r->addr;
		br[n].orcpt_type = r->orcpt_type[0] ? r->orcpt_type : NULL;
		br[n].orcpt = r->orcpt_type[0] ? r->orcpt : NULL;
		br[n].action = dsn_actions[kind];
		if (kind == DSN_SUCCESS && r->state == QUEUE_RCPT_DELIVERED)
			br[n].action = BOUNCE_ACTION_DELIVERED;
		br[n].status = r->enh[0] ? r->enh : NULL;
		/* the remote server's whole reply, as RFC 3464 2.3.6 wants it
		 * (expired: its enhanced code is in the text, see rcpt_expire)
		 */
		if (r->code && rcpt_expired(r)) {
			if (str_fmt(diag[n], sizeof(diag[n]), "%d %s", r->code,
				r->text) != 0)
				diag[n][0] = '\0';
		} else if (r->code && str_fmt(diag[n], sizeof(diag[n]),
					  "%d %s%s%s", r->code, r->enh,
					  r->enh[0] ? " " : "", r->text) != 0) {
			diag[n][0] = '\0';
		}
		br[n].diag = r->code ? diag[n] : NULL;
		br[n].remote_mta =
		    at->mx != NULL && at->mx[i][0] ? at->mx[i] : NULL;
		br[n].last_attempt = r->last_try;
		br[n].retry_until =
		    kind == DSN_DELAY
			? at->env.created + (time_t)at->q->retry.lifetime
			: 0;
		n++;
	}
	id_new(nid);
	if (str_fmt(msgid, sizeof(msgid), "<%s.dsn@%s>", nid, at->hostname) !=
	    0)
		msgid[0] = '\0';
	in.reporting_mta = at->hostname;
	in.sender = at->env.sender;
	in.envid = at->env.envid[0] ? at->env.envid : NULL;
	in.arrival = at->env.created;
	in.kind = dsn_kinds[kind];
	in.ret = at->env.ret == SMTP_RET_HDRS	? BOUNCE_RET_HDRS
		 : at->env.ret == SMTP_RET_FULL ? BOUNCE_RET_FULL
						: BOUNCE_RET_DEFAULT;
	in.smtputf8 = at->env.smtputf8;
	in.rcpts = br;
	in.nrcpts = n;
	in.msg = orig->data ? orig->data : "";
	in.msg_len = orig->len;
	in.date = at->date;
	in.message_id = msgid;
	rc = n > 0 && bounce_build(&in, out) >= 0 ? 0 : -1;
	free(diag);
	free(br);
	return rc;
}

static const char *const dsn_kind_names[DSN_KINDS] = {
    "failure", "delay", "success"};

/*
 * The DSN of kind k could not be stored: its recipients keep an owed mark
 * in the envelope, so the report is made by a later attempt (or after a
 * restart) instead of being lost with the recipient's final state.
 */
static void
finish_owe(struct finish *f, int k)
{
	struct attempt *at = f->at;
	size_t i;

	for (i = 0; i < at->env.nrcpt; i++)
		if (f->marks[i] == k + 1)
			at->env.rcpt[i].dsn_owed = (enum queue_dsn_owed)(k + 1);
	f->owed = true;
}

/* An owed DSN keeps the message queued and brings its next attempt near. */
static void
finish_owed_schedule(struct finish *f)
{
	struct attempt *at = f->at;
	unsigned wait =
	    at->q->retry.first ? at->q->retry.first : RETRY_FIRST_DEFAULT;
	time_t when = time(NULL) + (time_t)wait;

	f->remove = false;
	if (at->env.next_try == 0 || at->env.next_try > when)
		at->env.next_try = when;
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
	if ((f->want[0] || f->want[1] || f->want[2]) &&
	    read_original(at->data_fd, at->env.size, &orig) != 0)
		log_err("id=%s event=dsn_read_failed error=\"%s\"", at->env.id,
		    strerror(errno));
	for (k = 0; k < DSN_KINDS; k++) {
		if (!f->want[k] || f->ij[k] == NULL)
			continue;
		if (dsn_build(f, k, &orig, &at->dsn[k]) != 0) {
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
			finish_owe(f, k);
		} else {
			log_info("id=%s event=dsn kind=%s to=<%s>", at->env.id,
			    dsn_kind_names[k], at->env.sender);
		}
	}
	buf_free(&orig);
	if (f->owed)
		finish_owed_schedule(f);
	f->rc = f->remove ? spool_remove(at->q->srv->spool, at->env.id)
			  : spool_update(at->q->srv->spool, &at->env);
	f->err_no = f->rc != 0 ? errno : 0;
}

static time_t
env_next_try(const struct queue_env *env)
{
	time_t next = 0;
	size_t i;

	for (i = 0; i < env->nrcpt; i++)
		if (env->rcpt[i].state == QUEUE_RCPT_PENDING &&
		    (next == 0 || env->rcpt[i].next_try < next))
			next = env->rcpt[i].next_try;
	return next;
}

static void
finish_done(struct job *j)
{
	struct finish *f = (struct finish *)j;
	struct attempt *at = f->at;
	struct qmgr *q = at->q;
	struct qent *e = at->e;
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
	if (f->rc != 0 && !f->remove)
		log_err("id=%s event=queue_update_failed", e->id);
	if (f->remove || e->deleted || (f->rc != 0 && f->err_no == ENOENT)) {
		if (f->remove)
			log_info("id=%s event=removed", e->id);
		qent_del(q, e);
	} else {
		qent_reschedule(q, e, at->env.next_try);
	}
	free(f->marks);
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

	if (!retry_expired(&at->q->retry, at->env.created, now))
		return;
	for (i = 0; i < at->env.nrcpt; i++) {
		struct queue_rcpt *r = &at->env.rcpt[i];

		if (r->state != QUEUE_RCPT_PENDING)
			continue;
		rcpt_expire(r);
		log_info("id=%s event=expired to=<%s> status=4.4.7", at->env.id,
		    r->addr);
	}
}

/*
 * A recipient that failed for good in this attempt and gets no failure
 * report: say why, so the log shows the failure was decided and the report
 * left out on purpose (RFC 3461 NOTIFY, or a null sender that must never
 * get one).
 */
static void
dsn_log_suppressed(const struct attempt *at, const struct queue_rcpt *r,
    enum queue_rcpt_state before, int kind)
{
	const char *why;

	if (r->state != QUEUE_RCPT_FAILED || before == QUEUE_RCPT_FAILED ||
	    (kind >= 0 && at->env.sender[0] != '\0'))
		return;
	if (at->env.sender[0] == '\0')
		why = "null_sender";
	else if (r->notify & SMTP_NOTIFY_NEVER)
		why = "notify_never";
	else
		why = "notify_without_failure";
	log_info("id=%s event=dsn_suppressed to=<%s> reason=%s", at->env.id,
	    r->addr, why);
}

static void finish_submit(struct finish *f);
static void finish_routed(struct sender_route *sr);

/* Mail that came over the network without AUTH (not sendmail's socket,
 * whose sessions record "uid=N" as their address). */
static bool
env_untrusted(const struct queue_env *env)
{
	return env->auth[0] == '\0' && strncmp(env->ip, "uid=", 4) != 0 &&
	       strcmp(env->proto, "local") != 0;
}

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
	size_t i, j;

	if (!env_untrusted(&at->env))
		return;
	for (j = 0; j < sizeof(limited) / sizeof(limited[0]); j++) {
		int k = limited[j];

		if (!f->want[k] || f->was_owed[k] ||
		    dsn_rate_ok(at->q, at->env.id, dsn_kind_names[k],
			at->env.ip, at->env.sender))
			continue;
		f->want[k] = false;
		for (i = 0; i < at->env.nrcpt; i++)
			if (f->marks[i] == k + 1)
				f->marks[i] = 0;
	}
}

static void
attempt_finish(struct attempt *at)
{
	struct finish *f = xcalloc(1, sizeof(*f));
	time_t now = time(NULL);
	bool warn, pending = false;
	size_t i;
	int k;

	f->at = at;
	finish_expire(at, now);
	warn = retry_warn_due(
	    &at->q->retry, at->env.created, now, at->env.warned != 0);
	f->marks = xcalloc(at->env.nrcpt ? at->env.nrcpt : 1, 1);
	for (i = 0; i < at->env.nrcpt; i++) {
		const struct queue_rcpt *r = &at->env.rcpt[i];

		/* only what changed in this attempt is reported */
		k = dsn_kind_for(r, (enum queue_rcpt_state)at->before[i],
		    at->final[i] != 0, warn);
		if (k >= 0 && r->dsn_owed == (enum queue_dsn_owed)(k + 1))
			f->was_owed[k] = true; /* counted when it was due */
		/* reported now, or moot: finish_owe marks it again if need be
		 */
		at->env.rcpt[i].dsn_owed = QUEUE_DSN_NONE;
		dsn_log_suppressed(
		    at, r, (enum queue_rcpt_state)at->before[i], k);
		pending |= r->state == QUEUE_RCPT_PENDING;
		if (k >= 0 && at->env.sender[0] != '\0') {
			f->marks[i] = (unsigned char)(k + 1);
			f->want[k] = true;
		}
	}
	/* once per message, even when the rate limit drops it: it is not due
	 * again at the next attempt */
	if (warn && f->want[DSN_DELAY])
		at->env.warned = now;
	finish_rate_limit(f);
	f->remove = !pending;
	at->env.next_try = env_next_try(&at->env);
	if (f->want[DSN_FAILURE] || f->want[DSN_DELAY] ||
	    f->want[DSN_SUCCESS]) {
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
		if (f->want[k])
			f->ij[k] = dsn_inject_new(f->at->q, sr);
	finish_submit(f);
}

static void
finish_submit(struct finish *f)
{
	struct attempt *at = f->at;
	time_t now = time(NULL);

	(void)!str_copy(at->hostname, sizeof(at->hostname),
	    at->q->srv->conf->hostname, strlen(at->q->srv->conf->hostname));
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

	while (q->nheap > 0 && q->inflight < QMGR_INFLIGHT_MAX &&
	       !q->srv->stopping && q->heap[0]->next_try <= now) {
		struct qent *e = q->heap[0];

		heap_remove(q, e);
		attempt_begin(q, e);
	}
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
	time_t now = time(NULL);

	if (q->srv->stopping || q->nheap == 0) {
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
	tv.tv_sec =
	    q->heap[0]->next_try <= now ? 0 : q->heap[0]->next_try - now;
	evtimer_add(q->timer, &tv);
}

void
qmgr_add(struct qmgr *q, struct queue_env *env)
{
	if (qent_find(q, env->id) == NULL)
		qent_add(q, env->id, env->next_try, env->held);
	log_info("id=%s event=queued from=<%s> rcpts=%zu size=%llu", env->id,
	    env->sender, env->nrcpt, (unsigned long long)env->size);
	queue_env_free(env);
	free(env);
	qmgr_kick(q);
}

bool
qmgr_idle(const struct qmgr *q)
{
	return q == NULL || q->jobs == 0;
}

/* ---- start and stop --------------------------------------------------- */

static void
scan_cb(struct queue_env *env, void *ctx)
{
	struct qmgr *q = ctx;

	if (qent_find(q, env->id) == NULL)
		qent_add(q, env->id, env->next_try, env->held);
}

static void
qmgr_retry_conf(struct qmgr *q)
{
	const struct conf *c = q->srv->conf;

	retry_policy_default(&q->retry);
	if (c->queue_retry_first)
		q->retry.first = c->queue_retry_first;
	if (c->queue_retry_max)
		q->retry.max_interval = c->queue_retry_max;
	q->retry.lifetime = c->queue_lifetime;
	q->retry.delay_warning = c->queue_delay_warning;
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

static enum remote_tls
qmgr_smarthost_tls(enum conf_smarthost_tls t)
{
	switch (t) {
	case CONF_SMTLS_VERIFY:
		return REMOTE_TLS_VERIFY;
	case CONF_SMTLS_ENCRYPT:
		return REMOTE_TLS_ENCRYPT;
	case CONF_SMTLS_MAY:
	case CONF_SMTLS_UNSET: /* conf_load() never leaves it so */
	default:
		return REMOTE_TLS_MAY;
	}
}

struct qmgr *
qmgr_new(struct server *s)
{
	struct qmgr *q = xcalloc(1, sizeof(*q));
	struct remote_conf rc = {0};
	struct sockaddr_storage self[REMOTE_SELF_MAX];
	char err[512];
	uint64_t t0 = time_now_ms();
	int n;

	q->srv = s;
	qmgr_retry_conf(q);
	q->dsnlim = dsn_limit_new(s->conf);
	if ((n = spool_scan(s->spool, scan_cb, q)) < 0)
		fatal("event=startup step=queue_scan");
	log_info("event=queue_loaded messages=%d ms=%llu", n,
	    (unsigned long long)(time_now_ms() - t0));
	if ((q->dns = dns_new(
		 s->base, s->conf->dns_servers, err, sizeof(err))) == NULL)
		fatalx("event=startup step=dns error=\"%s\"", err);
	/* MX hosts: opportunistic, checked against the system store only to
	   log verified=yes|no (no DANE or MTA-STS yet to say what to expect) */
	if ((q->client_ctx = tls_client_ctx(false, NULL, err, sizeof(err))) ==
	    NULL)
		fatalx("event=startup step=tls_client error=\"%s\"", err);
	if (s->conf->relay_smarthost != NULL &&
	    (q->smarthost_ctx = tls_client_ctx(
		 s->conf->relay_smarthost_tls == CONF_SMTLS_VERIFY,
		 s->conf->relay_smarthost_ca_file, err, sizeof(err))) == NULL)
		fatalx("event=startup step=tls_smarthost error=\"%s\"", err);
	rc.helo = s->conf->hostname;
	rc.port = s->conf->relay_port;
	rc.smarthost = s->conf->relay_smarthost;
	rc.smarthost_user = s->conf->relay_smarthost_user;
	rc.smarthost_pass = s->smarthost_pass[0] ? s->smarthost_pass : NULL;
	rc.smarthost_tls = qmgr_smarthost_tls(s->conf->relay_smarthost_tls);
	rc.smarthost_ctx = q->smarthost_ctx;
	rc.lmtp = s->conf->delivery_lmtp;
	rc.self = self;
	rc.nself = listening_addresses(s, self, REMOTE_SELF_MAX);
	rc.max_per_dest = 10;
	rc.timeout_connect = 30;
	rc.timeout_command = 300;
	if ((q->remote = remote_new(s->base, q->dns, q->client_ctx, &rc)) ==
	    NULL)
		fatalx("event=startup step=remote error=\"bad relay settings, "
		       "see above\"");
	q->timer = evtimer_new(s->base, on_qmgr_timer, q);
	qmgr_kick(q);
	return q;
}

void
qmgr_free(struct qmgr *q)
{
	size_t i;

	if (q == NULL)
		return;
	remote_free(q->remote);
	dsn_limit_free(q->dsnlim);
	dns_free(q->dns);
	SSL_CTX_free(q->client_ctx);
	SSL_CTX_free(q->smarthost_ctx);
	event_free(q->timer);
	for (i = 0; i < QMGR_BUCKETS; i++)
		while (q->buckets[i] != NULL)
			qent_del(q, q->buckets[i]);
	free(q->heap);
	free(q);
}

/* ---- control: tern queue ... ------------------------------------------ */

struct ctl {
	struct job job;
	struct qmgr *q;
	char cmd[16];
	char **ids; /* LIST/SHOW: the messages to describe */
	size_t nids;
	struct buf *out;
	int rc;
	void (*done)(void *arg);
	void *arg;
};

static int
json_str(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	int r = buf_append(b, "\"", 1);

	for (; *s && r == 0; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			char esc[2] = {'\\', (char)c};
			r = buf_append(b, esc, 2);
		} else if (c < 0x20 || c == 0x7f) {
			char esc[6] = {
			    '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
			r = buf_append(b, esc, 6);
		} else {
			r = buf_append(b, s, 1);
		}
	}
	return r | buf_append(b, "\"", 1);
}

static int
json_env(struct buf *b, const struct queue_env *env)
{
	int r = 0;
	size_t i;

	r |= buf_append_str(b, "{\"id\":");
	r |= json_str(b, env->id);
	r |= buf_printf(b,
	    ",\"created\":%lld,\"size\":%llu,\"held\":%s,\"next_try\":%lld,"
	    "\"sender\":",
	    (long long)env->created, (unsigned long long)env->size,
	    env->held ? "true" : "false", (long long)env->next_try);
	r |= json_str(b, env->sender);
	r |= buf_append_str(b, ",\"recipients\":[");
	for (i = 0; i < env->nrcpt; i++) {
		const struct queue_rcpt *rc = &env->rcpt[i];

		r |= buf_append_str(b, i ? ",{\"addr\":" : "{\"addr\":");
		r |= json_str(b, rc->addr);
		r |= buf_printf(b,
		    ",\"state\":\"%s\",\"attempts\":%u,\"next_try\":%lld,"
		    "\"code\":%d,\"enh\":",
		    queue_rcpt_state_name(rc->state), rc->attempts,
		    (long long)rc->next_try, rc->code);
		r |= json_str(b, rc->enh);
		r |= buf_append_str(b, ",\"text\":");
		r |= json_str(b, rc->text);
		r |= buf_append_str(b, "}");
	}
	return r | buf_append_str(b, "]}");
}

static void
ctl_run(struct job *j)
{
	struct ctl *c = (struct ctl *)j;
	struct spool *sp = c->q->srv->spool;
	char err[256];
	size_t i, shown = 0;
	bool list = strcmp(c->cmd, "LIST") == 0;

	c->rc = 0;
	if (strcmp(c->cmd, "DELETE") == 0 || strcmp(c->cmd, "HOLD") == 0 ||
	    strcmp(c->cmd, "RELEASE") == 0) {
		c->rc = c->cmd[0] == 'D'   ? spool_remove(sp, c->ids[0])
			: c->cmd[0] == 'H' ? spool_hold(sp, c->ids[0])
					   : spool_release(sp, c->ids[0]);
		(void)!buf_append_str(c->out,
		    c->rc == 0 ? "{\"ok\":true}\n"
			       : "{\"ok\":false,\"error\":\"the queue could "
				 "not be changed (see ternd's log)\"}\n");
		return;
	}
	(void)!buf_append_str(c->out,
	    list ? "{\"ok\":true,\"messages\":[" : "{\"ok\":true,\"message\":");
	for (i = 0; i < c->nids; i++) {
		struct queue_env env;

		queue_env_init(&env);
		if (spool_load(sp, c->ids[i], &env, err, sizeof(err)) == 0) {
			if (shown++ > 0)
				(void)!buf_append_str(c->out, ",");
			(void)!json_env(c->out, &env);
		}
		queue_env_free(&env);
	}
	if (!list && shown == 0) {
		buf_reset(c->out);
		(void)!buf_append_str(
		    c->out, "{\"ok\":false,\"error\":\"no such message\"}\n");
		return;
	}
	(void)!buf_append_str(c->out, list ? "]}\n" : "}\n");
}

static void
ctl_done(struct job *j)
{
	struct ctl *c = (struct ctl *)j;
	struct qent *e = c->nids == 1 ? qent_find(c->q, c->ids[0]) : NULL;
	size_t i;

	c->q->jobs--;
	if (e != NULL && c->rc == 0) {
		if (strcmp(c->cmd, "DELETE") == 0) {
			log_info("id=%s event=deleted by=admin", e->id);
			qent_del(c->q, e);
			e = NULL;
		} else if (strcmp(c->cmd, "HOLD") == 0) {
			e->held = true;
			heap_remove(c->q, e);
		} else if (strcmp(c->cmd, "RELEASE") == 0) {
			e->held = false;
			qent_reschedule(c->q, e, time(NULL));
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
	free(c);
}

static unsigned
qmgr_flush(struct qmgr *q)
{
	time_t now = time(NULL);
	unsigned n = 0;
	size_t i;

	for (i = 0; i < q->nheap; i++, n++)
		q->heap[i]->next_try = now; /* all equal: still a heap */
	qmgr_kick(q);
	return n;
}

static void
ctl_collect_all(struct qmgr *q, struct ctl *c)
{
	size_t i, n = 0;
	struct qent *e;

	c->ids = xcalloc(q->nentries ? q->nentries : 1, sizeof(*c->ids));
	for (i = 0; i < QMGR_BUCKETS; i++)
		for (e = q->buckets[i]; e != NULL; e = e->hnext)
			if (n < q->nentries)
				c->ids[n++] = xstrdup(e->id);
	c->nids = n;
}

void
qmgr_control(struct qmgr *q, const char *line, struct buf *out,
    void (*done)(void *arg), void *arg)
{
	struct ctl *c = xcalloc(1, sizeof(*c));
	char cmd[16] = "", id[64] = "";
	struct qent *e = NULL;

	if (sscanf(line, "%15s %63s", cmd, id) < 1)
		cmd[0] = '\0';
	(void)!str_copy(c->cmd, sizeof(c->cmd), cmd, strlen(cmd));
	c->q = q;
	c->out = out;
	c->done = done;
	c->arg = arg;
	if (strcmp(cmd, "FLUSH") == 0) {
		(void)!buf_printf(
		    out, "{\"ok\":true,\"flushed\":%u}\n", qmgr_flush(q));
		free(c);
		done(arg);
		return;
	}
	if (strcmp(cmd, "LIST") == 0) {
		ctl_collect_all(q, c);
	} else if (strcmp(cmd, "SHOW") == 0 || strcmp(cmd, "DELETE") == 0 ||
		   strcmp(cmd, "HOLD") == 0 || strcmp(cmd, "RELEASE") == 0) {
		if (!queue_id_valid(id) || (e = qent_find(q, id)) == NULL ||
		    e->busy) {
			(void)!buf_append_str(
			    out, e != NULL && e->busy
				     ? "{\"ok\":false,\"error\":\"the message "
				       "is being delivered; try again\"}\n"
				     : "{\"ok\":false,\"error\":\"no such "
				       "message\"}\n");
			free(c);
			done(arg);
			return;
		}
		if (strcmp(cmd, "SHOW") != 0) {
			e->busy =
			    true; /* no attempt starts while the job runs */
			heap_remove(q, e);
		}
		c->ids = xcalloc(1, sizeof(*c->ids));
		c->ids[0] = xstrdup(id);
		c->nids = 1;
	} else {
		(void)!buf_append_str(
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
