#!/bin/bash
# bench/profile.sh: where ternd spends its time under scenario A's load
# (PROF_SESSIONS sessions, PROF_SIZE-byte messages into local Maildirs).
#
#   bench/profile.sh              # perf record (cpu-clock, DWARF call graphs)
#   TOOL=callgrind bench/profile.sh   # valgrind --tool=callgrind, fixed count
#   PROF_MESSAGES=20000 PROF_SESSIONS=50 PROF_SIZE=2048 bench/profile.sh
#   PROF_SCEN=B bench/profile.sh  # scenario B: relay to smtp-sink instead
#   TOOL=syscalls bench/profile.sh    # system calls and context switches
#                                     # per message (perf stat tracepoints)
#
# Prints the top functions by self time and by inclusive time, and an
# off-CPU view (where the loop and the workers wait: perf sched is not
# needed, the wall-clock split between on-CPU and blocked comes from
# /proc).  KEEP=1 keeps perf.data / callgrind.out in the temp directory.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

TOOL=${TOOL:-perf}
PROF_MESSAGES=${PROF_MESSAGES:-20000}
PROF_SESSIONS=${PROF_SESSIONS:-50}
PROF_SIZE=${PROF_SIZE:-2048}
TOP=${TOP:-30}
PROF_SCEN=${PROF_SCEN:-A}

bench_setup
machine_line "$W"
d=$W/tern-prof
tern_init "$d"
port=$(free_port)

if [ "$TOOL" = callgrind ]; then
	command -v valgrind >/dev/null ||
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends valgrind >/dev/null
	# valgrind runs ternd (as the bench user) and writes callgrind.out.PID
	chmod 777 "$W"
	: >"$d.log"
	runuser -u "$BENCH_USER" -- sh -c 'ulimit -n "$1"; shift; cd "$1"; shift; exec "$@"' sh "$NOFILE" "$W" \
		valgrind --tool=callgrind --callgrind-out-file="$W/callgrind.out" \
		"$W/bin/ternd" -o state_dir="$d" -o domains=bench.test -o hostname=mx.bench.test \
		-o listen.smtp="127.0.0.1:$port" -o listen.submission=off \
		-o limits.connections_per_ip=20000 -o limits.connections=20000 \
		-o spf.check=no -o dkim.verify=no -o dmarc.check=no >>"$d.log" 2>&1 </dev/null &
	TERND_RUNUSER=$!
	for i in $(seq 6000); do
		grep -q 'event=ready' "$d.log" && break
		sleep 0.05
	done
	TERND_PID=$(pgrep -P "$TERND_RUNUSER" | head -1)
	[ -n "$TERND_PID" ] && [ -z "$(tr '\0' ' ' <"/proc/$TERND_PID/cmdline" | grep valgrind)" ] &&
		TERND_PID=$(pgrep -P "$TERND_PID" | head -1)
	"$LOADGEN" -p "$port" -c "$PROF_SESSIONS" -n "$PROF_MESSAGES" -s "$PROF_SIZE" -r "$RCPTS" \
		$(tern_maildirs "$d") -q
	tern_stop
	sleep 1
	callgrind_annotate --inclusive=no "$W/callgrind.out" 2>/dev/null | sed -n "1,$((TOP + 25))p"
	echo "---- inclusive"
	callgrind_annotate --inclusive=yes "$W/callgrind.out" 2>/dev/null | sed -n "1,$((TOP + 25))p"
	exit 0
fi

if [ "$PROF_SCEN" = B ]; then
	dns_start
	sinkport=$(free_port)
	sink_start "$sinkport" "$W/sink.out"
	tern_start "$d" "$port" -o relay.networks=127.0.0.1/32 -o relay.port="$sinkport" \
		-o dns.servers="127.0.0.1:$DNS_PORT"
	RCPTS=$(seq -f 'r%g@sink.test' -s, 1 10)
	WATCH="--watch-sink $W/sink.out"
else
	tern_start "$d" "$port"
	WATCH=$(tern_maildirs "$d")
fi
# under_perf ARGS...: the load with `perf ARGS -p ternd` running; sets OUT
# (loadgen's line) and CPU_US (ternd's CPU per message)
under_perf() {
	local c0 c1
	c0=$(cpu_ticks "$TERND_PID")
	perf "$@" -p "$TERND_PID" >/dev/null 2>&1 &
	PERF_PID=$!
	sleep 0.5
	OUT=$("$LOADGEN" -p "$port" -c "$PROF_SESSIONS" -n "$PROF_MESSAGES" -s "$PROF_SIZE" -r "$RCPTS" \
		$WATCH 2>/dev/null)
	c1=$(cpu_ticks "$TERND_PID")
	kill -INT "$PERF_PID"
	wait "$PERF_PID"
	CPU_US=$(awk -v c=$((c1 - c0)) -v hz="$HZ" -v n="$(kv "$OUT" ok)" 'BEGIN { printf "%.0f", c / hz * 1e6 / n }')
	echo "$OUT"
}

if [ "$TOOL" = syscalls ]; then
	# exact counts (tracepoints), divided by the messages
	under_perf stat -x, -e 'syscalls:sys_enter_*' -e context-switches -o "$W/stat.out"
	echo "ternd cpu_us_msg=$CPU_US loadavg=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
	tern_stop
	sink_stop
	awk -F, -v n="$(kv "$OUT" ok)" '$1 ~ /^[0-9]+$/ && $1 > 0 {
			name = $3; sub(/^syscalls:sys_enter_/, "", name)
			if (name == "context-switches") { cs = $1; next }
			tot += $1; printf "%8.2f %s\n", $1 / n, name
		} END { printf "%8.2f total syscalls\n%8.2f context-switches\n", tot / n, cs / n }' \
		"$W/stat.out" | sort -rn | head -"$TOP"
	exit 0
fi
under_perf record -q -e cpu-clock -F 2000 --call-graph dwarf,16384 -o "$W/perf.data"
echo "ternd cpu_us_msg=$CPU_US elapsed=$(kv "$OUT" elapsed)"
echo "threads (utime+stime ticks):"
for t in /proc/"$TERND_PID"/task/*; do
	printf '  %-16s %s\n' "$(cat "$t/comm")" "$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "$t/stat")"
done
tern_stop
sink_stop
echo "---- self time, by function"
perf report -i "$W/perf.data" --no-children --sort symbol --stdio -g none --percent-limit 0.7 2>/dev/null |
	grep -v '^#' | grep -v '^$' | head -"$TOP"
echo "---- inclusive time (children), by function"
perf report -i "$W/perf.data" --children --sort symbol --stdio -g none --percent-limit 2 2>/dev/null |
	grep -v '^#' | grep -v '^$' | head -"$TOP"
echo "---- self time, by shared object"
perf report -i "$W/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null |
	grep -v '^#' | grep -v '^$' | head -12
