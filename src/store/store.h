/*
 * store: the durable store of an accepted message, the one path every
 * message takes before it is acknowledged (docs/design.md, principle 1):
 * a copy in each local recipient's Maildir and, when there are remote
 * recipients, one queue entry.  Received mail (conn.c), local deliveries
 * from the queue and DSNs (qmgr.c) all go through it.
 *
 * Owns: struct store (the group commit of Maildir-only messages: the
 * batch waiting for the next commit, the staging and lone counts, the
 * commit counters) and struct inject, one message's request.  Borrows,
 * never closes: the mail root, the spool and the worker pool.  May call:
 * deliver (Maildir writes), queue (spool_commit), fs/file.h, workers,
 * util.  It never calls the scheduler: a committed queue entry is handed
 * to the on_queued callback given to store_new (ternd routes it to
 * qmgr_add).  No module but server calls it.
 *
 * Threads: store_new, store_free, inject_init, inject_submit and
 * inject_clear run on the loop thread; the writes run on the worker pool
 * and each request's done() comes back on the loop.  inject_store is the
 * store itself for a caller already on a worker thread.
 */
#ifndef TERN_STORE_STORE_H
#define TERN_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"
#include "workers/workers.h"

#define INJECT_BODY_IOV 9 /* pieces of a body in pieces */

struct iovec;
struct maildir_box;
struct maildir_staged;
struct queue_env;
struct spool;
struct store;

/* A committed queue entry: ownership of env moves to the callee. */
typedef void (*store_queued_fn)(void *arg, struct queue_env *env);

/*
 * mail_root_fd (STATE/mail, O_DIRECTORY), sp and w stay the caller's and
 * must outlive the store.  on_queued(arg, env) runs on the loop for each
 * envelope inject_submit committed, before that request's done().
 */
struct store *store_new(struct event_base *base, int mail_root_fd,
    struct spool *sp, struct workers *w, store_queued_fn on_queued, void *arg);
/* After the worker pool has stopped: no request may be in flight. */
void store_free(struct store *st);

struct store_stats {
	uint64_t commit_batches;  /* group commits run */
	uint64_t commit_messages; /* messages stored by them */
	uint64_t commit_syncs;	  /* syncfs calls they made */
};
void store_stats(const struct store *st, struct store_stats *out);

/* ---- one message's request ------------------------------------------- */

struct inject {
	struct job job;	     /* private */
	struct store *store; /* private */
	/* in: content = return_path (Maildir copies only) + head + body */
	struct buf return_path;
	struct buf head;
	const char *body; /* not owned */
	size_t body_len;
	/* or, when body_iovcnt > 0, the body in pieces (not owned, at most
	 * INJECT_BODY_IOV; body_len their total): a message written without
	 * some of its fields, not copied (conn.c: our own A-R removed) */
	const struct iovec *body_iov;
	int body_iovcnt;
	struct maildir_box *boxes; /* local copies; owned (free) */
	size_t nboxes;
	struct queue_env *env; /* remote recipients or NULL; owned */
	/*
	 * Optional: prepare(ij, prepare_arg) runs once on the worker before
	 * the first write, and may change head (ternd's DKIM signature goes
	 * on top of it: the signature covers what is stored).  inject_clear
	 * calls prepare_free(prepare_arg) on the loop, run or not.
	 */
	void (*prepare)(struct inject *ij, void *arg);
	void (*prepare_free)(void *arg);
	void *prepare_arg;
	/*
	 * The caller's word that nothing else waits on the loop (ternd: one
	 * session open): a lone Maildir-only message without prepare() is
	 * then stored on the loop thread, blocking it for its two syncs,
	 * instead of on a worker.
	 */
	bool on_loop;
	/* out */
	int rc, err_no;
	bool queued; /* env went to the queue (on_queued has it) */
	char err[256];
	char name[160]; /* Maildir file name */
	void (*done)(struct inject *);
	void *arg;
	struct inject *next;	       /* private: in a group-commit batch */
	struct maildir_staged *staged; /* private: in tmp/, not yet linked */
};

void inject_init(struct inject *ij, struct store *st);
/* Store ij on the pool, then done(ij) on the loop; a committed env has
 * gone to on_queued by then (ij->env NULL, ij->queued true). */
void inject_submit(struct inject *ij, void (*done)(struct inject *));
/* The store itself, on a worker thread that is already running a job; a
 * committed env stays in ij (ij->queued true) for the caller to route. */
void inject_store(struct inject *ij);
void inject_clear(struct inject *ij);

#endif
