"""Every reply code of the contract, over a raw socket."""

import re
import time

import pytest

from conftest import check, check_received

SIZE_LIMIT = 100000


@pytest.fixture(scope="module")
def t(ternd_module):
    return ternd_module({"limits.message_size": str(SIZE_LIMIT)})


def new_since(t, addr, before):
    return [d for d in t.messages(addr) if d.path not in before]


# -- greeting, EHLO, HELO, simple commands ---------------------------------

def test_greeting(t):
    with t.client() as c:
        assert len(c.greeting.lines) == 1
        assert re.match(r"^220 mx\.test ESMTP( |$)", c.greeting.lines[0]), c.greeting


def test_ehlo_keywords(t):
    with t.client() as c:
        r = c.ehlo()
        assert r.lines[0].startswith("250-mx.test"), r
        kw = {}
        for line in r.lines[1:]:
            words = line[4:].split()
            kw[words[0].upper()] = words[1:]
        for k in ("PIPELINING", "SIZE", "8BITMIME", "ENHANCEDSTATUSCODES",
                  "SMTPUTF8", "CHUNKING", "DSN"):
            assert k in kw, f"EHLO lacks {k}: {r.text!r}"
        assert kw["SIZE"] == [str(SIZE_LIMIT)], r.text


def test_helo(t):
    with t.client() as c:
        r = c.expect("HELO client.test", 250)
        assert len(r.lines) == 1 and r.lines[0].startswith("250 mx.test"), r


def test_helo_session(t):
    """HELO: no ESMTP parameters (555), and Received says "with SMTP"."""
    before = set(t.files("claire@example.org"))
    with t.client() as c:
        c.expect("HELO old.client.test", 250)
        c.expect("MAIL FROM:<dave@example.net> SIZE=10", 555, "5.5.4")
        c.expect("MAIL FROM:<dave@example.net>", 250)
        c.expect("RCPT TO:<claire@example.org>", 250)
        c.expect("DATA", 354)
        c.send(b"Subject: helo\r\n\r\nplain SMTP\r\n.\r\n")
        check(c.reply(), 250)
    [d] = new_since(t, "claire@example.org", before)
    check_received(d, helo="old.client.test", rcpt="claire@example.org",
                   proto="SMTP")
    assert d.body == b"Subject: helo\r\n\r\nplain SMTP\r\n"


def test_non_ascii_address_needs_smtputf8(t):
    """RFC 6531 3.4: UTF-8 in a path without SMTPUTF8 is 553 5.6.7."""
    with t.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<ren\u00e9e@example.net>".encode(), 553, "5.6.7")
        c.expect("MAIL FROM:<claire@example.net>", 250)
        c.expect("RCPT TO:<j\u00fcrgen@example.org>".encode(), 553, "5.6.7")
        c.expect("RCPT TO:<ben@example.org>", 250)


def test_noop_quit(t):
    with t.client() as c:
        c.expect("NOOP", 250)
        c.expect("QUIT", 221)
        c.wait_closed()


def test_vrfy_252(t):
    with t.client() as c:
        c.ehlo()
        c.expect("VRFY ben@example.org", 252)
        c.expect("VRFY nobody@example.org", 252)   # no user enumeration


def test_unknown_command_500(t):
    with t.client() as c:
        c.expect("FOOBAR baz", 500, "5.5.2")
        c.expect("NOOP", 250)


def test_syntax_501(t):
    with t.client() as c:
        c.expect("EHLO", 501, "5.5.4")
        c.ehlo()
        c.expect("MAIL", 501, "5.5.4")
        c.expect("MAIL TO:<claire@example.net>", 501, "5.5.4")
        r = c.cmd("MAIL FROM:<claire@example.net")
        assert r.code == 501 and r.enh in ("5.5.4", "5.1.7"), r
        c.expect("MAIL FROM:<claire@example.net>", 250)
        c.expect("RCPT", 501, "5.5.4")
        r = c.cmd("RCPT TO:<ben@example.org")
        assert r.code == 501 and r.enh in ("5.5.4", "5.1.3"), r
        c.expect("RCPT TO:<ben@example.org>", 250)


# -- recipients --------------------------------------------------------------

def test_unknown_user_550(t):
    with t.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<claire@example.net>", 250)
        c.expect("RCPT TO:<nobody@example.org>", 550, "5.1.1")
        c.expect("RCPT TO:<nobody@example.net>", 550, "5.1.1")
        c.expect("RCPT TO:<ben%example.com@example.org>", 550, "5.1.1")
        c.expect("RCPT TO:<ben@example.org>", 250)


def test_relay_denied_554(t):
    with t.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<ben@example.org>", 250)
        c.expect("RCPT TO:<someone@example.com>", 554, "5.7.1")
        c.expect("RCPT TO:<ben@example.org.example.com>", 554, "5.7.1")
        # a source route is ignored (RFC 5321 4.1.1.3): the mailbox decides
        c.expect("RCPT TO:<@example.org:someone@example.com>", 554, "5.7.1")
        c.expect("DATA", 503, "5.5.1")


def test_recipient_case_insensitive(t):
    before = set(t.files("ben@example.org"))
    with t.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<claire@example.net>", 250)
        c.expect("RCPT TO:<BEN@Example.ORG>", 250)
        c.expect("DATA", 354)
        c.send(b"Subject: case\r\n\r\ncase\r\n.\r\n")
        check(c.reply(), 250)
    [d] = new_since(t, "ben@example.org", before)
    assert d.body == b"Subject: case\r\n\r\ncase\r\n"


def test_own_address_literal(t):
    """RFC 1123 5.2.17: mail to a domain literal of the address the client
    connected to is local (user@ the first local domain); another address
    literal is a relay attempt."""
    before = set(t.files("claire@example.org"))
    with t.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<dave@example.net>", 250)
        c.expect(f"RCPT TO:<claire@[{t.host}]>", 250)
        c.expect(f"RCPT TO:<nobody@[{t.host}]>", 550, "5.1.1")
        c.expect(f"RCPT TO:<postmaster@[{t.host}]>", 250)
        c.expect("RCPT TO:<claire@[192.0.2.1]>", 554, "5.7.1")
        c.expect("RCPT TO:<claire@[IPv6:2001:db8::1]>", 554, "5.7.1")
        c.expect("DATA", 354)
        c.send(b"Subject: literal\r\n\r\nto my address\r\n.\r\n")
        check(c.reply(), 250)
    [d] = new_since(t, "claire@example.org", before)
    assert d.data.endswith(b"to my address\r\n")


def test_postmaster_always_accepted(t):
    """RFC 5321 4.5.1: postmaster@ every local domain (and the bare
    <Postmaster>, in any case) is accepted with no such user, and the
    mail is stored: in DOMAIN/postmaster, once per mailbox however many
    of its names the client gave."""
    boxes = ("postmaster@example.org", "postmaster@example.net")
    before = {b: set(t.files(b)) for b in boxes}
    with t.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<claire@example.net>", 250)
        for rcpt in ("<postmaster@example.org>", "<postmaster@example.net>",
                     "<Postmaster>", "<POSTMASTER@EXAMPLE.ORG>"):
            c.expect(f"RCPT TO:{rcpt}", 250)
        c.expect("DATA", 354)
        c.send(b"Subject: to postmaster\r\n\r\nhi\r\n.\r\n")
        check(c.reply(), 250)
    for b in boxes:
        new = [d for d in t.messages(b) if d.path not in before[b]]
        assert len(new) == 1, f"{b}: {len(new)} new messages: {new}"
        [d] = new
        assert d.return_path == "claire@example.net", d.return_path
        assert d.body == b"Subject: to postmaster\r\n\r\nhi\r\n", d.body
        check_received(d, rcpt=None)


def test_recipient_limit_452(ternd):
    t = ternd({"limits.recipients": "100"})
    t.tern("alias", "add", "@example.net", "ben@example.org")
    with t.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<claire@example.org>", 250)
        c.send(b"".join(b"RCPT TO:<r%03d@example.net>\r\n" % i
                        for i in range(150)))
        rs = c.replies(150)
        codes = [(r.code, r.enh) for r in rs]
        assert codes[:100] == [(250, codes[0][1])] * 100, rs[:100]
        assert codes[100:] == [(452, "4.5.3")] * 50, rs[100:]
        c.expect("DATA", 354)
        c.send(b"Subject: many\r\n\r\nmany\r\n.\r\n")
        check(c.reply(), 250)
        # the limit is per message
        c.expect("MAIL FROM:<claire@example.org>", 250)
        for i in range(100):
            c.expect(f"RCPT TO:<s{i:03d}@example.net>", 250)
        c.expect("RCPT TO:<s100@example.net>", 452, "4.5.3")
    assert len(t.files("ben@example.org")) >= 1


# -- out of order: 503 5.5.1 -------------------------------------------------

def test_mail_before_ehlo_503(t):
    with t.client() as c:
        c.expect("MAIL FROM:<claire@example.net>", 503, "5.5.1")


def test_rcpt_before_mail_503(t):
    with t.client() as c:
        c.ehlo()
        c.expect("RCPT TO:<ben@example.org>", 503, "5.5.1")


def test_data_before_rcpt_503(t):
    with t.client() as c:
        c.ehlo()
        c.expect("DATA", 503, "5.5.1")
        c.expect("MAIL FROM:<claire@example.net>", 250)
        c.expect("DATA", 503, "5.5.1")
        c.expect("RCPT TO:<nobody@example.org>", 550, "5.1.1")
        c.expect("DATA", 503, "5.5.1")


def test_second_mail_503(t):
    before = set(t.files("ben@example.org"))
    with t.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<claire@example.net>", 250)
        c.expect("MAIL FROM:<other@example.net>", 503, "5.5.1")
        c.expect("RCPT TO:<ben@example.org>", 250)
        c.expect("DATA", 354)
        c.send(b"Subject: second mail\r\n\r\nx\r\n.\r\n")
        check(c.reply(), 250)
    [d] = new_since(t, "ben@example.org", before)
    assert d.return_path == "claire@example.net"


def test_bdat_then_data_503(t):
    before = set(t.files("ben@example.org"))
    with t.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<claire@example.net>", 250)
        c.expect("RCPT TO:<ben@example.org>", 250)
        c.send(b"BDAT 5\r\nhello")
        check(c.reply(), 250)
        c.expect("DATA", 503, "5.5.1")
        c.expect("RSET", 250)
    assert new_since(t, "ben@example.org", before) == []


def test_bdat_refused_chunk_is_not_executed(t):
    """A BDAT refused with 503 still consumes its chunk: the chunk's bytes
    must never be read as commands."""
    with t.client() as c:
        c.ehlo()
        chunk = b"VRFY smuggled\r\n"
        c.send(b"BDAT %d\r\n" % len(chunk) + chunk)
        check(c.reply(), 503, "5.5.1")
        c.expect("NOOP", 250)          # a 252 here means VRFY ran
        c.no_reply(0.3)


def test_ehlo_mid_transaction_resets(t):
    with t.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<claire@example.net>", 250)
        c.expect("RCPT TO:<ben@example.org>", 250)
        c.ehlo()
        c.expect("RCPT TO:<ben@example.org>", 503, "5.5.1")
        c.expect("DATA", 503, "5.5.1")
        c.expect("MAIL FROM:<claire@example.net>", 250)


def test_rset(t):
    with t.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<claire@example.net>", 250)
        c.expect("RCPT TO:<ben@example.org>", 250)
        r = c.expect("RSET", 250)
        assert r.enh == "2.0.0", r
        c.expect("RCPT TO:<ben@example.org>", 503, "5.5.1")
        c.expect("DATA", 503, "5.5.1")
        c.expect("MAIL FROM:<claire@example.net>", 250)
        c.expect("RCPT TO:<ben@example.org>", 250)


# -- ESMTP parameters --------------------------------------------------------

def test_size_over_limit_552(t):
    with t.client() as c:
        c.ehlo()
        c.expect(f"MAIL FROM:<claire@example.net> SIZE={SIZE_LIMIT + 1}", 552, "5.3.4")
        c.expect("MAIL FROM:<claire@example.net> SIZE=9999999999999999999", 552, "5.3.4")
        c.expect(f"MAIL FROM:<claire@example.net> SIZE={SIZE_LIMIT}", 250)


def test_size_20_digits_552(t):
    """RFC 1870: size-value = 1*20DIGIT; 20 digits overflow 64 bits but are
    legal syntax, so the answer is "too big", not a syntax error."""
    with t.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<claire@example.net> SIZE=99999999999999999999", 552, "5.3.4")
        c.expect("MAIL FROM:<claire@example.net> SIZE=999999999999999999999", 501, "5.5.4")


def _hops(n):
    return b"".join(b"Received: from hop%d.test by hop%d.test; "
                    b"Mon, 1 Jan 2024 10:00:00 +0000\r\n" % (i, i + 1)
                    for i in range(n))


def test_mail_loop_554(t):
    """RFC 5321 6.3: a message that already has 100 Received fields is a
    loop; it is refused after the data (554 5.4.6), nothing is stored, and
    the session goes on.  99 hops still pass."""
    before = set(t.files("claire@example.org"))
    with t.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<dave@example.net>", 250)
        c.expect("RCPT TO:<claire@example.org>", 250)
        c.expect("DATA", 354)
        c.send(_hops(100) + b"Subject: loop\r\n\r\nround and round\r\n.\r\n")
        check(c.reply(), 554, "5.4.6")
        assert set(t.files("claire@example.org")) == before
        c.expect("MAIL FROM:<dave@example.net>", 250)
        c.expect("RCPT TO:<claire@example.org>", 250)
        c.expect("DATA", 354)
        c.send(_hops(99) + b"Subject: far\r\n\r\nReceived: body lines do not count\r\n.\r\n")
        check(c.reply(), 250)
    new = new_since(t, "claire@example.org", before)
    assert len(new) == 1
    head = new[0].data.split(b"\r\n\r\n", 1)[0]
    assert head.count(b"\nReceived: ") == 100  # 99 + ours
    assert "event=mail_loop" in t.log()


def test_size_not_numeric_501(t):
    with t.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<claire@example.net> SIZE=abc", 501, "5.5.4")
        c.expect("MAIL FROM:<claire@example.net> SIZE=", 501, "5.5.4")
        c.expect("MAIL FROM:<claire@example.net> SIZE=-1", 501, "5.5.4")
        c.expect("MAIL FROM:<claire@example.net>", 250)


def test_unknown_and_duplicate_param_555(t):
    with t.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<claire@example.net> FOO=bar", 555, "5.5.4")
        c.expect("MAIL FROM:<claire@example.net> SIZE=10 SIZE=10", 555, "5.5.4")
        c.expect("MAIL FROM:<claire@example.net> BODY=8BITMIME BODY=7BIT", 555, "5.5.4")
        c.expect("MAIL FROM:<claire@example.net> SIZE=10", 250)
        c.expect("RCPT TO:<ben@example.org> FOO=bar", 555, "5.5.4")
        c.expect("RCPT TO:<ben@example.org> NOTIFY=NEVER NOTIFY=NEVER", 555, "5.5.4")
        c.expect("RCPT TO:<ben@example.org> NOTIFY=NEVER", 250)


# -- pipelining, BDAT, slow clients -------------------------------------------

M1 = b"Subject: first\r\n\r\nfirst message\r\n..stuffed\r\n"
M2 = b"Subject: second\r\n\r\nsecond message\r\n"


def test_pipelined_transactions_in_one_send(t):
    b_ben = set(t.files("ben@example.org"))
    b_cl = set(t.files("claire@example.org"))
    with t.client() as c:
        c.ehlo()
        c.send(b"MAIL FROM:<claire@example.net>\r\n"
               b"RCPT TO:<ben@example.org>\r\n"
               b"RCPT TO:<nobody@example.org>\r\n"
               b"DATA\r\n" + M1 + b".\r\n"
               b"MAIL FROM:<dave@example.net>\r\n"
               b"RCPT TO:<claire@example.org>\r\n"
               b"DATA\r\n" + M2 + b".\r\n"
               b"NOOP\r\n"
               b"QUIT\r\n")
        rs = c.replies(11)
        assert [(r.code, r.enh) if r.code == 550 else r.code for r in rs] == [
            250, 250, (550, "5.1.1"), 354, 250, 250, 250, 354, 250, 250, 221], rs
        c.wait_closed()
    [d1] = new_since(t, "ben@example.org", b_ben)
    [d2] = new_since(t, "claire@example.org", b_cl)
    assert d1.body == M1.replace(b"\n..", b"\n.")
    assert d1.return_path == "claire@example.net"
    assert d2.body == M2
    assert d2.return_path == "dave@example.net"


BDAT_CHUNKS = [
    b"Subject: bdat\r\n\r\nline one\r",            # chunk ends inside CRLF
    b"\n.a dot line, never unstuffed in BDAT\r\n.\r\nafter a lone dot\r\n",
    b"last line\r\n",
]


def test_bdat_chunks(t):
    before = set(t.files("ben@example.org"))
    with t.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<claire@example.net>", 250)
        c.expect("RCPT TO:<ben@example.org>", 250)
        for i, ch in enumerate(BDAT_CHUNKS):
            last = b" LAST" if i == len(BDAT_CHUNKS) - 1 else b""
            c.send(b"BDAT %d%s\r\n" % (len(ch), last) + ch)
            check(c.reply(), 250, what=f"BDAT chunk {i}")
        c.expect("QUIT", 221)
    [d] = new_since(t, "ben@example.org", before)
    assert d.body == b"".join(BDAT_CHUNKS)


def test_bdat_pipelined_with_empty_last(t):
    before = set(t.files("dave@example.net"))
    send = (b"MAIL FROM:<claire@example.net>\r\nRCPT TO:<dave@example.net>\r\n"
            + b"".join(b"BDAT %d\r\n" % len(ch) + ch for ch in BDAT_CHUNKS)
            + b"BDAT 0 LAST\r\nQUIT\r\n")
    with t.client() as c:
        c.ehlo()
        c.send(send)
        rs = c.replies(2 + len(BDAT_CHUNKS) + 2)
        assert [r.code for r in rs] == [250] * (2 + len(BDAT_CHUNKS) + 1) + [221], rs
    [d] = new_since(t, "dave@example.net", before)
    assert d.body == b"".join(BDAT_CHUNKS)


def test_trickle_one_byte_at_a_time(t):
    before = set(t.files("ben@example.org"))
    body = b"Subject: trickle\r\n\r\none byte at a time\r\n..dot\r\n"
    steps = [(b"EHLO client.test\r\n", 250),
             (b"MAIL FROM:<claire@example.net>\r\n", 250),
             (b"RCPT TO:<ben@example.org>\r\n", 250),
             (b"DATA\r\n", 354),
             (body + b".\r\n", 250),
             (b"QUIT\r\n", 221)]
    with t.client() as c:
        for data, code in steps:
            for i in range(len(data)):
                c.send(data[i:i + 1])
                time.sleep(0.002)
            check(c.reply(), code, what=data[:20])
        c.wait_closed()
    [d] = new_since(t, "ben@example.org", before)
    assert d.body == body.replace(b"\n..", b"\n.")


def test_ipv6_client_and_dual_stack_listener(ternd):
    """A [::] listener takes IPv4 clients (shown as their IPv4 address, not
    ::ffff:...) and IPv6 ones; the Received line writes the IPv6 client
    address as RFC 5321 4.4 does, [IPv6:...], and mail to our own IPv6
    literal is local."""
    import socket
    t = ternd(start=False)
    t.overrides["listen.smtp"] = f"[::]:{t.port}"
    t.start()
    before = set(t.files("claire@example.org"))
    check(t.send_raw("dave@example.net", ["claire@example.org"],
                     b"Subject: v4 to [::]\r\n\r\nfour\r\n"), 250)
    s = socket.create_connection(("::1", t.port), timeout=10)
    f = s.makefile("rb")
    def cmd(line, code):
        if line is not None:
            s.sendall(line + b"\r\n")
        while True:
            r = f.readline()
            if r[3:4] != b"-":
                break
        assert r.startswith(str(code).encode()), (line, r)
    cmd(None, 220)
    cmd(b"EHLO six.client.test", 250)
    cmd(b"MAIL FROM:<dave@example.net>", 250)
    cmd(b"RCPT TO:<claire@[IPv6:::1]>", 250)
    cmd(b"DATA", 354)
    cmd(b"Subject: v6\r\n\r\nsix\r\n.", 250)
    cmd(b"QUIT", 221)
    s.close()
    new = {d.body.split(b"\r\n\r\n", 1)[1]: d for d in new_since(t, "claire@example.org", before)}
    assert set(new) == {b"four\r\n", b"six\r\n"}, list(new)
    check_received(new[b"four\r\n"], rcpt="claire@example.org")
    check_received(new[b"six\r\n"], helo="six.client.test",
                   rcpt="claire@[IPv6:::1]", ip="::1")
    assert "client=127.0.0.1" in t.log() and "::ffff:" not in t.log()
