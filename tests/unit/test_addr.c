/*
 * Unit tests for src/addr: paths, mailboxes and domains, table-driven.
 *
 * The addr parsers are not incremental (they take one complete buffer), so
 * the harness's "whole, byte by byte, random splits" becomes: each input
 * is parsed whole, then every prefix of it, then prefixes cut at random
 * points, each on its own t_guard() copy so a one-byte over-read faults.
 * A valid path must fail on every prefix shorter than what it consumed,
 * and give the same result on longer ones and with ESMTP parameters after.
 */
#include "t.h"
#include "addr/addr.h"

#define U    ADDR_F_UTF8
#define N    ADDR_F_ALLOW_NULL
#define P    ADDR_F_ALLOW_POSTMASTER
#define ALLF (U | N | P)

#define K_NONE ADDR_DOMAIN_NONE
#define K_NAME ADDR_DOMAIN_NAME
#define K_V4   ADDR_DOMAIN_IPV4
#define K_V6   ADDR_DOMAIN_IPV6

enum row_type { R_PATH, R_MAILBOX, R_DOMAIN };

/*
 * One case.  len 0 means strlen(in); consumed 0 means all of in; fmt NULL
 * means addr_format() must give back local@domain as parsed.
 */
struct row {
	enum row_type type;
	const char *name;
	const char *in;
	size_t len;
	unsigned flags;
	enum addr_status want;
	const char *local;
	const char *domain;
	enum addr_domain_kind kind;
	bool quoted;
	bool utf8;
	size_t consumed;
	const char *fmt;
};

#define OKP(nm, in, fl, lo, dom, k, q, u8, fmt)                                \
	{                                                                      \
		R_PATH, nm, in, 0, fl, ADDR_OK, lo, dom, k, q, u8, 0, fmt      \
	}
#define BADP(nm, in, fl, st)                                                   \
	{                                                                      \
		R_PATH, nm, in, 0, fl, st, NULL, NULL, K_NONE, false, false,   \
		    0, NULL                                                    \
	}
#define BADPL(nm, in, fl, st)                                                  \
	{                                                                      \
		R_PATH, nm, in, sizeof(in) - 1, fl, st, NULL, NULL, K_NONE,    \
		    false, false, 0, NULL                                      \
	}
#define OKM(nm, in, fl, lo, dom, k, q, u8)                                     \
	{                                                                      \
		R_MAILBOX, nm, in, 0, fl, ADDR_OK, lo, dom, k, q, u8, 0, NULL  \
	}
#define BADM(nm, in, fl, st)                                                   \
	{                                                                      \
		R_MAILBOX, nm, in, 0, fl, st, NULL, NULL, K_NONE, false,       \
		    false, 0, NULL                                             \
	}
#define OKD(nm, in, fl, dom, k)                                                \
	{                                                                      \
		R_DOMAIN, nm, in, 0, fl, ADDR_OK, NULL, dom, k, false, false,  \
		    0, NULL                                                    \
	}
#define BADD(nm, in, fl, st)                                                   \
	{                                                                      \
		R_DOMAIN, nm, in, 0, fl, st, NULL, NULL, K_NONE, false, false, \
		    0, NULL                                                    \
	}

static const struct row rows[] = {
    /* ---- valid paths ---- */
    OKP("plain", "<user@example.com>", 0, "user", "example.com", K_NAME, false,
	false, NULL),
    OKP("case kept in local, domain lowered", "<User.Name+tag@Example.COM>", 0,
	"User.Name+tag", "example.com", K_NAME, false, false, NULL),
    OKP("all atext", "<!#$%&'*+-/=?^_`{|}~@example.com>", 0,
	"!#$%&'*+-/=?^_`{|}~", "example.com", K_NAME, false, false, NULL),
    OKP("quoted with @", "<\"user@remote\"@local.example>", 0, "user@remote",
	"local.example", K_NAME, true, false, "\"user@remote\"@local.example"),
    OKP("quoted with space", "<\"a b\"@x.example>", 0, "a b", "x.example",
	K_NAME, true, false, "\"a b\"@x.example"),
    OKP("quoted pairs", "<\"a\\\"b\\\\c\"@x.example>", 0, "a\"b\\c",
	"x.example", K_NAME, true, false, "\"a\\\"b\\\\c\"@x.example"),
    OKP("quoted pair of plain char", "<\"\\a\\ \"@x>", 0, "a ", "x", K_NAME,
	true, false, "\"a \"@x"),
    OKP("needless quotes dropped", "<\"abc\"@x>", 0, "abc", "x", K_NAME, true,
	false, "abc@x"),
    OKP("quoted dots", "<\"a..b.\"@x>", 0, "a..b.", "x", K_NAME, true, false,
	"\"a..b.\"@x"),
    OKP("quoted gt", "<\"a>b\"@x>", 0, "a>b", "x", K_NAME, true, false,
	"\"a>b\"@x"),
    OKP("source route two hops", "<@a.example,@b.example:u@c.example>", 0, "u",
	"c.example", K_NAME, false, false, "u@c.example"),
    OKP("source route one hop", "<@A.example:u@c.example>", 0, "u", "c.example",
	K_NAME, false, false, NULL),
    OKP("ipv4 literal", "<u@[192.0.2.1]>", 0, "u", "[192.0.2.1]", K_V4, false,
	false, NULL),
    OKP("ipv6 literal", "<u@[IPv6:2001:db8::1]>", 0, "u", "[IPv6:2001:db8::1]",
	K_V6, false, false, NULL),
    OKP("ipv6 tag lower case normalised", "<u@[ipv6:::1]>", 0, "u",
	"[IPv6:::1]", K_V6, false, false, NULL),
    OKP("ipv6 with v4 tail", "<u@[IPv6:::ffff:192.0.2.1]>", 0, "u",
	"[IPv6:::ffff:192.0.2.1]", K_V6, false, false, NULL),
    OKP("null path", "<>", N, "", "", K_NONE, false, false, ""),
    OKP("bare postmaster", "<Postmaster>", P, "postmaster", "", K_NONE, false,
	false, "postmaster"),
    OKP("bare POSTMASTER", "<POSTMASTER>", P, "postmaster", "", K_NONE, false,
	false, "postmaster"),
    OKP("postmaster at domain", "<PostMaster@Example.com>", 0, "PostMaster",
	"example.com", K_NAME, false, false, NULL),
    OKP("hyphens and digits", "<a-b@x-y.123.example>", 0, "a-b",
	"x-y.123.example", K_NAME, false, false, NULL),
    OKP("single label", "<u@a>", 0, "u", "a", K_NAME, false, false, NULL),
    OKP("utf8 local and domain",
	"<\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b"
	"\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a>",
	U, "\xe7\x94\xa8\xe6\x88\xb7",
	"\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf"
	"\xe5\x91\x8a",
	K_NAME, false, true, NULL),
    OKP("utf8 u-label, ascii lowered only",
	"<u@B\xc3\x9c"
	"cher.Example>",
	U, "u",
	"b\xc3\x9c"
	"cher.example",
	K_NAME, false, true, NULL),
    OKP("utf8 quoted", "<\"\xc3\xbc x\"@x>", U, "\xc3\xbc x", "x", K_NAME, true,
	true, "\"\xc3\xbc x\"@x"),
    OKP("utf8 4-byte", "<\xf0\x9f\x93\xa7@x>", U, "\xf0\x9f\x93\xa7", "x",
	K_NAME, false, true, NULL),
    OKP("utf8 U+10FFFF", "<\xf4\x8f\xbf\xbf@x>", U, "\xf4\x8f\xbf\xbf", "x",
	K_NAME, false, true, NULL),
    OKP("all flags plain", "<a@b.c>", ALLF, "a", "b.c", K_NAME, false, false,
	NULL),
    {R_PATH, "esmtp params after", "<user@example.com> SIZE=100", 0, 0, ADDR_OK,
	"user", "example.com", K_NAME, false, false, 18, NULL},
    {R_PATH, "null then params", "<> BODY=8BITMIME", 0, N, ADDR_OK, "", "",
	K_NONE, false, false, 2, ""},

    /* ---- invalid paths ---- */
    BADP("empty", "", ALLF, ADDR_ERR_SYNTAX),
    BADP("lone <", "<", ALLF, ADDR_ERR_SYNTAX),
    BADP("no brackets", "user@example.com", ALLF, ADDR_ERR_SYNTAX),
    BADP("no closing bracket", "<user@example.com", ALLF, ADDR_ERR_SYNTAX),
    BADP("space after <", "< user@example.com>", ALLF, ADDR_ERR_SYNTAX),
    BADP("space before @", "<user @example.com>", ALLF, ADDR_ERR_SYNTAX),
    BADP("space before >", "<user@example.com >", ALLF, ADDR_ERR_SYNTAX),
    BADP("no domain", "<user>", ALLF, ADDR_ERR_SYNTAX),
    BADP("empty domain", "<user@>", ALLF, ADDR_ERR_SYNTAX),
    BADP("empty local", "<@example.com>", ALLF, ADDR_ERR_SYNTAX),
    BADP("double dot", "<a..b@x>", ALLF, ADDR_ERR_SYNTAX),
    BADP("leading dot", "<.a@x>", ALLF, ADDR_ERR_SYNTAX),
    BADP("trailing dot", "<a.@x>", ALLF, ADDR_ERR_SYNTAX),
    BADP("two @", "<a@b@c>", ALLF, ADDR_ERR_SYNTAX),
    BADP("null without flag", "<>", U | P, ADDR_ERR_SYNTAX),
    BADP("postmaster without flag", "<Postmaster>", U | N, ADDR_ERR_SYNTAX),
    BADP("postmaster with route", "<@a:Postmaster>", ALLF, ADDR_ERR_SYNTAX),
    BADP("empty quoted", "<\"\"@x>", ALLF, ADDR_ERR_SYNTAX),
    BADP("unbalanced quote", "<\"abc@x>", ALLF, ADDR_ERR_SYNTAX),
    BADP("quote inside atom", "<a\"b\"@x>", ALLF, ADDR_ERR_SYNTAX),
    BADP("backslash outside quotes", "<a\\b@x>", ALLF, ADDR_ERR_SYNTAX),
    BADPL("NUL in quoted", "<\"a\0b\"@x>", ALLF, ADDR_ERR_SYNTAX),
    BADPL("NUL in atom", "<a\0b@x>", ALLF, ADDR_ERR_SYNTAX),
    BADP("CRLF in quoted", "<\"a\r\nb\"@x>", ALLF, ADDR_ERR_SYNTAX),
    BADP("quoted pair of LF", "<\"a\\\nb\"@x>", ALLF, ADDR_ERR_SYNTAX),
    BADP("tab in atom", "<a\tb@x>", ALLF, ADDR_ERR_SYNTAX),
    BADP("DEL in atom", "<a\x7f@x>", ALLF, ADDR_ERR_SYNTAX),
    BADP("DEL in quoted", "<\"a\x7f\"@x>", ALLF, ADDR_ERR_SYNTAX),
    BADP("label leading hyphen", "<u@-x.example>", ALLF, ADDR_ERR_SYNTAX),
    BADP("label trailing hyphen", "<u@x-.example>", ALLF, ADDR_ERR_SYNTAX),
    BADP("empty label", "<u@x..example>", ALLF, ADDR_ERR_SYNTAX),
    BADP("domain leading dot", "<u@.x>", ALLF, ADDR_ERR_SYNTAX),
    BADP("domain trailing dot", "<u@x.example.>", ALLF, ADDR_ERR_SYNTAX),
    BADP("underscore in domain", "<u@a_b.example>", ALLF, ADDR_ERR_SYNTAX),
    BADP("ipv4 octet over 255", "<u@[300.1.1.1]>", ALLF, ADDR_ERR_SYNTAX),
    BADP("ipv4 three parts", "<u@[1.2.3]>", ALLF, ADDR_ERR_SYNTAX),
    BADP("ipv4 empty", "<u@[]>", ALLF, ADDR_ERR_SYNTAX),
    BADP("ipv6 untagged", "<u@[::1]>", ALLF, ADDR_ERR_SYNTAX),
    BADP("ipv6 bad hex", "<u@[IPv6:zz::1]>", ALLF, ADDR_ERR_SYNTAX),
    BADP("ipv6 zone id", "<u@[IPv6:fe80::1%eth0]>", ALLF, ADDR_ERR_SYNTAX),
    BADP("ipv6 empty", "<u@[IPv6:]>", ALLF, ADDR_ERR_SYNTAX),
    BADP("general literal", "<u@[x400:c=us]>", ALLF, ADDR_ERR_SYNTAX),
    BADP("literal unclosed", "<u@[192.0.2.1>", ALLF, ADDR_ERR_SYNTAX),
    BADP("literal with space", "<u@[192.0.2.1 ]>", ALLF, ADDR_ERR_SYNTAX),
    BADP("route without colon", "<@a.example,u@c.example>", ALLF,
	ADDR_ERR_SYNTAX),
    BADP("route empty hop", "<@a.example,:u@c.example>", ALLF, ADDR_ERR_SYNTAX),
    BADP("route literal", "<@[192.0.2.1]:u@c.example>", ALLF, ADDR_ERR_SYNTAX),
    BADP("route then nothing", "<@a.example:>", ALLF, ADDR_ERR_SYNTAX),

    /* ---- UTF-8 ---- */
    BADP("utf8 local without flag", "<\xc3\xbc@x>", N | P, ADDR_ERR_UTF8),
    BADP("utf8 domain without flag", "<u@b\xc3\xbc>", N | P, ADDR_ERR_UTF8),
    BADP("utf8 quoted without flag", "<\"\xc3\xbc\"@x>", 0, ADDR_ERR_UTF8),
    BADP("utf8 in route without flag", "<@\xc3\xbc:u@x>", 0, ADDR_ERR_UTF8),
    BADP("utf8 overlong", "<\xc0\xaf@x>", U, ADDR_ERR_UTF8),
    BADP("utf8 overlong 3-byte", "<\xe0\x80\xaf@x>", U, ADDR_ERR_UTF8),
    BADP("utf8 overlong 4-byte", "<\xf0\x8f\xbf\xbf@x>", U, ADDR_ERR_UTF8),
    BADP("utf8 surrogate", "<\xed\xa0\x80@x>", U, ADDR_ERR_UTF8),
    BADP("utf8 above U+10FFFF", "<\xf4\x90\x80\x80@x>", U, ADDR_ERR_UTF8),
    BADP("utf8 F5 lead", "<\xf5\x80\x80\x80@x>", U, ADDR_ERR_UTF8),
    BADP("utf8 lone continuation", "<a\x80@x>", U, ADDR_ERR_UTF8),
    BADP("utf8 truncated", "<\xc3@x>", U, ADDR_ERR_UTF8),
    BADP("utf8 truncated at end", "<\xe4\xbe", U, ADDR_ERR_UTF8),
    BADP("utf8 bad in domain", "<u@\xed\xbf\xbf>", U, ADDR_ERR_UTF8),
    BADP("utf8 bad in quoted", "<\"\xff\"@x>", U, ADDR_ERR_UTF8),
    BADP("utf8 in literal", "<u@[\xc3\xbc]>", U, ADDR_ERR_SYNTAX),
    BADP("utf8 in literal no flag", "<u@[\xc3\xbc]>", 0, ADDR_ERR_UTF8),
    BADP("utf8 quoted pair", "<\"\\\xc3\xbc\"@x>", U, ADDR_ERR_SYNTAX),

    /* ---- mailboxes ---- */
    OKM("mailbox plain", "user@Example.com", 0, "user", "example.com", K_NAME,
	false, false),
    OKM("mailbox quoted", "\"user@remote\"@local", 0, "user@remote", "local",
	K_NAME, true, false),
    OKM("mailbox literal", "u@[192.0.2.1]", 0, "u", "[192.0.2.1]", K_V4, false,
	false),
    OKM("mailbox utf8", "\xc3\xbc@\xc3\xbc.de", U, "\xc3\xbc", "\xc3\xbc.de",
	K_NAME, false, true),
    BADM("mailbox utf8 no flag", "\xc3\xbc@x.de", 0, ADDR_ERR_UTF8),
    BADM("mailbox with brackets", "<user@example.com>", ALLF, ADDR_ERR_SYNTAX),
    BADM("mailbox trailing space", "user@example.com ", ALLF, ADDR_ERR_SYNTAX),
    BADM("mailbox no domain", "user", ALLF, ADDR_ERR_SYNTAX),
    BADM("mailbox bare postmaster", "postmaster", ALLF, ADDR_ERR_SYNTAX),
    BADM("mailbox empty", "", ALLF, ADDR_ERR_SYNTAX),
    BADM("mailbox route", "@a:u@b", ALLF, ADDR_ERR_SYNTAX),

    /* ---- domains ---- */
    OKD("domain lowered", "Example.COM", 0, "example.com", K_NAME),
    OKD("domain localhost", "localhost", 0, "localhost", K_NAME),
    OKD("domain ipv4", "[192.0.2.1]", 0, "[192.0.2.1]", K_V4),
    OKD("domain ipv6", "[IPV6:2001:DB8::1]", 0, "[IPv6:2001:DB8::1]", K_V6),
    OKD("domain u-label",
	"B\xc3\xbc"
	"cher.DE",
	U,
	"b\xc3\xbc"
	"cher.de",
	K_NAME),
    BADD("domain u-label no flag",
	"b\xc3\xbc"
	"cher.de",
	0, ADDR_ERR_UTF8),
    BADD("domain trailing dot", "example.com.", ALLF, ADDR_ERR_SYNTAX),
    BADD("domain empty", "", ALLF, ADDR_ERR_SYNTAX),
    BADD("domain space", "exa mple", ALLF, ADDR_ERR_SYNTAX),
    BADD("domain hyphen first", "-a.example", ALLF, ADDR_ERR_SYNTAX),
    BADD("domain hyphen last", "a-", ALLF, ADDR_ERR_SYNTAX),
    BADD("domain ipv4 leading zero", "[192.0.2.01]", ALLF, ADDR_ERR_SYNTAX),
    BADD("domain literal junk after", "[192.0.2.1]x", ALLF, ADDR_ERR_SYNTAX),
    BADD("domain general literal", "[tag:x]", ALLF, ADDR_ERR_SYNTAX),
};

/* Parse in[0..len) on a guarded copy, so any over-read faults. */
static enum addr_status
parse_guarded(enum row_type type, const char *in, size_t len, unsigned flags,
    struct addr *a, size_t *consumed)
{
	void *map;
	size_t maplen;
	const char *g = t_guard(in, len, &map, &maplen);
	enum addr_status st;
	enum addr_domain_kind kind = K_NONE;

	*consumed = 0;
	memset(a, 0, sizeof(*a));
	if (type == R_PATH) {
		st = addr_parse_path(g, len, flags, a, consumed);
	} else if (type == R_MAILBOX) {
		st = addr_parse_mailbox(g, len, flags, a);
	} else {
		st = addr_parse_domain(
		    g, len, flags, a->domain, sizeof(a->domain), &kind);
		a->kind = kind;
	}
	t_unguard(map, maplen);
	return st;
}

static bool
addr_same(const struct addr *x, const struct addr *y)
{
	return strcmp(x->local, y->local) == 0 &&
	       strcmp(x->domain, y->domain) == 0 && x->kind == y->kind &&
	       x->null == y->null && x->postmaster == y->postmaster &&
	       x->utf8 == y->utf8;
}

static void
check_fields(const struct row *r, const struct addr *a)
{
	T_CHECK_STR(a->domain, r->domain);
	T_CHECK_INT(a->kind, r->kind);
	if (r->type == R_DOMAIN)
		return;
	T_CHECK_STR(a->local, r->local);
	T_CHECK_INT(a->quoted, r->quoted);
	T_CHECK_INT(a->utf8, r->utf8);
	T_CHECK_INT(a->null, r->in[1] == '>');
	T_CHECK_INT(a->postmaster,
	    (r->flags & P) && r->domain[0] == '\0' && r->local[0] != '\0');
}

/* addr_format() gives the expected text, and it parses back the same. */
static void
check_format(const struct row *r, const struct addr *a)
{
	char out[600], wrapped[602];
	struct addr b;
	size_t used;
	int n = addr_format(a, out, sizeof(out));

	T_CHECK(n >= 0);
	if (n < 0)
		return;
	if (r->fmt != NULL)
		T_CHECK_STR(out, r->fmt);
	else if (!a->null && !a->postmaster)
		T_CHECK(strncmp(out, r->local, strlen(r->local)) == 0);
	T_CHECK_INT(addr_format(a, out, (size_t)n), -1);
	T_CHECK_INT(addr_format(a, out, (size_t)n + 1), n);
	wrapped[0] = '<';
	memcpy(wrapped + 1, out, (size_t)n);
	wrapped[n + 1] = '>';
	T_CHECK_INT(
	    parse_guarded(R_PATH, wrapped, (size_t)n + 2, r->flags, &b, &used),
	    ADDR_OK);
	T_CHECK_INT(used, (size_t)n + 2);
	T_CHECK(addr_same(a, &b));
}

/*
 * Every cut of the input: a path that parsed must fail when cut before the
 * end of what it consumed, and parse the same when cut after it.  For the
 * exact parsers a prefix may well be valid ("a@b.c" -> "a@b"); there the
 * cut proves only that nothing past it is read.
 */
static void
check_prefix(const struct row *r, size_t len, size_t k,
    const struct addr *whole, size_t consumed)
{
	struct addr a;
	size_t used;
	enum addr_status st =
	    parse_guarded(r->type, r->in, k, r->flags, &a, &used);

	if (r->type != R_PATH || r->want != ADDR_OK || k == len)
		return;
	if (k < consumed) {
		T_CHECK(st != ADDR_OK);
	} else {
		T_CHECK_INT(st, ADDR_OK);
		T_CHECK_INT(used, consumed);
		T_CHECK(addr_same(&a, whole));
	}
}

static void
check_cuts(
    const struct row *r, size_t len, const struct addr *whole, size_t consumed)
{
	int i;
	size_t k;

	for (k = 0; k <= len; k++)
		check_prefix(r, len, k, whole, consumed);
	for (i = 0; i < 8 && len > 0; i++)
		check_prefix(r, len, (size_t)(t_rand() % len), whole, consumed);
}

/* A path followed by ESMTP parameters: consumed stops at the '>'. */
static void
check_trailer(
    const struct row *r, size_t len, const struct addr *whole, size_t consumed)
{
	char buf[700];
	struct addr a;
	size_t used;
	static const char tail[] = " SIZE=1000 BODY=8BITMIME";

	if (len + sizeof(tail) > sizeof(buf))
		return;
	memcpy(buf, r->in, len);
	memcpy(buf + len, tail, sizeof(tail) - 1);
	T_CHECK_INT(parse_guarded(R_PATH, buf, len + sizeof(tail) - 1, r->flags,
			&a, &used),
	    ADDR_OK);
	T_CHECK_INT(used, consumed);
	T_CHECK(addr_same(&a, whole));
}

static void
run_row(const struct row *r)
{
	size_t len = r->len ? r->len : strlen(r->in);
	size_t consumed, want_consumed = r->consumed ? r->consumed : len;
	struct addr a;
	enum addr_status st;

	t_case(r->name);
	st = parse_guarded(r->type, r->in, len, r->flags, &a, &consumed);
	T_CHECK_INT(st, r->want);
	if (st == ADDR_OK && r->want == ADDR_OK) {
		check_fields(r, &a);
		if (r->type == R_PATH) {
			T_CHECK_INT(consumed, want_consumed);
			check_format(r, &a);
			check_trailer(r, consumed, &a, consumed);
		}
	} else if (r->type == R_PATH) {
		T_CHECK_INT(consumed, 0);
	}
	check_cuts(r, len, &a, consumed);
}

static void
test_table(void)
{
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		run_row(&rows[i]);
}

/* ---- limits: each at exactly the limit and one over ---- */

static size_t
fill(char *p, char c, size_t n)
{
	memset(p, c, n);
	return n;
}

/* A domain of exactly nd octets: labels of up to 63 'd's joined by dots. */
static size_t
make_domain(char *buf, size_t nd)
{
	size_t o = 0, left = nd;

	while (left > 0) {
		size_t lab = left > 63 ? 63 : left;

		/* never leave a lone dot with nothing after it */
		if (left > 63 && left - 63 < 2)
			lab = left - 2;
		o += fill(buf + o, 'd', lab);
		left -= lab;
		if (left > 0) {
			buf[o++] = '.';
			left--;
		}
	}
	return o;
}

/* "<" + local of nl 'a's + "@" + domain of nd octets + ">" */
static size_t
make_path(char *buf, size_t nl, size_t nd)
{
	size_t o = 0;

	buf[o++] = '<';
	o += fill(buf + o, 'a', nl);
	buf[o++] = '@';
	o += make_domain(buf + o, nd);
	buf[o++] = '>';
	return o;
}

static void
limit_case(const char *name, const char *in, size_t len, enum row_type type,
    unsigned flags, enum addr_status want)
{
	struct addr a;
	size_t used;

	t_case(name);
	T_CHECK_INT(parse_guarded(type, in, len, flags, &a, &used), want);
	if (type == R_PATH && want == ADDR_OK)
		T_CHECK_INT(used, len);
}

static void
test_local_limits(void)
{
	char buf[600];
	size_t n;

	n = make_path(buf, 64, 5);
	limit_case("local 64", buf, n, R_PATH, 0, ADDR_OK);
	n = make_path(buf, 65, 5);
	limit_case("local 65", buf, n, R_PATH, 0, ADDR_ERR_LOCAL_LONG);
	/* quoted: 64 octets as sent, quotes included */
	n = make_path(buf, 64, 5);
	buf[1] = '"';
	buf[64] = '"';
	limit_case("quoted local 64", buf, n, R_PATH, 0, ADDR_OK);
	n = make_path(buf, 65, 5);
	buf[1] = '"';
	buf[65] = '"';
	limit_case("quoted local 65", buf, n, R_PATH, 0, ADDR_ERR_LOCAL_LONG);
	n = make_path(buf, 65, 5);
	limit_case("mailbox local 65", buf + 1, n - 2, R_MAILBOX, 0,
	    ADDR_ERR_LOCAL_LONG);
}

static void
test_domain_limits(void)
{
	char buf[600];
	size_t n;

	n = make_path(buf, 1, 252);
	limit_case(
	    "mailbox of 254 octets", buf + 1, n - 2, R_MAILBOX, 0, ADDR_OK);
	n = make_path(buf, 1, 253);
	limit_case("mailbox of 255 octets", buf + 1, n - 2, R_MAILBOX, 0,
	    ADDR_ERR_PATH_LONG);
	n = make_path(buf, 1, 255);
	/* 255 fits the domain but the mailbox cannot be a path */
	limit_case("mailbox domain 255", buf + 1, n - 2, R_MAILBOX, 0,
	    ADDR_ERR_PATH_LONG);
	limit_case("domain 255", buf + 3, n - 4, R_DOMAIN, 0, ADDR_OK);
	/* 255 fits the domain but not the 256-octet path around it */
	limit_case(
	    "path with domain 255", buf, n, R_PATH, 0, ADDR_ERR_PATH_LONG);
	n = make_path(buf, 1, 256);
	limit_case("mailbox domain 256", buf + 1, n - 2, R_MAILBOX, 0,
	    ADDR_ERR_DOMAIN_LONG);
	limit_case(
	    "domain 256", buf + 3, n - 4, R_DOMAIN, 0, ADDR_ERR_DOMAIN_LONG);
	limit_case(
	    "path with domain 256", buf, n, R_PATH, 0, ADDR_ERR_DOMAIN_LONG);
	n = fill(buf, 'e', 63);
	limit_case("label 63", buf, n, R_DOMAIN, 0, ADDR_OK);
	n = fill(buf, 'e', 64);
	limit_case("label 64", buf, n, R_DOMAIN, 0, ADDR_ERR_SYNTAX);
	n = fill(buf, 'e', 63);
	buf[n++] = '.';
	buf[n++] = 'x';
	limit_case("label 63 then more", buf, n, R_DOMAIN, 0, ADDR_OK);
}

static void
test_domain_out_small(void)
{
	char out[8];
	enum addr_domain_kind k;

	t_case("domain output too small");
	T_CHECK_INT(
	    addr_parse_domain("example.com", 11, 0, out, sizeof(out), &k),
	    ADDR_ERR_DOMAIN_LONG);
	T_CHECK_INT(
	    addr_parse_domain("[192.0.2.1]", 11, 0, out, sizeof(out), &k),
	    ADDR_ERR_DOMAIN_LONG);
	T_CHECK_INT(
	    addr_parse_domain("example", 7, 0, out, sizeof(out), &k), ADDR_OK);
	T_CHECK_STR(out, "example");
	t_case("domain check only");
	T_CHECK_INT(
	    addr_parse_domain("Example.com", 11, 0, NULL, 0, NULL), ADDR_OK);
}

static void
test_path_limits(void)
{
	char buf[600];
	size_t n;

	/* 1 + 64 + 1 + 189 + 1 = 256 */
	n = make_path(buf, 64, 189);
	limit_case("path 256", buf, n, R_PATH, 0, ADDR_OK);
	n = make_path(buf, 64, 190);
	limit_case("path 257", buf, n, R_PATH, 0, ADDR_ERR_PATH_LONG);
	/* the source route counts: "<@b:" + 64 + "@" + 186 + ">" = 256 */
	n = make_path(buf + 3, 64, 186);
	memcpy(buf, "<@b:", 4);
	limit_case("path 256 with route", buf, n + 3, R_PATH, 0, ADDR_OK);
	n = make_path(buf + 3, 64, 187);
	memcpy(buf, "<@b:", 4);
	limit_case(
	    "path 257 with route", buf, n + 3, R_PATH, 0, ADDR_ERR_PATH_LONG);
	/* a route hop is a domain with the same 255-octet limit */
	memcpy(buf, "<@", 2);
	n = 2 + make_domain(buf + 2, 256);
	memcpy(buf + n, ":a@b>", 5);
	limit_case(
	    "route domain 256", buf, n + 5, R_PATH, 0, ADDR_ERR_DOMAIN_LONG);
	n = 2 + make_domain(buf + 2, 245);
	memcpy(buf + n, ":a@b>", 5);
	limit_case(
	    "route domain 245, path 252", buf, n + 5, R_PATH, 0, ADDR_OK);
}

static void
test_format(void)
{
	struct addr a;
	char out[300];

	t_case("format quotes what needs it");
	memset(&a, 0, sizeof(a));
	memcpy(a.local, "a\"b", 4);
	memcpy(a.domain, "x", 2);
	a.kind = K_NAME;
	T_CHECK_INT(addr_format(&a, out, sizeof(out)), 8);
	T_CHECK_STR(out, "\"a\\\"b\"@x");
	T_CHECK_INT(addr_format(&a, out, 0), -1);
	t_case("format refuses control bytes");
	memcpy(a.local, "a\nb", 4);
	T_CHECK_INT(addr_format(&a, out, sizeof(out)), -1);
	t_case("format of null path");
	memset(&a, 0, sizeof(a));
	a.null = true;
	T_CHECK_INT(addr_format(&a, out, 1), 0);
	T_CHECK_STR(out, "");
	T_CHECK_INT(addr_format(&a, out, 0), -1);
}

static void
test_misc(void)
{
	struct addr a;
	size_t used;

	t_case("is_postmaster");
	T_CHECK_INT(
	    addr_parse_path("<PostMaster@x>", 14, 0, &a, &used), ADDR_OK);
	T_CHECK(addr_is_postmaster(&a));
	T_CHECK_INT(addr_parse_path("<postmaster>", 12, P, &a, &used), ADDR_OK);
	T_CHECK(addr_is_postmaster(&a));
	T_CHECK_INT(
	    addr_parse_path("<postmasters@x>", 15, 0, &a, &used), ADDR_OK);
	T_CHECK(!addr_is_postmaster(&a));
	T_CHECK_INT(addr_parse_path("<>", 2, N, &a, &used), ADDR_OK);
	T_CHECK(!addr_is_postmaster(&a));
	t_case("strerror");
	T_CHECK_STR(addr_strerror(ADDR_ERR_LOCAL_LONG),
	    "local part longer than 64 octets");
	T_CHECK_STR(addr_strerror(ADDR_ERR_DOMAIN_LONG),
	    "domain longer than 255 octets");
	T_CHECK_STR(
	    addr_strerror(ADDR_ERR_PATH_LONG), "path longer than 256 octets");
	T_CHECK(addr_strerror(ADDR_ERR_SYNTAX)[0] != '\0');
	T_CHECK(addr_strerror(ADDR_ERR_UTF8)[0] != '\0');
	T_CHECK(addr_strerror((enum addr_status)99)[0] != '\0');
	t_case("consumed may be NULL");
	T_CHECK_INT(addr_parse_path("<a@b>", 5, 0, &a, NULL), ADDR_OK);
}

int
main(void)
{
	test_table();
	test_local_limits();
	test_domain_limits();
	test_domain_out_small();
	test_path_limits();
	test_format();
	test_misc();
	return t_summary();
}
