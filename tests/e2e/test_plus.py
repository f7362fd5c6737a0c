"""Plus-addressing (docs/configuration.md, recipient_delimiter;
docs/queue.md, "Plus-addressing"): ben+shop@ is delivered to ben, into
his Maildir++ folder .shop when it exists (read back over IMAP through a
real Dovecot), else his INBOX; aliases are checked on the full address
first; unsafe extensions go to the INBOX; each delimiter character
counts."""

import smtplib

import pytest

from conftest import IMAP_USER, check

BEN = "ben@example.org"
CLAIRE = "claire@example.org"


def send(t, to, subject):
    msg = (f"From: x@remote.test\r\nTo: {to}\r\nSubject: {subject}\r\n"
           f"\r\n{subject}\r\n").encode()
    with t.smtplib() as s:
        assert s.sendmail("x@remote.test", [to], msg) == {}


def rcpt_reply(t, to):
    with t.client() as c:
        c.ehlo("client.test")
        c.expect("MAIL FROM:<x@remote.test>", 250)
        r = c.cmd(f"RCPT TO:<{to}>")
        c.expect("QUIT", 221)
        return r


def subjects(dv, folder):
    m = dv.imap()
    try:
        typ, data = m.select(folder)
        assert typ == "OK", (folder, data)
        typ, data = m.search(None, "ALL")
        out = []
        for i in data[0].split():
            typ, d = m.fetch(i, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            out.append(d[0][1].decode().strip().split(": ", 1)[1])
        return sorted(out)
    finally:
        m.logout()


def box(t, user="ben"):
    return t.state_dir / "mail" / "example.org" / user


def test_inbox_then_existing_folder_over_imap(ternd, dovecot):
    t = ternd({"recipient_delimiter": "+-"})
    # no .shop folder yet: the INBOX, and no folder made
    send(t, "ben+shop@example.org", "first")
    assert not (box(t) / ".shop").exists()
    dv = dovecot(box(t))
    m = dv.imap()
    try:
        typ, data = m.create("shop")    # Dovecot makes .shop (Maildir++)
        assert typ == "OK", data
    finally:
        m.logout()
    assert (box(t) / ".shop").is_dir()
    send(t, "ben+shop@example.org", "second")
    # the other delimiter, and the extension's case folded like the key
    send(t, "ben-Shop@example.org", "third")
    send(t, BEN, "plain")
    assert subjects(dv, "INBOX") == ["first", "plain"]
    assert subjects(dv, "shop") == ["second", "third"]


def test_alias_on_full_address_wins(ternd):
    t = ternd({"recipient_delimiter": "+"})
    t.tern("alias", "add", "ben+sales@example.org", CLAIRE)
    t.tern("alias", "add", "team@example.org", CLAIRE)
    send(t, "ben+sales@example.org", "to claire")
    # the base's alias is used when the full address has none
    send(t, "team+x@example.org", "team x")
    assert len(t.messages(CLAIRE)) == 2
    assert t.messages(BEN) == []


def test_catchall_after_base(ternd):
    t = ternd({"recipient_delimiter": "+"})
    t.tern("alias", "add", "@example.org", CLAIRE)
    # ben+x: the base user ben first (Postfix's order), then the catch-all
    send(t, "ben+x@example.org", "for ben")
    send(t, "nobody+x@example.org", "caught")
    assert len(t.messages(BEN)) == 1
    assert len(t.messages(CLAIRE)) == 1


@pytest.mark.parametrize("ext", [".hidden", "a/b", "{x}", "a=b",
                                 "caf\u00e9"])
def test_unsafe_extension_goes_to_inbox(ternd, ext):
    t = ternd({"recipient_delimiter": "+"})
    to = f"ben+{ext}@example.org"
    if ext.isascii():
        send(t, to, "odd")
    else:
        with t.smtplib() as s:
            assert s.sendmail("x@remote.test", [to],
                              b"Subject: odd\r\n\r\nodd\r\n",
                              mail_options=["SMTPUTF8"]) == {}
    [d] = t.messages(BEN)
    assert d.path.parent == box(t) / "new", d.path
    assert sorted(p.name for p in box(t).iterdir()) == ["cur", "new", "tmp"]


def test_unknown_base_user_refused(ternd):
    t = ternd({"recipient_delimiter": "+"})
    check(rcpt_reply(t, "nobody+shop@example.org"), 550, "5.1.1")


def test_off_without_delimiter(ternd):
    t = ternd()
    check(rcpt_reply(t, "ben+shop@example.org"), 550, "5.1.1")

