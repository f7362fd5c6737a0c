/*
 * workers: a fixed pool of threads for blocking work (disk, password
 * hashes, a remote table's queries) whose completions come back to one
 * libevent loop.
 *
 * Owns: its threads, the job lists and the eventfd that wakes the loop.
 * May call: util, libevent, pthreads.  Used by the store (store.h), the
 * queue manager, AUTH and the lookups of ternd (src/server/); it knows
 * none of them.
 *
 * A job's run() runs on one of the pool's threads, then its done() on the
 * loop thread that started the pool, so a completion never races with
 * the loop's state.  A job (and whatever it points at) belongs to the
 * pool from workers_submit until its done() has been called; done() may
 * free it.  Jobs start in the order they were submitted.  Every function
 * here is called on the loop thread only.
 */
#ifndef TERN_WORKERS_H
#define TERN_WORKERS_H

#include <event2/event.h>

struct job {
	void (*run)(struct job *);  /* on a worker thread */
	void (*done)(struct job *); /* then on the loop thread */
	struct job *next;	    /* private */
};

struct workers;
/* nthreads threads, their completions delivered on base; fatal if the
 * threads or the eventfd cannot be made (start-up only). */
struct workers *workers_start(struct event_base *base, unsigned nthreads);
void workers_submit(struct workers *w, struct job *j);
unsigned workers_busy(const struct workers *w); /* jobs not yet done */
/* fn(arg) after the loop has run a batch of done() calls */
void workers_on_drained(struct workers *w, void (*fn)(void *), void *arg);
/*
 * Lets the threads run every job already submitted, joins them and frees
 * w.  The done() of a job not yet delivered is never called: ternd stops
 * the pool after its loop has exited with workers_busy() at 0.
 * workers_stop(NULL) does nothing.
 */
void workers_stop(struct workers *w);

#endif
