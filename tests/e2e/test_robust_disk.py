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
import threading
import time
from pathlib import Path

import pytest

from conftest import RUN_AS, SLOW, check, free_port, maildir_files
import qlog

FS_SIZE = 64 << 20
THRESHOLD = 16 << 20            # ternd's margin: server_disk_ok()
MSG = b"Subject: full disk\r\n\r\n" + (b"y" * 78 + b"\r\n") * 13000  # ~1 MiB

# Runs in the new mount namespace, then execs ternd: mounts the small file
# system on $mnt and bind-mounts its mail/ and queue/ over the state_dir's
# (the users' Maildirs made by `tern user add` copied over first); with
# WHOLE_STATE=1 the whole state_dir goes there instead (its scratch files
# for content past 1 MiB included), with all it holds copied over.
SCRIPT = r'''set -e
mnt=$1 state=$2 owner=$3; shift 3
case $MOUNT_KIND in
tmpfs) mount -t tmpfs -o size=$FS_BYTES tern-robust "$mnt" ;;
ext4)  mount -t ext4 -o loop "$FS_IMAGE" "$mnt" ;;
esac
if [ "${WHOLE_STATE:-0}" = 1 ]; then
  cp -a "$state/." "$mnt/"
  chmod --reference="$state" "$mnt"
  chown -R "$owner" "$mnt"
  mount --bind "$mnt" "$state"
  cd "$state"
  exec "$@"
fi
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

    def __init__(self, ternd, workdir, kind, overrides=None, whole_state=False):
        self.kind = kind
        self.workdir = Path(workdir)
        self.mnt = self.workdir / "mnt"
        self.mnt.mkdir()
        env = {"MOUNT_KIND": kind, "FS_BYTES": str(FS_SIZE),
               "WHOLE_STATE": "1" if whole_state else "0"}
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
        out = {sub: sorted(p.name for p in (self.queue / sub).iterdir())
               for sub in ("data", "env", "tmp") if (self.queue / sub).is_dir()}
        log = qlog.live(self.queue)     # queue.log: the ids queued in the log
        if log:
            out["env"] = sorted(out.get("env", []) + list(log))
        return out

    def queued_data(self, qid):
        """The content of a queued message, from data/ or the log."""
        log = qlog.live(self.queue)
        if qid in log:
            return log[qid]["data"]
        return (self.queue / "data" / qid).read_bytes()


def userns_available():
    r = subprocess.run(["unshare", "-r", "-m", "true"], capture_output=True)
    return r.returncode == 0, r.stderr.decode(errors="replace").strip()


@pytest.fixture
def small_fs(ternd, world_tmp):
    def make(kind, overrides=None, whole_state=False):
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
        return SmallFs(ternd, world_tmp, kind, overrides, whole_state)
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
    data = s.queued_data(mid)
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


# -- in-flight content: budgets and free space while it arrives (issue 11 item 8) ---

LINE = b"z" * 78 + b"\r\n"


def content(tag, size):
    """A message of about `size` octets whose every line names `tag`."""
    head = b"Subject: " + tag + b"\r\n\r\n"
    return head + (tag + b" " + LINE[len(tag) + 1:]) * max(1, (size - len(head)) // len(LINE))


def open_data(t, rcpt="ben@example.org", timeout=60):
    c = t.client(timeout=timeout)
    c.ehlo()
    transaction(c, rcpt)
    return c


def one_refused(replies):
    """Of two racing messages exactly one finds no room: 452 4.3.1; the
    other is accepted."""
    codes = sorted((r.code, r.enh) for r in replies)
    assert codes == [(250, "2.0.0"), (452, "4.3.1")], replies


def test_inflight_memory_budget(ternd):
    """limits.inflight_memory bounds the content held in memory by all
    sessions together: two unfinished 700 KiB messages do not fit in 1 MiB;
    one is refused with 452 4.3.1 at its end of data, the other is stored;
    once both are over, the budget is whole again."""
    t = ternd({"limits.inflight_memory": "1m"})
    a, b = open_data(t), open_data(t)
    ma, mb = content(b"mem-a", 700 << 10), content(b"mem-b", 700 << 10)
    a.send(ma)
    b.send(mb)
    a.send(b".\r\n")
    b.send(b".\r\n")
    one_refused([a.reply(), b.reply()])
    a.close()
    b.close()
    with open_data(t) as c:
        c.send(content(b"mem-c", 700 << 10) + b".\r\n")
        check(c.reply(), 250, "2.0.0", "after the others let go of their memory")
    assert len(t.messages("ben@example.org")) == 2


def test_inflight_scratch_budget_data_and_bdat(ternd):
    """limits.inflight_scratch bounds the scratch files (content past 1 MiB)
    of all sessions: with 3 MiB, two 2 MiB messages do not both fit.  With
    DATA the refusal comes at the end of data; with BDAT at the end of the
    chunk that found no room, and the transaction is over (503 after)."""
    t = ternd({"limits.inflight_scratch": "3m"})
    # DATA against DATA
    a, b = open_data(t), open_data(t)
    a.send(content(b"scr-a", 2 << 20))
    b.send(content(b"scr-b", 2 << 20))
    a.send(b".\r\n")
    b.send(b".\r\n")
    one_refused([a.reply(), b.reply()])
    a.close()
    b.close()
    # an unfinished DATA holds 2 MiB of scratch; a BDAT chunk then has no room
    a, b = open_data(t), t.client(timeout=60)
    a.send(content(b"scr-d", 2 << 20))
    time.sleep(1.0 * SLOW)      # let ternd take it in
    b.ehlo()
    b.expect("MAIL FROM:<claire@example.com>", 250)
    b.expect("RCPT TO:<ben@example.org>", 250)
    chunk = content(b"scr-e", 2 << 20)
    b.send(b"BDAT %d\r\n" % len(chunk) + chunk)
    r = b.reply()
    check(r, 452, "4.3.1", "the BDAT chunk past the scratch budget")
    b.send(b"BDAT 3 LAST\r\nx\r\n")
    check(b.reply(), 503, "5.5.1", "the transaction ended with the 452")
    a.send(b".\r\n")
    check(a.reply(), 250, "2.0.0", "the DATA that held the scratch")
    # both over: 2 MiB fit again, through BDAT this time
    b.expect("MAIL FROM:<claire@example.com>", 250)
    b.expect("RCPT TO:<ben@example.org>", 250)
    b.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk)
    check(b.reply(), 250, "2.0.0", "BDAT once the budget is back")
    a.close()
    b.close()
    assert len(t.messages("ben@example.org")) == 3


class FreeWatch(threading.Thread):
    """The lowest free space of a file system while it runs."""

    def __init__(self, s):
        super().__init__(daemon=True)
        self.s, self.low, self.stop = s, s.free(), False

    def run(self):
        while not self.stop:
            self.low = min(self.low, self.s.free())
            time.sleep(0.005)


def test_slow_large_sessions_cannot_fill_the_disk(small_fs):
    """The whole state_dir (scratch files too) on a 64 MiB tmpfs; eight
    sessions each send 8 MiB, in 64 KiB pieces taken in turn, more than the
    file system holds.  Free space never falls far under ternd's 16 MiB
    reserve: the messages that find no room get 452 4.3.1 at their end of
    data, the others are stored whole; ternd keeps serving, the scratch
    space comes back, and a normal message is accepted after."""
    s = small_fs("tmpfs", {"limits.message_size": "20m"}, whole_state=True)
    t = s.t
    pid = t.proc.pid
    n, size, piece = 8, 8 << 20, 64 << 10
    msgs = [content(b"slow-%d" % i, size) for i in range(n)]
    start_free = s.free()
    watch = FreeWatch(s)
    watch.start()
    clients = [open_data(t, timeout=120) for _ in range(n)]
    try:
        for off in range(0, size + piece, piece):
            for c, m in zip(clients, msgs):
                if off < len(m):
                    c.send(m[off:off + piece])
            time.sleep(0.002)
        for c in clients:
            c.send(b".\r\n")
        replies = [c.reply() for c in clients]
    finally:
        watch.stop = True
        watch.join()
        for c in clients:
            c.close()
    print(f"free: {start_free} at start, {watch.low} at the lowest; replies: "
          f"{[(r.code, r.enh) for r in replies]}")
    for r in replies:
        assert (r.code, r.enh) in ((250, "2.0.0"), (452, "4.3.1")), r
    refused = sum(r.code == 452 for r in replies)
    assert refused >= 1, "more than the file system holds was accepted"
    assert watch.low >= THRESHOLD // 2, \
        f"free space fell to {watch.low}: the disk filled under the content"
    assert t.proc.poll() is None and t.proc.pid == pid, "ternd restarted"
    stored = s.files("ben@example.org")
    assert len(stored) == n - refused, (len(stored), replies)
    for f in stored:
        data = f.read_bytes()
        assert any(data.endswith(m) for m in msgs), f"{f} is not a whole message"
    # every scratch file is gone: what is used is what was stored
    used = start_free - s.free()
    kept = sum(f.stat().st_size for f in stored)
    assert used <= kept + (2 << 20), (used, kept)
    with t.client() as c:
        c.ehlo()
        transaction(c, "ben@example.org")
        c.send(b"Subject: after\r\n\r\nstill serving\r\n.\r\n")
        check(c.reply(), 250, "2.0.0", "a normal message after the crowd")
