/*
 * Unit tests for src/util/json.c, the JSON reader of tern's control-socket
 * client: a table of documents accepted or refused, decoding of strings
 * and numbers, the limits, the tree walk, and ternd's real answers.
 *
 * The parser takes a complete document (ternd closes after one), so each
 * input is parsed whole from a t_guard() copy (a one-byte over-read
 * faults), then every prefix is parsed too: none may crash, and a prefix
 * of an object or array is never accepted.
 */
#include "t.h"
#include "util/json.h"

struct row {
	const char *name;
	const char *in;
	bool ok;
};

static const struct row rows[] = {
    {"empty object", "{}", true},
    {"empty array", "[]", true},
    {"nested", "{\"a\":[1,{\"b\":null}],\"c\":true}", true},
    {"spaces everywhere", " \t\r\n{ \"a\" : [ 1 , 2 ] } \n", true},
    {"top-level scalar", "42", true},
    {"top-level string", "\"x\"", true},
    {"literals", "[true,false,null]", true},
    {"numbers", "[0,-0,1.5,-2e10,3E+2,4e-2,123456789012]", true},
    {"escapes", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\"", true},
    {"utf-8 raw", "\"caf\xc3\xa9\"", true},
    {"8-bit raw", "\"\xff\xfe\"", true},
    {"surrogate pair", "\"\\ud83d\\ude00\"", true},
    {"empty key", "{\"\":1}", true},
    {"duplicate key", "{\"a\":1,\"a\":2}", true},
    {"nothing", "", false},
    {"only blanks", "  \n", false},
    {"trailing comma array", "[1,]", false},
    {"trailing comma object", "{\"a\":1,}", false},
    {"leading comma", "[,1]", false},
    {"missing colon", "{\"a\" 1}", false},
    {"unquoted key", "{a:1}", false},
    {"single quotes", "['a']", false},
    {"unclosed array", "[1,2", false},
    {"unclosed object", "{\"a\":1", false},
    {"unclosed string", "\"abc", false},
    {"two values", "{} {}", false},
    {"garbage after", "[1]x", false},
    {"leading zero", "012", false},
    {"plus sign", "+1", false},
    {"bare minus", "-", false},
    {"dot without digits", "1.", false},
    {"exponent without digits", "1e", false},
    {"hex", "0x10", false},
    {"infinity", "1e999", false},
    {"NaN word", "NaN", false},
    {"bad literal", "tru", false},
    {"control char in string", "\"a\x01z\"", false},
    {"raw newline in string", "\"a\nb\"", false},
    {"bad escape", "\"\\x\"", false},
    {"short unicode", "\"\\u12\"", false},
    {"bad hex", "\"\\u12g4\"", false},
    {"nul escape", "\"a\\u0000b\"", false},
    {"lone high surrogate", "\"\\ud83dx\"", false},
    {"high then bad low", "\"\\ud83d\\u0041\"", false},
    {"lone low surrogate", "\"\\ude00\"", false},
    {"nul byte outside", "[1,\0]", false},
    {"comment", "[1 /* c */]", false},
    {"close mismatch", "[1}", false},
};

static struct json_doc *
parse_guarded(const char *in, size_t len, const struct json_limits *lim)
{
	char err[128];
	void *map;
	size_t maplen;
	const char *g = t_guard(in, len, &map, &maplen);
	struct json_doc *d = json_parse(g, len, lim, err, sizeof(err));

	t_unguard(map, maplen);
	if (d == NULL)
		T_CHECK(strncmp(err, "JSON error at offset ", 21) == 0);
	return d;
}

static void
test_table(void)
{
	size_t i, k, len;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct json_doc *d;

		t_case(rows[i].name);
		len = strlen(rows[i].in);
		if (strcmp(rows[i].name, "nul byte outside") == 0)
			len = 5;
		d = parse_guarded(rows[i].in, len, NULL);
		T_CHECK_INT(d != NULL, rows[i].ok);
		json_free(d);
		for (k = 0; k < len; k++) {
			d = parse_guarded(rows[i].in, k, NULL);
			/* a cut object or array is never a document */
			if (rows[i].ok && strchr("{[", rows[i].in[0]) != NULL &&
			    strchr("}]", rows[i].in[len - 1]) != NULL)
				T_CHECK(d == NULL);
			json_free(d);
		}
	}
}

static void
test_strings(void)
{
	static const char in[] =
	    "[\"\\\"\\\\\\/"
	    "\\b\\f\\n\\r\\t\",\"\\u00e9\\u20ac\",\"\\ud83d\\ude00\","
	    "\"\",\"plain\"]";
	char err[128];
	struct json_doc *d = json_parse(in, strlen(in), NULL, err, sizeof(err));
	const struct json_node *a = json_root(d), *s;

	T_CHECK(d != NULL);
	if (d == NULL)
		return;
	T_CHECK_INT(a->type, JSON_ARRAY);
	T_CHECK_INT(a->len, 5);
	s = a->child;
	T_CHECK_STR(s->str, "\"\\/\b\f\n\r\t");
	T_CHECK_INT(s->len, 8);
	s = s->next;
	T_CHECK_STR(s->str, "\xc3\xa9\xe2\x82\xac");
	s = s->next;
	T_CHECK_STR(s->str, "\xf0\x9f\x98\x80");
	s = s->next;
	T_CHECK_STR(s->str, "");
	T_CHECK_INT(s->len, 0);
	s = s->next;
	T_CHECK_STR(s->str, "plain");
	T_CHECK(s->next == NULL);
	json_free(d);
}

struct num_row {
	const char *in;
	bool is_int;
	long long i;
	double num;
};

static const struct num_row num_rows[] = {
    {"0", true, 0, 0},
    {"-0", true, 0, 0},
    {"1795901404", true, 1795901404LL, 1795901404.0},
    {"9223372036854775807", true, 9223372036854775807LL,
	9.223372036854775807e18},
    {"-9223372036854775808", true, (-9223372036854775807LL - 1),
	-9.223372036854775808e18},
    {"9223372036854775808", false, 0, 9.223372036854775808e18},
    {"1.5", false, 0, 1.5},
    {"-2e3", false, 0, -2000},
    {"25E-1", false, 0, 2.5},
};

static void
test_numbers(void)
{
	size_t i;
	char err[128];

	for (i = 0; i < sizeof(num_rows) / sizeof(num_rows[0]); i++) {
		const struct num_row *r = &num_rows[i];
		struct json_doc *d;
		const struct json_node *n;

		t_case(r->in);
		d = json_parse(r->in, strlen(r->in), NULL, err, sizeof(err));
		n = json_root(d);
		T_CHECK(n != NULL && n->type == JSON_NUMBER);
		if (n != NULL) {
			T_CHECK_INT(n->is_int, r->is_int);
			if (r->is_int)
				T_CHECK_INT(n->i, r->i);
			T_CHECK(n->num == r->num);
		}
		json_free(d);
	}
	t_case("number too long");
	{
		char big[JSON_NUMBER_MAX + 2];

		memset(big, '1', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		T_CHECK(json_parse(big, strlen(big), NULL, err, sizeof(err)) ==
			NULL);
		T_CHECK(strstr(err, "number too long") != NULL);
	}
}

static void
test_limits(void)
{
	struct json_limits lim = {64, 3, 5};
	char err[128];
	struct json_doc *d;

	t_case("depth at the limit");
	d = json_parse("[[[]]]", 6, &lim, err, sizeof(err));
	T_CHECK(d != NULL);
	json_free(d);
	t_case("depth over the limit");
	T_CHECK(json_parse("[[[[]]]]", 8, &lim, err, sizeof(err)) == NULL);
	T_CHECK(strstr(err, "nested too deep") != NULL);
	t_case("nodes at the limit");
	d = json_parse("[1,2,3,4]", 9, &lim, err, sizeof(err));
	T_CHECK(d != NULL);
	json_free(d);
	t_case("nodes over the limit");
	T_CHECK(json_parse("[1,2,3,4,5]", 11, &lim, err, sizeof(err)) == NULL);
	T_CHECK(strstr(err, "too many values") != NULL);
	t_case("input over the limit");
	{
		char in[80];

		memset(in, ' ', sizeof(in));
		in[0] = '1';
		T_CHECK(
		    json_parse(in, sizeof(in), &lim, err, sizeof(err)) == NULL);
		T_CHECK(strstr(err, "too big") != NULL);
	}
	t_case("default depth is bounded");
	{
		char deep[2 * (JSON_DEPTH_MAX + 1)];
		size_t k;

		for (k = 0; k <= JSON_DEPTH_MAX; k++) {
			deep[k] = '[';
			deep[2 * (JSON_DEPTH_MAX + 1) - 1 - k] = ']';
		}
		T_CHECK(json_parse(deep, sizeof(deep), NULL, err,
			    sizeof(err)) == NULL);
		d = json_parse(
		    deep + 1, sizeof(deep) - 2, NULL, err, sizeof(err));
		T_CHECK(d != NULL);
		json_free(d);
	}
}

/* An answer as ternd writes it (src/server/qmgr.c). */
static const char list_answer[] =
    "{\"ok\":true,\"messages\":[{\"id\":\"6a4f1c2e9b3d7a01\","
    "\"created\":1795901404,\"size\":430,\"held\":false,"
    "\"next_try\":1795901704,\"sender\":\"a@b\",\"recipients\":["
    "{\"addr\":\"x@y\",\"state\":\"PENDING\",\"attempts\":1,"
    "\"next_try\":1795901704,\"code\":451,\"enh\":\"4.3.0\","
    "\"text\":\"try \\u0001later\"}]}]}\n";

static void
test_answer(void)
{
	char err[128];
	struct json_doc *d = json_parse(
	    list_answer, strlen(list_answer), NULL, err, sizeof(err));
	const struct json_node *root = json_root(d), *msgs, *m, *r;
	int64_t v = 0;
	bool b = true;

	T_CHECK(d != NULL);
	if (d == NULL)
		return;
	T_CHECK(json_get_bool(root, "ok", &b) && b);
	msgs = json_get(root, "messages");
	T_CHECK(msgs != NULL && msgs->type == JSON_ARRAY && msgs->len == 1);
	m = msgs->child;
	T_CHECK_STR(json_get_str(m, "id"), "6a4f1c2e9b3d7a01");
	T_CHECK(json_get_int(m, "created", &v) && v == 1795901404);
	T_CHECK(json_get_bool(m, "held", &b) && !b);
	T_CHECK(json_get_str(m, "size") == NULL); /* a number, not a string */
	T_CHECK(!json_get_int(m, "sender", &v));  /* a string, not a number */
	T_CHECK(json_get(m, "missing") == NULL);
	T_CHECK(
	    json_get(json_get(m, "recipients"), "addr") == NULL); /* array */
	r = json_get(m, "recipients")->child;
	T_CHECK_STR(json_get_str(r, "state"), "PENDING");
	T_CHECK_STR(json_get_str(r, "text"), "try \x01later");
	T_CHECK(json_get_int(r, "code", &v) && v == 451);
	T_CHECK_INT(r->key_len, 0);
	T_CHECK(r->key == NULL);
	json_free(d);
	t_case("error answer");
	{
		static const char no[] =
		    "{\"ok\":false,\"error\":\"no such message\"}";

		d = json_parse(no, strlen(no), NULL, err, sizeof(err));
	}
	T_CHECK(json_get_bool(json_root(d), "ok", &b) && !b);
	T_CHECK_STR(json_get_str(json_root(d), "error"), "no such message");
	json_free(d);
	json_free(NULL);
	T_CHECK(json_root(NULL) == NULL);
	T_CHECK(json_get(NULL, "x") == NULL);
}

/* Random bytes from a small alphabet: never a crash, and a parse that
 * succeeds has a well-formed tree. */
static void
test_random(void)
{
	static const char alpha[] = "{}[],:\"\\u0123456789.eE+-tfnrl a";
	char in[48], err[128];
	int iter;

	for (iter = 0; iter < 20000; iter++) {
		size_t len = (size_t)(t_rand() % sizeof(in)), k;
		struct json_doc *d;

		for (k = 0; k < len; k++)
			in[k] = alpha[t_rand() % (sizeof(alpha) - 1)];
		d = parse_guarded(in, len, NULL);
		if (d != NULL)
			T_CHECK(json_root(d) != NULL);
		json_free(d);
	}
	(void)err;
}

int
main(void)
{
	T_RUN(test_table);
	T_RUN(test_strings);
	T_RUN(test_numbers);
	T_RUN(test_limits);
	T_RUN(test_answer);
	T_RUN(test_random);
	return t_summary();
}
