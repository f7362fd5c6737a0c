"""Milters (docs/milter.md): ternd against real milters written with
pymilter (Debian python3-milter, libmilter's protocol code), started by
the test on loopback (milterpeer.py).  One test per action, a milter that
is down (default_action both ways), one that hangs (timeouts), two in
order.  Every check reads what was delivered (or refused) and what the
milter says it was sent."""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import (PASSWORD, SLOW, free_port, submit_ternd, wait_for,
                      wait_port)

# python3-milter (scripts/deps.sh installs it): a missing module fails the
# file at collection, never skips it
import Milter  # noqa: F401

PEER = Path(__file__).resolve().parent / "milterpeer.py"
BEN, CLAIRE = "ben@example.org", "claire@example.org"


class Peer:
    def __init__(self, tmp, behaviour, n=0):
        self.port = free_port()
        self.spec = f"inet:127.0.0.1:{self.port}"
        self.log = Path(tmp) / f"milter{n}-{behaviour}.log"
        self.proc = subprocess.Popen(
            [sys.executable, str(PEER), f"inet:{self.port}@127.0.0.1",
             behaviour, str(self.log)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(Path(tmp) / f"milter{n}.err", "ab"))
        wait_port(self.port, 10 * SLOW, self.proc, "milterpeer").close()

    def lines(self):
        return self.log.read_text().splitlines() if self.log.exists() else []

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture
def milter(tmp_path):
    peers = []

    def start(behaviour):
        p = Peer(tmp_path, behaviour, len(peers))
        peers.append(p)
        return p
    yield start
    for p in peers:
        p.stop()


def server(ternd, specs, **over):
    o = {"milter.servers": ", ".join(specs), "spf.check": "no",
         "milter.command_timeout": "2", "milter.eom_timeout": "3",
         "milter.connect_timeout": "2"}
    o.update(over)
    return ternd(o)


MSG = (b"From: <alice@example.net>\r\nTo: <ben@example.org>\r\n"
       b"Subject: original subject\r\nX-Drop: remove me\r\n"
       b"Message-ID: <m1@example.net>\r\n\r\nthe original body\r\n")


def send(t, rcpts=(BEN,), content=MSG, sender="alice@example.net"):
    """One transaction; returns (replies to each RCPT, reply to the data)."""
    with t.client() as c:
        c.ehlo("client.test")
        c.expect(f"MAIL FROM:<{sender}>", 250)
        rr = [c.cmd(f"RCPT TO:<{r}>") for r in rcpts]
        if not any(r.code == 250 for r in rr):
            return rr, None
        c.expect("DATA", 354)
        c.send(content + b".\r\n")
        rep = c.reply(timeout=20 * SLOW)
        c.cmd("QUIT")
        return rr, rep


def delivered(t, addr=BEN, n=1, folder=None):
    if folder is None:
        files = wait_for(lambda: len(t.files(addr)) >= n and t.files(addr),
                         f"a message for {addr}")
        return files[-1].read_bytes()
    local, dom = addr.split("@")
    d = t.state_dir / "mail" / dom / local / folder / "new"
    files = wait_for(lambda: d.is_dir() and sorted(d.iterdir()),
                     f"the message in {folder}")
    return files[-1].read_bytes()


def head(data):
    return data.split(b"\r\n\r\n", 1)[0].decode()


def body(data):
    return data.split(b"\r\n\r\n", 1)[1]


def test_sees_session_and_macros(ternd, milter):
    m = milter("addheader")
    t = server(ternd, [m.spec])
    rr, rep = send(t)
    assert rep.code == 250, rep
    data = delivered(t)
    h = head(data)
    assert "X-Milter: added" in h, h
    log = m.lines()
    conn = next(x for x in log if x.startswith("connect"))
    assert "addr=127.0.0.1" in conn and "{client_addr}=127.0.0.1" in conn
    assert "j=mx.test" in conn and "{daemon_name}=ternd" in conn
    assert any(x.startswith("helo client.test") for x in log), log
    mail = next(x for x in log if x.startswith("mail "))
    assert mail.startswith("mail <alice@example.net>"), mail
    assert "{mail_addr}=alice@example.net" in mail and " i=" in mail
    rcpt = next(x for x in log if x.startswith("rcpt "))
    assert "{rcpt_addr}=ben@example.org" in rcpt, rcpt
    assert "header Subject: original subject" in log, log
    assert "eoh" in log
    eom = next(x for x in log if x.startswith("eom "))
    assert f"body={len(b'the original body' + chr(13).encode() + chr(10).encode())}" in eom, eom
    # the queue id the milter saw is the one in the Received field
    qid = mail.split(" i=")[1].split()[0]
    assert f"id {qid}" in " ".join(h.split()), (qid, h)


def test_two_messages_one_session(ternd, milter):
    # accept at MAIL spares the milter the first message only: the second
    # one of the same session is filtered again
    m = milter("accept_first_mail")
    t = server(ternd, [m.spec])
    with t.client() as c:
        c.ehlo("client.test")
        for i in (1, 2):
            c.expect("MAIL FROM:<alice@example.net>", 250)
            c.expect(f"RCPT TO:<{BEN}>", 250)
            c.expect("DATA", 354)
            c.send(MSG.replace(b"original subject", b"msg %d" % i) +
                   b".\r\n")
            assert c.reply(timeout=20 * SLOW).code == 250
        c.cmd("QUIT")
    files = wait_for(lambda: len(t.files(BEN)) == 2 and t.files(BEN),
                     "two messages")
    first, second = (head(f.read_bytes()) for f in files)
    assert "msg 1" in first and "X-Milter" not in first, first
    assert "msg 2" in second and "X-Milter: added" in second, second
    assert len([x for x in m.lines() if x.startswith("mail ")]) == 2


def test_submission_port_auth_and_tls_macros(ternd, milter):
    import base64
    m = milter("addheader")
    t = submit_ternd(ternd, {"milter.servers": m.spec, "spf.check": "no"})
    with t.sub_client() as c:
        tok = base64.b64encode(f"\0{BEN}\0{PASSWORD}".encode()).decode()
        c.expect(f"AUTH PLAIN {tok}", 235)
        c.expect(f"MAIL FROM:<{BEN}>", 250)
        c.expect(f"RCPT TO:<{CLAIRE}>", 250)
        c.expect("DATA", 354)
        c.send(MSG.replace(b"alice@example.net", BEN.encode()) + b".\r\n")
        assert c.reply(timeout=20 * SLOW).code == 250
        c.cmd("QUIT")
    h = head(delivered(t, CLAIRE))
    assert "X-Milter: added" in h, h
    log = m.lines()
    helo = [x for x in log if x.startswith("helo ")]
    assert any("{tls_version}=TLSv1." in x for x in helo), helo
    mail = next(x for x in log if x.startswith("mail "))
    assert f"{{auth_authen}}={BEN}" in mail, mail


BIG = MSG.replace(b"the original body\r\n",
                  (b"x" * 998 + b"\r\n") * 150)      # 150000 octets


@pytest.mark.parametrize("behaviour,seen", [
    ("addheader", 150000),      # every chunk, each answered
    ("noreply", 150000),        # SMFIP_NR_*: nothing awaited
    ("skip_body", 65535),       # SMFIR_SKIP after the first chunk
])
def test_body_chunks(ternd, milter, behaviour, seen):
    m = milter(behaviour)
    t = server(ternd, [m.spec], **{"log.level": "debug"})
    rr, rep = send(t, content=BIG)
    assert rep.code == 250, rep
    data = delivered(t)
    assert "X-Milter" in head(data) and len(body(data)) == 150000
    proto = int(re.search(r"event=milter_ready .* protocol=0x([0-9a-f]+)",
                          t.log()).group(1), 16)
    nr = 0x80 | 0x40000 | 0x80000           # SMFIP_NR_HDR, NR_EOH, NR_BODY
    assert (proto & nr == nr) == (behaviour == "noreply"), hex(proto)
    eom = next(x for x in m.lines() if x.startswith("eom "))
    assert f"body={seen} " in eom, eom
    assert sum(x.startswith("header ") for x in m.lines()) == 5


def test_reject_at_rcpt_with_its_text(ternd, milter):
    m = milter("reject_rcpt")
    t = server(ternd, [m.spec])
    rr, rep = send(t, rcpts=(CLAIRE, BEN))
    assert rr[0].code == 550 and rr[0].enh == "5.7.1", rr[0]
    assert "Claire takes no mail from milters" in rr[0].text, rr[0]
    assert rr[1].code == 250
    assert rep.code == 250
    delivered(t, BEN)
    assert t.files(CLAIRE) == []
    assert "event=reject cmd=rcpt code=550" in t.log()


def test_tempfail_at_mail(ternd, milter):
    m = milter("tempfail_mail")
    t = server(ternd, [m.spec])
    with t.client() as c:
        c.ehlo("client.test")
        r = c.cmd("MAIL FROM:<alice@example.net>")
        assert r.code == 451 and r.enh == "4.7.1", r


def test_reject_at_eom(ternd, milter):
    m = milter("reject_eom")
    t = server(ternd, [m.spec])
    rr, rep = send(t)
    assert rep.code == 554 and "Looks like spam to me" in rep.text, rep
    time.sleep(0.5)
    assert t.files(BEN) == []


def test_discard(ternd, milter):
    m = milter("discard")
    t = server(ternd, [m.spec])
    rr, rep = send(t)
    assert rep.code == 250, rep
    wait_for(lambda: "event=milter_discard" in t.log(), "the discard line")
    assert t.files(BEN) == []


def test_change_and_delete_header(ternd, milter):
    m = milter("chgheader")
    t = server(ternd, [m.spec])
    assert send(t)[1].code == 250
    h = head(delivered(t))
    assert "Subject: changed by the milter" in h, h
    assert "original subject" not in h and "X-Drop" not in h, h
    assert "Message-ID: <m1@example.net>" in h


def test_replace_body(ternd, milter):
    m = milter("replbody")
    t = server(ternd, [m.spec])
    assert send(t)[1].code == 250
    data = delivered(t)
    assert body(data) == b"the milter's body\r\nline two\r\n", data
    assert "Subject: original subject" in head(data)


def test_delete_recipient(ternd, milter):
    m = milter("delrcpt")
    t = server(ternd, [m.spec])
    rr, rep = send(t, rcpts=(BEN, CLAIRE))
    assert [r.code for r in rr] == [250, 250] and rep.code == 250
    delivered(t, BEN)
    time.sleep(0.5)
    assert t.files(CLAIRE) == []
    assert "event=milter_delrcpt to=<claire@example.org> removed=1" in t.log()


def test_add_recipient(ternd, milter):
    m = milter("addrcpt")
    t = server(ternd, [m.spec])
    rr, rep = send(t, rcpts=(BEN,))
    assert rep.code == 250
    delivered(t, BEN)
    data = delivered(t, CLAIRE)
    assert b"the original body" in data
    log = t.log()
    assert "event=milter_addrcpt to=<claire@example.org> result=added" in log
    # an unknown local user is not added (and nothing bounces)
    assert "event=milter_addrcpt to=<nobody@example.org> result=refused" \
        in log


def test_quarantine_into_junk(ternd, milter):
    m = milter("quarantine")
    t = server(ternd, [m.spec])
    assert send(t)[1].code == 250
    data = delivered(t, folder=".Junk")
    assert b"the original body" in data
    assert t.files(BEN) == []


def test_change_from(ternd, milter):
    m = milter("chgfrom")
    t = server(ternd, [m.spec])
    assert send(t)[1].code == 250
    data = delivered(t)
    assert data.startswith(b"Return-Path: <bounces@example.net>\r\n"), data[:80]


def test_two_milters_in_order(ternd, milter):
    a, b = milter("addheader:first"), milter("addheader:second")
    t = server(ternd, [a.spec, b.spec])
    assert send(t)[1].code == 250
    h = head(delivered(t))
    assert h.index("X-Milter: first") < h.index("X-Milter: second"), h


def test_first_refuses_second_never_asked(ternd, milter):
    a, b = milter("reject_rcpt"), milter("addheader")
    t = server(ternd, [a.spec, b.spec])
    rr, rep = send(t, rcpts=(CLAIRE, BEN))
    assert rr[0].code == 550 and rep.code == 250
    rcpts = [x for x in b.lines() if x.startswith("rcpt ")]
    assert len(rcpts) == 1 and "ben@example.org" in rcpts[0], b.lines()


def test_down_tempfail(ternd):
    t = server(ternd, [f"inet:127.0.0.1:{free_port()}"])
    with t.client() as c:
        r = c.cmd("EHLO client.test")
        assert r.code == 451 and r.enh == "4.7.1", r
    assert "event=milter_failed" in t.log() and "action=tempfail" in t.log()


def test_down_accept(ternd):
    t = server(ternd, [f"inet:127.0.0.1:{free_port()}"],
               **{"milter.default_action": "accept"})
    assert send(t)[1].code == 250
    data = delivered(t)
    assert b"the original body" in data
    assert "action=accept" in t.log()


def test_hang_times_out(ternd, milter):
    m = milter("hang_mail")
    t = server(ternd, [m.spec], **{"milter.command_timeout": "1"})
    with t.client() as c:
        c.ehlo("client.test")
        t0 = time.monotonic()
        r = c.cmd("MAIL FROM:<alice@example.net>", timeout=10 * SLOW)
        took = time.monotonic() - t0
        assert r.code == 451 and r.enh == "4.7.1", r
        assert 0.9 < took < 5 * SLOW, took
    assert "error=timeout" in t.log()


def test_hang_at_eom_accept(ternd, milter):
    m = milter("hang_eom")
    t = server(ternd, [m.spec], **{"milter.eom_timeout": "1",
                                   "milter.default_action": "accept"})
    rr, rep = send(t)
    assert rep.code == 250, rep
    data = delivered(t)
    assert b"the original body" in data and b"X-Milter" not in data
    assert "stage=eom error=timeout action=accept" in t.log()


def test_unix_socket(ternd, milter, tmp_path):
    # the same milter over a unix socket: a world-writable directory, as
    # ternd may run as another user
    d = Path(tmp_path) / "sock"
    d.mkdir()
    d.chmod(0o777)
    sock = d / "m.sock"
    log = Path(tmp_path) / "unix.log"
    proc = subprocess.Popen(
        [sys.executable, str(PEER), f"unix:{sock}", "addheader:unix",
         str(log)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: sock.exists(), "the milter's socket")
        sock.chmod(0o777)
        t = server(ternd, [f"unix:{sock}"])
        assert send(t)[1].code == 250
        assert "X-Milter: unix" in head(delivered(t))
    finally:
        proc.kill()
        proc.wait()


# ---------------------------------------------------------------------------
# a milter that misbehaves: a raw socket peer, scripted per packet
# ---------------------------------------------------------------------------

import socket
import struct
import threading


def pkt(cmd, data=b""):
    return struct.pack(">I", len(data) + 1) + cmd + data


class RawPeer:
    """Negotiates like libmilter (version 6, every action, every step
    answered), continues every step, and at the end of message sends
    `eom` (bytes) and then closes, or stays silent when eom is None."""

    def __init__(self, eom, at="E", actions=0x1ff):
        self.eom, self.at, self.actions = eom, at, actions
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(8)
        self.spec = f"inet:127.0.0.1:{self.srv.getsockname()[1]}"
        self.seen = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                s, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self.one, args=(s,), daemon=True).start()

    def one(self, s):
        f = s.makefile("rb")
        try:
            while True:
                h = f.read(4)
                if len(h) < 4:
                    return
                data = f.read(struct.unpack(">I", h)[0])
                cmd = data[:1].decode()
                self.seen.append(cmd)
                if cmd == "O":
                    s.sendall(pkt(b"O", struct.pack(">III", 6, self.actions, 0)))
                elif cmd == self.at:
                    if self.eom is not None:
                        s.sendall(self.eom)
                        s.shutdown(socket.SHUT_RDWR)
                        s.close()
                        return
                elif cmd in "CHMRTLNBE":
                    s.sendall(pkt(b"c"))
        except OSError:
            pass

    def close(self):
        self.srv.close()


@pytest.fixture
def raw():
    peers = []

    def make(*a, **kw):
        p = RawPeer(*a, **kw)
        peers.append(p)
        return p
    yield make
    for p in peers:
        p.close()


def test_garbage_half_edit_then_close_tempfail(ternd, raw):
    # an added header, then the connection closes: 451, nothing stored
    p = raw(pkt(b"h", b"X-Half\0edited\0"))
    t = server(ternd, [p.spec])
    rr, rep = send(t)
    assert rep.code == 451 and rep.enh == "4.7.1", rep
    time.sleep(0.5)
    assert t.files(BEN) == []
    assert "stage=eom error=closed action=tempfail" in t.log()


def test_garbage_half_edit_accept_drops_its_edits(ternd, raw, milter):
    # default accept: stored, without the failed milter's half edit, with
    # the edits of the good milter after it
    p = raw(pkt(b"h", b"X-Half\0edited\0") + pkt(b"Z"))
    good = milter("addheader:good")
    t = server(ternd, [p.spec, good.spec],
               **{"milter.default_action": "accept"})
    rr, rep = send(t)
    assert rep.code == 250, rep
    h = head(delivered(t))
    assert "X-Half" not in h and "X-Milter: good" in h, h
    assert "error=malformed_reply action=accept" in t.log()


def test_garbage_too_long_packet(ternd, raw):
    p = raw(struct.pack(">I", 0x7fffffff) + b"h", at="M")
    t = server(ternd, [p.spec])
    with t.client() as c:
        c.ehlo("client.test")
        r = c.cmd("MAIL FROM:<alice@example.net>")
        assert r.code == 451, r
        # the session stays refused: the milter is gone, tempfail
        r = c.cmd("MAIL FROM:<alice@example.net>")
        assert r.code == 451, r
    assert "error=packet_length" in t.log()


def test_garbage_action_not_negotiated(ternd, raw):
    # negotiated no action, then asks to add a header: not done, 451
    p = raw(pkt(b"h", b"X-Sneaky\0yes\0") + pkt(b"c"), actions=0)
    t = server(ternd, [p.spec])
    rr, rep = send(t)
    assert rep.code == 451, rep
    time.sleep(0.5)
    assert t.files(BEN) == []
    assert "error=unexpected_reply_addheader" in t.log()


def test_garbage_bad_replycode(ternd, raw):
    p = raw(pkt(b"y", b"250 all fine\0"), at="R")
    t = server(ternd, [p.spec])
    with t.client() as c:
        c.ehlo("client.test")
        c.expect("MAIL FROM:<alice@example.net>", 250)
        r = c.cmd(f"RCPT TO:<{BEN}>")
        assert r.code == 451 and r.enh == "4.7.1", r
    assert "error=malformed_reply" in t.log()


def test_reply_text_cannot_inject_lines(ternd, raw):
    p = raw(pkt(b"y", b"550 5.7.1 no\r\n250 2.0.0 injected\0"), at="R")
    t = server(ternd, [p.spec])
    with t.client() as c:
        c.ehlo("client.test")
        c.expect("MAIL FROM:<alice@example.net>", 250)
        r = c.cmd(f"RCPT TO:<{BEN}>")
        assert r.code == 550 and r.enh == "5.7.1", r
        assert "injected" not in r.text, r
        c.expect("NOOP", 250)


# ---------------------------------------------------------------------------
# rspamd (Debian rspamd 3.4) in milter mode, the proxy scanning itself:
# a minimal local configuration, no Redis, DNS pointed at a closed port
# on loopback so nothing leaves the machine.  The configuration is shared
# with bench/run.sh (scenario K): tests/e2e/rspamd/.
# ---------------------------------------------------------------------------

RSPAMD_DIR = Path(__file__).resolve().parent / "rspamd"


def rspamd_config(d, port, count=1):
    """Writes the shared template into D for a proxy on 127.0.0.1:PORT;
    D is also its LOCAL_CONFDIR (local.d/: the DNS lists off)."""
    conf = (RSPAMD_DIR / "rspamd.conf").read_text()
    conf = conf.replace("@PORT@", str(port)).replace("@COUNT@", str(count))
    assert "@" not in conf, conf
    (d / "rspamd.conf").write_text(conf)
    shutil.copyfile(RSPAMD_DIR / "options-override.inc",
                    d / "options-override.inc")
    shutil.copytree(RSPAMD_DIR / "local.d", d / "local.d")


GTUBE = b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


@pytest.fixture(scope="module")
def rspamd(tmp_path_factory):
    exe = shutil.which("rspamd") or "/usr/bin/rspamd"
    if not os.access(exe, os.X_OK):
        pytest.fail("rspamd not found: install the Debian package 'rspamd'",
                    pytrace=False)
    d = tmp_path_factory.mktemp("rspamd")
    port = free_port()
    rspamd_config(d, port)
    args = [exe, "-f", "-c", str(d / "rspamd.conf"), f"--var=RUNDIR={d}",
            f"--var=DBDIR={d}", f"--var=LOGDIR={d}",
            f"--var=LOCAL_CONFDIR={d}"]
    if os.geteuid() == 0:
        args += ["-u", "nobody", "-g", "nogroup"]
        os.chmod(d, 0o777)
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                            stdout=open(d / "out.txt", "ab"),
                            stderr=subprocess.STDOUT, cwd=str(d))
    try:
        wait_port(port, 120 * SLOW, proc, "rspamd").close()
        yield f"inet:127.0.0.1:{port}", d
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def rspamd_msg(text):
    return (b"From: <alice@example.net>\r\nTo: <ben@example.org>\r\n"
            b"Subject: hello\r\nDate: Sun, 06 Dec 2026 23:00:00 +0000\r\n"
            b"Message-ID: <r1@example.net>\r\n\r\n" + text + b"\r\n")


def test_rspamd_gtube_rejected_with_its_text(ternd, rspamd):
    spec, d = rspamd
    t = server(ternd, [spec], **{"milter.eom_timeout": "30",
                                 "milter.command_timeout": "30"})
    rr, rep = send(t, content=rspamd_msg(GTUBE))
    assert rep.code == 554 and rep.enh == "5.7.1", rep
    # rspamd's own text for its GTUBE rule, passed through
    assert rep.text.endswith("5.7.1 Gtube pattern"), rep
    time.sleep(0.5)
    assert t.files(BEN) == []


def test_rspamd_add_header_and_rewrite_subject(ternd, rspamd):
    spec, d = rspamd
    t = server(ternd, [spec], **{"milter.eom_timeout": "30",
                                 "milter.command_timeout": "30"})
    rr, rep = send(t, content=rspamd_msg(GTUBE.replace(b"XJS", b"YJS", 1)))
    assert rep.code == 250, rep
    h = head(delivered(t))
    assert "\r\nX-Spam: Yes" in h, h
    rr, rep = send(t, content=rspamd_msg(GTUBE.replace(b"XJS", b"ZJS", 1)))
    assert rep.code == 250, rep
    h = head(delivered(t, n=2))
    subj = [ln for ln in h.split("\r\n") if ln.lower().startswith("subject:")]
    assert subj == ["Subject: *** SPAM *** hello"], h


# ---------------------------------------------------------------------------
# OpenDKIM (Debian opendkim) as the second milter, after rspamd: it signs
# mail from 127.0.0.1 for example.org, and dkimpy verifies what ternd
# stored with the key OpenDKIM's own keygen made.
# ---------------------------------------------------------------------------

@pytest.fixture
def opendkim(tmp_path):
    exe = "/usr/sbin/opendkim"
    if not os.access(exe, os.X_OK):
        pytest.fail("opendkim not found: install the Debian package "
                    "'opendkim'", pytrace=False)
    d = tmp_path / "opendkim"
    d.mkdir()
    subprocess.run(["opendkim-genkey", "-b", "2048", "-D", str(d), "-d",
                    "example.org", "-s", "odk"], check=True)
    port = free_port()
    # RequireSafeKeys false: the key is under pytest's /tmp, which
    # OpenDKIM's path check refuses (others can write /tmp)
    (d / "opendkim.conf").write_text(
        f"Mode s\nRequireSafeKeys false\nDomain example.org\n"
        f"Selector odk\n"
        f"KeyFile {d}/odk.private\nSocket inet:{port}@127.0.0.1\n"
        f"Background no\nCanonicalization relaxed/simple\n"
        f"SignatureAlgorithm rsa-sha256\nInternalHosts 127.0.0.1\n"
        f"PidFile {d}/opendkim.pid\nSyslog no\nUMask 007\n")
    proc = subprocess.Popen([exe, "-f", "-x", str(d / "opendkim.conf")],
                            stdin=subprocess.DEVNULL,
                            stdout=open(d / "out.txt", "ab"),
                            stderr=subprocess.STDOUT)
    try:
        wait_port(port, 30 * SLOW, proc, "opendkim").close()
        txt = (d / "odk.txt").read_text()
        record = "".join(re.findall(r'"([^"]*)"', txt))
        yield f"inet:127.0.0.1:{port}", {"odk._domainkey.example.org": record}
    finally:
        proc.terminate()
        proc.wait()


def test_rspamd_then_opendkim_signs(ternd, rspamd, opendkim):
    import dkim
    (rs, _), (odk, zone) = rspamd, opendkim
    t = server(ternd, [rs, odk], **{"milter.eom_timeout": "30",
                                    "milter.command_timeout": "30"})
    content = (b"From: <claire@example.org>\r\nTo: <ben@example.org>\r\n"
               b"Subject: signed by a milter\r\n"
               b"Date: Sun, 06 Dec 2026 23:00:00 +0000\r\n"
               b"Message-ID: <odk1@example.org>\r\n\r\n"
               b"Hello,  from   OpenDKIM.\r\n\r\n")
    rr, rep = send(t, content=content, sender="claire@example.org")
    assert rep.code == 250, rep
    raw = delivered(t)
    assert b"DKIM-Signature:" in raw and b"s=odk" in raw, raw[:1500]

    def dnsfunc(name, timeout=5):
        return zone.get(name.decode().rstrip(".").lower(), "").encode() \
            or None
    assert dkim.verify(raw, dnsfunc=dnsfunc), raw[:2000]
    # a byte changed in the body: the signature no longer holds
    bad = raw.replace(b"from   OpenDKIM", b"from   OpenDKIN")
    assert not dkim.verify(bad, dnsfunc=dnsfunc)
