/*
 * arc: the Authenticated Received Chain (RFC 8617) as pure code: reading
 * the ARC sets of a message, validating the chain, and sealing.
 *
 * Owns: the ARC-Seal (AS), ARC-Message-Signature (AMS) and
 * ARC-Authentication-Results (AAR) fields, their grouping into sets and
 * the chain's rules.  May call: dkim (its tag lists, canonicalisation,
 * key records, hashing and signing: an AMS is a DKIM signature under
 * another name, an AS a DKIM signature over the sets), authres (the arc
 * resinfo of Authentication-Results), util, OpenSSL's libcrypto.  No I/O:
 * the key records are DNS answers the caller looked up, the private key
 * an EVP_PKEY the caller loaded, the time a parameter.  Thread-safe: no
 * global state besides OpenSSL's.
 *
 * The message is the whole of it as stored (header section, empty line,
 * body), lines ending in CRLF (a lone LF is a line end too), as for dkim.
 *
 * How ternd calls it (each step says on which thread):
 *
 * Inbound, at the end of DATA of a message received on the MX port, next
 * to dkim_verify:
 *
 *   loop:    v = arc_verify_new(msg, len, now);
 *            for (k = 0; k < arc_verify_queries(v); k++)
 *                    look up TXT arc_verify_query(v, k) on c-ares;
 *                    in its callback: arc_verify_key(v, k, status, txt,
 *                        txt_len, n);        (parses the record: cheap)
 *   worker:  once every answer is in, arc_verify_run(v);
 *            (the hashing and the public key operations: up to one AMS
 *            and one AS per set, 2 x 50 at most: never on the loop)
 *   loop:    r = arc_verify_result(v);
 *            arc_authres(r, peer_ip, &res) gives the "arc=" resinfo of
 *            our Authentication-Results (arc=pass header.oldest-pass=0
 *            smtp.remote-ip=...); keep arc_seal_cv(r) with the message if
 *            it may be forwarded; arc_verify_free(v).
 *
 *   A message without ARC fields, or whose chain is settled by its form
 *   (5.2 steps 2 to 4: malformed, a gap, a duplicate, cv=fail), asks for
 *   no lookups: arc_verify_queries() is 0 and arc_verify_run() is cheap.
 *   DMARC may use r->result == ARC_PASS with the AAR of instance
 *   r->oldest_pass..N to override a failure (RFC 7489 with 8617 7.2):
 *   that is local policy, not this module's.
 *
 * Forwarding to a remote address through an alias (worker thread, as
 * dkim_sign: the RSA private key operation costs about a millisecond):
 *
 *   o.authserv_id = hostname; o.results = the resinfos of the A-R ternd
 *   wrote for this message (text after "hostname;"), o.cv = the cv kept
 *   at reception (arc_seal_cv), o.domain/selector/key = the domain's DKIM
 *   key, o.t = now; arc_seal(&o, msg, len, &out, err, sizeof(err)) puts
 *   the three fields in out; they go on top of the message (above our
 *   Authentication-Results, the message's DKIM signatures are unaffected).
 *   Seal after every other change to the message (SRS changes only the
 *   envelope).  arc_seal refuses (-1, err set) a chain already sealed
 *   with cv=fail, one of 50 sets, and a cv that contradicts the message
 *   (cv=none on a message with sets, pass/fail on one without).
 */
#ifndef TERN_MAILAUTH_ARC_H
#define TERN_MAILAUTH_ARC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "mailauth/authres.h"
#include "mailauth/dkim.h"
#include "util/util.h"

/* RFC 8617 4.2.1.1: instances 1 to 50. */
#define ARC_INSTANCE_MAX 50
/* Octets of one ARC field (AAR included); a longer one is malformed. */
#define ARC_FIELD_MAX DKIM_SIG_FIELD_MAX
/* Octets of the resinfo text a sealer puts in its AAR. */
#define ARC_RESULTS_MAX 4096

/* The chain validation status (RFC 8617 4.4), and the A-R "arc" result. */
enum arc_result {
	ARC_NONE = 0, /* no ARC set on the message */
	ARC_PASS,
	ARC_FAIL,
};

const char *arc_result_name(enum arc_result r); /* "none", "pass", "fail" */

/* cv= of an ARC-Seal. */
enum arc_cv { ARC_CV_NONE = 0, ARC_CV_PASS, ARC_CV_FAIL };

const char *arc_cv_name(enum arc_cv cv); /* "none", "pass", "fail" */

/* ---- validation (5.2) -------------------------------------------------------
 */

struct arc_outcome {
	enum arc_result result;
	char reason[DKIM_REASON_MAX]; /* "" for pass and none */
	unsigned n;		      /* sets on the message, 0 to 50 */
	/*
	 * 5.2's oldest-pass (with pass only): 0 when the AMS of every set
	 * verifies, else the lowest instance k whose AMS and those of every
	 * newer set verify.  -1 when not known (the chain did not pass).
	 */
	int oldest_pass;
	bool temp; /* a key lookup failed for now: the fail may not last */
	/* the newest set's signers, for logs ("" when unknown) */
	char ams_d[DKIM_DOMAIN_MAX + 1];
	char as_d[DKIM_DOMAIN_MAX + 1];
	char oldest_pass_str[4]; /* oldest_pass as A-R writes it */
};

struct arc_verify;

/*
 * Index msg[0..len), collect and group its ARC fields and settle what
 * their form decides.  now: seconds, for the AMS's x=.  Never NULL.  The
 * message buffer must outlive v.
 */
struct arc_verify *arc_verify_new(const char *msg, size_t len, int64_t now);
void arc_verify_free(struct arc_verify *v);
/* The distinct TXT names to look up ("s._domainkey.d"), 0..2N of them. */
size_t arc_verify_queries(const struct arc_verify *v);
const char *arc_verify_query(const struct arc_verify *v, size_t k);
/*
 * The answer for query k, as for dkim_verify_key: status, and with
 * DKIM_DNS_OK the n records (each a TXT record's strings joined).
 */
void arc_verify_key(struct arc_verify *v, size_t k, enum dkim_dns status,
    const char *const *txt, const size_t *txt_len, size_t n);
/*
 * Validate: the newest AMS, every older AMS (for oldest-pass), every AS
 * from the newest down.  A query never answered counts as a temporary
 * failure.  Runs once; later calls do nothing.
 */
void arc_verify_run(struct arc_verify *v);
/* The outcome (before arc_verify_run: only what the form decided). */
const struct arc_outcome *arc_verify_result(const struct arc_verify *v);

/* The cv a seal of this message should carry after this validation. */
enum arc_cv arc_seal_cv(const struct arc_outcome *r);

/*
 * The "arc" resinfo of Authentication-Results (RFC 8617, RFC 8601):
 * arc=RESULT header.oldest-pass=K (with pass) smtp.remote-ip=IP (when
 * remote_ip is not NULL).  out points into r and remote_ip, which must
 * outlive it.
 */
void arc_authres(const struct arc_outcome *r, const char *remote_ip,
    struct authres_result *out);

/* ---- sealing (5.1) ----------------------------------------------------------
 */

struct arc_seal_opts {
	const char *authserv_id; /* ours: the host name */
	/*
	 * The AAR's resinfos: the text of our Authentication-Results after
	 * "authserv-id;", folded or not ("dkim=pass header.d=example.org;
	 * spf=pass smtp.mailfrom=...; arc=none").  NULL or "": "none".
	 */
	const char *results;
	enum arc_cv cv;	      /* arc_seal_cv() of our validation */
	const char *domain;   /* d= */
	const char *selector; /* s= */
	EVP_PKEY *key;	      /* RSA (rsa-sha256) or Ed25519 */
	int64_t t;	      /* sealing time: t= */
};

/*
 * Seal msg[0..len): append ARC-Seal, ARC-Message-Signature and
 * ARC-Authentication-Results of instance N+1 (N: the sets present), in
 * that order, folded, each ending in CRLF, to out; the caller puts them
 * on top of the message.  The AMS signs the DKIM signer's choice of
 * fields and the body (relaxed/relaxed); the AS signs the sets 1..N+1
 * (only the new one with cv=fail, 5.1.2).  0, or -1 with err.
 */
int arc_seal(const struct arc_seal_opts *o, const char *msg, size_t len,
    struct buf *out, char *err, size_t errlen) WUR;

#endif
