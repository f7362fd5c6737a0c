"""Outbound sessions kept for the next message (src/deliver/remote.c,
REMOTE_IDLE_SECS): a session whose job is done and which finds no job
waiting stays open a short while, and the next message to the destination
goes over it instead of a new connection; it QUITs when nothing comes.
A peer that closes the idle session just as a job is handed to it costs
that job nothing: it goes again to the same address over a new
connection, it is not deferred.

The receiver is the threaded one of test_outbound_throttle (counts its
connections and the Message-IDs it accepted; drop_second: it closes a
session at its second MAIL), found through an MX record that dnsmasq
serves."""

import time

from conftest import SLOW, wait_for
from test_outbound_throttle import Receiver, start_mta, submit

IDLE = 2    # REMOTE_IDLE_SECS


def send_one_by_one(t, rcv, n, tag):
    """n messages, each sent once the one before has arrived."""
    ids = []
    for i in range(n):
        ids += submit(t, 1, f"{tag}{i}")
        wait_for(lambda: len(rcv.ids) == len(ids),
                 f"message {i} at the receiver (has {rcv.ids})",
                 timeout=10 * SLOW)
    return ids


def test_next_message_goes_over_the_idle_session(ternd, dnsmasq):
    """Three messages, each sent after the one before arrived (well
    within REMOTE_IDLE_SECS): one connection carries all three, and it
    QUITs once nothing more comes."""
    rcv = Receiver(hold=0)
    rcv.start()
    try:
        t = start_mta(ternd, dnsmasq, rcv)
        ids = send_one_by_one(t, rcv, 3, "idle")
        assert rcv.ids == ids
        assert rcv.n == 1, f"connections: {rcv.n}, want 1 for 3 messages"
        wait_for(lambda: rcv.open == 0, "the idle session to end",
                 timeout=(IDLE + 5) * SLOW)
        assert rcv.errors == [], rcv.errors
        assert t.queue_list() == []
    finally:
        rcv.close()


def test_idle_session_closed_by_peer_costs_no_deferral(ternd, dnsmasq):
    """The receiver closes the idle session when the second message's
    MAIL comes: ternd connects again to the same address at once and the
    message arrives; a deferral would wait for queue.retry_first (600 s)."""
    rcv = Receiver(hold=0, drop_second=True)
    rcv.start()
    try:
        t = start_mta(ternd, dnsmasq, rcv,
                      {"queue.retry_first": "600", "queue.retry_max": "600"})
        start = time.monotonic()
        ids = send_one_by_one(t, rcv, 2, "drop")
        assert rcv.ids == ids
        assert rcv.n == 2, f"connections: {rcv.n}, want 2"
        assert time.monotonic() - start < 10 * SLOW
        log = t.log()
        assert "event=session_reuse status=lost" in log, log[-3000:]
        assert "event=session_failed" not in log, log[-3000:]
        wait_for(lambda: t.queue_list() == [], "the queue to empty")
    finally:
        rcv.close()
