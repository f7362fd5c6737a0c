"""Hostile and broken clients: smuggling, oversized lines, floods, stalls."""

import time

import pytest

from conftest import SLOW, ServerClosed, SMTPClient, check

SMUGGLE_USERS = ("ben@example.org", "victim@example.org")


@pytest.fixture(scope="module")
def t(ternd_module):
    """Shared instance for tests that deliver nothing on success."""
    return ternd_module({"limits.message_size": "20000"},
                        users=SMUGGLE_USERS + ("carol@example.org",))


def assert_empty(t, *addrs):
    for a in addrs:
        assert t.files(a) == [], f"{a} received {t.files(a)}"


# -- SMTP smuggling ------------------------------------------------------------

SMUGGLED = (b"MAIL FROM:<attacker@example.net>\r\n"
            b"RCPT TO:<victim@example.org>\r\n"
            b"DATA\r\n"
            b"Subject: smuggled\r\n\r\nsmuggled body\r\n")

FAKE_ENDS = {
    "lf-dot-lf": b"\n.\n",
    "lf-dot-crlf": b"\n.\r\n",
    "crlf-dot-lf": b"\r\n.\n",
    "cr-dot-crlf": b"\r.\r\n",
    "crlf-dot-nul-crlf": b"\r\n.\x00\r\n",
    "nul": b"\x00\r\n",
}


@pytest.mark.parametrize("name", list(FAKE_ENDS))
def test_smuggling_fake_end_of_data(ternd, name):
    t = ternd(users=SMUGGLE_USERS)
    with t.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<attacker@example.net>", 250)
        c.expect("RCPT TO:<ben@example.org>", 250)
        c.expect("DATA", 354)
        c.send(b"Subject: innocent\r\n\r\nhello" + FAKE_ENDS[name] + SMUGGLED)
        c.no_reply(0.5)            # no end of data yet: no reply at all
        c.send(b"\r\n.\r\n")       # the real end
        r = c.reply()
        check(r, 554, "5.6.0", f"end of data after {name}")
        # exactly one reply: the next one must be VRFY's own 252
        c.expect("VRFY x", 252)
        c.no_reply(0.3)
        c.expect("QUIT", 221)
    assert_empty(t, *SMUGGLE_USERS)


def test_bare_lf_line_in_middle_refused(t):
    with t.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<claire@example.net>", 250)
        c.expect("RCPT TO:<ben@example.org>", 250)
        c.expect("DATA", 354)
        c.send(b"Subject: x\r\n\r\nbare\nlf\r\n.\r\n")
        check(c.reply(), 554, "5.6.0")
        c.expect("VRFY x", 252)
    assert_empty(t, *SMUGGLE_USERS)


def test_bdat_bare_lf_refused(t):
    chunks = [b"Subject: x\r\n\r\nbare\nlf\r\n", b"more\r\n"]
    with t.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<claire@example.net>", 250)
        c.expect("RCPT TO:<ben@example.org>", 250)
        c.send(b"BDAT %d\r\n" % len(chunks[0]) + chunks[0])
        r1 = c.reply()
        c.send(b"BDAT %d LAST\r\n" % len(chunks[1]) + chunks[1])
        r2 = c.reply()
        assert (r1.code, r1.enh) == (554, "5.6.0") or \
            (r2.code, r2.enh) == (554, "5.6.0"), (r1, r2)
        assert r2.code != 250, (r1, r2)
        c.expect("VRFY x", 252)
    assert_empty(t, *SMUGGLE_USERS)


# -- line lengths ----------------------------------------------------------------

def test_command_line_512_ok_513_refused(t):
    with t.client() as c:
        c.ehlo()
        ok = b"NOOP " + b"x" * (512 - 5 - 2) + b"\r\n"
        assert len(ok) == 512
        c.send(ok)
        check(c.reply(), 250, what="512-octet NOOP")
        c.send(b"NOOP " + b"x" * (513 - 5 - 2) + b"\r\n")
        check(c.reply(), 500, "5.5.2", "513-octet NOOP")
        c.expect("VRFY x", 252)     # one reply only, the session goes on
        c.expect("MAIL FROM:<claire@example.net>", 250)


def test_command_line_100k_refused_session_goes_on(t):
    with t.client() as c:
        c.ehlo()
        c.send(b"NOOP " + b"A" * (100 * 1024) + b"\r\n")
        check(c.reply(), 500, "5.5.2", "100 KiB command")
        c.expect("VRFY x", 252)
        c.no_reply(0.3)
        c.expect("MAIL FROM:<claire@example.net>", 250)
        c.expect("RCPT TO:<ben@example.org>", 250)
        c.expect("RSET", 250)


LONG_DOMAIN = ("d" * 58 + ".") * 3 + "example"      # 184 octets
LONG_LOCAL = "c" * 60                                # path: 247 of 256


def xtext_all(s):
    return "".join("+%02X" % ord(ch) for ch in s)


def test_rcpt_with_params_over_512_ok_over_2048_refused(t):
    """MAIL/RCPT with ESMTP parameters may be up to 2048 octets."""
    with t.client() as c:
        c.ehlo()
        line = (f"MAIL FROM:<{LONG_LOCAL}@{LONG_DOMAIN}> SIZE=100 RET=HDRS "
                f"BODY=8BITMIME ENVID={xtext_all('E' * 33)}X")   # 100 chars
        c.expect(line, 250)
        # ORCPT of 475 characters (under RFC 3461's 500) makes a 539-octet line
        orcpt = "rfc822;" + xtext_all("c" * 60 + "@" + ("d" * 45 + ".") * 2 + "org")
        line = f"RCPT TO:<ben@example.org> NOTIFY=SUCCESS,FAILURE,DELAY ORCPT={orcpt}"
        assert 512 < len(line) + 2 < 2048 and len(orcpt) <= 500
        c.expect(line, 250)
        c.expect("RSET", 250)
        long_line = "MAIL FROM:<claire@example.net> SIZE=100 ENVID=" + "E" * 2100
        c.expect(long_line, 500, "5.5.2")
        c.expect("VRFY x", 252)


def test_text_line_1000_ok_1001_refused(t):
    with t.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<claire@example.net>", 250)
        c.expect("RCPT TO:<victim@example.org>", 250)
        c.expect("DATA", 354)
        c.send(b"Subject: long\r\n\r\n" + b"y" * 999 + b"\r\nend\r\n.\r\n")
        check(c.reply(), 554, "5.6.0", "1001-octet text line")
        c.expect("VRFY x", 252)
    assert_empty(t, "victim@example.org")
    # the boundary: 998 + CRLF = 1000 octets is legal and stored as sent
    with t.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<claire@example.net>", 250)
        c.expect("RCPT TO:<carol@example.org>", 250)
        c.expect("DATA", 354)
        body = b"Subject: long\r\n\r\n" + b"y" * 998 + b"\r\nend\r\n"
        c.send(body + b".\r\n")
        check(c.reply(), 250, what="1000-octet text line")
    [d] = t.messages("carol@example.org")
    assert d.body == body


def test_nul_in_command(t):
    with t.client() as c:
        c.ehlo()
        c.send(b"NOOP\x00\r\n")
        check(c.reply(), 500, "5.5.2", "NUL in command")
        c.send(b"MAIL FROM:<claire@example.net\x00>\r\n")
        check(c.reply(), 500, "5.5.2", "NUL in MAIL")
        c.expect("VRFY x", 252)


def test_command_with_bare_lf(t):
    with t.client() as c:
        c.ehlo()
        c.send(b"NOOP\n")
        check(c.reply(), 500, "5.5.2", "bare LF command")
        c.expect("VRFY x", 252)
        c.no_reply(0.3)


def test_message_over_size_552_nothing_stored(t):
    with t.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<claire@example.net>", 250)
        c.expect("RCPT TO:<victim@example.org>", 250)
        c.expect("DATA", 354)
        line = b"z" * 78 + b"\r\n"
        c.send(b"Subject: big\r\n\r\n" + line * 400 + b".\r\n")   # 32 KB
        check(c.reply(), 552, "5.3.4", "over limits.message_size")
        c.expect("VRFY x", 252)
        # the same with BDAT
        c.expect("MAIL FROM:<claire@example.net>", 250)
        c.expect("RCPT TO:<victim@example.org>", 250)
        chunk = line * 400
        c.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk)
        check(c.reply(), 552, "5.3.4", "BDAT over limits.message_size")
        c.expect("VRFY x", 252)
    assert_empty(t, "victim@example.org")


# -- floods and stalls -----------------------------------------------------------

def test_errors_limit_421(ternd):
    t = ternd({"limits.errors": "3"})
    with t.client() as c:
        c.ehlo()
        c.send(b"GARBAGE 1\r\n" * 10)
        replies = []
        try:
            while True:
                replies.append(c.reply())
        except ServerClosed:
            pass
        codes = [(r.code, r.enh) for r in replies]
        assert codes and codes[-1] == (421, "4.7.0"), replies
        # limits.errors=3: three 500s, then the fourth error gets 421
        assert codes[:-1] == [(500, "5.5.2")] * 3, replies
    # the daemon is fine and serves the next client
    with t.client() as c:
        c.expect("NOOP", 250)


def test_idle_client_421(ternd):
    t = ternd({"timeout.command": "2"})
    with t.client() as c:
        c.ehlo()
        t0 = time.monotonic()
        r = c.reply(timeout=6 * SLOW)
        waited = time.monotonic() - t0
        check(r, 421, "4.4.2", "idle client")
        assert 1.5 <= waited <= 4.5 * SLOW, waited
        c.wait_closed()


def test_slow_line_dropped(ternd):
    """One byte per second never finishes a line: dropped after timeout.line
    even though each byte resets nothing."""
    t = ternd({"timeout.command": "30", "timeout.line": "3"})
    with t.client() as c:
        c.ehlo()
        t0 = time.monotonic()
        got = None
        for b in b"NOOP " + b"x" * 20:
            try:
                c.send(bytes([b]))
            except OSError:
                break
            try:
                got = c.reply(timeout=1.0)
                break
            except TimeoutError:
                continue
            except ServerClosed:
                break
        waited = time.monotonic() - t0
        assert got is not None, f"no reply after {waited:.1f}s"
        check(got, 421, "4.4.2", "line not finished in timeout.line")
        assert 2.5 <= waited <= 6 * SLOW, waited
        c.wait_closed()


def test_data_stall_421(ternd):
    t = ternd({"timeout.command": "30", "timeout.data": "2"})
    with t.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<claire@example.net>", 250)
        c.expect("RCPT TO:<ben@example.org>", 250)
        c.expect("DATA", 354)
        c.send(b"Subject: stalled\r\n\r\npartial")
        t0 = time.monotonic()
        r = c.reply(timeout=8 * SLOW)
        waited = time.monotonic() - t0
        check(r, 421, "4.4.2", "stalled DATA")
        assert 1.5 <= waited <= 5 * SLOW, waited
        c.wait_closed()
    assert t.files("ben@example.org") == []


def test_connection_limits(ternd):
    t = ternd({"limits.connections": "3", "limits.connections_per_ip": "2"})
    held = []
    try:
        held.append(SMTPClient(t.port, source="127.0.0.1"))
        held.append(SMTPClient(t.port, source="127.0.0.1"))
        for c in held:
            check(c.greeting, 220)
        # third from the same IP: refused at once
        t0 = time.monotonic()
        with SMTPClient(t.port, source="127.0.0.1") as c:
            check(c.greeting, 421, "4.7.0", "third connection from one IP")
            c.wait_closed(2 * SLOW)
        assert time.monotonic() - t0 < 1.5 * SLOW
        # another IP is still welcome: third connection in total
        held.append(SMTPClient(t.port, source="127.0.0.2"))
        check(held[-1].greeting, 220)
        # a fourth in total, from a fresh IP: refused by the global limit
        with SMTPClient(t.port, source="127.0.0.3") as c:
            check(c.greeting, 421, "4.7.0", "connection over the total")
            c.wait_closed(2 * SLOW)
        # the held sessions still work
        for c in held:
            c.expect("NOOP", 250)
        # a freed slot is reusable
        held[0].expect("QUIT", 221)
        held[0].wait_closed()
        held.pop(0).close()
        deadline = time.monotonic() + 3 * SLOW
        while True:
            with SMTPClient(t.port, source="127.0.0.3") as c:
                if c.greeting.code == 220:
                    c.expect("QUIT", 221)
                    break
            assert time.monotonic() < deadline, "slot never freed"
            time.sleep(0.1)
    finally:
        for c in held:
            c.close()
