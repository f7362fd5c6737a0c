/*
 * Unit tests for DMARC aggregate reports: the pure builder
 * (src/mailauth/dmarcxml.c: XML, DKIM text, file name, mail, the rule for
 * each rua URI) and the store (src/dmarcdb/dmarcdb.c: aggregation,
 * periods, the row bound, clearing, the schema version, gzip).  Every
 * report made here is validated by tests/unit/check_dmarcxml.py against
 * dmarc_rua.xsd (RFC 7489 appendix C) with xmllint.
 */
#include <stdlib.h>
#include <zlib.h>

#include <sqlite3.h>

#include "t.h"
#include "t_pycheck.h"
#include "dmarcdb/dmarcdb.h"
#include "mailauth/dmarcxml.h"
#include "mailauth/psl.h"

static struct psl *psl;
static struct t_pycheck pc;
static bool pc_ok;

static void
row_init(struct dmarcxml_row *r, const char *ip, const char *from)
{
	memset(r, 0, sizeof(*r));
	T_CHECK(
	    str_copy(r->source_ip, sizeof(r->source_ip), ip, strlen(ip)) == 0);
	T_CHECK(str_copy(r->header_from, sizeof(r->header_from), from,
		    strlen(from)) == 0);
	T_CHECK(str_copy(r->spf_domain, sizeof(r->spf_domain), from,
		    strlen(from)) == 0);
	memcpy(r->spf_scope, "mfrom", 6);
	memcpy(r->spf_result, "pass", 5);
	r->count = 1;
	r->disposition = DMARC_P_NONE;
	r->spf_pass = true;
}

static void
pol_init(struct dmarcxml_policy *p, const char *domain)
{
	memset(p, 0, sizeof(*p));
	T_CHECK(str_copy(
		    p->domain, sizeof(p->domain), domain, strlen(domain)) == 0);
	p->p = DMARC_P_REJECT;
	p->sp = DMARC_P_QUARANTINE;
	p->adkim = DMARC_ALIGN_STRICT;
	p->pct = 100;
}

static void
expect_write(const char *name, const char *text)
{
	T_CHECK(t_pycheck_write(&pc, name, ".expect", text, strlen(text)));
}

/* ---- the XML --------------------------------------------------------- */

static void
test_xml_valid(void)
{
	struct dmarcxml_meta m = {"Org & <Sons>", "dmarc@r.example", "id'\"1",
	    1700000000, 1700086399};
	struct dmarcxml_policy pol;
	struct dmarcxml_row r;
	struct buf out;

	buf_init(&out, 1 << 20);
	pol_init(&pol, "example.com");
	T_CHECK(dmarcxml_begin(&m, &pol, &out) == 0);
	row_init(&r, "192.0.2.1", "example.com");
	r.count = 7;
	r.dkim_pass = true;
	r.ndkim = 2;
	memcpy(r.dkim[0].domain, "example.com", 12);
	memcpy(r.dkim[0].selector, "s1", 3);
	memcpy(r.dkim[0].result, "pass", 5);
	memcpy(r.dkim[1].domain, "other.net", 10);
	memcpy(r.dkim[1].result, "permerror", 10);
	memcpy(r.envelope_from, "bounce.example.com", 19);
	T_CHECK(dmarcxml_row(&r, &out) == 0);
	row_init(&r, "2001:db8::1", "example.com");
	r.disposition = DMARC_P_QUARANTINE;
	r.spf_pass = false;
	memcpy(r.spf_result, "softfail", 9);
	memcpy(r.spf_scope, "helo", 5);
	memcpy(r.reason, "sampled_out", 12);
	r.count = 3;
	T_CHECK(dmarcxml_row(&r, &out) == 0);
	T_CHECK(dmarcxml_end(&out) == 0);
	T_CHECK(strstr(out.data, "Org &amp; &lt;Sons&gt;") != NULL);
	T_CHECK(
	    pc_ok && t_pycheck_write(&pc, "two", ".xml", out.data, out.len));
	expect_write("two", "report_metadata/org_name=Org & <Sons>\n"
			    "report_metadata/report_id=id'\"1\n"
			    "report_metadata/date_range/begin=1700000000\n"
			    "policy_published/p=reject\n"
			    "policy_published/sp=quarantine\n"
			    "policy_published/adkim=s\n"
			    "policy_published/aspf=r\n"
			    "records=2\nsum=10\n"
			    "record/row/policy_evaluated/dkim=pass\n"
			    "record/auth_results/dkim/selector=s1\n"
			    "record/identifiers/envelope_from=bounce.example."
			    "com\n");
	T_CHECK(t_pycheck_run(&pc, "two"));
	buf_free(&out);
}

/* A row the schema does not allow is refused whole: nothing written. */
static void
test_xml_bad_rows(void)
{
	struct dmarcxml_row r;
	struct buf out;
	size_t i;
	static const char *const bad[] = {"count", "spf_result", "scope",
	    "dkim_result", "reason", "disposition", "header_from", "ip"};

	buf_init(&out, 1 << 16);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		row_init(&r, "192.0.2.1", "example.com");
		T_CHECK(dmarcxml_row_ok(&r));
		switch (i) {
		case 0:
			r.count = 0;
			break;
		case 1:
			memcpy(r.spf_result, "PASS", 5);
			break;
		case 2:
			memcpy(r.spf_scope, "from", 5);
			break;
		case 3:
			r.ndkim = 1;
			memcpy(r.dkim[0].domain, "a.example", 10);
			memcpy(r.dkim[0].result, "ok", 3);
			break;
		case 4:
			memcpy(r.reason, "because", 8);
			break;
		case 5:
			r.disposition = DMARC_P_INVALID;
			break;
		case 6:
			r.header_from[0] = '\0';
			break;
		case 7:
			r.source_ip[0] = '\0';
			break;
		}
		T_CHECK(!dmarcxml_row_ok(&r));
		T_CHECK(dmarcxml_row(&r, &out) == -1);
		T_CHECK_INT(out.len, 0);
	}
	/* a row that does not fit leaves no half record */
	buf_free(&out);
	buf_init(&out, 100);
	row_init(&r, "192.0.2.1", "example.com");
	T_CHECK(buf_append_str(&out, "<x>") == 0);
	T_CHECK(dmarcxml_row(&r, &out) == -1);
	T_CHECK_STR(out.data, "<x>");
	buf_free(&out);
}

static void
test_dkim_text(void)
{
	struct dmarcxml_row r, back;
	char text[DMARCXML_DKIM_TEXT_MAX + 1];
	size_t i;
	static const char *const bad[] = {"a", "a/b", "/s/pass", "a/s/PASS",
	    "a/s/pass ", "a/s/pass  b/c/fail",
	    "a/s/pass b/s/pass c/s/pass d/s/pass e/s/pass f/s/pass"};

	row_init(&r, "192.0.2.1", "example.com");
	T_CHECK(dmarcxml_dkim_encode(&r, text, sizeof(text)) == 0);
	T_CHECK_STR(text, "");
	r.ndkim = 2;
	memcpy(r.dkim[0].domain, "example.com", 12);
	memcpy(r.dkim[0].selector, "s1", 3);
	memcpy(r.dkim[0].result, "pass", 5);
	memcpy(r.dkim[1].domain, "b.example", 10);
	memcpy(r.dkim[1].result, "temperror", 10);
	T_CHECK(dmarcxml_dkim_encode(&r, text, sizeof(text)) == 0);
	T_CHECK_STR(text, "example.com/s1/pass b.example//temperror");
	memset(&back, 0, sizeof(back));
	T_CHECK(dmarcxml_dkim_decode(text, &back) == 0);
	T_CHECK_INT(back.ndkim, 2);
	T_CHECK_STR(back.dkim[0].selector, "s1");
	T_CHECK_STR(back.dkim[1].selector, "");
	T_CHECK_STR(back.dkim[1].result, "temperror");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		T_CHECK(dmarcxml_dkim_decode(bad[i], &back) == -1);
		T_CHECK_INT(back.ndkim, 0);
	}
	/* a selector with the separator cannot be stored */
	memcpy(r.dkim[0].selector, "a/b", 4);
	T_CHECK(dmarcxml_dkim_encode(&r, text, sizeof(text)) == -1);
}

static void
test_filename(void)
{
	char name[128];

	T_CHECK(dmarcxml_filename("mx.example.net", "example.com", 1700000000,
		    1700086399, name, sizeof(name)) == 0);
	T_CHECK_STR(name, "mx.example.net!example.com!1700000000!1700086399."
			  "xml.gz");
	T_CHECK(dmarcxml_filename("r", "d", 1, 2, name, 8) == -1);
}

/* ---- destinations (6.2 !size, 7.1) ----------------------------------- */

struct dest_row {
	const char *policy_domain, *rua;
	uint64_t size;
	enum dmarcxml_dest want;
	const char *addr; /* NULL: no address */
};

static const struct dest_row dest_rows[] = {
    /* same organisational domain: send */
    {"example.com", "mailto:dmarc@example.com", 1000, DMARCXML_DEST_SEND,
	"dmarc@example.com"},
    {"mail.example.com", "mailto:d@reports.example.com", 10, DMARCXML_DEST_SEND,
	"d@reports.example.com"},
    {"example.com", "mailto:D@Example.COM", 10, DMARCXML_DEST_SEND,
	"D@Example.COM"},
    /* !size: a report of exactly the limit fits, one octet more does not */
    {"example.com", "mailto:d@example.com!10k", 10240, DMARCXML_DEST_SEND,
	"d@example.com"},
    {"example.com", "mailto:d@example.com!10k", 10241, DMARCXML_DEST_TOO_BIG,
	"d@example.com"},
    {"example.com", "mailto:d@example.com!1m", 1048577, DMARCXML_DEST_TOO_BIG,
	"d@example.com"},
    {"example.com", "mailto:d@example.com!500", 400, DMARCXML_DEST_SEND,
	"d@example.com"},
    /* the size rule first, even for an external one */
    {"example.com", "mailto:d@other.net!1k", 2000, DMARCXML_DEST_TOO_BIG,
	"d@other.net"},
    /* external: its consent is needed (7.1) */
    {"example.com", "mailto:d@other.net", 10, DMARCXML_DEST_NEEDS_AUTH,
	"d@other.net"},
    {"example.co.uk", "mailto:d@other.co.uk", 10, DMARCXML_DEST_NEEDS_AUTH,
	"d@other.co.uk"},
    {"a.example.co.uk", "mailto:d@b.example.co.uk", 10, DMARCXML_DEST_SEND,
	"d@b.example.co.uk"},
    /* %-escapes and hfields of RFC 6068 */
    {"example.com", "mailto:dmarc%2Dreports@example.com?subject=x", 10,
	DMARCXML_DEST_SEND, "dmarc-reports@example.com"},
    {"example.com", "mailto:a%2Cb@example.com", 10, DMARCXML_DEST_BAD, NULL},
    {"example.com", "mailto:a%2@example.com", 10, DMARCXML_DEST_BAD, NULL},
    {"example.com", "https://example.com/dmarc", 10, DMARCXML_DEST_NOT_MAILTO,
	NULL},
};

static void
test_dest_table(void)
{
	size_t i;

	for (i = 0; i < sizeof(dest_rows) / sizeof(dest_rows[0]); i++) {
		const struct dest_row *d = &dest_rows[i];
		char text[512], addr[320];
		struct dmarc_record rec;

		T_CHECK(str_fmt(text, sizeof(text), "v=DMARC1; rua=%s",
			    d->rua) == 0);
		T_CHECK(dmarc_record_parse(text, strlen(text), &rec) ==
			DMARC_PARSE_OK);
		if (rec.nrua != 1) {
			T_CHECK_INT(rec.nrua, 1);
			fprintf(stderr, "  row %zu: %s\n", i, d->rua);
			continue;
		}
		if (dmarcxml_dest_check(psl, d->policy_domain, &rec.rua[0],
			d->size) != d->want) {
			T_CHECK(false);
			fprintf(stderr, "  row %zu: %s got %s\n", i, d->rua,
			    dmarcxml_dest_name(dmarcxml_dest_check(
				psl, d->policy_domain, &rec.rua[0], d->size)));
		}
		if (d->addr != NULL) {
			T_CHECK(dmarcxml_mailto_addr(
				    &rec.rua[0], addr, sizeof(addr)) == 0);
			T_CHECK_STR(addr, d->addr);
		} else {
			T_CHECK(dmarcxml_mailto_addr(
				    &rec.rua[0], addr, sizeof(addr)) == -1);
		}
	}
}

/* ---- one evaluated message (dmarcxml_record) ---------------------------- */

/* lk after discovery for from, with record text answering at _dmarc.from */
static bool
lookup_with(struct dmarc_lookup *lk, const char *from, const char *record)
{
	const char *txt[1] = {record};
	size_t len[1] = {strlen(record)};
	struct dmarc_txt ans = {DMARC_DNS_OK, txt, len, 1};

	if (dmarc_lookup_init(lk, psl, from, strlen(from)) != DMARC_STEP_QUERY)
		return false;
	return dmarc_lookup_answer(lk, &ans) == DMARC_STEP_DONE;
}

static void
test_record(void)
{
	struct dmarc_lookup *lk = xcalloc(1, sizeof(*lk));
	struct dmarc_verdict v;
	struct dmarc_dkim dk[1] = {{"Example.COM", 11, true}};
	struct dmarc_input in = {
	    "bounce.example.com", 18, false, dk, 1, false, 0, NULL, 0};
	struct dmarcxml_auth_dkim ad[2] = {
	    {"Example.COM", "Sel1", "pass"}, {"other.net", NULL, "fail"}};
	struct dmarcxml_msg m = {"192.0.2.1", "bounce.example.com", ad, 2,
	    "bounce.example.com", false, "softfail"};
	struct dmarcxml_policy pol;
	struct dmarcxml_row row;
	char rua[256];

	T_CHECK(lookup_with(lk, "example.com",
	    "v=DMARC1; p=reject; adkim=s; pct=100; "
	    "rua=mailto:a@example.com!20k,https://x.example/r,"
	    "mailto:b@other.net"));
	dmarc_evaluate(lk, psl, &in, &v);
	T_CHECK_INT(v.result, DMARC_RESULT_PASS);
	T_CHECK(dmarcxml_record(lk, &v, &m, &pol, rua, sizeof(rua), &row) == 0);
	T_CHECK_STR(rua, "mailto:a@example.com!20480,mailto:b@other.net");
	T_CHECK_STR(pol.domain, "example.com");
	T_CHECK_INT(pol.p, DMARC_P_REJECT);
	T_CHECK_INT(pol.sp, DMARC_P_REJECT); /* sp absent: p (6.3) */
	T_CHECK_INT(pol.adkim, DMARC_ALIGN_STRICT);
	T_CHECK_INT(row.count, 1);
	T_CHECK(row.dkim_pass && !row.spf_pass);
	T_CHECK_INT(row.disposition, DMARC_P_NONE);
	T_CHECK_STR(row.header_from, "example.com");
	T_CHECK_STR(row.envelope_from, "bounce.example.com");
	T_CHECK_STR(row.spf_scope, "mfrom");
	T_CHECK_STR(row.spf_result, "softfail");
	T_CHECK_INT(row.ndkim, 2);
	T_CHECK_STR(row.dkim[0].domain, "example.com");
	T_CHECK_STR(row.dkim[0].selector, "sel1");
	T_CHECK_STR(row.dkim[1].selector, "");
	T_CHECK(dmarcxml_row_ok(&row));

	/* a failing message of a subdomain, policy at the organisational
	 * domain: sp applies; pct sampled it out to quarantine */
	T_CHECK(lookup_with(lk, "mail.example.com", "v=DMARC1; p=none"));
	{
		const char *txt[1] = {"v=DMARC1; p=none; sp=reject; pct=10; "
				      "rua=mailto:a@example.com"};
		size_t len[1] = {strlen(txt[0])};
		struct dmarc_txt none = {DMARC_DNS_NXDOMAIN, NULL, NULL, 0};
		struct dmarc_txt org = {DMARC_DNS_OK, txt, len, 1};

		T_CHECK(dmarc_lookup_init(lk, psl, "mail.example.com", 16) ==
			DMARC_STEP_QUERY);
		T_CHECK(dmarc_lookup_answer(lk, &none) == DMARC_STEP_QUERY);
		T_CHECK(dmarc_lookup_answer(lk, &org) == DMARC_STEP_DONE);
	}
	in.ndkim = 0;
	in.draw = 50;
	m.ndkim = 0;
	m.spf_helo = true;
	m.envelope_from = "";
	m.spf_domain = "helo.example.net";
	m.spf_result = "fail";
	dmarc_evaluate(lk, psl, &in, &v);
	T_CHECK_INT(v.result, DMARC_RESULT_FAIL);
	T_CHECK(dmarcxml_record(lk, &v, &m, &pol, rua, sizeof(rua), &row) == 0);
	T_CHECK_STR(pol.domain, "example.com");
	T_CHECK_INT(pol.sp, DMARC_P_REJECT);
	T_CHECK_INT(row.disposition, DMARC_P_QUARANTINE);
	T_CHECK_STR(row.reason, "sampled_out");
	T_CHECK_STR(row.header_from, "mail.example.com");
	T_CHECK_STR(row.spf_scope, "helo");
	T_CHECK_STR(row.envelope_from, "");

	/* nothing to record: no rua mailto:, or no policy */
	T_CHECK(lookup_with(
	    lk, "example.com", "v=DMARC1; p=reject; rua=https://x.example/r"));
	dmarc_evaluate(lk, psl, &in, &v);
	T_CHECK(dmarcxml_record(lk, &v, &m, &pol, rua, sizeof(rua), &row) == 1);
	T_CHECK(lookup_with(lk, "example.com", "v=spf1 -all"));
	dmarc_evaluate(lk, psl, &in, &v);
	T_CHECK_INT(v.result, DMARC_RESULT_NONE);
	T_CHECK(dmarcxml_record(lk, &v, &m, &pol, rua, sizeof(rua), &row) == 1);
	/* a result word the schema does not have is refused */
	T_CHECK(lookup_with(
	    lk, "example.com", "v=DMARC1; p=reject; rua=mailto:a@example.com"));
	dmarc_evaluate(lk, psl, &in, &v);
	m.spf_result = "bogus";
	T_CHECK(
	    dmarcxml_record(lk, &v, &m, &pol, rua, sizeof(rua), &row) == -1);
	free(lk);
}

/* ---- the store ---------------------------------------------------------- */

static void
entry_init(
    struct dmarcdb_entry *e, int64_t period, const char *domain, const char *ip)
{
	memset(e, 0, sizeof(*e));
	e->period = period;
	pol_init(&e->pol, domain);
	T_CHECK(
	    str_fmt(e->rua, sizeof(e->rua), "mailto:d@%s!10m", domain) == 0);
	row_init(&e->row, ip, domain);
}

static void
db_path(char *out, size_t outlen, const char *name)
{
	T_CHECK(str_fmt(out, outlen, "%s/%s", pc.dir, name) == 0);
}

static void
test_store_aggregate(void)
{
	struct dmarcdb *db = NULL;
	struct dmarcdb_entry e[6];
	struct dmarcdb_report r;
	struct dmarcxml_meta m = {"org", "from@r.example", "rid", 0, 0};
	char path[600], err[256], **dom = NULL;
	size_t dropped = 9, n = 0;

	db_path(path, sizeof(path), "agg.db");
	T_CHECK(pc_ok && dmarcdb_open(path, false, &db, err, sizeof(err)) == 0);
	if (db == NULL)
		return;
	/* two equal messages, one from another address, one later period,
	 * one of another domain, one that is not a valid row */
	entry_init(&e[0], 100, "example.com", "192.0.2.1");
	entry_init(&e[1], 100, "example.com", "192.0.2.1");
	entry_init(&e[2], 100, "example.com", "192.0.2.2");
	entry_init(&e[3], 200, "example.com", "192.0.2.1");
	entry_init(&e[4], 100, "other.org", "192.0.2.1");
	entry_init(&e[5], 100, "example.com", "192.0.2.3");
	memcpy(e[5].row.spf_result, "maybe", 6);
	T_CHECK(dmarcdb_add(db, e, 6, 1000, &dropped, err, sizeof(err)) == 0);
	T_CHECK_INT(dropped, 1);
	T_CHECK_INT(dmarcdb_rows(db), 4);
	T_CHECK(dmarcdb_domains(db, 150, &dom, &n, err, sizeof(err)) == 0);
	T_CHECK_INT(n, 2);
	if (n == 2) {
		T_CHECK_STR(dom[0], "example.com");
		T_CHECK_STR(dom[1], "other.org");
	}
	dmarcdb_domains_free(dom, n);
	/* the report before 150: period 100 only; equal rows summed */
	T_CHECK(dmarcdb_report(db, "example.com", 150, &m, 1 << 20, &r, err,
		    sizeof(err)) == 0);
	T_CHECK_INT(r.nrows, 2);
	T_CHECK_INT(r.messages, 3);
	T_CHECK_INT(r.begin, 100);
	T_CHECK_INT(r.end, 149);
	T_CHECK_STR(r.rua, "mailto:d@example.com!10m");
	T_CHECK(t_pycheck_write(&pc, "agg", ".xml", r.xml.data, r.xml.len));
	expect_write("agg", "records=2\nsum=3\npolicy_published/domain=example."
			    "com\nreport_metadata/date_range/end=149\n");
	T_CHECK(t_pycheck_run(&pc, "agg"));
	dmarcdb_report_free(&r);
	/* every period: rows of 100 and 200 with equal fields are one record */
	T_CHECK(dmarcdb_report(db, "example.com", 1000, &m, 1 << 20, &r, err,
		    sizeof(err)) == 0);
	T_CHECK_INT(r.nrows, 2);
	T_CHECK_INT(r.messages, 4);
	dmarcdb_report_free(&r);
	/* a report that cannot fit its limit says so (2), never cut */
	T_CHECK(dmarcdb_report(db, "example.com", 1000, &m, 700, &r, err,
		    sizeof(err)) == 2);
	T_CHECK(strstr(err, "larger than 700") != NULL);
	dmarcdb_report_free(&r);
	T_CHECK(dmarcdb_report(db, "example.com", 1000, &m, 100, &r, err,
		    sizeof(err)) == 2);
	dmarcdb_report_free(&r);
	/* clearing before 150 keeps the later period */
	T_CHECK(dmarcdb_clear(db, "example.com", 150, err, sizeof(err)) == 0);
	T_CHECK_INT(dmarcdb_rows(db), 2);
	T_CHECK(dmarcdb_report(db, "example.com", 150, &m, 1 << 20, &r, err,
		    sizeof(err)) == 1);
	dmarcdb_report_free(&r);
	T_CHECK(dmarcdb_report(db, "example.com", 1000, &m, 1 << 20, &r, err,
		    sizeof(err)) == 0);
	T_CHECK_INT(r.messages, 1);
	dmarcdb_report_free(&r);
	dmarcdb_close(db);
	/* what was committed is there after a reopen */
	T_CHECK(dmarcdb_open(path, true, &db, err, sizeof(err)) == 0);
	if (db != NULL)
		T_CHECK_INT(dmarcdb_rows(db), 2);
	dmarcdb_close(db);
}

/* Past max_rows a new row is dropped; counting an old one goes on. */
static void
test_store_bound(void)
{
	struct dmarcdb *db = NULL;
	struct dmarcdb_entry *e = xcalloc(10, sizeof(*e));
	char path[600], err[256], ip[32];
	size_t i, dropped = 0;

	db_path(path, sizeof(path), "bound.db");
	T_CHECK(pc_ok && dmarcdb_open(path, false, &db, err, sizeof(err)) == 0);
	if (db == NULL) {
		free(e);
		return;
	}
	for (i = 0; i < 10; i++) {
		T_CHECK(str_fmt(ip, sizeof(ip), "192.0.2.%zu", i) == 0);
		entry_init(&e[i], 1, "example.com", ip);
	}
	T_CHECK(dmarcdb_add(db, e, 10, 4, &dropped, err, sizeof(err)) == 0);
	T_CHECK_INT(dropped, 6);
	T_CHECK_INT(dmarcdb_rows(db), 4);
	/* an existing row still counts; a new one is still dropped */
	T_CHECK(dmarcdb_add(db, e, 10, 4, &dropped, err, sizeof(err)) == 0);
	T_CHECK_INT(dropped, 6);
	T_CHECK_INT(dmarcdb_rows(db), 4);
	dmarcdb_close(db);
	free(e);
}

/* A file of a newer schema is refused, read-only or not. */
static void
test_store_version(void)
{
	struct dmarcdb *db = NULL;
	char path[600], err[256];
	sqlite3 *s;

	db_path(path, sizeof(path), "new.db");
	T_CHECK(pc_ok && sqlite3_open(path, &s) == SQLITE_OK);
	T_CHECK(sqlite3_exec(s, "PRAGMA user_version = 2", NULL, NULL, NULL) ==
		SQLITE_OK);
	sqlite3_close(s);
	T_CHECK(dmarcdb_open(path, false, &db, err, sizeof(err)) == -1);
	T_CHECK(strstr(err, "newer") != NULL);
	T_CHECK(dmarcdb_open(path, true, &db, err, sizeof(err)) == -1);
	T_CHECK(db == NULL);
	/* a file ternd never made is not read as a report store */
	db_path(path, sizeof(path), "none.db");
	T_CHECK(dmarcdb_open(path, true, &db, err, sizeof(err)) == -1);
}

static void
test_gzip(void)
{
	struct buf in, gz;
	unsigned char back[5000];
	uLongf n = sizeof(back);
	z_stream z;
	size_t i;

	buf_init(&in, 1 << 20);
	buf_init(&gz, 1 << 20);
	for (i = 0; i < 4000; i++)
		T_CHECK(buf_append(&in, &"<record/>"[i % 9], 1) == 0);
	T_CHECK(dmarcdb_gzip(in.data, in.len, &gz) == 0);
	T_CHECK(gz.len > 18 && (unsigned char)gz.data[0] == 0x1f &&
		(unsigned char)gz.data[1] == 0x8b);
	memset(&z, 0, sizeof(z));
	T_CHECK(inflateInit2(&z, 15 + 16) == Z_OK);
	z.next_in = (Bytef *)gz.data;
	z.avail_in = (uInt)gz.len;
	z.next_out = back;
	z.avail_out = (uInt)n;
	T_CHECK(inflate(&z, Z_FINISH) == Z_STREAM_END);
	T_CHECK_INT(z.total_out, in.len);
	T_CHECK(memcmp(back, in.data, in.len) == 0);
	inflateEnd(&z);
	/* a buffer too small fails, never a cut stream */
	buf_free(&gz);
	buf_init(&gz, 10);
	T_CHECK(dmarcdb_gzip(in.data, in.len, &gz) == -1);
	buf_free(&in);
	buf_free(&gz);
}

/* The whole mail, judged by Python's email package and xmllint. */
static void
test_mail(void)
{
	struct dmarcdb *db = NULL;
	struct dmarcdb_entry e;
	struct dmarcdb_report r;
	struct dmarcxml_meta m = {"org", "dmarc@r.example", "1.abc", 0, 0};
	const char *to[] = {"d@example.com", "e@example.com"};
	struct dmarcxml_mail mail = {"dmarc@r.example", to, 2, "example.com",
	    "r.example", "1.abc", "Mon, 1 Jan 2024 00:00:00 +0000",
	    "<1.abc@r.example>", "=_b", NULL, NULL};
	char path[600], err[256], name[300];
	struct buf gz, msg;
	size_t dropped;

	db_path(path, sizeof(path), "mail.db");
	T_CHECK(pc_ok && dmarcdb_open(path, false, &db, err, sizeof(err)) == 0);
	if (db == NULL)
		return;
	entry_init(&e, 5, "example.com", "198.51.100.7");
	e.row.count = 41;
	T_CHECK(dmarcdb_add(db, &e, 1, 10, &dropped, err, sizeof(err)) == 0);
	T_CHECK(dmarcdb_report(db, "example.com", 10, &m, 1 << 20, &r, err,
		    sizeof(err)) == 0);
	buf_init(&gz, 1 << 20);
	buf_init(&msg, 1 << 20);
	T_CHECK(dmarcdb_gzip(r.xml.data, r.xml.len, &gz) == 0);
	T_CHECK(dmarcxml_filename("r.example", "example.com", r.begin, r.end,
		    name, sizeof(name)) == 0);
	T_CHECK(dmarcxml_mail_head(&mail, &msg) == 0);
	T_CHECK(dmarcxml_mail_body("=_b", "example.com", name,
		    (const unsigned char *)gz.data, gz.len, &msg) == 0);
	T_CHECK(t_pycheck_write(&pc, "mail", ".eml", msg.data, msg.len));
	T_CHECK(t_pycheck_write(&pc, "mail", ".filename", name, strlen(name)));
	expect_write("mail", "records=1\nsum=41\nrecord/row/source_ip=198.51."
			     "100.7\nreport_metadata/report_id=1.abc\n");
	T_CHECK(t_pycheck_run(&pc, "mail"));
	/* a header field cannot be made to carry a line break */
	buf_reset(&msg);
	mail.domain = "example.com\r\nBcc: x@y";
	T_CHECK(dmarcxml_mail_head(&mail, &msg) == -1);
	buf_free(&gz);
	buf_free(&msg);
	dmarcdb_report_free(&r);
	dmarcdb_close(db);
}

int
main(void)
{
	if (psl_load_file(PSL_DEFAULT_PATH, &psl) != 0) {
		fprintf(stderr, "FAIL: %s: install Debian's publicsuffix\n",
		    PSL_DEFAULT_PATH);
		return 1;
	}
	pc_ok =
	    t_pycheck_open(&pc, "test_dmarcrep", "check_dmarcxml.py", __FILE__);
	T_RUN(test_xml_valid);
	T_RUN(test_xml_bad_rows);
	T_RUN(test_dkim_text);
	T_RUN(test_filename);
	T_RUN(test_dest_table);
	T_RUN(test_record);
	T_RUN(test_store_aggregate);
	T_RUN(test_store_bound);
	T_RUN(test_store_version);
	T_RUN(test_gzip);
	T_RUN(test_mail);
	if (pc_ok)
		t_pycheck_close(&pc);
	psl_free(psl);
	return t_summary();
}
