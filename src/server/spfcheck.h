/*
 * spfcheck: one SPF check (RFC 7208) of an SMTP session, run on the event
 * loop: the pure evaluator (mailauth/spf.h) asks, c-ares answers
 * (deliver/dns.h dns_lookup), until a result.
 *
 * Owns: struct spfcheck, its overall deadline and its one outstanding DNS
 * query.  May call: mailauth, deliver (dns), util, libevent.  Used by
 * conn.c (docs/mailauth.md says when).
 *
 * The whole check is bounded by SPFCHECK_TIMEOUT_MS (RFC 7208 4.6.4: at
 * least 20 s): then it ends as temperror, whatever is pending.  The
 * callback runs once, from the loop, when the check is done; never inside
 * spfcheck_start (a check that needs no DNS is done when it returns:
 * look at spfcheck_done).  spfcheck_free() at any time: its DNS query is
 * cancelled (dns_cancel: that callback never runs) and so is its timer.
 */
#ifndef TERN_SERVER_SPFCHECK_H
#define TERN_SERVER_SPFCHECK_H

#include <stdbool.h>

#include "mailauth/spf.h"

struct event_base;
struct dns;
struct spfcheck;

#define SPFCHECK_TIMEOUT_MS 20000

typedef void (*spfcheck_cb)(struct spfcheck *sc, void *arg);

/* A check of req (copied) on base, asking dns; NULL when req is unusable
 * (spf_new refused it).  cb(sc, arg) when done, unless freed before. */
struct spfcheck *spfcheck_start(struct event_base *base, struct dns *dns,
    const struct spf_request *req, spfcheck_cb cb, void *arg);
bool spfcheck_done(const struct spfcheck *sc);
/* The evaluator, for spf_result(), spf_received_spf() ... once done. */
const struct spf *spfcheck_spf(const struct spfcheck *sc);
/* Milliseconds from start to the result (logs). */
unsigned spfcheck_ms(const struct spfcheck *sc);
void spfcheck_free(struct spfcheck *sc); /* NULL ok */

#endif
