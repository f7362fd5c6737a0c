"""SMTP TLS Reporting (RFC 8460) end to end, with real components.

  A   ternd mx.example.org, tlsrpt.reports = yes, relays for loopback;
      delivers by the MX records dnsmasq serves, to port P:
  B   ternd mx.example.net (127.0.0.1:P): offers STARTTLS (its
      self-signed certificate), holds the mailbox tlsrpt@example.net
  C   a plain SMTP peer, mx.example.com (127.0.0.2:P): no STARTTLS
  H   an HTTPS server (Python http.server over TLS, a certificate from a
      CA the suite makes; A trusts it through tls.ca_file)

dnsmasq serves "_smtp._tls.example.com" (rua = the mailbox at B and H's
https: URI) and "_smtp._tls.example.net" (rua = the mailbox only).
Mail from A to example.com goes in clear (starttls-not-supported), to
example.net over TLS (success).  After a restart of A (the counts must
survive it), `tern tlsrpt send --now` makes A mail the reports through
its queue to B, and POST example.com's to H: gzipped JSON checked field
by field against RFC 8460 4.4's schema, in the 5.3 mail form.
"""
import email
import email.policy
import gzip
import http.server
import json
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest

from conftest import RUN_AS, SLOW, free_port, wait_for
from fakepeer import FakePeer

RUA_BOX = "tlsrpt@example.net"
MSG = (b"From: x@example.org\r\nTo: {rcpt}\r\nSubject: t\r\n\r\n"
       b"Hello.\r\n")


# ---------------------------------------------------------------------------
# certificates, the HTTPS collector, the plain peer
# ---------------------------------------------------------------------------

def _openssl(cwd, *args):
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True)
    assert r.returncode == 0, f"openssl {' '.join(args)}: {r.stderr!r}"


@pytest.fixture
def pki(world_tmp):
    d = world_tmp / "pki"
    d.mkdir()
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    _openssl(d, "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem",
             "-days", "2", "-subj", "/CN=tern tlsrpt test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    (d / "h.ext").write_text(
        "subjectAltName=DNS:rpt.example.net\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
    _openssl(d, "req", *ec, "-keyout", "h.key", "-out", "h.csr",
             "-subj", "/CN=rpt.example.net")
    _openssl(d, "x509", "-req", "-in", "h.csr", "-CA", "ca.pem", "-CAkey",
             "ca.key", "-CAcreateserial", "-days", "2", "-extfile", "h.ext",
             "-out", "h.pem")
    for p in d.iterdir():
        p.chmod(0o644)
    d.chmod(0o755)
    return d


class Collector(http.server.BaseHTTPRequestHandler):
    posts = None                         # set per server

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        self.server.posts.append((self.path, dict(self.headers), body))
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


@pytest.fixture
def https_rua(pki):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki / "h.pem", pki / "h.key")
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.posts = []
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


class PlainPeer(FakePeer):
    """SMTP without STARTTLS on addr:port; every message accepted.
    broken_tls: STARTTLS is offered, answered 220, and the "handshake"
    gets a line of text (a middlebox that breaks TLS).  Its greeting says
    mx.example.com, its EHLO reply smtp-in.example.com (the name a report
    gives as receiving-mx-helo)."""

    def __init__(self, addr, port, broken_tls=False):
        super().__init__(backlog=8, addr=addr, port=port)
        self.broken_tls = broken_tls
        self.messages = []
        self.ehlo_lines = []

    def session(self, s):
        f = s.makefile("rb")
        s.sendall(b"220 mx.example.com ESMTP plain\r\n")
        while True:
            line = f.readline()
            if not line:
                return
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                self.ehlo_lines.append(line)
                s.sendall(b"250-smtp-in.example.com Hello\r\n" +
                          (b"250-STARTTLS\r\n" if self.broken_tls else b"")
                          + b"250 PIPELINING\r\n")
            elif verb == b"STAR" and self.broken_tls:
                s.sendall(b"220 2.0.0 go ahead\r\n")
                s.sendall(b"this is not a TLS server hello\r\n" * 4)
                return
            elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                s.sendall(b"250 2.0.0 ok\r\n")
            elif verb == b"DATA":
                s.sendall(b"354 go\r\n")
                body = []
                for ln in f:
                    if ln == b".\r\n":
                        break
                    body.append(ln)
                self.messages.append(b"".join(body))
                s.sendall(b"250 2.0.0 queued\r\n")
            elif verb == b"QUIT":
                s.sendall(b"221 2.0.0 bye\r\n")
                return
            else:
                s.sendall(b"502 5.5.2 no\r\n")


def _loopback2_ok():
    s = socket.socket()
    try:
        s.bind(("127.0.0.2", 0))
        return True
    except OSError:
        return False
    finally:
        s.close()


# ---------------------------------------------------------------------------
# RFC 8460 4.4: the report's schema, every required field and its type
# ---------------------------------------------------------------------------

DATETIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
RESULT_TYPES = {
    "starttls-not-supported", "certificate-host-mismatch",
    "certificate-expired", "certificate-not-trusted", "validation-failure",
    "tlsa-invalid", "dnssec-invalid", "dane-required",
    "sts-policy-fetch-error", "sts-policy-invalid", "sts-webpki-invalid"}


def check_schema(doc):
    assert isinstance(doc, dict), doc
    for k in ("organization-name", "contact-info", "report-id"):
        assert isinstance(doc[k], str) and doc[k], (k, doc)
    dr = doc["date-range"]
    assert DATETIME.fullmatch(dr["start-datetime"]), dr
    assert DATETIME.fullmatch(dr["end-datetime"]), dr
    assert dr["start-datetime"] <= dr["end-datetime"], dr
    assert isinstance(doc["policies"], list) and doc["policies"], doc
    for p in doc["policies"]:
        pol = p["policy"]
        assert pol["policy-type"] in ("tlsa", "sts", "no-policy-found"), pol
        assert isinstance(pol["policy-domain"], str), pol
        for k in ("policy-string", "mx-host"):
            if k in pol:
                assert isinstance(pol[k], list), pol
                assert all(isinstance(x, str) for x in pol[k]), pol
        s = p["summary"]
        for k in ("total-successful-session-count",
                  "total-failure-session-count"):
            assert isinstance(s[k], int) and not isinstance(s[k], bool), s
            assert s[k] >= 0, s
        details = p.get("failure-details", [])
        assert isinstance(details, list)
        assert sum(d["failed-session-count"] for d in details) <= \
            s["total-failure-session-count"], p
        for d in details:
            assert d["result-type"] in RESULT_TYPES, d
            assert isinstance(d["failed-session-count"], int), d
            for k in ("sending-mta-ip", "receiving-ip"):
                if k in d:
                    socket.inet_pton(socket.AF_INET6 if ":" in d[k]
                                     else socket.AF_INET, d[k])
            for k in ("receiving-mx-hostname", "receiving-mx-helo",
                      "additional-information", "failure-reason-code"):
                if k in d:
                    assert isinstance(d[k], str), d
    return doc


def report_mail(delivery):
    """(message, filename, JSON document) of a TLS report mail (5.3)."""
    msg = email.message_from_bytes(delivery.data, policy=email.policy.default)
    assert msg.get_content_type() == "multipart/report", msg
    assert msg.get_param("report-type") == "tlsrpt", msg
    parts = [p for p in msg.walk()
             if p.get_content_type() == "application/tlsrpt+gzip"]
    assert len(parts) == 1, msg
    doc = json.loads(gzip.decompress(parts[0].get_content()))
    return msg, parts[0].get_filename(), check_schema(doc)


# ---------------------------------------------------------------------------

def start_world(ternd, dnsmasq, https_rua, pki):
    if not _loopback2_ok():
        pytest.fail("127.0.0.2 cannot be bound: the loopback interface "
                    "must carry 127.0.0.0/8, as Linux's does", pytrace=False)
    b = ternd({"hostname": "mx.example.net", "domains": "example.net"},
              users=(RUA_BOX, "ben@example.net"), state="B")
    c = PlainPeer("127.0.0.2", b.port)
    c.start()
    hport = https_rua.server_address[1]
    https = f"https://rpt.example.net:{hport}/tlsrpt"
    dns = dnsmasq(
        mx=[("example.net", "mx.example.net", 10),
            ("example.com", "mx.example.com", 10)],
        hosts=[("mx.example.net", "127.0.0.1"),
               ("mx.example.com", "127.0.0.2"),
               ("rpt.example.net", "127.0.0.1")],
        extra=[txt_rr("_smtp._tls.example.com",
                      f"v=TLSRPTv1; rua=mailto:{RUA_BOX},{https}"),
               txt_rr("_smtp._tls.example.net",
                      f"v=TLSRPTv1;rua=mailto:{RUA_BOX}")])
    a = ternd({"hostname": "mx.example.org", "domains": "example.org",
               "dns.servers": dns.server, "relay.port": str(b.port),
               "relay.networks": "127.0.0.0/8",
               "queue.retry_first": "1", "queue.retry_max": "2",
               "tlsrpt.reports": "yes",
               "tlsrpt.report_org": "Tern TLS-RPT test",
               "tls.ca_file": str(pki / "ca.pem")},
              users=("claire@example.org",), state="A")
    return a, b, c, dns, https


def txt_rr(name, text):
    """A dnsmasq option serving one TXT record of one string: raw, since
    --txt-record splits its text at commas (and rua lists have them)."""
    data = text.encode()
    assert len(data) < 256
    return f"--dns-rr={name},16,{bytes([len(data)]).hex()}{data.hex()}"


def send(a, rcpt):
    rep = a.send_raw("claire@example.org", [rcpt],
                     MSG.replace(b"{rcpt}", rcpt.encode()))
    assert rep.code == 250, rep


def test_tlsrpt_counts_restart_and_reports(ternd, dnsmasq, https_rua, pki):
    a, b, c, dns, https = start_world(ternd, dnsmasq, https_rua, pki)
    try:
        send(a, "bob@example.com")
        send(a, "carol@example.com")
        send(a, "ben@example.net")
        wait_for(lambda: len(c.messages) == 2, "2 messages at the plain peer")
        wait_for(lambda: b.messages("ben@example.net"), "ben's message at B")
        log = a.log()
        assert re.search(r"mx=mx\.example\.com .*event=tlsrpt "
                         r"tlsrpt_result=starttls-not-supported", log), log
        assert re.search(r"mx=mx\.example\.net .*event=tlsrpt "
                         r"tlsrpt_result=success", log), log

        # the counts survive a restart (SIGTERM writes them; so does the
        # 10 s flush)
        a.stop()
        state = (a.state_dir / "tlsrpt.state").read_text()
        assert state.startswith("tlsrpt-state 1\n"), state
        assert "D example.com\n" in state and "D example.net\n" in state
        a.start()
        assert re.search(r"event=tlsrpt_reports .*domains=2 sessions=3 ",
                         a.log()), a.log()[-2000:]

        r = a.tern("tlsrpt", "send", "--now")
        assert r.stdout.decode().strip() == (
            "domains 2, reports mailed 2, posted 1, skipped 0, failed 0"), \
            r.stdout

        got = wait_for(lambda: len(b.messages(RUA_BOX)) >= 2 and
                       b.messages(RUA_BOX), "2 reports in the rua mailbox")
        by_domain = {}
        for d in got:
            msg, fname, doc = report_mail(d)
            dom = str(msg["TLS-Report-Domain"])
            by_domain[dom] = (msg, fname, doc)
        assert set(by_domain) == {"example.com", "example.net"}, by_domain

        # example.com: two sessions in clear, no TLS
        msg, fname, doc = by_domain["example.com"]
        assert str(msg["TLS-Report-Submitter"]) == "mx.example.org"
        subj = " ".join(str(msg["Subject"]).split())
        m = re.fullmatch(r"Report Domain: example\.com Submitter: "
                         r"mx\.example\.org Report-ID: <([^>]+)>", subj)
        assert m and m.group(1) == doc["report-id"], (subj, doc)
        assert re.fullmatch(r"mx\.example\.org!example\.com!\d+!\d+!"
                            r"[A-Za-z0-9]+\.json\.gz", fname), fname
        assert doc["organization-name"] == "Tern TLS-RPT test"
        assert doc["contact-info"] == "tlsrpt-noreply@mx.example.org"
        [p] = doc["policies"]
        assert p["policy"] == {"policy-type": "no-policy-found",
                               "policy-domain": "example.com"}, p
        assert p["summary"] == {"total-successful-session-count": 0,
                                "total-failure-session-count": 2}, p
        [fd] = p["failure-details"]
        assert fd["result-type"] == "starttls-not-supported", fd
        assert fd["failed-session-count"] == 2, fd
        assert fd["receiving-ip"] == "127.0.0.2", fd
        assert fd["receiving-mx-hostname"] == "mx.example.com", fd
        # RFC 8460 4.3: the name of the peer's EHLO reply
        assert fd["receiving-mx-helo"] == "smtp-in.example.com", fd
        assert fd["sending-mta-ip"] == "127.0.0.1", fd

        # example.net: one session over TLS
        _, _, doc = by_domain["example.net"]
        [p] = doc["policies"]
        assert p["summary"]["total-successful-session-count"] == 1, p
        assert p["summary"]["total-failure-session-count"] == 0, p
        assert "failure-details" not in p, p

        # the https: rua of example.com got the same report, POSTed
        wait_for(lambda: https_rua.posts, "the POST at the https rua")
        [(path, headers, body)] = https_rua.posts
        assert path == "/tlsrpt"
        ctype = {k.lower(): v for k, v in headers.items()}["content-type"]
        assert ctype == "application/tlsrpt+gzip", headers
        posted = check_schema(json.loads(gzip.decompress(body)))
        assert posted["policies"] == by_domain["example.com"][2]["policies"]
        assert re.search(r"event=tlsrpt_report_posted domain=example\.com "
                         r'uri="https://rpt\.example\.net:\d+/tlsrpt" '
                         r"status=201", a.log()), a.log()[-3000:]

        # the reported period is gone: a second run has only what the
        # report mails themselves counted (A -> B over TLS)
        wait_for(lambda: "event=tlsrpt_report_run " in a.log(), "run log")
        assert not (a.state_dir / "tlsrpt.pending").exists()
    finally:
        c.close()


def test_newer_state_format_refused(ternd):
    a = ternd({"tlsrpt.reports": "yes"}, start=False, state="A")
    p = a.state_dir / "tlsrpt.state"
    p.write_text("tlsrpt-state 2\nbegin 1700000000 0\n")
    if RUN_AS:
        shutil.chown(p, RUN_AS[1], RUN_AS[2])
    r = subprocess.run(a.argv(), capture_output=True, timeout=20 * SLOW,
                       cwd=str(a.state_dir))
    assert r.returncode != 0
    err = (r.stdout + r.stderr).decode()
    assert "format version 2, written by a newer tern" in err, err
    assert "tlsrpt.state" in err, err


def test_send_now_when_off(ternd):
    a = ternd({})
    r = a.tern("tlsrpt", "send", "--now", check=False)
    assert r.returncode != 0
    assert b"tlsrpt.reports = no" in r.stdout + r.stderr, r


def test_no_record_no_report(ternd, dnsmasq):
    """A domain without a _smtp._tls record gets no report; its counts
    are dropped at the run."""
    b = ternd({"hostname": "mx.example.net", "domains": "example.net"},
              users=("ben@example.net",), state="B")
    dns = dnsmasq(mx=[("example.net", "mx.example.net", 10)],
                  hosts=[("mx.example.net", "127.0.0.1")],
                  extra=["--local=/example.net/"])
    a = ternd({"hostname": "mx.example.org", "domains": "example.org",
               "dns.servers": dns.server, "relay.port": str(b.port),
               "relay.networks": "127.0.0.0/8", "tlsrpt.reports": "yes"},
              users=("claire@example.org",), state="A")
    send(a, "ben@example.net")
    wait_for(lambda: b.messages("ben@example.net"), "ben's message at B")
    r = a.tern("tlsrpt", "send", "--now")
    assert r.stdout.decode().strip() == (
        "domains 1, reports mailed 0, posted 0, skipped 1, failed 0"), \
        r.stdout
    assert re.search(r"event=tlsrpt_report_skip domain=example\.net "
                     r"reason=no_record", a.log()), a.log()[-2000:]
    time.sleep(0.5 * SLOW)
    assert a.queue_list() == []


def test_handshake_failure_counted_once(ternd, dnsmasq):
    """A peer whose TLS breaks: one validation-failure for the session,
    with the error, and the plaintext retry of the same session is not
    counted again as starttls-not-supported."""
    if not _loopback2_ok():
        pytest.fail("127.0.0.3 cannot be bound: the loopback interface "
                    "must carry 127.0.0.0/8, as Linux's does", pytrace=False)
    port = free_port()
    c = PlainPeer("127.0.0.3", port, broken_tls=True)
    c.start()
    try:
        dns = dnsmasq(mx=[("example.edu", "mx.example.edu", 10)],
                      hosts=[("mx.example.edu", "127.0.0.3")])
        a = ternd({"hostname": "mx.example.org", "domains": "example.org",
                   "dns.servers": dns.server, "relay.port": str(port),
                   "relay.networks": "127.0.0.0/8",
                   "tlsrpt.reports": "yes"},
                  users=("claire@example.org",), state="A")
        send(a, "dan@example.edu")
        wait_for(lambda: len(c.messages) == 1, "the message, in clear")
        a.stop()
        log = a.log()
        assert len(re.findall(r"event=tlsrpt tlsrpt_result=", log)) == 1, log
        assert re.search(r"mx=mx\.example\.edu addr=127\.0\.0\.3:\d+ "
                         r"event=tlsrpt tlsrpt_result=validation-failure",
                         log), log
        state = (a.state_dir / "tlsrpt.state").read_text()
        lines = state.splitlines()
        i = lines.index("D example.edu")
        assert lines[i + 1] == "P no-policy-found 0 1 0 - -", state
        f = lines[i + 2].split(" ")
        assert f[:7] == ["F", "validation-failure", "1", "127.0.0.1",
                         "127.0.0.3", "mx.example.edu",
                         "smtp-in.example.com"], state
        assert f[7] != "-", state       # the error, as failure-reason-code
    finally:
        c.close()


def test_overdue_period_reported_after_start(ternd, dnsmasq):
    """The period's start is kept across restarts, so a run is due one
    interval after it, not after the last start: a state file whose
    period began two days ago is reported shortly after ternd starts."""
    b = ternd({"hostname": "mx.example.net", "domains": "example.net"},
              users=(RUA_BOX,), state="B")
    dns = dnsmasq(mx=[("example.net", "mx.example.net", 10)],
                  hosts=[("mx.example.net", "127.0.0.1")],
                  extra=[txt_rr("_smtp._tls.example.com",
                                f"v=TLSRPTv1; rua=mailto:{RUA_BOX}")])
    a = ternd({"hostname": "mx.example.org", "domains": "example.org",
               "dns.servers": dns.server, "relay.port": str(b.port),
               "tlsrpt.reports": "yes", "tlsrpt.report_interval": "86400"},
              users=("claire@example.org",), state="A", start=False)
    begin = int(time.time()) - 2 * 86400
    p = a.state_dir / "tlsrpt.state"
    p.write_text(f"tlsrpt-state 1\nbegin {begin} 0\nD example.com\n"
                 "P no-policy-found 5 1 0 - -\n"
                 "F starttls-not-supported 1 192.0.2.1 192.0.2.9 "
                 "mx.example.com - -\n")
    if RUN_AS:
        shutil.chown(p, RUN_AS[1], RUN_AS[2])
    a.start()
    [d] = wait_for(lambda: b.messages(RUA_BOX), "the overdue report",
                   timeout=40 * SLOW)
    _, _, doc = report_mail(d)
    [pol] = doc["policies"]
    assert pol["summary"] == {"total-successful-session-count": 5,
                              "total-failure-session-count": 1}, pol
    assert doc["date-range"]["start-datetime"] == time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime(begin)), doc


def test_reload_changes_report_names_and_max_domains(ternd, dnsmasq):
    """tlsrpt.report_org, report_from and max_domains changed by SIGHUP,
    without a restart: the next run's report names the new organisation
    and contact and comes from the new address; with max_domains lowered
    from 10 to 1 after example.net was counted, example.net still counts
    and example.com is dropped."""
    from conftest import readable_conf, sighup_reload
    b = ternd({"hostname": "mx.example.net", "domains": "example.net"},
              users=(RUA_BOX, "ben@example.net"), state="B")
    dns = dnsmasq(
        mx=[("example.net", "mx.example.net", 10),
            ("example.com", "mx.example.com", 10)],
        hosts=[("mx.example.net", "127.0.0.1"),
               ("mx.example.com", "127.0.0.1")],
        extra=[txt_rr("_smtp._tls.example.net",
                      f"v=TLSRPTv1;rua=mailto:{RUA_BOX}")])
    conf = readable_conf("[tlsrpt]\nreport_org = Old Org\n"
                         "max_domains = 10\n")
    a = ternd({"hostname": "mx.example.org", "domains": "example.org",
               "dns.servers": dns.server, "relay.port": str(b.port),
               "relay.networks": "127.0.0.0/8",
               "queue.retry_first": "1", "queue.retry_max": "2",
               "tlsrpt.reports": "yes"},
              users=("claire@example.org",), state="A",
              args=["-c", str(conf)])
    send(a, "ben@example.net")
    wait_for(lambda: b.messages("ben@example.net"), "ben's message at B")
    conf.write_text("[tlsrpt]\nreport_org = New Org\n"
                    "report_from = rpt@example.org\nmax_domains = 1\n")
    line = sighup_reload(a)
    assert "result=ok" in line and "tlsrpt.report_org" in line, line
    assert "needs_restart=tlsrpt." not in a.log()
    # example.com (B again, under another name): past the new bound
    send(a, "nobody@example.com")
    wait_for(lambda: re.search(r"mx=mx\.example\.com .*event=tlsrpt ",
                               a.log()), "the example.com session counted")
    r = a.tern("tlsrpt", "send", "--now")
    assert r.stdout.decode().strip() == (
        "domains 1, reports mailed 1, posted 0, skipped 0, failed 0"), \
        r.stdout
    got = wait_for(lambda: b.messages(RUA_BOX), "the report at B")
    msg, _, doc = report_mail(got[0])
    assert "rpt@example.org" in str(msg["From"]), msg["From"]
    assert doc["organization-name"] == "New Org", doc
    assert "rpt@example.org" in doc["contact-info"], doc
    assert [p["policy"]["policy-domain"] for p in doc["policies"]] == \
        ["example.net"], doc
