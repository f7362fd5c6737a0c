/*
 * Unit tests for src/sts/sts.c (RFC 8461): the `_mta-sts` TXT record
 * (3.1: syntax, one record only), the policy file (3.2: fields, CRLF and
 * LF, limits, malformed mx patterns, max_age clamped) and the MX match
 * (3.4: exact names, the leftmost-label wildcard).  Each input is placed
 * right before an unreadable page (t_guard), so an over-read crashes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t.h"
#include "sts/sts.h"

/* ---- the TXT record (3.1) ------------------------------------------------ */

struct txt_row {
	const char *name, *in;
	const char *id; /* NULL: refused */
};

static const struct txt_row txt_rows[] = {
    {"rfc_example", "v=STSv1; id=20160831085700Z;", "20160831085700Z"},
    {"no_final_delim", "v=STSv1; id=abc", "abc"},
    {"no_space", "v=STSv1;id=abc;", "abc"},
    {"spaces_around", "v=STSv1 ;  id=abc ; ", "abc"},
    {"tabs", "v=STSv1;\tid=abc\t;", "abc"},
    {"extension_before", "v=STSv1; ext.a-1_b=va!ue; id=x1", "x1"},
    {"extension_after", "v=STSv1; id=x1; foo=bar", "x1"},
    {"id_32", "v=STSv1; id=0123456789abcdef0123456789ABCDEF",
	"0123456789abcdef0123456789ABCDEF"},
    {"id_33", "v=STSv1; id=0123456789abcdef0123456789ABCDEF0", NULL},
    {"id_empty", "v=STSv1; id=;", NULL},
    {"id_punct", "v=STSv1; id=2016-08-31;", NULL},
    {"id_twice", "v=STSv1; id=a; id=b;", NULL},
    {"no_id", "v=STSv1;", NULL},
    {"version_only", "v=STSv1", NULL},
    {"wrong_version", "v=STSv2; id=a;", NULL},
    {"lower_case_version", "v=stsv1; id=a;", NULL},
    {"version_not_first", "id=a; v=STSv1;", NULL},
    {"no_delim", "v=STSv1 id=a", NULL},
    {"double_delim", "v=STSv1;; id=a", NULL},
    {"ext_no_value", "v=STSv1; id=a; foo=", NULL},
    {"ext_bad_name", "v=STSv1; id=a; _foo=1", NULL},
    {"ext_long_name", "v=STSv1; id=a; a23456789012345678901234567890123=1",
	NULL},
    {"ext_value_eq", "v=STSv1; id=a; foo=b=c", NULL},
    {"field_no_eq", "v=STSv1; id=a; foo", NULL},
    {"control", "v=STSv1; id=a;\x01", NULL},
    {"empty", "", NULL},
};

static void
test_txt_parse(void)
{
	size_t i;

	for (i = 0; i < sizeof(txt_rows) / sizeof(txt_rows[0]); i++) {
		const struct txt_row *r = &txt_rows[i];
		size_t n = strlen(r->in), maplen;
		void *map;
		const char *g = t_guard(r->in, n, &map, &maplen);
		char id[STS_ID_MAX + 1];
		int rc;

		t_case(r->name);
		rc = sts_txt_parse(g, n, id);
		if (r->id == NULL) {
			T_CHECK_INT(rc, -1);
			T_CHECK_STR(id, "");
		} else {
			T_CHECK_INT(rc, 0);
			T_CHECK_STR(id, r->id);
		}
		t_unguard(map, maplen);
	}
}

struct pick_row {
	const char *name;
	const char *recs[4]; /* up to NULL */
	enum sts_txt_status want;
	const char *id;
};

static const struct pick_row pick_rows[] = {
    {"one", {"v=STSv1; id=a1;"}, STS_TXT_OK, "a1"},
    {"one_among_others",
	{"v=spf1 -all", "v=STSv1; id=a1;", "google-site-verification=x"},
	STS_TXT_OK, "a1"},
    {"none", {"v=spf1 -all"}, STS_TXT_NONE, ""},
    {"no_records", {NULL}, STS_TXT_NONE, ""},
    {"two", {"v=STSv1; id=a1;", "v=STSv1; id=a2;"}, STS_TXT_MANY, ""},
    {"two_same", {"v=STSv1; id=a1;", "v=STSv1; id=a1;"}, STS_TXT_MANY, ""},
    {"one_invalid", {"v=STSv1; id=a-1;"}, STS_TXT_INVALID, ""},
    /* "v=STSv10" does not begin with "v=STSv1;": dropped */
    {"prefix_longer", {"v=STSv10; id=a;", "v=STSv1; id=b;"}, STS_TXT_OK, "b"},
    {"bare_version", {"v=STSv1"}, STS_TXT_INVALID, ""},
};

static void
test_txt_pick(void)
{
	size_t i, n;

	for (i = 0; i < sizeof(pick_rows) / sizeof(pick_rows[0]); i++) {
		const struct pick_row *r = &pick_rows[i];
		struct sts_txt_rec recs[4];
		char id[STS_ID_MAX + 1];

		t_case(r->name);
		for (n = 0; n < 4 && r->recs[n] != NULL; n++) {
			recs[n].s = r->recs[n];
			recs[n].len = strlen(r->recs[n]);
		}
		T_CHECK_INT(sts_txt_pick(recs, n, id), r->want);
		T_CHECK_STR(id, r->id);
	}
}

static void
test_txt_pick_nul(void)
{
	static const char rec[] = "v=STSv1; id=a\0b;";
	struct sts_txt_rec r = {rec, sizeof(rec) - 1};
	char id[STS_ID_MAX + 1];

	T_CHECK_INT(sts_txt_pick(&r, 1, id), STS_TXT_INVALID);
}

/* ---- the policy (3.2) ---------------------------------------------------- */

struct pol_row {
	const char *name, *in;
	int rc;
	enum sts_mode mode;
	uint32_t max_age;
	const char *mx;	 /* the patterns, space-separated */
	const char *err; /* a substring of the error */
};

static const struct pol_row pol_rows[] = {
    {"rfc_example_crlf",
	"version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\n"
	"mx: *.example.net\r\nmx: backupmx.example.com\r\n"
	"max_age: 604800\r\n",
	0, STS_MODE_ENFORCE, 604800,
	"mail.example.com *.example.net backupmx.example.com", NULL},
    {"lf", "version: STSv1\nmode: testing\nmx: mx.example\nmax_age: 86400\n", 0,
	STS_MODE_TESTING, 86400, "mx.example", NULL},
    {"no_final_newline",
	"version: STSv1\nmode: testing\nmx: mx.example\nmax_age: 86400", 0,
	STS_MODE_TESTING, 86400, "mx.example", NULL},
    {"mixed_endings_and_blank",
	"version: STSv1\r\n\nmode: enforce\nmx: MX.Example\r\nmax_age: 1\n\n",
	0, STS_MODE_ENFORCE, 1, "mx.example", NULL},
    {"no_space_after_colon",
	"version:STSv1\nmode:enforce\nmx:mx.example\nmax_age:5\n", 0,
	STS_MODE_ENFORCE, 5, "mx.example", NULL},
    {"trailing_spaces",
	"version: STSv1 \nmode: enforce\t\nmx: mx.example  \nmax_age: 5 \n", 0,
	STS_MODE_ENFORCE, 5, "mx.example", NULL},
    {"mode_none_no_mx", "version: STSv1\nmode: none\nmax_age: 86400\n", 0,
	STS_MODE_NONE, 86400, "", NULL},
    {"extension_ignored",
	"version: STSv1\nmode: enforce\nx-note: some text here\nmx: a.b\n"
	"max_age: 10\n",
	0, STS_MODE_ENFORCE, 10, "a.b", NULL},
    {"repeat_keeps_first",
	"version: STSv1\nmode: testing\nmode: enforce\nmx: a.b\nmax_age: 10\n"
	"max_age: 99\n",
	0, STS_MODE_TESTING, 10, "a.b", NULL},
    {"max_age_absurd_clamped",
	"version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 9999999999\n", 0,
	STS_MODE_ENFORCE, STS_MAX_AGE_MAX, "a.b", NULL},
    {"max_age_limit",
	"version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 31557600\n", 0,
	STS_MODE_ENFORCE, 31557600, "a.b", NULL},
    {"max_age_zero", "version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 0\n", 0,
	STS_MODE_ENFORCE, 0, "a.b", NULL},
    {"max_age_11_digits",
	"version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 10000000000\n", -1, 0,
	0, NULL, "max_age"},
    {"max_age_negative",
	"version: STSv1\nmode: enforce\nmx: a.b\nmax_age: -1\n", -1, 0, 0, NULL,
	"max_age"},
    {"max_age_missing", "version: STSv1\nmode: enforce\nmx: a.b\n", -1, 0, 0,
	NULL, "no max_age"},
    {"version_missing", "mode: enforce\nmx: a.b\nmax_age: 1\n", -1, 0, 0, NULL,
	"no version"},
    {"version_wrong", "version: STSv2\nmode: enforce\nmx: a.b\nmax_age: 1\n",
	-1, 0, 0, NULL, "version"},
    {"mode_missing", "version: STSv1\nmx: a.b\nmax_age: 1\n", -1, 0, 0, NULL,
	"no mode"},
    {"mode_upper", "version: STSv1\nmode: Enforce\nmx: a.b\nmax_age: 1\n", -1,
	0, 0, NULL, "mode"},
    {"mx_missing", "version: STSv1\nmode: enforce\nmax_age: 1\n", -1, 0, 0,
	NULL, "no mx"},
    {"mx_wildcard_middle",
	"version: STSv1\nmode: enforce\nmx: a.*.b\nmax_age: 1\n", -1, 0, 0,
	NULL, "mx pattern"},
    {"mx_bare_star", "version: STSv1\nmode: enforce\nmx: *\nmax_age: 1\n", -1,
	0, 0, NULL, "mx pattern"},
    {"mx_star_label", "version: STSv1\nmode: enforce\nmx: *a.b\nmax_age: 1\n",
	-1, 0, 0, NULL, "mx pattern"},
    {"mx_double_wildcard",
	"version: STSv1\nmode: enforce\nmx: *.*.b\nmax_age: 1\n", -1, 0, 0,
	NULL, "mx pattern"},
    {"mx_empty_label", "version: STSv1\nmode: enforce\nmx: a..b\nmax_age: 1\n",
	-1, 0, 0, NULL, "mx pattern"},
    {"mx_trailing_dot", "version: STSv1\nmode: enforce\nmx: a.b.\nmax_age: 1\n",
	-1, 0, 0, NULL, "mx pattern"},
    {"mx_underscore", "version: STSv1\nmode: enforce\nmx: a_b.c\nmax_age: 1\n",
	-1, 0, 0, NULL, "mx pattern"},
    {"mx_space_inside",
	"version: STSv1\nmode: enforce\nmx: a.b c.d\nmax_age: 1\n", -1, 0, 0,
	NULL, "mx pattern"},
    {"mx_hyphen_edge", "version: STSv1\nmode: enforce\nmx: -a.b\nmax_age: 1\n",
	-1, 0, 0, NULL, "mx pattern"},
    {"no_colon", "version: STSv1\nmode enforce\nmx: a.b\nmax_age: 1\n", -1, 0,
	0, NULL, "line 2"},
    {"no_value", "version: STSv1\nmode:\nmx: a.b\nmax_age: 1\n", -1, 0, 0, NULL,
	"line 2 has no value"},
    {"bad_key", "version: STSv1\n-mode: enforce\nmx: a.b\nmax_age: 1\n", -1, 0,
	0, NULL, "line 2"},
    {"leading_space_key",
	"version: STSv1\n mode: enforce\nmx: a.b\nmax_age: 1\n", -1, 0, 0, NULL,
	"line 2"},
    {"eight_bit",
	"version: STSv1\nmode: enforce\nx: caf\xc3\xa9\nmx: a.b\n"
	"max_age: 1\n",
	-1, 0, 0, NULL, "8-bit"},
    {"bare_cr_inside", "version: STSv1\nmode: enforce\rmx: a.b\nmax_age: 1\n",
	-1, 0, 0, NULL, "line 2"},
    {"html_error_page", "<html><body>404</body></html>\n", -1, 0, 0, NULL,
	"line 1"},
    {"empty", "", -1, 0, 0, NULL, "no version"},
};

static void
check_mx(const struct sts_policy *p, const char *want)
{
	char got[4096] = "";
	size_t i, n = 0;

	for (i = 0; i < p->nmx; i++)
		n += (size_t)snprintf(got + n, sizeof(got) - n, "%s%s",
		    i > 0 ? " " : "", p->mx[i]);
	T_CHECK_STR(got, want);
}

static void
test_policy(void)
{
	size_t i;

	for (i = 0; i < sizeof(pol_rows) / sizeof(pol_rows[0]); i++) {
		const struct pol_row *r = &pol_rows[i];
		size_t n = strlen(r->in), maplen;
		void *map;
		const char *g = t_guard(r->in, n, &map, &maplen);
		struct sts_policy p;
		char err[200];
		int rc;

		t_case(r->name);
		memset(&p, 0xa5, sizeof(p));
		rc = sts_policy_parse(g, n, &p, err, sizeof(err));
		T_CHECK_INT(rc, r->rc);
		if (rc == 0 && r->rc == 0) {
			T_CHECK_INT(p.mode, r->mode);
			T_CHECK_INT(p.max_age, r->max_age);
			check_mx(&p, r->mx);
			T_CHECK_STR(err, "");
		} else if (rc != 0 && r->err != NULL) {
			T_CHECK(strstr(err, r->err) != NULL);
			if (strstr(err, r->err) == NULL)
				fprintf(stderr, "  err: %s\n", err);
		}
		t_unguard(map, maplen);
	}
}

/* 64 KiB is the limit (3.3); the parser refuses one octet more. */
static void
test_policy_size(void)
{
	static const char head[] =
	    "version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 1\n";
	size_t n = STS_POLICY_MAX, maplen;
	char *big = malloc(n + 1);
	const char *g;
	struct sts_policy p;
	char err[200];
	void *map;

	memset(big, '\n', n + 1);
	memcpy(big, head, sizeof(head) - 1);
	g = t_guard(big, n, &map, &maplen);
	T_CHECK_INT(sts_policy_parse(g, n, &p, err, sizeof(err)), 0);
	t_unguard(map, maplen);
	g = t_guard(big, n + 1, &map, &maplen);
	T_CHECK_INT(sts_policy_parse(g, n + 1, &p, err, sizeof(err)), -1);
	T_CHECK(strstr(err, "larger than") != NULL);
	t_unguard(map, maplen);
	free(big);
}

static void
test_policy_nul(void)
{
	static const char in[] = "version: STSv1\nmode: enforce\0\nmx: a.b\n"
				 "max_age: 1\n";
	struct sts_policy p;
	char err[200];

	T_CHECK_INT(
	    sts_policy_parse(in, sizeof(in) - 1, &p, err, sizeof(err)), -1);
	T_CHECK(strstr(err, "NUL") != NULL);
}

/* More than STS_MX_MAX patterns: refused, not cut. */
static void
test_policy_many_mx(void)
{
	char in[8192];
	size_t n = 0, i;
	struct sts_policy p;
	char err[200];

	n += (size_t)snprintf(in + n, sizeof(in) - n,
	    "version: STSv1\nmode: enforce\nmax_age: 1\n");
	for (i = 0; i < STS_MX_MAX; i++)
		n += (size_t)snprintf(
		    in + n, sizeof(in) - n, "mx: mx%zu.example\n", i);
	T_CHECK_INT(sts_policy_parse(in, n, &p, err, sizeof(err)), 0);
	T_CHECK_INT(p.nmx, STS_MX_MAX);
	n += (size_t)snprintf(in + n, sizeof(in) - n, "mx: one.more\n");
	T_CHECK_INT(sts_policy_parse(in, n, &p, err, sizeof(err)), -1);
	T_CHECK(strstr(err, "more than") != NULL);
}

/* ---- MX match (3.4) ------------------------------------------------------ */

struct match_row {
	const char *name, *pattern, *host;
	bool want;
};

static const struct match_row match_rows[] = {
    {"exact", "mail.example.com", "mail.example.com", true},
    {"exact_case", "mail.example.com", "MAIL.Example.COM", true},
    {"exact_final_dot", "mail.example.com", "mail.example.com.", true},
    {"exact_other", "mail.example.com", "mail2.example.com", false},
    {"exact_suffix", "example.com", "mail.example.com", false},
    {"exact_prefix", "mail.example.com", "mail.example.co", false},
    {"wild_one_label", "*.example.net", "mx1.example.net", true},
    {"wild_case_dot", "*.example.net", "MX1.EXAMPLE.NET.", true},
    {"wild_not_parent", "*.example.net", "example.net", false},
    {"wild_not_two_labels", "*.example.net", "a.mx1.example.net", false},
    {"wild_empty_label", "*.example.net", ".example.net", false},
    {"wild_other_domain", "*.example.net", "mx1.example.org", false},
    {"wild_suffix_trick", "*.example.net", "mx1.badexample.net", false},
    {"empty_host", "a.b", "", false},
    {"dot_host", "a.b", ".", false},
};

static void
test_match(void)
{
	size_t i;

	for (i = 0; i < sizeof(match_rows) / sizeof(match_rows[0]); i++) {
		const struct match_row *r = &match_rows[i];

		t_case(r->name);
		T_CHECK_INT(sts_pattern_match(r->pattern, r->host), r->want);
	}
}

static void
test_mx_match_policy(void)
{
	static const char in[] =
	    "version: STSv1\nmode: enforce\nmx: mail.example.com\n"
	    "mx: *.example.net\nmax_age: 1\n";
	struct sts_policy p;
	char err[200];

	T_CHECK_INT(
	    sts_policy_parse(in, sizeof(in) - 1, &p, err, sizeof(err)), 0);
	T_CHECK(sts_mx_match(&p, "mail.example.com"));
	T_CHECK(sts_mx_match(&p, "b.example.net"));
	T_CHECK(!sts_mx_match(&p, "example.net"));
	T_CHECK(!sts_mx_match(&p, "evil.example"));
	T_CHECK_STR(sts_mode_name(p.mode), "enforce");
}

/* ---- the cache file ------------------------------------------------------ */

static const char cache_pol[] =
    "version: STSv1\r\nmode: enforce\r\nmx: *.example.net\r\n"
    "max_age: 604800\r\n";

static void
test_cache_roundtrip(void)
{
	struct sts_cache_rec r = {.domain = "example.net",
	    .id = "20240101",
	    .fetched = 1796585645,
	    .expires = 1796585645 + 604800,
	    .text = cache_pol,
	    .len = sizeof(cache_pol) - 1};
	struct sts_cache_rec back;
	struct sts_policy p;
	struct buf b;
	char err[200];
	void *map;
	size_t maplen;
	const char *g;

	buf_init(&b, STS_CACHE_MAX);
	T_CHECK_INT(sts_cache_encode(&r, &b), 0);
	T_CHECK(
	    b.len > 20 && memcmp(b.data, "tern-mta-sts-cache 1\n", 21) == 0);
	g = t_guard(b.data, b.len, &map, &maplen);
	T_CHECK_INT(sts_cache_decode(g, b.len, &back, &p, err, sizeof(err)),
	    STS_CACHE_OK);
	T_CHECK_STR(back.domain, "example.net");
	T_CHECK_STR(back.id, "20240101");
	T_CHECK_INT(back.fetched, 1796585645);
	T_CHECK_INT(back.expires, 1796585645 + 604800);
	T_CHECK_INT(back.len, sizeof(cache_pol) - 1);
	T_CHECK(back.len == sizeof(cache_pol) - 1 &&
		memcmp(back.text, cache_pol, back.len) == 0);
	T_CHECK_INT(p.mode, STS_MODE_ENFORCE);
	T_CHECK(sts_mx_match(&p, "mx1.example.net"));
	t_unguard(map, maplen);
	buf_free(&b);
}

static void
test_cache_encode_refuses(void)
{
	struct sts_cache_rec r = {.domain = "../etc",
	    .id = "1",
	    .text = cache_pol,
	    .len = sizeof(cache_pol) - 1};
	struct buf b;

	buf_init(&b, STS_CACHE_MAX);
	T_CHECK_INT(sts_cache_encode(&r, &b), -1);
	str_fmt_cut(r.domain, sizeof(r.domain), "example.net");
	str_fmt_cut(r.id, sizeof(r.id), "a-b");
	T_CHECK_INT(sts_cache_encode(&r, &b), -1);
	buf_free(&b);
}

struct cache_row {
	const char *name, *in;
	enum sts_cache_status want;
	const char *err;
};

#define CACHE_HEAD "domain example.net\nid a1\nfetched 10\nexpires 20\n\n"
#define CACHE_POL  "version: STSv1\nmode: testing\nmx: a.b\nmax_age: 10\n"

static const struct cache_row cache_rows[] = {
    {"ok", "tern-mta-sts-cache 1\n" CACHE_HEAD CACHE_POL, STS_CACHE_OK, ""},
    {"newer", "tern-mta-sts-cache 2\n" CACHE_HEAD CACHE_POL, STS_CACHE_NEWER,
	"newer than this tern's (1)"},
    {"much_newer", "tern-mta-sts-cache 99\nwhatever a later tern writes\n",
	STS_CACHE_NEWER, "version 99"},
    {"version_zero", "tern-mta-sts-cache 0\n" CACHE_HEAD CACHE_POL,
	STS_CACHE_BAD, "unknown format version 0"},
    {"no_magic", "domain example.net\n", STS_CACHE_BAD, "not an MTA-STS"},
    {"empty", "", STS_CACHE_BAD, "not an MTA-STS"},
    {"bad_domain",
	"tern-mta-sts-cache 1\ndomain ../x\nid a1\nfetched 1\nexpires "
	"2\n\n" CACHE_POL,
	STS_CACHE_BAD, "malformed header"},
    {"no_blank_line",
	"tern-mta-sts-cache 1\ndomain a.b\nid a1\nfetched 1\nexpires "
	"2\n" CACHE_POL,
	STS_CACHE_BAD, "malformed header"},
    {"negative_time",
	"tern-mta-sts-cache 1\ndomain a.b\nid a1\nfetched -1\nexpires "
	"2\n\n" CACHE_POL,
	STS_CACHE_BAD, "malformed header"},
    {"truncated", "tern-mta-sts-cache 1\ndomain a.b\nid a1\nfet", STS_CACHE_BAD,
	"malformed header"},
    {"bad_policy", "tern-mta-sts-cache 1\n" CACHE_HEAD "version: STSv1\n",
	STS_CACHE_BAD, "policy: no mode"},
};

static void
test_cache_decode(void)
{
	size_t i;

	for (i = 0; i < sizeof(cache_rows) / sizeof(cache_rows[0]); i++) {
		const struct cache_row *r = &cache_rows[i];
		size_t n = strlen(r->in), maplen;
		void *map;
		const char *g = t_guard(r->in, n, &map, &maplen);
		struct sts_cache_rec rec;
		struct sts_policy p;
		char err[200];

		t_case(r->name);
		T_CHECK_INT(sts_cache_decode(g, n, &rec, &p, err, sizeof(err)),
		    r->want);
		T_CHECK(strstr(err, r->err) != NULL);
		if (strstr(err, r->err) == NULL)
			fprintf(stderr, "  err: %s\n", err);
		t_unguard(map, maplen);
	}
}

int
main(void)
{
	test_txt_parse();
	T_RUN(test_txt_pick_nul);
	test_txt_pick();
	test_policy();
	T_RUN(test_policy_size);
	T_RUN(test_policy_nul);
	T_RUN(test_policy_many_mx);
	test_match();
	T_RUN(test_mx_match_policy);
	T_RUN(test_cache_roundtrip);
	T_RUN(test_cache_encode_refuses);
	test_cache_decode();
	return t_summary();
}
