/*
 * authres: Authentication-Results (RFC 8601) built and read.
 *
 * The builder writes words (each already quoted as needed) and folds
 * before a word that would pass the width, so a fold is only ever put at
 * a place where RFC 5322 allows folding whitespace.  The reader is a lexer
 * of tokens, quoted-strings and single specials with CFWS skipped between
 * them (comments nested by a counter, never by recursion) and a parser
 * over it that keeps views.
 *
 * Invariants: every read is bounded by the caller's length; the lexer
 * moves forward on every call, so the parse is linear in the input; the
 * builder either appends a whole header or leaves out unchanged.
 */
#include "mailauth/authres.h"

#include "addr/addr.h"

#include <string.h>
#include <strings.h>

/* ---- characters --------------------------------------------------------- */

/*
 * RFC 2045 token: printable ASCII but SPACE and the tspecials.  The reader
 * takes UTF-8 too (RFC 6532 3.2 lets header values carry it); the builder
 * quotes it, since older readers know only ASCII atoms.
 */
static bool
ar_tokch(unsigned char c)
{
	if (c >= 0x80)
		return true;
	if (c <= 0x20 || c == 0x7f)
		return false;
	return strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

/* RFC 5322 atext (for a dot-atom local-part or domain) */
static bool
ar_atext(unsigned char c)
{
	if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
		return true;
	if (c >= '0' && c <= '9')
		return true;
	return c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static bool
ar_is_token(const char *s, size_t n)
{
	size_t i;

	if (n == 0)
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80 ||
		    !ar_tokch((unsigned char)s[i]))
			return false;
	return true;
}

/* a keyword of the grammar (method, result, ptype, property): an ldh-str */
static bool
ar_is_keyword(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 64)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!(((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ||
			(c >= '0' && c <= '9') || c == '-'))
			return false;
	}
	return true;
}

static bool
ar_dot_atom(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (i = 0; i < n; i++)
		if (s[i] == '.' ? s[i - 1] == '.'
				: !ar_atext((unsigned char)s[i]))
			return false;
	return true;
}

/* [local-part] "@" domain, written bare (RFC 8601 2.2 pvalue) */
static bool
ar_is_addr(const char *s, size_t n)
{
	const char *at = memchr(s, '@', n);
	size_t ll;

	if (at == NULL)
		return false;
	ll = (size_t)(at - s);
	return (ll == 0 || ar_dot_atom(s, ll)) &&
	       ar_dot_atom(at + 1, n - ll - 1) && memchr(s, '/', n) == NULL &&
	       memchr(s, '=', n) == NULL && memchr(s, '?', n) == NULL;
}

/* ---- building ----------------------------------------------------------- */

struct ar_out {
	struct buf *b;
	size_t col, width;
	bool fail;
};

/* Append word (already in its final form), folding before it if needed. */
static void
ar_word(struct ar_out *o, const char *w, size_t n, bool space)
{
	if (o->fail)
		return;
	/* + 1: room for the ';' that may follow, so no line passes width */
	if (space && o->col + 1 + n + 1 > o->width && o->col > 1) {
		o->fail = buf_append(o->b, "\r\n\t", 3) != 0;
		o->col = 1;
		space = false;
	}
	if (space && !o->fail)
		o->fail = buf_append(o->b, " ", 1) != 0, o->col++;
	if (!o->fail)
		o->fail = buf_append(o->b, w, n) != 0;
	o->col += n;
}

/*
 * The value as a token, an address (when addr: a pvalue may be one, an
 * authserv-id may not), or a quoted-string, into q.
 */
static int
ar_quote(const char *v, bool addr, char *q, size_t qlen, size_t *n_out)
{
	size_t n = strlen(v), i, k = 0;

	if (n > AUTHRES_VALUE_MAX)
		return -1;
	for (i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
			return -1;
	if (ar_is_token(v, n) || (addr && ar_is_addr(v, n))) {
		memcpy(q, v, n);
		*n_out = n;
		return 0;
	}
	q[k++] = '"';
	for (i = 0; i < n && k + 3 < qlen; i++) {
		if (v[i] == '"' || v[i] == '\\')
			q[k++] = '\\';
		q[k++] = v[i];
	}
	q[k++] = '"';
	*n_out = k;
	return 0;
}

/* "key=value" as one word (a fold may come only before it) */
static void
ar_pair(struct ar_out *o, const char *key, const char *val, bool space)
{
	char q[2 * AUTHRES_VALUE_MAX + 3], w[sizeof(q) + 160];
	size_t qn;

	if (o->fail)
		return;
	if (ar_quote(val, true, q, sizeof(q), &qn) != 0 ||
	    str_fmt(w, sizeof(w), "%s=%.*s", key, (int)qn, q) != 0) {
		o->fail = true;
		return;
	}
	ar_word(o, w, strlen(w), space);
}

static int
ar_check(const struct authres_result *r)
{
	size_t i;

	if (!ar_is_keyword(r->method) || !ar_is_keyword(r->result) ||
	    r->nprops > AUTHRES_PROPS_MAX)
		return -1;
	for (i = 0; i < r->nprops; i++)
		if (!ar_is_keyword(r->props[i].ptype) ||
		    !ar_is_keyword(r->props[i].property) ||
		    r->props[i].value == NULL)
			return -1;
	return 0;
}

static void
ar_resinfo(struct ar_out *o, const struct authres_result *r)
{
	char key[140];
	size_t i;

	if (buf_append(o->b, "\r\n\t", 3) != 0) {
		o->fail = true;
		return;
	}
	o->col = 1;
	ar_pair(o, r->method, r->result, false);
	if (r->reason != NULL)
		ar_pair(o, "reason", r->reason, true);
	for (i = 0; i < r->nprops && !o->fail; i++) {
		if (str_fmt(key, sizeof(key), "%s.%s", r->props[i].ptype,
			r->props[i].property) != 0) {
			o->fail = true;
			return;
		}
		ar_pair(o, key, r->props[i].value, true);
	}
}

int
authres_build(struct buf *out, const char *authserv_id,
    const struct authres_result *r, size_t n, size_t width)
{
	struct ar_out o = {out, 0, width < 20 ? 20 : width, false};
	size_t start = out->len, i, qn;
	char id[2 * AUTHRES_VALUE_MAX + 3];

	for (i = 0; i < n; i++)
		if (ar_check(&r[i]) != 0)
			return -1;
	if (ar_quote(authserv_id, false, id, sizeof(id), &qn) != 0 || qn == 0 ||
	    (qn == 2 && id[0] == '"'))
		return -1;
	ar_word(&o, "Authentication-Results:", 23, false);
	ar_word(&o, id, qn, true);
	ar_word(&o, ";", 1, false);
	if (n == 0)
		ar_word(&o, "none", 4, true);
	for (i = 0; i < n && !o.fail; i++) {
		ar_resinfo(&o, &r[i]);
		if (i + 1 < n)
			ar_word(&o, ";", 1, false);
	}
	if (!o.fail)
		o.fail = buf_append(out, "\r\n", 2) != 0;
	if (o.fail) {
		out->len = start;
		if (out->data)
			out->data[start] = '\0';
		return -1;
	}
	return 0;
}

/* ---- reading --------------------------------------------------------------
 */

enum ar_kind { AR_END, AR_TOKEN, AR_QSTR, AR_SPECIAL, AR_BAD };

struct ar_lex {
	const char *s;
	size_t n, i;
};

struct ar_tok {
	enum ar_kind k;
	const char *p;
	size_t n;
};

/* Skip folding whitespace and comments; false on an unterminated one. */
static bool
ar_cfws(struct ar_lex *lx)
{
	size_t depth = 0;

	while (lx->i < lx->n) {
		char c = lx->s[lx->i];

		if (depth > 0 && c == '\\') {
			lx->i += lx->i + 1 < lx->n ? 2 : 1;
			continue;
		}
		if (c == '(')
			depth++;
		else if (c == ')' && depth > 0)
			depth--;
		else if (depth == 0 && c != ' ' && c != '\t' && c != '\r' &&
			 c != '\n')
			return true;
		lx->i++;
	}
	return depth == 0;
}

static struct ar_tok
ar_next(struct ar_lex *lx)
{
	struct ar_tok t = {AR_END, NULL, 0};
	size_t st;

	if (!ar_cfws(lx))
		return t.k = AR_BAD, t;
	if (lx->i >= lx->n)
		return t;
	st = lx->i;
	t.p = lx->s + st;
	if (lx->s[st] == '"') {
		for (lx->i++; lx->i < lx->n && lx->s[lx->i] != '"'; lx->i++)
			if (lx->s[lx->i] == '\\')
				lx->i++;
		if (lx->i >= lx->n)
			return t.k = AR_BAD, t;
		lx->i++;
		t.k = AR_QSTR;
	} else if (ar_tokch((unsigned char)lx->s[st])) {
		while (lx->i < lx->n && ar_tokch((unsigned char)lx->s[lx->i]))
			lx->i++;
		t.k = AR_TOKEN;
	} else {
		lx->i++;
		t.k = lx->s[st] == ')' ? AR_BAD : AR_SPECIAL;
	}
	t.n = lx->i - st;
	return t;
}

static bool
ar_special(const struct ar_tok *t, char c)
{
	return t->k == AR_SPECIAL && t->p[0] == c;
}

static bool
ar_word_tok(const struct ar_tok *t)
{
	return t->k == AR_TOKEN || t->k == AR_QSTR;
}

/* The id, unquoted, into p->id; false when it is not a word or too long. */
static bool
ar_take_id(const struct ar_tok *t, struct authres_parsed *p)
{
	size_t i, k = 0;

	if (t->k == AR_TOKEN)
		return str_copy(p->id, sizeof(p->id), t->p, t->n) == 0;
	if (t->k != AR_QSTR)
		return false;
	for (i = 1; i + 1 < t->n; i++) {
		unsigned char c;

		if (t->p[i] == '\r' || t->p[i] == '\n')
			continue; /* folding inside the string: unfold */
		if (t->p[i] == '\\')
			i++;
		c = (unsigned char)t->p[i];
		/* a NUL or control byte would make another id than the one
		 * a reader of the header sees, or an empty one */
		if ((c < 0x20 && c != '\t') || c == 0x7f || k >= AUTHRES_ID_MAX)
			return false;
		p->id[k++] = (char)c;
	}
	p->id[k] = '\0';
	return k > 0;
}

static bool
ar_digits(const struct ar_tok *t)
{
	size_t i;

	if (t->k != AR_TOKEN || t->n == 0 || t->n > 9)
		return false;
	for (i = 0; i < t->n; i++)
		if (t->p[i] < '0' || t->p[i] > '9')
			return false;
	return true;
}

/* pvalue: a word, or [word] "@" word (RFC 8601 2.2); t is its first. */
static bool
ar_pvalue(struct ar_lex *lx, struct ar_tok t, struct authres_view *v)
{
	struct ar_lex save;
	struct ar_tok u;

	v->p = t.p;
	if (ar_word_tok(&t)) {
		save = *lx;
		u = ar_next(lx);
		if (!ar_special(&u, '@')) {
			*lx = save;
			v->n = t.n;
			return true;
		}
		t = u;
	}
	if (!ar_special(&t, '@'))
		return false;
	u = ar_next(lx);
	if (u.k != AR_TOKEN)
		return false;
	v->n = (size_t)(u.p + u.n - v->p);
	return true;
}

static void
ar_view(struct authres_view *v, const struct ar_tok *t)
{
	v->p = t->p;
	v->n = t->n;
}

/*
 * One "reason=value" or "ptype.property=pvalue" starting at the token t,
 * kept in r (NULL: read and dropped).  Returns the token after it; *ok is
 * false when it is not one.
 */
static struct ar_tok
ar_prop(
    struct ar_lex *lx, struct ar_tok t, struct authres_parsed_res *r, bool *ok)
{
	struct ar_tok name = t;
	const char *dot = memchr(t.p, '.', t.n);
	bool reason = t.n == 6 && strncasecmp(t.p, "reason", 6) == 0;
	struct authres_parsed_prop *pp = NULL;
	struct authres_view junk;

	*ok = false;
	if (!reason && (dot == NULL || dot == t.p || dot + 1 == t.p + t.n))
		return t;
	t = ar_next(lx);
	if (!ar_special(&t, '='))
		return t;
	t = ar_next(lx);
	if (reason) {
		if (!ar_word_tok(&t))
			return t;
		if (r != NULL)
			ar_view(&r->reason, &t);
		*ok = true;
		return ar_next(lx);
	}
	if (r != NULL && r->nprops < AUTHRES_PROPS_MAX) {
		pp = &r->props[r->nprops++];
		pp->ptype =
		    (struct authres_view){name.p, (size_t)(dot - name.p)};
		pp->property = (struct authres_view){
		    dot + 1, (size_t)(name.p + name.n - dot - 1)};
	}
	if (!ar_pvalue(lx, t, pp ? &pp->value : &junk))
		return t;
	*ok = true;
	return ar_next(lx);
}

/* One resinfo after its ';': method [/ver] = result, then reason, props. */
static struct ar_tok
ar_resinfo_parse(
    struct ar_lex *lx, struct ar_tok t, struct authres_parsed *p, bool *ok)
{
	struct authres_parsed_res *r =
	    p->nresults < AUTHRES_RESULTS_MAX ? &p->res[p->nresults] : NULL;
	struct ar_tok method = t;

	*ok = false;
	if (t.k != AR_TOKEN)
		return t;
	t = ar_next(lx);
	if (ar_special(&t, '/')) {
		t = ar_next(lx);
		if (!ar_digits(&t))
			return t;
		t = ar_next(lx);
	}
	if (!ar_special(&t, '='))
		return t;
	t = ar_next(lx);
	if (t.k != AR_TOKEN)
		return t;
	if (r != NULL) {
		ar_view(&r->method, &method);
		ar_view(&r->result, &t);
	}
	p->nresults++;
	for (*ok = true, t = ar_next(lx); *ok && t.k == AR_TOKEN;)
		t = ar_prop(lx, t, r, ok);
	return t;
}

enum authres_status
authres_parse(const char *v, size_t len, struct authres_parsed *p)
{
	struct ar_lex lx = {v, len, 0};
	struct ar_tok t;
	bool ok;

	memset(p, 0, sizeof(*p));
	p->version = 1;
	t = ar_next(&lx);
	if (!ar_take_id(&t, p))
		return AUTHRES_BAD_ID;
	t = ar_next(&lx);
	if (ar_digits(&t)) {
		/* at most 9 digits (ar_digits): no overflow; no strtoul, the
		 * text is not NUL-terminated */
		p->version = 0;
		for (size_t i = 0; i < t.n; i++)
			p->version = p->version * 10 + (unsigned)(t.p[i] - '0');
		t = ar_next(&lx);
	}
	if (t.k == AR_END)
		return AUTHRES_OK; /* no result at all: seen in the wild */
	if (!ar_special(&t, ';'))
		return AUTHRES_BAD_RES;
	t = ar_next(&lx);
	if (t.k == AR_TOKEN && t.n == 4 && strncasecmp(t.p, "none", 4) == 0) {
		p->none = true;
		t = ar_next(&lx);
		if (ar_special(&t, ';'))
			t = ar_next(&lx);
		return t.k == AR_END ? AUTHRES_OK : AUTHRES_BAD_RES;
	}
	while (t.k != AR_END) {
		t = ar_resinfo_parse(&lx, t, p, &ok);
		if (!ok)
			return AUTHRES_BAD_RES;
		if (t.k == AR_END)
			break;
		if (!ar_special(&t, ';'))
			return AUTHRES_BAD_RES;
		t = ar_next(&lx);
	}
	return p->nresults > 0 ? AUTHRES_OK : AUTHRES_BAD_RES;
}

bool
authres_is_ours(const char *v, size_t len, const char *authserv_id)
{
	struct authres_parsed p;
	size_t n = strlen(authserv_id);

	if (authres_parse(v, len, &p) == AUTHRES_BAD_ID)
		return false;
	return strlen(p.id) == n && strncasecmp(p.id, authserv_id, n) == 0;
}

size_t
authres_ours_in(const char *msg, size_t len, const char *authserv_id,
    struct authres_span *spans, size_t max)
{
	struct addr_hdr_scan sc;
	struct addr_hdr_field f;
	size_t n = 0;

	addr_hdr_scan_init(&sc, msg, len);
	while (addr_hdr_next(&sc, &f)) {
		if (!addr_hdr_name_is(&f, "Authentication-Results") ||
		    !authres_is_ours(f.value, f.value_len, authserv_id))
			continue;
		if (n < max)
			spans[n] = (struct authres_span){f.off, f.raw_len};
		n++;
	}
	return n;
}
