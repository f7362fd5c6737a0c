"""The journey of issue "tern carries mail to other domains", as in
production except for the port number.

dnsmasq serves the MX records of claire.test and ben.test.  Claire's ternd
listens on 127.0.0.2 and Ben's on 127.0.0.3, both on the same SMTP port P,
and Claire's delivers to port P of whatever address DNS names: the MX
lookup, the choice of host and the SMTP hop are the real ones.  Claire
submits from her mail client (smtplib: STARTTLS, AUTH) on her submission
port.
"""

import re
import smtplib
import socket
import time

from conftest import (PASSWORD, SLOW, dsn_of, field, free_port, maildir_files,
                      maildir_messages, received_headers, submit_ternd,
                      tls_client_context, wait_for)

CLAIRE = "claire@claire.test"
BEN = "ben@ben.test"
BEN_MULTI = "ben@multi.test"
BEN_BACKUP = "ben@backup.test"
CLAIRE_IP, BEN_IP, DOWN_IP = "127.0.0.2", "127.0.0.3", "127.0.0.4"


def common_port(*hosts):
    """A TCP port free on every one of hosts (and on 127.0.0.1)."""
    for _ in range(200):
        p = free_port()
        socks = []
        try:
            for h in hosts:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.bind((h, p))
            return p
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError(f"no port free on all of {hosts}")


class Journey:
    """dnsmasq + Claire's ternd (claire.test on 127.0.0.2) + Ben's ternd
    (ben.test and multi.test on 127.0.0.3), both MX on port self.port."""

    def __init__(self, ternd, dnsmasq, claire_over=None, ben_start=True):
        self.port = p = common_port(CLAIRE_IP, BEN_IP, DOWN_IP)
        self.dns = dnsmasq(
            mx=[("claire.test", "mx.claire.test", 10),
                ("ben.test", "mx.ben.test", 10),
                ("nullmx.test", ".", 0),
                # the first MX is down (nothing listens on 127.0.0.4)
                ("multi.test", "mx1.multi.test", 10),
                ("multi.test", "mx2.multi.test", 20),
                # Claire's server is the best MX of loop.test (a domain
                # it does not serve) and a backup MX of backup.test
                ("loop.test", "mx.claire.test", 10),
                ("loop.test", "mx.ben.test", 20),
                ("backup.test", "mx.ben.test", 10),
                ("backup.test", "mx.claire.test", 30)],
            hosts=[("mx.claire.test", CLAIRE_IP), ("mx.ben.test", BEN_IP),
                   ("mx1.multi.test", DOWN_IP), ("mx2.multi.test", BEN_IP)],
            # dead.test: forwarded to a server that never answers
            extra=["--server=/dead.test/127.0.0.1#1"])
        b = ternd({"hostname": "mx.ben.test",
                   "domains": "ben.test,multi.test,backup.test",
                   "listen.smtp": f"{BEN_IP}:{p}"},
                  users=(BEN, BEN_MULTI, BEN_BACKUP), state="ben", start=False)
        b.port = p
        self.ben = b
        if ben_start:
            b.start()
        over = {"hostname": "mx.claire.test", "domains": "claire.test",
                "dns.servers": self.dns.server, "relay.port": str(p)}
        over.update(claire_over or {})
        a = submit_ternd(ternd, over, users=(CLAIRE,), state="claire",
                         start=False)
        a.port = p
        a.overrides["listen.smtp"] = f"{CLAIRE_IP}:{p}"
        a.overrides["listen.submission"] = f"{CLAIRE_IP}:{a.sub_port}"
        a.start()
        self.claire = a

    def submit(self, rcpts, content, helo="laptop.claire.test"):
        """Claire's mail client: STARTTLS, AUTH, one message."""
        with smtplib.SMTP(CLAIRE_IP, self.claire.sub_port, local_hostname=helo,
                          timeout=10 * SLOW) as s:
            s.starttls(context=tls_client_context())
            s.ehlo()
            s.login(CLAIRE, PASSWORD)
            assert s.sendmail(CLAIRE, rcpts, content) == {}

    def queue_empty(self):
        a = self.claire
        return a.queue_list() == [] and a.queue_env_files() == []


def msg(tag, to=BEN):
    return (f"Date: Thu, 5 Mar 2026 08:30:00 +0000\r\n"
            f"Message-ID: <{tag}@laptop.claire.test>\r\n"
            f"From: Claire <{CLAIRE}>\r\nTo: <{to}>\r\n"
            f"Subject: {tag}\r\n\r\nHello Ben, this is {tag}.\r\n").encode()


def one_failed_attempt(a):
    """The single queued message once its first attempt failed, else None."""
    ms = a.queue_list()
    if len(ms) != 1:
        return None
    [r] = ms[0]["recipients"]
    return ms[0] if r.get("attempts", 0) >= 1 else None


# ---------------------------------------------------------------------------

def test_claire_to_ben_over_mx(ternd, dnsmasq):
    j = Journey(ternd, dnsmasq)
    content = msg("journey")
    j.submit([BEN], content)
    [d] = wait_for(lambda: maildir_messages(j.ben.state_dir, BEN),
                   "the message in Ben's Maildir")
    assert d.path.parent.name == "new"
    assert d.return_path == CLAIRE
    assert d.data.endswith(content), d.data
    recv = received_headers(d.data)
    assert len(recv) == 2, recv
    # on top: Ben's server received it from Claire's, over STARTTLS
    assert re.match(r"Received: from mx\.claire\.test \((?:\S+ )?\[127\.\d+\.\d+\.\d+\]\) "
                    r"by mx\.ben\.test \(tern\) with ESMTPS "
                    r"\(version=TLSv1\.[23] cipher=\S+\) id \S+ "
                    r"for <ben@ben\.test>; ", recv[0]), recv[0]
    # below: Claire's server received it from her client, authenticated
    assert re.match(r"Received: from laptop\.claire\.test \((?:\S+ )?\[127\.\d+\.\d+\.\d+\]\) "
                    r"by mx\.claire\.test \(tern\) with ESMTPSA "
                    r"\(version=TLSv1\.3 cipher=\S+\) id \S+", recv[1]), recv[1]
    # Claire's server found Ben's by MX, at Ben's address, on port P
    log = j.claire.log()
    assert re.search(rf"mx=mx\.ben\.test\S* addr=\[?{re.escape(BEN_IP)}\]?:?"
                     rf"(?:{j.port})?\S* event=", log), log[-3000:]
    wait_for(j.queue_empty, "Claire's queue to empty", timeout=10)
    assert maildir_files(j.claire.state_dir, CLAIRE) == []      # no DSN


def test_ben_down_then_flush(ternd, dnsmasq):
    j = Journey(ternd, dnsmasq, {"queue.retry_first": "3600",
                                 "queue.retry_max": "3600"}, ben_start=False)
    a, b = j.claire, j.ben
    content = msg("waits")
    j.submit([BEN], content)
    m = wait_for(lambda: one_failed_attempt(a),
                 "a failed first attempt in `tern queue list --json`")
    [r] = m["recipients"]
    assert m["sender"] == CLAIRE and r["addr"] == BEN, m
    assert r["state"].lower() == "pending", r
    assert r["next_try"] > time.time() + 600, r
    # the error is the connection's: refused at Ben's address and port
    assert (r["code"], r["enh"]) == (451, "4.4.1"), r
    assert r["text"] == (f"connect to mx.ben.test[{BEN_IP}]:{j.port}: "
                         f"Connection refused"), r
    # the human listing
    out = a.tern("queue", "list").stdout.decode()
    assert m["id"] in out and CLAIRE in out and "1 message" in out, out
    assert "1/1" in out, out
    # `queue show` and mailq give the reason
    show = a.tern("queue", "show", m["id"]).stdout.decode()
    assert BEN in show and f"last reply: 451 4.4.1 {r['text']}" in show, show
    mq = a.tern("mailq").stdout.decode()
    assert m["id"] in mq and BEN in mq and f"(451 4.4.1 {r['text']})" in mq, mq
    # Ben's server comes back; nothing moves until the flush: the
    # scheduler's next try is still an hour away, after one attempt
    b.start()
    [m2] = a.queue_list()
    [r2] = m2["recipients"]
    assert r2["attempts"] == 1 and r2["next_try"] == r["next_try"], (r, r2)
    assert len(re.findall(rf"id={m['id']} mx=\S+ addr=\S+ event=deferred "
                          rf"to=<{BEN}> code=451 ", a.log())) == 1, a.log()[-3000:]
    assert maildir_messages(b.state_dir, BEN) == []
    assert "1 message" in a.tern("queue", "flush").stdout.decode()
    [d] = wait_for(lambda: maildir_messages(b.state_dir, BEN), "delivery after flush")
    assert d.data.endswith(content) and d.return_path == CLAIRE
    assert len(received_headers(d.data)) == 2
    wait_for(j.queue_empty, "Claire's queue to empty", timeout=10)
    assert maildir_files(a.state_dir, CLAIRE) == []     # no bounce, no delay DSN
    # the whole story in A's log: one deferral, then the admin's flush,
    # then one delivery; no attempt of the scheduler's own in between
    qid = m["id"]
    story = [ln for ln in a.log().splitlines()
             if re.search(rf"id={qid} mx=\S+ addr=\S+ event=(?:deferred|delivered) |"
                          r'event=control request="FLUSH"', ln)]
    kinds = [("flush" if "FLUSH" in ln else
              "deferred" if "event=deferred" in ln else "delivered") for ln in story]
    assert kinds == ["deferred", "flush", "delivered"], "\n".join(story)


def test_ben_down_then_retry_by_itself(ternd, dnsmasq):
    j = Journey(ternd, dnsmasq, {"queue.retry_first": "1",
                                 "queue.retry_max": "1"}, ben_start=False)
    content = msg("retried")
    j.submit([BEN], content)
    wait_for(lambda: one_failed_attempt(j.claire), "a failed first attempt")
    j.ben.start()
    [d] = wait_for(lambda: maildir_messages(j.ben.state_dir, BEN),
                   "delivery on a retry", timeout=15)
    assert d.data.endswith(content)
    wait_for(j.queue_empty, "Claire's queue to empty", timeout=10)


def test_unknown_user_at_ben_bounces_to_claire(ternd, dnsmasq):
    j = Journey(ternd, dnsmasq)
    nobody = "nobody@ben.test"
    j.submit([nobody], msg("nobody", nobody))
    [p] = wait_for(lambda: maildir_files(j.claire.state_dir, CLAIRE),
                   "the DSN in Claire's Maildir")
    m, per_msg, rcpts, returned = dsn_of(p.read_bytes())
    assert CLAIRE in m["To"], m["To"]
    assert field(per_msg, "Reporting-MTA").lower() == "dns; mx.claire.test"
    [r] = rcpts
    assert field(r, "Final-Recipient").lower() == f"rfc822; {nobody}", r.items()
    assert field(r, "Action").lower() == "failed", r.items()
    assert field(r, "Status") == "5.1.1", r.items()
    diag = field(r, "Diagnostic-Code")
    assert re.match(r"smtp; ?550 5\.1\.1\b", diag, re.I), diag
    [ret] = returned
    assert b"<nobody@laptop.claire.test>" in ret.as_bytes()
    assert maildir_messages(j.ben.state_dir, BEN) == []
    wait_for(j.queue_empty, "Claire's queue to empty", timeout=10)


def test_dsn_names_remote_mta(ternd, dnsmasq):
    """RFC 3464 2.3.5: the DSN of a recipient refused by a remote server
    names that server (Remote-MTA), as bounce.c is built to write."""
    j = Journey(ternd, dnsmasq)
    nobody = "nobody@ben.test"
    j.submit([nobody], msg("remote-mta", nobody))
    [p] = wait_for(lambda: maildir_files(j.claire.state_dir, CLAIRE),
                   "the DSN in Claire's Maildir")
    _, _, [r], _ = dsn_of(p.read_bytes())
    assert field(r, "Remote-MTA").lower().startswith("dns; mx.ben.test"), r.items()


def test_null_mx_bounces_at_once(ternd, dnsmasq):
    # a retry in an hour: only a bounce can empty the queue in time
    j = Journey(ternd, dnsmasq, {"queue.retry_first": "3600"})
    rcpt = "someone@nullmx.test"
    j.submit([rcpt], msg("nullmx", rcpt))
    [p] = wait_for(lambda: maildir_files(j.claire.state_dir, CLAIRE),
                   "the null-MX DSN in Claire's Maildir", timeout=10)
    assert j.queue_empty(), j.claire.queue_list()
    _, _, rcpts, _ = dsn_of(p.read_bytes())
    [r] = rcpts
    assert field(r, "Final-Recipient").lower() == f"rfc822; {rcpt}", r.items()
    assert field(r, "Action").lower() == "failed", r.items()
    assert field(r, "Status") == "5.1.10", r.items()
    diag = field(r, "Diagnostic-Code")
    assert "556" in diag, diag
    # no outbound connection was tried
    log = j.claire.log()
    assert not re.search(r" mx=\S* addr=\S+ event=connect", log), log[-3000:]


def test_first_mx_down_second_gets_it(ternd, dnsmasq):
    j = Journey(ternd, dnsmasq, {"queue.retry_first": "3600"})
    content = msg("backup-mx", BEN_MULTI)
    j.submit([BEN_MULTI], content)
    [d] = wait_for(lambda: maildir_messages(j.ben.state_dir, BEN_MULTI),
                   "delivery through the second MX")
    assert d.data.endswith(content)
    recv = received_headers(d.data)
    assert re.match(r"Received: from mx\.claire\.test .* by mx\.ben\.test \(tern\) "
                    r"with ESMTPS ", recv[0]), recv
    log = j.claire.log()
    # the preference-10 host was tried first, and failed
    i1 = log.find("mx=mx1.multi.test")
    i2 = log.find("mx=mx2.multi.test")
    assert 0 <= i1 < i2, log[-3000:]
    assert re.search(r"mx=mx1\.multi\.test .*event=connect status=failed", log), \
        log[-3000:]
    wait_for(j.queue_empty, "Claire's queue to empty", timeout=10)
    assert maildir_files(j.claire.state_dir, CLAIRE) == []


def test_mx_loop_to_myself_bounces(ternd, dnsmasq):
    """RFC 5321 5.1: Claire's server finds itself as the best MX of
    loop.test; it drops that MX and every less preferred one (Ben's, at
    20), nothing is left, so the mail is returned as undeliverable at once
    without a connection to anyone."""
    j = Journey(ternd, dnsmasq, {"queue.retry_first": "3600"})
    rcpt = "someone@loop.test"
    j.submit([rcpt], msg("loop", rcpt))
    [p] = wait_for(lambda: maildir_files(j.claire.state_dir, CLAIRE),
                   "the loop DSN in Claire's Maildir", timeout=10)
    wait_for(j.queue_empty, "Claire's queue to empty", timeout=10)
    _, _, [r], _ = dsn_of(p.read_bytes())
    assert field(r, "Final-Recipient").lower() == f"rfc822; {rcpt}", r.items()
    assert field(r, "Action").lower() == "failed", r.items()
    assert field(r, "Status") == "5.4.6", r.items()
    assert "loops back to myself" in field(r, "Diagnostic-Code"), r.items()
    log = j.claire.log()
    assert "event=mail_loop" in log, log[-3000:]
    assert not re.search(r" mx=\S* addr=\S+ event=connect", log), log[-3000:]
    assert maildir_messages(j.ben.state_dir, BEN) == []


def test_mx_backup_to_myself_is_skipped(ternd, dnsmasq):
    """Claire's server is a backup MX (30) of backup.test: it goes to the
    better MX (Ben, 10) and never to itself."""
    j = Journey(ternd, dnsmasq, {"queue.retry_first": "3600"})
    content = msg("backup", BEN_BACKUP)
    j.submit([BEN_BACKUP], content)
    [d] = wait_for(lambda: maildir_messages(j.ben.state_dir, BEN_BACKUP),
                   "delivery to the better MX")
    assert d.data.endswith(content)
    wait_for(j.queue_empty, "Claire's queue to empty", timeout=10)
    log = j.claire.log()
    assert re.search(r"domain=backup\.test mx=mx\.claire\.test event=mx_is_self "
                     r"hosts_left=1", log), log[-3000:]
    assert "mx=mx.claire.test addr=" not in log, log[-3000:]
    assert maildir_files(j.claire.state_dir, CLAIRE) == []


def test_dns_timeout_stays_queued(ternd, dnsmasq):
    j = Journey(ternd, dnsmasq, {"queue.retry_first": "3600",
                                 "queue.retry_max": "3600"})
    rcpt = "someone@dead.test"
    j.submit([rcpt], msg("dead", rcpt))
    # a lookup's deadline is 10 s (docs/dns.md)
    m = wait_for(lambda: one_failed_attempt(j.claire),
                 "a temporary DNS failure", timeout=25)
    [r] = m["recipients"]
    assert r["state"].lower() == "pending", r
    assert r["code"] == 451 and r["enh"] == "4.4.3", r
    assert "dead.test" in r["text"], r
    assert r["next_try"] > time.time() + 600, r
    assert maildir_files(j.claire.state_dir, CLAIRE) == []      # no bounce
    show = j.claire.tern("queue", "show", m["id"]).stdout.decode()
    assert "4.4.3" in show, show
    # the attempt deferred it (no bounce, not removed), and it stays on
    # disk for the next try
    log = j.claire.log()
    assert len(re.findall(rf"id={m['id']} mx=\S+ addr=\S+ event=deferred "
                          rf"to=<{rcpt}> code=451 enh=4\.4\.3 ", log)) == 1, log[-3000:]
    assert not re.search(rf"id={m['id']} event=(?:removed|dsn|expired)\b", log), \
        log[-3000:]
    assert m["id"] in j.claire.queue_env_files(), j.claire.queue_env_files()
    assert [x["id"] for x in j.claire.queue_list()] == [m["id"]]
