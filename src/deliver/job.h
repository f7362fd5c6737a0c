/*
 * job: one remote_deliver() as the delivery engine carries it (internal
 * to src/deliver/; remote.h is the interface the queue uses): a copy of
 * the envelope, the message mapped read-only (with its 7-bit plan when it
 * has 8-bit octets), one result per recipient.  A job sits in exactly one
 * place: a destination's FIFO, a connection, or the engine's done list.
 *
 * Owns: struct rjob and its queues.  May call: smtp, mime, dns, util;
 * only remote.c (and job.c itself) call it.
 */
#ifndef TERN_JOB_H
#define TERN_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smtp/smtp.h"
#include "deliver/dns.h"
#include "deliver/remote.h"

struct remote;
struct rjob;

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
	bool requiretls, tls_required_no; /* RFC 8689 (reqtls.h) */
	enum smtp_ret ret;
	char *lmtp; /* LMTP target, or NULL */
	char *map;  /* the message, read-only; NULL if empty */
	size_t maplen;
	void *mapbase; /* the mapping map is in (from a page boundary) */
	size_t mapbaselen;
	struct mime_plan *plan; /* its 7-bit form, if it has 8-bit octets */
	remote_done_fn done;
	void *arg;
	struct smtp_client_result *results;
	char mx[DNS_NAME_MAX + 3];
	const char *tls_policy; /* static: the last session's TLS policy
				   (tlspolicy.h), NULL: none (smarthost) */
	bool tls_verified;	/* ... and whether its peer was verified */
};

void jobq_init(struct jobq *q);
void jobq_push(struct jobq *q, struct rjob *j);
struct rjob *jobq_pop(struct jobq *q);
/* Free every job whose arg is arg (all when all); returns how many. */
size_t jobq_drop(struct jobq *q, void *arg, bool all);

/* A copy of m (not yet mapped: job_map); job_free(NULL) is a no-op. */
struct rjob *job_new(
    const struct remote_msg *m, remote_done_fn done, void *arg);
void job_free(struct rjob *j);
/* Map len octets at off in fd read-only; 0, or -1 with err filled. */
int job_map(struct rjob *j, int fd, uint64_t off, uint64_t len, char *err,
    size_t errlen);
/* The message part of a client configuration (helo from r). */
void job_client_conf(
    const struct remote *r, const struct rjob *j, struct smtp_client_conf *cf);
/* The TLS policy (a static name, or NULL) the job's last attempt ran
 * under and whether the peer was verified: on its result log lines. */
void job_set_tls(struct rjob *j, const char *policy, bool verified);
/* Every recipient of j gets res. */
void job_set_all(struct rjob *j, const struct smtp_client_result *res);
/* The job's results are final: log them, queue its callback on r. */
void job_finish(
    struct remote *r, struct rjob *j, const char *mx_log, const char *addr_log);

#endif
