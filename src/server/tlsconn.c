/*
 * tlsconn: TLS on a connection, with libevent's OpenSSL bufferevents.
 *
 * STARTTLS (RFC 3207): the 220 is queued in plaintext on the socket's own
 * bufferevent, every byte the client sent after STARTTLS is thrown away
 * (section 5; CVE-2011-0411: plaintext pipelined after STARTTLS must never
 * be executed inside the TLS session): the plaintext bufferevent is freed
 * with its input unread, and an OpenSSL bufferevent takes over the socket.
 * (A filter bufferevent stacked on the plain one would keep that input
 * path alive and cannot tell when its last bytes reached the socket.)  The
 * session forgets everything it learnt before (smtp_server_tls_started()), so
 * the client must say EHLO again and STARTTLS is no longer offered.  Implicit
 * TLS (RFC 8314, port 465) wraps the socket before the greeting.  The
 * server context itself is built here too (tlsconn_ctx_load).
 */
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

#include "metrics/metrics.h"
#include "tls/tls.h"
#include "server/conn.h"

/* At start-up (main.c: load_tls) and on SIGHUP. */
int
tlsconn_ctx_load(const struct conf *cf, SSL_CTX **ctx_inout)
{
	char err[512];
	bool generated = false;
	SSL_CTX *ctx = tls_server_ctx(cf->tls_cert, cf->tls_key, cf->state_dir,
	    cf->hostname, &generated, err, sizeof(err));

	/* ACME's pair may be missing (before the first order) or half
	   written (a crash between its two renames): the self-signed pair
	   serves until acmed brings a new one (server/acmed.h) */
	if (ctx == NULL && cf->acme_directory != NULL) {
		log_warn("event=tls_load error=\"%s\" note=\"serving the "
			 "self-signed pair until ACME brings one\"",
		    err);
		ctx = tls_server_ctx(NULL, NULL, cf->state_dir, cf->hostname,
		    &generated, err, sizeof(err));
	}
	if (ctx == NULL) {
		log_err("event=tls_load error=\"%s\"", err);
		return -1;
	}
	if (generated)
		log_info("event=tls_selfsigned hostname=%s path=%s/%s "
			 "note=\"generated "
			 "a self-signed certificate; set tls.cert and tls.key "
			 "for a real one\"",
		    cf->hostname, cf->state_dir, TLS_STATE_SUBDIR);
	SSL_CTX_free(*ctx_inout); /* live connections keep their reference */
	*ctx_inout = ctx;
	return 0;
}

void
tlsconn_describe(const struct conn *c, char *out, size_t outlen)
{
	SSL *ssl = c->bev ? bufferevent_openssl_get_ssl(c->bev) : NULL;

	if (ssl == NULL) {
		if (outlen > 0)
			out[0] = '\0';
		return;
	}
	tls_describe(ssl, out, outlen);
}

static SSL *
tlsconn_ssl(struct conn *c)
{
	SSL *ssl = SSL_new(c->srv->tls_ctx);

	if (ssl == NULL)
		log_err("sid=%s event=tls_error step=SSL_new", c->sid);
	return ssl;
}

/*
 * Write what the plaintext bufferevent still holds, plus the 220, straight
 * to the socket.  It must be on the wire before the handshake starts, and
 * a client that asked for STARTTLS reads its replies, so a socket that
 * cannot take these few bytes now is a broken client: give up on it.
 */
static int
tlsconn_flush_plain(struct conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	size_t n;
	const char *p;

	metrics_replies(c->out.data, c->out.len); /* the 220 go-ahead */
	if (evbuffer_add(out, c->out.data, c->out.len) != 0)
		return -1;
	buf_reset(&c->out);
	n = evbuffer_get_length(out);
	p = (const char *)evbuffer_pullup(out, -1);
	while (n > 0) {
		ssize_t w = send(c->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

void
tlsconn_starttls(struct conn *c, size_t cmd_len)
{
	size_t dropped =
	    evbuffer_get_length(bufferevent_get_input(c->bev)) - cmd_len;
	SSL *ssl;

	if (c->srv->tls_ctx == NULL || (ssl = tlsconn_ssl(c)) == NULL) {
		smtp_server_reject(c->smtp, 454, "4.7.0",
		    "TLS not available due to temporary reason");
		return;
	}
	smtp_server_accept(c->smtp); /* 220 2.0.0 Ready to start TLS */
	if (tlsconn_flush_plain(c) != 0) {
		SSL_free(ssl);
		conn_close_soon(c, "starttls_write");
		return;
	}
	/* the plaintext buffer and whatever it read after STARTTLS go away
	 * unexecuted: RFC 3207 5 */
	if (dropped > 0)
		log_warn("sid=%s event=starttls_injection dropped=%zu", c->sid,
		    dropped);
	bufferevent_free(c->bev);
	c->bev = bufferevent_openssl_socket_new(c->srv->base, c->fd, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		SSL_free(ssl);
		log_err(
		    "sid=%s event=tls_error step=bufferevent_openssl", c->sid);
		conn_close_soon(c, "tls_error");
		return;
	}
	c->tls = true;
	conn_setup_bev(c);
	smtp_server_tls_started(c->smtp);
	submit_update_auth(c);
}

int
tlsconn_wrap_implicit(struct conn *c, int fd)
{
	SSL *ssl = tlsconn_ssl(c);

	if (ssl == NULL)
		return -1;
	c->bev = bufferevent_openssl_socket_new(c->srv->base, fd, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		SSL_free(ssl);
		return -1;
	}
	c->tls = true;
	return 0;
}

void
tlsconn_count(const struct conn *c, bool up)
{
	SSL *ssl = c->bev != NULL ? bufferevent_openssl_get_ssl(c->bev) : NULL;

	if (ssl == NULL)
		return;
	if (up)
		metrics_tls(
		    METRICS_TLS_IN, SSL_get_version(ssl), METRICS_V_NONE);
	else if (!SSL_is_init_finished(ssl))
		metrics_tls_failed(METRICS_TLS_IN);
}
