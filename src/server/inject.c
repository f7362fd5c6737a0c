/*
 * inject: make a message durable, the one path every message takes before
 * it is acknowledged: a copy in each local recipient's Maildir (with its
 * Return-Path) and, when there are remote recipients, one queue entry
 * (data + envelope).  Runs on a worker thread; the caller's done() runs on
 * the loop afterwards and may then answer 250, because both stores fsync
 * the file and the directory entry before returning.
 *
 * Group commit: a message that goes only to mailboxes beneath the mail
 * root is not stored alone.  It joins the batch that waits while the
 * current commit runs; one worker job then writes every tmp/ file of the
 * batch, calls syncfs() once, links them all into new/, and calls syncfs()
 * once more (maildir_stage/maildir_publish).  Each message's 250 is sent
 * only after the second syncfs, so the durability promise is the same as
 * one fsync'ed delivery; the cost is two syncfs per batch instead of two
 * fsyncs per message.  A batch of one takes the fsync path instead.  Only one commit job runs at a time: that is what
 * makes the batches form.
 *
 * A failure after the Maildir copies and before the queue commit leaves
 * the local copies in place and reports failure: the client retries and
 * the local recipients may see the message twice.  That is the
 * at-least-once promise of DESIGN.md, never at-most-once.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../deliver/deliver.h"
#include "server.h"

void
inject_store(struct inject *ij)
{
	struct iovec iov[3];

	ij->rc = 0;
	if (ij->nboxes > 0) {
		iov[0].iov_base = ij->return_path.data ? ij->return_path.data : (char *)"";
		iov[0].iov_len = ij->return_path.len;
		iov[1].iov_base = ij->head.data ? ij->head.data : (char *)"";
		iov[1].iov_len = ij->head.len;
		iov[2].iov_base = (void *)(uintptr_t)ij->body;
		iov[2].iov_len = ij->body_len;
		ij->rc = maildir_deliver(ij->srv->mail_root_fd, ij->boxes, ij->nboxes,
		    iov, 3, ij->name, sizeof(ij->name), ij->err, sizeof(ij->err));
		ij->err_no = errno;
		if (ij->rc != 0)
			return;
	}
	if (ij->env != NULL && ij->env->nrcpt > 0) {
		iov[0].iov_base = ij->head.data ? ij->head.data : (char *)"";
		iov[0].iov_len = ij->head.len;
		iov[1].iov_base = (void *)(uintptr_t)ij->body;
		iov[1].iov_len = ij->body_len;
		ij->rc = spool_commit(ij->srv->spool, ij->env, iov, 2, ij->err,
		    sizeof(ij->err));
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
		qmgr_add(ij->srv->qmgr, ij->env);   /* takes the envelope */
		ij->env = NULL;
	}
	ij->done(ij);
}

/* ---- group commit of Maildir-only messages --------------------------- */

struct commit_job {
	struct job job;
	struct server *srv;
	struct inject *batch;          /* linked through ->next */
	size_t n;
};

static void commit_start(struct server *s);

/* syncfs, or the test build's injected failure of it */
static int
commit_syncfs(int fd)
{
#ifdef TERN_FAULT_INJECTION
	int e;

	if (maildir_fault_hook != NULL && (e = maildir_fault_hook("syncfs")) != 0) {
		errno = e;
		return -1;
	}
#endif
	return syncfs(fd);
}

static void
commit_fail_all(struct inject *ij, struct maildir_staged **st, size_t n,
    int err, const char *what)
{
	size_t i;

	for (i = 0; i < n; i++, ij = ij->next) {
		if (st[i] == NULL)
			continue;
		maildir_abort(st[i]);
		st[i] = NULL;
		ij->rc = -1;
		ij->err_no = err;
		(void)!str_fmt(ij->err, sizeof(ij->err), "%s: %s", what, strerror(err));
	}
}

static void
commit_run(struct job *j)
{
	struct commit_job *cj = (struct commit_job *)j;
	struct maildir_staged **st;
	struct inject *ij;
	size_t i;
	int root = cj->srv->mail_root_fd;

	/* alone, two fsyncs of its own cost less than two syncfs of the file
	 * system (which also flush everyone else's dirty pages).  The fault
	 * build always batches, so its tests reach the syncfs steps; the
	 * fsync path's failures are unit-tested in tests/unit/test_maildir.c */
#ifndef TERN_FAULT_INJECTION
	if (cj->n == 1) {
		inject_store(cj->batch);
		return;
	}
#endif
	st = xcalloc(cj->n, sizeof(*st));
	for (i = 0, ij = cj->batch; ij != NULL; i++, ij = ij->next) {
		struct iovec iov[3] = {
			{ ij->return_path.data, ij->return_path.len },
			{ ij->head.data, ij->head.len },
			{ (void *)(uintptr_t)ij->body, ij->body_len },
		};

		st[i] = maildir_stage(root, ij->boxes, ij->nboxes, iov, 3, ij->name,
		    sizeof(ij->name), ij->err, sizeof(ij->err));
		ij->rc = st[i] == NULL ? -1 : 0;
		ij->err_no = errno;
	}
	if (commit_syncfs(root) != 0)
		commit_fail_all(cj->batch, st, cj->n, errno, "syncfs of the mail files");
	for (i = 0, ij = cj->batch; ij != NULL; i++, ij = ij->next) {
		if (st[i] == NULL)
			continue;
		if (maildir_publish(st[i], ij->err, sizeof(ij->err)) != 0) {
			ij->rc = -1;
			ij->err_no = errno;
		}
	}
	if (commit_syncfs(root) != 0) {
		int e = errno;

		for (ij = cj->batch; ij != NULL; ij = ij->next)
			if (ij->rc == 0) {
				ij->rc = -1;
				ij->err_no = e;
				(void)!str_fmt(ij->err, sizeof(ij->err),
				    "syncfs of new/: %s", strerror(e));
			}
	}
	free(st);
}

static void
commit_done(struct job *j)
{
	struct commit_job *cj = (struct commit_job *)j;
	struct server *s = cj->srv;
	struct inject *ij, *next;

	s->commit_running = false;
	s->commit_batches++;
	s->commit_messages += cj->n;
	for (ij = cj->batch; ij != NULL; ij = next) {
		next = ij->next;
		ij->done(ij);
	}
	free(cj);
	commit_start(s);
}

static void
commit_start(struct server *s)
{
	struct commit_job *cj;

	if (s->commit_running || s->commit_head == NULL)
		return;
	cj = xcalloc(1, sizeof(*cj));
	cj->job.run = commit_run;
	cj->job.done = commit_done;
	cj->srv = s;
	cj->batch = s->commit_head;
	cj->n = s->commit_n;
	s->commit_head = s->commit_tail = NULL;
	s->commit_n = 0;
	s->commit_running = true;
	workers_submit(s->workers, &cj->job);
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

void
inject_init(struct inject *ij, struct server *s)
{
	memset(ij, 0, sizeof(*ij));
	ij->srv = s;
	buf_init(&ij->return_path, 1024);
	buf_init(&ij->head, 64 * 1024);
}

void
inject_submit(struct inject *ij, void (*done)(struct inject *))
{
	struct server *s = ij->srv;

	ij->done = done;
	if (inject_batchable(ij)) {
		ij->next = NULL;
		if (s->commit_tail != NULL)
			s->commit_tail->next = ij;
		else
			s->commit_head = ij;
		s->commit_tail = ij;
		s->commit_n++;
		commit_start(s);
		return;
	}
	ij->job.run = inject_run;
	ij->job.done = inject_done;
	workers_submit(s->workers, &ij->job);
}

void
inject_clear(struct inject *ij)
{
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
