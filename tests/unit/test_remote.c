/*
 * Unit tests for src/deliver/remote.c: outbound delivery on a real event
 * loop, against a real DNS server and real SMTP peers, all on loopback.
 *
 *   DNS     /usr/sbin/dnsmasq (dnsmasq-base) on a free port of 127.0.0.1,
 *           zone "test" local (unknown names NXDOMAIN), MX hosts on
 *           127.0.0.2..11, a null MX, and dead.test forwarded to
 *           127.0.0.1#1, which never answers (DNS_TEMP).
 *   SMTP    a small scriptable server written here, on the same loop: it
 *           greets 220/421 or not at all, advertises PIPELINING, STARTTLS
 *           (a self-signed tls_server_ctx), DSN, SIZE, AUTH as told,
 *           answers RCPT per a table and the final dot as told, goes
 *           silent at a given command, and records every command line and
 *           every un-stuffed body.  All MX hosts listen on one port, each
 *           on its own 127.0.0.x; an address without a listener refuses.
 *   sink    Postfix's smtp-sink (/usr/sbin/smtp-sink, package postfix),
 *           when installed, as an independent peer.
 *
 * Child processes die with the test (PR_SET_PDEATHSIG) and are killed by
 * PID at the end.  No packet leaves loopback.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "deliver/dns.h"
#include "deliver/remote.h"
#include "tls/tls.h"
#include "util/util.h"

#include "t.h"

#define DNSMASQ	  "/usr/sbin/dnsmasq"
#define SMTP_SINK "/usr/sbin/smtp-sink"
#define WAIT_MS	  15000

static struct event_base *base;
static struct dns *dns;
static SSL_CTX *client_ctx, *server_ctx;
static int dns_port, smtp_port;
static pid_t dnsmasq_pid = -1;
static char tmp_root[64] = "/tmp/tern-test-remote-XXXXXX";

/* ======================================================================
 * The scriptable SMTP server
 * ====================================================================== */

#define TS_MAX_RCPT   8
#define TS_MAX_BODIES 4

struct ts_rcpt {
	const char *addr;
	const char *reply;
};

struct ts_conf {
	int greet; /* 220, 421...; 0: never greets */
	bool pipelining, starttls, dsn, auth;
	uint64_t size;			   /* SIZE's value; 0: no SIZE */
	struct ts_rcpt rcpts[TS_MAX_RCPT]; /* default "250 2.1.5 Ok" */
	const char *data_reply;		   /* default "250 2.0.0 Ok: queued" */
	const char *stall_on;		   /* verb answered by silence */
	const char *close_on;		   /* verb answered by a close */
	bool bad_tls;			   /* 220 to STARTTLS, then no TLS */
	bool implicit;			   /* TLS from the first byte */
};

struct ts_sess;

struct tsrv {
	struct ts_conf conf;
	struct evconnlistener *lis;
	int conns, messages, quits;
	int live, max_live; /* sessions open now, and at most */
	bool tls_seen;
	int resumed;	/* TLS handshakes that resumed the client's session */
	struct buf log; /* command lines, each + "\n" */
	struct buf bodies[TS_MAX_BODIES];
	int nbodies;
	struct ts_sess *sess;
};

struct ts_sess {
	struct ts_sess *next;
	struct tsrv *s;
	struct bufferevent *bev;
	int fd; /* -1 once TLS owns it */
	bool data, stalled, closing;
	bool notls; /* bad_tls: the ClientHello gets plain text */
	int accepted;
	struct buf cur;
};

static void
ts_sess_free(struct ts_sess *x)
{
	struct ts_sess **pp = &x->s->sess;

	while (*pp != x)
		pp = &(*pp)->next;
	*pp = x->next;
	x->s->live--;
	if (x->bev != NULL) {
		/* maybe inside its callback: delete its events before the close
		 */
		bufferevent_disable(x->bev, EV_READ | EV_WRITE);
		bufferevent_free(x->bev);
	}
	if (x->fd >= 0)
		close(x->fd);
	buf_free(&x->cur);
	free(x);
}

static void
ts_reply(struct ts_sess *x, const char *text)
{
	if (evbuffer_add_printf(
		bufferevent_get_output(x->bev), "%s\r\n", text) < 0)
		abort();
}

static void
ts_ehlo(struct ts_sess *x)
{
	const struct ts_conf *c = &x->s->conf;
	struct evbuffer *o = bufferevent_get_output(x->bev);

	evbuffer_add_printf(o, "250-mx.test Hello\r\n");
	if (c->pipelining)
		evbuffer_add_printf(o, "250-PIPELINING\r\n");
	if (c->size > 0)
		evbuffer_add_printf(
		    o, "250-SIZE %llu\r\n", (unsigned long long)c->size);
	if (c->starttls && x->fd >= 0)
		evbuffer_add_printf(o, "250-STARTTLS\r\n");
	if (c->dsn)
		evbuffer_add_printf(o, "250-DSN\r\n");
	if (c->auth && x->fd < 0)
		evbuffer_add_printf(o, "250-AUTH PLAIN LOGIN\r\n");
	evbuffer_add_printf(o, "250 8BITMIME\r\n");
}

static void ts_on_read(struct bufferevent *bev, void *arg);
static void ts_on_write(struct bufferevent *bev, void *arg);
static void ts_on_event(struct bufferevent *bev, short what, void *arg);

/* 220 straight to the socket, then TLS over it (the plain input dropped). */
static void
ts_starttls(struct ts_sess *x)
{
	struct evbuffer *o = bufferevent_get_output(x->bev);
	SSL *ssl = SSL_new(server_ctx);
	size_t n;
	const char *p;

	if (ssl == NULL)
		abort();
	ts_reply(x, "220 2.0.0 Ready to start TLS");
	n = evbuffer_get_length(o);
	p = (const char *)evbuffer_pullup(o, -1);
	if (send(x->fd, p, n, MSG_NOSIGNAL) != (ssize_t)n)
		abort();
	bufferevent_disable(x->bev, EV_READ | EV_WRITE);
	bufferevent_free(x->bev);
	x->bev = bufferevent_openssl_socket_new(
	    base, x->fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (x->bev == NULL)
		abort();
	x->fd = -1;
	bufferevent_setcb(x->bev, ts_on_read, ts_on_write, ts_on_event, x);
	bufferevent_enable(x->bev, EV_READ | EV_WRITE);
}

static const char *
ts_rcpt_reply(const struct tsrv *s, const char *line)
{
	const char *lt = strchr(line, '<'), *gt = lt ? strchr(lt, '>') : NULL;
	size_t i;

	for (i = 0; lt != NULL && gt != NULL && i < TS_MAX_RCPT; i++) {
		const struct ts_rcpt *r = &s->conf.rcpts[i];

		if (r->addr != NULL &&
		    strlen(r->addr) == (size_t)(gt - lt - 1) &&
		    strncmp(r->addr, lt + 1, (size_t)(gt - lt - 1)) == 0)
			return r->reply;
	}
	return "250 2.1.5 Ok";
}

static bool
verb_is(const char *line, const char *verb)
{
	return verb != NULL && strncasecmp(line, verb, strlen(verb)) == 0;
}

/* stall_on / close_on: true when x stops here (it may be freed). */
static bool
ts_misbehave(struct ts_sess *x, const char *line)
{
	if (verb_is(line, x->s->conf.stall_on)) {
		x->stalled = true;
		return true;
	}
	if (verb_is(line, x->s->conf.close_on)) {
		ts_sess_free(x);
		return true;
	}
	return false;
}

/* One command; returns false when the session stops reading this input. */
static bool
ts_command(struct ts_sess *x, const char *line)
{
	struct tsrv *s = x->s;
	const char *r;

	if (buf_append_str(&s->log, line) != 0 ||
	    buf_append(&s->log, "\n", 1) != 0)
		abort();
	if (ts_misbehave(x, line))
		return false;
	if (strncasecmp(line, "EHLO", 4) == 0) {
		ts_ehlo(x);
	} else if (strncasecmp(line, "HELO", 4) == 0) {
		ts_reply(x, "250 mx.test");
	} else if (strncasecmp(line, "STARTTLS", 8) == 0) {
		if (s->conf.bad_tls) {
			/* says yes, then speaks no TLS */
			ts_reply(x, "220 2.0.0 Ready to start TLS");
			x->notls = true;
			return false;
		}
		ts_starttls(x);
		return false;
	} else if (strncasecmp(line, "AUTH", 4) == 0) {
		ts_reply(x, "235 2.7.0 Authentication successful");
	} else if (strncasecmp(line, "MAIL", 4) == 0) {
		x->accepted = 0;
		ts_reply(x, "250 2.1.0 Ok");
	} else if (strncasecmp(line, "RCPT", 4) == 0) {
		r = ts_rcpt_reply(s, line);
		x->accepted += r[0] == '2';
		ts_reply(x, r);
	} else if (strncasecmp(line, "DATA", 4) == 0) {
		x->data = x->accepted > 0;
		ts_reply(x, x->data ? "354 End data with <CR><LF>.<CR><LF>"
				    : "554 5.5.1 Error: no valid recipients");
	} else if (strncasecmp(line, "RSET", 4) == 0 ||
		   strncasecmp(line, "NOOP", 4) == 0) {
		ts_reply(x, "250 2.0.0 Ok");
	} else if (strncasecmp(line, "QUIT", 4) == 0) {
		s->quits++;
		ts_reply(x, "221 2.0.0 Bye");
		x->closing = true;
		return false;
	} else {
		ts_reply(x, "502 5.5.2 Error: command not recognized");
	}
	return true;
}

/* One line of message content (CRLF stripped). */
static void
ts_data_line(struct ts_sess *x, const char *line, size_t n)
{
	struct tsrv *s = x->s;
	const char *r =
	    s->conf.data_reply ? s->conf.data_reply : "250 2.0.0 Ok: queued";

	if (n == 1 && line[0] == '.') {
		if (s->nbodies < TS_MAX_BODIES) {
			struct buf *b = &s->bodies[s->nbodies++];

			buf_init(b, 8u << 20);
			if (buf_append(b, x->cur.data ? x->cur.data : "",
				x->cur.len) != 0)
				abort();
		}
		buf_reset(&x->cur);
		x->data = false;
		x->accepted = 0;
		s->messages += r[0] == '2';
		ts_reply(x, r);
		return;
	}
	if (n > 0 && line[0] == '.') {
		line++;
		n--;
	}
	if (buf_append(&x->cur, line, n) != 0 ||
	    buf_append(&x->cur, "\r\n", 2) != 0)
		abort();
}

static void
ts_on_read(struct bufferevent *bev, void *arg)
{
	struct ts_sess *x = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n;
	char *line;

	if (x->notls) {
		(void)evbuffer_drain(in, evbuffer_get_length(in));
		ts_reply(x, "this is not TLS");
		x->notls = false;
		x->closing = true;
		return;
	}
	while (!x->stalled && !x->closing &&
	       (line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF_STRICT)) !=
		   NULL) {
		bool go_on = true;

		if (x->data)
			ts_data_line(x, line, n);
		else
			go_on = ts_command(x, line);
		free(line);
		if (!go_on)
			return;
	}
	if (x->stalled)
		(void)evbuffer_drain(in, evbuffer_get_length(in));
}

static void
ts_on_write(struct bufferevent *bev, void *arg)
{
	struct ts_sess *x = arg;

	if (x->closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		ts_sess_free(x);
}

static void
ts_on_event(struct bufferevent *bev, short what, void *arg)
{
	struct ts_sess *x = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		x->s->tls_seen = true;
		x->s->resumed +=
		    SSL_session_reused(bufferevent_openssl_get_ssl(bev)) == 1;
		return;
	}
	ts_sess_free(x);
}

static void
ts_on_accept(struct evconnlistener *lis, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct tsrv *s = arg;
	struct ts_sess *x = xcalloc(1, sizeof(*x));
	char greet[64];
	int one = 1;

	(void)lis;
	(void)sa;
	(void)salen;
	x->s = s;
	x->fd = fd;
	/* replies are written piecemeal: no Nagle delay on loopback */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	buf_init(&x->cur, 8u << 20);
	if (s->conf.implicit) {
		/* the greeting waits in the output until the handshake ends */
		SSL *ssl = SSL_new(server_ctx);

		if (ssl == NULL)
			abort();
		x->bev = bufferevent_openssl_socket_new(base, fd, ssl,
		    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
		x->fd = -1;
	} else {
		x->bev = bufferevent_socket_new(base, fd, 0);
	}
	if (x->bev == NULL)
		abort();
	x->next = s->sess;
	s->sess = x;
	s->conns++;
	if (++s->live > s->max_live)
		s->max_live = s->live;
	bufferevent_setcb(x->bev, ts_on_read, ts_on_write, ts_on_event, x);
	bufferevent_enable(x->bev, EV_READ | EV_WRITE);
	if (s->conf.greet == 0)
		return;
	if (str_fmt(greet, sizeof(greet), "%d %s", s->conf.greet,
		s->conf.greet == 220 ? "mx.test ESMTP" : "4.3.2 Too busy") != 0)
		abort();
	ts_reply(x, greet);
	x->closing = s->conf.greet != 220;
}

static struct tsrv *
ts_start(const char *ip, const struct ts_conf *conf)
{
	struct tsrv *s = xcalloc(1, sizeof(*s));
	struct sockaddr_in sa = {.sin_family = AF_INET};

	s->conf = *conf;
	buf_init(&s->log, 1u << 20);
	sa.sin_port = htons((uint16_t)smtp_port);
	if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1)
		abort();
	s->lis = evconnlistener_new_bind(base, ts_on_accept, s,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16,
	    (struct sockaddr *)&sa, sizeof(sa));
	if (s->lis == NULL) {
		fprintf(stderr, "cannot listen on %s:%d\n", ip, smtp_port);
		abort();
	}
	return s;
}

static void
ts_stop(struct tsrv *s)
{
	int i;

	while (s->sess != NULL)
		ts_sess_free(s->sess);
	evconnlistener_free(s->lis);
	buf_free(&s->log);
	for (i = 0; i < s->nbodies; i++)
		buf_free(&s->bodies[i]);
	free(s);
}

/* How often line (a prefix, case-sensitive) starts a logged command. */
static int
ts_count(const struct tsrv *s, const char *prefix)
{
	const char *p = s->log.data;
	int n = 0;

	while (p != NULL && *p != '\0') {
		if (strncmp(p, prefix, strlen(prefix)) == 0)
			n++;
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	return n;
}

/* ======================================================================
 * Helpers
 * ====================================================================== */

static void
loop_ms(unsigned ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	if (event_base_loopexit(base, &tv) != 0 || event_base_loop(base, 0) < 0)
		abort();
}

/* Run the loop until *cond >= want or ms passed. */
static void
loop_until(const int *cond, int want, unsigned ms)
{
	uint64_t end = time_now_ms() + ms;

	while (*cond < want && time_now_ms() < end)
		loop_ms(10);
}

/* Sessions kept idle for a next message QUIT now, not in
 * REMOTE_IDLE_SECS; then wait until every connection is gone. */
static void
loop_until_idle(struct remote *r, unsigned ms)
{
	uint64_t end = time_now_ms() + ms;

	remote_idle_quit(r);
	while (remote_connections(r) > 0 && time_now_ms() < end)
		loop_ms(10);
}

struct got {
	int calls;
	size_t n;
	struct smtp_client_result res[TS_MAX_RCPT];
	char mx[300];
	int *order; /* appended to when done runs */
	int tag;
	int *order_n;
};

static void
on_done(void *arg, const struct smtp_client_result *results, size_t n,
    const char *mx)
{
	struct got *g = arg;
	size_t i;

	g->calls++;
	g->n = n;
	for (i = 0; i < n && i < TS_MAX_RCPT; i++)
		g->res[i] = results[i];
	if (str_copy(g->mx, sizeof(g->mx), mx, strlen(mx)) != 0)
		abort();
	if (g->order != NULL)
		g->order[(*g->order_n)++] = g->tag;
}

static struct remote *
mk_remote(unsigned max, unsigned tcmd, const char *smarthost)
{
	struct remote_conf rc = {
	    .helo = "client.test",
	    .port = (unsigned)smtp_port,
	    .smarthost = smarthost,
	    .max_per_dest = max,
	    .timeout_connect = 5,
	    .timeout_command = tcmd,
	};
	struct remote *r = remote_new(base, dns, client_ctx, &rc);

	if (r == NULL)
		abort();
	return r;
}

/* A file holding content, already unlinked. */
static int
msg_fd(const char *content, size_t len)
{
	char path[128];
	int fd;

	if (str_fmt(path, sizeof(path), "%s/msgXXXXXX", tmp_root) != 0 ||
	    (fd = mkstemp(path)) < 0 || unlink(path) != 0)
		abort();
	if (len > 0 && write(fd, content, len) != (ssize_t)len)
		abort();
	return fd;
}

/* send_msg puts the content this far into its file, between other
 * bytes, as the queue's log keeps it inside a segment. */
static size_t send_off;

/* Deliver content from sender to rcpts (NULL-terminated) in domain. */
static void
send_msg(struct remote *r, const char *domain, const char *sender,
    const char *const *rcpts, const char *content, size_t len, struct got *g)
{
	struct smtp_client_rcpt rc[TS_MAX_RCPT];
	struct remote_msg m = {
	    .id = "T0001",
	    .domain = domain,
	    .sender = sender,
	    .rcpts = rc,
	    .size = len,
	};
	size_t n;

	memset(rc, 0, sizeof(rc));
	for (n = 0; n < TS_MAX_RCPT && rcpts[n] != NULL; n++)
		rc[n].addr = rcpts[n];
	m.nrcpts = n;
	if (send_off == 0) {
		m.data_fd = msg_fd(content, len);
	} else {
		/* the records around it in a segment */
		char *f = xmalloc(send_off + len + 100);

		memset(f, 'X', send_off);
		memcpy(f + send_off, content, len);
		memset(f + send_off + len, 'Y', 100);
		m.data_fd = msg_fd(f, send_off + len + 100);
		m.data_off = send_off;
		free(f);
	}
	m.data_len = len;
	remote_deliver(r, &m, on_done, g);
	close(m.data_fd);
	T_CHECK_INT(g->calls, 0); /* never inside remote_deliver() */
}

static const char small_msg[] = "Subject: hi\r\n\r\nHello.\r\n";

static void
send_small(
    struct remote *r, const char *domain, const char *rcpt, struct got *g)
{
	const char *rcpts[] = {rcpt, NULL};

	memset(g, 0, sizeof(*g));
	send_msg(r, domain, "a@client.test", rcpts, small_msg,
	    sizeof(small_msg) - 1, g);
}

static bool
has(const char *hay, const char *needle)
{
	bool ok = hay != NULL && strstr(hay, needle) != NULL;

	if (!ok)
		fprintf(stderr, "  \"%s\" not in \"%s\"\n", needle,
		    hay ? hay : "(null)");
	return ok;
}

/* ======================================================================
 * Tests
 * ====================================================================== */

/* Lines of filler until b->len == at, then line (at == a chunk start). */
static void
body_fill(struct buf *b, size_t at, const char *line)
{
	while (b->len + 80 < at)
		if (buf_append_str(b,
			"filler filler filler filler filler filler filler "
			"filler filler filler filler\r\n") != 0)
			abort();
	while (b->len + 2 < at)
		if (buf_append(b, "x", 1) != 0)
			abort();
	if (buf_append(b, "\r\n", 2) != 0 || buf_append_str(b, line) != 0)
		abort();
}

static void
test_body_exact(void)
{
	struct ts_conf conf = {
	    .greet = 220, .pipelining = true, .size = 10000000};
	struct tsrv *s = ts_start("127.0.0.2", &conf);
	struct remote *r = mk_remote(0, 10, NULL);
	const char *rcpts[] = {"b@one.test", NULL};
	struct buf b;
	struct got g = {0};

	buf_init(&b, 1u << 20);
	if (buf_append_str(&b,
		"From: a@client.test\r\nSubject: dots\r\n\r\n"
		".\r\n..\r\n.leading dot\r\nmiddle . dot\r\n\r\n.\r\n\r\n") !=
	    0)
		abort();
	body_fill(&b, 65536, ".at the first chunk boundary\r\n");
	/* a CRLF across the second boundary, a dot right after it */
	body_fill(&b, 131071, "\r");
	if (buf_append_str(&b, "\n.after the straddling CRLF\r\n") != 0)
		abort();
	body_fill(&b, 300000, "last line\r\n.\r\n");
	send_msg(r, "one.test", "a@client.test", rcpts, b.data, b.len, &g);
	loop_until(&g.calls, 1, WAIT_MS);
	T_CHECK_INT(g.calls, 1);
	T_CHECK_INT(g.n, 1);
	T_CHECK_INT(g.res[0].cls, SMTP_RESULT_OK);
	T_CHECK_INT(g.res[0].code, 250);
	T_CHECK_STR(g.res[0].cmd, "end of data");
	T_CHECK_STR(g.mx, "mx1.one.test");
	T_CHECK_INT(s->nbodies, 1);
	if (s->nbodies == 1) {
		T_CHECK_INT(s->bodies[0].len, b.len);
		T_CHECK(s->bodies[0].len == b.len &&
			memcmp(s->bodies[0].data, b.data, b.len) == 0);
	}
	T_CHECK(has(s->log.data, "EHLO client.test\n"));
	T_CHECK(has(s->log.data, "MAIL FROM:<a@client.test> SIZE="));
	T_CHECK(has(s->log.data, "RCPT TO:<b@one.test>\n"));
	loop_until_idle(r, WAIT_MS);
	T_CHECK_INT(s->quits, 1);

	t_case("the same body at an odd offset of its file (the log)");
	memset(&g, 0, sizeof(g));
	send_off = 5003;
	send_msg(r, "one.test", "a@client.test", rcpts, b.data, b.len, &g);
	send_off = 0;
	loop_until(&g.calls, 1, WAIT_MS);
	T_CHECK_INT(g.res[0].code, 250);
	T_CHECK_INT(s->nbodies, 2);
	if (s->nbodies == 2)
		T_CHECK(s->bodies[1].len == b.len &&
			memcmp(s->bodies[1].data, b.data, b.len) == 0);
	loop_until_idle(r, WAIT_MS);
	T_CHECK_INT(remote_connections(r), 0);
	remote_free(r);
	ts_stop(s);
	buf_free(&b);
}

static void
test_empty_body(void)
{
	struct ts_conf conf = {.greet = 220};
	struct tsrv *s = ts_start("127.0.0.2", &conf);
	struct remote *r = mk_remote(0, 10, NULL);
	const char *rcpts[] = {"b@one.test", NULL};
	struct got g = {0};

	send_msg(r, "one.test", "", rcpts, "", 0, &g);
	loop_until(&g.calls, 1, WAIT_MS);
	T_CHECK_INT(g.res[0].cls, SMTP_RESULT_OK);
	T_CHECK(has(s->log.data, "MAIL FROM:<>"));
	T_CHECK_INT(s->nbodies, 1);
	T_CHECK_INT(s->nbodies == 1 ? s->bodies[0].len : 99, 0);
	remote_free(r);
	ts_stop(s);
}

static void
test_mixed_results(void)
{
	struct ts_conf conf = {.greet = 220,
	    .pipelining = true,
	    .rcpts = {
		{"bad@one.test", "550 5.1.1 <bad@one.test>: User unknown"},
		{"later@one.test", "451 4.2.0 Try later"},
	    }};
	struct tsrv *s = ts_start("127.0.0.2", &conf);
	struct remote *r = mk_remote(0, 10, NULL);
	const char *rcpts[] = {"ok@one.test", "bad@one.test", "later@one.test",
	    "ok2@one.test", NULL};
	struct got g = {0};

	send_msg(r, "one.test", "a@client.test", rcpts, small_msg,
	    sizeof(small_msg) - 1, &g);
	loop_until(&g.calls, 1, WAIT_MS);
	T_CHECK_INT(g.n, 4);
	T_CHECK_INT(g.res[0].cls, SMTP_RESULT_OK);
	T_CHECK_INT(g.res[1].cls, SMTP_RESULT_PERM);
	T_CHECK_INT(g.res[1].code, 550);
	T_CHECK_STR(g.res[1].enh, "5.1.1");
	T_CHECK_STR(g.res[1].cmd, "RCPT TO");
	T_CHECK(g.res[1].remote);
	T_CHECK_INT(g.res[2].cls, SMTP_RESULT_TEMP);
	T_CHECK_INT(g.res[2].code, 451);
	T_CHECK_INT(g.res[3].cls, SMTP_RESULT_OK);
	T_CHECK_INT(ts_count(s, "DATA"), 1);
	T_CHECK_INT(s->messages, 1);

	t_case("data refused: 554 for all, 451 for all");
	s->conf.data_reply = "554 5.7.1 Spam";
	send_small(r, "one.test", "x@one.test", &g);
	loop_until(&g.calls, 1, WAIT_MS);
	T_CHECK_INT(g.res[0].cls, SMTP_RESULT_PERM);
	T_CHECK_INT(g.res[0].code, 554);
	T_CHECK_STR(g.res[0].text, "Spam");
	s->conf.data_reply = "451 4.3.0 Disk full";
	send_small(r, "one.test", "x@one.test", &g);
	loop_until(&g.calls, 1, WAIT_MS);
	T_CHECK_INT(g.res[0].cls, SMTP_RESULT_TEMP);
	T_CHECK_STR(g.res[0].enh, "4.3.0");
	remote_free(r);
	ts_stop(s);
}

static void
test_mx_refused_then_next(void)
{
	struct ts_conf conf = {.greet = 220, .pipelining = true};
	struct tsrv *s = ts_start("127.0.0.4", &conf);
	struct remote *r = mk_remote(0, 10, NULL);
	struct got g;

	send_small(r, "two.test", "b@two.test", &g);
	loop_until(&g.calls, 1, WAIT_MS);
	T_CHECK_INT(g.calls, 1);
	T_CHECK_INT(g.res[0].cls, SMTP_RESULT_OK);
	T_CHECK_STR(g.mx, "mxb.two.test");
	T_CHECK_INT(s->messages, 1);
	remote_free(r);
	ts_stop(s);
}

static void
test_421_greeting_then_next(void)
{
	struct ts_conf busy = {.greet = 421}, ok = {.greet = 220};
	struct tsrv *a = ts_start("127.0.0.5", &busy);
	struct tsrv *b = ts_start("127.0.0.6", &ok);
	struct remote *r = mk_remote(0, 10, NULL);
	struct got g;

	send_small(r, "greet.test", "b@greet.test", &g);
	loop_until(&g.calls, 1, WAIT_MS);
	T_CHECK_INT(g.res[0].cls, SMTP_RESULT_OK);
	T_CHECK_STR(g.mx, "mxb.greet.test");
	T_CHECK_INT(a->conns, 1);
	T_CHECK_INT(a->messages, 0);
	T_CHECK_INT(b->messages, 1);

	t_case("both 421: TEMP with the last greeting");
	b->conf.greet = 421;
	loop_until_idle(r, WAIT_MS); /* the next message connects anew */
	send_small(r, "greet.test", "b@greet.test", &g);
	loop_until(&g.calls, 1, WAIT_MS);
	T_CHECK_INT(g.res[0].cls, SMTP_RESULT_TEMP);
	T_CHECK_INT(g.res[0].code, 421);
	T_CHECK(has(g.res[0].text, "mxb.greet.test[127.0.0.6]"));
	T_CHECK(has(g.res[0].text, "Too busy"));
	T_CHECK_STR(g.mx, "mxb.greet.test");
	loop_until_idle(r, WAIT_MS);
	T_CHECK_INT(remote_connections(r), 0);
	remote_free(r);
	ts_stop(a);
	ts_stop(b);
}

static void
test_all_down(void)
{
	struct remote *r = mk_remote(0, 10, NULL);
	struct got g, g2;
	char want[128];

	send_small(r, "down.test", "b@down.test", &g);
	send_small(r, "down.test", "c@down.test", &g2);
	loop_until(&g.calls, 1, WAIT_MS);
	loop_until(&g2.calls, 1, WAIT_MS);
	T_CHECK_INT(g.calls, 1);
	T_CHECK_INT(g.res[0].cls, SMTP_RESULT_TEMP);
	T_CHECK_INT(g.res[0].code, 451);
	T_CHECK_STR(g.res[0].enh, "4.4.1");
	if (str_fmt(want, sizeof(want),
		"connect to mx2.down.test[127.0.0.8]:%d: "
		"Connection refused",
		smtp_port) != 0)
		abort();
	T_CHECK_STR(g.res[0].text, want);
	T_CHECK_STR(g.mx, "");
	T_CHECK_INT(g2.res[0].cls, SMTP_RESULT_TEMP);
	T_CHECK_INT(remote_connections(r), 0);
	remote_free(r);
}

static void
test_dns_failures(void)
{
	struct remote *r = mk_remote(0, 10, NULL);
	struct got g;

	t_case("NXDOMAIN: PERM");
	send_small(r, "nx.test", "b@nx.test", &g);
	loop_until(&g.calls, 1, WAIT_MS);
	T_CHECK_INT(g.calls, 1);
	T_CHECK_INT(g.res[0].cls, SMTP_RESULT_PERM);
	T_CHECK_INT(g.res[0].code, 550);
	T_CHECK_STR(g.res[0].enh, "5.1.2");
	T_CHECK(has(g.res[0].text, "nx.test"));
	T_CHECK_STR(g.mx, "");

	t_case("null MX: PERM 556 5.1.10");
	send_small(r, "nullmx.test", "b@nullmx.test", &g);
	loop_until(&g.calls, 1, WAIT_MS);
	T_CHECK_INT(g.res[0].cls, SMTP_RESULT_PERM);
	T_CHECK_INT(g.res[0].code, 556);
	T_CHECK_STR(g.res[0].enh, "5.1.10");
	T_CHECK(has(g.res[0].text, "null MX"));

	t_case("resolver timeout: TEMP");
	send_small(r, "x.dead.test", "b@x.dead.test", &g);
	loop_until(&g.calls, 1, WAIT_MS);
	T_CHECK_INT(g.calls, 1);
	T_CHECK_INT(g.res[0].cls, SMTP_RESULT_TEMP);
	T_CHECK_STR(g.res[0].enh, "4.4.3");
	remote_free(r);
}

static void
test_starttls(void)
{
	struct ts_conf conf = {
	    .greet = 220, .pipelining = true, .starttls = true};
	struct tsrv *s = ts_start("127.0.0.2", &conf);
	struct remote *r = mk_remote(0, 10, NULL);
	struct got g;

	send_small(r, "one.test", "b@one.test", &g);
	loop_until(&g.calls, 1, WAIT_MS);
	T_CHECK_INT(g.res[0].cls, SMTP_RESULT_OK);
	T_CHECK(s->tls_seen);
	T_CHECK_INT(ts_count(s, "STARTTLS"), 1);
	T_CHECK_INT(ts_count(s, "EHLO"), 2); /* again inside TLS */
	T_CHECK_INT(s->messages, 1);
	T_CHECK(
	    s->nbodies == 1 && s->bodies[0].len == sizeof(small_msg) - 1 &&
	    memcmp(s->bodies[0].data, small_msg, sizeof(small_msg) - 1) == 0);
	loop_until_idle(r, WAIT_MS);
	T_CHECK_INT(s->quits, 1);
	remote_free(r);
	ts_stop(s);
}

/* The 2nd and later connections to an MX resume the session of the one
   before (tls/sesscache.h); another MX name at the same address does not
   get it; a new engine starts with none. */
static void
test_tls_resume(void)
{
	struct ts_conf conf = {
	    .greet = 220, .pipelining = true, .starttls = true};
	struct tsrv *s = ts_start("127.0.0.2", &conf);
	struct remote *r = mk_remote(0, 10, NULL);
	struct got g;
	int i;

	for (i = 0; i < 3; i++) {
		send_small(r, "one.test", "b@one.test", &g);
		loop_until(&g.calls, 1, WAIT_MS);
		T_CHECK_INT(g.res[0].cls, SMTP_RESULT_OK);
		loop_until_idle(r, WAIT_MS);
	}
	T_CHECK_INT(s->conns, 3);
	T_CHECK_INT(s->resumed, 2);
	t_case("another MX name at the same address: a full handshake");
	send_small(r, "alias.test", "b@alias.test", &g);
	loop_until(&g.calls, 1, WAIT_MS);
	T_CHECK_INT(g.res[0].cls, SMTP_RESULT_OK);
	loop_until_idle(r, WAIT_MS);
	T_CHECK_INT(s->conns, 4);
	T_CHECK_INT(s->resumed, 2);
	t_case("a new engine starts with none");
	remote_free(r);
	r = mk_remote(0, 10, NULL);
	send_small(r, "one.test", "b@one.test", &g);
	loop_until(&g.calls, 1, WAIT_MS);
	loop_until_idle(r, WAIT_MS);
	T_CHECK_INT(s->conns, 5);
	T_CHECK_INT(s->resumed, 2);
	remote_free(r);
	ts_stop(s);
}

static void
test_tls_fallback(void)
{
	struct ts_conf conf = {.greet = 220, .starttls = true, .bad_tls = true};
	struct tsrv *s = ts_start("127.0.0.2", &conf);
	struct remote *r = mk_remote(0, 10, NULL);
	struct got g;

	/* the handshake fails: the same address again, in plaintext */
	send_small(r, "one.test", "b@one.test", &g);
	loop_until(&g.calls, 1, WAIT_MS);
	T_CHECK_INT(g.res[0].cls, SMTP_RESULT_OK);
	T_CHECK_INT(s->conns, 2);
	T_CHECK_INT(ts_count(s, "STARTTLS"), 1);
	T_CHECK_INT(s->messages, 1);
	T_CHECK(!s->tls_seen);
	remote_free(r);
	ts_stop(s);
}

static void
test_smarthost_auth(void)
{
	struct ts_conf conf = {.greet = 220, .starttls = true, .auth = true};
	struct tsrv *s = ts_start("127.0.0.2", &conf);
	struct remote_conf rc = {
	    .helo = "client.test",
	    .port = 1,
	    .smarthost_user = "user",
	    .smarthost_pass = "pass",
	    .smarthost_tls = REMOTE_TLS_ENCRYPT,
	    .timeout_command = 10,
	};
	char sh[64];
	struct remote *r;
	struct got g;

	if (str_fmt(sh, sizeof(sh), "[127.0.0.2]:%d", smtp_port) != 0)
		abort();
	rc.smarthost = sh;
	r = remote_new(base, dns, client_ctx, &rc);
	T_CHECK(r != NULL);
	if (r == NULL)
		return;
	/* any domain goes to the smarthost, no DNS asked */
	send_small(r, "elsewhere.example", "b@elsewhere.example", &g);
	loop_until(&g.calls, 1, WAIT_MS);
	T_CHECK_INT(g.res[0].cls, SMTP_RESULT_OK);
	T_CHECK_STR(g.mx, "[127.0.0.2]");
	T_CHECK(s->tls_seen);
	/* base64 of "\0user\0pass" */
	T_CHECK(has(s->log.data, "AUTH PLAIN AHVzZXIAcGFzcw==\n"));
	remote_free(r);

	t_case("smarthost requires TLS, the peer has none: TEMP");
	s->conf.starttls = false;
	r = remote_new(base, dns, client_ctx, &rc);
	send_small(r, "elsewhere.example", "b@elsewhere.example", &g);
	loop_until(&g.calls, 1, WAIT_MS);
	T_CHECK_INT(g.res[0].cls, SMTP_RESULT_TEMP);
	T_CHECK(has(g.res[0].text, "TLS is required"));
	remote_free(r);
	ts_stop(s);
}

/*
 * relay.smarthost_tls against a smarthost with a self-signed certificate
 * for mx1.one.test (127.0.0.2): the credentials reach it only when the
 * certificate is trusted and names the host tern was told to use, or
 * when the admin chose encrypt.
 */
struct sm_case {
	const char *name;
	bool implicit;	  /* smtps: and an implicit TLS server */
	const char *host; /* smarthost host part */
	enum remote_tls mode;
	bool trust;	/* the server's certificate is the CA file */
	bool delivered; /* else TEMP 4.7.5 and no AUTH seen */
};

static void
smarthost_tls_case(const struct sm_case *k, const char *ca)
{
	struct ts_conf conf = {.greet = 220,
	    .starttls = !k->implicit,
	    .implicit = k->implicit,
	    .auth = true};
	struct tsrv *s = ts_start("127.0.0.2", &conf);
	struct remote_conf rc = {
	    .helo = "client.test",
	    .port = 1,
	    .smarthost_user = "user",
	    .smarthost_pass = "pass",
	    .smarthost_tls = k->mode,
	    .timeout_command = 10,
	};
	char err[512], sh[128];
	struct remote *r;
	struct got g;

	t_case(k->name);
	rc.smarthost_ctx = tls_client_ctx(k->mode == REMOTE_TLS_VERIFY,
	    k->trust ? ca : NULL, err, sizeof(err));
	if (rc.smarthost_ctx == NULL ||
	    str_fmt(sh, sizeof(sh), "%s%s:%d", k->implicit ? "smtps:" : "",
		k->host, smtp_port) != 0)
		abort();
	rc.smarthost = sh;
	r = remote_new(base, dns, client_ctx, &rc);
	SSL_CTX_free(rc.smarthost_ctx); /* r holds its own reference */
	T_CHECK(r != NULL);
	if (r == NULL) {
		ts_stop(s);
		return;
	}
	send_small(r, "elsewhere.example", "b@elsewhere.example", &g);
	loop_until(&g.calls, 1, WAIT_MS);
	if (k->delivered) {
		T_CHECK_INT(g.res[0].cls, SMTP_RESULT_OK);
		T_CHECK(has(s->log.data, "AUTH PLAIN AHVzZXIAcGFzcw==\n"));
	} else {
		T_CHECK_INT(g.res[0].cls, SMTP_RESULT_TEMP);
		T_CHECK_STR(g.res[0].enh, "4.7.5");
		T_CHECK_INT(ts_count(s, "AUTH"), 0);
		T_CHECK_INT(s->messages, 0);
	}
	remote_free(r);
	ts_stop(s);
}

static void
test_smarthost_tls(void)
{
	static const struct sm_case cases[] = {
	    {"verify, untrusted: handshake refused", false, "127.0.0.2",
		REMOTE_TLS_VERIFY, false, false},
	    {"verify, trusted, right name", false, "mx1.one.test",
		REMOTE_TLS_VERIFY, true, true},
	    {"verify, trusted, address not in the certificate", false,
		"127.0.0.2", REMOTE_TLS_VERIFY, true, false},
	    {"may, untrusted: no AUTH, deferred", false, "mx1.one.test",
		REMOTE_TLS_MAY, false, false},
	    {"may, trusted: AUTH", false, "mx1.one.test", REMOTE_TLS_MAY, true,
		true},
	    {"encrypt, untrusted: the admin named the risk", false, "127.0.0.2",
		REMOTE_TLS_ENCRYPT, false, true},
	    {"smtps, verify, untrusted", true, "mx1.one.test",
		REMOTE_TLS_VERIFY, false, false},
	    {"smtps, verify, trusted", true, "mx1.one.test", REMOTE_TLS_VERIFY,
		true, true},
	    {"smtps, may, untrusted", true, "mx1.one.test", REMOTE_TLS_MAY,
		false, false},
	    {"smtps, encrypt, untrusted", true, "mx1.one.test",
		REMOTE_TLS_ENCRYPT, false, true},
	};
	char ca[128];
	size_t i;

	if (str_fmt(ca, sizeof(ca), "%s/state/tls/cert.pem", tmp_root) != 0)
		abort();
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		smarthost_tls_case(&cases[i], ca);
}

static void
test_smarthost_parse(void)
{
	static const struct {
		const char *spec;
		bool ok;
	} cases[] = {
	    {"relay.example.net", true},
	    {"relay.example.net:587", true},
	    {"192.0.2.1", true},
	    {"192.0.2.1:25", true},
	    {"[192.0.2.1]:25", true},
	    {"[2001:db8::1]:25", true},
	    {"2001:db8::1", true},
	    {"[IPv6:2001:db8::1]", true},
	    {"[relay.example.net]", true},
	    {"smtps:relay.example.net", true},
	    {"SMTPS:[192.0.2.1]:1465", true},
	    {"smtps:", false},
	    {"smtps:bad host", false},
	    {"relay.example.net:", false},
	    {"relay.example.net:0", false},
	    {"relay.example.net:70000", false},
	    {"[192.0.2.1", false},
	    {"bad host", false},
	    {"[192.0.2.1]x", false},
	};
	struct remote_conf rc = {.helo = "client.test"};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct remote *r;

		t_case(cases[i].spec);
		rc.smarthost = cases[i].spec;
		r = remote_new(base, dns, NULL, &rc);
		T_CHECK_INT(r != NULL, cases[i].ok);
		remote_free(r);
	}
	t_case("bad helo");
	rc.smarthost = NULL;
	rc.helo = "two words";
	T_CHECK(remote_new(base, dns, NULL, &rc) == NULL);
}

static void
test_reuse(void)
{
	struct ts_conf conf = {.greet = 220, .pipelining = true};
	struct tsrv *s = ts_start("127.0.0.2", &conf);
	struct remote *r = mk_remote(1, 10, NULL);
	struct got g1, g2;

	send_small(r, "one.test", "b@one.test", &g1);
	send_small(r, "one.test", "c@one.test", &g2);
	loop_until(&g2.calls, 1, WAIT_MS);
	T_CHECK_INT(g1.calls, 1);
	T_CHECK_INT(g2.calls, 1);
	T_CHECK_INT(g1.res[0].cls, SMTP_RESULT_OK);
	T_CHECK_INT(g2.res[0].cls, SMTP_RESULT_OK);
	T_CHECK_INT(s->conns, 1);
	T_CHECK_INT(ts_count(s, "EHLO"), 1);
	T_CHECK_INT(ts_count(s, "MAIL FROM"), 2);
	T_CHECK_INT(s->messages, 2);
	loop_until_idle(r, WAIT_MS);
	T_CHECK_INT(s->quits, 1);

	t_case("after a refused message: RSET, then the next");
	s->conf.rcpts[0] = (struct ts_rcpt){"no@one.test", "550 5.1.1 No"};
	send_small(r, "one.test", "no@one.test", &g1);
	send_small(r, "one.test", "c@one.test", &g2);
	loop_until(&g2.calls, 1, WAIT_MS);
	T_CHECK_INT(g1.res[0].cls, SMTP_RESULT_PERM);
	T_CHECK_INT(g2.res[0].cls, SMTP_RESULT_OK);
	T_CHECK_INT(s->conns, 2);
	T_CHECK_INT(ts_count(s, "RSET"), 1);
	remote_free(r);
	ts_stop(s);
}

static void
test_max_per_dest_order(void)
{
	struct ts_conf conf = {.greet = 220};
	struct tsrv *s = ts_start("127.0.0.2", &conf);
	struct remote *r = mk_remote(1, 10, NULL);
	const char *rcpts[] = {"b@one.test", NULL};
	const char *senders[] = {
	    "m1@client.test", "m2@client.test", "m3@client.test"};
	struct got g[3];
	int order[3], norder = 0, i;

	for (i = 0; i < 3; i++) {
		memset(&g[i], 0, sizeof(g[i]));
		g[i].order = order;
		g[i].order_n = &norder;
		g[i].tag = i;
		send_msg(r, "one.test", senders[i], rcpts, small_msg,
		    sizeof(small_msg) - 1, &g[i]);
	}
	T_CHECK_INT(remote_connections(r), 0); /* DNS first */
	loop_until(&norder, 3, WAIT_MS);
	T_CHECK_INT(norder, 3);
	T_CHECK_INT(s->max_live, 1);
	T_CHECK(norder == 3 && order[0] == 0 && order[1] == 1 && order[2] == 2);
	T_CHECK(has(s->log.data,
	    "MAIL FROM:<m1@client.test>\nRCPT TO:<b@one.test>\n"
	    "DATA\nMAIL FROM:<m2@client.test>\nRCPT TO:<b@one.test>\nDATA\n"
	    "MAIL FROM:<m3@client.test>"));
	T_CHECK_INT(s->conns, 1);
	remote_free(r);
	ts_stop(s);
}

static void
test_stall(void)
{
	struct ts_conf stall = {.greet = 220, .stall_on = "MAIL"};
	struct ts_conf ok = {.greet = 220};
	struct tsrv *a = ts_start("127.0.0.9", &stall);
	struct tsrv *b = ts_start("127.0.0.10", &ok);
	struct remote *r = mk_remote(0, 1, NULL);
	struct got g;

	send_small(r, "stall.test", "b@stall.test", &g);
	loop_until(&g.calls, 1, WAIT_MS);
	T_CHECK_INT(g.res[0].cls, SMTP_RESULT_OK);
	T_CHECK_STR(g.mx, "mxb.stall.test");
	T_CHECK_INT(a->conns, 1);
	T_CHECK_INT(b->messages, 1);

	t_case("the first MX closes at MAIL: the next one");
	a->conf.stall_on = NULL;
	a->conf.close_on = "MAIL";
	loop_until_idle(r, WAIT_MS); /* the next message connects anew */
	send_small(r, "stall.test", "b@stall.test", &g);
	loop_until(&g.calls, 1, WAIT_MS);
	T_CHECK_INT(g.res[0].cls, SMTP_RESULT_OK);
	T_CHECK_STR(g.mx, "mxb.stall.test");
	T_CHECK_INT(a->conns, 2);
	T_CHECK_INT(b->messages, 2);

	t_case("the only MX stalls: TEMP with the timeout");
	a->conf.close_on = NULL;
	a->conf.stall_on = "MAIL";
	send_small(r, "stall1.test", "b@stall1.test", &g);
	loop_until(&g.calls, 1, WAIT_MS);
	T_CHECK_INT(g.res[0].cls, SMTP_RESULT_TEMP);
	T_CHECK_STR(g.res[0].enh, "4.4.2");
	T_CHECK(
	    has(g.res[0].text, "timeout waiting for reply to MAIL FROM from "
			       "mxa.stall.test[127.0.0.9]"));

	t_case("silent greeting");
	a->conf.greet = 0;
	send_small(r, "stall1.test", "b@stall1.test", &g);
	loop_until(&g.calls, 1, WAIT_MS);
	T_CHECK_INT(g.res[0].cls, SMTP_RESULT_TEMP);
	T_CHECK(has(g.res[0].text, "reply to greeting"));
	T_CHECK_STR(g.mx, "");
	remote_free(r);
	ts_stop(a);
	ts_stop(b);
}

static void
test_size_too_big(void)
{
	struct ts_conf conf = {.greet = 220, .pipelining = true, .size = 1000};
	struct tsrv *s = ts_start("127.0.0.2", &conf);
	struct remote *r = mk_remote(0, 10, NULL);
	const char *rcpts[] = {"b@one.test", "c@one.test", NULL};
	char big[5000];
	struct got g = {0};

	memset(big, 'a', sizeof(big));
	memcpy(big + sizeof(big) - 2, "\r\n", 2);
	send_msg(r, "one.test", "a@client.test", rcpts, big, sizeof(big), &g);
	loop_until(&g.calls, 1, WAIT_MS);
	T_CHECK_INT(g.n, 2);
	T_CHECK_INT(g.res[0].cls, SMTP_RESULT_PERM);
	T_CHECK_INT(g.res[0].code, 552);
	T_CHECK_STR(g.res[0].enh, "5.3.4");
	T_CHECK_INT(g.res[1].cls, SMTP_RESULT_PERM);
	T_CHECK_INT(ts_count(s, "MAIL"), 0);
	T_CHECK_INT(ts_count(s, "DATA"), 0);
	remote_free(r);
	ts_stop(s);
}

static void
test_cancel(void)
{
	struct ts_conf conf = {.greet = 0};
	struct tsrv *s = ts_start("127.0.0.2", &conf);
	struct remote *r = mk_remote(1, 10, NULL);
	struct got g1, g2, g3;

	send_small(r, "one.test", "b@one.test", &g1);
	send_small(r, "one.test", "c@one.test", &g2); /* waits: max 1 */
	loop_until(&s->conns, 1, WAIT_MS);
	T_CHECK_INT(remote_connections(r), 1);
	T_CHECK_INT(remote_cancel(r, &g2), 1);
	T_CHECK_INT(remote_cancel(r, &g1), 1);
	T_CHECK_INT(remote_connections(r), 0);
	loop_ms(200);
	T_CHECK_INT(g1.calls, 0);
	T_CHECK_INT(g2.calls, 0);

	t_case("cancel a finished delivery before its callback");
	send_small(r, "nx.test", "b@nx.test", &g3);
	loop_ms(300); /* DNS answers: the callback is queued or ran */
	(void)remote_cancel(r, &g3);
	loop_ms(50);
	T_CHECK(g3.calls <= 1);

	t_case("bad envelope: PERM, later");
	send_small(r, "one.test", "bad\001@one.test", &g3);
	loop_until(&g3.calls, 1, WAIT_MS);
	T_CHECK_INT(g3.res[0].cls, SMTP_RESULT_PERM);

	t_case("remote_free with deliveries pending: no callback");
	send_small(r, "one.test", "b@one.test", &g1);
	loop_until(&s->conns, 2, WAIT_MS);
	remote_free(r);
	loop_ms(50);
	T_CHECK_INT(g1.calls, 0);
	ts_stop(s);
}

/* remote_free() from inside a callback; remote_deliver() too. */
static struct remote *cb_remote;

static void
on_done_free(void *arg, const struct smtp_client_result *results, size_t n,
    const char *mx)
{
	on_done(arg, results, n, mx);
	remote_free(cb_remote);
}

static void
test_free_in_callback(void)
{
	const char *rcpts[] = {"b@nx.test", NULL};
	struct smtp_client_rcpt rc = {.addr = rcpts[0]};
	struct remote_msg m = {.id = "T2",
	    .domain = "nx.test",
	    .sender = "",
	    .rcpts = &rc,
	    .nrcpts = 1,
	    .size = 3};
	struct got g1 = {0}, g2 = {0};

	cb_remote = mk_remote(0, 10, NULL);
	m.data_fd = msg_fd("x\r\n", 3);
	m.data_len = 3;
	remote_deliver(cb_remote, &m, on_done_free, &g1);
	remote_deliver(cb_remote, &m, on_done_free, &g2);
	close(m.data_fd);
	loop_until(&g1.calls, 1, WAIT_MS);
	loop_ms(100);
	T_CHECK_INT(g1.calls + g2.calls, 1); /* the second was dropped */
}

static pid_t sink_pid = -1;

/* smtp-sink on 127.0.0.11, dumping each message into dir. */
static void
sink_start(const char *dir)
{
	char dump[128], listen_on[64];
	const char *argv[16];
	size_t n = 0;

	if (str_fmt(dump, sizeof(dump), "%s/msg", dir) != 0 ||
	    str_fmt(listen_on, sizeof(listen_on), "127.0.0.11:%d", smtp_port) !=
		0)
		abort();
	argv[n++] = SMTP_SINK;
	if (geteuid() == 0) {
		argv[n++] = "-u";
		argv[n++] = "nobody";
	}
	argv[n++] = "-d";
	argv[n++] = dump;
	argv[n++] = listen_on;
	argv[n++] = "10";
	argv[n] = NULL;
	if ((sink_pid = fork()) < 0)
		abort();
	if (sink_pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (null >= 0 && getenv("TERN_TEST_VERBOSE") == NULL) {
			(void)dup2(null, 1);
			(void)dup2(null, 2);
		}
		execv(SMTP_SINK, (char *const *)(uintptr_t)argv);
		_exit(127);
	}
}

/* Check and remove the dumped messages; returns how many there were. */
static int
sink_check(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int files = 0, fd;
	char path[512], content[4096];
	ssize_t got;

	while (d != NULL && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		files++;
		if (str_fmt(path, sizeof(path), "%s/%s", dir, e->d_name) != 0 ||
		    (fd = open(path, O_RDONLY)) < 0)
			continue;
		got = read(fd, content, sizeof(content) - 1);
		close(fd);
		content[got > 0 ? got : 0] = '\0';
		T_CHECK(has(content, "Subject: hi"));
		T_CHECK(has(content, "Hello."));
		(void)unlink(path);
	}
	if (d != NULL)
		closedir(d);
	return files;
}

static void
test_smtp_sink(void)
{
	char dir[64] = "/tmp/tern-test-sink-XXXXXX";
	struct remote *r;
	struct got g;

	if (access(SMTP_SINK, X_OK) != 0) {
		fprintf(stderr, "skip: %s not installed (package postfix)\n",
		    SMTP_SINK);
		return;
	}
	/* smtp-sink writes as nobody when started as root */
	if (mkdtemp(dir) == NULL || chmod(dir, 0777) != 0)
		abort();
	sink_start(dir);
	loop_ms(300);
	r = mk_remote(0, 10, NULL);
	send_small(r, "sink.test", "b@sink.test", &g);
	loop_until(&g.calls, 1, WAIT_MS);
	T_CHECK_INT(g.res[0].cls, SMTP_RESULT_OK);
	T_CHECK_INT(g.res[0].code, 250);
	T_CHECK_STR(g.mx, "mx.sink.test");
	loop_until_idle(r, WAIT_MS);
	T_CHECK_INT(sink_check(dir), 1);
	remote_free(r);
	kill(sink_pid, SIGTERM);
	(void)waitpid(sink_pid, NULL, 0);
	sink_pid = -1;
	(void)rmdir(dir);
}

/* ======================================================================
 * Set-up: ports, dnsmasq, TLS
 * ====================================================================== */

static const char *const dns_opts[] = {
    "--local=/test/",
    "--server=/dead.test/127.0.0.1#1",
    "--mx-host=one.test,mx1.one.test,10",
    "--host-record=mx1.one.test,127.0.0.2",
    "--mx-host=alias.test,mx1alias.one.test,10",
    "--host-record=mx1alias.one.test,127.0.0.2",
    "--mx-host=two.test,mxa.two.test,10",
    "--mx-host=two.test,mxb.two.test,20",
    "--host-record=mxa.two.test,127.0.0.3",
    "--host-record=mxb.two.test,127.0.0.4",
    "--mx-host=greet.test,mxa.greet.test,10",
    "--mx-host=greet.test,mxb.greet.test,20",
    "--host-record=mxa.greet.test,127.0.0.5",
    "--host-record=mxb.greet.test,127.0.0.6",
    "--mx-host=down.test,mx1.down.test,10",
    "--mx-host=down.test,mx2.down.test,20",
    "--host-record=mx1.down.test,127.0.0.7",
    "--host-record=mx2.down.test,127.0.0.8",
    "--mx-host=nullmx.test,.,0",
    "--mx-host=stall.test,mxa.stall.test,10",
    "--mx-host=stall.test,mxb.stall.test,20",
    "--host-record=mxa.stall.test,127.0.0.9",
    "--host-record=mxb.stall.test,127.0.0.10",
    "--mx-host=stall1.test,mxa.stall.test,10",
    "--mx-host=sink.test,mx.sink.test,10",
    "--host-record=mx.sink.test,127.0.0.11",
    NULL,
};

/* A TCP port free on 127.0.0.1..12, and for UDP on 127.0.0.1 if udp. */
static int
free_port(bool udp)
{
	for (int tries = 0; tries < 200; tries++) {
		struct sockaddr_in sa = {.sin_family = AF_INET};
		socklen_t len = sizeof(sa);
		int fds[13], n = 0, port = -1, i;
		bool ok = true;

		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		fds[n] = socket(AF_INET, SOCK_STREAM, 0);
		if (fds[n] < 0 ||
		    bind(fds[n], (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
		    getsockname(fds[n], (struct sockaddr *)&sa, &len) != 0)
			abort();
		n++;
		port = ntohs(sa.sin_port);
		for (i = 2; i <= 12 && ok; i++) {
			sa.sin_addr.s_addr = htonl(0x7f000000u | (uint32_t)i);
			fds[n] = socket(AF_INET, SOCK_STREAM, 0);
			ok = fds[n] >= 0 && bind(fds[n], (struct sockaddr *)&sa,
						sizeof(sa)) == 0;
			n++;
		}
		if (ok && udp) {
			sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
			fds[n] = socket(AF_INET, SOCK_DGRAM, 0);
			ok = fds[n] >= 0 && bind(fds[n], (struct sockaddr *)&sa,
						sizeof(sa)) == 0;
			n++;
		}
		for (i = 0; i < n; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		if (ok)
			return port;
	}
	abort();
}

static int
wait_listening(int port)
{
	for (int i = 0; i < 250; i++) {
		struct sockaddr_in sa = {.sin_family = AF_INET};
		int fd = socket(AF_INET, SOCK_STREAM, 0), rc;

		sa.sin_port = htons((uint16_t)port);
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
		close(fd);
		if (rc == 0)
			return 0;
		usleep(20000);
	}
	return -1;
}

static int
dnsmasq_start(void)
{
	static char portopt[32];
	const char *argv[64] = {DNSMASQ, "--no-daemon", "--no-resolv",
	    "--no-hosts", "--listen-address=127.0.0.1", "--bind-interfaces",
	    "--pid-file=", "--log-facility=-"};
	size_t n = 8, i;

	if (str_fmt(portopt, sizeof(portopt), "--port=%d", dns_port) != 0)
		abort();
	argv[n++] = portopt;
	if (geteuid() == 0) {
		/* stay root: a change of uid would clear PDEATHSIG */
		argv[n++] = "--user=root";
		argv[n++] = "--group=root";
	}
	for (i = 0; dns_opts[i] != NULL && n < 63; i++)
		argv[n++] = dns_opts[i];
	argv[n] = NULL;
	if ((dnsmasq_pid = fork()) < 0)
		abort();
	if (dnsmasq_pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0)
			_exit(126);
		if (getenv("TERN_TEST_VERBOSE") == NULL && null >= 0) {
			(void)dup2(null, 1);
			(void)dup2(null, 2);
		}
		execv(DNSMASQ, (char *const *)(uintptr_t)argv);
		_exit(127);
	}
	return wait_listening(dns_port);
}

static int
setup(void)
{
	char servers[64], err[512], state[128];

	if (mkdtemp(tmp_root) == NULL)
		return -1;
	dns_port = free_port(true);
	do
		smtp_port = free_port(false);
	while (smtp_port == dns_port);
	if (dnsmasq_start() != 0)
		return -1;
	if (str_fmt(servers, sizeof(servers), "127.0.0.1:%d", dns_port) != 0 ||
	    (dns = dns_new(base, servers, err, sizeof(err))) == NULL ||
	    dns_set_timeout(dns, 1500) != 0)
		return -1;
	if (str_fmt(state, sizeof(state), "%s/state", tmp_root) != 0 ||
	    mkdir(state, 0700) != 0)
		return -1;
	server_ctx = tls_server_ctx(
	    NULL, NULL, state, "mx1.one.test", NULL, err, sizeof(err));
	client_ctx = tls_client_ctx(false, NULL, err, sizeof(err));
	if (server_ctx == NULL || client_ctx == NULL) {
		fprintf(stderr, "tls: %s\n", err);
		return -1;
	}
	return 0;
}

static void
cleanup(void)
{
	char p[256];
	static const char *const files[] = {"state/tls/cert.pem",
	    "state/tls/key.pem", "state/tls", "state", ""};

	if (dnsmasq_pid > 0) {
		kill(dnsmasq_pid, SIGTERM);
		(void)waitpid(dnsmasq_pid, NULL, 0);
	}
	if (sink_pid > 0) {
		kill(sink_pid, SIGTERM);
		(void)waitpid(sink_pid, NULL, 0);
	}
	dns_free(dns);
	SSL_CTX_free(server_ctx);
	SSL_CTX_free(client_ctx);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		if (str_fmt(p, sizeof(p), "%s/%s", tmp_root, files[i]) != 0)
			continue;
		if (unlink(p) != 0)
			(void)rmdir(p);
	}
}

int
main(void)
{
	log_init("test_remote",
	    getenv("TERN_TEST_VERBOSE") ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERR);
	signal(SIGPIPE, SIG_IGN);
	if ((base = event_base_new()) == NULL)
		abort();
	if (setup() != 0) {
		t_case("setup");
		T_CHECK(!"dnsmasq, DNS and TLS set up");
	} else {
		T_RUN(test_body_exact);
		T_RUN(test_empty_body);
		T_RUN(test_mixed_results);
		T_RUN(test_mx_refused_then_next);
		T_RUN(test_421_greeting_then_next);
		T_RUN(test_all_down);
		T_RUN(test_dns_failures);
		T_RUN(test_starttls);
		T_RUN(test_tls_resume);
		T_RUN(test_tls_fallback);
		T_RUN(test_smarthost_auth);
		T_RUN(test_smarthost_tls);
		T_RUN(test_smarthost_parse);
		T_RUN(test_reuse);
		T_RUN(test_max_per_dest_order);
		T_RUN(test_stall);
		T_RUN(test_size_too_big);
		T_RUN(test_cancel);
		T_RUN(test_free_in_callback);
		T_RUN(test_smtp_sink);
	}
	cleanup();
	event_base_free(base);
	return t_summary();
}
