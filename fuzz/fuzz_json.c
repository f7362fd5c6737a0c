/*
 * fuzz_json: libFuzzer harness for src/util/json.c, the JSON reader of the
 * control-socket client (in libcore.a: it depends on libc and util only).
 *
 * Besides the sanitisers, it aborts when a property breaks:
 *  - a parsed document is a well-formed tree: an array's or object's len
 *    is its number of children, members of objects have keys and
 *    elements of arrays do not, strings hold no NUL (strlen == len), the
 *    depth stays within JSON_DEPTH_MAX;
 *  - printing the tree and parsing the print gives the same print again
 *    (decoding and the number conversions are stable);
 *  - the same input under tiny limits never crashes either.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json.h"
#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_tree(const struct json_node *n, bool member, unsigned depth)
{
	const struct json_node *c;
	size_t count = 0;

	if (depth > JSON_DEPTH_MAX + 1 || (member != (n->key != NULL)))
		abort();
	if (member && strlen(n->key) != n->key_len)
		abort();
	if (n->type == JSON_STRING && strlen(n->str) != n->len)
		abort();
	if (n->type != JSON_ARRAY && n->type != JSON_OBJECT) {
		if (n->child != NULL)
			abort();
		return;
	}
	for (c = n->child; c != NULL; c = c->next, count++)
		check_tree(c, n->type == JSON_OBJECT, depth + 1);
	if (count != n->len)
		abort();
}

static void
print_str(struct buf *b, const char *s, size_t len)
{
	size_t k;

	(void)!buf_append(b, "\"", 1);
	for (k = 0; k < len; k++) {
		unsigned char c = (unsigned char)s[k];

		if (c == '"' || c == '\\' || c < 0x20)
			(void)!buf_printf(b, "\\u%04x", c);
		else
			(void)!buf_append(b, s + k, 1);
	}
	(void)!buf_append(b, "\"", 1);
}

static void
print_node(struct buf *b, const struct json_node *n)
{
	const struct json_node *c;

	if (n->key != NULL) {
		print_str(b, n->key, n->key_len);
		(void)!buf_append(b, ":", 1);
	}
	switch (n->type) {
	case JSON_NULL:
	case JSON_FALSE:
	case JSON_TRUE:
		(void)!buf_append_str(b, n->type == JSON_NULL	? "null"
					 : n->type == JSON_TRUE ? "true"
								: "false");
		return;
	case JSON_NUMBER:
		if (n->is_int)
			(void)!buf_printf(b, "%lld", (long long)n->i);
		else
			(void)!buf_printf(b, "%.17e", n->num);
		return;
	case JSON_STRING:
		print_str(b, n->str, n->len);
		return;
	default:
		break;
	}
	(void)!buf_append(b, n->type == JSON_ARRAY ? "[" : "{", 1);
	for (c = n->child; c != NULL; c = c->next) {
		print_node(b, c);
		if (c->next != NULL)
			(void)!buf_append(b, ",", 1);
	}
	(void)!buf_append(b, n->type == JSON_ARRAY ? "]" : "}", 1);
}

/* Non-integers print as "%.17e" (always a fraction and an exponent, so
 * they parse back as non-integers, -0.0 too); never "inf" or "nan", which
 * json.c refuses to produce. */
static void
round_trip(const struct json_doc *d)
{
	struct buf one, two;
	struct json_doc *d2;
	char err[128];

	buf_init(&one, 64u << 20);
	buf_init(&two, 64u << 20);
	print_node(&one, json_root(d));
	d2 = json_parse(one.data, one.len, NULL, err, sizeof(err));
	if (d2 == NULL)
		abort();
	print_node(&two, json_root(d2));
	if (one.len != two.len || memcmp(one.data, two.data, one.len) != 0)
		abort();
	json_free(d2);
	buf_free(&one);
	buf_free(&two);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct json_limits tiny = {64, 2, 8};
	struct json_doc *d;
	char err[128];

	d = json_parse((const char *)data, size, NULL, err, sizeof(err));
	if (d != NULL) {
		check_tree(json_root(d), false, 0);
		round_trip(d);
	}
	json_free(d);
	json_free(
	    json_parse((const char *)data, size, &tiny, err, sizeof(err)));
	return 0;
}
