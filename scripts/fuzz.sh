#!/bin/sh
# make fuzz: run every libFuzzer harness for N seconds on a scratch copy of
# its seed corpus (the repo keeps only the seeds and crash regressions).
# Every file in fuzz/regressions/NAME/ is replayed first.
set -eu
secs=$1; shift
rc=0
for bin in "$@"; do
	name=$(basename "$bin" | sed 's/^fuzz_//')
	work=$(mktemp -d)
	[ -d "fuzz/corpus/$name" ] && cp -r "fuzz/corpus/$name/." "$work/"
	dict=""
	[ -f "fuzz/$name.dict" ] && dict="-dict=fuzz/$name.dict"
	if [ -d "fuzz/regressions/$name" ] && [ -n "$(ls -A "fuzz/regressions/$name")" ]; then
		"$bin" fuzz/regressions/$name/* >/dev/null 2>&1 || { echo "fuzz $name: regression input crashes"; rc=1; }
	fi
	if "$bin" $dict -max_total_time="$secs" -print_final_stats=1 \
		-artifact_prefix="$work/" "$work" >"$work.log" 2>&1; then
		execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work.log" | grep -o '[0-9]*$')
		echo "fuzz $name: ok, ${execs:-?} executions in ${secs}s"
	else
		echo "fuzz $name: FAILED"; tail -40 "$work.log"; rc=1
		mkdir -p "fuzz/regressions/$name"
		cp "$work"/crash-* "$work"/leak-* "$work"/timeout-* "fuzz/regressions/$name/" 2>/dev/null || true
	fi
	rm -rf "$work" "$work.log"
done
exit $rc
