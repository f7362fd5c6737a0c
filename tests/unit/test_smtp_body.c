/*
 * Unit tests for src/smtp/smtp_body.c, the DATA / BDAT content reader.
 *
 * Every table row is fed whole, one byte at a time and at random split
 * points (several seeds), each chunk placed right before an unreadable
 * page.  A row gives the exact content the sink must receive, the error,
 * and for DATA how much input is consumed and whether the end was seen.
 */
#include "t.h"
#include "smtp/smtp.h"

#define S(x)   x, sizeof(x) - 1
#define ALL    SIZE_MAX
#define NSEEDS 6

/* a smuggled transaction, as sent behind a fake end of data */
#define SMUG	 "MAIL FROM:<x>\r\nRCPT TO:<y>\r\nDATA\r\nevil\r\n"
#define SMUG_END SMUG ".\r\n"
#define PIPE	 "QUIT\r\n"

struct row {
	const char *name;
	const char *in;
	size_t in_len;
	bool dot;
	uint64_t max;
	const char *want;
	size_t want_len;
	enum smtp_body_error err;
	size_t consumed; /* DATA: octets consumed (ALL: every one) */
	bool done;	 /* DATA: terminator seen */
	bool finish;	 /* BDAT: call smtp_body_finish() at the end */
};

/* DATA row / BDAT row */
#define D(n, in, max, want, err, cons, done)                                   \
	{                                                                      \
		n, S(in), true, max, S(want), err, cons, done, false           \
	}
#define BD(n, in, max, want, err, fin)                                         \
	{                                                                      \
		n, S(in), false, max, S(want), err, ALL, false, fin            \
	}

#define OK     SMTP_BODY_OK
#define E_LF   SMTP_BODY_ERR_BARE_LF
#define E_CR   SMTP_BODY_ERR_BARE_CR
#define E_NUL  SMTP_BODY_ERR_NUL
#define E_LONG SMTP_BODY_ERR_LINE_LONG
#define E_BIG  SMTP_BODY_ERR_TOO_BIG

static const struct row rows[] = {
    /* DATA: plain messages */
    D("empty", ".\r\n", 0, "", OK, ALL, true),
    D("one line", "Hi\r\n.\r\n", 0, "Hi\r\n", OK, ALL, true),
    D("two lines", "a: b\r\n\r\nbody\r\n.\r\n", 0, "a: b\r\n\r\nbody\r\n", OK,
	ALL, true),
    D("empty lines", "\r\n\r\n.\r\n", 0, "\r\n\r\n", OK, ALL, true),
    D("stuffed dot", "..\r\n.\r\n", 0, ".\r\n", OK, ALL, true),
    D("stuffed dots", "...\r\n.\r\n", 0, "..\r\n", OK, ALL, true),
    D("stuffed text", "a\r\n...x\r\n..\r\n.\r\n", 0, "a\r\n..x\r\n.\r\n", OK,
	ALL, true),
    D("unstuffed lead dot", ".abc\r\n.\r\n", 0, "abc\r\n", OK, ALL, true),
    D("dot space", ". \r\n.\r\n", 0, " \r\n", OK, ALL, true),
    D("dot mid line", "a.b\r\n.\r\n", 0, "a.b\r\n", OK, ALL, true),
    D("dot end of line", "a.\r\n.\r\n", 0, "a.\r\n", OK, ALL, true),
    D("space dot", " .\r\n.\r\n", 0, " .\r\n", OK, ALL, true),
    D("8bit", "\xc3\xa9t\xc3\xa9\r\n.\r\n", 0, "\xc3\xa9t\xc3\xa9\r\n", OK, ALL,
	true),
    /* DATA: incomplete input */
    D("open line", "Hi\r\n", 0, "Hi\r\n", OK, ALL, false),
    D("open no crlf", "Hi", 0, "Hi", OK, ALL, false),
    D("open cr", "Hi\r", 0, "Hi\r", OK, ALL, false),
    D("open dot", "Hi\r\n.", 0, "Hi\r\n", OK, ALL, false),
    D("open dot cr", "Hi\r\n.\r", 0, "Hi\r\n", OK, ALL, false),
    D("nothing", "", 0, "", OK, ALL, false),
    /* DATA: pipelined input after the end is not consumed */
    D("pipelined", "Hi\r\n.\r\n" PIPE, 0, "Hi\r\n", OK, 7, true),
    D("pipelined empty", ".\r\nMAIL FROM:<a>\r\n", 0, "", OK, 3, true),
    D("pipelined dots", ".\r\n.\r\n", 0, "", OK, 3, true),
    D("pipelined smuggle", "a\r\n.\r\n" SMUG_END, 0, "a\r\n", OK, 6, true),
    /* DATA: fake ends never end the data; the smuggled text is swallowed */
    D("lf.lf", "a\n.\n" SMUG_END PIPE, 0, "a", E_LF,
	sizeof("a\n.\n" SMUG_END) - 1, true),
    D("lf.crlf", "a\n.\r\n" SMUG_END PIPE, 0, "a", E_LF,
	sizeof("a\n.\r\n" SMUG_END) - 1, true),
    D("crlf.lf", "a\r\n.\n" SMUG_END PIPE, 0, "a\r\n", E_LF,
	sizeof("a\r\n.\n" SMUG_END) - 1, true),
    D("cr.crlf", "a\r.\r\n" SMUG_END PIPE, 0, "a\r", E_CR,
	sizeof("a\r.\r\n" SMUG_END) - 1, true),
    D("cr.lf", "a\r.\n" SMUG_END PIPE, 0, "a\r", E_CR,
	sizeof("a\r.\n" SMUG_END) - 1, true),
    D("cr.cr", "a\r.\r" SMUG_END PIPE, 0, "a\r", E_CR,
	sizeof("a\r.\r" SMUG_END) - 1, true),
    D("crlf.cr", "a\r\n.\rMAIL FROM:<x>\r\n" SMUG_END PIPE, 0, "a\r\n\r", E_CR,
	sizeof("a\r\n.\rMAIL FROM:<x>\r\n" SMUG_END) - 1, true),
    D("start .lf", ".\n" SMUG_END PIPE, 0, "", E_LF, sizeof(".\n" SMUG_END) - 1,
	true),
    D("start lf.lf", "\n.\n" SMUG_END PIPE, 0, "", E_LF,
	sizeof("\n.\n" SMUG_END) - 1, true),
    D("lf lf.crlf", "a\n\n.\r\n" SMUG_END PIPE, 0, "a", E_LF,
	sizeof("a\n\n.\r\n" SMUG_END) - 1, true),
    D("crlf.crcrlf", "a\r\n.\r\r\n" SMUG_END PIPE, 0, "a\r\n\r", E_CR,
	sizeof("a\r\n.\r\r\n" SMUG_END) - 1, true),
    D("crlf..crlf", "a\r\n..\r\n" SMUG_END, 0, "a\r\n.\r\n" SMUG, OK, ALL,
	true),
    /* a real CRLF.CRLF after a bare CR or LF is the end */
    D("bare cr then end", "a\r\r\n.\r\n" SMUG_END, 0, "a\r", E_CR, 7, true),
    D("bare lf then end", "a\n\r\n.\r\n" SMUG_END, 0, "a", E_LF, 7, true),
    /* DATA: bare CR / LF / NUL */
    D("bare lf", "a\nb\r\n.\r\n", 0, "a", E_LF, ALL, true),
    D("bare lf first", "\n.\r\n\r\n.\r\n", 0, "", E_LF, ALL, true),
    D("bare cr", "ab\rc\r\n.\r\n", 0, "ab\r", E_CR, ALL, true),
    D("cr cr lf", "ab\r\r\n.\r\n", 0, "ab\r", E_CR, ALL, true),
    D("nul", "a\0b\r\n.\r\n", 0, "a", E_NUL, ALL, true),
    D("nul first", "\0\r\n.\r\n", 0, "", E_NUL, ALL, true),
    D("nul after dot", ".\0\r\n.\r\n", 0, "", E_NUL, ALL, true),
    D("nul then lf", "ab\0\n.\r\n", 0, "ab", E_NUL, ALL, false),
    D("cr then nul", "ab\r\0\r\n.\r\n", 0, "ab\r", E_CR, ALL, true),
    D("lf before nul", "a\n\0\r\n.\r\n", 0, "a", E_LF, ALL, true),
    /* DATA: size; the stuffing dot does not count */
    D("size at max", "abcd\r\n.\r\n", 6, "abcd\r\n", OK, ALL, true),
    D("size over max", "abcd\r\n.\r\n", 5, "abcd\r", E_BIG, ALL, true),
    D("size over max at cr", "abcd\r\n.\r\n", 4, "abcd", E_BIG, ALL, true),
    D("size stuffed at max", "..\r\n.\r\n", 3, ".\r\n", OK, ALL, true),
    D("size stuffed over", "..\r\n.\r\n", 2, ".\r", E_BIG, ALL, true),
    D("size one", "a\r\n.\r\n", 1, "a", E_BIG, ALL, true),
    D("size empty max 1", ".\r\n", 1, "", OK, ALL, true),
    D("size held cr over", "ab\r\n.\rX\r\n.\r\n", 4, "ab\r\n", E_BIG, ALL,
	true),
    D("size held cr at", "ab\r\n.\rX\r\n.\r\n", 5, "ab\r\n\r", E_CR, ALL, true),
    D("size before nul", "abc\0\r\n.\r\n", 2, "ab", E_BIG, ALL, true),
    D("nul at size", "ab\0\r\n.\r\n", 2, "ab", E_NUL, ALL, true),
    /* BDAT */
    BD("bdat empty", "", 0, "", OK, true),
    BD("bdat lines", "abc\r\ndef\r\n", 0, "abc\r\ndef\r\n", OK, true),
    BD("bdat no final crlf", "abc\r\ndef", 0, "abc\r\ndef", OK, true),
    BD("bdat trailing cr", "abc\r", 0, "abc\r", E_CR, true),
    BD("bdat trailing cr open", "abc\r", 0, "abc\r", OK, false),
    BD("bdat no stuffing", "..\r\n.\r\n", 0, "..\r\n.\r\n", OK, true),
    BD("bdat dot end is content", "a\r\n.\r\n" SMUG_END, 0,
	"a\r\n.\r\n" SMUG_END, OK, true),
    BD("bdat bare lf", "a\nb\r\n", 0, "a", E_LF, true),
    BD("bdat bare lf.lf", "a\r\n.\n" SMUG, 0, "a\r\n.", E_LF, true),
    BD("bdat bare cr", "a\rb\r\n", 0, "a\r", E_CR, true),
    BD("bdat cr cr lf", "\r\r\n", 0, "\r", E_CR, true),
    BD("bdat nul", "ab\0c", 0, "ab", E_NUL, true),
    BD("bdat size at", "abc\r\n", 5, "abc\r\n", OK, true),
    BD("bdat size over", "abc\r\nd", 5, "abc\r\n", E_BIG, true),
    BD("bdat error then cr", "a\0b\r", 0, "a", E_NUL, true),
};

/* ---- the sink: concatenates everything it gets ---------------------- */

struct sink {
	char *p;
	size_t len, cap;
	unsigned calls;
	bool after_done; /* called once the reader said done or error */
	const struct smtp_body *b;
};

static void
sink_fn(void *ctx, const char *p, size_t n)
{
	struct sink *s = ctx;

	if (s->b != NULL && (s->b->done || s->b->error != SMTP_BODY_OK))
		s->after_done = true;
	if (s->len + n > s->cap) {
		s->cap = (s->len + n) * 2;
		s->p = realloc(s->p, s->cap);
		if (s->p == NULL)
			abort();
	}
	memcpy(s->p + s->len, p, n);
	s->len += n;
	s->calls++;
}

struct result {
	size_t consumed;
	enum smtp_body_error err;
	bool done;
	uint64_t size;
};

/* Feed r->in in chunks as mode says, each chunk guarded. */
static struct result
feed_row(const struct row *r, enum t_feed mode, struct sink *s)
{
	struct smtp_body b;
	struct result res = {0, OK, false, 0};
	size_t off = 0, n;

	memset(s, 0, sizeof(*s));
	s->b = &b;
	smtp_body_init(&b, r->dot, r->max, sink_fn, s);
	while ((n = t_next_chunk(mode, r->in_len - off)) > 0) {
		void *map;
		size_t maplen, got;
		const char *chunk = t_guard(r->in + off, n, &map, &maplen);

		got = smtp_body_feed(&b, chunk, n);
		T_CHECK(got <= n);
		if (got < n) {
			T_CHECK(b.done);
			T_CHECK_INT(
			    smtp_body_feed(&b, chunk + got, n - got), 0);
		}
		t_unguard(map, maplen);
		off += got;
		if (got < n)
			break;
	}
	if (r->finish)
		smtp_body_finish(&b);
	res.consumed = off;
	res.err = b.error;
	res.done = b.done;
	res.size = b.size;
	return res;
}

static void
check_row(const struct row *r)
{
	struct sink s;
	struct result whole = {0, OK, false, 0};
	size_t want_cons = r->consumed == ALL ? r->in_len : r->consumed;

	for (int m = 0; m < T_FEED_NMODES; m++) {
		int runs = m == T_FEED_RANDOM ? NSEEDS : 1;

		for (int i = 0; i < runs; i++) {
			struct result res = feed_row(r, (enum t_feed)m, &s);

			T_CHECK_INT(s.len, r->want_len);
			T_CHECK(
			    s.len == r->want_len &&
			    (s.len == 0 || memcmp(s.p, r->want, s.len) == 0));
			T_CHECK_INT(res.err, r->err);
			T_CHECK_INT(res.consumed, want_cons);
			T_CHECK_INT(res.done, r->dot ? r->done : r->finish);
			T_CHECK(!s.after_done);
			if (r->err == OK)
				T_CHECK_INT(res.size, r->want_len);
			if (m == T_FEED_WHOLE)
				whole = res;
			T_CHECK(res.size == whole.size);
			if (t_cur_failed)
				fprintf(stderr, "  mode %s\n", t_feed_name(m));
			free(s.p);
		}
	}
}

static void
test_table(void)
{
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		t_case(rows[i].name);
		check_row(&rows[i]);
	}
}

/* ---- long lines: built at run time ---------------------------------- */

static char long_in[2200], long_want[2200];

/*
 * A line of nx 'x' (after an optional stuffing dot) ending in CRLF, then,
 * for DATA, the terminator.  want_x content 'x's are expected before the
 * error (or the whole line when err is OK).
 */
static void
check_long(const char *name, bool dot, bool stuff, size_t nx,
    enum smtp_body_error err, size_t want_x, bool want_cr)
{
	struct row r = {
	    name, long_in, 0, dot, 0, long_want, 0, err, ALL, dot, !dot};
	size_t n = 0, w = 0;

	memcpy(long_in + n, "ab\r\n", 4); /* a first, short line */
	memcpy(long_want + w, "ab\r\n", 4);
	n += 4;
	w += 4;
	if (stuff)
		long_in[n++] = '.';
	memset(long_in + n, 'x', nx);
	n += nx;
	memcpy(long_in + n, "\r\n", 2);
	n += 2;
	memset(long_want + w, 'x', want_x);
	w += want_x;
	if (err == OK) {
		memcpy(long_want + w, "\r\n", 2);
		w += 2;
	} else if (want_cr) {
		long_want[w++] = '\r';
	}
	if (dot) {
		memcpy(long_in + n, ".\r\n", 3);
		n += 3;
	}
	r.in_len = n;
	r.want_len = w;
	t_case(name);
	check_row(&r);
}

static void
test_long_lines(void)
{
	for (int dot = 0; dot <= 1; dot++) {
		check_long(dot ? "1000 octets" : "bdat 1000 octets", dot, false,
		    998, OK, 998, false);
		check_long(dot ? "1001 octets" : "bdat 1001 octets", dot, false,
		    999, E_LONG, 999, true);
		check_long(dot ? "2000 octets" : "bdat 2000 octets", dot, false,
		    1998, E_LONG, 1000, false);
		check_long(dot ? "1000 octets .." : "bdat 1000 octets ..", dot,
		    dot, 997, OK, 997, false);
	}
	/* DATA only: the stuffing dot counts as transmitted */
	check_long("1001 octets stuffed", true, true, 998, E_LONG, 998, true);
	check_long("1002 octets stuffed", true, true, 999, E_LONG, 999, false);
}

/* ---- properties the table does not show ------------------------------ */

static void
test_runs(void)
{
	static const char msg[] = "a\r\nb\r\nc\r\n..d\r\ne\r\n.\r\n";
	struct sink s = {0};
	struct smtp_body b;

	t_case("runs: one call per stuffed dot");
	smtp_body_init(&b, true, 0, sink_fn, &s);
	T_CHECK_INT(smtp_body_feed(&b, msg, sizeof(msg) - 1), sizeof(msg) - 1);
	T_CHECK_INT(s.calls, 2);
	T_CHECK(b.done);
	free(s.p);

	t_case("runs: BDAT chunk is one call");
	memset(&s, 0, sizeof(s));
	smtp_body_init(&b, false, 0, sink_fn, &s);
	T_CHECK_INT(smtp_body_feed(&b, msg, sizeof(msg) - 1), sizeof(msg) - 1);
	T_CHECK_INT(s.calls, 1);
	free(s.p);
}

static void
test_bdat_chunks(void)
{
	struct sink s = {0};
	struct smtp_body b;

	t_case("bdat: CRLF split across chunks");
	smtp_body_init(&b, false, 0, sink_fn, &s);
	T_CHECK_INT(smtp_body_feed(&b, "abc\r", 4), 4);
	T_CHECK_INT(smtp_body_feed(&b, "\n..\r", 4), 4);
	T_CHECK_INT(smtp_body_feed(&b, "\n", 1), 1);
	smtp_body_finish(&b);
	T_CHECK_INT(b.error, OK);
	T_CHECK(s.len == 9 && memcmp(s.p, "abc\r\n..\r\n", 9) == 0);
	T_CHECK_INT(b.size, 9);
	free(s.p);

	t_case("bdat: CR then other byte across chunks");
	memset(&s, 0, sizeof(s));
	smtp_body_init(&b, false, 0, sink_fn, &s);
	T_CHECK_INT(smtp_body_feed(&b, "abc\r", 4), 4);
	T_CHECK_INT(smtp_body_feed(&b, "x\r\n", 3), 3);
	T_CHECK_INT(smtp_body_feed(&b, "more\r\n", 6), 6);
	T_CHECK_INT(b.error, E_CR);
	T_CHECK(s.len == 4 && memcmp(s.p, "abc\r", 4) == 0);
	free(s.p);
}

static void
test_size_saturates(void)
{
	struct smtp_body b;

	t_case("size saturates");
	smtp_body_init(&b, false, 0, NULL, NULL);
	b.size = UINT64_MAX - 1;
	T_CHECK_INT(smtp_body_feed(&b, "abc", 3), 3);
	T_CHECK(b.size == UINT64_MAX);
	T_CHECK_INT(b.error, OK);
}

/* Many bare CRs in one line must not rescan to the LF each time. */
static void
test_no_quadratic(void)
{
	size_t n = (size_t)1 << 21;
	char *p = malloc(n);
	struct smtp_body b;

	t_case("bare CRs: linear time");
	if (p == NULL)
		abort();
	memset(p, '\r', n - 5);
	memcpy(p + n - 5, "\n.\r\n", 4);
	p[n - 1] = 'Q';
	smtp_body_init(&b, true, 0, NULL, NULL);
	T_CHECK_INT(smtp_body_feed(&b, p, n), n - 1);
	T_CHECK(b.done);
	T_CHECK_INT(b.error, E_CR);
	free(p);
}

static void
test_replies(void)
{
	static const struct {
		enum smtp_body_error e;
		int code;
		const char *enh, *text;
	} want[] = {
	    {E_BIG, 552, "5.3.4",
		"Message size exceeds fixed maximum "
		"message size"},
	    {E_LF, 554, "5.6.0", NULL},
	    {E_CR, 554, "5.6.0", NULL},
	    {E_NUL, 554, "5.6.0", "NUL octet in message content"},
	    {E_LONG, 554, "5.6.0",
		"Message line longer than 1000 octets "
		"(RFC 5321 4.5.3.1.6)"},
	    {SMTP_BODY_ERR_STORAGE, 452, "4.3.1",
		"Insufficient system storage, try again later"},
	};

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		int code;
		const char *enh, *text;

		t_case("error reply");
		smtp_body_error_reply(want[i].e, &code, &enh, &text);
		T_CHECK_INT(code, want[i].code);
		T_CHECK_STR(enh, want[i].enh);
		if (want[i].text != NULL)
			T_CHECK_STR(text, want[i].text);
		T_CHECK(
		    strstr(text, "\r") == NULL && strstr(text, "\n") == NULL);
	}
	{
		int code;
		const char *enh, *text;

		t_case("error reply bare LF text");
		smtp_body_error_reply(E_LF, &code, &enh, &text);
		T_CHECK(
		    strstr(text, "LF") != NULL && strstr(text, "CRLF") != NULL);
		smtp_body_error_reply(E_CR, &code, &enh, &text);
		T_CHECK(strstr(text, "CR") != NULL);
	}
}

/* A sink that has room for nothing after its first piece. */
struct full_sink {
	struct smtp_body *b;
	struct buf got;
	unsigned calls;
};

static void
full_sink_fn(void *ctx, const char *p, size_t n)
{
	struct full_sink *fs = ctx;

	fs->calls++;
	T_CHECK(buf_append(&fs->got, p, n) == 0);
	smtp_body_refuse(fs->b, SMTP_BODY_ERR_STORAGE);
}

static void
test_sink_refuses(void)
{
	static const char data[] = "ab\r\n..cd\r\n.\r\nQUIT\r\n";
	static const char bdat[] = "ab\r\ncd\r\n";
	struct smtp_body b;
	struct full_sink fs = {&b, {0}, 0};
	size_t used;

	/* DATA: the first run (cut at the stuffed dot) is the last one given;
	 * reading goes on to the real end, and the error is kept */
	t_case("sink refuses DATA");
	buf_init(&fs.got, 1024);
	smtp_body_init(&b, true, 0, full_sink_fn, &fs);
	used = smtp_body_feed(&b, data, sizeof(data) - 1);
	T_CHECK_INT(used, sizeof(data) - 1 - 6);
	T_CHECK(b.done);
	T_CHECK_INT(b.error, SMTP_BODY_ERR_STORAGE);
	T_CHECK_INT(fs.calls, 1);
	T_CHECK(fs.got.len == 4 && memcmp(fs.got.data, "ab\r\n", 4) == 0);
	buf_free(&fs.got);

	/* BDAT: every later octet is read, none given; LAST keeps the error */
	t_case("sink refuses BDAT");
	fs.calls = 0;
	buf_init(&fs.got, 1024);
	smtp_body_init(&b, false, 0, full_sink_fn, &fs);
	T_CHECK_INT(smtp_body_feed(&b, bdat, 3), 3);
	T_CHECK_INT(
	    smtp_body_feed(&b, bdat + 3, sizeof(bdat) - 4), sizeof(bdat) - 4);
	smtp_body_finish(&b);
	T_CHECK_INT(b.error, SMTP_BODY_ERR_STORAGE);
	T_CHECK_INT(fs.calls, 1);
	T_CHECK_INT(b.size, sizeof(bdat) - 1);
	buf_free(&fs.got);

	/* an earlier error is not replaced */
	t_case("refuse keeps the first error");
	smtp_body_init(&b, false, 0, NULL, NULL);
	T_CHECK_INT(smtp_body_feed(&b, "a\nb", 3), 3);
	smtp_body_refuse(&b, SMTP_BODY_ERR_STORAGE);
	T_CHECK_INT(b.error, SMTP_BODY_ERR_BARE_LF);
}

int
main(void)
{
	test_table();
	test_long_lines();
	test_runs();
	test_bdat_chunks();
	test_size_saturates();
	test_no_quadratic();
	test_replies();
	test_sink_refuses();
	return t_summary();
}
