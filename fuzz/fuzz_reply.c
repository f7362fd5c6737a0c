/*
 * fuzz_reply: libFuzzer harness for the SMTP client core
 * (src/smtp/smtp_client.c, smtp_stuff.c).
 *
 * Input: 3 header octets, then bytes "from the server".
 *   [0]  client configuration bits (STARTTLS wanted / required, TLS on,
 *        AUTH, 8-bit body, SMTPUTF8, DSN parameters, AUTH in plaintext)
 *   [1]  bits 0-1: recipients - 1; bits 2-3: message size class;
 *        bits 4-7: seed of the split positions
 *   [2]  largest chunk when splitting, minus one
 * Four things are checked on the same bytes, abort() on a broken property:
 *  - smtp_reply_parse: result in -1..1; a whole reply ends with LF, was
 *    "need more" one octet earlier, has a code 200..559, a text as long as
 *    text_len with no NUL inside, an enhanced code of the right form and
 *    class, 1..100 lines;
 *  - smtp_ehlo_caps: SIZE / AUTH details only with their flags;
 *  - a whole client session driven by the bytes, split into chunks: it
 *    ends (no livelock), consumes only what it was given, writes only CRLF
 *    command lines without NUL or bare CR/LF, and leaves every recipient
 *    with a result on DONE and FAILED;
 *  - smtp_stuff on the bytes as a message, split likewise, equals a slow
 *    reference model, and CRLF.CRLF appears only at its end.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- reply parser and EHLO capabilities -------------------------------- */

static void
check_enh(const char *enh, int code)
{
	size_t i, n = strlen(enh);

	if (n == 0)
		return;
	if (n < 5 || n > 9 || enh[0] != '0' + code / 100 || enh[1] != '.')
		abort();
	for (i = 2; i < n; i++)
		if (enh[i] != '.' && (enh[i] < '0' || enh[i] > '9'))
			abort();
}

static void
check_caps(const struct smtp_parsed_reply *r)
{
	struct smtp_caps caps;

	smtp_ehlo_caps(r, &caps);
	if (r->code != 250 && (caps.flags | caps.auth | caps.size_max) != 0)
		abort();
	if (caps.size_max != 0 && !(caps.flags & SMTP_CAP_SIZE))
		abort();
	if (caps.auth != 0 && !(caps.flags & SMTP_CAP_AUTH))
		abort();
}

static void
check_parse(const char *s, size_t size)
{
	struct smtp_parsed_reply r;
	size_t cons = 0;
	int rc = smtp_reply_parse(s, size, &r, &cons);

	if (rc < -1 || rc > 1)
		abort();
	if (rc != 1)
		return;
	if (cons == 0 || cons > size || s[cons - 1] != '\n')
		abort();
	if (r.code < 200 || r.code > 559 || r.nlines < 1 ||
	    r.nlines > SMTP_REPLY_IN_LINES_MAX)
		abort();
	if (r.text_len >= sizeof(r.text) || strlen(r.text) != r.text_len)
		abort();
	if (memchr(r.enh, '\0', sizeof(r.enh)) == NULL)
		abort();
	check_enh(r.enh, r.code);
	check_caps(&r);
	{
		struct smtp_parsed_reply r2;
		size_t c2;

		if (smtp_reply_parse(s, cons - 1, &r2, &c2) != 0)
			abort();
	}
}

/* ---- client session ---------------------------------------------------- */

static const struct smtp_client_rcpt fz_rcpts[] = {
    {"b@example.net", SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE, "rfc822",
	"b+x=y@example.net"},
    {"c@example.net", SMTP_NOTIFY_NEVER, NULL, NULL},
    {"d\xc3\xa9@example.net", SMTP_NOTIFY_DELAY, "utf-8", "x"},
    {"e@example.net", 0, "rfc822", "e@example.net"},
};

static const uint64_t fz_sizes[] = {0, 1000, 100000, UINT64_MAX};

static void
fz_conf(struct smtp_client_conf *c, uint8_t bits, uint8_t b1)
{
	memset(c, 0, sizeof(*c));
	c->helo = "client.example";
	c->sender = (bits & 0x40) ? "" : "a@example.org";
	c->rcpts = fz_rcpts + ((b1 & 3) == 3 ? 0 : 1);
	c->nrcpts = (b1 & 3) == 3 ? 4 : (size_t)(b1 & 3) + 1;
	c->size = fz_sizes[(b1 >> 2) & 3];
	c->want_starttls = bits & 0x01;
	c->require_tls = bits & 0x02;
	c->tls_active = bits & 0x04;
	c->tls_verified = bits & 0x04;
	if (bits & 0x08) {
		c->auth_user = "user";
		c->auth_pass = "secret";
	}
	c->body_8bit = bits & 0x10;
	c->smtputf8 = bits & 0x20;
	c->ret = (bits & 0x40) ? SMTP_RET_HDRS : SMTP_RET_UNSPEC;
	c->envid = (bits & 0x40) ? "env+id" : NULL;
	c->auth_plaintext_ok = bits & 0x80;
	c->lmtp = b1 & 0x10; /* RFC 2033: no TLS, no AUTH */
	if (c->lmtp) {
		c->require_tls = false;
		c->auth_user = c->auth_pass = NULL;
	}
}

/* Commands: CRLF lines, no NUL, no bare CR or LF, bounded length. */
static void
check_commands(const struct buf *out)
{
	size_t i, line = 0;

	for (i = 0; i < out->len; i++) {
		char ch = out->data[i];

		if (ch == '\0' || ++line > 2048)
			abort();
		if (ch == '\r' &&
		    (i + 1 >= out->len || out->data[i + 1] != '\n'))
			abort();
		if (ch == '\n') {
			if (i == 0 || out->data[i - 1] != '\r')
				abort();
			line = 0;
		}
	}
	if (line != 0)
		abort();
}

static void
check_results(const struct smtp_client *c)
{
	size_t i;

	for (i = 0; i < smtp_client_nrcpts(c); i++) {
		const struct smtp_client_result *r = smtp_client_result(c, i);

		if (r->cls == SMTP_RESULT_NONE ||
		    memchr(r->text, '\0', sizeof(r->text)) == NULL ||
		    memchr(r->enh, '\0', sizeof(r->enh)) == NULL)
			abort();
		if (r->cls == SMTP_RESULT_OK &&
		    (r->code < 200 || r->code > 299))
			abort();
	}
}

/* The peer's name (TLS-RPT receiving-mx-helo): "" or a host name or
 * address literal of at most 255 octets, never a blank or control byte. */
static void
check_peer_name(const struct smtp_client *c)
{
	const char *n = smtp_client_peer_name(c);
	size_t len = strnlen(n, ADDR_DOMAIN_MAX + 1);

	if (len > ADDR_DOMAIN_MAX ||
	    strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		      "0123456789.-_[]:") != len)
		abort();
}

struct fz_feed {
	const char *s;
	size_t size, fed; /* octets made visible to the client so far */
	size_t maxchunk;
	uint32_t rng;
};

static size_t
fz_chunk(struct fz_feed *f)
{
	size_t left = f->size - f->fed;

	f->rng = f->rng * 1103515245u + 12345u;
	return left == 0 ? 0
			 : 1 + (size_t)(f->rng >> 8) %
				   (f->maxchunk < left ? f->maxchunk : left);
}

/* What the shell does for an action; false when the session is over. */
static bool
fz_act(struct smtp_client *c, enum smtp_client_action act,
    const struct smtp_client_conf *conf, int *done_count, struct buf *out)
{
	struct smtp_stuff st;

	switch (act) {
	case SMTP_CLIENT_STARTTLS:
		smtp_client_tls_done(c, true);
		return true;
	case SMTP_CLIENT_SEND_BODY:
		smtp_stuff_init(&st);
		if (smtp_stuff_feed(&st, "Subject: x\r\n\r\n.\r\n", 17, out) !=
			0 ||
		    smtp_stuff_finish(&st, out) != 0)
			abort();
		buf_reset(out);
		return true;
	case SMTP_CLIENT_DONE:
		check_results(c);
		check_peer_name(c);
		if ((*done_count)++ == 0) {
			if (smtp_client_reset_message(c, conf) != 0)
				abort();
		} else {
			smtp_client_quit(c);
		}
		return true;
	case SMTP_CLIENT_FAILED:
		check_results(c);
		check_peer_name(c);
		return false;
	case SMTP_CLIENT_CLOSED:
		return false;
	default:
		return true;
	}
}

static void
check_session(const char *s, size_t size, uint8_t bits, uint8_t b1, uint8_t b2)
{
	struct smtp_client_conf conf;
	struct smtp_client *c;
	struct fz_feed f = {s, size, 0, (size_t)b2 + 1, (uint32_t)(b1 >> 4)};
	struct buf out;
	size_t off = 0, cons, guard = 0;
	int done_count = 0;

	fz_conf(&conf, bits, b1);
	if ((c = smtp_client_new(&conf)) == NULL)
		abort();
	buf_init(&out, 1 << 16);
	for (;;) {
		enum smtp_client_action act;

		if (++guard > 8 * size + 64)
			abort(); /* no progress: a livelock */
		act = smtp_client_next(c, s + off, f.fed - off, &cons, &out);
		if (cons > f.fed - off)
			abort();
		off += cons;
		check_commands(&out);
		buf_reset(&out);
		if (act == SMTP_CLIENT_NEED_INPUT) {
			if (f.fed == size)
				break;
			f.fed += fz_chunk(&f);
		}
		if (!fz_act(c, act, &conf, &done_count, &out))
			goto end;
	}
	smtp_client_fail(c, 421, "4.4.2", "Connection closed");
	check_results(c);
end:
	smtp_client_free(c);
	buf_free(&out);
}

/* ---- dot-stuffing against a reference model ---------------------------- */

/* The expected output, one octet at a time, from the contract. */
static void
stuff_model(const char *s, size_t n, struct buf *want)
{
	bool bol = true;
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] == '\r' || s[i] == '\n') {
			if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
				i++;
			if (buf_append(want, "\r\n", 2) != 0)
				abort();
			bol = true;
			continue;
		}
		if (bol && s[i] == '.' && buf_append(want, ".", 1) != 0)
			abort();
		if (buf_append(want, s + i, 1) != 0)
			abort();
		bol = false;
	}
	if (buf_append_str(want, bol ? ".\r\n" : "\r\n.\r\n") != 0)
		abort();
}

static void
check_stuff(const char *s, size_t size, uint8_t b1, uint8_t b2)
{
	struct fz_feed f = {s, size, 0, (size_t)b2 + 1, (uint32_t)b1};
	struct smtp_stuff st;
	struct buf got, want;
	const char *p;

	buf_init(&got, 1 << 20);
	buf_init(&want, 1 << 20);
	smtp_stuff_init(&st);
	while (f.fed < size) {
		size_t k = fz_chunk(&f);

		if (smtp_stuff_feed(&st, s + f.fed, k, &got) != 0)
			abort();
		f.fed += k;
	}
	if (smtp_stuff_finish(&st, &got) != 0)
		abort();
	stuff_model(s, size, &want);
	if (got.len != want.len || memcmp(got.data, want.data, got.len) != 0 ||
	    st.out_octets != got.len)
		abort();
	p = memmem(got.data, got.len, "\r\n.\r\n", 5);
	if (p != NULL && (size_t)(p - got.data) + 5 != got.len)
		abort();
	buf_free(&got);
	buf_free(&want);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data + 3;

	if (size < 3)
		return 0;
	size -= 3;
	check_parse(s, size);
	check_session(s, size, data[0], data[1], data[2]);
	check_stuff(s, size, data[1], data[2]);
	return 0;
}
