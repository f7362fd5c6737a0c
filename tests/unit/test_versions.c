/*
 * Unit tests for src/fs/versions.c: the text of STATE/versions, every row
 * whole and each cut at every length (a cut is a missing newline or a
 * shorter version, never a crash), on guarded pages.
 */
#include <string.h>

#include "fs/versions.h"
#include "t.h"

static const struct {
	const char *text;
	int want; /* 0 accepted, -1 refused */
	const char *err;
} rows[] = {
    {"", 0, NULL},
    {"dkim 1\n", 0, NULL},
    {"dkim 1\nsrs.key 1\ntls 1\n", 0, NULL},
    {"tlsrpt 7\n", 0, NULL}, /* a format this tern does not read */
    {"acme 1\n", 0, NULL},
    {"acme 2\n", -1,
	"format acme is at version 2, this tern reads version 1 only"},
    {"dkim 2\n", -1,
	"format dkim is at version 2, this tern reads "
	"version 1 only"},
    {"tls 1\nsrs.key 123456789\n", -1,
	"format srs.key is at version "
	"123456789, this tern reads version 1 "
	"only"},
    {"dkim 1", -1, "line 1: no newline"},
    {"dkim 01\n", -1,
	"line 1: not NAME VERSION (a newer or a damaged "
	"file)"},
    {"dkim 0\n", -1,
	"line 1: not NAME VERSION (a newer or a damaged "
	"file)"},
    {"dkim 1234567890\n", -1,
	"line 1: not NAME VERSION (a newer or a "
	"damaged file)"},
    {"dkim  1\n", -1,
	"line 1: not NAME VERSION (a newer or a damaged "
	"file)"},
    {"dkim 1 \n", -1, "line 1: bad version"},
    {"dkim 1x\n", -1, "line 1: bad version"},
    {"DKIM 1\n", -1,
	"line 1: not NAME VERSION (a newer or a damaged "
	"file)"},
    {"\n", -1, "line 1: not NAME VERSION (a newer or a damaged file)"},
    {"dkim 1\n# comment\n", -1,
	"line 2: not NAME VERSION (a newer or a "
	"damaged file)"},
    {"dkim=1\n", -1,
	"line 1: not NAME VERSION (a newer or a damaged "
	"file)"},
};

static int
parse_guarded(const char *p, size_t n, char *err, size_t errlen)
{
	void *map;
	size_t maplen;
	const char *g = t_guard(p, n, &map, &maplen);
	int r = state_versions_parse(g, n, err, errlen);

	t_unguard(map, maplen);
	return r;
}

static void
test_rows(void)
{
	size_t i, k;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char err[160] = "";
		size_t n = strlen(rows[i].text);

		t_case(rows[i].text);
		T_CHECK_INT(parse_guarded(rows[i].text, n, err, sizeof(err)),
		    rows[i].want);
		if (rows[i].err != NULL)
			T_CHECK_STR(err, rows[i].err);
		for (k = 0; k < n; k++) /* every cut: no over-read */
			(void)!parse_guarded(rows[i].text, k, err, sizeof(err));
	}
}

/* The names are those of docs/formats.md, each at version 1 today. */
static void
test_known_formats(void)
{
	size_t n = 0;

	for (; state_formats[n].name != NULL; n++)
		T_CHECK_INT(state_formats[n].version, 1);
	T_CHECK_INT(n, 4);
	T_CHECK_STR(state_formats[0].name, "dkim");
	T_CHECK_STR(state_formats[1].name, "srs.key");
	T_CHECK_STR(state_formats[2].name, "tls");
	T_CHECK_STR(state_formats[3].name, "acme");
}

int
main(void)
{
	T_RUN(test_rows);
	T_RUN(test_known_formats);
	return t_summary();
}
