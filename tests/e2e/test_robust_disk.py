"""A full disk (issue: tern survives the internet).  ternd refuses MAIL with
452 4.3.1 while free space is under SIZE + 16 MiB; a message whose write
fails at the end of data gets 452 4.3.1, never a 250, and leaves nothing
behind (no file in new/, nothing in tmp/, nothing in the queue); once
space is back, mail is accepted again without a restart.

The mail and queue directories of the state_dir live on a small file
system of their own, mounted in a private mount namespace that ternd
runs in (so nothing is mounted on the host):
  - as a normal user (the suite's first pass): a 64 MiB tmpfs, mounted in
    an unprivileged user namespace (`unshare -r -m`); ternd runs in a
    nested user namespace under its own uid (so it is not "root");
  - as root (the pass of the tests marked "root"): a 64 MiB ext4 image,
    loop-mounted (mkfs.ext4 -m 0), whose ENOSPC and fsync behave like a
    real disk's.
The test reaches that file system through /proc/PID/root of ternd.
A ballast file fills it.  The SIZE check is also run on the real file
system of the state_dir, where nothing needs mounting.
"""
import errno
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import RUN_AS, check, free_port, maildir_files

FS_SIZE = 64 << 20
THRESHOLD = 16 << 20            # ternd's margin: server_disk_ok()
MSG = b"Subject: full disk\r\n\r\n" + (b"y" * 78 + b"\r\n") * 13000  # ~1 MiB

# Runs in the new mount namespace, then execs ternd: mounts the small file
# system on $mnt and bind-mounts its mail/ and queue/ over the state_dir's
# (the users' Maildirs made by `tern user add` copied over first).
SCRIPT = r'''set -e
mnt=$1 state=$2 owner=$3; shift 3
case $MOUNT_KIND in
tmpfs) mount -t tmpfs -o size=$FS_BYTES tern-robust "$mnt" ;;
ext4)  mount -t ext4 -o loop "$FS_IMAGE" "$mnt" ;;
esac
mkdir -p "$mnt/mail" "$mnt/queue" "$state/mail" "$state/queue"
cp -a "$state/mail/." "$mnt/mail/"
chown -R "$owner" "$mnt"
mount --bind "$mnt/mail" "$state/mail"
mount --bind "$mnt/queue" "$state/queue"
exec "$@"
'''


class SmallFs:
    """ternd on a small file system; .fs, .mail, .queue: paths seen
    through /proc/PID/root."""

    def __init__(self, ternd, workdir, kind, overrides=None):
        self.kind = kind
        self.workdir = Path(workdir)
        self.mnt = self.workdir / "mnt"
        self.mnt.mkdir()
        env = {"MOUNT_KIND": kind, "FS_BYTES": str(FS_SIZE)}
        if kind == "ext4":
            img = self.workdir / "fs.img"
            with open(img, "wb") as f:
                f.truncate(FS_SIZE)
            subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", str(img)], check=True,
                           capture_output=True)
            env["FS_IMAGE"] = str(img)
        t = ternd(overrides, start=False)
        plain_argv = t.argv
        if os.geteuid() == 0:
            owner = f"{RUN_AS[1]}:{RUN_AS[2]}"
            wrap = ["unshare", "-m"]
            inner = []
        else:
            owner = "0:0"   # uid 0 of the namespace is the caller's uid
            wrap = ["unshare", "-r", "-m"]
            inner = ["unshare", f"--map-user={os.getuid()}",
                     f"--map-group={os.getgid()}", "--"]
        t.argv = lambda: (["env"] + [f"{k}={v}" for k, v in env.items()] + wrap +
                          ["sh", "-c", SCRIPT, "sh", str(self.mnt), str(t.state_dir),
                           owner] + inner + plain_argv())
        self.t = t.start()
        root = Path(f"/proc/{t.proc.pid}/root")
        self.fs = root / str(self.mnt).lstrip("/")
        self.mail = root / str(t.state_dir / "mail").lstrip("/")
        self.queue = root / str(t.state_dir / "queue").lstrip("/")
        self.ballast = self.fs / "ballast"
        assert os.statvfs(self.fs).f_blocks * os.statvfs(self.fs).f_frsize \
            <= FS_SIZE, "the small file system is not the one seen"
        assert self.free() > THRESHOLD + (8 << 20), \
            f"only {self.free()} octets free on a fresh {FS_SIZE} file system"

    def free(self):
        st = os.statvfs(self.fs)
        return st.f_bavail * st.f_frsize

    def fill_to(self, left):
        """Grow the ballast until at most `left` octets are free (0: until
        ENOSPC)."""
        chunk = b"\0" * (1 << 20)
        with open(self.ballast, "ab") as f:
            while self.free() > left:
                n = min(len(chunk), max(4096, self.free() - left))
                try:
                    f.write(chunk[:n])
                    f.flush()
                except OSError as e:
                    assert e.errno == errno.ENOSPC, e
                    if n == 4096:
                        break
                    chunk = chunk[:4096]
            try:
                os.fsync(f.fileno())
            except OSError:
                pass
        return self.free()

    def empty(self):
        self.ballast.unlink()

    def files(self, address, sub="new"):
        local, domain = address.split("@")
        d = self.mail / domain / local / sub
        return sorted(d.iterdir()) if d.is_dir() else []

    def all_tmp(self):
        return [p for p in self.mail.glob("*/*/tmp/*")]

    def queue_files(self):
        return {sub: sorted(p.name for p in (self.queue / sub).iterdir())
                for sub in ("data", "env", "tmp") if (self.queue / sub).is_dir()}


def userns_available():
    r = subprocess.run(["unshare", "-r", "-m", "true"], capture_output=True)
    return r.returncode == 0, r.stderr.decode(errors="replace").strip()


@pytest.fixture
def small_fs(ternd, world_tmp):
    def make(kind, overrides=None):
        if kind == "tmpfs" and os.geteuid() != 0:
            ok, err = userns_available()
            if not ok:
                pytest.fail("unprivileged user namespaces are needed to mount a "
                            f"tmpfs without root (unshare -r -m: {err}); enable "
                            "them (sysctl kernel.unprivileged_userns_clone=1 / "
                            "user.max_user_namespaces) or run as root",
                            pytrace=False)
        if kind == "ext4":
            if shutil.which("mkfs.ext4") is None:
                pytest.fail("mkfs.ext4 not found: install e2fsprogs", pytrace=False)
        return SmallFs(ternd, world_tmp, kind, overrides)
    return make


def transaction(c, rcpt, mail_from="claire@example.com"):
    c.expect(f"MAIL FROM:<{mail_from}>", 250)
    c.expect(f"RCPT TO:<{rcpt}>", 250)
    c.expect("DATA", 354)


# -- MAIL is refused below the threshold, accepted again once space is back ---------

def check_refuse_then_recover(s):
    t = s.t
    pid = t.proc.pid
    rcpt = "ben@example.org"
    with t.client() as c:
        c.ehlo()
        transaction(c, rcpt)
        c.send(b"Subject: before\r\n\r\nx\r\n.\r\n")
        check(c.reply(), 250, "2.0.0", "before the ballast")
        left = s.fill_to(THRESHOLD // 2)
        print(f"{s.kind}: {left} octets free after the ballast")
        assert left < THRESHOLD
        # the session that was open goes on; its MAIL is refused
        c.expect("MAIL FROM:<claire@example.com>", 452, "4.3.1")
        c.expect("MAIL FROM:<claire@example.com> SIZE=1000", 452, "4.3.1")
        c.expect("NOOP", 250)
    with t.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<claire@example.com>", 452, "4.3.1")
        c.expect("RCPT TO:<ben@example.org>", 503, "5.5.1")
    assert len(s.files(rcpt)) == 1
    s.empty()
    assert s.free() > THRESHOLD
    with t.client() as c:
        c.ehlo()
        transaction(c, rcpt)
        c.send(b"Subject: after\r\n\r\nspace is back\r\n.\r\n")
        check(c.reply(), 250, "2.0.0", "after the ballast went")
    assert t.proc.poll() is None and t.proc.pid == pid, "ternd restarted"
    files = s.files(rcpt)
    assert len(files) == 2, files
    assert any(f.read_bytes().endswith(b"Subject: after\r\n\r\nspace is back\r\n")
               for f in files)


@pytest.mark.parametrize("kind", ["tmpfs", pytest.param("ext4", marks=pytest.mark.root)])
def test_full_disk_refuses_mail_then_recovers(small_fs, kind):
    check_refuse_then_recover(small_fs(kind))


# -- the write fails at the end of data: 452, nothing half-stored --------------------

def check_eom_write_fails(s, rcpt, stored, msg=MSG):
    """stored(): the names the message would leave behind, for `rcpt`."""
    t = s.t
    before = stored()
    with t.client(timeout=30) as c:
        c.ehlo()
        transaction(c, rcpt)
        left = s.fill_to(0)           # the disk fills while the client sends
        print(f"{s.kind}: {left} octets free, sending {len(msg)}")
        c.send(msg + b".\r\n")
        r = c.reply()
        assert r.code in (451, 452) and r.code != 250, r
        assert (r.code, r.enh) == (452, "4.3.1"), r
        assert stored() == before, f"something was stored: {stored()} (was {before})"
        assert s.all_tmp() == [], s.all_tmp()
        qf = s.queue_files()
        assert qf.get("data", []) == qf.get("tmp", []) == [], qf
        # the session is usable, and with space back the same message goes in
        s.empty()
        transaction(c, rcpt)
        c.send(msg + b".\r\n")
        check(c.reply(), 250, "2.0.0", "once the ballast is gone")
    assert len(stored()) == len(before) + 1
    assert s.all_tmp() == []


@pytest.mark.parametrize("kind", ["tmpfs", pytest.param("ext4", marks=pytest.mark.root)])
def test_eom_write_fails_maildir(small_fs, kind):
    s = small_fs(kind)
    rcpt = "ben@example.org"
    check_eom_write_fails(s, rcpt, lambda: s.files(rcpt))
    [f] = s.files(rcpt)
    assert f.read_bytes().endswith(MSG), "stored message is not whole"


@pytest.mark.parametrize("kind", ["tmpfs", pytest.param("ext4", marks=pytest.mark.root)])
def test_eom_write_fails_queue(small_fs, kind):
    """A relayed message goes to the queue: the commit fails whole."""
    dead = free_port()      # the smarthost: nobody listens, the mail stays queued
    s = small_fs(kind, {"relay.networks": "127.0.0.0/8",
                        "relay.smarthost": f"127.0.0.1:{dead}"})
    check_eom_write_fails(s, "someone@example.com",
                          lambda: s.queue_files().get("env", []))
    [mid] = s.queue_files()["env"]
    data = (s.queue / "data" / mid).read_bytes()
    assert data.endswith(MSG), "queued content is not whole"


@pytest.mark.parametrize("kind", ["tmpfs", pytest.param("ext4", marks=pytest.mark.root)])
def test_eom_big_message_spill_fails(small_fs, kind):
    """Content past 1 MiB is kept in a scratch file while it arrives; when
    the disk fills under it: 452 4.3.1 at the end of data, nothing left."""
    s = small_fs(kind)
    rcpt = "ben@example.org"
    check_eom_write_fails(s, rcpt, lambda: s.files(rcpt), msg=MSG * 3)
    [f] = s.files(rcpt)
    assert f.read_bytes().endswith(MSG * 3), "stored message is not whole"
    assert not [n for n in os.listdir(s.t.state_dir) if n.startswith(".content-")]


# -- SIZE against the real file system of the state_dir (no mount needed) -----------

def test_size_over_free_space_refused_at_mail(ternd):
    t = ternd({"limits.message_size": "1024g"})      # the largest allowed
    st = os.statvfs(t.state_dir)
    free = st.f_bavail * st.f_frsize
    # more than is free, by far (other writers cannot make it fit)
    size = min(free + (1 << 30), 1 << 40)
    assert free < size, f"{free} octets free: more than SIZE can say here"
    with t.client() as c:
        c.ehlo()
        c.expect(f"MAIL FROM:<claire@example.com> SIZE={size}", 452, "4.3.1")
        c.expect("MAIL FROM:<claire@example.com> SIZE=1000", 250)
        c.expect("RCPT TO:<ben@example.org>", 250)
        c.expect("DATA", 354)
        c.send(b"Subject: fits\r\n\r\nx\r\n.\r\n")
        check(c.reply(), 250)
    assert len(maildir_files(t.state_dir, "ben@example.org")) == 1
