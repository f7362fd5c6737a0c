/*
 * tlsconn.h: TLS for ternd's sessions (tlsconn.c): the server context and
 * TLS on a connection (STARTTLS, RFC 3207; implicit TLS on 465, RFC 8314).
 *
 * Owns: nothing long-lived: the SSL_CTX it builds belongs to the caller
 * (struct server's tls_ctx; live connections keep their reference), an
 * SSL to its connection's bufferevent.  May call: tls, util, and
 * conn.h's session functions.  Event loop only.
 */
#ifndef TERN_SERVER_TLSCONN_H
#define TERN_SERVER_TLSCONN_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "conf/conf.h"

struct conn;

/* Build the server context from tls.cert/tls.key (or the self-signed
 * pair; also when acme.directory is set and tls.cert does not load yet)
 * into *ctx_inout, freeing the old one; on failure (logged) -1,
 * *ctx_inout unchanged.  At start-up the caller makes that fatal; on SIGHUP the
 * old context stays. */
int tlsconn_ctx_load(const struct conf *cf, SSL_CTX **ctx_inout);
/* cmd_len: octets of the STARTTLS line still in the input buffer */
void tlsconn_starttls(struct conn *c, size_t cmd_len);
int tlsconn_wrap_implicit(struct conn *c, int fd);
void tlsconn_describe(const struct conn *c, char *out, size_t outlen);
/* The metrics of a session's handshake: up (done), or an error on the
 * connection before it was done. */
void tlsconn_count(const struct conn *c, bool up);

#endif
