/*
 * server: ternd's shell around the pure protocol core.  One libevent loop
 * runs the network, timers and signals; blocking disk work (Maildir
 * delivery, fsync) runs on a small pool of worker threads whose
 * completions come back to the loop through an eventfd.  Only the loop
 * thread touches connections and the core; a remote table is asked by a
 * second pool (lookup.h), each thread with its own connection.  A job
 * owns its arguments until its completion has run on the loop.
 *
 * This header: struct server, the daemon's context, and the daemon-wide
 * checks.  There is no global: every sub-module gets its server
 * explicitly (a listener's srv, c->srv, a callback's arg).  Each
 * sub-module has its own header saying what it owns and may call:
 * listen.h, conn.h, submit.h, tlsconn.h, control.h, lookup.h, netlist.h,
 * fault.h, dsnlimit.h, rootpath.h, sandbox.h; the worker pool, inject and
 * the queue manager are below, for now.
 *
 * Owns: struct server and ternd itself.  May call: addr, auth, conf,
 * deliver, queue, smtp, table, tls, util (mime only through deliver); no
 * module outside src/server calls it.
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
#include "../table/table.h"
#include "../util/clientkey.h"
#include "../util/util.h"
#include "listen.h"
#include "qmgr.h" /* the queue manager */

/* ---- worker pool ------------------------------------------------------- */

struct job {
	void (*run)(struct job *);  /* on a worker thread */
	void (*done)(struct job *); /* then on the loop thread */
	struct job *next;	    /* private */
};

struct workers;
struct workers *workers_start(struct event_base *base, unsigned nthreads);
void workers_submit(struct workers *w, struct job *j);
unsigned workers_busy(const struct workers *w); /* jobs not yet done */
/* fn(arg) after the loop has run a batch of done() calls */
void workers_on_drained(struct workers *w, void (*fn)(void *), void *arg);
void workers_stop(struct workers *w); /* joins the threads */

/* ---- the daemon -------------------------------------------------------- */

struct client_count;

struct server {
	struct conf *conf;
	struct event_base *base;
	struct workers *workers;
	struct lookups *lookups; /* the table, and its threads (lookup.h) */
	int mail_root_fd;	 /* STATE/mail, O_DIRECTORY */
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
	struct evconnlistener *control; /* STATE/control.sock */
	char smarthost_pass[256];	/* from relay.smarthost_password_file */
	/* group commit of Maildir deliveries (inject.c) */
	struct inject *commit_head,
	    *commit_tail; /* waiting for the next batch */
	size_t commit_n;
	bool commit_running;
	unsigned staging; /* tmp/ files being written */
	unsigned solo;	  /* lone messages on the fsync path */
	uint64_t commit_batches, commit_messages;
};

/* ---- inject: the durable store of an accepted message (inject.c) ------ */

struct inject {
	struct job job;
	struct server *srv;
	/* in: content = return_path (Maildir copies only) + head + body */
	struct buf return_path;
	struct buf head;
	const char *body; /* not owned */
	size_t body_len;
	struct maildir_box *boxes; /* local copies; owned (free) */
	size_t nboxes;
	struct queue_env *env; /* remote recipients or NULL; owned */
	/* out */
	int rc, err_no;
	bool queued; /* env went to the queue (qmgr has it) */
	char err[256];
	char name[160]; /* Maildir file name */
	void (*done)(struct inject *);
	void *arg;
	struct inject *next;	       /* in a group-commit batch */
	struct maildir_staged *staged; /* written to tmp/, not yet linked */
};

void inject_init(struct inject *ij, struct server *s);
void inject_submit(struct inject *ij, void (*done)(struct inject *));
/* The store itself, on a worker thread that is already running a job. */
void inject_store(struct inject *ij);
void inject_clear(struct inject *ij);

/* ---- the daemon-wide checks (conn.c, main.c) ---------------------- */

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
