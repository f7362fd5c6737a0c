/*
 * Unit tests for the two formatting policies of src/util/util.h: str_fmt
 * (a value: exact or -1 and "") and str_fmt_cut (a text: cut, marked with
 * "...", never inside a UTF-8 sequence).  Every output buffer ends right
 * before an unreadable page (t_guard), so a write one byte past outlen
 * crashes the test.  str_fmt and str_fmt_cut call the va_list forms;
 * via_va() calls those directly, as a caller's own wrapper would.
 */
#include <string.h>
#include <wchar.h>

#include "t.h"
#include "util/util.h"

/* outlen bytes of 'Z' that end at a PROT_NONE page; t_unguard() frees. */
static char *
guarded_out(size_t outlen, void **map, size_t *maplen)
{
	char fill[64];

	memset(fill, 'Z', sizeof(fill));
	if (outlen > sizeof(fill))
		abort();
	(void)t_guard(fill, outlen, map, maplen);
	/* the same bytes, writable: the last outlen before the guard page */
	return (char *)*map + *maplen - (size_t)sysconf(_SC_PAGESIZE) - outlen;
}

struct fmt_row {
	const char *name;
	bool cut;	/* str_fmt_cut, else str_fmt */
	const char *in; /* formatted as "%s" */
	size_t outlen;
	int rc;		 /* str_fmt's return */
	const char *out; /* what out holds afterwards */
};

static const struct fmt_row rows[] = {
    {"exact: fits exactly", false, "hello", 6, 0, "hello"},
    {"exact: one byte over", false, "hello", 5, -1, ""},
    {"exact: far over", false, "hello, world", 4, -1, ""},
    {"exact: outlen 1, empty text", false, "", 1, 0, ""},
    {"exact: outlen 1, one byte", false, "a", 1, -1, ""},
    {"exact: outlen 2 fits", false, "a", 2, 0, "a"},
    {"exact: outlen 2 over", false, "ab", 2, -1, ""},
    {"exact: outlen 3 fits", false, "ab", 3, 0, "ab"},
    {"exact: outlen 3 over", false, "abc", 3, -1, ""},
    /* a value is never shortened, not even at a character boundary */
    {"exact: UTF-8 at the end, over", false, "a\xc3\xa9", 3, -1, ""},
    {"exact: UTF-8 fits exactly", false, "a\xc3\xa9", 4, 0, "a\xc3\xa9"},
    {"cut: fits exactly", true, "hello", 6, 0, "hello"},
    {"cut: one byte over", true, "hello", 5, 0, "h..."},
    {"cut: far over", true, "hello, world", 8, 0, "hell..."},
    {"cut: outlen 1", true, "hello", 1, 0, ""},
    {"cut: outlen 1, empty text", true, "", 1, 0, ""},
    {"cut: outlen 2", true, "hello", 2, 0, "."},
    {"cut: outlen 2, fits", true, "h", 2, 0, "h"},
    {"cut: outlen 3", true, "hello", 3, 0, ".."},
    {"cut: outlen 3, fits", true, "he", 3, 0, "he"},
    {"cut: outlen 4", true, "hello", 4, 0, "..."},
    {"cut: outlen 4, fits", true, "hel", 4, 0, "hel"},
    /* a \xc3\xa9 (e acute): the cut falls between its two bytes */
    {"cut: inside a 2-byte char", true, "a\xc3\xa9!xyz", 6, 0, "a..."},
    /* U+1F600, 4 bytes: the cut after each of its first three bytes */
    {"cut: after byte 3 of 4", true, "a\xf0\x9f\x98\x80xyz", 8, 0, "a..."},
    {"cut: after byte 2 of 4", true, "a\xf0\x9f\x98\x80xyz", 7, 0, "a..."},
    {"cut: after byte 1 of 4", true, "a\xf0\x9f\x98\x80xyz", 6, 0, "a..."},
    {"cut: before a 4-byte char", true, "a\xf0\x9f\x98\x80xyz", 5, 0, "a..."},
    {"cut: whole char before the cut stays", true, "a\xc3\xa9xyzw", 7, 0,
	"a\xc3\xa9..."},
    {"cut: a 3-byte char at the very start", true, "\xe2\x82\xac\xe2\x82\xac",
	6, 0, "..."},
    /* not UTF-8 (4 continuation bytes in a row): a plain byte cut */
    {"cut: invalid UTF-8 is cut by bytes", true,
	"a\x80\x80\x80\x80\x80\x80\x80", 8, 0, "a\x80\x80\x80..."},
};

static void
test_exact_edges(void)
{
	wchar_t bad[] = {0xd800, 0}; /* a lone surrogate: no encoding */
	void *map;
	size_t maplen;
	char *out;

	t_case("exact: outlen 0 writes nothing");
	out = guarded_out(0, &map, &maplen);
	T_CHECK_INT(str_fmt(out, 0, "%s", ""), -1);
	t_unguard(map, maplen);

	t_case("exact: encoding error");
	out = guarded_out(16, &map, &maplen);
	T_CHECK_INT(str_fmt(out, 16, "x%lsy", bad), -1);
	T_CHECK_STR(out, "");
	t_unguard(map, maplen);

	t_case("exact: a NUL from %c is refused");
	out = guarded_out(16, &map, &maplen);
	T_CHECK_INT(str_fmt(out, 16, "a%cb", 0), -1);
	T_CHECK_STR(out, "");
	t_unguard(map, maplen);

	t_case("exact: numbers and several arguments");
	out = guarded_out(16, &map, &maplen);
	T_CHECK_INT(str_fmt(out, 16, "%s/%u-%c", "dir", 42u, 'x'), 0);
	T_CHECK_STR(out, "dir/42-x");
	t_unguard(map, maplen);
}

static void
test_table(void)
{
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct fmt_row *r = &rows[i];
		void *map;
		size_t maplen;
		char *out = guarded_out(r->outlen, &map, &maplen);

		t_case(r->name);
		if (r->cut)
			str_fmt_cut(out, r->outlen, "%s", r->in);
		else
			T_CHECK_INT(
			    str_fmt(out, r->outlen, "%s", r->in), r->rc);
		T_CHECK_STR(out, r->out);
		T_CHECK(strlen(out) < r->outlen);
		t_unguard(map, maplen);
	}
}

/* str_vfmt_cut (cut) or str_vfmt: -1 or 0, and 0 for a cut. */
static int PRINTF_LIKE(4, 5)
    via_va(bool cut, char *out, size_t outlen, const char *fmt, ...)
{
	va_list ap;
	int r = 0;

	va_start(ap, fmt);
	if (cut)
		str_vfmt_cut(out, outlen, fmt, ap);
	else
		r = str_vfmt(out, outlen, fmt, ap);
	va_end(ap);
	return r;
}

static void
test_cut_edges(void)
{
	wchar_t bad[] = {0xd800, 0};
	void *map;
	size_t maplen;
	char *out;

	t_case("cut: outlen 0 writes nothing");
	out = guarded_out(0, &map, &maplen);
	str_fmt_cut(out, 0, "%s", "hello");
	t_unguard(map, maplen);

	t_case("cut: encoding error gives an empty text");
	out = guarded_out(16, &map, &maplen);
	str_fmt_cut(out, 16, "x%lsy", bad);
	T_CHECK_STR(out, "");
	t_unguard(map, maplen);

	t_case("va_list forms");
	out = guarded_out(8, &map, &maplen);
	T_CHECK_INT(via_va(true, out, 8, "%s %d", "error", 12345), 0);
	T_CHECK_STR(out, "erro...");
	T_CHECK_INT(via_va(false, out, 8, "%s %d", "err", 123), 0);
	T_CHECK_STR(out, "err 123");
	T_CHECK_INT(via_va(false, out, 8, "%s %d", "err", 1234), -1);
	T_CHECK_STR(out, "");
	t_unguard(map, maplen);
}

int
main(void)
{
	T_RUN(test_table);
	T_RUN(test_exact_edges);
	T_RUN(test_cut_edges);
	return t_summary();
}
