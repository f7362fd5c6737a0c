/*
 * dane: DANE (RFC 7672) on an outbound TLS connection, with OpenSSL 3's
 * own TLSA matching (SSL_dane_enable, SSL_dane_tlsa_add).
 *
 * Owns: nothing (functions over the caller's SSL_CTX and SSL).  May
 * call: util, OpenSSL.  Called by deliver/remote.c for MX hosts whose
 * policy (deliver/tlspolicy.h) is DANE.
 *
 * Only DANE-TA(2) and DANE-EE(3) records reach here (util/tlsa.h keeps
 * no others; RFC 7672 3.1.3 says PKIX-TA and PKIX-EE are unusable for
 * SMTP).  DANE-EE matches the server's key or certificate alone: no name
 * checks, no expiry (RFC 7672 3.1.1, DANE_FLAG_NO_DANE_EE_NAMECHECKS).
 * DANE-TA makes the record's certificate or key a trust anchor and the
 * chain must name the MX host or the next-hop domain (RFC 7672 3.2.2).
 * The outcome is in SSL_get_verify_result() as for any verification,
 * so tls_peer_verified() tells it; tls_dane_authority() says which
 * record matched.
 */
#ifndef TERN_DANE_H
#define TERN_DANE_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "util/tlsa.h"

/* Ready ctx for DANE (its digest tables); 0, or -1 with OpenSSL's error
 * queue left empty. */
int tls_dane_ctx(SSL_CTX *ctx) __attribute__((warn_unused_result));

/*
 * Before the handshake: host is the MX host name (SNI and the DANE base
 * domain), nexthop the destination domain (a second name DANE-TA chains
 * may carry; NULL: none), set the host's usable TLSA records.  Returns
 * the number of records OpenSSL took (0: none usable to it, so the peer
 * cannot be authenticated), or -1 on an error (why set).
 */
int tls_dane_setup(SSL *ssl, const char *host, const char *nexthop,
    const struct tlsa_set *set, const char **why);

/* After the handshake: "dane-ee", "dane-ta" for the record that matched,
 * or NULL when DANE did not authenticate the peer. */
const char *tls_dane_authority(SSL *ssl);

/* A 32-bit digest of set's records, for the session cache's policy tag:
 * a session made under one RRset is never resumed under another. */
unsigned tls_dane_tag(const struct tlsa_set *set);

#endif
