"""Start, stop, restart and bad configuration."""

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import (ASAN, SANITIZER_MARKERS, SLOW, TERND, base_args, check,
                      free_port, make_state_dir, require_build, wait_port,
                      world_tmpdir)


def test_sigterm_with_idle_session(ternd):
    t = ternd()
    with t.client() as c:
        c.ehlo()
        t.terminate()
        r = c.reply(timeout=5 * SLOW)
        assert r.code == 421 and r.enh and r.enh.startswith("4."), r
        c.wait_closed(5 * SLOW)
    t.check_clean_exit()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", t.port), timeout=1).close()


def test_sigterm_mid_transaction_loses_nothing_acknowledged(ternd):
    t = ternd()
    with t.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<claire@example.net>", 250)
        c.expect("RCPT TO:<ben@example.org>", 250)
        c.expect("DATA", 354)
        c.send(b"Subject: done\r\n\r\nacknowledged\r\n.\r\n")
        check(c.reply(), 250)
        c.expect("MAIL FROM:<claire@example.net>", 250)
        c.expect("RCPT TO:<claire@example.org>", 250)
        t.terminate()
        r = c.reply(timeout=5 * SLOW)
        check(r, 421)
    t.check_clean_exit()
    [d] = t.messages("ben@example.org")
    assert d.body == b"Subject: done\r\n\r\nacknowledged\r\n"
    assert t.files("claire@example.org") == []


def test_restart_keeps_users_and_mail(ternd):
    t1 = ternd(state="st")
    check(t1.send_raw("claire@example.net", ["ben@example.org"],
                      b"Subject: 1\r\n\r\none\r\n"), 250)
    t1.check_clean_exit()
    t2 = ternd(state="st", users=())
    check(t2.send_raw("claire@example.net", ["ben@example.org"],
                      b"Subject: 2\r\n\r\ntwo\r\n"), 250)
    bodies = sorted(d.body for d in t2.messages("ben@example.org"))
    assert bodies == [b"Subject: 1\r\n\r\none\r\n", b"Subject: 2\r\n\r\ntwo\r\n"]


def run_ternd(tmp_path, *args, state_mode=None):
    """ternd with a configuration it must refuse: exit status and stderr."""
    require_build()
    port = free_port()
    top = world_tmpdir("tern-e2e-")
    state = make_state_dir(top / "state")
    if state_mode is not None:
        os.chmod(state, state_mode)
    argv = [str(TERND), *args, *base_args(state),
            "-o", f"listen.smtp=127.0.0.1:{port}", "-o", "listen.submission=off"]
    env = dict(os.environ)
    env.pop("TERN_CONFIG", None)
    try:
        r = subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL,
                           timeout=10 * SLOW, cwd=str(tmp_path), env=env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"ternd kept running with a bad configuration: {argv}")
    finally:
        shutil.rmtree(top, ignore_errors=True)
    err = r.stderr.decode(errors="replace")
    if ASAN:
        for m in SANITIZER_MARKERS:
            assert m not in err, err
    return r.returncode, err


def test_first_start_makes_the_state_dir(tmp_path):
    """A state_dir that does not exist yet is made at the first start, with
    the self-signed pair in it (the pair is made after state_dir is)."""
    require_build()
    port = free_port()
    top = world_tmpdir("tern-e2e-")
    os.chmod(top, 0o777)                # ternd's user makes state_dir in it
    state = top / "fresh"
    argv = [str(TERND), *base_args(state), "-o", f"listen.smtp=127.0.0.1:{port}",
            "-o", "listen.submission=off"]
    env = dict(os.environ)
    env.pop("TERN_CONFIG", None)
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, cwd=str(tmp_path), env=env)
    try:
        with wait_port(port, 10 * SLOW, p, "ternd") as sock:
            sock.settimeout(10 * SLOW)
            assert sock.recv(512).startswith(b"220 ")   # the loop runs
        assert (state / "tls" / "cert.pem").is_file()
    finally:
        p.terminate()
        out = p.communicate(timeout=30 * SLOW)[0].decode(errors="replace")
        shutil.rmtree(top, ignore_errors=True)
    assert p.returncode == 0, out


def test_unknown_key_on_command_line(tmp_path):
    rc, err = run_ternd(tmp_path, "-o", "limits.bogus_key=1")
    assert rc == 1, (rc, err)
    assert "limits.bogus_key" in err, err


def test_unknown_key_in_file(tmp_path):
    conf = tmp_path / "tern.conf"
    conf.write_text("hostname = mx.test\n\n[limits]\nmessage_size = 1000\n"
                    "frobnicate = yes\n")
    rc, err = run_ternd(tmp_path, "-c", str(conf))
    assert rc == 1, (rc, err)
    assert "frobnicate" in err, err
    assert re.search(r"(line[ =:]?5\b|:5\b)", err), f"no line number in: {err}"


def test_bad_value(tmp_path):
    rc, err = run_ternd(tmp_path, "-o", "limits.recipients=many")
    assert rc == 1, (rc, err)
    assert "limits.recipients" in err, err


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o702])
def test_state_dir_writable_by_others_is_refused(tmp_path, mode):
    # others could plant files or symlinks in the queue and the mailboxes
    rc, err = run_ternd(tmp_path, state_mode=mode)
    assert rc == 1, (rc, err)
    assert "writable by group or others" in err and "chmod 700" in err, err


def test_missing_config_file(tmp_path):
    rc, err = run_ternd(tmp_path, "-c", str(tmp_path / "nonexistent.conf"))
    assert rc == 1, (rc, err)
    assert "nonexistent.conf" in err, err


def test_shipped_example_config_parses(tmp_path):
    """contrib/tern.conf (installed as /etc/tern/tern.conf) is read without
    an error and means what its comments say."""
    from conftest import REPO, TERN
    out = subprocess.run(
        [str(TERN), "-c", str(REPO / "contrib" / "tern.conf"),
         "-o", f"state_dir={tmp_path}", "config"],
        capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    conf = dict(line.split(" = ", 1) if " = " in line else (line.rstrip(" ="), "")
                for line in out.stdout.splitlines())
    assert conf["hostname"] == "mx.example.org", out.stdout
    assert conf["domains"] == "example.org, example.net", out.stdout
    assert conf["user"] == "tern", out.stdout
    assert conf["listen.smtp"] == "0.0.0.0:25", out.stdout
    assert conf["listen.submissions"] == "0.0.0.0:465", out.stdout
    assert conf["relay.smarthost"] == "", out.stdout


def test_config_file_is_used(ternd, tmp_path):
    """Keys from -c FILE apply; -o overrides the file."""
    conf = tmp_path / "tern.conf"
    conf.write_text("hostname = from-file.test\n[limits]\nmessage_size = 4321\n")
    t = ternd({"hostname": "mx.test"}, args=["-c", str(conf)])
    with t.client() as c:
        r = c.ehlo()
        assert r.lines[0].startswith("250-mx.test"), r
        assert any(ln[4:] == "SIZE 4321" for ln in r.lines), r


def test_stale_maildir_tmp_files_are_swept_at_start(ternd):
    """A ternd killed while writing leaves files in a Maildir's tmp/; the
    next one removes those (its own naming, this host, another process,
    older than its start) and nothing else."""
    t = ternd()
    assert t.stop() == 0
    tmp = Path(t.state_dir) / "mail" / "example.org" / "ben" / "tmp"
    host = socket.gethostname().replace("/", "\\057").replace(":", "\\072")
    old = time.time() - 3600
    stale = [f"1700000000.M1P4194304Q{i}.{host},S=100" for i in (1, 2)]
    keep = ["1700000000.M1P4194304Q3.otherhost,S=100",   # another host's
            "1700000000.12345_1.client",                  # a mail client's
            "notes.txt"]
    for name in stale + keep:
        (tmp / name).write_bytes(b"partial")
        os.utime(tmp / name, (old, old))
    link = f"1700000000.M1P4194304Q4.{host},S=100"       # a planted symlink:
    os.symlink("/etc/passwd", tmp / link)                  # not a file of ours
    keep.append(link)
    t.start()
    deadline = time.monotonic() + 10 * SLOW
    while time.monotonic() < deadline:
        m = re.findall(r"event=maildir_tmp_swept removed=(\d+) mailboxes=(\d+)", t.log())
        if len(m) == 2:
            break
        time.sleep(0.1)
    assert len(m) == 2, t.log()[-2000:]
    assert m[1][0] == "2" and int(m[1][1]) >= 3, m
    assert sorted(os.listdir(tmp)) == sorted(keep)
    # and mail still flows through that mailbox
    check(t.send_raw("claire@example.com", ["ben@example.org"],
                     b"Subject: after the sweep\r\n\r\nhi\r\n"), 250)
