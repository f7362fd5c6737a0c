/*
 * connpolicy: the policy delegation client of a session (docs/policy.md).
 *
 * At RCPT (a recipient tern would take) and at the end of data, the
 * policy servers of policy.servers are asked in order with the Postfix
 * policy protocol (src/policy, pure); the first answer that is not DUNNO
 * (or PREPEND, WARN, INFO, DEFER_IF_REJECT, which do not decide) decides.
 * Everything runs on the loop: non-blocking sockets through bufferevents,
 * one timer per connection (the answer's deadline, policy.timeout, or
 * its idle time, policy.idle_timeout).  conn.c waits while a request
 * runs (c->pending) and is called back from the loop.
 *
 * Connections are the daemon's, not a session's: one answered request
 * puts its connection back in its server's idle list (at most
 * POLICY_IDLE_MAX), and the next request of any session takes it, as
 * Postfix's smtpd keeps its policy connections.  A connection that was
 * idle and fails before any answer (the server closed it meanwhile) is
 * replaced by a new one once; a request in flight when its session ends
 * closes its connection (its answer would come to nobody).
 *
 * One pool per policy.servers list a session has had (a reload may change
 * it): a session asks the pool of its own configuration's list (c->cf),
 * so a session open across the reload goes on with the servers it began
 * with and the next one takes the new list.  A pool no session asks any
 * more loses its idle connections as their idle time runs out; the pool
 * itself, a few KiB, stays until exit.
 *
 * A server that cannot be reached, stalls, closes, answers garbage, too
 * long an answer or an unknown action: policy.default_action (tempfail:
 * this command gets 451 4.3.5; accept: as DUNNO, the next server is
 * asked), and a log line.  Nothing is exempt unless
 * policy.skip_authenticated.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "milter/milter.h"
#include "policy/policy.h"
#include "server/conn.h"

#define POLICY_SERVERS_MAX   16
#define POLICY_IDLE_MAX	     16	   /* idle connections kept per server */
#define POLICY_PREPEND_MAX   16	   /* PREPEND fields kept per message */
#define POLICY_PREPEND_BYTES 8192  /* ... and their octets */
#define POLICY_REQUEST_MAX   32768 /* a request: 30 values of at most 1 KiB */

struct pconn {
	struct policy_pool *pool;
	unsigned si; /* its server's index */
	struct bufferevent *bev;
	struct event *timer;
	bool connecting;
	bool reused;		/* taken from the idle list */
	struct conn_policy *cp; /* the request it carries; NULL: idle */
	struct pconn *next;	/* the idle list */
};

struct policy_pool {
	struct policy_pool *next; /* the pools of other lists */
	char *servers;		  /* the policy.servers it was made of */
	struct server *srv;
	unsigned n;
	struct milter_spec spec[POLICY_SERVERS_MAX];
	char name[POLICY_SERVERS_MAX][MILTER_HOST_MAX + 16];
	struct pconn *idle[POLICY_SERVERS_MAX];
	unsigned nidle[POLICY_SERVERS_MAX];
};

struct conn_policy {
	struct conn *c;
	struct policy_pool *pool; /* of the session's policy.servers */
	struct event *timer;	  /* done() from the loop */
	enum conn_policy_stage stage;
	unsigned cur; /* the server asked */
	struct buf req;
	struct pconn *pc; /* carrying the request, or NULL */
	bool retried;	  /* a reused connection failed: a new one tried */
	bool defer_if_reject;
	char dir_text[256]; /* DEFER_IF_REJECT's text */
	void (*done)(struct conn *);
	/* the answer: refused with code, enh, text */
	bool refused;
	int code;
	char enh[16];
	char text[400];
};

static void cp_ask(struct conn_policy *cp);
static void cp_answer(struct conn_policy *cp, const char *p, size_t n);

static const char *
stage_name(enum conn_policy_stage st)
{
	return st == CONN_POLICY_RCPT ? "rcpt" : "eom";
}

/* ---- the pool of connections ------------------------------------------ */

/* The pool of the session's policy.servers, made at its first use. */
static struct policy_pool *
pool_get(struct conn *c)
{
	struct server *s = c->srv;
	const char *v = c->cf->policy_servers;
	struct policy_pool *pl;

	for (pl = s->policy; pl != NULL; pl = pl->next)
		if (strcmp(pl->servers, v) == 0)
			return pl;
	pl = xcalloc(1, sizeof(*pl));
	pl->srv = s;
	pl->servers = xstrdup(v);
	pl->next = s->policy;
	while (*v != '\0' && pl->n < POLICY_SERVERS_MAX) {
		size_t k = strcspn(v, ",");

		/* conf.c checked every item */
		if (k > 0 && milter_parse_spec(v, k, &pl->spec[pl->n]) == 0) {
			str_fmt_cut(pl->name[pl->n], sizeof(pl->name[0]),
			    "%.*s", (int)k, v);
			pl->n++;
		}
		v += k;
		v += *v == ',';
	}
	if (*v != '\0')
		log_warn("event=policy_config error=\"more than %d policy "
			 "servers: the rest are not used\"",
		    POLICY_SERVERS_MAX);
	s->policy = pl;
	return pl;
}

static void
pc_free(struct pconn *pc)
{
	if (pc->bev != NULL)
		bufferevent_free(pc->bev);
	event_free(pc->timer);
	free(pc);
}

/* Out of its server's idle list, if it is there. */
static void
pc_unidle(struct pconn *pc)
{
	struct policy_pool *pl = pc->pool;

	for (struct pconn **pp = &pl->idle[pc->si]; *pp != NULL;
	     pp = &(*pp)->next)
		if (*pp == pc) {
			*pp = pc->next;
			pc->next = NULL;
			pl->nidle[pc->si]--;
			return;
		}
}

static void
pc_arm(struct pconn *pc, unsigned secs)
{
	struct timeval tv = {(time_t)secs, 0};

	event_del(pc->timer);
	event_add(pc->timer, &tv);
}

/* An answered request: the connection waits for the next one. */
static void
pc_release(struct pconn *pc)
{
	struct policy_pool *pl = pc->pool;

	pc->cp = NULL;
	if (pl->nidle[pc->si] >= POLICY_IDLE_MAX) {
		pc_free(pc);
		return;
	}
	pc->next = pl->idle[pc->si];
	pl->idle[pc->si] = pc;
	pl->nidle[pc->si]++;
	/* the current configuration's (a reload's) from this idle period on */
	pc_arm(pc, pl->srv->conf->policy_idle_timeout);
}

/* The connection failed: closed; its request (if any) goes on without
 * it (a new connection once when an idle one had gone stale, else the
 * default action). */
static void
pc_fail(struct pconn *pc, const char *why)
{
	struct conn_policy *cp = pc->cp;
	bool stale;

	if (cp == NULL) { /* idle: closed by its server, or its time is up */
		log_debug("event=policy_idle_close server=%s reason=%s",
		    pc->pool->name[pc->si], why);
		pc_unidle(pc);
		pc_free(pc);
		return;
	}
	stale = pc->reused && !cp->retried && strcmp(why, "timeout") != 0 &&
		evbuffer_get_length(bufferevent_get_input(pc->bev)) == 0;
	cp->pc = NULL;
	pc_free(pc);
	if (stale) {
		cp->retried = true;
		log_debug("sid=%s event=policy_reconnect server=%s reason=%s",
		    cp->c->sid, cp->pool->name[cp->cur], why);
		cp_ask(cp);
		return;
	}
	cp_answer(cp, NULL, 0);
}

static void
pc_on_read(struct bufferevent *bev, void *arg)
{
	struct pconn *pc = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t have = evbuffer_get_length(in), used = 0;
	char action[POLICY_REPLY_MAX];
	struct policy_str act;
	struct conn_policy *cp = pc->cp;
	const char *p;
	int rc;

	if (cp == NULL) {
		pc_fail(pc, "unexpected_data");
		return;
	}
	if (have > POLICY_REPLY_MAX)
		have = POLICY_REPLY_MAX;
	p = (const char *)evbuffer_pullup(in, (ev_ssize_t)have);
	rc = p != NULL ? policy_reply_parse(p, have, &act, &used) : -1;
	if (rc == 0)
		return;
	if (rc == 1 && used != evbuffer_get_length(in))
		rc = -1; /* more than one answer to one request */
	if (rc != 1) {
		char q[200];

		log_warn("sid=%s event=policy_failed server=%s stage=%s "
			 "error=%s data=\"%s\"",
		    cp->c->sid, pc->pool->name[pc->si], stage_name(cp->stage),
		    have >= POLICY_REPLY_MAX ? "too_long" : "garbage",
		    log_quote(q, sizeof(q), p != NULL ? p : "",
			p != NULL ? (have < 64 ? have : 64) : 0));
		cp->pc = NULL;
		pc->cp = NULL;
		pc_free(pc);
		cp_answer(cp, NULL, 0);
		return;
	}
	memcpy(action, act.p, act.len);
	evbuffer_drain(in, used);
	cp->pc = NULL;
	pc_release(pc);
	cp_answer(cp, action, act.len);
}

static void
pc_on_event(struct bufferevent *bev, short what, void *arg)
{
	struct pconn *pc = arg;
	struct conn_policy *cp = pc->cp;
	const char *why = (what & BEV_EVENT_EOF) ? "closed"
			  : pc->connecting	 ? "connect"
						 : "io";

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		pc->connecting = false;
		return;
	}
	if (cp != NULL &&
	    !(pc->reused && !cp->retried && strcmp(why, "connect") != 0))
		log_warn("sid=%s event=policy_failed server=%s stage=%s "
			 "error=%s",
		    cp->c->sid, pc->pool->name[pc->si], stage_name(cp->stage),
		    why);
	pc_fail(pc, why);
}

static void
pc_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct pconn *pc = arg;

	(void)fd;
	(void)what;
	if (pc->cp != NULL)
		log_warn("sid=%s event=policy_failed server=%s stage=%s "
			 "error=timeout",
		    pc->cp->c->sid, pc->pool->name[pc->si],
		    stage_name(pc->cp->stage));
	pc_fail(pc, pc->cp != NULL ? "timeout" : "idle");
}

/* A new connection to server si (the connect goes on in the
 * background; what is written meanwhile waits in the bufferevent). */
static struct pconn *
pc_open(struct policy_pool *pl, unsigned si, const char **why)
{
	const struct milter_spec *sp = &pl->spec[si];
	struct sockaddr_storage ss;
	socklen_t sl;
	struct pconn *pc;

	memset(&ss, 0, sizeof(ss));
	if (sp->unix_path) {
		struct sockaddr_un *su = (struct sockaddr_un *)&ss;

		su->sun_family = AF_UNIX;
		memcpy(su->sun_path, sp->host, strlen(sp->host));
		sl = sizeof(*su);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		const char *h =
		    strcmp(sp->host, "localhost") == 0 ? "127.0.0.1" : sp->host;

		if (inet_pton(AF_INET, h, &s4->sin_addr) == 1) {
			s4->sin_family = AF_INET;
			s4->sin_port = htons(sp->port);
			sl = sizeof(*s4);
		} else if (inet_pton(AF_INET6, h, &s6->sin6_addr) == 1) {
			s6->sin6_family = AF_INET6;
			s6->sin6_port = htons(sp->port);
			sl = sizeof(*s6);
		} else {
			*why = "not_an_address";
			return NULL;
		}
	}
	pc = xcalloc(1, sizeof(*pc));
	pc->pool = pl;
	pc->si = si;
	pc->timer = evtimer_new(pl->srv->base, pc_on_timer, pc);
	pc->bev =
	    bufferevent_socket_new(pl->srv->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (pc->timer == NULL || pc->bev == NULL) {
		*why = "socket";
		if (pc->timer == NULL)
			panic("event=policy error=evtimer_new");
		pc_free(pc);
		return NULL;
	}
	bufferevent_setcb(pc->bev, pc_on_read, NULL, pc_on_event, pc);
	/* an answer longer than this is refused: read no more of it */
	bufferevent_setwatermark(pc->bev, EV_READ, 0, POLICY_REPLY_MAX + 1);
	bufferevent_enable(pc->bev, EV_READ | EV_WRITE);
	pc->connecting = true;
	if (bufferevent_socket_connect(
		pc->bev, (struct sockaddr *)&ss, (int)sl) != 0) {
		*why = errno == ENOENT ? "no_socket" : "connect";
		pc_free(pc);
		return NULL;
	}
	return pc;
}

void
conn_policy_close(struct server *s)
{
	struct policy_pool *pl, *next;

	for (pl = s->policy; pl != NULL; pl = next) {
		next = pl->next;
		for (unsigned i = 0; i < pl->n; i++)
			while (pl->idle[i] != NULL) {
				struct pconn *pc = pl->idle[i];

				pl->idle[i] = pc->next;
				pc_free(pc);
			}
		free(pl->servers);
		free(pl);
	}
	s->policy = NULL;
}

/* ---- a session's request -------------------------------------------- */

static void
cp_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct conn_policy *cp = arg;
	struct conn *c = cp->c;

	(void)fd;
	(void)what;
	c->pending = false;
	cp->done(c); /* may free c and cp */
}

/* The request is decided: conn.c goes on, from the loop, so nothing of
 * a connection's callback runs after done() (which may free c). */
static void
cp_finish(struct conn_policy *cp)
{
	struct timeval tv = {0, 0};

	event_del(cp->timer);
	event_add(cp->timer, &tv);
}

static void
cp_refuse(struct conn_policy *cp, int code, const char *enh, const char *text,
    size_t textlen)
{
	size_t n = 0;

	cp->refused = true;
	cp->code = code;
	str_fmt_cut(cp->enh, sizeof(cp->enh), "%s", enh);
	/* a reply line: printable ASCII */
	for (size_t i = 0; i < textlen && n + 1 < sizeof(cp->text); i++) {
		unsigned char ch = (unsigned char)text[i];

		cp->text[n++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
	}
	cp->text[n] = '\0';
	cp_finish(cp);
}

#define REFUSE_LIT(cp, code, enh, lit)                                         \
	cp_refuse(cp, code, enh, lit, sizeof(lit) - 1)

/* The next server, or the end: no server decided. */
static void
cp_next(struct conn_policy *cp)
{
	cp->cur++;
	cp->retried = false;
	cp_ask(cp);
}

/* A server failed or answered what tern cannot use: default_action. */
static void
cp_failed(struct conn_policy *cp)
{
	if (strcmp(cp->c->cf->policy_default_action, "accept") == 0) {
		cp_next(cp);
		return;
	}
	REFUSE_LIT(
	    cp, 451, "4.3.5", "Policy service unavailable, try again later");
}

static void
cp_prepend(struct conn_policy *cp, const struct policy_action *a)
{
	struct txn *t = cp->c->txn;
	struct buf *b = &t->policy_prepend;

	if (b->max == 0)
		buf_init(b, POLICY_PREPEND_BYTES);
	if (t->policy_nprepend >= POLICY_PREPEND_MAX ||
	    buf_append(b, a->text.p, a->text.len) != 0 ||
	    buf_append(b, "\r\n", 2) != 0) {
		log_warn("id=%s sid=%s event=policy_prepend result=dropped "
			 "reason=too_many",
		    t->id, cp->c->sid);
		return;
	}
	t->policy_nprepend++;
}

/* What the current server answered (p NULL: it failed, logged). */
static void
cp_answer(struct conn_policy *cp, const char *p, size_t n)
{
	struct conn *c = cp->c;
	const char *srvname = cp->pool->name[cp->cur];
	struct policy_action a;
	char q[600];

	if (p == NULL) {
		cp_failed(cp);
		return;
	}
	if (policy_action_parse(p, n, &a) != 0 || a.kind == POLICY_UNKNOWN) {
		log_warn("id=%s sid=%s event=policy_failed server=%s stage=%s "
			 "error=unknown_action action=\"%s\"",
		    c->txn->id, c->sid, srvname, stage_name(cp->stage),
		    log_quote(q, sizeof(q), p, n));
		cp_failed(cp);
		return;
	}
	log_info("id=%s sid=%s event=policy server=%s stage=%s action=%s "
		 "text=\"%s\"",
	    c->txn->id, c->sid, srvname, stage_name(cp->stage),
	    policy_kind_name(a.kind), log_quote(q, sizeof(q), p, n));
	switch (a.kind) {
	case POLICY_OK:
		cp_finish(cp);
		return;
	case POLICY_DISCARD:
		c->txn->policy_discard = true;
		cp_finish(cp);
		return;
	case POLICY_CODE:
	case POLICY_REJECT:
	case POLICY_DEFER:
	case POLICY_DEFER_IF_PERMIT:
		if (a.code >= 500 && cp->defer_if_reject) {
			cp_refuse(cp, 450, "4.7.1", cp->dir_text,
			    strlen(cp->dir_text));
			return;
		}
		if (a.text.len > 0)
			cp_refuse(cp, a.code, a.enh, a.text.p, a.text.len);
		else if (a.code >= 500)
			REFUSE_LIT(cp, a.code, a.enh, "Access denied");
		else
			REFUSE_LIT(cp, a.code, a.enh,
			    "Service unavailable, try again later");
		return;
	case POLICY_DEFER_IF_REJECT:
		if (!cp->defer_if_reject) {
			cp->defer_if_reject = true;
			str_fmt_cut(cp->dir_text, sizeof(cp->dir_text), "%.*s",
			    (int)a.text.len, a.text.p);
			if (cp->dir_text[0] == '\0')
				str_fmt_cut(cp->dir_text, sizeof(cp->dir_text),
				    "%s",
				    "Service unavailable, try again later");
		}
		break;
	case POLICY_PREPEND:
		cp_prepend(cp, &a);
		break;
	case POLICY_WARN:
	case POLICY_INFO:
		break; /* logged above */
	case POLICY_HOLD:
	case POLICY_REDIRECT:
	case POLICY_FILTER:
		/* not supported: deferring keeps the message with its sender,
		 * nothing delivered where the policy did not want it */
		log_warn("id=%s sid=%s event=policy_unsupported server=%s "
			 "action=%s result=tempfail",
		    c->txn->id, c->sid, srvname, policy_kind_name(a.kind));
		REFUSE_LIT(cp, 450, "4.7.1",
		    "Policy action not supported here, try again later");
		return;
	case POLICY_DUNNO:
	case POLICY_UNKNOWN:
		break;
	}
	cp_next(cp);
}

/* Ask the current server: an idle connection of it, or a new one. */
static void
cp_ask(struct conn_policy *cp)
{
	struct policy_pool *pl = cp->pool;
	const char *why = "connect";
	struct pconn *pc;

	if (cp->cur >= pl->n) {
		cp_finish(cp); /* nobody decided */
		return;
	}
	pc = pl->idle[cp->cur];
	if (pc != NULL && !cp->retried) {
		pc_unidle(pc);
		pc->reused = true;
	} else {
		pc = pc_open(pl, cp->cur, &why);
		if (pc == NULL) {
			log_warn("sid=%s event=policy_failed server=%s "
				 "stage=%s error=%s",
			    cp->c->sid, pl->name[cp->cur],
			    stage_name(cp->stage), why);
			cp_failed(cp);
			return;
		}
	}
	pc->cp = cp;
	cp->pc = pc;
	pc_arm(pc, cp->c->cf->policy_timeout);
	if (bufferevent_write(pc->bev, cp->req.data, cp->req.len) != 0)
		pc_fail(pc, "write");
}

static const char *
tls_value(const struct conn *c, int what, unsigned *bits)
{
	SSL *ssl;

	if (!c->tls || c->bev == NULL)
		return NULL;
	ssl = bufferevent_openssl_get_ssl(c->bev);
	if (ssl == NULL)
		return NULL;
	if (bits != NULL)
		*bits = (unsigned)SSL_get_cipher_bits(ssl, NULL);
	return what == 0 ? SSL_get_version(ssl) : SSL_get_cipher_name(ssl);
}

static unsigned
sa_port(const struct sockaddr_storage *sa)
{
	if (sa->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

static int
cp_build(struct conn_policy *cp, const char *rcpt)
{
	const struct conn *c = cp->c;
	const struct txn *t = c->txn;
	struct sockaddr_storage here;
	socklen_t hl = sizeof(here);
	char here_ip[INET6_ADDRSTRLEN] = "";
	char auth[SMTP_AUTH_PARAM_MAX + 1] = "";
	unsigned keysize = 0;
	size_t len = 0;
	struct policy_request r;

	memset(&here, 0, sizeof(here));
	if (getsockname(c->fd, (struct sockaddr *)&here, &hl) == 0) {
		if (here.ss_family == AF_INET)
			inet_ntop(AF_INET,
			    &((struct sockaddr_in *)&here)->sin_addr, here_ip,
			    sizeof(here_ip));
		else if (here.ss_family == AF_INET6)
			inet_ntop(AF_INET6,
			    &((struct sockaddr_in6 *)&here)->sin6_addr, here_ip,
			    sizeof(here_ip));
	}
	if (cp->stage == CONN_POLICY_EOM)
		(void)txn_content(t, &len);
	memset(&r, 0, sizeof(r));
	r.protocol_state =
	    cp->stage == CONN_POLICY_RCPT ? "RCPT" : "END-OF-MESSAGE";
	r.protocol_name = smtp_server_esmtp(c->smtp) ? "ESMTP" : "SMTP";
	r.helo_name = smtp_server_helo(c->smtp);
	r.queue_id = t->id;
	r.sender = t->sender;
	/* Postfix's rules: the recipient at RCPT, and at the end only when
	 * there is one; the count only at the end */
	if (cp->stage == CONN_POLICY_RCPT)
		r.recipient = rcpt;
	else if (t->nrcpt == 1)
		r.recipient = t->first_rcpt;
	r.recipient_count = cp->stage == CONN_POLICY_EOM ? t->nrcpt : 0;
	r.client_address = c->ip;
	r.client_name = "unknown"; /* ternd looks no name up */
	r.reverse_client_name = "unknown";
	r.client_port = sa_port(&c->sa);
	r.instance = t->id;
	if (c->authenticated) {
		r.sasl_method = c->auth_mech;
		r.sasl_username = c->auth_user;
	}
	if (t->params.has_auth) { /* MAIL's AUTH=<addr>, as Postfix: bare */
		size_t al = strlen(t->params.auth);

		if (al > 2 && t->params.auth[0] == '<' &&
		    t->params.auth[al - 1] == '>')
			str_fmt_cut(auth, sizeof(auth), "%.*s", (int)(al - 2),
			    t->params.auth + 1);
		else if (strcmp(t->params.auth, "<>") != 0)
			str_fmt_cut(auth, sizeof(auth), "%s", t->params.auth);
		r.sasl_sender = auth;
	}
	r.size = cp->stage == CONN_POLICY_EOM ? (uint64_t)len
		 : t->params.has_size	      ? t->params.size
					      : 0;
	r.encryption_protocol = tls_value(c, 0, NULL);
	r.encryption_cipher = tls_value(c, 1, &keysize);
	r.encryption_keysize = keysize;
	r.server_address = here_ip;
	r.server_port = sa_port(&here);
	r.policy_context = NULL;
	buf_reset(&cp->req);
	return policy_request_encode(&r, &cp->req);
}

bool
conn_policy_stage(struct conn *c, enum conn_policy_stage st, const char *rcpt,
    void (*done)(struct conn *))
{
	const struct conf *cf = c->cf;
	struct conn_policy *cp;

	if (cf->policy_servers == NULL || c->local || c->txn == NULL ||
	    (cf->policy_skip_authenticated && c->authenticated))
		return false;
	if (c->policy == NULL) {
		cp = xcalloc(1, sizeof(*cp));
		cp->c = c;
		cp->timer = evtimer_new(c->srv->base, cp_on_timer, cp);
		if (cp->timer == NULL)
			panic("event=policy error=evtimer_new");
		buf_init(&cp->req, POLICY_REQUEST_MAX);
		c->policy = cp;
	}
	cp = c->policy;
	cp->pool = pool_get(c);
	cp->stage = st;
	cp->cur = 0;
	cp->retried = false;
	cp->defer_if_reject = false;
	cp->refused = false;
	cp->done = done;
	c->pending = true;
	if (cp_build(cp, rcpt != NULL ? rcpt : "") != 0) {
		log_warn("id=%s sid=%s event=policy_failed stage=%s "
			 "error=request_encode",
		    c->txn->id, c->sid, stage_name(st));
		cp_failed(cp);
		return true;
	}
	cp_ask(cp);
	return true;
}

bool
conn_policy_refused(struct conn *c, const char *cmd, const char *addr)
{
	struct conn_policy *cp = c->policy;

	if (cp == NULL || !cp->refused)
		return false;
	cp->refused = false;
	conn_reject(c, cmd, cp->code, cp->enh, cp->text, addr);
	return true;
}

int
conn_policy_header(const struct conn *c, struct buf *h)
{
	const struct buf *b = &c->txn->policy_prepend;

	if (b->len == 0)
		return 0;
	return buf_append(h, b->data, b->len);
}

void
conn_policy_txn_free(struct txn *t)
{
	buf_free(&t->policy_prepend);
	t->policy_nprepend = 0;
	t->policy_discard = false;
}

void
conn_policy_free(struct conn *c)
{
	struct conn_policy *cp = c->policy;

	if (cp == NULL)
		return;
	if (cp->pc != NULL) {
		/* its answer would come to nobody: not reused */
		cp->pc->cp = NULL;
		pc_free(cp->pc);
	}
	event_free(cp->timer);
	buf_free(&cp->req);
	free(cp);
	c->policy = NULL;
}
