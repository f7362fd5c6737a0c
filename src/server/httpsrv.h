/*
 * httpsrv.h: the bounded evhttp server ternd's HTTP listeners share
 * (httpsrv.c): the metrics page (metricsrv.c) and ACME's HTTP-01 answers
 * (acmed.c).
 *
 * What the network may send is bounded here: headers at most
 * headers_max octets, no request body (max_body_size 0: a request with
 * content gets 413), a client that does not finish its request or read
 * its answer in timeout_s seconds is dropped.  Every method reaches the
 * handler (which answers 404 or 405 itself).
 *
 * Connections: libevent 2.1 has no cap on evhttp's (2.2 has
 * evhttp_set_max_connections) and tells nobody when one closes before
 * its first request, so the cap is on admissions: at most admit
 * connections per timeout_s seconds; past that the listener is disabled
 * until the window ends (logged once as event=NAME_busy) and clients wait
 * in the kernel's backlog.  An idle connection lives at most the timeout,
 * so open connections stay near admit.
 *
 * Owns: the evhttp server, the socket handed to it, the resume timer.
 * May call: util, libevent.  Event loop only.
 */
#ifndef TERN_SERVER_HTTPSRV_H
#define TERN_SERVER_HTTPSRV_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>
#include <event2/http.h>

struct httpsrv_limits {
	const char *name; /* "metrics": the busy line's event=NAME_busy */
	size_t headers_max;
	int timeout_s;
	unsigned admit;
};

struct httpsrv;

/* Serve the bound, listening fd (owned from here on) with cb(req, arg);
 * fatal when evhttp cannot be set up (start-up only). */
struct httpsrv *httpsrv_start(struct event_base *base, int fd,
    const struct httpsrv_limits *lim,
    void (*cb)(struct evhttp_request *, void *), void *arg);
/* Stop serving and close the socket; NULL-safe. */
void httpsrv_free(struct httpsrv *h);

/* What a handler asks of a request: its path (NULL when it has none) and
 * whether its method is GET or HEAD, the only ones either listener serves. */
const char *httpsrv_path(struct evhttp_request *req);
bool httpsrv_get_or_head(struct evhttp_request *req);
/* An error answer that closes the connection; a 405 names GET and HEAD
 * in its Allow header. */
void httpsrv_error(struct evhttp_request *req, int code, const char *reason);

#endif
