"""Outbound TLS that authenticates (docs/security.md, "Credentials sent to
a man in the middle"; docs/tls-auth.md, "Outbound delivery").

A fake smarthost (Python's ssl module, SMTP with STARTTLS or implicit
TLS, AUTH offered once TLS is up) records every command it gets.  The
certificates come from a CA this test makes with the openssl CLI:

  good   smtp.relay.test, signed by the test CA
  wrong  other.example, signed by the test CA (right chain, wrong name)
  self   other.example, self-signed (what a man in the middle shows)

relay.smarthost names smtp.relay.test, which dnsmasq resolves to
127.0.0.1.  The password must reach the fake smarthost only over a session
whose certificate was verified against the CA store and that name, or
when the admin chose relay.smarthost_tls = encrypt.
"""
import re
import ssl
import subprocess

import pytest

from conftest import BEN, check, two_mtas, wait_for
from fakepeer import FakePeer

SMARTHOST = "smtp.relay.test"
USER = "relay-user@example.org"
SECRET = "Smarthost s3cret"
MSG = (b"From: claire@example.org\r\nTo: bob@example.com\r\n"
       b"Subject: via the smarthost\r\n\r\nHello.\r\n")


# ---------------------------------------------------------------------------
# certificates
# ---------------------------------------------------------------------------

def _openssl(cwd, *args):
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True)
    assert r.returncode == 0, f"openssl {' '.join(args)}: {r.stderr!r}"


def _leaf(d, name, cn, signer):
    """A P-256 key and certificate for cn: signed by the test CA, or
    self-signed when signer is None."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    (d / f"{name}.ext").write_text(
        f"subjectAltName=DNS:{cn}\nbasicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
    if signer is None:
        _openssl(d, "req", "-x509", *ec, "-keyout", f"{name}.key",
                 "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN={cn}",
                 "-addext", f"subjectAltName=DNS:{cn}")
        return
    _openssl(d, "req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
             "-subj", f"/CN={cn}")
    _openssl(d, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem",
             "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
             "-extfile", f"{name}.ext", "-out", f"{name}.pem")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    _openssl(d, "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key",
             "-out", "ca.pem", "-days", "2", "-subj", "/CN=tern test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    _leaf(d, "good", SMARTHOST, "ca")
    _leaf(d, "wrong", "other.example", "ca")
    _leaf(d, "self", "other.example", None)
    return d


# ---------------------------------------------------------------------------
# the fake smarthost
# ---------------------------------------------------------------------------

class FakeSmarthost(FakePeer):
    """SMTP on 127.0.0.1: STARTTLS (or TLS at once with implicit), AUTH
    PLAIN/LOGIN offered over TLS only and always accepted, messages kept.
    Every command line is recorded, whether TLS was up or not."""

    ERRORS = (OSError, ssl.SSLError)

    def __init__(self, pki, cert, implicit=False):
        super().__init__(backlog=8)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(pki / f"{cert}.pem", pki / f"{cert}.key")
        self.implicit = implicit
        self.lines = []
        self.messages = []
        self.tls_errors = self.errors

    @property
    def auth_lines(self):
        return [ln for ln in self.lines if ln[:4].upper() == b"AUTH"]

    def _tls(self, s):
        try:
            return self.ctx.wrap_socket(s, server_side=True)
        except (OSError, ssl.SSLError) as e:
            # the client refused our certificate: what must happen to a MITM
            self.tls_errors.append(repr(e))
            return None

    def session(self, s):
        tls = False
        if self.implicit:
            s = self._tls(s)
            if s is None:
                return
            tls = True
        f = s.makefile("rb")
        s.sendall(f"220 {SMARTHOST} ESMTP fake\r\n".encode())
        while True:
            line = f.readline()
            if not line:
                return
            line = line.rstrip(b"\r\n")
            self.lines.append(line)
            verb = line[:8].upper()
            if verb.startswith(b"EHLO"):
                ext = [b"250-" + SMARTHOST.encode(), b"250-ENHANCEDSTATUSCODES"]
                ext.append(b"250 AUTH PLAIN LOGIN" if tls else b"250 STARTTLS")
                s.sendall(b"\r\n".join(ext) + b"\r\n")
            elif verb == b"STARTTLS" and not tls:
                s.sendall(b"220 2.0.0 go ahead\r\n")
                s = self._tls(s)
                if s is None:
                    return
                f, tls = s.makefile("rb"), True
            elif verb.startswith(b"AUTH"):
                s.sendall(b"235 2.7.0 Authentication successful\r\n")
            elif verb.startswith((b"MAIL", b"RCPT", b"RSET", b"NOOP")):
                s.sendall(b"250 2.0.0 ok\r\n")
            elif verb.startswith(b"DATA"):
                s.sendall(b"354 go\r\n")
                body = []
                for ln in f:
                    if ln == b".\r\n":
                        break
                    body.append(ln)
                self.messages.append(b"".join(body))
                s.sendall(b"250 2.0.0 queued\r\n")
            elif verb.startswith(b"QUIT"):
                s.sendall(b"221 2.0.0 bye\r\n")
                return
            else:
                s.sendall(b"502 5.5.2 no\r\n")



@pytest.fixture
def smarthost(pki):
    """Factory: smarthost(cert, implicit=False) -> a running FakeSmarthost."""
    started = []

    def make(cert, implicit=False):
        h = FakeSmarthost(pki, cert, implicit)
        h.start()
        started.append(h)
        return h
    yield make
    for h in started:
        h.close()


def relay_through(ternd, dnsmasq, tmp_path, host, spec_prefix="", **extra):
    """A ternd relaying 127.0.0.0/8 through smtp.relay.test at host's port
    with credentials; extra: more -o overrides (None drops a key)."""
    dns = dnsmasq(hosts=[(SMARTHOST, "127.0.0.1")], extra=["--local=/test/"])
    pw = tmp_path / "smarthost.pw"
    pw.write_text(SECRET + "\n")
    pw.chmod(0o600)
    o = {"relay.networks": "127.0.0.0/8", "dns.servers": dns.server,
         "relay.smarthost": f"{spec_prefix}{SMARTHOST}:{host.port}",
         "relay.smarthost_user": USER,
         "relay.smarthost_password_file": str(pw),
         "queue.retry_first": "3600"}
    o.update({k.replace("__", "."): v for k, v in extra.items()})
    t = ternd({k: v for k, v in o.items() if v is not None})
    check(t.send_raw("claire@example.org", ["bob@example.com"], MSG), 250)
    return t


def attempted(t, host):
    """The queued message once a delivery attempt recorded its 451, or
    None as soon as the smarthost got credentials or a message (fail fast,
    with the reason, rather than wait for a deferral that will not come)."""
    def tried():
        if host.auth_lines or host.messages:
            return "leaked"
        q = t.queue_list()
        return q if q and q[0]["recipients"][0].get("code") == 451 else None
    got = wait_for(tried, "the deferral recorded in the queue", timeout=20)
    return None if got == "leaked" else got[0]


def assert_deferred_without_auth(t, host, why):
    m = attempted(t, host)
    assert host.auth_lines == [], \
        f"the smarthost got the credentials: {host.auth_lines!r}"
    assert host.messages == [], host.messages
    r = m["recipients"][0]
    assert r["state"] == "PENDING", m
    assert why in r.get("text", ""), m
    assert SECRET not in t.log()
    return m


def assert_delivered_with_auth(t, host):
    wait_for(lambda: host.messages, "the message at the smarthost")
    wait_for(lambda: t.queue_list() == [], "the queue to empty")
    [auth] = host.auth_lines
    assert auth.startswith(b"AUTH "), auth
    assert b"Subject: via the smarthost" in host.messages[0]


# ---------------------------------------------------------------------------
# the tests
# ---------------------------------------------------------------------------

def test_self_signed_other_name_never_gets_auth(ternd, dnsmasq, smarthost,
                                                 tmp_path):
    """The default with credentials is verify: a man in the middle with a
    self-signed certificate for another name fails the handshake, gets no
    AUTH, and the message stays queued with the reason logged."""
    host = smarthost("self")
    t = relay_through(ternd, dnsmasq, tmp_path, host)
    assert_deferred_without_auth(t, host, "certificate verify failed")
    log = t.log()
    assert "event=tls status=failed verified=no" in log, log
    assert "certificate verify failed (self-signed certificate)" in log, log
    assert host.tls_errors, "the handshake was expected to be refused"


def test_trusted_ca_wrong_name_never_gets_auth(ternd, dnsmasq, smarthost,
                                               tmp_path, pki):
    """A certificate from the trusted CA for another host is refused too:
    the name is checked, not only the chain."""
    host = smarthost("wrong")
    t = relay_through(ternd, dnsmasq, tmp_path, host,
                      relay__smarthost_ca_file=str(pki / "ca.pem"))
    assert_deferred_without_auth(t, host, "hostname mismatch")


def test_trusted_ca_right_name_gets_auth(ternd, dnsmasq, smarthost, tmp_path,
                                         pki):
    host = smarthost("good")
    t = relay_through(ternd, dnsmasq, tmp_path, host,
                      relay__smarthost_ca_file=str(pki / "ca.pem"))
    assert_delivered_with_auth(t, host)
    assert "verified=yes" in t.log()
    assert SECRET not in t.log()


def test_trust_store_tls_ca_file_serves_the_smarthost(ternd, dnsmasq,
                                                      smarthost, tmp_path, pki):
    """tls.ca_file is the trust store of every verification, the smarthost's
    too when relay.smarthost_ca_file is not set (docs/tls-auth.md)."""
    host = smarthost("good")
    t = relay_through(ternd, dnsmasq, tmp_path, host,
                      tls__ca_file=str(pki / "ca.pem"))
    assert_delivered_with_auth(t, host)
    assert "verified=yes tls_policy=smarthost" in t.log()


def test_smarthost_ca_file_wins_over_tls_ca_file(ternd, dnsmasq, smarthost,
                                                 tmp_path, pki):
    """relay.smarthost_ca_file, when set, is the only store for the
    smarthost: a tls.ca_file that would trust it does not."""
    host = smarthost("good")
    t = relay_through(ternd, dnsmasq, tmp_path, host,
                      tls__ca_file=str(pki / "ca.pem"),
                      relay__smarthost_ca_file=str(pki / "self.pem"))
    assert_deferred_without_auth(t, host, "certificate verify failed")


def test_resumed_session_stays_verified(ternd, dnsmasq, smarthost, tmp_path,
                                        pki):
    """The second connection to the smarthost resumes the first one's TLS
    session (src/tls/sesscache.h): no certificate is sent then, and the
    verdict comes back with the session, so the peer still counts as
    verified and gets the credentials again.  The first session stays idle
    for the next message for a while (REMOTE_IDLE_SECS): the second message
    goes once it has QUIT, so it takes a new connection."""
    host = smarthost("good")
    t = relay_through(ternd, dnsmasq, tmp_path, host,
                      relay__smarthost_ca_file=str(pki / "ca.pem"))
    assert_delivered_with_auth(t, host)
    wait_for(lambda: any(ln.upper().startswith(b"QUIT") for ln in host.lines),
             "the idle session to QUIT")
    check(t.send_raw("claire@example.org", ["bob@example.com"], MSG), 250)
    wait_for(lambda: len(host.messages) == 2, "the second message")
    wait_for(lambda: t.queue_list() == [], "the queue to empty")
    assert len(host.auth_lines) == 2, host.auth_lines
    got = re.findall(r"event=tls version=\S+ cipher=\S+ tls_resumed=(yes|no) "
                     r"verified=(yes|no)", t.log())
    assert got == [("no", "yes"), ("yes", "yes")], t.log()[-3000:]


@pytest.mark.parametrize("cert,ok", [("good", True), ("self", False)],
                         ids=["trusted", "self-signed"])
def test_implicit_tls_smarthost(ternd, dnsmasq, smarthost, tmp_path, pki,
                                cert, ok):
    """smtps:host:port: TLS before the greeting, the same rules."""
    host = smarthost(cert, implicit=True)
    t = relay_through(ternd, dnsmasq, tmp_path, host, spec_prefix="smtps:",
                      relay__smarthost_ca_file=str(pki / "ca.pem"))
    if ok:
        assert_delivered_with_auth(t, host)
        assert not any(ln.upper() == b"STARTTLS" for ln in host.lines)
        assert "verified=yes" in t.log()
    else:
        assert_deferred_without_auth(t, host, "certificate verify failed")
        assert host.lines == [], "no SMTP may flow over the refused session"


def test_encrypt_sends_auth_to_unverified_peer(ternd, dnsmasq, smarthost,
                                               tmp_path):
    """relay.smarthost_tls = encrypt: the admin named the risk, so the
    credentials go over TLS to whoever answers; the log says verified=no."""
    host = smarthost("self")
    t = relay_through(ternd, dnsmasq, tmp_path, host,
                      relay__smarthost_tls="encrypt")
    assert_delivered_with_auth(t, host)
    assert 'verified=no verify_error="self-signed certificate"' in t.log()


def test_may_defers_rather_than_sending_auth(ternd, dnsmasq, smarthost,
                                             tmp_path):
    """relay.smarthost_tls = may with credentials: TLS is opportunistic,
    but the credentials still go only to a verified peer; else deferred."""
    host = smarthost("self")
    t = relay_through(ternd, dnsmasq, tmp_path, host,
                      relay__smarthost_tls="may")
    assert_deferred_without_auth(
        t, host, "Credentials are only sent to a verified peer")
    # TLS itself was up (opportunistic), just not trusted
    assert any(ln.upper().startswith(b"EHLO") for ln in host.lines)
    assert 'verified=no verify_error="self-signed certificate"' in t.log()


def test_mx_delivery_stays_opportunistic_and_logs_verified(ternd, dnsmasq):
    """MX delivery (no smarthost) keeps opportunistic STARTTLS: B's
    self-signed certificate is accepted and the mail arrives, and A's TLS
    line says the peer was not verified, and why."""
    a, b, _ = two_mtas(ternd, dnsmasq, a_over={"relay.networks": "127.0.0.0/8"})
    check(a.send_raw("claire@example.org", [BEN], MSG), 250)
    wait_for(lambda: b.messages(BEN), "the message at B")
    assert re.search(r"event=tls version=TLSv1\.[23] cipher=\S+ tls_resumed=no "
                     r'verified=no verify_error="self-signed certificate"',
                     a.log()), a.log()
