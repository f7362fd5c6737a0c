"""
End-to-end fixtures: start the real ternd on loopback with a temporary
state directory, drive it with real clients (smtplib, swaks, curl, imaplib
through Dovecot) and with a raw socket client for adversarial input.

Run with Debian's python3:   /usr/bin/python3 -m pytest tests/e2e
The build directory is $TERN_BUILD (default "build"); when it contains
"asan" every ternd log is checked for sanitizer reports at teardown.

Nothing here skips: a missing binary or tool is a failure that names the
Debian package to install.
"""

import ctypes
import email
import email.policy
import email.utils
import grp
import os
import pwd
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

import received

REPO = Path(__file__).resolve().parents[2]
_BUILD_ENV = os.environ.get("TERN_BUILD", "build")
BUILD = Path(_BUILD_ENV) if os.path.isabs(_BUILD_ENV) else REPO / _BUILD_ENV
TERND = BUILD / "ternd"
TERN = BUILD / "tern"
ASAN = "asan" in _BUILD_ENV
# Sanitizer builds are several times slower: stretch the waits, not the
# protocol timeouts under test.
SLOW = 3.0 if ASAN else 1.0

HOSTNAME = "mx.test"
DOMAINS = "example.org,example.net"
DEFAULT_USERS = ("ben@example.org", "claire@example.org", "dave@example.net")

# ternd refuses to keep root: started as root it needs user= and drops to
# it.  The tests then run ternd and tern as this user (tern too, so the
# files it creates stay readable and writable by ternd), with state dirs
# in a temporary directory that user can traverse.
RUN_AS = None
if os.geteuid() == 0:
    _pw = pwd.getpwnam(os.environ.get("TERN_TEST_USER", "nobody"))
    RUN_AS = (_pw.pw_name, _pw.pw_uid, _pw.pw_gid)
    del _pw

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                     "runtime error")

# Every ternd/dovecot alive right now, so a failing test shows their logs.
_ACTIVE = []


# ---------------------------------------------------------------------------
# tools and ports
# ---------------------------------------------------------------------------

def require(path, package):
    """Fail (never skip) when a tool is missing, naming its package."""
    p = shutil.which(str(path)) if not os.path.isabs(str(path)) else str(path)
    if not p or not os.access(p, os.X_OK):
        pytest.fail(f"{path} not found: install the Debian package '{package}'",
                    pytrace=False)
    return p


def require_build():
    for b in (TERND, TERN):
        if not os.access(b, os.X_OK):
            pytest.fail(f"{b} missing: run 'make' (or 'make asan' with "
                        f"TERN_BUILD=build-asan) first", pytrace=False)


def _ephemeral_low():
    """The first port of the kernel's ephemeral range (32768 by default)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_PORT_RANGE = (10000, _ephemeral_low() - 1)
_port_rng = random.Random()  # seeded per process: each xdist worker its own


def free_port():
    """A loopback TCP port that nobody listens on right now, for a server a
    test is about to start.  Chosen at random *below* the kernel's
    ephemeral range: the kernel takes the local port of every outgoing
    connection from that range, so a port it handed out by bind(0) could
    be taken by some client's connect() (the other xdist worker's, or a
    ternd's delivery) before the server binds it, and the server then
    fails with "Address already in use" (seen in a CI rehearsal).  Below
    the range only listeners can collide, and the bind here checks that
    none holds the port now."""
    lo, hi = _PORT_RANGE
    for _ in range(500):
        port = _port_rng.randint(lo, hi)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free loopback port in {lo}-{hi}")


def wait_port(port, timeout, proc=None, what="server", host="127.0.0.1"):
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode} "
                               f"before listening on {host}:{port}")
        try:
            return socket.create_connection((host, port), timeout=1)
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} not listening on {host}:{port} "
                                   f"after {timeout}s")
            time.sleep(0.05)


def make_state_dir(path):
    """Create a state_dir owned by the user ternd will run as, mode 0700."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if RUN_AS:
        os.chown(path, RUN_AS[1], RUN_AS[2])
    os.chmod(path, 0o700)
    return path


def base_args(state_dir):
    """The -o options every ternd of the suite gets (plus user= as root)."""
    a = ["-o", f"state_dir={state_dir}", "-o", "spf.check=no",
         "-o", "dkim.verify=no", "-o", "dmarc.check=no"]
    if RUN_AS:
        a += ["-o", f"user={RUN_AS[0]}"]
    return a


def _run_as_kw():
    if RUN_AS:
        return {"user": RUN_AS[1], "group": RUN_AS[2], "extra_groups": []}
    return {}


def world_tmpdir(prefix):
    """A temporary directory other uids can traverse (pytest's is 0700)."""
    d = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(d, 0o711)
    return d


def log_tail(path, n=150):
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as e:
        return f"(cannot read {path}: {e})"
    lines = text.splitlines()
    if len(lines) > n:
        lines = [f"... ({len(lines) - n} lines cut)"] + lines[-n:]
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# tests that need root (a real Postfix: its master must start as root)
# ---------------------------------------------------------------------------
#
# They carry @pytest.mark.root.  tests/run.py runs the suite twice: once as
# an unprivileged user with -m "not root", then -m root as root with
# TERN_E2E_ROOT_TESTS=1.  A root test run without root fails when that
# variable says root was expected, and is skipped (with the reason) when
# someone runs the file by hand as a normal user.

ROOT_TESTS_ENV = "TERN_E2E_ROOT_TESTS"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "root: needs euid 0 (tests/run.py runs these in a "
        "second pass as root)")
    config.addinivalue_line(
        "markers", "own_build: builds and runs binaries of its own (the "
        "Debian packages), not $TERN_BUILD's: tests/run.py leaves it out "
        "of the sanitizer build's run, where it would test the same "
        "binaries again")


def pytest_runtest_setup(item):
    if item.get_closest_marker("root") is None or os.geteuid() == 0:
        return
    why = (f"{item.nodeid} needs root (a private Postfix, whose master "
           f"starts as root, or a loop-mounted file system); euid is "
           f"{os.geteuid()}")
    if os.environ.get(ROOT_TESTS_ENV) == "1":
        pytest.fail(f"{why}, but {ROOT_TESTS_ENV}=1 says the root tests "
                    f"were expected to run", pytrace=False)
    pytest.skip(f"{why}: tests/run.py runs them as root")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for obj in list(_ACTIVE):
            rep.sections.append((f"{obj.name} log {obj.log_path}",
                                 log_tail(obj.log_path)))


# ---------------------------------------------------------------------------
# raw SMTP client
# ---------------------------------------------------------------------------

class Reply:
    """One complete SMTP reply (possibly multi-line)."""

    def __init__(self, lines):
        self.lines = lines                      # str, without CRLF
        self.code = int(lines[-1][:3])
        m = re.match(r"\d{3}[ -](\d\.\d{1,3}\.\d{1,3})\b", lines[-1])
        self.enh = m.group(1) if m else None
        self.text = "\n".join(lines)

    def __repr__(self):
        return f"Reply({self.text!r})"


class ServerClosed(Exception):
    pass


class SMTPClient:
    """
    A byte-exact SMTP client for adversarial tests: send() writes exactly
    the bytes given; reply() reads until a complete final line "NNN ...".
    """

    def __init__(self, port, timeout=5.0, source=None, greet=True, tls=False,
                 host="127.0.0.1"):
        """tls=True: implicit TLS (port 465 style) before the greeting.
        host: the server's address (an IPv6 one makes an IPv6 socket)."""
        self.port = port
        self.timeout = timeout * SLOW
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if source:
            self.sock.bind((source, 0))
        self.sock.settimeout(self.timeout)
        self.sock.connect((host, port))
        self.buf = b""
        self.eof = False
        if tls:
            self.tls_handshake()
        self.greeting = self.reply() if greet else None

    def tls_handshake(self, context=None):
        """Wrap the socket in TLS now (after a 220 to STARTTLS, or at once
        for implicit TLS).  Bytes already buffered would have been sent in
        clear text: there must be none."""
        assert self.buf == b"", f"clear-text bytes before TLS: {self.buf!r}"
        self.sock.settimeout(self.timeout)
        self.sock = (context or tls_client_context()).wrap_socket(
            self.sock, server_hostname=HOSTNAME)
        return self.sock

    def starttls(self, context=None):
        """STARTTLS, 220, handshake.  EHLO again is the caller's job."""
        self.expect("STARTTLS", 220)
        return self.tls_handshake(context)

    # -- low level --
    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no complete reply in time; buffered: "
                               f"{self.buf[:300]!r}")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no complete reply in time; buffered: "
                               f"{self.buf[:300]!r}") from None
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            raise ServerClosed(f"server closed the connection; buffered: "
                               f"{self.buf[:300]!r}")
        self.buf += chunk

    def read_line(self, timeout=None):
        deadline = time.monotonic() + (timeout if timeout is not None
                                       else self.timeout)
        while b"\r\n" not in self.buf:
            self._fill(deadline)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def reply(self, timeout=None):
        """The next complete reply; TimeoutError / ServerClosed otherwise."""
        deadline = time.monotonic() + (timeout if timeout is not None
                                       else self.timeout)
        lines = []
        while True:
            line = self.read_line(max(0.0, deadline - time.monotonic()))
            if not re.match(r"^\d{3}[ -]", line) and not re.match(r"^\d{3}$", line):
                raise AssertionError(f"malformed reply line {line!r} "
                                     f"(after {lines!r})")
            lines.append(line)
            if len(line) == 3 or line[3] == " ":
                return Reply(lines)

    def replies(self, n, timeout=None):
        return [self.reply(timeout) for _ in range(n)]

    def cmd(self, line, timeout=None):
        if isinstance(line, str):
            line = line.encode()
        self.send(line + b"\r\n")
        return self.reply(timeout)

    def expect(self, line, code, enh=None, timeout=None):
        r = self.cmd(line, timeout)
        check(r, code, enh, line)
        return r

    def ehlo(self, name="client.test"):
        return self.expect(f"EHLO {name}", 250)

    def no_reply(self, wait=0.5):
        """Assert the server sends nothing within `wait` seconds."""
        deadline = time.monotonic() + wait
        try:
            while time.monotonic() < deadline:
                self._fill(deadline)
        except TimeoutError:
            pass
        except ServerClosed:
            raise AssertionError(f"server closed the connection; "
                                 f"unexpected bytes {self.buf!r}")
        assert self.buf == b"", f"unexpected extra bytes from server: {self.buf!r}"

    def wait_closed(self, timeout=None):
        """Assert the server closes the connection (after any bytes)."""
        deadline = time.monotonic() + (timeout if timeout is not None
                                       else self.timeout)
        try:
            while True:
                self._fill(deadline)
        except ServerClosed:
            return self.buf
        except TimeoutError:
            raise AssertionError("server did not close the connection; "
                                 f"buffered {self.buf!r}") from None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def tls_client_context(minimum=None, maximum=None):
    """A client context that does not verify the (self-signed) server."""
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if minimum is not None:
        ctx.minimum_version = minimum
    if maximum is not None:
        ctx.maximum_version = maximum
    return ctx


def ehlo_keywords(reply):
    """{KEYWORD: [params]} of an EHLO reply."""
    kw = {}
    for line in reply.lines[1:]:
        words = line[4:].split()
        if words:
            kw[words[0].upper()] = [w.upper() for w in words[1:]]
    return kw


def check(reply, code, enh=None, what=""):
    assert reply.code == code, f"{what!r}: expected {code} {enh or ''}, got {reply.text!r}"
    if enh is not None:
        assert reply.enh == enh, f"{what!r}: expected {code} {enh}, got {reply.text!r}"


# ---------------------------------------------------------------------------
# Maildir reading
# ---------------------------------------------------------------------------

class Delivery:
    """A delivered file split into Return-Path, Received and the rest."""

    def __init__(self, path, data):
        self.path = path
        self.data = data
        assert data.startswith(b"Return-Path: <"), \
            f"{path}: does not start with Return-Path: {data[:200]!r}"
        first, rest = data.split(b"\r\n", 1)
        assert first.endswith(b">"), f"{path}: bad Return-Path line {first!r}"
        self.return_path = first[len(b"Return-Path: <"):-1].decode("utf-8", "replace")
        assert rest.startswith(b"Received: "), \
            f"{path}: second header is not Received: {rest[:300]!r}"
        # the Received header: its first line plus folded continuation lines
        lines = []
        while True:
            line, rest = rest.split(b"\r\n", 1)
            lines.append(line)
            if not rest[:1] in (b" ", b"\t"):
                break
        self.received_raw = b"\r\n".join(lines)
        self.received = re.sub(r"\s+", " ", b" ".join(
            ln.strip() for ln in lines).decode("utf-8", "replace"))
        self.body = rest          # the message exactly as the client sent it

    def received_date(self):
        return received.parse(self.received_raw.decode("utf-8", "replace")).date


_MAILDIR_NAME = re.compile(r"^(\d+)\.M(\d+)P(\d+)Q(\d+)\.")


def _maildir_order(p):
    """Delivery order of a Maildir file: tern's names are
    SECS.MUSECSPPIDQN.HOST, whose microseconds are not zero-padded, so
    the plain name does not sort by time."""
    m = _MAILDIR_NAME.match(p.name)
    if m is None:
        return (1, 0, 0, 0, p.name)
    secs, usecs, _pid, n = (int(x) for x in m.groups())
    return (0, secs, usecs, n, p.name)


def maildir_files(state_dir, address):
    """Files of the Maildir of address (new and cur), oldest first."""
    local, domain = address.rsplit("@", 1)
    md = Path(state_dir) / "mail" / domain / local
    out = []
    for sub in ("new", "cur"):
        d = md / sub
        if d.is_dir():
            out += [p for p in d.iterdir() if p.is_file()]
    return sorted(out, key=_maildir_order)


def maildir_messages(state_dir, address):
    return [Delivery(p, p.read_bytes()) for p in maildir_files(state_dir, address)]


def check_received(d, helo="client.test", rcpt=None, proto="ESMTP",
                   by=HOSTNAME, ip="127.0.0.1"):
    """tern's Received field of delivery d, read by the independent parser
    (received.py, from the RFC 5321 4.4 grammar): from the client's HELO
    name with its address as TCP-info, by this server, with the protocol,
    an id, "for" the one recipient (none for several), a current date."""
    r = received.parse(d.received_raw.decode("utf-8", "replace"))
    assert (r.value("from") or "").lower() == helo.lower(), r
    tcp = r.tcp_info()
    assert tcp is not None and tcp[1] in (f"[{ip}]", f"[IPv6:{ip}]"), \
        f"from clause without the client's address as TCP-info: {r!r}"
    assert (r.value("by") or "").lower() == by.lower(), r
    assert re.fullmatch(proto, r.value("with") or ""), r     # proto: a regex
    assert r.value("id"), f"no id clause: {r!r}"
    if rcpt is None:
        assert r.get("for") is None, f"'for' clause with several recipients: {r!r}"
    else:
        assert r.value("for") == f"<{rcpt}>", r
    age = time.time() - r.date.timestamp()
    assert -5 < age < 600, f"Received date {r.date} is not now: {r!r}"
    return r


# ---------------------------------------------------------------------------
# ternd
# ---------------------------------------------------------------------------

class Ternd:
    name = "ternd"

    def __init__(self, state_dir, log_path, overrides, users=DEFAULT_USERS,
                 args=()):
        require_build()
        self.args = list(args)          # before the -o overrides, e.g. -c FILE
        self.state_dir = make_state_dir(state_dir)
        self.port = free_port()
        self.log_path = Path(log_path)
        self.overrides = {
            "hostname": HOSTNAME,
            "domains": DOMAINS,
            "state_dir": str(self.state_dir),
            "listen.smtp": f"127.0.0.1:{self.port}",
            "listen.submission": "off",
            # SPF, DKIM and DMARC ask DNS for every MX-port message: off
            # unless a test turns them on with its own resolver
            # (test_spf.py, test_mailauth_in.py, test_mailauth_journey.py)
            "spf.check": "no",
            "dkim.verify": "no",
            "dmarc.check": "no",
            "arc.verify": "no",
        }
        if RUN_AS:
            self.overrides["user"] = RUN_AS[0]
        # the log-structured queue is the default (docs/queue.md, "The
        # log"); TERN_TEST_QUEUE_LOG=0 runs the suite on the file spool
        if os.environ.get("TERN_TEST_QUEUE_LOG") == "1":
            self.overrides["queue.log"] = "yes"
        elif os.environ.get("TERN_TEST_QUEUE_LOG") == "0":
            self.overrides["queue.log"] = "no"
        self.overrides.update(overrides or {})
        self.proc = None
        self.stopped_rc = None
        self.term_sent = False
        for u in users:
            self.tern("user", "add", u)

    # -- process --
    def argv(self):
        a = [str(TERND)] + self.args
        for k, v in self.overrides.items():
            a += ["-o", f"{k}={v}"]
        return a

    def start(self, timeout=10):
        env = dict(os.environ)
        env.pop("TERN_CONFIG", None)
        self.stopped_rc = None          # a restart is checked at teardown too
        self.term_sent = False
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=self.logf,
                                     cwd=str(self.state_dir), env=env)
        _ACTIVE.append(self)
        try:
            sock = wait_port(self.port, timeout * SLOW, self.proc, "ternd",
                             host=self.host)
        except RuntimeError as e:
            self._kill()
            pytest.fail(f"{e}\n{' '.join(self.argv())}\n--- ternd log ---\n"
                        f"{log_tail(self.log_path)}", pytrace=False)
        # wait for the greeting, then leave cleanly so the probe does not
        # hold a connection slot when the test starts
        c = SMTPClient.__new__(SMTPClient)
        c.sock, c.buf, c.eof, c.timeout = sock, b"", False, timeout * SLOW
        try:
            g = c.reply()
            assert g.code == 220, f"greeting {g.text!r}"
            c.send(b"QUIT\r\n")
            c.reply()
            c.wait_closed()
        finally:
            c.close()
        self.greeting = g
        return self

    @property
    def host(self):
        """The address of the MX listener (listen.smtp), 127.0.0.1 unless a
        test put the instance on another loopback address."""
        a = self.overrides.get("listen.smtp", "")
        h = a.rsplit(":", 1)[0] if ":" in a else ""
        return h if re.fullmatch(r"127(\.\d{1,3}){3}", h) else "127.0.0.1"

    def _kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self in _ACTIVE:
            _ACTIVE.remove(self)

    def stop(self, timeout=15):
        """SIGTERM; returns the exit status (killed: fails)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.terminate()
            try:
                self.proc.wait(timeout * SLOW)
            except subprocess.TimeoutExpired:
                self._kill()
                raise AssertionError(f"ternd did not exit {timeout}s after "
                                     f"SIGTERM\n{log_tail(self.log_path)}")
        if self in _ACTIVE:
            _ACTIVE.remove(self)
        self.logf.close()
        self.stopped_rc = self.proc.returncode
        return self.proc.returncode

    def terminate(self):
        """Send SIGTERM once (a second one would test something else)."""
        if not self.term_sent:
            self.term_sent = True
            self.proc.send_signal(signal.SIGTERM)

    def log(self):
        return Path(self.log_path).read_text(errors="replace")

    def check_clean_exit(self):
        rc = self.stop()
        log = self.log()
        assert rc == 0, f"ternd exit status {rc}\n{log_tail(self.log_path)}"
        if ASAN:
            for marker in SANITIZER_MARKERS:
                assert marker not in log, \
                    f"sanitizer report in ternd log:\n{log_tail(self.log_path, 300)}"

    # -- helpers bound to this instance --
    def tern(self, *args, check=True, input=None, timeout=30):
        """Run build/tern with the same state_dir and domains."""
        require_build()
        argv = [str(TERN), "-o", f"state_dir={self.state_dir}",
                "-o", f"domains={self.overrides['domains']}"]
        if "tables.users" in self.overrides:     # e.g. pgsql:CONNINFO
            argv += ["-o", f"tables.users={self.overrides['tables.users']}"]
        argv += list(args)
        env = dict(os.environ)
        env.pop("TERN_CONFIG", None)
        r = subprocess.run(argv, stdin=subprocess.DEVNULL if input is None else None,
                           input=input, capture_output=True,
                           timeout=timeout * SLOW, cwd=str(self.state_dir),
                           env=env, **_run_as_kw())
        if check:
            assert r.returncode == 0, (f"{' '.join(argv)} -> {r.returncode}\n"
                                       f"stdout: {r.stdout!r}\nstderr: {r.stderr!r}")
        return r

    def client(self, **kw):
        return SMTPClient(self.port, **kw)

    # -- submission, passwords, queue --
    def set_password(self, address, password):
        self.tern("user", "passwd", address, "--password-stdin",
                  input=(password + "\n").encode())

    def sub_client(self, tls=True, **kw):
        """A client on the submission port; tls=True: STARTTLS + EHLO done."""
        c = SMTPClient(self.sub_port, **kw)
        if tls:
            c.ehlo()
            c.starttls()
            c.ehlo()
        return c

    def subs_client(self, **kw):
        """A client on the implicit-TLS submissions port (greeting read)."""
        return SMTPClient(self.subs_port, tls=True, **kw)

    def queue_list(self):
        """`tern queue list --json` parsed: the list of queued messages."""
        import json
        r = self.tern("queue", "list", "--json")
        doc = json.loads(r.stdout.decode())
        if isinstance(doc, dict):
            assert doc.get("ok", True), f"queue list: {doc!r}"
            doc = doc["messages"]
        assert isinstance(doc, list), f"queue list --json: {r.stdout!r}"
        return doc

    def queue_env_files(self):
        """The ids queued on disk: envelope files, or the log's live ids."""
        import qlog
        d = self.state_dir / "queue" / "env"
        ids = [p.name for p in d.iterdir()] if d.is_dir() else []
        return sorted(ids + list(qlog.live(self.state_dir / "queue")))

    def smtplib(self, timeout=10):
        import smtplib
        return smtplib.SMTP("127.0.0.1", self.port, local_hostname="client.test",
                            timeout=timeout * SLOW)

    def messages(self, address):
        return maildir_messages(self.state_dir, address)

    def files(self, address):
        return maildir_files(self.state_dir, address)

    def send_raw(self, mail_from, rcpts, content, helo="client.test"):
        """A plain correct transaction; content must end with CRLF and be
        dot-stuffed already.  Returns the reply to the end of data."""
        with self.client() as c:
            c.ehlo(helo)
            c.expect(f"MAIL FROM:<{mail_from}>", 250)
            for r in rcpts:
                c.expect(f"RCPT TO:<{r}>", 250)
            c.expect("DATA", 354)
            c.send(content + b".\r\n")
            rep = c.reply()
            c.expect("QUIT", 221)
            return rep


class TerndFactory:
    def __init__(self, log_dir):
        self.log_dir = Path(log_dir)            # pytest's tmp dir: logs
        self.root = world_tmpdir("tern-e2e-")   # state dirs
        self.instances = []

    def __call__(self, overrides=None, users=DEFAULT_USERS, state=None,
                 start=True, args=()):
        """state: name of the state dir; the same name is the same dir."""
        name = state or f"state{len(self.instances)}"
        t = Ternd(self.root / name, self.log_dir / f"{name}-ternd.log",
                  overrides, users, args)
        self.instances.append(t)
        if start:
            t.start()
        return t

    def finish(self):
        errors = []
        for t in self.instances:
            if t.proc is None or t.stopped_rc is not None:
                continue
            try:
                t.check_clean_exit()
            except AssertionError as e:
                errors.append(str(e))
        shutil.rmtree(self.root, ignore_errors=True)
        assert not errors, "\n\n".join(errors)


PASSWORD = "Tern-e2e p4ss"       # the password of submit_ternd's users


def submit_ternd(factory, overrides=None, users=DEFAULT_USERS,
                 password=PASSWORD, implicit=False, start=True, state=None):
    """A ternd with the submission port on (t.sub_port), optionally the
    implicit-TLS port (t.subs_port), and every user's password set."""
    sub = free_port()
    subs = free_port() if implicit else None
    o = {"listen.submission": f"127.0.0.1:{sub}"}
    if subs:
        o["listen.submissions"] = f"127.0.0.1:{subs}"
    o.update(overrides or {})
    t = factory(o, users=users, start=False, state=state)
    while t.port in (sub, subs):        # free_port() may hand one out twice
        t.port = free_port()
        t.overrides["listen.smtp"] = f"127.0.0.1:{t.port}"
    t.sub_port, t.subs_port = sub, subs
    for u in users:
        t.set_password(u, password)
    if start:
        t.start()
    return t


@pytest.fixture
def ternd(tmp_path):
    """Factory: ternd(overrides={...}, users=(...)) -> running Ternd.
    Teardown: SIGTERM, exit status 0, no sanitizer report."""
    f = TerndFactory(tmp_path)
    yield f
    f.finish()


@pytest.fixture(scope="module")
def ternd_module(tmp_path_factory):
    """The same factory, for read-only tests that share one instance."""
    f = TerndFactory(tmp_path_factory.mktemp("ternd"))
    yield f
    f.finish()


# ---------------------------------------------------------------------------
# Dovecot
# ---------------------------------------------------------------------------

DOVECOT = "/usr/sbin/dovecot"
IMAP_USER = "ben@example.org"
IMAP_PASSWORD = "password"


def stop_own_server(proc, sig, timeout):
    """sig to a server this suite started; if it hangs, SIGKILL to its own
    process group (it was started in a new session), nothing else."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def dovecot_rootless():
    """(global settings, login service setting) that let a private Dovecot
    run as the current non-root user: one user for everything, no chroot.
    Empty strings as root."""
    if os.geteuid() == 0:
        return "", ""
    me = pwd.getpwuid(os.geteuid()).pw_name
    grp_name = grp.getgrgid(os.getegid()).gr_name
    return (f"default_internal_user = {me}\n"
            f"default_internal_group = {grp_name}\n"
            f"default_login_user = {me}\n"
            "service anvil {\n  chroot =\n}\n"), "  chroot =\n"


class Dovecot:
    """
    A private Dovecot serving one Maildir over IMAP on 127.0.0.1, its mail
    processes running as the owner of the Maildir (Dovecot never runs them
    as uid 0: when the tests run as root, ternd runs as RUN_AS and so owns
    the Maildir).
    """
    name = "dovecot"

    def __init__(self, maildir):
        require(DOVECOT, "dovecot-imapd")
        self.dir = world_tmpdir("tern-dovecot-")
        os.chmod(self.dir, 0o755)       # auth runs as user "dovecot"
        self.maildir = Path(maildir)
        self.port = free_port()
        self.log_path = self.dir / "dovecot.log"
        st = os.stat(self.maildir)
        self.uid, self.gid = st.st_uid, st.st_gid
        assert self.uid != 0, f"{maildir} is owned by root: Dovecot refuses uid 0"
        for sub in ("index", "control", "home"):
            (self.dir / sub).mkdir()
            os.chown(self.dir / sub, self.uid, self.gid)
        (self.dir / "passwd").write_text(
            f"{IMAP_USER}:{{PLAIN}}{IMAP_PASSWORD}\n")
        os.chmod(self.dir / "passwd", 0o644)
        d = self.dir
        rootless, login_chroot = dovecot_rootless()
        (d / "dovecot.conf").write_text(f"""\
{rootless}base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
instance_name = tern-e2e-{self.port}
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:{self.maildir}:INDEX={d}/index:CONTROL={d}/control
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/passwd
}}
userdb {{
  driver = static
  args = uid={self.uid} gid={self.gid} home={d}/home
}}
service imap-login {{
{login_chroot}  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
""")
        self.proc = None

    def start(self, timeout=10):
        self.out = open(self.dir / "dovecot.out", "wb")
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", str(self.dir / "dovecot.conf")],
                                     stdin=subprocess.DEVNULL, stdout=self.out,
                                     stderr=subprocess.STDOUT)
        _ACTIVE.append(self)
        try:
            s = wait_port(self.port, timeout, self.proc, "dovecot")
        except RuntimeError as e:
            self.stop()
            pytest.fail(f"{e}\n{log_tail(self.log_path)}\n"
                        f"{log_tail(self.dir / 'dovecot.out')}", pytrace=False)
        s.settimeout(timeout)
        banner = s.recv(1024)
        s.close()
        assert banner.startswith(b"* OK"), f"IMAP banner {banner!r}"
        return self

    def imap(self):
        import imaplib
        m = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        m.login(IMAP_USER, IMAP_PASSWORD)
        return m

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self in _ACTIVE:
            _ACTIVE.remove(self)
        if getattr(self, "out", None):
            self.out.close()
            self.out = None


@pytest.fixture
def dovecot():
    """Factory: dovecot(maildir) -> running Dovecot."""
    started = []

    def make(maildir):
        d = Dovecot(maildir)
        started.append(d)
        return d.start()
    yield make
    for d in started:
        d.stop()
        shutil.rmtree(d.dir, ignore_errors=True)


# ---------------------------------------------------------------------------
# Dovecot as an LMTP server (the final delivery agent behind delivery.lmtp)
# ---------------------------------------------------------------------------

DOVECOT_LMTP = "/usr/lib/dovecot/lmtp"
LMTP_USERS = ("ben@example.org", "claire@example.org")


class DovecotLmtp:
    """
    A private Dovecot that accepts mail over LMTP for a fixed list of users
    (passwd-file passdb and userdb), stores it in Maildirs under its own
    directory (DIR/mail/DOMAIN/LOCAL) and serves the same mail over IMAP on
    127.0.0.1:imap_port (every user's password is IMAP_PASSWORD).

    LMTP listens on the unix socket lmtp_socket (mode 0666, so a ternd
    running as another uid can connect) when unix=True, and on
    tcp_host:lmtp_port when tcp=True.  Both addresses are fixed by the
    constructor, before start(): a test can hand them to ternd while
    nothing listens yet.  delivery_unix / delivery_tcp are the matching
    values of ternd's delivery.lmtp.

    As a normal user Dovecot runs rootless (everything as that user); as
    root its mail processes run as RUN_AS (ternd's user; never uid 0).
    The master runs in its own session and process group: stop() signals
    that group only.
    """
    name = "dovecot-lmtp"

    def __init__(self, users=LMTP_USERS, unix=True, tcp=True,
                 tcp_host="127.0.0.1", password=IMAP_PASSWORD):
        require(DOVECOT, "dovecot-core")
        require(DOVECOT_LMTP, "dovecot-lmtpd")
        assert unix or tcp, "DovecotLmtp needs a unix socket or a TCP port"
        self.users = tuple(users)
        self.password = password
        self.dir = d = world_tmpdir("tern-lmtp-")
        os.chmod(d, 0o755)      # auth (user dovecot) and ternd traverse it
        self.log_path = d / "dovecot.log"
        self.imap_port = free_port()
        self.lmtp_port = None
        while tcp and self.lmtp_port in (None, self.imap_port):
            self.lmtp_port = free_port()
        self.lmtp_host = tcp_host
        self.lmtp_socket = str(d / "lmtp.sock") if unix else None
        if RUN_AS:
            self.uid, self.gid = RUN_AS[1], RUN_AS[2]
        else:
            self.uid, self.gid = os.geteuid(), os.getegid()
        assert self.uid != 0, "Dovecot refuses to deliver mail as uid 0"
        (d / "mail").mkdir()
        os.chown(d / "mail", self.uid, self.gid)
        for u in self.users:
            local, domain = u.rsplit("@", 1)
            home = d / "home" / domain / local
            home.mkdir(parents=True)
            for p in (d / "home", d / "home" / domain, home):
                os.chown(p, self.uid, self.gid)
        self.quota = {}
        self._write_users()
        rootless, login_chroot = dovecot_rootless()
        unix_listener = (f"  unix_listener {self.lmtp_socket} {{\n"
                         f"    mode = 0666\n  }}\n" if unix else "")
        inet_listener = (f"  inet_listener lmtp {{\n"
                         f"    address = {tcp_host}\n"
                         f"    port = {self.lmtp_port}\n  }}\n" if tcp else "")
        (d / "dovecot.conf").write_text(f"""\
{rootless}base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
instance_name = tern-lmtp-{self.imap_port}
hostname = lmtp.test
protocols = imap lmtp
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:{d}/mail/%d/%n
lmtp_save_to_detail_mailbox = no
mail_plugins = $mail_plugins quota
quota_full_tempfail = yes
plugin {{
  quota = count:User quota
  quota_vsizes = yes
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {d}/users
}}
service imap-login {{
{login_chroot}  inet_listener imap {{
    address = 127.0.0.1
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service lmtp {{
{unix_listener}{inet_listener}}}
""")
        self.proc = None
        self.out = None

    def _write_users(self):
        """The passwd-file (passdb and userdb); Dovecot re-reads it when it
        changes (looking at most once a second), so set_quota() works on a
        running instance."""
        lines = []
        for u in self.users:
            local, domain = u.rsplit("@", 1)
            home = self.dir / "home" / domain / local
            extra = (f"userdb_quota_rule=*:storage={self.quota[u]}"
                     if u in self.quota else "")
            lines.append(f"{u}:{{PLAIN}}{self.password}:{self.uid}:{self.gid}"
                         f"::{home}::{extra}\n")
        path, tmp = self.dir / "users", self.dir / "users.tmp"
        tmp.write_text("".join(lines))
        os.chmod(tmp, 0o644)
        if path.exists():
            # Dovecot notices the change by mtime (seconds): make it differ
            t = max(time.time(), os.stat(path).st_mtime + 1)
            os.utime(tmp, (t, t))
        os.replace(tmp, path)

    def set_quota(self, user, storage):
        """Limit user's mailbox (Dovecot quota_rule storage, e.g. "1B");
        None: unlimited.  A delivery over the limit gets 452 4.2.2 after
        DATA for that recipient (quota_full_tempfail = yes)."""
        assert user in self.users, user
        if storage is None:
            self.quota.pop(user, None)
        else:
            self.quota[user] = storage
        self._write_users()
        if self.proc is not None and self.proc.poll() is None:
            time.sleep(1.1)     # Dovecot's auth stats the file once a second

    # -- addresses --
    @property
    def delivery_unix(self):
        """ternd's delivery.lmtp value for the unix socket."""
        assert self.lmtp_socket, "this Dovecot has no LMTP unix socket"
        return f"unix:{self.lmtp_socket}"

    @property
    def delivery_tcp(self):
        """ternd's delivery.lmtp value for the TCP listener."""
        assert self.lmtp_port, "this Dovecot has no LMTP TCP port"
        h = self.lmtp_host
        return f"[{h}]:{self.lmtp_port}" if ":" in h else f"{h}:{self.lmtp_port}"

    def maildir(self, address):
        local, domain = address.rsplit("@", 1)
        return self.dir / "mail" / domain / local

    # -- process --
    def start(self, timeout=10):
        assert self.proc is None or self.proc.poll() is not None, "running"
        self.out = open(self.dir / "dovecot.out", "ab")
        self.proc = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.dir / "dovecot.conf")],
            stdin=subprocess.DEVNULL, stdout=self.out,
            stderr=subprocess.STDOUT, start_new_session=True)
        _ACTIVE.append(self)
        try:
            self._wait_ready(timeout * SLOW)
        except (RuntimeError, AssertionError, OSError) as e:
            self.stop()
            pytest.fail(f"{e}\n{log_tail(self.log_path)}\n"
                        f"{log_tail(self.dir / 'dovecot.out')}", pytrace=False)
        return self

    def _banner(self, sock, what, prefix, timeout):
        with sock:
            sock.settimeout(timeout)
            banner = sock.recv(1024)
        if not banner.startswith(prefix):
            raise AssertionError(f"{what} banner {banner!r}")

    def _wait_ready(self, timeout):
        s = wait_port(self.imap_port, timeout, self.proc, "dovecot (imap)")
        self._banner(s, "IMAP", b"* OK", timeout)
        if self.lmtp_port:
            s = wait_port(self.lmtp_port, timeout, self.proc, "dovecot (lmtp)",
                          host=self.lmtp_host)
            self._banner(s, "LMTP", b"220 ", timeout)
        if self.lmtp_socket:
            deadline = time.monotonic() + timeout
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"dovecot exited with status "
                                       f"{self.proc.returncode}")
                try:
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.settimeout(timeout)
                    s.connect(self.lmtp_socket)
                    break
                except OSError:
                    s.close()
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"dovecot: no LMTP socket "
                                           f"{self.lmtp_socket} after {timeout}s")
                    time.sleep(0.05)
            self._banner(s, "LMTP", b"220 ", timeout)
            mode = os.stat(self.lmtp_socket).st_mode & 0o777
            assert mode == 0o666, f"{self.lmtp_socket} has mode {mode:o}"

    def stop(self):
        """SIGTERM to the master (it stops its children); if it hangs,
        SIGKILL to its own process group, nothing else."""
        stop_own_server(self.proc, signal.SIGTERM, 15)
        if self in _ACTIVE:
            _ACTIVE.remove(self)
        if self.out:
            self.out.close()
            self.out = None

    def log(self):
        return Path(self.log_path).read_text(errors="replace") \
            if Path(self.log_path).exists() else ""

    # -- clients --
    def lmtp(self, tcp=False, timeout=10):
        """smtplib.LMTP connected (unix socket unless tcp=True or there is
        none); the caller sends LHLO (lmtp.ehlo() or sendmail does)."""
        import smtplib
        if self.lmtp_socket and not tcp:
            return smtplib.LMTP(self.lmtp_socket, local_hostname="client.test",
                                timeout=timeout * SLOW)
        return smtplib.LMTP(self.lmtp_host, self.lmtp_port,
                            local_hostname="client.test", timeout=timeout * SLOW)

    def imap(self, user):
        import imaplib
        m = imaplib.IMAP4("127.0.0.1", self.imap_port, timeout=10 * SLOW)
        m.login(user, self.password)
        return m

    def messages(self, user, mailbox="INBOX"):
        """Every message of user's mailbox over IMAP, raw bytes, in order."""
        m = self.imap(user)
        try:
            typ, data = m.select(mailbox, readonly=True)
            assert typ == "OK", (user, mailbox, data)
            typ, data = m.search(None, "ALL")
            assert typ == "OK", data
            out = []
            for i in data[0].split():
                typ, data = m.fetch(i, "(BODY.PEEK[])")
                assert typ == "OK", data
                out.append(data[0][1])
            return out
        finally:
            m.logout()

    def wait_messages(self, user, n=1, timeout=15):
        """Poll IMAP until user has at least n messages; return them all."""
        return wait_for(lambda: (lambda ms: ms if len(ms) >= n else None)(
            self.messages(user)),
            f"{n} message(s) for {user} in Dovecot (IMAP)", timeout)


@pytest.fixture
def dovecot_lmtp():
    """Factory: dovecot_lmtp(users=LMTP_USERS, unix=True, tcp=True,
    tcp_host="127.0.0.1", start=True) -> DovecotLmtp (started unless
    start=False); stopped and removed at teardown."""
    made = []

    def make(users=LMTP_USERS, unix=True, tcp=True, tcp_host="127.0.0.1",
             start=True):
        d = DovecotLmtp(users, unix, tcp, tcp_host)
        made.append(d)
        return d.start() if start else d
    yield make
    for d in made:
        d.stop()
        shutil.rmtree(d.dir, ignore_errors=True)


@pytest.fixture
def world_tmp():
    """A temporary directory under /tmp that other uids can traverse."""
    d = world_tmpdir("tern-e2e-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------------------
# PostgreSQL: the shared users/aliases/domains tables (tables.users=pgsql:)
# ---------------------------------------------------------------------------

PG_BIN = Path("/usr/lib/postgresql/15/bin")


class Postgres:
    """
    A private PostgreSQL cluster: its own data directory (initdb, trust
    authentication, role "tern"), listening on 127.0.0.1:port and on a unix
    socket in its own directory, with database "tern".  stop() and start()
    restart it on the same data directory and port.  PostgreSQL refuses to
    run as root: as root it runs as RUN_AS.
    """
    name = "postgres"

    def __init__(self):
        for tool in ("initdb", "postgres", "psql", "pg_isready"):
            require(PG_BIN / tool, "postgresql")
        self.dir = world_tmpdir("tern-pg-")
        self.data = self.dir / "data"
        self.sock = self.dir / "sock"
        self.sock.mkdir()
        self.log_path = self.dir / "postgres.log"
        if RUN_AS:
            for p in (self.dir, self.sock):
                os.chown(p, RUN_AS[1], RUN_AS[2])
        self.port = free_port()
        self.conninfo = f"host=127.0.0.1 port={self.port} dbname=tern user=tern"
        self.proc = None
        self.logf = None
        self._run([PG_BIN / "initdb", "-D", self.data, "-U", "tern",
                   "-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C"])

    def _run(self, argv, input=None, check=True, timeout=60):
        r = subprocess.run([str(a) for a in argv], input=input,
                           capture_output=True, timeout=timeout * SLOW,
                           cwd=str(self.dir), **_run_as_kw())
        if check and r.returncode != 0:
            raise AssertionError(f"{' '.join(map(str, argv))} -> {r.returncode}"
                                 f"\nstdout: {r.stdout!r}\nstderr: {r.stderr!r}")
        return r

    @property
    def users_spec(self):
        """The value of ternd's tables.users for this server."""
        return f"pgsql:{self.conninfo}"

    def start(self, timeout=30):
        assert self.proc is None or self.proc.poll() is not None, "running"
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(PG_BIN / "postgres"), "-D", str(self.data), "-k", str(self.sock),
             "-h", "127.0.0.1", "-p", str(self.port), "-F",
             "-c", "fsync=off", "-c", "logging_collector=off"],
            stdin=subprocess.DEVNULL, stdout=self.logf, stderr=self.logf,
            start_new_session=True, **_run_as_kw())
        _ACTIVE.append(self)
        deadline = time.monotonic() + timeout * SLOW
        while self._run([PG_BIN / "pg_isready", "-q", "-h", "127.0.0.1",
                         "-p", self.port, "-d", "postgres", "-U", "tern"],
                        check=False).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"postgres did not start on port {self.port}\n"
                            f"{log_tail(self.log_path)}", pytrace=False)
            time.sleep(0.1)
        return self

    def psql(self, sql, db="tern"):
        """Run sql (stops at the first error); the unaligned, tuples-only
        output, stripped."""
        r = self._run([PG_BIN / "psql", "-X", "-q", "-A", "-t",
                       "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                       "-p", self.port, "-U", "tern", "-d", db, "-c", sql])
        return r.stdout.decode().strip()

    def psql_background(self, sql, db="tern"):
        """Start psql running sql and return its Popen (e.g. a transaction
        that holds a lock for a while); the caller waits for it."""
        return subprocess.Popen(
            [str(PG_BIN / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-h", "127.0.0.1", "-p", str(self.port), "-U", "tern", "-d", db,
             "-c", sql], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            cwd=str(self.dir), **_run_as_kw())

    def stop(self, timeout=30):
        """Fast shutdown (SIGINT: clients are disconnected) of our own
        postmaster; SIGKILL to its own process group if it hangs."""
        stop_own_server(self.proc, signal.SIGINT, timeout * SLOW)
        if self in _ACTIVE:
            _ACTIVE.remove(self)
        if self.logf:
            self.logf.close()
            self.logf = None


@pytest.fixture
def postgres():
    """A running private PostgreSQL with an empty database "tern":
    .conninfo ("host=127.0.0.1 port=P dbname=tern user=tern"),
    .users_spec ("pgsql:" + conninfo), .psql(sql), .stop(), .start().
    Stopped (only this server) and removed at teardown."""
    pg = Postgres()
    try:
        pg.start()
        pg.psql("CREATE DATABASE tern", db="postgres")
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(pg.dir, ignore_errors=True)


# ---------------------------------------------------------------------------
# dnsmasq: MX and A records on loopback
# ---------------------------------------------------------------------------

DNSMASQ = "/usr/sbin/dnsmasq"


class Dnsmasq:
    name = "dnsmasq"

    def __init__(self, log_dir, mx=(), hosts=(), extra=()):
        """mx: (domain, host, preference) triples; hosts: (name, ip) pairs;
        extra: more dnsmasq options, e.g. "--server=/dead.test/127.0.0.1#1"."""
        require(DNSMASQ, "dnsmasq-base")
        self.port = free_port()
        self.log_path = Path(log_dir) / f"dnsmasq-{self.port}.log"
        self.argv = [DNSMASQ, "--no-daemon", "--no-resolv", "--no-hosts",
                     "--bind-interfaces", "--listen-address=127.0.0.1",
                     f"--port={self.port}", "--conf-file=/dev/null",
                     "--log-queries"]
        for domain, host, pref in mx:
            self.argv.append(f"--mx-host={domain},{host},{pref}")
        for name, ip in hosts:
            self.argv.append(f"--host-record={name},{ip}")
        self.argv += list(extra)
        self.proc = None

    @property
    def server(self):
        return f"127.0.0.1:{self.port}"

    def start(self, timeout=10):
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=self.logf)
        _ACTIVE.append(self)
        deadline = time.monotonic() + timeout
        while b"started" not in self.log_path.read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"dnsmasq did not start: {' '.join(self.argv)}\n"
                            f"{log_tail(self.log_path)}", pytrace=False)
            time.sleep(0.05)
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self in _ACTIVE:
            _ACTIVE.remove(self)
        if getattr(self, "logf", None):
            self.logf.close()
            self.logf = None


@pytest.fixture
def dnsmasq(tmp_path):
    """Factory: dnsmasq(mx=[(domain, host, pref)], hosts=[(name, ip)],
    extra=[option...]) -> running Dnsmasq (.server is ip:port for
    dns.servers); stopped by PID."""
    started = []

    def make(mx=(), hosts=(), extra=()):
        d = Dnsmasq(tmp_path, mx, hosts, extra)
        started.append(d)
        return d.start()
    yield make
    for d in started:
        d.stop()


# ---------------------------------------------------------------------------
# two MTAs: A (example.org, Claire submits) -> DNS MX -> B (example.net)
# ---------------------------------------------------------------------------

CLAIRE = "claire@example.org"
BEN = "ben@example.net"


def two_mtas(ternd, dnsmasq, a_over=None, b_start=True):
    """Two MTAs on loopback.  B: mx.example.net, domain example.net, user
    ben; A: mx.example.org, domain example.org, user claire with a password,
    submission on, delivering by the MX that dnsmasq serves to B's port.
    b_start=False: B is made but not started (its port is known)."""
    b = ternd({"hostname": "mx.example.net", "domains": "example.net"},
              users=(BEN,), state="B", start=b_start)
    dns = dnsmasq(mx=[("example.net", "mx.example.net", 10)],
                  hosts=[("mx.example.net", "127.0.0.1")])
    over = {"hostname": "mx.example.org", "domains": "example.org",
            "dns.servers": dns.server, "relay.port": str(b.port),
            "queue.retry_first": "1", "queue.retry_max": "2"}
    over.update(a_over or {})
    a = submit_ternd(ternd, over, users=(CLAIRE,), state="A")
    return a, b, dns


def wait_for(pred, what, timeout=15):
    """Poll pred() until it is true (returned); fail after timeout s."""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout * SLOW}s waiting for {what}")
        time.sleep(0.1)


def readable_conf(text, prefix="tern-conf-"):
    """A tern.conf holding text for a ternd started with -c (the keys a
    test reloads), in a directory ternd's user can read; its path."""
    path = world_tmpdir(prefix) / "tern.conf"
    path.write_text(text)
    os.chmod(path, 0o644)
    return path


def sighup_reload(t):
    """SIGHUP to a running Ternd; wait for the reload's result line (its
    start may not be logged: log.level above info) and return it."""
    done = t.log().count("event=reload result=")
    t.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: t.log().count("event=reload result=") > done,
             "the reload's result in the log")
    return [ln for ln in t.log().splitlines()
            if "event=reload result=" in ln][-1]


def header_block(data):
    return data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")


def received_headers(data):
    """The Received fields of data's header, unfolded, top first."""
    out = []
    for field in re.split(r"\r\n(?![ \t])", header_block(data)):
        if field.lower().startswith("received:"):
            out.append(re.sub(r"\s+", " ", field))
    return out


# ---------------------------------------------------------------------------
# DSNs (RFC 3464)
# ---------------------------------------------------------------------------

def dsn_of(raw):
    """(message, per-message fields, [per-recipient fields], returned)."""
    assert raw.startswith(b"Return-Path: <>\r\n"), \
        f"a DSN has the null sender: {raw[:300]!r}"
    m = email.message_from_bytes(raw, policy=email.policy.compat32)
    assert m.get_content_type() == "multipart/report", \
        f"DSN content type {m.get_content_type()}:\n{raw[:1500]!r}"
    # RFC 6533: the report of an SMTPUTF8 message has the global types
    utf8 = m.get_param("report-type") == "global-delivery-status"
    assert utf8 or m.get_param("report-type") == "delivery-status", \
        m["Content-Type"]
    parts = m.get_payload()
    assert isinstance(parts, list) and len(parts) >= 2, parts
    # RFC 3464 2.1: the first part is the report for humans
    assert parts[0].get_content_type() == "text/plain", parts[0]["Content-Type"]
    [ds] = [p for p in parts if p.get_content_type() ==
            ("message/global-delivery-status" if utf8 else
             "message/delivery-status")]
    if utf8:
        # Python's email knows only message/delivery-status's blocks: the
        # global one is split here, a block per blank line
        body = ds.as_bytes().replace(b"\r\n", b"\n").split(b"\n\n", 1)[1]
        blocks = [email.message_from_bytes(b + b"\n", policy=email.policy.compat32)
                  for b in re.split(rb"\n\n+", body.strip(b"\n"))]
    else:
        blocks = ds.get_payload()
    assert len(blocks) >= 2, blocks
    returned = [p for p in parts if p.get_content_type() in
                ("message/rfc822", "text/rfc822-headers", "message/global",
                 "message/global-headers")]
    return m, blocks[0], blocks[1:], returned


def field(block, name):
    v = block.get(name)
    assert v is not None, f"no {name} in {block.items()}"
    return re.sub(r"\s+", " ", str(v)).strip()


CLONE_NEWNET = 0x40000000


NETNS_ADDRS = tuple(f"fd00::{i}" for i in range(1, 10)) + (
    "fd00:0:0:1::1", "fd00:0:0:1::2")


def run_in_netns(fn):
    """Run fn() on a thread that has joined a fresh network namespace
    (loopback up, NETNS_ADDRS on lo: two /64s of IPv6 clients); processes
    it starts are in the namespace too.  The namespace lives as long as a
    holder process; nothing touches the host's network.  Root only."""
    holder = subprocess.Popen(["unshare", "-n", "sleep", "600"])
    try:
        mine = os.readlink("/proc/self/ns/net")
        wait_for(lambda: os.readlink(f"/proc/{holder.pid}/ns/net") != mine,
                 "the holder's namespace", timeout=5)
        out = {}

        def body():
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/proc/{holder.pid}/ns/net", os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    out["error"] = OSError(ctypes.get_errno(), "setns")
                    return
            finally:
                os.close(fd)
            try:
                subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
                for a in NETNS_ADDRS:
                    subprocess.run(["ip", "-6", "addr", "add", f"{a}/64", "dev",
                                    "lo", "nodad"], check=True)
                out["value"] = fn()
            except BaseException as e:          # noqa: B902 (re-raised below)
                out["error"] = e

        th = threading.Thread(target=body)
        th.start()
        th.join()
        if "error" in out:
            raise out["error"]
        return out.get("value")
    finally:
        holder.kill()
        holder.wait()
