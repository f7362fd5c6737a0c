/*
 * dns: MX resolution for outbound delivery on c-ares, driven by libevent.
 *
 * Loop integration: c-ares reports each socket it wants watched through
 * ARES_OPT_SOCK_STATE_CB; a persistent libevent event per socket calls
 * ares_process_fd() when it is readable or writable, and one timer, re-armed
 * from ares_timeout() after every call into c-ares, drives retransmissions
 * and c-ares's own timeouts.
 *
 * A request runs in two phases.  Phase 1 asks for the MX records of the
 * domain.  NXDOMAIN is permanent; NOERROR without MX records makes the
 * domain itself the implicit MX (preference 0, RFC 5321 5.1); a set whose
 * every target is the root (RFC 7505 "MX 0 .") is a null MX, permanent
 * (a root target among real ones is dropped, with a warning).
 * Otherwise the records are sorted by preference with a random key among
 * equal preferences, duplicate targets dropped, and the first DNS_MAX_HOSTS
 * kept.  Phase 2 asks A and AAAA for every kept host at once; a target
 * that is an address literal is used as is, a CNAME is followed by the
 * resolver and c-ares's parser.  A host with no address is skipped; when
 * no host has one, the request is temporary if any lookup was, else
 * permanent.
 *
 * Invariants:
 *   - A user callback never runs inside dns_resolve_mx(): every result,
 *     even an immediate one (literal, bad name, a c-ares error reported
 *     synchronously), is delivered by the request's own event, made active
 *     and run by the loop.  The same event is the request's deadline.
 *   - req->pending counts this request's c-ares queries not yet called
 *     back.  A request is freed only when it is finished or cancelled AND
 *     pending is 0, since c-ares (1.18) cannot cancel one query: a
 *     cancelled request stays, detached from its owner, until its queries
 *     come back.  While phase 2 issues its queries it holds one extra
 *     count, so a query failing synchronously cannot end the phase early.
 *   - dns_free() cancels every request, then ares_destroy() calls back
 *     every query with ARES_EDESTRUCTION, which frees the requests.
 *
 * dns_lookup() is a request of one phase: one query of the type asked,
 * its answer copied into the request (struct dns_lookup, bounded by
 * DNS_ANSWER_RRS and DNS_ANSWER_DATA) and handed over by the same
 * deferred event, so the invariants above hold for it unchanged.
 *
 * Limits: DNS_MAX_HOSTS hosts and DNS_MAX_ADDRS addresses per host (IPv6
 * and IPv4 interleaved, IPv6 first, each family in DNS order); names over
 * DNS_NAME_MAX or with bytes that are not printable ASCII, or with a
 * backslash (c-ares's escape character) are refused; the request deadline
 * bounds the whole resolution.  At the deadline, hosts whose addresses are
 * already known are used; if none, the result is DNS_TEMP.  dns.servers
 * is at most DNS_SERVERS_MAX characters once rewritten, each server at
 * most 63.
 */
#include <arpa/inet.h>
#include <ares.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "deliver/dns.h"
#include "metrics/metrics.h"
#include "util/dnscache.h"
#include "util/util.h"

#define DNS_SERVERS_MAX 4096 /* dns.servers for c-ares, in characters */
#define DNS_TRIES	3    /* c-ares tries per server */
#define DNS_TRY_MS_MIN	50

enum req_state {
	REQ_RUNNING,   /* queries in flight or about to be */
	REQ_DONE,      /* result ready, event active: callback not yet run */
	REQ_FINISHED,  /* callback ran (or is running) */
	REQ_CANCELLED, /* owner gone: callback never runs */
};

/* What one address query said. */
enum q_outcome { Q_PENDING, Q_FOUND, Q_NODATA, Q_NXDOMAIN, Q_TEMP };

struct dns_req;

/* The argument of one c-ares query. */
struct dns_q {
	struct dns_req *req;
	int cand;	  /* index into req->cand; -1 for the MX query */
	int family;	  /* AF_INET or AF_INET6 for address queries */
	ares_callback cb; /* under DNSSEC: called by sec_cb */
};

/* A host being resolved in phase 2. */
struct dns_cand {
	char name[DNS_NAME_MAX + 3];
	unsigned pref;
	struct dns_addr v4[DNS_MAX_ADDRS], v6[DNS_MAX_ADDRS];
	size_t n4, n6;
	enum q_outcome out4, out6;
	enum dns_reason temp4, temp6;
	bool ad4, ad6;	    /* the answers were validated */
	enum dns_tlsa tlsa; /* FAILED while asked and pending */
	struct tlsa_set tlsa_set;
	struct dns_q q4, q6, qt;
};

struct dns_req {
	struct dns_req *prev, *next;
	struct dns *dns;
	dns_mx_cb cb;
	void *arg;
	struct dns_lookup *lk; /* a dns_lookup(), or NULL for MX resolution */
	enum req_state state;
	bool phase2;
	unsigned tlsa_port; /* dns_resolve_mx_dane(): ask TLSA; 0: not */
	unsigned pending;
	struct event *ev; /* deadline, then the deferred callback */
	char domain[DNS_NAME_MAX + 3];
	struct dns_q mxq;
	size_t ncand;
	struct dns_cand cand[DNS_MAX_HOSTS];
	struct dns_result res;
};

/* What a dns_lookup() request holds besides struct dns_req. */
struct dns_lookup {
	enum dns_qtype type;
	dns_answer_cb cb;
	struct dns_answer ans;
	size_t used;
	struct dns_rr rrs[DNS_ANSWER_RRS];
	unsigned char data[DNS_ANSWER_DATA];
};

struct dns_sock {
	struct dns_sock *next;
	ares_socket_t fd;
	struct event *ev;
};

struct dns {
	struct event_base *base;
	ares_channel channel;
	bool have_channel;
	char *servers; /* normalised dns.servers, NULL: system */
	unsigned timeout_ms;
	struct event *timer;
	struct dns_sock *socks;
	struct dns_req *reqs;
	unsigned inflight;	/* c-ares queries not yet called back */
	int depth;		/* > 0 while a user callback runs */
	bool free_later;	/* dns_free() called from a callback */
	struct dnscache *cache; /* dns_lookup() answers; NULL: no cache */
	unsigned cache_max_ttl; /* seconds, > 0 when cache is set */
	bool dnssec;		/* dns_set_dnssec(): AD asked and read */
};

static void dns_reschedule(struct dns *dns);
static void req_after_query(struct dns_req *req);
static void res_set(struct dns_result *res, enum dns_status st,
    enum dns_reason why, const char *fmt, ...) PRINTF_LIKE(4, 5);
static void err_set(char *err, size_t errlen, const char *fmt, ...)
    PRINTF_LIKE(3, 4);

/* ---- names and small helpers -------------------------------------------- */

const char *
dns_status_name(enum dns_status s)
{
	switch (s) {
	case DNS_OK:
		return "ok";
	case DNS_PERM:
		return "perm";
	case DNS_TEMP:
		return "temp";
	}
	return "?";
}

const char *
dns_reason_name(enum dns_reason r)
{
	static const char *const names[] = {
	    [DNS_REASON_NONE] = "none",
	    [DNS_REASON_NXDOMAIN] = "nxdomain",
	    [DNS_REASON_NULL_MX] = "null_mx",
	    [DNS_REASON_NO_ADDRESS] = "no_address",
	    [DNS_REASON_BAD_NAME] = "bad_name",
	    [DNS_REASON_SERVFAIL] = "servfail",
	    [DNS_REASON_REFUSED] = "refused",
	    [DNS_REASON_TIMEOUT] = "timeout",
	    [DNS_REASON_NETWORK] = "network",
	    [DNS_REASON_RESOLVER] = "resolver",
	};

	if ((size_t)r >= sizeof(names) / sizeof(names[0]) || names[r] == NULL)
		return "?";
	return names[r];
}

int
dns_addr_format(const struct dns_addr *a, char *out, size_t outlen)
{
	if (outlen > (size_t)INT32_MAX)
		outlen = INT32_MAX;
	if (inet_ntop(a->family, &a->u, out, (socklen_t)outlen) == NULL) {
		if (outlen > 0)
			out[0] = '\0';
		return -1;
	}
	return 0;
}

void
dns_addr_sockaddr(const struct dns_addr *a, uint16_t port,
    struct sockaddr_storage *out, socklen_t *len_out)
{
	memset(out, 0, sizeof(*out));
	if (a->family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)out;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		s6->sin6_addr = a->u.v6;
		*len_out = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)out;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		s4->sin_addr = a->u.v4;
		*len_out = sizeof(*s4);
	}
}

bool
dns_addr_from_sockaddr(
    const struct sockaddr_storage *ss, struct dns_addr *a, uint16_t *port)
{
	memset(a, 0, sizeof(*a));
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
		a->family = AF_INET;
		a->u.v4 = sin->sin_addr;
		*port = ntohs(sin->sin_port);
		return true;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
		a->family = AF_INET6;
		a->u.v6 = s6->sin6_addr;
		*port = ntohs(s6->sin6_port);
		return true;
	}
	return false;
}

bool
dns_addr_eq(const struct dns_addr *a, const struct dns_addr *b)
{
	if (a->family != b->family)
		return false;
	if (a->family == AF_INET)
		return a->u.v4.s_addr == b->u.v4.s_addr;
	return memcmp(&a->u.v6, &b->u.v6, sizeof(a->u.v6)) == 0;
}

/*
 * A name we ask about and hand to the SMTP client: 1..DNS_NAME_MAX
 * printable ASCII bytes other than space and backslash, labels of 1..63.
 * One final dot is dropped (in place).
 */
static bool
name_ok(char *name)
{
	size_t len = strlen(name), label = 0;

	if (len > 0 && name[len - 1] == '.')
		name[--len] = '\0';
	if (len == 0 || len > DNS_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c <= 0x20 || c >= 0x7f || c == '\\')
			return false;
		if (c != '.')
			label++;
		else if (label == 0)
			return false;
		else
			label = 0;
		if (label > 63)
			return false;
	}
	return true;
}

/* Parse text as an IPv4 or IPv6 address; true if it is one. */
static bool
addr_parse(const char *text, struct dns_addr *out)
{
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, text, &out->u.v4) == 1) {
		out->family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, text, &out->u.v6) == 1) {
		out->family = AF_INET6;
		return true;
	}
	return false;
}

/*
 * An RFC 5321 address literal "[a.b.c.d]" or "[IPv6:...]" (the tag in any
 * case).  liberal also takes "[...]" holding a bare IPv6 address and, for
 * MX targets, an address with no brackets at all.  Returns true and fills
 * out when text is one.
 */
static bool
literal_parse(const char *text, bool liberal, struct dns_addr *out)
{
	char inner[DNS_NAME_MAX + 3];
	size_t len = strlen(text);

	if (len < 2 || text[0] != '[' || text[len - 1] != ']')
		return liberal && addr_parse(text, out);
	if (str_copy(inner, sizeof(inner), text + 1, len - 2) != 0)
		return false;
	if (strncasecmp(inner, "IPv6:", 5) == 0) {
		if (inet_pton(AF_INET6, inner + 5, &out->u.v6) != 1)
			return false;
		out->family = AF_INET6;
		return true;
	}
	if (inet_pton(AF_INET, inner, &out->u.v4) == 1) {
		out->family = AF_INET;
		return true;
	}
	return liberal && addr_parse(inner, out);
}

/* ---- result text -------------------------------------------------------- */

/* Set status, reason and a one-line text; a text too long is cut ("..."). */
static void
res_set(struct dns_result *res, enum dns_status st, enum dns_reason why,
    const char *fmt, ...)
{
	va_list ap;

	res->status = st;
	res->reason = why;
	va_start(ap, fmt);
	str_vfmt_cut(res->text, sizeof(res->text), fmt, ap);
	va_end(ap);
}

/* The reason a failed c-ares status stands for (not NXDOMAIN/NODATA). */
static enum dns_reason
ares_reason(int status)
{
	switch (status) {
	case ARES_ESERVFAIL:
		return DNS_REASON_SERVFAIL;
	case ARES_EREFUSED:
		return DNS_REASON_REFUSED;
	case ARES_ETIMEOUT:
		return DNS_REASON_TIMEOUT;
	case ARES_ECONNREFUSED:
		return DNS_REASON_NETWORK;
	case ARES_EBADNAME:
		return DNS_REASON_BAD_NAME;
	default:
		return DNS_REASON_RESOLVER;
	}
}

static void
res_set_temp(struct dns_result *res, enum dns_reason why, const char *what,
    const char *domain)
{
	static const char *const text[] = {
	    [DNS_REASON_SERVFAIL] = "SERVFAIL from the resolver",
	    [DNS_REASON_REFUSED] = "the resolver REFUSED the query",
	    [DNS_REASON_TIMEOUT] = "no answer from the resolver in time",
	    /* c-ares 1.18 also says ECONNREFUSED when every server
	     * answered SERVFAIL or REFUSED */
	    [DNS_REASON_NETWORK] =
		"no resolver answered (unreachable, SERVFAIL or REFUSED)",
	    [DNS_REASON_RESOLVER] = "resolver error",
	};
	const char *t = NULL;

	if ((size_t)why < sizeof(text) / sizeof(text[0]))
		t = text[why];
	res_set(res, DNS_TEMP, why, "%s lookup of %s: %s", what, domain,
	    t ? t : "resolver error");
}

/* ---- c-ares sockets and timer on the libevent loop ---------------------- */

static void
sock_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns *dns = arg;
	ares_socket_t r = ARES_SOCKET_BAD, w = ARES_SOCKET_BAD;

	if (what & EV_READ)
		r = fd;
	if (what & EV_WRITE)
		w = fd;
	/* may close this socket and free this event: touch nothing after */
	ares_process_fd(dns->channel, r, w);
	dns_reschedule(dns);
}

static void
sock_drop(struct dns *dns, ares_socket_t fd)
{
	for (struct dns_sock **pp = &dns->socks; *pp != NULL;
	     pp = &(*pp)->next) {
		struct dns_sock *s = *pp;

		if (s->fd != fd)
			continue;
		*pp = s->next;
		event_free(s->ev);
		free(s);
		return;
	}
}

/* c-ares: watch fd for reading and/or writing, or stop (both 0). */
static void
sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns *dns = data;
	struct dns_sock *s;
	short what = EV_PERSIST;

	sock_drop(dns, fd);
	if (!readable && !writable)
		return;
	if (readable)
		what |= EV_READ;
	if (writable)
		what |= EV_WRITE;
	s = xcalloc(1, sizeof(*s));
	s->fd = fd;
	s->ev = event_new(dns->base, fd, what, sock_event_cb, dns);
	if (s->ev == NULL || event_add(s->ev, NULL) != 0)
		panic("event=dns_sock_watch fd=%d error=event_add", (int)fd);
	s->next = dns->socks;
	dns->socks = s;
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns *dns = arg;

	(void)fd;
	(void)what;
	ares_process_fd(dns->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	dns_reschedule(dns);
}

/* Arm the timer for c-ares's next timeout, or disarm it when idle. */
static void
dns_reschedule(struct dns *dns)
{
	struct timeval tv, *tvp;

	if (!dns->have_channel)
		return;
	tvp = ares_timeout(dns->channel, NULL, &tv);
	if (tvp == NULL) {
		if (event_del(dns->timer) != 0)
			panic("event=dns_timer error=event_del");
		return;
	}
	if (evtimer_add(dns->timer, tvp) != 0)
		panic("event=dns_timer error=evtimer_add");
}

/* ---- channel ------------------------------------------------------------ */

/* Fill err (a text too long is cut, ending in "..."). */
static void
err_set(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	str_vfmt_cut(err, errlen, fmt, ap);
	va_end(ap);
}

/*
 * One server of dns.servers: "a.b.c.d", "a.b.c.d:port", a bare IPv6
 * address, "[v6]" or "[v6]:port"; port 1..65535, default 53.  Appended
 * to out in the form c-ares takes ("a.b.c.d:53", "[v6]:53").
 */
static int
server_parse(const char *tok, size_t len, struct buf *out)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *h = tok, *port = NULL, *colon = memchr(tok, ':', len);
	size_t hlen = len;
	uint64_t pnum = 53;
	struct dns_addr a;
	bool v6 = colon != NULL && memchr(colon + 1, ':',
				       len - (size_t)(colon + 1 - tok)) != NULL;

	if (len > 0 && tok[0] == '[') {
		const char *close = memchr(tok, ']', len);

		if (close == NULL || (close + 1 < tok + len && close[1] != ':'))
			return -1;
		h = tok + 1;
		hlen = (size_t)(close - h);
		port = close + 1 < tok + len ? close + 2 : NULL;
		v6 = true;
	} else if (colon != NULL && !v6) {
		hlen = (size_t)(colon - tok);
		port = colon + 1;
	}
	if (str_copy(host, sizeof(host), h, hlen) != 0 ||
	    inet_pton(v6 ? AF_INET6 : AF_INET, host, &a.u) != 1)
		return -1;
	if (port != NULL &&
	    (str_to_u64(port, (size_t)(tok + len - port), &pnum) != 0 ||
		pnum == 0 || pnum > 65535))
		return -1;
	return buf_printf(out, v6 ? "%s[%s]:%u" : "%s%s:%u",
	    out->len > 0 ? "," : "", host, (unsigned)pnum);
}

/* dns.servers checked and rewritten for c-ares, or NULL with err filled. */
static char *
servers_normalise(const char *servers, char *err, size_t errlen)
{
	char tok[64];
	struct buf out;
	const char *p = servers;

	buf_init(&out, DNS_SERVERS_MAX);
	while (*p != '\0') {
		size_t n = 0;

		for (; *p != '\0' && *p != ','; p++)
			if (*p != ' ' && *p != '\t' && n < sizeof(tok))
				tok[n++] = *p;
		if (*p == ',')
			p++;
		if (n > 0 &&
		    (n == sizeof(tok) || server_parse(tok, n, &out) != 0)) {
			err_set(err, errlen, "dns.servers: bad server \"%.*s\"",
			    (int)n, tok);
			buf_free(&out);
			return NULL;
		}
	}
	if (out.len == 0) {
		err_set(err, errlen, "dns.servers: empty list");
		buf_free(&out);
		return NULL;
	}
	return out.data;
}

static int
channel_open(struct dns *dns, char *err, size_t errlen)
{
	struct ares_options o;
	unsigned try_ms = dns->timeout_ms / 4;
	int rc;

	memset(&o, 0, sizeof(o));
	o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
	o.timeout = (int)(try_ms < DNS_TRY_MS_MIN ? DNS_TRY_MS_MIN : try_ms);
	o.tries = DNS_TRIES;
	o.sock_state_cb = sock_state_cb;
	o.sock_state_cb_data = dns;
	rc = ares_init_options(&dns->channel, &o,
	    ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
		ARES_OPT_SOCK_STATE_CB);
	if (rc != ARES_SUCCESS) {
		err_set(err, errlen, "dns: c-ares init: %s", ares_strerror(rc));
		return -1;
	}
	dns->have_channel = true;
	if (dns->servers == NULL)
		return 0;
	rc = ares_set_servers_ports_csv(dns->channel, dns->servers);
	if (rc != ARES_SUCCESS) {
		err_set(err, errlen, "dns.servers: bad server list \"%s\": %s",
		    dns->servers, ares_strerror(rc));
		ares_destroy(dns->channel);
		dns->have_channel = false;
		return -1;
	}
	return 0;
}

struct dns *
dns_new(struct event_base *base, const char *servers, char *err, size_t errlen)
{
	struct dns *dns;
	int rc = ares_library_init(ARES_LIB_INIT_ALL);

	if (rc != ARES_SUCCESS) {
		err_set(err, errlen, "dns: c-ares library init: %s",
		    ares_strerror(rc));
		return NULL;
	}
	dns = xcalloc(1, sizeof(*dns));
	dns->base = base;
	dns->timeout_ms = DNS_TIMEOUT_MS;
	dns->timer = evtimer_new(base, timer_cb, dns);
	if (dns->timer == NULL) {
		err_set(err, errlen, "dns: evtimer_new failed");
		goto fail;
	}
	if (servers != NULL &&
	    (dns->servers = servers_normalise(servers, err, errlen)) == NULL)
		goto fail;
	if (channel_open(dns, err, errlen) != 0)
		goto fail;
	return dns;
fail:
	if (dns->timer != NULL)
		event_free(dns->timer);
	free(dns->servers);
	free(dns);
	ares_library_cleanup();
	return NULL;
}

void
dns_set_cache(
    struct dns *dns, unsigned max_ttl, size_t max_entries, size_t max_bytes)
{
	dnscache_free(dns->cache);
	dns->cache = NULL;
	dns->cache_max_ttl = max_ttl;
	if (max_ttl > 0 && max_entries > 0 && max_bytes > 0)
		dns->cache = dnscache_new(max_entries, max_bytes);
}

void
dns_cache_stats(const struct dns *dns, struct dnscache_stats *out)
{
	if (dns->cache == NULL)
		memset(out, 0, sizeof(*out));
	else
		dnscache_stats(dns->cache, out);
}

int
dns_set_timeout(struct dns *dns, unsigned timeout_ms)
{
	char err[256];
	unsigned old = dns->timeout_ms;

	if (dns->inflight > 0 || timeout_ms == 0)
		return -1;
	/* c-ares takes its timeouts at init only: make the channel again */
	ares_destroy(dns->channel);
	dns->have_channel = false;
	if (event_del(dns->timer) != 0)
		panic("event=dns_set_timeout error=event_del");
	dns->timeout_ms = timeout_ms;
	if (channel_open(dns, err, sizeof(err)) == 0)
		return 0;
	log_err("event=dns_set_timeout error=\"%s\"", err);
	dns->timeout_ms = old;
	if (channel_open(dns, err, sizeof(err)) != 0)
		panic("event=dns_set_timeout error=\"%s\"", err);
	return -1;
}

/* Is the normalised server "a.b.c.d:port" or "[v6]:port" loopback? */
static bool
server_loopback(const char *tok, size_t len)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon = memrchr(tok, ':', len);
	struct in_addr a4;
	struct in6_addr a6;

	if (colon == NULL)
		return false;
	len = (size_t)(colon - tok);
	if (len >= 2 && tok[0] == '[' && tok[len - 1] == ']') {
		if (str_copy(host, sizeof(host), tok + 1, len - 2) != 0 ||
		    inet_pton(AF_INET6, host, &a6) != 1)
			return false;
		return IN6_IS_ADDR_LOOPBACK(&a6);
	}
	if (str_copy(host, sizeof(host), tok, len) != 0 ||
	    inet_pton(AF_INET, host, &a4) != 1)
		return false;
	return (ntohl(a4.s_addr) >> 24) == 127;
}

int
dns_set_dnssec(struct dns *dns, bool on, char *err, size_t errlen)
{
	const char *p = dns->servers;

	if (!on) {
		dns->dnssec = false;
		return 0;
	}
	if (p == NULL) {
		err_set(err, errlen,
		    "dns.dnssec = yes needs dns.servers set to a local "
		    "validating resolver (e.g. unbound on 127.0.0.1)");
		return -1;
	}
	while (*p != '\0') {
		const char *end = strchr(p, ',');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);

		if (!server_loopback(p, len)) {
			err_set(err, errlen,
			    "dns.dnssec = yes: dns.servers entry %.*s is not "
			    "on loopback; the AD bit is trusted only from a "
			    "validating resolver on this machine",
			    (int)len, p);
			return -1;
		}
		p += len;
		if (*p == ',')
			p++;
	}
	dns->dnssec = true;
	return 0;
}

/* ---- request lifetime --------------------------------------------------- */

static void
req_free(struct dns_req *req)
{
	struct dns *dns = req->dns;

	if (req->prev != NULL)
		req->prev->next = req->next;
	else
		dns->reqs = req->next;
	if (req->next != NULL)
		req->next->prev = req->prev;
	event_free(req->ev);
	free(req->lk);
	free(req);
}

static void
req_maybe_free(struct dns_req *req)
{
	if ((req->state == REQ_FINISHED || req->state == REQ_CANCELLED) &&
	    req->pending == 0)
		req_free(req);
}

static void
req_cancel(struct dns_req *req)
{
	if (event_del(req->ev) != 0)
		panic("event=dns_cancel error=event_del");
	req->state = REQ_CANCELLED;
	req_maybe_free(req);
}

/* The result in req->res is final: run the callback from the loop. */
static void
req_done(struct dns_req *req)
{
	if (event_del(req->ev) != 0)
		panic("event=dns_done error=event_del");
	req->state = REQ_DONE;
	event_active(req->ev, EV_TIMEOUT, 1);
}

static void
dns_free_now(struct dns *dns)
{
	struct dns_req *req, *next;

	for (req = dns->reqs; req != NULL; req = next) {
		next = req->next;
		req_cancel(req);
	}
	/* every query is called back with ARES_EDESTRUCTION: frees the rest */
	if (dns->have_channel)
		ares_destroy(dns->channel);
	dns->have_channel = false;
	while (dns->reqs != NULL)
		req_free(dns->reqs);
	while (dns->socks != NULL)
		sock_drop(dns, dns->socks->fd);
	event_free(dns->timer);
	dnscache_free(dns->cache);
	free(dns->servers);
	free(dns);
	ares_library_cleanup();
}

void
dns_free(struct dns *dns)
{
	if (dns == NULL)
		return;
	if (dns->depth > 0) {
		dns->free_later = true;
		return;
	}
	dns_free_now(dns);
}

size_t
dns_cancel(struct dns *dns, void *arg)
{
	struct dns_req *req, *next;
	size_t n = 0;

	for (req = dns->reqs; req != NULL; req = next) {
		next = req->next;
		if (req->arg != arg ||
		    (req->state != REQ_RUNNING && req->state != REQ_DONE))
			continue;
		req_cancel(req);
		n++;
	}
	return n;
}

/* ---- issuing queries ---------------------------------------------------- */

static void mx_cb(
    void *arg, int status, int timeouts, unsigned char *abuf, int alen);
static void addr_cb(
    void *arg, int status, int timeouts, unsigned char *abuf, int alen);

/*
 * Under DNSSEC the query goes out through ares_send() (ares_query() has
 * no way to set AD), so the answer comes back raw: its RCODE and answer
 * count become the status ares_query() would have given, and the
 * query's own callback runs with the answer.
 */
static void
sec_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_q *q = arg;

	if (status == ARES_SUCCESS && (abuf == NULL || alen < 12)) {
		status = ARES_EBADRESP;
	} else if (status == ARES_SUCCESS) {
		switch (abuf[3] & 0x0F) {
		case 0:
			if (abuf[6] == 0 && abuf[7] == 0)
				status = ARES_ENODATA;
			break;
		case 1:
			status = ARES_EFORMERR;
			break;
		case 2:
			status = ARES_ESERVFAIL;
			break;
		case 3:
			status = ARES_ENOTFOUND;
			break;
		case 4:
			status = ARES_ENOTIMP;
			break;
		case 5:
			status = ARES_EREFUSED;
			break;
		default:
			status = ARES_EBADRESP;
			break;
		}
	}
	q->cb(arg, status, timeouts, abuf, alen);
}

/* Was this answer validated by the (loopback) resolver: its AD bit. */
static bool
ans_secure(const struct dns *dns, const unsigned char *abuf, int alen)
{
	return dns->dnssec && abuf != NULL && alen >= 12 &&
	       (abuf[3] & 0x20) != 0;
}

/* One c-ares query for req; its callback may run before this returns. */
static void
req_query(struct dns_req *req, const char *name, int type, struct dns_q *q,
    ares_callback cb)
{
	struct dns *dns = req->dns;
	unsigned char *qbuf = NULL;
	int qlen = 0;

	req->pending++;
	dns->inflight++;
	if (!dns->dnssec) {
		ares_query(dns->channel, name, 1 /* C_IN */, type, cb, q);
	} else if (ares_create_query(name, 1 /* C_IN */, type, 0, 1, &qbuf,
		       &qlen, 0) != ARES_SUCCESS ||
		   qlen < 12) {
		ares_free_string(qbuf);
		cb(q, ARES_EBADNAME, 0, NULL, 0);
	} else {
		qbuf[3] |= 0x20; /* AD: tell whether it validated */
		q->cb = cb;
		ares_send(dns->channel, qbuf, qlen, sec_cb, q);
		ares_free_string(qbuf);
	}
	dns_reschedule(dns);
}

static void tlsa_cb(
    void *arg, int status, int timeouts, unsigned char *abuf, int alen);

/*
 * DANE (RFC 7672 2.2): the TLSA records of a host named by a secure MX
 * answer, asked with its addresses; an address literal has none.
 */
static void
tlsa_ask(struct dns_req *req, struct dns_cand *c)
{
	char name[DNS_NAME_MAX + 32];

	if (req->tlsa_port == 0 || !req->dns->dnssec || !req->res.secure ||
	    c->out4 != Q_PENDING ||
	    str_fmt(name, sizeof(name), "_%u._tcp.%s", req->tlsa_port,
		c->name) != 0)
		return;
	c->tlsa = DNS_TLSA_FAILED; /* until it answers */
	req_query(req, name, TLSA_TYPE, &c->qt, tlsa_cb);
}

/* Ask A and AAAA for every candidate not already an address literal. */
static void
phase2_start(struct dns_req *req)
{
	req->phase2 = true;
	req->pending++; /* hold: a synchronous failure cannot end phase 2 */
	for (size_t i = 0; i < req->ncand; i++) {
		struct dns_cand *c = &req->cand[i];

		if (c->out4 == Q_PENDING)
			req_query(req, c->name, 1 /* T_A */, &c->q4, addr_cb);
		if (c->out6 == Q_PENDING)
			req_query(
			    req, c->name, 28 /* T_AAAA */, &c->q6, addr_cb);
		tlsa_ask(req, c);
	}
	req->pending--;
}

/*
 * Add a candidate host.  An MX target that is an address (literal is
 * true) needs no lookup; a name that is not a plausible host name is
 * skipped.
 */
static void
cand_add(struct dns_req *req, const char *name, unsigned pref, bool literal)
{
	struct dns_cand *c = &req->cand[req->ncand];
	struct dns_addr a;

	memset(c, 0, sizeof(*c));
	if (str_copy(c->name, sizeof(c->name), name, strlen(name)) != 0)
		return;
	c->pref = pref;
	c->q4 = (struct dns_q){req, (int)req->ncand, AF_INET, NULL};
	c->q6 = (struct dns_q){req, (int)req->ncand, AF_INET6, NULL};
	c->qt = (struct dns_q){req, (int)req->ncand, 0, NULL};
	if (literal && literal_parse(name, true, &a)) {
		/* not a host name (RFC 5321 5.1), but the intent is plain */
		if (a.family == AF_INET)
			c->v4[c->n4++] = a;
		else
			c->v6[c->n6++] = a;
		c->out4 = c->out6 = Q_FOUND;
	} else if (!name_ok(c->name)) {
		return;
	}
	req->ncand++;
}

/* ---- phase 1: MX -------------------------------------------------------- */

struct mx_ent {
	const char *host;
	unsigned pref;
	uint32_t key;
};

static int
mx_ent_cmp(const void *a, const void *b)
{
	const struct mx_ent *x = a, *y = b;

	if (x->pref != y->pref)
		return x->pref < y->pref ? -1 : 1;
	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return 0;
}

/*
 * Candidates from the MX set: drop null targets, sort by preference with
 * random order among equals (RFC 5321 5.1), drop repeated targets, keep
 * DNS_MAX_HOSTS.  Returns the number of records that are not null; the
 * number of records in all goes to total_out.
 */
static size_t
mx_select(struct dns_req *req, struct ares_mx_reply *mx, size_t *total_out)
{
	size_t n = 0, real = 0;
	struct mx_ent *ents;

	for (struct ares_mx_reply *m = mx; m != NULL; m = m->next)
		n++;
	*total_out = n;
	ents = xcalloc(n ? n : 1, sizeof(*ents));
	for (struct ares_mx_reply *m = mx; m != NULL; m = m->next) {
		if (m->host == NULL || m->host[0] == '\0' ||
		    strcmp(m->host, ".") == 0)
			continue;
		ents[real++] =
		    (struct mx_ent){m->host, m->priority, arc4random()};
	}
	qsort(ents, real, sizeof(*ents), mx_ent_cmp);
	for (size_t i = 0; i < real && req->ncand < DNS_MAX_HOSTS; i++) {
		bool dup = false;

		for (size_t j = 0; j < req->ncand && !dup; j++)
			dup = strcasecmp(req->cand[j].name, ents[i].host) == 0;
		if (!dup)
			cand_add(req, ents[i].host, ents[i].pref, true);
	}
	free(ents);
	return real;
}

/* The MX answer has records: a null MX, or candidates for phase 2. */
static void
mx_records(struct dns_req *req, struct ares_mx_reply *mx)
{
	size_t total, real = mx_select(req, mx, &total);

	if (real == 0) {
		res_set(&req->res, DNS_PERM, DNS_REASON_NULL_MX,
		    "null MX (RFC 7505): %s accepts no mail", req->domain);
		return;
	}
	if (real < total) {
		/* RFC 7505 3: a null MX must be alone; use the others */
		char dom[128];

		log_sanitize(
		    dom, sizeof(dom), req->domain, strlen(req->domain));
		log_warn(
		    "event=dns_mx domain=%s warning=null_mx_with_others", dom);
	}
	if (req->ncand == 0) {
		res_set(&req->res, DNS_PERM, DNS_REASON_NO_ADDRESS,
		    "no MX host of %s has a usable name", req->domain);
		return;
	}
	phase2_start(req);
}

/* No MX records: the domain itself is the implicit MX (RFC 5321 5.1). */
static void
mx_implicit(struct dns_req *req)
{
	req->res.implicit_mx = true;
	cand_add(req, req->domain, 0, false);
	phase2_start(req);
}

static void
mx_answer(struct dns_req *req, int status, const unsigned char *abuf, int alen)
{
	struct ares_mx_reply *mx = NULL;
	int rc;

	switch (status) {
	case ARES_SUCCESS:
		rc = ares_parse_mx_reply(abuf, alen, &mx);
		if (rc == ARES_SUCCESS && mx != NULL)
			mx_records(req, mx);
		else if (rc == ARES_SUCCESS || rc == ARES_ENODATA)
			mx_implicit(req); /* e.g. only a CNAME in the answer */
		else
			res_set_temp(
			    &req->res, DNS_REASON_RESOLVER, "MX", req->domain);
		if (mx != NULL)
			ares_free_data(mx);
		return;
	case ARES_ENODATA:
		mx_implicit(req);
		return;
	case ARES_ENOTFOUND:
		res_set(&req->res, DNS_PERM, DNS_REASON_NXDOMAIN,
		    "%s does not exist (NXDOMAIN)", req->domain);
		return;
	case ARES_EBADNAME:
		res_set(&req->res, DNS_PERM, DNS_REASON_BAD_NAME,
		    "%s is not a valid domain name", req->domain);
		return;
	default:
		res_set_temp(&req->res, ares_reason(status), "MX", req->domain);
		return;
	}
}

/*
 * Bookkeeping when a query comes back.  Returns false when its answer is
 * not wanted any more (request over, or the resolver being destroyed);
 * the request may then have been freed.
 */
static bool
query_returned(struct dns_req *req, int status)
{
	req->pending--;
	req->dns->inflight--;
	if (req->state == REQ_RUNNING && status != ARES_EDESTRUCTION &&
	    status != ARES_ECANCELLED)
		return true;
	req_maybe_free(req);
	return false;
}

static void
mx_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_q *q = arg;
	struct dns_req *req = q->req;

	(void)timeouts;
	if (!query_returned(req, status))
		return;
	if (status == ARES_SUCCESS || status == ARES_ENODATA)
		req->res.secure = ans_secure(req->dns, abuf, alen);
	mx_answer(req, status, abuf, alen);
	req_after_query(req);
}

/* ---- phase 2: addresses ------------------------------------------------- */

/* Parse an A or AAAA answer into c; at most DNS_MAX_ADDRS are kept. */
static enum q_outcome
addr_parse_answer(
    struct dns_cand *c, int family, const unsigned char *abuf, int alen)
{
	struct ares_addrttl t4[DNS_MAX_ADDRS];
	struct ares_addr6ttl t6[DNS_MAX_ADDRS];
	int n = DNS_MAX_ADDRS, rc;

	if (family == AF_INET)
		rc = ares_parse_a_reply(abuf, alen, NULL, t4, &n);
	else
		rc = ares_parse_aaaa_reply(abuf, alen, NULL, t6, &n);
	if (rc == ARES_ENODATA || (rc == ARES_SUCCESS && n <= 0))
		return Q_NODATA;
	if (rc != ARES_SUCCESS)
		return Q_TEMP;
	for (int i = 0; i < n && i < DNS_MAX_ADDRS; i++) {
		struct dns_addr *a =
		    family == AF_INET ? &c->v4[c->n4++] : &c->v6[c->n6++];

		memset(a, 0, sizeof(*a));
		a->family = family;
		if (family == AF_INET)
			a->u.v4 = t4[i].ipaddr;
		else
			memcpy(&a->u.v6, &t6[i].ip6addr, sizeof(a->u.v6));
	}
	return Q_FOUND;
}

static void
addr_answer(struct dns_cand *c, int family, int status,
    const unsigned char *abuf, int alen)
{
	enum q_outcome *out = family == AF_INET ? &c->out4 : &c->out6;
	enum dns_reason *why = family == AF_INET ? &c->temp4 : &c->temp6;

	switch (status) {
	case ARES_SUCCESS:
		*out = addr_parse_answer(c, family, abuf, alen);
		*why = DNS_REASON_RESOLVER;
		return;
	case ARES_ENODATA:
		*out = Q_NODATA;
		return;
	case ARES_ENOTFOUND:
	case ARES_EBADNAME:
		*out = Q_NXDOMAIN;
		return;
	default:
		*out = Q_TEMP;
		*why = ares_reason(status);
		return;
	}
}

static void
addr_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_q *q = arg;
	struct dns_req *req = q->req;

	(void)timeouts;
	if (!query_returned(req, status))
		return;
	if (q->family == AF_INET)
		req->cand[q->cand].ad4 = ans_secure(req->dns, abuf, alen);
	else
		req->cand[q->cand].ad6 = ans_secure(req->dns, abuf, alen);
	addr_answer(&req->cand[q->cand], q->family, status, abuf, alen);
	req_after_query(req);
}

/* A TLSA answer: secure records, a secure denial, insecure, or failed. */
static void
tlsa_answer(struct dns_cand *c, int status, bool ad, const unsigned char *abuf,
    int alen)
{
	switch (status) {
	case ARES_SUCCESS:
		if (tlsa_msg_parse(abuf, (size_t)alen, &c->tlsa_set) != 0)
			c->tlsa = DNS_TLSA_FAILED;
		else if (!ad)
			c->tlsa = DNS_TLSA_INSECURE;
		else if (tlsa_set_count(&c->tlsa_set) == 0)
			c->tlsa = DNS_TLSA_NONE; /* e.g. a CNAME only */
		else
			c->tlsa = DNS_TLSA_SECURE;
		return;
	case ARES_ENODATA:
	case ARES_ENOTFOUND:
		c->tlsa = ad ? DNS_TLSA_NONE : DNS_TLSA_INSECURE;
		return;
	default: /* SERVFAIL from a validating resolver: bogus, or down */
		c->tlsa = DNS_TLSA_FAILED;
		return;
	}
}

static void
tlsa_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_q *q = arg;
	struct dns_req *req = q->req;

	(void)timeouts;
	if (!query_returned(req, status))
		return;
	tlsa_answer(&req->cand[q->cand], status,
	    ans_secure(req->dns, abuf, alen), abuf, alen);
	req_after_query(req);
}

/* c's addresses into h: IPv6 and IPv4 interleaved, IPv6 first. */
static void
host_fill(struct dns_host *h, const struct dns_cand *c)
{
	size_t i4 = 0, i6 = 0;

	memset(h, 0, sizeof(*h));
	memcpy(h->name, c->name, sizeof(h->name));
	h->preference = c->pref;
	/* every family whose addresses are used came validated */
	h->secure = (c->n4 > 0 || c->n6 > 0) && (c->n4 == 0 || c->ad4) &&
		    (c->n6 == 0 || c->ad6);
	h->tlsa = c->tlsa;
	if (h->tlsa != DNS_TLSA_NOT_ASKED && !h->secure)
		h->tlsa = DNS_TLSA_INSECURE; /* RFC 7672 2.2.2 */
	if (h->tlsa == DNS_TLSA_SECURE)
		h->tlsa_set = c->tlsa_set;
	while (h->naddrs < DNS_MAX_ADDRS && (i4 < c->n4 || i6 < c->n6)) {
		if (i6 < c->n6)
			h->addrs[h->naddrs++] = c->v6[i6++];
		if (i4 < c->n4 && h->naddrs < DNS_MAX_ADDRS)
			h->addrs[h->naddrs++] = c->v4[i4++];
	}
}

/* The temporary reason of c, if it has one (a pending query at the
 * deadline is a timeout). */
static bool
cand_temp(const struct dns_cand *c, enum dns_reason *why)
{
	if (c->out6 == Q_TEMP || c->out6 == Q_PENDING) {
		*why = c->out6 == Q_TEMP ? c->temp6 : DNS_REASON_TIMEOUT;
		return true;
	}
	if (c->out4 == Q_TEMP || c->out4 == Q_PENDING) {
		*why = c->out4 == Q_TEMP ? c->temp4 : DNS_REASON_TIMEOUT;
		return true;
	}
	return false;
}

/* No host has an address: temporary if any lookup was, else permanent. */
static void
result_no_host(struct dns_req *req)
{
	struct dns_result *res = &req->res;
	const struct dns_cand *c0 = &req->cand[0];
	enum dns_reason why;

	for (size_t i = 0; i < req->ncand; i++) {
		if (cand_temp(&req->cand[i], &why)) {
			res_set_temp(res, why, "address", req->cand[i].name);
			return;
		}
	}
	if (!res->implicit_mx)
		res_set(res, DNS_PERM, DNS_REASON_NO_ADDRESS,
		    "no MX host of %s has an address", req->domain);
	else if (c0->out4 == Q_NXDOMAIN && c0->out6 == Q_NXDOMAIN)
		res_set(res, DNS_PERM, DNS_REASON_NXDOMAIN,
		    "%s does not exist (NXDOMAIN)", req->domain);
	else
		res_set(res, DNS_PERM, DNS_REASON_NO_ADDRESS,
		    "%s has no MX and no A/AAAA record", req->domain);
}

/* Phase 2 is over (or the deadline came): hosts with addresses, in order. */
static void
result_build(struct dns_req *req)
{
	struct dns_result *res = &req->res;

	res->nhosts = 0;
	for (size_t i = 0; i < req->ncand; i++) {
		const struct dns_cand *c = &req->cand[i];

		if (c->n4 + c->n6 > 0)
			host_fill(&res->hosts[res->nhosts++], c);
	}
	if (res->nhosts == 0) {
		result_no_host(req);
		return;
	}
	if (res->implicit_mx)
		res_set(res, DNS_OK, DNS_REASON_NONE,
		    "%s has no MX: its own address is used", req->domain);
	else
		res_set(res, DNS_OK, DNS_REASON_NONE, "%zu MX host%s for %s",
		    res->nhosts, res->nhosts == 1 ? "" : "s", req->domain);
}

/* After a query's answer is taken in: when none is left, we are done. */
static void
req_after_query(struct dns_req *req)
{
	if (req->state != REQ_RUNNING || req->pending > 0)
		return;
	if (req->phase2)
		result_build(req);
	req_done(req);
}

/* ---- requests ----------------------------------------------------------- */

static void
req_log(const struct dns_req *req)
{
	char dom[128];
	const struct dns_result *res = &req->res;

	log_sanitize(dom, sizeof(dom), req->domain, strlen(req->domain));
	if (req->lk != NULL) {
		log_debug("event=dns_lookup name=%s type=%d rcode=%d reason=%s "
			  "records=%zu",
		    dom, (int)req->lk->type, (int)req->lk->ans.rcode,
		    dns_reason_name(req->lk->ans.reason), req->lk->ans.n);
		return;
	}
	log_debug("event=dns_mx domain=%s status=%s reason=%s hosts=%zu "
		  "implicit=%d secure=%d",
	    dom, dns_status_name(res->status), dns_reason_name(res->reason),
	    res->nhosts, res->implicit_mx, res->secure);
}

/* A finished request in the metrics: its type, and ok or why not. */
static void
req_count(const struct dns_req *req)
{
	_Static_assert(
	    (int)DNS_Q_TXT + 1 == (int)METRICS_DNS_TXT &&
		(int)DNS_Q_PTR + 1 == (int)METRICS_DNS_PTR &&
		(int)DNS_REASON_NONE == (int)METRICS_DNSR_OK &&
		(int)DNS_REASON_RESOLVER == (int)METRICS_DNSR_RESOLVER,
	    "dns and metrics enums differ");
	if (req->lk != NULL)
		metrics_dns((enum metrics_dns_type)((int)req->lk->type + 1),
		    (enum metrics_dns_result)req->lk->ans.reason);
	else
		metrics_dns(METRICS_DNS_ROUTE,
		    (enum metrics_dns_result)req->res.reason);
}

static void
lookup_set(struct dns_lookup *lk, enum dns_rcode rc, enum dns_reason why)
{
	lk->ans.rcode = rc;
	lk->ans.reason = why;
	if (rc != DNS_ANS_OK)
		lk->ans.n = 0;
}

/* The request's event: its deadline, or the deferred callback. */
static void
req_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_req *req = arg;
	struct dns *dns = req->dns;

	(void)fd;
	(void)what;
	if (req->state == REQ_RUNNING && req->lk != NULL) {
		lookup_set(req->lk, DNS_ANS_TEMP, DNS_REASON_TIMEOUT);
	} else if (req->state == REQ_RUNNING) {
		/* the deadline: use what is known */
		if (req->phase2)
			result_build(req);
		else
			res_set_temp(
			    &req->res, DNS_REASON_TIMEOUT, "MX", req->domain);
	}
	req->state = REQ_FINISHED;
	req_log(req);
	req_count(req);
	dns->depth++;
	if (req->lk != NULL)
		req->lk->cb(&req->lk->ans, req->arg);
	else
		req->cb(&req->res, req->arg);
	dns->depth--;
	req_maybe_free(req);
	if (dns->depth == 0 && dns->free_later)
		dns_free_now(dns);
}

/* An address literal domain: one host, no DNS. */
static void
req_literal(struct dns_req *req)
{
	struct dns_result *res = &req->res;
	struct dns_host *h = &res->hosts[0];

	if (!literal_parse(req->domain, false, &h->addrs[0])) {
		res_set(res, DNS_PERM, DNS_REASON_BAD_NAME,
		    "%s is not a valid address literal", req->domain);
		return;
	}
	memcpy(h->name, req->domain, sizeof(h->name));
	h->naddrs = 1;
	res->nhosts = 1;
	res_set(
	    res, DNS_OK, DNS_REASON_NONE, "address literal %s", req->domain);
}

static struct dns_req *
req_new(struct dns *dns, dns_mx_cb cb, void *arg)
{
	struct dns_req *req = xcalloc(1, sizeof(*req));

	req->dns = dns;
	req->cb = cb;
	req->arg = arg;
	req->state = REQ_RUNNING;
	req->ev = evtimer_new(dns->base, req_event_cb, req);
	if (req->ev == NULL)
		panic("event=dns_resolve error=evtimer_new");
	req->mxq = (struct dns_q){req, -1, 0, NULL};
	req->next = dns->reqs;
	if (dns->reqs != NULL)
		dns->reqs->prev = req;
	dns->reqs = req;
	return req;
}

void
dns_resolve_mx(struct dns *dns, const char *domain, dns_mx_cb cb, void *arg)
{
	dns_resolve_mx_dane(dns, domain, 0, cb, arg);
}

void
dns_resolve_mx_dane(
    struct dns *dns, const char *domain, unsigned port, dns_mx_cb cb, void *arg)
{
	struct dns_req *req = req_new(dns, cb, arg);
	struct timeval tv = {(time_t)(dns->timeout_ms / 1000),
	    (suseconds_t)(dns->timeout_ms % 1000) * 1000};
	size_t len = strlen(domain);

	req->tlsa_port = port <= 65535 ? port : 0;
	if (str_copy(req->domain, sizeof(req->domain), domain, len) != 0) {
		memcpy(req->domain, "(too long)", sizeof("(too long)"));
		res_set(&req->res, DNS_PERM, DNS_REASON_BAD_NAME,
		    "domain longer than %d characters", DNS_NAME_MAX);
	} else if (domain[0] == '[') {
		req_literal(req);
	} else if (!name_ok(req->domain)) {
		res_set(&req->res, DNS_PERM, DNS_REASON_BAD_NAME,
		    "%s is not a valid domain name", req->domain);
	} else {
		if (evtimer_add(req->ev, &tv) != 0)
			panic("event=dns_resolve error=evtimer_add");
		req_query(req, req->domain, 15 /* T_MX */, &req->mxq, mx_cb);
		return;
	}
	req_done(req);
}

/* ---- dns_lookup: one query for the SPF evaluator ------------------------ */

/* Keep one record's octets; false when the answer's bounds are reached. */
static bool
lookup_keep(struct dns_lookup *lk, const void *p, size_t len, bool cont)
{
	struct dns_rr *rr;

	if (lk->ans.n >= DNS_ANSWER_RRS || len > sizeof(lk->data) - lk->used)
		return false;
	rr = &lk->rrs[lk->ans.n++];
	memcpy(lk->data + lk->used, p, len);
	rr->data = lk->data + lk->used;
	rr->len = len;
	rr->txt_continue = cont;
	lk->used += len;
	return true;
}

/* A name from the answer, without its final dot. */
static void
lookup_keep_name(struct dns_lookup *lk, const char *name)
{
	size_t len = strlen(name);

	if (len > 1 && name[len - 1] == '.')
		len--;
	(void)lookup_keep(lk, name, len, false);
}

static int
lookup_parse_txt(struct dns_lookup *lk, const unsigned char *abuf, int alen)
{
	struct ares_txt_ext *txt = NULL;
	int rc = ares_parse_txt_reply_ext(abuf, alen, &txt);

	if (rc != ARES_SUCCESS)
		return rc;
	for (struct ares_txt_ext *t = txt; t != NULL; t = t->next) {
		/* a record cut short could change an SPF result: not kept */
		if (!lookup_keep(lk, t->txt, t->length,
			!t->record_start && lk->ans.n > 0)) {
			lookup_set(lk, DNS_ANS_TEMP, DNS_REASON_RESOLVER);
			break;
		}
	}
	ares_free_data(txt);
	return ARES_SUCCESS;
}

static int
lookup_parse_addr(
    struct dns_lookup *lk, int family, const unsigned char *abuf, int alen)
{
	struct ares_addrttl t4[64];
	struct ares_addr6ttl t6[64];
	int n = 64, rc;

	if (family == AF_INET)
		rc = ares_parse_a_reply(abuf, alen, NULL, t4, &n);
	else
		rc = ares_parse_aaaa_reply(abuf, alen, NULL, t6, &n);
	if (rc != ARES_SUCCESS)
		return rc;
	for (int i = 0; i < n && i < 64; i++) {
		if (family == AF_INET)
			(void)lookup_keep(lk, &t4[i].ipaddr, 4, false);
		else
			(void)lookup_keep(lk, &t6[i].ip6addr, 16, false);
	}
	return ARES_SUCCESS;
}

static int
lookup_parse_mx(struct dns_lookup *lk, const unsigned char *abuf, int alen)
{
	struct ares_mx_reply *mx = NULL;
	int rc = ares_parse_mx_reply(abuf, alen, &mx);

	if (rc != ARES_SUCCESS)
		return rc;
	for (struct ares_mx_reply *m = mx; m != NULL; m = m->next)
		if (m->host != NULL)
			lookup_keep_name(lk, m->host);
	ares_free_data(mx);
	return ARES_SUCCESS;
}

/* Is name (maybe with its final dot) among the records kept? */
static bool
lookup_has_name(const struct dns_lookup *lk, const char *name)
{
	size_t len = strlen(name);

	if (len > 1 && name[len - 1] == '.')
		len--;
	for (size_t i = 0; i < lk->ans.n; i++)
		if (lk->rrs[i].len == len &&
		    strncasecmp(lk->rrs[i].data, name, len) == 0)
			return true;
	return false;
}

static int
lookup_parse_ptr(struct dns_lookup *lk, const unsigned char *abuf, int alen)
{
	/* c-ares copies an address into the hostent it makes: any will do */
	static const unsigned char none[4];
	struct hostent *h = NULL;
	int rc = ares_parse_ptr_reply(abuf, alen, none, 4, AF_INET, &h);

	if (rc != ARES_SUCCESS)
		return rc;
	/* c-ares 1.18 lists every PTR name in h_aliases, and one of them
	 * again as h_name: each name once */
	for (char **a = h->h_aliases; a != NULL && *a != NULL; a++)
		lookup_keep_name(lk, *a);
	if (h->h_name != NULL && !lookup_has_name(lk, h->h_name))
		lookup_keep_name(lk, h->h_name);
	ares_free_hostent(h);
	return ARES_SUCCESS;
}

static void
lookup_answer(
    struct dns_lookup *lk, int status, const unsigned char *abuf, int alen)
{
	int rc = status;

	if (status == ARES_SUCCESS) {
		switch (lk->type) {
		case DNS_Q_TXT:
			rc = lookup_parse_txt(lk, abuf, alen);
			break;
		case DNS_Q_A:
			rc = lookup_parse_addr(lk, AF_INET, abuf, alen);
			break;
		case DNS_Q_AAAA:
			rc = lookup_parse_addr(lk, AF_INET6, abuf, alen);
			break;
		case DNS_Q_MX:
			rc = lookup_parse_mx(lk, abuf, alen);
			break;
		case DNS_Q_PTR:
			rc = lookup_parse_ptr(lk, abuf, alen);
			break;
		}
	}
	switch (rc) {
	case ARES_SUCCESS:
		return; /* lookup_set by a parser, or OK as made */
	case ARES_ENODATA:
		lookup_set(lk, DNS_ANS_OK, DNS_REASON_NONE);
		lk->ans.n = 0;
		return;
	case ARES_ENOTFOUND:
		lookup_set(lk, DNS_ANS_NXDOMAIN, DNS_REASON_NXDOMAIN);
		return;
	case ARES_EBADNAME:
		lookup_set(lk, DNS_ANS_NXDOMAIN, DNS_REASON_BAD_NAME);
		return;
	default:
		lookup_set(lk, DNS_ANS_TEMP,
		    status == ARES_SUCCESS ? DNS_REASON_RESOLVER
					   : ares_reason(status));
		return;
	}
}

/* Seconds of the monotonic clock, the cache's time. */
static uint64_t
cache_now(void)
{
	return time_now_ms() / 1000;
}

/*
 * Keep a definite answer (records, NODATA, NXDOMAIN) for its TTL, capped
 * by dns.cache_max_ttl; temporary failures and answers the parser could
 * not keep whole (DNS_ANS_TEMP) are never stored.
 */
static void
lookup_store(struct dns_req *req, const unsigned char *abuf, int alen)
{
	struct dns *dns = req->dns;
	struct dns_lookup *lk = req->lk;
	struct dnscache_rr rrs[DNS_ANSWER_RRS];
	struct dnscache_ans ans;
	uint32_t ttl;

	if (dns->cache == NULL || lk->ans.rcode == DNS_ANS_TEMP ||
	    abuf == NULL || alen <= 0 ||
	    dnsmsg_ttl(abuf, (size_t)alen, &ttl) == DNSMSG_TTL_NONE)
		return;
	if (ttl > dns->cache_max_ttl)
		ttl = dns->cache_max_ttl;
	for (size_t i = 0; i < lk->ans.n; i++)
		rrs[i] = (struct dnscache_rr){
		    lk->rrs[i].data, lk->rrs[i].len, lk->rrs[i].txt_continue};
	ans = (struct dnscache_ans){
	    (int)lk->ans.rcode, (int)lk->ans.reason, lk->ans.n, rrs};
	(void)dnscache_put(
	    dns->cache, (int)lk->type, req->domain, cache_now(), ttl, &ans);
}

/* The answer from the cache into lk; false when there is none. */
static bool
lookup_cached(struct dns *dns, struct dns_req *req)
{
	struct dns_lookup *lk = req->lk;
	struct dnscache_ans hit;

	if (dns->cache == NULL || !dnscache_get(dns->cache, (int)lk->type,
				      req->domain, cache_now(), &hit))
		return false;
	for (size_t i = 0; i < hit.n; i++)
		(void)lookup_keep(
		    lk, hit.rrs[i].data, hit.rrs[i].len, hit.rrs[i].cont);
	lookup_set(lk, (enum dns_rcode)hit.rcode, (enum dns_reason)hit.reason);
	return true;
}

static void
lookup_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_q *q = arg;
	struct dns_req *req = q->req;

	(void)timeouts;
	if (!query_returned(req, status))
		return;
	req->lk->ans.secure = ans_secure(req->dns, abuf, alen);
	lookup_answer(req->lk, status, abuf, alen);
	if (status == ARES_SUCCESS || status == ARES_ENODATA ||
	    status == ARES_ENOTFOUND)
		lookup_store(req, abuf, alen);
	req_after_query(req);
}

void
dns_lookup(struct dns *dns, enum dns_qtype type, const char *name,
    dns_answer_cb cb, void *arg)
{
	static const int types[] = {
	    [DNS_Q_TXT] = 16,
	    [DNS_Q_A] = 1,
	    [DNS_Q_AAAA] = 28,
	    [DNS_Q_MX] = 15,
	    [DNS_Q_PTR] = 12,
	};
	struct dns_req *req = req_new(dns, NULL, arg);
	/* not zeroed whole: rrs and data are written before they are read */
	struct dns_lookup *lk = req->lk = xmalloc(sizeof(*req->lk));
	struct timeval tv = {(time_t)(dns->timeout_ms / 1000),
	    (suseconds_t)(dns->timeout_ms % 1000) * 1000};

	lk->type = type;
	lk->cb = cb;
	lk->used = 0;
	lk->ans =
	    (struct dns_answer){DNS_ANS_OK, DNS_REASON_NONE, 0, lk->rrs, false};
	lookup_set(lk, DNS_ANS_OK, DNS_REASON_NONE);
	if (str_copy(req->domain, sizeof(req->domain), name, strlen(name)) !=
		0 ||
	    !name_ok(req->domain)) {
		if (str_copy(req->domain, sizeof(req->domain), "(bad name)",
			10) != 0)
			req->domain[0] = '\0';
		lookup_set(lk, DNS_ANS_NXDOMAIN, DNS_REASON_BAD_NAME);
		req_done(req);
		return;
	}
	if (lookup_cached(dns, req)) {
		req_done(req); /* the callback still runs from the loop */
		return;
	}
	if (evtimer_add(req->ev, &tv) != 0)
		panic("event=dns_lookup error=evtimer_add");
	req_query(req, req->domain, types[type], &req->mxq, lookup_cb);
}
