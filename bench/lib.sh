# bench/lib.sh: shared by bench/run.sh and bench/profile.sh (sourced, bash).
#
# Starts and stops the pieces of a benchmark on loopback: ternd (as an
# unprivileged user), a private Postfix instance, smtp-sink and dnsmasq.
# Every process started here is remembered by its pid and stopped by its
# pid (bench_cleanup); the system's own Postfix is never touched: the
# private instance has its own config, queue and data directories, and
# is addressed with "postfix -c DIR" only.

ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
B=${B:-$ROOT/build}
BENCH_USER=${BENCH_USER:-terntest}	# ternd runs as this user
BENCH_USERS=${BENCH_USERS:-10}		# mailboxes tbench1..N, round robin
NOFILE=${NOFILE:-20000}			# ulimit -n for ternd and loadgen
# what we started and is still running, by pid (see bench_cleanup)
TERND_PID= TERND_RUNUSER= SINK_PID= DNS_PID= IDLE_PID= RSPAMD_PID= RSPAMD_DNS_PID=
NSD_PID= UNBOUND_PID= # bench/dnssec.sh

log() { printf '%s\n' "$*" >&2; }
die() { log "bench: $*"; exit 1; }

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# A free TCP and UDP port outside the ephemeral range (32768-60999 here),
# so no outgoing connection of another program can be sitting on it.
free_port() {
	local p i
	for i in $(seq 200); do
		p=$((20000 + RANDOM % 12000))
		if [ -z "$(ss -Htuan "( sport = :$p or dport = :$p )" 2>/dev/null)" ]; then
			echo "$p"
			return
		fi
	done
	die "no free port"
}

# key=value from a loadgen line: kv LINE KEY
kv() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
# utime + stime of one process, in clock ticks
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
# a process and every child it reaped, plus its live children: a whole
# Postfix instance (smtpd, cleanup, local... come and go under master)
tree_ticks() {
	local m=$1 t c
	t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 + $14 + $15 }' "/proc/$m/stat")
	for c in $(ps -o pid= --ppid "$m"); do
		t=$((t + $(awk '{ sub(/^.*\) /, ""); print $12 + $13 + $14 + $15 }' "/proc/$c/stat" 2>/dev/null || echo 0)))
	done
	echo "$t"
}
HZ=$(getconf CLK_TCK)

# ---- the order and the disk between runs ---------------------------------------

# The writeback of one run's files (and on ext4 the conversion of its
# unwritten extents) goes on after the run and slows the next one.  So
# before every timed run: sync, then wait until Dirty + Writeback in
# /proc/meminfo are below SETTLE_KIB (other programs on a shared machine
# write too, hence a small threshold rather than zero), for at most
# SETTLE_TIMEOUT seconds.  Sets SETTLE_S (the time it took, sync
# included), SETTLE_DIRTY (KiB left) and SETTLE_TIMEDOUT (0 or 1); the
# result lines keep them.
MEMINFO=${MEMINFO:-/proc/meminfo}
SETTLE_KIB=${SETTLE_KIB:-8192}
SETTLE_TIMEOUT=${SETTLE_TIMEOUT:-60}
SETTLE_S=- SETTLE_DIRTY=- SETTLE_TIMEDOUT=0
dirty_kib() { awk '/^(Dirty|Writeback):/ { n += $2 } END { print n + 0 }' "$MEMINFO"; }
settle_disk() {
	local t0 d
	t0=$(now)
	SETTLE_TIMEDOUT=0
	sync
	while d=$(dirty_kib) && [ "$d" -ge "$SETTLE_KIB" ]; do
		if awk -v e="$(elapsed "$t0" "$(now)")" -v t="$SETTLE_TIMEOUT" 'BEGIN { exit !(e >= t) }'; then
			SETTLE_TIMEDOUT=1
			break
		fi
		sleep 0.1
	done
	SETTLE_S=$(elapsed "$t0" "$(now)")
	SETTLE_DIRTY=$d
}

# run_pair RUN "FIRST ..." "SECOND ...": the two halves of a comparison
# (tern and Postfix, without and with a feature), each a command line
# run after settle_disk.  Odd runs go first-second, even runs
# second-first, so neither half always runs on a disk still busy with
# the other's files.  PAIR_POS is 1 or 2: the place the half ran in.
PAIR_POS=-
run_pair() {
	local run=$1 a=$2 b=$3
	if [ $((run % 2)) = 0 ]; then
		a=$3 b=$2
	fi
	settle_disk
	PAIR_POS=1
	$a
	settle_disk
	PAIR_POS=2
	$b
}

# stop_pids VAR...: SIGTERM to the processes whose pids the variables
# hold, then waits for each and empties its variable
stop_pids() {
	local v
	for v in "$@"; do
		[ -n "${!v:-}" ] && kill -TERM "${!v}" 2>/dev/null
	done
	for v in "$@"; do
		[ -n "${!v:-}" ] && wait "${!v}" 2>/dev/null
		printf -v "$v" '%s' ''
	done
}

count_files() { find "$@" -maxdepth 1 -type f 2>/dev/null | wc -l; }

# tern_queued DIR: how many messages the running ternd of state DIR has
# queued, asked over its control socket (the queue is a log, not one file
# per message, so counting files says nothing); "-" when it cannot say
tern_queued() {
	runuser -u "$BENCH_USER" -- "$W/bin/tern" -o state_dir="$1" queue list --json 2>>"$LGLOG" |
		/usr/bin/python3 -c 'import json, sys; print(len(json.load(sys.stdin)["messages"]))' 2>/dev/null ||
		echo -
}

machine_line() {
	local model disk fsync steal
	model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
	disk=$(df -P "$1" | awk 'NR == 2 { print $1 " " $2 "K-blocks mounted-on " $6 }')
	disk="$disk $(awk -v m="$(df -P "$1" | awk 'NR == 2 { print $6 }')" '$2 == m { print $3 "," $4; exit }' /proc/mounts)"
	# ext4 without a journal (no jbd2 entry) allocates inodes much more
	# slowly after many deletions (ext4 recently_deleted()): say which
	local dev
	dev=$(df -P "$1" | awk 'NR == 2 { sub("^/dev/", "", $1); print $1 }')
	case "$disk" in
	*ext4*) if ls /proc/fs/jbd2/ 2>/dev/null | grep -q "^$dev-"; then disk="$disk journal"; else disk="$disk NO-journal"; fi ;;
	esac
	# 500 synchronous 4 KiB writes: what one fsync costs here
	fsync=$(dd if=/dev/zero of="$1/.fsync-probe" bs=4k count=500 oflag=dsync 2>&1 |
		awk '/copied/ { for (i = 1; i <= NF; i++) if ($i == "s,") print $(i - 1) }')
	rm -f "$1/.fsync-probe"
	# CPU stolen by the hypervisor and the load of others, over 2 s
	local st0 st1
	st0=$(awk '/^cpu / { print $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
	sleep 2
	st1=$(awk '/^cpu / { print $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
	steal=$(echo "$st0 $st1" | awk '{ d = $4 - $2; printf "%.0f", (d > 0) ? ($3 - $1) * 100 / d : 0 }')
	echo "machine nproc=$(nproc) cpu=\"$model\" kernel=$(uname -r) mem=$(awk '/MemTotal/ { printf "%.0fGiB", $2 / 1048576 }' /proc/meminfo) disk=\"$disk\" dsync_write_us=$(awk -v s="$fsync" 'BEGIN { printf "%.0f", s * 1e6 / 500 }') loadavg=\"$(cut -d' ' -f1-3 /proc/loadavg)\" steal_pct=$steal postfix=$(postconf -h mail_version 2>/dev/null) tern=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$( [ -n "$(git -C "$ROOT" status --porcelain -- src 2>/dev/null)" ] && echo +dirty)"
}

# ---- setup ------------------------------------------------------------------

bench_setup() {
	[ "$(id -u)" = 0 ] || die "run as root (it makes users and a private Postfix instance)"
	ulimit -n "$NOFILE" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
	if ! command -v postfix >/dev/null || ! command -v smtp-sink >/dev/null; then
		log "bench: installing postfix"
		echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postfix >/dev/null
	fi
	command -v dnsmasq >/dev/null || [ -x /usr/sbin/dnsmasq ] ||
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends dnsmasq-base >/dev/null
	id "$BENCH_USER" >/dev/null 2>&1 || useradd -r -M -d /nonexistent -s /usr/sbin/nologin "$BENCH_USER"
	W=$(mktemp -d "${BENCH_TMP:-/var/tmp}/tern-bench.XXXXXX")
	if [ "${BENCH_FS:-}" = ext4 ]; then
		# a fresh ext4 with its journal (mkfs defaults), on a loop
		# device with direct I/O over a sparse file beside $W: for
		# comparing with a file system that is not the machine's own
		truncate -s "${BENCH_FS_SIZE:-16G}" "$W.img"
		LOOPDEV=$(losetup --direct-io=on -f --show "$W.img") || die "losetup failed"
		mkfs.ext4 -q -F "$LOOPDEV" >/dev/null || die "mkfs.ext4 failed"
		mount "$LOOPDEV" "$W" || die "mount $LOOPDEV failed"
	fi
	chmod 755 "$W"
	mkdir -p "$W/bin" "$W/home"
	# copies: a rebuild in the tree during the run changes nothing here
	# (and one in progress now is waited for: a binary being linked is
	# empty or not yet an ELF file)
	local i f ok
	for i in $(seq 60); do
		cp "$B/ternd" "$B/tern" "$W/bin/" 2>/dev/null
		ok=1
		for f in ternd tern; do
			[ "$(head -c4 "$W/bin/$f" 2>/dev/null | tr -d '\0' | tail -c3)" = ELF ] || ok=0
		done
		[ "$ok" = 1 ] && "$W/bin/tern" -o state_dir="$W/probe" config >/dev/null 2>&1 && break
		ok=0
		sleep 2
	done
	[ "$ok" = 1 ] || die "no usable $B/ternd and $B/tern (run make)"
	rm -rf "$W/probe"
	mkdir -p "$B/bench"
	cc -std=c17 -O2 -g -Wall -Wextra -o "$B/bench/loadgen" "$ROOT/bench/loadgen.c" -lssl -lcrypto -lpthread ||
		die "cannot build loadgen"
	cp "$B/bench/loadgen" "$W/bin/"
	LOADGEN=$W/bin/loadgen
	RCPTS=""
	for i in $(seq "$BENCH_USERS"); do
		id "tbench$i" >/dev/null 2>&1 ||
			useradd -M -d "$W/home/tbench$i" -s /usr/sbin/nologin "tbench$i"
		usermod -d "$W/home/tbench$i" "tbench$i" 2>/dev/null
		mkdir -p "$W/home/tbench$i"
		chown "tbench$i:" "$W/home/tbench$i"
		RCPTS="$RCPTS${RCPTS:+,}tbench$i@bench.test"
	done
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
}

bench_cleanup() {
	local p
	[ -n "${PF:-}" ] && [ -f "$PF/conf/main.cf" ] && postfix -c "$PF/conf" stop >/dev/null 2>&1
	for p in $TERND_PID $SINK_PID $DNS_PID $IDLE_PID $RSPAMD_PID $RSPAMD_DNS_PID $NSD_PID \
		$UNBOUND_PID; do
		kill "$p" 2>/dev/null
	done
	for p in $TERND_RUNUSER $SINK_PID $DNS_PID $IDLE_PID $RSPAMD_PID $RSPAMD_DNS_PID $NSD_PID \
		$UNBOUND_PID; do
		wait "$p" 2>/dev/null
	done
	if [ "${KEEP:-0}" = 1 ]; then
		log "bench: kept $W${LOOPDEV:+ (mounted from $LOOPDEV)}"
	elif [ -n "${W:-}" ]; then
		if [ -n "${LOOPDEV:-}" ]; then
			umount "$W" && losetup -d "$LOOPDEV" && rm -f "$W.img"
			rmdir "$W"
		else
			rm -rf "$W"
		fi
	fi
}

# ---- tern -------------------------------------------------------------------

# tern_init DIR: a state directory with the bench users
tern_init() {
	local d=$1 i
	mkdir -p "$d"
	chown "$BENCH_USER:" "$d"
	chmod 700 "$d"
	for i in $(seq "$BENCH_USERS"); do
		runuser -u "$BENCH_USER" -- "$W/bin/tern" -o state_dir="$d" -o domains=bench.test \
			user add "tbench$i@bench.test" </dev/null >/dev/null 2>&1 ||
			die "tern user add failed"
	done
}

# tern_start DIR PORT [-o ...]: starts ternd, waits for event=ready.
# Sets TERND_PID (ternd itself) and TERND_RUNUSER (the runuser to wait for)
# and TERND_READY_S (seconds from exec to the ready line).
tern_start() {
	local d=$1 port=$2 t0 i
	shift 2
	: >"$d.log"
	rm -f "$d/ternd.pid"
	TERND_PID=
	t0=$(now)
	# runuser's PAM session resets the soft limit of open files to 1024:
	# raise it again in the shell that becomes ternd
	runuser -u "$BENCH_USER" -- sh -c 'ulimit -n "$1"; echo $$ >"$2"; shift 2; exec "$@"' sh \
		"$NOFILE" "$d/ternd.pid" "$W/bin/ternd" -o state_dir="$d" -o domains=bench.test \
		-o hostname=mx.bench.test -o listen.smtp="127.0.0.1:$port" -o listen.submission=off \
		-o limits.connections_per_ip=20000 -o limits.connections=20000 \
		-o spf.check=no -o dkim.verify=no -o dmarc.check=no "$@" \
		>>"$d.log" 2>&1 </dev/null &
	TERND_RUNUSER=$!
	for i in $(seq 60000); do
		grep -q 'event=ready' "$d.log" 2>/dev/null && break
		[ -z "$TERND_PID" ] && [ -s "$d/ternd.pid" ] && TERND_PID=$(cat "$d/ternd.pid")
		kill -0 "$TERND_RUNUSER" 2>/dev/null || { tail -5 "$d.log" >&2; die "ternd did not start"; }
		sleep 0.005
	done
	TERND_READY_S=$(elapsed "$t0" "$(now)")
	TERND_PID=$(cat "$d/ternd.pid")
}

tern_stop() {
	[ -n "${TERND_PID:-}" ] || return 0
	kill -TERM "$TERND_PID" 2>/dev/null
	wait "$TERND_RUNUSER" 2>/dev/null
	TERND_PID= TERND_RUNUSER=
}

# ---- Postfix: a private instance --------------------------------------------

# pf_setup PORT SINKPORT: config, queue and data directories under $W/postfix;
# everything else as Debian ships it (fsync of queue files, local(8)
# delivery into ~/Maildir/), except: no chroot (the private queue
# directory is not prepared as a chroot jail), logging to a file
# (no syslog daemon here), loopback only, and a relayhost for scenario B.
pf_setup() {
	local port=$1 sinkport=$2
	PF=$W/postfix
	PF_PORT=$port
	mkdir -p "$PF/conf" "$PF/queue" "$PF/data"
	chown postfix "$PF/data"
	awk -v port="$port" '
		/^smtp[ \t]+inet/ { print "127.0.0.1:" port " inet n - n - - smtpd"; next }
		/^[a-z]/ && NF >= 8 { $5 = "n"; print; next }
		{ print }' /usr/share/postfix/master.cf.dist >"$PF/conf/master.cf"
	cat >"$PF/conf/main.cf" <<EOF
# private benchmark instance made by tern's bench/run.sh
compatibility_level = 3.6
queue_directory = $PF/queue
data_directory = $PF/data
myhostname = pf.bench.test
mydomain = bench.test
myorigin = bench.test
mydestination = bench.test
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks reject_unauth_destination
home_mailbox = Maildir/
alias_maps =
alias_database =
biff = no
append_dot_mydomain = no
mailbox_size_limit = 0
relayhost = [127.0.0.1]:$sinkport
maillog_file = $PF/maillog
maillog_file_prefixes = $PF
EOF
	postfix -c "$PF/conf" check >/dev/null 2>&1 || true
}

# pf_start [RESOLV_CONF]: with RESOLV_CONF, the instance runs in a mount
# namespace of its own where /etc/resolv.conf is that file (bind-mounted
# there, so the system's file is not touched): Postfix asks the resolver
# of resolv.conf, on port 53 only, and scenario L gives it the bench's
pf_start() {
	local i
	# postfix(1) reports to syslog only when stderr is not a terminal
	if [ -n "${1:-}" ]; then
		unshare -m --propagation private sh -c \
			'mount --bind "$1" /etc/resolv.conf && exec script -qc "$2" /dev/null' sh \
			"$1" "postfix -c '$PF/conf' start" >"$PF/start.out" 2>&1 || true
	else
		script -qc "postfix -c '$PF/conf' start" /dev/null >"$PF/start.out" 2>&1 || true
	fi
	for i in $(seq 500); do
		[ -n "$(ss -Hltn "sport = :$PF_PORT")" ] && break
		sleep 0.02
	done
	[ -n "$(ss -Hltn "sport = :$PF_PORT")" ] || { cat "$PF/start.out" >&2; tail "$PF/maillog" >&2; die "postfix did not start"; }
	PF_MASTER=$(sed -n '1s/ //gp' "$PF/queue/pid/master.pid")
}

pf_stop() {
	postfix -c "$PF/conf" stop >/dev/null 2>&1 || true
	# postfix stop waits for master; its listener too (a pf_start may follow)
	local i
	for i in $(seq 500); do
		[ -z "$(ss -Hltn "sport = :$PF_PORT")" ] && return
		sleep 0.02
	done
}

pf_queue_count() { find "$PF/queue/incoming" "$PF/queue/active" "$PF/queue/deferred" -type f 2>/dev/null | wc -l; }

pf_maildirs() {
	local i
	for i in $(seq "$BENCH_USERS"); do
		printf -- '--watch-dir %s ' "$W/home/tbench$i/Maildir/new"
	done
}

pf_clean_maildirs() {
	local i
	for i in $(seq "$BENCH_USERS"); do
		rm -rf "$W/home/tbench$i/Maildir"
	done
}

tern_clean_maildirs() {
	find "$1/mail/bench.test" -path '*/new/*' -type f -delete 2>/dev/null || true
}

tern_maildirs() {
	local d=$1 i
	for i in $(seq "$BENCH_USERS"); do
		printf -- '--watch-dir %s ' "$d/mail/bench.test/tbench$i/new"
	done
}

# ---- sink and DNS -----------------------------------------------------------

# sink_start PORT OUT: smtp-sink counting messages into OUT
sink_start() {
	: >"$2"
	smtp-sink -c -u nobody -m 1024 "127.0.0.1:$1" 1024 >"$2" 2>&1 &
	SINK_PID=$!
	local i
	for i in $(seq 250); do
		[ -n "$(ss -Hltn "sport = :$1")" ] && return
		sleep 0.02
	done
	die "smtp-sink did not start"
}

sink_stop() {
	[ -n "${SINK_PID:-}" ] || return 0
	kill "$SINK_PID" 2>/dev/null
	wait "$SINK_PID" 2>/dev/null
	SINK_PID=
}

sink_count() { tr '\r' '\n' <"$1" | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -1; }

dns_start() {
	DNS_PORT=$(free_port)
	/usr/sbin/dnsmasq --no-daemon --no-resolv --no-hosts --bind-interfaces \
		--listen-address=127.0.0.1 --port="$DNS_PORT" --pid-file= --user=root --group=root \
		--mx-host=sink.test,mx.sink.test,10 --host-record=mx.sink.test,127.0.0.1 \
		>"$W/dnsmasq.log" 2>&1 &
	DNS_PID=$!
	sleep 0.3
}

# ---- scenarios G to J: TLS, the counting sink with TLS, Dovecot LMTP --------

# bench_cert DIR: a self-signed RSA 2048 certificate (CN mx.bench.test)
# in DIR/cert.pem and DIR/key.pem, readable by ternd's user (Postfix
# reads them as root)
bench_cert() {
	mkdir -p "$1"
	openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=mx.bench.test" \
		-addext "subjectAltName=DNS:mx.bench.test,DNS:pf.bench.test,DNS:mx.sink.test" \
		-keyout "$1/key.pem" -out "$1/cert.pem" >/dev/null 2>&1 || die "openssl req failed"
	chown "$BENCH_USER:" "$1/key.pem" "$1/cert.pem"
	chmod 600 "$1/key.pem"
	chmod 644 "$1/cert.pem"
}

# pf_set KEY=VALUE...: change the private Postfix's main.cf and reload it
# (postconf -X KEY... removes keys: pf_unset)
pf_set() {
	postconf -c "$PF/conf" -e "$@" || die "postconf -e $* failed"
	postfix -c "$PF/conf" reload >/dev/null 2>&1 || die "postfix reload failed"
	sleep 1 # the daemons that had the old settings finish
}
pf_unset() {
	postconf -c "$PF/conf" -X "$@"
	postfix -c "$PF/conf" reload >/dev/null 2>&1
	sleep 1
}

# tls_sink_start PORT OUT CERTDIR: loadgen's counting sink with STARTTLS
# (smtp-sink has none); OUT gets "mesg=N rcpts=N conns=N tls=N resumed=N"
# (resumed: handshakes that resumed the client's session).  Its pid
# is SINK_PID, so sink_stop and bench_cleanup stop it.
tls_sink_start() {
	"$LOADGEN" --sink "$1" --sink-out "$2" --cert "$3/cert.pem" --key "$3/key.pem" \
		2>>"$W/sink.err" &
	SINK_PID=$!
	local i
	for i in $(seq 250); do
		[ -n "$(ss -Hltn "sport = :$1")" ] && return
		sleep 0.02
	done
	die "loadgen --sink did not start"
}

# dovecot_start DIR: a private Dovecot (config, state, sockets and mail
# under DIR) speaking LMTP only, on the unix socket DIR/lmtp.sock (mode
# 0666: ternd's user and Postfix's lmtp client both connect), with the
# bench users tbench1..N@bench.test in a passwd-file, their mail stored as
# ternd's user in Maildirs DIR/mail/bench.test/tbenchN (new/).  The
# system's own Dovecot, if any, is not touched (own base_dir and
# instance_name).
DOVECOT_PID=
dovecot_start() {
	local d=$1 i uid gid
	[ -x /usr/sbin/dovecot ] && [ -x /usr/lib/dovecot/lmtp ] ||
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
			dovecot-core dovecot-lmtpd >/dev/null
	uid=$(id -u "$BENCH_USER") gid=$(id -g "$BENCH_USER")
	mkdir -p "$d/mail" "$d/home"
	chmod 755 "$d"
	chown "$uid:$gid" "$d/mail" "$d/home"
	: >"$d/users"
	for i in $(seq "$BENCH_USERS"); do
		echo "tbench$i@bench.test:{PLAIN}unused:$uid:$gid::$d/home::" >>"$d/users"
	done
	chmod 644 "$d/users"
	cat >"$d/dovecot.conf" <<EOC
base_dir = $d/run
state_dir = $d/state
log_path = $d/dovecot.log
instance_name = tern-bench-lmtp
hostname = lmtp.bench.test
protocols = lmtp
listen = 127.0.0.1
ssl = no
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:$d/mail/%d/%n
lmtp_save_to_detail_mailbox = no
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $d/users
}
userdb {
  driver = passwd-file
  args = username_format=%u $d/users
}
service lmtp {
  unix_listener $d/lmtp.sock {
    mode = 0666
  }
}
EOC
	/usr/sbin/dovecot -F -c "$d/dovecot.conf" >"$d/dovecot.out" 2>&1 </dev/null &
	DOVECOT_PID=$!
	trap 'dovecot_stop; bench_cleanup' EXIT
	for i in $(seq 250); do
		[ -S "$d/lmtp.sock" ] && return
		kill -0 "$DOVECOT_PID" 2>/dev/null || break
		sleep 0.02
	done
	cat "$d/dovecot.out" "$d/dovecot.log" >&2 2>/dev/null
	die "dovecot did not start"
}

dovecot_stop() {
	[ -n "${DOVECOT_PID:-}" ] || return 0
	kill -TERM "$DOVECOT_PID" 2>/dev/null
	wait "$DOVECOT_PID" 2>/dev/null
	DOVECOT_PID=
	trap bench_cleanup EXIT
}

dovecot_maildirs() {
	local i
	for i in $(seq "$BENCH_USERS"); do
		printf -- '--watch-dir %s ' "$1/mail/bench.test/tbench$i/new"
	done
}

dovecot_clean_maildirs() {
	find "$1/mail/bench.test" -path '*/new/*' -type f -delete 2>/dev/null || true
}
