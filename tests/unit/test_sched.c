/*
 * Unit tests for src/queue/sched.c, the queue's schedule: entries by id,
 * due in next-try order (many entries, random times, deletions from the
 * middle of the heap), hold and release (a held entry is never due, a
 * reschedule of a held one keeps it held, a release makes it due now),
 * take (an entry an attempt has is not due again until rescheduled),
 * flush, and the walk over every entry.
 */
#include <stdint.h>

#include "t.h"
#include "queue/sched.h"

#define T0 ((time_t)1700000000)

static void
id_of(unsigned n, char *id)
{
	T_CHECK(str_fmt(id, QUEUE_ID_LEN + 1, "%016x", n) == 0);
}

static void
test_add_find_del(void)
{
	struct sched *s = sched_new();
	struct sched_ent *a, *b;
	time_t when = 0;

	t_case("empty");
	T_CHECK_INT(sched_count(s), 0);
	T_CHECK(!sched_next(s, &when));
	T_CHECK(sched_pop_due(s, T0 + 1000000) == NULL);
	T_CHECK(sched_find(s, "0000000000000001") == NULL);
	t_case("add and find");
	a = sched_add(s, "0000000000000001", T0 + 10, false);
	b = sched_add(s, "0000000000000002", T0 + 5, false);
	T_CHECK(sched_find(s, "0000000000000001") == a);
	T_CHECK(sched_find(s, "0000000000000002") == b);
	T_CHECK_STR(a->id, "0000000000000001");
	T_CHECK_INT(sched_count(s), 2);
	T_CHECK_INT(sched_waiting(s), 2);
	T_CHECK(sched_next(s, &when));
	T_CHECK_INT(when, T0 + 5);
	t_case("not due before its time");
	T_CHECK(sched_pop_due(s, T0 + 4) == NULL);
	t_case("delete: gone from the index and the heap");
	sched_del(s, b);
	T_CHECK(sched_find(s, "0000000000000002") == NULL);
	T_CHECK_INT(sched_count(s), 1);
	T_CHECK(sched_next(s, &when));
	T_CHECK_INT(when, T0 + 10);
	T_CHECK(sched_pop_due(s, T0 + 9) == NULL);
	T_CHECK(sched_pop_due(s, T0 + 10) == a);
	t_case("popped: still known, no longer waiting");
	T_CHECK(sched_find(s, "0000000000000001") == a);
	T_CHECK_INT(sched_waiting(s), 0);
	T_CHECK(sched_pop_due(s, T0 + 100) == NULL);
	sched_free(s);
	sched_free(NULL);
}

/* 5000 entries at pseudo-random times; a fifth deleted; the rest come out
 * due in next-try order, each exactly once. */
static void
test_order_many(void)
{
	enum { N = 5000 };
	struct sched *s = sched_new();
	static bool seen[N];
	char id[QUEUE_ID_LEN + 1];
	uint32_t x = 12345;
	time_t prev = 0;
	size_t got = 0;
	unsigned i;
	struct sched_ent *e;

	t_case("many entries due in order, deleted ones never");
	for (i = 0; i < N; i++) {
		x = x * 1103515245u + 12345u;
		id_of(i, id);
		sched_add(s, id, T0 + (time_t)(x >> 16) % 3000, false);
	}
	for (i = 0; i < N; i += 5) {
		id_of(i, id);
		sched_del(s, sched_find(s, id));
	}
	T_CHECK_INT(sched_count(s), N - N / 5);
	while ((e = sched_pop_due(s, T0 + 3000)) != NULL) {
		unsigned n = (unsigned)strtoul(e->id, NULL, 16);

		T_CHECK(e->next_try >= prev);
		T_CHECK(n % 5 != 0);
		T_CHECK(!seen[n]);
		seen[n] = true;
		prev = e->next_try;
		got++;
	}
	T_CHECK_INT(got, N - N / 5);
	sched_free(s);
}

static void
test_hold_release(void)
{
	struct sched *s = sched_new();
	struct sched_ent *h, *o;
	time_t when = 0;

	t_case("added held: never due");
	h = sched_add(s, "00000000000000aa", T0, true);
	T_CHECK(h->held);
	T_CHECK_INT(sched_waiting(s), 0);
	T_CHECK(sched_pop_due(s, T0 + 365 * 86400) == NULL);
	t_case("reschedule of a held one keeps it held");
	sched_reschedule(s, h, T0 - 100);
	T_CHECK(h->held);
	T_CHECK_INT(h->next_try, T0 - 100);
	T_CHECK(sched_pop_due(s, T0 + 365 * 86400) == NULL);
	t_case("release: due now, before later ones");
	o = sched_add(s, "00000000000000bb", T0 + 50, false);
	sched_release(s, h, T0 + 20);
	T_CHECK(!h->held);
	T_CHECK(sched_next(s, &when));
	T_CHECK_INT(when, T0 + 20);
	T_CHECK(sched_pop_due(s, T0 + 19) == NULL);
	T_CHECK(sched_pop_due(s, T0 + 20) == h);
	t_case("hold a waiting one: it leaves the heap");
	sched_hold(s, o);
	T_CHECK(o->held);
	T_CHECK(!sched_next(s, &when));
	T_CHECK(sched_pop_due(s, T0 + 1000) == NULL);
	t_case("flush counts only waiting entries");
	sched_reschedule(s, h, T0 + 900);
	T_CHECK_INT(sched_flush(s, T0 + 1), 1);
	T_CHECK(sched_pop_due(s, T0 + 1) == h);
	sched_free(s);
}

static void
test_take_reschedule(void)
{
	struct sched *s = sched_new();
	struct sched_ent *a, *b;

	t_case("taken: not due until rescheduled");
	a = sched_add(s, "0000000000000010", T0, false);
	b = sched_add(s, "0000000000000011", T0 + 1, false);
	sched_take(s, a);
	sched_take(s, a); /* twice is harmless */
	T_CHECK(sched_pop_due(s, T0 + 10) == b);
	T_CHECK(sched_pop_due(s, T0 + 10) == NULL);
	t_case("rescheduled: due at its new time, in order");
	sched_reschedule(s, a, T0 + 30);
	sched_reschedule(s, b, T0 + 20);
	T_CHECK(sched_pop_due(s, T0 + 19) == NULL);
	T_CHECK(sched_pop_due(s, T0 + 30) == b);
	T_CHECK(sched_pop_due(s, T0 + 30) == a);
	t_case("rescheduling a waiting one moves it");
	sched_reschedule(s, a, T0 + 100);
	sched_reschedule(s, b, T0 + 200);
	sched_reschedule(s, a, T0 + 300);
	T_CHECK(sched_pop_due(s, T0 + 250) == b);
	T_CHECK(sched_pop_due(s, T0 + 250) == NULL);
	sched_free(s);
}

static void
count_one(struct sched_ent *e, void *ctx)
{
	size_t *n = ctx;

	(void)e;
	(*n)++;
}

static void
test_each(void)
{
	struct sched *s = sched_new();
	char id[QUEUE_ID_LEN + 1];
	size_t n = 0;
	unsigned i;

	t_case("each visits every entry, held and taken too");
	for (i = 0; i < 300; i++) {
		id_of(i * 7919u, id);
		sched_add(s, id, T0 + i, i % 3 == 0);
	}
	sched_take(s, sched_find(s, "0000000000000000"));
	sched_each(s, count_one, &n);
	T_CHECK_INT(n, 300);
	T_CHECK_INT(sched_waiting(s), 200);
	sched_free(s);
}

int
main(void)
{
	T_RUN(test_add_find_del);
	T_RUN(test_order_many);
	T_RUN(test_hold_release);
	T_RUN(test_take_reschedule);
	T_RUN(test_each);
	return t_summary();
}
