/*
 * dkim: DomainKeys Identified Mail (RFC 6376), with Ed25519 (RFC 8463) and
 * the cryptographic updates of RFC 8301, as pure code.
 *
 * Owns: the DKIM-Signature tag list and the key record parsers, header and
 * body canonicalisation, verification of up to DKIM_SIG_CHECKED signatures
 * of one message, and signing.  May call: util, auth (base64), OpenSSL's
 * libcrypto (EVP).  No I/O: the message is a buffer, the key record is the
 * text of a DNS TXT answer the caller looked up (or its failure, as a
 * status), the private key an EVP_PKEY the caller loaded, and the time a
 * parameter.
 *
 * The message is the whole of it as stored (header section, empty line,
 * body), lines ending in CRLF; a lone LF is taken as a line end too.
 *
 * Verification, in three steps so the DNS lookups can run on the event
 * loop in between:
 *
 *   v = dkim_verify_new(msg, len, now);
 *   for (i = 0; i < dkim_verify_count(v); i++)
 *           if ((q = dkim_verify_query(v, i)) != NULL)
 *                   look up TXT q, then
 *                   dkim_verify_key(v, i, status, txt, txtlen);
 *   each dkim_verify_result(v, i); dkim_verify_free(v);
 *
 * The message buffer must outlive v.  The RSA and Ed25519 operations cost
 * up to a millisecond for a 4096-bit key: dkim_verify_key() and
 * dkim_sign() belong on a worker thread, not the loop.  Thread-safe: no
 * global state besides OpenSSL's.
 */
#ifndef TERN_MAILAUTH_DKIM_H
#define TERN_MAILAUTH_DKIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "util/util.h"

/* ---- limits ---------------------------------------------------------------
 */

/* Signatures of one message that are checked, from the top (issue 13). */
#define DKIM_SIG_CHECKED 5
/* Header fields of one message indexed; a message with more is refused. */
#define DKIM_FIELDS_MAX 1000
/* Octets of one DKIM-Signature field, and of one key record. */
#define DKIM_SIG_FIELD_MAX  8192
#define DKIM_KEY_RECORD_MAX 4096
/* Names in h= (with repeats, for over-signing). */
#define DKIM_H_NAMES_MAX 128
/* A header field name (RFC 5322 allows any length; nobody signs more). */
#define DKIM_FIELD_NAME_MAX 128
/* Tags of one tag list (3.2): the sig has 14 defined, the key 6. */
#define DKIM_TAGS_MAX 32
/* RFC 1035: 253 octets of a domain name; a selector is a domain too. */
#define DKIM_DOMAIN_MAX 253
/* i=: local-part "@" domain (RFC 5321 4.5.3.1). */
#define DKIM_IDENTITY_MAX (64 + 1 + DKIM_DOMAIN_MAX)
/* RSA keys accepted (RFC 8301 3.2: at least 1024; 4096 bounds the CPU). */
#define DKIM_RSA_BITS_MIN 1024
#define DKIM_RSA_BITS_MAX 4096
/* Decoded signature b= (a 4096-bit RSA signature is 512 octets). */
#define DKIM_B_MAX (DKIM_RSA_BITS_MAX / 8)
/* Decoded p=: a 4096-bit SubjectPublicKeyInfo is 550 octets. */
#define DKIM_P_MAX 1024
/* Width of the lines of a DKIM-Signature tern writes (RFC 5322 2.1.1). */
#define DKIM_FOLD_WIDTH 78
/* Reason strings in results. */
#define DKIM_REASON_MAX 128

/* ---- results ---------------------------------------------------------------
 */

/* RFC 8601 2.7.1 results, per signature. */
enum dkim_result {
	DKIM_NONE = 0,	/* no signature */
	DKIM_PASS,	/* verified */
	DKIM_FAIL,	/* hashes or signature do not verify, expired */
	DKIM_POLICY,	/* valid form, refused by policy: rsa-sha1 */
	DKIM_NEUTRAL,	/* not evaluated (beyond DKIM_SIG_CHECKED) */
	DKIM_TEMPERROR, /* the key could not be fetched for now */
	DKIM_PERMERROR, /* malformed signature or key, no key, revoked */
};

/* "pass", "fail", ... as Authentication-Results writes them. */
const char *dkim_result_name(enum dkim_result r);

enum dkim_alg {
	DKIM_ALG_RSA_SHA256 = 0,
	DKIM_ALG_RSA_SHA1,	 /* parsed, never accepted (RFC 8301) */
	DKIM_ALG_ED25519_SHA256, /* RFC 8463 */
};

const char *dkim_alg_name(enum dkim_alg a); /* "rsa-sha256", ... */

enum dkim_canon { DKIM_CANON_SIMPLE = 0, DKIM_CANON_RELAXED };

/* ---- tag lists (RFC 6376 3.2) ---------------------------------------------
 */

/* One tag=value: views into the parsed text, value without outer FWS. */
struct dkim_tag {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

/*
 * Split s[0..len) into at most max tags.  0 and *n_out, or -1 with why
 * set: a syntax error, a duplicate tag (the whole list is invalid, 3.2),
 * more than max tags.  FWS (SP, HTAB, CR, LF) may surround names, '='
 * and values; a last ';' may end the list.
 */
int dkim_tags_parse(const char *s, size_t len, struct dkim_tag *tags,
    size_t max, size_t *n_out, const char **why) WUR;

/* ---- the signature (3.5) ---------------------------------------------------
 */

struct dkim_sig {
	enum dkim_alg alg;
	enum dkim_canon hcanon, bcanon;
	char d[DKIM_DOMAIN_MAX + 1];   /* lower case */
	char s[DKIM_DOMAIN_MAX + 1];   /* selector, lower case */
	char i[DKIM_IDENTITY_MAX + 1]; /* "@d" when absent */
	unsigned char b[DKIM_B_MAX];
	size_t b_len;
	unsigned char bh[64];
	size_t bh_len;
	/* h=: names[k] is the k-th name, names_len[k] its length */
	char h[DKIM_H_NAMES_MAX * (DKIM_FIELD_NAME_MAX + 1)];
	const char *names[DKIM_H_NAMES_MAX];
	size_t names_len[DKIM_H_NAMES_MAX];
	size_t n_names;
	bool has_l, has_t, has_x;
	uint64_t l; /* body octets signed */
	int64_t t, x;
	unsigned instance; /* ARC's i= (dkim_int.h); 0 for DKIM */
};

/*
 * Parse the value of a DKIM-Signature field (after the colon).  DKIM_PASS
 * when the signature is well formed, else DKIM_PERMERROR with why (a
 * constant string): missing v, a, b, bh, d, h or s; v not 1; an unknown
 * algorithm or canonicalisation; q without dns/txt; bad base64; i= not
 * in d=; x < t; h= without From; h= over DKIM_H_NAMES_MAX names; a value
 * past its bound.  rsa-sha1 parses (its verdict is dkim_verify's).
 */
enum dkim_result dkim_sig_parse(
    const char *value, size_t len, struct dkim_sig *out, const char **why);

/* ---- the key record (3.6.1) ------------------------------------------------
 */

enum dkim_key_type { DKIM_KEY_RSA = 0, DKIM_KEY_ED25519 };

#define DKIM_KEY_HASH_SHA1   1u
#define DKIM_KEY_HASH_SHA256 2u
#define DKIM_KEY_HASH_LISTED 0x80000000u /* h= present: only what it names */

struct dkim_key {
	enum dkim_key_type type;
	EVP_PKEY *pkey;	 /* NULL when revoked; dkim_key_clear() frees */
	bool revoked;	 /* p= empty */
	unsigned hashes; /* DKIM_KEY_HASH_*; 0: h= absent, any hash */
	bool testing;	 /* t=y */
	bool strict;	 /* t=s: i= must be exactly d= */
	unsigned bits;	 /* RSA modulus bits; 256 for Ed25519 */
};

/*
 * Parse a key record (the TXT strings already joined).  DKIM_PASS with
 * out filled (out->pkey owned by out), or DKIM_PERMERROR with why: a
 * syntax error, a duplicate tag, v= other than DKIM1 or not first, an
 * unknown k=, p= missing or not base64 or not a key of type k, RSA below
 * DKIM_RSA_BITS_MIN or above DKIM_RSA_BITS_MAX bits, s= not allowing
 * email.  A revoked key (p= empty) is DKIM_PASS with revoked set: its
 * verdict belongs to the signature being checked.
 */
enum dkim_result dkim_key_parse(
    const char *txt, size_t len, struct dkim_key *out, const char **why);
void dkim_key_clear(struct dkim_key *k);

/* ---- canonicalisation (3.4) ------------------------------------------------
 */

/*
 * One header field (name, colon, value and its CRLFs, as in the message)
 * canonicalised, appended to out with its CRLF.  0, or -1 if out is full.
 */
int dkim_canon_header(
    enum dkim_canon c, const char *field, size_t len, struct buf *out) WUR;
/* A whole body canonicalised into out (for tests; hashing streams). */
int dkim_canon_body(
    enum dkim_canon c, const char *body, size_t len, struct buf *out) WUR;

/* ---- verification (6) ------------------------------------------------------
 */

/* What the key lookup of a signature came to. */
enum dkim_dns {
	DKIM_DNS_OK = 0, /* txt holds the record */
	DKIM_DNS_NOKEY,	 /* NXDOMAIN or no TXT record: permerror */
	DKIM_DNS_TEMP,	 /* timeout, SERVFAIL: temperror, never fail */
};

struct dkim_sig_result {
	enum dkim_result result;
	char reason[DKIM_REASON_MAX]; /* "" for pass */
	/* the fields A-R reports; "" when the signature did not parse */
	char d[DKIM_DOMAIN_MAX + 1];
	char s[DKIM_DOMAIN_MAX + 1];
	char i[DKIM_IDENTITY_MAX + 1];
	char b8[9]; /* the first 8 characters of b= (RFC 6008 header.b) */
	enum dkim_alg alg;
	unsigned bits;	   /* key size, once the key was read */
	bool testing;	   /* the key says t=y */
	bool has_l;	   /* l= limited the body hashed ... */
	uint64_t l;	   /* ... to this many octets ... */
	uint64_t body_len; /* ... of this many canonical octets */
};

struct dkim_verify;

/*
 * Index msg[0..len) and parse its first DKIM_SIG_CHECKED DKIM-Signature
 * fields; now is the time in seconds for x=.  Never NULL (xmalloc).
 */
struct dkim_verify *dkim_verify_new(const char *msg, size_t len, int64_t now);
void dkim_verify_free(struct dkim_verify *v);
/* Signatures checked (at most DKIM_SIG_CHECKED), and those left out. */
size_t dkim_verify_count(const struct dkim_verify *v);
size_t dkim_verify_skipped(const struct dkim_verify *v);
/*
 * The TXT name to look up for signature i ("s._domainkey.d"), or NULL
 * when its result is already known (malformed, rsa-sha1, expired).
 */
const char *dkim_verify_query(const struct dkim_verify *v, size_t i);
/*
 * The lookup's answer for signature i: status, and with DKIM_DNS_OK the
 * n records found (each a TXT record's strings joined).  The first record
 * that parses as a key is used; several records of which none parses is
 * a permerror.  Does the hashing and the public key operation.
 */
void dkim_verify_key(struct dkim_verify *v, size_t i, enum dkim_dns status,
    const char *const *txt, const size_t *txt_len, size_t n);
const struct dkim_sig_result *dkim_verify_result(
    const struct dkim_verify *v, size_t i);

/* ---- signing (5) -----------------------------------------------------------
 */

struct dkim_sign_opts {
	const char *domain;   /* d= */
	const char *selector; /* s= */
	EVP_PKEY *key;	      /* RSA (rsa-sha256) or Ed25519 */
	int64_t t;	      /* signing time: t= */
	int64_t expire;	      /* seconds after t for x=; 0: no x= */
	const char *identity; /* i=, or NULL for none */
};

/*
 * Sign msg[0..len) (relaxed/relaxed, h= as in the file's comment) and
 * append the DKIM-Signature field, folded at DKIM_FOLD_WIDTH and ending
 * in CRLF, to out; the caller puts it on top of the message.  Dual
 * signing is two calls on the same message.  0, or -1 with err.
 */
int dkim_sign(const struct dkim_sign_opts *o, const char *msg, size_t len,
    struct buf *out, char *err, size_t errlen) WUR;
/*
 * The same for a message stored in two parts, head[0..head_len) (header
 * fields a server put on top: its trace, a Date or Message-ID it added)
 * then msg[0..len) (what the client sent, header and body), signed as
 * their concatenation.  Only the header lines are copied: the body is
 * hashed where it lies.
 */
int dkim_sign_parts(const struct dkim_sign_opts *o, const char *head,
    size_t head_len, const char *msg, size_t len, struct buf *out, char *err,
    size_t errlen) WUR;

/* ---- keys ------------------------------------------------------------------
 */

/* A private key from PEM text (PKCS#8 or traditional); NULL with err. */
EVP_PKEY *dkim_pkey_from_pem(
    const char *pem, size_t len, char *err, size_t errlen);
/*
 * The TXT record publishing key's public half, appended to out:
 * "v=DKIM1; k=ed25519; p=..." or "v=DKIM1; k=rsa; p=...".  Also *bits_out
 * (RSA modulus bits, 256 for Ed25519) when not NULL.  0, or -1 (not an
 * RSA or Ed25519 key, out full).
 */
int dkim_pkey_record(EVP_PKEY *key, struct buf *out, unsigned *bits_out) WUR;

#endif
