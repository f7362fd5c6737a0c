"""SRS (docs/mailauth.md, "SRS"): three ternd instances on one port, found
by their MX records that dnsmasq serves, as in the journey test.

A (a.test, 127.0.0.2): Alice's server, the original sender's.
B (b.test, 127.0.0.3): the forwarder; fwd@b.test is an alias for
    carol@c.test, gone@b.test one for nobody@c.test (C refuses it).
C (c.test, 127.0.0.5): Carol's server.

The outside world's client is smtplib talking to B's MX port.  B's SRS
addresses are also checked with pysrs (Debian python3-srs, an independent
implementation) holding B's secret from STATE/srs.key.
"""

import re
import smtplib
import subprocess
import time

from conftest import SLOW, dsn_of, maildir_files, maildir_messages, wait_for
from test_journey import common_port

ALICE = "alice@a.test"
BOB = "bob@b.test"
CAROL = "carol@c.test"
A_IP, B_IP, C_IP = "127.0.0.2", "127.0.0.3", "127.0.0.5"
SRS0_RE = r"SRS0=[A-Za-z0-9+/]{4}=[A-Z2-7]{2}=a\.test=alice@b\.test"
# the same as the log writes it (log_quote: "=" as \x3d)
SRS0_LOG_RE = SRS0_RE.replace("=", r"\\x3d")


def logged(addr):
    """addr as log_quote writes it, as a regex."""
    return re.escape(addr.replace("=", "\\x3d"))

# python3-srs (scripts/deps.sh installs it): a missing module fails the
# file at collection, never skips it
from SRS.Guarded import Guarded


class Three:
    def __init__(self, ternd, dnsmasq, b_over=None):
        self.port = p = common_port(A_IP, B_IP, C_IP)
        self.dns = dnsmasq(
            mx=[("a.test", "mx.a.test", 10), ("b.test", "mx.b.test", 10),
                ("c.test", "mx.c.test", 10)],
            hosts=[("mx.a.test", A_IP), ("mx.b.test", B_IP),
                   ("mx.c.test", C_IP)])
        common = {"dns.servers": self.dns.server, "relay.port": str(p),
                  "queue.retry_first": "1", "queue.retry_max": "2"}

        def one(name, ip, users, over=None):
            o = {"hostname": f"mx.{name}.test", "domains": f"{name}.test",
                 "listen.smtp": f"{ip}:{p}"}
            o.update(common)
            o.update(over or {})
            t = ternd(o, users=users, state=name, start=False)
            t.port = p
            return t
        self.a = one("a", A_IP, (ALICE,))
        self.b = one("b", B_IP, (BOB,), b_over)
        self.c = one("c", C_IP, (CAROL,))
        self.b.tern("alias", "add", "fwd@b.test", CAROL)
        self.b.tern("alias", "add", "gone@b.test", "nobody@c.test")
        for t in (self.a, self.b, self.c):
            t.start()

    def send_to_b(self, sender, rcpts, content):
        with smtplib.SMTP(B_IP, self.port, local_hostname="out.example",
                          timeout=10 * SLOW) as s:
            assert s.sendmail(sender, rcpts, content) == {}

    def b_secret(self):
        text = (self.b.state_dir / "srs.key").read_text()
        return [ln.strip() for ln in text.splitlines()
                if ln.strip() and not ln.startswith("#")]


def msg(tag, frm=ALICE, to="fwd@b.test"):
    return (f"From: <{frm}>\r\nTo: <{to}>\r\nSubject: {tag}\r\n"
            f"Message-ID: <{tag}@a.test>\r\n\r\nbody of {tag}\r\n").encode()


def rcpt_reply(host, port, rcpt, sender=""):
    """The reply to RCPT TO:<rcpt> after MAIL FROM:<sender>."""
    with smtplib.SMTP(host, port, local_hostname="c.test",
                      timeout=10 * SLOW) as s:
        s.ehlo()
        assert s.mail(sender)[0] == 250
        code, text = s.rcpt(rcpt)
        s.rset()
        return code, text.decode()


def test_forward_rewrites_and_bounce_reverses(ternd, dnsmasq):
    t = Three(ternd, dnsmasq)
    content = msg("forwarded")
    t.send_to_b(ALICE, ["fwd@b.test"], content)
    [d] = wait_for(lambda: maildir_messages(t.c.state_dir, CAROL),
                   "the forwarded message at C")
    srs = d.return_path
    assert re.fullmatch(SRS0_RE, srs), srs
    assert d.data.endswith(content)
    assert re.search(rf"event=srs_forward from=<{ALICE}> to=<{logged(srs)}>",
                     t.b.log()), t.b.log()[-2000:]
    # the secret was made at first start, 0600, and pysrs agrees with it
    mode = (t.b.state_dir / "srs.key").stat().st_mode & 0o777
    assert mode == 0o600, oct(mode)
    g = Guarded(secret=t.b_secret()[0], maxage=21, hashlength=4)
    assert g.reverse(srs) == ALICE
    # C (or anyone) bounces to the SRS address: B reverses it to Alice
    bounce = (b"From: MAILER-DAEMON@c.test\r\nTo: <" + srs.encode() +
              b">\r\nSubject: Undelivered Mail\r\n\r\nbounced\r\n")
    with smtplib.SMTP(B_IP, t.port, local_hostname="mx.c.test",
                      timeout=10 * SLOW) as s:
        assert s.sendmail("", [srs], bounce) == {}
    [r] = wait_for(lambda: maildir_messages(t.a.state_dir, ALICE),
                   "the bounce at A")
    assert r.return_path == ""
    assert r.data.endswith(bounce)
    assert re.search(rf"event=srs_reverse rcpt=<{logged(srs)}> "
                     rf"to=<{ALICE}>", t.b.log()), t.b.log()[-2000:]
    # a lower-cased copy (some mailers do that) reverses too
    assert rcpt_reply(B_IP, t.port, srs.lower())[0] == 250


def test_forged_expired_malformed_refused(ternd, dnsmasq):
    t = Three(ternd, dnsmasq)
    secret = t.b_secret()[0]
    day = 86400
    g = Guarded(secret=secret, maxage=21, hashlength=4)
    now = time.time
    try:
        time.time = lambda: now() - 30 * day
        old = g.forward(ALICE, "b.test")
    finally:
        time.time = now
    good = g.forward(ALICE, "b.test")
    assert rcpt_reply(B_IP, t.port, good)[0] == 250
    code, text = rcpt_reply(B_IP, t.port, old)
    assert (code, text[:5]) == (550, "5.1.1") and "expired" in text, text
    forged = "SRS0=abcd" + good[9:]
    code, text = rcpt_reply(B_IP, t.port, forged)
    assert (code, text[:5]) == (550, "5.1.1") and "hash" in text, text
    # signed with another secret: forged too
    other = Guarded(secret="not-B's-secret", maxage=21, hashlength=4)
    code, text = rcpt_reply(B_IP, t.port, other.forward(ALICE, "b.test"))
    assert (code, text[:5]) == (550, "5.1.1") and "hash" in text, text
    code, text = rcpt_reply(B_IP, t.port, "SRS0=xx@b.test")
    assert (code, text[:5]) == (550, "5.1.1") and "Malformed" in text, text
    log = t.b.log()
    for why in ("expired", "bad_hash", "malformed"):
        assert f"event=srs_refused" in log and f"reason={why}" in log, why
    # nothing was queued or delivered for them
    assert t.b.queue_list() == []


def test_max_age_setting(ternd, dnsmasq):
    """srs.max_age = 1: a 2-day-old address is refused, a 1-day-old one
    accepted."""
    t = Three(ternd, dnsmasq, {"srs.max_age": "1"})
    g = Guarded(secret=t.b_secret()[0], maxage=21, hashlength=4)
    now = time.time
    made = {}
    try:
        for days in (1, 2):
            time.time = lambda: now() - days * 86400
            made[days] = g.forward(ALICE, "b.test")
    finally:
        time.time = now
    assert rcpt_reply(B_IP, t.port, made[1])[0] == 250
    code, text = rcpt_reply(B_IP, t.port, made[2])
    assert code == 550 and "expired" in text, text


def test_local_and_null_senders_not_rewritten(ternd, dnsmasq):
    t = Three(ternd, dnsmasq)
    t.send_to_b(BOB, ["fwd@b.test"], msg("local", frm=BOB))
    t.send_to_b("", ["fwd@b.test"], msg("null", frm="MAILER-DAEMON@x.test"))
    ds = wait_for(lambda: (lambda m: m if len(m) == 2 else None)(
        maildir_messages(t.c.state_dir, CAROL)), "both messages at C")
    paths = sorted(d.return_path for d in ds)
    assert paths == ["", BOB], paths
    assert "event=srs_forward" not in t.b.log()


def test_not_forwarded_not_rewritten(ternd, dnsmasq):
    """A message for a local mailbox at B keeps its sender."""
    t = Three(ternd, dnsmasq)
    t.send_to_b(ALICE, [BOB], msg("direct", to=BOB))
    [d] = wait_for(lambda: maildir_messages(t.b.state_dir, BOB), "at B")
    assert d.return_path == ALICE
    assert "event=srs_forward" not in t.b.log()


def test_srs_disabled(ternd, dnsmasq):
    t = Three(ternd, dnsmasq, {"srs.enable": "no"})
    t.send_to_b(ALICE, ["fwd@b.test"], msg("plain"))
    [d] = wait_for(lambda: maildir_messages(t.c.state_dir, CAROL), "at C")
    assert d.return_path == ALICE
    assert not (t.b.state_dir / "srs.key").exists()


def test_dsn_of_forwarder_reaches_original_sender(ternd, dnsmasq):
    """C refuses the forwarded recipient: B's own DSN goes to the SRS
    sender of its queue copy, which B reverses to Alice."""
    t = Three(ternd, dnsmasq)
    t.send_to_b(ALICE, ["gone@b.test"], msg("gone", to="gone@b.test"))
    [d] = wait_for(lambda: maildir_messages(t.a.state_dir, ALICE),
                   "B's DSN at A", timeout=30)
    assert d.return_path == ""
    [p] = maildir_files(t.a.state_dir, ALICE)
    m, per_msg, rcpts, returned = dsn_of(p.read_bytes())
    assert rcpts[0]["Action"].lower() == "failed", rcpts
    assert "nobody@c.test" in rcpts[0]["Final-Recipient"], rcpts
    log = t.b.log()
    assert re.search(r"event=srs_forward from=<alice@a\.test> to=<" +
                     SRS0_LOG_RE + ">", log), log[-3000:]


def test_key_file_rules(ternd, dnsmasq):
    """STATE/srs.key readable by others, or a link, stops the start; an
    old secret listed after the current one still reverses."""
    t = Three(ternd, dnsmasq)
    key = t.b.state_dir / "srs.key"
    t.b.stop()
    cur = key.read_text()
    # rotation: a new secret first, the old one kept for reversal
    key.write_text("new-secret-for-signing\n" + cur)
    t.b.start()
    old = Guarded(secret=cur.strip(), maxage=21, hashlength=4)
    assert rcpt_reply(B_IP, t.port, old.forward(ALICE, "b.test"))[0] == 250
    t.send_to_b(ALICE, ["fwd@b.test"], msg("rotated"))
    [d] = wait_for(lambda: maildir_messages(t.c.state_dir, CAROL), "at C")
    new = Guarded(secret="new-secret-for-signing", maxage=21, hashlength=4)
    assert new.reverse(d.return_path) == ALICE
    t.b.stop()
    key.chmod(0o640)
    argv = t.b.argv()
    r = subprocess.run(argv, capture_output=True, timeout=30 * SLOW,
                       cwd=str(t.b.state_dir))
    assert r.returncode != 0 and b"srs.key" in r.stderr \
        and b"group or others" in r.stderr, r.stderr[-2000:]
    key.chmod(0o600)


def test_srs1_reversal(ternd, dnsmasq):
    """An SRS1 at B whose first hop is B itself reverses through to the
    original sender; one whose first hop is another forwarder reverses to
    that hop's SRS0 address, which is queued for it."""
    t = Three(ternd, dnsmasq)
    g = Guarded(secret=t.b_secret()[0], maxage=21, hashlength=4,
                alwaysrewrite=True)
    ours = g.forward(g.forward(ALICE, "b.test"), "b.test")
    assert ours.startswith("SRS1="), ours
    bounce = b"Subject: bounce of an SRS1\r\n\r\nx\r\n"
    with smtplib.SMTP(B_IP, t.port, local_hostname="mx.c.test",
                      timeout=10 * SLOW) as s:
        assert s.sendmail("", [ours], bounce) == {}
    [r] = wait_for(lambda: maildir_messages(t.a.state_dir, ALICE),
                   "the SRS1 bounce at A")
    assert r.data.endswith(bounce)
    # the first hop elsewhere: B sends it on to that hop's SRS0
    other = Guarded(secret="hop-secret", maxage=21, hashlength=4)
    theirs = other.forward(ALICE, "hop.test")
    srs1 = g.forward(theirs, "b.test")
    assert rcpt_reply(B_IP, t.port, srs1)[0] == 250
    assert re.search(rf"event=srs_reverse rcpt=<{logged(srs1)}> "
                     rf"to=<{re.escape(theirs)}>", t.b.log()), \
        t.b.log()[-2000:]
    # its hash covers the first hop: another hop name is a forgery
    forged = srs1.replace("=hop.test==", "=evil.test==")
    code, text = rcpt_reply(B_IP, t.port, forged)
    assert code == 550 and "hash" in text, text
