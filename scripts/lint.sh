#!/bin/sh
# make lint: banned functions, formatting, static analysis.
set -u
rc=0
if grep -rnE '\b(strcpy|strcat|sprintf|vsprintf|gets|strtok)[[:space:]]*\(' src fuzz tests/unit; then
	echo "lint: banned function (see docs/style.md, "Memory and strings")"; rc=1
fi
# CHECK-VOID-BANG: no "(void)!" in src.  It silenced warn_unused_result on
# str_fmt/str_copy/write; a result is checked, or a text goes through
# str_fmt_cut (docs/style.md, "Errors" and "Memory and strings").  Strict:
# no file is exempt.
if grep -rnF '(void)!' src; then
	echo "lint: (void)! discards a checked result (see docs/style.md, \"Errors\")"; rc=1
fi
# CHECK-SNPRINTF: in src, only misc.c (str_fmt, str_fmt_cut) and buf.c
# (buf_printf) call snprintf/vsnprintf: one truncation policy.
if grep -rnE '\bv?snprintf[[:space:]]*\(' src | grep -vE '^src/util/(misc|buf)\.c:'; then
	echo "lint: snprintf outside misc.c/buf.c: use str_fmt or str_fmt_cut"; rc=1
fi
files=$(find src tests/unit fuzz -name '*.[ch]')
if ! clang-format --dry-run --Werror $files >/dev/null 2>&1; then
	n=$(clang-format --dry-run $files 2>&1 | grep -c 'warning:')
	echo "lint: clang-format would change $n places (clang-format -i to fix)"
	rc=1
fi
if ! cppcheck --quiet --error-exitcode=1 --enable=warning,portability \
	--inline-suppr -D_GNU_SOURCE -Isrc --suppress=missingIncludeSystem src; then
	echo "lint: cppcheck found problems"; rc=1
fi
[ $rc = 0 ] && echo "lint: ok"
exit $rc
