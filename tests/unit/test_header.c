/*
 * Unit tests for src/addr/header.c: end of the header section, fields with
 * folding, lookup, unfolding and RFC 5322 address lists, table-driven.
 *
 * The scanners take one complete buffer (a message is in memory whole), so
 * "whole, byte by byte, random splits" becomes: each input is run whole on
 * a t_guard() copy (a one-byte over-read faults), then on every prefix and
 * on random prefixes, where properties that must hold for any input are
 * checked (views inside the buffer, the header end within the prefix, the
 * address count never above ADDR_LIST_MAX).
 */
#include "t.h"
#include "addr/addr.h"

/* ---- end of the header section --------------------------------------- */

struct end_row {
	const char *name;
	const char *in;
	size_t end;
	size_t body;
};

static const struct end_row end_rows[] = {
    {"empty message", "", 0, 0},
    {"only empty line", "\r\n", 0, 2},
    {"one field, body", "A: b\r\n\r\nbody\r\n", 6, 8},
    {"no body, no empty line", "A: b\r\nC: d\r\n", 12, 12},
    {"no final line end", "A: b", 4, 4},
    {"bare LF", "A: b\n\nbody\n", 5, 6},
    {"mixed line ends", "A: b\r\nC: d\n\r\nx", 11, 13},
    {"blank-only line is a fold", "A: b\r\n \r\nC: d\r\n\r\n", 15, 17},
    {"empty line first", "\r\nA: b\r\n", 0, 2},
    {"CR CR LF is not empty", "A: b\r\n\r\r\nx\r\n\r\n", 12, 14},
    {"empty line at very end", "A: b\r\n\r\n", 6, 8},
    {"lone CR at end", "A: b\r\n\r", 7, 7},
};

static void
check_end_prefixes(const char *in, size_t len)
{
	size_t k, body;

	for (k = 0; k <= len; k++) {
		void *map;
		size_t maplen;
		const char *g = t_guard(in, k, &map, &maplen);
		size_t e = addr_hdr_end(g, k, &body);

		T_CHECK(e <= body && body <= k);
		t_unguard(map, maplen);
	}
}

static void
test_end(void)
{
	size_t i;

	for (i = 0; i < sizeof(end_rows) / sizeof(end_rows[0]); i++) {
		const struct end_row *r = &end_rows[i];
		size_t len = strlen(r->in), body = 99, maplen;
		void *map;
		const char *g = t_guard(r->in, len, &map, &maplen);

		t_case(r->name);
		T_CHECK_INT(addr_hdr_end(g, len, &body), r->end);
		T_CHECK_INT(body, r->body);
		T_CHECK_INT(addr_hdr_end(g, len, NULL), r->end);
		t_unguard(map, maplen);
		check_end_prefixes(r->in, len);
	}
}

/* ---- fields ------------------------------------------------------------ */

/*
 * want: one "name|value|bad" entry per field, joined by '\n'; the value is
 * given unfolded; name is empty for a line without a name.
 */
struct field_row {
	const char *name;
	const char *in;
	const char *want;
	size_t longest;
	size_t len;	 /* of in; 0: strlen(in) */
	size_t want_len; /* of want; 0: strlen(want) */
};

static const struct field_row field_rows[] = {
    {"simple", "From: a@b\r\nTo: c@d\r\n\r\nbody: x\r\n",
	"From|a@b|0\nTo|c@d|0\n", 9, 0, 0},
    {"folded", "Subject: one\r\n two\r\n\tthree\r\nX: y\r\n\r\n",
	"Subject|one two\tthree|0\nX|y|0\n", 12, 0, 0},
    {"value trimmed", "A:   v  \r\nB:\r\n\r\n", "A|v|0\nB||0\n", 8, 0, 0},
    {"fold before value", "To:\r\n a@b\r\n\r\n", "To|a@b|0\n", 4, 0, 0},
    {"blank before colon (obs)", "Subject \t: x\r\n\r\n", "Subject|x|0\n", 12,
	0, 0},
    {"no colon", "From me Mon Jan 1\r\nA: b\r\n\r\n",
	"|From me Mon Jan 1|1\nA|b|0\n", 17, 0, 0},
    {"space in name", "Bad Name: x\r\n\r\n", "|Bad Name: x|1\n", 11, 0, 0},
    {"empty name", ": x\r\n\r\n", "|: x|1\n", 3, 0, 0},
    {"leading continuation", " lost\r\nA: b\r\n\r\n", "|lost|1\nA|b|0\n", 5, 0,
	0},
    {"bare LF flagged", "A: b\nC: d\r\n\n", "A|b|8\nC|d|0\n", 4, 0, 0},
    {"CR inside line", "A: b\rc\r\n\r\n", "A|bc|8\n", 6, 0, 0},
    {"NUL", "A: b\0c\r\n\r\n", "A|b\0c|16\n", 6, 10, 9},
    {"no final line end", "A: b\r\nC: d", "A|b|0\nC|d|0\n", 4, 0, 0},
    {"only body", "\r\nA: b\r\n", "", 0, 0, 0},
    {"colon in value", "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n",
	"Date|Mon, 1 Jan 2024 10:00:00 +0000|0\n", 36, 0, 0},
    {"8-bit value kept", "Subject: caf\xc3\xa9\r\n\r\n",
	"Subject|caf\xc3\xa9|0\n", 14, 0, 0},
};

/* Render the fields of in[0..len) as in field_row.want. */
static size_t
render_fields(
    const char *g, size_t len, char *out, size_t outlen, size_t *longest_out)
{
	struct addr_hdr_scan s;
	struct addr_hdr_field f;
	char v[256];
	size_t o = 0;
	int n;

	addr_hdr_scan_init(&s, g, len);
	while (addr_hdr_next(&s, &f)) {
		T_CHECK(
		    f.off + f.raw_len <= s.end + 2 && f.off + f.raw_len <= len);
		T_CHECK(
		    f.value >= g + f.off && f.value + f.value_len <= g + len);
		n = addr_hdr_unfold(f.value, f.value_len, v, sizeof(v));
		if (n < 0 || o + f.name_len + (size_t)n + 16 >= outlen)
			return (size_t)-1;
		memcpy(out + o, f.name ? f.name : "", f.name_len);
		o += f.name_len;
		out[o++] = '|';
		memcpy(out + o, v, (size_t)n);
		o += (size_t)n;
		o += (size_t)snprintf(out + o, outlen - o, "|%u\n", f.bad);
	}
	*longest_out = s.longest;
	return o;
}

static void
test_fields(void)
{
	size_t i;

	for (i = 0; i < sizeof(field_rows) / sizeof(field_rows[0]); i++) {
		const struct field_row *r = &field_rows[i];
		size_t len = r->len ? r->len : strlen(r->in);
		size_t wl = r->want_len ? r->want_len : strlen(r->want);
		size_t maplen, longest = 0, n;
		char out[1024];
		void *map;
		const char *g = t_guard(r->in, len, &map, &maplen);

		t_case(r->name);
		n = render_fields(g, len, out, sizeof(out), &longest);
		T_CHECK(n != (size_t)-1);
		if (n != (size_t)-1) {
			T_CHECK_INT(n, wl);
			T_CHECK(n == wl && memcmp(out, r->want, n) == 0);
		}
		T_CHECK_INT(longest, r->longest);
		t_unguard(map, maplen);
	}
}

/* Every prefix of every field input scans without over-reading. */
static void
test_field_prefixes(void)
{
	size_t i, k;

	for (i = 0; i < sizeof(field_rows) / sizeof(field_rows[0]); i++) {
		const struct field_row *r = &field_rows[i];
		size_t len = r->len ? r->len : strlen(r->in);

		t_case(r->name);
		for (k = 0; k <= len; k++) {
			char out[1024];
			size_t maplen, longest;
			void *map;
			const char *g = t_guard(r->in, k, &map, &maplen);

			(void)render_fields(g, k, out, sizeof(out), &longest);
			T_CHECK(longest <= k);
			t_unguard(map, maplen);
		}
	}
}

static void
test_limits(void)
{
	static char big[ADDR_HDR_FIELD_MAX + 2000];
	struct addr_hdr_scan s;
	struct addr_hdr_field f;
	size_t i, n = 0;

	t_case("line of 998 is fine, 999 is flagged");
	n = 0;
	memcpy(big, "A: ", 3);
	n = 3;
	memset(big + n, 'x', ADDR_HDR_LINE_MAX - 3);
	n = ADDR_HDR_LINE_MAX;
	memcpy(big + n, "\r\nB: ", 5);
	n += 5;
	memset(big + n, 'y', ADDR_HDR_LINE_MAX - 2);
	n += ADDR_HDR_LINE_MAX - 2;
	memcpy(big + n, "\r\n\r\n", 4);
	n += 4;
	addr_hdr_scan_init(&s, big, n);
	T_CHECK(addr_hdr_next(&s, &f) && f.bad == 0);
	T_CHECK(addr_hdr_next(&s, &f) && f.bad == ADDR_HDR_BAD_LINE);
	T_CHECK(!addr_hdr_next(&s, &f));
	T_CHECK_INT(s.longest, ADDR_HDR_LINE_MAX + 1);
	T_CHECK_INT(s.bad, ADDR_HDR_BAD_LINE);

	t_case("field over 64 KiB is flagged, not cut");
	n = 0;
	memcpy(big, "To: a@b", 7);
	n = 7;
	while (n < ADDR_HDR_FIELD_MAX + 100) {
		memcpy(big + n, ",\r\n c@d", 7);
		n += 7;
	}
	memcpy(big + n, "\r\n\r\n", 4);
	n += 4;
	addr_hdr_scan_init(&s, big, n);
	T_CHECK(addr_hdr_next(&s, &f));
	T_CHECK(f.bad == ADDR_HDR_BAD_LONG);
	T_CHECK_INT(f.raw_len, n - 2);
	for (i = 0; i < 1; i++) {
		struct addr_list l;
		struct addr a;

		addr_list_init(&l, f.value, f.value_len, 0);
		T_CHECK_INT(addr_list_next(&l, &a), ADDR_LIST_LONG);
		T_CHECK_INT(addr_list_next(&l, &a), ADDR_LIST_LONG);
	}
}

/* ---- lookup and unfolding -------------------------------------------- */

static void
test_find(void)
{
	static const char msg[] =
	    "Received: from x\r\n by y\r\nmessage-id: <1@x>\r\n"
	    "DATE: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
	    "Message-ID: <2@x>\r\n\r\nDate: not a header\r\n";
	static const char bad[] = "Date : x\r\nDated: y\r\nDat: z\r\n\r\n";
	struct addr_hdr_field f;
	size_t maplen;
	void *map;
	const char *g = t_guard(msg, sizeof(msg) - 1, &map, &maplen);

	t_case("find first, any case");
	T_CHECK(addr_hdr_find(g, sizeof(msg) - 1, "Message-ID", &f));
	T_CHECK(f.value_len == 5 && memcmp(f.value, "<1@x>", 5) == 0);
	T_CHECK(addr_hdr_find(g, sizeof(msg) - 1, "date", &f));
	T_CHECK(f.value_len == 30);
	T_CHECK(addr_hdr_name_is(&f, "Date") && !addr_hdr_name_is(&f, "Dat"));
	t_case("body is not searched");
	T_CHECK(!addr_hdr_find(g, sizeof(msg) - 1, "Subject", &f));
	T_CHECK(addr_hdr_find(g, sizeof(msg) - 1, "received", &f));
	T_CHECK(
	    f.value_len == 13 && memcmp(f.value, "from x\r\n by y", 13) == 0);
	t_unguard(map, maplen);

	t_case("exact name length");
	T_CHECK(addr_hdr_find(bad, sizeof(bad) - 1, "Date", &f));
	T_CHECK(f.value_len == 1 && f.value[0] == 'x');
	T_CHECK(addr_hdr_find(bad, sizeof(bad) - 1, "Dat", &f));
	T_CHECK(f.value_len == 1 && f.value[0] == 'z');
	T_CHECK(!addr_hdr_find(bad, sizeof(bad) - 1, "D", &f));
	T_CHECK(!addr_hdr_find("", 0, "Date", &f));
}

static void
test_unfold(void)
{
	char out[8];

	t_case("unfold");
	T_CHECK_INT(addr_hdr_unfold("a\r\n b\n\tc", 8, out, sizeof(out)), 5);
	T_CHECK_STR(out, "a b\tc");
	T_CHECK_INT(addr_hdr_unfold("1234567", 7, out, sizeof(out)), 7);
	T_CHECK_INT(addr_hdr_unfold("12345678", 8, out, sizeof(out)), -1);
	T_CHECK_INT(addr_hdr_unfold("", 0, out, sizeof(out)), 0);
	T_CHECK_STR(out, "");
	T_CHECK_INT(addr_hdr_unfold("a", 1, out, 0), -1);
}

/* ---- address lists ------------------------------------------------------ */

#define L ADDR_LIST_F_LOCAL
#define U ADDR_F_UTF8

/* want: the addresses as addr_format() gives them, each followed by ','. */
struct list_row {
	const char *name;
	const char *in;
	unsigned flags;
	const char *want;
	enum addr_list_status end;
};

static const struct list_row list_rows[] = {
    {"one bare", "a@b.example", 0, "a@b.example,", ADDR_LIST_END},
    {"name and angle", "Ann Smith <ann@x.example>", 0, "ann@x.example,",
	ADDR_LIST_END},
    {"several", "a@x, B <b@y>,c@z", 0, "a@x,b@y,c@z,", ADDR_LIST_END},
    {"quoted name with specials",
	"\"Smith, John <boss>\" <js@x>, \"a\\\"b\" <q@x>", 0, "js@x,q@x,",
	ADDR_LIST_END},
    {"comments", "(c1) a@x (c2 (nested) \\) ), b@y(tail)", 0, "a@x,b@y,",
	ADDR_LIST_END},
    {"comment inside addr-spec", "a(x)@(y)b.example", 0, "a@b.example,",
	ADDR_LIST_END},
    {"folded", "a@x,\r\n\tB\r\n <b@y>", 0, "a@x,b@y,", ADDR_LIST_END},
    {"bare-LF folded", "a@x,\n B <b@y>", 0, "a@x,b@y,", ADDR_LIST_END},
    {"undisclosed group", "undisclosed-recipients:;", 0, "", ADDR_LIST_END},
    {"group open at end", "undisclosed-recipients:", 0, "", ADDR_LIST_END},
    {"group members", "team: a@x, B <b@y>; c@z", 0, "a@x,b@y,c@z,",
	ADDR_LIST_END},
    {"group then comma", "g1: a@x;, g2:;, d@w", 0, "a@x,d@w,", ADDR_LIST_END},
    {"empty elements", ", ,a@x,,, b@y,", 0, "a@x,b@y,", ADDR_LIST_END},
    {"empty value", "", 0, "", ADDR_LIST_END},
    {"blanks only", " \r\n ", 0, "", ADDR_LIST_END},
    {"obs route", "<@r1.example,@r2.example:a@x>", 0, "a@x,", ADDR_LIST_END},
    {"obs phrase with dot", "John Q. Public <jqp@x>", 0, "jqp@x,",
	ADDR_LIST_END},
    {"empty display name", "<a@x>", 0, "a@x,", ADDR_LIST_END},
    {"encoded word name", "=?utf-8?q?J=C3=BCrgen?= <j@x>", 0, "j@x,",
	ADDR_LIST_END},
    {"quoted local part", "\"a b\"@x", 0, "\"a b\"@x,", ADDR_LIST_END},
    {"dotted local", "first.last@x", 0, "first.last@x,", ADDR_LIST_END},
    {"obs local with CFWS", "first . last @ x . example", 0,
	"first.last@x.example,", ADDR_LIST_END},
    {"domain literal", "a@[192.0.2.1]", 0, "a@[192.0.2.1],", ADDR_LIST_END},
    {"domain case lowered", "A@X.Example", 0, "A@x.example,", ADDR_LIST_END},
    {"utf8 with flag", "J\xc3\xbcrgen <j\xc3\xbc@x>", U, "j\xc3\xbc@x,",
	ADDR_LIST_END},
    {"utf8 name without flag", "J\xc3\xbcrgen <j@x>", 0, "j@x,", ADDR_LIST_END},
    {"utf8 address without flag", "<j\xc3\xbc@x>", 0, "", ADDR_LIST_ADDR},
    {"bare local with flag", "root, bob@x, Admin <admin>", L,
	"root@,bob@x,admin@,", ADDR_LIST_END},
    {"bare local in group", "g: root;", L, "root@,", ADDR_LIST_END},
    {"bare local without flag", "root", 0, "", ADDR_LIST_SYNTAX},
    {"two words local refused", "john smith", L, "", ADDR_LIST_SYNTAX},
    /* errors: addresses before the error come out */
    {"missing comma", "a@x b@y", 0, "", ADDR_LIST_SYNTAX},
    {"error after good", "a@x, <b@y", 0, "a@x,", ADDR_LIST_SYNTAX},
    {"unterminated quote", "\"abc <a@x>", 0, "", ADDR_LIST_SYNTAX},
    {"unterminated comment", "a@x (oops", 0, "", ADDR_LIST_SYNTAX},
    {"stray close paren", "a@x)", 0, "", ADDR_LIST_SYNTAX},
    {"empty angle", "<>", 0, "", ADDR_LIST_SYNTAX},
    {"nested group", "g: h: a@x;;", 0, "", ADDR_LIST_SYNTAX},
    {"nameless group", ": a@x;", 0, "", ADDR_LIST_SYNTAX},
    {"semicolon outside group", "a@x; b@y", 0, "", ADDR_LIST_SYNTAX},
    {"no domain", "a@", 0, "", ADDR_LIST_SYNTAX},
    {"no local", "@x", 0, "", ADDR_LIST_SYNTAX},
    {"two ats", "a@b@c", 0, "", ADDR_LIST_SYNTAX},
    {"double dot", "a..b@x", 0, "", ADDR_LIST_SYNTAX},
    {"bad domain", "a@-x", 0, "", ADDR_LIST_ADDR},
    {"angle inside angle", "<<a@x>>", 0, "", ADDR_LIST_SYNTAX},
    {"unclosed angle then comma", "A <a@x, b@y", 0, "", ADDR_LIST_SYNTAX},
    {"control byte", "a\x01@x", 0, "", ADDR_LIST_SYNTAX},
    {"NUL in name", "N\x01 <a@x>", 0, "", ADDR_LIST_SYNTAX},
    {"quoted then atom local", "\"a\".b@x", 0, "", ADDR_LIST_ADDR},
    {"long local",
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	"aaaaa@x",
	0, "", ADDR_LIST_ADDR},
};

/* Run a list; render what comes out; return the final status. */
static enum addr_list_status
run_list(const char *g, size_t len, unsigned flags, char *out, size_t outlen,
    unsigned *count_out)
{
	struct addr_list l;
	struct addr a;
	enum addr_list_status st;
	size_t o = 0;
	unsigned count = 0;

	out[0] = '\0';
	addr_list_init(&l, g, len, flags);
	while ((st = addr_list_next(&l, &a)) == ADDR_LIST_OK) {
		char f[ADDR_PATH_MAX + 2];
		int n = addr_format(&a, f, sizeof(f));

		count++;
		if (n < 0 || o + (size_t)n + 2 > outlen)
			continue;
		memcpy(out + o, f, (size_t)n);
		o += (size_t)n;
		out[o++] = ',';
		out[o] = '\0';
	}
	T_CHECK(addr_list_next(&l, &a) == st); /* sticky */
	T_CHECK(l.count == count && count <= ADDR_LIST_MAX);
	T_CHECK(st == ADDR_LIST_END || l.err_pos <= len);
	*count_out = count;
	return st;
}

static void
test_lists(void)
{
	size_t i, k;

	for (i = 0; i < sizeof(list_rows) / sizeof(list_rows[0]); i++) {
		const struct list_row *r = &list_rows[i];
		size_t len = strlen(r->in), maplen;
		char out[4096];
		unsigned count;
		void *map;
		const char *g = t_guard(r->in, len, &map, &maplen);

		t_case(r->name);
		T_CHECK_INT(
		    run_list(g, len, r->flags, out, sizeof(out), &count),
		    r->end);
		T_CHECK_STR(out, r->want);
		t_unguard(map, maplen);
		for (k = 0; k < len; k++) {
			g = t_guard(r->in, k, &map, &maplen);
			(void)run_list(
			    g, k, r->flags, out, sizeof(out), &count);
			t_unguard(map, maplen);
		}
	}
}

static void
test_list_errors(void)
{
	struct addr_list l;
	struct addr a;

	t_case("addr_err and err_pos");
	addr_list_init(&l, "a@x, b@-y", 9, 0);
	T_CHECK_INT(addr_list_next(&l, &a), ADDR_LIST_OK);
	T_CHECK_INT(addr_list_next(&l, &a), ADDR_LIST_ADDR);
	T_CHECK_INT(l.addr_err, ADDR_ERR_SYNTAX);
	T_CHECK_INT(l.err_pos, 4);
	addr_list_init(&l, "a@x b@y", 7, 0);
	T_CHECK_INT(addr_list_next(&l, &a), ADDR_LIST_SYNTAX);
	T_CHECK_INT(l.err_pos, 4);
	T_CHECK_STR(addr_list_strerror(ADDR_LIST_MANY), "too many addresses");
	T_CHECK(addr_list_strerror(ADDR_LIST_SYNTAX) != NULL);
}

static void
test_list_max(void)
{
	static char v[8 * (ADDR_LIST_MAX + 2)];
	size_t n = 0, i;
	unsigned count;
	char out[16];

	t_case("1000 addresses pass, 1001 do not");
	for (i = 0; i < ADDR_LIST_MAX; i++) {
		memcpy(v + n, "a@x, ", 5);
		n += 5;
	}
	T_CHECK_INT(run_list(v, n, 0, out, sizeof(out), &count), ADDR_LIST_END);
	T_CHECK_INT(count, ADDR_LIST_MAX);
	memcpy(v + n, "g:b@y;", 6);
	n += 6;
	T_CHECK_INT(
	    run_list(v, n, 0, out, sizeof(out), &count), ADDR_LIST_MANY);
	T_CHECK_INT(count, ADDR_LIST_MAX);
}

/* Random prefixes of a long realistic header, fields and lists together. */
static void
test_random_prefixes(void)
{
	static const char msg[] =
	    "Return-Path: <s@x>\r\nFrom: \"S (x)\" <s@x>\r\n"
	    "To: A <a@x>, b@y,\r\n  team: c@z, \"d d\"@w;\r\n"
	    "Cc: undisclosed-recipients:;\r\nSubject: hi\r\n\r\nbody\r\n";
	size_t round;

	for (round = 0; round < 200; round++) {
		size_t k = (size_t)(t_rand() % sizeof(msg)), maplen;
		void *map;
		const char *g = t_guard(msg, k, &map, &maplen);
		struct addr_hdr_scan s;
		struct addr_hdr_field f;

		t_case("random prefix");
		addr_hdr_scan_init(&s, g, k);
		while (addr_hdr_next(&s, &f)) {
			char out[512];
			unsigned count;

			if (!addr_hdr_name_is(&f, "To") &&
			    !addr_hdr_name_is(&f, "Cc"))
				continue;
			(void)run_list(
			    f.value, f.value_len, 0, out, sizeof(out), &count);
		}
		T_CHECK(s.pos <= k && s.end <= k);
		t_unguard(map, maplen);
	}
	t_case("whole realistic message");
	{
		struct addr_hdr_field f;
		char out[512];
		unsigned count;

		T_CHECK(addr_hdr_find(msg, sizeof(msg) - 1, "to", &f));
		T_CHECK_INT(
		    run_list(f.value, f.value_len, 0, out, sizeof(out), &count),
		    ADDR_LIST_END);
		T_CHECK_STR(out, "a@x,b@y,c@z,\"d d\"@w,");
	}
}

static void
test_count(void)
{
	static const char msg[] =
	    "Received: from a\r\n\tby b\r\nreceived: from c\r\n"
	    "X-Received: no\r\nReceived : from d\r\nSubject: x\r\n"
	    "\r\nReceived: in the body\r\n";
	size_t len = sizeof(msg) - 1;
	size_t maplen;
	void *map;
	const char *g = t_guard(msg, len, &map, &maplen);

	t_case("count: any case, blanks before the colon, body not counted");
	T_CHECK_INT(addr_hdr_count(g, len, "Received", 100), 3);
	T_CHECK_INT(addr_hdr_count(g, len, "X-Received", 100), 1);
	T_CHECK_INT(addr_hdr_count(g, len, "Date", 100), 0);
	t_case("count stops at the threshold");
	T_CHECK_INT(addr_hdr_count(g, len, "Received", 2), 2);
	T_CHECK_INT(addr_hdr_count(g, len, "Received", 0), 0);
	t_case("count: empty and header-only input");
	T_CHECK_INT(addr_hdr_count("", 0, "Received", 100), 0);
	T_CHECK_INT(addr_hdr_count("Received: x", 11, "Received", 100), 1);
	t_unguard(map, maplen);
}

int
main(void)
{
	T_RUN(test_end);
	T_RUN(test_fields);
	T_RUN(test_field_prefixes);
	T_RUN(test_limits);
	T_RUN(test_find);
	T_RUN(test_count);
	T_RUN(test_unfold);
	T_RUN(test_lists);
	T_RUN(test_list_errors);
	T_RUN(test_list_max);
	T_RUN(test_random_prefixes);
	return t_summary();
}
