#!/bin/sh
# make run: start ternd in the foreground on the embedded defaults, with a
# user to send to, and say how to send a first message and where it lands.
set -eu
B=${1:-build}
STATE=${STATE:-$(pwd)/var}
AS_ROOT=0
if [ "$(id -u)" = 0 ] && [ -z "${TERN_USER:-}" ]; then
	# ternd refuses to keep root; as root, run it as the nobody-like user
	AS_ROOT=1
	id tern >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin tern
	# ternd opens its state only after dropping to tern: a checkout under
	# /root (mode 0700) is out of its reach, so the state goes elsewhere
	if ! runuser -u tern -- test -x "$(dirname "$STATE")"; then
		STATE=/var/lib/tern-run
	fi
fi
mkdir -p "$STATE"
chmod 700 "$STATE"
"$B/tern" -o state_dir="$STATE" user add ben@localhost </dev/null >/dev/null 2>&1 || true
cat <<TXT
ternd is starting on the embedded defaults (state in $STATE).
Send a first message from another terminal:

  swaks --server 127.0.0.1:2525 --from claire@example.net --to ben@localhost

It lands in $STATE/mail/localhost/ben/new/ (a Maildir).
Add users with: $B/tern -o state_dir=$STATE user add NAME@localhost
Stop with Ctrl-C.
TXT
if [ "$AS_ROOT" = 1 ]; then
	chown -R tern: "$STATE"
	exec "$B/ternd" -o state_dir="$STATE" -o user=tern
fi
exec "$B/ternd" -o state_dir="$STATE"
