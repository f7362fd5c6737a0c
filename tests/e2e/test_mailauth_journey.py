"""The mail authentication journey (issue 13), as in production except for
the port number: three ternd instances on one port, found by the MX
records dnsmasq serves, as in test_journey.py.

Claire (claire.test, 127.0.0.2): her server DKIM-signs what she submits
    (`tern dkim keygen`, the record published in the zone); SPF authorises
    127.0.0.2 and 127.0.0.1 (OUT_IP below); DMARC p=reject.
Ben (ben.test, 127.0.0.3): checks SPF, DKIM, DMARC and ARC on its MX port;
    fwd@ben.test is an alias for dave@dave.test; it has a DKIM key of its
    own, which seals what it forwards (ARC) and whose SPF record
    authorises its addresses for its SRS addresses.
Dave (dave.test, 127.0.0.4): checks the forwarded message.

The forgers are smtplib clients on 127.0.0.9 talking to Ben's MX port.
"""

import re
import smtplib

import dkim
import pytest

from conftest import (PASSWORD, SLOW, maildir_files, submit_ternd,
                      tls_client_context, wait_for)
from test_journey import common_port

CLAIRE = "claire@claire.test"
BEN = "ben@ben.test"
DAVE = "dave@dave.test"
FWD = "fwd@ben.test"
CLAIRE_IP, BEN_IP, DAVE_IP, FORGER_IP = ("127.0.0.2", "127.0.0.3",
                                         "127.0.0.4", "127.0.0.9")
# ternd has no outbound source address: the kernel sends from 127.0.0.1
# to any loopback address, so that is where Claire's and Ben's servers
# connect from, and what their SPF records name besides their own
OUT_IP = "127.0.0.1"


def keygen(t, domain, selector):
    """`tern dkim keygen`; {name: [TXT strings]} of the record it prints."""
    out = t.tern("dkim", "keygen", domain, "--selector", selector,
                 "--algorithm", "rsa").stdout.decode()
    found = {}
    for m in re.finditer(r'^(\S+)\. IN TXT \((.*)\)$', out, re.M):
        found[m.group(1)] = re.findall(r'"([^"]*)"', m.group(2))
    assert found, out
    return found


class Stored:
    """A Maildir file whose top fields are ours (A-R, ARC) above Received:
    conftest's Delivery wants Received second."""

    def __init__(self, path):
        self.path = path
        self.data = path.read_bytes()
        first = self.data.split(b"\r\n", 1)[0].decode()
        m = re.fullmatch(r"Return-Path: <(.*)>", first)
        assert m, first
        self.return_path = m.group(1)


def stored(state_dir, address):
    return [Stored(p) for p in maildir_files(state_dir, address)]


def unfolded(data):
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    fields = []
    for line in head.split("\r\n"):
        if line[:1] in (" ", "\t") and fields:
            fields[-1] += " " + line.strip()
        else:
            fields.append(line)
    return fields


def raw_field(data, name, authserv_id=None):
    """The first field called name (as stored, folded), optionally the
    A-R of authserv_id."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    for f in re.split(r"\r\n(?![ \t])", head):
        if not f.lower().startswith(name.lower() + ":"):
            continue
        v = f.split(":", 1)[1].strip()
        if authserv_id is None or v.split(";")[0].strip() == authserv_id:
            return f
    return None


def results(field):
    """{method: (result, "props text")} of an A-R field's text."""
    out = {}
    for p in [p.strip() for p in " ".join(field.split()).split(";")[1:]]:
        m = re.match(r"(\w+)=(\w+)\s*(.*)", p)
        assert m, p
        out.setdefault(m.group(1), (m.group(2), m.group(3)))
    return out


class World:
    def __init__(self, ternd, dnsmasq, ben_over=None, zone=None):
        self.port = p = common_port(CLAIRE_IP, BEN_IP, DAVE_IP)
        self.ternd = ternd
        on = {"spf.check": "yes", "dkim.verify": "yes",
              "dmarc.check": "yes", "arc.verify": "yes"}
        # the servers first (not started): their keys go into the zone
        c = submit_ternd(ternd, {"hostname": "mx.claire.test",
                                 "domains": "claire.test",
                                 "relay.port": str(p), **on},
                         users=(CLAIRE,), state="claire", start=False)
        c.port = p
        c.overrides["listen.smtp"] = f"{CLAIRE_IP}:{p}"
        c.overrides["listen.submission"] = f"{CLAIRE_IP}:{c.sub_port}"
        bo = {"hostname": "mx.ben.test", "domains": "ben.test",
              "listen.smtp": f"{BEN_IP}:{p}", "relay.port": str(p), **on}
        bo.update(ben_over or {})
        b = ternd(bo, users=(BEN,), state="ben", start=False)
        d = ternd({"hostname": "mx.dave.test", "domains": "dave.test",
                   "listen.smtp": f"{DAVE_IP}:{p}", "relay.port": str(p),
                   **on},
                  users=(DAVE,), state="dave", start=False)
        b.port = d.port = p
        self.zone = {}
        self.zone.update(keygen(c, "claire.test", "c1"))
        self.zone.update(keygen(b, "ben.test", "b1"))
        self.zone.update(zone or {})
        txt = [f"--txt-record={n},{','.join(s)}"
               for n, s in self.zone.items()]
        txt += [
            f"--txt-record=claire.test,v=spf1 ip4:{CLAIRE_IP} ip4:{OUT_IP} -all",
            "--txt-record=_dmarc.claire.test,v=DMARC1; p=reject",
            f"--txt-record=ben.test,v=spf1 ip4:{BEN_IP} ip4:{OUT_IP} -all",
            "--txt-record=quar.test,v=spf1 ip4:192.0.2.1 -all",
            "--txt-record=_dmarc.quar.test,v=DMARC1; p=quarantine",
            "--local=/test/",
        ]
        self.dns = dnsmasq(
            mx=[("claire.test", "mx.claire.test", 10),
                ("ben.test", "mx.ben.test", 10),
                ("dave.test", "mx.dave.test", 10)],
            hosts=[("mx.claire.test", CLAIRE_IP), ("mx.ben.test", BEN_IP),
                   ("mx.dave.test", DAVE_IP)],
            extra=txt)
        for t in (c, b, d):
            t.overrides["dns.servers"] = self.dns.server
        b.tern("alias", "add", FWD, DAVE)
        for t in (c, b, d):
            t.start()
        self.claire, self.ben, self.dave = c, b, d

    def submit(self, rcpts, content):
        """Claire's mail client: STARTTLS, AUTH, one message."""
        with smtplib.SMTP(CLAIRE_IP, self.claire.sub_port,
                          local_hostname="laptop.claire.test",
                          timeout=10 * SLOW) as s:
            s.starttls(context=tls_client_context())
            s.ehlo()
            s.login(CLAIRE, PASSWORD)
            assert s.sendmail(CLAIRE, rcpts, content) == {}

    def forger(self, sender, rcpts, content, host=BEN_IP):
        """A client on another address, straight to an MX."""
        with smtplib.SMTP(host, self.port, local_hostname="forger.example",
                          source_address=(FORGER_IP, 0),
                          timeout=20 * SLOW) as s:
            return s.sendmail(sender, rcpts, content)

    def dnsfunc(self, name, timeout=5):
        n = name.decode().rstrip(".").lower()
        return "".join(self.zone.get(n, [])).encode() or None


def msg(tag, frm=CLAIRE, to=BEN):
    return (f"Date: Sun, 6 Dec 2026 20:00:00 +0000\r\n"
            f"Message-ID: <{tag}@laptop.claire.test>\r\n"
            f"From: Claire <{frm}>\r\nTo: <{to}>\r\n"
            f"Subject: {tag}\r\n\r\nHello, this is {tag}.\r\n").encode()


@pytest.fixture
def world(ternd, dnsmasq):
    return World(ternd, dnsmasq)


def test_claire_to_ben_passes_everything(world):
    w = world
    w.submit([BEN], msg("signed"))
    [d] = wait_for(lambda: stored(w.ben.state_dir, BEN),
                   "the message in Ben's Maildir")
    ar = raw_field(d.data, "Authentication-Results", "mx.ben.test")
    print("\nBen's Authentication-Results, as stored:\n" + ar)
    r = results(ar)
    assert r["dkim"][0] == "pass" and "header.d=claire.test" in r["dkim"][1]
    assert "header.s=c1" in r["dkim"][1], r
    assert r["spf"] == ("pass", "smtp.mailfrom=claire@claire.test"), r
    assert r["dmarc"] == ("pass", "header.from=claire.test"), r
    assert r["arc"] == ("none", f"smtp.remote-ip={OUT_IP}"), r
    assert re.search(r"event=auth ip=127\.0\.0\.1 spf=pass "
                     r"dkim=pass\(d=claire\.test\) dkim_skipped=0 arc=none "
                     r"dmarc=pass from_domain=claire\.test policy=reject "
                     r"disposition=none action=accept ", w.ben.log()), \
        w.ben.log()[-3000:]
    # delivered to a local mailbox only: nothing to seal
    assert b"ARC-Seal" not in d.data
    assert "event=arc_sealed" not in w.ben.log()


def test_forged_claire_refused(world):
    w = world
    with pytest.raises(smtplib.SMTPDataError) as e:
        w.forger("someone@claire.test", [BEN], msg("forged"))
    assert e.value.smtp_code == 550, e.value
    assert e.value.smtp_error.startswith(b"5.7.1 DMARC policy of "
                                         b"claire.test rejects"), e.value
    assert maildir_files(w.ben.state_dir, BEN) == []


def test_quarantine_forgery_into_junk(world):
    w = world
    assert w.forger("x@quar.test", [BEN],
                    msg("quarantined", frm="boss@quar.test")) == {}
    junk = w.ben.state_dir / "mail" / "ben.test" / "ben" / ".Junk" / "new"
    [f] = wait_for(lambda: junk.is_dir() and sorted(junk.iterdir()),
                   "the message in Ben's .Junk")
    ar = raw_field(f.read_bytes(), "Authentication-Results", "mx.ben.test")
    r = results(ar)
    assert r["dmarc"][0] == "fail", r
    assert "policy.dmarc=quarantine" in r["dmarc"][1], r
    assert r["spf"][0] == "fail", r
    assert maildir_files(w.ben.state_dir, BEN) == []


def test_forwarded_sealed_srs_and_bounce(world):
    w = world
    content = msg("forwarded", to=FWD)
    w.submit([FWD], content)
    [d] = wait_for(lambda: stored(w.dave.state_dir, DAVE),
                   "the forwarded message at Dave")
    # SRS: the return path is Ben's
    srs = d.return_path
    assert re.fullmatch(r"SRS0=[A-Za-z0-9+/]{4}=[A-Z2-7]{2}=claire\.test="
                        r"claire@ben\.test", srs), srs
    assert d.data.endswith(content)
    fields = unfolded(d.data)
    # Ben's ARC set of instance 1, on top of Ben's A-R; Dave's A-R above
    names = [f.split(":", 1)[0] for f in fields]
    i = names.index("ARC-Seal")
    assert names[i:i + 4] == ["ARC-Seal", "ARC-Message-Signature",
                              "ARC-Authentication-Results",
                              "Authentication-Results"], names
    seal = fields[i]
    assert re.search(r"\bi=1;", seal) and "cv=none" in seal, seal
    assert "d=ben.test" in seal and "s=b1" in seal, seal
    aar = fields[i + 2]
    assert aar.startswith("ARC-Authentication-Results: i=1; mx.ben.test;")
    assert "dkim=pass" in aar and "dmarc=pass" in aar and "arc=none" in aar
    assert re.search(r"id=\S+ sid=\S+ event=arc_sealed d=ben\.test s=b1 "
                     r"cv=none", w.ben.log()), w.ben.log()[-3000:]
    # Dave's view: SPF of Ben's SRS address, Claire's DKIM intact, DMARC
    # aligned through it, Ben's chain valid
    ar = raw_field(d.data, "Authentication-Results", "mx.dave.test")
    print("\nDave's Authentication-Results, as stored:\n" + ar)
    r = results(ar)
    assert r["spf"][0] == "pass" and "@ben.test" in r["spf"][1], r
    assert r["dkim"][0] == "pass" and "header.d=claire.test" in r["dkim"][1]
    assert r["dmarc"] == ("pass", "header.from=claire.test"), r
    assert r["arc"] == ("pass", f"header.oldest-pass=0 "
                                f"smtp.remote-ip={OUT_IP}"), r
    assert re.search(r"event=auth ip=127\.0\.0\.1 spf=pass "
                     r"dkim=pass\(d=claire\.test\) dkim_skipped=0 arc=pass "
                     r"dmarc=pass", w.dave.log()), w.dave.log()[-3000:]
    # an independent verifier agrees: dkimpy's ARC and DKIM
    cv, res, why = dkim.arc_verify(d.data, dnsfunc=w.dnsfunc)
    assert cv == dkim.CV_Pass, (cv, res, why)
    assert dkim.verify(d.data, dnsfunc=w.dnsfunc)
    # Dave's bounce to the SRS address reaches Claire through Ben
    bounce = (f"From: MAILER-DAEMON@dave.test\r\nTo: <{srs}>\r\n"
              f"Subject: Undelivered Mail Returned to Sender\r\n\r\n"
              f"bounced\r\n").encode()
    with smtplib.SMTP(BEN_IP, w.port, local_hostname="mx.dave.test",
                      source_address=(DAVE_IP, 0),
                      timeout=10 * SLOW) as s:
        assert s.sendmail("", [srs], bounce) == {}
    [b] = wait_for(lambda: stored(w.claire.state_dir, CLAIRE),
                   "the bounce at Claire")
    assert b.return_path == "" and b.data.endswith(bounce)


def test_arc_seal_off(ternd, dnsmasq):
    """arc.seal = no: forwarded, SRS, but no ARC set (Dave: arc=none)."""
    w = World(ternd, dnsmasq, {"arc.seal": "no"})
    w.submit([FWD], msg("unsealed", to=FWD))
    [d] = wait_for(lambda: stored(w.dave.state_dir, DAVE),
                   "the forwarded message at Dave")
    assert b"ARC-Seal" not in d.data
    r = results(raw_field(d.data, "Authentication-Results", "mx.dave.test"))
    assert r["arc"][0] == "none" and r["dmarc"][0] == "pass", r


def test_forwarded_with_forged_authres_sealed(world):
    """A forged A-R under Ben's name is left out of the stored copy (the
    content goes to the store in pieces); the seal covers what is stored."""
    w = world
    content = (b"Authentication-Results: mx.ben.test; dkim=pass "
               b"header.d=bank.test; dmarc=pass\r\n"
               b"From: <news@elsewhere.test>\r\nTo: <fwd@ben.test>\r\n"
               b"Subject: pieces\r\n\r\nnot from the bank\r\n")
    assert w.forger("news@elsewhere.test", [FWD], content) == {}
    [d] = wait_for(lambda: stored(w.dave.state_dir, DAVE),
                   "the forwarded message at Dave")
    assert b"header.d=bank.test" not in d.data
    assert "event=authres_removed fields=1" in w.ben.log()
    r = results(raw_field(d.data, "Authentication-Results", "mx.dave.test"))
    assert r["arc"][0] == "pass", r
    cv, res, why = dkim.arc_verify(d.data, dnsfunc=w.dnsfunc)
    assert cv == dkim.CV_Pass, (cv, res, why)


def list_key():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    import base64
    k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    priv = k.private_bytes(serialization.Encoding.PEM,
                           serialization.PrivateFormat.TraditionalOpenSSL,
                           serialization.NoEncryption())
    pub = base64.b64encode(k.public_key().public_bytes(
        serialization.Encoding.DER,
        serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
    rec = "v=DKIM1; k=rsa; p=" + pub
    return priv, {"l1._domainkey.list.test":
                  [rec[i:i + 200] for i in range(0, len(rec), 200)]}


def list_sealed(priv, frm, subject):
    m = (f"Authentication-Results: lists.list.test; spf=pass "
         f"smtp.mailfrom=talk-bounces@list.test\r\n"
         f"From: <{frm}>\r\nTo: <talk@list.test>\r\n"
         f"Subject: [talk] {subject}\r\nMessage-ID: <{subject}@list.test>"
         f"\r\n\r\nthrough the list\r\n").encode()
    sealed = b"".join(dkim.arc_sign(m, b"l1", b"list.test", priv,
                                    b"lists.list.test")) + m
    assert sealed.startswith(b"ARC-Seal: i=1;"), sealed[:200]
    return sealed


def test_chain_from_a_list_extended(ternd, dnsmasq):
    """A message a list (list.test, sealed by dkimpy) sends to the alias:
    Ben validates the chain (arc=pass), adds instance 2 with cv=pass, and
    Dave and dkimpy validate both sets.  A passing chain does not save a
    message whose From domain's DMARC fails (reported only)."""
    priv, zone = list_key()
    w = World(ternd, dnsmasq, zone=zone)
    # the list kept claire.test in From: DMARC fails, ARC does not help
    with pytest.raises(smtplib.SMTPDataError) as e:
        w.forger("talk-bounces@list.test", [FWD],
                 list_sealed(priv, CLAIRE, "kept-from"))
    assert e.value.smtp_code == 550, e.value
    assert re.search(r"event=auth ip=127\.0\.0\.9 spf=none dkim=none "
                     r"dkim_skipped=0 arc=pass dmarc=fail "
                     r"from_domain=claire\.test .*action=reject ",
                     w.ben.log()), w.ben.log()[-3000:]
    # a list that writes its own From (no DMARC record there): forwarded
    assert w.forger("talk-bounces@list.test", [FWD],
                    list_sealed(priv, "talk@list.test", "hello")) == {}
    [d] = wait_for(lambda: stored(w.dave.state_dir, DAVE),
                   "the forwarded message at Dave")
    fields = unfolded(d.data)
    seals = [f for f in fields if f.startswith("ARC-Seal:")]
    assert len(seals) == 2 and re.search(r"\bi=2;", seals[0]), seals
    assert "cv=pass" in seals[0] and "d=ben.test" in seals[0], seals
    assert "event=arc_sealed d=ben.test s=b1 cv=pass" in w.ben.log()
    r = results(raw_field(d.data, "Authentication-Results", "mx.dave.test"))
    assert r["arc"] == ("pass", f"header.oldest-pass=0 "
                                f"smtp.remote-ip={OUT_IP}"), r
    cv, res, why = dkim.arc_verify(d.data, dnsfunc=w.dnsfunc)
    assert cv == dkim.CV_Pass and len(res) == 2, (cv, res, why)


def test_broken_chain_reported_not_acted_on(ternd, dnsmasq):
    """A chain whose body was changed after the seal is arc=fail at Ben;
    the message is still delivered (ARC is reported only) and a forward
    of it is sealed cv=fail."""
    priv, zone = list_key()
    w = World(ternd, dnsmasq, zone=zone)
    m = (b"Authentication-Results: lists.list.test; spf=pass "
         b"smtp.mailfrom=x@list.test\r\n"
         b"From: <x@list.test>\r\nTo: <talk@list.test>\r\n"
         b"Subject: changed\r\n\r\noriginal body\r\n")
    sealed = b"".join(dkim.arc_sign(m, b"l1", b"list.test", priv,
                                    b"lists.list.test")) + m
    sealed = sealed.replace(b"original body", b"altered body")
    assert w.forger("x@list.test", [BEN, FWD], sealed) == {}
    [d] = wait_for(lambda: stored(w.dave.state_dir, DAVE),
                   "the forwarded message at Dave")
    [b] = stored(w.ben.state_dir, BEN)
    r = results(raw_field(b.data, "Authentication-Results", "mx.ben.test"))
    assert r["arc"][0] == "fail", r
    assert "event=arc_sealed d=ben.test s=b1 cv=fail" in w.ben.log()
    # Ben's local copy shares the stored head: the seal is on it too
    assert b"ARC-Seal: i=2; cv=fail" in b.data.replace(b"\r\n\t", b" ")
    r = results(raw_field(d.data, "Authentication-Results", "mx.dave.test"))
    assert r["arc"][0] == "fail", r


def test_arc_verify_off_no_seal(ternd, dnsmasq):
    """arc.verify = no: no arc= resinfo, "arc=-" in the log, and no seal
    (the seal's cv would be unknown)."""
    w = World(ternd, dnsmasq, {"arc.verify": "no"})
    w.submit([FWD], msg("unverified", to=FWD))
    [d] = wait_for(lambda: stored(w.dave.state_dir, DAVE),
                   "the forwarded message at Dave")
    assert b"ARC-Seal" not in d.data
    assert re.search(r"event=auth ip=\S+ spf=pass dkim=pass\(d=claire\.test\) "
                     r"dkim_skipped=0 arc=- dmarc=pass", w.ben.log()), \
        w.ben.log()[-3000:]
    ben_ar = raw_field(d.data, "Authentication-Results", "mx.ben.test")
    assert not re.search(r"\barc=", ben_ar), ben_ar


def test_seal_key_of_first_domain_without_srs_key(ternd, dnsmasq):
    """srs.domain has no key: the first of domains with one seals."""
    w = World(ternd, dnsmasq, {"srs.domain": "bounces.ben.test"})
    w.submit([FWD], msg("fallback", to=FWD))
    [d] = wait_for(lambda: stored(w.dave.state_dir, DAVE),
                   "the forwarded message at Dave")
    assert d.return_path.endswith("@bounces.ben.test"), d.return_path
    seal = [f for f in unfolded(d.data) if f.startswith("ARC-Seal:")]
    assert len(seal) == 1 and "d=ben.test" in seal[0], seal
    r = results(raw_field(d.data, "Authentication-Results", "mx.dave.test"))
    assert r["arc"][0] == "pass" and r["dmarc"][0] == "pass", r
