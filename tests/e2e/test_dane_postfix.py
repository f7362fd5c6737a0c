"""DANE (RFC 7672) between tern and a real Postfix, both ways.

Postfix's smtp client resolves through /etc/resolv.conf on port 53 and
trusts the AD bit only from a validating resolver there, so this module
runs in a world of its own, never touching the machine's resolver or the
suite's other Postfix instances:

  netns    a network namespace held by a sleeping `unshare --net` (its
           loopback brought up); this test thread enters it (setns), so
           every process the tests start (nsd, unbound, both ternd, Postfix)
           and every socket they open lives in it;
  DNS      dnssec.SignedDNS: zones signed by the suite, nsd, and unbound
           validating them on 127.0.0.1:53 of the namespace;
  Postfix  a private instance (test_postfix.Postfix: own config_directory
           and queue_directory, `postfix -c DIR start`) started inside a
           mount namespace of its own (`unshare --mount`) where a private
           resolv.conf ("nameserver 127.0.0.1", "options trust-ad": glibc
           clears the AD bit without it) is bind-mounted on
           /etc/resolv.conf; smtp_dns_support_level = dnssec,
           smtp_tls_security_level = dane;
  B        the receiving ternd (tern.test, a certificate the suite made).

Zones (PF is Postfix's SMTP port, TP is B's):
  pf.test (signed)
    @       MX mx        _PF._tcp.mx      TLSA 3 1 1 <Postfix's key>
    bad     MX mx-bad    _PF._tcp.mx-bad  TLSA 3 1 1 <another key>
  tern.test (signed)
    @       MX mx        _TP._tcp.mx      TLSA 3 1 1 <B's key>

Postfix sends tern.test mail to [mx.tern.test]:TP (transport_maps; a
non-MX next hop whose address lookup is secure gets DANE too).  Everything
is stopped by PID in the finalizers, and the thread goes back to its own
network namespace.
"""
import ctypes
import os
import re
import shutil
import subprocess
import time

import pytest

from conftest import SLOW, maildir_messages, require, wait_for, world_tmpdir
from dnssec import SignedDNS, make_ca_cert, spki_digest
from test_postfix import POSTFIX, Postfix

pytestmark = pytest.mark.root

UNSHARE = "/usr/bin/unshare"
IP = "/usr/sbin/ip"
CLONE_NEWNET = 0x40000000
OTHER_KEY = "cd" * 32
SENDER = "claire@sender.test"
BOB = "bob@pf.test"
BOB_BAD = "bob@bad.pf.test"
BEN = "ben@tern.test"

_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"setns(CLONE_NEWNET): {os.strerror(e)}")


class NetNS:
    """A network namespace of our own, entered by the calling thread."""

    def __init__(self):
        require(UNSHARE, "util-linux")
        require(IP, "iproute2")
        self.orig = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        self.holder = subprocess.Popen([UNSHARE, "--net", "--", "sleep",
                                        "86400"], stdin=subprocess.DEVNULL)
        mine = os.readlink("/proc/thread-self/ns/net")
        path = f"/proc/{self.holder.pid}/ns/net"
        deadline = time.monotonic() + 10 * SLOW
        while not self._unshared(path, mine):
            if self.holder.poll() is not None or time.monotonic() > deadline:
                self.leave()
                pytest.fail("unshare --net did not make a namespace",
                            pytrace=False)
            time.sleep(0.02)
        fd = os.open(path, os.O_RDONLY)
        try:
            _setns(fd)
        finally:
            os.close(fd)
        subprocess.run([IP, "link", "set", "lo", "up"], check=True,
                       capture_output=True)

    @staticmethod
    def _unshared(path, mine):
        try:
            return os.readlink(path) != mine
        except OSError:
            return False

    def leave(self):
        """Back to the thread's own namespace; the holder stopped by PID
        (the namespace goes with the last process in it)."""
        if self.orig is not None:
            _setns(self.orig)
            os.close(self.orig)
            self.orig = None
        if self.holder.poll() is None:
            self.holder.kill()
            self.holder.wait()


class DanePostfix(Postfix):
    """test_postfix's private Postfix with DNSSEC and DANE on, resolving
    through resolv (bind-mounted on /etc/resolv.conf for its processes
    only), tern.test sent to [mx.tern.test]:tern_port."""

    def __init__(self, resolv, tern_port):
        super().__init__()
        mc = self.conf / "main.cf"
        text = mc.read_text()
        for old, new in (
                ("smtp_dns_support_level = disabled",
                 "smtp_dns_support_level = dnssec"),
                ("smtp_host_lookup = native", "smtp_host_lookup = dns"),
                ("smtp_tls_security_level = may",
                 "smtp_tls_security_level = dane")):
            assert text.count(old) == 1, old
            text = text.replace(old, new)
        (self.conf / "transport").write_text(
            f"tern.test smtp:[mx.tern.test]:{tern_port}\n")
        text += (f"transport_maps = texthash:{self.conf}/transport\n"
                 # the root zone has no trust anchor here: no probe
                 "dnssec_probe =\n")
        mc.write_text(text)
        self.resolv = resolv

    def postfix(self, *args, check=True, timeout=60):
        if args[:1] != ("start",):
            return super().postfix(*args, check=check, timeout=timeout)
        # the master and every process it starts see our resolv.conf
        cmd = [UNSHARE, "--mount", "--propagation", "private", "--",
               "/bin/sh", "-c", 'mount --bind "$0" /etc/resolv.conf && '
               'exec "$@"', str(self.resolv), POSTFIX, "-c", str(self.conf),
               *args]
        r = subprocess.run(cmd, capture_output=True, text=True,
                           timeout=timeout, stdin=subprocess.DEVNULL)
        if check:
            assert r.returncode == 0, (f"{cmd} -> {r.returncode}\n"
                                       f"{r.stdout}\n{r.stderr}")
        return r


@pytest.fixture(scope="module")
def netns():
    ns = NetNS()
    yield ns
    ns.leave()


@pytest.fixture(scope="module")
def world(netns, ternd_module):
    """(dns, postfix, B) in the namespace."""
    d = world_tmpdir("tern-danepf-")    # B reads its key as the test user
    cert, key, _ = make_ca_cert(d, ["mx.tern.test"])
    b = ternd_module({"hostname": "mx.tern.test", "domains": "tern.test",
                      "tls.cert": str(cert), "tls.key": str(key)},
                     users=(BEN,), state="B", start=False)
    resolv = d / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\noptions trust-ad\n")
    os.chmod(resolv, 0o644)
    pf = DanePostfix(resolv, b.port)
    pfkey = spki_digest(pf.conf / "cert.pem")
    dns = SignedDNS(d / "dns")
    dns.port = 53                    # where Postfix's resolver asks
    dns.zone("pf.test", [
        "@ IN MX 10 mx", "mx IN A 127.0.0.1",
        f"_{pf.port}._tcp.mx IN TLSA 3 1 1 {pfkey}",
        "bad IN MX 10 mx-bad", "mx-bad IN A 127.0.0.1",
        f"_{pf.port}._tcp.mx-bad IN TLSA 3 1 1 {OTHER_KEY}"])
    dns.zone("tern.test", [
        "@ IN MX 10 mx", "mx IN A 127.0.0.1",
        f"_{b.port}._tcp.mx IN TLSA 3 1 1 {spki_digest(cert)}"])
    dns.start()
    try:
        pf.start()
        b.start()
    except BaseException:
        pf.stop()
        dns.stop()
        raise
    yield dns, pf, b
    pf.stop()
    dns.stop()
    shutil.rmtree(pf.dir, ignore_errors=True)
    shutil.rmtree(d, ignore_errors=True)


def sender(ternd, world):
    _, pf, _ = world
    return ternd({"hostname": "mx.sender.test", "domains": "sender.test",
                  "relay.networks": "127.0.0.0/8",
                  "dns.servers": "127.0.0.1:53", "dns.dnssec": "yes",
                  "relay.port": str(pf.port), "queue.retry_first": "60",
                  "queue.retry_max": "60"}, users=())


def msg(tag, to):
    return (f"From: <{SENDER}>\r\nTo: <{to}>\r\nSubject: {tag}\r\n"
            f"Message-ID: <{tag}@sender.test>\r\n\r\nDANE with Postfix, "
            f"{tag}.\r\n").encode()


def log_line(text, pattern):
    for line in text.splitlines():
        if re.search(pattern, line):
            return line
    return None


# ---------------------------------------------------------------------------

def test_tern_to_postfix_under_dane(ternd, world):
    _, pf, _ = world
    a = sender(ternd, world)
    rep = a.send_raw(SENDER, [BOB], msg("t2p", BOB))
    assert rep.code == 250, rep
    [path] = wait_for(lambda: pf.maildir(), "the message in bob's Maildir "
                      "under Postfix", timeout=30)
    assert b"Subject: t2p" in path.read_bytes()
    line = wait_for(lambda: log_line(a.log(), r"event=delivered "
                                     r"to=<bob@pf\.test>"),
                    "tern's delivered line")
    assert "verified=yes tls_policy=dane" in line, line
    tls = log_line(a.log(), r"mx=mx\.pf\.test .*event=tls version=")
    assert "verified=yes tls_policy=dane dane=dane-ee" in tls, tls


def test_tern_to_postfix_tlsa_mismatch_stays_queued(ternd, world):
    _, pf, _ = world
    a = sender(ternd, world)
    rep = a.send_raw(SENDER, [BOB_BAD], msg("t2p-bad", BOB_BAD))
    assert rep.code == 250, rep

    def attempted():
        ms = a.queue_list()
        if len(ms) == 1 and ms[0]["recipients"][0].get("attempts", 0) >= 1:
            return ms[0]
        return None
    m = wait_for(attempted, "a failed attempt", timeout=30)
    out = a.tern("queue", "show", m["id"]).stdout.decode()
    assert "451 4.7.5" in out and "[tls_policy=dane verified=no]" in out, out
    line = log_line(a.log(), r"mx=mx-bad\.pf\.test .*event=tls "
                    r"status=failed")
    assert "verified=no tls_policy=dane tlsrpt_result=validation-failure" \
        in line, line
    assert "bob@bad.pf.test" not in pf.log()


def test_postfix_to_tern_under_dane(world):
    _, pf, b = world
    with pf.smtp() as s:
        assert s.sendmail("someone@pf.test", [BEN],
                          msg("p2t", BEN)) == {}
    [m] = wait_for(lambda: maildir_messages(b.state_dir, BEN),
                   "the message in ben's Maildir under tern", timeout=30)
    assert b"Subject: p2t" in m.data
    sent = wait_for(lambda: log_line(pf.log(), r"to=<ben@tern\.test>.*"
                                     r"status=sent"),
                    "status=sent in Postfix's log")
    assert f"relay=mx.tern.test[127.0.0.1]:{b.port}" in sent, sent
    tls = log_line(pf.log(), r"Verified TLS connection "
                   r"established to mx\.tern\.test\[127\.0\.0\.1\]:%d"
                   % b.port)
    assert tls is not None, pf.log()[-3000:]
    # DANE, not a CA: Postfix was given no CA, only the TLSA record
    assert re.search(r"with ESMTPS", m.data.decode(errors="replace")), \
        m.data[:500]
