/*
 * tlsrpt: SMTP TLS Reporting (RFC 8460), the pure part.
 *
 * Owns: struct tlsrpt, the counts of outbound TLS outcomes per policy
 * domain (a hash of domains, each with its policies, each with its
 * success and failure counts and failure details); their durable text
 * form (STATE/tlsrpt.state, versioned); the parser of the
 * "_smtp._tls.DOMAIN" TXT record; the RFC 8460 JSON report and the
 * name and header fields of its mail (5.3).  May call: util, mailauth
 * (dmarcxml.h: the report mail's head and body, shared with the DMARC
 * aggregate reports).  No I/O, no clock: times are parameters.
 *
 * Users: the outbound delivery code (deliver/remote.c) calls
 * tlsrpt_record() once per TLS negotiation outcome; ternd's report shell
 * (server/tlsrptd.c) owns the table, writes it to disk, and sends the
 * reports; `tern doctor` uses the TXT parser.
 *
 * Threads: a struct tlsrpt has one user at a time (ternd: the loop).
 */
#ifndef TERN_TLSRPT_H
#define TERN_TLSRPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

#define TLSRPT_DOMAIN_MAX 253  /* a policy domain, an MX host name */
#define TLSRPT_IP_MAX	  46   /* an address as text (INET6_ADDRSTRLEN) */
#define TLSRPT_REASON_MAX 200  /* failure-reason-code, cut */
#define TLSRPT_POLSTR_MAX 2048 /* one policy's policy-strings, joined */
#define TLSRPT_POLSTR_N	  64   /* policy-strings of one policy */
#define TLSRPT_DETAILS_MAX                                                     \
	64			  /* failure-details kept per policy; more     \
				     are counted in the summary only */
#define TLSRPT_POLICIES_MAX  8	  /* policies per domain */
#define TLSRPT_RUA_MAX	     8	  /* rua URIs of a TXT record kept */
#define TLSRPT_URI_MAX	     512  /* one rua URI */
#define TLSRPT_TXT_MAX	     4096 /* a TXT record we parse */
#define TLSRPT_STATE_VERSION 1	  /* of the text form below */

/* RFC 8460 4.4 policy-type */
enum tlsrpt_policy {
	TLSRPT_POL_NONE = 0, /* "no-policy-found" */
	TLSRPT_POL_TLSA,     /* "tlsa" (DANE) */
	TLSRPT_POL_STS,	     /* "sts" (MTA-STS) */
	TLSRPT_POL__N
};

/* RFC 8460 4.3: success, or the result-type of a failure */
enum tlsrpt_result {
	TLSRPT_SUCCESS = 0,
	TLSRPT_STARTTLS_NOT_SUPPORTED,
	TLSRPT_CERT_HOST_MISMATCH,
	TLSRPT_CERT_EXPIRED,
	TLSRPT_CERT_NOT_TRUSTED,
	TLSRPT_VALIDATION_FAILURE,
	TLSRPT_TLSA_INVALID,
	TLSRPT_DNSSEC_INVALID,
	TLSRPT_DANE_REQUIRED,
	TLSRPT_STS_POLICY_FETCH_ERROR,
	TLSRPT_STS_POLICY_INVALID,
	TLSRPT_STS_WEBPKI_INVALID,
	TLSRPT_RESULT__N
};

const char *tlsrpt_policy_name(enum tlsrpt_policy p);
const char *tlsrpt_result_name(enum tlsrpt_result r);
/* The enum of a name as above; -1 when none is. */
int tlsrpt_result_of(const char *name, size_t len);
int tlsrpt_policy_of(const char *name, size_t len);
/*
 * The result-type of a failed TLS handshake or verification from its
 * error text (OpenSSL's verify error string or tls.h's why): an expired
 * certificate, a name mismatch, an untrusted chain, else
 * validation-failure (4.3.1).
 */
enum tlsrpt_result tlsrpt_result_of_tls_error(const char *why);

/*
 * One outbound TLS negotiation outcome: what the delivery code knows when
 * it decided (the handshake came up, failed, or STARTTLS was not offered).
 * Strings are read during the call only; NULL or "" is "not known".
 */
struct tlsrpt_outcome {
	const char *domain;		   /* the policy domain: the recipients'
					      domain, as asked of DNS */
	enum tlsrpt_policy policy;	   /* which policy applied */
	const char *const *policy_strings; /* its text, one string per line
					     (RFC 8460 4.4 policy-string);
					     none for no-policy-found */
	size_t npolicy_strings;
	const char *const *mx_patterns; /* the "mx:" lines of an STS policy
					   (mx-host); none otherwise */
	size_t nmx_patterns;
	const char *mx_host;	    /* the MX host name tried */
	enum tlsrpt_result result;  /* TLSRPT_SUCCESS or the failure */
	const char *sending_ip;	    /* our end of the connection */
	const char *receiving_ip;   /* the peer's address */
	const char *receiving_helo; /* its EHLO name, if known */
	const char *reason;	    /* free text (failure-reason-code),
				       e.g. the verification error */
};

struct tlsrpt;

/* An empty table: begin is the start of its period (Unix seconds);
 * max_domains bounds the distinct domains it keeps. */
struct tlsrpt *tlsrpt_new(int64_t begin, unsigned max_domains);
void tlsrpt_free(struct tlsrpt *t);
/* A new bound (a reload): the domains already counted stay, also past a
 * lower one; a new domain is kept only below it. */
void tlsrpt_set_max_domains(struct tlsrpt *t, unsigned max_domains);

/*
 * THE ENTRY POINT for the delivery code: count one outcome.  Cheap (a hash
 * lookup and an increment; an allocation the first time a domain, policy
 * or failure detail is seen) and never fails: an outcome that does not fit
 * (a new domain past max_domains, a domain with TLSRPT_POLICIES_MAX
 * policies, a name too long) is dropped and counted in tlsrpt_dropped();
 * a failure past TLSRPT_DETAILS_MAX details of its policy still counts
 * in the policy's summary.  t NULL (reports off) or o->domain empty: no-op.
 * Never fails the delivery; the caller logs tlsrpt_result=<name> itself.
 */
void tlsrpt_record(struct tlsrpt *t, const struct tlsrpt_outcome *o);

/*
 * Everything t holds moves to a new table, returned; t is left empty,
 * its period beginning at now (the caller's pointer to t stays valid:
 * the delivery code keeps counting into it while the old period is
 * reported).
 */
struct tlsrpt *tlsrpt_take(struct tlsrpt *t, int64_t now);

int64_t tlsrpt_begin(const struct tlsrpt *t);
size_t tlsrpt_ndomains(const struct tlsrpt *t);
/* The i-th domain (0 <= i < tlsrpt_ndomains()), in the order first seen. */
const char *tlsrpt_domain(const struct tlsrpt *t, size_t i);
uint64_t tlsrpt_dropped(const struct tlsrpt *t);
/* sessions counted (successes and failures), all domains */
uint64_t tlsrpt_sessions(const struct tlsrpt *t);
/* Counts of domain i: successes and failures over all its policies. */
void tlsrpt_domain_counts(const struct tlsrpt *t, size_t i,
    uint64_t *success_out, uint64_t *failure_out);

/*
 * Domain i of src added into dst (counts summed, details merged): a report
 * that could not be sent goes back to the current period.  Bounded like
 * tlsrpt_record().
 */
void tlsrpt_merge_domain(
    struct tlsrpt *dst, const struct tlsrpt *src, size_t i);

/*
 * The durable text form (version TLSRPT_STATE_VERSION): a first line
 * "tlsrpt-state 1", then lines of blank-separated fields, with %XX
 * escapes in text fields.  encode: 0, or -1 when out is full.  decode
 * adds what in holds to t (its begin is the earlier of the two): 0, or
 * -1 with err set when in is not of that form, or was written by a newer
 * version (the error says so: nothing is added then).
 */
int tlsrpt_encode(const struct tlsrpt *t, struct buf *out) WUR;
int tlsrpt_decode(
    struct tlsrpt *t, const char *in, size_t len, char *err, size_t errlen) WUR;

/* ---- the policy domain's TXT record (RFC 8460 3) ------------------------ */

struct tlsrpt_uri {
	char uri[TLSRPT_URI_MAX + 1];  /* as written, %-escapes undone */
	bool mailto;		       /* else https */
	char addr[TLSRPT_URI_MAX + 1]; /* mailto: the address */
};

struct tlsrpt_record {
	struct tlsrpt_uri rua[TLSRPT_RUA_MAX];
	size_t nrua;	/* the mailto: and https: URIs, in order */
	size_t skipped; /* URIs of another scheme or that did not fit */
};

enum tlsrpt_parse {
	TLSRPT_PARSE_OK = 0,
	TLSRPT_PARSE_NOT_TLSRPT, /* not "v=TLSRPTv1" first: not ours */
	TLSRPT_PARSE_INVALID,	 /* ours, but no valid rua */
};

/*
 * One TXT record (its strings joined): "v=TLSRPTv1;" then "rua=" with
 * comma-separated URIs, and other extension fields ignored (3).
 */
enum tlsrpt_parse tlsrpt_record_parse(
    const char *txt, size_t len, struct tlsrpt_record *out);

/*
 * The record among n TXT records: exactly one must start with
 * "v=TLSRPTv1" (3: several make none).  Returns the index of it, -1 when
 * none, -2 when several.
 */
int tlsrpt_record_pick(const char *const *txt, const size_t *len, size_t n);

/* ---- the report (RFC 8460 4) --------------------------------------------- */

struct tlsrpt_meta {
	const char *org;     /* organization-name */
	const char *contact; /* contact-info: report_from */
	const char *report_id;
	int64_t begin, end; /* date-range */
};

/* The JSON report of domain i into out: 0, or -1 when out is full. */
int tlsrpt_report_json(const struct tlsrpt *t, size_t i,
    const struct tlsrpt_meta *m, struct buf *out) WUR;

/*
 * The attachment's name (5.3): "submitter!domain!begin!end!id.json.gz".
 * 0, or -1 when it does not fit.
 */
int tlsrpt_filename(const char *submitter, const char *domain, int64_t begin,
    int64_t end, const char *id, char *out, size_t outlen) WUR;

/*
 * The extra header fields of the report mail (5.3), each line ending in
 * CRLF: TLS-Report-Domain and TLS-Report-Submitter.  0, or -1.
 */
int tlsrpt_mail_fields(
    const char *domain, const char *submitter, char *out, size_t outlen) WUR;

/* RFC 3339 UTC "YYYY-MM-DDTHH:MM:SSZ" of t: 0, or -1 (out of range). */
int tlsrpt_datetime(int64_t t, char *out, size_t outlen) WUR;

#endif
