/*
 * dns: asynchronous MX resolution for outbound delivery (RFC 5321 5.1,
 * RFC 7505 null MX) and single lookups for SPF (dns_lookup) on c-ares,
 * driven by the caller's libevent loop.
 *
 * Owns: struct dns (one c-ares channel on the caller's loop) and the MX
 * and address lookups.  May call: util, c-ares, libevent.  Made by ternd
 * at start (server/main.c: struct server's dns), asked by deliver/remote.c
 * and, for the mail authentication checks and the DMARC reports, by
 * server/spfcheck.c, authcheck.c and dmarcrep.c.
 *
 * One struct dns per event loop.  dns_resolve_mx() looks up the MX
 * records of a domain, then the A and AAAA records of each MX host, and
 * hands the callback one struct dns_result: the hosts sorted by
 * preference (random order among equal preferences), each with its
 * addresses.  The callback always runs later, from the loop, never inside
 * dns_resolve_mx().  Everything runs on the loop's thread.
 *
 * Outcomes, and what delivery does with them (docs/dns.md):
 *   DNS_OK    hosts[0..nhosts) are usable, in the order to try them.
 *   DNS_PERM  the domain cannot receive mail (NXDOMAIN, null MX, no MX and
 *             no address, a malformed domain): bounce at once.
 *   DNS_TEMP  the answer is not known now (SERVFAIL, timeout, REFUSED,
 *             network error): keep the message and retry later.
 */
#ifndef TERN_DNS_H
#define TERN_DNS_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "util/tlsa.h"

struct event_base;
struct dns;

#define DNS_MAX_HOSTS  10    /* MX hosts kept, lowest preferences first */
#define DNS_MAX_ADDRS  10    /* addresses kept per host */
#define DNS_NAME_MAX   253   /* a domain in text, without the final dot */
#define DNS_TEXT_MAX   320   /* dns_result.text, with its NUL */
#define DNS_TIMEOUT_MS 10000 /* default whole-request deadline */

enum dns_status { DNS_OK, DNS_PERM, DNS_TEMP };

/* Why: the detail behind the status, for logs and DSN status codes. */
enum dns_reason {
	DNS_REASON_NONE,       /* DNS_OK */
	DNS_REASON_NXDOMAIN,   /* PERM: the domain does not exist */
	DNS_REASON_NULL_MX,    /* PERM: "MX 0 ." (RFC 7505), accepts no mail */
	DNS_REASON_NO_ADDRESS, /* PERM: no MX and no A/AAAA, or no MX host
				* with an address */
	DNS_REASON_BAD_NAME,   /* PERM: malformed domain or address literal */
	DNS_REASON_SERVFAIL,   /* TEMP: the resolver said SERVFAIL */
	DNS_REASON_REFUSED,    /* TEMP: the resolver said REFUSED */
	DNS_REASON_TIMEOUT,    /* TEMP: no answer within the deadline */
	DNS_REASON_NETWORK,    /* TEMP: resolver unreachable (e.g. ICMP);
				* c-ares 1.18 also reports every server
				* answering SERVFAIL or REFUSED this way */
	DNS_REASON_RESOLVER,   /* TEMP: other resolver trouble (FORMERR, ...) */
};

struct dns_addr {
	int family; /* AF_INET or AF_INET6 */
	union {
		struct in_addr v4;
		struct in6_addr v6;
	} u;
};

/*
 * What the TLSA lookup of an MX host (RFC 7672 2.2) found.  Asked only
 * under dns_set_dnssec() and dns_resolve_mx_dane(), and only when the MX
 * answer was secure; NOT_ASKED otherwise.  A host whose own address
 * answers were not secure gets INSECURE whatever the TLSA answer said
 * (RFC 7672 2.2.2: DANE needs the whole chain validated).
 */
enum dns_tlsa {
	DNS_TLSA_NOT_ASKED, /* no DNSSEC, insecure MX, literal, smarthost */
	DNS_TLSA_INSECURE,  /* answer (or the host's addresses) without AD */
	DNS_TLSA_NONE,	    /* secure denial: no TLSA records (NXDOMAIN,
			     * NODATA): no DANE for this host */
	DNS_TLSA_SECURE,    /* validated records in tlsa_set (maybe none
			     * usable: then TLS is mandatory, RFC 7672 2.2) */
	DNS_TLSA_FAILED,    /* SERVFAIL (bogus), timeout, malformed answer:
			     * the host must not get mail now (RFC 7672
			     * 2.2: never fall back to insecure delivery) */
};

struct dns_host {
	char name[DNS_NAME_MAX + 3]; /* as in DNS; "[192.0.2.1]" for literals */
	unsigned preference;	     /* 0 for the implicit MX and literals */
	size_t naddrs;		     /* >= 1 in every result */
	struct dns_addr addrs[DNS_MAX_ADDRS]; /* IPv6 and IPv4 interleaved,
					       * IPv6 first */
	bool secure;		  /* the address answers used were validated
				   * (dns_set_dnssec(), AD bit) */
	enum dns_tlsa tlsa;	  /* dns_resolve_mx_dane() only */
	struct tlsa_set tlsa_set; /* DNS_TLSA_SECURE: the records */
};

/*
 * Plain data (no pointers): valid during the callback only, and a caller
 * that needs it longer copies the struct.
 */
struct dns_result {
	enum dns_status status;
	enum dns_reason reason;
	bool implicit_mx;	 /* no MX: hosts[0] is the domain itself */
	bool secure;		 /* the MX answer (or its secure denial,
				  * for the implicit MX) was validated */
	char text[DNS_TEXT_MAX]; /* one line for logs and DSNs, e.g.
				  * "null MX (RFC 7505): example.net
				  * accepts no mail" */
	size_t nhosts;		 /* > 0 exactly when status is DNS_OK */
	struct dns_host hosts[DNS_MAX_HOSTS];
};

typedef void (*dns_mx_cb)(const struct dns_result *res, void *arg);

/*
 * A resolver on base.  servers is NULL for the system resolver
 * (/etc/resolv.conf), or the config key dns.servers: "ip[:port],..." with
 * IPv6 as "[v6]:port" (spaces ignored).  Returns NULL with err filled on a
 * bad server list or a c-ares failure.  dns_free() before base is freed.
 */
struct dns *dns_new(
    struct event_base *base, const char *servers, char *err, size_t errlen);

/*
 * Free the resolver; requests still outstanding are dropped and their
 * callbacks never run.  dns_free(NULL) is a no-op.  May be called from
 * inside a callback (the free happens once the callback returns).
 */
void dns_free(struct dns *dns);

/*
 * Deadline of a whole request (MX, then addresses), default
 * DNS_TIMEOUT_MS.  Each query gets about a quarter of it per try, so a
 * dead server is tried several times and gives DNS_TEMP by the deadline.
 * Returns 0, or -1 when queries are in flight (set it before resolving).
 */
int dns_set_timeout(struct dns *dns, unsigned timeout_ms)
    __attribute__((warn_unused_result));

/*
 * Keep dns_lookup() answers (records, NODATA, NXDOMAIN; never a temporary
 * failure) for their TTL, at most max_ttl seconds, negative answers for
 * the SOA's negative TTL (RFC 2308), in a cache of at most max_entries
 * answers and max_bytes octets, least recently used out first.  max_ttl 0
 * (the default) disables the cache and empties it.  A cached answer is
 * still handed over later, from the loop, like any other.  MX resolution
 * (dns_resolve_mx) does not use the cache.
 */
#define DNS_CACHE_ENTRIES 4096
#define DNS_CACHE_BYTES	  (4u << 20)
void dns_set_cache(
    struct dns *dns, unsigned max_ttl, size_t max_entries, size_t max_bytes);
/* The cache's counters (util/dnscache.h); all 0 without a cache. */
struct dnscache_stats;
void dns_cache_stats(const struct dns *dns, struct dnscache_stats *out);

/*
 * DNSSEC (dns.dnssec): every query asks the resolver for validation (the
 * AD bit set in the query, RFC 6840 5.7) and every answer's AD bit is
 * read from the raw reply: struct dns_result's and dns_host's secure,
 * dns_answer's secure.  The AD bit is only as good as the path to the
 * resolver, so on is refused (-1, err filled) unless dns.servers names
 * only loopback addresses: a local validating resolver such as unbound.
 * Set it before resolving.
 */
int dns_set_dnssec(struct dns *dns, bool on, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Resolve where mail for domain goes.  domain is an ASCII domain (IDNs as
 * A-labels) with or without the final dot, or an address literal
 * "[192.0.2.1]" / "[IPv6:2001:db8::1]" (RFC 5321 4.1.3), which bypasses
 * DNS.  cb(res, arg) runs exactly once, later, from the loop, unless the
 * request is cancelled or the resolver freed first.
 */
void dns_resolve_mx(
    struct dns *dns, const char *domain, dns_mx_cb cb, void *arg);

/*
 * The same, and for DANE (RFC 7672 2.2): with DNSSEC on and a secure MX
 * answer, each MX host's TLSA records at _port._tcp.host are asked with
 * its addresses and handed over in dns_host.tlsa and tlsa_set.  port 0
 * is dns_resolve_mx().
 */
void dns_resolve_mx_dane(struct dns *dns, const char *domain, unsigned port,
    dns_mx_cb cb, void *arg);

/*
 * Cancel every outstanding request whose arg is arg (its owner is going
 * away): their callbacks will not run.  Safe from inside a callback.
 * Returns the number cancelled.
 */
size_t dns_cancel(struct dns *dns, void *arg);

/*
 * One lookup of one type, for the SPF evaluator (RFC 7208 4.6.4, 5): TXT,
 * A, AAAA, MX or PTR records of a name, on the same channel, with the same
 * per-request deadline (dns_set_timeout) as MX resolution.
 */
enum dns_qtype { DNS_Q_TXT, DNS_Q_A, DNS_Q_AAAA, DNS_Q_MX, DNS_Q_PTR };

/* What the answer is: records (maybe none: NODATA), no such name, or not
 * known now (SERVFAIL, REFUSED, timeout, an answer too large to keep). */
enum dns_rcode { DNS_ANS_OK, DNS_ANS_NXDOMAIN, DNS_ANS_TEMP };

/* records (TXT: strings) of one answer, and their octets together (the
 * largest DNS message, a TCP answer) */
#define DNS_ANSWER_RRS	512
#define DNS_ANSWER_DATA 65536

struct dns_rr {
	/* TXT: one character-string; A: 4 octets; AAAA: 16; MX: the
	 * exchange name; PTR: the name (names without the final dot) */
	const void *data;
	size_t len;
	/* TXT: this string continues the record of the previous one
	   (c-ares' ares_txt_ext.record_start == 0) */
	bool txt_continue;
};

/* Valid during the callback only. */
struct dns_answer {
	enum dns_rcode rcode;
	enum dns_reason reason; /* DNS_REASON_NONE for OK, NXDOMAIN, ... */
	size_t n;
	const struct dns_rr *rrs;
	bool secure; /* validated (dns_set_dnssec(), AD bit; never from
			the cache) */
};

typedef void (*dns_answer_cb)(const struct dns_answer *ans, void *arg);

/*
 * Look up name (ASCII, with or without the final dot) of type.  NODATA is
 * DNS_ANS_OK with n == 0; a name the resolver cannot ask (over 253
 * octets, a label over 63, spaces, control bytes, backslash) is
 * DNS_ANS_NXDOMAIN with DNS_REASON_BAD_NAME.  MX and PTR answers keep at
 * most DNS_ANSWER_RRS names and A/AAAA as many addresses (the rest are
 * dropped); a TXT answer larger than DNS_ANSWER_RRS strings or
 * DNS_ANSWER_DATA octets is DNS_ANS_TEMP, never a record cut short.
 * cb(ans, arg) runs exactly once, later, from the loop, unless cancelled
 * (dns_cancel(dns, arg)) or the resolver is freed first.
 */
void dns_lookup(struct dns *dns, enum dns_qtype type, const char *name,
    dns_answer_cb cb, void *arg);

/* "ok", "perm", "temp"; and "nxdomain", "null_mx", ... for logs. */
const char *dns_status_name(enum dns_status s);
const char *dns_reason_name(enum dns_reason r);

/* The address as text ("192.0.2.1", "2001:db8::1"); 0, or -1 if it does
 * not fit outlen (INET6_ADDRSTRLEN always fits). */
int dns_addr_format(const struct dns_addr *a, char *out, size_t outlen)
    __attribute__((warn_unused_result));

/* A sockaddr_in or sockaddr_in6 for connect(): a with port (host order). */
void dns_addr_sockaddr(const struct dns_addr *a, uint16_t port,
    struct sockaddr_storage *out, socklen_t *len_out);
/* The other way: ss's address and (host order) port; false if ss is
 * neither AF_INET nor AF_INET6. */
bool dns_addr_from_sockaddr(
    const struct sockaddr_storage *ss, struct dns_addr *a, uint16_t *port);
/* Same family and address. */
bool dns_addr_eq(const struct dns_addr *a, const struct dns_addr *b);

#endif
