/*
 * milter.c: the milter protocol codec (milter.h, docs/milter.md).
 *
 * Written from the protocol's description (libmilter's mfdef.h constants
 * and the packet layouts an MTA and a filter exchange), not from another
 * implementation's code.
 */
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
