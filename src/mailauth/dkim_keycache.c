/*
 * dkim_keycache: parsed key records (RFC 6376 3.6.1) kept by their text,
 * so a key published once and met on every message is decoded once.
 *
 * Why: decoding an RSA SubjectPublicKeyInfo through OpenSSL 3's decoder
 * costs about as much as the verification itself, and a busy receiver
 * sees the same few keys on most of its mail.  A parse is a pure function
 * of the record's text, so a hit is exactly what a fresh parse would give;
 * freshness is the DNS answer's business (deliver/dns.c's TTL cache), not
 * this cache's: a new record text is a miss.
 *
 * Shared by every verifier thread (the checks run on the workers): one
 * mutex, held only to find, copy or insert an entry, never while parsing.
 * A hit hands out its own reference to the EVP_PKEY (EVP_PKEY_up_ref),
 * which dkim_key_clear() drops as usual; an evicted entry drops the
 * cache's reference only, and OpenSSL 3 lets several threads verify with
 * one key at once.  Bounded: KC_SLOTS entries of at most KC_TEXT_MAX
 * octets of record text each, least recently used out first.  Only keys
 * that parse (DKIM_PASS, revoked ones included) are kept; a record in
 * error is parsed again each time (cheap: it fails early or is rare).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "mailauth/dkim_int.h"
#include "util/util.h"

#define KC_SLOTS    64
#define KC_TEXT_MAX 4096 /* an RSA-4096 record is under 800 octets */

struct kc_ent {
	char *text; /* NULL: free slot */
	size_t len;
	uint64_t hash, used;
	struct dkim_key key; /* the cache's reference to key.pkey */
};

static pthread_mutex_t kc_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kc_ent kc[KC_SLOTS];
static uint64_t kc_tick, kc_hits, kc_misses;

static uint64_t
kc_hash(const char *p, size_t len)
{
	uint64_t h = 14695981039346656037u;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)p[i]) * 1099511628211u;
	return h;
}

static struct kc_ent *
kc_find(const char *txt, size_t len, uint64_t h)
{
	for (size_t i = 0; i < KC_SLOTS; i++)
		if (kc[i].text != NULL && kc[i].hash == h && kc[i].len == len &&
		    memcmp(kc[i].text, txt, len) == 0)
			return &kc[i];
	return NULL;
}

/* A copy of e's key with its own reference; false if OpenSSL refuses. */
static bool
kc_copy(const struct kc_ent *e, struct dkim_key *out)
{
	if (e->key.pkey != NULL && EVP_PKEY_up_ref(e->key.pkey) != 1)
		return false;
	*out = e->key;
	return true;
}

static void
kc_drop(struct kc_ent *e)
{
	free(e->text);
	dkim_key_clear(&e->key);
	memset(e, 0, sizeof(*e));
}

/* Keep a copy of k (a fresh parse of txt) unless an equal one is kept. */
static void
kc_insert(const char *txt, size_t len, uint64_t h, const struct dkim_key *k)
{
	struct kc_ent *victim = &kc[0];

	if (kc_find(txt, len, h) != NULL)
		return;
	for (size_t i = 0; i < KC_SLOTS; i++) {
		if (kc[i].text == NULL) {
			victim = &kc[i];
			break;
		}
		if (kc[i].used < victim->used)
			victim = &kc[i];
	}
	if (victim->text != NULL)
		kc_drop(victim);
	if (k->pkey != NULL && EVP_PKEY_up_ref(k->pkey) != 1)
		return;
	victim->text = xmalloc(len + 1);
	memcpy(victim->text, txt, len);
	victim->text[len] = '\0';
	victim->len = len;
	victim->hash = h;
	victim->used = ++kc_tick;
	victim->key = *k;
}

enum dkim_result
dkim_key_parse_cached(
    const char *txt, size_t len, struct dkim_key *out, const char **why)
{
	uint64_t h;
	struct kc_ent *e;
	enum dkim_result r;
	bool hit = false;

	if (len > KC_TEXT_MAX)
		return dkim_key_parse(txt, len, out, why);
	h = kc_hash(txt, len);
	if (pthread_mutex_lock(&kc_lock) != 0)
		panic("event=dkim_keycache error=lock");
	if ((e = kc_find(txt, len, h)) != NULL && kc_copy(e, out)) {
		e->used = ++kc_tick;
		kc_hits++;
		hit = true;
	} else {
		kc_misses++;
	}
	pthread_mutex_unlock(&kc_lock);
	if (hit) {
		*why = "";
		return DKIM_PASS;
	}
	r = dkim_key_parse(txt, len, out, why);
	if (r != DKIM_PASS)
		return r;
	if (pthread_mutex_lock(&kc_lock) != 0)
		panic("event=dkim_keycache error=lock");
	kc_insert(txt, len, h, out);
	pthread_mutex_unlock(&kc_lock);
	return r;
}

void
dkim_keycache_stats(uint64_t *hits, uint64_t *misses, size_t *entries)
{
	size_t n = 0;

	if (pthread_mutex_lock(&kc_lock) != 0)
		panic("event=dkim_keycache error=lock");
	for (size_t i = 0; i < KC_SLOTS; i++)
		n += kc[i].text != NULL;
	*hits = kc_hits;
	*misses = kc_misses;
	*entries = n;
	pthread_mutex_unlock(&kc_lock);
}

void
dkim_keycache_flush(void)
{
	if (pthread_mutex_lock(&kc_lock) != 0)
		panic("event=dkim_keycache error=lock");
	for (size_t i = 0; i < KC_SLOTS; i++)
		if (kc[i].text != NULL)
			kc_drop(&kc[i]);
	pthread_mutex_unlock(&kc_lock);
}
