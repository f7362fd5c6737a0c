/*
 * clientkey: who a client is, for every per-client counter of ternd
 * (connections per IP, the AUTH throttle, connections per local uid, and
 * the rate limits built on them), and SipHash-2-4 to hash it.
 *
 * Owns: struct client_key and the process's SipHash key.  May call: libc
 * only (getrandom, pthread_once).  Called by auth (the throttle) and by
 * server (connection counts, DSN limits).
 *
 * A client key is
 *   - an IPv4 address, as is (an IPv4-mapped IPv6 address ::ffff:a.b.c.d
 *     is the IPv4 address it maps);
 *   - an IPv6 address masked to its /64: one host commonly holds a whole
 *     /64 (RFC 7421), so counting each of its 2^64 addresses apart would
 *     give it 2^64 budgets;
 *   - a local uid (public/submit.sock, from SO_PEERCRED);
 *   - or opaque bytes (tests, other callers), up to CLIENT_KEY_BYTES.
 * Kinds never compare equal to each other.
 *
 * Tables keyed by client key pick their bucket with client_key_hash():
 * SipHash-2-4 under a per-process random key (getrandom at the first use,
 * or client_key_seed() at start), so nobody can choose addresses that fall
 * in one chain.  Pure: no sockets here; server.h has the sockaddr adapter
 * client_key_from_sockaddr().  Thread-safe after client_key_seed().
 */
#ifndef TERN_UTIL_CLIENTKEY_H
#define TERN_UTIL_CLIENTKEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CLIENT_KEY_BYTES 16

enum client_key_kind {
	CLIENT_KEY_NONE = 0,
	CLIENT_KEY_V4 = 1,  /* b[0..4): the address */
	CLIENT_KEY_V6 = 2,  /* b[0..8): the /64 */
	CLIENT_KEY_UID = 3, /* b[0..4): the uid, big-endian */
	CLIENT_KEY_RAW = 4, /* b[0..len) */
};

/* Plain data: copy, compare with client_key_eq(); unused bytes are zero. */
struct client_key {
	uint8_t kind; /* enum client_key_kind */
	uint8_t len;
	uint8_t b[CLIENT_KEY_BYTES];
};

/*
 * ip[0..iplen) in network byte order: 4 bytes (IPv4) or 16 (IPv6, masked
 * to /64 unless v4-mapped).  Any other length up to CLIENT_KEY_BYTES is an
 * opaque CLIENT_KEY_RAW key; a longer one is a bug (panic).
 */
void client_key_ip(struct client_key *k, const void *ip, size_t iplen);
void client_key_uid(struct client_key *k, uint32_t uid);
bool client_key_eq(const struct client_key *a, const struct client_key *b);
/* "192.0.2.1", "2001:db8:0:1::/64" (hex groups), "uid=1000": for logs. */
int client_key_format(const struct client_key *k, char *out, size_t outlen);

/* Draw the process key now (ternd's start-up); else done at first use. */
void client_key_seed(void);
/* SipHash-2-4 of the key's kind, length and bytes under the process key. */
uint64_t client_key_hash(const struct client_key *k);

/*
 * SipHash-2-4 (Aumasson and Bernstein, 2012) of in[0..n) under the 16-byte
 * key k (k[0..8) and k[8..16) are read little-endian as the paper's k0,
 * k1).  The 64-bit result is the paper's, as an integer.
 */
uint64_t siphash24(const uint8_t k[16], const void *in, size_t n);

#endif
