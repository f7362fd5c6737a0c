/*
 * milter.h: the Sendmail milter protocol, version 6 as Postfix speaks it
 * (docs/milter.md).  Pure: it encodes the packets the MTA sends and
 * decodes the packets a milter answers; no socket, no clock.
 *
 * A packet on the wire is a 4-octet length in network order (counting
 * the command octet and the data), the command octet, then the data.
 * Strings inside are NUL-terminated; numbers are 32-bit network order.
 *
 * Encoders append one whole packet to a struct buf (its max bounds it)
 * and return 0, or -1 when it does not fit or an argument is unusable.
 * milter_reply_parse takes the bytes read so far and says whether a whole
 * packet is there; every length in it is checked against what was read
 * and against MILTER_REPLY_MAX, and the views it returns point into the
 * caller's bytes.
 */
#ifndef TERN_MILTER_H
#define TERN_MILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

#define MILTER_VERSION 6
#define MILTER_CHUNK   65535 /* largest body chunk sent */
/* largest reply packet taken: a body chunk of the largest size a milter
 * may use (1 MiB with SMFIP_MDS_1M, never offered, so this is lenient)
 * plus its command octet */
#define MILTER_REPLY_MAX ((1u << 20) + 1)

/* commands the MTA sends */
enum {
	MILTER_C_ABORT = 'A',
	MILTER_C_BODY = 'B',
	MILTER_C_CONNECT = 'C',
	MILTER_C_MACRO = 'D',
	MILTER_C_EOM = 'E',
	MILTER_C_HELO = 'H',
	MILTER_C_HEADER = 'L',
	MILTER_C_MAIL = 'M',
	MILTER_C_EOH = 'N',
	MILTER_C_OPTNEG = 'O',
	MILTER_C_QUIT = 'Q',
	MILTER_C_RCPT = 'R',
	MILTER_C_DATA = 'T',
};

/* replies a milter sends */
enum milter_reply_cmd {
	MILTER_R_ADDRCPT = '+',
	MILTER_R_DELRCPT = '-',
	MILTER_R_ADDRCPT_PAR = '2',
	MILTER_R_OPTNEG = 'O',
	MILTER_R_ACCEPT = 'a',
	MILTER_R_REPLBODY = 'b',
	MILTER_R_CONTINUE = 'c',
	MILTER_R_DISCARD = 'd',
	MILTER_R_CHGFROM = 'e',
	MILTER_R_ADDHEADER = 'h',
	MILTER_R_INSHEADER = 'i',
	MILTER_R_CHGHEADER = 'm',
	MILTER_R_PROGRESS = 'p',
	MILTER_R_QUARANTINE = 'q',
	MILTER_R_REJECT = 'r',
	MILTER_R_SKIP = 's',
	MILTER_R_TEMPFAIL = 't',
	MILTER_R_REPLYCODE = 'y',
};

/* actions (SMFIF_*): what a milter may do at the end of message */
#define MILTER_F_ADDHDRS     0x01u
#define MILTER_F_CHGBODY     0x02u
#define MILTER_F_ADDRCPT     0x04u
#define MILTER_F_DELRCPT     0x08u
#define MILTER_F_CHGHDRS     0x10u
#define MILTER_F_QUARANTINE  0x20u
#define MILTER_F_CHGFROM     0x40u
#define MILTER_F_ADDRCPT_PAR 0x80u
#define MILTER_F_SETSYMLIST  0x100u
#define MILTER_F_ALL	     0x1ffu

/* protocol flags (SMFIP_*): steps a milter does not want, and steps it
 * will not answer (NR) */
#define MILTER_P_NOCONNECT   0x01u
#define MILTER_P_NOHELO	     0x02u
#define MILTER_P_NOMAIL	     0x04u
#define MILTER_P_NORCPT	     0x08u
#define MILTER_P_NOBODY	     0x10u
#define MILTER_P_NOHDRS	     0x20u
#define MILTER_P_NOEOH	     0x40u
#define MILTER_P_NR_HDR	     0x80u
#define MILTER_P_NOUNKNOWN   0x100u
#define MILTER_P_NODATA	     0x200u
#define MILTER_P_SKIP	     0x400u
#define MILTER_P_RCPT_REJ    0x800u
#define MILTER_P_NR_CONN     0x1000u
#define MILTER_P_NR_HELO     0x2000u
#define MILTER_P_NR_MAIL     0x4000u
#define MILTER_P_NR_RCPT     0x8000u
#define MILTER_P_NR_DATA     0x10000u
#define MILTER_P_NR_UNKN     0x20000u
#define MILTER_P_NR_EOH	     0x40000u
#define MILTER_P_NR_BODY     0x80000u
#define MILTER_P_HDR_LEADSPC 0x100000u
/* what tern offers: every step may be skipped or left unanswered, and it
 * understands SMFIR_SKIP; no RCPT_REJ, no leading-space headers, no
 * larger chunks */
#define MILTER_P_OFFER                                                         \
	(MILTER_P_NOCONNECT | MILTER_P_NOHELO | MILTER_P_NOMAIL |              \
	    MILTER_P_NORCPT | MILTER_P_NOBODY | MILTER_P_NOHDRS |              \
	    MILTER_P_NOEOH | MILTER_P_NR_HDR | MILTER_P_NOUNKNOWN |            \
	    MILTER_P_NODATA | MILTER_P_SKIP | MILTER_P_NR_CONN |               \
	    MILTER_P_NR_HELO | MILTER_P_NR_MAIL | MILTER_P_NR_RCPT |           \
	    MILTER_P_NR_DATA | MILTER_P_NR_UNKN | MILTER_P_NR_EOH |            \
	    MILTER_P_NR_BODY)

/* the stage a macro packet belongs to: the command letter it precedes */
struct milter_macro {
	const char *name; /* "i", "{client_addr}" */
	const char *value;
};

/* a string view into the parsed packet (NUL not counted; the byte after
 * it is the packet's NUL) */
struct milter_str {
	const char *p;
	size_t len;
};

struct milter_reply {
	enum milter_reply_cmd cmd;
	/* OPTNEG */
	uint32_t version, actions, protocol;
	/* REPLYCODE: code 400..599, text the whole "550 5.7.1 ..." line */
	int code;
	/* headers: name/value; INSHEADER and CHGHEADER: index */
	uint32_t index;
	struct milter_str name, value;
	/* REPLYCODE text, QUARANTINE reason, ADDRCPT/DELRCPT/CHGFROM
	 * address, REPLBODY data (raw, may hold NUL) */
	struct milter_str text;
	struct milter_str args; /* ADDRCPT_PAR and CHGFROM ESMTP arguments */
};

/* Packets the MTA sends. */
int milter_enc_optneg(struct buf *b, uint32_t actions, uint32_t protocol) WUR;
/* family '4', '6', 'L' (unix) or 'U' (unknown: no port, no address) */
int milter_enc_connect(struct buf *b, const char *host, char family,
    uint16_t port, const char *addr) WUR;
int milter_enc_helo(struct buf *b, const char *helo) WUR;
/* MAIL and RCPT: the address in angle brackets, then ESMTP args */
int milter_enc_mail(
    struct buf *b, const char *addr, const char *const *args, size_t n) WUR;
int milter_enc_rcpt(
    struct buf *b, const char *addr, const char *const *args, size_t n) WUR;
int milter_enc_header(struct buf *b, const char *name, size_t namelen,
    const char *value, size_t valuelen) WUR;
/* at most MILTER_CHUNK octets */
int milter_enc_body(struct buf *b, const char *p, size_t n) WUR;
/* a command with no data: DATA, EOH, EOM, ABORT, QUIT */
int milter_enc_simple(struct buf *b, char cmd) WUR;
int milter_enc_macro(
    struct buf *b, char stage, const struct milter_macro *m, size_t n) WUR;

/*
 * One reply packet from p[0..n): 1 and *used when whole (r filled, views
 * into p), 0 when more is needed, -1 when it is malformed: a length of 0
 * or above MILTER_REPLY_MAX, an unknown command, a field missing its NUL,
 * data left over, a reply code outside 4xx/5xx.
 */
int milter_reply_parse(
    const uint8_t *p, size_t n, struct milter_reply *r, size_t *used) WUR;
/*
 * A milter's address from milter.servers: "inet:HOST:PORT" (HOST an IPv4
 * address, a name, or an IPv6 address in brackets) or "unix:/PATH".
 * 0 and spec filled, or -1.
 */
#define MILTER_HOST_MAX 255
#define MILTER_PATH_MAX 107 /* sun_path less its NUL */
struct milter_spec {
	bool unix_path;
	char host[MILTER_HOST_MAX + 1]; /* or the path */
	uint16_t port;
};
int milter_parse_spec(const char *s, size_t n, struct milter_spec *spec) WUR;

/*
 * The message's header fields, for the HEADER packets and for the edits
 * made at the end of message.  milter_header_next: the field starting at
 * *off of msg[0..len) (folded lines included); false at the blank line
 * that ends the header or at the end, *off then at the body.  A field is
 * name, ':', value; a line without a colon ends the header there.
 */
struct milter_hdr {
	const char *name;
	size_t namelen;
	const char *field; /* the whole field with its line end(s) */
	size_t fieldlen;
};
bool milter_header_next(
    const char *msg, size_t len, size_t *off, struct milter_hdr *h);
/* The value as a HEADER packet carries it: one leading space dropped,
 * the last line end dropped, inner CRLF as LF (as Sendmail passes it). */
int milter_header_value(const struct milter_hdr *h, struct buf *out) WUR;

/* One edit asked for at the end of message, applied in order. */
enum milter_edit_kind {
	MILTER_EDIT_ADD,    /* at the end of the header */
	MILTER_EDIT_INSERT, /* before field number index (0: the top) */
	MILTER_EDIT_CHANGE, /* the index-th field of that name (from 1); an
			       empty value deletes it; missing: added */
};
struct milter_edit {
	enum milter_edit_kind kind;
	uint32_t index;
	char *name, *value; /* NUL-terminated, owned by the caller */
};
/*
 * The message msg[0..len) with the edits applied to its header and, when
 * body is not NULL, its body replaced by body[0..bodylen) (bare LF made
 * CRLF), appended to out.  New fields are written "Name: value" with
 * their line ends made CRLF.  0, or -1 when out's max is reached.
 */
int milter_rewrite(const char *msg, size_t len, const struct milter_edit *e,
    size_t n, const char *body, size_t bodylen, struct buf *out) WUR;

/* The reply's name for logs ("reject", "addheader", ...). */
const char *milter_reply_name(enum milter_reply_cmd cmd);

#endif
