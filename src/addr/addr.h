/*
 * addr: mailbox, domain and path syntax (RFC 5321 4.1.2, 4.1.3; RFC 6531
 * for SMTPUTF8), and their normalisation for lookups.
 *
 * Owns: struct addr and the rules of mailbox, domain and path syntax, plus
 * the RFC 5322 header-field scanner (header.c).  May call: util only; no
 * I/O of any kind.
 *
 * Pure: no I/O, no allocation.  Inputs are (pointer, length); outputs are
 * fixed-size fields of struct addr, whose sizes are the RFC 5321 4.5.3.1
 * limits, so nothing here can overflow by construction.
 */
#ifndef TERN_ADDR_H
#define TERN_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#define ADDR_LOCAL_MAX                                                         \
	64 /* octets of the local part as sent (RFC 5321 4.5.3.1.1) */
#define ADDR_DOMAIN_MAX 255 /* octets of the domain (4.5.3.1.2) */
#define ADDR_PATH_MAX                                                          \
	256 /* octets of a reverse/forward path incl. <> (4.5.3.1.3) */

enum addr_domain_kind {
	ADDR_DOMAIN_NONE, /* null path <>, or bare <Postmaster> */
	ADDR_DOMAIN_NAME, /* a hostname: labels of letters, digits, '-', or
			     UTF-8 */
	ADDR_DOMAIN_IPV4, /* [192.0.2.1] */
	ADDR_DOMAIN_IPV6, /* [IPv6:2001:db8::1] */
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
	bool null;	 /* <> */
	bool postmaster; /* bare <Postmaster> (RCPT only, any case) */
	bool quoted;	 /* local part was a quoted-string */
	bool utf8;	 /* local part or domain has bytes >= 0x80 */
};

enum addr_status {
	ADDR_OK = 0,
	ADDR_ERR_SYNTAX,      /* not a path / mailbox */
	ADDR_ERR_LOCAL_LONG,  /* local part over 64 octets */
	ADDR_ERR_DOMAIN_LONG, /* domain over 255 octets */
	ADDR_ERR_PATH_LONG,   /* path over 256 octets */
	ADDR_ERR_UTF8,	      /* non-ASCII without SMTPUTF8, or invalid UTF-8 */
};

/* flags for the parsers */
#define ADDR_F_UTF8		0x1 /* SMTPUTF8 in effect: UTF-8 allowed (RFC 6531) */
#define ADDR_F_ALLOW_NULL	0x2 /* <> allowed (MAIL FROM) */
#define ADDR_F_ALLOW_POSTMASTER 0x4 /* bare <Postmaster> allowed (RCPT TO) */

/*
 * Parse a path at s[0..len): "<" [ A-d-l ":" ] Mailbox ">" or "<>".
 * A source route (@a,@b:) is accepted and ignored (RFC 5321 4.1.2, C.).
 * Parsing stops after '>'; *consumed_out gets the octets used, so the
 * caller can parse ESMTP parameters after it.
 */
enum addr_status addr_parse_path(const char *s, size_t len, unsigned flags,
    struct addr *out, size_t *consumed_out);

/* Parse exactly a Mailbox "local@domain" in s[0..len) (no angle brackets).
 * Over 254 octets it is ADDR_ERR_PATH_LONG: it would not fit in a path. */
enum addr_status addr_parse_mailbox(
    const char *s, size_t len, unsigned flags, struct addr *out);

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

/* ---- message header section and address lists (src/addr/header.c) ----- */

/*
 * The header section of a message held whole in memory (RFC 5322 2.2):
 * where it ends, its fields one by one, and the addresses in To/Cc/Bcc.
 * Used by sendmail -t, by submission (is Date/Message-ID there? RFC 6409
 * 8.2, 8.3) and by the DSN builder (RET=HDRS).
 *
 * Lines end in CRLF; a bare LF also ends a line (local input from sendmail
 * is scanned liberally) and is reported in the field's bad bits, so a
 * strict caller can refuse it.  The header section ends at the first empty
 * line; a message without one is all header and no body.  Views point into
 * the caller's bytes; nothing is copied except by addr_hdr_unfold().
 */
#define ADDR_HDR_FIELD_MAX 65536 /* octets of one field, folds included */
#define ADDR_HDR_LINE_MAX  998	/* octets of a line without CRLF (5322 2.1.1) */
#define ADDR_LIST_MAX	   1000 /* addresses one addr_list yields */

/* struct addr_hdr_field.bad: why a field is not clean (bits) */
#define ADDR_HDR_BAD_NAME                                                      \
	0x01		       /* no "name:", a name byte outside 33..126,     \
				  or continuation lines with no field */
#define ADDR_HDR_BAD_LONG 0x02 /* over ADDR_HDR_FIELD_MAX octets */
#define ADDR_HDR_BAD_LINE 0x04 /* a line over ADDR_HDR_LINE_MAX octets */
#define ADDR_HDR_BAD_EOL  0x08 /* a bare LF line end or a CR inside a line */
#define ADDR_HDR_BAD_NUL  0x10 /* a NUL byte */

struct addr_hdr_field {
	const char *name;  /* without the ':' and any blanks before it; */
	size_t name_len;   /* NULL, 0 with ADDR_HDR_BAD_NAME */
	const char *value; /* after the ':', still folded; blanks and line */
	size_t
	    value_len;	/* ends trimmed at both ends (whole line if no name) */
	size_t off;	/* the field's first octet in the message */
	size_t raw_len; /* octets of the field with its last line end */
	unsigned bad;	/* ADDR_HDR_BAD_* bits, 0 for a clean field */
};

struct addr_hdr_scan {
	const char *msg;
	size_t len;
	size_t end;	 /* header section length, its empty line excluded */
	size_t body;	 /* offset of the body: after the empty line, or len */
	size_t pos;	 /* next field */
	size_t longest;	 /* longest line so far, line end excluded */
	unsigned fields; /* fields returned so far */
	unsigned bad;	 /* OR of the bad bits of those fields */
};

/*
 * Length of the header section of msg[0..len) (the empty line excluded);
 * *body_out (may be NULL) gets the offset of the body.  No empty line:
 * returns len and *body_out = len.
 */
size_t addr_hdr_end(const char *msg, size_t len, size_t *body_out);

void addr_hdr_scan_init(struct addr_hdr_scan *s, const char *msg, size_t len);
/* Next field of the header section into *out; false at its end. */
bool addr_hdr_next(struct addr_hdr_scan *s, struct addr_hdr_field *out);
/* Is f named name (ASCII case-insensitive, exact length)? */
bool addr_hdr_name_is(const struct addr_hdr_field *f, const char *name);
/* First field named name (e.g. "Message-ID") in msg; false if none. */
bool addr_hdr_find(
    const char *msg, size_t len, const char *name, struct addr_hdr_field *out);
/*
 * Fields named name in the header section of msg, counted up to stop (the
 * scan ends there: a loop check needs no more than its threshold).
 */
unsigned addr_hdr_count(
    const char *msg, size_t len, const char *name, unsigned stop);
/*
 * Unfold a value (RFC 5322 2.2.3: drop the line ends of folds) into out,
 * NUL-terminated.  Returns its length, or -1 if it does not fit.
 */
int addr_hdr_unfold(const char *v, size_t len, char *out, size_t outlen);

/*
 * Addresses of an RFC 5322 address-list (3.4) field value, e.g. To, Cc,
 * Bcc, one by one: "Name <a@b>", a@b, "quoted name" <a@b>, comments in
 * parentheses, groups ("team: a@b, c@d;", "undisclosed-recipients:;"),
 * obsolete routes "<@r:a@b>" and empty list elements.  Each addr-spec is
 * checked by addr_parse_mailbox() (flags: ADDR_F_UTF8), so what comes out
 * is a valid SMTP mailbox.  The first error ends the list: a caller that
 * sends mail to the list must not guess what a broken one meant.
 */
enum addr_list_status {
	ADDR_LIST_OK = 0, /* *out holds the next address */
	ADDR_LIST_END,	  /* no more addresses */
	ADDR_LIST_SYNTAX, /* not an address list (err_pos says where) */
	ADDR_LIST_ADDR,	  /* an addr-spec SMTP refuses: see addr_err */
	ADDR_LIST_MANY,	  /* more than ADDR_LIST_MAX addresses */
	ADDR_LIST_LONG,	  /* value over ADDR_HDR_FIELD_MAX octets */
};

/* flag for addr_list_init, with ADDR_F_UTF8: */
#define ADDR_LIST_F_LOCAL                                                      \
	0x100 /* a bare local part ("root") is an address;                     \
		 it comes out with domain "" and kind                          \
		 ADDR_DOMAIN_NONE (sendmail -t) */

struct addr_list {
	const char *p;
	size_t len;
	size_t pos;
	unsigned flags;
	unsigned count; /* addresses returned so far */
	bool in_group;
	enum addr_list_status st;  /* sticky once an error or the end is met */
	enum addr_status addr_err; /* detail of ADDR_LIST_ADDR */
	size_t err_pos; /* offset in the value where the error was met */
};

void addr_list_init(
    struct addr_list *l, const char *value, size_t len, unsigned flags);
enum addr_list_status addr_list_next(struct addr_list *l, struct addr *out);
const char *addr_list_strerror(enum addr_list_status st);

#endif
