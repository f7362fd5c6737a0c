#!/bin/sh
# make lint: banned functions, formatting, static analysis.
set -u
rc=0
if grep -rnE '\b(strcpy|strcat|sprintf|vsprintf|gets|strtok)[[:space:]]*\(' src fuzz tests/unit; then
	echo "lint: banned function (see docs/style.md, "Memory and strings")"; rc=1
fi
# Tests and fuzzers link libcore.a or libtern.a; none compiles a module's
# .c into itself (what one needs is declared in a header: docs/style.md).
if grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*["<][^">]*\.c[">]' fuzz tests/unit; then
	echo "lint: a test or fuzzer includes a .c file (link libcore.a or libtern.a instead)"; rc=1
fi
# libcore.a is the pure code (Makefile, docs/architecture.md): its sources
# and every tern header they reach (the preprocessor's -MM list) belong to
# modules with libcore files, and none of them includes a header of the
# event loop, DNS, TLS, databases, crypt(3), sockets or processes.
core_src=$(MAKEFLAGS= make -s --no-print-directory core-src)
if [ -z "$core_src" ]; then
	echo "lint: make core-src listed no libcore sources"; rc=1
fi
pure_dirs=$(printf '%s\n' $core_src | xargs -n1 dirname | sort -u)
bad_sys='^[[:space:]]*#[[:space:]]*include[[:space:]]*<(event2/|ares|openssl/ssl\.h|sqlite3\.h|libpq|crypt\.h|sys/socket\.h|sys/epoll\.h|sys/wait\.h|netdb\.h|spawn\.h|signal\.h)'
for f in $core_src; do
	for h in $f $(cc -std=c17 -D_GNU_SOURCE -Isrc -MM -MG "$f" 2>/dev/null |
		tr ' \\' '\n\n' | grep '\.h$' | xargs -r realpath -m --relative-to=. | grep '^src/'); do
		if ! printf '%s\n' "$pure_dirs" | grep -qx "$(dirname "$h")"; then
			echo "lint: $f (libcore) reaches $h, a header of a module that is not pure"; rc=1
		fi
		if grep -nE "$bad_sys" "$h" | sed "s|^|$h:|" | grep .; then
			echo "lint: libcore's $f reaches that line (in $h): no I/O library, socket or process header"; rc=1
		fi
	done
done
# CHECK-INCLUDE-STYLE: a tern header by its path under src/ ("queue/queue.h"),
# never "../queue/queue.h" nor a bare "queue.h" (docs/style.md, "Layers and modules").
if grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"(\.\./|[^/"]+")' src; then
	echo "lint: include a tern header as \"dir/file.h\" (see docs/style.md)"; rc=1
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
