/*
 * inbound: the small pure pieces of checking received mail that are not
 * one RFC's core: the RFC5322.From domain DMARC is about, the local
 * policy overrides of the configuration (dmarc.override), and the parts
 * of a message left once our own Authentication-Results fields are cut
 * out of it.
 *
 * Owns: nothing beyond the caller's memory.  May call: addr (the header
 * scanner, address lists), mailauth (dmarc.h's struct dmarc_override,
 * authres.h's spans) and util.  Pure: no I/O, no allocation; any thread.
 * Used by ternd's end-of-data check (src/server/connauth.c) and its
 * start-up (main.c parses the overrides once).
 */
#ifndef TERN_MAILAUTH_INBOUND_H
#define TERN_MAILAUTH_INBOUND_H

#include <stdbool.h>
#include <stddef.h>

#include "mailauth/authres.h"
#include "mailauth/dmarc.h"

/* entries of dmarc.override */
#define INBOUND_OVERRIDES_MAX 256

enum inbound_from {
	INBOUND_FROM_OK,       /* exactly one From with one address */
	INBOUND_FROM_NONE,     /* no From field (RFC 5322 requires one) */
	INBOUND_FROM_MULTIPLE, /* several From fields, or several authors */
	INBOUND_FROM_BAD,      /* a From that is not an address list */
};

/*
 * The domain of the one author of msg[0..len) (header section only):
 * lower-cased into out.  RFC 7489 6.6.1: a message with no author domain
 * or several of them cannot be judged by DMARC; the caller reports it
 * (dmarc=permerror) and leaves the message to local policy.  An address
 * literal domain is INBOUND_FROM_BAD too.
 */
enum inbound_from inbound_from_domain(
    const char *msg, size_t len, char *out, size_t outlen);
const char *inbound_from_name(enum inbound_from r);

/*
 * Parse dmarc.override: a list "domain:policy, *.domain:policy, ..."
 * separated by commas or blanks, policy one of none, quarantine, reject
 * (what a DMARC fail of that sender domain gets instead of its published
 * policy).  "*.example.com" means example.com and every name below it.
 * text is modified in place (the domains are NUL-terminated inside it)
 * and must outlive out.  0 and *n_out (0 for NULL or empty text), or -1
 * with a message in err.
 */
int inbound_overrides_parse(char *text, struct dmarc_override *out, size_t max,
    size_t *n_out, char *err, size_t errlen) WUR;

/* One piece of a message to keep: msg[off .. off + len). */
struct inbound_piece {
	size_t off, len;
};

/*
 * The pieces of a message of len octets left once the n spans (in order,
 * not overlapping, as authres_ours_in gives them) are cut out: up to
 * n + 1 pieces into out (max of them).  Returns the count, or 0 when max
 * is too small; the sum of the pieces' lengths is the kept size.
 */
size_t inbound_pieces(size_t len, const struct authres_span *spans, size_t n,
    struct inbound_piece *out, size_t max);

#endif
