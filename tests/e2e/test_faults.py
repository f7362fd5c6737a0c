"""Fault injection at every durable step (issue: tern survives the
internet, item 3).  build/ternd-fault is ternd with test-only hooks: while
the file named by $TERN_FAULT_FILE holds "MODULE:STEP:ERRNO", that step
fails with that errno.  For each step of a Maildir delivery and of a queue
commit: the client gets 452 4.3.1 (ENOSPC) or 451 4.3.0 (EIO), never a
250; nothing is left half-stored (tmp/ empty, nothing new in new/, no
orphan in the queue); ternd keeps running, and once the fault is gone the
same message is accepted and stored whole.
"""
import errno
import os
from pathlib import Path

import pytest

from conftest import BUILD, check, maildir_files, require, world_tmpdir

TERND_FAULT = BUILD / "ternd-fault"

# Local deliveries are group-committed: files are written without fsync and
# made durable by syncfs() before and after the links into new/ (store.c);
# ternd-fault batches even a single message, so "syncfs" stands for the
# fsync steps here.  The per-message fsync path that a lone message takes
# in production is fault-tested step by step in tests/unit/test_maildir.c.
MAILDIR_STEPS = ["mkdir", "create", "write", "close", "link", "syncfs"]
SPOOL_STEPS = ["create", "write", "fsync", "close", "rename", "fsync_dir"]
# The log's durable steps (src/queue/logspool.c, module "logspool"): the
# record's pwritev and the group commit's fdatasync; then the steps of a
# new segment, reached by "seg_full" (the fault build's way to make the
# next append roll): its create, header write, header fdatasync, the
# fsync of seg/, and the fdatasync of the segment it replaces.
LOG_STEPS = ["write", "fdatasync", "create", "seg_write", "seg_sync",
             "fsync_dir", "roll_sync"]
LOG_ROLL = {"create", "seg_write", "seg_sync", "fsync_dir", "roll_sync"}
# A failed fdatasync of the log is not retried: on Linux a later success
# proves nothing about the failed pages, so the log refuses every write
# (4xx) until ternd restarts (docs/queue.md, "The log").
LOG_STICKY = {"fdatasync", "roll_sync"}
QUEUE_CASES = [("file", s) for s in SPOOL_STEPS] + \
    [("log", s) for s in LOG_STEPS]


@pytest.fixture
def fault_env(monkeypatch):
    require(TERND_FAULT, "make build/ternd-fault (part of make check)")
    d = world_tmpdir("tern-fault-")
    path = Path(d) / "fault"
    monkeypatch.setenv("TERN_FAULT_FILE", str(path))
    return path


def fault_ternd(ternd, overrides=None):
    t = ternd(overrides, start=False)
    t.argv = lambda: [str(TERND_FAULT)] + [
        a for k, v in t.overrides.items() for a in ("-o", f"{k}={v}")]
    return t.start()


def tmp_files(state_dir):
    out = []
    for root, _dirs, files in os.walk(Path(state_dir) / "mail"):
        if root.endswith("/tmp"):
            out += files
    return out


def send(t, rcpt, body=b"Subject: fault\r\n\r\nbody\r\n"):
    c = t.client()
    c.ehlo()
    c.expect("MAIL FROM:<claire@example.net>", 250)
    c.expect(f"RCPT TO:<{rcpt}>", 250)
    c.expect("DATA", 354)
    c.send(body + b".\r\n")
    r = c.reply()
    c.expect("QUIT", 221)
    c.close()
    return r


@pytest.mark.parametrize("step", MAILDIR_STEPS)
@pytest.mark.parametrize("err,code,enh", [(errno.ENOSPC, 452, "4.3.1"),
                                          (errno.EIO, 451, "4.3.0")])
def test_maildir_step_fails_cleanly(ternd, fault_env, step, err, code, enh):
    t = fault_ternd(ternd)
    rcpt = "ben@example.org"
    if step == "mkdir":
        rcpt = "newbie@example.org"      # a mailbox not made yet
        t.tern("user", "add", rcpt)
        # tern user add makes the Maildir; remove it so ternd must
        import shutil
        shutil.rmtree(Path(t.state_dir) / "mail" / "example.org" / "newbie")
    before = len(maildir_files(t.state_dir, rcpt))
    fault_env.write_text(f"maildir:{step}:{err}\n")
    r = send(t, rcpt)
    assert (r.code, r.enh) == (code, enh), r
    assert len(maildir_files(t.state_dir, rcpt)) == before
    assert tmp_files(t.state_dir) == []
    fault_env.unlink()
    r = send(t, rcpt)
    assert r.code == 250, r
    files = maildir_files(t.state_dir, rcpt)
    assert len(files) == before + 1
    assert Path(files[-1]).read_bytes().endswith(b"\r\n\r\nbody\r\n")
    assert tmp_files(t.state_dir) == []


def queue_files(state_dir):
    q = Path(state_dir) / "queue"
    return {d: sorted(os.listdir(q / d)) for d in ("tmp", "data", "env")
            if (q / d).is_dir()}


def queue_on_disk(state_dir):
    """The ids on disk: envelope files (file spool) or the log's live ids,
    read by the tests' own reader (qlog.py)."""
    import qlog
    q = Path(state_dir) / "queue"
    env = sorted(os.listdir(q / "env")) if (q / "env").is_dir() else []
    return sorted(env + list(qlog.live(q)))


def queue_ternd(ternd, backend):
    # relay.networks lets this client relay; the destination never
    # answers (a port nothing listens on), so a committed message stays
    return fault_ternd(ternd, {"relay.networks": "127.0.0.1/32",
                               "relay.port": "9", "dns.servers": "127.0.0.1:9",
                               "queue.retry_first": "3600",
                               "queue.log": "yes" if backend == "log" else "no"})


def queued(t):
    return sorted(m["id"] for m in t.queue_list())


@pytest.mark.parametrize("backend,step", QUEUE_CASES,
                         ids=[f"{b}-{s}" for b, s in QUEUE_CASES])
def test_queue_step_fails_cleanly(ternd, fault_env, backend, step):
    """The same contract on both queues: a step of the commit failing
    with ENOSPC is a 452 4.3.1, never a 250; nothing of the message is
    queued, in ternd's view or on disk; a message queued before is
    untouched; once the fault is gone (the log's failed fdatasync: once
    ternd restarted) the same message is accepted and queued whole."""
    t = queue_ternd(ternd, backend)
    r = send(t, "before@remote.example")
    assert r.code == 250, r
    [first] = queued(t)
    # its first attempt (refused at once: nothing listens on port 9) is
    # done, so no update of it runs into the fault
    from conftest import wait_for
    wait_for(lambda: [m for m in t.queue_list()
                      if m["recipients"][0].get("attempts", 0) > 0 or
                      m["recipients"][0].get("code")],
             "the first attempt of the message queued before", timeout=15)
    if backend == "file":
        lines = [f"spool:{step}:{errno.ENOSPC}"]
    else:
        lines = [f"logspool:{step}:{errno.ENOSPC}"]
        if step in LOG_ROLL:
            lines.append("logspool:seg_full:1")
    fault_env.write_text("\n".join(lines) + "\n")
    r = send(t, "someone@remote.example")
    assert (r.code, r.enh) == (452, "4.3.1"), r
    assert queued(t) == [first]
    if backend == "file":
        q = queue_files(t.state_dir)
        assert q.get("tmp", []) == [] and q.get("data", []) == [first] and \
            q.get("env", []) == [first], q
    elif step not in LOG_STICKY:
        # nothing of it written (or what was, zeroed again)
        assert queue_on_disk(t.state_dir) == [first]
    fault_env.unlink()
    if backend == "log" and step in LOG_STICKY:
        r = send(t, "someone@remote.example")
        assert r.code // 100 == 4, r        # refused until the restart
        t.stop()
        t.start()
    r = send(t, "someone@remote.example",
             b"Subject: fault\r\n\r\nafter the fault\r\n")
    assert r.code == 250, r
    ids = queued(t)
    assert first in ids
    assert queue_on_disk(t.state_dir) == ids
    if backend == "log" and step in LOG_STICKY:
        # the refused message's record may have reached the disk: at
        # worst a duplicate of a message its client was told to retry
        assert len(ids) in (2, 3), ids
    else:
        assert len(ids) == 2, ids
    if backend == "file":
        q = queue_files(t.state_dir)
        assert q["env"] == ids and q["data"] == ids, q
    else:
        import qlog
        log = qlog.live(Path(t.state_dir) / "queue")
        assert any(v["data"].endswith(b"\r\n\r\nafter the fault\r\n")
                   for v in log.values()), log


# -- a bounce whose own store fails is owed, never lost (issue 11 item 10) ---

def bounce_ternd(ternd, peer):
    """claire@example.org (local: her DSNs go into her Maildir) relays to a
    next hop that refuses every recipient with 550; retries come fast."""
    return fault_ternd(ternd, {"relay.networks": "127.0.0.0/8",
                               "relay.smarthost": f"127.0.0.1:{peer.port}",
                               "queue.retry_first": "1", "queue.retry_max": "1"})


def wait_log(t, pattern, timeout=15):
    import re
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if re.search(pattern, t.log()):
            return
        time.sleep(0.1)
    raise AssertionError(f"no {pattern!r} in the log:\n{t.log()[-3000:]}")


def bounce_store_fails(ternd, fault_env, peer):
    """The DSN's Maildir store fails; the original must stay queued with
    its recipient's DSN owed.  Returns the running ternd."""
    t = bounce_ternd(ternd, peer)
    fault_env.write_text(f"maildir:create:{errno.EIO}\n")
    rep = t.send_raw("claire@example.org", ["nobody@remote.example"],
                     b"Subject: bounce me\r\nMessage-ID: <owed@client.test>\r\n\r\nbody\r\n")
    assert rep.code == 250, rep
    from conftest import wait_for
    wait_log(t, r"event=dsn_store_failed")
    # the original is still queued: the bounce exists only as its mark
    [m] = wait_for(lambda: [m for m in t.queue_list()
                            if m["recipients"][0]["state"] == "FAILED"],
                   "the original kept in the queue, its recipient failed",
                   timeout=5)
    [r] = m["recipients"]
    assert r["code"] == 550, m
    assert maildir_files(t.state_dir, "claire@example.org") == []
    wait_log(t, r"event=dsn_owed")
    import qlog
    log = qlog.live(Path(t.state_dir) / "queue")      # queue.log runs
    env = log[m["id"]]["env"].decode() if m["id"] in log else \
        (Path(t.state_dir) / "queue" / "env" / m["id"]).read_text()
    assert env.startswith("V 2\n") and env.rstrip().split("\n")[-2].endswith(" FAILURE"), env
    return t


def check_one_bounce(t):
    import time
    from conftest import dsn_of, field, wait_for
    [p] = wait_for(lambda: maildir_files(t.state_dir, "claire@example.org"),
                   "the owed DSN in claire's Maildir")
    wait_for(lambda: t.queue_list() == [] and t.queue_env_files() == [],
             "the original to leave the queue")
    _, _, [r], _ = dsn_of(p.read_bytes())
    assert field(r, "Final-Recipient").lower() == "rfc822; nobody@remote.example"
    assert field(r, "Action").lower() == "failed" and field(r, "Status") == "5.1.1"
    assert "550" in field(r, "Diagnostic-Code")
    time.sleep(2.5)                     # two more retry intervals: nothing more
    assert len(maildir_files(t.state_dir, "claire@example.org")) == 1


def test_bounce_store_fails_then_recovers(ternd, fault_env):
    from fakepeer import ReplyPeer
    peer = ReplyPeer("550 5.1.1 no such user")
    peer.start()
    try:
        t = bounce_store_fails(ternd, fault_env, peer)
        fault_env.unlink()
        check_one_bounce(t)
        assert peer.rcpts == 1, "the failed recipient is not tried again"
    finally:
        peer.close()


def test_bounce_owed_survives_a_crash(ternd, fault_env):
    from fakepeer import ReplyPeer
    peer = ReplyPeer("550 5.1.1 no such user")
    peer.start()
    try:
        t = bounce_store_fails(ternd, fault_env, peer)
        t._kill()                       # SIGKILL: no clean shutdown
        fault_env.unlink()
        t.start()
        check_one_bounce(t)
        assert peer.rcpts == 1, "the failed recipient is not tried again"
    finally:
        peer.close()


def test_sigterm_while_a_success_dsn_is_stored_exits_promptly(ternd, fault_env):
    """SIGTERM while the last job in flight is the store of a success DSN
    (made after the 250): ternd exits as soon as that store ends.  Before
    the fix, the DSN's completion did not look at the shutdown, and ternd
    waited for timeout.shutdown (here 60 s) with nothing left to do."""
    import re
    import time
    t = fault_ternd(ternd, {"timeout.shutdown": "60"})
    # every Maildir file's creation takes 1.5 s: the DSN's store is still
    # running on a worker when the signal comes
    fault_env.write_text("maildir:create:-1500\n")
    c = t.client()
    c.ehlo()
    c.expect("MAIL FROM:<claire@example.org>", 250)
    c.expect("RCPT TO:<ben@example.org> NOTIFY=SUCCESS", 250)
    c.expect("DATA", 354)
    c.send(b"Subject: notify\r\n\r\nbody\r\n.\r\n")
    check(c.reply(), 250)
    deadline = time.monotonic() + 10
    while not re.search(r"event=dsn kind=success", t.log()):
        assert time.monotonic() < deadline, t.log()[-2000:]
        time.sleep(0.02)
    t.terminate()
    started = time.monotonic()
    rc = t.stop(timeout=30)
    took = time.monotonic() - started
    assert rc == 0
    assert took < 10, f"exit took {took:.1f}s after SIGTERM"
    fault_env.unlink()
    # the DSN was stored whole before the exit
    assert len(maildir_files(t.state_dir, "claire@example.org")) == 1
