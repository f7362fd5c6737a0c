/*
 * smtp_stuff: dot-stuffing of outgoing DATA content (RFC 5321 4.5.2), the
 * mirror of smtp_body's unstuffing.
 *
 * Every line that starts with '.' gets one more '.' in front.  The stored
 * message is CRLF text; should a bare CR or a bare LF slip in (an injected
 * message, a damaged file), it is written as CRLF.  So the output holds
 * only CRLF line ends, and CRLF "." CRLF appears in it only as the
 * terminator smtp_stuff_finish() appends: no receiver, strict or lax
 * about line ends, can see the data end early (no SMTP smuggling).
 *
 * State carries across calls (a line start, or a CR, may fall at the end
 * of a chunk); a zeroed struct smtp_stuff is the start state.  Lines are
 * not folded: a line over 1000 octets goes out as it is.
 *
 * Limits: out's maximum; a full out gives -1 and the stream is unusable.
 */
#include <string.h>

#include "smtp/smtp.h"

void
smtp_stuff_init(struct smtp_stuff *s)
{
	memset(s, 0, sizeof(*s));
}

static int
stuff_put(struct smtp_stuff *s, struct buf *out, const char *p, size_t n)
{
	if (buf_append(out, p, n) == -1)
		return -1;
	s->out_octets += n;
	return 0;
}

/* Length of the run at in[0..len) holding neither CR nor LF. */
static size_t
stuff_run(const char *in, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (in[i] == '\r' || in[i] == '\n')
			break;
	return i;
}

/*
 * One step: consumes at least one octet of in, or none when a line end
 * owed after a CR is written first.  Returns octets consumed, or -1.
 */
static long
stuff_step(struct smtp_stuff *s, const char *in, size_t len, struct buf *out)
{
	size_t n;

	if (s->cr) {
		/* a CR went out last; its LF comes now, given or made up */
		s->cr = false;
		s->mid_line = false;
		if (stuff_put(s, out, "\n", 1) == -1)
			return -1;
		return in[0] == '\n' ? 1 : 0;
	}
	if (!s->mid_line && in[0] == '.' && stuff_put(s, out, ".", 1) == -1)
		return -1;
	if (in[0] == '\r') {
		s->cr = true;
		return stuff_put(s, out, "\r", 1) == -1 ? -1 : 1;
	}
	if (in[0] == '\n') {
		/* bare LF */
		s->mid_line = false;
		return stuff_put(s, out, "\r\n", 2) == -1 ? -1 : 1;
	}
	n = stuff_run(in, len);
	s->mid_line = true;
	return stuff_put(s, out, in, n) == -1 ? -1 : (long)n;
}

int
smtp_stuff_feed(
    struct smtp_stuff *s, const char *in, size_t len, struct buf *out)
{
	size_t i = 0;

	while (i < len) {
		long n = stuff_step(s, in + i, len - i, out);

		if (n < 0)
			return -1;
		i += (size_t)n;
	}
	return 0;
}

int
smtp_stuff_finish(struct smtp_stuff *s, struct buf *out)
{
	const char *end = s->cr		? "\n.\r\n"
			  : s->mid_line ? "\r\n.\r\n"
					: ".\r\n";

	s->cr = false;
	s->mid_line = false;
	return stuff_put(s, out, end, strlen(end));
}
