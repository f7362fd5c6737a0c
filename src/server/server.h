/*
 * server: ternd's shell around the pure protocol core.  One libevent loop
 * runs the network, timers and signals; blocking disk work (Maildir
 * delivery, fsync) runs on a small pool of worker threads whose
 * completions come back to the loop through an eventfd.  Only the loop
 * thread touches connections and the core; a remote table is asked by a
 * second pool (lookup.c), each thread with its own connection.  A job
 * owns its arguments until its completion has run on the loop.
 *
 * Owns: struct server and ternd itself: listeners, connections, the worker
 * and lookup pools (src/workers/), the store (src/store/store.h), the queue
 * manager, the control sockets.  May call: addr, auth, conf, deliver,
 * queue, smtp, store, table, tls, util, workers (mime only through
 * deliver); no module calls it.
 */
#ifndef TERN_SERVER_H
#define TERN_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/ssl.h>

#include "../conf/conf.h"
#include "../deliver/deliver.h"
#include "../queue/queue.h"
#include "../store/store.h"
#include "../table/table.h"
#include "../util/clientkey.h"
#include "../util/util.h"
#include "../workers/workers.h"

/* ---- table lookups off the loop (lookup.c) ----------------------------- */

/*
 * A question to the users/aliases/domains table.  With a remote table
 * (PostgreSQL) ask() runs on a lookup thread that holds its own
 * connection, so a slow or unreachable database delays only the sessions
 * that asked, not the loop; answer() then runs on the loop.  With the
 * embedded SQLite table the caller asks inline (lookups_async() false):
 * a hop through a thread would cost more than the lookup.
 */
struct lookup {
	struct job job;				      /* private */
	struct server *srv;			      /* private */
	uint64_t submitted_ms;			      /* private */
	void (*ask)(struct lookup *, struct table *); /* t NULL: no table */
	void (*answer)(struct lookup *);
	char err[256]; /* table_strerror() after ask */
};

/* The common question: the targets of an address (table_resolve). */
struct resolve_lookup {
	struct lookup lk;
	struct addr addr;	 /* in */
	struct table_targets tt; /* out (table_targets_free) */
	enum table_status st;	 /* out; TEMPFAIL without a table */
};
void resolve_ask(struct lookup *lk, struct table *t);

void lookups_start(struct server *s); /* a pool only for a remote table */
void lookups_stop(struct server *s);
void lookups_reopen(struct server *s); /* SIGHUP: each thread reconnects */
bool lookups_async(const struct server *s);
unsigned lookups_busy(const struct server *s);
/* Async only: ask on a lookup thread, then answer on the loop. */
void lookup_submit(struct server *s, struct lookup *lk);
/* Sync: ask with the loop's table now (the caller then answers itself). */
void lookup_inline(struct server *s, struct lookup *lk);

/* ---- listeners ---------------------------------------------------------- */

enum listener_kind {
	LISTEN_SMTP,
	LISTEN_SUBMISSION,
	LISTEN_SUBMISSIONS,
	LISTEN_LOCAL /* STATE/public/submit.sock: tern sendmail */
};

struct listener {
	enum listener_kind kind;
	const char *name; /* "smtp", "submission", ... */
	int fd;		  /* bound, listening */
	struct evconnlistener *ev;
	struct event *resume; /* re-enables ev after EMFILE */
};

/* ---- the daemon -------------------------------------------------------- */

struct client_count;

struct server {
	struct conf *conf;
	struct event_base *base;
	struct table *table;
	struct workers *workers;
	struct workers *lookups;    /* NULL: the table is asked inline */
	_Atomic unsigned table_gen; /* bumped by SIGHUP (lookup threads) */
	int mail_root_fd;	    /* STATE/mail, O_DIRECTORY */
	struct listener listeners[4];
	unsigned nlisteners;
	unsigned nconns;		      /* open connections */
	struct client_count **client_buckets; /* connections per client key */
	struct conn *conns;		      /* all open connections (list) */
	bool stopping;			      /* SIGTERM seen */
	struct event *stop_timer;
	uint64_t messages;		/* accepted since start */
	size_t body_bytes;		/* message content held in memory */
	uint64_t scratch_bytes;		/* ... and in scratch files */
	uint64_t storing_bytes;		/* content being written by jobs */
	SSL_CTX *tls_ctx;		/* server side: STARTTLS and 465 */
	struct auth_throttle *throttle; /* failed AUTH per client address */
	struct netlist *relay_nets;	/* relay.networks */
	struct spool *spool;		/* STATE/queue */
	struct qmgr *qmgr;		/* the scheduler of the queue */
	struct store *store;		/* Maildir copies, queue commits */
	struct evconnlistener *control; /* STATE/control.sock */
	char smarthost_pass[256];	/* from relay.smarthost_password_file */
};

/* fault.c: test builds only (TERN_FAULT_INJECTION); a no-op otherwise */
void fault_install(void);
/* The directory of $TERN_FAULT_FILE, for the sandbox to let ternd read
 * (NULL in a production build or without the variable). */
const char *fault_sandbox_dir(void);
/* "SANDBOX-PROBE PATH" on control.sock (fault build only): try to open
 * PATH and to execute /bin/true in a child, and answer with the errnos. */
void fault_sandbox_probe(const char *path, struct buf *out);

/* control.c: control.sock and public/submit.sock (after the privdrop) */
int control_listen(struct server *s);
void control_close(struct server *s);

/* ---- the queue manager (qmgr.c) --------------------------------------- */

struct qmgr;
/* Opens nothing: s->spool must be open.  Loads every envelope (spool_scan)
 * and schedules them. */
struct qmgr *qmgr_new(struct server *s);
void qmgr_free(struct qmgr *q);
/* A committed envelope (ownership moves); schedules its first attempt. */
void qmgr_add(struct qmgr *q, struct queue_env *env);
/*
 * RFC 3461 5.2.2: a "delivered" (or "expanded") DSN to sender for the
 * recipients that asked NOTIFY=SUCCESS and were delivered into Maildirs
 * at the end of data.  Built now from msg (the message as received, for
 * RET), stored like every DSN (its sender's Maildir, LMTP or the queue)
 * on a worker; failures are logged, nothing is returned.
 */
struct dsn_delivered_rcpt {
	char *addr;		  /* as given in RCPT */
	char *orcpt_type, *orcpt; /* NULL: no ORCPT */
	bool expanded;		  /* an alias with several targets */
};
struct dsn_delivered {
	const char *id, *sender, *envid; /* envid: NULL or "" for none */
	enum smtp_ret ret;
	bool smtputf8;
	const struct dsn_delivered_rcpt *rcpts;
	size_t nrcpts;
	const char *msg;
	size_t msg_len;
	const char *client_ip; /* the session's (DSN rate limits) */
	bool trusted;	       /* AUTH or local: never rate limited */
};
void qmgr_dsn_delivered(struct qmgr *q, const struct dsn_delivered *d);
bool qmgr_idle(const struct qmgr *q); /* no attempt or job in flight */
/* Control: each replies into out (JSON) and calls done(arg) later. */
void qmgr_control(struct qmgr *q, const char *line, struct buf *out,
    void (*done)(void *arg), void *arg);

/* ---- client networks (relay.networks) --------------------------------- */

struct netlist;
/* "192.0.2.0/24, 2001:db8::/32, 127.0.0.1"; NULL or "" is an empty list */
struct netlist *netlist_parse(const char *csv, char *err, size_t errlen);
bool netlist_match(const struct netlist *nl, const struct sockaddr *sa);
void netlist_free(struct netlist *nl);
bool sockaddr_is_loopback(const struct sockaddr *sa);
/* the address bytes of sa (4 or 16) */
size_t sockaddr_ip_bytes(
    const struct sockaddr *sa, const unsigned char **p_out);

/* ---- TLS contexts (main.c) --------------------------------------------- */

/* Build the server context from tls.cert/tls.key (or the self-signed
 * pair); at start-up failure is fatal, on SIGHUP the old one stays. */
int server_tls_load(struct server *s);

extern struct server *srv; /* the one daemon of this process */

int listeners_bind(struct server *s);	 /* before privdrop */
void listeners_enable(struct server *s); /* on the loop */
void listeners_close(struct server *s);

/*
 * Client keys (util/clientkey.h) of connections: an IPv4 address, an IPv6
 * /64, or on public/submit.sock the peer's uid (SO_PEERCRED; UINT32_MAX if
 * unknown).  Every per-client limit counts by these keys; a later rate
 * limit per client IP calls client_key_from_sockaddr() and hashes with
 * client_key_hash().
 */
void client_key_from_sockaddr(struct client_key *k, const struct sockaddr *sa);
void client_key_of(const struct listener *l, int fd, const struct sockaddr *sa,
    struct client_key *k, unsigned *uid_out);
/* open connections per client key, used by accept and conn_free */
unsigned client_count_get(struct server *s, const struct client_key *k);
void client_count_add(struct server *s, const struct client_key *k, int delta);

/* ---- connections ------------------------------------------------------- */

struct conn;
void conn_new(struct server *s, const struct listener *l, int fd,
    const struct sockaddr *sa, socklen_t salen);
/* SIGTERM: idle sessions get 421 now, busy ones when their step ends. */
void conns_shutdown(struct server *s);
void conns_close_all(struct server *s, const char *why);

/* Server-wide checks.  */
/* Does mail for this local mailbox go over LMTP, through the queue
 * (delivery.lmtp, or the user's row names an lmtp: target)? */
bool server_mailbox_is_lmtp(const struct server *s, const char *mailbox);
/* Free space kept on the file system of STATE/mail and of the scratch
 * files: MAIL, content and the end of data are refused (452 4.3.1) before
 * they would eat into it. */
#define SERVER_DISK_RESERVE ((uint64_t)16 << 20)
bool server_disk_ok(struct server *s, uint64_t need);
void server_maybe_exit(struct server *s);

#endif
