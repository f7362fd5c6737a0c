/*
 * fuzz_addr: libFuzzer harness for src/addr.
 *
 * The input is parsed as a path under each of the eight flag combinations,
 * and as a mailbox and as a domain with and without SMTPUTF8.  Besides the
 * sanitisers, it aborts when a property breaks:
 *  - a parsed path ends at a '>' within the input;
 *  - addr_format() output fits, and parses back (wrapped in <>) to the
 *    same address, and formats again to the same text (a fixed point);
 *    "quoted" may change, since needless quotes are dropped;
 *  - flags only widen the language: what parses under some flags parses
 *    the same under every superset of them;
 *  - utf8 is set exactly when local part or domain has a byte >= 0x80;
 *  - a parsed domain re-parses to itself.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addr/addr.h"

#define FMT_MAX 600

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
same(const struct addr *x, const struct addr *y)
{
	return strcmp(x->local, y->local) == 0 &&
	       strcmp(x->domain, y->domain) == 0 && x->kind == y->kind &&
	       x->null == y->null && x->postmaster == y->postmaster &&
	       x->utf8 == y->utf8;
}

static bool
has_high(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return true;
	return false;
}

/* Format a, check the text parses back under flags to the same address. */
static void
check_round_trip(const struct addr *a, unsigned flags)
{
	char out[FMT_MAX], wrapped[FMT_MAX + 2], again[FMT_MAX];
	struct addr b;
	size_t used;
	int n = addr_format(a, out, sizeof(out));

	if (n < 0 || (size_t)n != strlen(out))
		abort();
	if (a->utf8 != (has_high(a->local) || has_high(a->domain)))
		abort();
	wrapped[0] = '<';
	memcpy(wrapped + 1, out, (size_t)n);
	wrapped[n + 1] = '>';
	if (addr_parse_path(wrapped, (size_t)n + 2, flags, &b, &used) !=
	    ADDR_OK)
		abort();
	if (used != (size_t)n + 2 || !same(a, &b))
		abort();
	if (addr_format(&b, again, sizeof(again)) != n ||
	    strcmp(out, again) != 0)
		abort();
}

static void
check_path(const char *s, size_t size)
{
	struct addr res[8], wider;
	enum addr_status st[8];
	size_t used[8], u;
	unsigned f, g;

	for (f = 0; f < 8; f++) {
		st[f] = addr_parse_path(s, size, f, &res[f], &used[f]);
		if (st[f] != ADDR_OK)
			continue;
		if (used[f] < 2 || used[f] > size || used[f] > ADDR_PATH_MAX ||
		    s[used[f] - 1] != '>')
			abort();
		check_round_trip(&res[f], f);
	}
	for (f = 0; f < 8; f++) {
		if (st[f] != ADDR_OK)
			continue;
		for (g = f + 1; g < 8; g++) {
			if ((g & f) != f)
				continue;
			if (st[g] != ADDR_OK || used[g] != used[f] ||
			    !same(&res[f], &res[g]))
				abort();
		}
	}
	/* a path never needs what comes after its '>' */
	if (st[7] == ADDR_OK && used[7] < size &&
	    (addr_parse_path(s, used[7], 7, &wider, &u) != ADDR_OK ||
		!same(&wider, &res[7])))
		abort();
}

static void
check_mailbox(const char *s, size_t size, unsigned flags)
{
	struct addr a;

	if (addr_parse_mailbox(s, size, flags, &a) != ADDR_OK)
		return;
	if (a.null || a.postmaster || a.local[0] == '\0' ||
	    a.kind == ADDR_DOMAIN_NONE)
		abort();
	check_round_trip(&a, flags);
}

static void
check_domain(const char *s, size_t size, unsigned flags)
{
	char out[ADDR_DOMAIN_MAX + 1], again[ADDR_DOMAIN_MAX + 1];
	enum addr_domain_kind k, k2;
	size_t n;

	if (addr_parse_domain(s, size, flags, out, sizeof(out), &k) != ADDR_OK)
		return;
	n = strlen(out);
	if (n != size || k == ADDR_DOMAIN_NONE)
		abort();
	if (addr_parse_domain(out, n, flags, again, sizeof(again), &k2) !=
		ADDR_OK ||
	    k2 != k || strcmp(out, again) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;

	check_path(s, size);
	check_mailbox(s, size, 0);
	check_mailbox(s, size, ADDR_F_UTF8);
	check_domain(s, size, 0);
	check_domain(s, size, ADDR_F_UTF8);
	return 0;
}
