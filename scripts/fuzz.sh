#!/bin/sh
# make fuzz: run every libFuzzer harness for N seconds.
#
#   scripts/fuzz.sh SECONDS BIN...
#
# Every file in fuzz/regressions/NAME/ is replayed first.  By default each
# harness starts from a scratch copy of its seed corpus (the repo keeps only
# seeds and crash regressions).  For long campaigns (make fuzz-long):
#   FUZZ_CORPUS=DIR  keep NAME's corpus in DIR/NAME across runs, so hours of
#                    fuzzing add up instead of restarting from the seeds
#   FUZZ_JOBS=N      run N harnesses at once (one core each)
#   FUZZ_LOG=FILE    append "name wall_s cpu_s executions result" per run
#   FUZZ_CPU_TARGET=N  (with FUZZ_LOG) run each harness in runs of at most
#                    SECONDS until FILE records N CPU seconds for it in all:
#                    a campaign stopped half-way is finished by re-running
#                    the same command, and CPU, not wall time, is what counts
# A crashing input is copied to fuzz/regressions/NAME/ so it is replayed by
# every later run; fix the bug, keep the input.
set -eu
secs=$1; shift

if [ "${FUZZ_JOBS:-1}" -gt 1 ] && [ "$#" -gt 1 ]; then
	# one harness per child; the exit status is the worst of them
	printf '%s\n' "$@" | FUZZ_JOBS=1 xargs -P "$FUZZ_JOBS" -I{} "$0" "$secs" {}
	exit $?
fi

# fuzz_one BIN SECONDS: one run; 0 when it found nothing
fuzz_one() {
	bin=$1; run_secs=$2; one_rc=0
	name=$(basename "$bin" | sed 's/^fuzz_//')
	if [ -n "${FUZZ_CORPUS:-}" ]; then
		work="$FUZZ_CORPUS/$name"
		if [ ! -d "$work" ]; then
			mkdir -p "$work"
			[ -d "fuzz/corpus/$name" ] && cp -r "fuzz/corpus/$name/." "$work/"
		fi
		log="$FUZZ_CORPUS/$name.log"
		art="$FUZZ_CORPUS/$name-"
	else
		work=$(mktemp -d)
		[ -d "fuzz/corpus/$name" ] && cp -r "fuzz/corpus/$name/." "$work/"
		log="$work.log"
		art="$work/"
	fi
	dict=""
	[ -f "fuzz/$name.dict" ] && dict="-dict=fuzz/$name.dict"
	if [ -d "fuzz/regressions/$name" ] && [ -n "$(ls -A "fuzz/regressions/$name")" ]; then
		"$bin" fuzz/regressions/$name/* >/dev/null 2>&1 || { echo "fuzz $name: regression input crashes"; one_rc=1; }
	fi
	timer=""
	[ -x /usr/bin/time ] && timer="/usr/bin/time -f %e:%U:%S -o $log.time"
	start=$(date +%s)
	if $timer "$bin" $dict -max_total_time="$run_secs" -print_final_stats=1 \
		-artifact_prefix="$art" "$work" >"$log" 2>&1; then
		result=ok
	else
		result=FAILED
	fi
	execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
	wall=$(( $(date +%s) - start )); cpu="?"
	if [ -s "$log.time" ]; then
		cpu=$(tail -1 "$log.time" | awk -F: '{ printf "%.0f", $2 + $3 }')
	fi
	if [ "$result" = ok ]; then
		echo "fuzz $name: ok, ${execs:-?} executions in ${wall}s (${cpu}s CPU)"
	else
		echo "fuzz $name: FAILED"; tail -40 "$log"; one_rc=1
		mkdir -p "fuzz/regressions/$name"
		cp "$art"crash-* "$art"leak-* "$art"timeout-* "$art"oom-* \
			"fuzz/regressions/$name/" 2>/dev/null || true
	fi
	[ -n "${FUZZ_LOG:-}" ] && echo "$name $wall $cpu ${execs:-?} $result" >>"$FUZZ_LOG"
	if [ -z "${FUZZ_CORPUS:-}" ]; then
		rm -rf "$work" "$log" "$log.time"
	fi
	return $one_rc
}

# CPU seconds FUZZ_LOG records for harness $1
cpu_logged() {
	[ -f "$FUZZ_LOG" ] || { echo 0; return; }
	awk -v n="$1" '$1 == n && $3 ~ /^[0-9]+$/ { s += $3 } END { print s + 0 }' "$FUZZ_LOG"
}

if [ -n "${FUZZ_CPU_TARGET:-}" ]; then
	if [ -z "${FUZZ_LOG:-}" ] || [ ! -x /usr/bin/time ]; then
		echo "fuzz: FUZZ_CPU_TARGET needs FUZZ_LOG and /usr/bin/time" >&2
		exit 2
	fi
fi

rc=0
for bin in "$@"; do
	name=$(basename "$bin" | sed 's/^fuzz_//')
	if [ -z "${FUZZ_CPU_TARGET:-}" ]; then
		fuzz_one "$bin" "$secs" || rc=1
		continue
	fi
	while :; do
		need=$((FUZZ_CPU_TARGET - $(cpu_logged "$name")))
		if [ "$need" -le 0 ]; then
			echo "fuzz $name: $(cpu_logged "$name")s CPU in $FUZZ_LOG (target $FUZZ_CPU_TARGET)"
			break
		fi
		[ "$need" -gt "$secs" ] && need=$secs
		[ "$need" -lt 10 ] && need=10    # a run starts by loading the corpus
		fuzz_one "$bin" "$need" || { rc=1; break; }
	done
done
exit $rc
