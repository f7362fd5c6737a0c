/*
 * smtp_param: the ESMTP parameters of MAIL and RCPT (RFC 5321 4.1.2
 * esmtp-param; RFC 1870 SIZE, RFC 6152 BODY, RFC 6531 SMTPUTF8, RFC 3461
 * RET/ENVID/NOTIFY/ORCPT, RFC 4954 5 AUTH=, RFC 8689 2 REQUIRETLS) and
 * xtext (RFC 3461 4).  REQUIRETLS is parsed in any session; whether the
 * session may use it (TLS) is the server's check (smtp_server.c).
 *
 * Input is the text after the path's '>': empty, or one or more spaces
 * then parameters separated by one or more spaces (trailing spaces are
 * tolerated).  Keywords are case-insensitive; each may appear once.
 *
 * Replies, so a client and an admin reading the log can tell them apart:
 *   555 5.5.4  unknown or unsupported parameter or value, a repeated one,
 *              or any parameter without EHLO (SMTP_CMD_F_ESMTP unset)
 *   501 5.5.4  a malformed keyword or value (bad number, bad xtext, too
 *              long, missing or extra "=value")
 * Every message names the parameter; client text is echoed only through
 * smtp_cmd_echo (bounded, printable ASCII).
 *
 * Limits: ENVID 100 encoded octets (RFC 3461 4.4), ORCPT 500 (4.2), AUTH=
 * 500 (RFC 4954 5), ORCPT addr-type 31.  Decoded values always fit their
 * struct fields, since xtext never decodes to more octets than it has.
 */
#include <limits.h>
#include <string.h>

#include "smtp/smtp_int.h"

#define PARAM_ORCPT_TYPE_MAX 31
#define PARAM_ECHO	     48 /* room for a sanitised piece of input */

struct param_val {
	const char *s;
	size_t n;
};

struct param_def {
	const char *name;
	bool mail;	    /* MAIL parameter, else RCPT */
	bool has_value;	    /* "KEY=value" (true) or "KEY" alone */
	unsigned need_flag; /* SMTP_CMD_F_* needed to offer it, or 0 */
	int (*apply)(struct smtp_cmd *, struct param_val, struct smtp_err *);
};

/* ---- xtext (RFC 3461 4) ------------------------------------------------- */

static int
xtext_hex(char c)
{
	/* RFC 3461 4: hexchar uses upper-case digits only */
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool
xtext_literal(unsigned char c)
{
	return c >= 33 && c <= 126 && c != '+' && c != '=';
}

int
smtp_xtext_decode(const char *s, size_t len, char *out, size_t outlen)
{
	size_t i = 0, o = 0;

	if (outlen == 0 || len > INT_MAX)
		return -1;
	out[0] = '\0';
	while (i < len) {
		int hi, lo, b = (unsigned char)s[i];

		if (b == '+') {
			if (len - i < 3 || (hi = xtext_hex(s[i + 1])) < 0 ||
			    (lo = xtext_hex(s[i + 2])) < 0)
				return -1;
			b = hi * 16 + lo;
			if (b == 0)
				return -1; /* a NUL would cut the C string */
			i += 3;
		} else if (xtext_literal((unsigned char)b)) {
			i++;
		} else {
			return -1;
		}
		if (o + 1 >= outlen)
			return -1;
		out[o++] = (char)b;
	}
	out[o] = '\0';
	return (int)o;
}

int
smtp_xtext_encode(const char *s, size_t len, char *out, size_t outlen)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i, o = 0;

	if (outlen == 0)
		return -1;
	out[0] = '\0';
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		/* decode refuses NUL, so encoding it could not round-trip */
		if (c == '\0')
			return -1;
		if (xtext_literal(c)) {
			if (o + 1 >= outlen)
				return -1;
			out[o++] = (char)c;
			continue;
		}
		if (outlen - o < 4 || o + 3 > INT_MAX)
			return -1;
		out[o++] = '+';
		out[o++] = hex[c >> 4];
		out[o++] = hex[c & 0xf];
	}
	out[o] = '\0';
	return o > INT_MAX ? -1 : (int)o;
}

/* ---- one parameter each ------------------------------------------------- */

static int
param_bad(struct smtp_err *err, const char *name, const char *why)
{
	return smtp_cmd_fail(err, 501, "5.5.4", "Bad %s value: %s", name, why);
}

static int
param_size(struct smtp_cmd *cmd, struct param_val v, struct smtp_err *err)
{
	size_t i;

	if (str_to_u64(v.s, v.n, &cmd->mail.size) == 0) {
		cmd->mail.has_size = true;
		return 0;
	}
	if (v.n == 0)
		return param_bad(err, "SIZE", "not a decimal number");
	for (i = 0; i < v.n; i++)
		if (v.s[i] < '0' || v.s[i] > '9')
			return param_bad(err, "SIZE", "not a decimal number");
	/* RFC 1870 allows 20 digits: a valid number past 2^64 is simply
	 * bigger than any limit, so the session answers 552, not 501 */
	if (v.n > 20)
		return param_bad(err, "SIZE", "more than 20 digits");
	cmd->mail.size = UINT64_MAX;
	cmd->mail.has_size = true;
	return 0;
}

static int
param_body(struct smtp_cmd *cmd, struct param_val v, struct smtp_err *err)
{
	char e[PARAM_ECHO];

	if (str_case_eq(v.s, v.n, "7BIT"))
		cmd->mail.body = SMTP_BODY_7BIT;
	else if (str_case_eq(v.s, v.n, "8BITMIME"))
		cmd->mail.body = SMTP_BODY_8BITMIME;
	else
		return smtp_cmd_fail(err, 555, "5.5.4",
		    "Unsupported BODY=%s: only 7BIT and 8BITMIME",
		    smtp_cmd_echo(e, sizeof(e), v.s, v.n));
	return 0;
}

static int
param_smtputf8(struct smtp_cmd *cmd, struct param_val v, struct smtp_err *err)
{
	(void)v;
	(void)err;
	cmd->mail.smtputf8 = true;
	return 0;
}

static int
param_requiretls(struct smtp_cmd *cmd, struct param_val v, struct smtp_err *err)
{
	(void)v;
	(void)err;
	cmd->mail.requiretls = true;
	return 0;
}

static int
param_ret(struct smtp_cmd *cmd, struct param_val v, struct smtp_err *err)
{
	if (str_case_eq(v.s, v.n, "FULL"))
		cmd->mail.ret = SMTP_RET_FULL;
	else if (str_case_eq(v.s, v.n, "HDRS"))
		cmd->mail.ret = SMTP_RET_HDRS;
	else
		return param_bad(err, "RET", "expected FULL or HDRS");
	return 0;
}

/* An xtext value of at most max encoded octets, decoded into out. */
static int
param_xtext(struct param_val v, size_t max, const char *name, char *out,
    size_t outlen, struct smtp_err *err)
{
	if (v.n > max)
		return smtp_cmd_fail(err, 501, "5.5.4",
		    "Bad %s value: longer than %zu characters", name, max);
	if (smtp_xtext_decode(v.s, v.n, out, outlen) == -1)
		return param_bad(
		    err, name, "not xtext (+XX with upper-case hex, no NUL)");
	return 0;
}

static int
param_envid(struct smtp_cmd *cmd, struct param_val v, struct smtp_err *err)
{
	cmd->mail.has_envid = true;
	return param_xtext(v, SMTP_ENVID_MAX, "ENVID", cmd->mail.envid,
	    sizeof(cmd->mail.envid), err);
}

static int
param_auth(struct smtp_cmd *cmd, struct param_val v, struct smtp_err *err)
{
	cmd->mail.has_auth = true;
	return param_xtext(v, SMTP_AUTH_PARAM_MAX, "AUTH", cmd->mail.auth,
	    sizeof(cmd->mail.auth), err);
}

static unsigned
param_notify_item(const char *s, size_t n)
{
	if (str_case_eq(s, n, "NEVER"))
		return SMTP_NOTIFY_NEVER;
	if (str_case_eq(s, n, "SUCCESS"))
		return SMTP_NOTIFY_SUCCESS;
	if (str_case_eq(s, n, "FAILURE"))
		return SMTP_NOTIFY_FAILURE;
	if (str_case_eq(s, n, "DELAY"))
		return SMTP_NOTIFY_DELAY;
	return 0;
}

/* RFC 3461 4.1: "NEVER" alone, or a list of SUCCESS, FAILURE, DELAY. */
static int
param_notify(struct smtp_cmd *cmd, struct param_val v, struct smtp_err *err)
{
	size_t i = 0, j;
	unsigned bits = 0, b;

	while (i <= v.n) {
		for (j = i; j < v.n && v.s[j] != ','; j++)
			;
		if (j == i)
			return param_bad(
			    err, "NOTIFY", "empty item in the list");
		if ((b = param_notify_item(v.s + i, j - i)) == 0)
			return param_bad(err, "NOTIFY",
			    "items are NEVER, SUCCESS, FAILURE, DELAY");
		if (bits & b)
			return param_bad(err, "NOTIFY", "item repeated");
		bits |= b;
		i = j + 1;
	}
	if ((bits & SMTP_NOTIFY_NEVER) && bits != SMTP_NOTIFY_NEVER)
		return param_bad(err, "NOTIFY", "NEVER must be alone");
	cmd->rcpt.notify = bits;
	return 0;
}

/* RFC 5322 atext, the characters of an RFC 3461 addr-type atom. */
static bool
param_atext(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* RFC 3461 4.2: ORCPT=addr-type;xtext, at most 500 characters in all. */
static int
param_orcpt(struct smtp_cmd *cmd, struct param_val v, struct smtp_err *err)
{
	struct smtp_rcpt_params *rp = &cmd->rcpt;
	const char *semi = memchr(v.s, ';', v.n);
	size_t tn = semi ? (size_t)(semi - v.s) : 0, i;

	if (v.n > SMTP_ORCPT_MAX)
		return smtp_cmd_fail(err, 501, "5.5.4",
		    "Bad ORCPT value: longer than %d characters",
		    SMTP_ORCPT_MAX);
	if (semi == NULL || tn == 0)
		return param_bad(err, "ORCPT", "expected addr-type;address");
	if (tn > PARAM_ORCPT_TYPE_MAX)
		return param_bad(
		    err, "ORCPT", "addr-type longer than 31 characters");
	for (i = 0; i < tn; i++) {
		if (!param_atext(v.s[i]))
			return param_bad(
			    err, "ORCPT", "addr-type is not an atom");
		rp->orcpt_type[i] = (v.s[i] >= 'A' && v.s[i] <= 'Z')
					? (char)(v.s[i] - 'A' + 'a')
					: v.s[i];
	}
	rp->orcpt_type[tn] = '\0';
	if (tn + 1 == v.n)
		return param_bad(err, "ORCPT", "empty address");
	rp->has_orcpt = true;
	return param_xtext((struct param_val){semi + 1, v.n - tn - 1},
	    SMTP_ORCPT_MAX, "ORCPT", rp->orcpt, sizeof(rp->orcpt), err);
}

static const struct param_def param_defs[] = {
    {"SIZE", true, true, 0, param_size},
    {"BODY", true, true, 0, param_body},
    {"SMTPUTF8", true, false, SMTP_CMD_F_UTF8_OK, param_smtputf8},
    {"RET", true, true, 0, param_ret},
    {"ENVID", true, true, 0, param_envid},
    {"AUTH", true, true, 0, param_auth},
    {"NOTIFY", false, true, 0, param_notify},
    {"ORCPT", false, true, 0, param_orcpt},
    {"REQUIRETLS", true, false, 0, param_requiretls},
};

/* ---- the parameter list ------------------------------------------------- */

/* RFC 5321 4.1.2: esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
static bool
param_keyword_ok(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		char c = s[i];
		bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			     (c >= '0' && c <= '9');

		if (!alnum && (i == 0 || c != '-'))
			return false;
	}
	return n > 0;
}

/* esmtp-value = 1*(%d33-60 / %d62-126): no "=", SP, controls, 8-bit. */
static bool
param_value_ok(struct param_val v)
{
	size_t i;

	for (i = 0; i < v.n; i++) {
		unsigned char c = (unsigned char)v.s[i];

		if (c < 33 || c > 126 || c == '=')
			return false;
	}
	return v.n > 0;
}

static const struct param_def *
param_lookup(const char *kw, size_t n, bool mail, size_t *index_out)
{
	size_t i;

	for (i = 0; i < sizeof(param_defs) / sizeof(param_defs[0]); i++) {
		if (param_defs[i].mail == mail &&
		    str_case_eq(kw, n, param_defs[i].name)) {
			*index_out = i;
			return &param_defs[i];
		}
	}
	return NULL;
}

/* Checks that need only the keyword and flags: known, offered, once. */
static const struct param_def *
param_find(const char *kw, size_t kn, unsigned flags, bool mail, unsigned *seen,
    struct smtp_err *err)
{
	const struct param_def *pd;
	char e[PARAM_ECHO];
	size_t idx = 0;

	smtp_cmd_echo(e, sizeof(e), kw, kn);
	if (!param_keyword_ok(kw, kn)) {
		smtp_cmd_fail(
		    err, 501, "5.5.4", "Malformed parameter keyword \"%s\"", e);
		return NULL;
	}
	if (!(flags & SMTP_CMD_F_ESMTP)) {
		smtp_cmd_fail(err, 555, "5.5.4",
		    "Parameter %s not allowed: ESMTP parameters need EHLO", e);
		return NULL;
	}
	pd = param_lookup(kw, kn, mail, &idx);
	if (pd == NULL || (flags & pd->need_flag) != pd->need_flag) {
		smtp_cmd_fail(err, 555, "5.5.4", "Unsupported parameter %s", e);
		return NULL;
	}
	if (*seen & (1u << idx)) {
		smtp_cmd_fail(
		    err, 555, "5.5.4", "Duplicate parameter %s", pd->name);
		return NULL;
	}
	*seen |= 1u << idx;
	return pd;
}

static int
param_one(const char *s, size_t n, unsigned flags, bool mail, unsigned *seen,
    struct smtp_cmd *cmd, struct smtp_err *err)
{
	const char *eq = memchr(s, '=', n);
	size_t kn = eq ? (size_t)(eq - s) : n;
	struct param_val v = {eq ? eq + 1 : s + n, eq ? n - kn - 1 : 0};
	const struct param_def *pd;

	if ((pd = param_find(s, kn, flags, mail, seen, err)) == NULL)
		return -1;
	if (!pd->has_value && eq != NULL)
		return smtp_cmd_fail(
		    err, 501, "5.5.4", "%s takes no value", pd->name);
	if (pd->has_value && eq == NULL)
		return smtp_cmd_fail(err, 501, "5.5.4",
		    "%s needs a value (%s=...)", pd->name, pd->name);
	if (pd->has_value && !param_value_ok(v))
		return param_bad(err, pd->name,
		    v.n == 0 ? "empty" : "only printable ASCII, no \"=\"");
	return pd->apply(cmd, v, err);
}

/*
 * Parse the parameters in s[0..len), the text after the path, into
 * cmd->mail (mail) or cmd->rcpt.  *count_out gets how many there were.
 */
int
smtp_param_parse(const char *s, size_t len, unsigned flags, bool mail,
    struct smtp_cmd *cmd, struct smtp_err *err, unsigned *count_out)
{
	unsigned seen = 0;
	size_t i = 0, j;

	*count_out = 0;
	if (len > 0 && s[0] != ' ')
		return smtp_cmd_fail(err, 501, "5.5.4",
		    "Syntax: a space must separate the address from "
		    "parameters");
	for (;;) {
		while (i < len && s[i] == ' ')
			i++;
		if (i == len)
			return 0;
		for (j = i; j < len && s[j] != ' '; j++)
			;
		if (param_one(s + i, j - i, flags, mail, &seen, cmd, err) == -1)
			return -1;
		(*count_out)++;
		i = j;
	}
}
