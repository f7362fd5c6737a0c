"""No open relay (both ports, without AUTH, every classic trick), and relay
end to end: Claire submits to instance A, which finds Ben's MX through
dnsmasq and delivers to instance B."""

import base64
import re
import smtplib
import time

import pytest

import received

from conftest import (BEN, CLAIRE, PASSWORD, SLOW, SMTPClient, check, maildir_messages,
                      received_headers, submit_ternd, tls_client_context,
                      two_mtas, wait_for)


# RCPT forms that try to make a server relay to example.com; local domains
# of the battery instance are example.org and example.net
RELAY_TRICKS = [
    "someone@example.com",
    "SomeOne@EXAMPLE.COM",
    "postmaster@example.com",
    "someone@sub.example.org",
    "someone@example.org.example.com",
    "someone%example.com@example.org",
    "someone%example.com@example.net",
    "example.com!someone@example.org",
    "@example.org:someone@example.com",
    "@example.org,@example.net:someone@example.com",
    '"someone@example.com"@example.org',
    '"someone%example.com"@example.org',
    '"example.com!someone"@example.org',
    "someone@[192.0.2.1]",
    "someone@[IPv6:2001:db8::1]",
]
REFUSED = {(554, "5.7.1"), (550, "5.1.1")}
SENDERS = ["dave@example.com", "claire@example.org", ""]


def plain(user, password):
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


@pytest.fixture(scope="module")
def t(ternd_module):
    return submit_ternd(ternd_module, implicit=True)


def all_mail_files(t):
    return sorted(p for p in (t.state_dir / "mail").glob("*/*/*/*") if p.is_file())


def assert_nothing_queued(t):
    assert t.queue_list() == [], t.queue_list()
    assert t.queue_env_files() == [], t.queue_env_files()


# -- open-relay battery ---------------------------------------------------------------

def relay_battery(connect):
    """RCPT each trick after each sender, one connection per sender (the
    refusals count towards limits.errors); {(sender, rcpt): reply}."""
    out = {}
    for sender in SENDERS:
        with connect() as c:
            c.expect(f"MAIL FROM:<{sender}>", 250)
            for rcpt in RELAY_TRICKS:
                out[(sender, rcpt)] = c.cmd(f"RCPT TO:<{rcpt}>")
            c.expect("DATA", 503, "5.5.1")
            c.expect("QUIT", 221)
    return out


@pytest.mark.parametrize("tls", [False, True], ids=["clear", "starttls"])
def test_mx_port_refuses_relay(t, tls):
    before = all_mail_files(t)

    def connect():
        c = SMTPClient(t.port)
        c.ehlo()
        if tls:
            c.starttls()
            c.ehlo()
        return c
    res = relay_battery(connect)
    bad = {k: r.text for k, r in res.items() if (r.code, r.enh) not in REFUSED}
    assert not bad, f"relay not refused with 554 5.7.1 / 550 5.1.1: {bad}"
    assert_nothing_queued(t)
    assert all_mail_files(t) == before


def test_mx_port_relay_denied_is_554(t):
    """A plainly remote domain is a relay refusal, not an unknown user."""
    with SMTPClient(t.port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<dave@example.com>", 250)
        c.expect("RCPT TO:<someone@example.com>", 554, "5.7.1")
        c.expect("RCPT TO:<someone@[192.0.2.1]>", 554, "5.7.1")


def test_mx_port_mixed_local_and_relay(t):
    """The local recipient gets the message, the remote one nothing."""
    before = set(t.files("ben@example.org"))
    with SMTPClient(t.port) as c:
        c.ehlo()
        c.expect("MAIL FROM:<dave@example.com>", 250)
        c.expect("RCPT TO:<someone@example.com>", 554, "5.7.1")
        c.expect("RCPT TO:<ben@example.org>", 250)
        c.expect("RCPT TO:<ben%example.com@example.org>", 550, "5.1.1")
        c.expect("DATA", 354)
        c.send(b"Subject: local\r\n\r\nfor ben only\r\n.\r\n")
        check(c.reply(), 250)
        c.expect("QUIT", 221)
    new = [d for d in t.messages("ben@example.org") if d.path not in before]
    assert len(new) == 1 and new[0].body.endswith(b"for ben only\r\n")
    assert_nothing_queued(t)


def test_mx_port_still_accepts_local_mail(t):
    before = set(t.files("claire@example.org"))
    rep = t.send_raw("someone@example.com", ["claire@example.org"],
                     b"Subject: inbound\r\n\r\nhi\r\n")
    check(rep, 250)
    assert len(set(t.files("claire@example.org")) - before) == 1
    assert_nothing_queued(t)


@pytest.mark.parametrize("how", ["clear", "starttls", "implicit"])
def test_submission_without_auth_refuses_everything(t, how):
    if how == "implicit":
        c = t.subs_client()
        c.ehlo()
    else:
        c = t.sub_client(tls=how == "starttls")
        if how == "clear":
            c.ehlo()
    with c:
        for sender in SENDERS:
            c.expect(f"MAIL FROM:<{sender}>", 530, "5.7.0")
            for rcpt in RELAY_TRICKS[:3] + ["ben@example.org"]:
                c.expect(f"RCPT TO:<{rcpt}>", 503, "5.5.1")
            c.expect("DATA", 503, "5.5.1")
    assert_nothing_queued(t)


def test_wrong_password_does_not_open_relay(ternd):
    t = submit_ternd(ternd)
    with t.sub_client() as c:
        c.expect(f"AUTH PLAIN {plain(CLAIRE, 'guess')}", 535, "5.7.8")
        c.expect(f"MAIL FROM:<{CLAIRE}>", 530, "5.7.0")
        c.expect("RCPT TO:<someone@example.com>", 503, "5.5.1")
    assert_nothing_queued(t)


def test_foreign_sender_after_auth_553(t):
    with t.sub_client() as c:
        c.expect(f"AUTH PLAIN {plain(CLAIRE, PASSWORD)}", 235, "2.7.0")
        for sender in ("ben@example.org", "someone@example.com", "postmaster@example.org"):
            c.expect(f"MAIL FROM:<{sender}>", 553, "5.7.1")
            c.expect("RCPT TO:<someone@example.com>", 503, "5.5.1")
    assert_nothing_queued(t)


def test_relay_networks_not_matching(ternd):
    t = ternd({"relay.networks": "10.0.0.0/8,::1/128"})
    with t.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<dave@example.com>", 250)
        c.expect("RCPT TO:<someone@example.com>", 554, "5.7.1")
    assert_nothing_queued(t)


# -- relay end to end: A -> DNS MX -> B --------------------------------------------------

MSG = (b"Date: Tue, 3 Mar 2026 09:00:00 +0000\r\n"
       b"Message-ID: <e2e-relay@laptop.example.org>\r\n"
       b"From: Claire <claire@example.org>\r\nTo: Ben <ben@example.net>\r\n"
       b"Subject: to another MTA\r\n\r\nHello Ben, over DNS MX.\r\n")


def test_relay_end_to_end(ternd, dnsmasq):
    a, b, dns = two_mtas(ternd, dnsmasq)
    with smtplib.SMTP("127.0.0.1", a.sub_port, local_hostname="laptop.example.org",
                      timeout=10 * SLOW) as s:
        s.starttls(context=tls_client_context())
        s.ehlo()
        s.login(CLAIRE, PASSWORD)
        assert s.sendmail(CLAIRE, [BEN], MSG) == {}
    [d] = wait_for(lambda: maildir_messages(b.state_dir, BEN),
                   f"the message in {b.state_dir}/mail/example.net/ben/new")
    assert d.path.parent.name == "new"
    assert d.return_path == CLAIRE
    recv = received_headers(d.data)
    assert len(recv) == 2, recv
    # B's, on top: from A, over TLS.  B offers STARTTLS and A uses it
    # whenever it is offered (docs/tls-auth.md), so plain ESMTP here would
    # mean the relay hop went in clear text
    rb = received.parse(recv[0])
    assert rb.value("from") == "mx.example.org", rb
    assert rb.tcp_info() is not None and rb.tcp_info()[1] == "[127.0.0.1]", rb
    assert rb.value("by") == "mx.example.net", rb
    assert rb.value("with") == "ESMTPS", rb
    assert re.fullmatch(r"version=TLSv1\.3 cipher=[A-Z0-9_]+", rb.get("with")[1][0]), rb
    assert rb.value("for") == f"<{BEN}>", rb
    assert re.search(r"mx=mx\.example\.net addr=127\.0\.0\.1:%d event=tls "
                     r"version=TLSv1\.3" % b.port, a.log()), a.log()[-3000:]
    # A's: Claire's authenticated submission
    ra = received.parse(recv[1])
    assert ra.value("from") == "laptop.example.org", ra
    assert ra.value("by") == "mx.example.org", ra
    assert ra.value("with") == "ESMTPSA", ra
    assert re.fullmatch(r"version=TLSv1\.3 cipher=[A-Z0-9_]+", ra.get("with")[1][0]), ra
    assert ra.value("id"), ra
    assert abs(ra.date.timestamp() - time.time()) < 600, ra
    # the message itself arrives unchanged
    head = d.data[:len(d.data) - len(MSG)]
    assert d.data.endswith(MSG), d.data
    assert re.fullmatch(rb"Return-Path: <[^>]*>\r\n(Received: [^\r]*\r\n([ \t][^\r]*\r\n)*){2}",
                        head), head
    # and leaves A's queue
    wait_for(lambda: a.queue_list() == [] and a.queue_env_files() == [],
             "A's queue to empty", timeout=10)


def test_relay_b_used_tls(ternd, dnsmasq):
    """A delivers with STARTTLS when B offers it (opportunistic TLS)."""
    a, b, dns = two_mtas(ternd, dnsmasq)
    rep = None
    with a.sub_client() as c:
        c.expect(f"AUTH PLAIN {plain(CLAIRE, PASSWORD)}", 235)
        c.expect(f"MAIL FROM:<{CLAIRE}>", 250)
        c.expect(f"RCPT TO:<{BEN}>", 250)
        c.expect("DATA", 354)
        c.send(b"Subject: tls hop\r\n\r\nx\r\n.\r\n")
        rep = c.reply()
    check(rep, 250)
    [d] = wait_for(lambda: maildir_messages(b.state_dir, BEN), "delivery to B")
    recv = received_headers(d.data)
    assert re.search(r" with ESMTPS \(version=TLSv1\.[23] cipher=\S+\) id ", recv[0]), recv[0]


def test_relay_networks_relays_without_auth(ternd, dnsmasq):
    a, b, dns = two_mtas(ternd, dnsmasq, {"relay.networks": "127.0.0.0/8"})
    msg = b"Subject: from a trusted network\r\n\r\nrelayed\r\n"
    with a.client() as c:
        c.ehlo("app.example.org")
        c.expect("MAIL FROM:<app@example.org>", 250)
        c.expect(f"RCPT TO:<{BEN}>", 250)
        c.expect("DATA", 354)
        c.send(msg + b".\r\n")
        check(c.reply(), 250)
    [d] = wait_for(lambda: maildir_messages(b.state_dir, BEN), "delivery to B")
    assert d.return_path == "app@example.org"
    recv = received_headers(d.data)
    assert len(recv) == 2, recv
    assert re.match(r"Received: from app\.example\.org .* by mx\.example\.org "
                    r"\(tern\) with ESMTP id ", recv[1]), recv[1]
    assert d.data.endswith(msg), d.data
    # the MX port does not add Date / Message-ID
    assert b"\r\nDate:" not in d.data and b"\r\nMessage-ID:" not in d.data.replace(b"Message-Id", b"Message-ID")
    wait_for(lambda: a.queue_list() == [], "A's queue to empty", timeout=10)


def test_authenticated_submission_to_local_and_remote(ternd, dnsmasq):
    """One message, one local and one remote recipient."""
    a, b, dns = two_mtas(ternd, dnsmasq)
    a.tern("user", "add", "zoe@example.org")
    with smtplib.SMTP("127.0.0.1", a.sub_port, local_hostname="laptop.example.org",
                      timeout=10 * SLOW) as s:
        s.starttls(context=tls_client_context())
        s.ehlo()
        s.login(CLAIRE, PASSWORD)
        assert s.sendmail(CLAIRE, ["zoe@example.org", BEN], MSG) == {}
    [db] = wait_for(lambda: maildir_messages(b.state_dir, BEN), "delivery to B")
    [da] = wait_for(lambda: a.messages("zoe@example.org"), "local delivery on A")
    assert db.data.endswith(MSG) and da.data.endswith(MSG)
    assert len(received_headers(da.data)) == 1
    assert len(received_headers(db.data)) == 2
