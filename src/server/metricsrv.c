/*
 * metricsrv: GET /metrics on listen.metrics (docs/metrics.md).
 *
 * evhttp on the loop: a scrape samples the gauges, renders the registry
 * into a bounded buffer (METRICSRV_BODY_MAX; the registry's label sets are
 * bounded, so this is never reached in practice and a 500 says so if it
 * is) and hands it to evhttp, which writes it as the socket takes it.
 * Nothing here blocks: /proc reads are of the process's own files.
 *
 * What the network may send, and how many connections, is bounded by
 * server/httpsrv.h (METRICSRV_HEADERS_MAX octets of headers, no body,
 * METRICSRV_TIMEOUT_S seconds a client, METRICSRV_ADMIT admissions per
 * window).  Any path but /metrics is 404, any method but GET and HEAD on
 * it 405.  Prometheus scrapes over one kept-alive connection.
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
#include <event2/keyvalq_struct.h>

#include "metrics/metrics.h"
#include "server/httpsrv.h"
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
	int fd; /* bound, listening; -1 once httpsrv owns it */
	struct httpsrv *http;
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
on_request(struct evhttp_request *req, void *arg)
{
	struct server *s = arg;
	const char *path = httpsrv_path(req);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct evbuffer *body;
	struct buf page;

	if (path == NULL || strcmp(path, "/metrics") != 0) {
		httpsrv_error(req, 404, "Not Found");
		return;
	}
	if (!httpsrv_get_or_head(req)) {
		httpsrv_error(req, 405, "Method Not Allowed");
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
		httpsrv_error(req, 500, "Internal Server Error");
		return;
	}
	buf_free(&page);
	evhttp_add_header(
	    h, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	evhttp_send_reply(req, 200, "OK", body);
	evbuffer_free(body);
}

void
metricsrv_start(struct server *s)
{
	static const struct httpsrv_limits lim = {"metrics",
	    METRICSRV_HEADERS_MAX, METRICSRV_TIMEOUT_S, METRICSRV_ADMIT};
	struct metricsrv *m = s->metrics;

	if (m == NULL)
		return;
	m->http = httpsrv_start(s->base, m->fd, &lim, on_request, s);
	m->fd = -1; /* httpsrv_free closes it */
}

void
metricsrv_stop(struct server *s)
{
	struct metricsrv *m = s->metrics;

	if (m == NULL)
		return;
	httpsrv_free(m->http);
	if (m->fd >= 0)
		close(m->fd);
	free(m);
	s->metrics = NULL;
}
