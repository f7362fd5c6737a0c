/*
 * dest: the destinations of remote delivery (internal to src/deliver/;
 * remote.h is the interface the queue uses).  A destination is a domain,
 * the one smarthost ("" as key) or an LMTP server (REMOTE_LMTP_KEY and its
 * target): its FIFO of waiting jobs, its connection slots, and the last
 * good DNS answer, with the MX hosts that are this server taken out.
 *
 * A destination also keeps its pace (queue/slowdown.h): a receiver that
 * answers 421 or 4.7.x, or cannot be reached, lowers the connections it
 * gets and makes new ones wait; deliveries raise them again.  The state
 * lives in memory only, for one ternd run: an idle destination keeps it
 * until it is back at rest or SLOWDOWN_FORGET after its last signal.
 *
 * Owns: struct dest and the DNS cache.  May call: dns, job, remote_int,
 * queue/slowdown, util; only remote.c and job.c call it.
 */
#ifndef TERN_DEST_H
#define TERN_DEST_H

#include <stdbool.h>
#include <stdint.h>

#include "queue/slowdown.h"
#include "deliver/dns.h"
#include "deliver/mtasts.h"
#include "deliver/remote.h"
#include "deliver/remote_int.h"

struct event;

#define REMOTE_LMTP_KEY                                                        \
	"[lmtp]" /* prefix of LMTP destinations' keys                          \
			("[lmtp]unix:/path"): no domain or                     \
			literal looks like it */

struct rdest {
	struct rdest *next; /* hash chain */
	struct remote *r;
	char *key;   /* domain; "" for the smarthost */
	char *query; /* what dns_resolve_mx() gets */
	uint16_t port;
	bool smarthost;
	bool lmtp;	 /* an LMTP server (unix socket or host) */
	char *lmtp_unix; /* its socket path, or NULL for a host */
	struct jobq wait;
	struct rconn *conns;
	unsigned nconns;
	struct dns_result *res; /* last DNS_OK answer, or NULL */
	uint64_t res_ms;
	bool resolving;
	struct slowdown slow;  /* the pace: connections allowed, pause */
	struct event *ev_slow; /* the end of a pause, or forgetting */
	struct smtp_client_result slow_reply; /* the last slow-down signal */
	/* the TLS policy (dest_tls_policy): the MTA-STS verdict that applies,
	   NULL for none; asked again with each MX lookup */
	struct mtasts_verdict *sts;
	bool sts_asking, sts_fresh;
	char slow_mx[DNS_NAME_MAX + 3]; /* and the host that sent it */
};

/* The destination of key (lower case), made if r has none. */
struct rdest *dest_get(struct remote *r, const char *key);
/* Unlink and free d; its jobs and connections must be gone. */
void dest_free(struct rdest *d);
/* Every waiting job gets res (the destination failed as a whole). */
void dest_fail_waiting(
    struct rdest *d, const struct smtp_client_result *res, const char *mx);
/* End of every top-level callback: use free slots, free an idle d. */
void dest_settle(struct rdest *d);
/*
 * The receiver asked to slow down (a 421 or 4.7.x reply) or could not be
 * reached, on a connection opened in *epoch (rconn's copy of
 * d->slow.epoch); res is that reply or failure (TEMP), from host mx.
 * Logged as event=dest_throttle when it changes the pace.
 */
void dest_slow_signal(struct rdest *d, unsigned *epoch,
    const struct smtp_client_result *res, const char *mx);
/* A message was delivered to d. */
void dest_slow_success(struct rdest *d);
/* Our listening sockets and, for wildcard ones, this machine's addresses. */
void dest_set_self(struct remote *r, const struct remote_conf *conf);

#endif
