/*
 * lookup: table questions, always answered by callback (lookup.h).  The
 * embedded SQLite table is asked inline with the loop's own handle and
 * answered at once.  A remote table is asked off the event loop: a
 * PostgreSQL lookup can wait on the network up to its timeouts, and on
 * the loop that wait would stall every session, the queue and the
 * Maildir commits with it.  There a small pool of threads asks instead,
 * each through its own table handle (a struct table is for one thread at
 * a time), opened on first use and reopened after a SIGHUP.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics.h"
#include "util/util.h"
#include "server/lookup.h"

/* Enough to keep the loop's sessions moving while a few lookups wait on
 * a slow database; each is one connection to it per ternd. */
#define LOOKUP_THREADS 4
/* A question that waited this long for a free thread is answered "try
 * later" without asking: the database is not keeping up (each query may
 * take up to its 5 s statement timeout), and a growing queue would only
 * hand it more work and keep clients waiting longer for the same 4xx. */
#define LOOKUP_WAIT_MAX_MS 8000

struct thread_table {
	struct table *t;
	unsigned gen;
};

static pthread_key_t table_key;
static pthread_once_t table_key_once = PTHREAD_ONCE_INIT;

static void
thread_table_free(void *p)
{
	struct thread_table *tt = p;

	table_close(tt->t);
	free(tt);
}

static void
table_key_create(void)
{
	if (pthread_key_create(&table_key, thread_table_free) != 0)
		fatalx("event=startup step=lookup_key");
}

int
lookups_init(struct lookups *ls, const struct conf *cf, struct event_base *base,
    char *err, size_t errlen)
{
	atomic_init(&ls->conf, cf);
	ls->base = base;
	ls->threads = NULL;
	atomic_init(&ls->table_gen, 0);
	ls->table = table_open(cf, err, errlen);
	return ls->table != NULL ? 0 : -1;
}

void
lookups_start_threads(
    struct lookups *ls, unsigned nthreads, void (*drained)(void *), void *arg)
{
	(void)pthread_once(&table_key_once, table_key_create);
	ls->drained = drained;
	ls->drained_arg = arg;
	ls->threads = workers_start(ls->base, nthreads);
	if (drained != NULL)
		workers_on_drained(ls->threads, drained, arg);
	log_info("event=lookup_threads threads=%u", nthreads);
}

void
lookups_start(struct lookups *ls, void (*drained)(void *), void *arg)
{
	ls->drained = drained;
	ls->drained_arg = arg;
	if (table_is_remote(ls->table))
		lookups_start_threads(ls, LOOKUP_THREADS, drained, arg);
}

void
lookups_stop(struct lookups *ls)
{
	workers_stop(ls->threads); /* the threads' handles close as they exit */
	ls->threads = NULL;
	table_close(ls->table);
	ls->table = NULL;
}

void
lookups_reload(struct lookups *ls, const struct conf *cf, struct table *t)
{
	if (cf != NULL)
		atomic_store_explicit(&ls->conf, cf, memory_order_release);
	if (t != NULL) {
		table_close(ls->table);
		ls->table = t;
	}
	atomic_fetch_add_explicit(&ls->table_gen, 1, memory_order_relaxed);
	if (ls->threads == NULL && table_is_remote(ls->table))
		lookups_start_threads(
		    ls, LOOKUP_THREADS, ls->drained, ls->drained_arg);
}

unsigned
lookups_busy(const struct lookups *ls)
{
	return ls->threads != NULL ? workers_busy(ls->threads) : 0;
}

/* This thread's handle, (re)opened when missing or older than a SIGHUP. */
static struct table *
thread_table(struct lookup *lk)
{
	struct thread_table *tt = pthread_getspecific(table_key);
	unsigned gen =
	    atomic_load_explicit(&lk->pool->table_gen, memory_order_relaxed);

	if (tt == NULL) {
		tt = xcalloc(1, sizeof(*tt));
		if (pthread_setspecific(table_key, tt) != 0) {
			free(tt);
			str_fmt_cut(lk->err, sizeof(lk->err), "out of memory");
			return NULL;
		}
	} else if (tt->t != NULL && tt->gen != gen) {
		table_close(tt->t);
		tt->t = NULL;
	}
	if (tt->t == NULL) {
		/* a reload's configuration is never changed nor freed */
		tt->t = table_open(
		    atomic_load_explicit(&lk->pool->conf, memory_order_acquire),
		    lk->err, sizeof(lk->err));
		tt->gen = gen;
	}
	return tt->t;
}

static void
copy_err(struct lookup *lk, const struct table *t)
{
	const char *e = t != NULL ? table_strerror(t) : NULL;

	if (e != NULL && str_copy(lk->err, sizeof(lk->err), e, strlen(e)) != 0)
		lk->err[0] = '\0';
}

/* One question, its time in the metrics (thread-safe). */
static void
lookup_timed_ask(struct lookup *lk, struct table *t)
{
	uint64_t t0 = time_now_us();

	lk->ask(lk, t);
	metrics_table_lookup_latency(time_now_us() - t0);
}

static void
lookup_run(struct job *j)
{
	struct lookup *lk = (struct lookup *)j;
	uint64_t waited = time_now_ms() - lk->submitted_ms;
	struct table *t;

	if (waited > LOOKUP_WAIT_MAX_MS) {
		if (str_fmt(lk->err, sizeof(lk->err),
			"not asked: waited %llu ms for a "
			"lookup thread (the database answers too slowly)",
			(unsigned long long)waited) != 0)
			lk->err[0] = '\0';
		lk->ask(lk, NULL);
		return;
	}
	t = thread_table(lk);
	lookup_timed_ask(lk, t);
	copy_err(lk, t);
}

static void
lookup_done(struct job *j)
{
	struct lookup *lk = (struct lookup *)j;

	lk->answer(lk);
}

void
resolve_ask(struct lookup *lk, struct table *t)
{
	struct resolve_lookup *rq = (struct resolve_lookup *)lk;

	rq->st =
	    t != NULL ? table_resolve(t, &rq->addr, &rq->tt) : TABLE_TEMPFAIL;
}

/*
 * Inline (no threads): ask with the loop's handle and answer at once,
 * inside the caller's frame (lookup.h: the re-entrancy rule).  No copy
 * and no allocation on this path: the caller's lk is asked as it is.
 */
void
lookup_ask(struct lookups *ls, struct lookup *lk)
{
	lk->pool = ls;
	lk->err[0] = '\0';
	if (ls->threads == NULL) {
		lookup_timed_ask(lk, ls->table);
		copy_err(lk, ls->table);
		lk->answer(lk); /* may free lk */
		return;
	}
	lk->submitted_ms = time_now_ms();
	lk->job.run = lookup_run;
	lk->job.done = lookup_done;
	workers_submit(ls->threads, &lk->job);
}
