"""DMARC aggregate reports (RFC 7489 7.2) end to end: a reporting ternd
(A, mx.example.org, dmarc.reports = yes) whose STATE/dmarc.db the test
fills through the documented schema (docs/mailauth.md), and a receiving
ternd (B, the MX of example.net, found through dnsmasq).

`tern dmarc report --dry-run` prints the reports and sends nothing;
`tern dmarc report` has A mail them through its queue: B's mailboxes get
gzipped XML that validates against RFC 7489 appendix C's schema, with the
rows and counts the file held; a destination of another organisation is
mailed only when its _report._dmarc TXT record says so (7.1); a !size
limit smaller than the report keeps it from that address; the rows sent
are cleared, so a second run sends nothing."""

import email
import email.policy
import gzip
import os
import re
import sqlite3
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from conftest import RUN_AS, SLOW, wait_for

XSD = Path(__file__).resolve().parent.parent / "unit" / "dmarc_rua.xsd"

SCHEMA = """
CREATE TABLE policy(domain TEXT PRIMARY KEY, adkim TEXT NOT NULL,
  aspf TEXT NOT NULL, p TEXT NOT NULL, sp TEXT NOT NULL,
  pct INTEGER NOT NULL, rua TEXT NOT NULL, seen INTEGER NOT NULL);
CREATE TABLE records(period INTEGER NOT NULL, domain TEXT NOT NULL,
  source_ip TEXT NOT NULL, header_from TEXT NOT NULL,
  envelope_from TEXT NOT NULL, disposition TEXT NOT NULL,
  dkim TEXT NOT NULL, spf TEXT NOT NULL, reason TEXT NOT NULL,
  dkim_auth TEXT NOT NULL, spf_domain TEXT NOT NULL,
  spf_scope TEXT NOT NULL, spf_result TEXT NOT NULL,
  count INTEGER NOT NULL,
  PRIMARY KEY(period, domain, source_ip, header_from, envelope_from,
    disposition, dkim, spf, reason, dkim_auth, spf_domain, spf_scope,
    spf_result));
PRAGMA user_version = 1;
"""

P1, P2 = 1700000000, 1700086400    # two past periods

# (domain, adkim, aspf, p, sp, pct, rua)
POLICIES = [
    # the same organisation as its destinations: sent; small@ is too small
    ("example.net", "r", "s", "reject", "quarantine", 100,
     "mailto:dmarc@example.net,mailto:small@example.net!100"),
    # another organisation's address, authorised by its TXT record
    ("example.edu", "s", "r", "quarantine", "quarantine", 50,
     "mailto:agg@example.net"),
    # another organisation's address, not authorised: nothing sent
    ("example.com", "r", "r", "none", "none", 100,
     "mailto:other@example.net"),
]

# (period, domain, ip, header_from, envelope_from, disposition, dkim, spf,
#  reason, dkim_auth, spf_domain, spf_scope, spf_result, count)
RECORDS = [
    (P1, "example.net", "192.0.2.1", "example.net", "example.net", "none",
     "pass", "pass", "", "example.net/s1/pass", "example.net", "mfrom",
     "pass", 3),
    # the same row in the next period: one <record>, count 3 + 4
    (P2, "example.net", "192.0.2.1", "example.net", "example.net", "none",
     "pass", "pass", "", "example.net/s1/pass", "example.net", "mfrom",
     "pass", 4),
    (P1, "example.net", "2001:db8::5", "mail.example.net", "evil.test",
     "reject", "fail", "fail", "", "evil.test/x/fail", "evil.test", "mfrom",
     "fail", 2),
    (P1, "example.edu", "198.51.100.9", "example.edu", "", "none", "fail",
     "pass", "sampled_out", "", "helo.example.edu", "helo", "pass", 5),
    (P1, "example.com", "192.0.2.7", "example.com", "example.com", "none",
     "pass", "pass", "", "", "example.com", "mfrom", "pass", 1),
]

RECEIVERS = ("dmarc@example.net", "small@example.net", "agg@example.net",
             "other@example.net")


def fill_db(path):
    db = sqlite3.connect(str(path))
    db.executescript(SCHEMA)
    for p in POLICIES:
        db.execute("INSERT INTO policy VALUES(?,?,?,?,?,?,?,?)", p + (P1,))
    for r in RECORDS:
        db.execute("INSERT INTO records VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                   r)
    db.commit()
    db.close()
    if RUN_AS:
        os.chown(path, RUN_AS[1], RUN_AS[2])


def db_rows(path):
    db = sqlite3.connect(str(path))
    try:
        return db.execute("SELECT domain, count FROM records").fetchall()
    finally:
        db.close()


def start_pair(ternd, dnsmasq):
    b = ternd({"hostname": "mx.example.net", "domains": "example.net"},
              users=RECEIVERS, state="B")
    dns = dnsmasq(mx=[("example.net", "mx.example.net", 10)],
                  hosts=[("mx.example.net", "127.0.0.1")],
                  extra=["--txt-record=example.edu._report._dmarc."
                         "example.net,v=DMARC1",
                         # every other name under example.net: NXDOMAIN
                         "--local=/example.net/"])
    a = ternd({"hostname": "mx.example.org", "domains": "example.org",
               "dns.servers": dns.server, "relay.port": str(b.port),
               "queue.retry_first": "1", "queue.retry_max": "2",
               "dmarc.reports": "yes", "dmarc.report_org": "Tern & Co"},
              users=("claire@example.org",), state="A", start=False)
    fill_db(a.state_dir / "dmarc.db")
    a.start()
    return a, b


def validate(xml_bytes, tmp_path, name):
    p = tmp_path / name
    p.write_bytes(xml_bytes)
    r = subprocess.run(["xmllint", "--noout", "--schema", str(XSD), str(p)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def report_of(delivery):
    """(message, filename, XML root, XML bytes) of a report mail."""
    msg = email.message_from_bytes(delivery.data, policy=email.policy.default)
    parts = [p for p in msg.walk()
             if p.get_content_type() == "application/gzip"]
    assert len(parts) == 1, msg
    raw = gzip.decompress(parts[0].get_content())
    return msg, parts[0].get_filename(), ET.fromstring(raw), raw


def records(root):
    out = {}
    for rec in root.findall("record"):
        out[rec.findtext("row/source_ip")] = rec
    return out


def test_dry_run_sends_nothing(ternd, dnsmasq):
    a, b = start_pair(ternd, dnsmasq)
    r = a.tern("dmarc", "report", "--dry-run")
    out = r.stdout.decode()
    assert "domain example.net: 2 rows, 9 messages" in out, out
    assert "rua mailto:dmarc@example.net: send" in out, out
    assert "rua mailto:small@example.net: too_big" in out, out
    assert ("rua mailto:agg@example.net: needs_authorisation (sent if TXT "
            "example.edu._report._dmarc.example.net holds v=DMARC1)") in out
    assert out.count("<feedback>") == 3, out
    # nothing queued, nothing cleared, nothing received
    time.sleep(1.0 * SLOW)
    assert a.queue_list() == []
    assert len(db_rows(a.state_dir / "dmarc.db")) == len(RECORDS)
    for rcpt in RECEIVERS:
        assert b.messages(rcpt) == [], rcpt
    assert "event=dmarc_report_queued" not in a.log()


def test_reports_sent_through_the_queue(ternd, dnsmasq, tmp_path):
    a, b = start_pair(ternd, dnsmasq)
    r = a.tern("dmarc", "report")
    assert r.stdout.decode().strip() == (
        "domains 3, reports queued 2, skipped 1, failed 0"), r.stdout

    got = wait_for(lambda: b.messages("dmarc@example.net"),
                   "the example.net report at B")
    assert len(got) == 1
    msg, fname, root, raw = report_of(got[0])
    validate(raw, tmp_path, "net.xml")
    subj = " ".join(str(msg["Subject"]).split())
    m = re.fullmatch(r"Report Domain: example\.net Submitter: "
                     r"mx\.example\.org Report-ID: <([^>]+)>", subj)
    assert m, subj
    assert str(msg["From"]) == "<dmarc-noreply@mx.example.org>" or \
        "dmarc-noreply@mx.example.org" in str(msg["From"])
    begin = root.findtext("report_metadata/date_range/begin")
    end = root.findtext("report_metadata/date_range/end")
    assert begin == str(P1)
    assert int(end) >= P2
    assert fname == f"mx.example.org!example.net!{begin}!{end}.xml.gz"
    assert root.findtext("report_metadata/org_name") == "Tern & Co"
    assert root.findtext("report_metadata/email") == \
        "dmarc-noreply@mx.example.org"
    assert root.findtext("report_metadata/report_id") == m.group(1)
    pp = root.find("policy_published")
    assert [pp.findtext(k) for k in ("domain", "adkim", "aspf", "p", "sp",
                                     "pct")] == \
        ["example.net", "r", "s", "reject", "quarantine", "100"]
    recs = records(root)
    assert set(recs) == {"192.0.2.1", "2001:db8::5"}
    ok = recs["192.0.2.1"]
    assert ok.findtext("row/count") == "7"            # 3 + 4, two periods
    assert ok.findtext("row/policy_evaluated/disposition") == "none"
    assert ok.findtext("auth_results/dkim/selector") == "s1"
    bad = recs["2001:db8::5"]
    assert bad.findtext("row/count") == "2"
    assert bad.findtext("row/policy_evaluated/disposition") == "reject"
    assert bad.findtext("row/policy_evaluated/dkim") == "fail"
    assert bad.findtext("identifiers/header_from") == "mail.example.net"
    assert bad.findtext("identifiers/envelope_from") == "evil.test"
    assert bad.findtext("auth_results/spf/result") == "fail"

    # the external destination that authorised reports (7.1)
    got = wait_for(lambda: b.messages("agg@example.net"),
                   "the example.edu report at B")
    assert len(got) == 1
    msg, fname, root, raw = report_of(got[0])
    validate(raw, tmp_path, "edu.xml")
    assert root.findtext("policy_published/domain") == "example.edu"
    assert root.findtext("policy_published/pct") == "50"
    rec = root.find("record")
    assert rec.findtext("row/count") == "5"
    assert rec.findtext("row/policy_evaluated/reason/type") == "sampled_out"
    assert rec.findtext("auth_results/spf/scope") == "helo"
    assert rec.find("identifiers/envelope_from") is None

    # every report has left A's queue: the others were never sent
    wait_for(lambda: a.queue_list() == [], "A's queue empty")
    assert b.messages("other@example.net") == []     # not authorised
    assert b.messages("small@example.net") == []     # !100 < the report
    log = a.log()
    assert re.search(r"event=dmarc_report_skip domain=example\.com "
                     r"uri=\"mailto:other@example\.net\" "
                     r"reason=not_authorised", log), log
    assert re.search(r"event=dmarc_report_skip domain=example\.net "
                     r"uri=\"mailto:small@example\.net\" reason=too_big",
                     log), log
    # sent rows are gone; a second run finds nothing to send
    assert db_rows(a.state_dir / "dmarc.db") == []
    r = a.tern("dmarc", "report")
    assert r.stdout.decode().strip() == (
        "domains 0, reports queued 0, skipped 0, failed 0"), r.stdout
    time.sleep(1.0 * SLOW)
    assert len(b.messages("dmarc@example.net")) == 1


def test_reports_off_by_default(ternd):
    t = ternd()
    r = t.tern("dmarc", "report", check=False)
    assert r.returncode == 1, r
    assert b"dmarc.reports = no" in r.stderr, r.stderr
    assert not (t.state_dir / "dmarc.db").exists()


# ---- recording: dmarcrep_record() through ternd-fault's test hook ----------

def fault_ternd(ternd, overrides):
    from conftest import BUILD, require
    fault = BUILD / "ternd-fault"
    require(fault, "make build/ternd-fault (part of make check)")
    t = ternd(overrides, start=False)
    t.argv = lambda: [str(fault)] + [
        a for k, v in t.overrides.items() for a in ("-o", f"{k}={v}")]
    return t.start()


def control(t, line):
    import json
    import socket
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10 * SLOW)
        s.connect(str(t.state_dir / "control.sock"))
        s.sendall(line.encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    doc = json.loads(data)
    assert doc["ok"], doc
    return doc


def counts(path):
    db = sqlite3.connect(str(path))
    try:
        return dict(db.execute("SELECT source_ip, SUM(count) FROM records "
                               "GROUP BY source_ip").fetchall())
    finally:
        db.close()


def test_recorded_messages_are_batched_into_the_store(ternd):
    """300 records fill a batch (256, written at once) and leave 44 for the
    batch timer; 5 more from another address are their own row; 7 recorded
    just before SIGTERM are written by the stop, not lost."""
    t = fault_ternd(ternd, {"dmarc.reports": "yes"})
    db = t.state_dir / "dmarc.db"
    control(t, "DMARC-RECORD-TEST 300 192.0.2.44 rec.example")
    control(t, "DMARC-RECORD-TEST 5 192.0.2.45 rec.example")
    wait_for(lambda: counts(db) == {"192.0.2.44": 300, "192.0.2.45": 5},
             "the records in dmarc.db")
    r = t.tern("dmarc", "report", "--dry-run")
    out = r.stdout.decode()
    assert "domain rec.example: 2 rows, 305 messages" in out, out
    assert "rua mailto:dmarc@rec.example: send" in out, out
    control(t, "DMARC-RECORD-TEST 7 192.0.2.46 rec.example")
    assert t.stop() == 0
    assert counts(db)["192.0.2.46"] == 7
    assert re.search(r"event=dmarc_reports_stopped recorded=312 dropped=0",
                     t.log()), t.log()


def test_store_bound_drops_and_logs(ternd):
    """dmarc.report_max_rows: a new row past it is dropped and logged, an
    existing row still counts."""
    t = fault_ternd(ternd, {"dmarc.reports": "yes",
                            "dmarc.report_max_rows": "1"})
    db = t.state_dir / "dmarc.db"
    control(t, "DMARC-RECORD-TEST 2 192.0.2.1 rec.example")
    wait_for(lambda: counts(db) == {"192.0.2.1": 2}, "the first row")
    control(t, "DMARC-RECORD-TEST 3 192.0.2.2 rec.example")
    control(t, "DMARC-RECORD-TEST 1 192.0.2.1 rec.example")
    wait_for(lambda: counts(db) == {"192.0.2.1": 3}, "the first row again")
    wait_for(lambda: re.search(r"event=dmarc_record_dropped "
                               r"reason=store_full dropped=3 max_rows=1",
                               t.log()), "the drop logged")


# ---- a reload (SIGHUP) changes the reporter's names and bound ---------------

def conf_file(text):
    from conftest import readable_conf
    return readable_conf(text, "tern-dmarc-reload-")


def sighup_ok(t):
    from conftest import sighup_reload
    last = sighup_reload(t)
    assert "result=ok" in last, last
    return last


def test_reload_changes_report_names(ternd, dnsmasq):
    """dmarc.report_org and dmarc.report_from changed by SIGHUP, without a
    restart: the next run's report names the new organisation and comes
    from the new address; no needs_restart= for them."""
    b = ternd({"hostname": "mx.example.net", "domains": "example.net"},
              users=RECEIVERS, state="B")
    dns = dnsmasq(mx=[("example.net", "mx.example.net", 10)],
                  hosts=[("mx.example.net", "127.0.0.1")],
                  extra=["--local=/example.net/"])
    conf = conf_file("[dmarc]\nreport_org = Tern & Co\n")
    a = ternd({"hostname": "mx.example.org", "domains": "example.org",
               "dns.servers": dns.server, "relay.port": str(b.port),
               "queue.retry_first": "1", "queue.retry_max": "2",
               "dmarc.reports": "yes"},
              users=("claire@example.org",), state="A", start=False,
              args=["-c", str(conf)])
    fill_db(a.state_dir / "dmarc.db")
    a.start()
    conf.write_text("[dmarc]\nreport_org = Other Org\n"
                    "report_from = reports@example.org\n")
    line = sighup_ok(a)
    assert "dmarc.report_from" in line and "dmarc.report_org" in line, line
    assert "needs_restart=dmarc." not in a.log()
    a.tern("dmarc", "report")
    got = wait_for(lambda: b.messages("dmarc@example.net"),
                   "the example.net report at B")
    msg, _, root, _ = report_of(got[0])
    assert "reports@example.org" in str(msg["From"]), msg["From"]
    assert root.findtext("report_metadata/org_name") == "Other Org"
    assert root.findtext("report_metadata/email") == "reports@example.org"


def test_reload_changes_max_rows(ternd):
    """dmarc.report_max_rows raised from 1 to 5 by SIGHUP: a new row
    dropped before (store_full) is stored after, the rows kept."""
    from conftest import BUILD, require
    fault = BUILD / "ternd-fault"
    require(fault, "make build/ternd-fault (part of make check)")
    conf = conf_file("[dmarc]\nreport_max_rows = 1\n")
    t = ternd({"dmarc.reports": "yes"}, start=False, args=["-c", str(conf)])
    plain = t.argv
    t.argv = lambda: [str(fault)] + plain()[1:]
    t.start()
    db = t.state_dir / "dmarc.db"
    control(t, "DMARC-RECORD-TEST 2 192.0.2.1 rec.example")
    wait_for(lambda: counts(db) == {"192.0.2.1": 2}, "the first row")
    control(t, "DMARC-RECORD-TEST 3 192.0.2.2 rec.example")
    wait_for(lambda: "reason=store_full dropped=3 max_rows=1" in t.log(),
             "the drop logged")
    conf.write_text("[dmarc]\nreport_max_rows = 5\n")
    line = sighup_ok(t)
    assert "dmarc.report_max_rows" in line, line
    control(t, "DMARC-RECORD-TEST 3 192.0.2.2 rec.example")
    wait_for(lambda: counts(db) == {"192.0.2.1": 2, "192.0.2.2": 3},
             "the second row stored under the new bound")
