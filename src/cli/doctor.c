/*
 * tern doctor: check, from the server itself, what mail to and from this
 * host depends on outside tern (docs/doctor.md).
 *
 *   tern doctor [DOMAIN...] [--address IP] [--json]
 *
 * Each check prints one line, "ok|warn|fail CHECK: what — fix", the fix
 * naming the record or setting to change; --json prints the same as an
 * array of {check, status, detail, fix}.  Exit status: 0 all ok, 1 some
 * warning, 2 some failure (64 for a usage error).
 *
 * The checks, in order: the resolver answers; this host's address (from
 * --address, else listen.smtp's address when it is one, else the A/AAAA
 * of hostname); each domain's MX leads to that address; the address's PTR
 * and its forward confirmation; hostname (the HELO name) resolves to the
 * address and is the PTR name; SPF (one v=spf1 record, evaluated by
 * mailauth/spf for the address); the active DKIM keys' records (dkim.c's
 * check, shared with `tern dkim check`); the DMARC record (parsed by
 * mailauth/dmarc); the certificate of the TLS listeners; state_dir's owner,
 * mode and free space; the queue's oldest message (over control.sock);
 * port 25 (listen.smtp's port) on the address answers with a 220.
 * Then, per domain, the records of the TLS policies tern's peers read
 * (docs/tls-auth.md): the "_smtp._tls" TLS-RPT record (parsed by
 * tlsrpt/tlsrpt.h; the one to publish when there is none), and the
 * "_mta-sts" TXT record with the policy file to serve for it: ternd
 * serves nothing over HTTP, so that file is the administrator's web
 * server's, and is printed, not fetched.  Neither record is required:
 * their absence is an ok line with what to publish.
 *
 * DNS goes to dns.servers, else /etc/resolv.conf, with a short deadline
 * per lookup (DR_DNS_TIMEOUT_MS).  Once the resolver has failed to answer,
 * the later DNS checks say so on their own line at once instead of
 * waiting for it again, so a dead resolver costs one deadline, not one
 * per check.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "cli/cli.h"
#include "cli/resolve.h"
#include "mailauth/dmarc.h"
#include "mailauth/spf.h"
#include "tls/tls.h"
#include "tlsrpt/tlsrpt.h"

#define DR_DNS_TIMEOUT_MS  4000 /* one lookup, all its tries */
#define DR_TCP_TIMEOUT_MS  5000 /* connect to port 25, then the greeting */
#define DR_CERT_WARN_DAYS  14	/* a certificate closer to expiry: warn */
#define DR_DISK_WARN_BYTES (1ull << 30)
#define DR_DISK_WARN_PCT   5
#define DR_DETAIL_MAX	   1024
#define DR_FIX_MAX	   1024
#define DR_ADDRS_MAX	   16 /* addresses shown for a name */
#define DR_MX_MAX	   10 /* MX hosts followed per domain */

enum dr_status { DR_OK = 0, DR_WARN, DR_FAIL };

static const char *const dr_status_names[] = {"ok", "warn", "fail"};

struct dr_item {
	enum dr_status st;
	char check[16];
	char detail[DR_DETAIL_MAX];
	char fix[DR_FIX_MAX];
};

struct dr {
	const struct conf *c;
	struct cli_resolver *res;
	struct cli_dns_answer *ans; /* scratch for one lookup */
	bool json;
	bool dns_dead;	   /* the resolver did not answer once */
	bool answered;	   /* some lookup had an answer */
	char dns_why[256]; /* why, for the later checks */
	char servers[256]; /* "127.0.0.1:53" or "the servers of ..." */
	bool have_addr;
	struct dns_addr addr;
	char addr_text[INET6_ADDRSTRLEN];
	char ptr_name[DNS_NAME_MAX + 1]; /* "" when none */
	struct dr_item *items;
	size_t n, cap;
	enum dr_status worst;
};

/* ---- results ------------------------------------------------------------ */

/*
 * Names, greetings and SPF terms come from the network: anything but
 * printable ASCII becomes '?', so a line cannot move the terminal's
 * cursor and the JSON stays valid UTF-8 (DNS names are A-labels anyway).
 */
static void
dr_printable(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			*s = '?';
}

static void dr_add(struct dr *d, enum dr_status st, const char *check,
    const char *fix, const char *fmt, ...) PRINTF_LIKE(5, 6);

static void
dr_add(struct dr *d, enum dr_status st, const char *check, const char *fix,
    const char *fmt, ...)
{
	struct dr_item *it;
	va_list ap;

	if (d->n == d->cap) {
		struct dr_item *more;

		d->cap = d->cap ? d->cap * 2 : 32;
		more = xcalloc(d->cap, sizeof(*more));
		if (d->n > 0)
			memcpy(more, d->items, d->n * sizeof(*more));
		free(d->items);
		d->items = more;
	}
	it = &d->items[d->n++];
	it->st = st;
	str_fmt_cut(it->check, sizeof(it->check), "%s", check);
	va_start(ap, fmt);
	/* a detail cut short is still a useful line */
	str_vfmt_cut(it->detail, sizeof(it->detail), fmt, ap);
	va_end(ap);
	str_fmt_cut(it->fix, sizeof(it->fix), "%s", fix ? fix : "");
	dr_printable(it->detail);
	dr_printable(it->fix);
	if (st > d->worst)
		d->worst = st;
	if (!d->json) {
		printf("%s %s: %s%s%s\n", dr_status_names[st], it->check,
		    it->detail, it->fix[0] ? " — " : "", it->fix);
		fflush(stdout); /* each line as soon as it is known */
	}
}

static void
dr_json_str(const char *s)
{
	putchar('"');
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

static void
dr_print_json(const struct dr *d)
{
	size_t i;

	putchar('[');
	for (i = 0; i < d->n; i++) {
		const struct dr_item *it = &d->items[i];

		fputs(i ? ",\n {\"check\":" : "{\"check\":", stdout);
		dr_json_str(it->check);
		fputs(",\"status\":", stdout);
		dr_json_str(dr_status_names[it->st]);
		fputs(",\"detail\":", stdout);
		dr_json_str(it->detail);
		fputs(",\"fix\":", stdout);
		dr_json_str(it->fix);
		putchar('}');
	}
	fputs("]\n", stdout);
}

/* ---- DNS ---------------------------------------------------------------- */

/*
 * Look name up into d->ans.  false when there is no answer (the resolver
 * is down or said SERVFAIL): a fail line for check is then written, so
 * the caller just stops.
 */
static bool
dr_lookup(struct dr *d, const char *check, enum dns_qtype t, const char *name)
{
	struct cli_dns_answer *a = d->ans;

	if (d->dns_dead) {
		dr_add(d, DR_FAIL, check,
		    "make the resolver answer, then run tern doctor again",
		    "not checked (%s): no DNS answer from %s", name,
		    d->servers);
		return false;
	}
	cli_resolve(d->res, t, name, a);
	if (a->rcode != DNS_ANS_TEMP) {
		d->answered = true;
		return true;
	}
	/* a timeout is a dead server; so is "network" (c-ares' word for
	 * unreachable, and also for REFUSED/SERVFAIL from every server)
	 * before anything was answered at all */
	if (a->reason == DNS_REASON_TIMEOUT ||
	    (!d->answered && a->reason == DNS_REASON_NETWORK)) {
		d->dns_dead = true;
		str_fmt_cut(d->dns_why, sizeof(d->dns_why), "%s",
		    dns_reason_name(a->reason));
		dr_add(d, DR_FAIL, check,
		    "start the DNS server, or set dns.servers in tern.conf to "
		    "one that answers",
		    "the DNS server %s does not answer (%s, looking up %s)",
		    d->servers, d->dns_why, name);
	} else {
		dr_add(d, DR_FAIL, check,
		    "fix the zone on its authoritative servers (dig shows "
		    "the error), or the resolver in dns.servers",
		    "the lookup of %s failed: %s from %s (refused, failed or "
		    "unreachable)",
		    name, dns_reason_name(a->reason), d->servers);
	}
	return false;
}

/* A and AAAA of name into out[] (at most max); -1 when no answer (a line
 * was written), else the number found. */
static int
dr_addrs(struct dr *d, const char *check, const char *name,
    struct dns_addr *out, size_t max)
{
	static const enum dns_qtype types[2] = {DNS_Q_A, DNS_Q_AAAA};
	size_t n = 0, i;
	int t;

	for (t = 0; t < 2; t++) {
		if (!dr_lookup(d, check, types[t], name))
			return -1;
		for (i = 0; i < d->ans->n && n < max; i++) {
			size_t len = d->ans->len[i];
			const char *p = d->ans->recs + d->ans->off[i];

			if (t == 0 && len == 4) {
				out[n].family = AF_INET;
				memcpy(&out[n++].u.v4, p, 4);
			} else if (t == 1 && len == 16) {
				out[n].family = AF_INET6;
				memcpy(&out[n++].u.v6, p, 16);
			}
		}
	}
	return (int)n;
}

static bool
dr_has_addr(const struct dr *d, const struct dns_addr *a, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (dns_addr_eq(&a[i], &d->addr))
			return true;
	return false;
}

/* "192.0.2.1, 2001:db8::1" or "no address" */
static void
dr_addrs_text(const struct dns_addr *a, int n, char *out, size_t outlen)
{
	char one[INET6_ADDRSTRLEN];
	size_t used = 0;
	int i;

	out[0] = '\0';
	if (n <= 0) {
		str_fmt_cut(out, outlen, "no address");
		return;
	}
	for (i = 0; i < n && used + 1 < outlen; i++) {
		if (dns_addr_format(&a[i], one, sizeof(one)) != 0)
			continue;
		str_fmt_cut(
		    out + used, outlen - used, "%s%s", i ? ", " : "", one);
		used += strlen(out + used);
	}
}

/* The record type for the address: "A" or "AAAA". */
static const char *
dr_rrtype(const struct dr *d)
{
	return d->addr.family == AF_INET6 ? "AAAA" : "A";
}

/* ---- the address -------------------------------------------------------- */

static bool
dr_parse_addr(const char *s, size_t len, struct dns_addr *a)
{
	char tmp[INET6_ADDRSTRLEN + 1];

	if (str_copy(tmp, sizeof(tmp), s, len) != 0)
		return false;
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, tmp, &a->u.v4) == 1) {
		a->family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, tmp, &a->u.v6) == 1) {
		a->family = AF_INET6;
		return true;
	}
	return false;
}

/* listen.smtp "host:port" / "[v6]:port": host into h (may be a name) and
 * the port; false when off or unreadable. */
static bool
dr_listen_split(const char *v, char *h, size_t hlen, unsigned *port)
{
	const char *colon;
	char *end;
	unsigned long p;

	if (v == NULL || *v == '\0')
		return false;
	colon = strrchr(v, ':');
	if (colon == NULL) {
		*port = 25;
		return str_copy(h, hlen, v, strlen(v)) == 0;
	}
	p = strtoul(colon + 1, &end, 10);
	if (*end != '\0' || p == 0 || p > 65535)
		return false;
	*port = (unsigned)p;
	if (v[0] == '[' && colon > v && colon[-1] == ']')
		return str_copy(h, hlen, v + 1, (size_t)(colon - v - 2)) == 0;
	return str_copy(h, hlen, v, (size_t)(colon - v)) == 0;
}

static bool
dr_addr_wildcard(const struct dns_addr *a)
{
	static const struct in6_addr any6 = IN6ADDR_ANY_INIT;

	return a->family == AF_INET ? a->u.v4.s_addr == htonl(INADDR_ANY)
				    : memcmp(&a->u.v6, &any6, 16) == 0;
}

static void
dr_check_address(struct dr *d, const char *given)
{
	struct dns_addr found[DR_ADDRS_MAX];
	const char *from;
	char host[300];
	unsigned port;
	int n;

	if (given != NULL) {
		if (!dr_parse_addr(given, strlen(given), &d->addr))
			panic("event=doctor error=\"address checked twice\"");
		from = "given with --address";
	} else if (dr_listen_split(
		       d->c->listen_smtp, host, sizeof(host), &port) &&
		   dr_parse_addr(host, strlen(host), &d->addr) &&
		   !dr_addr_wildcard(&d->addr)) {
		from = "the address of listen.smtp";
	} else {
		n = dr_addrs(d, "address", d->c->hostname, found, DR_ADDRS_MAX);
		if (n < 0)
			return;
		if (n == 0) {
			dr_add(d, DR_FAIL, "address",
			    "run tern doctor --address IP, or add the A/AAAA "
			    "record of hostname",
			    "this host's address is unknown: listen.smtp "
			    "is not on one address and hostname %s has no "
			    "A or AAAA record",
			    d->c->hostname);
			return;
		}
		d->addr = found[0];
		from = "the A/AAAA record of hostname; give --address to "
		       "check another";
	}
	d->have_addr = true;
	if (dns_addr_format(&d->addr, d->addr_text, sizeof(d->addr_text)) != 0)
		panic("event=doctor error=\"address format\"");
	dr_add(d, DR_OK, "address", NULL, "%s (%s)", d->addr_text, from);
}

/* ---- MX ----------------------------------------------------------------- */

static void
dr_check_mx(struct dr *d, const char *dom)
{
	char names[DR_MX_MAX][DNS_NAME_MAX + 1], fix[DR_FIX_MAX];
	char seen[DR_DETAIL_MAX] = "";
	struct dns_addr a[DR_ADDRS_MAX];
	size_t nmx = 0, i, used = 0;
	int n;

	if (!dr_lookup(d, "mx", DNS_Q_MX, dom))
		return;
	if (d->have_addr)
		str_fmt_cut(fix, sizeof(fix),
		    "add \"%s. IN MX 10 %s.\" and \"%s. IN %s %s\"", dom,
		    d->c->hostname, d->c->hostname, dr_rrtype(d), d->addr_text);
	else
		str_fmt_cut(fix, sizeof(fix), "add \"%s. IN MX 10 %s.\"", dom,
		    d->c->hostname);
	if (d->ans->rcode == DNS_ANS_NXDOMAIN) {
		dr_add(d, DR_FAIL, "mx", fix,
		    "%s does not exist in DNS (NXDOMAIN)", dom);
		return;
	}
	for (i = 0; i < d->ans->n && nmx < DR_MX_MAX; i++)
		str_fmt_cut(names[nmx++], sizeof(names[0]), "%s",
		    d->ans->recs + d->ans->off[i]);
	if (nmx == 0) {
		dr_add(d, DR_FAIL, "mx", fix, "%s has no MX record", dom);
		return;
	}
	if (nmx == 1 && (names[0][0] == '\0' || strcmp(names[0], ".") == 0)) {
		dr_add(d, DR_FAIL, "mx", fix,
		    "%s has a null MX (RFC 7505): it accepts no mail", dom);
		return;
	}
	if (!d->have_addr) {
		dr_add(d, DR_WARN, "mx", "give --address IP",
		    "%s MX %s: not compared with this host's address (unknown)",
		    dom, names[0]);
		return;
	}
	for (i = 0; i < nmx; i++) {
		if ((n = dr_addrs(d, "mx", names[i], a, DR_ADDRS_MAX)) < 0)
			return;
		if (dr_has_addr(d, a, n)) {
			dr_add(d, DR_OK, "mx", NULL, "%s MX %s has %s %s", dom,
			    names[i], dr_rrtype(d), d->addr_text);
			return;
		}
		str_fmt_cut(seen + used, sizeof(seen) - used, "%s%s (",
		    i ? "; " : "", names[i]);
		used += strlen(seen + used);
		dr_addrs_text(a, n, seen + used, sizeof(seen) - used);
		used += strlen(seen + used);
		str_fmt_cut(seen + used, sizeof(seen) - used, ")");
		used += strlen(seen + used);
	}
	str_fmt_cut(fix, sizeof(fix),
	    "set \"%s. IN %s %s\", or point the MX of %s at a name that has "
	    "it (\"%s. IN MX 10 %s.\")",
	    names[0], dr_rrtype(d), d->addr_text, dom, dom, d->c->hostname);
	dr_add(d, DR_FAIL, "mx", fix,
	    "the MX of %s lead%s to %s, not to this host's %s", dom,
	    nmx == 1 ? "s" : "", seen, d->addr_text);
}

/* ---- PTR and HELO ------------------------------------------------------- */

/* The reverse name of the address (RFC 1035 3.5, RFC 3596 2.5). */
static void
dr_reverse_name(const struct dns_addr *a, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	size_t used = 0;
	int i;

	if (a->family == AF_INET) {
		const uint8_t *b = (const uint8_t *)&a->u.v4;

		str_fmt_cut(out, outlen, "%u.%u.%u.%u.in-addr.arpa", b[3], b[2],
		    b[1], b[0]);
		return;
	}
	for (i = 15; i >= 0 && used + 5 < outlen; i--) {
		out[used++] = hex[a->u.v6.s6_addr[i] & 0xf];
		out[used++] = '.';
		out[used++] = hex[a->u.v6.s6_addr[i] >> 4];
		out[used++] = '.';
	}
	str_fmt_cut(out + used, outlen - used, "ip6.arpa");
}

static void
dr_check_ptr(struct dr *d)
{
	char rev[80], fix[DR_FIX_MAX], seen[DR_DETAIL_MAX];
	struct dns_addr a[DR_ADDRS_MAX];
	int n;

	if (!d->have_addr) {
		dr_add(d, DR_WARN, "ptr", "give --address IP",
		    "not checked: this host's address is unknown");
		return;
	}
	dr_reverse_name(&d->addr, rev, sizeof(rev));
	if (!dr_lookup(d, "ptr", DNS_Q_PTR, rev))
		return;
	str_fmt_cut(fix, sizeof(fix),
	    "ask whoever holds %s (the hosting provider) to set its PTR "
	    "(\"%s. IN PTR %s.\")",
	    d->addr_text, rev, d->c->hostname);
	if (d->ans->rcode == DNS_ANS_NXDOMAIN || d->ans->n == 0) {
		dr_add(d, DR_FAIL, "ptr", fix, "%s has no PTR record",
		    d->addr_text);
		return;
	}
	str_fmt_cut(d->ptr_name, sizeof(d->ptr_name), "%s",
	    d->ans->recs + d->ans->off[0]);
	if ((n = dr_addrs(d, "ptr", d->ptr_name, a, DR_ADDRS_MAX)) < 0)
		return;
	if (dr_has_addr(d, a, n)) {
		dr_add(d, DR_OK, "ptr", NULL,
		    "%s has PTR %s, which resolves back to it", d->addr_text,
		    d->ptr_name);
		return;
	}
	dr_addrs_text(a, n, seen, sizeof(seen));
	str_fmt_cut(fix, sizeof(fix),
	    "add \"%s. IN %s %s\", or have the PTR of %s changed to %s",
	    d->ptr_name, dr_rrtype(d), d->addr_text, d->addr_text,
	    d->c->hostname);
	dr_add(d, DR_FAIL, "ptr", fix,
	    "%s has PTR %s, which does not resolve back to it (%s): "
	    "not forward-confirmed",
	    d->addr_text, d->ptr_name, seen);
}

static void
dr_check_helo(struct dr *d)
{
	char fix[DR_FIX_MAX], seen[DR_DETAIL_MAX];
	struct dns_addr a[DR_ADDRS_MAX];
	const char *h = d->c->hostname;
	int n;

	if (!d->have_addr) {
		dr_add(d, DR_WARN, "helo", "give --address IP",
		    "not checked: this host's address is unknown");
		return;
	}
	if ((n = dr_addrs(d, "helo", h, a, DR_ADDRS_MAX)) < 0)
		return;
	if (!dr_has_addr(d, a, n)) {
		dr_addrs_text(a, n, seen, sizeof(seen));
		str_fmt_cut(fix, sizeof(fix),
		    "add \"%s. IN %s %s\", or set hostname in tern.conf to a "
		    "name that has it%s%s",
		    h, dr_rrtype(d), d->addr_text,
		    d->ptr_name[0] ? " such as " : "", d->ptr_name);
		dr_add(d, DR_FAIL, "helo", fix,
		    "hostname %s (the HELO name) does not resolve to %s (%s)",
		    h, d->addr_text, seen);
		return;
	}
	if (d->ptr_name[0] != '\0' && strcasecmp(d->ptr_name, h) != 0) {
		str_fmt_cut(fix, sizeof(fix),
		    "set hostname = %s in tern.conf, or have the PTR of %s "
		    "changed to %s",
		    d->ptr_name, d->addr_text, h);
		dr_add(d, DR_WARN, "helo", fix,
		    "hostname %s (the HELO name) resolves to %s but is not "
		    "its PTR name %s",
		    h, d->addr_text, d->ptr_name);
		return;
	}
	dr_add(d, DR_OK, "helo", NULL, "hostname %s resolves to %s%s", h,
	    d->addr_text, d->ptr_name[0] ? " and is its PTR name" : "");
}

/* ---- SPF ---------------------------------------------------------------- */

static bool
dr_is_spf(const char *rec, size_t len)
{
	return len >= 6 && strncasecmp(rec, "v=spf1", 6) == 0 &&
	       (len == 6 || rec[6] == ' ');
}

/* Run mailauth/spf's check_host() for the address, its queries answered
 * here one by one. */
static enum spf_result
dr_spf_eval(struct dr *d, const char *dom, char *why, size_t whylen)
{
	static const enum dns_qtype qtypes[] = {
	    [SPF_Q_TXT] = DNS_Q_TXT,
	    [SPF_Q_A] = DNS_Q_A,
	    [SPF_Q_AAAA] = DNS_Q_AAAA,
	    [SPF_Q_MX] = DNS_Q_MX,
	    [SPF_Q_PTR] = DNS_Q_PTR,
	};
	struct spf_rr *rrs = xcalloc(DNS_ANSWER_RRS, sizeof(*rrs));
	struct spf_request req;
	struct spf_query q;
	char sender[DNS_NAME_MAX + 16];
	enum spf_result r;
	struct spf *s;
	size_t i;

	memset(&req, 0, sizeof(req));
	req.ip.v6 = d->addr.family == AF_INET6;
	memcpy(req.ip.addr, &d->addr.u, req.ip.v6 ? 16 : 4);
	str_fmt_cut(sender, sizeof(sender), "postmaster@%s", dom);
	req.domain = dom;
	req.sender = sender;
	req.helo = d->c->hostname;
	req.receiver = d->c->hostname;
	req.now = (int64_t)time(NULL);
	req.identity = SPF_ID_MAILFROM;
	if ((s = spf_new(&req)) == NULL) {
		free(rrs);
		str_fmt_cut(why, whylen, "the domain cannot be checked");
		return SPF_PERMERROR;
	}
	while (spf_next(s, &q) == SPF_STEP_QUERY) {
		enum spf_rcode rc = SPF_DNS_TEMP;
		struct cli_dns_answer *a = d->ans;

		if (d->dns_dead) {
			spf_timeout(s);
			break;
		}
		cli_resolve(d->res, qtypes[q.type], q.name, a);
		if (a->rcode == DNS_ANS_OK)
			rc = SPF_DNS_OK;
		else if (a->rcode == DNS_ANS_NXDOMAIN)
			rc = SPF_DNS_NXDOMAIN;
		for (i = 0; rc == SPF_DNS_OK && i < a->n; i++)
			rrs[i] = (struct spf_rr){
			    a->recs + a->off[i], a->len[i], false};
		if (spf_answer(s, rc, rrs, rc == SPF_DNS_OK ? a->n : 0) != 0)
			panic("event=doctor error=\"SPF answer unasked\"");
	}
	r = spf_result(s);
	str_fmt_cut(why, whylen, "%s",
	    spf_problem(s)[0] ? spf_problem(s) : spf_mechanism(s));
	spf_free(s);
	free(rrs);
	return r;
}

static void
dr_check_spf(struct dr *d, const char *dom)
{
	char fix[DR_FIX_MAX], why[256];
	const char *mech = d->addr.family == AF_INET6 ? "ip6" : "ip4";
	size_t i, nspf = 0;
	enum spf_result r;

	if (!dr_lookup(d, "spf", DNS_Q_TXT, dom))
		return;
	for (i = 0; i < d->ans->n; i++)
		if (dr_is_spf(d->ans->recs + d->ans->off[i], d->ans->len[i]))
			nspf++;
	if (nspf == 0) {
		str_fmt_cut(fix, sizeof(fix),
		    "add \"%s. IN TXT \\\"v=spf1 %s:%s -all\\\"\"", dom, mech,
		    d->have_addr ? d->addr_text : "ADDRESS");
		dr_add(d, DR_FAIL, "spf", fix, "%s has no SPF record", dom);
		return;
	}
	if (nspf > 1) {
		dr_add(d, DR_FAIL, "spf",
		    "merge them into one v=spf1 record and delete the others",
		    "%s has %zu SPF records: receivers see a permerror "
		    "(RFC 7208 4.5)",
		    dom, nspf);
		return;
	}
	if (!d->have_addr) {
		dr_add(d, DR_WARN, "spf", "give --address IP",
		    "%s has one SPF record, not evaluated: this host's address "
		    "is unknown",
		    dom);
		return;
	}
	r = dr_spf_eval(d, dom, why, sizeof(why));
	if (r == SPF_PASS) {
		dr_add(d, DR_OK, "spf", NULL, "%s: SPF passes %s (%s)", dom,
		    d->addr_text, why);
		return;
	}
	if (r == SPF_TEMPERROR) {
		dr_add(d, DR_FAIL, "spf",
		    "make the resolver answer, then run tern doctor again",
		    "%s: SPF could not be evaluated for %s: temperror (%s)",
		    dom, d->addr_text, why[0] ? why : d->servers);
		return;
	}
	if (r == SPF_PERMERROR)
		str_fmt_cut(fix, sizeof(fix),
		    "correct the SPF record of %s (the error is named here)",
		    dom);
	else
		str_fmt_cut(fix, sizeof(fix),
		    "add %s:%s to the SPF record of %s, before its \"all\"",
		    mech, d->addr_text, dom);
	dr_add(d, DR_FAIL, "spf", fix, "%s: SPF gives %s for %s (%s)", dom,
	    spf_result_name(r), d->addr_text, why[0] ? why : "no mechanism");
}

/* ---- DKIM --------------------------------------------------------------- */

struct dr_dkim {
	struct dr *d;
	size_t active;
};

static void
dr_dkim_one(const struct cli_dkim_check *k, void *arg)
{
	struct dr_dkim *x = arg;
	char fix[DR_FIX_MAX];

	if (!k->active) /* not signing: its record may not be out yet */
		return;
	x->active++;
	if (strcmp(k->verdict, "ok") == 0) {
		dr_add(x->d, DR_OK, "dkim", NULL,
		    "%s selector %s (%s): the record at %s matches the key "
		    "on disk (%s)",
		    k->domain, k->selector, k->alg, k->name, k->why);
		return;
	}
	if (strcmp(k->verdict, "error") == 0) {
		dr_add(x->d, DR_FAIL, "dkim",
		    "make the resolver answer (or repair the key file), then "
		    "run tern dkim check",
		    "%s selector %s (%s): not checked: %s", k->domain,
		    k->selector, k->alg, k->why);
		return;
	}
	str_fmt_cut(fix, sizeof(fix),
	    "publish \"%s. IN TXT \\\"%s\\\"\" "
	    "(tern dkim list prints it in zone-file "
	    "form)",
	    k->name, k->rec);
	dr_add(x->d, DR_FAIL, "dkim", fix,
	    "%s selector %s (%s) signs, but its record is %s: %s", k->domain,
	    k->selector, k->alg, k->verdict, k->why);
}

static void
dr_check_dkim(struct dr *d, const char *dom)
{
	struct dr_dkim x = {d, 0};
	char fix[DR_FIX_MAX];
	int n;

	if (d->dns_dead) {
		dr_add(d, DR_FAIL, "dkim",
		    "make the resolver answer, then run tern doctor again",
		    "%s not checked: no DNS answer from %s", dom, d->servers);
		return;
	}
	n = cli_dkim_check_domain(d->c, d->res, dom, dr_dkim_one, &x);
	if (n < 0) {
		dr_add(d, DR_FAIL, "dkim",
		    "see the message above; tern dkim list shows the keys",
		    "%s: the keys in state_dir cannot be read", dom);
		return;
	}
	if (x.active == 0) {
		str_fmt_cut(fix, sizeof(fix),
		    "run tern dkim keygen %s and publish the record it prints",
		    dom);
		dr_add(d, DR_WARN, "dkim", fix,
		    "%s has no active DKIM key: its mail leaves unsigned", dom);
	}
}

/* ---- DMARC -------------------------------------------------------------- */

static void
dr_check_dmarc(struct dr *d, const char *dom)
{
	char name[DNS_NAME_MAX + 8], fix[DR_FIX_MAX];
	struct dmarc_record rec, first;
	size_t i, n = 0;

	memset(&first, 0, sizeof(first));
	str_fmt_cut(name, sizeof(name), "_dmarc.%s", dom);
	if (!dr_lookup(d, "dmarc", DNS_Q_TXT, name))
		return;
	for (i = 0; i < d->ans->n; i++)
		if (dmarc_record_parse(d->ans->recs + d->ans->off[i],
			d->ans->len[i], &rec) == DMARC_PARSE_OK &&
		    n++ == 0)
			first = rec;
	if (n == 0) {
		str_fmt_cut(fix, sizeof(fix),
		    "add \"%s. IN TXT \\\"v=DMARC1; p=none; "
		    "rua=mailto:postmaster@%s\\\"\" (then p=quarantine or "
		    "reject once the reports are clean)",
		    name, dom);
		dr_add(d, DR_WARN, "dmarc", fix,
		    "%s has no DMARC record (at %s): large receivers "
		    "expect one",
		    dom, name);
		return;
	}
	if (n > 1) {
		dr_add(d, DR_FAIL, "dmarc",
		    "keep one v=DMARC1 record and delete the others",
		    "%s has %zu DMARC records at %s: receivers ignore them all "
		    "(RFC 7489 6.6.3)",
		    dom, n, name);
		return;
	}
	if (first.p == DMARC_P_UNSET || first.p == DMARC_P_INVALID) {
		str_fmt_cut(fix, sizeof(fix),
		    "give the record at %s a p= of none, quarantine or reject",
		    name);
		dr_add(d, DR_FAIL, "dmarc", fix,
		    "%s's DMARC record has %s p= tag: receivers ignore it", dom,
		    first.p == DMARC_P_UNSET ? "no" : "an invalid");
		return;
	}
	if (first.bad_values > 0 || first.dropped_uris > 0) {
		str_fmt_cut(fix, sizeof(fix),
		    "correct the record at %s (tags of RFC 7489 6.3)", name);
		dr_add(d, DR_WARN, "dmarc", fix,
		    "%s's DMARC record (p=%s) has %u bad tag value(s) and %u "
		    "bad report URI(s), which receivers ignore",
		    dom, dmarc_policy_name(first.p), first.bad_values,
		    first.dropped_uris);
		return;
	}
	dr_add(d, DR_OK, "dmarc", NULL, "%s: DMARC record p=%s%s", dom,
	    dmarc_policy_name(first.p),
	    first.nrua > 0 ? ", aggregate reports requested" : "");
}

/* ---- TLS-RPT and MTA-STS records (docs/tls-auth.md) -------------------- */

static void
dr_check_tlsrpt(struct dr *d, const char *dom)
{
	char name[DNS_NAME_MAX + 16], fix[DR_FIX_MAX];
	const char *txt[DNS_ANSWER_RRS];
	struct tlsrpt_record rec;
	enum tlsrpt_parse pr;
	size_t i;
	int pick;

	str_fmt_cut(name, sizeof(name), "_smtp._tls.%s", dom);
	if (!dr_lookup(d, "tlsrpt", DNS_Q_TXT, name))
		return;
	for (i = 0; i < d->ans->n; i++)
		txt[i] = d->ans->recs + d->ans->off[i];
	pick = tlsrpt_record_pick(txt, d->ans->len, d->ans->n);
	if (pick == -1) {
		str_fmt_cut(fix, sizeof(fix),
		    "to receive reports of TLS failures from other servers, "
		    "add \"%s. IN TXT \\\"v=TLSRPTv1; "
		    "rua=mailto:tlsrpt@%s\\\"\"",
		    name, dom);
		dr_add(d, DR_OK, "tlsrpt", fix,
		    "%s has no TLS-RPT record (optional, RFC 8460)", dom);
		return;
	}
	if (pick == -2) {
		dr_add(d, DR_WARN, "tlsrpt",
		    "keep one v=TLSRPTv1 record and delete the others",
		    "%s has several TLS-RPT records at %s: senders use none "
		    "(RFC 8460 3)",
		    dom, name);
		return;
	}
	pr = tlsrpt_record_parse(txt[pick], d->ans->len[pick], &rec);
	if (pr != TLSRPT_PARSE_OK) {
		str_fmt_cut(fix, sizeof(fix),
		    "give the record at %s a rua= of mailto: or https: URIs, "
		    "e.g. \"v=TLSRPTv1; rua=mailto:tlsrpt@%s\"",
		    name, dom);
		dr_add(d, DR_WARN, "tlsrpt", fix,
		    "%s's TLS-RPT record has no usable rua: senders send no "
		    "report",
		    dom);
		return;
	}
	dr_add(d, DR_OK, "tlsrpt", NULL,
	    "%s: TLS-RPT record, reports to %s%s%s", dom, rec.rua[0].uri,
	    rec.nrua > 1 ? " and more" : "",
	    rec.skipped > 0 ? " (some URIs unusable)" : "");
}

/* "v=STSv1; id=..." (RFC 8461 3.1): true with its id in id */
static bool
dr_sts_id(const char *t, size_t len, char *id, size_t idlen)
{
	const char *p;
	size_t n = 0;

	if (len < 7 || memcmp(t, "v=STSv1", 7) != 0)
		return false;
	for (p = t; p + 3 <= t + len; p++) {
		if (memcmp(p, "id=", 3) != 0 ||
		    (p != t && p[-1] != ';' && p[-1] != ' ' && p[-1] != '\t'))
			continue;
		p += 3;
		while (p + n < t + len && n + 1 < idlen &&
		       ((p[n] >= 'a' && p[n] <= 'z') ||
			   (p[n] >= 'A' && p[n] <= 'Z') ||
			   (p[n] >= '0' && p[n] <= '9')))
			n++;
		if (n == 0 || n > 32)
			return false;
		memcpy(id, p, n);
		id[n] = '\0';
		return true;
	}
	return false;
}

static void
dr_check_mtasts(struct dr *d, const char *dom)
{
	char name[DNS_NAME_MAX + 16], fix[DR_FIX_MAX], id[40], file[600];
	size_t i, n = 0, found = 0;
	time_t now = time(NULL);
	struct tm tm;

	str_fmt_cut(name, sizeof(name), "_mta-sts.%s", dom);
	/* the file the admin's web server must serve: mode testing first,
	 * enforce once TLS-RPT reports are clean (RFC 8461 5) */
	str_fmt_cut(file, sizeof(file),
	    "version: STSv1\\nmode: testing\\nmx: %s\\nmax_age: 604800\\n",
	    d->c->hostname);
	if (!dr_lookup(d, "mta-sts", DNS_Q_TXT, name))
		return;
	for (i = 0; i < d->ans->n; i++) {
		const char *t = d->ans->recs + d->ans->off[i];

		if (d->ans->len[i] >= 7 && memcmp(t, "v=STSv1", 7) == 0) {
			found++;
			if (dr_sts_id(t, d->ans->len[i], id, sizeof(id)))
				n++;
		}
	}
	if (found == 0) {
		if (gmtime_r(&now, &tm) == NULL ||
		    strftime(id, sizeof(id), "%Y%m%dT%H%M%S", &tm) == 0)
			str_fmt_cut(id, sizeof(id), "1");
		str_fmt_cut(fix, sizeof(fix),
		    "to have senders require TLS to you, serve at "
		    "https://mta-sts.%s/.well-known/mta-sts.txt (your web "
		    "server: ternd serves no HTTP) the text \"%s\", then add "
		    "\"%s. IN TXT \\\"v=STSv1; id=%s\\\"\"",
		    dom, file, name, id);
		dr_add(d, DR_OK, "mta-sts", fix,
		    "%s has no MTA-STS record (optional, RFC 8461)", dom);
		return;
	}
	if (found > 1 || n != 1) {
		str_fmt_cut(fix, sizeof(fix),
		    "keep one record \"v=STSv1; id=ID\" at %s (ID: 1 to 32 "
		    "letters and digits, changed whenever the policy file "
		    "changes)",
		    name);
		dr_add(d, DR_WARN, "mta-sts", fix,
		    "%s's MTA-STS record at %s is %s: senders ignore it "
		    "(RFC 8461 3.1)",
		    dom, name, found > 1 ? "doubled" : "without a valid id");
		return;
	}
	dr_add(d, DR_OK, "mta-sts", NULL,
	    "%s: MTA-STS record id=%s; its policy file is served by your web "
	    "server (ternd serves no HTTP) at "
	    "https://mta-sts.%s/.well-known/mta-sts.txt, e.g. \"%s\"",
	    dom, id, dom, file);
}

/* ---- the certificate ---------------------------------------------------- */

static void
dr_check_cert(struct dr *d)
{
	const struct conf *c = d->c;
	char path[4096], fix[DR_FIX_MAX], listeners[128] = "", exp[32];
	const char *h = c->hostname;
	int days = 0, secs = 0;
	struct tm tm;
	X509 *x;
	FILE *f;

	str_fmt_cut(listeners, sizeof(listeners), "%s%s%s",
	    c->listen_smtp && *c->listen_smtp ? " listen.smtp" : "",
	    c->listen_submission && *c->listen_submission ? " listen.submission"
							  : "",
	    c->listen_submissions && *c->listen_submissions
		? " listen.submissions"
		: "");
	if (listeners[0] == '\0') {
		dr_add(d, DR_WARN, "tls", "set listen.smtp",
		    "no listener is on: no certificate to check");
		return;
	}
	if (c->tls_cert != NULL)
		str_fmt_cut(path, sizeof(path), "%s", c->tls_cert);
	else
		str_fmt_cut(path, sizeof(path), "%s/%s/%s", c->state_dir,
		    TLS_STATE_SUBDIR, TLS_STATE_CERT);
	if ((f = fopen(path, "re")) == NULL) {
		dr_add(d, c->tls_cert ? DR_FAIL : DR_WARN, "tls",
		    c->tls_cert ? "correct tls.cert, or make the file readable "
				  "by ternd's user"
				: "set tls.cert and tls.key to a certificate "
				  "for hostname from a CA",
		    "%s (for%s): %s%s", path, listeners, strerror(errno),
		    c->tls_cert ? ""
				: " (ternd makes a self-signed one at start)");
		return;
	}
	x = PEM_read_X509(f, NULL, NULL, NULL);
	(void)fclose(f);
	if (x == NULL) {
		dr_add(d, DR_FAIL, "tls",
		    "put the PEM certificate (then its chain) in tls.cert",
		    "%s: no PEM certificate in it", path);
		return;
	}
	if (ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)) != 1 ||
	    ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1 ||
	    strftime(exp, sizeof(exp), "%Y-%m-%d", &tm) == 0)
		str_fmt_cut(exp, sizeof(exp), "an unreadable date");
	str_fmt_cut(fix, sizeof(fix),
	    "get a certificate for %s (certbot, or any CA) and set tls.cert "
	    "and tls.key to it",
	    h);
	if (X509_check_host(x, h, strlen(h), 0, NULL) != 1) {
		dr_add(d, DR_FAIL, "tls", fix,
		    "%s (for%s) does not cover hostname %s", path, listeners,
		    h);
	} else if (days < 0 || (days == 0 && secs <= 0)) {
		dr_add(d, DR_FAIL, "tls", fix, "%s (for%s) expired on %s", path,
		    listeners, exp);
	} else if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0) {
		dr_add(d, DR_FAIL, "tls", fix, "%s (for%s) is not valid yet",
		    path, listeners);
	} else if (days < DR_CERT_WARN_DAYS) {
		str_fmt_cut(fix, sizeof(fix),
		    "renew it (certbot renew, or your CA) and reload ternd");
		dr_add(d, DR_WARN, "tls", fix,
		    "%s (for%s) covers %s but expires in %d day%s (%s)", path,
		    listeners, h, days, days == 1 ? "" : "s", exp);
	} else if (X509_check_issued(x, x) == X509_V_OK) {
		dr_add(d, DR_WARN, "tls", fix,
		    "%s (for%s) covers %s but is self-signed: mail clients "
		    "and verifying senders refuse it",
		    path, listeners, h);
	} else {
		dr_add(d, DR_OK, "tls", NULL,
		    "%s (for%s) covers %s, expires %s (in %d days)", path,
		    listeners, h, exp, days);
	}
	X509_free(x);
}

/*
 * acme.directory: the last order's outcome, as ternd's acmed wrote it in
 * STATE/acme/last ("UNIXTIME result=... ..."); the certificate itself is
 * the "tls" line's.
 */
static void
dr_check_acme(struct dr *d)
{
	char path[4096], line[1024], when[32];
	const char *rest;
	time_t t;
	struct tm tm;
	FILE *f;

	if (d->c->acme_directory == NULL)
		return;
	str_fmt_cut(path, sizeof(path), "%s/acme/last", d->c->state_dir);
	if ((f = fopen(path, "re")) == NULL) {
		dr_add(d, DR_WARN, "acme",
		    "start ternd and read its event=acme "
		    "lines",
		    "no ACME order has run yet (%s: %s)", path,
		    strerror(errno));
		return;
	}
	if (fgets(line, sizeof(line), f) == NULL)
		line[0] = '\0';
	(void)fclose(f);
	line[strcspn(line, "\r\n")] = '\0';
	t = (time_t)strtoll(line, NULL, 10);
	rest = strchr(line, ' ') != NULL ? strchr(line, ' ') + 1 : line;
	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(when, sizeof(when), "%Y-%m-%d %H:%M UTC", &tm) == 0)
		str_fmt_cut(when, sizeof(when), "?");
	if (strncmp(rest, "result=issued", 13) == 0)
		dr_add(d, DR_OK, "acme", NULL, "last order %s: %s", when, rest);
	else
		dr_add(d, DR_WARN, "acme",
		    "fix what the error names; ternd retries by itself",
		    "last order %s: %s", when, rest);
}

/* ---- state_dir, disk, queue --------------------------------------------- */

static void
dr_check_state_dir(struct dr *d)
{
	const char *dir = d->c->state_dir;
	char fix[DR_FIX_MAX];
	struct statvfs vfs;
	struct stat st;
	unsigned mode;
	int r;

	if ((r = lstat(dir, &st)) != 0 || !S_ISDIR(st.st_mode)) {
		const char *why = r != 0 ? strerror(errno)
				  : S_ISLNK(st.st_mode)
				      ? "a symbolic link: set "
					"state_dir to the "
					"directory itself"
				      : "not a directory";

		if (r != 0)
			str_fmt_cut(fix, sizeof(fix),
			    "create it (mkdir -m 711 %s, owned by ternd's "
			    "user), or correct state_dir",
			    dir);
		else
			str_fmt_cut(fix, sizeof(fix),
			    "set state_dir to a directory: ternd refuses "
			    "anything else");
		dr_add(d, DR_FAIL, "state_dir", fix, "%s: %s", dir, why);
		return;
	}
	mode = (unsigned)(st.st_mode & 07777);
	if (st.st_uid != geteuid()) {
		str_fmt_cut(
		    fix, sizeof(fix), "chown %u %s", (unsigned)geteuid(), dir);
		dr_add(d, DR_FAIL, "state_dir", fix,
		    "%s is owned by uid %u, not by ternd's user (uid %u): "
		    "ternd refuses to start",
		    dir, (unsigned)st.st_uid, (unsigned)geteuid());
	} else if (mode & (S_IWGRP | S_IWOTH)) {
		str_fmt_cut(fix, sizeof(fix), "chmod 711 %s", dir);
		dr_add(d, DR_FAIL, "state_dir", fix,
		    "%s has mode %04o, writable by group or others: ternd "
		    "refuses to start",
		    dir, mode);
	} else if (mode & (S_IRGRP | S_IROTH)) {
		/* ternd keeps it 0711: others reach public/submit.sock
		 * (sendmail) but cannot list the queue's names */
		str_fmt_cut(fix, sizeof(fix), "chmod 711 %s", dir);
		dr_add(d, DR_WARN, "state_dir", fix,
		    "%s has mode %04o: others can list it", dir, mode);
	} else {
		dr_add(d, DR_OK, "state_dir", NULL,
		    "%s is owned by uid %u, mode %04o", dir,
		    (unsigned)st.st_uid, mode);
	}
	if (statvfs(dir, &vfs) != 0) {
		dr_add(d, DR_WARN, "disk", NULL, "statvfs %s: %s", dir,
		    strerror(errno));
		return;
	}
	{
		unsigned long long avail =
		    (unsigned long long)vfs.f_bavail * vfs.f_frsize;
		unsigned long long pct =
		    vfs.f_blocks
			? (unsigned long long)vfs.f_bavail * 100 / vfs.f_blocks
			: 100;

		if (avail < DR_DISK_WARN_BYTES || pct < DR_DISK_WARN_PCT)
			dr_add(d, DR_WARN, "disk",
			    "free space there (or move state_dir to a larger "
			    "file system): a full disk makes ternd refuse mail",
			    "%llu MiB (%llu%%) free under %s", avail >> 20, pct,
			    dir);
		else
			dr_add(d, DR_OK, "disk", NULL,
			    "%llu MiB (%llu%%) free under %s", avail >> 20, pct,
			    dir);
	}
}

static void
dr_check_queue(struct dr *d)
{
	unsigned delay = d->c->queue_delay_warning;
	int64_t oldest = 0, age;
	char fix[DR_FIX_MAX];
	size_t n = 0;

	if (cli_queue_oldest(d->c, &n, &oldest) != 0) {
		dr_add(d, DR_WARN, "queue",
		    "start ternd (systemctl start tern), then run tern doctor "
		    "again",
		    "not checked: ternd does not answer on %s/%s",
		    d->c->state_dir, CLI_CONTROL_SOCK);
		return;
	}
	if (n == 0) {
		dr_add(d, DR_OK, "queue", NULL, "the queue is empty");
		return;
	}
	age = (int64_t)time(NULL) - oldest;
	if (age < 0)
		age = 0;
	if (delay > 0 && age > (int64_t)delay) {
		str_fmt_cut(fix, sizeof(fix),
		    "see why with tern queue list and tern queue show ID");
		dr_add(d, DR_WARN, "queue", fix,
		    "%zu message%s queued, the oldest for %lld s (more than "
		    "queue.delay_warning, %u s)",
		    n, n == 1 ? "" : "s", (long long)age, delay);
		return;
	}
	dr_add(d, DR_OK, "queue", NULL,
	    "%zu message%s queued, the oldest for %lld s", n, n == 1 ? "" : "s",
	    (long long)age);
}

/* ---- port 25 ------------------------------------------------------------ */

/* Connect to ss with a deadline: the socket, or -1 with errno. */
static int
dr_connect(const struct sockaddr_storage *ss, socklen_t len)
{
	int fd = socket(
		ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0),
	    err = 0;
	socklen_t elen = sizeof(err);
	struct pollfd p;

	if (fd < 0)
		return -1;
	if (connect(fd, (const struct sockaddr *)ss, len) == 0)
		return fd;
	if (errno != EINPROGRESS)
		goto fail;
	p.fd = fd;
	p.events = POLLOUT;
	if (poll(&p, 1, DR_TCP_TIMEOUT_MS) <= 0) {
		errno = ETIMEDOUT;
		goto fail;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
		goto fail;
	if (err != 0) {
		errno = err;
		goto fail;
	}
	return fd;
fail:
	err = errno;
	(void)close(fd);
	errno = err;
	return -1;
}

/* The greeting's first line into out (control bytes cleaned); 0 or -1. */
static int
dr_greeting(int fd, char *out, size_t outlen)
{
	char raw[512];
	size_t n = 0;
	ssize_t r;
	char *nl;

	while (n + 1 < sizeof(raw)) {
		if (cli_wait_readable(fd, DR_TCP_TIMEOUT_MS) <= 0)
			return -1;
		r = read(fd, raw + n, sizeof(raw) - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		n += (size_t)r;
		raw[n] = '\0';
		if ((nl = strchr(raw, '\n')) != NULL) {
			*nl = '\0';
			if (nl > raw && nl[-1] == '\r')
				nl[-1] = '\0';
			cli_clean(out, outlen, raw);
			return 0;
		}
	}
	return -1;
}

static void
dr_check_port(struct dr *d)
{
	static const char quit[] = "QUIT\r\n";
	char host[300], fix[DR_FIX_MAX], greet[300];
	struct sockaddr_storage ss;
	socklen_t len;
	unsigned port;
	int fd;

	if (!dr_listen_split(d->c->listen_smtp, host, sizeof(host), &port)) {
		dr_add(d, DR_FAIL, "port",
		    "set listen.smtp = 0.0.0.0:25 (and [::]:25) in tern.conf",
		    "listen.smtp is off: no MX listener");
		return;
	}
	if (!d->have_addr) {
		dr_add(d, DR_WARN, "port", "give --address IP",
		    "not checked: this host's address is unknown");
		return;
	}
	dns_addr_sockaddr(&d->addr, (uint16_t)port, &ss, &len);
	str_fmt_cut(fix, sizeof(fix),
	    "start ternd, check that listen.smtp (%s) covers %s, and open "
	    "TCP port %u in the firewall",
	    d->c->listen_smtp, d->addr_text, port);
	if ((fd = dr_connect(&ss, len)) < 0) {
		dr_add(d, DR_FAIL, "port", fix,
		    "%s port %u does not accept connections (%s)", d->addr_text,
		    port,
		    errno == ETIMEDOUT ? "no answer in time" : strerror(errno));
		return;
	}
	if (dr_greeting(fd, greet, sizeof(greet)) != 0) {
		(void)close(fd);
		dr_add(d, DR_FAIL, "port", fix,
		    "%s port %u accepts connections but sends no greeting "
		    "line",
		    d->addr_text, port);
		return;
	}
	if (cli_write_all(fd, quit, sizeof(quit) - 1) != 0) {
		/* the greeting is what was asked; QUIT is politeness */
	}
	(void)close(fd);
	if (strncmp(greet, "220", 3) != 0 ||
	    (greet[3] != ' ' && greet[3] != '-')) {
		dr_add(d, DR_FAIL, "port", fix,
		    "%s port %u greets with \"%s\", not 220", d->addr_text,
		    port, greet);
		return;
	}
	dr_add(d, DR_OK, "port", NULL, "%s port %u answers: %s%s", d->addr_text,
	    port, greet,
	    port == 25 ? "" : " (not 25: other MTAs only ever try 25)");
}

/* ---- the command -------------------------------------------------------- */

/* A DOMAIN argument: a host name (it names a folder under STATE/dkim
 * too, so nothing like "../x" gets there), lower-cased in place as the
 * configured domains are. */
static bool
dr_domain_ok(char *s)
{
	char out[DNS_NAME_MAX + 1];
	enum addr_domain_kind kind;
	char *p;

	for (p = s; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');

	return addr_parse_domain(s, strlen(s), 0, out, sizeof(out), &kind) ==
		   ADDR_OK &&
	       kind == ADDR_DOMAIN_NAME;
}

static int
dr_usage(const char *what)
{
	cli_warnx("doctor: %s", what);
	fputs("usage: tern [-c file] [-o key=value]... doctor [DOMAIN...] "
	      "[--address IP] [--json]\n",
	    stderr);
	return EX_USAGE;
}

int
cli_doctor(const struct conf *c, int argc, char **argv)
{
	struct dns_addr tmp;
	const char *address = NULL;
	const char **doms;
	size_t ndoms = 0, k;
	struct dr d;
	int i;

	memset(&d, 0, sizeof(d));
	d.c = c;
	doms = xcalloc((size_t)argc + c->ndomains + 1, sizeof(*doms));
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			d.json = true;
		} else if (strcmp(argv[i], "--address") == 0 && i + 1 < argc) {
			address = argv[++i];
			if (!dr_parse_addr(address, strlen(address), &tmp)) {
				free(doms);
				return dr_usage("--address is an IPv4 or IPv6 "
						"address");
			}
		} else if (argv[i][0] == '-') {
			free(doms);
			return dr_usage("unknown option or missing value");
		} else if (!dr_domain_ok(argv[i])) {
			free(doms);
			return dr_usage("DOMAIN is not a domain name");
		} else {
			doms[ndoms++] = argv[i];
		}
	}
	for (k = 0; ndoms == 0 && k < c->ndomains; k++)
		doms[k] = c->domains[k];
	if (ndoms == 0)
		ndoms = c->ndomains;
	if (cli_become_user(c) != 0) {
		free(doms);
		return 2;
	}
	str_fmt_cut(d.servers, sizeof(d.servers), "%s",
	    c->dns_servers && *c->dns_servers ? c->dns_servers
					      : "of /etc/resolv.conf");
	if ((d.res = cli_resolver_new(c, DR_DNS_TIMEOUT_MS)) == NULL) {
		free(doms);
		return 2;
	}
	d.ans = xmalloc(sizeof(*d.ans));

	if (dr_lookup(&d, "dns", DNS_Q_A, c->hostname))
		dr_add(&d, DR_OK, "dns", NULL, "the DNS server %s answers",
		    d.servers);
	dr_check_address(&d, address);
	for (k = 0; k < ndoms; k++)
		dr_check_mx(&d, doms[k]);
	dr_check_ptr(&d);
	dr_check_helo(&d);
	for (k = 0; k < ndoms; k++)
		dr_check_spf(&d, doms[k]);
	for (k = 0; k < ndoms; k++)
		dr_check_dkim(&d, doms[k]);
	for (k = 0; k < ndoms; k++)
		dr_check_dmarc(&d, doms[k]);
	for (k = 0; k < ndoms; k++)
		dr_check_tlsrpt(&d, doms[k]);
	for (k = 0; k < ndoms; k++)
		dr_check_mtasts(&d, doms[k]);
	dr_check_cert(&d);
	dr_check_acme(&d);
	dr_check_state_dir(&d);
	dr_check_queue(&d);
	dr_check_port(&d);

	if (d.json)
		dr_print_json(&d);
	cli_resolver_free(d.res);
	free(d.ans);
	free(d.items);
	free(doms);
	return d.worst == DR_OK ? 0 : d.worst == DR_WARN ? 1 : 2;
}
