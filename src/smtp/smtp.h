/*
 * smtp: the pure SMTP protocol core.  No I/O, no clock, no logging.
 *
 * Owns: the SMTP protocol: command and parameter parsing, replies, the
 * body reader, dot-stuffing, the server and client state machines.  May
 * call: addr and util (struct buf, str helpers) only.  The shells that
 * drive it are server/conn.c (server) and deliver/remote.c (client).
 *
 *   smtp_reply_*   reply builder (multi-line, RFC 3463 enhanced codes)
 *   smtp_cmd_*     command line parser, paths, ESMTP parameters, xtext
 *   smtp_body_*    DATA / BDAT content reader: dot-unstuffing, end of data,
 *                  bare CR/LF, line and size limits
 *   smtp_server_*  server session state machine
 *
 * Inputs are bytes with explicit lengths; outputs go to caller-owned
 * buffers (struct buf) or are views (pointer, length) into the input.
 */
#ifndef TERN_SMTP_H
#define TERN_SMTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr/addr.h"
#include "util/util.h"

/* RFC 5321 4.5.3.1 limits, and the larger ones we allow for extensions. */
#define SMTP_CMD_LINE_MAX	 512  /* octets incl. CRLF (4.5.3.1.4) */
#define SMTP_CMD_LINE_PARAMS_MAX 2048 /* MAIL/RCPT with ESMTP parameters */
#define SMTP_TEXT_LINE_MAX	 1000 /* octets incl. CRLF (4.5.3.1.6) */
#define SMTP_ENVID_MAX		 100  /* RFC 3461 4.4 */
#define SMTP_ORCPT_MAX		 500  /* RFC 3461 4.2 */
#define SMTP_AUTH_PARAM_MAX	 500  /* RFC 4954 5 */

/* ======================================================================
 * Replies
 * ====================================================================== */

/*
 * Append one reply to out.  text may hold '\n' to make a multi-line reply:
 * every line but the last is "code-enh text", the last "code enh text".
 * enh is the RFC 3463 code ("2.1.0") or NULL where RFC 2034 says none is
 * sent (greeting, EHLO/HELO).  Returns 0, or -1 if out is full.
 */
int smtp_reply(
    struct buf *out, int code, const char *enh, const char *text) WUR;
int smtp_replyf(struct buf *out, int code, const char *enh, const char *fmt,
    ...) WUR PRINTF_LIKE(4, 5);

/* ======================================================================
 * Commands
 * ====================================================================== */

enum smtp_verb {
	SMTP_VERB_UNKNOWN = 0,
	SMTP_VERB_HELO,
	SMTP_VERB_EHLO,
	SMTP_VERB_MAIL,
	SMTP_VERB_RCPT,
	SMTP_VERB_DATA,
	SMTP_VERB_BDAT,
	SMTP_VERB_RSET,
	SMTP_VERB_NOOP,
	SMTP_VERB_VRFY,
	SMTP_VERB_EXPN,
	SMTP_VERB_HELP,
	SMTP_VERB_QUIT,
	SMTP_VERB_STARTTLS,
	SMTP_VERB_AUTH,
};

enum smtp_body_type {
	SMTP_BODY_UNSPEC = 0,
	SMTP_BODY_7BIT,
	SMTP_BODY_8BITMIME
};
enum smtp_ret { SMTP_RET_UNSPEC = 0, SMTP_RET_FULL, SMTP_RET_HDRS };

#define SMTP_NOTIFY_NEVER   0x1
#define SMTP_NOTIFY_SUCCESS 0x2
#define SMTP_NOTIFY_FAILURE 0x4
#define SMTP_NOTIFY_DELAY   0x8

struct smtp_mail_params {
	bool has_size;
	uint64_t size;
	enum smtp_body_type body;
	bool smtputf8;
	bool requiretls; /* REQUIRETLS (RFC 8689 2); the server refuses it
			    outside TLS (530 5.7.10) */
	enum smtp_ret ret;
	/* xtext-decoded; "" when absent.  has_* tell absent from empty. */
	bool has_envid;
	char envid[SMTP_ENVID_MAX + 1];
	bool has_auth;
	char auth[SMTP_AUTH_PARAM_MAX + 1]; /* "<>" or a mailbox */
};

struct smtp_rcpt_params {
	unsigned notify; /* SMTP_NOTIFY_* bits, 0 = absent */
	bool has_orcpt;
	char orcpt_type[32];		/* "rfc822", "utf-8" */
	char orcpt[SMTP_ORCPT_MAX + 1]; /* xtext-decoded address */
};

struct smtp_cmd {
	enum smtp_verb verb;
	/* The text after the verb and its separating space (view into line). */
	const char *arg;
	size_t arg_len;
	/* MAIL / RCPT */
	struct addr path;
	struct smtp_mail_params mail;
	struct smtp_rcpt_params rcpt;
	/* BDAT */
	uint64_t bdat_size;
	bool bdat_last;
	/* AUTH: mechanism (upper-cased) and optional initial response (view) */
	char auth_mech[32];
	const char *auth_initial;
	size_t auth_initial_len;
};

/* A reply the parser wants sent for a bad command. */
struct smtp_err {
	int code;	 /* 500, 501, 504, 552, 555 ... */
	const char *enh; /* "5.5.2" ... (static string) */
	char text[160];	 /* human text, no CRLF */
};

/* flags for smtp_cmd_parse */
#define SMTP_CMD_F_UTF8_OK 0x1 /* SMTPUTF8 advertised: MAIL may carry it */
#define SMTP_CMD_F_UTF8_TXN                                                    \
	0x2 /* the transaction is SMTPUTF8: RCPT paths                         \
	       may hold UTF-8 (RFC 6531 3.4) */
#define SMTP_CMD_F_ESMTP                                                       \
	0x4 /* session began with EHLO: ESMTP parameters                       \
	       allowed; without it they get 555 */

/*
 * Parse one command line, line[0..len) without its CRLF.  On success fills
 * *cmd (views point into line) and returns 0.  On failure returns -1 and
 * fills *err with the reply to send (RFC 5321 4.2.3 / RFC 3463 codes):
 *   500 5.5.2 unknown verb, NUL or other control byte, line too long
 *   501 5.5.4 bad arguments; 501 5.1.7 / 5.1.3 bad sender / recipient path
 *   555 5.5.4 unknown or repeated ESMTP parameter, or a bad value
 *   552 5.3.4 is NOT decided here (the session compares SIZE to the limit)
 * Line length: the parser enforces SMTP_CMD_LINE_MAX for every verb, and
 * SMTP_CMD_LINE_PARAMS_MAX for MAIL/RCPT that carry ESMTP parameters.
 * cmd->verb is set whenever the verb is known, on failure too (a refused
 * BDAT line closes the session: its chunk cannot be found).  HELO/EHLO
 * take only a domain name (LDH labels, '_' allowed, one trailing dot) or
 * an [IPv4] / [IPv6:...] literal: anything else is 501 5.5.2.
 */
int smtp_cmd_parse(const char *line, size_t len, unsigned flags,
    struct smtp_cmd *cmd, struct smtp_err *err) WUR;

const char *smtp_verb_name(enum smtp_verb v);

/*
 * xtext (RFC 3461 4): decode s[0..len) into out (NUL-terminated).
 * Returns decoded length, or -1 on bad syntax or if out is too small.
 */
int smtp_xtext_decode(const char *s, size_t len, char *out, size_t outlen) WUR;
/* Encode for sending on; returns length or -1 if out too small. */
int smtp_xtext_encode(const char *s, size_t len, char *out, size_t outlen) WUR;

/*
 * RFC 8689 3: does the header of msg[0..len) (a whole message, or its
 * header) hold a TLS-Required field whose value is "No" (any case,
 * blanks and folding around it ignored)?  Any other value, or no such
 * field, is false.  A message with REQUIRETLS ignores the field (RFC 8689
 * 4.1): that is the caller's rule (smtp_tls_optional).
 */
bool smtp_tls_required_no(const char *msg, size_t len);
/* The sender let recipient-domain TLS policies (DANE, MTA-STS) be
   ignored: TLS-Required: No and no REQUIRETLS (RFC 8689 4.1, 5). */
bool smtp_tls_optional(bool requiretls, bool tls_required_no);

/* ======================================================================
 * Body reader (DATA and BDAT content)
 * ====================================================================== */

enum smtp_body_error {
	SMTP_BODY_OK = 0,
	SMTP_BODY_ERR_BARE_LF,	 /* LF not preceded by CR */
	SMTP_BODY_ERR_BARE_CR,	 /* CR not followed by LF */
	SMTP_BODY_ERR_NUL,	 /* NUL octet in content */
	SMTP_BODY_ERR_LINE_LONG, /* text line over 1000 octets incl. CRLF */
	SMTP_BODY_ERR_TOO_BIG,	 /* over max_size */
	SMTP_BODY_ERR_STORAGE,	 /* the sink had no room left (the shell's
				    in-flight budget or free disk space) */
};

/* Receives unstuffed content, in order; pieces may split anywhere. */
typedef void (*smtp_body_sink_fn)(void *ctx, const char *p, size_t n);

struct smtp_body {
	/* configuration */
	uint64_t max_size;
	bool dot_mode; /* true: DATA (stuffing, end at CRLF.CRLF) */
	smtp_body_sink_fn sink;
	void *sink_ctx;
	/* state, private */
	int st;
	size_t line_len;	    /* octets of the current line so far */
	uint64_t size;		    /* content octets (unstuffed) so far */
	enum smtp_body_error error; /* first error seen; content after it is
				       discarded, reading goes on to the end */
	bool done;
};

/*
 * Start reading a message.  dot_mode for DATA.  For BDAT call once per
 * message with dot_mode false and feed each chunk; line state carries
 * across chunks.  max_size 0 means no limit.
 */
void smtp_body_init(struct smtp_body *b, bool dot_mode, uint64_t max_size,
    smtp_body_sink_fn sink, void *ctx);

/*
 * Feed input.  Returns the number of octets consumed.  In dot mode reading
 * stops right after the terminating CRLF.CRLF (b->done is set and the rest
 * of the input, a pipelined command, is not consumed).  In BDAT mode all
 * input is consumed; the caller counts the chunk octets.  The terminating
 * ".CRLF" is not passed to the sink; the CRLF before it is (it ends the
 * last line).  b->error stays set once set; the sink is not called after.
 */
size_t smtp_body_feed(struct smtp_body *b, const char *in, size_t len);

/* BDAT LAST: check the message ends cleanly (a CR pending is bare). */
void smtp_body_finish(struct smtp_body *b);

/*
 * Refuse the rest of the content with e (kept only if no error came
 * first).  The sink may call it: it is not called again for this
 * message, the reading goes on to the end, and the end is refused.
 */
void smtp_body_refuse(struct smtp_body *b, enum smtp_body_error e);

/* The reply for a body error: 552 5.3.4 for size, 452 4.3.1 for storage,
 * 554 5.6.0 otherwise. */
void smtp_body_error_reply(
    enum smtp_body_error e, int *code, const char **enh, const char **text);

/* ======================================================================
 * Server session state machine
 * ====================================================================== */

enum smtp_state {
	SMTP_STATE_GREET = 0, /* before the greeting is sent */
	SMTP_STATE_INIT,      /* greeted, no EHLO/HELO yet */
	SMTP_STATE_HELO,      /* after EHLO/HELO, no transaction */
	SMTP_STATE_MAIL,      /* MAIL accepted */
	SMTP_STATE_RCPT,      /* at least one RCPT accepted */
	SMTP_STATE_DATA,      /* reading DATA content */
	SMTP_STATE_BDAT,      /* reading a BDAT chunk */
	SMTP_STATE_BDAT_WAIT, /* between BDAT chunks (no LAST yet) */
	SMTP_STATE_AUTH,      /* SASL exchange in progress */
	SMTP_STATE_TLS_WAIT,  /* 220 to STARTTLS sent; waiting for the shell's
				 smtp_server_tls_started() */
	SMTP_STATE_CLOSED,    /* QUIT or 421: no more input is read */
};

/*
 * Events the shell must decide.  When smtp_server_next() returns one of
 * the "decide" events the session is paused: it consumes no more input
 * until the shell calls smtp_server_accept() or smtp_server_reject() (or,
 * for AUTH, smtp_server_auth_challenge()).  This keeps pipelined commands
 * in order, and lets the shell answer later (the 250 after DATA is sent
 * from the queue's commit completion).
 */
enum smtp_event {
	SMTP_EV_NONE = 0,  /* need more input */
	SMTP_EV_CONNECT,   /* decide: accept -> 220 greeting */
	SMTP_EV_HELO,	   /* decide: cmd.arg is the client's name */
	SMTP_EV_MAIL,	   /* decide: cmd.path, cmd.mail */
	SMTP_EV_RCPT,	   /* decide: cmd.path, cmd.rcpt */
	SMTP_EV_DATA,	   /* decide: start of content (DATA, or first BDAT);
			      accept -> 354 for DATA; the shell resets its
			      message store before accepting */
	SMTP_EV_EOM,	   /* decide: content complete and clean; commit it,
			      then accept (-> 250) or reject (4xx/5xx) */
	SMTP_EV_STARTTLS,  /* decide: accept -> 220, then the shell discards
			      buffered input, starts TLS, and calls
			      smtp_server_tls_started() */
	SMTP_EV_AUTH,	   /* decide: cmd.auth_mech, cmd.auth_initial */
	SMTP_EV_AUTH_DATA, /* decide: a SASL response line (auth_data) */
	SMTP_EV_RESET,	   /* info: transaction dropped (RSET, EHLO, body
			      refused, BDAT error): free its data */
	SMTP_EV_QUIT,	   /* info: 221 queued; close after flushing */
	SMTP_EV_CLOSE,	   /* info: 421 queued (errors); close after flushing */
};

struct smtp_server_conf {
	const char *hostname;	     /* greeting, EHLO */
	uint64_t max_message_size;   /* SIZE; 552 5.3.4 over it */
	unsigned max_recipients;     /* 452 4.5.3 past it */
	unsigned max_errors;	     /* 421 after this many error replies */
	bool tls_available;	     /* offer STARTTLS (until active) */
	bool auth_available;	     /* offer AUTH (the shell decides when) */
	smtp_body_sink_fn body_sink; /* content goes here */
	void *body_ctx;
};

struct smtp_server;

struct smtp_server *smtp_server_new(
    const struct smtp_server_conf *conf, struct buf *out);
void smtp_server_free(struct smtp_server *s);

/*
 * Process input.  in[0..len) is the unconsumed input; *consumed_out gets
 * how much was used.  Replies are appended to the session's out buffer.
 * Call repeatedly until it returns SMTP_EV_NONE with nothing consumed
 * (need more input) or a decide event (then answer it first).
 * Call once with len 0 right after creation: it returns SMTP_EV_CONNECT.
 */
enum smtp_event smtp_server_next(
    struct smtp_server *s, const char *in, size_t len, size_t *consumed_out);

/* The command behind the current event (valid until the next call). */
const struct smtp_cmd *smtp_server_cmd(const struct smtp_server *s);

/* Accept the pending event with the standard reply (250 2.1.0 ... / 354). */
void smtp_server_accept(struct smtp_server *s);
/*
 * Reject the pending event with this reply; the state stays as it was
 * (for EOM and DATA: the transaction is reset).  A 421 closes the session.
 * A 5xx counts towards max_errors.  A 5xx at connect is the greeting of a
 * refused session (RFC 5321 3.1): every command but QUIT then gets 503.
 */
void smtp_server_reject(
    struct smtp_server *s, int code, const char *enh, const char *text);
/* Accept with a custom reply text (e.g. "250 2.0.0 Ok: queued as ID"). */
void smtp_server_accept_text(struct smtp_server *s, const char *text);

/* SASL: send "334 <challenge>" and wait for a response line. */
void smtp_server_auth_challenge(struct smtp_server *s, const char *b64);
const char *smtp_server_auth_data(const struct smtp_server *s, size_t *len_out);

/* After a TLS handshake: forget everything (RFC 3207 4.2), keep counters. */
void smtp_server_tls_started(struct smtp_server *s);
void smtp_server_set_auth_available(struct smtp_server *s, bool on);

/*
 * From the body sink: the content cannot be kept (SMTP_BODY_ERR_STORAGE).
 * The rest of the DATA content, or of the current BDAT chunk, is read and
 * dropped; then 452 4.3.1 answers it and the transaction is reset
 * (EV_RESET), so the shell frees what it held at once.  No-op outside
 * content.
 */
void smtp_server_body_refuse(struct smtp_server *s);

/* The shell's own 421 (timeout 4.4.2, shutdown 4.3.2): queue it, close. */
void smtp_server_shutdown(
    struct smtp_server *s, const char *enh, const char *text);

enum smtp_state smtp_server_state(const struct smtp_server *s);
bool smtp_server_esmtp(const struct smtp_server *s);	   /* EHLO, not HELO */
const char *smtp_server_helo(const struct smtp_server *s); /* client's name */
bool smtp_server_in_transaction(const struct smtp_server *s);
/* True while DATA/BDAT content is being read (for the data timeout). */
bool smtp_server_reading_body(const struct smtp_server *s);
/* The message's SMTPUTF8 / BODY= from MAIL. */
const struct smtp_mail_params *smtp_server_mail_params(
    const struct smtp_server *s);
unsigned smtp_server_rcpt_count(const struct smtp_server *s);

/* ======================================================================
 * Client: reply parser, EHLO capabilities, client session, dot-stuffing
 * (smtp_client.c, smtp_stuff.c)
 * ====================================================================== */

#define SMTP_REPLY_IN_LINE_MAX                                                 \
	512			     /* octets of a reply line incl. CRLF      \
					(RFC 5321 4.5.3.1.5) */
#define SMTP_REPLY_IN_LINES_MAX 100  /* lines in one multi-line reply */
#define SMTP_REPLY_IN_TEXT_MAX	2048 /* joined text kept, incl. the NUL */

/*
 * A reply from a server.  text: the text of every line (after the code,
 * the separator and, when present, the line's enhanced code and its space)
 * joined with '\n'.  It is cut with "..." when longer than the field
 * (text_cut).  Control bytes other than TAB are stored as '?'; bytes
 * >= 0x80 are kept (SMTPUTF8 servers send UTF-8): sanitise before logging.
 */
struct smtp_parsed_reply {
	int code;     /* 200..559 */
	char enh[16]; /* RFC 3463 code of line 1, or "" */
	char text[SMTP_REPLY_IN_TEXT_MAX];
	size_t text_len;
	bool text_cut;
	unsigned nlines;
};

/*
 * Parse one reply at the start of in[0..len) (RFC 5321 4.2, 4.2.1).
 * Returns 1 and sets *consumed_out when a whole reply was parsed, 0 when
 * more input is needed, -1 on a protocol error: a code that is not
 * [2-5][0-5][0-9], a separator other than ' ' or '-', codes differing
 * between lines, a line over SMTP_REPLY_IN_LINE_MAX octets, more than
 * SMTP_REPLY_IN_LINES_MAX lines, a NUL or a CR not before the LF.  A line
 * may end with a bare LF (liberal where it is safe).  An enhanced code is
 * recognised only when its class is the reply code's first digit.
 */
int smtp_reply_parse(const char *in, size_t len, struct smtp_parsed_reply *r,
    size_t *consumed_out) WUR;

#define SMTP_CAP_PIPELINING	     0x001
#define SMTP_CAP_SIZE		     0x002
#define SMTP_CAP_8BITMIME	     0x004
#define SMTP_CAP_SMTPUTF8	     0x008
#define SMTP_CAP_DSN		     0x010
#define SMTP_CAP_STARTTLS	     0x020
#define SMTP_CAP_CHUNKING	     0x040
#define SMTP_CAP_ENHANCEDSTATUSCODES 0x080
#define SMTP_CAP_AUTH		     0x100
#define SMTP_CAP_REQUIRETLS	     0x200

#define SMTP_CAP_AUTH_PLAIN 0x1
#define SMTP_CAP_AUTH_LOGIN 0x2

struct smtp_caps {
	unsigned flags;	   /* SMTP_CAP_* */
	uint64_t size_max; /* SIZE's value; 0 = no limit announced */
	unsigned auth;	   /* SMTP_CAP_AUTH_* mechanisms offered */
};

/*
 * The extensions a 250 reply to EHLO announces (lines 2.., keywords in
 * any case; "AUTH=PLAIN" old style counts too).  Anything else gives no
 * capabilities.  Keywords on a line cut by text_cut may be lost.
 */
void smtp_ehlo_caps(const struct smtp_parsed_reply *r, struct smtp_caps *caps);

#define SMTP_CLIENT_RCPT_MAX 1000 /* recipients per transaction */

/* struct smtp_client_conf.downgrade: what the shell found in the message
   (mime_plan_7bit) for a peer without 8BITMIME */
#define SMTP_DOWNGRADE_OK	0x1 /* the body has a 7-bit form */
#define SMTP_DOWNGRADE_HDR_8BIT 0x2 /* header fields have 8-bit octets */
#define SMTP_CLIENT_TEXT_MAX	512 /* result text kept, incl. the NUL */
#define SMTP_CLIENT_CRED_MAX	255 /* octets of AUTH user and password */

struct smtp_client_rcpt {
	const char *addr;	/* "local@domain" as addr_format() gives */
	unsigned notify;	/* SMTP_NOTIFY_* bits; 0: no NOTIFY */
	const char *orcpt_type; /* "rfc822"; NULL: no ORCPT */
	const char *orcpt;	/* the original address, not encoded */
};

/*
 * Everything is copied by smtp_client_new(); conf may go away after it.
 * The message part (sender .. envid) is what smtp_client_reset_message()
 * replaces.  Addresses: at most ADDR_PATH_MAX - 2 octets, no control
 * bytes; an address with bytes >= 0x80 makes the message need SMTPUTF8
 * even if smtputf8 is false.
 */
struct smtp_client_conf {
	const char *helo; /* our name, for EHLO/HELO */
	/* the message */
	const char *sender; /* "" for <> */
	const struct smtp_client_rcpt *rcpts;
	size_t nrcpts;		   /* 1..SMTP_CLIENT_RCPT_MAX */
	uint64_t size;		   /* octets, for SIZE= */
	bool body_8bit;		   /* 8-bit content: BODY=8BITMIME if
				      offered, else the 7-bit form
				      (RFC 6152 3) or a refusal */
	unsigned downgrade;	   /* SMTP_DOWNGRADE_* bits: can the
				      body be made 7-bit? */
	uint64_t size_7bit;	   /* octets of that 7-bit form */
	const char *downgrade_why; /* why there is none, for the
				      5.6.3 text; NULL: not said */
	bool smtputf8;		   /* needs SMTPUTF8 (RFC 6531) */
	enum smtp_ret ret;	   /* RET=, sent only with DSN */
	const char *envid;	   /* ENVID (not encoded); NULL/"" */
	bool requiretls;	   /* RFC 8689: see smtp_client_new */
	/* the session */
	bool want_starttls;	 /* opportunistic STARTTLS */
	bool require_tls;	 /* no TLS -> fail, temporary */
	bool tls_active;	 /* the connection is TLS already */
	bool tls_verified;	 /* ... and its peer was verified */
	bool tls_policy;	 /* the next hop is one a policy (DANE,
				    MTA-STS, relay.smarthost_tls =
				    verify) names and verifies: with
				    tls_verified, a REQUIRETLS hop */
	const char *auth_user;	 /* AUTH PLAIN (LOGIN if that is all
				    the peer offers) when non-NULL */
	const char *auth_pass;	 /* copied, wiped on free; the AUTH
				    line passes through out: the
				    shell wipes that buffer */
	bool auth_unverified_ok; /* allow AUTH over TLS whose peer
				    was not verified (the admin
				    named that risk); else 451 4.7.5
				    and the credentials stay here */
	bool auth_plaintext_ok;	 /* allow AUTH without TLS (and so
				    over unverified TLS too) */
	bool lmtp;		 /* RFC 2033: LHLO (a 4xx/5xx fails,
				    no HELO), no STARTTLS nor AUTH
				    (conf with require_tls or
				    auth_user is invalid), and after
				    the final dot one reply per
				    accepted recipient, each deciding
				    that recipient */
};

enum smtp_client_action {
	SMTP_CLIENT_NEED_INPUT =
	    0,		       /* read more, call again with all unconsumed */
	SMTP_CLIENT_SEND,      /* flush out, then call again */
	SMTP_CLIENT_STARTTLS,  /* drop unread input, handshake, then
				  smtp_client_tls_done() (or _fail()) */
	SMTP_CLIENT_SEND_BODY, /* 354: stream the body through smtp_stuff,
				  then call again for the final reply */
	SMTP_CLIENT_DONE,      /* transaction over, results set: reset
				  for another message, or quit */
	SMTP_CLIENT_FAILED,    /* connection unusable, results set: flush
				  out (maybe a QUIT) best effort, close */
	SMTP_CLIENT_CLOSED,    /* QUIT answered: close */
};

enum smtp_result_class {
	SMTP_RESULT_NONE = 0, /* not decided yet */
	SMTP_RESULT_OK,	      /* delivered (250 after the final dot) */
	SMTP_RESULT_TEMP,     /* try again later / next MX */
	SMTP_RESULT_PERM,     /* bounce */
};

struct smtp_client_result {
	enum smtp_result_class cls;
	int code;
	char enh[16];
	char text[SMTP_CLIENT_TEXT_MAX];
	bool remote;	 /* code and text came from the peer, not from tern */
	const char *cmd; /* "RCPT TO", "end of data"... the reply answered
			    (static); NULL when tern decided alone */
	bool dsn_passed; /* NOTIFY/ORCPT went to a peer offering DSN; if
			    false and NOTIFY has SUCCESS, the queue sends a
			    "relayed" DSN on OK (RFC 3461 5.2.2) */
};
/* A result tern states itself (remote false, no cmd): an enhanced code
 * that does not fit is dropped whole, a text is cut with "..." */
void smtp_client_result_set(struct smtp_client_result *res,
    enum smtp_result_class cls, int code, const char *enh, const char *text);

/*
 * The session: greeting (not 220: FAILED, 4xx temporary, 5xx permanent),
 * EHLO (any 5xx: HELO), STARTTLS when offered and wanted (refused: go on
 * in plaintext unless require_tls), AUTH PLAIN (5xx: FAILED permanent;
 * only over TLS, and over unverified TLS only with auth_unverified_ok:
 * else FAILED 451 4.7.0 / 4.7.5 with nothing sent),
 * then [RSET] MAIL RCPT... DATA, all in one batch with PIPELINING.  A
 * message over the peer's SIZE (552 5.3.4) or needing SMTPUTF8 the peer
 * lacks (553 5.6.7) is refused for every recipient without a command:
 * DONE.  An 8-bit body to a peer without 8BITMIME (RFC 6152 3): with
 * SMTP_DOWNGRADE_OK and no 8-bit header field (or SMTPUTF8 on both
 * sides) the shell sends its 7-bit form (smtp_client_downgrade() says
 * so; SIZE= is size_7bit, no BODY=); else 554 5.6.3 for every recipient,
 * nothing sent.  DSN parameters go only to a DSN peer; ORCPT only of type
 * rfc822 with an ASCII address; ENVID/ORCPT only when their xtext fits
 * RFC 3461's 100/500 octets.  No recipient accepted: no DATA (a pipelined
 * DATA's error reply is ignored) and RSET before the next message.  Any
 * 421, a reply that does not parse, or an unexpected reply: FAILED
 * temporary.
 * REQUIRETLS (RFC 8689 4.2.1), for a message with requiretls and a
 * sender (a bounce, <>, is never held back: RFC 8689 5) over SMTP (LMTP
 * is the final hop): before MAIL, a session that is not TLS, or whose
 * peer was not verified under a policy (tls_verified and tls_policy),
 * refuses every recipient with 550 5.7.10, and a peer whose EHLO over
 * TLS lacks REQUIRETLS with 550 5.7.30; nothing is sent.  Otherwise MAIL
 * carries REQUIRETLS (a bounce's too, when the peer offers it over TLS).
 */
struct smtp_client;

/* NULL if conf is invalid (see struct smtp_client_conf). */
struct smtp_client *smtp_client_new(const struct smtp_client_conf *conf);
/* Does smtp_client_new() take h as conf->helo?  1..ADDR_DOMAIN_MAX
   octets, no space or control byte; NULL is not. */
bool smtp_client_helo_ok(const char *h);
void smtp_client_free(struct smtp_client *c); /* wipes the password */

/*
 * Drive the session.  in[0..len) is all server input not yet consumed
 * (the same bytes again, plus new ones, on the next call); *consumed gets
 * how many were used.  Commands are appended to out.  Call it first with
 * no input after smtp_client_new().
 */
enum smtp_client_action smtp_client_next(struct smtp_client *c, const char *in,
    size_t len, size_t *consumed, struct buf *out);

/* After SMTP_CLIENT_STARTTLS and a good handshake: EHLO again (RFC 3207).
 * verified: the peer's certificate chained to a trusted CA and matched
 * the name the shell expected (tls_peer_verified()). */
void smtp_client_tls_done(struct smtp_client *c, bool verified);
/* In DONE: the next message on this connection; 0, or -1 (bad conf or
 * wrong state).  Only the message fields of conf are used. */
int smtp_client_reset_message(
    struct smtp_client *c, const struct smtp_client_conf *conf) WUR;
/* In DONE: the next call sends QUIT, the one after returns CLOSED. */
void smtp_client_quit(struct smtp_client *c);
/* The shell's own failure (timeout, lost connection, TLS failure): sets
 * every undecided result from code/enh/text; state FAILED. */
void smtp_client_fail(
    struct smtp_client *c, int code, const char *enh, const char *text);

size_t smtp_client_nrcpts(const struct smtp_client *c);
const struct smtp_client_result *smtp_client_result(
    const struct smtp_client *c, size_t i);
/* Why the session FAILED (or the last tern-made transaction failure). */
const struct smtp_client_result *smtp_client_error(const struct smtp_client *c);
const struct smtp_caps *smtp_client_caps(const struct smtp_client *c);
/* After SEND_BODY: the body must go out in its 7-bit form (RFC 6152). */
bool smtp_client_downgrade(const struct smtp_client *c);
bool smtp_client_tls(const struct smtp_client *c);
/* The peer's host name: the first word of its greeting or of its
 * EHLO/HELO reply (the later wins), "" when none looked like a host name
 * or address literal.  TLS-RPT's receiving-mx-helo (RFC 8460 4.3). */
const char *smtp_client_peer_name(const struct smtp_client *c);
/* In DONE: the transaction was refused, nothing sent, because the hop
 * does not meet the message's REQUIRETLS (550 5.7.10 / 5.7.30).  The
 * shell then tries the domain's next MX host (RFC 8689 4.2.1). */
bool smtp_client_requiretls_refused(const struct smtp_client *c);
/* The command whose reply is awaited ("MAIL FROM"...), for timeouts and
 * logs; NULL when none is. */
const char *smtp_client_waiting(const struct smtp_client *c);

/*
 * Dot-stuffing for DATA (RFC 5321 4.5.2).  A zeroed struct is the start
 * state.  Input is the stored message, CRLF lines; a bare CR or LF is
 * written as CRLF, so the output never has a bare line ending nor a line
 * starting with an unstuffed '.', whatever the receiver's parser.
 * feed/finish return 0, or -1 when out is full (out may then hold part).
 */
struct smtp_stuff {
	bool mid_line; /* the last octet written was not a line's end */
	bool cr;       /* the last octet written was a CR: LF follows */
	uint64_t out_octets;
};

void smtp_stuff_init(struct smtp_stuff *s);
int smtp_stuff_feed(
    struct smtp_stuff *s, const char *in, size_t len, struct buf *out) WUR;
/* End an unterminated last line with CRLF, then append ".\r\n". */
int smtp_stuff_finish(struct smtp_stuff *s, struct buf *out) WUR;

#endif
