/*
 * addr: mailbox, domain and path syntax (RFC 5321 4.1.2, 4.1.3; RFC 6531
 * for SMTPUTF8), and their normalisation for lookups.
 *
 * Pure: no I/O, no allocation.  Inputs are (pointer, length); outputs are
 * fixed-size fields of struct addr, whose sizes are the RFC 5321 4.5.3.1
 * limits, so nothing here can overflow by construction.
 */
#ifndef TERN_ADDR_H
#define TERN_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#define ADDR_LOCAL_MAX 64    /* octets of the local part as sent (RFC 5321 4.5.3.1.1) */
#define ADDR_DOMAIN_MAX 255  /* octets of the domain (4.5.3.1.2) */
#define ADDR_PATH_MAX 256    /* octets of a reverse/forward path incl. <> (4.5.3.1.3) */

enum addr_domain_kind {
	ADDR_DOMAIN_NONE,     /* null path <>, or bare <Postmaster> */
	ADDR_DOMAIN_NAME,     /* a hostname: labels of letters, digits, '-', or UTF-8 */
	ADDR_DOMAIN_IPV4,     /* [192.0.2.1] */
	ADDR_DOMAIN_IPV6,     /* [IPv6:2001:db8::1] */
};

struct addr {
	/*
	 * local: the local part with quoting removed ("a b"@x -> a b), so it
	 * can be looked up; addr_format() quotes it again when needed.
	 * domain: as sent for literals ("[192.0.2.1]"), lower-cased for names
	 * (ASCII letters only; U-labels are kept as sent).
	 */
	char local[ADDR_LOCAL_MAX + 1];
	char domain[ADDR_DOMAIN_MAX + 1];
	enum addr_domain_kind kind;
	bool null;            /* <> */
	bool postmaster;      /* bare <Postmaster> (RCPT only, any case) */
	bool quoted;          /* local part was a quoted-string */
	bool utf8;            /* local part or domain has bytes >= 0x80 */
};

enum addr_status {
	ADDR_OK = 0,
	ADDR_ERR_SYNTAX,      /* not a path / mailbox */
	ADDR_ERR_LOCAL_LONG,  /* local part over 64 octets */
	ADDR_ERR_DOMAIN_LONG, /* domain over 255 octets */
	ADDR_ERR_PATH_LONG,   /* path over 256 octets */
	ADDR_ERR_UTF8,        /* non-ASCII without SMTPUTF8, or invalid UTF-8 */
};

/* flags for the parsers */
#define ADDR_F_UTF8 0x1          /* SMTPUTF8 in effect: UTF-8 allowed (RFC 6531) */
#define ADDR_F_ALLOW_NULL 0x2    /* <> allowed (MAIL FROM) */
#define ADDR_F_ALLOW_POSTMASTER 0x4 /* bare <Postmaster> allowed (RCPT TO) */

/*
 * Parse a path at s[0..len): "<" [ A-d-l ":" ] Mailbox ">" or "<>".
 * A source route (@a,@b:) is accepted and ignored (RFC 5321 4.1.2, C.).
 * Parsing stops after '>'; *consumed_out gets the octets used, so the
 * caller can parse ESMTP parameters after it.
 */
enum addr_status addr_parse_path(const char *s, size_t len, unsigned flags,
    struct addr *out, size_t *consumed_out);

/* Parse exactly a Mailbox "local@domain" in s[0..len) (no angle brackets). */
enum addr_status addr_parse_mailbox(const char *s, size_t len, unsigned flags,
    struct addr *out);

/* Parse a domain or address literal (for EHLO, table keys, -o domains). */
enum addr_status addr_parse_domain(const char *s, size_t len, unsigned flags,
    char *out, size_t outlen, enum addr_domain_kind *kind_out);

/*
 * Write "local@domain" (no brackets) to out, quoting the local part when it
 * is not a valid dot-string.  "" for the null path; "postmaster" for bare
 * Postmaster.  Returns the length, or -1 if outlen is too small.
 */
int addr_format(const struct addr *a, char *out, size_t outlen);

/* Human text for a status, for reply texts ("local part too long"). */
const char *addr_strerror(enum addr_status st);

/* true if local part is "postmaster" in any case (RFC 5321 4.5.1) */
bool addr_is_postmaster(const struct addr *a);

#endif
