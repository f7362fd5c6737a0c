"""bench/loadgen's options for the scenarios of issue 14, against a ternd of
the fixtures: TLS session resumption (--resume, scenario G), several
loopback source addresses (--src, scenario C at 50,000), the counting
sink with STARTTLS (--sink, scenario J) and one copy per different
address with -R above the number of -r addresses (scenario H).  The
bench trusts these figures; here they are checked against what ternd
logged and stored."""

import re
import subprocess

import pytest

from conftest import REPO, free_port, maildir_files, wait_for, wait_port, world_tmpdir


@pytest.fixture(scope="module")
def loadgen():
    d = world_tmpdir("tern-loadgen-")
    exe = d / "loadgen"
    subprocess.run(["cc", "-std=c17", "-O1", "-Wall", "-Wextra", "-Werror",
                    "-o", str(exe), str(REPO / "bench" / "loadgen.c"),
                    "-lssl", "-lcrypto", "-lpthread"], check=True, timeout=120)
    return exe


def run(exe, *args, timeout=60):
    r = subprocess.run([str(exe), *args], capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, r.stderr
    line = [l for l in r.stdout.splitlines() if l.startswith("loadgen ")]
    assert line, r.stdout + r.stderr
    return dict(kv.split("=", 1) for kv in line[-1].split()[1:])


def test_resume_and_source_addresses(ternd, loadgen):
    """-S --resume: every handshake after the first ones resumes (ternd's
    tickets, each offered once); --src 3: the connections come from
    127.0.0.2, .3 and .4, as ternd logs them."""
    t = ternd()
    rcpt = "ben@example.org"
    new = t.state_dir / "mail" / "example.org" / "ben" / "new"
    v = run(loadgen, "-p", str(t.port), "-S", "--tls13", "--resume", "-m", "1", "-c", "2",
            "-n", "30", "--src", "3", "-r", rcpt, "--watch-dir", str(new),
            "--watch-timeout", "15")
    assert v["ok"] == "30" and v["failed"] == "0", v
    assert v["arrived"] == "30", v
    assert len(maildir_files(t.state_dir, rcpt)) == 30
    assert int(v["tls_handshakes"]) == int(v["connects"]) >= 30, v
    # the first two sessions start together, before any ticket: full
    assert int(v["tls_resumed"]) >= 26, v
    log = t.log_path.read_text()
    clients = set(re.findall(r"event=connect listener=smtp client=(127\.0\.0\.\d+)", log))
    assert {"127.0.0.2", "127.0.0.3", "127.0.0.4"} <= clients, clients
    assert "127.0.0.5" not in clients
    # without --resume nothing is resumed: the count is not a constant
    v = run(loadgen, "-p", str(t.port), "-S", "-m", "1", "-n", "5", "-r", rcpt)
    assert v["tls_handshakes"] == "5" and v["tls_resumed"] == "0", v


def test_distinct_recipients(ternd, loadgen):
    """-R 6 over three addresses names each twice per message: ternd stores
    one copy per mailbox, and loadgen expects (ok_distinct) and waits for
    exactly those."""
    t = ternd()
    users = ("ben@example.org", "claire@example.org", "dave@example.net")
    dirs = []
    for u in users:
        local, domain = u.split("@")
        dirs += ["--watch-dir", str(t.state_dir / "mail" / domain / local / "new")]
    v = run(loadgen, "-p", str(t.port), "-n", "10", "-c", "2", "-R", "6",
            "-r", ",".join(users), "--watch-timeout", "15", *dirs)
    assert v["ok"] == "10" and v["ok_rcpts"] == "60", v
    assert v["ok_distinct"] == "30" and v["arrived"] == "30", v
    for u in users:
        assert len(maildir_files(t.state_dir, u)) == 10, u


def test_tls_sink_counts_ternd_relay(ternd, loadgen):
    """--sink offers STARTTLS with the given certificate and counts each
    message and each TLS session: ternd relays to it (smarthost, TLS
    when offered) and every message arrives over TLS."""
    d = world_tmpdir("tern-sink-")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-days", "2", "-subj", "/CN=sink.test",
                    "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
                   check=True, capture_output=True, timeout=60)
    port = free_port()
    out = d / "sink.out"
    sink = subprocess.Popen([str(loadgen), "--sink", str(port), "--sink-out", str(out),
                             "--cert", str(d / "cert.pem"), "--key", str(d / "key.pem")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_port(port, 10, sink, "loadgen --sink").close()
        t = ternd({"relay.smarthost": f"127.0.0.1:{port}",
                   "relay.smarthost_tls": "may",
                   "relay.networks": "127.0.0.1/32"})
        v = run(loadgen, "-p", str(t.port), "-n", "20", "-c", "2",
                "-r", "r1@remote.test,r2@remote.test", "--watch-sink", str(out),
                "--watch-timeout", "15")
        assert v["ok"] == "20" and v["arrived"] == "20", v
        counts = dict(kv.split("=") for kv in out.read_text().split())
        assert counts["mesg"] == "20" and counts["rcpts"] == "20", counts
        # every connection but wait_port's probe used STARTTLS
        assert int(counts["tls"]) == int(counts["conns"]) - 1 >= 1, counts
        # handshakes that resumed ternd's session (its second and later
        # connections; how many depends on how the 20 were spread)
        assert 0 <= int(counts["resumed"]) < int(counts["tls"]), counts
        wait_for(lambda: "event=tls version=TLSv1.3" in t.log_path.read_text(),
                 "ternd's outbound TLS line")
    finally:
        sink.terminate()
        sink.wait(10)
