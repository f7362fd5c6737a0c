/*
 * httpsrv: evhttp with ternd's bounds and admission cap; see httpsrv.h.
 */
#include <stdlib.h>

#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "server/httpsrv.h"
#include "util/util.h"

struct httpsrv {
	struct evhttp *http;
	struct evconnlistener *lev; /* evhttp's, to pause admissions */
	struct event *resume;	    /* the end of a full window */
	struct httpsrv_limits lim;
	uint64_t window_ms; /* start of the admission window */
	unsigned admitted;  /* connections in it */
};

static void
hs_on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct httpsrv *h = arg;

	(void)fd;
	(void)what;
	h->window_ms = time_now_ms();
	h->admitted = 0;
	if (h->lev != NULL)
		evconnlistener_enable(h->lev);
}

/* evhttp's hook for a new connection: counted here, the bufferevent
 * left to evhttp (NULL). */
static struct bufferevent *
hs_on_connection(struct event_base *base, void *arg)
{
	struct httpsrv *h = arg;
	uint64_t now = time_now_ms(), win = (uint64_t)h->lim.timeout_s * 1000;
	uint64_t left;

	(void)base;
	if (now - h->window_ms >= win) {
		h->window_ms = now;
		h->admitted = 0;
	}
	if (++h->admitted >= h->lim.admit && h->lev != NULL &&
	    !evtimer_pending(h->resume, NULL)) {
		left = h->window_ms + win - now;
		struct timeval tv = {
		    (time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000};

		evconnlistener_disable(h->lev);
		evtimer_add(h->resume, &tv);
		log_warn("event=%s_busy connections=%u window_s=%d",
		    h->lim.name, h->admitted, h->lim.timeout_s);
	}
	return NULL;
}

struct httpsrv *
httpsrv_start(struct event_base *base, int fd, const struct httpsrv_limits *lim,
    void (*cb)(struct evhttp_request *, void *), void *arg)
{
	struct httpsrv *h = xcalloc(1, sizeof(*h));
	struct evhttp_bound_socket *bound;

	h->lim = *lim;
	if ((h->http = evhttp_new(base)) == NULL)
		fatalx("event=startup step=%s error=evhttp_new", lim->name);
	/* every method reaches cb, which answers 404 or 405 (evhttp would
	 * say 501 to the ones it was not told of) */
	evhttp_set_allowed_methods(h->http,
	    EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
		EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
		EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	evhttp_set_max_headers_size(h->http, lim->headers_max);
	evhttp_set_max_body_size(h->http, 0);
	evhttp_set_timeout(h->http, lim->timeout_s);
	evhttp_set_gencb(h->http, cb, arg);
	evhttp_set_bevcb(h->http, hs_on_connection, h);
	if ((bound = evhttp_accept_socket_with_handle(h->http, fd)) == NULL ||
	    (h->resume = evtimer_new(base, hs_on_resume, h)) == NULL)
		fatalx("event=startup step=%s error=evhttp_accept", lim->name);
	h->lev = evhttp_bound_socket_get_listener(bound);
	h->window_ms = time_now_ms();
	return h;
}

const char *
httpsrv_path(struct evhttp_request *req)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);

	return uri != NULL ? evhttp_uri_get_path(uri) : NULL;
}

bool
httpsrv_get_or_head(struct evhttp_request *req)
{
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);

	return cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD;
}

void
httpsrv_error(struct evhttp_request *req, int code, const char *reason)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	if (code == 405)
		evhttp_add_header(h, "Allow", "GET, HEAD");
	evhttp_add_header(h, "Connection", "close");
	evhttp_send_error(req, code, reason);
}

void
httpsrv_free(struct httpsrv *h)
{
	if (h == NULL)
		return;
	if (h->resume != NULL)
		event_free(h->resume);
	if (h->http != NULL)
		evhttp_free(h->http); /* closes the socket */
	free(h);
}
