/*
 * test_logfmt: the JSON and journald forms of a log line (util/logfmt.c):
 * tables of exact outputs, hostile values (every byte a peer can put in a
 * HELO or an address, raw or as log_sanitize writes it), cuts at every
 * output size, and every JSON line checked by cli/json.c's parser.
 */
#include <stdint.h>
#include <string.h>

#include "cli/cli.h"
#include "t.h"
#include "util/logfmt.h"
#include "util/util.h"

#define TS "2026-12-07T05:40:00.123Z"
#define HEAD                                                                   \
	"{\"ts\":\"" TS "\",\"level\":\"info\",\"prog\":\"ternd\",\"pid\":42"

static size_t
json_of(const char *msg, size_t n, char *out, size_t outlen)
{
	return logfmt_json(out, outlen, TS, "info", "ternd", 42, msg, n);
}

static void
test_json_table(void)
{
	static const struct {
		const char *name, *in, *want;
	} rows[] = {
	    {"plain", "id=0123456789abcdef event=queued size=123",
		HEAD ",\"id\":\"0123456789abcdef\",\"event\":\"queued\","
		     "\"size\":123}\n"},
	    {"all-digit id stays a string", "id=1234567890123456 sid=12",
		HEAD ",\"id\":\"1234567890123456\",\"sid\":\"12\"}\n"},
	    {"leading zero is a string", "code=0250 n=0",
		HEAD ",\"code\":\"0250\",\"n\":0}\n"},
	    {"16 digits is a string", "n=1234567890123456",
		HEAD ",\"n\":\"1234567890123456\"}\n"},
	    {"status is a string", "status=4.4.7 code=451",
		HEAD ",\"status\":\"4.4.7\",\"code\":451}\n"},
	    {"quoted", "text=\"hello world\" x=1",
		HEAD ",\"text\":\"hello world\",\"x\":1}\n"},
	    {"escapes decoded", "helo=a\\x0d\\x0ab\\x22c\\x5cd",
		HEAD ",\"helo\":\"a\\r\\nb\\\"c\\\\d\"}\n"},
	    {"NUL and DEL", "v=\\x00\\x7f\\x01",
		HEAD ",\"v\":\"\\u0000\\u007f\\u0001\"}\n"},
	    {"valid UTF-8 kept", "to=<\\xc3\\xa9t\\xc3\\xa9@x>",
		HEAD ",\"to\":\"<\xc3\xa9t\xc3\xa9@x>\"}\n"},
	    {"invalid UTF-8 replaced", "v=\\xff\\xc3(\\xed\\xa0\\x80",
		HEAD ",\"v\":\"\\ufffd\\ufffd(\\ufffd\\ufffd\\ufffd\"}\n"},
	    {"overlong replaced", "v=\\xc0\\xaf",
		HEAD ",\"v\":\"\\ufffd\\ufffd\"}\n"},
	    {"raw bytes too", "v=a\"b\x01\xff",
		HEAD ",\"v\":\"a\\\"b\\u0001\\ufffd\"}\n"},
	    {"free words into msg", "remote: cannot arm timer x=1",
		HEAD ",\"x\":1,\"msg\":\"remote: cannot arm timer\"}\n"},
	    {"unclosed quote", "a=\"abc\\\"", HEAD ",\"a\":\"abc\\\"\"}\n"},
	    {"bad escape kept", "a=\\xZZ\\q",
		HEAD ",\"a\":\"\\\\xZZ\\\\q\"}\n"},
	    {"empty", "", HEAD "}\n"},
	    {"empty value", "a= b=\"\"", HEAD ",\"a\":\"\",\"b\":\"\"}\n"},
	};
	char out[LOGFMT_LINE_MAX];

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		size_t n;

		t_case(rows[i].name);
		n = json_of(rows[i].in, strlen(rows[i].in), out, sizeof(out));
		T_CHECK(n < sizeof(out));
		out[n < sizeof(out) ? n : 0] = '\0';
		T_CHECK_STR(out, rows[i].want);
	}
}

/* out[0..n) is one JSON object, its '\n' last and nowhere else. */
static void
check_one_line(const char *out, size_t n)
{
	char err[128];
	struct json_doc *d;

	T_CHECK(n > 2 && out[n - 1] == '\n' && out[n - 2] == '}');
	T_CHECK(memchr(out, '\n', n - 1) == NULL);
	T_CHECK(memchr(out, '\0', n) == NULL);
	for (size_t k = 0; k < n; k++)
		T_CHECK((unsigned char)out[k] >= 0x20 || out[k] == '\n');
	/* json.c refuses \u0000 by design; the rows here hold none */
	d = json_parse(out, n, NULL, err, sizeof(err));
	T_CHECK(d != NULL);
	if (d == NULL)
		fprintf(stderr, "  %.*s\n  %s\n", (int)n, out, err);
	else
		T_CHECK(json_root(d)->type == JSON_OBJECT);
	json_free(d);
}

/* Every byte 0x01..0xff, raw and escaped, in every field shape. */
static void
test_json_every_byte(void)
{
	char msg[64], out[LOGFMT_LINE_MAX];

	t_case("every byte");
	for (int c = 1; c < 256; c++) {
		static const char hex[] = "0123456789abcdef";
		size_t n;
		int len = 0;

		len += snprintf(msg, sizeof(msg), "a=x");
		msg[len++] = (char)c;
		len += snprintf(msg + len, sizeof(msg) - (size_t)len,
		    " b=\"\\x%c%c\" c=\"", hex[c >> 4], hex[c & 15]);
		msg[len++] = (char)c;
		msg[len++] = '"';
		n = json_of(msg, (size_t)len, out, sizeof(out));
		check_one_line(out, n);
	}
}

/* A line of hostile values cut at every output size stays valid. */
static void
test_json_cut(void)
{
	char msg[LOGFMT_LINE_MAX], out[LOGFMT_LINE_MAX];
	size_t m = 0, n, size;

	t_case("cut at every size");
	while (m + 40 < sizeof(msg)) {
		m += (size_t)snprintf(msg + m, sizeof(msg) - m,
		    "k%zu=\"\\xc3\\xa9\\x0a\\x22\\xff q\" n=%zu ", m, m);
	}
	/* the JSON of these escapes is shorter than the line: whole */
	size = json_of(msg, m, out, sizeof(out));
	check_one_line(out, size);
	T_CHECK(memmem(out, size, "cut", 3) == NULL);
	for (size_t lim = 128; lim < size; lim++) {
		n = json_of(msg, m, out, lim);
		T_CHECK(n <= lim);
		check_one_line(out, n);
		T_CHECK(n > 13 &&
			memcmp(out + n - 13, ",\"cut\":true}\n", 13) == 0);
	}
	size = json_of(msg, 10, out, sizeof(out));
	T_CHECK(size > 0 && memmem(out, size, "cut", 3) == NULL);
	T_CHECK(json_of(msg, m, out, 100) == 0);
}

/* Free words after a field cut at every size: the "msg" key kept room
 * for its own name (fuzz/regressions/logfmt: one octet over the size). */
static void
test_json_cut_words(void)
{
	static const char msg[] =
	    "ext=\"@id=012345*8 size2xxxxxxxxxx7\"5ddf\"a/V word another";
	char out[LOGFMT_LINE_MAX];
	size_t n;

	t_case("cut before the free words");
	for (size_t lim = 128; lim < 300; lim++) {
		n = json_of(msg, sizeof(msg) - 1, out, lim);
		T_CHECK(n <= lim);
		check_one_line(out, n);
	}
}

static void
test_next(void)
{
	const char *line = "a=1 b=\"x y\" word c=\"q\\\"r\" =d e=";
	struct logfmt_field f;
	size_t pos = 0, len = strlen(line);
	char v[64];

	t_case("fields");
	T_CHECK(
	    logfmt_next(line, len, &pos, &f) && f.keylen == 1 && f.vallen == 1);
	T_CHECK(logfmt_next(line, len, &pos, &f) && f.key[0] == 'b');
	T_CHECK_INT(logfmt_value(&f, v, sizeof(v)), 3);
	T_CHECK(memcmp(v, "x y", 3) == 0);
	T_CHECK(
	    logfmt_next(line, len, &pos, &f) && f.key == NULL && f.vallen == 4);
	T_CHECK(logfmt_next(line, len, &pos, &f) && f.key[0] == 'c');
	T_CHECK_INT(logfmt_value(&f, v, sizeof(v)), 3);
	T_CHECK(memcmp(v, "q\"r", 3) == 0);
	T_CHECK(logfmt_next(line, len, &pos, &f) && f.key == NULL);
	T_CHECK(logfmt_next(line, len, &pos, &f) && f.key[0] == 'e' &&
		f.vallen == 0);
	T_CHECK(!logfmt_next(line, len, &pos, &f));
	T_CHECK_INT(logfmt_value(&f, v, 2), 0);
}

static void
test_journal(void)
{
	static const char kv[] = "id=0123456789abcdef event=delivered to=<a@b> "
				 "helo=\"x\\x0ay\" mx.host-name=z word";
	static const char want[] = "MESSAGE=the body\n"
				   "PRIORITY=6\n"
				   "SYSLOG_FACILITY=2\n"
				   "SYSLOG_IDENTIFIER=ternd\n"
				   "SYSLOG_PID=42\n"
				   "TERN_QUEUE_ID=0123456789abcdef\n"
				   "TERN_EVENT=delivered\n"
				   "TERN_TO=<a@b>\n"
				   "TERN_HELO\n\3\0\0\0\0\0\0\0x\ny\n"
				   "TERN_MX_HOST_NAME=z\n";
	char out[LOGFMT_JOURNAL_MAX], big[LOGFMT_LINE_MAX];
	size_t n;

	t_case("journal fields");
	n = logfmt_journal(out, sizeof(out), 6, "ternd", 42, "the body", 8, kv,
	    sizeof(kv) - 1);
	T_CHECK_INT(n, sizeof(want) - 1);
	T_CHECK(n == sizeof(want) - 1 && memcmp(out, want, n) == 0);

	t_case("journal message with a newline is length-prefixed");
	n = logfmt_journal(out, sizeof(out), 3, "ternd", 1, "a\nb", 3, "", 0);
	T_CHECK(
	    n > 20 && memcmp(out, "MESSAGE\n\3\0\0\0\0\0\0\0a\nb\n", 20) == 0);

	t_case("journal cut: whole fields only");
	memset(big, 'm', sizeof(big));
	n = logfmt_journal(
	    out, 600, 6, "ternd", 1, big, sizeof(big), kv, sizeof(kv) - 1);
	T_CHECK(n <= 600 && n > 300);
	T_CHECK(out[n - 1] == '\n');
	T_CHECK(logfmt_journal(out, 100, 6, "t", 1, "m", 1, "", 0) == 0);
}

int
main(void)
{
	T_RUN(test_json_table);
	T_RUN(test_json_every_byte);
	T_RUN(test_json_cut);
	T_RUN(test_json_cut_words);
	T_RUN(test_next);
	T_RUN(test_journal);
	return t_summary();
}
