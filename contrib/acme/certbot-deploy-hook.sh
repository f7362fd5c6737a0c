#!/bin/sh
# certbot --deploy-hook for tern: certbot runs it after each successful
# issuance or renewal with RENEWED_LINEAGE set to the lineage's live
# directory (/etc/letsencrypt/live/NAME).  Install it as
#   /etc/letsencrypt/renewal-hooks/deploy/tern
# or pass it: certbot certonly ... --deploy-hook /path/to/certbot-deploy-hook.sh
# TERN_CERT, TERN_KEY, TERN_GROUP, TERN_RELOAD: see tern-install-cert.sh.
set -eu
: "${RENEWED_LINEAGE:?run by certbot as a deploy hook (RENEWED_LINEAGE unset)}"
here=$(dirname "$(readlink -f "$0")")
exec "$here/tern-install-cert.sh" "$RENEWED_LINEAGE/fullchain.pem" \
	"$RENEWED_LINEAGE/privkey.pem"
