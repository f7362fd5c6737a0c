"""Upgrade from the previous release (issue 18 item 3; docs/formats.md).

ternd and tern of the previous release (git tag v0.1.0) are built from
this repository's history in a temporary directory (once per machine and
uid: the commit never changes, so a later run reuses the binaries).  The
old ternd queues 1,000 messages for a next hop that is down, and the old
tern makes a users database (users, a password, an alias), a DKIM key,
and the old ternd its other state (greylist.db, dmarc.db, screen.cache,
srs.key).  The old ternd stops; this build's ternd starts on the same
state directory; the next hop comes up (a second ternd that takes mail for
remote.example); every message must arrive exactly once, counted by
Message-ID at the receiver, and the old state must read back unchanged.

Run once with the old release's default queue (the log) and once with its
queue of files (queue.log = no), which the new ternd takes over.  The
figures (queued before, delivered after, duplicates, time to take over,
build time) are printed for the issue's closing note.
"""
import base64
import fcntl
import hashlib
import os
import re
import sqlite3
import stat
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

import conftest
import qlog
from conftest import REPO, free_port, require, wait_for, world_tmpdir
from test_formats import rewrite_log_envelopes

PREV_TAG = "v0.1.0"
PREV_COMMIT = "827d304d0b2012ba9c7e148f1957a540bc3bca6d"
N = 1000
SENDERS = 4                     # parallel sessions queueing the messages
RCPT = "rcpt@remote.example"
USER, ALIAS, PASSWORD = "ben@example.org", "team@example.org", "Old p4ss"


def git(*args):
    # the repository may belong to another uid than the test user's
    return subprocess.run(["git", "-c", "safe.directory=*", "-C", str(REPO)]
                          + list(args), capture_output=True, timeout=120)


def own_dir(path):
    """path as a directory only this uid may write: made if missing; an
    existing one of another owner or writable by others is refused (its
    binaries would be run)."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or \
            st.st_mode & 0o022:
        pytest.fail(f"{path}: not a directory of uid {os.geteuid()} closed "
                    f"to others: remove it", pytrace=False)
    return Path(path)


@pytest.fixture(scope="module")
def prev_bins():
    """{"ternd": Path, "tern": Path, "build_s": float or None (reused)}."""
    if git("cat-file", "-e", PREV_COMMIT + "^{commit}").returncode != 0:
        pytest.fail(f"the previous release {PREV_TAG} (commit "
                    f"{PREV_COMMIT[:7]}) is not in the repository at {REPO} "
                    f"(a shallow clone?): 'git fetch --tags --unshallow' and "
                    f"run again", pytrace=False)
    root = own_dir(Path(tempfile.gettempdir()) /
                   f"tern-prev-{os.geteuid()}-{PREV_COMMIT[:12]}")
    src = root / "src"
    bins = {"ternd": src / "build" / "ternd", "tern": src / "build" / "tern"}
    with open(root / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)    # one build at a time (xdist)
        if (root / "done").exists():
            bins["build_s"] = None
            return bins
        subprocess.run(["rm", "-rf", str(src)], check=True)
        src.mkdir()
        t0 = time.monotonic()
        arch = git("archive", "--format=tar", PREV_COMMIT)
        assert arch.returncode == 0, arch.stderr
        subprocess.run(["tar", "-x", "-C", str(src)], input=arch.stdout,
                       check=True)
        # -O0: a third of the time of -O2 and fast enough to queue 1,000
        # messages; no -Werror: a newer compiler may warn on old code
        r = subprocess.run(["nice", "-n", "10", "make", "-j2", "OPT=-O0 -g0",
                            "WERROR=", "build/ternd", "build/tern"],
                           cwd=str(src), capture_output=True, timeout=1200)
        assert r.returncode == 0, \
            f"building {PREV_TAG} failed:\n{r.stdout[-2000:]}{r.stderr[-4000:]}"
        bins["build_s"] = time.monotonic() - t0
        (root / "done").write_text(f"{PREV_COMMIT}\n")
    print(f"{PREV_TAG} built in {bins['build_s']:.1f} s")
    return bins


def send_many(port, first, count, out):
    """count messages in one session (MAIL, RCPT, DATA each), each with
    its own Message-ID; the ids acknowledged go into out."""
    with conftest.SMTPClient(port, timeout=30) as c:
        c.ehlo()
        for i in range(first, first + count):
            mid = f"<upgrade-{i}@client.test>"
            c.expect("MAIL FROM:<claire@example.net>", 250)
            c.expect(f"RCPT TO:<{RCPT}>", 250)
            c.expect("DATA", 354)
            c.send(f"Message-ID: {mid}\r\nSubject: upgrade {i}\r\n\r\n"
                   f"body {i}\r\n.\r\n".encode())
            rep = c.reply()
            assert rep.code == 250, rep
            out.append(mid)
        c.expect("QUIT", 221)


def queue_n(t, n=N):
    acked, threads, errors = [], [], []
    per = n // SENDERS

    def run(k):
        try:
            send_many(t.port, k * per, per, acked)
        except Exception as e:          # reported below, not lost in a thread
            errors.append(repr(e))
    for k in range(SENDERS):
        th = threading.Thread(target=run, args=(k,))
        th.start()
        threads.append(th)
    for th in threads:
        th.join()
    assert not errors, errors
    assert len(acked) == n
    return acked


def old_state(t):
    """What the old tern and ternd keep besides the queue."""
    s = Path(t.state_dir)
    out = {
        "users": t.tern("user", "list").stdout,
        "aliases": t.tern("alias", "list").stdout,
        "dkim": t.tern("dkim", "list").stdout,
        "srs.key": hashlib.sha256((s / "srs.key").read_bytes()).hexdigest(),
    }
    db = sqlite3.connect(str(s / "tern.db"))
    try:
        out["password"] = db.execute("SELECT password FROM users WHERE "
                                     "address = ?", (USER,)).fetchone()[0]
    finally:
        db.close()
    return out


def kill_takeover(t, after=50):
    """This build's take-over of the old queue of files, each append
    slowed by ternd-fault and SIGKILL once `after` have begun: some
    messages in the log, all still in the old files."""
    fault_bin = conftest.BUILD / "ternd-fault"
    require(fault_bin, "make build/ternd-fault (part of make check)")
    d = world_tmpdir("tern-upgrade-")
    fault = d / "fault"
    fault.write_text("logspool:write:-20\n")
    fault.chmod(0o644)
    env = dict(os.environ, TERN_FAULT_FILE=str(fault))
    env.pop("TERN_CONFIG", None)
    log = d / "killed.log"
    pat = "event=fault_injected module=logspool step=write "
    with open(log, "wb") as lf:
        p = subprocess.Popen([str(fault_bin)] + t.argv()[1:], env=env,
                             stdin=subprocess.DEVNULL, stdout=lf, stderr=lf,
                             cwd=str(t.state_dir))
        try:
            wait_for(lambda: log.read_text(errors="replace").count(pat)
                     >= after, f"{after} slowed appends", timeout=60)
        finally:
            p.kill()
            p.wait()
    text = log.read_text(errors="replace")
    assert "event=queue_imported" not in text, text[-2000:]
    subprocess.run(["rm", "-rf", str(d)], check=True)


def message_ids(b):
    ids = []
    for p in b.files(RCPT):
        m = re.search(rb"^Message-ID: (<[^>\r\n]*>)", p.read_bytes(),
                      re.M | re.I)
        assert m, p
        ids.append(m.group(1).decode())
    return ids


@pytest.mark.parametrize("queue", ["log", "files"])
def test_upgrade_from_previous_release(ternd, prev_bins, monkeypatch, queue):
    hop, sub = free_port(), free_port()
    over = {"relay.networks": "127.0.0.1/32",
            "relay.smarthost": f"127.0.0.1:{hop}",
            # one attempt each while the hop is down, then nothing until
            # the flush below (1,000 retries a second would measure CPU)
            "queue.retry_first": "3600", "queue.retry_max": "3600",
            "greylist.enable": "yes", "dmarc.reports": "yes",
            "screen.greet_pause": "1s",
            "listen.submission": f"127.0.0.1:{sub}"}
    if queue == "files":
        over["queue.log"] = "no"

    # ---- the previous release ----
    monkeypatch.setattr(conftest, "TERND", prev_bins["ternd"])
    monkeypatch.setattr(conftest, "TERN", prev_bins["tern"])
    t = ternd(over, users=(USER,), start=False)
    t.sub_port = sub
    t.set_password(USER, PASSWORD)
    t.tern("alias", "add", ALIAS, USER)
    t.tern("dkim", "keygen", "example.org", "--selector", "old",
           "--algorithm", "ed25519")
    t.start()
    t0 = time.monotonic()
    acked = queue_n(t)
    queue_s = time.monotonic() - t0
    wait_for(lambda: t.log().count("event=deferred") >= N,
             f"{N} first attempts deferred", timeout=120)
    assert t.stop() == 0
    before = old_state(t)
    q = Path(t.state_dir) / "queue"
    if queue == "files":
        assert len(list((q / "env").iterdir())) == N
    else:
        assert (q / "seg").is_dir()
    old_log_len = len(t.log())

    # ---- this build, on the same state ----
    monkeypatch.undo()
    assert conftest.TERND != prev_bins["ternd"]
    t.overrides.pop("queue.log", None)          # the default: the log
    if queue == "files":
        kill_takeover(t)                        # a crash mid-migration
    t0 = time.monotonic()
    t.start()
    takeover_s = time.monotonic() - t0
    new_log = t.log()[old_log_len:]
    m = re.search(r"event=queue_loaded messages=(\d+) ms=(\d+)", new_log)
    assert m and int(m.group(1)) == N, new_log[-3000:]
    if queue == "files":
        # the killed take-over is finished: what it had appended is found
        # in the log (already), the rest imported, nothing twice
        im = re.search(r"event=queue_imported messages=(\d+) already=(\d+) "
                       r"corrupt=(\d+)", new_log)
        assert im, new_log[-3000:]
        imported, already, corrupt = map(int, im.groups())
        assert corrupt == 0 and already > 0 and imported + already == N, \
            im.group(0)
        assert not (q / "env").exists()
    # nothing of the old state refused, ignored or quarantined
    bad = re.findall(r"\]: err .*|.*action=ignored.*|.*queue_corrupt.*",
                     new_log)
    assert not bad, "\n".join(bad[:20])
    assert old_state(t) == before
    # the old password (its hash in the old tern.db) still logs in, over
    # the TLS pair the old ternd made in STATE/tls
    with t.sub_client() as c:
        token = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
        c.expect(f"AUTH PLAIN {token}", 235)
    assert len(t.queue_list()) == N

    # ---- the next hop comes up; every message exactly once ----
    b = ternd({"domains": "remote.example",
               "listen.smtp": f"127.0.0.1:{hop}"}, users=(RCPT,),
              start=False, state="hop")
    b.port = hop
    b.start()
    t0 = time.monotonic()
    t.tern("queue", "flush")
    wait_for(lambda: len(b.files(RCPT)) >= N, f"{N} messages at the hop",
             timeout=300)
    wait_for(lambda: t.queue_list() == [], "the queue empty", timeout=60)
    deliver_s = time.monotonic() - t0
    time.sleep(1)
    got = message_ids(b)
    dups = len(got) - len(set(got))
    missing = sorted(set(acked) - set(got))
    print(f"\nupgrade {PREV_TAG} -> this build, {queue} queue: queued "
          f"before {len(acked)} (in {queue_s:.1f} s), delivered after "
          f"{len(set(got))}, duplicates {dups}, missing {len(missing)}; "
          f"take-over: ternd ready in {takeover_s:.2f} s, queue loaded in "
          f"{m.group(2)} ms"
          + (f" after a take-over killed midway ({im.group(0)})"
             if queue == "files" else "")
          + f"; delivered in {deliver_s:.1f} s; build "
          + (f"{prev_bins['build_s']:.1f} s" if prev_bins["build_s"]
             else "reused"))
    assert not missing, missing[:10]
    assert dups == 0, sorted(x for x in set(got) if got.count(x) > 1)[:10]
    assert sorted(got) == sorted(acked)


def test_downgrade_to_previous_release(ternd, prev_bins, monkeypatch):
    """The other way (docs/formats.md, "Downgrades"): state made by this
    build, then v0.1.0 started on it.  This build writes every format at
    a version v0.1.0 reads, so v0.1.0 starts, finds the users and the
    queue, and delivers each message once.  An envelope of a version
    above 2 (what a release with REQUIRETLS writes for the messages that
    ask for it) is what v0.1.0 cannot know: it takes it for damage and
    moves it to corrupt/ (kept, not delivered): the hazard formats.md
    tells the admin about, seen here so the page stays true."""
    n = 20
    hop, sub = free_port(), free_port()
    over = {"relay.networks": "127.0.0.1/32",
            "relay.smarthost": f"127.0.0.1:{hop}",
            "queue.retry_first": "3600", "queue.retry_max": "3600"}
    t = ternd(over, users=(USER,))
    acked = queue_n(t, n)
    wait_for(lambda: t.log().count("event=deferred") >= n,
             f"{n} first attempts deferred", timeout=60)
    assert t.stop() == 0
    # one message as a newer release would keep it
    q = Path(t.state_dir) / "queue"
    newer_id = sorted(qlog.live(q))[0]
    rewrite_log_envelopes(q, newer_id, b"V 1\n", b"V 3\n")

    monkeypatch.setattr(conftest, "TERND", prev_bins["ternd"])
    monkeypatch.setattr(conftest, "TERN", prev_bins["tern"])
    old_log_len = len(t.log())
    t.start()
    old_log = t.log()[old_log_len:]
    assert USER.encode() in t.tern("user", "list").stdout
    assert re.search(rf"id={newer_id} event=queue_corrupt reason=\"line 1: "
                     r"unsupported version 3\"", old_log), old_log[-3000:]
    assert (q / "corrupt" / f"{newer_id}.env").read_bytes().startswith(
        b"V 3\n")
    assert len(t.queue_list()) == n - 1
    b = ternd({"domains": "remote.example",
               "listen.smtp": f"127.0.0.1:{hop}"}, users=(RCPT,),
              start=False, state="hop")
    b.port = hop
    b.start()
    t.tern("queue", "flush")
    wait_for(lambda: len(b.files(RCPT)) >= n - 1,
             f"{n - 1} messages at the hop", timeout=120)
    wait_for(lambda: t.queue_list() == [], "the queue empty", timeout=60)
    time.sleep(1)
    got = message_ids(b)
    assert len(got) == len(set(got)) == n - 1
    print(f"\ndowngrade to {PREV_TAG}: {n} queued by this build, "
          f"{len(got)} delivered once by {PREV_TAG}, 1 (envelope version 3) "
          f"moved to corrupt/ by {PREV_TAG}")
