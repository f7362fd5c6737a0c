/*
 * Unit tests for src/tlsrpt/tlsrpt.c (RFC 8460): the "_smtp._tls" TXT
 * record parser (a table, each row with its RFC section), the choice of
 * one record among several, the result-type of a TLS error, the RFC 3339
 * date-time, the counts (bounds, merging, taking a period), the durable
 * text form (round trip, a newer version refused, damaged input refused)
 * and the JSON report.
 */
#include "t.h"
#include "tlsrpt/tlsrpt.h"

/* ---- the TXT record --------------------------------------------------------
 */

struct rec_row {
	const char *name;
	const char *txt;
	enum tlsrpt_parse want;
	size_t nrua;
	const char *first; /* rua[0].uri, or NULL */
	const char *addr;  /* rua[0].addr when mailto, or NULL */
	size_t skipped;
};

static const struct rec_row rec_rows[] = {
    /* 3: the example of the RFC */
    {"mailto", "v=TLSRPTv1;rua=mailto:reports@example.com", TLSRPT_PARSE_OK, 1,
	"mailto:reports@example.com", "reports@example.com", 0},
    {"https", "v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt",
	TLSRPT_PARSE_OK, 1, "https://reporting.example.com/v1/tlsrpt", NULL, 0},
    /* 3: several URIs, comma separated, blanks allowed around */
    {"two", "v=TLSRPTv1; rua=mailto:a@example.com , https://r.example/x",
	TLSRPT_PARSE_OK, 2, "mailto:a@example.com", "a@example.com", 0},
    {"trailing semicolon", "v=TLSRPTv1;rua=mailto:a@example.com;",
	TLSRPT_PARSE_OK, 1, "mailto:a@example.com", "a@example.com", 0},
    /* 3: extension fields are ignored */
    {"extension", "v=TLSRPTv1; ext=1; rua=mailto:a@example.com",
	TLSRPT_PARSE_OK, 1, "mailto:a@example.com", "a@example.com", 0},
    /* %-encoded comma inside a URI (3: "," and ";" must be encoded) */
    {"pct comma", "v=TLSRPTv1; rua=https://r.example/a%2Cb", TLSRPT_PARSE_OK, 1,
	"https://r.example/a,b", NULL, 0},
    {"mailto query", "v=TLSRPTv1; rua=mailto:a@example.com?subject=x",
	TLSRPT_PARSE_OK, 1, "mailto:a@example.com?subject=x", "a@example.com",
	0},
    /* another scheme: skipped, the rest kept */
    {"http skipped", "v=TLSRPTv1; rua=http://r.example/,mailto:a@b.example",
	TLSRPT_PARSE_OK, 1, "mailto:a@b.example", "a@b.example", 1},
    {"only http", "v=TLSRPTv1; rua=http://r.example/", TLSRPT_PARSE_INVALID, 0,
	NULL, NULL, 1},
    {"no rua", "v=TLSRPTv1;", TLSRPT_PARSE_INVALID, 0, NULL, NULL, 0},
    {"empty rua", "v=TLSRPTv1; rua=", TLSRPT_PARSE_INVALID, 0, NULL, NULL, 0},
    {"rua twice", "v=TLSRPTv1; rua=mailto:a@b.example; rua=mailto:c@d.ex",
	TLSRPT_PARSE_INVALID, 1, NULL, NULL, 0},
    {"bad mailto", "v=TLSRPTv1; rua=mailto:nobody", TLSRPT_PARSE_INVALID, 0,
	NULL, NULL, 1},
    {"https no host", "v=TLSRPTv1; rua=https:///x", TLSRPT_PARSE_INVALID, 0,
	NULL, NULL, 1},
    {"bad pct", "v=TLSRPTv1; rua=https://r.example/%zz", TLSRPT_PARSE_INVALID,
	0, NULL, NULL, 1},
    /* 3: the version must come first, exactly */
    {"not first", "rua=mailto:a@b.example; v=TLSRPTv1", TLSRPT_PARSE_NOT_TLSRPT,
	0, NULL, NULL, 0},
    {"version case", "v=tlsrptv1; rua=mailto:a@b.example",
	TLSRPT_PARSE_NOT_TLSRPT, 0, NULL, NULL, 0},
    {"version 10", "v=TLSRPTv10; rua=mailto:a@b.example",
	TLSRPT_PARSE_NOT_TLSRPT, 0, NULL, NULL, 0},
    {"spf", "v=spf1 -all", TLSRPT_PARSE_NOT_TLSRPT, 0, NULL, NULL, 0},
    {"empty", "", TLSRPT_PARSE_NOT_TLSRPT, 0, NULL, NULL, 0},
};

static void
test_record_parse(void)
{
	size_t i;

	for (i = 0; i < sizeof(rec_rows) / sizeof(rec_rows[0]); i++) {
		const struct rec_row *r = &rec_rows[i];
		struct tlsrpt_record rec;

		t_case(r->name);
		T_CHECK_INT(
		    tlsrpt_record_parse(r->txt, strlen(r->txt), &rec), r->want);
		T_CHECK_INT(rec.nrua, r->nrua);
		T_CHECK_INT(rec.skipped, r->skipped);
		if (r->first != NULL) {
			T_CHECK(strcmp(rec.rua[0].uri, r->first) == 0);
			T_CHECK(rec.rua[0].mailto == (r->addr != NULL));
			if (r->addr != NULL)
				T_CHECK(strcmp(rec.rua[0].addr, r->addr) == 0);
		}
	}
}

static void
test_record_limits(void)
{
	char txt[TLSRPT_TXT_MAX + 64];
	struct tlsrpt_record rec;
	size_t i, at;

	t_case("more URIs than kept");
	at = (size_t)snprintf(txt, sizeof(txt), "v=TLSRPTv1; rua=");
	for (i = 0; i < TLSRPT_RUA_MAX + 3; i++)
		at += (size_t)snprintf(txt + at, sizeof(txt) - at,
		    "%smailto:r%zu@example.com", i ? "," : "", i);
	T_CHECK_INT(tlsrpt_record_parse(txt, at, &rec), TLSRPT_PARSE_OK);
	T_CHECK_INT(rec.nrua, TLSRPT_RUA_MAX);
	T_CHECK_INT(rec.skipped, 3);

	t_case("a record over the size kept");
	memset(txt, 'a', sizeof(txt));
	memcpy(txt, "v=TLSRPTv1; x=", 14);
	T_CHECK_INT(tlsrpt_record_parse(txt, TLSRPT_TXT_MAX + 1, &rec),
	    TLSRPT_PARSE_INVALID);

	t_case("a URI longer than kept");
	at = (size_t)snprintf(txt, sizeof(txt), "v=TLSRPTv1; rua=https://r/");
	memset(txt + at, 'p', TLSRPT_URI_MAX);
	at += TLSRPT_URI_MAX;
	T_CHECK_INT(tlsrpt_record_parse(txt, at, &rec), TLSRPT_PARSE_INVALID);
	T_CHECK_INT(rec.skipped, 1);
}

static void
test_record_pick(void)
{
	const char *a[] = {
	    "v=spf1 -all", "v=TLSRPTv1; rua=mailto:a@b.ex", "other"};
	const char *two[] = {
	    "v=TLSRPTv1; rua=mailto:a@b.ex", "v=TLSRPTv1;rua=mailto:c@d.ex"};
	const char *none[] = {"v=TLSRPTv10; rua=mailto:a@b.ex", "x"};
	size_t la[3], lt[2], ln[2], i;

	for (i = 0; i < 3; i++)
		la[i] = strlen(a[i]);
	for (i = 0; i < 2; i++) {
		lt[i] = strlen(two[i]);
		ln[i] = strlen(none[i]);
	}
	t_case("one among others");
	T_CHECK_INT(tlsrpt_record_pick(a, la, 3), 1);
	t_case("two records: none (3)");
	T_CHECK_INT(tlsrpt_record_pick(two, lt, 2), -2);
	t_case("no record");
	T_CHECK_INT(tlsrpt_record_pick(none, ln, 2), -1);
	T_CHECK_INT(tlsrpt_record_pick(none, ln, 0), -1);
}

/* ---- names and errors ---------------------------------------------------- */

static void
test_names(void)
{
	struct {
		const char *why;
		enum tlsrpt_result want;
	} rows[] = {
	    {"certificate has expired", TLSRPT_CERT_EXPIRED},
	    {"certificate is not yet valid", TLSRPT_CERT_EXPIRED},
	    {"hostname mismatch", TLSRPT_CERT_HOST_MISMATCH},
	    {"self-signed certificate", TLSRPT_CERT_NOT_TRUSTED},
	    {"unable to get local issuer certificate", TLSRPT_CERT_NOT_TRUSTED},
	    {"timeout", TLSRPT_VALIDATION_FAILURE},
	    {"error:0A000410:SSL routines::sslv3 alert handshake failure",
		TLSRPT_VALIDATION_FAILURE},
	    {NULL, TLSRPT_VALIDATION_FAILURE},
	};
	size_t i;
	int r;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		t_case(rows[i].why != NULL ? rows[i].why : "NULL");
		T_CHECK_INT(
		    tlsrpt_result_of_tls_error(rows[i].why), rows[i].want);
	}
	t_case("names round trip");
	for (r = 0; r < TLSRPT_RESULT__N; r++) {
		const char *n = tlsrpt_result_name((enum tlsrpt_result)r);

		T_CHECK_INT(tlsrpt_result_of(n, strlen(n)), r);
	}
	T_CHECK(strcmp(tlsrpt_policy_name(TLSRPT_POL_NONE),
		    "no-policy-found") == 0);
	T_CHECK_INT(tlsrpt_policy_of("sts", 3), TLSRPT_POL_STS);
	T_CHECK_INT(tlsrpt_result_of("succes", 6), -1);
}

static void
test_datetime(void)
{
	char b[32];

	t_case("epoch");
	T_CHECK_INT(tlsrpt_datetime(0, b, sizeof(b)), 0);
	T_CHECK(strcmp(b, "1970-01-01T00:00:00Z") == 0);
	t_case("RFC 8460 example day");
	T_CHECK_INT(tlsrpt_datetime(1459468800, b, sizeof(b)), 0);
	T_CHECK(strcmp(b, "2016-04-01T00:00:00Z") == 0);
	t_case("leap day");
	T_CHECK_INT(tlsrpt_datetime(951825599, b, sizeof(b)), 0);
	T_CHECK(strcmp(b, "2000-02-29T11:59:59Z") == 0);
	t_case("out of range");
	T_CHECK_INT(tlsrpt_datetime(-1, b, sizeof(b)), -1);
	T_CHECK_INT(tlsrpt_datetime(253402300800LL, b, sizeof(b)), -1);
	T_CHECK_INT(tlsrpt_datetime(0, b, 10), -1);
}

/* ---- counts ------------------------------------------------------------- */

static void
rec(struct tlsrpt *t, const char *dom, enum tlsrpt_result r, const char *mx,
    const char *ip)
{
	struct tlsrpt_outcome o = {0};

	o.domain = dom;
	o.policy = TLSRPT_POL_NONE;
	o.mx_host = mx;
	o.result = r;
	o.sending_ip = "192.0.2.1";
	o.receiving_ip = ip;
	o.reason = r == TLSRPT_SUCCESS ? NULL : "why \"quoted\"\n";
	tlsrpt_record(t, &o);
}

static void
test_counts(void)
{
	struct tlsrpt *t = tlsrpt_new(1000, 2);
	uint64_t ok, fail;
	size_t i;
	struct tlsrpt_outcome o = {0};
	const char *strings[] = {"version: STSv1", "mode: enforce"};

	t_case("counted per domain, case folded, root dot dropped");
	rec(t, "Example.COM.", TLSRPT_SUCCESS, "mx.example.com", "192.0.2.9");
	rec(t, "example.com", TLSRPT_STARTTLS_NOT_SUPPORTED, "mx.example.com",
	    "192.0.2.9");
	rec(t, "example.com", TLSRPT_STARTTLS_NOT_SUPPORTED, "mx.example.com",
	    "192.0.2.9");
	rec(t, "example.net", TLSRPT_SUCCESS, "mx.example.net", "192.0.2.8");
	T_CHECK_INT(tlsrpt_ndomains(t), 2);
	T_CHECK(strcmp(tlsrpt_domain(t, 0), "example.com") == 0);
	tlsrpt_domain_counts(t, 0, &ok, &fail);
	T_CHECK_INT(ok, 1);
	T_CHECK_INT(fail, 2);
	T_CHECK_INT(tlsrpt_sessions(t), 4);

	t_case("max_domains: the third domain is dropped and counted");
	rec(t, "example.org", TLSRPT_SUCCESS, "mx.example.org", "192.0.2.7");
	T_CHECK_INT(tlsrpt_ndomains(t), 2);
	T_CHECK_INT(tlsrpt_dropped(t), 1);

	t_case("max_domains lowered: the domains kept stay, none added");
	tlsrpt_set_max_domains(t, 1);
	rec(t, "example.net", TLSRPT_SUCCESS, "mx.example.net", "192.0.2.8");
	rec(t, "example.org", TLSRPT_SUCCESS, "mx.example.org", "192.0.2.7");
	T_CHECK_INT(tlsrpt_ndomains(t), 2);
	T_CHECK_INT(tlsrpt_dropped(t), 2);
	tlsrpt_domain_counts(t, 1, &ok, &fail);
	T_CHECK_INT(ok, 2);
	t_case("max_domains raised: a new domain is kept");
	tlsrpt_set_max_domains(t, 3);
	rec(t, "example.org", TLSRPT_SUCCESS, "mx.example.org", "192.0.2.7");
	T_CHECK_INT(tlsrpt_ndomains(t), 3);
	T_CHECK_INT(tlsrpt_dropped(t), 2);

	t_case("bad values are dropped, never kept");
	rec(t, "exa mple.com", TLSRPT_SUCCESS, "mx", "192.0.2.7");
	rec(t, "example.com", TLSRPT_CERT_EXPIRED, "mx host", "192.0.2.7");
	T_CHECK_INT(tlsrpt_dropped(t), 4);
	tlsrpt_record(NULL, &o); /* reports off: a no-op */
	o.domain = "";
	tlsrpt_record(t, &o);
	T_CHECK_INT(tlsrpt_dropped(t), 4);

	t_case("policies of one domain apart; details capped");
	o.domain = "example.net";
	o.policy = TLSRPT_POL_STS;
	o.policy_strings = strings;
	o.npolicy_strings = 2;
	o.result = TLSRPT_CERT_HOST_MISMATCH;
	o.mx_host = "mx.example.net";
	for (i = 0; i < TLSRPT_DETAILS_MAX + 5; i++) {
		char ip[32];

		snprintf(ip, sizeof(ip), "198.51.100.%zu", i);
		o.receiving_ip = ip;
		tlsrpt_record(t, &o);
	}
	tlsrpt_domain_counts(t, 1, &ok, &fail);
	T_CHECK_INT(ok, 2); /* one more above */
	T_CHECK_INT(fail, TLSRPT_DETAILS_MAX + 5);
	tlsrpt_free(t);
}

static void
test_take_merge(void)
{
	struct tlsrpt *t = tlsrpt_new(1000, 10), *old, *back;
	uint64_t ok, fail;

	t_case("take empties the table, keeps the pointer");
	rec(t, "example.com", TLSRPT_SUCCESS, "mx.example.com", "192.0.2.9");
	old = tlsrpt_take(t, 2000);
	T_CHECK_INT(tlsrpt_ndomains(t), 0);
	T_CHECK_INT(tlsrpt_begin(t), 2000);
	T_CHECK_INT(tlsrpt_ndomains(old), 1);
	T_CHECK_INT(tlsrpt_begin(old), 1000);
	rec(t, "example.com", TLSRPT_STARTTLS_NOT_SUPPORTED, "mx.example.com",
	    "192.0.2.9");

	t_case("a domain merged back adds up");
	tlsrpt_merge_domain(t, old, 0);
	tlsrpt_domain_counts(t, 0, &ok, &fail);
	T_CHECK_INT(ok, 1);
	T_CHECK_INT(fail, 1);
	back = tlsrpt_new(0, 10);
	tlsrpt_merge_domain(back, t, 0);
	tlsrpt_merge_domain(back, t, 0);
	tlsrpt_domain_counts(back, 0, &ok, &fail);
	T_CHECK_INT(ok, 2);
	T_CHECK_INT(fail, 2);
	tlsrpt_free(back);
	tlsrpt_free(old);
	tlsrpt_free(t);
}

/* ---- the text form ------------------------------------------------------- */

static void
test_state(void)
{
	struct tlsrpt *t = tlsrpt_new(1700000000, 10), *u;
	struct buf a, b;
	char err[200];
	uint64_t ok, fail;
	struct tlsrpt_outcome o = {0};
	const char *strings[] = {"version: STSv1", "mode: testing",
	    "mx: *.example.net", "max_age: 86400"};
	const char *mx[] = {"*.example.net"};

	rec(t, "example.com", TLSRPT_SUCCESS, "mx.example.com", "192.0.2.9");
	rec(t, "example.com", TLSRPT_STARTTLS_NOT_SUPPORTED, "mx.example.com",
	    "192.0.2.9");
	o.domain = "example.net";
	o.policy = TLSRPT_POL_STS;
	o.policy_strings = strings;
	o.npolicy_strings = 4;
	o.mx_patterns = mx;
	o.nmx_patterns = 1;
	o.result = TLSRPT_STS_WEBPKI_INVALID;
	o.mx_host = "mx1.example.net";
	o.receiving_ip = "2001:db8::1";
	o.reason = "-";
	tlsrpt_record(t, &o);
	buf_init(&a, 1 << 20);
	buf_init(&b, 1 << 20);

	t_case("round trip");
	T_CHECK_INT(tlsrpt_encode(t, &a), 0);
	T_CHECK(
	    strncmp(a.data, "tlsrpt-state 1\nbegin 1700000000 0\n", 34) == 0);
	u = tlsrpt_new(1800000000, 10);
	T_CHECK_INT(tlsrpt_decode(u, a.data, a.len, err, sizeof(err)), 0);
	T_CHECK_INT(tlsrpt_begin(u), 1700000000);
	T_CHECK_INT(tlsrpt_encode(u, &b), 0);
	T_CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
	tlsrpt_domain_counts(u, 1, &ok, &fail);
	T_CHECK_INT(fail, 1);

	t_case("decoding again adds up");
	T_CHECK_INT(tlsrpt_decode(u, a.data, a.len, err, sizeof(err)), 0);
	tlsrpt_domain_counts(u, 0, &ok, &fail);
	T_CHECK_INT(ok, 2);
	T_CHECK_INT(fail, 2);
	tlsrpt_free(u);

	t_case("a newer version is refused, saying so");
	u = tlsrpt_new(0, 10);
	T_CHECK_INT(tlsrpt_decode(
			u, "tlsrpt-state 2\nbegin 1 0\n", 25, err, sizeof(err)),
	    -1);
	T_CHECK(strstr(err, "written by a newer tern") != NULL);
	T_CHECK_INT(tlsrpt_ndomains(u), 0);

	t_case("damage is refused, nothing added");
	{
		static const char *const bad[] = {
		    "",
		    "tlsrpt-state 1\n",
		    "tlsrpt-state x\nbegin 1 0\n",
		    "tlsrpt-state 1\nbegin 1 0\nD example.com\nP sts 1 0 0 - -",
		    "tlsrpt-state 1\nbegin 1 0\nP sts 1 0 0 - -\n",
		    "tlsrpt-state 1\nbegin 1 0\nD a b\n",
		    "tlsrpt-state 1\nbegin 1 0\nD example.com\nP foo 1 0 0 - "
		    "-\n",
		    "tlsrpt-state 1\nbegin 1 0\nD example.com\nP sts 1 0 0 "
		    "%zz -\n",
		    "tlsrpt-state 1\nbegin 1 0\nD example.com\nP sts 1 0 0 - "
		    "-\nF success 1 - - - - -\n",
		    "tlsrpt-state 1\nbegin 1 0\nD example.com\nP sts 1 0 0 - "
		    "-\nF dane-required 1 - - a%20b - -\n",
		    "tlsrpt-state 1\nbegin 1 0\nD example.com\nP sts "
		    "99999999999999999999 0 0 - -\n",
		};
		size_t i;

		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
			T_CHECK_INT(tlsrpt_decode(u, bad[i], strlen(bad[i]),
					err, sizeof(err)),
			    -1);
		T_CHECK_INT(tlsrpt_ndomains(u), 0);
	}
	tlsrpt_free(u);
	buf_free(&a);
	buf_free(&b);
	tlsrpt_free(t);
}

/* ---- the report ---------------------------------------------------------- */

static void
test_json(void)
{
	struct tlsrpt *t = tlsrpt_new(1459468800, 10);
	struct tlsrpt_meta m = {
	    "Org \"A\"", "tlsrpt@example.org", "id-1", 1459468800, 1459555199};
	struct buf out;
	char name[300], f[200];
	static const char want[] =
	    "{\"organization-name\":\"Org \\\"A\\\"\","
	    "\"date-range\":{\"start-datetime\":\"2016-04-01T00:00:00Z\","
	    "\"end-datetime\":\"2016-04-01T23:59:59Z\"},"
	    "\"contact-info\":\"tlsrpt@example.org\",\"report-id\":\"id-1\","
	    "\"policies\":[{\"policy\":{\"policy-type\":\"no-policy-found\","
	    "\"policy-domain\":\"example.com\"},"
	    "\"summary\":{\"total-successful-session-count\":1,"
	    "\"total-failure-session-count\":2},"
	    "\"failure-details\":[{\"result-type\":\"starttls-not-supported\","
	    "\"sending-mta-ip\":\"192.0.2.1\","
	    "\"receiving-mx-hostname\":\"mx.example.com\","
	    "\"receiving-ip\":\"192.0.2.9\",\"failed-session-count\":2,"
	    "\"failure-reason-code\":\"why \\\"quoted\\\"?\"}]}]}\n";

	rec(t, "example.com", TLSRPT_SUCCESS, "mx.example.com", "192.0.2.9");
	rec(t, "example.com", TLSRPT_STARTTLS_NOT_SUPPORTED, "mx.example.com",
	    "192.0.2.9");
	rec(t, "example.com", TLSRPT_STARTTLS_NOT_SUPPORTED, "mx.example.com",
	    "192.0.2.9");
	buf_init(&out, 1 << 16);
	t_case("the report, byte for byte");
	T_CHECK_INT(tlsrpt_report_json(t, 0, &m, &out), 0);
	T_CHECK(
	    out.len == strlen(want) && memcmp(out.data, want, out.len) == 0);
	if (out.len != strlen(want) || memcmp(out.data, want, out.len) != 0)
		fprintf(stderr, "got %.*s", (int)out.len, out.data);

	t_case("no such domain; a full buffer");
	T_CHECK_INT(tlsrpt_report_json(t, 1, &m, &out), -1);
	buf_free(&out);
	buf_init(&out, 40);
	T_CHECK_INT(tlsrpt_report_json(t, 0, &m, &out), -1);
	buf_free(&out);

	t_case("the attachment's name and the mail's fields (5.3)");
	T_CHECK_INT(tlsrpt_filename("mx.example.org", "example.com", 1, 2,
			"abc", name, sizeof(name)),
	    0);
	T_CHECK(
	    strcmp(name, "mx.example.org!example.com!1!2!abc.json.gz") == 0);
	T_CHECK_INT(tlsrpt_filename(
			"a!b", "example.com", 1, 2, "abc", name, sizeof(name)),
	    -1);
	T_CHECK_INT(
	    tlsrpt_mail_fields("example.com", "mx.example.org", f, sizeof(f)),
	    0);
	T_CHECK(strcmp(f, "TLS-Report-Domain: example.com\r\n"
			  "TLS-Report-Submitter: mx.example.org\r\n") == 0);
	T_CHECK_INT(
	    tlsrpt_mail_fields("example.com\r\nBcc: x", "s", f, sizeof(f)), -1);
	tlsrpt_free(t);
}

int
main(void)
{
	T_RUN(test_record_parse);
	T_RUN(test_record_limits);
	T_RUN(test_record_pick);
	T_RUN(test_names);
	T_RUN(test_datetime);
	T_RUN(test_counts);
	T_RUN(test_take_merge);
	T_RUN(test_state);
	T_RUN(test_json);
	return t_summary();
}
