"""ternd's log (docs/configuration.md, "[log]"): log.format = json read by
Python's json for a message's whole life and for hostile values; the
journald target against a real systemd-journald started privately (root:
a mount namespace of its own) and read back with journalctl, and against
a receiver of the native protocol the test binds; syslog to a socket the
test binds; the fallback to stderr; `tern log ID` from a file and from the
journal."""

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import (BEN, CLAIRE, TERN, Ternd, two_mtas, wait_for,
                      maildir_messages, world_tmpdir)
from fakepeer import ReplyPeer
from test_queue import msg, submit

JOURNALD = "/lib/systemd/systemd-journald"
JOURNALCTL = "/usr/bin/journalctl"


def json_lines(path):
    """Every line of path parsed; fails on any line that is not one JSON
    object (a value that broke its line shows up here)."""
    out = []
    raw = Path(path).read_bytes()
    assert raw.endswith(b"\n"), raw[-200:]
    for n, line in enumerate(raw.split(b"\n")[:-1]):
        doc = json.loads(line.decode("utf-8"))     # strict UTF-8 too
        assert isinstance(doc, dict), (n, line)
        out.append(doc)
    return out


def queue_id(reply):
    m = re.search(r"queued as ([0-9a-f]{16})$", reply)
    assert m, reply
    return m.group(1)


def test_json_lines_for_a_message_life(ternd, dnsmasq):
    a, b, dns = two_mtas(ternd, dnsmasq, {"log.format": "json"})
    qid = queue_id(submit(a, [BEN], msg("json-life")))
    wait_for(lambda: maildir_messages(b.state_dir, BEN), "delivery at B")
    wait_for(lambda: re.search(rf'"id":"{qid}","event":"removed"', a.log()),
             "the message's last line at A")
    lines = json_lines(a.log_path)
    for d in lines:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", d["ts"])
        assert d["level"] in ("debug", "info", "warn", "err"), d
        assert d["prog"] == "ternd" and isinstance(d["pid"], int), d
    mine = [d for d in lines if d.get("id") == qid]
    events = [d["event"] for d in mine]
    # received, tried, delivered, removed: every outcome carries the id
    for e in ("queued", "connect", "delivered", "removed"):
        assert e in events, events
    [q] = [d for d in mine if d["event"] == "queued"]
    assert q["from"] == f"<{CLAIRE}>" and q["rcpts"] == 1, q
    assert isinstance(q["size"], int) and q["size"] > 100, q
    [dl] = [d for d in mine if d["event"] == "delivered"]
    assert dl["to"] == f"<{BEN}>" and dl["code"] == 250, dl
    assert isinstance(dl["text"], str), dl

    # tern log ID: the same lines, from the file or stdin
    copy = world_tmpdir("tern-logs-") / "a.log"
    copy.write_bytes(a.log_path.read_bytes())
    copy.chmod(0o644)
    r = a.tern("log", qid, "--file", str(copy))
    got = r.stdout.decode().splitlines()
    assert len(got) == len(mine), (got, mine)
    assert all(json.loads(x)["id"] == qid for x in got)
    r = a.tern("log", qid, "--file", "-", input=a.log_path.read_bytes())
    assert r.stdout.decode().splitlines() == got
    # an id with no line, a bad id, no source
    r = a.tern("log", "0123456789abcdef", "--file", str(copy), check=False)
    assert r.returncode == 1 and r.stdout == b"", r
    r = a.tern("log", "../etc", "--file", str(copy), check=False)
    assert r.returncode == 64
    r = a.tern("log", qid, check=False)
    assert r.returncode == 64 and b"--file" in r.stderr, r

    # B logs key=value (the default): tern log reads those too
    m = re.search(r"id=([0-9a-f]{16}) sid=\S+ event=delivered", b.log())
    assert m, b.log()[-2000:]
    copy.write_bytes(b.log_path.read_bytes())
    r = b.tern("log", m.group(1), "--file", str(copy))
    out = r.stdout.decode().splitlines()
    assert out and all(f"id={m.group(1)} " in x for x in out), out


HOSTILE = [
    # a quoted local part: quotes, backslash, space (RFC 5321 4.1.2)
    b'"we\\"ird\\\\ one"@example.org',
    # UTF-8 (SMTPUTF8) and bytes that are not UTF-8
    "j\u00f6rg@example.org".encode(),
    b"\xff\xfe\x80x@example.org",
    b"a\x01b\x7fc@example.org",
]


def test_json_hostile_values(ternd):
    """Addresses and an EHLO from a client and a reply text from a next
    hop, with quotes, backslash, NUL, UTF-8 and bytes that are not UTF-8:
    each line stays one valid JSON object, the values decoded (U+FFFD for
    what is not UTF-8)."""
    # (the client refuses a reply with control bytes or NUL: those are
    # in test_logfmt's tables)
    peer = ReplyPeer(b'451 4.3.0 we"ird\\ \xff\xfe \xc3\xa9 end')
    peer.start()
    try:
        t = ternd({"log.format": "json", "relay.networks": "127.0.0.0/8",
                   "relay.smarthost": f"127.0.0.1:{peer.port}",
                   "queue.retry_first": "3600"})
        with t.client() as c:
            c.send(b'EHLO a"b\\c\x00d\xff\xc3\xa9\r\n')
            c.reply()
            c.ehlo()
            c.expect("MAIL FROM:<x@client.test> SMTPUTF8", 250)
            for addr in HOSTILE:
                c.send(b"RCPT TO:<" + addr + b">\r\n")
                c.reply()
            c.send(b"RSET\r\n")
            c.reply()
            c.expect("MAIL FROM:<x@client.test>", 250)
            c.expect("RCPT TO:<far@far.example>", 250)
            c.expect("DATA", 354)
            c.send(b"Subject: x\r\n\r\nbody\r\n.\r\n")
            assert c.reply().code == 250
            c.send(b"QUIT\r\n")
        wait_for(lambda: '"event":"deferred"' in t.log(), "the deferral")
    finally:
        peer.stop = True
    lines = json_lines(t.log_path)
    addrs = [d["addr"] for d in lines if d.get("event") == "reject"
             and "addr" in d]
    # the quote and backslash themselves, UTF-8 as UTF-8
    assert '"we\\"ird\\\\ one"@example.org' in addrs, addrs
    assert "j\u00f6rg@example.org" in addrs, addrs
    [d] = [d for d in lines if d.get("event") == "deferred"]
    text = d["text"]
    assert 'we"ird\\ ' in text, text
    assert "\ufffd\ufffd" in text and "\u00e9 end" in text, text
    assert d["code"] == 451 and d["enh"] == "4.3.0", d


class Receiver(threading.Thread):
    """A datagram socket the test binds, drained as datagrams come (a
    unix datagram socket queues only a few: a receiver that does not
    read makes the sender fall back to stderr, as it should)."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        os.chmod(path, 0o666)
        self.sock.settimeout(0.1)
        self.got = []
        self.done = False
        self.start()

    def run(self):
        while not self.done:
            try:
                self.got.append(self.sock.recv(65536))
            except socket.timeout:
                pass

    def wait(self, pred, t=None, timeout=10):
        deadline = time.monotonic() + timeout
        while not pred(self.got):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; got {self.got[-5:]!r}\n"
                                     f"{t.log()[-3000:] if t else ''}")
            time.sleep(0.05)
        return list(self.got)

    def close(self):
        self.done = True
        self.join()
        self.sock.close()


def journal_fields(dgram):
    """The native protocol: NAME=value\\n, or NAME\\n<le64 size>value\\n."""
    fields, i = [], 0
    while i < len(dgram):
        nl = dgram.index(b"\n", i)
        line = dgram[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            i = nl + 1
        else:
            k = line
            size = int.from_bytes(dgram[nl + 1:nl + 9], "little")
            v = dgram[nl + 9:nl + 9 + size]
            assert dgram[nl + 9 + size:nl + 10 + size] == b"\n"
            i = nl + 10 + size
        assert re.fullmatch(rb"[A-Z0-9_]+", k), k
        fields.append((k.decode(), v))
    return fields


def test_journald_native_protocol(ternd, tmp_path):
    """The datagrams, as a receiver of journald's protocol sees them."""
    d = world_tmpdir("tern-journal-")
    path = d / "socket"
    rx = Receiver(path)
    try:
        t = ternd({"log.target": "journald", "log.socket": str(path)})
        with t.client() as c:
            c.ehlo()
            c.expect("MAIL FROM:<x@client.test>", 250)
            c.send(b'RCPT TO:<"a\\"b"@example.org>\r\n')
            c.reply()
        got = rx.wait(lambda g: any(b"TERN_EVENT=reject" in x for x in g),
                      t=t)
    finally:
        rx.close()
    entries = [dict(journal_fields(x)) for x in got]
    for e in entries:
        assert e["SYSLOG_IDENTIFIER"] == b"ternd" and e["SYSLOG_FACILITY"] == b"2"
        assert e["PRIORITY"] in (b"3", b"4", b"6", b"7"), e
        assert e["MESSAGE"] and b"\n" not in e["MESSAGE"], e
    [rej] = [e for e in entries if e.get("TERN_EVENT") == b"reject"]
    # the value decoded: the quote itself, not \x22
    assert rej["TERN_ADDR"] == b'"a\\"b"@example.org', rej
    assert rej["TERN_CMD"] == b"rcpt" and rej["PRIORITY"] == b"6", rej
    assert b"event=reject" in rej["MESSAGE"], rej
    # the lines went to the journal, not to stderr
    assert "event=reject" not in t.log()


def test_journald_missing_falls_back_to_stderr(ternd):
    t = ternd({"log.target": "journald",
               "log.socket": "/nonexistent/tern-test/socket"})
    with t.client() as c:
        c.ehlo()
    log = t.log()
    assert len(re.findall(r"event=log_target_unavailable target=journald "
                          r"path=/nonexistent/tern-test/socket", log)) == 1, log
    assert "event=connect" in log and "event=disconnect" in log, log


def test_syslog_to_a_socket(ternd):
    d = world_tmpdir("tern-syslog-")
    path = d / "log"
    rx = Receiver(path)
    try:
        t = ternd({"log.target": "syslog", "log.socket": str(path),
                   "log.format": "json"})
        with t.client() as c:
            c.ehlo()
        got = rx.wait(lambda g: len(re.findall(rb'"event":"disconnect"',
                                               b"".join(g))) >= 2, t=t)
    finally:
        rx.close()
    for x in got:
        # RFC 3164: <PRI>Mmm dd hh:mm:ss ternd[pid]: body (mail facility)
        m = re.fullmatch(rb"<(\d+)>\w{3} [ \d]\d \d\d:\d\d:\d\d "
                         rb"ternd\[(\d+)\]: (.*)", x, re.S)
        assert m, x
        assert int(m.group(1)) // 8 == 2, x
        doc = json.loads(m.group(3))
        assert doc["prog"] == "ternd", doc
    assert "event=disconnect" not in t.log()


JOURNAL_NS = r"""
set -e
jdir=$1; pidfile=$2; shift 2
# a /run of our own: journald's sockets and its runtime journal; the
# journal's files are the test's directory, bound where journald keeps a
# volatile journal
mount -t tmpfs tmpfs /run
mkdir -p /run/systemd/journal /run/log/journal
mount --bind "$jdir" /run/log/journal
%s &
echo $! > "$pidfile"
i=0
while [ ! -S /run/systemd/journal/socket ] && [ $i -lt 100 ]; do
    sleep 0.05; i=$((i+1))
done
exec "$@"
""" % JOURNALD


class NsTernd(Ternd):
    """ternd started inside a mount namespace with its own journald."""

    def __init__(self, jdir, pidfile, *a, **kw):
        self.jdir, self.pidfile = jdir, pidfile
        super().__init__(*a, **kw)

    def argv(self):
        return (["unshare", "-m", "--propagation", "private", "sh", "-c",
                 JOURNAL_NS, "sh", str(self.jdir), str(self.pidfile)]
                + super().argv())


@pytest.mark.root
def test_journald_real(tmp_path, dnsmasq):
    """A real systemd-journald, private to the test: a message's story by
    `journalctl TERN_QUEUE_ID=...` (through `tern log ID`)."""
    if not (os.access(JOURNALD, os.X_OK) and os.access(JOURNALCTL, os.X_OK)):
        pytest.fail("systemd-journald or journalctl missing: install the "
                    "Debian package systemd (scripts/deps.sh lists it)",
                    pytrace=False)
    root = world_tmpdir("tern-jd-")
    jdir = root / "journal"
    jdir.mkdir()
    pidfile = root / "journald.pid"
    t = NsTernd(jdir, pidfile, root / "state", tmp_path / "ternd.log",
                {"log.target": "journald"},
                users=("ben@example.org",))
    try:
        t.start()
        with t.smtplib() as s:
            s.sendmail("x@client.test", ["ben@example.org"],
                       msg("journal").decode())
        wait_for(lambda: t.messages("ben@example.org"), "the delivery")
        assert t.stop() == 0
    finally:
        if t.proc is not None and t.proc.poll() is None:
            t.proc.kill()
        if pidfile.exists():
            try:
                os.kill(int(pidfile.read_text()), signal.SIGTERM)
            except ProcessLookupError:
                pass
    [mid] = [p for p in jdir.iterdir() if p.is_dir()]
    # the lines are in the journal, with their fields
    r = subprocess.run([JOURNALCTL, "--directory", str(mid), "-o", "json",
                        "TERN_EVENT=delivered"], capture_output=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    docs = [json.loads(x) for x in r.stdout.splitlines()]
    assert docs, r.stdout
    d = docs[-1]
    assert d["SYSLOG_IDENTIFIER"] == "ternd" and d["PRIORITY"] == "6", d
    assert d["TERN_TO"] == "<ben@example.org>", d
    assert "event=delivered" in d["MESSAGE"], d
    qid = d["TERN_QUEUE_ID"]
    assert re.fullmatch(r"[0-9a-f]{16}", qid), d
    # and `tern log ID` tells that message's story from the journal
    r = subprocess.run([str(TERN), "-o", f"state_dir={t.state_dir}",
                        "-o", "log.target=journald", "log", qid,
                        "--directory", str(mid)], capture_output=True,
                       timeout=30)
    assert r.returncode == 0, r
    out = r.stdout.decode()
    assert f"id={qid}" in out and "event=delivered" in out, out
    assert "ternd[" in out, out
