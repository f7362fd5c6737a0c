/*
 * Unit tests for src/smtp/smtp_cmd.c and smtp_param.c: every verb, every
 * ESMTP parameter and every error path, table-driven.  Each row is parsed
 * from a t_guard() copy (a byte read past the end faults), and every
 * prefix of the row's line is parsed too, each ending at the guard page,
 * so no early end of input can make the parser over-read.  The parser is
 * not incremental (it takes a whole line), so there are no split feeds.
 */
#include "t.h"
#include "smtp/smtp.h"

#define E  SMTP_CMD_F_ESMTP
#define U  SMTP_CMD_F_UTF8_OK
#define X  SMTP_CMD_F_UTF8_TXN
#define EU (E | U)

struct row {
	const char *line;
	unsigned flags;
	int code; /* 0: success expected */
	const char *enh;
	enum smtp_verb verb; /* success: the verb parsed */
	const char *text;    /* success: cmd->arg; error: in err.text */
	void (*check)(const struct smtp_cmd *);
	size_t len; /* 0: strlen(line) */
};

/* ---- checks of parsed fields ------------------------------------------- */

static bool
view_is(const char *p, size_t n, const char *want)
{
	return p != NULL && n == strlen(want) && memcmp(p, want, n) == 0;
}

static void
ck_alice(const struct smtp_cmd *c)
{
	T_CHECK_STR(c->path.local, "alice");
	T_CHECK_STR(c->path.domain, "example.org");
	T_CHECK(!c->path.null);
	T_CHECK(!c->mail.has_size && c->mail.body == SMTP_BODY_UNSPEC);
}

static void
ck_requiretls(const struct smtp_cmd *c)
{
	T_CHECK(c->mail.requiretls);
	T_CHECK(c->mail.has_size && c->mail.size == 10);
}

static void
ck_no_requiretls(const struct smtp_cmd *c)
{
	T_CHECK(!c->mail.requiretls);
}

static void
ck_null(const struct smtp_cmd *c)
{
	T_CHECK(c->path.null);
}

static void
ck_postmaster(const struct smtp_cmd *c)
{
	T_CHECK(c->path.postmaster);
}

static void
ck_bdat_1000(const struct smtp_cmd *c)
{
	T_CHECK(c->bdat_size == 1000 && !c->bdat_last);
}

static void
ck_bdat_1(const struct smtp_cmd *c)
{
	T_CHECK(c->bdat_size == 1 && !c->bdat_last);
}

static void
ck_bdat_0_last(const struct smtp_cmd *c)
{
	T_CHECK(c->bdat_size == 0 && c->bdat_last);
}

static void
ck_bdat_max(const struct smtp_cmd *c)
{
	T_CHECK(c->bdat_size == UINT64_MAX && !c->bdat_last);
}

static void
ck_auth_plain(const struct smtp_cmd *c)
{
	T_CHECK_STR(c->auth_mech, "PLAIN");
	T_CHECK(c->auth_initial == NULL && c->auth_initial_len == 0);
}

static void
ck_auth_plain_ir(const struct smtp_cmd *c)
{
	T_CHECK_STR(c->auth_mech, "PLAIN");
	T_CHECK(view_is(
	    c->auth_initial, c->auth_initial_len, "dGVzdAB0ZXN0AHRlc3Q="));
}

static void
ck_auth_plain_empty(const struct smtp_cmd *c)
{
	T_CHECK_STR(c->auth_mech, "PLAIN");
	T_CHECK(c->auth_initial != NULL && c->auth_initial_len == 0);
}

static void
ck_auth_scram(const struct smtp_cmd *c)
{
	T_CHECK_STR(c->auth_mech, "SCRAM-SHA-256");
}

static void
ck_auth_x(const struct smtp_cmd *c)
{
	T_CHECK_STR(c->auth_mech, "X_TERN-1");
}

static void
ck_size_1000(const struct smtp_cmd *c)
{
	T_CHECK(c->mail.has_size && c->mail.size == 1000);
}

static void
ck_size_0(const struct smtp_cmd *c)
{
	T_CHECK(c->mail.has_size && c->mail.size == 0);
}

static void
ck_size_max(const struct smtp_cmd *c)
{
	T_CHECK(c->mail.has_size && c->mail.size == UINT64_MAX);
}

static void
ck_body_8(const struct smtp_cmd *c)
{
	T_CHECK(c->mail.body == SMTP_BODY_8BITMIME);
}

static void
ck_body_7(const struct smtp_cmd *c)
{
	T_CHECK(c->mail.body == SMTP_BODY_7BIT);
}

static void
ck_utf8(const struct smtp_cmd *c)
{
	T_CHECK(c->mail.smtputf8);
	T_CHECK(c->path.utf8);
}

static void
ck_smtputf8_ascii(const struct smtp_cmd *c)
{
	T_CHECK(c->mail.smtputf8);
	T_CHECK(!c->path.utf8);
}

static void
ck_ret_full(const struct smtp_cmd *c)
{
	T_CHECK(c->mail.ret == SMTP_RET_FULL);
}

static void
ck_ret_hdrs(const struct smtp_cmd *c)
{
	T_CHECK(c->mail.ret == SMTP_RET_HDRS);
}

static void
ck_envid(const struct smtp_cmd *c)
{
	T_CHECK(c->mail.has_envid);
	T_CHECK_STR(c->mail.envid, "QQ+12=x");
}

static void
ck_auth_null(const struct smtp_cmd *c)
{
	T_CHECK(c->mail.has_auth);
	T_CHECK_STR(c->mail.auth, "<>");
}

static void
ck_auth_mbox(const struct smtp_cmd *c)
{
	T_CHECK(c->mail.has_auth);
	T_CHECK_STR(c->mail.auth, "alice+tag@example.org");
}

static void
ck_all_mail(const struct smtp_cmd *c)
{
	T_CHECK(c->mail.has_size && c->mail.size == 10);
	T_CHECK(c->mail.body == SMTP_BODY_8BITMIME);
	T_CHECK(c->mail.ret == SMTP_RET_HDRS);
	T_CHECK(c->mail.has_envid && strcmp(c->mail.envid, "id1") == 0);
	T_CHECK(c->mail.smtputf8);
}

static void
ck_notify_never(const struct smtp_cmd *c)
{
	T_CHECK_INT(c->rcpt.notify, SMTP_NOTIFY_NEVER);
}

static void
ck_notify_all(const struct smtp_cmd *c)
{
	T_CHECK_INT(c->rcpt.notify,
	    SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY);
}

static void
ck_notify_ds(const struct smtp_cmd *c)
{
	T_CHECK_INT(c->rcpt.notify, SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_DELAY);
}

static void
ck_orcpt(const struct smtp_cmd *c)
{
	T_CHECK(c->rcpt.has_orcpt);
	T_CHECK_STR(c->rcpt.orcpt_type, "rfc822");
	T_CHECK_STR(c->rcpt.orcpt, "bob@example.net");
}

static void
ck_orcpt_plus(const struct smtp_cmd *c)
{
	T_CHECK(c->rcpt.has_orcpt);
	T_CHECK_STR(c->rcpt.orcpt_type, "rfc822");
	T_CHECK_STR(c->rcpt.orcpt, "bob+x@example.net");
}

static void
ck_orcpt_utf8(const struct smtp_cmd *c)
{
	T_CHECK_STR(c->rcpt.orcpt_type, "utf-8");
	T_CHECK_STR(c->rcpt.orcpt, "b\\x{E9}b@example.net");
	T_CHECK_INT(c->rcpt.notify, SMTP_NOTIFY_FAILURE);
}

static void
ck_rcpt_utf8(const struct smtp_cmd *c)
{
	T_CHECK(c->path.utf8);
}

/* ---- the table ---------------------------------------------------------- */

static const struct row rows[] = {
    /* HELO / EHLO */
    {"EHLO mail.example.org", EU, 0, NULL, SMTP_VERB_EHLO, "mail.example.org",
	NULL, 0},
    {"ehlo mail.example.org", 0, 0, NULL, SMTP_VERB_EHLO, "mail.example.org",
	NULL, 0},
    {"HELO [192.0.2.1]", 0, 0, NULL, SMTP_VERB_HELO, "[192.0.2.1]", NULL, 0},
    {"EHLO   host.example   ", 0, 0, NULL, SMTP_VERB_EHLO, "host.example", NULL,
	0},
    {"EHLO [IPv6:2001:db8::1]", 0, 0, NULL, SMTP_VERB_EHLO,
	"[IPv6:2001:db8::1]", NULL, 0},
    {"EHLO [ipv6:::1]", 0, 0, NULL, SMTP_VERB_EHLO, "[ipv6:::1]", NULL, 0},
    {"EHLO DESKTOP_1A2B.corp.example", 0, 0, NULL, SMTP_VERB_EHLO,
	"DESKTOP_1A2B.corp.example", NULL, 0},
    {"EHLO mail.example.org.", 0, 0, NULL, SMTP_VERB_EHLO, "mail.example.org.",
	NULL, 0},
    {"EHLO localhost", 0, 0, NULL, SMTP_VERB_EHLO, "localhost", NULL, 0},
    {"EHLO 123.example", 0, 0, NULL, SMTP_VERB_EHLO, "123.example", NULL, 0},
    {"EHLO xn--bcher-kva.example", 0, 0, NULL, SMTP_VERB_EHLO,
	"xn--bcher-kva.example", NULL, 0},
    /* 63-octet label: the longest allowed */
    {"EHLO "
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example",
	0, 0, NULL, SMTP_VERB_EHLO, NULL, NULL, 0},
    /* names that could forge a Received: field, or are no name at all */
    {"EHLO not_a!valid*name", 0, 501, "5.5.2", 0,
	"Syntax: EHLO hostname: a domain name", NULL, 0},
    {"EHLO b\xc3\xbc"
     "cher.example",
	EU, 501, "5.5.2", 0, "Syntax: EHLO hostname", NULL, 0},
    {"EHLO evil.example (forged.example [10.0.0.1])", 0, 501, "5.5.2", 0,
	"Syntax: EHLO hostname", NULL, 0},
    {"HELO evil.example(x)", 0, 501, "5.5.2", 0, "Syntax: HELO hostname", NULL,
	0},
    {"HELO a;by b", 0, 501, "5.5.2", 0, "Syntax: HELO hostname", NULL, 0},
    {"HELO a.example;", 0, 501, "5.5.2", 0, "Syntax: HELO hostname", NULL, 0},
    {"HELO \"a.example\"", 0, 501, "5.5.2", 0, "Syntax: HELO hostname", NULL,
	0},
    {"HELO a.example b.example", 0, 501, "5.5.2", 0, "Syntax: HELO hostname",
	NULL, 0},
    {"HELO a..example", 0, 501, "5.5.2", 0, "Syntax: HELO", NULL, 0},
    {"HELO .example", 0, 501, "5.5.2", 0, "Syntax: HELO", NULL, 0},
    {"HELO a.example..", 0, 501, "5.5.2", 0, "Syntax: HELO", NULL, 0},
    {"HELO .", 0, 501, "5.5.2", 0, "Syntax: HELO", NULL, 0},
    {"HELO -a.example", 0, 501, "5.5.2", 0, "Syntax: HELO", NULL, 0},
    {"HELO a-.example", 0, 501, "5.5.2", 0, "Syntax: HELO", NULL, 0},
    {"HELO "
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example",
	0, 501, "5.5.2", 0, "Syntax: HELO", NULL, 0},
    {"HELO [192.0.2.1", 0, 501, "5.5.2", 0, "Syntax: HELO", NULL, 0},
    {"HELO [192.0.2.256]", 0, 501, "5.5.2", 0, "Syntax: HELO", NULL, 0},
    {"HELO [192.0.2.1](x)", 0, 501, "5.5.2", 0, "Syntax: HELO", NULL, 0},
    {"HELO [IPv6:2001:db8::g]", 0, 501, "5.5.2", 0, "Syntax: HELO", NULL, 0},
    {"HELO [x-tag:(by;evil)]", 0, 501, "5.5.2", 0, "Syntax: HELO", NULL, 0},
    {"HELO [192.0.2.1] x", 0, 501, "5.5.2", 0, "Syntax: HELO", NULL, 0},
    {"HELO a\x7f.example", 0, 500, "5.5.2", 0, "control character 0x7f", NULL,
	0},
    {"EHLO", 0, 501, "5.5.4", 0, "Syntax: EHLO hostname", NULL, 0},
    {"EHLO ", 0, 501, "5.5.4", 0, "Syntax: EHLO hostname", NULL, 0},
    {"EHLO    ", 0, 501, "5.5.4", 0, "Syntax: EHLO hostname", NULL, 0},
    {"HELO", 0, 501, "5.5.4", 0, "Syntax: HELO hostname", NULL, 0},
    {"EHLOX foo", 0, 500, "5.5.2", 0, "Command unrecognized", NULL, 0},
    /* MAIL */
    {"MAIL FROM:<alice@example.org>", EU, 0, NULL, SMTP_VERB_MAIL,
	"FROM:<alice@example.org>", ck_alice, 0},
    {"mail from:<alice@Example.ORG>", 0, 0, NULL, SMTP_VERB_MAIL, NULL,
	ck_alice, 0},
    {"MAIL FROM: <alice@example.org>", 0, 0, NULL, SMTP_VERB_MAIL, NULL,
	ck_alice, 0},
    {"MAIL FROM:    <alice@example.org>", EU, 0, NULL, SMTP_VERB_MAIL, NULL,
	ck_alice, 0},
    {"MAIL FROM:<alice@example.org>   ", EU, 0, NULL, SMTP_VERB_MAIL, NULL,
	ck_alice, 0},
    {"MAIL FROM:<>", EU, 0, NULL, SMTP_VERB_MAIL, NULL, ck_null, 0},
    {"MAIL FROM:<@relay.example:alice@example.org>", EU, 0, NULL,
	SMTP_VERB_MAIL, NULL, ck_alice, 0},
    {"MAIL", EU, 501, "5.5.4", 0, "Syntax: MAIL FROM:<address>", NULL, 0},
    {"MAIL FROM:", EU, 501, "5.5.4", 0, "Syntax: MAIL FROM:<address>", NULL, 0},
    {"MAIL FROM:   ", EU, 501, "5.5.4", 0, "Syntax: MAIL FROM:<address>", NULL,
	0},
    {"MAIL FRO:<a@b.example>", EU, 501, "5.5.4", 0, "Syntax: MAIL", NULL, 0},
    {"MAIL TO:<a@b.example>", EU, 501, "5.5.4", 0, "Syntax: MAIL", NULL, 0},
    {"MAIL  FROM:<a@b.example>", EU, 501, "5.5.4", 0, "Syntax: MAIL", NULL, 0},
    {"MAIL FROM:alice@example.org", EU, 501, "5.1.7", 0,
	"Bad sender address syntax: it must be in angle brackets <>", NULL, 0},
    {"RCPT TO:bob@example.net", EU, 501, "5.1.3", 0,
	"Bad recipient address syntax: it must be in angle brackets <>", NULL,
	0},
    {"MAIL FROM:<alice@>", EU, 501, "5.1.7", 0,
	"Bad sender address syntax: ", NULL, 0},
    {"MAIL FROM:<alice@example.org", EU, 501, "5.1.7", 0,
	"Bad sender address syntax: ", NULL, 0},
    {"MAIL FROM:<Postmaster>", EU, 501, "5.1.7", 0,
	"Bad sender address syntax: ", NULL, 0},
    {"MAIL "
     "FROM:<aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@"
     "example.org>",
	EU, 501, "5.1.7", 0, "local part longer than 64", NULL, 0},
    {"MAIL FROM:<a@b.example>x", EU, 501, "5.5.4", 0, "space must separate",
	NULL, 0},
    /* RCPT */
    {"RCPT TO:<bob@example.net>", EU, 0, NULL, SMTP_VERB_RCPT,
	"TO:<bob@example.net>", NULL, 0},
    {"rcpt to: <bob@example.net>", 0, 0, NULL, SMTP_VERB_RCPT, NULL, NULL, 0},
    {"RCPT TO:<Postmaster>", EU, 0, NULL, SMTP_VERB_RCPT, NULL, ck_postmaster,
	0},
    {"RCPT TO:<postMASTER>", EU, 0, NULL, SMTP_VERB_RCPT, NULL, ck_postmaster,
	0},
    {"RCPT TO:<>", EU, 501, "5.1.3", 0, "Bad recipient address syntax: ", NULL,
	0},
    {"RCPT TO:<bob@>", EU, 501, "5.1.3", 0,
	"Bad recipient address syntax: ", NULL, 0},
    {"RCPT TO:", EU, 501, "5.5.4", 0, "Syntax: RCPT TO:<address>", NULL, 0},
    {"RCPT", EU, 501, "5.5.4", 0, "Syntax: RCPT TO:<address>", NULL, 0},
    {"RCPT FROM:<bob@example.net>", EU, 501, "5.5.4", 0, "Syntax: RCPT", NULL,
	0},
    /* verbs without argument */
    {"DATA", EU, 0, NULL, SMTP_VERB_DATA, "", NULL, 0},
    {"data  ", EU, 0, NULL, SMTP_VERB_DATA, "", NULL, 0},
    {"DATA now", EU, 501, "5.5.4", 0, "DATA takes no argument", NULL, 0},
    {"RSET", EU, 0, NULL, SMTP_VERB_RSET, "", NULL, 0},
    {"RSET all", EU, 501, "5.5.4", 0, "RSET takes no argument", NULL, 0},
    {"QUIT", EU, 0, NULL, SMTP_VERB_QUIT, "", NULL, 0},
    {"QUIT please", EU, 501, "5.5.4", 0, "QUIT takes no argument", NULL, 0},
    {"STARTTLS", EU, 0, NULL, SMTP_VERB_STARTTLS, "", NULL, 0},
    {"starttls x", EU, 501, "5.5.4", 0, "STARTTLS takes no argument", NULL, 0},
    {"DATA\x00", EU, 500, "5.5.2", 0, "NUL byte", NULL, 5},
    /* optional and required arguments */
    {"NOOP", EU, 0, NULL, SMTP_VERB_NOOP, "", NULL, 0},
    {"NOOP hello there", EU, 0, NULL, SMTP_VERB_NOOP, "hello there", NULL, 0},
    {"HELP", EU, 0, NULL, SMTP_VERB_HELP, "", NULL, 0},
    {"help MAIL", EU, 0, NULL, SMTP_VERB_HELP, "MAIL", NULL, 0},
    {"VRFY bob", EU, 0, NULL, SMTP_VERB_VRFY, "bob", NULL, 0},
    {"VRFY", EU, 501, "5.5.4", 0, "Syntax: VRFY", NULL, 0},
    {"EXPN staff", EU, 0, NULL, SMTP_VERB_EXPN, "staff", NULL, 0},
    {"EXPN   ", EU, 501, "5.5.4", 0, "Syntax: EXPN", NULL, 0},
    /* BDAT */
    {"BDAT 1000", EU, 0, NULL, SMTP_VERB_BDAT, "1000", ck_bdat_1000, 0},
    {"BDAT 0 LAST", EU, 0, NULL, SMTP_VERB_BDAT, NULL, ck_bdat_0_last, 0},
    {"bdat 0 last", EU, 0, NULL, SMTP_VERB_BDAT, NULL, ck_bdat_0_last, 0},
    {"BDAT 18446744073709551615", EU, 0, NULL, SMTP_VERB_BDAT, NULL,
	ck_bdat_max, 0},
    {"BDAT 18446744073709551616", EU, 501, "5.5.4", SMTP_VERB_BDAT,
	"Bad BDAT chunk size", NULL, 0},
    /* RFC 3030: chunk-size = 1*DIGIT, so leading zeros are a size too */
    {"BDAT 000000000000000000001", EU, 0, NULL, SMTP_VERB_BDAT, NULL, ck_bdat_1,
	0},
    {"BDAT 0001000", EU, 0, NULL, SMTP_VERB_BDAT, NULL, ck_bdat_1000, 0},
    {"BDAT 000 LAST", EU, 0, NULL, SMTP_VERB_BDAT, NULL, ck_bdat_0_last, 0},
    {"BDAT 0000000000000000000018446744073709551615", EU, 0, NULL,
	SMTP_VERB_BDAT, NULL, ck_bdat_max, 0},
    /* spaces around the tokens, as every other command allows */
    {"BDAT 1000 ", EU, 0, NULL, SMTP_VERB_BDAT, NULL, ck_bdat_1000, 0},
    {"BDAT 1000    ", EU, 0, NULL, SMTP_VERB_BDAT, NULL, ck_bdat_1000, 0},
    {"BDAT  1000", EU, 0, NULL, SMTP_VERB_BDAT, NULL, ck_bdat_1000, 0},
    {"BDAT 0 LAST ", EU, 0, NULL, SMTP_VERB_BDAT, NULL, ck_bdat_0_last, 0},
    {"BDAT 0   LAST", EU, 0, NULL, SMTP_VERB_BDAT, NULL, ck_bdat_0_last, 0},
    /* refused: the verb is still reported, the session closes on it */
    {"BDAT", EU, 501, "5.5.4", SMTP_VERB_BDAT, "Syntax: BDAT size [LAST]", NULL,
	0},
    {"BDAT   ", EU, 501, "5.5.4", SMTP_VERB_BDAT, "Syntax: BDAT size [LAST]",
	NULL, 0},
    {"BDAT x", EU, 501, "5.5.4", SMTP_VERB_BDAT, "Bad BDAT chunk size", NULL,
	0},
    {"BDAT x6", EU, 501, "5.5.4", SMTP_VERB_BDAT, "Bad BDAT chunk size", NULL,
	0},
    {"BDAT 6x", EU, 501, "5.5.4", SMTP_VERB_BDAT, "Bad BDAT chunk size", NULL,
	0},
    {"BDAT -1", EU, 501, "5.5.4", SMTP_VERB_BDAT, "Bad BDAT chunk size", NULL,
	0},
    {"BDAT +1", EU, 501, "5.5.4", SMTP_VERB_BDAT, "Bad BDAT chunk size", NULL,
	0},
    {"BDAT 0x10", EU, 501, "5.5.4", SMTP_VERB_BDAT, "Bad BDAT chunk size", NULL,
	0},
    {"BDAT 100000000000000000000", EU, 501, "5.5.4", SMTP_VERB_BDAT,
	"Bad BDAT chunk size", NULL, 0},
    {"BDAT 10 FIRST", EU, 501, "5.5.4", SMTP_VERB_BDAT, "only LAST", NULL, 0},
    {"BDAT 10 LAST x", EU, 501, "5.5.4", SMTP_VERB_BDAT, "only LAST", NULL, 0},
    {"BDAT 10 LASTx", EU, 501, "5.5.4", SMTP_VERB_BDAT, "only LAST", NULL, 0},
    {"BDAT 6\x01", EU, 500, "5.5.2", SMTP_VERB_BDAT, "control character 0x01",
	NULL, 0},
    /* AUTH */
    {"AUTH PLAIN", EU, 0, NULL, SMTP_VERB_AUTH, NULL, ck_auth_plain, 0},
    {"auth plain dGVzdAB0ZXN0AHRlc3Q=", EU, 0, NULL, SMTP_VERB_AUTH, NULL,
	ck_auth_plain_ir, 0},
    {"AUTH PLAIN =", EU, 0, NULL, SMTP_VERB_AUTH, NULL, ck_auth_plain_empty, 0},
    {"AUTH scram-sha-256", EU, 0, NULL, SMTP_VERB_AUTH, NULL, ck_auth_scram, 0},
    {"AUTH x_tern-1", EU, 0, NULL, SMTP_VERB_AUTH, NULL, ck_auth_x, 0},
    {"AUTH ABCDEFGHIJKLMNOPQRST", EU, 0, NULL, SMTP_VERB_AUTH, NULL, NULL, 0},
    {"AUTH ABCDEFGHIJKLMNOPQRSTU", EU, 501, "5.5.4", 0, "longer than 20", NULL,
	0},
    {"AUTH", EU, 501, "5.5.4", 0, "Syntax: AUTH mechanism", NULL, 0},
    {"AUTH  PLAIN", EU, 501, "5.5.4", 0, "Syntax: AUTH mechanism", NULL, 0},
    {"AUTH PL@IN", EU, 501, "5.5.4", 0, "Bad AUTH mechanism name", NULL, 0},
    {"AUTH PLAIN a b", EU, 501, "5.5.4", 0, "one base64 token", NULL, 0},
    {"AUTH PLAIN ", EU, 501, "5.5.4", 0, "one base64 token", NULL, 0},
    /* unknown verbs, control bytes */
    {"FOO", EU, 500, "5.5.2", 0, "Command unrecognized", NULL, 0},
    {"", EU, 500, "5.5.2", 0, "Command unrecognized", NULL, 0},
    {" MAIL FROM:<a@b.example>", EU, 500, "5.5.2", 0, "Command unrecognized",
	NULL, 0},
    {"STARTTLSX", EU, 500, "5.5.2", 0, "Command unrecognized", NULL, 0},
    {"MAI", EU, 500, "5.5.2", 0, "Command unrecognized", NULL, 0},
    {"MAIL\x00"
     "FROM:<a@b.example>",
	EU, 500, "5.5.2", 0, "NUL byte", NULL, 23},
    {"\x00", EU, 500, "5.5.2", 0, "NUL byte", NULL, 1},
    {"NOOP\ttab", EU, 500, "5.5.2", 0, "control character 0x09", NULL, 0},
    {"NOOP \x7f", EU, 500, "5.5.2", 0, "control character 0x7f", NULL, 0},
    {"EHLO foo\r", EU, 500, "5.5.2", 0, "control character 0x0d", NULL, 0},
    {"RCPT TO:<a@b.example>\nRSET", EU, 500, "5.5.2", 0,
	"control character 0x0a", NULL, 0},
    /* MAIL parameters */
    {"MAIL FROM:<a@b.example> SIZE=1000", EU, 0, NULL, SMTP_VERB_MAIL, NULL,
	ck_size_1000, 0},
    {"MAIL FROM:<a@b.example> size=1000", E, 0, NULL, SMTP_VERB_MAIL, NULL,
	ck_size_1000, 0},
    {"MAIL FROM:<a@b.example> SIZE=0", E, 0, NULL, SMTP_VERB_MAIL, NULL,
	ck_size_0, 0},
    {"MAIL FROM:<a@b.example> SIZE=18446744073709551615", E, 0, NULL,
	SMTP_VERB_MAIL, NULL, ck_size_max, 0},
    {"MAIL FROM:<a@b.example> SIZE=18446744073709551616", E, 0, NULL,
	SMTP_VERB_MAIL, NULL, ck_size_max, 0},
    {"MAIL FROM:<a@b.example> SIZE=123456789012345678901", E, 501, "5.5.4", 0,
	"Bad SIZE value: more than 20 digits", NULL, 0},
    {"MAIL FROM:<a@b.example> SIZE=12k", E, 501, "5.5.4", 0,
	"Bad SIZE value: not a decimal", NULL, 0},
    {"MAIL FROM:<a@b.example> SIZE=", E, 501, "5.5.4", 0,
	"Bad SIZE value: empty", NULL, 0},
    {"MAIL FROM:<a@b.example> SIZE", E, 501, "5.5.4", 0, "SIZE needs a value",
	NULL, 0},
    {"MAIL FROM:<a@b.example> SIZE=1 SIZE=2", E, 555, "5.5.4", 0,
	"Duplicate parameter SIZE", NULL, 0},
    {"MAIL FROM:<a@b.example> SIZE=1 size=1", E, 555, "5.5.4", 0,
	"Duplicate parameter SIZE", NULL, 0},
    {"MAIL FROM:<a@b.example> SIZE=1=2", E, 501, "5.5.4", 0, "Bad SIZE value",
	NULL, 0},
    {"MAIL FROM:<a@b.example> BODY=8BITMIME", E, 0, NULL, SMTP_VERB_MAIL, NULL,
	ck_body_8, 0},
    {"MAIL FROM:<a@b.example> body=7bit", E, 0, NULL, SMTP_VERB_MAIL, NULL,
	ck_body_7, 0},
    {"MAIL FROM:<a@b.example> BODY=BINARYMIME", E, 555, "5.5.4", 0,
	"Unsupported BODY=BINARYMIME", NULL, 0},
    {"MAIL FROM:<a@b.example> SMTPUTF8", EU, 0, NULL, SMTP_VERB_MAIL, NULL,
	ck_smtputf8_ascii, 0},
    {"MAIL FROM:<a@b.example> smtputf8", E, 555, "5.5.4", 0,
	"Unsupported parameter smtputf8", NULL, 0},
    {"MAIL FROM:<a@b.example> SMTPUTF8=yes", EU, 501, "5.5.4", 0,
	"SMTPUTF8 takes no value", NULL, 0},
    /* RFC 8689 2: no value; whether the session may use it is the
       server's check (530 5.7.10 outside TLS, test_smtp_server.c) */
    {"MAIL FROM:<a@b.example> SIZE=10 requiretls", E, 0, NULL, SMTP_VERB_MAIL,
	NULL, ck_requiretls, 0},
    {"MAIL FROM:<a@b.example> REQUIRETLS SIZE=10", E, 0, NULL, SMTP_VERB_MAIL,
	NULL, ck_requiretls, 0},
    {"MAIL FROM:<a@b.example> SIZE=10", E, 0, NULL, SMTP_VERB_MAIL, NULL,
	ck_no_requiretls, 0},
    {"MAIL FROM:<a@b.example> REQUIRETLS=YES", E, 501, "5.5.4", 0,
	"REQUIRETLS takes no value", NULL, 0},
    {"MAIL FROM:<a@b.example> REQUIRETLS REQUIRETLS", E, 555, "5.5.4", 0,
	"Duplicate parameter REQUIRETLS", NULL, 0},
    {"MAIL FROM:<a@b.example> REQUIRETLS", 0, 555, "5.5.4", 0,
	"Parameter REQUIRETLS not allowed: ESMTP parameters need EHLO", NULL,
	0},
    {"RCPT TO:<b@b.example> REQUIRETLS", E, 555, "5.5.4", 0,
	"Unsupported parameter REQUIRETLS", NULL, 0},
    {"MAIL FROM:<a@b.example> RET=FULL", E, 0, NULL, SMTP_VERB_MAIL, NULL,
	ck_ret_full, 0},
    {"MAIL FROM:<a@b.example> ret=hdrs", E, 0, NULL, SMTP_VERB_MAIL, NULL,
	ck_ret_hdrs, 0},
    {"MAIL FROM:<a@b.example> RET=ALL", E, 501, "5.5.4", 0, "Bad RET value",
	NULL, 0},
    {"MAIL FROM:<a@b.example> ENVID=QQ+2B12+3Dx", E, 0, NULL, SMTP_VERB_MAIL,
	NULL, ck_envid, 0},
    {"MAIL FROM:<a@b.example> ENVID=a+2b", E, 501, "5.5.4", 0,
	"Bad ENVID value: not xtext", NULL, 0},
    {"MAIL FROM:<a@b.example> ENVID=a+00", E, 501, "5.5.4", 0,
	"Bad ENVID value: not xtext", NULL, 0},
    {"MAIL FROM:<a@b.example> ENVID=a+2", E, 501, "5.5.4", 0,
	"Bad ENVID value: not xtext", NULL, 0},
    {"MAIL FROM:<a@b.example> AUTH=<>", E, 0, NULL, SMTP_VERB_MAIL, NULL,
	ck_auth_null, 0},
    {"MAIL FROM:<a@b.example> AUTH=alice+2Btag@example.org", E, 0, NULL,
	SMTP_VERB_MAIL, NULL, ck_auth_mbox, 0},
    {"MAIL FROM:<a@b.example> AUTH=a+ZZ", E, 501, "5.5.4", 0, "Bad AUTH value",
	NULL, 0},
    {"MAIL FROM:<a@b.example> FOO=bar", E, 555, "5.5.4", 0,
	"Unsupported parameter FOO", NULL, 0},
    {"MAIL FROM:<a@b.example> X-FOO", E, 555, "5.5.4", 0,
	"Unsupported parameter X-FOO", NULL, 0},
    {"MAIL FROM:<a@b.example> NOTIFY=NEVER", E, 555, "5.5.4", 0,
	"Unsupported parameter NOTIFY", NULL, 0},
    {"MAIL FROM:<a@b.example> -X=1", E, 501, "5.5.4", 0,
	"Malformed parameter keyword \"-X\"", NULL, 0},
    {"MAIL FROM:<a@b.example> X_Y", E, 501, "5.5.4", 0,
	"Malformed parameter keyword \"X_Y\"", NULL, 0},
    {"MAIL FROM:<a@b.example> =1", E, 501, "5.5.4", 0,
	"Malformed parameter keyword \"\"", NULL, 0},
    {"MAIL FROM:<a@b.example> SIZE=1\xc3\xa9", EU, 501, "5.5.4", 0,
	"only printable ASCII", NULL, 0},
    {"MAIL FROM:<a@b.example> SIZE=10", U, 555, "5.5.4", 0,
	"Parameter SIZE not allowed: ESMTP parameters need EHLO", NULL, 0},
    {"MAIL FROM:<a@b.example>  SIZE=10   BODY=8BITMIME RET=HDRS ENVID=id1 "
     "SMTPUTF8  ",
	EU, 0, NULL, SMTP_VERB_MAIL, NULL, ck_all_mail, 0},
    /* RCPT parameters */
    {"RCPT TO:<bob@example.net> NOTIFY=NEVER", E, 0, NULL, SMTP_VERB_RCPT, NULL,
	ck_notify_never, 0},
    {"RCPT TO:<bob@example.net> NOTIFY=SUCCESS,FAILURE,DELAY", E, 0, NULL,
	SMTP_VERB_RCPT, NULL, ck_notify_all, 0},
    {"RCPT TO:<bob@example.net> notify=delay,Success", E, 0, NULL,
	SMTP_VERB_RCPT, NULL, ck_notify_ds, 0},
    {"RCPT TO:<bob@example.net> NOTIFY=NEVER,SUCCESS", E, 501, "5.5.4", 0,
	"NEVER must be alone", NULL, 0},
    {"RCPT TO:<bob@example.net> NOTIFY=DELAY,NEVER", E, 501, "5.5.4", 0,
	"NEVER must be alone", NULL, 0},
    {"RCPT TO:<bob@example.net> NOTIFY=SUCCESS,,DELAY", E, 501, "5.5.4", 0,
	"empty item", NULL, 0},
    {"RCPT TO:<bob@example.net> NOTIFY=SUCCESS,", E, 501, "5.5.4", 0,
	"empty item", NULL, 0},
    {"RCPT TO:<bob@example.net> NOTIFY=,SUCCESS", E, 501, "5.5.4", 0,
	"empty item", NULL, 0},
    {"RCPT TO:<bob@example.net> NOTIFY=SUCCESS,success", E, 501, "5.5.4", 0,
	"item repeated", NULL, 0},
    {"RCPT TO:<bob@example.net> NOTIFY=ALWAYS", E, 501, "5.5.4", 0,
	"items are NEVER", NULL, 0},
    {"RCPT TO:<bob@example.net> NOTIFY=NEVER NOTIFY=NEVER", E, 555, "5.5.4", 0,
	"Duplicate parameter NOTIFY", NULL, 0},
    {"RCPT TO:<bob@example.net> ORCPT=rfc822;bob@example.net", E, 0, NULL,
	SMTP_VERB_RCPT, NULL, ck_orcpt, 0},
    {"RCPT TO:<bob@example.net> ORCPT=RFC822;bob+2Bx@example.net", E, 0, NULL,
	SMTP_VERB_RCPT, NULL, ck_orcpt_plus, 0},
    {"RCPT TO:<bob@example.net> NOTIFY=FAILURE "
     "ORCPT=utf-8;b\\x{E9}b@example.net",
	E, 0, NULL, SMTP_VERB_RCPT, NULL, ck_orcpt_utf8, 0},
    {"RCPT TO:<bob@example.net> ORCPT=bob@example.net", E, 501, "5.5.4", 0,
	"expected addr-type;address", NULL, 0},
    {"RCPT TO:<bob@example.net> ORCPT=;bob@example.net", E, 501, "5.5.4", 0,
	"expected addr-type;address", NULL, 0},
    {"RCPT TO:<bob@example.net> ORCPT=rfc822;", E, 501, "5.5.4", 0,
	"empty address", NULL, 0},
    {"RCPT TO:<bob@example.net> ORCPT=rfc(822;bob@example.net", E, 501, "5.5.4",
	0, "addr-type is not an atom", NULL, 0},
    {"RCPT TO:<bob@example.net> ORCPT=abcdefghijklmnopqrstuvwxyz012345;b", E,
	501, "5.5.4", 0, "addr-type longer than 31", NULL, 0},
    {"RCPT TO:<bob@example.net> ORCPT=abcdefghijklmnopqrstuvwxyz01234;b", E, 0,
	NULL, SMTP_VERB_RCPT, NULL, NULL, 0},
    {"RCPT TO:<bob@example.net> ORCPT=rfc822;a+2", E, 501, "5.5.4", 0,
	"Bad ORCPT value: not xtext", NULL, 0},
    {"RCPT TO:<bob@example.net> SIZE=10", E, 555, "5.5.4", 0,
	"Unsupported parameter SIZE", NULL, 0},
    {"RCPT TO:<bob@example.net> SMTPUTF8", EU, 555, "5.5.4", 0,
	"Unsupported parameter SMTPUTF8", NULL, 0},
    {"RCPT TO:<bob@example.net> NOTIFY=NEVER", X, 555, "5.5.4", 0, "need EHLO",
	NULL, 0},
    /* UTF-8 paths (RFC 6531) */
    {"MAIL FROM:<j\xc3\xb6s\xc3\xa9@example.org> SMTPUTF8", EU, 0, NULL,
	SMTP_VERB_MAIL, NULL, ck_utf8, 0},
    {"MAIL FROM:<a@b\xc3\xbc"
     "cher.example> SMTPUTF8 BODY=8BITMIME",
	EU, 0, NULL, SMTP_VERB_MAIL, NULL, ck_utf8, 0},
    {"MAIL FROM:<j\xc3\xb6s\xc3\xa9@example.org>", EU, 553, "5.6.7", 0,
	"Non-ASCII address requires SMTPUTF8", NULL, 0},
    {"MAIL FROM:<j\xc3\xb6s\xc3\xa9@example.org>", E, 553, "5.6.7", 0,
	"Non-ASCII address requires SMTPUTF8", NULL, 0},
    {"MAIL FROM:<j\xc3\xb6s\xc3\xa9@example.org> SMTPUTF8", E, 555, "5.5.4", 0,
	"Unsupported parameter SMTPUTF8", NULL, 0},
    {"MAIL FROM:<j\xc3\xb6s\xc3\xa9@example.org> SMTPUTF8", EU | X, 0, NULL,
	SMTP_VERB_MAIL, NULL, ck_utf8, 0},
    {"MAIL FROM:<\xff@example.org> SMTPUTF8", EU, 501, "5.1.7", 0,
	"Bad sender address syntax", NULL, 0},
    {"MAIL FROM:<\xff@example.org>", E, 553, "5.6.7", 0, "requires SMTPUTF8",
	NULL, 0},
    {"RCPT TO:<j\xc3\xb6s\xc3\xa9@example.org>", E | X, 0, NULL, SMTP_VERB_RCPT,
	NULL, ck_rcpt_utf8, 0},
    {"RCPT TO:<j\xc3\xb6s\xc3\xa9@example.org>", EU, 553, "5.6.7", 0,
	"requires SMTPUTF8", NULL, 0},
    {"RCPT TO:<j\xc3\xb6s\xc3\xa9@example.org> NOTIFY=NEVER", EU, 553, "5.6.7",
	0, "requires SMTPUTF8", NULL, 0},
    {"RCPT TO:<j\xc3\xb6s\xc3\xa9@> NOTIFY=NEVER", EU, 553, "5.6.7", 0,
	"requires SMTPUTF8", NULL, 0},
    {"RCPT TO:<j\xc3\xb6s\xc3\xa9@> NOTIFY=NEVER", E | X, 501, "5.1.3", 0,
	"Bad recipient address syntax", NULL, 0},
};

/* ---- invariants every result must hold ---------------------------------- */

static bool
inside(const char *p, size_t n, const char *line, size_t len)
{
	return p >= line && p <= line + len && n <= (size_t)(line + len - p);
}

static void
check_invariants(const char *line, size_t len, int rc, const struct smtp_cmd *c,
    const struct smtp_err *err)
{
	T_CHECK(rc == 0 || rc == -1);
	if (rc == -1) {
		T_CHECK(err->code >= 500 && err->code <= 555);
		T_CHECK(err->enh != NULL && err->enh[0] == '5');
		T_CHECK(memchr(err->text, '\0', sizeof(err->text)) != NULL);
		T_CHECK(err->text[0] != '\0');
		return;
	}
	T_CHECK(c->verb != SMTP_VERB_UNKNOWN);
	T_CHECK(inside(c->arg, c->arg_len, line, len));
	if (c->auth_initial != NULL)
		T_CHECK(
		    inside(c->auth_initial, c->auth_initial_len, line, len));
	T_CHECK(memchr(c->auth_mech, '\0', sizeof(c->auth_mech)) != NULL);
}

/* Parse line from a guard copy; the result is checked against invariants. */
static int
parse_guarded(const char *line, size_t len, unsigned flags, struct smtp_cmd *c,
    struct smtp_err *err, void **map, size_t *maplen, const char **copy_out)
{
	const char *g = t_guard(line, len, map, maplen);
	int rc = smtp_cmd_parse(g, len, flags, c, err);

	check_invariants(g, len, rc, c, err);
	*copy_out = g;
	return rc;
}

static void
check_row(const struct row *r, int rc, const struct smtp_cmd *c,
    const struct smtp_err *err)
{
	if (r->code != 0) {
		T_CHECK_INT(rc, -1);
		/* the session needs the verb of a refused BDAT: it closes */
		if (r->verb != SMTP_VERB_UNKNOWN)
			T_CHECK_INT(c->verb, r->verb);
		T_CHECK_INT(err->code, r->code);
		T_CHECK_STR(err->enh, r->enh);
		if (r->text != NULL && strstr(err->text, r->text) == NULL) {
			fprintf(stderr, "  text \"%s\" lacks \"%s\"\n",
			    err->text, r->text);
			T_CHECK(!"error text");
		}
		return;
	}
	T_CHECK_INT(rc, 0);
	if (rc != 0) {
		fprintf(
		    stderr, "  got %d %s %s\n", err->code, err->enh, err->text);
		return;
	}
	T_CHECK_INT(c->verb, r->verb);
	if (r->text != NULL)
		T_CHECK(view_is(c->arg, c->arg_len, r->text));
	if (r->check != NULL)
		r->check(c);
}

static void
run_row(const char *name, const struct row *r)
{
	size_t len = r->len ? r->len : strlen(r->line), k, maplen;
	struct smtp_cmd c;
	struct smtp_err err;
	const char *g;
	void *map;
	int rc;

	t_case(name);
	rc = parse_guarded(r->line, len, r->flags, &c, &err, &map, &maplen, &g);
	check_row(r, rc, &c, &err);
	t_unguard(map, maplen);
	/* every prefix must parse without reading past its end */
	for (k = 0; k < len && len <= 4096; k++) {
		(void)parse_guarded(
		    r->line, k, r->flags, &c, &err, &map, &maplen, &g);
		t_unguard(map, maplen);
	}
}

static void
test_rows(void)
{
	char name[96];
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char clean[64];
		size_t j, n = rows[i].len ? rows[i].len : strlen(rows[i].line);

		for (j = 0; j < n && j + 1 < sizeof(clean); j++) {
			unsigned char ch = (unsigned char)rows[i].line[j];

			clean[j] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
		}
		clean[j] = '\0';
		if (str_fmt(name, sizeof(name), "row %zu: %s", i, clean) == -1)
			abort();
		run_row(name, &rows[i]);
	}
}

/* ---- lines at the length limits ----------------------------------------- */

/* A line of exactly n octets: head, then fill, then tail. */
static char *
make_line(size_t n, const char *head, char fill, const char *tail)
{
	size_t hl = strlen(head), tl = strlen(tail);
	char *s = malloc(n + 1);

	if (s == NULL || hl + tl > n)
		abort();
	memcpy(s, head, hl);
	memset(s + hl, fill, n - hl - tl);
	memcpy(s + n - tl, tail, tl);
	s[n] = '\0';
	return s;
}

static void
limit_row(const char *name, size_t n, const char *head, char fill,
    const char *tail, unsigned flags, int code, enum smtp_verb verb)
{
	char *line = make_line(n, head, fill, tail);
	struct row r = {line, flags, code, code ? "5.5.2" : NULL, verb,
	    code == 500 ? "Line too long" : NULL, NULL, n};

	run_row(name, &r);
	free(line);
}

static void
test_limits(void)
{
	const char *m = "MAIL FROM:<a@b.example>",
		   *rc = "RCPT TO:<a@b.example>";

	limit_row("NOOP 510", 510, "NOOP ", 'x', "", EU, 0, SMTP_VERB_NOOP);
	limit_row("NOOP 511", 511, "NOOP ", 'x', "", EU, 500, 0);
	limit_row(
	    "EHLO 510", 510, "EHLO a.example", ' ', "", EU, 0, SMTP_VERB_EHLO);
	limit_row("EHLO 511", 511, "EHLO a.example", ' ', "", EU, 500, 0);
	limit_row("EHLO 510 one label", 510, "EHLO ", 'h', "", EU, 501, 0);
	limit_row("BDAT 510", 510, "BDAT 10", ' ', "", EU, 0, SMTP_VERB_BDAT);
	/* refused, but the session must know it was a BDAT: it closes */
	limit_row("BDAT 511", 511, "BDAT 10", ' ', "", EU, 500, SMTP_VERB_BDAT);
	limit_row("unknown 511", 511, "XXXX ", 'x', "", EU, 500, 0);
	limit_row("MAIL params 2046", 2046, m, ' ', " SIZE=100", EU, 0,
	    SMTP_VERB_MAIL);
	limit_row("MAIL params 2047", 2047, m, ' ', " SIZE=100", EU, 500, 0);
	limit_row("RCPT params 2046", 2046, rc, ' ', " NOTIFY=NEVER", EU, 0,
	    SMTP_VERB_RCPT);
	limit_row(
	    "RCPT params 2047", 2047, rc, ' ', " NOTIFY=NEVER", EU, 500, 0);
	limit_row(
	    "MAIL params 511 no EHLO", 511, m, ' ', " SIZE=100", U, 500, 0);
	limit_row("MAIL 510 no params", 510, "MAIL FROM:", ' ', "<a@b.example>",
	    EU, 0, SMTP_VERB_MAIL);
	limit_row("MAIL 511 no params", 511, "MAIL FROM:", ' ', "<a@b.example>",
	    EU, 500, 0);
	limit_row("RCPT 511 trailing spaces", 511, rc, ' ', "", EU, 500, 0);
	limit_row("DATA 511 trailing spaces", 511, "DATA", ' ', "", EU, 500, 0);
}

static void
test_huge_line(void)
{
	size_t n = 100 * 1024;

	limit_row("100 KiB NOOP", n, "NOOP ", 'x', "", EU, 500, 0);
	limit_row(
	    "100 KiB MAIL", n, "MAIL FROM:<a@b.example> ", 'x', "", EU, 500, 0);
	limit_row("100 KiB of NUL", n, "", '\0', "", EU, 500, 0);
}

/* ---- verb names ------------------------------------------------------------
 */

static void
test_verb_names(void)
{
	static const char *names[] = {"HELO", "EHLO", "MAIL", "RCPT", "DATA",
	    "BDAT", "RSET", "NOOP", "VRFY", "EXPN", "HELP", "QUIT", "STARTTLS",
	    "AUTH"};
	struct smtp_cmd c;
	struct smtp_err err;
	size_t i;

	t_case("verb names round trip");
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const char *line = names[i];
		int rc = smtp_cmd_parse(line, strlen(line), EU, &c, &err);

		/* the verb is known whether or not its argument is missing */
		T_CHECK(rc == 0 || err.code == 501);
		if (rc == 0)
			T_CHECK_STR(smtp_verb_name(c.verb), names[i]);
	}
	T_CHECK_STR(smtp_verb_name(SMTP_VERB_STARTTLS), "STARTTLS");
	T_CHECK_STR(smtp_verb_name(SMTP_VERB_UNKNOWN), "UNKNOWN");
	T_CHECK_STR(smtp_verb_name((enum smtp_verb)99), "UNKNOWN");
}

/* ---- xtext ----------------------------------------------------------------
 */

struct xt_row {
	const char *in;
	int want_len; /* -1: refused */
	const char *want;
};

static const struct xt_row xt_decode_rows[] = {
    {"abc", 3, "abc"},
    {"", 0, ""},
    {"+2B", 1, "+"},
    {"+3D", 1, "="},
    {"a+20b", 3, "a b"},
    {"+FF+80", 2, "\xff\x80"},
    {"!~<>@", 5, "!~<>@"},
    {"+2b", -1, NULL},
    {"+2", -1, NULL},
    {"+", -1, NULL},
    {"a+G0", -1, NULL},
    {"a=b", -1, NULL},
    {"a b", -1, NULL},
    {"a\tb", -1, NULL},
    {"\x80", -1, NULL},
    {"+00", -1, NULL},
    {"a\x7f", -1, NULL},
};

static void
test_xtext_decode(void)
{
	size_t i, maplen;
	void *map;
	char out[32];

	for (i = 0; i < sizeof(xt_decode_rows) / sizeof(xt_decode_rows[0]);
	     i++) {
		const struct xt_row *r = &xt_decode_rows[i];
		const char *g = t_guard(r->in, strlen(r->in), &map, &maplen);
		int n = smtp_xtext_decode(g, strlen(r->in), out, sizeof(out));

		t_case(r->in);
		T_CHECK_INT(n, r->want_len);
		if (n >= 0)
			T_CHECK(memcmp(out, r->want, (size_t)n + 1) == 0);
		t_unguard(map, maplen);
	}
	t_case("xtext decode output bounds");
	T_CHECK_INT(smtp_xtext_decode("abc", 3, out, 4), 3);
	T_CHECK_INT(smtp_xtext_decode("abc", 3, out, 3), -1);
	T_CHECK_INT(smtp_xtext_decode("+41+42", 6, out, 3), 2);
	T_CHECK_STR(out, "AB");
	T_CHECK_INT(smtp_xtext_decode("+41+42", 6, out, 2), -1);
	T_CHECK_INT(smtp_xtext_decode("", 0, out, 0), -1);
	T_CHECK_INT(smtp_xtext_decode("", 0, out, 1), 0);
}

static void
test_xtext_encode(void)
{
	char out[1024], back[512], all[255];
	size_t i;
	int n;

	t_case("xtext encode specials");
	T_CHECK_INT(smtp_xtext_encode("a+b=c d", 7, out, sizeof(out)), 13);
	T_CHECK_STR(out, "a+2Bb+3Dc+20d");
	T_CHECK_INT(smtp_xtext_encode("\xc3\xa9\r\n", 4, out, sizeof(out)), 12);
	T_CHECK_STR(out, "+C3+A9+0D+0A");
	t_case("xtext encode refuses NUL and small outputs");
	T_CHECK_INT(smtp_xtext_encode("a\0b", 3, out, sizeof(out)), -1);
	T_CHECK_INT(smtp_xtext_encode("ab", 2, out, 3), 2);
	T_CHECK_INT(smtp_xtext_encode("ab", 2, out, 2), -1);
	T_CHECK_INT(smtp_xtext_encode(" ", 1, out, 4), 3);
	T_CHECK_INT(smtp_xtext_encode(" ", 1, out, 3), -1);
	T_CHECK_INT(smtp_xtext_encode("", 0, out, 1), 0);
	T_CHECK_INT(smtp_xtext_encode("", 0, out, 0), -1);
	t_case("xtext round trip of every byte 1..255");
	for (i = 0; i < sizeof(all); i++)
		all[i] = (char)(i + 1);
	n = smtp_xtext_encode(all, sizeof(all), out, sizeof(out));
	T_CHECK(n > 0);
	T_CHECK_INT(smtp_xtext_decode(out, (size_t)n, back, sizeof(back)),
	    (int)sizeof(all));
	T_CHECK(memcmp(all, back, sizeof(all)) == 0);
	t_case("xtext round trip of random strings");
	for (i = 0; i < 2000; i++) {
		char s[40];
		size_t k, len = (size_t)(t_rand() % sizeof(s));

		for (k = 0; k < len; k++)
			s[k] = (char)(1 + t_rand() % 255);
		n = smtp_xtext_encode(s, len, out, sizeof(out));
		T_CHECK(n >= (int)len);
		T_CHECK_INT(
		    smtp_xtext_decode(out, (size_t)n, back, sizeof(back)),
		    (int)len);
		T_CHECK(memcmp(s, back, len) == 0);
	}
}

/* RFC 8689 3: the TLS-Required header field (smtp_reqtls.c). */
static const struct {
	const char *msg;
	bool no;
} tlsreq_rows[] = {
    {"TLS-Required: No\r\n\r\nbody\r\n", true},
    {"From: a@b\r\ntls-required:no\r\n\r\n", true},
    {"TLS-Required:  NO  \r\nX: y\r\n\r\n", true},
    {"TLS-Required:\r\n No\r\n\r\n", true}, /* folded */
    {"TLS-Required: No", true},		    /* header only, no end */
    {"TLS-Required: Yes\r\n\r\n", false},
    {"TLS-Required: No thanks\r\n\r\n", false},
    {"TLS-Required: Nope\r\n\r\n", false},
    {"TLS-Required: N\r\n o\r\n\r\n", false},
    {"TLS-Required:\r\n\r\n", false},
    {"X-TLS-Required: No\r\n\r\n", false},
    {"TLS-Required-X: No\r\n\r\n", false},
    {"Subject: x\r\n\r\nTLS-Required: No\r\n", false}, /* in the body */
    {"TLS-Required: No               x\r\n\r\n", false},
    {"", false},
};

static void
test_tls_required(void)
{
	size_t i;

	for (i = 0; i < sizeof(tlsreq_rows) / sizeof(tlsreq_rows[0]); i++) {
		t_case(tlsreq_rows[i].msg);
		T_CHECK(smtp_tls_required_no(tlsreq_rows[i].msg,
			    strlen(tlsreq_rows[i].msg)) == tlsreq_rows[i].no);
	}
	t_case("REQUIRETLS wins over the header field (RFC 8689 4.1)");
	T_CHECK(smtp_tls_optional(false, true));
	T_CHECK(!smtp_tls_optional(true, true));
	T_CHECK(!smtp_tls_optional(false, false));
	T_CHECK(!smtp_tls_optional(true, false));
}

int
main(void)
{
	test_rows();
	test_tls_required();
	test_limits();
	test_huge_line();
	test_verb_names();
	test_xtext_decode();
	test_xtext_encode();
	return t_summary();
}
