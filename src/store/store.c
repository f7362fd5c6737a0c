/*
 * store: make a message durable, the one path every message takes before
 * it is acknowledged: a copy in each local recipient's Maildir (with its
 * Return-Path) and, when there are remote recipients, one queue entry
 * (data + envelope).  Runs on a worker thread; the caller's done() runs on
 * the loop afterwards and may then answer 250, because both stores fsync
 * the file and the directory entry before returning.  A committed
 * envelope goes to the store's on_queued callback before the request's
 * done(): ternd wires it to the scheduler, which this file does not know.
 *
 * Group commit: a message that goes only to mailboxes beneath the mail
 * root, while others are being stored, has its tmp/ file written at once
 * by any worker (maildir_stage, no fsync), then joins the batch that waits
 * while the current commit cycle runs.  One commit job per cycle links
 * into new/ (maildir_publish) the files of the previous batch, whose
 * content the previous cycle's syncfs made durable, then calls syncfs()
 * once: that makes those links durable (their 250s go out) and the
 * content of the batch staged meanwhile, which the next cycle links.  So
 * every message has a syncfs between its last write and its link, and
 * another between its link and its 250: the durability promise of one
 * fsync'ed delivery, at one syncfs per batch under load (two for a batch
 * that finds no other batch to share them with).  A message with nothing
 * else in flight keeps the plain fdatasync + fsync path (on the loop
 * itself when the caller says nothing else waits there: ij->on_loop).
 * Only one commit job runs at a time: that is what makes the batches
 * form.  The batches and the counts live in struct store and are touched
 * on the loop only (the done() callbacks); a commit job owns its two
 * lists until its done().
 *
 * A failure after the Maildir copies and before the queue commit leaves
 * the local copies in place and reports failure: the client retries and
 * the local recipients may see the message twice.  That is the
 * at-least-once promise of docs/design.md (principle 1), never at-most-once.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "deliver/deliver.h"
#include "fs/file.h"
#include "queue/queue.h"
#include "store/store.h"

struct store {
	int mail_root_fd; /* STATE/mail, O_DIRECTORY; borrowed */
	struct spool *spool;
	struct workers *workers;
	store_queued_fn on_queued;
	void *on_queued_arg;
	/* group commit of Maildir deliveries (on the loop only) */
	struct inject *commit_head, *commit_tail; /* staged, not yet synced */
	size_t commit_n;
	struct inject *synced; /* content durable, waiting for its links */
	size_t synced_n;
	bool commit_running;
	unsigned staging; /* tmp/ files being written */
	unsigned solo;	  /* lone messages on the fsync path */
	struct store_stats stats;
	struct event *loop_ev;	/* runs loop_ij on the loop */
	struct inject *loop_ij; /* the lone message stored there */
};

static void on_loop_store(evutil_socket_t fd, short what, void *arg);

struct store *
store_new(struct event_base *base, int mail_root_fd, struct spool *sp,
    struct workers *w, store_queued_fn on_queued, void *arg)
{
	struct store *st = xcalloc(1, sizeof(*st));

	st->loop_ev = event_new(base, -1, 0, on_loop_store, st);
	if (st->loop_ev == NULL)
		panic("event=store error=event_new");

	st->mail_root_fd = mail_root_fd;
	st->spool = sp;
	st->workers = w;
	st->on_queued = on_queued;
	st->on_queued_arg = arg;
	return st;
}

void
store_free(struct store *st)
{
	if (st == NULL)
		return;
	assert(st->commit_head == NULL && st->synced == NULL &&
	       !st->commit_running);
	assert(st->staging == 0 && st->solo == 0);
	event_free(st->loop_ev);
	free(st);
}

void
store_stats(const struct store *st, struct store_stats *out)
{
	*out = st->stats;
}

/*
 * The content as iovecs: [Return-Path,] head, then the body whole or in
 * its pieces.  Returns the count.
 */
static int
inject_iov(const struct inject *ij, bool return_path,
    struct iovec iov[2 + INJECT_BODY_IOV])
{
	int n = 0;

	if (return_path)
		iov[n++] = (struct iovec){
		    ij->return_path.data ? ij->return_path.data : (char *)"",
		    ij->return_path.len};
	iov[n++] = (struct iovec){
	    ij->head.data ? ij->head.data : (char *)"", ij->head.len};
	if (ij->body_iovcnt <= 0) {
		iov[n++] =
		    (struct iovec){(void *)(uintptr_t)ij->body, ij->body_len};
		return n;
	}
	for (int i = 0; i < ij->body_iovcnt && i < INJECT_BODY_IOV; i++)
		iov[n++] = ij->body_iov[i];
	return n;
}

/* The caller's last step before the content is written (store.h). */
static void
inject_prepare(struct inject *ij)
{
	void (*fn)(struct inject *, void *) = ij->prepare;

	ij->prepare = NULL;
	if (fn != NULL)
		fn(ij, ij->prepare_arg);
}

void
inject_store(struct inject *ij)
{
	struct iovec iov[2 + INJECT_BODY_IOV];
	int n;

	inject_prepare(ij);
	ij->rc = 0;
	if (ij->nboxes > 0) {
		n = inject_iov(ij, true, iov);
		ij->rc = maildir_deliver(ij->store->mail_root_fd, ij->boxes,
		    ij->nboxes, iov, n, ij->name, sizeof(ij->name), ij->err,
		    sizeof(ij->err));
		ij->err_no = errno;
		if (ij->rc != 0)
			return;
	}
	if (ij->env != NULL && ij->env->nrcpt > 0) {
		n = inject_iov(ij, false, iov);
		ij->rc = spool_commit(ij->store->spool, ij->env, iov, n,
		    ij->err, sizeof(ij->err));
		ij->err_no = errno;
		ij->queued = ij->rc == 0;
	}
}

static void
inject_run(struct job *j)
{
	inject_store((struct inject *)j);
}

static void
inject_done(struct job *j)
{
	struct inject *ij = (struct inject *)j;

	if (ij->queued) {
		struct store *st = ij->store;

		st->on_queued(st->on_queued_arg, ij->env); /* takes it */
		ij->env = NULL;
	}
	ij->done(ij);
}

/* ---- group commit of Maildir-only messages --------------------------- */

struct commit_job {
	struct job job;
	struct store *st;
	struct inject *link; /* content durable: link into new/ now */
	size_t nlink;
	struct inject
	    *batch; /* staged: this cycle's syncfs makes them durable */
	size_t n;
};

static void commit_start(struct store *st);

/* syncfs of the mail files (the fault build's step "maildir:syncfs") */
static int
commit_syncfs(int fd)
{
	return file_syncfs("maildir", fd);
}

static void
inject_fail(struct inject *ij, int err, const char *what)
{
	ij->rc = -1;
	ij->err_no = err;
	str_fmt_cut(ij->err, sizeof(ij->err), "%s: %s", what, strerror(err));
}

/* Phase 1, on any worker, as soon as the content is in: the tmp/ file. */
static void
stage_run(struct job *j)
{
	struct inject *ij = (struct inject *)j;
	struct iovec iov[2 + INJECT_BODY_IOV];
	int n;

	inject_prepare(ij); /* it may change head: iov after it */
	n = inject_iov(ij, true, iov);
	ij->staged =
	    maildir_stage(ij->store->mail_root_fd, ij->boxes, ij->nboxes, iov,
		n, ij->name, sizeof(ij->name), ij->err, sizeof(ij->err));
	ij->rc = ij->staged == NULL ? -1 : 0;
	ij->err_no = errno;
}

static void
stage_done(struct job *j)
{
	struct inject *ij = (struct inject *)j;
	struct store *st = ij->store;

	st->staging--;
	if (ij->staged == NULL) {
		ij->done(ij);
		return;
	}
	ij->next = NULL;
	if (st->commit_tail != NULL)
		st->commit_tail->next = ij;
	else
		st->commit_head = ij;
	st->commit_tail = ij;
	st->commit_n++;
	commit_start(st);
}

/*
 * Phase 2, one cycle at a time: link the files whose content an earlier
 * cycle's syncfs made durable, then one syncfs.  That syncfs makes those
 * links durable (their 250s may go) and, in the same flush, the content
 * of the files staged meanwhile, which the next cycle links.  Each
 * message still sees a syncfs after its content is written and before
 * its name exists, and another after its name exists and before its
 * 250; under load each syncfs serves two batches at once.
 */
static void
commit_run(struct job *j)
{
	struct commit_job *cj = (struct commit_job *)j;
	struct inject *ij;
	int root = cj->st->mail_root_fd;
	bool synced;
	int e;

	for (ij = cj->link; ij != NULL; ij = ij->next) {
		if (maildir_publish(ij->staged, ij->err, sizeof(ij->err)) !=
		    0) {
			ij->rc = -1;
			ij->err_no = errno;
		}
		ij->staged = NULL; /* publish frees it */
	}
	synced = commit_syncfs(root) == 0;
	e = errno;
	if (synced)
		return;
	for (ij = cj->link; ij != NULL; ij = ij->next)
		if (ij->rc == 0)
			inject_fail(ij, e, "syncfs of new/");
	for (ij = cj->batch; ij != NULL; ij = ij->next) {
		maildir_abort(ij->staged);
		ij->staged = NULL;
		inject_fail(ij, e, "syncfs of the mail files");
	}
}

static void
commit_done(struct job *j)
{
	struct commit_job *cj = (struct commit_job *)j;
	struct store *st = cj->st;
	struct inject *ij, *next, **tail = &st->synced;

	st->commit_running = false;
	st->stats.commit_syncs++;
	if (cj->nlink > 0) {
		st->stats.commit_batches++;
		st->stats.commit_messages += cj->nlink;
	}
	for (ij = cj->link; ij != NULL; ij = next) {
		next = ij->next;
		ij->done(ij);
	}
	/* the synced ones wait for the next cycle; a failed one is done */
	assert(st->synced == NULL);
	st->synced_n = 0;
	for (ij = cj->batch; ij != NULL; ij = next) {
		next = ij->next;
		ij->next = NULL;
		if (ij->staged == NULL) {
			ij->done(ij);
			continue;
		}
		*tail = ij;
		tail = &ij->next;
		st->synced_n++;
	}
	free(cj);
	commit_start(st);
}

static void
commit_start(struct store *st)
{
	struct commit_job *cj;

	if (st->commit_running ||
	    (st->commit_head == NULL && st->synced == NULL))
		return;
	cj = xcalloc(1, sizeof(*cj));
	cj->job.run = commit_run;
	cj->job.done = commit_done;
	cj->st = st;
	cj->link = st->synced;
	cj->nlink = st->synced_n;
	cj->batch = st->commit_head;
	cj->n = st->commit_n;
	st->synced = NULL;
	st->synced_n = 0;
	st->commit_head = st->commit_tail = NULL;
	st->commit_n = 0;
	st->commit_running = true;
	workers_submit(st->workers, &cj->job);
}

/* Only mailboxes beneath the mail root share its syncfs. */
static bool
inject_batchable(const struct inject *ij)
{
	size_t i;

	if (ij->env != NULL || ij->nboxes == 0)
		return false;
	for (i = 0; i < ij->nboxes; i++)
		if (ij->boxes[i].path[0] == '/')
			return false;
	return true;
}

/*
 * A message with nothing else in flight takes the plain fsync path: two
 * fsyncs of its own cost less than two syncfs of the whole file system.
 * As soon as others are being stored, it joins the group commit.  (The
 * fault build always joins, so its tests reach the syncfs steps.)
 */
static bool
inject_alone(const struct store *st)
{
#ifdef TERN_FAULT_INJECTION
	(void)st;
	return false;
#else
	return !st->commit_running && st->commit_head == NULL &&
	       st->synced == NULL && st->staging == 0 && st->solo == 0;
#endif
}

static void
solo_done(struct job *j)
{
	struct inject *ij = (struct inject *)j;

	ij->store->solo--;
	ij->done(ij);
}

/*
 * The lone message of a lone session, on the loop itself: the same
 * fdatasync of the file and fsync of new/ as on a worker, without the
 * hop to a thread and back (a futex wake, a context switch, an eventfd
 * write and read), which costs more CPU than it saves when nothing else
 * could run meanwhile.  From the active queue, so done() still comes
 * after inject_submit has returned.
 */
static void
on_loop_store(evutil_socket_t fd, short what, void *arg)
{
	struct store *st = arg;
	struct inject *ij = st->loop_ij;

	(void)fd;
	(void)what;
	st->loop_ij = NULL;
	inject_store(ij);
	st->solo--;
	ij->done(ij);
}

void
inject_init(struct inject *ij, struct store *st)
{
	memset(ij, 0, sizeof(*ij));
	ij->store = st;
	buf_init(&ij->return_path, 1024);
	buf_init(&ij->head, 64 * 1024);
}

void
inject_submit(struct inject *ij, void (*done)(struct inject *))
{
	struct store *st = ij->store;

	ij->done = done;
	if (ij->on_loop && ij->prepare == NULL && inject_batchable(ij) &&
	    inject_alone(st)) {
		st->solo++;
		st->loop_ij = ij;
		event_active(st->loop_ev, EV_TIMEOUT, 1);
		return;
	}
	if (inject_batchable(ij) && inject_alone(st)) {
		st->solo++;
		ij->job.run = inject_run;
		ij->job.done = solo_done;
		workers_submit(st->workers, &ij->job);
		return;
	}
	if (inject_batchable(ij)) {
		st->staging++;
		ij->job.run = stage_run;
		ij->job.done = stage_done;
		workers_submit(st->workers, &ij->job);
		return;
	}
	ij->job.run = inject_run;
	ij->job.done = inject_done;
	workers_submit(st->workers, &ij->job);
}

void
inject_clear(struct inject *ij)
{
	if (ij->prepare_free != NULL)
		ij->prepare_free(ij->prepare_arg);
	ij->prepare = NULL;
	ij->prepare_free = NULL;
	ij->prepare_arg = NULL;
	buf_free(&ij->return_path);
	buf_free(&ij->head);
	free(ij->boxes);
	ij->boxes = NULL;
	if (ij->env != NULL) {
		queue_env_free(ij->env);
		free(ij->env);
		ij->env = NULL;
	}
}
