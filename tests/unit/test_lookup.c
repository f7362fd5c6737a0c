/*
 * test_lookup: the one lookup API of ternd (src/server/lookup.h) on a
 * SQLite table in a temporary directory.  Inline (no threads, as ternd
 * runs SQLite): ask() then answer() exactly once, before lookup_ask()
 * returns, on the caller's thread, and an answer() that frees its lookup
 * is safe (ASan build).  Threaded (as ternd runs PostgreSQL; here forced
 * with lookups_start_threads on SQLite): ask() on another thread, answer()
 * exactly once, after lookup_ask() returned, on the loop's thread, and the
 * pool's busy count follows.  A reload keeps the pool answering, and one
 * that names another table (tables.users) switches every question to it,
 * on the loop and on the threads alike.
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <event2/event.h>

#include "conf/conf.h"
#include "server/lookup.h"
#include "table/table.h"
#include "t.h"

static struct conf *conf;
static struct conf *conf2; /* tables.users: another SQLite file */
static struct event_base *base;
static struct lookups pool;

/* What one question saw. */
struct probe {
	struct resolve_lookup q;
	int asks, answers;
	int asks_at_answer;   /* 1: ask() had run when answer() came */
	bool answered_inside; /* answer() ran while lookup_ask() had not
				 returned */
	pthread_t ask_thread, answer_thread;
};

static bool in_lookup_ask; /* set around each lookup_ask() call */
static pthread_t main_thread;

static void
probe_ask(struct lookup *lk, struct table *t)
{
	struct probe *p = (struct probe *)lk;

	p->asks++;
	p->ask_thread = pthread_self();
	resolve_ask(lk, t);
}

static void
probe_answer(struct lookup *lk)
{
	struct probe *p = (struct probe *)lk;

	p->answers++;
	p->asks_at_answer = p->asks;
	p->answered_inside = in_lookup_ask;
	p->answer_thread = pthread_self();
	if (p->answers == 1)
		event_base_loopbreak(base); /* the threaded test waits for it */
}

static void
probe_init(struct probe *p, const char *local, const char *domain)
{
	memset(p, 0, sizeof(*p));
	p->q.lk.ask = probe_ask;
	p->q.lk.answer = probe_answer;
	p->q.addr.kind = ADDR_DOMAIN_NAME;
	snprintf(p->q.addr.local, sizeof(p->q.addr.local), "%s", local);
	snprintf(p->q.addr.domain, sizeof(p->q.addr.domain), "%s", domain);
}

static void
ask(struct probe *p)
{
	in_lookup_ask = true;
	lookup_ask(&pool, &p->q.lk);
	in_lookup_ask = false;
}

static void
test_inline_answers_once_before_return(void)
{
	struct probe p;

	probe_init(&p, "ann", "example.org");
	ask(&p);
	T_CHECK_INT(p.asks, 1);
	T_CHECK_INT(p.answers, 1);
	T_CHECK_INT(p.asks_at_answer, 1);
	T_CHECK(p.answered_inside);
	T_CHECK(pthread_equal(p.ask_thread, main_thread));
	T_CHECK(pthread_equal(p.answer_thread, main_thread));
	T_CHECK_INT(p.q.st, TABLE_OK);
	T_CHECK_INT(p.q.tt.n, 1);
	if (p.q.tt.n == 1)
		T_CHECK_STR(p.q.tt.v[0].address, "ann@example.org");
	T_CHECK_INT(lookups_busy(&pool), 0);
	table_targets_free(&p.q.tt);

	probe_init(&p, "nobody", "example.org");
	ask(&p);
	T_CHECK_INT(p.answers, 1);
	T_CHECK_INT(p.q.st, TABLE_NOTFOUND);
	table_targets_free(&p.q.tt);
}

/* The answer may free its lookup: lookup_ask must not touch it after
 * (ASan catches a use after free; a plain build checks the count). */
static int freed_answers;

static void
free_answer(struct lookup *lk)
{
	struct resolve_lookup *q = (struct resolve_lookup *)lk;

	freed_answers++;
	table_targets_free(&q->tt);
	free(q);
}

static void
test_inline_answer_may_free(void)
{
	struct resolve_lookup *q = calloc(1, sizeof(*q));

	if (q == NULL)
		abort();
	q->lk.ask = resolve_ask;
	q->lk.answer = free_answer;
	q->addr.kind = ADDR_DOMAIN_NAME;
	snprintf(q->addr.local, sizeof(q->addr.local), "ann");
	snprintf(q->addr.domain, sizeof(q->addr.domain), "example.org");
	freed_answers = 0;
	lookup_ask(&pool, &q->lk);
	T_CHECK_INT(freed_answers, 1);
}

static void
on_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	event_base_loopbreak(base);
}

/* Runs the loop until an answer (probe_answer breaks it) or 5 s. */
static void
run_loop_for_answer(void)
{
	struct event *t = evtimer_new(base, on_timeout, NULL);
	struct timeval tv = {5, 0};

	if (t == NULL)
		abort();
	evtimer_add(t, &tv);
	event_base_dispatch(base);
	event_free(t);
}

static int drained_calls;

static void
on_drained(void *arg)
{
	(void)arg;
	drained_calls++;
}

static void
test_threaded_answers_once_later_on_the_loop(void)
{
	struct probe p;

	lookups_start_threads(&pool, 2, on_drained, NULL);
	probe_init(&p, "ann", "example.org");
	ask(&p);
	T_CHECK_INT(p.answers, 0); /* not yet: the loop has not run */
	T_CHECK_INT(lookups_busy(&pool), 1);
	run_loop_for_answer();
	T_CHECK_INT(p.asks, 1);
	T_CHECK_INT(p.answers, 1);
	T_CHECK_INT(p.asks_at_answer, 1);
	T_CHECK(!p.answered_inside);
	T_CHECK(!pthread_equal(p.ask_thread, main_thread));
	T_CHECK(pthread_equal(p.answer_thread, main_thread));
	T_CHECK_INT(p.q.st, TABLE_OK);
	T_CHECK_INT(p.q.tt.n, 1);
	T_CHECK_INT(lookups_busy(&pool), 0);
	T_CHECK(drained_calls >= 1);
	table_targets_free(&p.q.tt);

	/* after a reload the thread reopens its handle and still answers */
	lookups_reload(&pool, NULL, NULL);
	probe_init(&p, "ann", "example.org");
	ask(&p);
	run_loop_for_answer();
	T_CHECK_INT(p.answers, 1);
	T_CHECK_INT(p.q.st, TABLE_OK);
	table_targets_free(&p.q.tt);
}

/* What the pool answers for local@example.org now (threads: the loop
 * runs until the answer). */
static enum table_status
status_of(const char *local)
{
	struct probe p;

	probe_init(&p, local, "example.org");
	ask(&p);
	if (p.answers == 0)
		run_loop_for_answer();
	T_CHECK_INT(p.answers, 1);
	table_targets_free(&p.q.tt);
	return p.q.st;
}

static void
test_reload_switches_table(void)
{
	char err[512] = "";
	struct table *t2 = table_open(conf2, err, sizeof(err));

	t_case("a reload to another table: new questions go to it");
	T_CHECK(t2 != NULL);
	if (t2 == NULL) {
		fprintf(stderr, "open: %s\n", err);
		return;
	}
	T_CHECK_INT(table_user_add(t2, "zoe@example.org", NULL), TABLE_OK);
	T_CHECK_INT(status_of("zoe"), TABLE_NOTFOUND); /* the old table */
	lookups_reload(&pool, conf2, t2);
	T_CHECK(pool.table == t2);
	T_CHECK_INT(status_of("zoe"), TABLE_OK);
	T_CHECK_INT(status_of("ann"), TABLE_NOTFOUND);
	/* a reload whose table could not be opened keeps the handle */
	lookups_reload(&pool, NULL, NULL);
	T_CHECK(pool.table == t2);
	T_CHECK_INT(status_of("zoe"), TABLE_OK);
}

int
main(void)
{
	char tmpl[] = "/tmp/test_lookup.XXXXXX", err[512] = "";
	char sd[PATH_MAX + 32], tu[PATH_MAX + 64];
	char *ov[3];

	if (mkdtemp(tmpl) == NULL)
		abort();
	snprintf(sd, sizeof(sd), "state_dir=%s/state", tmpl);
	ov[0] = sd;
	ov[1] = "domains=example.org";
	main_thread = pthread_self();
	if ((conf = conf_load(NULL, ov, 2, err, sizeof(err))) == NULL ||
	    (base = event_base_new()) == NULL ||
	    lookups_init(&pool, conf, base, err, sizeof(err)) != 0) {
		fprintf(stderr, "setup: %s\n", err);
		return 1;
	}
	snprintf(tu, sizeof(tu), "tables.users=sqlite:%s/other.db", tmpl);
	ov[2] = tu;
	if ((conf2 = conf_load(NULL, ov, 3, err, sizeof(err))) == NULL) {
		fprintf(stderr, "setup: %s\n", err);
		return 1;
	}
	if (table_user_add(pool.table, "ann@example.org", NULL) != TABLE_OK)
		abort();
	T_RUN(test_inline_answers_once_before_return);
	T_RUN(test_inline_answer_may_free);
	T_RUN(test_threaded_answers_once_later_on_the_loop);
	T_RUN(test_reload_switches_table);
	lookups_stop(&pool);
	event_base_free(base);
	conf_free(conf);
	conf_free(conf2);
	{
		char cmd[PATH_MAX + 16];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpl);
		if (system(cmd) != 0)
			fprintf(stderr, "cleanup of %s failed\n", tmpl);
	}
	return t_summary();
}
