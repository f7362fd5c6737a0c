/*
 * Unit tests for src/deliver/tlspolicy.c: the [tls_policy] map (parse,
 * exact and parent-domain matches) and a table of decisions, one row per
 * combination of override, DNSSEC, MX and host security and TLSA outcome
 * (RFC 7672 2.2: DANE with usable records, mandatory TLS with unusable
 * ones, a failed TLSA lookup defers; insecure anything falls through).
 */
#include <string.h>

#include "deliver/dns.h"
#include "deliver/tlspolicy.h"

#include "t.h"

struct pcase {
	const char *name;
	const char *map;    /* [tls_policy] as conf keeps it, or NULL */
	const char *domain; /* lower case */
	bool dnssec, mx_secure, host_secure;
	enum dns_tlsa tlsa;
	size_t usable;
	/* expected */
	enum tlspol_source src;
	bool starttls, require, dane, verify_ca, defer;
	const char *tlsrpt;
};

#define OPP TLSPOL_SRC_OPPORTUNISTIC
#define DAN TLSPOL_SRC_DANE
#define OVR TLSPOL_SRC_OVERRIDE

static const struct pcase cases[] = {
    {"no dnssec: opportunistic", NULL, "a.test", false, true, true,
	DNS_TLSA_SECURE, 1, OPP, true, false, false, false, false, NULL},
    {"dane: usable secure TLSA", NULL, "a.test", true, true, true,
	DNS_TLSA_SECURE, 1, DAN, true, true, true, false, false, NULL},
    {"dane: only unusable records: TLS required", NULL, "a.test", true, true,
	true, DNS_TLSA_SECURE, 0, DAN, true, true, false, false, false, NULL},
    {"dane: TLSA lookup failed defers", NULL, "a.test", true, true, true,
	DNS_TLSA_FAILED, 0, DAN, true, true, false, false, true,
	"dnssec-invalid"},
    {"insecure MX: no DANE", NULL, "a.test", true, false, true, DNS_TLSA_SECURE,
	1, OPP, true, false, false, false, false, NULL},
    {"insecure host addresses: no DANE", NULL, "a.test", true, true, false,
	DNS_TLSA_SECURE, 1, OPP, true, false, false, false, false, NULL},
    {"insecure MX and failed TLSA: opportunistic", NULL, "a.test", true, false,
	true, DNS_TLSA_FAILED, 0, OPP, true, false, false, false, false, NULL},
    {"secure denial of TLSA", NULL, "a.test", true, true, true, DNS_TLSA_NONE,
	0, OPP, true, false, false, false, false, NULL},
    {"insecure TLSA", NULL, "a.test", true, true, true, DNS_TLSA_INSECURE, 0,
	OPP, true, false, false, false, false, NULL},
    {"override none", "a.test:none", "a.test", true, true, true,
	DNS_TLSA_SECURE, 1, OVR, false, false, false, false, false, NULL},
    {"override may beats DANE", "a.test:may", "a.test", true, true, true,
	DNS_TLSA_SECURE, 1, OVR, true, false, false, false, false, NULL},
    {"override encrypt", "x.test:none,a.test:encrypt", "a.test", false, false,
	false, DNS_TLSA_NOT_ASKED, 0, OVR, true, true, false, false, false,
	NULL},
    {"override verify", "a.test:verify", "a.test", false, false, false,
	DNS_TLSA_NOT_ASKED, 0, OVR, true, true, false, true, false, NULL},
    {"override dane with TLSA", "a.test:dane", "a.test", true, true, true,
	DNS_TLSA_SECURE, 1, OVR, true, true, true, false, false, NULL},
    {"override dane without TLSA is may", "a.test:dane", "a.test", true, true,
	true, DNS_TLSA_NONE, 0, OVR, true, false, false, false, false, NULL},
    {"override dane-only with TLSA", "a.test:dane-only", "a.test", true, true,
	true, DNS_TLSA_SECURE, 1, OVR, true, true, true, false, false, NULL},
    {"override dane-only without TLSA defers", "a.test:dane-only", "a.test",
	true, true, true, DNS_TLSA_INSECURE, 0, OVR, true, true, false, false,
	true, "dane-required"},
    {"override dane-only without dnssec defers", "a.test:dane-only", "a.test",
	false, true, true, DNS_TLSA_SECURE, 1, OVR, true, true, false, false,
	true, "dane-required"},
    {"parent entry covers a subdomain", ".a.test:none", "mx.b.a.test", false,
	false, false, DNS_TLSA_NOT_ASKED, 0, OVR, false, false, false, false,
	false, NULL},
    {"parent entry is not the domain itself", ".a.test:none", "a.test", false,
	false, false, DNS_TLSA_NOT_ASKED, 0, OPP, true, false, false, false,
	false, NULL},
    {"exact entry wins over the parent", ".a.test:none,b.a.test:encrypt",
	"b.a.test", false, false, false, DNS_TLSA_NOT_ASKED, 0, OVR, true, true,
	false, false, false, NULL},
    {"other domain untouched", "a.test:none", "b.test", false, false, false,
	DNS_TLSA_NOT_ASKED, 0, OPP, true, false, false, false, false, NULL},
};

static void
test_choose(void)
{
	static struct dns_result res;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct pcase *c = &cases[i];
		struct tlspol_map *m = tlspol_map_parse(c->map);
		struct tlspol p;

		t_case(c->name);
		T_CHECK(m != NULL);
		memset(&res, 0, sizeof(res));
		res.status = DNS_OK;
		res.nhosts = 1;
		res.secure = c->mx_secure;
		res.hosts[0].secure = c->host_secure;
		res.hosts[0].tlsa = c->tlsa;
		res.hosts[0].tlsa_set.n = c->usable;
		res.hosts[0].tlsa_set.unusable = c->usable == 0;
		tlspol_choose(m, c->domain, &res, 0, c->dnssec, NULL, &p);
		T_CHECK_STR(
		    tlspol_source_name(p.source), tlspol_source_name(c->src));
		T_CHECK_INT(p.starttls, c->starttls);
		T_CHECK_INT(p.require_tls, c->require);
		T_CHECK_INT(p.dane, c->dane);
		T_CHECK_INT(p.verify_ca, c->verify_ca);
		T_CHECK_INT(p.defer, c->defer);
		T_CHECK_STR(p.tlsrpt != NULL ? p.tlsrpt : "",
		    c->tlsrpt != NULL ? c->tlsrpt : "");
		T_CHECK(!p.defer || (p.why != NULL && p.why[0] != '\0'));
		tlspol_map_free(m);
	}
}

/* MTA-STS's place in the order: after an override and DANE, before
 * opportunistic TLS (RFC 8461 2). */
static void
test_choose_sts(void)
{
	static struct dns_result res;
	static struct sts_policy enforce, testing;
	struct tlspol_map *none = tlspol_map_parse(NULL);
	struct tlspol_map *may = tlspol_map_parse("a.test:may");
	struct tlspol p;

	enforce.mode = STS_MODE_ENFORCE;
	testing.mode = STS_MODE_TESTING;
	memset(&res, 0, sizeof(res));
	res.status = DNS_OK;
	res.nhosts = 1;

	t_case("sts enforce: TLS required, a CA-verified name");
	tlspol_choose(none, "a.test", &res, 0, true, &enforce, &p);
	T_CHECK_STR(tlspol_source_name(p.source), "mta-sts");
	T_CHECK(p.starttls && p.require_tls && p.verify_ca && !p.dane);
	T_CHECK(!p.defer);

	t_case("sts testing: opportunistic, reported as mta-sts");
	tlspol_choose(none, "a.test", &res, 0, true, &testing, &p);
	T_CHECK_STR(tlspol_source_name(p.source), "mta-sts");
	T_CHECK(p.starttls && !p.require_tls && !p.verify_ca);

	t_case("DANE wins over sts enforce");
	res.secure = res.hosts[0].secure = true;
	res.hosts[0].tlsa = DNS_TLSA_SECURE;
	res.hosts[0].tlsa_set.n = 1;
	tlspol_choose(none, "a.test", &res, 0, true, &enforce, &p);
	T_CHECK_STR(tlspol_source_name(p.source), "dane");
	T_CHECK(p.dane && p.require_tls);

	t_case("without dns.dnssec the TLSA records are not trusted: sts");
	tlspol_choose(none, "a.test", &res, 0, false, &enforce, &p);
	T_CHECK_STR(tlspol_source_name(p.source), "mta-sts");
	T_CHECK(p.verify_ca && !p.dane);

	t_case("an override wins over sts enforce");
	tlspol_choose(may, "a.test", &res, 0, false, &enforce, &p);
	T_CHECK_STR(tlspol_source_name(p.source), "override");
	T_CHECK(p.starttls && !p.require_tls && !p.verify_ca);
	tlspol_map_free(none);
	tlspol_map_free(may);
}

static void
test_map(void)
{
	enum tlspol_level l;
	struct tlspol_map *m;

	t_case("level names round-trip");
	for (int i = TLSPOL_NONE; i <= TLSPOL_DANE_ONLY; i++) {
		const char *n = tlspol_level_name((enum tlspol_level)i);

		T_CHECK_INT(tlspol_level_parse(n, strlen(n), &l), 0);
		T_CHECK_INT(l, i);
	}
	T_CHECK_INT(tlspol_level_parse("DANE-Only", 9, &l), 0);
	T_CHECK_INT(l, TLSPOL_DANE_ONLY);
	T_CHECK_INT(tlspol_level_parse("secure", 6, &l), -1);
	T_CHECK_INT(tlspol_level_parse("dane", 3, &l), -1);

	t_case("empty and NULL maps");
	m = tlspol_map_parse(NULL);
	T_CHECK(m != NULL && !tlspol_map_wants_dane(m));
	tlspol_map_free(m);
	m = tlspol_map_parse("");
	T_CHECK(m != NULL);
	tlspol_map_free(m);
	tlspol_map_free(NULL);

	t_case("wants dane");
	m = tlspol_map_parse("a.test:may,b.test:dane");
	T_CHECK(m != NULL && tlspol_map_wants_dane(m));
	tlspol_map_free(m);

	t_case("bad entries");
	T_CHECK(tlspol_map_parse("a.test") == NULL);
	T_CHECK(tlspol_map_parse("a.test:maybe") == NULL);
	T_CHECK(tlspol_map_parse(":may") == NULL);
}

int
main(void)
{
	T_RUN(test_map);
	T_RUN(test_choose);
	T_RUN(test_choose_sts);
	return t_summary();
}
