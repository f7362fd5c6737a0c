/*
 * netlist: client networks in CIDR form, for relay.networks.  Matching is
 * a linear scan: the list is short and read once per RCPT.  An IPv4
 * client that reaches an IPv6 socket as ::ffff:a.b.c.d is matched against
 * the IPv4 entries.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"
#include "server/netlist.h"

/* The address bytes of sa (4 or 16), for the per-IP tables. */
size_t
sockaddr_ip_bytes(const struct sockaddr *sa, const unsigned char **p_out)
{
	if (sa->sa_family == AF_INET6) {
		*p_out = ((const struct sockaddr_in6 *)(const void *)sa)
			     ->sin6_addr.s6_addr;
		return 16;
	}
	*p_out = (const unsigned char *)&(
	    (const struct sockaddr_in *)(const void *)sa)
		     ->sin_addr;
	return 4;
}

struct net {
	int family;
	unsigned char addr[16];
	unsigned prefix;
};

struct netlist {
	struct net *v;
	size_t n;
};

static int
net_parse(const char *s, size_t len, struct net *out)
{
	char tmp[64];
	char *slash;
	unsigned long pfx;
	unsigned max;

	if (str_copy(tmp, sizeof(tmp), s, len) != 0)
		return -1;
	if ((slash = strchr(tmp, '/')) != NULL)
		*slash++ = '\0';
	if (inet_pton(AF_INET, tmp, out->addr) == 1)
		out->family = AF_INET;
	else if (inet_pton(AF_INET6, tmp, out->addr) == 1)
		out->family = AF_INET6;
	else
		return -1;
	max = out->family == AF_INET ? 32 : 128;
	out->prefix = max;
	if (slash != NULL) {
		char *end;

		pfx = strtoul(slash, &end, 10);
		if (*slash == '\0' || *end != '\0' || pfx > max)
			return -1;
		out->prefix = (unsigned)pfx;
	}
	return 0;
}

struct netlist *
netlist_parse(const char *csv, char *err, size_t errlen)
{
	struct netlist *nl = xcalloc(1, sizeof(*nl));
	const char *p = csv ? csv : "";

	while (*p != '\0') {
		size_t len;

		p += strspn(p, ", \t");
		len = strcspn(p, ", \t");
		if (len == 0)
			break;
		nl->v = realloc(nl->v, (nl->n + 1) * sizeof(*nl->v));
		if (nl->v == NULL)
			panic("event=oom where=netlist");
		if (net_parse(p, len, &nl->v[nl->n]) != 0) {
			str_fmt_cut(err, errlen,
			    "relay.networks: bad network \"%.*s\"", (int)len,
			    p);
			netlist_free(nl);
			return NULL;
		}
		nl->n++;
		p += len;
	}
	return nl;
}

static bool
prefix_eq(const unsigned char *a, const unsigned char *b, unsigned bits)
{
	unsigned full = bits / 8, rest = bits % 8;

	if (memcmp(a, b, full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a[full] ^ b[full]) & (0xff << (8 - rest))) == 0;
}

/* The client's family and address, with v4-mapped v6 seen as v4. */
static int
client_addr(const struct sockaddr *sa, const unsigned char **p_out)
{
	size_t n = sockaddr_ip_bytes(sa, p_out);
	static const unsigned char mapped[12] = {
	    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (n == 16 && memcmp(*p_out, mapped, 12) == 0) {
		*p_out += 12;
		return AF_INET;
	}
	return n == 16 ? AF_INET6 : AF_INET;
}

bool
netlist_match(const struct netlist *nl, const struct sockaddr *sa)
{
	const unsigned char *p;
	int fam;
	size_t i;

	if (nl == NULL)
		return false;
	fam = client_addr(sa, &p);
	for (i = 0; i < nl->n; i++)
		if (nl->v[i].family == fam &&
		    prefix_eq(nl->v[i].addr, p, nl->v[i].prefix))
			return true;
	return false;
}

bool
sockaddr_is_loopback(const struct sockaddr *sa)
{
	const unsigned char *p;
	int fam = client_addr(sa, &p);
	static const unsigned char v6lo[16] = {[15] = 1};

	if (fam == AF_INET)
		return p[0] == 127;
	return memcmp(p, v6lo, 16) == 0;
}

void
netlist_free(struct netlist *nl)
{
	if (nl == NULL)
		return;
	free(nl->v);
	free(nl);
}
