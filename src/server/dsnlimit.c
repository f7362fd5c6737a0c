/*
 * dsnlimit: the DSN rate limits (dsnlimit.h), two ratelimit tables keyed
 * by the client's address and by the report's destination domain.
 *
 * Keys: dsn_limit_key is the one place that turns an address or a domain
 * into a table key: IPv4 whole, IPv6 by its /64 (one host owns 2^64 of
 * them), a domain lower-cased; then SipHash-2-4 under a random key made at
 * start, so no client can aim its keys at a chosen slot or at another's.
 * It is the function to swap for the shared client-key helper of src/util
 * when there is one (it does the same /64 + SipHash).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>
#include <sys/random.h>

#include "../queue/ratelimit.h"
#include "dsnlimit.h"
#include "server.h"

#define DSN_LIMIT_SLOTS	    8192
#define DSN_LIMIT_WINDOW_MS (3600u * 1000u) /* the limits are per hour */
#define DSN_KEY_MAX	    256

struct dsn_limit {
	struct rate_table *client, *domain;
	uint64_t sipkey[2];
};

/* ---- SipHash-2-4 (Aumasson, Bernstein 2012) ----------------------------- */

static uint64_t
dl_rotl(uint64_t x, unsigned b)
{
	return (x << b) | (x >> (64 - b));
}

static void
dl_round(uint64_t v[4])
{
	v[0] += v[1];
	v[1] = dl_rotl(v[1], 13) ^ v[0];
	v[0] = dl_rotl(v[0], 32);
	v[2] += v[3];
	v[3] = dl_rotl(v[3], 16) ^ v[2];
	v[0] += v[3];
	v[3] = dl_rotl(v[3], 21) ^ v[0];
	v[2] += v[1];
	v[1] = dl_rotl(v[1], 17) ^ v[2];
	v[2] = dl_rotl(v[2], 32);
}

static void
dl_absorb(uint64_t v[4], uint64_t m)
{
	v[3] ^= m;
	dl_round(v);
	dl_round(v);
	v[0] ^= m;
}

static uint64_t
dl_siphash(const uint64_t k[2], const uint8_t *p, size_t n)
{
	uint64_t v[4] = {k[0] ^ 0x736f6d6570736575ull,
	    k[1] ^ 0x646f72616e646f6dull, k[0] ^ 0x6c7967656e657261ull,
	    k[1] ^ 0x7465646279746573ull};
	uint64_t last = (uint64_t)n << 56;
	size_t i, full = n - n % 8;

	for (i = 0; i < full; i += 8) {
		uint64_t m = 0;

		for (size_t j = 8; j-- > 0;)
			m = (m << 8) | p[i + j];
		dl_absorb(v, m);
	}
	for (i = full; i < n; i++)
		last |= (uint64_t)p[i] << (8 * (i - full));
	dl_absorb(v, last);
	v[2] ^= 0xff;
	for (i = 0; i < 4; i++)
		dl_round(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/* ---- keys ------------------------------------------------------------- */

/*
 * The table key of a client address (is_ip) or a domain.  The first byte
 * says which, so an address and a domain never share a key by accident.
 */
static uint64_t
dsn_limit_key(const struct dsn_limit *dl, bool is_ip, const char *s)
{
	uint8_t b[DSN_KEY_MAX + 1];
	size_t n = 1, i;
	struct in6_addr a6;
	struct in_addr a4;

	b[0] = is_ip ? 'i' : 'd';
	if (is_ip && inet_pton(AF_INET, s, &a4) == 1) {
		memcpy(b + 1, &a4, 4);
		n += 4;
	} else if (is_ip && inet_pton(AF_INET6, s, &a6) == 1 &&
		   IN6_IS_ADDR_V4MAPPED(&a6)) {
		memcpy(b + 1, a6.s6_addr + 12, 4); /* the IPv4 client it is */
		n += 4;
	} else if (is_ip && inet_pton(AF_INET6, s, &a6) == 1) {
		memcpy(b + 1, &a6, 8); /* the /64 */
		n += 8;
	} else {
		for (i = 0; s[i] != '\0' && n < sizeof(b); i++)
			b[n++] = (uint8_t)tolower((unsigned char)s[i]);
	}
	return dl_siphash(dl->sipkey, b, n);
}

/* ---- the limiter ------------------------------------------------------- */

struct dsn_limit *
dsn_limit_new(const struct conf *cf)
{
	struct dsn_limit *dl = xcalloc(1, sizeof(*dl));

	if (getrandom(dl->sipkey, sizeof(dl->sipkey), 0) !=
	    (ssize_t)sizeof(dl->sipkey))
		fatal("event=startup step=dsn_limit_key");
	dl->client = rate_table_new(
	    DSN_LIMIT_SLOTS, cf->dsn_per_client, DSN_LIMIT_WINDOW_MS);
	dl->domain = rate_table_new(
	    DSN_LIMIT_SLOTS, cf->dsn_per_domain, DSN_LIMIT_WINDOW_MS);
	if (dl->client == NULL || dl->domain == NULL)
		panic("event=oom where=dsn_limit");
	return dl;
}

void
dsn_limit_free(struct dsn_limit *dl)
{
	if (dl == NULL)
		return;
	rate_table_free(dl->client);
	rate_table_free(dl->domain);
	free(dl);
}

bool
dsn_limit_allow(struct dsn_limit *dl, const char *client_ip, const char *sender,
    uint64_t now_ms, const char **which_out)
{
	const char *at = strrchr(sender, '@');
	uint64_t kc = dsn_limit_key(dl, true, client_ip);
	uint64_t kd = dsn_limit_key(dl, false, at != NULL ? at + 1 : sender);

	if (!rate_check(dl->client, kc, now_ms)) {
		*which_out = "client";
		return false;
	}
	if (!rate_check(dl->domain, kd, now_ms)) {
		*which_out = "domain";
		return false;
	}
	rate_take(dl->client, kc, now_ms);
	rate_take(dl->domain, kd, now_ms);
	return true;
}
