/*
 * fuzz_cmd: libFuzzer harness for the SMTP command parser, its ESMTP
 * parameters and xtext (src/smtp/smtp_cmd.c, smtp_param.c).
 *
 * The input is one command line (no CRLF), parsed under each of the eight
 * combinations of SMTP_CMD_F_*.  Besides the sanitisers, it aborts when a
 * property breaks:
 *  - an error has a code in 500..555, a 5.x.x enhanced code, and a
 *    non-empty, NUL-terminated text that smtp_reply() accepts;
 *  - a success names a verb, its views lie inside the input, the line has
 *    no control byte and is within the verb's length limit, fixed-size
 *    fields are NUL-terminated, an 8-bit path or SMTPUTF8 only appears
 *    where the flags allow it, NOTIFY=NEVER is alone, and REQUIRETLS is
 *    only ever a MAIL parameter (RFC 8689 2);
 *  - an accepted HELO/EHLO argument holds only letters, digits and
 *    ". - _ [ ] :", so it cannot forge a Received: field when recorded;
 *  - a line that starts with the BDAT verb reports SMTP_VERB_BDAT even
 *    when refused (the session must close: the chunk cannot be found);
 *  - flags only widen the language: what parses under some flags parses
 *    to the same verb under every superset of them;
 *  - decoded xtext values re-encode and decode back to themselves, and
 *    so does the input's value when the input is itself xtext.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp.h"

#define NFLAGS 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
inside(const char *p, size_t n, const char *s, size_t size)
{
	return p != NULL && p >= s && p <= s + size &&
	       n <= (size_t)(s + size - p);
}

static bool
terminated(const char *field, size_t size)
{
	return memchr(field, '\0', size) != NULL;
}

static void
check_error(const struct smtp_err *err)
{
	struct buf b;

	if (err->code < 500 || err->code > 555 || err->enh == NULL ||
	    err->enh[0] != '5')
		abort();
	if (!terminated(err->text, sizeof(err->text)) || err->text[0] == '\0')
		abort();
	buf_init(&b, 4096);
	if (smtp_reply(&b, err->code, err->enh, err->text) != 0)
		abort();
	buf_free(&b);
}

/* A decoded xtext value must survive encode then decode unchanged. */
static void
check_xtext_value(const char *v)
{
	char enc[3 * SMTP_AUTH_PARAM_MAX + 1], dec[SMTP_AUTH_PARAM_MAX + 1];
	size_t n = strlen(v);
	int e = smtp_xtext_encode(v, n, enc, sizeof(enc));

	if (e < 0 ||
	    smtp_xtext_decode(enc, (size_t)e, dec, sizeof(dec)) != (int)n ||
	    memcmp(v, dec, n + 1) != 0)
		abort();
}

static void
check_params(const struct smtp_cmd *c, unsigned flags)
{
	unsigned nf = c->rcpt.notify;

	if (c->mail.smtputf8 && !(flags & SMTP_CMD_F_UTF8_OK))
		abort();
	if ((nf & SMTP_NOTIFY_NEVER) && nf != SMTP_NOTIFY_NEVER)
		abort();
	if (!terminated(c->mail.envid, sizeof(c->mail.envid)) ||
	    !terminated(c->mail.auth, sizeof(c->mail.auth)) ||
	    !terminated(c->rcpt.orcpt, sizeof(c->rcpt.orcpt)) ||
	    !terminated(c->rcpt.orcpt_type, sizeof(c->rcpt.orcpt_type)))
		abort();
	check_xtext_value(c->mail.envid);
	check_xtext_value(c->mail.auth);
	check_xtext_value(c->rcpt.orcpt);
	if (c->rcpt.has_orcpt &&
	    (c->rcpt.orcpt_type[0] == '\0' || c->rcpt.orcpt[0] == '\0'))
		abort();
}

static void
check_path(const struct smtp_cmd *c, unsigned flags)
{
	bool utf8_ok = c->verb == SMTP_VERB_MAIL
			   ? (flags & SMTP_CMD_F_UTF8_OK) && c->mail.smtputf8
			   : (flags & SMTP_CMD_F_UTF8_TXN) != 0;

	if (!terminated(c->path.local, sizeof(c->path.local)) ||
	    !terminated(c->path.domain, sizeof(c->path.domain)))
		abort();
	if (c->path.utf8 && !utf8_ok)
		abort();
	if (c->path.null && c->verb != SMTP_VERB_MAIL)
		abort();
	if (c->path.postmaster && c->verb != SMTP_VERB_RCPT)
		abort();
}

static bool
helo_char(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
	       (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' ||
	       ch == '_' || ch == '[' || ch == ']' || ch == ':';
}

static void
check_helo(const struct smtp_cmd *c)
{
	size_t i;

	if (c->arg_len == 0 || c->arg_len > 255)
		abort();
	for (i = 0; i < c->arg_len; i++)
		if (!helo_char(c->arg[i]))
			abort();
}

static bool
is_bdat_line(const char *s, size_t size)
{
	return size >= 4 && str_case_eq(s, 4, "BDAT") &&
	       (size == 4 || s[4] == ' ');
}

static void
check_success(
    const char *s, size_t size, unsigned flags, const struct smtp_cmd *c)
{
	bool path = c->verb == SMTP_VERB_MAIL || c->verb == SMTP_VERB_RCPT;
	size_t i, limit = path && (flags & SMTP_CMD_F_ESMTP)
			      ? SMTP_CMD_LINE_PARAMS_MAX - 2
			      : SMTP_CMD_LINE_MAX - 2;

	if (c->verb == SMTP_VERB_UNKNOWN || size > limit)
		abort();
	for (i = 0; i < size; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			abort();
	if (!inside(c->arg, c->arg_len, s, size))
		abort();
	if (c->auth_initial != NULL &&
	    !inside(c->auth_initial, c->auth_initial_len, s, size))
		abort();
	if (!terminated(c->auth_mech, sizeof(c->auth_mech)))
		abort();
	if (c->verb == SMTP_VERB_AUTH && c->auth_mech[0] == '\0')
		abort();
	if (path)
		check_path(c, flags);
	if (c->mail.requiretls && c->verb != SMTP_VERB_MAIL)
		abort();
	if (c->verb == SMTP_VERB_HELO || c->verb == SMTP_VERB_EHLO)
		check_helo(c);
	check_params(c, flags);
}

/* If the input happens to be xtext, its value must round-trip. */
static void
check_xtext_input(const char *s, size_t size)
{
	char dec[512], enc[3 * sizeof(dec)], again[sizeof(dec)];
	int n = smtp_xtext_decode(s, size, dec, sizeof(dec));
	int e;

	if (n < 0)
		return;
	if ((size_t)n > size || strlen(dec) != (size_t)n)
		abort();
	e = smtp_xtext_encode(dec, (size_t)n, enc, sizeof(enc));
	if (e < n)
		abort();
	if (smtp_xtext_decode(enc, (size_t)e, again, sizeof(again)) != n ||
	    memcmp(dec, again, (size_t)n) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct smtp_cmd c;
	struct smtp_err err;
	enum smtp_verb verb[NFLAGS];
	int rc[NFLAGS];
	unsigned f, g;

	for (f = 0; f < NFLAGS; f++) {
		rc[f] = smtp_cmd_parse(s, size, f, &c, &err);
		verb[f] = c.verb;
		if (is_bdat_line(s, size) && c.verb != SMTP_VERB_BDAT)
			abort();
		if (rc[f] == 0)
			check_success(s, size, f, &c);
		else if (rc[f] == -1)
			check_error(&err);
		else
			abort();
	}
	for (f = 0; f < NFLAGS; f++)
		for (g = 0; g < NFLAGS; g++)
			if ((g & f) == f && rc[f] == 0 &&
			    (rc[g] != 0 || verb[g] != verb[f]))
				abort();
	check_xtext_input(s, size);
	return 0;
}
