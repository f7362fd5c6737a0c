"""AUTH on the submission ports: real clients (smtplib, swaks, curl, msmtp),
the SASL exchanges over a raw socket, failures and their limit, sender
ownership, and the headers RFC 6409 has a submission server add."""

import base64
import email
import email.policy
import email.utils
import os
import re
import smtplib
import subprocess
import time

import pytest

from conftest import (PASSWORD, SLOW, SMTPClient, check, ehlo_keywords, wait_for,
                      require, submit_ternd, tls_client_context)

CLAIRE = "claire@example.org"
MSG = b"Subject: submitted\r\nFrom: Claire <claire@example.org>\r\n\r\nhello Ben\r\n"


def b64(s):
    if isinstance(s, str):
        s = s.encode()
    return base64.b64encode(s).decode()


def plain(user, password, authzid=""):
    return b64(f"{authzid}\0{user}\0{password}")


@pytest.fixture(scope="module")
def t(ternd_module):
    return submit_ternd(ternd_module, implicit=True)


def new_since(t, addr, before):
    return [d for d in t.messages(addr) if d.path not in before]


def login(c, user=CLAIRE, password=PASSWORD):
    c.expect(f"AUTH PLAIN {plain(user, password)}", 235, "2.7.0")


def check_esmtpsa(d, helo=None):
    assert re.search(r" with ESMTPSA \(version=TLSv1\.[23] cipher=[A-Za-z0-9_-]+\) id ",
                     d.received), d.received
    assert " by mx.test (tern) " in d.received, d.received
    if helo:
        assert d.received.startswith(f"Received: from {helo} "), d.received


# -- what is offered where -------------------------------------------------------

def test_auth_not_offered_before_tls(t):
    with t.sub_client(tls=False) as c:
        kw = ehlo_keywords(c.ehlo())
        assert "AUTH" not in kw, kw
        r = c.cmd(f"AUTH PLAIN {plain(CLAIRE, PASSWORD)}")
        assert 500 <= r.code < 600, f"AUTH accepted in clear text: {r!r}"
        c.expect(f"MAIL FROM:<{CLAIRE}>", 530, "5.7.0")


def test_auth_never_on_mx_port(t):
    with SMTPClient(t.port) as c:
        c.ehlo()
        c.starttls()
        kw = ehlo_keywords(c.ehlo())
        assert "AUTH" not in kw, kw
        r = c.cmd(f"AUTH PLAIN {plain(CLAIRE, PASSWORD)}")
        assert 500 <= r.code < 600, f"AUTH accepted on the MX port: {r!r}"


def test_mail_without_auth_530(t):
    with t.sub_client() as c:
        c.expect(f"MAIL FROM:<{CLAIRE}>", 530, "5.7.0")
        c.expect("MAIL FROM:<>", 530, "5.7.0")
        c.expect("RCPT TO:<ben@example.org>", 503, "5.5.1")
    with t.subs_client() as c:
        c.ehlo()
        c.expect(f"MAIL FROM:<{CLAIRE}>", 530, "5.7.0")


# -- SASL over a raw socket --------------------------------------------------------

def test_auth_plain_initial_response(t):
    with t.sub_client() as c:
        login(c)
        c.expect("AUTH PLAIN " + plain(CLAIRE, PASSWORD), 503, "5.5.1")
        kw = ehlo_keywords(c.ehlo())
        assert "AUTH" not in kw, f"AUTH offered again after success: {kw}"
        c.expect(f"MAIL FROM:<{CLAIRE}>", 250)


def test_auth_plain_challenge(t):
    with t.sub_client() as c:
        r = c.cmd("AUTH PLAIN")
        assert r.code == 334 and r.lines[-1].rstrip() == "334", r
        c.expect(plain(CLAIRE, PASSWORD, authzid=CLAIRE), 235, "2.7.0")
        c.expect(f"MAIL FROM:<{CLAIRE}>", 250)


def test_auth_login_exchange(t):
    with t.subs_client() as c:
        c.ehlo()
        r = c.expect("AUTH LOGIN", 334)
        assert r.lines[-1] == "334 " + b64("Username:"), r
        r = c.expect(b64(CLAIRE), 334)
        assert r.lines[-1] == "334 " + b64("Password:"), r
        c.expect(b64(PASSWORD), 235, "2.7.0")
        c.expect(f"MAIL FROM:<{CLAIRE}>", 250)


def test_auth_login_initial_response(t):
    with t.sub_client() as c:
        r = c.expect(f"AUTH LOGIN {b64(CLAIRE)}", 334)
        assert r.lines[-1] == "334 " + b64("Password:"), r
        c.expect(b64(PASSWORD), 235, "2.7.0")


def test_auth_cancel_bad_base64_unknown_mechanism(ternd):
    t = submit_ternd(ternd)
    with t.sub_client() as c:
        c.expect("AUTH PLAIN", 334)
        c.expect("*", 501)
        c.expect("AUTH PLAIN AGNsYWlyZQ!!", 501, "5.5.2")
        c.expect("AUTH CRAM-MD5", 504, "5.5.4")
        c.expect(f"MAIL FROM:<{CLAIRE}>", 530, "5.7.0")
        login(c)      # none of those counted as a failed password
        c.expect(f"MAIL FROM:<{CLAIRE}>", 250)


# -- failures ------------------------------------------------------------------------

def test_bad_credentials_535_then_421(ternd):
    t = submit_ternd(ternd)
    with t.sub_client() as c:
        c.expect(f"AUTH PLAIN {plain(CLAIRE, 'wrong')}", 535, "5.7.8")
        r1 = c.expect(f"AUTH PLAIN {plain('nobody@example.org', PASSWORD)}",
                      535, "5.7.8")
        # no difference between unknown user and wrong password
        c.expect("AUTH LOGIN", 334)
        c.expect(b64(CLAIRE), 334)
        r3 = c.cmd(b64("wrong again"))
        check(r3, 535, "5.7.8", "third failure")
        check(c.reply(), 421, "4.7.0", "after the third failure")
        c.wait_closed()
    # the same text for both kinds of failure
    assert r1.lines == r3.lines, (r1, r3)
    # the right password still works afterwards (a new connection)
    with t.sub_client() as c:
        login(c)


def test_failures_throttled_across_connections(ternd):
    """docs/tls-auth.md: the 4th failure in a row from one address waits 1 s."""
    t = submit_ternd(ternd)
    with t.sub_client() as c:
        for _ in range(3):
            c.expect(f"AUTH PLAIN {plain(CLAIRE, 'x')}", 535, "5.7.8")
        check(c.reply(), 421, "4.7.0")
    with t.sub_client() as c:
        t0 = time.monotonic()
        c.expect(f"AUTH PLAIN {plain(CLAIRE, 'y')}", 535, "5.7.8",
                 timeout=10 * SLOW)
        assert time.monotonic() - t0 >= 0.8, "4th failure not delayed"
        login(c)      # success resets the count
    with t.sub_client() as c:
        t0 = time.monotonic()
        c.expect(f"AUTH PLAIN {plain(CLAIRE, 'z')}", 535, "5.7.8")
        assert time.monotonic() - t0 < 0.8 * SLOW, "count not reset by success"


def test_user_without_password_cannot_log_in(ternd):
    t = submit_ternd(ternd)
    t.tern("user", "add", "nopass@example.org")
    with t.sub_client() as c:
        c.expect(f"AUTH PLAIN {plain('nopass@example.org', '')}", 501)
        c.expect(f"AUTH PLAIN {plain('nopass@example.org', 'x')}", 535, "5.7.8")


def test_password_change(ternd):
    t = submit_ternd(ternd)
    t.set_password(CLAIRE, "new password 2")
    with t.sub_client() as c:
        c.expect(f"AUTH PLAIN {plain(CLAIRE, PASSWORD)}", 535, "5.7.8")
        c.expect(f"AUTH PLAIN {plain(CLAIRE, 'new password 2')}", 235, "2.7.0")


def test_user_add_with_password_stdin(ternd):
    t = submit_ternd(ternd)
    t.tern("user", "add", "newbie@example.org", "--password-stdin",
           input=b"first password\n")
    with t.sub_client() as c:
        c.expect(f"AUTH PLAIN {plain('newbie@example.org', 'first password')}",
                 235, "2.7.0")
        c.expect("MAIL FROM:<newbie@example.org>", 250)
        c.expect(f"MAIL FROM:<{CLAIRE}>", 503, "5.5.1")     # nested MAIL
        c.expect("RSET", 250)
        c.expect(f"MAIL FROM:<{CLAIRE}>", 553, "5.7.1")


def test_auth_user_case_insensitive(t):
    with t.sub_client() as c:
        c.expect(f"AUTH PLAIN {plain('Claire@Example.ORG', PASSWORD)}", 235, "2.7.0")
        c.expect(f"MAIL FROM:<{CLAIRE}>", 250)


def test_plaintext_loopback_option(ternd):
    t = submit_ternd(ternd, {"auth.plaintext_loopback": "yes"})
    before = set(t.files("ben@example.org"))
    with t.sub_client(tls=False) as c:
        kw = ehlo_keywords(c.ehlo())
        assert "AUTH" in kw and {"PLAIN", "LOGIN"} <= set(kw["AUTH"]), kw
        assert "STARTTLS" in kw, kw
        login(c)
        c.expect(f"MAIL FROM:<{CLAIRE}>", 250)
        c.expect("RCPT TO:<ben@example.org>", 250)
        c.expect("DATA", 354)
        c.send(MSG + b".\r\n")
        check(c.reply(), 250)
    with SMTPClient(t.port) as c:        # never on the MX port
        assert "AUTH" not in ehlo_keywords(c.ehlo())
    [d] = new_since(t, "ben@example.org", before)
    assert " with ESMTPA id " in d.received, d.received


# -- sender ownership ----------------------------------------------------------------

def test_sender_must_be_owned(t):
    t.tern("alias", "add", "c.lastname@example.org", CLAIRE)
    t.tern("alias", "add", "sales@example.org", "ben@example.org", CLAIRE)
    t.tern("alias", "add", "bens-alias@example.org", "ben@example.org")
    with t.sub_client() as c:
        login(c)
        for sender in ("ben@example.org", "dave@example.net",
                       "someone@example.com", "bens-alias@example.org",
                       "nobody@example.org", "claire@example.net",
                       "claire@example.org.example.com"):
            c.expect(f"MAIL FROM:<{sender}>", 553, "5.7.1")
        for sender in (CLAIRE, "CLAIRE@Example.Org", "", "c.lastname@example.org",
                       "sales@example.org"):
            c.expect(f"MAIL FROM:<{sender}>", 250)
            c.expect("RSET", 250)


def test_any_sender_option(ternd):
    """submission.any_sender: an authenticated user may send as anyone,
    and the message goes out with that sender, as sent."""
    t = submit_ternd(ternd, {"submission.any_sender": "yes"})
    msg = b"Subject: as ben\r\n\r\nsent by claire as ben\r\n"
    with t.sub_client() as c:
        login(c)
        c.expect("MAIL FROM:<ben@example.org>", 250)
        c.expect("RCPT TO:<dave@example.net>", 250)
        c.expect("DATA", 354)
        c.send(msg + b".\r\n")
        check(c.reply(), 250)
        c.expect("QUIT", 221)
    [d] = wait_for(lambda: t.messages("dave@example.net"),
                   "the message in dave's Maildir")
    assert d.return_path == "ben@example.org", d.return_path
    assert d.body.endswith(msg), d.body
    check_esmtpsa(d, helo="client.test")
    assert re.search(r"event=delivered from=<ben@example\.org> "
                     r"to=<dave@example\.net> ", t.log()), t.log()[-2000:]


# -- RFC 6409 8: Date and Message-ID --------------------------------------------------

def submit(t, msg, rcpt="ben@example.org"):
    before = set(t.files(rcpt))
    with t.sub_client() as c:
        login(c)
        c.expect(f"MAIL FROM:<{CLAIRE}>", 250)
        c.expect(f"RCPT TO:<{rcpt}>", 250)
        c.expect("DATA", 354)
        c.send(msg + b".\r\n")
        check(c.reply(), 250)
    [d] = new_since(t, rcpt, before)
    return d


def test_submission_adds_date_and_message_id(t):
    d = submit(t, MSG)
    assert d.body.endswith(MSG), d.body
    m = email.message_from_bytes(d.body, policy=email.policy.compat32)
    assert len(m.get_all("Date", [])) == 1, d.body
    assert len(m.get_all("Message-ID", [])) == 1, d.body
    date = email.utils.parsedate_to_datetime(m["Date"])
    assert date.tzinfo is not None and abs(time.time() - date.timestamp()) < 120, m["Date"]
    assert re.fullmatch(r"<[^<>@\s]+@mx\.test>", m["Message-ID"]), m["Message-ID"]
    assert m["Subject"] == "submitted"
    check_esmtpsa(d, "client.test")


def test_submission_keeps_existing_date_and_message_id(t):
    msg = (b"Date: Mon, 2 Mar 2026 10:00:00 +0100\r\n"
           b"message-id: <abc@laptop.example.org>\r\n" + MSG)
    d = submit(t, msg)
    assert d.body == msg, d.body


def test_submission_adds_only_what_is_missing(t):
    msg = b"Message-Id: <only-id@laptop.example.org>\r\n" + MSG
    d = submit(t, msg)
    assert d.body.endswith(msg), d.body
    m = email.message_from_bytes(d.body)
    assert m.get_all("Message-ID") == ["<only-id@laptop.example.org>"], d.body
    assert len(m.get_all("Date", [])) == 1, d.body


def test_mx_port_does_not_add_headers(t):
    before = set(t.files("ben@example.org"))
    rep = t.send_raw("dave@example.net", ["ben@example.org"], MSG)
    check(rep, 250)
    [d] = new_since(t, "ben@example.org", before)
    assert d.body == MSG, d.body


# -- real clients -----------------------------------------------------------------------

def test_smtplib_starttls_login(t):
    before = set(t.files("ben@example.org"))
    s = smtplib.SMTP("127.0.0.1", t.sub_port, local_hostname="client.test",
                     timeout=10 * SLOW)
    try:
        s.ehlo()
        assert not s.has_extn("auth")
        s.starttls(context=tls_client_context())
        s.ehlo()
        assert s.has_extn("auth") and not s.has_extn("starttls")
        s.login(CLAIRE, PASSWORD)
        refused = s.sendmail(CLAIRE, ["ben@example.org"], MSG)
        assert refused == {}
        with pytest.raises(smtplib.SMTPSenderRefused) as e:
            s.sendmail("ben@example.org", ["dave@example.net"], MSG)
        assert e.value.smtp_code == 553
    finally:
        s.quit()
    [d] = new_since(t, "ben@example.org", before)
    check_esmtpsa(d, "client.test")
    assert d.return_path == CLAIRE
    assert d.body.endswith(MSG)


def test_smtplib_login_mechanism(t):
    s = smtplib.SMTP("127.0.0.1", t.sub_port, local_hostname="client.test",
                     timeout=10 * SLOW)
    try:
        s.starttls(context=tls_client_context())
        s.ehlo()
        s.user, s.password = CLAIRE, PASSWORD
        code, _ = s.auth("LOGIN", s.auth_login, initial_response_ok=False)
        assert code == 235
    finally:
        s.quit()


def test_smtplib_bad_password(ternd):
    t = submit_ternd(ternd)
    s = smtplib.SMTP("127.0.0.1", t.sub_port, local_hostname="client.test",
                     timeout=10 * SLOW)
    try:
        s.starttls(context=tls_client_context())
        s.ehlo()
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            s.login(CLAIRE, "not the password")
        assert e.value.smtp_code == 535
    finally:
        s.close()


def test_smtplib_ssl_implicit(t):
    before = set(t.files("dave@example.net"))
    with smtplib.SMTP_SSL("127.0.0.1", t.subs_port, local_hostname="client.test",
                          context=tls_client_context(), timeout=10 * SLOW) as s:
        s.ehlo()
        assert s.has_extn("auth") and not s.has_extn("starttls")
        s.login(CLAIRE, PASSWORD)
        s.sendmail(CLAIRE, ["dave@example.net"], MSG)
    [d] = new_since(t, "dave@example.net", before)
    check_esmtpsa(d, "client.test")


def swaks(*args):
    require("swaks", "swaks")
    return subprocess.run(["swaks", "--helo", "client.test", *args],
                          capture_output=True, text=True, timeout=30 * SLOW)


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_swaks_starttls(t, mech):
    before = set(t.files("ben@example.org"))
    r = swaks("--server", f"127.0.0.1:{t.sub_port}", "--tls", "--auth", mech,
              "--auth-user", CLAIRE, "--auth-password", PASSWORD,
              "--from", CLAIRE, "--to", "ben@example.org",
              "--header", f"Subject: swaks {mech}")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "235 2.7.0" in r.stdout, r.stdout
    [d] = new_since(t, "ben@example.org", before)
    check_esmtpsa(d, "client.test")
    assert f"Subject: swaks {mech}".encode() in d.body


def test_swaks_implicit_tls(t):
    before = set(t.files("ben@example.org"))
    r = swaks("--server", f"127.0.0.1:{t.subs_port}", "--tlsc", "--auth", "LOGIN",
              "--auth-user", CLAIRE, "--auth-password", PASSWORD,
              "--from", CLAIRE, "--to", "ben@example.org")
    assert r.returncode == 0, r.stdout + r.stderr
    [d] = new_since(t, "ben@example.org", before)
    check_esmtpsa(d, "client.test")


def test_swaks_wrong_password(ternd):
    t = submit_ternd(ternd)
    r = swaks("--server", f"127.0.0.1:{t.sub_port}", "--tls", "--auth", "PLAIN",
              "--auth-user", CLAIRE, "--auth-password", "wrong",
              "--from", CLAIRE, "--to", "ben@example.org")
    assert r.returncode != 0, r.stdout
    assert "535 5.7.8" in r.stdout, r.stdout
    assert t.files("ben@example.org") == []


def test_curl_ssl_reqd(t, world_tmp):
    require("curl", "curl")
    before = set(t.files("ben@example.org"))
    f = world_tmp / "mail.txt"
    f.write_bytes(MSG)
    r = subprocess.run(["curl", "-sS", "--ssl-reqd", "--insecure",
                        f"smtp://127.0.0.1:{t.sub_port}/client.test",
                        "--user", f"{CLAIRE}:{PASSWORD}",
                        "--mail-from", CLAIRE, "--mail-rcpt", "ben@example.org",
                        "--upload-file", str(f)],
                       capture_output=True, text=True, timeout=30 * SLOW)
    assert r.returncode == 0, r.stderr
    [d] = new_since(t, "ben@example.org", before)
    check_esmtpsa(d, "client.test")
    assert d.body.endswith(MSG)


def test_curl_smtps_implicit(t, world_tmp):
    require("curl", "curl")
    before = set(t.files("ben@example.org"))
    f = world_tmp / "mail.txt"
    f.write_bytes(MSG)
    r = subprocess.run(["curl", "-sS", "--insecure",
                        f"smtps://127.0.0.1:{t.subs_port}/client.test",
                        "--user", f"{CLAIRE}:{PASSWORD}",
                        "--mail-from", CLAIRE, "--mail-rcpt", "ben@example.org",
                        "--upload-file", str(f)],
                       capture_output=True, text=True, timeout=30 * SLOW)
    assert r.returncode == 0, r.stderr
    [d] = new_since(t, "ben@example.org", before)
    check_esmtpsa(d, "client.test")


def test_msmtp(t, world_tmp):
    msmtp = require("msmtp", "msmtp")
    before = set(t.files("ben@example.org"))
    conf = world_tmp / "msmtprc"
    conf.write_text(f"""\
account default
host 127.0.0.1
port {t.sub_port}
domain client.test
tls on
tls_starttls on
tls_certcheck off
auth on
user {CLAIRE}
password {PASSWORD}
from {CLAIRE}
""")
    os.chmod(conf, 0o600)
    r = subprocess.run([msmtp, "-C", str(conf), "ben@example.org"],
                       input=b"Subject: from msmtp\n\nhello from msmtp\n",
                       capture_output=True, timeout=30 * SLOW,
                       env=dict(os.environ, HOME=str(world_tmp)))
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    [d] = new_since(t, "ben@example.org", before)
    check_esmtpsa(d, "client.test")
    assert d.return_path == CLAIRE
    assert b"hello from msmtp\r\n" in d.body
