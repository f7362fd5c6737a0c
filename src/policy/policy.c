/*
 * policy.c: the Postfix policy protocol's request encoder, reply parser
 * and action parser (policy.h, docs/policy.md).
 *
 * Invariants: nothing is read past n; a view returned points into the
 * caller's bytes; a request never carries CR, LF or NUL inside a value,
 * so a value cannot end the request early or smuggle an attribute.
 */
#include <string.h>
#include <strings.h>

#include "policy/policy.h"

static bool
pol_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > POLICY_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
			ch == '_'))
			return false;
	}
	return true;
}

int
policy_attr_add(struct buf *b, const char *name, const char *value)
{
	size_t vl;

	if (value == NULL)
		value = "";
	vl = strlen(value);
	if (!pol_name_ok(name, strlen(name)) || vl > POLICY_VALUE_MAX ||
	    strpbrk(value, "\r\n") != NULL)
		return -1;
	if (buf_append_str(b, name) != 0 || buf_append(b, "=", 1) != 0 ||
	    buf_append(b, value, vl) != 0 || buf_append(b, "\n", 1) != 0)
		return -1;
	return 0;
}

static int
pol_attr_num(struct buf *b, const char *name, uint64_t v)
{
	char num[24];

	str_fmt_cut(num, sizeof(num), "%llu", (unsigned long long)v);
	return policy_attr_add(b, name, num);
}

int
policy_request_encode(const struct policy_request *r, struct buf *b)
{
	/* Postfix's order (SMTPD_POLICY_README); the client certificate,
	 * ETRN and stress attributes are sent empty: tern asks for no
	 * client certificate and has no ETRN or stress mode */
	const struct {
		const char *name, *value;
	} head[] =
	    {
		{"request", "smtpd_access_policy"},
		{"protocol_state", r->protocol_state},
		{"protocol_name", r->protocol_name},
		{"helo_name", r->helo_name},
		{"queue_id", r->queue_id},
		{"sender", r->sender},
		{"recipient", r->recipient},
	    },
	  mid[] =
	      {
		  {"client_address", r->client_address},
		  {"client_name", r->client_name},
		  {"reverse_client_name", r->reverse_client_name},
		  {"instance", r->instance},
		  {"sasl_method", r->sasl_method},
		  {"sasl_username", r->sasl_username},
		  {"sasl_sender", r->sasl_sender},
	      },
	  tls[] =
	      {
		  {"ccert_subject", NULL},
		  {"ccert_issuer", NULL},
		  {"ccert_fingerprint", NULL},
		  {"encryption_protocol", r->encryption_protocol},
		  {"encryption_cipher", r->encryption_cipher},
	      },
	  tail[] = {
	      {"etrn_domain", NULL},
	      {"stress", NULL},
	      {"ccert_pubkey_fingerprint", NULL},
	  };
	size_t i;

	for (i = 0; i < sizeof(head) / sizeof(head[0]); i++)
		if (policy_attr_add(b, head[i].name, head[i].value) != 0)
			return -1;
	if (pol_attr_num(b, "recipient_count", r->recipient_count) != 0)
		return -1;
	for (i = 0; i < sizeof(mid) / sizeof(mid[0]); i++)
		if (policy_attr_add(b, mid[i].name, mid[i].value) != 0)
			return -1;
	if (pol_attr_num(b, "size", r->size) != 0)
		return -1;
	for (i = 0; i < sizeof(tls) / sizeof(tls[0]); i++)
		if (policy_attr_add(b, tls[i].name, tls[i].value) != 0)
			return -1;
	if (pol_attr_num(b, "encryption_keysize", r->encryption_keysize) != 0)
		return -1;
	for (i = 0; i < sizeof(tail) / sizeof(tail[0]); i++)
		if (policy_attr_add(b, tail[i].name, tail[i].value) != 0)
			return -1;
	if (pol_attr_num(b, "client_port", r->client_port) != 0 ||
	    policy_attr_add(b, "policy_context", r->policy_context) != 0 ||
	    policy_attr_add(b, "server_address", r->server_address) != 0 ||
	    pol_attr_num(b, "server_port", r->server_port) != 0)
		return -1;
	return buf_append(b, "\n", 1);
}

/* A reply line's octets: printable, tab, or 8-bit (a UTF-8 text); the
 * caller makes them printable before they reach a client. */
static bool
pol_octet_ok(unsigned char ch)
{
	return ch == '\t' || (ch >= 0x20 && ch != 0x7f);
}

int
policy_reply_parse(
    const char *p, size_t n, struct policy_str *action, size_t *used)
{
	size_t off = 0, lim = n < POLICY_REPLY_MAX ? n : POLICY_REPLY_MAX;
	bool have = false;

	action->p = NULL;
	action->len = 0;
	for (;;) {
		const char *nl = memchr(p + off, '\n', lim - off);
		size_t len, eq;

		if (nl == NULL)
			return n >= POLICY_REPLY_MAX ? -1 : 0;
		len = (size_t)(nl - (p + off));
		if (len > 0 && p[off + len - 1] == '\r')
			len--; /* CRLF taken as LF */
		if (len == 0) {
			if (!have)
				return -1; /* empty first, or no action */
			*used = (size_t)(nl - p) + 1;
			return 1;
		}
		for (size_t i = 0; i < len; i++)
			if (!pol_octet_ok((unsigned char)p[off + i]))
				return -1;
		eq = 0;
		while (eq < len && p[off + eq] != '=')
			eq++;
		if (eq == len || !pol_name_ok(p + off, eq))
			return -1;
		if (eq == 6 && memcmp(p + off, "action", 6) == 0) {
			if (have)
				return -1; /* two actions: which one? */
			have = true;
			action->p = p + off + 7;
			action->len = len - 7;
		}
		off = (size_t)(nl - p) + 1;
	}
}

static const struct {
	const char *word;
	enum policy_kind kind;
} pol_words[] = {
    {"OK", POLICY_OK},
    {"DUNNO", POLICY_DUNNO},
    {"REJECT", POLICY_REJECT},
    {"DEFER", POLICY_DEFER},
    {"DEFER_IF_PERMIT", POLICY_DEFER_IF_PERMIT},
    {"DEFER_IF_REJECT", POLICY_DEFER_IF_REJECT},
    {"DISCARD", POLICY_DISCARD},
    {"HOLD", POLICY_HOLD},
    {"PREPEND", POLICY_PREPEND},
    {"WARN", POLICY_WARN},
    {"INFO", POLICY_INFO},
    {"REDIRECT", POLICY_REDIRECT},
    {"FILTER", POLICY_FILTER},
};

const char *
policy_kind_name(enum policy_kind k)
{
	static const char *const names[] = {"ok", "dunno", "reject", "defer",
	    "defer_if_permit", "defer_if_reject", "code", "discard", "hold",
	    "prepend", "warn", "info", "redirect", "filter", "unknown"};

	return (unsigned)k < sizeof(names) / sizeof(names[0]) ? names[k]
							      : "unknown";
}

static bool
pol_blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

static bool
pol_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

/* An enhanced code "C.S.D" (S, D of 1 to 3 digits) at the front of
 * *p..end, followed by a blank or the end: copied to enh, *p moved past
 * it and its blanks; 0 when there is none, -1 when its class is not
 * cls. */
static int
pol_enh(const char **p, const char *end, char cls, char *enh, size_t enhlen)
{
	const char *q = *p;
	size_t k;

	if (end - q < 5 || !pol_digit(q[0]) || q[1] != '.')
		return 0;
	q += 2;
	for (int part = 0; part < 2; part++) {
		k = 0;
		while (q < end && pol_digit(*q) && k < 4) {
			q++;
			k++;
		}
		if (k == 0 || k > 3)
			return 0;
		if (part == 0) {
			if (q == end || *q != '.')
				return 0;
			q++;
		}
	}
	if (q < end && !pol_blank(*q))
		return 0;
	if ((*p)[0] != cls)
		return -1;
	k = (size_t)(q - *p);
	if (k >= enhlen)
		return -1;
	memcpy(enh, *p, k);
	enh[k] = '\0';
	while (q < end && pol_blank(*q))
		q++;
	*p = q;
	return 0;
}

/* "Name: value", one line, as RFC 5322 2.2 wants it */
static int
pol_prepend(struct policy_action *a)
{
	const char *p = a->text.p;
	size_t n = a->text.len, k = 0;

	if (n == 0 || n > POLICY_HEADER_MAX)
		return -1;
	while (k < n && p[k] != ':') {
		if ((unsigned char)p[k] <= 0x20 || (unsigned char)p[k] >= 0x7f)
			return -1;
		k++;
	}
	if (k == 0 || k == n)
		return -1;
	a->name.p = p;
	a->name.len = k;
	return 0;
}

int
policy_action_parse(const char *p, size_t n, struct policy_action *a)
{
	const char *end = p + n, *q;
	size_t wl;
	char cls;

	memset(a, 0, sizeof(*a));
	a->kind = POLICY_UNKNOWN;
	for (size_t i = 0; i < n; i++)
		if (!pol_octet_ok((unsigned char)p[i]))
			return -1;
	while (p < end && pol_blank(*p))
		p++;
	while (end > p && pol_blank(end[-1]))
		end--;
	a->text.p = p;
	a->text.len = (size_t)(end - p);
	for (wl = 0; p + wl < end && !pol_blank(p[wl]);)
		wl++;
	q = p + wl;
	while (q < end && pol_blank(*q))
		q++;
	if (wl == 3 && pol_digit(p[0]) && pol_digit(p[1]) && pol_digit(p[2])) {
		if ((p[0] != '4' && p[0] != '5') || p[1] > '5')
			return -1;
		a->kind = POLICY_CODE;
		a->code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
	} else {
		for (size_t i = 0; i < sizeof(pol_words) / sizeof(pol_words[0]);
		     i++)
			if (strlen(pol_words[i].word) == wl &&
			    strncasecmp(p, pol_words[i].word, wl) == 0)
				a->kind = pol_words[i].kind;
		if (a->kind == POLICY_UNKNOWN)
			return 0; /* text: the whole action */
	}
	a->text.p = q;
	a->text.len = (size_t)(end - q);
	switch (a->kind) {
	case POLICY_REJECT:
		a->code = 550;
		break;
	case POLICY_DEFER:
	case POLICY_DEFER_IF_PERMIT:
	case POLICY_DEFER_IF_REJECT:
		a->code = 450;
		break;
	case POLICY_CODE:
		break;
	case POLICY_PREPEND:
		return pol_prepend(a);
	default:
		return 0;
	}
	cls = (char)('0' + a->code / 100);
	if (pol_enh(&q, end, cls, a->enh, sizeof(a->enh)) != 0)
		return -1;
	if (a->enh[0] == '\0')
		str_fmt_cut(a->enh, sizeof(a->enh), "%c.7.1", cls);
	a->text.p = q;
	a->text.len = (size_t)(end - q);
	return 0;
}
