/*
 * spf: the Sender Policy Framework check (RFC 7208) as a pure, resumable
 * evaluator, plus the Received-SPF header and the result names for
 * Authentication-Results.
 *
 * Owns: SPF record syntax, macro expansion, check_host() and its limits.
 * May call: util only.  No I/O, no clock, no logging: the time for %{t}
 * is a parameter and DNS is done by the caller.
 *
 * How a caller drives it (the daemon with c-ares on its event loop, the
 * tests from a table):
 *
 *   struct spf *s = spf_new(&req);
 *   struct spf_query q;
 *   while (spf_next(s, &q) == SPF_STEP_QUERY) {
 *           ... look up q.name of type q.type, then one of:
 *           spf_answer(s, SPF_DNS_OK, rrs, n);   (n may be 0: no data)
 *           spf_answer(s, SPF_DNS_NXDOMAIN, NULL, 0);
 *           spf_answer(s, SPF_DNS_TEMP, NULL, 0); (SERVFAIL, timeout)
 *   }
 *   spf_result(s), spf_explanation(s), spf_problem(s) ...; spf_free(s);
 *
 * Every query asked for is answered exactly once before the next
 * spf_next(); the records are copied, the caller keeps its buffers.
 * Names are asked lowercased, without the final dot, at most 253
 * octets.  The overall time limit of RFC 7208 4.6.4 (20 s) is the
 * caller's: spf_timeout() ends the check as temperror.  Answers are kept
 * (bounded, see the limits below) for the life of the object; internally each
 * spf_next() replays check_host() from the start against the answers so far, so
 * the evaluator holds no half-done stack between calls and a caller may drop
 * the object at any point.  The number of queries one check can ask is bounded
 * by the RFC 7208 4.6.4 limits (about 130 at worst), so the replay is bounded.
 * One object belongs to one thread.
 */
#ifndef TERN_MAILAUTH_SPF_H
#define TERN_MAILAUTH_SPF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

/* a domain name in presentation form without the final dot (RFC 1035) */
#define SPF_NAME_MAX  253
#define SPF_LABEL_MAX 63
/* DNS-querying terms per check_host() (RFC 7208 4.6.4) */
#define SPF_LOOKUP_MAX 10
/* lookups answered NXDOMAIN or with no data (4.6.4) */
#define SPF_VOID_MAX 2
/* MX names for one "mx", PTR names for one "ptr" / %{p} (4.6.4) */
#define SPF_MX_MAX  10
#define SPF_PTR_MAX 10
/*
 * Octets of one SPF record after its strings are joined.  The RFC sets
 * no limit; DNS over UDP keeps real records under 512, and 4096 is
 * above any a TCP answer carries in practice.  Longer is permerror.
 */
#define SPF_RECORD_MAX 4096
/* terms in one record: 4096 octets of "a " are 2048 terms, cut well short */
#define SPF_TERMS_MAX 256
/* an explanation after expansion; longer is cut (it is text for humans) */
#define SPF_EXP_MAX 512
/* addresses kept from one A/AAAA answer; the rest are not compared */
#define SPF_ADDRS_MAX 32
/* distinct queries of one check (the limits above allow ~130) */
#define SPF_QUERIES_MAX 256
/* the sender (local@domain) as given to spf_new; far above RFC 5321's
   256 so that a hostile local-part is evaluated, not refused */
#define SPF_SENDER_MAX 65536

enum spf_result {
	SPF_NONE = 0,
	SPF_NEUTRAL,
	SPF_PASS,
	SPF_FAIL,
	SPF_SOFTFAIL,
	SPF_TEMPERROR,
	SPF_PERMERROR,
};

enum spf_qtype {
	SPF_Q_TXT = 0,
	SPF_Q_A,
	SPF_Q_AAAA,
	SPF_Q_MX,
	SPF_Q_PTR,
};

enum spf_rcode {
	SPF_DNS_OK = 0,	  /* RCODE 0; the answer may hold no records */
	SPF_DNS_NXDOMAIN, /* RCODE 3 */
	SPF_DNS_TEMP,	  /* SERVFAIL, timeout, anything else */
};

enum spf_step {
	SPF_STEP_QUERY, /* answer the query in *q_out, then call again */
	SPF_STEP_DONE,	/* spf_result() holds the result */
};

/* The identity checked (RFC 7208 2.3, 2.4): for Received-SPF and A-R. */
enum spf_identity {
	SPF_ID_MAILFROM = 0,
	SPF_ID_HELO,
};

struct spf_ip {
	bool v6;
	uint8_t addr[16]; /* 4 octets used for IPv4 */
};

struct spf_request {
	struct spf_ip ip;     /* the SMTP client; ::ffff:a.b.c.d is IPv4 */
	const char *domain;   /* <domain>: of the sender, or the HELO name */
	const char *sender;   /* <sender>: local@domain ("postmaster@helo"
				 for the HELO identity or a null path) */
	const char *helo;     /* for %{h}; NULL = "unknown" */
	const char *receiver; /* for %{r} in explanations; NULL = "unknown" */
	int64_t now;	      /* seconds since the epoch, for %{t} */
	enum spf_identity identity;
};

/* One record of an answer. */
struct spf_rr {
	/*
	 * TXT: one character-string; A: 4 octets; AAAA: 16 octets; MX: the
	 * exchange name; PTR: the name.  Names may end in a dot.
	 */
	const void *data;
	size_t len;
	/* TXT: this string continues the record of the previous one
	   (a record of several strings is joined, RFC 7208 3.3) */
	bool txt_continue;
};

struct spf_query {
	enum spf_qtype type;
	char name[SPF_NAME_MAX + 1];
};

struct spf;

/* A new check, or NULL when req is unusable (no domain, no sender). */
struct spf *spf_new(const struct spf_request *req);
void spf_free(struct spf *s); /* NULL ok */
/* Run until a DNS answer is needed (SPF_STEP_QUERY, *q_out set) or the
   result is known (SPF_STEP_DONE). */
enum spf_step spf_next(struct spf *s, struct spf_query *q_out);
/* The answer to the query spf_next() asked for; -1 if none is pending. */
int spf_answer(
    struct spf *s, enum spf_rcode rc, const struct spf_rr *rrs, size_t n) WUR;

/* The caller's time limit passed (RFC 7208 4.6.4): the check is done,
   temperror, whatever was pending. */
void spf_timeout(struct spf *s);

/* After SPF_STEP_DONE. */
enum spf_result spf_result(const struct spf *s);
/* For fail: the expanded exp= text (RFC 7208 6.2), or "" */
const char *spf_explanation(const struct spf *s);
/* The term that decided (e.g. "-all", "include:x.example"), or "" */
const char *spf_mechanism(const struct spf *s);
/* For temperror/permerror: what went wrong, for logs and Received-SPF */
const char *spf_problem(const struct spf *s);
/* DNS queries asked over the whole check (tests and logs) */
size_t spf_queries(const struct spf *s);

/* "none", "neutral", "pass", ... (RFC 7208 2.6, RFC 8601 2.7.2) */
const char *spf_result_name(enum spf_result r);
/* "smtp.mailfrom" or "smtp.helo" (RFC 8601 2.7.2) */
const char *spf_authres_property(enum spf_identity id);
/* its value: the sender for smtp.mailfrom, the HELO name for smtp.helo
   (client text: the A-R writer quotes it as RFC 8601 2.2 requires) */
const char *spf_authres_value(const struct spf *s);

/*
 * The Received-SPF field body (RFC 7208 9.1), without the field name and
 * the final CRLF: result, a comment, and the key=value pairs client-ip,
 * envelope-from, helo, receiver, identity, mechanism or problem, each
 * after a fold (CRLF TAB, as tern's Received: does), so that no line
 * passes 998 octets (client text is cut to 256 octets).  Values that are
 * not dot-atoms are quoted.  -1 when out is full.
 */
int spf_received_spf(struct buf *out, const struct spf *s) WUR;

/*
 * Pure helpers, public for the tests and the fuzzer.
 */
/* Parse the record text v=spf1 ...; 0 when its syntax is valid (RFC 7208
   12), -1 with a reason in err otherwise. */
int spf_record_check(const char *rec, size_t len, char *err, size_t errlen);
/* Expand a macro-string in the context of req with <domain> d and the
   validated %{p} name p (NULL: "unknown").  as_domain: the result is a
   domain name (truncated from the left to 253, RFC 7208 7.3); exp: the
   exp-only letters c, r, t are allowed.  0, or -1 on a syntax error. */
int spf_expand(const struct spf_request *req, const char *d, const char *p,
    const char *in, size_t len, bool as_domain, bool exp, struct buf *out);
/* Parse a textual IPv4 or IPv6 address (the ip4/ip6 syntax of RFC 7208 12)
   into *ip; 0 or -1.  ::ffff:a.b.c.d stays IPv6 here. */
int spf_ip_parse(const char *s, size_t len, struct spf_ip *ip);

#endif
