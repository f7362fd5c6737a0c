/*
 * target: where relay.smarthost and delivery.lmtp point, parsed.  Pure:
 * no I/O, no DNS; a name is only checked for the characters a host name
 * may hold, an address literal is recognised as one.
 *
 * A host is "host", "host:port", "1.2.3.4[:port]", "[1.2.3.4]:port",
 * "[IPv6:2001:db8::1]:port", "[2001:db8::1]:port", "[name]" or a bare
 * IPv6 address (every colon then belongs to the address: no port).
 *
 * Owns: nothing (pure parsing of target strings).  May call: dns (address
 * types), util; called by the delivery engine (remote.c, dest.c) only.
 */
#ifndef TERN_TARGET_H
#define TERN_TARGET_H

#include <stdbool.h>
#include <stdint.h>

#include "deliver/dns.h"

#define TARGET_QUERY_MAX  (DNS_NAME_MAX + 16) /* "[IPv6:...]" and NUL */
#define TARGET_PATH_MAX	  108 /* sun_path: the path and its NUL */
#define TARGET_SMTPS_PORT 465
#define TARGET_LMTP_PORT  24

struct target {
	char query[TARGET_QUERY_MAX]; /* what dns_resolve_mx() takes: the name,
					 "[1.2.3.4]" or "[IPv6:2001:db8::1]" */
	char host[DNS_NAME_MAX + 1];  /* the host alone (no brackets, no
					 "IPv6:"), for certificate checks */
	uint16_t port;
	bool implicit_tls;		 /* "smtps:": TLS from the first byte */
	char unix_path[TARGET_PATH_MAX]; /* LMTP "unix:/path": the path, else
					    "" (query and host are "") */
};

/*
 * relay.smarthost: [smtps:]host.  port is used when the text gives none;
 * with "smtps:" (RFC 8314 implicit TLS, any case) it is 465.  0, or -1
 * when s does not parse or does not fit; t is filled either way.
 */
int target_smarthost_parse(const char *s, uint16_t port, struct target *t);

/*
 * An LMTP target (RFC 2033): "unix:/absolute/path", or a host as above,
 * port 24 when none is given.  0, or -1 as above.
 */
int target_lmtp_parse(const char *s, struct target *t);

#endif
