/*
 * dnsbl: the pure half of screening before the greeting (docs/screening.md):
 * the DNSBL/DNSWL site lists of screen.dnsbl and screen.dnswl, the query
 * name of a client address in a zone, what an answer means, and the
 * per-client verdict cache.
 *
 * Owns: struct dnsbl_site (parsed list items) and struct screen_cache.
 * May call: util.  Pure: no I/O, no clock (the caller passes the time),
 * any thread; the cache belongs to one thread (ternd's loop).
 *
 * An item is "zone[=a.b.c.d][*weight]": zone a domain name, the optional
 * address the only answer that counts (postscreen's "zone=127.0.0.2"),
 * weight an integer 1..100 (default 1).  DNSWL items take no weight: any
 * listing exempts the client.
 */
#ifndef TERN_SCREEN_DNSBL_H
#define TERN_SCREEN_DNSBL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNSBL_ZONE_MAX	 200 /* leaves room for 64 nibbles + dots of IPv6 */
#define DNSBL_SITES_MAX	 16  /* items per list */
#define DNSBL_WEIGHT_MAX 100
#define DNSBL_QNAME_MAX	 (DNSBL_ZONE_MAX + 64 + 2)

struct dnsbl_site {
	char zone[DNSBL_ZONE_MAX + 1]; /* lower case, no final dot */
	bool filter;		       /* only answer counts */
	uint8_t answer[4];
	int weight;
};

/* One item of s[0..n); allow_weight false for DNSWL.  0, or -1. */
int dnsbl_parse_item(
    const char *s, size_t n, bool allow_weight, struct dnsbl_site *out);
/* A comma (or space) separated list of items; NULL or "" is empty.
 * Returns the number parsed (<= max), or -1 with err filled. */
int dnsbl_parse_list(const char *csv, bool allow_weight, struct dnsbl_site *out,
    size_t max, char *err, size_t errlen);

/* The query name of the address ip (4 octets reversed, or 32 nibbles of
 * 16 reversed) in zone: "2.0.0.127.zone".  0, or -1 if it does not fit. */
int dnsbl_qname(const uint8_t *ip, size_t iplen, const char *zone, char *out,
    size_t outlen);

/* What one A record of a zone's answer says. */
enum dnsbl_answer {
	DNSBL_LISTED,	/* 127.0.0.0/8 (and the filter's address) */
	DNSBL_UNLISTED, /* another 127/8 code than the filter's */
	DNSBL_REFUSED,	/* 127.255.255.0/24: the list refused the query
			   (Spamhaus: public resolver, over quota) */
	DNSBL_BOGUS,	/* outside 127/8: a wildcarding resolver */
};
enum dnsbl_answer dnsbl_classify(
    const struct dnsbl_site *site, const uint8_t a[4]);

/*
 * The verdict cache: one entry per client key (an IPv4 address, or the
 * /64 of an IPv6 one), each kept ttl seconds, at most max entries (the
 * oldest goes first).  A failed entry keeps the reply text.
 */
#define SCREEN_KEY_LEN	16
#define SCREEN_TEXT_MAX 200
struct screen_cache;
struct screen_cache *screen_cache_new(size_t max, unsigned ttl);
void screen_cache_free(struct screen_cache *sc);
/* The key of a client address (4 or 16 octets): IPv6 cut to /64. */
void screen_cache_key(
    const uint8_t *ip, size_t iplen, uint8_t key[SCREEN_KEY_LEN]);
/* Record a verdict at now (seconds); text for a failure ("" for a pass). */
void screen_cache_put(struct screen_cache *sc,
    const uint8_t key[SCREEN_KEY_LEN], bool pass, const char *text,
    uint64_t now);
/* 1 cached pass, 0 cached failure (text copied), -1 none (or expired). */
int screen_cache_get(struct screen_cache *sc, const uint8_t key[SCREEN_KEY_LEN],
    uint64_t now, char *text, size_t textlen);
size_t screen_cache_count(const struct screen_cache *sc);
/* A new ttl (a reload) at now: entries kept, none beyond now + ttl. */
void screen_cache_set_ttl(struct screen_cache *sc, unsigned ttl, uint64_t now);
/* As screen_cache_put, the entry kept left seconds (at most the cache's
 * ttl; 0 keeps nothing): a verdict read back after a restart. */
void screen_cache_put_for(struct screen_cache *sc,
    const uint8_t key[SCREEN_KEY_LEN], bool pass, const char *text,
    uint64_t now, uint64_t left);
/* fn for every entry alive at now, oldest first, with its seconds left. */
typedef void (*screen_cache_fn)(const uint8_t key[SCREEN_KEY_LEN], bool pass,
    const char *text, uint64_t left, void *arg);
void screen_cache_each(
    const struct screen_cache *sc, uint64_t now, screen_cache_fn fn, void *arg);

/*
 * The verdicts across a restart (src/server/screen.c, STATE/screen.cache):
 * a first line SCREEN_FILE_MAGIC, then one line per verdict,
 * "KEY P|F EXPIRES TEXT": the key in 32 hex digits, P a pass or F a
 * refusal, EXPIRES in wall-clock seconds since the epoch, the refusal's
 * text (printable ASCII, may be empty).  A line is at most
 * SCREEN_LINE_MAX octets without its newline.
 */
#define SCREEN_FILE_MAGIC   "tern-screen-cache 1"
#define SCREEN_FILE_VERSION 1
/*
 * The version a first line (without its newline) names: N for
 * "tern-screen-cache N", 0 when it is not such a line (not our file: it
 * is ignored).  A version above SCREEN_FILE_VERSION was written by a newer
 * tern: ternd refuses to start rather than overwrite it (docs/formats.md).
 */
unsigned long screen_file_version(const char *line, size_t len);
#define SCREEN_LINE_MAX (2 * SCREEN_KEY_LEN + 3 + 19 + 1 + SCREEN_TEXT_MAX - 1)
/* 0, or -1 if it does not fit or the text is not printable. */
int screen_line_format(char *out, size_t outlen,
    const uint8_t key[SCREEN_KEY_LEN], bool pass, uint64_t expires,
    const char *text);
/* line[0..len) without its newline: 0, or -1 for anything else than
 * what screen_line_format makes (another program's line, a torn write). */
int screen_line_parse(const char *line, size_t len, uint8_t key[SCREEN_KEY_LEN],
    bool *pass, uint64_t *expires, char *text, size_t textlen);

#endif
