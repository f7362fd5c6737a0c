/*
 * dnscache: the TTL of a raw DNS answer, and a bounded cache of parsed
 * answers keyed by (query type, lower-cased name).  Pure: no I/O, the
 * clock is the caller's (seconds of CLOCK_MONOTONIC), so both are unit
 * tested and the parser fuzzed (fuzz/fuzz_dnsttl.c).
 *
 * Owns: struct dnscache.  May call: util.  Asked by deliver/dns.c, which
 * keeps one per resolver (one event loop, one thread: no lock).
 *
 * dnsmsg_ttl() reads how long an answer may be kept (RFC 1035 4.1,
 * RFC 2181 8, RFC 2308 5):
 *   - NOERROR with records in the answer section: the smallest TTL of
 *     them all (CNAMEs included: the chain is no fresher than its
 *     weakest link);
 *   - NXDOMAIN, or NOERROR without answer records (NODATA): the
 *     negative TTL, the smaller of the authority section's SOA record TTL
 *     and its MINIMUM field; without an SOA the answer is not cacheable
 *     (RFC 2308 5);
 *   - any other RCODE, a truncated message, a malformed one: not
 *     cacheable.
 * It never reads outside msg[0..len); names are skipped (labels or one
 * compression pointer), never followed.
 *
 * The cache is bounded by entries and by bytes (each entry costs its
 * name, records and bookkeeping), evicts the least recently used entry,
 * and drops an entry once it expires.  A TTL of 0 is never stored.
 */
#ifndef TERN_DNSCACHE_H
#define TERN_DNSCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum dnsmsg_ttl_status {
	DNSMSG_TTL_POSITIVE, /* records: *ttl is their smallest TTL */
	DNSMSG_TTL_NEGATIVE, /* NXDOMAIN or NODATA with an SOA: *ttl */
	DNSMSG_TTL_NONE,     /* not cacheable (RCODE, no SOA, malformed) */
};

enum dnsmsg_ttl_status dnsmsg_ttl(
    const unsigned char *msg, size_t len, uint32_t *ttl);

/* One record of a cached answer (TXT: one character-string with cont
 * set when it continues the previous one's record). */
struct dnscache_rr {
	const void *data;
	size_t len;
	bool cont;
};

/* A cached answer: rcode and reason are the caller's codes, kept as
 * given; rrs point into the cache and are valid until the next call. */
struct dnscache_ans {
	int rcode;
	int reason;
	size_t n;
	const struct dnscache_rr *rrs;
};

struct dnscache_stats {
	uint64_t hits, misses, stores, evictions;
	size_t entries, bytes;
};

struct dnscache;

/* A cache of at most max_entries answers and max_bytes octets (both > 0). */
struct dnscache *dnscache_new(size_t max_entries, size_t max_bytes);
void dnscache_free(struct dnscache *c);

/* The answer for (type, name) if one is stored and unexpired at now;
 * name is matched without case and without its final dot. */
bool dnscache_get(struct dnscache *c, int type, const char *name, uint64_t now,
    struct dnscache_ans *out);

/*
 * Store an answer for ttl seconds from now, replacing any for the same
 * key; ttl 0, a name over 253 octets or an answer larger than the cache
 * stores nothing.  Returns true when stored.
 */
bool dnscache_put(struct dnscache *c, int type, const char *name, uint64_t now,
    uint32_t ttl, const struct dnscache_ans *ans);

void dnscache_stats(const struct dnscache *c, struct dnscache_stats *out);

/*
 * Skip the DNS name at *off in msg[0..len): labels, ended by the root or
 * one compression pointer (not followed).  false when it runs past len
 * or is malformed (a reserved label type, over 255 octets); *off is then
 * unchanged.  Shared by every walker of raw answers (and util/tlsa.c).
 */
bool dns_skip_name(const unsigned char *msg, size_t len, size_t *off);

#endif
