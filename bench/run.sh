#!/bin/bash
# bench/run.sh: tern and Postfix side by side on this machine, on loopback.
# The method and the figures are in docs/performance.md.
#
#   bench/run.sh              # full: A B C D G H I J K, 3 runs each (about 33 minutes)
#   QUICK=1 bench/run.sh      # smoke run: everything once, small, ~4 minutes
#   SCENARIOS="A B" RUNS=5 A_SECONDS=20 bench/run.sh
#
# Scenarios (all sizes are settable in the environment, see below):
#   A  receive and deliver into local Maildirs: A_SIZES x A_SESSIONS
#   B  relay to smtp-sink (tern: relay.networks + an MX from dnsmasq;
#      Postfix: relayhost), counted end to end at the sink
#   C  C_CONNS idle connections to ternd: RSS per connection, refusals;
#      the open-files limit is raised to C_CONNS + 4096 for ternd and
#      loadgen (needs CAP_SYS_RESOURCE past the hard limit; a LIMIT line
#      says when it cannot be), and loadgen connects from one loopback
#      address per 20,000 (127.0.0.2..), so C_CONNS=50000 bench/run.sh works
#   D  D_MESSAGES queued for a destination that is down: memory per queued
#      message, restart time, then the drain rate once the sink is up
#   E  A's delivery of one DKIM-signed message (RSA 2048, dkimpy), ternd
#      with and without DKIM verification + SPF + DMARC on every message
#      (key, SPF and p=reject policy from a private dnsmasq, TTL E_DNS_TTL,
#      default 300 s, so ternd's DNS cache is used as it would be): the cost of
#      the checks.  Not in the default list: SCENARIOS="E" bench/run.sh
#   F  tern alone: authenticated submission (port 587, AUTH PLAIN) into
#      local Maildirs, F_SIZE x F_SESSIONS, unsigned and then DKIM-signed
#      with an Ed25519 key of the sender's domain: what signing costs
#      (issue 13).  Not in the default list: SCENARIOS="F" to run it
#   G  STARTTLS: TLS 1.3, G_SIZE x G_SESSIONS (2 KiB x 50), G_PER_CONN
#      messages per connection (1: a handshake per message), loadgen
#      resuming sessions with the tickets it got (resumed_pct= in the
#      result); ternd with tls.cert/tls.key, Postfix with
#      smtpd_tls_security_level = may, both the same self-signed RSA 2048
#      certificate made with openssl in the temp directory
#   H  H_RCPTS (100) recipients per message named round robin from the
#      10 mailboxes (each 10 times: both servers store one copy per
#      mailbox), 2 KiB x H_SESSIONS (10); msg/s counts the copies
#   I  LMTP: the same delivery handed to a private Dovecot (dovecot-lmtpd,
#      config and Maildirs under the temp directory, unix socket) by
#      ternd (delivery.lmtp) and by Postfix (local_transport = lmtp:...),
#      2 KiB x I_SESSIONS (10), counted in Dovecot's Maildirs
#   J  B's relay to a sink that offers STARTTLS (loadgen --sink: smtp-sink
#      has no TLS): ternd's opportunistic TLS to the MX, Postfix with
#      smtp_tls_security_level = may; 2 KiB x J_SESSIONS (10); every
#      connection at the sink must have used TLS (else a NOTLS line); the
#      result says how many handshakes resumed a session (sink_resumed=)
#   K  A's delivery, 2 KiB x K_SESSIONS (10), through the same rspamd 3.4
#      milter for both (tests/e2e/rspamd's configuration: no Redis, no
#      network, the DNS lists off; K_RSPAMD_COUNT proxy processes, default
#      nproc): ternd with milter.servers, Postfix with smtpd_milters,
#      milter_protocol = 6, milter_default_action = tempfail as ternd's.
#      rspamd's own time is reported apart: its scan time per message
#      from its log (rspamd_scan_ms), its CPU per message
#      (rspamd_cpu_us_msg); every accepted message must have been scanned
#      (else a NOSCAN line)
#   L  J's relay (2 KiB x L_SESSIONS, 10) twice per run: opportunistic TLS
#      as in J (dnsmasq's MX, dns.dnssec off), then DANE: sink.test signed
#      by the bench (bench/dnssec.sh: ldns-signzone, nsd) with the MX, its
#      address and a TLSA 3 1 1 of the sink's key at _PORT._tcp (PORT:
#      relay.port), validated by an unbound on L_DNS_ADDR:53 (default
#      127.0.0.153) that ternd asks with dns.dnssec = yes.  Every
#      connection must be TLS (else NOTLS) and, under DANE, logged
#      "verified=yes tls_policy=dane" by ternd (else a DANEFAIL line).
#      Postfix: smtp_tls_security_level = may, then dane with
#      smtp_dns_support_level = dnssec and relayhost [mx.sink.test], run
#      in a mount namespace whose /etc/resolv.conf names that unbound
#      (libc asks port 53 only; without a namespace: "postfix -").  The
#      table gives each mode and the cost of DANE (ratios dane /
#      opportunistic).  Not in the default list: SCENARIOS=L
#
# First, bench/limit measures this machine's ceiling for the same work on
# the same file system (durable Maildir files one by one and group-
# committed, group-committed log appends, the loopback round trip); the
# table gives every tern figure also as a percentage of its ceiling.
# LIMIT=0 skips it, LIMIT_SECONDS sets its time per measurement.
#
# The two halves of every pair (tern and Postfix in A and B, without and
# with the feature in E and F) alternate their order run by run, and
# each run starts on a settled disk (lib.sh: run_pair, settle_disk).
#
#   bench/run.sh --table RESULTS   # the table again from a results file
#
# Every run checks zero loss: the files in the Maildirs (or the messages
# the sink got; in H one per mailbox named) must equal the 250s after
# DATA; otherwise it prints a
# LOSS line and the script exits 1.  Medians of RUNS runs are reported.
# Needs root (users, a private Postfix instance under a temp directory;
# the system's own Postfix is never touched).  KEEP=1 keeps the temp
# directory (logs, Maildirs, Postfix's maillog).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dnssec.sh"

if [ "${QUICK:-0}" = 1 ]; then
	: "${RUNS:=1}" "${A_SECONDS:=2}" "${A_SESSIONS:=1 50}" "${B_SECONDS:=2}"
	: "${B_SESSIONS:=50}" "${C_CONNS:=1000}" "${D_MESSAGES:=2000}"
	: "${E_SECONDS:=3}" "${E_SESSIONS:=10}"
	: "${F_SECONDS:=3}"
fi
RUNS=${RUNS:-3}
SCENARIOS=${SCENARIOS:-A B C D G H I J K}
A_SIZES=${A_SIZES:-2048 102400}	# message bytes
A_SESSIONS=${A_SESSIONS:-1 10 50}
A_SECONDS=${A_SECONDS:-10}	# sending time per run; delivery may take longer
B_SIZE=${B_SIZE:-2048}
B_SESSIONS=${B_SESSIONS:-10 50}
B_SECONDS=${B_SECONDS:-10}
C_CONNS=${C_CONNS:-10000}
D_MESSAGES=${D_MESSAGES:-100000}
D_SESSIONS=${D_SESSIONS:-50}
E_SIZE=${E_SIZE:-2048}
E_SESSIONS=${E_SESSIONS:-10 50}
E_SECONDS=${E_SECONDS:-10}
F_SIZE=${F_SIZE:-2048}
F_SESSIONS=${F_SESSIONS:-10}
F_SECONDS=${F_SECONDS:-10}
F_PASS="bench-submit-pass"
PIPELINING=${PIPELINING:-on}
TLS=${TLS:-}			# set to -S for STARTTLS in A and B
WATCH_TIMEOUT=${WATCH_TIMEOUT:-900}

FAIL=0

# check_loss LABEL LOADGEN_LINE [ARRIVED]: the zero-loss rule
check_loss() {
	local ok arr
	ok=$(kv "$2" ok_rcpts)
	arr=${3:-$(kv "$2" arrived)}
	if [ "$ok" != "$arr" ]; then
		echo "LOSS $1 acknowledged=$ok arrived=$arr"
		FAIL=1
	fi
}

# record LABEL MTA RUN LOADGEN_LINE EXTRA...: with the place in its pair
# and how long the disk took to settle before it
record() {
	local line="result scen=$1 mta=$2 run=$3 ${4#loadgen } ${*:5} load1=$LOAD1 order=$PAIR_POS settle_s=$SETTLE_S dirty_kib=$SETTLE_DIRTY settle_timeout=$SETTLE_TIMEDOUT"
	echo "$line" >>"$RES"
	echo "$line"
}

# the machine may be shared: the 1-minute load average before each run
# is kept with its result
LOAD1=-
load1() { LOAD1=$(cut -d' ' -f1 /proc/loadavg); }
lg() { "$LOADGEN" -P "$PIPELINING" $TLS --watch-timeout "$WATCH_TIMEOUT" "$@" 2>>"$LGLOG"; }

# ---- A: receive and deliver into Maildirs -------------------------------------

run_A_tern() {
	local size=$1 sess=$2 run=$3 d=$W/tern-a out c0 c1 hwm
	load1
	tern_clean_maildirs "$d"
	tern_start "$d" "$TPORT"
	c0=$(cpu_ticks "$TERND_PID")
	out=$(lg -p "$TPORT" -c "$sess" -d "$A_SECONDS" -s "$size" -r "$RCPTS" $(tern_maildirs "$d"))
	c1=$(cpu_ticks "$TERND_PID")
	hwm=$(hwm_kib "$TERND_PID")
	tern_stop
	record "A-$size-$sess" tern "$run" "$out" \
		"cpu_us_msg=$(awk -v c=$((c1 - c0)) -v hz="$HZ" -v n="$(kv "$out" ok)" 'BEGIN { printf "%.0f", n ? c / hz * 1e6 / n : 0 }')" \
		"hwm_kib=$hwm"
	check_loss "A-$size-$sess tern run=$run" "$out"
}

run_A_postfix() {
	local size=$1 sess=$2 run=$3 out c0 c1
	load1
	pf_clean_maildirs
	c0=$(tree_ticks "$PF_MASTER")
	out=$(lg -p "$PPORT" -c "$sess" -d "$A_SECONDS" -s "$size" -r "$RCPTS" $(pf_maildirs))
	c1=$(tree_ticks "$PF_MASTER")
	record "A-$size-$sess" postfix "$run" "$out" \
		"cpu_us_msg=$(awk -v c=$((c1 - c0)) -v hz="$HZ" -v n="$(kv "$out" ok)" 'BEGIN { printf "%.0f", n ? c / hz * 1e6 / n : 0 }')" \
		"queue_left=$(pf_queue_count)"
	check_loss "A-$size-$sess postfix run=$run" "$out"
}

scenario_A() {
	local size sess run
	tern_init "$W/tern-a"
	for size in $A_SIZES; do
		for sess in $A_SESSIONS; do
			for run in $(seq "$RUNS"); do
				run_pair "$run" "run_A_tern $size $sess $run" \
					"run_A_postfix $size $sess $run"
			done
		done
	done
}

# ---- B: relay to a sink ---------------------------------------------------------

tern_relay_opts() {
	echo "-o relay.networks=127.0.0.1/32 -o relay.port=$1 -o dns.servers=127.0.0.1:$DNS_PORT"
}

run_B_tern() {
	local sess=$1 run=$2 d=$W/tern-b out c0 c1 hwm left
	load1
	sink_start "$SINK_PORT" "$SINKOUT"
	tern_start "$d" "$TPORT" $(tern_relay_opts "$SINK_PORT")
	c0=$(cpu_ticks "$TERND_PID")
	out=$(lg -p "$TPORT" -c "$sess" -d "$B_SECONDS" -s "$B_SIZE" -r "$SINK_RCPTS" --watch-sink "$SINKOUT")
	c1=$(cpu_ticks "$TERND_PID")
	hwm=$(hwm_kib "$TERND_PID")
	left=$(tern_queued "$d")
	tern_stop
	sink_stop
	record "B-$B_SIZE-$sess" tern "$run" "$out" \
		"cpu_us_msg=$(awk -v c=$((c1 - c0)) -v hz="$HZ" -v n="$(kv "$out" ok)" 'BEGIN { printf "%.0f", n ? c / hz * 1e6 / n : 0 }')" \
		"hwm_kib=$hwm queue_left=$left"
	check_loss "B-$B_SIZE-$sess tern run=$run" "$out"
}

run_B_postfix() {
	local sess=$1 run=$2 out c0 c1
	load1
	sink_start "$SINK_PORT" "$SINKOUT"
	c0=$(tree_ticks "$PF_MASTER")
	out=$(lg -p "$PPORT" -c "$sess" -d "$B_SECONDS" -s "$B_SIZE" -r "$SINK_RCPTS" --watch-sink "$SINKOUT")
	c1=$(tree_ticks "$PF_MASTER")
	sink_stop
	record "B-$B_SIZE-$sess" postfix "$run" "$out" \
		"cpu_us_msg=$(awk -v c=$((c1 - c0)) -v hz="$HZ" -v n="$(kv "$out" ok)" 'BEGIN { printf "%.0f", n ? c / hz * 1e6 / n : 0 }')" \
		"queue_left=$(pf_queue_count)"
	check_loss "B-$B_SIZE-$sess postfix run=$run" "$out"
}

scenario_B() {
	local sess run
	tern_init "$W/tern-b"
	for sess in $B_SESSIONS; do
		for run in $(seq "$RUNS"); do
			run_pair "$run" "run_B_tern $sess $run" "run_B_postfix $sess $run"
		done
	done
}

# ---- C: idle connections ----------------------------------------------------------

scenario_C() {
	local d=$W/tern-c r0 r1 out i fds refused
	# each of ternd and loadgen holds C_CONNS descriptors: the limit was
	# raised to NOFILE in bench_setup, unless this root cannot (no
	# CAP_SYS_RESOURCE, e.g. in a container): then say so
	if [ "$(ulimit -n)" -lt $((C_CONNS + 64)) ]; then
		echo "LIMIT scen=C: open files limit $(ulimit -n) (hard $(ulimit -Hn)) is below C_CONNS=$C_CONNS + 64; raise it (ulimit -Hn, CAP_SYS_RESOURCE) or lower C_CONNS"
		FAIL=1
		return
	fi
	tern_init "$d"
	tern_start "$d" "$TPORT" -o limits.connections=$((C_CONNS + 100)) \
		-o limits.connections_per_ip=$((C_CONNS + 100))
	sleep 0.5
	r0=$(rss_kib "$TERND_PID")
	rm -f "$W/idle.ready"
	# one loopback source address per 20,000 connections (ephemeral
	# ports: 28,232 per address and server port here)
	"$LOADGEN" -p "$TPORT" $TLS --idle "$C_CONNS" --hold 900 --ready-file "$W/idle.ready" \
		--src $((C_CONNS / 20000 + 1)) >"$W/idle.out" 2>>"$LGLOG" &
	IDLE_PID=$!
	for i in $(seq 6000); do
		[ -f "$W/idle.ready" ] && break
		kill -0 "$IDLE_PID" 2>/dev/null || break
		sleep 0.05
	done
	sleep 1
	r1=$(rss_kib "$TERND_PID")
	fds=$(ls "/proc/$TERND_PID/fd" | wc -l)
	kill -TERM "$IDLE_PID"
	wait "$IDLE_PID"
	IDLE_PID=
	out=$(cat "$W/idle.out")
	refused=$(grep -c 'event=refuse\|event=accept_error' "$d.log")
	tern_stop
	echo "result scen=C mta=tern conns=$C_CONNS idle_up=$(kv "$out" idle_up) conn_err=$(kv "$out" conn_err) codes=$(kv "$out" codes) timeouts=$(kv "$out" timeouts) refused_log=$refused rss0_kib=$r0 rss1_kib=$r1 fds=$fds per_conn_b=$(awk -v a="$r0" -v b="$r1" -v n="$(kv "$out" idle_up)" 'BEGIN { printf "%.0f", n ? (b - a) * 1024 / n : 0 }')" |
		tee -a "$RES"
	if [ "$(kv "$out" idle_up)" != "$C_CONNS" ]; then
		echo "REFUSED scen=C up=$(kv "$out" idle_up) of $C_CONNS"
		FAIL=1
	fi
}

# ---- D: a big queue for a destination that is down ---------------------------------

# wait until ternd's CPU time stops moving (first delivery attempts over)
wait_quiet() {
	local a b i
	a=$(cpu_ticks "$TERND_PID")
	for i in $(seq 600); do
		sleep 1
		b=$(cpu_ticks "$TERND_PID")
		[ $((b - a)) -le 2 ] && return
		a=$b
	done
}

scenario_D() {
	local d=$W/tern-d port r_empty r_live r_loaded out ok queued warm cold qms t0 t1 got i opts left
	tern_init "$d"
	# the sink is down: its port has no listener until the drain
	opts="$(tern_relay_opts "$SINK_PORT") -o queue.retry_first=3600"
	tern_start "$d" "$TPORT" $opts
	sleep 0.5
	r_empty=$(rss_kib "$TERND_PID")
	t0=$(now)
	out=$("$LOADGEN" -p "$TPORT" -c "$D_SESSIONS" -n "$D_MESSAGES" -s 2048 -r "$SINK_RCPTS" 2>>"$LGLOG")
	t1=$(now)
	ok=$(kv "$out" ok)
	echo "$out"
	wait_quiet
	r_live=$(rss_kib "$TERND_PID")
	queued=$(tern_queued "$d")
	tern_stop
	# restart with the queue warm in the page cache
	tern_start "$d" "$TPORT" $opts
	warm=$TERND_READY_S
	qms=$(sed -n 's/.*event=queue_loaded messages=[0-9]* ms=\([0-9]*\).*/\1/p' "$d.log" | tail -1)
	sleep 1
	r_loaded=$(rss_kib "$TERND_PID")
	tern_stop
	# and cold, if this machine lets us drop the page cache
	cold=-
	if sync && echo 3 2>/dev/null >/proc/sys/vm/drop_caches; then
		tern_start "$d" "$TPORT" $opts
		cold=$TERND_READY_S
		tern_stop
	fi
	tern_start "$d" "$TPORT" $opts
	sink_start "$SINK_PORT" "$SINKOUT"
	t0=$(now)
	runuser -u "$BENCH_USER" -- "$W/bin/tern" -o state_dir="$d" queue flush >/dev/null 2>>"$LGLOG" ||
		log "bench: tern queue flush failed"
	for i in $(seq 36000); do
		got=$(sink_count "$SINKOUT")
		[ "${got:-0}" -ge "$ok" ] && break
		sleep 0.1
	done
	t1=$(now)
	got=$(sink_count "$SINKOUT")
	left=$(tern_queued "$d")
	tern_stop
	sink_stop
	echo "result scen=D mta=tern messages=$D_MESSAGES ok=$ok queued=$queued rss_empty_kib=$r_empty rss_live_kib=$r_live rss_loaded_kib=$r_loaded per_msg_live_b=$(awk -v a="$r_empty" -v b="$r_live" -v n="$queued" 'BEGIN { printf "%.0f", n ? (b - a) * 1024 / n : 0 }') per_msg_b=$(awk -v a="$r_empty" -v b="$r_loaded" -v n="$queued" 'BEGIN { printf "%.0f", n ? (b - a) * 1024 / n : 0 }') restart_warm_s=$warm queue_loaded_ms=$qms restart_cold_s=$cold drained=$got drain_s=$(elapsed "$t0" "$t1") drain_mps=$(awk -v n="$got" -v s="$(elapsed "$t0" "$t1")" 'BEGIN { printf "%.0f", (s > 0) ? n / s : 0 }') queue_left=$left" |
		tee -a "$RES"
	if [ "$ok" != "$queued" ] || [ "$got" != "$ok" ] || [ "$left" != 0 ]; then
		echo "LOSS scen=D acknowledged=$ok queued=$queued drained=$got"
		FAIL=1
	fi
}

# ---- F: authenticated submission, unsigned and Ed25519-signed -------------------

# run_F_tern SIGN RUN: one run with dkim.sign = SIGN (yes/no)
run_F_tern() {
	local sign=$1 run=$2 d=$W/tern-f out c0 c1 sport f has
	load1
	tern_clean_maildirs "$d"
	sport=$(free_port)
	# one user sends thousands of messages a minute here: the per-user
	# rate limits (docs/defence.md "Rate limits") off, as Postfix has none
	tern_start "$d" "$TPORT" -o listen.submission="127.0.0.1:$sport" \
		-o auth.plaintext_loopback=yes -o dkim.sign="$sign" \
		-o rate.messages_per_user_hour=0 -o rate.messages_per_user_day=0 \
		-o rate.recipients_per_user_hour=0 -o rate.recipients_per_user_day=0
	c0=$(cpu_ticks "$TERND_PID")
	out=$(lg -p "$sport" -c "$F_SESSIONS" -d "$F_SECONDS" -s "$F_SIZE" \
		-a "tbench1@bench.test:$F_PASS" -f tbench1@bench.test -r "$RCPTS" \
		$(tern_maildirs "$d"))
	c1=$(cpu_ticks "$TERND_PID")
	tern_stop
	# the signing must really happen (and only when asked)
	f=$(find "$d/mail" -type f -path '*/new/*' 2>/dev/null | head -1)
	if [ -n "$f" ]; then
		has=no
		grep -q '^DKIM-Signature:' "$f" && has=yes
		if [ "$has" != "$sign" ]; then
			echo "SIGNING dkim.sign=$sign but $f has a signature: $has"
			FAIL=1
		fi
	fi
	record "F-$F_SIZE-$F_SESSIONS-$sign" tern "$run" "$out" \
		"cpu_us_msg=$(awk -v c=$((c1 - c0)) -v hz="$HZ" -v n="$(kv "$out" ok)" 'BEGIN { printf "%.0f", n ? c / hz * 1e6 / n : 0 }')"
	check_loss "F-$F_SIZE-$F_SESSIONS-$sign tern run=$run" "$out"
}

scenario_F() {
	local run d=$W/tern-f
	tern_init "$d"
	printf '%s\n' "$F_PASS" | runuser -u "$BENCH_USER" -- "$W/bin/tern" -o state_dir="$d" \
		-o domains=bench.test user passwd tbench1@bench.test --password-stdin >/dev/null ||
		die "tern user passwd failed"
	runuser -u "$BENCH_USER" -- "$W/bin/tern" -o state_dir="$d" dkim keygen bench.test \
		--algorithm ed25519 --selector bench </dev/null >/dev/null ||
		die "tern dkim keygen failed"
	for run in $(seq "$RUNS"); do
		run_pair "$run" "run_F_tern no $run" "run_F_tern yes $run"
	done
}

# ---- the ceiling: bench/limit on the bench's file system -----------------------

# limit_run: bench/limit in $W (the file system of the state directories)
# for each message size the scenarios use; its "limit" lines go to the
# results.  Maildir files for A's sizes; log appends for B's size in
# batches of 1, 16, 64 and of each B session count (N relaying sessions
# have at most N messages to commit at once); the round trip once.
limit_run() {
	local s tests batches args=
	make -s --no-print-directory -C "$ROOT" B="$B" "$B/bench/limit" >&2 ||
		die "cannot build bench/limit"
	cp "$B/bench/limit" "$W/bin/limit"
	mkdir -p "$W/limit"
	[ "${QUICK:-0}" = 1 ] && args=--quick
	[ -n "${LIMIT_SECONDS:-}" ] && args="-d $LIMIT_SECONDS"
	batches=$(printf '%s\n' 1 16 64 $B_SESSIONS | awk '!seen[$0]++' | paste -sd,)
	for s in $(printf '%s\n' $A_SIZES $B_SIZE | awk '!seen[$0]++'); do
		tests=
		case " $SCENARIOS " in *" A "*)
			case " $A_SIZES " in *" $s "*) tests=file,group ;; esac ;;
		esac
		case " $SCENARIOS " in *" B "*)
			[ "$s" = "$B_SIZE" ] && tests=${tests:+$tests,}log ;;
		esac
		[ -n "$tests" ] || continue
		settle_disk
		"$W/bin/limit" $args -s "$s" -B "$batches" -T "$tests" "$W/limit" | tee -a "$RES"
		[ "${PIPESTATUS[0]}" = 0 ] || log "bench: bench/limit failed (size $s): no ceiling"
	done
	case " $SCENARIOS " in *" A "* | *" B "*)
		"$W/bin/limit" $args -T tcp "$W/limit" | tee -a "$RES" ;;
	esac
}

# ---- G H I J: STARTTLS, 100 recipients, LMTP to Dovecot, relay over TLS --------

if [ "${QUICK:-0}" = 1 ]; then
	: "${G_SECONDS:=3}" "${H_SECONDS:=3}" "${I_SECONDS:=3}" "${J_SECONDS:=3}"
fi
G_SIZE=${G_SIZE:-2048}
G_SESSIONS=${G_SESSIONS:-50}
G_SECONDS=${G_SECONDS:-10}
G_PER_CONN=${G_PER_CONN:-1}	# messages per TLS connection
H_SIZE=${H_SIZE:-2048}
H_RCPTS=${H_RCPTS:-100}		# recipients per message, over the BENCH_USERS mailboxes
H_SESSIONS=${H_SESSIONS:-10}
H_SECONDS=${H_SECONDS:-10}
I_SIZE=${I_SIZE:-2048}
I_SESSIONS=${I_SESSIONS:-10}
I_SECONDS=${I_SECONDS:-10}
J_SIZE=${J_SIZE:-2048}
J_SESSIONS=${J_SESSIONS:-10}
J_SECONDS=${J_SECONDS:-10}

# cpu_us OUT TICKS: CPU microseconds per accepted message
cpu_us() { awk -v c="$2" -v hz="$HZ" -v n="$(kv "$1" ok)" 'BEGIN { printf "%.0f", n ? c / hz * 1e6 / n : 0 }'; }

# the same self-signed certificate for ternd, Postfix and the TLS sink
bench_tls() { [ -f "$W/tls/cert.pem" ] || bench_cert "$W/tls"; }

# G: STARTTLS (TLS 1.3, tickets resumed by loadgen) into the Maildirs,
# G_PER_CONN messages per connection (1: every message its own session)
g_lg() {
	lg -p "$1" -S --tls13 --resume -m "$G_PER_CONN" -c "$G_SESSIONS" -d "$G_SECONDS" \
		-s "$G_SIZE" -r "$RCPTS" "${@:2}"
}

g_resumed() {
	awk -v h="$(kv "$1" tls_handshakes)" -v r="$(kv "$1" tls_resumed)" \
		'BEGIN { printf "%.1f", h ? r * 100 / h : 0 }'
}

run_G_tern() {
	local run=$1 d=$W/tern-g s=G-$G_SIZE-$G_SESSIONS out c0 c1 hwm
	load1
	tern_clean_maildirs "$d"
	tern_start "$d" "$TPORT" -o tls.cert="$W/tls/cert.pem" -o tls.key="$W/tls/key.pem"
	c0=$(cpu_ticks "$TERND_PID")
	out=$(g_lg "$TPORT" $(tern_maildirs "$d"))
	c1=$(cpu_ticks "$TERND_PID")
	hwm=$(hwm_kib "$TERND_PID")
	tern_stop
	record "$s" tern "$run" "$out" "cpu_us_msg=$(cpu_us "$out" $((c1 - c0)))" \
		"hwm_kib=$hwm resumed_pct=$(g_resumed "$out")"
	check_loss "$s tern run=$run" "$out"
}

run_G_postfix() {
	local run=$1 s=G-$G_SIZE-$G_SESSIONS out c0 c1
	load1
	pf_clean_maildirs
	c0=$(tree_ticks "$PF_MASTER")
	out=$(g_lg "$PPORT" $(pf_maildirs))
	c1=$(tree_ticks "$PF_MASTER")
	record "$s" postfix "$run" "$out" "cpu_us_msg=$(cpu_us "$out" $((c1 - c0)))" \
		"queue_left=$(pf_queue_count) resumed_pct=$(g_resumed "$out")"
	check_loss "$s postfix run=$run" "$out"
}

scenario_G() {
	local run
	bench_tls
	tern_init "$W/tern-g"
	pf_set smtpd_tls_security_level=may smtpd_tls_cert_file="$W/tls/cert.pem" \
		smtpd_tls_key_file="$W/tls/key.pem"
	for run in $(seq "$RUNS"); do
		run_pair "$run" "run_G_tern $run" "run_G_postfix $run"
	done
	pf_unset smtpd_tls_security_level smtpd_tls_cert_file smtpd_tls_key_file
}

# H: H_RCPTS recipients per message named round robin from the
# BENCH_USERS mailboxes, so each message names each mailbox
# H_RCPTS/BENCH_USERS times: both servers store one copy per mailbox, and
# the zero-loss rule counts those (loadgen's ok_distinct)
check_loss_distinct() {
	check_loss "$1" "ok_rcpts=$(kv "$2" ok_distinct) arrived=$(kv "$2" arrived)"
}

run_H_tern() {
	local run=$1 d=$W/tern-h s=H-$H_SIZE-$H_SESSIONS out c0 c1 hwm
	load1
	tern_clean_maildirs "$d"
	tern_start "$d" "$TPORT"
	c0=$(cpu_ticks "$TERND_PID")
	out=$(lg -p "$TPORT" -c "$H_SESSIONS" -d "$H_SECONDS" -s "$H_SIZE" -R "$H_RCPTS" \
		-r "$RCPTS" $(tern_maildirs "$d"))
	c1=$(cpu_ticks "$TERND_PID")
	hwm=$(hwm_kib "$TERND_PID")
	tern_stop
	record "$s" tern "$run" "$out" "cpu_us_msg=$(cpu_us "$out" $((c1 - c0)))" "hwm_kib=$hwm"
	check_loss_distinct "$s tern run=$run" "$out"
}

run_H_postfix() {
	local run=$1 s=H-$H_SIZE-$H_SESSIONS out c0 c1
	load1
	pf_clean_maildirs
	c0=$(tree_ticks "$PF_MASTER")
	out=$(lg -p "$PPORT" -c "$H_SESSIONS" -d "$H_SECONDS" -s "$H_SIZE" -R "$H_RCPTS" \
		-r "$RCPTS" $(pf_maildirs))
	c1=$(tree_ticks "$PF_MASTER")
	record "$s" postfix "$run" "$out" "cpu_us_msg=$(cpu_us "$out" $((c1 - c0)))" \
		"queue_left=$(pf_queue_count)"
	check_loss_distinct "$s postfix run=$run" "$out"
}

scenario_H() {
	local run
	tern_init "$W/tern-h"
	for run in $(seq "$RUNS"); do
		run_pair "$run" "run_H_tern $run" "run_H_postfix $run"
	done
}

# I: local mail handed to a private Dovecot over LMTP (unix socket), by
# ternd (delivery.lmtp) and by Postfix (local_transport = lmtp:unix:...);
# counted in Dovecot's Maildirs.  CPU: ternd / the Postfix instance, not
# Dovecot's (the same work for both).
run_I() {
	local mta=$1 run=$2 d=$W/tern-i dc=$W/dovecot s=I-$I_SIZE-$I_SESSIONS out c0 c1 extra port
	load1
	dovecot_clean_maildirs "$dc"
	if [ "$mta" = tern ]; then
		tern_start "$d" "$TPORT" -o delivery.lmtp="unix:$dc/lmtp.sock"
		c0=$(cpu_ticks "$TERND_PID")
		port=$TPORT
	else
		c0=$(tree_ticks "$PF_MASTER")
		port=$PPORT
	fi
	out=$(lg -p "$port" -c "$I_SESSIONS" -d "$I_SECONDS" -s "$I_SIZE" -r "$RCPTS" \
		$(dovecot_maildirs "$dc"))
	if [ "$mta" = tern ]; then
		c1=$(cpu_ticks "$TERND_PID")
		extra="hwm_kib=$(hwm_kib "$TERND_PID")"
		tern_stop
	else
		c1=$(tree_ticks "$PF_MASTER")
		extra="queue_left=$(pf_queue_count)"
	fi
	record "$s" "$mta" "$run" "$out" "cpu_us_msg=$(cpu_us "$out" $((c1 - c0)))" "$extra"
	check_loss "$s $mta run=$run" "$out"
}

scenario_I() {
	local run
	tern_init "$W/tern-i"
	dovecot_start "$W/dovecot"
	pf_set local_transport="lmtp:unix:$W/dovecot/lmtp.sock"
	for run in $(seq "$RUNS"); do
		run_pair "$run" "run_I tern $run" "run_I postfix $run"
	done
	pf_unset local_transport
	dovecot_stop
}

# relay_mta_start MTA DIR [-o ...]: the MTA of a relaying run, tern
# (ternd started in DIR on TPORT with the options) or postfix (already
# up); sets RUN_PORT, where loadgen sends, and RUN_C0, the CPU ticks so
# far of ternd or of the whole Postfix instance
relay_mta_start() {
	local mta=$1 d=$2
	shift 2
	if [ "$mta" = tern ]; then
		tern_start "$d" "$TPORT" "$@"
		RUN_C0=$(cpu_ticks "$TERND_PID")
		RUN_PORT=$TPORT
	else
		RUN_C0=$(tree_ticks "$PF_MASTER")
		RUN_PORT=$PPORT
	fi
}

# relay_mta_stop MTA DIR: the run's CPU ticks (RUN_TICKS) and its own
# result fields (RUN_EXTRA: ternd's peak RSS and queue left, or
# Postfix's queue left); ternd is stopped, Postfix stays
relay_mta_stop() {
	if [ "$1" = tern ]; then
		RUN_TICKS=$(($(cpu_ticks "$TERND_PID") - RUN_C0))
		RUN_EXTRA="hwm_kib=$(hwm_kib "$TERND_PID") queue_left=$(tern_queued "$2")"
		tern_stop
	else
		RUN_TICKS=$(($(tree_ticks "$PF_MASTER") - RUN_C0))
		RUN_EXTRA="queue_left=$(pf_queue_count)"
	fi
}

# tls_sink_counts: stops the TLS sink; SINK_CONNS, SINK_TLS, SINK_RESUMED
# from its output, and SINK_FIELDS, the three as result fields
tls_sink_counts() {
	sink_stop
	SINK_CONNS=$(kv "$(cat "$SINKOUT")" conns)
	SINK_TLS=$(kv "$(cat "$SINKOUT")" tls)
	SINK_RESUMED=$(kv "$(cat "$SINKOUT")" resumed)
	SINK_FIELDS="sink_conns=$SINK_CONNS sink_tls=$SINK_TLS sink_resumed=$SINK_RESUMED"
}

# tls_sink_check LABEL: a NOTLS line unless every connection used TLS
tls_sink_check() {
	if [ "${SINK_TLS:-0}" = 0 ] || [ "$SINK_TLS" != "$SINK_CONNS" ]; then
		echo "NOTLS $1: $SINK_TLS of $SINK_CONNS connections to the sink used TLS"
		FAIL=1
	fi
}

# J: B's relay, to loadgen's sink offering STARTTLS: ternd's opportunistic
# TLS to the MX (dnsmasq: sink.test -> 127.0.0.1), Postfix's relayhost
# with smtp_tls_security_level = may.  Every connection must have used TLS.
run_J() {
	local mta=$1 run=$2 d=$W/tern-j s=J-$J_SIZE-$J_SESSIONS out
	load1
	tls_sink_start "$SINK_PORT" "$SINKOUT" "$W/tls"
	relay_mta_start "$mta" "$d" $(tern_relay_opts "$SINK_PORT")
	out=$(lg -p "$RUN_PORT" -c "$J_SESSIONS" -d "$J_SECONDS" -s "$J_SIZE" -r "$SINK_RCPTS" \
		--watch-sink "$SINKOUT")
	relay_mta_stop "$mta" "$d"
	tls_sink_counts
	record "$s" "$mta" "$run" "$out" "cpu_us_msg=$(cpu_us "$out" "$RUN_TICKS")" \
		"$RUN_EXTRA $SINK_FIELDS"
	check_loss "$s $mta run=$run" "$out"
	tls_sink_check "$s $mta run=$run"
}

scenario_J() {
	local run
	bench_tls
	tern_init "$W/tern-j"
	pf_set smtp_tls_security_level=may
	for run in $(seq "$RUNS"); do
		run_pair "$run" "run_J tern $run" "run_J postfix $run"
	done
	pf_unset smtp_tls_security_level
}

# ---- K: A's delivery through the same rspamd (milter) --------------------------

if [ "${QUICK:-0}" = 1 ]; then
	: "${K_SECONDS:=3}"
fi
K_SIZE=${K_SIZE:-2048}
K_SESSIONS=${K_SESSIONS:-10}
K_SECONDS=${K_SECONDS:-10}
K_RSPAMD_COUNT=${K_RSPAMD_COUNT:-$(nproc)}	# rspamd proxy processes (self-scanning)

# rspamd_ticks: the CPU of rspamd's main process and its workers
rspamd_ticks() { tree_ticks "$RSPAMD_PID"; }

# rspamd_scans FROM: rspamd's own account of the messages it scanned
# after byte FROM of its log (its rspamd_task_write_log line, one per
# message, with "time: N.NNms" from the start of the task to its end):
# "rspamd_scans=N rspamd_scan_ms=MEAN rspamd_scan_p50_ms=P50"
rspamd_scans() {
	tail -c +"$(($1 + 1))" "$RSPAMD_DIR/rspamd.log" |
		sed -n 's/.*rspamd_task_write_log: .*, time: \([0-9.]*\)ms.*/\1/p' | sort -g |
		awk '{ v[NR] = $1; s += $1 } END {
			if (NR == 0) { print "rspamd_scans=0 rspamd_scan_ms=- rspamd_scan_p50_ms=-"; exit }
			printf "rspamd_scans=%d rspamd_scan_ms=%.2f rspamd_scan_p50_ms=%.2f\n", NR, s / NR, v[int((NR + 1) / 2)] }'
}

# rspamd_start DIR: rspamd 3.4 in milter mode on 127.0.0.1:RSPAMD_PORT with
# the configuration the e2e tests use (tests/e2e/rspamd: no Redis, no
# network), K_RSPAMD_COUNT self-scanning proxy processes, as nobody.
# Its resolver is a private dnsmasq that answers NXDOMAIN to everything at
# once: the tests' closed port would make each lookup wait out rspamd's
# 1 s timeout, and rspamd looks up more for Postfix's messages than for
# ternd's (Postfix passes the client name "localhost" it resolved, ternd
# "unknown"), so the two would not be scanned alike.  Returns once every
# proxy process has loaded the hyperscan database (compiled by hs_helper
# in the first seconds; scans before it are ten times slower).
rspamd_start() {
	local d=$1 i dport
	command -v rspamd >/dev/null ||
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends rspamd >/dev/null
	RSPAMD_DIR=$d
	RSPAMD_PORT=$(free_port)
	dport=$(free_port)
	mkdir -p "$d"
	/usr/sbin/dnsmasq --no-daemon --no-resolv --no-hosts --bind-interfaces \
		--listen-address=127.0.0.1 --port="$dport" --pid-file= --user=root --group=root \
		--local=/#/ --log-queries --log-facility=- >"$d/dnsmasq.log" 2>&1 &
	RSPAMD_DNS_PID=$!
	sed -e "s/@PORT@/$RSPAMD_PORT/" -e "s/@COUNT@/$K_RSPAMD_COUNT/" \
		"$ROOT/tests/e2e/rspamd/rspamd.conf" >"$d/rspamd.conf"
	sed -e "s/127\.0\.0\.1:9\"/127.0.0.1:$dport\"/" \
		"$ROOT/tests/e2e/rspamd/options-override.inc" >"$d/options-override.inc"
	grep -q "127.0.0.1:$dport" "$d/options-override.inc" || die "rspamd: cannot set its resolver"
	cp -r "$ROOT/tests/e2e/rspamd/local.d" "$d/"
	chmod 777 "$d"
	rspamd -f -c "$d/rspamd.conf" -u nobody -g nogroup --var=RUNDIR="$d" \
		--var=DBDIR="$d" --var=LOGDIR="$d" --var=LOCAL_CONFDIR="$d" >"$d/out.txt" 2>&1 </dev/null &
	RSPAMD_PID=$!
	for i in $(seq 1800); do
		[ -n "$(ss -Hltn "sport = :$RSPAMD_PORT")" ] &&
			[ "$(grep -c 'rspamd_proxy) .*rspamd_re_cache_load_hyperscan: full hyperscan database' \
				"$d/rspamd.log" 2>/dev/null)" -ge "$K_RSPAMD_COUNT" ] && return
		kill -0 "$RSPAMD_PID" 2>/dev/null || break
		sleep 0.1
	done
	cat "$d/out.txt" >&2
	tail "$d/rspamd.log" >&2 2>/dev/null
	die "rspamd did not start (or did not load its hyperscan database in 180 s)"
}

rspamd_stop() { stop_pids RSPAMD_PID RSPAMD_DNS_PID; }

# run_K MTA RUN: one run; CPU of the MTA (ternd, or the Postfix instance)
# and of rspamd apart, each per accepted message, and rspamd's own scan
# time from its log.  Every accepted message must have been scanned.
run_K() {
	local mta=$1 run=$2 d=$W/tern-k s=K-$K_SIZE-$K_SESSIONS out c0 c1 r0 r1 extra port l0 scans
	load1
	if [ "$mta" = tern ]; then
		tern_clean_maildirs "$d"
		tern_start "$d" "$TPORT" -o milter.servers="inet:127.0.0.1:$RSPAMD_PORT" \
			-o milter.default_action=tempfail
		c0=$(cpu_ticks "$TERND_PID")
		port=$TPORT
	else
		pf_clean_maildirs
		c0=$(tree_ticks "$PF_MASTER")
		port=$PPORT
	fi
	l0=$(stat -c %s "$RSPAMD_DIR/rspamd.log" 2>/dev/null || echo 0)
	r0=$(rspamd_ticks)
	if [ "$mta" = tern ]; then
		out=$(lg -p "$port" -c "$K_SESSIONS" -d "$K_SECONDS" -s "$K_SIZE" -r "$RCPTS" \
			$(tern_maildirs "$d"))
		c1=$(cpu_ticks "$TERND_PID")
		r1=$(rspamd_ticks)
		extra="hwm_kib=$(hwm_kib "$TERND_PID")"
		tern_stop
	else
		out=$(lg -p "$port" -c "$K_SESSIONS" -d "$K_SECONDS" -s "$K_SIZE" -r "$RCPTS" \
			$(pf_maildirs))
		c1=$(tree_ticks "$PF_MASTER")
		r1=$(rspamd_ticks)
		extra="queue_left=$(pf_queue_count)"
	fi
	scans=$(rspamd_scans "$l0")
	record "$s" "$mta" "$run" "$out" "cpu_us_msg=$(cpu_us "$out" $((c1 - c0)))" \
		"$extra rspamd_cpu_us_msg=$(cpu_us "$out" $((r1 - r0))) $scans"
	check_loss "$s $mta run=$run" "$out"
	if [ "$(kv "$scans" rspamd_scans)" -lt "$(kv "$out" ok)" ]; then
		echo "NOSCAN $s $mta run=$run: rspamd logged $(kv "$scans" rspamd_scans) scans for $(kv "$out" ok) messages"
		FAIL=1
	fi
}

scenario_K() {
	local run
	rspamd_start "$W/rspamd"
	tern_init "$W/tern-k"
	# rspamd's first scans (Lua, maps) are slow: 200 messages through
	# ternd before the measured runs, for both
	tern_start "$W/tern-k" "$TPORT" -o milter.servers="inet:127.0.0.1:$RSPAMD_PORT"
	lg -p "$TPORT" -c "$K_SESSIONS" -n 200 -s "$K_SIZE" -r "$RCPTS" >/dev/null
	tern_stop
	pf_set smtpd_milters="inet:127.0.0.1:$RSPAMD_PORT" milter_protocol=6 \
		milter_default_action=tempfail
	for run in $(seq "$RUNS"); do
		run_pair "$run" "run_K tern $run" "run_K postfix $run"
	done
	pf_unset smtpd_milters milter_protocol milter_default_action
	rspamd_stop
}

# ---- L: J's relay under DANE against opportunistic TLS ---------------------------

if [ "${QUICK:-0}" = 1 ]; then
	: "${L_SECONDS:=3}"
fi
L_SIZE=${L_SIZE:-2048}
L_SESSIONS=${L_SESSIONS:-10}
L_SECONDS=${L_SECONDS:-10}
# how long to wait for the sink's count after sending: a DANE failure
# leaves the mail queued, and J's 900 s would only delay the DANEFAIL
L_WATCH_TIMEOUT=${L_WATCH_TIMEOUT:-120}
# the validating resolver's address: port 53 there, since Postfix asks
# its resolver through libc, which knows no other port; an address of
# its own on loopback, so nothing of the system's is in the way
L_DNS_ADDR=${L_DNS_ADDR:-127.0.0.153}
L_DNS= L_PF_DANE=

# l_port53_free ADDR: nothing listens on ADDR:53 nor on the wildcard
l_port53_free() {
	! ss -Hltun 'sport = :53' 2>/dev/null | awk '{ print $5 }' |
		grep -qE "^($(printf '%s' "$1" | sed 's/\./\\./g')|0\.0\.0\.0|\*|\[::\]):53$"
}

# l_dns_start: the signed zone sink.test (MX mx.sink.test, its address
# 127.0.0.1 and the TLSA 3 1 1 of the sink's key at
# _SINK_PORT._tcp.mx.sink.test: the TLSA owner has relay.port, the
# sink's, not 25) behind a validating unbound at L_DNS.  Sets L_PF_DANE to
# why Postfix cannot have DANE here, or "".
l_dns_start() {
	local d=$W/dnssec spki
	# the packages of scripts/deps.sh (it keeps their daemons from
	# starting system-wide while they install)
	[ -x /usr/sbin/nsd ] && [ -x /usr/sbin/unbound ] && command -v ldns-signzone >/dev/null &&
		command -v drill >/dev/null || bash "$ROOT/scripts/deps.sh" >&2 ||
		die "L needs nsd, unbound and ldnsutils (scripts/deps.sh failed)"
	bench_tls
	spki=$(tlsa_spki_sha256 "$W/tls/cert.pem")
	[ "${#spki}" = 64 ] || die "L: no SPKI digest of $W/tls/cert.pem"
	dnssec_zone "$d" sink.test "@ IN MX 10 mx" "mx IN A 127.0.0.1" \
		"_$SINK_PORT._tcp.mx IN TLSA 3 1 1 $spki"
	L_PF_DANE=
	if ! l_port53_free "$L_DNS_ADDR"; then
		L_PF_DANE="port 53 of $L_DNS_ADDR is taken (L_DNS_ADDR sets another loopback address)"
	elif ! unshare -m --propagation private true 2>/dev/null; then
		L_PF_DANE="no mount namespace here (unshare -m failed): Postfix's resolv.conf cannot be its own without changing the system's"
	fi
	if [ -z "$L_PF_DANE" ]; then
		L_DNS=$L_DNS_ADDR:53
	else
		L_DNS=127.0.0.1:$(free_port)
	fi
	dnssec_start "$d" "${L_DNS%:*}" "${L_DNS##*:}"
	dnssec_check "${L_DNS%:*}" "${L_DNS##*:}" sink.test MX &&
		dnssec_check "${L_DNS%:*}" "${L_DNS##*:}" "_$SINK_PORT._tcp.mx.sink.test" TLSA ||
		die "L: the MX or TLSA answer of sink.test is not validated (see $d/unbound.log)"
	# glibc clears the AD bit of answers without trust-ad
	printf 'nameserver %s\noptions trust-ad\n' "$L_DNS_ADDR" >"$d/resolv.conf"
}

# l_pf_mode MODE: the private Postfix for opp (J's relayhost, TLS may) or
# dane (the relayhost by name, so its address and TLSA records come from
# DNS: [mx.sink.test] with no MX lookup, since Postfix refuses an MX
# host that is one of its own addresses, 127.0.0.1, as a mail loop)
l_pf_mode() {
	if [ "$1" = dane ]; then
		pf_set smtp_tls_security_level=dane smtp_dns_support_level=dnssec \
			relayhost="[mx.sink.test]:$SINK_PORT"
	else
		pf_set smtp_tls_security_level=may smtp_dns_support_level= \
			relayhost="[127.0.0.1]:$SINK_PORT"
	fi
}

# l_verified MTA FROM: the TLS connections the MTA's log shows
# authenticated by DANE (ternd: "verified=yes tls_policy=dane" on its
# event=tls line; Postfix: "Verified TLS connection established", its
# smtp_tls_loglevel = 1 line, in its maillog after byte FROM), then the
# TLS lines that are not
l_verified() {
	local v t
	if [ "$1" = tern ]; then
		t=$(grep -c ' event=tls ' "$W/tern-l.log")
		v=$(grep -c ' event=tls .* verified=yes tls_policy=dane' "$W/tern-l.log")
	else
		t=$(tail -c +"$(($2 + 1))" "$PF/maillog" | grep -c 'TLS connection established to')
		v=$(tail -c +"$(($2 + 1))" "$PF/maillog" |
			grep -c 'Verified TLS connection established to mx\.sink\.test\[')
	fi
	echo "$v $((t - v))"
}

# run_L MTA MODE RUN: one run of J's relay, MODE opp (dnsmasq's MX, no
# DNSSEC) or dane (the signed zone through unbound, dns.dnssec = yes).
# Every connection at the sink must be TLS, and under DANE every one
# authenticated by DANE, else NOTLS or DANEFAIL.  The resolver's CPU
# (unbound) is reported apart, per message.
run_L() {
	local mta=$1 mode=$2 run=$3 d=$W/tern-l s=L-$L_SIZE-$L_SESSIONS-$2 out u0 u1 from=0 ver bad i
	load1
	tls_sink_start "$SINK_PORT" "$SINKOUT" "$W/tls"
	if [ "$mta" = postfix ]; then
		l_pf_mode "$mode"
		from=$(stat -c %s "$PF/maillog" 2>/dev/null || echo 0)
	fi
	if [ "$mode" = dane ]; then
		relay_mta_start "$mta" "$d" -o relay.networks=127.0.0.1/32 -o relay.port="$SINK_PORT" \
			-o dns.servers="$L_DNS" -o dns.dnssec=yes
	else
		relay_mta_start "$mta" "$d" $(tern_relay_opts "$SINK_PORT") -o dns.dnssec=no
	fi
	u0=$(cpu_ticks "$UNBOUND_PID")
	out=$(lg -p "$RUN_PORT" -c "$L_SESSIONS" -d "$L_SECONDS" -s "$L_SIZE" -r "$SINK_RCPTS" \
		--watch-sink "$SINKOUT" --watch-timeout "$L_WATCH_TIMEOUT")
	u1=$(cpu_ticks "$UNBOUND_PID")
	relay_mta_stop "$mta" "$d"
	tls_sink_counts
	# Postfix logs through postlogd: its last lines may still be on the way
	for i in $(seq 50); do
		read -r ver bad < <(l_verified "$mta" "$from")
		[ "$mta" = tern ] || [ $((ver + bad)) -ge "${SINK_TLS:-0}" ] && break
		sleep 0.1
	done
	record "$s" "$mta" "$run" "$out" "cpu_us_msg=$(cpu_us "$out" "$RUN_TICKS")" \
		"$RUN_EXTRA $SINK_FIELDS" \
		"resumed_pct=$(awk -v t="${SINK_TLS:-0}" -v r="${SINK_RESUMED:-0}" 'BEGIN { printf "%.1f", t ? r * 100 / t : 0 }')" \
		"dane_verified=$ver tls_not_dane=$bad dns_cpu_us_msg=$(cpu_us "$out" $((u1 - u0)))"
	check_loss "$s $mta run=$run" "$out"
	tls_sink_check "$s $mta run=$run"
	if [ "$mode" = dane ] && { [ "$ver" != "$SINK_CONNS" ] || [ "$bad" != 0 ]; }; then
		echo "DANEFAIL $s $mta run=$run: $ver of $SINK_CONNS connections to the sink authenticated by DANE, $bad TLS connections without (see $([ "$mta" = tern ] && echo "$d.log" || echo "$PF/maillog"))"
		FAIL=1
	fi
}

scenario_L() {
	local run
	tern_init "$W/tern-l"
	l_dns_start
	# Postfix again, in its own mount namespace whose /etc/resolv.conf
	# names the bench's unbound (both modes run in it: the opportunistic
	# relayhost is an address, no DNS is asked)
	if [ -z "$L_PF_DANE" ]; then
		pf_stop
		pf_start "$W/dnssec/resolv.conf"
	else
		echo "postfix - scen=L-$L_SIZE-$L_SESSIONS-dane: $L_PF_DANE"
	fi
	pf_set smtp_tls_loglevel=1
	for run in $(seq "$RUNS"); do
		run_pair "$run" "run_L tern opp $run" "run_L tern dane $run"
		if [ -z "$L_PF_DANE" ]; then
			run_pair "$run" "run_L postfix opp $run" "run_L postfix dane $run"
		else
			settle_disk
			PAIR_POS=1
			run_L postfix opp "$run"
		fi
	done
	l_pf_mode opp
	pf_unset smtp_tls_security_level smtp_dns_support_level smtp_tls_loglevel
	if [ -z "$L_PF_DANE" ]; then
		pf_stop
		pf_start
	fi
	dnssec_stop
}

# ---- the table ------------------------------------------------------------------

# med SCEN MTA KEY: median over the runs
med() { grep "^result scen=$1 mta=$2 " "$RES" | tr ' ' '\n' | sed -n "s/^$3=//p" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a != "-") printf "%.1fx", a / b; else print "-" }'; }
# the goals of issue 14 for a row (comma-separated, read by met)
goal() {
	case $1 in
	A-2048-50) echo ">=15x,>=80%,p99<10ms,cpu<=150us" ;;
	A-2048-1) echo ">=4x,p99<2ms,cpu<=150us" ;;
	A-2048-*) echo "cpu<=150us" ;;
	A-102400-10) echo ">=5x" ;;
	B-2048-10 | B-2048-50) echo ">=10x" ;;
	G-2048-50) echo ">=10x" ;;
	K-*) echo ">=1x" ;; # issue 15: not slower than Postfix with the same rspamd
	*) echo "" ;;
	esac
}
# met GOALS RATIO PCT P99_MS CPU_US: "yes", "no:" and the goals missed
# ("-" for a figure not measured counts as missed), or "" without goals
met() {
	awk -v g="$1" -v r="$2" -v p="$3" -v l="$4" -v c="$5" 'BEGIN {
		if (g == "") exit
		n = split(g, a, ",")
		for (i = 1; i <= n; i++) {
			t = a[i]
			if (t ~ /x$/)
				ok = r != "-" && r + 0 >= substr(t, 3) + 0
			else if (t ~ /%$/)
				ok = p != "-" && p + 0 >= substr(t, 3) + 0
			else if (t ~ /^p99</)
				ok = l != "-" && l + 0 < substr(t, 5) + 0
			else
				ok = c != "-" && c + 0 <= substr(t, 6) + 0
			if (!ok)
				miss = miss (miss == "" ? "" : ",") t
		}
		print (miss == "" ? "yes" : "no:" miss) }'
}
# lim_best TEST PATTERN: the best per_sec of the limit lines of TEST
# that match PATTERN, or "-"
lim_best() {
	grep "^limit test=$1 " "$RES" | grep -e "$2" | tr ' ' '\n' | sed -n 's/^per_sec=//p' |
		sort -g | tail -1 | grep . || echo -
}
# ceiling SCEN: the ceiling a row is measured against: one session makes
# one file at a time (per-file fsync); more sessions can be group-
# committed (the better of syncfs and fdatasync); a relay's queue could
# be a log with one fdatasync per as many messages as it has sessions
ceiling() {
	local IFS=-
	set -- $1
	case $1-$3 in
	A-1) lim_best maildir_file " size=$2 " ;;
	A-*) lim_best maildir_group " size=$2 " ;;
	B-*) lim_best log " size=$2 .* batch=$3 " ;;
	*) echo - ;;
	esac
}
# pct VALUE CEILING: VALUE as a whole percentage of CEILING, or "-"
pct() { awk -v a="$1" -v c="$2" 'BEGIN { if (c + 0 > 0 && a != "-") printf "%.0f", a / c * 100; else print "-" }'; }
# the ceilings measured, one line each
ceilings() {
	grep -q '^limit ' "$RES" || return 1
	echo "Ceiling of this machine (bench/limit, same file system; CPU per operation of the program):"
	grep '^limit ' "$RES" | awk '{
		d = ""; x = ""
		for (i = 2; i <= NF; i++) {
			split($i, a, "=")
			if (a[1] == "ops") break
			if (a[1] != "threads" || a[2] != 1) d = d " " $i
		}
		for (; i <= NF; i++) {
			split($i, a, "=")
			v[a[1]] = a[2]
			if (a[1] ~ /^(p50_us|p99_us|batch_avg)$/) x = x " " $i
		}
		printf "  %-62s %8.0f /s %7.1f us CPU%s\n", substr(d, 2), v["per_sec"], v["cpu_us_op"], x }'
}
label() {
	local IFS=- s
	set -- $1
	s=$(awk -v b="$2" 'BEGIN { if (b >= 1024 && b % 1024 == 0) printf "%dKiB", b / 1024; else printf "%dB", b }')
	case $1 in
	A) echo "A deliver $s x$3" ;; B) echo "B relay $s x$3" ;;
	G) echo "G STARTTLS $s x$3" ;; H) echo "H ${H_RCPTS}rcpt $s x$3" ;;
	I) echo "I LMTP $s x$3" ;; J) echo "J relay TLS $s x$3" ;;
	K) echo "K rspamd $s x$3" ;;
	L) echo "L $([ "$4" = dane ] && echo DANE || echo opp.TLS) $s x$3" ;;
	esac
}

# a number rounded (n1: to one decimal), or "-"
n0() { awk -v v="$1" 'BEGIN { if (v == "-" || v == "") print "-"; else printf "%.0f", v }'; }
n1() { awk -v v="$1" 'BEGIN { if (v == "-" || v == "") print "-"; else printf "%.1f", v }'; }
lat3() {
	local a b c
	a=$(med "$1" "$2" p50_ms) b=$(med "$1" "$2" p99_ms) c=$(med "$1" "$2" p999_ms)
	awk -v a="$a" -v b="$b" -v c="$c" 'BEGIN { if (a == "-") print "-"; else printf "%.1f/%.1f/%.1f", a, b, c }'
}
# failed messages, connection errors and timeouts over all runs
errs() {
	grep "^result scen=$1 mta=$2 " "$RES" | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^(failed|conn_err|timeouts)=/) { split($i, a, "="); n += a[2] } } END { print n + 0 }'
}

table() {
	local runs
	runs=$(grep -o '^result .* run=[0-9]*' "$RES" | sed 's/.* run=//' | sort -u | wc -l)
	echo
	ceilings && echo
	grep -q '^result scen=[ABGHIJKL]-' "$RES" && ab_table "$runs"
	others
}

# ab_table RUNS: the rows of A, B, G to L, tern beside Postfix
ab_table() {
	local s t p c runs=$1
	echo "Medians of $runs run(s). msg/s: delivered end to end (Maildir files or sink count / time from"
	echo "first connect to last arrival); 250/s: acceptance rate seen by the client. Latency: last byte"
	echo "of \".\" to the 250. RSS: ternd's VmHWM in the run. CPU: per message, whole MTA."
	echo "ceil: tern's msg/s as a percentage of this machine's ceiling (x1: one durable file at a"
	echo "time; A: group-committed Maildir files; B: log appends, one fdatasync per N sessions)."
	printf '%-22s %9s %9s %7s %5s %-32s %-34s | %9s %9s | %-20s %-20s | %8s %8s %8s | %s\n' \
		scenario tern postfix ratio ceil "goal (issue 14)" "met" "tern" "postfix" \
		"tern p50/p99/p99.9" "postfix p50/p99/p99.9" "ternRSS" "ternCPU" "pfCPU" "errors t/p"
	printf '%-22s %9s %9s %7s %5s %-32s %-34s | %9s %9s | %-20s %-20s | %8s %8s %8s |\n' \
		"" "msg/s" "msg/s" "" "%" "" "" "250/s" "250/s" "ms" "ms" "MiB" "us/msg" "us/msg"
	for s in $(sed -n 's/^result scen=\([ABGHIJKL]-[^ ]*\) .*/\1/p' "$RES" | awk '!seen[$0]++'); do
		t=$(med "$s" tern e2e_mps)
		p=$(med "$s" postfix e2e_mps)
		c=$(pct "$t" "$(ceiling "$s")")
		printf '%-22s %9s %9s %7s %5s %-32s %-34s | %9s %9s | %-20s %-20s | %8s %8s %8s | %s/%s\n' \
			"$(label "$s")" "$(n0 "$t")" "$(n0 "$p")" "$(ratio "$t" "$p")" "$c" "$(goal "$s")" \
			"$(met "$(goal "$s")" "$(awk -v a="$t" -v b="$p" 'BEGIN { if (b + 0 > 0 && a != "-") print a / b; else print "-" }')" \
				"$c" "$(med "$s" tern p99_ms)" "$(med "$s" tern cpu_us_msg)")" \
			"$(n0 "$(med "$s" tern mps)")" "$(n0 "$(med "$s" postfix mps)")" \
			"$(lat3 "$s" tern)" "$(lat3 "$s" postfix)" \
			"$(awk -v k="$(med "$s" tern hwm_kib)" 'BEGIN { if (k == "-") print "-"; else printf "%.1f", k / 1024 }')" \
			"$(n0 "$(med "$s" tern cpu_us_msg)")" "$(n0 "$(med "$s" postfix cpu_us_msg)")" \
			"$(errs "$s" tern)" "$(errs "$s" postfix)"
	done
}

# r2 A B: A / B with two decimals ("x0.95"), or "-"
r2() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a != "-" && a != "") printf "x%.2f", a / b; else print "-" }'; }

# l_rows: scenario L, a row per mode and MTA and the cost of DANE (the
# ratios dane / opportunistic of the medians)
l_rows() {
	local s m mode
	for s in $(sed -n 's/^result scen=\(L-[0-9]*-[0-9]*\)-[a-z]* .*/\1/p' "$RES" | awk '!seen[$0]++'); do
		printf '\n%s: DANE against opportunistic TLS (medians; CPU per message of the MTA and of\nthe resolver, unbound; resumed: the sink'"'"'s TLS handshakes that resumed a session)\n' \
			"$(label "$s-opp" | sed 's/^L opp\.TLS/L relay/')"
		printf '  %-8s %-14s %9s %8s %9s %9s %8s\n' mta mode msg/s "p99 ms" "CPU us" "DNS us" "resumed"
		for m in tern postfix; do
			for mode in opp dane; do
				printf '  %-8s %-14s %9s %8s %9s %9s %8s\n' "$m" \
					"$([ "$mode" = dane ] && echo DANE || echo opportunistic)" \
					"$(n0 "$(med "$s-$mode" "$m" e2e_mps)")" "$(n1 "$(med "$s-$mode" "$m" p99_ms)")" \
					"$(n0 "$(med "$s-$mode" "$m" cpu_us_msg)")" \
					"$(n0 "$(med "$s-$mode" "$m" dns_cpu_us_msg)")" \
					"$(med "$s-$mode" "$m" resumed_pct)"
			done
			printf '  %-8s %-14s %9s %8s %9s\n' "$m" "DANE cost" \
				"$(r2 "$(med "$s-dane" "$m" e2e_mps)" "$(med "$s-opp" "$m" e2e_mps)")" \
				"$(r2 "$(med "$s-dane" "$m" p99_ms)" "$(med "$s-opp" "$m" p99_ms)")" \
				"$(r2 "$(med "$s-dane" "$m" cpu_us_msg)" "$(med "$s-opp" "$m" cpu_us_msg)")"
		done
	done
}

# others: one line or two for each of C, D, E, F, K and L
others() {
	local s
	l_rows
	for s in $(sed -n 's/^result scen=\(K-[^ ]*\) .*/\1/p' "$RES" | awk '!seen[$0]++'); do
		printf 'rspamd itself in %s (the same rspamd for both): scan time from its log %s ms mean, %s ms median (tern) / %s ms, %s ms (Postfix); rspamd CPU %s us/msg (tern) / %s us/msg (Postfix); messages scanned %s / %s\n' \
			"$(label "$s")" "$(med "$s" tern rspamd_scan_ms)" "$(med "$s" tern rspamd_scan_p50_ms)" \
			"$(med "$s" postfix rspamd_scan_ms)" "$(med "$s" postfix rspamd_scan_p50_ms)" \
			"$(n0 "$(med "$s" tern rspamd_cpu_us_msg)")" "$(n0 "$(med "$s" postfix rspamd_cpu_us_msg)")" \
			"$(med "$s" tern rspamd_scans)" "$(med "$s" postfix rspamd_scans)"
	done
	if grep -q '^result scen=F-' "$RES"; then
		local e=F-$F_SIZE-$F_SESSIONS u v
		u=$(med "$e-no" tern e2e_mps) v=$(med "$e-yes" tern e2e_mps)
		printf 'F submission %sB x%s: unsigned %s msg/s (%s us CPU/msg), Ed25519-signed %s msg/s (%s us CPU/msg): %s of the throughput (goal < 10 %%)\n' \
			"$F_SIZE" "$F_SESSIONS" "$(n0 "$u")" "$(n0 "$(med "$e-no" tern cpu_us_msg)")" \
			"$(n0 "$v")" "$(n0 "$(med "$e-yes" tern cpu_us_msg)")" \
			"$(awk -v a="$u" -v b="$v" 'BEGIN { if (a + 0 > 0 && b != "-") printf "%+.1f %%", (b - a) / a * 100; else print "-" }')"
	fi
	if grep -q '^result scen=C ' "$RES"; then
		grep '^result scen=C ' "$RES" | tail -1 | awk '{ for (i = 3; i <= NF; i++) { split($i, a, "="); v[a[1]] = a[2] } }
			END { printf "C idle connections: %s of %s up, refused/accept errors in log %s; ternd RSS %.1f -> %.1f MiB: %.1f KiB per connection (goal < 3 KiB)\n",
				v["idle_up"], v["conns"], v["refused_log"], v["rss0_kib"] / 1024, v["rss1_kib"] / 1024, v["per_conn_b"] / 1024 }'
	fi
	for s in $(grep -o '^result scen=E-[0-9]*' "$RES" | sort -u | cut -d= -f2); do
		awk -v s="$s" -v p="$(med "$s" plain e2e_mps)" -v a="$(med "$s" auth e2e_mps)" \
			-v pc="$(med "$s" plain cpu_us_msg)" -v ac="$(med "$s" auth cpu_us_msg)" \
			'BEGIN { printf "%s DKIM+SPF+DMARC: %.0f msg/s with, %.0f without (%+.1f %%); CPU %s vs %s us/msg\n",
				s, a, p, (p > 0 ? (a - p) / p * 100 : 0), ac, pc }'
	done
	if grep -q '^result scen=D ' "$RES"; then
		grep '^result scen=D ' "$RES" | tail -1 | awk '{ for (i = 3; i <= NF; i++) { split($i, a, "="); v[a[1]] = a[2] } }
			END { printf "D %s queued: ternd RSS %.1f MiB empty, %.1f MiB after restart: %.0f B per queued message (%.0f B while live) (goal < 2 KiB);\n  restart to event=ready %s s warm (queue_loaded %s ms), %s s cold (goal < 5 s); drain %s in %s s: %s msg/s\n",
				v["queued"], v["rss_empty_kib"] / 1024, v["rss_loaded_kib"] / 1024, v["per_msg_b"], v["per_msg_live_b"], v["restart_warm_s"], v["queue_loaded_ms"], v["restart_cold_s"], v["drained"], v["drain_s"], v["drain_mps"] }'
	fi
}

# ---- E: the same delivery with DKIM + SPF + DMARC on every message -------------

run_E_tern() {
	local mode=$1 sess=$2 run=$3 d=$W/tern-e out c0 c1
	load1
	tern_clean_maildirs "$d"
	if [ "$mode" = auth ]; then
		tern_start "$d" "$TPORT" -o spf.check=yes -o dkim.verify=yes \
			-o dmarc.check=yes -o dns.servers="127.0.0.1:$E_DNS_PORT"
	else
		tern_start "$d" "$TPORT"
	fi
	c0=$(cpu_ticks "$TERND_PID")
	out=$(lg -p "$TPORT" -c "$sess" -d "$E_SECONDS" -f sender@auth.bench.test \
		--message "$W/e/message.eml" -r "$RCPTS" $(tern_maildirs "$d"))
	c1=$(cpu_ticks "$TERND_PID")
	tern_stop
	record "E-$sess" "$mode" "$run" "$out" \
		"cpu_us_msg=$(awk -v c=$((c1 - c0)) -v hz="$HZ" -v n="$(kv "$out" ok)" 'BEGIN { printf "%.0f", n ? c / hz * 1e6 / n : 0 }')"
	check_loss "E-$sess $mode run=$run" "$out"
	if [ "$mode" = auth ] && ! grep -q 'event=auth .*dkim=pass(d=auth.bench.test).*dmarc=pass' "$d.log"; then
		echo "E: the checks did not pass (see $d.log)"
		FAIL=1
	fi
}

scenario_E() {
	local sess run zone
	mkdir -p "$W/e"
	/usr/bin/python3 "$ROOT/bench/signed_msg.py" "$W/e" "$E_SIZE" ||
		die "cannot make the signed message (python3-dkim)"
	mapfile -t zone <"$W/e/zone.args"
	E_DNS_PORT=$(free_port)
	/usr/sbin/dnsmasq --no-daemon --no-resolv --no-hosts --bind-interfaces \
		--listen-address=127.0.0.1 --port="$E_DNS_PORT" --pid-file= --user=root \
		--group=root --local-ttl="${E_DNS_TTL:-300}" "${zone[@]}" >"$W/dnsmasq-e.log" 2>&1 &
	E_DNS_PID=$!
	sleep 0.3
	tern_init "$W/tern-e"
	for sess in $E_SESSIONS; do
		for run in $(seq "$RUNS"); do
			run_pair "$run" "run_E_tern plain $sess $run" "run_E_tern auth $sess $run"
		done
	done
	kill "$E_DNS_PID" 2>/dev/null
	wait "$E_DNS_PID" 2>/dev/null
}

# ---- main -------------------------------------------------------------------------

if [ "${1:-}" = --table ]; then
	[ -r "${2:-}" ] || die "usage: bench/run.sh --table RESULTS"
	RES=$2
	table
	exit 0
fi
# C: ternd and loadgen each hold C_CONNS descriptors
[ "$NOFILE" -lt $((C_CONNS + 4096)) ] && NOFILE=$((C_CONNS + 4096))
bench_setup
RES=$W/results
: >"$RES"
LGLOG=$W/loadgen.log

machine_line "$W" | tee "$W/machine"
echo "config runs=$RUNS scenarios=\"$SCENARIOS\" a_sizes=\"$A_SIZES\" a_sessions=\"$A_SESSIONS\" a_seconds=$A_SECONDS b_sessions=\"$B_SESSIONS\" b_seconds=$B_SECONDS c_conns=$C_CONNS d_messages=$D_MESSAGES pipelining=$PIPELINING tls=${TLS:-off} mailboxes=$BENCH_USERS settle_kib=$SETTLE_KIB settle_timeout=$SETTLE_TIMEOUT dir=$W"

TPORT=$(free_port)
PPORT=$(free_port)
SINK_PORT=$(free_port)
SINKOUT=$W/sink.out
SINK_RCPTS=$(seq -f 'r%g@sink.test' -s, 1 10)

[ "${LIMIT:-1}" = 0 ] || limit_run
case " $SCENARIOS " in *" B "* | *" D "* | *" J "* | *" L "*) dns_start ;; esac
case " $SCENARIOS " in *" A "* | *" B "* | *" G "* | *" H "* | *" I "* | *" J "* | *" K "* | *" L "*)
	pf_setup "$PPORT" "$SINK_PORT"
	pf_start ;;
esac
for sc in $SCENARIOS; do
	log "bench: scenario $sc"
	"scenario_$sc"
done
[ -n "${PF:-}" ] && pf_stop
table | tee "$W/table"
if [ "$FAIL" != 0 ]; then
	echo "FAIL: see the LOSS/REFUSED/NOTLS/DANEFAIL lines above"
	exit 1
fi
echo "zero loss: every acknowledged message arrived"
