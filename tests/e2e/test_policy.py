"""Policy delegation (docs/policy.md): ternd against a scripted policy
server (a thread in the test speaking the Postfix policy protocol: every
action, every failure, the attributes received, connection reuse) and
against Debian's postfwd, a real policy server, started by the test on
loopback with a small ruleset.  Every check reads what was delivered (or
refused) and what the policy server was asked."""

import base64
import grp
import os
import pwd
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import PASSWORD, SLOW, free_port, submit_ternd, wait_for, wait_port

BEN, CLAIRE, DAVE = "ben@example.org", "claire@example.org", "dave@example.net"
SENDER = "alice@example.net"

MSG = (b"From: <alice@example.net>\r\nTo: <ben@example.org>\r\n"
       b"Subject: policy test\r\nMessage-ID: <p1@example.net>\r\n\r\n"
       b"the body\r\n")


class PolicyPeer:
    """A policy server on a loopback port.  script(req, peer) answers each
    request (a dict of its attributes): a str is the action
    ("action=...\\n\\n" is sent), bytes are sent as they are, and
    "!stall", "!close" (close without answering) and "!close_after"
    (answer, then close the connection) act.  Every request is kept in
    .requests with the number of its connection in req["_conn"]."""

    def __init__(self, script):
        self.script = script
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(16)
        self.port = self.srv.getsockname()[1]
        self.spec = f"inet:127.0.0.1:{self.port}"
        self.requests = []
        self.conns = 0
        self.socks = []
        self.lock = threading.Lock()
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                s, _ = self.srv.accept()
            except OSError:
                return
            with self.lock:
                self.conns += 1
                n = self.conns
                self.socks.append(s)
            threading.Thread(target=self.one, args=(s, n), daemon=True).start()

    def one(self, s, n):
        f = s.makefile("rb")
        try:
            while True:
                req = {}
                while True:
                    line = f.readline()
                    if not line:
                        return
                    line = line.rstrip(b"\n").decode("utf-8", "replace")
                    if line == "":
                        break
                    k, _, v = line.partition("=")
                    req[k] = v
                req["_conn"] = n
                with self.lock:
                    self.requests.append(req)
                out = self.script(req, self)
                if out == "!stall":
                    time.sleep(30)
                    return
                if out == "!close":
                    return
                close_after = out == "!close_after"
                if close_after:
                    out = "DUNNO"
                s.sendall(out if isinstance(out, bytes)
                          else f"action={out}\n\n".encode())
                if close_after:
                    return
        except OSError:
            pass
        finally:
            try:
                s.close()
            except OSError:
                pass

    def of(self, state):
        return [r for r in self.requests if r.get("protocol_state") == state]

    def close(self):
        self.srv.close()
        with self.lock:
            for s in self.socks:
                try:
                    s.close()
                except OSError:
                    pass


@pytest.fixture
def policy():
    peers = []

    def make(script):
        if isinstance(script, str):
            action = script
            script = lambda req, peer: action   # noqa: E731
        p = PolicyPeer(script)
        peers.append(p)
        return p
    yield make
    for p in peers:
        p.close()


def server(ternd, specs, **over):
    o = {"policy.servers": ", ".join(specs), "policy.timeout": "2"}
    o.update(over)
    return ternd(o)


def send(t, rcpts=(BEN,), content=MSG, sender=SENDER):
    """One transaction; (replies to each RCPT, reply to the data or
    None)."""
    with t.client() as c:
        c.ehlo("client.test")
        c.expect(f"MAIL FROM:<{sender}> SIZE={len(content)}", 250)
        rr = [c.cmd(f"RCPT TO:<{r}>") for r in rcpts]
        if not any(r.code == 250 for r in rr):
            c.cmd("QUIT")
            return rr, None
        c.expect("DATA", 354)
        c.send(content + b".\r\n")
        rep = c.reply(timeout=20 * SLOW)
        c.cmd("QUIT")
        return rr, rep


def delivered(t, addr=BEN, n=1):
    files = wait_for(lambda: len(t.files(addr)) >= n and t.files(addr),
                     f"a message for {addr}")
    return files[-1].read_bytes()


def head(data):
    return data.split(b"\r\n\r\n", 1)[0].decode()


def by_rcpt(table):
    """A script: the action for the RCPT's recipient in table, DUNNO
    for the others and at the end of data."""
    def script(req, peer):
        if req.get("protocol_state") == "RCPT":
            return table.get(req.get("recipient"), "DUNNO")
        return table.get("EOM", "DUNNO")
    return script


# ---------------------------------------------------------------------------
# what a policy server is told
# ---------------------------------------------------------------------------

def test_attributes_at_rcpt_and_end_of_data(ternd, policy):
    p = policy("DUNNO")
    t = server(ternd, [p.spec])
    rr, rep = send(t, rcpts=(BEN,))
    assert rr[0].code == 250 and rep.code == 250, (rr, rep)
    h = head(delivered(t))
    rcpt, = p.of("RCPT")
    assert rcpt["request"] == "smtpd_access_policy"
    assert rcpt["protocol_name"] == "ESMTP"
    assert rcpt["helo_name"] == "client.test"
    assert rcpt["sender"] == SENDER and rcpt["recipient"] == BEN
    assert rcpt["recipient_count"] == "0"
    assert rcpt["client_address"] == "127.0.0.1"
    assert rcpt["client_name"] == "unknown"
    assert rcpt["reverse_client_name"] == "unknown"
    assert int(rcpt["client_port"]) > 0
    assert rcpt["server_address"] == "127.0.0.1"
    assert rcpt["server_port"] == str(t.port)
    assert rcpt["sasl_username"] == "" and rcpt["sasl_method"] == ""
    assert rcpt["encryption_protocol"] == ""
    assert rcpt["size"] == str(len(MSG))          # MAIL's SIZE=
    # the queue id is the one of the Received field
    assert f"id {rcpt['queue_id']}" in " ".join(h.split()), (rcpt, h)
    eom, = p.of("END-OF-MESSAGE")
    assert eom["recipient_count"] == "1" and eom["recipient"] == BEN
    assert eom["queue_id"] == rcpt["queue_id"]
    assert eom["instance"] == rcpt["instance"] != ""
    assert int(eom["size"]) == len(MSG)            # the message's own


def test_two_recipients_end_of_data_has_count_not_recipient(ternd, policy):
    p = policy("DUNNO")
    t = server(ternd, [p.spec])
    rr, rep = send(t, rcpts=(BEN, CLAIRE))
    assert rep.code == 250
    assert [r["recipient"] for r in p.of("RCPT")] == [BEN, CLAIRE]
    eom, = p.of("END-OF-MESSAGE")
    assert eom["recipient_count"] == "2" and eom["recipient"] == ""


def test_submission_sasl_and_tls_attributes(ternd, policy):
    p = policy("DUNNO")
    t = submit_ternd(ternd, {"policy.servers": p.spec})
    with t.sub_client() as c:
        tok = base64.b64encode(f"\0{BEN}\0{PASSWORD}".encode()).decode()
        c.expect(f"AUTH PLAIN {tok}", 235)
        c.expect(f"MAIL FROM:<{BEN}> AUTH=<{BEN}>", 250)
        c.expect(f"RCPT TO:<{CLAIRE}>", 250)
        c.expect("DATA", 354)
        c.send(MSG.replace(b"alice@example.net", BEN.encode()) + b".\r\n")
        assert c.reply(timeout=20 * SLOW).code == 250
        c.cmd("QUIT")
    delivered(t, CLAIRE)
    rcpt, = p.of("RCPT")
    assert rcpt["sasl_username"] == BEN and rcpt["sasl_method"] == "PLAIN"
    assert rcpt["sasl_sender"] == BEN
    assert rcpt["encryption_protocol"].startswith("TLSv1."), rcpt
    assert rcpt["encryption_cipher"] != ""
    assert int(rcpt["encryption_keysize"]) >= 128
    assert rcpt["server_port"] == str(t.sub_port)


def test_skip_authenticated(ternd, policy):
    p = policy("REJECT")
    t = submit_ternd(ternd, {"policy.servers": p.spec,
                             "policy.skip_authenticated": "yes"})
    with t.sub_client() as c:
        tok = base64.b64encode(f"\0{BEN}\0{PASSWORD}".encode()).decode()
        c.expect(f"AUTH PLAIN {tok}", 235)
        c.expect(f"MAIL FROM:<{BEN}>", 250)
        c.expect(f"RCPT TO:<{CLAIRE}>", 250)
        c.cmd("QUIT")
    assert p.requests == []
    # the MX port is still asked
    rr, _ = send(t)
    assert rr[0].code == 550 and len(p.requests) == 1


# ---------------------------------------------------------------------------
# actions
# ---------------------------------------------------------------------------

def test_reject_one_recipient_others_stay(ternd, policy):
    p = policy(by_rcpt({CLAIRE: "REJECT Claire is not taking mail"}))
    t = server(ternd, [p.spec])
    rr, rep = send(t, rcpts=(CLAIRE, BEN))
    assert rr[0].code == 550 and rr[0].enh == "5.7.1", rr[0]
    assert "Claire is not taking mail" in rr[0].text
    assert rr[1].code == 250 and rep.code == 250
    delivered(t, BEN)
    assert t.files(CLAIRE) == []
    assert "event=policy " in t.log() and "action=reject" in t.log()


@pytest.mark.parametrize("action,code,enh,text", [
    ("REJECT", 550, "5.7.1", "Access denied"),
    ("reject 5.7.2 lower case and own code", 550, "5.7.2",
     "lower case and own code"),
    ("DEFER come back later", 450, "4.7.1", "come back later"),
    ("DEFER_IF_PERMIT busy", 450, "4.7.1", "busy"),
    ("554 5.7.3 explicit", 554, "5.7.3", "explicit"),
    ("451 4.7.9 explicit temp", 451, "4.7.9", "explicit temp"),
    ("550 no enhanced code", 550, "5.7.1", "no enhanced code"),
    ("REJECT caf\u00e9 \u2014 8-bit", 550, "5.7.1", "caf?? ??? 8-bit"),
])
def test_refusals_at_rcpt(ternd, policy, action, code, enh, text):
    p = policy(by_rcpt({BEN: action}))
    t = server(ternd, [p.spec])
    rr, rep = send(t)
    assert rr[0].code == code and rr[0].enh == enh, rr[0]
    assert rr[0].text.endswith(text), rr[0]
    assert rep is None


def test_421_closes_the_session(ternd, policy):
    p = policy(by_rcpt({BEN: "421 4.7.0 go away now"}))
    t = server(ternd, [p.spec])
    with t.client() as c:
        c.ehlo()
        c.expect(f"MAIL FROM:<{SENDER}>", 250)
        r = c.cmd(f"RCPT TO:<{BEN}>")
        assert r.code == 421 and "go away now" in r.text
        c.wait_closed()


def test_reject_at_end_of_data(ternd, policy):
    p = policy(by_rcpt({"EOM": "REJECT 5.7.1 message refused by policy"}))
    t = server(ternd, [p.spec])
    rr, rep = send(t)
    assert rr[0].code == 250
    assert rep.code == 550 and rep.enh == "5.7.1", rep
    assert "message refused by policy" in rep.text
    time.sleep(0.5)
    assert t.files(BEN) == []


def test_defer_at_end_of_data(ternd, policy):
    p = policy(by_rcpt({"EOM": "DEFER"}))
    t = server(ternd, [p.spec])
    rr, rep = send(t)
    assert rep.code == 450 and rep.enh == "4.7.1", rep
    time.sleep(0.5)
    assert t.files(BEN) == []


@pytest.mark.parametrize("where", ["RCPT", "EOM"])
def test_discard(ternd, policy, where):
    p = policy(by_rcpt({BEN if where == "RCPT" else "EOM": "DISCARD spam"}))
    t = server(ternd, [p.spec])
    rr, rep = send(t, rcpts=(BEN, CLAIRE))
    assert [r.code for r in rr] == [250, 250]
    assert rep.code == 250 and "queued as" in rep.text, rep
    time.sleep(0.5)
    assert t.files(BEN) == [] and t.files(CLAIRE) == []
    assert "event=policy_discard" in t.log()
    # a DISCARD at RCPT decides the message: no end-of-data question
    assert len(p.of("END-OF-MESSAGE")) == (0 if where == "RCPT" else 1)


def test_prepend_headers_above_received(ternd, policy):
    p = policy(by_rcpt({BEN: "PREPEND X-Policy-Rcpt: checked at rcpt",
                        "EOM": "PREPEND X-Policy-Eom: checked at eom"}))
    t = server(ternd, [p.spec])
    rr, rep = send(t)
    assert rep.code == 250
    h = head(delivered(t))
    lines = h.split("\r\n")
    i = lines.index("X-Policy-Rcpt: checked at rcpt")
    j = lines.index("X-Policy-Eom: checked at eom")
    k = next(n for n, x in enumerate(lines) if x.startswith("Received: "))
    assert i < j < k, lines


def test_prepend_not_a_header_is_garbage(ternd, policy):
    p = policy(by_rcpt({BEN: "PREPEND not a header"}))
    t = server(ternd, [p.spec])
    rr, _ = send(t)
    assert rr[0].code == 451 and rr[0].enh == "4.3.5", rr[0]
    assert "error=unknown_action" in t.log()


@pytest.mark.parametrize("action", ["WARN odd client", "INFO noted", "OK",
                                    "DUNNO", "ok"])
def test_pass_through_actions(ternd, policy, action):
    p = policy(action)
    t = server(ternd, [p.spec])
    rr, rep = send(t)
    assert rr[0].code == 250 and rep.code == 250
    delivered(t)
    assert f'text="{action}"' in t.log()


@pytest.mark.parametrize("action", ["HOLD review", "REDIRECT x@example.org",
                                    "FILTER smtp:[127.0.0.1]:10025"])
def test_unsupported_actions_defer(ternd, policy, action):
    p = policy(by_rcpt({BEN: action}))
    t = server(ternd, [p.spec])
    rr, _ = send(t)
    assert rr[0].code == 450 and rr[0].enh == "4.7.1", rr[0]
    assert "event=policy_unsupported" in t.log()


@pytest.mark.parametrize("action", ["BCC x@example.org", "250 fine",
                                    "reject_unknown_sender_domain",
                                    "550 4.7.1 wrong class"])
def test_unknown_action_default_action(ternd, policy, action):
    p = policy(by_rcpt({BEN: action}))
    t = server(ternd, [p.spec])
    rr, _ = send(t)
    assert rr[0].code == 451 and rr[0].enh == "4.3.5", rr[0]
    assert "error=unknown_action" in t.log()
    # with default_action = accept the answer counts as DUNNO
    t2 = server(ternd, [p.spec], **{"policy.default_action": "accept"})
    rr, rep = send(t2)
    assert rr[0].code == 250 and rep.code == 250
    delivered(t2)


# ---------------------------------------------------------------------------
# several servers: the first that decides
# ---------------------------------------------------------------------------

def test_servers_in_order_first_decision_wins(ternd, policy):
    a = policy(by_rcpt({CLAIRE: "OK", DAVE: "PREPEND X-A: first"}))
    b = policy(by_rcpt({CLAIRE: "REJECT never seen", BEN: "REJECT second",
                        DAVE: "DUNNO"}))
    t = server(ternd, [a.spec, b.spec])
    rr, rep = send(t, rcpts=(BEN, CLAIRE, DAVE))
    assert rr[0].code == 550 and "second" in rr[0].text     # a DUNNO, b
    assert rr[1].code == 250                                  # a OK
    assert rr[2].code == 250
    assert [r["recipient"] for r in b.of("RCPT")] == [BEN, DAVE]
    assert "X-A: first" in head(delivered(t, DAVE))


def test_defer_if_reject_then_reject_defers(ternd, policy):
    a = policy(by_rcpt({BEN: "DEFER_IF_REJECT maybe later", CLAIRE:
                        "DEFER_IF_REJECT"}))
    b = policy(by_rcpt({BEN: "REJECT no"}))
    t = server(ternd, [a.spec, b.spec])
    rr, _ = send(t, rcpts=(BEN, CLAIRE))
    assert rr[0].code == 450 and "maybe later" in rr[0].text, rr[0]
    assert rr[1].code == 250          # nothing later rejected


# ---------------------------------------------------------------------------
# failures: default_action
# ---------------------------------------------------------------------------

def closed_port():
    return f"inet:127.0.0.1:{free_port()}"


def test_down_tempfail(ternd):
    t = server(ternd, [closed_port()])
    rr, _ = send(t)
    assert rr[0].code == 451 and rr[0].enh == "4.3.5", rr[0]
    assert "event=policy_failed" in t.log()


def test_down_accept_asks_the_next(ternd, policy):
    b = policy(by_rcpt({BEN: "PREPEND X-Second: yes"}))
    t = server(ternd, [closed_port(), b.spec],
               **{"policy.default_action": "accept"})
    rr, rep = send(t)
    assert rr[0].code == 250 and rep.code == 250
    assert "X-Second: yes" in head(delivered(t))


def test_unix_socket_missing_tempfail(ternd, tmp_path):
    t = server(ternd, [f"unix:{tmp_path}/nothing.sock"])
    rr, _ = send(t)
    assert rr[0].code == 451 and "error=no_socket" in t.log()


def test_stall_times_out_and_loop_goes_on(ternd, policy):
    p = policy(by_rcpt({BEN: "!stall"}))
    t = server(ternd, [p.spec], **{"policy.timeout": "2"})
    with t.client() as c:
        c.ehlo()
        c.expect(f"MAIL FROM:<{SENDER}>", 250)
        c.send(f"RCPT TO:<{BEN}>\r\n".encode())
        t0 = time.monotonic()
        # meanwhile the loop serves another session at once
        with t.client() as d:
            d.ehlo()
            d.expect("NOOP", 250)
            assert time.monotonic() - t0 < 1.5
        r = c.reply(timeout=10 * SLOW)
        assert r.code == 451 and r.enh == "4.3.5", r
        assert time.monotonic() - t0 >= 1.8
    assert "error=timeout" in t.log()


@pytest.mark.parametrize("answer,error", [
    (b"HTTP/1.0 400 Bad Request\r\n\r\n", "garbage"),
    (b"action=DUNNO\naction=OK\n\n", "garbage"),
    (b"action=OK\x00\n\n", "garbage"),
    (b"action=REJECT " + b"x" * 5000 + b"\n\n", "too_long"),
    (b"action=DUNNO\n\naction=OK\n\n", "garbage"),
])
def test_garbage_answers_tempfail(ternd, policy, answer, error):
    p = policy(by_rcpt({BEN: answer}))
    t = server(ternd, [p.spec])
    rr, _ = send(t)
    assert rr[0].code == 451 and rr[0].enh == "4.3.5", rr[0]
    assert f"error={error}" in t.log()
    # and with accept, the message goes through
    t2 = server(ternd, [p.spec], **{"policy.default_action": "accept"})
    rr, rep = send(t2)
    assert rr[0].code == 250 and rep.code == 250


def test_half_answer_then_close(ternd, policy):
    p = policy(by_rcpt({BEN: b"action=REJ"}))   # then silence: a timeout
    q = policy(by_rcpt({BEN: "!close"}))          # closes mid-request
    t = server(ternd, [q.spec])
    rr, _ = send(t)
    assert rr[0].code == 451 and "error=closed" in t.log(), rr[0]
    t2 = server(ternd, [p.spec], **{"policy.timeout": "1"})
    rr, _ = send(t2)
    assert rr[0].code == 451 and "error=timeout" in t2.log(), rr[0]


def test_stall_at_end_of_data(ternd, policy):
    p = policy(by_rcpt({"EOM": "!stall"}))
    t = server(ternd, [p.spec], **{"policy.timeout": "1"})
    rr, rep = send(t)
    assert rr[0].code == 250
    assert rep.code == 451 and rep.enh == "4.3.5", rep
    time.sleep(0.5)
    assert t.files(BEN) == []
    t2 = server(ternd, [p.spec], **{"policy.timeout": "1",
                                    "policy.default_action": "accept"})
    rr, rep = send(t2)
    assert rep.code == 250
    delivered(t2)


def test_client_leaves_while_asked(ternd, policy):
    # the session ends with its request in flight: that connection is
    # closed (its answer would come to nobody), the next session opens
    # another and is answered
    slow = threading.Event()

    def script(req, peer):
        if req["recipient"] == CLAIRE:
            slow.set()
            time.sleep(1.5)
            return "REJECT late"
        return "DUNNO"
    p = policy(script)
    t = server(ternd, [p.spec], **{"policy.timeout": "5"})
    c = t.client()
    c.ehlo()
    c.expect(f"MAIL FROM:<{SENDER}>", 250)
    c.send(f"RCPT TO:<{CLAIRE}>\r\n".encode())
    assert slow.wait(5)
    c.close()
    rr, rep = send(t)
    assert rr[0].code == 250 and rep.code == 250
    assert p.conns == 2, p.conns
    time.sleep(1.5)          # the late answer arrives on a closed socket
    rr, rep = send(t)
    assert rep.code == 250 and p.conns == 2


# ---------------------------------------------------------------------------
# connections kept and reused
# ---------------------------------------------------------------------------

def test_connection_reused_across_requests_and_sessions(ternd, policy):
    p = policy("DUNNO")
    t = server(ternd, [p.spec])
    for _ in range(3):
        rr, rep = send(t, rcpts=(BEN, CLAIRE))
        assert rep.code == 250
    assert len(p.requests) == 9          # 2 RCPT + 1 end, three times
    assert p.conns == 1, p.conns
    assert {r["_conn"] for r in p.requests} == {1}


def test_idle_connection_closed_after_idle_timeout(ternd, policy):
    p = policy("DUNNO")
    t = server(ternd, [p.spec], **{"policy.idle_timeout": "1"})
    send(t)
    assert p.conns == 1
    time.sleep(2.5)
    send(t)
    assert p.conns == 2, p.conns


def test_server_closing_idle_connections_is_not_a_failure(ternd, policy):
    # the server answers and closes each connection: the next request
    # finds its kept connection gone and opens a new one, no 4xx
    p = policy("!close_after")
    t = server(ternd, [p.spec])
    for _ in range(3):
        rr, rep = send(t)
        assert rr[0].code == 250 and rep.code == 250, (rr, rep)
    assert p.conns == 6 and len(p.requests) == 6
    assert "event=policy_failed" not in t.log()


def test_kept_connection_closed_by_server_is_reopened(ternd, policy):
    # the server reads a second request on a connection and closes it
    # unanswered (as one whose idle timer fired meanwhile): tern opens a
    # new connection once and asks again, the client sees no failure
    def script(req, peer):
        n = sum(1 for r in peer.requests if r["_conn"] == req["_conn"])
        return "!close" if n >= 2 else "DUNNO"
    p = policy(script)
    t = server(ternd, [p.spec], **{"log.level": "debug"})
    for _ in range(2):
        rr, rep = send(t)
        assert rr[0].code == 250 and rep.code == 250, (rr, rep)
    assert p.conns == 4 and len(p.requests) == 7, (p.conns, p.requests)
    assert "event=policy_failed" not in t.log()
    assert t.log().count("event=policy_reconnect") == 3


# ---------------------------------------------------------------------------
# a real policy server: Debian's postfwd
# ---------------------------------------------------------------------------

POSTFWD = shutil.which("postfwd1") or "/usr/sbin/postfwd1"

RULES = """\
id=R001; protocol_state==RCPT; recipient==claire@example.org; action=REJECT postfwd says no to claire
id=R002; protocol_state==RCPT; sender==flood@example.net; action=rate(sender/2/3600/450 4.7.1 postfwd rate limit exceeded)
id=R003; protocol_state==END-OF-MESSAGE; size>=3000; action=REJECT message too big for postfwd
id=R004; protocol_state==END-OF-MESSAGE; action=PREPEND X-Postfwd: seen
"""


@pytest.fixture
def postfwd(tmp_path):
    if not os.path.exists(POSTFWD):
        pytest.fail("postfwd is missing: scripts/deps.sh installs it")
    d = tmp_path / "postfwd"
    d.mkdir()
    d.chmod(0o755)
    rules = d / "rules.cf"
    rules.write_text(RULES)
    pid = d / "postfwd.pid"
    port = free_port()
    user = pwd.getpwuid(os.geteuid()).pw_name
    group = grp.getgrgid(os.getegid()).gr_name
    # -d: a server on the port; it goes to the background (pid file)
    subprocess.run([POSTFWD, "-d", "-n", "-f", str(rules),
                    "--interface", "127.0.0.1", "--port", str(port),
                    "-u", user, "-g", group, "--pidfile", str(pid)],
                   check=True, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=30)
    wait_for(lambda: pid.exists() and pid.read_text().strip(),
             "postfwd's pid file")
    wait_port(port, 10 * SLOW, None, "postfwd").close()
    yield f"inet:127.0.0.1:{port}"
    n = int(pid.read_text().strip())
    try:
        os.kill(n, 15)
    except ProcessLookupError:
        pass


def test_postfwd_agrees(ternd, postfwd):
    t = server(ternd, [postfwd], **{"policy.timeout": "10"})
    # a recipient refused by the ruleset, the other delivered with
    # postfwd's PREPEND
    rr, rep = send(t, rcpts=(CLAIRE, BEN))
    assert rr[0].code == 550 and "postfwd says no to claire" in rr[0].text
    assert rr[1].code == 250 and rep.code == 250, (rr, rep)
    assert "X-Postfwd: seen" in head(delivered(t, BEN))
    # a rate limit on a sender: two RCPTs pass, the third is deferred
    rr, rep = send(t, rcpts=(BEN, DAVE, BEN), sender="flood@example.net")
    assert [r.code for r in rr] == [250, 250, 450], rr
    assert "postfwd rate limit exceeded" in rr[2].text
    assert rr[2].enh == "4.7.1", rr
    assert rep.code == 250
    # the size at the end of data: a big message refused
    big = MSG.replace(b"the body\r\n", (b"y" * 78 + b"\r\n") * 50)
    rr, rep = send(t, content=big)
    assert rr[0].code == 250
    assert rep.code == 550 and "message too big for postfwd" in rep.text


def test_idle_timeout_switched_by_sighup(ternd, policy):
    """policy.idle_timeout lowered from 300 s to 1 s by SIGHUP: the next
    connection to go idle is closed after 1 s (a restart-only key would
    keep it 300 s, and the third request would reuse it)."""
    from conftest import readable_conf, sighup_reload
    p = policy("DUNNO")
    conf = readable_conf("[policy]\nidle_timeout = 300\n")
    t = ternd({"policy.servers": p.spec, "policy.timeout": "2"},
              args=["-c", str(conf)])
    send(t)
    conf.write_text("[policy]\nidle_timeout = 1\n")
    line = sighup_reload(t)
    assert "result=ok" in line and "policy.idle_timeout" in line, line
    assert "needs_restart=policy.idle_timeout" not in t.log()
    send(t)                        # reuses the connection, idle again
    assert p.conns == 1, p.conns
    time.sleep(2.5)
    send(t)
    assert p.conns == 2, p.conns


def test_servers_switched_by_sighup(ternd, policy):
    """policy.servers moved from a server that answers DUNNO to one that
    answers REJECT by SIGHUP: the next session is asked of the second,
    while a session open across the reload is still asked of the first
    (its configuration's list)."""
    from conftest import readable_conf, sighup_reload
    old, new = policy("DUNNO"), policy("REJECT")
    conf = readable_conf(f"[policy]\nservers = {old.spec}\n")
    t = ternd({"policy.timeout": "2"}, args=["-c", str(conf)])
    rr, _ = send(t)
    assert rr[0].code == 250 and old.conns == 1
    open_ = t.client()
    open_.ehlo("client.test")
    conf.write_text(f"[policy]\nservers = {new.spec}\n")
    line = sighup_reload(t)
    assert "result=ok" in line and "policy.servers" in line, line
    assert "needs_restart=policy." not in t.log()
    rr, _ = send(t)
    assert rr[0].code == 550, rr                   # the new list: REJECT
    assert len(new.requests) == 1 and len(old.requests) == 2
    open_.expect(f"MAIL FROM:<{SENDER}>", 250)
    open_.expect(f"RCPT TO:<{BEN}>", 250)          # the old list: DUNNO
    open_.cmd("QUIT")
    open_.close()
    # RCPT and end of data of the first session, the open one's RCPT
    assert len(old.requests) == 3 and len(new.requests) == 1
