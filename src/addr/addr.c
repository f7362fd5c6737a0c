/*
 * addr: parser and formatter for SMTP paths, mailboxes and domains.
 *
 * Grammar: RFC 5321 4.1.2 (Path, Mailbox, Local-part, Dot-string,
 * Quoted-string with qtextSMTP and quoted-pairSMTP) and 4.1.3 (address
 * literals), extended by RFC 6531 3.3 when ADDR_F_UTF8 is set: UTF8-non-ascii
 * is then allowed in atext, qtextSMTP and domain labels (U-labels).  A
 * source route (A-d-l) is checked and dropped (RFC 5321 4.1.2, Appendix C).
 *
 * Invariants:
 *  - Every read is bounded by the caller's length; no input is assumed to
 *    be NUL-terminated, and a NUL byte is an ordinary invalid character.
 *  - The input is scanned left to right once; the first error met wins.
 *    A length limit is checked when its component is complete, so a syntax
 *    error inside an over-long component is reported as a syntax error.
 *  - Nothing is written to a field before its length is known to fit, so
 *    struct addr cannot overflow; on error *out is zeroed or partial.
 *  - Without ADDR_F_UTF8 every byte >= 0x80 that the scan reaches gives
 *    ADDR_ERR_UTF8; with it, UTF-8 must be well formed (RFC 3629: no
 *    overlong forms, no surrogates, nothing above U+10FFFF).
 *
 * Limits, counted on the octets as sent (quotes, backslashes and brackets
 * included): local part 64, domain 255 (a label 63, RFC 1035), whole path
 * 256 including the angle brackets and any source route.
 *
 * Choices the RFC leaves open: an empty quoted local part ("") is refused,
 * since "" is how the null path is represented; literals are validated with
 * inet_pton(3), so IPv4 octets with leading zeros are refused; General-
 * address-literals (tags other than IPv6) are refused; source routes may
 * name domains only, not literals.  addr_parse_domain() reports a result
 * that does not fit the caller's buffer as ADDR_ERR_DOMAIN_LONG.
 *
 * Pure: no I/O, no allocation.  <arpa/inet.h> is included only for
 * inet_pton(), which is itself pure.
 */
#include "addr/addr.h"

#include <arpa/inet.h>
#include <string.h>

#include "util/util.h"

#define ADDR_LABEL_MAX	  63
#define ADDR_IPV6_TAG	  "IPv6:"
#define ADDR_IPV6_TAG_LEN 5

/* A read position in the caller's bytes; pos <= len always. */
struct addr_cur {
	const unsigned char *p;
	size_t len;
	size_t pos;
	unsigned flags;
};

static bool
addr_cur_at(const struct addr_cur *c, unsigned char ch)
{
	return c->pos < c->len && c->p[c->pos] == ch;
}

static bool
addr_is_alnum(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9');
}

/* atext of RFC 5322 3.2.3, as RFC 5321 uses it for Atom. */
static bool
addr_is_atext(unsigned char ch)
{
	return addr_is_alnum(ch) ||
	       (ch != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", ch) != NULL);
}

/* qtextSMTP: %d32-33 / %d35-91 / %d93-126, i.e. printable minus '"' '\\'. */
static bool
addr_is_qtext(unsigned char ch)
{
	return ch >= 32 && ch <= 126 && ch != '"' && ch != '\\';
}

/*
 * Length of the well-formed UTF-8 sequence at p[0..avail) whose lead byte
 * is >= 0x80, or 0.  The second-byte ranges are the RFC 3629 table; they
 * are what excludes overlongs, surrogates and code points past U+10FFFF.
 */
static size_t
addr_utf8_len(const unsigned char *p, size_t avail)
{
	unsigned char b = p[0], lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (b >= 0xc2 && b <= 0xdf)
		n = 2;
	else if (b >= 0xe0 && b <= 0xef)
		n = 3;
	else if (b >= 0xf0 && b <= 0xf4)
		n = 4;
	else
		return 0;
	if (b == 0xe0)
		lo = 0xa0;
	else if (b == 0xed)
		hi = 0x9f;
	else if (b == 0xf0)
		lo = 0x90;
	else if (b == 0xf4)
		hi = 0x8f;
	if (avail < n || p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

/*
 * At a byte >= 0x80 where RFC 6531 allows UTF8-non-ascii: step over one
 * well-formed character, or fail.
 */
static enum addr_status
addr_skip_utf8(struct addr_cur *c)
{
	size_t n;

	if (!(c->flags & ADDR_F_UTF8))
		return ADDR_ERR_UTF8;
	n = addr_utf8_len(c->p + c->pos, c->len - c->pos);
	if (n == 0)
		return ADDR_ERR_UTF8;
	c->pos += n;
	return ADDR_OK;
}

/* A byte >= 0x80 where even RFC 6531 allows none. */
static enum addr_status
addr_misplaced_high(const struct addr_cur *c)
{
	return (c->flags & ADDR_F_UTF8) ? ADDR_ERR_SYNTAX : ADDR_ERR_UTF8;
}

static bool
addr_has_high(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return true;
	return false;
}

/* Dot-string = Atom *("." Atom); an empty atom catches ".a", "a..b", "a.". */
static enum addr_status
addr_scan_dot_string(struct addr_cur *c)
{
	for (;;) {
		size_t start = c->pos;

		while (c->pos < c->len) {
			unsigned char ch = c->p[c->pos];

			if (addr_is_atext(ch)) {
				c->pos++;
			} else if (ch >= 0x80) {
				enum addr_status st = addr_skip_utf8(c);

				if (st != ADDR_OK)
					return st;
			} else {
				break;
			}
		}
		if (c->pos == start)
			return ADDR_ERR_SYNTAX;
		if (!addr_cur_at(c, '.'))
			return ADDR_OK;
		c->pos++;
	}
}

/* quoted-pairSMTP = "\" %d32-126; c->pos is at the backslash. */
static enum addr_status
addr_scan_quoted_pair(struct addr_cur *c)
{
	unsigned char ch;

	if (c->pos + 1 >= c->len)
		return ADDR_ERR_SYNTAX;
	ch = c->p[c->pos + 1];
	if (ch >= 0x80)
		return addr_misplaced_high(c);
	if (ch < 32 || ch > 126)
		return ADDR_ERR_SYNTAX;
	c->pos += 2;
	return ADDR_OK;
}

/* Quoted-string = DQUOTE *QcontentSMTP DQUOTE; c->pos is at the DQUOTE. */
static enum addr_status
addr_scan_quoted(struct addr_cur *c)
{
	c->pos++;
	for (;;) {
		enum addr_status st = ADDR_OK;
		unsigned char ch;

		if (c->pos >= c->len)
			return ADDR_ERR_SYNTAX;
		ch = c->p[c->pos];
		if (ch == '"') {
			c->pos++;
			return ADDR_OK;
		}
		if (ch == '\\')
			st = addr_scan_quoted_pair(c);
		else if (addr_is_qtext(ch))
			c->pos++;
		else if (ch >= 0x80)
			st = addr_skip_utf8(c);
		else
			st = ADDR_ERR_SYNTAX;
		if (st != ADDR_OK)
			return st;
	}
}

/* Copy a scanned Quoted-string s[0..n) without its quotes and escapes. */
static size_t
addr_unquote(const unsigned char *s, size_t n, char *out)
{
	size_t i, o = 0;

	for (i = 1; i + 1 < n; i++) {
		if (s[i] == '\\')
			i++;
		out[o++] = (char)s[i];
	}
	out[o] = '\0';
	return o;
}

static enum addr_status
addr_parse_local(struct addr_cur *c, struct addr *a)
{
	size_t start = c->pos, n;
	enum addr_status st;

	a->quoted = addr_cur_at(c, '"');
	st = a->quoted ? addr_scan_quoted(c) : addr_scan_dot_string(c);
	if (st != ADDR_OK)
		return st;
	n = c->pos - start;
	if (n > ADDR_LOCAL_MAX)
		return ADDR_ERR_LOCAL_LONG;
	if (!a->quoted) {
		memcpy(a->local, c->p + start, n);
		a->local[n] = '\0';
		return ADDR_OK;
	}
	/* "" would read back as the null path; no mailbox is named by it. */
	if (addr_unquote(c->p + start, n, a->local) == 0)
		return ADDR_ERR_SYNTAX;
	return ADDR_OK;
}

/*
 * One sub-domain = Let-dig [Ldh-str], or a U-label under SMTPUTF8.  The
 * rule has no room for a hyphen first or last; 63 octets is RFC 1035's.
 */
static enum addr_status
addr_scan_label(struct addr_cur *c)
{
	size_t start = c->pos;

	while (c->pos < c->len) {
		unsigned char ch = c->p[c->pos];

		if (addr_is_alnum(ch) || (ch == '-' && c->pos > start)) {
			c->pos++;
		} else if (ch >= 0x80) {
			enum addr_status st = addr_skip_utf8(c);

			if (st != ADDR_OK)
				return st;
		} else {
			break;
		}
	}
	if (c->pos == start || c->p[c->pos - 1] == '-')
		return ADDR_ERR_SYNTAX;
	if (c->pos - start > ADDR_LABEL_MAX)
		return ADDR_ERR_SYNTAX;
	return ADDR_OK;
}

/* Domain = sub-domain *("." sub-domain); no empty label, no trailing dot. */
static enum addr_status
addr_scan_domain_name(struct addr_cur *c)
{
	size_t start = c->pos;
	enum addr_status st;

	for (;;) {
		st = addr_scan_label(c);
		if (st != ADDR_OK)
			return st;
		if (!addr_cur_at(c, '.'))
			break;
		c->pos++;
	}
	if (c->pos - start > ADDR_DOMAIN_MAX)
		return ADDR_ERR_DOMAIN_LONG;
	return ADDR_OK;
}

/* Lower-case ASCII into out; U-label bytes are kept as sent. */
static enum addr_status
addr_put_name(const unsigned char *s, size_t n, char *out, size_t outlen)
{
	size_t i;

	if (out == NULL)
		return ADDR_OK;
	if (n >= outlen)
		return ADDR_ERR_DOMAIN_LONG;
	for (i = 0; i < n; i++) {
		unsigned char ch = s[i];

		out[i] = (char)((ch >= 'A' && ch <= 'Z') ? ch - 'A' + 'a' : ch);
	}
	out[n] = '\0';
	return ADDR_OK;
}

/*
 * inet_pton() reads a C string, so the text is first confined to the
 * characters its family can use: an embedded NUL must not end it early.
 */
static bool
addr_ip_ok(int af, const unsigned char *s, size_t n)
{
	const char *set =
	    af == AF_INET ? "0123456789." : "0123456789abcdefABCDEF:.";
	char tmp[INET6_ADDRSTRLEN];
	unsigned char bin[sizeof(struct in6_addr)];
	size_t i;

	if (n == 0 || n >= sizeof(tmp))
		return false;
	for (i = 0; i < n; i++)
		if (s[i] == '\0' || strchr(set, s[i]) == NULL)
			return false;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	return inet_pton(af, tmp, bin) == 1;
}

/* Find the closing ']' over dcontent (%d33-90 / %d94-126) bytes. */
static enum addr_status
addr_scan_literal(struct addr_cur *c)
{
	c->pos++;
	for (;;) {
		unsigned char ch;

		if (c->pos >= c->len)
			return ADDR_ERR_SYNTAX;
		ch = c->p[c->pos];
		if (ch == ']')
			break;
		if (ch >= 0x80)
			return addr_misplaced_high(c);
		if (ch < 33 || ch > 126 || ch == '[' || ch == '\\')
			return ADDR_ERR_SYNTAX;
		c->pos++;
	}
	c->pos++;
	return ADDR_OK;
}

/*
 * address-literal = "[" ( IPv4 / "IPv6:" IPv6 / General ) "]", with the
 * tag matched in any case (ABNF strings are case-insensitive) and written
 * back as "IPv6:" so equal literals compare equal.
 */
static enum addr_status
addr_parse_literal(struct addr_cur *c, char *out, size_t outlen,
    enum addr_domain_kind *kind_out)
{
	size_t start = c->pos, n;
	const unsigned char *body;
	enum addr_status st = addr_scan_literal(c);

	if (st != ADDR_OK)
		return st;
	body = c->p + start + 1;
	n = c->pos - start - 2;
	if (n > ADDR_IPV6_TAG_LEN &&
	    str_case_eq((const char *)body, ADDR_IPV6_TAG_LEN, ADDR_IPV6_TAG)) {
		if (!addr_ip_ok(AF_INET6, body + ADDR_IPV6_TAG_LEN,
			n - ADDR_IPV6_TAG_LEN))
			return ADDR_ERR_SYNTAX;
		*kind_out = ADDR_DOMAIN_IPV6;
	} else {
		if (!addr_ip_ok(AF_INET, body, n))
			return ADDR_ERR_SYNTAX;
		*kind_out = ADDR_DOMAIN_IPV4;
	}
	/* A valid literal is at most 52 octets, far below ADDR_DOMAIN_MAX. */
	if (out == NULL)
		return ADDR_OK;
	if (str_copy(out, outlen, (const char *)c->p + start, n + 2) != 0)
		return ADDR_ERR_DOMAIN_LONG;
	if (*kind_out == ADDR_DOMAIN_IPV6)
		memcpy(out + 1, ADDR_IPV6_TAG, ADDR_IPV6_TAG_LEN);
	return ADDR_OK;
}

/* Domain / address-literal at c->pos; out may be NULL to only check. */
static enum addr_status
addr_parse_domain_at(struct addr_cur *c, char *out, size_t outlen,
    enum addr_domain_kind *kind_out)
{
	size_t start = c->pos;
	enum addr_status st;

	if (addr_cur_at(c, '['))
		return addr_parse_literal(c, out, outlen, kind_out);
	st = addr_scan_domain_name(c);
	if (st != ADDR_OK)
		return st;
	*kind_out = ADDR_DOMAIN_NAME;
	return addr_put_name(c->p + start, c->pos - start, out, outlen);
}

/* Mailbox = Local-part "@" ( Domain / address-literal ) */
static enum addr_status
addr_parse_mailbox_at(struct addr_cur *c, struct addr *a)
{
	enum addr_status st = addr_parse_local(c, a);

	if (st != ADDR_OK)
		return st;
	if (!addr_cur_at(c, '@'))
		return ADDR_ERR_SYNTAX;
	c->pos++;
	st = addr_parse_domain_at(c, a->domain, sizeof(a->domain), &a->kind);
	if (st != ADDR_OK)
		return st;
	a->utf8 = addr_has_high(a->local) || addr_has_high(a->domain);
	return ADDR_OK;
}

/* A-d-l ":" where A-d-l = At-domain *( "," At-domain ), checked, dropped. */
static enum addr_status
addr_skip_route(struct addr_cur *c)
{
	for (;;) {
		enum addr_status st;

		if (!addr_cur_at(c, '@'))
			return ADDR_ERR_SYNTAX;
		c->pos++;
		st = addr_scan_domain_name(c);
		if (st != ADDR_OK)
			return st;
		if (addr_cur_at(c, ':')) {
			c->pos++;
			return ADDR_OK;
		}
		if (!addr_cur_at(c, ','))
			return ADDR_ERR_SYNTAX;
		c->pos++;
	}
}

/* "<>" and "<Postmaster>", each only where the caller's flags allow it. */
static bool
addr_special(struct addr_cur *c, struct addr *a)
{
	const size_t pm = sizeof("postmaster") - 1;
	const char *rest = (const char *)c->p + c->pos;
	size_t avail = c->len - c->pos;

	if ((c->flags & ADDR_F_ALLOW_NULL) && addr_cur_at(c, '>')) {
		a->null = true;
		c->pos++;
		return true;
	}
	if ((c->flags & ADDR_F_ALLOW_POSTMASTER) && avail > pm &&
	    rest[pm] == '>' && str_case_eq(rest, pm, "postmaster")) {
		a->postmaster = true;
		memcpy(a->local, "postmaster", pm + 1);
		c->pos += pm + 1;
		return true;
	}
	return false;
}

static enum addr_status
addr_parse_path_at(struct addr_cur *c, struct addr *a)
{
	enum addr_status st;

	if (!addr_cur_at(c, '<'))
		return ADDR_ERR_SYNTAX;
	c->pos++;
	if (addr_special(c, a))
		return ADDR_OK;
	if (addr_cur_at(c, '@')) {
		st = addr_skip_route(c);
		if (st != ADDR_OK)
			return st;
	}
	st = addr_parse_mailbox_at(c, a);
	if (st != ADDR_OK)
		return st;
	if (!addr_cur_at(c, '>'))
		return ADDR_ERR_SYNTAX;
	c->pos++;
	if (c->pos > ADDR_PATH_MAX)
		return ADDR_ERR_PATH_LONG;
	return ADDR_OK;
}

enum addr_status
addr_parse_path(const char *s, size_t len, unsigned flags, struct addr *out,
    size_t *consumed_out)
{
	struct addr_cur c = {(const unsigned char *)s, len, 0, flags};
	enum addr_status st;

	memset(out, 0, sizeof(*out));
	st = addr_parse_path_at(&c, out);
	if (consumed_out != NULL)
		*consumed_out = st == ADDR_OK ? c.pos : 0;
	return st;
}

enum addr_status
addr_parse_mailbox(const char *s, size_t len, unsigned flags, struct addr *out)
{
	struct addr_cur c = {(const unsigned char *)s, len, 0, flags};
	enum addr_status st;

	memset(out, 0, sizeof(*out));
	st = addr_parse_mailbox_at(&c, out);
	if (st == ADDR_OK && c.pos != len)
		st = ADDR_ERR_SYNTAX;
	/* a mailbox that cannot be written as a 256-octet path (RFC 5321
	 * 4.5.3.1.3, "<" and ">" included) could never be sent to: refuse it
	 * here too, so tables and headers hold only reachable addresses */
	if (st == ADDR_OK && len > ADDR_PATH_MAX - 2)
		st = ADDR_ERR_PATH_LONG;
	return st;
}

enum addr_status
addr_parse_domain(const char *s, size_t len, unsigned flags, char *out,
    size_t outlen, enum addr_domain_kind *kind_out)
{
	struct addr_cur c = {(const unsigned char *)s, len, 0, flags};
	enum addr_domain_kind kind = ADDR_DOMAIN_NONE;
	enum addr_status st;

	st = addr_parse_domain_at(&c, out, outlen, &kind);
	if (st == ADDR_OK && c.pos != len)
		st = ADDR_ERR_SYNTAX;
	if (kind_out != NULL)
		*kind_out = st == ADDR_OK ? kind : ADDR_DOMAIN_NONE;
	return st;
}

/* A local part that reads back unchanged without quotes. */
static bool
addr_is_dot_string(const char *s)
{
	bool atom_empty = true;

	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '.') {
			if (atom_empty)
				return false;
			atom_empty = true;
		} else if (addr_is_atext(ch) || ch >= 0x80) {
			atom_empty = false;
		} else {
			return false;
		}
	}
	return !atom_empty;
}

/* An output cursor: every put checks room for itself and the final NUL. */
struct addr_out {
	char *p;
	size_t cap;
	size_t len;
	bool full;
};

static void
addr_put(struct addr_out *w, const char *s, size_t n)
{
	if (w->full || n >= w->cap - w->len) {
		w->full = true;
		return;
	}
	memcpy(w->p + w->len, s, n);
	w->len += n;
	w->p[w->len] = '\0';
}

/*
 * The local part as a Quoted-string, escaping '"' and '\\'.  A control
 * byte cannot be carried even quoted, so it fails like a full buffer.
 */
static void
addr_put_quoted(struct addr_out *w, const char *s)
{
	addr_put(w, "\"", 1);
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch < 32 || ch == 127)
			w->full = true;
		if (ch == '"' || ch == '\\')
			addr_put(w, "\\", 1);
		addr_put(w, s, 1);
	}
	addr_put(w, "\"", 1);
}

int
addr_format(const struct addr *a, char *out, size_t outlen)
{
	struct addr_out w = {out, outlen, 0, outlen == 0};

	if (!w.full)
		out[0] = '\0';
	if (a->null)
		return w.full ? -1 : 0;
	if (a->postmaster) {
		addr_put(&w, "postmaster", sizeof("postmaster") - 1);
		return w.full ? -1 : (int)w.len;
	}
	if (addr_is_dot_string(a->local))
		addr_put(&w, a->local, strlen(a->local));
	else
		addr_put_quoted(&w, a->local);
	addr_put(&w, "@", 1);
	addr_put(&w, a->domain, strlen(a->domain));
	return w.full ? -1 : (int)w.len;
}

const char *
addr_strerror(enum addr_status st)
{
	switch (st) {
	case ADDR_OK:
		return "ok";
	case ADDR_ERR_SYNTAX:
		return "syntax error in mailbox or path";
	case ADDR_ERR_LOCAL_LONG:
		return "local part longer than 64 octets";
	case ADDR_ERR_DOMAIN_LONG:
		return "domain longer than 255 octets";
	case ADDR_ERR_PATH_LONG:
		return "path longer than 256 octets";
	case ADDR_ERR_UTF8:
		return "non-ASCII address without SMTPUTF8, or invalid UTF-8";
	}
	return "unknown address error";
}

bool
addr_is_postmaster(const struct addr *a)
{
	return str_case_eq(
	    a->local, strnlen(a->local, sizeof(a->local)), "postmaster");
}
