/*
 * Unit tests for src/mailauth/psl.c and dmarc.c: organisational domains
 * against the real Debian list, the record parser, policy discovery and
 * evaluation (a table of cases, each with its RFC section), and the
 * external report destination check (RFC 7489 7.1).
 *
 * The evaluation table is also what tests/unit/check_opendmarc.py feeds
 * to libopendmarc: `test_dmarc --dump` prints it, one case a line, and the
 * checker compares OpenDMARC's answers with the expected ones here.
 */
#include "t.h"
#include "t_pycheck.h"
#include "mailauth/authres.h"
#include "mailauth/dmarc.h"
#include "mailauth/psl.h"

static struct psl *psl;

/* ---- PSL ------------------------------------------------------------------
 */

struct psl_row {
	const char *name, *org; /* org NULL: not a domain name */
	bool ps;		/* is a public suffix */
	const char *org_icann;	/* with PSL_ICANN_ONLY; NULL: same as org */
};

static const struct psl_row psl_rows[] = {
    {"example.com", "example.com", false, NULL},
    {"mail.example.com", "example.com", false, NULL},
    {"a.b.c.example.com", "example.com", false, NULL},
    {"com", "com", true, NULL},
    {"co.uk", "co.uk", true, NULL},
    {"example.co.uk", "example.co.uk", false, NULL},
    {"www.example.co.uk", "example.co.uk", false, NULL},
    {"MAIL.Example.CO.UK.", "example.co.uk", false, NULL},
    /* *.ck and !www.ck */
    {"ck", "ck", true, NULL},
    {"shop.ck", "shop.ck", true, NULL},
    {"mail.shop.ck", "mail.shop.ck", false, NULL},
    {"x.mail.shop.ck", "mail.shop.ck", false, NULL},
    {"www.ck", "www.ck", false, NULL},
    {"a.b.www.ck", "www.ck", false, NULL},
    /* *.kobe.jp with !city.kobe.jp, under jp's own rules */
    {"kobe.jp", "kobe.jp", false, NULL}, /* no rule but *.kobe.jp */
    {"x.kobe.jp", "x.kobe.jp", true, NULL},
    {"y.x.kobe.jp", "y.x.kobe.jp", false, NULL},
    {"city.kobe.jp", "city.kobe.jp", false, NULL},
    {"www.city.kobe.jp", "city.kobe.jp", false, NULL},
    /* the PRIVATE section: on by default, off with PSL_ICANN_ONLY */
    {"github.io", "github.io", true, "github.io"},
    {"alice.github.io", "alice.github.io", false, "github.io"},
    {"www.alice.github.io", "alice.github.io", false, "github.io"},
    {"foo.blogspot.com", "foo.blogspot.com", false, "blogspot.com"},
    /* no rule: the implicit "*" */
    {"example.invalidtld", "example.invalidtld", false, NULL},
    {"invalidtld", "invalidtld", true, NULL},
    {"localhost", "localhost", true, NULL},
    /* IDN rules: stored as A-labels too (公司.cn = xn--55qx5d.cn) */
    {"xn--55qx5d.cn", "xn--55qx5d.cn", true, NULL},
    {"shop.xn--55qx5d.cn", "shop.xn--55qx5d.cn", false, NULL},
    {"mail.shop.xn--55qx5d.cn", "shop.xn--55qx5d.cn", false, NULL},
    {"mail.shop.\xe5\x85\xac\xe5\x8f\xb8.cn",
	"shop.\xe5\x85\xac\xe5\x8f\xb8.cn", false, NULL},
    /* not names */
    {"", NULL, false, NULL},
    {".", NULL, false, NULL},
    {"a..example.com", NULL, false, NULL},
    {".example.com", NULL, false, NULL},
    {"exa mple.com", NULL, false, NULL},
    {"example.com..", NULL, false, NULL},
};

static void
test_psl_table(void)
{
	size_t i;

	for (i = 0; i < sizeof(psl_rows) / sizeof(psl_rows[0]); i++) {
		const struct psl_row *r = &psl_rows[i];
		char out[PSL_NAME_MAX + 1], name[64];
		size_t len = strlen(r->name), maplen;
		void *map;
		const char *g = t_guard(r->name, len, &map, &maplen);
		int rc;

		(void)!str_fmt(name, sizeof(name), "psl %s", r->name);
		t_case(name);
		rc = psl_org_domain(psl, g, len, 0, out, sizeof(out));
		if (r->org == NULL) {
			T_CHECK_INT(rc, -1);
			T_CHECK(!psl_is_public_suffix(psl, g, len, 0));
		} else {
			T_CHECK_INT(rc, 0);
			T_CHECK_STR(out, r->org);
			T_CHECK(psl_is_public_suffix(psl, g, len, 0) == r->ps);
			rc = psl_org_domain(
			    psl, g, len, PSL_ICANN_ONLY, out, sizeof(out));
			T_CHECK_INT(rc, 0);
			T_CHECK_STR(out, r->org_icann ? r->org_icann : r->org);
		}
		t_unguard(map, maplen);
	}
}

static void
test_psl_misc(void)
{
	char out[PSL_NAME_MAX + 1], lab[80], big[300];
	const char *text = "// c\ncom\n*.ck\n!www.ck\n"
			   "// ===BEGIN PRIVATE DOMAINS===\nexample.com\n"
			   "// ===END PRIVATE DOMAINS===\nbad..rule\n!ck\n";
	size_t skipped = 0;
	struct psl *p = psl_parse(text, strlen(text), &skipped);

	t_case("psl real list loaded");
	T_CHECK(psl_rule_count(psl) > 9000);
	t_case("psl small list from text");
	T_CHECK(p != NULL);
	T_CHECK_INT(skipped, 2); /* bad..rule, and an exception of 1 label */
	T_CHECK_INT(psl_rule_count(p), 4);
	T_CHECK(psl_org_domain(p, "a.b.example.com", 15, 0, out, 64) == 0);
	T_CHECK_STR(out, "b.example.com");
	T_CHECK(psl_org_domain(
		    p, "a.b.example.com", 15, PSL_ICANN_ONLY, out, 64) == 0);
	T_CHECK_STR(out, "example.com");
	psl_free(p);
	t_case("psl empty and comment-only lists are refused");
	T_CHECK(psl_parse("", 0, NULL) == NULL);
	T_CHECK(psl_parse("// x\n\n", 6, NULL) == NULL);
	t_case("psl load missing file");
	T_CHECK(psl_load_file("/nonexistent/psl.dat", &p) == -1 && p == NULL);
	t_case("psl output too small");
	T_CHECK(psl_org_domain(psl, "mail.example.com", 16, 0, out, 5) == -1);
	t_case("psl name of 253 octets, and 254");
	memset(big, 'a', sizeof(big));
	for (size_t k = 63; k < 253; k += 64)
		big[k] = '.';
	big[253] = 'm';
	T_CHECK(psl_org_domain(psl, big, 253, 0, out, sizeof(out)) == 0);
	T_CHECK(psl_org_domain(psl, big, 254, 0, out, sizeof(out)) == -1);
	t_case("punycode: ascii, RFC 3492 7.1 (A) Arabic, bad UTF-8");
	T_CHECK(psl_label_to_alabel("AbC", 3, lab, sizeof(lab)) == 3);
	T_CHECK_STR(lab, "abc");
	T_CHECK(psl_label_to_alabel("\xd9\x84\xd9\x8a\xd9\x87\xd9\x85\xd8\xa7"
				    "\xd8\xa8\xd8\xaa\xd9\x83\xd9\x84\xd9\x85"
				    "\xd9\x88\xd8\xb4\xd8\xb9\xd8\xb1\xd8\xa8"
				    "\xd9\x8a\xd8\x9f",
		    34, lab, sizeof(lab)) > 0);
	T_CHECK_STR(lab, "xn--egbpdaj6bu4bxfgehfvwxn");
	T_CHECK(psl_label_to_alabel("\xc3\xa9t\xc3\xa9", 5, lab, 80) > 0);
	T_CHECK_STR(lab, "xn--t-9fab");
	T_CHECK(psl_label_to_alabel("a\0b", 3, lab, 80) == -1);
	T_CHECK(psl_label_to_alabel("\xc3", 1, lab, sizeof(lab)) == -1);
	T_CHECK(psl_label_to_alabel("\xed\xa0\x80", 3, lab, 80) == -1);
	T_CHECK(psl_label_to_alabel("\xc3\xa9", 2, lab, 5) == -1);
}

/*
 * The list's own test vectors, shipped by Debian's publicsuffix package:
 * checkPublicSuffix('name', 'registrable domain' or null).  null means the
 * name is a public suffix or not a name; we give such a name itself as its
 * organisational domain (or -1), so it is checked with psl_is_public_suffix.
 */
#define PSL_TESTS "/usr/share/doc/publicsuffix/examples/test_psl.txt"

static bool
psl_arg(char **p, char *out, size_t outlen)
{
	char *end;

	while (**p == ' ' || **p == ',' || **p == '(')
		(*p)++;
	if (strncmp(*p, "null", 4) == 0) {
		*p += 4;
		out[0] = '\0';
		return false;
	}
	if (**p != '\'' || (end = strchr(*p + 1, '\'')) == NULL ||
	    str_copy(out, outlen, *p + 1, (size_t)(end - *p - 1)) != 0)
		return false;
	*p = end + 1;
	return true;
}

static void
test_psl_official(void)
{
	char line[512], name[300], want[300], out[PSL_NAME_MAX + 1];
	FILE *f = fopen(PSL_TESTS, "r");
	int n = 0;

	t_case("psl official vectors file");
	T_CHECK(f != NULL);
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *p = strstr(line, "checkPublicSuffix(");
		bool has_name, has_want;
		int rc;

		if (p == NULL || strncmp(line, "//", 2) == 0)
			continue;
		p += strlen("checkPublicSuffix");
		has_name = psl_arg(&p, name, sizeof(name));
		has_want = psl_arg(&p, want, sizeof(want));
		if (!has_name)
			continue;
		t_case(name);
		n++;
		rc = psl_org_domain(
		    psl, name, strlen(name), 0, out, sizeof(out));
		if (has_want) {
			T_CHECK_INT(rc, 0);
			T_CHECK_STR(out, want);
		} else {
			T_CHECK(rc != 0 || psl_is_public_suffix(
					       psl, name, strlen(name), 0));
		}
	}
	fclose(f);
	t_case("psl official vectors: all read");
	T_CHECK(n >= 70);
}

/*
 * Names made from every rule of the list (the rule's name, and one to three
 * labels more; A-label forms too), with our organisational domain, for
 * check_psl.py to compare with libpsl.
 */
static void
psl_names_line(struct buf *b, const char *name)
{
	char out[PSL_NAME_MAX + 1];
	size_t n = strlen(name);
	int rc = psl_org_domain(psl, name, n, 0, out, sizeof(out));

	T_CHECK(buf_printf(b, "%s\t%s\t%d\n", name, rc == 0 ? out : "-",
		    psl_is_public_suffix(psl, name, n, 0) ? 1 : 0) == 0);
}

static void
psl_names_of(struct buf *b, const char *rule)
{
	static const char *const pre[] = {"", "x.", "y.x.", "z.y.x."};
	char name[600], alab[300];
	size_t i, o = 0;
	const char *s = rule;

	for (i = 0; i < 4; i++) {
		(void)!str_fmt(name, sizeof(name), "%s%s", pre[i], rule);
		psl_names_line(b, name);
	}
	/* the A-label form, label by label */
	while (*s) {
		size_t ll = strcspn(s, ".");
		int w = psl_label_to_alabel(s, ll, alab + o, sizeof(alab) - o);

		if (w < 0)
			return;
		o += (size_t)w;
		s += ll;
		if (*s == '.' && o + 1 < sizeof(alab))
			alab[o++] = '.', s++;
	}
	alab[o] = '\0';
	if (strcmp(alab, rule) != 0)
		for (i = 0; i < 3; i++) {
			(void)!str_fmt(
			    name, sizeof(name), "%s%s", pre[i], alab);
			psl_names_line(b, name);
		}
}

static void
test_psl_libpsl(void)
{
	struct t_pycheck pc;
	struct buf b;
	char line[512];
	FILE *f = fopen(PSL_DEFAULT_PATH, "r");

	t_case("psl agrees with libpsl on names made from every rule");
	T_CHECK(f != NULL);
	if (f == NULL)
		return;
	buf_init(&b, 16u << 20);
	while (fgets(line, sizeof(line), f) != NULL) {
		char *r = line;

		r[strcspn(r, " \t\r\n")] = '\0';
		if (*r == '\0' || strncmp(r, "//", 2) == 0)
			continue;
		if (*r == '!')
			r++;
		else if (strncmp(r, "*.", 2) == 0)
			r += 2;
		psl_names_of(&b, r);
	}
	fclose(f);
	T_CHECK(t_pycheck_open(&pc, "test_dmarc", "check_psl.py", __FILE__));
	T_CHECK(t_pycheck_write(&pc, "names", ".tsv", b.data, b.len));
	T_CHECK(t_pycheck_run(&pc, "names"));
	t_pycheck_close(&pc);
	buf_free(&b);
}

/* ---- the record parser ------------------------------------------------------
 */

struct rec_row {
	const char *name, *text;
	enum dmarc_parse st;
	enum dmarc_policy p, sp, np;
	enum dmarc_align adkim, aspf;
	unsigned pct, fo, nrua, nruf, bad, unknown, dropped;
	const char *rua0_host; /* NULL: not checked */
	uint64_t rua0_size;
};

#define R   DMARC_ALIGN_RELAXED
#define S   DMARC_ALIGN_STRICT
#define U   DMARC_P_UNSET
#define N   DMARC_P_NONE
#define Q   DMARC_P_QUARANTINE
#define J   DMARC_P_REJECT
#define I   DMARC_P_INVALID
#define OK  DMARC_PARSE_OK
#define NOT DMARC_PARSE_NOT_DMARC

static const struct rec_row rec_rows[] = {
    /* 6.3, 6.4 */
    {"minimal", "v=DMARC1; p=none", OK, N, U, U, R, R, 100, 1, 0, 0, 0, 0, 0,
	NULL, 0},
    {"all tags",
	"v=DMARC1; p=reject; sp=quarantine; np=none; adkim=s; aspf=s; "
	"pct=20; ri=3600; fo=1:d; rf=afrf; rua=mailto:a@rep.example!10m; "
	"ruf=mailto:f@rep.example",
	OK, J, Q, N, S, S, 20, DMARC_FO_1 | DMARC_FO_D, 1, 1, 0, 0, 0,
	"rep.example", 10u << 20},
    {"no blanks, trailing semicolon", "v=DMARC1;p=quarantine;", OK, Q, U, U, R,
	R, 100, 1, 0, 0, 0, 0, 0, NULL, 0},
    {"blanks around = and ;", "  v = DMARC1 ;\tp = reject ; pct = 0 ", OK, J, U,
	U, R, R, 0, 1, 0, 0, 0, 0, 0, NULL, 0},
    {"tag names and keywords any case", "V=DMARC1; P=Reject; ADKIM=S", OK, J, U,
	U, S, R, 100, 1, 0, 0, 0, 0, 0, NULL, 0},
    /* 6.4: "DMARC1" is %x: case-sensitive */
    {"v=dmarc1 lower case", "v=dmarc1; p=none", NOT, U, U, U, R, R, 100, 1, 0,
	0, 0, 0, 0, NULL, 0},
    {"v not first", "p=reject; v=DMARC1", NOT, U, U, U, R, R, 100, 1, 0, 0, 0,
	0, 0, NULL, 0},
    {"v=DMARC10", "v=DMARC10; p=none", NOT, U, U, U, R, R, 100, 1, 0, 0, 0, 0,
	0, NULL, 0},
    {"spf record", "v=spf1 -all", NOT, U, U, U, R, R, 100, 1, 0, 0, 0, 0, 0,
	NULL, 0},
    {"empty", "", NOT, U, U, U, R, R, 100, 1, 0, 0, 0, 0, 0, NULL, 0},
    {"v only", "v=DMARC1", OK, U, U, U, R, R, 100, 1, 0, 0, 0, 0, 0, NULL, 0},
    /* 6.3: bad values of known tags are ignored, unknown tags too */
    {"bad p", "v=DMARC1; p=bogus", OK, I, U, U, R, R, 100, 1, 0, 0, 1, 0, 0,
	NULL, 0},
    {"bad pct over 100", "v=DMARC1; p=none; pct=101", OK, N, U, U, R, R, 100, 1,
	0, 0, 1, 0, 0, NULL, 0},
    {"bad pct not a number", "v=DMARC1; p=none; pct=-5", OK, N, U, U, R, R, 100,
	1, 0, 0, 1, 0, 0, NULL, 0},
    {"bad pct 4 digits", "v=DMARC1; p=none; pct=0050", OK, N, U, U, R, R, 100,
	1, 0, 0, 1, 0, 0, NULL, 0},
    {"bad adkim", "v=DMARC1; p=none; adkim=x; aspf=", OK, N, U, U, R, R, 100, 1,
	0, 0, 2, 0, 0, NULL, 0},
    {"bad fo item drops fo", "v=DMARC1; p=none; fo=1:x", OK, N, U, U, R, R, 100,
	1, 0, 0, 1, 0, 0, NULL, 0},
    {"bad np ignored", "v=DMARC1; p=none; np=maybe", OK, N, U, U, R, R, 100, 1,
	0, 0, 1, 0, 0, NULL, 0},
    {"unknown tags", "v=DMARC1; p=none; foo=bar; x; =y", OK, N, U, U, R, R, 100,
	1, 0, 0, 0, 3, 0, NULL, 0},
    {"duplicate p keeps the first", "v=DMARC1; p=reject; p=none", OK, J, U, U,
	R, R, 100, 1, 0, 0, 1, 0, 0, NULL, 0},
    /* 6.2 URIs */
    {"two rua, sizes k and none",
	"v=DMARC1; p=none; rua=mailto:a@x.example!5k, mailto:b@y.example", OK,
	N, U, U, R, R, 100, 1, 2, 0, 0, 0, 0, "x.example", 5120},
    {"rua size g, upper case unit", "v=DMARC1; p=none; rua=mailto:a@x!1G", OK,
	N, U, U, R, R, 100, 1, 1, 0, 0, 0, 0, "x", 1u << 30},
    {"rua bad uris dropped",
	"v=DMARC1; p=none; rua=dmarc@x.example, mailto:@x, mailto:a@, "
	"mailto:a@x!, mailto:a@x!12q, 1http:x, mailto:ok@z.example",
	OK, N, U, U, R, R, 100, 1, 1, 0, 0, 0, 6, "z.example", 0},
    {"rua https kept, not mailto", "v=DMARC1; p=none; rua=https://r.example/",
	OK, N, U, U, R, R, 100, 1, 1, 0, 0, 0, 0, NULL, 0},
    {"rua hfields cut from host",
	"v=DMARC1; p=none; rua=mailto:a@h.example?subject=x", OK, N, U, U, R, R,
	100, 1, 1, 0, 0, 0, 0, "h.example", 0},
    {"rua more than max",
	"v=DMARC1; p=none; rua=mailto:a@1,mailto:a@2,mailto:a@3,mailto:a@4,"
	"mailto:a@5,mailto:a@6,mailto:a@7,mailto:a@8,mailto:a@9,mailto:a@10",
	OK, N, U, U, R, R, 100, 1, 8, 0, 0, 0, 2, "1", 0},
    {"rua size overflow", "v=DMARC1; p=none; rua=mailto:a@x!99999999999999t",
	OK, N, U, U, R, R, 100, 1, 0, 0, 0, 0, 1, NULL, 0},
};

static void
check_record(const struct rec_row *r, const char *g, size_t len)
{
	struct dmarc_record rec;

	T_CHECK_INT(dmarc_record_parse(g, len, &rec), r->st);
	if (r->st != DMARC_PARSE_OK)
		return;
	T_CHECK_INT(rec.p, r->p);
	T_CHECK_INT(rec.sp, r->sp);
	T_CHECK_INT(rec.np, r->np);
	T_CHECK_INT(rec.adkim, r->adkim);
	T_CHECK_INT(rec.aspf, r->aspf);
	T_CHECK_INT(rec.pct, r->pct);
	T_CHECK_INT(rec.fo, r->fo);
	T_CHECK_INT(rec.nrua, r->nrua);
	T_CHECK_INT(rec.nruf, r->nruf);
	T_CHECK_INT(rec.bad_values, r->bad);
	T_CHECK_INT(rec.unknown_tags, r->unknown);
	T_CHECK_INT(rec.dropped_uris, r->dropped);
	if (r->rua0_host != NULL && rec.nrua > 0) {
		T_CHECK(rec.rua[0].mailto);
		T_CHECK(rec.rua[0].host_len == strlen(r->rua0_host) &&
			memcmp(rec.rua[0].host, r->rua0_host,
			    rec.rua[0].host_len) == 0);
		T_CHECK(rec.rua[0].max_size == r->rua0_size);
	}
}

static void
test_record_table(void)
{
	size_t i, k;

	for (i = 0; i < sizeof(rec_rows) / sizeof(rec_rows[0]); i++) {
		const struct rec_row *r = &rec_rows[i];
		size_t len = strlen(r->text), maplen;
		void *map;
		const char *g = t_guard(r->text, len, &map, &maplen);
		char name[96];
		struct dmarc_record rec;

		(void)!str_fmt(name, sizeof(name), "record %s", r->name);
		t_case(name);
		check_record(r, g, len);
		t_unguard(map, maplen);
		/* every prefix parses within its bounds */
		for (k = 0; k < len; k++) {
			g = t_guard(r->text, k, &map, &maplen);
			(void)dmarc_record_parse(g, k, &rec);
			T_CHECK(rec.nrua <= DMARC_URI_MAX && rec.pct <= 100);
			t_unguard(map, maplen);
		}
	}
}

/* ---- discovery and evaluation ---------------------------------------------
 */

/*
 * A TXT answer: NULL is NXDOMAIN, "TEMP" a temporary failure, "" no
 * records (NODATA), else records separated by '|'.
 */
struct eval_row {
	const char *name; /* RFC section first */
	const char *from;
	const char *at_from, *at_org;
	const char *spf;  /* "domain" passed, "-domain" failed, NULL none */
	const char *dkim; /* "d1,-d2": d1 passed, d2 failed */
	unsigned draw;
	bool nx;
	enum dmarc_result want;
	enum dmarc_policy disp;
	int queries;
	const char *ov; /* "domain=disp" or "*domain=disp" (subdomains) */
};

#define NONE DMARC_RESULT_NONE
#define PASS DMARC_RESULT_PASS
#define FAIL DMARC_RESULT_FAIL
#define TEMP DMARC_RESULT_TEMPERROR
#define PERM DMARC_RESULT_PERMERROR
#define EX   "v=DMARC1; p=reject"

static const struct eval_row eval_rows[] = {
    /* alignment: DKIM (3.1.1) */
    {"3.1.1 dkim relaxed, d= a subdomain", "example.com", EX, "", NULL,
	"mail.example.com", 0, false, PASS, N, 1, NULL},
    {"3.1.1 dkim relaxed, From a subdomain", "news.example.com", "", EX, NULL,
	"example.com", 0, false, PASS, N, 2, NULL},
    {"3.1.1 dkim strict, d= a subdomain", "example.com",
	"v=DMARC1; p=reject; adkim=s", "", NULL, "mail.example.com", 0, false,
	FAIL, J, 1, NULL},
    {"3.1.1 dkim strict, d= the From domain", "example.com",
	"v=DMARC1; p=reject; adkim=s", "", NULL, "example.com", 0, false, PASS,
	N, 1, NULL},
    {"3.1.1 dkim strict, case and root dot", "Example.COM",
	"v=DMARC1; p=reject; adkim=s", "", NULL, "EXAMPLE.com.", 0, false, PASS,
	N, 1, NULL},
    {"3.1.1 dkim aligned but failed", "example.com", EX, "", NULL,
	"-example.com", 0, false, FAIL, J, 1, NULL},
    {"3.1.1 dkim passed for another domain", "example.com", EX, "", NULL,
	"evil.example", 0, false, FAIL, J, 1, NULL},
    {"3.1.1 one of two signatures aligned", "example.com", EX, "", NULL,
	"evil.example,-x.example.com,example.com", 0, false, PASS, N, 1, NULL},
    /* alignment: SPF (3.1.2) */
    {"3.1.2 spf relaxed, bounce subdomain", "example.com", EX, "",
	"bounce.example.com", NULL, 0, false, PASS, N, 1, NULL},
    {"3.1.2 spf strict, bounce subdomain", "example.com",
	"v=DMARC1; p=quarantine; aspf=s", "", "bounce.example.com", NULL, 0,
	false, FAIL, Q, 1, NULL},
    {"3.1.2 spf strict, same domain", "example.com",
	"v=DMARC1; p=reject; aspf=s", "", "example.com", NULL, 0, false, PASS,
	N, 1, NULL},
    {"3.1.2 spf aligned but failed", "example.com", EX, "", "-example.com",
	NULL, 0, false, FAIL, J, 1, NULL},
    {"3.1.2 spf passed for another domain", "example.com", EX, "",
	"example.net", NULL, 0, false, FAIL, J, 1, NULL},
    {"3.1 strict dkim fails, relaxed spf saves", "example.com",
	"v=DMARC1; p=reject; adkim=s", "", "b.example.com", "m.example.com", 0,
	false, PASS, N, 1, NULL},
    {"3.1 nothing at all passed", "example.com", EX, "", NULL, NULL, 0, false,
	FAIL, J, 1, NULL},
    /* organisational domains (3.2) */
    {"3.2 co.uk: two registrants differ", "a.example.co.uk", "", EX, NULL,
	"other.co.uk", 0, false, FAIL, J, 2, NULL},
    {"3.2 co.uk: same registrant", "news.example.co.uk", "", EX, NULL,
	"example.co.uk", 0, false, PASS, N, 2, NULL},
    {"3.2 *.ck: the public suffix itself", "mail.shop.ck", EX, "", NULL,
	"shop.ck", 0, false, FAIL, J, 1, NULL},
    {"3.2 *.ck: below the org domain", "mail.shop.ck", EX, "", NULL,
	"x.mail.shop.ck", 0, false, PASS, N, 1, NULL},
    {"3.2 !www.ck: exception", "a.www.ck", "", EX, NULL, "b.www.ck", 0, false,
	PASS, N, 2, NULL},
    {"3.2 PRIVATE section: github.io users differ", "alice.github.io", EX, "",
	NULL, "mallory.github.io", 0, false, FAIL, J, 1, NULL},
    /* discovery (6.6.3) */
    {"6.6.3 no record anywhere", "mail.example.com", "", "", NULL, NULL, 0,
	false, NONE, N, 2, NULL},
    {"6.6.3 NXDOMAIN at both", "mail.example.com", NULL, NULL, NULL, NULL, 0,
	false, NONE, N, 2, NULL},
    {"6.6.3 From is its org domain: one query", "example.com", "", "", NULL,
	NULL, 0, false, NONE, N, 1, NULL},
    {"6.6.3 step 2 non-DMARC TXT skipped, org used", "mail.example.com",
	"v=spf1 -all|hello", EX, NULL, NULL, 0, false, FAIL, J, 2, NULL},
    {"6.6.3 step 5 two records at From: none, no fallback", "mail.example.com",
	"v=DMARC1; p=none|v=DMARC1; p=reject", EX, NULL, NULL, 0, false, NONE,
	N, 1, NULL},
    {"6.6.3 step 5 two records at org", "mail.example.com", "",
	"v=DMARC1; p=none|v=DMARC1; p=reject", NULL, NULL, 0, false, NONE, N, 2,
	NULL},
    {"6.6.3 one DMARC and one other record", "example.com", "v=spf1 -all|" EX,
	"", NULL, NULL, 0, false, FAIL, J, 1, NULL},
    {"6.6.3 temperror at From: stop", "mail.example.com", "TEMP", EX, NULL,
	NULL, 0, false, TEMP, N, 1, NULL},
    {"6.6.3 temperror at org", "mail.example.com", "", "TEMP", NULL, NULL, 0,
	false, TEMP, N, 2, NULL},
    {"6.6.3 step 1 record at the subdomain wins", "mail.example.com",
	"v=DMARC1; p=quarantine", "v=DMARC1; p=reject; sp=none", NULL, NULL, 0,
	false, FAIL, Q, 1, NULL},
    /* subdomain policy (6.3 sp, RFC 9091 np) */
    {"6.3 sp applies to a subdomain", "mail.example.com", "",
	"v=DMARC1; p=reject; sp=none", NULL, NULL, 0, false, FAIL, N, 2, NULL},
    {"6.3 sp absent: p applies to a subdomain", "mail.example.com", "",
	"v=DMARC1; p=quarantine", NULL, NULL, 0, false, FAIL, Q, 2, NULL},
    {"6.3 sp does not apply at the org domain", "example.com",
	"v=DMARC1; p=none; sp=reject", "", NULL, NULL, 0, false, FAIL, N, 1,
	NULL},
    {"RFC 9091 np for a nonexistent subdomain", "nx.example.com", NULL,
	"v=DMARC1; p=none; sp=quarantine; np=reject", NULL, NULL, 0, true, FAIL,
	J, 2, NULL},
    {"RFC 9091 np absent: sp", "nx.example.com", NULL,
	"v=DMARC1; p=none; sp=quarantine", NULL, NULL, 0, true, FAIL, Q, 2,
	NULL},
    {"RFC 9091 np ignored for an existing subdomain", "mail.example.com", "",
	"v=DMARC1; p=none; np=reject", NULL, NULL, 0, false, FAIL, N, 2, NULL},
    /* pct (6.6.4) */
    {"6.6.4 pct=0 reject: sampled out, quarantine", "example.com",
	"v=DMARC1; p=reject; pct=0", "", NULL, NULL, 0, false, FAIL, Q, 1,
	NULL},
    {"6.6.4 pct=50, draw 49: applied", "example.com",
	"v=DMARC1; p=reject; pct=50", "", NULL, NULL, 49, false, FAIL, J, 1,
	NULL},
    {"6.6.4 pct=50, draw 50: quarantine", "example.com",
	"v=DMARC1; p=reject; pct=50", "", NULL, NULL, 50, false, FAIL, Q, 1,
	NULL},
    {"6.6.4 pct=100, draw 99: applied", "example.com",
	"v=DMARC1; p=reject; pct=100", "", NULL, NULL, 99, false, FAIL, J, 1,
	NULL},
    {"6.6.4 pct=100, a draw of 150 is taken mod 100", "example.com",
	"v=DMARC1; p=reject; pct=100", "", NULL, NULL, 150, false, FAIL, J, 1,
	NULL},
    {"6.6.4 pct=50 quarantine, draw 70: none", "example.com",
	"v=DMARC1; p=quarantine; pct=50", "", NULL, NULL, 70, false, FAIL, N, 1,
	NULL},
    {"6.6.4 pct on a pass changes nothing", "example.com",
	"v=DMARC1; p=reject; pct=0", "", "example.com", NULL, 0, false, PASS, N,
	1, NULL},
    /* bad tags (6.3, 6.6.3 step 6) */
    {"6.6.3 step 6 bad p with rua: p=none", "example.com",
	"v=DMARC1; p=bogus; rua=mailto:d@example.com", "", NULL, NULL, 0, false,
	FAIL, N, 1, NULL},
    {"6.6.3 step 6 bad p without rua: no policy", "example.com",
	"v=DMARC1; p=bogus", "", NULL, NULL, 0, false, PERM, N, 1, NULL},
    {"6.6.3 step 6 p missing with rua: p=none", "example.com",
	"v=DMARC1; rua=mailto:d@example.com", "", NULL, NULL, 0, false, FAIL, N,
	1, NULL},
    {"6.6.3 step 6 p missing, rua invalid: no policy", "example.com",
	"v=DMARC1; rua=d@example.com", "", NULL, NULL, 0, false, PERM, N, 1,
	NULL},
    {"6.6.3 step 6 bad sp with rua: p=none", "mail.example.com", "",
	"v=DMARC1; p=reject; sp=bad; rua=mailto:d@example.com", NULL, NULL, 0,
	false, FAIL, N, 2, NULL},
    {"6.3 bad pct ignored: 100", "example.com", "v=DMARC1; p=reject; pct=200",
	"", NULL, NULL, 99, false, FAIL, J, 1, NULL},
    {"6.3 bad adkim ignored: relaxed", "example.com",
	"v=DMARC1; p=reject; adkim=x", "", NULL, "m.example.com", 0, false,
	PASS, N, 1, NULL},
    {"6.3 unknown tag ignored", "example.com",
	"v=DMARC1; p=quarantine; future=yes", "", NULL, NULL, 0, false, FAIL, Q,
	1, NULL},
    {"6.4 v=DMARC1 not first: not a record", "example.com",
	"p=reject; v=DMARC1", "", NULL, NULL, 0, false, NONE, N, 1, NULL},
    {"6.3 p after other tags: still applied", "example.com",
	"v=DMARC1; adkim=r; rua=mailto:d@example.com; p=reject", "", NULL, NULL,
	0, false, FAIL, J, 1, NULL},
    {"6.4 keywords in upper case", "example.com", "v=DMARC1; P=REJECT", "",
	NULL, NULL, 0, false, FAIL, J, 1, NULL},
    /* local overrides */
    {"local override of a fail", "example.com", EX, "", NULL, NULL, 0, false,
	FAIL, N, 1, "example.com=none"},
    {"local override for subdomains", "mail.example.com", "", EX, NULL, NULL, 0,
	false, FAIL, Q, 2, "*example.com=quarantine"},
    {"local override, exact only, not a subdomain", "mail.example.com", "", EX,
	NULL, NULL, 0, false, FAIL, J, 2, "example.com=none"},
    {"6.6.1 From not a domain name", "a..example.com", EX, EX, NULL, NULL, 0,
	false, PERM, N, 0, NULL},
};

/* Fill ans from a spec of eval_row (NULL, "TEMP", "", "a|b"). */
static void
make_answer(const char *spec, char store[4][256], const char *txt[4],
    size_t len[4], struct dmarc_txt *ans)
{
	size_t n = 0;
	const char *s = spec;

	memset(ans, 0, sizeof(*ans));
	ans->txt = txt;
	ans->len = len;
	if (spec == NULL) {
		ans->status = DMARC_DNS_NXDOMAIN;
		return;
	}
	if (strcmp(spec, "TEMP") == 0) {
		ans->status = DMARC_DNS_TEMPFAIL;
		return;
	}
	while (*s && n < 4) {
		size_t k = strcspn(s, "|");

		memcpy(store[n], s, k);
		store[n][k] = '\0';
		txt[n] = store[n];
		len[n] = k;
		n++;
		s += k + (s[k] == '|');
	}
	ans->n = n;
}

static void
make_dkim(const char *spec, char store[4][64], struct dmarc_dkim *d, size_t *n)
{
	*n = 0;
	while (spec && *spec && *n < 4) {
		size_t k = strcspn(spec, ",");
		bool fail = spec[0] == '-';

		memcpy(store[*n], spec + fail, k - fail);
		store[*n][k - fail] = '\0';
		d[*n].domain = store[*n];
		d[*n].len = k - fail;
		d[*n].pass = !fail;
		(*n)++;
		spec += k + (spec[k] == ',');
	}
}

/* The SPF, DKIM, draw and NXDOMAIN inputs of a row (no overrides). */
static void
make_input(const struct eval_row *r, struct dmarc_input *in,
    struct dmarc_dkim dk[4], char dstore[4][64])
{
	memset(in, 0, sizeof(*in));
	make_dkim(r->dkim, dstore, dk, &in->ndkim);
	in->dkim = dk;
	if (r->spf != NULL) {
		in->spf_pass = r->spf[0] != '-';
		in->spf_domain = r->spf + !in->spf_pass;
		in->spf_len = strlen(in->spf_domain);
	}
	in->draw = r->draw;
	in->from_nxdomain = r->nx;
}

static int
run_lookup(const struct eval_row *r, struct dmarc_lookup *lk)
{
	char store[4][256], want[300];
	const char *txt[4];
	size_t len[4];
	struct dmarc_txt ans;
	int q = 0;
	enum dmarc_step st =
	    dmarc_lookup_init(lk, psl, r->from, strlen(r->from));

	while (st == DMARC_STEP_QUERY && q < 3) {
		q++;
		(void)!str_fmt(want, sizeof(want), "_dmarc.%s", lk->from);
		str_lower(want);
		make_answer(
		    strcmp(lk->qname, want) == 0 ? r->at_from : r->at_org,
		    store, txt, len, &ans);
		if (q == 2) {
			(void)!str_fmt(
			    want, sizeof(want), "_dmarc.%s", lk->org);
			T_CHECK_STR(lk->qname, want);
		}
		st = dmarc_lookup_answer(lk, &ans);
	}
	return q;
}

static void
test_eval_table(void)
{
	size_t i;

	for (i = 0; i < sizeof(eval_rows) / sizeof(eval_rows[0]); i++) {
		const struct eval_row *r = &eval_rows[i];
		struct dmarc_lookup lk;
		struct dmarc_verdict v;
		struct dmarc_input in = {0};
		struct dmarc_dkim dk[4];
		struct dmarc_override ov;
		char dstore[4][64], ovd[64];

		t_case(r->name);
		T_CHECK_INT(run_lookup(r, &lk), r->queries);
		make_input(r, &in, dk, dstore);
		if (r->ov != NULL) {
			const char *eq = strchr(r->ov, '=');

			ov.subdomains = r->ov[0] == '*';
			memcpy(ovd, r->ov + ov.subdomains,
			    (size_t)(eq - r->ov) - ov.subdomains);
			ovd[eq - r->ov - ov.subdomains] = '\0';
			ov.domain = ovd;
			ov.disposition = strcmp(eq + 1, "none") == 0	 ? N
					 : strcmp(eq + 1, "reject") == 0 ? J
									 : Q;
			in.overrides = &ov;
			in.noverrides = 1;
		}
		dmarc_evaluate(&lk, psl, &in, &v);
		T_CHECK_STR(
		    dmarc_result_name(v.result), dmarc_result_name(r->want));
		T_CHECK_STR(dmarc_policy_name(v.disposition),
		    dmarc_policy_name(r->disp));
		T_CHECK(v.overridden ==
			(r->ov != NULL && v.result == FAIL &&
			    (r->ov[0] == '*' || strcmp(r->from, ovd) == 0)));
	}
}

static void
test_eval_details(void)
{
	struct dmarc_lookup lk;
	struct dmarc_verdict v;
	struct dmarc_input in = {0};
	const char *txt[1] = {"v=DMARC1; p=reject; sp=quarantine; pct=10"};
	size_t len[1] = {strlen(txt[0])};
	struct dmarc_txt none = {DMARC_DNS_OK, NULL, NULL, 0};
	struct dmarc_txt one = {DMARC_DNS_OK, txt, len, 1};

	t_case("verdict: sp used, sampled out, policy domain is the org");
	T_CHECK(dmarc_lookup_init(&lk, psl, "a.b.example.co.uk.", 18) ==
		DMARC_STEP_QUERY);
	T_CHECK_STR(lk.qname, "_dmarc.a.b.example.co.uk");
	T_CHECK(dmarc_lookup_answer(&lk, &none) == DMARC_STEP_QUERY);
	T_CHECK_STR(lk.qname, "_dmarc.example.co.uk");
	T_CHECK(dmarc_lookup_answer(&lk, &one) == DMARC_STEP_DONE);
	T_CHECK(lk.at_org && lk.why == DMARC_WHY_NONE);
	in.draw = 10;
	dmarc_evaluate(&lk, psl, &in, &v);
	T_CHECK(v.result == FAIL && v.used == DMARC_USED_SP);
	T_CHECK(v.policy == Q && v.disposition == N && v.sampled_out);
	T_CHECK_STR(v.policy_domain, "example.co.uk");
	t_case("verdict as an Authentication-Results resinfo");
	{
		struct authres_result ar;
		struct buf b;

		dmarc_authres(&lk, &v, &ar);
		buf_init(&b, 1024);
		T_CHECK(authres_build(&b, "mx.example.org", &ar, 1, 78) == 0);
		T_CHECK_STR(b.data,
		    "Authentication-Results: mx.example.org;\r\n"
		    "\tdmarc=fail reason=\"sampled out by pct\" "
		    "header.from=a.b.example.co.uk\r\n");
		buf_free(&b);
	}
	t_case("answer after done changes nothing");
	T_CHECK(dmarc_lookup_answer(&lk, &none) == DMARC_STEP_DONE);
	T_CHECK(lk.why == DMARC_WHY_NONE);
	t_case("evaluate before the lookup is done: temperror");
	(void)dmarc_lookup_init(&lk, psl, "example.com", 11);
	dmarc_evaluate(&lk, psl, &in, &v);
	T_CHECK(v.result == TEMP && v.disposition == N);
	t_case("qname too long for _dmarc.: straight to the org domain");
	{
		char big[260];

		memset(big, 'a', sizeof(big));
		for (size_t k = 60; k < 240; k += 61)
			big[k] = '.';
		memcpy(big + 240, ".example.com", 12);
		T_CHECK(
		    dmarc_lookup_init(&lk, psl, big, 252) == DMARC_STEP_QUERY);
		T_CHECK_STR(lk.qname, "_dmarc.example.com");
	}
	t_case("a record longer than DMARC_RECORD_MAX: permerror");
	{
		static char huge[DMARC_RECORD_MAX + 20];
		const char *h[1] = {huge};
		size_t hl[1] = {sizeof(huge)};
		struct dmarc_txt a = {DMARC_DNS_OK, h, hl, 1};

		memset(huge, ' ', sizeof(huge));
		memcpy(huge, "v=DMARC1; p=none;", 17);
		(void)dmarc_lookup_init(&lk, psl, "example.com", 11);
		T_CHECK(dmarc_lookup_answer(&lk, &a) == DMARC_STEP_DONE);
		T_CHECK(lk.result == PERM && lk.why == DMARC_WHY_BAD_POLICY);
	}
}

/* ---- external report destinations (7.1)
 * --------------------------------------- */

static void
test_rua_auth(void)
{
	char name[DMARC_QNAME_MAX + 1];
	const char *t1[] = {"v=spf1 -all", "v=DMARC1"};
	const char *t2[] = {"v=DMARC1; rua=mailto:other@reports.example!5m"};
	const char *t3[] = {"v=DMARC1; rua=mailto:x@elsewhere.example"};
	size_t l1[] = {11, 8}, l2[] = {strlen(t2[0])}, l3[] = {strlen(t3[0])};
	struct dmarc_txt a1 = {DMARC_DNS_OK, t1, l1, 2};
	struct dmarc_txt a2 = {DMARC_DNS_OK, t2, l2, 1};
	struct dmarc_txt a3 = {DMARC_DNS_OK, t3, l3, 1};
	struct dmarc_txt a4 = {DMARC_DNS_OK, t1, l1, 1};
	struct dmarc_txt nx = {DMARC_DNS_NXDOMAIN, NULL, NULL, 0};
	struct dmarc_txt tf = {DMARC_DNS_TEMPFAIL, NULL, NULL, 0};
	size_t idx = 99;

	t_case("7.1 external: org domains differ");
	T_CHECK(dmarc_rua_external(psl, "example.com", "reports.example", 15));
	T_CHECK(
	    !dmarc_rua_external(psl, "example.com", "dmarc.example.com", 17));
	T_CHECK(dmarc_rua_external(psl, "a.github.io", "b.github.io", 11));
	t_case("7.1 name");
	T_CHECK(dmarc_rua_auth_name("Example.com", "reports.example.", 16, name,
		    sizeof(name)) == 0);
	T_CHECK_STR(name, "example.com._report._dmarc.reports.example");
	T_CHECK(dmarc_rua_auth_name("", "r.example", 9, name, 64) == -1);
	t_case("7.1 judge");
	T_CHECK(dmarc_rua_auth_judge(&a1, "reports.example", 15, &idx) ==
		DMARC_RUA_AUTHORISED);
	T_CHECK(dmarc_rua_auth_judge(&a2, "reports.example", 15, &idx) ==
		DMARC_RUA_OVERRIDE);
	T_CHECK_INT(idx, 0);
	T_CHECK(dmarc_rua_auth_judge(&a3, "reports.example", 15, &idx) ==
		DMARC_RUA_REFUSED);
	T_CHECK(dmarc_rua_auth_judge(&a4, "reports.example", 15, &idx) ==
		DMARC_RUA_REFUSED);
	T_CHECK(dmarc_rua_auth_judge(&nx, "reports.example", 15, &idx) ==
		DMARC_RUA_REFUSED);
	T_CHECK(dmarc_rua_auth_judge(&tf, "reports.example", 15, &idx) ==
		DMARC_RUA_TEMPFAIL);
}

/*
 * One line per eval row for check_opendmarc.py, tab-separated ("-" for
 * none): name, From, SPF, DKIM, the record the lookup chose ("-": none),
 * whether it came from the organisational domain and which that is, then
 * our verdict: result, policy before pct, the tag used, disposition.
 */
static void
dump_cases(FILE *f)
{
	size_t i;

	t_case("dump"); /* run_lookup() checks the questions it is asked */
	for (i = 0; i < sizeof(eval_rows) / sizeof(eval_rows[0]); i++) {
		const struct eval_row *r = &eval_rows[i];
		struct dmarc_lookup lk;
		struct dmarc_verdict v;
		struct dmarc_input in = {0};
		struct dmarc_dkim dk[4];
		char dstore[4][64];
		static const char *const used[] = {"p", "sp", "np"};

		(void)run_lookup(r, &lk);
		make_input(r, &in, dk, dstore);
		dmarc_evaluate(&lk, psl, &in, &v);
		fprintf(f,
		    "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\n",
		    r->name, r->from, r->spf ? r->spf : "-",
		    r->dkim ? r->dkim : "-", lk.text[0] ? lk.text : "-",
		    lk.at_org ? 1 : 0, lk.org[0] ? lk.org : "-",
		    dmarc_result_name(v.result), dmarc_policy_name(v.policy),
		    used[v.used], dmarc_policy_name(v.disposition),
		    r->nx ? 1 : 0, (int)lk.why);
	}
}

/* OpenDMARC on the same cases, through check_opendmarc.py (see there). */
static void
test_opendmarc(void)
{
	struct t_pycheck pc;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	T_CHECK(f != NULL);
	if (f == NULL)
		return;
	dump_cases(f);
	T_CHECK(fclose(f) == 0);
	t_case("opendmarc agrees, or disagrees only as explained");
	T_CHECK(
	    t_pycheck_open(&pc, "test_dmarc", "check_opendmarc.py", __FILE__));
	T_CHECK(t_pycheck_write(&pc, "cases", ".tsv", text, len));
	T_CHECK(t_pycheck_run(&pc, "cases"));
	t_pycheck_close(&pc);
	free(text);
}

int
main(int argc, char **argv)
{
	if (psl_load_file(PSL_DEFAULT_PATH, &psl) != 0) {
		fprintf(stderr, "FAIL: %s: install Debian's publicsuffix\n",
		    PSL_DEFAULT_PATH);
		return 1;
	}
	if (argc > 1 && strcmp(argv[1], "--dump") == 0) {
		dump_cases(stdout);
		psl_free(psl);
		return 0;
	}
	T_RUN(test_psl_table);
	T_RUN(test_psl_misc);
	T_RUN(test_psl_official);
	T_RUN(test_psl_libpsl);
	T_RUN(test_record_table);
	T_RUN(test_eval_table);
	T_RUN(test_eval_details);
	T_RUN(test_rua_auth);
	T_RUN(test_opendmarc);
	psl_free(psl);
	return t_summary();
}
