/*
 * smtp_client: the client side of SMTP (RFC 5321), pure: server bytes in,
 * command bytes and actions out.  No I/O, no clock, no logging; the shell
 * (deliver/remote.c) owns the socket, TLS, timeouts and the message file.
 *
 * Pieces:
 *   smtp_reply_parse   one (multi-line) reply, RFC 5321 4.2.1
 *   smtp_ehlo_caps     the extensions an EHLO reply announces
 *   smtp_client_*      the session: greeting, EHLO (HELO when EHLO gets a
 *                      5xx), STARTTLS (RFC 3207), AUTH PLAIN (RFC 4954),
 *                      then per message [RSET] MAIL, RCPT..., DATA, and the
 *                      final reply; PIPELINING (RFC 2920) when offered
 *
 * Invariants:
 *  - Replies are matched to commands strictly in order; the transaction is
 *    a list of steps ([RSET] MAIL RCPT*n DATA); `sent` and `answered`
 *    count into it.  With PIPELINING every step goes in one batch, else
 *    one at a time.
 *  - A recipient's result, once set, is final for the message; only an
 *    undecided one (cls NONE, accepted or not yet answered) is set by a
 *    later reply or failure.  DONE and FAILED leave every result set.
 *  - Only 250-class replies to the final dot make a recipient OK.
 *  - Input after the 220 to STARTTLS is consumed and dropped: plaintext
 *    the peer sent before the handshake must never be read as a reply
 *    inside TLS (response injection).
 *  - A reply code 421 anywhere means the peer is closing: FAILED.
 *
 * Policies (documented in smtp.h too): an 8-bit body to a peer without
 * 8BITMIME goes in its 7-bit form when the shell says it has one, else
 * 554 5.6.3 for every recipient, nothing sent (RFC 6152 3; the conversion
 * is the shell's, mime_plan_*); a message needing SMTPUTF8 and a peer
 * without it give 553 5.6.7 for every recipient, nothing sent (RFC 6531
 * 3.4, checked first: converting would not help); a message over
 * the peer's SIZE gives 552 5.3.4, nothing sent; AUTH goes only over TLS
 * unless auth_plaintext_ok, and only over TLS whose peer the shell
 * verified unless auth_unverified_ok (relay.smarthost_tls); DSN
 * parameters go only to a DSN peer, ORCPT only of type rfc822 with an
 * ASCII address, ENVID and ORCPT only when
 * their xtext fits RFC 3461's 100 / 500 octets; a REQUIRETLS message
 * goes only to a policy-verified TLS peer offering REQUIRETLS (RFC 8689
 * 4.2.1; client_requiretls_refuse).
 *
 * Limits: a reply line is 512 octets, a reply 100 lines.  Rescanning is
 * avoided (the client remembers how far the pending reply was searched),
 * so a peer dribbling bytes costs linear time.  Recipients per transaction:
 * SMTP_CLIENT_RCPT_MAX.  Result texts are cut to SMTP_CLIENT_TEXT_MAX.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp.h"

#define ACT_CONTINUE (-1)

enum client_state {
	CS_GREETING, /* waiting for the greeting */
	CS_EHLO,
	CS_HELO,
	CS_STARTTLS,
	CS_TLS_WAIT, /* 220 to STARTTLS seen: the shell does the handshake */
	CS_AUTH,
	CS_TXN,	 /* replies to [RSET] MAIL RCPT... DATA */
	CS_BODY, /* 354 seen: waiting for the reply to the final dot */
	CS_DONE,
	CS_QUIT, /* QUIT sent */
	CS_CLOSED,
	CS_FAILED,
};

/* Work owed at the next call, before any input is read. */
enum client_kick { KICK_NONE, KICK_EHLO, KICK_TXN, KICK_QUIT };

enum step_kind { STEP_RSET, STEP_MAIL, STEP_RCPT, STEP_DATA };

struct client_rcpt {
	char addr[ADDR_PATH_MAX + 1];
	unsigned notify;
	char orcpt[SMTP_ORCPT_MAX + 1]; /* "rfc822;xtext", or "" for none */
	bool accepted;
	struct smtp_client_result res;
};

struct smtp_client {
	/* the session */
	char helo[ADDR_DOMAIN_MAX + 1];
	char user[SMTP_CLIENT_CRED_MAX + 1];
	char pass[SMTP_CLIENT_CRED_MAX + 1];
	bool has_auth, want_tls, require_tls, auth_plain_ok, auth_unverified_ok;
	bool tls_policy; /* a policy names this hop (REQUIRETLS) */
	bool lmtp;	 /* RFC 2033: LHLO, a reply per recipient */
	bool tls, tls_verified, tls_tried, authed;
	/* the host name of the peer's greeting or EHLO/HELO reply, or "" */
	char peer_name[ADDR_DOMAIN_MAX + 1];
	unsigned login_step; /* AUTH LOGIN: 334s answered so far */
	struct smtp_caps caps;
	enum client_state state;
	enum client_kick kick;
	/* the message */
	char sender[ADDR_PATH_MAX + 1];
	struct client_rcpt *rcpts;
	size_t nrcpts;
	uint64_t size, size_7bit;
	bool body_8bit, utf8;
	bool requiretls;   /* RFC 8689 */
	bool rt_refused;   /* this transaction refused for REQUIRETLS */
	unsigned dg_flags; /* SMTP_DOWNGRADE_* from the conf */
	char dg_why[160];  /* why no 7-bit form, or "" */
	bool downgrade;	   /* this transaction sends the 7-bit form */
	enum smtp_ret ret;
	char envid[SMTP_ENVID_MAX + 1]; /* xtext, or "" for none */
	/* the transaction */
	bool rset_first, needs_rset, mail_failed;
	size_t nsteps, sent, answered, accepted;
	size_t body_next; /* LMTP: next recipient to read a reply for */
	/* input: how far the pending reply was scanned (see client_take) */
	size_t scan_off, scan_pos;
	unsigned scan_lines;
	struct smtp_parsed_reply reply;
	/* output of the current call */
	struct buf *out;
	size_t out_start;
	bool wrote, oflow;
	struct smtp_client_result error;
};

/* ======================================================================
 * Reply parser
 * ====================================================================== */

struct reply_line {
	int code;
	bool last;
	const char *text;
	size_t text_len;
};

/* RFC 5321 4.2: Reply-code = %x32-35 %x30-35 %x30-39 */
static int
reply_code(const char *p)
{
	if (p[0] < '2' || p[0] > '5' || p[1] < '0' || p[1] > '5' ||
	    p[2] < '0' || p[2] > '9')
		return -1;
	return (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
}

/* One line p[0..n), without its LF. */
static int
reply_line_parse(const char *p, size_t n, struct reply_line *l)
{
	if (n > 0 && p[n - 1] == '\r')
		n--;
	if (n < 3 || (l->code = reply_code(p)) < 0)
		return -1;
	l->last = n == 3 || p[3] == ' ';
	if (n > 3 && p[3] != ' ' && p[3] != '-')
		return -1;
	l->text = p + (n > 3 ? 4 : 3);
	l->text_len = n > 3 ? n - 4 : 0;
	/* a NUL or a CR inside a line makes its framing ambiguous */
	if (memchr(l->text, '\0', l->text_len) != NULL ||
	    memchr(l->text, '\r', l->text_len) != NULL)
		return -1;
	return 0;
}

static size_t
reply_digits(const char *p, size_t n, size_t i)
{
	size_t k = 0;

	while (i + k < n && k < 4 && p[i + k] >= '0' && p[i + k] <= '9')
		k++;
	return k >= 1 && k <= 3 ? k : 0;
}

/*
 * Length of an RFC 3463 code "class.subject.detail" at the start of
 * p[0..n), followed by a space or the end, whose class is code's first
 * digit; 0 if there is none.
 */
static size_t
reply_enh_len(const char *p, size_t n, int code)
{
	size_t i = 2, k;

	if (n < 5 || p[0] != (char)('0' + code / 100) || p[0] == '3' ||
	    p[1] != '.')
		return 0;
	if ((k = reply_digits(p, n, i)) == 0)
		return 0;
	i += k;
	if (i >= n || p[i] != '.')
		return 0;
	if ((k = reply_digits(p, n, ++i)) == 0)
		return 0;
	i += k;
	return i == n || p[i] == ' ' ? i : 0;
}

/*
 * Append p[0..n) to r->text, cut with "...".  Control bytes become '?'
 * unless raw (the '\n' between lines).
 */
static void
reply_text_put(struct smtp_parsed_reply *r, const char *p, size_t n, bool raw)
{
	const size_t keep = sizeof(r->text) - 4; /* room for "..." + NUL */
	size_t i;

	if (r->text_cut)
		return;
	if (r->text_len + n > sizeof(r->text) - 1) {
		n = r->text_len < keep ? keep - r->text_len : 0;
		r->text_cut = true;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		r->text[r->text_len + i] =
		    !raw && ((c < 0x20 && c != '\t') || c == 0x7f) ? '?'
								   : (char)c;
	}
	r->text_len += n;
	if (r->text_cut) {
		if (r->text_len > keep)
			r->text_len = keep;
		memcpy(r->text + r->text_len, "...", 3);
		r->text_len += 3;
	}
	r->text[r->text_len] = '\0';
}

static void
reply_add_line(struct smtp_parsed_reply *r, const struct reply_line *l)
{
	const char *t = l->text;
	size_t n = l->text_len, e = reply_enh_len(t, n, l->code);

	if (e > 0) {
		if (r->nlines == 1 && e < sizeof(r->enh)) {
			memcpy(r->enh, t, e);
			r->enh[e] = '\0';
		}
		t += e;
		n -= e;
		if (n > 0) {
			t++;
			n--;
		}
	}
	if (r->nlines > 1)
		reply_text_put(r, "\n", 1, true);
	reply_text_put(r, t, n, false);
}

int
smtp_reply_parse(const char *in, size_t len, struct smtp_parsed_reply *r,
    size_t *consumed_out)
{
	size_t off = 0;
	struct reply_line l;

	r->code = 0;
	r->enh[0] = '\0';
	r->text[0] = '\0';
	r->text_len = 0;
	r->text_cut = false;
	r->nlines = 0;
	while (off < len) {
		size_t avail = len - off;
		const char *lf = memchr(in + off, '\n',
		    avail < SMTP_REPLY_IN_LINE_MAX ? avail
						   : SMTP_REPLY_IN_LINE_MAX);

		if (lf == NULL)
			return avail >= SMTP_REPLY_IN_LINE_MAX ? -1 : 0;
		if (reply_line_parse(in + off, (size_t)(lf - (in + off)), &l) <
		    0)
			return -1;
		if (r->nlines > 0 && l.code != r->code)
			return -1;
		r->code = l.code;
		r->nlines++;
		reply_add_line(r, &l);
		off = (size_t)(lf - in) + 1;
		if (l.last) {
			*consumed_out = off;
			return 1;
		}
		if (r->nlines >= SMTP_REPLY_IN_LINES_MAX)
			return -1;
	}
	return 0;
}

/* ======================================================================
 * EHLO capabilities
 * ====================================================================== */

static const struct {
	const char *kw;
	unsigned flag;
} ehlo_keywords[] = {
    {"PIPELINING", SMTP_CAP_PIPELINING},
    {"SIZE", SMTP_CAP_SIZE},
    {"8BITMIME", SMTP_CAP_8BITMIME},
    {"SMTPUTF8", SMTP_CAP_SMTPUTF8},
    {"REQUIRETLS", SMTP_CAP_REQUIRETLS},
    {"DSN", SMTP_CAP_DSN},
    {"STARTTLS", SMTP_CAP_STARTTLS},
    {"CHUNKING", SMTP_CAP_CHUNKING},
    {"ENHANCEDSTATUSCODES", SMTP_CAP_ENHANCEDSTATUSCODES},
    {"AUTH", SMTP_CAP_AUTH},
};

/* The next word of p[*i..n), separated by spaces (or '=' after AUTH). */
static size_t
ehlo_word(const char *p, size_t n, size_t *i, const char **w)
{
	size_t k;

	while (*i < n && (p[*i] == ' ' || p[*i] == '='))
		(*i)++;
	*w = p + *i;
	for (k = 0; *i + k < n && p[*i + k] != ' ' && p[*i + k] != '='; k++)
		;
	*i += k;
	return k;
}

static void
ehlo_params(
    struct smtp_caps *caps, unsigned flag, const char *p, size_t n, size_t i)
{
	const char *w;
	size_t k;
	uint64_t v;

	while ((k = ehlo_word(p, n, &i, &w)) > 0) {
		if (flag == SMTP_CAP_SIZE && str_to_u64(w, k, &v) == 0)
			caps->size_max = v;
		if (flag != SMTP_CAP_AUTH)
			return;
		if (str_case_eq(w, k, "PLAIN"))
			caps->auth |= SMTP_CAP_AUTH_PLAIN;
		else if (str_case_eq(w, k, "LOGIN"))
			caps->auth |= SMTP_CAP_AUTH_LOGIN;
	}
}

/* One ehlo-line p[0..n): keyword, then parameters. */
static void
ehlo_line(struct smtp_caps *caps, const char *p, size_t n)
{
	size_t i = 0, k, j;
	const char *w;

	if ((k = ehlo_word(p, n, &i, &w)) == 0)
		return;
	for (j = 0; j < sizeof(ehlo_keywords) / sizeof(ehlo_keywords[0]); j++) {
		if (!str_case_eq(w, k, ehlo_keywords[j].kw))
			continue;
		caps->flags |= ehlo_keywords[j].flag;
		ehlo_params(caps, ehlo_keywords[j].flag, p, n, i);
		return;
	}
}

void
smtp_ehlo_caps(const struct smtp_parsed_reply *r, struct smtp_caps *caps)
{
	const char *p = r->text, *end = r->text + r->text_len, *nl;

	memset(caps, 0, sizeof(*caps));
	if (r->code != 250)
		return;
	/* line 1 is the server's name and greeting, not an extension */
	if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
		return;
	for (p = nl + 1; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		ehlo_line(caps, p, (size_t)(nl - p));
	}
}

/* ======================================================================
 * Results
 * ====================================================================== */

static void
result_text(struct smtp_client_result *res, const char *t, size_t n)
{
	if (n >= sizeof(res->text)) {
		memcpy(res->text, t, sizeof(res->text) - 4);
		memcpy(res->text + sizeof(res->text) - 4, "...", 4);
		return;
	}
	memcpy(res->text, t, n);
	res->text[n] = '\0';
}

static enum smtp_result_class
result_class(int code)
{
	return code >= 200 && code < 300   ? SMTP_RESULT_OK
	       : code >= 500 && code < 600 ? SMTP_RESULT_PERM
					   : SMTP_RESULT_TEMP;
}

/* A result from the reply just read, in answer to cmd. */
static void
result_reply(struct smtp_client_result *res, const struct smtp_parsed_reply *r,
    enum smtp_result_class cls, const char *cmd)
{
	memset(res, 0, sizeof(*res));
	res->cls = cls;
	res->code = r->code;
	memcpy(res->enh, r->enh, sizeof(res->enh));
	result_text(res, r->text, r->text_len);
	res->remote = true;
	res->cmd = cmd;
}

/* A result tern decides alone. */
static void
result_local(
    struct smtp_client_result *res, int code, const char *enh, const char *text)
{
	memset(res, 0, sizeof(*res));
	res->cls = result_class(code);
	res->code = code;
	if (str_copy(res->enh, sizeof(res->enh), enh, strlen(enh)) == -1)
		res->enh[0] = '\0';
	result_text(res, text, strlen(text));
}

static void
client_rcpt_set(
    struct smtp_client *c, size_t i, const struct smtp_client_result *res)
{
	c->rcpts[i].res = *res;
	c->rcpts[i].res.dsn_passed = (c->caps.flags & SMTP_CAP_DSN) != 0;
}

/* Every undecided recipient gets res. */
static void
client_rcpt_set_all(struct smtp_client *c, const struct smtp_client_result *res)
{
	size_t i;

	for (i = 0; i < c->nrcpts; i++)
		if (c->rcpts[i].res.cls == SMTP_RESULT_NONE)
			client_rcpt_set(c, i, res);
}

/* ======================================================================
 * Output
 * ====================================================================== */

static void client_put(struct smtp_client *c, const char *fmt, ...)
    PRINTF_LIKE(2, 3);

static void
client_put(struct smtp_client *c, const char *fmt, ...)
{
	va_list ap;

	if (c->oflow)
		return;
	va_start(ap, fmt);
	if (buf_vprintf(c->out, fmt, ap) == -1)
		c->oflow = true;
	va_end(ap);
	c->wrote = true;
}

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* RFC 4648 4; out must hold 4 * ((n + 2) / 3) + 1.  Returns the length. */
static size_t
b64_encode(const unsigned char *in, size_t n, char *out)
{
	size_t i, o = 0;

	for (i = 0; i + 2 < n; i += 3) {
		unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 |
			     in[i + 2];

		out[o++] = b64_alphabet[v >> 18];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = b64_alphabet[(v >> 6) & 63];
		out[o++] = b64_alphabet[v & 63];
	}
	if (i < n) {
		unsigned v = (unsigned)in[i] << 16 |
			     (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0);

		out[o++] = b64_alphabet[v >> 18];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}

/* ======================================================================
 * Failure
 * ====================================================================== */

static const char *client_waiting_for(const struct smtp_client *c);

static int
client_failed(struct smtp_client *c, bool quit)
{
	client_rcpt_set_all(c, &c->error);
	c->state = CS_FAILED;
	c->kick = KICK_NONE;
	/* polite where the peer is still listening (RFC 5321 3.1 for 554) */
	if (quit)
		client_put(c, "QUIT\r\n");
	return SMTP_CLIENT_FAILED;
}

/* The reply just read ends the session; 4xx temporary, 5xx permanent. */
static int
client_fail_reply(struct smtp_client *c, bool quit)
{
	enum smtp_result_class cls =
	    c->reply.code >= 500 ? SMTP_RESULT_PERM : SMTP_RESULT_TEMP;

	result_reply(&c->error, &c->reply, cls, client_waiting_for(c));
	return client_failed(c, quit);
}

static int
client_fail_local(struct smtp_client *c, int code, const char *enh,
    const char *text, bool quit)
{
	result_local(&c->error, code, enh, text);
	return client_failed(c, quit);
}

/* An unexpected reply: the dialogue is out of step, the connection done. */
static int
client_fail_unexpected(struct smtp_client *c)
{
	char t[SMTP_CLIENT_TEXT_MAX];

	str_fmt_cut(t, sizeof(t), "Unexpected reply to %s: %d %s",
	    client_waiting_for(c), c->reply.code, c->reply.text);
	return client_fail_local(c, 451, "4.5.0", t, false);
}

/* ======================================================================
 * Transaction
 * ====================================================================== */

static enum step_kind
client_step_kind(const struct smtp_client *c, size_t step, size_t *rcpt_out)
{
	size_t base = c->rset_first ? 1 : 0;

	*rcpt_out = 0;
	if (step < base)
		return STEP_RSET;
	if (step == base)
		return STEP_MAIL;
	if (step - base - 1 < c->nrcpts) {
		*rcpt_out = step - base - 1;
		return STEP_RCPT;
	}
	return STEP_DATA;
}

/* RFC 8689 2: the parameter only over TLS to a peer that offers it;
 * client_requiretls_refuse() made sure of both for a message with a
 * sender, a bounce (<>) gets it when it can (RFC 8689 5) */
static bool
client_pass_requiretls(const struct smtp_client *c)
{
	return c->requiretls && c->tls &&
	       (c->caps.flags & SMTP_CAP_REQUIRETLS) != 0;
}

static void
client_send_mail(struct smtp_client *c)
{
	unsigned f = c->caps.flags;

	client_put(c, "MAIL FROM:<%s>", c->sender);
	if (f & SMTP_CAP_SIZE)
		client_put(c, " SIZE=%llu",
		    (unsigned long long)(c->downgrade ? c->size_7bit
						      : c->size));
	if (c->body_8bit && (f & SMTP_CAP_8BITMIME))
		client_put(c, " BODY=8BITMIME");
	if (c->utf8)
		client_put(c, " SMTPUTF8");
	if (client_pass_requiretls(c))
		client_put(c, " REQUIRETLS");
	if ((f & SMTP_CAP_DSN) && c->ret != SMTP_RET_UNSPEC)
		client_put(
		    c, " RET=%s", c->ret == SMTP_RET_FULL ? "FULL" : "HDRS");
	if ((f & SMTP_CAP_DSN) && c->envid[0] != '\0')
		client_put(c, " ENVID=%s", c->envid);
	client_put(c, "\r\n");
}

static void
client_send_notify(struct smtp_client *c, unsigned notify)
{
	static const struct {
		unsigned bit;
		const char *name;
	} kw[] = {
	    {SMTP_NOTIFY_SUCCESS, "SUCCESS"},
	    {SMTP_NOTIFY_FAILURE, "FAILURE"},
	    {SMTP_NOTIFY_DELAY, "DELAY"},
	};
	const char *sep = " NOTIFY=";
	size_t i;

	/* RFC 3461 4.1: NEVER stands alone */
	if (notify & SMTP_NOTIFY_NEVER) {
		client_put(c, " NOTIFY=NEVER");
		return;
	}
	for (i = 0; i < sizeof(kw) / sizeof(kw[0]); i++) {
		if (notify & kw[i].bit) {
			client_put(c, "%s%s", sep, kw[i].name);
			sep = ",";
		}
	}
}

static void
client_send_rcpt(struct smtp_client *c, size_t i)
{
	const struct client_rcpt *r = &c->rcpts[i];

	client_put(c, "RCPT TO:<%s>", r->addr);
	if (c->caps.flags & SMTP_CAP_DSN) {
		client_send_notify(c, r->notify);
		if (r->orcpt[0] != '\0')
			client_put(c, " ORCPT=%s", r->orcpt);
	}
	client_put(c, "\r\n");
}

static void
client_send_step(struct smtp_client *c)
{
	size_t i;

	switch (client_step_kind(c, c->sent, &i)) {
	case STEP_RSET:
		client_put(c, "RSET\r\n");
		break;
	case STEP_MAIL:
		client_send_mail(c);
		break;
	case STEP_RCPT:
		client_send_rcpt(c, i);
		break;
	case STEP_DATA:
		client_put(c, "DATA\r\n");
		break;
	}
	c->sent++;
}

/* Nothing is sent: every recipient gets this tern-made result. */
static int
client_txn_refuse(
    struct smtp_client *c, int code, const char *enh, const char *text)
{
	result_local(&c->error, code, enh, text);
	client_rcpt_set_all(c, &c->error);
	c->state = CS_DONE;
	return SMTP_CLIENT_DONE;
}

/* An 8-bit body and a peer without 8BITMIME (RFC 6152 3). */
static bool
client_need_downgrade(const struct smtp_client *c)
{
	return c->body_8bit && !(c->caps.flags & SMTP_CAP_8BITMIME);
}

/*
 * RFC 8689 4.2.1: a REQUIRETLS message goes only over TLS whose peer was
 * verified under a policy, to a peer offering REQUIRETLS over that TLS;
 * else every recipient is refused (5.7.10 no such TLS, 5.7.30 no
 * REQUIRETLS: the RFC's codes).  A bounce is never held back (RFC 8689
 * 5), nor is a local delivery over LMTP (the final hop).  0: go on.
 */
static int
client_requiretls_refuse(struct smtp_client *c)
{
	c->rt_refused = false;
	if (!c->requiretls || c->sender[0] == '\0' || c->lmtp)
		return 0;
	c->rt_refused = true;
	if (!c->tls)
		return client_txn_refuse(c, 550, "5.7.10",
		    "REQUIRETLS: the next hop did not offer TLS");
	if (!c->tls_verified || !c->tls_policy)
		return client_txn_refuse(c, 550, "5.7.10",
		    "REQUIRETLS: the next hop's TLS was not verified "
		    "under a policy (DANE, MTA-STS or a verified smarthost)");
	if (!(c->caps.flags & SMTP_CAP_REQUIRETLS))
		return client_txn_refuse(c, 550, "5.7.30",
		    "REQUIRETLS: the next hop does not offer REQUIRETLS");
	c->rt_refused = false;
	return 0;
}

static int
client_txn_start(struct smtp_client *c)
{
	char t[SMTP_CLIENT_TEXT_MAX];
	uint64_t size;

	if (client_requiretls_refuse(c) != 0)
		return SMTP_CLIENT_DONE;
	if (c->utf8 && !(c->caps.flags & SMTP_CAP_SMTPUTF8))
		return client_txn_refuse(c, 553, "5.6.7",
		    "The message needs "
		    "SMTPUTF8 (RFC 6531) and the peer does not offer it");
	if (client_need_downgrade(c) &&
	    (c->dg_flags & SMTP_DOWNGRADE_OK) == 0) {
		str_fmt_cut(t, sizeof(t),
		    "The message has 8-bit content with "
		    "no 7-bit form%s%s and the peer does not offer "
		    "8BITMIME "
		    "(RFC 6152)",
		    c->dg_why[0] != '\0' ? ": " : "", c->dg_why);
		return client_txn_refuse(c, 554, "5.6.3", t);
	}
	if (client_need_downgrade(c) &&
	    (c->dg_flags & SMTP_DOWNGRADE_HDR_8BIT) && !c->utf8)
		return client_txn_refuse(c, 554, "5.6.3",
		    "The message has "
		    "8-bit header fields and the peer does not offer 8BITMIME "
		    "(RFC 6152)");
	c->downgrade = client_need_downgrade(c);
	size = c->downgrade ? c->size_7bit : c->size;
	if ((c->caps.flags & SMTP_CAP_SIZE) && c->caps.size_max > 0 &&
	    size > c->caps.size_max) {
		str_fmt_cut(t, sizeof(t),
		    "Message size %llu exceeds the peer's "
		    "limit of %llu octets",
		    (unsigned long long)size,
		    (unsigned long long)c->caps.size_max);
		return client_txn_refuse(c, 552, "5.3.4", t);
	}
	c->rset_first = c->needs_rset;
	c->nsteps = (c->rset_first ? 1 : 0) + 1 + c->nrcpts + 1;
	c->sent = c->answered = c->accepted = c->body_next = 0;
	c->mail_failed = false;
	c->state = CS_TXN;
	/* RFC 2920 3.1: RSET, MAIL and RCPT may go anywhere in a batch, DATA
	   last; without PIPELINING each waits for the previous reply */
	do
		client_send_step(c);
	while ((c->caps.flags & SMTP_CAP_PIPELINING) && c->sent < c->nsteps);
	return ACT_CONTINUE;
}

static int
client_txn_finish(struct smtp_client *c)
{
	struct smtp_client_result res;

	/* a safety net: every path above sets each recipient already */
	result_local(
	    &res, 451, "4.3.0", "No reply recorded for this recipient");
	client_rcpt_set_all(c, &res);
	c->state = CS_DONE;
	return SMTP_CLIENT_DONE;
}

/* All replies so far are in: send the next step, or end the transaction. */
static int
client_txn_advance(struct smtp_client *c)
{
	size_t i;

	if (c->answered < c->sent)
		return ACT_CONTINUE;
	if (c->sent >= c->nsteps || c->mail_failed ||
	    (client_step_kind(c, c->sent, &i) == STEP_DATA &&
		c->accepted == 0)) {
		c->needs_rset = true;
		return client_txn_finish(c);
	}
	client_send_step(c);
	return ACT_CONTINUE;
}

static int
client_on_data(struct smtp_client *c)
{
	struct smtp_client_result res;
	int code = c->reply.code;

	if (code == 354 && c->accepted > 0) {
		c->state = CS_BODY;
		return SMTP_CLIENT_SEND_BODY;
	}
	if (code == 354 || (code < 400 && c->accepted > 0))
		return client_fail_unexpected(c);
	/* with no recipient, a pipelined DATA's 503/554 is expected: ignored */
	if (c->accepted > 0) {
		result_reply(&res, &c->reply, result_class(code), "DATA");
		client_rcpt_set_all(c, &res);
	}
	c->needs_rset = true;
	return client_txn_finish(c);
}

static int
client_on_txn(struct smtp_client *c)
{
	struct smtp_client_result res;
	int code = c->reply.code;
	enum step_kind kind;
	size_t i;

	kind = client_step_kind(c, c->answered, &i);
	if (kind == STEP_DATA)
		return client_on_data(c);
	if (kind == STEP_RCPT && c->mail_failed) {
		c->answered++; /* the 503 to a RCPT after a failed MAIL */
		return client_txn_advance(c);
	}
	if (code < 200 || (code >= 300 && code < 400))
		return client_fail_unexpected(c);
	if (kind == STEP_RSET && code >= 400)
		return client_fail_unexpected(c); /* not the message's fault */
	c->answered++;
	if (kind == STEP_RSET) {
		c->needs_rset = false;
	} else if (code >= 400) {
		result_reply(&res, &c->reply, result_class(code),
		    kind == STEP_MAIL ? "MAIL FROM" : "RCPT TO");
		if (kind == STEP_MAIL) {
			c->mail_failed = true;
			client_rcpt_set_all(c, &res);
		} else {
			client_rcpt_set(c, i, &res);
		}
	} else if (kind == STEP_RCPT) {
		c->rcpts[i].accepted = true;
		c->accepted++;
	}
	return client_txn_advance(c);
}

/*
 * LMTP (RFC 2033 4.2): after the final dot, one reply per recipient that
 * RCPT accepted, in RCPT order; each decides that recipient alone.
 */
static int
client_on_lmtp_body(struct smtp_client *c)
{
	struct smtp_client_result res;
	int code = c->reply.code;

	if (code >= 300 && code < 400)
		return client_fail_unexpected(c);
	while (c->body_next < c->nrcpts && !c->rcpts[c->body_next].accepted)
		c->body_next++;
	if (c->body_next == c->nrcpts)
		return client_fail_unexpected(c);
	result_reply(&res, &c->reply, result_class(code), "end of data");
	client_rcpt_set(c, c->body_next++, &res);
	while (c->body_next < c->nrcpts && !c->rcpts[c->body_next].accepted)
		c->body_next++;
	if (c->body_next < c->nrcpts)
		return ACT_CONTINUE; /* more replies to come */
	c->needs_rset = false;
	c->state = CS_DONE;
	return SMTP_CLIENT_DONE;
}

/* The reply to the final dot decides every accepted recipient. */
static int
client_on_body(struct smtp_client *c)
{
	struct smtp_client_result res;
	int code = c->reply.code;

	if (c->lmtp)
		return client_on_lmtp_body(c);
	if (code >= 300 && code < 400)
		return client_fail_unexpected(c);
	result_reply(&res, &c->reply, result_class(code), "end of data");
	client_rcpt_set_all(c, &res);
	c->needs_rset = code >= 300;
	c->state = CS_DONE;
	return SMTP_CLIENT_DONE;
}

/* ======================================================================
 * Session
 * ====================================================================== */

static int
client_send_ehlo(struct smtp_client *c)
{
	client_put(c, "%s %s\r\n", c->lmtp ? "LHLO" : "EHLO", c->helo);
	c->state = CS_EHLO;
	return ACT_CONTINUE;
}

static int
client_auth_start(struct smtp_client *c)
{
	unsigned char raw[2 * SMTP_CLIENT_CRED_MAX + 2];
	char b64[4 * ((sizeof(raw) + 2) / 3) + 1];
	size_t ul = strlen(c->user), pl = strlen(c->pass);

	if (!c->tls && !c->auth_plain_ok)
		return client_fail_local(c, 451, "4.7.0",
		    "Credentials are "
		    "only sent over TLS and the connection is not encrypted",
		    true);
	/* a man in the middle completes TLS as easily as the real peer */
	if (c->tls && !c->tls_verified && !c->auth_unverified_ok &&
	    !c->auth_plain_ok)
		return client_fail_local(c, 451, "4.7.5",
		    "Credentials are "
		    "only sent to a verified peer and this one's TLS "
		    "certificate was not verified",
		    true);
	if (!(c->caps.flags & SMTP_CAP_AUTH) ||
	    !(c->caps.auth & (SMTP_CAP_AUTH_PLAIN | SMTP_CAP_AUTH_LOGIN)))
		return client_fail_local(c, 451, "4.7.4",
		    "Credentials are "
		    "configured but the peer offers neither AUTH PLAIN nor "
		    "AUTH LOGIN",
		    true);
	if (!(c->caps.auth & SMTP_CAP_AUTH_PLAIN)) {
		/* LOGIN only (some providers): the same secrets, in two steps
		 */
		client_put(c, "AUTH LOGIN\r\n");
		c->login_step = 0;
		c->state = CS_AUTH;
		return ACT_CONTINUE;
	}
	/* RFC 4616: [authzid] NUL authcid NUL passwd */
	raw[0] = '\0';
	memcpy(raw + 1, c->user, ul);
	raw[1 + ul] = '\0';
	memcpy(raw + 2 + ul, c->pass, pl);
	b64_encode(raw, 2 + ul + pl, b64);
	client_put(c, "AUTH PLAIN %s\r\n", b64);
	explicit_bzero(raw, sizeof(raw));
	explicit_bzero(b64, sizeof(b64));
	c->state = CS_AUTH;
	return ACT_CONTINUE;
}

/* EHLO/HELO answered: STARTTLS, AUTH, or the transaction. */
static int
client_after_hello(struct smtp_client *c)
{
	if (c->lmtp) /* a local socket: no STARTTLS, no AUTH */
		return client_txn_start(c);
	if (!c->tls && !c->tls_tried && (c->want_tls || c->require_tls) &&
	    (c->caps.flags & SMTP_CAP_STARTTLS)) {
		c->tls_tried = true;
		client_put(c, "STARTTLS\r\n");
		c->state = CS_STARTTLS;
		return ACT_CONTINUE;
	}
	if (!c->tls && c->require_tls)
		return client_fail_local(c, 451, "4.7.4",
		    "TLS is required but the peer does not offer STARTTLS",
		    true);
	if (c->has_auth && !c->authed)
		return client_auth_start(c);
	return client_txn_start(c);
}

/* A byte of a host name or an address literal ("[192.0.2.1]"). */
static bool
peer_name_byte(unsigned char b)
{
	return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') ||
	       (b >= '0' && b <= '9') || b == '.' || b == '-' || b == '_' ||
	       b == '[' || b == ']' || b == ':';
}

/*
 * The peer's name: the first word of the greeting's or the EHLO/HELO
 * reply's first line (RFC 5321 4.2, 4.3.1: "220 Domain ...", "250
 * Domain ..."), for TLS-RPT's receiving-mx-helo (RFC 8460 4.3).  A word
 * that is no host name nor address literal is not kept.
 */
static void
client_take_peer_name(struct smtp_client *c)
{
	const char *p = c->reply.text;
	size_t n = 0;

	while (n < c->reply.text_len && p[n] != ' ' && p[n] != '\n') {
		if (!peer_name_byte((unsigned char)p[n]))
			return;
		n++;
	}
	if (n == 0 || n > ADDR_DOMAIN_MAX)
		return;
	memcpy(c->peer_name, p, n);
	c->peer_name[n] = '\0';
}

static int
client_on_greeting(struct smtp_client *c)
{
	if (c->reply.code != 220)
		return client_fail_reply(c, c->reply.code >= 500);
	client_take_peer_name(c);
	return client_send_ehlo(c);
}

static int
client_on_ehlo(struct smtp_client *c)
{
	if (c->reply.code >= 400 && c->lmtp)
		return client_fail_reply(c, true); /* LMTP has no HELO */
	if (c->reply.code >= 500) {
		/* an old server: RFC 5321 3.2 says fall back to HELO */
		client_put(c, "HELO %s\r\n", c->helo);
		c->state = CS_HELO;
		return ACT_CONTINUE;
	}
	if (c->reply.code >= 300)
		return client_fail_reply(c, true);
	client_take_peer_name(c);
	smtp_ehlo_caps(&c->reply, &c->caps);
	return client_after_hello(c);
}

static int
client_on_helo(struct smtp_client *c)
{
	if (c->reply.code >= 300)
		return client_fail_reply(c, true);
	client_take_peer_name(c);
	memset(&c->caps, 0, sizeof(c->caps));
	return client_after_hello(c);
}

static int
client_on_starttls(struct smtp_client *c)
{
	char t[SMTP_CLIENT_TEXT_MAX];

	if (c->reply.code == 220) {
		c->state = CS_TLS_WAIT;
		return SMTP_CLIENT_STARTTLS;
	}
	if (!c->require_tls)
		return client_after_hello(c); /* opportunistic: go on */
	str_fmt_cut(t, sizeof(t), "TLS is required but STARTTLS failed: %d %s",
	    c->reply.code, c->reply.text);
	return client_fail_local(c, 451, "4.7.4", t, true);
}

/* AUTH LOGIN's 334 challenges: user name, then password, base64 each. */
static int
client_login_answer(struct smtp_client *c)
{
	char b64[4 * ((SMTP_CLIENT_CRED_MAX + 2) / 3) + 1];
	const char *secret = c->login_step == 0 ? c->user : c->pass;

	b64_encode((const unsigned char *)secret, strlen(secret), b64);
	client_put(c, "%s\r\n", b64);
	explicit_bzero(b64, sizeof(b64));
	c->login_step++;
	return ACT_CONTINUE;
}

static int
client_on_auth(struct smtp_client *c)
{
	if (c->reply.code >= 200 && c->reply.code < 300) {
		c->authed = true;
		return client_txn_start(c);
	}
	/* PLAIN is one message; LOGIN asks twice (user, password) */
	if (c->reply.code == 334 && !(c->caps.auth & SMTP_CAP_AUTH_PLAIN) &&
	    c->login_step < 2)
		return client_login_answer(c);
	if (c->reply.code < 400)
		return client_fail_unexpected(c);
	return client_fail_reply(c, true);
}

static int
client_on_reply(struct smtp_client *c)
{
	if (c->state == CS_QUIT) {
		c->state = CS_CLOSED;
		return SMTP_CLIENT_CLOSED;
	}
	if (c->reply.code == 421) /* RFC 5321 3.8: the peer closes */
		return client_fail_reply(c, false);
	switch (c->state) {
	case CS_GREETING:
		return client_on_greeting(c);
	case CS_EHLO:
		return client_on_ehlo(c);
	case CS_HELO:
		return client_on_helo(c);
	case CS_STARTTLS:
		return client_on_starttls(c);
	case CS_AUTH:
		return client_on_auth(c);
	case CS_TXN:
		return client_on_txn(c);
	case CS_BODY:
		return client_on_body(c);
	default:
		return client_fail_unexpected(c);
	}
}

/*
 * The next whole reply at in[0..len), into c->reply: 1, 0 (need more) or
 * -1.  No octet is searched twice across calls: scan_off is the start of
 * the first line not known to be a continuation, scan_pos the first octet
 * not yet searched for its LF.  The parser runs once, over the whole
 * reply, when its last line (or the line-count limit, or an overlong
 * line) is reached.
 */
static int
client_take(struct smtp_client *c, const char *in, size_t len, size_t *n_out)
{
	size_t off = c->scan_off, pos = c->scan_pos;

	while (pos < len) {
		size_t limit = off + SMTP_REPLY_IN_LINE_MAX;
		size_t end = len < limit ? len : limit;
		const char *lf = memchr(in + pos, '\n', end - pos);

		if (lf == NULL && len < limit) {
			pos = len;
			break;
		}
		pos = lf == NULL ? end : (size_t)(lf - in) + 1;
		if (lf != NULL && pos - off >= 5 && in[off + 3] == '-' &&
		    ++c->scan_lines < SMTP_REPLY_IN_LINES_MAX) {
			off = pos;
			continue;
		}
		c->scan_off = c->scan_pos = 0;
		c->scan_lines = 0;
		return smtp_reply_parse(in, pos, &c->reply, n_out) == 1 ? 1
									: -1;
	}
	c->scan_off = off;
	c->scan_pos = pos;
	return 0;
}

static bool
client_awaits_reply(const struct smtp_client *c)
{
	switch (c->state) {
	case CS_GREETING:
	case CS_EHLO:
	case CS_HELO:
	case CS_STARTTLS:
	case CS_AUTH:
	case CS_TXN:
	case CS_BODY:
	case CS_QUIT:
		return true;
	default:
		return false;
	}
}

static int
client_idle_action(struct smtp_client *c)
{
	switch (c->state) {
	case CS_TLS_WAIT:
		return SMTP_CLIENT_STARTTLS;
	case CS_DONE:
		return SMTP_CLIENT_DONE;
	case CS_CLOSED:
		return SMTP_CLIENT_CLOSED;
	default:
		return SMTP_CLIENT_FAILED;
	}
}

static int
client_kick(struct smtp_client *c)
{
	enum client_kick k = c->kick;

	c->kick = KICK_NONE;
	switch (k) {
	case KICK_EHLO:
		return client_send_ehlo(c);
	case KICK_TXN:
		return client_txn_start(c);
	case KICK_QUIT:
		client_put(c, "QUIT\r\n");
		c->state = CS_QUIT;
		return ACT_CONTINUE;
	default:
		return ACT_CONTINUE;
	}
}

/* One reply in, or an action out. */
static int
client_step(struct smtp_client *c, const char *in, size_t len, size_t *consumed)
{
	size_t n = 0;
	int rc, act;

	if (c->wrote)
		return SMTP_CLIENT_SEND;
	if (!client_awaits_reply(c))
		return client_idle_action(c);
	rc = client_take(c, in + *consumed, len - *consumed, &n);
	if (rc == 0)
		return SMTP_CLIENT_NEED_INPUT;
	if (rc < 0)
		return client_fail_local(c, 451, "4.5.0",
		    "Protocol error: the peer's reply does not parse", false);
	*consumed += n;
	act = client_on_reply(c);
	if (act == SMTP_CLIENT_STARTTLS)
		*consumed = len; /* plaintext after the 220: dropped */
	return act;
}

enum smtp_client_action
smtp_client_next(struct smtp_client *c, const char *in, size_t len,
    size_t *consumed, struct buf *out)
{
	int act;

	*consumed = 0;
	c->out = out;
	c->out_start = out->len;
	c->wrote = c->oflow = false;
	if (len == 0)
		in = "";
	if (c->state == CS_TLS_WAIT)
		*consumed = len;
	act = client_kick(c);
	while (act == ACT_CONTINUE)
		act = client_step(c, in, len, consumed);
	if (c->oflow) {
		out->len = c->out_start;
		if (out->data != NULL)
			out->data[out->len] = '\0';
		act = client_fail_local(
		    c, 451, "4.3.0", "Output buffer full", false);
		c->oflow = false;
	}
	return (enum smtp_client_action)act;
}

/* ======================================================================
 * Configuration
 * ====================================================================== */

/* An address: bounded, no control byte; *utf8 set if 8-bit. */
static bool
conf_addr_ok(const char *s, bool allow_empty, bool *utf8)
{
	size_t i, n;

	if (s == NULL)
		return false;
	n = strlen(s);
	if (n > ADDR_PATH_MAX - 2 || (n == 0 && !allow_empty))
		return false;
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch < 0x20 || ch == 0x7f)
			return false;
		if (ch >= 0x80)
			*utf8 = true;
	}
	return true;
}

/* "rfc822;xtext" when it can be passed on as RFC 3461 says, else "". */
static void
conf_orcpt(const struct smtp_client_rcpt *in, char *out, size_t outlen)
{
	const char *p;
	int n;

	out[0] = '\0';
	if (in->orcpt_type == NULL || in->orcpt == NULL ||
	    !str_case_eq(in->orcpt_type, strlen(in->orcpt_type), "rfc822"))
		return;
	for (p = in->orcpt; *p != '\0'; p++)
		if ((unsigned char)*p >= 0x80)
			return; /* RFC 6533's utf-8 forms: not made here */
	memcpy(out, "rfc822;", 7);
	n = smtp_xtext_encode(
	    in->orcpt, strlen(in->orcpt), out + 7, outlen - 7);
	if (n <= 0)
		out[0] = '\0';
}

static int
conf_rcpts(
    struct client_rcpt *r, const struct smtp_client_conf *conf, bool *utf8)
{
	size_t i;

	for (i = 0; i < conf->nrcpts; i++) {
		const struct smtp_client_rcpt *in = &conf->rcpts[i];

		if (!conf_addr_ok(in->addr, false, utf8) ||
		    str_copy(r[i].addr, sizeof(r[i].addr), in->addr,
			strlen(in->addr)) == -1)
			return -1;
		r[i].notify = in->notify;
		conf_orcpt(in, r[i].orcpt, sizeof(r[i].orcpt));
	}
	return 0;
}

/* Validate and copy the message part of conf; c is unchanged on -1. */
static int
client_set_message(struct smtp_client *c, const struct smtp_client_conf *conf)
{
	struct client_rcpt *r;
	bool utf8 = conf->smtputf8;
	const char *envid = conf->envid != NULL ? conf->envid : "";

	if (conf->nrcpts == 0 || conf->nrcpts > SMTP_CLIENT_RCPT_MAX ||
	    conf->rcpts == NULL || !conf_addr_ok(conf->sender, true, &utf8))
		return -1;
	r = xcalloc(conf->nrcpts, sizeof(*r));
	if (conf_rcpts(r, conf, &utf8) == -1) {
		free(r);
		return -1;
	}
	free(c->rcpts);
	c->rcpts = r;
	c->nrcpts = conf->nrcpts;
	memcpy(c->sender, conf->sender, strlen(conf->sender) + 1);
	c->size = conf->size;
	c->body_8bit = conf->body_8bit;
	c->dg_flags = conf->downgrade;
	c->size_7bit = conf->size_7bit;
	c->dg_why[0] = '\0';
	if (conf->downgrade_why != NULL &&
	    str_copy(c->dg_why, sizeof(c->dg_why), conf->downgrade_why,
		strlen(conf->downgrade_why)) == -1)
		c->dg_why[0] = '\0'; /* too long to quote: not said */
	c->downgrade = false;
	c->utf8 = utf8;
	c->requiretls = conf->requiretls;
	c->ret = conf->ret;
	/* RFC 3461 4.4: ENVID is at most 100 octets as sent; longer: dropped */
	if (smtp_xtext_encode(
		envid, strlen(envid), c->envid, sizeof(c->envid)) < 0)
		c->envid[0] = '\0';
	return 0;
}

bool
smtp_client_helo_ok(const char *h)
{
	size_t i, n;

	if (h == NULL || (n = strlen(h)) == 0 || n > ADDR_DOMAIN_MAX)
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)h[i] <= 0x20 || (unsigned char)h[i] == 0x7f)
			return false;
	return true;
}

static int
client_set_session(struct smtp_client *c, const struct smtp_client_conf *conf)
{
	if (!smtp_client_helo_ok(conf->helo))
		return -1;
	memcpy(c->helo, conf->helo, strlen(conf->helo) + 1);
	c->want_tls = conf->want_starttls;
	c->require_tls = conf->require_tls;
	c->tls = conf->tls_active;
	c->tls_verified = conf->tls_active && conf->tls_verified;
	c->tls_policy = conf->tls_policy;
	c->auth_plain_ok = conf->auth_plaintext_ok;
	c->auth_unverified_ok = conf->auth_unverified_ok;
	c->lmtp = conf->lmtp;
	if (c->lmtp && (conf->require_tls || conf->auth_user != NULL))
		return -1; /* neither is spoken over LMTP here */
	if (conf->auth_user == NULL)
		return 0;
	c->has_auth = true;
	if (conf->auth_pass == NULL ||
	    str_copy(c->user, sizeof(c->user), conf->auth_user,
		strlen(conf->auth_user)) == -1 ||
	    str_copy(c->pass, sizeof(c->pass), conf->auth_pass,
		strlen(conf->auth_pass)) == -1)
		return -1;
	return 0;
}

struct smtp_client *
smtp_client_new(const struct smtp_client_conf *conf)
{
	struct smtp_client *c = xcalloc(1, sizeof(*c));

	c->state = CS_GREETING;
	if (client_set_session(c, conf) == -1 ||
	    client_set_message(c, conf) == -1) {
		smtp_client_free(c);
		return NULL;
	}
	return c;
}

void
smtp_client_free(struct smtp_client *c)
{
	if (c == NULL)
		return;
	explicit_bzero(c->user, sizeof(c->user));
	explicit_bzero(c->pass, sizeof(c->pass));
	free(c->rcpts);
	free(c);
}

/* ======================================================================
 * Shell calls
 * ====================================================================== */

void
smtp_client_tls_done(struct smtp_client *c, bool verified)
{
	if (c->state != CS_TLS_WAIT)
		return;
	/* RFC 3207 4.2: forget what the peer said before TLS */
	c->tls = true;
	c->tls_verified = verified;
	memset(&c->caps, 0, sizeof(c->caps));
	c->scan_off = c->scan_pos = 0;
	c->scan_lines = 0;
	c->kick = KICK_EHLO;
	c->state = CS_EHLO;
}

int
smtp_client_reset_message(
    struct smtp_client *c, const struct smtp_client_conf *conf)
{
	if (c->state != CS_DONE || client_set_message(c, conf) == -1)
		return -1;
	c->kick = KICK_TXN;
	return 0;
}

void
smtp_client_quit(struct smtp_client *c)
{
	if (c->state == CS_DONE)
		c->kick = KICK_QUIT;
}

void
smtp_client_fail(
    struct smtp_client *c, int code, const char *enh, const char *text)
{
	result_local(
	    &c->error, code, enh != NULL ? enh : "", text != NULL ? text : "");
	if (c->error.cls == SMTP_RESULT_OK)
		c->error.cls = SMTP_RESULT_TEMP;
	client_rcpt_set_all(c, &c->error);
	c->state = CS_FAILED;
	c->kick = KICK_NONE;
}

size_t
smtp_client_nrcpts(const struct smtp_client *c)
{
	return c->nrcpts;
}

const struct smtp_client_result *
smtp_client_result(const struct smtp_client *c, size_t i)
{
	return i < c->nrcpts ? &c->rcpts[i].res : NULL;
}

const struct smtp_client_result *
smtp_client_error(const struct smtp_client *c)
{
	return &c->error;
}

const struct smtp_caps *
smtp_client_caps(const struct smtp_client *c)
{
	return &c->caps;
}

bool
smtp_client_downgrade(const struct smtp_client *c)
{
	return c->downgrade;
}

bool
smtp_client_tls(const struct smtp_client *c)
{
	return c->tls;
}

const char *
smtp_client_peer_name(const struct smtp_client *c)
{
	return c->peer_name;
}

bool
smtp_client_requiretls_refused(const struct smtp_client *c)
{
	return c->state == CS_DONE && c->rt_refused;
}

static const char *
client_waiting_for(const struct smtp_client *c)
{
	static const char *const step_names[] = {
	    [STEP_RSET] = "RSET",
	    [STEP_MAIL] = "MAIL FROM",
	    [STEP_RCPT] = "RCPT TO",
	    [STEP_DATA] = "DATA",
	};
	size_t i;

	switch (c->state) {
	case CS_GREETING:
		return "greeting";
	case CS_EHLO:
		return c->lmtp ? "LHLO" : "EHLO";
	case CS_HELO:
		return "HELO";
	case CS_STARTTLS:
		return "STARTTLS";
	case CS_AUTH:
		return "AUTH";
	case CS_TXN:
		return step_names[client_step_kind(c, c->answered, &i)];
	case CS_BODY:
		return "end of data";
	case CS_QUIT:
		return "QUIT";
	default:
		return NULL;
	}
}

const char *
smtp_client_waiting(const struct smtp_client *c)
{
	return client_waiting_for(c);
}

void
smtp_client_result_set(struct smtp_client_result *res,
    enum smtp_result_class cls, int code, const char *enh, const char *text)
{
	memset(res, 0, sizeof(*res));
	res->cls = cls;
	res->code = code;
	/* RFC 3463 bounds a code at 9 octets: one that does not fit is no
	 * code, and none is better than a cut one */
	if (str_fmt(res->enh, sizeof(res->enh), "%s", enh) != 0)
		res->enh[0] = '\0';
	str_fmt_cut(res->text, sizeof(res->text), "%s", text);
}
