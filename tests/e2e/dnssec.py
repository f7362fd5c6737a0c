"""Signed DNS on loopback for the DANE tests: zones made and signed by the
suite (ldns-keygen, ldns-signzone from ldnsutils), served by nsd, and
unbound as the validating resolver with the suite's own trust anchor, each
on a free 127.0.0.1 port with its own configuration, stopped by PID.

    dns = SignedDNS(workdir)
    dns.zone("dane.test", records, signed=True, tamper={"name": ...})
    dns.zone("plain.test", records, signed=False)
    dns.start()                 # nsd + unbound
    dns.server                  # "127.0.0.1:PORT" for dns.servers
    dns.stop()

A record is a zone-file line relative to the zone ("mx A 127.0.0.1").
tamper maps a record line ("owner TYPE rdata") to the line that replaces it in the
signed file: its RRSIG then no longer matches, so the validating resolver
answers SERVFAIL (bogus) for that name and type only.
"""
import hashlib
import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import _ACTIVE, free_port, log_tail, require

NSD = "/usr/sbin/nsd"
UNBOUND = "/usr/sbin/unbound"
KEYGEN = "/usr/bin/ldns-keygen"
SIGNZONE = "/usr/bin/ldns-signzone"
OPENSSL = "/usr/bin/openssl"


def make_ca_cert(d, names):
    """A CA and a certificate it issued for names (the first as CN), in
    directory d: (chain, key, ca_digest): chain is the end certificate
    then the CA's (what a server sends), ca_digest the hex SHA-256 of the
    CA certificate's DER (TLSA 2 0 1)."""
    d = Path(d)
    ca, cakey = d / "ca.crt", d / "ca.key"
    subprocess.run([OPENSSL, "req", "-x509", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(cakey), "-out", str(ca), "-days", "30",
                    "-subj", "/CN=tern test DANE-TA",
                    "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,keyCertSign"],
                   check=True, capture_output=True)
    key, csr, leaf = d / "leaf.key", d / "leaf.csr", d / "leaf.crt"
    subprocess.run([OPENSSL, "req", "-new", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(key), "-out", str(csr),
                    "-subj", f"/CN={names[0]}"],
                   check=True, capture_output=True)
    ext = d / "leaf.ext"
    ext.write_text("subjectAltName=" +
                   ",".join(f"DNS:{n}" for n in names) + "\n")
    subprocess.run([OPENSSL, "x509", "-req", "-in", str(csr), "-CA", str(ca),
                    "-CAkey", str(cakey), "-CAcreateserial", "-days", "30",
                    "-extfile", str(ext), "-out", str(leaf)],
                   check=True, capture_output=True)
    chain = d / "chain.crt"
    chain.write_text(leaf.read_text() + ca.read_text())
    der = subprocess.run([OPENSSL, "x509", "-in", str(ca), "-outform", "DER"],
                         check=True, capture_output=True).stdout
    os.chmod(key, 0o644)
    return chain, key, hashlib.sha256(der).hexdigest()


def spki_digest(cert):
    """Hex SHA-256 of cert's SubjectPublicKeyInfo (TLSA 3 1 1)."""
    pem = subprocess.run([OPENSSL, "x509", "-in", str(cert), "-noout",
                          "-pubkey"], check=True, capture_output=True).stdout
    der = subprocess.run([OPENSSL, "pkey", "-pubin", "-outform", "DER"],
                         input=pem, check=True, capture_output=True).stdout
    return hashlib.sha256(der).hexdigest()


class _Daemon:
    """A foreground daemon with its log file, stopped by PID."""

    def __init__(self, name, argv, log_path):
        self.name, self.argv, self.log_path = name, argv, Path(log_path)
        self.proc = None

    def start(self):
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=self.logf)
        _ACTIVE.append(self)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self in _ACTIVE:
            _ACTIVE.remove(self)
        if getattr(self, "logf", None):
            self.logf.close()
            self.logf = None


class SignedDNS:
    def __init__(self, workdir):
        for path, pkg in ((NSD, "nsd"), (UNBOUND, "unbound"),
                          (SIGNZONE, "ldnsutils"), (KEYGEN, "ldnsutils")):
            require(path, pkg)
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.zones = []          # (name, file)
        self.anchors = []        # DNSKEY lines
        self.insecure = []
        self.nsd_port = free_port()
        self.port = free_port()
        while self.port == self.nsd_port:
            self.port = free_port()
        self.daemons = []

    @property
    def server(self):
        return f"127.0.0.1:{self.port}"

    def zone(self, name, records, signed=True, tamper=None):
        zf = self.dir / f"{name}.zone"
        lines = [f"$ORIGIN {name}.", "$TTL 300",
                 f"@ IN SOA ns.{name}. hostmaster.{name}. 1 3600 600 86400 300",
                 f"@ IN NS ns.{name}.", "ns IN A 127.0.0.1"]
        lines += list(records)
        zf.write_text("\n".join(lines) + "\n")
        if not signed:
            self.zones.append((name, zf.name))
            self.insecure.append(name)
            return
        k = subprocess.run([KEYGEN, "-a", "ECDSAP256SHA256", "-k", name],
                           cwd=self.dir, check=True, capture_output=True,
                           text=True).stdout.strip()
        subprocess.run([SIGNZONE, zf.name, k], cwd=self.dir, check=True,
                       capture_output=True)
        signed_file = self.dir / f"{name}.zone.signed"
        if tamper:
            self._tamper(signed_file, name, tamper)
        key = (self.dir / f"{k}.key").read_text().split(";")[0].strip()
        self.anchors.append(key)
        self.zones.append((name, signed_file.name))

    @staticmethod
    def _tamper(path, origin, tamper):
        """Replace the rdata of records in the signed file (ldns-signzone
        writes full names, one record a line)."""
        text = path.read_text().splitlines()
        for old, new in tamper.items():
            owner, typ, *rdata = [w for w in old.split() if w != "IN"]
            fqdn = f"{owner}.{origin}."
            _, _, *nrdata = [w for w in new.split() if w != "IN"]
            hits = 0
            for i, line in enumerate(text):
                f = line.split()
                if len(f) >= 5 and f[0] == fqdn and f[3] == typ and \
                        "".join(f[4:]).lower() == "".join(rdata).lower():
                    text[i] = "\t".join(f[:4] + nrdata)
                    hits += 1
            assert hits == 1, f"tamper: {old!r} not found once in {path}"
        path.write_text("\n".join(text) + "\n")

    def _nsd_conf(self):
        d = self.dir
        conf = [
            "server:", "\tip-address: 127.0.0.1", f"\tport: {self.nsd_port}",
            '\tusername: ""', '\tchroot: ""', f'\tzonesdir: "{d}"',
            '\tdatabase: ""', f'\tzonelistfile: "{d}/zone.list"',
            f'\txfrdfile: "{d}/xfrd.state"', f'\txfrdir: "{d}"',
            f'\tpidfile: "{d}/nsd.pid"', "\tserver-count: 1",
            "\tverbosity: 1", "\thide-version: yes",
            "remote-control:", "\tcontrol-enable: no"]
        for name, f in self.zones:
            conf += ["zone:", f"\tname: {name}", f"\tzonefile: {f}"]
        p = d / "nsd.conf"
        p.write_text("\n".join(conf) + "\n")
        return p

    def _unbound_conf(self):
        d = self.dir
        (d / "anchors").write_text("\n".join(self.anchors) + "\n")
        conf = [
            "server:", "\tinterface: 127.0.0.1", f"\tport: {self.port}",
            "\tdo-ip6: no", "\tdo-daemonize: no", '\tusername: ""',
            '\tchroot: ""', f'\tdirectory: "{d}"', '\tpidfile: ""',
            f'\tlogfile: "{d}/unbound.log"', "\tuse-syslog: no",
            "\tverbosity: 1", "\tval-log-level: 2",
            "\taccess-control: 127.0.0.0/8 allow",
            "\tdo-not-query-localhost: no",
            f'\ttrust-anchor-file: "{d}/anchors"',
            '\tmodule-config: "validator iterator"',
            "\tnum-threads: 1", "\tso-reuseport: no",
            "\tmsg-cache-size: 1m", "\trrset-cache-size: 1m",
            # no answer outlives a test's zone (bogus stays bogus)
            "\tcache-max-ttl: 1", "\tcache-max-negative-ttl: 1",
            "\tharden-referral-path: no", "\tqname-minimisation: no",
            # RFC 6761 names are served locally by default: ours are real
            '\tlocal-zone: "test." nodefault']
        for name in self.insecure:
            conf.append(f'\tdomain-insecure: "{name}"')
        conf += ["remote-control:", "\tcontrol-enable: no"]
        for name, _ in self.zones:
            conf += ["stub-zone:", f'\tname: "{name}"',
                     f"\tstub-addr: 127.0.0.1@{self.nsd_port}"]
        p = d / "unbound.conf"
        p.write_text("\n".join(conf) + "\n")
        return p

    def start(self, timeout=10):
        nsd = _Daemon("nsd", [NSD, "-d", "-c", str(self._nsd_conf())],
                      self.dir / "nsd.log")
        ub = _Daemon("unbound", [UNBOUND, "-d", "-c",
                                 str(self._unbound_conf())],
                     self.dir / "unbound.out")
        for dmn in (nsd, ub):
            dmn.start()
            self.daemons.append(dmn)
        deadline = time.monotonic() + timeout
        first = self.zones[0][0]
        while not self._answers(first):
            for dmn in self.daemons:
                if dmn.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"{dmn.name} did not start\n"
                                f"{log_tail(dmn.log_path)}\n"
                                f"{log_tail(self.dir / 'unbound.log')}",
                                pytrace=False)
            time.sleep(0.1)
        return self

    def _answers(self, name):
        """True once unbound answers an SOA query for name with NOERROR."""
        import socket
        import struct
        q = struct.pack(">HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0)
        for label in name.split("."):
            q += bytes([len(label)]) + label.encode()
        q += b"\x00" + struct.pack(">HH", 6, 1)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(0.5)
        try:
            s.sendto(q, ("127.0.0.1", self.port))
            r = s.recv(4096)
            return len(r) > 4 and (r[3] & 0x0F) == 0
        except OSError:
            return False
        finally:
            s.close()

    def stop(self):
        for dmn in self.daemons:
            dmn.stop()
        self.daemons = []
