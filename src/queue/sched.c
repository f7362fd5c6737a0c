/*
 * sched.c: the schedule of queued messages.  A chained hash table finds an
 * entry by id; a binary heap keyed on next_try gives the next due one.
 * Invariant: an entry is in the heap (heap_idx < nheap, heap[heap_idx] ==
 * e) exactly when it is neither held nor taken.
 */
#include <stdlib.h>
#include <string.h>

#include "queue/sched.h"

#define SCHED_BUCKETS 65536

struct sched {
	struct sched_ent *buckets[SCHED_BUCKETS];
	struct sched_ent **heap;
	size_t nheap, heapcap;
	size_t nentries;
};

static uint32_t
sc_hash(const char *id)
{
	uint32_t h = 2166136261u;

	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 16777619u;
	return h % SCHED_BUCKETS;
}

static void
heap_swap(struct sched *s, size_t a, size_t b)
{
	struct sched_ent *t = s->heap[a];

	s->heap[a] = s->heap[b];
	s->heap[b] = t;
	s->heap[a]->heap_idx = a;
	s->heap[b]->heap_idx = b;
}

static void
heap_up(struct sched *s, size_t i)
{
	while (i > 0 && s->heap[(i - 1) / 2]->next_try > s->heap[i]->next_try) {
		heap_swap(s, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void
heap_down(struct sched *s, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < s->nheap && s->heap[l]->next_try < s->heap[m]->next_try)
			m = l;
		if (r < s->nheap && s->heap[r]->next_try < s->heap[m]->next_try)
			m = r;
		if (m == i)
			return;
		heap_swap(s, i, m);
		i = m;
	}
}

static void
heap_push(struct sched *s, struct sched_ent *e)
{
	if (s->nheap == s->heapcap) {
		s->heapcap = s->heapcap ? s->heapcap * 2 : 1024;
		s->heap = realloc(s->heap, s->heapcap * sizeof(*s->heap));
		if (s->heap == NULL)
			panic("event=oom where=sched_heap");
	}
	e->heap_idx = s->nheap;
	s->heap[s->nheap++] = e;
	heap_up(s, e->heap_idx);
}

static void
heap_remove(struct sched *s, struct sched_ent *e)
{
	size_t i = e->heap_idx;

	if (i == SIZE_MAX)
		return;
	s->nheap--;
	if (i != s->nheap) {
		s->heap[i] = s->heap[s->nheap];
		s->heap[i]->heap_idx = i;
		heap_down(s, i);
		heap_up(s, i);
	}
	e->heap_idx = SIZE_MAX;
}

struct sched *
sched_new(void)
{
	return xcalloc(1, sizeof(struct sched));
}

void
sched_free(struct sched *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < SCHED_BUCKETS; i++)
		while (s->buckets[i] != NULL)
			sched_del(s, s->buckets[i]);
	free(s->heap);
	free(s);
}

struct sched_ent *
sched_find(struct sched *s, const char *id)
{
	struct sched_ent *e;

	for (e = s->buckets[sc_hash(id)]; e != NULL; e = e->hnext)
		if (strcmp(e->id, id) == 0)
			return e;
	return NULL;
}

struct sched_ent *
sched_add(struct sched *s, const char *id, time_t next_try, bool held)
{
	struct sched_ent *e = xcalloc(1, sizeof(*e));
	uint32_t h = sc_hash(id);

	if (str_copy(e->id, sizeof(e->id), id, strlen(id)) != 0)
		panic("event=bad_id");
	e->next_try = next_try;
	e->held = held;
	e->heap_idx = SIZE_MAX;
	e->hnext = s->buckets[h];
	s->buckets[h] = e;
	s->nentries++;
	if (!held)
		heap_push(s, e);
	return e;
}

void
sched_del(struct sched *s, struct sched_ent *e)
{
	struct sched_ent **pp = &s->buckets[sc_hash(e->id)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	heap_remove(s, e);
	s->nentries--;
	free(e);
}

void
sched_reschedule(struct sched *s, struct sched_ent *e, time_t when)
{
	heap_remove(s, e);
	e->next_try = when;
	if (!e->held)
		heap_push(s, e);
}

void
sched_take(struct sched *s, struct sched_ent *e)
{
	heap_remove(s, e);
}

void
sched_hold(struct sched *s, struct sched_ent *e)
{
	e->held = true;
	heap_remove(s, e);
}

void
sched_release(struct sched *s, struct sched_ent *e, time_t now)
{
	e->held = false;
	sched_reschedule(s, e, now);
}

struct sched_ent *
sched_pop_due(struct sched *s, time_t now)
{
	struct sched_ent *e;

	if (s->nheap == 0 || s->heap[0]->next_try > now)
		return NULL;
	e = s->heap[0];
	heap_remove(s, e);
	return e;
}

bool
sched_next(const struct sched *s, time_t *when_out)
{
	if (s->nheap == 0)
		return false;
	*when_out = s->heap[0]->next_try;
	return true;
}

size_t
sched_flush(struct sched *s, time_t now)
{
	size_t i;

	for (i = 0; i < s->nheap; i++)
		s->heap[i]->next_try = now; /* all equal: still a heap */
	return s->nheap;
}

size_t
sched_count(const struct sched *s)
{
	return s->nentries;
}

size_t
sched_waiting(const struct sched *s)
{
	return s->nheap;
}

void
sched_each(
    struct sched *s, void (*fn)(struct sched_ent *e, void *ctx), void *ctx)
{
	struct sched_ent *e;
	size_t i;

	for (i = 0; i < SCHED_BUCKETS; i++)
		for (e = s->buckets[i]; e != NULL; e = e->hnext)
			fn(e, ctx);
}
