#!/bin/sh
# tern-install-cert.sh CERT KEY: put a certificate chain and its key where
# tern.conf's tls.cert and tls.key point, then make ternd load them.
# Shared by the certbot and uacme hooks beside it (see README.md).
#
#   TERN_CERT    tls.cert's path        (default /etc/tern/certs/fullchain.pem)
#   TERN_KEY     tls.key's path         (default /etc/tern/certs/privkey.pem)
#   TERN_GROUP   group that may read the key: ternd's user's (default tern)
#   TERN_RELOAD  command that reloads ternd (default: systemctl reload tern)
#
# Each file is copied beside its target and renamed over it, key first, so
# ternd never reads half a file; a SIGHUP that finds a new key beside the
# old certificate keeps the old pair (docs/tls-auth.md, "Renewal: SIGHUP")
# and the reload at the end loads both.
set -eu
[ $# -eq 2 ] || { echo "usage: $0 CERT KEY" >&2; exit 2; }
src_cert=$1
src_key=$2
cert=${TERN_CERT:-/etc/tern/certs/fullchain.pem}
key=${TERN_KEY:-/etc/tern/certs/privkey.pem}
group=${TERN_GROUP:-tern}
reload=${TERN_RELOAD:-systemctl reload tern}

# the pair must belong together before anything is replaced
pub_cert=$(openssl x509 -in "$src_cert" -noout -pubkey)
pub_key=$(openssl pkey -in "$src_key" -pubout)
if [ "$pub_cert" != "$pub_key" ]; then
	echo "$0: $src_key is not the key of $src_cert; nothing changed" >&2
	exit 1
fi

put() { # put SRC DST MODE
	tmp="$2.tern-new"
	install -m "$3" -g "$group" "$1" "$tmp"
	sync "$tmp" 2>/dev/null || sync
	mv -f "$tmp" "$2"
}
mkdir -p "$(dirname "$cert")" "$(dirname "$key")"
put "$src_key" "$key" 0640
put "$src_cert" "$cert" 0644
$reload
