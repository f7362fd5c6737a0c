/*
 * fuzz_dmarcxml: libFuzzer harness for src/mailauth/dmarcxml.c, the parts
 * that read disk input (a row of STATE/dmarc.db) and network-derived text.
 *
 * The input, up to its first NUL, is a row's DKIM text (the dkim_auth
 * column); the rest is used as the header_from and the mailto: URI.  It
 * aborts when:
 *  - dmarcxml_dkim_decode() accepts a text that dmarcxml_dkim_encode()
 *    does not write back identically, or leaves a result word the schema
 *    does not have;
 *  - a valid row with the input as header_from is refused, or its XML
 *    holds a '<' or '&' that is not markup or an entity (unescaped text);
 *  - dmarcxml_mailto_addr() returns an address with a blank, a control
 *    character or a ','.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mailauth/dmarcxml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_dkim(const char *text)
{
	struct dmarcxml_row r;
	char back[DMARCXML_DKIM_TEXT_MAX + 1];
	size_t i;

	memset(&r, 0, sizeof(r));
	if (dmarcxml_dkim_decode(text, &r) != 0) {
		if (r.ndkim != 0)
			abort();
		return;
	}
	for (i = 0; i < r.ndkim; i++)
		if (!dmarcxml_dkim_result_ok(r.dkim[i].result))
			abort();
	if (dmarcxml_dkim_encode(&r, back, sizeof(back)) != 0 ||
	    strcmp(back, text) != 0)
		abort();
}

/* every '<' opens a tag and every '&' starts one of the five entities */
static void
check_escaped(const char *x)
{
	static const char *const ent[] = {
	    "&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
	const char *p;
	size_t i;
	bool ok;

	for (p = x; (p = strchr(p, '&')) != NULL; p++) {
		ok = false;
		for (i = 0; i < 5; i++)
			ok = ok || strncmp(p, ent[i], strlen(ent[i])) == 0;
		if (!ok)
			abort();
	}
	for (p = x; (p = strchr(p, '<')) != NULL; p++)
		if (!(p[1] == '/' || p[1] == '?' ||
			(p[1] >= 'a' && p[1] <= 'z')))
			abort();
}

static void
check_row(const char *s, size_t n)
{
	struct dmarcxml_row r;
	struct buf b;

	memset(&r, 0, sizeof(r));
	if (n == 0 || n > DMARCXML_NAME_MAX)
		return;
	memcpy(r.header_from, s, n);
	memcpy(r.source_ip, "192.0.2.1", 10);
	memcpy(r.spf_domain, "a.example", 10);
	memcpy(r.spf_scope, "mfrom", 6);
	memcpy(r.spf_result, "pass", 5);
	r.count = 1;
	r.disposition = DMARC_P_NONE;
	buf_init(&b, 1 << 16);
	if (dmarcxml_row(&r, &b) != 0)
		abort();
	check_escaped(b.data);
	buf_free(&b);
}

static void
check_mailto(const char *s, size_t n)
{
	char text[600], addr[320];
	struct dmarc_record rec;
	size_t i, k;

	if (n > 500 || str_fmt(text, sizeof(text), "v=DMARC1; rua=mailto:%.*s",
			   (int)n, s) != 0)
		return;
	if (dmarc_record_parse(text, strlen(text), &rec) != DMARC_PARSE_OK)
		return;
	for (i = 0; i < rec.nrua; i++) {
		if (dmarcxml_mailto_addr(&rec.rua[i], addr, sizeof(addr)) != 0)
			continue;
		for (k = 0; addr[k] != '\0'; k++)
			if ((unsigned char)addr[k] <= 0x20 || addr[k] == 0x7f ||
			    addr[k] == ',')
				abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	size_t first;

	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	check_dkim(s);
	first = strlen(s);
	if (first < size) {
		const char *rest = s + first + 1;
		size_t n = strlen(rest);

		check_row(rest, n);
		check_mailto(rest, n);
	}
	free(s);
	return 0;
}
