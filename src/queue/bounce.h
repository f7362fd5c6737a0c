/*
 * bounce: delivery status notifications (DSNs) as RFC 3464 reports in an
 * RFC 6522 multipart/report, with the RFC 3461 fields (ENVID, ORCPT, RET).
 *
 * Owns: the DSN message format.  May call: addr (header fields), util.
 * Called by dsn.c (the queue manager's reports, built on a worker).
 *
 * Pure: no clock, no I/O.  The caller gives every time and the DSN's own
 * Date and Message-ID, and gets back a complete RFC 5322 message in CRLF
 * form, ready to be queued like any other message.
 *
 * Bounce loops: the caller queues the DSN with the null envelope sender
 * "<>" and never builds one for a message whose own sender was "<>" (RFC
 * 5321 4.5.5, RFC 3461 6.2).  A DSN that cannot be delivered is therefore
 * dropped, never bounced again; that is what stops loops.  The DSN also
 * says Auto-Submitted: auto-replied (RFC 3834) for the filters that look.
 *
 * Untrusted text: everything that ends up in a header field (diagnostics
 * from remote servers above all, but also names and addresses) is cleaned
 * first: CR, LF, TAB and other control characters become spaces, runs of
 * spaces one space, the result is cut to BOUNCE_TEXT_MAX octets and folded
 * at spaces, so a reply like "550 x\r\nX-Evil: y" cannot add a header or a
 * MIME part (the CVE-2020-8794 class).
 *
 * 8-bit and UTF-8: an original whose transaction used SMTPUTF8
 * (in->smtputf8) gets the RFC 6533 types: message/global-delivery-status,
 * "utf-8" address types where an address is not ASCII, and message/global
 * or message/global-headers for the returned content; UTF-8 is kept (when
 * well formed) in the report, and the result needs SMTPUTF8 to be sent.
 * Otherwise the report is ASCII (a non-ASCII byte in an address or name
 * becomes '?'), and returned content with 8-bit bytes is labelled 8bit and
 * needs 8BITMIME.  The return value says which (BOUNCE_NEED_*).
 */
#ifndef TERN_QUEUE_BOUNCE_H
#define TERN_QUEUE_BOUNCE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "util/util.h"

#define BOUNCE_RETURN_MAX_DEFAULT (10 * 1024 * 1024) /* octets returned */
#define BOUNCE_TEXT_MAX                                                        \
	900		      /* octets kept of one cleaned text: keeps every  \
				 line of the DSN under 998 without cutting     \
				 words */
#define BOUNCE_RCPTS_MAX 1000 /* recipients in one DSN (limits.recipients) */

enum bounce_kind {
	BOUNCE_FAILURE, /* "Undelivered Mail Returned to Sender" */
	BOUNCE_DELAY,	/* "Delayed Mail (still being retried)" */
	BOUNCE_SUCCESS, /* "Successful Mail Delivery Report" (NOTIFY=SUCCESS) */
};

enum bounce_action { /* RFC 3464 2.3.3 */
	BOUNCE_ACTION_FAILED,
	BOUNCE_ACTION_DELAYED,
	BOUNCE_ACTION_DELIVERED,
	BOUNCE_ACTION_RELAYED,	/* to a system that sends no DSNs */
	BOUNCE_ACTION_EXPANDED, /* delivered to an alias or list */
};

enum bounce_ret {	    /* RFC 3461 4.3, MAIL FROM ... RET= */
	BOUNCE_RET_DEFAULT, /* failures: full message; others: headers */
	BOUNCE_RET_FULL,    /* as DEFAULT: delays and successes never carry
			       the whole message */
	BOUNCE_RET_HDRS,    /* headers only, always */
};

struct bounce_rcpt {
	const char *final;	/* recipient address (addr-spec, no <>) */
	const char *orcpt_type; /* ORCPT address type ("rfc822"); NULL: none */
	const char *orcpt;	/* ORCPT address, xtext-decoded */
	enum bounce_action action;
	const char *status; /* "5.1.1"; NULL or malformed: x.0.0 by action */
	const char *remote_mta; /* host that answered; NULL: none */
	const char *diag_type;	/* NULL: "smtp" */
	const char *diag;	/* the reply ("550 5.1.1 no such user"), may be
				   multi-line; untrusted; NULL: none */
	time_t last_attempt;	/* 0: unknown */
	time_t retry_until;	/* delayed: when retries stop; 0: omit */
};

struct bounce_in {
	const char *reporting_mta; /* our hostname */
	const char *sender;	   /* original envelope sender: the DSN's To;
				      never "" (see above) */
	const char *envid;	   /* ENVID, xtext-decoded; NULL: none */
	time_t arrival;		   /* when the original was received */
	enum bounce_kind kind;
	enum bounce_ret ret;
	bool smtputf8;			 /* the original came with SMTPUTF8 */
	const struct bounce_rcpt *rcpts; /* those this DSN reports on */
	size_t nrcpts;			 /* 1..BOUNCE_RCPTS_MAX */
	const char *msg;		 /* the original message, CRLF form */
	size_t msg_len;
	size_t return_max;	/* most octets of it returned; 0: default.
				   Over it, only the headers are returned
				   (and those cut at a field if need be), and
				   the text part says so */
	const char *date;	/* the DSN's Date value (caller's clock) */
	const char *message_id; /* the DSN's Message-ID, "<id@host>" */
};

#define BOUNCE_NEED_8BITMIME 0x1 /* send with BODY=8BITMIME */
#define BOUNCE_NEED_SMTPUTF8 0x2 /* send with SMTPUTF8 */

/*
 * Append the DSN to out.  Returns BOUNCE_NEED_* bits (0: plain 7-bit
 * mail), or -1 on bad input (a NULL required field, no recipients) or when
 * out's maximum is reached; out->len is then as it was on entry.
 */
int bounce_build(const struct bounce_in *in, struct buf *out) WUR;

#endif
