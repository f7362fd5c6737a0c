"""Prometheus metrics (docs/metrics.md): ternd with listen.metrics, real
mail through it (a Maildir delivery over smtplib, a submission with AUTH
over STARTTLS, a failed AUTH, a 550 recipient, a relayed message the next
hop defers), then `curl` /metrics: every family is there, the counters
moved by exactly what was sent, and `promtool check metrics` accepts the
page.  Also: 404 and 405, no request body, nothing listening when the key
is unset, a non-loopback address refused."""

import os
import re
import shutil
import smtplib
import subprocess

import pytest

from conftest import (PASSWORD, SLOW, TERND, free_port, submit_ternd,
                      tls_client_context, wait_for)
from fakepeer import ReplyPeer

FAMILIES = {
    "tern_connections_current": "gauge",
    "tern_connections_total": "counter",
    "tern_connections_refused_total": "counter",
    "tern_smtp_replies_total": "counter",
    "tern_messages_received_total": "counter",
    "tern_messages_delivered_total": "counter",
    "tern_messages_deferred_total": "counter",
    "tern_messages_bounced_total": "counter",
    "tern_messages_expired_total": "counter",
    "tern_queue_messages": "gauge",
    "tern_queue_oldest_message_age_seconds": "gauge",
    "tern_destination_deliveries_total": "counter",
    "tern_destination_deferrals_total": "counter",
    "tern_tls_sessions_total": "counter",
    "tern_tls_failures_total": "counter",
    "tern_auth_total": "counter",
    "tern_dns_lookups_total": "counter",
    "tern_commit_latency_seconds": "histogram",
    "tern_delivery_latency_seconds": "histogram",
    "tern_table_lookup_seconds": "histogram",
    "tern_lookup_queue_length": "gauge",
    "process_resident_memory_bytes": "gauge",
    "process_open_fds": "gauge",
}

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
MSG = "Subject: metrics\r\nFrom: <claire@example.org>\r\n\r\nhello\r\n"


def curl(port, *args, path="/metrics"):
    """curl's exit status, HTTP status and body.  The time allowed is
    more than the metrics listener's admission window (METRICSRV_ADMIT
    connections per METRICSRV_TIMEOUT_S = 10 s): a test that makes more
    connections than that waits in the backlog for the next window."""
    r = subprocess.run(["curl", "-s", "-S", "-m", str(int(25 * SLOW)),
                        "-w", "\n%{http_code}", *args,
                        f"http://127.0.0.1:{port}{path}"],
                       capture_output=True, timeout=40 * SLOW)
    body, _, code = r.stdout.decode().rpartition("\n")
    return r.returncode, int(code or 0), body


def scrape(port):
    rc, code, body = curl(port)
    assert rc == 0 and code == 200, (rc, code, body)
    return body


def parse(text):
    """{(name, frozenset(labels)): value} and {family: type}"""
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ")
            types[name] = typ
            continue
        if line.startswith("#") or not line:
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = frozenset(LABEL.findall(m.group(3) or ""))
        samples[(m.group(1), labels)] = float(m.group(4))
    return samples, types


def val(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(before, after, name, **labels):
    return val(after, name, **labels) - val(before, name, **labels)


@pytest.fixture
def metered(ternd):
    """A ternd with submission, metrics, and a next hop that defers."""
    peer = ReplyPeer("451 4.7.1 greylisted, come back later")
    peer.start()
    mport = free_port()
    t = submit_ternd(ternd, {
        "listen.metrics": f"127.0.0.1:{mport}",
        "relay.networks": "127.0.0.0/8",
        "relay.smarthost": f"127.0.0.1:{peer.port}",
        "queue.retry_first": "3600", "queue.retry_max": "3600"})
    t.metrics_port = mport
    yield t, peer
    peer.close()


def test_metrics_families_and_counts(metered):
    t, peer = metered
    s0, types = parse(scrape(t.metrics_port))
    for fam, typ in FAMILIES.items():
        assert types.get(fam) == typ, f"{fam}: {types.get(fam)}"

    # a Maildir delivery on the MX port, and a 550 recipient
    with t.smtplib() as s:
        s.sendmail("someone@client.test", ["ben@example.org"], MSG)
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            s.sendmail("someone@client.test", ["nobody@example.org"], MSG)
    # a failed AUTH, then a good one and a submission, over STARTTLS
    with smtplib.SMTP("127.0.0.1", t.sub_port, local_hostname="client.test",
                      timeout=10 * SLOW) as s:
        s.starttls(context=tls_client_context())
        with pytest.raises(smtplib.SMTPAuthenticationError):
            s.login("claire@example.org", "wrong password")
    with smtplib.SMTP("127.0.0.1", t.sub_port, local_hostname="client.test",
                      timeout=10 * SLOW) as s:
        s.starttls(context=tls_client_context())
        s.login("claire@example.org", PASSWORD)
        s.sendmail("claire@example.org", ["dave@example.net"], MSG)
    # relayed: the next hop defers it
    with t.smtplib() as s:
        s.sendmail("someone@client.test", ["far@far.test"], MSG)
    wait_for(lambda: peer.rcpts >= 1, "the attempt at the next hop")

    def deferred():
        s1, _ = parse(scrape(t.metrics_port))
        ok = moved(s0, s1, "tern_messages_deferred_total",
                   transport="smtp") >= 1
        return s1 if ok else None
    s1 = wait_for(deferred, "the deferral in the metrics")

    assert moved(s0, s1, "tern_messages_received_total", listener="smtp") == 2
    assert moved(s0, s1, "tern_messages_received_total",
                 listener="submission") == 1
    assert moved(s0, s1, "tern_messages_delivered_total",
                 transport="maildir") == 2
    assert moved(s0, s1, "tern_messages_deferred_total", transport="smtp") == 1
    assert moved(s0, s1, "tern_messages_bounced_total", transport="smtp") == 0
    assert moved(s0, s1, "tern_destination_deferrals_total",
                 domain=f"127.0.0.1:{peer.port}") == 1, \
        [k for k in s1 if k[0] == "tern_destination_deferrals_total"]
    assert moved(s0, s1, "tern_connections_total", listener="smtp") == 2
    assert moved(s0, s1, "tern_connections_total", listener="submission") == 2
    assert val(s1, "tern_connections_current", listener="smtp") == 0
    assert moved(s0, s1, "tern_auth_total", mechanism="PLAIN",
                 result="success") == 1
    assert moved(s0, s1, "tern_auth_total", mechanism="PLAIN",
                 result="failure") == 1
    tls_in = sum(v for (n, l), v in s1.items()
                 if n == "tern_tls_sessions_total" and ("direction", "in") in l)
    assert tls_in == 2, tls_in
    assert moved(s0, s1, "tern_smtp_replies_total", **{
        "class": "5xx", "enhanced": "5.1.1"}) == 1
    # smtplib tries LOGIN after PLAIN failed: two failures
    assert moved(s0, s1, "tern_auth_total", mechanism="LOGIN",
                 result="failure") == 1
    assert moved(s0, s1, "tern_smtp_replies_total", **{
        "class": "5xx", "enhanced": "5.7.8"}) == 2
    assert moved(s0, s1, "tern_smtp_replies_total", **{
        "class": "2xx", "enhanced": "2.7.0"}) == 1
    assert moved(s0, s1, "tern_commit_latency_seconds_count") == 3
    assert moved(s0, s1, "tern_commit_latency_seconds_bucket",
                 le="+Inf") == 3
    assert moved(s0, s1, "tern_delivery_latency_seconds_count",
                 transport="maildir") == 2
    assert moved(s0, s1, "tern_table_lookup_seconds_count") >= 4
    # the smarthost's route: an address literal, answered without a query
    assert moved(s0, s1, "tern_dns_lookups_total", type="route",
                 result="ok") == 1
    assert val(s1, "tern_queue_messages") == 1
    assert val(s1, "tern_queue_oldest_message_age_seconds") >= 0
    assert val(s1, "tern_lookup_queue_length") == 0
    assert val(s1, "process_resident_memory_bytes") > 1 << 20
    assert val(s1, "process_open_fds") >= 5


def test_metrics_promtool(metered):
    t, _ = metered
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: apt-get install prometheus "
                    "(scripts/deps.sh)")
    with t.smtplib() as s:
        s.sendmail("someone@client.test", ["ben@example.org"], MSG)
    page = scrape(t.metrics_port)
    r = subprocess.run([promtool, "check", "metrics"], input=page.encode(),
                       capture_output=True, timeout=30 * SLOW)
    assert r.returncode == 0, (r.stdout, r.stderr)


def test_metrics_http_refusals(metered):
    t, _ = metered
    p = t.metrics_port
    for path in ("/", "/metric", "/metrics/x", "/favicon.ico"):
        assert curl(p, path=path)[1] == 404, path
    for method in ("DELETE", "PUT", "OPTIONS", "PATCH"):
        assert curl(p, "-X", method)[1] == 405, method
    assert curl(p, "-X", "POST")[1] == 405
    # a request body is refused before it is read: asked first
    # (Expect: 100-continue), the answer is 413 and no body is sent
    assert curl(p, "-X", "POST", "-H", "Expect: 100-continue",
                "--data-binary", "x" * 1000)[1] == 413
    # sent at once, it is refused as well; the 413 may then be lost to the
    # reset of a socket closed with the body unread (TCP, RFC 1122
    # 4.2.2.13), so a reset counts as the refusal, a 200 never does
    rc, code, _ = curl(p, "-X", "POST", "-H", "Expect:",
                       "--data-binary", "x" * 1000)
    assert code == 413 or (code == 0 and rc in (52, 55, 56)), (rc, code)
    rc, code, body = curl(p, "-I")
    assert rc == 0 and code == 200 and "version=0.0.4" in body, body
    # a query string is still /metrics
    assert curl(p, path="/metrics?x=1")[1] == 200


def own_listening_ports(pid):
    """TCP ports the process listens on (/proc: its sockets' inodes)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        m = re.fullmatch(r"socket:\[(\d+)\]", link)
        if m:
            inodes.add(m.group(1))
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                if cols[3] == "0A" and cols[9] in inodes:
                    ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


def test_metrics_off_by_default(ternd):
    t = ternd()
    assert own_listening_ports(t.proc.pid) == {t.port}
    assert "listener=metrics" not in t.log()


def test_metrics_refuses_a_public_address(ternd):
    t = ternd({"listen.metrics": f"0.0.0.0:{free_port()}"}, start=False)
    r = subprocess.run(t.argv(), capture_output=True, timeout=30 * SLOW,
                       cwd=str(t.state_dir))
    assert r.returncode != 0
    assert b"is not a loopback address" in r.stderr, r.stderr


def test_grafana_dashboard_uses_the_families():
    """contrib/grafana/tern.json: valid JSON, every query names families
    ternd exports, and every family is on some panel."""
    import json
    root = os.path.join(os.path.dirname(__file__), "..", "..")
    with open(os.path.join(root, "contrib", "grafana", "tern.json")) as f:
        dash = json.load(f)
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    assert exprs
    used = set()
    for e in exprs:
        for name in re.findall(r"\b((?:tern|process)_[a-z_]+)", e):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            assert base in FAMILIES, f"{name} in {e!r}"
            used.add(base)
    assert used == set(FAMILIES), set(FAMILIES) - used


def test_metrics_idle_clients_dropped_and_admissions_capped(metered):
    """Eight connections that send nothing (or half a request) fill the
    admission window: a ninth client waits in the backlog (curl times
    out); evhttp drops the idle ones after its 10 s timeout, and the
    endpoint answers again once the window is over."""
    import socket
    import time
    t, _ = metered
    p = t.metrics_port
    socks = []
    for i in range(8):
        s = socket.create_connection(("127.0.0.1", p), timeout=5)
        if i % 2:
            s.sendall(b"GET /metr")
        socks.append(s)
    time.sleep(0.5)
    started = time.monotonic()
    rc, code, _ = curl(p, "-m", "2")
    assert rc == 28 and code == 0, (rc, code)
    for s in socks:
        s.settimeout(20 * SLOW)
        assert s.recv(100) == b"", "an idle client was answered"
        s.close()
    dropped_after = time.monotonic() - started
    assert 5 < dropped_after < 20 * SLOW, dropped_after
    wait_for(lambda: curl(p, "-m", "2")[1] == 200, "the endpoint again",
             timeout=15)
    assert "event=metrics_busy connections=8" in t.log()


def test_metrics_refusals(ternd):
    """A connection over limits.connections_per_ip is refused before the
    greeting, and counted by its reason."""
    import socket
    mport = free_port()
    t = ternd({"listen.metrics": f"127.0.0.1:{mport}",
               "limits.connections_per_ip": "1"})
    s0, _ = parse(scrape(mport))
    with t.client() as c:
        c.ehlo()
        s = socket.create_connection(("127.0.0.1", t.port), timeout=5 * SLOW)
        assert s.recv(100).startswith(b"421 4.7.0"), "refused"
        s.close()
        s1, _ = parse(scrape(mport))
        assert val(s1, "tern_connections_current", listener="smtp") == 1
    assert moved(s0, s1, "tern_connections_refused_total",
                 reason="connections_per_ip") == 1
    assert moved(s0, s1, "tern_connections_total", listener="smtp") == 1


def test_metrics_expired(ternd):
    """A recipient the next hop defers past queue.lifetime: deferred on
    each attempt, then counted once as expired."""
    peer = ReplyPeer("451 4.7.1 greylisted, come back later")
    peer.start()
    try:
        mport = free_port()
        t = ternd({"listen.metrics": f"127.0.0.1:{mport}",
                   "relay.networks": "127.0.0.0/8",
                   "relay.smarthost": f"127.0.0.1:{peer.port}",
                   "queue.retry_first": "1", "queue.retry_max": "1",
                   "queue.delay_warning": "0", "queue.lifetime": "3"})
        s0, _ = parse(scrape(mport))
        # a local sender: its DSN goes to a Maildir, not to the peer
        with t.smtplib() as s:
            s.sendmail("ben@example.org", ["far@far.test"], MSG)

        def expired():
            s1, _ = parse(scrape(mport))
            return s1 if val(s1, "tern_messages_expired_total") else None
        s1 = wait_for(expired, "the expiry in the metrics", timeout=20)
        assert moved(s0, s1, "tern_messages_expired_total") == 1
        assert moved(s0, s1, "tern_messages_deferred_total",
                     transport="smtp") == peer.rcpts
        wait_for(lambda: val(parse(scrape(mport))[0],
                             "tern_queue_messages") == 0, "the queue empty")
    finally:
        peer.close()


def test_metrics_relay_over_tls(ternd):
    """A message relayed to a second ternd (the smarthost, STARTTLS with
    its self-signed certificate): TLS out counted unverified, the
    recipient delivered over SMTP to its destination, with its latency."""
    far = ternd({"domains": "far.test"}, users=("zoe@far.test",),
                state="far")
    mport = free_port()
    t = ternd({"listen.metrics": f"127.0.0.1:{mport}",
               "relay.networks": "127.0.0.0/8",
               "relay.smarthost": f"127.0.0.1:{far.port}"})
    s0, _ = parse(scrape(mport))
    with t.smtplib() as s:
        s.sendmail("ben@example.org", ["zoe@far.test"], MSG)
    wait_for(lambda: far.messages("zoe@far.test"), "the relayed message")

    def delivered():
        s1, _ = parse(scrape(mport))
        return s1 if moved(s0, s1, "tern_messages_delivered_total",
                           transport="smtp") else None
    s1 = wait_for(delivered, "the delivery in the metrics")
    dest = f"127.0.0.1:{far.port}"
    assert moved(s0, s1, "tern_messages_delivered_total", transport="smtp") == 1
    assert moved(s0, s1, "tern_destination_deliveries_total", domain=dest) == 1
    assert moved(s0, s1, "tern_delivery_latency_seconds_count",
                 transport="smtp") == 1
    assert moved(s0, s1, "tern_tls_sessions_total", direction="out",
                 version="TLSv1.3", verified="no") == 1
    assert moved(s0, s1, "tern_tls_failures_total", direction="out") == 0
    assert val(s1, "tern_queue_messages") == 0


def test_metrics_starttls_reply_counted(metered):
    """The STARTTLS go-ahead (220 2.0.0), written before the handshake
    outside the usual output path, is counted like every reply."""
    t, _ = metered
    s0, _ = parse(scrape(t.metrics_port))
    with t.sub_client(tls=True) as c:       # EHLO, STARTTLS, EHLO
        c.expect("QUIT", 221, "2.0.0")
    s1, _ = parse(scrape(t.metrics_port))
    assert moved(s0, s1, "tern_smtp_replies_total", **{
        "class": "2xx", "enhanced": "2.0.0"}) == 2   # 220 2.0.0, 221 2.0.0
    assert moved(s0, s1, "tern_smtp_replies_total", **{
        "class": "2xx", "enhanced": "none"}) == 3    # greeting, two EHLO
