/*
 * Unit tests for src/queue/qlog.c, the record codec of the log-structured
 * queue: the CRC32C, segment headers (good, torn, bad, other version) and
 * a table of records: good ones round-trip; every torn prefix of a good
 * one is TORN (or END when empty); a flipped bit anywhere is refused.
 */
#include "queue/queue.h"

#include <string.h>

#include "t.h"

/* Encode r (content c) into out; returns its length. */
static size_t
enc(uint8_t *out, size_t cap, const struct qlog_rec *r, const char *c)
{
	struct iovec iov = {(void *)(uintptr_t)c, c ? strlen(c) : 0};
	uint8_t head[QLOG_REC_HEAD_MAX];
	size_t h, n;

	if (qlog_rec_head(head, &h, r, &iov, c ? 1 : 0) != 0)
		return 0;
	n = h + r->envlen + iov.iov_len;
	if (n > cap)
		return 0;
	memcpy(out, head, h);
	memcpy(out + h, r->env, r->envlen);
	if (c)
		memcpy(out + h + r->envlen, c, iov.iov_len);
	return n;
}

static void
test_crc(void)
{
	t_case("crc32c check value");
	T_CHECK(qlog_crc32c(0, "123456789", 9) == 0xe3069283u);
	T_CHECK(qlog_crc32c(0, "", 0) == 0);
	t_case("crc32c continues");
	T_CHECK(
	    qlog_crc32c(qlog_crc32c(0, "1234", 4), "56789", 5) == 0xe3069283u);
	t_case("crc32c long input, odd tail");
	{
		uint8_t b[1027];
		uint32_t whole, parts;
		size_t i;

		for (i = 0; i < sizeof(b); i++)
			b[i] = (uint8_t)(i * 7 + 3);
		whole = qlog_crc32c(0, b, sizeof(b));
		parts =
		    qlog_crc32c(qlog_crc32c(0, b, 13), b + 13, sizeof(b) - 13);
		T_CHECK(whole == parts);
	}
}

static void
test_seg_head(void)
{
	uint8_t h[QLOG_SEG_HEAD];
	uint64_t seq = 0;

	t_case("segment header round trip");
	qlog_seg_head(h, 42);
	T_CHECK_INT(qlog_seg_parse(h, sizeof(h), &seq), QLOG_OK);
	T_CHECK(seq == 42);
	t_case("segment header torn");
	T_CHECK_INT(qlog_seg_parse(h, sizeof(h) - 1, &seq), QLOG_TORN);
	T_CHECK_INT(qlog_seg_parse(h, 0, &seq), QLOG_TORN);
	t_case("segment header bad magic");
	h[0] ^= 1;
	T_CHECK_INT(qlog_seg_parse(h, sizeof(h), &seq), QLOG_BAD);
	h[0] ^= 1;
	t_case("segment header bad crc");
	h[17] ^= 0x40;
	T_CHECK_INT(qlog_seg_parse(h, sizeof(h), &seq), QLOG_BAD);
	h[17] ^= 0x40;
	t_case("segment header of another version");
	h[8] = 2; /* version 2, checksum made right: known not, refused */
	h[28] = h[29] = h[30] = h[31] = 0;
	{
		uint32_t c = qlog_crc32c(0, h, 28);

		h[28] = (uint8_t)c;
		h[29] = (uint8_t)(c >> 8);
		h[30] = (uint8_t)(c >> 16);
		h[31] = (uint8_t)(c >> 24);
	}
	T_CHECK_INT(qlog_seg_parse(h, sizeof(h), &seq), QLOG_VERSION_UNKNOWN);
}

static const struct {
	const char *name;
	unsigned type, flags;
	uint64_t id;
	const char *env, *content;
} good[] = {
    {"msg", QLOG_MSG, 0, 0x65f2c3a1b3e0a917ull, "V 1\nI x\nE 1\n",
	"Received: x\r\n\r\nbody\r\n"},
    {"msg held, empty content", QLOG_MSG, QLOG_F_HELD, 1, "V 1\n", ""},
    {"msg empty envelope", QLOG_MSG, 0, ~0ull, "", "c"},
    {"env", QLOG_ENV, 0, 7, "V 2\nE 1\n", NULL},
    {"remove", QLOG_REMOVE, 0, 8, "", NULL},
    {"hold", QLOG_HOLD, 0, 9, "", NULL},
    {"release", QLOG_RELEASE, 0, 10, "", NULL},
};

static void
test_good(void)
{
	uint8_t b[512];
	struct qlog_rec r, p;
	size_t i, n, k;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		t_case(good[i].name);
		memset(&r, 0, sizeof(r));
		r.type = good[i].type;
		r.flags = good[i].flags;
		r.id = good[i].id;
		r.env = good[i].env;
		r.envlen = strlen(good[i].env);
		n = enc(b, sizeof(b), &r, good[i].content);
		T_CHECK(n > 0);
		T_CHECK_INT(qlog_rec_parse(b, n, &p), QLOG_OK);
		T_CHECK(p.size == n && p.type == r.type && p.flags == r.flags &&
			p.id == r.id && p.envlen == r.envlen);
		T_CHECK(memcmp(p.env, r.env, r.envlen) == 0);
		T_CHECK((const uint8_t *)p.env == b + p.env_off);
		if (good[i].content != NULL) {
			T_CHECK(p.content_len == strlen(good[i].content));
			T_CHECK(memcmp(b + p.content_off, good[i].content,
				    p.content_len) == 0);
		}
		/* followed by zeros (preallocation): parses the same */
		memset(b + n, 0, 16);
		T_CHECK_INT(qlog_rec_parse(b, n + 16, &p), QLOG_OK);
		T_CHECK_INT(qlog_rec_parse(b + n, 16, &p), QLOG_END);
		/* every cut short of the whole record is torn */
		for (k = 1; k < n; k++)
			if (qlog_rec_parse(b, k, &p) != QLOG_TORN)
				break;
		T_CHECK(k == n);
		/* every flipped bit is refused (or reads as the end) */
		for (k = 0; k < n * 8; k++) {
			enum qlog_res res;

			b[k / 8] ^= (uint8_t)(1u << (k % 8));
			res = qlog_rec_parse(b, n, &p);
			b[k / 8] ^= (uint8_t)(1u << (k % 8));
			if (res == QLOG_OK)
				break;
		}
		T_CHECK(k == n * 8);
	}
}

static void
test_bad(void)
{
	uint8_t b[256];
	struct qlog_rec r = {0}, p;
	size_t n;

	t_case("empty and zeros are the end");
	T_CHECK_INT(qlog_rec_parse(b, 0, &p), QLOG_END);
	memset(b, 0, 8);
	T_CHECK_INT(qlog_rec_parse(b, 3, &p), QLOG_END);
	T_CHECK_INT(qlog_rec_parse(b, 8, &p), QLOG_END);
	t_case("a nonzero stub shorter than a length word is torn");
	b[1] = 5;
	T_CHECK_INT(qlog_rec_parse(b, 3, &p), QLOG_TORN);

	t_case("encoder refuses what the parser would");
	r.type = 0;
	T_CHECK(enc(b, sizeof(b), &r, NULL) == 0);
	r.type = QLOG_ENV;
	r.flags = QLOG_F_HELD;
	T_CHECK(enc(b, sizeof(b), &r, NULL) == 0);
	r.type = QLOG_REMOVE;
	r.flags = 0;
	r.env = "x";
	r.envlen = 1;
	T_CHECK(enc(b, sizeof(b), &r, NULL) == 0);
	r.type = QLOG_HOLD;
	r.env = "";
	r.envlen = 0;
	T_CHECK(enc(b, sizeof(b), &r, "content") == 0);

	t_case("length over the limit");
	memset(b, 0, sizeof(b));
	b[3] = 0x7f;
	T_CHECK_INT(qlog_rec_parse(b, sizeof(b), &p), QLOG_BAD);
	t_case("length under a record head");
	b[3] = 0;
	b[0] = 4;
	T_CHECK_INT(qlog_rec_parse(b, sizeof(b), &p), QLOG_BAD);

	t_case("unknown type with a right checksum");
	r.type = QLOG_REMOVE;
	r.id = 3;
	n = enc(b, sizeof(b), &r, NULL);
	T_CHECK(n == QLOG_REC_HEAD_MIN);
	b[8] = 77;
	{
		uint32_t c = qlog_crc32c(0, b + 8, n - 8);

		memcpy(b + 4, &c, 4); /* little-endian host */
	}
	T_CHECK_INT(qlog_rec_parse(b, n, &p), QLOG_BAD);

	t_case("REMOVE with a body, right checksum");
	b[8] = QLOG_REMOVE;
	b[0] = (uint8_t)(n - 8 + 4);
	memset(b + n, 'x', 4);
	{
		uint32_t c = qlog_crc32c(0, b + 8, n - 8 + 4);

		memcpy(b + 4, &c, 4);
	}
	T_CHECK_INT(qlog_rec_parse(b, n + 4, &p), QLOG_BAD);

	t_case("MSG whose envelope length passes its end");
	memset(&r, 0, sizeof(r));
	r.type = QLOG_MSG;
	r.env = "abc";
	r.envlen = 3;
	n = enc(b, sizeof(b), &r, "de");
	T_CHECK(n > 0);
	b[20] = 6;
	{
		uint32_t c = qlog_crc32c(0, b + 8, n - 8);

		memcpy(b + 4, &c, 4);
	}
	T_CHECK_INT(qlog_rec_parse(b, n, &p), QLOG_BAD);
	t_case("nonzero reserved bytes");
	b[20] = 3;
	b[10] = 1;
	{
		uint32_t c = qlog_crc32c(0, b + 8, n - 8);

		memcpy(b + 4, &c, 4);
	}
	T_CHECK_INT(qlog_rec_parse(b, n, &p), QLOG_BAD);
}

int
main(void)
{
	T_RUN(test_crc);
	T_RUN(test_seg_head);
	T_RUN(test_good);
	T_RUN(test_bad);
	return t_summary();
}
