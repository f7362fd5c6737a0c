"""
ACME (RFC 8555) end to end: ternd orders its own certificate from Pebble,
Let's Encrypt's test server (Debian package pebble), started here on
loopback with its own configuration and CA.  Pebble really validates
HTTP-01 (PEBBLE_VA_ALWAYS_VALID unset): its validator resolves the domain
through the suite's dnsmasq (127.0.0.1) and asks the port its httpPort
names, ternd's acme.http listener or, in webroot mode, a small web server
of this file serving acme.webroot.
"""

import http.client
import http.server
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import (RUN_AS, free_port, require, stop_own_server,
                      submit_ternd, wait_port, world_tmpdir)

DOMAIN = "mail.acme.test"
BLOCKED = "blocked.acme.test"


def _openssl(cwd, *args):
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True)
    assert r.returncode == 0, f"openssl {' '.join(args)}: {r.stderr!r}"


EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]


@pytest.fixture(scope="module")
def pki():
    """A CA and the certificate of Pebble's own HTTPS listener (127.0.0.1),
    which ternd trusts through tls.ca_file."""
    d = world_tmpdir("tern-acme-pki-")
    _openssl(d, "req", "-x509", *EC, "-keyout", "ca.key", "-out", "ca.pem",
             "-days", "2", "-subj", "/CN=tern acme test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    (d / "leaf.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "basicConstraints=critical,CA:FALSE\n"
        "extendedKeyUsage=serverAuth\n")
    _openssl(d, "req", *EC, "-keyout", "pebble.key", "-out", "pebble.csr",
             "-subj", "/CN=localhost")
    _openssl(d, "x509", "-req", "-in", "pebble.csr", "-CA", "ca.pem",
             "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
             "-extfile", "leaf.ext", "-out", "pebble.pem")
    os.chmod(d / "ca.pem", 0o644)
    yield d
    shutil.rmtree(d, ignore_errors=True)


class Pebble:
    name = "pebble"

    def __init__(self, pki, log_dir, http_port, dns_server):
        self.bin = require("pebble", "pebble")
        self.port = free_port()
        self.mport = free_port()
        self.dir = Path(log_dir)
        self.log_path = self.dir / f"pebble-{self.port}.log"
        conf = {"pebble": {
            "listenAddress": f"127.0.0.1:{self.port}",
            "managementListenAddress": f"127.0.0.1:{self.mport}",
            "certificate": str(pki / "pebble.pem"),
            "privateKey": str(pki / "pebble.key"),
            "httpPort": http_port,
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
            "domainBlocklist": [BLOCKED],
        }}
        self.conf_path = self.dir / f"pebble-{self.port}.json"
        self.conf_path.write_text(json.dumps(conf))
        self.argv = [self.bin, "-config", str(self.conf_path),
                     "-dnsserver", dns_server, "-strict=false"]
        self.pki = pki
        self.proc = None

    @property
    def directory(self):
        return f"https://127.0.0.1:{self.port}/dir"

    def start(self, timeout=20):
        env = dict(os.environ)
        env.pop("PEBBLE_VA_ALWAYS_VALID", None)
        # no sleep before validation; every nonce good (the unit tests
        # cover badNonce), so a run never fails by chance
        env.update({"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"})
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=self.logf,
                                     env=env, start_new_session=True)
        wait_port(self.port, timeout, self.proc, "pebble").close()
        wait_port(self.mport, timeout, self.proc, "pebble").close()
        return self

    def root(self):
        """Pebble's issuing root (made afresh at each start), PEM."""
        ctx = ssl.create_default_context(cafile=str(self.pki / "ca.pem"))
        url = f"https://127.0.0.1:{self.mport}/roots/0"
        with urllib.request.urlopen(url, context=ctx, timeout=10) as r:
            return r.read().decode()

    def stop(self):
        stop_own_server(self.proc, 15, 10)
        self.logf.close()


@pytest.fixture
def pebble(pki, tmp_path):
    started = []

    def make(http_port, dns_server):
        p = Pebble(pki, tmp_path, http_port, dns_server).start()
        started.append(p)
        return p
    yield make
    for p in started:
        p.stop()


def acme_ternd(ternd, pki, directory, over=None, pair=None):
    """A ternd with implicit TLS on (t.subs_port) and ACME on; tls.cert
    and tls.key in STATE/live/.  pair: (cert PEM, key PEM) put there first."""
    o = {"acme.directory": directory, "acme.domains": DOMAIN,
         "acme.email": "postmaster@acme.test",
         "tls.ca_file": str(pki / "ca.pem")}
    o.update(over or {})
    t = submit_ternd(ternd, o, implicit=True, start=False)
    live = t.state_dir / "live"
    live.mkdir()
    if RUN_AS:
        os.chown(live, RUN_AS[1], RUN_AS[2])
    t.overrides["tls.cert"] = str(live / "cert.pem")
    t.overrides["tls.key"] = str(live / "key.pem")
    if pair is not None:
        for name, data in zip(("cert.pem", "key.pem"), pair):
            (live / name).write_text(data)
            if RUN_AS:
                os.chown(live / name, RUN_AS[1], RUN_AS[2])
    t.live = live
    return t


def self_signed(tmp, days):
    """A pair for DOMAIN of our own, valid days."""
    _openssl(tmp, "req", "-x509", *EC, "-keyout", "old.key", "-out",
             "old.pem", "-days", str(days), "-subj", f"/CN={DOMAIN}",
             "-addext", f"subjectAltName=DNS:{DOMAIN}")
    return ((tmp / "old.pem").read_text(), (tmp / "old.key").read_text())


def wait_log(t, pattern, timeout=60, count=1):
    deadline = time.monotonic() + timeout
    while True:
        found = re.findall(pattern, t.log())
        if len(found) >= count:
            return found
        assert time.monotonic() < deadline, \
            f"no {pattern!r} x{count} in the log:\n{t.log()[-4000:]}"
        time.sleep(0.2)


def served_cert(t, cafile):
    """The certificate on the implicit-TLS port, verified for DOMAIN
    against cafile (raises on a failed verification)."""
    ctx = ssl.create_default_context(cafile=cafile)
    with socket.create_connection(("127.0.0.1", t.subs_port), 10) as s:
        with ctx.wrap_socket(s, server_hostname=DOMAIN) as ts:
            return ts.getpeercert(binary_form=True)


def pebble_root_file(pebble_srv, tmp_path):
    p = tmp_path / "pebble-root.pem"
    p.write_text(pebble_srv.root())
    return str(p)


def http_get(port, path, method="GET"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request(method, path, body=b"x" if method == "POST" else None)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, body


# ---------------------------------------------------------------------------

def test_issued_at_start_over_http01(ternd, dnsmasq, pebble, pki, tmp_path):
    """No pair yet: ternd serves the self-signed one, orders from Pebble,
    answers HTTP-01 on acme.http, writes the pair and loads it live: the
    implicit-TLS port then presents Pebble's chain for the domain."""
    dns = dnsmasq(hosts=[(DOMAIN, "127.0.0.1")])
    http_port = free_port()
    p = pebble(http_port, dns.server)
    t = acme_ternd(ternd, pki, p.directory,
                   {"acme.http": f"127.0.0.1:{http_port}"})
    t.start()
    wait_log(t, r"event=acme result=issued domains=mail\.acme\.test "
                r"not_after=\d{4}-")
    root = pebble_root_file(p, tmp_path)
    served_cert(t, root)        # verified against Pebble's root, for DOMAIN
    on_disk = ssl.PEM_cert_to_DER_cert((t.live / "cert.pem").read_text())
    assert served_cert(t, root) == on_disk
    assert oct((t.live / "key.pem").stat().st_mode & 0o777) == "0o600"
    acme_dir = t.state_dir / "acme"
    assert oct(acme_dir.stat().st_mode & 0o777) == "0o700"
    assert (acme_dir / "account.key").exists()
    assert (acme_dir / "account.url").read_text().startswith("https://")
    # the challenge listener: nothing but a live token is answered
    assert http_get(http_port, "/")[0] == 404
    assert http_get(http_port, "/.well-known/acme-challenge/nope")[0] == 404
    assert http_get(http_port, "/metrics")[0] == 404
    assert http_get(http_port, "/.well-known/acme-challenge/x",
                    "POST")[0] in (404, 413)
    assert "result=error" not in t.log()
    # tern doctor shows the last order (STATE/acme/last)
    acme_opts = []
    for k in ("acme.directory", "acme.domains", "acme.http", "tls.cert",
              "tls.key", "listen.submissions"):
        acme_opts += ["-o", f"{k}={t.overrides[k]}"]
    r = t.tern(*acme_opts, "doctor", "--address", "127.0.0.1", check=False,
               timeout=120)
    out = r.stdout.decode()
    assert re.search(r"ok acme: last order \d{4}-\d\d-\d\d [\d:]+ UTC: "
                     r"result=issued domains=mail\.acme\.test not_after=\d+",
                     out), out


def test_renewed_within_renew_before_with_a_new_key(ternd, dnsmasq, pebble,
                                                     pki, tmp_path):
    """A pair of ours that expires in 10 days (renew_before 30d): ternd
    orders at start, and the new certificate has a new key."""
    dns = dnsmasq(hosts=[(DOMAIN, "127.0.0.1")])
    http_port = free_port()
    p = pebble(http_port, dns.server)
    old_cert, old_key = self_signed(tmp_path, 10)
    t = acme_ternd(ternd, pki, p.directory,
                   {"acme.http": f"127.0.0.1:{http_port}"},
                   pair=(old_cert, old_key))
    t.start()
    # served meanwhile: the old pair
    line = wait_log(t, r"event=acme result=issued [^\n]*")[0]
    assert 'note="expires in' in line
    new_key = (t.live / "key.pem").read_text()
    assert new_key != old_key
    assert "BEGIN PRIVATE KEY" in new_key
    served_cert(t, pebble_root_file(p, tmp_path))
    # a fresh pair is left alone: SIGHUP checks again, no new order
    t.proc.send_signal(1)
    wait_log(t, r"event=reload result=ok")
    time.sleep(2)
    assert len(re.findall(r"event=acme result=issued", t.log())) == 1
    assert (t.live / "key.pem").read_text() == new_key


def test_not_renewed_while_fresh(ternd, dnsmasq, pebble, pki, tmp_path):
    """A pair of ours valid 90 days (renew_before 30d): no order at all."""
    dns = dnsmasq(hosts=[(DOMAIN, "127.0.0.1")])
    http_port = free_port()
    p = pebble(http_port, dns.server)
    old_cert, old_key = self_signed(tmp_path, 90)
    t = acme_ternd(ternd, pki, p.directory,
                   {"acme.http": f"127.0.0.1:{http_port}",
                    "log.level": "debug"}, pair=(old_cert, old_key))
    t.start()
    wait_log(t, r"event=acme result=fresh not_after=")
    assert "result=issued" not in t.log()
    assert (t.live / "key.pem").read_text() == old_key
    assert not (t.state_dir / "acme").exists()     # no account was needed


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


def test_webroot(ternd, dnsmasq, pebble, pki, tmp_path):
    """acme.webroot: the token files are written for a web server (here
    Python's, serving the directory on Pebble's httpPort) and removed."""
    dns = dnsmasq(hosts=[(DOMAIN, "127.0.0.1")])
    webroot = world_tmpdir("tern-acme-webroot-")
    os.chmod(webroot, 0o755)
    if RUN_AS:
        os.chown(webroot, RUN_AS[1], RUN_AS[2])
    handler = lambda *a, **kw: _Quiet(*a, directory=str(webroot), **kw)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    try:
        p = pebble(srv.server_address[1], dns.server)
        t = acme_ternd(ternd, pki, p.directory,
                       {"acme.webroot": str(webroot)})
        t.start()
        wait_log(t, r"event=acme result=issued domains=mail\.acme\.test")
        served_cert(t, pebble_root_file(p, tmp_path))
        chal = webroot / ".well-known" / "acme-challenge"
        assert chal.is_dir()
        assert list(chal.iterdir()) == []       # every token removed
    finally:
        srv.shutdown()
        srv.server_close()
        shutil.rmtree(webroot, ignore_errors=True)


def test_server_down_retried_with_backoff_old_pair_kept(ternd, pki,
                                                        tmp_path):
    """Nothing listens at acme.directory: each failure is logged once with
    the wait, doubled each time; the old pair stays on disk and served."""
    old_cert, old_key = self_signed(tmp_path, 5)
    dead = f"https://127.0.0.1:{free_port()}/dir"
    t = acme_ternd(ternd, pki, dead,
                   {"acme.http": f"127.0.0.1:{free_port()}",
                    "acme.retry_first": "1s"}, pair=(old_cert, old_key))
    t.start()
    lines = wait_log(t, r"event=acme result=error [^\n]*", timeout=30,
                     count=3)
    waits = [int(re.search(r"retry_in=(\d+)", l).group(1)) for l in lines]
    assert waits[:3] == [1, 2, 4], lines
    assert all('error="directory: ' in l for l in lines), lines
    assert (t.live / "cert.pem").read_text() == old_cert
    assert (t.live / "key.pem").read_text() == old_key
    cafile = tmp_path / "old-ca.pem"
    cafile.write_text(old_cert)
    served_cert(t, str(cafile))                 # still the old pair


def test_rejected_identifier_logged_no_crash(ternd, dnsmasq, pebble, pki):
    """Pebble refuses the domain (its domainBlocklist): the refusal is
    logged as rejected with Pebble's problem, and ternd runs on."""
    dns = dnsmasq(hosts=[(BLOCKED, "127.0.0.1")])
    http_port = free_port()
    p = pebble(http_port, dns.server)
    t = acme_ternd(ternd, pki, p.directory,
                   {"acme.http": f"127.0.0.1:{http_port}",
                    "acme.domains": BLOCKED})
    t.start()
    line = wait_log(t, r"event=acme result=rejected [^\n]*")[0]
    assert "newOrder: HTTP 400" in line and "rejectedIdentifier" in line
    assert "retry_in=600" in line
    with t.client() as c:                       # still serving mail
        c.ehlo()


def test_failed_validation_logged(ternd, dnsmasq, pebble, pki):
    """The domain resolves to an address where nothing answers HTTP-01:
    Pebble marks the authorization invalid; logged as rejected."""
    dns = dnsmasq(hosts=[(DOMAIN, "127.0.0.1")])
    p = pebble(free_port(), dns.server)          # nobody on that port
    t = acme_ternd(ternd, pki, p.directory,
                   {"acme.http": f"127.0.0.1:{free_port()}"})
    t.start()
    line = wait_log(t, r"event=acme result=rejected [^\n]*")[0]
    assert "not validated" in line, line


def test_certbot_deploy_hook(ternd, pki, tmp_path):
    """contrib/acme/certbot-deploy-hook.sh, as certbot runs it: the new
    pair is copied over tls.cert/tls.key and ternd reloaded, so the port
    presents it."""
    old_cert, old_key = self_signed(tmp_path, 30)
    t = submit_ternd(ternd, {}, implicit=True, start=False)
    live = t.state_dir / "live"
    live.mkdir()
    for name, data in (("cert.pem", old_cert), ("key.pem", old_key)):
        (live / name).write_text(data)
    if RUN_AS:
        for p in (live, live / "cert.pem", live / "key.pem"):
            os.chown(p, RUN_AS[1], RUN_AS[2])
    t.overrides["tls.cert"] = str(live / "cert.pem")
    t.overrides["tls.key"] = str(live / "key.pem")
    t.start()
    lineage = tmp_path / "lineage"
    lineage.mkdir()
    _openssl(lineage, "req", "-x509", *EC, "-keyout", "privkey.pem", "-out",
             "fullchain.pem", "-days", "60", "-subj", f"/CN={DOMAIN}",
             "-addext", f"subjectAltName=DNS:{DOMAIN}")
    hook = Path(__file__).resolve().parents[2] / "contrib" / "acme" / \
        "certbot-deploy-hook.sh"
    env = dict(os.environ, RENEWED_LINEAGE=str(lineage),
               TERN_CERT=str(live / "cert.pem"),
               TERN_KEY=str(live / "key.pem"),
               TERN_GROUP=str(RUN_AS[2] if RUN_AS else os.getgid()),
               TERN_RELOAD=f"kill -HUP {t.proc.pid}")
    r = subprocess.run([str(hook)], env=env, capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    wait_log(t, r"event=reload result=ok")
    new = ssl.PEM_cert_to_DER_cert((lineage / "fullchain.pem").read_text())
    assert served_cert(t, str(lineage / "fullchain.pem")) == new
    # a key that is not the certificate's: refused, nothing replaced
    (lineage / "privkey.pem").write_text(old_key)
    r = subprocess.run([str(hook)], env=env, capture_output=True, timeout=30)
    assert r.returncode == 1 and b"is not the key of" in r.stderr
    assert (live / "key.pem").read_text() != old_key
