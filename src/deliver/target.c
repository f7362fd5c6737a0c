/*
 * target: the parsers of relay.smarthost and delivery.lmtp (target.h).
 * Pure: the text in, the DNS query, host and port out, nothing looked up.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include <arpa/inet.h>

#include "../util/util.h"
#include "dns.h"
#include "target.h"

static bool
host_name_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > DNS_NAME_MAX)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (!(ch == '.' || ch == '-' || ch == '_' ||
			(ch >= '0' && ch <= '9') ||
			((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z')))
			return false;
	}
	return true;
}

/* host (an address or a name) into what dns_resolve_mx() takes. */
static int
smarthost_query(const char *h, size_t n, char *out, size_t outlen)
{
	char tmp[DNS_NAME_MAX + 1];
	unsigned char a[16];

	if (str_copy(tmp, sizeof(tmp), h, n) != 0)
		return -1;
	if (inet_pton(AF_INET, tmp, a) == 1)
		return str_fmt(out, outlen, "[%s]", tmp);
	if (inet_pton(AF_INET6, tmp, a) == 1)
		return str_fmt(out, outlen, "[IPv6:%s]", tmp);
	if (!host_name_ok(tmp, n))
		return -1;
	return str_fmt(out, outlen, "%s", tmp);
}

static int
port_parse(const char *s, uint16_t *port)
{
	uint64_t v;

	if (str_to_u64(s, strlen(s), &v) != 0 || v == 0 || v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/* host[0..n) into query, and into host_out (NUL-terminated) too. */
static int
smarthost_host(const char *h, size_t n, char *query, size_t qlen,
    char *host_out, size_t hostlen)
{
	if (str_copy(host_out, hostlen, h, n) != 0)
		return -1;
	return smarthost_query(h, n, query, qlen);
}

/*
 * "host", "host:port", "[addr]:port", "[name]", bare IPv6.  host_out gets
 * the host alone (no brackets, no "IPv6:"), for certificate checks.
 */
int
target_smarthost_parse(const char *s, char *query, size_t qlen,
    uint16_t *port, char *host_out, size_t hostlen)
{
	const char *end, *colon;

	if (s[0] == '[') {
		if ((end = strchr(s, ']')) == NULL ||
		    (end[1] != '\0' &&
			(end[1] != ':' || port_parse(end + 2, port))))
			return -1;
		if (strncmp(s + 1, "IPv6:", 5) == 0)
			return smarthost_host(s + 6, (size_t)(end - s - 6),
			    query, qlen, host_out, hostlen);
		return smarthost_host(s + 1, (size_t)(end - s - 1), query, qlen,
		    host_out, hostlen);
	}
	colon = strchr(s, ':');
	if (colon == NULL || strchr(colon + 1, ':') != NULL)
		return smarthost_host(
		    s, strlen(s), query, qlen, host_out, hostlen);
	if (port_parse(colon + 1, port) != 0)
		return -1;
	return smarthost_host(
	    s, (size_t)(colon - s), query, qlen, host_out, hostlen);
}

/*
 * An LMTP target: "unix:/absolute/path" (*path gets a copy) or what
 * target_smarthost_parse takes (query and *port; 24 unless given).
 */
int
target_lmtp_parse(
    const char *s, char *query, size_t qlen, uint16_t *port, char **path)
{
	struct sockaddr_un un;
	char host[DNS_NAME_MAX + 1];

	*path = NULL;
	if (strncmp(s, "unix:", 5) == 0) {
		if (s[5] != '/' || strlen(s + 5) >= sizeof(un.sun_path))
			return -1;
		*path = xstrdup(s + 5);
		return 0;
	}
	return target_smarthost_parse(s, query, qlen, port, host, sizeof(host));
}