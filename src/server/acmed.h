/*
 * acmed: certificates from ACME (RFC 8555) in ternd (docs/tls-auth.md,
 * "Certificates from ACME").
 *
 * At start and every ACMED_CHECK_SECS: when the pair at tls.cert/tls.key
 * is missing, does not load, does not name every acme.domains name or
 * expires within acme.renew_before, an order is run on the worker pool
 * (acme/client.h, blocking, never on the loop) with a new certificate key
 * for every order.  The pair is written beside the old one and renamed
 * over it (key first, then the certificate; fsync'ed, the directory too),
 * then loaded as SIGHUP loads it (tlsconn_ctx_load: new sessions get the
 * new context, live ones keep theirs).  A failure is logged once, with
 * the wait before the next try: acme.retry_first doubled per failure in
 * a row, at most a day.
 *
 * HTTP-01 (RFC 8555 8.3): with acme.http, ternd answers GET
 * /.well-known/acme-challenge/TOKEN itself, on the loop (evhttp), with the
 * key authorization while an order waits for it, and 404 to everything
 * else; with acme.webroot, the token files are written under
 * WEBROOT/.well-known/acme-challenge/ for the administrator's web server
 * and removed after.
 *
 * State: STATE/acme/ (0700): account.key (PKCS#8 PEM, EC P-256, made on
 * first use) and account.url (the account's URL, one line); the format's
 * version is "acme" in STATE/versions (docs/formats.md).
 *
 * Owns: struct acmed (the listener, the timer, the one order in flight,
 * the challenges served).  May call: acme, tlsconn.h, fs, workers, util,
 * libevent, struct server.  Loop only, except acmed_bind (start-up, as
 * root, before the privilege drop: port 80).
 */
#ifndef TERN_SERVER_ACMED_H
#define TERN_SERVER_ACMED_H

#include <stdbool.h>

struct server;

#define ACMED_CHECK_SECS   3600	 /* the pair is looked at this often */
#define ACMED_RETRY_MAX	   86400 /* the longest wait after failures */
#define ACMED_HTTP_TIMEOUT 10	 /* s: a challenge client's whole time */
#define ACMED_HTTP_HEADERS 4096	 /* octets of a request's headers */
#define ACMED_HTTP_ADMIT   16	 /* connections per ACMED_HTTP_TIMEOUT */
#define ACMED_FILE_MAX	   ((size_t)1 << 20) /* a PEM file read back */

/* acme.directory set: make struct acmed and bind acme.http when set.
 * 0, or -1 (logged): the caller makes it fatal. */
int acmed_bind(struct server *s);
/* Serve acme.http and run the first check (after the workers exist). */
void acmed_start(struct server *s);
/* SIGHUP: the next check now (acme.domains or tls.cert may have changed). */
void acmed_reloaded(struct server *s);
/* SIGTERM: no new order; one in flight is told to stop. */
void acmed_stop(struct server *s);
/* No order in flight. */
bool acmed_idle(const struct server *s);
void acmed_free(struct server *s);

#endif
