"""Greylisting (docs/defence.md, "Greylisting"): on the MX port a new
triplet (client /24, sender, recipient) is deferred 451 4.7.1 until
greylist.delay has passed, then accepted; a network that passed once is
whitelisted; relay.networks, the submission port and senders with SPF pass
for a domain in greylist.whitelist_domains are exempt; the state lives in
STATE/greylist.db and survives a restart and a SIGHUP."""

import base64
import re
import signal
import time

from conftest import PASSWORD, SLOW, check, submit_ternd, wait_for

DELAY = 2
RCPT = "ben@example.org"
RCPT2 = "claire@example.org"
GREY = {"greylist.enable": "yes", "greylist.delay": str(DELAY)}


def rcpt(t, sender, to=RCPT):
    """One transaction on the MX port; the RCPT reply (the message is
    sent when it is 250)."""
    with t.client(timeout=5.0 * SLOW) as c:
        c.ehlo("client.test")
        c.expect(f"MAIL FROM:<{sender}>", 250)
        r = c.cmd(f"RCPT TO:<{to}>")
        if r.code == 250:
            c.expect("DATA", 354)
            c.send(b"Subject: grey\r\n\r\nhello\r\n.\r\n")
            check(c.reply(), 250, None, "end of data")
        c.expect("QUIT", 221)
        return r


def deferred(r):
    check(r, 451, "4.7.1", "greylisted RCPT")
    m = re.search(r"try again in (\d+) seconds", r.text)
    assert m, r.text
    return int(m.group(1))


def test_first_deferred_then_passes(ternd):
    t = ternd(GREY)
    assert deferred(rcpt(t, "a@remote.test")) == DELAY
    # again before the delay: still deferred, for what is left of it
    assert deferred(rcpt(t, "a@remote.test")) <= DELAY
    # a different recipient is a new triplet (nothing passed yet)
    assert deferred(rcpt(t, "a@remote.test", RCPT2)) == DELAY
    time.sleep(DELAY + 1)
    check(rcpt(t, "a@remote.test"), 250, None, "after the delay")
    assert len(t.messages(RCPT)) == 1
    assert re.search(r"event=greylist result=defer net=127\.0\.0\.0/24 "
                     r"from=<a@remote\.test> to=<ben@example\.org>", t.log())
    assert "event=greylist result=pass" in t.log()


def test_auto_whitelist_after_pass(ternd):
    t = ternd(GREY)
    deferred(rcpt(t, "a@remote.test"))
    time.sleep(DELAY + 1)
    check(rcpt(t, "a@remote.test"), 250, None, "after the delay")
    # the /24 passed once: another sender and recipient pass at once
    check(rcpt(t, "other@elsewhere.test", RCPT2), 250, None,
          "whitelisted /24")
    assert "event=greylist result=known" in t.log()


def test_relay_networks_exempt(ternd):
    t = ternd(dict(GREY, **{"relay.networks": "127.0.0.0/8"}))
    check(rcpt(t, "a@remote.test"), 250, None, "relay network")
    assert "event=greylist " not in t.log()


def test_off_by_default(ternd):
    t = ternd()
    check(rcpt(t, "a@remote.test"), 250, None, "greylisting off")
    assert not (t.state_dir / "greylist.db").exists()


def test_submission_exempt(ternd):
    t = submit_ternd(ternd, GREY)
    auth = base64.b64encode(f"\0{RCPT}\0{PASSWORD}".encode()).decode()
    with t.sub_client() as c:
        c.expect(f"AUTH PLAIN {auth}", 235, "2.7.0")
        c.expect(f"MAIL FROM:<{RCPT}>", 250)
        c.expect("RCPT TO:<a@remote.test>", 250)
        c.expect(f"RCPT TO:<{RCPT2}>", 250)
        c.expect("RSET", 250)
        c.expect("QUIT", 221)
    assert "event=greylist " not in t.log()


def test_state_survives_restart_and_sighup(ternd):
    t = ternd(GREY)
    deferred(rcpt(t, "a@remote.test"))
    t.stop()
    t.start()
    # the triplet is remembered: after the delay it passes at once
    # instead of starting a new wait
    time.sleep(DELAY + 1)
    check(rcpt(t, "a@remote.test"), 250, None, "after a restart")
    t.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "event=reload" in t.log(), "the reload")
    # the /24 whitelisting is still there after the reload
    check(rcpt(t, "new@remote.test", RCPT2), 250, None, "after SIGHUP")
    t.stop()
    t.start()
    check(rcpt(t, "third@remote.test"), 250, None, "after a 2nd restart")


SPF_ZONE = [
    "--txt-record=pass.test,v=spf1 ip4:127.0.0.1 -all",
    "--txt-record=sub.pass.test,v=spf1 ip4:127.0.0.1 -all",
    "--txt-record=fail.test,v=spf1 ip4:192.0.2.1 -all",
    "--txt-record=other.test,v=spf1 ip4:127.0.0.1 -all",
    "--local=/test/",
]


def test_spf_pass_whitelisted_domain_skips(ternd, dnsmasq):
    dns = dnsmasq(extra=SPF_ZONE)
    t = ternd(dict(GREY, **{
        "spf.check": "yes", "dns.servers": dns.server,
        "greylist.whitelist_domains": "pass.test, fail.test"}))
    # SPF pass for a listed domain (and its subdomain): no greylisting,
    # even without spf.reject_fail (the RCPT waits for the SPF result)
    check(rcpt(t, "a@pass.test"), 250, None, "SPF pass, whitelisted")
    check(rcpt(t, "a@sub.pass.test"), 250, None, "subdomain")
    assert "event=greylist result=whitelisted" in t.log()
    # a listed domain whose SPF fails is greylisted
    deferred(rcpt(t, "a@fail.test"))
    # SPF pass for a domain not listed: greylisted
    deferred(rcpt(t, "a@other.test"))
