/*
 * loadgen: an SMTP load generator for tern's benchmarks (bench/run.sh).
 *
 * Each thread runs one epoll loop over its share of the sessions; every
 * session is a plain state machine over a non-blocking socket (OpenSSL in
 * non-blocking mode once STARTTLS is done).  Messages are claimed from one
 * shared counter, so "-n" is exact whatever the number of sessions.
 *
 *   loadgen -p PORT [-H 127.0.0.1] [-c sessions] [-n messages] [-d seconds]
 *           [-s body_bytes] [-r rcpt[,rcpt...]] [-R rcpts_per_message]
 *           [-P on|off] [-m messages_per_connection] [-S] [-t threads]
 *           [--watch-dir DIR]... [--watch-sink FILE] [--watch-timeout S]
 *           [--resume] [--tls13] [--src N]
 *   loadgen -p PORT --idle N [--hold S] [--ready-file FILE] [-S] [--src N]
 *   loadgen --sink PORT --sink-out FILE [--cert PEM --key PEM]
 *
 * --resume (with -S): TLS session resumption.  The sessions (tickets) the
 * server sends, from the first handshake on, are kept in a pool and each
 * is offered on one later handshake at a time (again after it, when the
 * server resumed it and sent no newer one, as Postfix does); the report
 * gives tls_handshakes= and tls_resumed= (SSL_session_reused).
 *
 * --tls13 (with -S): refuse anything older than TLS 1.3.
 *
 * --src N: the connections come from N loopback addresses in turn,
 * 127.0.0.2 on, so that many connections (scenario C at 50,000) do not
 * run out of ephemeral ports of one address.
 *
 * --sink PORT: no client at all, a counting SMTP sink on 127.0.0.1:PORT
 * (like smtp-sink -c, which has no TLS): it offers STARTTLS when given a
 * certificate, accepts every command, answers 250 to each message and
 * keeps "mesg=N rcpts=N conns=N tls=N resumed=N" in FILE (resumed: TLS
 * handshakes that resumed a session the client offered; rewritten after each
 * message, so --watch-sink FILE counts what it got).  One thread per
 * connection; it runs until it is killed.
 *
 * --message FILE sends that content (CRLF lines, dot-stuffed here) instead
 * of the generated one, e.g. a message signed in advance (scenario E).
 *
 * Latency is measured from the moment the last byte of the final
 * ".\r\n" was handed to the kernel to the moment the reply to it was
 * read.  Every reply that is not the expected positive one is counted by
 * its code; connection failures are counted apart.  "ok" is the number
 * of 250s after the data: the messages the server took responsibility
 * for.  With --watch-dir (Maildir new/ directories) or --watch-sink (the
 * output of smtp-sink -c or of --sink), loadgen then waits until that
 * many messages have arrived there (one copy per different accepted
 * address of each: with -R 100 over 10 -r addresses, 10 per message,
 * reported as ok_distinct=) and reports the end-to-end rate and any
 * shortfall.
 *
 * Output: a human summary on stderr, then one line of key=value pairs on
 * stdout, starting with "loadgen ".
 *
 * Build: cc -O2 -o build/loadgen bench/loadgen.c -lssl -lcrypto -lpthread
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define LG_MAX_THREADS	  64
#define LG_MAX_RCPTS	  1000
#define LG_INBUF	  8192
#define LG_CODES	  600
#define LG_MAX_CONNECTING 100
#define LG_TICKETS	  256 /* --resume: sessions kept */

enum lg_state {
	ST_CONNECT, /* waiting for connect() to complete */
	ST_GREET,   /* waiting for 220 */
	ST_EHLO,
	ST_STARTTLS,
	ST_HANDSHAKE,
	ST_AUTH, /* -a: AUTH PLAIN sent, waiting for 235 */
	ST_MAIL,
	ST_RCPT,
	ST_DATA,
	ST_PIPE,    /* MAIL, RCPT..., DATA sent together */
	ST_DOT,	    /* content sent (or being sent), waiting for 250 */
	ST_DOTFAIL, /* "." sent after a 354 with no recipient */
	ST_RSET,
	ST_QUIT,
	ST_IDLE, /* --idle: EHLO done, holding the connection */
	ST_DONE
};

struct lg_stats {
	uint64_t ok;	      /* 250 after the data */
	uint64_t ok_rcpts;    /* accepted recipients of those messages */
	uint64_t ok_distinct; /* of those, different addresses: copies due */
	uint64_t failed;      /* claimed messages that got no 250 */
	uint64_t conn_err;    /* connect failures, resets, early EOF */
	uint64_t timeouts;
	uint64_t connects;
	uint64_t codes[LG_CODES]; /* unexpected replies, by code */
	uint32_t *lat_us;	  /* one per ok */
	size_t nlat, caplat;
};

struct lg_sess {
	struct lg_thread *th;
	int fd;
	SSL *ssl;
	enum lg_state state;
	int tls_on;
	int authed;	      /* -a: AUTH accepted on this connection */
	int want_out;	      /* EPOLLOUT registered */
	int ssl_want_write;   /* SSL_read said WANT_WRITE */
	int resumed;	      /* --resume: this handshake was resumed */
	int got_ticket;	      /* --resume: the server sent a new ticket */
	SSL_SESSION *offered; /* --resume: the ticket offered, or NULL */
	int in_msg;	      /* a claimed message is in flight */
	int body_queued;      /* the current output ends with the content */
	int dot_sent;
	int restart; /* connect again from the loop */
	int fails;   /* connection failures in a row */
	int nrcpt, rcpt_idx, rcpt_ok, mail_ok;
	unsigned msgs_on_conn;
	uint64_t rcpt_base; /* index of the first recipient in the list */
	uint64_t t_dot;	    /* ns: last byte of ".\r\n" written */
	uint64_t deadline;  /* ns: the reply we wait for must come by then */
	char in[LG_INBUF];
	size_t inlen;
	char *cmd; /* commands to send, lg.cmdcap bytes */
	size_t cmdlen, cmdoff;
	size_t bodyoff; /* into lg.msg, when body_queued */
};

struct lg_thread {
	int id;
	int epfd;
	int nsess;
	int active;
	int connecting;
	int restarts; /* sessions with restart set */
	struct lg_sess *sess;
	struct lg_stats st;
	pthread_t tid;
};

static struct {
	const char *host;
	int port;
	struct sockaddr_in addr;
	int sessions;
	uint64_t messages; /* 0: until -d runs out */
	int messages_set;
	double duration; /* 0: until -n is reached */
	size_t body_size;
	char **rcpts;
	int nrcpts;
	int rcpt_per_msg;
	const char *from;
	const char *ehlo;
	char *auth_plain; /* -a USER:PASS, as AUTH PLAIN's base64 */
	int pipelining;
	unsigned per_conn; /* 0: unlimited */
	int tls;
	int threads;
	int timeout; /* seconds per reply */
	int idle;    /* --idle N */
	double hold;
	const char *ready_file;
	const char *message_file; /* --message: the content, as is */
	int resume;		  /* --resume: offer the kept TLS session */
	int tls13;		  /* --tls13: nothing older */
	unsigned nsrc;		  /* --src N: source addresses 127.0.0.2.. */
	int sink_port;		  /* --sink PORT */
	const char *sink_out;
	const char *cert, *key;
	const char *watch_dirs[64];
	int nwatch;
	const char *watch_sink;
	double watch_timeout;
	int quiet;

	size_t cmdcap; /* MAIL + RCPTs + DATA of one message */
	char *msg;     /* content + ".\r\n" */
	size_t msglen;
	SSL_CTX *ssl_ctx;
	uint64_t t_start, t_end_send;
	atomic_uint_fast64_t claimed;
	atomic_uint_fast64_t rcpt_seq;
	atomic_int stop;
	atomic_int idle_ready; /* sessions that reached ST_IDLE or failed */
	atomic_uint_fast64_t tls_hs, tls_resumed; /* handshakes done */
	atomic_uint next_src;
	pthread_mutex_t tls_mu;		    /* guards tls_saved, ntls_saved */
	SSL_SESSION *tls_saved[LG_TICKETS]; /* --resume: tickets to offer */
	int ntls_saved;
} lg = {
    .host = "127.0.0.1",
    .sessions = 1,
    .messages = 0, /* set: -n; else 1000 unless -d is given */
    .body_size = 2048,
    .rcpt_per_msg = 1,
    .from = "loadgen@client.bench.test",
    .ehlo = "client.bench.test",
    .pipelining = 1,
    .threads = 1,
    .timeout = 120,
    .watch_timeout = 600,
    .tls_mu = PTHREAD_MUTEX_INITIALIZER,
};

static void
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("loadgen: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *
xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n, sz);

	if (p == NULL)
		die("out of memory");
	return p;
}

/* ---- message claiming ------------------------------------------------- */

static int
claim_message(void)
{
	uint64_t n;

	if (atomic_load(&lg.stop))
		return 0;
	if (lg.duration > 0 &&
	    now_ns() - lg.t_start >= (uint64_t)(lg.duration * 1e9))
		return 0;
	n = atomic_fetch_add(&lg.claimed, 1);
	if (lg.messages && n >= lg.messages) {
		atomic_fetch_sub(&lg.claimed, 1);
		return 0;
	}
	return 1;
}

static int
more_messages(void)
{
	if (atomic_load(&lg.stop))
		return 0;
	if (lg.duration > 0 &&
	    now_ns() - lg.t_start >= (uint64_t)(lg.duration * 1e9))
		return 0;
	return lg.messages == 0 || atomic_load(&lg.claimed) < lg.messages;
}

/* ---- output ------------------------------------------------------------ */

static void
cmd_add(struct lg_sess *s, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(s->cmd + s->cmdlen, lg.cmdcap - s->cmdlen, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= lg.cmdcap - s->cmdlen)
		die("command buffer overflow");
	s->cmdlen += (size_t)n;
}

static void
ev_update(struct lg_sess *s, int want_out)
{
	struct epoll_event ev = {.data.ptr = s};

	if (want_out == s->want_out)
		return;
	ev.events = EPOLLIN | (want_out ? EPOLLOUT : 0);
	if (epoll_ctl(s->th->epfd, EPOLL_CTL_MOD, s->fd, &ev) != 0)
		die("epoll_ctl: %s", strerror(errno));
	s->want_out = want_out;
}

static int
out_pending(const struct lg_sess *s)
{
	return s->cmdoff < s->cmdlen ||
	       (s->body_queued && s->bodyoff < lg.msglen);
}

/* Write what can be written; 0 ok (maybe partial), -1 connection broken. */
static int
flush_plain(struct lg_sess *s)
{
	struct iovec iov[2];
	ssize_t n;
	int cnt;

	while (out_pending(s)) {
		cnt = 0;
		if (s->cmdoff < s->cmdlen) {
			iov[cnt].iov_base = s->cmd + s->cmdoff;
			iov[cnt++].iov_len = s->cmdlen - s->cmdoff;
		}
		if (s->body_queued && s->bodyoff < lg.msglen) {
			iov[cnt].iov_base = lg.msg + s->bodyoff;
			iov[cnt++].iov_len = lg.msglen - s->bodyoff;
		}
		n = writev(s->fd, iov, cnt);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			return -1;
		}
		if (s->cmdoff < s->cmdlen) {
			size_t c = s->cmdlen - s->cmdoff;

			if ((size_t)n < c) {
				s->cmdoff += (size_t)n;
				continue;
			}
			s->cmdoff = s->cmdlen;
			n -= (ssize_t)c;
		}
		if (s->body_queued)
			s->bodyoff += (size_t)n;
	}
	return 0;
}

static int
flush_tls(struct lg_sess *s)
{
	const char *p;
	size_t len;
	int n, e;

	while (out_pending(s)) {
		if (s->cmdoff < s->cmdlen) {
			p = s->cmd + s->cmdoff;
			len = s->cmdlen - s->cmdoff;
		} else {
			p = lg.msg + s->bodyoff;
			len = lg.msglen - s->bodyoff;
		}
		if (len > 65536)
			len = 65536;
		ERR_clear_error();
		n = SSL_write(s->ssl, p, (int)len);
		if (n <= 0) {
			e = SSL_get_error(s->ssl, n);
			if (e == SSL_ERROR_WANT_WRITE ||
			    e == SSL_ERROR_WANT_READ)
				return 0;
			return -1;
		}
		if (s->cmdoff < s->cmdlen)
			s->cmdoff += (size_t)n;
		else
			s->bodyoff += (size_t)n;
	}
	return 0;
}

static int
flush_out(struct lg_sess *s)
{
	int r = s->tls_on ? flush_tls(s) : flush_plain(s);

	if (r != 0)
		return -1;
	if (!out_pending(s)) {
		s->cmdlen = s->cmdoff = 0;
		if (s->body_queued && !s->dot_sent) {
			s->dot_sent = 1;
			s->t_dot = now_ns();
		}
	}
	ev_update(s, out_pending(s) || s->ssl_want_write);
	return 0;
}

/* ---- session life ------------------------------------------------------ */

static void sess_start(struct lg_sess *);
static SSL_SESSION *take_session(void);
static void give_session(SSL_SESSION *);

static void
count_code(struct lg_sess *s, int code)
{
	if (code >= 0 && code < LG_CODES)
		s->th->st.codes[code]++;
}

static void
sess_close(struct lg_sess *s)
{
	if (s->ssl != NULL) {
		/* after QUIT, a close_notify: OpenSSL marks the session of a
		 * connection freed without one as not resumable, and with
		 * TLS 1.3 that is the ticket kept for --resume */
		if (s->state == ST_QUIT)
			(void)SSL_shutdown(s->ssl);
		SSL_free(s->ssl);
		s->ssl = NULL;
	}
	if (s->offered != NULL) {
		/* the server took it and gave no newer one (Postfix does
		 * not, while its ticket key is current): offer it again */
		if (s->resumed && !s->got_ticket)
			give_session(s->offered);
		else
			SSL_SESSION_free(s->offered);
		s->offered = NULL;
	}
	s->resumed = s->got_ticket = 0;
	if (s->fd >= 0) {
		close(s->fd);
		s->fd = -1;
	}
	if (s->state == ST_CONNECT)
		s->th->connecting--;
	s->tls_on = 0;
	s->authed = 0;
	s->want_out = 0;
	s->ssl_want_write = 0;
	s->inlen = 0;
	s->cmdlen = s->cmdoff = 0;
	s->body_queued = 0;
	s->state = ST_DONE;
}

/* Connect again (from the loop, not from here: no recursion) while
 * messages remain; else this session is finished. */
static void
sess_again(struct lg_sess *s)
{
	if (more_messages() && s->fails < 20) {
		s->restart = 1;
		s->th->restarts++;
	} else {
		s->th->active--;
	}
}

/* The connection broke: count it, give up the message in flight, and
 * connect again while messages remain. */
static void
sess_fail(struct lg_sess *s, int timeout)
{
	int before_idle = lg.idle && s->state != ST_IDLE;

	if (timeout)
		s->th->st.timeouts++;
	else
		s->th->st.conn_err++;
	if (s->in_msg) {
		s->th->st.failed++;
		s->in_msg = 0;
	}
	sess_close(s);
	s->fails++;
	if (lg.idle) {
		if (before_idle)
			atomic_fetch_add(&lg.idle_ready, 1);
		s->th->active--;
		return;
	}
	sess_again(s);
}

static void
set_deadline(struct lg_sess *s)
{
	s->deadline = now_ns() + (uint64_t)lg.timeout * 1000000000u;
}

static void
send_rcpt(struct lg_sess *s, int i)
{
	cmd_add(s, "RCPT TO:<%s>\r\n",
	    lg.rcpts[(s->rcpt_base + (uint64_t)i) % (uint64_t)lg.nrcpts]);
}

/* Start the next message on this connection, or QUIT. */
static void
next_message(struct lg_sess *s)
{
	int i;

	s->body_queued = 0;
	s->dot_sent = 0;
	if ((lg.per_conn && s->msgs_on_conn >= lg.per_conn) ||
	    !claim_message()) {
		cmd_add(s, "QUIT\r\n");
		s->state = ST_QUIT;
		return;
	}
	s->in_msg = 1;
	s->nrcpt = lg.rcpt_per_msg;
	s->rcpt_idx = s->rcpt_ok = s->mail_ok = 0;
	s->rcpt_base = atomic_fetch_add(&lg.rcpt_seq, (uint64_t)s->nrcpt);
	cmd_add(s, "MAIL FROM:<%s> SIZE=%zu\r\n", lg.from, lg.msglen - 3);
	if (!lg.pipelining) {
		s->state = ST_MAIL;
		return;
	}
	for (i = 0; i < s->nrcpt; i++)
		send_rcpt(s, i);
	cmd_add(s, "DATA\r\n");
	s->state = ST_PIPE;
}

static void
send_body(struct lg_sess *s)
{
	s->body_queued = 1;
	s->bodyoff = 0;
	s->dot_sent = 0;
	s->state = ST_DOT;
}

static void
msg_failed(struct lg_sess *s)
{
	s->th->st.failed++;
	s->in_msg = 0;
	s->msgs_on_conn++;
	cmd_add(s, "RSET\r\n");
	s->state = ST_RSET;
}

/* How many different addresses the accepted recipients of this message
 * are: -R above the number of -r addresses names each several times, and
 * a server delivers one copy per address (RFC 5321 3.3 lets it drop the
 * duplicates; Postfix and tern both do).  A refused recipient is taken
 * to be a duplicate of none: exact when all are accepted. */
static uint64_t
distinct_rcpts(const struct lg_sess *s)
{
	int n = s->rcpt_ok;

	return (uint64_t)(n < lg.nrcpts ? n : lg.nrcpts);
}

static void
record_latency(struct lg_sess *s)
{
	struct lg_stats *st = &s->th->st;
	uint64_t d = now_ns() - s->t_dot;

	if (st->nlat == st->caplat) {
		st->caplat = st->caplat ? st->caplat * 2 : 65536;
		st->lat_us = realloc(st->lat_us, st->caplat * sizeof(uint32_t));
		if (st->lat_us == NULL)
			die("out of memory");
	}
	d /= 1000;
	st->lat_us[st->nlat++] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}

static void
on_pipe_reply(struct lg_sess *s, int code)
{
	int pos = s->rcpt_idx++; /* 0: MAIL, 1..n: RCPT, n+1: DATA */

	if (pos == 0) {
		s->mail_ok = code / 100 == 2;
		if (!s->mail_ok)
			count_code(s, code);
		return;
	}
	if (pos <= s->nrcpt) {
		if (code / 100 == 2)
			s->rcpt_ok++;
		else
			count_code(s, code);
		return;
	}
	if (code == 354 && s->mail_ok && s->rcpt_ok > 0) {
		send_body(s);
		return;
	}
	if (code == 354) { /* RFC 2920: no valid recipient, end it */
		cmd_add(s, ".\r\n");
		s->state = ST_DOTFAIL;
		return;
	}
	count_code(s, code);
	msg_failed(s);
}

/* One whole reply (the last line's code) arrived. */
static int
on_reply(struct lg_sess *s, int code)
{
	switch (s->state) {
	case ST_GREET:
		if (code != 220) {
			count_code(s, code);
			return -1;
		}
		cmd_add(s, "EHLO %s\r\n", lg.ehlo);
		s->state = ST_EHLO;
		break;
	case ST_EHLO:
		if (code != 250) {
			count_code(s, code);
			return -1;
		}
		s->fails = 0;
		if (lg.tls && !s->tls_on) {
			cmd_add(s, "STARTTLS\r\n");
			s->state = ST_STARTTLS;
		} else if (lg.auth_plain != NULL && !s->authed) {
			cmd_add(s, "AUTH PLAIN %s\r\n", lg.auth_plain);
			s->state = ST_AUTH;
		} else if (lg.idle) {
			s->state = ST_IDLE;
			s->deadline = UINT64_MAX;
			atomic_fetch_add(&lg.idle_ready, 1);
			return 0;
		} else {
			next_message(s);
		}
		break;
	case ST_STARTTLS:
		if (code != 220) {
			count_code(s, code);
			return -1;
		}
		if (s->inlen != 0) /* nothing may follow the 220 */
			return -1;
		s->ssl = SSL_new(lg.ssl_ctx);
		if (s->ssl == NULL || SSL_set_fd(s->ssl, s->fd) != 1)
			die("SSL_new");
		SSL_set_connect_state(s->ssl);
		if (lg.resume) {
			SSL_SESSION *sess = take_session();

			SSL_set_app_data(s->ssl, s);
			s->offered = sess;
			if (sess != NULL && SSL_set_session(s->ssl, sess) != 1)
				die("SSL_set_session");
		}
		s->state = ST_HANDSHAKE;
		return 0;
	case ST_AUTH:
		if (code != 235) {
			count_code(s, code);
			return -1;
		}
		s->authed = 1;
		next_message(s);
		break;
	case ST_MAIL:
		if (code / 100 != 2) {
			count_code(s, code);
			msg_failed(s);
			break;
		}
		send_rcpt(s, 0);
		s->rcpt_idx = 0;
		s->state = ST_RCPT;
		break;
	case ST_RCPT:
		if (code / 100 == 2)
			s->rcpt_ok++;
		else
			count_code(s, code);
		if (++s->rcpt_idx < s->nrcpt) {
			send_rcpt(s, s->rcpt_idx);
		} else if (s->rcpt_ok > 0) {
			cmd_add(s, "DATA\r\n");
			s->state = ST_DATA;
		} else {
			msg_failed(s);
		}
		break;
	case ST_DATA:
		if (code != 354) {
			count_code(s, code);
			msg_failed(s);
			break;
		}
		send_body(s);
		break;
	case ST_PIPE:
		on_pipe_reply(s, code);
		break;
	case ST_DOT:
		if (!s->dot_sent) /* a reply before the end: protocol error */
			return -1;
		if (code == 250) {
			s->th->st.ok++;
			s->th->st.ok_rcpts += (uint64_t)s->rcpt_ok;
			s->th->st.ok_distinct += distinct_rcpts(s);
			record_latency(s);
		} else {
			count_code(s, code);
			s->th->st.failed++;
		}
		s->in_msg = 0;
		s->msgs_on_conn++;
		next_message(s);
		break;
	case ST_DOTFAIL:
		if (code / 100 == 2) /* should not happen; count it */
			count_code(s, code);
		msg_failed(s);
		break;
	case ST_RSET:
		if (code / 100 != 2)
			count_code(s, code);
		next_message(s);
		break;
	case ST_QUIT:
		if (code != 221)
			count_code(s, code);
		sess_close(s);
		sess_again(s);
		return 1;
	default:
		count_code(s, code);
		return -1;
	}
	set_deadline(s);
	return 0;
}

/* Parse whole replies out of s->in; 1 if the session was closed/replaced. */
static int
parse_replies(struct lg_sess *s)
{
	char *p = s->in, *end = s->in + s->inlen, *nl;
	int code, r;

	while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		if (nl - p < 4 || p[0] < '2' || p[0] > '5' || p[1] < '0' ||
		    p[1] > '9' || p[2] < '0' || p[2] > '9')
			return sess_fail(s, 0), 1; /* not a reply line */
		code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
		if (nl - p >= 4 && p[3] == '-') { /* continuation line */
			p = nl + 1;
			continue;
		}
		p = nl + 1;
		memmove(s->in, p, (size_t)(end - p));
		s->inlen = (size_t)(end - p);
		end = s->in + s->inlen;
		p = s->in;
		r = on_reply(s, code);
		if (r < 0)
			return sess_fail(s, 0), 1;
		if (r > 0)
			return 1;
		if (s->state == ST_HANDSHAKE)
			return 0;
	}
	if (s->inlen == sizeof(s->in))
		return sess_fail(s, 0), 1; /* a line too long */
	return 0;
}

static int
do_handshake(struct lg_sess *s)
{
	int n, e;

	ERR_clear_error();
	n = SSL_connect(s->ssl);
	if (n == 1) {
		s->tls_on = 1;
		atomic_fetch_add(&lg.tls_hs, 1);
		if (SSL_session_reused(s->ssl)) {
			atomic_fetch_add(&lg.tls_resumed, 1);
			s->resumed = 1;
		}
		s->ssl_want_write = 0;
		cmd_add(s, "EHLO %s\r\n", lg.ehlo);
		s->state = ST_EHLO;
		set_deadline(s);
		return 0;
	}
	e = SSL_get_error(s->ssl, n);
	if (e == SSL_ERROR_WANT_READ) {
		s->ssl_want_write = 0;
		return 0;
	}
	if (e == SSL_ERROR_WANT_WRITE) {
		s->ssl_want_write = 1;
		return 0;
	}
	return -1;
}

/* Read what is there; -1 on EOF/error. */
static int
read_in(struct lg_sess *s)
{
	ssize_t n;
	int e;

	for (;;) {
		if (s->inlen == sizeof(s->in))
			return 0;
		if (s->tls_on) {
			ERR_clear_error();
			n = SSL_read(s->ssl, s->in + s->inlen,
			    (int)(sizeof(s->in) - s->inlen));
			if (n <= 0) {
				e = SSL_get_error(s->ssl, (int)n);
				if (e == SSL_ERROR_WANT_READ)
					return 0;
				if (e == SSL_ERROR_WANT_WRITE) {
					s->ssl_want_write = 1;
					return 0;
				}
				return -1;
			}
			s->ssl_want_write = 0;
		} else {
			n = read(
			    s->fd, s->in + s->inlen, sizeof(s->in) - s->inlen);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EAGAIN)
				return 0;
			if (n <= 0)
				return -1;
		}
		s->inlen += (size_t)n;
		if (!s->tls_on)
			return 0; /* level-triggered: come back if more */
	}
}

static void
sess_event(struct lg_sess *s, uint32_t events)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (s->state == ST_CONNECT) {
		if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 ||
		    err != 0)
			return sess_fail(s, 0);
		s->th->connecting--;
		s->th->st.connects++;
		s->state = ST_GREET;
		set_deadline(s);
		ev_update(s, 0);
		return;
	}
	if (s->state == ST_HANDSHAKE) {
		if (do_handshake(s) != 0)
			return sess_fail(s, 0);
	} else if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) ||
		   s->ssl_want_write) {
		if (read_in(s) != 0) {
			if (s->state == ST_QUIT) { /* fine: server closed */
				sess_close(s);
				sess_again(s);
				return;
			}
			return sess_fail(s, 0);
		}
		if (parse_replies(s))
			return;
		if (s->state == ST_HANDSHAKE && do_handshake(s) != 0)
			return sess_fail(s, 0);
	}
	if (s->fd >= 0 && s->state != ST_DONE && flush_out(s) != 0)
		sess_fail(s, 0);
}

static void
sess_start(struct lg_sess *s)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = s};
	int one = 1;

	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0)
		die("socket: %s (raise ulimit -n)", strerror(errno));
	(void)setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (lg.nsrc > 0 || lg.auth_plain != NULL) {
		/* --src N: connections from N loopback addresses in turn;
		 * -a alone: 250 of them, so that ternd's AUTH throttle (one
		 * attempt at a time per client address) does not answer
		 * concurrent logins 454.  The port is chosen at connect()
		 * (IP_BIND_ADDRESS_NO_PORT), by the whole 4-tuple: an
		 * address gives a full ephemeral range per server port. */
		struct sockaddr_in src = {.sin_family = AF_INET};
		unsigned n = lg.nsrc > 0 ? lg.nsrc : 250u;

		src.sin_addr.s_addr =
		    htonl(0x7f000002u + atomic_fetch_add(&lg.next_src, 1) % n);
		(void)setsockopt(s->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT,
		    &one, sizeof(one));
		if (bind(s->fd, (struct sockaddr *)&src, sizeof(src)) != 0)
			die("bind 127.x.x.x: %s", strerror(errno));
	}
	s->state = ST_CONNECT;
	s->msgs_on_conn = 0;
	s->in_msg = 0;
	s->th->connecting++;
	if (connect(s->fd, (struct sockaddr *)&lg.addr, sizeof(lg.addr)) != 0 &&
	    errno != EINPROGRESS) {
		s->th->connecting--;
		s->state = ST_GREET; /* so sess_fail does not count twice */
		return sess_fail(s, 0);
	}
	if (epoll_ctl(s->th->epfd, EPOLL_CTL_ADD, s->fd, &ev) != 0)
		die("epoll_ctl add: %s", strerror(errno));
	s->want_out = 1;
	set_deadline(s);
}

static void
check_timeouts(struct lg_thread *th, uint64_t now)
{
	int i;

	for (i = 0; i < th->nsess; i++) {
		struct lg_sess *s = &th->sess[i];

		if (s->fd >= 0 && s->state != ST_DONE && s->state != ST_IDLE &&
		    now > s->deadline)
			sess_fail(s, 1);
	}
}

static void *
thread_main(void *arg)
{
	struct lg_thread *th = arg;
	struct epoll_event evs[256];
	uint64_t last_check = now_ns();
	int i, n, started = 0;

	th->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (th->epfd < 0)
		die("epoll_create1: %s", strerror(errno));
	for (i = 0; i < th->nsess; i++) {
		th->sess[i].th = th;
		th->sess[i].fd = -1;
		th->sess[i].cmd = xcalloc(1, lg.cmdcap);
	}
	th->active = th->nsess;
	while (th->active > 0) {
		/* ramp up: a bounded number of connects in flight, so the
		 * listen backlog does not overflow into SYN retries */
		while (
		    started < th->nsess && th->connecting < LG_MAX_CONNECTING) {
			struct lg_sess *s = &th->sess[started++];

			if (!lg.idle && !more_messages()) {
				th->active--;
				continue;
			}
			sess_start(s);
		}
		for (i = 0; th->restarts > 0 && i < th->nsess &&
			    th->connecting < LG_MAX_CONNECTING;
		     i++) {
			if (th->sess[i].restart) {
				th->sess[i].restart = 0;
				th->restarts--;
				sess_start(&th->sess[i]);
			}
		}
		if (lg.idle && atomic_load(&lg.stop))
			break;
		n = epoll_wait(th->epfd, evs, 256, 200);
		if (n < 0 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		for (i = 0; i < n; i++) {
			struct lg_sess *s = evs[i].data.ptr;

			if (s->fd >= 0 && s->state != ST_DONE)
				sess_event(s, evs[i].events);
		}
		if (now_ns() - last_check > 500000000u) {
			last_check = now_ns();
			check_timeouts(th, last_check);
		}
	}
	for (i = 0; i < th->nsess; i++) {
		if (th->sess[i].fd >= 0)
			sess_close(&th->sess[i]);
		free(th->sess[i].cmd);
	}
	close(th->epfd);
	return NULL;
}

/* ---- content ----------------------------------------------------------- */

/* Headers, then lines of at most 76 printable characters, to exactly
 * body_size bytes (at least the headers and one short line), then ".\r\n".
 * No line starts with '.'. */
static void
load_message(void)
{
	FILE *f = fopen(lg.message_file, "rb");
	char line[4096];
	size_t cap = 1 << 16, len = 0, n;

	if (f == NULL)
		die("--message %s: %s", lg.message_file, strerror(errno));
	lg.msg = xcalloc(1, cap);
	/* each line as is, dot-stuffed (RFC 5321 4.5.2) */
	while (fgets(line, sizeof(line), f) != NULL) {
		n = strlen(line);
		while (len + n + 8 > cap) {
			cap *= 2;
			lg.msg = realloc(lg.msg, cap);
			if (lg.msg == NULL)
				die("out of memory");
		}
		if (line[0] == '.')
			lg.msg[len++] = '.';
		memcpy(lg.msg + len, line, n);
		len += n;
	}
	fclose(f);
	if (len < 2 || memcmp(lg.msg + len - 2, "\r\n", 2) != 0)
		die("--message %s: not CRLF-terminated", lg.message_file);
	memcpy(lg.msg + len, ".\r\n", 3);
	lg.msglen = len + 3;
}

static void
make_message(void)
{
	char hdr[1024];
	size_t hlen, size, pos, rem, line, i;
	int n;

	if (lg.message_file != NULL) {
		load_message();
		return;
	}

	n = snprintf(hdr, sizeof(hdr),
	    "From: Load Generator <%s>\r\n"
	    "To: <%s>\r\n"
	    "Subject: tern benchmark message\r\n"
	    "Message-ID: <loadgen.%ld@client.bench.test>\r\n"
	    "Date: Thu, 01 Jan 2026 00:00:00 +0000\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=us-ascii\r\n"
	    "\r\n",
	    lg.from, lg.rcpts[0], (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(hdr))
		die("header too long");
	hlen = (size_t)n;
	size = lg.body_size > hlen + 3 ? lg.body_size : hlen + 3;
	lg.msg = xcalloc(1, size + 3);
	memcpy(lg.msg, hdr, hlen);
	for (pos = hlen; (rem = size - pos) > 0; pos += line) {
		line = rem > 78 ? 78 : rem;
		if (rem - line > 0 && rem - line < 3)
			line -= 3; /* leave the last line room for a byte */
		for (i = 0; i < line - 2; i++)
			lg.msg[pos + i] = (char)('a' + (pos + i) % 26);
		lg.msg[pos + line - 2] = '\r';
		lg.msg[pos + line - 1] = '\n';
	}
	memcpy(lg.msg + pos, ".\r\n", 3);
	lg.msglen = pos + 3;
}

/* ---- watching the destination -------------------------------------------- */

static long
count_dir(const char *path)
{
	char buf[65536];
	long n = 0, r, off;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return 0; /* a Maildir not made yet holds nothing */
	while ((r = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0) {
		for (off = 0; off < r;) {
			struct dirent64 *d = (struct dirent64 *)(buf + off);

			if (d->d_name[0] != '.')
				n++;
			off += d->d_reclen;
		}
	}
	close(fd);
	return n;
}

/* The last "mesg=N" in smtp-sink -c output. */
static long
count_sink(const char *path)
{
	char buf[256];
	long n = 0;
	ssize_t r;
	off_t size;
	int fd = open(path, O_RDONLY | O_CLOEXEC), i;

	if (fd < 0)
		return 0;
	size = lseek(fd, 0, SEEK_END);
	if (size > 200)
		(void)lseek(fd, size - 200, SEEK_SET);
	else
		(void)lseek(fd, 0, SEEK_SET);
	r = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (r <= 0)
		return 0;
	buf[r] = '\0';
	for (i = (int)r - 1; i >= 0; i--) {
		if (strncmp(buf + i, "mesg=", 5) == 0) {
			n = strtol(buf + i + 5, NULL, 10);
			break;
		}
	}
	return n;
}

static long
count_arrived(void)
{
	long n = 0;
	int i;

	for (i = 0; i < lg.nwatch; i++)
		n += count_dir(lg.watch_dirs[i]);
	if (lg.watch_sink != NULL)
		n += count_sink(lg.watch_sink);
	return n;
}

/* ---- options and report ----------------------------------------------------
 */

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static double
pct(const uint32_t *v, size_t n, double p)
{
	size_t i;

	if (n == 0)
		return 0;
	i = (size_t)(p * (double)(n - 1) + 0.5);
	return v[i] / 1000.0;
}

static void
parse_rcpts(const char *arg)
{
	char *copy, *p, *tok;
	FILE *f;
	char line[400];

	lg.rcpts = xcalloc(100000, sizeof(char *));
	if (arg[0] == '@') { /* @FILE: one address per line */
		if ((f = fopen(arg + 1, "r")) == NULL)
			die("%s: %s", arg + 1, strerror(errno));
		while (fgets(line, sizeof(line), f) && lg.nrcpts < 100000) {
			line[strcspn(line, "\r\n")] = '\0';
			if (line[0] != '\0')
				lg.rcpts[lg.nrcpts++] = strdup(line);
		}
		fclose(f);
		return;
	}
	copy = strdup(arg);
	for (p = copy; (tok = strsep(&p, ", ")) != NULL;)
		if (*tok != '\0' && lg.nrcpts < 100000)
			lg.rcpts[lg.nrcpts++] = tok;
}

static long
num_arg(const char *s, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (*end == 'k' || *end == 'K') {
		v *= 1024;
		end++;
	} else if (*end == 'm' || *end == 'M') {
		v *= 1024 * 1024;
		end++;
	}
	if (errno || *s == '\0' || *end != '\0' || v < lo || v > hi)
		die("bad number: %s", s);
	return v;
}

static int
bool_arg(const char *s)
{
	if (!strcmp(s, "on") || !strcmp(s, "1") || !strcmp(s, "yes"))
		return 1;
	if (!strcmp(s, "off") || !strcmp(s, "0") || !strcmp(s, "no"))
		return 0;
	die("bad on/off: %s", s);
	return 0;
}

static void
usage(void)
{
	fputs(
	    "usage: loadgen -p PORT [-H HOST] [-c SESSIONS] [-n MESSAGES] "
	    "[-d SECONDS]\n"
	    "    [-s BODY_BYTES] [-r RCPT,...|@FILE] [-R RCPTS_PER_MSG] "
	    "[-f FROM]\n"
	    "    [-P on|off] [-m MSGS_PER_CONN] [-S] [-a USER:PASS] [-t "
	    "THREADS]\n"
	    "    [-T TIMEOUT]\n"
	    "    [--watch-dir DIR]... [--watch-sink FILE] [--watch-timeout S]\n"
	    "    [--idle N [--hold S] [--ready-file FILE]] [--message FILE] "
	    "[-q]\n"
	    "    [--resume] [--tls13] [--src N]\n"
	    "       loadgen --sink PORT --sink-out FILE [--cert PEM --key "
	    "PEM]\n",
	    stderr);
	exit(2);
}

/* -a USER:PASS: the base64 of "\0USER\0PASS" (RFC 4616), once. */
static char *
auth_plain_of(const char *arg)
{
	const char *colon = strchr(arg, ':');
	size_t ul, pl, n;
	unsigned char raw[600];
	char *out;

	if (colon == NULL)
		die("-a wants USER:PASS");
	ul = (size_t)(colon - arg);
	pl = strlen(colon + 1);
	if (ul + pl + 2 > sizeof(raw))
		die("-a: too long");
	raw[0] = '\0';
	memcpy(raw + 1, arg, ul);
	raw[1 + ul] = '\0';
	memcpy(raw + 2 + ul, colon + 1, pl);
	n = 2 + ul + pl;
	out = xcalloc(1, 4 * ((n + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)out, raw, (int)n);
	return out;
}

static void
parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"watch-dir", required_argument, NULL, 1},
	    {"watch-sink", required_argument, NULL, 2},
	    {"watch-timeout", required_argument, NULL, 3},
	    {"idle", required_argument, NULL, 4},
	    {"hold", required_argument, NULL, 5},
	    {"ready-file", required_argument, NULL, 6},
	    {"message", required_argument, NULL, 7},
	    {"resume", no_argument, NULL, 8},
	    {"tls13", no_argument, NULL, 14},
	    {"src", required_argument, NULL, 9},
	    {"sink", required_argument, NULL, 10},
	    {"sink-out", required_argument, NULL, 11},
	    {"cert", required_argument, NULL, 12},
	    {"key", required_argument, NULL, 13},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *rcpts = "u1@bench.test";
	int c;

	while ((c = getopt_long(argc, argv, "H:p:c:n:d:s:r:R:f:e:P:m:St:T:a:qh",
		    longopts, NULL)) != -1) {
		switch (c) {
		case 'H':
			lg.host = optarg;
			break;
		case 'p':
			lg.port = (int)num_arg(optarg, 1, 65535);
			break;
		case 'c':
			lg.sessions = (int)num_arg(optarg, 1, 1000000);
			break;
		case 'n':
			lg.messages = (uint64_t)num_arg(optarg, 0, 1L << 40);
			lg.messages_set = 1;
			break;
		case 'd':
			lg.duration = atof(optarg);
			break;
		case 's':
			lg.body_size = (size_t)num_arg(optarg, 0, 1L << 30);
			break;
		case 'r':
			rcpts = optarg;
			break;
		case 'R':
			lg.rcpt_per_msg = (int)num_arg(optarg, 1, LG_MAX_RCPTS);
			break;
		case 'f':
			lg.from = optarg;
			break;
		case 'e':
			lg.ehlo = optarg;
			break;
		case 'P':
			lg.pipelining = bool_arg(optarg);
			break;
		case 'm':
			lg.per_conn = (unsigned)num_arg(optarg, 0, 1L << 30);
			break;
		case 'S':
			lg.tls = 1;
			break;
		case 't':
			lg.threads = (int)num_arg(optarg, 1, LG_MAX_THREADS);
			break;
		case 'T':
			lg.timeout = (int)num_arg(optarg, 1, 86400);
			break;
		case 'q':
			lg.quiet = 1;
			break;
		case 'a':
			lg.auth_plain = auth_plain_of(optarg);
			break;
		case 1:
			if (lg.nwatch == 64)
				die("too many --watch-dir");
			lg.watch_dirs[lg.nwatch++] = optarg;
			break;
		case 2:
			lg.watch_sink = optarg;
			break;
		case 3:
			lg.watch_timeout = atof(optarg);
			break;
		case 4:
			lg.idle = (int)num_arg(optarg, 1, 1000000);
			break;
		case 5:
			lg.hold = atof(optarg);
			break;
		case 6:
			lg.ready_file = optarg;
			break;
		case 7:
			lg.message_file = optarg;
			break;
		case 8:
			lg.resume = 1;
			break;
		case 9:
			/* 127.0.0.2 .. 127.255.255.254 */
			lg.nsrc = (unsigned)num_arg(optarg, 1, 16777000);
			break;
		case 10:
			lg.sink_port = (int)num_arg(optarg, 1, 65535);
			break;
		case 11:
			lg.sink_out = optarg;
			break;
		case 12:
			lg.cert = optarg;
			break;
		case 13:
			lg.key = optarg;
			break;
		case 14:
			lg.tls13 = 1;
			break;
		default:
			usage();
		}
	}
	if (lg.sink_port != 0) {
		if (optind != argc || lg.sink_out == NULL ||
		    (lg.cert == NULL) != (lg.key == NULL))
			usage();
		return;
	}
	if (optind != argc || lg.port == 0)
		usage();
	parse_rcpts(rcpts);
	if (lg.nrcpts == 0)
		die("no recipients");
	for (c = 0; c < lg.nrcpts; c++)
		if (strlen(lg.rcpts[c]) > 320)
			die("recipient too long: %.40s...", lg.rcpts[c]);
	/* MAIL + SIZE, RCPT TO:<320 octets> each, DATA; or EHLO/QUIT/RSET */
	lg.cmdcap = 1024 + (size_t)lg.rcpt_per_msg * 340 + strlen(lg.from) +
		    strlen(lg.ehlo);
	if (lg.idle) {
		lg.sessions = lg.idle;
		lg.threads = 1;
	}
	if (lg.threads > lg.sessions)
		lg.threads = lg.sessions;
	lg.addr.sin_family = AF_INET;
	lg.addr.sin_port = htons((uint16_t)lg.port);
	if (inet_pton(AF_INET, lg.host, &lg.addr.sin_addr) != 1)
		die("host must be an IPv4 address: %s", lg.host);
}

static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void
on_signal(int sig)
{
	(void)sig;
	atomic_store(&lg.stop, 1);
}

static void
idle_wait(void)
{
	uint64_t t0 = now_ns();
	FILE *f;

	while (atomic_load(&lg.idle_ready) < lg.idle && !atomic_load(&lg.stop))
		usleep(10000);
	fprintf(stderr, "loadgen: %d of %d idle connections done%s in %.2f s\n",
	    atomic_load(&lg.idle_ready), lg.idle,
	    atomic_load(&lg.stop) ? " (interrupted)" : "",
	    (double)(now_ns() - t0) / 1e9);
	if (lg.ready_file != NULL && (f = fopen(lg.ready_file, "w")) != NULL) {
		fprintf(f, "ready\n");
		fclose(f);
	}
	t0 = now_ns();
	while (!atomic_load(&lg.stop) &&
	       (lg.hold <= 0 || (double)(now_ns() - t0) / 1e9 < lg.hold))
		usleep(10000);
	atomic_store(&lg.stop, 1);
}

/* loadgen's own CPU time: it must stay well below the server's */
static double
self_cpu(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void
report(struct lg_thread *th, long arrived, double e2e)
{
	struct lg_stats t = {0};
	double elapsed = (double)(lg.t_end_send - lg.t_start) / 1e9;
	char codes[2048] = "";
	size_t off = 0;
	int i, k, idle_up = 0;

	for (i = 0; i < lg.threads; i++) {
		struct lg_stats *s = &th[i].st;

		t.ok += s->ok;
		t.ok_rcpts += s->ok_rcpts;
		t.ok_distinct += s->ok_distinct;
		t.failed += s->failed;
		t.conn_err += s->conn_err;
		t.timeouts += s->timeouts;
		t.connects += s->connects;
		for (k = 0; k < LG_CODES; k++)
			t.codes[k] += s->codes[k];
		t.lat_us = realloc(
		    t.lat_us, (t.nlat + s->nlat + 1) * sizeof(uint32_t));
		if (s->nlat)
			memcpy(t.lat_us + t.nlat, s->lat_us,
			    s->nlat * sizeof(uint32_t));
		t.nlat += s->nlat;
	}
	qsort(t.lat_us, t.nlat, sizeof(uint32_t), cmp_u32);
	for (k = 0; k < LG_CODES; k++) {
		if (t.codes[k] && off < sizeof(codes) - 32)
			off += (size_t)snprintf(codes + off,
			    sizeof(codes) - off, "%s%d:%llu", off ? "," : "", k,
			    (unsigned long long)t.codes[k]);
	}
	if (lg.idle)
		idle_up = atomic_load(&lg.idle_ready) -
			  (int)(t.conn_err + t.timeouts);
	if (!lg.quiet) {
		fprintf(stderr,
		    "loadgen: %llu messages ok, %llu failed in %.2f s: %.0f "
		    "msg/s\n"
		    "  latency end-of-data -> 250: p50 %.2f ms, p99 %.2f ms, "
		    "p99.9 %.2f ms, max %.2f ms\n"
		    "  replies not expected: %s; connection errors %llu, "
		    "timeouts %llu, connections %llu\n",
		    (unsigned long long)t.ok, (unsigned long long)t.failed,
		    elapsed, elapsed > 0 ? (double)t.ok / elapsed : 0.0,
		    pct(t.lat_us, t.nlat, 0.5), pct(t.lat_us, t.nlat, 0.99),
		    pct(t.lat_us, t.nlat, 0.999),
		    t.nlat ? t.lat_us[t.nlat - 1] / 1000.0 : 0.0,
		    off ? codes : "none", (unsigned long long)t.conn_err,
		    (unsigned long long)t.timeouts,
		    (unsigned long long)t.connects);
		if (arrived >= 0)
			fprintf(stderr,
			    "  arrived at the destination: %ld "
			    "of %llu expected (%s), end to end %.2f s: %.0f "
			    "msg/s\n",
			    arrived, (unsigned long long)t.ok_distinct,
			    arrived == (long)t.ok_distinct ? "all" : "MISMATCH",
			    e2e, e2e > 0 ? (double)arrived / e2e : 0.0);
	}
	printf("loadgen sessions=%d threads=%d size=%zu rcpts=%d pipelining=%s "
	       "per_conn=%u tls=%s ok=%llu failed=%llu elapsed=%.3f mps=%.1f "
	       "ok_rcpts=%llu p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f "
	       "codes=%s "
	       "conn_err=%llu timeouts=%llu connects=%llu",
	    lg.sessions, lg.threads, lg.msglen - 3, lg.rcpt_per_msg,
	    lg.pipelining ? "on" : "off", lg.per_conn, lg.tls ? "on" : "off",
	    (unsigned long long)t.ok, (unsigned long long)t.failed, elapsed,
	    elapsed > 0 ? (double)t.ok / elapsed : 0.0,
	    (unsigned long long)t.ok_rcpts, pct(t.lat_us, t.nlat, 0.5),
	    pct(t.lat_us, t.nlat, 0.99), pct(t.lat_us, t.nlat, 0.999),
	    t.nlat ? t.lat_us[t.nlat - 1] / 1000.0 : 0.0, off ? codes : "-",
	    (unsigned long long)t.conn_err, (unsigned long long)t.timeouts,
	    (unsigned long long)t.connects);
	if (lg.rcpt_per_msg > 1)
		printf(" ok_distinct=%llu", (unsigned long long)t.ok_distinct);
	if (lg.idle)
		printf(" idle_up=%d", idle_up);
	if (lg.tls)
		printf(" tls_handshakes=%llu tls_resumed=%llu",
		    (unsigned long long)atomic_load(&lg.tls_hs),
		    (unsigned long long)atomic_load(&lg.tls_resumed));
	if (arrived >= 0)
		printf(" arrived=%ld e2e_s=%.3f e2e_mps=%.1f", arrived, e2e,
		    e2e > 0 ? (double)arrived / e2e : 0.0);
	printf(" cpu_s=%.3f\n", self_cpu());
	fflush(stdout);
	free(t.lat_us);
}

/* ---- TLS session resumption -------------------------------------------- */

/* Into the pool, unless it is full; 1: taken. */
static int
keep_session(SSL_SESSION *sess)
{
	int keep = 0;

	pthread_mutex_lock(&lg.tls_mu);
	if (sess != NULL && lg.ntls_saved < LG_TICKETS) {
		lg.tls_saved[lg.ntls_saved++] = sess;
		keep = 1;
	}
	pthread_mutex_unlock(&lg.tls_mu);
	return keep;
}

/* A ticket arrived (TLS 1.3: after the handshake, read with the
 * replies).  1: the session is ours. */
static int
on_new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct lg_sess *s = SSL_get_app_data(ssl);

	if (s != NULL)
		s->got_ticket = 1;
	return keep_session(sess);
}

/* A session back into the pool after its connection (or dropped). */
static void
give_session(SSL_SESSION *sess)
{
	if (sess != NULL && !keep_session(sess))
		SSL_SESSION_free(sess);
}

/* A ticket out of the pool for one handshake (NULL: none, a full one).
 * Taken, not shared: a TLS 1.3 ticket is meant for one resumption (RFC
 * 8446 C.4), and offering one ticket on every concurrent handshake
 * resumed only about half of them against OpenSSL servers.  Servers send
 * new ones after each handshake (OpenSSL: 2 after a full one, 1 after a
 * resumption); a ticket the server refused is dropped, one it resumed
 * and did not replace goes back (see sess_close). */
static SSL_SESSION *
take_session(void)
{
	SSL_SESSION *sess = NULL;

	pthread_mutex_lock(&lg.tls_mu);
	if (lg.ntls_saved > 0)
		sess = lg.tls_saved[--lg.ntls_saved];
	pthread_mutex_unlock(&lg.tls_mu);
	return sess;
}

/* ---- --sink: a counting SMTP sink with STARTTLS ---------------------------
 */

#define SK_IN  65536
#define SK_OUT 4096

struct sk_conn {
	int fd;
	SSL *ssl;
	char in[SK_IN];
	size_t inoff, inlen; /* unread bytes: in[inoff .. inlen) */
	char out[SK_OUT];
	size_t outlen;
};

static struct {
	SSL_CTX *ctx;
	int outfd;
	pthread_mutex_t mu; /* the counters and the file */
	uint64_t mesg, rcpts, conns, tls, resumed;
} sk = {.outfd = -1, .mu = PTHREAD_MUTEX_INITIALIZER};

/* Rewrite the counters file; counts only grow, so the line never
 * shrinks and no stale tail remains.  Called with sk.mu held. */
static void
sk_write_counts(void)
{
	char line[192];
	int n = snprintf(line, sizeof(line),
	    "mesg=%llu rcpts=%llu conns=%llu tls=%llu resumed=%llu\n",
	    (unsigned long long)sk.mesg, (unsigned long long)sk.rcpts,
	    (unsigned long long)sk.conns, (unsigned long long)sk.tls,
	    (unsigned long long)sk.resumed);

	if (n > 0 && pwrite(sk.outfd, line, (size_t)n, 0) != n)
		die("--sink-out: %s", strerror(errno));
}

static void
sk_count(uint64_t *counter, uint64_t add)
{
	pthread_mutex_lock(&sk.mu);
	*counter += add;
	sk_write_counts();
	pthread_mutex_unlock(&sk.mu);
}

static int
sk_flush(struct sk_conn *c)
{
	size_t off = 0;
	ssize_t n;

	while (off < c->outlen) {
		if (c->ssl != NULL)
			n = SSL_write(
			    c->ssl, c->out + off, (int)(c->outlen - off));
		else
			n = write(c->fd, c->out + off, c->outlen - off);
		if (n <= 0) {
			if (c->ssl == NULL && n < 0 && errno == EINTR)
				continue;
			return -1;
		}
		off += (size_t)n;
	}
	c->outlen = 0;
	return 0;
}

/* Queue a reply; it goes out when no whole command is left to read
 * (so a pipelined group gets its replies in one write). */
static int
sk_reply(struct sk_conn *c, const char *r)
{
	size_t len = strlen(r);

	if (c->outlen + len > sizeof(c->out) && sk_flush(c) != 0)
		return -1;
	memcpy(c->out + c->outlen, r, len);
	c->outlen += len;
	return 0;
}

/* More input, after sending what is queued; -1 at EOF or on an error. */
static int
sk_fill(struct sk_conn *c)
{
	ssize_t n;

	if (sk_flush(c) != 0)
		return -1;
	if (c->inoff > 0) {
		memmove(c->in, c->in + c->inoff, c->inlen - c->inoff);
		c->inlen -= c->inoff;
		c->inoff = 0;
	}
	if (c->inlen == sizeof(c->in))
		return -1; /* a command line too long */
	for (;;) {
		if (c->ssl != NULL)
			n = SSL_read(c->ssl, c->in + c->inlen,
			    (int)(sizeof(c->in) - c->inlen));
		else
			n = read(
			    c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen);
		if (n < 0 && c->ssl == NULL && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		c->inlen += (size_t)n;
		return 0;
	}
}

/* The next command line, without its CRLF; NULL at EOF. */
static char *
sk_line(struct sk_conn *c)
{
	char *p, *nl;

	for (;;) {
		p = c->in + c->inoff;
		nl = memchr(p, '\n', c->inlen - c->inoff);
		if (nl != NULL) {
			c->inoff = (size_t)(nl + 1 - c->in);
			*nl = '\0';
			if (nl > p && nl[-1] == '\r')
				nl[-1] = '\0';
			return p;
		}
		if (sk_fill(c) != 0)
			return NULL;
	}
}

/* Skip the content up to and including the "." line; -1 at EOF. */
static int
sk_data(struct sk_conn *c)
{
	int st = 0, bol = 1; /* 1: "." at a line start, 2: ".\r" */

	for (;;) {
		while (c->inoff < c->inlen) {
			char ch = c->in[c->inoff++];

			if (st == 0 && bol && ch == '.')
				st = 1;
			else if (st == 1)
				st = ch == '\r' ? 2 : 0;
			else if (st == 2) {
				if (ch == '\n')
					return 0;
				st = 0;
			}
			bol = ch == '\n';
		}
		if (sk_fill(c) != 0)
			return -1;
	}
}

static int
sk_is(const char *line, const char *verb)
{
	return strncasecmp(line, verb, strlen(verb)) == 0;
}

static void *
sk_session(void *arg)
{
	struct sk_conn *c = arg;
	uint64_t rcpts = 0;
	char *l;

	sk_count(&sk.conns, 1);
	if (sk_reply(c, "220 sink.bench.test ESMTP loadgen sink\r\n") != 0)
		goto out;
	while ((l = sk_line(c)) != NULL) {
		int r;

		if (sk_is(l, "EHLO")) {
			r = sk_reply(c, c->ssl == NULL && sk.ctx != NULL
					    ? "250-sink.bench.test\r\n"
					      "250-PIPELINING\r\n"
					      "250-8BITMIME\r\n"
					      "250-SIZE 0\r\n"
					      "250 STARTTLS\r\n"
					    : "250-sink.bench.test\r\n"
					      "250-PIPELINING\r\n"
					      "250-8BITMIME\r\n"
					      "250 SIZE 0\r\n");
		} else if (sk_is(l, "HELO")) {
			r = sk_reply(c, "250 sink.bench.test\r\n");
		} else if (sk_is(l, "STARTTLS") && sk.ctx != NULL &&
			   c->ssl == NULL) {
			/* what was pipelined after STARTTLS is dropped */
			c->inoff = c->inlen = 0;
			if (sk_reply(c, "220 2.0.0 go ahead\r\n") != 0 ||
			    sk_flush(c) != 0)
				break;
			c->ssl = SSL_new(sk.ctx);
			if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1 ||
			    SSL_accept(c->ssl) != 1)
				break;
			sk_count(&sk.tls, 1);
			/* the client offered a session and we took it */
			if (SSL_session_reused(c->ssl))
				sk_count(&sk.resumed, 1);
			r = 0;
		} else if (sk_is(l, "MAIL")) {
			rcpts = 0;
			r = sk_reply(c, "250 2.1.0 ok\r\n");
		} else if (sk_is(l, "RCPT")) {
			rcpts++;
			r = sk_reply(c, "250 2.1.5 ok\r\n");
		} else if (sk_is(l, "DATA")) {
			if (sk_reply(c, "354 go ahead\r\n") != 0 ||
			    sk_data(c) != 0)
				break;
			pthread_mutex_lock(&sk.mu);
			sk.mesg++;
			sk.rcpts += rcpts;
			sk_write_counts();
			pthread_mutex_unlock(&sk.mu);
			rcpts = 0;
			r = sk_reply(c, "250 2.0.0 ok: counted\r\n");
		} else if (sk_is(l, "RSET")) {
			rcpts = 0;
			r = sk_reply(c, "250 2.0.0 ok\r\n");
		} else if (sk_is(l, "NOOP")) {
			r = sk_reply(c, "250 2.0.0 ok\r\n");
		} else if (sk_is(l, "QUIT")) {
			(void)sk_reply(c, "221 2.0.0 bye\r\n");
			(void)sk_flush(c);
			break;
		} else {
			r = sk_reply(c, "502 5.5.2 not here\r\n");
		}
		if (r != 0)
			break;
	}
out:
	if (c->ssl != NULL) {
		/* a close_notify, else OpenSSL forgets the session */
		(void)SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	close(c->fd);
	free(c);
	return NULL;
}

_Noreturn static void
sink_main(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	pthread_attr_t attr;
	int lfd, one = 1;

	raise_nofile();
	signal(SIGPIPE, SIG_IGN);
	sk.outfd =
	    open(lg.sink_out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (sk.outfd < 0)
		die("%s: %s", lg.sink_out, strerror(errno));
	pthread_mutex_lock(&sk.mu);
	sk_write_counts();
	pthread_mutex_unlock(&sk.mu);
	if (lg.cert != NULL) {
		sk.ctx = SSL_CTX_new(TLS_server_method());
		if (sk.ctx == NULL ||
		    SSL_CTX_set_min_proto_version(sk.ctx, TLS1_2_VERSION) !=
			1 ||
		    SSL_CTX_use_certificate_chain_file(sk.ctx, lg.cert) != 1 ||
		    SSL_CTX_use_PrivateKey_file(
			sk.ctx, lg.key, SSL_FILETYPE_PEM) != 1)
			die("--cert %s --key %s: not usable", lg.cert, lg.key);
	}
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	a.sin_port = htons((uint16_t)lg.sink_port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	(void)setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    listen(lfd, 1024) != 0)
		die("--sink 127.0.0.1:%d: %s", lg.sink_port, strerror(errno));
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	for (;;) {
		struct sk_conn *c;
		pthread_t t;
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE) {
				usleep(10000); /* a connection will end */
				continue;
			}
			die("accept: %s", strerror(errno));
		}
		(void)setsockopt(
		    fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = xcalloc(1, sizeof(*c));
		c->fd = fd;
		if (pthread_create(&t, &attr, sk_session, c) != 0) {
			close(fd);
			free(c);
		}
	}
}

int
main(int argc, char **argv)
{
	struct lg_thread th[LG_MAX_THREADS];
	long base = 0, arrived = -1, now_count;
	double e2e = 0;
	uint64_t t_done;
	int i, per, rest, off = 0;

	parse_args(argc, argv);
	if (lg.sink_port != 0)
		sink_main();
	if (!lg.messages_set && lg.duration <= 0)
		lg.messages = 1000; /* neither -n nor -d */
	if (lg.messages == 0 && lg.duration <= 0 && !lg.idle)
		die("-n 0 needs -d");
	raise_nofile();
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	make_message();
	if (lg.tls) {
		lg.ssl_ctx = SSL_CTX_new(TLS_client_method());
		if (lg.ssl_ctx == NULL)
			die("SSL_CTX_new");
		SSL_CTX_set_verify(lg.ssl_ctx, SSL_VERIFY_NONE, NULL);
		SSL_CTX_set_mode(
		    lg.ssl_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
				    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
		if (lg.tls13 && SSL_CTX_set_min_proto_version(
				    lg.ssl_ctx, TLS1_3_VERSION) != 1)
			die("TLS 1.3 not available");
		if (lg.resume) {
			SSL_CTX_set_session_cache_mode(
			    lg.ssl_ctx, SSL_SESS_CACHE_CLIENT |
					    SSL_SESS_CACHE_NO_INTERNAL_STORE);
			SSL_CTX_sess_set_new_cb(lg.ssl_ctx, on_new_session);
		}
	}
	if (lg.nwatch || lg.watch_sink)
		base = count_arrived();
	memset(th, 0, sizeof(th));
	per = lg.sessions / lg.threads;
	rest = lg.sessions % lg.threads;
	lg.t_start = now_ns();
	for (i = 0; i < lg.threads; i++) {
		th[i].id = i;
		th[i].nsess = per + (i < rest);
		th[i].sess =
		    xcalloc((size_t)th[i].nsess, sizeof(struct lg_sess));
		off += th[i].nsess;
		if (pthread_create(&th[i].tid, NULL, thread_main, &th[i]) != 0)
			die("pthread_create");
	}
	if (lg.idle)
		idle_wait();
	for (i = 0; i < lg.threads; i++)
		pthread_join(th[i].tid, NULL);
	lg.t_end_send = now_ns();
	if (lg.nwatch || lg.watch_sink) {
		uint64_t ok = 0;

		for (i = 0; i < lg.threads; i++)
			ok += th[i].st.ok_distinct;
		for (;;) {
			now_count = count_arrived() - base;
			t_done = now_ns();
			if (now_count >= (long)ok ||
			    (double)(t_done - lg.t_end_send) / 1e9 >
				lg.watch_timeout)
				break;
			usleep(now_count + 2000 < (long)ok ? 50000 : 5000);
		}
		/* a little longer, to see extra arrivals too */
		usleep(200000);
		arrived = count_arrived() - base;
		e2e = (double)(t_done - lg.t_start) / 1e9;
	}
	report(th, arrived, e2e);
	for (i = 0; i < lg.threads; i++) {
		free(th[i].sess);
		free(th[i].st.lat_us);
	}
	if (lg.ssl_ctx != NULL)
		SSL_CTX_free(lg.ssl_ctx);
	while (lg.ntls_saved > 0)
		SSL_SESSION_free(lg.tls_saved[--lg.ntls_saved]);
	return 0;
}
