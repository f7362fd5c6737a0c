/*
 * rate: per-key event rates in a fixed table (see rate.h for the
 * algorithm and its limits).
 *
 * Invariants: a slot with tat == 0 is empty; tat is in ms and only moves
 * forward for a key (rate_take and rate_block take the larger of the old
 * and the new value), so an earlier now_ms can only make a key wait
 * longer; the table never grows after rate_table_new.  The one exception
 * is rate_table_set_limit, which rescales every tat to a new interval.
 */
#include <stdlib.h>

#include "rate/rate.h"

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

/* window / limit, at least 1 ms */
static uint64_t
rate_interval(uint64_t window, unsigned limit)
{
	uint64_t i = limit ? window / limit : 1;

	return i ? i : 1;
}

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
	t->interval = rate_interval(t->window, limit);
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

/* The slot holding key, else one made for it: empty, or the one whose
 * key has the least to lose (the earliest arrival time). */
static struct rate_slot *
rate_place(struct rate_table *t, uint64_t key)
{
	struct rate_slot *s = rate_find(t, key), *a, *b;

	if (s != NULL)
		return s;
	a = rate_slot_of(t, key, 0);
	b = rate_slot_of(t, key, 1);
	s = a->tat <= b->tat ? a : b;
	s->key = key;
	s->tat = 0;
	return s;
}

/* The key's arrival time seen from now: never before now. */
static uint64_t
rate_tat(const struct rate_table *t, uint64_t key, uint64_t now_ms)
{
	const struct rate_slot *s = rate_find(t, key);

	return s != NULL && s->tat > now_ms ? s->tat : now_ms;
}

bool
rate_check(const struct rate_table *t, uint64_t key, uint64_t now_ms)
{
	if (t->limit == 0)
		return true;
	/* allowed while the new tat stays within one window of now */
	return rate_tat(t, key, now_ms) - now_ms + t->interval <= t->window;
}

void
rate_take(struct rate_table *t, uint64_t key, uint64_t now_ms)
{
	struct rate_slot *s;
	uint64_t tat;

	if (t->limit == 0)
		return;
	s = rate_place(t, key);
	tat = (s->tat > now_ms ? s->tat : now_ms) + t->interval;
	/* capped: a key pushed far ahead (denied events still count) must
	 * come back within two windows of quiet, never be locked out; never
	 * below what it was (a clock gone back frees nobody) */
	if (tat > now_ms + 2 * t->window)
		tat = now_ms + 2 * t->window;
	if (tat > s->tat)
		s->tat = tat;
}

unsigned
rate_remaining(const struct rate_table *t, uint64_t key, uint64_t now_ms)
{
	uint64_t ahead, n;

	if (t->limit == 0)
		return UINT32_MAX;
	ahead = rate_tat(t, key, now_ms) - now_ms;
	if (ahead >= t->window)
		return 0;
	n = (t->window - ahead) / t->interval;
	return n < t->limit ? (unsigned)n : t->limit;
}

uint64_t
rate_retry_after(const struct rate_table *t, uint64_t key, uint64_t now_ms)
{
	uint64_t due;

	if (t->limit == 0)
		return 0;
	/* the event is allowed from tat + interval - window on */
	due = rate_tat(t, key, now_ms) + t->interval;
	return due > now_ms + t->window ? due - t->window - now_ms : 0;
}

void
rate_block(struct rate_table *t, uint64_t key, uint64_t now_ms, uint64_t ms)
{
	struct rate_slot *s;
	uint64_t tat;

	if (t->limit == 0)
		return;
	s = rate_place(t, key);
	/* rate_check refuses while tat - now + interval > window */
	tat = now_ms + ms + t->window - t->interval;
	if (tat > s->tat)
		s->tat = tat;
	if (s->tat == 0)
		s->tat = 1;
}

/* ahead * to / from without overflow: ahead is at most a few windows,
 * but rate_block may have put a key far ahead */
static uint64_t
rate_rescale(uint64_t ahead, uint64_t from, uint64_t to)
{
	if (ahead <= UINT64_MAX / to)
		return ahead * to / from;
	return ahead / from * to;
}

void
rate_table_set_limit(struct rate_table *t, unsigned limit, uint64_t now_ms)
{
	uint64_t interval = rate_interval(t->window, limit), cap, i;

	if (limit == t->limit)
		return;
	cap = now_ms + 2 * t->window;
	for (i = 0; i <= t->mask; i++) {
		struct rate_slot *s = &t->slot[i];

		if (limit == 0 || t->limit == 0) {
			s->tat = 0; /* no counts under or for no limit */
			continue;
		}
		if (s->tat <= now_ms)
			continue; /* nothing ahead: a whole budget either way */
		s->tat = now_ms +
			 rate_rescale(s->tat - now_ms, t->interval, interval);
		if (s->tat > cap)
			s->tat = cap;
	}
	t->limit = limit;
	t->interval = interval;
}
