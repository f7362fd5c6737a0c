/*
 * throttle: remember recent AUTH failures per client address, so that a
 * client guessing passwords is answered slower and slower.
 *
 * What: a fixed pool of entries (address key, failure count, time of the
 * last failure) in a hash table, plus a list ordered by last failure so
 * the oldest entry is at hand for eviction and expiry.
 *
 * Invariants: every entry in use is in exactly one bucket chain and in
 * the age list; the age list runs from oldest to newest last failure
 * (fail() moves an entry to the newest end, and now_ms is monotonic);
 * unused entries are on the free list.  At most max_entries exist: the
 * memory is allocated once, in auth_throttle_new().
 *
 * Limits: keys at most AUTH_THROTTLE_KEY_MAX bytes; the delay is at most
 * AUTH_THROTTLE_MAX_DELAY_MS; an address is forgotten
 * AUTH_THROTTLE_FORGET_MS after its last failure.
 *
 * Security: client addresses are chosen by the attacker (an IPv6 /64 is
 * 2^64 of them), so buckets are picked with SipHash-2-4 under a random
 * key: nobody can aim many addresses at one chain.  IPv6 clients are
 * counted per /64 for the same reason.  When the table is full an
 * attacker can push other addresses out, which only forgets their
 * failures early; the table never grows.  A success forgets the address:
 * a user behind the same NAT as a guesser then gets in without delay, at
 * the price that a guesser with one valid account can reset its own
 * count.  Not thread-safe: one tracker belongs to the event loop.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "auth/auth.h"

/* Keep the bucket array sane whatever the configuration says. */
#define THR_MAX_ENTRIES (1u << 22)

enum thr_kind { THR_KIND_V4 = 1, THR_KIND_V6 = 2, THR_KIND_RAW = 3 };

struct thr_key {
	uint8_t kind;
	uint8_t len;
	uint8_t b[AUTH_THROTTLE_KEY_MAX];
};

struct thr_entry {
	struct thr_key key;
	uint32_t failures;
	uint64_t last_ms; /* time of the last failure */
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
	uint64_t sipkey[2];
};

/* ---- SipHash-2-4 (Aumasson, Bernstein 2012) ----------------------------- */

static uint64_t
sip_rotl(uint64_t x, unsigned b)
{
	return (x << b) | (x >> (64 - b));
}

static void
sip_round(uint64_t v[4])
{
	v[0] += v[1];
	v[1] = sip_rotl(v[1], 13);
	v[1] ^= v[0];
	v[0] = sip_rotl(v[0], 32);
	v[2] += v[3];
	v[3] = sip_rotl(v[3], 16);
	v[3] ^= v[2];
	v[0] += v[3];
	v[3] = sip_rotl(v[3], 21);
	v[3] ^= v[0];
	v[2] += v[1];
	v[1] = sip_rotl(v[1], 17);
	v[1] ^= v[2];
	v[2] = sip_rotl(v[2], 32);
}

static void
sip_absorb(uint64_t v[4], uint64_t m)
{
	v[3] ^= m;
	sip_round(v);
	sip_round(v);
	v[0] ^= m;
}

static uint64_t
sip_hash(const uint64_t k[2], const uint8_t *p, size_t n)
{
	uint64_t v[4] = {k[0] ^ 0x736f6d6570736575ull,
	    k[1] ^ 0x646f72616e646f6dull, k[0] ^ 0x6c7967656e657261ull,
	    k[1] ^ 0x7465646279746573ull};
	uint64_t last = (uint64_t)n << 56;
	size_t i, full = n - n % 8;
	int r;

	for (i = 0; i < full; i += 8) {
		uint64_t m = 0;
		int j;

		for (j = 7; j >= 0; j--)
			m = (m << 8) | p[i + (size_t)j];
		sip_absorb(v, m);
	}
	for (i = full; i < n; i++)
		last |= (uint64_t)p[i] << (8 * (i - full));
	sip_absorb(v, last);
	v[2] ^= 0xff;
	for (r = 0; r < 4; r++)
		sip_round(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/* ---- keys --------------------------------------------------------------- */

static const uint8_t thr_v4mapped[12] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static void
thr_key_make(const void *ip, size_t iplen, struct thr_key *k)
{
	const uint8_t *p = ip;

	if (iplen > AUTH_THROTTLE_KEY_MAX)
		panic("auth_throttle: key of %zu bytes", iplen);
	memset(k, 0, sizeof(*k));
	if (iplen == 16 && memcmp(p, thr_v4mapped, 12) == 0) {
		k->kind = THR_KIND_V4;
		k->len = 4;
		memcpy(k->b, p + 12, 4);
	} else if (iplen == 16) {
		k->kind = THR_KIND_V6;
		k->len = 8; /* the /64 */
		memcpy(k->b, p, 8);
	} else {
		k->kind = iplen == 4 ? THR_KIND_V4 : THR_KIND_RAW;
		k->len = (uint8_t)iplen;
		memcpy(k->b, p, iplen);
	}
}

static size_t
thr_bucket(const struct auth_throttle *t, const struct thr_key *k)
{
	/* kind, len and bytes: the whole struct is initialised by memset */
	return (size_t)sip_hash(t->sipkey, (const uint8_t *)k, sizeof(*k)) &
	       (t->nbuckets - 1);
}

/* ---- table -------------------------------------------------------------- */

static struct thr_entry *
thr_find(const struct auth_throttle *t, const struct thr_key *k, size_t b)
{
	struct thr_entry *e;

	for (e = t->buckets[b]; e != NULL; e = e->hnext)
		if (memcmp(&e->key, k, sizeof(*k)) == 0)
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
thr_insert(struct auth_throttle *t, const struct thr_key *k, size_t b)
{
	struct thr_entry *e;

	if (t->free == NULL)
		thr_remove(t, t->oldest);
	e = t->free;
	t->free = e->hnext;
	e->key = *k;
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
	if (getrandom(t->sipkey, sizeof(t->sipkey), 0) !=
	    (ssize_t)sizeof(t->sipkey)) {
		/* no entropy yet (early boot): weaker, but still per-process */
		t->sipkey[0] = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)t;
		t->sipkey[1] = time_now_ms() ^ (uint64_t)(uintptr_t)t->pool;
	}
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

unsigned
auth_throttle_delay_ms(
    struct auth_throttle *t, const void *ip, size_t iplen, uint64_t now_ms)
{
	struct thr_key k;
	struct thr_entry *e;

	thr_key_make(ip, iplen, &k);
	e = thr_find(t, &k, thr_bucket(t, &k));
	if (e == NULL)
		return 0;
	if (thr_expired(e, now_ms)) {
		thr_remove(t, e);
		return 0;
	}
	return thr_delay_for(e->failures);
}

void
auth_throttle_fail(
    struct auth_throttle *t, const void *ip, size_t iplen, uint64_t now_ms)
{
	struct thr_key k;
	struct thr_entry *e;
	size_t b;

	/* the age list is sorted: expired entries wait at its old end */
	while (t->oldest != NULL && thr_expired(t->oldest, now_ms))
		thr_remove(t, t->oldest);
	thr_key_make(ip, iplen, &k);
	b = thr_bucket(t, &k);
	e = thr_find(t, &k, b);
	if (e == NULL) {
		e = thr_insert(t, &k, b);
	} else {
		if (thr_expired(e, now_ms))
			e->failures = 0; /* only if the clock went backwards */
		thr_age_unlink(t, e);
		thr_age_push_newest(t, e);
	}
	if (e->failures < UINT32_MAX)
		e->failures++;
	e->last_ms = now_ms;
}

void
auth_throttle_success(struct auth_throttle *t, const void *ip, size_t iplen)
{
	struct thr_key k;
	struct thr_entry *e;

	thr_key_make(ip, iplen, &k);
	e = thr_find(t, &k, thr_bucket(t, &k));
	if (e != NULL)
		thr_remove(t, e);
}

unsigned
auth_throttle_count(const struct auth_throttle *t)
{
	return t->count;
}
