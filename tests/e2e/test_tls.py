"""TLS: the self-signed default, STARTTLS on the MX and submission ports,
implicit TLS, versions, STARTTLS command injection, openssl s_client."""

import re
import ssl
import stat
import subprocess
import time

import pytest

from conftest import (HOSTNAME, SLOW, SMTPClient, check, check_received,
                      ehlo_keywords,
                      require, submit_ternd, tls_client_context)

OPENSSL = "/usr/bin/openssl"


@pytest.fixture(scope="module")
def t(ternd_module):
    return submit_ternd(ternd_module, implicit=True)


def ports(t):
    """(name, port) of the two STARTTLS ports."""
    return [("smtp", t.port), ("submission", t.sub_port)]


# -- the certificate ----------------------------------------------------------

def test_selfsigned_certificate_generated(ternd):
    t = submit_ternd(ternd)
    log = t.log()
    assert re.search(r"event=tls_selfsigned\b.*\bhostname=mx\.test\b", log), log
    # listen.submissions is off unless set
    assert "listener=submissions" not in log, log
    tls = t.state_dir / "tls"
    cert, key = tls / "cert.pem", tls / "key.pem"
    assert cert.is_file() and key.is_file(), list(tls.iterdir())
    assert stat.S_IMODE(key.stat().st_mode) == 0o600, oct(key.stat().st_mode)
    assert stat.S_IMODE(tls.stat().st_mode) == 0o700, oct(tls.stat().st_mode)
    # the certificate names the hostname, in CN and subjectAltName
    require(OPENSSL, "openssl")
    r = subprocess.run([OPENSSL, "x509", "-in", str(cert), "-noout", "-subject",
                        "-ext", "subjectAltName"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert re.search(r"CN ?= ?mx\.test\b", r.stdout), r.stdout
    assert "DNS:mx.test" in r.stdout, r.stdout
    # it is the one served on every port
    pem = cert.read_text()
    der = ssl.PEM_cert_to_DER_cert(pem[pem.index("-----BEGIN CERTIFICATE-----"):])
    with SMTPClient(t.sub_port) as c:
        c.ehlo()
        c.starttls()
        assert c.sock.getpeercert(binary_form=True) == der
    with SMTPClient(t.port) as c:
        c.ehlo()
        c.starttls()
        assert c.sock.getpeercert(binary_form=True) == der
    # a restart reuses it
    assert t.stop() == 0
    t.start()
    assert t.log().count("event=tls_selfsigned") == 1, t.log()
    assert cert.read_text() == pem


# -- STARTTLS -----------------------------------------------------------------

@pytest.mark.parametrize("which", ["smtp", "submission"])
def test_starttls_offered_then_not(t, which):
    port = dict(ports(t))[which]
    with SMTPClient(port) as c:
        kw = ehlo_keywords(c.ehlo())
        assert "STARTTLS" in kw, kw
        assert "AUTH" not in kw, f"AUTH offered before TLS on {which}: {kw}"
        c.starttls()
        assert c.sock.version() in ("TLSv1.2", "TLSv1.3"), c.sock.version()
        kw = ehlo_keywords(c.ehlo())
        assert "STARTTLS" not in kw, f"STARTTLS offered under TLS: {kw}"
        if which == "submission":
            assert "AUTH" in kw and {"PLAIN", "LOGIN"} <= set(kw["AUTH"]), kw
        else:
            assert "AUTH" not in kw, f"AUTH offered on the MX port: {kw}"
        for k in ("PIPELINING", "SIZE", "8BITMIME", "ENHANCEDSTATUSCODES"):
            assert k in kw, kw
        # a second STARTTLS is refused and the session goes on
        r = c.cmd("STARTTLS")
        assert 500 <= r.code < 600, r
        c.expect("NOOP", 250)


@pytest.mark.parametrize("which", ["smtp", "submission"])
def test_starttls_forgets_state(t, which):
    port = dict(ports(t))[which]
    with SMTPClient(port) as c:
        c.ehlo()
        if which == "smtp":
            c.expect("MAIL FROM:<dave@example.net>", 250)
            # not inside a transaction (as Postfix): RSET first
            c.expect("STARTTLS", 503, "5.5.1")
            c.expect("RSET", 250)
        else:
            c.expect("MAIL FROM:<claire@example.org>", 530, "5.7.0")
        c.starttls()
        # RFC 3207 4.2: back to the state after the greeting
        c.expect("MAIL FROM:<dave@example.net>", 503, "5.5.1")
        c.expect("RCPT TO:<ben@example.org>", 503, "5.5.1")
        c.ehlo()
        c.expect("RCPT TO:<ben@example.org>", 503, "5.5.1")


def test_starttls_without_ehlo(t):
    """RFC 3207 does not ask for EHLO before STARTTLS, and tern does not
    either (docs/tls-auth.md): 220, the handshake, and then the session
    starts over, so EHLO is still needed before MAIL."""
    for port in (t.port, t.sub_port):
        with SMTPClient(port) as c:
            check(c.cmd("STARTTLS"), 220, "2.0.0", "STARTTLS before EHLO")
            c.tls_handshake()
            assert c.sock.version() in ("TLSv1.2", "TLSv1.3"), c.sock.version()
            c.expect("MAIL FROM:<dave@example.net>", 503, "5.5.1")
            kw = ehlo_keywords(c.ehlo())
            assert "STARTTLS" not in kw, kw
            check(c.cmd("STARTTLS"), 502, "5.5.1", "STARTTLS under TLS")
            c.expect("QUIT", 221)


def test_starttls_with_parameter_501(t):
    with SMTPClient(t.port) as c:
        c.ehlo()
        c.expect("STARTTLS now", 501, "5.5.4")
        c.expect("NOOP", 250)


@pytest.mark.parametrize("which", ["smtp", "submission"])
def test_starttls_pipelined_plaintext_discarded(t, which):
    """CVE-2011-0411 class: "STARTTLS\\r\\nNOOP\\r\\n" in one segment; the
    NOOP is clear text injected before TLS and must never be answered."""
    port = dict(ports(t))[which]
    before = t.log().count("event=starttls_injection")
    with SMTPClient(port) as c:
        c.ehlo()
        c.send(b"STARTTLS\r\nNOOP\r\n")
        r = c.reply()
        check(r, 220, what="STARTTLS")
        assert c.buf == b"", f"more clear text after 220: {c.buf!r}"
        c.tls_handshake()
        # nothing may arrive inside TLS before the client speaks
        c.no_reply(1.0 * SLOW)
        kw = ehlo_keywords(c.ehlo())
        assert "STARTTLS" not in kw, kw
        c.expect("NOOP", 250)
        c.expect("QUIT", 221)
    deadline = time.monotonic() + 3 * SLOW
    while t.log().count("event=starttls_injection") <= before:
        assert time.monotonic() < deadline, "no event=starttls_injection logged"
        time.sleep(0.05)


def test_starttls_injection_of_mail_commands(t):
    """A whole injected transaction after STARTTLS is not executed."""
    before = set(t.files("ben@example.org"))
    with SMTPClient(t.port) as c:
        c.ehlo()
        c.send(b"STARTTLS\r\nMAIL FROM:<dave@example.net>\r\n"
               b"RCPT TO:<ben@example.org>\r\nDATA\r\nSubject: x\r\n\r\n"
               b"injected\r\n.\r\n")
        check(c.reply(), 220, what="STARTTLS")
        c.tls_handshake()
        c.no_reply(0.5 * SLOW)
        c.ehlo()
        c.expect("RCPT TO:<ben@example.org>", 503, "5.5.1")
        c.expect("QUIT", 221)
    assert set(t.files("ben@example.org")) == before


def test_tls_received_header_esmtps(t):
    """Mail that came over STARTTLS on the MX port: "with ESMTPS (version=..
    cipher=..)" (RFC 3848) and the message itself untouched."""
    before = set(t.files("ben@example.org"))
    msg = b"Subject: over tls\r\n\r\nencrypted\r\n"
    with SMTPClient(t.port) as c:
        c.ehlo()
        c.starttls()
        c.ehlo()
        c.expect("MAIL FROM:<dave@example.net>", 250)
        c.expect("RCPT TO:<ben@example.org>", 250)
        c.expect("DATA", 354)
        c.send(msg + b".\r\n")
        check(c.reply(), 250)
        version, cipher = c.sock.version(), c.sock.cipher()[0]
        c.expect("QUIT", 221)
    [d] = [d for d in t.messages("ben@example.org") if d.path not in before]
    r = check_received(d, helo="client.test", rcpt="ben@example.org",
                       proto="ESMTPS")
    # RFC 3848's ESMTPS, and what was negotiated in a comment after it
    assert r.get("with")[1] == (f"version={version} cipher={cipher}",), r
    assert d.body == msg


# -- versions -------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_old_tls_versions_refused(t, version):
    v = getattr(ssl.TLSVersion, version)
    ctx = tls_client_context(v, v)
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    with SMTPClient(t.port) as c:
        c.ehlo()
        with pytest.raises(ssl.SSLError) as e:
            c.starttls(ctx)
        assert "PROTOCOL_VERSION" in str(e.value).upper() or \
            "protocol version" in str(e.value), e.value
    with SMTPClient(t.subs_port, greet=False) as c:
        with pytest.raises(ssl.SSLError):
            c.tls_handshake(ctx)


@pytest.mark.parametrize("version", ["TLSv1_2", "TLSv1_3"])
def test_tls12_and_13_accepted(t, version):
    v = getattr(ssl.TLSVersion, version)
    with SMTPClient(t.sub_port) as c:
        c.ehlo()
        c.starttls(tls_client_context(v, v))
        assert c.sock.version() == version.replace("_", "."), c.sock.version()
        c.ehlo()
    with SMTPClient(t.subs_port, greet=False) as c:
        c.tls_handshake(tls_client_context(v, v))
        check(c.reply(), 220)


# -- implicit TLS ---------------------------------------------------------------

def test_implicit_tls_greeting_and_ehlo(t):
    with t.subs_client() as c:
        assert re.match(r"^220 mx\.test ESMTP( |$)", c.greeting.lines[0]), c.greeting
        kw = ehlo_keywords(c.ehlo())
        assert "STARTTLS" not in kw, kw
        assert "AUTH" in kw and {"PLAIN", "LOGIN"} <= set(kw["AUTH"]), kw
        r = c.cmd("STARTTLS")
        assert 500 <= r.code < 600, f"STARTTLS under implicit TLS: {r!r}"
        c.expect("QUIT", 221)


def test_implicit_tls_port_says_nothing_in_clear(t):
    """The handshake comes first: a clear-text client gets no greeting."""
    with SMTPClient(t.subs_port, greet=False) as c:
        c.no_reply(0.7 * SLOW)
        c.send(b"EHLO client.test\r\n")
        try:
            data = c.sock.recv(4096)
        except OSError:
            data = b""
        assert not data.startswith(b"220") and not data.startswith(b"250"), data


def test_quit_ends_tls_with_close_notify(t):
    """RFC 8446 6.1: after 221 the server closes TLS with close_notify (an
    OpenSSL 3 client otherwise reports "unexpected eof")."""
    for port, implicit in ((t.subs_port, True), (t.sub_port, False)):
        ctx = tls_client_context()
        ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF
        with SMTPClient(port, greet=implicit is False) as c:
            if implicit:
                c.tls_handshake(ctx)
                check(c.reply(), 220)
            else:
                c.ehlo()
                c.starttls(ctx)
            c.ehlo()
            c.expect("QUIT", 221)
            try:
                rest = c.sock.recv(100)
            except ssl.SSLError as e:
                pytest.fail(f"port {port}: no close_notify after 221: {e}")
            assert rest == b"", rest


# -- openssl s_client -------------------------------------------------------------

@pytest.mark.parametrize("which", ["smtp", "submission"])
def test_openssl_s_client_starttls(t, which):
    """OpenSSL's own client does STARTTLS (its EHLO, STARTTLS, handshake),
    then our EHLO, NOOP and QUIT go over TLS: each gets its reply, in
    order, and s_client ends with status 0."""
    require(OPENSSL, "openssl")
    port = dict(ports(t))[which]
    r = subprocess.run([OPENSSL, "s_client", "-starttls", "smtp", "-connect",
                        f"127.0.0.1:{port}", "-quiet", "-brief", "-crlf"],
                       input=b"EHLO client.test\nNOOP\nQUIT\n",
                       capture_output=True, timeout=20 * SLOW)
    out = r.stdout.decode(errors="replace")
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 0, f"s_client exit status {r.returncode}\n{out}\n{err}"
    assert re.search(r"^Protocol version: TLSv1\.[23]$", err, re.M), err
    assert re.search(r"^Peer certificate: CN ?= ?mx\.test$", err, re.M), err
    # what came back under TLS: the EHLO reply, then one reply per command
    lines = out.splitlines()
    assert len(lines) >= 4, out
    ehlo, noop, quit_ = lines[:-2], lines[-2], lines[-1]
    assert ehlo[0] == f"250-{HOSTNAME}", out
    assert all(ln.startswith("250-") for ln in ehlo[:-1]), out
    assert ehlo[-1].startswith("250 "), out
    kw = {ln[4:].split()[0].upper() for ln in ehlo[1:]}
    assert "STARTTLS" not in kw, f"STARTTLS offered under TLS: {out}"
    assert {"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"} <= kw, out
    assert ("AUTH" in kw) == (which == "submission"), out
    assert noop.startswith("250 2.0.0 "), f"NOOP under TLS: {noop!r}\n{out}"
    assert quit_.startswith("221 2.0.0 "), f"QUIT under TLS: {quit_!r}\n{out}"


def test_openssl_s_client_implicit(t):
    require(OPENSSL, "openssl")
    r = subprocess.run([OPENSSL, "s_client", "-connect", f"127.0.0.1:{t.subs_port}",
                        "-quiet", "-crlf"],
                       input=b"EHLO client.test\nQUIT\n",
                       capture_output=True, timeout=20 * SLOW)
    out = r.stdout.decode(errors="replace")
    lines = out.splitlines()
    assert lines[0].startswith("220 mx.test ESMTP"), out
    assert "250 AUTH PLAIN LOGIN" in lines or any(
        ln.startswith("250") and "AUTH" in ln for ln in lines), out
    assert lines[-1].startswith("221 "), out
