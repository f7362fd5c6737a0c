#!/bin/sh
# uacme for tern, from cron (daily):
#   uacme-deploy.sh DOMAIN [ALTNAME...]
# runs `uacme issue` (which renews only when the certificate is due, and
# exits 1 when there was nothing to do) with uacme's own HTTP-01 hook, and
# when a new certificate came out installs it for ternd and reloads it.
#   UACME_DIR    uacme's configuration directory (default /etc/ssl/uacme)
#   UACME_HOOK   the challenge hook (default /usr/share/uacme/uacme.sh,
#                which writes under /var/www/.well-known/acme-challenge)
# TERN_CERT, TERN_KEY, TERN_GROUP, TERN_RELOAD: see tern-install-cert.sh.
set -eu
[ $# -ge 1 ] || { echo "usage: $0 DOMAIN [ALTNAME...]" >&2; exit 2; }
dir=${UACME_DIR:-/etc/ssl/uacme}
hook=${UACME_HOOK:-/usr/share/uacme/uacme.sh}
rc=0
uacme -c "$dir" -h "$hook" issue "$@" || rc=$?
case $rc in
0) ;;				# issued or renewed: install below
1) exit 0 ;;			# not due yet
*) echo "$0: uacme failed ($rc)" >&2; exit "$rc" ;;
esac
here=$(dirname "$(readlink -f "$0")")
exec "$here/tern-install-cert.sh" "$dir/$1/cert.pem" "$dir/private/$1/key.pem"
