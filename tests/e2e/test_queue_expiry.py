"""Queue expiry and the delay warning end to end (issue 19 item 3), with
a short queue.lifetime and queue.delay_warning and a next hop that keeps
answering 451.  The documented choice (docs/queue.md, "Expiry"): the delay
warning says Action: delayed with the last reply's status; the final
report says Action: failed, Status: 4.4.7 (delivery time expired, RFC
3463) and quotes the last reply, unchanged, in Diagnostic-Code."""

import re
import time

from conftest import dsn_of, field, maildir_files, wait_for
from fakepeer import ReplyPeer

CLAIRE = "claire@example.org"     # local: her DSNs land in her Maildir
FAR = "bob@remote.example"


def reports(t):
    out = {}
    for p in maildir_files(t.state_dir, CLAIRE):
        _, _, [r], _ = dsn_of(p.read_bytes())
        out.setdefault(field(r, "Action").lower(), []).append(r)
    return out


def test_delay_warning_then_expiry(ternd):
    peer = ReplyPeer("451 4.7.1 greylisted, come back later")
    peer.start()
    try:
        t = ternd({"relay.networks": "127.0.0.0/8",
                   "relay.smarthost": f"127.0.0.1:{peer.port}",
                   "queue.retry_first": "1", "queue.retry_max": "1",
                   "queue.delay_warning": "2", "queue.lifetime": "5"})
        rep = t.send_raw(CLAIRE, [FAR], b"Subject: slow\r\n"
                         b"Message-ID: <slow@client.test>\r\n\r\nbody\r\n")
        assert rep.code == 250, rep
        got = wait_for(lambda: (lambda r: r if "failed" in r else None)(reports(t)),
                       "the expiry report", timeout=20)
        wait_for(lambda: t.queue_list() == [], "the queue to empty")
        time.sleep(1.5)
        got = reports(t)
        assert sorted((k, len(v)) for k, v in got.items()) == \
            [("delayed", 1), ("failed", 1)], got
        [d] = got["delayed"]
        assert field(d, "Final-Recipient").lower() == f"rfc822; {FAR}"
        assert field(d, "Status") == "4.7.1", d.items()
        assert field(d, "Diagnostic-Code") == \
            "smtp; 451 4.7.1 greylisted, come back later", d.items()
        assert d.get("Will-Retry-Until"), d.items()
        [f] = got["failed"]
        assert field(f, "Final-Recipient").lower() == f"rfc822; {FAR}"
        assert field(f, "Status") == "4.4.7", f.items()
        assert field(f, "Diagnostic-Code") == \
            "smtp; 451 4.7.1 greylisted, come back later", f.items()
        assert f.get("Will-Retry-Until") is None, f.items()
        assert "event=expired to=<bob@remote.example> status=4.4.7" in t.log()
        assert peer.rcpts >= 3
    finally:
        peer.close()


def test_lifetime_zero_first_temporary_failure_is_final(ternd):
    peer = ReplyPeer("452 4.2.2 mailbox full")
    peer.start()
    try:
        t = ternd({"relay.networks": "127.0.0.0/8",
                   "relay.smarthost": f"127.0.0.1:{peer.port}",
                   "queue.lifetime": "0"})
        rep = t.send_raw(CLAIRE, [FAR], b"Subject: now or never\r\n\r\nbody\r\n")
        assert rep.code == 250, rep
        [p] = wait_for(lambda: maildir_files(t.state_dir, CLAIRE), "the report")
        _, _, [r], _ = dsn_of(p.read_bytes())
        assert field(r, "Action").lower() == "failed", r.items()
        assert field(r, "Status") == "4.4.7", r.items()
        assert field(r, "Diagnostic-Code") == "smtp; 452 4.2.2 mailbox full", r.items()
        assert peer.rcpts == 1
    finally:
        peer.close()


def test_delay_warnings_rate_limited_for_unauthenticated_mail(ternd):
    """Delay warnings of mail sent without AUTH count against
    limits.dsn_per_client like success reports; the expiry (failure)
    reports are never limited.  The peer's 4.3.0 is no slow-down signal
    (a 4.7.x would pause the destination, docs/queue.md, and move the
    attempts this test counts on)."""
    peer = ReplyPeer("451 4.3.0 try again later")
    peer.start()
    try:
        t = ternd({"relay.networks": "127.0.0.0/8",
                   "relay.smarthost": f"127.0.0.1:{peer.port}",
                   "queue.retry_first": "1", "queue.retry_max": "1",
                   "queue.delay_warning": "1", "queue.lifetime": "4",
                   "limits.dsn_per_client": "1"})
        for i in range(3):
            rep = t.send_raw(CLAIRE, [FAR], f"Subject: slow {i}\r\n\r\nbody\r\n".encode())
            assert rep.code == 250, rep
        wait_for(lambda: len(reports(t).get("failed", [])) == 3, "3 expiry reports",
                 timeout=25)
        wait_for(lambda: t.queue_list() == [], "the queue to empty")
        time.sleep(1)
        got = reports(t)
        assert len(got.get("delayed", [])) == 1, {k: len(v) for k, v in got.items()}
        assert len(got["failed"]) == 3
        assert len(re.findall(r"event=dsn_dropped reason=rate_limit limit=client "
                              r"kind=delay to=<claire@example\.org> client=127\.0\.0\.1",
                              t.log())) == 2, t.log()[-3000:]
    finally:
        peer.close()
