/*
 * fuzz_header: libFuzzer harness for src/addr/header.c.
 *
 * The input is a message: its header section is scanned, every field is
 * looked up by name, and every field value (and the whole input) is parsed
 * as an address list under the four flag combinations.  Besides the
 * sanitisers, it aborts when a property breaks:
 *  - end <= body <= size, and what lies between them is one empty line;
 *  - fields tile the header section: each starts where the last ended,
 *    the last ends at the section's end; value views lie in their field;
 *    a field has a name exactly when ADDR_HDR_BAD_NAME is clear;
 *  - addr_hdr_find() returns the first field of that name;
 *  - unfolding never grows a value and leaves no CR or LF;
 *  - every address that comes out formats, and (when it has a domain)
 *    parses back with addr_parse_mailbox() to the same text;
 *  - flags only widen the language: the addresses under some flags are a
 *    prefix of those under a superset, and equal when the list ended well;
 *  - at most ADDR_LIST_MAX addresses, and errors are sticky;
 *  - smtp_tls_required_no() (RFC 8689 3) reads the header only: the same
 *    answer for the header section alone, and false without a
 *    TLS-Required field.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addr/addr.h"
#include "smtp/smtp.h"

#define FMT_MAX (ADDR_PATH_MAX + 2)
#define KEEP	64 /* addresses compared across flag sets */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct run {
	enum addr_list_status st;
	unsigned n;
	char a[KEEP][FMT_MAX];
};

static void
check_one(const struct addr *a, unsigned flags, char *fmt)
{
	struct addr b;
	char again[FMT_MAX];
	int n = addr_format(a, fmt, FMT_MAX);

	if (n < 0 || (size_t)n != strlen(fmt))
		abort();
	if (a->kind == ADDR_DOMAIN_NONE) {
		if (!(flags & ADDR_LIST_F_LOCAL) || a->domain[0] != '\0')
			abort();
		return;
	}
	if (addr_parse_mailbox(fmt, (size_t)n, flags & ADDR_F_UTF8, &b) !=
	    ADDR_OK)
		abort();
	if (addr_format(&b, again, sizeof(again)) != n ||
	    strcmp(fmt, again) != 0)
		abort();
}

static void
run_list(const char *v, size_t len, unsigned flags, struct run *r)
{
	struct addr_list l;
	struct addr a;
	char fmt[FMT_MAX];

	r->n = 0;
	addr_list_init(&l, v, len, flags);
	while ((r->st = addr_list_next(&l, &a)) == ADDR_LIST_OK) {
		check_one(&a, flags, fmt);
		if (r->n < KEEP)
			memcpy(r->a[r->n], fmt, sizeof(fmt));
		r->n++;
	}
	if (r->n != l.count || r->n > ADDR_LIST_MAX ||
	    addr_list_next(&l, &a) != r->st)
		abort();
	if (r->st != ADDR_LIST_END && l.err_pos > len)
		abort();
}

/* Under flags f then g (a superset of f): prefix, or equal if f ended. */
static void
check_lists(const char *v, size_t len)
{
	static struct run r[4];
	unsigned f, g, i;

	for (f = 0; f < 4; f++)
		run_list(v, len,
		    (f & 1 ? ADDR_F_UTF8 : 0) | (f & 2 ? ADDR_LIST_F_LOCAL : 0),
		    &r[f]);
	for (f = 0; f < 4; f++)
		for (g = 0; g < 4; g++) {
			if (f == g || (g & f) != f)
				continue;
			if (r[g].n < r[f].n)
				abort();
			if (r[f].st == ADDR_LIST_END &&
			    (r[g].st != ADDR_LIST_END || r[g].n != r[f].n))
				abort();
			for (i = 0; i < r[f].n && i < KEEP; i++)
				if (strcmp(r[f].a[i], r[g].a[i]) != 0)
					abort();
		}
}

static void
check_field(const char *s, size_t size, const struct addr_hdr_field *f)
{
	static char buf[ADDR_HDR_FIELD_MAX * 2];
	struct addr_hdr_field first;
	char name[128];
	int n;

	if ((f->name == NULL) != ((f->bad & ADDR_HDR_BAD_NAME) != 0))
		abort();
	if (f->value < s + f->off ||
	    f->value + f->value_len > s + f->off + f->raw_len)
		abort();
	n = addr_hdr_unfold(f->value, f->value_len, buf, sizeof(buf));
	if (n < 0 || (size_t)n > f->value_len || memchr(buf, '\r', (size_t)n) ||
	    memchr(buf, '\n', (size_t)n))
		abort();
	if (f->name != NULL && f->name_len < sizeof(name)) {
		memcpy(name, f->name, f->name_len);
		name[f->name_len] = '\0';
		if (strlen(name) == f->name_len &&
		    (!addr_hdr_find(s, size, name, &first) ||
			first.off > f->off || !addr_hdr_name_is(&first, name)))
			abort();
	}
	check_lists(f->value, f->value_len);
}

static void
check_end(const char *s, size_t size, size_t *end_out)
{
	size_t body, end = addr_hdr_end(s, size, &body), gap;

	if (end > body || body > size)
		abort();
	gap = body - end;
	if (!(gap == 0 && body == size) && !(gap == 1 && s[end] == '\n') &&
	    !(gap == 2 && s[end] == '\r' && s[end + 1] == '\n'))
		abort();
	*end_out = end;
}

static void
check_tls_required(const char *s, size_t size, size_t end)
{
	struct addr_hdr_field f;
	bool no = smtp_tls_required_no(s, size);

	if (no != smtp_tls_required_no(s, end))
		abort();
	if (no && !addr_hdr_find(s, end, "TLS-Required", &f))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct addr_hdr_scan sc;
	struct addr_hdr_field f;
	size_t end, pos = 0;

	check_end(s, size, &end);
	addr_hdr_scan_init(&sc, s, size);
	if (sc.end != end)
		abort();
	while (addr_hdr_next(&sc, &f)) {
		if (f.off != pos || f.raw_len == 0)
			abort();
		pos = f.off + f.raw_len;
		check_field(s, size, &f);
	}
	if (pos != end || sc.pos != end || sc.longest > size)
		abort();
	check_lists(s, size);
	check_tls_required(s, size, end);
	return 0;
}
