/*
 * test_milter: the milter codec (src/milter/milter.c): every packet the
 * MTA sends, byte for byte, and a table of replies a milter may send,
 * well-formed and broken, each parsed whole and at every split.
 */
#include "milter/milter.h"
#include "t.h"

/* a packet as the test writes it: the command and data, framed here */
static size_t
frame(uint8_t *out, size_t cap, const char *data, size_t n)
{
	if (n + 4 > cap)
		abort();
	out[0] = (uint8_t)(n >> 24);
	out[1] = (uint8_t)(n >> 16);
	out[2] = (uint8_t)(n >> 8);
	out[3] = (uint8_t)n;
	memcpy(out + 4, data, n);
	return n + 4;
}

static bool
same(const struct buf *b, const char *want, size_t n)
{
	uint8_t f[512];
	size_t fl = frame(f, sizeof(f), want, n);

	return b->len == fl && memcmp(b->data, f, fl) == 0;
}

#define SAME(b, lit) same(b, lit, sizeof(lit) - 1)

static void
test_encode(void)
{
	struct buf b;
	const char *args[] = {"SIZE=100", "BODY=8BITMIME"};
	const struct milter_macro m[] = {
	    {"i", "Q1"}, {"{auth_authen}", NULL}, {"{client_addr}", "::1"}};
	char big[MILTER_CHUNK + 1];

	buf_init(&b, 1 << 20);
	t_case("optneg");
	T_CHECK(milter_enc_optneg(&b, 0x1ff, 0x400) == 0);
	T_CHECK(SAME(&b, "O\0\0\0\6\0\0\1\xff\0\0\4\0"));
	buf_reset(&b);
	t_case("connect inet");
	T_CHECK(
	    milter_enc_connect(&b, "mx.example", '4', 2525, "192.0.2.1") == 0);
	T_CHECK(SAME(&b, "Cmx.example\0"
			 "4\x09\xdd"
			 "192.0.2.1\0"));
	buf_reset(&b);
	t_case("connect unknown family");
	T_CHECK(milter_enc_connect(&b, "h", 'U', 0, "") == 0);
	T_CHECK(SAME(&b, "Ch\0U"));
	buf_reset(&b);
	t_case("connect bad family");
	T_CHECK(milter_enc_connect(&b, "h", 'x', 0, "") == -1);
	T_CHECK(b.len == 0);
	t_case("helo");
	T_CHECK(milter_enc_helo(&b, "client.example") == 0);
	T_CHECK(SAME(&b, "Hclient.example\0"));
	buf_reset(&b);
	t_case("mail with args");
	T_CHECK(milter_enc_mail(&b, "a@b.example", args, 2) == 0);
	T_CHECK(SAME(&b, "M<a@b.example>\0SIZE=100\0BODY=8BITMIME\0"));
	buf_reset(&b);
	t_case("null sender");
	T_CHECK(milter_enc_mail(&b, "", NULL, 0) == 0);
	T_CHECK(SAME(&b, "M<>\0"));
	buf_reset(&b);
	t_case("rcpt");
	T_CHECK(milter_enc_rcpt(&b, "c@d.example", NULL, 0) == 0);
	T_CHECK(SAME(&b, "R<c@d.example>\0"));
	buf_reset(&b);
	t_case("header");
	T_CHECK(milter_enc_header(&b, "Subject", 7, "hi\n\tthere", 9) == 0);
	T_CHECK(SAME(&b, "LSubject\0hi\n\tthere\0"));
	buf_reset(&b);
	t_case("header with NUL refused, nothing left behind");
	T_CHECK(milter_enc_header(&b, "X", 1, "a\0b", 3) == -1);
	T_CHECK(b.len == 0);
	t_case("header with empty name refused");
	T_CHECK(milter_enc_header(&b, "", 0, "v", 1) == -1);
	t_case("body");
	T_CHECK(milter_enc_body(&b, "x\0y\r\n", 5) == 0);
	T_CHECK(SAME(&b, "Bx\0y\r\n"));
	buf_reset(&b);
	t_case("body chunk bound");
	memset(big, 'a', sizeof(big));
	T_CHECK(milter_enc_body(&b, big, MILTER_CHUNK + 1) == -1);
	T_CHECK(b.len == 0);
	T_CHECK(milter_enc_body(&b, big, MILTER_CHUNK) == 0);
	T_CHECK(b.len == MILTER_CHUNK + 5 && b.data[2] == '\0' &&
		b.data[3] == '\0' && b.data[1] == '\1'); /* 65536 */
	buf_reset(&b);
	t_case("simple commands");
	T_CHECK(milter_enc_simple(&b, MILTER_C_EOM) == 0);
	T_CHECK(SAME(&b, "E"));
	buf_reset(&b);
	T_CHECK(milter_enc_simple(&b, MILTER_C_HELO) == -1);
	T_CHECK(b.len == 0);
	t_case("macro skips unknown values");
	T_CHECK(milter_enc_macro(&b, MILTER_C_MAIL, m, 3) == 0);
	T_CHECK(SAME(&b, "DMi\0Q1\0{client_addr}\0::1\0"));
	buf_reset(&b);
	t_case("buffer bound: nothing half written");
	buf_free(&b);
	buf_init(&b, 8);
	T_CHECK(milter_enc_helo(&b, "a-long-helo-name") == -1);
	T_CHECK(b.len == 0);
	T_CHECK(milter_enc_simple(&b, MILTER_C_QUIT) == 0 && b.len == 5);
	buf_free(&b);
}

struct reply_case {
	const char *name;
	const char *data; /* command and data, framed by the test */
	size_t len;
	int rc;
	char cmd;
	const char *text, *name_, *value, *args;
	uint32_t index;
	int code;
};

#define R(n, lit, r, c)                                                        \
	.name = n, .data = lit, .len = sizeof(lit) - 1, .rc = r, .cmd = c

static const struct reply_case reply_cases[] = {
    {R("accept", "a", 1, 'a')},
    {R("continue", "c", 1, 'c')},
    {R("discard", "d", 1, 'd')},
    {R("reject", "r", 1, 'r')},
    {R("tempfail", "t", 1, 't')},
    {R("skip", "s", 1, 's')},
    {R("progress", "p", 1, 'p')},
    {R("accept with data", "ax", -1, 0)},
    {R("replycode", "y550 5.7.1 go away\0", 1, 'y'), "550 5.7.1 go away",
	.code = 550},
    {R("replycode 4xx multi", "y451-4.7.1 a\r\n451 4.7.1 b\0", 1, 'y'),
	"451-4.7.1 a\r\n451 4.7.1 b", .code = 451},
    {R("replycode bare", "y421\0", 1, 'y'), "421", .code = 421},
    {R("replycode 2xx", "y250 ok\0", -1, 0)},
    {R("replycode no nul", "y550 x", -1, 0)},
    {R("replycode junk after", "y550 x\0z", -1, 0)},
    {R("replycode letters", "y5x0 x\0", -1, 0)},
    {R("replycode no space", "y5500\0", -1, 0)},
    {R("quarantine", "qspam\0", 1, 'q'), "spam"},
    {R("addheader", "hX-Spam\0yes\0", 1, 'h'), .name_ = "X-Spam",
	.value = "yes"},
    {R("addheader empty name", "h\0yes\0", -1, 0)},
    {R("addheader no value", "hX\0", -1, 0)},
    {R("chgheader", "m\0\0\0\2Subject\0new\0", 1, 'm'), .name_ = "Subject",
	.value = "new", .index = 2},
    {R("chgheader delete", "m\0\0\0\1X\0\0", 1, 'm'), .name_ = "X", .value = "",
	.index = 1},
    {R("chgheader short index", "m\0\0", -1, 0)},
    {R("insheader", "i\0\0\0\0X-A\0b\0", 1, 'i'), .name_ = "X-A", .value = "b",
	.index = 0},
    {R("delrcpt", "-<a@b>\0", 1, '-'), "<a@b>"},
    {R("addrcpt", "+c@d\0", 1, '+'), "c@d"},
    {R("addrcpt extra", "+c@d\0e\0", -1, 0)},
    {R("addrcpt_par", "2c@d\0NOTIFY=NEVER\0", 1, '2'), "c@d",
	.args = "NOTIFY=NEVER"},
    {R("addrcpt_par no args", "2c@d\0", 1, '2'), "c@d", .args = ""},
    {R("chgfrom", "e<x@y>\0", 1, 'e'), "<x@y>", .args = ""},
    {R("chgfrom args", "e<x@y>\0SIZE=1\0", 1, 'e'), "<x@y>", .args = "SIZE=1"},
    {R("chgfrom unterminated args", "e<x@y>\0SIZE", -1, 0)},
    {R("replbody", "bnew\0body\r\n", 1, 'b'), .text = "new\0body\r\n"},
    {R("replbody empty", "b", 1, 'b'), .text = ""},
    {R("optneg", "O\0\0\0\6\0\0\0\x21\0\0\0\x80", 1, 'O')},
    {R("optneg with macros", "O\0\0\0\6\0\0\0\1\0\0\0\0\0\0\0\2{x}\0", 1, 'O')},
    {R("optneg short", "O\0\0\0\6\0\0", -1, 0)},
    {R("unknown", "Z", -1, 0)},
    {R("shutdown not taken", "4", -1, 0)},
};

static void
check_reply(const struct reply_case *c, const struct milter_reply *r)
{
	T_CHECK(r->cmd == (enum milter_reply_cmd)c->cmd);
	if (c->text != NULL) {
		size_t tl = c->cmd == 'b' ? c->len - 1 : strlen(c->text);

		T_CHECK(
		    r->text.len == tl && memcmp(r->text.p, c->text, tl) == 0);
	}
	if (c->name_ != NULL)
		T_CHECK(r->name.len == strlen(c->name_) &&
			memcmp(r->name.p, c->name_, r->name.len) == 0);
	if (c->value != NULL)
		T_CHECK(r->value.len == strlen(c->value) &&
			memcmp(r->value.p, c->value, r->value.len) == 0);
	if (c->args != NULL)
		T_CHECK(r->args.len == strlen(c->args) &&
			(r->args.len == 0 ||
			    memcmp(r->args.p, c->args, r->args.len) == 0));
	T_CHECK(r->index == c->index);
	T_CHECK(r->code == c->code);
	if (c->cmd == 'O')
		T_CHECK(r->version == 6);
}

static void
test_replies(void)
{
	uint8_t pk[600];

	for (size_t i = 0; i < sizeof(reply_cases) / sizeof(reply_cases[0]);
	     i++) {
		const struct reply_case *c = &reply_cases[i];
		size_t n = frame(pk, sizeof(pk), c->data, c->len), used;
		struct milter_reply r;
		const uint8_t *g;
		void *map;
		size_t maplen;

		t_case(c->name);
		/* the packet right before an unreadable page */
		g = (const uint8_t *)t_guard(pk, n, &map, &maplen);
		T_CHECK_INT(milter_reply_parse(g, n, &r, &used), c->rc);
		if (c->rc == 1) {
			T_CHECK(used == n);
			check_reply(c, &r);
		}
		t_unguard(map, maplen);
		/* every shorter prefix asks for more, never errs or reads
		 * past it */
		for (size_t k = 0; k < n; k++) {
			const uint8_t *gk =
			    (const uint8_t *)t_guard(pk, k, &map, &maplen);

			T_CHECK_INT(milter_reply_parse(gk, k, &r, &used), 0);
			t_unguard(map, maplen);
		}
	}
}

static void
test_lengths(void)
{
	uint8_t p[16] = {0};
	struct milter_reply r;
	size_t used;

	t_case("zero length");
	T_CHECK_INT(milter_reply_parse(p, 8, &r, &used), -1);
	t_case("too long");
	p[0] = 0x00;
	p[1] = 0x10;
	p[2] = 0x00;
	p[3] = 0x02; /* 1 MiB + 2 */
	p[4] = 'b';
	T_CHECK_INT(milter_reply_parse(p, 8, &r, &used), -1);
	t_case("largest taken length waits for its data");
	p[3] = 0x01;
	T_CHECK_INT(milter_reply_parse(p, 8, &r, &used), 0);
	t_case("two packets: one at a time");
	memcpy(p, "\0\0\0\1c\0\0\0\1a", 10);
	T_CHECK_INT(milter_reply_parse(p, 10, &r, &used), 1);
	T_CHECK(used == 5 && r.cmd == MILTER_R_CONTINUE);
	T_CHECK_INT(milter_reply_parse(p + 5, 5, &r, &used), 1);
	T_CHECK(r.cmd == MILTER_R_ACCEPT);
	t_case("names");
	T_CHECK_STR(milter_reply_name(MILTER_R_CHGHEADER), "chgheader");
	T_CHECK_STR(milter_reply_name((enum milter_reply_cmd)'Z'), "unknown");
}

static void
test_headers(void)
{
	static const char msg[] = "Subject: a\r\n\tfolded\r\n"
				  "X-A:b\r\n"
				  "Bad line\r\n";
	static const char m2[] = "From: x\r\n\r\nbody\r\n";
	struct milter_hdr h;
	size_t off = 0;
	struct buf v;

	buf_init(&v, 1024);
	t_case("folded field, value as sent");
	T_CHECK(milter_header_next(msg, sizeof(msg) - 1, &off, &h));
	T_CHECK(h.namelen == 7 && memcmp(h.name, "Subject", 7) == 0);
	T_CHECK(h.fieldlen == 21);
	T_CHECK(milter_header_value(&h, &v) == 0);
	T_CHECK_STR(v.data, "a\n\tfolded");
	t_case("no space after the colon");
	T_CHECK(milter_header_next(msg, sizeof(msg) - 1, &off, &h));
	buf_reset(&v);
	T_CHECK(milter_header_value(&h, &v) == 0);
	T_CHECK_STR(v.data, "b");
	t_case("a line without a colon ends the header");
	T_CHECK(!milter_header_next(msg, sizeof(msg) - 1, &off, &h));
	t_case("blank line ends it, off at it");
	off = 0;
	T_CHECK(milter_header_next(m2, sizeof(m2) - 1, &off, &h));
	T_CHECK(!milter_header_next(m2, sizeof(m2) - 1, &off, &h));
	T_CHECK(off == 9);
	buf_free(&v);
}

struct rw_case {
	const char *name, *in;
	struct milter_edit e[3];
	size_t n;
	const char *body, *want;
};

static void
test_rewrite(void)
{
	static const char in[] = "Subject: s1\r\nX-A: 1\r\nSubject: s2\r\n"
				 "\r\nbody\r\n";
	static const struct rw_case rows[] = {
	    {"nothing", in, {{0}}, 0, NULL, in},
	    {"add at the end", in, {{MILTER_EDIT_ADD, 0, "X-New", "v\nw"}}, 1,
		NULL,
		"Subject: s1\r\nX-A: 1\r\nSubject: s2\r\nX-New: v\r\nw\r\n"
		"\r\nbody\r\n"},
	    {"insert at the top", in, {{MILTER_EDIT_INSERT, 0, "X-Top", "t"}},
		1, NULL,
		"X-Top: t\r\nSubject: s1\r\nX-A: 1\r\nSubject: s2\r\n\r\n"
		"body\r\n"},
	    {"insert past the end", in,
		{{MILTER_EDIT_INSERT, 99, "X-Top", "t"}}, 1, NULL,
		"Subject: s1\r\nX-A: 1\r\nSubject: s2\r\nX-Top: t\r\n\r\n"
		"body\r\n"},
	    {"change the second of a name", in,
		{{MILTER_EDIT_CHANGE, 2, "subject", "new"}}, 1, NULL,
		"Subject: s1\r\nX-A: 1\r\nsubject: new\r\n\r\nbody\r\n"},
	    {"delete", in, {{MILTER_EDIT_CHANGE, 1, "X-A", ""}}, 1, NULL,
		"Subject: s1\r\nSubject: s2\r\n\r\nbody\r\n"},
	    {"change a missing one adds it", in,
		{{MILTER_EDIT_CHANGE, 3, "Subject", "s3"}}, 1, NULL,
		"Subject: s1\r\nX-A: 1\r\nSubject: s2\r\nSubject: s3\r\n\r\n"
		"body\r\n"},
	    {"delete a missing one", in,
		{{MILTER_EDIT_CHANGE, 1, "X-None", ""}}, 1, NULL, in},
	    {"edits in order", in,
		{{MILTER_EDIT_ADD, 0, "X-B", "1"},
		    {MILTER_EDIT_CHANGE, 1, "X-B", ""},
		    {MILTER_EDIT_INSERT, 1, "X-C", "2"}},
		3, NULL,
		"Subject: s1\r\nX-C: 2\r\nX-A: 1\r\nSubject: s2\r\n\r\n"
		"body\r\n"},
	    {"body replaced, bare LF made CRLF", in, {{0}}, 0, "a\nb\r\nc",
		"Subject: s1\r\nX-A: 1\r\nSubject: s2\r\n\r\na\r\nb\r\nc"},
	    {"no body, no blank line", "A: 1\r\n", {{0}}, 0, NULL,
		"A: 1\r\n\r\n"},
	    {"last field without line end", "A: 1",
		{{MILTER_EDIT_ADD, 0, "B", "2"}}, 1, NULL,
		"A: 1\r\nB: 2\r\n\r\n"},
	};
	struct buf out;

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct rw_case *r = &rows[i];
		struct milter_edit e[3];

		t_case(r->name);
		memcpy(e, r->e, sizeof(e));
		buf_init(&out, 4096);
		T_CHECK(milter_rewrite(r->in, strlen(r->in), e, r->n, r->body,
			    r->body ? strlen(r->body) : 0, &out) == 0);
		T_CHECK_STR(out.data != NULL ? out.data : "", r->want);
		buf_free(&out);
	}
	t_case("bounded output");
	buf_init(&out, 10);
	T_CHECK(
	    milter_rewrite(in, sizeof(in) - 1, NULL, 0, NULL, 0, &out) == -1);
	buf_free(&out);
}

static void
test_spec(void)
{
	struct milter_spec s;

	t_case("inet v4");
	T_CHECK(milter_parse_spec("inet:127.0.0.1:11332", 20, &s) == 0);
	T_CHECK(!s.unix_path && s.port == 11332);
	T_CHECK_STR(s.host, "127.0.0.1");
	t_case("inet v6 in brackets");
	T_CHECK(milter_parse_spec("inet:[::1]:25", 13, &s) == 0);
	T_CHECK_STR(s.host, "::1");
	t_case("unix");
	T_CHECK(milter_parse_spec("unix:/run/m", 11, &s) == 0);
	T_CHECK(s.unix_path);
	T_CHECK_STR(s.host, "/run/m");
	t_case("refused");
	T_CHECK(milter_parse_spec("inet:h:", 7, &s) == -1);
	T_CHECK(milter_parse_spec("inet:h:123456", 13, &s) == -1);
	T_CHECK(milter_parse_spec("inet::25", 8, &s) == -1);
	T_CHECK(milter_parse_spec("unix:", 5, &s) == -1);
	T_CHECK(milter_parse_spec("tcp:h:1", 7, &s) == -1);
	T_CHECK(milter_parse_spec("inet:a b:1", 10, &s) == -1);
}

int
main(void)
{
	T_RUN(test_encode);
	T_RUN(test_replies);
	T_RUN(test_lengths);
	T_RUN(test_headers);
	T_RUN(test_rewrite);
	T_RUN(test_spec);
	return t_summary();
}
