"""Interoperability with a real Postfix, in both directions.

Each test runs a private Postfix instance (its own config_directory,
queue_directory, data_directory and log file in a temporary directory,
SMTP on 127.0.0.1:PORT, TLS with a certificate made here) next to ternd:

  tern -> Postfix   ternd finds pf.test's MX through dnsmasq and delivers
                    to Postfix (opportunistic STARTTLS), which stores the
                    message in bob's Maildir with its virtual(8) agent;
  Postfix -> tern   Postfix relays everything to ternd (relayhost), which
                    stores it in ben's Maildir.

Postfix's master must start as root, so these tests carry the "root"
mark: tests/run.py runs them as root, in a pass of their own.
"""

import os
import re
import shutil
import signal
import smtplib
import subprocess
import time

import pytest

from conftest import (_ACTIVE, RUN_AS, SLOW, dsn_of, field, log_tail, free_port,
                      maildir_files, received_headers, require, wait_for,
                      wait_port, world_tmpdir)

pytestmark = pytest.mark.root

POSTFIX = "/usr/sbin/postfix"
BOB = "bob@pf.test"
BEN = "ben@example.org"

MASTER_CF = """\
{listen}  inet  n  -  n  -  -  smtpd
pickup    unix  n  -  n  60  1  pickup
cleanup   unix  n  -  n  -  0  cleanup
qmgr      unix  n  -  n  300 1  qmgr
tlsmgr    unix  -  -  n  1000? 1  tlsmgr
rewrite   unix  -  -  n  -  -  trivial-rewrite
bounce    unix  -  -  n  -  0  bounce
defer     unix  -  -  n  -  0  bounce
trace     unix  -  -  n  -  0  bounce
verify    unix  -  -  n  -  1  verify
flush     unix  n  -  n  1000? 0  flush
proxymap  unix  -  -  n  -  -  proxymap
smtp      unix  -  -  n  -  -  smtp
relay     unix  -  -  n  -  -  smtp
showq     unix  n  -  n  -  -  showq
error     unix  -  -  n  -  -  error
retry     unix  -  -  n  -  -  error
discard   unix  -  -  n  -  -  discard
local     unix  -  n  n  -  -  local
virtual   unix  -  n  n  -  -  virtual
anvil     unix  -  -  n  -  1  anvil
scache    unix  -  -  n  -  1  scache
postlog   unix-dgram n  -  n  -  1  postlogd
"""


class Postfix:
    """A private Postfix: mx.pf.test, virtual domain pf.test with the one
    mailbox bob@pf.test (a Maildir under self.dir/vmail), everything else
    relayed to relayhost when one is given."""
    name = "postfix"

    def __init__(self, relayhost=None, extra=""):
        require(POSTFIX, "postfix")
        require("/usr/bin/openssl", "openssl")
        self.dir = d = world_tmpdir("tern-postfix-")
        os.chmod(d, 0o755)
        self.port = free_port()
        self.log_path = d / "maillog"
        self.conf = d / "etc"
        self.conf.mkdir()
        # the virtual mailboxes belong to the user ternd runs as (not root:
        # virtual(8) refuses uid 0)
        self.uid, self.gid = (RUN_AS[1], RUN_AS[2]) if RUN_AS else (
            os.getuid(), os.getgid())
        (d / "queue").mkdir(mode=0o755)
        (d / "data").mkdir(mode=0o700)
        if os.geteuid() == 0:
            import pwd
            pw = pwd.getpwnam("postfix")
            os.chown(d / "data", pw.pw_uid, pw.pw_gid)
        vmail = d / "vmail"
        vmail.mkdir()
        os.chown(vmail, self.uid, self.gid)
        (self.conf / "vmailbox").write_text(f"{BOB} pf.test/bob/\n")
        r = subprocess.run(
            ["/usr/bin/openssl", "req", "-x509", "-newkey", "ec",
             "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-days", "2", "-subj", "/CN=mx.pf.test",
             "-keyout", str(self.conf / "key.pem"),
             "-out", str(self.conf / "cert.pem")],
            capture_output=True, timeout=30)
        assert r.returncode == 0, r.stderr
        os.chmod(self.conf / "key.pem", 0o600)
        relay = f"relayhost = {relayhost}\n" if relayhost else ""
        (self.conf / "main.cf").write_text(f"""\
compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.pf.test
mydomain = pf.test
myorigin = pf.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions =
alias_maps =
alias_database =
biff = no
{relay}smtp_dns_support_level = disabled
smtp_host_lookup = native
smtputf8_enable = yes
virtual_mailbox_domains = pf.test
virtual_mailbox_base = {d}/vmail
virtual_mailbox_maps = texthash:{self.conf}/vmailbox
virtual_uid_maps = static:{self.uid}
virtual_gid_maps = static:{self.gid}
virtual_minimum_uid = 1
maillog_file = {self.log_path}
maillog_file_prefixes = {d}
smtpd_tls_cert_file = {self.conf}/cert.pem
smtpd_tls_key_file = {self.conf}/key.pem
smtpd_tls_security_level = may
smtpd_tls_received_header = yes
smtp_tls_security_level = may
smtp_tls_loglevel = 1
smtpd_tls_loglevel = 1
{extra}""")
        (self.conf / "master.cf").write_text(
            MASTER_CF.format(listen=f"127.0.0.1:{self.port}"))
        self.started = False

    def postfix(self, *args, check=True, timeout=60):
        r = subprocess.run([POSTFIX, "-c", str(self.conf), *args],
                           capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        if check:
            assert r.returncode == 0, (f"postfix {' '.join(args)} -> "
                                       f"{r.returncode}\n{r.stdout}\n{r.stderr}\n"
                                       f"{log_tail(self.log_path)}")
        return r

    def start(self):
        _ACTIVE.append(self)
        self.postfix("check")
        self.postfix("start")
        self.started = True
        s = wait_port(self.port, 20 * SLOW, what="postfix")
        s.settimeout(10 * SLOW)
        banner = s.recv(1024)
        s.close()
        assert banner.startswith(b"220 mx.pf.test ESMTP"), banner
        return self

    def master_pid(self):
        try:
            return int((self.dir / "queue" / "pid" / "master.pid")
                       .read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self):
        if self.started:
            pid = self.master_pid()
            self.postfix("stop", check=False)
            deadline = time.monotonic() + 15
            while pid and os.path.exists(f"/proc/{pid}") and \
                    time.monotonic() < deadline:
                time.sleep(0.1)
            if pid and os.path.exists(f"/proc/{pid}"):
                os.kill(pid, signal.SIGKILL)          # our master only
            self.started = False
        if self in _ACTIVE:
            _ACTIVE.remove(self)

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def maildir(self, local="bob"):
        md = self.dir / "vmail" / "pf.test" / local
        out = []
        for sub in ("new", "cur"):
            if (md / sub).is_dir():
                out += sorted(p for p in (md / sub).iterdir() if p.is_file())
        return out

    def smtp(self):
        return smtplib.SMTP("127.0.0.1", self.port, local_hostname="client.pf.test",
                            timeout=20 * SLOW)


@pytest.fixture
def postfix():
    """Factory: postfix(relayhost=None, extra="main.cf lines") -> running
    private Postfix."""
    made = []

    def make(relayhost=None, extra=""):
        p = Postfix(relayhost, extra)
        made.append(p)
        return p.start()
    yield make
    for p in made:
        p.stop()
        shutil.rmtree(p.dir, ignore_errors=True)


def log_lines(text, pattern):
    return [ln for ln in text.splitlines() if re.search(pattern, ln)]


def tern_to_postfix(ternd, dnsmasq, postfix, extra=""):
    pf = postfix(extra=extra)
    dns = dnsmasq(mx=[("pf.test", "mx.pf.test", 10)],
                  hosts=[("mx.pf.test", "127.0.0.1")])
    t = ternd({"relay.networks": "127.0.0.1/32", "dns.servers": dns.server,
               "relay.port": str(pf.port), "queue.retry_first": "1",
               "queue.retry_max": "2"})
    return pf, t


def send(t, mail_from, rcpt, content, params="", utf8=False):
    with t.client() as c:
        c.ehlo("app.example.org")
        c.expect(f"MAIL FROM:<{mail_from}>{params}", 250)
        c.expect(f"RCPT TO:<{rcpt}>", 250)
        c.expect("DATA", 354)
        c.send(content + b".\r\n")
        rep = c.reply()
        c.expect("QUIT", 221)
    assert rep.code == 250, rep.text


def postfix_sent(pf, rcpt, want=r"status=sent"):
    lines = log_lines(pf.log(), rf"to=<{re.escape(rcpt)}>.*{want}")
    return lines or None


# ---------------------------------------------------------------------------
# tern -> Postfix
# ---------------------------------------------------------------------------

def test_tern_delivers_to_postfix(ternd, dnsmasq, postfix):
    pf, t = tern_to_postfix(ternd, dnsmasq, postfix)
    content = (b"From: App <app@example.org>\r\nTo: Bob <bob@pf.test>\r\n"
               b"Subject: tern to Postfix\r\nMessage-ID: <t2p@example.org>\r\n"
               b"Date: Fri, 6 Mar 2026 12:00:00 +0000\r\n"
               b"\r\nHello Postfix.\r\n..a dot-stuffed line\r\n")
    send(t, "app@example.org", BOB, content)
    [path] = wait_for(lambda: pf.maildir(), "the message in bob's Maildir "
                      "under Postfix", timeout=20)
    data = path.read_bytes().replace(b"\n", b"\r\n")    # Postfix stores LF
    assert data.endswith(content.replace(b"\r\n..", b"\r\n.")), data
    recv = received_headers(data)
    assert len(recv) == 2, recv
    # Postfix's, on top: from tern (its EHLO name), over TLS
    assert re.match(r"Received: from mx\.test \(\S+ \[127\.0\.0\.1\]\) "
                    r"\(using TLSv1\.[23] .*\) .*by mx\.pf\.test \(Postfix\) "
                    r"with ESMTPS id \S+ for <bob@pf\.test>;", recv[0]), recv[0]
    # tern's, below
    assert re.match(r"Received: from app\.example\.org \((?:\S+ )?\[127\.0\.0\.1\]\) "
                    r"by mx\.test \(tern\) with ESMTP id \S+ for <bob@pf\.test>;",
                    recv[1]), recv[1]
    assert re.search(rb"^Return-Path: <app@example\.org>\r\n", data, re.M), data[:300]
    sent = wait_for(lambda: postfix_sent(pf, BOB, r"relay=virtual.*status=sent"),
                    "status=sent in Postfix's log")
    assert "delivered to maildir" in sent[0], sent
    # tern's side: STARTTLS to Postfix, then the 250, then the queue empties
    log = t.log()
    assert re.search(r"mx=mx\.pf\.test addr=127\.0\.0\.1:%d event=tls "
                     r"version=TLSv1\.[23]" % pf.port, log), log[-3000:]
    assert re.search(r"mx=mx\.pf\.test .*event=delivered to=<bob@pf\.test> "
                     r"code=250", log), log[-3000:]
    wait_for(lambda: t.queue_list() == [], "tern's queue to empty", timeout=10)


def test_postfix_unknown_user_bounces_in_tern(ternd, dnsmasq, postfix):
    """Postfix's 550 for an unknown virtual user comes back to the sender
    as tern's DSN (the sender is a local user of tern)."""
    pf, t = tern_to_postfix(ternd, dnsmasq, postfix)
    send(t, "claire@example.org", "nobody@pf.test",
         b"Subject: to nobody\r\n\r\nno one reads this\r\n")
    [p] = wait_for(lambda: maildir_files(t.state_dir, "claire@example.org"),
                   "the DSN in claire's Maildir", timeout=20)
    raw = p.read_bytes()
    assert raw.startswith(b"Return-Path: <>\r\n"), raw[:200]
    text = raw.decode("utf-8", "replace")
    assert re.search(r"Status: 5\.1\.1", text), text
    assert re.search(r"Diagnostic-Code: smtp; ?550 5\.1\.1", text), text
    assert pf.maildir() == []
    wait_for(lambda: t.queue_list() == [], "tern's queue to empty", timeout=10)


# ---------------------------------------------------------------------------
# Postfix -> tern
# ---------------------------------------------------------------------------

def test_postfix_relays_to_tern(ternd, postfix):
    t = ternd()
    pf = postfix(relayhost=f"[127.0.0.1]:{t.port}")
    content = (b"From: Someone <someone@pf.test>\r\nTo: Ben <ben@example.org>\r\n"
               b"Subject: Postfix to tern\r\nMessage-ID: <p2t@pf.test>\r\n"
               b"Date: Fri, 6 Mar 2026 12:00:00 +0000\r\n"
               b"\r\nHello tern, from Postfix.\r\n")
    with pf.smtp() as s:
        assert s.sendmail("someone@pf.test", [BEN], content) == {}
    [d] = wait_for(lambda: t.messages(BEN), "the message in ben's Maildir",
                   timeout=20)
    assert d.return_path == "someone@pf.test"
    assert d.data.endswith(content), d.data
    recv = received_headers(d.data)
    assert len(recv) == 2, recv
    # tern's, on top: from Postfix's EHLO name, over STARTTLS
    assert re.match(r"Received: from mx\.pf\.test \((?:\S+ )?\[127\.0\.0\.1\]\) "
                    r"by mx\.test \(tern\) with ESMTPS \(version=TLSv1\.[23] "
                    r"cipher=\S+\) id \S+ for <ben@example\.org>;", recv[0]), recv[0]
    assert re.match(r"Received: from client\.pf\.test .*by mx\.pf\.test \(Postfix\) "
                    r"with ESMTP id ", recv[1]), recv[1]
    sent = wait_for(lambda: postfix_sent(pf, BEN), "status=sent in Postfix's log")
    assert re.search(r"relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d" % t.port, sent[0]), sent
    assert re.search(r"\(250 2\.0\.0 ", sent[0]), sent
    # Postfix's TLS client saw tern's certificate
    assert re.search(r"TLS connection established to "
                     r"127\.0\.0\.1\[127\.0\.0\.1\]:%d: TLSv1\.[23] " % t.port,
                     pf.log()), pf.log()[-3000:]


def test_postfix_to_tern_unknown_user_550(ternd, postfix):
    """tern's 550 5.1.1 makes Postfix bounce, not retry."""
    t = ternd()
    pf = postfix(relayhost=f"[127.0.0.1]:{t.port}")
    with pf.smtp() as s:
        s.sendmail("someone@pf.test", ["nobody@example.org"],
                   b"Subject: nobody\r\n\r\nx\r\n")
    lines = wait_for(lambda: postfix_sent(pf, "nobody@example.org",
                                          r"status=bounced"),
                     "status=bounced in Postfix's log", timeout=20)
    assert re.search(r"said: 550 5\.1\.1 ", lines[0]), lines


# ---------------------------------------------------------------------------
# 8BITMIME and SMTPUTF8, both ways
# ---------------------------------------------------------------------------

UTF8_BODY = ("From: Zoë <zoë@example.org>\r\nTo: Bob <bob@pf.test>\r\n"
             "Subject: Grüße, 8-bit и UTF-8 ✓\r\nMIME-Version: 1.0\r\n"
             "Date: Fri, 6 Mar 2026 12:00:00 +0000\r\n"
             "Message-ID: <utf8@example.org>\r\n"
             "Content-Type: text/plain; charset=utf-8\r\n"
             "Content-Transfer-Encoding: 8bit\r\n\r\n"
             "Ça marche: naïve café, 日本語.\r\n").encode()


def test_utf8_tern_to_postfix(ternd, dnsmasq, postfix):
    pf, t = tern_to_postfix(ternd, dnsmasq, postfix)
    send(t, "zoë@example.org", BOB, UTF8_BODY, " BODY=8BITMIME SMTPUTF8")
    [path] = wait_for(lambda: pf.maildir(), "the UTF-8 message under Postfix",
                      timeout=20)
    data = path.read_bytes().replace(b"\n", b"\r\n")
    assert data.endswith(UTF8_BODY), data
    assert "Return-Path: <zoë@example.org>".encode() in data, data[:400]
    recv = received_headers(data)
    assert re.search(r" with UTF8SMTPS ", recv[0]), recv[0]
    assert wait_for(lambda: postfix_sent(pf, BOB), "status=sent")
    wait_for(lambda: t.queue_list() == [], "tern's queue to empty", timeout=10)


def test_utf8_postfix_to_tern(ternd, postfix):
    t = ternd()
    pf = postfix(relayhost=f"[127.0.0.1]:{t.port}")
    body = UTF8_BODY.replace(b"To: Bob <bob@pf.test>", b"To: Ben <ben@example.org>")
    with pf.smtp() as s:
        s.ehlo()
        assert s.has_extn("smtputf8")
        s.sendmail("zoë@pf.test", [BEN], body,
                   mail_options=["BODY=8BITMIME", "SMTPUTF8"])
    [d] = wait_for(lambda: t.messages(BEN), "the UTF-8 message in ben's Maildir",
                   timeout=20)
    assert d.return_path == "zoë@pf.test"
    assert d.data.endswith(body), d.data
    recv = received_headers(d.data)
    assert re.search(r"by mx\.test \(tern\) with UTF8SMTPS ", recv[0]), recv[0]
    assert wait_for(lambda: postfix_sent(pf, BEN), "status=sent")


# ---------------------------------------------------------------------------
# A peer without 8BITMIME nor SMTPUTF8 (RFC 6152 3, RFC 6531 3.4)
# ---------------------------------------------------------------------------

SEVEN_BIT_PEER = "smtpd_discard_ehlo_keywords = 8bitmime, smtputf8\n"


def seven_bit_peer(ternd, dnsmasq, postfix):
    """tern relaying to a Postfix that offers neither 8BITMIME nor
    SMTPUTF8 (checked: otherwise these tests would prove nothing)."""
    pf, t = tern_to_postfix(ternd, dnsmasq, postfix, SEVEN_BIT_PEER)
    with pf.smtp() as s:
        s.ehlo()
        assert not s.has_extn("8bitmime") and not s.has_extn("smtputf8"), \
            s.esmtp_features
    return pf, t


def binary_blob(n, seed=7):
    """n octets of every value but CR, LF and '.', in CRLF lines of 76
    (what SMTP can carry as 8bit: no bare line end, no dot to stuff)."""
    import random
    rnd = random.Random(seed)
    vals = [v for v in range(1, 256) if v not in (10, 13, 0x2e)]
    out = bytearray()
    while len(out) < n:
        out += bytes(rnd.choices(vals, k=76)) + b"\r\n"
    return bytes(out)


def delivered_parts(raw):
    """[(content type, decoded payload)] of every leaf of raw."""
    import email
    import email.policy
    m = email.message_from_bytes(raw, policy=email.policy.compat32)
    return [(p.get_content_type(), p.get_payload(decode=True))
            for p in m.walk() if not p.is_multipart()]


def assert_seven_bit(data):
    high = [i for i, b in enumerate(data) if b >= 0x80 or b == 0]
    assert not high, f"8-bit octets at {high[:5]}: {data[high[0]-40:high[0]+40]!r}"
    assert max(len(ln) for ln in data.split(b"\r\n")) <= 998


def test_8bit_text_to_peer_without_8bitmime(ternd, dnsmasq, postfix):
    """An 8-bit text/plain message goes as quoted-printable; Postfix stores
    7-bit octets that decode to the original text."""
    pf, t = seven_bit_peer(ternd, dnsmasq, postfix)
    text = ("Grüße aus Köln: naïve café, 日本語, € = 1.\r\n" * 30 +
            "trailing blank \r\n").encode()
    content = (b"From: App <app@example.org>\r\nTo: Bob <bob@pf.test>\r\n"
               b"Subject: 8-bit text\r\nMIME-Version: 1.0\r\n"
               b"Content-Type: text/plain; charset=utf-8\r\n"
               b"Content-Transfer-Encoding: 8bit\r\n\r\n" + text)
    send(t, "app@example.org", BOB, content, " BODY=8BITMIME")
    [path] = wait_for(lambda: pf.maildir(), "the message under Postfix",
                      timeout=20)
    data = path.read_bytes().replace(b"\n", b"\r\n")
    assert_seven_bit(data)
    assert re.search(rb"\r\nContent-Transfer-Encoding: quoted-printable\r\n",
                     data), data[:800]
    assert delivered_parts(data) == [("text/plain", text)]
    assert re.search(r"event=mime_7bit octets=\d+ ", t.log()), t.log()[-3000:]
    wait_for(lambda: t.queue_list() == [], "tern's queue to empty", timeout=10)


def test_8bit_attachment_to_peer_without_8bitmime(ternd, dnsmasq, postfix):
    """multipart/mixed with 8-bit text and an 8-bit binary attachment: the
    text as quoted-printable, the attachment as base64, both decoding to
    the octets sent."""
    pf, t = seven_bit_peer(ternd, dnsmasq, postfix)
    text = "Voilà le fichier, ça pèse 300 Kio.\r\n".encode()
    # several of remote.c's 64 KiB chunks, so the conversion resumes
    blob = binary_blob(300 * 1024)
    content = (b"From: App <app@example.org>\r\nTo: Bob <bob@pf.test>\r\n"
               b"Subject: attachment\r\nMIME-Version: 1.0\r\n"
               b"Content-Type: multipart/mixed; boundary=\"=-b\"\r\n"
               b"Content-Transfer-Encoding: 8bit\r\n\r\n"
               b"--=-b\r\nContent-Type: text/plain; charset=utf-8\r\n"
               b"Content-Transfer-Encoding: 8bit\r\n\r\n" + text +
               b"\r\n--=-b\r\nContent-Type: application/octet-stream\r\n"
               b"Content-Disposition: attachment; filename=\"blob.bin\"\r\n"
               b"Content-Transfer-Encoding: 8bit\r\n\r\n" + blob +
               b"\r\n--=-b--\r\n")
    send(t, "app@example.org", BOB, content, " BODY=8BITMIME")
    [path] = wait_for(lambda: pf.maildir(), "the message under Postfix",
                      timeout=20)
    data = path.read_bytes().replace(b"\n", b"\r\n")
    assert_seven_bit(data)
    assert delivered_parts(data) == delivered_parts(content) == [
        ("text/plain", text), ("application/octet-stream", blob)]
    assert b"Content-Transfer-Encoding: base64\r\n" in data
    assert b"Content-Transfer-Encoding: quoted-printable\r\n" in data
    # the container's 8bit label became 7bit
    head = data.split(b"\r\n\r\n", 1)[0]
    assert b"Content-Transfer-Encoding: 7bit" in head, head
    wait_for(lambda: t.queue_list() == [], "tern's queue to empty", timeout=10)


@pytest.mark.parametrize("utf8", ["headers", "address"])
def test_smtputf8_to_peer_without_it_bounces_567(ternd, dnsmasq, postfix, utf8):
    """A message that needs SMTPUTF8 (UTF-8 header fields, or a UTF-8
    recipient) cannot be converted: the sender gets a DSN with 5.6.7
    (RFC 6531 3.4), and Postfix gets nothing."""
    pf, t = seven_bit_peer(ternd, dnsmasq, postfix)
    rcpt = BOB if utf8 == "headers" else "bøb@pf.test"
    content = UTF8_BODY if utf8 == "headers" else (
        b"From: claire@example.org\r\nSubject: to a UTF-8 address\r\n\r\n"
        b"plain ASCII body\r\n")
    send(t, "claire@example.org", rcpt, content, " BODY=8BITMIME SMTPUTF8")
    [p] = wait_for(lambda: maildir_files(t.state_dir, "claire@example.org"),
                   "the DSN in claire's Maildir", timeout=20)
    _, _, [r], _ = dsn_of(p.read_bytes())
    assert field(r, "Action").lower() == "failed", r.items()
    assert field(r, "Status") == "5.6.7", r.items()
    if utf8 == "headers":
        assert field(r, "Final-Recipient").lower().endswith(BOB), r.items()
    assert pf.maildir() == []
    assert not log_lines(pf.log(), r"from=<claire@example\.org>")
    wait_for(lambda: t.queue_list() == [], "tern's queue to empty", timeout=10)


def test_8bit_header_without_smtputf8_bounces_563(ternd, dnsmasq, postfix):
    """Raw UTF-8 in a header field and no SMTPUTF8 in the transaction:
    header fields are never converted, so 5.6.3 (RFC 3463: conversion
    required but not supported)."""
    pf, t = seven_bit_peer(ternd, dnsmasq, postfix)
    content = ("From: claire@example.org\r\nTo: bob@pf.test\r\n"
               "Subject: Grüße\r\n\r\nplain body\r\n").encode()
    send(t, "claire@example.org", BOB, content, " BODY=8BITMIME")
    [p] = wait_for(lambda: maildir_files(t.state_dir, "claire@example.org"),
                   "the DSN in claire's Maildir", timeout=20)
    _, _, [r], _ = dsn_of(p.read_bytes())
    assert field(r, "Action").lower() == "failed", r.items()
    assert field(r, "Status") == "5.6.3", r.items()
    assert pf.maildir() == []
    wait_for(lambda: t.queue_list() == [], "tern's queue to empty", timeout=10)
