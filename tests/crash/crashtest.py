#!/usr/bin/python3
"""
crashtest: nothing acknowledged is ever lost (docs/design.md, principle 1).

Several client threads send messages to a real ternd, each with a unique
Message-ID, and remember every one that got a 250 after its data.
Meanwhile ternd is killed with SIGKILL at random moments (0-300 ms after
it came up) and restarted on the same state_dir, again and again.  At the
end, after a last kill, a last restart and time for the queue to drain,
every acknowledged Message-ID must be in the Maildir of each of its
recipients, whole (the file ends with exactly the bytes the client sent).

Modes:
  local   ternd delivers to local Maildirs (the 250 means: fsync'ed there)
  relay   instance A (relay.networks = loopback) queues the mail for
          example.net and delivers it by DNS MX (dnsmasq) to instance B;
          both are killed (A twice as often as B; --only A|B: just one).  A's 250 means: in A's
          queue; the message must end up in B's Maildirs.

Prints one line "kills=N acknowledged=N lost=N duplicated=N" (and a
"details:" line), exits 1 if anything acknowledged is lost, if a delivered
file is not exactly what the client sent, if recovery moved anything to
queue/corrupt/, or if ternd does not come back after a kill or does not
exit 0 on SIGTERM at the end; 2 if nothing was acknowledged at all.  duplicated counts extra copies of
acknowledged messages: 0 is expected in local mode (the client never sends
a message twice); in relay mode a kill between B's 250 and A's record of
it may deliver twice (at least once), so duplicates are reported, not
failed.

    /usr/bin/python3 tests/crash/crashtest.py --kills 10 --mode local
    make crashtest            # 500 kills (KILLS=N to change)

Uses the e2e harness (tests/e2e/conftest.py) for ternd, tern and dnsmasq;
as root, ternd runs as $TERN_TEST_USER (default nobody), as in the suite.
"""
import argparse
import hashlib
import os
import random
import re
import shutil
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "e2e"))

import conftest as C  # noqa: E402  (the e2e harness; needs pytest installed)

MID_RE = re.compile(rb"^Message-ID: (<[^>\r\n]+>)\r?$", re.M | re.I)


# ---------------------------------------------------------------------------
# bookkeeping shared by the client threads
# ---------------------------------------------------------------------------

class Ledger:
    """What the clients sent and what ternd answered."""

    def __init__(self):
        self.lock = threading.Lock()
        self.sent = {}          # mid -> (rcpts, len, sha256) for every message sent
        self.acked = {}         # mid -> rcpts: 250 after the data
        self.refused = set()    # mid: a 4xx/5xx after the data
        self.sessions = 0
        self.conn_errors = 0

    def add_sent(self, mid, rcpts, content):
        with self.lock:
            self.sent[mid] = (tuple(rcpts), len(content),
                              hashlib.sha256(content).digest())

    def result(self, mid, rcpts, code):
        with self.lock:
            if code == 250:
                self.acked[mid] = tuple(rcpts)
            else:
                self.refused.add(mid)


def make_content(mid, rng):
    """A message whose body size varies (a few with 256 KiB, so a kill
    often lands in the middle of a write, and now and then 2 MiB, which
    ternd keeps in a scratch file while it arrives)."""
    size = rng.choice((200, 2000, 20000, 20000, 262144, 200, 2000, 20000,
                       20000, 262144, 2 << 20))
    line = b"x" * 76 + b"\r\n"
    body = line * (size // len(line))
    return (b"From: load <load@example.com>\r\n"
            b"Subject: crash test\r\n"
            b"Message-ID: " + mid.encode() + b"\r\n\r\n" + body +
            b"END " + mid.encode() + b"\r\n")


class Loader(threading.Thread):
    """One client: connect, send messages one after the other on the same
    connection, reconnect at once when ternd goes away."""

    def __init__(self, n, port, rcpts, ledger, stop, seed, run_id):
        super().__init__(daemon=True, name=f"loader{n}")
        self.n, self.port, self.rcpts = n, port, rcpts
        self.ledger, self.stop = ledger, stop
        self.rng = random.Random(seed)
        self.run_id = run_id
        self.seq = 0

    def run(self):
        while not self.stop.is_set():
            try:
                self.session()
            except (OSError, C.ServerClosed, TimeoutError, AssertionError,
                    ValueError):
                with self.ledger.lock:
                    self.ledger.conn_errors += 1
                time.sleep(0.005)

    def session(self):
        with C.SMTPClient(self.port, timeout=10) as c:
            if c.greeting.code != 220:
                time.sleep(0.01)
                return
            with self.ledger.lock:
                self.ledger.sessions += 1
            c.expect(f"EHLO load{self.n}.test", 250)
            while not self.stop.is_set():
                self.one(c)

    def one(self, c):
        self.seq += 1
        mid = f"<crash.{self.run_id}.{self.n}.{self.seq}@load.test>"
        k = 1 if self.rng.random() < 0.7 else 2
        rcpts = self.rng.sample(self.rcpts, k)
        content = make_content(mid, self.rng)
        r = c.cmd("MAIL FROM:<load@example.com>")
        if r.code != 250:
            raise AssertionError(r.text)     # e.g. 421 at shutdown: reconnect
        for a in rcpts:
            C.check(c.cmd(f"RCPT TO:<{a}>"), 250, what=a)
        C.check(c.cmd("DATA"), 354, what="DATA")
        self.ledger.add_sent(mid, rcpts, content)
        c.send(content + b".\r\n")
        r = c.reply()                        # no reply: in doubt, not acked
        self.ledger.result(mid, rcpts, r.code)


# ---------------------------------------------------------------------------
# ternd instances
# ---------------------------------------------------------------------------

def kill9(t):
    t.proc.send_signal(signal.SIGKILL)
    t.proc.wait()
    t.logf.close()
    while t in C._ACTIVE:
        C._ACTIVE.remove(t)


def restart(t):
    kill9(t)
    t.start(timeout=30)


def setup(mode, factory, log_dir):
    """-> (victims with weights, loader port, recipients, the mailbox owner,
    things to stop at the end)."""
    if mode == "local":
        t = factory({"log.level": "warn"})
        return [(t, 1)], t.port, list(C.DEFAULT_USERS), t, []
    b_users = ("ben@example.net", "dave@example.net", "erin@example.net")
    b = factory({"hostname": "mx.example.net", "domains": "example.net",
                 "log.level": "warn"}, users=b_users, state="B")
    dns = C.Dnsmasq(log_dir, mx=[("example.net", "mx.example.net", 10)],
                    hosts=[("mx.example.net", "127.0.0.1")]).start()
    a = factory({"hostname": "mx.example.org", "domains": "example.org",
                 "relay.networks": "127.0.0.0/8", "dns.servers": dns.server,
                 "relay.port": str(b.port), "queue.retry_first": "1",
                 "queue.retry_max": "2", "log.level": "warn"},
                users=("claire@example.org",), state="A")
    return [(a, 2), (b, 1)], a.port, list(b_users), b, [dns]


# ---------------------------------------------------------------------------
# the check
# ---------------------------------------------------------------------------

def content_ok(sent, mid, data):
    """Does data end with the message sent under mid (its last n octets
    hash to the digest kept when it was sent)?"""
    info = sent.get(mid)
    if info is None:
        return True     # verify() reports the unknown Message-ID
    _rcpts, n, digest = info
    return len(data) >= n and hashlib.sha256(data[-n:]).digest() == digest


def scan_maildirs(state_dir, sent):
    """{(address, mid): [(path, size, content_ok)]} of every delivered
    file, and the number of files left in tmp/ directories.  Each file is
    checked against sent (ledger.sent) as it is read and not kept: a run
    of 500 kills leaves gigabytes of mail."""
    found = {}
    tmp_left = 0
    root = Path(state_dir) / "mail"
    for domain in sorted(root.iterdir()) if root.is_dir() else ():
        for box in sorted(domain.iterdir()):
            addr = f"{box.name}@{domain.name}"
            tmp_left += sum(1 for _ in (box / "tmp").iterdir()) \
                if (box / "tmp").is_dir() else 0
            for sub in ("new", "cur"):
                d = box / sub
                if not d.is_dir():
                    continue
                for p in d.iterdir():
                    data = p.read_bytes()
                    head = data.split(b"\r\n\r\n", 1)[0]
                    ids = MID_RE.findall(head)
                    mid = ids[-1].decode() if ids else None
                    found.setdefault((addr, mid), []).append(
                        (p, len(data), content_ok(sent, mid, data)))
    return found, tmp_left


def verify(ledger, found):
    lost, dup, bad = [], 0, []
    for (addr, mid), files in found.items():
        info = ledger.sent.get(mid)
        if info is None:
            bad.append(f"{files[0][0]}: unknown Message-ID {mid}")
            continue
        rcpts, n, digest = info
        if addr not in rcpts:
            bad.append(f"{files[0][0]}: {mid} delivered to {addr}, sent to {rcpts}")
        for p, size, ok in files:
            if not ok:
                bad.append(f"{p}: content differs from what was sent "
                           f"({size} octets, message {n})")
    for mid, rcpts in ledger.acked.items():
        for a in rcpts:
            k = len(found.get((a, mid), ()))
            if k == 0:
                lost.append((a, mid))
            else:
                dup += k - 1
    delivered_mids = {mid for (_a, mid) in found}
    unacked_delivered = len(delivered_mids - set(ledger.acked))
    refused_delivered = len(delivered_mids & ledger.refused)
    return lost, dup, bad, unacked_delivered, refused_delivered


def queue_state(t):
    import qlog
    q = Path(t.state_dir) / "queue"
    count = {}
    for sub in ("env", "data", "tmp", "held", "corrupt"):
        d = q / sub
        count[sub] = sum(1 for _ in d.iterdir()) if d.is_dir() else 0
    # the log (queue.log); polled during the run: checksums not verified
    count["env"] += len(qlog.live(q, verify=False))
    return count


# ---------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--mode", choices=("local", "relay"), default="local")
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--max-delay", type=float, default=0.3,
                    help="seconds: each kill comes 0..this after a restart")
    ap.add_argument("--drain-timeout", type=float, default=120)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--queue-log", action="store_true",
                    help="ternd with queue.log = yes (the log-structured "
                    "queue, the default)")
    ap.add_argument("--file-spool", action="store_true",
                    help="ternd with queue.log = no (the queue of files)")
    ap.add_argument("--only", choices=("A", "B"), default=None,
                    help="relay mode: kill only instance A (the queue) or B")
    ap.add_argument("--keep", action="store_true",
                    help="keep state and logs even when nothing failed")
    a = ap.parse_args()
    # read by the harness (conftest.Ternd)
    os.environ["TERN_TEST_QUEUE_LOG"] = "0" if a.file_spool else "1"
    if a.only and a.mode != "relay":
        ap.error("--only is for --mode relay")
    seed = a.seed if a.seed is not None else int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    print(f"crashtest: mode={a.mode} kills={a.kills} threads={a.threads} "
          f"seed={seed} ternd={C.TERND}", flush=True)
    C.require_build()

    log_dir = Path(C.world_tmpdir("tern-crash-logs-"))
    factory = C.TerndFactory(log_dir)
    stop = threading.Event()
    ledger = Ledger()
    extra = []
    failed = True
    try:
        victims, port, rcpts, owner, extra = setup(a.mode, factory, log_dir)
        loaders = [Loader(i, port, rcpts, ledger, stop, rng.random(), seed)
                   for i in range(a.threads)]
        for ld in loaders:
            ld.start()
        t0 = time.monotonic()
        kills = Counter()
        pool = [t for t, w in victims for _ in range(w)
                if a.only is None or t.state_dir.name == a.only]
        for i in range(a.kills):
            time.sleep(rng.uniform(0, a.max_delay))
            victim = rng.choice(pool)
            restart(victim)
            kills[victim.state_dir.name] += 1
            if (i + 1) % 50 == 0:
                print(f"  {i + 1} kills, {len(ledger.acked)} acknowledged, "
                      f"{time.monotonic() - t0:.0f}s", flush=True)
        # a little load after the last kill, then stop the clients
        time.sleep(rng.uniform(0, a.max_delay))
        stop.set()
        for ld in loaders:
            ld.join(30)
        # the final crash and restart: recovery must find everything
        for t, _w in victims:
            restart(t)
        deadline = time.monotonic() + a.drain_timeout
        while True:
            found, tmp_left = scan_maildirs(owner.state_dir, ledger.sent)
            lost = verify(ledger, found)[0]
            queued = sum(queue_state(t)["env"] for t, _w in victims)
            # ternd sweeps the tmp/ files its killed predecessors left, in
            # the background after the restart: wait for that too
            if (a.mode == "local" or (not lost and queued == 0)) and \
                    tmp_left == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        # a clean stop: SIGTERM, exit status 0
        for t, _w in victims:
            t.check_clean_exit()
        found, tmp_left = scan_maildirs(owner.state_dir, ledger.sent)
        lost, dup, bad, unacked_deliv, refused_deliv = verify(ledger, found)
        qs = {t.state_dir.name: queue_state(t) for t, _w in victims}
        corrupt = sum(q["corrupt"] for q in qs.values())
        queued = sum(q["env"] for q in qs.values())

        print(f"kills={a.kills} acknowledged={len(ledger.acked)} "
              f"lost={len(lost)} duplicated={dup}")
        print(f"details: mode={a.mode} seed={seed} sent={len(ledger.sent)} "
              f"refused={len(ledger.refused)} "
              f"in_doubt={len(ledger.sent) - len(ledger.acked) - len(ledger.refused)} "
              f"unacked_delivered={unacked_deliv} refused_delivered={refused_deliv} "
              f"sessions={ledger.sessions} conn_errors={ledger.conn_errors} "
              f"kills_by_instance={dict(kills)} still_queued={queued} "
              f"corrupt={corrupt} maildir_tmp_left={tmp_left} bad_files={len(bad)} "
              f"seconds={time.monotonic() - t0:.1f}", flush=True)
        for addr, mid in lost[:20]:
            print(f"LOST {mid} for {addr}")
        for b in bad[:20]:
            print(f"BAD {b}")
        if corrupt:
            print(f"CORRUPT queue entries: {qs}")
        if not ledger.acked:
            print("harness: nothing was acknowledged at all")
            return 2
        if tmp_left:
            print(f"LEFT {tmp_left} files in Maildir tmp/ after the restart")
        failed = bool(lost or bad or corrupt or tmp_left)
        return 1 if failed else 0
    except BaseException as e:       # pytest.fail() from the harness, ^C...
        print(f"FAILED: {type(e).__name__}: {e}", flush=True)
        return 1
    finally:
        stop.set()
        for t in factory.instances:
            if t.proc is not None and t.proc.poll() is None:
                kill9(t)
        for d in extra:
            d.stop()
        if failed or a.keep:
            print(f"kept for inspection: state {factory.root}, logs {log_dir}",
                  flush=True)
        else:
            shutil.rmtree(factory.root, ignore_errors=True)
            shutil.rmtree(log_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
