"""The queue between two MTAs: bounces (RFC 3464 DSN back to the sender),
retries while the next hop is down, `tern queue list --json` and
`tern queue flush`, and a queue that survives a restart."""

import re
import smtplib
import time

import pytest

from conftest import (BEN, CLAIRE, PASSWORD, SLOW, check, dsn_of, field,
                      free_port, maildir_files,
                      maildir_messages, tls_client_context, two_mtas, wait_for)

NOBODY = "nobody@example.net"


def msg(tag):
    return (f"Date: Wed, 4 Mar 2026 10:00:00 +0000\r\n"
            f"Message-ID: <{tag}@laptop.example.org>\r\n"
            f"From: Claire <claire@example.org>\r\n"
            f"Subject: {tag}\r\n\r\nbody of {tag}\r\n").encode()


def submit(a, rcpts, content, sender=CLAIRE):
    """Returns the reply to the end of data, e.g. "2.0.0 Ok: queued as ID"."""
    with smtplib.SMTP("127.0.0.1", a.sub_port, local_hostname="laptop.example.org",
                      timeout=10 * SLOW) as s:
        s.starttls(context=tls_client_context())
        s.ehlo()
        s.login(CLAIRE, PASSWORD)
        s.mail(sender)
        for r in rcpts:
            code, _ = s.rcpt(r)
            assert code == 250, (r, code)
        code, text = s.data(content)
        assert code == 250, (code, text)
        return text.decode()


def queue_empty(a):
    return a.queue_list() == [] and a.queue_env_files() == []


def queue_id(reply):
    m = re.search(r"queued as ([0-9a-f]{16})$", reply)
    assert m, reply
    return m.group(1)


def wait_removed(a, qid):
    """The message's last attempt is over: its DSNs are stored and logged
    before its queue file goes (qmgr finish_run), and "removed" is logged
    after that, so from here on what the log says of it is complete."""
    wait_for(lambda: re.search(rf"id={qid} event=removed\b", a.log()),
             f"id={qid} event=removed in A's log", timeout=15)


def check_failed_rcpt(r, rcpt):
    assert field(r, "Final-Recipient").lower() == f"rfc822; {rcpt}", r.items()
    assert field(r, "Action").lower() == "failed", r.items()
    assert field(r, "Status") == "5.1.1", r.items()
    diag = field(r, "Diagnostic-Code")
    assert diag.lower().startswith("smtp;") and "550" in diag, diag


def test_bounce_dsn_to_sender(ternd, dnsmasq):
    a, b, dns = two_mtas(ternd, dnsmasq)
    content = msg("bounce-me")
    qid = queue_id(submit(a, [NOBODY], content))
    [path] = wait_for(lambda: maildir_files(a.state_dir, CLAIRE),
                      "the DSN in claire's Maildir on A")
    raw = path.read_bytes()
    assert raw.startswith(b"Return-Path: <>\r\n"), raw[:200]
    m, per_msg, rcpts, returned = dsn_of(raw)
    assert CLAIRE in m["To"], m["To"]
    assert "MAILER-DAEMON@" in m["From"].upper(), m["From"]
    assert m["Auto-Submitted"] and m["Auto-Submitted"].startswith("auto-replied"), m["Auto-Submitted"]
    assert m["Date"] and m["Message-ID"], m.items()
    assert field(per_msg, "Reporting-MTA").lower() == "dns; mx.example.org", per_msg.items()
    [r] = rcpts
    check_failed_rcpt(r, NOBODY)
    # the original comes back
    [ret] = returned
    assert b"Message-ID: <bounce-me@laptop.example.org>" in ret.as_bytes(), ret.as_bytes()[:500]
    # nothing reached B, nothing is left on A
    assert maildir_messages(b.state_dir, BEN) == []
    wait_for(lambda: queue_empty(a), "A's queue to empty", timeout=10)
    # one DSN only: the one failure decided once, reported once, and the
    # message gone after it (nothing left that could report again)
    wait_removed(a, qid)
    log = a.log()
    assert len(re.findall(rf"id={qid} mx=\S+ addr=\S+ event=bounced "
                          rf"to=<{NOBODY}> code=550 ", log)) == 1, log[-3000:]
    assert len(re.findall(rf"id={qid} event=dsn kind=failure to=<{CLAIRE}>",
                          log)) == 1, log[-3000:]
    assert len(maildir_files(a.state_dir, CLAIRE)) == 1


def test_bounce_lists_only_failed_recipients(ternd, dnsmasq):
    a, b, dns = two_mtas(ternd, dnsmasq)
    content = msg("half")
    submit(a, [BEN, NOBODY], content)
    [d] = wait_for(lambda: maildir_messages(b.state_dir, BEN), "delivery to ben on B")
    assert d.data.endswith(content)
    [path] = wait_for(lambda: maildir_files(a.state_dir, CLAIRE), "the DSN on A")
    _, _, rcpts, _ = dsn_of(path.read_bytes())
    assert len(rcpts) == 1, [r.items() for r in rcpts]
    check_failed_rcpt(rcpts[0], NOBODY)
    wait_for(lambda: queue_empty(a), "A's queue to empty", timeout=10)


def test_null_sender_is_never_bounced(ternd, dnsmasq):
    """A bounce of a bounce would loop: a failed <> message is dropped."""
    a, b, dns = two_mtas(ternd, dnsmasq)
    qid = queue_id(submit(a, [NOBODY], msg("from-null"), sender=""))
    wait_for(lambda: queue_empty(a), "A's queue to empty", timeout=10)
    # B's 550 was taken as final for nobody, and the message removed
    # without a DSN: the attempt is over (wait_removed), so a DSN would
    # have been logged and stored by now
    wait_removed(a, qid)
    log = a.log()
    assert re.search(rf"id={qid} mx=\S+ addr=\S+ event=bounced to=<{NOBODY}> "
                     rf"code=550 ", log), log[-3000:]
    assert re.search(rf"id={qid} event=dsn_suppressed to=<{NOBODY}> "
                     rf"reason=null_sender", log), log[-3000:]
    assert not re.search(rf"id={qid} event=dsn ", log), log[-3000:]
    files = [p for p in (a.state_dir / "mail").rglob("*") if p.is_file()]
    assert files == [], files


def pending_with_error(a):
    ms = a.queue_list()
    if len(ms) != 1:
        return None
    [r] = ms[0]["recipients"]
    return ms[0] if r.get("attempts", 0) >= 1 else None


def test_retry_then_flush(ternd, dnsmasq):
    # B is down; A would wait an hour before trying again by itself
    a, b, dns = two_mtas(ternd, dnsmasq, {"queue.retry_first": "3600",
                                          "queue.retry_max": "3600"},
                         b_start=False)
    content = msg("retry-me")
    reply = submit(a, [BEN], content)
    m = wait_for(lambda: pending_with_error(a),
                 "a failed first attempt in `tern queue list --json`")
    # the id the client was given is the queue entry's
    assert reply.endswith(f"queued as {m['id']}"), (reply, m["id"])
    assert m["sender"] == CLAIRE, m
    assert m["held"] is False, m
    [r] = m["recipients"]
    assert r["addr"] == BEN, r
    assert r["state"].lower() == "pending", r
    assert r["text"], f"no error recorded for the failed attempt: {r}"
    assert r["code"] == 0 or 400 <= r["code"] < 500, r
    assert r["next_try"] > time.time() + 60, r
    assert m["id"] in a.queue_env_files(), a.queue_env_files()
    # the human listing and `queue show` say it too
    out = a.tern("queue", "list").stdout.decode()
    assert m["id"] in out and CLAIRE in out, out
    out = a.tern("queue", "show", m["id"]).stdout.decode()
    assert BEN in out and CLAIRE in out, out

    # the queue survives a restart of A
    assert a.stop() == 0
    a.start()
    ids = [x["id"] for x in a.queue_list()]
    assert ids == [m["id"]], ids

    # B comes up; nothing moves until the admin flushes: the restarted
    # scheduler kept the next try an hour away, after one attempt
    b.start()
    [m2] = a.queue_list()
    [r2] = m2["recipients"]
    assert r2["attempts"] == 1 and r2["next_try"] == r["next_try"], (r, r2)
    assert r2["next_try"] > time.time() + 60, r2
    assert len(re.findall(rf"id={m['id']} mx=\S+ addr=\S+ event=connect\b",
                          a.log())) == 1, a.log()[-3000:]
    assert maildir_messages(b.state_dir, BEN) == []
    a.tern("queue", "flush")
    [d] = wait_for(lambda: maildir_messages(b.state_dir, BEN), "delivery after flush")
    assert d.data.endswith(content)
    assert d.return_path == CLAIRE
    wait_for(lambda: queue_empty(a), "A's queue to empty", timeout=10)
    assert maildir_files(a.state_dir, CLAIRE) == []     # no delay DSN, no bounce


def test_retry_by_itself(ternd, dnsmasq):
    """With a short back-off the scheduler retries without being told."""
    a, b, dns = two_mtas(ternd, dnsmasq, {"queue.retry_first": "1",
                                          "queue.retry_max": "1"},
                         b_start=False)
    content = msg("retry-auto")
    submit(a, [BEN], content)
    wait_for(lambda: pending_with_error(a), "a failed first attempt")
    b.start()
    [d] = wait_for(lambda: maildir_messages(b.state_dir, BEN), "delivery on retry",
                   timeout=10)
    assert d.data.endswith(content)
    wait_for(lambda: queue_empty(a), "A's queue to empty", timeout=10)


def test_flush_empty_queue_and_unknown_id(ternd, dnsmasq):
    a, b, dns = two_mtas(ternd, dnsmasq)
    r = a.tern("queue", "flush")
    assert r.returncode == 0
    r = a.tern("queue", "show", "0123456789abcdef", check=False)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    # an id that is not one is refused before it reaches ternd
    r = a.tern("queue", "show", "../../etc/passwd", check=False)
    assert r.returncode != 0 and r.stdout == b"", (r.returncode, r.stdout, r.stderr)


@pytest.mark.parametrize("engine", ["sqlite", "pgsql"])
def test_queued_mail_for_a_domain_that_became_local(ternd, request, engine):
    """Mail queued for far.test (its smarthost is down) is delivered here
    once far.test becomes a local domain (a user added there), instead of
    being sent by MX, i.e. back to ourselves; a queued recipient that is
    no user there bounces 5.1.1.  With PostgreSQL the queue asks the table
    on a lookup thread."""
    dead = free_port()
    o = {"relay.networks": "127.0.0.0/8", "relay.smarthost": f"127.0.0.1:{dead}",
         "queue.retry_first": "3600", "queue.retry_max": "3600"}
    if engine == "pgsql":
        o["tables.users"] = request.getfixturevalue("postgres").users_spec
    t = ternd(o)
    check(t.send_raw("dave@example.net", ["someone@far.test", "nobody@far.test"],
                     msg("became-local")), 250)
    wait_for(lambda: [m for m in t.queue_list()
                      if all(r.get("attempts", 0) >= 1 for r in m["recipients"])],
             "a failed attempt to the smarthost")
    t.tern("user", "add", "someone@far.test")
    t.tern("queue", "flush")
    [d] = wait_for(lambda: t.messages("someone@far.test"), "local delivery from the queue")
    assert d.data.endswith(msg("became-local"))
    assert d.return_path == "dave@example.net"
    assert len(re.findall(rb"^Received: ", d.data, re.M)) == 1, "our Received, once"
    [p] = wait_for(lambda: maildir_files(t.state_dir, "dave@example.net"), "the bounce")
    _, _, [r], _ = dsn_of(p.read_bytes())
    assert field(r, "Final-Recipient").lower() == "rfc822; nobody@far.test", r.items()
    assert field(r, "Status") == "5.1.1", r.items()
    wait_for(lambda: queue_empty(t), "the queue to empty")
    assert "event=delivered_from_queue" in t.log()
