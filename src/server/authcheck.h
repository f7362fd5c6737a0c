/*
 * authcheck: the end-of-data authentication of one received message, run
 * on the event loop and the worker pool: DKIM (RFC 6376) of up to
 * DKIM_SIG_CHECKED signatures and the DMARC policy lookup (RFC 7489
 * 6.6.3) and ARC (RFC 8617 5.2: the keys of the chain's signatures),
 * their DNS questions asked together through c-ares, then the hashing and
 * public-key operations of DKIM and ARC on one worker job.
 *
 * Owns: struct authcheck, its DNS queries (one per key, one for DMARC at
 * a time), its deadline and its worker job.  May call: mailauth, deliver
 * (dns), workers, util, libevent.  Used by connauth.c (docs/mailauth.md
 * says when).
 *
 * The DNS part is bounded by AUTHCHECK_TIMEOUT_MS: whatever is still
 * unanswered then is a temporary failure (dkim=temperror, a DMARC lookup
 * that ends in temperror, an ARC key counted as a temporary failure:
 * arc=fail with the outcome's temp set), never a fail.  The worker job then
 * runs to its end (it costs CPU only, bounded by the message size and five
 * keys). cb(ac, arg) runs once, from the loop, always after authcheck_start has
 * returned.  The message and the PSL must outlive the check, and
 * authcheck_free() may be called only when it is not running: before
 * the callback the caller must keep the check (connauth.c holds its
 * session like a worker job, c->job_running).
 */
#ifndef TERN_SERVER_AUTHCHECK_H
#define TERN_SERVER_AUTHCHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "mailauth/arc.h"
#include "mailauth/dkim.h"
#include "mailauth/dmarc.h"

struct event_base;
struct dns;
struct workers;
struct authcheck;

/* The DNS part of the check (keys and the policy, asked together). */
#define AUTHCHECK_TIMEOUT_MS 20000
/* TXT records kept per key name: the first that parses is used */
#define AUTHCHECK_KEY_RECORDS 8

struct authcheck_request {
	const char *msg; /* the message as received, outliving the check */
	size_t len;
	int64_t now;		 /* seconds, for x= */
	bool dkim;		 /* verify the DKIM signatures */
	bool arc;		 /* validate the ARC chain */
	const struct psl *psl;	 /* with from_domain: look up DMARC */
	const char *from_domain; /* NULL: no DMARC lookup (copied) */
};

typedef void (*authcheck_cb)(struct authcheck *ac, void *arg);

struct authcheck *authcheck_start(struct event_base *base, struct dns *dns,
    struct workers *w, const struct authcheck_request *req, authcheck_cb cb,
    void *arg);
/* The verifier (dkim_verify_count/result); NULL without req->dkim. */
const struct dkim_verify *authcheck_dkim(const struct authcheck *ac);
/* The ARC outcome after arc_verify_run; NULL without req->arc. */
const struct arc_outcome *authcheck_arc(const struct authcheck *ac);
/* The policy lookup, DONE; NULL when none was asked. */
const struct dmarc_lookup *authcheck_dmarc(const struct authcheck *ac);
/* Milliseconds from start to the end of the job; DNS queries asked. */
/* The From domain has no A, AAAA or MX (each NXDOMAIN or NODATA): asked
 * only when the DMARC record came from the organisational domain and has
 * np=, so that np applies (RFC 9091); false otherwise. */
bool authcheck_from_nxdomain(const struct authcheck *ac);
unsigned authcheck_ms(const struct authcheck *ac);
unsigned authcheck_queries(const struct authcheck *ac);
bool authcheck_timed_out(const struct authcheck *ac);
void authcheck_free(struct authcheck *ac); /* NULL ok; not while running */

#endif
