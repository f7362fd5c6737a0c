/*
 * dkim_int: private to src/mailauth/dkim*.c and arc.c (ARC's two
 * signatures are DKIM signatures under other names, RFC 8617 4.1).  The
 * message index the verifier and the signer share, the two hashes every
 * signature is made of (RFC 6376 3.7), the key and public key operations,
 * so DKIM and ARC compute them with the same code.
 */
#ifndef TERN_MAILAUTH_DKIM_INT_H
#define TERN_MAILAUTH_DKIM_INT_H

#include "mailauth/dkim.h"

/* The three kinds of DKIM-style signature field. */
enum dkim_sig_kind {
	DKIM_KIND_SIG = 0, /* DKIM-Signature */
	DKIM_KIND_AMS,	   /* ARC-Message-Signature (RFC 8617 4.1.2) */
	DKIM_KIND_AS,	   /* ARC-Seal (RFC 8617 4.1.3) */
};

/* ARC instances (RFC 8617 4.2.1.1: i= is 1 to 50). */
#define DKIM_ARC_INSTANCE_MAX 50

/*
 * dkim_sig_parse for any kind.  AMS: no v= (ignored if present), i= is
 * the instance (1..DKIM_ARC_INSTANCE_MAX, into out->instance; out->i is
 * "@d"), h= must not name ARC-Seal.  AS: required i, a, b, cv, d, s; no
 * h= (4.1.3), no bh=, relaxed header canonicalisation whatever c= says;
 * cv's value is the caller's to read (dkim_tag_find).
 */
enum dkim_result dkim_sig_parse_kind(enum dkim_sig_kind kind, const char *value,
    size_t len, struct dkim_sig *out, const char **why);
/* The tag called name in tags[0..n), or NULL. */
const struct dkim_tag *dkim_tag_find(
    const struct dkim_tag *tags, size_t n, const char *name);

/* One header field: its bytes are p[off..off+len), CRLFs included. */
struct dkim_field {
	size_t off, len;
	size_t name_len; /* the name, without WSP before the colon; 0: junk */
};

struct dkim_msg {
	const char *p;
	size_t len;
	struct dkim_field f[DKIM_FIELDS_MAX];
	size_t n;
	bool overflow;	 /* more than DKIM_FIELDS_MAX fields */
	size_t body_off; /* first octet of the body (len when none) */
};

void dkim_msg_index(struct dkim_msg *m, const char *p, size_t len);
/* Does field k have this name (ASCII case-insensitive)? */
bool dkim_field_is(
    const struct dkim_msg *m, size_t k, const char *name, size_t name_len);

/*
 * The header hash input (3.7): the fields named by names[0..n), each
 * name taking the next instance from the bottom, a name with no instance
 * left contributing nothing; then sig_field (the signature's own field,
 * b= already emptied) canonicalised without its final CRLF.  Appended to
 * out; 0, or -1 if out is full.
 */
int dkim_header_input(const struct dkim_msg *m, enum dkim_canon c,
    const char *const *names, const size_t *names_len, size_t n,
    const char *sig_field, size_t sig_len, struct buf *out) WUR;

/*
 * The body hash (3.7) of the body of m with md: when limit is set only the
 * first l canonical octets are hashed.  *canon_len_out is the length of
 * the whole canonical body.  0, or -1 (OpenSSL failure).
 */
int dkim_body_hash(const struct dkim_msg *m, enum dkim_canon c,
    const EVP_MD *md, bool limit, uint64_t l, unsigned char *out,
    unsigned *out_len, uint64_t *canon_len_out) WUR;

/*
 * The signature's own field at the end of a header hash input: sig_field
 * (b= emptied) canonicalised, without its final CRLF (3.7).  0 or -1.
 */
int dkim_header_input_self(enum dkim_canon c, const char *sig_field,
    size_t sig_len, struct buf *out) WUR;

/* Remove everything between "b=" and the next ';' (or the end) of a
 * DKIM-Signature field (3.7, "the value of the b= tag ... deleted"). */
int dkim_strip_b(const char *field, size_t len, struct buf *out) WUR;

/* Base64 with FWS anywhere in it (3.2 base64string): 0 or -1. */
int dkim_b64_fws_decode(const char *s, size_t len, unsigned char *out,
    size_t outlen, size_t *n_out) WUR;

/*
 * The key of a lookup's answer (dkim_verify_key's rules): DKIM_PASS with
 * *k filled (the caller clears it), else DKIM_TEMPERROR or DKIM_PERMERROR
 * with why.
 */
enum dkim_result dkim_key_pick(enum dkim_dns status, const char *const *txt,
    const size_t *txt_len, size_t n, struct dkim_key *k, const char **why);
/*
 * dkim_key_parse through the process-wide cache of parsed keys
 * (dkim_keycache.c): the same record text gives the same key, decoded
 * once.  Thread-safe; *out is the caller's, cleared by dkim_key_clear.
 */
enum dkim_result dkim_key_parse_cached(
    const char *txt, size_t len, struct dkim_key *out, const char **why);
/* Its counters (for tests), and emptying it (tests, leak checkers). */
void dkim_keycache_stats(uint64_t *hits, uint64_t *misses, size_t *entries);
void dkim_keycache_flush(void);
/* Does key k allow signature s (3.6.1, 6.1.2)?  NULL, or why not. */
const char *dkim_key_fits(const struct dkim_sig *s, const struct dkim_key *k);
/* The public key operation over data (RFC 8463 3 for Ed25519): 0 when
 * sig is a's signature of data under pk. */
int dkim_pk_verify(EVP_PKEY *pk, enum dkim_alg a, const struct buf *data,
    const unsigned char *sig, size_t sig_len) WUR;

/*
 * Signature s, in field `field` of m, against key k: the key fits, the
 * body hash and the signature verify.  DKIM_PASS, or another result with
 * why.  *body_len_out: the canonical body's length.
 */
enum dkim_result dkim_sig_check(const struct dkim_msg *m, size_t field,
    const struct dkim_sig *s, const struct dkim_key *k, uint64_t *body_len_out,
    const char **why);

/*
 * What to sign: a DKIM-Signature (dkim_sign), an ARC-Message-Signature
 * (the DKIM signer's h= choice and body hash, i= the instance) or an
 * ARC-Seal (no h=, no body: the header input is prefix, the ARC sets it
 * seals already canonicalised, then the seal itself).
 */
struct dkim_sign_req {
	enum dkim_sig_kind kind;
	const struct dkim_sign_opts
	    *o;			  /* AMS, AS: identity and expire unused */
	unsigned instance;	  /* AMS, AS */
	const char *cv;		  /* AS: "none", "pass", "fail" */
	const struct buf *prefix; /* AS */
	const char *head;	  /* DKIM-Signature: header lines on top of */
	size_t head_len;	  /* msg, signed as if they were in it */
};

/* Sign as r says and append the field (folded, CRLF-ended) to out. */
int dkim_sign_kind(const struct dkim_sign_req *r, const char *msg, size_t len,
    struct buf *out, char *err, size_t errlen) WUR;

#endif
