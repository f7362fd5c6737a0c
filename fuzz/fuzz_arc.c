/*
 * fuzz_arc: libFuzzer harness for src/mailauth/arc.c (and the DKIM pieces
 * it shares: the AMS and AS parsers, canonicalisation, the hashes).
 *
 * The first byte picks how the rest is used:
 *   even: as header fields put on top of a fixed message (ARC sets of
 *         any form, well formed or not): the chain is read, every lookup
 *         answered with the harness's Ed25519 key record, and validated;
 *   odd:  as a whole message: validated the same way, then sealed with
 *         the harness's key (the cv its validation gives), and the sealed
 *         message validated again.
 * Invariants, any broken one aborts: results and reasons within their
 * bounds; "none" only without ARC fields; a pass has an oldest-pass of 0
 * or an instance of the chain; at most 2N distinct lookups; and a message
 * that had no ARC set and that arc_seal sealed validates "pass" (the
 * sealer and the validator agree on every input).
 */
#include <stdlib.h>
#include <string.h>

#include "mailauth/arc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                               \
	do {                                                                   \
		if (!(c))                                                      \
			abort();                                               \
	} while (0)

/* Ed25519 from a fixed seed: selector "fz", any domain. */
static const unsigned char seed[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
    13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
    32};
static EVP_PKEY *key;
static char rec[256];

static const char tail_msg[] =
    "From: Joe SixPack <joe@football.example.com>\r\n"
    "To: Suzie Q <suzie@shopping.example.net>\r\n"
    "Subject: Is dinner ready?\r\n"
    "Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
    "\r\n"
    "Hi.\r\n"
    "\r\n"
    "We lost the game.  Are you hungry yet?\r\n";

static void
setup(void)
{
	struct buf b;

	if (key != NULL)
		return;
	key = EVP_PKEY_new_raw_private_key(
	    EVP_PKEY_ED25519, NULL, seed, sizeof(seed));
	CHECK(key != NULL);
	buf_init(&b, sizeof(rec) - 1);
	CHECK(dkim_pkey_record(key, &b, NULL) == 0);
	memcpy(rec, b.data, b.len + 1);
	buf_free(&b);
}

/* Validate msg, answering every lookup with the harness's key. */
static struct arc_outcome
validate(const char *msg, size_t len)
{
	struct arc_verify *v = arc_verify_new(msg, len, 1700000000);
	const struct arc_outcome *o = arc_verify_result(v);
	struct arc_outcome out;
	const char *txt = rec;
	size_t tl = strlen(rec), k, nq = arc_verify_queries(v);

	CHECK(o->n <= ARC_INSTANCE_MAX);
	CHECK(nq <= 2 * (size_t)o->n);
	for (k = 0; k < nq; k++) {
		CHECK(strstr(arc_verify_query(v, k), "._domainkey.") != NULL);
		arc_verify_key(v, k, DKIM_DNS_OK, &txt, &tl, 1);
	}
	CHECK(arc_verify_query(v, nq) == NULL);
	arc_verify_run(v);
	out = *o;
	arc_verify_free(v);
	CHECK(out.result <= ARC_FAIL);
	CHECK(strlen(out.reason) < sizeof(out.reason));
	if (out.result == ARC_NONE)
		CHECK(out.n == 0);
	if (out.result == ARC_FAIL)
		CHECK(out.reason[0] != '\0');
	if (out.result == ARC_PASS)
		CHECK(out.n >= 1 && out.oldest_pass >= 0 &&
		      out.oldest_pass <= (int)out.n && out.oldest_pass != 1);
	else
		CHECK(out.oldest_pass == -1);
	return out;
}

static void
seal_and_check(const char *msg, size_t len, const struct arc_outcome *before)
{
	struct arc_seal_opts so = {"mx.example.org",
	    "spf=pass smtp.mailfrom=joe@football.example.com",
	    arc_seal_cv(before), "football.example.com", "fz", key, 1700000000};
	struct buf out;
	char err[256];
	struct arc_outcome after;

	buf_init(&out, 2 * len + 65536);
	if (arc_seal(&so, msg, len, &out, err, sizeof(err)) != 0) {
		CHECK(out.len == 0 && err[0] != '\0');
		buf_free(&out);
		return;
	}
	CHECK(strncmp(out.data, "ARC-Seal: i=", 12) == 0);
	CHECK(out.len >= 2 && memcmp(out.data + out.len - 2, "\r\n", 2) == 0);
	CHECK(buf_append(&out, msg, len) == 0);
	after = validate(out.data, out.len);
	CHECK(after.n >= 1);
	if (before->result == ARC_NONE)
		CHECK(after.result == ARC_PASS && after.n == 1);
	if (arc_seal_cv(before) == ARC_CV_FAIL)
		CHECK(after.result == ARC_FAIL);
	buf_free(&out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data + 1;
	struct arc_outcome o;
	struct buf m;

	if (size == 0 || size > 65536)
		return 0;
	setup();
	if ((data[0] & 1) == 0) {
		buf_init(&m, size + sizeof(tail_msg));
		CHECK(buf_append(&m, p, size - 1) == 0 &&
		      buf_append_str(&m, tail_msg) == 0);
		(void)validate(m.data, m.len);
		buf_free(&m);
		return 0;
	}
	o = validate(p, size - 1);
	seal_and_check(p, size - 1, &o);
	return 0;
}
