/*
 * header: the header section of a message (RFC 5322 2.2) and the address
 * lists in its To/Cc/Bcc fields (RFC 5322 3.4, with the obsolete forms of
 * 4.4 that real mail still carries).
 *
 * Lines: a line ends at LF; a CR right before the LF belongs to the line
 * end.  So CRLF and bare LF both end lines (sendmail -t reads local files
 * written with LF), and the bare LF is flagged ADDR_HDR_BAD_EOL so that
 * submission, which must see CRLF, can refuse it.  The header section ends
 * at the first empty line.  A line starting with a blank continues the
 * field before it (folding, 2.2.3); a line of blanks only is a fold too
 * (obs-FWS), not the end of the header.
 *
 * Address lists: a small lexer (atoms, quoted strings, domain literals,
 * specials; comments and folding whitespace skipped, comments nested with
 * a counter, never by recursion) and a parser of one element at a time:
 * mailbox, group start "name:", group end ";", or an empty element.  An
 * addr-spec is rebuilt without its CFWS in a bounded scratch buffer and
 * handed to addr_parse_mailbox(), so only what SMTP accepts comes out.
 *
 * Invariants: every read is bounded by the caller's length, the input is
 * never assumed NUL-terminated, and no pass re-reads a byte more than a
 * fixed number of times (the display name is lexed at most twice), so the
 * work is linear in the input.  Errors are sticky in struct addr_list.
 *
 * Limits: a field of ADDR_HDR_FIELD_MAX octets (longer ones are returned,
 * flagged ADDR_HDR_BAD_LONG; address lists over it are refused); lines are
 * measured against ADDR_HDR_LINE_MAX and the longest is kept; at most
 * ADDR_LIST_MAX addresses per list; an addr-spec of ADDR_PATH_MAX octets.
 *
 * Pure: no I/O, no allocation.
 */
#include "addr/addr.h"

#include <limits.h>
#include <string.h>

#include "util/util.h"

/* ---- lines and fields ---------------------------------------------------- */

/* One line of msg: [start, cend) is its content, next is after its end. */
struct hdr_line {
	size_t start;
	size_t cend;
	size_t next;
	bool lf;      /* ended by a LF (else by the end of the message) */
	bool bare_lf; /* ... and no CR before it */
};

static void
hdr_line_at(const char *msg, size_t len, size_t pos, struct hdr_line *l)
{
	const char *nl = memchr(msg + pos, '\n', len - pos);

	l->start = pos;
	if (nl == NULL) {
		l->cend = l->next = len;
		l->lf = l->bare_lf = false;
		return;
	}
	l->next = (size_t)(nl - msg) + 1;
	l->cend = l->next - 1;
	l->lf = true;
	l->bare_lf = true;
	if (l->cend > pos && msg[l->cend - 1] == '\r') {
		l->cend--;
		l->bare_lf = false;
	}
}

static bool
hdr_is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

size_t
addr_hdr_end(const char *msg, size_t len, size_t *body_out)
{
	struct hdr_line l;
	size_t pos = 0;

	while (pos < len) {
		hdr_line_at(msg, len, pos, &l);
		if (l.cend == l.start && l.lf) {
			if (body_out != NULL)
				*body_out = l.next;
			return pos;
		}
		pos = l.next;
	}
	if (body_out != NULL)
		*body_out = len;
	return len;
}

void
addr_hdr_scan_init(struct addr_hdr_scan *s, const char *msg, size_t len)
{
	memset(s, 0, sizeof(*s));
	s->msg = msg;
	s->len = len;
	s->end = addr_hdr_end(msg, len, &s->body);
}

/* Bad bits of one line's content and line end. */
static unsigned
hdr_line_bad(const char *msg, const struct hdr_line *l)
{
	size_t n = l->cend - l->start;
	unsigned bad = 0;

	if (n > ADDR_HDR_LINE_MAX)
		bad |= ADDR_HDR_BAD_LINE;
	if (l->bare_lf || memchr(msg + l->start, '\r', n) != NULL)
		bad |= ADDR_HDR_BAD_EOL;
	if (memchr(msg + l->start, '\0', n) != NULL)
		bad |= ADDR_HDR_BAD_NUL;
	return bad;
}

/*
 * field-name ":" with blanks allowed before the colon (obs-optional).
 * Returns the offset just after the colon, or 0 if the line has no name
 * (a name is at least one octet, so 0 cannot be a valid answer).
 */
static size_t
hdr_name(const char *msg, const struct hdr_line *l, size_t *name_len_out)
{
	size_t i = l->start, n;

	while (i < l->cend && msg[i] > 32 && msg[i] < 127 && msg[i] != ':')
		i++;
	n = i - l->start;
	while (i < l->cend && hdr_is_wsp(msg[i]))
		i++;
	if (n == 0 || i >= l->cend || msg[i] != ':')
		return 0;
	*name_len_out = n;
	return i + 1 - l->start;
}

/* Trim blanks and line-end octets at both ends of the view [*b, e). */
static void
hdr_trim(const char *msg, size_t *b, size_t e, struct addr_hdr_field *f)
{
	while (*b < e &&
	       (hdr_is_wsp(msg[*b]) || msg[*b] == '\r' || msg[*b] == '\n'))
		(*b)++;
	while (e > *b && (hdr_is_wsp(msg[e - 1]) || msg[e - 1] == '\r' ||
			     msg[e - 1] == '\n'))
		e--;
	f->value = msg + *b;
	f->value_len = e - *b;
}

bool
addr_hdr_next(struct addr_hdr_scan *s, struct addr_hdr_field *out)
{
	struct hdr_line l;
	size_t vstart, vend, colon;

	if (s->pos >= s->end)
		return false;
	memset(out, 0, sizeof(*out));
	out->off = s->pos;
	hdr_line_at(s->msg, s->end, s->pos, &l);
	colon = hdr_is_wsp(s->msg[l.start])
		    ? 0
		    : hdr_name(s->msg, &l, &out->name_len);
	if (colon == 0) {
		out->bad |= ADDR_HDR_BAD_NAME;
		out->name_len = 0;
	} else {
		out->name = s->msg + l.start;
	}
	vstart = l.start + colon;
	for (;;) {
		out->bad |= hdr_line_bad(s->msg, &l);
		if (l.cend - l.start > s->longest)
			s->longest = l.cend - l.start;
		vend = l.cend;
		if (l.next >= s->end || !hdr_is_wsp(s->msg[l.next]))
			break;
		hdr_line_at(s->msg, s->end, l.next, &l);
	}
	out->raw_len = l.next - out->off;
	if (out->raw_len > ADDR_HDR_FIELD_MAX)
		out->bad |= ADDR_HDR_BAD_LONG;
	hdr_trim(s->msg, &vstart, vend, out);
	s->pos = l.next;
	s->fields++;
	s->bad |= out->bad;
	return true;
}

bool
addr_hdr_name_is(const struct addr_hdr_field *f, const char *name)
{
	return f->name != NULL && str_case_eq(f->name, f->name_len, name);
}

bool
addr_hdr_find(
    const char *msg, size_t len, const char *name, struct addr_hdr_field *out)
{
	struct addr_hdr_scan s;

	addr_hdr_scan_init(&s, msg, len);
	while (addr_hdr_next(&s, out))
		if (addr_hdr_name_is(out, name))
			return true;
	return false;
}

unsigned
addr_hdr_count(const char *msg, size_t len, const char *name, unsigned stop)
{
	struct addr_hdr_scan s;
	struct addr_hdr_field f;
	unsigned n = 0;

	addr_hdr_scan_init(&s, msg, len);
	while (n < stop && addr_hdr_next(&s, &f))
		if (addr_hdr_name_is(&f, name))
			n++;
	return n;
}

int
addr_hdr_unfold(const char *v, size_t len, char *out, size_t outlen)
{
	size_t i, o = 0;

	if (outlen == 0)
		return -1;
	for (i = 0; i < len; i++) {
		if (v[i] == '\r' || v[i] == '\n')
			continue;
		if (o + 1 >= outlen || o >= INT_MAX)
			return -1;
		out[o++] = v[i];
	}
	out[o] = '\0';
	return (int)o;
}

/* ---- address lists: lexer ------------------------------------------------ */

enum al_kind {
	AL_END,	    /* end of the value */
	AL_ATOM,    /* run of atext (and bytes >= 0x80: local text, liberal) */
	AL_QSTR,    /* quoted-string, quotes included */
	AL_DLIT,    /* domain literal, brackets included */
	AL_SPECIAL, /* one of < > @ , ; : . */
	AL_BAD,	    /* anything else: ) ] \ controls, unterminated quote */
};

struct al_tok {
	enum al_kind kind;
	size_t off; /* first octet in the value */
	size_t n;   /* octets */
	char ch;    /* the special */
};

static bool
al_is_atext(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c >= 0x80)
		return true;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* Skip a comment at l->pos ('('); false if it does not end. */
static bool
al_skip_comment(struct addr_list *l)
{
	size_t depth = 0;

	while (l->pos < l->len) {
		char c = l->p[l->pos++];

		if (c == '\\') {
			if (l->pos >= l->len)
				return false;
			l->pos++;
		} else if (c == '(') {
			depth++;
		} else if (c == ')' && --depth == 0) {
			return true;
		}
	}
	return false;
}

/* Skip CFWS; false on an unterminated comment. */
static bool
al_skip_cfws(struct addr_list *l)
{
	while (l->pos < l->len) {
		char c = l->p[l->pos];

		if (hdr_is_wsp(c) || c == '\r' || c == '\n')
			l->pos++;
		else if (c == '(') {
			if (!al_skip_comment(l))
				return false;
		} else
			break;
	}
	return true;
}

/* Scan to the closing `close`, honouring backslash pairs. */
static bool
al_scan_delimited(struct addr_list *l, char close)
{
	l->pos++;
	while (l->pos < l->len) {
		char c = l->p[l->pos++];

		if (c == close)
			return true;
		if (c == '\\') {
			if (l->pos >= l->len)
				return false;
			l->pos++;
		}
	}
	return false;
}

static void
al_lex(struct addr_list *l, struct al_tok *t)
{
	char c;

	memset(t, 0, sizeof(*t));
	if (!al_skip_cfws(l)) {
		t->kind = AL_BAD;
		t->off = l->pos;
		return;
	}
	t->off = l->pos;
	if (l->pos >= l->len) {
		t->kind = AL_END;
		return;
	}
	c = l->p[l->pos];
	if (c == '"' || c == '[') {
		t->kind = c == '"' ? AL_QSTR : AL_DLIT;
		if (!al_scan_delimited(l, c == '"' ? '"' : ']'))
			t->kind = AL_BAD;
	} else if (c != '\0' && strchr("<>@,;:.", c) != NULL) {
		t->kind = AL_SPECIAL;
		t->ch = c;
		l->pos++;
	} else if (al_is_atext((unsigned char)c)) {
		t->kind = AL_ATOM;
		while (
		    l->pos < l->len && al_is_atext((unsigned char)l->p[l->pos]))
			l->pos++;
	} else {
		t->kind = AL_BAD;
	}
	t->n = l->pos - t->off;
}

static void
al_peek(struct addr_list *l, struct al_tok *t)
{
	size_t save = l->pos;

	al_lex(l, t);
	l->pos = save;
}

static bool
al_is(const struct al_tok *t, char special)
{
	return t->kind == AL_SPECIAL && t->ch == special;
}

/* ---- address lists: parser ----------------------------------------------- */

/* The addr-spec rebuilt without CFWS. */
struct al_spec {
	char s[ADDR_PATH_MAX + 1];
	size_t n;
	bool over;
};

/* Append a token's octets; folds inside quotes and literals are dropped. */
static void
al_put(struct al_spec *sp, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (p[i] == '\r' || p[i] == '\n')
			continue;
		if (sp->n >= ADDR_PATH_MAX) {
			sp->over = true;
			return;
		}
		sp->s[sp->n++] = p[i];
	}
}

static enum addr_list_status
al_fail(struct addr_list *l, enum addr_list_status st, size_t at)
{
	l->st = st;
	l->err_pos = at;
	return st;
}

/* word *("." word): the local part, or with atoms only, a domain name. */
static enum addr_list_status
al_words(struct addr_list *l, struct al_spec *sp, bool domain)
{
	struct al_tok t, dot;

	for (;;) {
		al_lex(l, &t);
		if (t.kind != AL_ATOM && (domain || t.kind != AL_QSTR))
			return al_fail(l, ADDR_LIST_SYNTAX, t.off);
		al_put(sp, l->p + t.off, t.n);
		al_peek(l, &dot);
		if (!al_is(&dot, '.'))
			return ADDR_LIST_OK;
		al_lex(l, &dot);
		al_put(sp, ".", 1);
	}
}

static enum addr_list_status
al_domain(struct addr_list *l, struct al_spec *sp)
{
	struct al_tok t;
	size_t i;

	al_peek(l, &t);
	if (t.kind != AL_DLIT)
		return al_words(l, sp, true);
	al_lex(l, &t);
	/* "[ 192.0.2.1 ]": FWS inside a literal is not part of it */
	for (i = t.off; i < t.off + t.n; i++)
		if (!hdr_is_wsp(l->p[i]))
			al_put(sp, l->p + i, 1);
	return ADDR_LIST_OK;
}

/* Check a rebuilt addr-spec (or bare local part) with the SMTP parser. */
static enum addr_list_status
al_check(struct addr_list *l, struct al_spec *sp, bool bare, size_t at,
    struct addr *out)
{
	enum addr_status st;

	if (bare)
		al_put(sp, "@x", 2);
	if (sp->over)
		st = ADDR_ERR_PATH_LONG;
	else
		st = addr_parse_mailbox(
		    sp->s, sp->n, l->flags & ADDR_F_UTF8, out);
	if (st != ADDR_OK) {
		l->addr_err = st;
		return al_fail(l, ADDR_LIST_ADDR, at);
	}
	if (bare) {
		out->domain[0] = '\0';
		out->kind = ADDR_DOMAIN_NONE;
	}
	return ADDR_LIST_OK;
}

/* local "@" domain at l->pos, or with ADDR_LIST_F_LOCAL a bare local. */
static enum addr_list_status
al_addr_spec(struct addr_list *l, struct addr *out)
{
	struct al_spec sp = {.n = 0, .over = false};
	struct al_tok t;
	size_t at = l->pos;

	if (al_words(l, &sp, false) != ADDR_LIST_OK)
		return l->st;
	al_peek(l, &t);
	if (!al_is(&t, '@') && (l->flags & ADDR_LIST_F_LOCAL))
		return al_check(l, &sp, true, at, out);
	al_lex(l, &t);
	if (!al_is(&t, '@'))
		return al_fail(l, ADDR_LIST_SYNTAX, t.off);
	al_put(&sp, "@", 1);
	if (al_domain(l, &sp) != ADDR_LIST_OK)
		return l->st;
	return al_check(l, &sp, false, at, out);
}

/* obs-route "@a,@b:" after '<': skipped, as RFC 5321 does with A-d-l. */
static enum addr_list_status
al_skip_route(struct addr_list *l)
{
	struct al_tok t;

	al_peek(l, &t);
	if (!al_is(&t, '@'))
		return ADDR_LIST_OK;
	for (;;) {
		al_lex(l, &t);
		if (al_is(&t, ':'))
			return ADDR_LIST_OK;
		if (t.kind == AL_END || t.kind == AL_BAD || al_is(&t, '<') ||
		    al_is(&t, '>') || al_is(&t, ';'))
			return al_fail(l, ADDR_LIST_SYNTAX, t.off);
	}
}

/* "<" [route] addr-spec ">", the '<' already taken. */
static enum addr_list_status
al_angle(struct addr_list *l, struct addr *out)
{
	struct al_tok t;

	if (al_skip_route(l) != ADDR_LIST_OK)
		return l->st;
	if (al_addr_spec(l, out) != ADDR_LIST_OK)
		return l->st;
	al_lex(l, &t);
	if (!al_is(&t, '>'))
		return al_fail(l, ADDR_LIST_SYNTAX, t.off);
	return ADDR_LIST_OK;
}

/* What may follow a mailbox: ",", or ";" in a group, or the end. */
static enum addr_list_status
al_after_mailbox(struct addr_list *l)
{
	struct al_tok t;

	al_peek(l, &t);
	if (t.kind == AL_END || (al_is(&t, ';') && l->in_group))
		return ADDR_LIST_OK;
	if (!al_is(&t, ','))
		return al_fail(l, ADDR_LIST_SYNTAX, t.off);
	al_lex(l, &t);
	return ADDR_LIST_OK;
}

/* Skip a phrase (words and obs-phrase dots); returns the token after it. */
static unsigned
al_phrase(struct addr_list *l, struct al_tok *stop)
{
	unsigned words = 0;

	for (;;) {
		al_peek(l, stop);
		if (stop->kind != AL_ATOM && stop->kind != AL_QSTR &&
		    !al_is(stop, '.'))
			return words;
		al_lex(l, stop);
		words++;
	}
}

/* One mailbox or group start, the phrase before its stop token known. */
static enum addr_list_status
al_element(struct addr_list *l, size_t start, unsigned words,
    const struct al_tok *stop, struct addr *out)
{
	struct al_tok t;

	if (al_is(stop, '<')) {
		al_lex(l, &t);
		return al_angle(l, out);
	}
	if (al_is(stop, ':') && !l->in_group && words > 0) {
		al_lex(l, &t);
		l->in_group = true;
		return ADDR_LIST_END; /* nothing yielded: the caller loops */
	}
	l->pos = start;
	if (al_is(stop, '@') || ((l->flags & ADDR_LIST_F_LOCAL) && words > 0))
		return al_addr_spec(l, out);
	return al_fail(l, ADDR_LIST_SYNTAX, stop->off);
}

void
addr_list_init(
    struct addr_list *l, const char *value, size_t len, unsigned flags)
{
	memset(l, 0, sizeof(*l));
	l->p = value;
	l->len = len;
	l->flags = flags;
	l->st = ADDR_LIST_OK;
	l->addr_err = ADDR_OK;
	if (len > ADDR_HDR_FIELD_MAX)
		al_fail(l, ADDR_LIST_LONG, 0);
}

/* Skip empty elements and group ends; false at the end of the value. */
static bool
al_skip_separators(struct addr_list *l)
{
	struct al_tok t;

	for (;;) {
		al_peek(l, &t);
		if (t.kind == AL_END)
			return false;
		if (al_is(&t, ',') || (al_is(&t, ';') && l->in_group)) {
			if (t.ch == ';')
				l->in_group = false;
			al_lex(l, &t);
			continue;
		}
		return true;
	}
}

enum addr_list_status
addr_list_next(struct addr_list *l, struct addr *out)
{
	struct al_tok stop;
	enum addr_list_status st;
	size_t start;
	unsigned words;

	while (l->st == ADDR_LIST_OK) {
		/* a group left open at the end is closed: "undisclosed:" */
		if (!al_skip_separators(l)) {
			l->st = ADDR_LIST_END;
			break;
		}
		start = l->pos;
		words = al_phrase(l, &stop);
		st = al_element(l, start, words, &stop, out);
		if (st == ADDR_LIST_END)
			continue;
		if (st != ADDR_LIST_OK || al_after_mailbox(l) != ADDR_LIST_OK)
			break;
		if (l->count >= ADDR_LIST_MAX)
			return al_fail(l, ADDR_LIST_MANY, start);
		l->count++;
		return ADDR_LIST_OK;
	}
	return l->st;
}

const char *
addr_list_strerror(enum addr_list_status st)
{
	switch (st) {
	case ADDR_LIST_OK:
		return "ok";
	case ADDR_LIST_END:
		return "end of list";
	case ADDR_LIST_SYNTAX:
		return "syntax error in address list";
	case ADDR_LIST_ADDR:
		return "invalid address in address list";
	case ADDR_LIST_MANY:
		return "too many addresses";
	case ADDR_LIST_LONG:
		return "address list too long";
	}
	return "unknown error";
}
