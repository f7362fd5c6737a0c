/*
 * tlsrpt.c: the counts of outbound TLS outcomes (RFC 8460), their text
 * form, the TXT record parser and the JSON report.  See tlsrpt.h.
 *
 * Invariants: a domain is in the hash (by its lower-case name) and in
 * doms[] (the order first seen) exactly once; ndoms <= max_domains.  A
 * policy is identified by its type, policy-strings and mx-host patterns
 * (all joined by LF); its failure count is at least the sum of its
 * details' counts (details past TLSRPT_DETAILS_MAX are only counted).
 * Every string kept is line-safe and bounded by the TLSRPT_*_MAX sizes.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tlsrpt/tlsrpt.h"

#define TR_BUCKETS 1024

struct tr_detail {
	uint8_t result;
	uint64_t count;
	char sending[TLSRPT_IP_MAX + 1];
	char receiving[TLSRPT_IP_MAX + 1];
	char mx[TLSRPT_DOMAIN_MAX + 1];
	char helo[TLSRPT_DOMAIN_MAX + 1];
	char reason[TLSRPT_REASON_MAX + 1];
};

struct tr_pol {
	uint8_t type;
	char *strings; /* policy-strings joined by LF; "" for none */
	char *mx;      /* mx-host patterns joined by LF; "" for none */
	uint64_t ok, fail, det_dropped;
	struct tr_detail *det;
	size_t ndet;
};

struct tr_dom {
	char name[TLSRPT_DOMAIN_MAX + 1];
	struct tr_pol pols[TLSRPT_POLICIES_MAX];
	size_t npols;
	struct tr_dom *hnext;
};

struct tlsrpt {
	int64_t begin;
	unsigned max_domains;
	struct tr_dom **doms;
	size_t ndoms, cap;
	struct tr_dom *buckets[TR_BUCKETS];
	uint64_t dropped, sessions;
};

static const char *const policy_names[TLSRPT_POL__N] = {
    "no-policy-found", "tlsa", "sts"};

static const char *const result_names[TLSRPT_RESULT__N] = {
    "success",
    "starttls-not-supported",
    "certificate-host-mismatch",
    "certificate-expired",
    "certificate-not-trusted",
    "validation-failure",
    "tlsa-invalid",
    "dnssec-invalid",
    "dane-required",
    "sts-policy-fetch-error",
    "sts-policy-invalid",
    "sts-webpki-invalid",
};

const char *
tlsrpt_policy_name(enum tlsrpt_policy p)
{
	return (unsigned)p < TLSRPT_POL__N ? policy_names[p] : "?";
}

const char *
tlsrpt_result_name(enum tlsrpt_result r)
{
	return (unsigned)r < TLSRPT_RESULT__N ? result_names[r] : "?";
}

static int
tr_index_of(const char *const *names, int n, const char *s, size_t len)
{
	int i;

	for (i = 0; i < n; i++)
		if (strlen(names[i]) == len && memcmp(names[i], s, len) == 0)
			return i;
	return -1;
}

int
tlsrpt_result_of(const char *name, size_t len)
{
	return tr_index_of(result_names, TLSRPT_RESULT__N, name, len);
}

int
tlsrpt_policy_of(const char *name, size_t len)
{
	return tr_index_of(policy_names, TLSRPT_POL__N, name, len);
}

static bool
tr_has(const char *s, const char *needle)
{
	return strcasestr(s, needle) != NULL;
}

enum tlsrpt_result
tlsrpt_result_of_tls_error(const char *why)
{
	if (why == NULL)
		return TLSRPT_VALIDATION_FAILURE;
	if (tr_has(why, "expired") || tr_has(why, "not yet valid"))
		return TLSRPT_CERT_EXPIRED;
	if (tr_has(why, "hostname mismatch") || tr_has(why, "host mismatch") ||
	    tr_has(why, "name mismatch") || tr_has(why, "IP address mismatch"))
		return TLSRPT_CERT_HOST_MISMATCH;
	if (tr_has(why, "self-signed") || tr_has(why, "self signed") ||
	    tr_has(why, "local issuer") || tr_has(why, "untrusted") ||
	    tr_has(why, "not trusted") || tr_has(why, "unable to get issuer"))
		return TLSRPT_CERT_NOT_TRUSTED;
	return TLSRPT_VALIDATION_FAILURE;
}

/* ---- the table ------------------------------------------------------------
 */

struct tlsrpt *
tlsrpt_new(int64_t begin, unsigned max_domains)
{
	struct tlsrpt *t = xcalloc(1, sizeof(*t));

	t->begin = begin;
	t->max_domains = max_domains;
	return t;
}

void
tlsrpt_set_max_domains(struct tlsrpt *t, unsigned max_domains)
{
	t->max_domains = max_domains;
}

static void
tr_pol_clear(struct tr_pol *p)
{
	free(p->strings);
	free(p->mx);
	free(p->det);
	memset(p, 0, sizeof(*p));
}

void
tlsrpt_free(struct tlsrpt *t)
{
	size_t i, k;

	if (t == NULL)
		return;
	for (i = 0; i < t->ndoms; i++) {
		for (k = 0; k < t->doms[i]->npols; k++)
			tr_pol_clear(&t->doms[i]->pols[k]);
		free(t->doms[i]);
	}
	free(t->doms);
	free(t);
}

static uint32_t
tr_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

/* s is printable ASCII without blank, at most max octets */
static bool
tr_token_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return false;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

/* The domain named name (lower case), made if absent and allowed. */
static struct tr_dom *
tr_dom_get(struct tlsrpt *t, const char *name, bool make)
{
	uint32_t h = tr_hash(name) % TR_BUCKETS;
	struct tr_dom *d;

	for (d = t->buckets[h]; d != NULL; d = d->hnext)
		if (strcmp(d->name, name) == 0)
			return d;
	if (!make || t->ndoms >= t->max_domains)
		return NULL;
	d = xcalloc(1, sizeof(*d));
	memcpy(d->name, name, strlen(name) + 1);
	d->hnext = t->buckets[h];
	t->buckets[h] = d;
	if (t->ndoms == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 16;
		struct tr_dom **nd = xcalloc(ncap, sizeof(*nd));

		if (t->ndoms > 0)
			memcpy(nd, t->doms, t->ndoms * sizeof(*nd));
		free(t->doms);
		t->doms = nd;
		t->cap = ncap;
	}
	t->doms[t->ndoms++] = d;
	return d;
}

static struct tr_pol *
tr_pol_get(struct tr_dom *d, unsigned type, const char *strings, const char *mx)
{
	struct tr_pol *p;
	size_t i;

	for (i = 0; i < d->npols; i++) {
		p = &d->pols[i];
		if (p->type == type && strcmp(p->strings, strings) == 0 &&
		    strcmp(p->mx, mx) == 0)
			return p;
	}
	if (d->npols == TLSRPT_POLICIES_MAX)
		return NULL;
	p = &d->pols[d->npols++];
	p->type = (uint8_t)type;
	p->strings = xstrdup(strings);
	p->mx = xstrdup(mx);
	return p;
}

/* n strings joined by LF into out; -1 when one holds a CR or LF, or they
 * do not fit */
static int
tr_join(const char *const *s, size_t n, char *out, size_t outlen)
{
	size_t i, at = 0, l;

	out[0] = '\0';
	if (n > TLSRPT_POLSTR_N)
		return -1;
	for (i = 0; i < n; i++) {
		l = s[i] != NULL ? strlen(s[i]) : 0;
		if (l > 0 && strpbrk(s[i], "\r\n") != NULL)
			return -1;
		if (at + l + 2 > outlen)
			return -1;
		if (i > 0)
			out[at++] = '\n';
		if (l > 0)
			memcpy(out + at, s[i], l);
		at += l;
		out[at] = '\0';
	}
	return 0;
}

/* copy a token-ish value, "" for NULL; false when it is not one */
static bool
tr_copy_opt(char *out, size_t outlen, const char *s, bool free_text)
{
	size_t n;

	out[0] = '\0';
	if (s == NULL || *s == '\0')
		return true;
	n = strlen(s);
	if (free_text) {
		/* the reason is free text: cut, and anything unsafe as '?' */
		size_t i;

		if (n > outlen - 1)
			n = outlen - 1;
		for (i = 0; i < n; i++)
			out[i] = ((unsigned char)s[i] < 0x20 ||
				     (unsigned char)s[i] >= 0x7f)
				     ? '?'
				     : s[i];
		out[n] = '\0';
		return true;
	}
	if (!tr_token_ok(s, outlen - 1))
		return false;
	memcpy(out, s, n + 1);
	return true;
}

static void
tr_detail_add(struct tr_pol *p, const struct tr_detail *k, uint64_t count)
{
	size_t i;
	struct tr_detail *e;

	for (i = 0; i < p->ndet; i++) {
		e = &p->det[i];
		if (e->result == k->result &&
		    strcmp(e->sending, k->sending) == 0 &&
		    strcmp(e->receiving, k->receiving) == 0 &&
		    strcmp(e->mx, k->mx) == 0 &&
		    strcmp(e->helo, k->helo) == 0 &&
		    strcmp(e->reason, k->reason) == 0) {
			e->count += count;
			return;
		}
	}
	if (p->ndet == TLSRPT_DETAILS_MAX) {
		p->det_dropped += count;
		return;
	}
	/* grown by doubling: few policies ever see many kinds of failure */
	if ((p->ndet & (p->ndet - 1)) == 0) {
		size_t ncap = p->ndet ? p->ndet * 2 : 1;
		struct tr_detail *nd = xcalloc(ncap, sizeof(*nd));

		if (p->ndet > 0)
			memcpy(nd, p->det, p->ndet * sizeof(*nd));
		free(p->det);
		p->det = nd;
	}
	p->det[p->ndet] = *k;
	p->det[p->ndet].count = count;
	p->ndet++;
}

void
tlsrpt_record(struct tlsrpt *t, const struct tlsrpt_outcome *o)
{
	char name[TLSRPT_DOMAIN_MAX + 1];
	char strings[TLSRPT_POLSTR_MAX], mx[TLSRPT_POLSTR_MAX];
	struct tr_detail k;
	struct tr_dom *d;
	struct tr_pol *p;
	size_t n;

	if (t == NULL || o->domain == NULL || o->domain[0] == '\0')
		return;
	n = strlen(o->domain);
	if (n > 0 && o->domain[n - 1] == '.')
		n--; /* the root's dot is not part of the policy domain */
	if ((unsigned)o->policy >= TLSRPT_POL__N ||
	    (unsigned)o->result >= TLSRPT_RESULT__N ||
	    str_copy(name, sizeof(name), o->domain, n) != 0 ||
	    !tr_token_ok(name, TLSRPT_DOMAIN_MAX) ||
	    tr_join(o->policy_strings, o->npolicy_strings, strings,
		sizeof(strings)) != 0 ||
	    tr_join(o->mx_patterns, o->nmx_patterns, mx, sizeof(mx)) != 0) {
		t->dropped++;
		return;
	}
	str_lower(name);
	memset(&k, 0, sizeof(k));
	if (o->result != TLSRPT_SUCCESS &&
	    (!tr_copy_opt(k.sending, sizeof(k.sending), o->sending_ip, false) ||
		!tr_copy_opt(
		    k.receiving, sizeof(k.receiving), o->receiving_ip, false) ||
		!tr_copy_opt(k.mx, sizeof(k.mx), o->mx_host, false) ||
		!tr_copy_opt(
		    k.helo, sizeof(k.helo), o->receiving_helo, false) ||
		!tr_copy_opt(k.reason, sizeof(k.reason), o->reason, true))) {
		t->dropped++;
		return;
	}
	if ((d = tr_dom_get(t, name, true)) == NULL ||
	    (p = tr_pol_get(d, (unsigned)o->policy, strings, mx)) == NULL) {
		t->dropped++;
		return;
	}
	t->sessions++;
	if (o->result == TLSRPT_SUCCESS) {
		p->ok++;
		return;
	}
	p->fail++;
	k.result = (uint8_t)o->result;
	tr_detail_add(p, &k, 1);
}

struct tlsrpt *
tlsrpt_take(struct tlsrpt *t, int64_t now)
{
	struct tlsrpt *n = xcalloc(1, sizeof(*n));

	*n = *t;
	t->doms = NULL;
	t->ndoms = t->cap = 0;
	memset(t->buckets, 0, sizeof(t->buckets));
	t->dropped = t->sessions = 0;
	t->begin = now;
	return n;
}

int64_t
tlsrpt_begin(const struct tlsrpt *t)
{
	return t->begin;
}

size_t
tlsrpt_ndomains(const struct tlsrpt *t)
{
	return t != NULL ? t->ndoms : 0;
}

const char *
tlsrpt_domain(const struct tlsrpt *t, size_t i)
{
	return i < t->ndoms ? t->doms[i]->name : NULL;
}

uint64_t
tlsrpt_dropped(const struct tlsrpt *t)
{
	return t != NULL ? t->dropped : 0;
}

uint64_t
tlsrpt_sessions(const struct tlsrpt *t)
{
	return t != NULL ? t->sessions : 0;
}

void
tlsrpt_domain_counts(const struct tlsrpt *t, size_t i, uint64_t *success_out,
    uint64_t *failure_out)
{
	size_t k;

	*success_out = *failure_out = 0;
	if (i >= t->ndoms)
		return;
	for (k = 0; k < t->doms[i]->npols; k++) {
		*success_out += t->doms[i]->pols[k].ok;
		*failure_out += t->doms[i]->pols[k].fail;
	}
}

void
tlsrpt_merge_domain(struct tlsrpt *dst, const struct tlsrpt *src, size_t i)
{
	const struct tr_dom *s;
	struct tr_dom *d;
	struct tr_pol *p;
	size_t k, j;

	if (i >= src->ndoms)
		return;
	s = src->doms[i];
	if ((d = tr_dom_get(dst, s->name, true)) == NULL) {
		dst->dropped++;
		return;
	}
	for (k = 0; k < s->npols; k++) {
		const struct tr_pol *sp = &s->pols[k];

		if ((p = tr_pol_get(d, sp->type, sp->strings, sp->mx)) ==
		    NULL) {
			dst->dropped++;
			continue;
		}
		p->ok += sp->ok;
		p->fail += sp->fail;
		p->det_dropped += sp->det_dropped;
		dst->sessions += sp->ok + sp->fail;
		for (j = 0; j < sp->ndet; j++)
			tr_detail_add(p, &sp->det[j], sp->det[j].count);
	}
}

/* ---- the text form ------------------------------------------------------- */

/* a text field: "-" when empty; %XX for blanks, controls, '%', 8-bit */
static int
tr_put_field(struct buf *out, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char e[3] = {'%', 0, 0};

	if (buf_append(out, " ", 1) != 0)
		return -1;
	if (*s == '\0')
		return buf_append(out, "-", 1);
	if (strcmp(s, "-") == 0)
		return buf_append(out, "%2D", 3);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c <= 0x20 || c >= 0x7f || c == '%') {
			e[1] = hex[c >> 4];
			e[2] = hex[c & 15];
			if (buf_append(out, e, 3) != 0)
				return -1;
		} else if (buf_append(out, s, 1) != 0) {
			return -1;
		}
	}
	return 0;
}

int
tlsrpt_encode(const struct tlsrpt *t, struct buf *out)
{
	size_t i, k, j;

	if (buf_printf(out, "tlsrpt-state %d\nbegin %lld %llu\n",
		TLSRPT_STATE_VERSION, (long long)t->begin,
		(unsigned long long)t->dropped) != 0)
		return -1;
	for (i = 0; i < t->ndoms; i++) {
		const struct tr_dom *d = t->doms[i];

		if (buf_printf(out, "D %s\n", d->name) != 0)
			return -1;
		for (k = 0; k < d->npols; k++) {
			const struct tr_pol *p = &d->pols[k];

			if (buf_printf(out, "P %s %llu %llu %llu",
				policy_names[p->type],
				(unsigned long long)p->ok,
				(unsigned long long)p->fail,
				(unsigned long long)p->det_dropped) != 0 ||
			    tr_put_field(out, p->strings) != 0 ||
			    tr_put_field(out, p->mx) != 0 ||
			    buf_append(out, "\n", 1) != 0)
				return -1;
			for (j = 0; j < p->ndet; j++) {
				const struct tr_detail *e = &p->det[j];

				if (buf_printf(out, "F %s %llu",
					result_names[e->result],
					(unsigned long long)e->count) != 0 ||
				    tr_put_field(out, e->sending) != 0 ||
				    tr_put_field(out, e->receiving) != 0 ||
				    tr_put_field(out, e->mx) != 0 ||
				    tr_put_field(out, e->helo) != 0 ||
				    tr_put_field(out, e->reason) != 0 ||
				    buf_append(out, "\n", 1) != 0)
					return -1;
			}
		}
	}
	return 0;
}

#define TR_FIELDS 9

struct tr_line {
	const char *f[TR_FIELDS];
	size_t len[TR_FIELDS];
	size_t n;
};

static void
tr_split(const char *s, size_t len, struct tr_line *l)
{
	size_t i = 0, start;

	l->n = 0;
	while (i < len && l->n < TR_FIELDS) {
		start = i;
		while (i < len && s[i] != ' ')
			i++;
		l->f[l->n] = s + start;
		l->len[l->n++] = i - start;
		if (i < len)
			i++;
	}
	if (i < len)
		l->n = TR_FIELDS + 1; /* too many: never a valid line */
}

static int
tr_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * %XX undone into out: raw octets must be printable ASCII without blank;
 * an escaped one may be anything but NUL when any, else the same.  -1
 * when malformed or too long.
 */
static int
tr_unescape(const char *s, size_t len, char *out, size_t outlen, bool any)
{
	size_t i, at = 0;
	int hi, lo;
	char c;
	bool esc;

	for (i = 0; i < len; i++) {
		c = s[i];
		esc = c == '%';
		if (esc) {
			if (len - i < 3)
				return -1;
			hi = tr_hexval(s[i + 1]);
			lo = tr_hexval(s[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = (char)(hi * 16 + lo);
			i += 2;
		}
		if (esc && any
			? c == '\0'
			: (unsigned char)c <= 0x20 || (unsigned char)c >= 0x7f)
			return -1;
		if (at + 1 >= outlen)
			return -1;
		out[at++] = c;
	}
	out[at] = '\0';
	return 0;
}

/* undo tr_put_field */
static int
tr_get_field(const char *s, size_t len, char *out, size_t outlen)
{
	if (len == 1 && s[0] == '-') {
		out[0] = '\0';
		return 0;
	}
	if (len == 0)
		return -1;
	return tr_unescape(s, len, out, outlen, true);
}

static int
tr_get_u64(const char *s, size_t len, uint64_t *v)
{
	return str_to_u64(s, len, v);
}

/* a text that must be one token (a name, an address): no LF inside */
static bool
tr_line_safe(const char *s)
{
	return strpbrk(s, "\r\n") == NULL;
}

struct tr_dec {
	struct tlsrpt *t;
	struct tr_dom *d;
	struct tr_pol *p;
};

static int
tr_dec_line(struct tr_dec *x, const struct tr_line *l)
{
	static char big[2][TLSRPT_POLSTR_MAX];
	uint64_t a, b, c;
	struct tr_detail k;
	char name[TLSRPT_DOMAIN_MAX + 1];
	int type;

	if (l->n == 2 && l->len[0] == 1 && l->f[0][0] == 'D') {
		if (str_copy(name, sizeof(name), l->f[1], l->len[1]) != 0 ||
		    !tr_token_ok(name, TLSRPT_DOMAIN_MAX))
			return -1;
		str_lower(name);
		x->d = tr_dom_get(x->t, name, true);
		x->p = NULL;
		return x->d != NULL ? 0 : -1;
	}
	if (l->n == 7 && l->len[0] == 1 && l->f[0][0] == 'P' && x->d != NULL) {
		type = tlsrpt_policy_of(l->f[1], l->len[1]);
		if (type < 0 || tr_get_u64(l->f[2], l->len[2], &a) != 0 ||
		    tr_get_u64(l->f[3], l->len[3], &b) != 0 ||
		    tr_get_u64(l->f[4], l->len[4], &c) != 0 ||
		    tr_get_field(l->f[5], l->len[5], big[0], sizeof(big[0])) !=
			0 ||
		    tr_get_field(l->f[6], l->len[6], big[1], sizeof(big[1])) !=
			0 ||
		    strchr(big[0], '\r') != NULL ||
		    strchr(big[1], '\r') != NULL)
			return -1;
		if ((x->p = tr_pol_get(x->d, (unsigned)type, big[0], big[1])) ==
		    NULL)
			return -1;
		/* counts beyond 2^62 are nonsense, not a state we wrote */
		if (a > UINT64_MAX / 4 || b > UINT64_MAX / 4 ||
		    c > UINT64_MAX / 4)
			return -1;
		x->p->ok += a;
		x->p->fail += b;
		x->p->det_dropped += c;
		x->t->sessions += a + b;
		return 0;
	}
	if (l->n == 8 && l->len[0] == 1 && l->f[0][0] == 'F' && x->p != NULL) {
		memset(&k, 0, sizeof(k));
		type = tlsrpt_result_of(l->f[1], l->len[1]);
		if (type <= 0 || tr_get_u64(l->f[2], l->len[2], &a) != 0 ||
		    a > UINT64_MAX / 4 ||
		    tr_get_field(l->f[3], l->len[3], k.sending,
			sizeof(k.sending)) != 0 ||
		    tr_get_field(l->f[4], l->len[4], k.receiving,
			sizeof(k.receiving)) != 0 ||
		    tr_get_field(l->f[5], l->len[5], k.mx, sizeof(k.mx)) != 0 ||
		    tr_get_field(l->f[6], l->len[6], k.helo, sizeof(k.helo)) !=
			0 ||
		    tr_get_field(
			l->f[7], l->len[7], k.reason, sizeof(k.reason)) != 0 ||
		    !tr_line_safe(k.reason) || strchr(k.sending, ' ') ||
		    strchr(k.receiving, ' ') || strchr(k.mx, ' ') ||
		    strchr(k.helo, ' '))
			return -1;
		k.result = (uint8_t)type;
		tr_detail_add(x->p, &k, a);
		return 0;
	}
	return -1;
}

static int
tr_dec_head(const char *in, size_t len, size_t *at, int64_t *begin,
    uint64_t *dropped, char *err, size_t errlen)
{
	const char *nl = memchr(in, '\n', len);
	uint64_t v;
	struct tr_line l;
	size_t n;

	if (nl == NULL) {
		str_fmt_cut(err, errlen, "no first line");
		return -1;
	}
	n = (size_t)(nl - in);
	tr_split(in, n, &l);
	if (l.n != 2 || l.len[0] != 12 ||
	    memcmp(l.f[0], "tlsrpt-state", 12) != 0 ||
	    tr_get_u64(l.f[1], l.len[1], &v) != 0) {
		str_fmt_cut(err, errlen, "not a TLS-RPT state file");
		return -1;
	}
	if (v != TLSRPT_STATE_VERSION) {
		str_fmt_cut(err, errlen,
		    "format version %llu%s (this tern reads version %d)",
		    (unsigned long long)v,
		    v > TLSRPT_STATE_VERSION ? ", written by a newer tern" : "",
		    TLSRPT_STATE_VERSION);
		return -1;
	}
	*at = n + 1;
	nl = memchr(in + *at, '\n', len - *at);
	if (nl == NULL) {
		str_fmt_cut(err, errlen, "no begin line");
		return -1;
	}
	n = (size_t)(nl - (in + *at));
	tr_split(in + *at, n, &l);
	if (l.n != 3 || l.len[0] != 5 || memcmp(l.f[0], "begin", 5) != 0 ||
	    tr_get_u64(l.f[1], l.len[1], &v) != 0 || v > INT64_MAX ||
	    tr_get_u64(l.f[2], l.len[2], dropped) != 0) {
		str_fmt_cut(err, errlen, "bad begin line");
		return -1;
	}
	*begin = (int64_t)v;
	*at += n + 1;
	return 0;
}

int
tlsrpt_decode(
    struct tlsrpt *t, const char *in, size_t len, char *err, size_t errlen)
{
	struct tr_dec x;
	struct tr_line l;
	size_t at, n, lineno = 2, i;
	const char *nl;
	int64_t begin;
	uint64_t dropped;

	if (memchr(in, '\0', len) != NULL) {
		str_fmt_cut(err, errlen, "a NUL byte in the state");
		return -1;
	}
	if (tr_dec_head(in, len, &at, &begin, &dropped, err, errlen) != 0)
		return -1;
	memset(&x, 0, sizeof(x));
	/* no domain limit while reading: t's own applies when merging */
	x.t = tlsrpt_new(begin, UINT32_MAX);
	x.t->dropped = dropped;
	while (at < len) {
		nl = memchr(in + at, '\n', len - at);
		if (nl == NULL) {
			str_fmt_cut(
			    err, errlen, "line %zu: no line end", lineno + 1);
			goto fail;
		}
		n = (size_t)(nl - (in + at));
		lineno++;
		tr_split(in + at, n, &l);
		if (tr_dec_line(&x, &l) != 0) {
			str_fmt_cut(
			    err, errlen, "line %zu: not understood", lineno);
			goto fail;
		}
		at += n + 1;
	}
	for (i = 0; i < x.t->ndoms; i++)
		tlsrpt_merge_domain(t, x.t, i);
	if (begin < t->begin)
		t->begin = begin;
	t->dropped += x.t->dropped;
	tlsrpt_free(x.t);
	return 0;
fail:
	tlsrpt_free(x.t);
	return -1;
}

/* ---- the TXT record -------------------------------------------------------
 */

static bool
tr_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* a mailto: URI's address: local@domain before any '?' (RFC 6068) */
static int
tr_mailto_addr(struct tlsrpt_uri *u)
{
	const char *a = u->uri + 7, *q = strchr(a, '?'), *at;
	size_t n = q != NULL ? (size_t)(q - a) : strlen(a);

	if (str_copy(u->addr, sizeof(u->addr), a, n) != 0)
		return -1;
	at = strrchr(u->addr, '@');
	if (at == NULL || at == u->addr || at[1] == '\0' ||
	    strpbrk(u->addr, "<>,;:\"\\()[] ") != NULL || n > 320)
		return -1;
	return 0;
}

static void
tr_add_uri(struct tlsrpt_record *r, const char *s, size_t len)
{
	struct tlsrpt_uri *u;

	if (r->nrua == TLSRPT_RUA_MAX) {
		r->skipped++;
		return;
	}
	u = &r->rua[r->nrua];
	memset(u, 0, sizeof(*u));
	if (tr_unescape(s, len, u->uri, sizeof(u->uri), false) != 0) {
		r->skipped++;
		return;
	}
	if (strncasecmp(u->uri, "mailto:", 7) == 0) {
		u->mailto = true;
		if (tr_mailto_addr(u) != 0) {
			r->skipped++;
			return;
		}
	} else if (strncasecmp(u->uri, "https://", 8) != 0 ||
		   u->uri[8] == '\0' || u->uri[8] == '/') {
		r->skipped++;
		return;
	}
	r->nrua++;
}

static void
tr_parse_rua(struct tlsrpt_record *r, const char *s, size_t len)
{
	size_t i = 0, start, end;

	while (i <= len) {
		while (i < len && tr_wsp(s[i]))
			i++;
		start = i;
		while (i < len && s[i] != ',')
			i++;
		end = i;
		while (end > start && tr_wsp(s[end - 1]))
			end--;
		if (end > start)
			tr_add_uri(r, s + start, end - start);
		i++;
	}
}

enum tlsrpt_parse
tlsrpt_record_parse(const char *txt, size_t len, struct tlsrpt_record *out)
{
	size_t i, start, end;
	bool rua = false;

	memset(out, 0, sizeof(*out));
	if (len < 10 || memcmp(txt, "v=TLSRPTv1", 10) != 0)
		return TLSRPT_PARSE_NOT_TLSRPT;
	i = 10;
	while (i < len && tr_wsp(txt[i]))
		i++;
	if (i < len && txt[i] != ';')
		return TLSRPT_PARSE_NOT_TLSRPT; /* "v=TLSRPTv10" */
	if (len > TLSRPT_TXT_MAX)
		return TLSRPT_PARSE_INVALID;
	while (i < len) {
		i++; /* the ';' */
		while (i < len && tr_wsp(txt[i]))
			i++;
		start = i;
		while (i < len && txt[i] != ';')
			i++;
		end = i;
		while (end > start && tr_wsp(txt[end - 1]))
			end--;
		if (end - start >= 4 && memcmp(txt + start, "rua=", 4) == 0) {
			if (rua)
				return TLSRPT_PARSE_INVALID; /* twice */
			rua = true;
			tr_parse_rua(out, txt + start + 4, end - start - 4);
		}
		/* an empty field (a trailing ';') or another one: ignored */
	}
	return rua && out->nrua > 0 ? TLSRPT_PARSE_OK : TLSRPT_PARSE_INVALID;
}

int
tlsrpt_record_pick(const char *const *txt, const size_t *len, size_t n)
{
	size_t i;
	int found = -1;

	for (i = 0; i < n; i++) {
		if (len[i] < 10 || memcmp(txt[i], "v=TLSRPTv1", 10) != 0 ||
		    (len[i] > 10 && !tr_wsp(txt[i][10]) && txt[i][10] != ';'))
			continue;
		if (found >= 0)
			return -2;
		found = (int)i;
	}
	return found;
}

/* ---- the report -----------------------------------------------------------
 */

/* proleptic Gregorian date of a day number (days since 1970-01-01) */
static void
tr_civil(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t era, yy;
	unsigned doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	yy = (int64_t)yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = yy + (*m <= 2);
}

int
tlsrpt_datetime(int64_t t, char *out, size_t outlen)
{
	int64_t days, secs, y;
	unsigned m, d;

	if (t < 0 || t > (int64_t)253402300799) /* 9999-12-31T23:59:59Z */
		return -1;
	days = t / 86400;
	secs = t % 86400;
	tr_civil(days, &y, &m, &d);
	return str_fmt(out, outlen, "%04lld-%02u-%02uT%02u:%02u:%02uZ",
	    (long long)y, m, d, (unsigned)(secs / 3600),
	    (unsigned)(secs / 60 % 60), (unsigned)(secs % 60));
}

/* s as a JSON string (RFC 8259 7) */
static int
tr_json_str(struct buf *out, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	char e[6] = {'\\', 'u', '0', '0', 0, 0};

	if (buf_append(out, "\"", 1) != 0)
		return -1;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			char q[2] = {'\\', (char)c};

			if (buf_append(out, q, 2) != 0)
				return -1;
		} else if (c < 0x20 || c == 0x7f) {
			e[4] = hex[c >> 4];
			e[5] = hex[c & 15];
			if (buf_append(out, e, 6) != 0)
				return -1;
		} else if (c >= 0x80) {
			/* our strings are ASCII; never emit invalid UTF-8 */
			if (buf_append(out, "?", 1) != 0)
				return -1;
		} else if (buf_append(out, s, 1) != 0) {
			return -1;
		}
	}
	return buf_append(out, "\"", 1);
}

/* "key":[ "line", ... ] of an LF-joined list; nothing when empty */
static int
tr_json_lines(struct buf *out, const char *key, const char *joined)
{
	char line[TLSRPT_POLSTR_MAX];
	const char *p = joined, *nl;
	bool first = true;

	if (*joined == '\0')
		return 0;
	if (buf_printf(out, ",\"%s\":[", key) != 0)
		return -1;
	for (;;) {
		nl = strchr(p, '\n');
		if (str_copy(line, sizeof(line), p,
			nl != NULL ? (size_t)(nl - p) : strlen(p)) != 0 ||
		    (!first && buf_append(out, ",", 1) != 0) ||
		    tr_json_str(out, line) != 0)
			return -1;
		first = false;
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	return buf_append(out, "]", 1);
}

static int
tr_json_opt(struct buf *out, const char *key, const char *v)
{
	if (*v == '\0')
		return 0;
	if (buf_printf(out, ",\"%s\":", key) != 0)
		return -1;
	return tr_json_str(out, v);
}

static int
tr_json_detail(struct buf *out, const struct tr_detail *e, bool first)
{
	if (buf_printf(out, "%s{\"result-type\":\"%s\"", first ? "" : ",",
		result_names[e->result]) != 0 ||
	    tr_json_opt(out, "sending-mta-ip", e->sending) != 0 ||
	    tr_json_opt(out, "receiving-mx-hostname", e->mx) != 0 ||
	    tr_json_opt(out, "receiving-mx-helo", e->helo) != 0 ||
	    tr_json_opt(out, "receiving-ip", e->receiving) != 0 ||
	    buf_printf(out, ",\"failed-session-count\":%llu",
		(unsigned long long)e->count) != 0 ||
	    tr_json_opt(out, "failure-reason-code", e->reason) != 0 ||
	    buf_append(out, "}", 1) != 0)
		return -1;
	return 0;
}

static int
tr_json_policy(
    struct buf *out, const char *domain, const struct tr_pol *p, bool first)
{
	size_t j;

	if (buf_printf(out, "%s{\"policy\":{\"policy-type\":\"%s\"",
		first ? "" : ",", policy_names[p->type]) != 0 ||
	    tr_json_lines(out, "policy-string", p->strings) != 0 ||
	    buf_append_str(out, ",\"policy-domain\":") != 0 ||
	    tr_json_str(out, domain) != 0 ||
	    tr_json_lines(out, "mx-host", p->mx) != 0 ||
	    buf_printf(out,
		"},\"summary\":{\"total-successful-session-count\":%llu,"
		"\"total-failure-session-count\":%llu}",
		(unsigned long long)p->ok, (unsigned long long)p->fail) != 0)
		return -1;
	if (p->ndet > 0) {
		if (buf_append_str(out, ",\"failure-details\":[") != 0)
			return -1;
		for (j = 0; j < p->ndet; j++)
			if (tr_json_detail(out, &p->det[j], j == 0) != 0)
				return -1;
		if (buf_append(out, "]", 1) != 0)
			return -1;
	}
	return buf_append(out, "}", 1);
}

int
tlsrpt_report_json(const struct tlsrpt *t, size_t i,
    const struct tlsrpt_meta *m, struct buf *out)
{
	char b[32], e[32];
	const struct tr_dom *d;
	size_t k;

	if (i >= t->ndoms || tlsrpt_datetime(m->begin, b, sizeof(b)) != 0 ||
	    tlsrpt_datetime(m->end, e, sizeof(e)) != 0)
		return -1;
	d = t->doms[i];
	if (buf_append_str(out, "{\"organization-name\":") != 0 ||
	    tr_json_str(out, m->org) != 0 ||
	    buf_printf(out,
		",\"date-range\":{\"start-datetime\":\"%s\","
		"\"end-datetime\":\"%s\"},\"contact-info\":",
		b, e) != 0 ||
	    tr_json_str(out, m->contact) != 0 ||
	    buf_append_str(out, ",\"report-id\":") != 0 ||
	    tr_json_str(out, m->report_id) != 0 ||
	    buf_append_str(out, ",\"policies\":[") != 0)
		return -1;
	for (k = 0; k < d->npols; k++)
		if (tr_json_policy(out, d->name, &d->pols[k], k == 0) != 0)
			return -1;
	return buf_append_str(out, "]}\n");
}

int
tlsrpt_filename(const char *submitter, const char *domain, int64_t begin,
    int64_t end, const char *id, char *out, size_t outlen)
{
	if (strpbrk(submitter, "!\"/\\\r\n") != NULL ||
	    strpbrk(domain, "!\"/\\\r\n") != NULL ||
	    strpbrk(id, "!\"/\\\r\n") != NULL)
		return -1;
	return str_fmt(out, outlen, "%s!%s!%lld!%lld!%s.json.gz", submitter,
	    domain, (long long)begin, (long long)end, id);
}

int
tlsrpt_mail_fields(
    const char *domain, const char *submitter, char *out, size_t outlen)
{
	if (!tr_line_safe(domain) || !tr_line_safe(submitter))
		return -1;
	return str_fmt(out, outlen,
	    "TLS-Report-Domain: %s\r\nTLS-Report-Submitter: %s\r\n", domain,
	    submitter);
}
