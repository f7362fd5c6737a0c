/*
 * remote_int: what the delivery shell (remote.c) shares with its
 * destination pool (dest.c); nothing outside src/deliver/ includes it.
 * The engine (struct remote), the jobs it carries (struct rjob) and their
 * FIFOs, and the functions of remote.c that dest.c calls: a job's results
 * are final (job_finish), a connection slot opens for a job (rconn_new).
 * See remote.c for the objects and their invariants.
 */
#ifndef TERN_REMOTE_INT_H
#define TERN_REMOTE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "../smtp/smtp.h"
#include "../util/util.h"
#include "dns.h"
#include "remote.h"

#define REMOTE_BUCKETS	  1024 /* destination hash table */

struct rjob;
struct rdest;
struct rconn;

struct jobq {
	struct rjob *head;
	struct rjob **tail;
};

struct rjob {
	struct rjob *next;
	char *id, *sender, *envid;
	struct smtp_client_rcpt *rcpts;
	size_t nrcpts;
	uint64_t size;
	bool body_8bit, smtputf8;
	enum smtp_ret ret;
	char *lmtp; /* LMTP target, or NULL */
	char *map; /* the message, read-only; NULL if empty */
	size_t maplen;
	struct mime_plan *plan; /* its 7-bit form, if it has 8-bit octets */
	remote_done_fn done;
	void *arg;
	struct smtp_client_result *results;
	char mx[DNS_NAME_MAX + 3];
};

struct remote {
	struct event_base *base;
	struct dns *dns;
	SSL_CTX *ctx, *sm_ctx; /* MX delivery; the smarthost (or NULL: ctx) */
	char *helo, *sm_query, *sm_user, *sm_pass;
	char *sm_host; /* the name its certificate must match */
	uint16_t port, sm_port;
	enum remote_tls sm_tls;
	bool sm_implicit; /* smtps: TLS before the greeting */
	unsigned max_per_dest, t_connect, t_command;
	struct sockaddr_storage self[REMOTE_SELF_MAX]; /* our listeners */
	size_t nself;
	struct dns_addr ifaddrs[REMOTE_IFADDR_MAX]; /* at remote_new() */
	size_t nifaddrs;
	struct rdest *buckets[REMOTE_BUCKETS];
	struct jobq done;
	struct event *done_ev;
	unsigned nconns;
	bool firing, free_pending;
};

/* vsnprintf that marks a cut text with "..." */
void text_fmt(char *out, size_t outlen, const char *fmt, ...)
    PRINTF_LIKE(3, 4);
void result_make(struct smtp_client_result *res, enum smtp_result_class cls,
    int code, const char *enh, const char *text);

void jobq_init(struct jobq *q);
void jobq_push(struct jobq *q, struct rjob *j);
struct rjob *jobq_pop(struct jobq *q);

/* Every recipient of j gets res. */
void job_set_all(struct rjob *j, const struct smtp_client_result *res);
/* The job's results are final: log them, queue its callback. */
void job_finish(
    struct remote *r, struct rjob *j, const char *mx_log, const char *addr_log);

/* A connection slot of d for j, counted in d at once; it walks d->res. */
void rconn_new(struct rdest *d, struct rjob *j);

#endif
