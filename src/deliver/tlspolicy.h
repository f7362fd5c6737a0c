/*
 * tlspolicy: which TLS an outbound MX session must have, chosen in one
 * place for every host of every destination: a [tls_policy] override
 * for the domain first, then DANE (RFC 7672), then MTA-STS (RFC 8461,
 * the verdict deliver/mtasts.h fetched), then opportunistic STARTTLS.  Pure
 * decision code over plain data (the DNS result and the parsed overrides): no
 * I/O, no OpenSSL, unit tested (tests/unit/test_tlspolicy.c).
 *
 * Owns: struct tlspol_map (the parsed [tls_policy] section) and struct
 * tlspol (one decision).  May call: dns.h's types, util.  Asked by
 * remote.c before each host is tried; the smarthost and LMTP never get
 * here (relay.smarthost_tls is their policy).
 *
 * Levels (docs/tls-auth.md, "Per-destination TLS policy"), Postfix's
 * smtp_tls_policy_maps names:
 *   none       no STARTTLS, even when offered;
 *   may        STARTTLS when offered, any certificate, plaintext when it
 *              fails (what tern does without DNSSEC);
 *   encrypt    STARTTLS required, any certificate;
 *   verify     STARTTLS required, the certificate must chain to a trusted
 *              CA and name the MX host;
 *   dane       DANE where the host has usable secure TLSA records (as with
 *              no override), else may;
 *   dane-only  DANE required: a host without usable secure TLSA records
 *              gets no mail (deferred, 4.7.5).
 */
#ifndef TERN_TLSPOLICY_H
#define TERN_TLSPOLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "deliver/dns.h"
#include "sts/sts.h"

enum tlspol_level {
	TLSPOL_NONE,
	TLSPOL_MAY,
	TLSPOL_ENCRYPT,
	TLSPOL_VERIFY,
	TLSPOL_DANE,
	TLSPOL_DANE_ONLY,
};

/* Where a decision came from: the log's tls_policy= */
enum tlspol_source {
	TLSPOL_SRC_OPPORTUNISTIC,
	TLSPOL_SRC_DANE,
	TLSPOL_SRC_MTA_STS,
	TLSPOL_SRC_OVERRIDE,
};

struct tlspol {
	enum tlspol_source source;
	enum tlspol_level level; /* the override's level, or what applies */
	bool starttls;		 /* ask for STARTTLS when offered */
	bool require_tls;	 /* no plaintext: no STARTTLS or a failed
				  * handshake defers (4.7.x) */
	bool dane;		 /* authenticate by the host's TLSA records */
	bool verify_ca;		 /* authenticate by a trusted CA and name */
	bool defer;		 /* this host gets no mail now */
	const char *why;	 /* defer: one line for the log and DSN */
	const char *tlsrpt;	 /* defer: RFC 8460 result type */
};

struct tlspol_map;

/*
 * Parse the [tls_policy] section as conf keeps it: "domain:level,..."
 * (conf checked it), a domain with a leading dot standing for its
 * subdomains.  NULL or "" is an empty map.  Returns NULL on a bad entry
 * (not reached after conf).  tlspol_map_free(NULL) is a no-op.
 */
struct tlspol_map *tlspol_map_parse(const char *spec);
void tlspol_map_free(struct tlspol_map *m);
/* Does any entry ask for DANE (dane, dane-only)?  Needs dns.dnssec. */
bool tlspol_map_wants_dane(const struct tlspol_map *m);

/* The level named s[0..n) ("dane-only"...); -1 if it is none. */
int tlspol_level_parse(const char *s, size_t n, enum tlspol_level *out);
const char *tlspol_level_name(enum tlspol_level l);
const char *tlspol_source_name(enum tlspol_source s);

/*
 * The policy for host hosts[host] of res, a domain's MX resolution
 * (domain lower case), with overrides m (may be NULL).  dnssec says
 * whether the resolver validates (dns.dnssec).  sts: the domain's MTA-STS
 * policy (mode testing or enforce), or NULL.
 */
void tlspol_choose(const struct tlspol_map *m, const char *domain,
    const struct dns_result *res, size_t host, bool dnssec,
    const struct sts_policy *sts, struct tlspol *out);

#endif
