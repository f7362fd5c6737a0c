/*
 * tls: OpenSSL 3 contexts and policy for ternd.
 *
 * Owns: building and swapping the SSL_CTXs, their policy, and the
 * self-signed pair under STATE/tls.  May call: util, fs/file.h (its
 * durable writes) and OpenSSL.  Called by server (accepting) and
 * deliver/remote.c (sending).
 *
 * The server context serves STARTTLS (RFC 3207) on the MX and submission
 * ports and implicit TLS (RFC 8314) on submissions; the client context is
 * for outbound delivery.  Both speak TLS 1.2 and 1.3 only, with OpenSSL's
 * default cipher lists, no compression and no renegotiation.
 *
 * Contexts are built at start-up and on SIGHUP (build a new one, swap it
 * in for new connections, SSL_CTX_free() the old: live connections hold
 * their own reference).  Errors come back as text in err, naming the file
 * at fault; the OpenSSL error queue is left empty.
 */
#ifndef TERN_TLS_H
#define TERN_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "util/util.h"

/* Where the self-signed pair lives, under state_dir. */
#define TLS_STATE_SUBDIR "tls"
#define TLS_STATE_CERT	 "cert.pem"
#define TLS_STATE_KEY	 "key.pem"
/* Validity of a generated certificate. */
#define TLS_SELF_SIGNED_DAYS 3650

/*
 * Server context.  cert is a PEM file with the certificate first and any
 * intermediates after it (e.g. Let's Encrypt's fullchain.pem); key its
 * PEM private key.  Give both or neither: with neither, state_dir/tls/
 * cert.pem and key.pem are used, and made on first use (EC P-256,
 * self-signed, CN and subjectAltName DNS = hostname, 10 years); then
 * *generated_out is set to true so the caller can log
 * "generated self-signed certificate for HOST in PATH".  generated_out may
 * be NULL.  The key must match the certificate.  Returns NULL with a
 * message in err on failure.
 */
SSL_CTX *tls_server_ctx(const char *cert, const char *key,
    const char *state_dir, const char *hostname, bool *generated_out, char *err,
    size_t errlen) WUR;

/*
 * Client context for delivery.  Trusted CAs: those in ca_file (PEM, one
 * or more certificates) and, with tls_client_ctx_store(), ca_path (a
 * directory hashed by `openssl rehash`) when either is not NULL, and then
 * only those (tls.ca_file, tls.ca_path); else the system store (/etc/ssl/certs,
 * SSL_CTX_set_default_verify_paths).
 * The chain and the name given to tls_client_set_host() are checked on
 * every handshake either way, so tls_peer_verified() can tell the caller
 * whether the peer proved who it is.  verify false: the handshake goes on
 * whatever the outcome (opportunistic TLS, what MX delivery does without
 * DANE or MTA-STS).  verify true: it fails unless the peer verified.  An
 * unreadable ca_file is an error naming it; a missing system store only
 * when verify is true.  New sessions go to the tls_sess_cache the SSL was
 * offered to (tls/sesscache.h), if any.
 */
SSL_CTX *tls_client_ctx(
    bool verify, const char *ca_file, char *err, size_t errlen) WUR;
/* The same with a CA directory too (tls.ca_path); NULL for none. */
SSL_CTX *tls_client_ctx_store(bool verify, const char *ca_file,
    const char *ca_path, char *err, size_t errlen) WUR;
/*
 * Per connection, before SSL_connect(): send host as SNI (unless it is an
 * IP literal) and make it the name the certificate must match when the
 * context verifies.  0 ok, -1 on failure.
 */
int tls_client_set_host(SSL *ssl, const char *host) WUR;

/*
 * After a client handshake: true when the peer presented a certificate
 * that chains to a trusted CA and matches the name given to
 * tls_client_set_host().  When false, why gets the reason for a log line
 * ("self-signed certificate", "hostname mismatch", "no certificate"...);
 * "" when true.  why is always NUL-terminated (cut to whylen).
 */
bool tls_peer_verified(const SSL *ssl, char *why, size_t whylen);

/*
 * "version=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384" for log lines and
 * Received headers; "version=none cipher=none" before a handshake.  Always
 * NUL-terminated (cut to outlen).
 */
void tls_describe(const SSL *ssl, char *out, size_t outlen);

#endif
