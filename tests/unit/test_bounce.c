/*
 * Unit tests for src/queue/bounce.c: DSNs of every kind are built, written
 * to a temporary directory with the original and a JSON file of what is
 * expected, and checked by tests/unit/check_dsn.py under Debian's python3
 * (its email package, independently of the C code).  A missing python3
 * fails the test; it never skips.  Checks that need no parser (bad input,
 * the output maximum, the returned flags, the boundary avoiding the
 * original) are made here directly.
 */
#include <sys/stat.h>

#include "t.h"
#include "t_pycheck.h"
#include "queue/bounce.h"

#define HOST	  "mta.example.org"
#define T_ARRIVAL ((time_t)1700000000)
#define D_ARRIVAL "Tue, 14 Nov 2023 22:13:20 +0000"
#define T_LAST	  ((time_t)1700003600)
#define D_LAST	  "Tue, 14 Nov 2023 23:13:20 +0000"
#define T_UNTIL	  ((time_t)1700432000)
#define D_UNTIL	  "Sun, 19 Nov 2023 22:13:20 +0000"
#define MSGID	  "<dsn.1@mta.example.org>"

static struct t_pycheck pc;

static const char orig_msg[] = "Return-Path: <ann@example.org>\r\n"
			       "From: Ann <ann@example.org>\r\n"
			       "To: bob@example.net, carl@example.net\r\n"
			       "Subject: quarterly report\r\n"
			       " (folded subject)\r\n"
			       "Message-ID: <orig.1@example.org>\r\n"
			       "Date: Tue, 14 Nov 2023 22:00:00 +0000\r\n"
			       "\r\n"
			       "BODY-MARKER first line of the body\r\n"
			       "\r\n"
			       "--not-a-boundary\r\n"
			       ".leading dot\r\n";

/* ---- files and the python check ------------------------------------- */

/* ---- JSON expectations ------------------------------------------------- */

struct js {
	struct buf b;
	bool comma;
};

static void
js_raw(struct js *j, const char *s)
{
	if (buf_append_str(&j->b, s) != 0)
		abort();
}

static void
js_str(struct js *j, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	js_raw(j, "\"");
	for (; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\' || *p < 0x20) {
			if (buf_printf(&j->b, "\\u%04x", *p) != 0)
				abort();
		} else if (buf_append(&j->b, p, 1) != 0) {
			abort();
		}
	}
	js_raw(j, "\"");
}

static void
js_key(struct js *j, const char *k)
{
	if (j->comma)
		js_raw(j, ",");
	j->comma = true;
	if (k != NULL) {
		js_str(j, k);
		js_raw(j, ":");
	}
}

static void
js_kv(struct js *j, const char *k, const char *v)
{
	js_key(j, k);
	if (v == NULL)
		js_raw(j, "null");
	else
		js_str(j, v);
}

static void
js_open(struct js *j, const char *k, const char *brace)
{
	js_key(j, k);
	js_raw(j, brace);
	j->comma = false;
}

static void
js_close(struct js *j, const char *brace)
{
	js_raw(j, brace);
	j->comma = true;
}

/* ---- cases --------------------------------------------------------------- */

struct dsn_case {
	const char *name;
	struct bounce_in in;
	const char *part3_type;
	bool hdrs_only;
	long part3_max; /* -1: none */
	bool skip_diag; /* diagnostic cut: do not compare it */
	int want_flags;
	const char *text[4];   /* the text part must mention these */
	const char *absent[4]; /* header names that must not appear */
};

static const char *const subjects[] = {
    [BOUNCE_FAILURE] = "Undelivered Mail Returned to Sender",
    [BOUNCE_DELAY] = "Delayed Mail (still being retried)",
    [BOUNCE_SUCCESS] = "Successful Mail Delivery Report",
};

static const char *const actions[] = {
    "failed", "delayed", "delivered", "relayed", "expanded"};

static bool
has_high(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return true;
	return false;
}

static void
js_prefixed(struct js *j, const char *k, const char *pre, const char *v)
{
	char t[4096];

	if (v == NULL || str_fmt(t, sizeof(t), "%s; %s", pre, v) != 0)
		js_kv(j, k, NULL);
	else
		js_kv(j, k, t);
}

static void
js_rcpt(struct js *j, const struct dsn_case *c, const struct bounce_rcpt *r)
{
	bool u = c->in.smtputf8 && has_high(r->final);

	js_open(j, NULL, "{");
	js_prefixed(j, "Final-Recipient", u ? "utf-8" : "rfc822", r->final);
	if (r->orcpt != NULL)
		js_prefixed(j, "Original-Recipient", r->orcpt_type, r->orcpt);
	js_kv(j, "Action", actions[r->action]);
	js_kv(j, "Status", r->status);
	js_prefixed(j, "Remote-MTA", "dns", r->remote_mta);
	if (!c->skip_diag)
		js_prefixed(j, "Diagnostic-Code",
		    r->diag_type ? r->diag_type : "smtp", r->diag);
	js_kv(j, "Last-Attempt-Date", r->last_attempt ? D_LAST : NULL);
	js_kv(j, "Will-Retry-Until", r->retry_until ? D_UNTIL : NULL);
	js_close(j, "}");
}

static void
js_case(struct js *j, const struct dsn_case *c)
{
	size_t i;

	js_open(j, NULL, "{");
	js_kv(j, "subject", subjects[c->in.kind]);
	js_kv(j, "to", c->in.sender);
	js_kv(j, "host", HOST);
	js_kv(j, "message_id", MSGID);
	js_kv(j, "report_type",
	    c->in.smtputf8 ? "global-delivery-status" : "delivery-status");
	js_kv(j, "part3_type", c->part3_type);
	js_key(j, "hdrs_only");
	js_raw(j, c->hdrs_only ? "true" : "false");
	js_key(j, "ascii_only");
	js_raw(j, c->want_flags == 0 ? "true" : "false");
	js_key(j, "part3_max");
	if (c->part3_max < 0)
		js_raw(j, "null");
	else if (buf_printf(&j->b, "%ld", c->part3_max) != 0)
		abort();
	js_open(j, "per_message", "{");
	js_kv(j, "Reporting-MTA", "dns; " HOST);
	js_kv(j, "Original-Envelope-Id", *c->in.envid ? c->in.envid : NULL);
	js_kv(j, "Arrival-Date", D_ARRIVAL);
	js_close(j, "}");
	js_open(j, "rcpts", "[");
	for (i = 0; i < c->in.nrcpts; i++)
		js_rcpt(j, c, &c->in.rcpts[i]);
	js_close(j, "]");
	js_open(j, "text_contains", "[");
	for (i = 0; i < 4 && c->text[i] != NULL; i++)
		js_kv(j, NULL, c->text[i]);
	js_close(j, "]");
	js_open(j, "absent_headers", "[");
	for (i = 0; i < 4 && c->absent[i] != NULL; i++)
		js_kv(j, NULL, c->absent[i]);
	js_close(j, "]");
	js_close(j, "}");
}

/* Build one DSN, write its files, run the python check on it. */
static void
run_case(const struct dsn_case *c)
{
	struct buf out;
	struct js j;
	int rc;

	t_case(c->name);
	buf_init(&out, 64u * 1024 * 1024);
	buf_init(&j.b, 1024 * 1024);
	j.comma = false;
	rc = bounce_build(&c->in, &out);
	T_CHECK_INT(rc, c->want_flags);
	js_case(&j, c);
	T_CHECK(t_pycheck_write(&pc, c->name, ".eml", out.data, out.len));
	T_CHECK(
	    t_pycheck_write(&pc, c->name, ".orig", c->in.msg, c->in.msg_len));
	T_CHECK(t_pycheck_write(&pc, c->name, ".json", j.b.data, j.b.len));
	T_CHECK(rc >= 0 && t_pycheck_run(&pc, c->name));
	buf_free(&out);
	buf_free(&j.b);
}

/* ---- the recipients used by the cases ---------------------------------- */

static const struct bounce_rcpt r_fail[] = {
    {.final = "bob@example.net",
	.orcpt_type = "rfc822",
	.orcpt = "Bob@Example.NET",
	.action = BOUNCE_ACTION_FAILED,
	.status = "5.1.1",
	.remote_mta = "mx1.example.net",
	.diag = "550 5.1.1 <bob@example.net>: no such user",
	.last_attempt = T_LAST},
    {.final = "carl@example.net",
	.action = BOUNCE_ACTION_FAILED,
	.status = "5.4.7",
	.diag = "delivery time expired",
	.diag_type = "x-tern",
	.last_attempt = T_LAST},
};

/* Expired in the queue (qmgr: 4.4.7, the last reply kept whole). */
static const struct bounce_rcpt r_expired[] = {
    {.final = "bob@example.net",
	.action = BOUNCE_ACTION_FAILED,
	.status = "4.4.7",
	.remote_mta = "mx1.example.net",
	.diag = "451 4.7.1 greylisted, try later",
	.last_attempt = T_LAST},
};

static const struct bounce_rcpt r_delay[] = {
    {.final = "bob@example.net",
	.action = BOUNCE_ACTION_DELAYED,
	.status = "4.4.1",
	.remote_mta = "mx1.example.net",
	.diag = "421 4.4.1 connection timed out",
	.last_attempt = T_LAST,
	.retry_until = T_UNTIL},
};

static const struct bounce_rcpt r_success[] = {
    {.final = "bob@example.net",
	.action = BOUNCE_ACTION_DELIVERED,
	.status = "2.0.0",
	.remote_mta = "mx1.example.net",
	.diag = "250 2.0.0 Ok: queued as 4A2B",
	.last_attempt = T_LAST},
    {.final = "carl@example.net",
	.action = BOUNCE_ACTION_RELAYED,
	.status = "2.0.0",
	.remote_mta = "old.example.net",
	.diag = "250 ok",
	.last_attempt = T_LAST},
};

static const struct bounce_rcpt r_hostile[] = {
    {.final = "bob@example.net",
	.orcpt_type = "rfc822",
	.orcpt = "bob@example.net\r\nX-Injected-Orcpt: 1",
	.action = BOUNCE_ACTION_FAILED,
	.status = "5.1.1",
	.remote_mta = "mx.example.net\r\nX-Injected-Mta: 1",
	.diag = "550-5.1.1 no such user\r\nX-Injected: yes\r\n\r\n"
		"--=_tern_fake\r\nContent-Type: text/html\r\n\r\n<b>x</b>\r\n"
		"550 5.1.1 \x01\x1b[31m\x7f"
		"end",
	.last_attempt = T_LAST},
};

static const struct bounce_rcpt r_utf8[] = {
    {.final = "j\xc3\xbcrgen@b\xc3\xbc"
	      "cher.example",
	.orcpt_type = "utf-8",
	.orcpt = "J\xc3\xbcrgen@b\xc3\xbc"
		 "cher.example",
	.action = BOUNCE_ACTION_FAILED,
	.status = "5.1.1",
	.remote_mta = "mx.b\xc3\xbc"
		      "cher.example",
	.diag = "550 5.1.1 unknown user",
	.last_attempt = T_LAST},
};

static char long_diag[3001];
static char big_msg[4096];
static char eight_msg[] = "From: a@example.org\r\nSubject: caf\xc3\xa9\r\n"
			  "\r\nna\xc3\xafve body\r\n";
static const char no_body[] = "Subject: just headers\r\nFrom: a@b.example";

static struct bounce_rcpt r_long[] = {
    {.final = "bob@example.net",
	.action = BOUNCE_ACTION_FAILED,
	.status = "5.0.0",
	.remote_mta = "mx1.example.net",
	.diag = long_diag,
	.last_attempt = T_LAST},
};

/* One case's input: what is not set here comes from fill_defaults(). */
#define IN(k, rc) .kind = k, .rcpts = rc, .nrcpts = sizeof(rc) / sizeof(rc[0])

static void
fill_defaults(struct bounce_in *in)
{
	if (in->reporting_mta == NULL)
		in->reporting_mta = HOST;
	if (in->sender == NULL)
		in->sender = "ann@example.org";
	if (in->envid == NULL) /* "" for none */
		in->envid = "ENV-42 for ann";
	if (in->arrival == 0)
		in->arrival = T_ARRIVAL;
	if (in->msg == NULL) {
		in->msg = orig_msg;
		in->msg_len = sizeof(orig_msg) - 1;
	}
	if (in->msg_len == 0)
		in->msg_len = strlen(in->msg);
	in->date = "Tue, 14 Nov 2023 23:13:21 +0000";
	in->message_id = MSGID;
}

static struct dsn_case cases[] = {
    {"failure_full", {IN(BOUNCE_FAILURE, r_fail)}, "message/rfc822", false, -1,
	false, 0,
	{"could not be delivered", "bob@example.net",
	    "mx1.example.net said: 550 5.1.1", "attached below"},
	{NULL}},
    {"failure_hdrs", {IN(BOUNCE_FAILURE, r_fail), .ret = BOUNCE_RET_HDRS},
	"text/rfc822-headers", true, -1, false, 0,
	{"headers of your message", NULL}, {NULL}},
    {"expired", {IN(BOUNCE_FAILURE, r_expired)}, "message/rfc822", false, -1,
	false, 0,
	{"queued too long (delivery", "time expired)",
	    "mx1.example.net said: 451 4.7.1 greylisted, try later", NULL},
	{NULL}},
    {"delay", {IN(BOUNCE_DELAY, r_delay), .ret = BOUNCE_RET_FULL},
	"text/rfc822-headers", true, -1, false, 0,
	{"not been delivered yet", "tried until " D_UNTIL,
	    "421 4.4.1 connection timed out", NULL},
	{NULL}},
    {"success", {IN(BOUNCE_SUCCESS, r_success)}, "text/rfc822-headers", true,
	-1, false, 0, {"was delivered", "relayed to a system", NULL}, {NULL}},
    {"hostile", {IN(BOUNCE_FAILURE, r_hostile)}, "message/rfc822", false, -1,
	true, 0,
	{"no such user X-Injected: yes",
	    "mx.example.net X-Injected-Mta: 1 said:", NULL},
	{"X-Injected", "X-Injected-Orcpt", "X-Injected-Mta",
	    "Content-Type: text/html"}},
    {"too_big", {IN(BOUNCE_FAILURE, r_fail), .return_max = 250},
	"text/rfc822-headers", true, -1, false, 0,
	{"larger than 250 octets", NULL}, {NULL}},
    {"headers_cut", {IN(BOUNCE_FAILURE, r_fail), .return_max = 100},
	"text/rfc822-headers", true, 100, false, 0,
	{"too large to attach in full", NULL}, {NULL}},
    {"utf8",
	{IN(BOUNCE_FAILURE, r_utf8), .smtputf8 = true,
	    .sender = "ann\xc3\xa9@example.org"},
	"message/global", false, -1, false,
	BOUNCE_NEED_8BITMIME | BOUNCE_NEED_SMTPUTF8,
	{"j\xc3\xbcrgen@b\xc3\xbc"
	 "cher.example",
	    NULL},
	{NULL}},
    {"eight_bit", {IN(BOUNCE_FAILURE, r_fail), .msg = eight_msg},
	"message/rfc822", false, -1, false, BOUNCE_NEED_8BITMIME, {NULL},
	{NULL}},
    {"long_diag", {IN(BOUNCE_FAILURE, r_long), .envid = ""}, "message/rfc822",
	false, -1, true, 0, {"...", NULL}, {NULL}},
    {"no_body", {IN(BOUNCE_FAILURE, r_fail), .msg = no_body}, "message/rfc822",
	false, -1, false, 0, {NULL}, {NULL}},
    {"big_msg_full", {IN(BOUNCE_FAILURE, r_fail), .msg = big_msg},
	"message/rfc822", false, -1, false, 0, {NULL}, {NULL}},
};

static void
make_inputs(void)
{
	size_t i, n;

	for (i = 0; i < sizeof(long_diag) - 1; i++)
		long_diag[i] = i % 200 == 199 ? ' ' : (char)('a' + i % 26);
	/* a long message whose body is long lines of words */
	n = (size_t)snprintf(big_msg, sizeof(big_msg),
	    "From: a@example.org\r\nSubject: big\r\n\r\n");
	while (n + 80 < sizeof(big_msg)) {
		memcpy(big_msg + n,
		    "lorem ipsum dolor sit amet consectetur "
		    "adipiscing elit sed do eiusmod tempor\r\n",
		    79);
		n += 79;
	}
	big_msg[n] = '\0';
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		fill_defaults(&cases[i].in);
}

static void
test_cases(void)
{
	size_t i;

	make_inputs();
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(&cases[i]);
}

/* ---- checks without python ---------------------------------------------- */

static struct bounce_in
base_in(void)
{
	struct bounce_in in = {IN(BOUNCE_FAILURE, r_fail)};

	fill_defaults(&in);
	return in;
}

static void
test_bad_input(void)
{
	struct bounce_in in;
	struct buf out;

	buf_init(&out, 1024 * 1024);
	t_case("bad input leaves out alone");
	if (buf_append_str(&out, "keep") != 0)
		abort();
	in = base_in();
	in.sender = NULL;
	T_CHECK_INT(bounce_build(&in, &out), -1);
	in = base_in();
	in.sender = "";
	T_CHECK_INT(bounce_build(&in, &out), -1);
	in = base_in();
	in.sender = "a b@x";
	T_CHECK_INT(bounce_build(&in, &out), -1);
	in = base_in();
	in.reporting_mta = "bad host\r\nX: y";
	T_CHECK_INT(bounce_build(&in, &out), -1);
	in = base_in();
	in.nrcpts = 0;
	T_CHECK_INT(bounce_build(&in, &out), -1);
	in = base_in();
	in.nrcpts = BOUNCE_RCPTS_MAX + 1;
	T_CHECK_INT(bounce_build(&in, &out), -1);
	in = base_in();
	in.sender = "ann\xc3\xa9@example.org"; /* UTF-8 without SMTPUTF8 */
	T_CHECK_INT(bounce_build(&in, &out), -1);
	in = base_in();
	in.date = "";
	T_CHECK_INT(bounce_build(&in, &out), -1);
	in = base_in();
	in.message_id = NULL;
	T_CHECK_INT(bounce_build(&in, &out), -1);
	in = base_in();
	in.msg = NULL;
	T_CHECK_INT(bounce_build(&in, &out), -1);
	in.msg_len = 0;
	T_CHECK_INT(bounce_build(&in, &out), 0); /* nothing to return */
	T_CHECK(out.len > 4 && memcmp(out.data, "keep", 4) == 0);
	buf_free(&out);
}

static void
test_out_max(void)
{
	struct bounce_in in = base_in();
	struct buf out;
	size_t full;

	t_case("output maximum: fails whole, out restored");
	buf_init(&out, 1024 * 1024);
	T_CHECK_INT(bounce_build(&in, &out), 0);
	full = out.len;
	buf_free(&out);
	buf_init(&out, full - 1);
	if (buf_append_str(&out, "x") != 0)
		abort();
	T_CHECK_INT(bounce_build(&in, &out), -1);
	T_CHECK_INT(out.len, 1);
	T_CHECK_STR(out.data, "x");
	buf_free(&out);
	buf_init(&out, full);
	T_CHECK_INT(bounce_build(&in, &out), 0);
	T_CHECK_INT(out.len, full);
	buf_free(&out);
}

static void
test_status_fallback(void)
{
	struct bounce_rcpt r[3] = {r_fail[0], r_fail[0], r_delay[0]};
	struct bounce_in in = base_in();
	struct buf out;

	t_case("malformed status becomes x.0.0 by action");
	r[0].status = "5.1.1\r\nX: y";
	r[1].status = "9.9.9";
	r[1].action = BOUNCE_ACTION_DELIVERED;
	r[2].status = NULL;
	in.rcpts = r;
	in.nrcpts = 3;
	buf_init(&out, 1024 * 1024);
	T_CHECK_INT(bounce_build(&in, &out), 0);
	T_CHECK(strstr(out.data, "\r\nStatus: 5.0.0\r\n") != NULL);
	T_CHECK(strstr(out.data, "\r\nStatus: 2.0.0\r\n") != NULL);
	T_CHECK(strstr(out.data, "\r\nStatus: 4.0.0\r\n") != NULL);
	T_CHECK(strstr(out.data, "\r\nX: y") == NULL);
	buf_free(&out);
}

/* Boundary of a DSN: from 'boundary="' to the next '"'. */
static bool
get_boundary(const char *dsn, char *b, size_t blen)
{
	const char *p = strstr(dsn, "boundary=\""), *e;

	if (p == NULL || (e = strchr(p + 10, '"')) == NULL)
		return false;
	return str_copy(b, blen, p + 10, (size_t)(e - p - 10)) == 0;
}

static void
test_boundary_collision(void)
{
	static char msg[sizeof(orig_msg)];
	struct dsn_case c = cases[0];
	struct buf out;
	char b0[64], b1[64];
	size_t n;

	t_case("boundary found in the original is not used");
	buf_init(&out, 1024 * 1024);
	T_CHECK_INT(bounce_build(&c.in, &out), 0);
	T_CHECK(get_boundary(out.data, b0, sizeof(b0)));
	/* same length (the boundary depends on it), now holding "--b0" */
	memcpy(msg, orig_msg, sizeof(orig_msg));
	n = strlen(b0);
	memcpy(msg + sizeof(orig_msg) - 1 - n - 4, "--", 2);
	memcpy(msg + sizeof(orig_msg) - 1 - n - 2, b0, n);
	c.in.msg = msg;
	buf_reset(&out);
	T_CHECK_INT(bounce_build(&c.in, &out), 0);
	T_CHECK(get_boundary(out.data, b1, sizeof(b1)));
	T_CHECK(strcmp(b0, b1) != 0);
	buf_free(&out);
	c.name = "collision";
	c.text[3] = NULL;
	run_case(&c);
}

/*
 * The checker must catch what it is there to catch: a DSN with a header
 * line slipped into a recipient block, or one byte of the returned
 * original changed, must fail it.
 */
static void
tamper(
    const char *name, const char *after, const char *insert, const char *change)
{
	struct dsn_case c = cases[0];
	struct buf out, bad;
	struct js j;
	char *p;

	t_case(name);
	buf_init(&out, 1024 * 1024);
	buf_init(&bad, 1024 * 1024);
	buf_init(&j.b, 1024 * 1024);
	j.comma = false;
	c.name = name;
	T_CHECK_INT(bounce_build(&c.in, &out), 0);
	p = strstr(out.data, after);
	T_CHECK(p != NULL);
	if (p == NULL)
		goto done;
	p += strlen(after);
	if (buf_append(&bad, out.data, (size_t)(p - out.data)) != 0 ||
	    buf_append_str(&bad, insert) != 0 ||
	    buf_append_str(&bad, p + strlen(change)) != 0)
		abort();
	js_case(&j, &c);
	T_CHECK(t_pycheck_write(&pc, name, ".eml", bad.data, bad.len));
	T_CHECK(t_pycheck_write(&pc, name, ".orig", c.in.msg, c.in.msg_len));
	T_CHECK(t_pycheck_write(&pc, name, ".json", j.b.data, j.b.len));
	fprintf(stderr, "test_bounce: %s: the checker must complain:\n", name);
	T_CHECK(!t_pycheck_run(&pc, name));
done:
	buf_free(&out);
	buf_free(&bad);
	buf_free(&j.b);
}

static void
test_checker_catches(void)
{
	tamper(
	    "tampered_header", "Action: failed\r\n", "X-Injected: yes\r\n", "");
	tamper("tampered_original", "BODY-MARKER", "X", "f");
}

/* ---- setup ------------------------------------------------------------------
 */

int
main(void)
{
	t_case("setup: temp dir and tests/unit/check_dsn.py (run from the "
	       "repository root)");
	T_CHECK(t_pycheck_open(&pc, "test_bounce", "check_dsn.py", __FILE__));
	if (t_cur_failed)
		return t_summary();
	T_RUN(test_cases);
	T_RUN(test_bad_input);
	T_RUN(test_out_max);
	T_RUN(test_status_fallback);
	T_RUN(test_boundary_collision);
	T_RUN(test_checker_catches);
	t_case_end();
	t_pycheck_close(&pc);
	return t_summary();
}
