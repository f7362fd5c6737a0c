/*
 * ratelimit: per-key event rates in a fixed table (see ratelimit.h for
 * the algorithm and its limits).
 *
 * Invariants: a slot with tat == 0 is empty; tat is in ms and only moves
 * forward for a key; the table never grows after rate_table_new.
 */
#include <stdlib.h>

#include "queue/ratelimit.h"

#define RATE_SLOTS_MAX (1u << 20)

struct rate_slot {
	uint64_t key;
	uint64_t tat; /* theoretical arrival time, ms; 0: empty */
};

struct rate_table {
	struct rate_slot *slot;
	uint64_t mask;
	uint64_t interval; /* window / limit, ms, at least 1 */
	uint64_t window;
	unsigned limit;
};

struct rate_table *
rate_table_new(unsigned slots, unsigned limit, uint64_t window_ms)
{
	struct rate_table *t = calloc(1, sizeof(*t));
	uint64_t n = 2;

	if (t == NULL)
		return NULL;
	while (n < slots && n < RATE_SLOTS_MAX)
		n <<= 1;
	if ((t->slot = calloc((size_t)n, sizeof(*t->slot))) == NULL) {
		free(t);
		return NULL;
	}
	t->mask = n - 1;
	t->limit = limit;
	t->window = window_ms ? window_ms : 1;
	t->interval = limit ? t->window / limit : 1;
	if (t->interval == 0)
		t->interval = 1;
	return t;
}

void
rate_table_free(struct rate_table *t)
{
	if (t == NULL)
		return;
	free(t->slot);
	free(t);
}

/* The key's two candidate slots: low and high halves of its hash. */
static struct rate_slot *
rate_slot_of(const struct rate_table *t, uint64_t key, int which)
{
	return &t->slot[(which ? key >> 32 : key) & t->mask];
}

/* The slot holding key, or NULL. */
static struct rate_slot *
rate_find(const struct rate_table *t, uint64_t key)
{
	struct rate_slot *a = rate_slot_of(t, key, 0),
			 *b = rate_slot_of(t, key, 1);

	if (a->tat != 0 && a->key == key)
		return a;
	if (b->tat != 0 && b->key == key)
		return b;
	return NULL;
}

bool
rate_check(const struct rate_table *t, uint64_t key, uint64_t now_ms)
{
	const struct rate_slot *s;
	uint64_t tat;

	if (t->limit == 0)
		return true;
	s = rate_find(t, key);
	tat = s != NULL && s->tat > now_ms ? s->tat : now_ms;
	/* allowed while the new tat stays within one window of now */
	return tat - now_ms + t->interval <= t->window;
}

void
rate_take(struct rate_table *t, uint64_t key, uint64_t now_ms)
{
	struct rate_slot *s = rate_find(t, key);
	uint64_t tat;

	if (t->limit == 0)
		return;
	if (s == NULL) {
		struct rate_slot *a = rate_slot_of(t, key, 0),
				 *b = rate_slot_of(t, key, 1);

		s = a->tat <= b->tat ? a : b; /* empty, or the least to lose */
		s->key = key;
		s->tat = 0;
	}
	tat = s->tat > now_ms ? s->tat : now_ms;
	/* capped: a key pushed far ahead (denied events still count) must
	 * come back within two windows of quiet, never be locked out */
	tat += t->interval;
	if (tat > now_ms + 2 * t->window)
		tat = now_ms + 2 * t->window;
	s->tat = tat ? tat : 1;
}
