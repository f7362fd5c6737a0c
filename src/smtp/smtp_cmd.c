/*
 * smtp_cmd: the SMTP command line parser (RFC 5321 4.1.1 and 4.1.2;
 * RFC 3030 BDAT, RFC 3207 STARTTLS, RFC 4954 AUTH, RFC 6531 SMTPUTF8).
 * The ESMTP parameters of MAIL and RCPT are parsed in smtp_param.c.
 *
 * Input is one line without its CRLF; the parser neither allocates nor
 * keeps state.  On success every view in struct smtp_cmd (arg,
 * auth_initial) points into the caller's line; on failure struct smtp_err
 * holds the reply, whose text says exactly what was wrong and echoes at
 * most a short, ASCII-sanitised piece of the client's input.
 *
 * Order of checks, so the reply names the first real problem:
 *   length (verb-dependent) -> control bytes -> verb -> arguments ->
 *   for MAIL/RCPT: path syntax -> ESMTP parameters -> 8-bit path.
 * The 8-bit check comes after the parameters because a MAIL path may hold
 * UTF-8 only when the same command carries SMTPUTF8 (RFC 6531 3.4).
 *
 * Strict where ambiguity is dangerous (BDAT sizes, AUTH mechanism, control
 * bytes, the HELO/EHLO name, which is written into Received:), liberal
 * where it is harmless: spaces are allowed between "FROM:"/"TO:" and the
 * path, around the BDAT size, and trailing spaces after any command.
 *
 * Limits: 510 octets per line (512 with CRLF, RFC 5321 4.5.3.1.4); MAIL
 * and RCPT with ESMTP parameters 2046 (SMTP_CMD_LINE_PARAMS_MAX - 2).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "smtp/smtp_int.h"

#define CMD_LINE_MAX	    (SMTP_CMD_LINE_MAX - 2)
#define CMD_LINE_PARAMS_MAX (SMTP_CMD_LINE_PARAMS_MAX - 2)
#define CMD_VERB_MAX	    8  /* "STARTTLS" */
#define CMD_AUTH_MECH_MAX   20 /* RFC 4422 3.1: SASL mechanism names */
#define CMD_ECHO_MAX	    40 /* client text quoted in an error reply */

struct cmd_ctx {
	const char *line;
	size_t len;
	unsigned flags;
	const char *arg; /* after the verb and its space */
	size_t arg_len;
	struct smtp_cmd *cmd;
	struct smtp_err *err;
};

struct cmd_def {
	const char *name;
	enum smtp_verb verb;
	int (*parse)(const struct cmd_def *, struct cmd_ctx *);
	const char *usage;
};

/* What differs between MAIL FROM and RCPT TO. */
struct cmd_path_def {
	const char *prefix; /* "FROM:" */
	bool mail;
	unsigned addr_flags;
	const char *enh;    /* bad path: 5.1.7 sender, 5.1.3 recipient */
	const char *what;   /* "sender" */
	unsigned utf8_flag; /* SMTP_CMD_F_* that may allow an 8-bit path */
};

static const struct cmd_path_def cmd_mail_path = {
    "FROM:",
    true,
    ADDR_F_ALLOW_NULL,
    "5.1.7",
    "sender",
    SMTP_CMD_F_UTF8_OK,
};
static const struct cmd_path_def cmd_rcpt_path = {
    "TO:",
    false,
    ADDR_F_ALLOW_POSTMASTER,
    "5.1.3",
    "recipient",
    SMTP_CMD_F_UTF8_TXN,
};

int
smtp_cmd_fail(
    struct smtp_err *err, int code, const char *enh, const char *fmt, ...)
{
	va_list ap;

	err->code = code;
	err->enh = enh;
	va_start(ap, fmt);
	/* human text of a reply: callers bound what they echo, and a cut
	 * (never seen in practice) still says what was wrong */
	str_vfmt_cut(err->text, sizeof(err->text), fmt, ap);
	va_end(ap);
	if (err->text[0] == '\0')
		memcpy(err->text, "Syntax error", sizeof("Syntax error"));
	return -1;
}

/*
 * Client text for an error reply: at most CMD_ECHO_MAX octets, anything
 * but printable ASCII shown as '?', so a reply never carries raw 8-bit or
 * control bytes the client chose.
 */
const char *
smtp_cmd_echo(char *out, size_t outlen, const char *s, size_t n)
{
	size_t i, o = 0;

	if (outlen == 0)
		return "";
	for (i = 0; i < n && o + 1 < outlen && i < CMD_ECHO_MAX; i++) {
		unsigned char c = (unsigned char)s[i];

		out[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if (i < n && o + 4 < outlen) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	return out;
}

static size_t
cmd_trim_end(const char *s, size_t n)
{
	while (n > 0 && s[n - 1] == ' ')
		n--;
	return n;
}

static size_t
cmd_skip_spaces(const char *s, size_t n, size_t i)
{
	while (i < n && s[i] == ' ')
		i++;
	return i;
}

/* The argument with leading and trailing spaces removed, as cmd->arg. */
static void
cmd_set_trimmed_arg(struct cmd_ctx *c)
{
	size_t i = cmd_skip_spaces(c->arg, c->arg_len, 0);

	c->cmd->arg = c->arg + i;
	c->cmd->arg_len = cmd_trim_end(c->arg + i, c->arg_len - i);
}

static int
cmd_usage(const struct cmd_def *d, struct cmd_ctx *c)
{
	return smtp_cmd_fail(c->err, 501, "5.5.4", "Syntax: %s", d->usage);
}

/* DATA, RSET, QUIT, STARTTLS: nothing but trailing spaces may follow. */
static int
cmd_parse_none(const struct cmd_def *d, struct cmd_ctx *c)
{
	cmd_set_trimmed_arg(c);
	if (c->cmd->arg_len > 0)
		return smtp_cmd_fail(c->err, 501, "5.5.4",
		    "Syntax: %s takes no argument", d->name);
	return 0;
}

/* NOOP, HELP: any argument, ignored by the session. */
static int
cmd_parse_opt(const struct cmd_def *d, struct cmd_ctx *c)
{
	(void)d;
	cmd_set_trimmed_arg(c);
	return 0;
}

/* VRFY, EXPN: a non-empty argument, otherwise free-form. */
static int
cmd_parse_need(const struct cmd_def *d, struct cmd_ctx *c)
{
	cmd_set_trimmed_arg(c);
	if (c->cmd->arg_len == 0)
		return cmd_usage(d, c);
	return 0;
}

/*
 * A HELO/EHLO name: labels of letters, digits, '-' (not first or last)
 * and '_', 1 to 63 octets each, at most 255 in all, with one trailing
 * dot allowed.  The underscore is not in RFC 5321's Ldh-str, but hosts
 * named after Windows machines send it, and it can forge nothing.
 */
static bool
cmd_helo_label_char(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
	       (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
}

static bool
cmd_helo_name_ok(const char *s, size_t n)
{
	size_t i, start = 0;

	if (n > 0 && s[n - 1] == '.')
		n--;
	if (n == 0 || n > ADDR_DOMAIN_MAX)
		return false;
	for (i = 0; i <= n; i++) {
		if (i < n && s[i] != '.') {
			if (!cmd_helo_label_char(s[i]))
				return false;
			continue;
		}
		/* a label ends at s[i] */
		if (i == start || i - start > 63 || s[start] == '-' ||
		    s[i - 1] == '-')
			return false;
		start = i + 1;
	}
	return true;
}

/*
 * HELO/EHLO ( Domain / address-literal ) (RFC 5321 4.1.1.1, 4.1.3).  The
 * name goes into the Received: field of every message of the session, so
 * anything that is not a name or an IPv4/IPv6 literal is refused rather
 * than recorded: spaces, parentheses, ';', quotes, 8-bit bytes could all
 * forge trace text.  General address literals ("[tag:...]") are refused
 * too: no Standardized-tag but IPv6 is registered, and their dcontent may
 * hold "(" and ";".
 */
static int
cmd_parse_helo(const struct cmd_def *d, struct cmd_ctx *c)
{
	enum addr_domain_kind kind;
	const char *a;
	size_t n;

	cmd_set_trimmed_arg(c);
	a = c->cmd->arg;
	n = c->cmd->arg_len;
	if (n == 0)
		return cmd_usage(d, c);
	if (a[0] == '[' ? addr_parse_domain(a, n, 0, NULL, 0, &kind) == ADDR_OK
			: cmd_helo_name_ok(a, n))
		return 0;
	return smtp_cmd_fail(c->err, 501, "5.5.2",
	    "Syntax: %s hostname: a domain name or an [IPv4] / [IPv6:...] "
	    "address literal",
	    d->name);
}

/*
 * BDAT <size> [LAST] (RFC 3030 2).  The size frames the chunk, so it must
 * be read exactly, but nothing around it is ambiguous: spaces around the
 * tokens are allowed as for every other command, and so are leading
 * zeros (chunk-size = 1*DIGIT), however many.  A line that still fails
 * here leaves the session unable to tell where the chunk ends; the
 * session closes it (smtp_server.c), the caller only names the problem.
 */
static int
cmd_parse_bdat(const struct cmd_def *d, struct cmd_ctx *c)
{
	const char *a;
	size_t n, i = 0, z = 0, rest;

	cmd_set_trimmed_arg(c);
	a = c->cmd->arg;
	n = c->cmd->arg_len;
	while (i < n && a[i] != ' ')
		i++;
	if (i == 0)
		return cmd_usage(d, c);
	while (z + 1 < i && a[z] == '0')
		z++;
	if (str_to_u64(a + z, i - z, &c->cmd->bdat_size) == -1)
		return smtp_cmd_fail(c->err, 501, "5.5.4",
		    "Bad BDAT chunk size: expected decimal digits, at most "
		    "2^64-1");
	rest = cmd_skip_spaces(a, n, i);
	if (rest == n)
		return 0;
	if (!str_case_eq(a + rest, n - rest, "LAST"))
		return smtp_cmd_fail(c->err, 501, "5.5.4",
		    "Syntax: BDAT size [LAST]: only LAST may follow the size");
	c->cmd->bdat_last = true;
	return 0;
}

static bool
cmd_mech_char(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
	       (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
}

/* AUTH mechanism [initial-response] (RFC 4954 4). */
static int
cmd_parse_auth(const struct cmd_def *d, struct cmd_ctx *c)
{
	const char *a = c->arg, *r;
	size_t n = c->arg_len, i, rn;

	for (i = 0; i < n && a[i] != ' '; i++) {
		if (!cmd_mech_char(a[i]))
			return smtp_cmd_fail(c->err, 501, "5.5.4",
			    "Bad AUTH mechanism name: only A-Z 0-9 - _ "
			    "allowed");
		if (i == CMD_AUTH_MECH_MAX)
			return smtp_cmd_fail(c->err, 501, "5.5.4",
			    "AUTH mechanism name longer than %d characters",
			    CMD_AUTH_MECH_MAX);
		c->cmd->auth_mech[i] = (a[i] >= 'a' && a[i] <= 'z')
					   ? (char)(a[i] - 'a' + 'A')
					   : a[i];
	}
	if (i == 0)
		return cmd_usage(d, c);
	c->cmd->auth_mech[i] = '\0';
	if (i == n)
		return 0;
	r = a + i + 1;
	rn = n - i - 1;
	if (rn == 0 || memchr(r, ' ', rn) != NULL)
		return smtp_cmd_fail(c->err, 501, "5.5.4",
		    "Syntax: AUTH mechanism [initial-response]: one base64 "
		    "token or = expected");
	c->cmd->auth_initial = r;
	/* RFC 4954 4: a lone "=" is an initial response of zero length */
	c->cmd->auth_initial_len = (rn == 1 && r[0] == '=') ? 0 : rn;
	return 0;
}

static bool
cmd_has_8bit(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return true;
	return false;
}

static int
cmd_path_error(
    const struct cmd_path_def *pd, struct cmd_ctx *c, enum addr_status st)
{
	return smtp_cmd_fail(c->err, 501, pd->enh, "Bad %s address syntax: %s",
	    pd->what, addr_strerror(st));
}

static int
cmd_utf8_error(struct cmd_ctx *c)
{
	/* RFC 6531 3.7.4.1 */
	return smtp_cmd_fail(
	    c->err, 553, "5.6.7", "Non-ASCII address requires SMTPUTF8");
}

/*
 * The path is parsed with UTF-8 allowed so its end (and the parameters
 * after it) can be found whatever it holds; whether 8-bit bytes were
 * allowed is decided once the parameters are known.
 */
static int
cmd_path(const struct cmd_path_def *pd, struct cmd_ctx *c, const char *p,
    size_t n, size_t *used_out)
{
	enum addr_status st;

	st = addr_parse_path(
	    p, n, pd->addr_flags | ADDR_F_UTF8, &c->cmd->path, used_out);
	if (st == ADDR_OK && *used_out > n)
		st = ADDR_ERR_SYNTAX; /* defensive: never trust a bad count */
	if (st == ADDR_OK)
		return 0;
	if (cmd_has_8bit(p, n) && !(c->flags & pd->utf8_flag))
		return cmd_utf8_error(c);
	return cmd_path_error(pd, c, st);
}

static int
cmd_parse_path_cmd(
    const struct cmd_def *d, const struct cmd_path_def *pd, struct cmd_ctx *c)
{
	size_t plen = strlen(pd->prefix), i, used;
	unsigned nparams = 0;
	bool utf8_ok;

	if (c->arg_len < plen || !str_case_eq(c->arg, plen, pd->prefix))
		return cmd_usage(d, c);
	/* "MAIL FROM: <a@b>": not RFC 5321, common in the wild, harmless */
	i = cmd_skip_spaces(c->arg, c->arg_len, plen);
	if (i == c->arg_len)
		return cmd_usage(d, c);
	/* a bare address is common enough to deserve its own message */
	if (c->arg[i] != '<')
		return smtp_cmd_fail(c->err, 501, pd->enh,
		    "Bad %s address syntax: it must be in angle brackets <>",
		    pd->what);
	if (cmd_path(pd, c, c->arg + i, c->arg_len - i, &used) == -1)
		return -1;
	i += used;
	if (smtp_param_parse(c->arg + i, c->arg_len - i, c->flags, pd->mail,
		c->cmd, c->err, &nparams) == -1)
		return -1;
	/* the longer limit is room for parameters, not for padding */
	if (nparams == 0 && c->len > CMD_LINE_MAX)
		return smtp_cmd_fail(c->err, 500, "5.5.2",
		    "Line too long: over %d octets without parameters",
		    SMTP_CMD_LINE_MAX);
	if (pd->mail)
		utf8_ok =
		    (c->flags & SMTP_CMD_F_UTF8_OK) && c->cmd->mail.smtputf8;
	else
		utf8_ok = (c->flags & SMTP_CMD_F_UTF8_TXN) != 0;
	if (!utf8_ok && (c->cmd->path.utf8 || cmd_has_8bit(c->arg, i)))
		return cmd_utf8_error(c);
	return 0;
}

static int
cmd_parse_mail(const struct cmd_def *d, struct cmd_ctx *c)
{
	return cmd_parse_path_cmd(d, &cmd_mail_path, c);
}

static int
cmd_parse_rcpt(const struct cmd_def *d, struct cmd_ctx *c)
{
	return cmd_parse_path_cmd(d, &cmd_rcpt_path, c);
}

static const struct cmd_def cmd_defs[] = {
    {"HELO", SMTP_VERB_HELO, cmd_parse_helo, "HELO hostname"},
    {"EHLO", SMTP_VERB_EHLO, cmd_parse_helo, "EHLO hostname"},
    {"MAIL", SMTP_VERB_MAIL, cmd_parse_mail,
	"MAIL FROM:<address> [parameters]"},
    {"RCPT", SMTP_VERB_RCPT, cmd_parse_rcpt, "RCPT TO:<address> [parameters]"},
    {"DATA", SMTP_VERB_DATA, cmd_parse_none, "DATA"},
    {"BDAT", SMTP_VERB_BDAT, cmd_parse_bdat, "BDAT size [LAST]"},
    {"RSET", SMTP_VERB_RSET, cmd_parse_none, "RSET"},
    {"NOOP", SMTP_VERB_NOOP, cmd_parse_opt, "NOOP [text]"},
    {"VRFY", SMTP_VERB_VRFY, cmd_parse_need, "VRFY address"},
    {"EXPN", SMTP_VERB_EXPN, cmd_parse_need, "EXPN list"},
    {"HELP", SMTP_VERB_HELP, cmd_parse_opt, "HELP [topic]"},
    {"QUIT", SMTP_VERB_QUIT, cmd_parse_none, "QUIT"},
    {"STARTTLS", SMTP_VERB_STARTTLS, cmd_parse_none, "STARTTLS"},
    {"AUTH", SMTP_VERB_AUTH, cmd_parse_auth,
	"AUTH mechanism [initial-response]"},
};

static const struct cmd_def *
cmd_lookup(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < sizeof(cmd_defs) / sizeof(cmd_defs[0]); i++)
		if (str_case_eq(s, n, cmd_defs[i].name))
			return &cmd_defs[i];
	return NULL;
}

const char *
smtp_verb_name(enum smtp_verb v)
{
	size_t i;

	for (i = 0; i < sizeof(cmd_defs) / sizeof(cmd_defs[0]); i++)
		if (cmd_defs[i].verb == v)
			return cmd_defs[i].name;
	return "UNKNOWN";
}

static int
cmd_check_bytes(const char *line, size_t len, struct smtp_err *err)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)line[i];

		if (ch == '\0')
			return smtp_cmd_fail(err, 500, "5.5.2",
			    "Syntax error: NUL byte in command line");
		if (ch < 0x20 || ch == 0x7f)
			return smtp_cmd_fail(err, 500, "5.5.2",
			    "Syntax error: control character 0x%02x in command "
			    "line",
			    ch);
	}
	return 0;
}

/* The verb ends at SP or end of line; anything longer is not a verb. */
static const struct cmd_def *
cmd_verb(const char *line, size_t len, size_t *vlen_out)
{
	size_t i = 0;

	while (i < len && i <= CMD_VERB_MAX && line[i] != ' ')
		i++;
	*vlen_out = i;
	if (i > CMD_VERB_MAX || i == 0)
		return NULL;
	return cmd_lookup(line, i);
}

static size_t
cmd_line_limit(const struct cmd_def *d, unsigned flags)
{
	if (d == NULL || !(flags & SMTP_CMD_F_ESMTP))
		return CMD_LINE_MAX;
	if (d->verb == SMTP_VERB_MAIL || d->verb == SMTP_VERB_RCPT)
		return CMD_LINE_PARAMS_MAX;
	return CMD_LINE_MAX;
}

int
smtp_cmd_parse(const char *line, size_t len, unsigned flags,
    struct smtp_cmd *cmd, struct smtp_err *err)
{
	const struct cmd_def *d;
	struct cmd_ctx c;
	size_t vlen;

	memset(cmd, 0, sizeof(*cmd));
	err->code = 0;
	err->enh = NULL;
	err->text[0] = '\0';
	d = cmd_verb(line, len, &vlen);
	/* known even when the line is refused: a refused BDAT closes */
	if (d != NULL)
		cmd->verb = d->verb;
	if (len > cmd_line_limit(d, flags))
		return smtp_cmd_fail(err, 500, "5.5.2",
		    "Line too long: over %zu octets including CRLF",
		    cmd_line_limit(d, flags) + 2);
	if (cmd_check_bytes(line, len, err) == -1)
		return -1;
	if (d == NULL)
		return smtp_cmd_fail(err, 500, "5.5.2",
		    len == 0 ? "Command unrecognized: empty line"
			     : "Command unrecognized");
	c.line = line;
	c.len = len;
	c.flags = flags;
	c.arg = line + vlen + (vlen < len);
	c.arg_len = len - vlen - (vlen < len);
	c.cmd = cmd;
	c.err = err;
	cmd->arg = c.arg;
	cmd->arg_len = c.arg_len;
	return d->parse(d, &c);
}
