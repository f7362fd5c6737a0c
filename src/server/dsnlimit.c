/*
 * dsnlimit: the DSN rate limits (dsnlimit.h), two rate tables keyed
 * by the client's address and by the report's destination domain.
 *
 * Keys: a client address is the shared client key (util/clientkey.h:
 * IPv4 whole, IPv6 by its /64, one host owns 2^64 of them) under the
 * process's SipHash key; a domain is lower-cased and hashed under this
 * limiter's own random key, so no client can aim its keys at a chosen slot
 * or at another's.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>
#include <sys/random.h>

#include "rate/rate.h"
#include "util/clientkey.h"
#include "server/dsnlimit.h"
#include "server/server.h"

#define DSN_LIMIT_SLOTS	    8192
#define DSN_LIMIT_WINDOW_MS (3600u * 1000u) /* the limits are per hour */
#define DSN_KEY_MAX	    256

struct dsn_limit {
	struct rate_table *client, *domain;
	uint8_t sipkey[16];
};

/* ---- keys ------------------------------------------------------------- */

/*
 * The table key of a client address: the shared client key (IPv4 whole,
 * IPv6 by its /64), hashed under the process key.
 */
static uint64_t
dsn_limit_client_key(const char *ip)
{
	struct client_key k;
	struct in6_addr a6;
	struct in_addr a4;

	if (inet_pton(AF_INET, ip, &a4) == 1)
		client_key_ip(&k, &a4, sizeof(a4));
	else if (inet_pton(AF_INET6, ip, &a6) == 1)
		client_key_ip(&k, &a6, sizeof(a6));
	else
		client_key_ip(&k, "?", 1); /* unknown: one shared bucket */
	return client_key_hash(&k);
}

/* A destination domain, lower-cased, under the limiter's own key. */
static uint64_t
dsn_limit_domain_key(const struct dsn_limit *dl, const char *domain)
{
	uint8_t b[DSN_KEY_MAX];
	size_t n;

	for (n = 0; n < sizeof(b) && domain[n] != '\0'; n++)
		b[n] = (uint8_t)tolower((unsigned char)domain[n]);
	return siphash24(dl->sipkey, b, n);
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

void
dsn_limit_reload(struct dsn_limit *dl, const struct conf *cf, uint64_t now_ms)
{
	rate_table_set_limit(dl->client, cf->dsn_per_client, now_ms);
	rate_table_set_limit(dl->domain, cf->dsn_per_domain, now_ms);
}

bool
dsn_limit_allow(struct dsn_limit *dl, const char *client_ip, const char *sender,
    uint64_t now_ms, const char **which_out)
{
	const char *at = strrchr(sender, '@');
	uint64_t kc = dsn_limit_client_key(client_ip);
	uint64_t kd = dsn_limit_domain_key(dl, at != NULL ? at + 1 : sender);

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
