/*
 * lookup: table questions asked off the event loop when the table is
 * remote.  A PostgreSQL lookup can wait on the network up to its
 * timeouts; on the loop that wait would stall every session, the queue
 * and the Maildir commits with it.  Here a small pool of threads asks
 * instead, each through its own table handle (a struct table is for one
 * thread at a time), opened on first use and reopened after a SIGHUP.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

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

void
lookups_start(struct server *s)
{
	if (!table_is_remote(s->table))
		return;
	(void)pthread_once(&table_key_once, table_key_create);
	s->lookups = workers_start(s->base, LOOKUP_THREADS);
	log_info("event=lookup_threads threads=%d", LOOKUP_THREADS);
}

void
lookups_stop(struct server *s)
{
	workers_stop(s->lookups); /* the threads' handles close as they exit */
	s->lookups = NULL;
}

void
lookups_reopen(struct server *s)
{
	atomic_fetch_add_explicit(&s->table_gen, 1, memory_order_relaxed);
}

bool
lookups_async(const struct server *s)
{
	return s->lookups != NULL;
}

unsigned
lookups_busy(const struct server *s)
{
	return s->lookups != NULL ? workers_busy(s->lookups) : 0;
}

/* This thread's handle, (re)opened when missing or older than a SIGHUP. */
static struct table *
thread_table(struct lookup *lk)
{
	struct thread_table *tt = pthread_getspecific(table_key);
	unsigned gen =
	    atomic_load_explicit(&lk->srv->table_gen, memory_order_relaxed);

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
		/* conf is never changed after startup: reading it here is safe
		 */
		tt->t = table_open(lk->srv->conf, lk->err, sizeof(lk->err));
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
	lk->ask(lk, t);
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

void
lookup_submit(struct server *s, struct lookup *lk)
{
	lk->srv = s;
	lk->err[0] = '\0';
	lk->submitted_ms = time_now_ms();
	lk->job.run = lookup_run;
	lk->job.done = lookup_done;
	workers_submit(s->lookups, &lk->job);
}

void
lookup_inline(struct server *s, struct lookup *lk)
{
	lk->srv = s;
	lk->err[0] = '\0';
	lk->ask(lk, s->table);
	copy_err(lk, s->table);
}
