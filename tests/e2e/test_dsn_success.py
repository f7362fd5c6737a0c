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


def test_success_report_is_headers_only_even_with_ret_full(ternd):
    """A success report must never carry the body back (RFC 3461 4.3 ties
    RET to failures); otherwise NOTIFY=SUCCESS would turn tern into a
    reflector of whole messages to a forged sender."""
    t = ternd()
    send(t, CLAIRE, [(BEN, "NOTIFY=SUCCESS")], "full-asked", ret="FULL")
    [p] = wait_dsns(t, 1)
    _, _, [r], [ret_part] = dsn_of(p.read_bytes())
    assert field(r, "Action").lower() == "delivered", r.items()
    assert ret_part.get_content_type() == "text/rfc822-headers", ret_part.get_content_type()
    raw = ret_part.as_bytes()
    assert b"<full-asked@client.test>" in raw and b"body of full-asked" not in raw


def send_from(t, source, tag):
    with t.client(source=source) as c:
        c.ehlo()
        c.expect(f"MAIL FROM:<{CLAIRE}>", 250)      # forged: nobody logged in
        c.expect(f"RCPT TO:<{BEN}> NOTIFY=SUCCESS", 250)
        c.expect("DATA", 354)
        c.send(f"Subject: {tag}\r\n\r\nbody\r\n.\r\n".encode())
        check(c.reply(), 250)


def dropped(t, which):
    return re.findall(rf"event=dsn_dropped reason=rate_limit limit={which} "
                      rf"kind=success to=<{CLAIRE}> client=127\.0\.0\.\d", t.log())


def test_success_reports_rate_limited_per_client(ternd):
    """Port 25, no AUTH: one client asking NOTIFY=SUCCESS again and again
    gets limits.dsn_per_client reports an hour; the mail itself is still
    delivered, and each report not made is logged."""
    t = ternd({"limits.dsn_per_client": "3", "limits.dsn_per_domain": "1000"})
    for i in range(7):
        send_from(t, "127.0.0.1", f"spray-{i}")
    wait_dsns(t, 3)
    wait_for = time.monotonic() + 5
    while len(dropped(t, "client")) < 4 and time.monotonic() < wait_for:
        time.sleep(0.1)
    time.sleep(0.5)
    assert len(maildir_files(t.state_dir, CLAIRE)) == 3
    assert len(dropped(t, "client")) == 4, t.log()[-2000:]
    assert len(maildir_files(t.state_dir, BEN)) == 7        # mail not refused


def test_success_reports_rate_limited_per_domain(ternd):
    """Many clients, one destination domain: limits.dsn_per_domain."""
    t = ternd({"limits.dsn_per_client": "1000", "limits.dsn_per_domain": "4"})
    for i in range(3):
        send_from(t, "127.0.0.1", f"a-{i}")
        send_from(t, "127.0.0.2", f"b-{i}")
    wait_dsns(t, 4)
    deadline = time.monotonic() + 5
    while len(dropped(t, "domain")) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    assert len(maildir_files(t.state_dir, CLAIRE)) == 4
    assert len(dropped(t, "domain")) == 2, t.log()[-2000:]


def test_authenticated_success_reports_are_not_limited(ternd):
    """The limit is for the open MX port: a logged-in user's reports all
    go out (here: the local sendmail socket, trusted like AUTH)."""
    t = ternd({"limits.dsn_per_client": "1", "limits.dsn_per_domain": "1"})
    for i in range(3):
        t.tern("-o", "hostname=mx.test", "sendmail", "-f", CLAIRE, "-N", "success", BEN,
               input=f"Subject: local-{i}\n\nbody\n".encode())
    wait_dsns(t, 3)
    assert "event=dsn_dropped" not in t.log()


def test_success_reports_default_limit(ternd):
    """With nothing configured, limits.dsn_per_client (30 an hour) holds."""
    t = ternd()
    for i in range(32):
        send_from(t, "127.0.0.1", f"default-{i}")
    wait_dsns(t, 30, timeout=20)
    deadline = time.monotonic() + 5
    while len(dropped(t, "client")) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    assert len(maildir_files(t.state_dir, CLAIRE)) == 30
    assert len(dropped(t, "client")) == 2, t.log()[-2000:]
