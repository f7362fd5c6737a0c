"""curl's SMTP client (libcurl) uploads a message."""

import subprocess

import pytest

from conftest import SLOW, check_received, require

MSG = (b"From: claire@example.net\r\n"
       b"To: ben@example.org\r\n"
       b"Subject: curl upload\r\n"
       b"\r\n"
       b"body line\r\n"
       b".leading dot\r\n"
       b"last line\r\n")


@pytest.fixture(scope="module")
def t(ternd_module):
    return ternd_module()


def curl(t, rcpts, tmp, *extra, msg=MSG):
    exe = require("curl", "curl")
    f = tmp / "msg.eml"
    f.write_bytes(msg)
    argv = [exe, "-sS", "--max-time", str(int(20 * SLOW)),
            f"smtp://127.0.0.1:{t.port}/client.test",
            "--mail-from", "claire@example.net", "--upload-file", str(f)]
    for r in rcpts:
        argv += ["--mail-rcpt", r]
    argv += list(extra)
    return subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL,
                          timeout=30 * SLOW)


def test_curl_upload(t, tmp_path):
    before = set(t.files("ben@example.org"))
    r = curl(t, ["ben@example.org"], tmp_path)
    assert r.returncode == 0, r.stderr
    [d] = [d for d in t.messages("ben@example.org") if d.path not in before]
    assert d.return_path == "claire@example.net"
    check_received(d, helo="client.test", rcpt="ben@example.org")
    assert d.body == MSG


def test_curl_two_recipients(t, tmp_path):
    addrs = ("ben@example.org", "dave@example.net")
    before = {a: set(t.files(a)) for a in addrs}
    r = curl(t, addrs, tmp_path)
    assert r.returncode == 0, r.stderr
    for a in addrs:
        [d] = [d for d in t.messages(a) if d.path not in before[a]]
        assert d.body == MSG


def test_curl_unknown_recipient_fails(t, tmp_path):
    before = set(t.files("ben@example.org"))
    r = curl(t, ["nobody@example.org", "ben@example.org"], tmp_path)
    assert r.returncode != 0, "curl succeeded although a RCPT got 550"
    assert b"550" in r.stderr, r.stderr
    assert set(t.files("ben@example.org")) == before


def test_curl_rcpt_allowfails(t, tmp_path):
    before = set(t.files("ben@example.org"))
    r = curl(t, ["nobody@example.org", "ben@example.org"], tmp_path,
             "--mail-rcpt-allowfails")
    assert r.returncode == 0, r.stderr
    [d] = [d for d in t.messages("ben@example.org") if d.path not in before]
    assert d.body == MSG
