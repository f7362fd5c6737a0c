/*
 * Unit tests for src/queue/envelope.c: round trips (with hostile values),
 * the canonical form, every corrupt form refused, encoder refusals.  Every
 * decode runs on a copy that ends right before an unreadable page
 * (t_guard), so a one-byte over-read crashes the test.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "queue/queue.h"
#include "t.h"

/* ---- helpers ------------------------------------------------------------- */

static int
decode_guarded(
    const char *p, size_t n, struct queue_env *out, char *err, size_t errlen)
{
	void *map;
	size_t maplen;
	const char *g = t_guard(p, n, &map, &maplen);
	int r = queue_env_decode(g, n, out, err, errlen);

	t_unguard(map, maplen);
	return r;
}

static void
fill_rcpt(struct queue_rcpt *r, const char *addr)
{
	(void)!str_copy(r->addr, sizeof(r->addr), addr, strlen(addr));
}

/* An envelope using every field. */
static void
sample(struct queue_env *e)
{
	struct queue_rcpt *r;

	queue_env_init(e);
	memcpy(e->id, "65f2c3a1b3e0a917", QUEUE_ID_LEN + 1);
	e->created = 1710408609;
	(void)!str_copy(e->sender, sizeof(e->sender), "claire@example.org", 18);
	e->ret = SMTP_RET_HDRS;
	(void)!str_copy(e->envid, sizeof(e->envid), "QQ314159", 8);
	(void)!str_copy(e->helo, sizeof(e->helo), "laptop.example.org", 18);
	(void)!str_copy(e->ip, sizeof(e->ip), "2001:db8::7", 11);
	(void)!str_copy(e->auth, sizeof(e->auth), "claire@example.org", 18);
	(void)!str_copy(e->proto, sizeof(e->proto), "ESMTPSA", 7);
	e->body_8bit = true;
	e->smtputf8 = true;
	e->size = 2048;
	e->next_try = 1710409209;
	e->warned = 1710412209;
	r = queue_env_add_rcpt(e, "ben@example.net");
	T_CHECK(r != NULL);
	r->state = QUEUE_RCPT_DELIVERED;
	r->attempts = 1;
	r->last_try = 1710408610;
	r->code = 250;
	(void)!str_copy(r->enh, sizeof(r->enh), "2.0.0", 5);
	(void)!str_copy(r->text, sizeof(r->text), "Ok: queued as X", 15);
	r = queue_env_add_rcpt(e, "dave@example.com");
	T_CHECK(r != NULL);
	r->notify = SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY;
	(void)!str_copy(r->orcpt_type, sizeof(r->orcpt_type), "rfc822", 6);
	(void)!str_copy(r->orcpt, sizeof(r->orcpt), "dave@example.com", 16);
	r->attempts = 3;
	r->next_try = 1710409209;
	r->last_try = 1710408611;
	r->code = 451;
	(void)!str_copy(r->enh, sizeof(r->enh), "4.7.1", 5);
	(void)!str_copy(r->text, sizeof(r->text), "greylisted", 10);
}

static bool
rcpt_equal(const struct queue_rcpt *a, const struct queue_rcpt *b)
{
	return strcmp(a->addr, b->addr) == 0 && a->notify == b->notify &&
	       strcmp(a->orcpt_type, b->orcpt_type) == 0 &&
	       strcmp(a->orcpt, b->orcpt) == 0 && a->state == b->state &&
	       a->attempts == b->attempts && a->next_try == b->next_try &&
	       a->last_try == b->last_try && a->code == b->code &&
	       strcmp(a->enh, b->enh) == 0 && strcmp(a->text, b->text) == 0 &&
	       a->dsn_owed == b->dsn_owed;
}

static bool
env_equal(const struct queue_env *a, const struct queue_env *b)
{
	size_t i;

	if (strcmp(a->id, b->id) != 0 || a->created != b->created ||
	    strcmp(a->sender, b->sender) != 0 || a->ret != b->ret ||
	    strcmp(a->envid, b->envid) != 0 || strcmp(a->helo, b->helo) != 0 ||
	    strcmp(a->ip, b->ip) != 0 || strcmp(a->auth, b->auth) != 0 ||
	    strcmp(a->proto, b->proto) != 0 || a->body_8bit != b->body_8bit ||
	    a->smtputf8 != b->smtputf8 || a->requiretls != b->requiretls ||
	    a->tls_required_no != b->tls_required_no || a->size != b->size ||
	    a->next_try != b->next_try || a->warned != b->warned ||
	    a->nrcpt != b->nrcpt)
		return false;
	for (i = 0; i < a->nrcpt; i++)
		if (!rcpt_equal(&a->rcpt[i], &b->rcpt[i]))
			return false;
	return true;
}

static size_t
count_lines(const struct buf *b)
{
	size_t i, n = 0;

	for (i = 0; i < b->len; i++)
		n += b->data[i] == '\n';
	return n;
}

/*
 * Encode e, decode it, compare; encode again and compare the bytes; check
 * the line count (one per record: nothing a value holds can add a line).
 */
static void
check_round_trip(const struct queue_env *e)
{
	struct buf b1, b2;
	struct queue_env d;
	char err[200];

	buf_init(&b1, QUEUE_ENV_FILE_MAX);
	buf_init(&b2, QUEUE_ENV_FILE_MAX);
	T_CHECK_INT(queue_env_encode(e, &b1), 0);
	/* version 3 adds the T record */
	T_CHECK_INT(count_lines(&b1),
	    14 + e->nrcpt + (queue_env_version(e) >= 3 ? 1 : 0));
	T_CHECK_INT(strlen(b1.data), b1.len); /* never a NUL inside */
	T_CHECK_INT(decode_guarded(b1.data, b1.len, &d, err, sizeof(err)), 0);
	if (err[0] != '\0')
		fprintf(stderr, "decode: %s\n", err);
	T_CHECK(env_equal(e, &d));
	T_CHECK_INT(d.version, queue_env_version(e));
	T_CHECK_INT(queue_env_encode(&d, &b2), 0);
	T_CHECK(b1.len == b2.len && memcmp(b1.data, b2.data, b1.len) == 0);
	queue_env_free(&d);
	buf_free(&b1);
	buf_free(&b2);
}

static char *
encode_sample(size_t *len)
{
	struct queue_env e;
	struct buf b;

	sample(&e);
	buf_init(&b, QUEUE_ENV_FILE_MAX);
	if (queue_env_encode(&e, &b) != 0)
		abort();
	queue_env_free(&e);
	*len = b.len;
	return b.data;
}

/* decode must refuse s[0..n): error text names a line, out is zeroed. */
static void
check_refused(const char *s, size_t n)
{
	struct queue_env d;
	char err[200];

	memset(&d, 0x5a, sizeof(d));
	T_CHECK_INT(decode_guarded(s, n, &d, err, sizeof(err)), -1);
	T_CHECK_INT(errno, EINVAL);
	T_CHECK(strncmp(err, "line ", 5) == 0);
	T_CHECK(d.rcpt == NULL && d.nrcpt == 0 && d.id[0] == '\0');
}

static void
check_refused_str(const char *s)
{
	check_refused(s, strlen(s));
}

/* The sample's text with line `line` (0-based) replaced by repl (NULL:
 * deleted; repl may hold several lines). */
static char *
replace_line(size_t line, const char *repl)
{
	size_t len, i, k = 0, start = 0, end;
	char *s = encode_sample(&len);
	struct buf o;

	for (i = 0; i < len && k < line; i++)
		if (s[i] == '\n') {
			k++;
			start = i + 1;
		}
	end = (size_t)((char *)memchr(s + start, '\n', len - start) - s) + 1;
	buf_init(&o, QUEUE_ENV_FILE_MAX);
	if (buf_append(&o, s, start) != 0 ||
	    (repl != NULL && buf_append_str(&o, repl) != 0) ||
	    buf_append(&o, s + end, len - end) != 0)
		abort();
	free(s);
	return o.data;
}

/* ---- round trips --------------------------------------------------------- */

static void
test_round_trip_sample(void)
{
	struct queue_env e;

	sample(&e);
	check_round_trip(&e);
	queue_env_free(&e);
}

static void
test_round_trip_minimal(void)
{
	struct queue_env e;

	queue_env_init(&e);
	memcpy(e.id, "0000000000000000", QUEUE_ID_LEN + 1);
	T_CHECK(queue_env_add_rcpt(&e, "x") != NULL);
	check_round_trip(&e); /* every string empty, every number 0 */
	queue_env_free(&e);
}

/* The doc's example is what the encoder writes, byte for byte. */
static void
test_doc_example(void)
{
	static const char want[] =
	    "V 1\nI 65f2c3a1b3e0a917\nC 1710408609\nS claire@example.org\n"
	    "D HDRS QQ314159\nB 8BITMIME 1\nZ 2048\nH laptop.example.org\n"
	    "A 2001:db8::7\nU claire@example.org\nP ESMTPSA\nN 1710409209\n"
	    "W 1710412209\n"
	    "r ben@example.net - - - DELIVERED 1 0 1710408610 250 2.0.0 "
	    "Ok:\\x20queued\\x20as\\x20X\n"
	    "r dave@example.com FAILURE,DELAY rfc822 dave@example.com "
	    "PENDING 3 1710409209 1710408611 451 4.7.1 greylisted\n"
	    "E 2\n";
	size_t len;
	char *s = encode_sample(&len);

	T_CHECK_STR(s, want);
	free(s);
}

static void
test_round_trip_hostile(void)
{
	static const char *const vals[] = {
	    "a\r\nE 1\r\n",
	    "\nE\n",
	    "\nE 1\n",
	    "x\ry",
	    "\\",
	    "\\x41",
	    "-",
	    "--",
	    "\\x2d",
	    " ",
	    "  lead and trail  ",
	    "\x7f\x01\x1f\t",
	    "caf\xc3\xa9@\xe4\xbe\x8b.jp",
	    "\xff\xfe",
	    "r a - - - PENDING",
	    "E",
	    "V 2",
	};
	struct queue_env e;
	size_t i;

	for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		struct queue_rcpt *r;

		sample(&e);
		(void)!str_copy(
		    e.sender, sizeof(e.sender), vals[i], strlen(vals[i]));
		(void)!str_copy(
		    e.envid, sizeof(e.envid), vals[i], strlen(vals[i]));
		(void)!str_copy(
		    e.helo, sizeof(e.helo), vals[i], strlen(vals[i]));
		(void)!str_copy(
		    e.proto, sizeof(e.proto), vals[i], strlen(vals[i]));
		r = &e.rcpt[1];
		fill_rcpt(r, vals[i]);
		(void)!str_copy(
		    r->text, sizeof(r->text), vals[i], strlen(vals[i]));
		(void)!str_copy(r->enh, sizeof(r->enh), vals[i],
		    strlen(vals[i]) < sizeof(r->enh) ? strlen(vals[i]) : 0);
		(void)!str_copy(
		    r->orcpt, sizeof(r->orcpt), vals[i], strlen(vals[i]));
		check_round_trip(&e);
		queue_env_free(&e);
	}
}

/* A C string stops at NUL: "a\0b" is stored as "a"; "\x00" is refused. */
static void
test_nul(void)
{
	struct queue_env e;
	char *s;

	sample(&e);
	memcpy(e.sender, "a\0b", 4);
	check_round_trip(&e);
	queue_env_free(&e);
	s = replace_line(3, "S a\\x00b\n");
	check_refused_str(s);
	free(s);
	{
		size_t len;
		char *t = encode_sample(&len);
		char *p = strstr(t, "claire");

		*p = '\0'; /* a raw NUL byte inside a field */
		check_refused(t, len);
		free(t);
	}
}

/* Every field at its limit round-trips; 100,000 recipients decode. */
static void
test_limits(void)
{
	struct queue_env e;
	size_t i;

	sample(&e);
	memset(e.sender, '\n', QUEUE_ADDR_MAX); /* escapes to 4x */
	e.sender[QUEUE_ADDR_MAX] = '\0';
	memset(e.envid, 'e', QUEUE_ENVID_MAX);
	memset(e.helo, 'h', QUEUE_HELO_MAX);
	memset(e.ip, 'i', QUEUE_IP_MAX);
	memset(e.auth, 'a', QUEUE_AUTH_MAX);
	memset(e.proto, 'p', QUEUE_PROTO_MAX);
	memset(e.rcpt[0].addr, 'r', QUEUE_ADDR_MAX);
	memset(e.rcpt[0].orcpt_type, 't', QUEUE_ORCPT_TYPE_MAX);
	memset(e.rcpt[0].orcpt, 'o', QUEUE_ORCPT_MAX);
	memset(e.rcpt[0].enh, '5', QUEUE_ENH_MAX);
	memset(e.rcpt[0].text, '\\', QUEUE_TEXT_MAX);
	e.created = e.next_try = e.warned = (time_t)INT64_MAX;
	e.size = UINT64_MAX;
	e.rcpt[0].attempts = UINT32_MAX;
	e.rcpt[0].code = 999;
	e.rcpt[0].notify = 0xf;
	check_round_trip(&e);
	queue_env_free(&e);

	sample(&e);
	for (i = e.nrcpt; i < QUEUE_RCPT_MAX; i++)
		if (queue_env_add_rcpt(&e, "many@example.org") == NULL)
			break;
	T_CHECK_INT(e.nrcpt, QUEUE_RCPT_MAX);
	T_CHECK(queue_env_add_rcpt(&e, "one@too.many") == NULL);
	T_CHECK_INT(errno, E2BIG);
	check_round_trip(&e);
	queue_env_free(&e);
}

/* ---- refusals ------------------------------------------------------------ */

/* Every proper prefix of a valid file (a file cut anywhere) is refused. */
static void
test_every_prefix_refused(void)
{
	size_t len, n;
	char *s = encode_sample(&len);

	for (n = 0; n < len; n++)
		check_refused(s, n);
	free(s);
}

/* Deleting any line, or repeating any line but a recipient, is refused. */
static void
test_missing_and_duplicate(void)
{
	size_t line, len;
	char *s = encode_sample(&len), *t;

	for (line = 0; line < 16; line++) {
		char *nl, copy[512], twice[1024];
		size_t i, start = 0, k = 0;

		t = replace_line(line, NULL);
		check_refused_str(t);
		free(t);
		for (i = 0; i < len && k < line; i++)
			if (s[i] == '\n') {
				k++;
				start = i + 1;
			}
		nl = memchr(s + start, '\n', len - start);
		if (str_copy(copy, sizeof(copy), s + start,
			(size_t)(nl - s) - start + 1) != 0)
			abort();
		if (copy[0] == 'r')
			continue; /* a recipient twice is legal */
		if (str_fmt(twice, sizeof(twice), "%s%s", copy, copy) != 0)
			abort();
		t = replace_line(line, twice);
		check_refused_str(t);
		free(t);
	}
	free(s);
}

/* Lines swapped out of order are refused. */
static void
test_order(void)
{
	/* I and C swapped */
	char *t = replace_line(1, "C 1710408609\nI 65f2c3a1b3e0a917\n");
	char *u = replace_line(2, NULL);

	free(u);
	u = replace_line(1, "C 1710408609\n"); /* then C twice: I missing */
	check_refused_str(t);
	check_refused_str(u);
	free(t);
	free(u);
}

static const struct {
	size_t line;	  /* 0-based line of the sample to replace */
	const char *repl; /* NULL deletes it */
	const char *why;
} bad_lines[] = {
    {0, "V 3\n", "version 3 without its T record"},
    {5, "B 8BITMIME 1\nT 0 0\n", "T record in version 1"},
    {0, "V 2\n", "version 2 with version 1 recipient records"},
    {0, "V 0\n", "version 0"},
    {0, "V 01\n", "leading zero"},
    {0, "V 1 1\n", "too many fields"},
    {0, "V\n", "no field"},
    {0, "V 1\r\n", "CRLF"},
    {1, "I 65F2C3A1B3E0A917\n", "upper-case id"},
    {1, "I 65f2c3a1b3e0a91\n", "short id"},
    {1, "I ../../../etc/pw\n", "path id"},
    {1, "I 65f2c3a1b3e0a917x\n", "long id"},
    {2, "C -1\n", "negative time"},
    {2, "C 9223372036854775808\n", "time over INT64_MAX"},
    {2, "C 18446744073709551616\n", "time over UINT64_MAX"},
    {2, "C 1e9\n", "not decimal"},
    {2, "C +5\n", "sign"},
    {3, "S a\\x41\n", "needless escape"},
    {3, "S a\\x0A\n", "upper-case escape"},
    {3, "S a\\x0\n", "short escape"},
    {3, "S a\\xzz\n", "bad hex"},
    {3, "S a\\n\n", "C escape"},
    {3, "S a\\\n", "lone backslash"},
    {3, "S a\\x2d\n", "needless \\x2d"},
    {3, "S a\tb\n", "raw tab"},
    {3, "S a\rb\n", "raw CR"},
    {3, "S a\x7f\n", "raw DEL"},
    {3, "S a b\n", "raw space"},
    {3, "S a \n", "trailing space"},
    {3, "S  a\n", "double space"},
    {3, "S \n", "empty field without -"},
    {4, "D NONE -\n", "bad ret"},
    {4, "D full -\n", "lower-case ret"},
    {4, "D -\n", "missing envid"},
    {5, "B 8BIT 0\n", "bad body"},
    {5, "B 7BIT 2\n", "bad utf8 flag"},
    {6, "Z 18446744073709551616\n", "size overflow"},
    {6, "Z 00\n", "leading zero size"},
    {13, "r ben@example.net - - - DONE 1 0 0 250 - -\n", "bad state"},
    {13, "r ben@example.net - - - PENDING 4294967296 0 0 0 - -\n",
	"attempts overflow"},
    {13, "r ben@example.net - - - PENDING 1 0 0 1000 - -\n", "code"},
    {13, "r - - - - PENDING 1 0 0 0 - -\n", "empty address"},
    {13, "r ben@example.net SUCCESS,NEVER - - PENDING 1 0 0 0 - -\n",
	"notify order"},
    {13, "r ben@example.net SUCCESS,SUCCESS - - PENDING 1 0 0 0 - -\n",
	"notify twice"},
    {13, "r ben@example.net SUCCESS, - - PENDING 1 0 0 0 - -\n",
	"notify trailing comma"},
    {13, "r ben@example.net ,SUCCESS - - PENDING 1 0 0 0 - -\n",
	"notify leading comma"},
    {13, "r ben@example.net BOGUS - - PENDING 1 0 0 0 - -\n", "notify word"},
    {13, "r ben@example.net - - - PENDING 1 0 0 0 -\n", "10 fields"},
    {13, "r ben@example.net - - - PENDING 1 0 0 0 - - x\n", "12 fields"},
    {15, "E 3\n", "count mismatch"},
    {15, "E 1\n", "count short"},
    {15, "E 2\nE 2\n", "two ENDs"},
    {15, "E 2\nV 1\n", "data after END"},
    {15, "E 2\n\n", "empty line after END"},
    {15, "E 2", "END without newline"},
    {15, "X 2\n", "unknown END"},
    {7, "Q something\n", "unknown type"},
    {7, "\x01 x\n", "control type"},
    {7, "\n", "empty line"},
    {7, "h x\n", "lower-case singleton"},
    {14, "R ben@example.net - - - PENDING 1 0 0 0 - -\n", "upper r"},
    {12, "r x - - - PENDING 0 0 0 0 - -\nW 0\n", "r before W"},
};

static void
test_bad_lines(void)
{
	size_t i;

	for (i = 0; i < sizeof(bad_lines) / sizeof(bad_lines[0]); i++) {
		char *t;

		t_case(bad_lines[i].why); /* before replace_line's checks */
		t = replace_line(bad_lines[i].line, bad_lines[i].repl);
		check_refused_str(t);
		free(t);
	}
}

/* Fields one octet over their limit are refused. */
static void
test_oversized(void)
{
	static const struct {
		size_t line;
		const char *fmt;
		size_t max;
	} f[] = {
	    {3, "S %s\n", QUEUE_ADDR_MAX},
	    {4, "D - %s\n", QUEUE_ENVID_MAX},
	    {7, "H %s\n", QUEUE_HELO_MAX},
	    {8, "A %s\n", QUEUE_IP_MAX},
	    {9, "U %s\n", QUEUE_AUTH_MAX},
	    {10, "P %s\n", QUEUE_PROTO_MAX},
	    {13, "r %s - - - PENDING 0 0 0 0 - -\n", QUEUE_ADDR_MAX},
	    {13, "r a - %s - PENDING 0 0 0 0 - -\n", QUEUE_ORCPT_TYPE_MAX},
	    {13, "r a - - %s PENDING 0 0 0 0 - -\n", QUEUE_ORCPT_MAX},
	    {13, "r a - - - PENDING 0 0 0 0 %s -\n", QUEUE_ENH_MAX},
	    {13, "r a - - - PENDING 0 0 0 0 - %s\n", QUEUE_TEXT_MAX},
	};
	char val[1024], line[1200];
	size_t i;

	for (i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		char *t;
		int over;

		for (over = 0; over <= 1; over++) {
			memset(val, 'x', f[i].max + (size_t)over);
			val[f[i].max + (size_t)over] = '\0';
			if (str_fmt(line, sizeof(line), f[i].fmt, val) != 0)
				abort();
			t = replace_line(f[i].line, line);
			if (over) {
				check_refused_str(t);
			} else {
				struct queue_env d;

				T_CHECK_INT(
				    decode_guarded(t, strlen(t), &d, NULL, 0),
				    0);
				queue_env_free(&d);
			}
			free(t);
		}
	}
}

/* 100,001 recipients are refused (with E 100001). */
static void
test_too_many_rcpts(void)
{
	struct buf b;
	size_t i;
	char *head = replace_line(13, NULL), *p;

	/* head: the sample without its first recipient; cut before 'r' */
	p = strstr(head, "\nr ");
	p[1] = '\0';
	buf_init(&b, QUEUE_ENV_FILE_MAX);
	T_CHECK_INT(buf_append_str(&b, head), 0);
	for (i = 0; i < QUEUE_RCPT_MAX + 1; i++)
		T_CHECK_INT(
		    buf_append_str(&b, "r x - - - PENDING 0 0 0 0 - -\n"), 0);
	T_CHECK_INT(buf_printf(&b, "E %d\n", QUEUE_RCPT_MAX + 1), 0);
	check_refused(b.data, b.len);
	free(head);
	buf_free(&b);
}

static void
test_empty_inputs(void)
{
	check_refused("", 0);
	check_refused_str("\n");
	check_refused_str("V 1\n");
	check_refused_str("V 1\nE 0\n");
	check_refused_str("garbage");
}

/* The error text says where and what. */
static void
test_error_text(void)
{
	struct queue_env d;
	char err[200];
	char *t = replace_line(7, "Q x\n");

	T_CHECK_INT(queue_env_decode(t, strlen(t), &d, err, sizeof(err)), -1);
	T_CHECK_STR(err, "line 8: unknown record type 'Q'");
	free(t);
	t = replace_line(15, "E 3\n");
	T_CHECK_INT(queue_env_decode(t, strlen(t), &d, err, sizeof(err)), -1);
	T_CHECK_STR(err, "line 16: END says 3 recipients, found 2");
	free(t);
	T_CHECK_INT(queue_env_decode("V 1\n", 4, &d, err, 10), -1);
	T_CHECK_INT(strlen(err), 9); /* cut to the buffer, terminated */
}

/* ---- encoder refusals ---------------------------------------------------- */

static void
check_enc_refused(const struct queue_env *e, int want_errno)
{
	struct buf b;

	buf_init(&b, QUEUE_ENV_FILE_MAX);
	T_CHECK_INT(buf_append_str(&b, "keep"), 0);
	T_CHECK_INT(queue_env_encode(e, &b), -1);
	T_CHECK_INT(errno, want_errno);
	T_CHECK_INT(b.len, 4); /* out keeps its old length */
	T_CHECK_STR(b.data, "keep");
	buf_free(&b);
}

static void
test_encode_refusals(void)
{
	struct queue_env e;
	struct buf small;

	sample(&e);
	e.id[3] = 'G';
	check_enc_refused(&e, EINVAL);
	memcpy(e.id, "65f2c3a1b3e0a917", QUEUE_ID_LEN + 1);
	e.created = -1;
	check_enc_refused(&e, EINVAL);
	e.created = 1;
	e.rcpt[1].next_try = -5;
	check_enc_refused(&e, EINVAL);
	e.rcpt[1].next_try = 0;
	e.rcpt[1].notify = 0x10;
	check_enc_refused(&e, EINVAL);
	e.rcpt[1].notify = 0;
	e.rcpt[1].state = (enum queue_rcpt_state)7;
	check_enc_refused(&e, EINVAL);
	e.rcpt[1].state = QUEUE_RCPT_PENDING;
	e.rcpt[1].code = 1000;
	check_enc_refused(&e, EINVAL);
	e.rcpt[1].code = -1;
	check_enc_refused(&e, EINVAL);
	e.rcpt[1].code = 0;
	e.rcpt[1].addr[0] = '\0';
	check_enc_refused(&e, EINVAL);
	fill_rcpt(&e.rcpt[1], "a");
	memset(e.helo, 'x', sizeof(e.helo)); /* unterminated */
	check_enc_refused(&e, EINVAL);
	e.helo[0] = '\0';
	e.ret = (enum smtp_ret)3;
	check_enc_refused(&e, EINVAL);
	e.ret = SMTP_RET_UNSPEC;
	e.nrcpt = 0;
	check_enc_refused(&e, EINVAL);
	e.nrcpt = 2;
	buf_init(&small, 100);
	T_CHECK_INT(queue_env_encode(&e, &small), -1);
	T_CHECK_INT(errno, EMSGSIZE);
	buf_free(&small);
	queue_env_free(&e);
	queue_env_free(&e); /* zeroed: a second free is harmless */
	queue_env_free(NULL);
}

static void
test_add_rcpt_and_ids(void)
{
	struct queue_env e;
	char big[QUEUE_ADDR_MAX + 2];

	queue_env_init(&e);
	T_CHECK(queue_env_add_rcpt(&e, "") == NULL);
	T_CHECK_INT(errno, EINVAL);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	T_CHECK(queue_env_add_rcpt(&e, big) == NULL);
	big[QUEUE_ADDR_MAX] = '\0';
	T_CHECK(queue_env_add_rcpt(&e, big) != NULL);
	T_CHECK_INT(e.rcpt[0].state, QUEUE_RCPT_PENDING);
	queue_env_free(&e);
	T_CHECK(queue_id_valid("0123456789abcdef"));
	T_CHECK(!queue_id_valid("0123456789abcde"));
	T_CHECK(!queue_id_valid("0123456789abcdef0"));
	T_CHECK(!queue_id_valid("0123456789ABCDEF"));
	T_CHECK(!queue_id_valid("../0123456789abc"));
	T_CHECK(!queue_id_valid(""));
	T_CHECK_STR(queue_rcpt_state_name(QUEUE_RCPT_RELAYED), "RELAYED");
	T_CHECK(queue_rcpt_state_name((enum queue_rcpt_state)4) == NULL);
}

/*
 * A version newer than this tern knows is not damage: errno ENOTSUP (the
 * spool refuses to run on it instead of moving it to corrupt/), the error
 * names both versions.  Version 0 and a bad number stay EINVAL.
 */
static void
test_refuses_newer_version(void)
{
	static const unsigned newer[] = {QUEUE_ENV_VERSION + 1, 9, 4294967295u};
	char line[32], want[96], err[200];
	struct queue_env d;
	size_t i;

	for (i = 0; i < sizeof(newer) / sizeof(newer[0]); i++) {
		char *t;

		T_CHECK(str_fmt(line, sizeof(line), "V %u\n", newer[i]) == 0);
		t_case(line);
		t = replace_line(0, line);
		errno = 0;
		T_CHECK_INT(
		    decode_guarded(t, strlen(t), &d, err, sizeof(err)), -1);
		T_CHECK_INT(errno, ENOTSUP);
		T_CHECK(str_fmt(want, sizeof(want),
			    "line 1: envelope version %u is newer than this "
			    "tern reads (%d)",
			    newer[i], QUEUE_ENV_VERSION) == 0);
		T_CHECK_STR(err, want);
		T_CHECK(d.rcpt == NULL && d.nrcpt == 0);
		free(t);
	}
	t_case("V 0 and V 4294967296 are damage");
	check_refused_str("V 0\n");
	check_refused_str("V 4294967296\n");
}

/* The first line's version, read without decoding the rest. */
static void
test_peek_version(void)
{
	static const struct {
		const char *in;
		unsigned long v;
	} rows[] = {
	    {"V 1\nI x\n", 1},
	    {"V 2\n", 2},
	    {"V 3\ngarbage", 3},
	    {"V 4294967295\n", 4294967295ul},
	    {"V 12345678901\n", 0}, /* more digits than a version has */
	    {"V 0\n", 0},
	    {"V 01\n", 0},
	    {"V 1", 0},
	    {"V 1 2\n", 0},
	    {"V\n", 0},
	    {"v 1\n", 0},
	    {"", 0},
	    {"I 1\n", 0},
	};
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		void *map;
		size_t maplen, n = strlen(rows[i].in);
		const char *g = t_guard(rows[i].in, n, &map, &maplen);

		t_case(rows[i].in);
		T_CHECK(queue_env_peek_version(g, n) == rows[i].v);
		t_unguard(map, maplen);
	}
}

/* ---- versions --------------------------------------------------------------
 */

/*
 * A version 1 file, as every ternd before the owed-DSN mark wrote it
 * (bytes fixed here, not produced by the encoder under test), still reads,
 * with no DSN owed, and is written back unchanged.
 */
static void
test_reads_version_1(void)
{
	static const char v1[] =
	    "V 1\nI 65f2c3a1b3e0a917\nC 1710408609\nS claire@example.org\n"
	    "D - -\nB 8BITMIME 0\nZ 2048\nH laptop.example.org\n"
	    "A 192.0.2.7\nU -\nP ESMTP\nN 1710409209\nW 0\n"
	    "r ben@example.net - - - FAILED 1 0 1710408610 550 5.1.1 "
	    "no\\x20such\\x20user\n"
	    "r dave@example.com FAILURE,DELAY rfc822 dave@example.com "
	    "PENDING 1 1710409209 1710408611 451 4.7.1 greylisted\n"
	    "E 2\n";
	struct queue_env d;
	struct buf b;
	char err[200];

	T_CHECK_INT(decode_guarded(v1, strlen(v1), &d, err, sizeof(err)), 0);
	T_CHECK_INT(d.version, 1);
	T_CHECK_INT(d.nrcpt, 2);
	T_CHECK_INT(d.rcpt[0].state, QUEUE_RCPT_FAILED);
	T_CHECK_INT(d.rcpt[0].dsn_owed, QUEUE_DSN_NONE);
	T_CHECK_INT(d.rcpt[1].dsn_owed, QUEUE_DSN_NONE);
	T_CHECK_STR(d.ip, "192.0.2.7");
	buf_init(&b, QUEUE_ENV_FILE_MAX);
	T_CHECK_INT(queue_env_encode(&d, &b), 0);
	T_CHECK_STR(b.data, v1);
	queue_env_free(&d);
	buf_free(&b);
}

/* An owed DSN makes the file version 2, with a twelfth recipient field. */
static void
test_version_2_owed(void)
{
	static const char tail[] =
	    "r ben@example.net - - - DELIVERED 1 0 1710408610 250 2.0.0 "
	    "Ok:\\x20queued\\x20as\\x20X -\n"
	    "r dave@example.com FAILURE,DELAY rfc822 dave@example.com "
	    "PENDING 3 1710409209 1710408611 451 4.7.1 greylisted DELAY\n"
	    "E 2\n";
	static const enum queue_dsn_owed kinds[] = {
	    QUEUE_DSN_FAILURE, QUEUE_DSN_DELAY, QUEUE_DSN_SUCCESS};
	struct queue_env e;
	struct buf b;
	size_t i;

	sample(&e);
	T_CHECK_INT(queue_env_version(&e), 1);
	e.rcpt[1].dsn_owed = QUEUE_DSN_DELAY;
	T_CHECK_INT(queue_env_version(&e), 2);
	buf_init(&b, QUEUE_ENV_FILE_MAX);
	T_CHECK_INT(queue_env_encode(&e, &b), 0);
	T_CHECK(strncmp(b.data, "V 2\n", 4) == 0);
	T_CHECK(b.len > strlen(tail) &&
		strcmp(b.data + b.len - strlen(tail), tail) == 0);
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		e.rcpt[0].dsn_owed = kinds[i];
		check_round_trip(&e);
	}
	e.rcpt[0].dsn_owed = (enum queue_dsn_owed)4;
	check_enc_refused(&e, EINVAL);
	queue_env_free(&e);
	buf_free(&b);
}

/* Version 2 must owe something (canonical form); fields match versions. */
static void
test_version_2_refusals(void)
{
	static const char *const rc[] = {
	    /* a v1 file with a twelfth field */
	    "r dave@example.com FAILURE,DELAY rfc822 dave@example.com "
	    "PENDING 3 1710409209 1710408611 451 4.7.1 greylisted DELAY\n",
	};
	char *t = replace_line(14, rc[0]), *u, *p;

	check_refused_str(t); /* V 1 with 12 fields */
	t[2] = '2';	      /* V 2, but ben's record has 11 */
	check_refused_str(t);
	free(t);
	/* V 2, 12 fields each, nothing owed: not what the encoder writes */
	u = replace_line(13, "r ben@example.net - - - DELIVERED 1 0 1710408610 "
			     "250 2.0.0 Ok -\n");
	t = malloc(strlen(u) + 64);
	T_CHECK(t != NULL);
	memcpy(t, u, strlen(u) + 1);
	t[2] = '2';
	p = strstr(t, "greylisted\n");
	memcpy(p, "greylisted -\nE 2\n", 18);
	check_refused_str(t);
	memcpy(p, "greylisted BOUNCE\nE 2\n", 23); /* unknown kind */
	check_refused_str(t);
	memcpy(p, "greylisted FAILURE\nE 2\n", 24); /* now canonical */
	{
		struct queue_env d;

		T_CHECK_INT(decode_guarded(t, strlen(t), &d, NULL, 0), 0);
		T_CHECK_INT(d.version, 2);
		T_CHECK_INT(d.rcpt[1].dsn_owed, QUEUE_DSN_FAILURE);
		queue_env_free(&d);
	}
	free(t);
	free(u);
}

/*
 * RFC 8689: REQUIRETLS and TLS-Required: No make the file version 3,
 * with a T record after B; a file without them is written and read as
 * before (test_reads_version_1: no field, both flags false).
 */
static void
test_version_3_tls(void)
{
	static const struct {
		bool req, no;
		const char *line;
	} flags[] = {
	    {true, false, "\nB 8BITMIME 1\nT 1 0\nZ 2048\n"},
	    {false, true, "\nB 8BITMIME 1\nT 0 1\nZ 2048\n"},
	    {true, true, "\nB 8BITMIME 1\nT 1 1\nZ 2048\n"},
	};
	struct queue_env e, d;
	struct buf b;
	size_t i;

	sample(&e);
	buf_init(&b, QUEUE_ENV_FILE_MAX);
	T_CHECK_INT(queue_env_encode(&e, &b), 0);
	T_CHECK(strstr(b.data, "\nT ") == NULL);
	for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		e.requiretls = flags[i].req;
		e.tls_required_no = flags[i].no;
		T_CHECK_INT(queue_env_version(&e), 3);
		buf_reset(&b);
		T_CHECK_INT(queue_env_encode(&e, &b), 0);
		T_CHECK(strncmp(b.data, "V 3\n", 4) == 0);
		T_CHECK(strstr(b.data, flags[i].line) != NULL);
		/* version 3 recipients carry the owed column, "-" here */
		T_CHECK(strstr(b.data, "greylisted -\n") != NULL);
		T_CHECK_INT(decode_guarded(b.data, b.len, &d, NULL, 0), 0);
		T_CHECK_INT(d.version, 3);
		T_CHECK(d.requiretls == flags[i].req);
		T_CHECK(d.tls_required_no == flags[i].no);
		queue_env_free(&d);
		check_round_trip(&e);
	}
	e.rcpt[1].dsn_owed = QUEUE_DSN_DELAY; /* an owed DSN stays 3 */
	T_CHECK_INT(queue_env_version(&e), 3);
	check_round_trip(&e);
	queue_env_free(&e);
	buf_free(&b);
}

/* The T record only as the encoder writes it. */
static void
test_version_3_refusals(void)
{
	static const char *const bad[] = {
	    "T 0 0\n", /* no flag: version 1 holds it */
	    "T 2 0\n",
	    "T 1 x\n",
	    "T 1\n",
	    "T 1 0 0\n",
	    "T - -\n",
	};
	struct queue_env e;
	struct buf b;
	size_t i;
	char *p;

	sample(&e);
	e.requiretls = true;
	buf_init(&b, QUEUE_ENV_FILE_MAX);
	T_CHECK_INT(queue_env_encode(&e, &b), 0);
	p = strstr(b.data, "\nT 1 0\n");
	T_CHECK(p != NULL);
	for (i = 0; p != NULL && i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct buf t;

		t_case(bad[i]);
		buf_init(&t, QUEUE_ENV_FILE_MAX);
		T_CHECK(buf_append(&t, b.data, (size_t)(p - b.data) + 1) == 0);
		T_CHECK(buf_append_str(&t, bad[i]) == 0);
		T_CHECK(buf_append_str(&t, p + strlen("\nT 1 0\n")) == 0);
		check_refused(t.data, t.len);
		buf_free(&t);
	}
	if (p != NULL) { /* the T record dropped: version 3 misses it */
		struct buf t;

		t_case("T missing");
		buf_init(&t, QUEUE_ENV_FILE_MAX);
		T_CHECK(buf_append(&t, b.data, (size_t)(p - b.data) + 1) == 0);
		T_CHECK(buf_append_str(&t, p + strlen("\nT 1 0\n")) == 0);
		check_refused(t.data, t.len);
		buf_free(&t);
	}
	queue_env_free(&e);
	buf_free(&b);
}

int
main(void)
{
	T_RUN(test_round_trip_sample);
	T_RUN(test_round_trip_minimal);
	T_RUN(test_doc_example);
	T_RUN(test_round_trip_hostile);
	T_RUN(test_nul);
	T_RUN(test_limits);
	T_RUN(test_every_prefix_refused);
	T_RUN(test_missing_and_duplicate);
	T_RUN(test_order);
	T_RUN(test_bad_lines);
	T_RUN(test_oversized);
	T_RUN(test_too_many_rcpts);
	T_RUN(test_empty_inputs);
	T_RUN(test_error_text);
	T_RUN(test_encode_refusals);
	T_RUN(test_reads_version_1);
	T_RUN(test_version_2_owed);
	T_RUN(test_version_2_refusals);
	T_RUN(test_version_3_tls);
	T_RUN(test_version_3_refusals);
	T_RUN(test_refuses_newer_version);
	T_RUN(test_peek_version);
	T_RUN(test_add_rcpt_and_ids);
	return t_summary();
}
