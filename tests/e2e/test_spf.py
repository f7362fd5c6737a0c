"""SPF (RFC 7208) on the MX port: ternd checks MAIL FROM (postmaster@HELO
for the null sender) against the zone a dnsmasq serves, records the result
in a Received-SPF field above its Received (RFC 7208 9.1) and an event=spf
log line, and with spf.reject_fail = yes refuses a "fail" at RCPT with
550 5.7.23 (RFC 7372) and defers a "temperror" with 451 4.7.24."""

import base64
import re
import socket
import struct
import time

import pytest

from conftest import (PASSWORD, SLOW, check, free_port, submit_ternd,
                      wait_for)

RCPT = "ben@example.org"
RCPT2 = "dave@example.net"

# the zone: one name per case; the client is 127.0.0.1.  dnsmasq gets
# these as argv (no shell): a comma starts the next string of the record
ZONE = [
    # pass: the client's address is listed
    '--txt-record=pass.test,v=spf1 ip4:127.0.0.1 -all',
    # fail: only another address may send, with an explanation
    '--txt-record=fail.test,v=spf1 ip4:192.0.2.1 exp=why.fail.test -all',
    '--txt-record=why.fail.test,%{i} is not a mail server of %{d}',
    # softfail
    '--txt-record=soft.test,v=spf1 ip4:192.0.2.1 ~all',
    # a record in two strings (RFC 7208 3.3): joined, so "pass"
    '--txt-record=split.test,v=spf1 ip4:192.0.2.1 ,ip4:127.0.0.1 -all',
    # the HELO name of the null-sender case
    '--txt-record=helo.test,v=spf1 a:mail.helo.test -all',
    # none: the name exists (an address) but has no SPF record
    "--host-record=none.test,192.0.2.9",
    "--host-record=mail.helo.test,127.0.0.1",
    # everything else under .test: NXDOMAIN from dnsmasq itself
    "--local=/test/",
]


def spf_ternd(ternd, dnsmasq, reject_fail="no", servers=None, extra=None):
    dns = dnsmasq(extra=ZONE) if servers is None else None
    over = {"spf.check": "yes", "spf.reject_fail": reject_fail,
            "dns.servers": servers or dns.server}
    over.update(extra or {})
    return ternd(over)


def send(t, sender, helo="client.test", rcpt=RCPT, rcpt_code=250,
         rcpt_enh=None, timeout=None):
    """One transaction on the MX port; returns the RCPT reply."""
    with t.client(timeout=timeout or 5.0 * SLOW) as c:
        c.ehlo(helo)
        c.expect(f"MAIL FROM:<{sender}>", 250)
        r = c.cmd(f"RCPT TO:<{rcpt}>")
        check(r, rcpt_code, rcpt_enh, f"RCPT for {sender!r}")
        if rcpt_code == 250:
            c.expect("DATA", 354)
            c.send(b"Subject: spf\r\n\r\nhello\r\n.\r\n")
            check(c.reply(), 250, None, "end of data")
        c.expect("QUIT", 221)
        return r


def headers(data):
    """The header fields of a stored message, unfolded, in order."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    fields = []
    for line in head.split("\r\n"):
        if line[:1] in (" ", "\t") and fields:
            fields[-1] += " " + line.strip()
        else:
            fields.append(line)
    return [tuple(f.split(":", 1)) for f in fields]


def received_spf(t, rcpt=RCPT, n=1):
    """Received-SPF of the newest message: (result, {key: value}), after
    checking it sits above tern's Received (RFC 7208 9.1)."""
    files = wait_for(lambda: len(t.files(rcpt)) >= n and t.files(rcpt),
                     "the message in the Maildir")
    fields = headers(files[-1].read_bytes())
    names = [f[0].lower() for f in fields]
    assert names[0] == "return-path", names
    assert names.count("received-spf") == 1, names
    assert names.index("received-spf") < names.index("received"), names
    value = fields[names.index("received-spf")][1].strip()
    result = value.split(None, 1)[0]
    kv = dict(re.findall(r'([a-z-]+)=("(?:[^"\\]|\\.)*"|[^;\s]+);', value))
    return result, {k: v.strip('"') for k, v in kv.items()}


def no_received_spf(t, rcpt=RCPT):
    files = wait_for(lambda: t.files(rcpt), "the message in the Maildir")
    names = [f[0].lower() for f in headers(files[-1].read_bytes())]
    assert "received-spf" not in names, names


def spf_log(t, result):
    return wait_for(lambda: re.search(
        rf"event=spf result={result} ip=127\.0\.0\.1 mailfrom=<[^>]*>.*",
        t.log()), f"event=spf result={result} in the log").group(0)


def test_spf_pass(ternd, dnsmasq):
    t = spf_ternd(ternd, dnsmasq)
    send(t, "alice@pass.test")
    result, kv = received_spf(t)
    assert result == "pass", kv
    assert kv["client-ip"] == "127.0.0.1"
    assert kv["envelope-from"] == "alice@pass.test"
    assert kv["identity"] == "mailfrom"
    assert kv["helo"] == "client.test"
    assert kv["receiver"] == "mx.test"
    assert "mailfrom=<alice@pass.test>" in spf_log(t, "pass")


def test_spf_split_record_pass(ternd, dnsmasq):
    t = spf_ternd(ternd, dnsmasq)
    send(t, "alice@split.test")
    assert received_spf(t)[0] == "pass"


def test_spf_fail_recorded_when_not_rejecting(ternd, dnsmasq):
    t = spf_ternd(ternd, dnsmasq, reject_fail="no")
    with t.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<mallory@fail.test>", 250)
        c.expect(f"RCPT TO:<{RCPT}>", 250)
        # the check ends in the background; a RCPT after it is taken too
        spf_log(t, "fail")
        c.expect(f"RCPT TO:<{RCPT2}>", 250)
        c.expect("DATA", 354)
        c.send(b"Subject: spf\r\n\r\nhello\r\n.\r\n")
        check(c.reply(), 250, None, "end of data")
        c.expect("QUIT", 221)
    for rcpt in (RCPT, RCPT2):
        result, kv = received_spf(t, rcpt)
        assert result == "fail", kv
        assert kv["mechanism"] == "-all"


def test_spf_fail_refused_at_rcpt(ternd, dnsmasq):
    t = spf_ternd(ternd, dnsmasq, reject_fail="yes")
    r = send(t, "mallory@fail.test", rcpt_code=550, rcpt_enh="5.7.23")
    # the domain's explanation (exp=, RFC 7208 6.2) in the reply
    assert "127.0.0.1 is not a mail server of fail.test" in r.text, r.text
    assert t.files(RCPT) == []
    # the same server passes a sender whose record allows the client
    send(t, "alice@pass.test")
    assert received_spf(t)[0] == "pass"


def test_spf_softfail_accepted(ternd, dnsmasq):
    t = spf_ternd(ternd, dnsmasq, reject_fail="yes")
    send(t, "bob@soft.test")
    assert received_spf(t)[0] == "softfail"


def test_spf_none(ternd, dnsmasq):
    t = spf_ternd(ternd, dnsmasq, reject_fail="yes")
    send(t, "carol@none.test")
    assert received_spf(t)[0] == "none"
    # and a domain that does not exist at all
    send(t, "carol@nowhere.test")
    assert received_spf(t, n=2)[0] == "none"


def test_spf_null_sender_checks_helo(ternd, dnsmasq):
    t = spf_ternd(ternd, dnsmasq, reject_fail="yes")
    send(t, "", helo="helo.test")
    result, kv = received_spf(t)
    assert result == "pass", kv
    assert kv["identity"] == "helo"
    assert kv["envelope-from"] == "postmaster@helo.test"
    assert kv["helo"] == "helo.test"


def test_spf_temperror_not_refused(ternd):
    # a resolver that takes the queries and never answers: RCPT is not
    # held (reject_fail = no), the end of data waits for the check, which
    # ends in temperror when the DNS deadline passes; the message is taken
    hole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    hole.bind(("127.0.0.1", 0))
    try:
        t = spf_ternd(ternd, None, reject_fail="no",
                      servers=f"127.0.0.1:{hole.getsockname()[1]}")
        t0 = time.monotonic()
        send(t, "alice@pass.test", timeout=40.0 * SLOW)
        took = time.monotonic() - t0
    finally:
        hole.close()
    result, kv = received_spf(t)
    assert result == "temperror", kv
    assert took > 5, f"the end of data did not wait for the check ({took}s)"
    spf_log(t, "temperror")


def test_spf_temperror_deferred_when_rejecting(ternd):
    t = spf_ternd(ternd, None, reject_fail="yes",
                  servers=f"127.0.0.1:{free_port()}")
    send(t, "alice@pass.test", rcpt_code=451, rcpt_enh="4.7.24",
         timeout=40.0 * SLOW)
    assert t.files(RCPT) == []


def test_spf_not_for_authenticated_submission(ternd, dnsmasq):
    dns = dnsmasq(extra=['--txt-record=example.org,v=spf1 -all',
                         "--local=/example.org/"])
    t = submit_ternd(ternd, {"spf.check": "yes", "spf.reject_fail": "yes",
                             "dns.servers": dns.server})
    plain = base64.b64encode(
        f"\0claire@example.org\0{PASSWORD}".encode()).decode()
    with t.sub_client() as c:
        c.expect(f"AUTH PLAIN {plain}", 235)
        c.expect("MAIL FROM:<claire@example.org>", 250)
        c.expect(f"RCPT TO:<{RCPT}>", 250)
        c.expect("DATA", 354)
        c.send(b"Subject: spf\r\n\r\nhello\r\n.\r\n")
        check(c.reply(), 250, None, "end of data")
        c.expect("QUIT", 221)
    no_received_spf(t)
    # the same sender on the MX port is checked, and fails
    send(t, "claire@example.org", rcpt_code=550, rcpt_enh="5.7.23")


def test_spf_not_for_relay_networks(ternd, dnsmasq):
    t = spf_ternd(ternd, dnsmasq, reject_fail="yes",
                  extra={"relay.networks": "127.0.0.0/8"})
    send(t, "mallory@fail.test")
    no_received_spf(t)
    assert "event=spf" not in t.log()


def test_spf_off(ternd, dnsmasq):
    t = spf_ternd(ternd, dnsmasq, reject_fail="yes",
                  extra={"spf.check": "no"})
    send(t, "mallory@fail.test")
    no_received_spf(t)


@pytest.mark.parametrize("reject_fail", ["yes", "no"])
def test_spf_client_gone_while_waiting(ternd, reject_fail):
    """The client resets the connection while its RCPT (reject_fail = yes)
    or its end of data (no) waits for a check whose query is still out:
    the session is freed with its check (the DNS query cancelled), and
    ternd goes on serving and exits cleanly (teardown: no sanitizer
    report)."""
    hole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    hole.bind(("127.0.0.1", 0))
    try:
        t = spf_ternd(ternd, None, reject_fail=reject_fail,
                      servers=f"127.0.0.1:{hole.getsockname()[1]}")
        c = t.client()
        c.ehlo()
        c.expect("MAIL FROM:<alice@pass.test>", 250)
        if reject_fail == "yes":
            c.send(f"RCPT TO:<{RCPT}>\r\n".encode())
        else:
            c.expect(f"RCPT TO:<{RCPT}>", 250)
            c.expect("DATA", 354)
            c.send(b"Subject: spf\r\n\r\nhello\r\n.\r\n")
        c.no_reply(0.5)                 # it waits for the check
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                          struct.pack("ii", 1, 0))
        c.close()                       # RST
        wait_for(lambda: "event=disconnect reason=error" in t.log(),
                 "the session freed at the reset")
        # past the query's deadline (10 s): a callback not cancelled
        # would run now on the freed check (ASan build: a report)
        time.sleep(10.5)
        with t.client() as c2:
            c2.ehlo()
            c2.expect("QUIT", 221)
    finally:
        hole.close()
    assert t.files(RCPT) == []
    assert "event=spf" not in t.log()
