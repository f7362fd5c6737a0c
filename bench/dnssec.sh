# bench/dnssec.sh: a DNSSEC-signed zone on loopback for scenario L
# (sourced by bench/run.sh after lib.sh, bash).
#
# The bench's own signed DNS, made with the tools the e2e tests use
# (ldnsutils, nsd, unbound) but not shared with tests/: one zone, signed
# with a fresh ECDSA P-256 key (ldns-keygen, ldns-signzone), served by nsd
# on a free 127.0.0.1 port, and unbound in front of it as the validating
# resolver with that key as its only trust anchor:
#
#   dnssec_zone DIR NAME RECORD...   # write and sign DIR/NAME.zone
#   dnssec_start DIR ADDR PORT       # nsd + unbound answering on ADDR:PORT
#   dnssec_check ADDR PORT NAME TYPE # the answer is validated (AD bit)?
#   dnssec_stop
#
# Unlike the tests' resolver, this unbound keeps the zone's TTLs (300 s):
# the bench measures a resolver as an MTA would have it, caching.  Both
# daemons run in the foreground, remembered by pid (NSD_PID, UNBOUND_PID,
# declared in lib.sh: bench_cleanup stops them too).

DNSSEC_ZONES=() # "name file" of each zone made

# tlsa_spki_sha256 CERT: the hex SHA-256 of CERT's SubjectPublicKeyInfo,
# the data of a TLSA 3 1 1 record (DANE-EE, SPKI, SHA2-256)
tlsa_spki_sha256() {
	openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER |
		openssl dgst -sha256 -r | cut -d' ' -f1
}

# dnssec_zone DIR NAME RECORD...: the zone NAME (SOA, NS and the records,
# zone-file lines relative to NAME) signed with a new key; the key's
# DNSKEY line is appended to DIR/anchors
dnssec_zone() {
	local d=$1 name=$2 key
	shift 2
	mkdir -p "$d"
	chmod 755 "$d"
	{
		printf '$ORIGIN %s.\n$TTL 300\n' "$name"
		printf '@ IN SOA ns.%s. hostmaster.%s. 1 3600 600 86400 300\n' "$name" "$name"
		printf '@ IN NS ns.%s.\nns IN A 127.0.0.1\n' "$name"
		printf '%s\n' "$@"
	} >"$d/$name.zone"
	key=$(cd "$d" && ldns-keygen -a ECDSAP256SHA256 -k "$name") || die "ldns-keygen failed"
	(cd "$d" && ldns-signzone "$name.zone" "$key") || die "ldns-signzone $name failed"
	# the DNSKEY line, without ldns-keygen's trailing comment
	sed 's/;.*//' "$d/$key.key" | grep . >>"$d/anchors"
	DNSSEC_ZONES+=("$name $name.zone.signed")
}

dnssec_nsd_conf() {
	local d=$1 port=$2 z
	printf 'server:\n\tip-address: 127.0.0.1\n\tport: %s\n' "$port"
	printf '\tusername: ""\n\tchroot: ""\n\tzonesdir: "%s"\n\tdatabase: ""\n' "$d"
	printf '\tzonelistfile: "%s/zone.list"\n\txfrdfile: "%s/xfrd.state"\n' "$d" "$d"
	printf '\txfrdir: "%s"\n\tpidfile: "%s/nsd.pid"\n' "$d" "$d"
	printf '\tserver-count: 1\n\tverbosity: 1\n\thide-version: yes\n'
	printf 'remote-control:\n\tcontrol-enable: no\n'
	for z in "${DNSSEC_ZONES[@]}"; do
		set -- $z
		printf 'zone:\n\tname: %s\n\tzonefile: %s\n' "$1" "$2"
	done
}

# unbound validating with DIR/anchors, every zone a stub of nsd; "test."
# is one of the names unbound answers itself by default (RFC 6761): not
# here, the bench's zones are under it
dnssec_unbound_conf() {
	local d=$1 addr=$2 port=$3 nsd_port=$4 z
	printf 'server:\n\tinterface: %s\n\tport: %s\n\tdo-ip6: no\n' "$addr" "$port"
	printf '\tdo-daemonize: no\n\tusername: ""\n\tchroot: ""\n\tdirectory: "%s"\n' "$d"
	printf '\tpidfile: ""\n\tlogfile: "%s/unbound.log"\n\tuse-syslog: no\n' "$d"
	printf '\tverbosity: 1\n\tval-log-level: 2\n\taccess-control: 127.0.0.0/8 allow\n'
	printf '\tdo-not-query-localhost: no\n\ttrust-anchor-file: "%s/anchors"\n' "$d"
	printf '\tmodule-config: "validator iterator"\n\tnum-threads: 1\n\tso-reuseport: no\n'
	printf '\tharden-referral-path: no\n\tqname-minimisation: no\n'
	printf '\tlocal-zone: "test." nodefault\n'
	printf 'remote-control:\n\tcontrol-enable: no\n'
	for z in "${DNSSEC_ZONES[@]}"; do
		set -- $z
		printf 'stub-zone:\n\tname: "%s"\n\tstub-addr: 127.0.0.1@%s\n' "$1" "$nsd_port"
	done
}

# dnssec_check ADDR PORT NAME TYPE: true when the resolver's answer has
# the AD bit (it validated the answer) and rcode NOERROR
dnssec_check() {
	drill -D -p "$2" @"$1" "$3" "$4" 2>/dev/null |
		awk '/rcode: NOERROR/ { ok = 1 } /;; flags:.* ad[ ;]/ { ad = 1 } END { exit !(ok && ad) }'
}

# dnssec_start DIR ADDR PORT: nsd and unbound for the zones made; returns
# once the first zone's SOA comes back validated (at most 10 s)
dnssec_start() {
	local d=$1 addr=$2 port=$3 nsd_port i first
	[ "${#DNSSEC_ZONES[@]}" -gt 0 ] || die "dnssec_start: no zone"
	nsd_port=$(free_port)
	dnssec_nsd_conf "$d" "$nsd_port" >"$d/nsd.conf"
	dnssec_unbound_conf "$d" "$addr" "$port" "$nsd_port" >"$d/unbound.conf"
	/usr/sbin/nsd -d -c "$d/nsd.conf" >"$d/nsd.log" 2>&1 </dev/null &
	NSD_PID=$!
	/usr/sbin/unbound -d -c "$d/unbound.conf" >"$d/unbound.out" 2>&1 </dev/null &
	UNBOUND_PID=$!
	first=${DNSSEC_ZONES[0]%% *}
	for i in $(seq 100); do
		dnssec_check "$addr" "$port" "$first" SOA && return 0
		kill -0 "$NSD_PID" 2>/dev/null && kill -0 "$UNBOUND_PID" 2>/dev/null || break
		sleep 0.1
	done
	tail -5 "$d/nsd.log" "$d/unbound.out" "$d/unbound.log" >&2 2>/dev/null
	dnssec_stop
	die "the signed DNS did not answer validated on $addr:$port"
}

dnssec_stop() { stop_pids UNBOUND_PID NSD_PID; }
