"""The sendmail and mailq personalities of tern (issue: Claire's mail
client submits through tern, item 4): every Unix program that sends mail
hands it to the running ternd over STATE/public/submit.sock.  Checked here:
-t with Bcc removal, -i, -f, -F, recipients on the command line, -bs, mailq,
delivery to a remote domain through the queue, and what happens when ternd
is not running (exit 75, EX_TEMPFAIL, and a message saying so).
"""
import os
import pwd

from conftest import (BEN, CLAIRE, maildir_messages, two_mtas, wait_for)

HOST = ("-o", "hostname=mx.test")


def run_user():
    """The Unix user tern runs as in the tests (ternd's user when root)."""
    from conftest import RUN_AS
    return RUN_AS[0] if RUN_AS else pwd.getpwuid(os.getuid()).pw_name


def sendmail(t, *args, data=b"", check=True):
    return t.tern(*HOST, "sendmail", *args, input=data, check=check)


def test_t_reads_recipients_and_removes_bcc(ternd):
    t = ternd()
    msg = (b"To: ben@example.org\nCc: claire@example.org\n"
           b"Bcc: dave@example.net\nSubject: cron\n\nline one\n.hidden dot\n")
    r = sendmail(t, "-t", "-i", data=msg)
    assert r.returncode == 0, r
    for rcpt in ("ben@example.org", "claire@example.org", "dave@example.net"):
        [d] = maildir_messages(t.state_dir, rcpt)
        assert d.return_path == f"{run_user()}@mx.test"
        assert "from local (uid " in d.received and "with local" in d.received
        assert b"\r\nSubject: cron\r\n" in d.body
        assert b"Bcc:" not in d.body, "Bcc must not reach any recipient"
        assert d.body.endswith(b"\r\n\r\nline one\r\n.hidden dot\r\n")
        head = d.body.split(b"\r\n\r\n", 1)[0]
        assert b"Message-ID: <" in head and b"Date: " in head


def test_f_and_F_set_sender_and_from(ternd):
    t = ternd()
    r = sendmail(t, "-f", "claire@example.net", "-F", "Claire Test",
                 "ben@example.org", data=b"Subject: x\n\nbody\n")
    assert r.returncode == 0, r
    [d] = maildir_messages(t.state_dir, "ben@example.org")
    assert d.return_path == "claire@example.net"
    assert b"From: Claire Test <claire@example.net>\r\n" in d.body


def test_lone_dot_ends_input_without_i(ternd):
    t = ternd()
    r = sendmail(t, "ben@example.org", data=b"Subject: dot\n\nbefore\n.\nafter\n")
    assert r.returncode == 0, r
    [d] = maildir_messages(t.state_dir, "ben@example.org")
    assert d.body.endswith(b"before\r\n") and b"after" not in d.body


def test_bs_speaks_smtp_on_stdin(ternd):
    t = ternd()
    session = (b"EHLO local.test\r\nMAIL FROM:<claire@example.net>\r\n"
               b"RCPT TO:<ben@example.org>\r\nDATA\r\nSubject: bs\r\n\r\nhi\r\n"
               b".\r\nQUIT\r\n")
    r = sendmail(t, "-bs", data=session)
    out = r.stdout.decode()
    assert out.startswith("220 "), out
    assert "354 " in out and "250 2.0.0 Ok: queued as" in out and "221 " in out
    [d] = maildir_messages(t.state_dir, "ben@example.org")
    assert d.body.endswith(b"Subject: bs\r\n\r\nhi\r\n")


def test_unknown_local_user_fails_with_69(ternd):
    t = ternd()
    r = sendmail(t, "nobody@example.org", data=b"Subject: x\n\nx\n", check=False)
    assert r.returncode == 69, r
    assert b"550 5.1.1" in r.stderr


def test_ternd_down_exits_75_and_says_so(ternd):
    t = ternd()
    t.stop()
    r = sendmail(t, "ben@example.org", data=b"Subject: x\n\nx\n", check=False)
    assert r.returncode == 75, r
    assert b"cannot reach ternd" in r.stderr and b"not sent" in r.stderr
    assert maildir_messages(t.state_dir, "ben@example.org") == []


def test_mailq_lists_queued_mail(ternd):
    # a local program may relay; nothing answers for remote.test, so the
    # message waits in the queue
    t = ternd({"dns.servers": "127.0.0.1:9", "queue.retry_first": "3600"})
    r = t.tern("mailq")
    assert r.stdout.decode().strip() == "Mail queue is empty", r
    r = sendmail(t, "-f", "claire@example.org", "someone@remote.test",
                 data=b"Subject: q\n\nqueued\n")
    assert r.returncode == 0, r
    out = wait_for(lambda: (lambda o: o if "someone@remote.test" in o else None)(
        t.tern("mailq").stdout.decode()), "mailq to list the message")
    assert out.startswith("-Queue ID-"), out
    assert "claire@example.org" in out and "-- " in out and "1 Request" in out
    r = t.tern("sendmail", "-bp")
    assert r.stdout.decode() == t.tern("mailq").stdout.decode()


def test_sendmail_to_remote_domain_through_the_queue(ternd, dnsmasq):
    a, b, _dns = two_mtas(ternd, dnsmasq)
    r = a.tern("-o", "hostname=mx.example.org", "sendmail", "-t", "-i",
               "-f", CLAIRE, input=f"To: {BEN}\nSubject: far\n\nfar away\n".encode())
    assert r.returncode == 0, r
    [d] = wait_for(lambda: maildir_messages(b.state_dir, BEN), "delivery at B")
    assert d.return_path == CLAIRE
    assert d.body.endswith(b"far away\r\n")
