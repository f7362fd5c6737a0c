#!/usr/bin/python3
"""
crashstate: every on-disk state a power cut could leave, checked.

The crash tests (tests/crash) kill ternd with SIGKILL; the page cache
survives that, so a missing or misordered fsync can never make them fail.
This checker can.  For each scenario it

  1. records a real run: ternd under the LD_PRELOAD shim (shim.c) writes
     a trace of every file-system call beneath its state_dir, in order,
     with the bytes written, and an "ack" record the moment it answers
     "250 2.0.0 Ok: queued as ID" after a message's data;
  2. replays the trace (model.py, whose docstring states the rules) and,
     after every record, builds the states a power cut at that instant
     could leave: each combination of the not-yet-durable operations that
     the rules allow (all of them up to --limit, else --sample of them
     drawn with a fixed seed);
  3. writes each distinct state to a fresh directory, starts ternd on it
     (its start-up recovery: spool_open's queue recovery, the Maildir tmp/
     sweep, the first queue run), stops it, and checks that every message
     acknowledged before the cut is there exactly once and whole (content
     hash), in each local recipient's Maildir or in the queue, or (DSN
     scenario) bounced whole into the sender's Maildir; and that nothing
     half-written is delivered into any new/ or cur/ (a file there must be
     exactly a message the clients sent, or a whole DSN).

Scenarios: lone (one message at a time: the plain fsync path, including
a mailbox's first delivery), group (concurrent sessions: the syncfs group
commit), relay (a queued message for a remote domain, its failed attempt
and envelope update), hold (the same, then `tern queue hold` and
`release`: env/ to held/ and back), dsn (a permanent failure: the bounce into the local
sender's Maildir and the queue entry's removal), recover (a restart on a
crashed state: a queued message and a local one acknowledged before the
recording, an orphan content file, an envelope left in queue/tmp/, a
Maildir tmp/ file of a killed delivery; the recorded run is recovery
itself, then the message's next attempt).  A migration: tern has
one envelope format (version 1) and no migration today; the hook is the
SCENARIOS table.

Prints per scenario "scenario=NAME records=N crash_points=N states=N
distinct=N exhaustive_points=N sampled_points=N violations=N", then a
total line; exits 1 if any violation was found (or, with --expect-violations,
if none was).  --ternd selects the binary (build/ternd-plant is the build
with one fsync dropped, to show that the checker catches it).

    /usr/bin/python3 tests/crashstate/crashstate.py --scenario lone
    make crashstate
"""
import argparse
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

import model as M  # noqa: E402

sys.path.insert(0, str(HERE.parent / "e2e"))
import qlog  # noqa: E402  (reads the log-structured queue)

TEST_USER = "terntest"
HOSTNAME = "mx.test"
DOMAIN = "example.org"
USERS = ("ben@example.org", "claire@example.org", "dave@example.org")


# ---------------------------------------------------------------------------
# a minimal SMTP client and peer
# ---------------------------------------------------------------------------

class Client:
    def __init__(self, port, timeout=10):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.reply()

    def reply(self):
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.s.recv(65536)
                if not chunk:
                    raise ConnectionError("closed")
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line.decode(errors="replace"))
            if len(line) < 4 or line[3:4] != b"-":
                return int(lines[-1][:3]), "\n".join(lines)

    def cmd(self, line, want):
        self.s.sendall(line.encode() + b"\r\n")
        code, text = self.reply()
        if code != want:
            raise AssertionError(f"{line!r}: {text}")
        return text

    def close(self):
        try:
            self.s.sendall(b"QUIT\r\n")
            self.reply()
        except OSError:
            pass
        self.s.close()


def make_message(tag, size):
    """A message with a unique Message-ID and a body of about size octets."""
    mid = f"<cs.{tag}@crashstate.test>"
    line = (b"%s " % tag.encode()).ljust(76, b"x") + b"\r\n"
    body = line * max(1, size // len(line))
    return mid, (b"From: ben@example.org\r\nSubject: crashstate " +
                 tag.encode() + b"\r\nMessage-ID: " + mid.encode() +
                 b"\r\n\r\n" + body + b"END " + tag.encode() + b"\r\n")


class Sent:
    """What the clients sent; the queue id of each acknowledged one."""

    def __init__(self):
        self.lock = threading.Lock()
        self.msgs = {}          # mid -> dict(content, rcpts, kind, sender, qid)

    def send(self, port, tag, rcpts, size, kind, sender="ben@example.org"):
        mid, content = make_message(tag, size)
        c = Client(port)
        try:
            c.cmd(f"EHLO {tag}.test", 250)
            c.cmd(f"MAIL FROM:<{sender}>", 250)
            for r in rcpts:
                c.cmd(f"RCPT TO:<{r}>", 250)
            c.cmd("DATA", 354)
            with self.lock:
                self.msgs[mid] = dict(content=content, rcpts=tuple(rcpts),
                                      kind=kind, sender=sender, qid=None)
            c.s.sendall(content + b".\r\n")
            code, text = c.reply()
            m = re.search(r"queued as ([0-9a-f]{16})", text)
            if code == 250 and m:
                with self.lock:
                    self.msgs[mid]["qid"] = m.group(1)
        finally:
            c.close()


class RefusingPeer(threading.Thread):
    """A next hop that refuses every recipient: 550 5.1.1."""

    def __init__(self):
        super().__init__(daemon=True)
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(8)
        self.port = self.ls.getsockname()[1]
        self.stop = False

    def run(self):
        while not self.stop:
            try:
                s, _ = self.ls.accept()
            except OSError:
                return
            threading.Thread(target=self.session, args=(s,), daemon=True).start()

    def session(self, s):
        f = s.makefile("rb")
        try:
            s.sendall(b"220 peer.test ESMTP\r\n")
            for line in f:
                v = line[:4].upper()
                if v in (b"EHLO", b"HELO"):
                    s.sendall(b"250 peer.test\r\n")
                elif v == b"RCPT":
                    s.sendall(b"550 5.1.1 no such user here\r\n")
                elif v == b"QUIT":
                    s.sendall(b"221 bye\r\n")
                    break
                else:
                    s.sendall(b"250 ok\r\n")
        except OSError:
            pass
        finally:
            s.close()

    def close(self):
        self.stop = True
        self.ls.close()


# ---------------------------------------------------------------------------
# ternd
# ---------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port():
    return free_port()          # nothing listens there afterwards


class Ternd:
    def __init__(self, binary, state, overrides, log):
        self.binary, self.state, self.log = binary, Path(state), Path(log)
        self.port = free_port()
        self.o = {"hostname": HOSTNAME, "domains": DOMAIN,
                  "state_dir": str(self.state),
                  "listen.smtp": f"127.0.0.1:{self.port}",
                  "listen.submission": "off",
                  # SPF would ask the system resolver for every message
                  "spf.check": "no"}
        # the log (the default) or, --file-spool, the queue of files
        self.o["queue.log"] = \
            "no" if os.environ.get("TERN_TEST_QUEUE_LOG") == "0" else "yes"
        self.o.update(overrides)
        self.proc = None

    def argv(self, prog):
        a = [str(prog)]
        for k, v in self.o.items():
            a += ["-o", f"{k}={v}"]
        return a

    def tern(self, *args):
        subprocess.run(self.argv(Path(self.binary).parent / "tern") + list(args),
                       check=True, capture_output=True, timeout=30)

    def start(self, env=None, timeout=10):
        e = dict(os.environ)
        e.pop("TERN_CONFIG", None)
        e.update(env or {})
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen(self.argv(self.binary),
                                     stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=self.logf,
                                     cwd=str(self.state), env=e)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                Client(self.port, timeout=2).close()
                return True
            except OSError:
                time.sleep(0.02)
        return False

    def wait_log(self, pattern, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(pattern, self.log.read_text(errors="replace")):
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.02)
        return False

    def stop(self):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()
        return self.proc.returncode


# ---------------------------------------------------------------------------
# scenarios: (overrides, driver, settle); the driver sends the messages
# ---------------------------------------------------------------------------

def prep_lone(state, a, overrides, sent):
    # dave's Maildir is gone (an admin removed it): his first delivery
    # makes it again (mkdir, fsync of the parent, tmp/ new/ cur/)
    shutil.rmtree(state / "mail" / DOMAIN / "dave")


def files_spool(overrides):
    """overrides, with the file spool when the log is checked (a queue
    made before the upgrade)."""
    if os.environ.get("TERN_TEST_QUEUE_LOG") == "1":
        return dict(overrides, **{"queue.log": "no"})
    return overrides


def prep_recover(state, a, overrides, sent):
    """A state left by a crash: a queued message (acknowledged before the
    recording starts) plus what recovery cleans: a content file whose
    envelope is gone, an envelope left in queue/tmp/, and a Maildir tmp/
    file of a killed delivery (tern's name, another pid).  Made by the
    file spool always: on the log (the default) the recorded start is the
    import of that queue into the log, under the same power-cut rules."""
    t = Ternd(a.ternd, state, files_spool(overrides),
              state.parent / "prep.log")
    if not t.start():
        raise RuntimeError(f"ternd did not start: {t.log}")
    try:
        sent.send(t.port, "recover1", ["rcpt@remote.test"], 6000, "queue")
        sent.send(t.port, "recover2", ["ben@example.org"], 2000, "local")
        if not t.wait_log(r"event=deferred to=<rcpt@remote\.test>", 15):
            raise RuntimeError("recover: no failed attempt seen")
    finally:
        t.stop()
    q = state / "queue"
    qid = next(m["qid"] for m in sent.msgs.values() if m["kind"] == "queue")
    orphan = "0" * 8 + qid[8:]
    shutil.copyfile(q / "data" / qid, q / "data" / orphan)
    (q / "tmp" / qid).write_bytes((q / "env" / qid).read_bytes()[:40])
    box = state / "mail" / DOMAIN / "ben"
    name = next((box / "new").iterdir()).name
    dead = re.sub(r"P\d+Q", "P1Q", name)
    (box / "tmp" / dead).write_bytes((box / "new" / name).read_bytes()[:500])
    return {m["qid"] for m in sent.msgs.values() if m["qid"]}


def drive_recover(t, sent, ctx):
    # the recorded start is the recovery; then the message's next attempt
    if not t.wait_log(r"event=maildir_tmp_swept removed=1", 15):
        raise RuntimeError("recover: the Maildir tmp/ file was not swept")
    t.tern("queue", "flush")
    if not t.wait_log(r"(?s)event=maildir_tmp_swept.*event=deferred", 15):
        raise RuntimeError("recover: no attempt after the recovery")
    time.sleep(0.3)


def drive_lone(t, sent, ctx):
    sent.send(t.port, "lone1", ["ben@example.org"], 3000, "local")
    sent.send(t.port, "lone2", ["ben@example.org", "claire@example.org"],
              9000, "local")
    sent.send(t.port, "lone3", ["dave@example.org"], 1000, "local")


def drive_group(t, sent, ctx):
    ths = []
    for i in range(4):
        rc = [USERS[i % 3]] if i % 2 else [USERS[i % 3], USERS[(i + 1) % 3]]
        th = threading.Thread(target=lambda i=i, rc=rc: [
            sent.send(t.port, f"group{i}.{k}", rc, 2000 + 700 * i, "local")
            for k in range(2)])
        ths.append(th)
    for th in ths:
        th.start()
    for th in ths:
        th.join(60)


def drive_relay(t, sent, ctx):
    sent.send(t.port, "relay1", ["rcpt@remote.test"], 5000, "queue")
    # its first attempt fails (nobody listens): the envelope is updated
    if not t.wait_log(r"event=deferred to=<rcpt@remote\.test>", 15):
        raise RuntimeError("relay: no failed attempt (spool_update) seen")
    time.sleep(0.3)


def drive_hold(t, sent, ctx):
    drive_relay(t, sent, ctx)
    qid = next(m["qid"] for m in sent.msgs.values())
    t.tern("queue", "hold", qid)        # env/ID -> held/ID
    t.tern("queue", "release", qid)     # and back
    time.sleep(0.2)


def drive_dsn(t, sent, ctx):
    sent.send(t.port, "dsn1", ["gone@remote.test"], 4000, "dsn",
              sender="claire@example.org")
    if not t.wait_log(r"event=dsn kind=failure", 15):
        raise RuntimeError("dsn: no failure report seen")
    time.sleep(0.3)


SCENARIOS = {
    # name: (overrides(ctx), driver, extra seconds the recovery run gets,
    #        prep(state_dir, args, overrides, sent) before the recorded
    #        start, or None; it returns the queue ids already acknowledged)
    "lone": (lambda ctx: {}, drive_lone, 0.0, prep_lone),
    "group": (lambda ctx: {}, drive_group, 0.0, None),
    "relay": (lambda ctx: {"relay.networks": "127.0.0.0/8",
                           "relay.smarthost": f"127.0.0.1:{ctx['smarthost']}",
                           "queue.retry_first": "3600"},
              drive_relay, 0.4, None),
    "hold": (lambda ctx: {"relay.networks": "127.0.0.0/8",
                          "relay.smarthost": f"127.0.0.1:{ctx['smarthost']}",
                          "queue.retry_first": "3600"},
             drive_hold, 0.4, None),
    "dsn": (lambda ctx: {"relay.networks": "127.0.0.0/8",
                         "relay.smarthost": f"127.0.0.1:{ctx['smarthost']}",
                         "queue.retry_first": "3600"},
            drive_dsn, 0.4, None),
    "recover": (lambda ctx: {"relay.networks": "127.0.0.0/8",
                             "relay.smarthost": f"127.0.0.1:{ctx['smarthost']}",
                             "queue.retry_first": "3600"},
                drive_recover, 0.4, prep_recover),
    # "migration": none exists (envelope format version 1 only); a queue
    # format migration adds its scenario here: record the migrating start.
}


# ---------------------------------------------------------------------------
# after recovery: what is on disk
# ---------------------------------------------------------------------------

MID_RE = re.compile(rb"^Message-ID: (<[^>\r\n]+>)\r?$", re.M | re.I)


def scan(state):
    """{'boxes': {addr: [bytes]}, 'queue': {qid: (env, data)}, 'corrupt': n}"""
    out = {"boxes": {}, "queue": {}, "corrupt": 0}
    root = state / "mail"
    for dom in sorted(root.iterdir()) if root.is_dir() else ():
        for box in sorted(dom.iterdir()):
            files = []
            for sub in ("new", "cur"):
                d = box / sub
                if d.is_dir():
                    files += [p.read_bytes() for p in sorted(d.iterdir())]
            out["boxes"][f"{box.name}@{dom.name}"] = files
    q = state / "queue"
    for sub in ("env", "held"):
        d = q / sub
        for p in sorted(d.iterdir()) if d.is_dir() else ():
            data = q / "data" / p.name
            out["queue"][p.name] = (p.read_bytes(),
                                    data.read_bytes() if data.exists() else None)
            if sub == "held":
                out.setdefault("held", set()).add(p.name)
    # the log (queue.log): what a replay finds; a message queued there is
    # whole by construction (checksummed), its "E" record is checked below
    for qid, m in qlog.live(q).items():
        out["queue"][qid] = (m["env"], m["data"])
        if m["held"]:
            out.setdefault("held", set()).add(qid)
    c = q / "corrupt"
    out["corrupt"] = sum(1 for _ in c.iterdir()) if c.is_dir() else 0
    return out


def is_whole_dsn(data, msg):
    """A whole failure report for msg: multipart/report, its closing
    boundary, and the returned message in it."""
    m = re.search(rb'boundary="([^"]+)"', data)
    if not m or b"multipart/report" not in data:
        return False
    closing = b"--" + m.group(1) + b"--"
    return data.rstrip(b"\r\n").endswith(closing) and \
        msg["content"].split(b"\r\n\r\n", 1)[1][:2000] in data


def check(sc, acked, msgs, held=()):
    """Violations (strings) of one recovered state, given the acknowledged
    Message-IDs and the queue ids an admin was told are held."""
    bad = []
    if isinstance(sc, str):
        return [sc]
    if sc["corrupt"]:
        bad.append(f"recovery moved {sc['corrupt']} file(s) to queue/corrupt/")
    by_qid = {m["qid"]: mid for mid, m in msgs.items() if m["qid"]}
    count = {}                                   # (addr, mid) -> copies
    dsn_for = set()                              # mids bounced whole
    for addr, files in sc["boxes"].items():
        for data in files:
            head = data.split(b"\r\n\r\n", 1)[0]
            ids = MID_RE.findall(head)
            mid = ids[-1].decode() if ids else None
            if mid in msgs and data.endswith(msgs[mid]["content"]):
                count[(addr, mid)] = count.get((addr, mid), 0) + 1
                continue
            hit = [x for x, m in msgs.items() if m["kind"] == "dsn" and
                   x.encode() in data]
            if hit and addr == msgs[hit[0]]["sender"] and \
                    is_whole_dsn(data, msgs[hit[0]]):
                dsn_for.add(hit[0])
                continue
            bad.append(f"{addr}: a half-written or unknown file in the "
                       f"Maildir ({len(data)} octets, {data[:60]!r})")
    queued = set()
    for qid, (env, data) in sc["queue"].items():
        mid = by_qid.get(qid)
        if mid is None:
            # not acknowledged (or its 250 never came): whole or nothing
            whole = data is not None and any(
                data.endswith(m["content"]) for m in msgs.values())
            if not whole:
                bad.append(f"queue {qid}: an envelope whose content is "
                           f"not a whole message")
            continue
        if data is None or not data.endswith(msgs[mid]["content"]):
            bad.append(f"queue {qid} ({mid}): content not whole")
        elif not env.endswith(b"\n") or not re.search(rb"\nE \d+\n$", env):
            bad.append(f"queue {qid} ({mid}): envelope not whole")
        else:
            queued.add(mid)
    for qid in held:
        if qid not in sc.get("held", ()):
            bad.append(f"queue {qid}: `tern queue hold` said done, the "
                       f"message is not held after the cut")
    for mid in acked:
        m = msgs[mid]
        if m["kind"] == "local":
            for r in m["rcpts"]:
                n = count.get((r, mid), 0)
                if n != 1:
                    bad.append(f"{mid} for {r}: acknowledged, found {n} times")
        elif m["kind"] == "queue":
            if mid not in queued:
                bad.append(f"{mid}: acknowledged, not in the queue")
        elif m["kind"] == "dsn":
            if mid not in queued and mid not in dsn_for:
                bad.append(f"{mid}: acknowledged, neither queued nor bounced")
    return bad


# ---------------------------------------------------------------------------
# one scenario
# ---------------------------------------------------------------------------

def base_manifest(state):
    out = [("", os.lstat(state).st_ino, "d", None)]
    for dirpath, dirnames, filenames in os.walk(state):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            rel = os.path.relpath(p, state)
            if os.path.isdir(p) and not os.path.islink(p):
                out.append((rel, st.st_ino, "d", None))
            elif os.path.isfile(p) and not os.path.islink(p):
                out.append((rel, st.st_ino, "f", Path(p).read_bytes()))
    return out


class Recovery:
    """Runs ternd's recovery on materialised states, once per distinct one."""

    def __init__(self, name, a, overrides, settle, work):
        self.name, self.a, self.overrides, self.settle = name, a, overrides, settle
        self.work = work
        self.cache = {}
        self.runs = 0

    def recover_once(self, d):
        t = Ternd(self.a.ternd, d, self.overrides,
                  Path(self.work) / f"{self.name}-recover.log")
        why = "did not start"
        ok = t.start()
        if ok:
            why = "no maildir_tmp_swept line"
            ok = t.wait_log(r"event=maildir_tmp_swept", 20)
        if ok and self.settle:
            time.sleep(self.settle)
        return ok, why, t.stop(), t

    def result(self, tree):
        key = M.tree_digest(tree)
        if key in self.cache:
            return self.cache[key]
        d = Path(self.work) / f"{self.name}-s{self.runs}"
        os.mkdir(d, 0o700)
        M.write_tree(tree, d)
        self.runs += 1
        # a second try on a fresh port: another process may have taken
        # the free port between free_port() and ternd's bind (a real
        # recovery failure fails twice)
        for _try in range(2):
            ok, why, rc, t = self.recover_once(d)
            if ok and rc == 0:
                break
            shutil.rmtree(d)
            os.mkdir(d, 0o700)
            M.write_tree(tree, d)
        if ok and rc == 0:
            sc = scan(d)
        else:
            sc = f"ternd {why if not ok else 'stopped'} (exit {rc}) on {d}"
            keep = Path(self.work) / "failed" / d.name
            keep.parent.mkdir(exist_ok=True)
            shutil.copytree(d, keep, symlinks=True)
            print(f"  recovery failed: {sc}; state kept in {keep}, log "
                  f"{t.log}", flush=True)
        self.cache[key] = sc
        if not self.a.keep:
            shutil.rmtree(d, ignore_errors=True)
        return sc


def run_scenario(name, a, work, drop=None, tag=""):
    ov_fn, driver, settle, prep = SCENARIOS[name]
    peer = RefusingPeer() if name == "dsn" else None
    if peer:
        peer.start()
    ctx = {"smarthost": peer.port if peer else closed_port()}
    overrides = ov_fn(ctx)
    name_t = name + tag
    sdir = Path(work) / f"{name_t}-rec" / "state"
    sdir.mkdir(parents=True, mode=0o700)
    sdir = Path(os.path.realpath(sdir))
    # (recover: installed with the file spool, as prep_recover's queue is)
    t = Ternd(a.ternd, sdir,
              files_spool(overrides) if prep is prep_recover else overrides,
              Path(work) / f"{name_t}-rec.log")
    for u in USERS:
        t.tern("user", "add", u)
    # a first start makes the queue, the TLS pair and the mail root: the
    # recorded run starts from an installed system, not an empty one
    if not t.start():
        raise RuntimeError(f"ternd did not start: {t.log}")
    t.stop()
    sent = Sent()
    pre_acked = (prep(sdir, a, overrides, sent) if prep else None) or set()
    base = base_manifest(sdir)
    trace = str(Path(work) / f"{name_t}-trace")
    t = Ternd(a.ternd, sdir, overrides, Path(work) / f"{name_t}-rec.log")
    env = {"LD_PRELOAD": str(a.shim), "TERN_CRASHSTATE_TRACE": trace,
           "TERN_CRASHSTATE_ROOT": str(sdir),
           # an ASan ternd: the shim is preloaded before the ASan runtime
           "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") +
           ":verify_asan_link_order=0"}
    if drop:
        env["TERN_CRASHSTATE_DROP"] = drop
    if not t.start(env=env):
        raise RuntimeError(f"ternd did not start under the shim: {t.log}")
    try:
        driver(t, sent, ctx)
    finally:
        rc = t.stop()
        if peer:
            peer.close()
    if rc != 0:
        raise RuntimeError(f"recorded ternd exited {rc}: {t.log}")
    tr = M.Trace(trace)
    msgs = {mid: m for mid, m in sent.msgs.items()}
    by_qid = {m["qid"]: mid for mid, m in msgs.items() if m["qid"]}
    nacked_client = len(by_qid)
    model = M.Model(str(sdir), base, M.IGNORE)
    rec = Recovery(name_t, a, dict(overrides), settle, work)
    rng = random.Random(a.seed)
    # acknowledged before the recording: they must survive every cut
    acked = [mid for mid, m in msgs.items() if m["qid"] in pre_acked]
    held, ctl_ok = set(), 0        # hold scenario: the first ctl_ok is the hold
    stats = dict(records=len(tr.records), crash_points=0, states=0,
                 exhaustive_points=0, sampled_points=0, states_enumerated=0,
                 states_sampled=0, violations=0)
    seen_viol = {}
    for rec_ in tr.records:
        model.feed(rec_, tr.data)
        if rec_[2] == "ack":
            mid = by_qid.get(rec_[4]["id"])
            if mid is not None:
                acked.append(mid)
        if name == "hold" and rec_[2] == "ctl_ok":
            ctl_ok += 1
            if ctl_ok == 1:
                held = {m["qid"] for m in msgs.values()}
        if name == "hold" and rec_[2] == "rename" and \
                "/queue/held/" in rec_[3][0]:
            held = set()              # the release began
        if name == "hold" and ctl_ok == 1 and rec_[2] == "write" and \
                os.environ.get("TERN_TEST_QUEUE_LOG") == "1":
            held = set()              # the log: the RELEASE record, the
            #                           first write after the hold's reply
        stats["crash_points"] += 1
        pend = model.pending()
        choices, exhaustive = model.choices(pend, a.limit, a.sample, rng)
        stats["exhaustive_points" if exhaustive else "sampled_points"] += 1
        stats["states_enumerated" if exhaustive else "states_sampled"] += \
            len(choices)
        for ch in choices:
            stats["states"] += 1
            tree = model.materialise(ch)
            sc = rec.result(tree)
            for v in check(sc, acked, msgs, held):
                stats["violations"] += 1
                seen_viol.setdefault(v, (rec_[0], rec_[2]))
    stats["distinct"] = rec.runs
    stats["acked"] = len(acked)
    stats["acked_by_client"] = nacked_client
    stats["syncfs"] = tr.count("sync_begin", kind="syncfs")
    stats["unmodelled"] = model.unmodelled
    stats["ignored"] = model.ignored
    stats["dropped"] = tr.count("dropped")
    stats["sites"] = sync_sites(tr, str(sdir))
    if nacked_client != len(msgs) or len(acked) != nacked_client:
        raise RuntimeError(f"{name}: {len(msgs)} sent, {nacked_client} "
                           f"acknowledged, {len(acked)} acks in the trace")
    return stats, seen_viol


HEX_ID = re.compile(r"^[0-9a-f]{16}$")


def site_of(rel):
    """A sync's file or directory as a pattern of its kind: queue ids and
    Maildir domain, user and file names become wildcards."""
    comps = rel.split("/") if rel else []
    out = []
    for i, c in enumerate(comps):
        if HEX_ID.match(c):
            out.append("[0-9a-f]{16}")
        elif comps[0] == "mail" and (i in (1, 2) or (i == 4 and comps[3] in
                                                        ("tmp", "new", "cur"))):
            out.append("[^/]+")
        else:
            out.append(re.escape(c))
    return "/".join(out)


def sync_sites(tr, root):
    """{regex: calls} of the syncs in a trace, for --mutate."""
    sites = {}
    for _seq, _tid, op, pos, kw in tr.records:
        if op != "sync_begin" or not pos:
            continue
        rel = os.path.relpath(pos[0], root)
        if rel.startswith(".."):
            continue
        rx = (f"^{kw['kind']} {site_of('' if rel == '.' else rel)} "
              f"@{re.escape(kw.get('site', ''))}$")
        sites[rx] = sites.get(rx, 0) + 1
    return sites


def mutate(name, a, work, sites):
    """Each sync site of a clean run dropped in turn: is it caught?"""
    rows = []
    for i, rx in enumerate(sorted(sites)):
        st, viol = run_scenario(name, a, work, drop=rx, tag=f"-m{i}")
        rows.append((rx, st["dropped"], st["states"], st["violations"]))
        first = next(iter(viol), "")
        print(f"  mutant scenario={name} drop='{rx}' dropped={st['dropped']} "
              f"states={st['states']} distinct={st['distinct']} "
              f"violations={st['violations']} "
              f"caught={'yes' if st['violations'] else 'no'}"
              + (f" first=\"{first}\"" if first else ""), flush=True)
    return rows


def as_test_user():
    """Root: run as the unprivileged test user (ternd refuses to stay root)."""
    if os.geteuid() != 0:
        return
    if subprocess.run(["id", "-u", TEST_USER], capture_output=True).returncode:
        subprocess.run(["useradd", "--system", "--create-home", "--shell",
                        "/bin/sh", TEST_USER], check=True)
    os.execvp("runuser", ["runuser", "-u", TEST_USER, "--", sys.executable]
              + sys.argv)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", action="append", choices=sorted(SCENARIOS))
    ap.add_argument("--ternd", default=str(REPO / "build" / "ternd"))
    ap.add_argument("--shim", default=str(REPO / "build" / "crashstate" / "shim.so"))
    ap.add_argument("--limit", type=int, default=256,
                    help="enumerate a crash point's states up to this many")
    ap.add_argument("--sample", type=int, default=64,
                    help="else draw this many (fixed seed)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--expect-violations", action="store_true",
                    help="exit 0 only if violations are found (planted bug)")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--queue-log", action="store_true",
                    help="ternd with queue.log = yes (the log-structured "
                    "queue, the default)")
    ap.add_argument("--file-spool", action="store_true",
                    help="ternd with queue.log = no (the queue of files)")
    ap.add_argument("--drop", default=None, metavar="REGEX",
                    help="record with the syncs matching REGEX left out "
                    "(\"KIND RELPATH @SITE\", see --mutate's output)")
    ap.add_argument("--mutate", action="store_true",
                    help="then drop each sync site of each scenario in turn "
                    "(at run time, through the shim) and report which are caught")
    a = ap.parse_args()
    os.environ["TERN_TEST_QUEUE_LOG"] = "0" if a.file_spool else "1"
    as_test_user()
    a.ternd = os.path.abspath(a.ternd)
    a.shim = os.path.abspath(a.shim)
    for p in (a.ternd, a.shim):
        if not os.access(p, os.R_OK):
            sys.exit(f"crashstate: {p} missing (make crashstate builds it)")
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"tern-crashstate-{os.getpid()}"
    work.mkdir(mode=0o700)
    total = dict(records=0, crash_points=0, states=0, distinct=0,
                 exhaustive_points=0, sampled_points=0, states_enumerated=0,
                 states_sampled=0, violations=0)
    t0 = time.monotonic()
    failed = True
    try:
        for name in a.scenario or list(SCENARIOS):
            st, viol = run_scenario(name, a, work, drop=a.drop)
            sites = st.pop("sites")
            print(f"scenario={name} ternd={os.path.basename(a.ternd)} "
                  + " ".join(f"{k}={v}" for k, v in st.items()), flush=True)
            for v, (seq, op) in list(viol.items())[:10]:
                print(f"  VIOLATION first after record {seq} ({op}): {v}")
            for k in total:
                total[k] += st[k]
            if a.mutate:
                rows = mutate(name, a, work, sites)
                caught = sum(1 for r in rows if r[3])
                print(f"mutants: scenario={name} sites={len(rows)} "
                      f"caught={caught} missed={len(rows) - caught}", flush=True)
        print("total: runs={} ".format(len(a.scenario or SCENARIOS)) +
              " ".join(f"{k}={v}" for k, v in total.items()) +
              f" seconds={time.monotonic() - t0:.0f}", flush=True)
        failed = bool(total["violations"]) and not a.expect_violations
    finally:
        if failed or a.keep:
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if a.expect_violations:
        return 0 if total["violations"] else 1
    return 1 if total["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
