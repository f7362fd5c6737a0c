"""ternd delivers into a Maildir that Dovecot serves unchanged over IMAP."""

import os

from conftest import IMAP_USER, RUN_AS


def fetch_all(dv):
    m = dv.imap()
    try:
        typ, data = m.select("INBOX")
        assert typ == "OK", data
        typ, data = m.search(None, "ALL")
        assert typ == "OK", data
        ids = data[0].split()
        out = []
        for i in ids:
            typ, data = m.fetch(i, "(RFC822)")
            assert typ == "OK", data
            out.append(data[0][1])
        return out
    finally:
        m.logout()


def test_dovecot_fixture_reads_handwritten_maildir(dovecot, world_tmp):
    """The fixture itself: a Maildir written by hand is served as is."""
    md = world_tmp / "Maildir"
    for sub in ("tmp", "new", "cur"):
        (md / sub).mkdir(parents=True)
    msg = b"Subject: by hand\r\n\r\nhello\r\n"
    (md / "new" / "1.hand").write_bytes(msg)
    if RUN_AS:      # as root: hand it to the user ternd would run as
        for p in [md] + list(md.rglob("*")):
            os.chown(p, RUN_AS[1], RUN_AS[2])
    dv = dovecot(md)
    assert fetch_all(dv) == [msg]


def test_imap_fetches_delivered_message(ternd, dovecot):
    t = ternd()
    msg = (b"From: Claire <claire@example.net>\r\n"
           b"To: Ben <ben@example.org>\r\n"
           b"Subject: over IMAP\r\n"
           b"Message-ID: <imap-1@example.net>\r\n"
           b"\r\n"
           b"First line.\r\n"
           b".A line that starts with a dot.\r\n"
           b"\r\n"
           b"Last line, 8bit: caf\xc3\xa9\r\n")
    with t.smtplib() as s:
        s.sendmail("claire@example.net", ["ben@example.org"], msg,
                   mail_options=["BODY=8BITMIME"])
    [d] = t.messages(IMAP_USER)
    stored = d.data
    assert d.body == msg
    t.check_clean_exit()          # Dovecot may move new/ -> cur/; ternd is done

    dv = dovecot(t.state_dir / "mail" / "example.org" / "ben")
    fetched = fetch_all(dv)
    assert fetched == [stored], (fetched, stored)
    assert fetched[0].endswith(msg)
    assert fetched[0].startswith(b"Return-Path: <claire@example.net>\r\nReceived: ")
