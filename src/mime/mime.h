/*
 * mime: the MIME structure of a stored message (RFC 2045, 2046), for one
 * job: turning a message with 8-bit content into 7-bit MIME for a peer
 * that does not offer 8BITMIME (RFC 6152 3, the conversion RFC 1652 and
 * RFC 2045 describe).  Pure: bytes in, bytes out; no I/O, no clock, no
 * logging.  The message is held whole by the caller (remote.c maps the
 * queue file); the output is produced a chunk at a time, so a large
 * message is never copied whole.
 *
 * Owns: the 7-bit conversion (struct mime_plan).  May call: addr (header
 * fields), util.  Called by deliver/remote.c while it streams a body.
 *
 * What is changed, and nothing else (every other octet is copied):
 *  - a leaf part whose body has octets >= 0x80, NUL octets or lines over
 *    998 octets, labelled 7bit, 8bit, binary or not labelled, is encoded:
 *    text/ types as quoted-printable, anything else as base64; its
 *    Content-Transfer-Encoding field is replaced (or added at the end of
 *    its header);
 *  - a 7-bit clean leaf or a multipart / message/rfc822 labelled 8bit or
 *    binary is relabelled 7bit (after conversion that is what it is);
 *  - multipart/ types are walked by its boundary (RFC 2046 5.1), message/rfc822
 *    by its own header and body: their content cannot take an encoding
 *    (RFC 2045 6.4), so their parts are converted one by one;
 *  - a message (or an encapsulated message/rfc822) that is not MIME and
 *    whose body is encoded gets "MIME-Version: 1.0" and, if it has no
 *    Content-Type, "Content-Type: text/plain; charset=unknown-8bit"
 *    (RFC 1428: 8-bit text of unknown charset, the label for exactly this
 *    transition);
 *  - octets >= 0x80 or NUL in a multipart's preamble or epilogue, text that
 *    MIME readers must ignore (RFC 2046 5.1.1), become '?', and its lines
 *    are cut at 998 octets.
 * Header fields are never changed: 8-bit octets in them are reported
 * (MIME_F_HDR_8BIT), a caller decides (they need SMTPUTF8).
 *
 * When the conversion is impossible (MIME_F_IMPOSSIBLE, with a reason):
 * 8-bit octets in a part already labelled quoted-printable, base64 or an
 * unknown encoding; in a multipart that has no usable boundary or is
 * nested deeper than MIME_DEPTH_MAX; in message/partial or
 * message/external-body (7bit only, RFC 2046 5.2); a NUL octet in a
 * header field; more than MIME_PARTS_MAX parts.  The caller then
 * refuses the message (5.6.3).
 *
 * Signatures: re-encoding a part breaks a DKIM signature over the body
 * (RFC 6376 5.3 asks signers to sign 7-bit forms for this reason).  tern
 * signs nothing yet; a signer added later must sign what this module
 * produces, i.e. decide the downgrade first, or sign 7-bit only.
 */
#ifndef TERN_MIME_H
#define TERN_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

#define MIME_DEPTH_MAX	  32	/* nested multipart / message/rfc822 */
#define MIME_PARTS_MAX	  10000 /* entities walked in one message */
#define MIME_BOUNDARY_MAX 200	/* RFC 2046 says 70; some mailers go over */
#define MIME_LINE_MAX	  998	/* octets of a line, CRLF excluded */

/* struct mime_plan.flags */
#define MIME_F_CHANGED	  0x01 /* the output differs from the input */
#define MIME_F_ENCODED	  0x02 /* some part is re-encoded */
#define MIME_F_HDR_8BIT	  0x04 /* a header field has octets >= 0x80 */
#define MIME_F_IMPOSSIBLE 0x08 /* some content cannot be made 7-bit: why */

struct mime_seg;

struct mime_plan {
	const char *msg; /* the caller's message, kept until free */
	size_t len;
	struct mime_seg *segs;
	size_t nsegs, cap;
	unsigned flags;
	const char *why;   /* static text, with MIME_F_IMPOSSIBLE */
	uint64_t out_size; /* octets mime_plan_read() produces in all */
	/* reading: the next segment, the offset in it, the output column */
	size_t seg, pos;
	unsigned col;
};

/*
 * Walk msg[0..len) and plan its 7-bit form.  Always succeeds (memory
 * comes from xmalloc); look at p->flags.  msg must stay valid and
 * unchanged until mime_plan_free().
 */
void mime_plan_7bit(struct mime_plan *p, const char *msg, size_t len);
void mime_plan_free(struct mime_plan *p);
/* Back to the first octet of the output. */
void mime_plan_rewind(struct mime_plan *p);
/*
 * Append the next octets of the output to out: about max (a few more at
 * most).  Returns 1 when the output is complete, 0 when more remains, -1
 * when out is full (out may then hold part of a chunk).  Lines end in CRLF
 * where they did in the input; dot-stuffing is the transport's job.
 */
int mime_plan_read(struct mime_plan *p, struct buf *out, size_t max);

/* Does msg[0..len) have an octet >= 0x80 (or a NUL) anywhere? */
bool mime_has_8bit(const char *msg, size_t len);

#endif
