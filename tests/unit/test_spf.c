/*
 * Unit tests for src/mailauth/spf*.c (RFC 7208): the record syntax table,
 * the macro table (every example of RFC 7208 7.4), the evaluator on the
 * cases of spf_cases.json (zone and query given as data, the same file
 * pyspf is checked on by check_spf.py, which runs here as one case), and
 * the pieces around: limits, bounded expansion, the driving protocol,
 * Received-SPF.
 *
 * Record texts and macro strings are parsed from t_guard() copies, so a
 * one-octet over-read faults.
 */
#include "t.h"
#include "t_pycheck.h"
#include "cli/cli.h"
#include "mailauth/spf.h"
#include "mailauth/spf_int.h"

/* ---- record syntax ----------------------------------------------------- */

struct rec_row {
	const char *rec;
	bool ok;
};

static const struct rec_row rec_rows[] = {
    {"v=spf1", true},
    {"v=spf1 ", true},
    {"v=spf1   -all  ", true},
    {"V=SPF1 MX -ALL", true},
    {"v=spf1 +all", true},
    {"v=spf1 ?all ~all -all +all", true},
    {"v=spf1 a mx ptr", true},
    {"v=spf1 a/24 mx//64 a:x.example/24//64 mx:%{d}/30", true},
    {"v=spf1 a:mail.example.com.", true},
    {"v=spf1 ip4:192.0.2.0/24 ip4:192.0.2.1 ip4:0.0.0.0/0", true},
    {"v=spf1 ip6:2001:db8::/32 ip6:::1 ip6:::ffff:192.0.2.1/128", true},
    {"v=spf1 ip6:1:2:3:4:5:6:7:8", true},
    {"v=spf1 include:_spf.example.com exists:%{i}.bl.example", true},
    {"v=spf1 exists:%{ir}.%{l1r+-}.%{d} -all", true},
    {"v=spf1 exists:%{L}.%{D2R}.x.example", true},
    {"v=spf1 exists:%%%_%-.example.com", true},
    {"v=spf1 redirect=_spf.example.com", true},
    {"v=spf1 -all exp=explain._spf.%{d}", true},
    {"v=spf1 foo=bar moo.cow-far_out=%{d} x=", true},
    {"v=spf1 ptr:example.com -all", true},
    {"v=spf1 a:1-2.example.1-2", true},
    {"v=spf1 exists:%{d}", true},
    {"v=spf10", false},
    {"v=spf1-all", false},
    {"spf1 -all", false},
    {"", false},
    {"v=spf1 foo", false},
    {"v=spf1 =a", false},
    {"v=spf1 -all:x", false},
    {"v=spf1 all/24", false},
    {"v=spf1 a:", false},
    {"v=spf1 include", false},
    {"v=spf1 include:", false},
    {"v=spf1 exists", false},
    {"v=spf1 a:localhost", false},
    {"v=spf1 a:example.123", false},
    {"v=spf1 a:example.com-", false},
    {"v=spf1 a:example.com:8080", false},
    {"v=spf1 a/33", false},
    {"v=spf1 a//129", false},
    {"v=spf1 a/024", false},
    {"v=spf1 ip4:192.0.2.256", false},
    {"v=spf1 ip4:192.0.02.1", false},
    {"v=spf1 ip4:192.0.2", false},
    {"v=spf1 ip4:192.0.2.1/33", false},
    {"v=spf1 ip4:192.0.2.1//64", false},
    {"v=spf1 ip4:2001:db8::1", false},
    {"v=spf1 ip6:192.0.2.1", false},
    {"v=spf1 ip6:2001:db8::/129", false},
    {"v=spf1 ip6:2001:db8:::1", false},
    {"v=spf1 ip6:1:2:3:4:5:6:7:8:9", false},
    {"v=spf1 ip6:1::2::3", false},
    {"v=spf1 ip6:12345::", false},
    {"v=spf1 ip4:", false},
    {"v=spf1 ptr/24", false},
    {"v=spf1 -redirect=x.example", false},
    {"v=spf1 redirect=a.example redirect=b.example", false},
    {"v=spf1 exp=a.example exp=b.example", false},
    {"v=spf1 redirect=", false},
    {"v=spf1 exists:%{x}.example.com", false},
    {"v=spf1 exists:%{d0}.example.com", false},
    {"v=spf1 exists:%{d}.example.com%", false},
    {"v=spf1 exists:%{d.example.com", false},
    {"v=spf1 exists:%{d|}.example.com", false},
    {"v=spf1 exists:%x.example.com", false},
    {"v=spf1 exists:%{c}.example.com", false},
    {"v=spf1 exists:%{r}.example.com", false},
    {"v=spf1 exists:%{t}.example.com", false},
    {"v=spf1 x=%{t}", false},
    {"v=spf1 a:ex\x01mple.com", false},
    {"v=spf1 a:ex\xc3\xa9mple.com", false},
    {"v=spf1\t-all", false},
    {"v=spf1 1x=y", false},
};

static void
test_record_syntax(void)
{
	size_t i;

	for (i = 0; i < sizeof(rec_rows) / sizeof(rec_rows[0]); i++) {
		const struct rec_row *r = &rec_rows[i];
		size_t n = strlen(r->rec), ml;
		void *m;
		const char *g = t_guard(r->rec, n, &m, &ml);
		char err[64] = "";

		t_case(r->rec);
		T_CHECK_INT(
		    spf_record_check(g, n, err, sizeof(err)) == 0, r->ok);
		T_CHECK(r->ok || err[0] != '\0');
		t_unguard(m, ml);
	}
	t_case("record: 256 terms ok, 257 too many");
	{
		struct buf b;
		char err[64];
		int k;

		buf_init(&b, 8192);
		T_CHECK(buf_append_str(&b, "v=spf1") == 0);
		for (k = 0; k < SPF_TERMS_MAX; k++)
			T_CHECK(buf_append_str(&b, " a") == 0);
		T_CHECK(spf_record_check(b.data, b.len, err, sizeof(err)) == 0);
		T_CHECK(buf_append_str(&b, " a") == 0);
		T_CHECK(spf_record_check(b.data, b.len, err, sizeof(err)) != 0);
		buf_free(&b);
	}
	t_case("record: a NUL is not a qualifier");
	{
		char err[64];

		T_CHECK(spf_record_check(
			    "v=spf1 \0all", 11, err, sizeof(err)) != 0);
		T_CHECK(spf_record_check(
			    "v=spf1 \x7f-all", 11, err, sizeof(err)) != 0);
		T_CHECK(
		    spf_record_check("v=spf1 -all", 11, err, sizeof(err)) == 0);
	}
	t_case("record: over SPF_RECORD_MAX");
	{
		char *big = malloc(SPF_RECORD_MAX + 2), err[64];

		memcpy(big, "v=spf1", 6);
		memset(big + 6, ' ', SPF_RECORD_MAX + 2 - 6);
		T_CHECK(spf_record_check(
			    big, SPF_RECORD_MAX, err, sizeof(err)) == 0);
		T_CHECK(spf_record_check(
			    big, SPF_RECORD_MAX + 1, err, sizeof(err)) != 0);
		free(big);
	}
}

/* ---- macros: RFC 7208 7.4, every example ------------------------------- */

struct mac_row {
	const char *in;
	const char *ip;
	const char *want; /* NULL: a syntax error */
	bool exp;
};

static const struct mac_row mac_rows[] = {
    {"%{s}", "192.0.2.3", "strong-bad@email.example.com", false},
    {"%{o}", "192.0.2.3", "email.example.com", false},
    {"%{d}", "192.0.2.3", "email.example.com", false},
    {"%{d4}", "192.0.2.3", "email.example.com", false},
    {"%{d3}", "192.0.2.3", "email.example.com", false},
    {"%{d2}", "192.0.2.3", "example.com", false},
    {"%{d1}", "192.0.2.3", "com", false},
    {"%{dr}", "192.0.2.3", "com.example.email", false},
    {"%{d2r}", "192.0.2.3", "example.email", false},
    {"%{l}", "192.0.2.3", "strong-bad", false},
    {"%{l-}", "192.0.2.3", "strong.bad", false},
    {"%{lr}", "192.0.2.3", "strong-bad", false},
    {"%{lr-}", "192.0.2.3", "bad.strong", false},
    {"%{l1r-}", "192.0.2.3", "strong", false},
    {"%{ir}.%{v}._spf.%{d2}", "192.0.2.3", "3.2.0.192.in-addr._spf.example.com",
	false},
    {"%{lr-}.lp._spf.%{d2}", "192.0.2.3", "bad.strong.lp._spf.example.com",
	false},
    {"%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "192.0.2.3",
	"bad.strong.lp.3.2.0.192.in-addr._spf.example.com", false},
    {"%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "192.0.2.3",
	"3.2.0.192.in-addr.strong.lp._spf.example.com", false},
    {"%{d2}.trusted-domains.example.net", "192.0.2.3",
	"example.com.trusted-domains.example.net", false},
    {"%{ir}.%{v}._spf.%{d2}", "2001:db8::cb01",
	"1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6."
	"_spf.example.com",
	false},
    /* beyond 7.4 */
    {"%{p}", "192.0.2.3", "mx.example.org", false},
    {"%{p2}.x", "192.0.2.3", "example.org.x", false},
    {"%{h}", "192.0.2.3", "helo.example.org", false},
    {"%{i}", "192.0.2.3", "192.0.2.3", false},
    {"%{v}", "2001:db8::cb01", "ip6", false},
    {"%{c}", "2001:db8::cb01", "2001:db8::cb01", true},
    {"%{c}", "2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1", true},
    {"%{c}", "2001:0:0:1::1", "2001:0:0:1::1", true},
    {"%{c}", "::1", "::1", true},
    {"%{c}", "1::", "1::", true},
    {"%{c}", "192.0.2.3", "192.0.2.3", true},
    {"%{r}", "192.0.2.3", "mx.receiver.example", true},
    {"%{t}", "192.0.2.3", "1700000000", true},
    {"%{c}", "192.0.2.3", NULL, false},
    {"%{S}", "192.0.2.3", "strong-bad%40email.example.com", false},
    {"%{L}", "192.0.2.3", "strong-bad", false},
    {"%{s+}", "192.0.2.3", "strong-bad@email.example.com", false},
    {"%{s@}", "192.0.2.3", NULL, false},
    {"%{s1@}", "192.0.2.3", NULL, false},
    {"%{o99999999999}", "192.0.2.3", "email.example.com", false},
    {"%{d0}", "192.0.2.3", NULL, false},
    {"%{l-.}", "192.0.2.3", "strong.bad", false},
    {"%{lR-}", "192.0.2.3", "bad.strong", false},
    {"a%%b%_c%-d", "192.0.2.3", "a%b c%20d", false},
    {"50%", "192.0.2.3", NULL, false},
    {"%{", "192.0.2.3", NULL, false},
    {"%{d", "192.0.2.3", NULL, false},
    {"%{}", "192.0.2.3", NULL, false},
    {"%(d)", "192.0.2.3", NULL, false},
    {"%{d}.", "192.0.2.3", "email.example.com", false},
    {"", "192.0.2.3", "", false},
};

static void
mac_req(struct spf_request *req, const char *ip)
{
	memset(req, 0, sizeof(*req));
	T_CHECK(spf_ip_parse(ip, strlen(ip), &req->ip) == 0);
	req->domain = "email.example.com";
	req->sender = "strong-bad@email.example.com";
	req->helo = "helo.example.org";
	req->receiver = "mx.receiver.example";
	req->now = 1700000000;
}

static void
test_macros(void)
{
	size_t i;

	for (i = 0; i < sizeof(mac_rows) / sizeof(mac_rows[0]); i++) {
		const struct mac_row *r = &mac_rows[i];
		struct spf_request req;
		size_t n = strlen(r->in), ml;
		void *m;
		const char *g = t_guard(r->in, n, &m, &ml);
		struct buf b;
		/* a domain, except for text with a final dot to keep */
		bool dom = strchr(r->in, '%') != NULL && !r->exp;
		int rc;

		t_case(r->in);
		mac_req(&req, r->ip);
		buf_init(&b, 4096);
		rc = spf_expand(&req, "email.example.com", "mx.example.org", g,
		    n, dom, r->exp, &b);
		if (r->want == NULL)
			T_CHECK(rc != 0);
		else {
			T_CHECK(rc == 0);
			T_CHECK_STR(b.data != NULL ? b.data : "", r->want);
		}
		buf_free(&b);
		t_unguard(m, ml);
	}
}

/* A local-part of 10 kB: the expansion stays bounded and is cut from the
   left on label boundaries to 253 octets (RFC 7208 7.3). */
static void
test_macro_bounds(void)
{
	struct spf_request req;
	char *sender = malloc(20100);
	struct buf b;
	size_t k;

	t_case("macro: %{l} of 10 kB, labels, cut to <= 253 on a label");
	mac_req(&req, "192.0.2.3");
	for (k = 0; k < 1000; k++)
		memcpy(sender + k * 10, "abcdefghi.", 10);
	memcpy(sender + 9999, "@email.example.com", 19);
	req.sender = sender;
	buf_init(&b, 4096);
	T_CHECK(spf_expand(&req, "email.example.com", NULL, "%{l}.%{l}.%{d}",
		    14, true, false, &b) == 0);
	T_CHECK(b.len <= SPF_NAME_MAX);
	T_CHECK(b.len > SPF_NAME_MAX - 10);
	T_CHECK(b.data != NULL && b.data[0] == 'a');
	T_CHECK(b.len > 18 &&
		strcmp(b.data + b.len - 18, ".email.example.com") == 0);
	buf_free(&b);

	t_case("macro: 500 x %{l} of 10 kB stays bounded");
	{
		char spec[2000];

		for (k = 0; k < 500; k++)
			memcpy(spec + k * 4, "%{l}", 4);
		memcpy(spec + 2000 - 4, "%{d}", 4);
		memset(sender, 'a', 10000);
		memcpy(sender + 10000, "@email.example.com", 19);
		buf_init(&b, 4096);
		T_CHECK(spf_expand(&req, "email.example.com", NULL, spec,
			    sizeof(spec), true, false, &b) == 0);
		/* one label of 5 MB: nothing to cut on, the window's tail */
		T_CHECK(b.len <= 4096);
		buf_free(&b);
		buf_init(&b, 4096);
		T_CHECK(spf_expand(&req, "email.example.com", NULL, spec,
			    sizeof(spec), false, true, &b) == 0);
		T_CHECK(b.len <= 4096 && b.data[0] == 'a');
		buf_free(&b);
	}
	free(sender);
}

/* ---- the evaluator on spf_cases.json ----------------------------------- */

static const char *const qtype_names[] = {"TXT", "A", "AAAA", "MX", "PTR"};

/* type t of name in the case's zone (add first, then the shared zone);
 *exists: the name is in either */
static const struct json_node *
zone_get(const struct json_node *zone, const struct json_node *add,
    const char *name, const char *type, bool *exists)
{
	const struct json_node *a = add ? json_get(add, name) : NULL;
	const struct json_node *z = json_get(zone, name);
	const struct json_node *v = a ? json_get(a, type) : NULL;

	*exists = a != NULL || z != NULL;
	return v != NULL ? v : (z ? json_get(z, type) : NULL);
}

static bool
zone_temp(const struct json_node *zone, const struct json_node *add,
    const char *name, const char *type)
{
	bool ex;
	const struct json_node *t = zone_get(zone, add, name, "TEMP", &ex), *c;

	for (c = t ? t->child : NULL; c != NULL; c = c->next)
		if (c->type == JSON_STRING && strcmp(c->str, type) == 0)
			return true;
	return false;
}

#define RR_MAX 64

/* answer q from the zone; false if the zone is malformed */
static bool
zone_answer(struct spf *s, const struct spf_query *q,
    const struct json_node *zone, const struct json_node *add)
{
	struct spf_rr rr[RR_MAX];
	struct spf_ip ips[RR_MAX];
	const char *type = qtype_names[q->type];
	const struct json_node *v, *c, *str;
	size_t n = 0;
	bool exists;

	if (zone_temp(zone, add, q->name, type))
		return spf_answer(s, SPF_DNS_TEMP, NULL, 0) == 0;
	v = zone_get(zone, add, q->name, type, &exists);
	if (!exists)
		return spf_answer(s, SPF_DNS_NXDOMAIN, NULL, 0) == 0;
	for (c = v ? v->child : NULL; c != NULL && n < RR_MAX; c = c->next) {
		switch (q->type) {
		case SPF_Q_TXT:
			for (str = c->child; str != NULL && n < RR_MAX;
			     str = str->next) {
				rr[n].data = str->str;
				rr[n].len = str->len;
				rr[n++].txt_continue = str != c->child;
			}
			break;
		case SPF_Q_MX:
			if (c->child == NULL || c->child->next == NULL)
				return false;
			rr[n].data = c->child->next->str;
			rr[n].len = c->child->next->len;
			rr[n++].txt_continue = false;
			break;
		case SPF_Q_PTR:
			rr[n].data = c->str;
			rr[n].len = c->len;
			rr[n++].txt_continue = false;
			break;
		default:
			if (spf_ip_parse(c->str, c->len, &ips[n]) != 0)
				return false;
			rr[n].data = ips[n].addr;
			rr[n].len = ips[n].v6 ? 16 : 4;
			rr[n++].txt_continue = false;
		}
	}
	return spf_answer(s, SPF_DNS_OK, rr, n) == 0;
}

static const char *
str_or(const struct json_node *o, const char *key, const char *dflt)
{
	const char *v = json_get_str(o, key);

	return v != NULL ? v : dflt;
}

/* run case c; the check object is returned for more checks */
static struct spf *
run_case(const struct json_node *zones, const struct json_node *c)
{
	const struct json_node *zone = json_get(zones, json_get_str(c, "zone"));
	const struct json_node *add = json_get(c, "add");
	const char *ip = json_get_str(c, "ip"), *sender;
	struct spf_request req;
	struct spf_query q;
	struct spf *s;
	size_t steps = 0;

	memset(&req, 0, sizeof(req));
	sender = json_get_str(c, "sender");
	T_CHECK(zone != NULL && ip != NULL && sender != NULL);
	if (zone == NULL || ip == NULL || sender == NULL)
		return NULL;
	T_CHECK(spf_ip_parse(ip, strlen(ip), &req.ip) == 0);
	req.sender = sender;
	req.helo = str_or(c, "helo", "helo.example");
	req.receiver = str_or(c, "receiver", "receiver.example");
	req.domain = strrchr(sender, '@') + 1;
	if (strcmp(str_or(c, "identity", ""), "helo") == 0) {
		req.identity = SPF_ID_HELO;
		req.domain = req.helo;
	}
	s = spf_new(&req);
	T_CHECK(s != NULL);
	while (s != NULL && spf_next(s, &q) == SPF_STEP_QUERY) {
		T_CHECK(zone_answer(s, &q, zone, add));
		if (++steps > SPF_QUERIES_MAX) {
			T_CHECK(!"too many steps");
			break;
		}
	}
	return s;
}

static void
test_cases(void)
{
	const char *path = "tests/unit/spf_cases.json";
	const struct json_node *root, *cases, *c;
	struct json_doc *doc;
	char err[128];
	struct buf f;
	FILE *fp;
	size_t n, total = 0;
	char chunk[4096];

	t_case("spf_cases.json loads");
	buf_init(&f, 8u << 20);
	fp = fopen(path, "r");
	T_CHECK(fp != NULL);
	if (fp == NULL)
		return;
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		T_CHECK(buf_append(&f, chunk, n) == 0);
	fclose(fp);
	doc = json_parse(f.data, f.len, NULL, err, sizeof(err));
	T_CHECK(doc != NULL);
	if (doc == NULL) {
		buf_free(&f);
		return;
	}
	root = json_root(doc);
	cases = json_get(root, "cases");
	T_CHECK(cases != NULL && cases->len >= 60);
	for (c = cases ? cases->child : NULL; c != NULL; c = c->next) {
		const char *want = json_get_str(c, "result");
		const char *exp = json_get_str(c, "exp");
		struct spf *s;

		t_case(json_get_str(c, "name"));
		total++;
		s = run_case(json_get(root, "zones"), c);
		if (s == NULL)
			continue;
		T_CHECK_STR(spf_result_name(spf_result(s)), want);
		if (exp != NULL)
			T_CHECK_STR(spf_explanation(s), exp);
		/* done stays done */
		{
			struct spf_query q;

			T_CHECK(spf_next(s, &q) == SPF_STEP_DONE);
			T_CHECK(spf_answer(s, SPF_DNS_OK, NULL, 0) != 0);
		}
		spf_free(s);
	}
	printf("spf_cases.json: %zu cases\n", total);
	json_free(doc);
	buf_free(&f);
}

/* pyspf on the same file: check_spf.py exits 0 when every case goes as
   recorded (the same result, or the recorded, RFC-explained difference) */
static void
test_pyspf(void)
{
	struct t_pycheck pc;

	t_case("pyspf agrees on spf_cases.json (check_spf.py)");
	T_CHECK(t_pycheck_open(&pc, "test_spf", "check_spf.py", __FILE__));
	T_CHECK(t_pycheck_run(&pc, "all"));
	t_pycheck_close(&pc);
}

/* ---- driving, limits, output ------------------------------------------- */

/* a one-name zone for the hand-driven checks: answers[name] or NXDOMAIN */
struct mini {
	const char *name;
	enum spf_qtype type;
	const char *txt;
};

static struct spf *
drive(const char *domain, const char *ip, const struct mini *z, size_t nz,
    size_t *queries)
{
	struct spf_request req;
	struct spf_query q;
	struct spf *s;

	memset(&req, 0, sizeof(req));
	T_CHECK(spf_ip_parse(ip, strlen(ip), &req.ip) == 0);
	req.domain = domain;
	req.sender = "user@example.com";
	req.helo = "helo.example";
	s = spf_new(&req);
	*queries = 0;
	while (spf_next(s, &q) == SPF_STEP_QUERY) {
		size_t k;
		struct spf_rr rr = {NULL, 0, false};

		for (k = 0; k < nz; k++)
			if (strcmp(z[k].name, q.name) == 0 &&
			    z[k].type == q.type)
				break;
		(*queries)++;
		if (k == nz) {
			T_CHECK(spf_answer(s, SPF_DNS_NXDOMAIN, NULL, 0) == 0);
			continue;
		}
		rr.data = z[k].txt;
		rr.len = strlen(z[k].txt);
		T_CHECK(spf_answer(s, SPF_DNS_OK, &rr, 1) == 0);
	}
	return s;
}

static void
test_driving(void)
{
	struct mini z[] = {
	    {"example.com", SPF_Q_TXT,
		"v=spf1 exists:%{l}.%{l}.%{l}.%{l}.%{l}.x.example.com -all"},
	};
	struct spf_request req;
	struct spf_query q;
	struct spf *s;
	size_t nq;
	struct buf b;

	t_case("drive: a query is repeated until answered");
	memset(&req, 0, sizeof(req));
	T_CHECK(spf_ip_parse("192.0.2.1", 9, &req.ip) == 0);
	req.domain = "Example.COM.";
	req.sender = "user@example.com";
	s = spf_new(&req);
	T_CHECK(spf_next(s, &q) == SPF_STEP_QUERY);
	T_CHECK_STR(q.name, "example.com");
	T_CHECK_INT(q.type, SPF_Q_TXT);
	T_CHECK(spf_next(s, &q) == SPF_STEP_QUERY);
	T_CHECK_STR(q.name, "example.com");
	T_CHECK(spf_answer(s, SPF_DNS_TEMP, NULL, 0) == 0);
	T_CHECK(spf_answer(s, SPF_DNS_TEMP, NULL, 0) != 0);
	T_CHECK(spf_next(s, &q) == SPF_STEP_DONE);
	T_CHECK_INT(spf_result(s), SPF_TEMPERROR);
	T_CHECK(strstr(spf_problem(s), "example.com") != NULL);
	spf_free(s);
	spf_free(NULL);

	t_case("drive: the caller's time limit gives temperror");
	memset(&req, 0, sizeof(req));
	T_CHECK(spf_ip_parse("192.0.2.1", 9, &req.ip) == 0);
	req.domain = "example.com";
	req.sender = "user@example.com";
	s = spf_new(&req);
	T_CHECK(spf_next(s, &q) == SPF_STEP_QUERY);
	spf_timeout(s);
	T_CHECK(spf_next(s, &q) == SPF_STEP_DONE);
	T_CHECK_INT(spf_result(s), SPF_TEMPERROR);
	T_CHECK_STR(spf_problem(s), "DNS timeout");
	T_CHECK(spf_answer(s, SPF_DNS_OK, NULL, 0) != 0);
	spf_free(s);

	t_case("drive: no sender or domain is refused");
	memset(&req, 0, sizeof(req));
	T_CHECK(spf_new(&req) == NULL);

	t_case("drive: malformed domain is none without a query");
	memset(&req, 0, sizeof(req));
	req.sender = "x@a..b";
	req.domain = "a..b";
	s = spf_new(&req);
	T_CHECK(spf_next(s, &q) == SPF_STEP_DONE);
	T_CHECK_INT(spf_result(s), SPF_NONE);
	spf_free(s);

	t_case("drive: exists without an address: 2 queries, -all decides");
	s = drive("example.com", "192.0.2.1", z, 1, &nq);
	T_CHECK_INT(spf_result(s), SPF_FAIL);
	T_CHECK_INT(nq, 2);
	T_CHECK_STR(spf_mechanism(s), "-all");
	spf_free(s);

	t_case("received-spf: fail");
	{
		struct mini f[] = {{"example.com", SPF_Q_TXT, "v=spf1 -all"}};

		s = drive("example.com", "2001:db8::1", f, 1, &nq);
		buf_init(&b, 2048);
		T_CHECK(spf_received_spf(&b, s) == 0);
		T_CHECK_STR(spf_authres_value(s), "user@example.com");
		T_CHECK_STR(b.data,
		    "fail (unknown: domain of user@example.com does not "
		    "designate 2001:db8::1 as permitted sender)\r\n"
		    "\tclient-ip=2001:db8::1;\r\n"
		    "\tenvelope-from=\"user@example.com\";\r\n"
		    "\thelo=helo.example;\r\n\treceiver=unknown;\r\n"
		    "\tidentity=mailfrom;\r\n\tmechanism=-all;");
		buf_free(&b);
		spf_free(s);
	}
	t_case("received-spf: permerror names the problem, quotes");
	{
		struct mini f[] = {{"example.com", SPF_Q_TXT, "v=spf1 bad"}};

		s = drive("example.com", "192.0.2.1", f, 1, &nq);
		buf_init(&b, 2048);
		T_CHECK(spf_received_spf(&b, s) == 0);
		T_CHECK(strstr(b.data, "permerror (") == b.data);
		T_CHECK(
		    strstr(b.data, "problem=\"unknown mechanism\";") != NULL);
		buf_free(&b);
		spf_free(s);
	}
	t_case("received-spf: a 64 kB sender of quotes keeps lines short");
	{
		char *big = malloc(SPF_SENDER_MAX + 1);
		size_t k, line = 0, maxline = 0;

		memset(big, '"', SPF_SENDER_MAX);
		memcpy(big + SPF_SENDER_MAX - 12, "@example.com", 12);
		big[SPF_SENDER_MAX] = '\0';
		memset(&req, 0, sizeof(req));
		req.sender = big;
		req.domain = "example.com";
		s = spf_new(&req);
		T_CHECK(s != NULL);
		while (s != NULL && spf_next(s, &q) == SPF_STEP_QUERY)
			T_CHECK(spf_answer(s, SPF_DNS_NXDOMAIN, NULL, 0) == 0);
		T_CHECK_INT(spf_result(s), SPF_NONE);
		buf_init(&b, 1u << 16);
		T_CHECK(spf_received_spf(&b, s) == 0);
		for (k = 0; k < b.len; k++, line++) {
			if (b.data[k] == '\n')
				line = 0;
			if (line > maxline)
				maxline = line;
		}
		T_CHECK(maxline < 998);
		T_CHECK(strstr(b.data, "none (unknown: domain of ") == b.data);
		buf_free(&b);
		spf_free(s);
		free(big);
	}
	t_case("names");
	T_CHECK_STR(spf_result_name(SPF_NONE), "none");
	T_CHECK_STR(spf_result_name(SPF_NEUTRAL), "neutral");
	T_CHECK_STR(spf_result_name(SPF_PASS), "pass");
	T_CHECK_STR(spf_result_name(SPF_FAIL), "fail");
	T_CHECK_STR(spf_result_name(SPF_SOFTFAIL), "softfail");
	T_CHECK_STR(spf_result_name(SPF_TEMPERROR), "temperror");
	T_CHECK_STR(spf_result_name(SPF_PERMERROR), "permerror");
	T_CHECK_STR(spf_authres_property(SPF_ID_MAILFROM), "smtp.mailfrom");
	T_CHECK_STR(spf_authres_property(SPF_ID_HELO), "smtp.helo");
}

/* An include loop stops at the lookup limit: 11 TXT queries at most. */
static void
test_loop_bounded(void)
{
	struct mini z[] = {
	    {"example.com", SPF_Q_TXT, "v=spf1 include:example.com -all"},
	};
	size_t nq;
	struct spf *s;

	t_case("loop: include self stops after the limit");
	s = drive("example.com", "192.0.2.1", z, 1, &nq);
	T_CHECK_INT(spf_result(s), SPF_PERMERROR);
	T_CHECK(nq <= 2);
	T_CHECK(strstr(spf_problem(s), "10 DNS") != NULL);
	spf_free(s);
}

int
main(void)
{
	T_RUN(test_record_syntax);
	T_RUN(test_macros);
	T_RUN(test_macro_bounds);
	T_RUN(test_cases);
	T_RUN(test_pyspf);
	T_RUN(test_driving);
	T_RUN(test_loop_bounded);
	return t_summary();
}
