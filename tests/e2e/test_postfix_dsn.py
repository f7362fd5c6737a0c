"""Per-recipient outcomes and DSN parameters between tern and a real
Postfix (the private instance of test_postfix.py, with a recipient access
map and its SMTP server logging every command it receives):

  - one transaction whose recipients get 250, 451 and 550: only the 451
    one is tried again (and delivered once Postfix lets it in), the 550
    one bounces once, the 250 one is never sent again;
  - NOTIFY=NEVER: a recipient Postfix refuses for good earns no report,
    while one beside it without NOTIFY does;
  - ENVID, NOTIFY and ORCPT go on to the next hop as the client gave them,
    and come back in Postfix's own success DSN.

Postfix's master must start as root: these tests carry the "root" mark.
"""

import re

import pytest

from conftest import (dsn_of, field, maildir_files, wait_for)
from test_postfix import BOB, Postfix, log_lines

pytestmark = pytest.mark.root

CLAIRE = "claire@example.org"       # a user of tern: her reports land here
LATER = "later@pf.test"             # a mailbox Postfix first answers 451
NOBODY = "nobody@pf.test"           # no mailbox: Postfix says 550 5.1.1


class PostfixPeer(Postfix):
    """The private Postfix with more mailboxes, a recipient access map
    (texthash, re-read on reload) and smtpd logging each command from
    127.0.0.1 ("< client: COMMAND")."""

    def __init__(self, relayhost=None, mailboxes=(LATER,), access=None):
        super().__init__(relayhost)
        with open(self.conf / "vmailbox", "a") as f:
            for mb in mailboxes:
                local = mb.split("@")[0]
                f.write(f"{mb} pf.test/{local}/\n")
        self.write_access(access or {})
        main = (self.conf / "main.cf").read_text()
        assert "\nsmtpd_recipient_restrictions =\n" in main, main
        main = main.replace(
            "\nsmtpd_recipient_restrictions =\n",
            f"\nsmtpd_recipient_restrictions = check_recipient_access "
            f"texthash:{self.conf}/rcpt_access\n")
        main += "debug_peer_list = 127.0.0.1\ndebug_peer_level = 1\n"
        (self.conf / "main.cf").write_text(main)

    def write_access(self, access):
        (self.conf / "rcpt_access").write_text(
            "".join(f"{k} {v}\n" for k, v in access.items()))

    def set_access(self, access):
        """New access map; smtpd processes restart on reload and read it."""
        self.write_access(access)
        self.postfix("reload")

    def commands(self, verb):
        """Every command line Postfix's smtpd received that starts with verb
        (e.g. "RCPT TO:<bob@pf.test>"), in order."""
        out = []
        for ln in self.log().splitlines():
            m = re.search(r"postfix/smtpd\[\d+\]: < \S+: (.*)$", ln)
            if m and m.group(1).upper().startswith(verb.upper()):
                out.append(m.group(1))
        return out

    def maildir(self, local="bob"):
        return super().maildir(local)


@pytest.fixture
def peer():
    made = []

    def make(**kw):
        p = PostfixPeer(**kw)
        made.append(p)
        return p.start()
    yield make
    for p in made:
        p.stop()
        import shutil
        shutil.rmtree(p.dir, ignore_errors=True)


def tern_and_peer(ternd, dnsmasq, peer, relay_back=False, **kw):
    """tern relaying pf.test by MX to the Postfix peer; relay_back: the
    peer sends everything not its own (its reports to claire) to tern."""
    t = ternd({"relay.networks": "127.0.0.1/32", "queue.retry_first": "1",
               "queue.retry_max": "2"}, start=False)
    pf = peer(relayhost=f"[127.0.0.1]:{t.port}" if relay_back else None, **kw)
    dns = dnsmasq(mx=[("pf.test", "mx.pf.test", 10)],
                  hosts=[("mx.pf.test", "127.0.0.1")])
    t.overrides["dns.servers"] = dns.server
    t.overrides["relay.port"] = str(pf.port)
    t.start()
    return t, pf


def send(t, rcpts, tag, mail_params=""):
    """One transaction from claire; rcpts: [(address, RCPT parameters)].
    Returns the queue id."""
    with t.client() as c:
        c.ehlo("app.example.org")
        c.expect(f"MAIL FROM:<{CLAIRE}>{mail_params}", 250)
        for addr, params in rcpts:
            c.expect(f"RCPT TO:<{addr}>{params}", 250)
        c.expect("DATA", 354)
        c.send(f"From: <{CLAIRE}>\r\nSubject: {tag}\r\n"
               f"Message-ID: <{tag}@example.org>\r\n\r\nbody of {tag}\r\n.\r\n"
               .encode())
        rep = c.reply()
        c.expect("QUIT", 221)
    assert rep.code == 250, rep.text
    m = re.search(r"queued as ([0-9a-f]{16})$", rep.text)
    assert m, rep.text
    return m.group(1)


def outcome_lines(log, qid, event, rcpt):
    return re.findall(rf"id={qid} mx=mx\.pf\.test addr=\S+ event={event} "
                      rf"to=<{re.escape(rcpt)}> code=\d+ .*", log)


def wait_removed(t, qid, timeout=30):
    wait_for(lambda: re.search(rf"id={qid} event=removed\b", t.log()),
             f"id={qid} event=removed in tern's log", timeout=timeout)


def test_mixed_outcome_250_451_550(ternd, dnsmasq, peer):
    t, pf = tern_and_peer(ternd, dnsmasq, peer,
                          access={LATER: "451 4.7.1 Greylisted, try later"})
    qid = send(t, [(BOB, ""), (LATER, ""), (NOBODY, "")], "mixed")

    # the first transaction: one answer per recipient, each its own fate
    log = wait_for(lambda: (lambda lg: lg if len(outcome_lines(
        lg, qid, "deferred", LATER)) >= 2 else None)(t.log()),
        "the 451 recipient deferred twice (first try and one retry)", timeout=20)
    [ok] = outcome_lines(log, qid, "delivered", BOB)
    assert "code=250 " in ok, ok
    [gone] = outcome_lines(log, qid, "bounced", NOBODY)
    assert "code=550 enh=5.1.1 " in gone, gone
    assert all("code=451 enh=4.7.1 " in ln
               for ln in outcome_lines(log, qid, "deferred", LATER)), log[-3000:]
    # the retries asked Postfix about LATER alone
    rcpts = pf.commands("RCPT TO:")
    assert sum(1 for c in rcpts if c.startswith(f"RCPT TO:<{BOB}>")) == 1, rcpts
    assert sum(1 for c in rcpts if c.startswith(f"RCPT TO:<{NOBODY}>")) == 1, rcpts
    assert sum(1 for c in rcpts if c.startswith(f"RCPT TO:<{LATER}>")) >= 2, rcpts
    [m] = t.queue_list()
    states = {r["addr"]: r["state"].lower() for r in m["recipients"]}
    assert states == {BOB: "relayed", LATER: "pending", NOBODY: "failed"} or \
        states == {BOB: "delivered", LATER: "pending", NOBODY: "failed"}, states
    # the failure is reported at once, while LATER still waits
    [p] = wait_for(lambda: maildir_files(t.state_dir, CLAIRE),
                   "the DSN for nobody in claire's Maildir", timeout=15)

    # Postfix changes its mind: LATER gets in on the next retry
    pf.set_access({})
    wait_for(lambda: pf.maildir("later"), "the message in later's Maildir",
             timeout=30)
    wait_removed(t, qid)
    log = t.log()
    [ok] = outcome_lines(log, qid, "delivered", LATER)
    assert "code=250 " in ok, ok
    # after everything: each recipient got exactly its due
    rcpts = pf.commands("RCPT TO:")
    assert sum(1 for c in rcpts if c.startswith(f"RCPT TO:<{BOB}>")) == 1, rcpts
    assert sum(1 for c in rcpts if c.startswith(f"RCPT TO:<{NOBODY}>")) == 1, rcpts
    assert len(pf.maildir("bob")) == 1, pf.maildir("bob")
    assert len(pf.maildir("later")) == 1, pf.maildir("later")
    assert len(log_lines(pf.log(), rf"to=<{BOB}>.*status=sent")) == 1
    assert len(re.findall(rf"id={qid} event=dsn ", log)) == 1, log[-3000:]
    assert len(outcome_lines(log, qid, "bounced", NOBODY)) == 1, log[-3000:]
    # the one report: nobody, failed, with Postfix's own words
    assert maildir_files(t.state_dir, CLAIRE) == [p]
    m, per_msg, blocks, _ = dsn_of(p.read_bytes())
    assert len(blocks) == 1, [b.items() for b in blocks]
    [r] = blocks
    assert field(r, "Final-Recipient").lower() == f"rfc822; {NOBODY}", r.items()
    assert field(r, "Action").lower() == "failed", r.items()
    assert field(r, "Status") == "5.1.1", r.items()
    assert re.match(r"(?i)smtp; ?550 5\.1\.1 ", field(r, "Diagnostic-Code")), r.items()
    assert field(r, "Remote-MTA").lower() == "dns; mx.pf.test", r.items()
    assert t.queue_list() == []


def test_notify_never_suppresses_the_bounce(ternd, dnsmasq, peer):
    t, pf = tern_and_peer(ternd, dnsmasq, peer)
    other = "other@pf.test"
    qid = send(t, [(NOBODY, " NOTIFY=NEVER"), (other, ""),
                   (BOB, " NOTIFY=NEVER")], "never")
    wait_removed(t, qid)
    log = t.log()
    # NOTIFY went on with each RCPT; Postfix refused nobody and other ...
    rcpts = pf.commands("RCPT TO:")
    assert f"RCPT TO:<{NOBODY}> NOTIFY=NEVER" in rcpts, rcpts
    assert f"RCPT TO:<{BOB}> NOTIFY=NEVER" in rcpts, rcpts
    assert len(outcome_lines(log, qid, "bounced", NOBODY)) == 1, log[-3000:]
    assert len(outcome_lines(log, qid, "bounced", other)) == 1, log[-3000:]
    # ... but only the one that did not say NEVER is reported
    assert re.search(rf"id={qid} event=dsn_suppressed to=<{NOBODY}> "
                     rf"reason=notify_never", log), log[-3000:]
    assert not re.search(rf"id={qid} event=dsn_suppressed to=<{other}>", log)
    assert len(re.findall(rf"id={qid} event=dsn kind=failure", log)) == 1, log[-3000:]
    [p] = maildir_files(t.state_dir, CLAIRE)
    _, _, blocks, _ = dsn_of(p.read_bytes())
    assert [field(b, "Final-Recipient").lower() for b in blocks] == \
        [f"rfc822; {other}"], [b.items() for b in blocks]
    # bob, delivered, NOTIFY=NEVER: Postfix sent no success report either.
    # Postfix's 250 is its queue's; its virtual agent writes the Maildir
    # a moment later (seen late on a loaded machine).
    wait_for(lambda: pf.maildir("bob"), "the message in bob's Maildir",
             timeout=30)
    assert len(pf.maildir("bob")) == 1
    assert t.queue_list() == []


def test_envid_orcpt_go_to_the_next_hop(ternd, dnsmasq, peer):
    """ENVID and ORCPT (xtext, as the client sent them) reach Postfix,
    which then reports success itself: its DSN comes back through tern to
    claire and carries them."""
    t, pf = tern_and_peer(ternd, dnsmasq, peer, relay_back=True)
    envid, orcpt = "QQ+2B314+3Dpi", "rfc822;Bob+2BFilter@pf.test"
    qid = send(t, [(BOB, f" NOTIFY=SUCCESS,FAILURE ORCPT={orcpt}")], "envid",
               mail_params=f" RET=HDRS ENVID={envid}")
    wait_removed(t, qid)
    [mail] = [c for c in pf.commands("MAIL FROM:") if c.startswith(f"MAIL FROM:<{CLAIRE}>")]
    assert f" ENVID={envid}" in mail and " RET=HDRS" in mail, mail
    [rcpt] = pf.commands("RCPT TO:")
    assert rcpt == f"RCPT TO:<{BOB}> NOTIFY=SUCCESS,FAILURE ORCPT={orcpt}", rcpt
    # tern reports nothing itself: the next hop does DSN, so it will
    assert not re.search(rf"id={qid} event=dsn ", t.log()), t.log()[-3000:]
    [p] = wait_for(lambda: maildir_files(t.state_dir, CLAIRE),
                   "Postfix's success DSN in claire's Maildir", timeout=30)
    m, per_msg, [r], returned = dsn_of(p.read_bytes())
    assert field(per_msg, "Original-Envelope-Id") == "QQ+314=pi", per_msg.items()
    assert field(per_msg, "Reporting-MTA").lower() == "dns; mx.pf.test", per_msg.items()
    # Postfix writes the type and the decoded address with no space between
    assert re.fullmatch(r"rfc822; ?Bob\+Filter@pf\.test",
                        field(r, "Original-Recipient")), r.items()
    assert field(r, "Final-Recipient").lower() == f"rfc822; {BOB}", r.items()
    assert field(r, "Action").lower() == "delivered", r.items()
    assert len(pf.maildir("bob")) == 1
