/*
 * fuzz_policy: libFuzzer harness for the policy protocol codec
 * (src/policy).
 *
 * The input is a stream of bytes "from a policy server".  Replies are
 * parsed one after the other, as the client does, abort() on a broken
 * property:
 *  - the result is -1, 0 or 1; a whole reply used 2..POLICY_REPLY_MAX
 *    octets of the input and ends with its empty line; 0 only while the
 *    input is shorter than POLICY_REPLY_MAX;
 *  - the action view lies inside the reply and holds no CR, LF or NUL;
 *  - the action parses to a kind whose code is 4xx/5xx with an enhanced
 *    code of the same class, whose text lies inside the action, and a
 *    PREPEND's name is printable and ends at its colon.
 * The input is also sent back as a request value, which is either
 * refused (CR, LF, NUL, too long) or framed as one line exactly.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_action(const char *p, size_t n)
{
	struct policy_action a;
	int rc = policy_action_parse(p, n, &a);

	if (rc != 0 && rc != -1)
		abort();
	if (rc != 0)
		return;
	if (a.text.len > 0 && (a.text.p < p || a.text.p + a.text.len > p + n))
		abort();
	switch (a.kind) {
	case POLICY_REJECT:
	case POLICY_DEFER:
	case POLICY_DEFER_IF_PERMIT:
	case POLICY_DEFER_IF_REJECT:
	case POLICY_CODE:
		if (a.code < 400 || a.code > 599 || a.enh[1] != '.' ||
		    a.enh[0] != (char)('0' + a.code / 100))
			abort();
		break;
	case POLICY_PREPEND:
		if (a.name.len == 0 || a.name.p != a.text.p ||
		    a.name.len >= a.text.len || a.name.p[a.name.len] != ':' ||
		    a.text.len > POLICY_HEADER_MAX)
			abort();
		for (size_t i = 0; i < a.name.len; i++)
			if ((unsigned char)a.name.p[i] <= 0x20 ||
			    (unsigned char)a.name.p[i] >= 0x7f)
				abort();
		break;
	default:
		if (a.code != 0)
			abort();
		break;
	}
}

static void
check_value(const uint8_t *data, size_t size)
{
	char *v = malloc(size + 1);
	struct buf b;
	int rc;

	memcpy(v, data, size);
	v[size] = '\0';
	buf_init(&b, 2 * POLICY_VALUE_MAX);
	rc = policy_attr_add(&b, "helo_name", v);
	if (rc == 0) {
		size_t vl = strlen(v);

		if (vl > POLICY_VALUE_MAX || strpbrk(v, "\r\n") != NULL ||
		    b.len != 10 + vl + 1 || memcmp(b.data, "helo_name=", 10) ||
		    memcmp(b.data + 10, v, vl) || b.data[b.len - 1] != '\n')
			abort();
	} else if (rc != -1 ||
		   (strlen(v) <= POLICY_VALUE_MAX && !strpbrk(v, "\r\n"))) {
		abort();
	}
	buf_free(&b);
	free(v);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	size_t off = 0;

	check_value(data, size);
	check_action(p, size);
	while (off < size) {
		struct policy_str act;
		size_t used = 0;
		int rc = policy_reply_parse(p + off, size - off, &act, &used);

		if (rc == 0) {
			if (size - off >= POLICY_REPLY_MAX)
				abort();
			break;
		}
		if (rc == -1)
			break;
		if (rc != 1 || used < 2 || used > POLICY_REPLY_MAX ||
		    used > size - off || p[off + used - 1] != '\n')
			abort();
		if (act.len > 0 &&
		    (act.p < p + off || act.p + act.len > p + off + used ||
			memchr(act.p, '\n', act.len) ||
			memchr(act.p, '\r', act.len) ||
			memchr(act.p, '\0', act.len)))
			abort();
		check_action(act.p, act.len);
		off += used;
	}
	return 0;
}
