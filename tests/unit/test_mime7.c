/*
 * test_mime7: the 7-bit form of 8-bit messages (src/mime, RFC 6152 3).
 *
 * A table of messages with the exact output expected (where it is worth
 * spelling out) and the flags; every case is planned on a copy that ends
 * at an unreadable page, read whole, one octet per call and in random
 * chunks (the three outputs must be equal, and as long as out_size says);
 * a convertible output must be 7-bit with lines of at most 998 octets.
 * Then larger, realistic messages (8-bit text, a binary attachment,
 * nested multiparts, an attached message, long lines) are converted and
 * checked by tests/unit/check_mime7.py under Debian's python3: its email
 * package must decode every part of the output to the octets of the
 * original.  The checker is shown to catch one changed octet.
 */

#include "mime/mime.h"
#include "t.h"
#include "t_pycheck.h"

static struct t_pycheck pc;

/* ---- reading a plan -------------------------------------------------------
 */

/* The whole output, read max octets a call (0: random sizes). */
static bool
read_all(struct mime_plan *p, size_t max, struct buf *out)
{
	int rc;
	unsigned calls = 0;

	mime_plan_rewind(p);
	buf_reset(out);
	do {
		size_t m = max > 0 ? max : 1 + (size_t)(t_rand() % 300);

		rc = mime_plan_read(p, out, m);
		if (++calls > 100000000u)
			return false;
	} while (rc == 0);
	return rc == 1;
}

static bool
is_7bit(const char *s, size_t n)
{
	size_t i, line = 0;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x80 || c == 0)
			return false;
		if (c == '\n')
			line = 0;
		else if (c != '\r' && ++line > MIME_LINE_MAX)
			return false;
	}
	return true;
}

/* Equal octets (a buffer never appended to has no data pointer). */
static bool
same(const char *a, size_t an, const char *b, size_t bn)
{
	return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

/* Plan msg and read it three ways; the output in out. */
static void
plan_check(const char *msg, size_t len, struct mime_plan *p, struct buf *out)
{
	struct buf b1, b2;
	void *map;
	size_t maplen;
	const char *g = t_guard(msg, len, &map, &maplen);

	buf_init(&b1, 64 * 1024 * 1024);
	buf_init(&b2, 64 * 1024 * 1024);
	mime_plan_7bit(p, g, len);
	T_CHECK(read_all(p, SIZE_MAX, out));
	T_CHECK_INT(out->len, p->out_size);
	T_CHECK(
	    (p->flags & MIME_F_CHANGED) || same(out->data, out->len, msg, len));
	T_CHECK(read_all(p, 1, &b1));
	T_CHECK(same(b1.data, b1.len, out->data, out->len));
	T_CHECK(read_all(p, 0, &b2));
	T_CHECK(same(b2.data, b2.len, out->data, out->len));
	if (!(p->flags & (MIME_F_IMPOSSIBLE | MIME_F_HDR_8BIT)))
		T_CHECK(is_7bit(out->data, out->len));
	T_CHECK(!(p->flags & MIME_F_IMPOSSIBLE) || p->why != NULL);
	buf_free(&b1);
	buf_free(&b2);
	mime_plan_free(p);
	t_unguard(map, maplen);
}

/* ---- the table ------------------------------------------------------------
 */

#define CT_TEXT8                                                               \
	"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"

/* inputs with a NUL octet: their length is not strlen's */
#define IN_NUL_QP CT_TEXT8 "\r\na=b\rc\nd\x00\xff\r\n"
#define IN_NUL_HDR                                                             \
	"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n"   \
	"\r\n--b\r\nX-A: \x00\r\n\r\n\xe9\r\n--b--\r\n"
#define IN_NUL_B64                                                             \
	"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; "                 \
	"boundary=\"b1\"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"           \
	"pre\r\n--b1\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b1\r\n"        \
	"Content-Type: application/octet-stream\r\n"                           \
	"Content-Transfer-Encoding: 8bit\r\n\r\n\xff\x00\x01\r\n"              \
	"--b1--\r\nepi\r\n"

struct tcase {
	const char *name;
	const char *in;
	size_t in_len;	  /* 0: strlen(in) */
	const char *want; /* NULL: not spelled out */
	unsigned flags;
};

#define ENC (MIME_F_CHANGED | MIME_F_ENCODED)

static const struct tcase cases[] = {
    {"7-bit message: copied", "Subject: a\r\n\r\nhello\r\n", 0,
	"Subject: a\r\n\r\nhello\r\n", 0},
    {"empty message", "", 0, "", 0},
    {"header only, no body", "Subject: a\r\n", 0, "Subject: a\r\n", 0},
    {"not MIME, 8-bit body: labelled (RFC 1428) and quoted-printable",
	"Subject: a\r\n\r\nh\xc3\xa9\r\n", 0,
	"Subject: a\r\nContent-Transfer-Encoding: quoted-printable\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: text/plain; charset=unknown-8bit\r\n\r\n"
	"h=C3=A9\r\n",
	ENC},
    {"text 8bit: CTE replaced where it was, trailing blank encoded",
	CT_TEXT8 "Content-Transfer-Encoding: 8bit\r\nSubject: x\r\n\r\n"
		 "caf\xc3\xa9 \r\nnext\t\r\nend \t",
	0,
	CT_TEXT8 "Content-Transfer-Encoding: quoted-printable\r\n"
		 "Subject: x\r\n\r\ncaf=C3=A9=20\r\nnext=09\r\nend =09",
	ENC},
    {"quoted-printable: '=', lone CR and LF, NUL encoded", IN_NUL_QP,
	sizeof(IN_NUL_QP) - 1,
	CT_TEXT8 "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
		 "a=3Db=0Dc=0Ad=00=FF\r\n",
	ENC},
    {"quoted-printable: soft breaks keep lines at 76",
	CT_TEXT8
	"\r\n"
	"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\r\n",
	0,
	CT_TEXT8
	"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
	"=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9"
	"=C3=A9=C3=\r\n=A9=C3=A9\r\n",
	ENC},
    {"multipart: binary part base64, text part kept, container relabelled",
	IN_NUL_B64, sizeof(IN_NUL_B64) - 1,
	"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; "
	"boundary=\"b1\"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
	"pre\r\n--b1\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b1\r\n"
	"Content-Type: application/octet-stream\r\n"
	"Content-Transfer-Encoding: base64\r\n\r\n/wAB\r\n\r\n"
	"--b1--\r\nepi\r\n",
	ENC},
    {"8bit label on 7-bit text: relabelled 7bit",
	CT_TEXT8 "Content-Transfer-Encoding: 8BIT\r\n\r\nplain\r\n", 0,
	CT_TEXT8 "Content-Transfer-Encoding: 7bit\r\n\r\nplain\r\n",
	MIME_F_CHANGED},
    {"preamble and epilogue: 8-bit octets become '?'",
	"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n"
	"\r\npr\xc3\xa9\r\n--b\r\n\r\nx\r\n--b--\r\n\xff\r\n",
	0,
	"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n"
	"\r\npr??\r\n--b\r\n\r\nx\r\n--b--\r\n?\r\n",
	MIME_F_CHANGED},
    {"message/rfc822: the inner message is converted, not encoded",
	"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=o\r\n"
	"\r\n--o\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\n"
	"\xc3\xa9t\xc3\xa9\r\n--o--\r\n",
	0,
	"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=o\r\n"
	"\r\n--o\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n"
	"Content-Transfer-Encoding: quoted-printable\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: text/plain; charset=unknown-8bit\r\n\r\n"
	"=C3=A9t=C3=A9\r\n--o--\r\n",
	ENC},
    {"multipart/digest: parts are message/rfc822 by default",
	"MIME-Version: 1.0\r\nContent-Type: multipart/digest; boundary=d\r\n"
	"\r\n--d\r\n\r\nContent-Type: text/plain\r\n\r\n\xe9\r\n--d--\r\n",
	0,
	"MIME-Version: 1.0\r\nContent-Type: multipart/digest; boundary=d\r\n"
	"\r\n--d\r\n\r\nContent-Type: text/plain\r\n"
	"Content-Transfer-Encoding: quoted-printable\r\n"
	"MIME-Version: 1.0\r\n\r\n=E9\r\n--d--\r\n",
	ENC},
    {"no close delimiter: the last part runs to the end",
	"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n"
	"\r\n--b\r\nContent-Type: image/png\r\n\r\n\x89PNG",
	0,
	"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n"
	"\r\n--b\r\nContent-Type: image/png\r\n"
	"Content-Transfer-Encoding: base64\r\n\r\niVBORw==\r\n",
	ENC},
    {"boundary with blanks after it and a comment in Content-Type",
	"MIME-Version: 1.0\r\nContent-Type: multipart/mixed (c) ;\r\n"
	" boundary=\"x y\"\r\n\r\n--x y  \r\n\r\n\xe9\r\n--x y-- \r\n",
	0,
	"MIME-Version: 1.0\r\nContent-Type: multipart/mixed (c) ;\r\n"
	" boundary=\"x y\"\r\n\r\n--x y  \r\n"
	"Content-Transfer-Encoding: quoted-printable\r\n\r\n=E9\r\n"
	"--x y-- \r\n",
	ENC},
    {"a 7-bit line over 998 octets is encoded too", NULL, 0, NULL, ENC},
    {"8-bit header field: reported, left alone",
	"Subject: \xc3\xa9\r\n\r\nascii\r\n", 0,
	"Subject: \xc3\xa9\r\n\r\nascii\r\n", MIME_F_HDR_8BIT},
    {"impossible: 8-bit in a part labelled base64",
	CT_TEXT8 "Content-Transfer-Encoding: base64\r\n\r\n\xe9\r\n", 0, NULL,
	MIME_F_IMPOSSIBLE},
    {"impossible: 8-bit in message/partial",
	"MIME-Version: 1.0\r\nContent-Type: message/partial; id=x\r\n\r\n"
	"\xe9\r\n",
	0, NULL, MIME_F_IMPOSSIBLE},
    {"impossible: multipart without a boundary",
	"MIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n\r\n"
	"\xe9\r\n",
	0, NULL, MIME_F_IMPOSSIBLE},
    {"impossible: multipart whose boundary never comes",
	"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=z\r\n"
	"\r\n--y\r\n\r\n\xe9\r\n",
	0, NULL, MIME_F_IMPOSSIBLE},
    {"a part labelled base64 with 7-bit content: left alone",
	"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n"
	"\r\n--b\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\r\n--b\r\n"
	"\r\n\xe9\r\n--b--\r\n",
	0,
	"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n"
	"\r\n--b\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\r\n--b\r\n"
	"Content-Transfer-Encoding: quoted-printable\r\n\r\n=E9\r\n--b--\r\n",
	ENC},
    {"impossible: a NUL octet in a part's header", IN_NUL_HDR,
	sizeof(IN_NUL_HDR) - 1, NULL, MIME_F_IMPOSSIBLE},
    {"first delimiter is the close one: no parts",
	"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n"
	"\r\n--b--\r\n\xe9\r\n",
	0,
	"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n"
	"\r\n--b--\r\n?\r\n",
	MIME_F_CHANGED},
};

/* The long-line case's input, built once. */
static char long_in[1400];

static void
long_case(void)
{
	static const char head[] = "Subject: long\r\n\r\n";
	size_t n = sizeof(head) - 1;

	memcpy(long_in, head, n);
	memset(long_in + n, 'a', 1200);
	memcpy(long_in + n + 1200, "\r\n", 3);
}

static void
test_table(void)
{
	size_t i;
	struct buf out;

	long_case();
	buf_init(&out, 64 * 1024 * 1024);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct tcase *c = &cases[i];
		const char *in = c->in != NULL ? c->in : long_in;
		size_t len = c->in_len > 0 ? c->in_len : strlen(in);
		struct mime_plan p;

		t_case(c->name);
		plan_check(in, len, &p, &out);
		T_CHECK_INT(p.flags, 0); /* freed: zeroed */
		mime_plan_7bit(&p, in, len);
		T_CHECK_INT(p.flags, c->flags);
		mime_plan_free(&p);
		if (c->want != NULL) {
			T_CHECK_INT(out.len, strlen(c->want));
			if (!same(
				out.data, out.len, c->want, strlen(c->want))) {
				t_cur_failed = true;
				fprintf(stderr, "FAIL [%s]: got\n%.*s\n",
				    c->name, (int)out.len, out.data);
			}
		}
	}
	buf_free(&out);
}

/* The word-at-a-time scan finds an 8-bit octet or NUL at every offset. */
static void
test_has_8bit(void)
{
	char b[40];
	size_t n, pos;
	void *map;
	size_t maplen;

	t_case("mime_has_8bit at every offset and length");
	for (n = 0; n <= sizeof(b); n++) {
		memset(b, 'a', sizeof(b));
		T_CHECK(!mime_has_8bit(t_guard(b, n, &map, &maplen), n));
		t_unguard(map, maplen);
		for (pos = 0; pos < n; pos++) {
			b[pos] = (char)0x80;
			T_CHECK(mime_has_8bit(t_guard(b, n, &map, &maplen), n));
			t_unguard(map, maplen);
			b[pos] = '\0';
			T_CHECK(mime_has_8bit(t_guard(b, n, &map, &maplen), n));
			t_unguard(map, maplen);
			b[pos] = 0x7f;
			T_CHECK(
			    !mime_has_8bit(t_guard(b, n, &map, &maplen), n));
			t_unguard(map, maplen);
			b[pos] = 'a';
		}
	}
}

/* Nesting past MIME_DEPTH_MAX and more than MIME_PARTS_MAX parts. */
static void
test_limits(void)
{
	struct buf in, out;
	struct mime_plan p;
	unsigned i;

	t_case("nested deeper than MIME_DEPTH_MAX with 8-bit inside");
	buf_init(&in, 16 * 1024 * 1024);
	buf_init(&out, 64 * 1024 * 1024);
	for (i = 0; i <= MIME_DEPTH_MAX; i++)
		T_CHECK(buf_printf(&in,
			    "Content-Type: multipart/mixed; "
			    "boundary=b%u\r\n\r\n--b%u\r\n",
			    i, i) == 0);
	T_CHECK(buf_append_str(&in, "\r\n\xe9\r\n") == 0);
	mime_plan_7bit(&p, in.data, in.len);
	T_CHECK(p.flags & MIME_F_IMPOSSIBLE);
	mime_plan_free(&p);

	t_case("more than MIME_PARTS_MAX parts");
	buf_reset(&in);
	T_CHECK(buf_append_str(&in, "Content-Type: multipart/mixed; "
				    "boundary=b\r\n\r\n") == 0);
	for (i = 0; i < MIME_PARTS_MAX + 5; i++)
		T_CHECK(buf_append_str(&in, "--b\r\n\r\nx\r\n") == 0);
	T_CHECK(buf_append_str(&in, "--b\r\n\r\n\xe9\r\n--b--\r\n") == 0);
	plan_check(in.data, in.len, &p, &out);
	mime_plan_7bit(&p, in.data, in.len);
	T_CHECK(p.flags & MIME_F_IMPOSSIBLE);
	mime_plan_free(&p);

	t_case("MIME_PARTS_MAX parts exactly: converted");
	buf_reset(&in);
	T_CHECK(buf_append_str(&in, "Content-Type: multipart/mixed; "
				    "boundary=b\r\n\r\n") == 0);
	for (i = 0; i < MIME_PARTS_MAX - 2; i++)
		T_CHECK(buf_append_str(&in, "--b\r\n\r\nx\r\n") == 0);
	T_CHECK(buf_append_str(&in, "--b\r\n\r\n\xe9\r\n--b--\r\n") == 0);
	plan_check(in.data, in.len, &p, &out);
	mime_plan_7bit(&p, in.data, in.len);
	T_CHECK_INT(p.flags, ENC);
	mime_plan_free(&p);
	buf_free(&in);
	buf_free(&out);
}

/* ---- against Python's email package -------------------------------------- */

/* Convert msg, write both, run the checker; the output stays in out. */
static bool
py_case(const char *name, const struct buf *msg, struct buf *out)
{
	struct mime_plan p;

	t_case(name);
	plan_check(msg->data, msg->len, &p, out);
	mime_plan_7bit(&p, msg->data, msg->len);
	T_CHECK(p.flags & MIME_F_ENCODED);
	T_CHECK(!(p.flags & (MIME_F_IMPOSSIBLE | MIME_F_HDR_8BIT)));
	mime_plan_free(&p);
	T_CHECK(t_pycheck_write(&pc, name, ".orig", msg->data, msg->len));
	T_CHECK(t_pycheck_write(&pc, name, ".out", out->data, out->len));
	return t_pycheck_run(&pc, name);
}

static void
add_bytes(struct buf *b, size_t n, unsigned seed)
{
	size_t i;

	t_rng_state = 0x9e3779b97f4a7c15ull + seed;
	for (i = 0; i < n; i++) {
		char c = (char)(t_rand() & 0xff);

		if (buf_append(b, &c, 1) != 0)
			abort();
	}
}

/* 8-bit UTF-8 text with long lines, trailing blanks and '=' signs. */
static void
add_text(struct buf *b, unsigned lines)
{
	unsigned i, j;

	for (i = 0; i < lines; i++) {
		for (j = 0; j < i % 40; j++)
			if (buf_append_str(b, "Gr\xc3\xbc\xc3\x9f"
					      "e = \xe2\x82\xac ") != 0)
				abort();
		if (buf_append_str(b, i % 3 == 0 ? " \t\r\n" : ".\r\n") != 0)
			abort();
	}
}

static void
test_python(void)
{
	struct buf m, out;
	char *q;

	buf_init(&m, 16 * 1024 * 1024);
	buf_init(&out, 64 * 1024 * 1024);

	/* the e2e message's shape: 8-bit text and a binary attachment */
	T_CHECK(
	    buf_append_str(&m,
		"From: a@example.org\r\nTo: b@example.net\r\n"
		"Subject: report\r\nMIME-Version: 1.0\r\nContent-Type: "
		"multipart/mixed; boundary=\"=-outer\"\r\n\r\nThis is MIME.\r\n"
		"--=-outer\r\nContent-Type: text/plain; charset=utf-8\r\n"
		"Content-Transfer-Encoding: 8bit\r\n\r\n") == 0);
	add_text(&m, 120);
	T_CHECK(
	    buf_append_str(&m,
		"\r\n--=-outer\r\nContent-Type: "
		"application/octet-stream\r\nContent-Disposition: attachment; "
		"filename=\"blob.bin\"\r\n\r\n") == 0);
	add_bytes(&m, 20000, 1);
	T_CHECK(buf_append_str(&m, "\r\n--=-outer--\r\n") == 0);
	T_CHECK(py_case("mixed_text_binary", &m, &out));

	/* alternative inside mixed, an attached message, a digest */
	buf_reset(&m);
	T_CHECK(
	    buf_append_str(&m,
		"MIME-Version: 1.0\r\nSubject: nested\r\n"
		"Content-Type: multipart/mixed; boundary=A\r\n\r\n--A\r\n"
		"Content-Type: multipart/alternative; boundary=B\r\n\r\n--B\r\n"
		"Content-Type: text/plain; charset=iso-8859-1\r\n\r\n"
		"caf\xe9 cr\xe8me br\xfbl\xe9"
		"e\r\n--B\r\nContent-Type: text/html; "
		"charset=utf-8\r\n\r\n<p>caf\xc3\xa9</p>\r\n--B--\r\n--A\r\n"
		"Content-Type: message/rfc822\r\n\r\nFrom: c@example.org\r\n"
		"Subject: inner\r\nMIME-Version: 1.0\r\nContent-Type: "
		"image/png\r\n"
		"\r\n") == 0);
	add_bytes(&m, 3000, 2);
	T_CHECK(buf_append_str(&m, "\r\n--A\r\nContent-Type: multipart/digest; "
				   "boundary=D\r\n\r\n--D\r\n\r\nSubject: "
				   "d1\r\n\r\n\xc3\xa9t\xc3\xa9\r\n"
				   "--D--\r\n--A--\r\n") == 0);
	T_CHECK(py_case("nested", &m, &out));

	/* not MIME, 8-bit, and a 7-bit line over 998 octets */
	buf_reset(&m);
	T_CHECK(buf_append_str(&m, "From: a@example.org\r\nSubject: plain\r\n"
				   "\r\n") == 0);
	add_text(&m, 60);
	for (int i = 0; i < 1500; i++)
		T_CHECK(buf_append(&m, "x", 1) == 0);
	T_CHECK(buf_append_str(&m, "\r\nend\r\n") == 0);
	T_CHECK(py_case("not_mime", &m, &out));

	/* the checker must notice one decoded octet changed */
	t_case("the checker catches a changed octet");
	q = memmem(out.data, out.len, "=C3=BC", 6);
	T_CHECK(q != NULL);
	if (q != NULL) {
		q[4] = 'D';
		T_CHECK(
		    t_pycheck_write(&pc, "tampered", ".orig", m.data, m.len));
		T_CHECK(t_pycheck_write(
		    &pc, "tampered", ".out", out.data, out.len));
		fprintf(stderr, "test_mime7: the checker must complain:\n");
		T_CHECK(!t_pycheck_run(&pc, "tampered"));
	}
	buf_free(&m);
	buf_free(&out);
}

/* ---- setup ------------------------------------------------------------------
 */

int
main(void)
{
	t_case("setup: temp dir and tests/unit/check_mime7.py (run from the "
	       "repository root)");
	T_CHECK(t_pycheck_open(&pc, "test_mime7", "check_mime7.py", __FILE__));
	if (t_cur_failed)
		return t_summary();
	T_RUN(test_table);
	T_RUN(test_has_8bit);
	T_RUN(test_limits);
	T_RUN(test_python);
	t_case_end();
	t_pycheck_close(&pc);
	return t_summary();
}
