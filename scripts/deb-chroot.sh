#!/bin/sh
# scripts/deb-chroot.sh DEB_DIR: tern-sendmail really replacing Postfix,
# in a throw-away Debian 12 chroot made with debootstrap (never on this
# machine: make check's test_deb.py only simulates it with apt-get -s,
# since the suite needs its Postfix).  Not part of make check: it
# downloads a minimal Debian (about 40 MB) and Postfix and tern's
# libraries from the mirror, and takes minutes.  As root.  Steps:
#   Postfix installed; tern installed beside it (Postfix stays);
#   tern-sendmail installed (Postfix removed, /usr/sbin/sendmail is tern);
#   Postfix installed again (tern-sendmail removed, tern stays).
# Prints the time of each step; removes the chroot at the end.
set -eu
dir=$(cd "${1:?usage: $0 DEB_DIR (where make deb put the packages)}" && pwd)
mirror=${MIRROR:-http://deb.debian.org/debian}
root=$(mktemp -d /tmp/tern-chroot.XXXXXX)
cleanup() {
	for m in proc; do umount "$root/$m" 2>/dev/null || true; done
	rm -rf "$root"
}
trap cleanup EXIT
t0=$(date +%s)
step() { echo "== $(($(date +%s) - t0)) s: $*"; }
in_root() { chroot "$root" env DEBIAN_FRONTEND=noninteractive "$@"; }

step "debootstrap --variant=minbase bookworm"
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 ||
	{ tail -20 "$root.log"; exit 1; }
rm -f "$root.log"
mount -t proc proc "$root/proc"
# no daemon starts inside the chroot
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
cp "$dir"/tern_*.deb "$dir"/tern-sendmail_*.deb "$root/tmp/"
echo "postfix postfix/main_mailer_type select Local only" | in_root debconf-set-selections

step "apt-get install postfix"
in_root apt-get install -y -q --no-install-recommends postfix >/dev/null
step "apt-get install ./tern (beside Postfix)"
in_root sh -c 'apt-get install -y -q --no-install-recommends /tmp/tern_*.deb'
in_root dpkg-query -W postfix tern
step "apt-get install ./tern-sendmail (replaces Postfix)"
in_root sh -c 'apt-get install -y -q --no-install-recommends /tmp/tern-sendmail_*.deb'
if in_root dpkg-query -W -f='${Status}\n' postfix 2>/dev/null | grep -q ' installed'; then
	echo "FAIL: postfix still installed"; exit 1
fi
[ "$(readlink -f "$root/usr/sbin/sendmail")" = "$root/usr/bin/tern" ] ||
	{ echo "FAIL: /usr/sbin/sendmail is not tern"; exit 1; }
in_root newaliases
step "apt-get install postfix (replaces tern-sendmail, keeps tern)"
in_root apt-get install -y -q --no-install-recommends postfix >/dev/null
in_root dpkg-query -W -f='${Package} ${Status}\n' tern postfix tern-sendmail 2>&1 || true
if in_root dpkg-query -W -f='${Status}\n' tern-sendmail 2>/dev/null | grep -q ' installed$'; then
	echo "FAIL: tern-sendmail still installed"; exit 1
fi
step "done: all steps passed"
