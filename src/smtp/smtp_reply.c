/*
 * smtp_reply: the SMTP reply builder (RFC 5321 4.2, 4.2.1 for multi-line
 * replies; RFC 3463 and RFC 2034 for enhanced status codes).
 *
 * A text holding '\n' becomes a multi-line reply: every line but the last
 * is "CODE-ENH text", the last "CODE ENH text", each ended by CRLF.  An
 * empty line of text gives "CODE-ENH" / "CODE ENH" (or "CODE" alone), as
 * the RFC 5321 Reply-line grammar allows; an empty 334 SASL challenge is
 * "334 " since RFC 4954 4 requires the space.
 *
 * Invariants: a reply is appended whole or not at all; on any failure out
 * is restored to the length it had before the call.  Nothing is ever
 * truncated: a line that does not fit is an error.
 *
 * Refused (-1): a code outside 200..599; an enhanced code that is not
 * "class.subject.detail" (subject and detail 1..3 digits) or whose class
 * is not the code's first digit (3xx replies have no class of their own,
 * so only the syntax is checked there); text with CR, NUL or any other
 * control byte except the '\n' separator, since such a byte would let a
 * caller inject a reply line; a line over 512 octets incl. CRLF (RFC 5321
 * 4.5.3.1.5).  Bytes >= 0x80 pass through: an SMTPUTF8 address may be
 * echoed in a reply (RFC 6531 3.7.4).
 *
 * Limits: smtp_replyf formats into SMTP_REPLY_FMT_MAX octets on the stack.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "smtp/smtp.h"

#define SMTP_REPLY_LINE_MAX 512	 /* octets incl. CRLF (RFC 5321 4.5.3.1.5) */
#define SMTP_REPLY_FMT_MAX  4096 /* whole formatted text of smtp_replyf */

static bool
reply_digits(const char **pp, size_t max)
{
	const char *p = *pp;
	size_t n = 0;

	while (*p >= '0' && *p <= '9' && n < max) {
		p++;
		n++;
	}
	*pp = p;
	return n > 0 && !(*p >= '0' && *p <= '9');
}

/* RFC 3463 2: status-code = class "." subject "." detail */
static bool
reply_enh_valid(int code, const char *enh)
{
	const char *p = enh;
	char cls = enh[0];

	if (cls != '2' && cls != '4' && cls != '5')
		return false;
	if (code / 100 != 3 && cls - '0' != code / 100)
		return false;
	p++;
	if (*p++ != '.' || !reply_digits(&p, 3))
		return false;
	if (*p++ != '.' || !reply_digits(&p, 3))
		return false;
	return *p == '\0';
}

static bool
reply_text_valid(const char *text)
{
	const unsigned char *p;

	for (p = (const unsigned char *)text; *p != '\0'; p++)
		if ((*p < 0x20 && *p != '\n') || *p == 0x7f)
			return false;
	return true;
}

/* Append one line: "CODE" sep [enh] [" " text] CRLF, or fail whole. */
static int
reply_line(struct buf *out, int code, bool last, const char *enh,
    const char *text, size_t n)
{
	char line[SMTP_REPLY_LINE_MAX];
	size_t len = 0, enhlen = enh ? strlen(enh) : 0;
	/* RFC 4954 4: continue-req = "334" SP [base64], so keep its SP */
	bool sep = !last || enhlen > 0 || n > 0 || code == 334;
	bool space = enhlen > 0 && n > 0;

	/* enhlen is at most 9 (reply_enh_valid), so only n can overflow */
	if (n > SMTP_REPLY_LINE_MAX ||
	    3 + sep + enhlen + space + n + 2 > SMTP_REPLY_LINE_MAX)
		return -1;
	line[len++] = (char)('0' + code / 100);
	line[len++] = (char)('0' + code / 10 % 10);
	line[len++] = (char)('0' + code % 10);
	if (sep)
		line[len++] = last ? ' ' : '-';
	memcpy(line + len, enh ? enh : "", enhlen);
	len += enhlen;
	if (space)
		line[len++] = ' ';
	memcpy(line + len, text, n);
	len += n;
	line[len++] = '\r';
	line[len++] = '\n';
	return buf_append(out, line, len);
}

static void
reply_restore(struct buf *out, size_t len)
{
	out->len = len;
	if (out->data != NULL)
		out->data[len] = '\0';
}

int
smtp_reply(struct buf *out, int code, const char *enh, const char *text)
{
	size_t saved = out->len;
	const char *p, *nl;

	if (text == NULL)
		text = "";
	if (code < 200 || code > 599)
		return -1;
	if (enh != NULL && !reply_enh_valid(code, enh))
		return -1;
	if (!reply_text_valid(text))
		return -1;
	for (p = text;; p = nl + 1) {
		nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);

		if (reply_line(out, code, nl == NULL, enh, p, n) == -1) {
			reply_restore(out, saved);
			return -1;
		}
		if (nl == NULL)
			return 0;
	}
}

int
smtp_replyf(struct buf *out, int code, const char *enh, const char *fmt, ...)
{
	char text[SMTP_REPLY_FMT_MAX];
	va_list ap;
	int r;

	/*
	 * Exact, not cut: a reply may carry values (a queue id, a size
	 * limit) the client acts on.  str_vfmt also refuses a NUL from %c,
	 * which would cut the text without a word.
	 */
	va_start(ap, fmt);
	r = str_vfmt(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (r != 0)
		return -1;
	return smtp_reply(out, code, enh, text);
}
