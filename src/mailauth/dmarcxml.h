/*
 * dmarcxml: DMARC aggregate reports (RFC 7489 7.2), pure: one report's
 * XML (the schema of appendix C), its file name (7.2.1.1), the mail that
 * carries it (subject, MIME parts), the rule for each rua URI (mailto:
 * only, the !size limit, the 7.1 consent of an external destination), and
 * the text form of a row's DKIM results kept by the report store.
 *
 * Owns: struct dmarcxml_row, struct dmarcxml_policy, struct dmarcxml_meta.
 * May call: mailauth/dmarc, mailauth/psl, auth (base64), util.  No I/O, no
 * clock: times and ids are parameters; output goes to a caller's struct
 * buf.  Used by the report store (src/dmarcdb/), ternd (server/dmarcrep.c)
 * and `tern dmarc report --dry-run`.
 */
#ifndef TERN_MAILAUTH_DMARCXML_H
#define TERN_MAILAUTH_DMARCXML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mailauth/dmarc.h"
#include "mailauth/psl.h"
#include "util/util.h"

#define DMARCXML_NAME_MAX 253 /* a domain name in text (RFC 1035 2.3.4) */
/* a selector is a dot-atom of labels (RFC 6376 3.1); longer ones are cut
 * from the report, never from the verdict */
#define DMARCXML_SELECTOR_MAX 63
#define DMARCXML_DKIM_MAX     5	 /* tern verifies at most 5 signatures */
#define DMARCXML_IP_MAX	      45 /* INET6_ADDRSTRLEN - 1 */
/* "d/s/result" of DMARCXML_DKIM_MAX signatures, blank separated */
#define DMARCXML_DKIM_TEXT_MAX                                                 \
	(DMARCXML_DKIM_MAX * (DMARCXML_NAME_MAX + DMARCXML_SELECTOR_MAX + 12))

/* One DKIM signature's result (DKIMAuthResultType). */
struct dmarcxml_dkim {
	char domain[DMARCXML_NAME_MAX + 1];	  /* d= */
	char selector[DMARCXML_SELECTOR_MAX + 1]; /* s=, "" when unknown */
	char result[16]; /* none|pass|fail|policy|... */
};

/*
 * One <record>: a row of the report, counted.  Every field is part of the
 * row's identity: two messages with equal fields are one row, count 2.
 */
struct dmarcxml_row {
	char source_ip[DMARCXML_IP_MAX + 1];
	uint64_t count;
	enum dmarc_policy disposition; /* NONE, QUARANTINE or REJECT */
	bool dkim_pass, spf_pass;      /* policy_evaluated: aligned pass */
	char reason[16]; /* "" or a PolicyOverrideType: sampled_out, ... */
	char header_from[DMARCXML_NAME_MAX + 1];
	char envelope_from[DMARCXML_NAME_MAX + 1]; /* "" when unknown */
	struct dmarcxml_dkim dkim[DMARCXML_DKIM_MAX];
	size_t ndkim;
	char spf_domain[DMARCXML_NAME_MAX + 1];
	char spf_scope[8];   /* mfrom|helo */
	char spf_result[16]; /* none|neutral|pass|fail|softfail|... */
};

/* <policy_published>: the record the messages were judged by. */
struct dmarcxml_policy {
	char domain[DMARCXML_NAME_MAX + 1];
	enum dmarc_align adkim, aspf;
	enum dmarc_policy p, sp; /* NONE, QUARANTINE or REJECT */
	unsigned pct;
};

/* <report_metadata> */
struct dmarcxml_meta {
	const char *org_name;
	const char *email;
	const char *report_id;
	int64_t begin, end; /* seconds since the epoch, UTC */
};

/* Valid result words of the schema (appendix C's enumerations). */
bool dmarcxml_dkim_result_ok(const char *s);
bool dmarcxml_spf_result_ok(const char *s);
bool dmarcxml_reason_ok(const char *s); /* "" is valid: no reason */
/*
 * Whether every field of row holds what the schema allows (result words,
 * scope, a disposition, a count > 0, a header_from).  The builder refuses
 * a row that does not, so a damaged store never yields a bad report.
 */
bool dmarcxml_row_ok(const struct dmarcxml_row *row);

/*
 * The XML in three steps, appended to out: the head (XML declaration,
 * <feedback>, <report_metadata>, <policy_published>), one <record> per
 * row, then the tail.  Text is escaped (& < > " ').  Return 0, or -1 when
 * out is full or (row) the row is not valid (dmarcxml_row_ok).
 */
int dmarcxml_begin(const struct dmarcxml_meta *m,
    const struct dmarcxml_policy *pol, struct buf *out) WUR;
int dmarcxml_row(const struct dmarcxml_row *row, struct buf *out) WUR;
int dmarcxml_end(struct buf *out) WUR;

/*
 * The DKIM results of a row as text, "d/s/result" per signature, blank
 * separated (the store keeps it in one column, part of the row's key),
 * and back.  encode: 0, or -1 when it does not fit outlen.  decode: 0, or
 * -1 when the text is not of that form (then row->ndkim is 0).
 */
int dmarcxml_dkim_encode(
    const struct dmarcxml_row *row, char *out, size_t outlen) WUR;
int dmarcxml_dkim_decode(const char *text, struct dmarcxml_row *row) WUR;

/*
 * The attachment's name (7.2.1.1): "receiver!policy-domain!begin!end"
 * plus ".xml.gz".  0, or -1 when it does not fit.
 */
int dmarcxml_filename(const char *receiver, const char *domain, int64_t begin,
    int64_t end, char *out, size_t outlen) WUR;

/* ---- the mail (7.2.1.1) -------------------------------------------------
 */

struct dmarcxml_mail {
	const char *from;      /* report_from, an address */
	const char *const *to; /* the destinations' addresses */
	size_t nto;
	const char *domain;    /* the policy domain */
	const char *submitter; /* the receiver's domain */
	const char *report_id;
	const char *date;	/* RFC 5322 date-time */
	const char *message_id; /* "<...>" */
	const char *boundary;	/* MIME boundary, without "--" */
	/* the TLS-RPT reports (tlsrpt/tlsrpt.h) share this head: */
	const char *content_type; /* NULL: multipart/mixed; else the type
				     and its parameters before boundary=,
				     e.g. multipart/report; report-type=... */
	const char *extra; /* NULL, or more header fields, each line ending
			      in CRLF (the caller made them line-safe) */
};

/*
 * The header section (ends with the empty line) into out: From, To, Date,
 * Message-ID, Subject "Report Domain: D Submitter: S Report-ID: <ID>",
 * MIME-Version and a multipart/mixed Content-Type.  0, or -1 when out is
 * full or a field would hold a CR or LF.
 */
int dmarcxml_mail_head(const struct dmarcxml_mail *m, struct buf *out) WUR;
/*
 * The body: a short text/plain part, then the report (gz, gzlen octets)
 * as application/gzip in base64 lines of 76, named filename, then the
 * closing boundary.  0, or -1 when out is full.
 */
int dmarcxml_mail_body(const char *boundary, const char *domain,
    const char *filename, const unsigned char *gz, size_t gzlen,
    struct buf *out) WUR;
/*
 * The same body for any report: preamble, then a text/plain part holding
 * text, then the attachment of media type type (gz in base64) named
 * filename, then the closing boundary.  0, or -1 when out is full or a
 * value would break a line.
 */
int dmarcxml_mail_parts(const char *boundary, const char *preamble,
    const char *text, const char *type, const char *filename,
    const unsigned char *gz, size_t gzlen, struct buf *out) WUR;

/* ---- one evaluated message ------------------------------------------- */

/* One DKIM signature's result, as the verifier gave it. */
struct dmarcxml_auth_dkim {
	const char *domain;   /* d= */
	const char *selector; /* s=, or NULL */
	const char *result;   /* dkim_result_name(): pass, fail, ... */
};

/* What a message brought besides its DMARC verdict. */
struct dmarcxml_msg {
	const char *source_ip;	   /* the client's address, as text */
	const char *envelope_from; /* the MAIL FROM domain; "" for <> */
	const struct dmarcxml_auth_dkim *dkim;
	size_t ndkim; /* past DMARCXML_DKIM_MAX, the rest are left out */
	const char *spf_domain; /* the identity SPF checked */
	bool spf_helo;		/* it was the HELO name (null MAIL FROM) */
	const char *spf_result; /* spf_result_name(): pass, softfail, ... */
};

/*
 * The report row of one evaluated message (count 1), the policy it was
 * judged by (p=none for a rua-only record, sp = p when absent, 6.3) and
 * the record's rua mailto: URIs as "uri!size,..." (what fits rualen; the
 * other schemes are left out: tern mails reports).  Names are
 * lower-cased; a selector too long for the report is left out, not cut.
 * 0; 1 when there is nothing to record (no policy was found, or no rua
 * mailto:); -1 when a value is not valid for the report (a result word
 * the schema does not have, an over-long name, no SPF identity).
 */
int dmarcxml_record(const struct dmarc_lookup *lk,
    const struct dmarc_verdict *v, const struct dmarcxml_msg *m,
    struct dmarcxml_policy *pol, char *rua, size_t rualen,
    struct dmarcxml_row *row) WUR;

/* ---- where a report may go (6.2, 7.1) ---------------------------------- */

enum dmarcxml_dest {
	DMARCXML_DEST_SEND,	  /* send to it */
	DMARCXML_DEST_NEEDS_AUTH, /* external: ask its consent first (7.1) */
	DMARCXML_DEST_TOO_BIG,	  /* its !size is smaller than the report */
	DMARCXML_DEST_NOT_MAILTO, /* tern sends reports by mail only */
	DMARCXML_DEST_BAD,	  /* no usable address in the URI */
};

/*
 * What to do with one rua URI for a report of size octets (the mail as it
 * will be queued) about policy_domain.  The size rule comes first: a
 * report that does not fit is not sent, whoever would receive it.
 */
enum dmarcxml_dest dmarcxml_dest_check(const struct psl *psl,
    const char *policy_domain, const struct dmarc_uri *u, uint64_t size);
/*
 * The address of a mailto: URI (RFC 6068): the part before any "?",
 * %XX escapes decoded.  0, or -1 when it is empty, holds a control
 * character, a blank or a ',' once decoded, or does not fit.
 */
int dmarcxml_mailto_addr(
    const struct dmarc_uri *u, char *out, size_t outlen) WUR;
const char *dmarcxml_dest_name(enum dmarcxml_dest d);

#endif
