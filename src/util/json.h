/*
 * util/json: a small JSON reader (RFC 8259), pure.  Used by tern for the
 * answers of ternd's control socket and by ternd's ACME client
 * (src/acme/) for the answers of an ACME server.
 *
 * Owns: the parsed document (json_free).  May call: libc and util only.
 * Thread-safe: no shared state.
 */
#ifndef TERN_UTIL_JSON_H
#define TERN_UTIL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Enough JSON (RFC 8259) for the control socket and ACME: objects, arrays,
 * strings with every escape (surrogate pairs joined to UTF-8), numbers, true,
 * false, null.  The document is parsed whole into a tree of nodes that
 * point into a private copy of the input; strings are decoded in place
 * and NUL-terminated ("\u0000" is refused so they stay C strings).
 */
#define JSON_INPUT_MAX	(64u << 20) /* octets of one document */
#define JSON_DEPTH_MAX	64	    /* nesting of arrays and objects */
#define JSON_NODES_MAX	(1u << 21)  /* values in one document */
#define JSON_NUMBER_MAX 64	    /* octets of one number */

struct json_limits {
	size_t input_max;
	unsigned depth_max;
	size_t nodes_max;
};

enum json_type {
	JSON_NULL = 0,
	JSON_FALSE,
	JSON_TRUE,
	JSON_NUMBER,
	JSON_STRING,
	JSON_ARRAY,
	JSON_OBJECT,
};

struct json_node {
	enum json_type type;
	const char *key; /* member name in its object, or NULL */
	size_t key_len;
	const char *str; /* JSON_STRING: decoded, NUL-terminated */
	size_t len;	 /* string octets; array/object: members */
	double num;	 /* JSON_NUMBER */
	int64_t i;	 /* the same, exactly, when is_int */
	bool is_int;	 /* no fraction or exponent, fits int64 */
	const struct json_node *child; /* first element or member */
	const struct json_node *next;  /* next sibling */
	size_t child_i, next_i;	       /* private: node indices, and text */
	size_t str_i, key_i;	       /* offsets, while parsing */
};

struct json_doc;

/* Parse in[0..len); lim NULL = the defaults above.  NULL + err on error. */
struct json_doc *json_parse(const char *in, size_t len,
    const struct json_limits *lim, char *err, size_t errlen);
void json_free(struct json_doc *d); /* NULL ok */
const struct json_node *json_root(const struct json_doc *d);
/* Member key of obj (first of that name), or NULL (also if obj is none). */
const struct json_node *json_get(const struct json_node *obj, const char *key);
/* Member key as a string / integer / boolean: NULL or false if absent or
 * of another type. */
const char *json_get_str(const struct json_node *obj, const char *key);
bool json_get_int(const struct json_node *obj, const char *key, int64_t *out);
bool json_get_bool(const struct json_node *obj, const char *key, bool *out);

#endif
