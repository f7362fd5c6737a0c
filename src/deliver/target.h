/*
 * target: where relay.smarthost and delivery.lmtp point, parsed.  Pure:
 * no I/O, no DNS; a name is only checked for the characters a host name
 * may hold, an address literal is recognised as one.
 *
 * query gets what dns_resolve_mx() takes: the name, "[1.2.3.4]" or
 * "[IPv6:2001:db8::1]".  *port is changed only when the text gives one.
 */
#ifndef TERN_TARGET_H
#define TERN_TARGET_H

#include <stddef.h>
#include <stdint.h>

/*
 * "host", "host:port", "[addr]:port", "[name]", bare IPv6.  host_out gets
 * the host alone (no brackets, no "IPv6:"), for certificate checks.
 * 0, or -1 when s does not parse or does not fit.
 */
int target_smarthost_parse(const char *s, char *query, size_t qlen,
    uint16_t *port, char *host_out, size_t hostlen);

/*
 * An LMTP target: "unix:/absolute/path" (*path gets a copy, to free) or
 * what target_smarthost_parse() takes (query and *port).  0, or -1.
 */
int target_lmtp_parse(
    const char *s, char *query, size_t qlen, uint16_t *port, char **path);

#endif
