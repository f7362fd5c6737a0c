/*
 * remote_int: what the delivery shell (remote.c) shares with its
 * destination pool (dest.c) and its jobs (job.c); nothing outside
 * src/deliver/ includes it.  The engine (struct remote), the small
 * helpers, and rconn_new(): a connection slot opens for a job.
 * See remote.c for the objects and their invariants.
 *
 * Owns: nothing of its own (shared declarations).  May call what remote.h
 * may; only src/deliver/ includes it.
 */
#ifndef TERN_REMOTE_INT_H
#define TERN_REMOTE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "smtp/smtp.h"
#include "util/util.h"
#include "deliver/dns.h"
#include "deliver/job.h"
#include "deliver/remote.h"

#define REMOTE_BUCKETS 1024 /* destination hash table */
/* TLS sessions kept for resumption (tls/sesscache.h): per (name,
   address, port, policy) one for each concurrent connection, 1024 in all,
   for at most an hour (Postfix's smtp_tls_session_cache_timeout default),
   less when the peer says so */
#define REMOTE_TLS_SESSIONS	1024
#define REMOTE_TLS_SESSION_LIFE 3600
/* A session whose job is done and which has no waiting job to take stays
   open this long for the next message to the destination, then QUITs:
   under a steady flow the next job comes within milliseconds and saves a
   TCP handshake, a greeting, EHLO (and STARTTLS) and QUIT; 2 s is
   Postfix's smtp_connection_cache_time_limit, far below the 5 minutes a
   server must wait for a client's next command (RFC 5321 4.5.3.2.7) */
#define REMOTE_IDLE_SECS 2

struct rdest;
struct rconn;
struct tls_sess_cache;
struct tlspol_map;
struct sts_policy;

struct remote {
	struct event_base *base;
	struct dns *dns;
	SSL_CTX *ctx, *sm_ctx; /* MX delivery; the smarthost (or NULL: ctx) */
	struct mtasts *sts;    /* MTA-STS policies, or NULL (mtasts.h) */
	SSL_CTX *sts_ctx;      /* verifying, for MTA-STS enforce; or NULL */
	struct tls_sess_cache *tls_sessions; /* for resumption (remote.c) */
	char *helo, *sm_query, *sm_user, *sm_pass;
	char *sm_host; /* the name its certificate must match */
	uint16_t port, sm_port;
	enum remote_tls sm_tls;
	bool sm_implicit; /* smtps: TLS before the greeting */
	unsigned max_per_dest, t_connect, t_command;
	char *dest_conc; /* remote_conf.destination_concurrency, or NULL */
	struct sockaddr_storage self[REMOTE_SELF_MAX]; /* our listeners */
	size_t nself;
	struct dns_addr ifaddrs[REMOTE_IFADDR_MAX]; /* at remote_new() */
	size_t nifaddrs;
	struct rdest *buckets[REMOTE_BUCKETS];
	struct jobq done;
	struct event *done_ev;
	unsigned nconns;
	bool firing, free_pending;
	bool retiring; /* remote_retire(): freed with its last conn */
	struct remote *retired_next; /* the list remote_free_retired() walks */
	bool stopping; /* remote_stop(): no job waits for a pause */
	bool dnssec;   /* remote_conf.dnssec: DANE for MX hosts */
	struct tlspol_map *tls_map; /* [tls_policy] (deliver/tlspolicy.h) */
	struct tlsrpt *tlsrpt;	    /* remote_conf.tlsrpt, or NULL */
};

/* A copy of s, or NULL for NULL. */
char *dup_or_null(const char *s);

/*
 * TLS-RPT (RFC 8460) for d's domain as a whole, before any session
 * (dest.c): an MTA-STS policy that could not be had (result
 * "sts-policy-fetch-error", "sts-policy-invalid", "sts-webpki-invalid";
 * sp NULL), or an enforce policy sp that no MX host matches
 * ("validation-failure").  Counted as one failed session of the domain's
 * sts policy, why as its failure-reason-code.  Reports off: nothing.
 */
void remote_tlsrpt_domain(struct rdest *d, const struct sts_policy *sp,
    const char *result, const char *why);

/* A connection slot of d for j, counted in d at once; it walks d->res. */
void rconn_new(struct rdest *d, struct rjob *j);

/*
 * A session of d left idle after its last job (REMOTE_IDLE_SECS) takes
 * the first waiting job: true when one did (the job may have finished at
 * once), false when d has no idle session.  rconn_idle_quit: every idle
 * session of d QUITs now (ternd stopping).
 */
bool rconn_idle_take(struct rdest *d);
void rconn_idle_quit(struct rdest *d);

#endif
