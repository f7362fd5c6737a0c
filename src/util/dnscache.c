/*
 * dnscache: an answer's TTL from the raw message, and the bounded LRU
 * cache of parsed answers (interface and rules in dnscache.h).
 *
 * Layout: one allocation per entry (struct ent, then the records, then
 * the name and the records' octets), chained in a hash table of a fixed
 * power-of-two size and in one LRU list, most recent first.
 */
#include <stdlib.h>
#include <string.h>

#include "util/dnscache.h"
#include "util/lru.h"
#include "util/util.h"

#define NAME_MAX_LEN 253
#define HDR_LEN	     12
#define T_SOA	     6
#define RC_NOERROR   0
#define RC_NXDOMAIN  3

/* ---- the TTL of a raw answer ------------------------------------------ */

static uint16_t
get16(const unsigned char *p)
{
	return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static uint32_t
get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

bool
dns_skip_name(const unsigned char *msg, size_t len, size_t *off)
{
	size_t o = *off, total = 0;

	for (;;) {
		unsigned l;

		if (o >= len)
			return false;
		l = msg[o];
		if ((l & 0xC0) == 0xC0) {
			if (len - o < 2)
				return false;
			*off = o + 2;
			return true;
		}
		if ((l & 0xC0) != 0)
			return false; /* 01 and 10 are reserved */
		o++;
		if (l == 0) {
			*off = o;
			return true;
		}
		total += l + 1;
		if (total > 255 || len - o < l)
			return false;
		o += l;
	}
}

/* One resource record at *off: its type and TTL; rdata's offset and length. */
struct rr_view {
	uint16_t type;
	uint32_t ttl;
	size_t rdoff, rdlen;
};

static bool
read_rr(const unsigned char *msg, size_t len, size_t *off, struct rr_view *rr)
{
	size_t o = *off;

	if (!dns_skip_name(msg, len, &o) || len - o < 10)
		return false;
	rr->type = get16(msg + o);
	/* RFC 2181 8: a TTL with its top bit set is read as 0 */
	rr->ttl = get32(msg + o + 4);
	if (rr->ttl > 0x7FFFFFFFu)
		rr->ttl = 0;
	rr->rdlen = get16(msg + o + 8);
	o += 10;
	if (len - o < rr->rdlen)
		return false;
	rr->rdoff = o;
	*off = o + rr->rdlen;
	return true;
}

static uint32_t
min32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

/* The negative TTL from the authority section, or false without an SOA. */
static bool
negative_ttl(const unsigned char *msg, size_t len, size_t off, unsigned ns,
    uint32_t *ttl)
{
	for (unsigned i = 0; i < ns; i++) {
		struct rr_view rr;
		size_t r;

		if (!read_rr(msg, len, &off, &rr))
			return false;
		if (rr.type != T_SOA)
			continue;
		/* MNAME, RNAME, then SERIAL REFRESH RETRY EXPIRE MINIMUM */
		r = rr.rdoff;
		if (!dns_skip_name(msg, rr.rdoff + rr.rdlen, &r) ||
		    !dns_skip_name(msg, rr.rdoff + rr.rdlen, &r) ||
		    rr.rdoff + rr.rdlen - r != 20)
			return false;
		*ttl = min32(rr.ttl, get32(msg + r + 16));
		if (*ttl > 0x7FFFFFFFu)
			*ttl = 0;
		return true;
	}
	return false;
}

enum dnsmsg_ttl_status
dnsmsg_ttl(const unsigned char *msg, size_t len, uint32_t *ttl)
{
	unsigned qd, an, ns, rcode;
	size_t off = HDR_LEN;
	uint32_t t = UINT32_MAX;

	*ttl = 0;
	if (msg == NULL || len < HDR_LEN)
		return DNSMSG_TTL_NONE;
	/* a response (QR), not truncated (TC) */
	if (!(msg[2] & 0x80) || (msg[2] & 0x02))
		return DNSMSG_TTL_NONE;
	rcode = msg[3] & 0x0F;
	qd = get16(msg + 4);
	an = get16(msg + 6);
	ns = get16(msg + 8);
	if (rcode != RC_NOERROR && rcode != RC_NXDOMAIN)
		return DNSMSG_TTL_NONE;
	for (unsigned i = 0; i < qd; i++) {
		if (!dns_skip_name(msg, len, &off) || len - off < 4)
			return DNSMSG_TTL_NONE;
		off += 4;
	}
	if (rcode == RC_NOERROR && an > 0) {
		for (unsigned i = 0; i < an; i++) {
			struct rr_view rr;

			if (!read_rr(msg, len, &off, &rr))
				return DNSMSG_TTL_NONE;
			t = min32(t, rr.ttl);
		}
		*ttl = t;
		return DNSMSG_TTL_POSITIVE;
	}
	/* NXDOMAIN may still carry a CNAME chain in the answer section */
	for (unsigned i = 0; i < an; i++) {
		struct rr_view rr;

		if (!read_rr(msg, len, &off, &rr))
			return DNSMSG_TTL_NONE;
		t = min32(t, rr.ttl);
	}
	if (!negative_ttl(msg, len, off, ns, ttl))
		return DNSMSG_TTL_NONE;
	*ttl = min32(*ttl, t);
	return DNSMSG_TTL_NEGATIVE;
}

/* ---- the cache ---------------------------------------------------------- */

struct ent {
	struct ent *hnext;   /* hash chain */
	struct lru_link lru; /* LRU list, most recent first */
	uint64_t expires;    /* seconds, the caller's clock */
	uint32_t hash;
	int type;
	size_t namelen, cost;
	struct dnscache_ans ans; /* rrs points just after this struct */
	char *name;		 /* lower case, no final dot */
};

struct dnscache {
	size_t max_entries, max_bytes;
	size_t nbuckets; /* a power of two */
	struct ent **buckets;
	struct lru_list lru;
	struct dnscache_stats st;
};

/* Lower-cased name without its final dot; false when too long. */
static bool
key_name(const char *name, char *out, size_t *lenp)
{
	size_t len = strlen(name);

	if (len > 1 && name[len - 1] == '.')
		len--;
	if (len > NAME_MAX_LEN)
		return false;
	for (size_t i = 0; i < len; i++) {
		char ch = name[i];

		out[i] = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
	}
	out[len] = '\0';
	*lenp = len;
	return true;
}

/* FNV-1a over the type and the key name. */
static uint32_t
key_hash(int type, const char *name, size_t len)
{
	uint32_t h = 2166136261u;

	h = (h ^ (uint32_t)(type & 0xFF)) * 16777619u;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)name[i]) * 16777619u;
	return h;
}

struct dnscache *
dnscache_new(size_t max_entries, size_t max_bytes)
{
	struct dnscache *c = xcalloc(1, sizeof(*c));

	c->max_entries = max_entries > 0 ? max_entries : 1;
	c->max_bytes = max_bytes > 0 ? max_bytes : 1;
	c->nbuckets = 16;
	while (c->nbuckets < c->max_entries && c->nbuckets < (1u << 20))
		c->nbuckets <<= 1;
	c->buckets = xcalloc(c->nbuckets, sizeof(*c->buckets));
	return c;
}

static void
ent_drop(struct dnscache *c, struct ent *e)
{
	struct ent **pp = &c->buckets[e->hash & (c->nbuckets - 1)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	lru_unlink(&c->lru, &e->lru);
	c->st.entries--;
	c->st.bytes -= e->cost;
	free(e);
}

void
dnscache_free(struct dnscache *c)
{
	if (c == NULL)
		return;
	while (c->lru.head != NULL)
		ent_drop(c, LRU_ENTRY(c->lru.head, struct ent, lru));
	free(c->buckets);
	free(c);
}

static struct ent *
ent_find(
    struct dnscache *c, int type, const char *key, size_t len, uint32_t hash)
{
	for (struct ent *e = c->buckets[hash & (c->nbuckets - 1)]; e != NULL;
	     e = e->hnext)
		if (e->hash == hash && e->type == type && e->namelen == len &&
		    memcmp(e->name, key, len) == 0)
			return e;
	return NULL;
}

bool
dnscache_get(struct dnscache *c, int type, const char *name, uint64_t now,
    struct dnscache_ans *out)
{
	char key[NAME_MAX_LEN + 1];
	size_t len;
	uint32_t hash;
	struct ent *e;

	if (!key_name(name, key, &len))
		return false;
	hash = key_hash(type, key, len);
	e = ent_find(c, type, key, len, hash);
	if (e != NULL && now >= e->expires) {
		ent_drop(c, e);
		e = NULL;
	}
	if (e == NULL) {
		c->st.misses++;
		return false;
	}
	lru_touch(&c->lru, &e->lru);
	*out = e->ans;
	c->st.hits++;
	return true;
}

bool
dnscache_put(struct dnscache *c, int type, const char *name, uint64_t now,
    uint32_t ttl, const struct dnscache_ans *ans)
{
	char key[NAME_MAX_LEN + 1];
	size_t len, data = 0, cost;
	uint32_t hash;
	struct ent *e;
	struct dnscache_rr *rrs;
	char *p;

	if (ttl == 0 || !key_name(name, key, &len))
		return false;
	for (size_t i = 0; i < ans->n; i++) {
		if (ans->rrs[i].len > c->max_bytes)
			return false;
		data += ans->rrs[i].len;
	}
	if (ans->n > c->max_bytes / sizeof(*rrs))
		return false;
	cost = sizeof(*e) + ans->n * sizeof(*rrs) + len + 1;
	if (data > c->max_bytes || cost > c->max_bytes - data)
		return false;
	cost += data;
	hash = key_hash(type, key, len);
	if ((e = ent_find(c, type, key, len, hash)) != NULL)
		ent_drop(c, e);
	while (c->lru.tail != NULL && (c->st.entries >= c->max_entries ||
					  c->st.bytes + cost > c->max_bytes)) {
		ent_drop(c, LRU_ENTRY(c->lru.tail, struct ent, lru));
		c->st.evictions++;
	}
	e = xmalloc(cost);
	memset(e, 0, sizeof(*e));
	rrs = (struct dnscache_rr *)(e + 1);
	p = (char *)(rrs + ans->n);
	e->name = p;
	memcpy(p, key, len + 1);
	p += len + 1;
	for (size_t i = 0; i < ans->n; i++) {
		rrs[i].data = p;
		rrs[i].len = ans->rrs[i].len;
		rrs[i].cont = ans->rrs[i].cont;
		if (ans->rrs[i].len > 0)
			memcpy(p, ans->rrs[i].data, ans->rrs[i].len);
		p += ans->rrs[i].len;
	}
	e->ans = (struct dnscache_ans){ans->rcode, ans->reason, ans->n, rrs};
	e->expires = now + ttl;
	e->hash = hash;
	e->type = type;
	e->namelen = len;
	e->cost = cost;
	e->hnext = c->buckets[hash & (c->nbuckets - 1)];
	c->buckets[hash & (c->nbuckets - 1)] = e;
	lru_push(&c->lru, &e->lru);
	c->st.entries++;
	c->st.bytes += cost;
	c->st.stores++;
	return true;
}

void
dnscache_stats(const struct dnscache *c, struct dnscache_stats *out)
{
	*out = c->st;
}
