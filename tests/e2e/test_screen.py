"""Screening before the greeting (docs/screening.md): ternd against a
dnsmasq that serves DNSBL/DNSWL zones for the test client 127.0.0.1
(query names 5.0.0.127.<zone>), on the MX port.  Each test reads the
greeting (220 or 554 5.7.1), times it where the delay is the point, and
checks the event=screen line ternd logs."""

import re
import socket
import time

from conftest import SLOW, submit_ternd, wait_for

# The screened client connects from 127.0.0.5 (loopback is screened like
# any address); 127.0.0.1, where the fixture's start-up probe comes from,
# is in relay.networks, so the probe neither waits nor fills the cache.
SRC = "127.0.0.5"
Q = "5.0.0.127"  # SRC reversed, as a DNSBL is asked


def zones(dnsmasq, listed=(), extra=()):
    """dnsmasq answering A records for the client in each zone of listed
    ((zone, answer) pairs); every other name under .test is NXDOMAIN."""
    return dnsmasq(extra=[f"--host-record={Q}.{z},{a}" for z, a in listed] +
                   ["--local=/test/"] + list(extra))


def screened(ternd, dns, extra=None, **keys):
    over = {"dns.servers": dns.server, "relay.networks": "127.0.0.1/32"}
    over.update(extra or {})
    over.update({f"screen.{k}": v for k, v in keys.items()})
    return ternd(over)


def screen_lines(t):
    return [ln for ln in t.log().splitlines() if "event=screen " in ln]


def field(line, key):
    m = re.search(rf'\b{key}=("[^"]*"|\S+)', line)
    return m.group(1).strip('"') if m else None


def greet(t, **kw):
    """Connect; (seconds to the greeting, client)."""
    start = time.monotonic()
    c = t.client(timeout=15, source=SRC, **kw)
    return time.monotonic() - start, c


def test_listed_refused_naming_zone(ternd, dnsmasq):
    dns = zones(dnsmasq, [("bl.test", "127.0.0.2")])
    t = screened(ternd, dns, dnsbl="bl.test*1, clean.test*1")
    _, c = greet(t)
    assert c.greeting.code == 554 and c.greeting.enh == "5.7.1", c.greeting
    assert "bl.test" in c.greeting.text and "clean.test" not in c.greeting.text
    # RFC 5321 3.1: after a 554 greeting only QUIT; anything else is 503
    c.expect("EHLO client.test", 503, "5.5.1")
    c.expect("MAIL FROM:<a@b.test>", 503, "5.5.1")
    c.expect("QUIT", 221)
    c.wait_closed()
    c.close()
    line = wait_for(lambda: screen_lines(t), "event=screen")[0]
    assert field(line, "client") == SRC
    assert field(line, "score") == "1"
    assert field(line, "listed") == "bl.test"
    assert field(line, "action") == "reject"
    assert field(line, "cached") == "no"
    # the verdict is cached: the next connection is refused at once
    _, c = greet(t)
    assert c.greeting.code == 554 and "bl.test" in c.greeting.text
    c.close()
    line = wait_for(lambda: screen_lines(t)[1:], "second event=screen")[0]
    assert field(line, "action") == "reject" and field(line, "cached") == "yes"
    # the query was made once: the second verdict came from the cache
    log = dns.log_path.read_text()
    assert log.count(f"query[A] {Q}.bl.test") == 1, log


def test_weights_against_threshold(ternd, dnsmasq):
    dns = zones(dnsmasq, [("one.test", "127.0.0.2"), ("two.test", "127.0.0.3"),
                          ("three.test", "127.0.0.4")])
    # two zones (score 2) below the threshold 3: greeted
    t = screened(ternd, dns, dnsbl="one.test*1, two.test*1, none.test*5",
                 threshold="3")
    _, c = greet(t)
    assert c.greeting.code == 220, c.greeting
    c.ehlo()
    c.close()
    line = wait_for(lambda: screen_lines(t), "event=screen")[0]
    assert field(line, "score") == "2" and field(line, "action") == "pass"
    assert field(line, "listed") == "one.test,two.test"
    # three (score 3): refused, every listing zone named
    t2 = screened(ternd, dns, dnsbl="one.test*1, two.test*1, three.test*1",
                  threshold="3")
    _, c = greet(t2)
    assert c.greeting.code == 554, c.greeting
    for z in ("one.test", "two.test", "three.test"):
        assert z in c.greeting.text
    c.close()
    line = wait_for(lambda: screen_lines(t2), "event=screen")[0]
    assert field(line, "score") == "3" and field(line, "action") == "reject"
    # one weighted zone alone reaches it; "=answer" counts only that code
    t3 = screened(ternd, dns,
                  dnsbl="one.test=127.0.0.9*5, two.test=127.0.0.3*3",
                  threshold="3")
    _, c = greet(t3)
    assert c.greeting.code == 554 and "two.test" in c.greeting.text
    assert "one.test" not in c.greeting.text
    c.close()


def test_dnswl_exempts(ternd, dnsmasq):
    dns = zones(dnsmasq, [("bl.test", "127.0.0.2"), ("wl.test", "127.0.5.1")])
    t = screened(ternd, dns, dnsbl="bl.test*5", dnswl="wl.test=127.0.5.1")
    _, c = greet(t)
    assert c.greeting.code == 220, c.greeting
    c.ehlo()
    c.close()
    line = wait_for(lambda: screen_lines(t), "event=screen")[0]
    assert field(line, "action") == "pass" and field(line, "listed") == "wl.test"
    # an answer other than the one asked for is no listing
    t2 = screened(ternd, dns, dnsbl="bl.test*5", dnswl="wl.test=127.0.5.2")
    _, c = greet(t2)
    assert c.greeting.code == 554, c.greeting
    c.close()


def test_early_talker_refused_and_remembered(ternd, dnsmasq):
    dns = zones(dnsmasq)
    t = screened(ternd, dns, greet_pause="3s", dnsbl="clean.test*1")
    s = socket.create_connection(("127.0.0.1", t.port), timeout=10 * SLOW,
                                 source_address=(SRC, 0))
    start = time.monotonic()
    s.sendall(b"EHLO early.test\r\n")
    data = b""
    while data.count(b"\r\n") < 2:
        chunk = s.recv(4096)
        assert chunk, data
        data += chunk
    took = time.monotonic() - start
    # the 554 instead of the greeting, then (RFC 5321 3.1) the EHLO it
    # sent too early is answered 503, and QUIT ends the session
    assert re.match(rb"554 5\.7\.1 .*before the greeting\r\n"
                    rb"503 5\.5\.1 .*\r\n$", data), data
    assert b"220" not in data, data
    assert took < 2.5, f"refused after {took:.2f}s, not at once"
    s.sendall(b"QUIT\r\n")
    rest = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        rest += chunk
    s.close()
    assert rest.startswith(b"221 "), rest
    line = wait_for(lambda: screen_lines(t), "event=screen")[0]
    assert field(line, "action") == "early_talker"
    assert field(line, "cached") == "no"
    # remembered: refused at once, without the pause
    took, c = greet(t)
    assert c.greeting.code == 554 and "before the greeting" in c.greeting.text
    assert took < 1.5, took
    c.expect("QUIT", 221)
    c.wait_closed()
    c.close()
    line = wait_for(lambda: screen_lines(t)[1:], "second event=screen")[0]
    assert field(line, "action") == "reject" and field(line, "cached") == "yes"


def test_passing_client_not_delayed_again(ternd, dnsmasq):
    dns = zones(dnsmasq)
    t = screened(ternd, dns, greet_pause="2s", dnsbl="clean.test*1")
    took, c = greet(t)
    assert c.greeting.code == 220, c.greeting
    assert took >= 1.9, f"greeted after {took:.2f}s: no pause"
    c.ehlo()
    c.expect("QUIT", 221)
    c.close()
    took, c = greet(t)
    assert c.greeting.code == 220
    assert took < 1.0, f"greeted after {took:.2f}s: paused again"
    c.close()
    lines = wait_for(lambda: screen_lines(t)[1:] and screen_lines(t),
                     "two event=screen")
    assert field(lines[0], "cached") == "no" and field(lines[0], "action") == "pass"
    assert field(lines[1], "cached") == "yes" and field(lines[1], "action") == "pass"


def test_pause_and_lookups_in_parallel(ternd, dnsmasq):
    """A slow DNSBL (2 s deadline) and a 2 s pause: one waits for the
    other, the client waits about 2 s, not 4."""
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        dns = zones(dnsmasq, extra=[
            f"--server=/slow.test/127.0.0.1#{silent.getsockname()[1]}"])
        t = screened(ternd, dns, greet_pause="2s", dnsbl="slow.test*1",
                     dns_timeout="2s")
        took, c = greet(t)
        assert c.greeting.code == 220
        assert 1.9 <= took < 3.5, took
        c.close()
    finally:
        silent.close()


def test_dnsbl_timeout_counts_as_not_listed(ternd, dnsmasq):
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))     # never answers
    try:
        dns = zones(dnsmasq, [("bl.test", "127.0.0.2")], extra=[
            f"--server=/slow.test/127.0.0.1#{silent.getsockname()[1]}"])
        t = screened(ternd, dns, dnsbl="bl.test*1, slow.test*3",
                     threshold="2", dns_timeout="1s")
        took, c = greet(t)
        assert c.greeting.code == 220, c.greeting
        assert took < 3.0, took
        c.ehlo()
        c.close()
        log = t.log()
        assert re.search(r"event=screen_dns zone=slow\.test result=timeout",
                         log), log
        line = wait_for(lambda: screen_lines(t), "event=screen")[0]
        assert field(line, "score") == "1" and field(line, "action") == "pass"
    finally:
        silent.close()


def test_refused_query_answer_ignored(ternd, dnsmasq):
    # Spamhaus answers 127.255.255.254 to a public resolver: not a listing
    dns = zones(dnsmasq, [("zen.test", "127.255.255.254"),
                          ("odd.test", "10.0.0.2")])
    t = screened(ternd, dns, dnsbl="zen.test*3, odd.test*3")
    _, c = greet(t)
    assert c.greeting.code == 220, c.greeting
    c.close()
    log = wait_for(lambda: screen_lines(t) and t.log(), "event=screen")
    assert re.search(r"event=screen_dns zone=zen\.test "
                     r"answer=127\.255\.255\.254 result=refused", log), log
    assert re.search(r"event=screen_dns zone=odd\.test "
                     r"answer=10\.0\.0\.2 result=bogus", log), log
    line = screen_lines(t)[0]
    assert field(line, "score") == "0" and field(line, "action") == "pass"


def test_relay_networks_and_submission_exempt(ternd, dnsmasq):
    dns = zones(dnsmasq, [("bl.test", "127.0.0.2")])
    t = screened(ternd, dns, {"relay.networks": "127.0.0.0/8"},
                 dnsbl="bl.test*1", greet_pause="3s")
    took, c = greet(t)
    assert c.greeting.code == 220 and took < 1.5, (c.greeting, took)
    c.close()
    s = submit_ternd(ternd, {"dns.servers": dns.server,
                             "relay.networks": "127.0.0.1/32",
                             "screen.dnsbl": "bl.test*1",
                             "screen.greet_pause": "3s"})
    start = time.monotonic()
    c = s.sub_client(tls=False, source=SRC)
    assert c.greeting.code == 220 and time.monotonic() - start < 1.5
    c.close()
    # the MX port of the same server is screened
    _, c = greet(s)
    assert c.greeting.code == 554
    c.close()
    assert not screen_lines(t)


def test_off_costs_nothing(ternd, dnsmasq):
    dns = zones(dnsmasq, [("bl.test", "127.0.0.2")])
    t = ternd({"dns.servers": dns.server})
    took, c = greet(t)  # from 127.0.0.5, outside relay.networks
    assert c.greeting.code == 220 and took < 1.0
    c.ehlo()
    c.close()
    assert "event=screen" not in t.log()
    assert "query[" not in dns.log_path.read_text(), \
        "a lookup was made with screening off"


def test_sigterm_during_pause(ternd, dnsmasq):
    """A client held before its greeting gets 421 at SIGTERM, and ternd
    exits without waiting out the pause."""
    dns = zones(dnsmasq)
    t = screened(ternd, dns, greet_pause="30s", dnsbl="clean.test*1")
    c = t.client(timeout=15, source=SRC, greet=False)
    wait_for(lambda: t.log().count("event=connect") >= 2, "the connection")
    start = time.monotonic()
    t.terminate()
    r = c.reply()
    assert r.code == 421 and r.enh == "4.3.2", r
    c.wait_closed()
    c.close()
    assert t.proc.wait(10 * SLOW) == 0
    assert time.monotonic() - start < 5
