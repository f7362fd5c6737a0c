"""The log-structured queue takes over a queue of files (issue 14 item 2,
issue 18 item 3; docs/queue.md, "Upgrade from a queue of files").

Messages are queued by ternd with the file spool (queue.log = no: env/ +
data/) for a next hop that is down; ternd starts again with the log; the
log must hold every one of them (same ids, `tern queue` lists them all),
the old files must be gone, and once the next hop is up each message must
arrive exactly once.  A kill -9 in the middle of the take-over (while
records are appended, while they are synced, while the old files are
removed) must lose none and, since the ids are kept, duplicate none.
The other way (a log queue under queue.log = no) is refused with an
error that names the fix.
"""
import re
import subprocess
import time
from pathlib import Path

import pytest

import qlog
from conftest import BUILD, free_port, require, wait_for, world_tmpdir

TERND_FAULT = BUILD / "ternd-fault"
N = 12
RCPT = "rcpt@remote.example"


def a_ternd(ternd, hop_port, log):
    """ternd A, relaying everything to 127.0.0.1:hop_port, retries fast."""
    return ternd({"relay.networks": "127.0.0.1/32",
                  "relay.smarthost": f"127.0.0.1:{hop_port}",
                  "queue.retry_first": "1", "queue.retry_max": "1",
                  "queue.log": "yes" if log else "no"})


def queue_n(t, n=N):
    """n messages, each its own Subject; returns {id: subject}."""
    out = {}
    for i in range(n):
        subject = f"takeover {i}"
        rep = t.send_raw("claire@example.net", [RCPT],
                         f"Subject: {subject}\r\n\r\nbody {i}\r\n".encode())
        assert rep.code == 250, rep
        m = re.search(r"queued as ([0-9a-f]{16})", rep.text)
        assert m, rep
        out[m.group(1)] = subject
    return out


def file_queue(t):
    q = Path(t.state_dir) / "queue"
    return {d: sorted(p.name for p in (q / d).iterdir())
            for d in ("env", "data", "held", "tmp") if (q / d).is_dir()}


def queued_ids(t):
    return sorted(m["id"] for m in t.queue_list())


def deliver_and_count(ternd, t, hop_port, sent):
    """Start the next hop (ternd B, remote.example local there) on
    hop_port; every message must arrive there once, and the queue of A
    end empty."""
    b = ternd({"domains": "remote.example",
               "listen.smtp": f"127.0.0.1:{hop_port}"}, users=(RCPT,),
              start=False)
    b.port = hop_port
    b.start()
    wait_for(lambda: len(b.messages(RCPT)) >= len(sent),
             f"{len(sent)} messages at the next hop", timeout=60)
    wait_for(lambda: t.queue_list() == [], "A's queue empty", timeout=30)
    time.sleep(2.5)             # two more retry intervals: nothing more
    got = [re.search(rb"^Subject: (.*)\r$", d.data, re.M).group(1).decode()
           for d in b.messages(RCPT)]
    assert sorted(got) == sorted(sent.values()), got
    return b


def test_takeover_of_a_file_queue(ternd):
    hop = free_port()
    t = a_ternd(ternd, hop, log=False)
    sent = queue_n(t)
    wait_for(lambda: re.search(r"event=deferred", t.log()), "an attempt")
    assert t.stop() == 0
    files = file_queue(t)
    assert files["env"] == sorted(sent) and files["data"] == sorted(sent)
    assert not (Path(t.state_dir) / "queue" / "seg").exists()

    t.overrides["queue.log"] = "yes"
    started = time.monotonic()
    t.start()
    took = time.monotonic() - started
    m = re.search(r"event=queue_imported messages=(\d+) already=(\d+) "
                  r"corrupt=(\d+)", t.log())
    assert m and m.groups() == (str(N), "0", "0"), t.log()[-3000:]
    assert file_queue(t) == {}, "the old queue's files and directories left"
    assert sorted(qlog.live(Path(t.state_dir) / "queue")) == sorted(sent)
    assert queued_ids(t) == sorted(sent)
    print(f"restart with {N} messages taken over: {took:.2f} s")
    deliver_and_count(ternd, t, hop, sent)


def test_log_queue_refused_by_the_file_spool(ternd):
    """Going back (queue.log = no on a queue the log took over) is
    refused, nothing changed, with an error naming both ways out."""
    hop = free_port()
    t = a_ternd(ternd, hop, log=True)
    sent = queue_n(t, 2)
    assert t.stop() == 0
    before = sorted(p.name for p in (Path(t.state_dir) / "queue" / "seg").iterdir())
    t.overrides["queue.log"] = "no"
    r = subprocess.run(t.argv(), capture_output=True, timeout=30,
                       cwd=str(t.state_dir))
    assert r.returncode != 0
    err = (r.stdout + r.stderr).decode(errors="replace")
    assert "log format" in err and "queue.log = yes" in err, err
    assert sorted(p.name for p in (Path(t.state_dir) / "queue" / "seg").iterdir()) == before
    assert sorted(qlog.live(Path(t.state_dir) / "queue")) == sorted(sent)
    t.overrides["queue.log"] = "yes"
    t.start()
    assert queued_ids(t) == sorted(sent)


@pytest.fixture
def fault_file(monkeypatch):
    require(TERND_FAULT, "make build/ternd-fault (part of make check)")
    p = Path(world_tmpdir("tern-takeover-")) / "fault"
    monkeypatch.setenv("TERN_FAULT_FILE", str(p))
    return p


# where the take-over is killed: while the records are appended (each
# append waits), while the one fdatasync runs, while the old files are
# unlinked (each unlink waits); how many waits to let pass first
KILL_POINTS = [("write", 4), ("fdatasync", 1), ("unlink", 5)]


@pytest.mark.parametrize("step,after", KILL_POINTS,
                         ids=[s for s, _ in KILL_POINTS])
def test_takeover_killed_midway(ternd, fault_file, step, after):
    hop = free_port()
    t = a_ternd(ternd, hop, log=False)
    sent = queue_n(t)
    assert t.stop() == 0

    # the take-over under ternd-fault, each `step` slowed to 300 ms, and
    # SIGKILL once `after` of them have begun
    t.overrides["queue.log"] = "yes"
    argv = [str(TERND_FAULT)] + t.argv()[1:]
    fault_file.write_text(f"logspool:{step}:-300\n")
    log = Path(t.state_dir) / "killed.log"
    with open(log, "wb") as lf:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=lf,
                             stderr=lf, cwd=str(t.state_dir))
        try:
            pat = f"event=fault_injected module=logspool step={step} "
            wait_for(lambda: log.read_text(errors="replace").count(pat) >= after,
                     f"{after} slowed {step} steps", timeout=30)
        finally:
            p.kill()
            p.wait()
    text = log.read_text(errors="replace")
    assert "event=queue_imported" not in text, text[-2000:]
    fault_file.unlink()

    # the next start finishes the take-over: nothing lost, no id twice
    t.start()
    m = re.search(r"event=queue_imported messages=(\d+) already=(\d+) "
                  r"corrupt=(\d+)", t.log())
    assert m, t.log()[-3000:]
    imported, already, corrupt = map(int, m.groups())
    assert corrupt == 0 and imported + already <= N, m.group(0)
    if step == "fdatasync":
        assert already == N, m.group(0)     # all appended before the kill
    print(f"killed in {step}: {m.group(0)}")
    assert file_queue(t) == {}
    assert queued_ids(t) == sorted(sent)
    deliver_and_count(ternd, t, hop, sent)
