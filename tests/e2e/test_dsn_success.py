"""RFC 3461 5.2.2: a recipient delivered here that asked NOTIFY=SUCCESS
earns a "delivered" DSN (an alias with several targets: "expanded"); one
that did not ask gets nothing, and <> never gets a report."""

import re
import time

from conftest import check, dsn_of, field, maildir_files

CLAIRE = "claire@example.org"   # local sender: her DSNs land in her Maildir
BEN = "ben@example.org"


def send(t, sender, rcpts, tag, envid=None, ret=None):
    """rcpts: [(address, "NOTIFY=... ORCPT=..." or "")]"""
    params = "".join(f" {k}={v}" for k, v in (("ENVID", envid), ("RET", ret)) if v)
    with t.client() as c:
        c.ehlo()
        c.expect(f"MAIL FROM:<{sender}>{params}", 250)
        for addr, p in rcpts:
            c.expect(f"RCPT TO:<{addr}>{(' ' + p) if p else ''}", 250)
        c.expect("DATA", 354)
        c.send(f"Subject: {tag}\r\nMessage-ID: <{tag}@client.test>\r\n\r\n"
               f"body of {tag}\r\n.\r\n".encode())
        r = c.reply()
        check(r, 250)
    m = re.search(r"queued as ([0-9a-f]{16})$", r.text)
    assert m, r.text
    return m.group(1)


def wait_dsns(t, n, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = maildir_files(t.state_dir, CLAIRE)
        if len(files) >= n:
            return files
        time.sleep(0.1)
    raise AssertionError(f"{n} DSN(s) expected in {CLAIRE}'s Maildir, "
                         f"found {len(maildir_files(t.state_dir, CLAIRE))}")


def test_notify_success_local_delivery(ternd):
    t = ternd()
    qid = send(t, CLAIRE, [(BEN, "NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;ben@example.org"),
                           ("dave@example.net", "NOTIFY=FAILURE")],
               "success-1", envid="env-42", ret="HDRS")
    [p] = wait_dsns(t, 1)
    m, per_msg, rcpts, returned = dsn_of(p.read_bytes())
    assert CLAIRE in m["To"], m["To"]
    assert field(per_msg, "Original-Envelope-Id") == "env-42", per_msg.items()
    [r] = rcpts                  # dave did not ask
    assert field(r, "Final-Recipient").lower() == f"rfc822; {BEN}", r.items()
    assert field(r, "Original-Recipient").lower() == f"rfc822; {BEN}", r.items()
    assert field(r, "Action").lower() == "delivered", r.items()
    assert field(r, "Status") == "2.0.0", r.items()
    # RET=HDRS: the headers come back, not the body
    [ret_part] = returned
    raw = ret_part.as_bytes()
    assert b"<success-1@client.test>" in raw and b"body of success-1" not in raw
    # a local delivery's success DSN is decided and logged before the 250
    # that ends its DATA (conn.c eom_done; the sqlite table answers
    # inline), so the log already says all there will be
    log = t.log()
    assert len(re.findall(rf"id={qid} sid=\S+ event=delivered ", log)) == 2, log[-3000:]
    assert len(re.findall(rf"id={qid} event=dsn ", log)) == 1, log[-3000:]
    assert re.search(rf"id={qid} event=dsn kind=success to=<claire@example\.org>", log)
    assert len(maildir_files(t.state_dir, CLAIRE)) == 1, "one DSN only"


def test_notify_success_alias_is_expanded(ternd):
    t = ternd()
    t.tern("alias", "add", "team@example.org", BEN, "dave@example.net")
    send(t, CLAIRE, [("team@example.org", "NOTIFY=SUCCESS")], "success-2")
    [p] = wait_dsns(t, 1)
    _, _, [r], _ = dsn_of(p.read_bytes())
    assert field(r, "Final-Recipient").lower() == "rfc822; team@example.org", r.items()
    assert field(r, "Action").lower() == "expanded", r.items()


def test_no_success_report_unasked_or_to_null_sender(ternd):
    t = ternd()
    ids = [send(t, CLAIRE, [(BEN, "")], "unasked"),
           send(t, CLAIRE, [(BEN, "NOTIFY=FAILURE,DELAY")], "failure-only"),
           send(t, "", [(BEN, "NOTIFY=SUCCESS")], "null-sender")]
    # each delivered, and its DSN decision made before its 250 (conn.c
    # eom_done, sqlite answering inline): none of them earned one
    log = t.log()
    for qid in ids:
        assert re.search(rf"id={qid} sid=\S+ event=delivered from=<[^>]*> "
                         rf"to=<{BEN}> ", log), (qid, log[-3000:])
        assert not re.search(rf"id={qid} event=dsn", log), (qid, log[-3000:])
    # and the same path does make one when asked (the control)
    asked = send(t, CLAIRE, [(BEN, "NOTIFY=SUCCESS")], "asked")
    assert re.search(rf"id={asked} event=dsn kind=success to=<{CLAIRE}>", t.log())
    [p] = wait_dsns(t, 1)
    assert b"<asked@client.test>" in p.read_bytes()
    assert len(maildir_files(t.state_dir, CLAIRE)) == 1
    assert len(maildir_files(t.state_dir, BEN)) == 4
