/*
 * conn: one SMTP connection.  Bytes from the bufferevent go into the pure
 * session (src/smtp); the events it returns are decided here (policy,
 * tables, delivery) and its replies are written back when the input
 * buffer has been drained (RFC 2920), when a decision goes asynchronous,
 * or when too much output has piled up.
 *
 * Timers: between commands the idle limit is timeout.command; once a line
 * has begun it must be complete within timeout.line (so a byte-a-minute
 * client cannot hold a slot); while content is read, timeout.data without
 * a byte.  No timer runs while the connection waits for its own delivery.
 *
 * Lifetime: a connection with a delivery job in flight is not freed when
 * the client goes away; it is marked dead and freed by the job's
 * completion, so a job never points at freed memory.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>

#include "deliver/deliver.h"
#include "metrics/metrics.h"
#include "smtp/smtp.h"
#include "fs/file.h"
#include "server/conn.h"
#include "server/connrate.h"
#include "server/dkimsign.h"
#include "server/netlist.h"

#define CONN_OUT_MAX  (1024 * 1024) /* replies not yet written */
#define CONN_FLUSH_AT (16 * 1024)
#define CONN_IN_HIGH  (256 * 1024) /* stop reading above this */
#define CONN_OUT_HIGH                                                          \
	(256 * 1024)	 /* stop reading while this much                       \
			    output waits for the client */
#define CONN_PULLUP 4096 /* > SMTP_CMD_LINE_PARAMS_MAX */
/* Content past this size goes to an unlinked file in state_dir instead of
 * memory: a big message costs page cache the kernel can write out, not
 * heap, and the memory budget is left to the many small ones. */
#define CONN_SPILL_AT ((size_t)1 << 20)
/* Free space under the scratch file is looked at again after this many
 * octets written to it (fstatvfs is one system call; a crowd of sessions
 * can overshoot the reserve by this much each, no more). */
#define CONN_DISK_CHECK_EVERY ((uint64_t)256 << 10)
#define CONN_LINGER_S                                                          \
	5 /* a closing connection's last                                       \
	     reply gets this long to go out */

/* ---- transaction ------------------------------------------------------- */

/*
 * The in-flight budgets (limits.inflight_memory, limits.inflight_scratch)
 * bound the content of unfinished messages of all sessions together, so
 * a crowd of slow senders of large messages can neither grow the process
 * nor fill the disk.  A message that finds no room has its content
 * dropped at once and is answered 452 4.3.1 once the client has sent the
 * rest (smtp_server_body_refuse).  s->body_bytes and s->scratch_bytes
 * count what every transaction holds, and go down when it lets go of it
 * (txn_body_reset, txn_free), whether the message was refused, committed
 * or abandoned.
 */
static bool
budget_room(uint64_t used, uint64_t budget, uint64_t n)
{
	return used <= budget && n <= budget - used;
}

static void
txn_spill_close(struct txn *t)
{
	if (t->map != NULL)
		(void)munmap(t->map, (size_t)t->spill_len);
	t->map = NULL;
	if (t->spill_fd >= 0)
		fd_close_quiet(t->spill_fd);
	t->spill_fd = -1;
	t->srv->scratch_bytes -= t->spill_len;
	t->spill_len = 0;
}

/* Give the content's memory back, to the budget and to the allocator. */
static void
txn_body_reset(struct txn *t)
{
	size_t max = t->body.max;

	t->srv->body_bytes -= t->body.len;
	buf_free(&t->body);
	buf_init(&t->body, max);
	txn_spill_close(t);
}

/* The content as received (in memory, or the mapped spill file). */
const char *
txn_content(const struct txn *t, size_t *len)
{
	if (t->milter.rewritten) { /* a milter changed it (connmilter.c) */
		*len = t->milter.content.len;
		return t->milter.content.data;
	}
	if (t->map != NULL) {
		*len = (size_t)t->spill_len;
		return t->map;
	}
	*len = t->body.len;
	return t->body.data != NULL ? t->body.data : "";
}

static void
txn_free(struct txn *t)
{
	if (t == NULL)
		return;
	t->srv->body_bytes -= t->body.len;
	txn_spill_close(t);
	for (size_t i = 0; i < t->nsucc; i++) {
		free(t->succ[i].addr);
		free(t->succ[i].orcpt_type);
		free(t->succ[i].orcpt);
	}
	free(t->succ);
	spfcheck_free(t->spf); /* cancels its DNS query and its timer */
	authcheck_free(t->auth);
	buf_free(&t->stripped);
	conn_milter_txn_free(t);
	conn_policy_txn_free(t);
	table_targets_free(&t->targets);
	if (t->remote != NULL) {
		queue_env_free(t->remote);
		free(t->remote);
	}
	buf_free(&t->body);
	free(t);
}

static void
conn_drop_txn(struct conn *c)
{
	if (c->txn != NULL)
		conn_milter_abort(c);
	txn_free(c->txn);
	c->txn = NULL;
}

/*
 * An unlinked file in state_dir (O_TMPFILE; else a name unlinked at once),
 * so a crash leaves nothing behind.  It is not a durable copy: inject
 * still writes and syncs the real ones at the end of data.
 */
static int
spill_open(const struct txn *t)
{
	char path[PATH_MAX];
	int fd;

	fd =
	    open(t->srv->conf->state_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0 ||
	    (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
		return fd;
	if (str_fmt(path, sizeof(path), "%s/.content-%s",
		t->srv->conf->state_dir, t->id) != 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = open(path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC | O_NOFOLLOW,
		 0600)) >= 0)
		(void)unlink(path);
	return fd;
}

static void
body_fail(struct txn *t, int err)
{
	t->body_failed = true;
	t->body_errno = err;
	txn_body_reset(t); /* nothing of it is kept */
}

/*
 * No room for the content (reason: the budget or the disk that ran out):
 * it is dropped now, the core reads the rest and answers 452 4.3.1 (for
 * BDAT, at the end of this chunk).
 */
static void
body_no_room(struct conn *c, const char *reason)
{
	struct txn *t = c->txn;

	log_info("id=%s sid=%s event=content_refused reason=%s memory=%zu "
		 "scratch=%" PRIu64,
	    t->id, c->sid, reason, c->srv->body_bytes, c->srv->scratch_bytes);
	body_fail(t, ENOSPC);
	smtp_server_body_refuse(c->smtp);
}

/*
 * May n more octets go to the scratch file?  NULL if so, else which limit
 * says no.  The file system under it keeps SERVER_DISK_RESERVE free, as
 * at MAIL: checked on the first write and every CONN_DISK_CHECK_EVERY
 * octets after it, so a message that outgrows the disk stops before the
 * disk is full, not when a write fails.
 */
static const char *
spill_room(struct conn *c, uint64_t n)
{
	struct txn *t = c->txn;
	struct statvfs sv;

	if (!budget_room(c->srv->scratch_bytes, c->cf->inflight_scratch, n))
		return "inflight_scratch";
	t->spill_unchecked += n;
	if (t->spill_unchecked < CONN_DISK_CHECK_EVERY && t->spill_len > 0)
		return NULL;
	t->spill_unchecked = 0;
	if (fstatvfs(t->spill_fd, &sv) != 0)
		return NULL; /* cannot tell: the write will say */
	if ((uint64_t)sv.f_bavail * sv.f_frsize < n + SERVER_DISK_RESERVE)
		return "disk_space";
	return NULL;
}

/* Append to the scratch file; on failure the content is dropped. */
static void
spill_write(struct conn *c, const char *p, size_t n)
{
	struct txn *t = c->txn;
	const char *full = spill_room(c, n);
	struct iovec iov = {(void *)(uintptr_t)p, n};

	if (full != NULL) {
		body_no_room(c, full);
		return;
	}
	if (file_write_all("spill", t->spill_fd, &iov, 1) != 0) {
		int e = errno;

		if (e == ENOSPC || e == EDQUOT) {
			body_no_room(c, "write_enospc");
			return;
		}
		log_err("id=%s sid=%s event=content_spill error=\"%s\"", t->id,
		    c->sid, strerror(e));
		body_fail(t, e);
		return;
	}
	t->spill_len += n;
	c->srv->scratch_bytes += n;
}

/* Move the content from memory to a scratch file, then append p. */
static void
spill_start(struct conn *c, const char *p, size_t n)
{
	struct txn *t = c->txn;
	size_t max = t->body.max, held = t->body.len;

	if ((t->spill_fd = spill_open(t)) < 0) {
		int e = errno;

		log_err("id=%s sid=%s event=content_spill error=\"%s\"", t->id,
		    c->sid, strerror(e));
		body_fail(t, e);
		return;
	}
	t->spill_unchecked = 0;
	spill_write(c, t->body.data ? t->body.data : "", held);
	if (t->body_failed)
		return;
	/* the octets are counted in scratch now, no longer in memory */
	t->srv->body_bytes -= held;
	buf_free(&t->body);
	buf_init(&t->body, max);
	spill_write(c, p, n);
}

static void
body_sink(void *ctx, const char *p, size_t n)
{
	struct conn *c = ctx;
	struct txn *t = c->txn;

	if (t == NULL || t->body_failed)
		return;
	if (t->spill_fd < 0 && t->body.len + n > CONN_SPILL_AT) {
		spill_start(c, p, n);
		return;
	}
	if (t->spill_fd >= 0) {
		spill_write(c, p, n);
		return;
	}
	if (!budget_room(c->srv->body_bytes, c->cf->inflight_memory, n)) {
		body_no_room(c, "inflight_memory");
		return;
	}
	if (buf_append(&t->body, p, n) != 0) {
		body_fail(t, 0);
		return;
	}
	c->srv->body_bytes += n;
}

/* End of data: a spilled content is mapped, so the rest reads it as one
 * piece of memory (page cache, not heap). */
static int
body_finish(struct conn *c)
{
	struct txn *t = c->txn;
	void *m;

	if (t->spill_fd < 0 || t->spill_len == 0)
		return 0;
	m = mmap(
	    NULL, (size_t)t->spill_len, PROT_READ, MAP_SHARED, t->spill_fd, 0);
	if (m == MAP_FAILED) {
		int e = errno;

		log_err("id=%s sid=%s event=content_map error=\"%s\"", t->id,
		    c->sid, strerror(e));
		errno = e;
		return -1;
	}
	t->map = m;
	return 0;
}

/* ---- output and close -------------------------------------------------- */

/*
 * RFC 2920 lets a client send many commands without reading the replies;
 * it does not oblige us to keep its replies without end.  While this much
 * output waits, no more input is read (on_write reads again once the
 * output has drained): a client that never reads fills its own socket and
 * stalls, and ternd's memory stays bounded whatever it sends.
 */
static bool
conn_out_full(struct conn *c)
{
	return c->bev != NULL &&
	       c->out.len +
		       evbuffer_get_length(bufferevent_get_output(c->bev)) >=
		   CONN_OUT_HIGH;
}

/*
 * A plain-TCP session whose output buffer is empty sends its replies at
 * once with one send(): through the bufferevent they would cost an
 * epoll_ctl to ask for EPOLLOUT, an epoll_wait to hear it and another
 * epoll_ctl to drop it again.  What the socket does not take (or an error,
 * which the bufferevent then reports as usual) goes the bufferevent's way,
 * so the order of the bytes and the backpressure stay as they were.
 */
static size_t
conn_send_now(struct conn *c)
{
	ssize_t w;

	if (c->tls || c->fd < 0 ||
	    evbuffer_get_length(bufferevent_get_output(c->bev)) != 0)
		return 0;
	do
		w = send(c->fd, c->out.data, c->out.len,
		    MSG_DONTWAIT | MSG_NOSIGNAL);
	while (w < 0 && errno == EINTR);
	return w > 0 ? (size_t)w : 0;
}

static void
conn_flush(struct conn *c)
{
	size_t sent;

	if (c->out.len == 0 || c->bev == NULL)
		return;
	metrics_replies(c->out.data, c->out.len);
	sent = conn_send_now(c);
	if (sent < c->out.len && bufferevent_write(c->bev, c->out.data + sent,
				     c->out.len - sent) != 0)
		c->closing = true;
	buf_reset(&c->out);
}

static void
conn_log_close(struct conn *c, const char *reason)
{
	if (c->close_reason == NULL)
		c->close_reason = reason;
}

void
conn_close_soon(struct conn *c, const char *reason)
{
	conn_log_close(c, reason);
	c->closing = true;
	conn_flush(c);
	if (c->bev == NULL)
		return;
	bufferevent_disable(c->bev, EV_READ);
	event_del(c->timer);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0 &&
	    !c->job_running) {
		conn_free(c);
		return;
	}
	/* else the write callback frees it once the 221/421 is out; a client
	 * that never reads it, or never finishes its TLS handshake (the 421
	 * cannot even be encrypted), is cut off after CONN_LINGER_S, so it
	 * cannot keep its connection slot for ever */
	if (!c->job_running) {
		struct timeval tv = {CONN_LINGER_S, 0};

		event_add(c->timer, &tv);
	}
}

/* ---- timers ------------------------------------------------------------ */

static void
conn_arm_timer(struct conn *c)
{
	const struct conf *cf = c->cf;
	uint64_t now = time_now_ms(), ms;
	size_t pend = evbuffer_get_length(bufferevent_get_input(c->bev));
	struct timeval tv;

	if (c->pending || c->closing) {
		event_del(c->timer);
		return;
	}
	if (smtp_server_reading_body(c->smtp)) {
		c->line_started = 0;
		ms = (uint64_t)cf->timeout_data * 1000;
	} else if (pend > 0 && (bufferevent_get_enabled(c->bev) & EV_READ)) {
		/* (input held back by conn_out_full is not a slow line) */
		if (c->line_started == 0)
			c->line_started = now;
		ms = c->line_started + (uint64_t)cf->timeout_line * 1000;
		ms = ms > now ? ms - now : 1;
	} else {
		c->line_started = 0;
		ms = (uint64_t)cf->timeout_command * 1000;
	}
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	event_add(c->timer, &tv);
}

static void
on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	if (c->closing) {
		log_info("sid=%s event=linger_timeout", c->sid);
		conn_free(c);
		return;
	}
	log_info("sid=%s event=timeout state=%d", c->sid,
	    (int)smtp_server_state(c->smtp));
	smtp_server_shutdown(c->smtp, "4.4.2", "Error: timeout exceeded");
	conn_close_soon(c, "timeout");
}

/* ---- policy: MAIL and RCPT --------------------------------------------- */

void
conn_reject(struct conn *c, const char *cmd, int code, const char *enh,
    const char *text, const char *addr)
{
	char safe[300];

	log_info("sid=%s event=reject cmd=%s code=%d addr=\"%s\" reason=\"%s\"",
	    c->sid, cmd, code,
	    log_quote(safe, sizeof(safe), addr, strlen(addr)), text);
	smtp_server_reject(c->smtp, code, enh, text);
}

/*
 * The milters' verdict on a command (connmilter.c): refused with their
 * reply (true), else the command goes on.
 */
static bool
milter_refused(struct conn *c, const char *cmd, const char *addr)
{
	const struct conn_milter_result *r = conn_milter_result(c);

	if (r->verdict != CONN_MILTER_REJECT &&
	    r->verdict != CONN_MILTER_TEMPFAIL)
		return false;
	conn_reject(c, cmd, r->code, r->enh, r->text, addr);
	return true;
}

static void
on_milter_mail(struct conn *c)
{
	if (milter_refused(c, "mail", c->txn->sender))
		conn_drop_txn(c);
	else {
		if (conn_milter_result(c)->verdict == CONN_MILTER_DISCARD)
			c->txn->milter.discard = true;
		smtp_server_accept(c->smtp);
	}
	conn_process(c);
}

/* MAIL, once the sender may be used: the new transaction. */
static void
mail_begin(struct conn *c)
{
	const struct smtp_cmd *cmd = smtp_server_cmd(c->smtp);
	struct txn *t;

	if (!server_disk_ok(c->srv, cmd->mail.has_size ? cmd->mail.size : 0)) {
		conn_reject(c, "mail", 452, "4.3.1",
		    "Insufficient system storage, try again later", "");
		return;
	}
	conn_drop_txn(c);
	t = xcalloc(1, sizeof(*t));
	t->srv = c->srv;
	t->spill_fd = -1;
	id_new(t->id);
	if (addr_format(&cmd->path, t->sender, sizeof(t->sender)) < 0)
		t->sender[0] = '\0';
	t->params = cmd->mail;
	buf_init(&t->body, (size_t)c->cf->message_size + 1);
	/* SIZE= announces the body: one allocation instead of doublings, up
	 * to 1 MiB, so a client cannot reserve memory by merely claiming */
	if (cmd->mail.has_size && cmd->mail.size <= c->cf->message_size &&
	    buf_reserve(&t->body, cmd->mail.size < (1u << 20)
				      ? (size_t)cmd->mail.size
				      : (1u << 20)) != 0)
		buf_init(&t->body, (size_t)c->cf->message_size + 1);
	c->txn = t;
	if (conn_milter_stage(c, CONN_MILTER_MAIL, NULL, on_milter_mail))
		return;
	smtp_server_accept(c->smtp);
}

static void
on_mail(struct conn *c)
{
	if (c->l->kind != LISTEN_SMTP && !c->local && !c->authenticated) {
		conn_reject(
		    c, "mail", 530, "5.7.0", "Authentication required", "");
		return;
	}
	if (conn_rate_mail(c))
		return; /* 450 4.7.1 (connrate.c) */
	submit_check_sender(c, mail_begin);
}

static int
txn_add_targets(struct txn *t, const struct table_targets *tt)
{
	size_t i, j;

	for (i = 0; i < tt->n; i++) {
		bool dup = !tt->v[i].local;

		/* one copy per mailbox and folder (plus-addressing) */
		for (j = 0; j < t->targets.n && !dup; j++)
			dup = strcmp(t->targets.v[j].mailbox,
				  tt->v[i].mailbox) == 0 &&
			      strcmp(t->targets.v[j].folder, tt->v[i].folder) ==
				  0;
		if (dup)
			continue;
		if (t->targets.n >= TABLE_TARGETS_MAX)
			return -1;
		if (t->targets.n == t->targets.cap) {
			size_t ncap = t->targets.cap ? t->targets.cap * 2 : 4;
			struct table_target *v =
			    realloc(t->targets.v, ncap * sizeof(*v));

			if (v == NULL)
				return -1;
			t->targets.v = v;
			t->targets.cap = ncap;
		}
		t->targets.v[t->targets.n++] = tt->v[i];
	}
	return 0;
}

/* May this client send to domains that are not ours?  (docs/design.md,
 * principle 4: no open relay) */
static bool
conn_may_relay(const struct conn *c)
{
	return c->authenticated || c->local ||
	       netlist_match(
		   c->snap->relay_nets, (const struct sockaddr *)&c->sa);
}

static struct queue_env *
txn_envelope(struct conn *c)
{
	struct txn *t = c->txn;
	struct queue_env *env;

	if (t->remote != NULL)
		return t->remote;
	env = t->remote = xcalloc(1, sizeof(*env));
	queue_env_init(env);
	memcpy(env->id, t->id, sizeof(env->id)); /* "queued as" names it */
	/* each field is as large as its source (QUEUE_*_MAX): no cut */
	if (str_copy(env->sender, sizeof(env->sender), t->sender,
		strlen(t->sender)) != 0 ||
	    str_copy(env->envid, sizeof(env->envid), t->params.envid,
		strlen(t->params.envid)) != 0 ||
	    str_copy(env->helo, sizeof(env->helo), smtp_server_helo(c->smtp),
		strlen(smtp_server_helo(c->smtp))) != 0 ||
	    str_copy(env->ip, sizeof(env->ip), c->ip, strlen(c->ip)) != 0 ||
	    str_copy(env->auth, sizeof(env->auth), submit_auth_user(c),
		strlen(submit_auth_user(c))) != 0)
		panic("sid=%s event=txn_envelope error=\"a field outgrew "
		      "the queue envelope\"",
		    c->sid);
	env->ret = t->params.ret;
	env->body_8bit = t->params.body == SMTP_BODY_8BITMIME;
	env->smtputf8 = t->params.smtputf8;
	env->requiretls = t->params.requiretls; /* RFC 8689 4.1: tagged */
	return env;
}

/* A remote recipient, with the DSN parameters of its RCPT (RFC 3461). */
static int
txn_add_remote(
    struct conn *c, const char *addr, const struct smtp_rcpt_params *rp)
{
	struct queue_env *env = txn_envelope(c);
	struct queue_rcpt *r;
	size_t i;

	for (i = 0; i < env->nrcpt; i++)
		if (strcasecmp(env->rcpt[i].addr, addr) == 0)
			return 0;
	if (env->nrcpt >= TABLE_TARGETS_MAX ||
	    (r = queue_env_add_rcpt(env, addr)) == NULL)
		return -1;
	r->notify = rp->notify;
	if (rp->has_orcpt) {
		/* QUEUE_ORCPT_*_MAX match what smtp_param.c accepts */
		if (str_copy(r->orcpt_type, sizeof(r->orcpt_type),
			rp->orcpt_type, strlen(rp->orcpt_type)) != 0 ||
		    str_copy(r->orcpt, sizeof(r->orcpt), rp->orcpt,
			strlen(rp->orcpt)) != 0)
			panic("sid=%s event=orcpt error=\"ORCPT outgrew the "
			      "queue envelope\"",
			    c->sid);
	}
	return 0;
}

/* Local targets to the Maildir list, remote ones (aliases pointing out) to
 * the envelope.  A local target behind LMTP (delivery.lmtp, or its row's
 * lmtp: mailbox) goes to the envelope too: the queue hands it over. */
static int
txn_add_resolved(struct conn *c, const struct table_targets *tt,
    const struct smtp_rcpt_params *rp)
{
	size_t i;

	for (i = 0; i < tt->n; i++) {
		/* txn_add_targets takes a list; one target at a time here */
		struct table_targets one = {.v = &tt->v[i], .n = 1, .cap = 1};

		if (!tt->v[i].local ||
		    server_mailbox_is_lmtp(c->srv, tt->v[i].mailbox)) {
			if (txn_add_remote(c, tt->v[i].address, rp) != 0)
				return -1;
			c->txn->forwarded |= !tt->v[i].local;
		} else if (txn_add_targets(c->txn, &one) != 0) {
			return -1;
		}
	}
	return 0;
}

/*
 * Is a (an address literal) the address the client connected to?  RFC 1123
 * 5.2.17: a host must take mail for a domain literal of its own address.
 */
static bool
literal_is_this_host(const struct conn *c, const struct addr *a)
{
	struct sockaddr_storage me;
	socklen_t len = sizeof(me);
	unsigned char want[16], have[16];
	const char *inner;
	char lit[ADDR_DOMAIN_MAX + 1];
	size_t n;
	int fd = c->bev != NULL ? bufferevent_getfd(c->bev) : c->fd;

	if (c->local || c->cf->ndomains == 0 ||
	    (a->kind != ADDR_DOMAIN_IPV4 && a->kind != ADDR_DOMAIN_IPV6))
		return false;
	n = strlen(a->domain);
	inner = a->domain + 1 +
		(a->kind == ADDR_DOMAIN_IPV6 ? 5 : 0); /* "[IPv6:" */
	if (n < 2 || inner >= a->domain + n - 1 ||
	    str_copy(lit, sizeof(lit), inner,
		(size_t)(a->domain + n - 1 - inner)) != 0)
		return false;
	if (getsockname(fd, (struct sockaddr *)&me, &len) != 0)
		return false;
	if (me.ss_family == AF_INET && a->kind == ADDR_DOMAIN_IPV4)
		return inet_pton(AF_INET, lit, want) == 1 &&
		       memcmp(want, &((struct sockaddr_in *)&me)->sin_addr,
			   4) == 0;
	if (me.ss_family != AF_INET6)
		return false;
	memcpy(have, &((struct sockaddr_in6 *)&me)->sin6_addr, 16);
	if (a->kind == ADDR_DOMAIN_IPV6)
		return inet_pton(AF_INET6, lit, want) == 1 &&
		       memcmp(want, have, 16) == 0;
	/* [192.0.2.1] reached through an IPv6 socket as ::ffff:192.0.2.1 */
	return IN6_IS_ADDR_V4MAPPED((struct in6_addr *)have) &&
	       inet_pton(AF_INET, lit, want) == 1 &&
	       memcmp(want, have + 12, 4) == 0;
}

/*
 * RFC 3461 5.2.2: NOTIFY=SUCCESS on a recipient delivered here, into its
 * Maildir, earns a "delivered" DSN once the message is stored (eom_done);
 * remember what it must say.  Recipients that go on through the queue
 * (remote, or LMTP) get theirs from the queue manager.
 */
static void
txn_note_success(struct txn *t, const struct table_targets *tt,
    const struct smtp_rcpt_params *rp, const char *rcpt)
{
	struct dsn_delivered_rcpt *d;
	size_t i, local = 0;

	if (!(rp->notify & SMTP_NOTIFY_SUCCESS))
		return;
	for (i = 0; i < tt->n; i++)
		local += tt->v[i].local &&
			 !server_mailbox_is_lmtp(t->srv, tt->v[i].mailbox);
	if (local == 0)
		return;
	if ((d = realloc(t->succ, (t->nsucc + 1) * sizeof(*t->succ))) == NULL)
		return; /* no report; the delivery is unaffected */
	t->succ = d;
	d = &t->succ[t->nsucc++];
	d->addr = xstrdup(rcpt);
	d->orcpt_type = rp->has_orcpt ? xstrdup(rp->orcpt_type) : NULL;
	d->orcpt = rp->has_orcpt ? xstrdup(rp->orcpt) : NULL;
	d->expanded = tt->n > 1;
}

/*
 * RCPT's question (c->rcpt_q): made at the session's first RCPT (or the
 * first recipient a milter adds) and kept until the session ends, so an
 * idle session does not carry it and no RCPT allocates.  The answer finds
 * its conn through it.
 */
struct rcpt_question {
	struct resolve_lookup q;
	struct conn *c;
};

/*
 * Every idle session holds a struct conn: issue 14 wants < 3 KiB per idle
 * connection in all (bench scenario C: 2,623 B at 19,900 with this struct
 * at 784 B; 4,030 B when it was 2,192).  State that only some sessions
 * or only a transaction need goes behind a pointer, made when used
 * (rcpt_q, milters, screen, auth_user, txn), not in here.
 */
_Static_assert(sizeof(struct conn) <= 1024,
    "struct conn grew past 1 KiB: move the new state out (see above)");

static struct resolve_lookup *
rcpt_question(struct conn *c)
{
	struct rcpt_question *rq;

	if (c->rcpt_q == NULL) {
		rq = xcalloc(1, sizeof(*rq));
		rq->c = c;
		c->rcpt_q = &rq->q;
	}
	return c->rcpt_q;
}

static struct conn *
rcpt_question_conn(struct lookup *lk)
{
	struct resolve_lookup *q =
	    (struct resolve_lookup *)(void *)((char *)lk -
					      offsetof(
						  struct resolve_lookup, lk));

	return (
	    (struct rcpt_question *)(void *)((char *)q -
					     offsetof(struct rcpt_question, q)))
	    ->c;
}

static void
rcpt_question_free(struct conn *c)
{
	struct resolve_lookup *q = c->rcpt_q;

	if (q == NULL)
		return;
	table_targets_free(&q->tt);
	free((char *)q - offsetof(struct rcpt_question, q));
	c->rcpt_q = NULL;
}

/* RCPT's answer (c->rcpt_q) to a reply. */
static void
rcpt_decide(struct conn *c, const struct resolve_lookup *q)
{
	const struct smtp_cmd *cmd = smtp_server_cmd(c->smtp);
	enum table_status st = q->st;
	char rcpt[TABLE_ADDR_MAX + 1];
	int added = 0;

	/* a valid SRS address stands for the address it was made of */
	if (addr_format(
		c->rcpt_srs ? &q->addr : &cmd->path, rcpt, sizeof(rcpt)) < 0)
		rcpt[0] = '\0';
	/* before the recipient is added: a refused one leaves no trace */
	if (st == TABLE_OK && conn_spf_refuses(c, rcpt))
		return;
	if (st == TABLE_NOTLOCAL &&
	    (c->rcpt_srs ||
		(conn_may_relay(c) && cmd->path.kind == ADDR_DOMAIN_NAME))) {
		added = txn_add_remote(c, rcpt, &cmd->rcpt);
		st = TABLE_OK;
	} else if (st == TABLE_OK) {
		added = txn_add_resolved(c, &q->tt, &cmd->rcpt);
	}
	if (st == TABLE_OK && added != 0)
		conn_reject(
		    c, "rcpt", 452, "4.5.3", "Too many recipients", rcpt);
	else if (st == TABLE_OK) {
		txn_note_success(c->txn, &q->tt, &cmd->rcpt, rcpt);
		if (c->txn->nrcpt++ == 0 &&
		    str_copy(c->txn->first_rcpt, sizeof(c->txn->first_rcpt),
			rcpt, strlen(rcpt)) != 0)
			c->txn->first_rcpt[0] = '\0';
		smtp_server_accept(c->smtp);
	} else if (st == TABLE_NOTFOUND) {
		/* past rate.unknown_recipients: 421 and a penalty */
		if (!conn_rate_unknown(c, rcpt))
			conn_reject(c, "rcpt", 550, "5.1.1",
			    "Recipient address rejected: no such user here",
			    rcpt);
	} else if (st == TABLE_NOTLOCAL)
		conn_reject(
		    c, "rcpt", 554, "5.7.1", "Relay access denied", rcpt);
	else if (st == TABLE_LOOP)
		conn_reject(c, "rcpt", 550, "5.4.6",
		    "Alias loop or too many alias levels", rcpt);
	else {
		/* the reply stays vague; the log says what the admin must fix
		 */
		char lq[600];

		log_warn("sid=%s event=table_error error=\"%s\"", c->sid,
		    log_quote(lq, sizeof(lq), q->lk.err, strlen(q->lk.err)));
		conn_reject(c, "rcpt", 451, "4.3.0",
		    "Temporary lookup failure, try again later", rcpt);
	}
}

static void eom_store(struct conn *c);
static void eom_checked(struct conn *c);

/*
 * RCPT's stages after the table's answer, in this order: the SPF check
 * (when its result decides), the policy servers, greylisting, the
 * milters.  A stage that holds c returns true, and its callback goes on
 * with the stages after it (rcpt_go_on).
 */
static bool rcpt_spf_hold(struct conn *c);
static bool rcpt_policy_hold(struct conn *c);
static bool rcpt_grey_hold(struct conn *c);
static bool rcpt_milter_hold(struct conn *c);

enum rcpt_stage { RCPT_SPF, RCPT_POLICY, RCPT_GREY, RCPT_MILTER, RCPT_DECIDE };

static bool (*const rcpt_stages[RCPT_DECIDE])(struct conn *) = {
    [RCPT_SPF] = rcpt_spf_hold,
    [RCPT_POLICY] = rcpt_policy_hold,
    [RCPT_GREY] = rcpt_grey_hold,
    [RCPT_MILTER] = rcpt_milter_hold,
};

/* A stage is over: unless it refused the recipient, the stages from
 * `next` on, then RCPT's reply, then the commands pipelined behind it.
 * c may be freed on return. */
static void
rcpt_go_on(struct conn *c, bool refused, enum rcpt_stage next)
{
	if (!refused) {
		for (enum rcpt_stage i = next; i < RCPT_DECIDE; i++)
			if (rcpt_stages[i](c))
				return;
		rcpt_decide(c, c->rcpt_q);
	}
	table_targets_free(&c->rcpt_q->tt);
	conn_process(c);
}

/* The recipient as the policy servers, milters and logs see it ("" when
 * it does not format). */
static void
rcpt_text(const struct addr *path, char *buf, size_t len)
{
	if (addr_format(path, buf, len) < 0)
		buf[0] = '\0';
}

/* The milters' verdict on this RCPT, once tern would take it. */
static void
on_milter_rcpt(struct conn *c)
{
	char rcpt[TABLE_ADDR_MAX + 1];
	bool refused;

	rcpt_text(&smtp_server_cmd(c->smtp)->path, rcpt, sizeof(rcpt));
	refused = milter_refused(c, "rcpt", rcpt);
	if (!refused && conn_milter_result(c)->verdict == CONN_MILTER_DISCARD)
		c->txn->milter.discard = true;
	rcpt_go_on(c, refused, RCPT_DECIDE);
}

/* Would tern take this RCPT (a local recipient, or one it relays)? */
static bool
rcpt_takeable(struct conn *c)
{
	const struct smtp_cmd *cmd = smtp_server_cmd(c->smtp);
	const struct resolve_lookup *q = c->rcpt_q;

	return q->st == TABLE_OK ||
	       (q->st == TABLE_NOTLOCAL &&
		   (c->rcpt_srs || (conn_may_relay(c) &&
				       cmd->path.kind == ADDR_DOMAIN_NAME)));
}

/* The milters, when the recipient would be taken (true: c waits for
 * them, on_milter_rcpt decides). */
static bool
rcpt_milter_hold(struct conn *c)
{
	char rcpt[TABLE_ADDR_MAX + 1];

	if (!rcpt_takeable(c))
		return false;
	rcpt_text(&smtp_server_cmd(c->smtp)->path, rcpt, sizeof(rcpt));
	return conn_milter_stage(c, CONN_MILTER_RCPT, rcpt, on_milter_rcpt);
}

/* The greylist store's answer on this RCPT (conngrey.c). */
static void
on_grey_rcpt(struct conn *c)
{
	char rcpt[TABLE_ADDR_MAX + 1];

	rcpt_text(&c->rcpt_q->addr, rcpt, sizeof(rcpt));
	rcpt_go_on(c, conn_grey_refused(c, rcpt), RCPT_MILTER);
}

static bool
rcpt_grey_hold(struct conn *c)
{
	return conn_grey_stage(c, on_grey_rcpt);
}

/* The policy servers' answer on this RCPT (connpolicy.c). */
static void
on_policy_rcpt(struct conn *c)
{
	char rcpt[TABLE_ADDR_MAX + 1];

	rcpt_text(&smtp_server_cmd(c->smtp)->path, rcpt, sizeof(rcpt));
	rcpt_go_on(c, conn_policy_refused(c, "rcpt", rcpt), RCPT_GREY);
}

/* The policy servers, when tern would take the recipient (true: c waits
 * for them, on_policy_rcpt goes on). */
static bool
rcpt_policy_hold(struct conn *c)
{
	char rcpt[TABLE_ADDR_MAX + 1];

	if (!rcpt_takeable(c))
		return false;
	rcpt_text(&smtp_server_cmd(c->smtp)->path, rcpt, sizeof(rcpt));
	return conn_policy_stage(c, CONN_POLICY_RCPT, rcpt, on_policy_rcpt);
}

/*
 * The transaction's SPF check is over (connspf.c): log it, and go on with
 * what waited for it.  From the loop (a DNS answer or the check's
 * deadline), never inside conn_process; c may be freed on return.
 */
static void
on_spf_done(struct spfcheck *sc, void *arg)
{
	struct conn *c = arg;
	enum conn_spf_wait w = c->spf_wait;

	(void)sc;
	conn_spf_log(c);
	c->spf_wait = CONN_SPF_NONE;
	if (w == CONN_SPF_NONE)
		return;
	c->pending = false;
	if (w == CONN_SPF_RCPT) {
		rcpt_go_on(c, false, RCPT_POLICY);
		return;
	}
	eom_checked(c);
	conn_process(c);
}

/*
 * A recipient about to be accepted starts the transaction's SPF check; with
 * spf.reject_fail its reply waits for the result (true: c is pending, and
 * on_spf_done decides).  Without, the check goes on in the background.
 */
static bool
rcpt_spf_hold(struct conn *c)
{
	struct txn *t = c->txn;

	if (c->rcpt_q->st != TABLE_OK)
		return false;
	conn_spf_start(c, on_spf_done);
	/* greylist.whitelist_domains needs the result too (conngrey.c) */
	if (t->spf == NULL || spfcheck_done(t->spf) ||
	    (!c->cf->spf_reject_fail && !conn_grey_wants_spf(c)))
		return false;
	c->pending = true;
	c->spf_wait = CONN_SPF_RCPT;
	return true;
}

/*
 * The question lives in the conn (one at a time: the core holds the
 * pipelined commands behind it), so neither path allocates.  Runs inside
 * on_rcpt with the SQLite table, later on the loop with a remote one.
 */
static void
rcpt_answer(struct lookup *lk)
{
	struct conn *c = rcpt_question_conn(lk);

	if (!conn_answered(c))
		return; /* c went away: conn_free freed its targets */
	rcpt_go_on(c, false, RCPT_SPF);
}

static void
on_rcpt(struct conn *c)
{
	const struct smtp_cmd *cmd = smtp_server_cmd(c->smtp);
	char rcpt[TABLE_ADDR_MAX + 1];
	struct resolve_lookup *q;

	rcpt_text(&cmd->path, rcpt, sizeof(rcpt));
	if (conn_rate_rcpt(c, rcpt))
		return; /* 450 4.7.1 (connrate.c) */
	q = rcpt_question(c);
	q->lk.ask = resolve_ask;
	q->lk.answer = rcpt_answer;
	q->addr = cmd->path;
	if (conn_srs_rcpt(c, q))
		return;
	if (literal_is_this_host(c, &cmd->path)) {
		/* user@[our address] is user@ the first local domain */
		q->addr.kind = ADDR_DOMAIN_NAME;
		/* conf.c accepts only domain names that fit ADDR_DOMAIN_MAX */
		if (str_copy(q->addr.domain, sizeof(q->addr.domain),
			c->cf->domains[0], strlen(c->cf->domains[0])) != 0)
			panic(
			    "event=rcpt_lookup error=\"domains[0] too long\"");
	}
	conn_ask(c, &q->lk);
}

/* ---- end of message: the Maildir delivery job ------------------------- */

/* The "with" keyword of RFC 3848 / RFC 6531 for this session. */
static const char *
with_protocol(const struct conn *c)
{
	static const char *const names[2][2][2] = {
	    /* [utf8][tls][auth] */
	    {{"ESMTP", "ESMTPA"}, {"ESMTPS", "ESMTPSA"}},
	    {{"UTF8SMTP", "UTF8SMTPA"}, {"UTF8SMTPS", "UTF8SMTPSA"}},
	};

	if (!smtp_server_esmtp(c->smtp))
		return "SMTP";
	return names[c->txn->params.smtputf8][c->tls][c->authenticated];
}

/*
 * The client's address as text: an IPv4 client reaching a [::] listener
 * (::ffff:192.0.2.1) is shown as the IPv4 address it is.
 */
static int
client_ip_text(
    const struct sockaddr *sa, socklen_t salen, char *out, size_t outlen)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

	if (sa->sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
		return inet_ntop(AF_INET, s6->sin6_addr.s6_addr + 12, out,
			   (socklen_t)outlen) != NULL
			   ? 0
			   : -1;
	return getnameinfo(sa, salen, out, outlen, NULL, 0, NI_NUMERICHOST);
}

/*
 * The client's HELO name for the from clause.  The core takes only a
 * domain or an IPv4/IPv6 literal (smtp_cmd.c); this second look keeps
 * any byte that could end the clause, open a comment or a new field
 * (space, "(", ";", CR, 8-bit...) out of Received: whatever the core
 * lets through.  The TCP-info comment after it has the real address.
 */
static const char *
trace_helo(const struct conn *c)
{
	const char *h = smtp_server_helo(c->smtp);
	size_t i;

	for (i = 0; h[i] != '\0'; i++)
		if (strchr(
			"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			"0123456789.-_:[]",
			h[i]) == NULL)
			return "invalid";
	return i > 0 ? h : "unknown";
}

/* Return-Path (local copies only) and Received (RFC 5321 4.4). */
static int
build_trace(const struct conn *c, struct inject *ij)
{
	const struct txn *t = c->txn;
	struct buf *h = &ij->head;
	char date[64], tls[160];

	if (time_rfc5322(date, sizeof(date), (int64_t)time(NULL)) == 0)
		return -1;
	if (buf_printf(&ij->return_path, "Return-Path: <%s>\r\n", t->sender) !=
	    0)
		return -1;
	/* RFC 8601 5: on top; RFC 7208 9.1: above our Received field */
	if (conn_auth_header(c, h) != 0 || conn_spf_header(c, h) != 0)
		return -1;
	/* the policy servers' PREPEND fields, right above our Received
	 * field, as Postfix puts them */
	if (conn_policy_header(c, h) != 0)
		return -1;
	if (c->local) {
		if (buf_printf(h,
			"Received: from local (uid %u)\r\n\tby %s (tern) with "
			"%s",
			c->local_uid, c->cf->hostname, "local") != 0)
			return -1;
	} else if (buf_printf(h,
		       "Received: from %s ([%s%s])\r\n\tby %s (tern) with %s",
		       trace_helo(c), strchr(c->ip, ':') != NULL ? "IPv6:" : "",
		       c->ip, c->cf->hostname, with_protocol(c)) != 0)
		return -1;
	if (c->tls) {
		tlsconn_describe(c, tls, sizeof(tls));
		if (buf_printf(h, " (%s)", tls) != 0)
			return -1;
	}
	if (buf_printf(h, " id %s", t->id) != 0)
		return -1;
	if (t->nrcpt == 1 &&
	    buf_printf(h, "\r\n\tfor <%s>", t->first_rcpt) != 0)
		return -1;
	return buf_printf(h, ";\r\n\t%s\r\n", date);
}

/*
 * RFC 6409 8.2, 8.3: a message submitted without Date or Message-ID gets
 * them here (submission ports and sendmail only; MX mail is not touched).
 */
static int
submit_fix_headers(const struct conn *c, struct inject *ij)
{
	const struct txn *t = c->txn;
	struct addr_hdr_field f;
	char date[64];
	const char *msg;
	size_t end, len;

	if (c->l->kind == LISTEN_SMTP)
		return 0;
	msg = txn_content(t, &len);
	end = addr_hdr_end(msg, len, NULL);
	if (!addr_hdr_find(msg, end, "Date", &f)) {
		if (time_rfc5322(date, sizeof(date), (int64_t)time(NULL)) ==
			0 ||
		    buf_printf(&ij->head, "Date: %s\r\n", date) != 0)
			return -1;
	}
	if (!addr_hdr_find(msg, end, "Message-ID", &f) &&
	    buf_printf(&ij->head, "Message-ID: <%s@%s>\r\n", t->id,
		c->cf->hostname) != 0)
		return -1;
	return 0;
}

static void
eom_log(const struct conn *c, const struct inject *ij)
{
	const struct txn *t = ij->arg;
	char safe[TABLE_ADDR_MAX * 4 + 1];
	size_t i;

	if (ij->rc != 0) {
		log_err("id=%s sid=%s event=store_failed error=\"%s\"", t->id,
		    c->sid, ij->err);
		return;
	}
	log_sanitize(safe, sizeof(safe), t->sender, strlen(t->sender));
	for (i = 0; i < t->targets.n; i++)
		log_info(
		    "id=%s sid=%s event=delivered from=<%s> to=<%s> mailbox=%s "
		    "size=%zu file=%s%s",
		    t->id, c->sid, safe, t->targets.v[i].address,
		    t->targets.v[i].mailbox,
		    ij->return_path.len + ij->head.len + ij->body_len, ij->name,
		    t->params.requiretls ? " requiretls=yes" : "");
}

/* the metrics' name of a session's listener (the same order) */
static enum metrics_listener
conn_metrics_listener(const struct conn *c)
{
	_Static_assert(
	    (int)LISTEN_SMTP == (int)METRICS_L_SMTP &&
		(int)LISTEN_SUBMISSION == (int)METRICS_L_SUBMISSION &&
		(int)LISTEN_SUBMISSIONS == (int)METRICS_L_SUBMISSIONS &&
		(int)LISTEN_LOCAL == (int)METRICS_L_LOCAL,
	    "listener kinds and metrics listeners differ");
	return (enum metrics_listener)c->l->kind;
}

/* A stored message: received on its listener, its commit latency, and
 * its local copies delivered (into Maildirs, before the 250). */
static void
eom_metrics(const struct conn *c, const struct inject *ij)
{
	const struct txn *t = ij->arg;
	uint64_t us = time_now_us() - t->eom_us;
	size_t i;

	if (ij->rc != 0)
		return;
	metrics_message_received(conn_metrics_listener(c));
	metrics_commit_latency(us);
	for (i = 0; i < t->targets.n; i++)
		metrics_delivery(
		    METRICS_T_MAILDIR, METRICS_O_DELIVERED, NULL, us);
}

static void
eom_done(struct inject *ij)
{
	struct txn *t = ij->arg;
	struct conn *c = (struct conn *)t->owner;
	char text[64];

	eom_log(c, ij);
	eom_metrics(c, ij);
	t->srv->storing_bytes -= t->storing; /* c may be dead: srv is not */
	t->storing = 0;
	if (ij->rc == 0 && t->nsucc > 0) {
		struct dsn_delivered d = {
		    .id = t->id,
		    .sender = t->sender,
		    .envid = t->params.envid,
		    .ret = t->params.ret,
		    .smtputf8 = t->params.smtputf8,
		    .requiretls = t->params.requiretls,
		    .rcpts = t->succ,
		    .nrcpts = t->nsucc,
		    .client_ip = c->ip,
		    .trusted = c->authenticated || c->local,
		};

		d.msg = txn_content(t, &d.msg_len);
		qmgr_dsn_delivered(t->srv->qmgr, &d);
	}
	if (!conn_job_finished(c)) {
		c->pending = false;
		if (ij->rc == 0) {
			c->messages++;
			c->srv->messages++;
			if (str_fmt(text, sizeof(text), "Ok: queued as %s",
				t->id) != 0)
				text[0] = '\0';
			smtp_server_accept_text(c->smtp, text);
		} else if (ij->err_no == ENOSPC || ij->err_no == EDQUOT) {
			smtp_server_reject(c->smtp, 452, "4.3.1",
			    "Insufficient system storage, try again later");
		} else {
			smtp_server_reject(c->smtp, 451, "4.3.0",
			    "Local error in processing, try again later");
		}
		conn_process(c);
	}
	inject_clear(ij); /* frees the box list; its paths are t's */
	free(ij);
	txn_free(t);
}

/*
 * RFC 5321 6.3: counting Received fields is the loop detector every MTA
 * understands; a message that has made limits.hops hops is refused rather
 * than passed around again (its sender gets the bounce from the last hop).
 */
static bool
too_many_hops(struct conn *c)
{
	struct txn *t = c->txn;
	size_t len;
	const char *msg = txn_content(t, &len);
	unsigned hops = c->cf->hops;
	size_t end = addr_hdr_end(msg, len, NULL);

	if (addr_hdr_count(msg, end, "Received", hops) < hops)
		return false;
	log_info("id=%s sid=%s event=mail_loop ip=%s received_fields=%u", t->id,
	    c->sid, c->ip, hops);
	smtp_server_reject(c->smtp, 554, "5.4.6", "Too many hops (mail loop?)");
	conn_drop_txn(c);
	return true;
}

/*
 * The copies the end of data writes (Maildir files, queue) need room
 * too: with what the jobs still writing will take, it must fit above
 * SERVER_DISK_RESERVE, or the message is refused before a write fails.
 */
static bool
eom_disk_ok(struct conn *c)
{
	struct txn *t = c->txn;
	size_t len;

	(void)txn_content(t, &len);
	if (server_disk_ok(c->srv, (uint64_t)len + c->srv->storing_bytes))
		return true;
	log_info("id=%s sid=%s event=content_refused reason=disk_space "
		 "size=%zu storing=%" PRIu64,
	    t->id, c->sid, len, c->srv->storing_bytes);
	smtp_server_reject(c->smtp, 452, "4.3.1",
	    "Insufficient system storage, try again later");
	conn_drop_txn(c);
	return false;
}

static void eom_milters_done(struct conn *c);

/* The milters' changes made, the end of data goes on. */
static void
milter_eom_apply(struct conn *c)
{
	if (conn_milter_apply(c) != 0) {
		smtp_server_reject(c->smtp, 451, "4.3.0",
		    "Local error in processing, try again later");
		conn_drop_txn(c);
	} else {
		eom_milters_done(c);
	}
}

static void milter_next_rcpt(struct conn *c);

/* A recipient a milter added, resolved as RCPT's would be: a local
 * mailbox, or relayed (the milter is trusted, as Postfix trusts it). */
static void
milter_rcpt_answer(struct lookup *lk)
{
	struct conn *c = rcpt_question_conn(lk);
	struct resolve_lookup *q = c->rcpt_q;
	struct conn_milter_edits *ed;
	struct smtp_rcpt_params rp;
	char a[TABLE_ADDR_MAX + 1];
	int added = -1;

	if (!conn_answered(c))
		return;
	ed = &c->txn->milter;
	memset(&rp, 0, sizeof(rp));
	if (addr_format(&q->addr, a, sizeof(a)) < 0)
		a[0] = '\0';
	if (q->st == TABLE_OK)
		added = txn_add_resolved(c, &q->tt, &rp);
	else if (q->st == TABLE_NOTLOCAL)
		added = txn_add_remote(c, a, &rp);
	if (added == 0)
		c->txn->nrcpt++;
	log_info("id=%s sid=%s event=milter_addrcpt to=<%s> result=%s",
	    c->txn->id, c->sid, ed->rcpt_ops[ed->next_add].addr,
	    added == 0 ? "added" : "refused");
	table_targets_free(&q->tt);
	ed->next_add++;
	milter_next_rcpt(c);
	conn_process(c);
}

/* The next recipient a milter added, or the changes made. */
static void
milter_next_rcpt(struct conn *c)
{
	struct conn_milter_edits *ed = &c->txn->milter;
	struct resolve_lookup *q = rcpt_question(c);

	while (ed->next_add < ed->nrcpt_ops) {
		const char *a = ed->rcpt_ops[ed->next_add].addr;

		if (ed->rcpt_ops[ed->next_add].add &&
		    addr_parse_mailbox(a, strlen(a), ADDR_F_UTF8, &q->addr) ==
			ADDR_OK)
			break;
		if (ed->rcpt_ops[ed->next_add].add)
			log_info("id=%s sid=%s event=milter_addrcpt to=<%s> "
				 "result=bad_address",
			    c->txn->id, c->sid, a);
		ed->next_add++;
	}
	if (ed->next_add == ed->nrcpt_ops) {
		milter_eom_apply(c);
		return;
	}
	q->lk.ask = resolve_ask;
	q->lk.answer = milter_rcpt_answer;
	conn_ask(c, &q->lk);
}

/* The milters' verdict on the message (connmilter.c); their changes are
 * made before anything else looks at it.  As if inside conn_process
 * (conn_resume): a table answer may come before conn_ask returns. */
static void
milter_eom_go(struct conn *c, void *arg)
{
	struct txn *t = c->txn;
	char text[64];

	(void)arg;
	if (milter_refused(c, "eom", t->sender)) {
		conn_drop_txn(c);
	} else if (t->milter.discard ||
		   conn_milter_result(c)->verdict == CONN_MILTER_DISCARD) {
		log_info("id=%s sid=%s event=milter_discard from=<%s> rcpts=%u",
		    t->id, c->sid, t->sender, t->nrcpt);
		str_fmt_cut(text, sizeof(text), "Ok: queued as %s", t->id);
		smtp_server_accept_text(c->smtp, text);
		conn_drop_txn(c);
	} else {
		milter_next_rcpt(c);
	}
}

static void
on_milter_eom(struct conn *c)
{
	conn_resume(c, milter_eom_go, NULL);
}

/* The policy servers are over at the end of data: a DISCARD (here or
 * at a RCPT) is accepted and dropped; else on to the milters. */
static void
eom_policy_done(struct conn *c)
{
	struct txn *t = c->txn;
	char text[64];

	if (t->policy_discard) {
		log_info("id=%s sid=%s event=policy_discard from=<%s> rcpts=%u",
		    t->id, c->sid, t->sender, t->nrcpt);
		str_fmt_cut(text, sizeof(text), "Ok: queued as %s", t->id);
		smtp_server_accept_text(c->smtp, text);
		conn_drop_txn(c);
		return;
	}
	if (conn_milter_stage(c, CONN_MILTER_EOM, NULL, on_milter_eom))
		return;
	eom_milters_done(c);
}

/* As if inside conn_process (conn_resume): the milters and the store
 * that follow may ask the table. */
static void
policy_eom_go(struct conn *c, void *arg)
{
	(void)arg;
	if (conn_policy_refused(c, "eom", c->txn->sender))
		conn_drop_txn(c);
	else
		eom_policy_done(c);
}

static void
on_policy_eom(struct conn *c)
{
	conn_resume(c, policy_eom_go, NULL);
}

static void
on_eom(struct conn *c)
{
	struct txn *t = c->txn;

	t->eom_us = time_now_us();
	if (!t->body_failed && body_finish(c) != 0)
		body_fail(t, errno ? errno : EIO);
	if (t->body_failed) {
		if (t->body_errno == ENOSPC || t->body_errno == EDQUOT)
			smtp_server_reject(c->smtp, 452, "4.3.1",
			    "Insufficient system storage, try again later");
		else if (t->body_errno == 0)
			smtp_server_reject(c->smtp, 451, "4.3.0",
			    "Out of memory while storing the message, try "
			    "later");
		else
			smtp_server_reject(c->smtp, 451, "4.3.0",
			    "Local error in processing, try again later");
		conn_drop_txn(c);
		return;
	}
	if (too_many_hops(c) || !eom_disk_ok(c))
		return;
	if (!t->policy_discard &&
	    conn_policy_stage(c, CONN_POLICY_EOM, NULL, on_policy_eom))
		return;
	eom_policy_done(c);
}

/* The milters are over at the end of data: SPF, DKIM, DMARC, the store. */
static void
eom_milters_done(struct conn *c)
{
	struct txn *t = c->txn;

	if (t->spf != NULL && !spfcheck_done(t->spf)) {
		/* Received-SPF goes in the stored copy: wait (bounded by
		 * SPFCHECK_TIMEOUT_MS), on_spf_done goes on */
		c->pending = true;
		c->spf_wait = CONN_SPF_EOM;
		return;
	}
	eom_checked(c);
}

/*
 * The DKIM/DMARC check is over (connauth.c): from a worker job's
 * completion, never inside conn_process.  A DMARC reject is answered
 * here; anything else is stored.  c may be freed on return.
 */
static void
on_auth_done(struct authcheck *ac, void *arg)
{
	struct conn *c = arg;

	(void)ac;
	if (conn_job_finished(c))
		return; /* the client went away meanwhile */
	c->pending = false;
	conn_auth_finish(c);
	if (conn_auth_refuses(c))
		conn_drop_txn(c);
	else
		eom_store(c);
	conn_process(c);
}

/* The content in and SPF over: DKIM and DMARC when they apply, or the
 * store at once. */
static void
eom_checked(struct conn *c)
{
	if (!conn_auth_start(c, on_auth_done))
		eom_store(c);
}

/* The end of data, the content checked: the trace, then the store job. */
static void
eom_store(struct conn *c)
{
	struct txn *t = c->txn;
	struct inject *ij;
	size_t i;

	ij = xcalloc(1, sizeof(*ij));
	inject_init(ij, c->srv->store);
	if (build_trace(c, ij) != 0 || submit_fix_headers(c, ij) != 0) {
		inject_clear(ij);
		free(ij);
		smtp_server_reject(c->smtp, 451, "4.3.0",
		    "Local error building the trace header");
		conn_drop_txn(c);
		return;
	}
	ij->body = txn_content(t, &ij->body_len);
	ij->boxes =
	    xcalloc(t->targets.n ? t->targets.n : 1, sizeof(*ij->boxes));
	for (i = 0; i < t->targets.n; i++) {
		ij->boxes[i].path = t->targets.v[i].mailbox;
		if (t->targets.v[i].folder[0] != '\0') /* plus-addressing */
			ij->boxes[i].subfolder = t->targets.v[i].folder;
	}
	ij->nboxes = t->targets.n;
	conn_auth_store(c, ij);
	conn_milter_store(c, ij);
	if (t->remote != NULL) {
		/* with_protocol() names a constant, "ESMTPSA" at most */
		if (str_copy(t->remote->proto, sizeof(t->remote->proto),
			with_protocol(c), strlen(with_protocol(c))) != 0)
			panic("sid=%s event=proto_too_long", c->sid);
		conn_srs_forward(c, t->remote);
		/* RFC 8689 3: kept as a flag; smtp_tls_optional() decides */
		t->remote->tls_required_no =
		    smtp_tls_required_no(ij->body, ij->body_len);
		ij->env = t->remote; /* the inject owns it now */
		t->remote = NULL;
	}
	t->storing = ij->body_len;
	c->srv->storing_bytes += t->storing;
	if (c->authenticated || c->local) /* mail tern originates */
		dkimsign_attach(c->srv, ij, t->sender, t->id, c->sid);
	conn_auth_seal(c, ij); /* last: the seal covers every change */
	/* a lone session with no job running: the store may use the loop */
	ij->on_loop = c->srv->nconns == 1 && workers_busy(c->srv->workers) == 0;
	ij->arg = t; /* the job owns the transaction now */
	t->owner = c;
	c->txn = NULL;
	c->pending = true;
	c->job_running = true;
	inject_submit(ij, eom_done);
}

/* ---- the event dispatcher --------------------------------------------- */

/* The milters at connect: a refusal is the greeting (and the end); a
 * milter that failed leaves the greeting alone, every later command is
 * answered 4xx (milter.default_action = tempfail). */
static void
on_milter_connect(struct conn *c)
{
	const struct conn_milter_result *r = conn_milter_result(c);

	if (r->failed)
		smtp_server_accept(c->smtp);
	else if (r->verdict == CONN_MILTER_REJECT)
		smtp_server_reject(c->smtp, 554, r->enh, r->text);
	else if (r->verdict == CONN_MILTER_TEMPFAIL)
		smtp_server_reject(c->smtp, 421, r->enh, r->text);
	else
		smtp_server_accept(c->smtp);
	conn_process(c);
}

/* The connect event's milters, once screening has passed the client. */
static void
connect_milters(struct conn *c)
{
	if (!conn_milter_stage(c, CONN_MILTER_CONNECT, NULL, on_milter_connect))
		smtp_server_accept(c->smtp);
}

/* Screening's verdict (screen.c): a refusal is the greeting, and the end
 * of the session (docs/screening.md). */
static void
on_screened(struct conn *c)
{
	if (c->screen_reply[0] != '\0')
		smtp_server_reject(c->smtp, 554, "5.7.1", c->screen_reply);
	else
		connect_milters(c);
	conn_process(c);
}

static void
on_connect(struct conn *c)
{
	if (c->srv->stopping) {
		smtp_server_reject(
		    c->smtp, 421, "4.3.2", "Service shutting down");
		return;
	}
	/* a penalised or too eager address costs no DNS lookup or milter */
	if (conn_rate_connect(c))
		return;
	switch (conn_screen_start(c, on_screened)) {
	case CONN_SCREEN_PASS:
		connect_milters(c);
		break;
	case CONN_SCREEN_REFUSE:
		smtp_server_reject(c->smtp, 554, "5.7.1", c->screen_reply);
		break;
	case CONN_SCREEN_WAIT:
		break;
	}
}

static void
on_milter_helo(struct conn *c)
{
	if (!milter_refused(c, "helo", ""))
		smtp_server_accept(c->smtp);
	conn_process(c);
}

static void
on_helo(struct conn *c)
{
	const struct smtp_cmd *cmd = smtp_server_cmd(c->smtp);
	char name[256];

	/* the view dies with the input: the name is copied now */
	str_fmt_cut(name, sizeof(name), "%.*s",
	    (int)(cmd->arg_len < 255 ? cmd->arg_len : 255), cmd->arg);
	if (!conn_milter_stage(c, CONN_MILTER_HELO, name, on_milter_helo))
		smtp_server_accept(c->smtp);
}

static void
on_event(struct conn *c, enum smtp_event ev, size_t used)
{
	switch (ev) {
	case SMTP_EV_CONNECT:
		on_connect(c);
		break;
	case SMTP_EV_HELO:
		conn_drop_txn(c);
		on_helo(c);
		break;
	case SMTP_EV_MAIL:
		on_mail(c);
		break;
	case SMTP_EV_RCPT:
		on_rcpt(c);
		break;
	case SMTP_EV_DATA:
		txn_body_reset(c->txn);
		c->txn->body_failed = false;
		c->txn->body_errno = 0;
		smtp_server_accept(c->smtp);
		break;
	case SMTP_EV_EOM:
		on_eom(c);
		break;
	case SMTP_EV_STARTTLS:
		tlsconn_starttls(c, used);
		break;
	case SMTP_EV_AUTH:
		submit_on_auth(c);
		break;
	case SMTP_EV_AUTH_DATA:
		submit_on_auth_data(c);
		break;
	case SMTP_EV_RESET:
		conn_drop_txn(c);
		break;
	case SMTP_EV_QUIT:
		conn_log_close(c, "quit");
		c->closing = true;
		break;
	case SMTP_EV_CLOSE:
		conn_log_close(c, "errors");
		c->closing = true;
		break;
	case SMTP_EV_NONE:
		break;
	}
}

/* The next bytes to offer the core: a whole line's worth, or one chunk. */
static const char *
conn_input(struct conn *c, size_t *n_out)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t avail = evbuffer_get_length(in);
	struct evbuffer_iovec v;

	*n_out = 0;
	if (avail == 0)
		return "";
	if (smtp_server_reading_body(c->smtp) &&
	    evbuffer_peek(in, -1, NULL, &v, 1) == 1) {
		*n_out = v.iov_len;
		return v.iov_base;
	}
	*n_out = avail < CONN_PULLUP ? avail : CONN_PULLUP;
	return (const char *)evbuffer_pullup(in, (ev_ssize_t)*n_out);
}

void
conn_process(struct conn *c)
{
	if (c->processing > 0)
		return; /* an answer inside on_event: the loop below goes on */
	c->processing++;
	while (!c->pending && !c->closing && !c->dead && !conn_out_full(c)) {
		size_t n, used = 0;
		const char *p = conn_input(c, &n);
		enum smtp_event ev = smtp_server_next(c->smtp, p, n, &used);

		struct bufferevent *bev = c->bev;

		on_event(
		    c, ev, used); /* before the drain: cmd views point into p */
		/* after STARTTLS c->bev is new: the old input went away unread
		 */
		if (used > 0 && c->bev == bev)
			evbuffer_drain(bufferevent_get_input(c->bev), used);
		if (ev == SMTP_EV_NONE && used == 0)
			break;
		if (c->out.len >= CONN_FLUSH_AT)
			conn_flush(c);
	}
	c->processing--;
	if (c->dead)
		return;
	if (c->srv->stopping && !c->closing && !c->pending &&
	    !smtp_server_reading_body(c->smtp)) {
		smtp_server_shutdown(c->smtp, "4.3.2", "Service shutting down");
		conn_log_close(c, "shutdown");
		c->closing = true;
	}
	if (c->closing || (c->eof && !c->pending)) {
		conn_close_soon(c, c->closing ? "quit" : "eof");
		return;
	}
	conn_flush(c);
	if (conn_out_full(c))
		bufferevent_disable(c->bev, EV_READ);
	conn_arm_timer(c);
}

/* ---- bufferevent callbacks -------------------------------------------- */

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	if (conn_screen_input(c))
		return; /* held before its greeting (screen.c) */
	conn_process(c);
}

static void
on_write(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) != 0)
		return;
	if (c->closing && !c->job_running) {
		conn_free(c);
		return;
	}
	/* output drained: resume reading if backpressure had stopped it */
	if (!c->closing && !(bufferevent_get_enabled(bev) & EV_READ)) {
		bufferevent_enable(bev, EV_READ);
		conn_process(c);
	}
}

static void
on_bev_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		char tls[160];

		tlsconn_describe(c, tls, sizeof(tls));
		log_info("sid=%s event=tls %s", c->sid, tls);
		tlsconn_count(c, true);
		return;
	}
	if ((what & BEV_EVENT_ERROR) && c->tls)
		tlsconn_count(c, false);
	if ((what & BEV_EVENT_EOF) && (c->pending || c->job_running) &&
	    !c->closing) {
		/* a half-close (e.g. sendmail -bs at the end of its input): the
		 * message being stored still gets its reply, and the commands
		 * after it are still answered */
		c->eof = true;
		return;
	}
	if (what & BEV_EVENT_EOF)
		conn_log_close(
		    c, smtp_server_state(c->smtp) == SMTP_STATE_CLOSED ? "quit"
								       : "eof");
	else if (what & BEV_EVENT_ERROR)
		conn_log_close(c, "error");
	else if (what & BEV_EVENT_TIMEOUT)
		conn_log_close(c, "write_timeout");
	else
		return;
	conn_free(c);
}

/* ---- create and free -------------------------------------------------- */

static void
conn_link(struct server *s, struct conn *c)
{
	c->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = c;
	s->conns = c;
	s->nconns++;
	listener_conns_add(s, c->l, 1);
	client_count_add(s, &c->key, 1);
	metrics_conn_open(conn_metrics_listener(c));
}

static void
conn_unlink(struct conn *c)
{
	struct server *s = c->srv;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	s->nconns--;
	listener_conns_add(s, c->l, -1);
	client_count_add(s, &c->key, -1);
	metrics_conn_close(conn_metrics_listener(c));
}

void
conn_setup_bev(struct conn *c)
{
	struct timeval wt = {(time_t)c->cf->timeout_command, 0};

	bufferevent_setcb(c->bev, on_read, on_write, on_bev_event, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, CONN_IN_HIGH);
	bufferevent_set_timeouts(c->bev, NULL, &wt);
	if (c->tls)
		bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	bufferevent_enable(c->bev, EV_READ);
}

void
conn_new(struct server *s, const struct listener *l, int fd,
    const struct sockaddr *sa, socklen_t salen)
{
	struct conn *c = xcalloc(1, sizeof(*c));
	struct smtp_server_conf sc = {0};

	c->srv = s;
	c->snap = reload_hold(s);
	c->cf = c->snap->conf;
	c->fd = fd;
	c->l = l;
	memcpy(&c->sa, sa, salen < sizeof(c->sa) ? salen : sizeof(c->sa));
	client_key_of(l, fd, sa, &c->key, &c->local_uid);
	if (l->kind == LISTEN_LOCAL) {
		c->local = true;
		/* "uid=4294967295" fits INET6_ADDRSTRLEN */
		if (str_fmt(c->ip, sizeof(c->ip), "uid=%u", c->local_uid) != 0)
			panic("event=conn_ip uid=%u", c->local_uid);
	} else if (client_ip_text(sa, salen, c->ip, sizeof(c->ip)) != 0 &&
		   str_copy(c->ip, sizeof(c->ip), "unknown", 7) != 0) {
		c->ip[0] = '\0';
	}
	id_new(c->sid);
	buf_init(&c->out, CONN_OUT_MAX);
	sc.hostname = c->cf->hostname;
	sc.max_message_size = c->cf->message_size;
	sc.max_recipients = c->cf->recipients;
	sc.max_errors = c->cf->errors;
	sc.body_sink = body_sink;
	sc.body_ctx = c;
	/* no STARTTLS on 465 (TLS already) nor on the local socket */
	sc.tls_available = s->tls_ctx != NULL &&
			   l->kind != LISTEN_SUBMISSIONS &&
			   l->kind != LISTEN_LOCAL;
	c->smtp = smtp_server_new(&sc, &c->out);
	if (l->kind == LISTEN_SUBMISSIONS) {
		if (tlsconn_wrap_implicit(c, fd) != 0)
			panic("event=tls_error where=conn_new");
		smtp_server_tls_started(c->smtp);
	} else {
		/* not CLOSE_ON_FREE: STARTTLS replaces this bufferevent */
		c->bev = bufferevent_socket_new(s->base, fd, 0);
	}
	c->timer = evtimer_new(s->base, on_timeout, c);
	if (c->smtp == NULL || c->bev == NULL || c->timer == NULL)
		panic("event=oom where=conn_new");
	conn_link(s, c);
	conn_setup_bev(c);
	submit_update_auth(c);
	log_info("sid=%s event=connect listener=%s client=%s", c->sid, l->name,
	    c->ip);
	conn_process(c);
}

static void
conn_free_bev(struct conn *c)
{
	if (c->bev == NULL)
		return;
	if (c->tls) {
		SSL *ssl = bufferevent_openssl_get_ssl(c->bev);

		/* RFC 8446 6.1: close_notify before the TCP close.  One try on
		 * the non-blocking socket: if it cannot go out now, the peer
		 * sees a plain close, which SMTP's own framing makes safe. */
		if (ssl != NULL && SSL_is_init_finished(ssl))
			(void)SSL_shutdown(ssl);
	}
	bufferevent_free(c->bev); /* a TLS bufferevent closes the fd */
	if (!c->tls)
		close(c->fd);
	c->bev = NULL;
}

void
conn_free(struct conn *c)
{
	struct server *s = c->srv;

	if (c->job_running) {
		/* a worker job still points here: free when it is done */
		if (!c->dead) {
			c->dead = true;
			conn_milter_free(c);
			conn_policy_free(c);
			conn_screen_free(c);
			conn_free_bev(c);
			event_del(c->timer);
		}
		return;
	}
	log_info("sid=%s event=disconnect reason=%s messages=%u", c->sid,
	    c->close_reason ? c->close_reason : "closed", c->messages);
	conn_unlink(c);
	reload_release(s, c->snap);
	conn_free_bev(c);
	event_free(c->timer);
	if (c->delay != NULL)
		event_free(c->delay);
	submit_drop_auth(c);
	conn_milter_free(c);
	conn_policy_free(c);
	conn_screen_free(c);
	if (c->login != NULL) {
		sasl_login_wipe(c->login);
		free(c->login);
	}
	smtp_server_free(c->smtp);
	buf_free(&c->out);
	txn_free(c->txn);
	rcpt_question_free(c);
	free(c);
	server_maybe_exit(s);
}

void
conn_ask(struct conn *c, struct lookup *lk)
{
	c->pending = true;
	c->job_running = true;
	lookup_ask(c->srv->lookups, lk);
}

void
conn_resume(struct conn *c, void (*fn)(struct conn *, void *), void *arg)
{
	c->processing++;
	fn(c, arg);
	c->processing--;
	conn_process(c);
}

bool
conn_answered(struct conn *c)
{
	if (conn_job_finished(c))
		return false;
	c->pending = false;
	return true;
}

bool
conn_job_finished(struct conn *c)
{
	c->job_running = false;
	if (!c->dead)
		return false;
	c->pending = false;
	conn_free(c);
	return true;
}

void
conns_shutdown(struct server *s)
{
	struct conn *c, *next;

	for (c = s->conns; c != NULL; c = next) {
		next = c->next;
		if (c->dead || c->closing)
			continue;
		if (c->screen != NULL) { /* held before its greeting */
			conn_screen_free(c);
			c->pending = false;
			smtp_server_reject(
			    c->smtp, 421, "4.3.2", "Service shutting down");
		}
		submit_shutdown(c);
		conn_process(c); /* idle ones get their 421 there */
	}
}

void
conns_close_all(struct server *s, const char *why)
{
	struct conn *c, *next;

	for (c = s->conns; c != NULL; c = next) {
		next = c->next;
		/* a delivery in flight finishes and answers first */
		if (c->dead || c->pending)
			continue;
		if (c->closing) {
			/* its last reply has not gone out by now: cut it off */
			if (!c->job_running)
				conn_free(c);
			continue;
		}
		smtp_server_shutdown(c->smtp, "4.3.2", "Service shutting down");
		conn_close_soon(c, why);
	}
}

bool
server_mailbox_is_lmtp(const struct server *s, const char *mailbox)
{
	return s->conf->delivery_lmtp != NULL || table_mailbox_is_lmtp(mailbox);
}

bool
server_disk_ok(struct server *s, uint64_t need)
{
	struct statvfs sv;
	uint64_t avail;

	if (fstatvfs(s->mail_root_fd, &sv) != 0)
		return true; /* cannot tell: let the write decide */
	avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	return need <= UINT64_MAX - SERVER_DISK_RESERVE &&
	       avail >= need + SERVER_DISK_RESERVE;
}
