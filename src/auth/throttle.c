/*
 * throttle: remember recent AUTH failures and attempts in flight per
 * client key, so that a client guessing passwords is answered slower and
 * slower, and cannot learn a verdict before its penalty has run out.
 *
 * What: a fixed pool of entries (client key, failure count, time of the
 * last event, attempts in flight, generation) in a hash table, plus a
 * list ordered by last event so the oldest entry is at hand for eviction
 * and expiry.
 *
 * Invariants: every entry in use is in exactly one bucket chain and in
 * the age list; the age list runs from oldest to newest last event
 * (admit() and fail() move an entry to the newest end, and now_ms is
 * monotonic); unused entries are on the free list.  An entry with no
 * failure and nothing in flight is removed.  A ticket is the generation
 * of the entry that admitted it: a ticket of an entry since removed or
 * evicted releases nothing.  At most max_entries exist: the memory is
 * allocated once, in auth_throttle_new().
 *
 * Limits: the penalty is at most AUTH_THROTTLE_MAX_DELAY_MS; a key is
 * forgotten AUTH_THROTTLE_FORGET_MS after its last event.
 *
 * Security: client addresses are chosen by the attacker (an IPv6 /64 is
 * 2^64 of them), so keys are client keys (an IPv6 client is its /64) and
 * buckets are picked with client_key_hash(), SipHash-2-4 under a random
 * key: nobody can aim many keys at one chain.  When the table is full an
 * attacker can push other keys out, which only forgets their failures
 * early; the table never grows.  A success forgets the key: a user behind
 * the same NAT as a guesser then gets in without further delay, at the
 * price that a guesser with one valid account can reset its own count.
 * Not thread-safe: one tracker belongs to the event loop.
 */
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "util/clientkey.h"

/* Keep the bucket array sane whatever the configuration says. */
#define THR_MAX_ENTRIES (1u << 22)

struct thr_entry {
	struct client_key key;
	uint32_t failures;
	uint32_t inflight; /* admitted, not yet released */
	uint64_t gen;	   /* this entry's tickets */
	uint64_t last_ms;  /* time of the last failure or admission */
	uint64_t fail_ms;  /* time of the last failure: the penalty's start */
	size_t bucket;
	struct thr_entry *hnext; /* bucket chain, or the free list */
	struct thr_entry *older, *newer;
};

struct auth_throttle {
	struct thr_entry *pool;
	struct thr_entry *free;
	struct thr_entry **buckets;
	size_t nbuckets; /* a power of two */
	struct thr_entry *oldest, *newest;
	unsigned count;
	uint64_t next_gen;
};

static size_t
thr_bucket(const struct auth_throttle *t, const struct client_key *k)
{
	return (size_t)client_key_hash(k) & (t->nbuckets - 1);
}

/* ---- table -------------------------------------------------------------- */

static struct thr_entry *
thr_find(const struct auth_throttle *t, const struct client_key *k, size_t b)
{
	struct thr_entry *e;

	for (e = t->buckets[b]; e != NULL; e = e->hnext)
		if (client_key_eq(&e->key, k))
			return e;
	return NULL;
}

static void
thr_age_unlink(struct auth_throttle *t, struct thr_entry *e)
{
	if (e->older != NULL)
		e->older->newer = e->newer;
	else
		t->oldest = e->newer;
	if (e->newer != NULL)
		e->newer->older = e->older;
	else
		t->newest = e->older;
	e->older = e->newer = NULL;
}

static void
thr_age_push_newest(struct auth_throttle *t, struct thr_entry *e)
{
	e->older = t->newest;
	e->newer = NULL;
	if (t->newest != NULL)
		t->newest->newer = e;
	else
		t->oldest = e;
	t->newest = e;
}

static void
thr_remove(struct auth_throttle *t, struct thr_entry *e)
{
	struct thr_entry **pp = &t->buckets[e->bucket];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	thr_age_unlink(t, e);
	memset(e, 0, sizeof(*e));
	e->hnext = t->free;
	t->free = e;
	t->count--;
}

static bool
thr_expired(const struct thr_entry *e, uint64_t now_ms)
{
	return now_ms >= e->last_ms &&
	       now_ms - e->last_ms >= AUTH_THROTTLE_FORGET_MS;
}

/* A free entry for key k in bucket b, evicting the oldest if need be. */
static struct thr_entry *
thr_insert(struct auth_throttle *t, const struct client_key *k, size_t b)
{
	struct thr_entry *e;

	if (t->free == NULL)
		thr_remove(t, t->oldest);
	e = t->free;
	t->free = e->hnext;
	e->key = *k;
	e->gen = ++t->next_gen;
	e->bucket = b;
	e->hnext = t->buckets[b];
	t->buckets[b] = e;
	thr_age_push_newest(t, e);
	t->count++;
	return e;
}

/* ---- public ------------------------------------------------------------- */

struct auth_throttle *
auth_throttle_new(unsigned max_entries)
{
	struct auth_throttle *t = xcalloc(1, sizeof(*t));
	unsigned i;

	if (max_entries == 0)
		max_entries = 1;
	if (max_entries > THR_MAX_ENTRIES)
		max_entries = THR_MAX_ENTRIES;
	t->nbuckets = 1;
	while (t->nbuckets < max_entries)
		t->nbuckets <<= 1;
	t->buckets = xcalloc(t->nbuckets, sizeof(*t->buckets));
	t->pool = xcalloc(max_entries, sizeof(*t->pool));
	for (i = max_entries; i > 0; i--) {
		t->pool[i - 1].hnext = t->free;
		t->free = &t->pool[i - 1];
	}
	client_key_seed();
	return t;
}

void
auth_throttle_free(struct auth_throttle *t)
{
	if (t == NULL)
		return;
	free(t->pool);
	free(t->buckets);
	free(t);
}

/* 0 while within the free failures, then 1 s doubling, capped. */
static unsigned
thr_delay_for(uint32_t failures)
{
	uint32_t over;

	if (failures <= AUTH_THROTTLE_FREE_FAILURES)
		return 0;
	over = failures - AUTH_THROTTLE_FREE_FAILURES - 1;
	if (over >= 5) /* 1000 << 5 is past the cap already */
		return AUTH_THROTTLE_MAX_DELAY_MS;
	return (1000u << over) < AUTH_THROTTLE_MAX_DELAY_MS
		   ? (1000u << over)
		   : AUTH_THROTTLE_MAX_DELAY_MS;
}

/* The key's entry, or NULL; an expired one is dropped on the way. */
static struct thr_entry *
thr_lookup(struct auth_throttle *t, const struct client_key *k, uint64_t now_ms)
{
	struct thr_entry *e = thr_find(t, k, thr_bucket(t, k));

	if (e != NULL && e->inflight == 0 && thr_expired(e, now_ms)) {
		thr_remove(t, e);
		return NULL;
	}
	return e;
}

/* The key's entry, made (and made the newest) if need be. */
static struct thr_entry *
thr_touch(struct auth_throttle *t, const struct client_key *k, uint64_t now_ms)
{
	struct thr_entry *e;
	size_t b = thr_bucket(t, k);

	/* the age list is sorted: expired entries wait at its old end */
	while (t->oldest != NULL && t->oldest->inflight == 0 &&
	       thr_expired(t->oldest, now_ms))
		thr_remove(t, t->oldest);
	e = thr_find(t, k, b);
	if (e == NULL)
		return thr_insert(t, k, b);
	if (thr_expired(e, now_ms))
		e->failures = 0; /* kept past its time by an attempt in flight
				    (or one before it in the age list) */
	thr_age_unlink(t, e);
	thr_age_push_newest(t, e);
	return e;
}

enum auth_throttle_verdict
auth_throttle_admit(struct auth_throttle *t, const struct client_key *k,
    uint64_t now_ms, unsigned *wait_ms_out, uint64_t *ticket_out)
{
	struct thr_entry *e = thr_touch(t, k, now_ms);
	uint64_t end;

	*wait_ms_out = 0;
	*ticket_out = 0;
	e->last_ms = now_ms;
	/* past the free failures, one attempt at a time: a guesser's
	   parallel connections would otherwise each get a guess per penalty */
	if ((uint64_t)e->failures + e->inflight >=
		AUTH_THROTTLE_FREE_FAILURES &&
	    e->inflight > 0)
		return AUTH_THROTTLE_BUSY;
	end = e->fail_ms + thr_delay_for(e->failures);
	if (e->failures > 0 && end > now_ms)
		*wait_ms_out = (unsigned)(end - now_ms);
	e->inflight++;
	*ticket_out = e->gen;
	return AUTH_THROTTLE_GO;
}

void
auth_throttle_release(
    struct auth_throttle *t, const struct client_key *k, uint64_t ticket)
{
	struct thr_entry *e = thr_find(t, k, thr_bucket(t, k));

	if (e == NULL || ticket == 0 || e->gen != ticket || e->inflight == 0)
		return; /* forgotten by a success or an eviction meanwhile */
	e->inflight--;
	if (e->inflight == 0 && e->failures == 0)
		thr_remove(t, e);
}

unsigned
auth_throttle_delay_ms(
    struct auth_throttle *t, const struct client_key *k, uint64_t now_ms)
{
	struct thr_entry *e = thr_lookup(t, k, now_ms);

	if (e == NULL || e->failures == 0)
		return 0;
	return thr_delay_for(e->failures);
}

void
auth_throttle_fail(
    struct auth_throttle *t, const struct client_key *k, uint64_t now_ms)
{
	struct thr_entry *e = thr_touch(t, k, now_ms);

	if (e->failures < UINT32_MAX)
		e->failures++;
	e->last_ms = e->fail_ms = now_ms;
}

void
auth_throttle_success(struct auth_throttle *t, const struct client_key *k)
{
	struct thr_entry *e = thr_find(t, k, thr_bucket(t, k));

	if (e != NULL)
		thr_remove(t, e);
}

unsigned
auth_throttle_count(const struct auth_throttle *t)
{
	return t->count;
}
