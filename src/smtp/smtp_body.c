/*
 * smtp_body: the DATA / BDAT content reader of the pure SMTP core.
 *
 * Takes the octets that follow "354" (DATA) or a BDAT command and hands
 * the message content to a sink, checking it on the way:
 *   - DATA (dot_mode): dot-unstuffing (RFC 5321 4.5.2) and the end of data,
 *     which is CR LF "." CR LF and nothing else (RFC 5321 4.1.1.4).  The
 *     start of content counts as a line start, so ".\r\n" first is an empty
 *     message.  "\n.\n", "\r.\r\n" and friends never end the data: accepting
 *     them is what makes SMTP smuggling possible.
 *   - BDAT (RFC 3030): no stuffing, no terminator, every octet is content.
 *   - both: bare LF, bare CR, NUL, text lines over 1000 octets (RFC 5321
 *     4.5.3.1.6, counted as transmitted, stuffing dot and CRLF included)
 *     and content over max_size are errors.
 *
 * Invariants:
 *   - Only the first error is kept (the earliest octet; at one octet
 *     structural errors win, then NUL, line length, size).  The sink gets
 *     exactly the content before that octet, whatever the feed boundaries
 *     are, and is never called again.  Reading goes on to the real
 *     terminator so the reply comes at the right point and text smuggled
 *     behind a fake end is swallowed with the refused message.
 *   - The sink itself may refuse the content (smtp_body_refuse, when the
 *     shell has no room left): that counts as an error at the octet after
 *     what it was given, with the same consequences.
 *   - Before an error, line_len <= 1000 and (max_size != 0) size <= max_size.
 *   - A line start is the start of content or the octet after a CR LF
 *     pair; never after a bare LF or a bare CR.
 *   - Content is never copied: the sink gets views into the input, as the
 *     longest runs possible (a run breaks only at a removed dot, the end of
 *     a feed or an error).  The one exception is the CR of a stuffed
 *     ".\r<not LF>" line, which is held back to see whether the line is the
 *     terminator and then given from a static string (an error path only).
 *
 * Limits: size saturates at UINT64_MAX; it counts all unstuffed content up
 * to the terminator, also after an error (for logging).
 *
 * Speed: lines are found with memchr for LF, then CR inside the line;
 * NULs with one memchr per feed.  The next LF is remembered so a line
 * full of bare CRs is not rescanned (no quadratic time).
 */
#include <string.h>

#include "smtp/smtp.h"

enum {
	BODY_ST_LS = 0, /* at a line start */
	BODY_ST_MID,	/* inside a line */
	BODY_ST_CR,	/* a CR was the last octet of the previous feed */
	BODY_ST_DOT,	/* DATA: "." at a line start, dropped */
	BODY_ST_DOT_CR, /* DATA: ".\r" at a line start, the CR held back */
};

/* The cursor of one smtp_body_feed() call. */
struct body_cur {
	const char *run; /* start of the content not yet given to the sink */
	const char *end; /* end of the input */
	const char *nul; /* first NUL of the input, or end */
	const char *lf;	 /* next LF at or after the cursor, or end; NULL:
			    not searched yet */
};

static uint64_t
body_sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Give the run up to at to the sink (nothing once an error is set). */
static void
body_flush(struct smtp_body *b, struct body_cur *c, const char *at)
{
	if (b->error == SMTP_BODY_OK && at > c->run && b->sink != NULL)
		b->sink(b->sink_ctx, c->run, (size_t)(at - c->run));
	c->run = at;
}

/* Record the first error; the content before at still goes out. */
static void
body_fail(struct smtp_body *b, struct body_cur *c, enum smtp_body_error e,
    const char *at)
{
	if (b->error != SMTP_BODY_OK)
		return;
	body_flush(b, c, at);
	/* the sink may have refused the content while it was flushed */
	if (b->error == SMTP_BODY_OK)
		b->error = e;
}

/*
 * Account for the content octets [p, q), which belong to the current run:
 * check them for NUL, line length and size, and fail at the earliest
 * offending octet.
 */
static void
body_content(
    struct smtp_body *b, struct body_cur *c, const char *p, const char *q)
{
	size_t n = (size_t)(q - p);
	enum smtp_body_error err = SMTP_BODY_OK;
	const char *at = q;

	if (b->error == SMTP_BODY_OK) {
		if (c->nul < at) {
			at = c->nul;
			err = SMTP_BODY_ERR_NUL;
		}
		if (n > SMTP_TEXT_LINE_MAX - b->line_len &&
		    p + (SMTP_TEXT_LINE_MAX - b->line_len) < at) {
			at = p + (SMTP_TEXT_LINE_MAX - b->line_len);
			err = SMTP_BODY_ERR_LINE_LONG;
		}
		if (b->max_size != 0 && n > b->max_size - b->size &&
		    p + (b->max_size - b->size) < at) {
			at = p + (b->max_size - b->size);
			err = SMTP_BODY_ERR_TOO_BIG;
		}
		b->line_len += n;
		if (err != SMTP_BODY_OK)
			body_fail(b, c, err, at);
	}
	b->size = body_sat_add(b->size, n);
}

/* A CR LF ended the line at p (the LF); the next octet starts a line. */
static const char *
body_line_end(struct smtp_body *b, const char *lf)
{
	b->st = BODY_ST_LS;
	b->line_len = 0;
	return lf + 1;
}

/*
 * Inside a line: take everything up to and including the next line end,
 * or to the end of the input, or to a bare CR or LF.
 */
static const char *
body_mid(struct smtp_body *b, struct body_cur *c, const char *p)
{
	const char *lf, *cr;

	if (c->lf == NULL || c->lf < p) {
		c->lf = memchr(p, '\n', (size_t)(c->end - p));
		if (c->lf == NULL)
			c->lf = c->end;
	}
	lf = c->lf;
	cr = memchr(p, '\r', (size_t)(lf - p));
	if (cr == NULL) {
		body_content(b, c, p, lf);
		if (lf == c->end)
			return lf;
		body_fail(b, c, SMTP_BODY_ERR_BARE_LF, lf);
		body_content(b, c, lf, lf + 1);
		return lf + 1; /* a bare LF does not start a line */
	}
	if (cr + 1 == lf && lf < c->end) {
		body_content(b, c, p, lf + 1);
		return body_line_end(b, lf);
	}
	body_content(b, c, p, cr + 1);
	if (cr + 1 == c->end) {
		b->st = BODY_ST_CR; /* the LF may come with the next feed */
		return c->end;
	}
	body_fail(b, c, SMTP_BODY_ERR_BARE_CR, cr + 1);
	return cr + 1;
}

/* The previous feed ended in CR: an LF completes the line ending. */
static const char *
body_after_cr(struct smtp_body *b, struct body_cur *c, const char *p)
{
	if (*p == '\n') {
		body_content(b, c, p, p + 1);
		return body_line_end(b, p);
	}
	body_fail(b, c, SMTP_BODY_ERR_BARE_CR, p);
	b->st = BODY_ST_MID;
	return p;
}

/* At a line start in DATA mode: a dot is dropped (stuffing or the end). */
static const char *
body_line_start(struct smtp_body *b, struct body_cur *c, const char *p)
{
	b->st = BODY_ST_MID;
	if (!b->dot_mode || *p != '.')
		return body_mid(b, c, p);
	body_flush(b, c, p);
	c->run = p + 1;
	b->line_len = 1;
	b->st = BODY_ST_DOT;
	return p + 1;
}

/* After a line-start dot: a CR may begin the terminator. */
static const char *
body_after_dot(struct smtp_body *b, struct body_cur *c, const char *p)
{
	if (*p != '\r') {
		b->st = BODY_ST_MID;
		return body_mid(b, c, p);
	}
	b->line_len = 2;
	b->st = BODY_ST_DOT_CR;
	c->run = p + 1; /* the CR is held back: content only if no LF */
	return p + 1;
}

/*
 * After ".\r" at a line start: LF ends the data; anything else makes the
 * CR a bare one, content of a stuffed line.
 */
static const char *
body_after_dot_cr(struct smtp_body *b, struct body_cur *c, const char *p)
{
	if (*p == '\n') {
		b->done = true;
		c->run = p + 1;
		return p + 1;
	}
	if (b->error == SMTP_BODY_OK) {
		if (b->max_size != 0 && b->size >= b->max_size)
			body_fail(b, c, SMTP_BODY_ERR_TOO_BIG, p);
		else if (b->sink != NULL)
			b->sink(b->sink_ctx, "\r", 1);
	}
	b->size = body_sat_add(b->size, 1);
	body_fail(b, c, SMTP_BODY_ERR_BARE_CR, p);
	b->st = BODY_ST_MID;
	return p;
}

static const char *
body_step(struct smtp_body *b, struct body_cur *c, const char *p)
{
	switch (b->st) {
	case BODY_ST_LS:
		return body_line_start(b, c, p);
	case BODY_ST_CR:
		return body_after_cr(b, c, p);
	case BODY_ST_DOT:
		return body_after_dot(b, c, p);
	case BODY_ST_DOT_CR:
		return body_after_dot_cr(b, c, p);
	default:
		return body_mid(b, c, p);
	}
}

void
smtp_body_init(struct smtp_body *b, bool dot_mode, uint64_t max_size,
    smtp_body_sink_fn sink, void *ctx)
{
	memset(b, 0, sizeof(*b));
	b->max_size = max_size;
	b->dot_mode = dot_mode;
	b->sink = sink;
	b->sink_ctx = ctx;
	b->st = BODY_ST_LS;
	b->error = SMTP_BODY_OK;
}

size_t
smtp_body_feed(struct smtp_body *b, const char *in, size_t len)
{
	struct body_cur c;
	const char *p = in;

	if (b->done || len == 0)
		return 0;
	if (!b->dot_mode && b->error != SMTP_BODY_OK) {
		/* nothing left to find: no terminator, no more checks */
		b->size = body_sat_add(b->size, len);
		return len;
	}
	c.run = in;
	c.end = in + len;
	c.lf = NULL;
	c.nul = NULL;
	if (b->error == SMTP_BODY_OK)
		c.nul = memchr(in, '\0', len);
	if (c.nul == NULL)
		c.nul = c.end;
	while (p < c.end && !b->done)
		p = body_step(b, &c, p);
	body_flush(b, &c, p);
	return (size_t)(p - in);
}

void
smtp_body_refuse(struct smtp_body *b, enum smtp_body_error e)
{
	if (b->error == SMTP_BODY_OK && e != SMTP_BODY_OK)
		b->error = e;
}

void
smtp_body_finish(struct smtp_body *b)
{
	/* DATA ends only at its terminator; this is for BDAT LAST. */
	if (b->dot_mode)
		return;
	if (b->st == BODY_ST_CR && b->error == SMTP_BODY_OK)
		b->error = SMTP_BODY_ERR_BARE_CR;
	b->done = true;
}

void
smtp_body_error_reply(
    enum smtp_body_error e, int *code, const char **enh, const char **text)
{
	*code = 554;
	*enh = "5.6.0";
	switch (e) {
	case SMTP_BODY_OK:
		*code = 250;
		*enh = "2.0.0";
		*text = "Message content accepted";
		break;
	case SMTP_BODY_ERR_TOO_BIG:
		*code = 552;
		*enh = "5.3.4";
		*text = "Message size exceeds fixed maximum message size";
		break;
	case SMTP_BODY_ERR_BARE_LF:
		*text = "Bare LF not allowed in message content, line endings "
			"must be CRLF (RFC 5321 2.3.8)";
		break;
	case SMTP_BODY_ERR_BARE_CR:
		*text = "Bare CR not allowed in message content, line endings "
			"must be CRLF (RFC 5321 2.3.8)";
		break;
	case SMTP_BODY_ERR_NUL:
		*text = "NUL octet in message content";
		break;
	case SMTP_BODY_ERR_LINE_LONG:
		*text =
		    "Message line longer than 1000 octets (RFC 5321 4.5.3.1.6)";
		break;
	case SMTP_BODY_ERR_STORAGE:
		*code = 452;
		*enh = "4.3.1";
		*text = "Insufficient system storage, try again later";
		break;
	default:
		*text = "Message content refused";
		break;
	}
}
