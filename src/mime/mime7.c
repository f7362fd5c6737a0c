/*
 * mime7: the 7-bit form of a message for a peer without 8BITMIME
 * (RFC 6152 3).  See mime.h for what is changed and when it cannot be.
 *
 * Two steps.  mime_plan_7bit() walks the MIME tree once, recursively (at
 * most MIME_DEPTH_MAX deep) over ranges of the caller's bytes, and writes
 * the output as a list of segments: copy a range, copy it masked
 * (preamble, epilogue), encode a range as quoted-printable or base64, or
 * insert a fixed header line.  Every input octet belongs to exactly one
 * segment, except the replaced Content-Transfer-Encoding fields.  Then
 * mime_plan_read() plays the segments out in chunks; its state is the
 * segment, the offset in it and the output column, so it stops and
 * resumes anywhere.  The plan's size is known before anything is sent
 * (one counting pass), for SIZE= (RFC 1870).
 *
 * Structure (RFC 2046 5.1.1): a delimiter line is "--" boundary, then
 * "--" for the close delimiter, then blanks, at the start of a line; the
 * line break before it belongs to the delimiter.  A part ends at the next
 * delimiter of its own multipart, so an inner multipart that lacks its
 * close delimiter still ends at the outer one (as Python's email parser
 * reads it).  A part's header ends at its first empty line (addr_hdr_*).
 * A Content-Type that does not parse is text/plain (RFC 2045 5.2); in
 * multipart/digest the default is message/rfc822 (RFC 2046 5.1.5).
 *
 * Encodings: quoted-printable lines are at most 76 characters with the
 * soft break; CRLF in the input is a hard line break, a lone CR or LF is
 * encoded (=0D, =0A) so the decoded octets are the original ones; a blank
 * before a line break or at the end of the part is encoded (RFC 2045
 * 6.7 rule 3).  Base64 lines are 76 characters (57 input octets).
 *
 * Limits: MIME_PARTS_MAX entities, MIME_DEPTH_MAX levels, boundaries of
 * MIME_BOUNDARY_MAX octets; the work is linear in the input times the
 * depth (each level scans its own range for delimiters).
 */
#include "mime/mime.h"

#include <stdlib.h>
#include <string.h>

#include "addr/addr.h"
#include "mime/mime_int.h"

static const char *const lits[] = {
    "Content-Transfer-Encoding: quoted-printable\r\n",
    "Content-Transfer-Encoding: base64\r\n",
    "Content-Transfer-Encoding: 7bit\r\n",
    "MIME-Version: 1.0\r\n",
    "Content-Type: text/plain; charset=unknown-8bit\r\n",
};

static bool body_needs_encoding(const char *msg, size_t s, size_t e);

/* ---- the plan: segments ------------------------------------------------- */

static void
seg_add(struct mime_plan *p, enum seg_kind kind, size_t off, size_t len)
{
	struct mime_seg *last = p->nsegs > 0 ? &p->segs[p->nsegs - 1] : NULL;

	if (kind != SEG_LIT && len == 0)
		return;
	if (kind == SEG_MASK && !body_needs_encoding(p->msg, off, off + len))
		kind = SEG_COPY; /* a clean preamble is copied */
	/* adjacent copies are one segment: fewer segments, same output */
	if (kind == SEG_COPY && last != NULL && last->kind == SEG_COPY &&
	    last->off + last->len == off) {
		last->len += len;
		return;
	}
	if (p->nsegs == p->cap) {
		size_t ncap = p->cap == 0 ? 16 : p->cap * 2;
		struct mime_seg *n = xcalloc(ncap, sizeof(*n));

		if (p->nsegs > 0)
			memcpy(n, p->segs, p->nsegs * sizeof(*n));
		free(p->segs);
		p->segs = n;
		p->cap = ncap;
	}
	p->segs[p->nsegs].kind = kind;
	p->segs[p->nsegs].lit = LIT_CTE_QP;
	p->segs[p->nsegs].off = off;
	p->segs[p->nsegs].len = len;
	p->nsegs++;
	if (kind != SEG_COPY)
		p->flags |= MIME_F_CHANGED;
}

static void
seg_lit(struct mime_plan *p, enum lit_id lit)
{
	seg_add(p, SEG_LIT, 0, 0);
	p->segs[p->nsegs - 1].lit = lit;
}

static void
plan_fail(struct mime_plan *p, const char *why)
{
	if (!(p->flags & MIME_F_IMPOSSIBLE))
		p->why = why;
	p->flags |= MIME_F_IMPOSSIBLE;
}

/* ---- scanning ------------------------------------------------------------ */

bool
mime_has_8bit(const char *msg, size_t len)
{
	const uint64_t hi = 0x8080808080808080ull, lo = 0x0101010101010101ull;
	const unsigned char *s = (const unsigned char *)msg;
	size_t i = 0;

	/* eight octets at a time: every message to every peer is scanned */
	for (; i + 8 <= len; i += 8) {
		uint64_t v;

		memcpy(&v, s + i, 8);
		if ((v & hi) != 0 || ((v - lo) & ~v & hi) != 0)
			break; /* an octet >= 0x80, or a NUL: find it below */
	}
	for (; i < len; i++)
		if (s[i] >= 0x80 || s[i] == 0)
			return true;
	return false;
}

static bool
has_high(const char *msg, size_t len)
{
	const unsigned char *s = (const unsigned char *)msg;
	size_t i;

	for (i = 0; i < len; i++)
		if (s[i] >= 0x80)
			return true;
	return false;
}

/* Octets >= 0x80, NUL, or a line over MIME_LINE_MAX: not 7bit data. */
static bool
body_needs_encoding(const char *msg, size_t s, size_t e)
{
	size_t pos = s;

	if (mime_has_8bit(msg + s, e - s))
		return true;
	/* line by line (memchr): a CR right before the LF is the line end */
	while (pos < e) {
		const char *nl = memchr(msg + pos, '\n', e - pos);
		size_t end = nl != NULL ? (size_t)(nl - msg) : e;
		size_t n = end - pos;

		if (nl != NULL && n > 0 && msg[end - 1] == '\r')
			n--;
		if (n > MIME_LINE_MAX)
			return true;
		pos = end + 1;
	}
	return false;
}

/* ---- header fields: Content-Type, Content-Transfer-Encoding ------------- */

enum ctype { CT_TEXT, CT_MULTIPART, CT_RFC822, CT_MSG_7BIT, CT_OTHER };
enum cte { CTE_NONE, CTE_7BIT, CTE_8BIT, CTE_BINARY, CTE_ENCODED };

struct ent {
	size_t s, e;	 /* the entity: header and body */
	size_t hend, bs; /* header end (the empty line), body start */
	enum ctype type;
	bool digest; /* multipart/digest */
	bool has_ctype, has_version;
	enum cte cte;
	size_t cte_off, cte_len; /* the first CTE field, when cte != NONE */
	char boundary[MIME_BOUNDARY_MAX + 1];
	size_t blen; /* 0: none */
};

struct lex {
	const char *v;
	size_t n, i;
};

static void
lex_cfws(struct lex *l)
{
	unsigned depth = 0;

	for (; l->i < l->n; l->i++) {
		char c = l->v[l->i];

		if (depth > 0 && c == '\\') {
			l->i++;
		} else if (c == '(') {
			depth++;
		} else if (depth > 0 && c == ')') {
			depth--;
		} else if (depth == 0 && c != ' ' && c != '\t' && c != '\r' &&
			   c != '\n') {
			return;
		}
	}
}

/* RFC 2045 5.1 token: not a CTL, space or tspecial. */
static bool
lex_token_char(char c)
{
	return (unsigned char)c > 32 && (unsigned char)c < 127 &&
	       strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

static size_t
lex_token(struct lex *l, const char **out)
{
	size_t b;

	lex_cfws(l);
	b = l->i;
	while (l->i < l->n && lex_token_char(l->v[l->i]))
		l->i++;
	*out = l->v + b;
	return l->i - b;
}

static bool
lex_is(struct lex *l, char c)
{
	lex_cfws(l);
	if (l->i < l->n && l->v[l->i] == c) {
		l->i++;
		return true;
	}
	return false;
}

/* A parameter value, token or quoted-string, unquoted into out. */
static bool
lex_value(struct lex *l, char *out, size_t outlen, size_t *len_out)
{
	const char *t;
	size_t n = 0;

	lex_cfws(l);
	if (l->i >= l->n || l->v[l->i] != '"') {
		n = lex_token(l, &t);
		if (n == 0 || n >= outlen)
			return false;
		memcpy(out, t, n);
		*len_out = n;
		return true;
	}
	for (l->i++; l->i < l->n && l->v[l->i] != '"'; l->i++) {
		if (l->v[l->i] == '\\' && l->i + 1 < l->n)
			l->i++;
		if (l->v[l->i] == '\r' || l->v[l->i] == '\n')
			continue; /* a fold inside the quotes */
		if (n + 1 >= outlen)
			return false;
		out[n++] = l->v[l->i];
	}
	if (l->i >= l->n)
		return false;
	l->i++;
	*len_out = n;
	return true;
}

static void
ctype_params(struct ent *en, struct lex *l)
{
	char val[MIME_BOUNDARY_MAX + 1];
	const char *attr;
	size_t alen, vlen;

	while (lex_is(l, ';')) {
		alen = lex_token(l, &attr);
		if (alen == 0 || !lex_is(l, '='))
			return;
		if (!lex_value(l, val, sizeof(val), &vlen))
			return;
		if (!str_case_eq(attr, alen, "boundary") || en->blen > 0)
			continue;
		/* trailing blanks are not part of it (as mail readers read it)
		 */
		while (
		    vlen > 0 && (val[vlen - 1] == ' ' || val[vlen - 1] == '\t'))
			vlen--;
		memcpy(en->boundary, val, vlen);
		en->blen = vlen;
	}
}

static void
ctype_parse(struct ent *en, const char *v, size_t n)
{
	struct lex l = {v, n, 0};
	const char *t, *st;
	size_t tl, stl;

	tl = lex_token(&l, &t);
	if (tl == 0 || !lex_is(&l, '/') || (stl = lex_token(&l, &st)) == 0)
		return; /* RFC 2045 5.2: as if text/plain */
	if (str_case_eq(t, tl, "text")) {
		en->type = CT_TEXT;
	} else if (str_case_eq(t, tl, "multipart")) {
		en->type = CT_MULTIPART;
		en->digest = str_case_eq(st, stl, "digest");
		ctype_params(en, &l);
	} else if (str_case_eq(t, tl, "message")) {
		en->type = str_case_eq(st, stl, "rfc822") ? CT_RFC822
			   : str_case_eq(st, stl, "partial") ||
				   str_case_eq(st, stl, "external-body")
			       ? CT_MSG_7BIT
			       : CT_OTHER;
	} else {
		en->type = CT_OTHER;
	}
}

static enum cte
cte_parse(const char *v, size_t n)
{
	struct lex l = {v, n, 0};
	const char *t;
	size_t tl = lex_token(&l, &t);

	if (str_case_eq(t, tl, "7bit"))
		return CTE_7BIT;
	if (str_case_eq(t, tl, "8bit"))
		return CTE_8BIT;
	if (str_case_eq(t, tl, "binary"))
		return CTE_BINARY;
	return CTE_ENCODED; /* quoted-printable, base64, x-..., garbage */
}

/* The header of msg[s..e): where it ends, and the fields that matter. */
static void
ent_header(struct mime_plan *p, struct ent *en, bool digest_child)
{
	struct addr_hdr_scan sc;
	struct addr_hdr_field f;
	size_t hlen = addr_hdr_end(p->msg + en->s, en->e - en->s, &en->bs);

	en->hend = en->s + hlen;
	en->bs += en->s;
	en->type = digest_child ? CT_RFC822 : CT_TEXT;
	if (has_high(p->msg + en->s, hlen))
		p->flags |= MIME_F_HDR_8BIT;
	if (memchr(p->msg + en->s, '\0', hlen) != NULL)
		plan_fail(p, "a NUL octet in a header field");
	addr_hdr_scan_init(&sc, p->msg + en->s, en->e - en->s);
	while (addr_hdr_next(&sc, &f)) {
		if (addr_hdr_name_is(&f, "Content-Type") && !en->has_ctype) {
			en->has_ctype = true;
			ctype_parse(en, f.value, f.value_len);
		} else if (addr_hdr_name_is(&f, "Content-Transfer-Encoding") &&
			   en->cte == CTE_NONE) {
			en->cte = cte_parse(f.value, f.value_len);
			en->cte_off = en->s + f.off;
			en->cte_len = f.raw_len;
		} else if (addr_hdr_name_is(&f, "MIME-Version")) {
			en->has_version = true;
		}
	}
}

/* ---- planning ------------------------------------------------------------ */

struct planner {
	struct mime_plan *p;
	unsigned parts;
};

static void plan_entity(struct planner *pl, size_t s, size_t e, unsigned depth,
    bool digest_child, bool is_message);

/*
 * The header of en, with its Content-Transfer-Encoding replaced by cte
 * (added at the end when there is none), and the empty line after it.
 * A message that is not MIME gets MIME-Version (and Content-Type) first
 * when its body is encoded (RFC 1428).
 */
static void
plan_header(struct planner *pl, const struct ent *en, int cte, bool label)
{
	struct mime_plan *p = pl->p;

	if (cte < 0) {
		seg_add(p, SEG_COPY, en->s, en->bs - en->s);
		return;
	}
	if (en->cte != CTE_NONE) {
		seg_add(p, SEG_COPY, en->s, en->cte_off - en->s);
		seg_lit(p, (enum lit_id)cte);
		seg_add(p, SEG_COPY, en->cte_off + en->cte_len,
		    en->hend - (en->cte_off + en->cte_len));
	} else {
		seg_add(p, SEG_COPY, en->s, en->hend - en->s);
		seg_lit(p, (enum lit_id)cte);
	}
	if (label && !en->has_version)
		seg_lit(p, LIT_MIME_VERSION);
	if (label && !en->has_ctype)
		seg_lit(p, LIT_CTYPE_UNKNOWN);
	seg_add(p, SEG_COPY, en->hend, en->bs - en->hend);
}

/* 8bit / binary relabelled 7bit; anything else left alone (-1). */
static int
relabel_7bit(const struct ent *en)
{
	return en->cte == CTE_8BIT || en->cte == CTE_BINARY ? (int)LIT_CTE_7BIT
							    : -1;
}

static void
plan_leaf(struct planner *pl, const struct ent *en, bool is_message)
{
	struct mime_plan *p = pl->p;
	bool header_only = en->bs == en->hend;

	if (header_only || !body_needs_encoding(p->msg, en->bs, en->e)) {
		plan_header(pl, en, relabel_7bit(en), false);
		seg_add(p, SEG_COPY, en->bs, en->e - en->bs);
		return;
	}
	if (en->cte == CTE_ENCODED)
		plan_fail(
		    p, "8-bit octets in a part labelled with an encoding");
	else if (en->type == CT_MULTIPART)
		plan_fail(p, "8-bit octets in a multipart without a usable "
			     "boundary or nested too deep");
	else if (en->type == CT_RFC822)
		plan_fail(p, "8-bit octets in a message nested too deep");
	else if (en->type == CT_MSG_7BIT)
		plan_fail(p, "8-bit octets in message/partial or "
			     "message/external-body");
	if (p->flags & MIME_F_IMPOSSIBLE) {
		seg_add(p, SEG_COPY, en->s, en->e - en->s);
		return;
	}
	plan_header(
	    pl, en, en->type == CT_TEXT ? LIT_CTE_QP : LIT_CTE_B64, is_message);
	seg_add(
	    p, en->type == CT_TEXT ? SEG_QP : SEG_B64, en->bs, en->e - en->bs);
	p->flags |= MIME_F_ENCODED;
}

/* Is msg[i..e) a delimiter line of b?  *close_out: the close delimiter. */
static bool
delim_at(
    const char *m, size_t i, size_t e, const struct ent *en, bool *close_out)
{
	size_t n = en->blen;

	if (e - i < n + 2 || m[i] != '-' || m[i + 1] != '-' ||
	    memcmp(m + i + 2, en->boundary, n) != 0)
		return false;
	i += n + 2;
	*close_out = e - i >= 2 && m[i] == '-' && m[i + 1] == '-';
	if (*close_out)
		i += 2;
	while (i < e && (m[i] == ' ' || m[i] == '\t'))
		i++;
	return i == e || m[i] == '\n' ||
	       (m[i] == '\r' && i + 1 < e && m[i + 1] == '\n') ||
	       (m[i] == '\r' && i + 1 == e);
}

/* The next delimiter line at or after pos in [pos, e): its start, or e. */
static size_t
delim_next(const char *m, size_t pos, size_t e, const struct ent *en,
    bool *close_out, size_t *line_end_out)
{
	while (pos < e) {
		const char *nl = memchr(m + pos, '\n', e - pos);
		size_t next = nl != NULL ? (size_t)(nl - m) + 1 : e;

		if (delim_at(m, pos, next, en, close_out)) {
			*line_end_out = next;
			return pos;
		}
		pos = next;
	}
	return e;
}

/* The line break before a delimiter belongs to it (RFC 2046 5.1.1). */
static size_t
part_end(const char *m, size_t start, size_t delim)
{
	if (delim >= start + 2 && m[delim - 2] == '\r' && m[delim - 1] == '\n')
		return delim - 2;
	if (delim >= start + 1 && m[delim - 1] == '\n')
		return delim - 1;
	return delim;
}

static void
plan_multipart(struct planner *pl, const struct ent *en, unsigned depth)
{
	struct mime_plan *p = pl->p;
	const char *m = p->msg;
	size_t d, le, pos, pe;
	bool close = false;

	d = delim_next(m, en->bs, en->e, en, &close, &le);
	if (d == en->e) {
		/* no delimiter at all: nothing here is a part */
		if (body_needs_encoding(m, en->bs, en->e))
			plan_fail(p, "8-bit octets in a multipart without its "
				     "boundary");
		seg_add(p, SEG_COPY, en->bs, en->e - en->bs);
		return;
	}
	seg_add(p, SEG_MASK, en->bs, part_end(m, en->bs, d) - en->bs);
	pos = en->bs;
	for (;;) {
		size_t de = part_end(m, pos, d);

		seg_add(p, SEG_COPY, de, le - de); /* line break, delimiter */
		if (close)
			break;
		pos = le;
		d = delim_next(m, pos, en->e, en, &close, &le);
		pe = d == en->e ? en->e : part_end(m, pos, d);
		plan_entity(pl, pos, pe, depth + 1, en->digest, false);
		if (d == en->e)
			return; /* no close delimiter: the last part ran on */
	}
	seg_add(p, SEG_MASK, le, en->e - le);
}

static void
plan_entity(struct planner *pl, size_t s, size_t e, unsigned depth,
    bool digest_child, bool is_message)
{
	struct ent en;
	bool deep = depth >= MIME_DEPTH_MAX;

	if (++pl->parts > MIME_PARTS_MAX) {
		if (pl->parts == MIME_PARTS_MAX + 1)
			plan_fail(pl->p, "more than 10000 MIME parts");
		seg_add(pl->p, SEG_COPY, s, e - s);
		return;
	}
	memset(&en, 0, sizeof(en));
	en.s = s;
	en.e = e;
	ent_header(pl->p, &en, digest_child);
	if (en.cte == CTE_ENCODED || deep || en.bs == en.hend ||
	    (en.type == CT_MULTIPART && en.blen == 0) ||
	    (en.type != CT_MULTIPART && en.type != CT_RFC822)) {
		plan_leaf(pl, &en, is_message);
		return;
	}
	/* a composite: its content cannot be encoded, its parts can */
	plan_header(pl, &en, relabel_7bit(&en), false);
	if (en.type == CT_MULTIPART)
		plan_multipart(pl, &en, depth);
	else
		plan_entity(pl, en.bs, en.e, depth + 1, false, true);
}

void
mime_plan_rewind(struct mime_plan *p)
{
	p->seg = p->pos = 0;
	p->col = 0;
}

void
mime_plan_free(struct mime_plan *p)
{
	if (p == NULL)
		return;
	free(p->segs);
	memset(p, 0, sizeof(*p));
}

/* ---- reading ------------------------------------------------------------- */

/* Output of one read: to out through a small staging area, or counted. */
struct emit {
	struct buf *out; /* NULL: count only */
	uint64_t n;	 /* octets produced by this call */
	bool err;
	size_t tl;
	char tmp[1024];
};

static void
em_flush(struct emit *em)
{
	if (em->out != NULL && em->tl > 0 &&
	    buf_append(em->out, em->tmp, em->tl) != 0)
		em->err = true;
	em->tl = 0;
}

static void
em_put(struct emit *em, const char *s, size_t n)
{
	em->n += n;
	if (em->out == NULL)
		return;
	if (n > sizeof(em->tmp) - em->tl) {
		em_flush(em);
		if (n > sizeof(em->tmp)) {
			if (buf_append(em->out, s, n) != 0)
				em->err = true;
			return;
		}
	}
	memcpy(em->tmp + em->tl, s, n);
	em->tl += n;
}

static void
em_byte(struct emit *em, char c)
{
	em_put(em, &c, 1);
}

static bool
read_copy(struct mime_plan *p, const struct mime_seg *sg, struct emit *em,
    uint64_t max)
{
	size_t n = sg->len - p->pos;

	if (n > max - em->n)
		n = (size_t)(max - em->n);
	em_put(em, p->msg + sg->off + p->pos, n);
	p->pos += n;
	return p->pos == sg->len;
}

/* Preamble and epilogue: 8-bit and NUL become '?', lines are cut. */
static bool
read_mask(struct mime_plan *p, const struct mime_seg *sg, struct emit *em,
    uint64_t max)
{
	const unsigned char *m = (const unsigned char *)p->msg + sg->off;

	for (; p->pos < sg->len && em->n < max; p->pos++) {
		unsigned char c = m[p->pos];

		if (c == '\r' || c == '\n') {
			em_byte(em, (char)c);
			p->col = 0;
			continue;
		}
		if (p->col >= MIME_LINE_MAX) {
			em_put(em, "\r\n", 2);
			p->col = 0;
		}
		em_byte(em, c >= 0x80 || c == 0 ? '?' : (char)c);
		p->col++;
	}
	return p->pos == sg->len;
}

/* Is m[i] a blank that would end a line (RFC 2045 6.7 rule 3)? */
static bool
qp_trailing(const unsigned char *m, size_t i, size_t len)
{
	return i + 1 == len ||
	       (i + 2 < len && m[i + 1] == '\r' && m[i + 2] == '\n');
}

/* Does m[i] go as itself (else as =XX)? */
static bool
qp_literal(const unsigned char *m, size_t i, size_t len)
{
	unsigned char c = m[i];

	return (c >= 33 && c <= 126 && c != '=') ||
	       ((c == ' ' || c == '\t') && !qp_trailing(m, i, len));
}

/* Octets read_qp() writes for m[0..len): the same walk, only counted. */
static uint64_t
qp_size(const unsigned char *m, size_t len)
{
	uint64_t n = 0;
	unsigned col = 0, w;
	size_t i = 0;

	while (i < len) {
		if (m[i] == '\r' && i + 1 < len && m[i + 1] == '\n') {
			n += 2;
			col = 0;
			i += 2;
			continue;
		}
		w = qp_literal(m, i, len) ? 1 : 3;
		if (col + w > 75) {
			n += 3;
			col = 0;
		}
		n += w;
		col += w;
		i++;
	}
	return n;
}

/* Octets read_b64() writes for len input octets: 76 + CRLF a line. */
static uint64_t
b64_size(size_t len)
{
	size_t r = len % 57;

	return (uint64_t)(len / 57) * 78 + (r > 0 ? (r + 2) / 3 * 4 + 2 : 0);
}

static bool
read_qp(struct mime_plan *p, const struct mime_seg *sg, struct emit *em,
    uint64_t max)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *m = (const unsigned char *)p->msg + sg->off;
	char tok[3];
	size_t w;

	while (p->pos < sg->len && em->n < max) {
		unsigned char c = m[p->pos];

		if (c == '\r' && p->pos + 1 < sg->len &&
		    m[p->pos + 1] == '\n') {
			em_put(em, "\r\n", 2); /* a hard line break */
			p->col = 0;
			p->pos += 2;
			continue;
		}
		if (qp_literal(m, p->pos, sg->len)) {
			tok[0] = (char)c;
			w = 1;
		} else {
			tok[0] = '=';
			tok[1] = hex[c >> 4];
			tok[2] = hex[c & 15];
			w = 3;
		}
		/* 76 characters at most, the soft break's '=' included */
		if (p->col + w > 75) {
			em_put(em, "=\r\n", 3);
			p->col = 0;
		}
		em_put(em, tok, w);
		p->col += (unsigned)w;
		p->pos++;
	}
	return p->pos == sg->len;
}

static bool
read_b64(struct mime_plan *p, const struct mime_seg *sg, struct emit *em,
    uint64_t max)
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *m = (const unsigned char *)p->msg + sg->off;
	char line[80];

	while (p->pos < sg->len && em->n < max) {
		size_t n = sg->len - p->pos, i, o = 0;

		if (n > 57)
			n = 57; /* 76 characters a line */
		for (i = 0; i < n; i += 3) {
			unsigned v = (unsigned)m[p->pos + i] << 16;
			size_t k = n - i;

			if (k > 1)
				v |= (unsigned)m[p->pos + i + 1] << 8;
			if (k > 2)
				v |= m[p->pos + i + 2];
			line[o++] = b64[(v >> 18) & 63];
			line[o++] = b64[(v >> 12) & 63];
			line[o++] = k > 1 ? b64[(v >> 6) & 63] : '=';
			line[o++] = k > 2 ? b64[v & 63] : '=';
		}
		line[o++] = '\r';
		line[o++] = '\n';
		em_put(em, line, o);
		p->pos += n;
	}
	return p->pos == sg->len;
}

static void
read_segs(struct mime_plan *p, struct emit *em, uint64_t max)
{
	while (p->seg < p->nsegs && em->n < max && !em->err) {
		const struct mime_seg *sg = &p->segs[p->seg];
		bool done = true;

		switch (sg->kind) {
		case SEG_COPY:
			done = read_copy(p, sg, em, max);
			break;
		case SEG_MASK:
			done = read_mask(p, sg, em, max);
			break;
		case SEG_QP:
			done = read_qp(p, sg, em, max);
			break;
		case SEG_B64:
			done = read_b64(p, sg, em, max);
			break;
		case SEG_LIT:
			em_put(em, lits[sg->lit], strlen(lits[sg->lit]));
			break;
		}
		if (done) {
			p->seg++;
			p->pos = 0;
			p->col = 0;
		}
	}
}

int
mime_plan_read(struct mime_plan *p, struct buf *out, size_t max)
{
	struct emit em;

	em.out = out;
	em.n = 0;
	em.err = false;
	em.tl = 0;
	read_segs(p, &em, max > 0 ? max : 1);
	em_flush(&em);
	if (em.err)
		return -1;
	return p->seg == p->nsegs ? 1 : 0;
}

/*
 * The output's size, for SIZE= before anything is sent: copies and
 * base64 by arithmetic, quoted-printable by a counting walk (no output),
 * a masked preamble by reading it (rare and short).
 */
static uint64_t
plan_size(struct mime_plan *p)
{
	struct emit em;
	uint64_t n = 0;
	size_t i;

	for (i = 0; i < p->nsegs; i++) {
		const struct mime_seg *sg = &p->segs[i];
		const unsigned char *m =
		    (const unsigned char *)p->msg + sg->off;

		switch (sg->kind) {
		case SEG_COPY:
			n += sg->len;
			break;
		case SEG_LIT:
			n += strlen(lits[sg->lit]);
			break;
		case SEG_QP:
			n += qp_size(m, sg->len);
			break;
		case SEG_B64:
			n += b64_size(sg->len);
			break;
		case SEG_MASK:
			memset(&em, 0, sizeof(em));
			p->pos = 0;
			p->col = 0;
			(void)read_mask(p, sg, &em, UINT64_MAX);
			n += em.n;
			break;
		}
	}
	mime_plan_rewind(p);
	return n;
}

void
mime_plan_7bit(struct mime_plan *p, const char *msg, size_t len)
{
	struct planner pl;

	memset(p, 0, sizeof(*p));
	p->msg = msg;
	p->len = len;
	pl.p = p;
	pl.parts = 0;
	plan_entity(&pl, 0, len, 0, false, true);
	p->out_size = plan_size(p);
}
