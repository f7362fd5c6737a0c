/*
 * mtasts: MTA-STS (RFC 8461) for outbound delivery, on ternd's loop: which
 * policy applies to a destination domain now (docs/tls-auth.md,
 * "MTA-STS").
 *
 * Owns: struct mtasts: the policies in memory (at most cache_max domains,
 * the least recently used forgotten first, file and all), the fetches
 * under way, the questions waiting for them, and a pool of
 * MTASTS_THREADS worker threads of its own for the HTTPS fetches and the
 * cache's files (sts/fetch.h, sts/cache.h), so a slow policy server never
 * holds a disk worker or the loop.  May call: sts, deliver/dns, workers,
 * util.  Event loop only; made by the queue manager (server/qmgr.c) and
 * asked by the destination pool (deliver/dest.c).
 *
 * mtasts_get(domain) looks up the `_mta-sts` TXT record (through the
 * resolver's cache, dns.cache_max_ttl), then:
 *  - a cached, unexpired policy answers at once; when the TXT's id differs
 *    from the cached one's, or half of max_age has gone, a refresh starts
 *    in the background (RFC 8461 5.1) and the cached policy keeps applying
 *    until the new one is in, or, if the policy server is down, until it
 *    expires;
 *  - no usable cached policy and a valid TXT: the question waits for the
 *    fetch (at most the fetch's deadline); a fetch that fails answers "no
 *    policy", with the RFC 8460 result-type to log;
 *  - no valid TXT (none, two or more, malformed, no answer) and no cached
 *    policy: no policy (RFC 8461 3.1), with a cached one: that one.
 */
#ifndef TERN_MTASTS_H
#define TERN_MTASTS_H

#include <stdbool.h>
#include <stddef.h>

#include "sts/sts.h"

struct event_base;
struct dns;
struct mtasts;

#define MTASTS_THREADS	     2
#define MTASTS_CACHE_DEFAULT 1000 /* sts.cache_entries */
#define MTASTS_FETCH_TIMEOUT 20	  /* seconds, sts.fetch_timeout */

struct mtasts_conf {
	const char *state_dir;	       /* the cache: STATE/mta-sts/ */
	const char *ca_file, *ca_path; /* tls.ca_file, tls.ca_path; NULL */
	unsigned cache_max;	       /* domains kept; 0: the default */
	unsigned fetch_timeout;	       /* seconds; 0: the default */
};

/* What applies to a domain now; valid during the callback only. */
struct mtasts_verdict {
	bool policy;		 /* a policy with mode testing or enforce */
	struct sts_policy pol;	 /* when policy */
	char id[STS_ID_MAX + 1]; /* its id, when policy */
	/* no policy because getting one failed: the RFC 8460 result-type
	   ("sts-policy-fetch-error", "sts-webpki-invalid",
	   "sts-policy-invalid") and why; else "" */
	const char *tlsrpt_result;
	char why[256];
};

typedef void (*mtasts_cb)(const struct mtasts_verdict *v, void *arg);

/*
 * Load STATE/mta-sts/ (a file of a newer format refuses: NULL with err),
 * start the worker threads.  Start-up only (it blocks on the files).
 */
struct mtasts *mtasts_new(struct event_base *base, struct dns *dns,
    const struct mtasts_conf *conf, char *err, size_t errlen);
/*
 * The trust store and deadline of the fetches started from now on
 * (conf's ca_file, ca_path and fetch_timeout; the rest is kept): a reload
 * (server/qmgr.c).  A fetch under way keeps its own copy, so no worker
 * reads what this changes.  Loop only.
 */
void mtasts_configure(struct mtasts *m, const struct mtasts_conf *conf);
/* Fetches under way are aborted (within about a second: libcurl's
 * progress callback) and waited for; questions still open are dropped.
 * mtasts_free(NULL) does nothing. */
void mtasts_free(struct mtasts *m);

/*
 * The policy of domain (lower case).  cb(verdict, arg) runs exactly once,
 * later, from the loop, unless mtasts_cancel(m, arg) or mtasts_free()
 * comes first.
 */
void mtasts_get(struct mtasts *m, const char *domain, mtasts_cb cb, void *arg);
/* ternd is stopping: fetches under way end within about a second
 * (libcurl's progress callback), later ones at once, as failures. */
void mtasts_stop(struct mtasts *m);
/* Forget every question whose arg is arg; returns how many. */
size_t mtasts_cancel(struct mtasts *m, void *arg);

/* Domains with a policy in memory now (tests, metrics). */
size_t mtasts_cached(const struct mtasts *m);

#endif
