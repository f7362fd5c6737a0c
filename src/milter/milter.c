/*
 * milter.c: the milter protocol codec (milter.h, docs/milter.md).
 *
 * Written from the protocol's description (libmilter's mfdef.h constants
 * and the packet layouts an MTA and a filter exchange), not from another
 * implementation's code.
 */
#include <stdlib.h>
#include <string.h>

#include "milter/milter.h"

/* ---- encoding ----------------------------------------------------------- */

static void
put32(uint8_t out[4], uint32_t v)
{
	out[0] = (uint8_t)(v >> 24);
	out[1] = (uint8_t)(v >> 16);
	out[2] = (uint8_t)(v >> 8);
	out[3] = (uint8_t)v;
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/*
 * A packet is built in place: its header first with a length of 0, the
 * data appended, the length patched at the end.  On failure b->len goes
 * back to where it was, so a half packet is never left in b.
 */
struct pkt {
	struct buf *b;
	size_t start;
	int failed;
};

static void
pkt_begin(struct pkt *k, struct buf *b, char cmd)
{
	uint8_t h[5] = {0, 0, 0, 0, (uint8_t)cmd};

	k->b = b;
	k->start = b->len;
	k->failed = buf_append(b, h, sizeof(h));
}

static void
pkt_add(struct pkt *k, const void *p, size_t n)
{
	if (k->failed == 0)
		k->failed = buf_append(k->b, p, n);
}

/* a string with its NUL; strings holding a NUL cannot be sent */
static void
pkt_str(struct pkt *k, const char *s, size_t n)
{
	if (memchr(s, '\0', n) != NULL)
		k->failed = -1;
	pkt_add(k, s, n);
	pkt_add(k, "", 1);
}

static void
pkt_u32(struct pkt *k, uint32_t v)
{
	uint8_t o[4];

	put32(o, v);
	pkt_add(k, o, sizeof(o));
}

static int
pkt_end(struct pkt *k)
{
	size_t n = k->b->len - k->start - 4;

	if (k->failed != 0 || n > UINT32_MAX) {
		if (k->b->len > k->start)
			k->b->len = k->start;
		if (k->b->data != NULL)
			k->b->data[k->b->len] = '\0';
		return -1;
	}
	put32((uint8_t *)k->b->data + k->start, (uint32_t)n);
	return 0;
}

int
milter_enc_optneg(struct buf *b, uint32_t actions, uint32_t protocol)
{
	struct pkt k;

	pkt_begin(&k, b, MILTER_C_OPTNEG);
	pkt_u32(&k, MILTER_VERSION);
	pkt_u32(&k, actions);
	pkt_u32(&k, protocol);
	return pkt_end(&k);
}

int
milter_enc_connect(struct buf *b, const char *host, char family, uint16_t port,
    const char *addr)
{
	struct pkt k;
	uint8_t pb[2] = {(uint8_t)(port >> 8), (uint8_t)port};

	if (family != '4' && family != '6' && family != 'L' && family != 'U')
		return -1;
	pkt_begin(&k, b, MILTER_C_CONNECT);
	pkt_str(&k, host, strlen(host));
	pkt_add(&k, &family, 1);
	if (family != 'U') {
		pkt_add(&k, pb, sizeof(pb));
		pkt_str(&k, addr, strlen(addr));
	}
	return pkt_end(&k);
}

int
milter_enc_helo(struct buf *b, const char *helo)
{
	struct pkt k;

	pkt_begin(&k, b, MILTER_C_HELO);
	pkt_str(&k, helo, strlen(helo));
	return pkt_end(&k);
}

static int
enc_path(struct buf *b, char cmd, const char *addr, const char *const *args,
    size_t n)
{
	struct pkt k;

	pkt_begin(&k, b, cmd);
	pkt_add(&k, "<", 1);
	pkt_str(&k, addr, strlen(addr));
	/* the NUL went after the address: put the '>' before it */
	if (k.failed == 0) {
		k.b->data[k.b->len - 1] = '>';
		pkt_add(&k, "", 1);
	}
	for (size_t i = 0; i < n; i++)
		pkt_str(&k, args[i], strlen(args[i]));
	return pkt_end(&k);
}

int
milter_enc_mail(
    struct buf *b, const char *addr, const char *const *args, size_t n)
{
	return enc_path(b, MILTER_C_MAIL, addr, args, n);
}

int
milter_enc_rcpt(
    struct buf *b, const char *addr, const char *const *args, size_t n)
{
	return enc_path(b, MILTER_C_RCPT, addr, args, n);
}

int
milter_enc_header(struct buf *b, const char *name, size_t namelen,
    const char *value, size_t valuelen)
{
	struct pkt k;

	if (namelen == 0)
		return -1;
	pkt_begin(&k, b, MILTER_C_HEADER);
	pkt_str(&k, name, namelen);
	pkt_str(&k, value, valuelen);
	return pkt_end(&k);
}

int
milter_enc_body(struct buf *b, const char *p, size_t n)
{
	struct pkt k;

	if (n > MILTER_CHUNK)
		return -1;
	pkt_begin(&k, b, MILTER_C_BODY);
	pkt_add(&k, p, n);
	return pkt_end(&k);
}

int
milter_enc_simple(struct buf *b, char cmd)
{
	struct pkt k;

	if (cmd != MILTER_C_DATA && cmd != MILTER_C_EOH &&
	    cmd != MILTER_C_EOM && cmd != MILTER_C_ABORT &&
	    cmd != MILTER_C_QUIT)
		return -1;
	pkt_begin(&k, b, cmd);
	return pkt_end(&k);
}

int
milter_enc_macro(
    struct buf *b, char stage, const struct milter_macro *m, size_t n)
{
	struct pkt k;

	pkt_begin(&k, b, MILTER_C_MACRO);
	pkt_add(&k, &stage, 1);
	for (size_t i = 0; i < n; i++) {
		if (m[i].value == NULL)
			continue; /* unknown in this session: not sent */
		pkt_str(&k, m[i].name, strlen(m[i].name));
		pkt_str(&k, m[i].value, strlen(m[i].value));
	}
	return pkt_end(&k);
}

/* ---- decoding ----------------------------------------------------------- */

/* A NUL-terminated string at *p within end; false if it has no NUL. */
static bool
take_str(const uint8_t **p, const uint8_t *end, struct milter_str *s)
{
	const uint8_t *nul = memchr(*p, '\0', (size_t)(end - *p));

	if (nul == NULL)
		return false;
	s->p = (const char *)*p;
	s->len = (size_t)(nul - *p);
	*p = nul + 1;
	return true;
}

/* "4xx" or "5xx" then a space, a hyphen or the end */
static bool
reply_code(const struct milter_str *t, int *code)
{
	const char *s = t->p;

	if (t->len < 3 || (s[0] != '4' && s[0] != '5') || s[1] < '0' ||
	    s[1] > '9' || s[2] < '0' || s[2] > '9')
		return false;
	if (t->len > 3 && s[3] != ' ' && s[3] != '-')
		return false;
	*code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
	return true;
}

/* The data of a whole packet, by its command; false if malformed. */
static bool
parse_data(const uint8_t *p, const uint8_t *end, struct milter_reply *r)
{
	switch (r->cmd) {
	case MILTER_R_ACCEPT:
	case MILTER_R_CONTINUE:
	case MILTER_R_DISCARD:
	case MILTER_R_PROGRESS:
	case MILTER_R_REJECT:
	case MILTER_R_SKIP:
	case MILTER_R_TEMPFAIL:
		return p == end;
	case MILTER_R_OPTNEG:
		/* three numbers, then optional macro lists we do not use */
		if (end - p < 12)
			return false;
		r->version = get32(p);
		r->actions = get32(p + 4);
		r->protocol = get32(p + 8);
		return true;
	case MILTER_R_REPLYCODE:
		return take_str(&p, end, &r->text) && p == end &&
		       reply_code(&r->text, &r->code);
	case MILTER_R_QUARANTINE:
	case MILTER_R_ADDRCPT:
	case MILTER_R_DELRCPT:
		return take_str(&p, end, &r->text) && p == end;
	case MILTER_R_ADDRCPT_PAR:
	case MILTER_R_CHGFROM:
		if (!take_str(&p, end, &r->text))
			return false;
		if (p != end && !take_str(&p, end, &r->args))
			return false;
		return p == end;
	case MILTER_R_INSHEADER:
	case MILTER_R_CHGHEADER:
		if (end - p < 4)
			return false;
		r->index = get32(p);
		p += 4;
		/* fall through */
	case MILTER_R_ADDHEADER:
		return take_str(&p, end, &r->name) && r->name.len > 0 &&
		       take_str(&p, end, &r->value) && p == end;
	case MILTER_R_REPLBODY:
		r->text.p = (const char *)p;
		r->text.len = (size_t)(end - p);
		return true;
	}
	return false; /* an unknown command */
}

int
milter_reply_parse(
    const uint8_t *p, size_t n, struct milter_reply *r, size_t *used)
{
	uint32_t len;

	*used = 0;
	if (n < 4)
		return 0;
	len = get32(p);
	if (len == 0 || len > MILTER_REPLY_MAX)
		return -1;
	if (n - 4 < len)
		return 0;
	memset(r, 0, sizeof(*r));
	r->cmd = (enum milter_reply_cmd)p[4];
	if (!parse_data(p + 5, p + 4 + len, r))
		return -1;
	*used = 4 + (size_t)len;
	return 1;
}

/* ---- the message's header ---------------------------------------------- */

/* the end of the line starting at p (past its LF), or len */
static size_t
line_end(const char *msg, size_t len, size_t p)
{
	const char *nl = memchr(msg + p, '\n', len - p);

	return nl == NULL ? len : (size_t)(nl - msg) + 1;
}

bool
milter_header_next(
    const char *msg, size_t len, size_t *off, struct milter_hdr *h)
{
	size_t p = *off, e, n;
	const char *colon;

	if (p >= len || msg[p] == '\n' ||
	    (msg[p] == '\r' && p + 1 < len && msg[p + 1] == '\n') ||
	    msg[p] == ' ' || msg[p] == '\t')
		return false;
	e = line_end(msg, len, p);
	colon = memchr(msg + p, ':', e - p);
	if (colon == NULL)
		return false;
	n = (size_t)(colon - (msg + p));
	while (n > 0 && (msg[p + n - 1] == ' ' || msg[p + n - 1] == '\t'))
		n--;
	if (n == 0)
		return false;
	/* folded lines belong to the field */
	while (e < len && (msg[e] == ' ' || msg[e] == '\t'))
		e = line_end(msg, len, e);
	h->name = msg + p;
	h->namelen = n;
	h->field = msg + p;
	h->fieldlen = e - p;
	*off = e;
	return true;
}

int
milter_header_value(const struct milter_hdr *h, struct buf *out)
{
	const char *v = memchr(h->field, ':', h->fieldlen);
	size_t n, i;
	int r = 0;

	if (v == NULL)
		return -1;
	v++;
	n = h->fieldlen - (size_t)(v - h->field);
	if (n > 0 && v[0] == ' ') {
		v++;
		n--;
	}
	if (n > 0 && v[n - 1] == '\n')
		n--;
	if (n > 0 && v[n - 1] == '\r')
		n--;
	for (i = 0; i < n && r == 0; i++) {
		if (v[i] == '\r' && i + 1 < n && v[i + 1] == '\n')
			continue;
		if (v[i] == '\0')
			r = buf_append(out, " ", 1); /* cannot be sent */
		else
			r = buf_append(out, v + i, 1);
	}
	return r;
}

/* text with every line end (CRLF, LF, lone CR) made CRLF */
static int
append_crlf(struct buf *out, const char *p, size_t n)
{
	size_t i, run = 0;
	int r = 0;

	for (i = 0; i < n && r == 0; i++) {
		if (p[i] != '\r' && p[i] != '\n')
			continue;
		r = buf_append(out, p + run, i - run);
		if (r == 0)
			r = buf_append(out, "\r\n", 2);
		if (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n')
			i++;
		run = i + 1;
	}
	if (r == 0)
		r = buf_append(out, p + run, n - run);
	return r;
}

/* A field of the new header: from the message, or an edit's. */
struct field {
	const char *name;
	size_t namelen;
	const char *text; /* the message's field; NULL: value below */
	size_t textlen;
	const char *value; /* an edit's */
};

struct fields {
	struct field *v;
	size_t n, cap;
};

static void
fields_insert(struct fields *f, size_t at, const struct field *x)
{
	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 32;
		struct field *v = xcalloc(cap, sizeof(*v));

		if (f->n > 0)
			memcpy(v, f->v, f->n * sizeof(*v));
		free(f->v);
		f->v = v;
		f->cap = cap;
	}
	if (at > f->n)
		at = f->n;
	memmove(f->v + at + 1, f->v + at, (f->n - at) * sizeof(*x));
	f->v[at] = *x;
	f->n++;
}

static bool
name_eq(const struct field *f, const char *name)
{
	size_t n = strlen(name);

	if (f->namelen != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char a = (unsigned char)f->name[i];
		unsigned char b = (unsigned char)name[i];

		if (a >= 'A' && a <= 'Z')
			a = (unsigned char)(a + 32);
		if (b >= 'A' && b <= 'Z')
			b = (unsigned char)(b + 32);
		if (a != b)
			return false;
	}
	return true;
}

static void
apply_edit(struct fields *f, const struct milter_edit *e)
{
	struct field x = {e->name, strlen(e->name), NULL, 0, e->value};
	uint32_t want = e->index == 0 ? 1 : e->index, seen = 0;

	if (e->kind == MILTER_EDIT_ADD) {
		fields_insert(f, f->n, &x);
		return;
	}
	if (e->kind == MILTER_EDIT_INSERT) {
		fields_insert(f, e->index, &x);
		return;
	}
	for (size_t i = 0; i < f->n; i++) {
		if (!name_eq(&f->v[i], e->name) || ++seen != want)
			continue;
		if (e->value[0] == '\0') {
			memmove(f->v + i, f->v + i + 1,
			    (f->n - i - 1) * sizeof(*f->v));
			f->n--;
		} else {
			f->v[i] = x;
		}
		return;
	}
	if (e->value[0] != '\0')
		fields_insert(f, f->n, &x);
}

int
milter_rewrite(const char *msg, size_t len, const struct milter_edit *e,
    size_t n, const char *body, size_t bodylen, struct buf *out)
{
	struct fields f = {NULL, 0, 0};
	struct milter_hdr h;
	size_t off = 0, i;
	int r = 0;

	while (milter_header_next(msg, len, &off, &h)) {
		struct field x = {h.name, h.namelen, h.field, h.fieldlen, NULL};

		fields_insert(&f, f.n, &x);
	}
	/* off is at the blank line (or the body, if there is none) */
	if (off < len && msg[off] == '\r' && off + 1 < len &&
	    msg[off + 1] == '\n')
		off += 2;
	else if (off < len && msg[off] == '\n')
		off += 1;
	for (i = 0; i < n; i++)
		apply_edit(&f, &e[i]);
	for (i = 0; i < f.n && r == 0; i++) {
		const struct field *x = &f.v[i];

		if (x->text != NULL) {
			r = buf_append(out, x->text, x->textlen);
			/* a last field without a line end gets one */
			if (r == 0 && x->text[x->textlen - 1] != '\n')
				r = buf_append(out, "\r\n", 2);
			continue;
		}
		r = buf_append(out, x->name, x->namelen);
		if (r == 0)
			r = buf_append(out, ": ", 2);
		if (r == 0)
			r = append_crlf(out, x->value, strlen(x->value));
		if (r == 0)
			r = buf_append(out, "\r\n", 2);
	}
	if (r == 0)
		r = buf_append(out, "\r\n", 2);
	if (r == 0 && body != NULL)
		r = append_crlf(out, body, bodylen);
	else if (r == 0)
		r = buf_append(out, msg + off, len - off);
	free(f.v);
	return r;
}

/* ---- addresses ---------------------------------------------------------- */

static bool
host_ok(const char *h, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)h[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			(ch >= '0' && ch <= '9') || ch == '.' || ch == '-' ||
			ch == ':'))
			return false;
	}
	return true;
}

int
milter_parse_spec(const char *s, size_t n, struct milter_spec *spec)
{
	const char *colon, *host;
	size_t hl;
	unsigned port = 0;

	memset(spec, 0, sizeof(*spec));
	if (n > 5 && strncmp(s, "unix:", 5) == 0) {
		if (s[5] != '/' || n - 5 > MILTER_PATH_MAX ||
		    memchr(s, '\0', n) != NULL)
			return -1;
		memcpy(spec->host, s + 5, n - 5);
		spec->unix_path = true;
		return 0;
	}
	if (n <= 5 || strncmp(s, "inet:", 5) != 0)
		return -1;
	s += 5;
	n -= 5;
	colon = NULL;
	for (size_t i = n; i > 0; i--)
		if (s[i - 1] == ':') {
			colon = s + i - 1;
			break;
		}
	if (colon == NULL || colon + 1 == s + n || s + n - colon > 6)
		return -1;
	for (const char *q = colon + 1; q < s + n; q++) {
		if (*q < '0' || *q > '9')
			return -1;
		port = port * 10 + (unsigned)(*q - '0');
	}
	if (port == 0 || port > 65535)
		return -1;
	host = s;
	hl = (size_t)(colon - s);
	if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
		host++;
		hl -= 2;
	} else if (memchr(host, ':', hl) != NULL) {
		return -1; /* an IPv6 address goes in brackets */
	}
	if (!host_ok(host, hl) || hl > MILTER_HOST_MAX)
		return -1;
	memcpy(spec->host, host, hl);
	spec->port = (uint16_t)port;
	return 0;
}

const char *
milter_reply_name(enum milter_reply_cmd cmd)
{
	switch (cmd) {
	case MILTER_R_ADDRCPT:
		return "addrcpt";
	case MILTER_R_DELRCPT:
		return "delrcpt";
	case MILTER_R_ADDRCPT_PAR:
		return "addrcpt_par";
	case MILTER_R_OPTNEG:
		return "optneg";
	case MILTER_R_ACCEPT:
		return "accept";
	case MILTER_R_REPLBODY:
		return "replbody";
	case MILTER_R_CONTINUE:
		return "continue";
	case MILTER_R_DISCARD:
		return "discard";
	case MILTER_R_CHGFROM:
		return "chgfrom";
	case MILTER_R_ADDHEADER:
		return "addheader";
	case MILTER_R_INSHEADER:
		return "insheader";
	case MILTER_R_CHGHEADER:
		return "chgheader";
	case MILTER_R_PROGRESS:
		return "progress";
	case MILTER_R_QUARANTINE:
		return "quarantine";
	case MILTER_R_REJECT:
		return "reject";
	case MILTER_R_SKIP:
		return "skip";
	case MILTER_R_TEMPFAIL:
		return "tempfail";
	case MILTER_R_REPLYCODE:
		return "replycode";
	}
	return "unknown";
}
