/*
 * dkim_canon: the message index, the simple and relaxed canonicalisations
 * of RFC 6376 3.4, and the two hash inputs of 3.7.
 *
 * Lines end at LF; a CR before it belongs to the line end, so a message
 * with bare LFs canonicalises as if it had CRLFs (what it would have been
 * on the wire).  The body is canonicalised as a stream into the hash, so
 * it is never copied: empty lines are counted and written only when a
 * line with content follows (3.4.3, 3.4.4: empty lines at the end are
 * dropped), and l= is a cut on the octets going into the hash.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "mailauth/dkim_int.h"

static bool
cn_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* ---- the message index ------------------------------------------------------
 */

/* The end of the line starting at i (after its LF, or len). */
static size_t
cn_line_end(const char *p, size_t len, size_t i)
{
	const char *nl = memchr(p + i, '\n', len - i);

	return nl ? (size_t)(nl - p) + 1 : len;
}

/* A line holding only its line end: the end of the header section. */
static bool
cn_empty_line(const char *p, size_t i, size_t e)
{
	return (e - i == 1 && p[i] == '\n') ||
	       (e - i == 2 && p[i] == '\r' && p[i + 1] == '\n');
}

static size_t
cn_name_len(const char *p, size_t off, size_t len)
{
	const char *colon = memchr(p + off, ':', len);
	size_t n;

	if (colon == NULL)
		return 0;
	n = (size_t)(colon - (p + off));
	while (n > 0 && cn_wsp(p[off + n - 1]))
		n--;
	return n;
}

void
dkim_msg_index(struct dkim_msg *m, const char *p, size_t len)
{
	size_t i = 0, e;

	m->p = p;
	m->len = len;
	m->n = 0;
	m->overflow = false;
	m->body_off = len;
	while (i < len) {
		e = cn_line_end(p, len, i);
		if (cn_empty_line(p, i, e)) {
			m->body_off = e;
			break;
		}
		if (cn_wsp(p[i]) && m->n > 0) {
			/* a continuation line belongs to the field above */
			m->f[m->n - 1].len = e - m->f[m->n - 1].off;
		} else if (m->n == DKIM_FIELDS_MAX) {
			m->overflow = true;
		} else {
			m->f[m->n].off = i;
			m->f[m->n].len = e - i;
			m->f[m->n].name_len = 0;
			m->n++;
		}
		i = e;
	}
	for (i = 0; i < m->n; i++) {
		m->f[i].name_len = cn_name_len(p, m->f[i].off, m->f[i].len);
		/* a name must not start with WSP (a nameless first line) */
		if (cn_wsp(p[m->f[i].off]))
			m->f[i].name_len = 0;
	}
}

bool
dkim_field_is(
    const struct dkim_msg *m, size_t k, const char *name, size_t name_len)
{
	const char *f = m->p + m->f[k].off;
	size_t j;

	if (m->f[k].name_len != name_len || name_len == 0)
		return false;
	for (j = 0; j < name_len; j++) {
		char a = f[j], b = name[j];

		if (a >= 'A' && a <= 'Z')
			a = (char)(a - 'A' + 'a');
		if (b >= 'A' && b <= 'Z')
			b = (char)(b - 'A' + 'a');
		if (a != b)
			return false;
	}
	return true;
}

/* ---- header fields (3.4.1, 3.4.2) ------------------------------------------
 */

/* relaxed: lower-case name, unfolded, WSP runs as one SP, none at the
 * ends of the value or around the colon. */
static int
cn_relaxed_header(const char *f, size_t len, struct buf *out)
{
	const char *colon = memchr(f, ':', len);
	size_t nl = colon ? (size_t)(colon - f) : len, k;
	bool space = false, any = false;

	while (nl > 0 && cn_wsp(f[nl - 1]))
		nl--;
	for (k = 0; k < nl; k++) {
		char c = f[k];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (buf_append(out, &c, 1) != 0)
			return -1;
	}
	if (buf_append(out, ":", 1) != 0)
		return -1;
	for (k = colon ? (size_t)(colon - f) + 1 : len; k < len; k++) {
		char c = f[k];

		if (c == '\r' || c == '\n')
			continue;
		if (cn_wsp(c)) {
			space = any;
			continue;
		}
		if (space && buf_append(out, " ", 1) != 0)
			return -1;
		space = false;
		any = true;
		if (buf_append(out, &c, 1) != 0)
			return -1;
	}
	return buf_append(out, "\r\n", 2);
}

/* simple: the field as it is, its lines ending in CRLF. */
static int
cn_simple_header(const char *f, size_t len, struct buf *out)
{
	size_t k, s = 0;

	for (k = 0; k < len; k++) {
		if (f[k] != '\n')
			continue;
		if (buf_append(
			out, f + s, k - s - (k > s && f[k - 1] == '\r')) != 0 ||
		    buf_append(out, "\r\n", 2) != 0)
			return -1;
		s = k + 1;
	}
	if (s < len)
		return buf_append(out, f + s, len - s) != 0 ||
		       buf_append(out, "\r\n", 2);
	return 0;
}

int
dkim_canon_header(
    enum dkim_canon c, const char *field, size_t len, struct buf *out)
{
	if (c == DKIM_CANON_RELAXED)
		return cn_relaxed_header(field, len, out);
	return cn_simple_header(field, len, out);
}

int
dkim_header_input(const struct dkim_msg *m, enum dkim_canon c,
    const char *const *names, const size_t *names_len, size_t n,
    const char *sig_field, size_t sig_len, struct buf *out)
{
	bool used[DKIM_FIELDS_MAX];
	size_t k, j;

	memset(used, 0, sizeof(used));
	for (k = 0; k < n; k++) {
		/* 5.4.2: each repeat of a name takes the next one up */
		for (j = m->n; j-- > 0;)
			if (!used[j] &&
			    dkim_field_is(m, j, names[k], names_len[k]))
				break;
		if (j == (size_t)-1)
			continue; /* none left: contributes nothing (5.4) */
		used[j] = true;
		if (dkim_canon_header(
			c, m->p + m->f[j].off, m->f[j].len, out) != 0)
			return -1;
	}
	return dkim_header_input_self(c, sig_field, sig_len, out);
}

int
dkim_header_input_self(
    enum dkim_canon c, const char *sig_field, size_t sig_len, struct buf *out)
{
	if (dkim_canon_header(c, sig_field, sig_len, out) != 0)
		return -1;
	/* 3.7: the signature's own field goes in without its CRLF */
	out->len -= 2;
	out->data[out->len] = '\0';
	return 0;
}

int
dkim_strip_b(const char *field, size_t len, struct buf *out)
{
	const char *colon = memchr(field, ':', len);
	size_t i, start, name_s;

	if (colon == NULL)
		return -1;
	i = (size_t)(colon - field) + 1;
	while (i < len) {
		start = i;
		while (i < len && (cn_wsp(field[i]) || field[i] == '\r' ||
				      field[i] == '\n'))
			i++;
		name_s = i;
		while (i < len && field[i] != '=' && field[i] != ';')
			i++;
		/* the tag name, up to optional FWS before '=' */
		size_t ne = i;
		while (ne > name_s &&
		       (cn_wsp(field[ne - 1]) || field[ne - 1] == '\r' ||
			   field[ne - 1] == '\n'))
			ne--;
		if (i < len && field[i] == '=' && ne - name_s == 1 &&
		    field[name_s] == 'b') {
			size_t end = i + 1;

			while (end < len && field[end] != ';')
				end++;
			/* keep the field's last line end, if the value ran
			 * to it */
			if (end == len) {
				while (
				    end > i + 1 && (field[end - 1] == '\r' ||
						       field[end - 1] == '\n'))
					end--;
			}
			return buf_append(out, field, i + 1) != 0 ||
			       buf_append(out, field + end, len - end);
		}
		(void)start;
		while (i < len && field[i] != ';')
			i++;
		if (i < len)
			i++;
	}
	return -1; /* no b= tag: the parser has refused it already */
}

/* ---- the body (3.4.3, 3.4.4) ------------------------------------------------
 */

struct cn_sink {
	EVP_MD_CTX *md; /* NULL: into buf instead */
	struct buf *buf;
	bool limit;
	uint64_t left;	/* octets still to hash under l= */
	uint64_t total; /* canonical octets, all of them */
	uint64_t crlfs; /* empty lines waiting for content */
	int err;
};

static void
cn_put(struct cn_sink *s, const char *p, size_t n)
{
	size_t take = n;

	s->total += n;
	if (s->limit) {
		if (s->left < take)
			take = (size_t)s->left;
		s->left -= take;
	}
	if (take == 0 || s->err)
		return;
	if (s->md != NULL)
		s->err = EVP_DigestUpdate(s->md, p, take) != 1;
	else
		s->err = buf_append(s->buf, p, take) != 0;
}

static void
cn_flush_crlfs(struct cn_sink *s)
{
	for (; s->crlfs > 0 && !s->err; s->crlfs--)
		cn_put(s, "\r\n", 2);
}

/* One body line, without its line end, relaxed: WSP runs as one SP,
 * none at the end. */
static void
cn_relaxed_line(struct cn_sink *s, const char *p, size_t n)
{
	size_t k = 0, run;

	while (n > 0 && cn_wsp(p[n - 1]))
		n--;
	if (n == 0) {
		s->crlfs++;
		return;
	}
	cn_flush_crlfs(s);
	while (k < n) {
		for (run = k; run < n && !cn_wsp(p[run]); run++)
			;
		cn_put(s, p + k, run - k);
		if (run == n)
			break;
		cn_put(s, " ", 1);
		for (k = run; k < n && cn_wsp(p[k]); k++)
			;
	}
	cn_put(s, "\r\n", 2);
}

static void
cn_body(struct cn_sink *s, enum dkim_canon c, const char *p, size_t len)
{
	size_t i = 0, e, n;

	while (i < len) {
		const char *nl = memchr(p + i, '\n', len - i);

		e = nl ? (size_t)(nl - p) : len;
		n = e - i;
		if (nl != NULL && n > 0 && p[e - 1] == '\r')
			n--;
		if (c == DKIM_CANON_RELAXED)
			cn_relaxed_line(s, p + i, n);
		else if (n == 0)
			s->crlfs++;
		else {
			cn_flush_crlfs(s);
			cn_put(s, p + i, n);
			cn_put(s, "\r\n", 2);
		}
		i = nl ? e + 1 : len;
	}
	/* 3.4.3: an empty body is one CRLF in simple; relaxed leaves it
	 * empty (RFC 6376 errata 3192 and what everyone does) */
	if (c == DKIM_CANON_SIMPLE && s->total == 0)
		cn_put(s, "\r\n", 2);
}

int
dkim_canon_body(
    enum dkim_canon c, const char *body, size_t len, struct buf *out)
{
	struct cn_sink s;

	memset(&s, 0, sizeof(s));
	s.buf = out;
	cn_body(&s, c, body, len);
	return s.err ? -1 : 0;
}

int
dkim_body_hash(const struct dkim_msg *m, enum dkim_canon c, const EVP_MD *md,
    bool limit, uint64_t l, unsigned char *out, unsigned *out_len,
    uint64_t *canon_len_out)
{
	struct cn_sink s;
	int rc = -1;

	memset(&s, 0, sizeof(s));
	s.limit = limit;
	s.left = l;
	if ((s.md = EVP_MD_CTX_new()) == NULL)
		return -1;
	if (EVP_DigestInit_ex(s.md, md, NULL) == 1) {
		cn_body(&s, c, m->p + m->body_off, m->len - m->body_off);
		if (!s.err && EVP_DigestFinal_ex(s.md, out, out_len) == 1)
			rc = 0;
	}
	EVP_MD_CTX_free(s.md);
	*canon_len_out = s.total;
	return rc;
}
