/*
 * metricsrv.h: the Prometheus endpoint of ternd (metricsrv.c), on
 * listen.metrics, served by libevent's evhttp on the event loop.
 *
 * Owns: the listening socket (bound before the privilege drop, as the
 * SMTP listeners are) and the evhttp server; the gauges a scrape samples
 * (queue depth and age, lookup queue, RSS, descriptors).  May call:
 * metrics, qmgr (qmgr_depth), lookup (lookups_busy), listen
 * (listen_socket).  Event loop only, except metricsrv_bind.
 */
#ifndef TERN_SERVER_METRICSRV_H
#define TERN_SERVER_METRICSRV_H

struct server;

/* Bind listen.metrics when set (as root, before the drop); 0 or -1
 * (logged). */
int metricsrv_bind(struct server *s);
/* Serve on the loop (nothing when the key is unset). */
void metricsrv_start(struct server *s);
/* Stop serving and close the socket; NULL-safe, idempotent. */
void metricsrv_stop(struct server *s);

#endif
