"""Python's smtplib as the client: what is stored is what was sent."""

import smtplib

import pytest

from conftest import check_received

MSG = (b"From: Claire <claire@example.net>\r\n"
       b"To: Ben <ben@example.org>\r\n"
       b"Subject: smtplib test\r\n"
       b"Message-ID: <smtplib-1@example.net>\r\n"
       b"\r\n"
       b"Hello Ben,\r\n"
       b".a line starting with a dot (stuffed on the wire)\r\n"
       b"..two dots\r\n"
       b".\tdot and tab\r\n"
       b"\r\n"
       b"   leading spaces and trailing spaces   \r\n"
       b"-- \r\n"
       b"Claire\r\n")


@pytest.fixture(scope="module")
def t(ternd_module):
    return ternd_module()


def test_ehlo_greeting_and_hostname(t):
    with t.smtplib() as s:
        code, text = s.ehlo("client.test")
        assert code == 250
        assert text.split(b"\n")[0].startswith(b"mx.test")
        for ext in ("pipelining", "size", "8bitmime", "enhancedstatuscodes",
                    "smtputf8", "chunking", "dsn"):
            assert s.has_extn(ext), f"EHLO lacks {ext}: {text!r}"


def test_single_recipient_byte_exact(t):
    before = set(t.files("ben@example.org"))
    with t.smtplib() as s:
        refused = s.sendmail("claire@example.net", ["ben@example.org"], MSG)
        assert refused == {}
    [d] = [d for d in t.messages("ben@example.org") if d.path not in before]
    assert d.return_path == "claire@example.net"
    check_received(d, helo="client.test", rcpt="ben@example.org")
    assert d.body == MSG
    assert d.data.endswith(MSG)


def test_multiple_recipients_same_content_one_file_each(t):
    rcpts = ["ben@example.org", "claire@example.org", "dave@example.net"]
    before = {r: set(t.files(r)) for r in rcpts}
    msg = MSG.replace(b"smtplib-1", b"smtplib-multi")
    with t.smtplib() as s:
        assert s.sendmail("claire@example.net", rcpts, msg) == {}
    bodies = []
    for r in rcpts:
        new = [d for d in t.messages(r) if d.path not in before[r]]
        assert len(new) == 1, f"{r}: {len(new)} new files"
        d = new[0]
        assert d.return_path == "claire@example.net"
        check_received(d, helo="client.test", rcpt=None)
        bodies.append(d.body)
    assert bodies == [msg] * 3


def test_null_sender(t):
    msg = b"Subject: bounce\r\n\r\nnull sender\r\n"
    before = set(t.files("claire@example.org"))
    with t.smtplib() as s:
        s.ehlo("client.test")
        assert s.mail("<>")[0] == 250
        assert s.rcpt("claire@example.org")[0] == 250
        assert s.data(msg)[0] == 250
    [d] = [d for d in t.messages("claire@example.org") if d.path not in before]
    assert d.data.startswith(b"Return-Path: <>\r\n")
    assert d.body == msg


def test_dsn_parameters(t):
    msg = MSG.replace(b"smtplib-1", b"smtplib-dsn")
    before = set(t.files("ben@example.org"))
    with t.smtplib() as s:
        s.ehlo("client.test")
        assert s.has_extn("dsn")
        refused = s.sendmail(
            "claire@example.net", ["ben@example.org"], msg,
            mail_options=["RET=HDRS", "ENVID=QQ314159+2B+3D"],
            rcpt_options=["NOTIFY=SUCCESS,FAILURE",
                          "ORCPT=rfc822;ben@example.org"])
        assert refused == {}
    [d] = [d for d in t.messages("ben@example.org") if d.path not in before]
    assert d.body == msg


def test_dsn_bad_notify_refused(t):
    with t.smtplib() as s:
        s.ehlo("client.test")
        assert s.mail("claire@example.net")[0] == 250
        code, text = s.rcpt("ben@example.org", ["NOTIFY=NEVER,SUCCESS"])
        assert code in (501, 555) and text.startswith(b"5.5.4"), (code, text)


def test_size_declared(t):
    with t.smtplib() as s:
        s.ehlo("client.test")
        code, text = s.mail("claire@example.net", [f"SIZE={len(MSG)}"])
        assert code == 250, text


def test_smtputf8_sender(t):
    sender = "ren\u00e9e@ex\u00e4mple.net"
    msg = ("From: Ren\u00e9e <" + sender + ">\r\n"
           "To: ben@example.org\r\n"
           "Subject: gr\u00fc\u00dfe \u2603\r\n"
           "\r\n"
           "UTF-8 body: \u65e5\u672c\u8a9e\r\n").encode()
    before = set(t.files("ben@example.org"))
    with t.smtplib() as s:
        s.ehlo("client.test")
        assert s.has_extn("smtputf8")
        refused = s.sendmail(sender, ["ben@example.org"], msg,
                             mail_options=["SMTPUTF8", "BODY=8BITMIME"])
        assert refused == {}
    [d] = [d for d in t.messages("ben@example.org") if d.path not in before]
    assert d.data.startswith(b"Return-Path: <" + sender.encode() + b">\r\n")
    check_received(d, helo="client.test", rcpt="ben@example.org",
                   proto=r"(?:ESMTP|UTF8SMTP)\S*")
    assert d.body == msg


def test_smtputf8_recipient(ternd):
    rcpt = "j\u00fcrgen@example.org"
    t = ternd(users=("ben@example.org", rcpt))
    msg = "Subject: f\u00fcr J\u00fcrgen\r\n\r\nHallo\r\n".encode()
    with t.smtplib() as s:
        s.ehlo("client.test")
        refused = s.sendmail("claire@example.net", [rcpt], msg,
                             mail_options=["SMTPUTF8", "BODY=8BITMIME"])
        assert refused == {}
    [d] = t.messages(rcpt)
    assert d.body == msg


def test_unknown_recipient_refused(t):
    with t.smtplib() as s:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
            s.sendmail("claire@example.net", ["nobody@example.org"], MSG)
        code, text = e.value.recipients["nobody@example.org"]
        assert code == 550 and text.startswith(b"5.1.1"), (code, text)


def test_partial_refusal_delivers_to_the_accepted(t):
    before = set(t.files("claire@example.org"))
    msg = MSG.replace(b"smtplib-1", b"smtplib-partial")
    with t.smtplib() as s:
        refused = s.sendmail("ben@example.org",
                             ["nobody@example.org", "claire@example.org"], msg)
        assert list(refused) == ["nobody@example.org"]
        assert refused["nobody@example.org"][0] == 550
    [d] = [d for d in t.messages("claire@example.org") if d.path not in before]
    assert d.body == msg
    check_received(d, rcpt="claire@example.org")
