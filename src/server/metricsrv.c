/*
 * metricsrv: GET /metrics on listen.metrics (docs/metrics.md).
 *
 * evhttp on the loop: a scrape samples the gauges, renders the registry
 * into a bounded buffer (METRICSRV_BODY_MAX; the registry's label sets are
 * bounded, so this is never reached in practice and a 500 says so if it
 * is) and hands it to evhttp, which writes it as the socket takes it.
 * Nothing here blocks: /proc reads are of the process's own files.
 *
 * What the network may send is bounded by evhttp: headers at most
 * METRICSRV_HEADERS_MAX octets, no request body (max_body_size 0: a POST
 * with content gets 413), a client that does not finish its request or
 * read its answer in METRICSRV_TIMEOUT_S seconds is dropped.  Any path
 * but /metrics is 404, any method but GET and HEAD on it 405.
 *
 * Connections: libevent 2.1 has no cap on evhttp's (2.2 has
 * evhttp_set_max_connections) and tells nobody when one closes before
 * its first request, so the cap is on admissions: at most
 * METRICSRV_ADMIT connections per METRICSRV_TIMEOUT_S seconds; past
 * that the listener is disabled until the window ends and clients wait
 * in the kernel's backlog.  An idle connection lives at most the timeout,
 * so open connections stay near METRICSRV_ADMIT (a client reading a page
 * slowly but steadily may outlive its window).  Prometheus scrapes over
 * one kept-alive connection.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/keyvalq_struct.h>

#include "metrics/metrics.h"
#include "server/listen.h"
#include "server/lookup.h"
#include "server/metricsrv.h"
#include "server/qmgr.h"
#include "server/server.h"

#define METRICSRV_BODY_MAX    ((size_t)1 << 20)
#define METRICSRV_HEADERS_MAX 8192
#define METRICSRV_TIMEOUT_S   10
#define METRICSRV_ADMIT	      8

struct metricsrv {
	int fd; /* bound, listening; -1 once evhttp owns it */
	struct evhttp *http;
	struct evconnlistener *lev; /* evhttp's, to pause admissions */
	struct event *resume;	    /* the end of a full window */
	uint64_t window_ms;	    /* start of the admission window */
	unsigned admitted;	    /* connections in it */
};

int
metricsrv_bind(struct server *s)
{
	int fd;

	if (s->conf->listen_metrics == NULL)
		return 0;
	if (listen_socket(s->conf->listen_metrics, &fd) != 0)
		return -1;
	s->metrics = xcalloc(1, sizeof(*s->metrics));
	s->metrics->fd = fd;
	log_info(
	    "event=listen listener=metrics addr=%s", s->conf->listen_metrics);
	return 0;
}

/* VmRSS from /proc/self/statm (pages), or -1. */
static int64_t
sample_rss(void)
{
	char text[128];
	unsigned long long size, rss;
	ssize_t n;
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	text[n] = '\0';
	if (sscanf(text, "%llu %llu", &size, &rss) != 2)
		return -1;
	return (int64_t)rss * (int64_t)sysconf(_SC_PAGESIZE);
}

/* Entries of /proc/self/fd but the directory's own descriptor, or -1. */
static int64_t
sample_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	const struct dirent *e;
	int64_t n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;
}

static void
sample_gauges(struct server *s)
{
	size_t depth;
	uint64_t age;
	int64_t v;

	qmgr_depth(s->qmgr, &depth, &age);
	metrics_gauge_set(METRICS_G_QUEUE_MESSAGES, (int64_t)depth);
	metrics_gauge_set(METRICS_G_QUEUE_OLDEST_AGE, (int64_t)age);
	metrics_gauge_set(
	    METRICS_G_LOOKUP_QUEUE, (int64_t)lookups_busy(s->lookups));
	/* a failed sample keeps the last value rather than report 0 */
	if ((v = sample_rss()) >= 0)
		metrics_gauge_set(METRICS_G_RSS_BYTES, v);
	if ((v = sample_fds()) >= 0)
		metrics_gauge_set(METRICS_G_OPEN_FDS, v);
}

static void
reply_error(struct evhttp_request *req, int code, const char *reason)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	if (code == 405)
		evhttp_add_header(h, "Allow", "GET, HEAD");
	evhttp_add_header(h, "Connection", "close");
	evhttp_send_error(req, code, reason);
}

static void
on_request(struct evhttp_request *req, void *arg)
{
	struct server *s = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct evbuffer *body;
	struct buf page;

	if (path == NULL || strcmp(path, "/metrics") != 0) {
		reply_error(req, 404, "Not Found");
		return;
	}
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		reply_error(req, 405, "Method Not Allowed");
		return;
	}
	sample_gauges(s);
	buf_init(&page, METRICSRV_BODY_MAX);
	body = evbuffer_new();
	if (body == NULL || metrics_render(&page) != 0 ||
	    (page.len > 0 && evbuffer_add(body, page.data, page.len) != 0)) {
		log_err("event=metrics_error error=\"exposition past %zu "
			"octets or out of memory\"",
		    METRICSRV_BODY_MAX);
		buf_free(&page);
		if (body != NULL)
			evbuffer_free(body);
		reply_error(req, 500, "Internal Server Error");
		return;
	}
	buf_free(&page);
	evhttp_add_header(
	    h, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	evhttp_send_reply(req, 200, "OK", body);
	evbuffer_free(body);
}

static void
on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct metricsrv *m = arg;

	(void)fd;
	(void)what;
	m->window_ms = time_now_ms();
	m->admitted = 0;
	if (m->lev != NULL)
		evconnlistener_enable(m->lev);
}

/* evhttp's hook for a new connection: counted here, the bufferevent
 * left to evhttp (NULL). */
static struct bufferevent *
on_connection(struct event_base *base, void *arg)
{
	struct metricsrv *m = arg;
	uint64_t now = time_now_ms(), left;

	(void)base;
	if (now - m->window_ms >= METRICSRV_TIMEOUT_S * 1000) {
		m->window_ms = now;
		m->admitted = 0;
	}
	if (++m->admitted >= METRICSRV_ADMIT && m->lev != NULL &&
	    !evtimer_pending(m->resume, NULL)) {
		left = m->window_ms + METRICSRV_TIMEOUT_S * 1000 - now;
		struct timeval tv = {
		    (time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000};

		evconnlistener_disable(m->lev);
		evtimer_add(m->resume, &tv);
		log_warn("event=metrics_busy connections=%u window_s=%d",
		    m->admitted, METRICSRV_TIMEOUT_S);
	}
	return NULL;
}

void
metricsrv_start(struct server *s)
{
	struct evhttp_bound_socket *bound;
	struct metricsrv *m = s->metrics;

	if (m == NULL)
		return;
	if ((m->http = evhttp_new(s->base)) == NULL)
		fatalx("event=startup step=metrics error=evhttp_new");
	/* every method reaches on_request, which answers 405 (evhttp would
	 * say 501 to the ones it was not told of) */
	evhttp_set_allowed_methods(m->http,
	    EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
		EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
		EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	evhttp_set_max_headers_size(m->http, METRICSRV_HEADERS_MAX);
	evhttp_set_max_body_size(m->http, 0);
	evhttp_set_timeout(m->http, METRICSRV_TIMEOUT_S);
	evhttp_set_gencb(m->http, on_request, s);
	evhttp_set_bevcb(m->http, on_connection, m);
	if ((bound = evhttp_accept_socket_with_handle(m->http, m->fd)) ==
		NULL ||
	    (m->resume = evtimer_new(s->base, on_resume, m)) == NULL)
		fatalx("event=startup step=metrics error=evhttp_accept");
	m->fd = -1; /* evhttp_free closes it */
	m->lev = evhttp_bound_socket_get_listener(bound);
	m->window_ms = time_now_ms();
}

void
metricsrv_stop(struct server *s)
{
	struct metricsrv *m = s->metrics;

	if (m == NULL)
		return;
	if (m->resume != NULL)
		event_free(m->resume);
	if (m->http != NULL)
		evhttp_free(m->http);
	if (m->fd >= 0)
		close(m->fd);
	free(m);
	s->metrics = NULL;
}
