/*
 * inbound: the From domain, dmarc.override and the pieces left once our
 * own A-R fields are cut out (inbound.h).  Every result is a value in the
 * caller's memory; nothing here allocates.
 */
#include <string.h>
#include <strings.h>

#include "addr/addr.h"
#include "mailauth/inbound.h"

const char *
inbound_from_name(enum inbound_from r)
{
	switch (r) {
	case INBOUND_FROM_OK:
		return "ok";
	case INBOUND_FROM_NONE:
		return "no_from";
	case INBOUND_FROM_MULTIPLE:
		return "multiple_from";
	case INBOUND_FROM_BAD:
	default:
		return "bad_from";
	}
}

enum inbound_from
inbound_from_domain(const char *msg, size_t len, char *out, size_t outlen)
{
	struct addr_hdr_scan s;
	struct addr_hdr_field f, from = {0};
	struct addr_list l;
	struct addr a;
	unsigned seen = 0;

	addr_hdr_scan_init(&s, msg, len);
	while (addr_hdr_next(&s, &f))
		if (addr_hdr_name_is(&f, "From") && seen++ == 0)
			from = f;
	if (seen == 0)
		return INBOUND_FROM_NONE;
	if (seen > 1)
		return INBOUND_FROM_MULTIPLE;
	addr_list_init(&l, from.value, from.value_len, ADDR_F_UTF8);
	if (addr_list_next(&l, &a) != ADDR_LIST_OK)
		return INBOUND_FROM_BAD;
	switch (addr_list_next(&l, &(struct addr){0})) {
	case ADDR_LIST_END:
		break;
	case ADDR_LIST_OK:
		return INBOUND_FROM_MULTIPLE;
	default:
		return INBOUND_FROM_BAD;
	}
	if (a.kind != ADDR_DOMAIN_NAME ||
	    str_copy(out, outlen, a.domain, strlen(a.domain)) != 0)
		return INBOUND_FROM_BAD;
	for (char *p = out; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return INBOUND_FROM_OK;
}

static bool
ov_sep(char ch)
{
	return ch == ',' || ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static int
ov_policy(const char *p, size_t n, enum dmarc_policy *out)
{
	static const struct {
		const char *name;
		enum dmarc_policy p;
	} names[] = {
	    {"none", DMARC_P_NONE},
	    {"quarantine", DMARC_P_QUARANTINE},
	    {"reject", DMARC_P_REJECT},
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i].name) == n &&
		    strncasecmp(names[i].name, p, n) == 0) {
			*out = names[i].p;
			return 0;
		}
	return -1;
}

/* One "domain:policy" entry at e[0..n), NUL-terminating the domain. */
static int
ov_entry(char *e, size_t n, struct dmarc_override *o, char *err, size_t errlen)
{
	char *colon = memchr(e, ':', n);
	size_t dlen;

	if (colon == NULL) {
		str_fmt_cut(err, errlen,
		    "dmarc.override: \"%.*s\" is not domain:policy", (int)n, e);
		return -1;
	}
	o->subdomains = n > 2 && e[0] == '*' && e[1] == '.';
	o->domain = o->subdomains ? e + 2 : e;
	dlen = (size_t)(colon - o->domain);
	if (ov_policy(
		colon + 1, n - (size_t)(colon + 1 - e), &o->disposition) != 0) {
		str_fmt_cut(err, errlen,
		    "dmarc.override: policy of \"%.*s\" is not none, "
		    "quarantine or reject",
		    (int)n, e);
		return -1;
	}
	if (dlen == 0 || dlen > PSL_NAME_MAX ||
	    memchr(o->domain, '*', dlen) != NULL) {
		str_fmt_cut(err, errlen,
		    "dmarc.override: \"%.*s\" does not name a domain", (int)n,
		    e);
		return -1;
	}
	*colon = '\0';
	return 0;
}

int
inbound_overrides_parse(char *text, struct dmarc_override *out, size_t max,
    size_t *n_out, char *err, size_t errlen)
{
	size_t n = 0, i = 0, len = text != NULL ? strlen(text) : 0;

	*n_out = 0;
	while (i < len) {
		size_t start;

		while (i < len && ov_sep(text[i]))
			i++;
		if (i == len)
			break;
		start = i;
		while (i < len && !ov_sep(text[i]))
			i++;
		if (n == max) {
			str_fmt_cut(err, errlen,
			    "dmarc.override: more than %zu entries", max);
			return -1;
		}
		if (ov_entry(text + start, i - start, &out[n], err, errlen) !=
		    0)
			return -1;
		if (i < len)
			text[i++] = '\0'; /* ends the policy word */
		n++;
	}
	*n_out = n;
	return 0;
}

size_t
inbound_pieces(size_t len, const struct authres_span *spans, size_t n,
    struct inbound_piece *out, size_t max)
{
	size_t k = 0, at = 0;

	if (max < n + 1)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (spans[i].off > at)
			out[k++] =
			    (struct inbound_piece){at, spans[i].off - at};
		at = spans[i].off + spans[i].len;
	}
	if (at < len)
		out[k++] = (struct inbound_piece){at, len - at};
	return k;
}
