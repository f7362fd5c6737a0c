#!/bin/sh
# make lint: banned functions, formatting, static analysis.
set -u
rc=0
if grep -rnE '\b(strcpy|strcat|sprintf|vsprintf|gets|strtok)[[:space:]]*\(' src fuzz tests/unit; then
	echo "lint: banned function (see docs/style.md, "Memory and strings")"; rc=1
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
