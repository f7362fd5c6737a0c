"""Outbound TLS session resumption (docs/tls-auth.md, "Outbound delivery";
src/tls/sesscache.h).

ternd relays 127.0.0.0/8 to the MX hosts dnsmasq names: mx.one.test for
one.test and mx.two.test for two.test, both 127.0.0.1 on the port of a
TLS sink written here (Python's ssl module: STARTTLS, TLS 1.3 tickets or
TLS 1.2 sessions, one session at a time).  The sink records, for each
connection, the name the client sent as SNI and whether the handshake
resumed a session (SSL_session_reused on the server side); ternd logs
tls_resumed=yes|no on its event=tls line.  Each message is relayed over
a connection of its own: the next one is sent only once the sink has
closed the previous session.
"""
import re
import ssl
import subprocess

import pytest

from conftest import check, wait_for
from fakepeer import FakePeer

MSG = b"From: app@client.test\r\nSubject: resume\r\n\r\nHello.\r\n"


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("sinkcert")
    r = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:P-256", "-nodes", "-keyout", "key.pem",
         "-out", "cert.pem", "-days", "2", "-subj", "/CN=mx.one.test",
         "-addext", "subjectAltName=DNS:mx.one.test,DNS:mx.two.test"],
        cwd=d, capture_output=True)
    assert r.returncode == 0, r.stderr
    return d


class TlsSink(FakePeer):
    """SMTP with STARTTLS; every message taken.  conns: one dict per
    connection that went through TLS: sni, resumed, version."""

    ERRORS = (OSError, ssl.SSLError)

    def __init__(self, cert, version):
        super().__init__(backlog=8)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert / "cert.pem", cert / "key.pem")
        self.ctx.minimum_version = version
        self.ctx.maximum_version = version
        self.ctx.sni_callback = self._on_sni
        self._sni = None
        self.conns = []
        self.messages = 0
        self.ended = 0   # sessions over (their socket closed)

    def _on_sni(self, sock, name, ctx):
        self._sni = name

    def session(self, s):
        try:
            self._session(s)
        finally:
            self.ended += 1

    def _session(self, s):
        tls = False
        f = s.makefile("rb")
        s.sendall(b"220 mx.test ESMTP sink\r\n")
        while True:
            line = f.readline()
            if not line:
                return
            verb = line[:8].upper()
            if verb.startswith(b"EHLO"):
                s.sendall(b"250-mx.test\r\n250-PIPELINING\r\n" +
                          (b"250 8BITMIME\r\n" if tls else b"250 STARTTLS\r\n"))
            elif verb.startswith(b"STARTTLS") and not tls:
                s.sendall(b"220 2.0.0 go ahead\r\n")
                self._sni = None
                s = self.ctx.wrap_socket(s, server_side=True)
                self.conns.append({"sni": self._sni,
                                   "resumed": s.session_reused,
                                   "version": s.version()})
                f, tls = s.makefile("rb"), True
            elif verb.startswith((b"MAIL", b"RCPT", b"RSET", b"NOOP")):
                s.sendall(b"250 2.0.0 ok\r\n")
            elif verb.startswith(b"DATA"):
                s.sendall(b"354 go\r\n")
                for ln in f:
                    if ln == b".\r\n":
                        break
                self.messages += 1
                s.sendall(b"250 2.0.0 queued\r\n")
            elif verb.startswith(b"QUIT"):
                s.sendall(b"221 2.0.0 bye\r\n")
                return
            else:
                s.sendall(b"502 5.5.2 no\r\n")


@pytest.fixture
def sink(cert):
    started = []

    def make(version):
        h = TlsSink(cert, version)
        h.start()
        started.append(h)
        return h
    yield make
    for h in started:
        h.close()


def relay_to(ternd, dnsmasq, sink):
    dns = dnsmasq(mx=[("one.test", "mx.one.test", 10),
                      ("two.test", "mx.two.test", 10)],
                  hosts=[("mx.one.test", "127.0.0.1"),
                         ("mx.two.test", "127.0.0.1")],
                  extra=["--local=/test/"])
    return ternd({"relay.networks": "127.0.0.0/8", "dns.servers": dns.server,
                  "relay.port": str(sink.port),
                  "queue.retry_first": "3600"})


def tls_lines(t):
    return re.findall(r"mx=(\S+) addr=\S+ event=tls version=\S+ cipher=\S+ "
                      r"tls_resumed=(yes|no) ", t.log())


def relay_one(t, sink, rcpt):
    """One message to rcpt, over a connection of its own (waits until the
    sink has it and the session is over)."""
    n, ended = sink.messages, sink.ended
    check(t.send_raw("app@client.test", [rcpt], MSG), 250)
    wait_for(lambda: sink.messages == n + 1 and sink.ended == ended + 1,
             f"the message to {rcpt} at the sink, its session closed")
    wait_for(lambda: t.queue_list() == [], "the queue to empty")


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3,
                                     ssl.TLSVersion.TLSv1_2],
                         ids=["tls13", "tls12"])
def test_resumes_per_peer(ternd, dnsmasq, sink, version):
    """The 2nd and later connections to one MX resume the session of the
    one before; another MX name at the same address and port does not get
    that session (its own full handshake), and the first MX still resumes
    after it."""
    k = sink(version)
    t = relay_to(ternd, dnsmasq, k)
    for _ in range(3):
        relay_one(t, k, "a@one.test")
    assert [c["resumed"] for c in k.conns] == [False, True, True], k.conns
    assert [c["sni"] for c in k.conns] == ["mx.one.test"] * 3, k.conns
    assert tls_lines(t) == [("mx.one.test", "no"), ("mx.one.test", "yes"),
                            ("mx.one.test", "yes")], t.log()[-3000:]
    # another name (SNI, the name checked) at the same address and port
    relay_one(t, k, "b@two.test")
    relay_one(t, k, "a@one.test")
    assert [(c["sni"], c["resumed"]) for c in k.conns[3:]] == [
        ("mx.two.test", False), ("mx.one.test", True)], k.conns
    assert tls_lines(t)[3:] == [("mx.two.test", "no"),
                                ("mx.one.test", "yes")], t.log()[-3000:]
    want = "TLSv1.3" if version == ssl.TLSVersion.TLSv1_3 else "TLSv1.2"
    assert {c["version"] for c in k.conns} == {want}, k.conns
