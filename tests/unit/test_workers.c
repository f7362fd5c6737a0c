/*
 * Unit tests for src/workers/workers.c: a real pool on a real libevent
 * loop.  Jobs must run on the pool's threads (several at once, in the
 * order submitted) and their done() on the loop thread; the busy count
 * covers a job until its done(); the drained callback follows each batch
 * of done() calls; workers_stop runs what was submitted and joins.  Every
 * loop here has a deadline, so a lost completion fails instead of hanging.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include <event2/event.h>

#include "t.h"
#include "t_loop.h"
#include "util/util.h"
#include "workers/workers.h"

#define DEADLINE_S 10

static pthread_t loop_thread;

struct tjob {
	struct job job;
	unsigned i;
	pthread_t ran_on;
	bool done_on_loop;
	unsigned busy_at_done; /* workers_busy() inside done() */
};

struct run {
	struct event_base *base;
	struct workers *w;
	unsigned want, ndone, ndrained, done_at_drain;
	atomic_uint nrun;
	unsigned order[64], norder; /* job indices in the order done() saw */
};

static struct run R;

static void
t_run(struct job *j)
{
	struct tjob *t = (struct tjob *)j;

	t->ran_on = pthread_self();
	atomic_fetch_add(&R.nrun, 1);
}

static void
t_done(struct job *j)
{
	struct tjob *t = (struct tjob *)j;

	t->done_on_loop = pthread_equal(pthread_self(), loop_thread);
	t->busy_at_done = workers_busy(R.w);
	if (R.norder < 64)
		R.order[R.norder++] = t->i;
	if (++R.ndone == R.want)
		event_base_loopbreak(R.base);
}

static void
t_drained(void *arg)
{
	T_CHECK(arg == &R);
	R.ndrained++;
	R.done_at_drain = R.ndone;
}

/* Run the loop until R.want done() calls or the deadline. */
static void
loop_until_done(void)
{
	if (R.ndone < R.want)
		t_loop_dispatch(R.base, DEADLINE_S);
}

static void
begin(unsigned nthreads, unsigned want)
{
	memset(&R, 0, sizeof(R));
	if ((R.base = event_base_new()) == NULL)
		abort();
	R.w = workers_start(R.base, nthreads);
	R.want = want;
}

static void
end(void)
{
	workers_stop(R.w);
	event_base_free(R.base);
}

/* n jobs j[0..n-1] numbered in order, each run() then t_done(). */
static void
submit_n(struct tjob *j, unsigned n, void (*run)(struct job *))
{
	unsigned i;

	for (i = 0; i < n; i++) {
		memset(&j[i], 0, sizeof(j[i]));
		j[i].i = i;
		j[i].job.run = run;
		j[i].job.done = t_done;
		workers_submit(R.w, &j[i].job);
	}
}

/* Each job runs on a pool thread, never the loop; each done() on the loop;
 * the busy count drops by one just before each done(). */
static void
test_threads_and_done(void)
{
	struct tjob j[32];
	unsigned i;

	begin(4, 32);
	submit_n(j, 32, t_run);
	T_CHECK_INT(workers_busy(R.w), 32);
	loop_until_done();
	T_CHECK_INT(R.ndone, 32);
	T_CHECK_INT(atomic_load(&R.nrun), 32);
	T_CHECK_INT(workers_busy(R.w), 0);
	for (i = 0; i < 32; i++) {
		T_CHECK(!pthread_equal(j[i].ran_on, loop_thread));
		T_CHECK(j[i].done_on_loop);
		T_CHECK(j[i].busy_at_done < 32);
	}
	/* done() k (counting from 1) sees 32 - k jobs still busy */
	for (i = 0; i < R.norder; i++)
		T_CHECK_INT(j[R.order[i]].busy_at_done, 31 - i);
	end();
}

/* One thread: jobs run, and complete, in the order submitted. */
static void
test_fifo(void)
{
	struct tjob j[16];
	unsigned i;

	begin(1, 16);
	submit_n(j, 16, t_run);
	loop_until_done();
	T_CHECK_INT(R.norder, 16);
	for (i = 0; i < R.norder; i++)
		T_CHECK_INT(R.order[i], i);
	end();
}

/* The drained callback runs after done() calls, with its argument, and
 * the last one comes after the last done(). */
static void
test_drained(void)
{
	struct tjob j[8];

	begin(2, 8);
	workers_on_drained(R.w, t_drained, &R);
	submit_n(j, 8, t_run);
	loop_until_done();
	T_CHECK_INT(R.ndone, 8);
	/* loopbreak stops the loop after the current callback: the batch
	 * that held the last done() ends with its drained call */
	T_CHECK(R.ndrained >= 1);
	T_CHECK(R.ndrained <= 8);
	T_CHECK_INT(R.done_at_drain, 8);
	end();
}

/* nthreads jobs that each wait for all the others: only a pool that
 * really runs nthreads at once gets them all through before the timeout. */
static pthread_mutex_t meet_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t meet_cv = PTHREAD_COND_INITIALIZER;
static unsigned meet_n;
static atomic_uint meet_ok;

static void
meet_run(struct job *j)
{
	struct timespec until;

	(void)j;
	(void)clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 3;
	pthread_mutex_lock(&meet_mu);
	meet_n++;
	pthread_cond_broadcast(&meet_cv);
	while (meet_n < 4)
		if (pthread_cond_timedwait(&meet_cv, &meet_mu, &until) != 0)
			break;
	if (meet_n >= 4)
		atomic_fetch_add(&meet_ok, 1);
	pthread_mutex_unlock(&meet_mu);
}

static void
test_parallel(void)
{
	struct tjob j[4];

	begin(4, 4);
	meet_n = 0;
	atomic_store(&meet_ok, 0);
	submit_n(j, 4, meet_run);
	loop_until_done();
	T_CHECK_INT(R.ndone, 4);
	T_CHECK_INT(atomic_load(&meet_ok), 4);
	end();
}

/* workers_stop without the loop: every job submitted has run when it
 * returns (the threads were joined), and no done() was called. */
static void
slow_run(struct job *j)
{
	struct timespec ms20 = {0, 20 * 1000 * 1000};

	(void)nanosleep(&ms20, NULL);
	t_run(j);
}

static void
test_stop_joins(void)
{
	struct tjob j[6];

	begin(2, 6);
	submit_n(j, 6, slow_run);
	workers_stop(R.w);
	T_CHECK_INT(atomic_load(&R.nrun), 6);
	T_CHECK_INT(R.ndone, 0);
	workers_stop(NULL); /* does nothing */
	event_base_free(R.base);
}

int
main(void)
{
	loop_thread = pthread_self();
	T_RUN(test_threads_and_done);
	T_RUN(test_fifo);
	T_RUN(test_drained);
	T_RUN(test_parallel);
	T_RUN(test_stop_joins);
	return t_summary();
}
