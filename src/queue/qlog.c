/*
 * qlog: the record codec of the log-structured queue (docs/queue.md,
 * "The log").  Pure: bytes in, bytes out, no I/O.
 *
 * A segment starts with a 32-byte header (magic, version, header length,
 * segment number, CRC32C of the 28 bytes before it).  Then records, each
 *
 *   u32 len   octets of the body (from offset 8), little endian
 *   u32 crc   CRC32C of the body
 *   body:     u8 type, u8 flags, u16 zero, u64 id, then by type:
 *             MSG: u32 envlen, the envelope text, the content
 *             ENV: the envelope text
 *             REMOVE, HOLD, RELEASE: nothing
 *
 * Segments are preallocated with zeros, so a length word of 0 is the end
 * of the log; anything else that does not check is torn (too short for
 * what its length says) or bad (checksum, type, flags, lengths).  The
 * caller decides what a torn or bad record means where it is found.
 *
 * CRC32C (Castagnoli): the SSE4.2 instruction when the CPU has it (about
 * 8 octets a cycle, so recovery is bound by the disk), else a table.
 */
#include <string.h>

#include "queue/queue.h"

static uint32_t qlog_table[256];
static bool qlog_table_ready;

static void
qlog_table_init(void)
{
	uint32_t c;
	unsigned i, k;

	for (i = 0; i < 256; i++) {
		c = i;
		for (k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		qlog_table[i] = c;
	}
	qlog_table_ready = true;
}

static uint32_t
qlog_crc_sw(uint32_t crc, const uint8_t *p, size_t n)
{
	if (!qlog_table_ready)
		qlog_table_init(); /* idempotent: a race writes equal values */
	while (n-- > 0)
		crc = qlog_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t
qlog_crc_hw(uint32_t crc, const uint8_t *p, size_t n)
{
	uint64_t c = crc, w;

	for (; n >= 8; n -= 8, p += 8) {
		memcpy(&w, p, 8);
		c = __builtin_ia32_crc32di(c, w);
	}
	crc = (uint32_t)c;
	for (; n > 0; n--)
		crc = __builtin_ia32_crc32qi(crc, *p++);
	return crc;
}
#endif

uint32_t
qlog_crc32c(uint32_t crc, const void *data, size_t n)
{
	const uint8_t *p = data;

	crc = ~crc;
#if defined(__x86_64__)
	if (__builtin_cpu_supports("sse4.2"))
		return ~qlog_crc_hw(crc, p, n);
#endif
	return ~qlog_crc_sw(crc, p, n);
}

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void
put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t
get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

void
qlog_seg_head(uint8_t out[QLOG_SEG_HEAD], uint64_t seq)
{
	memcpy(out, QLOG_MAGIC, 8);
	put32(out + 8, QLOG_VERSION);
	put32(out + 12, QLOG_SEG_HEAD);
	put64(out + 16, seq);
	put32(out + 24, 0);
	put32(out + 28, qlog_crc32c(0, out, 28));
}

enum qlog_res
qlog_seg_parse(const uint8_t *p, size_t n, uint64_t *seq_out)
{
	if (n < QLOG_SEG_HEAD)
		return QLOG_TORN;
	if (memcmp(p, QLOG_MAGIC, 8) != 0 ||
	    get32(p + 28) != qlog_crc32c(0, p, 28) || get32(p + 24) != 0 ||
	    get32(p + 12) != QLOG_SEG_HEAD)
		return QLOG_BAD;
	if (get32(p + 8) != QLOG_VERSION)
		return QLOG_VERSION_UNKNOWN;
	*seq_out = get64(p + 16);
	return QLOG_OK;
}

static bool
qlog_type_ok(unsigned type, unsigned flags)
{
	switch (type) {
	case QLOG_MSG:
		return (flags & ~QLOG_F_HELD) == 0;
	case QLOG_ENV:
	case QLOG_REMOVE:
	case QLOG_HOLD:
	case QLOG_RELEASE:
		return flags == 0;
	default:
		return false;
	}
}

int
qlog_rec_head(uint8_t out[QLOG_REC_HEAD_MAX], size_t *head_len,
    const struct qlog_rec *r, const struct iovec *content, int iovcnt)
{
	size_t body, clen = 0, h;
	uint32_t crc;
	int i;

	if (!qlog_type_ok(r->type, r->flags) ||
	    (r->type != QLOG_MSG && r->type != QLOG_ENV && r->envlen != 0) ||
	    (r->type != QLOG_MSG && iovcnt != 0) ||
	    r->envlen > QUEUE_ENV_FILE_MAX || iovcnt < 0)
		return -1;
	for (i = 0; i < iovcnt; i++) {
		if (content[i].iov_len > QLOG_REC_MAX)
			return -1;
		clen += content[i].iov_len;
	}
	h = r->type == QLOG_MSG ? QLOG_REC_HEAD_MAX : QLOG_REC_HEAD_MIN;
	body = h - 8 + r->envlen + clen;
	if (clen > QLOG_REC_MAX || body > QLOG_REC_MAX)
		return -1;
	put32(out, (uint32_t)body);
	out[8] = (uint8_t)r->type;
	out[9] = (uint8_t)r->flags;
	out[10] = out[11] = 0;
	put64(out + 12, r->id);
	if (r->type == QLOG_MSG)
		put32(out + 20, (uint32_t)r->envlen);
	crc = qlog_crc32c(0, out + 8, h - 8);
	crc = qlog_crc32c(crc, r->env, r->envlen);
	for (i = 0; i < iovcnt; i++)
		crc = qlog_crc32c(crc, content[i].iov_base, content[i].iov_len);
	put32(out + 4, crc);
	*head_len = h;
	return 0;
}

enum qlog_res
qlog_rec_parse(const uint8_t *p, size_t n, struct qlog_rec *r)
{
	size_t body, h;
	uint32_t envlen = 0;

	memset(r, 0, sizeof(*r));
	if (n < 4) {
		while (n > 0)
			if (p[--n] != 0)
				return QLOG_TORN;
		return QLOG_END;
	}
	body = get32(p);
	if (body == 0)
		return QLOG_END;
	if (body > QLOG_REC_MAX || body < QLOG_REC_HEAD_MIN - 8)
		return QLOG_BAD;
	if (n < 8 || body > n - 8)
		return QLOG_TORN;
	if (get32(p + 4) != qlog_crc32c(0, p + 8, body))
		return QLOG_BAD;
	r->type = p[8];
	r->flags = p[9];
	if (!qlog_type_ok(r->type, r->flags) || p[10] != 0 || p[11] != 0)
		return QLOG_BAD;
	r->id = get64(p + 12);
	h = QLOG_REC_HEAD_MIN;
	if (r->type == QLOG_MSG) {
		if (body < QLOG_REC_HEAD_MAX - 8)
			return QLOG_BAD;
		envlen = get32(p + 20);
		h = QLOG_REC_HEAD_MAX;
		if (envlen > body - (h - 8))
			return QLOG_BAD;
		r->envlen = envlen;
		r->content_off = h + envlen;
		r->content_len = body - (h - 8) - envlen;
	} else if (r->type == QLOG_ENV) {
		r->envlen = body - (h - 8);
	} else if (body != h - 8) {
		return QLOG_BAD;
	}
	if (r->envlen > QUEUE_ENV_FILE_MAX)
		return QLOG_BAD;
	r->env = (const char *)p + h; /* envlen 0: no octet is read */
	r->env_off = h;
	r->size = 8 + body;
	return QLOG_OK;
}
