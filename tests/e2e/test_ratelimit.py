"""Inbound rate limits (docs/defence.md, "Rate limits"), with smtplib as
the client: a submission user stopped after N messages an hour (450 4.7.1
and an event=ratelimit line) while another user goes on; messages and
recipients per client address an hour on the MX port; the connection rate
(421 at the greeting, logged once); a dictionary attack closed with 421
and its address refused until the penalty ends; the counts survive SIGHUP;
relay.networks and (by default) loopback are exempt.

Every test but the exemption ones clears rate.exempt_networks, whose
default (127.0.0.0/8, ::1) keeps the rest of the suite, which connects
from loopback all the time, away from the limits."""

import re
import signal
import smtplib
import time

import pytest

from conftest import (PASSWORD, SLOW, SMTPClient, check, submit_ternd,
                      tls_client_context, wait_for)
from conftest import run_in_netns

BEN, CLAIRE = "ben@example.org", "claire@example.org"
MSG = b"Subject: rate\r\n\r\nhello\r\n"
NOEXEMPT = {"rate.exempt_networks": ""}


def mx(t):
    """A smtplib session on the MX port, EHLO done."""
    s = smtplib.SMTP("127.0.0.1", t.port, local_hostname="client.test",
                     timeout=10 * SLOW)
    s.ehlo()
    return s


def submit(t, user):
    """A smtplib session on the submission port, STARTTLS and AUTH done."""
    s = smtplib.SMTP("127.0.0.1", t.sub_port, local_hostname="client.test",
                     timeout=10 * SLOW)
    s.ehlo()
    s.starttls(context=tls_client_context())
    s.ehlo()
    s.login(user, PASSWORD)
    return s


def refused_450(exc):
    assert exc.smtp_code == 450, exc
    assert exc.smtp_error.startswith(b"4.7.1"), exc.smtp_error


def greeting(t):
    """The greeting's code: 220, or what refused the connection."""
    try:
        s = smtplib.SMTP("127.0.0.1", t.port, local_hostname="client.test",
                         timeout=10 * SLOW)
    except smtplib.SMTPConnectError as e:
        return e.smtp_code, e.smtp_error
    except smtplib.SMTPServerDisconnected:
        return 0, b"closed"
    s.quit()
    return 220, b""


# -- per user, on submission ---------------------------------------------------

def test_submission_user_stopped_other_goes_on(ternd):
    t = submit_ternd(ternd, {"rate.messages_per_user_hour": "3"})
    s = submit(t, BEN)
    try:
        for _ in range(3):
            assert s.sendmail(BEN, [CLAIRE], MSG) == {}
        # the compromised account stops at its limit...
        with pytest.raises(smtplib.SMTPSenderRefused) as e:
            s.sendmail(BEN, [CLAIRE], MSG)
        refused_450(e.value)
        assert b"3 messages per hour" in e.value.smtp_error
        # 3 an hour: the next one in 20 minutes (GCRA: one per window/N)
        m = re.search(rb"try again in (\d+) seconds", e.value.smtp_error)
        assert m and 1100 <= int(m.group(1)) <= 1200, e.value.smtp_error
    finally:
        s.quit()
    # ...in a new session too...
    s = submit(t, BEN)
    try:
        with pytest.raises(smtplib.SMTPSenderRefused) as e:
            s.sendmail(BEN, [CLAIRE], MSG)
        refused_450(e.value)
    finally:
        s.quit()
    # ...while the other users go on
    s = submit(t, CLAIRE)
    try:
        for _ in range(3):
            assert s.sendmail(CLAIRE, [BEN], MSG) == {}
    finally:
        s.quit()
    assert len(t.messages(CLAIRE)) == 3
    assert len(t.messages(BEN)) == 3
    lines = [ln for ln in t.log().splitlines() if "event=ratelimit" in ln]
    assert any(re.search(r'event=ratelimit user="ben@example\.org" '
                         r'limit=messages_per_user_hour max=3 '
                         r'retry_after=\d+', ln) for ln in lines), lines
    assert not any("claire" in ln for ln in lines), lines


def test_submission_user_per_day_and_recipients(ternd):
    t = submit_ternd(ternd, {"rate.messages_per_user_day": "2",
                             "rate.recipients_per_user_hour": "4"})
    s = submit(t, BEN)
    try:
        # recipients per hour: the 5th RCPT of the hour is deferred
        refused = s.sendmail(BEN, [CLAIRE, "dave@example.net", BEN], MSG)
        assert refused == {}
        refused = s.sendmail(BEN, [CLAIRE, "dave@example.net"], MSG)
        assert set(refused) == {"dave@example.net"}, refused
        code, text = refused["dave@example.net"]
        assert code == 450 and text.startswith(b"4.7.1"), refused
        assert b"4 recipients per hour" in text
        # messages per day: the third MAIL of the day
        with pytest.raises(smtplib.SMTPSenderRefused) as e:
            s.sendmail(BEN, [CLAIRE], MSG)
        refused_450(e.value)
        assert b"2 messages per day" in e.value.smtp_error
    finally:
        s.quit()
    log = t.log()
    assert "limit=recipients_per_user_hour max=4" in log
    assert "limit=messages_per_user_day max=2" in log


# -- per client address, on the MX port -----------------------------------------

def test_mx_recipients_per_ip_per_hour(ternd):
    t = ternd(dict(NOEXEMPT, **{"rate.recipients_per_ip": "5"}))
    s = mx(t)
    try:
        assert s.sendmail("a@remote.test", [BEN, CLAIRE, "dave@example.net"],
                          MSG) == {}
        refused = s.sendmail("a@remote.test", [BEN, CLAIRE, "dave@example.net"],
                             MSG)
        assert set(refused) == {"dave@example.net"}, refused
        assert refused["dave@example.net"][0] == 450
        assert refused["dave@example.net"][1].startswith(b"4.7.1")
        with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
            s.sendmail("a@remote.test", [BEN], MSG)
        assert e.value.recipients[BEN][0] == 450
    finally:
        s.quit()
    assert len(t.messages(BEN)) == 2
    assert re.search(r"event=ratelimit ip=127\.0\.0\.1 client=127\.0\.0\.1 "
                     r"limit=recipients_per_ip max=5", t.log())


def test_mx_messages_per_ip_per_hour(ternd):
    t = ternd(dict(NOEXEMPT, **{"rate.messages_per_ip": "2"}))
    s = mx(t)
    try:
        for _ in range(2):
            assert s.sendmail("a@remote.test", [BEN], MSG) == {}
        with pytest.raises(smtplib.SMTPSenderRefused) as e:
            s.sendmail("a@remote.test", [BEN], MSG)
        refused_450(e.value)
    finally:
        s.quit()
    assert "limit=messages_per_ip max=2" in t.log()


def test_connection_rate_421_logged_once(ternd):
    t = ternd(dict(NOEXEMPT, **{"rate.connections_per_ip": "5"}))
    # start() made one connection (its probe): four more get their 220
    codes = [greeting(t) for _ in range(10)]
    assert [c for c, _ in codes[:4]] == [220] * 4, codes
    for code, text in codes[4:]:
        assert code == 421 and text.startswith(b"4.7.0"), codes
    lines = [ln for ln in t.log().splitlines()
             if "limit=connections_per_ip" in ln]
    assert len(lines) == 1, lines
    assert "event=ratelimit ip=127.0.0.1" in lines[0]


def test_dictionary_attack_421_and_penalty(ternd):
    penalty = 4
    t = ternd(dict(NOEXEMPT, **{"rate.penalty": str(penalty)}))
    s = mx(t)
    s.mail("a@remote.test")
    replies = []
    for i in range(50):
        code, text = s.rcpt(f"nobody{i}@example.org")
        replies.append((code, text))
        if code != 550:
            break
    # rate.unknown_recipients' default: ten 550 5.1.1, then 421 4.7.0
    assert [c for c, _ in replies[:10]] == [550] * 10, replies
    assert all(x.startswith(b"5.1.1") for _, x in replies[:10]), replies
    assert len(replies) == 11 and replies[10][0] == 421, replies
    assert replies[10][1].startswith(b"4.7.0"), replies
    s.close()
    assert re.search(r"event=ratelimit ip=127\.0\.0\.1 "
                     r"limit=unknown_recipients max=10 penalty=4", t.log())
    # the address is penalised: new connections get 421 at the greeting
    t0 = time.monotonic()
    code, text = greeting(t)
    assert code == 421 and text.startswith(b"4.7.0"), (code, text)
    assert b"unknown recipients" in text
    assert "limit=penalty" in t.log()
    # until the penalty ends
    time.sleep(max(0.0, penalty + 0.5 - (time.monotonic() - t0)))
    assert greeting(t)[0] == 220


@pytest.mark.root
def test_ipv6_penalty_covers_the_slash64(ternd):
    """An IPv6 client is its /64: the penalty earned from fd00::2 refuses
    fd00::3, while fd00:0:0:1::1 (the next /64) is served."""
    t = ternd(dict(NOEXEMPT, **{"rate.penalty": "60",
                                "rate.unknown_recipients": "2"}), start=False)
    t.overrides["listen.smtp"] = f"[::]:{t.port}"

    def scenario():
        t.start()
        with SMTPClient(t.port, host="fd00::1", source="fd00::2") as c:
            c.ehlo()
            c.expect("MAIL FROM:<a@remote.test>", 250)
            for i in range(2):
                c.expect(f"RCPT TO:<nobody{i}@example.org>", 550, "5.1.1")
            c.expect("RCPT TO:<nobody9@example.org>", 421, "4.7.0")
        c3 = SMTPClient(t.port, host="fd00::1", source="fd00::3")
        check(c3.greeting, 421, "4.7.0", "another address of the /64")
        c3.close()
        with SMTPClient(t.port, host="fd00::1", source="fd00:0:0:1::1") as o:
            assert o.greeting.code == 220, "the next /64 is another client"
            o.expect("QUIT", 221)
        assert "ip=fd00::3 client=fd00:0:0:0::/64 limit=penalty" in t.log()
        t.stop()

    run_in_netns(scenario)


def test_unknown_recipients_fires_before_limits_errors(ternd):
    """rate.unknown_recipients past limits.errors: the rule fires one error
    before limits.errors would close the session without a penalty."""
    t = ternd(dict(NOEXEMPT, **{"limits.errors": "4",
                                "rate.unknown_recipients": "50"}))
    s = mx(t)
    s.mail("a@remote.test")
    codes = [s.rcpt(f"nobody{i}@example.org")[0] for i in range(4)]
    assert codes == [550, 550, 550, 421], codes
    s.close()
    assert "limit=unknown_recipients max=3 " in t.log()
    assert greeting(t)[0] == 421


def test_sighup_keeps_the_counts(ternd):
    t = ternd(dict(NOEXEMPT, **{"rate.messages_per_ip": "2"}))
    s = mx(t)
    try:
        for _ in range(2):
            assert s.sendmail("a@remote.test", [BEN], MSG) == {}
    finally:
        s.quit()
    t.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "event=reload" in t.log(), "the reload")
    s = mx(t)
    try:
        with pytest.raises(smtplib.SMTPSenderRefused) as e:
            s.sendmail("a@remote.test", [BEN], MSG)
        refused_450(e.value)
    finally:
        s.quit()


# -- exemptions -----------------------------------------------------------------

SMALL = {"rate.connections_per_ip": "2", "rate.messages_per_ip": "1",
         "rate.recipients_per_ip": "2", "rate.unknown_recipients": "2"}


def exempt_session(t):
    """Past every limit of SMALL: all of it must pass."""
    for _ in range(4):
        assert greeting(t)[0] == 220
    s = mx(t)
    try:
        for _ in range(3):
            assert s.sendmail("a@remote.test", [BEN, CLAIRE,
                                                "dave@example.net"], MSG) == {}
        s.mail("a@remote.test")
        for i in range(5):
            assert s.rcpt(f"nobody{i}@example.org")[0] == 550
        s.rset()
    finally:
        s.quit()
    assert greeting(t)[0] == 220
    assert "event=ratelimit" not in t.log()


def test_relay_networks_exempt(ternd):
    exempt_session(ternd(dict(SMALL, **NOEXEMPT,
                              **{"relay.networks": "127.0.0.0/8"})))


def test_loopback_exempt_by_default(ternd):
    exempt_session(ternd(SMALL))
