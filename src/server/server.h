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
 * fault.h, dsnlimit.h, rootpath.h, sandbox.h, qmgr.h, dkimkeys.h,
 * dkimsign.h.  The worker pool
 * (src/workers/workers.h) and the store (src/store/store.h) are modules
 * of their own.
 *
 * Owns: struct server and ternd itself.  May call: addr, auth, conf,
 * deliver, queue, smtp, store, table, tls, util, workers (mime only
 * through deliver); no module outside src/server calls it.
 */
#ifndef TERN_SERVER_H
#define TERN_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/ssl.h>

#include "conf/conf.h"
#include "deliver/deliver.h"
#include "queue/queue.h"
#include "store/store.h"
#include "table/table.h"
#include "util/clientkey.h"
#include "util/util.h"
#include "workers/workers.h"
#include "server/listen.h"
#include "server/qmgr.h" /* the queue manager */

/* ---- the daemon -------------------------------------------------------- */

struct client_count;
struct srsmap;
struct greylist;
struct dmarc_override;
struct dns;
struct psl;
struct dkimkeys;
struct screen;
struct connrate;
struct policy_pool;
struct metricsrv;
struct reload;
struct acmed;

struct server {
	struct conf *conf;
	struct event_base *base;
	struct workers *workers;
	struct lookups *lookups; /* the table, and its threads (lookup.h) */
	int mail_root_fd;	 /* STATE/mail, O_DIRECTORY */
	struct listener listeners[LISTEN_SLOTS];
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
	struct dns *dns; /* the resolver on the loop (dns.servers): the
			    queue's MX lookups, SPF, DKIM keys, DMARC */
	struct psl *psl; /* the Public Suffix List (dmarc.public_suffix_list),
			    NULL when DMARC is off */
	struct dmarc_override *overrides; /* dmarc.override, parsed */
	size_t noverrides;
	char *overrides_text;		/* their domains point into it */
	struct store *store;		/* Maildir copies, queue commits */
	struct evconnlistener *control; /* STATE/control.sock */
	struct greylist *greylist;	/* STATE/greylist.db; NULL: off */
	struct dmarcrep *dmarcrep;	/* DMARC reports, NULL when off */
	struct tlsrptd *tlsrptd;	/* TLS-RPT reports, NULL when off */
	char smarthost_pass[256];	/* relay.smarthost_password_file at
					   start (a reload: qsettings.h) */
	struct srsmap *srs;	    /* STATE/srs.key; NULL: srs.enable = no */
	struct dkimkeys *dkim;	    /* active DKIM keys (dkimsign.h) */
	struct screen *screen;	    /* screening (screen.h); NULL: off */
	struct connrate *rate;	    /* inbound rate limits (connrate.h) */
	struct policy_pool *policy; /* policy servers' idle connections,
				       a pool per policy.servers list
				       (connpolicy.c); NULL until used */
	struct metricsrv *metrics; /* listen.metrics (metricsrv.h); NULL: off */
	struct reload *reload;	   /* SIGHUP's configurations (reload.h) */
	struct acmed *acme;	   /* ACME orders (acmed.h); NULL: off */
};

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
