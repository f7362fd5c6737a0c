"""Queue operations over the control socket (docs/queue.md, "Operating the
queue"): `tern queue list` with its recipients and filters, `requeue`,
`bounce` (a DSN back to the sender) and `purge`, each with --json, on
both queue formats (queue.log = yes, the default, and no)."""

import json
import re
import time

import pytest

from conftest import (BEN, CLAIRE, dsn_of, field, maildir_files,
                      maildir_messages, two_mtas, wait_for)
from test_queue import msg, submit

CAROL = "carol@example.com"
FORMATS = ["yes", "no"]


def deferred_pair(ternd, dnsmasq, qlog):
    """A and B with B down; two messages queued at A after one failed
    attempt each: m1 to ben@example.net, m2 to carol@example.com (both
    domains' MX is B).  The next try is an hour away."""
    a, b, dns = two_mtas(ternd, dnsmasq, {"queue.retry_first": "3600",
                                          "queue.retry_max": "3600",
                                          "queue.log": qlog},
                         b_start=False)
    dns.stop()
    dns = dnsmasq(mx=[("example.net", "mx.example.net", 10),
                      ("example.com", "mx.example.net", 10)],
                  hosts=[("mx.example.net", "127.0.0.1")])
    a.stop()
    a.overrides["dns.servers"] = dns.server
    a.start()
    ids = [submit_id(a, [BEN], "m1"), submit_id(a, [CAROL], "m2")]

    def tried():
        ms = a.queue_list()
        return len(ms) == 2 and all(
            r["attempts"] >= 1 for m in ms for r in m["recipients"])
    wait_for(tried, "a failed first attempt of both messages")
    return a, b, dns, ids


def submit_id(a, rcpts, tag):
    m = re.search(r"queued as ([0-9a-f]{16})$", submit(a, rcpts, msg(tag)))
    assert m
    return m.group(1)


def listed(a, *args):
    r = a.tern("queue", "list", "--json", *args)
    doc = json.loads(r.stdout)
    assert doc["ok"] is True, doc
    return sorted(m["id"] for m in doc["messages"])


@pytest.mark.parametrize("qlog", FORMATS)
def test_list_recipients_and_filters(ternd, dnsmasq, qlog):
    a, b, dns, (m1, m2) = deferred_pair(ternd, dnsmasq, qlog)
    # the table names each pending recipient and why it waits (as mailq)
    out = a.tern("queue", "list").stdout.decode()
    assert re.search(rf"^{m1} .*\n    to {re.escape(BEN)}  \(", out, re.M), out
    assert re.search(rf"^{m2} .*\n    to {re.escape(CAROL)}  \(", out, re.M), out

    both = sorted([m1, m2])
    assert listed(a) == both
    assert listed(a, "--to", "example.net") == [m1]
    assert listed(a, "--to", "EXAMPLE.COM") == [m2]
    assert listed(a, "--to", "example.org") == []
    assert listed(a, "--from", CLAIRE) == both
    assert listed(a, "--from", "example.org") == both
    assert listed(a, "--from", "other.example") == []
    assert listed(a, "--from", "<>") == []
    assert listed(a, "--deferred") == both
    assert listed(a, "--older", "1h") == []
    time.sleep(1.1)
    assert listed(a, "--older", "1s", "--to", "example.net") == [m1]
    # the table filters too
    out = a.tern("queue", "list", "--to", "example.com").stdout.decode()
    assert m2 in out and m1 not in out, out

    # bad filters are refused before anything reaches ternd
    for bad in (["--older", "1x"], ["--to", "a b"], ["--to"],
                ["--to", 'x"y'], ["--bogus"]):
        r = a.tern("queue", "list", *bad, check=False)
        assert r.returncode == 64, (bad, r.returncode, r.stderr)
    # and ternd refuses them itself (a request written by hand)
    import socket
    s = socket.socket(socket.AF_UNIX)
    s.connect(str(a.state_dir / "control.sock"))
    s.sendall(b"LIST to=a\"b junk\n")
    ans = b""
    while chunk := s.recv(4096):
        ans += chunk
    s.close()
    doc = json.loads(ans)
    assert doc["ok"] is False and "filter" in doc["error"], doc


def test_requeue_tries_at_once(ternd, dnsmasq):
    a, b, dns, (m1, m2) = deferred_pair(ternd, dnsmasq, "yes")
    queries = dns.log_path.read_text().count("query[MX] example.net")
    b.start()
    # the next try is an hour away: only requeue makes it now
    r = a.tern("queue", "requeue", m1, "--json")
    assert json.loads(r.stdout) == {"ok": True, "requeued": 1}, r.stdout
    [d] = wait_for(lambda: maildir_messages(b.state_dir, BEN),
                   "delivery of the requeued message", timeout=10)
    assert d.data.endswith(msg("m1"))
    assert f"id={m1} event=requeued by=admin" in a.log()
    # routed again: a new MX lookup
    assert dns.log_path.read_text().count("query[MX] example.net") > queries
    wait_for(lambda: [m["id"] for m in a.queue_list()] == [m2],
             "m1 gone, m2 still waiting")
    # --all: every message not held; a held one stays
    r = a.tern("queue", "requeue", "--all")
    assert r.stdout.decode().startswith("1 message requeued"), r.stdout
    wait_for(lambda: a.queue_list() == [], "m2 delivered after requeue --all")
    r = a.tern("queue", "requeue", m1, check=False)
    assert r.returncode == 1 and b"no such message" in r.stderr, r
    r = a.tern("queue", "requeue", check=False)
    assert r.returncode == 64


def test_requeue_leaves_held_messages(ternd, dnsmasq):
    a, b, dns, (m1, m2) = deferred_pair(ternd, dnsmasq, "yes")
    a.tern("queue", "hold", m1)
    r = a.tern("queue", "requeue", m1, check=False)
    assert r.returncode == 1 and b"held" in r.stderr, r
    r = a.tern("queue", "requeue", "--all", "--json")
    assert json.loads(r.stdout)["requeued"] == 1


@pytest.mark.parametrize("qlog", FORMATS)
def test_bounce_returns_a_dsn(ternd, dnsmasq, qlog):
    a, b, dns, (m1, m2) = deferred_pair(ternd, dnsmasq, qlog)
    r = a.tern("queue", "bounce", m1, "--json")
    assert json.loads(r.stdout) == {"ok": True}, r.stdout
    [path] = wait_for(lambda: maildir_files(a.state_dir, CLAIRE),
                      "the DSN in the sender's Maildir", timeout=10)
    m, per_msg, rcpts, returned = dsn_of(path.read_bytes())
    [ret] = returned
    assert b"Message-ID: <m1@laptop.example.org>" in ret.as_bytes()
    [rc] = rcpts
    assert field(rc, "Final-Recipient").lower() == f"rfc822; {BEN}"
    assert field(rc, "Action").lower() == "failed"
    assert field(rc, "Status") == "5.0.0"
    assert "bounced by the administrator" in field(rc, "Diagnostic-Code")
    wait_for(lambda: [x["id"] for x in a.queue_list()] == [m2],
             "the bounced message gone")
    log = a.log()
    assert re.search(rf"id={m1} event=bounced by=admin to=<{BEN}> code=550 "
                     r"enh=5\.0\.0", log), log[-3000:]
    assert f"id={m1} event=dsn kind=failure" in log
    # a held message is bounced too
    a.tern("queue", "hold", m2)
    out = a.tern("queue", "bounce", m2).stdout.decode()
    assert "returned to the sender" in out
    wait_for(lambda: len(maildir_files(a.state_dir, CLAIRE)) == 2,
             "the held message's DSN", timeout=10)
    wait_for(lambda: a.queue_list() == [], "the queue empty")
    r = a.tern("queue", "bounce", m2, check=False)
    assert r.returncode == 1


@pytest.mark.parametrize("qlog", FORMATS)
def test_purge(ternd, dnsmasq, qlog):
    a, b, dns, (m1, m2) = deferred_pair(ternd, dnsmasq, qlog)
    # no filter: refused
    r = a.tern("queue", "purge", check=False)
    assert r.returncode == 64, r
    # without --yes: shows what would go, deletes nothing
    r = a.tern("queue", "purge", "--to", "example.net", check=False)
    assert r.returncode == 1, r
    assert m1 in r.stdout.decode() and m2 not in r.stdout.decode(), r.stdout
    assert b"--yes" in r.stderr
    assert listed(a) == sorted([m1, m2])
    r = a.tern("queue", "purge", "--to", "example.net", "--json", check=False)
    assert r.returncode == 1
    assert [x["id"] for x in json.loads(r.stdout)["messages"]] == [m1]
    # with it: gone, and no DSN
    r = a.tern("queue", "purge", "--to", "example.net", "--yes", "--json")
    assert json.loads(r.stdout) == {"ok": True, "purged": 1}, r.stdout
    assert listed(a) == [m2]
    assert f"id={m1} event=deleted by=admin reason=purge" in a.log()
    out = a.tern("queue", "purge", "--to", "example.net", "--yes").stdout
    assert out.decode().startswith("0 messages deleted"), out
    # no DSN for a purged message; m2 waits on, untouched
    time.sleep(1)
    assert maildir_files(a.state_dir, CLAIRE) == []
    [left] = a.queue_list()
    assert left["id"] == m2 and left["recipients"][0]["attempts"] == 1, left
