/*
 * gsync: the group commit of one sync call shared by threads (a
 * directory's fsync in the file spool, the active segment's fdatasync in
 * the log).  Private to the queue module (spool.c, logspool.c).
 *
 * A thread that has made its change needs a sync that *started* after
 * that: it notes the last generation started and waits until a later one
 * has completed.  Whoever finds no sync running leads: it runs the next
 * one with the lock dropped, and the threads that come meanwhile wait on
 * the condition variable and all ride on the one after.  A failed sync
 * fails every waiter whose generation it was or was after.
 *
 * Thread-safe; gsync_wait blocks.  A broken mutex or condition variable
 * panics (a bug, not a disk error).
 */
#ifndef TERN_QUEUE_GSYNC_H
#define TERN_QUEUE_GSYNC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct gsync {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t started; /* generation of the last sync started */
	uint64_t done;	  /* generation of the last sync completed */
	uint64_t failed;  /* generation of the last failed one, 0: none */
	int failed_errno;
	bool running;
};

void gsync_init(struct gsync *g);
void gsync_destroy(struct gsync *g);

/*
 * Return once a run of sync(ctx) that started after this call began has
 * completed: 0, or -1 with the errno of a failed run since.  sync runs
 * without g's lock, one at a time, and returns 0 or an errno value.
 */
int gsync_wait(struct gsync *g, int (*sync)(void *ctx), void *ctx);

/* pthread_mutex_lock / unlock that panic on failure (a bug). */
void gsync_lock(pthread_mutex_t *mu);
void gsync_unlock(pthread_mutex_t *mu);

#endif
