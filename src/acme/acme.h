/*
 * acme: the pure half of tern's ACME client (RFC 8555): keys and JWS, the
 * parsers of the server's JSON, and the state machine of one order.
 *
 * Owns: struct acme_sm (one order from the directory to the certificate
 * chain) and what it parsed.  May call: util (buf, json) and libcrypto;
 * no I/O, no clock (the caller hands the time in), so it is in libcore.a
 * and has a unit table (tests/unit/test_acme.c) and a fuzzer
 * (fuzz/fuzz_acme.c).  acme/client.h drives it over HTTPS; server/acmed.c
 * decides when.
 *
 * The order, as RFC 8555 7 tells it: GET the directory; HEAD newNonce;
 * newAccount with termsOfServiceAgreed and the contact (the same key
 * gets the same account back, 7.3.1, so it is asked every time and its
 * URL is the "kid" of every later request); newOrder for the domains;
 * each authorization (POST-as-GET, 6.3); for each pending one the
 * HTTP-01 challenge (8.3): the state machine stops (ACME_SM_PUBLISH) so
 * the caller can serve the key authorizations, then answers each
 * challenge and polls its authorization until valid; the order polled
 * until ready; finalize with a CSR made with the certificate key (a new
 * key for every order: the caller's); the order polled until valid; the
 * certificate chain downloaded (PEM, 7.4.2).
 *
 * Errors: a problem document (RFC 8555 6.7) fails the order naming the
 * step, the type and the detail; badNonce is retried once with the nonce
 * of its answer (6.5); Retry-After is honoured (at most ACME_WAIT_MAX s a
 * wait), and the polls are counted (ACME_POLLS_MAX).  Every field kept is
 * bounded (the limits below); a longer one fails the parse.
 *
 * Threads: an acme_sm belongs to one thread at a time.
 */
#ifndef TERN_ACME_H
#define TERN_ACME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "util/util.h"

#define ACME_URL_MAX	  1024 /* octets of a URL the server names */
#define ACME_NONCE_MAX	  256  /* a Replay-Nonce (base64url) */
#define ACME_TOKEN_MAX	  128  /* an HTTP-01 token (base64url, 8.3) */
#define ACME_DOMAIN_MAX	  253
#define ACME_DOMAINS_MAX  50	 /* names on one certificate */
#define ACME_DETAIL_MAX	  300	 /* a problem's detail, kept */
#define ACME_JSON_MAX	  65536	 /* octets of one JSON answer */
#define ACME_CHAIN_MAX	  262144 /* octets of the PEM chain */
#define ACME_POLLS_MAX	  40	 /* polls of one order, in all */
#define ACME_WAIT_MAX	  30	 /* s: the longest Retry-After honoured */
#define ACME_WAIT_DEFAULT 1	 /* s: a poll without Retry-After */
#define ACME_THUMB_LEN	  43	 /* base64url of a SHA-256 */
#define ACME_KEYAUTH_MAX  (ACME_TOKEN_MAX + 1 + ACME_THUMB_LEN)

/* ---- keys, JWK, JWS, CSR (jws.c) ---------------------------------------- */

/* A new EC P-256 key (ES256, RFC 7518 3.4); NULL on failure. */
EVP_PKEY *acme_key_new(void);
/* PKCS#8 PEM of a key into out (wipe it after use); 0 or -1. */
int acme_key_pem(EVP_PKEY *key, struct buf *out) WUR;
/* A P-256 key from PEM; NULL when it is not one. */
EVP_PKEY *acme_key_from_pem(const char *pem, size_t len);
/* RFC 7638's JWK of a P-256 key: {"crv":"P-256","kty":"EC","x":..,"y":..},
 * members in that order, no white space (the thumbprint's input). */
int acme_jwk(EVP_PKEY *key, struct buf *out) WUR;
/* base64url(SHA-256(JWK)), ACME_THUMB_LEN characters and a NUL. */
int acme_thumbprint(EVP_PKEY *key, char out[ACME_THUMB_LEN + 1]) WUR;
/* base64url without padding (RFC 7515 2) of in[0..len), appended. */
int acme_b64url(struct buf *out, const void *in, size_t len) WUR;
/*
 * A flattened JWS (RFC 8555 6.2): protected header {"alg":"ES256",
 * "jwk":...} when kid is NULL, else {"alg":"ES256","kid":kid}, with nonce
 * and url; payload as given ("" for POST-as-GET).  The signature is
 * ES256's raw r||s.
 */
int acme_jws(EVP_PKEY *key, const char *kid, const char *nonce, const char *url,
    const char *payload, struct buf *out) WUR;
/* token "." thumbprint (8.1); -1 when the token is not base64url. */
int acme_key_authz(
    const char *token, const char *thumb, char *out, size_t outlen) WUR;
/* A CSR (PKCS#10, DER, base64url into out) for domains[0..n), the first
 * as CN, all as subjectAltName dNSNames, signed with key. */
int acme_csr(
    EVP_PKEY *key, const char *const *domains, size_t n, struct buf *out) WUR;

/*
 * What a PEM pair on disk is worth (acmed's hourly question): the end of
 * the first certificate's validity (Unix time) in *not_after_out, and
 * whether it names every domain and matches the key.  0, or -1 with why
 * ("no certificate", "key does not match the certificate", "does not
 * name example.org").
 */
int acme_pair_check(const char *cert, size_t clen, const char *key, size_t klen,
    const char *const *domains, size_t n, int64_t *not_after_out, char *why,
    size_t whylen) WUR;

/* ---- parsers (acme.c) --------------------------------------------------- */

struct acme_directory {
	char new_nonce[ACME_URL_MAX + 1];
	char new_account[ACME_URL_MAX + 1];
	char new_order[ACME_URL_MAX + 1];
};

enum acme_status {
	ACME_ST_UNKNOWN = 0,
	ACME_ST_PENDING,
	ACME_ST_READY,
	ACME_ST_PROCESSING,
	ACME_ST_VALID,
	ACME_ST_INVALID, /* and deactivated, expired, revoked */
};

struct acme_order {
	enum acme_status status;
	size_t nauthz;
	char authz[ACME_DOMAINS_MAX][ACME_URL_MAX + 1];
	char finalize[ACME_URL_MAX + 1];
	char certificate[ACME_URL_MAX + 1]; /* "" until valid */
};

struct acme_authz {
	enum acme_status status;
	char domain[ACME_DOMAIN_MAX + 1];
	bool has_http01;
	enum acme_status chal_status;
	char chal_url[ACME_URL_MAX + 1];
	char token[ACME_TOKEN_MAX + 1];
	char error[ACME_DETAIL_MAX + 1]; /* the challenge's problem, or "" */
};

struct acme_problem {
	char type[128];
	char detail[ACME_DETAIL_MAX + 1];
};

/* Each: 0, or -1 with err (a member missing, of the wrong type, too
 * long, a URL that is not https:, a token that is not base64url). */
int acme_directory_parse(const char *in, size_t len, struct acme_directory *out,
    char *err, size_t errlen) WUR;
int acme_order_parse(const char *in, size_t len, struct acme_order *out,
    char *err, size_t errlen) WUR;
int acme_authz_parse(const char *in, size_t len, struct acme_authz *out,
    char *err, size_t errlen) WUR;
/* 0 when in is a problem document (type and detail, cut to fit). */
int acme_problem_parse(const char *in, size_t len, struct acme_problem *out);
/* Retry-After (RFC 9110 10.2.3): delay-seconds or an IMF-fixdate, now the
 * Unix time; the wait in *secs_out (0 for a date past).  0 or -1. */
int acme_retry_after_parse(
    const char *v, size_t len, int64_t now, unsigned *secs_out) WUR;

/* ---- the state machine (acme.c) ------------------------------------------ */

enum acme_method {
	ACME_GET,
	ACME_HEAD,
	ACME_POST,
};

/* What to send: url, and for ACME_POST the JWS in body. */
struct acme_req {
	enum acme_method method;
	const char *url;
	const char *body;
	size_t len;
	bool want_pem; /* Accept: application/pem-certificate-chain */
};

/* What came back.  Header values NUL-terminated, or NULL when absent. */
struct acme_resp {
	long status;
	const char *location, *nonce, *retry_after, *content_type;
	const char *body;
	size_t len;
	int64_t now; /* Unix time, for Retry-After dates */
};

enum acme_act {
	ACME_SM_SEND,	 /* send *req, then call again with the answer */
	ACME_SM_WAIT,	 /* wait *wait_out s, then call again with NULL */
	ACME_SM_PUBLISH, /* serve acme_sm_challenges(), then call again
			    with NULL */
	ACME_SM_DONE,	 /* acme_sm_chain() is the certificate chain */
	ACME_SM_FAIL,	 /* acme_sm_error() says why */
};

/* One key authorization to serve at
 * http://DOMAIN/.well-known/acme-challenge/TOKEN. */
struct acme_chal {
	char token[ACME_TOKEN_MAX + 1];
	char keyauth[ACME_KEYAUTH_MAX + 1];
};

struct acme_sm;

/*
 * One order.  account_key signs every request; cert_key goes into the
 * CSR; both stay the caller's and must outlive the machine.  email may be
 * NULL (no contact).  kid: the account URL kept from an earlier run, or
 * NULL (newAccount is asked either way, 7.3.1).
 */
struct acme_sm *acme_sm_new(const char *directory, EVP_PKEY *account_key,
    EVP_PKEY *cert_key, const char *email, const char *const *domains,
    size_t ndomains);
void acme_sm_free(struct acme_sm *sm); /* NULL ok */

/*
 * The next action.  resp: the answer to the last ACME_SM_SEND (NULL the
 * first time and after WAIT or PUBLISH).  *req_out points into sm until
 * the next call.
 */
enum acme_act acme_sm_next(struct acme_sm *sm, const struct acme_resp *resp,
    struct acme_req *req_out, unsigned *wait_out);

const struct acme_chal *acme_sm_challenges(
    const struct acme_sm *sm, size_t *n_out);
/* The PEM chain after ACME_SM_DONE. */
const struct buf *acme_sm_chain(const struct acme_sm *sm);
/* The account URL (after newAccount), or "". */
const char *acme_sm_account(const struct acme_sm *sm);
/* After ACME_SM_FAIL: the reason, and whether the server refused
 * (a problem document: "rejected") rather than failed ("error"). */
const char *acme_sm_error(const struct acme_sm *sm);
bool acme_sm_rejected(const struct acme_sm *sm);
/* Fail the order from outside (transport errors): the step is named. */
void acme_sm_fail(struct acme_sm *sm, const char *why);

#endif
