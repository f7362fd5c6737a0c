"""Hostile input that targets what lies behind the protocol (issue: tern
survives the internet; docs/security.md): shell metacharacters in
addresses (CVE-2020-7247), record separators in text that reaches the
queue (CVE-2020-8794), symlinks planted in the spool (CVE-2008-2936)."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import SLOW, check, free_port, wait_for
from fakepeer import FakePeer

# A quoted local part (legal: RFC 5321 4.1.2 qtext) full of shell syntax.
# ternd's cwd is its state_dir: a shell would create pwned* there.
SHELLY = '"a;touch pwned1;$(touch pwned2)`touch pwned3`|touch pwned4"'
SHELLY_SENDER = SHELLY + "@example.com"


def pwned(t):
    return sorted(p.name for p in Path(t.state_dir).rglob("pwned*"))


def test_shell_metacharacters_are_only_data(ternd):
    """The sender reaches the Maildir (Return-Path) and the queue exactly as
    sent, and nothing ran it."""
    dead = free_port()
    t = ternd({"relay.networks": "127.0.0.0/8", "relay.smarthost": f"127.0.0.1:{dead}",
               "queue.retry_first": "3600"})
    with t.client() as c:
        c.ehlo()
        c.expect(f"MAIL FROM:<{SHELLY_SENDER}>", 250)
        c.expect("RCPT TO:<ben@example.org>", 250)
        c.expect(f"RCPT TO:<{SHELLY}@example.com>", 250)
        c.expect("DATA", 354)
        c.send(b"Subject: $(reboot)\r\n\r\n`reboot`\r\n.\r\n")
        check(c.reply(), 250)
    [d] = t.messages("ben@example.org")
    assert d.return_path == SHELLY_SENDER
    [m] = wait_for(lambda: t.queue_list(), "the relayed copy in the queue")
    assert m["sender"] == SHELLY_SENDER, m
    assert [r["addr"] for r in m["recipients"]] == [f"{SHELLY}@example.com"], m
    # through a restart: the envelope decodes to the same values
    t.stop()
    t.start()
    [m2] = t.queue_list()
    assert (m2["sender"], [r["addr"] for r in m2["recipients"]]) == \
        (m["sender"], [r["addr"] for r in m["recipients"]])
    assert pwned(t) == []


class EvilPeer(FakePeer):
    """A smarthost whose RCPT reply is a multi-line 451 carrying envelope
    records, the way CVE-2020-8794 smuggled a record into OpenSMTPD's queue."""

    TEXT = [b"451-4.7.1 E 1", b"451-4.7.1 r mallory@evil.example - - - PENDING 0 0 0 0 - -",
            b"451-4.7.1 \\x0aE 1\\", b"451 4.7.1 greylisted\tI 0000000000000000 E 1"]

    def __init__(self):
        super().__init__(backlog=8)
        self.rcpts = 0

    def session(self, s):
        f = s.makefile("rb")
        s.sendall(b"220 evil.example ESMTP\r\n")
        for line in f:
            verb = line[:4].upper()
            if verb == b"EHLO":
                s.sendall(b"250-evil.example\r\n250 ENHANCEDSTATUSCODES\r\n")
            elif verb == b"MAIL":
                s.sendall(b"250 2.1.0 ok\r\n")
            elif verb == b"RCPT":
                self.rcpts += 1
                s.sendall(b"\r\n".join(self.TEXT) + b"\r\n")
            elif verb == b"QUIT":
                s.sendall(b"221 bye\r\n")
                return
            else:
                s.sendall(b"503 5.5.1 no\r\n")



def test_remote_reply_cannot_inject_queue_records(ternd):
    peer = EvilPeer()
    peer.start()
    try:
        t = ternd({"relay.networks": "127.0.0.0/8",
                   "relay.smarthost": f"127.0.0.1:{peer.port}",
                   "queue.retry_first": "3600"})
        rep = t.send_raw("claire@example.org", ["bob@example.com"],
                         b"Subject: to the evil peer\r\n\r\nx\r\n")
        check(rep, 250)

        def tried():
            q = t.queue_list()
            return q if q and q[0]["recipients"][0].get("code") == 451 else None
        [m] = wait_for(tried, "the 451 recorded in the queue", timeout=20)
        t.stop()
        t.start()
        [m2] = t.queue_list()
        for msg in (m, m2):
            assert [r["addr"] for r in msg["recipients"]] == ["bob@example.com"], msg
            assert msg["recipients"][0]["state"] == "PENDING", msg
        corrupt = Path(t.state_dir) / "queue" / "corrupt"
        assert not corrupt.is_dir() or list(corrupt.iterdir()) == []
        text = m2["recipients"][0].get("text", "")
        print(f"recorded reply text: {text!r}")
        assert "greylisted" in text, m2
    finally:
        peer.close()


# -- symlinks planted in the spool ---------------------------------------------------------

def test_symlinked_maildir_is_not_followed(ternd, world_tmp):
    t = ternd()
    outside = Path(world_tmp) / "outside"
    outside.mkdir()
    os.chmod(outside, 0o777)
    box = Path(t.state_dir) / "mail" / "example.org" / "ben"
    (box / "new").rmdir()
    (box / "new").symlink_to(outside)
    claire = Path(t.state_dir) / "mail" / "example.org" / "claire"
    for sub in ("new", "cur", "tmp"):
        (claire / sub).rmdir()
    claire.rmdir()
    claire.symlink_to(outside)
    for rcpt in ("ben@example.org", "claire@example.org"):
        with t.client() as c:
            c.ehlo()
            c.expect("MAIL FROM:<x@example.com>", 250)
            c.expect(f"RCPT TO:<{rcpt}>", 250)
            c.expect("DATA", 354)
            c.send(b"Subject: through a symlink?\r\n\r\nx\r\n.\r\n")
            r = c.reply()
        assert r.code == 451, (rcpt, r)
    assert list(outside.iterdir()) == []
    assert list((box / "tmp").iterdir()) == []
    # the other users are not affected
    check(t.send_raw("x@example.com", ["dave@example.net"], b"Subject: ok\r\n\r\nx\r\n"), 250)


def test_symlinked_queue_refused_at_start(ternd, world_tmp):
    t = ternd(start=False)
    outside = Path(world_tmp) / "outside"
    outside.mkdir()
    os.chmod(outside, 0o777)
    q = Path(t.state_dir) / "queue"
    if q.exists():
        shutil.rmtree(q)
    q.symlink_to(outside)
    env = dict(os.environ)
    env.pop("TERN_CONFIG", None)
    r = subprocess.run(t.argv(), capture_output=True, timeout=20 * SLOW,
                       cwd=str(t.state_dir), env=env, stdin=subprocess.DEVNULL)
    print(r.stderr.decode(errors="replace")[-500:])
    assert r.returncode != 0, "ternd started on a symlinked queue"
    assert b"step=queue" in r.stderr, r.stderr[-500:]
    assert list(outside.iterdir()) == []


# -- HELO/EHLO text cannot forge Received: (issue 11 item 6) ----------------

# Each would put attacker text into the from clause of Received: a fake
# TCP-info comment, a second clause, a field separator, 8-bit bytes, a
# general address literal whose content holds "(" and ";".
HOSTILE_HELO = [
    b"evil.example (forged.example [10.0.0.1])",
    b"evil.example(forged)",
    b"evil.example; by trusted.example",
    b"evil.example by trusted.example with ESMTP id 1",
    b"\"quoted\".example",
    b"\xc3\xa9vil.example",
    b"[x-tag:(by;trusted)]",
    b"[192.0.2.1](forged)",
    b"not_a!valid*name",
]


def test_hostile_helo_refused_and_never_in_received(ternd):
    """A HELO/EHLO that is not a domain or an IPv4/IPv6 literal gets 501
    5.5.2; the session goes on, and the stored Received: field carries the
    name that was accepted and nothing of the refused ones."""
    t = ternd({"limits.errors": "100"})
    rcpt = "ben@example.org"
    with t.client() as c:
        for name in HOSTILE_HELO:
            for verb in (b"EHLO ", b"HELO "):
                c.send(verb + name + b"\r\n")
                check(c.reply(), 501, "5.5.2", (verb + name).decode("utf-8", "replace"))
        # refused names leave no session name: MAIL still needs HELO/EHLO
        c.expect("MAIL FROM:<claire@example.com>", 503, "5.5.1")
        c.expect("EHLO DESKTOP_7.corp.example", 250)
        c.expect("EHLO [IPv6:::1]", 250)
        c.send(b"EHLO " + HOSTILE_HELO[0] + b"\r\n")
        check(c.reply(), 501, "5.5.2")
        c.expect("MAIL FROM:<claire@example.com>", 250)
        c.expect(f"RCPT TO:<{rcpt}>", 250)
        c.expect("DATA", 354)
        c.send(b"Subject: trace\r\n\r\nx\r\n.\r\n")
        check(c.reply(), 250)
    [d] = t.messages(rcpt)
    print(f"stored: {d.received_raw!r}")
    # the last accepted name, then our own TCP-info comment, nothing else
    assert d.received_raw.startswith(b"Received: from [IPv6:::1] ([127.0.0.1])\r\n\tby mx.test"), \
        d.received_raw
    for name in HOSTILE_HELO:
        assert name not in d.data, name
    assert b"forged" not in d.data and b"trusted" not in d.data
    assert d.data.count(b"\r\nReceived:") == 1


# -- a BDAT line that cannot be parsed: its chunk is never commands (item 9) --

def bdat_ready(c, rcpt="ben@example.org"):
    c.ehlo()
    c.expect("MAIL FROM:<claire@example.com>", 250)
    c.expect(f"RCPT TO:<{rcpt}>", 250)


def test_bdat_trailing_space_chunk_is_data(ternd):
    """RFC 3030 with a trailing space after the size, and leading zeros:
    the octets after the line are the chunk, never a command."""
    t = ternd()
    rcpt = "ben@example.org"
    with t.client() as c:
        bdat_ready(c, rcpt)
        c.send(b"BDAT 6 \r\nNOOP\r\n")
        r = c.reply()
        check(r, 250, "2.0.0", "BDAT 6 with a trailing space")
        assert "6 octets" in r.text, r
        c.send(b"BDAT 0017  LAST  \r\nMAIL FROM:<a@b>\r\n")
        check(c.reply(), 250, "2.0.0", "BDAT 0017 LAST")
        c.no_reply(0.3)               # a 250/503 here means NOOP or MAIL ran
    [d] = t.messages(rcpt)
    assert d.body == b"NOOP\r\nMAIL FROM:<a@b>\r\n", d.body


@pytest.mark.parametrize("line", [b"BDAT x6", b"BDAT 6 FIRST", b"BDAT -6",
                                  b"BDAT 99999999999999999999",
                                  b"BDAT 6" + b" " * 600])
def test_bdat_unparsable_closes_connection(ternd, line):
    """After a BDAT line it cannot parse the server cannot know where the
    chunk ends: 5xx, then 421, then the connection closes.  A transaction
    smuggled after it is never executed."""
    t = ternd()
    rcpt = "ben@example.org"
    smuggled = (b"MAIL FROM:<mallory@evil.example>\r\nRCPT TO:<" + rcpt.encode() +
                b">\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\nQUIT\r\n")
    with t.client() as c:
        c.ehlo()
        c.send(line + b"\r\n" + smuggled)
        r = c.reply()
        assert r.code in (500, 501), r
        r = c.reply()
        check(r, 421, "4.5.0", "after the refused BDAT")
        c.wait_closed()
    assert t.messages(rcpt) == []
    # ternd goes on serving
    with t.client() as c:
        bdat_ready(c, rcpt)
        c.send(b"BDAT 3 LAST\r\nx\r\n")
        check(c.reply(), 250)
