"""tern doctor (issue 17, item 2; docs/doctor.md): the checks run from the
server against a zone dnsmasq serves on loopback.  One zone is right (every
line ok, exit 0); each other test plants one mistake (MX missing or to a
name without the address, no PTR or one not forward-confirmed, SPF missing,
not covering the address or doubled, a DKIM record of another key, DMARC
missing, a certificate for another name or about to expire, a state_dir
others can write, port 25 closed, the DNS server down) and checks the
status, the line with its fix, and the exit status.  Certificates are made
with openssl: a test CA and leaf certificates it signs."""

import json
import os
import re
import shutil
import socket
import subprocess
import time

import pytest

from conftest import RUN_AS, SLOW, free_port, world_tmpdir

ORG = "example.org"
MX = "mx.example.org"
ADDR = "127.0.0.1"
OPENSSL = "/usr/bin/openssl"
CHECKS = ["dns", "address", "mx", "ptr", "helo", "spf", "dkim", "dmarc",
          "tlsrpt", "mta-sts", "tls", "state_dir", "disk", "queue", "port"]
TLSRPT = "v=TLSRPTv1; rua=mailto:tlsrpt@example.org"
STS = "v=STSv1; id=20261207T000000"


# ---- certificates ------------------------------------------------------------

def openssl(*args):
    subprocess.run([OPENSSL, *args], check=True, capture_output=True,
                   timeout=60 * SLOW)


@pytest.fixture
def certs():
    """make(name, days) -> (cert, key): a P-256 leaf for DNS name `name`,
    signed by a test CA, valid for `days` days; files any uid can read."""
    top = world_tmpdir("tern-doctor-")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "30",
            "-subj", "/CN=tern doctor test CA", "-keyout", f"{top}/ca.key",
            "-out", f"{top}/ca.pem")
    n = [0]

    def make(name, days):
        n[0] += 1
        base = f"{top}/leaf{n[0]}"
        openssl("req", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:prime256v1", "-nodes", "-subj",
                f"/CN={name}", "-keyout", f"{base}.key", "-out",
                f"{base}.csr")
        with open(f"{base}.ext", "w") as f:
            f.write(f"subjectAltName=DNS:{name}\n")
        openssl("x509", "-req", "-in", f"{base}.csr", "-CA", f"{top}/ca.pem",
                "-CAkey", f"{top}/ca.key", "-CAcreateserial", "-days",
                str(days), "-extfile", f"{base}.ext", "-out", f"{base}.pem")
        for p in (f"{base}.pem", f"{base}.key"):
            os.chmod(p, 0o644)
        return f"{base}.pem", f"{base}.key"
    yield make
    shutil.rmtree(top, ignore_errors=True)


# ---- the zone ----------------------------------------------------------------

def txt(name, value):
    """dnsmasq's --txt-record, value cut into strings of 255."""
    chunks = [value[i:i + 255] for i in range(0, len(value), 255)]
    return f"--txt-record={name}," + ",".join(chunks)


def dkim_record(keygen_out, selector):
    m = re.search(rf'^{selector}\._domainkey\.{ORG}\. IN TXT \((.*)\)$',
                  keygen_out, re.M)
    return "".join(re.findall(r'"([^"]*)"', m.group(1)))


def zone(dkim, mx=True, a="host", ptr=None, spf=("v=spf1 ip4:127.0.0.1 -all",),
         dmarc="v=DMARC1; p=reject; rua=mailto:dmarc@example.org",
         tlsrpt=(TLSRPT,), sts=(STS,)):
    """The right zone for example.org on 127.0.0.1, or with one change:
    a="host": MX's A and its PTR (--host-record); "address": the A only.
    ptr: a PTR name for 127.0.0.1 (with a="address")."""
    z = ["--local=/example.org/", "--local=/127.in-addr.arpa/"]
    if mx is True:
        z.append(f"--mx-host={ORG},{MX},10")
    elif mx:
        z.append(f"--mx-host={ORG},{mx},10")
    if a == "host":
        z.append(f"--host-record={MX},{ADDR}")
    else:
        z.append(f"--address=/{MX}/{ADDR}")
    if ptr:
        z.append(f"--ptr-record=1.0.0.127.in-addr.arpa,{ptr}")
    for s in spf:
        z.append(txt(ORG, s))
    if dmarc:
        z.append(txt(f"_dmarc.{ORG}", dmarc))
    for r in tlsrpt:
        z.append(txt(f"_smtp._tls.{ORG}", r))
    for r in sts:
        z.append(txt(f"_mta-sts.{ORG}", r))
    if dkim:
        z.append(txt(f"s1._domainkey.{ORG}", dkim))
    return z


def server(ternd, certs, cert_name=MX, days=90, start=True, over=None):
    """A ternd for example.org as mx.example.org, with a certificate and an
    active DKIM key (selector s1); returns (t, its DKIM record)."""
    cert, key = certs(cert_name, days)
    t = ternd(dict({"hostname": MX, "domains": ORG, "tls.cert": cert,
                    "tls.key": key}, **(over or {})), start=False)
    out = t.tern("dkim", "keygen", ORG, "--selector", "s1").stdout.decode()
    if start:
        t.start()
    return t, dkim_record(out, "s1")


def doctor(t, dns_server, *args, pre=()):
    """tern doctor with t's configuration, dns.servers and the options
    pre: (rc, output)."""
    over = []
    for k, v in t.overrides.items():
        if k not in ("state_dir", "domains"):
            over += ["-o", f"{k}={v}"]
    over += ["-o", f"dns.servers={dns_server}", *pre]
    started = time.monotonic()
    r = t.tern(*over, "doctor", "--address", ADDR, *args, check=False)
    took = time.monotonic() - started
    assert r.returncode in (0, 1, 2), r
    assert took < 30 * SLOW, f"tern doctor took {took:.1f} s"
    return r.returncode, r.stdout.decode()


def line(out, status, check):
    """The lines of one check with that status (at least one)."""
    found = [x for x in out.splitlines()
             if x.startswith(f"{status} {check}: ")]
    assert found, f"no '{status} {check}:' line in:\n{out}"
    return found


def statuses(out):
    return {x.split(" ", 2)[1].rstrip(":"): x.split(" ", 1)[0]
            for x in out.splitlines()}


# ---- a right set-up ----------------------------------------------------------

def test_doctor_all_ok(ternd, dnsmasq, certs):
    t, rec = server(ternd, certs)
    dns = dnsmasq(extra=zone(rec))
    rc, out = doctor(t, dns.server)
    assert rc == 0, out
    lines = out.splitlines()
    assert [x.split(" ", 2)[1].rstrip(":") for x in lines] == CHECKS, out
    assert all(x.startswith("ok ") for x in lines), out
    assert " — " not in out, out        # nothing to fix
    assert f"ok address: {ADDR} (given with --address)" in lines
    assert f"ok mx: {ORG} MX {MX} has A {ADDR}" in lines
    assert f"ok ptr: {ADDR} has PTR {MX}, which resolves back to it" in lines
    assert f"ok helo: hostname {MX} resolves to {ADDR} and is its PTR name" \
        in lines
    assert f"ok spf: {ORG}: SPF passes {ADDR} (ip4:127.0.0.1)" in lines
    assert (f"ok dkim: {ORG} selector s1 (rsa): the record at "
            f"s1._domainkey.{ORG} matches the key on disk (published)") \
        in lines
    assert f"ok dmarc: {ORG}: DMARC record p=reject, aggregate reports " \
        "requested" in lines
    assert f"ok tlsrpt: {ORG}: TLS-RPT record, reports to " \
        f"mailto:tlsrpt@{ORG}" in lines
    assert (f"ok mta-sts: {ORG}: MTA-STS record id=20261207T000000; its "
            "policy file is served by your web server (ternd serves no "
            f"HTTP) at https://mta-sts.{ORG}/.well-known/mta-sts.txt, e.g. "
            f'"version: STSv1\\nmode: testing\\nmx: {MX}\\n'
            'max_age: 604800\\n"') in lines, out
    assert re.search(rf"^ok tls: \S+ \(for listen\.smtp\) covers {MX}, "
                     r"expires \d{4}-\d\d-\d\d \(in (89|90) days\)$", out,
                     re.M), out
    assert f"ok state_dir: {t.state_dir} is owned by uid " in out
    assert "ok queue: the queue is empty" in lines
    assert re.search(rf"^ok port: {ADDR} port {t.port} answers: 220 {MX} ",
                     out, re.M), out
    # --json: the same checks and statuses as objects
    rc, js = doctor(t, dns.server, "--json")
    assert rc == 0
    items = json.loads(js)
    assert [i["check"] for i in items] == CHECKS
    assert all(i["status"] == "ok" and i["fix"] == "" and i["detail"]
               for i in items), items


# ---- one mistake each --------------------------------------------------------

def test_doctor_mx_missing(ternd, dnsmasq, certs):
    t, rec = server(ternd, certs)
    rc, out = doctor(t, dnsmasq(extra=zone(rec, mx=False)).server)
    assert rc == 2, out
    assert line(out, "fail", "mx") == [
        f'fail mx: {ORG} has no MX record — add "{ORG}. IN MX 10 {MX}." '
        f'and "{MX}. IN A {ADDR}"'], out
    assert statuses(out)["spf"] == "ok", out    # the rest is still checked


def test_doctor_mx_without_the_address(ternd, dnsmasq, certs):
    t, rec = server(ternd, certs)
    z = zone(rec, mx="other.example.org")
    z.append("--host-record=other.example.org,127.0.0.9")
    rc, out = doctor(t, dnsmasq(extra=z).server)
    assert rc == 2, out
    assert line(out, "fail", "mx") == [
        f"fail mx: the MX of {ORG} leads to other.example.org (127.0.0.9), "
        f"not to this host's {ADDR} — set \"other.example.org. IN A "
        f"{ADDR}\", or point the MX of {ORG} at a name that has it "
        f"(\"{ORG}. IN MX 10 {MX}.\")"], out


def test_doctor_no_ptr(ternd, dnsmasq, certs):
    t, rec = server(ternd, certs)
    rc, out = doctor(t, dnsmasq(extra=zone(rec, a="address")).server)
    assert rc == 2, out
    assert line(out, "fail", "ptr") == [
        f"fail ptr: {ADDR} has no PTR record — ask whoever holds {ADDR} "
        f"(the hosting provider) to set its PTR (\"1.0.0.127.in-addr.arpa. "
        f"IN PTR {MX}.\")"], out
    assert statuses(out)["mx"] == "ok", out


def test_doctor_ptr_not_forward_confirmed(ternd, dnsmasq, certs):
    t, rec = server(ternd, certs)
    z = zone(rec, a="address", ptr="host9.example.org")
    rc, out = doctor(t, dnsmasq(extra=z).server)
    assert rc == 2, out
    assert line(out, "fail", "ptr") == [
        f"fail ptr: {ADDR} has PTR host9.example.org, which does not "
        f"resolve back to it (no address): not forward-confirmed — add "
        f"\"host9.example.org. IN A {ADDR}\", or have the PTR of {ADDR} "
        f"changed to {MX}"], out
    # and the HELO name is not the PTR name: a warning with both fixes
    assert line(out, "warn", "helo") == [
        f"warn helo: hostname {MX} (the HELO name) resolves to {ADDR} but "
        f"is not its PTR name host9.example.org — set hostname = "
        f"host9.example.org in tern.conf, or have the PTR of {ADDR} changed "
        f"to {MX}"], out


def test_doctor_spf_missing(ternd, dnsmasq, certs):
    t, rec = server(ternd, certs)
    rc, out = doctor(t, dnsmasq(extra=zone(rec, spf=())).server)
    assert rc == 2, out
    assert line(out, "fail", "spf") == [
        f'fail spf: {ORG} has no SPF record — add "{ORG}. IN TXT '
        f'\\"v=spf1 ip4:{ADDR} -all\\""'], out


def test_doctor_spf_not_covering(ternd, dnsmasq, certs):
    t, rec = server(ternd, certs)
    z = zone(rec, spf=("v=spf1 ip4:192.0.2.0/24 a:elsewhere.example.org -all",))
    rc, out = doctor(t, dnsmasq(extra=z).server)
    assert rc == 2, out
    assert line(out, "fail", "spf") == [
        f"fail spf: {ORG}: SPF gives fail for {ADDR} (-all) — add "
        f"ip4:{ADDR} to the SPF record of {ORG}, before its \"all\""], out


def test_doctor_two_spf_records(ternd, dnsmasq, certs):
    t, rec = server(ternd, certs)
    z = zone(rec, spf=("v=spf1 ip4:127.0.0.1 -all", "v=spf1 mx -all"))
    rc, out = doctor(t, dnsmasq(extra=z).server)
    assert rc == 2, out
    assert line(out, "fail", "spf") == [
        f"fail spf: {ORG} has 2 SPF records: receivers see a permerror "
        f"(RFC 7208 4.5) — merge them into one v=spf1 record and delete "
        f"the others"], out


def test_doctor_dkim_record_of_another_key(ternd, dnsmasq, certs):
    t, rec = server(ternd, certs)
    other, wrong = server(ternd, certs, start=False)
    assert wrong != rec
    rc, out = doctor(t, dnsmasq(extra=zone(wrong)).server)
    assert rc == 2, out
    [x] = line(out, "fail", "dkim")
    assert x == (f"fail dkim: {ORG} selector s1 (rsa) signs, but its record "
                 f"is mismatch: the published p= is another key — publish "
                 f"\"s1._domainkey.{ORG}. IN TXT \\\"{rec}\\\"\" (tern dkim "
                 f"list prints it in zone-file form)"), out
    # not published at all
    rc, out = doctor(t, dnsmasq(extra=zone(None)).server)
    assert rc == 2, out
    [x] = line(out, "fail", "dkim")
    assert f"its record is missing: no TXT record at s1._domainkey.{ORG}" \
        in x and rec in x, out


def test_doctor_dmarc_missing(ternd, dnsmasq, certs):
    t, rec = server(ternd, certs)
    rc, out = doctor(t, dnsmasq(extra=zone(rec, dmarc=None)).server)
    assert rc == 1, out                 # a warning: mail still flows
    assert line(out, "warn", "dmarc") == [
        f"warn dmarc: {ORG} has no DMARC record (at _dmarc.{ORG}): large "
        f"receivers expect one — add \"_dmarc.{ORG}. IN TXT \\\"v=DMARC1; "
        f"p=none; rua=mailto:postmaster@{ORG}\\\"\" (then p=quarantine or "
        f"reject once the reports are clean)"], out
    assert [s for s in statuses(out).values() if s != "ok"] == ["warn"], out
    # a record without p= is ignored by receivers: a failure
    rc, out = doctor(t, dnsmasq(extra=zone(rec, dmarc="v=DMARC1; "
                                                     "rua=mailto:d@"
                                                     "example.org")).server)
    assert rc == 2, out
    assert line(out, "fail", "dmarc") == [
        f"fail dmarc: {ORG}'s DMARC record has no p= tag: receivers ignore "
        f"it — give the record at _dmarc.{ORG} a p= of none, quarantine or "
        f"reject"], out


def test_doctor_certificate_for_another_name(ternd, dnsmasq, certs):
    t, rec = server(ternd, certs, cert_name="www.example.org")
    rc, out = doctor(t, dnsmasq(extra=zone(rec)).server)
    assert rc == 2, out
    cert = t.overrides["tls.cert"]
    assert line(out, "fail", "tls") == [
        f"fail tls: {cert} (for listen.smtp) does not cover hostname {MX} — "
        f"get a certificate for {MX} (certbot, or any CA) and set tls.cert "
        f"and tls.key to it"], out


def test_doctor_certificate_expiring_soon(ternd, dnsmasq, certs):
    t, rec = server(ternd, certs, days=3)
    rc, out = doctor(t, dnsmasq(extra=zone(rec)).server)
    assert rc == 1, out
    [x] = line(out, "warn", "tls")
    assert re.fullmatch(
        rf"warn tls: {re.escape(t.overrides['tls.cert'])} \(for listen\.smtp\)"
        rf" covers {MX} but expires in [23] days \(\d{{4}}-\d\d-\d\d\) — renew"
        r" it \(certbot renew, or your CA\) and reload ternd", x), out


def test_doctor_state_dir_writable_by_others(ternd, dnsmasq, certs):
    t, rec = server(ternd, certs)
    os.chmod(t.state_dir, 0o777)
    try:
        rc, out = doctor(t, dnsmasq(extra=zone(rec)).server)
    finally:
        os.chmod(t.state_dir, 0o700)
    assert rc == 2, out
    assert line(out, "fail", "state_dir") == [
        f"fail state_dir: {t.state_dir} has mode 0777, writable by group or "
        f"others: ternd refuses to start — chmod 711 {t.state_dir}"], out


@pytest.mark.root
def test_doctor_state_dir_of_another_owner(ternd, dnsmasq, certs):
    """As root (chown), a state_dir that is not ternd's user's."""
    if RUN_AS is None:
        pytest.fail("root test run without root", pytrace=False)
    t, rec = server(ternd, certs)
    os.chown(t.state_dir, 0, 0)
    try:
        rc, out = doctor(t, dnsmasq(extra=zone(rec)).server)
    finally:
        os.chown(t.state_dir, RUN_AS[1], RUN_AS[2])
    assert rc == 2, out
    assert line(out, "fail", "state_dir") == [
        f"fail state_dir: {t.state_dir} is owned by uid 0, not by ternd's "
        f"user (uid {RUN_AS[1]}): ternd refuses to start — chown "
        f"{RUN_AS[1]} {t.state_dir}"], out


def test_doctor_port_not_reachable(ternd, dnsmasq, certs):
    t, rec = server(ternd, certs, start=False)     # nothing listens
    rc, out = doctor(t, dnsmasq(extra=zone(rec)).server)
    assert rc == 2, out
    assert line(out, "fail", "port") == [
        f"fail port: {ADDR} port {t.port} does not accept connections "
        f"(Connection refused) — start ternd, check that listen.smtp "
        f"(127.0.0.1:{t.port}) covers {ADDR}, and open TCP port {t.port} in "
        f"the firewall"], out
    assert line(out, "warn", "queue")[0].startswith(
        "warn queue: not checked: ternd does not answer on "), out


def test_doctor_queue_older_than_delay_warning(ternd, dnsmasq, certs):
    """A message that cannot leave (its smarthost refuses connections)
    stays queued: ok while it is younger than queue.delay_warning, a
    warning once older."""
    t, rec = server(ternd, certs, over={
        "relay.networks": "127.0.0.0/8",
        "relay.smarthost": f"127.0.0.1:{free_port()}",
        "queue.delay_warning": "2"})
    rep = t.send_raw("claire@example.net", ["bob@remote.example"],
                     b"Subject: stuck\r\n\r\nbody\r\n")
    assert rep.code == 250, rep
    dns = dnsmasq(extra=zone(rec))
    rc, out = doctor(t, dns.server, pre=("-o", "queue.delay_warning=3600"))
    assert rc == 0, out
    [x] = line(out, "ok", "queue")
    assert re.fullmatch(r"ok queue: 1 message queued, the oldest for [0-9] s",
                        x), out
    time.sleep(3)
    rc, out = doctor(t, dns.server)
    assert rc == 1, out
    [x] = line(out, "warn", "queue")
    assert re.fullmatch(r"warn queue: 1 message queued, the oldest for \d+ s "
                        r"\(more than queue.delay_warning, 2 s\) — see why "
                        r"with tern queue list and tern queue show ID", x), out


def test_doctor_dns_server_down(ternd, certs):
    """No DNS server: the first check names it, every DNS check says it
    was not checked, the local checks still run, and it ends quickly."""
    t, rec = server(ternd, certs)
    dead = f"127.0.0.1:{free_port()}"
    rc, out = doctor(t, dead)
    assert rc == 2, out
    [x] = line(out, "fail", "dns")
    assert x.startswith(f"fail dns: the DNS server {dead} does not answer ("), x
    assert x.endswith(" — start the DNS server, or set dns.servers in "
                      "tern.conf to one that answers"), x
    for check in ("mx", "ptr", "helo", "spf", "dkim", "dmarc"):
        [y] = line(out, "fail", check)
        assert f"no DNS answer from {dead} — make the resolver answer, then " \
            "run tern doctor again" in y, out
    st = statuses(out)
    assert st["tls"] == st["state_dir"] == st["port"] == "ok", out
    # --json carries the same, and parses
    rc, js = doctor(t, dead, "--json")
    assert rc == 2
    items = json.loads(js)
    assert {i["check"]: i["status"] for i in items}["dns"] == "fail"
    assert [i for i in items if i["check"] == "dns"][0]["fix"].startswith(
        "start the DNS server")


def test_doctor_dns_server_silent(ternd, certs):
    """A DNS server that takes the queries and never answers (a socket
    nobody reads): the deadline ends the first lookup, and the later DNS
    checks do not wait for it again (one deadline, not one per check)."""
    t, rec = server(ternd, certs)
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sink.bind(("127.0.0.1", 0))
        silent = f"127.0.0.1:{sink.getsockname()[1]}"
        started = time.monotonic()
        rc, out = doctor(t, silent)
        took = time.monotonic() - started
    finally:
        sink.close()
    assert rc == 2, out
    assert line(out, "fail", "dns") == [
        f"fail dns: the DNS server {silent} does not answer (timeout, "
        f"looking up {MX}) — start the DNS server, or set dns.servers in "
        f"tern.conf to one that answers"], out
    assert line(out, "fail", "spf") == [
        f"fail spf: not checked ({ORG}): no DNS answer from {silent} — make "
        f"the resolver answer, then run tern doctor again"], out
    assert took < 12 * SLOW, f"{took:.1f} s: the dead server was waited for " \
        "more than once"
    assert statuses(out)["port"] == "ok", out


def test_doctor_ipv6_address(ternd, dnsmasq, certs):
    """An IPv6 address: AAAA records, the ip6.arpa PTR name (nibbles in
    reverse), an ip6: SPF mechanism.  ::1, so the port check stays on
    loopback (ternd listens on 127.0.0.1 only: refused)."""
    t, rec = server(ternd, certs)
    z = ["--local=/example.org/", "--local=/ip6.arpa/",
         f"--mx-host={ORG},{MX},10", f"--host-record={MX},::1",
         txt(ORG, "v=spf1 ip6:::1 -all")]
    over = []
    for k, v in t.overrides.items():
        if k not in ("state_dir", "domains"):
            over += ["-o", f"{k}={v}"]
    r = t.tern(*over, "-o", f"dns.servers={dnsmasq(extra=z).server}",
               "doctor", "--address", "::1", check=False)
    out = r.stdout.decode()
    assert r.returncode == 2, out
    lines = out.splitlines()
    assert f"ok mx: {ORG} MX {MX} has AAAA ::1" in lines, out
    assert f"ok ptr: ::1 has PTR {MX}, which resolves back to it" in lines, out
    assert f"ok helo: hostname {MX} resolves to ::1 and is its PTR name" \
        in lines, out
    assert f"ok spf: {ORG}: SPF passes ::1 (ip6:::1)" in lines, out
    assert line(out, "fail", "port")[0].startswith(
        f"fail port: ::1 port {t.port} does not accept connections"), out


def test_doctor_usage(ternd):
    t = ternd(start=False)
    r = t.tern("doctor", "--address", "not-an-ip", check=False)
    assert r.returncode == 64 and b"--address" in r.stderr, r
    r = t.tern("doctor", "../../etc", check=False)
    assert r.returncode == 64 and b"not a domain name" in r.stderr, r
    r = t.tern("doctor", "--color", check=False)
    assert r.returncode == 64 and b"unknown option" in r.stderr, r


# ---- TLS-RPT and MTA-STS records (docs/tls-auth.md) --------------------------

def test_doctor_tls_policy_records_to_publish(ternd, dnsmasq, certs):
    """No records: ok lines that print what to publish, the policy file
    included (ternd serves no HTTP); exit 0, they are optional."""
    t, rec = server(ternd, certs)
    dns = dnsmasq(extra=zone(rec, tlsrpt=(), sts=()))
    rc, out = doctor(t, dns.server)
    assert rc == 0, out
    [tl] = line(out, "ok", "tlsrpt")
    assert tl == (f"ok tlsrpt: {ORG} has no TLS-RPT record (optional, RFC "
                  "8460) — to receive reports of TLS failures from other "
                  f'servers, add "_smtp._tls.{ORG}. IN TXT \\"v=TLSRPTv1; '
                  f'rua=mailto:tlsrpt@{ORG}\\""'), tl
    [ms] = line(out, "ok", "mta-sts")
    assert (f"serve at https://mta-sts.{ORG}/.well-known/mta-sts.txt (your "
            "web server: ternd serves no HTTP) the text \"version: "
            f"STSv1\\nmode: testing\\nmx: {MX}\\nmax_age: 604800\\n\"") in ms, ms
    assert re.search(rf'add "_mta-sts\.{ORG}\. IN TXT \\"v=STSv1; '
                     r'id=\d{8}T\d{6}\\""$', ms), ms


def test_doctor_tls_policy_records_broken(ternd, dnsmasq, certs):
    t, rec = server(ternd, certs)
    dns = dnsmasq(extra=zone(rec, tlsrpt=(TLSRPT, TLSRPT + "x"),
                             sts=("v=STSv1; id=",)))
    rc, out = doctor(t, dns.server)
    assert rc == 1, out
    [tl] = line(out, "warn", "tlsrpt")
    assert "has several TLS-RPT records" in tl, tl
    [ms] = line(out, "warn", "mta-sts")
    assert "without a valid id" in ms, ms
    dns.stop()
    dns = dnsmasq(extra=zone(rec, tlsrpt=("v=TLSRPTv1; rua=http://x/",)))
    rc, out = doctor(t, dns.server)
    [tl] = line(out, "warn", "tlsrpt")
    assert "has no usable rua" in tl, tl
