/*
 * srs: the Sender Rewriting Scheme core, in the SRS0/SRS1 form of Shevek's
 * paper as libsrs2 and postsrsd write it, so that an address made here is
 * reversed by postsrsd holding the same secret and the other way round.
 *
 *   SRS0=HHHH=TT=orig-domain=orig-local@srs-domain
 *   SRS1=HHHH=first-hop-domain==HHHH=TT=orig-domain=orig-local@srs-domain
 *
 * HHHH: the first 4 characters of the standard base64 of HMAC-SHA1(secret,
 * the fields concatenated, ASCII lower-cased): for SRS0 the timestamp, the
 * original domain and the original local part; for SRS1 the first hop's
 * domain and the rest of its SRS0 part from its separator on.  TT: the day
 * number (Unix time / 86400) modulo 1024 in two base32 characters
 * (A-Z2-7), high first.  On input the separator after SRS0/SRS1 may be
 * "=", "+" or "-", tags, hash and timestamp are case-insensitive (mailers
 * that lower-case local parts break nothing but four bits of the hash).
 *
 * Owns: struct srs (a view: the caller owns the secrets and the domain).
 * May call: util and libcrypto (HMAC).  Pure: no I/O, no clock (now is a
 * parameter), no allocation; any thread.
 */
#ifndef TERN_MAILAUTH_SRS_H
#define TERN_MAILAUTH_SRS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* base64 characters of the hash written and required (postsrsd -n / -N) */
#define SRS_HASH_LEN 4
/* the days a timestamp counts before it repeats: two base32 digits */
#define SRS_TIME_SLOTS	    1024
#define SRS_MAX_AGE_DEFAULT 21 /* days, as libsrs2 and postsrsd */
/* an address made here never has a longer local part (RFC 5321 4.5.3.1.1) */
#define SRS_LOCAL_MAX 64
/* a whole address, in or out (RFC 5321 4.5.3.1.3 path less the brackets) */
#define SRS_ADDR_MAX 254
/* secrets: the first signs, all are tried on reversal (key rotation) */
#define SRS_SECRETS_MAX 8
#define SRS_SECRET_MAX	256 /* octets of one secret */

struct srs_secret {
	const unsigned char *p;
	size_t len; /* 1..SRS_SECRET_MAX */
};

struct srs {
	const struct srs_secret *secrets; /* [0] signs */
	size_t nsecrets;		  /* 1..SRS_SECRETS_MAX */
	const char *domain;		  /* the SRS domain */
	unsigned max_age;		  /* days, 1..SRS_TIME_SLOTS-1 */
};

enum srs_status {
	SRS_OK = 0,
	SRS_NOT_SRS,   /* reverse: no SRS0/SRS1 local part at s->domain */
	SRS_BAD_HASH,  /* reverse: no secret makes this hash (forged) */
	SRS_EXPIRED,   /* reverse: the hash is right, the day too old */
	SRS_MALFORMED, /* reverse: SRS tag but not the form; forward: an
			  address the scheme cannot carry (quoted local
			  part, address literal) */
	SRS_TOO_LONG,  /* forward: the local part would pass SRS_LOCAL_MAX,
			  or the result would not fit out */
};

/* "ok", "not_srs", "bad_hash", "expired", "malformed", "too_long". */
const char *srs_status_name(enum srs_status st);

/*
 * The rewritten sender for a message forwarded from sender (local@domain,
 * as addr_format writes it): SRS0 of an ordinary address, SRS1 of an SRS0
 * one (a second hop), a new SRS1 of an SRS1 one (its first hop and rest
 * kept, the hash remade).  now is Unix time.  out gets a NUL-terminated
 * address; on any status but SRS_OK out is "".
 */
enum srs_status srs_forward(const struct srs *s, const char *sender, time_t now,
    char *out, size_t outlen);

/*
 * The address an SRS address at s->domain (the domain compared without
 * case) stands for: an SRS0 one gives the original sender, an SRS1 one the
 * first hop's SRS0 address (at that hop's domain, which reverses the
 * rest).  The hash is compared in constant time against every secret; the
 * timestamp after the hash (so SRS_EXPIRED means an address we did make).
 * On any status but SRS_OK out is "".
 */
enum srs_status srs_reverse(const struct srs *s, const char *addr, time_t now,
    char *out, size_t outlen);

/* Does this local part (length n) begin with an SRS0 or SRS1 tag and a
 * separator?  (Classification only: says nothing of its validity.) */
int srs_local_is_srs(const char *local, size_t n);

/* The two timestamp characters for Unix time now (out: 3 octets). */
void srs_timestamp(time_t now, char out[3]);

/*
 * The secrets of a key file's text: one a line, blank lines and lines
 * starting with '#' skipped, trailing CR and white space cut (postsrsd's
 * file form).  Views into text.  Returns the count (0: none), or -1 when a
 * line is longer than SRS_SECRET_MAX or there are more than max.
 */
int srs_secrets_parse(
    const char *text, size_t len, struct srs_secret *v, size_t max);

#endif
