/*
 * dkim_int: private to src/mailauth/dkim*.c.  The message index the
 * verifier and the signer share, and the two hashes every signature is
 * made of (RFC 6376 3.7), so both sides compute them with the same code.
 */
#ifndef TERN_MAILAUTH_DKIM_INT_H
#define TERN_MAILAUTH_DKIM_INT_H

#include "mailauth/dkim.h"

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

/* Remove everything between "b=" and the next ';' (or the end) of a
 * DKIM-Signature field (3.7, "the value of the b= tag ... deleted"). */
int dkim_strip_b(const char *field, size_t len, struct buf *out) WUR;

/* Base64 with FWS anywhere in it (3.2 base64string): 0 or -1. */
int dkim_b64_fws_decode(const char *s, size_t len, unsigned char *out,
    size_t outlen, size_t *n_out) WUR;

#endif
