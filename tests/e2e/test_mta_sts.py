"""MTA-STS (RFC 8461) in outbound delivery, with real components
(docs/tls-auth.md, "MTA-STS").

  A    the sending ternd (example.org), relay.networks open to loopback,
       tls.ca_file = the suite's CA, dns.servers = dnsmasq
  B    the receiving ternd (example.net and example.com) on 127.0.0.1,
       with a certificate for mx.example.net from the suite's CA (or its
       own self-signed one, where a test wants a bad certificate)
  DNS  dnsmasq: MX example.net -> mx.example.net (or another name),
       mx.example.net A 127.0.0.1, mta-sts.example.net A the HTTPS
       server's address, the _mta-sts.example.net TXT record(s)
  HTTPS  a Python http.server over TLS on port 443 of a loopback address
       of its own (127.53.x.y), certificate for mta-sts.example.net from
       the suite's CA (or self-signed), serving the policy as each test
       says (body, media type, byte-by-byte)

The policy URL has no port (RFC 8461 3.3), so the server listens on 443:
these tests run as root (tests/run.py's second pass); ternd itself drops
to the test user as always.
"""
import email
import email.policy
import gzip
import http.server
import json
import os
import random
import re
import signal
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import RUN_AS, SLOW, wait_for, world_tmpdir

pytestmark = pytest.mark.root

SENDER = "claire@example.org"
BEN = "ben@example.net"
ANN = "ann@example.com"
MSG = (b"From: claire@example.org\r\nTo: ben@example.net\r\n"
       b"Subject: under MTA-STS\r\n\r\nHello.\r\n")
GOOD = ("version: STSv1\r\nmode: enforce\r\nmx: mx.example.net\r\n"
        "max_age: 86400\r\n")


# ---------------------------------------------------------------------------
# certificates
# ---------------------------------------------------------------------------

def _openssl(cwd, *args):
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True)
    assert r.returncode == 0, f"openssl {' '.join(args)}: {r.stderr!r}"


def _leaf(d, name, cn, ca=True, more=(), signer="ca"):
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    if not ca:
        _openssl(d, "req", "-x509", *ec, "-keyout", f"{name}.key",
                 "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN={cn}",
                 "-addext", f"subjectAltName=DNS:{cn}")
    else:
        san = ",".join(f"DNS:{n}" for n in (cn, *more))
        (d / f"{name}.ext").write_text(
            f"subjectAltName={san}\nbasicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature\n"
            "extendedKeyUsage=serverAuth\n")
        _openssl(d, "req", *ec, "-keyout", f"{name}.key", "-out",
                 f"{name}.csr", "-subj", f"/CN={cn}")
        _openssl(d, "x509", "-req", "-in", f"{name}.csr", "-CA",
                 f"{signer}.pem", "-CAkey", f"{signer}.key",
                 "-CAcreateserial", "-days", "2",
                 "-extfile", f"{name}.ext", "-out", f"{name}.pem")
    for ext in ("key", "pem"):
        os.chmod(d / f"{name}.{ext}", 0o644)


@pytest.fixture(scope="module")
def pki():
    d = world_tmpdir("tern-sts-pki-")
    _openssl(d, "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key",
             "-out", "ca.pem", "-days", "2", "-subj", "/CN=tern sts test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    os.chmod(d / "ca.pem", 0o644)
    _leaf(d, "sts", "mta-sts.example.net", more=("mta-sts.example.com",))
    _leaf(d, "sts-self", "mta-sts.example.net", ca=False)
    _leaf(d, "mx", "mx.example.net")
    # a hashed CA directory, for tls.ca_path
    (d / "capath").mkdir()
    os.chmod(d / "capath", 0o755)
    (d / "capath" / "ca.pem").write_bytes((d / "ca.pem").read_bytes())
    os.chmod(d / "capath" / "ca.pem", 0o644)
    _openssl(d, "rehash", "capath")
    yield d
    subprocess.run(["rm", "-rf", str(d)], check=False)


# ---------------------------------------------------------------------------
# the policy server
# ---------------------------------------------------------------------------

class PolicyServer:
    """HTTPS on ADDR:443.  body/ctype/status/per_byte are read per request;
    hits counts the GETs of the policy path."""

    def __init__(self, pki, cert="sts"):
        self.addr = f"127.53.{random.randint(1, 254)}.{random.randint(1, 254)}"
        self.body = GOOD.encode()
        self.ctype = "text/plain; charset=utf-8"
        self.status = 200
        self.per_byte = 0.0
        self.hits = 0
        srv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                if self.path == "/.well-known/mta-sts.txt":
                    srv.hits += 1
                self.send_response(srv.status)
                if srv.status in (301, 302):
                    self.send_header("Location",
                                     "https://mta-sts.example.net/other.txt")
                self.send_header("Content-Type", srv.ctype)
                self.send_header("Content-Length", str(len(srv.body)))
                self.end_headers()
                try:
                    if srv.per_byte:
                        for i in range(len(srv.body)):
                            self.wfile.write(srv.body[i:i + 1])
                            self.wfile.flush()
                            time.sleep(srv.per_byte)
                    else:
                        self.wfile.write(srv.body)
                except OSError:
                    pass            # the client gave up: what we test

        self.httpd = http.server.ThreadingHTTPServer((self.addr, 443), Handler)
        self.httpd.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pki / f"{cert}.pem", pki / f"{cert}.key")
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)
        self.thread.start()

    def stop(self):
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None


@pytest.fixture
def policy_server(pki):
    made = []

    def make(cert="sts"):
        s = PolicyServer(pki, cert)
        made.append(s)
        return s
    yield make
    for s in made:
        s.stop()


# ---------------------------------------------------------------------------
# the two MTAs
# ---------------------------------------------------------------------------

def txt_opts(txts):
    return [f"--txt-record=_mta-sts.example.net,{t}" for t in txts]


def start_dns(dnsmasq, https, txts=("v=STSv1; id=1;",), mx="mx.example.net",
              txts_com=(), more=()):
    return dnsmasq(mx=[("example.net", mx, 10),
                       ("example.com", "mx.example.net", 10)],
                   hosts=[("mx.example.net", "127.0.0.1"),
                          ("evil.example.net", "127.0.0.1"),
                          ("mta-sts.example.net", https.addr),
                          ("mta-sts.example.com", https.addr)],
                   extra=txt_opts(txts) +
                   [f"--txt-record=_mta-sts.example.com,{t}" for t in txts_com]
                   + list(more))


def two_mtas_sts(ternd, dnsmasq, pki, https, txts=("v=STSv1; id=1;",),
                 b_cert=True, mx="mx.example.net", a_over=None, txts_com=(),
                 more_dns=(), a_args=()):
    b_over = {"hostname": "mx.example.net",
              "domains": "example.net,example.com"}
    if b_cert:
        b_over.update({"tls.cert": str(pki / "mx.pem"),
                       "tls.key": str(pki / "mx.key")})
    b = ternd(b_over, users=(BEN, ANN), state="B")
    dns = start_dns(dnsmasq, https, txts, mx, txts_com, more_dns)
    over = {"hostname": "mx.example.org", "domains": "example.org",
            "dns.servers": dns.server, "relay.port": str(b.port),
            "relay.networks": "127.0.0.0/8", "tls.ca_file": str(pki / "ca.pem"),
            "queue.retry_first": "1", "queue.retry_max": "2"}
    over.update(a_over or {})
    a = ternd({k: v for k, v in over.items() if v is not None},
              users=(SENDER,), state="A", args=a_args)
    return a, b, dns


def send(a, rcpt=BEN):
    rep = a.send_raw(SENDER, [rcpt], MSG)
    assert rep.code == 250, rep


def log_has(t, pattern):
    return re.search(pattern, t.log(), re.M)


def wait_log(t, pattern, what, timeout=20):
    return wait_for(lambda: log_has(t, pattern), what, timeout)


# ---------------------------------------------------------------------------
# outcomes
# ---------------------------------------------------------------------------

def test_enforce_matching_mx_delivered(ternd, dnsmasq, pki, policy_server):
    https = policy_server()
    a, b, _ = two_mtas_sts(ternd, dnsmasq, pki, https)
    send(a)
    wait_for(lambda: b.messages(BEN), "delivery to B")
    assert https.hits == 1
    log = a.log()
    assert re.search(r"domain=example\.net event=mta_sts_fetch status=ok id=1 "
                     r"mode=enforce max_age=86400 mx_patterns=1", log), log
    assert re.search(r"mx=mx\.example\.net addr=127\.0\.0\.1:%d event=tls "
                     r"version=TLSv1\.3 \S+ tls_resumed=no verified=yes "
                     r"tls_policy=mta-sts$" % b.port, log, re.M), log
    assert re.search(r"event=delivered to=<ben@example\.net> code=250", log)
    # the cache file: its format version first, the policy as served
    f = a.state_dir / "mta-sts" / "example.net"
    text = f.read_bytes()
    assert text.startswith(b"tern-mta-sts-cache 1\ndomain example.net\nid 1\n"), text
    assert text.endswith(b"\n\n" + GOOD.encode()), text


def test_enforce_mx_not_in_policy_deferred(ternd, dnsmasq, pki, policy_server):
    https = policy_server()
    https.body = GOOD.replace("mx.example.net", "*.mail.example.net").encode()
    a, b, _ = two_mtas_sts(ternd, dnsmasq, pki, https)
    send(a)
    wait_log(a, r"event=deferred to=<ben@example\.net> code=451 enh=4\.7\.5 "
                r"text=\"no MX host of example\.net matches its MTA-STS policy",
             "the deferral")
    assert log_has(a, r"domain=example\.net mx=mx\.example\.net event=mta_sts "
                      r"status=mx_mismatch mode=enforce tls_policy=mta-sts "
                      r"tlsrpt_result=validation-failure action=skipped")
    assert not b.messages(BEN)
    assert len(a.queue_list()) == 1


def test_enforce_bad_certificate_deferred(ternd, dnsmasq, pki, policy_server):
    """B shows its own self-signed certificate: never sent to under enforce."""
    https = policy_server()
    a, b, _ = two_mtas_sts(ternd, dnsmasq, pki, https, b_cert=False)
    send(a)
    wait_log(a, r"event=deferred to=<ben@example\.net> code=451 enh=4\.7\.5",
             "the deferral")
    assert log_has(a, r"event=tls status=failed verified=no tls_policy=mta-sts "
                      r"tlsrpt_result=certificate-not-trusted error=\"[^\"]*"
                      r"certificate verify failed[^\"]*\"$")
    # never in plaintext either: no second session after the TLS failure
    assert not log_has(a, r"event=delivered")
    assert not b.messages(BEN)


def test_testing_bad_certificate_delivered_and_logged(ternd, dnsmasq, pki,
                                                      policy_server):
    https = policy_server()
    https.body = GOOD.replace("enforce", "testing").encode()
    a, b, _ = two_mtas_sts(ternd, dnsmasq, pki, https, b_cert=False)
    send(a)
    wait_for(lambda: b.messages(BEN), "delivery to B")
    assert log_has(a, r"event=tls version=\S+ \S+ tls_resumed=no verified=no "
                      r"verify_error=\"[^\"]*\" tls_policy=mta-sts "
                      r"tlsrpt_result=certificate-not-trusted$")
    assert log_has(a, r"mode=testing max_age=86400")


def test_cached_policy_survives_restart_with_https_down(
        ternd, dnsmasq, pki, policy_server):
    https = policy_server()
    a, b, dns = two_mtas_sts(ternd, dnsmasq, pki, https)
    send(a)
    wait_for(lambda: b.messages(BEN), "first delivery")
    # the policy server goes away, the TXT id changes (so a refresh is
    # tried and fails) and DNS now names an MX the policy does not list
    https.stop()
    assert a.stop() == 0
    dns.stop()
    dns2 = start_dns(dnsmasq, https, txts=("v=STSv1; id=2;",),
                     mx="evil.example.net")
    a.overrides["dns.servers"] = dns2.server
    a.start()
    assert log_has(a, r"event=mta_sts_cache status=loaded policies=1 ")
    send(a)
    wait_log(a, r"domain=example\.net event=mta_sts_fetch status=failed "
                r"tlsrpt_result=sts-policy-fetch-error cached_policy=used",
             "the failed refresh")
    wait_log(a, r"event=deferred to=<ben@example\.net> code=451 enh=4\.7\.5",
             "the deferral under the cached policy")
    assert log_has(a, r"mx=evil\.example\.net event=mta_sts status=mx_mismatch "
                      r"mode=enforce")
    assert len(b.messages(BEN)) == 1


def test_two_txt_records_no_policy(ternd, dnsmasq, pki, policy_server):
    https = policy_server()
    https.body = GOOD.replace("mx.example.net", "nowhere.example.net").encode()
    a, b, _ = two_mtas_sts(ternd, dnsmasq, pki, https,
                    txts=("v=STSv1; id=1;", "v=STSv1; id=2;"))
    send(a)
    wait_for(lambda: b.messages(BEN), "opportunistic delivery")
    assert log_has(a, r"domain=example\.net event=mta_sts_txt "
                      r"status=several_records cached_policy=none")
    assert log_has(a, r"event=tls version=\S+ \S+ tls_resumed=no "
                      r"verified=yes tls_policy=opportunistic$")
    assert https.hits == 0


def fetch_fails(ternd, dnsmasq, pki, https, result, error):
    a, b, _ = two_mtas_sts(ternd, dnsmasq, pki, https)
    send(a)
    wait_for(lambda: b.messages(BEN), "opportunistic delivery", timeout=40)
    assert log_has(a, r"domain=example\.net event=mta_sts_fetch status=failed "
                      r"tlsrpt_result=%s cached_policy=none error=\"[^\"]*%s"
                   % (result, error)), a.log()
    assert log_has(a, r"domain=example\.net event=tls_policy "
                      r"tls_policy=opportunistic tlsrpt_result=%s" % result)
    assert log_has(a, r"verified=yes tls_policy=opportunistic$")
    assert not (a.state_dir / "mta-sts" / "example.net").exists()
    return a, b


def test_policy_too_large(ternd, dnsmasq, pki, policy_server):
    https = policy_server()
    https.body = (GOOD + "x-pad: " + "a" * 70000 + "\r\n").encode()
    fetch_fails(ternd, dnsmasq, pki, https, "sts-policy-fetch-error",
                "larger than 65536")


def test_policy_bad_certificate(ternd, dnsmasq, pki, policy_server):
    https = policy_server(cert="sts-self")
    fetch_fails(ternd, dnsmasq, pki, https, "sts-webpki-invalid",
                "certificate")


def test_policy_wrong_media_type(ternd, dnsmasq, pki, policy_server):
    https = policy_server()
    https.ctype = "text/html"
    fetch_fails(ternd, dnsmasq, pki, https, "sts-policy-fetch-error",
                "media type text/html")


def test_policy_redirect_not_followed(ternd, dnsmasq, pki, policy_server):
    https = policy_server()
    https.status = 301
    fetch_fails(ternd, dnsmasq, pki, https, "sts-policy-fetch-error",
                "HTTP status 301")


def test_policy_malformed(ternd, dnsmasq, pki, policy_server):
    https = policy_server()
    https.body = GOOD.replace("mx.example.net", "mx.*.example.net").encode()
    fetch_fails(ternd, dnsmasq, pki, https, "sts-policy-invalid",
                "mx pattern")


def test_slow_policy_server_cut_off_loop_not_blocked(ternd, dnsmasq, pki,
                                                     policy_server):
    """A server sending a byte every 0.5 s is cut off by the low-speed floor
    (256 octets/s for 5 s), and meanwhile other mail goes on."""
    https = policy_server()
    https.per_byte = 0.5
    a, b, _ = two_mtas_sts(ternd, dnsmasq, pki, https)
    send(a, BEN)
    wait_log(a, r"domain=example\.net event=mta_sts_fetch status=started",
             "the fetch to start")
    t0 = time.monotonic()
    send(a, ANN)
    wait_for(lambda: b.messages(ANN), "delivery to example.com", timeout=10)
    # example.com went while example.net's fetch still ran
    assert not log_has(a, r"event=mta_sts_fetch status=failed")
    assert time.monotonic() - t0 < 5 * SLOW
    wait_log(a, r"domain=example\.net event=mta_sts_fetch status=failed "
                r"tlsrpt_result=sts-policy-fetch-error cached_policy=none "
                r"error=\"Timeout was reached", "the cut-off", timeout=30)
    wait_for(lambda: b.messages(BEN), "opportunistic delivery after it")


def test_sts_disabled_asks_nothing(ternd, dnsmasq, pki, policy_server):
    https = policy_server()
    https.body = GOOD.replace("mx.example.net", "nowhere.example.net").encode()
    a, b, _ = two_mtas_sts(ternd, dnsmasq, pki, https, a_over={"sts.enable": "no"})
    send(a)
    wait_for(lambda: b.messages(BEN), "delivery")
    assert https.hits == 0
    assert not log_has(a, r"mta_sts")
    assert not Path(a.state_dir / "mta-sts").exists()


def test_cache_bounded_least_recently_used_forgotten(ternd, dnsmasq, pki,
                                                     policy_server):
    """sts.cache_entries = 1: the second domain's policy pushes the first
    out, file and all."""
    https = policy_server()
    a, b, _ = two_mtas_sts(ternd, dnsmasq, pki, https,
                           a_over={"sts.cache_entries": "1"},
                           txts_com=("v=STSv1; id=7;",))
    cache = a.state_dir / "mta-sts"
    send(a, BEN)
    wait_for(lambda: b.messages(BEN), "delivery to example.net")
    assert sorted(p.name for p in cache.iterdir()) == ["example.net"]
    send(a, ANN)
    wait_for(lambda: b.messages(ANN), "delivery to example.com")
    wait_log(a, r"domain=example\.net event=mta_sts_cache status=forgotten",
             "the eviction")
    wait_for(lambda: sorted(p.name for p in cache.iterdir()) ==
             ["example.com"], "example.net's file removed")
    assert log_has(a, r"domain=example\.com event=mta_sts_fetch status=ok id=7 ")
    assert https.hits == 2


def test_newer_cache_format_refused(ternd, dnsmasq, pki, policy_server):
    """A cache file a newer tern wrote stops ternd, untouched."""
    https = policy_server()
    a, b, _ = two_mtas_sts(ternd, dnsmasq, pki, https)
    assert a.stop() == 0
    f = a.state_dir / "mta-sts" / "example.net"
    f.write_text("tern-mta-sts-cache 2\nwhatever a later tern writes\n")
    if RUN_AS:
        os.chown(f, RUN_AS[1], RUN_AS[2])
    r = subprocess.run(a.argv(), capture_output=True, timeout=30 * SLOW,
                       cwd=str(a.state_dir), stdin=subprocess.DEVNULL)
    out = (r.stdout + r.stderr).decode(errors="replace")
    assert r.returncode != 0, out
    assert re.search(r"event=startup step=mta_sts error=\"mta-sts/example\.net: "
                     r"format version 2 is newer than this tern's \(1\); run "
                     r"that tern, or remove the file", out), out
    assert f.read_text().startswith("tern-mta-sts-cache 2\n")


def test_enforce_never_resumes_an_opportunistic_session(
        ternd, dnsmasq, pki, policy_server):
    """example.com (no policy) and example.net (enforce) share the MX host
    mx.example.net: the session made for the first, where any certificate
    would do, is not offered under the policy; the policy's own is.  A
    session stays idle for the next message a while (REMOTE_IDLE_SECS):
    the second message to example.net goes once both sessions have QUIT,
    so it makes a new connection and a handshake."""
    https = policy_server()
    a, b, _ = two_mtas_sts(ternd, dnsmasq, pki, https)
    send(a, ANN)
    wait_for(lambda: b.messages(ANN), "delivery to example.com")
    send(a, BEN)
    wait_for(lambda: b.messages(BEN), "first delivery to example.net")
    wait_for(lambda: b.log().count("reason=quit messages=1") >= 2,
             "A's two sessions to QUIT")
    send(a, BEN)
    wait_for(lambda: len(b.messages(BEN)) == 2, "second delivery")
    got = re.findall(r"event=tls version=\S+ \S+ tls_resumed=(yes|no) "
                     r"verified=yes tls_policy=(\S+)$", a.log(), re.M)
    assert got == [("no", "opportunistic"), ("no", "mta-sts"),
                   ("yes", "mta-sts")], got


def test_trust_store_from_tls_ca_path(ternd, dnsmasq, pki, policy_server):
    """tls.ca_path alone (a hashed directory) is the trust store of both the
    policy fetch and the MX verification."""
    https = policy_server()
    a, b, _ = two_mtas_sts(ternd, dnsmasq, pki, https,
                           a_over={"tls.ca_file": None,
                                   "tls.ca_path": str(pki / "capath")})
    assert "tls.ca_file" not in " ".join(a.argv())
    send(a)
    wait_for(lambda: b.messages(BEN), "delivery to B")
    assert log_has(a, r"event=mta_sts_fetch status=ok id=1 mode=enforce")
    assert log_has(a, r"verified=yes tls_policy=mta-sts$")


def no_starttls_peer(ternd, dnsmasq, pki, https):
    """A: as two_mtas_sts, but the MX is a scripted peer that offers no
    STARTTLS (fakepeer.ReplyPeer: every RCPT gets 550, so a message that
    reached it would bounce, not wait)."""
    from fakepeer import ReplyPeer
    peer = ReplyPeer("550 5.1.1 the peer took the envelope in clear text")
    peer.start()
    dns = start_dns(dnsmasq, https)
    a = ternd({"hostname": "mx.example.org", "domains": "example.org",
               "dns.servers": dns.server, "relay.port": str(peer.port),
               "relay.networks": "127.0.0.0/8",
               "tls.ca_file": str(pki / "ca.pem"),
               "queue.retry_first": "3600"}, users=(SENDER,), state="A")
    return a, peer


def test_enforce_without_starttls_deferred(ternd, dnsmasq, pki, policy_server):
    https = policy_server()
    a, peer = no_starttls_peer(ternd, dnsmasq, pki, https)
    try:
        send(a)
        wait_log(a, r"event=deferred to=<ben@example\.net> code=451 "
                    r"enh=4\.7\.4 (?:\S+ )*text=\"[^\"]*TLS is required but the peer "
                    r"does not offer STARTTLS", "the deferral")
        assert log_has(a, r"event=mta_sts status=failed mode=enforce "
                          r"tls_policy=mta-sts verified=no "
                          r"tlsrpt_result=starttls-not-supported$")
        assert peer.rcpts == 0
    finally:
        peer.close()


def test_testing_without_starttls_sent_and_logged(ternd, dnsmasq, pki,
                                                  policy_server):
    https = policy_server()
    https.body = GOOD.replace("enforce", "testing").encode()
    a, peer = no_starttls_peer(ternd, dnsmasq, pki, https)
    try:
        send(a)
        wait_log(a, r"event=bounced to=<ben@example\.net> code=550",
                 "the peer's answer")
        assert peer.rcpts == 1
        assert log_has(a, r"event=mta_sts status=failed mode=testing "
                          r"tls_policy=mta-sts verified=no "
                          r"tlsrpt_result=starttls-not-supported text=")
        assert not log_has(a, r"event=mta_sts status=failed mode=enforce")
    finally:
        peer.close()


def test_stop_aborts_a_fetch_under_way(ternd, dnsmasq, pki, policy_server):
    """SIGTERM while a policy server dribbles: ternd does not wait for the
    fetch's deadline (libcurl's progress callback sees the stop)."""
    https = policy_server()
    https.per_byte = 0.5
    a, b, _ = two_mtas_sts(ternd, dnsmasq, pki, https,
                           a_over={"sts.fetch_timeout": "120"})
    send(a)
    wait_log(a, r"domain=example\.net event=mta_sts_fetch status=started",
             "the fetch to start")
    time.sleep(1)
    t0 = time.monotonic()
    assert a.stop() == 0
    assert time.monotonic() - t0 < 4 * SLOW, time.monotonic() - t0
    assert len(a.queue_env_files()) == 1     # the message waits for the next run


# ---------------------------------------------------------------------------
# TLS-RPT (RFC 8460): failures of the domain as a whole, before any session
# ---------------------------------------------------------------------------

# example.net asks for reports at ann@example.com (B; example.com has no
# MTA-STS, so the report itself is not held up by example.net's policy)
RPT_TXT = "--txt-record=_smtp._tls.example.net,v=TLSRPTv1; rua=mailto:" + ANN


def sts_report(a, b):
    """`tern tlsrpt send --now`, then example.net's JSON report as it
    arrives in ann's mailbox: its one policy of type sts."""
    r = a.tern("tlsrpt", "send", "--now")
    assert r.stdout.decode().strip() == (
        "domains 1, reports mailed 1, posted 0, skipped 0, failed 0"), r.stdout

    def report():
        for d in b.messages(ANN):
            msg = email.message_from_bytes(d.data, policy=email.policy.default)
            if str(msg.get("TLS-Report-Domain", "")) != "example.net":
                continue
            [part] = [p for p in msg.walk() if p.get_content_type() ==
                      "application/tlsrpt+gzip"]
            return json.loads(gzip.decompress(part.get_content()))
        return None
    doc = wait_for(report, "example.net's report at ann@example.com")
    sts = [p for p in doc["policies"]
           if p["policy"]["policy-type"] == "sts"]
    assert len(sts) == 1, doc
    return sts[0]


def check_domain_failure(p, result, reason):
    """p counts one failure of the domain as a whole: result-type result,
    reason in its failure-reason-code, no session (no addresses)."""
    assert p["summary"] == {"total-successful-session-count": 0,
                            "total-failure-session-count": 1}, p
    [fd] = p["failure-details"]
    assert fd["result-type"] == result, fd
    assert fd["failed-session-count"] == 1, fd
    assert reason in fd["failure-reason-code"], fd
    assert "receiving-ip" not in fd and "sending-mta-ip" not in fd, fd


@pytest.mark.parametrize("fault,result,reason", [
    ("cert", "sts-webpki-invalid", "certificate"),
    ("media", "sts-policy-fetch-error", "media type text/html"),
    ("syntax", "sts-policy-invalid", "mx pattern")])
def test_tlsrpt_counts_a_policy_fetch_failure(ternd, dnsmasq, pki,
                                              policy_server, fault, result,
                                              reason):
    """The policy cannot be had (a certificate nobody issued, the wrong
    media type, a malformed policy): the mail goes opportunistically
    (counted as such), and the failure is counted once for example.net's
    sts policy with its result-type."""
    https = policy_server(cert="sts-self" if fault == "cert" else "sts")
    if fault == "media":
        https.ctype = "text/html"
    if fault == "syntax":
        https.body = GOOD.replace("mx.example.net",
                                  "mx.*.example.net").encode()
    a, b, _ = two_mtas_sts(ternd, dnsmasq, pki, https, more_dns=(RPT_TXT,),
                           a_over={"tlsrpt.reports": "yes"})
    send(a)
    wait_for(lambda: b.messages(BEN), "opportunistic delivery", timeout=40)
    assert log_has(a, r"^.*domain=example\.net event=tlsrpt "
                      r"tlsrpt_result=%s$" % result)
    p = sts_report(a, b)
    assert p["policy"] == {"policy-type": "sts",
                           "policy-domain": "example.net"}, p
    check_domain_failure(p, result, reason)


def test_tlsrpt_counts_no_mx_matching_enforce(ternd, dnsmasq, pki,
                                              policy_server):
    """An enforce policy that no MX host matches: the mail waits (one
    attempt: retries are an hour apart), and the report counts one
    validation-failure under that policy, with its policy-strings."""
    https = policy_server()
    https.body = GOOD.replace("mx.example.net", "*.mail.example.net").encode()
    a, b, _ = two_mtas_sts(ternd, dnsmasq, pki, https, more_dns=(RPT_TXT,),
                           a_over={"tlsrpt.reports": "yes",
                                   "queue.retry_first": "3600",
                                   "queue.retry_max": "3600"})
    send(a)
    wait_log(a, r"event=deferred to=<ben@example\.net> code=451 enh=4\.7\.5",
             "the deferral")
    p = sts_report(a, b)
    assert p["policy"] == {
        "policy-type": "sts",
        "policy-string": ["version: STSv1", "mode: enforce",
                          "mx: *.mail.example.net", "max_age: 86400"],
        "policy-domain": "example.net",
        "mx-host": ["*.mail.example.net"]}, p
    check_domain_failure(p, "validation-failure",
                         "no MX host of example.net matches")
    assert not b.messages(BEN)


# ---------------------------------------------------------------------------
# SIGHUP: the trust store, sts.fetch_timeout and sts.enable are live
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ca2(pki):
    """A second CA beside the suite's (the sandbox allowed tls.ca_file's
    directory at start), the policy host's certificate from it, and a
    bundle trusting both."""
    _openssl(pki, "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca2.key",
             "-out", "ca2.pem", "-days", "2", "-subj", "/CN=tern sts CA2",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    _leaf(pki, "sts2", "mta-sts.example.net", signer="ca2")
    (pki / "both.pem").write_bytes((pki / "ca.pem").read_bytes() +
                                   (pki / "ca2.pem").read_bytes())
    for f in ("ca2.pem", "both.pem"):
        os.chmod(pki / f, 0o644)
    return pki


def conf_file(text):
    """tern.conf for A's -c: the keys a test reloads; the rest is -o."""
    d = world_tmpdir("tern-sts-conf-")
    path = d / "tern.conf"
    path.write_text(text)
    os.chmod(path, 0o644)
    return path


def reload_a(a, path, text, expect="result=ok"):
    """Rewrite A's file, SIGHUP, return the reload's result line."""
    tmp = path.with_suffix(".new")
    tmp.write_text(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    n = a.log().count("event=reload result=")
    a.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: a.log().count("event=reload result=") > n,
             "the reload's result")
    last = [ln for ln in a.log().splitlines()
            if "event=reload result=" in ln][-1]
    assert expect in last, last
    return last


def test_reload_trust_store_and_timeout_of_the_fetch(ternd, dnsmasq, ca2,
                                                     policy_server):
    """The policy host's certificate is from CA2.  Under tls.ca_file = the
    suite's CA the fetch fails (sts-webpki-invalid) and the mail goes
    without a policy; a SIGHUP to a bundle of both CAs with
    sts.fetch_timeout = 1: the next fetch is cut at 1 s (a dribbling
    server outlives the old 60 s and the 5 s low-speed floor), and the one
    after is fetched with CA2 and enforced."""
    pki = ca2
    https = policy_server("sts2")
    path = conf_file(f"[tls]\nca_file = {pki / 'ca.pem'}\n"
                     "[sts]\nfetch_timeout = 60\n")
    a, b, _ = two_mtas_sts(ternd, dnsmasq, pki, https,
                           a_over={"tls.ca_file": None},
                           a_args=["-c", str(path)])
    assert "tls.ca_file" not in " ".join(a.argv())
    send(a)
    wait_log(a, r"domain=example\.net event=mta_sts_fetch status=failed "
                r"tlsrpt_result=sts-webpki-invalid", "the refused fetch")
    wait_for(lambda: len(b.messages(BEN)) == 1, "delivery without policy")

    line = reload_a(a, path, f"[tls]\nca_file = {pki / 'both.pem'}\n"
                    "[sts]\nfetch_timeout = 1\n")
    assert "tls.ca_file" in line and "sts.fetch_timeout" in line, line
    assert not log_has(a, r"needs_restart=(tls|sts)\.")

    https.per_byte = 0.5
    send(a)
    wait_for(lambda: a.log().count("event=mta_sts_fetch status=started")
             == 2, "the second fetch")
    t0 = time.monotonic()
    wait_log(a, r"domain=example\.net event=mta_sts_fetch status=failed "
                r"tlsrpt_result=sts-policy-fetch-error cached_policy=none "
                r"error=\"Timeout was reached", "the 1 s deadline")
    assert time.monotonic() - t0 < 4 * SLOW, time.monotonic() - t0
    wait_for(lambda: len(b.messages(BEN)) == 2, "delivery after it")

    https.per_byte = 0
    # the session of the message before stays idle a while for the next
    # (REMOTE_IDLE_SECS) and its destination with it: once it has QUIT,
    # the next message makes a new destination, which asks for the policy
    wait_for(lambda: b.log().count("event=connect ") ==
             b.log().count("event=disconnect "), "A's idle session to QUIT")
    send(a)
    wait_log(a, r"domain=example\.net event=mta_sts_fetch status=ok id=1 "
                r"mode=enforce", "the fetch under CA2")
    wait_for(lambda: len(b.messages(BEN)) == 3, "delivery under enforce")
    assert log_has(a, r"verified=yes tls_policy=mta-sts$")


def test_reload_sts_enable_on_and_off(ternd, dnsmasq, pki, policy_server):
    """sts.enable = no at start: no lookup, no cache.  A SIGHUP turns it on:
    the next delivery fetches and enforces the policy (the cache made
    then).  Another turns it off: no more lookups, the cache stays."""
    https = policy_server()
    path = conf_file("[sts]\nenable = no\n")
    a, b, _ = two_mtas_sts(ternd, dnsmasq, pki, https,
                           a_args=["-c", str(path)])
    send(a)
    wait_for(lambda: len(b.messages(BEN)) == 1, "delivery without MTA-STS")
    assert https.hits == 0 and not log_has(a, r"mta_sts")
    assert not (a.state_dir / "mta-sts").exists()

    line = reload_a(a, path, "[sts]\nenable = yes\n")
    assert "changed=sts.enable" in line, line
    assert log_has(a, r"event=reload step=delivery generation=1 engine=new "
                      r"trust_store=new")
    send(a)
    wait_for(lambda: len(b.messages(BEN)) == 2, "delivery under MTA-STS")
    assert https.hits == 1
    assert log_has(a, r"event=mta_sts_fetch status=ok id=1 mode=enforce")
    assert len(re.findall(r"tls_policy=mta-sts$", a.log(), re.M)) == 1
    assert (a.state_dir / "mta-sts" / "example.net").exists()

    reload_a(a, path, "[sts]\nenable = no\n")
    send(a)
    wait_for(lambda: len(b.messages(BEN)) == 3, "delivery without MTA-STS")
    assert https.hits == 1
    assert len(re.findall(r"tls_policy=mta-sts$", a.log(), re.M)) == 1
    assert (a.state_dir / "mta-sts" / "example.net").exists()
