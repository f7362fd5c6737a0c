"""Outbound pace per destination (issue 15 item 4, docs/queue.md
"Destinations that ask to slow down"): delivery.concurrency_per_destination
caps the connections one receiver sees at once, and a receiver answering
421 4.7.0 to every second connection sees tern's connections and their
rate drop, while every message still arrives exactly once.

The receiver is a threaded SMTP server on loopback, found through an MX
record that dnsmasq serves; it counts its connections (when each began,
how many were open at once) and the Message-IDs it accepted."""

import re
import smtplib
import socket
import threading
import time

import pytest

from conftest import SLOW, wait_for

DOMAIN = "slow.test"
FAR = f"bob@{DOMAIN}"
SENDER = "claire@example.org"


class Receiver(threading.Thread):
    """refuse_every=2: connections 2, 4, 6... get "421 4.7.0" as their
    greeting and are closed; hold: seconds each accepted message waits
    before its 250, so sessions overlap as they would at a busy MX;
    drop_second: a connection takes one message, and its next MAIL is
    met by closing it without a reply (a peer whose own idle timeout ran
    out as the client began its next transaction)."""

    def __init__(self, refuse_every=0, hold=0.2, drop_second=False):
        super().__init__(daemon=True)
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(128)
        self.port = self.srv.getsockname()[1]
        self.refuse_every = refuse_every
        self.hold = hold
        self.drop_second = drop_second
        self.lock = threading.Lock()
        self.n = 0              # connections accepted
        self.starts = []        # monotonic time of each
        self.refused = []       # monotonic time of each 421
        self.open = 0
        self.peak = 0
        self.changes = []       # (monotonic time, connections open then)
        self.ids = []           # Message-IDs accepted, in order
        self.errors = []
        self.stop = False

    def run(self):
        self.srv.settimeout(0.2)
        while not self.stop:
            try:
                s, _ = self.srv.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.n += 1
                k = self.n
                now = time.monotonic()
                self.starts.append(now)
                refuse = self.refuse_every and k % self.refuse_every == 0
                if refuse:
                    self.refused.append(now)
                self.open += 1
                self.peak = max(self.peak, self.open)
                self.changes.append((now, self.open))
            threading.Thread(target=self.session, args=(s, refuse),
                             daemon=True).start()

    def session(self, s, refuse):
        try:
            s.settimeout(30)
            if refuse:
                s.sendall(b"421 4.7.0 mx.slow.test too many connections, "
                          b"slow down\r\n")
                return
            self.converse(s)
        except OSError as e:
            self.errors.append(repr(e))
        finally:
            s.close()
            with self.lock:
                self.open -= 1
                self.changes.append((time.monotonic(), self.open))

    def converse(self, s):
        f = s.makefile("rb")
        s.sendall(b"220 mx.slow.test ESMTP\r\n")
        took = False
        while True:
            line = f.readline()
            if not line:
                return
            verb = line[:4].upper()
            if verb == b"MAIL" and took and self.drop_second:
                return
            if verb in (b"EHLO", b"HELO"):
                s.sendall(b"250-mx.slow.test\r\n250-8BITMIME\r\n"
                          b"250 ENHANCEDSTATUSCODES\r\n")
            elif verb in (b"MAIL", b"RSET", b"NOOP", b"RCPT"):
                s.sendall(b"250 2.0.0 ok\r\n")
            elif verb == b"DATA":
                s.sendall(b"354 go on\r\n")
                mid = None
                for body in f:
                    if body == b".\r\n":
                        break
                    if body.lower().startswith(b"message-id:"):
                        mid = body.split(b":", 1)[1].strip().decode()
                time.sleep(self.hold)
                with self.lock:
                    self.ids.append(mid)
                took = True
                s.sendall(b"250 2.0.0 queued\r\n")
            elif verb == b"QUIT":
                s.sendall(b"221 2.0.0 bye\r\n")
                return
            else:
                s.sendall(b"502 5.5.2 what\r\n")

    def peak_since(self, since):
        """The most connections open at once from since on."""
        with self.lock:
            ch = list(self.changes)
        best = cur = 0
        for t, n in ch:
            if t >= since:
                best = max(best, n)
            else:
                cur = n
        return max(best, cur)

    def per_second(self, since=None):
        """The most connections begun in any one-second window (from
        since on, when given)."""
        with self.lock:
            t = sorted(x for x in self.starts if since is None or x >= since)
        best, j = 0, 0
        for i in range(len(t)):
            while t[i] - t[j] >= 1.0:
                j += 1
            best = max(best, i - j + 1)
        return best

    def close(self):
        self.stop = True
        self.srv.close()
        self.join(5)


def start_mta(ternd, dnsmasq, rcv, extra=None):
    dns = dnsmasq(mx=[(DOMAIN, f"mx.{DOMAIN}", 10)],
                  hosts=[(f"mx.{DOMAIN}", "127.0.0.1")])
    over = {"relay.networks": "127.0.0.0/8", "dns.servers": dns.server,
            "relay.port": str(rcv.port),
            "queue.retry_first": "1", "queue.retry_max": "2"}
    over.update(extra or {})
    return ternd(over)


def submit(t, n, tag):
    """n messages to FAR over one session, each its own transaction."""
    ids = []
    with smtplib.SMTP("127.0.0.1", t.port, local_hostname="client.test",
                      timeout=20 * SLOW) as s:
        for i in range(n):
            mid = f"<{tag}-{i}@client.test>"
            s.sendmail(SENDER, [FAR], (f"Message-ID: {mid}\r\n"
                                       f"Subject: {tag} {i}\r\n\r\n"
                                       f"body {i}\r\n").encode())
            ids.append(mid)
    return ids


def delivered_all(t, rcv, ids, timeout):
    wait_for(lambda: len(rcv.ids) >= len(ids) and t.queue_list() == [],
             f"{len(ids)} messages at the receiver and an empty queue "
             f"(has {len(rcv.ids)}, queue {t.queue_list()})", timeout=timeout)
    time.sleep(0.5)     # a duplicate would arrive now
    assert sorted(rcv.ids) == sorted(ids), \
        "every message exactly once: " \
        f"missing {sorted(set(ids) - set(rcv.ids))}, " \
        f"duplicated {sorted({i for i in rcv.ids if rcv.ids.count(i) > 1})}"
    assert rcv.errors == [], rcv.errors


def run(ternd, dnsmasq, refuse_every, n=40, extra=None, hold=0.2):
    rcv = Receiver(refuse_every=refuse_every, hold=hold)
    rcv.start()
    try:
        t = start_mta(ternd, dnsmasq, rcv, extra)
        ids = submit(t, n, f"r{refuse_every}")
        delivered_all(t, rcv, ids, timeout=60)
        return t, rcv
    finally:
        rcv.close()


@pytest.mark.parametrize("over,want", [
    ({"delivery.concurrency_per_destination": "3"}, 3),
    ({"delivery.concurrency_per_destination": "3",
      "delivery.destination_concurrency": f"other.test:7, {DOMAIN.upper()}:2"}, 2),
    ({"delivery.destination_concurrency": f"{DOMAIN}:4"}, 4),
], ids=["default_3", "domain_2", "domain_4"])
def test_concurrency_per_destination_is_honoured(ternd, dnsmasq, over, want):
    """N at most, and N are used: 20 messages at a receiver that takes
    0.4 s over each; the domain's own maximum wins over the default."""
    t, rcv = run(ternd, dnsmasq, 0, n=20, hold=0.4, extra=over)
    assert rcv.peak == want, f"open connections at once: {rcv.peak}, want {want}"
    assert "event=dest_throttle" not in t.log()


def test_default_concurrency_is_ten(ternd, dnsmasq):
    t, rcv = run(ternd, dnsmasq, 0, n=30, hold=0.4)
    assert rcv.peak == 10, f"open connections at once: {rcv.peak}, want 10"


def test_receiver_answering_421_is_sent_less(ternd, dnsmasq):
    """The same 40 messages to a receiver that takes everything, then to
    one that answers 421 4.7.0 to every second connection: once it has
    said 421, the second sees fewer connections at once than the first
    (the limit halves: sessions beyond it end after their message) and
    few new ones per second (a pause of 1 s or more between rounds); few
    421s in all (each is one message's attempt; the others waited their
    turn), and every message arrives exactly once.  Before the pace, the
    same run made 67 connections, 33 of them refused, 34 in one second,
    10 open at once."""
    _, ok = run(ternd, dnsmasq, 0)
    t, slow = run(ternd, dnsmasq, 2)
    first = slow.refused[0]
    # a message under way when the 421 came (hold 0.2 s) ends first
    open_after = slow.peak_since(first + 0.5)
    rate_after = slow.per_second(since=first + 0.05)
    print(f"accept-all: {ok.n} connections, peak {ok.peak} open, "
          f"{ok.per_second()}/s at most; 421 every second: {slow.n} "
          f"connections ({len(slow.refused)} got 421), peak {slow.peak} "
          f"open, {open_after} open and {rate_after}/s at most after the "
          "first 421")
    assert ok.peak >= 8, f"the baseline should use its 10 slots: {ok.peak}"
    # at most the halved limit, 5, and one more if deliveries raised it
    assert open_after <= 6 and open_after < ok.peak, \
        f"{open_after} open at once after the first 421 (accept-all: {ok.peak})"
    # a round is at most the lowered limit, plus one begun as a
    # session of it ended
    assert rate_after <= 6 and rate_after < ok.per_second(), \
        f"{rate_after} connections/s after the first 421 " \
        f"(accept-all: {ok.per_second()}/s)"
    assert slow.n <= 2 * ok.n, f"{slow.n} connections, accept-all {ok.n}"
    assert len(slow.refused) <= 8, \
        f"{len(slow.refused)} connections refused for {slow.n}"
    log = t.log()
    assert f"domain={DOMAIN} event=dest_throttle limit=5 max=10 pause=1s " \
        "reason=slow_down" in log, log[-3000:]
    # deliveries after it reset the pause's growth
    assert re.search(rf"domain={DOMAIN} event=dest_throttle limit=\d+ max=10 "
                     r"pause=0s reason=delivered", log), log[-3000:]


def test_stop_does_not_wait_for_a_pause(ternd, dnsmasq):
    """A receiver answering 421 to every connection: its pause grows (1,
    2, 4, 8 s...) while the messages wait their turn.  SIGTERM then ends
    ternd at once: the waiting messages are deferred (451 4.3.2) and stay
    queued, instead of holding the exit until the pause is over."""
    rcv = Receiver(refuse_every=1)
    rcv.start()
    try:
        t = start_mta(ternd, dnsmasq, rcv)
        submit(t, 3, "stop")
        wait_for(lambda: "pause=8s" in t.log(), "a pause of 8 s", timeout=40)
        time.sleep(2.5)     # every message retried (retry_max 2): waiting
        n = rcv.n
        t0 = time.monotonic()
        assert t.stop() == 0
        took = time.monotonic() - t0
        assert took < 4 * SLOW, f"ternd took {took:.1f}s to stop"
        assert rcv.n == n, "no connection after SIGTERM"
        log = t.log()
        assert "code=451 enh=4.3.2 text=\"delivery stopped: the mail " \
            "system is shutting down\"" in log, log[-3000:]
        assert len(t.queue_env_files()) == 3
    finally:
        rcv.close()
