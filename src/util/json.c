/*
 * json: a small JSON reader (RFC 8259) for the answers of ternd's control
 * socket.  Recursive descent over a private copy of the input; every value
 * becomes one node of an array that grows by doubling; after the parse the
 * nodes' indices are turned into pointers, so a caller walks a plain tree.
 *
 * Invariants: strings are decoded in place.  The decoded form of a string
 * is never longer than its escaped form (an escape of 2, 6 or 12 octets
 * yields 1, at most 3, or 4 octets), and writing starts at the opening
 * quote while reading starts one octet after it, so the writer never
 * passes the reader and the closing quote's place is free for the NUL.
 * Node indices are used while the array may move; 0 (the root) never is a
 * child or sibling, so it stands for "none".
 *
 * Limits (struct json_limits): input size, nesting depth (the recursion is
 * bounded by it), node count, and JSON_NUMBER_MAX octets per number.
 * Strict grammar: no trailing commas, no comments, no leading zeros, no
 * control bytes in strings, no lone surrogates, no "\u0000", one value per
 * document.  Octets >= 0x80 inside strings are taken as they come (reply
 * texts of remote servers may be any bytes); the caller cleans what it
 * prints.
 *
 * Depends on libc and util only.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json.h"
#include "util/util.h"

struct json_doc {
	char *text; /* copy of the input, NUL-terminated */
	struct json_node *nodes;
	size_t n, cap;
};

struct json_parser {
	struct json_doc *d;
	char *s;
	size_t len, pos;
	unsigned depth;
	const struct json_limits *lim;
	char *err;
	size_t errlen;
	bool failed;
};

static const struct json_limits json_default_limits = {
    JSON_INPUT_MAX, JSON_DEPTH_MAX, JSON_NODES_MAX};

static int json_value(struct json_parser *p, size_t *idx_out);

/* Record the first error with its offset; returns -1. */
static int
json_fail(struct json_parser *p, const char *what)
{
	if (!p->failed)
		str_fmt_cut(p->err, p->errlen, "JSON error at offset %zu: %s",
		    p->pos, what);
	p->failed = true;
	return -1;
}

static void
json_skip_ws(struct json_parser *p)
{
	while (p->pos < p->len &&
	       (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
		   p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
		p->pos++;
}

/* A new node of type t; its index in *idx_out. */
static int
json_node_new(struct json_parser *p, enum json_type t, size_t *idx_out)
{
	struct json_doc *d = p->d;

	if (d->n >= p->lim->nodes_max)
		return json_fail(p, "too many values");
	if (d->n == d->cap) {
		size_t ncap = d->cap ? d->cap * 2 : 16;
		struct json_node *nn;

		if (ncap > p->lim->nodes_max)
			ncap = p->lim->nodes_max;
		nn = realloc(d->nodes, ncap * sizeof(*nn));
		if (nn == NULL)
			return json_fail(p, "out of memory");
		d->nodes = nn;
		d->cap = ncap;
	}
	memset(&d->nodes[d->n], 0, sizeof(d->nodes[0]));
	d->nodes[d->n].type = t;
	*idx_out = d->n++;
	return 0;
}

/* ---- literals and numbers --------------------------------------------- */

static int
json_literal(
    struct json_parser *p, const char *word, enum json_type t, size_t *idx_out)
{
	size_t n = strlen(word);

	if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
		return json_fail(p, "unexpected character");
	p->pos += n;
	return json_node_new(p, t, idx_out);
}

static bool
json_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Skip digits; how many there were. */
static size_t
json_digits(struct json_parser *p)
{
	size_t start = p->pos;

	while (p->pos < p->len && json_is_digit(p->s[p->pos]))
		p->pos++;
	return p->pos - start;
}

/* The grammar of a number; *is_int: no fraction, no exponent. */
static int
json_number_syntax(struct json_parser *p, bool *is_int)
{
	if (p->pos < p->len && p->s[p->pos] == '-')
		p->pos++;
	if (p->pos < p->len && p->s[p->pos] == '0')
		p->pos++;
	else if (json_digits(p) == 0)
		return json_fail(p, "bad number");
	*is_int = true;
	if (p->pos < p->len && p->s[p->pos] == '.') {
		p->pos++;
		*is_int = false;
		if (json_digits(p) == 0)
			return json_fail(p, "bad number fraction");
	}
	if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
		p->pos++;
		*is_int = false;
		if (p->pos < p->len &&
		    (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
			p->pos++;
		if (json_digits(p) == 0)
			return json_fail(p, "bad number exponent");
	}
	return 0;
}

/* Decimal digits of s[0..n) (optionally "-") as an int64: 0, or -1. */
static int
json_to_i64(const char *s, size_t n, int64_t *out)
{
	bool neg = n > 0 && s[0] == '-';
	uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : INT64_MAX;
	size_t k;

	for (k = neg ? 1 : 0; k < n; k++) {
		unsigned dg = (unsigned)(s[k] - '0');

		if (v > (lim - dg) / 10)
			return -1;
		v = v * 10 + dg;
	}
	*out = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v)
		   : (int64_t)v;
	return 0;
}

static int
json_number(struct json_parser *p, size_t *idx_out)
{
	size_t start = p->pos, n;
	char tmp[JSON_NUMBER_MAX + 1];
	struct json_node *nd;
	bool is_int;

	if (json_number_syntax(p, &is_int) != 0)
		return -1;
	n = p->pos - start;
	if (n > JSON_NUMBER_MAX)
		return json_fail(p, "number too long");
	if (json_node_new(p, JSON_NUMBER, idx_out) != 0)
		return -1;
	nd = &p->d->nodes[*idx_out];
	memcpy(tmp, p->s + start, n);
	tmp[n] = '\0';
	nd->num = strtod(tmp, NULL);
	nd->is_int = is_int && json_to_i64(tmp, n, &nd->i) == 0;
	if (!isfinite(nd->num))
		return json_fail(p, "number out of range");
	return 0;
}

/* ---- strings ---------------------------------------------------------- */

static int
json_hex4(struct json_parser *p, size_t at, unsigned *out)
{
	unsigned v = 0;
	size_t k;

	if (p->len - at < 4)
		return json_fail(p, "short \\u escape");
	for (k = 0; k < 4; k++) {
		char c = p->s[at + k];

		v <<= 4;
		if (json_is_digit(c))
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return json_fail(p, "bad \\u escape");
	}
	*out = v;
	return 0;
}

/* Write code point cp as UTF-8 at s[*w]; at most 4 octets. */
static void
json_put_utf8(char *s, size_t *w, unsigned cp)
{
	if (cp < 0x80) {
		s[(*w)++] = (char)cp;
	} else if (cp < 0x800) {
		s[(*w)++] = (char)(0xc0 | (cp >> 6));
		s[(*w)++] = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		s[(*w)++] = (char)(0xe0 | (cp >> 12));
		s[(*w)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		s[(*w)++] = (char)(0x80 | (cp & 0x3f));
	} else {
		s[(*w)++] = (char)(0xf0 | (cp >> 18));
		s[(*w)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
		s[(*w)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		s[(*w)++] = (char)(0x80 | (cp & 0x3f));
	}
}

/* "\uXXXX" at p->pos (after the backslash and 'u'), pairs joined. */
static int
json_unicode(struct json_parser *p, size_t *w)
{
	unsigned cp, lo;

	if (json_hex4(p, p->pos, &cp) != 0)
		return -1;
	p->pos += 4;
	if (cp >= 0xdc00 && cp <= 0xdfff)
		return json_fail(p, "lone low surrogate");
	if (cp >= 0xd800 && cp <= 0xdbff) {
		if (p->len - p->pos < 6 || p->s[p->pos] != '\\' ||
		    p->s[p->pos + 1] != 'u')
			return json_fail(p, "lone high surrogate");
		if (json_hex4(p, p->pos + 2, &lo) != 0)
			return -1;
		if (lo < 0xdc00 || lo > 0xdfff)
			return json_fail(p, "lone high surrogate");
		p->pos += 6;
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
	}
	if (cp == 0)
		return json_fail(p, "\\u0000 in a string");
	json_put_utf8(p->s, w, cp);
	return 0;
}

/* One escape after the backslash at p->pos - 1. */
static int
json_escape(struct json_parser *p, size_t *w)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char *hit;
	char c;

	if (p->pos >= p->len)
		return json_fail(p, "unterminated string");
	c = p->s[p->pos++];
	if (c == 'u')
		return json_unicode(p, w);
	if (c == '\0' || (hit = strchr(from, c)) == NULL)
		return json_fail(p, "bad escape");
	p->s[(*w)++] = to[hit - from];
	return 0;
}

/*
 * The string at p->pos (its opening quote), decoded in place: *start_out
 * and *len_out describe it, NUL-terminated.
 */
static int
json_string_at(struct json_parser *p, size_t *start_out, size_t *len_out)
{
	size_t start = p->pos;
	size_t w = start; /* the writer starts at the opening quote */

	p->pos++;
	for (;;) {
		unsigned char c;

		if (p->pos >= p->len)
			return json_fail(p, "unterminated string");
		c = (unsigned char)p->s[p->pos++];
		if (c == '"')
			break;
		if (c < 0x20)
			return json_fail(p, "control character in a string");
		if (c != '\\')
			p->s[w++] = (char)c;
		else if (json_escape(p, &w) != 0)
			return -1;
	}
	p->s[w] = '\0';
	*start_out = start;
	*len_out = w - start;
	return 0;
}

static int
json_string(struct json_parser *p, size_t *idx_out)
{
	size_t start, n;

	if (json_string_at(p, &start, &n) != 0 ||
	    json_node_new(p, JSON_STRING, idx_out) != 0)
		return -1;
	p->d->nodes[*idx_out].str_i = start;
	p->d->nodes[*idx_out].len = n;
	return 0;
}

/* ---- arrays and objects ----------------------------------------------- */

/* Append child to parent's list; *last is the last child so far (0). */
static void
json_link(struct json_parser *p, size_t parent, size_t *last, size_t child)
{
	struct json_node *nodes = p->d->nodes;

	if (*last == 0)
		nodes[parent].child_i = child;
	else
		nodes[*last].next_i = child;
	*last = child;
	nodes[parent].len++;
}

/* After an element: ',' (1, go on), the closing char (0), or an error. */
static int
json_after_item(struct json_parser *p, char close)
{
	json_skip_ws(p);
	if (p->pos < p->len && p->s[p->pos] == ',') {
		p->pos++;
		return 1;
	}
	if (p->pos < p->len && p->s[p->pos] == close) {
		p->pos++;
		return 0;
	}
	return json_fail(
	    p, close == ']' ? "expected ',' or ']'" : "expected ',' or '}'");
}

/* Open a container: the node, depth checked, empty case handled (1). */
static int
json_open(struct json_parser *p, enum json_type t, char close, size_t *idx_out)
{
	if (p->depth >= p->lim->depth_max)
		return json_fail(p, "nested too deep");
	if (json_node_new(p, t, idx_out) != 0)
		return -1;
	p->pos++;
	json_skip_ws(p);
	if (p->pos < p->len && p->s[p->pos] == close) {
		p->pos++;
		return 1;
	}
	p->depth++;
	return 0;
}

static int
json_array(struct json_parser *p, size_t *idx_out)
{
	size_t self, last = 0, child;
	int r;

	if ((r = json_open(p, JSON_ARRAY, ']', &self)) != 0)
		return r < 0 ? -1 : (*idx_out = self, 0);
	do {
		if (json_value(p, &child) != 0)
			return -1;
		json_link(p, self, &last, child);
	} while ((r = json_after_item(p, ']')) == 1);
	p->depth--;
	*idx_out = self;
	return r;
}

/* One "key": value member of the object self. */
static int
json_member(struct json_parser *p, size_t self, size_t *last)
{
	size_t kstart, klen, child;

	json_skip_ws(p);
	if (p->pos >= p->len || p->s[p->pos] != '"')
		return json_fail(p, "expected a member name");
	if (json_string_at(p, &kstart, &klen) != 0)
		return -1;
	json_skip_ws(p);
	if (p->pos >= p->len || p->s[p->pos] != ':')
		return json_fail(p, "expected ':'");
	p->pos++;
	if (json_value(p, &child) != 0)
		return -1;
	p->d->nodes[child].key_i = kstart; /* > 0: inside an object */
	p->d->nodes[child].key_len = klen;
	json_link(p, self, last, child);
	return 0;
}

static int
json_object(struct json_parser *p, size_t *idx_out)
{
	size_t self, last = 0;
	int r;

	if ((r = json_open(p, JSON_OBJECT, '}', &self)) != 0)
		return r < 0 ? -1 : (*idx_out = self, 0);
	do {
		if (json_member(p, self, &last) != 0)
			return -1;
	} while ((r = json_after_item(p, '}')) == 1);
	p->depth--;
	*idx_out = self;
	return r;
}

static int
json_value(struct json_parser *p, size_t *idx_out)
{
	char c;

	json_skip_ws(p);
	if (p->pos >= p->len)
		return json_fail(p, "expected a value");
	c = p->s[p->pos];
	if (c == '{')
		return json_object(p, idx_out);
	if (c == '[')
		return json_array(p, idx_out);
	if (c == '"')
		return json_string(p, idx_out);
	if (c == '-' || json_is_digit(c))
		return json_number(p, idx_out);
	if (c == 't')
		return json_literal(p, "true", JSON_TRUE, idx_out);
	if (c == 'f')
		return json_literal(p, "false", JSON_FALSE, idx_out);
	if (c == 'n')
		return json_literal(p, "null", JSON_NULL, idx_out);
	return json_fail(p, "unexpected character");
}

/* ---- the document ----------------------------------------------------- */

/* Indices and text offsets become pointers, now that nothing moves. */
static void
json_fixup(struct json_doc *d)
{
	size_t k;

	for (k = 0; k < d->n; k++) {
		struct json_node *nd = &d->nodes[k];

		nd->child = nd->child_i ? &d->nodes[nd->child_i] : NULL;
		nd->next = nd->next_i ? &d->nodes[nd->next_i] : NULL;
		if (nd->type == JSON_STRING)
			nd->str = d->text + nd->str_i;
		nd->key = nd->key_i ? d->text + nd->key_i : NULL;
	}
}

struct json_doc *
json_parse(const char *in, size_t len, const struct json_limits *lim, char *err,
    size_t errlen)
{
	struct json_parser p = {0};
	struct json_doc *d;
	size_t root;

	p.lim = lim != NULL ? lim : &json_default_limits;
	p.err = err;
	p.errlen = errlen;
	if (len > p.lim->input_max) {
		(void)json_fail(&p, "document too big");
		return NULL;
	}
	if ((d = calloc(1, sizeof(*d))) == NULL ||
	    (d->text = malloc(len + 1)) == NULL) {
		free(d);
		(void)json_fail(&p, "out of memory");
		return NULL;
	}
	if (len > 0)
		memcpy(d->text, in, len);
	d->text[len] = '\0';
	p.d = d;
	p.s = d->text;
	p.len = len;
	if (json_value(&p, &root) == 0) {
		json_skip_ws(&p);
		if (p.pos != p.len)
			(void)json_fail(&p, "data after the value");
	}
	if (p.failed) {
		json_free(d);
		return NULL;
	}
	json_fixup(d);
	return d;
}

void
json_free(struct json_doc *d)
{
	if (d == NULL)
		return;
	free(d->nodes);
	free(d->text);
	free(d);
}

const struct json_node *
json_root(const struct json_doc *d)
{
	return d != NULL && d->n > 0 ? &d->nodes[0] : NULL;
}

const struct json_node *
json_get(const struct json_node *obj, const char *key)
{
	const struct json_node *m;
	size_t n = strlen(key);

	if (obj == NULL || obj->type != JSON_OBJECT)
		return NULL;
	for (m = obj->child; m != NULL; m = m->next)
		if (m->key_len == n && memcmp(m->key, key, n) == 0)
			return m;
	return NULL;
}

const char *
json_get_str(const struct json_node *obj, const char *key)
{
	const struct json_node *m = json_get(obj, key);

	return m != NULL && m->type == JSON_STRING ? m->str : NULL;
}

bool
json_get_int(const struct json_node *obj, const char *key, int64_t *out)
{
	const struct json_node *m = json_get(obj, key);

	if (m == NULL || m->type != JSON_NUMBER || !m->is_int)
		return false;
	*out = m->i;
	return true;
}

bool
json_get_bool(const struct json_node *obj, const char *key, bool *out)
{
	const struct json_node *m = json_get(obj, key);

	if (m == NULL || (m->type != JSON_TRUE && m->type != JSON_FALSE))
		return false;
	*out = m->type == JSON_TRUE;
	return true;
}
