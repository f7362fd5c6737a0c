"""Screening before the greeting (docs/screening.md): ternd against a
dnsmasq that serves DNSBL/DNSWL zones for the test client 127.0.0.1
(query names 5.0.0.127.<zone>), on the MX port.  Each test reads the
greeting (220 or 554 5.7.1), times it where the delay is the point, and
checks the event=screen line ternd logs."""

import ipaddress
import os
import re
import signal
import socket
import subprocess
import time

import pytest

from conftest import _ACTIVE, SLOW, Ternd, run_in_netns, submit_ternd, wait_for

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


def greet(t, source=SRC, **kw):
    """Connect; (seconds to the greeting, client)."""
    start = time.monotonic()
    c = t.client(timeout=15, source=source, **kw)
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


# -- IPv6: the query name is the whole address, the cache key its /64 ----------


def nibbles(addr):
    """The DNSBL query name of an IPv6 address, zone left out: its 32
    nibbles in reverse order (RFC 5782 2.4), as dnsbl_qname makes it."""
    return ipaddress.IPv6Address(addr).reverse_pointer[:-len(".ip6.arpa")]


def need_ipv6_loopback():
    """::1 or a loud failure: never a skip (CI has ::1)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError as e:
        pytest.fail(f"::1 is not available here ({e}): screening over IPv6 "
                    f"is tested from ::1 and is not skipped", pytrace=False)


class Ternd6(Ternd):
    """A ternd whose MX port is [::1]:PORT, started without the fixture's
    greeting probe: the probe would come from ::1, the client under test,
    be screened and fill the cache before the test.  Ready is its
    event=ready log line."""

    @property
    def host(self):
        return "::1"

    def start(self, timeout=10):
        env = dict(os.environ)
        env.pop("TERN_CONFIG", None)
        self.stopped_rc = None
        self.term_sent = False
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=self.logf,
                                     cwd=str(self.state_dir), env=env)
        _ACTIVE.append(self)
        wait_for(lambda: "event=ready" in self.log() or
                 self.proc.poll() is not None, "event=ready", timeout)
        assert self.proc.poll() is None, self.log()
        return self


def test_ipv6_client_listed_by_its_nibble_name(ternd, dnsmasq):
    """A client on ::1: the DNSBL is asked for the 32 nibbles of the whole
    address (not of its /64), the listing refuses it, and the verdict is
    cached: the second connection is refused without a query."""
    need_ipv6_loopback()
    q = nibbles("::1")
    assert q == "1." + "0." * 30 + "0", q
    dns = dnsmasq(extra=[f"--host-record={q}.bl.test,127.0.0.2",
                         "--local=/test/"])
    t = ternd({"dns.servers": dns.server, "relay.networks": "127.0.0.1/32",
               "screen.dnsbl": "bl.test*1"}, start=False)
    t.overrides["listen.smtp"] = f"[::1]:{t.port}"
    t.__class__ = Ternd6
    t.start()
    c = t.client(host="::1", source="::1", timeout=15)
    assert c.greeting.code == 554 and c.greeting.enh == "5.7.1", c.greeting
    assert "::1 is listed by bl.test" in c.greeting.text, c.greeting
    c.expect("QUIT", 221)
    c.close()
    line = wait_for(lambda: screen_lines(t), "event=screen")[0]
    assert field(line, "client") == "::1", line
    assert field(line, "listed") == "bl.test" and field(line, "cached") == "no"
    assert field(line, "action") == "reject", line
    c = t.client(host="::1", source="::1", timeout=15)
    assert c.greeting.code == 554 and "bl.test" in c.greeting.text
    c.close()
    line = wait_for(lambda: screen_lines(t)[1:], "second event=screen")[0]
    assert field(line, "action") == "reject" and field(line, "cached") == "yes"
    log = dns.log_path.read_text()
    assert log.count(f"query[A] {q}.bl.test") == 1, log




@pytest.mark.root
def test_ipv6_verdict_cached_for_the_slash64(ternd, dnsmasq):
    """In a network namespace with three addresses: fd00::2 is listed
    (its own nibble name) and refused; fd00::3, another address of the
    same /64, gets the cached refusal without a query of its own (one
    subscriber, one verdict); fd00:0:0:1::2, in the next /64, is asked
    about and greeted."""
    t = ternd({"relay.networks": "127.0.0.1/32", "screen.dnsbl": "bl.test*1"},
              start=False)
    # [::] inside the namespace: its loopback only; the fixture's probe
    # comes from 127.0.0.1, exempt
    t.overrides["listen.smtp"] = f"[::]:{t.port}"

    def scenario():
        dns = dnsmasq(extra=[
            f"--host-record={nibbles('fd00::2')}.bl.test,127.0.0.2",
            "--local=/test/"])
        t.overrides["dns.servers"] = dns.server
        t.start()
        c = t.client(host="fd00::1", source="fd00::2", timeout=15)
        assert c.greeting.code == 554, c.greeting
        assert "fd00::2 is listed by bl.test" in c.greeting.text
        c.close()
        c = t.client(host="fd00::1", source="fd00::3", timeout=15)
        assert c.greeting.code == 554, "the /64's verdict applies"
        assert "bl.test" in c.greeting.text, c.greeting
        c.close()
        c = t.client(host="fd00::1", source="fd00:0:0:1::2", timeout=15)
        assert c.greeting.code == 220, "the next /64 is another client"
        c.expect("QUIT", 221)
        c.close()
        lines = wait_for(lambda: screen_lines(t)[2:] and screen_lines(t),
                         "three event=screen")
        got = [(field(x, "client"), field(x, "action"), field(x, "cached"))
               for x in lines]
        assert got == [("fd00::2", "reject", "no"), ("fd00::3", "reject", "yes"),
                       ("fd00:0:0:1::2", "pass", "no")], got
        log = dns.log_path.read_text()
        assert log.count(f"query[A] {nibbles('fd00::2')}.bl.test") == 1, log
        assert f"query[A] {nibbles('fd00::3')}.bl.test" not in log, log
        assert log.count(f"query[A] {nibbles('fd00:0:0:1::2')}.bl.test") == 1
        t.stop()

    run_in_netns(scenario)


# -- the verdict cache across SIGHUP --------------------------------------------


def test_cache_survives_sighup(ternd, dnsmasq):
    """SIGHUP reloads tables, TLS and DKIM keys, not the screening: a
    refused client (listed) and a passing one (paused once) keep their
    verdicts, no new query, no second pause."""
    dns = zones(dnsmasq, [("bl.test", "127.0.0.2")])
    t = screened(ternd, dns, dnsbl="bl.test*1", greet_pause="2s")
    _, c = greet(t)
    assert c.greeting.code == 554, c.greeting
    c.close()
    took, c = greet(t, source="127.0.0.6")  # not listed: waits the pause
    assert c.greeting.code == 220 and took >= 1.9, (c.greeting, took)
    c.close()
    wait_for(lambda: len(screen_lines(t)) >= 2, "two event=screen")
    t.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "event=reload" in t.log(), "event=reload")
    took, c = greet(t)
    assert c.greeting.code == 554 and took < 1.5, (c.greeting, took)
    c.close()
    took, c = greet(t, source="127.0.0.6")
    assert c.greeting.code == 220 and took < 1.5, (c.greeting, took)
    c.close()
    lines = wait_for(lambda: screen_lines(t)[3:] and screen_lines(t),
                     "four event=screen")
    assert [(field(x, "action"), field(x, "cached")) for x in lines[2:]] == [
        ("reject", "yes"), ("pass", "yes")], lines
    log = dns.log_path.read_text()
    assert log.count(f"query[A] {Q}.bl.test") == 1, log


# -- the verdict cache across a restart (STATE/screen.cache) ---------------------


def early_talk(t, source):
    """Speak before the greeting; the 554 that comes back at once."""
    s = socket.create_connection(("127.0.0.1", t.port), timeout=10 * SLOW,
                                 source_address=(source, 0))
    s.sendall(b"EHLO early.test\r\n")
    data = b""
    while b"\r\n" not in data:
        chunk = s.recv(4096)
        assert chunk, data
        data += chunk
    s.close()
    return data


def test_verdicts_survive_a_restart(ternd, dnsmasq):
    """A listed client, a passing one and an early talker: after SIGTERM
    and a new start the three verdicts come from STATE/screen.cache, with
    no new query, no second pause, the early talker refused at once."""
    dns = zones(dnsmasq, [("bl.test", "127.0.0.2")])
    t = screened(ternd, dns, dnsbl="bl.test*1", greet_pause="2s")
    _, c = greet(t)
    assert c.greeting.code == 554, c.greeting
    c.close()
    took, c = greet(t, source="127.0.0.6")
    assert c.greeting.code == 220 and took >= 1.9, (c.greeting, took)
    c.close()
    assert early_talk(t, "127.0.0.7").startswith(b"554 5.7.1 ")
    wait_for(lambda: len(screen_lines(t)) >= 3, "three event=screen")
    assert t.stop() == 0
    f = t.state_dir / "screen.cache"
    lines = f.read_text().splitlines()
    assert lines[0] == "tern-screen-cache 1", lines
    assert sorted(ln.split(" ", 2)[:2] for ln in lines[1:]) == [
        ["7f000005" + "00" * 11 + "04", "F"],
        ["7f000006" + "00" * 11 + "04", "P"],
        ["7f000007" + "00" * 11 + "04", "F"]], lines
    assert oct(f.stat().st_mode & 0o777) == "0o600"
    assert re.search(r"event=screen_cache_save path=\S+ verdicts=3", t.log())
    t.start()
    assert re.search(r"event=screen_cache_load path=\S+ verdicts=3 "
                     r"expired=0 bad=0", t.log()), t.log()
    n0 = len(screen_lines(t))
    took, c = greet(t)
    assert c.greeting.code == 554 and took < 1.5, (c.greeting, took)
    assert "is listed by bl.test" in c.greeting.text
    c.close()
    took, c = greet(t, source="127.0.0.6")
    assert c.greeting.code == 220 and took < 1.5, (c.greeting, took)
    c.close()
    took, c = greet(t, source="127.0.0.7")
    assert c.greeting.code == 554 and took < 1.5, (c.greeting, took)
    assert "talked before the greeting" in c.greeting.text
    c.close()
    lines = wait_for(lambda: screen_lines(t)[n0 + 2:] and screen_lines(t),
                     "three more event=screen")
    assert [field(x, "cached") for x in lines[n0:]] == ["yes"] * 3, lines
    log = dns.log_path.read_text()
    assert log.count(f"query[A] {Q}.bl.test") == 1, log


def test_verdict_file_checked_on_load(ternd, dnsmasq):
    """What is read back: a verdict not expired (its time left by the
    wall clock, at most screen.cache_ttl); an expired one, a damaged line
    and a cut last line are counted and dropped; a file of another format
    is ignored whole, with a warning."""
    dns = zones(dnsmasq)
    t = ternd({"dns.servers": dns.server, "relay.networks": "127.0.0.1/32",
               "screen.dnsbl": "clean.test*1", "screen.greet_pause": "2s"},
              start=False)
    key = "7f0000{:02x}" + "00" * 11 + "04"
    now = int(time.time())
    (t.state_dir / "screen.cache").write_text(
        "tern-screen-cache 1\n"
        f"{key.format(5)} F {now + 10 ** 9} Service refused: from the file\n"
        f"{key.format(6)} F {now - 1} Service refused: expired\n"
        f"{key.format(7)} F {now + 3600} a\tb\n"
        f"{key.format(8)} F {now + 3600} cut")
    t.start()
    assert re.search(r"event=screen_cache_load path=\S+ verdicts=1 "
                     r"expired=1 bad=2", t.log()), t.log()
    took, c = greet(t)
    assert c.greeting.code == 554 and took < 1.5, (c.greeting, took)
    assert "Service refused: from the file" in c.greeting.text
    c.close()
    for src in ("127.0.0.6", "127.0.0.8"):  # expired, cut: screened again
        took, c = greet(t, source=src)
        assert c.greeting.code == 220 and took >= 1.9, (src, took)
        c.close()
    assert t.stop() == 0
    # the verdict from the file went back, its time left capped at the
    # ttl (3600 s), not the 10**9 s the file said
    kept = [ln.split(" ") for ln in
            (t.state_dir / "screen.cache").read_text().splitlines()[1:]]
    mine = [x for x in kept if x[0] == key.format(5)]
    assert len(mine) == 1 and int(mine[0][2]) <= int(time.time()) + 3600, kept
    (t.state_dir / "screen.cache").write_text("something else\n"
                                              f"{key.format(5)} F 9 x\n")
    t.start()
    assert "event=screen_cache_load" in t.log() and \
        "not a verdict file of this version" in t.log(), t.log()
    took, c = greet(t)
    assert c.greeting.code == 220 and took >= 1.9, (c.greeting, took)
    c.close()
