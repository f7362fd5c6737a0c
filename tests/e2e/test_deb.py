"""The Debian packages on this machine (issue 18 items 1 and 2; as root):
make deb builds tern and tern-sendmail once (outside the source tree);
lintian has no error on either; tern installs beside the Postfix the other
tests use, its ternd (started as the unit would, but on loopback test
ports) takes mail, survives an upgrade to a higher version with a message
queued for an unreachable destination, keeps the admin's conffile edits
(the new default arrives as .dpkg-dist), keeps the state on remove and
loses state and user on purge.  tern-sendmail would replace Postfix
(apt-get -s only).  The dpkg transcript and lintian's output are printed
into the test log.  Everything installed is purged in a finally: the
machine is left as it was found.

Preconditions, checked first (the test fails rather than touch them): no
package tern or tern-sendmail, no user or group tern, no /etc/tern and no
/var/lib/tern.  While this test runs, /etc/tern/tern.conf exists: a ternd
or tern started elsewhere on this machine without -c reads it.
"""

import atexit
import glob
import grp
import json
import os
import pwd
import re
import shutil
import signal
import smtplib
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import REPO, free_port, wait_port

pytestmark = [pytest.mark.root, pytest.mark.own_build]

CONF = Path("/etc/tern/tern.conf")
STATE = Path("/var/lib/tern")
TERND = "/usr/sbin/ternd"
# the admin's edit of the conffile (the upgrade must keep it)
ADMIN_EDIT = "domains = example.org ; edited by the administrator (test_deb)"
NEW_DEFAULT_MARK = "; a line the upgrade's default adds (test_deb)\n"

_DEBS = {}


def transcript_add(log, what, r):
    log.append(f"$ {what}\n{r.stdout}{r.stderr}(exit {r.returncode})\n")


def run(log, *argv, check=True, env=None, timeout=120):
    e = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    e.update(env or {})
    r = subprocess.run(list(argv), capture_output=True, text=True, env=e,
                       timeout=timeout)
    transcript_add(log, " ".join(argv), r)
    if check:
        assert r.returncode == 0, "".join(log[-1:])
    return r


def debs():
    """Build the packages once per run (TERN_DEB_DIR: reuse those there)."""
    if _DEBS:
        return _DEBS
    d = os.environ.get("TERN_DEB_DIR")
    if not d or not glob.glob(os.path.join(d, "tern_*.deb")):
        if not d:
            d = tempfile.mkdtemp(prefix="tern-deb-")
            atexit.register(shutil.rmtree, d, True)
        t0 = time.monotonic()
        # no dbgsym package: the test does not need one and it costs time
        env = dict(os.environ, DEB_BUILD_OPTIONS="noautodbgsym parallel=2",
                   MAKEFLAGS="")
        r = subprocess.run(["nice", "-n", "10", "make", "-s",
                            "--no-print-directory", "deb", f"DEB_DIR={d}"],
                           cwd=REPO, capture_output=True, text=True, env=env,
                           timeout=900)
        assert r.returncode == 0, (r.stdout[-4000:], r.stderr[-4000:])
        _DEBS["build_seconds"] = round(time.monotonic() - t0, 1)
    _DEBS["dir"] = Path(d)
    _DEBS["tern"] = sorted(glob.glob(os.path.join(d, "tern_*.deb")))[-1]
    _DEBS["sendmail"] = sorted(glob.glob(os.path.join(d, "tern-sendmail_*.deb")))[-1]
    return _DEBS


def installed(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg],
                       capture_output=True, text=True)
    return r.returncode == 0 and "not-installed" not in r.stdout \
        and r.stdout.strip() != ""


def user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def group_exists(name):
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def require_clean_machine():
    found = [p for p in ("tern", "tern-sendmail") if installed(p)]
    found += [f"user tern"] if user_exists("tern") else []
    found += [f"group tern"] if group_exists("tern") else []
    found += [str(p) for p in (Path("/etc/tern"), STATE)
              if p.exists() or p.is_symlink()]
    if found:
        pytest.fail("test_deb installs and purges the package tern, but this "
                    f"machine already has: {', '.join(found)}; remove them "
                    "(dpkg --purge tern-sendmail tern) or run elsewhere",
                    pytrace=False)


def purge_all(log):
    for p in ("tern-sendmail", "tern"):
        if installed(p):
            run(log, "dpkg", "--purge", p, check=False)


def show(capsys, title, text):
    with capsys.disabled():
        print(f"\n===== {title} =====\n{text}", flush=True)


def repack(src_deb, dst_dir, version):
    """The upgrade: the same package with a higher version and a changed
    default conffile, as a new release would ship."""
    root = Path(dst_dir) / "root"
    subprocess.run(["dpkg-deb", "-R", src_deb, str(root)], check=True)
    ctl = root / "DEBIAN" / "control"
    ctl.write_text(re.sub(r"(?m)^Version: .*$", f"Version: {version}",
                          ctl.read_text()))
    conf = root / "etc" / "tern" / "tern.conf"
    conf.write_text(conf.read_text() + NEW_DEFAULT_MARK)
    out = Path(dst_dir) / f"tern_{version}_amd64.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(root),
                    str(out)], check=True, capture_output=True)
    return str(out)


class Daemon:
    """The installed ternd, started as tern.service would start it (as the
    user tern, -c /etc/tern/tern.conf) but on loopback test ports, with a
    smarthost that refuses connections (so remote mail stays queued) and
    nothing that looks past this machine (SPF, DKIM, DMARC off)."""

    def __init__(self, logdir):
        self.port = free_port()
        self.dead_port = free_port()
        self.logpath = Path(logdir) / "ternd.log"
        self.proc = None
        self.starts = 0

    def argv(self):
        return [TERND, "-c", str(CONF),
                "-o", f"listen.smtp=127.0.0.1:{self.port}",
                "-o", "listen.submission=off", "-o", "listen.submissions=off",
                "-o", "relay.networks=127.0.0.1/32",
                "-o", f"relay.smarthost=127.0.0.1:{self.dead_port}",
                "-o", "spf.check=no", "-o", "dkim.verify=no",
                "-o", "dmarc.check=no", "-o", "hostname=mx.test",
                "-o", "timeout.shutdown=20"]

    def start(self):
        env = dict(os.environ)
        env.pop("TERN_CONFIG", None)
        self.logf = open(self.logpath, "ab")
        pw = pwd.getpwnam("tern")
        # as the unit's User=tern, Group=tern: the pid is ternd's own
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=self.logf,
                                     cwd="/", env=env, user=pw.pw_uid,
                                     group=pw.pw_gid, extra_groups=[])
        try:
            wait_port(self.port, 15, self.proc, "installed ternd").close()
        except RuntimeError as e:
            self.kill()
            pytest.fail(f"{e}\n{self.log()}", pytrace=False)
        # the port listens from the start; the control socket (tern queue)
        # only once event=ready is logged
        n = self.starts
        self.starts += 1
        wait_for(lambda: self.log().count("event=ready version=") > n, 15,
                 f"event=ready (with its version) in {self.logpath}")

    def log(self):
        return self.logpath.read_text(errors="replace") \
            if self.logpath.exists() else ""

    def stop(self):
        """SIGTERM, as systemctl stop/restart sends; exit 0 expected."""
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=45)
        self.proc = None
        self.logf.close()
        return rc

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None


def tern(log, *args, stdin=None, check=True):
    r = subprocess.run(["/usr/bin/tern", "-c", str(CONF), *args],
                       input=stdin, capture_output=True, text=True,
                       timeout=60)
    transcript_add(log, "tern " + " ".join(args), r)
    if check:
        assert r.returncode == 0, log[-1]
    return r


def queued(log):
    doc = json.loads(tern(log, "queue", "list", "--json").stdout)
    if isinstance(doc, dict):
        doc = doc["messages"]
    return doc


def maildir_new(address):
    local, domain = address.split("@")
    return sorted((STATE / "mail" / domain / local / "new").glob("*"))


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_deb_lintian(capsys):
    """lintian on both packages: no error; the warnings left are the ones
    debian/*.lintian-overrides explains."""
    d = debs()
    r = subprocess.run(["lintian", "--pedantic", "--info", "--show-overrides",
                        d["tern"], d["sendmail"]],
                       capture_output=True, text=True, timeout=300)
    show(capsys, f"lintian {os.path.basename(d['tern'])} "
         f"{os.path.basename(d['sendmail'])} (build "
         f"{d.get('build_seconds', 'reused')} s)", r.stdout + r.stderr)
    tags = [l for l in r.stdout.splitlines() if re.match(r"^[EWX]: ", l)]
    assert not [t for t in tags if t.startswith("E: ")], r.stdout
    # warnings are fixed or overridden (an override shows as "O:")
    assert not tags, r.stdout


def test_deb_sendmail_would_replace_postfix(capsys):
    """tern alone installs beside Postfix (the next test); tern-sendmail
    Provides/Conflicts/Replaces mail-transport-agent, so apt would remove
    Postfix for it.  Only simulated (-s): the other tests need Postfix."""
    d = debs()
    assert installed("postfix"), "the suite's Postfix is missing"
    r = subprocess.run(["apt-get", "-s", "-o", "Debug::NoLocking=1",
                        "install", d["tern"], d["sendmail"]],
                       capture_output=True, text=True, timeout=120)
    show(capsys, "apt-get -s install ./tern ./tern-sendmail", r.stdout + r.stderr)
    assert r.returncode == 0, r.stderr
    assert re.search(r"(?m)^Remv postfix ", r.stdout), r.stdout
    assert re.search(r"(?m)^Inst tern-sendmail ", r.stdout), r.stdout
    # tern alone removes nothing
    r = subprocess.run(["apt-get", "-s", "-o", "Debug::NoLocking=1",
                        "install", d["tern"]],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert not re.search(r"(?m)^Remv ", r.stdout), r.stdout
    assert installed("postfix")


def test_deb_sendmail_package_runs(tmp_path):
    """tern-sendmail's sendmail, mailq and newaliases, unpacked with tern's
    files into a directory (installing it would remove the suite's
    Postfix): the links reach tern, which takes the sendmail and mailq
    personas by name; newaliases says it does nothing and succeeds."""
    d = debs()
    root = tmp_path / "root"
    for deb in (d["tern"], d["sendmail"]):
        subprocess.run(["dpkg-deb", "-x", deb, str(root)], check=True)
    for link in ("usr/sbin/sendmail", "usr/lib/sendmail", "usr/bin/mailq"):
        assert (root / link).resolve() == (root / "usr/bin/tern").resolve(), link
    # a state_dir where no ternd runs: sendmail must fail with EX_TEMPFAIL
    # and keep nothing, mailq must say it cannot reach ternd
    state = tmp_path / "state"
    state.mkdir()
    env = dict(os.environ, TERN_CONFIG=str(tmp_path / "t.conf"))
    (tmp_path / "t.conf").write_text(f"state_dir = {state}\n")
    r = subprocess.run([str(root / "usr/sbin/sendmail"), "-oi",
                        "ben@localhost"], input=b"Subject: x\n\nbody\n",
                       capture_output=True, env=env, timeout=30)
    assert r.returncode == 75, (r.returncode, r.stdout, r.stderr)
    r = subprocess.run([str(root / "usr/bin/mailq")], capture_output=True,
                       env=env, timeout=30)
    assert r.returncode != 0 and b"ternd" in r.stderr, r
    r = subprocess.run([str(root / "usr/bin/newaliases")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "nothing to do" in r.stderr, r
    assert "tern alias" in r.stderr


def test_deb_restart_after_upgrade():
    """An upgrade with ternd running under systemd: no stop before the new
    files are unpacked (prerm stops only on remove), a restart after
    (postinst of an upgrade: $2 is the old version), both only where
    systemd runs.  The scripts are debhelper's: this checks that
    dh_installsystemd made them so for tern.service."""
    d = debs()
    ctl = Path(tempfile.mkdtemp(prefix="tern-deb-ctl-"))
    try:
        subprocess.run(["dpkg-deb", "-e", d["tern"], str(ctl)], check=True)
        prerm = (ctl / "prerm").read_text()
        postinst = (ctl / "postinst").read_text()
        stops = [l for l in prerm.splitlines() if "stop 'tern.service'" in l]
        assert stops, prerm
        assert '"$1" = remove' in prerm and "upgrade" not in prerm, prerm
        assert re.search(r'if \[ -n "\$2" \]; then\s+_dh_action=restart',
                         postinst), postinst
        assert "deb-systemd-invoke $_dh_action 'tern.service'" in postinst
        assert "if [ -d /run/systemd/system ]; then" in postinst
        # ours comes first: the user and /var/lib/tern exist before the
        # unit (User=tern) is started
        assert postinst.index("\tstate_dir\n") < \
            postinst.index("deb-systemd-invoke $_dh_action")
        assert (ctl / "conffiles").read_text().split() == [str(CONF)]
    finally:
        shutil.rmtree(ctl, ignore_errors=True)


def no_service_start():
    """Where systemd runs, the postinst would start tern.service on port
    25 of loopback: a policy-rc.d that says no (deb-systemd-invoke asks
    it), unless one is there already.  Returns its remover."""
    policy = Path("/usr/sbin/policy-rc.d")
    if not Path("/run/systemd/system").is_dir() or policy.exists():
        return lambda: None
    policy.write_text("#!/bin/sh\n# test_deb: no service starts\nexit 101\n")
    policy.chmod(0o755)
    return lambda: policy.unlink(missing_ok=True)


def test_deb_install_upgrade_remove_purge(capsys, tmp_path):
    d = debs()
    require_clean_machine()
    os.chmod(tmp_path, 0o755)
    log = []
    daemon = Daemon(tmp_path)
    allow_starts = no_service_start()
    try:
        # -- install beside Postfix --
        run(log, "dpkg", "-i", d["tern"])
        assert installed("postfix")
        pw = pwd.getpwnam("tern")
        st = STATE.stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == \
            (pw.pw_uid, pw.pw_gid, 0o700)
        assert pw.pw_dir == str(STATE)
        # the unit is enabled though systemd is not running
        assert Path("/etc/systemd/system/multi-user.target.wants/"
                    "tern.service").is_symlink()
        unit = Path("/lib/systemd/system/tern.service").read_text()
        assert "ExecStart=/usr/sbin/ternd -c /etc/tern/tern.conf" in unit
        # the packaged default: loopback only
        listen = [l.split("=", 1)[1].split(";")[0].strip()
                  for l in CONF.read_text().splitlines()
                  if re.match(r"^(smtp|submission|submissions)\s*=", l)]
        assert listen == ["127.0.0.1:25", "off", "off"], listen
        r = run(log, "/usr/sbin/ternd", "--version")
        assert r.stdout.startswith("ternd " + (REPO / "VERSION").read_text().strip())

        # -- the admin edits the conffile, adds a user, starts ternd --
        text = CONF.read_text()
        assert ";domains = " in text
        CONF.write_text(re.sub(r"(?m)^;domains = .*$", ADMIN_EDIT, text, 1))
        tern(log, "user", "add", "ben@example.org", "--password-stdin",
             stdin="secret-ben\n")
        daemon.start()
        with smtplib.SMTP("127.0.0.1", daemon.port, timeout=15) as c:
            c.sendmail("alice@client.test", ["ben@example.org"],
                       "Subject: before the upgrade\r\n\r\nlocal\r\n")
            c.sendmail("alice@client.test", ["far@unreachable.test"],
                       "Subject: stays queued\r\n\r\nremote\r\n")
        wait_for(lambda: maildir_new("ben@example.org"), 15, "local delivery")
        wait_for(lambda: "far@unreachable.test" in json.dumps(queued(log)),
                 15, "the remote message in the queue")
        before = queued(log)
        assert len(before) == 1, before

        # -- upgrade while ternd runs and a session is in DATA --
        newer = repack(d["tern"], tmp_path, "99.0.0-1")
        busy = smtplib.SMTP("127.0.0.1", daemon.port, timeout=30)
        busy.ehlo("client.test")
        busy.mail("alice@client.test")
        busy.rcpt("ben@example.org")
        busy.putcmd("data")
        assert busy.getreply()[0] == 354
        busy.send(b"Subject: during the upgrade\r\n\r\nfirst half\r\n")
        run(log, "dpkg", "-i", "--force-confold", newer)
        assert "99.0.0-1" in run(log, "dpkg-query", "-W", "tern").stdout
        # what the unit's restart does: SIGTERM, then the new binary
        daemon.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: "event=shutdown" in daemon.log(), 10, "shutdown")
        busy.send(b"second half\r\n.\r\n")
        code, msg = busy.getreply()
        assert code == 250, (code, msg)   # the session in flight finished
        busy.close()
        assert daemon.proc.wait(timeout=45) == 0
        daemon.proc = None
        daemon.logf.close()
        # the conffile: the admin's copy kept, the new default beside it
        assert ADMIN_EDIT in CONF.read_text()
        dist = Path(str(CONF) + ".dpkg-dist")
        assert dist.exists() and NEW_DEFAULT_MARK in dist.read_text()
        assert ADMIN_EDIT not in dist.read_text()
        daemon.start()
        # the queued message and the users database survived
        after = queued(log)
        assert [m.get("id") for m in after] == [m.get("id") for m in before], \
            (before, after)
        assert "ben@example.org" in tern(log, "user", "list").stdout
        wait_for(lambda: len(maildir_new("ben@example.org")) == 2, 15,
                 "the message of the session in flight")
        with smtplib.SMTP("127.0.0.1", daemon.port, timeout=15) as c:
            c.sendmail("alice@client.test", ["ben@example.org"],
                       "Subject: after the upgrade\r\n\r\nlocal\r\n")
        wait_for(lambda: len(maildir_new("ben@example.org")) == 3, 15,
                 "delivery after the upgrade")
        assert daemon.stop() == 0

        # -- downgrade: the maintainer scripts touch none of the state (a
        # ternd that finds a newer on-disk format refuses to start; this
        # one is the same build, so it runs) --
        r = run(log, "dpkg", "-i", "--force-confold", d["tern"])
        assert "downgrading" in (r.stdout + r.stderr).lower()
        assert len(maildir_new("ben@example.org")) == 3
        assert ADMIN_EDIT in CONF.read_text()
        assert STATE.stat().st_uid == pwd.getpwnam("tern").pw_uid
        daemon.start()
        assert [m.get("id") for m in queued(log)] == \
            [m.get("id") for m in before]
        assert "ben@example.org" in tern(log, "user", "list").stdout
        assert daemon.stop() == 0

        # -- remove: the programs go, state, conffile and user stay --
        run(log, "dpkg", "--remove", "tern")
        assert not Path(TERND).exists()
        assert len(maildir_new("ben@example.org")) == 3
        assert CONF.exists() and ADMIN_EDIT in CONF.read_text()
        assert user_exists("tern")

        # -- purge: state, configuration and user go --
        run(log, "dpkg", "--purge", "tern")
        assert not STATE.exists()
        assert not Path("/etc/tern").exists()
        assert not user_exists("tern") and not group_exists("tern")
        assert not Path("/etc/systemd/system/multi-user.target.wants/"
                        "tern.service").exists()
        assert installed("postfix")
    finally:
        daemon.kill()
        purge_all(log)
        allow_starts()
        show(capsys, "dpkg transcript", "".join(log))
        if daemon.logpath.exists():
            show(capsys, "installed ternd's log (tail)",
                 "\n".join(daemon.log().splitlines()[-40:]))


def test_deb_state_dir_ownership(capsys):
    """/var/lib/tern made by root before the package: postinst gives it to
    tern.  Owned by another user: postinst refuses and prints the command
    to run, and dpkg --configure -a finishes once it has been run."""
    d = debs()
    require_clean_machine()
    log = []
    allow_starts = no_service_start()
    try:
        STATE.mkdir(mode=0o755)
        (STATE / "kept").write_text("root's file\n")
        run(log, "dpkg", "-i", d["tern"])
        pw = pwd.getpwnam("tern")
        for p in (STATE, STATE / "kept"):
            assert (p.stat().st_uid, p.stat().st_gid) == (pw.pw_uid, pw.pw_gid), p
        assert STATE.stat().st_mode & 0o777 == 0o700
        assert (STATE / "kept").read_text() == "root's file\n"
        run(log, "dpkg", "--purge", "tern")
        assert not STATE.exists()

        nobody = pwd.getpwnam("nobody")
        STATE.mkdir(mode=0o700)
        os.chown(STATE, nobody.pw_uid, nobody.pw_gid)
        r = run(log, "dpkg", "-i", d["tern"], check=False)
        assert r.returncode != 0
        out = r.stdout + r.stderr
        assert "chown -R tern:tern /var/lib/tern && chmod 0700 " \
               "/var/lib/tern && dpkg --configure -a" in out, out
        assert STATE.stat().st_uid == nobody.pw_uid   # nothing taken
        subprocess.run(["sh", "-c", "chown -R tern:tern /var/lib/tern && "
                        "chmod 0700 /var/lib/tern"], check=True)
        run(log, "dpkg", "--configure", "-a")
        assert "install ok installed" in run(
            log, "dpkg-query", "-W", "-f=${Status}", "tern").stdout
    finally:
        purge_all(log)
        allow_starts()
        if STATE.exists() and not installed("tern"):
            shutil.rmtree(STATE, ignore_errors=True)
        show(capsys, "dpkg transcript (state_dir ownership)", "".join(log))
