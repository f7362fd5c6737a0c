/*
 * sesscache: outbound TLS session resumption (another small interface of
 * the tls module, beside tls.h).
 *
 * Owns: struct tls_sess_cache, the client's SSL_SESSIONs, up to
 * TLS_SESS_PER_PEER per peer and policy.  May call: util and OpenSSL.  Called
 * by deliver/remote.c (offering a session before each client handshake) and
 * tls.c (the contexts of tls_client_ctx() hand every new session to it).
 *
 * A session is kept under its whole key: the name sent as SNI and checked
 * against the certificate, the peer's address and port, and the caller's
 * policy tag (its TLS policy and verification mode).  A resumed handshake
 * checks no certificate: the peer's certificate and verify result come
 * back from the session (SSL_set_session() restores them), so a session
 * is only ever offered where the same name, under the same policy, was
 * checked the same way.  A session made under opportunistic TLS (any
 * certificate) therefore never satisfies a policy that verifies (the
 * smarthost's "verify" today; DANE and MTA-STS later get tags of their
 * own), and a lookup that needs a verified peer also refuses a session
 * that was not verified, whatever its tag.  docs/tls-auth.md says the
 * same.
 *
 * TLS 1.3 tickets arrive after the handshake, with the peer's first
 * records: tls_client_ctx() sets SSL_SESS_CACHE_CLIENT and installs
 * tls_sess_cache_on_new() as the new-session callback, which stores each
 * one under the key tls_sess_cache_offer() attached to the SSL.
 *
 * A session is offered on one handshake at a time: taken out of the
 * cache, newest first.  A TLS 1.3 ticket is for one use (RFC 8446 C.4),
 * and OpenSSL's client marks it not resumable once it resumed: offered
 * on several concurrent handshakes, it served about half of them (bench
 * scenario J).  Servers send new ones after each handshake (OpenSSL: two
 * after a full one, one after a resumption), so a peer keeps up to
 * TLS_SESS_PER_PEER for its concurrent connections.
 * tls_sess_cache_done() puts a session back when the peer resumed it,
 * sent none newer and it is still resumable (TLS 1.2).
 *
 * OpenSSL marks a session not resumable when its connection is freed
 * without a close_notify (SSL_shutdown); the caller sends one after the
 * peer's 221 to QUIT.  Such a session, an expired one or one past the
 * cache's cap is dropped when it is next looked at.
 *
 * Event loop only (not thread-safe).  The cache must outlive every read
 * and handshake on an SSL it was offered to (the callback runs inside
 * them); freeing the SSL later is fine.
 */
#ifndef TERN_TLS_SESSCACHE_H
#define TERN_TLS_SESSCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/ssl.h>

#define TLS_SESS_NAME_MAX 255 /* a DNS name (RFC 1035 3.1) or an address */
#define TLS_SESS_ADDR_MAX 46  /* INET6_ADDRSTRLEN */
/* sessions kept per peer: one for each of its concurrent connections
   (remote.c opens at most 10 per destination) */
#define TLS_SESS_PER_PEER 10

struct tls_sess_cache;

struct tls_sess_key {
	const char *name; /* SNI and the name the certificate must match */
	const char *addr; /* the peer's address, as text */
	uint16_t port;
	unsigned policy; /* the caller's TLS policy and verification mode:
			    sessions never cross from one tag to another */
};

/*
 * A cache of at most max_sessions sessions (the oldest of the least
 * recently used peer goes first when full), each kept for its own
 * lifetime (the ticket's lifetime hint or the session's timeout) but at
 * most max_lifetime seconds.
 */
struct tls_sess_cache *tls_sess_cache_new(
    size_t max_sessions, unsigned max_lifetime);
/* Frees every session it holds; tls_sess_cache_free(NULL) does nothing. */
void tls_sess_cache_free(struct tls_sess_cache *c);

/*
 * Before SSL_connect(): attach key (copied) to ssl, so sessions the
 * handshake makes are stored under it, and offer the newest session kept
 * for it that is resumable, not expired at now (seconds since the epoch)
 * and, when need_verified, was made with a peer that verified; it is
 * taken out of the cache.  Returns true when a session was offered
 * (SSL_session_reused() says after the handshake whether the peer took
 * it).  A key that does not fit (a name past TLS_SESS_NAME_MAX) is neither
 * offered nor stored.
 */
bool tls_sess_cache_offer(struct tls_sess_cache *c, SSL *ssl,
    const struct tls_sess_key *key, bool need_verified, time_t now);
/*
 * The connection of ssl ended cleanly (after the close_notify): the
 * session it was offered goes back into the cache when the peer resumed
 * it, sent no newer one and it may still be resumed (TLS 1.2).
 */
void tls_sess_cache_done(struct tls_sess_cache *c, SSL *ssl);

/*
 * The new-session callback of the client contexts (SSL_CTX_sess_set_new_cb):
 * stores sess under the key attached to ssl, if any (the cache takes its
 * own reference), and returns 0 so that OpenSSL drops the one it passed.
 */
int tls_sess_cache_on_new(SSL *ssl, SSL_SESSION *sess);

/*
 * For tests: keep sess (a reference is taken) under key as made with a
 * verified peer or not; take one out as tls_sess_cache_offer() does (NULL:
 * none; the caller owns the reference); the number of sessions kept.
 */
void tls_sess_cache_put(struct tls_sess_cache *c,
    const struct tls_sess_key *key, SSL_SESSION *sess, bool verified);
SSL_SESSION *tls_sess_cache_take(struct tls_sess_cache *c,
    const struct tls_sess_key *key, bool need_verified, time_t now);
size_t tls_sess_cache_count(const struct tls_sess_cache *c);

#endif
