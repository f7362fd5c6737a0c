#!/bin/sh
# Install the Debian packages tern's build and tests need, when missing.
# As root on Debian 12 it runs apt-get; otherwise it prints the exact
# command to run and fails.
set -eu
PKGS="build-essential pkg-config clang libclang-rt-14-dev clang-format cppcheck
libevent-dev libssl-dev libc-ares-dev libsqlite3-dev libpq-dev libinih-dev libcrypt-dev zlib1g-dev
python3 python3-pytest python3-pytest-xdist swaks libnet-ssleay-perl libauthen-sasl-perl msmtp curl dovecot-imapd dovecot-lmtpd dnsmasq-base openssl sqlite3
procps iproute2 postfix postgresql systemd
python3-dkim python3-spf python3-dnspython opendkim-tools opendmarc publicsuffix python3-authres
postsrsd python3-srs python3-milter rspamd opendkim postfwd
prometheus
unbound nsd ldnsutils
pebble
libcurl4-openssl-dev
debhelper dpkg-dev fakeroot lintian adduser"
missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "tern needs these Debian packages:$missing" >&2
	echo "run: sudo apt-get install -y$missing" >&2
	exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
# Dovecot, Postfix, PostgreSQL (the pgsql: tables), unbound and nsd (the DANE
# tests' resolver and signed zones) are test peers that
# the tests start privately on loopback ports: keep their packages from starting system-wide daemons
# (listening on all interfaces) while they install.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made_policy=1
fi
trap '[ "$made_policy" = 1 ] && rm -f "$policy"' EXIT
apt-get update -q >/dev/null || true
# -o Dpkg::Options: never stop on a config prompt; services are not started
# by the packages (tests start their own Dovecot, dnsmasq and PostgreSQL
# on loopback).
apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confdef \
	-o Dpkg::Options::=--force-confold $missing >/dev/null
