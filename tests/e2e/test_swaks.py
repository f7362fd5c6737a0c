"""swaks as the client, over TCP, with and without PIPELINING."""

import re
import subprocess

import pytest

from conftest import SLOW, check_received, require

# swaks turns LF into CRLF, stuffs leading dots and appends CRLF.CRLF; the
# server unstuffs, so this is stored:
DATA_IN = "Subject: swaks test\nFrom: claire@example.net\n\nline one\n.dot line\nlast"
DATA_STORED = (b"Subject: swaks test\r\nFrom: claire@example.net\r\n\r\n"
               b"line one\r\n.dot line\r\nlast\r\n")


@pytest.fixture(scope="module")
def t(ternd_module):
    return ternd_module()


def swaks(t, *args, data=DATA_IN, tmp=None):
    exe = require("swaks", "swaks")
    argv = [exe, "--server", f"127.0.0.1:{t.port}", "--helo", "client.test",
            "--from", "claire@example.net", "--timeout", "10"]
    if data is not None:
        p = tmp / "swaks-data.txt"
        p.write_text(data)
        argv += ["--data", f"@{p}"]
    argv += list(args)
    return subprocess.run(argv, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=30 * SLOW)


def test_swaks_plain(t, tmp_path):
    before = set(t.files("ben@example.org"))
    r = swaks(t, "--to", "ben@example.org", tmp=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"^<-\s+220 mx\.test ESMTP", r.stdout, re.M), r.stdout
    [d] = [d for d in t.messages("ben@example.org") if d.path not in before]
    assert d.return_path == "claire@example.net"
    check_received(d, helo="client.test", rcpt="ben@example.org")
    assert d.body == DATA_STORED


def test_swaks_pipelining(t, tmp_path):
    before = {a: set(t.files(a)) for a in ("ben@example.org", "claire@example.org")}
    r = swaks(t, "--to", "ben@example.org,claire@example.org", "--pipeline",
              tmp=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    for a in before:
        [d] = [d for d in t.messages(a) if d.path not in before[a]]
        assert d.body == DATA_STORED
        check_received(d, helo="client.test", rcpt=None)


def test_swaks_unknown_recipient(t, tmp_path):
    before = set(t.files("ben@example.org"))
    r = swaks(t, "--to", "nobody@example.org", tmp=tmp_path)
    # swaks: 24 = no recipient accepted
    assert r.returncode == 24, r.stdout + r.stderr
    assert re.search(r"^<\*\*\s+550 5\.1\.1", r.stdout, re.M), r.stdout
    assert set(t.files("ben@example.org")) == before


def test_swaks_relay_denied(t, tmp_path):
    r = swaks(t, "--to", "someone@example.com", tmp=tmp_path)
    assert r.returncode == 24, r.stdout + r.stderr
    assert re.search(r"^<\*\*\s+554 5\.7\.1", r.stdout, re.M), r.stdout


def test_swaks_default_message(t, tmp_path):
    """swaks' own generated message (Date, Message-Id, X-Mailer headers)."""
    before = set(t.files("dave@example.net"))
    r = swaks(t, "--to", "dave@example.net", "--header", "Subject: generated",
              data=None, tmp=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    [d] = [d for d in t.messages("dave@example.net") if d.path not in before]
    assert b"Subject: generated\r\n" in d.body
    assert b"This is a test mailing" in d.body
    assert d.body.endswith(b"\r\n")
