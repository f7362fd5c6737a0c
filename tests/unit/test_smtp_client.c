/*
 * Unit tests for the SMTP client core: src/smtp/smtp_client.c (reply
 * parser, EHLO capabilities, client session) and src/smtp/smtp_stuff.c
 * (dot-stuffing).
 *
 * Sessions are scripted conversations: each step gives the server's
 * bytes, the exact command bytes the client must write meanwhile, the
 * action it must end on, and optionally the per-recipient results.  Every
 * script runs three times: server bytes fed whole, one byte at a time and
 * at random split points; each call's input sits right before an
 * unreadable page, so a one-byte over-read crashes.
 */
#include "t.h"
#include "smtp/smtp.h"

#define S(x) x, sizeof(x) - 1

/* ======================================================================
 * Reply parser
 * ====================================================================== */

struct prow {
	const char *name;
	const char *in;
	size_t len;
	int rc;
	int code;
	const char *enh;
	const char *text;
	size_t consumed;
};

#define P_OK(n, in, code, enh, text)                                           \
	{                                                                      \
		n, S(in), 1, code, enh, text, sizeof(in) - 1                   \
	}
#define P_ERR(n, in)                                                           \
	{                                                                      \
		n, S(in), -1, 0, NULL, NULL, 0                                 \
	}
#define P_MORE(n, in)                                                          \
	{                                                                      \
		n, S(in), 0, 0, NULL, NULL, 0                                  \
	}

static const struct prow prows[] = {
    P_OK("simple", "250 ok\r\n", 250, "", "ok"),
    P_OK("code only", "250\r\n", 250, "", ""),
    P_OK("code space", "250 \r\n", 250, "", ""),
    P_OK("multi", "250-a\r\n250-b\r\n250 c\r\n", 250, "", "a\nb\nc"),
    P_OK("empty continuation", "250-\r\n250 x\r\n", 250, "", "\nx"),
    P_OK("enh", "550 5.1.1 No such user\r\n", 550, "5.1.1", "No such user"),
    P_OK("enh only", "250 2.0.0\r\n", 250, "2.0.0", ""),
    P_OK("enh multi",
	"550-5.1.1 The account\r\n550-5.1.1 does not\r\n"
	"550 5.1.1 exist\r\n",
	550, "5.1.1", "The account\ndoes not\nexist"),
    P_OK("enh 3 digits", "452 4.5.300 x\r\n", 452, "4.5.300", "x"),
    P_OK("enh wrong class", "550 4.1.1 x\r\n", 550, "", "4.1.1 x"),
    P_OK("enh on 354", "354 3.0.0 go\r\n", 354, "", "3.0.0 go"),
    P_OK("enh too long", "250 2.0.1234 x\r\n", 250, "", "2.0.1234 x"),
    P_OK("enh glued", "250 2.0.0x\r\n", 250, "", "2.0.0x"),
    P_OK("bare lf", "250 ok\n", 250, "", "ok"),
    P_OK("bare lf multi", "250-a\n250 b\n", 250, "", "a\nb"),
    P_OK("tab kept", "250 a\tb\r\n", 250, "", "a\tb"),
    P_OK("control to ?",
	"250 a\x01\x7f"
	"b\r\n",
	250, "", "a??b"),
    P_OK(
	"utf8 kept", "250 \xc3\xa9t\xc3\xa9\r\n", 250, "", "\xc3\xa9t\xc3\xa9"),
    P_OK("559 highest", "559 x\r\n", 559, "", "x"),
    P_OK("200 lowest", "200 x\r\n", 200, "", "x"),
    P_ERR("short code", "25 ok\r\n"),
    P_ERR("first digit 6", "650 x\r\n"),
    P_ERR("first digit 1", "150 x\r\n"),
    P_ERR("second digit 6", "260 x\r\n"),
    P_ERR("letter", "2x0 x\r\n"),
    P_ERR("bad separator", "250_x\r\n"),
    P_ERR("mixed codes", "250-a\r\n251 b\r\n"),
    P_ERR("mixed late", "250-a\r\n250-b\r\n550 c\r\n"),
    P_ERR("bare cr", "250 a\rb\r\n"),
    P_ERR("nul", "250 a\0b\r\n"),
    P_ERR("empty line", "\r\n"),
    P_ERR("bad second line", "250-a\r\nxyz\r\n"),
    P_MORE("no lf", "250 ok"),
    P_MORE("cr no lf", "250 ok\r"),
    P_MORE("continuation only", "250-a\r\n"),
    P_MORE("nothing", ""),
    P_MORE("partial second", "250-a\r\n25"),
};

static void
test_reply_rows(void)
{
	size_t i, k;

	for (i = 0; i < sizeof(prows) / sizeof(prows[0]); i++) {
		const struct prow *p = &prows[i];
		struct smtp_parsed_reply r;
		size_t cons = 12345, maplen;
		void *map;
		const char *g = t_guard(p->in, p->len, &map, &maplen);
		int rc;

		t_case(p->name);
		rc = smtp_reply_parse(g, p->len, &r, &cons);
		T_CHECK_INT(rc, p->rc);
		if (rc == 1 && p->rc == 1) {
			T_CHECK_INT(r.code, p->code);
			T_CHECK_STR(r.enh, p->enh);
			T_CHECK_STR(r.text, p->text);
			T_CHECK_INT(r.text_len, strlen(p->text));
			T_CHECK_INT(cons, p->consumed);
			/* every shorter prefix needs more input */
			for (k = 0; k < p->len; k++) {
				const char *h =
				    t_guard(p->in, k, &map, &maplen);

				T_CHECK_INT(
				    smtp_reply_parse(h, k, &r, &cons), 0);
				t_unguard(map, maplen);
			}
		}
		t_unguard(map, maplen);
	}
}

/* Builds a line "250-xxx...\r\n" of exactly n octets. */
static void
make_line(struct buf *b, char sep, size_t n)
{
	T_CHECK(buf_printf(b, "250%c", sep) == 0);
	while (n > 6) {
		T_CHECK(buf_append(b, "x", 1) == 0);
		n--;
	}
	T_CHECK(buf_append(b, "\r\n", 2) == 0);
}

static int
parse_buf(const struct buf *b, struct smtp_parsed_reply *r, size_t *cons)
{
	size_t maplen;
	void *map;
	const char *g = t_guard(b->data, b->len, &map, &maplen);
	int rc = smtp_reply_parse(g, b->len, r, cons);

	t_unguard(map, maplen);
	return rc;
}

static void
test_reply_limits(void)
{
	struct smtp_parsed_reply r;
	struct buf b;
	size_t cons, i;

	buf_init(&b, 1 << 20);
	t_case("line of 512 octets");
	make_line(&b, ' ', 512);
	T_CHECK_INT(parse_buf(&b, &r, &cons), 1);
	T_CHECK_INT(cons, 512);

	t_case("line of 513 octets");
	buf_reset(&b);
	make_line(&b, ' ', 513);
	T_CHECK_INT(parse_buf(&b, &r, &cons), -1);

	t_case("512 octets without lf");
	buf_reset(&b);
	make_line(&b, ' ', 514);
	b.len = 512;
	T_CHECK_INT(parse_buf(&b, &r, &cons), -1);
	b.len = 511;
	T_CHECK_INT(parse_buf(&b, &r, &cons), 0);

	t_case("100 lines");
	buf_reset(&b);
	for (i = 0; i < 99; i++)
		T_CHECK(buf_append_str(&b, "250-a\r\n") == 0);
	T_CHECK(buf_append_str(&b, "250 z\r\n") == 0);
	T_CHECK_INT(parse_buf(&b, &r, &cons), 1);
	T_CHECK_INT(r.nlines, 100);

	t_case("101 lines");
	buf_reset(&b);
	for (i = 0; i < 100; i++)
		T_CHECK(buf_append_str(&b, "250-a\r\n") == 0);
	T_CHECK_INT(parse_buf(&b, &r, &cons), -1);

	t_case("text cut");
	buf_reset(&b);
	for (i = 0; i < 9; i++)
		make_line(&b, '-', 500);
	make_line(&b, ' ', 500);
	T_CHECK_INT(parse_buf(&b, &r, &cons), 1);
	T_CHECK(r.text_cut);
	T_CHECK_INT(r.text_len, SMTP_REPLY_IN_TEXT_MAX - 1);
	T_CHECK_INT(strlen(r.text), SMTP_REPLY_IN_TEXT_MAX - 1);
	T_CHECK(strcmp(r.text + r.text_len - 3, "...") == 0);

	t_case("two replies, one consumed");
	buf_reset(&b);
	T_CHECK(buf_append_str(&b, "250 a\r\n354 b\r\n") == 0);
	T_CHECK_INT(parse_buf(&b, &r, &cons), 1);
	T_CHECK_INT(cons, 7);
	T_CHECK_STR(r.text, "a");
	buf_free(&b);
}

/* ======================================================================
 * EHLO capabilities
 * ====================================================================== */

struct crow {
	const char *name;
	const char *in;
	unsigned flags;
	uint64_t size;
	unsigned auth;
};

#define ALLCAPS                                                                \
	(SMTP_CAP_PIPELINING | SMTP_CAP_SIZE | SMTP_CAP_8BITMIME |             \
	    SMTP_CAP_SMTPUTF8 | SMTP_CAP_DSN | SMTP_CAP_STARTTLS |             \
	    SMTP_CAP_CHUNKING | SMTP_CAP_ENHANCEDSTATUSCODES | SMTP_CAP_AUTH)

static const struct crow crows[] = {
    {"every extension",
	"250-mx.example.net hello\r\n250-PIPELINING\r\n"
	"250-SIZE 10240000\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-DSN\r\n"
	"250-STARTTLS\r\n250-CHUNKING\r\n250-ENHANCEDSTATUSCODES\r\n"
	"250 AUTH PLAIN LOGIN CRAM-MD5\r\n",
	ALLCAPS, 10240000, SMTP_CAP_AUTH_PLAIN | SMTP_CAP_AUTH_LOGIN},
    {"lower case", "250-x\r\n250-size 1000\r\n250 auth login\r\n",
	SMTP_CAP_SIZE | SMTP_CAP_AUTH, 1000, SMTP_CAP_AUTH_LOGIN},
    {"old auth=", "250-x\r\n250 AUTH=PLAIN\r\n", SMTP_CAP_AUTH, 0,
	SMTP_CAP_AUTH_PLAIN},
    {"greeting line only", "250 x PIPELINING\r\n", 0, 0, 0},
    {"size without value", "250-x\r\n250-SIZE\r\n250 PIPELINING\r\n",
	SMTP_CAP_SIZE | SMTP_CAP_PIPELINING, 0, 0},
    {"size junk", "250-x\r\n250 SIZE 12abc\r\n", SMTP_CAP_SIZE, 0, 0},
    {"look-alikes",
	"250-x\r\n250-PIPELININGX\r\n250-XDSN\r\n"
	"250 X-STARTTLS\r\n",
	0, 0, 0},
    {"not 250", "502-x\r\n502 PIPELINING\r\n", 0, 0, 0},
    {"bare lf", "250-x\n250-DSN\n250 STARTTLS\n",
	SMTP_CAP_DSN | SMTP_CAP_STARTTLS, 0, 0},
    {"REQUIRETLS", "250-x\r\n250-requiretls\r\n250 REQUIRETLSX\r\n",
	SMTP_CAP_REQUIRETLS, 0, 0},
};

static void
test_ehlo_caps(void)
{
	size_t i;

	for (i = 0; i < sizeof(crows) / sizeof(crows[0]); i++) {
		struct smtp_parsed_reply r;
		struct smtp_caps caps;
		size_t cons;

		t_case(crows[i].name);
		T_CHECK_INT(smtp_reply_parse(
				crows[i].in, strlen(crows[i].in), &r, &cons),
		    1);
		smtp_ehlo_caps(&r, &caps);
		T_CHECK_INT(caps.flags, crows[i].flags);
		T_CHECK_INT(caps.size_max, crows[i].size);
		T_CHECK_INT(caps.auth, crows[i].auth);
	}
}

/* ======================================================================
 * Dot-stuffing
 * ====================================================================== */

struct srow {
	const char *name;
	const char *in;
	size_t len;
	const char *want;
};

#define SR(n, in, want)                                                        \
	{                                                                      \
		n, S(in), want                                                 \
	}

static const struct srow srows[] = {
    SR("empty", "", ".\r\n"),
    SR("one line", "a\r\n", "a\r\n.\r\n"),
    SR("unterminated", "a", "a\r\n.\r\n"),
    SR("unterminated cr", "a\r", "a\r\n.\r\n"),
    SR("dot line", ".\r\n", "..\r\n.\r\n"),
    SR("lead dot", "a\r\n.b\r\n", "a\r\n..b\r\n.\r\n"),
    SR("two dots", "..\r\n", "...\r\n.\r\n"),
    SR("dot mid line", "a.b\r\n", "a.b\r\n.\r\n"),
    SR("lone dot", ".", "..\r\n.\r\n"),
    SR("empty lines", "\r\n\r\n", "\r\n\r\n.\r\n"),
    SR("crlf dot crlf", "x\r\n.\r\ny\r\n", "x\r\n..\r\ny\r\n.\r\n"),
    SR("bare lf", "a\nb", "a\r\nb\r\n.\r\n"),
    SR("bare lf dot", "a\n.\n", "a\r\n..\r\n.\r\n"),
    SR("bare cr dot", "a\r.\r\n", "a\r\n..\r\n.\r\n"),
    SR("cr cr lf", "\r\r\n", "\r\n\r\n.\r\n"),
    SR("8bit", "\xc3\xa9\r\n.\xc3\xa9", "\xc3\xa9\r\n..\xc3\xa9\r\n.\r\n"),
    SR("headers", "Subject: x\r\n\r\n.hidden\r\n..\r\n",
	"Subject: x\r\n\r\n..hidden\r\n...\r\n.\r\n"),
};

static void
test_stuff_rows(void)
{
	size_t i;
	int mode;

	for (i = 0; i < sizeof(srows) / sizeof(srows[0]); i++) {
		t_case(srows[i].name);
		for (mode = 0; mode < T_FEED_NMODES; mode++) {
			struct smtp_stuff st;
			struct buf out;
			size_t off = 0;

			smtp_stuff_init(&st);
			buf_init(&out, 4096);
			while (off < srows[i].len) {
				size_t k = t_next_chunk(
					   mode, srows[i].len - off),
				       maplen;
				void *map;
				const char *g = t_guard(
				    srows[i].in + off, k, &map, &maplen);

				T_CHECK_INT(
				    smtp_stuff_feed(&st, g, k, &out), 0);
				t_unguard(map, maplen);
				off += k;
			}
			T_CHECK_INT(smtp_stuff_finish(&st, &out), 0);
			T_CHECK_STR(out.data, srows[i].want);
			T_CHECK_INT(st.out_octets, strlen(srows[i].want));
			buf_free(&out);
		}
	}
}

static void
test_stuff_full(void)
{
	struct smtp_stuff st;
	struct buf out;

	t_case("stuff out full");
	smtp_stuff_init(&st);
	buf_init(&out, 4);
	T_CHECK_INT(smtp_stuff_feed(&st, "abcdef", 6, &out), -1);
	buf_reset(&out);
	T_CHECK_INT(smtp_stuff_feed(&st, "ab\r\n", 4, &out), 0);
	T_CHECK_INT(smtp_stuff_finish(&st, &out), -1);
	buf_free(&out);
}

/* ======================================================================
 * Client sessions
 * ====================================================================== */

enum op { OP_NONE, OP_TLS_DONE, OP_TLS_UNVERIFIED, OP_RESET, OP_QUIT, OP_FAIL };

struct want {
	enum smtp_result_class cls;
	int code;
	const char *enh;
	const char *text; /* NULL: not checked */
};

struct step {
	const char *srv; /* server bytes; NULL: none */
	const char *cli; /* exactly what the client writes meanwhile */
	enum smtp_client_action act;
	const struct want *want; /* results checked after the step */
	size_t nwant;
	enum op op; /* then the shell does this */
};

#define WANT(...)                                                              \
	.want = (const struct want[]){__VA_ARGS__},                            \
	.nwant =                                                               \
	    sizeof((const struct want[]){__VA_ARGS__}) / sizeof(struct want)
#define NSTEPS(a) (sizeof(a) / sizeof((a)[0]))

#define RS_OK	 SMTP_RESULT_OK
#define RS_TEMP	 SMTP_RESULT_TEMP
#define RS_PERM	 SMTP_RESULT_PERM
#define A_IN	 SMTP_CLIENT_NEED_INPUT
#define A_TLS	 SMTP_CLIENT_STARTTLS
#define A_BODY	 SMTP_CLIENT_SEND_BODY
#define A_DONE	 SMTP_CLIENT_DONE
#define A_FAIL	 SMTP_CLIENT_FAILED
#define A_CLOSED SMTP_CLIENT_CLOSED

#define GREET "220 mx.example.net ESMTP\r\n"
#define EHLO  "EHLO client.example\r\n"
#define HELO  "HELO client.example\r\n"
/* no PIPELINING */
#define EHLO_BASIC                                                             \
	"250-mx.example.net\r\n250-SIZE 100000\r\n"                            \
	"250 ENHANCEDSTATUSCODES\r\n"
/* everything */
#define EHLO_FULL                                                              \
	"250-mx.example.net\r\n250-PIPELINING\r\n"                             \
	"250-SIZE 100000\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-DSN\r\n"       \
	"250-CHUNKING\r\n250 ENHANCEDSTATUSCODES\r\n"
#define MAIL_A "MAIL FROM:<a@example.org>"
#define RCPT_B "RCPT TO:<b@example.net>\r\n"
#define RCPT_C "RCPT TO:<c@example.net>\r\n"
#define RCPT_D "RCPT TO:<d@example.net>\r\n"
#define OK250  "250 2.1.0 Ok\r\n"
#define GO354  "354 End data with <CR><LF>.<CR><LF>\r\n"
#define QUEUED "250 2.0.0 Ok: queued as 4F2A\r\n"

static const struct smtp_client_rcpt rcpt_b[] = {
    {"b@example.net", 0, NULL, NULL}};
static const struct smtp_client_rcpt rcpt_bcd[] = {
    {"b@example.net", 0, NULL, NULL},
    {"c@example.net", 0, NULL, NULL},
    {"d@example.net", 0, NULL, NULL},
};

static struct smtp_client_conf
conf_base(const struct smtp_client_rcpt *r, size_t n)
{
	struct smtp_client_conf c;

	memset(&c, 0, sizeof(c));
	c.helo = "client.example";
	c.sender = "a@example.org";
	c.rcpts = r;
	c.nrcpts = n;
	c.size = 1234;
	return c;
}

/* ---- the driver -------------------------------------------------------- */

struct run {
	struct smtp_client *c;
	struct buf pend;    /* server bytes not consumed yet */
	struct buf written; /* what the client wrote during a step */
	struct buf out;
	enum t_feed mode;
};

/* Call smtp_client_next until it wants more than a flush. */
static enum smtp_client_action
run_pump(struct run *r)
{
	for (;;) {
		size_t cons = 0, maplen;
		void *map;
		const char *g =
		    t_guard(r->pend.data, r->pend.len, &map, &maplen);
		enum smtp_client_action act;

		buf_reset(&r->out);
		act = smtp_client_next(r->c, g, r->pend.len, &cons, &r->out);
		t_unguard(map, maplen);
		T_CHECK(cons <= r->pend.len);
		buf_consume(&r->pend, cons);
		T_CHECK(buf_append(&r->written, r->out.data ? r->out.data : "",
			    r->out.len) == 0);
		if (act != SMTP_CLIENT_SEND)
			return act;
	}
}

static enum smtp_client_action
run_feed(struct run *r, const char *srv)
{
	size_t n = srv != NULL ? strlen(srv) : 0, off = 0;
	enum smtp_client_action act;

	do {
		size_t k = t_next_chunk(r->mode, n - off);

		T_CHECK(buf_append(&r->pend, srv + off, k) == 0);
		off += k;
		act = run_pump(r);
	} while (off < n);
	return act;
}

static void
run_check_results(struct run *r, const struct step *s, size_t si)
{
	size_t i;

	T_CHECK_INT(smtp_client_nrcpts(r->c), s->nwant);
	for (i = 0; i < s->nwant && i < smtp_client_nrcpts(r->c); i++) {
		const struct smtp_client_result *res =
		    smtp_client_result(r->c, i);

		T_CHECK_INT(res->cls, s->want[i].cls);
		T_CHECK_INT(res->code, s->want[i].code);
		T_CHECK_STR(res->enh, s->want[i].enh);
		if (s->want[i].text != NULL)
			T_CHECK_STR(res->text, s->want[i].text);
		if (res->cls != s->want[i].cls || res->code != s->want[i].code)
			fprintf(stderr,
			    "  mode %s step %zu rcpt %zu: %d %s %s\n",
			    t_feed_name(r->mode), si, i, res->code, res->enh,
			    res->text);
	}
}

static void
run_op(struct run *r, enum op op, const struct smtp_client_conf *conf2)
{
	switch (op) {
	case OP_TLS_DONE:
		smtp_client_tls_done(r->c, true);
		break;
	case OP_TLS_UNVERIFIED:
		smtp_client_tls_done(r->c, false);
		break;
	case OP_RESET:
		T_CHECK_INT(smtp_client_reset_message(r->c, conf2), 0);
		break;
	case OP_QUIT:
		smtp_client_quit(r->c);
		break;
	case OP_FAIL:
		smtp_client_fail(r->c, 421, "4.4.2", "Connection timed out");
		break;
	default:
		break;
	}
}

/*
 * Run a script in every feeding mode; check(c) (optional) looks at the
 * client after the last step.
 */
static void
run_script(const char *name, const struct smtp_client_conf *conf,
    const struct smtp_client_conf *conf2, const struct step *steps,
    size_t nsteps, void (*check)(struct smtp_client *))
{
	struct run r;
	size_t i;

	t_case(name);
	for (r.mode = 0; r.mode < T_FEED_NMODES; r.mode++) {
		r.c = smtp_client_new(conf);
		T_CHECK(r.c != NULL);
		if (r.c == NULL)
			return;
		buf_init(&r.pend, 1 << 20);
		buf_init(&r.written, 1 << 20);
		buf_init(&r.out, 1 << 20);
		T_CHECK_INT(run_pump(&r), SMTP_CLIENT_NEED_INPUT);
		for (i = 0; i < nsteps; i++) {
			enum smtp_client_action act;

			buf_reset(&r.written);
			act = run_feed(&r, steps[i].srv);
			T_CHECK_INT(act, steps[i].act);
			T_CHECK_STR(r.written.data ? r.written.data : "",
			    steps[i].cli ? steps[i].cli : "");
			if (act != steps[i].act ||
			    strcmp(r.written.data ? r.written.data : "",
				steps[i].cli ? steps[i].cli : ""))
				fprintf(stderr, "  mode %s step %zu\n",
				    t_feed_name(r.mode), i);
			if (steps[i].want != NULL)
				run_check_results(&r, &steps[i], i);
			run_op(&r, steps[i].op, conf2);
		}
		if (check != NULL)
			check(r.c);
		smtp_client_free(r.c);
		buf_free(&r.pend);
		buf_free(&r.written);
		buf_free(&r.out);
	}
}

#define RUN(name, conf, conf2, steps, check)                                   \
	run_script(name, conf, conf2, steps, NSTEPS(steps), check)

/* ---- plain delivery ---------------------------------------------------- */

static void
check_plain(struct smtp_client *c)
{
	const struct smtp_client_result *res = smtp_client_result(c, 0);

	T_CHECK(res->remote);
	T_CHECK_STR(res->cmd, "end of data");
	T_CHECK_STR(res->text, "Ok: queued as 4F2A");
	T_CHECK(!res->dsn_passed);
	T_CHECK(!smtp_client_tls(c));
	T_CHECK(smtp_client_waiting(c) == NULL);
}

static void
test_plain(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_b, 1);
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_BASIC, MAIL_A " SIZE=1234\r\n", A_IN, NULL, 0, OP_NONE},
	    {OK250, RCPT_B, A_IN, NULL, 0, OP_NONE},
	    {"250 2.1.5 Ok\r\n", "DATA\r\n", A_IN, NULL, 0, OP_NONE},
	    {GO354, "", A_BODY, NULL, 0, OP_NONE},
	    {QUEUED, "", A_DONE, WANT({RS_OK, 250, "2.0.0", NULL}), OP_QUIT},
	    {NULL, "QUIT\r\n", A_IN, NULL, 0, OP_NONE},
	    {"221 2.0.0 Bye\r\n", "", A_CLOSED, NULL, 0, OP_NONE},
	};

	RUN("plain delivery", &conf, NULL, steps, check_plain);
}

static void
check_pipelined(struct smtp_client *c)
{
	T_CHECK_STR(smtp_client_result(c, 1)->cmd, "RCPT TO");
	T_CHECK_STR(smtp_client_result(c, 1)->text, "No such user");
	T_CHECK(smtp_client_caps(c)->flags & SMTP_CAP_PIPELINING);
}

static void
test_pipelining_mixed(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_bcd, 3);
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_FULL, MAIL_A " SIZE=1234\r\n" RCPT_B RCPT_C RCPT_D "DATA\r\n",
		A_IN, NULL, 0, OP_NONE},
	    {OK250 "250 2.1.5 Ok\r\n550 5.1.1 No such user\r\n"
		   "250 2.1.5 Ok\r\n" GO354,
		"", A_BODY, NULL, 0, OP_NONE},
	    {QUEUED, "", A_DONE,
		WANT({RS_OK, 250, "2.0.0", NULL}, {RS_PERM, 550, "5.1.1", NULL},
		    {RS_OK, 250, "2.0.0", NULL}),
		OP_NONE},
	};

	RUN("pipelining, mixed RCPT results", &conf, NULL, steps,
	    check_pipelined);
}

static void
test_pipelining_all_refused(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_bcd, 2);
	struct smtp_client_conf conf2 = conf_base(rcpt_bcd + 2, 1);
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_FULL, MAIL_A " SIZE=1234\r\n" RCPT_B RCPT_C "DATA\r\n", A_IN,
		NULL, 0, OP_NONE},
	    {OK250 "550 5.1.1 No b\r\n450 4.2.1 Later c\r\n"
		   "554 5.5.1 No valid recipients\r\n",
		"", A_DONE,
		WANT({RS_PERM, 550, "5.1.1", "No b"},
		    {RS_TEMP, 450, "4.2.1", "Later c"}),
		OP_RESET},
	    /* reuse: RSET first, in the same batch */
	    {NULL, "RSET\r\n" MAIL_A " SIZE=1234\r\n" RCPT_D "DATA\r\n", A_IN,
		NULL, 0, OP_NONE},
	    {"250 2.0.0 Ok\r\n" OK250 OK250 GO354, "", A_BODY, NULL, 0,
		OP_NONE},
	    {QUEUED, "", A_DONE, WANT({RS_OK, 250, "2.0.0", NULL}), OP_NONE},
	};

	RUN("pipelining, all RCPTs refused, then reuse", &conf, &conf2, steps,
	    NULL);
}

static void
test_serial_all_refused(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_bcd, 2);
	struct smtp_client_conf conf2 = conf_base(rcpt_bcd + 2, 1);
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_BASIC, MAIL_A " SIZE=1234\r\n", A_IN, NULL, 0, OP_NONE},
	    {OK250, RCPT_B, A_IN, NULL, 0, OP_NONE},
	    {"550 5.1.1 No b\r\n", RCPT_C, A_IN, NULL, 0, OP_NONE},
	    /* no DATA when nobody was accepted */
	    {"550 5.1.1 No c\r\n", "", A_DONE,
		WANT({RS_PERM, 550, "5.1.1", "No b"},
		    {RS_PERM, 550, "5.1.1", "No c"}),
		OP_RESET},
	    {NULL, "RSET\r\n", A_IN, NULL, 0, OP_NONE},
	    {"250 2.0.0 Ok\r\n", MAIL_A " SIZE=1234\r\n", A_IN, NULL, 0,
		OP_NONE},
	    {OK250, RCPT_D, A_IN, NULL, 0, OP_NONE},
	    {OK250, "DATA\r\n", A_IN, NULL, 0, OP_NONE},
	    {GO354, "", A_BODY, NULL, 0, OP_NONE},
	    {"451 4.3.0 Try later\r\n", "", A_DONE,
		WANT({RS_TEMP, 451, "4.3.0", "Try later"}), OP_NONE},
	};

	RUN("one at a time, all RCPTs refused, then reuse", &conf, &conf2,
	    steps, NULL);
}

static void
test_reuse_after_success(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_b, 1);
	struct smtp_client_conf conf2 = conf_base(rcpt_bcd + 1, 2);
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_FULL, MAIL_A " SIZE=1234\r\n" RCPT_B "DATA\r\n", A_IN, NULL,
		0, OP_NONE},
	    {OK250 OK250 GO354, "", A_BODY, NULL, 0, OP_NONE},
	    {QUEUED, "", A_DONE, WANT({RS_OK, 250, "2.0.0", NULL}), OP_RESET},
	    /* no RSET after a delivered message */
	    {NULL, MAIL_A " SIZE=1234\r\n" RCPT_C RCPT_D "DATA\r\n", A_IN, NULL,
		0, OP_NONE},
	    {OK250 OK250 "452 4.5.3 Too many recipients\r\n" GO354, "", A_BODY,
		NULL, 0, OP_NONE},
	    {"554 5.6.0 Rejected content\r\n", "", A_DONE,
		WANT({RS_PERM, 554, "5.6.0", NULL},
		    {RS_TEMP, 452, "4.5.3", NULL}),
		OP_QUIT},
	    {NULL, "QUIT\r\n", A_IN, NULL, 0, OP_NONE},
	    {"221 Bye\r\n", "", A_CLOSED, NULL, 0, OP_NONE},
	};

	RUN("reuse for a second message, 452 and final 554", &conf, &conf2,
	    steps, NULL);
}

/* ---- greeting, EHLO/HELO ----------------------------------------------- */

static void
check_downgrade(struct smtp_client *c)
{
	T_CHECK(smtp_client_downgrade(c));
}

static void
check_no_downgrade(struct smtp_client *c)
{
	T_CHECK(!smtp_client_downgrade(c));
}

static void
test_helo_fallback(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_b, 1);
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {"502 5.5.2 Command not recognized\r\n", HELO, A_IN, NULL, 0,
		OP_NONE},
	    /* no ESMTP parameters; an 8-bit body goes in its 7-bit form */
	    {"250 mx.example.net\r\n", MAIL_A "\r\n", A_IN, NULL, 0, OP_NONE},
	    {"250 Ok\r\n", RCPT_B, A_IN, NULL, 0, OP_NONE},
	    {"250 Ok\r\n", "DATA\r\n", A_IN, NULL, 0, OP_NONE},
	    {"354 Go\r\n", "", A_BODY, NULL, 0, OP_NONE},
	    {"250 Ok\r\n", "", A_DONE, WANT({RS_OK, 250, "", "Ok"}), OP_NONE},
	};

	conf.body_8bit = true;
	conf.downgrade = SMTP_DOWNGRADE_OK;
	RUN("EHLO refused, HELO", &conf, NULL, steps, check_downgrade);
}

static void
test_helo_refused(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_b, 1);
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {"500 What?\r\n", HELO, A_IN, NULL, 0, OP_NONE},
	    {"550 5.7.1 Go away\r\n", "QUIT\r\n", A_FAIL,
		WANT({RS_PERM, 550, "5.7.1", "Go away"}), OP_NONE},
	};

	RUN("EHLO and HELO refused", &conf, NULL, steps, NULL);
}

static void
check_greeting(struct smtp_client *c)
{
	T_CHECK_STR(smtp_client_error(c)->cmd, "greeting");
	T_CHECK(smtp_client_error(c)->remote);
}

static void
test_greeting_421(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_bcd, 2);
	const struct step steps[] = {
	    {"421-4.3.2 mx.example.net busy\r\n421 4.3.2 try later\r\n", "",
		A_FAIL,
		WANT({RS_TEMP, 421, "4.3.2", "mx.example.net busy\ntry later"},
		    {RS_TEMP, 421, "4.3.2", NULL}),
		OP_NONE},
	};

	RUN("421 greeting", &conf, NULL, steps, check_greeting);
}

static void
test_greeting_554(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_b, 1);
	const struct step steps[] = {
	    {"554 5.7.1 No SMTP service here\r\n", "QUIT\r\n", A_FAIL,
		WANT({RS_PERM, 554, "5.7.1", NULL}), OP_NONE},
	};

	RUN("554 greeting", &conf, NULL, steps, check_greeting);
}

static void
test_ehlo_421(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_b, 1);
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {"421 4.7.0 Too many connections\r\n", "", A_FAIL,
		WANT({RS_TEMP, 421, "4.7.0", NULL}), OP_NONE},
	};

	RUN("421 to EHLO", &conf, NULL, steps, NULL);
}

/* ---- STARTTLS ---------------------------------------------------------- */

#define EHLO_TLS "250-mx.example.net\r\n250-STARTTLS\r\n250 SIZE 100000\r\n"

static void
check_tls(struct smtp_client *c)
{
	T_CHECK(smtp_client_tls(c));
	T_CHECK(smtp_client_caps(c)->flags & SMTP_CAP_PIPELINING);
	T_CHECK(!(smtp_client_caps(c)->flags & SMTP_CAP_STARTTLS));
}

static void
test_starttls(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_b, 1);
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_TLS, "STARTTLS\r\n", A_IN, NULL, 0, OP_NONE},
	    {"220 2.0.0 Ready to start TLS\r\n", "", A_TLS, NULL, 0,
		OP_TLS_DONE},
	    {NULL, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_FULL, MAIL_A " SIZE=1234\r\n" RCPT_B "DATA\r\n", A_IN, NULL,
		0, OP_NONE},
	    {OK250 OK250 GO354, "", A_BODY, NULL, 0, OP_NONE},
	    {QUEUED, "", A_DONE, WANT({RS_OK, 250, "2.0.0", NULL}), OP_NONE},
	};

	conf.want_starttls = true;
	RUN("STARTTLS, EHLO again", &conf, NULL, steps, check_tls);
}

static void
test_starttls_injection(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_b, 1);
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_TLS, "STARTTLS\r\n", A_IN, NULL, 0, OP_NONE},
	    /* plaintext behind the 220 must not answer the next EHLO */
	    {"220 Go ahead\r\n250 fake\r\n250 fake too\r\n", "", A_TLS, NULL, 0,
		OP_TLS_DONE},
	    {NULL, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_FULL, MAIL_A " SIZE=1234\r\n" RCPT_B "DATA\r\n", A_IN, NULL,
		0, OP_NONE},
	};

	conf.want_starttls = true;
	RUN("STARTTLS, injected plaintext dropped", &conf, NULL, steps, NULL);
}

static void
test_starttls_refused(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_b, 1);
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_TLS, "STARTTLS\r\n", A_IN, NULL, 0, OP_NONE},
	    {"454 4.7.0 TLS not available\r\n", MAIL_A " SIZE=1234\r\n", A_IN,
		NULL, 0, OP_NONE},
	};

	conf.want_starttls = true;
	RUN("STARTTLS refused, opportunistic goes on", &conf, NULL, steps,
	    NULL);
}

static void
check_local_tls(struct smtp_client *c)
{
	const struct smtp_client_result *e = smtp_client_error(c);

	T_CHECK(!e->remote);
	T_CHECK(e->cmd == NULL);
	T_CHECK_STR(e->text, "TLS is required but the peer does not offer "
			     "STARTTLS");
}

static void
test_require_tls(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_b, 1);
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_FULL, "QUIT\r\n", A_FAIL, WANT({RS_TEMP, 451, "4.7.4", NULL}),
		OP_NONE},
	};

	conf.require_tls = true;
	RUN("require_tls without STARTTLS", &conf, NULL, steps,
	    check_local_tls);
}

static void
test_require_tls_refused(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_b, 1);
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_TLS, "STARTTLS\r\n", A_IN, NULL, 0, OP_NONE},
	    {"554 5.7.3 No\r\n", "QUIT\r\n", A_FAIL,
		WANT({RS_TEMP, 451, "4.7.4",
		    "TLS is required but STARTTLS failed: 554 No"}),
		OP_NONE},
	};

	conf.require_tls = true;
	RUN("require_tls, STARTTLS refused", &conf, NULL, steps, NULL);
}

static void
test_tls_handshake_failed(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_b, 1);
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_TLS, "STARTTLS\r\n", A_IN, NULL, 0, OP_NONE},
	    {"220 Go\r\n", "", A_TLS, NULL, 0, OP_FAIL},
	    {NULL, "", A_FAIL,
		WANT({RS_TEMP, 421, "4.4.2", "Connection timed out"}), OP_NONE},
	};

	conf.want_starttls = true;
	RUN("TLS handshake fails (shell)", &conf, NULL, steps, NULL);
}

/* ---- AUTH -------------------------------------------------------------- */

#define EHLO_AUTH                                                              \
	"250-mx.example.net\r\n250-AUTH LOGIN PLAIN\r\n"                       \
	"250 ENHANCEDSTATUSCODES\r\n"
#define AUTH_LINE "AUTH PLAIN AHVzZXIAcGFzcw==\r\n"

static struct smtp_client_conf
conf_auth(void)
{
	struct smtp_client_conf c = conf_base(rcpt_b, 1);

	c.auth_user = "user";
	c.auth_pass = "pass";
	c.tls_active = true;
	c.tls_verified = true;
	return c;
}

static void
test_auth_ok(void)
{
	struct smtp_client_conf conf = conf_auth();
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_AUTH, AUTH_LINE, A_IN, NULL, 0, OP_NONE},
	    {"235 2.7.0 Authentication successful\r\n", MAIL_A "\r\n", A_IN,
		NULL, 0, OP_NONE},
	};

	RUN("AUTH PLAIN accepted", &conf, NULL, steps, NULL);
}

static void
test_auth_535(void)
{
	struct smtp_client_conf conf = conf_auth();
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_AUTH, AUTH_LINE, A_IN, NULL, 0, OP_NONE},
	    {"535 5.7.8 Authentication credentials invalid\r\n", "QUIT\r\n",
		A_FAIL, WANT({RS_PERM, 535, "5.7.8", NULL}), OP_NONE},
	};

	RUN("AUTH PLAIN 535", &conf, NULL, steps, NULL);
}

static void
test_auth_no_tls(void)
{
	struct smtp_client_conf conf = conf_auth();
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_AUTH, "QUIT\r\n", A_FAIL, WANT({RS_TEMP, 451, "4.7.0", NULL}),
		OP_NONE},
	};

	conf.tls_active = false;
	RUN("AUTH refused without TLS", &conf, NULL, steps, NULL);
}

static void
test_auth_plaintext_ok(void)
{
	struct smtp_client_conf conf = conf_auth();
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_AUTH, AUTH_LINE, A_IN, NULL, 0, OP_NONE},
	};

	conf.tls_active = false;
	conf.auth_plaintext_ok = true;
	RUN("AUTH without TLS when allowed", &conf, NULL, steps, NULL);
}

static void
test_auth_not_offered(void)
{
	struct smtp_client_conf conf = conf_auth();
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {"250-x\r\n250 AUTH CRAM-MD5 XOAUTH2\r\n", "QUIT\r\n", A_FAIL,
		WANT({RS_TEMP, 451, "4.7.4", NULL}), OP_NONE},
	};

	RUN("neither AUTH PLAIN nor LOGIN offered", &conf, NULL, steps, NULL);
}

/*
 * Who gets the credentials (relay.smarthost_tls): only a TLS peer that
 * was verified, unless the shell says the admin accepted an unverified
 * one (encrypt) or plaintext; otherwise 451 and nothing of them is sent.
 */
static void
test_auth_decision(void)
{
	static const struct {
		const char *name;
		bool tls, verified, unverified_ok, plain_ok;
		bool sends;
		const char *enh; /* when it does not */
	} rows[] = {
	    {"verified TLS", true, true, false, false, true, NULL},
	    {"unverified TLS", true, false, false, false, false, "4.7.5"},
	    {"unverified TLS, encrypt", true, false, true, false, true, NULL},
	    {"verified flag without TLS", false, true, false, false, false,
		"4.7.0"},
	    {"no TLS, encrypt", false, false, true, false, false, "4.7.0"},
	    {"no TLS, plaintext ok", false, false, false, true, true, NULL},
	    {"unverified TLS, plaintext ok", true, false, false, true, true,
		NULL},
	};
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct smtp_client_conf conf = conf_auth();
		const struct step sends[] = {
		    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
		    {EHLO_AUTH, AUTH_LINE, A_IN, NULL, 0, OP_NONE},
		};
		const struct step refuses[] = {
		    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
		    {EHLO_AUTH, "QUIT\r\n", A_FAIL,
			WANT({RS_TEMP, 451, rows[i].enh, NULL}), OP_NONE},
		};

		conf.tls_active = rows[i].tls;
		conf.tls_verified = rows[i].verified;
		conf.auth_unverified_ok = rows[i].unverified_ok;
		conf.auth_plaintext_ok = rows[i].plain_ok;
		if (rows[i].sends)
			RUN(rows[i].name, &conf, NULL, sends, NULL);
		else
			RUN(rows[i].name, &conf, NULL, refuses, NULL);
	}
}

/* After STARTTLS the shell's verdict decides, not the conf. */
static void
test_auth_after_starttls(void)
{
	struct smtp_client_conf conf = conf_auth();
	const struct step unverified[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_TLS, "STARTTLS\r\n", A_IN, NULL, 0, OP_NONE},
	    {"220 2.0.0 Ready to start TLS\r\n", "", A_TLS, NULL, 0,
		OP_TLS_UNVERIFIED},
	    {NULL, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_AUTH, "QUIT\r\n", A_FAIL, WANT({RS_TEMP, 451, "4.7.5", NULL}),
		OP_NONE},
	};
	const struct step verified[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_TLS, "STARTTLS\r\n", A_IN, NULL, 0, OP_NONE},
	    {"220 2.0.0 Ready to start TLS\r\n", "", A_TLS, NULL, 0,
		OP_TLS_DONE},
	    {NULL, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_AUTH, AUTH_LINE, A_IN, NULL, 0, OP_NONE},
	};

	conf.tls_active = false;
	conf.tls_verified = true; /* ignored without tls_active */
	conf.want_starttls = true;
	conf.require_tls = true;
	RUN("STARTTLS to an unverified peer: no AUTH", &conf, NULL, unverified,
	    NULL);
	RUN("STARTTLS to a verified peer: AUTH", &conf, NULL, verified, NULL);
}

#define EHLO_LOGIN "250-x\r\n250 AUTH LOGIN CRAM-MD5\r\n"

static void
test_auth_login_ok(void)
{
	struct smtp_client_conf conf = conf_auth();
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_LOGIN, "AUTH LOGIN\r\n", A_IN, NULL, 0, OP_NONE},
	    {"334 VXNlcm5hbWU6\r\n", "dXNlcg==\r\n", A_IN, NULL, 0, OP_NONE},
	    {"334 UGFzc3dvcmQ6\r\n", "cGFzcw==\r\n", A_IN, NULL, 0, OP_NONE},
	    {"235 2.7.0 Authentication successful\r\n", MAIL_A "\r\n", A_IN,
		NULL, 0, OP_NONE},
	};

	RUN("AUTH LOGIN when PLAIN is not offered", &conf, NULL, steps, NULL);
}

static void
test_auth_login_535(void)
{
	struct smtp_client_conf conf = conf_auth();
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_LOGIN, "AUTH LOGIN\r\n", A_IN, NULL, 0, OP_NONE},
	    {"334 VXNlcm5hbWU6\r\n", "dXNlcg==\r\n", A_IN, NULL, 0, OP_NONE},
	    {"334 UGFzc3dvcmQ6\r\n", "cGFzcw==\r\n", A_IN, NULL, 0, OP_NONE},
	    {"535 5.7.8 Authentication credentials invalid\r\n", "QUIT\r\n",
		A_FAIL, WANT({RS_PERM, 535, "5.7.8", NULL}), OP_NONE},
	};

	RUN("AUTH LOGIN 535", &conf, NULL, steps, NULL);
}

static void
test_auth_login_third_challenge(void)
{
	struct smtp_client_conf conf = conf_auth();
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_LOGIN, "AUTH LOGIN\r\n", A_IN, NULL, 0, OP_NONE},
	    {"334 VXNlcm5hbWU6\r\n", "dXNlcg==\r\n", A_IN, NULL, 0, OP_NONE},
	    {"334 UGFzc3dvcmQ6\r\n", "cGFzcw==\r\n", A_IN, NULL, 0, OP_NONE},
	    {"334 bW9yZT8=\r\n", "", A_FAIL, NULL, 0, OP_NONE},
	};

	RUN("AUTH LOGIN: a third 334 is a protocol error", &conf, NULL, steps,
	    NULL);
}

/* ---- SIZE, 8BITMIME, SMTPUTF8 ------------------------------------------ */

static void
test_size_too_big(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_bcd, 2);
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_FULL, "", A_DONE,
		WANT({RS_PERM, 552, "5.3.4",
			 "Message size 100001 exceeds the peer's limit of "
			 "100000 "
			 "octets"},
		    {RS_PERM, 552, "5.3.4", NULL}),
		OP_QUIT},
	    {NULL, "QUIT\r\n", A_IN, NULL, 0, OP_NONE},
	};

	conf.size = 100001;
	RUN("SIZE over the peer's limit", &conf, NULL, steps, NULL);
}

static void
test_size_unlimited(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_b, 1);
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {"250-x\r\n250 SIZE 0\r\n", MAIL_A " SIZE=99999999\r\n", A_IN, NULL,
		0, OP_NONE},
	};

	conf.size = 99999999;
	RUN("SIZE 0: no limit, size still declared", &conf, NULL, steps, NULL);
}

static void
test_8bitmime(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_b, 1);
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_FULL, MAIL_A " SIZE=1234 BODY=8BITMIME\r\n" RCPT_B "DATA\r\n",
		A_IN, NULL, 0, OP_NONE},
	};

	conf.body_8bit = true;
	RUN("8-bit body, BODY=8BITMIME", &conf, NULL, steps, NULL);
}

/* RFC 6152 3: no 8-bit octet to a peer without 8BITMIME; the 7-bit form,
   with its own size and no BODY=, or nothing at all */
static void
test_8bit_no_8bitmime(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_b, 1);
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_BASIC, MAIL_A " SIZE=1700\r\n", A_IN, NULL, 0, OP_NONE},
	    {OK250, RCPT_B, A_IN, NULL, 0, OP_NONE},
	    {OK250, "DATA\r\n", A_IN, NULL, 0, OP_NONE},
	    {GO354, "", A_BODY, NULL, 0, OP_NONE},
	};

	conf.body_8bit = true;
	conf.downgrade = SMTP_DOWNGRADE_OK;
	conf.size_7bit = 1700;
	RUN("8-bit body, peer without 8BITMIME: its 7-bit form", &conf, NULL,
	    steps, check_downgrade);
}

static void
test_8bit_8bitmime_no_downgrade(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_b, 1);
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_FULL, MAIL_A " SIZE=1234 BODY=8BITMIME\r\n" RCPT_B "DATA\r\n",
		A_IN, NULL, 0, OP_NONE},
	    {OK250 OK250 GO354, "", A_BODY, NULL, 0, OP_NONE},
	};

	conf.body_8bit = true;
	conf.downgrade = SMTP_DOWNGRADE_OK;
	conf.size_7bit = 1700;
	RUN("8-bit body, 8BITMIME offered: sent as it is", &conf, NULL, steps,
	    check_no_downgrade);
}

static void
check_why(struct smtp_client *c)
{
	T_CHECK(strstr(smtp_client_result(c, 0)->text,
		    "no 7-bit form: 8-bit octets in message/partial and the "
		    "peer") != NULL);
}

static void
test_8bit_no_8bitmime_impossible(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_b, 1);
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_BASIC, "", A_DONE, WANT({RS_PERM, 554, "5.6.3", NULL}),
		OP_NONE},
	};

	conf.body_8bit = true;
	conf.downgrade_why = "8-bit octets in message/partial";
	RUN("8-bit body without a 7-bit form, peer without 8BITMIME: 5.6.3",
	    &conf, NULL, steps, check_why);
}

static void
test_8bit_headers_no_8bitmime(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_b, 1);
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_BASIC, "", A_DONE, WANT({RS_PERM, 554, "5.6.3", NULL}),
		OP_NONE},
	};

	conf.body_8bit = true;
	conf.downgrade = SMTP_DOWNGRADE_OK | SMTP_DOWNGRADE_HDR_8BIT;
	RUN("8-bit header fields, peer without 8BITMIME: 5.6.3", &conf, NULL,
	    steps, NULL);
}

/* RFC 6531 needs 8BITMIME too, but a peer may offer SMTPUTF8 alone: the
   UTF-8 header fields may go, the body still goes 7-bit */
static void
test_8bit_headers_smtputf8_only(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_b, 1);
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {"250-mx.example.net\r\n250-SIZE 100000\r\n250-SMTPUTF8\r\n"
	     "250 ENHANCEDSTATUSCODES\r\n",
		MAIL_A " SIZE=1700 SMTPUTF8\r\n", A_IN, NULL, 0, OP_NONE},
	    {OK250, RCPT_B, A_IN, NULL, 0, OP_NONE},
	    {OK250, "DATA\r\n", A_IN, NULL, 0, OP_NONE},
	    {GO354, "", A_BODY, NULL, 0, OP_NONE},
	};

	conf.body_8bit = true;
	conf.smtputf8 = true;
	conf.downgrade = SMTP_DOWNGRADE_OK | SMTP_DOWNGRADE_HDR_8BIT;
	conf.size_7bit = 1700;
	RUN("SMTPUTF8 without 8BITMIME: UTF-8 headers, 7-bit body", &conf, NULL,
	    steps, check_downgrade);
}

static void
test_8bit_downgrade_size(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_b, 1);
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_BASIC, "", A_DONE, WANT({RS_PERM, 552, "5.3.4", NULL}),
		OP_NONE},
	};

	conf.body_8bit = true;
	conf.downgrade = SMTP_DOWNGRADE_OK;
	conf.size_7bit = 100001; /* over EHLO_BASIC's SIZE 100000 */
	RUN("the 7-bit form is over the peer's SIZE: 5.3.4", &conf, NULL, steps,
	    NULL);
}

static const struct smtp_client_rcpt rcpt_utf8[] = {
    {"j\xc3\xb6rg@example.net", 0, NULL, NULL},
};

static void
test_smtputf8(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_utf8, 1);
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_FULL,
		MAIL_A " SIZE=1234 SMTPUTF8\r\n"
		       "RCPT TO:<j\xc3\xb6rg@example.net>\r\nDATA\r\n",
		A_IN, NULL, 0, OP_NONE},
	};

	RUN("SMTPUTF8 offered, UTF-8 recipient", &conf, NULL, steps, NULL);
}

static void
test_smtputf8_missing(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_b, 1);
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_BASIC, "", A_DONE, WANT({RS_PERM, 553, "5.6.7", NULL}),
		OP_NONE},
	};

	conf.smtputf8 = true;
	RUN("SMTPUTF8 needed, not offered", &conf, NULL, steps, NULL);
}

static void
test_smtputf8_missing_autodetect(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_utf8, 1);
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {"250 mx\r\n", "", A_DONE, WANT({RS_PERM, 553, "5.6.7", NULL}),
		OP_NONE},
	};

	RUN("UTF-8 address, peer without SMTPUTF8", &conf, NULL, steps, NULL);
}

/* ---- REQUIRETLS (RFC 8689) ------------------------------------------------
 */

#define EHLO_RT                                                                \
	"250-mx.example.net\r\n250-PIPELINING\r\n250-SIZE 100000\r\n"          \
	"250-REQUIRETLS\r\n250 ENHANCEDSTATUSCODES\r\n"
#define EHLO_NO_RT                                                             \
	"250-mx.example.net\r\n250-PIPELINING\r\n250-SIZE 100000\r\n"          \
	"250 ENHANCEDSTATUSCODES\r\n"
#define EHLO_TLS_RT                                                            \
	"250-mx.example.net\r\n250-STARTTLS\r\n250-REQUIRETLS\r\n"             \
	"250 SIZE 100000\r\n"
#define TLS_220 "220 2.0.0 Ready to start TLS\r\n"

/* A REQUIRETLS message and a hop named by a policy; STARTTLS wanted. */
static struct smtp_client_conf
conf_rt(const char *sender)
{
	struct smtp_client_conf c = conf_base(rcpt_bcd, 2);

	c.sender = sender;
	c.requiretls = true;
	c.want_starttls = true;
	c.tls_policy = true;
	return c;
}

/* One REQUIRETLS session: after STARTTLS the peer says ehlo2; the
 * handshake verified or not (op); the result is want (or, NULL, MAIL);
 * check, if not NULL, looks at the client at the end. */
static void
run_rt_check(const char *name, struct smtp_client_conf *conf, enum op op,
    const char *ehlo2, const char *cli, enum smtp_client_action act, int code,
    const char *enh, void (*check)(struct smtp_client *))
{
	const struct want w[] = {
	    {RS_PERM, code, enh, NULL}, {RS_PERM, code, enh, NULL}};
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_TLS, "STARTTLS\r\n", A_IN, NULL, 0, OP_NONE},
	    {TLS_220, "", A_TLS, NULL, 0, op},
	    {NULL, EHLO, A_IN, NULL, 0, OP_NONE},
	    {ehlo2, cli, act, code == 0 ? NULL : w, code == 0 ? 0 : 2, OP_NONE},
	};

	RUN(name, conf, NULL, steps, check);
}

static void
run_rt(const char *name, struct smtp_client_conf *conf, enum op op,
    const char *ehlo2, const char *cli, enum smtp_client_action act, int code,
    const char *enh)
{
	run_rt_check(name, conf, op, ehlo2, cli, act, code, enh, NULL);
}

/* what test_requiretls_refused_flag expects of the session it runs next */
static bool rt_refused_want;

static void
check_rt_refused(struct smtp_client *c)
{
	T_CHECK(smtp_client_requiretls_refused(c) == rt_refused_want);
}

/* The shell tries the next MX host only after a REQUIRETLS refusal
 * (RFC 8689 4.2.1): the client says which refusals those are. */
static void
test_requiretls_refused_flag(void)
{
	struct smtp_client_conf conf = conf_rt("a@example.org");
	const struct step too_big[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {"250-mx.example.net\r\n250 SIZE 1000\r\n", "", A_DONE,
		WANT({RS_PERM, 552, "5.3.4", NULL},
		    {RS_PERM, 552, "5.3.4", NULL}),
		OP_NONE},
	};

	rt_refused_want = true;
	run_rt_check("REQUIRETLS refusal flagged: no REQUIRETLS", &conf,
	    OP_TLS_DONE, EHLO_NO_RT, "", A_DONE, 550, "5.7.30",
	    check_rt_refused);
	run_rt_check("REQUIRETLS refusal flagged: not verified", &conf,
	    OP_TLS_UNVERIFIED, EHLO_RT, "", A_DONE, 550, "5.7.10",
	    check_rt_refused);
	rt_refused_want = false;
	run_rt_check("REQUIRETLS met: no refusal", &conf, OP_TLS_DONE, EHLO_RT,
	    MAIL_A " SIZE=1234 REQUIRETLS\r\n" RCPT_B RCPT_C "DATA\r\n", A_IN,
	    0, NULL, check_rt_refused);
	conf.requiretls = false;
	RUN("a refusal for another reason is not a REQUIRETLS one", &conf, NULL,
	    too_big, check_rt_refused);
}

static void
test_requiretls(void)
{
	struct smtp_client_conf conf = conf_rt("a@example.org");

	run_rt("REQUIRETLS: verified policy hop offering it", &conf,
	    OP_TLS_DONE, EHLO_RT,
	    MAIL_A " SIZE=1234 REQUIRETLS\r\n" RCPT_B RCPT_C "DATA\r\n", A_IN,
	    0, NULL);
	run_rt("REQUIRETLS: peer without REQUIRETLS", &conf, OP_TLS_DONE,
	    EHLO_NO_RT, "", A_DONE, 550, "5.7.30");
	run_rt("REQUIRETLS: certificate not verified", &conf, OP_TLS_UNVERIFIED,
	    EHLO_RT, "", A_DONE, 550, "5.7.10");
	/* the plaintext EHLO's REQUIRETLS is forgotten at STARTTLS */
	{
		const struct step steps[] = {
		    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
		    {EHLO_TLS_RT, "STARTTLS\r\n", A_IN, NULL, 0, OP_NONE},
		    {TLS_220, "", A_TLS, NULL, 0, OP_TLS_DONE},
		    {NULL, EHLO, A_IN, NULL, 0, OP_NONE},
		    {EHLO_NO_RT, "", A_DONE,
			WANT({RS_PERM, 550, "5.7.30", NULL},
			    {RS_PERM, 550, "5.7.30", NULL}),
			OP_NONE},
		};

		RUN("REQUIRETLS: offered before STARTTLS only", &conf, NULL,
		    steps, NULL);
	}
	conf.tls_policy = false;
	run_rt("REQUIRETLS: verified, but no policy names the hop", &conf,
	    OP_TLS_DONE, EHLO_RT, "", A_DONE, 550, "5.7.10");
}

static void
test_requiretls_no_tls(void)
{
	struct smtp_client_conf conf = conf_rt("a@example.org");
	const struct step plain[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_RT, "", A_DONE,
		WANT({RS_PERM, 550, "5.7.10", NULL},
		    {RS_PERM, 550, "5.7.10", NULL}),
		OP_NONE},
	};
	const struct step refused[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_TLS, "STARTTLS\r\n", A_IN, NULL, 0, OP_NONE},
	    {"454 4.7.0 TLS not available\r\n", "", A_DONE,
		WANT({RS_PERM, 550, "5.7.10", NULL},
		    {RS_PERM, 550, "5.7.10", NULL}),
		OP_NONE},
	};

	rt_refused_want = true; /* the shell tries the next host */
	RUN("REQUIRETLS: no STARTTLS offered, nothing sent", &conf, NULL, plain,
	    check_rt_refused);
	RUN("REQUIRETLS: STARTTLS refused, nothing sent", &conf, NULL, refused,
	    check_rt_refused);
}

/* RFC 8689 5: a bounce is never held back, and carries REQUIRETLS where
 * it can; LMTP is the final hop; other mail never sends the parameter. */
static void
test_requiretls_exempt(void)
{
	struct smtp_client_conf conf = conf_rt("");
	const struct step bounce_plain[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_RT, "MAIL FROM:<> SIZE=1234\r\n" RCPT_B RCPT_C "DATA\r\n",
		A_IN, NULL, 0, OP_NONE},
	};
	const struct step lmtp[] = {
	    {"220 mbox LMTP\r\n", "LHLO client.example\r\n", A_IN, NULL, 0,
		OP_NONE},
	    {"250-mbox\r\n250 PIPELINING\r\n",
		MAIL_A "\r\n" RCPT_B RCPT_C "DATA\r\n", A_IN, NULL, 0, OP_NONE},
	};

	RUN("REQUIRETLS bounce in plaintext: sent, no parameter", &conf, NULL,
	    bounce_plain, NULL);
	run_rt("REQUIRETLS bounce over TLS: parameter passed", &conf,
	    OP_TLS_UNVERIFIED, EHLO_RT,
	    "MAIL FROM:<> SIZE=1234 REQUIRETLS\r\n" RCPT_B RCPT_C "DATA\r\n",
	    A_IN, 0, NULL);
	conf = conf_rt("a@example.org");
	conf.want_starttls = false;
	conf.lmtp = true;
	RUN("REQUIRETLS over LMTP: the final hop", &conf, NULL, lmtp, NULL);
	conf = conf_rt("a@example.org");
	conf.requiretls = false;
	run_rt("no REQUIRETLS: no parameter to a peer offering it", &conf,
	    OP_TLS_DONE, EHLO_RT,
	    MAIL_A " SIZE=1234\r\n" RCPT_B RCPT_C "DATA\r\n", A_IN, 0, NULL);
}

/* ---- the peer's name (TLS-RPT receiving-mx-helo) ------------------------
 */

/* the name test_peer_name expects of the session it runs next */
static const char *peer_want;

static void
check_peer(struct smtp_client *c)
{
	T_CHECK_STR(smtp_client_peer_name(c), peer_want);
}

#define GREET_NAMED "220 greet.example.net ESMTP ready\r\n"
#define SEND_B	    MAIL_A "\r\n" RCPT_B "DATA\r\n"

static void
test_peer_name(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_b, 1);
	const struct step ehlo[] = {
	    {GREET_NAMED, EHLO, A_IN, NULL, 0, OP_NONE},
	    {"250-ehlo.example.net Hello client.example\r\n250 PIPELINING\r\n",
		SEND_B, A_IN, NULL, 0, OP_NONE},
	};
	const struct step greet_only[] = {
	    {GREET_NAMED, EHLO, A_IN, NULL, 0, OP_NONE},
	};
	const struct step bad_ehlo[] = {
	    {GREET_NAMED, EHLO, A_IN, NULL, 0, OP_NONE},
	    {"250-<ehlo>\r\n250 PIPELINING\r\n", SEND_B, A_IN, NULL, 0,
		OP_NONE},
	};
	const struct step helo[] = {
	    {GREET_NAMED, EHLO, A_IN, NULL, 0, OP_NONE},
	    {"502 5.5.2 no\r\n", HELO, A_IN, NULL, 0, OP_NONE},
	    {"250 helo.example.net\r\n", MAIL_A "\r\n", A_IN, NULL, 0, OP_NONE},
	};
	const struct step literal[] = {
	    {"220 ready\x01 now\r\n", EHLO, A_IN, NULL, 0, OP_NONE},
	    {"250-[192.0.2.7]\r\n250 PIPELINING\r\n", SEND_B, A_IN, NULL, 0,
		OP_NONE},
	};
	const struct step none[] = {
	    {"220 \r\n", EHLO, A_IN, NULL, 0, OP_NONE},
	    {"250-h\xc3\xa9.example\r\n250 PIPELINING\r\n", SEND_B, A_IN, NULL,
		0, OP_NONE},
	};

	peer_want = "ehlo.example.net";
	RUN("peer name: the EHLO reply's", &conf, NULL, ehlo, check_peer);
	peer_want = "greet.example.net";
	RUN("peer name: the greeting's before EHLO", &conf, NULL, greet_only,
	    check_peer);
	RUN("peer name: a bad EHLO word keeps the greeting's", &conf, NULL,
	    bad_ehlo, check_peer);
	peer_want = "helo.example.net";
	RUN("peer name: the HELO reply's", &conf, NULL, helo, check_peer);
	peer_want = "[192.0.2.7]";
	RUN("peer name: an address literal", &conf, NULL, literal, check_peer);
	peer_want = "";
	RUN("peer name: none that looks like one", &conf, NULL, none,
	    check_peer);
}

/* ---- DSN --------------------------------------------------------------- */

static const struct smtp_client_rcpt rcpt_dsn[] = {
    {"b@example.net", SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE, "rfc822",
	"b+x=y@example.net"},
    {"c@example.net", SMTP_NOTIFY_NEVER, NULL, NULL},
    {"d@example.net", SMTP_NOTIFY_DELAY, "utf-8", "d\xc3\xa9@example.net"},
};

static void
check_dsn_passed(struct smtp_client *c)
{
	T_CHECK(smtp_client_result(c, 0)->dsn_passed);
	T_CHECK(smtp_client_result(c, 1)->dsn_passed);
}

static void
test_dsn(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_dsn, 3);
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_FULL,
		MAIL_A " SIZE=1234 RET=HDRS ENVID=QQ+2B1\r\n"
		       "RCPT TO:<b@example.net> NOTIFY=SUCCESS,FAILURE "
		       "ORCPT=rfc822;b+2Bx+3Dy@example.net\r\n"
		       "RCPT TO:<c@example.net> NOTIFY=NEVER\r\n"
		       "RCPT TO:<d@example.net> NOTIFY=DELAY\r\n"
		       "DATA\r\n",
		A_IN, NULL, 0, OP_NONE},
	    {OK250 OK250 OK250 OK250 GO354, "", A_BODY, NULL, 0, OP_NONE},
	    {QUEUED, "", A_DONE,
		WANT({RS_OK, 250, "2.0.0", NULL}, {RS_OK, 250, "2.0.0", NULL},
		    {RS_OK, 250, "2.0.0", NULL}),
		OP_NONE},
	};

	conf.ret = SMTP_RET_HDRS;
	conf.envid = "QQ+1";
	RUN("DSN offered: NOTIFY, ORCPT, RET, ENVID", &conf, NULL, steps,
	    check_dsn_passed);
}

static void
check_dsn_not_passed(struct smtp_client *c)
{
	T_CHECK(!smtp_client_result(c, 0)->dsn_passed);
}

static void
test_dsn_not_offered(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_dsn, 1);
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_BASIC, MAIL_A " SIZE=1234\r\n", A_IN, NULL, 0, OP_NONE},
	    {OK250, RCPT_B, A_IN, NULL, 0, OP_NONE},
	    {OK250, "DATA\r\n", A_IN, NULL, 0, OP_NONE},
	    {GO354, "", A_BODY, NULL, 0, OP_NONE},
	    {QUEUED, "", A_DONE, WANT({RS_OK, 250, "2.0.0", NULL}), OP_NONE},
	};

	conf.ret = SMTP_RET_FULL;
	conf.envid = "x";
	RUN("DSN not offered: no parameters, not passed", &conf, NULL, steps,
	    check_dsn_not_passed);
}

static void
test_envid_too_long(void)
{
	static char envid[120];
	struct smtp_client_conf conf = conf_base(rcpt_b, 1);
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_FULL, MAIL_A " SIZE=1234 RET=FULL\r\n" RCPT_B "DATA\r\n",
		A_IN, NULL, 0, OP_NONE},
	};

	memset(envid, 'e', sizeof(envid) - 1);
	conf.envid = envid;
	conf.ret = SMTP_RET_FULL;
	RUN("ENVID over 100 octets dropped", &conf, NULL, steps, NULL);
}

/* ---- failures in the transaction --------------------------------------- */

static void
test_mail_refused_pipelined(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_bcd, 2);
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_FULL, MAIL_A " SIZE=1234\r\n" RCPT_B RCPT_C "DATA\r\n", A_IN,
		NULL, 0, OP_NONE},
	    {"550 5.7.1 Sender rejected\r\n503 5.5.1 Need MAIL\r\n"
	     "503 5.5.1 Need MAIL\r\n503 5.5.1 Need RCPT\r\n",
		"", A_DONE,
		WANT({RS_PERM, 550, "5.7.1", "Sender rejected"},
		    {RS_PERM, 550, "5.7.1", NULL}),
		OP_NONE},
	};

	RUN("MAIL refused, pipelined 503s ignored", &conf, NULL, steps, NULL);
}

static void
test_mail_451_serial(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_b, 1);
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_BASIC, MAIL_A " SIZE=1234\r\n", A_IN, NULL, 0, OP_NONE},
	    {"451 4.7.1 Greylisted\r\n", "", A_DONE,
		WANT({RS_TEMP, 451, "4.7.1", "Greylisted"}), OP_NONE},
	};

	RUN("MAIL 451, one at a time", &conf, NULL, steps, NULL);
}

static void
test_data_refused(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_b, 1);
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_BASIC, MAIL_A " SIZE=1234\r\n", A_IN, NULL, 0, OP_NONE},
	    {OK250, RCPT_B, A_IN, NULL, 0, OP_NONE},
	    {OK250, "DATA\r\n", A_IN, NULL, 0, OP_NONE},
	    {"554 5.5.1 No\r\n", "", A_DONE,
		WANT({RS_PERM, 554, "5.5.1", "No"}), OP_NONE},
	};

	RUN("DATA refused", &conf, NULL, steps, NULL);
}

static void
test_final_451(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_bcd, 2);
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_FULL, MAIL_A " SIZE=1234\r\n" RCPT_B RCPT_C "DATA\r\n", A_IN,
		NULL, 0, OP_NONE},
	    {OK250 OK250 "550 5.1.1 No\r\n" GO354, "", A_BODY, NULL, 0,
		OP_NONE},
	    {"451 4.3.0 Queue trouble\r\n", "", A_DONE,
		WANT({RS_TEMP, 451, "4.3.0", "Queue trouble"},
		    {RS_PERM, 550, "5.1.1", "No"}),
		OP_NONE},
	};

	RUN("final 451 after data", &conf, NULL, steps, NULL);
}

static void
test_rcpt_421(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_bcd, 3);
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_FULL, MAIL_A " SIZE=1234\r\n" RCPT_B RCPT_C RCPT_D "DATA\r\n",
		A_IN, NULL, 0, OP_NONE},
	    {OK250 "250 Ok\r\n550 5.1.1 No c\r\n421 4.4.2 Timeout\r\n", "",
		A_FAIL,
		WANT({RS_TEMP, 421, "4.4.2", NULL},
		    {RS_PERM, 550, "5.1.1", NULL},
		    {RS_TEMP, 421, "4.4.2", NULL}),
		OP_NONE},
	};

	RUN("421 in the middle of the RCPTs", &conf, NULL, steps, NULL);
}

static void
test_body_timeout(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_bcd, 2);
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_FULL, MAIL_A " SIZE=1234\r\n" RCPT_B RCPT_C "DATA\r\n", A_IN,
		NULL, 0, OP_NONE},
	    {OK250 OK250 "550 5.1.1 No\r\n" GO354, "", A_BODY, NULL, 0,
		OP_FAIL},
	    {NULL, "", A_FAIL,
		WANT({RS_TEMP, 421, "4.4.2", NULL},
		    {RS_PERM, 550, "5.1.1", NULL}),
		OP_NONE},
	};

	RUN("shell failure after the body", &conf, NULL, steps, NULL);
}

static void
test_multiline_enh(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_b, 1);
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_BASIC, MAIL_A " SIZE=1234\r\n", A_IN, NULL, 0, OP_NONE},
	    {OK250, RCPT_B, A_IN, NULL, 0, OP_NONE},
	    {"550-5.1.1 The email account that you tried to reach does\r\n"
	     "550-5.1.1 not exist. Please try double-checking the\r\n"
	     "550 5.1.1 recipient's email address.\r\n",
		"", A_DONE,
		WANT({RS_PERM, 550, "5.1.1",
		    "The email account that you tried to reach does\n"
		    "not exist. Please try double-checking the\n"
		    "recipient's email address."}),
		OP_NONE},
	};

	RUN("multi-line reply with enhanced codes", &conf, NULL, steps, NULL);
}

static void
test_bare_lf_peer(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_b, 1);
	const struct step steps[] = {
	    {"220 mx\n", EHLO, A_IN, NULL, 0, OP_NONE},
	    {"250-mx\n250 PIPELINING\n", MAIL_A "\r\n" RCPT_B "DATA\r\n", A_IN,
		NULL, 0, OP_NONE},
	    {"250 ok\n250 ok\n354 go\n", "", A_BODY, NULL, 0, OP_NONE},
	    {"250 ok\n", "", A_DONE, WANT({RS_OK, 250, "", "ok"}), OP_NONE},
	};

	RUN("peer ending lines with bare LF", &conf, NULL, steps, NULL);
}

/* ---- bad replies ------------------------------------------------------- */

static void
test_bad_reply(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_b, 1);
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {"250-mx\r\n2x0 oops\r\n", "", A_FAIL,
		WANT({RS_TEMP, 451, "4.5.0", NULL}), OP_NONE},
	};

	RUN("reply that does not parse", &conf, NULL, steps, NULL);
}

static void
test_mixed_codes(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_b, 1);
	const struct step steps[] = {
	    {"220-mx\r\n250 mixed\r\n", "", A_FAIL,
		WANT({RS_TEMP, 451, "4.5.0", NULL}), OP_NONE},
	};

	RUN("greeting with mixed codes", &conf, NULL, steps, NULL);
}

static void
test_long_line(void)
{
	static char srv[700];
	struct smtp_client_conf conf = conf_base(rcpt_b, 1);
	const struct step steps[] = {
	    {srv, "", A_FAIL, WANT({RS_TEMP, 451, "4.5.0", NULL}), OP_NONE},
	};

	memset(srv, 'x', sizeof(srv) - 1);
	memcpy(srv, "220 ", 4);
	RUN("reply line over 512 octets", &conf, NULL, steps, NULL);
}

static void
test_too_many_lines(void)
{
	static char srv[101 * 7 + 1];
	struct smtp_client_conf conf = conf_base(rcpt_b, 1);
	const struct step steps[] = {
	    {srv, "", A_FAIL, WANT({RS_TEMP, 451, "4.5.0", NULL}), OP_NONE},
	};
	size_t i;

	for (i = 0; i < 101; i++)
		memcpy(srv + 7 * i, "220-ab\n", 7);
	RUN("reply of 101 lines", &conf, NULL, steps, NULL);
}

static void
test_354_no_rcpt(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_b, 1);
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_FULL, MAIL_A " SIZE=1234\r\n" RCPT_B "DATA\r\n", A_IN, NULL,
		0, OP_NONE},
	    {OK250 "550 5.1.1 No\r\n" GO354, "", A_FAIL,
		WANT({RS_PERM, 550, "5.1.1", "No"}), OP_NONE},
	};

	RUN("354 though no recipient was accepted", &conf, NULL, steps, NULL);
}

static void
test_unexpected_3xx(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_b, 1);
	const struct step steps[] = {
	    {GREET, EHLO, A_IN, NULL, 0, OP_NONE},
	    {EHLO_BASIC, MAIL_A " SIZE=1234\r\n", A_IN, NULL, 0, OP_NONE},
	    {"354 what\r\n", "", A_FAIL,
		WANT({RS_TEMP, 451, "4.5.0",
		    "Unexpected reply to MAIL FROM: 354 what"}),
		OP_NONE},
	};

	RUN("354 to MAIL", &conf, NULL, steps, NULL);
}

static void
test_long_text_cut(void)
{
	static char srv[4000];
	struct smtp_client_conf conf = conf_base(rcpt_b, 1);
	const struct step steps[] = {
	    {srv, "", A_FAIL, WANT({RS_TEMP, 450, "", NULL}), OP_NONE},
	};
	size_t i, o = 0;
	const struct smtp_client_result *res;

	for (i = 0; i < 5; i++) {
		memcpy(srv + o, i < 4 ? "450-" : "450 ", 4);
		memset(srv + o + 4, 'a' + (int)i, 400);
		memcpy(srv + o + 404, "\r\n", 2);
		o += 406;
	}
	srv[o] = '\0';
	RUN("long result text cut", &conf, NULL, steps, NULL);
	{
		struct smtp_client *c = smtp_client_new(&conf);
		struct buf out;
		size_t cons;

		buf_init(&out, 4096);
		(void)smtp_client_next(c, srv, o, &cons, &out);
		res = smtp_client_result(c, 0);
		T_CHECK_INT(strlen(res->text), SMTP_CLIENT_TEXT_MAX - 1);
		T_CHECK(
		    strcmp(res->text + SMTP_CLIENT_TEXT_MAX - 4, "...") == 0);
		smtp_client_free(c);
		buf_free(&out);
	}
}

/* ---- odds and ends ----------------------------------------------------- */

static void
test_conf_invalid(void)
{
	static const struct smtp_client_rcpt bad_crlf[] = {
	    {"b@example.net\r\nRSET", 0, NULL, NULL}};
	static const struct smtp_client_rcpt empty[] = {{"", 0, NULL, NULL}};
	static char longaddr[300];
	struct smtp_client_rcpt longr[1] = {{longaddr, 0, NULL, NULL}};
	struct smtp_client_conf conf;
	struct smtp_client *c;

	t_case("invalid configurations");
	memset(longaddr, 'a', sizeof(longaddr) - 1);
	conf = conf_base(bad_crlf, 1);
	T_CHECK(smtp_client_new(&conf) == NULL);
	conf = conf_base(empty, 1);
	T_CHECK(smtp_client_new(&conf) == NULL);
	conf = conf_base(longr, 1);
	T_CHECK(smtp_client_new(&conf) == NULL);
	conf = conf_base(rcpt_b, 0);
	T_CHECK(smtp_client_new(&conf) == NULL);
	conf = conf_base(rcpt_b, 1);
	conf.sender = "a@b\n";
	T_CHECK(smtp_client_new(&conf) == NULL);
	conf = conf_base(rcpt_b, 1);
	conf.helo = "bad helo";
	T_CHECK(smtp_client_new(&conf) == NULL);
	conf = conf_base(rcpt_b, 1);
	conf.auth_user = "u";
	T_CHECK(smtp_client_new(&conf) == NULL);
	conf = conf_base(rcpt_b, 1);
	conf.sender = "";
	c = smtp_client_new(&conf);
	T_CHECK(c != NULL);
	/* not in DONE: no reset */
	T_CHECK_INT(smtp_client_reset_message(c, &conf), -1);
	smtp_client_free(c);
	smtp_client_free(NULL);
}

static void
test_null_sender_waiting(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_b, 1);
	struct smtp_client *c;
	struct buf out;
	size_t cons;

	t_case("null sender, waiting names");
	conf.sender = "";
	c = smtp_client_new(&conf);
	buf_init(&out, 4096);
	T_CHECK_STR(smtp_client_waiting(c), "greeting");
	T_CHECK_INT(
	    smtp_client_next(c, S(GREET), &cons, &out), SMTP_CLIENT_SEND);
	T_CHECK_STR(smtp_client_waiting(c), "EHLO");
	buf_reset(&out);
	T_CHECK_INT(
	    smtp_client_next(c, S("250 x\r\n"), &cons, &out), SMTP_CLIENT_SEND);
	T_CHECK_STR(out.data, "MAIL FROM:<>\r\n");
	T_CHECK_STR(smtp_client_waiting(c), "MAIL FROM");
	buf_reset(&out);
	T_CHECK_INT(
	    smtp_client_next(c, S("250 x\r\n"), &cons, &out), SMTP_CLIENT_SEND);
	T_CHECK_STR(smtp_client_waiting(c), "RCPT TO");
	smtp_client_free(c);
	buf_free(&out);
}

static void
test_out_full(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_bcd, 3);
	struct smtp_client *c = smtp_client_new(&conf);
	struct buf out;
	size_t cons;

	t_case("output buffer full");
	buf_init(&out, 40);
	T_CHECK_INT(
	    smtp_client_next(c, S(GREET), &cons, &out), SMTP_CLIENT_SEND);
	buf_reset(&out);
	T_CHECK_INT(
	    smtp_client_next(c, S(EHLO_FULL), &cons, &out), SMTP_CLIENT_FAILED);
	T_CHECK_INT(out.len, 0);
	T_CHECK_INT(smtp_client_result(c, 2)->cls, SMTP_RESULT_TEMP);
	smtp_client_free(c);
	buf_free(&out);
}

/* ---- LMTP (RFC 2033) ------------------------------------------------------
 */

#define LHLO "LHLO client.example\r\n"
#define LHLO_OK                                                                \
	"250-mbox.example.net\r\n250-PIPELINING\r\n"                           \
	"250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 STARTTLS\r\n"

static void
test_lmtp_reply_per_recipient(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_bcd, 3);
	const struct step steps[] = {
	    {"220 mbox LMTP\r\n", LHLO, A_IN, NULL, 0, OP_NONE},
	    /* STARTTLS is offered but never used over LMTP */
	    {LHLO_OK, MAIL_A "\r\n" RCPT_B RCPT_C RCPT_D "DATA\r\n", A_IN, NULL,
		0, OP_NONE},
	    {OK250 "250 2.1.5 Ok\r\n550 5.1.1 No such user\r\n"
		   "250 2.1.5 Ok\r\n" GO354,
		"", A_BODY, NULL, 0, OP_NONE},
	    /* one reply per accepted recipient: b, then d */
	    {"250 2.0.0 <b@example.net> Saved\r\n", "", A_IN, NULL, 0, OP_NONE},
	    {"452 4.2.2 <d@example.net> Mailbox full\r\n", "", A_DONE,
		WANT({RS_OK, 250, "2.0.0", NULL}, {RS_PERM, 550, "5.1.1", NULL},
		    {RS_TEMP, 452, "4.2.2", NULL}),
		OP_NONE},
	};

	conf.want_starttls = true;
	conf.lmtp = true;
	RUN("LMTP: LHLO, no STARTTLS, one reply per accepted recipient", &conf,
	    NULL, steps, NULL);
}

static void
test_lmtp_replies_in_one_read(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_bcd, 2);
	const struct step steps[] = {
	    {"220 mbox LMTP\r\n", LHLO, A_IN, NULL, 0, OP_NONE},
	    {LHLO_OK, MAIL_A "\r\n" RCPT_B RCPT_C "DATA\r\n", A_IN, NULL, 0,
		OP_NONE},
	    {OK250 "250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n" GO354, "", A_BODY, NULL,
		0, OP_NONE},
	    {"550 5.2.0 <b@example.net> Rejected by Sieve\r\n"
	     "250 2.0.0 <c@example.net> Saved\r\n",
		"", A_DONE,
		WANT(
		    {RS_PERM, 550, "5.2.0", NULL}, {RS_OK, 250, "2.0.0", NULL}),
		OP_RESET},
	    /* the next message: no RSET is needed after LMTP's replies */
	    {NULL, MAIL_A "\r\n" RCPT_B RCPT_C "DATA\r\n", A_IN, NULL, 0,
		OP_NONE},
	};

	conf.lmtp = true;
	RUN("LMTP: all replies after the dot at once, then the next message",
	    &conf, &conf, steps, NULL);
}

static void
test_lmtp_lhlo_refused(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_b, 1);
	const struct step steps[] = {
	    {"220 mbox LMTP\r\n", LHLO, A_IN, NULL, 0, OP_NONE},
	    {"500 5.5.1 Unknown command\r\n", "QUIT\r\n", A_FAIL,
		WANT({RS_PERM, 500, "5.5.1", NULL}), OP_NONE},
	};

	conf.lmtp = true;
	RUN("LMTP: LHLO refused is not followed by HELO", &conf, NULL, steps,
	    NULL);
}

static void
test_lmtp_conf(void)
{
	struct smtp_client_conf conf = conf_base(rcpt_b, 1);

	t_case("LMTP: no AUTH nor required TLS");
	conf.lmtp = true;
	conf.auth_user = "u";
	conf.auth_pass = "p";
	T_CHECK(smtp_client_new(&conf) == NULL);
	conf.auth_user = conf.auth_pass = NULL;
	conf.require_tls = true;
	T_CHECK(smtp_client_new(&conf) == NULL);
}

/* The one check of our EHLO name, which remote_new() uses too. */
static void
test_helo_ok(void)
{
	static const struct {
		const char *h;
		bool ok;
	} rows[] = {
	    {"mx.example.org", true},
	    {"[192.0.2.1]", true},
	    {"h\xc3\xa9te.example", true}, /* 8-bit: not ours to refuse */
	    {"", false},
	    {"mx example", false},
	    {"mx\texample", false},
	    {"mx\r\n", false},
	    {"mx\x7f", false},
	};
	char lng[ADDR_DOMAIN_MAX + 2];
	size_t i;

	t_case("smtp_client_helo_ok: the EHLO names smtp_client_new takes");
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct smtp_client_conf conf = conf_base(rcpt_b, 1);
		struct smtp_client *c;

		T_CHECK_INT(smtp_client_helo_ok(rows[i].h), rows[i].ok);
		conf.helo = rows[i].h;
		c = smtp_client_new(&conf);
		T_CHECK_INT(c != NULL, rows[i].ok);
		smtp_client_free(c);
	}
	T_CHECK(!smtp_client_helo_ok(NULL));
	memset(lng, 'a', sizeof(lng));
	lng[ADDR_DOMAIN_MAX] = '\0';
	T_CHECK(smtp_client_helo_ok(lng));
	lng[ADDR_DOMAIN_MAX] = 'a';
	lng[ADDR_DOMAIN_MAX + 1] = '\0';
	T_CHECK(!smtp_client_helo_ok(lng));
}

int
main(void)
{
	test_reply_rows();
	test_reply_limits();
	test_ehlo_caps();
	test_stuff_rows();
	test_stuff_full();
	test_plain();
	test_pipelining_mixed();
	test_pipelining_all_refused();
	test_serial_all_refused();
	test_reuse_after_success();
	test_helo_fallback();
	test_helo_refused();
	test_greeting_421();
	test_greeting_554();
	test_ehlo_421();
	test_starttls();
	test_starttls_injection();
	test_starttls_refused();
	test_require_tls();
	test_require_tls_refused();
	test_tls_handshake_failed();
	test_auth_ok();
	test_auth_535();
	test_auth_no_tls();
	test_auth_plaintext_ok();
	test_auth_decision();
	test_auth_after_starttls();
	test_auth_not_offered();
	test_auth_login_ok();
	test_auth_login_535();
	test_auth_login_third_challenge();
	test_lmtp_reply_per_recipient();
	test_lmtp_replies_in_one_read();
	test_lmtp_lhlo_refused();
	test_lmtp_conf();
	test_size_too_big();
	test_size_unlimited();
	test_8bitmime();
	test_8bit_no_8bitmime();
	test_8bit_8bitmime_no_downgrade();
	test_8bit_no_8bitmime_impossible();
	test_8bit_headers_no_8bitmime();
	test_8bit_headers_smtputf8_only();
	test_8bit_downgrade_size();
	test_smtputf8();
	test_smtputf8_missing();
	test_smtputf8_missing_autodetect();
	test_requiretls();
	test_requiretls_no_tls();
	test_requiretls_exempt();
	test_requiretls_refused_flag();
	test_peer_name();
	test_dsn();
	test_dsn_not_offered();
	test_envid_too_long();
	test_mail_refused_pipelined();
	test_mail_451_serial();
	test_data_refused();
	test_final_451();
	test_rcpt_421();
	test_body_timeout();
	test_multiline_enh();
	test_bare_lf_peer();
	test_bad_reply();
	test_mixed_codes();
	test_long_line();
	test_too_many_lines();
	test_354_no_rcpt();
	test_unexpected_3xx();
	test_long_text_cut();
	test_conf_invalid();
	test_helo_ok();
	test_null_sender_waiting();
	test_out_full();
	return t_summary();
}
