/*
 * dmarc: the DMARC policy core (RFC 7489; np from RFC 9091): the record
 * parser, policy discovery, identifier alignment, the result and the
 * disposition, and the check that an external report destination agreed
 * to receive reports (7.1).
 *
 * Owns: struct dmarc_record, struct dmarc_lookup, struct dmarc_verdict.
 * May call: mailauth/psl and util.  Pure: no I/O, no clock, no randomness,
 * no allocation.  DNS answers come in as values (struct dmarc_txt), the
 * sampling draw for pct is a parameter, and the caller's thread owns every
 * struct (nothing is shared).
 *
 * The daemon's path: dmarc_lookup_init() with the RFC5322.From domain, then
 * while it says DMARC_STEP_QUERY ask DNS for TXT at lk->qname and hand the
 * answer to dmarc_lookup_answer(); then dmarc_evaluate() with the SPF and
 * DKIM results.  A lookup keeps its own copy of the record it chose, so the
 * caller's DNS buffers may go as soon as each answer has been handed over.
 */
#ifndef TERN_MAILAUTH_DMARC_H
#define TERN_MAILAUTH_DMARC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mailauth/psl.h"

/* a record's text (the TXT strings joined); a longer one is a permerror */
#define DMARC_RECORD_MAX 2048
/* URIs kept per rua/ruf list; RFC 7489 6.2 asks for at least two */
#define DMARC_URI_MAX 8
/* "_dmarc." + a domain name: a DNS name of 253 octets at most */
#define DMARC_QNAME_MAX 253

enum dmarc_policy {
	DMARC_P_UNSET = 0, /* the tag was absent */
	DMARC_P_NONE,
	DMARC_P_QUARANTINE,
	DMARC_P_REJECT,
	DMARC_P_INVALID, /* the tag was there with a value not in 6.3 */
};

enum dmarc_align { DMARC_ALIGN_RELAXED = 0, DMARC_ALIGN_STRICT };

/* fo= (6.3), a bit set; the default is DMARC_FO_0 */
#define DMARC_FO_0 0x1
#define DMARC_FO_1 0x2
#define DMARC_FO_D 0x4
#define DMARC_FO_S 0x8

/* One URI of rua= or ruf=: views into the record the parse was given. */
struct dmarc_uri {
	const char *uri; /* the URI without its !size, blanks trimmed */
	size_t uri_len;
	const char *host; /* mailto: the domain of the address, else NULL */
	size_t host_len;
	uint64_t max_size; /* from "!10m" (octets); 0: no limit given */
	bool mailto;
};

struct dmarc_record {
	enum dmarc_policy p, sp, np;
	enum dmarc_align adkim, aspf;
	unsigned pct; /* 0..100; 100 when absent or invalid */
	uint32_t ri;  /* seconds; 86400 when absent or invalid */
	unsigned fo;  /* DMARC_FO_* */
	struct dmarc_uri rua[DMARC_URI_MAX];
	size_t nrua;
	struct dmarc_uri ruf[DMARC_URI_MAX];
	size_t nruf;
	unsigned bad_values;   /* known tags whose value was ignored (6.3) */
	unsigned unknown_tags; /* ignored, as 6.3 says */
	unsigned dropped_uris; /* syntactically bad, or past DMARC_URI_MAX */
};

enum dmarc_parse {
	DMARC_PARSE_OK,	       /* v=DMARC1 first: a DMARC record */
	DMARC_PARSE_NOT_DMARC, /* anything else: discarded (6.6.3 step 2) */
};

/*
 * Parse one record (the TXT strings of one resource record, joined).  The
 * URI views point into text, which must outlive rec.  Tag names and the
 * keywords of p, sp, np, adkim, aspf and fo are case-insensitive (the
 * quoted strings of the ABNF in 6.4, RFC 5234 2.3); "DMARC1" is not (%x).
 * A bad value of a known tag is ignored (6.3) and counted; whether p and
 * sp make a usable policy is judged by the lookup (6.6.3 step 6).
 */
enum dmarc_parse dmarc_record_parse(
    const char *text, size_t len, struct dmarc_record *rec);

/* ---- policy discovery (6.6.3) ----------------------------------------- */

enum dmarc_dns {
	DMARC_DNS_OK,	    /* an answer: n TXT records, maybe none (NODATA) */
	DMARC_DNS_NXDOMAIN, /* the name does not exist */
	DMARC_DNS_TEMPFAIL, /* timeout, SERVFAIL: try again later */
};

/* A TXT answer: record i is txt[i] (len[i] octets, its strings joined). */
struct dmarc_txt {
	enum dmarc_dns status;
	const char *const *txt;
	const size_t *len;
	size_t n;
};

enum dmarc_result {
	DMARC_RESULT_NONE,	/* no policy: no record, or several (step 5) */
	DMARC_RESULT_PASS,	/* an aligned SPF or DKIM pass */
	DMARC_RESULT_FAIL,	/* a policy, and nothing aligned passed */
	DMARC_RESULT_TEMPERROR, /* DNS failed on the way: ask again later */
	DMARC_RESULT_PERMERROR, /* one record, but no usable p/sp and no rua */
};

enum dmarc_step { DMARC_STEP_QUERY, DMARC_STEP_DONE };

/* why a lookup ended without a policy, for the A-R reason and the log */
enum dmarc_why {
	DMARC_WHY_NONE,	      /* a policy was found */
	DMARC_WHY_NO_RECORD,  /* no v=DMARC1 record at either name */
	DMARC_WHY_MULTIPLE,   /* more than one at the name it stopped at */
	DMARC_WHY_BAD_POLICY, /* p or sp invalid or missing, no valid rua */
	DMARC_WHY_DNS,	      /* a DNS temporary failure */
	DMARC_WHY_BAD_FROM,   /* the From domain is not a domain name */
};

struct dmarc_lookup {
	char from[PSL_NAME_MAX + 1];	 /* lower-cased, no trailing dot */
	char org[PSL_NAME_MAX + 1];	 /* its organisational domain */
	char qname[DMARC_QNAME_MAX + 1]; /* ask TXT here next */
	int stage;			 /* 0: at from, 1: at org, 2: done */
	enum dmarc_result result;	 /* NONE, TEMPERROR or PERMERROR */
	enum dmarc_why why;
	bool at_org;	  /* the record came from the organisational domain */
	bool p_defaulted; /* p=none assumed for a rua-only record (step 6) */
	struct dmarc_record rec;
	char text[DMARC_RECORD_MAX + 1]; /* the chosen record; rec views it */
};

/*
 * Start discovery for the RFC5322.From domain (len octets).  Returns
 * DMARC_STEP_QUERY with lk->qname set, or DMARC_STEP_DONE when the domain
 * is not a domain name (lk->why == DMARC_WHY_BAD_FROM; the result is
 * PERMERROR: 6.6.1 leaves such a message to local policy).
 */
enum dmarc_step dmarc_lookup_init(struct dmarc_lookup *lk,
    const struct psl *psl, const char *from, size_t len);
/*
 * The TXT answer for lk->qname.  DMARC_STEP_QUERY: ask again at the new
 * lk->qname (the organisational domain, 6.6.3 step 3).  DMARC_STEP_DONE:
 * lk->why is DMARC_WHY_NONE when a policy was found (dmarc_evaluate()
 * decides), else it says why lk->result is NONE, TEMPERROR or PERMERROR.
 */
enum dmarc_step dmarc_lookup_answer(
    struct dmarc_lookup *lk, const struct dmarc_txt *ans);

/* ---- evaluation -------------------------------------------------------- */

/* One DKIM result: the signature's d= and whether it verified. */
struct dmarc_dkim {
	const char *domain;
	size_t len;
	bool pass;
};

/* A local decision about one sender domain (and, with subdomains, below). */
struct dmarc_override {
	const char *domain; /* NUL-terminated, case-insensitive */
	bool subdomains;
	enum dmarc_policy disposition; /* what a DMARC fail gets instead */
};

struct dmarc_input {
	/*
	 * The identity SPF checked (the MAIL FROM domain, or the HELO name
	 * for the null path, RFC 7208 2.4) and whether SPF passed for it.
	 */
	const char *spf_domain;
	size_t spf_len;
	bool spf_pass;
	const struct dmarc_dkim *dkim;
	size_t ndkim;
	/* the From domain does not exist (NXDOMAIN): np applies (RFC 9091) */
	bool from_nxdomain;
	/*
	 * Uniform in 0..99, for pct sampling (6.6.4): the policy applies in
	 * full when draw % 100 < pct.
	 */
	unsigned draw;
	const struct dmarc_override *overrides;
	size_t noverrides;
};

enum dmarc_used { DMARC_USED_P, DMARC_USED_SP, DMARC_USED_NP };

struct dmarc_verdict {
	enum dmarc_result result;
	enum dmarc_why why;
	enum dmarc_policy policy;      /* published policy that applies */
	enum dmarc_used used;	       /* which tag gave it */
	enum dmarc_policy disposition; /* NONE, QUARANTINE or REJECT */
	bool spf_aligned, dkim_aligned;
	bool sampled_out; /* pct chose not to apply the policy in full */
	bool overridden;  /* a struct dmarc_override decided */
	/* the domain whose record applied (the header.from's or its org's) */
	const char *policy_domain;
};

/*
 * The verdict for one message.  lk must be DONE.  Pass when an identifier
 * that passed is aligned with the From domain (3.1): relaxed means the same
 * organisational domain, strict the same name.  On fail, the policy is p,
 * or sp when the record came from the organisational domain of a From
 * subdomain, or np for a From domain that does not exist; then pct
 * sampling (a sampled-out reject becomes quarantine, a sampled-out
 * quarantine none, 6.6.4), then the first matching override (an exact
 * domain, else the nearest parent that has subdomains set).
 */
void dmarc_evaluate(const struct dmarc_lookup *lk, const struct psl *psl,
    const struct dmarc_input *in, struct dmarc_verdict *v);

/* The identifiers' alignment on their own (3.1.1, 3.1.2). */
bool dmarc_aligned(const struct psl *psl, const char *a, size_t alen,
    const char *b, size_t blen, enum dmarc_align mode);

/* ---- external report destinations (7.1) ------------------------------- */

/*
 * Whether a report for policy_domain sent to a URI whose host is host
 * needs the destination's consent: their organisational domains differ.
 */
bool dmarc_rua_external(const struct psl *psl, const char *policy_domain,
    const char *host, size_t host_len);
/*
 * The name to ask TXT at: "<policy_domain>._report._dmarc.<host>".
 * Returns 0, or -1 when it does not fit out or passes DMARC_QNAME_MAX.
 */
int dmarc_rua_auth_name(const char *policy_domain, const char *host,
    size_t host_len, char *out, size_t outlen);

enum dmarc_rua_auth {
	DMARC_RUA_AUTHORISED, /* a v=DMARC1 record answered: send */
	DMARC_RUA_OVERRIDE,   /* authorised, and its rua replaces the URI */
	DMARC_RUA_REFUSED,    /* no such record, or an override elsewhere */
	DMARC_RUA_TEMPFAIL,   /* ask again later */
};

/*
 * Judge the answer at that name for a URI whose host is host.  With
 * DMARC_RUA_OVERRIDE, *index_out is the record (in ans) whose rua= the
 * caller parses and uses instead; an override naming another host means
 * no report at all (7.1: neither the original nor the override).
 */
enum dmarc_rua_auth dmarc_rua_auth_judge(const struct dmarc_txt *ans,
    const char *host, size_t host_len, size_t *index_out);

/*
 * The verdict as one Authentication-Results resinfo (RFC 7489 11.2):
 * "dmarc=<result>", header.from, and a reason when it did not simply pass
 * or fail.  out points into lk and static text: use it before lk goes.
 */
struct authres_result;
void dmarc_authres(const struct dmarc_lookup *lk, const struct dmarc_verdict *v,
    struct authres_result *out);

const char *dmarc_result_name(enum dmarc_result r);
const char *dmarc_policy_name(enum dmarc_policy p);

#endif
