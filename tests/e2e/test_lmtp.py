"""delivery.lmtp: mail for tern's own users goes to an LMTP server
(RFC 2033) instead of tern's Maildirs.

With `delivery.lmtp = unix:/path` or `IP:PORT` (`[::1]:PORT`), ternd queues
mail for local recipients (250 after DATA = queued) and its queue manager
hands it to the LMTP server: LHLO, MAIL, RCPT..., DATA, one reply per
accepted recipient.  2xx delivered, 5xx bounced (the DSN goes back to the
sender the same way), 4xx or no connection: stays queued, retried.

The LMTP server is a private Dovecot (conftest's DovecotLmtp, fixture
dovecot_lmtp) that knows ben@example.org and claire@example.org, not
dave@example.net (a user of tern only); the tests read what it stored back
over IMAP.
"""

import email
import email.policy
import re
import smtplib
import time

import pytest

from conftest import (PASSWORD, SLOW, dsn_of, field, received_headers,
                      submit_ternd, wait_for)

BEN = "ben@example.org"            # tern user and Dovecot user
CLAIRE = "claire@example.org"      # tern user and Dovecot user
DAVE = "dave@example.net"          # tern user only: Dovecot says 550 5.1.1
HOST = ("-o", "hostname=mx.test")


def msg(tag, to=BEN, sender=CLAIRE, extra=b""):
    """A message whose body needs dot-stuffing on the LMTP hop."""
    return (f"Date: Fri, 6 Mar 2026 09:00:00 +0000\r\n"
            f"Message-ID: <{tag}@client.test>\r\n"
            f"From: <{sender}>\r\nTo: <{to}>\r\n"
            f"Subject: {tag}\r\n\r\n"
            f"Body of {tag}.\r\n"
            f".A line that starts with a dot.\r\n"
            f"..\r\n"
            f"Last line.\r\n").encode() + extra


def parse(raw):
    return email.message_from_bytes(raw, policy=email.policy.compat32)


def tern_received(raw):
    """The Received fields tern added (Dovecot adds its own 'with LMTP')."""
    return [h for h in received_headers(raw) if "(tern)" in h]


def check_lmtp_copy(raw, content, sender, rcpt, proto=r"E?SMTP\S*"):
    """raw: a message as Dovecot stored it after tern's LMTP delivery."""
    m = parse(raw)
    rp = m.get_all("Return-Path") or []
    assert rp == [f"<{sender}>"], (
        f"expected exactly one Return-Path <{sender}> (added by the LMTP "
        f"server from MAIL FROM; tern must not add its own): {rp}\n"
        f"{raw[:600]!r}")
    recv = received_headers(raw)
    assert any(" with LMTP " in h for h in recv), \
        f"no Received from Dovecot's LMTP: {recv}"
    mine = tern_received(raw)
    assert len(mine) == 1, f"expected one Received by tern: {recv}"
    assert re.search(rf" by mx\.test \(tern\) with {proto}(?: \([^)]*\))? id \S+",
                     mine[0]), \
        f"tern's Received header: {mine[0]!r}"
    assert raw.endswith(content), (
        f"the content changed on its way (dot-stuffing over LMTP?):\n"
        f"sent   {content!r}\nstored {raw[-len(content) - 40:]!r}")
    assert re.match(r"Received: from mx\.test\b", recv[0]), \
        f"tern should LHLO with its hostname (mx.test): {recv[0]!r}"
    # Dovecot adds Delivered-To only to a transaction with one RCPT
    delivered_to = m.get_all("Delivered-To") or []
    assert delivered_to in ([], [rcpt]), f"Delivered-To {delivered_to} (want {rcpt})"
    return m


def assert_not_in_tern_maildir(t, *addrs):
    for a in addrs:
        files = t.files(a)
        assert files == [], (f"with delivery.lmtp set, tern wrote {a}'s mail "
                             f"into its own Maildir too: {files}")


def queue_empty(t):
    return t.queue_list() == [] and t.queue_env_files() == []


def wait_queue_empty(t, timeout=10):
    wait_for(lambda: queue_empty(t),
             f"tern's queue to empty (now {t.queue_list()})", timeout)


def pending_after_attempt(t):
    """The one queued message once one attempt at its recipient failed."""
    ms = t.queue_list()
    if len(ms) != 1 or len(ms[0]["recipients"]) != 1:
        return None
    [r] = ms[0]["recipients"]
    return ms[0] if r.get("attempts", 0) >= 1 else None


# ---------------------------------------------------------------------------
# the fixture itself
# ---------------------------------------------------------------------------

def test_dovecot_lmtp_fixture(dovecot_lmtp):
    """Dovecot alone: LMTP on the unix socket and on TCP, 550 5.1.1 for a
    user it does not know, the mail readable over IMAP."""
    dv = dovecot_lmtp()
    for tcp, tag in ((False, "via-unix"), (True, "via-tcp")):
        with dv.lmtp(tcp=tcp) as l:
            code, _ = l.ehlo()
            assert code == 250
            assert l.mail(CLAIRE)[0] == 250
            code, text = l.rcpt("nobody@example.org")
            assert code == 550 and text.startswith(b"5.1.1"), (code, text)
            assert l.rcpt(BEN)[0] == 250
            code, text = l.data(msg(tag))
            assert code == 250, (code, text)
    raws = dv.wait_messages(BEN, 2)
    assert [parse(r)["Subject"] for r in raws] == ["via-unix", "via-tcp"]
    for r in raws:
        assert r.startswith(b"Return-Path: <claire@example.org>\r\n"), r[:200]
        assert r.endswith(msg(parse(r)["Subject"]))
    assert dv.messages(CLAIRE) == []


# ---------------------------------------------------------------------------
# a, b: inbound mail on port 25 goes over LMTP
# ---------------------------------------------------------------------------

def deliver_inbound(t, dv, tag):
    content = msg(tag, extra="8bit: caf\u00e9\r\n".encode())
    with t.smtplib() as s:
        refused = s.sendmail(CLAIRE, [BEN], content,
                             mail_options=["BODY=8BITMIME"])
        assert refused == {}, refused
        # who is local is still tern's users table, at RCPT time
        with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
            s.sendmail(CLAIRE, ["nobody@example.org"], content)
        code, text = e.value.recipients["nobody@example.org"]
        assert code == 550 and text.startswith(b"5.1.1"), (code, text)
    [raw] = dv.wait_messages(BEN)
    m = check_lmtp_copy(raw, content, CLAIRE, BEN)
    assert m["Subject"] == tag
    assert re.match(r"Received: from client\.test \((?:\S+ )?\[127\.0\.0\.1\]\) "
                    r"by mx\.test \(tern\) with ESMTP id \S+ "
                    r"for <ben@example\.org>; ", tern_received(raw)[0]), \
        tern_received(raw)
    assert_not_in_tern_maildir(t, BEN)
    wait_queue_empty(t)
    # the queue is empty, so every attempt is over: one LMTP delivery
    # (Dovecot said 250 once), and Dovecot holds one copy
    log = t.log()
    assert len(re.findall(r"event=delivered to=<ben@example\.org> code=250 ",
                          log)) == 1, log[-3000:]
    assert re.search(r"event=removed\b", log), log[-3000:]
    assert len(dv.messages(BEN)) == 1, "delivered more than once"
    assert dv.messages(CLAIRE) == []
    assert_not_in_tern_maildir(t, BEN, CLAIRE)


def test_inbound_over_lmtp_unix_socket(ternd, dovecot_lmtp):
    dv = dovecot_lmtp(tcp=False)
    t = ternd({"delivery.lmtp": dv.delivery_unix})
    deliver_inbound(t, dv, "lmtp-unix")


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_inbound_over_lmtp_tcp(ternd, dovecot_lmtp, host):
    dv = dovecot_lmtp(unix=False, tcp_host=host)
    t = ternd({"delivery.lmtp": dv.delivery_tcp})     # [::1]:PORT for IPv6
    deliver_inbound(t, dv, f"lmtp-tcp-{host}")


# ---------------------------------------------------------------------------
# c: one recipient unknown to the LMTP server: bounce, DSN over LMTP
# ---------------------------------------------------------------------------

def test_lmtp_rejects_one_recipient_dsn_to_sender(ternd, dovecot_lmtp):
    dv = dovecot_lmtp()
    t = ternd({"delivery.lmtp": dv.delivery_unix})
    content = msg("half-known", to=BEN)
    with t.smtplib() as s:
        assert s.sendmail(CLAIRE, [BEN, DAVE], content) == {}, \
            "tern's own users table knows dave: both accepted at RCPT"
    [raw] = dv.wait_messages(BEN)
    check_lmtp_copy(raw, content, CLAIRE, BEN)

    [dsn] = dv.wait_messages(CLAIRE)
    m, per_msg, rcpts, returned = dsn_of(dsn)
    assert CLAIRE in (m["To"] or ""), m["To"]
    assert "MAILER-DAEMON@" in (m["From"] or "").upper(), m["From"]
    assert field(per_msg, "Reporting-MTA").lower() == "dns; mx.test", \
        per_msg.items()
    assert len(rcpts) == 1, f"only dave failed: {[r.items() for r in rcpts]}"
    [r] = rcpts
    assert field(r, "Final-Recipient").lower() == f"rfc822; {DAVE}", r.items()
    assert field(r, "Action").lower() == "failed", r.items()
    assert field(r, "Status") == "5.1.1", r.items()
    diag = field(r, "Diagnostic-Code")
    # Dovecot's reply: 550 5.1.1 <dave@example.net> User doesn't exist: ...
    assert re.match(r"(?i)[sl]mtp; ?550[ -]5\.1\.1 .*User doesn't exist", diag), \
        f"Diagnostic-Code should quote the LMTP server's reply: {diag!r}"
    [ret] = returned
    assert b"Message-ID: <half-known@client.test>" in ret.as_bytes(), \
        ret.as_bytes()[:500]
    assert_not_in_tern_maildir(t, BEN, CLAIRE)
    wait_queue_empty(t)
    # every attempt is over (the DSN itself went through the queue too):
    # dave's failure was decided once and reported once
    log = t.log()
    assert len(re.findall(r"event=bounced to=<dave@example\.net> code=550 ",
                          log)) == 1, log[-3000:]
    assert len(re.findall(r"event=dsn kind=failure to=<claire@example\.org>",
                          log)) == 1, log[-3000:]
    assert len(dv.messages(CLAIRE)) == 1, "one DSN only"
    assert len(dv.messages(BEN)) == 1, "ben got his copy once"


def test_lmtp_notify_success_gets_delivered_dsn(ternd, dovecot_lmtp):
    """RFC 3461: LMTP is final delivery, so NOTIFY=SUCCESS earns a
    "delivered" report (not "relayed"), itself delivered over LMTP, with
    no Remote-MTA (a mailbox server is not an MTA)."""
    dv = dovecot_lmtp()
    t = ternd({"delivery.lmtp": dv.delivery_unix})
    content = msg("notify-success", to=BEN)
    with t.smtplib() as s:
        s.ehlo("client.test")
        s.mail(CLAIRE)
        assert s.rcpt(BEN, ["NOTIFY=SUCCESS"])[0] == 250
        assert s.data(content)[0] == 250
    [raw] = dv.wait_messages(BEN)
    check_lmtp_copy(raw, content, CLAIRE, BEN)
    [dsn] = dv.wait_messages(CLAIRE)
    _, _, [r], _ = dsn_of(dsn)
    assert field(r, "Final-Recipient").lower() == f"rfc822; {BEN}", r.items()
    assert field(r, "Action").lower() == "delivered", r.items()
    assert field(r, "Status").startswith("2."), r.items()
    assert r.get("Remote-MTA") is None, r.items()
    wait_queue_empty(t)


# ---------------------------------------------------------------------------
# d: the LMTP server is down: queued, retried on flush, nothing lost
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("via", ["unix", "tcp"])
def test_lmtp_down_stays_queued_then_flush(ternd, dovecot_lmtp, via):
    dv = dovecot_lmtp(start=False)          # addresses known, nobody listens
    target = dv.delivery_unix if via == "unix" else dv.delivery_tcp
    t = ternd({"delivery.lmtp": target, "queue.retry_first": "3600",
               "queue.retry_max": "3600"})
    content = msg(f"down-{via}")
    with t.smtplib() as s:
        assert s.sendmail(CLAIRE, [BEN], content) == {}, "queued: 250"
    m = wait_for(lambda: pending_after_attempt(t),
                 f"a failed LMTP attempt in `tern queue list --json` "
                 f"(now {t.queue_list()})")
    assert m["sender"] == CLAIRE, m
    [r] = m["recipients"]
    assert r["addr"] == BEN, r
    assert r["state"].lower() == "pending", r
    assert r["text"], f"no error recorded for the failed LMTP attempt: {r}"
    assert r["code"] == 0 or 400 <= r["code"] < 500, \
        f"no connection is a temporary failure: {r}"
    assert r["next_try"] > time.time() + 60, r
    assert m["id"] in t.queue_env_files(), t.queue_env_files()
    assert_not_in_tern_maildir(t, BEN)

    dv.start()
    t.tern("queue", "flush")
    [raw] = dv.wait_messages(BEN)
    check_lmtp_copy(raw, content, CLAIRE, BEN)
    wait_queue_empty(t)
    assert_not_in_tern_maildir(t, BEN, CLAIRE)
    assert dv.messages(CLAIRE) == [], "no bounce, no delay DSN"


# ---------------------------------------------------------------------------
# 4xx for one recipient after the final dot: that one stays queued
# ---------------------------------------------------------------------------

def test_lmtp_4xx_after_data_for_one_recipient(ternd, dovecot_lmtp):
    """Claire's mailbox is over quota: Dovecot accepts both RCPTs, then
    after the dot says 250 for ben and 452 4.2.2 for claire.  Ben has his
    copy once; claire stays queued with that reply; after the quota is
    lifted a flush delivers hers, and ben gets no second copy."""
    dv = dovecot_lmtp(start=False)
    dv.set_quota(CLAIRE, "1B")
    dv.start()
    t = ternd({"delivery.lmtp": dv.delivery_unix, "queue.retry_first": "3600",
               "queue.retry_max": "3600"})
    content = msg("over-quota", to=f"{BEN}, {CLAIRE}", sender=BEN)
    with t.smtplib() as s:
        assert s.sendmail(BEN, [BEN, CLAIRE], content) == {}
    [raw] = dv.wait_messages(BEN)
    check_lmtp_copy(raw, content, BEN, BEN)

    def claire_pending():
        ms = t.queue_list()
        if len(ms) != 1:
            return None
        rs = {r["addr"]: r for r in ms[0]["recipients"]}
        c = rs.get(CLAIRE)
        return (ms[0], rs) if c and c.get("attempts", 0) >= 1 else None
    m, rs = wait_for(claire_pending, f"claire's failed attempt in the queue "
                     f"(now {t.queue_list()})")
    c = rs[CLAIRE]
    assert c["state"].lower() == "pending", f"a 452 is temporary: {c}"
    assert c["code"] == 452 and "Quota exceeded" in (c["text"] or ""), \
        f"the queue should record Dovecot's reply after DATA for claire: {c}"
    assert BEN not in rs or rs[BEN]["state"].lower() == "delivered", rs
    assert dv.messages(CLAIRE) == []

    dv.set_quota(CLAIRE, None)
    t.tern("queue", "flush")
    [raw] = dv.wait_messages(CLAIRE)
    check_lmtp_copy(raw, content, BEN, CLAIRE)
    wait_queue_empty(t)
    assert len(dv.messages(BEN)) == 1, "ben's copy delivered again, or a DSN"
    assert_not_in_tern_maildir(t, BEN, CLAIRE)


# ---------------------------------------------------------------------------
# e: local submission (sendmail) to local users goes over LMTP too
# ---------------------------------------------------------------------------

def test_sendmail_to_local_users_over_lmtp(ternd, dovecot_lmtp):
    dv = dovecot_lmtp()
    t = ternd({"delivery.lmtp": dv.delivery_unix})
    # two accepted recipients in one transaction: two replies after DATA
    r = t.tern(*HOST, "sendmail", "-t", "-i", "-f", CLAIRE,
               input=(f"To: {BEN}\nCc: {CLAIRE}\nSubject: cron\n\n"
                      f"line one\n.hidden dot\n").encode())
    assert r.returncode == 0, r
    for rcpt in (BEN, CLAIRE):
        [raw] = dv.wait_messages(rcpt)
        m = parse(raw)
        assert m["Subject"] == "cron", m.items()
        assert m.get_all("Return-Path") == [f"<{CLAIRE}>"], m.get_all("Return-Path")
        # (Dovecot adds Delivered-To only when a transaction has one RCPT)
        assert m.get_all("Delivered-To") in (None, [rcpt]), m.items()
        mine = tern_received(raw)
        assert len(mine) == 1 and "from local (uid " in mine[0] \
            and " with local" in mine[0], received_headers(raw)
        assert raw.endswith(b"\r\n\r\nline one\r\n.hidden dot\r\n"), raw[-200:]
    assert_not_in_tern_maildir(t, BEN, CLAIRE)
    wait_queue_empty(t)


def test_submission_port_to_local_user_over_lmtp(ternd, dovecot_lmtp):
    """An authenticated client on the submission port, to a local user."""
    from conftest import tls_client_context
    dv = dovecot_lmtp(unix=False)
    t = submit_ternd(ternd, {"delivery.lmtp": dv.delivery_tcp})
    content = msg("submitted")
    with smtplib.SMTP("127.0.0.1", t.sub_port, local_hostname="laptop.test",
                      timeout=10 * SLOW) as s:
        s.starttls(context=tls_client_context())
        s.ehlo()
        s.login(CLAIRE, PASSWORD)
        assert s.sendmail(CLAIRE, [BEN], content) == {}
    [raw] = dv.wait_messages(BEN)
    check_lmtp_copy(raw, content, CLAIRE, BEN, proto=r"ESMTPSA")
    assert_not_in_tern_maildir(t, BEN)
    wait_queue_empty(t)


# ---------------------------------------------------------------------------
# per user: the users row names the LMTP server (tern user add --lmtp)
# ---------------------------------------------------------------------------

def test_per_user_lmtp_target(ternd, dovecot_lmtp):
    """No delivery.lmtp: ben's row says lmtp:unix:SOCK, claire keeps her
    Maildir under state_dir.  One message to both: ben's copy goes through
    the queue to Dovecot, claire's into her Maildir at the end of data;
    NOTIFY=SUCCESS gets claire (the sender) a "delivered" report for each."""
    dv = dovecot_lmtp()
    t = ternd(users=(CLAIRE,))
    t.tern("user", "add", BEN, "--lmtp", dv.delivery_unix)
    r = t.tern("user", "add", "x@example.org", "--lmtp", "unix:relative", check=False)
    assert r.returncode != 0 and b"lmtp:unix:" in r.stderr, r
    content = msg("per-user", to=BEN)
    with t.smtplib() as s:
        s.ehlo("client.test")
        s.mail(CLAIRE)
        assert s.rcpt(BEN, ["NOTIFY=SUCCESS"])[0] == 250
        assert s.rcpt(CLAIRE)[0] == 250
        assert s.data(content)[0] == 250
    [raw] = dv.wait_messages(BEN)
    check_lmtp_copy(raw, content, CLAIRE, BEN)
    assert_not_in_tern_maildir(t, BEN)
    # ben's success report is delivered like any mail to claire: her Maildir
    deadline = time.monotonic() + 15 * SLOW
    while time.monotonic() < deadline:
        files = [p.read_bytes() for p in t.files(CLAIRE)]
        if len(files) == 2:
            break
        time.sleep(0.1)
    [dsn] = [f for f in files if f.startswith(b"Return-Path: <>")]
    [mine] = [f for f in files if not f.startswith(b"Return-Path: <>")]
    assert mine.endswith(content)
    assert dv.messages(CLAIRE) == []
    _, _, [r], _ = dsn_of(dsn)
    assert field(r, "Final-Recipient").lower() == f"rfc822; {BEN}", r.items()
    assert field(r, "Action").lower() == "delivered", r.items()
    wait_queue_empty(t)
