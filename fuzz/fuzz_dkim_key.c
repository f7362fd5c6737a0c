/*
 * fuzz_dkim_key: libFuzzer harness for the DKIM key record parser
 * (dkim_key_parse in src/mailauth/dkim.c, RFC 6376 3.6.1): the TXT text a
 * DNS answer brings.  A record that parses holds a key of its type within
 * the size bounds, or is revoked and holds none; one that does not parse
 * says why and holds nothing.  Any broken invariant aborts.
 */
#include <stdlib.h>
#include <string.h>

#include "mailauth/dkim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                               \
	do {                                                                   \
		if (!(c))                                                      \
			abort();                                               \
	} while (0)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dkim_key k;
	const char *why = NULL;
	enum dkim_result r;

	r = dkim_key_parse((const char *)data, size, &k, &why);
	CHECK(why != NULL);
	if (r != DKIM_PASS) {
		CHECK(r == DKIM_PERMERROR && why[0] != '\0' && k.pkey == NULL);
		return 0;
	}
	CHECK(k.revoked == (k.pkey == NULL));
	if (!k.revoked && k.type == DKIM_KEY_RSA)
		CHECK(EVP_PKEY_get_base_id(k.pkey) == EVP_PKEY_RSA &&
		      k.bits >= DKIM_RSA_BITS_MIN &&
		      k.bits <= DKIM_RSA_BITS_MAX);
	if (!k.revoked && k.type == DKIM_KEY_ED25519)
		CHECK(EVP_PKEY_get_base_id(k.pkey) == EVP_PKEY_ED25519 &&
		      k.bits == 256);
	dkim_key_clear(&k);
	CHECK(k.pkey == NULL);
	return 0;
}
