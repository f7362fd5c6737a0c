/*
 * dmarc: the record parser, policy discovery and evaluation of RFC 7489.
 *
 * The parser reads the record as 6.3 describes it: semicolon-separated
 * tag=value pairs, "v=DMARC1" first, then any order.  It is lenient where
 * 6.3 asks for it (unknown tags and bad values of known tags are ignored,
 * bad URIs dropped) and strict where the RFC is: a record that does not
 * start with v=DMARC1 is not a DMARC record.  A duplicate tag keeps its
 * first value (the RFC does not say; the first is what the Domain Owner
 * wrote first) and counts as a bad value.
 *
 * Invariants: every read is bounded by the caller's length (no NUL is
 * assumed); URI views point into the text parsed; nothing allocates; each
 * byte of a record is visited a fixed number of times.
 */
#include "mailauth/dmarc.h"

#include <string.h>

#include "mailauth/authres.h"
#include "util/util.h"

/* ---- small text helpers ------------------------------------------------- */

static bool
dm_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void
dm_trim(const char **s, size_t *n)
{
	while (*n > 0 && dm_wsp((*s)[0]))
		(*s)++, (*n)--;
	while (*n > 0 && dm_wsp((*s)[*n - 1]))
		(*n)--;
}

static char
dm_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* a[0..alen) equals b[0..blen) ignoring ASCII case */
static bool
dm_case_eq(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t i;

	if (alen != blen)
		return false;
	for (i = 0; i < alen; i++)
		if (dm_lower(a[i]) != dm_lower(b[i]))
			return false;
	return true;
}

static bool
dm_is(const char *s, size_t n, const char *word)
{
	return dm_case_eq(s, n, word, strlen(word));
}

/* Domain names compared as DNS does: ASCII case and a root dot ignored. */
static bool
dm_name_eq(const char *a, size_t alen, const char *b, size_t blen)
{
	if (alen > 0 && a[alen - 1] == '.')
		alen--;
	if (blen > 0 && b[blen - 1] == '.')
		blen--;
	return alen > 0 && dm_case_eq(a, alen, b, blen);
}

/*
 * The next sep-separated item of s[0..n) from *pos, blanks trimmed; false
 * once the list is used up.  An empty list has one empty item.
 */
static bool
dm_next_item(const char *s, size_t n, char sep, size_t *pos, const char **it,
    size_t *len)
{
	const char *c;

	if (*pos > n)
		return false;
	c = memchr(s + *pos, sep, n - *pos);
	*it = s + *pos;
	*len = c ? (size_t)(c - *it) : n - *pos;
	*pos += *len + 1;
	dm_trim(it, len);
	return true;
}

/* ---- the record ---------------------------------------------------------- */

/* Split the next "name=value" off text at *pos; false at the end. */
struct dm_tag {
	const char *name, *val;
	size_t nlen, vlen;
	bool has_eq;
};

static bool
dm_next_tag(const char *text, size_t len, size_t *pos, struct dm_tag *t)
{
	const char *s, *semi, *eq;
	size_t n;

	if (*pos >= len)
		return false;
	s = text + *pos;
	semi = memchr(s, ';', len - *pos);
	n = semi ? (size_t)(semi - s) : len - *pos;
	*pos += n + 1;
	eq = memchr(s, '=', n);
	t->has_eq = eq != NULL;
	t->name = s;
	t->nlen = eq ? (size_t)(eq - s) : n;
	t->val = eq ? eq + 1 : s + n;
	t->vlen = eq ? n - t->nlen - 1 : 0;
	dm_trim(&t->name, &t->nlen);
	dm_trim(&t->val, &t->vlen);
	return true;
}

/* v=DMARC1 as the first tag (6.4: dmarc-version, "DMARC1" is %x). */
static bool
dm_is_dmarc(const char *text, size_t len)
{
	struct dm_tag t;
	size_t pos = 0;

	if (!dm_next_tag(text, len, &pos, &t) || !t.has_eq)
		return false;
	return dm_is(t.name, t.nlen, "v") && t.vlen == 6 &&
	       memcmp(t.val, "DMARC1", 6) == 0;
}

static enum dmarc_policy
dm_policy(const char *s, size_t n)
{
	if (dm_is(s, n, "none"))
		return DMARC_P_NONE;
	if (dm_is(s, n, "quarantine"))
		return DMARC_P_QUARANTINE;
	if (dm_is(s, n, "reject"))
		return DMARC_P_REJECT;
	return DMARC_P_INVALID;
}

static bool
dm_digits(const char *s, size_t n, size_t maxlen, uint64_t *v)
{
	size_t i;

	if (n == 0 || n > maxlen)
		return false;
	for (i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return str_to_u64(s, n, v) == 0;
}

/* fo=0:1:d:s, colon-separated (6.3); 0 when any item is bad. */
static unsigned
dm_fo(const char *s, size_t n)
{
	unsigned fo = 0;
	size_t pos = 0, k;
	const char *it;

	while (dm_next_item(s, n, ':', &pos, &it, &k)) {
		if (dm_is(it, k, "0"))
			fo |= DMARC_FO_0;
		else if (dm_is(it, k, "1"))
			fo |= DMARC_FO_1;
		else if (dm_is(it, k, "d"))
			fo |= DMARC_FO_D;
		else if (dm_is(it, k, "s"))
			fo |= DMARC_FO_S;
		else
			return 0;
	}
	return fo;
}

/* "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] (6.2): powers of two. */
static bool
dm_size(const char *s, size_t n, uint64_t *out)
{
	unsigned shift = 0;
	uint64_t v;

	if (n > 0) {
		switch (dm_lower(s[n - 1])) {
		case 'k':
			shift = 10;
			break;
		case 'm':
			shift = 20;
			break;
		case 'g':
			shift = 30;
			break;
		case 't':
			shift = 40;
			break;
		}
		if (shift != 0)
			n--;
	}
	if (!dm_digits(s, n, 20, &v) || v == 0 || v > (UINT64_MAX >> shift))
		return false;
	*out = v << shift;
	return true;
}

/*
 * One URI of a list: scheme ":" something, no blank or control inside,
 * then an optional size.  For mailto: the host is the domain after the last
 * '@' of the address (before any "?hfields").
 */
static bool
dm_uri(const char *s, size_t n, struct dmarc_uri *u)
{
	const char *bang = memchr(s, '!', n), *colon, *q, *at = NULL;
	size_t i, ulen = bang ? (size_t)(bang - s) : n, alen;

	memset(u, 0, sizeof(*u));
	if (bang && !dm_size(bang + 1, n - ulen - 1, &u->max_size))
		return false;
	colon = memchr(s, ':', ulen);
	if (ulen == 0 || colon == NULL || colon == s || colon + 1 == s + ulen)
		return false;
	for (i = 0; i < ulen; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 0x20 || c == 0x7f)
			return false;
		if (s + i < colon &&
		    !((c | 0x20) >= 'a' && (c | 0x20) <= 'z') &&
		    (i == 0 || !((c >= '0' && c <= '9') || c == '+' ||
				   c == '-' || c == '.')))
			return false;
	}
	u->uri = s;
	u->uri_len = ulen;
	if (!dm_is(s, (size_t)(colon - s), "mailto"))
		return true;
	u->mailto = true;
	q = memchr(colon + 1, '?', (size_t)(s + ulen - colon - 1));
	alen = (size_t)((q ? q : s + ulen) - (colon + 1));
	for (i = 0; i < alen; i++)
		if (colon[1 + i] == '@')
			at = colon + 1 + i;
	if (at == NULL || at == colon + 1 || at + 1 == colon + 1 + alen)
		return false;
	u->host = at + 1;
	u->host_len = (size_t)(colon + 1 + alen - u->host);
	return true;
}

static void
dm_uri_list(const char *s, size_t n, struct dmarc_uri *list, size_t *count,
    unsigned *dropped)
{
	size_t pos = 0, k;
	const char *it;

	while (dm_next_item(s, n, ',', &pos, &it, &k)) {
		if (*count < DMARC_URI_MAX && dm_uri(it, k, &list[*count]))
			(*count)++;
		else
			(*dropped)++;
	}
}

enum {
	TAG_P = 1 << 0,
	TAG_SP = 1 << 1,
	TAG_NP = 1 << 2,
	TAG_ADKIM = 1 << 3,
	TAG_ASPF = 1 << 4,
	TAG_PCT = 1 << 5,
	TAG_RI = 1 << 6,
	TAG_FO = 1 << 7,
	TAG_RUA = 1 << 8,
	TAG_RUF = 1 << 9,
	TAG_RF = 1 << 10,
	TAG_V = 1 << 11,
};

static const struct {
	const char *name;
	unsigned bit;
} dm_tags[] = {
    {"p", TAG_P},
    {"sp", TAG_SP},
    {"np", TAG_NP},
    {"adkim", TAG_ADKIM},
    {"aspf", TAG_ASPF},
    {"pct", TAG_PCT},
    {"ri", TAG_RI},
    {"fo", TAG_FO},
    {"rua", TAG_RUA},
    {"ruf", TAG_RUF},
    {"rf", TAG_RF},
    {"v", TAG_V},
};

static bool
dm_align(const char *s, size_t n, enum dmarc_align *out)
{
	if (dm_is(s, n, "r"))
		*out = DMARC_ALIGN_RELAXED;
	else if (dm_is(s, n, "s"))
		*out = DMARC_ALIGN_STRICT;
	else
		return false;
	return true;
}

/* Apply one known tag; false when its value is bad (and so ignored). */
static bool
dm_apply(struct dmarc_record *r, unsigned bit, const char *v, size_t n)
{
	uint64_t x;

	switch (bit) {
	case TAG_P:
		return (r->p = dm_policy(v, n)) != DMARC_P_INVALID;
	case TAG_SP:
		return (r->sp = dm_policy(v, n)) != DMARC_P_INVALID;
	case TAG_NP:
		return (r->np = dm_policy(v, n)) != DMARC_P_INVALID;
	case TAG_ADKIM:
		return dm_align(v, n, &r->adkim);
	case TAG_ASPF:
		return dm_align(v, n, &r->aspf);
	case TAG_PCT:
		if (!dm_digits(v, n, 3, &x) || x > 100)
			return false;
		r->pct = (unsigned)x;
		return true;
	case TAG_RI:
		if (!dm_digits(v, n, 10, &x) || x > UINT32_MAX)
			return false;
		r->ri = (uint32_t)x;
		return true;
	case TAG_FO:
		x = dm_fo(v, n);
		if (x != 0)
			r->fo = (unsigned)x;
		return x != 0;
	case TAG_RUA:
		dm_uri_list(v, n, r->rua, &r->nrua, &r->dropped_uris);
		return true;
	case TAG_RUF:
		dm_uri_list(v, n, r->ruf, &r->nruf, &r->dropped_uris);
		return true;
	case TAG_RF:
		return dm_is(v, n, "afrf");
	}
	return false; /* a second v= */
}

enum dmarc_parse
dmarc_record_parse(const char *text, size_t len, struct dmarc_record *r)
{
	struct dm_tag t;
	size_t pos = 0, i;
	unsigned seen = TAG_V;

	memset(r, 0, sizeof(*r));
	r->pct = 100;
	r->ri = 86400;
	r->fo = DMARC_FO_0;
	if (!dm_is_dmarc(text, len))
		return DMARC_PARSE_NOT_DMARC;
	(void)dm_next_tag(text, len, &pos, &t);
	while (dm_next_tag(text, len, &pos, &t)) {
		if (!t.has_eq) {
			if (t.nlen > 0)
				r->unknown_tags++;
			continue;
		}
		for (i = 0; i < sizeof(dm_tags) / sizeof(dm_tags[0]); i++)
			if (dm_is(t.name, t.nlen, dm_tags[i].name))
				break;
		if (i == sizeof(dm_tags) / sizeof(dm_tags[0])) {
			r->unknown_tags++;
			continue;
		}
		if ((seen & dm_tags[i].bit) ||
		    !dm_apply(r, dm_tags[i].bit, t.val, t.vlen))
			r->bad_values++;
		seen |= dm_tags[i].bit;
	}
	if (r->np == DMARC_P_INVALID)
		r->np = DMARC_P_UNSET; /* RFC 9091 3.1: then sp, then p */
	return DMARC_PARSE_OK;
}

/* ---- discovery ---------------------------------------------------------- */

static int
dm_qname(struct dmarc_lookup *lk, const char *domain)
{
	return str_fmt(lk->qname, sizeof(lk->qname), "_dmarc.%s", domain) ==
			   0 &&
		       strlen(lk->qname) <= DMARC_QNAME_MAX
		   ? 0
		   : -1;
}

static enum dmarc_step
dm_done(struct dmarc_lookup *lk, enum dmarc_result r, enum dmarc_why why)
{
	lk->stage = 2;
	lk->result = r;
	lk->why = why;
	lk->qname[0] = '\0';
	return DMARC_STEP_DONE;
}

/* Move to the organisational domain (6.6.3 step 3), if it is another. */
static enum dmarc_step
dm_to_org(struct dmarc_lookup *lk)
{
	if (lk->stage == 0 && strcmp(lk->from, lk->org) != 0 &&
	    dm_qname(lk, lk->org) == 0) {
		lk->stage = 1;
		return DMARC_STEP_QUERY;
	}
	return dm_done(lk, DMARC_RESULT_NONE, DMARC_WHY_NO_RECORD);
}

enum dmarc_step
dmarc_lookup_init(struct dmarc_lookup *lk, const struct psl *psl,
    const char *from, size_t len)
{
	memset(lk, 0, sizeof(*lk));
	if (psl_org_domain(psl, from, len, 0, lk->org, sizeof(lk->org)) != 0)
		return dm_done(lk, DMARC_RESULT_PERMERROR, DMARC_WHY_BAD_FROM);
	if (len > 0 && from[len - 1] == '.')
		len--;
	/* psl_org_domain() checked it is a name that fits */
	if (str_copy(lk->from, sizeof(lk->from), from, len) != 0)
		return dm_done(lk, DMARC_RESULT_PERMERROR, DMARC_WHY_BAD_FROM);
	str_lower(lk->from);
	if (dm_qname(lk, lk->from) != 0)
		return dm_to_org(lk);
	return DMARC_STEP_QUERY;
}

/* Step 6: a usable p (and sp), else p=none when rua has a valid URI. */
static enum dmarc_step
dm_take(struct dmarc_lookup *lk, const char *txt, size_t len)
{
	struct dmarc_record *r = &lk->rec;

	if (len > DMARC_RECORD_MAX)
		return dm_done(
		    lk, DMARC_RESULT_PERMERROR, DMARC_WHY_BAD_POLICY);
	memcpy(lk->text, txt, len);
	lk->text[len] = '\0';
	(void)dmarc_record_parse(lk->text, len, r);
	lk->at_org = lk->stage == 1;
	if (r->p == DMARC_P_UNSET || r->p == DMARC_P_INVALID ||
	    r->sp == DMARC_P_INVALID) {
		if (r->nrua == 0)
			return dm_done(
			    lk, DMARC_RESULT_PERMERROR, DMARC_WHY_BAD_POLICY);
		r->p = DMARC_P_NONE;
		r->sp = DMARC_P_UNSET;
		r->np = DMARC_P_UNSET;
		lk->p_defaulted = true;
	}
	(void)dm_done(lk, DMARC_RESULT_NONE, DMARC_WHY_NONE);
	return DMARC_STEP_DONE;
}

enum dmarc_step
dmarc_lookup_answer(struct dmarc_lookup *lk, const struct dmarc_txt *ans)
{
	size_t i, found = 0, which = 0;

	if (lk->stage > 1)
		return DMARC_STEP_DONE;
	if (ans->status == DMARC_DNS_TEMPFAIL)
		return dm_done(lk, DMARC_RESULT_TEMPERROR, DMARC_WHY_DNS);
	if (ans->status == DMARC_DNS_OK)
		for (i = 0; i < ans->n; i++)
			if (dm_is_dmarc(ans->txt[i], ans->len[i]))
				found++, which = i;
	if (found == 0)
		return dm_to_org(lk);
	if (found > 1)
		return dm_done(lk, DMARC_RESULT_NONE, DMARC_WHY_MULTIPLE);
	return dm_take(lk, ans->txt[which], ans->len[which]);
}

/* ---- evaluation ---------------------------------------------------------- */

bool
dmarc_aligned(const struct psl *psl, const char *a, size_t alen, const char *b,
    size_t blen, enum dmarc_align mode)
{
	char oa[PSL_NAME_MAX + 1], ob[PSL_NAME_MAX + 1];

	if (psl_org_domain(psl, a, alen, 0, oa, sizeof(oa)) != 0 ||
	    psl_org_domain(psl, b, blen, 0, ob, sizeof(ob)) != 0)
		return false;
	if (mode == DMARC_ALIGN_STRICT)
		return dm_name_eq(a, alen, b, blen);
	return strcmp(oa, ob) == 0;
}

static const struct dmarc_override *
dm_override(const struct dmarc_input *in, const char *from)
{
	const char *d = from;
	size_t i;

	for (;;) {
		for (i = 0; i < in->noverrides; i++) {
			const struct dmarc_override *o = &in->overrides[i];

			if ((d == from || o->subdomains) &&
			    dm_name_eq(
				d, strlen(d), o->domain, strlen(o->domain)))
				return o;
		}
		d = strchr(d, '.');
		if (d == NULL)
			return NULL;
		d++;
	}
}

static enum dmarc_policy
dm_sample(enum dmarc_policy p, unsigned pct, unsigned draw, bool *out)
{
	*out = false;
	/* % 100: a draw outside 0..99 must not sample out a pct=100 policy */
	if (p == DMARC_P_NONE || draw % 100 < pct)
		return p;
	*out = true;
	return p == DMARC_P_REJECT ? DMARC_P_QUARANTINE : DMARC_P_NONE;
}

static void
dm_choose(const struct dmarc_lookup *lk, const struct dmarc_input *in,
    struct dmarc_verdict *v)
{
	const struct dmarc_record *r = &lk->rec;

	v->policy = r->p;
	v->used = DMARC_USED_P;
	if (!lk->at_org)
		return;
	if (in->from_nxdomain && r->np != DMARC_P_UNSET) {
		v->policy = r->np;
		v->used = DMARC_USED_NP;
	} else if (r->sp != DMARC_P_UNSET) {
		v->policy = r->sp;
		v->used = DMARC_USED_SP;
	}
}

void
dmarc_evaluate(const struct dmarc_lookup *lk, const struct psl *psl,
    const struct dmarc_input *in, struct dmarc_verdict *v)
{
	const struct dmarc_override *o;
	size_t i, flen = strlen(lk->from);

	memset(v, 0, sizeof(*v));
	v->disposition = DMARC_P_NONE;
	v->policy_domain = lk->at_org ? lk->org : lk->from;
	v->result = lk->result;
	v->why = lk->why;
	if (lk->stage != 2 || lk->why != DMARC_WHY_NONE) {
		if (lk->stage != 2)
			v->result = DMARC_RESULT_TEMPERROR;
		return;
	}
	for (i = 0; i < in->ndkim && !v->dkim_aligned; i++)
		v->dkim_aligned =
		    in->dkim[i].pass &&
		    dmarc_aligned(psl, in->dkim[i].domain, in->dkim[i].len,
			lk->from, flen, lk->rec.adkim);
	v->spf_aligned = in->spf_pass && in->spf_domain != NULL &&
			 dmarc_aligned(psl, in->spf_domain, in->spf_len,
			     lk->from, flen, lk->rec.aspf);
	dm_choose(lk, in, v);
	if (v->dkim_aligned || v->spf_aligned) {
		v->result = DMARC_RESULT_PASS;
		return;
	}
	v->result = DMARC_RESULT_FAIL;
	v->disposition =
	    dm_sample(v->policy, lk->rec.pct, in->draw, &v->sampled_out);
	o = dm_override(in, lk->from);
	if (o != NULL && o->disposition >= DMARC_P_NONE &&
	    o->disposition <= DMARC_P_REJECT) {
		v->disposition = o->disposition;
		v->overridden = true;
	}
}

/* ---- external report destinations (7.1) --------------------------------- */

bool
dmarc_rua_external(const struct psl *psl, const char *policy_domain,
    const char *host, size_t host_len)
{
	return !dmarc_aligned(psl, policy_domain, strlen(policy_domain), host,
	    host_len, DMARC_ALIGN_RELAXED);
}

int
dmarc_rua_auth_name(const char *policy_domain, const char *host,
    size_t host_len, char *out, size_t outlen)
{
	size_t plen = strlen(policy_domain);

	if (host_len > 0 && host[host_len - 1] == '.')
		host_len--;
	if (plen > 0 && policy_domain[plen - 1] == '.')
		plen--;
	if (plen == 0 || host_len == 0 || host_len > PSL_NAME_MAX ||
	    plen + host_len + 16 > DMARC_QNAME_MAX)
		return -1;
	if (str_fmt(out, outlen, "%.*s._report._dmarc.%.*s", (int)plen,
		policy_domain, (int)host_len, host) != 0)
		return -1;
	str_lower(out);
	return 0;
}

enum dmarc_rua_auth
dmarc_rua_auth_judge(const struct dmarc_txt *ans, const char *host,
    size_t host_len, size_t *index_out)
{
	struct dmarc_record r;
	size_t i, k;

	if (ans->status == DMARC_DNS_TEMPFAIL)
		return DMARC_RUA_TEMPFAIL;
	if (ans->status != DMARC_DNS_OK)
		return DMARC_RUA_REFUSED;
	for (i = 0; i < ans->n; i++) {
		if (ans->len[i] > DMARC_RECORD_MAX ||
		    dmarc_record_parse(ans->txt[i], ans->len[i], &r) !=
			DMARC_PARSE_OK)
			continue;
		if (r.nrua == 0)
			return DMARC_RUA_AUTHORISED;
		for (k = 0; k < r.nrua; k++)
			if (!r.rua[k].mailto ||
			    !dm_name_eq(r.rua[k].host, r.rua[k].host_len, host,
				host_len))
				return DMARC_RUA_REFUSED;
		*index_out = i;
		return DMARC_RUA_OVERRIDE;
	}
	return DMARC_RUA_REFUSED;
}

static const char *const dm_why_text[] = {
    NULL,
    "no DMARC record",
    "more than one DMARC record",
    "no valid policy in the DMARC record",
    "DNS lookup failed",
    "From domain is not a domain name",
};

void
dmarc_authres(const struct dmarc_lookup *lk, const struct dmarc_verdict *v,
    struct authres_result *out)
{
	memset(out, 0, sizeof(*out));
	out->method = "dmarc";
	out->result = dmarc_result_name(v->result);
	if (v->result == DMARC_RESULT_FAIL)
		out->reason = v->overridden    ? "local policy"
			      : v->sampled_out ? "sampled out by pct"
					       : NULL;
	else if ((unsigned)v->why < sizeof(dm_why_text) / sizeof(*dm_why_text))
		out->reason = dm_why_text[v->why];
	if (lk->from[0] != '\0') {
		out->props[0] =
		    (struct authres_prop){"header", "from", lk->from};
		out->nprops = 1;
	}
}

const char *
dmarc_result_name(enum dmarc_result r)
{
	static const char *const names[] = {
	    "none", "pass", "fail", "temperror", "permerror"};

	return (unsigned)r < 5 ? names[r] : "?";
}

const char *
dmarc_policy_name(enum dmarc_policy p)
{
	static const char *const names[] = {
	    "unset", "none", "quarantine", "reject", "invalid"};

	return (unsigned)p < 5 ? names[p] : "?";
}
