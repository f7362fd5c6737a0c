/* Unit tests for src/util: the bounded buffer and the log sanitiser. */
#include "t.h"
#include "util/util.h"

static void
test_buf_max(void)
{
	struct buf b;

	buf_init(&b, 8);
	T_CHECK(buf_append(&b, "12345678", 8) == 0);
	T_CHECK(buf_append(&b, "9", 1) == -1);
	T_CHECK_INT(b.len, 8);
	T_CHECK_STR(b.data, "12345678");
	buf_consume(&b, 3);
	T_CHECK_STR(b.data, "45678");
	T_CHECK(buf_printf(&b, "%d", 123) == 0);
	T_CHECK_STR(b.data, "45678123");
	T_CHECK(buf_printf(&b, "x") == -1);
	T_CHECK(buf_reserve(&b, SIZE_MAX) == -1);
	buf_free(&b);
}

static void
test_sanitize(void)
{
	char out[16];

	T_CHECK_STR(log_sanitize(out, sizeof(out), "abc", 3), "abc");
	T_CHECK_STR(log_sanitize(out, sizeof(out), "a b=\"\n", 6), "a\\x20b\\x3d...");
	T_CHECK_STR(log_sanitize(out, sizeof(out), "0123456789abcdefghij", 20),
	    "0123456789ab...");
}

static void
test_u64(void)
{
	uint64_t v;

	T_CHECK(str_to_u64("18446744073709551615", 20, &v) == 0 && v == UINT64_MAX);
	T_CHECK(str_to_u64("18446744073709551616", 20, &v) == -1);
	T_CHECK(str_to_u64("", 0, &v) == -1);
	T_CHECK(str_to_u64("12a", 3, &v) == -1);
	T_CHECK(str_case_eq("MaIl", 4, "mail"));
	T_CHECK(!str_case_eq("MaIl", 4, "mails"));
}

int
main(void)
{
	T_RUN(test_buf_max);
	T_RUN(test_sanitize);
	T_RUN(test_u64);
	return t_summary();
}
