/*
 * fuzz_dnsttl: libFuzzer harness for src/util/dnscache.c.
 *
 * The input is a DNS message handed to dnsmsg_ttl (any length; the
 * sanitisers catch a read outside it).  It aborts when the status is not
 * one of the enum's, when a status that is not cacheable comes with a
 * TTL other than 0, or when a TTL is over 2^31 - 1 (RFC 2181 8).  Then a
 * cacheable answer is stored in a small cache under a name made of the
 * input and read back: what comes back must be what was stored.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/dnscache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dnscache *c;
	uint32_t ttl = 1;
	enum dnsmsg_ttl_status st = dnsmsg_ttl(data, size, &ttl);
	struct dnscache_rr rr = {data, size, false};
	struct dnscache_ans ans = {0, 0, 1, &rr}, back;
	char name[64];
	size_t n = size < sizeof(name) - 1 ? size : sizeof(name) - 1;

	if (st != DNSMSG_TTL_POSITIVE && st != DNSMSG_TTL_NEGATIVE &&
	    st != DNSMSG_TTL_NONE)
		abort();
	if ((st == DNSMSG_TTL_NONE && ttl != 0) || ttl > 0x7FFFFFFFu)
		abort();
	if (c == NULL)
		c = dnscache_new(8, 1 << 16);
	for (size_t i = 0; i < n; i++)
		name[i] = data[i] == 0 ? 'z' : (char)data[i];
	name[n] = '\0';
	if (st == DNSMSG_TTL_NONE || ttl == 0 ||
	    !dnscache_put(c, 16, name, 1000, ttl, &ans))
		return 0;
	if (!dnscache_get(c, 16, name, 1000, &back) || back.n != 1 ||
	    back.rrs[0].len != size ||
	    (size > 0 && memcmp(back.rrs[0].data, data, size) != 0))
		abort();
	return 0;
}
