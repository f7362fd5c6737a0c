/*
 * authres: the Authentication-Results header field (RFC 8601): building
 * ours, and reading others' far enough to know whose they are.
 *
 * Owns: the field's syntax.  May call: addr (the header scanner) and util.
 * Pure: no I/O, no allocation except the caller's struct buf; any thread.
 *
 * Building: one resinfo per method (dkim, spf, dmarc, arc), each on its own
 * folded line, with "reason" and the ptype.property=value pairs; a value
 * that is neither a token nor a local-part@domain is written as a
 * quoted-string; lines are folded at spaces to stay within the width the
 * caller gives (a single word longer than that stays whole).
 *
 * Reading: RFC 8601 2.2's grammar with comments and folding whitespace
 * anywhere between words (RFC 5322 CFWS, comments nested), the authserv-id
 * as a token or a quoted-string, an optional version, then the resinfo
 * list, each seen as views into the caller's text.  The daemon removes
 * every field whose authserv-id is its own before adding its own (5:
 * anything claiming to be us that we did not write is forged).
 */
#ifndef TERN_MAILAUTH_AUTHRES_H
#define TERN_MAILAUTH_AUTHRES_H

#include <stdbool.h>
#include <stddef.h>

#include "util/util.h"

#define AUTHRES_PROPS_MAX   8	 /* properties of one resinfo */
#define AUTHRES_RESULTS_MAX 16	 /* resinfos kept by the parser */
#define AUTHRES_ID_MAX	    255	 /* an authserv-id, unquoted */
#define AUTHRES_WIDTH	    78	 /* RFC 5322 2.1.1's SHOULD */
#define AUTHRES_VALUE_MAX   1024 /* one value, before quoting */

struct authres_prop {
	const char *ptype;    /* "header", "smtp", "policy", "body" */
	const char *property; /* "d", "i", "b", "from", "mailfrom", "helo" */
	const char *value;
};

struct authres_result {
	const char *method; /* "dkim", "spf", "dmarc", "arc" */
	const char *result; /* "pass", "fail", "none", "temperror", ... */
	const char *reason; /* NULL: none */
	struct authres_prop props[AUTHRES_PROPS_MAX];
	size_t nprops;
};

/*
 * Append "Authentication-Results: ID;" and the n results (or "none") with
 * CRLF line ends, the last one included, to out.  width: the longest line
 * wanted (octets, without CRLF), at least 20.  Returns 0, or -1 when a
 * method, result, ptype or property is not a token, a value holds a
 * control character or passes AUTHRES_VALUE_MAX, or out's maximum is
 * reached (out is then left as it was).
 */
int authres_build(struct buf *out, const char *authserv_id,
    const struct authres_result *r, size_t n, size_t width) WUR;

/* A view into the parsed text; a quoted-string keeps its quotes. */
struct authres_view {
	const char *p;
	size_t n;
};

struct authres_parsed_prop {
	struct authres_view ptype, property, value;
};

struct authres_parsed_res {
	struct authres_view method, result, reason; /* reason.p NULL: none */
	struct authres_parsed_prop props[AUTHRES_PROPS_MAX];
	size_t nprops; /* at most _MAX kept; more are read and dropped */
};

struct authres_parsed {
	char id[AUTHRES_ID_MAX + 1]; /* unquoted */
	unsigned version;	     /* 1 when absent */
	bool none;		     /* "id; none" */
	size_t nresults;	     /* all seen; at most _MAX kept */
	struct authres_parsed_res res[AUTHRES_RESULTS_MAX];
};

enum authres_status {
	AUTHRES_OK,
	AUTHRES_BAD_ID,	 /* no authserv-id: not an A-R field we can judge */
	AUTHRES_BAD_RES, /* the id is good, the rest is not RFC 8601 */
};

/*
 * Parse a field value (after "Authentication-Results:", folding and all).
 * With AUTHRES_BAD_RES, p->id is still set: the field claims that id, so
 * it is removed when the id is ours whatever follows.
 */
enum authres_status authres_parse(
    const char *v, size_t len, struct authres_parsed *p);

/*
 * Whether the field value claims authserv_id (ASCII case-insensitive, as a
 * host name is).  A value whose id cannot be read is not ours.
 */
bool authres_is_ours(const char *v, size_t len, const char *authserv_id);

/* Where a field lies in a message: offset and length, its line end included. */
struct authres_span {
	size_t off, len;
};

/*
 * The Authentication-Results fields of msg's header section (len octets)
 * that claim authserv_id, in order: up to max of them into spans.  Returns
 * how many there are (more than max when spans was too short), so the
 * writer of the message can leave them out without copying it.
 */
size_t authres_ours_in(const char *msg, size_t len, const char *authserv_id,
    struct authres_span *spans, size_t max);

#endif
