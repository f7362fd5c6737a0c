/*
 * policy.h: the Postfix policy delegation protocol (SMTPD_POLICY_README),
 * as tern's client speaks it (docs/policy.md).  Pure: it encodes the
 * request and decodes the reply and its action; no socket, no clock.
 *
 * A request is "name=value" lines, each ended by LF, then an empty line.
 * A reply is the same: "action=..." (other attributes are ignored), then
 * an empty line.  Values sent never hold CR, LF or NUL and are at most
 * POLICY_VALUE_MAX octets; a reply longer than POLICY_REPLY_MAX, or with
 * a malformed line, is refused.  Views returned point into the caller's
 * bytes.  A policy server's address ("inet:HOST:PORT", "unix:/PATH") has
 * the milter's syntax: milter_parse_spec (milter.h).
 */
#ifndef TERN_POLICY_H
#define TERN_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

#define POLICY_VALUE_MAX  1024 /* octets of one attribute value sent */
#define POLICY_NAME_MAX	  64   /* octets of an attribute name taken */
#define POLICY_REPLY_MAX  4096 /* octets of a whole reply, its end included */
#define POLICY_HEADER_MAX 998  /* a PREPEND field (RFC 5322 2.1.1) */

/* What tern tells a policy server; NULL strings are sent empty. */
struct policy_request {
	const char *protocol_state; /* "RCPT", "END-OF-MESSAGE" */
	const char *protocol_name;  /* "SMTP", "ESMTP" */
	const char *helo_name;
	const char *queue_id;
	const char *sender;	  /* without brackets; "" for <> */
	const char *recipient;	  /* RCPT; END-OF-MESSAGE: when only one */
	unsigned recipient_count; /* 0 at RCPT; the total at the end */
	const char *client_address;
	const char *client_name;	 /* "unknown": no name lookup */
	const char *reverse_client_name; /* likewise */
	unsigned client_port;
	const char *instance; /* the same for every request of a message */
	const char *sasl_method, *sasl_username, *sasl_sender;
	uint64_t size; /* MAIL's SIZE= at RCPT; the message's at the end */
	const char *encryption_protocol, *encryption_cipher;
	unsigned encryption_keysize;
	const char *server_address;
	unsigned server_port;
	const char *policy_context;
};

/* One "name=value\n": -1 when the name is not [a-z0-9_]{1,64}, the value
 * holds CR, LF or NUL or is longer than POLICY_VALUE_MAX, or b is full. */
int policy_attr_add(struct buf *b, const char *name, const char *value) WUR;
/* The whole request ("request=smtpd_access_policy", every attribute in
 * Postfix's order, the empty line), appended to b; -1 as above. */
int policy_request_encode(const struct policy_request *r, struct buf *b) WUR;

struct policy_str {
	const char *p;
	size_t len;
};

/*
 * One reply from p[0..n): 1 and *used (its empty line included) when whole,
 * action the value of its action attribute; 0 when more is needed (n is
 * still below POLICY_REPLY_MAX); -1 when it is garbage: a line that is not
 * name=value, a control octet (a CR is taken only before the LF), no
 * action or two, an empty line first, or no end within POLICY_REPLY_MAX.
 */
int policy_reply_parse(
    const char *p, size_t n, struct policy_str *action, size_t *used) WUR;

enum policy_kind {
	POLICY_OK,
	POLICY_DUNNO,
	POLICY_REJECT,		/* 550 5.7.1, or text's enhanced code */
	POLICY_DEFER,		/* 450 4.7.1 */
	POLICY_DEFER_IF_PERMIT, /* 450 4.7.1 */
	POLICY_DEFER_IF_REJECT, /* 450 4.7.1 if a later answer rejects */
	POLICY_CODE,		/* "4NN"/"5NN" [enhanced code] text */
	POLICY_DISCARD,
	POLICY_HOLD,
	POLICY_PREPEND, /* text: the header field "Name: value" */
	POLICY_WARN,
	POLICY_INFO,
	POLICY_REDIRECT,
	POLICY_FILTER,
	POLICY_UNKNOWN, /* text: the whole action */
};

struct policy_action {
	enum policy_kind kind;
	int code;		/* REJECT, DEFER*, CODE: the reply code */
	char enh[12];		/* ... its enhanced code, "5.7.1" */
	struct policy_str text; /* the rest after the keyword (and the code
				   and enhanced code), blanks trimmed */
	struct policy_str name; /* PREPEND: the field's name */
};

/*
 * An action value, its keyword in any case ("reject", "REJECT").  0 and
 * a filled (an unknown keyword is POLICY_UNKNOWN); -1 when it is
 * malformed: a control octet, a code outside 4xx/5xx ([45][0-5][0-9]),
 * an enhanced code of the wrong class or shape, a PREPEND that is not a
 * header field ("Name: value", name of printable ASCII without ':', at
 * most POLICY_HEADER_MAX octets in all).
 */
int policy_action_parse(const char *p, size_t n, struct policy_action *a) WUR;

/* The action's name for logs ("reject", "prepend", ...). */
const char *policy_kind_name(enum policy_kind k);

#endif
