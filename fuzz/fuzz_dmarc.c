/*
 * fuzz_dmarc: libFuzzer harness for src/mailauth/dmarc.c (and psl.c).
 *
 * The input is split at NUL bytes: the first piece is a DMARC record, the
 * second the From domain, the third a DKIM d=, the rest are extra TXT
 * records of the answer.  It parses the record, runs discovery with the
 * pieces as the answers at both names, and evaluates under every
 * alignment of the inputs.  Besides the sanitisers, it aborts when:
 *  - URI views leave the record, counts pass their maxima, pct > 100;
 *  - a lookup asks more than two questions, or a question that is not
 *    "_dmarc." + the From domain or its organisational domain;
 *  - a pass has nothing aligned, a fail has something aligned, or a
 *    disposition is other than none/quarantine/reject, or anything but
 *    none for a result other than fail;
 *  - the organisational domain is not a suffix of the name, or changes
 *    when computed again from itself;
 *  - the verdict's Authentication-Results resinfo does not build, or does
 *    not read back as one result under our authserv-id.
 * A small list is built in once from a fixed text with wildcards,
 * exceptions and a PRIVATE section (the real file is not read).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mailauth/authres.h"
#include "mailauth/dmarc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char list[] = "com\nuk\nco.uk\n*.ck\n!www.ck\njp\n*.kobe.jp\n"
			   "!city.kobe.jp\n"
			   "// ===BEGIN PRIVATE DOMAINS===\ngithub.io\n"
			   "// ===END PRIVATE DOMAINS===\n";
static struct psl *psl;

static void
check_record(const char *t, size_t n)
{
	struct dmarc_record r;
	size_t i;

	if (dmarc_record_parse(t, n, &r) != DMARC_PARSE_OK)
		return;
	if (r.pct > 100 || r.nrua > DMARC_URI_MAX || r.nruf > DMARC_URI_MAX)
		abort();
	for (i = 0; i < r.nrua; i++)
		if (r.rua[i].uri < t ||
		    r.rua[i].uri + r.rua[i].uri_len > t + n ||
		    (r.rua[i].mailto &&
			(r.rua[i].host < t ||
			    r.rua[i].host + r.rua[i].host_len > t + n)))
			abort();
}

static void
check_org(const char *name, size_t n)
{
	char org[PSL_NAME_MAX + 1], again[PSL_NAME_MAX + 1];
	size_t ol;

	if (psl_org_domain(psl, name, n, 0, org, sizeof(org)) != 0)
		return;
	ol = strlen(org);
	if (ol == 0 || ol > n)
		abort();
	if (psl_org_domain(psl, org, ol, 0, again, sizeof(again)) != 0 ||
	    strcmp(org, again) != 0)
		abort();
}

static void
check_verdict(const struct dmarc_verdict *v)
{
	if (v->disposition < DMARC_P_NONE || v->disposition > DMARC_P_REJECT)
		abort();
	if (v->result != DMARC_RESULT_FAIL && v->disposition != DMARC_P_NONE &&
	    !v->overridden)
		abort();
	if (v->result == DMARC_RESULT_PASS && !v->spf_aligned &&
	    !v->dkim_aligned)
		abort();
	if (v->result == DMARC_RESULT_FAIL &&
	    (v->spf_aligned || v->dkim_aligned))
		abort();
}

/* The verdict's A-R resinfo always builds and reads back. */
static void
check_authres(const struct dmarc_lookup *lk, const struct dmarc_verdict *v)
{
	struct authres_result ar;
	struct authres_parsed back;
	struct buf b;

	dmarc_authres(lk, v, &ar);
	buf_init(&b, 8192);
	if (authres_build(&b, "mx.example.org", &ar, 1, 78) != 0 ||
	    authres_parse(b.data + 23, b.len - 23, &back) != AUTHRES_OK ||
	    back.nresults != 1 || strcmp(back.id, "mx.example.org") != 0)
		abort();
	buf_free(&b);
}

/* p[0] record, p[1] From, p[2] d=, p[3..np) more TXT records */
static void
run(const char *p[], const size_t l[], size_t np)
{
	struct dmarc_lookup lk;
	struct dmarc_verdict v;
	const char *txt[4] = {p[0]};
	size_t tl[4] = {l[0]}, nt = 1;
	struct dmarc_txt ans = {DMARC_DNS_OK, txt, tl, 0};
	struct dmarc_dkim dk = {p[2], l[2], true};
	struct dmarc_input in = {0};
	char q1[DMARC_QNAME_MAX + 8], q2[DMARC_QNAME_MAX + 8];
	int q = 0;
	enum dmarc_step st = dmarc_lookup_init(&lk, psl, p[1], l[1]);

	while (st == DMARC_STEP_QUERY) {
		if (++q > 2)
			abort();
		(void)!str_fmt(q1, sizeof(q1), "_dmarc.%s", lk.from);
		(void)!str_fmt(q2, sizeof(q2), "_dmarc.%s", lk.org);
		if (strcmp(lk.qname, q1) != 0 && strcmp(lk.qname, q2) != 0)
			abort();
		ans.status =
		    (l[0] & 3) == 3 ? DMARC_DNS_TEMPFAIL : DMARC_DNS_OK;
		/* the first question gets nothing when the record is short */
		for (nt = 1; nt + 2 < np && nt < 4; nt++)
			txt[nt] = p[nt + 2], tl[nt] = l[nt + 2];
		ans.n = (q == 1 && (l[0] & 1)) ? 0 : nt;
		st = dmarc_lookup_answer(&lk, &ans);
	}
	for (unsigned m = 0; m < 8; m++) {
		in.spf_domain = (m & 1) ? p[2] : p[1];
		in.spf_len = (m & 1) ? l[2] : l[1];
		in.spf_pass = m & 2;
		in.dkim = &dk;
		in.ndkim = (m & 4) ? 1 : 0;
		in.draw = (unsigned)(l[0] % 100);
		in.from_nxdomain = m & 1;
		dmarc_evaluate(&lk, psl, &in, &v);
		check_verdict(&v);
		check_authres(&lk, &v);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p[6];
	size_t l[6], np = 0, i = 0;
	char *copy;

	if (psl == NULL &&
	    (psl = psl_parse(list, sizeof(list) - 1, NULL)) == NULL)
		abort();
	if (size > 8192)
		return 0;
	copy = malloc(size ? size : 1);
	memcpy(copy, data, size);
	while (np < 6) {
		const char *z = memchr(copy + i, '\0', size - i);
		size_t k = z ? (size_t)(z - (copy + i)) : size - i;

		p[np] = copy + i;
		l[np++] = k;
		if (z == NULL)
			break;
		i += k + 1;
	}
	while (np < 3) {
		p[np] = "example.com";
		l[np++] = 11;
	}
	check_record(p[0], l[0]);
	check_org(p[1], l[1]);
	check_org(p[2], l[2]);
	run(p, l, np);
	free(copy);
	return 0;
}
