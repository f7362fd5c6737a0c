/*
 * inject: make a message durable, the one path every message takes before
 * it is acknowledged: a copy in each local recipient's Maildir (with its
 * Return-Path) and, when there are remote recipients, one queue entry
 * (data + envelope).  Runs on a worker thread; the caller's done() runs on
 * the loop afterwards and may then answer 250, because both stores fsync
 * the file and the directory entry before returning.
 *
 * A failure after the Maildir copies and before the queue commit leaves
 * the local copies in place and reports failure: the client retries and
 * the local recipients may see the message twice.  That is the
 * at-least-once promise of DESIGN.md, never at-most-once.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
	ij->job.run = inject_run;
	ij->job.done = inject_done;
	ij->done = done;
	workers_submit(ij->srv->workers, &ij->job);
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
