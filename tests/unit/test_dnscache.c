/*
 * Unit tests for src/util/dnscache.c: the TTL of raw DNS answers (a table
 * of messages built here, each also cut at every length, guarded against
 * over-reads) and the bounded LRU cache.
 */
#include <stdint.h>
#include <string.h>

#include "util/dnscache.h"
#include "util/util.h"

#include "t.h"

/* ---- a small DNS message builder ------------------------------------------
 */

struct msg {
	unsigned char b[1024];
	size_t n;
};

static void
put8(struct msg *m, unsigned v)
{
	if (m->n < sizeof(m->b))
		m->b[m->n++] = (unsigned char)v;
}

static void
put16(struct msg *m, unsigned v)
{
	put8(m, v >> 8 & 0xFF);
	put8(m, v & 0xFF);
}

static void
put32(struct msg *m, uint32_t v)
{
	put16(m, v >> 16);
	put16(m, v & 0xFFFF);
}

/* name as labels; "@" is a pointer to the question's name (offset 12) */
static void
put_name(struct msg *m, const char *name)
{
	if (strcmp(name, "@") == 0) {
		put16(m, 0xC00C);
		return;
	}
	while (*name != '\0') {
		const char *dot = strchr(name, '.');
		size_t l = dot != NULL ? (size_t)(dot - name) : strlen(name);

		put8(m, (unsigned)l);
		for (size_t i = 0; i < l; i++)
			put8(m, (unsigned char)name[i]);
		name += l + (dot != NULL);
	}
	put8(m, 0);
}

/* flags: the third and fourth header octets (QR, TC, RCODE...) */
static void
header(struct msg *m, unsigned flags, unsigned an, unsigned ns)
{
	m->n = 0;
	put16(m, 0x1234);
	put16(m, flags);
	put16(m, 1);
	put16(m, an);
	put16(m, ns);
	put16(m, 0);
	put_name(m, "a.test");
	put16(m, 16);
	put16(m, 1);
}

static void
rr(struct msg *m, const char *name, unsigned type, uint32_t ttl,
    const char *rdata, size_t rdlen)
{
	put_name(m, name);
	put16(m, type);
	put16(m, 1);
	put32(m, ttl);
	put16(m, (unsigned)rdlen);
	for (size_t i = 0; i < rdlen; i++)
		put8(m, (unsigned char)rdata[i]);
}

/* an SOA record: names as labels, then the five counters */
static void
soa(struct msg *m, uint32_t ttl, uint32_t minimum, int extra)
{
	struct msg r = {.n = 0};

	put_name(&r, "ns.test");
	put_name(&r, "host.test");
	for (int i = 0; i < 4; i++)
		put32(&r, 1000);
	put32(&r, minimum);
	for (int i = 0; i < extra; i++)
		put8(&r, 0);
	rr(m, "test", 6, ttl, (const char *)r.b, r.n);
}

#define QR    0x8000
#define TC    0x0200
#define NXDOM 3

struct ttl_case {
	const char *name;
	enum dnsmsg_ttl_status want;
	uint32_t ttl;
	struct msg m;
};

static struct ttl_case cases[16];
static size_t ncases;

static struct msg *
add(const char *name, enum dnsmsg_ttl_status want, uint32_t ttl)
{
	struct ttl_case *c = &cases[ncases++];

	c->name = name;
	c->want = want;
	c->ttl = ttl;
	return &c->m;
}

static void
build_cases(void)
{
	struct msg *m;

	m = add("one TXT record", DNSMSG_TTL_POSITIVE, 300);
	header(m, QR, 1, 0);
	rr(m, "a.test", 16, 300, "\x05hello", 6);

	m = add("two records: the smaller TTL", DNSMSG_TTL_POSITIVE, 60);
	header(m, QR, 2, 0);
	rr(m, "@", 16, 300, "\x01x", 2);
	rr(m, "@", 16, 60, "\x01y", 2);

	m = add("a CNAME chain: its weakest link", DNSMSG_TTL_POSITIVE, 30);
	header(m, QR, 2, 0);
	rr(m, "@", 5, 30,
	    "\x01"
	    "b\x04test\x00",
	    8);
	rr(m, "b.test", 16, 600, "\x01y", 2);

	m = add("TTL with the top bit set is 0", DNSMSG_TTL_POSITIVE, 0);
	header(m, QR, 1, 0);
	rr(m, "@", 16, 0x80000010u, "\x01x", 2);

	m = add("NXDOMAIN: min(SOA TTL, MINIMUM)", DNSMSG_TTL_NEGATIVE, 120);
	header(m, QR | NXDOM, 0, 1);
	soa(m, 900, 120, 0);

	m = add("NODATA: min(SOA TTL, MINIMUM)", DNSMSG_TTL_NEGATIVE, 50);
	header(m, QR, 0, 1);
	soa(m, 50, 3600, 0);

	m = add("NODATA after an NS record", DNSMSG_TTL_NEGATIVE, 70);
	header(m, QR, 0, 2);
	rr(m, "test", 2, 10, "\x02ns\x04test\x00", 9);
	soa(m, 70, 3600, 0);

	m = add("NXDOMAIN without SOA: not cacheable", DNSMSG_TTL_NONE, 0);
	header(m, QR | NXDOM, 0, 0);

	m = add("SOA with a bad length", DNSMSG_TTL_NONE, 0);
	header(m, QR | NXDOM, 0, 1);
	soa(m, 900, 120, 1);

	m = add("SERVFAIL", DNSMSG_TTL_NONE, 0);
	header(m, QR | 2, 1, 0);
	rr(m, "@", 16, 300, "\x01x", 2);

	m = add("truncated (TC)", DNSMSG_TTL_NONE, 0);
	header(m, QR | TC, 1, 0);
	rr(m, "@", 16, 300, "\x01x", 2);

	m = add("a query, not a response", DNSMSG_TTL_NONE, 0);
	header(m, 0, 1, 0);
	rr(m, "@", 16, 300, "\x01x", 2);

	m = add("a reserved label type", DNSMSG_TTL_NONE, 0);
	header(m, QR, 1, 0);
	put8(m, 0x80);
	put8(m, 0);

	m = add("more answers counted than present", DNSMSG_TTL_NONE, 0);
	header(m, QR, 3, 0);
	rr(m, "@", 16, 300, "\x01x", 2);
}

static void
test_ttl(void)
{
	build_cases();
	for (size_t i = 0; i < ncases; i++) {
		const struct ttl_case *c = &cases[i];
		void *map;
		size_t maplen;
		uint32_t ttl = 12345;
		const unsigned char *g;

		t_case(c->name);
		g = (const unsigned char *)t_guard(
		    c->m.b, c->m.n, &map, &maplen);
		T_CHECK_INT(dnsmsg_ttl(g, c->m.n, &ttl), c->want);
		T_CHECK_INT(ttl, c->ttl);
		t_unguard(map, maplen);
		/* every prefix: no over-read, nothing cacheable but the whole
		 * message (its counts name records no prefix holds whole) */
		for (size_t n = 0; n < c->m.n; n++) {
			g = (const unsigned char *)t_guard(
			    c->m.b, n, &map, &maplen);
			T_CHECK(dnsmsg_ttl(g, n, &ttl) == DNSMSG_TTL_NONE);
			t_unguard(map, maplen);
		}
	}
	t_case("NULL and short input");
	{
		uint32_t ttl;

		T_CHECK_INT(dnsmsg_ttl(NULL, 0, &ttl), DNSMSG_TTL_NONE);
		T_CHECK_INT(
		    dnsmsg_ttl((const unsigned char *)"\x12\x34\x80", 3, &ttl),
		    DNSMSG_TTL_NONE);
	}
}

/* ---- the cache ----------------------------------------------------------- */

static struct dnscache_ans
one(const char *text, struct dnscache_rr *r)
{
	*r = (struct dnscache_rr){text, strlen(text), false};
	return (struct dnscache_ans){0, 0, 1, r};
}

static bool
has(struct dnscache *c, int type, const char *name, uint64_t now,
    const char *want)
{
	struct dnscache_ans a;

	if (!dnscache_get(c, type, name, now, &a))
		return false;
	return want == NULL ||
	       (a.n == 1 && a.rrs[0].len == strlen(want) &&
		   memcmp(a.rrs[0].data, want, a.rrs[0].len) == 0);
}

static void
test_cache(void)
{
	struct dnscache *c = dnscache_new(2, 1 << 20);
	struct dnscache_rr r;
	struct dnscache_ans a;
	struct dnscache_stats st;
	char text[16] = "v=spf1 -all";

	t_case("put and get: no case, no final dot, a copy");
	a = one(text, &r);
	T_CHECK(dnscache_put(c, 16, "Spf.Example.", 100, 60, &a));
	text[0] = 'X';
	T_CHECK(has(c, 16, "spf.example", 100, "v=spf1 -all"));
	T_CHECK(has(c, 16, "SPF.EXAMPLE.", 159, "v=spf1 -all"));

	t_case("keyed by type");
	T_CHECK(!has(c, 1, "spf.example", 100, NULL));

	t_case("expires after its TTL");
	T_CHECK(!has(c, 16, "spf.example", 160, NULL));
	dnscache_stats(c, &st);
	T_CHECK_INT(st.entries, 0);
	T_CHECK_INT(st.bytes, 0);

	t_case("TTL 0 is not stored");
	T_CHECK(!dnscache_put(c, 16, "zero.example", 100, 0, &a));
	T_CHECK(!has(c, 16, "zero.example", 100, NULL));

	t_case("a negative answer: no records");
	a = (struct dnscache_ans){2, 7, 0, NULL};
	T_CHECK(dnscache_put(c, 16, "nx.example", 100, 30, &a));
	T_CHECK(dnscache_get(c, 16, "nx.example", 110, &a));
	T_CHECK(a.rcode == 2 && a.reason == 7 && a.n == 0);

	t_case("replaced, not duplicated");
	a = one("first", &r);
	T_CHECK(dnscache_put(c, 16, "r.example", 100, 30, &a));
	a = one("second", &r);
	T_CHECK(dnscache_put(c, 16, "R.example", 100, 30, &a));
	T_CHECK(has(c, 16, "r.example", 101, "second"));
	dnscache_stats(c, &st);
	T_CHECK_INT(st.entries, 2);

	t_case("entries bound: the least recently used goes");
	T_CHECK(has(c, 16, "nx.example", 101, NULL)); /* r is now the LRU */
	a = one("third", &r);
	T_CHECK(dnscache_put(c, 16, "t.example", 101, 30, &a));
	T_CHECK(!has(c, 16, "r.example", 101, NULL));
	T_CHECK(has(c, 16, "nx.example", 101, NULL));
	T_CHECK(has(c, 16, "t.example", 101, "third"));
	dnscache_stats(c, &st);
	T_CHECK_INT(st.evictions, 1);
	dnscache_free(c);

	t_case("bytes bound");
	c = dnscache_new(100, 600);
	{
		char big[200];
		int kept = 0;

		memset(big, 'k', sizeof(big));
		r = (struct dnscache_rr){big, sizeof(big), false};
		a = (struct dnscache_ans){0, 0, 1, &r};
		T_CHECK(dnscache_put(c, 16, "b1.example", 0, 30, &a));
		T_CHECK(dnscache_put(c, 16, "b2.example", 0, 30, &a));
		T_CHECK(dnscache_put(c, 16, "b3.example", 0, 30, &a));
		dnscache_stats(c, &st);
		T_CHECK(st.bytes <= 600);
		kept = has(c, 16, "b1.example", 0, NULL) +
		       has(c, 16, "b2.example", 0, NULL) +
		       has(c, 16, "b3.example", 0, NULL);
		T_CHECK(kept >= 1 && kept < 3);
		T_CHECK(has(c, 16, "b3.example", 0, NULL));

		t_case("an answer larger than the cache is not stored");
		r.len = 700;
		T_CHECK(!dnscache_put(c, 16, "huge.example", 0, 30, &a));
	}
	dnscache_free(c);

	t_case("a name over 253 octets is not stored");
	c = dnscache_new(4, 1 << 16);
	{
		char name[300];

		memset(name, 'a', sizeof(name) - 1);
		name[sizeof(name) - 1] = '\0';
		a = one("x", &r);
		T_CHECK(!dnscache_put(c, 16, name, 0, 30, &a));
		T_CHECK(!has(c, 16, name, 0, NULL));
	}
	dnscache_free(c);
	dnscache_free(NULL);
}

int
main(void)
{
	log_init("test_dnscache", LOG_LEVEL_ERR);
	T_RUN(test_ttl);
	T_RUN(test_cache);
	return t_summary();
}
