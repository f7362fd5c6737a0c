/*
 * sesscache: the client's TLS sessions, for resumption (sesscache.h).
 *
 * A hash table of entries, one per peer and policy (chained, SipHash-2-4
 * under a key drawn per cache, so no peer's name can aim entries at one
 * chain), and a list of them from the most to the least recently used.
 * An entry holds up to TLS_SESS_PER_PEER sessions, oldest first, each
 * with one reference; a handshake takes the newest out.  Past max
 * sessions in all, the oldest of the least recently used peer goes.  A
 * session's expiry is fixed when it is stored: its creation time plus
 * the shortest of its timeout, its ticket's lifetime hint (when the peer
 * gave one) and the cache's cap.
 *
 * The key travels with the SSL as ex_data (struct sess_tag, freed with
 * the SSL, with the session it was offered): the new-session callback
 * runs inside OpenSSL, where nothing else says which peer and policy the
 * session is for.
 *
 * Invariants: every entry is in its bucket and in the list exactly once
 * and holds at least one session (an entry emptied by a take is freed);
 * nsess counts the sessions of all entries; nsess <= max.
 */
#include <pthread.h>
#include <string.h>
#include <sys/random.h>

#include "tls/sesscache.h"
#include "util/clientkey.h"
#include "util/lru.h"
#include "util/util.h"

#define SESS_BUCKETS 512

struct sess_item {
	SSL_SESSION *sess;
	time_t expires;
	bool verified; /* made with a peer whose certificate verified */
};

struct sess_ent {
	struct sess_ent *hnext; /* bucket chain */
	struct lru_link lru;	/* most recently used first */
	uint64_t hash;
	uint16_t port;
	unsigned policy;
	char addr[TLS_SESS_ADDR_MAX + 1];
	char name[TLS_SESS_NAME_MAX + 1];
	struct sess_item items[TLS_SESS_PER_PEER]; /* oldest first */
	unsigned n;
};

struct tls_sess_cache {
	struct sess_ent *buckets[SESS_BUCKETS];
	struct lru_list lru;
	size_t nsess, max;
	unsigned cap; /* seconds */
	uint8_t hkey[16];
};

/* What an SSL carries from tls_sess_cache_offer() to the callback and to
   tls_sess_cache_done(). */
struct sess_tag {
	struct tls_sess_cache *cache;
	uint16_t port;
	unsigned policy;
	char addr[TLS_SESS_ADDR_MAX + 1];
	char name[TLS_SESS_NAME_MAX + 1];
	struct sess_item offered; /* taken for this handshake (a reference) */
	bool got_new;		  /* the peer sent a session since */
};

/* ---- the SSL's tag --------------------------------------------------------
 */

static int tag_index = -1;
static pthread_once_t tag_once = PTHREAD_ONCE_INIT;

static void
tag_free(
    void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	struct sess_tag *t = ptr;

	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	if (t != NULL)
		SSL_SESSION_free(t->offered.sess);
	free(t);
}

static void
tag_index_make(void)
{
	tag_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, tag_free);
	if (tag_index < 0)
		panic("tls: SSL_get_ex_new_index failed");
}

static int
tag_idx(void)
{
	if (pthread_once(&tag_once, tag_index_make) != 0)
		panic("tls: pthread_once failed");
	return tag_index;
}

static void
tag_key(const struct sess_tag *t, struct tls_sess_key *k)
{
	k->name = t->name;
	k->addr = t->addr;
	k->port = t->port;
	k->policy = t->policy;
}

/* ---- entries --------------------------------------------------------------
 */

/* The key's fields, checked to fit; false if they do not. */
static bool
key_fits(const struct tls_sess_key *k)
{
	return k->name != NULL && k->addr != NULL &&
	       strlen(k->name) <= TLS_SESS_NAME_MAX &&
	       strlen(k->addr) <= TLS_SESS_ADDR_MAX;
}

static uint64_t
key_hash(const struct tls_sess_cache *c, const struct tls_sess_key *k)
{
	/* policy, port, name, NUL, addr: no two keys give the same bytes */
	uint8_t
	    b[sizeof(unsigned) + 2 + TLS_SESS_NAME_MAX + 1 + TLS_SESS_ADDR_MAX];
	size_t n = 0, ln = strlen(k->name), la = strlen(k->addr);

	memcpy(b, &k->policy, sizeof(k->policy));
	n += sizeof(k->policy);
	memcpy(b + n, &k->port, 2);
	n += 2;
	memcpy(b + n, k->name, ln + 1);
	n += ln + 1;
	memcpy(b + n, k->addr, la);
	n += la;
	return siphash24(c->hkey, b, n);
}

static bool
ent_is(const struct sess_ent *e, uint64_t h, const struct tls_sess_key *k)
{
	return e->hash == h && e->policy == k->policy && e->port == k->port &&
	       strcmp(e->name, k->name) == 0 && strcmp(e->addr, k->addr) == 0;
}

static struct sess_ent *
ent_find(
    const struct tls_sess_cache *c, uint64_t h, const struct tls_sess_key *k)
{
	struct sess_ent *e;

	for (e = c->buckets[h % SESS_BUCKETS]; e != NULL; e = e->hnext)
		if (ent_is(e, h, k))
			return e;
	return NULL;
}

static struct sess_ent *
ent_new(struct tls_sess_cache *c, uint64_t h, const struct tls_sess_key *k)
{
	struct sess_ent *e = xcalloc(1, sizeof(*e));

	e->hash = h;
	e->policy = k->policy;
	e->port = k->port;
	memcpy(e->name, k->name, strlen(k->name) + 1);
	memcpy(e->addr, k->addr, strlen(k->addr) + 1);
	e->hnext = c->buckets[h % SESS_BUCKETS];
	c->buckets[h % SESS_BUCKETS] = e;
	lru_push(&c->lru, &e->lru);
	return e;
}

static void
ent_free(struct tls_sess_cache *c, struct sess_ent *e)
{
	struct sess_ent **pp = &c->buckets[e->hash % SESS_BUCKETS];
	unsigned i;

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	lru_unlink(&c->lru, &e->lru);
	for (i = 0; i < e->n; i++)
		SSL_SESSION_free(e->items[i].sess);
	c->nsess -= e->n;
	free(e);
}

/* Item i out of e (the reference goes with it to the caller). */
static struct sess_item
item_take(struct tls_sess_cache *c, struct sess_ent *e, unsigned i)
{
	struct sess_item it = e->items[i];

	memmove(&e->items[i], &e->items[i + 1],
	    (e->n - i - 1) * sizeof(e->items[0]));
	e->n--;
	c->nsess--;
	return it;
}

/* Make room in e for one more session: its oldest goes when it has
   TLS_SESS_PER_PEER, and the oldest of the least recently used peer while
   the cache holds max. */
static void
room_for_one(struct tls_sess_cache *c, struct sess_ent *e)
{
	struct sess_ent *v;

	if (e->n == TLS_SESS_PER_PEER)
		SSL_SESSION_free(item_take(c, e, 0).sess);
	/* e was just made the most recently used: the tail is another
	   peer, or e alone (then it holds every session) */
	while (c->nsess >= c->max) {
		v = LRU_ENTRY(c->lru.tail, struct sess_ent, lru);
		if (v->n > 0)
			SSL_SESSION_free(item_take(c, v, 0).sess);
		if (v->n == 0 && v != e)
			ent_free(c, v);
	}
}

/*
 * When sess stops being offered: created + the shortest of its timeout,
 * its ticket's lifetime hint (TLS 1.3 servers say how long they take it,
 * RFC 8446 4.6.1) and the cap.
 */
static time_t
sess_expiry(const SSL_SESSION *sess, unsigned cap)
{
	uint64_t life = cap;
	long timeout = SSL_SESSION_get_timeout(sess);
	unsigned long hint = SSL_SESSION_get_ticket_lifetime_hint(sess);

	if (timeout >= 0 && (uint64_t)timeout < life)
		life = (uint64_t)timeout;
	if (hint > 0 && hint < life)
		life = hint;
	return (time_t)SSL_SESSION_get_time(sess) + (time_t)life;
}

/* Keep it (the reference goes to the cache) as the newest of k's. */
static void
item_put(
    struct tls_sess_cache *c, const struct tls_sess_key *k, struct sess_item it)
{
	uint64_t h = key_hash(c, k);
	struct sess_ent *e = ent_find(c, h, k);

	if (e == NULL)
		e = ent_new(c, h, k);
	else
		lru_touch(&c->lru, &e->lru);
	room_for_one(c, e);
	e->items[e->n++] = it;
	c->nsess++;
}

/* ---- the interface --------------------------------------------------------
 */

struct tls_sess_cache *
tls_sess_cache_new(size_t max_sessions, unsigned max_lifetime)
{
	struct tls_sess_cache *c = xcalloc(1, sizeof(*c));

	c->max = max_sessions > 0 ? max_sessions : 1;
	c->cap = max_lifetime;
	/* without randomness the table still works, only less evenly when
	   someone aims names at it */
	if (getrandom(c->hkey, sizeof(c->hkey), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(c->hkey))
		memset(c->hkey, 0x5a, sizeof(c->hkey));
	(void)tag_idx();
	return c;
}

void
tls_sess_cache_free(struct tls_sess_cache *c)
{
	if (c == NULL)
		return;
	while (c->lru.head != NULL)
		ent_free(c, LRU_ENTRY(c->lru.head, struct sess_ent, lru));
	free(c);
}

size_t
tls_sess_cache_count(const struct tls_sess_cache *c)
{
	return c->nsess;
}

void
tls_sess_cache_put(struct tls_sess_cache *c, const struct tls_sess_key *key,
    SSL_SESSION *sess, bool verified)
{
	struct sess_item it = {sess, 0, verified};

	if (!key_fits(key) || sess == NULL || SSL_SESSION_up_ref(sess) != 1)
		return;
	it.expires = sess_expiry(sess, c->cap);
	item_put(c, key, it);
}

/* The newest usable session of key, taken out; .sess NULL if none. */
static struct sess_item
sess_take(struct tls_sess_cache *c, const struct tls_sess_key *key,
    bool need_verified, time_t now)
{
	struct sess_item got = {NULL, 0, false};
	struct sess_ent *e;
	unsigned i;

	if (!key_fits(key) || (e = ent_find(c, key_hash(c, key), key)) == NULL)
		return got;
	for (i = e->n; i-- > 0;) {
		struct sess_item *it = &e->items[i];

		if (now >= it->expires || !SSL_SESSION_is_resumable(it->sess)) {
			SSL_SESSION_free(item_take(c, e, i).sess);
			continue;
		}
		/* never an unverified session where the peer must prove its
		   name */
		if (need_verified && !it->verified)
			continue;
		got = item_take(c, e, i);
		break;
	}
	/* an entry holds sessions, so there are never more entries than
	   sessions; the SSL's tag remembers the key for the next one */
	if (e->n == 0)
		ent_free(c, e);
	else
		lru_touch(&c->lru, &e->lru);
	return got;
}

SSL_SESSION *
tls_sess_cache_take(struct tls_sess_cache *c, const struct tls_sess_key *key,
    bool need_verified, time_t now)
{
	return sess_take(c, key, need_verified, now).sess;
}

bool
tls_sess_cache_offer(struct tls_sess_cache *c, SSL *ssl,
    const struct tls_sess_key *key, bool need_verified, time_t now)
{
	struct sess_tag *t;

	if (!key_fits(key))
		return false;
	t = xcalloc(1, sizeof(*t));
	t->cache = c;
	t->policy = key->policy;
	t->port = key->port;
	memcpy(t->name, key->name, strlen(key->name) + 1);
	memcpy(t->addr, key->addr, strlen(key->addr) + 1);
	if (SSL_set_ex_data(ssl, tag_idx(), t) != 1) {
		free(t);
		return false;
	}
	t->offered = sess_take(c, key, need_verified, now);
	return t->offered.sess != NULL &&
	       SSL_set_session(ssl, t->offered.sess) == 1;
}

void
tls_sess_cache_done(struct tls_sess_cache *c, SSL *ssl)
{
	struct sess_tag *t = SSL_get_ex_data(ssl, tag_idx());
	struct tls_sess_key k;

	if (t == NULL || t->cache != c || t->offered.sess == NULL)
		return;
	/* the peer took it and gave no newer one: a TLS 1.2 session serves
	   the next connection too (OpenSSL's client uses a TLS 1.3 ticket
	   once: it is marked not resumable by then) */
	if (SSL_session_reused(ssl) && !t->got_new &&
	    SSL_SESSION_is_resumable(t->offered.sess)) {
		tag_key(t, &k);
		item_put(c, &k, t->offered);
		t->offered.sess = NULL;
	}
}

int
tls_sess_cache_on_new(SSL *ssl, SSL_SESSION *sess)
{
	struct sess_tag *t = SSL_get_ex_data(ssl, tag_idx());
	struct tls_sess_key k;
	bool verified;

	if (t == NULL)
		return 0;
	/* the handshake that made it checked the chain and t->name (in
	   TLS 1.2 the callback runs before the handshake is marked done,
	   so the result is read here rather than through tls.h) */
	verified = SSL_SESSION_get0_peer(sess) != NULL &&
		   SSL_get_verify_result(ssl) == X509_V_OK;
	t->got_new = true;
	tag_key(t, &k);
	tls_sess_cache_put(t->cache, &k, sess, verified);
	/* put took its own reference: OpenSSL keeps the one it passed */
	return 0;
}
