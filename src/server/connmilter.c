/*
 * connmilter: the milter client of a session (docs/milter.md).
 *
 * Each SMTP session on the MX and submission ports opens one connection
 * to every milter of milter.servers, when the session starts, and calls
 * them in order at connect, HELO, MAIL, RCPT and the end of data (DATA,
 * the header fields, the body in chunks, end of message).  Everything
 * runs on the loop: non-blocking sockets through bufferevents, one timer
 * per session (connect, command and end-of-message timeouts); the bytes
 * are encoded and decoded by src/milter (pure).  conn.c waits while a
 * stage runs (c->pending) and is called back with the verdict.
 *
 * A milter that cannot be reached, times out, closes, answers something
 * malformed or an action it did not negotiate is dropped for the rest of
 * the session; with milter.default_action = tempfail every later stage
 * of the session is answered 4xx, with accept it is simply skipped.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "milter/milter.h"
#include "server/conn.h"
#include "store/store.h"

#define MILTERS_MAX	16
#define MILTER_TEXT_MAX 400 /* of a reply's text passed to the client */
/* what is offered: every action but SETSYMLIST (tern sends its macros
 * whatever a milter asks) */
#define MILTER_ACTIONS (MILTER_F_ALL & ~MILTER_F_SETSYMLIST)

enum mstate {
	MS_NEW,
	MS_CONNECTING,
	MS_NEG,
	MS_READY,
	MS_OFF,	 /* accepted the session: not called again */
	MS_DEAD, /* failed: default_action applies */
};

struct mconn {
	struct conn_milters *ms;
	struct milter_spec spec;
	char name[MILTER_HOST_MAX + 16];
	struct bufferevent *bev;
	enum mstate st;
	uint32_t actions, proto; /* negotiated */
	bool txn_off;		 /* accepted or refused this transaction */
	bool in_txn;		 /* MAIL sent, no end of message or ABORT */
};

/* one packet of the stage being run for the current milter */
struct mentry {
	size_t off, len;
	char cmd;
	bool reply; /* a reply is awaited */
};

struct conn_milters {
	struct conn *c;
	struct event *timer;
	unsigned n, cur;
	struct mconn m[MILTERS_MAX];
	bool tempfail_dead; /* a milter died, default_action = tempfail */
	bool running;
	bool kick;	/* the timer starts the stage */
	bool finishing; /* the timer calls done */
	enum conn_milter_stage stage;
	struct conn_milter_result result; /* of the last stage (conn.h) */
	void (*done)(struct conn *);
	char arg[1024];	  /* RCPT's address, HELO's name */
	struct buf out;	  /* the current milter's packets for this stage
			     but the body chunks */
	struct buf chunk; /* the body chunk being sent */
	struct mentry *ent;
	size_t nent, capent, next;
	bool waiting;
	bool body_skip; /* SMFIR_SKIP seen */
	/* per milter at the end of message: its replacement body, and what
	 * the transaction's edits were before it (a milter that fails
	 * leaves none of its edits behind) */
	struct buf newbody;
	bool newbody_set;
	size_t mark_nedits, mark_nrcpt;
	bool mark_from_set, mark_quarantine;
	char mark_from[TABLE_ADDR_MAX + 1];
};

static void ms_advance(struct conn_milters *ms);
static void ms_fail(struct mconn *m, const char *why);
static void on_timer(evutil_socket_t fd, short what, void *arg);
static void ms_new_txn(struct conn_milters *ms);

static const char *
stage_name(enum conn_milter_stage s)
{
	static const char *const names[] = {
	    "connect", "helo", "mail", "rcpt", "eom"};

	return names[s];
}

/* ---- set-up ------------------------------------------------------------ */

static bool
milters_apply(const struct conn *c)
{
	return c->cf->milter_servers != NULL && !c->local;
}

static struct conn_milters *
ms_new(struct conn *c)
{
	const char *v = c->cf->milter_servers;
	struct conn_milters *ms = xcalloc(1, sizeof(*ms));

	ms->c = c;
	ms->timer = evtimer_new(c->srv->base, on_timer, ms);
	if (ms->timer == NULL)
		panic("event=milter error=evtimer_new");
	/* the header fields (and their framing) and the macros */
	buf_init(&ms->out, c->cf->message_size * 2 + (1u << 20));
	buf_init(&ms->chunk, MILTER_CHUNK + 5);
	buf_init(&ms->newbody, c->cf->message_size + 1);
	while (*v != '\0' && ms->n < MILTERS_MAX) {
		size_t k = strcspn(v, ",");
		struct mconn *m = &ms->m[ms->n];

		/* conf.c checked every item */
		if (k > 0 && milter_parse_spec(v, k, &m->spec) == 0) {
			m->ms = ms;
			str_fmt_cut(
			    m->name, sizeof(m->name), "%.*s", (int)k, v);
			ms->n++;
		}
		v += k;
		v += *v == ',';
	}
	if (*v != '\0')
		log_warn("sid=%s event=milter_config error=\"more than %d "
			 "milters: the rest are not used\"",
		    c->sid, MILTERS_MAX);
	return ms;
}

static void
mconn_close(struct mconn *m)
{
	if (m->bev != NULL)
		bufferevent_free(m->bev);
	m->bev = NULL;
}

const struct conn_milter_result *
conn_milter_result(const struct conn *c)
{
	/* what a session that never called a milter has: go on */
	static const struct conn_milter_result none = {
	    CONN_MILTER_CONTINUE, false, 0, "", ""};

	return c->milters != NULL ? &c->milters->result : &none;
}

void
conn_milter_free(struct conn *c)
{
	struct conn_milters *ms = c->milters;
	uint8_t quit[5] = {0, 0, 0, 1, MILTER_C_QUIT};

	if (ms == NULL)
		return;
	for (unsigned i = 0; i < ms->n; i++) {
		struct mconn *m = &ms->m[i];

		/* a polite end when nothing is queued: one small write on an
		 * idle socket; best effort, the milter sees EOF next anyway */
		if (m->bev != NULL && m->st >= MS_READY &&
		    evbuffer_get_length(bufferevent_get_output(m->bev)) == 0)
			if (send(bufferevent_getfd(m->bev), quit, sizeof(quit),
				MSG_DONTWAIT | MSG_NOSIGNAL) != sizeof(quit))
				log_debug("sid=%s event=milter_quit milter=%s "
					  "sent=no",
				    c->sid, m->name);
		mconn_close(m);
	}
	event_free(ms->timer);
	buf_free(&ms->out);
	buf_free(&ms->chunk);
	buf_free(&ms->newbody);
	free(ms->ent);
	free(ms);
	c->milters = NULL;
}

/* ---- the stage's packets ----------------------------------------------- */

static void
ent_add(struct conn_milters *ms, size_t off, char cmd, bool reply)
{
	if (ms->nent == ms->capent) {
		size_t cap = ms->capent ? ms->capent * 2 : 16;
		struct mentry *v = xcalloc(cap, sizeof(*v));

		if (ms->nent > 0)
			memcpy(v, ms->ent, ms->nent * sizeof(*v));
		free(ms->ent);
		ms->ent = v;
		ms->capent = cap;
	}
	ms->ent[ms->nent++] =
	    (struct mentry){off, ms->out.len - off, cmd, reply};
}

/* a body chunk: off and len in the message, not in ms->out */
static void
ms_ent_body(struct conn_milters *ms, size_t off, size_t len, bool reply)
{
	ent_add(ms, ms->out.len, MILTER_C_BODY, reply);
	ms->ent[ms->nent - 1].off = off;
	ms->ent[ms->nent - 1].len = len;
}

#define ENT(ms, expr, cmd, reply)                                              \
	do {                                                                   \
		size_t at_ = (ms)->out.len;                                    \
		if ((expr) != 0)                                               \
			return -1;                                             \
		ent_add((ms), at_, (cmd), (reply));                            \
	} while (0)

static void
client_name(const struct conn *c, char *out, size_t outlen)
{
	str_fmt_cut(out, outlen, "[%s]", c->ip);
}

static const char *
tls_version(const struct conn *c)
{
	SSL *ssl;

	if (!c->tls || c->bev == NULL)
		return NULL;
	ssl = bufferevent_openssl_get_ssl(c->bev);
	return ssl != NULL ? SSL_get_version(ssl) : NULL;
}

static int
build_connect(struct conn_milters *ms, const struct mconn *m)
{
	const struct conn *c = ms->c;
	char host[INET6_ADDRSTRLEN + 3], under[INET6_ADDRSTRLEN + 16];
	uint16_t port = 0;
	char fam = strchr(c->ip, ':') != NULL ? '6' : '4';
	const struct milter_macro mac[] = {
	    {"j", c->cf->hostname},
	    {"{daemon_name}", "ternd"},
	    {"{client_addr}", c->ip},
	    {"{client_name}", "unknown"},
	    {"_", under},
	};

	if (m->proto & MILTER_P_NOCONNECT)
		return 0;
	client_name(c, host, sizeof(host));
	str_fmt_cut(under, sizeof(under), "unknown [%s]", c->ip);
	if (c->sa.ss_family == AF_INET)
		port = ntohs(((const struct sockaddr_in *)&c->sa)->sin_port);
	else if (c->sa.ss_family == AF_INET6)
		port = ntohs(((const struct sockaddr_in6 *)&c->sa)->sin6_port);
	ENT(ms, milter_enc_macro(&ms->out, MILTER_C_CONNECT, mac, 5),
	    MILTER_C_MACRO, false);
	ENT(ms, milter_enc_connect(&ms->out, host, fam, port, c->ip),
	    MILTER_C_CONNECT, !(m->proto & MILTER_P_NR_CONN));
	return 0;
}

static int
build_helo(struct conn_milters *ms, const struct mconn *m)
{
	const struct milter_macro mac[] = {
	    {"{tls_version}", tls_version(ms->c)}};

	if (m->proto & MILTER_P_NOHELO)
		return 0;
	ENT(ms, milter_enc_macro(&ms->out, MILTER_C_HELO, mac, 1),
	    MILTER_C_MACRO, false);
	ENT(ms, milter_enc_helo(&ms->out, ms->arg), MILTER_C_HELO,
	    !(m->proto & MILTER_P_NR_HELO));
	return 0;
}

static int
build_mail(struct conn_milters *ms, const struct mconn *m)
{
	const struct conn *c = ms->c;
	const struct milter_macro mac[] = {
	    {"i", c->txn->id},
	    {"{auth_authen}", c->authenticated ? c->auth_user : NULL},
	    {"{mail_addr}", c->txn->sender},
	};

	if (m->proto & MILTER_P_NOMAIL)
		return 0;
	ENT(ms, milter_enc_macro(&ms->out, MILTER_C_MAIL, mac, 3),
	    MILTER_C_MACRO, false);
	ENT(ms, milter_enc_mail(&ms->out, c->txn->sender, NULL, 0),
	    MILTER_C_MAIL, !(m->proto & MILTER_P_NR_MAIL));
	return 0;
}

static int
build_rcpt(struct conn_milters *ms, const struct mconn *m)
{
	const struct milter_macro mac[] = {
	    {"i", ms->c->txn->id}, {"{rcpt_addr}", ms->arg}};

	if (m->proto & MILTER_P_NORCPT)
		return 0;
	ENT(ms, milter_enc_macro(&ms->out, MILTER_C_RCPT, mac, 2),
	    MILTER_C_MACRO, false);
	ENT(ms, milter_enc_rcpt(&ms->out, ms->arg, NULL, 0), MILTER_C_RCPT,
	    !(m->proto & MILTER_P_NR_RCPT));
	return 0;
}

static int
build_eom(struct conn_milters *ms, const struct mconn *m)
{
	const struct txn *t = ms->c->txn;
	const struct milter_macro mac[] = {{"i", t->id}};
	size_t len, off = 0;
	const char *msg = txn_content(t, &len);
	struct milter_hdr h;
	struct buf v;

	if (!(m->proto & MILTER_P_NODATA)) {
		ENT(ms, milter_enc_macro(&ms->out, MILTER_C_DATA, mac, 1),
		    MILTER_C_MACRO, false);
		ENT(ms, milter_enc_simple(&ms->out, MILTER_C_DATA),
		    MILTER_C_DATA, !(m->proto & MILTER_P_NR_DATA));
	}
	buf_init(&v, len + 1);
	while (milter_header_next(msg, len, &off, &h)) {
		if (m->proto & MILTER_P_NOHDRS)
			continue;
		buf_reset(&v);
		if (milter_header_value(&h, &v) != 0) {
			buf_free(&v);
			return -1;
		}
		ENT(ms,
		    milter_enc_header(&ms->out, h.name, h.namelen,
			v.data != NULL ? v.data : "", v.len),
		    MILTER_C_HEADER, !(m->proto & MILTER_P_NR_HDR));
	}
	buf_free(&v);
	if (off < len && msg[off] == '\r')
		off++;
	if (off < len && msg[off] == '\n')
		off++;
	if (!(m->proto & MILTER_P_NOEOH))
		ENT(ms, milter_enc_simple(&ms->out, MILTER_C_EOH), MILTER_C_EOH,
		    !(m->proto & MILTER_P_NR_EOH));
	for (; !(m->proto & MILTER_P_NOBODY) && off < len;
	     off += MILTER_CHUNK) {
		size_t k = len - off < MILTER_CHUNK ? len - off : MILTER_CHUNK;

		/* encoded when sent (ms_send): one chunk in memory at a time,
		 * not a second copy of the message */
		ms_ent_body(ms, off, k, !(m->proto & MILTER_P_NR_BODY));
	}
	ENT(ms, milter_enc_macro(&ms->out, MILTER_C_EOM, mac, 1),
	    MILTER_C_MACRO, false);
	ENT(ms, milter_enc_simple(&ms->out, MILTER_C_EOM), MILTER_C_EOM, true);
	return 0;
}

static int
build_stage(struct conn_milters *ms, const struct mconn *m)
{
	buf_reset(&ms->out);
	ms->nent = ms->next = 0;
	ms->waiting = ms->body_skip = false;
	switch (ms->stage) {
	case CONN_MILTER_CONNECT:
		return build_connect(ms, m);
	case CONN_MILTER_HELO:
		return build_helo(ms, m);
	case CONN_MILTER_MAIL:
		return build_mail(ms, m);
	case CONN_MILTER_RCPT:
		return build_rcpt(ms, m);
	case CONN_MILTER_EOM:
		return build_eom(ms, m);
	}
	return -1;
}

/* ---- verdicts ---------------------------------------------------------- */

static void
set_verdict(struct conn_milters *ms, enum conn_milter_verdict v, int code,
    const char *enh, const char *text, size_t textlen)
{
	struct conn_milter_result *r = &ms->result;
	size_t n = 0;

	r->verdict = v;
	r->code = code;
	str_fmt_cut(r->enh, sizeof(r->enh), "%s", enh);
	/* a reply line: printable ASCII, one line */
	for (size_t i = 0; i < textlen && n + 1 < sizeof(r->text); i++) {
		unsigned char ch = (unsigned char)text[i];

		if (ch == '\r' || ch == '\n')
			break;
		r->text[n++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
	}
	r->text[n] = '\0';
}

/* "550 5.7.1 text" from SMFIR_REPLYCODE: the code, the enhanced code if
 * any, the text of its first line */
static void
verdict_replycode(
    struct conn_milters *ms, const struct milter_reply *r, const char *who)
{
	const char *p = r->text.p + 3, *end = r->text.p + r->text.len;
	char enh[16] = "";
	const char *eol;

	if (p < end && (*p == ' ' || *p == '-'))
		p++;
	eol = memchr(p, '\r', (size_t)(end - p));
	if (eol == NULL)
		eol = memchr(p, '\n', (size_t)(end - p));
	if (eol != NULL)
		end = eol;
	if (end - p >= 5 && p[0] == r->text.p[0] && p[1] == '.') {
		size_t k = strcspn(p, " \r\n");

		if (k < sizeof(enh) && p + k <= end) {
			memcpy(enh, p, k);
			p += k;
			while (p < end && *p == ' ')
				p++;
		}
	}
	if (enh[0] == '\0')
		str_fmt_cut(
		    enh, sizeof(enh), "%s", r->code >= 500 ? "5.7.1" : "4.7.1");
	set_verdict(ms,
	    r->code >= 500 ? CONN_MILTER_REJECT : CONN_MILTER_TEMPFAIL, r->code,
	    enh, p < end ? p : who, p < end ? (size_t)(end - p) : strlen(who));
}

static void
arm(struct conn_milters *ms, unsigned secs)
{
	struct timeval tv = {(time_t)secs, 0};

	event_del(ms->timer);
	event_add(ms->timer, &tv);
}

/* The stage is over: conn.c goes on, from the timer, so that nothing
 * of a milter's callback runs after done() (which may free c). */
static void
ms_finish(struct conn_milters *ms)
{
	ms->running = false;
	ms->waiting = false;
	ms->finishing = true;
	arm(ms, 0);
}

/* ---- the current milter's run ------------------------------------------ */

static void
ms_next_milter(struct conn_milters *ms)
{
	ms->cur++;
	ms_advance(ms);
}

/* Send packets until one awaits a reply; the milter's part of the stage
 * is over when none is left. */
static void
ms_send(struct conn_milters *ms)
{
	struct mconn *m = &ms->m[ms->cur];
	const struct conf *cf = ms->c->cf;

	while (ms->next < ms->nent) {
		const struct mentry *e = &ms->ent[ms->next++];
		const char *p = ms->out.data + e->off;
		size_t n = e->len;

		if (ms->body_skip && e->cmd == MILTER_C_BODY)
			continue;
		if (e->cmd == MILTER_C_BODY) {
			size_t len;
			const char *msg = txn_content(ms->c->txn, &len);

			buf_reset(&ms->chunk);
			/* off + n <= len: build_eom cut the chunks from it */
			if (milter_enc_body(&ms->chunk, msg + e->off, n) != 0)
				panic("event=milter error=chunk_encode");
			p = ms->chunk.data;
			n = ms->chunk.len;
		}
		if (bufferevent_write(m->bev, p, n) != 0) {
			ms_fail(m, "write");
			return;
		}
		if (e->cmd == MILTER_C_MAIL)
			m->in_txn = true;
		if (e->reply) {
			ms->waiting = true;
			arm(ms, e->cmd == MILTER_C_EOM
				    ? cf->milter_eom_timeout
				    : cf->milter_command_timeout);
			return;
		}
	}
	ms_next_milter(ms);
}

/* What the transaction's edits are before this milter's end of message. */
static void
edits_mark(struct conn_milters *ms)
{
	const struct conn_milter_edits *ed = &ms->c->txn->milter;

	ms->mark_nedits = ed->nedits;
	ms->mark_nrcpt = ed->nrcpt_ops;
	ms->mark_from_set = ed->from_set;
	ms->mark_quarantine = ed->quarantine;
	memcpy(ms->mark_from, ed->from, sizeof(ms->mark_from));
	ms->newbody_set = false;
}

/* A milter failed at the end of message: its edits are dropped. */
static void
edits_rollback(struct conn_milters *ms)
{
	struct conn_milter_edits *ed = &ms->c->txn->milter;

	for (size_t i = ms->mark_nedits; i < ed->nedits; i++) {
		free(ed->edits[i].name);
		free(ed->edits[i].value);
	}
	ed->nedits = ms->mark_nedits;
	ed->nrcpt_ops = ms->mark_nrcpt;
	ed->from_set = ms->mark_from_set;
	ed->quarantine = ms->mark_quarantine;
	memcpy(ed->from, ms->mark_from, sizeof(ed->from));
	ms->newbody_set = false;
}

static void
ms_run(struct conn_milters *ms)
{
	struct mconn *m = &ms->m[ms->cur];

	if (build_stage(ms, m) != 0) {
		log_warn("id=%s sid=%s event=milter_error milter=%s "
			 "stage=%s error=\"message too large to send\"",
		    ms->c->txn ? ms->c->txn->id : "-", ms->c->sid, m->name,
		    stage_name(ms->stage));
		ms_fail(m, "encode");
		return;
	}
	ms_send(ms);
}

/* A milter is no longer usable: log it, close it, default_action. */
static void
ms_fail(struct mconn *m, const char *why)
{
	struct conn_milters *ms = m->ms;
	struct conn *c = ms->c;
	bool tempfail = strcmp(c->cf->milter_default_action, "tempfail") == 0;

	log_warn("id=%s sid=%s event=milter_failed milter=%s stage=%s "
		 "error=%s action=%s",
	    c->txn ? c->txn->id : "-", c->sid, m->name, stage_name(ms->stage),
	    why, tempfail ? "tempfail" : "accept");
	if (ms->running && ms->stage == CONN_MILTER_EOM && c->txn != NULL &&
	    &ms->m[ms->cur] == m)
		edits_rollback(ms);
	mconn_close(m);
	m->st = MS_DEAD;
	m->in_txn = false;
	ms->waiting = false;
	if (tempfail)
		ms->tempfail_dead = true;
	if (ms->running)
		ms_advance(ms);
}

static bool
edit_allowed(const struct mconn *m, enum milter_reply_cmd cmd)
{
	switch (cmd) {
	case MILTER_R_ADDHEADER:
	case MILTER_R_INSHEADER:
		return m->actions & MILTER_F_ADDHDRS;
	case MILTER_R_CHGHEADER:
		return m->actions & MILTER_F_CHGHDRS;
	case MILTER_R_ADDRCPT:
		return m->actions & MILTER_F_ADDRCPT;
	case MILTER_R_ADDRCPT_PAR:
		return m->actions & MILTER_F_ADDRCPT_PAR;
	case MILTER_R_DELRCPT:
		return m->actions & MILTER_F_DELRCPT;
	case MILTER_R_REPLBODY:
		return m->actions & MILTER_F_CHGBODY;
	case MILTER_R_CHGFROM:
		return m->actions & MILTER_F_CHGFROM;
	case MILTER_R_QUARANTINE:
		return m->actions & MILTER_F_QUARANTINE;
	default:
		return false;
	}
}

static char *
str_of(const struct milter_str *s)
{
	char *p = xmalloc(s->len + 1);

	memcpy(p, s->p, s->len);
	p[s->len] = '\0';
	return p;
}

/* "<a@b>" or "a@b": the address without brackets */
static void
bare_addr(const struct milter_str *s, char *out, size_t outlen)
{
	const char *p = s->p;
	size_t n = s->len;

	if (n >= 2 && p[0] == '<' && p[n - 1] == '>') {
		p++;
		n -= 2;
	}
	if (str_copy(out, outlen, p, n) != 0)
		out[0] = '\0';
}

/* An edit at the end of message: kept in the transaction until every
 * milter has answered. */
static bool
take_edit(
    struct conn_milters *ms, struct mconn *m, const struct milter_reply *r)
{
	struct txn *t = ms->c->txn;
	struct conn_milter_edits *ed = &t->milter;
	char addr[TABLE_ADDR_MAX + 1];

	if (!edit_allowed(m, r->cmd))
		return false;
	log_info("id=%s sid=%s event=milter_action milter=%s action=%s", t->id,
	    ms->c->sid, m->name, milter_reply_name(r->cmd));
	switch (r->cmd) {
	case MILTER_R_ADDHEADER:
	case MILTER_R_INSHEADER:
	case MILTER_R_CHGHEADER:
		if (ed->nedits == ed->capedits) {
			size_t cap = ed->capedits ? ed->capedits * 2 : 8;
			struct milter_edit *v = xcalloc(cap, sizeof(*v));

			if (ed->nedits > 0)
				memcpy(v, ed->edits, ed->nedits * sizeof(*v));
			free(ed->edits);
			ed->edits = v;
			ed->capedits = cap;
		}
		ed->edits[ed->nedits++] = (struct milter_edit){
		    r->cmd == MILTER_R_ADDHEADER   ? MILTER_EDIT_ADD
		    : r->cmd == MILTER_R_INSHEADER ? MILTER_EDIT_INSERT
						   : MILTER_EDIT_CHANGE,
		    r->index, str_of(&r->name), str_of(&r->value)};
		return true;
	case MILTER_R_REPLBODY:
		if (!ms->newbody_set) {
			buf_reset(&ms->newbody);
			ms->newbody_set = true;
		}
		return buf_append(&ms->newbody, r->text.p, r->text.len) == 0;
	case MILTER_R_CHGFROM:
		bare_addr(&r->text, addr, sizeof(addr));
		str_fmt_cut(ed->from, sizeof(ed->from), "%s", addr);
		ed->from_set = true;
		return true;
	case MILTER_R_QUARANTINE:
		ed->quarantine = true;
		return true;
	case MILTER_R_DELRCPT:
	case MILTER_R_ADDRCPT:
	case MILTER_R_ADDRCPT_PAR:
		bare_addr(&r->text, addr, sizeof(addr));
		if (addr[0] == '\0')
			return false;
		if (ed->nrcpt_ops ==
		    sizeof(ed->rcpt_ops) / sizeof(ed->rcpt_ops[0]))
			return false;
		ed->rcpt_ops[ed->nrcpt_ops].add = r->cmd != MILTER_R_DELRCPT;
		str_fmt_cut(ed->rcpt_ops[ed->nrcpt_ops].addr,
		    sizeof(ed->rcpt_ops[0].addr), "%s", addr);
		ed->nrcpt_ops++;
		return true;
	default:
		return false;
	}
}

/* The reply to the packet awaited; false if the milter misbehaved. */
static bool
on_reply(struct conn_milters *ms, struct mconn *m, const struct milter_reply *r)
{
	const struct mentry *e = &ms->ent[ms->next - 1];
	struct conn *c = ms->c;
	bool txn_stage = ms->stage >= CONN_MILTER_MAIL;

	if (r->cmd == MILTER_R_PROGRESS) {
		arm(ms, c->cf->milter_eom_timeout);
		return e->cmd == MILTER_C_EOM;
	}
	if (e->cmd == MILTER_C_EOM && edit_allowed(m, r->cmd))
		return take_edit(ms, m, r);
	ms->waiting = false;
	switch (r->cmd) {
	case MILTER_R_CONTINUE:
		if (e->cmd == MILTER_C_EOM) {
			m->in_txn = false;
			goto eom_done;
		}
		ms_send(ms);
		return true;
	case MILTER_R_SKIP:
		if (e->cmd != MILTER_C_BODY)
			return false;
		ms->body_skip = true;
		ms_send(ms);
		return true;
	case MILTER_R_ACCEPT:
		log_info("id=%s sid=%s event=milter milter=%s stage=%s "
			 "action=accept",
		    c->txn ? c->txn->id : "-", c->sid, m->name,
		    stage_name(ms->stage));
		if (txn_stage)
			m->txn_off = true;
		else
			m->st = MS_OFF;
		if (e->cmd == MILTER_C_EOM) {
			m->in_txn = false;
			goto eom_done;
		}
		ms_next_milter(ms);
		return true;
	case MILTER_R_DISCARD:
		if (!txn_stage)
			return false;
		set_verdict(ms, CONN_MILTER_DISCARD, 250, "2.0.0", "", 0);
		m->txn_off = true;
		break;
	case MILTER_R_REJECT:
		set_verdict(ms, CONN_MILTER_REJECT, 550, "5.7.1",
		    "Command rejected", 16);
		break;
	case MILTER_R_TEMPFAIL:
		set_verdict(ms, CONN_MILTER_TEMPFAIL, 451, "4.7.1",
		    "Service unavailable - try again later", 37);
		break;
	case MILTER_R_REPLYCODE:
		verdict_replycode(ms, r, "Command rejected");
		break;
	default:
		return false;
	}
	/* refused (or discarded): the stage stops here */
	log_info("id=%s sid=%s event=milter milter=%s stage=%s action=%s "
		 "code=%d text=\"%s\"",
	    c->txn ? c->txn->id : "-", c->sid, m->name, stage_name(ms->stage),
	    milter_reply_name(r->cmd), ms->result.code, ms->result.text);
	if (e->cmd == MILTER_C_EOM)
		m->in_txn = false;
	if (ms->stage != CONN_MILTER_RCPT && txn_stage)
		m->txn_off = true;
	ms_finish(ms);
	return true;
eom_done:
	if (ms->newbody_set) {
		struct txn *t = c->txn;

		/* the last milter that replaced the body wins */
		buf_free(&t->milter.body);
		t->milter.body = ms->newbody;
		t->milter.body_set = true;
		buf_init(&ms->newbody, c->cf->message_size + 1);
		ms->newbody_set = false;
	}
	ms_next_milter(ms);
	return true;
}

static bool
on_optneg(struct mconn *m, const struct milter_reply *r)
{
	struct conn_milters *ms = m->ms;

	if (r->cmd != MILTER_R_OPTNEG || r->version < 2 ||
	    r->version > MILTER_VERSION)
		return false;
	/* what it asks beyond the offer is not granted */
	m->actions = r->actions & MILTER_ACTIONS;
	m->proto = r->protocol & MILTER_P_OFFER;
	m->st = MS_READY;
	log_debug("sid=%s event=milter_ready milter=%s version=%u actions=0x%x "
		  "protocol=0x%x",
	    ms->c->sid, m->name, r->version, m->actions, m->proto);
	ms->waiting = false;
	ms_run(ms);
	return true;
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct mconn *m = arg;
	struct conn_milters *ms = m->ms;
	struct evbuffer *in = bufferevent_get_input(bev);

	while (m->bev == bev && ms->running && &ms->m[ms->cur] == m &&
	       ms->waiting) {
		size_t have = evbuffer_get_length(in), used = 0, need;
		uint8_t hdr[4];
		struct milter_reply r;
		const uint8_t *p;
		int rc;
		bool ok;

		if (have < 4)
			return;
		evbuffer_copyout(in, hdr, 4);
		need = 4 + ((size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 |
			       (size_t)hdr[2] << 8 | hdr[3]);
		if (need - 4 > MILTER_REPLY_MAX || need == 4) {
			ms_fail(m, "packet_length");
			return;
		}
		if (have < need)
			return;
		p = evbuffer_pullup(in, (ev_ssize_t)need);
		rc = milter_reply_parse(p, need, &r, &used);
		if (rc != 1) {
			ms_fail(m, "malformed_reply");
			return;
		}
		/* handled before the drain: r points into the buffer */
		ok = m->st == MS_NEG ? on_optneg(m, &r) : on_reply(ms, m, &r);
		if (m->bev == bev)
			evbuffer_drain(in, used);
		if (!ok) {
			char why[64];

			str_fmt_cut(why, sizeof(why), "unexpected_reply_%s",
			    milter_reply_name(r.cmd));
			ms_fail(m, why);
			return;
		}
	}
	/* bytes nobody asked for */
	if (m->bev == bev && evbuffer_get_length(in) > 0 &&
	    !(ms->running && &ms->m[ms->cur] == m))
		ms_fail(m, "unexpected_data");
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct mconn *m = arg;
	struct conn_milters *ms = m->ms;
	uint8_t neg[32];
	struct buf b;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		buf_init(&b, sizeof(neg));
		if (milter_enc_optneg(&b, MILTER_ACTIONS, MILTER_P_OFFER) !=
			0 ||
		    bufferevent_write(m->bev, b.data, b.len) != 0) {
			buf_free(&b);
			ms_fail(m, "write");
			return;
		}
		buf_free(&b);
		m->st = MS_NEG;
		ms->waiting = true;
		arm(ms, ms->c->cf->milter_command_timeout);
		return;
	}
	ms_fail(m, (what & BEV_EVENT_EOF)   ? "closed"
		   : m->st == MS_CONNECTING ? "connect"
					    : "io");
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct conn_milters *ms = arg;

	(void)fd;
	(void)what;
	if (ms->finishing) {
		ms->finishing = false;
		ms->c->pending = false;
		ms->done(ms->c); /* may free c and ms */
		return;
	}
	if (ms->kick) {
		ms->kick = false;
		ms_advance(ms);
		return;
	}
	if (!ms->running)
		return;
	if (ms->cur < ms->n && ms->m[ms->cur].st != MS_DEAD &&
	    ms->m[ms->cur].bev != NULL &&
	    (ms->waiting || ms->m[ms->cur].st == MS_CONNECTING)) {
		ms_fail(&ms->m[ms->cur], "timeout");
	}
}

static void
ms_connect(struct conn_milters *ms, struct mconn *m)
{
	struct sockaddr_storage ss;
	socklen_t sl;

	memset(&ss, 0, sizeof(ss));
	if (m->spec.unix_path) {
		struct sockaddr_un *su = (struct sockaddr_un *)&ss;

		su->sun_family = AF_UNIX;
		memcpy(su->sun_path, m->spec.host, strlen(m->spec.host));
		sl = sizeof(*su);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		const char *h = strcmp(m->spec.host, "localhost") == 0
				    ? "127.0.0.1"
				    : m->spec.host;

		if (inet_pton(AF_INET, h, &s4->sin_addr) == 1) {
			s4->sin_family = AF_INET;
			s4->sin_port = htons(m->spec.port);
			sl = sizeof(*s4);
		} else if (inet_pton(AF_INET6, h, &s6->sin6_addr) == 1) {
			s6->sin6_family = AF_INET6;
			s6->sin6_port = htons(m->spec.port);
			sl = sizeof(*s6);
		} else {
			ms_fail(m, "not_an_address");
			return;
		}
	}
	m->bev =
	    bufferevent_socket_new(ms->c->srv->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (m->bev == NULL) {
		ms_fail(m, "socket");
		return;
	}
	bufferevent_setcb(m->bev, on_read, NULL, on_event, m);
	bufferevent_enable(m->bev, EV_READ | EV_WRITE);
	m->st = MS_CONNECTING;
	if (bufferevent_socket_connect(
		m->bev, (struct sockaddr *)&ss, (int)sl) != 0) {
		ms_fail(m, errno == ENOENT ? "no_socket" : "connect");
		return;
	}
	arm(ms, ms->c->cf->milter_connect_timeout);
}

static bool
usable(const struct conn_milters *ms, const struct mconn *m)
{
	if (m->st == MS_DEAD || m->st == MS_OFF)
		return false;
	return ms->stage < CONN_MILTER_MAIL || !m->txn_off;
}

/* The next milter of the stage, or the end of it. */
static void
ms_advance(struct conn_milters *ms)
{
	if (ms->tempfail_dead) {
		set_verdict(ms, CONN_MILTER_TEMPFAIL, 451, "4.7.1",
		    "Service unavailable - try again later", 37);
		ms->result.failed = true;
		ms_finish(ms);
		return;
	}
	while (ms->cur < ms->n && !usable(ms, &ms->m[ms->cur]))
		ms->cur++;
	if (ms->cur >= ms->n) {
		ms_finish(ms);
		return;
	}
	if (ms->stage == CONN_MILTER_EOM)
		edits_mark(ms);
	if (ms->m[ms->cur].st == MS_NEW)
		ms_connect(ms, &ms->m[ms->cur]);
	else
		ms_run(ms);
}

/* ---- conn.c's interface ------------------------------------------------- */

bool
conn_milter_stage(struct conn *c, enum conn_milter_stage st, const char *arg,
    void (*done)(struct conn *))
{
	struct conn_milters *ms;
	bool any = false;

	if (!milters_apply(c))
		return false;
	if (c->milters == NULL)
		c->milters = ms_new(c);
	ms = c->milters;
	if (st == CONN_MILTER_MAIL)
		ms_new_txn(ms); /* the previous message may have been stored
				   with milters still inside it */
	ms->stage = st;
	for (unsigned i = 0; i < ms->n; i++)
		any |= usable(ms, &ms->m[i]);
	if (!any && !ms->tempfail_dead)
		return false;
	ms->result =
	    (struct conn_milter_result){CONN_MILTER_CONTINUE, false, 0, "", ""};
	ms->done = done;
	str_fmt_cut(ms->arg, sizeof(ms->arg), "%s", arg != NULL ? arg : "");
	ms->cur = 0;
	ms->running = true;
	ms->newbody_set = false;
	c->pending = true;
	/* from the loop, never inside conn_process: done() is always called
	 * the way answers are */
	ms->kick = true;
	arm(ms, 0);
	return true;
}

void
conn_milter_abort(struct conn *c)
{
	if (c->milters != NULL)
		ms_new_txn(c->milters);
}

/* ABORT to the milters inside a transaction; every milter is called
 * again for the next one. */
static void
ms_new_txn(struct conn_milters *ms)
{
	struct buf b;

	buf_init(&b, 16);
	if (milter_enc_simple(&b, MILTER_C_ABORT) != 0)
		panic("event=milter error=abort_encode");
	for (unsigned i = 0; i < ms->n; i++) {
		struct mconn *m = &ms->m[i];

		if (m->in_txn && m->bev != NULL &&
		    bufferevent_write(m->bev, b.data, b.len) != 0)
			ms_fail(m, "write");
		m->in_txn = false;
		m->txn_off = false;
	}
	buf_free(&b);
}

void
conn_milter_txn_free(struct txn *t)
{
	struct conn_milter_edits *ed = &t->milter;

	for (size_t i = 0; i < ed->nedits; i++) {
		free(ed->edits[i].name);
		free(ed->edits[i].value);
	}
	free(ed->edits);
	buf_free(&ed->body);
	buf_free(&ed->content);
	memset(ed, 0, sizeof(*ed));
}

/* ---- the end of message's edits ------------------------------------------ */

static bool
addr_eq(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}

static unsigned
env_remove(struct queue_env *env, const char *addr)
{
	unsigned n = 0;

	for (size_t i = 0; i < env->nrcpt;) {
		if (addr_eq(env->rcpt[i].addr, addr)) {
			memmove(env->rcpt + i, env->rcpt + i + 1,
			    (env->nrcpt - i - 1) * sizeof(*env->rcpt));
			env->nrcpt--;
			n++;
		} else {
			i++;
		}
	}
	return n;
}

static void
del_rcpt(struct conn *c, const char *addr)
{
	struct txn *t = c->txn;
	unsigned n = 0;

	for (size_t i = 0; i < t->targets.n;) {
		if (addr_eq(t->targets.v[i].address, addr)) {
			memmove(t->targets.v + i, t->targets.v + i + 1,
			    (t->targets.n - i - 1) * sizeof(*t->targets.v));
			t->targets.n--;
			n++;
		} else {
			i++;
		}
	}
	if (t->remote != NULL)
		n += env_remove(t->remote, addr);
	log_info("id=%s sid=%s event=milter_delrcpt to=<%s> removed=%u", t->id,
	    c->sid, addr, n);
}

int
conn_milter_apply(struct conn *c)
{
	struct txn *t = c->txn;
	struct conn_milter_edits *ed = &t->milter;
	const char *msg;
	size_t len;

	if (ed->from_set) {
		log_info("id=%s sid=%s event=milter_chgfrom from=<%s> to=<%s>",
		    t->id, c->sid, t->sender, ed->from);
		str_fmt_cut(t->sender, sizeof(t->sender), "%s", ed->from);
		if (t->remote != NULL)
			str_fmt_cut(t->remote->sender,
			    sizeof(t->remote->sender), "%s", ed->from);
	}
	/* the added ones are in already (conn.c resolved them) */
	for (size_t i = 0; i < ed->nrcpt_ops; i++)
		if (!ed->rcpt_ops[i].add)
			del_rcpt(c, ed->rcpt_ops[i].addr);
	if (ed->nedits == 0 && !ed->body_set)
		return 0;
	msg = txn_content(t, &len);
	buf_init(&ed->content, (size_t)c->cf->message_size * 2 + 65536);
	if (milter_rewrite(msg, len, ed->edits, ed->nedits,
		ed->body_set ? (ed->body.data ? ed->body.data : "") : NULL,
		ed->body.len, &ed->content) != 0) {
		log_warn("id=%s sid=%s event=milter_rewrite_failed size=%zu",
		    t->id, c->sid, len);
		return -1;
	}
	ed->rewritten = true;
	log_info("id=%s sid=%s event=milter_rewrite header_edits=%zu body=%s "
		 "size=%zu",
	    t->id, c->sid, ed->nedits, ed->body_set ? "replaced" : "kept",
	    ed->content.len);
	return 0;
}

void
conn_milter_store(struct conn *c, struct inject *ij)
{
	struct txn *t = c->txn;

	if (!t->milter.quarantine)
		return;
	for (size_t i = 0; i < ij->nboxes; i++)
		ij->boxes[i].folder = CONN_AUTH_JUNK;
	log_info("id=%s sid=%s event=milter_quarantine folder=%s boxes=%zu",
	    t->id, c->sid, CONN_AUTH_JUNK, ij->nboxes);
}
