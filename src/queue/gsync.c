/*
 * gsync: the group commit of one sync call (gsync.h has the scheme).
 * Invariants: done <= started; running is true exactly while a leader is
 * between its started++ and its done = gen, with the lock dropped.
 */
#include <errno.h>
#include <pthread.h>

#include "queue/gsync.h"
#include "util/util.h"

void
gsync_lock(pthread_mutex_t *mu)
{
	int r = pthread_mutex_lock(mu);

	if (r != 0)
		panic("event=queue_lock error=%d", r);
}

void
gsync_unlock(pthread_mutex_t *mu)
{
	int r = pthread_mutex_unlock(mu);

	if (r != 0)
		panic("event=queue_unlock error=%d", r);
}

void
gsync_init(struct gsync *g)
{
	g->started = g->done = g->failed = 0;
	g->failed_errno = 0;
	g->running = false;
	if (pthread_mutex_init(&g->mu, NULL) != 0 ||
	    pthread_cond_init(&g->cv, NULL) != 0)
		panic("event=queue_gsync_init");
}

void
gsync_destroy(struct gsync *g)
{
	(void)pthread_mutex_destroy(&g->mu);
	(void)pthread_cond_destroy(&g->cv);
}

/* Run one sync as the leader; called and returning with g->mu held. */
static void
gsync_lead(struct gsync *g, int (*sync)(void *ctx), void *ctx)
{
	uint64_t gen = ++g->started;
	int e, r;

	g->running = true;
	gsync_unlock(&g->mu);
	e = sync(ctx);
	gsync_lock(&g->mu);
	g->running = false;
	g->done = gen;
	if (e != 0) {
		g->failed = gen;
		g->failed_errno = e;
	}
	if ((r = pthread_cond_broadcast(&g->cv)) != 0)
		panic("event=queue_cond error=%d", r);
}

int
gsync_wait(struct gsync *g, int (*sync)(void *ctx), void *ctx)
{
	uint64_t need;
	int e = 0, r;

	gsync_lock(&g->mu);
	need = g->started + 1;
	while (g->done < need) {
		if (!g->running)
			gsync_lead(g, sync, ctx);
		else if ((r = pthread_cond_wait(&g->cv, &g->mu)) != 0)
			panic("event=queue_cond error=%d", r);
	}
	/* conservative: a failure in any generation since ours counts */
	if (g->failed >= need)
		e = g->failed_errno;
	gsync_unlock(&g->mu);
	if (e == 0)
		return 0;
	errno = e;
	return -1;
}
