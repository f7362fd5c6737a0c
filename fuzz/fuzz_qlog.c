/*
 * libFuzzer harness for the log-structured queue's segment and record
 * parser (src/queue/qlog.c), read as recovery reads a segment: a header,
 * then records until the end, a torn or a bad one.  Every record
 * accepted must lie inside the input, and encoding it again must give
 * back exactly its bytes (the format is canonical).  Any difference
 * aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue/queue.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fz_check(const uint8_t *p, size_t n, const struct qlog_rec *r)
{
	uint8_t head[QLOG_REC_HEAD_MAX];
	struct iovec iov;
	size_t h;

	if (r->size > n || r->size < QLOG_REC_HEAD_MIN ||
	    r->env_off + r->envlen > r->size ||
	    (r->type == QLOG_MSG && r->content_off + r->content_len != r->size))
		abort();
	iov.iov_base = (void *)(uintptr_t)(p + r->content_off);
	iov.iov_len = r->content_len;
	if (qlog_rec_head(head, &h, r, &iov, r->type == QLOG_MSG ? 1 : 0) !=
		0 ||
	    h != r->env_off || memcmp(head, p, h) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qlog_rec r;
	uint64_t seq;
	size_t off;

	if (qlog_seg_parse(data, size, &seq) != QLOG_OK) {
		off = 0; /* records without a header, as well */
	} else {
		off = QLOG_SEG_HEAD;
	}
	while (off <= size &&
	       qlog_rec_parse(data + off, size - off, &r) == QLOG_OK) {
		fz_check(data + off, size - off, &r);
		off += r.size;
	}
	return 0;
}
