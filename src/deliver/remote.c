/*
 * remote: outbound SMTP delivery, the shell around the pure client state
 * machine (smtp_client_*) on ternd's libevent loop.  See remote.h for the
 * contract; this header says how it is built.  Its pieces: this file (the
 * engine and its connections: sockets, TLS, the session, the body), job.c
 * (the jobs and their FIFOs), dest.c (the destination pool and its DNS
 * cache) and target.c (the parsers of the smarthost and LMTP targets).
 *
 * Objects:
 *   struct rjob   one remote_deliver(): a copy of the envelope, the mapped
 *                 message, the results.  It sits in exactly one place: a
 *                 destination's FIFO, a connection, or the done list
 *                 (job.c).
 *   struct rdest  one destination (a domain, "" for the smarthost, or an
 *                 LMTP server): the FIFO of waiting jobs, its connections,
 *                 the last good DNS answer (dest.c).
 *   struct rconn  one connection slot: a job and a copy of the MX list it
 *                 walks (host by host, address by address) until a session
 *                 decides the job; then the next waiting job goes over the
 *                 same session (MAIL), or it stays idle for
 *                 REMOTE_IDLE_SECS until a job comes (rconn_idle_take),
 *                 then QUIT.
 *
 * Invariants:
 *  - done callbacks never run inside the module's own processing: a
 *    finished job goes to the done list and a zero-delay event calls them,
 *    so a callback may call remote_deliver/cancel/free freely.
 *  - A destination is freed only by dest_settle() at the end of a
 *    top-level callback, when it has no connection, no waiting job and no
 *    DNS query: no caller holds a stale rdest pointer.
 *  - A connection is counted in its destination from rconn_new() to
 *    rconn_free(), whatever it is doing; so at most max_per_dest sockets per
 *    destination.  A failed session frees the slot for the next address.
 *  - A job is "decided" once any recipient got its own answer or the final
 *    dot was sent; before that, any failure moves it to the next address
 *    (the peer cannot have taken the message).  After the final dot, a
 *    lost connection is TEMP for the accepted recipients: delivery is at
 *    least once (docs/design.md, principle 1).
 *  - A REQUIRETLS message refused by a host (nothing sent: no TLS, not
 *    verified under a policy, no REQUIRETLS offered) is not decided there:
 *    QUIT, and the job goes to the next MX host; it fails with the
 *    refusal only once every host refused it (RFC 8689 4.2.1,
 *    rconn_reqtls_verdict).
 *  - Plaintext the peer sent after its 220 to STARTTLS is dropped with the
 *    plain bufferevent; the session forgets it too (smtp_client).
 *  - No 8-bit octet goes to a peer without 8BITMIME (RFC 6152 3): a
 *    message with 8-bit content gets its 7-bit plan (src/mime) when it is
 *    mapped, the session decides per peer (its 7-bit form, or 554 5.6.3
 *    before MAIL), and the body is then read from the plan, a chunk at a
 *    time, instead of from the map.  A DKIM signer added later must sign
 *    what goes out, i.e. after this choice.
 *
 * Limits: a body chunk of REMOTE_CHUNK octets is stuffed at a time and no
 * more is queued while the socket's output holds REMOTE_OUT_HIGH, so a
 * connection holds well under 1 MiB whatever the message size; unparsed
 * input stops being read at REMOTE_IN_HIGH.  A 4xx to one RCPT is that
 * recipient's TEMP result (no retry at the next MX in the same attempt);
 * an idle session is kept REMOTE_IDLE_SECS at most, and is closed at once
 * when the peer says anything or closes meanwhile.  A job that an idle
 * session took and that fails there undecided and not by a reply (the
 * peer closed the session as it was taken) is not moved to the next
 * address: it goes again to the same one, over a new connection, once.
 * Which MX hosts are this server: dest.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>

#include "metrics/metrics.h"
#include "mime/mime.h"
#include "tls/dane.h"
#include "tls/sesscache.h"
#include "tls/tls.h"
#include "tlsrpt/tlsrpt.h"
#include "util/util.h"
#include "deliver/dest.h"
#include "deliver/dns.h"
#include "deliver/job.h"
#include "deliver/mtasts.h"
#include "deliver/remote.h"
#include "deliver/reqtls.h"
#include "deliver/remote_int.h"
#include "deliver/target.h"
#include "deliver/tlspolicy.h"

#define REMOTE_CHUNK	(64 * 1024)  /* message octets stuffed at once */
#define REMOTE_OUT_HIGH (256 * 1024) /* queue no body above this */
#define REMOTE_OUT_LOW	(64 * 1024)  /* body refill below this */
#define REMOTE_IN_HIGH	(128 * 1024) /* unparsed input read at most */
#define REMOTE_CMD_OUT_MAX                                                     \
	(SMTP_CLIENT_RCPT_MAX * SMTP_CMD_LINE_PARAMS_MAX + 4096)
#define REMOTE_LABEL_MAX 400 /* "host[addr]:port" */

enum rconn_phase { PH_CONNECT, PH_SMTP, PH_TLS, PH_BODY };

struct rconn {
	struct rconn *next; /* in d->conns */
	struct rdest *d;
	struct rjob *job;      /* NULL while idle or QUIT goes out */
	bool idle;	       /* no job: waiting REMOTE_IDLE_SECS for one */
	bool reused;	       /* job taken while idle, not yet decided */
	struct dns_result res; /* the hosts this slot walks */
	size_t host, addr;     /* the address in use or next */
	unsigned gen;	       /* bumped per socket: stale-callback check */
	bool plain_retry;      /* TLS failed here: again, in plaintext */
	int fd;		       /* -1 once a TLS bufferevent owns it */
	struct event *ev_connect, *timer;
	struct bufferevent *bev;
	struct smtp_client *sc;
	enum rconn_phase phase;
	bool body_sent; /* the final dot went out */
	bool shell_err; /* the error text is ours, with the host */
	struct buf out, body;
	struct smtp_stuff stuff;
	size_t body_off;
	bool body_7bit;	 /* the body goes in its 7-bit form (RFC 6152) */
	struct buf conv; /* a chunk of that form, before stuffing */
	char ip[INET6_ADDRSTRLEN];
	char host_log[300]; /* the MX name, sanitised */
	char addr_log[INET6_ADDRSTRLEN + 10];
	char label[REMOTE_LABEL_MAX];
	char last_mx[DNS_NAME_MAX + 3]; /* last host that answered, or "" */
	struct smtp_client_result last; /* the latest failure, for TEMP */
	unsigned epoch; /* d->slow.epoch when opened (slowdown.h) */
	/* MX delivery's TLS policy for the host in use (tlspolicy.h);
	   has_pol false for the smarthost and LMTP */
	bool has_pol;
	struct tlspol pol;
	bool tls_verified;  /* this session's peer was authenticated */
	const char *tlsrpt; /* RFC 8460 result type of a TLS failure */
	bool tlsrpt_noted;  /* this session's TLS outcome was counted */
	/* RFC 8689 4.2.1: the job's REQUIRETLS refused by hosts of the MX
	   list (from job_host, where this job began), the last refusal,
	   and reqtls_next: QUIT, then the job goes to the next host */
	size_t job_host;
	unsigned reqtls_refused;
	bool reqtls_next;
	struct smtp_client_result reqtls_last;
};

static int rconn_drive(struct rconn *c);
static int rconn_try(struct rconn *c);
static int rconn_reqtls_move(struct rconn *c);
static bool rconn_sts_enforce(const struct rconn *c);
static void rconn_sts_no_tls(const struct rconn *c);
static void rconn_tlsrpt(
    struct rconn *c, enum tlsrpt_result res, const char *why);

/* ======================================================================
 * Small helpers
 * ====================================================================== */

static void
tv_set(struct timeval *tv, unsigned secs)
{
	tv->tv_sec = (time_t)secs;
	tv->tv_usec = 0;
}

char *
dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

/* Results for a job refused without a session. */
static void
deliver_refuse(struct remote *r, struct rjob *j, enum smtp_result_class cls,
    int code, const char *enh, const char *text)
{
	struct smtp_client_result res;

	smtp_client_result_set(&res, cls, code, enh, text);
	job_set_all(j, &res);
	job_finish(r, j, "none", "none");
}

static void
remote_on_done(evutil_socket_t fd, short what, void *arg)
{
	struct remote *r = arg;
	struct rjob *j;

	(void)fd;
	(void)what;
	r->firing = true;
	while (!r->free_pending && (j = jobq_pop(&r->done)) != NULL) {
		j->done(j->arg, j->results, j->nrcpts, j->mx);
		job_free(j);
	}
	r->firing = false;
	if (r->free_pending || (r->retiring && r->nconns == 0)) {
		r->free_pending = false;
		remote_free(r);
	}
}

/* ======================================================================
 * Connections: set-up and tear-down
 * ====================================================================== */

static const char *
rconn_id(const struct rconn *c)
{
	return c->job != NULL ? c->job->id : "-";
}

/* " tls_policy=dane tlsrpt_result=..." for log lines of MX sessions,
 * after their verified=; "" for the smarthost and LMTP. */
static const char *
rconn_pol_log(const struct rconn *c, char *out, size_t len)
{
	if (!c->has_pol) {
		out[0] = '\0';
		return out;
	}
	str_fmt_cut(out, len, " tls_policy=%s%s%s%s%s",
	    tlspol_source_name(c->pol.source),
	    c->pol.source == TLSPOL_SRC_OVERRIDE ? " tls_level=" : "",
	    c->pol.source == TLSPOL_SRC_OVERRIDE
		? tlspol_level_name(c->pol.level)
		: "",
	    c->tlsrpt != NULL ? " tlsrpt_result=" : "",
	    c->tlsrpt != NULL ? c->tlsrpt : "");
	return out;
}

/* " tls_policy=smarthost" on the TLS lines of a smarthost session (its
 * policy is relay.smarthost_tls), "" otherwise. */
static const char *
rconn_sm_log(const struct rconn *c)
{
	return c->d->smarthost ? " tls_policy=smarthost" : "";
}

/* A deferred result says which TLS policy the attempt ran under, for
 * `tern queue show` (the recipient's last reply) and the DSN; nothing
 * is added under plain opportunistic TLS, the default, so texts stay as
 * they were where no policy applies. */
static void
rconn_tag_result(const struct rconn *c, struct smtp_client_result *res)
{
	char t[SMTP_CLIENT_TEXT_MAX];
	size_t n = strlen(res->text);

	if (!c->has_pol || res->cls != SMTP_RESULT_TEMP ||
	    c->pol.source == TLSPOL_SRC_OPPORTUNISTIC ||
	    strstr(res->text, " [tls_policy=") != NULL)
		return;
	str_fmt_cut(t, sizeof(t), " [tls_policy=%s verified=%s]",
	    tlspol_source_name(c->pol.source), c->tls_verified ? "yes" : "no");
	if (n + strlen(t) < sizeof(res->text))
		memcpy(res->text + n, t, strlen(t) + 1);
}

/* Fill ip, addr_log, host_log and label for the address in use. */
static void
rconn_set_addr(struct rconn *c)
{
	const struct dns_host *h = &c->res.hosts[c->host];
	const struct dns_addr *a = &h->addrs[c->addr];

	if (a->family == AF_UNIX) {
		str_fmt_cut(c->ip, sizeof(c->ip), "unix");
		log_sanitize(
		    c->host_log, sizeof(c->host_log), h->name, strlen(h->name));
		str_fmt_cut(c->addr_log, sizeof(c->addr_log), "unix");
		str_fmt_cut(c->label, sizeof(c->label), "%s", c->host_log);
		return;
	}
	if (dns_addr_format(a, c->ip, sizeof(c->ip)) != 0)
		str_fmt_cut(c->ip, sizeof(c->ip), "?");
	str_fmt_cut(c->addr_log, sizeof(c->addr_log),
	    a->family == AF_INET6 ? "[%s]:%u" : "%s:%u", c->ip, c->d->port);
	log_sanitize(
	    c->host_log, sizeof(c->host_log), h->name, strlen(h->name));
	if (h->name[0] == '[') /* an address literal names itself */
		str_fmt_cut(c->label, sizeof(c->label), "%s:%u", c->host_log,
		    c->d->port);
	else
		str_fmt_cut(c->label, sizeof(c->label), "%s[%s]:%u",
		    c->host_log, c->ip, c->d->port);
}

/*
 * Free a bufferevent, maybe from inside its own callback.  Its events are
 * deleted now: the free itself waits for the callback to return, and the
 * fd may be closed and its number reused before then.
 */
static void
bev_release(struct bufferevent *bev)
{
	(void)bufferevent_disable(bev, EV_READ | EV_WRITE);
	bufferevent_free(bev);
}

static void
rconn_close_socket(struct rconn *c)
{
	if (c->ev_connect != NULL) {
		event_free(c->ev_connect);
		c->ev_connect = NULL;
	}
	if (c->bev != NULL) {
		bev_release(c->bev);
		c->bev = NULL;
	}
	if (c->fd >= 0) {
		(void)close(c->fd);
		c->fd = -1;
	}
	if (c->timer != NULL)
		(void)evtimer_del(c->timer);
	smtp_client_free(c->sc);
	c->sc = NULL;
	if (c->out.data != NULL)
		explicit_bzero(c->out.data, c->out.len);
	buf_reset(&c->out);
	c->phase = PH_CONNECT;
	c->gen++;
}

/* Close and free c; its job, if any, is the caller's. */
static void
rconn_free(struct rconn *c)
{
	struct rdest *d = c->d;
	struct rconn **pp = &d->conns;

	rconn_close_socket(c);
	if (c->timer != NULL)
		event_free(c->timer);
	buf_wipe(&c->out);
	buf_free(&c->body);
	buf_free(&c->conv);
	while (*pp != c)
		pp = &(*pp)->next;
	*pp = c->next;
	d->nconns--;
	d->r->nconns--;
	/* a retired remote goes with its last connection, from the top of
	   the loop (remote_on_done), not under its caller */
	if (d->r->retiring && d->r->nconns == 0)
		event_active(d->r->done_ev, 0, 0);
	free(c);
}

static void
rconn_advance(struct rconn *c)
{
	c->plain_retry = false;
	if (++c->addr >= c->res.hosts[c->host].naddrs) {
		c->host++;
		c->addr = 0;
	}
}

/*
 * A receiver asking to slow down: 421 (RFC 5321 3.8, "service not
 * available", what an overloaded or rate-limiting server says) or a
 * temporary 4.7.x (RFC 3463 "security or policy status": rate and
 * reputation limits).  Replies tern made up itself never count.
 */
static bool
rconn_slow_reply(const struct smtp_client_result *e)
{
	return e->remote && e->code >= 400 && e->code < 500 &&
	       (e->code == 421 || strncmp(e->enh, "4.7.", 4) == 0);
}

/* Tell the destination what this job's session said: a slow-down
 * reply to any recipient, else a delivery if any recipient got one. */
static void
rconn_feedback(struct rconn *c, const struct rjob *j)
{
	bool ok = false;
	size_t i;

	for (i = 0; i < j->nrcpts; i++) {
		if (rconn_slow_reply(&j->results[i])) {
			dest_slow_signal(
			    c->d, &c->epoch, &j->results[i], c->last_mx);
			return;
		}
		ok = ok || j->results[i].cls == SMTP_RESULT_OK;
	}
	if (ok)
		dest_slow_success(c->d);
}

/* The job is decided here: its results come from the session. */
static void
rconn_job_done(struct rconn *c)
{
	struct rjob *j = c->job;
	size_t i;

	rconn_sts_no_tls(c);

	for (i = 0; i < j->nrcpts; i++) {
		j->results[i] = *smtp_client_result(c->sc, i);
		rconn_tag_result(c, &j->results[i]);
	}
	job_set_tls(j, c->has_pol ? tlspol_source_name(c->pol.source) : NULL,
	    c->tls_verified);
	rconn_feedback(c, j);
	str_fmt_cut(j->mx, sizeof(j->mx), "%s", c->last_mx);
	c->job = NULL;
	c->reused = false;
	job_finish(c->d->r, j, c->host_log, c->addr_log);
}

/*
 * RFC 8689 4.2.1: when every MX host tried for the job refused its
 * REQUIRETLS, the job fails with the last refusal (550 5.7.10 or 5.7.30,
 * returned to the sender).  When some host failed otherwise (not
 * reached, a temporary reply, a TLS policy's own deferral), that host
 * may meet the requirement later: the job stays queued with that
 * failure, the refusals named in its text.
 */
static void
rconn_reqtls_verdict(struct rconn *c)
{
	char t[SMTP_CLIENT_TEXT_MAX];

	if (c->reqtls_refused == 0)
		return;
	if (c->reqtls_refused >= c->res.nhosts - c->job_host) {
		c->last = c->reqtls_last;
		return;
	}
	str_fmt_cut(t, sizeof(t), "%s (and REQUIRETLS refused by %u MX host%s)",
	    c->last.text, c->reqtls_refused, c->reqtls_refused == 1 ? "" : "s");
	memcpy(c->last.text, t, sizeof(c->last.text));
}

/* Every address failed: TEMP with the last error, for this job and for
 * every job waiting for the destination (unless it is only asking to
 * slow down: see below).  c is freed. */
static int
rconn_exhausted(struct rconn *c)
{
	struct rdest *d = c->d;
	struct rjob *j = c->job;
	char mx[300], text[1024];

	if (j != NULL)
		rconn_reqtls_verdict(c);
	log_sanitize(mx, sizeof(mx), c->last_mx, strlen(c->last_mx));
	log_info("id=%s mx=%s addr=none event=exhausted text=\"%s\"",
	    j != NULL ? j->id : "-", mx[0] != '\0' ? mx : "none",
	    log_quote(text, sizeof(text), c->last.text, strlen(c->last.text)));
	c->job = NULL;
	if (j != NULL) {
		rconn_tag_result(c, &c->last);
		job_set_tls(j,
		    c->has_pol ? tlspol_source_name(c->pol.source) : NULL,
		    c->tls_verified);
		job_set_all(j, &c->last);
		str_fmt_cut(j->mx, sizeof(j->mx), "%s", c->last_mx);
		job_finish(d->r, j, mx, "none");
	}
	/* a receiver that is up but asked to slow down gets the waiting
	   jobs later, at its pace (dest_kick says how long they may wait);
	   hosts that answered but refused a REQUIRETLS message are up, and
	   other mail may go there */
	if (!rconn_slow_reply(&c->last) && c->reqtls_refused == 0)
		dest_fail_waiting(d, &c->last, c->last_mx);
	rconn_free(c);
	return -1;
}

/* ======================================================================
 * Connections: TCP
 * ====================================================================== */

static int
rconn_connect_error(struct rconn *c, int err)
{
	char t[SMTP_CLIENT_TEXT_MAX];

	str_fmt_cut(t, sizeof(t), "connect to %s: %s", c->label, strerror(err));
	smtp_client_result_set(&c->last, SMTP_RESULT_TEMP, 451, "4.4.1", t);
	log_info("id=%s mx=%s addr=%s event=connect status=failed error=\"%s\"",
	    rconn_id(c), c->host_log, c->addr_log, strerror(err));
	return -1;
}

static void rconn_on_connect(evutil_socket_t fd, short what, void *arg);

/* Start connecting to the address in use: 0 in progress, -1 failed. */
static int
rconn_connect(struct rconn *c)
{
	const struct dns_addr *a = &c->res.hosts[c->host].addrs[c->addr];
	struct sockaddr_storage ss;
	socklen_t sl;
	struct timeval tv;
	int fd, e, one = 1;

	rconn_set_addr(c);
	/* a new session: its own verdict and TLS-RPT result */
	c->tls_verified = false;
	c->tlsrpt = NULL;
	if (a->family == AF_UNIX) {
		struct sockaddr_un *un = (struct sockaddr_un *)&ss;

		memset(&ss, 0, sizeof(ss));
		un->sun_family = AF_UNIX;
		if (str_copy(un->sun_path, sizeof(un->sun_path),
			c->d->lmtp_unix, strlen(c->d->lmtp_unix)) != 0)
			return rconn_connect_error(c, ENAMETOOLONG);
		sl = sizeof(*un);
	} else {
		dns_addr_sockaddr(a, c->d->port, &ss, &sl);
	}
	fd = socket(a->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return rconn_connect_error(c, errno);
	/* writes are whole batches; TLS records must not wait for ACKs */
	if (a->family != AF_UNIX)
		(void)setsockopt(
		    fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&ss, sl) != 0 &&
	    errno != EINPROGRESS) {
		e = errno;
		(void)close(fd);
		return rconn_connect_error(c, e);
	}
	c->fd = fd;
	c->gen++;
	c->phase = PH_CONNECT;
	tv_set(&tv, c->d->r->t_connect);
	c->ev_connect =
	    event_new(c->d->r->base, fd, EV_WRITE, rconn_on_connect, c);
	if (c->ev_connect == NULL || event_add(c->ev_connect, &tv) != 0) {
		rconn_close_socket(c);
		return rconn_connect_error(c, ENOMEM);
	}
	return 0;
}

/*
 * The TLS policy of the host about to be tried (tlspolicy.h).  A host
 * the policy rules out (a bogus TLSA answer, dane-only without DANE) is
 * not contacted: -1, with the reason as the last error (451 4.7.5).
 */
static int
rconn_pick_policy(struct rconn *c)
{
	const struct remote *r = c->d->r;
	char q[400], pl[160];

	c->tls_verified = false;
	c->tlsrpt = NULL;
	c->has_pol = !c->d->smarthost && !c->d->lmtp;
	if (!c->has_pol)
		return 0;
	tlspol_choose(r->tls_map, c->d->key, &c->res, c->host, r->dnssec,
	    c->d->sts != NULL ? &c->d->sts->pol : NULL, &c->pol);
	if (!c->pol.defer)
		return 0;
	c->tlsrpt = c->pol.tlsrpt;
	log_sanitize(c->host_log, sizeof(c->host_log),
	    c->res.hosts[c->host].name, strlen(c->res.hosts[c->host].name));
	/* counted for TLS-RPT too: no session, no peer address */
	c->ip[0] = '\0';
	c->tlsrpt_noted = false;
	rconn_tlsrpt(c, TLSRPT_VALIDATION_FAILURE, c->pol.why);
	str_fmt_cut(q, sizeof(q), "MX host %s: %s", c->host_log, c->pol.why);
	smtp_client_result_set(&c->last, SMTP_RESULT_TEMP, 451, "4.7.5", q);
	rconn_tag_result(c, &c->last);
	log_info("id=%s mx=%s addr=none event=tls_policy status=deferred "
		 "verified=no%s text=\"%s\"",
	    rconn_id(c), c->host_log, rconn_pol_log(c, pl, sizeof(pl)),
	    c->pol.why);
	return -1;
}

/* Connect to the next address that takes it; -1 once c is gone. */
static int
rconn_try(struct rconn *c)
{
	while (c->host < c->res.nhosts) {
		if (c->addr == 0 && rconn_pick_policy(c) != 0) {
			c->host++; /* no address of this host */
			continue;
		}
		if (rconn_connect(c) == 0)
			return 0;
		rconn_advance(c);
	}
	return rconn_exhausted(c);
}

static void rconn_on_timer(evutil_socket_t fd, short what, void *arg);

void
rconn_new(struct rdest *d, struct rjob *j)
{
	struct remote *r = d->r;
	struct rconn *c = xcalloc(1, sizeof(*c));
	char t[SMTP_CLIENT_TEXT_MAX];

	c->d = d;
	c->job = j;
	c->epoch = d->slow.epoch;
	c->res = *d->res;
	c->fd = -1;
	buf_init(&c->out, REMOTE_CMD_OUT_MAX);
	buf_init(&c->body, 2 * REMOTE_CHUNK + 16);
	buf_init(&c->conv, REMOTE_CHUNK + 4096);
	if ((c->timer = evtimer_new(r->base, rconn_on_timer, c)) == NULL)
		panic("remote: evtimer_new failed");
	str_fmt_cut(t, sizeof(t), "no address to try for %s", d->query);
	smtp_client_result_set(&c->last, SMTP_RESULT_TEMP, 451, "4.4.1", t);
	c->next = d->conns;
	d->conns = c;
	d->nconns++;
	r->nconns++;
	(void)rconn_try(c);
}

/* ======================================================================
 * Connections: the SMTP session
 * ====================================================================== */

static void rconn_on_read(struct bufferevent *bev, void *arg);
static void rconn_on_write(struct bufferevent *bev, void *arg);
static void rconn_on_event(struct bufferevent *bev, short what, void *arg);

static void
rconn_bev_setup(struct rconn *c)
{
	bufferevent_setcb(
	    c->bev, rconn_on_read, rconn_on_write, rconn_on_event, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, REMOTE_IN_HIGH);
	bufferevent_setwatermark(c->bev, EV_WRITE, REMOTE_OUT_LOW, 0);
	(void)bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void
rconn_arm(struct rconn *c, unsigned secs)
{
	struct timeval tv;

	tv_set(&tv, secs);
	if (evtimer_add(c->timer, &tv) != 0)
		panic("remote: cannot arm a timer");
}

/* The deadline for the reply awaited now. */
static void
rconn_arm_reply(struct rconn *c)
{
	const char *w = smtp_client_waiting(c->sc);
	unsigned t = c->d->r->t_command;

	if (w != NULL && strcmp(w, "end of data") == 0)
		t *= 2;
	rconn_arm(c, t);
}

/* The shell's own failure of the session (timeout, lost connection...). */
static void rconn_shell_fail(struct rconn *c, int code, const char *enh,
    const char *fmt, ...) PRINTF_LIKE(4, 5);

static void
rconn_shell_fail(
    struct rconn *c, int code, const char *enh, const char *fmt, ...)
{
	char t[SMTP_CLIENT_TEXT_MAX];
	va_list ap;

	va_start(ap, fmt);
	str_vfmt_cut(t, sizeof(t), fmt, ap);
	va_end(ap);
	c->shell_err = true;
	smtp_client_fail(c->sc, code, enh, t);
}

static int
rconn_flush(struct rconn *c)
{
	int rc = 0;

	if (c->out.len == 0)
		return 0;
	if (bufferevent_write(c->bev, c->out.data, c->out.len) != 0)
		rc = -1;
	/* the AUTH line passes through here */
	explicit_bzero(c->out.data, c->out.len);
	buf_reset(&c->out);
	return rc;
}

/* Best effort: push what is queued (a QUIT) before the socket closes. */
static void
rconn_flush_quit(struct rconn *c)
{
	struct evbuffer *o;
	size_t n;
	const char *p;

	if (c->bev == NULL || c->fd < 0 || c->phase != PH_SMTP)
		return;
	o = bufferevent_get_output(c->bev);
	n = evbuffer_get_length(o);
	if (n == 0 || n > 4096 ||
	    (p = (const char *)evbuffer_pullup(o, -1)) == NULL)
		return;
	(void)send(c->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* Did any recipient get its own answer, or could the peer have the
 * message?  Then the job is decided: no next address. */
static bool
rconn_decided(const struct rconn *c)
{
	const struct smtp_client_result *e = smtp_client_error(c->sc);
	size_t i;

	if (c->body_sent)
		return true;
	for (i = 0; i < smtp_client_nrcpts(c->sc); i++) {
		const struct smtp_client_result *res =
		    smtp_client_result(c->sc, i);

		if (res->code != e->code || res->cmd != e->cmd ||
		    strcmp(res->text, e->text) != 0)
			return true;
	}
	return false;
}

/* Remember why this session failed, for the final TEMP. */
static void
rconn_record_error(struct rconn *c)
{
	const struct smtp_client_result *e = smtp_client_error(c->sc);
	char t[SMTP_CLIENT_TEXT_MAX];
	bool four = e->code >= 400 && e->code < 500;

	if (e->remote && e->cmd != NULL && strcmp(e->cmd, "greeting") == 0)
		str_fmt_cut(t, sizeof(t),
		    "host %s refused to talk to me: %d %s%s%s", c->label,
		    e->code, e->enh, e->enh[0] != '\0' ? " " : "", e->text);
	else if (e->remote)
		str_fmt_cut(t, sizeof(t),
		    "host %s said: %d %s%s%s (in reply to %s)", c->label,
		    e->code, e->enh, e->enh[0] != '\0' ? " " : "", e->text,
		    e->cmd != NULL ? e->cmd : "?");
	else if (c->shell_err)
		str_fmt_cut(t, sizeof(t), "%s", e->text);
	else
		str_fmt_cut(t, sizeof(t), "%s: %s", c->label, e->text);
	smtp_client_result_set(&c->last, SMTP_RESULT_TEMP, four ? e->code : 451,
	    four && e->enh[0] == '4' ? e->enh : "4.4.0", t);
	if (four && e->remote) {
		c->last.remote = true;
		c->last.cmd = e->cmd;
	}
}

/*
 * The job was taken by an idle session and failed there undecided and
 * not by a reply of the peer (the connection lost, a timeout): most
 * likely the peer closed the session (its own idle timeout, a restart)
 * as it was taken.  That says nothing about the address: true, with the
 * socket closed, to connect to it again (once: reused is cleared).
 */
static bool
rconn_reuse_lost(struct rconn *c)
{
	if (!c->reused || smtp_client_error(c->sc)->remote)
		return false;
	c->reused = false;
	log_info("id=%s mx=%s addr=%s event=session_reuse status=lost",
	    rconn_id(c), c->host_log, c->addr_log);
	rconn_close_socket(c);
	return true;
}

/* FAILED: finish a decided job, or go on to the next address. */
static int
rconn_failed(struct rconn *c)
{
	char text[1024], pol[160];

	rconn_flush_quit(c);
	if (c->job == NULL) {
		rconn_free(c);
		return -1;
	}
	if (c->reqtls_next) /* the QUIT after a REQUIRETLS refusal failed */
		return rconn_reqtls_move(c);
	if (rconn_decided(c)) {
		rconn_job_done(c);
		rconn_free(c);
		return -1;
	}
	if (rconn_reuse_lost(c))
		return rconn_try(c);
	rconn_record_error(c);
	if (rconn_sts_enforce(c) && strcmp(c->last.enh, "4.7.4") == 0)
		log_info("id=%s mx=%s addr=%s event=mta_sts status=failed "
			 "mode=enforce tls_policy=mta-sts verified=no "
			 "tlsrpt_result=starttls-not-supported",
		    rconn_id(c), c->host_log, c->addr_log);
	if (rconn_slow_reply(&c->last))
		dest_slow_signal(c->d, &c->epoch, &c->last, c->last_mx);
	/* the client's "TLS is required but the peer does not offer
	   STARTTLS" (or refused it) */
	if (c->has_pol && c->pol.require_tls && c->tlsrpt == NULL &&
	    strcmp(c->last.enh, "4.7.4") == 0)
		c->tlsrpt = "starttls-not-supported";
	rconn_tag_result(c, &c->last);
	log_info("id=%s mx=%s addr=%s event=session_failed code=%d%s%s%s "
		 "text=\"%s\"",
	    rconn_id(c), c->host_log, c->addr_log, c->last.code,
	    c->has_pol ? " verified=" : "",
	    !c->has_pol	      ? ""
	    : c->tls_verified ? "yes"
			      : "no",
	    rconn_pol_log(c, pol, sizeof(pol)),
	    log_quote(text, sizeof(text), c->last.text, strlen(c->last.text)));
	rconn_close_socket(c);
	rconn_advance(c);
	return rconn_try(c);
}

/*
 * The peer answered QUIT: end TLS with a close_notify, best effort (the
 * socket is non-blocking and closes next).  OpenSSL marks the session of
 * a connection freed without one as not resumable, and the session cache
 * (tls/sesscache.h) would lose it.  The session this connection resumed
 * goes back to the cache if the peer sent none newer.
 */
static void
rconn_close_notify(struct rconn *c)
{
	SSL *ssl;

	if (c->bev == NULL || c->fd >= 0 ||
	    (ssl = bufferevent_openssl_get_ssl(c->bev)) == NULL)
		return;
	if (SSL_shutdown(ssl) < 0)
		ERR_clear_error(); /* the peer may have closed already */
	tls_sess_cache_done(c->d->r->tls_sessions, ssl);
}

/* The other connections of c's destination that carry a job. */
static unsigned
rconn_busy_others(const struct rconn *c)
{
	const struct rconn *o;
	unsigned n = 0;

	for (o = c->d->conns; o != NULL; o = o->next)
		if (o != c && o->job != NULL)
			n++;
	return n;
}

/*
 * Did the peer accept a recipient of this session's job?  Only then is
 * the session kept idle for the next job: a peer that refuses or defers
 * everything gains nothing from it, and one that serves a client a
 * session at a time would hold the next connections in its backlog.
 */
static bool
rconn_took_any(const struct rconn *c)
{
	size_t i;

	for (i = 0; i < smtp_client_nrcpts(c->sc); i++)
		if (smtp_client_result(c->sc, i)->cls == SMTP_RESULT_OK)
			return true;
	return false;
}

/*
 * DONE: the next waiting job over this session; or, when none is
 * waiting and the peer took a recipient, idle for REMOTE_IDLE_SECS; or
 * QUIT.  Also QUIT when the destination asked to slow down and the other
 * sessions already fill its lowered limit: the limit is what the
 * receiver gets, not only what new connections see.
 */
static void
rconn_txn_done(struct rconn *c)
{
	struct remote *r = c->d->r;
	struct smtp_client_conf cf;
	struct smtp_client_result res;
	struct rjob *j;
	bool took = rconn_took_any(c);

	rconn_job_done(c);
	while (rconn_busy_others(c) < c->d->slow.limit &&
	       (j = jobq_pop(&c->d->wait)) != NULL) {
		job_client_conf(r, j, &cf);
		if (smtp_client_reset_message(c->sc, &cf) == 0) {
			c->job = j;
			c->job_host = c->host;
			c->reqtls_refused = 0;
			c->body_sent = false;
			c->shell_err = false;
			return;
		}
		/* remote_deliver() checked the envelope: not reached */
		smtp_client_result_set(&res, SMTP_RESULT_PERM, 554, "5.3.0",
		    "The envelope cannot be sent");
		job_set_all(j, &res);
		job_finish(r, j, "none", "none");
	}
	if (took && !r->stopping && rconn_busy_others(c) < c->d->slow.limit) {
		c->idle = true;
		rconn_arm(c, REMOTE_IDLE_SECS);
		return;
	}
	smtp_client_quit(c->sc);
}

/* Start job j on the idle session c: 0 while c lives, -1 once freed. */
static int
rconn_idle_start(struct rconn *c, struct rjob *j)
{
	struct remote *r = c->d->r;
	struct smtp_client_conf cf;
	struct smtp_client_result res;

	job_client_conf(r, j, &cf);
	if (smtp_client_reset_message(c->sc, &cf) != 0) {
		/* remote_deliver() checked the envelope: not reached */
		smtp_client_result_set(&res, SMTP_RESULT_PERM, 554, "5.3.0",
		    "The envelope cannot be sent");
		job_set_all(j, &res);
		job_finish(r, j, "none", "none");
		return 0;
	}
	c->idle = false;
	c->reused = true;
	c->job = j;
	c->job_host = c->host;
	c->reqtls_refused = 0;
	c->body_sent = false;
	c->shell_err = false;
	return rconn_drive(c);
}

bool
rconn_idle_take(struct rdest *d)
{
	struct rconn *c;

	if (d->wait.head == NULL)
		return false;
	for (c = d->conns; c != NULL; c = c->next)
		if (c->idle && rconn_busy_others(c) < d->slow.limit) {
			(void)rconn_idle_start(c, jobq_pop(&d->wait));
			return true;
		}
	return false;
}

/* The idle session c ends: QUIT (c is freed when it is answered). */
static int
rconn_idle_end(struct rconn *c)
{
	c->idle = false;
	smtp_client_quit(c->sc);
	return rconn_drive(c);
}

void
rconn_idle_quit(struct rdest *d)
{
	struct rconn *c, *next;

	for (c = d->conns; c != NULL; c = next) {
		next = c->next;
		if (c->idle)
			(void)rconn_idle_end(c);
	}
}

/*
 * RFC 8689 4.2.1: this host does not meet the job's REQUIRETLS (no TLS,
 * not verified under a policy, no REQUIRETLS in its EHLO) and nothing of
 * the message was sent.  The RFC has the client QUIT and try the domain's
 * other MX hosts: QUIT goes out, and when the session is over
 * (rconn_reqtls_move) the job goes to the next host; rconn_exhausted()
 * decides once none is left.  False when the session decided otherwise.
 */
static bool
rconn_reqtls_refused(struct rconn *c)
{
	const struct smtp_client_result *res;
	char q[SMTP_CLIENT_TEXT_MAX + 64], t[SMTP_CLIENT_TEXT_MAX];

	if (c->job == NULL || !smtp_client_requiretls_refused(c->sc))
		return false;
	res = smtp_client_result(c->sc, 0);
	c->reqtls_last = *res;
	str_fmt_cut(t, sizeof(t), "%s (host %s)", res->text, c->host_log);
	memcpy(c->reqtls_last.text, t, sizeof(c->reqtls_last.text));
	c->reqtls_refused++;
	c->reqtls_next = true;
	log_info("id=%s mx=%s addr=%s event=requiretls status=refused enh=%s "
		 "action=%s text=\"%s\"",
	    rconn_id(c), c->host_log, c->addr_log, res->enh,
	    c->host + 1 < c->res.nhosts ? "next_host" : "none_left",
	    log_quote(q, sizeof(q), res->text, strlen(res->text)));
	smtp_client_quit(c->sc);
	return true;
}

/* After the QUIT (or its failure): the refused job to the next host. */
static int
rconn_reqtls_move(struct rconn *c)
{
	c->reqtls_next = false;
	rconn_close_socket(c);
	c->host++;
	c->addr = 0;
	c->plain_retry = false;
	return rconn_try(c);
}

static int rconn_starttls(struct rconn *c);
static int body_start(struct rconn *c);

/* One client step: 1 to go on, 0 or -1 to return it. */
static int
rconn_act(struct rconn *c, enum smtp_client_action act, bool progress)
{
	switch (act) {
	case SMTP_CLIENT_SEND:
		return 1;
	case SMTP_CLIENT_NEED_INPUT:
		if (progress || !evtimer_pending(c->timer, NULL))
			rconn_arm_reply(c);
		return 0;
	case SMTP_CLIENT_STARTTLS:
		return rconn_starttls(c);
	case SMTP_CLIENT_SEND_BODY:
		rconn_tlsrpt(c, TLSRPT_STARTTLS_NOT_SUPPORTED, NULL);
		return body_start(c);
	case SMTP_CLIENT_DONE:
		rconn_tlsrpt(c, TLSRPT_STARTTLS_NOT_SUPPORTED, NULL);
		if (!rconn_reqtls_refused(c))
			rconn_txn_done(c);
		return c->idle ? 0 : 1;
	case SMTP_CLIENT_CLOSED:
		rconn_close_notify(c);
		if (c->reqtls_next) /* QUIT after a REQUIRETLS refusal */
			return rconn_reqtls_move(c);
		rconn_free(c);
		return -1;
	case SMTP_CLIENT_FAILED:
	default:
		return rconn_failed(c);
	}
}

/*
 * Feed the session all unread input and do what it asks until it waits.
 * Returns 0 while c lives (maybe on another address: see c->gen), -1 once
 * it is freed.
 */
static int
rconn_drive(struct rconn *c)
{
	bool progress = false;
	int rc;

	do {
		struct evbuffer *in = bufferevent_get_input(c->bev);
		size_t len = evbuffer_get_length(in), used = 0;
		const char *p =
		    len > 0 ? (const char *)evbuffer_pullup(in, -1) : NULL;
		enum smtp_client_action act;

		act = smtp_client_next(
		    c->sc, p, p != NULL ? len : 0, &used, &c->out);
		if (used > 0) {
			str_fmt_cut(c->last_mx, sizeof(c->last_mx), "%s",
			    c->res.hosts[c->host].name);
			(void)evbuffer_drain(in, used);
			progress = true;
		}
		if (c->out.len > 0)
			progress = true;
		if (rconn_flush(c) != 0 && act != SMTP_CLIENT_FAILED) {
			rconn_shell_fail(c, 451, "4.3.0",
			    "cannot queue output to %s", c->label);
			act = SMTP_CLIENT_FAILED;
		}
		rc = rconn_act(c, act, progress);
	} while (rc == 1);
	return rc;
}

/* ======================================================================
 * Connections: TLS and the body
 * ====================================================================== */

/*
 * The MTA-STS verdict of c's destination (dest.c) when it is the policy
 * this host's session runs under (tlspolicy.c chose it: no override, no
 * DANE for the host), else NULL.
 */
static const struct mtasts_verdict *
rconn_sts(const struct rconn *c)
{
	return c->has_pol && c->pol.source == TLSPOL_SRC_MTA_STS ? c->d->sts
								 : NULL;
}

static bool
rconn_sts_enforce(const struct rconn *c)
{
	const struct mtasts_verdict *v = rconn_sts(c);

	return v != NULL && v->pol.mode == STS_MODE_ENFORCE;
}

/* RFC 8460 4.3's result type for a peer that did not authenticate (or a
 * handshake that failed before it could). */
static const char *
rconn_tlsrpt_verify(const struct rconn *c, const SSL *ssl)
{
	long v = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;

	if (v == X509_V_ERR_HOSTNAME_MISMATCH)
		return "certificate-host-mismatch";
	if (c->pol.dane)
		return "validation-failure";
	switch (v) {
	case X509_V_ERR_CERT_HAS_EXPIRED:
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return "certificate-expired";
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_CERT_UNTRUSTED:
		return "certificate-not-trusted";
	default:
		return "validation-failure";
	}
}

/* A session decided without TLS under a policy (testing: enforce never
 * gets this far): logged with its result-type for TLS-RPT. */
static void
rconn_sts_no_tls(const struct rconn *c)
{
	if (rconn_sts(c) == NULL || c->bev == NULL ||
	    bufferevent_openssl_get_ssl(c->bev) != NULL)
		return;
	log_info("id=%s mx=%s addr=%s event=mta_sts status=failed "
		 "mode=testing tls_policy=mta-sts verified=no "
		 "tlsrpt_result=starttls-not-supported "
		 "text=\"sent without TLS: the policy only tests\"",
	    rconn_id(c), c->host_log, c->addr_log);
}

static bool
rconn_require_tls(const struct rconn *c)
{
	const struct remote *r = c->d->r;

	if (c->has_pol)
		return c->pol.require_tls;
	return c->d->smarthost &&
	       (r->sm_tls != REMOTE_TLS_MAY || r->sm_implicit);
}

static bool
rconn_must_verify(const struct rconn *c)
{
	if (c->has_pol)
		return c->pol.dane || c->pol.verify_ca;
	return c->d->smarthost && c->d->r->sm_tls == REMOTE_TLS_VERIFY;
}

static SSL_CTX *
rconn_ctx(const struct rconn *c)
{
	const struct remote *r = c->d->r;

	/* NULL when none was made: the handshake is refused, never made
	   with the opportunistic context */
	if (rconn_sts_enforce(c))
		return r->sts_ctx;
	return c->d->smarthost && r->sm_ctx != NULL ? r->sm_ctx : r->ctx;
}

/*
 * The name the peer's certificate must match: the smarthost as the admin
 * wrote it (DNS may have led elsewhere, and DNS is not authenticated),
 * else the MX host (the address for a literal).
 */
static const char *
rconn_tls_name(const struct rconn *c)
{
	const char *name = c->res.hosts[c->host].name;

	if (c->d->smarthost)
		return c->d->r->sm_host;
	return name[0] == '[' ? c->ip : name;
}

/*
 * The session cache's policy tag of c: MX delivery (opportunistic, any
 * certificate) and each smarthost mode are tags of their own, so a
 * session never crosses from one to another.  A session made where any
 * certificate would do must never be resumed where one must verify: MTA-STS
 * enforce has a tag of its own, and DANE, when built, gets one here
 * (docs/tls-auth.md).
 */
#define RTLS_MX	       0x1u
#define RTLS_DANE      0x2u   /* | the TLSA RRset's digest << 12 */
#define RTLS_VERIFY_CA 0x4u   /* [tls_policy] verify */
#define RTLS_MTASTS    0x8u   /* MX under MTA-STS enforce: verified */
#define RTLS_SMARTHOST 0x10u  /* | enum remote_tls */
#define RTLS_IMPLICIT  0x100u /* smtps: */

static unsigned
rconn_tls_policy(const struct rconn *c)
{
	const struct remote *r = c->d->r;

	/* DANE: a session made under one TLSA RRset is never resumed under
	   another (a key rollover must not be skipped by resumption) */
	if (c->has_pol && c->pol.dane)
		return RTLS_DANE |
		       (tls_dane_tag(&c->res.hosts[c->host].tlsa_set) << 12);
	if (rconn_sts_enforce(c))
		return RTLS_MTASTS;
	if (c->has_pol && c->pol.verify_ca)
		return RTLS_VERIFY_CA;
	if (!c->d->smarthost)
		return RTLS_MX;
	return RTLS_SMARTHOST | (unsigned)r->sm_tls |
	       (r->sm_implicit ? RTLS_IMPLICIT : 0);
}

/*
 * Offer the session kept for this peer: the name its certificate is
 * checked against (also the SNI), the address, the port and the policy
 * (tls/sesscache.h); new sessions of the handshake are kept under the
 * same key.
 */
static void
rconn_tls_offer(struct rconn *c, SSL *ssl)
{
	struct tls_sess_key k = {
	    .name = rconn_tls_name(c),
	    .addr = c->ip,
	    .port = c->d->port,
	    .policy = rconn_tls_policy(c),
	};

	(void)tls_sess_cache_offer(
	    c->d->r->tls_sessions, ssl, &k, rconn_must_verify(c), time(NULL));
}

/*
 * DANE for this handshake: SNI and base domain the MX host, the
 * destination domain as a second name for DANE-TA.  When OpenSSL takes
 * none of the records, the peer cannot be authenticated: TLS stays
 * mandatory (RFC 7672 2.2), unauthenticated.
 */
static int
rconn_dane_setup(struct rconn *c, SSL *ssl, const char **why)
{
	int n = tls_dane_setup(ssl, c->res.hosts[c->host].name, c->d->key,
	    &c->res.hosts[c->host].tlsa_set, why);

	if (n < 0)
		return -1;
	if (n == 0)
		c->pol.dane = false;
	return 0;
}

/* A client TLS bufferevent over c->fd, handshaking; -1 with why set. */
static int
rconn_tls_start(struct rconn *c, const char **why)
{
	SSL_CTX *ctx = rconn_ctx(c);
	SSL *ssl;

	if (ctx == NULL) {
		*why = "no TLS client context";
		return -1;
	}
	if ((ssl = SSL_new(ctx)) == NULL) {
		*why = "SSL_new";
		return -1;
	}
	if (tls_client_set_host(ssl, rconn_tls_name(c)) != 0) {
		SSL_free(ssl);
		*why = "cannot set the server name";
		return -1;
	}
	if (c->has_pol && c->pol.dane && rconn_dane_setup(c, ssl, why) != 0) {
		SSL_free(ssl);
		return -1;
	}
	rconn_tls_offer(c, ssl);
	c->bev = bufferevent_openssl_socket_new(c->d->r->base, c->fd, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		SSL_free(ssl);
		*why = "bufferevent_openssl_socket_new";
		return -1;
	}
	c->fd = -1; /* the bufferevent owns it now */
	bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	rconn_bev_setup(c);
	c->phase = PH_TLS;
	rconn_arm(c, c->d->r->t_command);
	return 0;
}

static int
rconn_starttls_fail(struct rconn *c, const char *why)
{
	ERR_clear_error();
	rconn_shell_fail(
	    c, 451, "4.7.5", "TLS with %s failed: %s", c->label, why);
	return rconn_failed(c);
}

/* The 220 to STARTTLS is in: a TLS bufferevent takes over the socket. */
static int
rconn_starttls(struct rconn *c)
{
	const char *why = NULL;

	if (evbuffer_get_length(bufferevent_get_output(c->bev)) != 0)
		return rconn_starttls_fail(c, "output pending at STARTTLS");
	if (rconn_ctx(c) == NULL)
		return rconn_starttls_fail(c, "no TLS client context");
	/* freed with its input unread: plaintext after the 220 is dropped */
	bev_release(c->bev);
	c->bev = NULL;
	if (rconn_tls_start(c, &why) != 0)
		return rconn_starttls_fail(c, why);
	return 0;
}

static int rconn_tls_failed(struct rconn *c, const char *why);
static int rconn_session_begin(struct rconn *c, bool verified);

/* Handshake done: log it with verified=yes|no, then SMTP over it. */
static int
rconn_tls_up(struct rconn *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	char desc[256], why[128], q[160], pl[160];
	bool verified = tls_peer_verified(ssl, why, sizeof(why));
	const char *dane = c->has_pol && c->pol.dane && ssl != NULL
			       ? tls_dane_authority(ssl)
			       : NULL;

	c->tls_verified = verified;
	/* MTA-STS testing: delivered all the same, the failure reported */
	if (!verified && (rconn_must_verify(c) || rconn_sts(c) != NULL))
		c->tlsrpt = rconn_tlsrpt_verify(c, ssl);
	tls_describe(ssl, desc, sizeof(desc));
	metrics_tls(METRICS_TLS_OUT, ssl != NULL ? SSL_get_version(ssl) : NULL,
	    verified ? METRICS_V_YES : METRICS_V_NO);
	log_info("id=%s mx=%s addr=%s event=tls %s tls_resumed=%s verified=%s"
		 "%s%s%s%s%s%s%s",
	    rconn_id(c), c->host_log, c->addr_log, desc,
	    SSL_session_reused(ssl) ? "yes" : "no", verified ? "yes" : "no",
	    verified ? "" : " verify_error=\"",
	    verified ? "" : log_quote(q, sizeof(q), why, strlen(why)),
	    verified ? "" : "\"", rconn_sm_log(c),
	    rconn_pol_log(c, pl, sizeof(pl)), dane != NULL ? " dane=" : "",
	    dane != NULL ? dane : "");
	/* the context aborts a smarthost's such handshake already; DANE
	   and [tls_policy] verify end here */
	if (rconn_must_verify(c) && !verified)
		return rconn_tls_failed(c, why);
	rconn_tlsrpt(c, TLSRPT_SUCCESS, NULL);
	c->phase = PH_SMTP;
	if (c->sc == NULL) /* implicit TLS: the SMTP session starts now */
		return rconn_session_begin(c, verified);
	smtp_client_tls_done(c->sc, verified);
	return rconn_drive(c);
}

/* Implicit TLS failed before any SMTP: like a refused connection. */
static int
rconn_implicit_failed(struct rconn *c, const char *why)
{
	char t[SMTP_CLIENT_TEXT_MAX];

	str_fmt_cut(
	    t, sizeof(t), "TLS handshake with %s failed: %s", c->label, why);
	smtp_client_result_set(&c->last, SMTP_RESULT_TEMP, 451, "4.7.5", t);
	rconn_close_socket(c);
	rconn_advance(c);
	return rconn_try(c);
}

/* The handshake failed: once more in plaintext unless TLS is required. */
static int
rconn_tls_failed(struct rconn *c, const char *why)
{
	char q[512], pl[160];
	const SSL *ssl =
	    c->bev != NULL ? bufferevent_openssl_get_ssl(c->bev) : NULL;

	metrics_tls_failed(METRICS_TLS_OUT);
	c->tls_verified = false;
	if (c->has_pol && c->tlsrpt == NULL &&
	    (rconn_require_tls(c) || rconn_sts(c) != NULL))
		c->tlsrpt = rconn_tlsrpt_verify(c, ssl);
	log_info("id=%s mx=%s addr=%s event=tls status=failed verified=no%s%s "
		 "error=\"%s\"",
	    rconn_id(c), c->host_log, c->addr_log, rconn_sm_log(c),
	    rconn_pol_log(c, pl, sizeof(pl)),
	    log_quote(q, sizeof(q), why, strlen(why)));
	rconn_tlsrpt(c, tlsrpt_result_of_tls_error(why), why);
	if (c->sc == NULL)
		return rconn_implicit_failed(c, why);
	if (!rconn_require_tls(c) && !c->plain_retry) {
		rconn_close_socket(c);
		c->plain_retry = true;
		if (rconn_connect(c) == 0)
			return 0;
		rconn_advance(c);
		return rconn_try(c);
	}
	c->phase = PH_SMTP;
	rconn_shell_fail(
	    c, 451, "4.7.5", "TLS handshake with %s failed: %s", c->label, why);
	return rconn_failed(c);
}

/*
 * TLS-RPT (tlsrpt.h): count this session's TLS outcome once, for MX
 * delivery only.  STARTTLS_NOT_SUPPORTED is asked at every transaction
 * step and counts only when STARTTLS was wanted and the session is still
 * plain: the peer did not offer it (a plaintext retry after a failed
 * handshake was counted as that failure).  Today's policy is always
 * no-policy-found; DANE and MTA-STS pass theirs here.
 */
/* RFC 8460 4.4's policy of c's session: DANE's TLSA records, an MTA-STS
 * policy (testing or enforce), or none (opportunistic, an override). */
static enum tlsrpt_policy
rconn_tlsrpt_policy(const struct rconn *c)
{
	if (!c->has_pol)
		return TLSRPT_POL_NONE;
	if (c->pol.source == TLSPOL_SRC_DANE)
		return TLSRPT_POL_TLSA;
	if (c->pol.source == TLSPOL_SRC_MTA_STS && c->d->sts != NULL)
		return TLSRPT_POL_STS;
	return TLSRPT_POL_NONE;
}

/* Policy-strings being written (RFC 8460 4.4): one NUL-terminated line
 * each in text, pointed at from line[]. */
struct rpt_lines {
	char text[TLSRPT_POLSTR_MAX];
	size_t off, n;
	const char *line[TLSRPT_POLSTR_N];
};

static void rpt_line(struct rpt_lines *l, const char *fmt, ...)
    PRINTF_LIKE(2, 3);

static void
rpt_line(struct rpt_lines *l, const char *fmt, ...)
{
	va_list ap;

	if (l->n >= TLSRPT_POLSTR_N || l->off >= sizeof(l->text))
		return;
	va_start(ap, fmt);
	str_vfmt_cut(l->text + l->off, sizeof(l->text) - l->off, fmt, ap);
	va_end(ap);
	l->line[l->n++] = l->text + l->off;
	l->off += strlen(l->text + l->off) + 1;
}

/* The policy-strings of MTA-STS policy sp into l; mx: its mx patterns
 * (*nmx of them). */
static void
rpt_sts_strings(const struct sts_policy *sp, struct rpt_lines *l,
    const char **mx, size_t *nmx)
{
	size_t i;

	rpt_line(l, "version: STSv1");
	rpt_line(l, "mode: %s", sts_mode_name(sp->mode));
	for (i = 0; i < sp->nmx; i++) {
		mx[i] = sp->mx[i];
		rpt_line(l, "mx: %s", sp->mx[i]);
	}
	*nmx = sp->nmx;
	rpt_line(l, "max_age: %u", (unsigned)sp->max_age);
}

/* The policy-strings of policy p for c into l; mx: the MTA-STS mx
 * patterns (*nmx of them). */
static void
rconn_tlsrpt_strings(const struct rconn *c, enum tlsrpt_policy p,
    struct rpt_lines *l, const char **mx, size_t *nmx)
{
	static const char hx[] = "0123456789abcdef";
	size_t i, k;

	*nmx = 0;
	if (p == TLSRPT_POL_STS) {
		rpt_sts_strings(&c->d->sts->pol, l, mx, nmx);
	} else if (p == TLSRPT_POL_TLSA) {
		const struct tlsa_set *ts = &c->res.hosts[c->host].tlsa_set;

		for (i = 0; i < ts->n; i++) {
			char hex[2 * TLSA_DATA_MAX + 1];

			for (k = 0; k < ts->rr[i].len; k++) {
				hex[2 * k] = hx[ts->rr[i].data[k] >> 4];
				hex[2 * k + 1] = hx[ts->rr[i].data[k] & 15];
			}
			hex[2 * k] = '\0';
			rpt_line(l, "%u %u %u %s", ts->rr[i].usage,
			    ts->rr[i].selector, ts->rr[i].mtype, hex);
		}
	}
}

static void
rconn_tlsrpt(struct rconn *c, enum tlsrpt_result res, const char *why)
{
	struct remote *r = c->d->r;
	struct tlsrpt_outcome o = {0};
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct dns_addr a;
	uint16_t port;
	char local[INET6_ADDRSTRLEN] = "";
	int fd = c->bev != NULL ? (int)bufferevent_getfd(c->bev) : c->fd;
	static struct rpt_lines lines;
	const char *mx[STS_MX_MAX];
	int k;

	if (r->tlsrpt == NULL || c->tlsrpt_noted || c->d->smarthost ||
	    c->d->lmtp)
		return;
	if (res == TLSRPT_STARTTLS_NOT_SUPPORTED &&
	    (c->plain_retry || rconn_ctx(c) == NULL || c->sc == NULL ||
		smtp_client_tls(c->sc)))
		return;
	c->tlsrpt_noted = true;
	if (fd >= 0 && getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 &&
	    dns_addr_from_sockaddr(&ss, &a, &port) &&
	    dns_addr_format(&a, local, sizeof(local)) != 0)
		local[0] = '\0';
	o.domain = c->d->key;
	o.policy = rconn_tlsrpt_policy(c);
	lines.off = lines.n = 0;
	rconn_tlsrpt_strings(c, o.policy, &lines, mx, &o.nmx_patterns);
	o.policy_strings = lines.line;
	o.npolicy_strings = lines.n;
	o.mx_patterns = mx;
	/* the policy code's own verdict (DANE, MTA-STS) when it has one */
	if (res != TLSRPT_SUCCESS && c->tlsrpt != NULL &&
	    (k = tlsrpt_result_of(c->tlsrpt, strlen(c->tlsrpt))) >= 0)
		res = (enum tlsrpt_result)k;
	o.mx_host = c->res.hosts[c->host].name;
	o.result = res;
	o.sending_ip = local;
	o.receiving_ip = c->ip;
	/* RFC 8460 4.3 receiving-mx-helo: the name its greeting or EHLO
	   reply gave, where the session got that far */
	o.receiving_helo = c->sc != NULL ? smtp_client_peer_name(c->sc) : NULL;
	o.reason = why;
	tlsrpt_record(r->tlsrpt, &o);
	log_info("id=%s mx=%s addr=%s event=tlsrpt tlsrpt_result=%s",
	    rconn_id(c), c->host_log, c->addr_log, tlsrpt_result_name(res));
}

void
remote_tlsrpt_domain(struct rdest *d, const struct sts_policy *sp,
    const char *result, const char *why)
{
	struct remote *r = d->r;
	struct tlsrpt_outcome o = {0};
	static struct rpt_lines lines;
	const char *mx[STS_MX_MAX];
	int k;

	if (r->tlsrpt == NULL || result == NULL ||
	    (k = tlsrpt_result_of(result, strlen(result))) < 0)
		return;
	o.domain = d->key;
	o.policy = TLSRPT_POL_STS;
	lines.off = lines.n = 0;
	if (sp != NULL)
		rpt_sts_strings(sp, &lines, mx, &o.nmx_patterns);
	o.policy_strings = lines.line;
	o.npolicy_strings = lines.n;
	o.mx_patterns = mx;
	o.result = (enum tlsrpt_result)k;
	o.reason = why;
	tlsrpt_record(r->tlsrpt, &o);
	log_info("domain=%s event=tlsrpt tlsrpt_result=%s", d->key,
	    tlsrpt_result_name(o.result));
}

/* The next chunk of the 7-bit form, stuffed into c->body; true at the
   end.  *rc: 0, or -1 when a buffer is full (not reached: sized). */
static bool
body_chunk_7bit(struct rconn *c, int *rc)
{
	int more;

	buf_reset(&c->conv);
	more = mime_plan_read(c->job->plan, &c->conv, REMOTE_CHUNK);
	if (more < 0 ||
	    (c->conv.len > 0 && smtp_stuff_feed(&c->stuff, c->conv.data,
				    c->conv.len, &c->body) != 0))
		*rc = -1;
	return more == 1;
}

/* Queue stuffed body until the output is full; -1 once c is gone. */
static int
body_pump(struct rconn *c)
{
	struct evbuffer *o = bufferevent_get_output(c->bev);
	const struct rjob *j = c->job;

	bool last = false;
	int rc = 0;

	while (rc == 0 && !last && evbuffer_get_length(o) < REMOTE_OUT_HIGH) {
		size_t n = j->maplen - c->body_off;

		buf_reset(&c->body);
		if (c->body_7bit) {
			last = body_chunk_7bit(c, &rc);
		} else {
			if (n > REMOTE_CHUNK)
				n = REMOTE_CHUNK;
			if (n > 0)
				rc = smtp_stuff_feed(&c->stuff,
				    j->map + c->body_off, n, &c->body);
			c->body_off += n;
			last = c->body_off == j->maplen;
		}
		/* the final dot in the same write (one TLS record) */
		if (rc == 0 && last)
			rc = smtp_stuff_finish(&c->stuff, &c->body);
		if (rc == 0 && evbuffer_add(o, c->body.data, c->body.len) != 0)
			rc = -1;
	}
	if (rc == 0 && !last) {
		rconn_arm(c, c->d->r->t_command);
		return 0;
	}
	c->phase = PH_SMTP;
	if (rc != 0) {
		rconn_shell_fail(c, 451, "4.3.0",
		    "cannot queue the message body "
		    "for %s",
		    c->label);
		return rconn_failed(c);
	}
	c->body_sent = true;
	return rconn_drive(c);
}

static int
body_start(struct rconn *c)
{
	c->phase = PH_BODY;
	c->body_off = 0;
	smtp_stuff_init(&c->stuff);
	c->body_7bit = c->job->plan != NULL && smtp_client_downgrade(c->sc);
	if (c->body_7bit) {
		mime_plan_rewind(c->job->plan);
		log_info(
		    "id=%s mx=%s addr=%s event=mime_7bit octets=%llu "
		    "text=\"the peer has no 8BITMIME: sent as 7-bit MIME\"",
		    rconn_id(c), c->host_log, c->addr_log,
		    (unsigned long long)c->job->plan->out_size);
	}
	return body_pump(c);
}

/* ======================================================================
 * Connections: libevent callbacks (top level: each ends in dest_settle)
 * ====================================================================== */

/*
 * The SMTP session over the connection: plain (c->bev NULL, made here)
 * or implicit TLS that is up (verified says how it went).
 */
static int
rconn_session_begin(struct rconn *c, bool verified)
{
	struct smtp_client_conf cf;
	struct remote *r = c->d->r;
	bool tls = c->bev != NULL;

	job_client_conf(r, c->job, &cf);
	cf.want_starttls =
	    rconn_ctx(c) != NULL && !c->plain_retry && !c->d->lmtp;
	cf.lmtp = c->d->lmtp;
	cf.tls_active = tls;
	cf.tls_verified = tls && verified;
	if (c->has_pol) {
		/* [tls_policy] none: no STARTTLS even when offered */
		cf.want_starttls = cf.want_starttls && c->pol.starttls;
		cf.require_tls = c->pol.require_tls;
	}
	/* RFC 8689 (reqtls.h) */
	cf.tls_policy = reqtls_hop_policy(c->d, c->has_pol ? &c->pol : NULL);
	if (c->d->smarthost) {
		cf.require_tls = rconn_require_tls(c);
		cf.auth_user = r->sm_user;
		cf.auth_pass = r->sm_pass;
		/* relay.smarthost_tls = encrypt: the admin named the risk */
		cf.auth_unverified_ok = r->sm_tls == REMOTE_TLS_ENCRYPT;
	}
	c->sc = smtp_client_new(&cf);
	if (!tls)
		c->bev = bufferevent_socket_new(r->base, c->fd, 0);
	if (c->sc == NULL || c->bev == NULL) {
		/* remote_new() and remote_deliver() checked the configuration
		 */
		deliver_refuse(r, c->job, SMTP_RESULT_TEMP, 451, "4.3.0",
		    "Cannot start an SMTP session");
		c->job = NULL;
		rconn_free(c);
		return -1;
	}
	if (!tls)
		rconn_bev_setup(c);
	c->phase = PH_SMTP;
	return rconn_drive(c);
}

/* Connected: SMTP, or first the TLS handshake of implicit TLS. */
static int
rconn_session_start(struct rconn *c)
{
	const char *why = NULL;

	event_free(c->ev_connect);
	c->ev_connect = NULL;
	c->body_sent = c->shell_err = c->tlsrpt_noted = false;
	log_info("id=%s mx=%s addr=%s event=connect", rconn_id(c), c->host_log,
	    c->addr_log);
	if (!(c->d->smarthost && c->d->r->sm_implicit))
		return rconn_session_begin(c, false);
	if (rconn_tls_start(c, &why) != 0)
		return rconn_tls_failed(c, why);
	return 0;
}

static void
rconn_on_connect(evutil_socket_t fd, short what, void *arg)
{
	struct rconn *c = arg;
	struct rdest *d = c->d;
	socklen_t len = sizeof(int);
	int err = 0;

	if (what & EV_TIMEOUT)
		err = ETIMEDOUT;
	else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		err = errno;
	if (err == 0) {
		(void)rconn_session_start(c);
	} else {
		(void)rconn_connect_error(c, err);
		rconn_close_socket(c);
		rconn_advance(c);
		(void)rconn_try(c);
	}
	dest_settle(d);
}

static void
rconn_on_read(struct bufferevent *bev, void *arg)
{
	struct rconn *c = arg;
	struct rdest *d = c->d;

	(void)bev;
	if (c->idle) /* the peer spoke unasked (a 421 timeout...): over */
		rconn_free(c);
	else if (c->phase == PH_SMTP)
		(void)rconn_drive(c);
	dest_settle(d);
}

static void
rconn_on_write(struct bufferevent *bev, void *arg)
{
	struct rconn *c = arg;
	struct rdest *d = c->d;

	(void)bev;
	if (c->phase == PH_BODY)
		(void)body_pump(c);
	dest_settle(d);
}

static void
rconn_ssl_error(struct rconn *c, char *out, size_t outlen)
{
	unsigned long e = bufferevent_get_openssl_error(c->bev);
	const SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	long v = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;
	size_t n;

	if (e != 0)
		ERR_error_string_n(e, out, outlen);
	else
		str_fmt_cut(out, outlen, "%s",
		    errno != 0 ? strerror(errno) : "connection closed");
	ERR_clear_error();
	/* "certificate verify failed" alone does not say what was wrong */
	n = strlen(out);
	if (v != X509_V_OK && ssl != NULL &&
	    (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) && n < outlen)
		str_fmt_cut(out + n, outlen - n, " (%s)",
		    X509_verify_cert_error_string(v));
}

/* EOF or error on the socket of c. */
static void
rconn_lost(struct rconn *c)
{
	const char *w;

	if (c->job == NULL) { /* closing after QUIT */
		rconn_free(c);
		return;
	}
	w = smtp_client_waiting(c->sc);
	if (c->phase == PH_BODY) {
		c->phase = PH_SMTP;
		rconn_shell_fail(c, 451, "4.4.2",
		    "lost connection with %s while "
		    "sending the message body",
		    c->label);
	} else {
		rconn_shell_fail(c, 451, "4.4.2",
		    "lost connection with %s while "
		    "waiting for reply to %s",
		    c->label, w != NULL ? w : "?");
	}
	(void)rconn_failed(c);
}

/*
 * At EOF or error: what the peer said before closing is read first.  True
 * when c is still the same session, still on the plain bufferevent and
 * waiting: the connection is lost.
 */
static bool
rconn_read_last(struct rconn *c, struct bufferevent *bev, unsigned gen)
{
	if (c->phase == PH_SMTP &&
	    evbuffer_get_length(bufferevent_get_input(bev)) > 0 &&
	    rconn_drive(c) != 0)
		return false;
	return c->gen == gen && c->phase != PH_TLS && c->bev == bev;
}

static void
rconn_on_event(struct bufferevent *bev, short what, void *arg)
{
	struct rconn *c = arg;
	struct rdest *d = c->d;
	unsigned gen = c->gen;
	char why[256];

	if (c->idle) { /* closed by the peer while idle */
		rconn_free(c);
	} else if (what & BEV_EVENT_CONNECTED) {
		if (c->phase == PH_TLS)
			(void)rconn_tls_up(c);
	} else if (c->phase == PH_TLS) {
		rconn_ssl_error(c, why, sizeof(why));
		(void)rconn_tls_failed(c, why);
	} else if (rconn_read_last(c, bev, gen)) {
		rconn_lost(c);
	}
	dest_settle(d);
}

static void
rconn_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct rconn *c = arg;
	struct rdest *d = c->d;
	const char *w;

	(void)fd;
	(void)what;
	if (c->idle) {
		(void)rconn_idle_end(c);
	} else if (c->job == NULL) {
		rconn_free(c);
	} else if (c->phase == PH_TLS) {
		(void)rconn_tls_failed(c, "timeout");
	} else if (c->phase == PH_BODY) {
		c->phase = PH_SMTP;
		rconn_shell_fail(c, 451, "4.4.2",
		    "timeout after %us sending the "
		    "message body to %s",
		    d->r->t_command, c->label);
		(void)rconn_failed(c);
	} else {
		w = smtp_client_waiting(c->sc);
		rconn_shell_fail(c, 451, "4.4.2",
		    "timeout waiting for reply to %s "
		    "from %s",
		    w != NULL ? w : "?", c->label);
		(void)rconn_failed(c);
	}
	dest_settle(d);
}

/* ======================================================================
 * The interface
 * ====================================================================== */

static bool
cred_ok(const char *s)
{
	return s != NULL && strlen(s) <= SMTP_CLIENT_CRED_MAX;
}

static int
remote_set_smarthost(struct remote *r, const struct remote_conf *conf)
{
	const char *spec = conf->smarthost;
	struct target t;

	r->sm_port = r->port;
	if (spec == NULL || spec[0] == '\0')
		return 0;
	if (target_smarthost_parse(spec, r->port, &t) != 0) {
		log_err("event=config_error key=relay.smarthost text=\"cannot "
			"parse [smtps:]host[:port]\"");
		return -1;
	}
	if (conf->smarthost_user != NULL &&
	    (!cred_ok(conf->smarthost_user) ||
		!cred_ok(conf->smarthost_pass))) {
		log_err(
		    "event=config_error key=relay.smarthost_user text=\"a user "
		    "needs a password, both at most %d octets\"",
		    SMTP_CLIENT_CRED_MAX);
		return -1;
	}
	r->sm_implicit = t.implicit_tls;
	r->sm_port = t.port;
	r->sm_query = xstrdup(t.query);
	r->sm_host = xstrdup(t.host);
	r->sm_user = dup_or_null(conf->smarthost_user);
	r->sm_pass = dup_or_null(conf->smarthost_pass);
	r->sm_tls = conf->smarthost_tls;
	if (conf->smarthost_ctx != NULL &&
	    SSL_CTX_up_ref(conf->smarthost_ctx) == 1)
		r->sm_ctx = conf->smarthost_ctx;
	return 0;
}

/* delivery.lmtp, checked at start so a typo stops ternd, not the mail. */
static int
remote_check_lmtp(const struct remote_conf *conf)
{
	struct target t;

	if (conf->lmtp == NULL || conf->lmtp[0] == '\0')
		return 0;
	if (target_lmtp_parse(conf->lmtp, &t) != 0) {
		log_err(
		    "event=config_error key=delivery.lmtp text=\"expected "
		    "unix:/absolute/path, host, host:port or [address]:port\"");
		return -1;
	}
	return 0;
}

/* dns.dnssec and [tls_policy]: DANE needs the first and OpenSSL's DANE
 * tables in the MX context. */
static int
remote_set_tls_policy(struct remote *r, const struct remote_conf *conf)
{
	r->dnssec = conf->dnssec;
	if ((r->tls_map = tlspol_map_parse(conf->tls_policy)) == NULL) {
		log_err("event=config_error key=tls_policy text=\"cannot "
			"parse\"");
		return -1;
	}
	if (!r->dnssec && tlspol_map_wants_dane(r->tls_map))
		log_warn("event=config_warning key=tls_policy text=\"dane "
			 "levels need dns.dnssec = yes: dane acts as may, "
			 "dane-only defers\"");
	if (r->ctx != NULL && tls_dane_ctx(r->ctx) != 0) {
		log_err("event=config_error key=dns.dnssec text=\"OpenSSL "
			"cannot enable DANE\"");
		return -1;
	}
	return 0;
}

struct remote *
remote_new(struct event_base *base, struct dns *dns, SSL_CTX *client_ctx,
    const struct remote_conf *conf)
{
	struct remote *r = xcalloc(1, sizeof(*r));

	r->base = base;
	r->dns = dns;
	r->helo = xstrdup(conf->helo != NULL ? conf->helo : "");
	r->port =
	    conf->port > 0 && conf->port <= 65535 ? (uint16_t)conf->port : 25;
	r->max_per_dest = conf->max_per_dest > 0 ? conf->max_per_dest : 10;
	r->dest_conc = dup_or_null(conf->destination_concurrency);
	r->t_connect = conf->timeout_connect > 0 ? conf->timeout_connect : 30;
	r->t_command = conf->timeout_command > 0 ? conf->timeout_command : 300;
	r->tlsrpt = conf->tlsrpt;
	jobq_init(&r->done);
	dest_set_self(r, conf);
	r->done_ev = event_new(base, -1, 0, remote_on_done, r);
	if (!smtp_client_helo_ok(r->helo))
		log_err(
		    "event=config_error key=hostname text=\"not a host name "
		    "for EHLO\"");
	if (r->done_ev == NULL || !smtp_client_helo_ok(r->helo) ||
	    remote_set_smarthost(r, conf) != 0 ||
	    remote_check_lmtp(conf) != 0) {
		remote_free(r);
		return NULL;
	}
	if (client_ctx != NULL && SSL_CTX_up_ref(client_ctx) == 1)
		r->ctx = client_ctx;
	if (remote_set_tls_policy(r, conf) != 0) {
		remote_free(r);
		return NULL;
	}
	r->sts = conf->sts;
	if (conf->sts_ctx != NULL && SSL_CTX_up_ref(conf->sts_ctx) == 1)
		r->sts_ctx = conf->sts_ctx;
	r->tls_sessions =
	    tls_sess_cache_new(REMOTE_TLS_SESSIONS, REMOTE_TLS_SESSION_LIFE);
	return r;
}

/* Drop everything of d: no callback runs. */
static void
remote_drop_dest(struct rdest *d)
{
	while (d->conns != NULL) {
		job_free(d->conns->job);
		d->conns->job = NULL;
		rconn_free(d->conns);
	}
	(void)jobq_drop(&d->wait, NULL, true);
	dest_free(d);
}

/* Remotes retired and still waiting for their sessions' QUIT. */
static struct remote *remote_retired;

static void
remote_retired_unlink(struct remote *r)
{
	struct remote **pp;

	for (pp = &remote_retired; *pp != NULL; pp = &(*pp)->retired_next)
		if (*pp == r) {
			*pp = r->retired_next;
			return;
		}
}

void
remote_retire(struct remote *r)
{
	if (r == NULL)
		return;
	r->stopping = true; /* it takes no job: nobody can give it one */
	r->retiring = true;
	r->retired_next = remote_retired;
	remote_retired = r;
	remote_idle_quit(r);
	if (r->nconns == 0)
		remote_free(r);
}

void
remote_free_retired(void)
{
	struct remote *r;

	/* unlinked first: the loop ends even if a free had to wait */
	while ((r = remote_retired) != NULL) {
		remote_retired = r->retired_next;
		r->retiring = false;
		remote_free(r);
	}
}

void
remote_free(struct remote *r)
{
	size_t i;

	if (r == NULL)
		return;
	if (r->firing) {
		r->free_pending = true;
		return;
	}
	if (r->retiring)
		remote_retired_unlink(r);
	for (i = 0; i < REMOTE_BUCKETS; i++)
		while (r->buckets[i] != NULL)
			remote_drop_dest(r->buckets[i]);
	(void)jobq_drop(&r->done, NULL, true);
	if (r->done_ev != NULL)
		event_free(r->done_ev);
	/* after the connections: no handshake runs on them any more */
	tls_sess_cache_free(r->tls_sessions);
	tlspol_map_free(r->tls_map);
	SSL_CTX_free(r->ctx);
	SSL_CTX_free(r->sm_ctx);
	SSL_CTX_free(r->sts_ctx);
	free(r->sm_host);
	if (r->sm_pass != NULL)
		explicit_bzero(r->sm_pass, strlen(r->sm_pass));
	free(r->sm_pass);
	free(r->sm_user);
	free(r->sm_query);
	free(r->helo);
	free(r->dest_conc);
	free(r);
}

void
remote_deliver(struct remote *r, const struct remote_msg *m,
    remote_done_fn done, void *arg)
{
	struct rjob *j = job_new(m, done, arg);
	const char *domain =
	    r->sm_query != NULL || m->domain == NULL ? "" : m->domain;
	struct smtp_client_conf cf;
	struct smtp_client *probe;
	struct rdest *d;
	char key[DNS_NAME_MAX + 3], err[SMTP_CLIENT_TEXT_MAX];

	job_client_conf(r, j, &cf);
	if ((probe = smtp_client_new(&cf)) == NULL) {
		deliver_refuse(r, j, SMTP_RESULT_PERM, 554, "5.3.0",
		    "The envelope "
		    "cannot be sent (an invalid address or too many "
		    "recipients)");
		return;
	}
	smtp_client_free(probe);
	if (job_map(j, m->data_fd, m->data_off, m->data_len, err,
		sizeof(err)) != 0) {
		log_warn("id=%s event=read_error text=\"%s\"", j->id, err);
		deliver_refuse(r, j, SMTP_RESULT_TEMP, 451, "4.3.0", err);
		return;
	}
	if (m->lmtp != NULL) {
		struct target t;

		if (target_lmtp_parse(m->lmtp, &t) != 0 ||
		    str_fmt(key, sizeof(key), "%s%s", REMOTE_LMTP_KEY,
			m->lmtp) != 0) {
			deliver_refuse(r, j, SMTP_RESULT_TEMP, 451, "4.3.5",
			    "The mailbox's LMTP target does not parse "
			    "(expected "
			    "unix:/path or host[:port])");
			return;
		}
	} else if (str_copy(key, sizeof(key), domain, strlen(domain)) != 0) {
		deliver_refuse(r, j, SMTP_RESULT_PERM, 550, "5.1.2",
		    "The destination domain is too long");
		return;
	} else {
		str_lower(key);
	}
	d = dest_get(r, key);

	jobq_push(&d->wait, j);
	dest_settle(d);
}

/* Forget d's deliveries for arg; d may be freed. */
static size_t
remote_cancel_dest(struct rdest *d, void *arg)
{
	struct rconn *c, *next;
	size_t n = jobq_drop(&d->wait, arg, false);

	for (c = d->conns; c != NULL; c = next) {
		next = c->next;
		if (c->job == NULL || c->job->arg != arg)
			continue;
		log_info("id=%s mx=%s addr=%s event=cancelled", c->job->id,
		    c->host_log, c->addr_log);
		job_free(c->job);
		c->job = NULL;
		rconn_free(c);
		n++;
	}
	dest_settle(d);
	return n;
}

size_t
remote_cancel(struct remote *r, void *arg)
{
	size_t i, n = jobq_drop(&r->done, arg, false);
	struct rdest *d, *next;

	for (i = 0; i < REMOTE_BUCKETS; i++) {
		for (d = r->buckets[i]; d != NULL; d = next) {
			next = d->next;
			n += remote_cancel_dest(d, arg);
		}
	}
	return n;
}

void
remote_stop(struct remote *r)
{
	r->stopping = true;
	if (r->sts != NULL)
		mtasts_stop(r->sts);
	remote_idle_quit(r);
}

void
remote_idle_quit(struct remote *r)
{
	struct rdest *d, *next;
	size_t i;

	for (i = 0; i < REMOTE_BUCKETS; i++)
		for (d = r->buckets[i]; d != NULL; d = next) {
			next = d->next;
			rconn_idle_quit(d);
			dest_settle(d);
		}
}

unsigned
remote_connections(const struct remote *r)
{
	return r->nconns;
}
