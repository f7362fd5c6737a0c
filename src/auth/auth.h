/*
 * auth: what ternd needs to authenticate submission clients (RFC 4954).
 *
 * Owns: SASL and base64 decoding, password hashing and checking, the
 * failure table (struct auth_throttle).  May call: util, util/clientkey.h,
 * libcrypt; never the tables or the network (server/submit.c joins them).
 *
 *   base64     strict RFC 4648 coding of SASL challenges and responses
 *   sasl       PLAIN (RFC 4616) and LOGIN parsing; pure, no I/O, libc only
 *   password   verify and make crypt(3) hashes (yescrypt "$y$"); libcrypt
 *   throttle   per-client-address failure counts that slow brute force
 *
 * The SASL side never sees the network or the user table: the shell feeds
 * it the response lines the SMTP core hands out (smtp_server_auth_data())
 * and gets back names, a password and the next challenge.  Every buffer
 * that held a password is the caller's to wipe: call sasl_login_wipe() or
 * explicit_bzero() as soon as the password has been checked.
 *
 * auth_password_ok() and auth_password_hash() cost tens of milliseconds of
 * CPU by design: call them from a worker thread, never the event loop.
 */
#ifndef TERN_AUTH_H
#define TERN_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

/* RFC 4616 2: authzid, authcid and passwd are each at most 255 octets. */
#define AUTH_FIELD_MAX 255
/* A PLAIN message at its longest: three fields and two NULs. */
#define AUTH_PLAIN_MAX (3 * AUTH_FIELD_MAX + 2)
/* Buffer size that holds any yescrypt (or other crypt(3)) hash string. */
#define AUTH_HASH_MAX 384

/* ---- base64 (RFC 4648 section 4, the standard alphabet) ----------------- */

/*
 * Decode in[0..len) into out[0..outlen).  Strict: only the 64 alphabet
 * characters, len a multiple of 4, '=' only as the last one or two
 * characters, zero unused bits in the final group, no whitespace or line
 * breaks.  len 0 decodes to 0 bytes.  Returns 0 and sets *n_out, or -1 if
 * the input is invalid or the result does not fit in outlen (then out may
 * hold a partial result, which the caller wipes if it was secret).
 */
int auth_b64_decode(const char *in, size_t len, unsigned char *out,
    size_t outlen, size_t *n_out) WUR;

/*
 * Encode in[0..len) with padding into out, NUL-terminated.  Returns 0 and
 * sets *n_out to the length without the NUL, or -1 if out (outlen,
 * including the NUL) is too small; then out is "" when outlen > 0.
 */
int auth_b64_encode(const unsigned char *in, size_t len, char *out,
    size_t outlen, size_t *n_out) WUR;

/* Characters auth_b64_encode() writes for len bytes, without the NUL. */
size_t auth_b64_encoded_len(size_t len);

/* ---- SASL --------------------------------------------------------------- */

enum sasl_status {
	SASL_OK = 0,	      /* credentials complete */
	SASL_CONTINUE = 1,    /* send "334 " + the challenge, read a line */
	SASL_ERR_SYNTAX = -1, /* malformed: 501 5.5.2 */
	SASL_ERR_AUTHZ = -2,  /* PLAIN authzid names another user: we do not
				 support proxy authorization; 535 5.7.8 */
};

/*
 * PLAIN (RFC 4616): msg[0..n) is the decoded message
 * "[authzid] NUL authcid NUL passwd".  Exactly two NULs; authcid and
 * passwd non-empty; each field at most AUTH_FIELD_MAX octets and valid
 * UTF-8.  An authzid that is present must equal authcid (byte for byte).
 * On SASL_OK the three fields are copied out NUL-terminated (authzid ""
 * when absent); each buffer needs AUTH_FIELD_MAX + 1 bytes to hold any
 * valid field, a smaller one makes a longer field a SASL_ERR_SYNTAX.  On
 * any error all three outputs are wiped.
 */
int sasl_plain_parse(const unsigned char *msg, size_t n, char *authzid,
    size_t azlen, char *authcid, size_t aclen, char *pass, size_t plen) WUR;

/*
 * PLAIN from the base64 text of a response line or initial response
 * (b64[0..len)): decodes into a private buffer, wiped before returning,
 * then sasl_plain_parse().  RFC 4954 4: an initial response of "=" means
 * an empty one, which PLAIN refuses (SASL_ERR_SYNTAX) like any other
 * undecodable input.
 */
int sasl_plain_parse_b64(const char *b64, size_t len, char *authzid,
    size_t azlen, char *authcid, size_t aclen, char *pass, size_t plen) WUR;

/*
 * LOGIN (draft-murchison-sasl-login): the server sends "Username:", the
 * client answers, the server sends "Password:", the client answers; both
 * challenges and answers are base64.  The state machine:
 *
 *   sasl_login_init(&l);
 *   st = sasl_login_step(&l, ir, irlen, chal, sizeof(chal));  // ir may be NULL
 *   while (st == SASL_CONTINUE) {
 *           send "334 " chal; read a line;
 *           st = sasl_login_step(&l, line, linelen, chal, sizeof(chal));
 *   }
 *   if (st == SASL_OK) check l.user / l.pass; sasl_login_wipe(&l);
 *
 * The first step takes the AUTH command's initial response, if any, as the
 * user name (what clients that send one mean by it).  User name and
 * password each non-empty, at most AUTH_FIELD_MAX octets, UTF-8 without
 * NUL.  After SASL_OK or an error, further steps return SASL_ERR_SYNTAX.
 * chal_out needs SASL_LOGIN_CHAL_MAX bytes.
 */
#define SASL_LOGIN_CHAL_MAX 16

enum sasl_login_state {
	SASL_LOGIN_START = 0, /* nothing sent yet */
	SASL_LOGIN_USER,      /* "Username:" sent, waiting for the user name */
	SASL_LOGIN_PASS,      /* "Password:" sent, waiting for the password */
	SASL_LOGIN_DONE,      /* user and pass are set */
	SASL_LOGIN_FAILED,    /* a step failed; the exchange is over */
};

struct sasl_login {
	enum sasl_login_state state;
	char user[AUTH_FIELD_MAX + 1];
	char pass[AUTH_FIELD_MAX + 1]; /* secret: sasl_login_wipe() */
};

void sasl_login_init(struct sasl_login *l);
int sasl_login_step(struct sasl_login *l, const char *resp, size_t len,
    char *chal_out, size_t chal_len) WUR;
void sasl_login_wipe(struct sasl_login *l);

/* ---- passwords (libcrypt) ----------------------------------------------- */

/*
 * True if password matches the crypt(3) hash.  hash NULL (no such user),
 * empty, locked ("!...", "*..."), unparsable or of a refused method
 * (!auth_hash_method_ok): false, after running
 * yescrypt on a fixed dummy hash so the answer takes as long as for a real
 * user with a wrong password.  The computed hash is compared in constant
 * time and wiped.
 */
bool auth_password_ok(const char *hash_or_null, const char *password) WUR;

/*
 * Is hash made by a method ternd accepts: yescrypt ("$y$"), bcrypt
 * ("$2a$", "$2b$", "$2y$"), sha512crypt ("$6$") or sha256crypt ("$5$")?
 * Everything else (DES crypt, which reads only 8 characters of a
 * password, MD5 "$1$", NT hashes, ...) is refused: auth_password_ok()
 * is false for it, and `tern user add --hash-stdin` will not store it.
 * Also false for NULL, empty, locked ("!", "*") or over-long strings.
 */
bool auth_hash_method_ok(const char *hash) WUR;

/*
 * A new yescrypt hash of password with a fresh random salt and libcrypt's
 * default cost, NUL-terminated in out (AUTH_HASH_MAX bytes always do).
 * 0 ok, -1 on failure (no randomness, out too small, ENOMEM).
 */
int auth_password_hash(const char *password, char *out, size_t outlen) WUR;

/* ---- throttle ----------------------------------------------------------- */

/*
 * AUTH failures per client key (util/clientkey.h: an IPv4 address, an
 * IPv6 /64, a local uid), to answer a password guesser slower and slower
 * however it spreads its guesses over connections.  now_ms is a monotonic
 * clock (time_now_ms()).
 *
 * Penalty after f recent failures: 0 for f <= 3, then 1 s, 2 s, 4 s, ...,
 * at most 30 s; it runs from the time of the last failure.  Each attempt
 * is framed by the tracker:
 *
 *   auth_throttle_admit()   before anything is checked.  BUSY: another
 *                           attempt of this key is being checked or held
 *                           and the key has used its free failures: answer
 *                           454 4.7.0 at once, hash nothing.  GO: wait
 *                           *wait_ms_out (the rest of the penalty; 0 when
 *                           none) before checking, whatever the password.
 *   auth_throttle_fail() or auth_throttle_success()   the verdict;
 *   auth_throttle_delay_ms()  after a failure: how long its 535 waits;
 *   auth_throttle_release()   always, with the ticket admit gave, once
 *                           the attempt is over (answered or abandoned).
 *
 * So while a key is in penalty no answer, right or wrong, leaves before
 * the penalty ends, and its attempts are checked one at a time: hanging up
 * early and reconnecting, or opening parallel connections, gains nothing.
 * Only the first AUTH_THROTTLE_FREE_FAILURES attempts of a key run in
 * parallel (in-flight ones count against the free failures).
 *
 * 15 minutes after its last failure a key is forgotten; a success forgets
 * it at once (and voids the tickets of its other attempts).  At most
 * max_entries keys are kept; when full, the one whose last event is
 * oldest is dropped.  Not thread-safe: one tracker belongs to the loop.
 */
#define AUTH_THROTTLE_FREE_FAILURES 3
#define AUTH_THROTTLE_MAX_DELAY_MS  30000u
#define AUTH_THROTTLE_FORGET_MS	    (15u * 60u * 1000u)

struct auth_throttle;
struct client_key;

enum auth_throttle_verdict {
	AUTH_THROTTLE_GO = 0,	/* check after *wait_ms_out */
	AUTH_THROTTLE_BUSY = 1, /* 454 4.7.0 now, no check */
};

struct auth_throttle *auth_throttle_new(unsigned max_entries);
void auth_throttle_free(struct auth_throttle *t);
enum auth_throttle_verdict auth_throttle_admit(struct auth_throttle *t,
    const struct client_key *k, uint64_t now_ms, unsigned *wait_ms_out,
    uint64_t *ticket_out) WUR;
void auth_throttle_release(
    struct auth_throttle *t, const struct client_key *k, uint64_t ticket);
unsigned auth_throttle_delay_ms(
    struct auth_throttle *t, const struct client_key *k, uint64_t now_ms);
void auth_throttle_fail(
    struct auth_throttle *t, const struct client_key *k, uint64_t now_ms);
void auth_throttle_success(struct auth_throttle *t, const struct client_key *k);
/* Keys currently tracked (for tests and metrics). */
unsigned auth_throttle_count(const struct auth_throttle *t);

#endif
