/*
 * smtp_server: the server session state machine of the pure SMTP core
 * (RFC 5321; PIPELINING RFC 2920, CHUNKING RFC 3030, STARTTLS RFC 3207,
 * AUTH RFC 4954, enhanced status codes RFC 2034 / RFC 3463, REQUIRETLS
 * RFC 8689: offered and accepted only once the session is TLS).
 *
 * Bytes go in through smtp_server_next(), replies come out in the caller's
 * out buffer, and whatever needs a policy decision (greeting, HELO, MAIL,
 * RCPT, DATA, end of message, STARTTLS, AUTH) comes out as a "decide"
 * event.  No I/O, no clock, no logging.
 *
 * Invariants:
 *   - At most one event per smtp_server_next() call, and nothing is
 *     consumed while a decide event waits for its answer, so pipelined
 *     commands are answered strictly in order (RFC 2920 3.1).
 *   - The views in the command (arg, auth_initial) point into the caller's
 *     input and die when the caller drains it, which it may do before it
 *     answers.  The session copies what it keeps: the HELO name (at most
 *     SRV_HELO_MAX octets) when EV_HELO is reported, the MAIL parameters on
 *     accept.  The struct smtp_cmd itself is the session's and stays valid
 *     until the next smtp_server_next() call.
 *   - EV_HELO drops the transaction when it is reported, whatever the
 *     answer: the shell drops its own transaction data on EV_HELO, so both
 *     sides agree without an extra EV_RESET (RFC 5321 4.1.4: a new EHLO
 *     acts as RSET).  A rejected HELO keeps the previous name.
 *   - Rejecting EV_DATA or EV_EOM resets the transaction (smtp.h).  A
 *     rejected first BDAT still has its chunk read and dropped before the
 *     reply, as does a BDAT in the wrong state (RFC 3030 3): the octets of
 *     a chunk are never read as commands.  A BDAT line that cannot be
 *     parsed (bad size, too long, control bytes, bare LF) gets its error
 *     reply, then 421, and the session closes: where its chunk would end
 *     is unknown, and guessing would run chunk octets as commands.
 *   - After the 220 to STARTTLS nothing more is consumed; the shell throws
 *     its buffered input away (RFC 3207 5, CVE-2011-0411) and calls
 *     smtp_server_tls_started(), which forgets everything but the counters.
 *   - A SASL response line is copied into the session (it may arrive in
 *     pieces) and wiped with explicit_bzero as soon as it is answered.
 *   - Error counting: every 5xx to a command counts, including the shell's
 *     5xx rejections; a refused message (body errors, EOM rejections) and
 *     4xx replies do not.  At max_errors a 421 follows and the session
 *     closes.  A reply that cannot be queued (out full) closes it too.
 *   - A session that closes inside an answer or smtp_server_shutdown()
 *     reports SMTP_EV_CLOSE from the next smtp_server_next() call, once.
 *
 * Limits: a command line is found within SMTP_CMD_LINE_PARAMS_MAX octets
 * (the caller must offer at least that much plus one when it has it);
 * longer lines are read to their LF and refused whole.  A SASL line may be
 * SRV_AUTH_LINE_MAX octets with its CRLF.  An idle session holds about 300
 * octets plus its HELO name; the parsed command and the MAIL parameters
 * are allocated only while they are needed.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp.h"

#define SRV_HELO_MAX	  255	/* a domain (RFC 5321 4.5.3.1.2) */
#define SRV_AUTH_LINE_MAX 12288 /* octets incl. CRLF (RFC 4954 4) */
#define SRV_DEFERRED_MAX  4096	/* one reply held while a chunk is read */

/* What a line being thrown away to its LF is answered with. */
enum srv_skip {
	SRV_SKIP_NONE = 0,
	SRV_SKIP_CMD,  /* command line too long */
	SRV_SKIP_AUTH, /* SASL line too long */
};

struct smtp_server {
	struct smtp_server_conf conf;
	struct buf *out;
	enum smtp_state state;
	enum smtp_event pending; /* decide event awaiting its answer */
	struct smtp_cmd *cmd;	 /* last parsed command; freed when idle */
	char *helo;		 /* accepted HELO/EHLO name */
	char *helo_pending;	 /* name behind a pending EV_HELO */
	struct smtp_mail_params *mail; /* accepted MAIL, during a transaction */
	struct smtp_body body;
	uint64_t bdat_left;  /* octets of the current chunk to read */
	uint64_t bdat_chunk; /* size of the current chunk */
	uint64_t drop_left;  /* octets of a refused chunk to drop */
	struct buf deferred; /* reply sent once the chunk is dropped */
	int deferred_code;
	struct buf auth_line; /* SASL response being read (secret) */
	unsigned rcpt_count;
	unsigned errors;
	enum srv_skip skip;
	bool dropping; /* reading a refused chunk */
	bool bdat_last;
	bool esmtp;
	bool tls_active;
	bool auth_available;
	bool authenticated;
	bool close_unreported; /* closed outside next(): report EV_CLOSE */
	bool refused;	       /* greeted 5xx: only QUIT (RFC 5321 3.1) */
};

struct srv_reply {
	int code;
	const char *enh;
	const char *text;
};

static const struct srv_reply srv_r_need_helo = {
    503, "5.5.1", "Send HELO/EHLO first"};
static const struct srv_reply srv_r_nested_mail = {
    503, "5.5.1", "Nested MAIL command"};
static const struct srv_reply srv_r_need_mail = {
    503, "5.5.1", "Need MAIL command"};
static const struct srv_reply srv_r_need_rcpt = {
    503, "5.5.1", "Need RCPT command"};
static const struct srv_reply srv_r_in_bdat = {
    503, "5.5.1", "Only BDAT, RSET, NOOP, EHLO, HELO, QUIT between chunks"};
static const struct srv_reply srv_r_data_bdat = {
    503, "5.5.1", "DATA not allowed after BDAT in the same transaction"};
static const struct srv_reply srv_r_size = {
    552, "5.3.4", "Message size exceeds fixed maximum message size"};
static const struct srv_reply srv_r_too_many_rcpt = {
    452, "4.5.3", "Too many recipients"};
static const struct srv_reply srv_r_no_tls = {
    502, "5.5.1", "STARTTLS not available"};
static const struct srv_reply srv_r_tls_txn = {
    503, "5.5.1", "STARTTLS not allowed in a mail transaction"};
/* RFC 8689 2: REQUIRETLS only over TLS; 530 as for a command that needs
 * STARTTLS first (RFC 3207 4), 5.7.10 "encryption needed" (RFC 5248) */
static const struct srv_reply srv_r_requiretls = {
    530, "5.7.10", "REQUIRETLS needs a TLS session: STARTTLS first"};
static const struct srv_reply srv_r_no_auth = {
    503, "5.5.1", "AUTH not available"};
static const struct srv_reply srv_r_authed = {
    503, "5.5.1", "Already authenticated"};
static const struct srv_reply srv_r_auth_txn = {
    503, "5.5.1", "AUTH not allowed in a mail transaction"};
static const struct srv_reply srv_r_auth_ehlo = {
    503, "5.5.1", "Send EHLO first"};
static const struct srv_reply srv_r_line_long = {500, "5.5.2", "Line too long"};
static const struct srv_reply srv_r_bare_lf = {
    500, "5.5.2", "Command line must end with CRLF"};
/* RFC 5321 3.1: after a 554 greeting the server waits for QUIT and
 * answers every other command 503 */
static const struct srv_reply srv_r_refused = {
    503, "5.5.1", "Service refused, only QUIT is accepted"};
static const struct srv_reply srv_r_unknown = {
    500, "5.5.2", "Command unrecognized"};
static const struct srv_reply srv_r_auth_long = {
    500, "5.5.6", "Authentication exchange line is too long"};
static const struct srv_reply srv_r_auth_cancel = {
    501, "5.0.0", "Authentication cancelled"};
static const struct srv_reply srv_r_ok = {250, "2.0.0", "Ok"};
static const struct srv_reply srv_r_vrfy = {252, "2.0.0",
    "Cannot VRFY user, but will accept message and attempt delivery"};
static const struct srv_reply srv_r_expn = {502, "5.5.1", "EXPN not available"};
static const struct srv_reply srv_r_help = {214, "2.0.0",
    "Supported commands:\n"
    "HELO EHLO MAIL RCPT DATA BDAT RSET\n"
    "NOOP VRFY EXPN HELP QUIT STARTTLS AUTH\n"
    "End of HELP info"};
static const struct srv_reply srv_r_bye = {221, "2.0.0", "Bye"};

/* 10,000 idle sessions must stay cheap */
_Static_assert(sizeof(struct smtp_server) <= 512, "session struct too big");

static const struct smtp_cmd srv_no_cmd;
static const struct smtp_mail_params srv_no_mail;

/* ---- replies and closing ------------------------------------------------ */

/* Closed without an event to say so: the next call reports EV_CLOSE. */
static void
srv_close(struct smtp_server *s)
{
	s->state = SMTP_STATE_CLOSED;
	s->close_unreported = true;
}

/* A reply that cannot be queued leaves the client without an answer. */
static void
srv_check(struct smtp_server *s, int rc)
{
	if (rc == -1)
		srv_close(s);
}

static void
srv_reply(struct smtp_server *s, int code, const char *enh, const char *text)
{
	srv_check(s, smtp_reply(s->out, code, enh, text));
}

/* A 5xx to a command is a client error; too many of them end the session. */
static void
srv_count(struct smtp_server *s, int code)
{
	if (code < 500 || code > 599 || s->state == SMTP_STATE_CLOSED)
		return;
	s->errors++;
	if (s->conf.max_errors == 0 || s->errors < s->conf.max_errors)
		return;
	srv_check(
	    s, smtp_replyf(s->out, 421, "4.7.0",
		   "%s Too many errors, closing connection", s->conf.hostname));
	srv_close(s);
}

static void
srv_reply_err(
    struct smtp_server *s, int code, const char *enh, const char *text)
{
	srv_reply(s, code, enh, text);
	srv_count(s, code);
}

static void
srv_reply_r(struct smtp_server *s, const struct srv_reply *r)
{
	srv_reply_err(s, r->code, r->enh, r->text);
}

/* The event to return, unless the session closed on the way. */
static enum smtp_event
srv_done(struct smtp_server *s, enum smtp_event ev)
{
	if (s->state == SMTP_STATE_CLOSED && s->close_unreported) {
		s->close_unreported = false;
		return SMTP_EV_CLOSE;
	}
	return ev;
}

/* ---- session data ------------------------------------------------------- */

static bool
srv_state_in_txn(enum smtp_state st)
{
	return st == SMTP_STATE_MAIL || st == SMTP_STATE_RCPT ||
	       st == SMTP_STATE_DATA || st == SMTP_STATE_BDAT ||
	       st == SMTP_STATE_BDAT_WAIT;
}

static void
srv_txn_reset(struct smtp_server *s)
{
	free(s->mail);
	s->mail = NULL;
	s->rcpt_count = 0;
	s->bdat_left = 0;
	s->bdat_chunk = 0;
	s->bdat_last = false;
	if (srv_state_in_txn(s->state))
		s->state = SMTP_STATE_HELO;
}

static void
srv_auth_wipe(struct smtp_server *s)
{
	buf_wipe(&s->auth_line);
}

static struct smtp_cmd *
srv_cmd_get(struct smtp_server *s)
{
	if (s->cmd == NULL)
		s->cmd = xmalloc(sizeof(*s->cmd));
	return s->cmd;
}

static void
srv_cmd_release(struct smtp_server *s)
{
	free(s->cmd);
	s->cmd = NULL;
}

static enum smtp_event
srv_pend(struct smtp_server *s, enum smtp_event ev)
{
	s->pending = ev;
	return ev;
}

/* ---- refused BDAT chunks ------------------------------------------------ */

static void
srv_drop_end(struct smtp_server *s)
{
	int code = s->deferred_code;

	s->dropping = false;
	srv_check(s, buf_append(s->out, s->deferred.data, s->deferred.len));
	buf_free(&s->deferred);
	srv_count(s, code);
}

/*
 * Read and drop n octets of chunk, then send the reply: the chunk follows
 * its command whatever we think of it (RFC 3030 3).
 */
static void
srv_drop_start(struct smtp_server *s, uint64_t n, int code, const char *enh,
    const char *text)
{
	buf_reset(&s->deferred);
	if (smtp_reply(&s->deferred, code, enh, text) == -1) {
		buf_free(&s->deferred);
		srv_close(s);
		return;
	}
	s->deferred_code = code;
	s->drop_left = n;
	s->dropping = true;
	if (n == 0)
		srv_drop_end(s);
}

static enum smtp_event
srv_drop(struct smtp_server *s, size_t len, size_t *consumed_out)
{
	size_t take = s->drop_left < len ? (size_t)s->drop_left : len;

	s->drop_left -= take;
	*consumed_out = take;
	if (s->drop_left == 0)
		srv_drop_end(s);
	return srv_done(s, SMTP_EV_NONE);
}

/* ---- verb checks: refuse without side effects ---------------------------- */

static const struct srv_reply *
srv_check_mail(const struct smtp_server *s)
{
	const struct smtp_mail_params *m = &s->cmd->mail;

	if (s->state == SMTP_STATE_INIT)
		return &srv_r_need_helo;
	if (s->state != SMTP_STATE_HELO)
		return &srv_r_nested_mail;
	if (m->has_size && s->conf.max_message_size != 0 &&
	    m->size > s->conf.max_message_size)
		return &srv_r_size;
	if (m->requiretls && !s->tls_active)
		return &srv_r_requiretls;
	return NULL;
}

static const struct srv_reply *
srv_check_rcpt(const struct smtp_server *s)
{
	if (s->state == SMTP_STATE_BDAT_WAIT)
		return &srv_r_in_bdat;
	if (s->state != SMTP_STATE_MAIL && s->state != SMTP_STATE_RCPT)
		return &srv_r_need_mail;
	if (s->conf.max_recipients != 0 &&
	    s->rcpt_count >= s->conf.max_recipients)
		return &srv_r_too_many_rcpt;
	return NULL;
}

static const struct srv_reply *
srv_check_data(const struct smtp_server *s)
{
	if (s->state == SMTP_STATE_BDAT_WAIT)
		return &srv_r_data_bdat;
	if (s->state != SMTP_STATE_RCPT)
		return &srv_r_need_rcpt;
	return NULL;
}

static const struct srv_reply *
srv_check_bdat(const struct smtp_server *s)
{
	if (s->state != SMTP_STATE_RCPT && s->state != SMTP_STATE_BDAT_WAIT)
		return &srv_r_need_rcpt;
	return NULL;
}

static const struct srv_reply *
srv_check_starttls(const struct smtp_server *s)
{
	if (!s->conf.tls_available || s->tls_active)
		return &srv_r_no_tls;
	if (srv_state_in_txn(s->state))
		return &srv_r_tls_txn;
	return NULL;
}

static const struct srv_reply *
srv_check_auth(const struct smtp_server *s)
{
	if (!s->auth_available)
		return &srv_r_no_auth;
	if (s->authenticated)
		return &srv_r_authed;
	if (srv_state_in_txn(s->state))
		return &srv_r_auth_txn;
	if (s->state != SMTP_STATE_HELO || !s->esmtp)
		return &srv_r_auth_ehlo;
	return NULL;
}

/* ---- verb actions ------------------------------------------------------- */

static enum smtp_event
srv_apply_helo(struct smtp_server *s)
{
	size_t n =
	    s->cmd->arg_len < SRV_HELO_MAX ? s->cmd->arg_len : SRV_HELO_MAX;

	/* copied now: the view dies when the caller drains its input */
	free(s->helo_pending);
	s->helo_pending = xstrndup(s->cmd->arg, n);
	srv_txn_reset(s);
	return srv_pend(s, SMTP_EV_HELO);
}

static enum smtp_event
srv_apply_mail(struct smtp_server *s)
{
	return srv_pend(s, SMTP_EV_MAIL);
}

static enum smtp_event
srv_apply_rcpt(struct smtp_server *s)
{
	return srv_pend(s, SMTP_EV_RCPT);
}

static enum smtp_event
srv_apply_data(struct smtp_server *s)
{
	return srv_pend(s, SMTP_EV_DATA);
}

static void
srv_bdat_begin(struct smtp_server *s)
{
	s->state = SMTP_STATE_BDAT;
	s->bdat_left = s->bdat_chunk = s->cmd->bdat_size;
	s->bdat_last = s->cmd->bdat_last;
}

/* The first chunk of a message is a decision; the ones after it are not. */
static enum smtp_event
srv_apply_bdat(struct smtp_server *s)
{
	if (s->state == SMTP_STATE_RCPT)
		return srv_pend(s, SMTP_EV_DATA);
	srv_bdat_begin(s);
	return SMTP_EV_NONE;
}

static enum smtp_event
srv_apply_rset(struct smtp_server *s)
{
	srv_txn_reset(s);
	srv_reply_r(s, &srv_r_ok);
	return SMTP_EV_RESET;
}

static enum smtp_event
srv_apply_noop(struct smtp_server *s)
{
	srv_reply_r(s, &srv_r_ok);
	return SMTP_EV_NONE;
}

static enum smtp_event
srv_apply_vrfy(struct smtp_server *s)
{
	/* RFC 5321 3.5.3: 252 without saying whether the user exists */
	srv_reply_r(s, &srv_r_vrfy);
	return SMTP_EV_NONE;
}

static enum smtp_event
srv_apply_expn(struct smtp_server *s)
{
	srv_reply_r(s, &srv_r_expn);
	return SMTP_EV_NONE;
}

static enum smtp_event
srv_apply_help(struct smtp_server *s)
{
	srv_reply_r(s, &srv_r_help);
	return SMTP_EV_NONE;
}

static enum smtp_event
srv_apply_quit(struct smtp_server *s)
{
	srv_txn_reset(s);
	s->state = SMTP_STATE_CLOSED;
	srv_reply_r(s, &srv_r_bye);
	return SMTP_EV_QUIT;
}

static enum smtp_event
srv_apply_starttls(struct smtp_server *s)
{
	return srv_pend(s, SMTP_EV_STARTTLS);
}

static enum smtp_event
srv_apply_auth(struct smtp_server *s)
{
	return srv_pend(s, SMTP_EV_AUTH);
}

/*
 * The verb table: check refuses with a reply and changes nothing; apply
 * changes the state, replies or reports an event.  No check: always allowed
 * in a command state.
 */
struct srv_verb {
	enum smtp_verb verb;
	const struct srv_reply *(*check)(const struct smtp_server *);
	enum smtp_event (*apply)(struct smtp_server *);
};

static const struct srv_verb srv_verbs[] = {
    {SMTP_VERB_HELO, NULL, srv_apply_helo},
    {SMTP_VERB_EHLO, NULL, srv_apply_helo},
    {SMTP_VERB_MAIL, srv_check_mail, srv_apply_mail},
    {SMTP_VERB_RCPT, srv_check_rcpt, srv_apply_rcpt},
    {SMTP_VERB_DATA, srv_check_data, srv_apply_data},
    {SMTP_VERB_BDAT, srv_check_bdat, srv_apply_bdat},
    {SMTP_VERB_RSET, NULL, srv_apply_rset},
    {SMTP_VERB_NOOP, NULL, srv_apply_noop},
    {SMTP_VERB_VRFY, NULL, srv_apply_vrfy},
    {SMTP_VERB_EXPN, NULL, srv_apply_expn},
    {SMTP_VERB_HELP, NULL, srv_apply_help},
    {SMTP_VERB_QUIT, NULL, srv_apply_quit},
    {SMTP_VERB_STARTTLS, srv_check_starttls, srv_apply_starttls},
    {SMTP_VERB_AUTH, srv_check_auth, srv_apply_auth},
};

static enum smtp_event
srv_dispatch(struct smtp_server *s)
{
	const struct srv_verb *v = NULL;
	const struct srv_reply *r;
	size_t i;

	for (i = 0; i < sizeof(srv_verbs) / sizeof(srv_verbs[0]); i++)
		if (srv_verbs[i].verb == s->cmd->verb)
			v = &srv_verbs[i];
	if (v == NULL) {
		srv_reply_r(s, &srv_r_unknown);
		return SMTP_EV_NONE;
	}
	if (s->refused && v->verb != SMTP_VERB_QUIT)
		r = &srv_r_refused;
	else
		r = v->check != NULL ? v->check(s) : NULL;
	if (r == NULL)
		return v->apply(s);
	if (s->cmd->verb == SMTP_VERB_BDAT)
		srv_drop_start(s, s->cmd->bdat_size, r->code, r->enh, r->text);
	else
		srv_reply_r(s, r);
	return SMTP_EV_NONE;
}

/* ---- input by state ----------------------------------------------------- */

/* Throw a too-long line away up to its LF, then answer it. */
static enum smtp_event
srv_skip_line(
    struct smtp_server *s, const char *in, size_t len, size_t *consumed_out)
{
	const char *lf = memchr(in, '\n', len);
	enum srv_skip kind = s->skip;

	if (lf == NULL) {
		*consumed_out = len;
		return SMTP_EV_NONE;
	}
	*consumed_out = (size_t)(lf - in) + 1;
	s->skip = SRV_SKIP_NONE;
	if (kind == SRV_SKIP_AUTH) {
		s->state = SMTP_STATE_HELO;
		srv_reply_r(s, &srv_r_auth_long);
	} else {
		srv_reply_r(s, &srv_r_line_long);
	}
	return srv_done(s, SMTP_EV_NONE);
}

static unsigned
srv_parse_flags(const struct smtp_server *s)
{
	unsigned f = SMTP_CMD_F_UTF8_OK;

	if (s->esmtp)
		f |= SMTP_CMD_F_ESMTP;
	if (s->mail != NULL && s->mail->smtputf8)
		f |= SMTP_CMD_F_UTF8_TXN;
	return f;
}

/*
 * A BDAT line that cannot be parsed hides where its chunk ends: whatever
 * follows may be chunk octets, and reading them as commands would run
 * what the client smuggled inside a message (RFC 3030 3 frames chunks by
 * the size alone).  The refusal is followed by a 421 and the close.
 */
static void
srv_bdat_unframed(
    struct smtp_server *s, int code, const char *enh, const char *text)
{
	srv_reply(s, code, enh, text);
	srv_check(s, smtp_replyf(s->out, 421, "4.5.0",
			 "%s BDAT chunk size unknown, closing connection",
			 s->conf.hostname));
	srv_close(s);
}

/* Is this line, however it ends, a BDAT command? */
static bool
srv_line_is_bdat(const char *in, size_t len)
{
	return len >= 4 && str_case_eq(in, 4, "BDAT") &&
	       (len == 4 || in[4] == ' ' || in[4] == '\r' || in[4] == '\n');
}

static enum smtp_event
srv_command(
    struct smtp_server *s, const char *in, size_t len, size_t *consumed_out)
{
	size_t scan = len < SMTP_CMD_LINE_PARAMS_MAX + 1
			  ? len
			  : SMTP_CMD_LINE_PARAMS_MAX + 1;
	const char *lf = memchr(in, '\n', scan);
	struct smtp_err err;
	size_t n;

	if (lf == NULL) {
		*consumed_out = 0;
		if (len <= SMTP_CMD_LINE_PARAMS_MAX)
			return SMTP_EV_NONE;
		if (srv_line_is_bdat(in, len)) {
			srv_bdat_unframed(s, srv_r_line_long.code,
			    srv_r_line_long.enh, srv_r_line_long.text);
			return srv_done(s, SMTP_EV_NONE);
		}
		s->skip = SRV_SKIP_CMD;
		return srv_skip_line(s, in, len, consumed_out);
	}
	n = (size_t)(lf - in);
	*consumed_out = n + 1;
	if (n == 0 || in[n - 1] != '\r') {
		if (srv_line_is_bdat(in, n))
			srv_bdat_unframed(s, srv_r_bare_lf.code,
			    srv_r_bare_lf.enh, srv_r_bare_lf.text);
		else
			srv_reply_r(s, &srv_r_bare_lf);
		return srv_done(s, SMTP_EV_NONE);
	}
	if (smtp_cmd_parse(
		in, n - 1, srv_parse_flags(s), srv_cmd_get(s), &err) == -1) {
		if (s->cmd->verb == SMTP_VERB_BDAT)
			srv_bdat_unframed(s, err.code, err.enh, err.text);
		else
			srv_reply_err(s, err.code, err.enh, err.text);
		return srv_done(s, SMTP_EV_NONE);
	}
	return srv_done(s, srv_dispatch(s));
}

/* The message is complete: refuse it here, or let the shell commit it. */
static enum smtp_event
srv_body_end(struct smtp_server *s)
{
	const char *enh, *text;
	int code;

	if (s->body.error == SMTP_BODY_OK)
		return srv_pend(s, SMTP_EV_EOM);
	smtp_body_error_reply(s->body.error, &code, &enh, &text);
	srv_txn_reset(s);
	/* a refused message is not a protocol error: not counted */
	srv_reply(s, code, enh, text);
	return srv_done(s, SMTP_EV_RESET);
}

static enum smtp_event
srv_data(
    struct smtp_server *s, const char *in, size_t len, size_t *consumed_out)
{
	*consumed_out = smtp_body_feed(&s->body, in, len);
	if (!s->body.done)
		return SMTP_EV_NONE;
	return srv_body_end(s);
}

/* A chunk is complete: end the message on LAST, else acknowledge it. */
static enum smtp_event
srv_bdat_end(struct smtp_server *s)
{
	if (s->bdat_last)
		smtp_body_finish(&s->body);
	if (s->bdat_last || s->body.error != SMTP_BODY_OK)
		return srv_body_end(s);
	s->state = SMTP_STATE_BDAT_WAIT;
	srv_check(s, smtp_replyf(s->out, 250, "2.0.0",
			 "%" PRIu64 " octets received", s->bdat_chunk));
	return srv_done(s, SMTP_EV_NONE);
}

static enum smtp_event
srv_bdat(
    struct smtp_server *s, const char *in, size_t len, size_t *consumed_out)
{
	size_t take = s->bdat_left < len ? (size_t)s->bdat_left : len;
	size_t more = 0;
	enum smtp_event ev;

	if (take > 0)
		(void)smtp_body_feed(&s->body, in, take);
	s->bdat_left -= take;
	*consumed_out = take;
	if (s->bdat_left > 0)
		return SMTP_EV_NONE;
	ev = srv_bdat_end(s);
	if (ev != SMTP_EV_NONE || s->state != SMTP_STATE_BDAT_WAIT || take > 0)
		return ev;
	/*
	 * An empty chunk consumed nothing: go on to the next command, or the
	 * caller, seeing no progress, would wait for input that is already
	 * here.
	 */
	ev = srv_command(s, in, len, &more);
	*consumed_out = more;
	return ev;
}

static enum smtp_event
srv_auth_end(struct smtp_server *s, const struct srv_reply *r)
{
	srv_auth_wipe(s);
	s->state = SMTP_STATE_HELO;
	srv_reply_r(s, r);
	return srv_done(s, SMTP_EV_NONE);
}

/*
 * A SASL response line, gathered into the session as it arrives so the
 * caller need not hold 12 KiB of it contiguously.
 */
static enum smtp_event
srv_auth_input(
    struct smtp_server *s, const char *in, size_t len, size_t *consumed_out)
{
	const char *lf = memchr(in, '\n', len);
	size_t n = lf != NULL ? (size_t)(lf - in) : len;
	struct buf *b = &s->auth_line;
	/* all of it at once: a realloc would leave secret bytes in freed memory
	 */
	bool room = b->data != NULL || buf_reserve(b, b->max) == 0;

	/* b->max is SRV_AUTH_LINE_MAX - 1: append fails past it, or on ENOMEM
	 */
	if (!room || (n > 0 && buf_append(b, in, n) == -1)) {
		srv_auth_wipe(s);
		s->skip = SRV_SKIP_AUTH;
		return srv_skip_line(s, in, len, consumed_out);
	}
	*consumed_out = n + (lf != NULL);
	if (lf == NULL)
		return SMTP_EV_NONE;
	if (b->len == 0 || b->data[b->len - 1] != '\r')
		return srv_auth_end(s, &srv_r_bare_lf);
	b->data[--b->len] = '\0';
	if (b->len == 1 && b->data[0] == '*')
		return srv_auth_end(s, &srv_r_auth_cancel);
	return srv_pend(s, SMTP_EV_AUTH_DATA);
}

static enum smtp_event
srv_step(
    struct smtp_server *s, const char *in, size_t len, size_t *consumed_out)
{
	*consumed_out = 0;
	if (s->pending != SMTP_EV_NONE)
		return SMTP_EV_NONE;
	if (s->state == SMTP_STATE_CLOSED)
		return srv_done(s, SMTP_EV_NONE);
	if (s->state == SMTP_STATE_GREET)
		return srv_pend(s, SMTP_EV_CONNECT);
	if (s->state == SMTP_STATE_TLS_WAIT)
		return SMTP_EV_NONE;
	if (s->dropping)
		return srv_drop(s, len, consumed_out);
	if (s->skip != SRV_SKIP_NONE)
		return srv_skip_line(s, in, len, consumed_out);
	switch (s->state) {
	case SMTP_STATE_DATA:
		return srv_data(s, in, len, consumed_out);
	case SMTP_STATE_BDAT:
		return srv_bdat(s, in, len, consumed_out);
	case SMTP_STATE_AUTH:
		return srv_auth_input(s, in, len, consumed_out);
	default:
		return srv_command(s, in, len, consumed_out);
	}
}

/* ---- public: life cycle and input --------------------------------------- */

struct smtp_server *
smtp_server_new(const struct smtp_server_conf *conf, struct buf *out)
{
	struct smtp_server *s = xcalloc(1, sizeof(*s));

	s->conf = *conf;
	if (s->conf.hostname == NULL)
		s->conf.hostname = "localhost";
	s->out = out;
	s->state = SMTP_STATE_GREET;
	s->auth_available = conf->auth_available;
	buf_init(&s->deferred, SRV_DEFERRED_MAX);
	buf_init(&s->auth_line, SRV_AUTH_LINE_MAX - 1);
	return s;
}

void
smtp_server_free(struct smtp_server *s)
{
	if (s == NULL)
		return;
	srv_auth_wipe(s);
	buf_free(&s->deferred);
	srv_cmd_release(s);
	free(s->helo);
	free(s->helo_pending);
	free(s->mail);
	free(s);
}

enum smtp_event
smtp_server_next(
    struct smtp_server *s, const char *in, size_t len, size_t *consumed_out)
{
	enum smtp_event ev;

	if (len == 0 || in == NULL) {
		in = "";
		len = 0;
	}
	ev = srv_step(s, in, len, consumed_out);
	/* idle: the parsed command (over 1 KiB) is not kept between bursts */
	if (ev == SMTP_EV_NONE && *consumed_out == 0 &&
	    s->pending == SMTP_EV_NONE)
		srv_cmd_release(s);
	return ev;
}

/* ---- public: answers to decide events ----------------------------------- */

static void
srv_accept_helo(struct smtp_server *s, const char *text)
{
	const char *name = text != NULL ? text : s->conf.hostname;
	bool tls = s->conf.tls_available && !s->tls_active;
	bool auth = s->auth_available && !s->authenticated;

	free(s->helo);
	s->helo = s->helo_pending;
	s->helo_pending = NULL;
	s->esmtp = s->cmd->verb == SMTP_VERB_EHLO;
	s->state = SMTP_STATE_HELO;
	if (!s->esmtp) {
		srv_reply(s, 250, NULL, name);
		return;
	}
	/* RFC 8689 2: REQUIRETLS once under TLS (STARTTLS or implicit) */
	srv_check(
	    s, smtp_replyf(s->out, 250, NULL,
		   "%s\nPIPELINING\nSIZE %" PRIu64
		   "\n8BITMIME\nENHANCEDSTATUSCODES\nSMTPUTF8\nCHUNKING\nDSN%s%"
		   "s%s",
		   name, s->conf.max_message_size, tls ? "\nSTARTTLS" : "",
		   s->tls_active ? "\nREQUIRETLS" : "",
		   auth ? "\nAUTH PLAIN LOGIN" : ""));
}

static void
srv_accept_mail(struct smtp_server *s, const char *text)
{
	if (s->mail == NULL)
		s->mail = xmalloc(sizeof(*s->mail));
	*s->mail = s->cmd->mail;
	s->rcpt_count = 0;
	s->state = SMTP_STATE_MAIL;
	srv_reply(s, 250, "2.1.0", text != NULL ? text : "Ok");
}

static void
srv_accept_data(struct smtp_server *s, const char *text)
{
	bool dot = s->cmd->verb != SMTP_VERB_BDAT;

	smtp_body_init(&s->body, dot, s->conf.max_message_size,
	    s->conf.body_sink, s->conf.body_ctx);
	if (!dot) {
		/* the reply comes when the chunk has been read */
		srv_bdat_begin(s);
		return;
	}
	s->state = SMTP_STATE_DATA;
	srv_reply(s, 354, NULL,
	    text != NULL ? text : "End data with <CR><LF>.<CR><LF>");
}

static void
srv_accept_auth(struct smtp_server *s, const char *text)
{
	srv_auth_wipe(s);
	s->authenticated = true;
	s->state = SMTP_STATE_HELO;
	srv_reply(
	    s, 235, "2.7.0", text != NULL ? text : "Authentication successful");
}

static void
srv_accept_connect(struct smtp_server *s, const char *text)
{
	s->state = SMTP_STATE_INIT;
	/* RFC 2034: no enhanced code on the greeting */
	if (text != NULL)
		srv_reply(s, 220, NULL, text);
	else
		srv_check(s, smtp_replyf(s->out, 220, NULL, "%s ESMTP",
				 s->conf.hostname));
}

/*
 * text replaces the standard text after the code and enhanced code; for
 * the greeting and EHLO/HELO it replaces "<hostname> ESMTP" / the first
 * line, and a BDAT chunk, answered only once read, ignores it.
 */
static void
srv_accept(struct smtp_server *s, const char *text)
{
	enum smtp_event ev = s->pending;

	assert(ev != SMTP_EV_NONE);
	s->pending = SMTP_EV_NONE;
	switch (ev) {
	case SMTP_EV_CONNECT:
		srv_accept_connect(s, text);
		break;
	case SMTP_EV_HELO:
		srv_accept_helo(s, text);
		break;
	case SMTP_EV_MAIL:
		srv_accept_mail(s, text);
		break;
	case SMTP_EV_RCPT:
		s->rcpt_count++;
		s->state = SMTP_STATE_RCPT;
		srv_reply(s, 250, "2.1.5", text != NULL ? text : "Ok");
		break;
	case SMTP_EV_DATA:
		srv_accept_data(s, text);
		break;
	case SMTP_EV_EOM:
		srv_txn_reset(s);
		srv_reply(s, 250, "2.0.0", text != NULL ? text : "Ok");
		break;
	case SMTP_EV_STARTTLS:
		s->state = SMTP_STATE_TLS_WAIT;
		srv_reply(s, 220, "2.0.0",
		    text != NULL ? text : "Ready to start TLS");
		break;
	case SMTP_EV_AUTH:
	case SMTP_EV_AUTH_DATA:
		srv_accept_auth(s, text);
		break;
	default:
		break; /* info events are never pending */
	}
}

void
smtp_server_accept(struct smtp_server *s)
{
	srv_accept(s, NULL);
}

void
smtp_server_accept_text(struct smtp_server *s, const char *text)
{
	srv_accept(s, text);
}

void
smtp_server_reject(
    struct smtp_server *s, int code, const char *enh, const char *text)
{
	enum smtp_event ev = s->pending;

	assert(ev != SMTP_EV_NONE);
	s->pending = SMTP_EV_NONE;
	srv_auth_wipe(s);
	free(s->helo_pending);
	s->helo_pending = NULL;
	if (ev == SMTP_EV_CONNECT && code / 100 == 5) {
		/* RFC 5321 3.1: a 5xx greeting, then only QUIT; the 503s count
		 * towards max_errors, so a client that will not stop is
		 * closed with a 421 */
		srv_reply(s, code, enh, text);
		s->state = SMTP_STATE_INIT;
		s->refused = true;
		return;
	}
	if (code == 421 || ev == SMTP_EV_CONNECT) {
		srv_reply(s, code, enh, text);
		srv_close(s);
		return;
	}
	if (ev == SMTP_EV_AUTH || ev == SMTP_EV_AUTH_DATA)
		s->state = SMTP_STATE_HELO;
	if (ev == SMTP_EV_DATA || ev == SMTP_EV_EOM)
		srv_txn_reset(s);
	if (ev == SMTP_EV_DATA && s->cmd->verb == SMTP_VERB_BDAT)
		srv_drop_start(s, s->cmd->bdat_size, code, enh, text);
	else if (ev == SMTP_EV_EOM)
		srv_reply(
		    s, code, enh, text); /* a refused message: not counted */
	else
		srv_reply_err(s, code, enh, text);
}

void
smtp_server_auth_challenge(struct smtp_server *s, const char *b64)
{
	assert(s->pending == SMTP_EV_AUTH || s->pending == SMTP_EV_AUTH_DATA);
	s->pending = SMTP_EV_NONE;
	srv_auth_wipe(s);
	s->state = SMTP_STATE_AUTH;
	/* an empty challenge is still "334 " with its space (RFC 4954 4) */
	if (b64 == NULL || b64[0] == '\0')
		srv_check(s, buf_append(s->out, "334 \r\n", 6));
	else
		srv_reply(s, 334, NULL, b64);
}

const char *
smtp_server_auth_data(const struct smtp_server *s, size_t *len_out)
{
	*len_out = s->auth_line.len;
	return s->auth_line.data != NULL ? s->auth_line.data : "";
}

/* ---- public: shell notifications ---------------------------------------- */

/*
 * Also for implicit TLS (port 465): called before the greeting it only
 * marks TLS active, so the greeting still comes and STARTTLS is not offered.
 */
void
smtp_server_tls_started(struct smtp_server *s)
{
	s->tls_active = true;
	if (s->state == SMTP_STATE_GREET || s->state == SMTP_STATE_CLOSED)
		return;
	/* RFC 3207 4.2: nothing learnt before the handshake is trusted */
	s->pending = SMTP_EV_NONE;
	srv_txn_reset(s);
	srv_auth_wipe(s);
	free(s->helo);
	s->helo = NULL;
	free(s->helo_pending);
	s->helo_pending = NULL;
	s->esmtp = false;
	s->authenticated = false;
	s->skip = SRV_SKIP_NONE;
	s->dropping = false;
	buf_free(&s->deferred);
	s->state = SMTP_STATE_INIT;
}

void
smtp_server_set_auth_available(struct smtp_server *s, bool on)
{
	s->auth_available = on;
}

void
smtp_server_body_refuse(struct smtp_server *s)
{
	if (s->state == SMTP_STATE_DATA || s->state == SMTP_STATE_BDAT)
		smtp_body_refuse(&s->body, SMTP_BODY_ERR_STORAGE);
}

void
smtp_server_shutdown(struct smtp_server *s, const char *enh, const char *text)
{
	if (s->state == SMTP_STATE_CLOSED)
		return;
	s->pending = SMTP_EV_NONE;
	srv_auth_wipe(s);
	srv_close(s);
	srv_check(
	    s, smtp_replyf(s->out, 421, enh, "%s %s", s->conf.hostname, text));
}

/* ---- public: accessors -------------------------------------------------- */

const struct smtp_cmd *
smtp_server_cmd(const struct smtp_server *s)
{
	return s->cmd != NULL ? s->cmd : &srv_no_cmd;
}

enum smtp_state
smtp_server_state(const struct smtp_server *s)
{
	return s->state;
}

bool
smtp_server_esmtp(const struct smtp_server *s)
{
	return s->esmtp;
}

const char *
smtp_server_helo(const struct smtp_server *s)
{
	return s->helo != NULL ? s->helo : "";
}

bool
smtp_server_in_transaction(const struct smtp_server *s)
{
	return srv_state_in_txn(s->state);
}

bool
smtp_server_reading_body(const struct smtp_server *s)
{
	if (s->pending != SMTP_EV_NONE || s->state == SMTP_STATE_CLOSED)
		return false;
	return s->dropping || s->state == SMTP_STATE_DATA ||
	       s->state == SMTP_STATE_BDAT;
}

const struct smtp_mail_params *
smtp_server_mail_params(const struct smtp_server *s)
{
	return s->mail != NULL ? s->mail : &srv_no_mail;
}

unsigned
smtp_server_rcpt_count(const struct smtp_server *s)
{
	return s->rcpt_count;
}
