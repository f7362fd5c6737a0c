/*
 * fuzz_tlsa: libFuzzer harness for src/util/tlsa.c.
 *
 * The input is a DNS message handed to tlsa_msg_parse (any length; the
 * sanitisers catch a read outside it).  It aborts when a parse that
 * failed leaves records behind, when a kept record breaks the rules of
 * tlsa.h (usage 2 or 3, selector 0 or 1, a digest of its exact length,
 * data within TLSA_DATA_MAX), or when the input read as one record's
 * RDATA gives a verdict that disagrees with its usage and length.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/tlsa.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_rr(const struct tlsa_rr *rr)
{
	if (rr->usage != TLSA_DANE_TA && rr->usage != TLSA_DANE_EE)
		abort();
	if (rr->selector > 1 || rr->mtype > 2)
		abort();
	if (rr->len == 0 || rr->len > TLSA_DATA_MAX)
		abort();
	if ((rr->mtype == 1 && rr->len != TLSA_SHA256) ||
	    (rr->mtype == 2 && rr->len != TLSA_SHA512))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tlsa_set set;
	struct tlsa_rr rr;
	enum tlsa_verdict v;

	if (tlsa_msg_parse(data, size, &set) != 0) {
		if (tlsa_set_count(&set) != 0)
			abort();
	} else {
		if (set.n > TLSA_MAX)
			abort();
		for (size_t i = 0; i < set.n; i++)
			check_rr(&set.rr[i]);
	}
	v = tlsa_rdata_parse(data, size, &rr);
	if (v == TLSA_USABLE) {
		check_rr(&rr);
		if (rr.len != size - 3 || memcmp(rr.data, data + 3, rr.len))
			abort();
	} else if (v != TLSA_UNUSABLE && v != TLSA_MALFORMED) {
		abort();
	} else if (v == TLSA_MALFORMED && size >= 4 && data[2] == 0) {
		abort(); /* Full(0) with data is never malformed */
	}
	return 0;
}
