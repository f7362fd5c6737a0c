"""REQUIRETLS (RFC 8689; docs/tls-auth.md, "REQUIRETLS").

Two ternd instances: A relays through its smarthost B, which serves a
certificate for smtp.relay.test from a CA this test makes; A trusts that
CA (relay.smarthost_ca_file) and, with relay.smarthost_tls = verify,
verifies B: the one "policy" tern has before DANE and MTA-STS.  A client
(smtplib over STARTTLS) sends MAIL FROM:<..> REQUIRETLS to A.

  verified hop offering REQUIRETLS  -> relayed, REQUIRETLS passed to B
  report to a sender elsewhere      -> queued with REQUIRETLS, sent anyway
  verified hop without REQUIRETLS   -> bounced 5.7.30, nothing sent
  hop not verified (encrypt, may)   -> bounced 5.7.10, nothing sent
  REQUIRETLS before STARTTLS        -> 530 5.7.10, not offered in EHLO
  queued, ternd restarted           -> still REQUIRETLS (both queues)

The bounce is the sender's (claire is local on A), with the header of the
original only (RFC 8689 5: as if RET=HDRS).
"""
import base64
import re
import shutil
import smtplib
import ssl
import subprocess

import pytest

from conftest import (PASSWORD, SLOW, check, dsn_of, ehlo_keywords, field,
                      maildir_files, submit_ternd, wait_for, world_tmpdir,
                      SMTPClient)
from test_smarthost_tls import FakeSmarthost

SMARTHOST = "smtp.relay.test"
CLAIRE = "claire@example.org"
BEN = "ben@example.net"
BODY_LINE = b"The secret is in the body."


def msg(subject, extra=b""):
    return (b"From: claire@example.org\r\nTo: ben@example.net\r\n"
            b"Subject: " + subject.encode() + b"\r\n" + extra +
            b"Message-ID: <" + subject.encode() + b"@example.org>\r\n\r\n" +
            BODY_LINE + b"\r\n")


# ---------------------------------------------------------------------------
# certificates: a CA, and B's certificate for smtp.relay.test
# ---------------------------------------------------------------------------

def _openssl(cwd, *args):
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True)
    assert r.returncode == 0, f"openssl {' '.join(args)}: {r.stderr!r}"


@pytest.fixture(scope="module")
def pki():
    """ca.pem, and good.pem/good.key for smtp.relay.test signed by it;
    readable by any uid (ternd may run as another user)."""
    d = world_tmpdir("tern-reqtls-")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    _openssl(d, "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem",
             "-days", "2", "-subj", "/CN=tern REQUIRETLS test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    (d / "good.ext").write_text(
        f"subjectAltName=DNS:{SMARTHOST}\nbasicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
    _openssl(d, "req", *ec, "-keyout", "good.key", "-out", "good.csr",
             "-subj", f"/CN={SMARTHOST}")
    _openssl(d, "x509", "-req", "-in", "good.csr", "-CA", "ca.pem",
             "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
             "-extfile", "good.ext", "-out", "good.pem")
    for p in d.iterdir():
        p.chmod(0o644)
    yield d
    shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------------------
# the two MTAs
# ---------------------------------------------------------------------------

def mta_b(ternd, pki, start=True):
    """B: example.net's server (ben), its certificate from the test CA."""
    return ternd({"hostname": "mx.example.net", "domains": "example.net",
                  "tls.cert": str(pki / "good.pem"),
                  "tls.key": str(pki / "good.key")},
                 users=(BEN,), state="B", start=start)


def mta_a(ternd, dnsmasq, pki, port, tls="verify", **extra):
    """A: example.org's server (claire), relaying 127.0.0.0/8 through
    smtp.relay.test:port with relay.smarthost_tls = tls."""
    dns = dnsmasq(hosts=[(SMARTHOST, "127.0.0.1")], extra=["--local=/test/"])
    o = {"hostname": "mx.example.org", "domains": "example.org",
         "relay.networks": "127.0.0.0/8", "dns.servers": dns.server,
         "relay.smarthost": f"{SMARTHOST}:{port}",
         "relay.smarthost_tls": tls,
         "relay.smarthost_ca_file": str(pki / "ca.pem"),
         "queue.retry_first": "3600", "queue.retry_max": "3600"}
    o.update({k.replace("__", "."): v for k, v in extra.items()})
    return submit_ternd(ternd, o, users=(CLAIRE,), state="A")


def client_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE     # A's own certificate is self-signed
    return ctx


def send_requiretls(a, content, requiretls=True):
    """STARTTLS to A's MX port, then MAIL FROM:<claire> [REQUIRETLS];
    returns the reply to the end of data (code, text)."""
    with smtplib.SMTP("127.0.0.1", a.port, local_hostname="client.test",
                      timeout=10 * SLOW) as s:
        s.starttls(context=client_context())
        s.ehlo("client.test")
        assert s.has_extn("requiretls"), s.esmtp_features
        opts = ["REQUIRETLS"] if requiretls else []
        code, text = s.mail(CLAIRE, opts)
        assert code == 250, (code, text)
        code, text = s.rcpt(BEN)
        assert code == 250, (code, text)
        return s.data(content)


def bounce_of(a):
    """The one DSN in claire's Maildir on A, parsed (dsn_of)."""
    [path] = wait_for(lambda: maildir_files(a.state_dir, CLAIRE),
                      "the bounce in claire's Maildir on A")
    return path.read_bytes()


def check_bounce(raw, status):
    m, per_msg, [r], returned = dsn_of(raw)
    assert field(r, "Action").lower() == "failed", r.items()
    assert field(r, "Status") == status, r.items()
    assert "REQUIRETLS" in field(r, "Diagnostic-Code"), r.items()
    # RFC 8689 5: the header of the original comes back, never its body
    [ret] = returned
    assert ret.get_content_type() == "text/rfc822-headers", ret.items()
    assert BODY_LINE not in raw, raw[-1500:]
    return m


# ---------------------------------------------------------------------------
# the tests
# ---------------------------------------------------------------------------

def test_requiretls_relayed_to_verified_hop(ternd, dnsmasq, pki):
    b = mta_b(ternd, pki)
    a = mta_a(ternd, dnsmasq, pki, b.port)
    code, _ = send_requiretls(a, msg("relayed"))
    assert code == 250
    [d] = wait_for(lambda: b.messages(BEN), "the message at B")
    assert BODY_LINE in d.data
    wait_for(lambda: a.queue_list() == [], "A's queue to empty")
    # A verified B and passed REQUIRETLS on; B stored it as such
    alog, blog = a.log(), b.log()
    assert re.search(r"event=queued from=<claire@example\.org> .*"
                     r"requiretls=yes", alog), alog[-3000:]
    assert re.search(r"event=tls .*verified=yes", alog), alog[-3000:]
    assert re.search(r"event=delivered from=<claire@example\.org> "
                     r"to=<ben@example\.net> .*requiretls=yes", blog), \
        blog[-3000:]
    assert maildir_files(a.state_dir, CLAIRE) == []     # no bounce


def test_requiretls_hop_without_requiretls_bounced(ternd, dnsmasq, pki):
    """A verified hop that does not offer REQUIRETLS gets nothing: the
    sender gets a 5.7.30 bounce (RFC 8689 4.2.1)."""
    host = FakeSmarthost(pki, "good")
    host.start()
    try:
        a = mta_a(ternd, dnsmasq, pki, host.port)
        code, _ = send_requiretls(a, msg("no-requiretls-peer"))
        assert code == 250
        check_bounce(bounce_of(a), "5.7.30")
        mails = [ln for ln in host.lines if ln[:4].upper() == b"MAIL"]
        assert mails == [] and host.messages == [], host.lines
        assert any(ln.upper().startswith(b"EHLO") for ln in host.lines)
        assert re.search(r"event=tls .*verified=yes", a.log()), a.log()
        wait_for(lambda: a.queue_list() == [], "A's queue to empty")
    finally:
        host.close()


def test_requiretls_bounce_to_remote_sender(ternd, dnsmasq, pki):
    """The report to a sender elsewhere is queued with REQUIRETLS itself
    (RFC 8689 5), and, having the null sender, is not held back by a hop
    without REQUIRETLS: it goes, headers only, without the parameter."""
    host = FakeSmarthost(pki, "good")
    host.start()
    try:
        a = mta_a(ternd, dnsmasq, pki, host.port)
        with smtplib.SMTP("127.0.0.1", a.port, local_hostname="client.test",
                          timeout=10 * SLOW) as s:
            s.starttls(context=client_context())
            s.ehlo("client.test")
            s.sendmail("zoe@far.example", [BEN], msg("remote-sender"),
                       mail_options=["REQUIRETLS"])
        wait_for(lambda: host.messages, "the report at the smarthost")
        mails = [ln for ln in host.lines if ln[:4].upper() == b"MAIL"]
        assert mails == [b"MAIL FROM:<>"], host.lines
        [report] = host.messages
        assert b"5.7.30" in report and b"text/rfc822-headers" in report
        assert BODY_LINE not in report, report[-1500:]
        log = a.log()
        assert re.search(r"event=queued from=<> rcpts=1 size=\d+ "
                         r"requiretls=yes", log), log[-3000:]
        wait_for(lambda: a.queue_list() == [], "A's queue to empty")
    finally:
        host.close()


@pytest.mark.parametrize("tls", ["encrypt", "may"])
def test_requiretls_unverified_hop_bounced(ternd, dnsmasq, pki, tls):
    """B offers REQUIRETLS, but relay.smarthost_tls = encrypt or may is no
    policy that verifies it: 5.7.10, B gets nothing."""
    b = mta_b(ternd, pki)
    a = mta_a(ternd, dnsmasq, pki, b.port, tls=tls)
    code, _ = send_requiretls(a, msg("unverified-" + tls))
    assert code == 250
    check_bounce(bounce_of(a), "5.7.10")
    assert b.messages(BEN) == []
    assert "REQUIRETLS" not in b.log()
    assert not re.search(r"event=delivered", b.log())
    wait_for(lambda: a.queue_list() == [], "A's queue to empty")


def test_requiretls_without_requiretls_not_held_back(ternd, dnsmasq, pki):
    """The same unverified hop takes mail sent without REQUIRETLS."""
    b = mta_b(ternd, pki)
    a = mta_a(ternd, dnsmasq, pki, b.port, tls="encrypt")
    code, _ = send_requiretls(a, msg("plain"), requiretls=False)
    assert code == 250
    wait_for(lambda: b.messages(BEN), "the message at B")
    assert "requiretls=yes" not in b.log()


def test_requiretls_before_starttls_refused(ternd, dnsmasq, pki):
    """Not offered outside TLS, and refused there with the RFC 3207 530
    and 5.7.10; offered and accepted after STARTTLS (MX and submission)."""
    b = mta_b(ternd, pki, start=False)
    a = mta_a(ternd, dnsmasq, pki, b.port)
    for port in (a.port, a.sub_port):
        with SMTPClient(port) as c:
            r = c.ehlo()
            assert "REQUIRETLS" not in ehlo_keywords(r), r.lines
            check(c.cmd(f"MAIL FROM:<{CLAIRE}> REQUIRETLS"), 530, "5.7.10")
            c.starttls()
            r = c.ehlo()
            assert "REQUIRETLS" in ehlo_keywords(r), r.lines
            if port == a.sub_port:
                cred = base64.b64encode(
                    f"\0{CLAIRE}\0{PASSWORD}".encode()).decode()
                check(c.cmd(f"AUTH PLAIN {cred}"), 235)
            check(c.cmd(f"MAIL FROM:<{CLAIRE}> REQUIRETLS"), 250)
            c.expect("QUIT", 221)


@pytest.mark.parametrize("queue_log", ["yes", "no"])
def test_requiretls_survives_restart(ternd, dnsmasq, pki, queue_log):
    """B is down: the message waits in A's queue, REQUIRETLS with it, over
    a restart of A, in either queue format; then it goes to B with the
    parameter.  A message with "TLS-Required: No" keeps that too."""
    b = mta_b(ternd, pki, start=False)
    a = mta_a(ternd, dnsmasq, pki, b.port, queue__log=queue_log)
    send_requiretls(a, msg("restart"))
    send_requiretls(a, msg("tls-optional", b"TLS-Required: No\r\n"),
                    requiretls=False)

    def both_tried():
        q = a.queue_list()
        return q if len(q) == 2 and all(
            m["recipients"][0]["attempts"] >= 1 for m in q) else None
    q = wait_for(both_tried, "two failed first attempts")
    by = {m["requiretls"]: m for m in q}
    assert set(by) == {True, False}, q
    assert by[True]["tls_required_no"] is False, q
    assert by[False]["tls_required_no"] is True, q
    rid, oid = by[True]["id"], by[False]["id"]
    if queue_log == "no":
        env = (a.state_dir / "queue" / "env" / rid).read_text()
        assert env.startswith("V 3\n") and "\nT 1 0\n" in env, env
        env = (a.state_dir / "queue" / "env" / oid).read_text()
        assert env.startswith("V 3\n") and "\nT 0 1\n" in env, env

    def show(qid):
        return a.tern("queue", "show", qid).stdout.decode()
    assert "requiretls: yes" in show(rid), show(rid)
    assert "requiretls: no" in show(oid), show(oid)
    assert "tls-required: No" in show(oid), show(oid)

    assert a.stop() == 0
    a.start()
    q2 = {m["id"]: m for m in a.queue_list()}
    assert q2[rid]["requiretls"] is True, q2
    assert q2[oid]["requiretls"] is False and \
        q2[oid]["tls_required_no"] is True, q2
    assert "requiretls: yes" in show(rid), show(rid)

    b.start()
    a.tern("queue", "flush")
    wait_for(lambda: len(b.messages(BEN)) == 2, "both messages at B")
    wait_for(lambda: a.queue_list() == [], "A's queue to empty")
    blog = b.log()
    assert len(re.findall(r"event=delivered .*requiretls=yes", blog)) == 1, \
        blog[-3000:]
