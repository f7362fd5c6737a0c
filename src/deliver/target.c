/*
 * target: the parsers of relay.smarthost and delivery.lmtp (target.h).
 * Pure: the text in, the DNS query, host and port out, nothing looked up.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include <arpa/inet.h>

#include "util/util.h"
#include "deliver/dns.h"
#include "deliver/target.h"

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

/* host[0..n) into t->query, and into t->host (NUL-terminated) too. */
static int
target_host(const char *h, size_t n, struct target *t)
{
	if (str_copy(t->host, sizeof(t->host), h, n) != 0)
		return -1;
	return smarthost_query(h, n, t->query, sizeof(t->query));
}

/* "host", "host:port", "[addr]:port", "[name]", bare IPv6. */
static int
target_host_port(const char *s, struct target *t)
{
	const char *end, *colon;

	if (s[0] == '[') {
		if ((end = strchr(s, ']')) == NULL ||
		    (end[1] != '\0' &&
			(end[1] != ':' || port_parse(end + 2, &t->port))))
			return -1;
		if (strncmp(s + 1, "IPv6:", 5) == 0)
			return target_host(s + 6, (size_t)(end - s - 6), t);
		return target_host(s + 1, (size_t)(end - s - 1), t);
	}
	colon = strchr(s, ':');
	if (colon == NULL || strchr(colon + 1, ':') != NULL)
		return target_host(s, strlen(s), t);
	if (port_parse(colon + 1, &t->port) != 0)
		return -1;
	return target_host(s, (size_t)(colon - s), t);
}

int
target_smarthost_parse(const char *s, uint16_t port, struct target *t)
{
	memset(t, 0, sizeof(*t));
	t->port = port;
	if (strncasecmp(s, "smtps:", 6) == 0) {
		/* RFC 8314 3.3: submissions, TLS from the first byte */
		t->implicit_tls = true;
		t->port = TARGET_SMTPS_PORT;
		s += 6;
	}
	return target_host_port(s, t);
}

int
target_lmtp_parse(const char *s, struct target *t)
{
	_Static_assert(
	    sizeof(t->unix_path) == sizeof(((struct sockaddr_un *)0)->sun_path),
	    "TARGET_PATH_MAX is the size of sun_path");

	memset(t, 0, sizeof(*t));
	t->port = TARGET_LMTP_PORT;
	if (strncmp(s, "unix:", 5) == 0) {
		if (s[5] != '/')
			return -1;
		return str_copy(
		    t->unix_path, sizeof(t->unix_path), s + 5, strlen(s + 5));
	}
	return target_host_port(s, t);
}
