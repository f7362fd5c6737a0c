/*
 * sesscache: the client's TLS sessions, for resumption (sesscache.h).
 *
 * A hash table of entries (chained, SipHash-2-4 under a key drawn per
 * cache, so no peer's name can aim entries at one chain) and a list of
 * them from the most to the least recently used; past max_entries the
 * least recently used one is dropped.  Each entry holds one reference to
 * its SSL_SESSION.  An entry's expiry is fixed when it is stored: the
 * session's creation time plus the shortest of its timeout, its ticket's
 * lifetime hint (when the peer gave one) and the cache's cap.
 *
 * The key travels with the SSL as ex_data (struct sess_tag, freed with
 * the SSL): the new-session callback runs inside OpenSSL, where nothing
 * else says which peer and policy the session is for.
 *
 * Invariants: every entry is in its bucket and in the list exactly once;
 * n counts them; n <= max.
 */
#include <pthread.h>
#include <string.h>
#include <sys/random.h>

#include "tls/sesscache.h"
#include "util/clientkey.h"
#include "util/util.h"

#define SESS_BUCKETS 512

struct sess_ent {
	struct sess_ent *hnext;	      /* bucket chain */
	struct sess_ent *prev, *next; /* most recently used first */
	uint64_t hash;
	SSL_SESSION *sess;
	time_t expires;
	bool verified; /* made with a peer whose certificate verified */
	uint16_t port;
	unsigned policy;
	char addr[TLS_SESS_ADDR_MAX + 1];
	char name[TLS_SESS_NAME_MAX + 1];
};

struct tls_sess_cache {
	struct sess_ent *buckets[SESS_BUCKETS];
	struct sess_ent *head, *tail;
	size_t n, max;
	unsigned cap; /* seconds */
	uint8_t hkey[16];
};

/* What an SSL carries from tls_sess_cache_offer() to the callback. */
struct sess_tag {
	struct tls_sess_cache *cache;
	uint16_t port;
	unsigned policy;
	char addr[TLS_SESS_ADDR_MAX + 1];
	char name[TLS_SESS_NAME_MAX + 1];
};

/* ---- the SSL's tag --------------------------------------------------------
 */

static int tag_index = -1;
static pthread_once_t tag_once = PTHREAD_ONCE_INIT;

static void
tag_free(
    void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	free(ptr);
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

static void
lru_unlink(struct tls_sess_cache *c, struct sess_ent *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
}

static void
lru_push(struct tls_sess_cache *c, struct sess_ent *e)
{
	e->prev = NULL;
	e->next = c->head;
	if (c->head != NULL)
		c->head->prev = e;
	c->head = e;
	if (c->tail == NULL)
		c->tail = e;
}

static void
ent_drop(struct tls_sess_cache *c, struct sess_ent *e)
{
	struct sess_ent **pp = &c->buckets[e->hash % SESS_BUCKETS];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	lru_unlink(c, e);
	SSL_SESSION_free(e->sess);
	free(e);
	c->n--;
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

/* ---- the interface --------------------------------------------------------
 */

struct tls_sess_cache *
tls_sess_cache_new(size_t max_entries, unsigned max_lifetime)
{
	struct tls_sess_cache *c = xcalloc(1, sizeof(*c));

	c->max = max_entries > 0 ? max_entries : 1;
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
	while (c->head != NULL)
		ent_drop(c, c->head);
	free(c);
}

size_t
tls_sess_cache_count(const struct tls_sess_cache *c)
{
	return c->n;
}

void
tls_sess_cache_put(struct tls_sess_cache *c, const struct tls_sess_key *key,
    SSL_SESSION *sess, bool verified)
{
	struct sess_ent *e;
	uint64_t h;

	if (!key_fits(key) || sess == NULL || SSL_SESSION_up_ref(sess) != 1)
		return;
	h = key_hash(c, key);
	if ((e = ent_find(c, h, key)) != NULL) {
		/* the newest session of a peer replaces the older */
		SSL_SESSION_free(e->sess);
		lru_unlink(c, e);
	} else {
		if (c->n >= c->max)
			ent_drop(c, c->tail);
		e = xcalloc(1, sizeof(*e));
		e->hash = h;
		e->policy = key->policy;
		e->port = key->port;
		memcpy(e->name, key->name, strlen(key->name) + 1);
		memcpy(e->addr, key->addr, strlen(key->addr) + 1);
		e->hnext = c->buckets[h % SESS_BUCKETS];
		c->buckets[h % SESS_BUCKETS] = e;
		c->n++;
	}
	e->sess = sess;
	e->verified = verified;
	e->expires = sess_expiry(sess, c->cap);
	lru_push(c, e);
}

SSL_SESSION *
tls_sess_cache_get(struct tls_sess_cache *c, const struct tls_sess_key *key,
    bool need_verified, time_t now)
{
	struct sess_ent *e;

	if (!key_fits(key) || (e = ent_find(c, key_hash(c, key), key)) == NULL)
		return NULL;
	if (now >= e->expires || !SSL_SESSION_is_resumable(e->sess)) {
		ent_drop(c, e);
		return NULL;
	}
	/* never an unverified session where the peer must prove its name */
	if (need_verified && !e->verified)
		return NULL;
	lru_unlink(c, e);
	lru_push(c, e);
	return e->sess;
}

bool
tls_sess_cache_offer(struct tls_sess_cache *c, SSL *ssl,
    const struct tls_sess_key *key, bool need_verified, time_t now)
{
	struct sess_tag *t;
	SSL_SESSION *sess;

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
	sess = tls_sess_cache_get(c, key, need_verified, now);
	return sess != NULL && SSL_set_session(ssl, sess) == 1;
}

int
tls_sess_cache_on_new(SSL *ssl, SSL_SESSION *sess)
{
	const struct sess_tag *t = SSL_get_ex_data(ssl, tag_idx());
	struct tls_sess_key k;
	bool verified;

	if (t == NULL)
		return 0;
	/* the handshake that made it checked the chain and t->name (in
	   TLS 1.2 the callback runs before the handshake is marked done,
	   so the result is read here rather than through tls.h) */
	verified = SSL_SESSION_get0_peer(sess) != NULL &&
		   SSL_get_verify_result(ssl) == X509_V_OK;
	k.name = t->name;
	k.addr = t->addr;
	k.port = t->port;
	k.policy = t->policy;
	tls_sess_cache_put(t->cache, &k, sess, verified);
	/* put took its own reference: OpenSSL keeps the one it passed */
	return 0;
}
