/*
 * spf.c: check_host() of RFC 7208 4 as a resumable evaluator, and the
 * Received-SPF field (9.1).
 *
 * How it resumes: DNS answers go into a table keyed by (type, name,
 * purpose).  spf_next() runs check_host() from the start; a lookup whose
 * answer is not in the table makes the run stop with that query pending.
 * Since the table only grows and the run is a function of it, every run
 * retraces the previous one and gets one query further.  The per-run
 * counters (lookups, voids) restart with each run, so they count exactly
 * what one uninterrupted evaluation would.
 *
 * Invariants: the table holds at most SPF_QUERIES_MAX answers, each with
 * at most SPF_KEEP_MAX records of bounded size; recursion (include,
 * redirect) is bounded by SPF_LOOKUP_MAX since each level costs a lookup.
 */
#include <stdlib.h>
#include <string.h>

#include "mailauth/spf_int.h"

/* records kept per answer: addresses, or MX names (one past the limit,
   to see it was passed), or PTR names, or TXT records */
#define SPF_KEEP_MAX SPF_ADDRS_MAX

/* what a TXT query is for: an SPF record, or an explanation */
enum purpose { P_SPF = 0, P_EXP };

struct ans {
	enum spf_qtype type;
	enum purpose purpose;
	char name[SPF_NAME_MAX + 1];
	enum spf_rcode rc;
	size_t n;      /* records kept */
	size_t total;  /* records in the answer (TXT: SPF records) */
	bool oversize; /* TXT: a wanted record was over SPF_RECORD_MAX */
	char *rec[SPF_KEEP_MAX];
	size_t len[SPF_KEEP_MAX];
};

/* the result of a step of the run: a result, or a pending lookup */
#define R_NEED (-1)
/* fetch_record found the record (SPF_NONE is 0, so not 0) */
#define R_GOT (-2)

struct spf {
	struct spf_request req;
	char domain[SPF_NAME_MAX + 1];
	char *sender; /* owned */
	char helo[SPF_NAME_MAX + 1];
	char receiver[SPF_NAME_MAX + 1];
	struct ans *ans[SPF_QUERIES_MAX];
	size_t nans;
	bool pending, done;
	struct spf_query need;
	enum purpose need_purpose;
	size_t nqueries;
	/* per run */
	unsigned lookups, voids;
	enum spf_result result;
	char mech[128];
	char problem[128];
	char exp_spec[SPF_RECORD_MAX + 1]; /* exp= of the deciding record */
	char exp_domain[SPF_NAME_MAX + 1];
	char exp[SPF_EXP_MAX + 1];
};

/* ---- the answer table -------------------------------------------------- */

static const char *
name_norm(const char *s, size_t len, char *out)
{
	size_t k;

	if (len > 0 && s[len - 1] == '.')
		len--;
	if (len > SPF_NAME_MAX)
		len = 0;
	for (k = 0; k < len; k++)
		out[k] =
		    (char)(s[k] >= 'A' && s[k] <= 'Z' ? s[k] | 0x20 : s[k]);
	out[len] = '\0';
	return out;
}

/* labels of 1..63 octets, at most 253 in all (RFC 1035 2.3.4) */
static bool
name_ok(const char *s)
{
	size_t len = strlen(s), lab = 0, k;

	if (len == 0 || len > SPF_NAME_MAX)
		return false;
	for (k = 0; k <= len; k++) {
		if (k == len || s[k] == '.') {
			if (lab == 0 || lab > SPF_LABEL_MAX)
				return false;
			lab = 0;
		} else
			lab++;
	}
	return true;
}

/*
 * The answer to (t, name, pu), or NULL: then it becomes the pending
 * query and the run must stop.  Only the first miss of a run is asked.
 */
/*
 * A copy between buffers sized for it: every name here lives in an
 * SPF_NAME_MAX + 1 buffer and every exp= spec in a record of at most
 * SPF_RECORD_MAX, so a copy that does not fit is a bug, not input.
 */
static void
copy_fits(char *out, size_t outlen, const char *in, size_t len)
{
	if (str_copy(out, outlen, in, len) != 0)
		panic("spf: a %zu-octet copy into %zu octets", len, outlen);
}

static const struct ans *
lookup(struct spf *s, enum spf_qtype t, const char *name, enum purpose pu)
{
	size_t k;

	for (k = 0; k < s->nans; k++) {
		const struct ans *a = s->ans[k];

		if (a->type == t && a->purpose == pu &&
		    strcmp(a->name, name) == 0)
			return a;
	}
	if (!s->pending) {
		s->pending = true;
		s->need.type = t;
		s->need_purpose = pu;
		copy_fits(
		    s->need.name, sizeof(s->need.name), name, strlen(name));
	}
	return NULL;
}

static void
ans_keep(struct ans *a, const char *p, size_t n)
{
	if (a->n == SPF_KEEP_MAX)
		return;
	a->rec[a->n] = xmalloc(n + 1);
	memcpy(a->rec[a->n], p, n);
	a->rec[a->n][n] = '\0';
	a->len[a->n++] = n;
}

/* one joined TXT record: SPF ones (or, for exp, all) are counted, two
   kept; one over SPF_RECORD_MAX is remembered as such */
static void
ans_txt_record(struct ans *a, const char *p, size_t n, bool cut)
{
	if (a->purpose == P_SPF && !spf_is_record(p, n))
		return;
	a->total++;
	if (cut)
		a->oversize = true;
	else if (a->n < 2)
		ans_keep(a, p, n);
}

static void
ans_txt(struct ans *a, const struct spf_rr *rrs, size_t n)
{
	char *rec = xmalloc(SPF_RECORD_MAX + 1);
	size_t len = 0, k;
	bool cut = false, open = false;

	for (k = 0; k < n; k++) {
		if (!rrs[k].txt_continue && open) {
			ans_txt_record(a, rec, len, cut);
			len = 0;
			cut = false;
		}
		open = true;
		if (rrs[k].len > SPF_RECORD_MAX - len) {
			cut = true;
			continue;
		}
		memcpy(rec + len, rrs[k].data, rrs[k].len);
		len += rrs[k].len;
	}
	if (open)
		ans_txt_record(a, rec, len, cut);
	free(rec);
}

static void
ans_names(struct ans *a, const struct spf_rr *rrs, size_t n, size_t keep)
{
	char nm[SPF_NAME_MAX + 1];
	size_t k;

	a->total = n;
	for (k = 0; k < n && a->n < keep; k++) {
		name_norm(rrs[k].data, rrs[k].len, nm);
		ans_keep(a, nm, strlen(nm));
	}
}

int
spf_answer(struct spf *s, enum spf_rcode rc, const struct spf_rr *rrs, size_t n)
{
	struct ans *a;
	size_t k, alen;

	if (s == NULL || !s->pending || s->nans == SPF_QUERIES_MAX)
		return -1;
	a = xcalloc(1, sizeof(*a));
	a->type = s->need.type;
	a->purpose = s->need_purpose;
	memcpy(a->name, s->need.name, sizeof(a->name));
	a->rc = rc;
	if (rc == SPF_DNS_OK && rrs != NULL) {
		switch (a->type) {
		case SPF_Q_TXT:
			ans_txt(a, rrs, n);
			break;
		case SPF_Q_MX:
			ans_names(a, rrs, n, SPF_MX_MAX + 1);
			break;
		case SPF_Q_PTR:
			ans_names(a, rrs, n, SPF_PTR_MAX);
			break;
		default:
			alen = a->type == SPF_Q_A ? 4 : 16;
			for (k = 0; k < n; k++)
				if (rrs[k].len == alen)
					ans_keep(a, rrs[k].data, alen);
			a->total = a->n;
		}
	}
	s->ans[s->nans++] = a;
	s->pending = false;
	s->nqueries++;
	return 0;
}

/* ---- evaluation -------------------------------------------------------- */

static int
perm(struct spf *s, const char *why)
{
	if (s->problem[0] == '\0')
		str_fmt_cut(s->problem, sizeof(s->problem), "%s", why);
	return SPF_PERMERROR;
}

static int
temp(struct spf *s, const char *what, const char *name)
{
	if (s->problem[0] == '\0')
		str_fmt_cut(s->problem, sizeof(s->problem),
		    "DNS error for %s %.80s", what, name);
	return SPF_TEMPERROR;
}

/* a term that queries DNS: RFC 7208 4.6.4, at most 10 per check */
static bool
count_lookup(struct spf *s)
{
	return ++s->lookups <= SPF_LOOKUP_MAX;
}

/* a void answer: NXDOMAIN, or no records of the type (4.6.4) */
static bool
is_void(const struct ans *a)
{
	return a->rc == SPF_DNS_NXDOMAIN || (a->rc == SPF_DNS_OK && a->n == 0);
}

static bool
count_void(struct spf *s, const struct ans *a)
{
	return !is_void(a) || ++s->voids <= SPF_VOID_MAX;
}

static bool
has_p(const char *spec, size_t len)
{
	size_t k;

	for (k = 0; k + 2 < len; k++)
		if (spec[k] == '%' && spec[k + 1] == '{' &&
		    (spec[k + 2] | 0x20) == 'p')
			return true;
	return false;
}

static void
reverse_name(const struct spf_ip *ip, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;
	int k;

	if (!ip->v6) {
		str_fmt_cut(out, SPF_NAME_MAX + 1, "%u.%u.%u.%u.in-addr.arpa",
		    ip->addr[3], ip->addr[2], ip->addr[1], ip->addr[0]);
		return;
	}
	for (k = 15; k >= 0; k--) {
		out[n++] = hex[ip->addr[k] & 15];
		out[n++] = '.';
		out[n++] = hex[ip->addr[k] >> 4];
		out[n++] = '.';
	}
	memcpy(out + n, "ip6.arpa", 9);
}

static bool
addr_in(const struct spf *s, const struct ans *a, int cidr)
{
	unsigned bits = s->req.ip.v6 ? 128 : 32;
	size_t k;

	if (cidr >= 0)
		bits = (unsigned)cidr;
	for (k = 0; k < a->n; k++)
		if (spf_ip_match(&s->req.ip, (const uint8_t *)a->rec[k], bits))
			return true;
	return false;
}

static bool
domain_under(const char *name, const char *target)
{
	size_t n = strlen(name), t = strlen(target);

	if (n == t)
		return strcmp(name, target) == 0;
	return n > t && name[n - t - 1] == '.' &&
	       strcmp(name + n - t, target) == 0;
}

/*
 * The validated names of the client (RFC 7208 5.5): *out_n names into
 * out; R_NEED while answers are missing, else 0.  A DNS error on the
 * PTR query gives none; one on an address query skips that name.
 */
static int
validated_names(struct spf *s, const char **out, size_t *out_n)
{
	char rev[SPF_NAME_MAX + 1];
	enum spf_qtype t = s->req.ip.v6 ? SPF_Q_AAAA : SPF_Q_A;
	const struct ans *pa, *aa;
	size_t k;

	*out_n = 0;
	reverse_name(&s->req.ip, rev);
	if ((pa = lookup(s, SPF_Q_PTR, rev, P_SPF)) == NULL)
		return R_NEED;
	for (k = 0; pa->rc == SPF_DNS_OK && k < pa->n; k++) {
		if (!name_ok(pa->rec[k]))
			continue;
		if ((aa = lookup(s, t, pa->rec[k], P_SPF)) == NULL)
			return R_NEED;
		if (aa->rc == SPF_DNS_OK && addr_in(s, aa, -1))
			out[(*out_n)++] = pa->rec[k];
	}
	return 0;
}

/* %{p} (RFC 7208 7.3): the name equal to d, else one under d, else any */
static int
p_value(struct spf *s, const char *d, const char **p)
{
	const char *names[SPF_PTR_MAX];
	size_t n, k;

	*p = NULL;
	if (validated_names(s, names, &n) == R_NEED)
		return R_NEED;
	for (k = 0; k < n && *p == NULL; k++)
		if (strcmp(names[k], d) == 0)
			*p = names[k];
	for (k = 0; k < n && *p == NULL; k++)
		if (domain_under(names[k], d))
			*p = names[k];
	if (*p == NULL && n > 0)
		*p = names[0];
	return 0;
}

/* the target name of a term: its expanded domain-spec, or d */
static int
target(struct spf *s, const char *d, const char *spec, size_t len,
    char out[SPF_NAME_MAX + 1])
{
	const char *p = NULL;
	struct buf b;
	int r;

	if (spec == NULL)
		return str_copy(out, SPF_NAME_MAX + 1, d, strlen(d)) == 0
			   ? 0
			   : perm(s, "bad domain");
	if (has_p(spec, len) && p_value(s, d, &p) == R_NEED)
		return R_NEED;
	buf_init(&b, SPF_EXPAND_WINDOW * 2);
	r = spf_expand(&s->req, d, p, spec, len, true, false, &b);
	if (r == 0)
		name_norm(b.data != NULL ? b.data : "", b.len, out);
	buf_free(&b);
	return r == 0 ? 0 : perm(s, "bad macro");
}

static int check_host(struct spf *s, const char *d, unsigned depth, bool top);

enum { M_MATCH = 100, M_NOMATCH };

static int
mech_include(struct spf *s, const char *name, unsigned depth)
{
	int r = check_host(s, name, depth + 1, false);

	switch (r) {
	case SPF_PASS:
		return M_MATCH;
	case SPF_FAIL:
	case SPF_SOFTFAIL:
	case SPF_NEUTRAL:
		return M_NOMATCH;
	case SPF_NONE: /* RFC 7208 5.2 */
		return perm(s, "include without a record");
	default:
		return r;
	}
}

static int
mech_mx(struct spf *s, const char *name, const struct spf_term *t)
{
	enum spf_qtype at = s->req.ip.v6 ? SPF_Q_AAAA : SPF_Q_A;
	const struct ans *mx, *a;
	size_t k;

	if ((mx = lookup(s, SPF_Q_MX, name, P_SPF)) == NULL)
		return R_NEED;
	if (mx->rc == SPF_DNS_TEMP)
		return temp(s, "MX", name);
	if (!count_void(s, mx))
		return perm(s, "too many void lookups");
	/* RFC 7208 4.6.4: more than 10 MX names is permerror */
	if (mx->total > SPF_MX_MAX)
		return perm(s, "more than 10 MX names");
	for (k = 0; mx->rc == SPF_DNS_OK && k < mx->n; k++) {
		if (!name_ok(mx->rec[k]))
			continue;
		if ((a = lookup(s, at, mx->rec[k], P_SPF)) == NULL)
			return R_NEED;
		if (a->rc == SPF_DNS_TEMP)
			return temp(s, "address", mx->rec[k]);
		if (addr_in(s, a, s->req.ip.v6 ? t->c6 : t->c4))
			return M_MATCH;
	}
	return M_NOMATCH;
}

static int
mech_ptr(struct spf *s, const char *name)
{
	const char *names[SPF_PTR_MAX];
	char rev[SPF_NAME_MAX + 1];
	const struct ans *pa;
	size_t n, k;

	reverse_name(&s->req.ip, rev);
	if ((pa = lookup(s, SPF_Q_PTR, rev, P_SPF)) == NULL)
		return R_NEED;
	if (pa->rc != SPF_DNS_TEMP && !count_void(s, pa))
		return perm(s, "too many void lookups");
	if (validated_names(s, names, &n) == R_NEED)
		return R_NEED;
	for (k = 0; k < n; k++)
		if (domain_under(names[k], name))
			return M_MATCH;
	return M_NOMATCH;
}

/* a, exists: the address query of the name */
static int
mech_addr(struct spf *s, const char *name, const struct spf_term *t)
{
	enum spf_qtype at = s->req.ip.v6 ? SPF_Q_AAAA : SPF_Q_A;
	const struct ans *a;

	if (t->kind == SPF_M_EXISTS)
		at = SPF_Q_A; /* RFC 7208 5.7: always A */
	if ((a = lookup(s, at, name, P_SPF)) == NULL)
		return R_NEED;
	if (a->rc == SPF_DNS_TEMP)
		return temp(s, "address", name);
	if (!count_void(s, a))
		return perm(s, "too many void lookups");
	if (t->kind == SPF_M_EXISTS)
		return a->n > 0 ? M_MATCH : M_NOMATCH;
	return addr_in(s, a, s->req.ip.v6 ? t->c6 : t->c4) ? M_MATCH
							   : M_NOMATCH;
}

static int
mech_eval(
    struct spf *s, const char *d, const struct spf_term *t, unsigned depth)
{
	char name[SPF_NAME_MAX + 1];
	int r;

	switch (t->kind) {
	case SPF_M_ALL:
		return M_MATCH;
	case SPF_M_IP4:
	case SPF_M_IP6:
		if (t->net.v6 != s->req.ip.v6)
			return M_NOMATCH;
		return spf_ip_match(&s->req.ip, t->net.addr,
			   t->c4 >= 0 ? (unsigned)t->c4
				      : (t->net.v6 ? 128 : 32))
			   ? M_MATCH
			   : M_NOMATCH;
	default:
		break;
	}
	if (!count_lookup(s))
		return perm(s, "more than 10 DNS lookups");
	if ((r = target(s, d, t->spec, t->spec_len, name)) != 0)
		return r;
	/* a name that cannot be queried (label over 63...) matches nothing */
	if (t->kind != SPF_M_INCLUDE && !name_ok(name))
		return M_NOMATCH;
	switch (t->kind) {
	case SPF_M_INCLUDE:
		return mech_include(s, name, depth);
	case SPF_M_MX:
		return mech_mx(s, name, t);
	case SPF_M_PTR:
		return mech_ptr(s, name);
	default:
		return mech_addr(s, name, t);
	}
}

static enum spf_result
qual_result(char q)
{
	switch (q) {
	case '-':
		return SPF_FAIL;
	case '~':
		return SPF_SOFTFAIL;
	case '?':
		return SPF_NEUTRAL;
	default:
		return SPF_PASS;
	}
}

/* the record of d: R_GOT with it in *out, or a result (none, errors) */
static int
fetch_record(struct spf *s, const char *d, const struct ans **out)
{
	const struct ans *a;

	if (!name_ok(d))
		return SPF_NONE;
	if ((a = lookup(s, SPF_Q_TXT, d, P_SPF)) == NULL)
		return R_NEED;
	if (a->rc == SPF_DNS_TEMP)
		return temp(s, "TXT", d);
	if (a->rc == SPF_DNS_NXDOMAIN || a->total == 0)
		return SPF_NONE;
	/* RFC 7208 4.5: more than one record is permerror */
	if (a->total > 1)
		return perm(s, "more than one SPF record");
	if (a->oversize)
		return perm(s, "SPF record too long");
	*out = a;
	return R_GOT;
}

static void
note_exp(struct spf *s, const char *d, const struct spf_term *exp)
{
	s->exp_spec[0] = '\0';
	if (exp == NULL)
		return;
	copy_fits(s->exp_spec, sizeof(s->exp_spec), exp->spec, exp->spec_len);
	copy_fits(s->exp_domain, sizeof(s->exp_domain), d, strlen(d));
}

static int
record_eval(struct spf *s, const char *d, const struct spf_parsed *p,
    unsigned depth, bool top)
{
	char name[SPF_NAME_MAX + 1];
	size_t k;
	int r;

	/* exp= of the record that decides, which a redirect replaces (6.2) */
	if (top)
		note_exp(s, d, p->exp);
	for (k = 0; k < p->n; k++) {
		const struct spf_term *t = &p->terms[k];

		if (t->kind == SPF_MOD_REDIRECT || t->kind == SPF_MOD_EXP)
			continue;
		r = mech_eval(s, d, t, depth);
		if (r == M_NOMATCH)
			continue;
		if (r != M_MATCH)
			return r;
		if (top)
			str_fmt_cut(s->mech, sizeof(s->mech), "%.*s",
			    (int)t->text_len, t->text);
		return qual_result(t->qual);
	}
	if (p->redirect == NULL)
		return SPF_NEUTRAL;
	if (!count_lookup(s))
		return perm(s, "more than 10 DNS lookups");
	if ((r = target(
		 s, d, p->redirect->spec, p->redirect->spec_len, name)) != 0)
		return r;
	r = check_host(s, name, depth + 1, top);
	/* RFC 7208 6.1: a redirect to a domain without a record */
	return r == SPF_NONE ? perm(s, "redirect without a record") : r;
}

static int
check_host(struct spf *s, const char *d, unsigned depth, bool top)
{
	const struct ans *a = NULL;
	struct spf_parsed *p;
	char err[64];
	int r;

	/* unreachable within the lookup limit: a guard, not a rule */
	if (depth > SPF_LOOKUP_MAX + 1)
		return perm(s, "nesting too deep");
	if ((r = fetch_record(s, d, &a)) != R_GOT)
		return r;
	p = xmalloc(sizeof(*p));
	if (spf_record_parse(a->rec[0], a->len[0], p, err, sizeof(err)) != 0)
		r = perm(s, err);
	else
		r = record_eval(s, d, p, depth, top);
	free(p);
	return r;
}

/* the explanation of a fail (RFC 7208 6.2): any problem means none */
static int
explain(struct spf *s)
{
	char name[SPF_NAME_MAX + 1];
	const struct ans *a;
	const char *p = NULL;
	struct buf b;
	int r;

	r = target(s, s->exp_domain, s->exp_spec, strlen(s->exp_spec), name);
	if (r != 0)
		return r;
	if (!name_ok(name))
		return 0;
	if ((a = lookup(s, SPF_Q_TXT, name, P_EXP)) == NULL)
		return R_NEED;
	if (a->rc != SPF_DNS_OK || a->total != 1 || a->oversize)
		return 0;
	if (has_p(a->rec[0], a->len[0]) &&
	    p_value(s, s->exp_domain, &p) == R_NEED)
		return R_NEED;
	buf_init(&b, SPF_EXPAND_WINDOW * 2);
	if (spf_expand(&s->req, s->exp_domain, p, a->rec[0], a->len[0], false,
		true, &b) == 0 &&
	    b.data != NULL)
		str_fmt_cut(s->exp, sizeof(s->exp), "%.*s", (int)b.len, b.data);
	buf_free(&b);
	return 0;
}

/* one run of check_host() against the answers so far */
static void
spf_run(struct spf *s)
{
	int r;

	s->lookups = s->voids = 0;
	s->mech[0] = s->problem[0] = s->exp[0] = s->exp_spec[0] = '\0';
	r = check_host(s, s->domain, 0, true);
	if (r == R_NEED || s->pending)
		return;
	s->result = (enum spf_result)r;
	if (s->result != SPF_FAIL || s->exp_spec[0] == '\0')
		return;
	r = explain(s);
	if (r == SPF_PERMERROR || r == SPF_TEMPERROR)
		s->exp[0] = '\0';
}

enum spf_step
spf_next(struct spf *s, struct spf_query *q_out)
{
	if (!s->done && !s->pending) {
		spf_run(s);
		/* the table is full: the check cannot go on (never within
		   the RFC's limits) */
		if (s->pending && s->nans == SPF_QUERIES_MAX) {
			s->pending = false;
			s->result =
			    (enum spf_result)perm(s, "too many queries");
			s->done = true;
		} else if (!s->pending)
			s->done = true;
	}
	if (s->done)
		return SPF_STEP_DONE;
	*q_out = s->need;
	return SPF_STEP_QUERY;
}

void
spf_timeout(struct spf *s)
{
	if (s->done)
		return;
	s->pending = false;
	s->done = true;
	s->result = SPF_TEMPERROR;
	s->mech[0] = s->exp[0] = '\0';
	str_fmt_cut(s->problem, sizeof(s->problem), "DNS timeout");
}

/* ---- the object -------------------------------------------------------- */

static void
copy_in(char *out, size_t outlen, const char *in, const char *dflt)
{
	/* dflt ("unknown") fits every buffer this is called with */
	if (in == NULL || str_copy(out, outlen, in, strlen(in)) != 0)
		str_fmt_cut(out, outlen, "%s", dflt);
}

struct spf *
spf_new(const struct spf_request *req)
{
	static const uint8_t mapped[12] = {
	    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	struct spf *s;

	if (req->domain == NULL || req->sender == NULL ||
	    strlen(req->sender) > SPF_SENDER_MAX)
		return NULL;
	s = xcalloc(1, sizeof(*s));
	s->req = *req;
	/* an IPv4-mapped client is an IPv4 client (RFC 7208 5 / 4291) */
	if (s->req.ip.v6 && memcmp(s->req.ip.addr, mapped, 12) == 0) {
		memmove(s->req.ip.addr, s->req.ip.addr + 12, 4);
		memset(s->req.ip.addr + 4, 0, 12);
		s->req.ip.v6 = false;
	}
	name_norm(req->domain,
	    strlen(req->domain) > SPF_NAME_MAX + 1 ? 0 : strlen(req->domain),
	    s->domain);
	s->sender = xstrdup(req->sender);
	copy_in(s->helo, sizeof(s->helo), req->helo, "unknown");
	copy_in(s->receiver, sizeof(s->receiver), req->receiver, "unknown");
	s->req.domain = s->domain;
	s->req.sender = s->sender;
	s->req.helo = s->helo;
	s->req.receiver = s->receiver;
	/* RFC 7208 4.3: a malformed or single-label domain gives none */
	if (!name_ok(s->domain) || strchr(s->domain, '.') == NULL) {
		s->result = SPF_NONE;
		s->done = true;
	}
	return s;
}

void
spf_free(struct spf *s)
{
	size_t k, j;

	if (s == NULL)
		return;
	for (k = 0; k < s->nans; k++) {
		for (j = 0; j < s->ans[k]->n; j++)
			free(s->ans[k]->rec[j]);
		free(s->ans[k]);
	}
	free(s->sender);
	free(s);
}

enum spf_result
spf_result(const struct spf *s)
{
	return s->result;
}

const char *
spf_explanation(const struct spf *s)
{
	return s->done && s->result == SPF_FAIL ? s->exp : "";
}

const char *
spf_mechanism(const struct spf *s)
{
	return s->done ? s->mech : "";
}

const char *
spf_problem(const struct spf *s)
{
	return s->done && (s->result == SPF_PERMERROR ||
			      s->result == SPF_TEMPERROR)
		   ? s->problem
		   : "";
}

size_t
spf_queries(const struct spf *s)
{
	return s->nqueries;
}

/* ---- names and the Received-SPF field ---------------------------------- */

const char *
spf_result_name(enum spf_result r)
{
	static const char *const names[] = {"none", "neutral", "pass", "fail",
	    "softfail", "temperror", "permerror"};

	return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r]
							      : "permerror";
}

const char *
spf_authres_property(enum spf_identity id)
{
	return id == SPF_ID_HELO ? "smtp.helo" : "smtp.mailfrom";
}

const char *
spf_authres_value(const struct spf *s)
{
	return s->req.identity == SPF_ID_HELO ? s->helo : s->sender;
}

/* a value in the header: a hostile 64 kB sender is cut, not copied */
#define SPF_HEADER_VALUE_MAX 256

/* a value: a dot-atom as is, anything else as a quoted-string (RFC 5322) */
static int
rs_value(struct buf *out, const char *v)
{
	const char *atext = "!#$%&'*+-/=?^_`{|}~.";
	size_t k, n = strnlen(v, SPF_HEADER_VALUE_MAX);
	bool atom = n > 0 && v[0] != '.' && v[n - 1] != '.';

	for (k = 0; k < n && atom; k++)
		atom = (v[k] >= 'a' && v[k] <= 'z') ||
		       (v[k] >= 'A' && v[k] <= 'Z') ||
		       (v[k] >= '0' && v[k] <= '9') ||
		       strchr(atext, v[k]) != NULL;
	if (atom)
		return buf_append(out, v, n);
	if (buf_append(out, "\"", 1) != 0)
		return -1;
	for (k = 0; k < n; k++) {
		unsigned char c = (unsigned char)v[k];

		if (c < 0x20 || c > 0x7e)
			continue; /* no controls or 8-bit in a header */
		if ((c == '"' || c == '\\') && buf_append(out, "\\", 1) != 0)
			return -1;
		if (buf_append(out, v + k, 1) != 0)
			return -1;
	}
	return buf_append(out, "\"", 1);
}

static int
rs_comment(struct buf *out, const struct spf *s, const char *ip)
{
	const char *who = s->req.identity == SPF_ID_HELO ? "helo" : "domain";
	const char *verb;

	switch (s->result) {
	case SPF_PASS:
		verb = "designates %s as permitted sender";
		break;
	case SPF_FAIL:
		verb = "does not designate %s as permitted sender";
		break;
	case SPF_SOFTFAIL:
		verb = "discourages use of %s as permitted sender";
		break;
	case SPF_NEUTRAL:
		verb = "neither permits nor denies %s";
		break;
	case SPF_NONE:
		verb = "publishes no SPF record (client %s)";
		break;
	case SPF_TEMPERROR:
		verb = "could not be checked: temporary DNS error (client %s)";
		break;
	default:
		verb = "has an SPF record in error (client %s)";
	}
	if (buf_printf(out, " (%s: %s of ", s->receiver, who) != 0)
		return -1;
	/* sender text is the client's: only printable, no parentheses */
	for (const char *c = s->sender;
	     *c != '\0' && c < s->sender + SPF_HEADER_VALUE_MAX; c++)
		if (*c > 0x20 && *c < 0x7f && *c != '(' && *c != ')' &&
		    *c != '\\' && buf_append(out, c, 1) != 0)
			return -1;
	if (buf_append(out, " ", 1) != 0 || buf_printf(out, verb, ip) != 0)
		return -1;
	return buf_append(out, ")", 1);
}

int
spf_received_spf(struct buf *out, const struct spf *s)
{
	char ip[64];

	ip[spf_ip_text(ip, &s->req.ip)] = '\0';
	if (buf_append_str(out, spf_result_name(s->result)) != 0 ||
	    rs_comment(out, s, ip) != 0 ||
	    buf_printf(out, "\r\n\tclient-ip=%s;\r\n\tenvelope-from=", ip) !=
		0 ||
	    rs_value(out, s->sender) != 0 ||
	    buf_append_str(out, ";\r\n\thelo=") != 0 ||
	    rs_value(out, s->helo) != 0 ||
	    buf_append_str(out, ";\r\n\treceiver=") != 0 ||
	    rs_value(out, s->receiver) != 0 ||
	    buf_printf(out, ";\r\n\tidentity=%s",
		s->req.identity == SPF_ID_HELO ? "helo" : "mailfrom") != 0)
		return -1;
	if (s->mech[0] != '\0' &&
	    (buf_append_str(out, ";\r\n\tmechanism=") != 0 ||
		rs_value(out, s->mech) != 0))
		return -1;
	if (spf_problem(s)[0] != '\0' &&
	    (buf_append_str(out, ";\r\n\tproblem=") != 0 ||
		rs_value(out, s->problem) != 0))
		return -1;
	return buf_append_str(out, ";");
}
