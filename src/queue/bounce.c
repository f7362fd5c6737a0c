/*
 * bounce: build a DSN (RFC 3464 report in an RFC 6522 multipart/report)
 * for the sender of a message, from the queue's record of it.
 *
 * Shape of the result (CRLF throughout):
 *
 *   From/To/Subject/Date/Message-ID/Auto-Submitted/MIME-Version
 *   Content-Type: multipart/report; report-type=delivery-status; boundary
 *   part 1  text/plain: what happened, per recipient, in words
 *   part 2  message/delivery-status: per-message fields, then one block
 *           of per-recipient fields each (RFC 3464 2.2, 2.3)
 *   part 3  message/rfc822 (the original, for failures) or
 *           text/rfc822-headers (RET=HDRS, delays, successes, too big)
 *
 * Invariants:
 *  - Every caller string that reaches the output goes through
 *    bounce_clean(): no CR, LF or other control character, at most
 *    BOUNCE_TEXT_MAX octets, ASCII unless SMTPUTF8 (then well-formed
 *    UTF-8).  Fields are folded at spaces only, so every line of parts 1
 *    and 2 and of the header is under 998 octets and a hostile diagnostic
 *    cannot start a line of its own (CVE-2020-8794 class).
 *  - The boundary occurs in none of the three parts' content: candidates
 *    are tried until one is absent (the original is checked, not trusted).
 *  - The returned original is copied byte for byte, cut only at a field
 *    boundary of its header section; a CRLF is added if it lacks a final
 *    one, since the delimiter's CRLF belongs to the delimiter (RFC 2046).
 *  - On any error out->len is put back where it was.
 *
 * Limits: BOUNCE_RCPTS_MAX recipients, return_max octets of the original
 * (10 MiB by default), BOUNCE_TEXT_MAX octets per cleaned text.
 *
 * Pure: no clock (times are parameters, formatted in UTC by hand so that
 * no time zone file is read), no I/O; allocation only in struct buf.
 */
#include "queue/bounce.h"

#include <string.h>

#include "addr/addr.h"

#define BOUNCE_WIDTH	      76 /* fold before a word would pass this */
#define BOUNCE_PART_MAX	      (64u * 1024 * 1024) /* parts 1 and 2, each */
#define BOUNCE_BOUNDARY_TRIES 16
#define BOUNCE_DATE_MAX	      40

/* A writer with a sticky error, so a sequence of appends checks once. */
struct bw {
	struct buf *b;
	int err;
	size_t col; /* octets on the current line */
};

struct bounce_ctx {
	const struct bounce_in *in;
	bool utf8;	 /* SMTPUTF8: RFC 6533 types, UTF-8 kept */
	bool hdrs;	 /* part 3 is the header section only */
	bool too_big;	 /* hdrs because the message passed return_max */
	bool hdrs_cut;	 /* even the header section was cut */
	bool ret_8bit;	 /* part 3 has octets >= 0x80 */
	const char *ret; /* part 3 content, a view into in->msg */
	size_t ret_len;
	size_t return_max;
	char boundary[48];
};

/* ---- writing --------------------------------------------------------- */

static void
bw_mem(struct bw *w, const char *p, size_t n)
{
	size_t i;

	if (n == 0)
		return;
	if (w->err || buf_append(w->b, p, n) != 0) {
		w->err = -1;
		return;
	}
	for (i = 0; i < n; i++)
		w->col = p[i] == '\n' ? 0 : w->col + 1;
}

static void
bw_str(struct bw *w, const char *s)
{
	bw_mem(w, s, strlen(s));
}

/* Length of the well-formed UTF-8 sequence at s (NUL-terminated), or 0. */
static size_t
bounce_utf8_len(const unsigned char *s)
{
	size_t n, i;

	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	for (i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
	    (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
		return 0; /* overlong, surrogate, above U+10FFFF */
	return n;
}

/*
 * Clean untrusted text s into out (BOUNCE_TEXT_MAX + 1 octets): control
 * characters (CR, LF, TAB ...) and runs of spaces become one space, ends
 * trimmed; octets >= 0x80 are kept as well-formed UTF-8 when utf8, else
 * become '?'.  Cut at BOUNCE_TEXT_MAX, ending in "...".  Returns length.
 */
static size_t
bounce_clean(const char *s, bool utf8, char *out)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0, n;
	bool space = false;

	while (*p != '\0') {
		if (*p <= ' ' || *p == 0x7f) {
			space = o > 0;
			p++;
			continue;
		}
		n = *p < 0x80 ? 1 : utf8 ? bounce_utf8_len(p) : 0;
		if (o + space + (n ? n : 1) > BOUNCE_TEXT_MAX - 3) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		if (space)
			out[o++] = ' ';
		space = false;
		if (n == 0) {
			out[o++] = '?';
			p++;
			continue;
		}
		memcpy(out + o, p, n);
		o += n;
		p += n;
	}
	out[o] = '\0';
	return o;
}

/*
 * Append cleaned text word by word, breaking with brk (a CRLF and an
 * indent) before a word that would pass BOUNCE_WIDTH, unless the line has
 * only its indent.  Words are never cut: cleaning bounds them.
 */
static void
bw_words(struct bw *w, const char *text, const char *brk, size_t indent)
{
	const char *p = text;
	bool first = true;

	while (*p != '\0') {
		const char *sp = strchr(p, ' ');
		size_t n = sp ? (size_t)(sp - p) : strlen(p);

		if (!first && w->col + 1 + n > BOUNCE_WIDTH && w->col > indent)
			bw_str(w, brk);
		else if (!first)
			bw_str(w, " ");
		bw_mem(w, p, n);
		first = false;
		p += n;
		if (*p == ' ')
			p++;
	}
}

/* Clean raw, then write it as words (see bw_words). */
static void
bw_text(
    struct bw *w, const char *raw, bool utf8, const char *brk, size_t indent)
{
	char t[BOUNCE_TEXT_MAX + 1];

	bounce_clean(raw, utf8, t);
	bw_words(w, t, brk, indent);
}

/* "Name: prefix value\r\n", value cleaned and folded. */
static void
bw_field(struct bw *w, const char *name, const char *prefix, const char *value,
    bool utf8)
{
	bw_str(w, name);
	bw_str(w, ": ");
	if (prefix != NULL) {
		bw_text(w, prefix, false, "\r\n ", 1);
		bw_str(w, "; ");
	}
	bw_text(w, value, utf8, "\r\n ", 1);
	bw_str(w, "\r\n");
}

/* RFC 5322 date-time of t in UTC; false if t is out of range. */
static bool
bounce_date(time_t t, char out[BOUNCE_DATE_MAX])
{
	static const char days[7][4] = {
	    "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May",
	    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || tm.tm_year < 0 || tm.tm_year > 8099 ||
	    tm.tm_wday < 0 || tm.tm_wday > 6 || tm.tm_mon < 0 || tm.tm_mon > 11)
		return false;
	return str_fmt(out, BOUNCE_DATE_MAX,
		   "%s, %02d %s %04d %02d:%02d:%02d "
		   "+0000",
		   days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
		   tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec) == 0;
}

static void
bw_date_field(struct bw *w, const char *name, time_t t)
{
	char d[BOUNCE_DATE_MAX];

	if (t != 0 && bounce_date(t, d))
		bw_field(w, name, NULL, d, false);
}

/* ---- recipients -------------------------------------------------------- */

static const char *
bounce_action_name(enum bounce_action a)
{
	switch (a) {
	case BOUNCE_ACTION_FAILED:
		return "failed";
	case BOUNCE_ACTION_DELAYED:
		return "delayed";
	case BOUNCE_ACTION_DELIVERED:
		return "delivered";
	case BOUNCE_ACTION_RELAYED:
		return "relayed";
	case BOUNCE_ACTION_EXPANDED:
		return "expanded";
	}
	return "failed";
}

/* 1 to 3 digits, then end or a dot */
static const char *
bounce_digits(const char *s)
{
	size_t n = 0;

	while (n < 4 && s[n] >= '0' && s[n] <= '9')
		n++;
	return n >= 1 && n <= 3 ? s + n : NULL;
}

/* status-code = class "." subject "." detail (RFC 3463); else x.0.0. */
static const char *
bounce_status(const struct bounce_rcpt *r)
{
	const char *s = r->status, *p;

	if (s != NULL && (s[0] == '2' || s[0] == '4' || s[0] == '5') &&
	    s[1] == '.' && (p = bounce_digits(s + 2)) != NULL && *p == '.' &&
	    (p = bounce_digits(p + 1)) != NULL && *p == '\0')
		return s;
	switch (r->action) {
	case BOUNCE_ACTION_FAILED:
		return "5.0.0";
	case BOUNCE_ACTION_DELAYED:
		return "4.0.0";
	default:
		return "2.0.0";
	}
}

static bool
bounce_has_high(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return true;
	return false;
}

/* address-type = atom (RFC 3464 2.1.2); a malformed one is left out. */
static bool
bounce_type_ok(const char *t)
{
	size_t n = 0;

	for (; t[n] != '\0'; n++)
		if (!((t[n] >= 'a' && t[n] <= 'z') ||
			(t[n] >= 'A' && t[n] <= 'Z') ||
			(t[n] >= '0' && t[n] <= '9') || t[n] == '-' ||
			t[n] == '.'))
			return false;
	return n > 0 && n <= 32;
}

/* One per-recipient block of part 2, after its separating empty line. */
static void
bounce_rcpt_block(
    struct bw *w, const struct bounce_ctx *c, const struct bounce_rcpt *r)
{
	const char *type;

	bw_str(w, "\r\n");
	if (r->orcpt_type != NULL && r->orcpt != NULL &&
	    bounce_type_ok(r->orcpt_type))
		bw_field(
		    w, "Original-Recipient", r->orcpt_type, r->orcpt, c->utf8);
	type = c->utf8 && bounce_has_high(r->final) ? "utf-8" : "rfc822";
	bw_field(w, "Final-Recipient", type, r->final, c->utf8);
	bw_field(w, "Action", NULL, bounce_action_name(r->action), false);
	bw_field(w, "Status", NULL, bounce_status(r), false);
	if (r->remote_mta != NULL && r->remote_mta[0] != '\0')
		bw_field(w, "Remote-MTA", "dns", r->remote_mta, c->utf8);
	if (r->diag != NULL && r->diag[0] != '\0')
		bw_field(w, "Diagnostic-Code",
		    r->diag_type ? r->diag_type : "smtp", r->diag, c->utf8);
	bw_date_field(w, "Last-Attempt-Date", r->last_attempt);
	if (r->action == BOUNCE_ACTION_DELAYED)
		bw_date_field(w, "Will-Retry-Until", r->retry_until);
}

/* Part 2: per-message fields, then a block per recipient. */
static void
bounce_status_part(struct bw *w, const struct bounce_ctx *c)
{
	const struct bounce_in *in = c->in;
	size_t i;

	if (in->envid != NULL && in->envid[0] != '\0')
		bw_field(w, "Original-Envelope-Id", NULL, in->envid, c->utf8);
	bw_field(w, "Reporting-MTA", "dns", in->reporting_mta, c->utf8);
	bw_date_field(w, "Arrival-Date", in->arrival);
	for (i = 0; i < in->nrcpts; i++)
		bounce_rcpt_block(w, c, &in->rcpts[i]);
}

/* ---- part 1: the words ------------------------------------------------- */

static const char *
bounce_action_words(enum bounce_action a)
{
	switch (a) {
	case BOUNCE_ACTION_FAILED:
		return "delivery failed";
	case BOUNCE_ACTION_DELAYED:
		return "not delivered yet, still trying";
	case BOUNCE_ACTION_DELIVERED:
		return "delivered";
	case BOUNCE_ACTION_RELAYED:
		return "relayed to a system that sends no delivery reports";
	case BOUNCE_ACTION_EXPANDED:
		return "delivered to a list or alias";
	}
	return "delivery failed";
}

static const char *const bounce_intro[] = {
    [BOUNCE_FAILURE] =
	"Your message could not be delivered to one or more of its\r\n"
	"recipients, listed below. The failure is permanent: the message\r\n"
	"will not be tried again for them.\r\n",
    [BOUNCE_DELAY] =
	"Your message has not been delivered yet to one or more of its\r\n"
	"recipients, listed below. This is only a warning: delivery is\r\n"
	"still being tried and you do not need to send the message again.\r\n"
	"You will be told if it fails for good.\r\n",
    [BOUNCE_SUCCESS] =
	"Your message was delivered to the recipients listed below, as its\r\n"
	"sender asked to be told. Nothing needs to be done.\r\n",
};

static void
bounce_rcpt_words(
    struct bw *w, const struct bounce_ctx *c, const struct bounce_rcpt *r)
{
	char d[BOUNCE_DATE_MAX];

	bw_str(w, "\r\n<");
	bw_text(w, r->final, c->utf8, "\r\n    ", 4);
	bw_str(w, ">: ");
	bw_words(w, bounce_action_words(r->action), "\r\n    ", 4);
	bw_str(w, "\r\n    ");
	/* X.4.7 on a failure: given up after the queue lifetime, not refused */
	if (r->action == BOUNCE_ACTION_FAILED &&
	    strcmp(bounce_status(r) + 1, ".4.7") == 0)
		bw_str(w,
		    "gave up: the message was queued too long (delivery "
		    "time expired);\r\n    the last attempt ended with: ");
	if (r->diag != NULL && r->diag[0] != '\0') {
		if (r->remote_mta != NULL && r->remote_mta[0] != '\0') {
			bw_str(w, "host ");
			bw_text(w, r->remote_mta, c->utf8, "\r\n    ", 4);
			bw_str(w, " said: ");
		} else {
			bw_str(w, "reason: ");
		}
		bw_text(w, r->diag, c->utf8, "\r\n    ", 4);
	} else {
		bw_str(w, "status ");
		bw_str(w, bounce_status(r));
	}
	bw_str(w, "\r\n");
	if (r->action == BOUNCE_ACTION_DELAYED && r->retry_until != 0 &&
	    bounce_date(r->retry_until, d)) {
		bw_str(w, "    Delivery will be tried until ");
		bw_words(w, d, "\r\n    ", 4);
		bw_str(w, ".\r\n");
	}
}

/* What part 3 holds, in words. */
static void
bounce_return_words(struct bw *w, const struct bounce_ctx *c)
{
	char n[32];

	bw_str(w, "\r\n");
	if (!c->hdrs) {
		bw_str(w, "Your message is attached below.\r\n");
		return;
	}
	if (c->too_big && str_fmt(n, sizeof(n), "%zu", c->return_max) == 0) {
		bw_str(w, "Your message was larger than ");
		bw_str(w, n);
		bw_str(w,
		    " octets, so only its\r\nheaders are attached below.\r\n");
	} else {
		bw_str(
		    w, "The headers of your message are attached below.\r\n");
	}
	if (c->hdrs_cut)
		bw_str(w, "The headers were too large to attach in full: the "
			  "first fields\r\nthat fit are attached.\r\n");
}

static void
bounce_text_part(struct bw *w, const struct bounce_ctx *c)
{
	size_t i;

	bw_str(w, "This is the mail delivery system at ");
	bw_text(w, c->in->reporting_mta, c->utf8, "\r\n", 0);
	bw_str(w, ".\r\n\r\n");
	bw_str(w, bounce_intro[c->in->kind]);
	for (i = 0; i < c->in->nrcpts; i++)
		bounce_rcpt_words(w, c, &c->in->rcpts[i]);
	bounce_return_words(w, c);
}

/* ---- part 3: what is returned ------------------------------------------ */

/* Header section cut to whole fields within max octets. */
static size_t
bounce_hdrs_within(const char *msg, size_t len, size_t max)
{
	struct addr_hdr_scan s;
	struct addr_hdr_field f;
	size_t keep = 0;

	addr_hdr_scan_init(&s, msg, len);
	while (addr_hdr_next(&s, &f) && f.off + f.raw_len <= max)
		keep = f.off + f.raw_len;
	return keep;
}

static void
bounce_choose_return(struct bounce_ctx *c)
{
	const struct bounce_in *in = c->in;
	size_t i;

	c->return_max =
	    in->return_max ? in->return_max : BOUNCE_RETURN_MAX_DEFAULT;
	c->hdrs = in->kind != BOUNCE_FAILURE || in->ret == BOUNCE_RET_HDRS;
	if (!c->hdrs && in->msg_len > c->return_max)
		c->hdrs = c->too_big = true;
	c->ret = in->msg;
	c->ret_len =
	    c->hdrs ? addr_hdr_end(in->msg, in->msg_len, NULL) : in->msg_len;
	if (c->ret_len > c->return_max) {
		c->ret_len =
		    bounce_hdrs_within(in->msg, in->msg_len, c->return_max);
		c->hdrs_cut = true;
	}
	for (i = 0; i < c->ret_len; i++)
		if ((unsigned char)c->ret[i] >= 0x80) {
			c->ret_8bit = true;
			break;
		}
}

static const char *
bounce_return_type(const struct bounce_ctx *c)
{
	if (c->utf8)
		return c->hdrs ? "message/global-headers" : "message/global";
	return c->hdrs ? "text/rfc822-headers" : "message/rfc822";
}

/* ---- boundary ---------------------------------------------------------- */

static uint64_t
bounce_fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= s[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static bool
bounce_contains(const char *hay, size_t n, const char *needle)
{
	return n > 0 && memmem(hay, n, needle, strlen(needle)) != NULL;
}

/*
 * A boundary none of the parts contains.  Candidates come from a hash of
 * the DSN's Message-ID and Date (unknown to whoever wrote the original)
 * and a counter; each is checked against all three parts.
 */
static int
bounce_boundary(
    struct bounce_ctx *c, const struct buf *p1, const struct buf *p2)
{
	uint64_t h = 0xcbf29ce484222325ull;
	unsigned try;

	h = bounce_fnv(h, c->in->message_id, strlen(c->in->message_id));
	h = bounce_fnv(h, c->in->date, strlen(c->in->date));
	h = bounce_fnv(h, &c->in->msg_len, sizeof(c->in->msg_len));
	for (try = 0; try < BOUNCE_BOUNDARY_TRIES; try++) {
		h = bounce_fnv(h, &try, sizeof(try));
		if (str_fmt(c->boundary, sizeof(c->boundary),
			"=_tern_%016llx_%u", (unsigned long long)h, try) != 0)
			return -1;
		if (!bounce_contains(p1->data, p1->len, c->boundary) &&
		    !bounce_contains(p2->data, p2->len, c->boundary) &&
		    !bounce_contains(c->ret, c->ret_len, c->boundary))
			return 0;
	}
	return -1;
}

/* ---- the message ------------------------------------------------------- */

static const char *const bounce_subject[] = {
    [BOUNCE_FAILURE] = "Undelivered Mail Returned to Sender",
    [BOUNCE_DELAY] = "Delayed Mail (still being retried)",
    [BOUNCE_SUCCESS] = "Successful Mail Delivery Report",
};

static void
bounce_headers(struct bw *w, const struct bounce_ctx *c, bool eight)
{
	const struct bounce_in *in = c->in;

	bw_str(w, "From: Mail Delivery System <MAILER-DAEMON@");
	bw_str(w, in->reporting_mta); /* checked by bounce_check() */
	bw_str(w, ">\r\nTo: <");
	bw_str(w, in->sender); /* checked by bounce_check() */
	bw_str(w, ">\r\n");
	bw_field(w, "Subject", NULL, bounce_subject[in->kind], false);
	bw_field(w, "Date", NULL, in->date, false);
	bw_field(w, "Message-ID", NULL, in->message_id, false);
	bw_str(w, "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
		  "Content-Type: multipart/report; report-type=");
	bw_str(w, c->utf8 ? "global-delivery-status" : "delivery-status");
	bw_str(w, ";\r\n\tboundary=\"");
	bw_str(w, c->boundary);
	bw_str(w, "\"\r\n");
	if (eight)
		bw_str(w, "Content-Transfer-Encoding: 8bit\r\n");
	bw_str(w, "\r\nThis is a MIME-formatted delivery status "
		  "notification.\r\n");
}

/* "--boundary" and a part's header; the CRLF before "--" is its own. */
static void
bounce_part_head(struct bw *w, const struct bounce_ctx *c, const char *desc,
    const char *type, bool eight)
{
	bw_str(w, "\r\n--");
	bw_str(w, c->boundary);
	bw_str(w, "\r\nContent-Description: ");
	bw_str(w, desc);
	bw_str(w, "\r\nContent-Type: ");
	bw_str(w, type);
	bw_str(w,
	    eight ? "\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" : "\r\n\r\n");
}

static void
bounce_assemble(struct bw *w, const struct bounce_ctx *c, const struct buf *p1,
    const struct buf *p2)
{
	bool eight = c->utf8 || c->ret_8bit;

	bounce_headers(w, c, eight);
	bounce_part_head(w, c, "Notification",
	    c->utf8 ? "text/plain; charset=utf-8"
		    : "text/plain; charset=us-ascii",
	    c->utf8);
	bw_mem(w, p1->data, p1->len);
	bounce_part_head(w, c, "Delivery report",
	    c->utf8 ? "message/global-delivery-status"
		    : "message/delivery-status",
	    c->utf8);
	bw_mem(w, p2->data, p2->len);
	bounce_part_head(w, c, c->hdrs ? "Message headers" : "Returned message",
	    bounce_return_type(c), eight);
	bw_mem(w, c->ret, c->ret_len);
	if (c->ret_len > 0 &&
	    (c->ret_len < 2 || memcmp(c->ret + c->ret_len - 2, "\r\n", 2) != 0))
		bw_str(w, "\r\n");
	bw_str(w, "\r\n--");
	bw_str(w, c->boundary);
	bw_str(w, "--\r\n");
}

/* Required fields present and the two that go in raw are well formed. */
static bool
bounce_check(const struct bounce_in *in)
{
	enum addr_domain_kind k;
	char dom[ADDR_DOMAIN_MAX + 1];
	struct addr a;
	unsigned f = in->smtputf8 ? ADDR_F_UTF8 : 0;

	if (in->reporting_mta == NULL || in->sender == NULL ||
	    in->date == NULL || in->date[0] == '\0' || in->message_id == NULL ||
	    in->message_id[0] == '\0' || in->rcpts == NULL || in->nrcpts == 0 ||
	    in->nrcpts > BOUNCE_RCPTS_MAX ||
	    (in->msg == NULL && in->msg_len > 0) ||
	    (unsigned)in->kind > BOUNCE_SUCCESS)
		return false;
	for (size_t i = 0; i < in->nrcpts; i++)
		if (in->rcpts[i].final == NULL)
			return false;
	return addr_parse_domain(in->reporting_mta, strlen(in->reporting_mta),
		   f, dom, sizeof(dom), &k) == ADDR_OK &&
	       k == ADDR_DOMAIN_NAME &&
	       addr_parse_mailbox(in->sender, strlen(in->sender), f, &a) ==
		   ADDR_OK;
}

int
bounce_build(const struct bounce_in *in, struct buf *out)
{
	struct bounce_ctx c = {.in = in};
	struct buf p1, p2;
	struct bw w1, w2, w;
	size_t start = out->len;
	int rc = -1;

	if (!bounce_check(in))
		return -1;
	c.utf8 = in->smtputf8;
	bounce_choose_return(&c);
	buf_init(&p1, BOUNCE_PART_MAX);
	buf_init(&p2, BOUNCE_PART_MAX);
	w1 = (struct bw){.b = &p1};
	w2 = (struct bw){.b = &p2};
	w = (struct bw){.b = out};
	bounce_text_part(&w1, &c);
	bounce_status_part(&w2, &c);
	if (w1.err || w2.err || bounce_boundary(&c, &p1, &p2) != 0)
		goto done;
	bounce_assemble(&w, &c, &p1, &p2);
	if (w.err)
		goto done;
	rc = c.utf8	  ? BOUNCE_NEED_8BITMIME | BOUNCE_NEED_SMTPUTF8
	     : c.ret_8bit ? BOUNCE_NEED_8BITMIME
			  : 0;
done:
	if (rc < 0 && out->data != NULL) {
		out->len = start;
		out->data[start] = '\0';
	}
	buf_free(&p1);
	buf_free(&p2);
	return rc;
}
