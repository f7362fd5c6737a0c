/*
 * sts: MTA-STS (RFC 8461), the pure half: the `_mta-sts` TXT record
 * (3.1), the policy file (3.2) and the MX host match (3.4).  No I/O, no
 * clock: the fetch (sts/fetch.h), the durable cache (sts/cache.h) and
 * the loop's use of them (deliver/mtasts.h) are the shell around it.
 *
 * Owns: struct sts_policy and its parsers.  May call: util.  Pure
 * (libcore.a); every function is thread-safe and fed untrusted input
 * (DNS answers, HTTPS bodies, the cache files): each has a unit-test
 * table (tests/unit/test_sts.c) and a libFuzzer harness (fuzz/fuzz_sts.c).
 */
#ifndef TERN_STS_H
#define TERN_STS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

#define STS_ID_MAX	32	  /* sts-id: 1*32(ALPHA / DIGIT) (3.1) */
#define STS_POLICY_MAX	65536	  /* policy body octets (3.3: 64 KiB) */
#define STS_MAX_AGE_MAX 31557600u /* max_age ceiling, one year (3.2) */
#define STS_MX_MAX	32	  /* mx patterns kept; more: invalid */
#define STS_NAME_MAX	253	  /* a domain in text, no final dot */
#define STS_TXT_MAX	4096	  /* one TXT record, strings joined */

enum sts_mode { STS_MODE_NONE, STS_MODE_TESTING, STS_MODE_ENFORCE };

struct sts_policy {
	enum sts_mode mode;
	uint32_t max_age; /* seconds, at most STS_MAX_AGE_MAX (clamped) */
	size_t nmx;
	/* lower case; "*.example.net" for a leftmost-label wildcard */
	char mx[STS_MX_MAX][STS_NAME_MAX + 3];
};

/* One TXT record of `_mta-sts.DOMAIN`: its character-strings joined. */
struct sts_txt_rec {
	const char *s;
	size_t len;
};

enum sts_txt_status {
	STS_TXT_OK,	 /* one valid STSv1 record; its id is out */
	STS_TXT_NONE,	 /* no record starts with v=STSv1: no MTA-STS */
	STS_TXT_MANY,	 /* two or more start so: no MTA-STS (3.1) */
	STS_TXT_INVALID, /* the one record is not valid: no MTA-STS */
};

/*
 * One record (3.1's sts-text-record): 0 with its id in id_out (NUL
 * terminated), -1 when it does not parse (id_out is then "").  An id
 * given twice is refused: the record would say two things.
 */
int sts_txt_parse(const char *s, size_t len, char id_out[STS_ID_MAX + 1]);

/*
 * Every TXT record of the name: those that do not begin with "v=STSv1"
 * (followed by ";", a space, a tab or the end) are dropped; exactly one
 * must be left and parse (RFC 8461 3.1).
 */
enum sts_txt_status sts_txt_pick(
    const struct sts_txt_rec *recs, size_t n, char id_out[STS_ID_MAX + 1]);

/*
 * A policy body (3.2): lines ending in LF or CRLF, "key: value".  version
 * STSv1, mode and max_age are required, mx at least once unless mode is
 * none; a repeated key other than mx keeps its first value; unknown keys
 * (3.2's sts-policy-extension) are skipped; empty lines are skipped.
 * max_age above STS_MAX_AGE_MAX is cut to it.  0 with *out filled, or -1
 * with why in err (NUL terminated, cut to errlen): over STS_POLICY_MAX
 * octets, a NUL, a line that is no field, a malformed mx pattern, more
 * than STS_MX_MAX of them, a field missing.
 */
int sts_policy_parse(const char *s, size_t len, struct sts_policy *out,
    char *err, size_t errlen);

/*
 * Does pattern (an mx of a parsed policy) match host (an MX host name as
 * DNS gave it, any case, with or without the final dot)?  "*.b.c"
 * matches "a.b.c" but neither "b.c" nor "x.a.b.c" (3.4).
 */
bool sts_pattern_match(const char *pattern, const char *host);
/* Any mx pattern of p matches host. */
bool sts_mx_match(const struct sts_policy *p, const char *host);

/* "none", "testing", "enforce". */
const char *sts_mode_name(enum sts_mode m);

/*
 * The durable cache's file (docs/queue.md, "MTA-STS policy cache"): one
 * file per policy domain, text, its format version on the first line:
 *
 *   tern-mta-sts-cache 1
 *   domain example.net
 *   id 20240101T000000
 *   fetched 1796585645          (wall clock, seconds)
 *   expires 1797190445          (fetched + max_age)
 *   <empty line>
 *   the policy exactly as served
 *
 * A file of a newer version is refused, never read as this one.
 */
#define STS_CACHE_MAGIC	  "tern-mta-sts-cache"
#define STS_CACHE_VERSION 1
#define STS_CACHE_MAX	  (STS_POLICY_MAX + 1024) /* a file, octets */

struct sts_cache_rec {
	char domain[STS_NAME_MAX + 1]; /* lower case */
	char id[STS_ID_MAX + 1];
	int64_t fetched, expires;
	const char *text; /* the policy as served: encode reads it; decode
			     points it into its input */
	size_t len;
};

enum sts_cache_status {
	STS_CACHE_OK,
	STS_CACHE_BAD,	 /* not a cache file of any version: err says why */
	STS_CACHE_NEWER, /* written by a newer tern: refused */
};

/* Append r's file to out; 0, or -1 when out is full or r is not valid. */
int sts_cache_encode(const struct sts_cache_rec *r, struct buf *out) WUR;
/*
 * A cache file: its record (text and len pointing into s) and its policy
 * parsed into *pol.  err gets why on anything but STS_CACHE_OK.
 */
enum sts_cache_status sts_cache_decode(const char *s, size_t len,
    struct sts_cache_rec *out, struct sts_policy *pol, char *err,
    size_t errlen);
/* A policy domain as tern accepts one (LDH labels, at most 253 octets):
 * also what makes it safe as a cache file's name. */
bool sts_domain_ok(const char *s, size_t n);

#endif
