/*
 * conn.h: the connection and transaction structures shared by the files
 * of ternd's shell (conn.c: protocol glue and delivery; submit.c: AUTH,
 * sender policy and submission fix-ups, submit.h; tlsconn.c: STARTTLS,
 * tlsconn.h).  Private to src/server.
 *
 * Owns: struct conn and struct txn, one client session and its
 * transaction, and the list of sessions (struct server's conns), on the
 * event loop only.  Its context is c->srv.  Its files may call what
 * server.h may, the table through lookup.h (conn_ask), inject and the
 * queue manager, and drive the session through smtp.h's smtp_server_*
 * only.
 */
#ifndef TERN_SERVER_CONN_H
#define TERN_SERVER_CONN_H

#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/uio.h>

#include <event2/bufferevent.h>

#include "auth/auth.h"
#include "smtp/smtp.h"
#include "server/listen.h"
#include "server/lookup.h"
#include "server/reload.h"
#include "server/server.h"
#include "mailauth/inbound.h"
#include "server/authcheck.h"
#include "server/spfcheck.h"
#include "server/submit.h"
#include "server/tlsconn.h"

/* What DMARC decided for a message (connauth.c). */
enum conn_auth_action {
	CONN_AUTH_ACCEPT,
	CONN_AUTH_QUARANTINE, /* local copies into CONN_AUTH_JUNK */
	CONN_AUTH_REJECT,     /* 550 5.7.1 at the end of data */
};
#define CONN_AUTH_JUNK ".Junk" /* Maildir++ folder of quarantined mail */

/* What the milters asked of a transaction at its end (connmilter.c). */
struct milter_edit;
struct conn_milter_edits {
	struct milter_edit *edits; /* header edits, in order */
	size_t nedits, capedits;
	struct buf body; /* the replacement body, when body_set */
	bool body_set;
	char from[TABLE_ADDR_MAX + 1]; /* the new sender, when from_set */
	bool from_set;
	bool quarantine; /* into CONN_AUTH_JUNK */
	struct {
		bool add;
		char addr[TABLE_ADDR_MAX + 1];
	} rcpt_ops[16];
	size_t nrcpt_ops;
	size_t next_add;    /* the next one to resolve (conn.c) */
	struct buf content; /* the message rewritten, when rewritten */
	bool rewritten;
	bool discard; /* a milter discarded it at MAIL or RCPT */
};

struct txn {
	struct server *srv; /* its budgets; outlives the conn in eom_done */
	char id[ID_LEN + 1];
	char sender[TABLE_ADDR_MAX + 1];
	char first_rcpt[TABLE_ADDR_MAX + 1];
	unsigned nrcpt;
	uint64_t eom_us; /* end of data (time_now_us): commit latency */
	struct smtp_mail_params params;
	struct table_targets targets;	 /* local mailboxes, deduplicated */
	struct queue_env *remote;	 /* remote recipients, or NULL */
	struct buf body;		 /* content, while it is small */
	int spill_fd;			 /* -1; else the content is in this
					    unlinked file (see body_sink) */
	uint64_t spill_len;		 /* counted in s->scratch_bytes */
	uint64_t spill_unchecked;	 /* written since the last look
					    at free space */
	uint64_t storing;		 /* counted in s->storing_bytes
					    while its job writes it */
	char *map;			 /* the spill file, mapped at the
					    end of data */
	bool body_failed;		 /* could not store the content */
	int body_errno;			 /* why: 0 memory, else write's */
	void *owner;			 /* the conn, while a job stores it */
	struct dsn_delivered_rcpt *succ; /* local RCPTs with NOTIFY=SUCCESS */
	size_t nsucc;
	struct spfcheck *spf; /* the SPF check of this transaction (connspf.c),
				 started at its first accepted RCPT */
	bool spf_tried;	      /* started, or found not to apply */
	bool spf_logged;
	bool forwarded; /* an alias sent a recipient to a remote address:
			   the queue's sender gets SRS (connsrs.c) */
	/* DKIM, DMARC, A-R at the end of data (connauth.c) */
	struct authcheck *auth; /* its check, once started */
	bool auth_on;		/* the checks apply to this message */
	enum inbound_from from_status;
	char from_domain[PSL_NAME_MAX + 1]; /* the author's, lower case */
	struct dmarc_verdict dmarc;	    /* points into auth's lookup */
	bool dmarc_evaluated;
	enum conn_auth_action auth_action;
	struct iovec body_iov[INJECT_BODY_IOV]; /* the content without our
						   own A-R fields */
	struct buf stripped; /* ... copied, when there are many */
	struct conn_milter_edits milter;
	/* policy delegation (connpolicy.c) */
	struct buf policy_prepend; /* PREPEND fields, "Name: value\r\n" */
	unsigned policy_nprepend;
	bool policy_discard; /* DISCARD: accepted at the end, dropped */
};

/* The milters' answer to a stage (connmilter.c). */
enum conn_milter_stage {
	CONN_MILTER_CONNECT,
	CONN_MILTER_HELO,
	CONN_MILTER_MAIL,
	CONN_MILTER_RCPT,
	CONN_MILTER_EOM,
};
enum conn_milter_verdict {
	CONN_MILTER_CONTINUE,
	CONN_MILTER_REJECT,
	CONN_MILTER_TEMPFAIL,
	CONN_MILTER_DISCARD,
};
struct conn_milter_result {
	enum conn_milter_verdict verdict;
	bool failed; /* TEMPFAIL because a milter failed (default_action) */
	int code;    /* REJECT, TEMPFAIL: 4xx or 5xx */
	char enh[16];
	char text[400];
};
struct conn_milters;

/* What a session waits for while its SPF check runs (connspf.c). */
enum conn_spf_wait {
	CONN_SPF_NONE,
	CONN_SPF_RCPT, /* the RCPT's reply (spf.reject_fail = yes) */
	CONN_SPF_EOM,  /* the end of data's store and reply */
};

struct conn {
	struct conn *next, *prev;
	struct server *srv;
	/* the configuration this session started under and keeps to its end
	   (reload.h); read c->cf, not srv->conf, in session code */
	const struct conf *cf;
	struct cfgsnap *snap;
	const struct listener *l;
	struct bufferevent *bev;
	int fd; /* owned by bev once TLS is on */
	struct smtp_server *smtp;
	struct buf out;
	struct sockaddr_storage sa;
	char ip[INET6_ADDRSTRLEN];
	struct client_key key; /* the client, for every per-client
				  count (clientkey.h) */
	char sid[ID_LEN + 1];
	struct event *timer;
	uint64_t line_started; /* ms; 0: no partial line */
	struct txn *txn;
	struct resolve_lookup *rcpt_q; /* RCPT's question (on_rcpt), made
					  at the first RCPT, NULL before */
	unsigned processing;	       /* conn_process frames (conn.h) */
	bool pending;		       /* the current event awaits a job
					  or a delay */
	bool job_running;	       /* a worker job points here */
	bool closing;		       /* flush, then free */
	bool dead;		       /* socket gone, job still running */
	bool eof;		       /* the client shut its side: finish
					  what it sent, then close */
	bool authenticated;
	bool local;	      /* came in on public/submit.sock */
	unsigned local_uid;   /* its SO_PEERCRED uid */
	char local_login[64]; /* its login name, lower-cased,
				 once asked (submit.c) */
	bool tls;	      /* TLS is on (STARTTLS or 465) */
	char *auth_user;      /* after AUTH: the user name (owned); else NULL */
	unsigned auth_failures;
	struct sasl_login *login; /* LOGIN exchange in progress */
	struct event *delay;	  /* failed-AUTH reply delay */
	struct auth_job *held;	  /* AUTH waiting out its client's
				     penalty (submit.c) */
	struct event *hold;	  /* ends that wait */
	unsigned messages;
	const char *close_reason;
	enum conn_spf_wait spf_wait;
	bool rcpt_srs; /* this RCPT was a valid SRS address: rcpt_q.addr
			  is the address it stands for (connsrs.c) */
	struct conn_milters *milters; /* connmilter.c, once used */
	struct conn_screen *screen;   /* screen.c, while it screens */
	char screen_reply[256];	      /* screen.c: refused with 554 5.7.1 and
					 this text when not "" */
	/* greylisting of this RCPT (conngrey.c) */
	bool grey_defer;		   /* answer 451 4.7.1 */
	unsigned grey_wait;		   /* seconds it still has to wait */
	void (*grey_cont)(struct conn *c); /* after the store answered */
	unsigned unknown_rcpts;		   /* 550 5.1.1 so far (connrate.c) */
	/* policy delegation (connpolicy.c) */
	struct conn_policy *policy; /* its request and answer, once asked */
	char auth_mech[24];	    /* the SASL mechanism, once authenticated */
};

void conn_new(struct server *s, const struct listener *l, int fd,
    const struct sockaddr *sa, socklen_t salen);
/* SIGTERM: idle sessions get 421 now, busy ones when their step ends. */
void conns_shutdown(struct server *s);
void conns_close_all(struct server *s, const char *why);

/* Runs the core on c's input.  A call made while it already runs for c
 * (an answer that came before lookup_ask returned, inside an event's
 * handler) returns at once, and the running one goes on with the next
 * command; at the top level it may free c. */
void conn_process(struct conn *c);
void conn_free(struct conn *c);
void conn_close_soon(struct conn *c, const char *reason);
/* A worker job that pointed at c has finished: true if c was freed. */
bool conn_job_finished(struct conn *c);
/*
 * Ask lk for c's current command: c waits (pending; the core holds the
 * pipelined commands behind it) until the answer.  The answer calls
 * conn_answered(c), replies, then conn_process(c); with the SQLite table
 * that happens before conn_ask returns, so a caller outside an event's
 * handler (a timer) asks inside conn_resume.
 */
void conn_ask(struct conn *c, struct lookup *lk);
/* fn(c, arg) as if inside conn_process (an answer's conn_process returns
 * at once), then conn_process(c): c may be freed when it returns. */
void conn_resume(struct conn *c, void (*fn)(struct conn *, void *), void *arg);
/* In an answer (or a job's done): false if c went away meanwhile, else
 * c stops waiting; the caller replies, then conn_process(c). */
bool conn_answered(struct conn *c);
void conn_setup_bev(struct conn *c);
void conn_reject(struct conn *c, const char *cmd, int code, const char *enh,
    const char *text, const char *addr);

/*
 * SPF on the MX port (connspf.c, docs/mailauth.md).  conn_spf_start: at
 * the first RCPT to be accepted, start c->txn's check when it applies
 * (spf.check, the MX port, a client neither authenticated, local nor in
 * relay.networks); done(sc, c) when it ends, unless the transaction goes
 * first.  conn_spf_refuses: with spf.reject_fail, refuse this RCPT (true)
 * when the result says so.  conn_spf_header: the Received-SPF field, if
 * a check ran.  conn_spf_log: the event=spf line, once per transaction.
 */
void conn_spf_start(struct conn *c, spfcheck_cb done);
bool conn_spf_refuses(struct conn *c, const char *rcpt);
int conn_spf_header(const struct conn *c, struct buf *h);
void conn_spf_log(struct conn *c);

/*
 * SRS (connsrs.c, docs/mailauth.md).  conn_srs_forward: at the end of
 * data, the queue envelope's sender rewritten to SRS when an alias sent a
 * recipient of this transaction to a remote address and the sender is
 * neither <> nor in one of our domains.  conn_srs_rcpt: at RCPT, an SRS
 * address at srs.domain; valid, q->addr becomes the address it stands
 * for and c->rcpt_srs is set (false: go on with the lookup); forged,
 * expired or malformed, it is refused 550 5.1.1 (true: replied).
 */
void conn_srs_forward(struct conn *c, struct queue_env *env);
bool conn_srs_rcpt(struct conn *c, struct resolve_lookup *q);
/* The content as received (in memory, or the mapped spill file). */
const char *txn_content(const struct txn *t, size_t *len);

/*
 * DKIM, DMARC and Authentication-Results on the MX port (connauth.c,
 * docs/mailauth.md).  conn_auth_start: at the end of data, SPF over,
 * start the check when it applies (true: c waits, held like a worker job;
 * done(ac, c) later, which calls conn_job_finished first).
 * conn_auth_finish: the DMARC verdict, the action, the event=auth line.
 * conn_auth_refuses: a DMARC reject, answered 550 5.7.1 (true).
 * conn_auth_header: our A-R field.  conn_auth_store: the stored copy
 * without the A-R fields that claim our name, quarantine into .Junk.
 * conn_auth_seal: ARC-seal a forwarded message's stored copy (after every
 * other prepare step of ij: call it last).
 */
bool conn_auth_applies(const struct conn *c);
bool conn_auth_start(struct conn *c, authcheck_cb done);
void conn_auth_finish(struct conn *c);
bool conn_auth_refuses(struct conn *c);
int conn_auth_header(const struct conn *c, struct buf *h);
struct inject;
void conn_auth_store(struct conn *c, struct inject *ij);
void conn_auth_seal(struct conn *c, struct inject *ij);

/*
 * Milters (connmilter.c, docs/milter.md), on the MX and submission ports.
 * conn_milter_stage: call the milters of milter.servers in order for a
 * stage (arg: HELO's name, RCPT's address); false when none applies (nothing to
 * wait for), true: c is pending and done(c) is called from the loop with
 * conn_milter_result(c), then the caller replies and calls conn_process.
 * conn_milter_apply: at the end of data, before the store, the sender,
 * recipient, header and body changes (-1: could not rewrite).
 * conn_milter_store: quarantine into .Junk.  conn_milter_abort: the
 * transaction is dropped (ABORT to milters inside one).
 * conn_milter_txn_free: the transaction's edits.  conn_milter_free: the
 * session ends.  conn_milter_result: the last stage's verdict (CONTINUE
 * for a session no milter saw; kept in c->milters, not in every conn).
 */
bool conn_milter_stage(struct conn *c, enum conn_milter_stage st,
    const char *arg, void (*done)(struct conn *));
int conn_milter_apply(struct conn *c);
void conn_milter_store(struct conn *c, struct inject *ij);
void conn_milter_abort(struct conn *c);
void conn_milter_txn_free(struct txn *t);
void conn_milter_free(struct conn *c);
const struct conn_milter_result *conn_milter_result(const struct conn *c);

/*
 * Screening before the greeting (screen.c, docs/screening.md), on the MX
 * port only, for clients outside relay.networks.  conn_screen_start: at
 * the connect event; CONN_SCREEN_PASS: greet now; CONN_SCREEN_REFUSE: the
 * verdict is known (cached): refuse with c->screen_reply now;
 * CONN_SCREEN_WAIT: c is pending and done(c) is called from the loop with
 * c->screen_reply set or not, then the caller replies and calls
 * conn_process.  conn_screen_input: input came while c waits (true: it
 * was screening, and handled it).  conn_screen_free: the session ends.
 */
enum conn_screen_start {
	CONN_SCREEN_PASS,
	CONN_SCREEN_REFUSE,
	CONN_SCREEN_WAIT,
};
enum conn_screen_start conn_screen_start(
    struct conn *c, void (*done)(struct conn *));
bool conn_screen_input(struct conn *c);
void conn_screen_free(struct conn *c);

/*
 * Greylisting (conngrey.c, docs/defence.md).  conn_grey_wants_spf: the
 * RCPT should wait for the SPF result (greylisting applies and the
 * sender's domain is in greylist.whitelist_domains).  conn_grey_stage:
 * for an RCPT tern would take, ask the store on the worker pool; false
 * when greylisting does not apply (nothing to wait for), true: c is
 * pending and done(c) is called from the loop.  conn_grey_refused: after
 * done, answer 451 4.7.1 when the triplet must wait (true: replied).
 */
bool conn_grey_wants_spf(const struct conn *c);
bool conn_grey_stage(struct conn *c, void (*done)(struct conn *));
bool conn_grey_refused(struct conn *c, const char *rcpt);
/* Start-up (as the user, before the sandbox) and exit: STATE/greylist.db
 * when greylist.enable (fatal if it cannot be opened). */
void conn_grey_open(struct server *s);
void conn_grey_close(struct server *s);
/*
 * A reload turning greylist.enable on when the store was not opened at
 * start: *out is the store opened (the sandbox allows STATE, and the
 * tables' database), for the switch to make s->greylist; NULL when there
 * is nothing to open.  -1 with err when it cannot be (the reload is
 * refused).  Once open, the store stays open until exit, its triplets
 * kept whether a reload turns greylisting off or on again; a session
 * greylists when its own configuration (c->cf) says so.
 */
int conn_grey_reload_prepare(struct server *s, const struct conf *nc,
    struct greylist **out, char *err, size_t errlen);

/*
 * Policy delegation (connpolicy.c, docs/policy.md): the Postfix policy
 * protocol to policy.servers, at RCPT (a recipient tern would take) and
 * at the end of data, on the MX and submission ports.
 * conn_policy_stage: false when it does not apply (nothing to wait for);
 * true: c is pending and done(c) is called from the loop, then the
 * caller answers (conn_policy_refused) and calls conn_process.
 * conn_policy_refused: replied with the policy's refusal (true).
 * conn_policy_header: the PREPEND fields for the stored copy.
 * conn_policy_txn_free: the transaction's.  conn_policy_free: the session ends
 * (a request in flight closes its connection). conn_policy_close: at exit, the
 * idle connections kept between requests.
 */
enum conn_policy_stage {
	CONN_POLICY_RCPT,
	CONN_POLICY_EOM,
};
bool conn_policy_stage(struct conn *c, enum conn_policy_stage st,
    const char *rcpt, void (*done)(struct conn *));
bool conn_policy_refused(struct conn *c, const char *cmd, const char *addr);
int conn_policy_header(const struct conn *c, struct buf *h);
void conn_policy_txn_free(struct txn *t);
void conn_policy_free(struct conn *c);
void conn_policy_close(struct server *s);

#endif
