/*
 * dest: the destination pool of remote delivery.  See dest.h for what a
 * destination is; remote.c drives the connections.
 *
 * Destinations live in a hash table of REMOTE_BUCKETS chains, keyed by
 * the lower-case domain, "" for the smarthost, or REMOTE_LMTP_KEY and the
 * LMTP target.  A destination exists while it has a waiting job, a
 * connection or a DNS query; dest_settle() frees it when it has none.
 *
 * DNS cache: the last DNS_OK answer is kept REMOTE_DNS_TTL_MS and used by
 * every new connection until then; a DNS failure fails every waiting job
 * at once and is not kept.  An LMTP unix socket needs no DNS: one host
 * with one AF_UNIX address, kept for the life of the destination.
 *
 * RFC 5321 5.1: an MX host with an address at which this server listens
 * (a wildcard listener: any interface address, read once at remote_new(),
 * or loopback) is this server; it and every less preferred host are
 * dropped from the answer, and when none is left the mail loops (550
 * 5.4.6 for a domain, 451 4.4.6 for a smarthost: a setting to fix).
 *
 * Pace (queue/slowdown.h, docs/queue.md): a destination opens at most
 * d->slow.limit connections (max_per_dest at rest) and none while a
 * pause runs; ev_slow wakes it when the pause ends.  An idle destination
 * that is not at rest stays in the table (ev_slow then fires when it may
 * be forgotten), so a receiver that asked to slow down is not hit at full
 * speed again by the next message that happens to find it idle.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <event2/event.h>

#include "util/util.h"
#include "deliver/dest.h"
#include "deliver/dns.h"
#include "deliver/remote.h"
#include "deliver/remote_int.h"
#include "deliver/target.h"

#define REMOTE_DNS_TTL_MS (60 * 1000)
/* ms of pause still to run past which waiting jobs go back to the
   queue: from the seventh slow-down signal without a delivery in
   between (pauses of 1, 2, 4 ... 64 s) */
#define DEST_SLOW_HOLD_MS (60u * 1000u)

/* ======================================================================
 * Destinations
 * ====================================================================== */

static unsigned
dest_hash(const char *k)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (; *k != '\0'; k++)
		h = (h ^ (unsigned char)*k) * 16777619u;
	return h % REMOTE_BUCKETS;
}

struct rdest *
dest_get(struct remote *r, const char *key)
{
	unsigned h = dest_hash(key);
	struct rdest *d;

	for (d = r->buckets[h]; d != NULL; d = d->next)
		if (strcmp(d->key, key) == 0)
			return d;
	d = xcalloc(1, sizeof(*d));
	d->r = r;
	d->key = xstrdup(key);
	d->lmtp = strncmp(key, REMOTE_LMTP_KEY, strlen(REMOTE_LMTP_KEY)) == 0;
	d->smarthost = !d->lmtp && r->sm_query != NULL;
	if (d->lmtp) {
		/* remote_deliver checked the target with target_lmtp_parse */
		struct target t;

		if (target_lmtp_parse(key + strlen(REMOTE_LMTP_KEY), &t) != 0)
			t.query[0] = t.unix_path[0] = '\0';
		d->port = t.port;
		if (t.unix_path[0] != '\0')
			d->lmtp_unix = xstrdup(t.unix_path);
		d->query = xstrdup(t.query);
	} else {
		d->query = xstrdup(d->smarthost ? r->sm_query : key);
		d->port = d->smarthost ? r->sm_port : r->port;
	}
	jobq_init(&d->wait);
	/* a domain may have its own maximum; the smarthost and LMTP
	   servers take the default */
	slowdown_init(&d->slow,
	    d->smarthost || d->lmtp
		? r->max_per_dest
		: slowdown_conf_find(r->dest_conc, key, r->max_per_dest));
	d->next = r->buckets[h];
	r->buckets[h] = d;
	return d;
}

/* Unlink and free d; its jobs and connections must be gone. */
void
dest_free(struct rdest *d)
{
	struct rdest **pp = &d->r->buckets[dest_hash(d->key)];

	while (*pp != d)
		pp = &(*pp)->next;
	*pp = d->next;
	if (d->resolving)
		(void)dns_cancel(d->r->dns, d);
	if (d->sts_asking)
		(void)mtasts_cancel(d->r->sts, d);
	free(d->sts);
	if (d->ev_slow != NULL)
		event_free(d->ev_slow);
	free(d->res);
	free(d->key);
	free(d->query);
	free(d->lmtp_unix);
	free(d);
}

/* ======================================================================
 * Is an MX host this server?  (RFC 5321 5.1)
 * ====================================================================== */

static bool
self_addr_is_any(const struct dns_addr *a)
{
	if (a->family == AF_INET)
		return a->u.v4.s_addr == htonl(INADDR_ANY);
	return IN6_IS_ADDR_UNSPECIFIED(&a->u.v6);
}

/* Every 127/8 address is this machine's on Linux, not only lo's own. */
static bool
self_addr_is_local(const struct remote *r, const struct dns_addr *a)
{
	size_t i;

	if (a->family == AF_INET && (ntohl(a->u.v4.s_addr) >> 24) == 127)
		return true;
	if (a->family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(&a->u.v6))
		return true;
	for (i = 0; i < r->nifaddrs; i++)
		if (dns_addr_eq(&r->ifaddrs[i], a))
			return true;
	return false;
}

static bool
addr_is_self(const struct remote *r, const struct dns_addr *a, uint16_t port)
{
	struct dns_addr l;
	uint16_t lport;
	size_t i;

	for (i = 0; i < r->nself; i++) {
		if (!dns_addr_from_sockaddr(&r->self[i], &l, &lport) ||
		    lport != port)
			continue;
		if (self_addr_is_any(&l)) {
			/* [::] takes IPv4 too unless IPV6_V6ONLY: assume it
			 * does */
			if ((l.family == a->family || l.family == AF_INET6) &&
			    self_addr_is_local(r, a))
				return true;
		} else if (dns_addr_eq(&l, a)) {
			return true;
		}
	}
	return false;
}

/* Our listening sockets and, for wildcard ones, this machine's addresses. */
void
dest_set_self(struct remote *r, const struct remote_conf *conf)
{
	struct ifaddrs *ifs, *i;
	struct dns_addr a;
	uint16_t port;

	for (r->nself = 0; r->nself < conf->nself && r->nself < REMOTE_SELF_MAX;
	     r->nself++)
		r->self[r->nself] = conf->self[r->nself];
	if (r->nself == 0)
		return;
	if (getifaddrs(&ifs) != 0) {
		log_warn(
		    "event=getifaddrs error=\"%s\" text=\"MX hosts on "
		    "this machine are recognised by loopback and listening "
		    "addresses only\"",
		    strerror(errno));
		return;
	}
	for (i = ifs; i != NULL && r->nifaddrs < REMOTE_IFADDR_MAX;
	     i = i->ifa_next) {
		struct sockaddr_storage ss;

		if (i->ifa_addr == NULL ||
		    (i->ifa_addr->sa_family != AF_INET &&
			i->ifa_addr->sa_family != AF_INET6))
			continue;
		memset(&ss, 0, sizeof(ss));
		memcpy(&ss, i->ifa_addr,
		    i->ifa_addr->sa_family == AF_INET
			? sizeof(struct sockaddr_in)
			: sizeof(struct sockaddr_in6));
		if (dns_addr_from_sockaddr(&ss, &a, &port))
			r->ifaddrs[r->nifaddrs++] = a;
	}
	freeifaddrs(ifs);
}

/*
 * Drop the first host that is this server and every host not more
 * preferred than it (hosts come in preference order).  Returns the hosts
 * left; *self gets the name of the one found, or stays "".
 */
static size_t
dest_drop_self(
    const struct rdest *d, struct dns_result *res, char *self, size_t selflen)
{
	size_t h, a, keep;

	self[0] = '\0';
	for (h = 0; h < res->nhosts; h++)
		for (a = 0; a < res->hosts[h].naddrs; a++)
			if (addr_is_self(
				d->r, &res->hosts[h].addrs[a], d->port))
				goto found;
	return res->nhosts;
found:
	str_fmt_cut(self, selflen, "%s", res->hosts[h].name);
	for (keep = 0; keep < res->nhosts; keep++)
		if (res->hosts[keep].preference >= res->hosts[h].preference)
			break;
	res->nhosts = keep;
	return keep;
}

/* Every waiting job gets res (the destination failed as a whole). */
void
dest_fail_waiting(
    struct rdest *d, const struct smtp_client_result *res, const char *mx)
{
	struct rjob *j;

	while ((j = jobq_pop(&d->wait)) != NULL) {
		job_set_all(j, res);
		str_fmt_cut(j->mx, sizeof(j->mx), "%s", mx);
		job_finish(d->r, j, mx, "none");
	}
}

/* What a DNS failure means for the recipients. */
static void
dest_dns_result(const struct dns_result *dr, struct smtp_client_result *res)
{
	if (dr->status == DNS_TEMP) {
		smtp_client_result_set(
		    res, SMTP_RESULT_TEMP, 451, "4.4.3", dr->text);
		return;
	}
	switch (dr->reason) {
	case DNS_REASON_NULL_MX:
		/* RFC 7505 4.2 */
		smtp_client_result_set(
		    res, SMTP_RESULT_PERM, 556, "5.1.10", dr->text);
		break;
	case DNS_REASON_NO_ADDRESS:
		smtp_client_result_set(
		    res, SMTP_RESULT_PERM, 550, "5.4.4", dr->text);
		break;
	default:
		smtp_client_result_set(
		    res, SMTP_RESULT_PERM, 550, "5.1.2", dr->text);
		break;
	}
}

/* RFC 5321 5.1: no MX that is this server, nor any less preferred. */
static void
dest_check_self(struct rdest *d)
{
	struct smtp_client_result res;
	char self[DNS_NAME_MAX + 3], name[300], text[600];
	size_t left;

	if (d->lmtp)
		return; /* a mailbox server, never our own SMTP listener */
	left = dest_drop_self(d, d->res, self, sizeof(self));

	log_sanitize(name, sizeof(name), self, strlen(self));
	if (left > 0) {
		if (self[0] != '\0')
			log_info(
			    "domain=%s mx=%s event=mx_is_self hosts_left=%zu "
			    "text=\"this MX and less preferred ones skipped\"",
			    d->key, name, left);
		return;
	}
	if (d->smarthost) {
		str_fmt_cut(text, sizeof(text),
		    "relay.smarthost %s is this "
		    "server: mail would loop; fix the setting",
		    name);
		smtp_client_result_set(
		    &res, SMTP_RESULT_TEMP, 451, "4.4.6", text);
	} else {
		str_fmt_cut(text, sizeof(text),
		    "mail for %s loops back to myself "
		    "(MX host %s is this server)",
		    d->key, name);
		smtp_client_result_set(
		    &res, SMTP_RESULT_PERM, 550, "5.4.6", text);
	}
	log_err("domain=%s mx=%s event=mail_loop text=\"%s\"",
	    d->smarthost ? "smarthost" : d->key, name, text);
	free(d->res);
	d->res = NULL;
	dest_fail_waiting(d, &res, self);
}

/* ======================================================================
 * The TLS policy of a destination: MTA-STS (RFC 8461).  DANE, when it is
 * built, comes first (RFC 8461 2): dest_tls_policy_pending() is the one
 * place that asks, dest_sts_filter() the one that acts on the MX list.
 * ====================================================================== */

static bool
dest_sts_applies(const struct rdest *d)
{
	return d->r->sts != NULL && !d->smarthost && !d->lmtp &&
	       d->key[0] != '\0' && d->key[0] != '[';
}

static void
dest_on_sts(const struct mtasts_verdict *v, void *arg)
{
	struct rdest *d = arg;
	char q[300];

	d->sts_asking = false;
	d->sts_fresh = true;
	if (v->policy) {
		if (d->sts == NULL)
			d->sts = xmalloc(sizeof(*d->sts));
		*d->sts = *v;
	} else {
		free(d->sts);
		d->sts = NULL;
	}
	if (!v->policy && v->tlsrpt_result[0] != '\0') {
		log_info("domain=%s event=tls_policy tls_policy=opportunistic "
			 "tlsrpt_result=%s why=\"%s\"",
		    d->key, v->tlsrpt_result,
		    log_quote(q, sizeof(q), v->why, strlen(v->why)));
		/* a domain-level failure: no session will count it */
		remote_tlsrpt_domain(d, NULL, v->tlsrpt_result, v->why);
	}
	dest_settle(d);
}

/*
 * True while d's TLS policy is asked for: the MX lookup waits for it.
 * A stopping ternd does not wait (the fetch is aborted: remote_stop) and
 * does not deliver without the answer: the jobs go back to the queue.
 */
static bool
dest_tls_policy_pending(struct rdest *d)
{
	struct smtp_client_result res;

	if (!dest_sts_applies(d) || d->sts_fresh)
		return false;
	if (d->r->stopping) {
		if (d->sts_asking)
			(void)mtasts_cancel(d->r->sts, d);
		d->sts_asking = false;
		smtp_client_result_set(&res, SMTP_RESULT_TEMP, 451, "4.3.2",
		    "delivery stopped: the mail system is shutting down");
		dest_fail_waiting(d, &res, "");
		return true;
	}
	if (!d->sts_asking) {
		d->sts_asking = true;
		mtasts_get(d->r->sts, d->key, dest_on_sts, d);
	}
	return true;
}

/*
 * Does d's domain use DANE: a validated MX answer with a host whose TLSA
 * answer was secure (a TLSA failure of such a host counts too: it defers
 * that host rather than letting a policy of less weight apply)?  RFC 8461
 * 2: DANE wins over MTA-STS, for the whole domain.
 */
static bool
dest_uses_dane(const struct rdest *d)
{
	size_t h;

	if (!d->r->dnssec || !d->res->secure)
		return false;
	for (h = 0; h < d->res->nhosts; h++)
		if (d->res->hosts[h].secure &&
		    (d->res->hosts[h].tlsa == DNS_TLSA_SECURE ||
			d->res->hosts[h].tlsa == DNS_TLSA_FAILED))
			return true;
	return false;
}

/*
 * MTA-STS and the MX list (RFC 8461 4.1): under enforce only the hosts
 * that match the policy are tried, and none left defers the mail (451
 * 4.7.5); under testing a mismatch is logged and the host kept.  A
 * domain that uses DANE is left alone: DANE decides for it.
 */
static void
dest_sts_filter(struct rdest *d)
{
	const struct mtasts_verdict *v = d->sts;
	bool enforce = v != NULL && v->pol.mode == STS_MODE_ENFORCE;
	struct smtp_client_result res;
	char name[300], text[600];
	size_t h, keep = 0;

	if (v == NULL || d->res == NULL || dest_uses_dane(d))
		return;
	for (h = 0; h < d->res->nhosts; h++) {
		const struct dns_host *host = &d->res->hosts[h];

		if (!sts_mx_match(&v->pol, host->name)) {
			log_sanitize(
			    name, sizeof(name), host->name, strlen(host->name));
			log_info(
			    "domain=%s mx=%s event=mta_sts status=mx_mismatch "
			    "mode=%s tls_policy=mta-sts "
			    "tlsrpt_result=validation-failure action=%s",
			    d->key, name, sts_mode_name(v->pol.mode),
			    enforce ? "skipped" : "used");
			if (enforce)
				continue;
		}
		if (keep != h)
			d->res->hosts[keep] = *host;
		keep++;
	}
	d->res->nhosts = keep;
	if (keep > 0)
		return;
	str_fmt_cut(text, sizeof(text),
	    "no MX host of %s matches its MTA-STS policy (mode enforce, "
	    "id %s): not delivered",
	    d->key, v->id);
	log_warn("domain=%s event=mta_sts status=failed tls_policy=mta-sts "
		 "tlsrpt_result=validation-failure text=\"%s\"",
	    d->key, text);
	remote_tlsrpt_domain(d, &v->pol, "validation-failure", text);
	smtp_client_result_set(&res, SMTP_RESULT_TEMP, 451, "4.7.5", text);
	free(d->res);
	d->res = NULL;
	dest_fail_waiting(d, &res, "");
}

static void
dest_on_dns(const struct dns_result *dr, void *arg)
{
	struct rdest *d = arg;
	struct smtp_client_result res;

	d->resolving = false;
	d->sts_fresh = false; /* the next lookup asks for the policy again */
	if (dr->status == DNS_OK) {
		if (d->res == NULL)
			d->res = xmalloc(sizeof(*d->res));
		*d->res = *dr;
		d->res_ms = time_now_ms();
		dest_check_self(d);
		dest_sts_filter(d);
	} else {
		free(d->res);
		d->res = NULL;
		log_debug("event=dns status=%s reason=%s",
		    dns_status_name(dr->status), dns_reason_name(dr->reason));
		dest_dns_result(dr, &res);
		dest_fail_waiting(d, &res, "");
	}
	dest_settle(d);
}

/* A unix socket needs no DNS: one host, one AF_UNIX "address", kept for
 * as long as the destination lives. */
static void
dest_unix_res(struct rdest *d)
{
	struct dns_result *res = xcalloc(1, sizeof(*res));

	res->status = DNS_OK;
	res->nhosts = 1;
	str_fmt_cut(res->hosts[0].name, sizeof(res->hosts[0].name), "unix:%s",
	    d->lmtp_unix);
	res->hosts[0].naddrs = 1;
	res->hosts[0].addrs[0].family = AF_UNIX;
	d->res = res;
	d->res_ms = time_now_ms();
}

/* ======================================================================
 * Pace: how fast a destination is sent to (queue/slowdown.h)
 * ====================================================================== */

static const char *
dest_name(const struct rdest *d)
{
	return d->key[0] != '\0' ? d->key : "smarthost";
}

static void
dest_slow_log(const struct rdest *d, const char *reason, const char *why)
{
	char q[300];

	log_info("domain=%s event=dest_throttle limit=%u max=%u pause=%us "
		 "reason=%s why=\"%s\"",
	    dest_name(d), d->slow.limit, d->slow.max,
	    (unsigned)(slowdown_pause(&d->slow) / 1000), reason,
	    log_quote(q, sizeof(q), why, strlen(why)));
}

void
dest_slow_signal(struct rdest *d, unsigned *epoch,
    const struct smtp_client_result *res, const char *mx)
{
	d->slow_reply = *res;
	str_fmt_cut(d->slow_mx, sizeof(d->slow_mx), "%s", mx);
	if (slowdown_signal(&d->slow, epoch, time_now_ms()) == SLOWDOWN_CHANGED)
		dest_slow_log(d, "slow_down", res->text);
}

void
dest_slow_success(struct rdest *d)
{
	if (slowdown_success(&d->slow) == SLOWDOWN_CHANGED)
		dest_slow_log(d, "delivered", "messages delivered again");
}

static void
dest_on_slow_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	dest_settle(arg);
}

/* Call dest_settle(d) again in ms milliseconds. */
static void
dest_arm(struct rdest *d, uint64_t ms)
{
	struct timeval tv;

	if (d->ev_slow == NULL && (d->ev_slow = evtimer_new(d->r->base,
				       dest_on_slow_timer, d)) == NULL)
		panic("remote: evtimer_new failed");
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	if (evtimer_add(d->ev_slow, &tv) != 0)
		panic("remote: cannot arm a timer");
}

/*
 * A pause runs and jobs wait.  They stay in the FIFO (the pause is not
 * an attempt of theirs) while what is left of the pause is at most
 * DEST_SLOW_HOLD_MS; past it, or when ternd stops, they are deferred
 * with the receiver's
 * last reply and go back to the queue's retry schedule, so a receiver
 * that refuses everything cannot hold them in memory, and a stopping
 * ternd does not wait for a pause.
 */
static void
dest_pause(struct rdest *d, uint64_t wait)
{
	struct smtp_client_result res;

	if (d->r->stopping) {
		smtp_client_result_set(&res, SMTP_RESULT_TEMP, 451, "4.3.2",
		    "delivery stopped: the mail system is shutting down");
		dest_fail_waiting(d, &res, "");
	} else if (wait > DEST_SLOW_HOLD_MS) {
		dest_fail_waiting(d, &d->slow_reply, d->slow_mx);
	} else {
		dest_arm(d, wait);
	}
}

/* Is d's MX answer (and the TLS policy asked with it) missing or older
 * than REMOTE_DNS_TTL_MS?  An LMTP unix socket's never is. */
static bool
dest_res_stale(const struct rdest *d)
{
	return d->lmtp_unix == NULL &&
	       (d->res == NULL ||
		   time_now_ms() - d->res_ms > REMOTE_DNS_TTL_MS);
}

/* Start connections for waiting jobs while the destination has room. */
static void
dest_kick(struct rdest *d)
{
	struct remote *r = d->r;
	uint64_t wait;

	/* idle sessions first: no new connection while one is open; but a
	 * session is not reused past the DNS answer and TLS policy it was
	 * opened under: the job then asks again, on a new connection */
	if (dest_res_stale(d))
		rconn_idle_quit(d);
	else
		while (!r->stopping && rconn_idle_take(d))
			;
	while (d->wait.head != NULL && d->nconns < d->slow.limit) {
		if (d->lmtp_unix != NULL && d->res == NULL)
			dest_unix_res(d);
		if (d->res == NULL || dest_res_stale(d)) {
			if (dest_tls_policy_pending(d))
				return;
			if (!d->resolving) {
				d->resolving = true;
				/* TLSA records for DANE: MX hosts only */
				dns_resolve_mx_dane(r->dns, d->query,
				    d->smarthost || d->lmtp ? 0 : d->port,
				    dest_on_dns, d);
			}
			return;
		}
		if ((wait = slowdown_wait(&d->slow, time_now_ms())) > 0) {
			dest_pause(d, wait);
			return;
		}
		rconn_new(d, jobq_pop(&d->wait));
	}
}

/*
 * End of every top-level callback: use free slots; free an idle d once
 * its pace is at rest or old enough to forget, else look again then.
 */
void
dest_settle(struct rdest *d)
{
	uint64_t now, when = 0;

	dest_kick(d);
	if (d->nconns != 0 || d->wait.head != NULL || d->resolving ||
	    d->sts_asking)
		return;
	now = time_now_ms();
	if (slowdown_forgettable(&d->slow, now, &when))
		dest_free(d);
	else
		dest_arm(d, when > now ? when - now : 1);
}

/*
 * `tern queue requeue`: the DNS answer kept for domain (NULL: for every
 * destination; the smarthost's too) is forgotten, so the next connection
 * there asks again.  A query under way stays: its answer is new.
 */
void
remote_forget_dns(struct remote *r, const char *domain)
{
	char key[256];
	struct rdest *d;
	size_t h;

	if (domain != NULL) {
		if (str_copy(key, sizeof(key), domain, strlen(domain)) != 0)
			return;
		str_lower(key);
	}
	for (h = 0; h < REMOTE_BUCKETS; h++)
		for (d = r->buckets[h]; d != NULL; d = d->next)
			if (d->lmtp_unix == NULL &&
			    (domain == NULL || d->smarthost ||
				strcmp(d->key, key) == 0))
				d->res_ms = 0;
}
