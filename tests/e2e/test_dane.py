"""DANE for outbound MX delivery (RFC 7672) with real components: zones
signed by the suite (ldns-signzone) served by nsd, unbound validating them
with the suite's trust anchor, and a receiving ternd whose certificate the
suite makes.  The sending ternd has dns.dnssec = yes and dns.servers =
that unbound.  Each outcome is checked in the sender's log (tls_policy=,
verified=, tlsrpt_result=), in the receiver's Maildir, and for deferred
mail in `tern queue show`.

Zones (PORT is the receiver's port: relay.port, so the TLSA owner is
_PORT._tcp.<mx>):
  dane.test (signed)
    good    MX mx-good    TLSA 3 1 1 <receiver's key>
    bad     MX mx-bad     TLSA 3 1 1 <another key>
    notls   MX mx-notls   TLSA 3 1 1 <receiver's key>, but the host at
                          127.0.0.3 offers no STARTTLS
    bogus   MX mx-bogus   TLSA 3 1 1 <receiver's key>, changed after signing
    unk     MX mx-unk     TLSA 4 1 1 and 0 0 1: unusable records only
    broken  MX mx-bad     (the [tls_policy] override case)
    ta      MX mx-ta      TLSA 2 0 1 <the CA that issued the receiver's
                          certificate, for mx-ta.dane.test>
    tawrong MX mx-tawrong TLSA 2 0 1 <the same CA>: the certificate does
                          not name mx-tawrong nor tawrong.dane.test
    rtls2   MX 10 mx-opp, MX 20 mx-good: mx-opp (127.0.0.1, B again) has
                          no TLSA records, so it is not authenticated
    rtlsno  MX 10 mx-opp, MX 20 mx-opp2: neither has TLSA records
    rtlsdown MX 10 mx-opp, MX 20 mx-down: mx-down (127.0.0.9) takes no
                          connection
  plain.test (not signed)
    @       MX mx.plain.test
"""
import re
import smtplib
import ssl

import pytest

from conftest import SLOW, maildir_messages, wait_for
from fakepeer import FakePeer
from dnssec import SignedDNS, make_ca_cert, spki_digest

SENDER = "claire@sender.test"
NOTLS_IP = "127.0.0.3"
DOMAINS = ("good.dane.test", "bad.dane.test", "notls.dane.test",
           "bogus.dane.test", "unk.dane.test", "broken.dane.test",
           "ta.dane.test", "tawrong.dane.test", "plain.test",
           "rtls2.dane.test", "rtlsno.dane.test", "rtlsdown.dane.test")
OTHER_KEY = "ab" * 32


def rcpt(domain):
    return f"ben@{domain}"


class PlainPeer(FakePeer):
    """An SMTP server on ip:port that offers no STARTTLS and would take any
    message: if tern sent one in plaintext, self.messages has it."""

    def __init__(self, ip, port):
        super().__init__(backlog=8, addr=ip, port=port)
        self.sessions = 0
        self.messages = []

    def session(self, s):
        self.sessions += 1
        f = s.makefile("rb")
        s.sendall(b"220 mx-notls.dane.test ESMTP\r\n")
        data = None
        for line in f:
            if data is not None:
                if line == b".\r\n":
                    self.messages.append(b"".join(data))
                    data = None
                    s.sendall(b"250 2.0.0 ok\r\n")
                else:
                    data.append(line)
                continue
            cmd = line[:4].upper()
            if cmd == b"EHLO":
                s.sendall(b"250-mx-notls.dane.test\r\n250 8BITMIME\r\n")
            elif cmd == b"DATA":
                data = []
                s.sendall(b"354 go on\r\n")
            elif cmd == b"QUIT":
                s.sendall(b"221 2.0.0 bye\r\n")
                return
            else:
                s.sendall(b"250 2.0.0 ok\r\n")



@pytest.fixture(scope="module")
def world(ternd_module, tmp_path_factory):
    """The signed DNS, the receiving ternd (B) and the plaintext peer."""
    d = tmp_path_factory.mktemp("dane")
    # the receiver's certificate: issued by a CA of the suite's (DANE-TA)
    # for mx.dane.test and mx-ta.dane.test, its key pinned by DANE-EE
    cert, key, ca = make_ca_cert(d, ["mx.dane.test", "mx-ta.dane.test"])
    spki = spki_digest(cert)
    b = ternd_module({"hostname": "mx.dane.test",
                      "domains": ",".join(DOMAINS),
                      "tls.cert": str(cert), "tls.key": str(key)},
                     users=tuple(rcpt(x) for x in DOMAINS), state="B",
                     start=False)
    p = b.port

    def mx(name, host, ip, *tlsa):
        recs = [f"{name} IN MX 10 {host}", f"{host} IN A {ip}"]
        recs += [f"_{p}._tcp.{host} IN TLSA {t}" for t in tlsa]
        return recs

    recs = (mx("good", "mx-good", "127.0.0.1", f"3 1 1 {spki}")
            + mx("bad", "mx-bad", "127.0.0.1", f"3 1 1 {OTHER_KEY}")
            + mx("notls", "mx-notls", NOTLS_IP, f"3 1 1 {spki}")
            + mx("bogus", "mx-bogus", "127.0.0.1", f"3 1 1 {spki}")
            + mx("unk", "mx-unk", "127.0.0.1", f"4 1 1 {spki}",
                 f"0 0 1 {spki}")
            + mx("ta", "mx-ta", "127.0.0.1", f"2 0 1 {ca}")
            + mx("tawrong", "mx-tawrong", "127.0.0.1", f"2 0 1 {ca}")
            + ["broken IN MX 10 mx-bad",
               "mx-opp IN A 127.0.0.1", "mx-opp2 IN A 127.0.0.1",
               "rtls2 IN MX 10 mx-opp", "rtls2 IN MX 20 mx-good",
               "rtlsno IN MX 10 mx-opp", "rtlsno IN MX 20 mx-opp2",
               "mx-down IN A 127.0.0.9",
               "rtlsdown IN MX 10 mx-opp", "rtlsdown IN MX 20 mx-down"])
    dns = SignedDNS(d / "dns")
    dns.zone("dane.test", recs, tamper={
        f"_{p}._tcp.mx-bogus TLSA 3 1 1 {spki}":
            f"_{p}._tcp.mx-bogus TLSA 3 1 1 {OTHER_KEY}"})
    dns.zone("plain.test", ["@ IN MX 10 mx.plain.test.",
                            "mx IN A 127.0.0.1"], signed=False)
    dns.start()
    peer = PlainPeer(NOTLS_IP, p)
    peer.start()
    b.start()
    yield dns, b, peer
    peer.close()
    dns.stop()


def sender(ternd, world, **extra):
    dns, b, _ = world
    over = {"hostname": "mx.sender.test", "domains": "sender.test",
            "relay.networks": "127.0.0.0/8", "dns.servers": dns.server,
            "dns.dnssec": "yes", "relay.port": str(b.port),
            "queue.retry_first": "60", "queue.retry_max": "60"}
    over.update(extra)
    return ternd(over, users=())


def msg(tag, to):
    return (f"From: <{SENDER}>\r\nTo: <{to}>\r\nSubject: {tag}\r\n"
            f"Message-ID: <{tag}@sender.test>\r\n\r\nDANE test {tag}.\r\n"
            ).encode()


def send(a, domain, tag):
    rep = a.send_raw(SENDER, [rcpt(domain)], msg(tag, rcpt(domain)))
    assert rep.code == 250, rep


def delivered(a, b, domain, tag):
    """The message in B's Maildir, and A's delivered log line."""
    def found():
        for m in maildir_messages(b.state_dir, rcpt(domain)):
            if f"Subject: {tag}".encode() in m.data:
                return m
        return None
    m = wait_for(found, f"{tag} delivered to {domain}")
    line = wait_for(lambda: log_line(a, rf"event=delivered to=<{re.escape(rcpt(domain))}>"),
                    "the delivered line")
    return m, line


def log_line(a, pattern):
    for line in a.log().splitlines():
        if re.search(pattern, line):
            return line
    return None


def deferred(a):
    """The one queued message once its first attempt failed."""
    def attempt():
        ms = a.queue_list()
        if len(ms) != 1:
            return None
        [r] = ms[0]["recipients"]
        return ms[0] if r.get("attempts", 0) >= 1 else None
    return wait_for(attempt, "a failed attempt")


def show(a, m):
    return a.tern("queue", "show", m["id"]).stdout.decode()


# ---------------------------------------------------------------------------

def test_dane_ee_match_is_delivered_verified(ternd, world):
    _, b, _ = world
    a = sender(ternd, world)
    send(a, "good.dane.test", "good")
    m, line = delivered(a, b, "good.dane.test", "good")
    assert "verified=yes tls_policy=dane" in line, line
    tls = log_line(a, r"event=tls version=")
    assert "verified=yes tls_policy=dane dane=dane-ee" in tls, tls
    assert b"with ESMTPS" in m.data


def test_dane_ta_with_the_mx_name_is_delivered_verified(ternd, world):
    _, b, _ = world
    a = sender(ternd, world)
    send(a, "ta.dane.test", "ta")
    m, line = delivered(a, b, "ta.dane.test", "ta")
    assert "verified=yes tls_policy=dane" in line, line
    tls = log_line(a, r"event=tls version=")
    assert "dane=dane-ta" in tls, tls


def test_dane_ta_name_mismatch_stays_queued(ternd, world):
    """DANE-TA checks names (RFC 7672 3.2.2): a chain to the right anchor
    for another host name is not enough."""
    _, b, _ = world
    a = sender(ternd, world)
    send(a, "tawrong.dane.test", "tawrong")
    m = deferred(a)
    assert "[tls_policy=dane verified=no]" in show(a, m)
    line = log_line(a, r"event=tls status=failed")
    assert "tlsrpt_result=certificate-host-mismatch" in line, line
    assert maildir_messages(b.state_dir, rcpt("tawrong.dane.test")) == []


def test_dane_mismatch_stays_queued(ternd, world):
    _, b, _ = world
    a = sender(ternd, world)
    send(a, "bad.dane.test", "bad")
    m = deferred(a)
    out = show(a, m)
    assert "451 4.7.5" in out and "[tls_policy=dane verified=no]" in out, out
    line = log_line(a, r"event=tls status=failed")
    assert "verified=no tls_policy=dane tlsrpt_result=validation-failure" \
        in line, line
    assert maildir_messages(b.state_dir, rcpt("bad.dane.test")) == []


def test_dane_without_starttls_stays_queued(ternd, world):
    _, _, peer = world
    a = sender(ternd, world)
    send(a, "notls.dane.test", "notls")
    m = deferred(a)
    assert "[tls_policy=dane verified=no]" in show(a, m)
    line = log_line(a, r"event=session_failed")
    assert "tlsrpt_result=starttls-not-supported" in line, line
    assert "TLS is required" in line, line
    assert peer.sessions >= 1 and peer.messages == []


def test_unsigned_zone_is_opportunistic(ternd, world):
    _, b, _ = world
    a = sender(ternd, world)
    send(a, "plain.test", "plain")
    m, line = delivered(a, b, "plain.test", "plain")
    # the receiver's self-signed certificate: encrypted, not verified
    assert "verified=no tls_policy=opportunistic" in line, line
    assert b"with ESMTPS" in m.data


def test_bogus_tlsa_stays_queued(ternd, world):
    _, b, _ = world
    a = sender(ternd, world)
    send(a, "bogus.dane.test", "bogus")
    m = deferred(a)
    out = show(a, m)
    assert "451 4.7.5" in out and "TLSA lookup" in out, out
    line = log_line(a, r"event=tls_policy status=deferred")
    assert "verified=no tls_policy=dane tlsrpt_result=dnssec-invalid" \
        in line, line
    # the host was not even contacted
    assert log_line(a, r"mx=mx-bogus\.dane\.test addr=127") is None
    assert maildir_messages(b.state_dir, rcpt("bogus.dane.test")) == []


def test_unusable_tlsa_only_is_encrypted_unauthenticated(ternd, world):
    _, b, _ = world
    a = sender(ternd, world)
    send(a, "unk.dane.test", "unk")
    m, line = delivered(a, b, "unk.dane.test", "unk")
    assert "verified=no tls_policy=dane" in line, line
    assert b"with ESMTPS" in m.data


def test_override_may_for_a_broken_domain(ternd, world):
    _, b, _ = world
    a = sender(ternd, world, **{"tls_policy.broken.dane.test": "may"})
    send(a, "broken.dane.test", "broken")
    m, line = delivered(a, b, "broken.dane.test", "broken")
    assert "verified=no tls_policy=override" in line, line
    tls = log_line(a, r"event=tls version=")
    assert re.search(r"verified=no verify_error=\"[^\"]*\" "
                     r"tls_policy=override tls_level=may$", tls), tls


def test_override_dane_only_defers_without_tlsa(ternd, world):
    _, b, _ = world
    a = sender(ternd, world, **{"tls_policy.plain.test": "dane-only"})
    send(a, "plain.test", "daneonly")
    m = deferred(a)
    assert "[tls_policy=override verified=no]" in show(a, m)
    line = log_line(a, r"event=tls_policy status=deferred")
    assert "tlsrpt_result=dane-required" in line, line


def test_without_dnssec_no_dane(ternd, world):
    """dns.dnssec = no: the AD bit is not trusted, TLSA not asked: the bad
    record does not matter and delivery is opportunistic."""
    _, b, _ = world
    a = sender(ternd, world, **{"dns.dnssec": "no"})
    send(a, "bad.dane.test", "nodnssec")
    m, line = delivered(a, b, "bad.dane.test", "nodnssec")
    assert "verified=no tls_policy=opportunistic" in line, line


def test_resolver_without_ad_bit_is_insecure(ternd, world):
    """A resolver that gives no AD bit (here nsd itself, authoritative and
    not validating: the same as one that strips it) makes every answer
    insecure: no DANE, opportunistic delivery, even to the host whose TLSA
    record does not match."""
    dns, b, _ = world
    a = sender(ternd, world,
               **{"dns.servers": f"127.0.0.1:{dns.nsd_port}"})
    send(a, "bad.dane.test", "noad")
    m, line = delivered(a, b, "bad.dane.test", "noad")
    assert "verified=no tls_policy=opportunistic" in line, line


@pytest.mark.parametrize("servers", ["192.0.2.53", "127.0.0.1:53,10.0.0.1",
                                     None])
def test_dnssec_needs_a_loopback_resolver(ternd, servers):
    over = {"dns.dnssec": "yes"}
    if servers is not None:
        over["dns.servers"] = servers
    t = ternd(over, start=False)
    import subprocess
    r = subprocess.run(t.argv(), capture_output=True, timeout=30 * SLOW,
                       cwd=str(t.state_dir))
    assert r.returncode != 0
    err = (r.stdout + r.stderr).decode()
    assert "dns.dnssec = yes" in err, err
    assert ("not on loopback" in err) if servers else \
        ("needs dns.servers" in err), err


# ---------------------------------------------------------------------------
# REQUIRETLS (RFC 8689) over DANE: a hop DANE authenticated counts as
# verified under a policy, an opportunistic one does not

def send_requiretls(a, domain, tag):
    """STARTTLS to A's MX port (relay.networks lets 127.0.0.1 relay), then
    MAIL FROM:<claire> REQUIRETLS to ben@domain."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE     # A's own certificate is self-signed
    with smtplib.SMTP("127.0.0.1", a.port, local_hostname="client.test",
                      timeout=10 * SLOW) as s:
        s.starttls(context=ctx)
        s.ehlo("client.test")
        assert s.has_extn("requiretls"), s.esmtp_features
        code, text = s.mail(SENDER, ["REQUIRETLS"])
        assert code == 250, (code, text)
        code, text = s.rcpt(rcpt(domain))
        assert code == 250, (code, text)
        code, text = s.data(msg(tag, rcpt(domain)))
        assert code == 250, (code, text)


def test_requiretls_relayed_to_a_dane_authenticated_hop(ternd, world):
    _, b, _ = world
    a = sender(ternd, world)
    send_requiretls(a, "good.dane.test", "rtls-dane")
    m, line = delivered(a, b, "good.dane.test", "rtls-dane")
    assert "verified=yes tls_policy=dane" in line, line
    # B, the next hop, got REQUIRETLS with MAIL FROM and kept it
    assert re.search(r"event=delivered from=<claire@sender\.test> "
                     r"to=<ben@good\.dane\.test> .*requiretls=yes",
                     b.log()), b.log()[-3000:]


def test_requiretls_not_relayed_to_an_opportunistic_hop(ternd, world):
    """plain.test is not signed: its MX host (B, which offers STARTTLS and
    REQUIRETLS) is not authenticated by any policy, so the message is
    returned with 5.7.10 and B never sees it."""
    _, b, _ = world
    a = sender(ternd, world)
    send_requiretls(a, "plain.test", "rtls-plain")
    line = wait_for(lambda: log_line(a, r"event=bounced to=<ben@plain\.test>"),
                    "the bounce of the REQUIRETLS message")
    assert "enh=5.7.10" in line, line
    assert not any(b"rtls-plain" in m.data for m in
                   maildir_messages(b.state_dir, rcpt("plain.test")))


def test_requiretls_tries_the_next_mx_host(ternd, world):
    """RFC 8689 4.2.1: the first MX host (no TLSA records: its TLS is not
    verified under a policy) fails the check; the client QUITs and the
    message goes to the second host, DANE-authenticated, instead of back
    to the sender."""
    _, b, _ = world
    a = sender(ternd, world)
    send_requiretls(a, "rtls2.dane.test", "rtls-next")
    m, line = delivered(a, b, "rtls2.dane.test", "rtls-next")
    assert re.search(r"mx=mx-good\.dane\.test .*verified=yes "
                     r"tls_policy=dane", line), line
    refused = log_line(a, r"mx=mx-opp\.dane\.test .*event=requiretls "
                          r"status=refused")
    assert refused is not None and "enh=5.7.10 action=next_host" in refused, \
        a.log()[-3000:]
    assert log_line(a, r"event=bounced") is None
    assert re.search(r"to=<ben@rtls2\.dane\.test> .*requiretls=yes",
                     b.log()), b.log()[-3000:]


def test_requiretls_returned_only_when_every_mx_host_refuses(ternd, world):
    """Both MX hosts fail the check: each is tried, then the message is
    returned with 5.7.10, and neither got it."""
    _, b, _ = world
    a = sender(ternd, world)
    send_requiretls(a, "rtlsno.dane.test", "rtls-none")
    line = wait_for(lambda: log_line(
        a, r"event=bounced to=<ben@rtlsno\.dane\.test>"),
        "the bounce of the REQUIRETLS message")
    assert "enh=5.7.10" in line and "mx-opp2.dane.test" in line, line
    assert log_line(a, r"mx=mx-opp\.dane\.test .*event=requiretls "
                       r"status=refused enh=5\.7\.10 action=next_host")
    assert log_line(a, r"mx=mx-opp2\.dane\.test .*event=requiretls "
                       r"status=refused enh=5\.7\.10 action=none_left")
    assert not any(b"rtls-none" in m.data for m in
                   maildir_messages(b.state_dir, rcpt("rtlsno.dane.test")))


def test_requiretls_stays_queued_while_a_host_was_not_reached(ternd, world):
    """The first host refuses, the second cannot be reached: that one may
    meet the requirement later, so the message waits (451, the refusal
    named) instead of being returned."""
    a = sender(ternd, world)
    send_requiretls(a, "rtlsdown.dane.test", "rtls-down")
    m = deferred(a)
    out = show(a, m)
    assert "451 4.4.1" in out and "REQUIRETLS refused by 1 MX host" in out, \
        out
    assert log_line(a, r"mx=mx-opp\.dane\.test .*event=requiretls "
                       r"status=refused enh=5\.7\.10 action=next_host")
    assert log_line(a, r"event=bounced") is None
