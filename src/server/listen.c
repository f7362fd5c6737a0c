/*
 * listen: the listening sockets named by listen.smtp, listen.submission
 * and listen.submissions, bound before the privilege drop, and the accept
 * path with its admission limits.  A connection over limits.connections,
 * limits.connections_per_ip (per client key: an IPv4 address, or an IPv6
 * /64, util/clientkey.h) or, on public/submit.sock, limits.connections_per_uid
 * (per SO_PEERCRED uid) gets "421 4.7.0" written straight to the socket and
 * is closed before any per-connection state exists, so a flood costs one
 * accept and one send per connection.  The per-client counts live in a
 * hash table whose buckets are chosen by client_key_hash() (SipHash under
 * a random key), so no client can aim its addresses at one chain.
 *
 * Out of descriptors (EMFILE, ENFILE): the listening socket stays
 * readable, so libevent would call accept again at once, forever.  Instead
 * one descriptor kept in reserve is given up just long enough to accept
 * the waiting clients one by one and tell each "421 4.7.0" (rather than
 * leave them hanging in the backlog), and the listener sleeps
 * LISTEN_PAUSE_MS before it tries again.  The error is logged once a second
 * at most; what happens in between is held back and written by a timer as
 * one more line, so every refused client is counted in the log.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "metrics/metrics.h"
#include "server/conn.h"
#include "server/listen.h"
#include "server/netlist.h"
#include "server/server.h"

#define CLIENT_BUCKETS	4096
#define LISTEN_PAUSE_MS 100
#define LISTEN_SHED_MAX 256 /* clients refused per pause */

static int reserve_fd = -1;

struct client_count {
	struct client_count *next;
	struct client_key key;
	unsigned n;
};

void
client_key_from_sockaddr(struct client_key *k, const struct sockaddr *sa)
{
	const unsigned char *p;
	size_t n;

	if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6) {
		client_key_uid(k, UINT32_MAX); /* not an IP: nobody's */
		return;
	}
	n = sockaddr_ip_bytes(sa, &p);
	client_key_ip(k, p, n);
}

/* The peer's uid on a unix socket (SO_PEERCRED), or UINT32_MAX. */
static unsigned
peer_uid(int fd)
{
	struct ucred cred;
	socklen_t clen = sizeof(cred);

	memset(&cred, 0, sizeof(cred));
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0)
		return UINT32_MAX;
	return (unsigned)cred.uid;
}

void
client_key_of(const struct listener *l, int fd, const struct sockaddr *sa,
    struct client_key *k, unsigned *uid_out)
{
	unsigned uid = UINT32_MAX;

	if (l->kind == LISTEN_LOCAL) {
		uid = peer_uid(fd);
		client_key_uid(k, uid);
	} else {
		client_key_from_sockaddr(k, sa);
	}
	*uid_out = uid;
}

static struct client_count **
client_slot(struct server *s, const struct client_key *k)
{
	struct client_count **pp;

	if (s->client_buckets == NULL)
		s->client_buckets =
		    xcalloc(CLIENT_BUCKETS, sizeof(*s->client_buckets));
	pp = &s->client_buckets[client_key_hash(k) % CLIENT_BUCKETS];
	for (; *pp != NULL; pp = &(*pp)->next)
		if (client_key_eq(&(*pp)->key, k))
			break;
	return pp;
}

unsigned
client_count_get(struct server *s, const struct client_key *k)
{
	struct client_count **pp = client_slot(s, k);

	return *pp ? (*pp)->n : 0;
}

void
client_count_add(struct server *s, const struct client_key *k, int delta)
{
	struct client_count **pp = client_slot(s, k), *c = *pp;

	if (c == NULL) {
		if (delta <= 0)
			return;
		c = xcalloc(1, sizeof(*c));
		c->key = *k;
		*pp = c;
	}
	if (delta < 0 && c->n < (unsigned)-delta)
		panic("event=client_count_underflow");
	c->n = (unsigned)((int)c->n + delta);
	if (c->n == 0) {
		*pp = c->next;
		free(c);
	}
}

/* "host:port", "[v6]:port" or ":port"/"*:port" (all addresses). */
static int
listen_parse(
    const char *spec, char *host, size_t hostlen, char *port, size_t portlen)
{
	const char *colon;

	if (spec[0] == '[') {
		const char *end = strchr(spec, ']');

		if (end == NULL || end[1] != ':')
			return -1;
		if (str_copy(
			host, hostlen, spec + 1, (size_t)(end - spec - 1)) != 0)
			return -1;
		colon = end + 1;
	} else {
		if ((colon = strrchr(spec, ':')) == NULL)
			return -1;
		if (str_copy(host, hostlen, spec, (size_t)(colon - spec)) != 0)
			return -1;
		if (strcmp(host, "*") == 0)
			host[0] = '\0';
	}
	return str_copy(port, portlen, colon + 1, strlen(colon + 1));
}

int
listen_socket(const char *spec, int *fd_out)
{
	char host[256], port[16];
	struct addrinfo hints, *ai = NULL;
	int fd = -1, on = 1, r;

	if (listen_parse(spec, host, sizeof(host), port, sizeof(port)) != 0) {
		log_err("event=startup step=listen addr=%s error=\"expected "
			"host:port\"",
		    spec);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	if ((r = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai)) != 0) {
		log_err("event=startup step=listen addr=%s error=\"%s\"", spec,
		    gai_strerror(r));
		return -1;
	}
	fd = socket(
	    ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
	    listen(fd, 1024) != 0) {
		int e = errno; /* for the caller: EACCES on a low port */

		log_err("event=startup step=listen addr=%s error=\"%s\"", spec,
		    strerror(e));
		if (fd != -1)
			close(fd);
		freeaddrinfo(ai);
		errno = e;
		return -1;
	}
	freeaddrinfo(ai);
	*fd_out = fd;
	return 0;
}

static bool
listen_enabled(const char *spec)
{
	return spec != NULL && spec[0] != '\0' && strcmp(spec, "off") != 0;
}

int
listeners_bind(struct server *s)
{
	const struct {
		const char *spec;
		enum listener_kind kind;
		const char *name;
	} want[] = {
	    {s->conf->listen_smtp, LISTEN_SMTP, "smtp"},
	    {s->conf->listen_submission, LISTEN_SUBMISSION, "submission"},
	    {s->conf->listen_submissions, LISTEN_SUBMISSIONS, "submissions"},
	};
	size_t i;

	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct listener *l = &s->listeners[s->nlisteners];

		if (!listen_enabled(want[i].spec))
			continue;
		if (listen_socket(want[i].spec, &l->fd) != 0)
			return -1;
		l->kind = want[i].kind;
		l->name = want[i].name;
		str_fmt_cut(l->addr, sizeof(l->addr), "%s", want[i].spec);
		s->nlisteners++;
		log_info(
		    "event=listen listener=%s addr=%s", l->name, want[i].spec);
	}
	if (s->nlisteners == 0) {
		log_err("event=startup error=\"no listener enabled\"");
		return -1;
	}
	return 0;
}

static void
refuse(int fd, const char *hostname)
{
	char line[300];

	if (str_fmt(line, sizeof(line),
		"421 4.7.0 %s Too many connections, try again later\r\n",
		hostname) == 0 &&
	    send(fd, line, strlen(line), MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		/* best effort: the socket is closed next either way */
		log_debug("event=refuse_send error=\"%s\"", strerror(errno));
	shutdown(fd, SHUT_WR);
	close(fd);
}

static void
on_accept(struct evconnlistener *ev, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct listener *l = arg;
	struct server *s = l->srv;
	const char *why = NULL;
	enum metrics_refusal mr = METRICS_R_SHUTDOWN;
	struct client_key key;
	unsigned uid;

	(void)ev;
	client_key_of(l, fd, sa, &key, &uid);
	if (s->stopping) {
		why = "shutdown";
	} else if (s->nconns >= s->conf->connections) {
		why = "connections";
		mr = METRICS_R_CONNECTIONS;
	} else if (l->kind == LISTEN_LOCAL &&
		   client_count_get(s, &key) >= s->conf->connections_per_uid) {
		why = "connections_per_uid";
		mr = METRICS_R_PER_UID;
	} else if (l->kind != LISTEN_LOCAL &&
		   client_count_get(s, &key) >= s->conf->connections_per_ip) {
		why = "connections_per_ip";
		mr = METRICS_R_PER_IP;
	}
	if (why != NULL) {
		char host[64];

		metrics_conn_refused(mr);

		if (l->kind == LISTEN_LOCAL)
			str_fmt_cut(host, sizeof(host), "uid=%u", uid);
		else if (getnameinfo(sa, (socklen_t)salen, host, sizeof(host),
			     NULL, 0, NI_NUMERICHOST) != 0)
			host[0] = '\0';
		log_warn("event=refuse listener=%s client=%s reason=%s",
		    l->name, host, why);
		refuse(fd, s->conf->hostname);
		return;
	}
	conn_new(s, l, fd, sa, (socklen_t)salen);
}

/* Out of descriptors: refuse what waits in the backlog with the reserve
 * descriptor; returns how many were refused. */
static unsigned
shed_backlog(const struct listener *l)
{
	unsigned n = 0;
	int fd;

	if (reserve_fd < 0)
		return 0;
	close(reserve_fd);
	reserve_fd = -1;
	while (n < LISTEN_SHED_MAX &&
	       (fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		refuse(fd, l->srv->conf->hostname);
		metrics_conn_refused(METRICS_R_DESCRIPTORS);
		n++;
	}
	reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	return n;
}

static void
on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct listener *l = arg;

	(void)fd;
	(void)what;
	if (l->ev != NULL && !l->srv->stopping)
		evconnlistener_enable(l->ev);
}

static void
log_accept_error(struct listener *l)
{
	l->errlog_last = time_now_ms();
	log_err("event=accept_error listener=%s error=\"%s\" refused=%u",
	    l->name, strerror(l->errlog_errno), l->errlog_refused);
	l->errlog_refused = 0;
	l->errlog_errno = 0;
}

static void
on_errlog(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	log_accept_error(arg);
}

static void
on_accept_error(struct evconnlistener *ev, void *arg)
{
	struct listener *l = arg;
	int err = errno;
	uint64_t now = time_now_ms();

	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		struct timeval tv = {0, LISTEN_PAUSE_MS * 1000};

		l->errlog_refused += shed_backlog(l);
		evconnlistener_disable(ev);
		evtimer_add(l->resume, &tv);
	}
	l->errlog_errno = err;
	if (l->errlog_last == 0 || now - l->errlog_last >= 1000) {
		if (l->errlog != NULL)
			evtimer_del(l->errlog);
		log_accept_error(l);
	} else if (l->errlog != NULL && !evtimer_pending(l->errlog, NULL)) {
		uint64_t wait = l->errlog_last + 1000 - now;
		struct timeval tv = {
		    (time_t)(wait / 1000), (suseconds_t)(wait % 1000) * 1000};

		evtimer_add(l->errlog, &tv);
	}
}

/* One listener's accept events, on the loop. */
static int
listener_start(struct server *s, struct listener *l)
{
	l->srv = s; /* the accept callbacks' context */
	l->active = true;
	l->ev = evconnlistener_new(s->base, on_accept, l,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0,
	    l->fd); /* 0: keep listen_socket's backlog */
	if (l->ev == NULL)
		return -1;
	evconnlistener_set_error_cb(l->ev, on_accept_error);
	if ((l->resume = evtimer_new(s->base, on_resume, l)) == NULL ||
	    (l->errlog = evtimer_new(s->base, on_errlog, l)) == NULL)
		return -1;
	return 0;
}

/* Stop accepting on l (its fd closes); its sessions keep l itself. */
static void
listener_stop(struct listener *l)
{
	if (l->resume != NULL)
		event_free(l->resume);
	l->resume = NULL;
	if (l->errlog != NULL)
		event_free(l->errlog);
	l->errlog = NULL;
	if (l->ev != NULL)
		evconnlistener_free(l->ev);
	else if (l->fd >= 0)
		close(l->fd);
	l->ev = NULL;
	l->fd = -1;
	l->active = false;
}

void
listener_conns_add(struct server *s, const struct listener *l, int delta)
{
	struct listener *m = &s->listeners[l - s->listeners];

	m->nconns = (unsigned)((int)m->nconns + delta);
	if (delta < 0 && m->nconns == 0 && !m->active && !s->stopping)
		log_info("event=listener_retired listener=%s addr=%s "
			 "note=\"its last session ended\"",
		    m->name, m->addr);
}

/* A slot for a new listener: a retired one without sessions, or the next. */
static struct listener *
listener_slot(struct server *s)
{
	unsigned i;

	for (i = 0; i < s->nlisteners; i++)
		if (!s->listeners[i].active && s->listeners[i].nconns == 0 &&
		    s->listeners[i].fd < 0)
			break;
	if (i == LISTEN_SLOTS)
		return NULL;
	if (i == s->nlisteners)
		s->nlisteners++;
	memset(&s->listeners[i], 0, sizeof(s->listeners[i]));
	s->listeners[i].fd = -1;
	return &s->listeners[i];
}

static struct listener *
listener_of_kind(struct server *s, enum listener_kind kind)
{
	unsigned i;

	for (i = 0; i < s->nlisteners; i++)
		if (s->listeners[i].active && s->listeners[i].kind == kind)
			return &s->listeners[i];
	return NULL;
}

int
listeners_reload(struct server *s, struct conf *nc, const struct conf *oc)
{
	struct {
		const char *key;
		char **nspec;
		const char *ospec;
		enum listener_kind kind;
		const char *name;
		int fd; /* bound here; -1: nothing new */
		bool change;
	} want[] = {
	    {"listen.smtp", &nc->listen_smtp, oc->listen_smtp, LISTEN_SMTP,
		"smtp", -1, false},
	    {"listen.submission", &nc->listen_submission, oc->listen_submission,
		LISTEN_SUBMISSION, "submission", -1, false},
	    {"listen.submissions", &nc->listen_submissions,
		oc->listen_submissions, LISTEN_SUBMISSIONS, "submissions", -1,
		false},
	};
	const size_t n = sizeof(want) / sizeof(want[0]);
	char host[256];
	unsigned port;
	size_t i, j, enabled = 0;

	for (i = 0; i < n; i++) {
		const char *ns = *want[i].nspec;
		bool on = listen_enabled(ns),
		     was = listen_enabled(want[i].ospec);

		if (on == was && (!on || strcmp(ns, want[i].ospec) == 0)) {
			enabled += on;
			continue;
		}
		if (on && listen_socket(ns, &want[i].fd) != 0) {
			if (errno == EACCES &&
			    conf_split_hostport(
				ns, host, sizeof(host), &port, true) == 0 &&
			    port < 1024) {
				/* a port below 1024 needs root or
				   CAP_NET_BIND_SERVICE: a ternd that dropped
				   root keeps neither (docs/security.md) */
				log_warn("event=reload needs_restart=%s "
					 "value=%s note=\"a port below 1024 "
					 "is bound at start; kept %s\"",
				    want[i].key, ns,
				    was ? want[i].ospec : "off");
				conf_key_keep(nc, oc, want[i].key);
				enabled += was;
				continue;
			}
			log_err("event=reload step=listen key=%s addr=%s "
				"error=\"cannot listen, see above\"",
			    want[i].key, ns);
			goto undo;
		}
		want[i].change = true;
		enabled += on;
	}
	if (enabled == 0) {
		log_err("event=reload step=listen error=\"no listener "
			"enabled\"");
		goto undo;
	}
	for (i = 0; i < n; i++) {
		struct listener *l;

		if (!want[i].change)
			continue;
		if ((l = listener_of_kind(s, want[i].kind)) != NULL) {
			listener_stop(l);
			log_info("event=listener_stopped listener=%s addr=%s "
				 "sessions=%u",
			    l->name, l->addr, l->nconns);
		}
		if (want[i].fd < 0)
			continue;
		if ((l = listener_slot(s)) == NULL) {
			/* every slot holds sessions of retired listeners */
			log_err("event=reload step=listen addr=%s error=\"too "
				"many listeners still have sessions\"",
			    *want[i].nspec);
			close(want[i].fd);
			continue;
		}
		l->fd = want[i].fd;
		l->kind = want[i].kind;
		l->name = want[i].name;
		str_fmt_cut(l->addr, sizeof(l->addr), "%s", *want[i].nspec);
		if (listener_start(s, l) != 0)
			panic("event=reload step=evconnlistener listener=%s",
			    l->name);
		log_info("event=listen listener=%s addr=%s", l->name, l->addr);
	}
	return 0;
undo:
	for (j = 0; j < n; j++)
		if (want[j].fd >= 0)
			close(want[j].fd);
	return -1;
}

void
listeners_enable(struct server *s)
{
	unsigned i;

	for (i = 0; i < s->nlisteners; i++)
		if (listener_start(s, &s->listeners[i]) != 0)
			fatalx("event=startup step=evconnlistener listener=%s",
			    s->listeners[i].name);
	if (reserve_fd < 0)
		reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

void
listeners_close(struct server *s)
{
	unsigned i;

	for (i = 0; i < s->nlisteners; i++)
		listener_stop(&s->listeners[i]);
	/* the slots stay: sessions still point at theirs */
}
