"""DKIM verification, DMARC and Authentication-Results of mail received on
the MX port (docs/mailauth.md): messages signed by an independent
implementation (dkimpy) with keys made here, published with the DMARC
policies in a zone dnsmasq serves; ternd verifies them at the end of data,
evaluates DMARC with the SPF result, acts on the policy (550 5.7.1 for
reject, the mailbox's .Junk folder for quarantine) and writes one
Authentication-Results field on top of the stored copy, after leaving out
every A-R field that claims its own authserv-id."""

import base64
import re
import socket
import struct
import time

import pytest

from conftest import HOSTNAME, SLOW, check, wait_for

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

RCPT = "ben@example.org"


def _chunks(s, n=200):
    return ",".join(s[i:i + n] for i in range(0, len(s), n))


class Keys:
    def __init__(self):
        r = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.rsa_priv = r.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption())
        self.rsa_pub = base64.b64encode(r.public_key().public_bytes(
            serialization.Encoding.DER,
            serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
        e = ed25519.Ed25519PrivateKey.generate()
        self.ed_priv = base64.b64encode(e.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
            serialization.NoEncryption()))
        self.ed_pub = base64.b64encode(e.public_key().public_bytes(
            serialization.Encoding.Raw,
            serialization.PublicFormat.Raw)).decode()


@pytest.fixture(scope="module")
def keys():
    return Keys()


def zone(k):
    z = []
    # k.test: keys, p=none (the DKIM result tests); a.test: keys, p=reject
    for d in ("k.test", "a.test", "rep.test"):
        z += [f"--txt-record=r._domainkey.{d},v=DKIM1; k=rsa; p="
              + _chunks(k.rsa_pub),
              f"--txt-record=e._domainkey.{d},v=DKIM1; k=ed25519; p="
              + k.ed_pub,
              # SPF fails for both: DMARC can pass through DKIM only
              f"--txt-record={d},v=spf1 ip4:192.0.2.1 -all"]
    z += [
        "--txt-record=_dmarc.k.test,v=DMARC1; p=none",
        "--txt-record=_dmarc.a.test,v=DMARC1; p=reject",
        "--txt-record=_dmarc.reject.test,v=DMARC1; p=reject",
        "--txt-record=_dmarc.quar.test,v=DMARC1; p=quarantine",
        "--txt-record=_dmarc.none.test,v=DMARC1; p=none",
        # rep.test: keys, p=reject, aggregate reports wanted
        "--txt-record=_dmarc.rep.test,v=DMARC1; p=reject; "
        "rua=mailto:agg@rep.test",
        # SPF passes for 127.0.0.1, no DKIM key at all
        "--txt-record=spfok.test,v=spf1 ip4:127.0.0.1 -all",
        "--txt-record=_dmarc.spfok.test,v=DMARC1; p=reject",
        "--host-record=other.test,192.0.2.9",
        # np.test: subdomains that exist get sp=none, those that do not
        # np=reject (RFC 9091)
        "--txt-record=_dmarc.np.test,v=DMARC1; p=none; sp=none; np=reject",
        "--host-record=real.np.test,192.0.2.10",
        "--mx-host=mxonly.np.test,mx.other.test,10",
        "--txt-record=txtonly.np.test,just a text record",
        "--local=/test/",
    ]
    return z


def auth_ternd(ternd, dnsmasq, k, extra=None, servers=None):
    dns = dnsmasq(extra=zone(k)) if servers is None else None
    over = {"spf.check": "yes", "dkim.verify": "yes", "dmarc.check": "yes",
            "dns.servers": servers or dns.server}
    over.update(extra or {})
    return ternd(over)


def message(frm="Alice <alice@k.test>", subject="mailauth",
            body=b"Hello.\r\nSecond line.\r\n", extra=b""):
    return (f"From: {frm}\r\nTo: Ben <{RCPT}>\r\nSubject: {subject}\r\n"
            f"Date: Sun, 06 Dec 2026 12:00:00 +0000\r\n"
            f"Message-ID: <{time.monotonic_ns()}@test>\r\n").encode() \
        + extra + b"\r\n" + body


def sign(k, msg, alg="rsa", d="k.test", s=None, canon=(b"relaxed",
                                                      b"relaxed"),
         length=False):
    if alg == "ed25519":
        priv, sa, sel = k.ed_priv, b"ed25519-sha256", s or "e"
    else:
        priv, sel = k.rsa_priv, s or "r"
        sa = b"rsa-sha1" if alg == "rsa-sha1" else b"rsa-sha256"
    sig = dkim.sign(msg, sel.encode(), d.encode(), priv, canonicalize=canon,
                    signature_algorithm=sa, length=length,
                    include_headers=[b"from", b"to", b"subject", b"date",
                                     b"message-id"])
    return sig + msg


def dot_stuff(msg):
    return re.sub(rb"(?m)^\.", b"..", msg)


def send(t, msg, sender="alice@k.test", code=250, enh=None, timeout=None):
    with t.client(timeout=timeout or 10.0 * SLOW) as c:
        c.ehlo("client.test")
        c.expect(f"MAIL FROM:<{sender}>", 250)
        c.expect(f"RCPT TO:<{RCPT}>", 250)
        c.expect("DATA", 354)
        c.send(dot_stuff(msg) + b".\r\n")
        r = c.reply()
        check(r, code, enh, "end of data")
        c.expect("QUIT", 221)
        return r


def unfolded(data):
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    fields = []
    for line in head.split("\r\n"):
        if line[:1] in (" ", "\t") and fields:
            fields[-1] += " " + line.strip()
        else:
            fields.append(line)
    return fields


def stored(t, n=1, folder=None):
    if folder is None:
        files = wait_for(lambda: len(t.files(RCPT)) >= n and t.files(RCPT),
                         "the message in the Maildir")
        return files[-1].read_bytes()
    d = t.state_dir / "mail" / "example.org" / "ben" / folder / "new"
    files = wait_for(lambda: d.is_dir() and sorted(d.iterdir()),
                     f"the message in {folder}")
    return files[-1].read_bytes()


def authres(data):
    """(raw field, [(method, result, {ptype.prop: value})]) of our A-R,
    which must be the first field after Return-Path."""
    fields = unfolded(data)
    assert fields[0].startswith("Return-Path:"), fields[:3]
    ar = fields[1]
    assert ar.startswith("Authentication-Results: "), fields[:3]
    raw = data.split(b"\r\nReceived", 1)[0].split(b"\r\n", 1)[1]
    ours = [f for f in fields if f.lower().startswith(
        "authentication-results:") and
        f.split(":", 1)[1].strip().split(";")[0].strip() == HOSTNAME]
    assert len(ours) == 1, ours
    parts = [p.strip() for p in ar.split(":", 1)[1].split(";")]
    assert parts[0] == HOSTNAME, parts
    res = []
    for p in parts[1:]:
        m = re.match(r"(\w+)=(\w+)\s*(.*)", p)
        assert m, p
        props = dict(re.findall(r'([a-z]+\.[a-z]+)=("[^"]*"|\S+)',
                                m.group(3)))
        res.append((m.group(1), m.group(2),
                    {kk: v.strip('"') for kk, v in props.items()}))
    return raw.decode(), res


def results(data, method):
    return [(r, p) for m, r, p in authres(data)[1] if m == method]


def auth_log(t, n=1):
    lines = wait_for(lambda: len(re.findall(r".*event=auth .*", t.log()))
                     >= n and re.findall(r".*event=auth .*", t.log()),
                     "event=auth in the log")
    return lines[-1]


@pytest.mark.parametrize("alg", ["rsa", "ed25519"])
@pytest.mark.parametrize("canon", ["relaxed", "simple"])
def test_dkimpy_signed_passes(ternd, dnsmasq, keys, alg, canon):
    t = auth_ternd(ternd, dnsmasq, keys)
    c = canon.encode()
    send(t, sign(keys, message(), alg, canon=(c, c)))
    data = stored(t)
    [(r, p)] = results(data, "dkim")
    assert r == "pass", authres(data)[0]
    assert p["header.d"] == "k.test"
    assert p["header.s"] == ("e" if alg == "ed25519" else "r")
    assert p["header.i"] == "@k.test"
    sig = re.search(rb"\bb=([A-Za-z0-9+/=\s]+)", data.split(
        b"DKIM-Signature:", 1)[1]).group(1)
    assert p["header.b"] == re.sub(rb"\s", b"", sig)[:8].decode()
    assert results(data, "dmarc")[0][0] == "pass"
    assert results(data, "spf")[0][0] == "fail"
    line = auth_log(t)
    assert "dkim=pass(d=k.test)" in line and "dmarc=pass" in line, line
    assert "action=accept" in line, line
    print(authres(data)[0])     # the report's sample (pytest -s)


def test_dkim_pass_survives_refolding_and_l(ternd, dnsmasq, keys):
    t = auth_ternd(ternd, dnsmasq, keys)
    msg = sign(keys, message(subject="a subject long enough to fold"),
               length=True)
    # a relay re-folds the Subject and adds a line to the body: relaxed
    # header canonicalisation undoes the first, l= excludes the second
    msg = msg.replace(b"Subject: a subject long",
                      b"Subject: a subject\r\n\t  long")
    msg += b"Appended by a list.\r\n"
    send(t, msg)
    data = stored(t)
    [(r, p)] = results(data, "dkim")
    assert r == "pass", authres(data)[0]
    assert "l=" in authres(data)[0], authres(data)[0]


def test_dkim_tampered_body_fails(ternd, dnsmasq, keys):
    t = auth_ternd(ternd, dnsmasq, keys)
    msg = sign(keys, message()).replace(b"Second line.", b"Second lie.")
    send(t, msg)
    data = stored(t)
    [(r, p)] = results(data, "dkim")
    assert r == "fail", authres(data)[0]
    assert results(data, "dmarc")[0][0] == "fail"     # p=none: delivered
    assert "dkim=fail(d=k.test)" in auth_log(t)


def test_dkim_missing_key_permerror(ternd, dnsmasq, keys):
    t = auth_ternd(ternd, dnsmasq, keys)
    send(t, sign(keys, message(), s="gone"))
    [(r, p)] = results(stored(t), "dkim")
    assert r == "permerror", p
    assert p["header.s"] == "gone"


def test_dkim_rsa_sha1_refused(ternd, dnsmasq, keys):
    t = auth_ternd(ternd, dnsmasq, keys)
    send(t, sign(keys, message(), "rsa-sha1"))
    [(r, p)] = results(stored(t), "dkim")
    assert r in ("policy", "fail"), r          # RFC 8301 3.1


def test_dkim_100_signatures_only_5_checked(ternd, dnsmasq, keys):
    t = auth_ternd(ternd, dnsmasq, keys)
    msg = message()
    for i in range(100):
        msg = sign(keys, msg, "ed25519" if i % 2 else "rsa")
    t0 = time.monotonic()
    send(t, msg)
    took = time.monotonic() - t0
    data = stored(t)
    dk = results(data, "dkim")
    assert len(dk) == 5, dk
    assert all(r == "pass" for r, p in dk), dk
    line = auth_log(t)
    assert "dkim_skipped=95" in line, line
    assert took < 10, took


def test_dns_timeout_temperror_not_refused(ternd, keys):
    hole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    hole.bind(("127.0.0.1", 0))
    try:
        t = auth_ternd(ternd, None, keys,
                       servers=f"127.0.0.1:{hole.getsockname()[1]}")
        send(t, sign(keys, message(frm="x@reject.test"), d="a.test"),
             sender="x@reject.test", timeout=60.0 * SLOW)
    finally:
        hole.close()
    data = stored(t)
    assert results(data, "dkim")[0][0] == "temperror"
    assert results(data, "dmarc")[0][0] == "temperror"
    assert results(data, "spf")[0][0] == "temperror"
    line = auth_log(t)
    assert "action=accept" in line, line


def test_dns_refused_key_temperror(ternd, dnsmasq, keys):
    # a key under a name dnsmasq has no data for and no upstream to ask:
    # it answers REFUSED, a temporary failure: temperror, not refused
    t = auth_ternd(ternd, dnsmasq, keys)
    send(t, sign(keys, message(frm="x@reject.test"), d="k.elsewhere"),
         sender="x@reject.test", code=550, enh="5.7.1")
    send(t, sign(keys, message(), d="k.elsewhere"))
    [(r, p)] = results(stored(t), "dkim")
    assert r == "temperror" and p["header.d"] == "k.elsewhere", (r, p)


def test_aligned_key_timeout_not_refused(ternd, dnsmasq, keys):
    # the From domain publishes p=reject and its signature's key lookup
    # times out (dnsmasq forwards that one name to a resolver that never
    # answers): DMARC cannot pass now but might later, so temperror and
    # the message is taken, not refused for good
    hole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    hole.bind(("127.0.0.1", 0))
    try:
        dns = dnsmasq(extra=zone(keys) + [
            f"--server=/slow._domainkey.a.test/127.0.0.1#"
            f"{hole.getsockname()[1]}"])
        t = auth_ternd(ternd, None, keys, servers=dns.server)
        send(t, sign(keys, message(frm="ceo@a.test"), d="a.test",
                     s="slow"), sender="ceo@a.test", timeout=60.0 * SLOW)
    finally:
        hole.close()
    data = stored(t)
    assert results(data, "dkim")[0][0] == "temperror"
    assert results(data, "dmarc")[0][0] == "temperror"
    line = auth_log(t)
    assert "dmarc=temperror" in line and "action=accept" in line, line


def test_dmarc_reject_forgery_refused(ternd, dnsmasq, keys):
    t = auth_ternd(ternd, dnsmasq, keys)
    r = send(t, message(frm="CEO <ceo@reject.test>"),
             sender="mallory@other.test", code=550, enh="5.7.1")
    assert "DMARC" in r.text and "reject.test" in r.text, r.text
    assert t.files(RCPT) == []
    line = auth_log(t)
    assert "dmarc=fail" in line and "policy=reject" in line, line
    assert "action=reject" in line, line
    # a DKIM-signed message of a p=reject domain passes
    send(t, sign(keys, message(frm="ceo@a.test"), d="a.test"))
    assert results(stored(t), "dmarc")[0][0] == "pass"


def test_dmarc_np_for_a_subdomain_that_does_not_exist(ternd, dnsmasq, keys):
    """np= (RFC 9091) applies to a From subdomain with no A, AAAA or MX
    (NXDOMAIN, or NODATA for all three: txtonly has a TXT record only);
    a subdomain with an address or an MX gets sp=none."""
    t = auth_ternd(ternd, dnsmasq, keys)
    for n, ghost in enumerate(("ghost.np.test", "txtonly.np.test"), 1):
        r = send(t, message(frm=f"CEO <ceo@{ghost}>"),
                 sender="mallory@other.test", code=550, enh="5.7.1")
        assert "DMARC" in r.text, r.text
        line = auth_log(t, n)
        assert "dmarc=fail" in line and "policy=reject" in line, line
    assert t.files(RCPT) == []
    for n, real in enumerate(("real.np.test", "mxonly.np.test"), 1):
        send(t, message(frm=f"CEO <ceo@{real}>"), sender="mallory@other.test")
        [(r, p)] = results(stored(t, n), "dmarc")
        assert r == "fail" and p["policy.dmarc"] == "none", (real, p)
    assert len(t.files(RCPT)) == 2


def test_verdicts_recorded_for_the_reports(ternd, dnsmasq, keys):
    """With dmarc.reports = yes every verdict of the live check is counted
    in dmarc.db: a refused forgery and a signed message of rep.test, whose
    policy asks for aggregate reports, are two rows of one domain."""
    t = auth_ternd(ternd, dnsmasq, keys, extra={"dmarc.reports": "yes"})
    send(t, message(frm="ceo@rep.test"), sender="mallory@other.test",
         code=550, enh="5.7.1")
    send(t, sign(keys, message(frm="ceo@rep.test"), d="rep.test"),
         sender="ceo@rep.test")
    assert t.stop() == 0        # the stop writes what is still batched
    out = t.tern("dmarc", "report", "--dry-run").stdout.decode()
    assert "domain rep.test: 2 rows, 2 messages" in out, out
    assert "rua mailto:agg@rep.test: send" in out, out
    assert "<disposition>reject</disposition>" in out, out
    assert "<source_ip>127.0.0.1</source_ip>" in out, out


def test_dmarc_reject_not_enforced(ternd, dnsmasq, keys):
    t = auth_ternd(ternd, dnsmasq, keys, extra={"dmarc.enforce": "no"})
    send(t, message(frm="ceo@reject.test"), sender="mallory@other.test")
    data = stored(t)
    [(r, p)] = results(data, "dmarc")
    assert r == "fail" and p["header.from"] == "reject.test", p
    assert "action=accept" in auth_log(t)


def test_dmarc_quarantine_into_junk(ternd, dnsmasq, keys, dovecot):
    t = auth_ternd(ternd, dnsmasq, keys)
    send(t, message(frm="ceo@quar.test", subject="quarantined"),
         sender="mallory@other.test")
    box = t.state_dir / "mail" / "example.org" / "ben"
    data = stored(t, folder=".Junk")
    assert results(data, "dmarc")[0][0] == "fail"
    assert results(data, "dmarc")[0][1]["policy.dmarc"] == "quarantine"
    assert (box / ".Junk" / "maildirfolder").is_file()
    for sub in ("cur", "new", "tmp"):
        assert (box / ".Junk" / sub).is_dir()
        assert (box / sub).is_dir()
    assert t.files(RCPT) == []                      # not in the INBOX
    assert "action=quarantine" in auth_log(t)
    t.check_clean_exit()
    # a real IMAP server lists the folder and finds the message in it
    dv = dovecot(box)
    m = dv.imap()
    try:
        typ, lst = m.list()
        assert typ == "OK" and any(b'"Junk"' in x or x.endswith(b" Junk")
                                   for x in lst), lst
        typ, n = m.select("Junk")
        assert typ == "OK" and n[0] == b"1", n
        typ, got = m.fetch(b"1", "(RFC822)")
        assert typ == "OK" and got[0][1] == data
    finally:
        m.logout()


def test_dmarc_none_header_only(ternd, dnsmasq, keys):
    t = auth_ternd(ternd, dnsmasq, keys)
    send(t, message(frm="x@none.test"), sender="mallory@other.test")
    [(r, p)] = results(stored(t), "dmarc")
    assert r == "fail", p
    assert "action=accept" in auth_log(t)


def test_dmarc_override(ternd, dnsmasq, keys):
    t = auth_ternd(ternd, dnsmasq, keys,
                   extra={"dmarc.override": "reject.test:none, "
                          "*.none.test:reject"})
    send(t, message(frm="ceo@reject.test"), sender="mallory@other.test")
    data = stored(t)
    [(r, p)] = results(data, "dmarc")
    assert r == "fail" and p["policy.dmarc"] == "none", p
    assert "local policy" in authres(data)[0]
    assert "reason=override" in auth_log(t)
    # and the other way round: a p=none domain's forgeries refused
    send(t, message(frm="x@none.test"), sender="mallory@other.test",
         code=550, enh="5.7.1")


def test_dmarc_spf_aligned_pass(ternd, dnsmasq, keys):
    t = auth_ternd(ternd, dnsmasq, keys)
    send(t, message(frm="news@spfok.test"), sender="bounces@spfok.test")
    data = stored(t)
    assert results(data, "spf")[0][0] == "pass"
    assert results(data, "dkim")[0][0] == "none"
    assert results(data, "dmarc")[0][0] == "pass"


def test_spoofed_authres_removed_foreign_kept(ternd, dnsmasq, keys):
    t = auth_ternd(ternd, dnsmasq, keys)
    forged = (f"Authentication-Results: {HOSTNAME.upper()};\r\n"
              f"\tdkim=pass header.d=bank.example\r\n"
              f"Authentication-Results: other.example; spf=pass\r\n"
              f"Authentication-Results: {HOSTNAME}; dmarc=pass\r\n").encode()
    send(t, message(frm="x@none.test", extra=forged),
         sender="mallory@other.test")
    data = stored(t)
    fields = unfolded(data)
    ars = [f for f in fields if f.lower().startswith(
        "authentication-results:")]
    assert len(ars) == 2, ars
    assert ars[1] == "Authentication-Results: other.example; spf=pass"
    assert b"bank.example" not in data
    assert results(data, "dmarc")[0][0] == "fail"
    assert "event=authres_removed fields=2" in t.log()


def test_not_for_relay_networks(ternd, dnsmasq, keys):
    t = auth_ternd(ternd, dnsmasq, keys,
                   extra={"relay.networks": "127.0.0.0/8"})
    send(t, message(frm="ceo@reject.test"), sender="mallory@other.test")
    data = stored(t)
    assert b"Authentication-Results" not in data
    assert "event=auth " not in t.log()


def test_client_gone_while_checking(ternd, keys):
    """The client resets the connection while its end of data waits for
    DKIM/DMARC lookups that never get an answer: the session is held until
    the check ends (the queries' deadline, then the worker job), then
    freed without a verdict (no message, no event=auth); ternd goes on
    serving and exits cleanly (teardown: no sanitizer report)."""
    hole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    hole.bind(("127.0.0.1", 0))
    try:
        t = auth_ternd(ternd, None, keys,
                       servers=f"127.0.0.1:{hole.getsockname()[1]}",
                       extra={"spf.check": "no"})
        c = t.client()
        c.ehlo()
        c.expect("MAIL FROM:<x@k.test>", 250)
        c.expect(f"RCPT TO:<{RCPT}>", 250)
        c.expect("DATA", 354)
        c.send(dot_stuff(sign(keys, message())) + b".\r\n")
        c.no_reply(0.5)                 # it waits for the check
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                          struct.pack("ii", 1, 0))
        t0 = time.monotonic()
        c.close()                       # RST
        wait_for(lambda: "event=disconnect reason=error" in t.log(),
                 "the session freed after the check", timeout=40 * SLOW)
        # held until the lookups gave up (each query's 10 s deadline)
        assert time.monotonic() - t0 > 5
        with t.client() as c2:
            c2.ehlo()
            c2.expect("QUIT", 221)
    finally:
        hole.close()
    assert t.files(RCPT) == []
    assert "event=auth " not in t.log()
    t.check_clean_exit()
