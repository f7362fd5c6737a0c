/*
 * Unit tests for src/smtp/smtp_reply.c: single and multi-line replies, with
 * and without enhanced codes, the 512-octet line limit, refused inputs,
 * and that a refused reply leaves the buffer exactly as it was.
 */
#include "t.h"
#include "smtp/smtp.h"

struct reply_row {
	const char *name;
	int code;
	const char *enh;
	const char *text;
	const char *want; /* NULL: must be refused */
};

static const struct reply_row reply_rows[] = {
    {"single enh", 250, "2.0.0", "Ok", "250 2.0.0 Ok\r\n"},
    {"single no enh", 220, NULL, "mx.example ESMTP",
	"220 mx.example ESMTP\r\n"},
    {"multi no enh", 250, NULL, "first\nsecond\nlast",
	"250-first\r\n250-second\r\n250 last\r\n"},
    {"multi enh", 250, "2.0.0", "first\nsecond\nlast",
	"250-2.0.0 first\r\n250-2.0.0 second\r\n250 2.0.0 last\r\n"},
    {"ehlo style", 250, NULL, "mx.example\nPIPELINING\nSIZE 26214400",
	"250-mx.example\r\n250-PIPELINING\r\n250 SIZE 26214400\r\n"},
    {"empty text", 250, NULL, "", "250\r\n"},
    {"NULL text", 221, "2.0.0", NULL, "221 2.0.0\r\n"},
    {"empty text enh", 250, "2.0.0", "", "250 2.0.0\r\n"},
    {"trailing newline", 250, NULL, "a\n", "250-a\r\n250\r\n"},
    {"empty middle line", 250, "2.0.0", "a\n\nb",
	"250-2.0.0 a\r\n250-2.0.0\r\n250 2.0.0 b\r\n"},
    {"4xx", 451, "4.3.0", "Queue trouble", "451 4.3.0 Queue trouble\r\n"},
    {"5xx 3-digit subject", 550, "5.100.999", "x", "550 5.100.999 x\r\n"},
    {"354 no enh", 354, NULL, "End data with <CR><LF>.<CR><LF>",
	"354 End data with <CR><LF>.<CR><LF>\r\n"},
    {"334 empty challenge", 334, NULL, "", "334 \r\n"},
    {"334 challenge", 334, NULL, "VXNlcm5hbWU6", "334 VXNlcm5hbWU6\r\n"},
    {"utf8 text", 553, "5.6.7", "j\xc3\xb6s\xc3\xa9",
	"553 5.6.7 j\xc3\xb6s\xc3\xa9\r\n"},
    {"code 200", 200, NULL, "x", "200 x\r\n"},
    {"code 599", 599, NULL, "x", "599 x\r\n"},
    {"code 199", 199, NULL, "x", NULL},
    {"code 600", 600, NULL, "x", NULL},
    {"code 0", 0, NULL, "x", NULL},
    {"code negative", -250, NULL, "x", NULL},
    {"enh class mismatch", 250, "5.0.0", "x", NULL},
    {"enh class 3", 250, "3.0.0", "x", NULL},
    {"enh short", 250, "2.0", "x", NULL},
    {"enh long", 250, "2.0.0.0", "x", NULL},
    {"enh 4 digits", 250, "2.1000.0", "x", NULL},
    {"enh empty part", 250, "2..0", "x", NULL},
    {"enh empty", 250, "", "x", NULL},
    {"enh trailing space", 250, "2.0.0 ", "x", NULL},
    {"text CR", 250, NULL, "a\rb", NULL},
    {"text CRLF", 250, NULL, "a\r\n250 injected", NULL},
    {"text tab", 250, NULL, "a\tb", NULL},
    {"text DEL", 250, NULL, "a\x7f", NULL},
    {"text ESC", 250, NULL, "\x1b[31m", NULL},
};

static void
test_reply_rows(void)
{
	size_t i;

	for (i = 0; i < sizeof(reply_rows) / sizeof(reply_rows[0]); i++) {
		const struct reply_row *r = &reply_rows[i];
		struct buf b;
		int rc;

		t_case(r->name);
		buf_init(&b, 4096);
		T_CHECK(buf_append_str(&b, "X") == 0);
		rc = smtp_reply(&b, r->code, r->enh, r->text);
		if (r->want == NULL) {
			T_CHECK_INT(rc, -1);
			T_CHECK_STR(b.data, "X");
		} else {
			T_CHECK_INT(rc, 0);
			T_CHECK_STR(b.data + 1, r->want);
		}
		buf_free(&b);
	}
}

static char *
make_text(size_t n, char fill)
{
	char *s = malloc(n + 1);

	if (s == NULL)
		abort();
	memset(s, fill, n);
	s[n] = '\0';
	return s;
}

/* "250 2.0.0 " is 10 octets and CRLF 2: 500 octets of text fill 512. */
static void
test_reply_line_limit(void)
{
	char *t500 = make_text(500, 'a'), *t501 = make_text(501, 'a');
	char *t508 = make_text(508, 'b'), *t507 = make_text(507, 'b');
	struct buf b;

	buf_init(&b, 1 << 16);
	t_case("line exactly 512 with enh");
	T_CHECK_INT(smtp_reply(&b, 250, "2.0.0", t500), 0);
	T_CHECK_INT(b.len, 512);
	t_case("line 513 with enh refused");
	buf_reset(&b);
	T_CHECK_INT(smtp_reply(&b, 250, "2.0.0", t501), -1);
	T_CHECK_INT(b.len, 0);
	t_case("line exactly 512 without enh"); /* "250 " + 506 + CRLF */
	buf_reset(&b);
	t507[506] = '\0';
	T_CHECK_INT(smtp_reply(&b, 250, NULL, t507), 0);
	T_CHECK_INT(b.len, 512);
	t_case("line 513 without enh refused");
	buf_reset(&b);
	t507[506] = 'b';
	T_CHECK_INT(smtp_reply(&b, 250, NULL, t507), -1);
	T_CHECK_INT(smtp_reply(&b, 250, NULL, t508), -1);
	t_case("multi-line, second line exactly 512");
	buf_reset(&b);
	t501[0] = 'x';
	t501[1] = '\n'; /* "x", then 499 octets: 10 + 499 + 2 = 511 */
	T_CHECK_INT(smtp_reply(&b, 250, "2.0.0", t501), 0);
	T_CHECK_INT(b.len, 13 + 511);
	buf_reset(&b);
	t501[1] = 'a';
	t501[0] = '\n'; /* "", then 500 octets: exactly 512 */
	T_CHECK_INT(smtp_reply(&b, 250, "2.0.0", t501), 0);
	T_CHECK_INT(b.len, 11 + 512);
	t_case("long second line restores buffer");
	buf_reset(&b);
	T_CHECK(buf_append_str(&b, "keep") == 0);
	{
		char *t = make_text(3 + 501, 'c');

		memcpy(t, "ok\n", 3);
		T_CHECK_INT(smtp_reply(&b, 250, "2.0.0", t), -1);
		T_CHECK_INT(b.len, 4);
		T_CHECK_STR(b.data, "keep");
		free(t);
	}
	buf_free(&b);
	free(t500);
	free(t501);
	free(t507);
	free(t508);
}

static void
test_reply_buf_full(void)
{
	struct buf b;

	t_case("buffer max reached: refused whole");
	buf_init(&b, 23);
	T_CHECK(buf_append_str(&b, "1234") == 0);
	T_CHECK_INT(smtp_reply(&b, 250, "2.0.0", "one\ntwo"), -1);
	T_CHECK_STR(b.data, "1234");
	T_CHECK_INT(b.len, 4);
	t_case("buffer exactly full: accepted");
	T_CHECK_INT(smtp_reply(&b, 250, "2.0.0", "exactly"), 0); /* 19 octets */
	T_CHECK_INT(b.len, 23);
	T_CHECK_INT(smtp_reply(&b, 250, NULL, ""), -1);
	T_CHECK_INT(b.len, 23);
	buf_free(&b);
	t_case("empty buffer with no data yet");
	buf_init(&b, 4);
	T_CHECK_INT(smtp_reply(&b, 250, NULL, "x"), -1);
	T_CHECK_INT(b.len, 0);
	buf_free(&b);
}

static void
test_replyf(void)
{
	struct buf b;
	char *big = make_text(5000, 'z');

	buf_init(&b, 1 << 16);
	t_case("replyf formats");
	T_CHECK_INT(smtp_replyf(&b, 250, "2.1.0", "Sender <%s> ok", "a@b"), 0);
	T_CHECK_STR(b.data, "250 2.1.0 Sender <a@b> ok\r\n");
	t_case("replyf multi-line");
	buf_reset(&b);
	T_CHECK_INT(smtp_replyf(&b, 250, NULL, "%s\nSIZE %llu", "mx",
			(unsigned long long)26214400),
	    0);
	T_CHECK_STR(b.data, "250-mx\r\n250 SIZE 26214400\r\n");
	t_case("replyf NUL from %c refused");
	buf_reset(&b);
	T_CHECK_INT(smtp_replyf(&b, 250, NULL, "a%cb", 0), -1);
	T_CHECK_INT(b.len, 0);
	t_case("replyf CR from argument refused");
	T_CHECK_INT(smtp_replyf(&b, 250, NULL, "name %s", "x\r\n250 y"), -1);
	t_case("replyf over format limit refused");
	T_CHECK_INT(smtp_replyf(&b, 250, NULL, "%s", big), -1);
	T_CHECK_INT(b.len, 0);
	t_case("replyf bad code");
	T_CHECK_INT(smtp_replyf(&b, 700, NULL, "%d", 1), -1);
	t_case("two replies appended in order");
	T_CHECK_INT(smtp_reply(&b, 250, "2.0.0", "a"), 0);
	T_CHECK_INT(smtp_replyf(&b, 221, "2.0.0", "%s", "Bye"), 0);
	T_CHECK_STR(b.data, "250 2.0.0 a\r\n221 2.0.0 Bye\r\n");
	buf_free(&b);
	free(big);
}

int
main(void)
{
	test_reply_rows();
	test_reply_line_limit();
	test_reply_buf_full();
	test_replyf();
	return t_summary();
}
