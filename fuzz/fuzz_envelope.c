/*
 * libFuzzer harness for the queue envelope decoder (src/queue/envelope.c).
 *
 * Decode arbitrary bytes.  When they are refused, the output must be
 * zeroed (nothing half-loaded).  When they are accepted, the format's
 * canonical-form promise is checked: encoding the envelope gives back
 * exactly the input, and decoding that gives the same envelope.  Any
 * difference aborts.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue/queue.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Decoded envelopes are zeroed before being filled, so bytes compare. */
static bool
fz_same(const struct queue_env *a, const struct queue_env *b)
{
	struct queue_env x = *a, y = *b;

	x.rcpt = y.rcpt = NULL;
	return memcmp(&x, &y, sizeof(x)) == 0 &&
	       memcmp(a->rcpt, b->rcpt, a->nrcpt * sizeof(a->rcpt[0])) == 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct queue_env a, b;
	struct buf enc;
	char err[256];

	if (queue_env_decode((const char *)data, size, &a, err, sizeof(err)) !=
	    0) {
		if (a.rcpt != NULL || a.nrcpt != 0 || a.id[0] != '\0' ||
		    err[0] == '\0')
			abort();
		return 0;
	}
	buf_init(&enc, QUEUE_ENV_FILE_MAX);
	if (queue_env_encode(&a, &enc) != 0)
		abort();
	if (enc.len != size || memcmp(enc.data, data, size) != 0)
		abort(); /* not canonical */
	if (queue_env_decode(enc.data, enc.len, &b, err, sizeof(err)) != 0)
		abort();
	if (!fz_same(&a, &b))
		abort();
	queue_env_free(&a);
	queue_env_free(&b);
	buf_free(&enc);
	return 0;
}
