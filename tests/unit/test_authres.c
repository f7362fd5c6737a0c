/*
 * Unit tests for src/mailauth/authres.c: Authentication-Results built
 * (exact output, folding, quoting, refusals) and read (authserv-id through
 * comments, quoting and folding; versions; resinfo views; bad input).
 *
 * Every header built is also read back by Python's authres module (Debian
 * python3-authres) and the email package in check_authres.py, which must
 * find the same authserv-id, methods, results, reasons and properties.
 */
#include "t.h"
#include "t_pycheck.h"
#include "mailauth/authres.h"

static struct t_pycheck pc;

/* ---- building ------------------------------------------------------------ */

struct build_row {
	const char *name, *id;
	struct authres_result r[4];
	size_t n, width;
	const char *want; /* NULL: refused */
};

static const struct build_row build_rows[] = {
    {"no results", "mx.example.org", {{0}}, 0, 78,
	"Authentication-Results: mx.example.org; none\r\n"},
    {"dkim spf dmarc", "mx.example.org",
	{{"dkim", "pass", NULL,
	     {{"header", "d", "example.com"}, {"header", "i", "@example.com"},
		 {"header", "b", "abcd1234"}},
	     3},
	    {"spf", "pass", NULL, {{"smtp", "mailfrom", "bounce@example.com"}},
		1},
	    {"dmarc", "pass", NULL, {{"header", "from", "example.com"}}, 1}},
	3, 78,
	"Authentication-Results: mx.example.org;\r\n"
	"\tdkim=pass header.d=example.com header.i=@example.com "
	"header.b=abcd1234;\r\n"
	"\tspf=pass smtp.mailfrom=bounce@example.com;\r\n"
	"\tdmarc=pass header.from=example.com\r\n"},
    {"quoting: reason, header.b with / and =, helo, quote and backslash",
	"mx.example.org",
	{{"dkim", "fail", "signature did not verify",
	     {{"header", "d", "example.com"}, {"header", "b", "ab/c+d=="}}, 2},
	    {"spf", "none", "say \"hi\" \\ bye",
		{{"smtp", "helo", "[192.0.2.1]"}}, 1}},
	2, 200,
	"Authentication-Results: mx.example.org;\r\n"
	"\tdkim=fail reason=\"signature did not verify\" header.d=example.com "
	"header.b=\"ab/c+d==\";\r\n"
	"\tspf=none reason=\"say \\\"hi\\\" \\\\ bye\" "
	"smtp.helo=\"[192.0.2.1]\"\r\n"},
    {"folding at width 40", "mx.example.org",
	{{"dmarc", "fail", "no aligned identifier",
	    {{"header", "from", "example.com"}, {"policy", "dmarc", "reject"}},
	    2}},
	1, 40,
	"Authentication-Results: mx.example.org;\r\n"
	"\tdmarc=fail\r\n"
	"\treason=\"no aligned identifier\"\r\n"
	"\theader.from=example.com\r\n"
	"\tpolicy.dmarc=reject\r\n"},
    /* the word ends at the width: its ';' would pass it, so it folds */
    {"fold keeps room for the semicolon", "mx.example.org",
	{{"dkim", "pass", NULL, {{"header", "d", "aaaaaaaaaaaa.example"}}, 1},
	    {"spf", "pass", NULL, {{0}}, 0}},
	2, 40,
	"Authentication-Results: mx.example.org;\r\n"
	"\tdkim=pass\r\n"
	"\theader.d=aaaaaaaaaaaa.example;\r\n"
	"\tspf=pass\r\n"},
    {"arc and a null sender's helo", "mx.example.org",
	{{"arc", "none", NULL, {{0}}, 0},
	    {"spf", "pass", NULL, {{"smtp", "helo", "mail.example.com"}}, 1}},
	2, 78,
	"Authentication-Results: mx.example.org;\r\n"
	"\tarc=none;\r\n"
	"\tspf=pass smtp.helo=mail.example.com\r\n"},
    {"odd authserv-id is quoted", "mx (one)", {{0}}, 0, 78,
	"Authentication-Results: \"mx (one)\"; none\r\n"},
    /* fuzz_authres: an id with '@' was written bare, as a pvalue may be,
     * and read back as the id "x.ex" (authserv-id is token/quoted only) */
    {"authserv-id with @ is quoted", "x.ex@smt`.sp`f", {{0}}, 0, 78,
	"Authentication-Results: \"x.ex@smt`.sp`f\"; none\r\n"},
    {"utf-8 local part is quoted", "mx.example.org",
	{{"spf", "pass", NULL,
	    {{"smtp", "mailfrom", "j\xc3\xb6rg@example.com"}}, 1}},
	1, 78,
	"Authentication-Results: mx.example.org;\r\n"
	"\tspf=pass smtp.mailfrom=\"j\xc3\xb6rg@example.com\"\r\n"},
    {"refused: CR LF in a value (header injection)", "mx.example.org",
	{{"spf", "pass", NULL, {{"smtp", "mailfrom", "a@b\r\nX-Evil: 1"}}, 1}},
	1, 78, NULL},
    {"refused: method not a keyword", "mx.example.org",
	{{"dk im", "pass", NULL, {{0}}, 0}}, 1, 78, NULL},
    {"refused: result with a semicolon", "mx.example.org",
	{{"dkim", "pass;spf=pass", NULL, {{0}}, 0}}, 1, 78, NULL},
    {"refused: empty authserv-id", "", {{0}}, 0, 78, NULL},
    {"refused: property with a dot", "mx.example.org",
	{{"dkim", "pass", NULL, {{"header", "d.x", "a"}}, 1}}, 1, 78, NULL},
};

/* The want file for check_authres.py: what authres must read back. */
static void
want_text(const struct build_row *r, struct buf *w)
{
	size_t i, k;

	T_CHECK(buf_printf(w, "id\t%s\n", r->id) == 0);
	for (i = 0; i < r->n; i++) {
		T_CHECK(buf_printf(w, "res\t%s\t%s\t%s\n", r->r[i].method,
			    r->r[i].result,
			    r->r[i].reason ? r->r[i].reason : "") == 0);
		for (k = 0; k < r->r[i].nprops; k++)
			T_CHECK(buf_printf(w, "prop\t%s\t%s\t%s\n",
				    r->r[i].props[k].ptype,
				    r->r[i].props[k].property,
				    r->r[i].props[k].value) == 0);
	}
}

/* Our own parser reads back what the builder wrote. */
static void
read_back(const struct build_row *r, const struct buf *b)
{
	struct authres_parsed p;
	const char *v = b->data + 23; /* after "Authentication-Results:" */
	size_t i;

	T_CHECK_INT(authres_parse(v, b->len - 23, &p), AUTHRES_OK);
	T_CHECK_STR(p.id, r->id);
	T_CHECK(authres_is_ours(v, b->len - 23, r->id));
	T_CHECK_INT(p.nresults, r->n);
	T_CHECK(p.none == (r->n == 0));
	for (i = 0; i < r->n && i < p.nresults; i++) {
		T_CHECK(p.res[i].method.n == strlen(r->r[i].method) &&
			memcmp(p.res[i].method.p, r->r[i].method,
			    p.res[i].method.n) == 0);
		T_CHECK_INT(p.res[i].nprops, r->r[i].nprops);
	}
}

static void
check_lines(const struct buf *b, size_t width)
{
	const char *s = b->data, *e;

	while ((e = strstr(s, "\r\n")) != NULL) {
		T_CHECK((size_t)(e - s) <= width);
		s = e + 2;
	}
	T_CHECK(s == b->data + b->len);
}

static void
test_build(void)
{
	size_t i;
	char name[16];

	for (i = 0; i < sizeof(build_rows) / sizeof(build_rows[0]); i++) {
		const struct build_row *r = &build_rows[i];
		struct buf b, w;

		t_case(r->name);
		buf_init(&b, 4096);
		buf_init(&w, 4096);
		T_CHECK(buf_append(&b, "X", 1) == 0); /* appends, keeps this */
		if (r->want == NULL) {
			T_CHECK_INT(
			    authres_build(&b, r->id, r->r, r->n, r->width), -1);
			T_CHECK(b.len == 1 && b.data[1] == '\0');
			buf_free(&b);
			buf_free(&w);
			continue;
		}
		T_CHECK_INT(authres_build(&b, r->id, r->r, r->n, r->width), 0);
		buf_consume(&b, 1);
		T_CHECK_STR(b.data, r->want);
		check_lines(&b, r->width);
		read_back(r, &b);
		want_text(r, &w);
		(void)!str_fmt(name, sizeof(name), "b%zu", i);
		T_CHECK(t_pycheck_write(&pc, name, ".hdr", b.data, b.len));
		T_CHECK(t_pycheck_write(&pc, name, ".want", w.data, w.len));
		T_CHECK(t_pycheck_run(&pc, name));
		buf_free(&b);
		buf_free(&w);
	}
}

static void
test_build_limits(void)
{
	struct authres_result r = {"dkim", "pass", NULL, {{0}}, 0};
	struct buf b;
	char big[AUTHRES_VALUE_MAX + 2];

	t_case("build: out's maximum reached leaves it as it was");
	buf_init(&b, 30);
	T_CHECK(authres_build(&b, "mx.example.org", &r, 1, 78) == -1);
	T_CHECK(b.len == 0);
	buf_free(&b);
	t_case("build: a value over AUTHRES_VALUE_MAX");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	r.props[0] = (struct authres_prop){"header", "d", big};
	r.nprops = 1;
	buf_init(&b, 1 << 16);
	T_CHECK(authres_build(&b, "mx.example.org", &r, 1, 78) == -1);
	big[sizeof(big) - 2] = '\0'; /* exactly the maximum: one long line */
	T_CHECK(authres_build(&b, "mx.example.org", &r, 1, 78) == 0);
	buf_free(&b);
	t_case("build: a tiny width is raised to 20");
	buf_init(&b, 4096);
	r.nprops = 0;
	T_CHECK(authres_build(&b, "mx.example.org", &r, 1, 1) == 0);
	T_CHECK_STR(b.data,
	    "Authentication-Results:\r\n\tmx.example.org;\r\n\tdkim=pass\r\n");
	buf_free(&b);
}

/* ---- reading --------------------------------------------------------------
 */

struct parse_row {
	const char *name, *in;
	size_t len; /* 0: strlen(in) */
	enum authres_status st;
	const char *id; /* NULL when BAD_ID */
	unsigned version, nresults;
	const char *res0;  /* "method=result" of the first, or NULL */
	const char *prop0; /* "ptype.property=value" (value as written) */
};

#define OK  AUTHRES_OK
#define BID AUTHRES_BAD_ID
#define BRS AUTHRES_BAD_RES

static const struct parse_row parse_rows[] = {
    {"plain", " mx.example.org; dkim=pass header.d=example.com", 0, OK,
	"mx.example.org", 1, 1, "dkim=pass", "header.d=example.com"},
    {"version and none", " mx.example.org 1 ; none", 0, OK, "mx.example.org", 1,
	0, NULL, NULL},
    {"comments everywhere",
	" (c1) mx.example.org (c2 (nested) \\) ) 1 (c3); (c4) spf (c5) = (c6) "
	"pass (c7) smtp.mailfrom (c8) = (c9) a@example.com (c10)",
	0, OK, "mx.example.org", 1, 1, "spf=pass",
	"smtp.mailfrom=a@example.com"},
    {"quoted authserv-id", " \"mx.example.org\"; dkim=pass", 0, OK,
	"mx.example.org", 1, 1, "dkim=pass", NULL},
    {"quoted id with quoted-pair", " \"mx\\\"x\"; none", 0, OK, "mx\"x", 1, 0,
	NULL, NULL},
    {"folded",
	" mx.example.org;\r\n\tdkim=pass\r\n\t header.d=example.com;"
	"\r\n spf=fail",
	0, OK, "mx.example.org", 1, 2, "dkim=pass", "header.d=example.com"},
    {"method version, reason, several props",
	" mx.example.org; dkim/1=fail reason=\"bad sig\" header.d=example.com "
	"header.i=@example.com header.b=\"ab/cd\"",
	0, OK, "mx.example.org", 1, 1, "dkim=fail", "header.d=example.com"},
    {"pvalue @domain only", " mx; dkim=pass header.i=@example.com", 0, OK, "mx",
	1, 1, "dkim=pass", "header.i=@example.com"},
    {"version 2", " mx.example.org 2; none", 0, OK, "mx.example.org", 2, 0,
	NULL, NULL},
    {"no results at all", " mx.example.org", 0, OK, "mx.example.org", 1, 0,
	NULL, NULL},
    {"trailing semicolon after none", " mx; none;", 0, OK, "mx", 1, 0, NULL,
	NULL},
    {"empty resinfo", " mx.example.org;", 0, BRS, "mx.example.org", 1, 0, NULL,
	NULL},
    {"method without result", " mx.example.org; dkim", 0, BRS, "mx.example.org",
	1, 0, NULL, NULL},
    {"two versions", " mx.example.org 1 2; none", 0, BRS, "mx.example.org", 1,
	0, NULL, NULL},
    {"junk after none", " mx.example.org; none dkim=pass", 0, BRS,
	"mx.example.org", 1, 0, NULL, NULL},
    {"property without dot", " mx; dkim=pass headerd=x", 0, BRS, "mx", 1, 1,
	"dkim=pass", NULL},
    {"unterminated comment after id", " mx.example.org (oops; dkim=pass", 0,
	BRS, "mx.example.org", 1, 0, NULL, NULL},
    {"unterminated comment first", " (oops mx.example.org; dkim=pass", 0, BID,
	NULL, 0, 0, NULL, NULL},
    {"empty", "", 0, BID, NULL, 0, 0, NULL, NULL},
    {"blank", " \t ", 0, BID, NULL, 0, 0, NULL, NULL},
    {"starts with ;", " ; dkim=pass", 0, BID, NULL, 0, 0, NULL, NULL},
    {"unterminated quoted id", " \"mx.example.org; dkim=pass", 0, BID, NULL, 0,
	0, NULL, NULL},
    {"empty quoted id", " \"\"; none", 0, BID, NULL, 0, 0, NULL, NULL},
    /* the fuzzer's first find: NUL inside a quoted id made an empty id */
    {"NUL in a quoted id", " \"\0\0mx\"; none", 10, BID, NULL, 0, 0, NULL,
	NULL},
    {"control byte in a quoted id", " \"m\x01x\"; none", 0, BID, NULL, 0, 0,
	NULL, NULL},
    {"folded quoted id is unfolded", " \"mx.\r\n example\"; none", 0, OK,
	"mx. example", 1, 0, NULL, NULL},
};

static bool
view_is(const struct authres_view *v, const char *s, size_t n)
{
	return v->n == n && memcmp(v->p, s, n) == 0;
}

static void
check_parse(const struct parse_row *r, const char *g, size_t len)
{
	struct authres_parsed p;

	T_CHECK_INT(authres_parse(g, len, &p), r->st);
	if (r->st == BID) {
		T_CHECK(!authres_is_ours(g, len, ""));
		return;
	}
	T_CHECK_STR(p.id, r->id);
	T_CHECK_INT(p.version, r->version);
	T_CHECK_INT(p.nresults, r->nresults);
	T_CHECK(authres_is_ours(g, len, r->id));
	if (r->res0 != NULL && p.nresults > 0) {
		const char *eq = strchr(r->res0, '=');

		T_CHECK(
		    view_is(&p.res[0].method, r->res0, (size_t)(eq - r->res0)));
		T_CHECK(view_is(&p.res[0].result, eq + 1, strlen(eq + 1)));
	}
	if (r->prop0 != NULL) {
		const char *dot = strchr(r->prop0, '.');
		const char *eq = strchr(r->prop0, '=');

		T_CHECK(p.nresults > 0 && p.res[0].nprops > 0);
		if (p.nresults > 0 && p.res[0].nprops > 0) {
			const struct authres_parsed_prop *pp =
			    &p.res[0].props[0];

			T_CHECK(view_is(
			    &pp->ptype, r->prop0, (size_t)(dot - r->prop0)));
			T_CHECK(view_is(
			    &pp->property, dot + 1, (size_t)(eq - dot - 1)));
			T_CHECK(view_is(&pp->value, eq + 1, strlen(eq + 1)));
		}
	}
}

static void
test_parse(void)
{
	size_t i, k;

	for (i = 0; i < sizeof(parse_rows) / sizeof(parse_rows[0]); i++) {
		const struct parse_row *r = &parse_rows[i];
		size_t len = r->len ? r->len : strlen(r->in), maplen;
		void *map;
		const char *g = t_guard(r->in, len, &map, &maplen);
		struct authres_parsed p;

		t_case(r->name);
		check_parse(r, g, len);
		t_unguard(map, maplen);
		for (k = 0; k < len; k++) { /* every prefix, guarded */
			g = t_guard(r->in, k, &map, &maplen);
			if (authres_parse(g, k, &p) != BID)
				T_CHECK(p.id[0] != '\0');
			t_unguard(map, maplen);
		}
	}
}

static void
test_is_ours(void)
{
	static const char *const v = " MX.Example.ORG (us); dkim=pass";

	t_case("is_ours: case-insensitive, not a prefix or a suffix");
	T_CHECK(authres_is_ours(v, strlen(v), "mx.example.org"));
	T_CHECK(!authres_is_ours(v, strlen(v), "mx.example.or"));
	T_CHECK(!authres_is_ours(v, strlen(v), "x.example.org"));
	T_CHECK(!authres_is_ours(
	    " mx.example.org.evil; none", 26, "mx.example.org"));
	T_CHECK(authres_is_ours(" mx.example.org; dkim", 21, "mx.example.org"));
	t_case("parse: more resinfos than kept are counted");
	{
		struct buf b;
		struct authres_parsed p;
		int i;

		buf_init(&b, 8192);
		T_CHECK(buf_append_str(&b, " mx;") == 0);
		for (i = 0; i < AUTHRES_RESULTS_MAX + 4; i++)
			T_CHECK(buf_printf(&b, " m%d=pass;", i) == 0);
		T_CHECK(buf_append_str(&b, " last=pass") == 0);
		T_CHECK_INT(authres_parse(b.data, b.len, &p), OK);
		T_CHECK_INT(p.nresults, AUTHRES_RESULTS_MAX + 5);
		T_CHECK(
		    view_is(&p.res[AUTHRES_RESULTS_MAX - 1].method, "m15", 3));
		buf_free(&b);
	}
}

static void
test_ours_in(void)
{
	static const char msg[] =
	    "Received: from x\r\n"
	    "Authentication-Results: mx.example.org; dkim=pass\r\n"
	    "Authentication-Results: other.example; spf=pass\r\n"
	    "authentication-results: (forged)\r\n"
	    "  \"MX.example.org\" 1;\r\n"
	    "\tdmarc=pass header.from=bank.example\r\n"
	    "X-Authentication-Results: mx.example.org; none\r\n"
	    "Subject: hi\r\n"
	    "\r\n"
	    "Authentication-Results: mx.example.org; none\r\n";
	struct authres_span sp[4];
	size_t n;

	t_case("fields claiming our id, in the header section only");
	n = authres_ours_in(msg, sizeof(msg) - 1, "mx.example.org", sp, 4);
	T_CHECK_INT(n, 2);
	T_CHECK_INT(sp[0].off, 18);
	T_CHECK_INT(sp[0].len, 51);
	T_CHECK(memcmp(msg + sp[1].off, "authentication-results: (forged)",
		    32) == 0);
	T_CHECK(memcmp(msg + sp[1].off + sp[1].len, "X-Auth", 6) == 0);
	t_case("more fields than spans: counted, not written past");
	n = authres_ours_in(msg, sizeof(msg) - 1, "mx.example.org", sp, 1);
	T_CHECK_INT(n, 2);
	T_CHECK_INT(authres_ours_in(msg, sizeof(msg) - 1, "nobody", sp, 4), 0);
}

/* ---- headers python3-authres makes, read by our parser ------------------- */

static bool
read_file(const char *path, struct buf *b)
{
	char chunk[4096];
	size_t n;
	FILE *f = fopen(path, "rb");

	if (f == NULL)
		return false;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (buf_append(b, chunk, n) != 0)
			break;
	fclose(f);
	return true;
}

/* A view as text, a quoted-string's quotes and quoted-pairs removed. */
static void
unquoted(const struct authres_view *v, char *out, size_t outlen)
{
	size_t i, k = 0, n = v->n;
	const char *p = v->p;

	if (n >= 2 && p[0] == '"')
		p++, n -= 2;
	for (i = 0; i < n && k + 1 < outlen; i++) {
		if (p[i] == '\\' && i + 1 < n)
			i++;
		out[k++] = p[i];
	}
	out[k] = '\0';
}

/* Compare one parsed header with the want lines the generator wrote. */
static void
check_generated(const struct authres_parsed *p, char *want)
{
	char *line, *save = NULL, got[256], exp[600];
	long r = -1, k = 0;

	for (line = strtok_r(want, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "id\t", 3) == 0) {
			T_CHECK_STR(p->id, line + 3);
		} else if (strncmp(line, "res\t", 4) == 0) {
			r++, k = 0;
			T_CHECK(r < (long)p->nresults);
			if (r >= (long)p->nresults)
				return;
			unquoted(&p->res[r].method, got, 64);
			(void)!str_fmt(exp, sizeof(exp), "res\t%s\t", got);
			unquoted(&p->res[r].result, got, 64);
			(void)!str_fmt(exp + strlen(exp),
			    sizeof(exp) - strlen(exp), "%s\t", got);
			unquoted(&p->res[r].reason, got, sizeof(got));
			(void)!str_fmt(exp + strlen(exp),
			    sizeof(exp) - strlen(exp), "%s",
			    p->res[r].reason.p ? got : "");
			T_CHECK_STR(exp, line);
		} else if (r >= 0 && k < (long)p->res[r].nprops) {
			const struct authres_parsed_prop *pp =
			    &p->res[r].props[k++];
			char ty[64], na[64];

			unquoted(&pp->ptype, ty, sizeof(ty));
			unquoted(&pp->property, na, sizeof(na));
			unquoted(&pp->value, got, sizeof(got));
			(void)!str_fmt(
			    exp, sizeof(exp), "prop\t%s\t%s\t%s", ty, na, got);
			T_CHECK_STR(exp, line);
		} else {
			T_CHECK(!"more properties wanted than parsed");
		}
	}
	T_CHECK_INT(r + 1, p->nresults);
}

static void
test_generated(void)
{
	char path[700], name[32];
	int i;

	t_case("python3-authres makes headers");
	T_CHECK(t_pycheck_run(&pc, "gen"));
	for (i = 0; i < 3; i++) {
		struct buf hdr, want;
		struct authres_parsed p;
		const char *v;

		(void)!str_fmt(name, sizeof(name), "authres header gen%d", i);
		t_case(name);
		buf_init(&hdr, 1 << 16);
		buf_init(&want, 1 << 16);
		(void)!str_fmt(path, sizeof(path), "%s/gen%d.hdr", pc.dir, i);
		T_CHECK(read_file(path, &hdr));
		(void)!str_fmt(path, sizeof(path), "%s/gen%d.want", pc.dir, i);
		T_CHECK(read_file(path, &want));
		T_CHECK(hdr.len > 23 &&
			memcmp(hdr.data, "Authentication-Results:", 23) == 0);
		if (hdr.len > 23 && want.len > 0) {
			v = hdr.data + 23;
			T_CHECK_INT(authres_parse(v, hdr.len - 23, &p), OK);
			check_generated(&p, want.data);
		}
		buf_free(&hdr);
		buf_free(&want);
	}
}

int
main(void)
{
	t_case("python checker");
	T_CHECK(
	    t_pycheck_open(&pc, "test_authres", "check_authres.py", __FILE__));
	T_RUN(test_build);
	T_RUN(test_build_limits);
	T_RUN(test_parse);
	T_RUN(test_is_ours);
	T_RUN(test_ours_in);
	T_RUN(test_generated);
	t_pycheck_close(&pc);
	return t_summary();
}
