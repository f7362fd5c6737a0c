"""DKIM signing inside ternd (issue 13, item 1; docs/mailauth.md): the mail
tern originates (authenticated submission, sendmail, its own DSNs) is
signed with the active keys of its From domain, and dkimpy, an independent
verifier, checks every signature against the record `tern dkim keygen`
printed: RSA, Ed25519, both (dual signing), in the Maildir and as a peer
MTA received it.  Mail received on the MX port is never signed; an
inactive key never signs until `tern dkim activate`; `tern dkim check`
compares the key on disk with what a DNS server (dnsmasq) publishes.
OpenDKIM's opendkim-testmsg verifies one signature too, with its DNS
answered by a dnsmasq inside a user, mount and network namespace."""

import os
import re
import shutil
import signal
import smtplib
import subprocess
import time

import pytest

from conftest import (BEN, CLAIRE, DNSMASQ, PASSWORD, SLOW, maildir_files,
                      require, submit_ternd, tls_client_context, two_mtas,
                      wait_for, world_tmpdir)

import dkim

ORG = "example.org"


# ---- helpers ---------------------------------------------------------------

def records(out):
    """{selector._domainkey.domain: joined TXT value} of keygen/list output."""
    found = {}
    for m in re.finditer(r'^(\S+)\. IN TXT \((.*)\)$', out, re.M):
        found[m.group(1)] = "".join(re.findall(r'"([^"]*)"', m.group(2)))
    return found


def strings(out, name):
    """The TXT strings of name as keygen printed them (each <= 255)."""
    m = re.search(rf'^{re.escape(name)}\. IN TXT \((.*)\)$', out, re.M)
    return re.findall(r'"([^"]*)"', m.group(1))


def keygen(t, domain, selector, alg="rsa"):
    r = t.tern("dkim", "keygen", domain, "--selector", selector,
               "--algorithm", alg)
    return r.stdout.decode()


def zone_of(*outs):
    z = {}
    for o in outs:
        z.update(records(o))
    return z


def dnsfunc(zone):
    def f(name, timeout=5):
        n = name.decode().rstrip(".").lower()
        return zone.get(n, "").encode() or None
    return f


def signatures(raw):
    """The DKIM-Signature fields of raw's header, unfolded, top first, as
    {tag: value} dicts."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode()
    out = []
    for f in re.split(r"\r\n(?![ \t])", head):
        if f.lower().startswith("dkim-signature:"):
            v = re.sub(r"\s+", "", f.split(":", 1)[1])
            out.append(dict(kv.split("=", 1) for kv in v.split(";") if kv))
    return out


def verify_all(raw, zone, n):
    """dkimpy verifies each of the n signatures of raw."""
    sigs = signatures(raw)
    assert len(sigs) == n, sigs
    d = dkim.DKIM(raw)
    for i in range(n):
        assert d.verify(idx=i, dnsfunc=dnsfunc(zone)), \
            f"dkimpy: signature {i} ({sigs[i]}) fails: {raw[:2000]!r}"
    return sigs


def message(tag, to="ben@example.org", frm=CLAIRE):
    return (f"From: Claire <{frm}>\r\nTo: <{to}>\r\n"
            f"Subject: {tag}\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n"
            f"Hello,  this is {tag}.\r\n\r\n.leading dot\r\n").encode()


def submit(t, rcpts, content, sender=CLAIRE, options=()):
    with smtplib.SMTP("127.0.0.1", t.sub_port, local_hostname="laptop.test",
                      timeout=10 * SLOW) as s:
        s.starttls(context=tls_client_context())
        s.ehlo()
        s.login(CLAIRE, PASSWORD)
        assert s.sendmail(sender, rcpts, content, rcpt_options=list(options)) == {}


def newest(t, rcpt, n=1):
    """The newest of at least n messages of rcpt (by mtime: Maildir names
    do not sort by time as strings, their microseconds vary in width)."""
    files = wait_for(lambda: len(maildir_files(t.state_dir, rcpt)) >= n
                     and maildir_files(t.state_dir, rcpt), f"mail for {rcpt}")
    return max(files, key=lambda p: p.stat().st_mtime_ns).read_bytes()


def signer(ternd, keys, over=None):
    """A submission ternd whose STATE/dkim holds keys [(domain, selector,
    alg)] before it starts; returns (t, zone)."""
    t = submit_ternd(ternd, over, start=False)
    outs = [keygen(t, d, s, a) for d, s, a in keys]
    t.start()
    return t, zone_of(*outs)


# ---- what is signed --------------------------------------------------------

def test_submission_signed_rsa(ternd):
    t, zone = signer(ternd, [(ORG, "s1", "rsa")])
    submit(t, ["ben@example.org"], message("rsa"))
    raw = newest(t, "ben@example.org")
    [s] = verify_all(raw, zone, 1)
    assert (s["a"], s["d"], s["s"], s["c"]) == \
        ("rsa-sha256", ORG, "s1", "relaxed/relaxed")
    # t= now, x= a week later (dkim.expire's default)
    assert abs(int(s["t"]) - time.time()) < 60 * SLOW
    assert int(s["x"]) - int(s["t"]) == 7 * 86400
    h = [n.lower() for n in s["h"].split(":")]
    # over-signed From, Subject and Date (one more than present)
    assert h.count("from") == 2 and h.count("subject") == 2, h
    # the Date and Message-ID tern added (RFC 6409 8.2, 8.3) are signed
    assert h.count("date") == 2 and "message-id" in h, h
    for name in ("to", "mime-version", "content-type"):
        assert name in h, h
    # the signature is above tern's own Received, below Return-Path
    lines = raw.split(b"\r\n")
    assert lines[0].startswith(b"Return-Path:"), lines[:3]
    assert lines[1].startswith(b"DKIM-Signature:"), lines[:3]
    assert re.search(r"event=dkim_signed d=example\.org s=s1", t.log())


def test_submission_signed_ed25519(ternd):
    t, zone = signer(ternd, [(ORG, "ed", "ed25519")])
    submit(t, ["ben@example.org"], message("ed25519"))
    [s] = verify_all(newest(t, "ben@example.org"), zone, 1)
    assert (s["a"], s["s"]) == ("ed25519-sha256", "ed")


def test_submission_dual_signed(ternd):
    t, zone = signer(ternd, [(ORG, "r", "rsa"), (ORG, "e", "ed25519")])
    submit(t, ["ben@example.org"], message("dual"))
    sigs = verify_all(newest(t, "ben@example.org"), zone, 2)
    assert sorted(s["a"] for s in sigs) == ["ed25519-sha256", "rsa-sha256"]
    assert sigs[0]["t"] == sigs[1]["t"]


def test_expire_zero_no_x_and_sign_no(ternd):
    t, zone = signer(ternd, [(ORG, "s", "ed25519")], {"dkim.expire": "0"})
    submit(t, ["ben@example.org"], message("no x"))
    [s] = verify_all(newest(t, "ben@example.org"), zone, 1)
    assert "x" not in s, s
    t2, _ = signer(ternd, [(ORG, "s", "ed25519")], {"dkim.sign": "no"})
    submit(t2, ["ben@example.org"], message("unsigned"))
    assert signatures(newest(t2, "ben@example.org")) == []


def test_envelope_sender_domain_when_from_has_no_key(ternd):
    """From of a domain without a key: the envelope sender's domain signs
    (its key exists), so the message is not sent unsigned."""
    t, zone = signer(ternd, [(ORG, "s", "ed25519")],
                     {"submission.any_sender": "yes"})
    submit(t, ["ben@example.org"], message("sender", frm="claire@other.test"))
    [s] = verify_all(newest(t, "ben@example.org"), zone, 1)
    assert s["d"] == ORG


def test_mx_port_mail_not_signed(ternd):
    """Mail from outside on the MX port is never signed, even claiming a
    From of a domain tern has a key for."""
    t, _ = signer(ternd, [(ORG, "s", "ed25519")])
    rep = t.send_raw("someone@outside.test", ["ben@example.org"],
                     message("forged"))
    assert rep.code == 250, rep
    raw = newest(t, "ben@example.org")
    assert signatures(raw) == [] and b"DKIM-Signature" not in raw


def test_sendmail_signed(ternd):
    t, zone = signer(ternd, [(ORG, "s", "rsa")])
    r = t.tern("-o", "hostname=mx.test", "sendmail", "-f", CLAIRE, "-i",
               "ben@example.org",
               input=b"From: Claire <claire@example.org>\nSubject: cron\n"
                     b"\nfrom a script\n")
    assert r.returncode == 0, r
    raw = newest(t, "ben@example.org")
    [s] = verify_all(raw, zone, 1)
    # sendmail's message had no Date or Message-ID: tern's are signed
    assert b"\r\nMessage-ID: <" in raw and s["h"].lower().count("date") == 2


def test_success_dsn_signed(ternd):
    """A DSN tern makes is signed with the key of its From domain, the
    host name's (MAILER-DAEMON@mx.test)."""
    t, zone = signer(ternd, [("mx.test", "dsn", "ed25519")])
    submit(t, ["ben@example.org"], message("notify"),
           options=["NOTIFY=SUCCESS"])
    raw = newest(t, CLAIRE)
    assert raw.startswith(b"Return-Path: <>\r\n"), raw[:200]
    [s] = verify_all(raw, zone, 1)
    assert (s["d"], s["s"]) == ("mx.test", "dsn")
    # Claire's own message (From example.org, no key) went unsigned
    assert signatures(newest(t, "ben@example.org")) == []


def test_failure_dsn_signed(ternd, dnsmasq):
    """A bounce (the queue's failure DSN) is signed too."""
    dns = dnsmasq(extra=["--local=/invalid/"])
    t, zone = signer(ternd, [("mx.test", "dsn", "rsa")],
                     {"dns.servers": dns.server})
    submit(t, ["nobody@nowhere.invalid"], message("bounce",
                                                  to="nobody@nowhere.invalid"))
    raw = newest(t, CLAIRE)
    assert b"multipart/report" in raw
    [s] = verify_all(raw, zone, 1)
    assert s["d"] == "mx.test"


# ---- rotation ----------------------------------------------------------------

def test_inactive_key_not_used_until_activated(ternd):
    t = submit_ternd(ternd, start=False)
    first = keygen(t, ORG, "old")
    second = keygen(t, ORG, "new")
    assert "inactive" in second and "tern dkim activate" in second
    zone = zone_of(first, second)
    t.start()
    listing = t.tern("dkim", "list").stdout.decode()
    assert "example.org old rsa 2048 active" in listing, listing
    assert "example.org new rsa 2048 inactive" in listing, listing
    submit(t, ["ben@example.org"], message("before"))
    [s] = verify_all(newest(t, "ben@example.org"), zone, 1)
    assert s["s"] == "old"
    r = t.tern("dkim", "activate", ORG, "new")
    assert b"ternd reloaded its DKIM keys" in r.stdout, r
    submit(t, ["ben@example.org"], message("after"))
    [s] = verify_all(newest(t, "ben@example.org", 2), zone, 1)
    assert s["s"] == "new"
    assert "example.org old rsa 2048 inactive" in \
        t.tern("dkim", "list").stdout.decode()


def test_key_readable_by_others_refused(ternd):
    """A key file group- or world-readable is not a secret any more:
    ternd refuses it (and says how to fix it), the mail flows unsigned."""
    t = submit_ternd(ternd, start=False)
    keygen(t, ORG, "s", "ed25519")
    path = t.state_dir / "dkim" / ORG / "s.ed25519.key"
    os.chmod(path, 0o644)
    t.start()
    assert re.search(r"event=dkim_keys path=\S+s\.ed25519\.key "
                     r"error=\"mode 0644: readable by group or others\" "
                     r"action=\"key ignored: chmod 600", t.log()), t.log()
    submit(t, ["ben@example.org"], message("unsigned"))
    assert signatures(newest(t, "ben@example.org")) == []


def test_active_file_writable_by_others_refused(ternd):
    """An active file others may write is not trusted: no key of that
    domain signs (not even the one the no-file rule would pick)."""
    t = submit_ternd(ternd, start=False)
    keygen(t, ORG, "s", "ed25519")
    active = t.state_dir / "dkim" / ORG / "active"
    assert active.read_text() == "s\n"
    os.chmod(active, 0o666)
    t.start()
    submit(t, ["ben@example.org"], message("unsigned"))
    assert signatures(newest(t, "ben@example.org")) == []
    assert re.search(r"event=dkim_keys path=\S+/active error=\"mode 0666: "
                     r"writable by group or others\" action=\"active file "
                     r"ignored: chmod 600", t.log()), t.log()
    assert "no key of example.org signs until the active file is fixed" \
        in t.log()
    # 0644 (others may read it, not write it) is fine for the active file;
    # reloaded (SIGHUP), the key signs
    os.chmod(active, 0o644)
    t.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "domain=example.org selector=s alg=ed25519" in t.log(),
             "the key loaded after SIGHUP")
    submit(t, ["ben@example.org"], message("signed"))
    assert len(signatures(newest(t, "ben@example.org", 2))) == 1


def test_key_symlink_refused(ternd):
    t = submit_ternd(ternd, start=False)
    keygen(t, ORG, "s", "ed25519")
    d = t.state_dir / "dkim" / ORG
    os.rename(d / "s.ed25519.key", d / "real.pem")
    os.symlink("real.pem", d / "s.ed25519.key")
    t.start()
    assert re.search(r"s\.ed25519\.key error=.*symbolic link", t.log()), \
        t.log()
    submit(t, ["ben@example.org"], message("unsigned"))
    assert signatures(newest(t, "ben@example.org")) == []


# ---- after the relay -----------------------------------------------------------

def test_signed_mail_verifies_at_the_peer(ternd, dnsmasq):
    """Claire's message as Ben's MTA stored it (after SMTP transport, with
    B's trace on top) still verifies: RSA and Ed25519."""
    a, b, _ = two_mtas(ternd, dnsmasq, b_start=True)
    # two_mtas starts A: the keys come with a reload (activate)
    outs = [keygen(a, ORG, "r", "rsa"), keygen(a, ORG, "e", "ed25519")]
    a.tern("dkim", "activate", ORG, "r")
    zone = zone_of(*outs)
    with smtplib.SMTP("127.0.0.1", a.sub_port, local_hostname="laptop.test",
                      timeout=10 * SLOW) as s:
        s.starttls(context=tls_client_context())
        s.ehlo()
        s.login(CLAIRE, PASSWORD)
        s.sendmail(CLAIRE, [BEN], message("over the wire", to=BEN))
    raw = newest(b, BEN)
    sigs = verify_all(raw, zone, 2)
    assert {x["d"] for x in sigs} == {ORG}
    opendkim_verify(raw, zone)


# ---- OpenDKIM ------------------------------------------------------------------

OPENDKIM_TESTMSG = "/usr/sbin/opendkim-testmsg"


def opendkim_verify(raw, zone):
    """opendkim-testmsg verifies raw (silent and 0 when every signature
    passes).  It asks the system resolver; so it runs in its own user,
    mount and network namespace, where /etc/resolv.conf names 127.0.0.1
    and a dnsmasq on port 53 there serves the zone."""
    require(OPENDKIM_TESTMSG, "opendkim-tools")
    top = world_tmpdir("tern-odkim-")
    try:
        (top / "resolv.conf").write_text("nameserver 127.0.0.1\n")
        (top / "msg").write_bytes(raw)
        args = []
        for name, value in zone.items():
            chunks = [value[i:i + 255] for i in range(0, len(value), 255)]
            args.append(f"--txt-record={name}," + ",".join(chunks))
        # -d: in the foreground, and no change of user or group (which
        # a user namespace forbids)
        script = (
            "ip link set lo up && "
            f"{{ {DNSMASQ} -d --port=53 --listen-address=127.0.0.1 "
            "--bind-interfaces --no-resolv --no-hosts --conf-file=/dev/null "
            + " ".join(f"'{a}'" for a in args) +
            f" >{top}/dnsmasq.log 2>&1 & }}; dns=$!; "
            f"i=0; until grep -q started {top}/dnsmasq.log; do "
            "i=$((i+1)); [ $i -lt 100 ] || exit 97; sleep 0.1; done; "
            f"mount --bind {top}/resolv.conf /etc/resolv.conf && "
            f"{OPENDKIM_TESTMSG} < {top}/msg; rc=$?; "
            "kill $dns; exit $rc")
        r = subprocess.run(["unshare", "-rmn", "sh", "-c", script],
                           capture_output=True, timeout=60 * SLOW)
        if r.returncode != 0 and b"unshare" in r.stderr:
            pytest.fail("opendkim-testmsg needs an unprivileged user "
                        f"namespace (unshare -rmn): {r.stderr!r}",
                        pytrace=False)
        assert r.returncode == 0 and r.stdout == b"", \
            f"opendkim-testmsg: rc={r.returncode} {r.stdout!r} {r.stderr!r}"
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_opendkim_verifies_tern_signature(ternd):
    t, zone = signer(ternd, [(ORG, "r", "rsa")])
    submit(t, ["ben@example.org"], message("opendkim"))
    raw = newest(t, "ben@example.org")
    verify_all(raw, zone, 1)
    opendkim_verify(raw, zone)
    # and it fails once a signed field is touched (the check can fail)
    with pytest.raises(AssertionError, match="opendkim-testmsg"):
        opendkim_verify(raw.replace(b"Subject: opendkim",
                                    b"Subject: opendkin"), zone)


# ---- tern dkim check -----------------------------------------------------------

def test_dkim_check(ternd, dnsmasq):
    t = submit_ternd(ternd, start=False)
    good = keygen(t, ORG, "good", "rsa")
    keygen(t, ORG, "other", "ed25519")
    keygen(t, ORG, "gone", "rsa")          # inactive: never published
    keygen(t, "example.net", "rev", "ed25519")
    impostor = keygen(t, "example.net", "imp", "rsa")
    # "other" publishes another ed25519 key (a mismatch); "rev" is revoked
    t2 = submit_ternd(ternd, start=False)
    wrong = keygen(t2, ORG, "other", "ed25519")
    zone = ["--local=/org/", "--local=/net/"]
    zone.append(f"--txt-record=good._domainkey.example.org," +
                ",".join(strings(good, "good._domainkey.example.org")))
    zone.append(f"--txt-record=other._domainkey.example.org," +
                ",".join(strings(wrong, "other._domainkey.example.org")))
    zone.append("--txt-record=rev._domainkey.example.net,v=DKIM1; "
                "k=ed25519; p=")
    zone.append(f"--txt-record=imp._domainkey.example.net," +
                ",".join(strings(impostor, "imp._domainkey.example.net")))
    dns = dnsmasq(extra=zone)
    over = ("-o", f"dns.servers={dns.server}")

    def check(*args):
        r = t.tern(*over, "dkim", "check", *args, check=False)
        return r.returncode, r.stdout.decode()

    rc, out = check(ORG, "good")
    assert rc == 0 and "example.org good rsa active: ok" in out, out
    rc, out = check(ORG, "other")
    assert rc == 1 and ": mismatch" in out, out
    rc, out = check(ORG, "gone")
    assert rc == 1 and ": missing" in out, out
    rc, out = check("example.net", "rev")
    assert rc == 1 and ": revoked" in out, out
    rc, out = check("example.net", "imp")
    assert rc == 0 and ": ok" in out, out
    # the whole domain: the active keys decide (good ok, other mismatch)
    rc, out = check(ORG)
    assert rc == 1 and out.count("\n") == 3, out
    assert "gone rsa inactive: missing" in out, out
    rc, out = check(ORG, "nosuch")
    assert rc == 1
    # a resolver that does not answer: an error, not "missing"
    r = t.tern("-o", "dns.servers=127.0.0.1:1", "dkim", "check", ORG, "good",
               check=False)
    assert r.returncode == 1 and b": error" in r.stdout, r
