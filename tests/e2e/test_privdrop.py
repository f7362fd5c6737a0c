"""ternd started as root touches nothing through a name its user can
redirect (issue 11 item 1; docs/security.md, "Files ternd touches as
root").  The user ternd drops to owns STATE, so it can plant links there
before a restart: STATE/tls -> a root-owned directory, STATE/tls/key.pem
-> a root-only key.  ternd must refuse them with an error naming the link,
and leave what they point at exactly as it was (owner, mode, content)."""

import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import (ASAN, RUN_AS, SANITIZER_MARKERS, SLOW, TERND, base_args,
                      free_port, make_state_dir, require, require_build,
                      world_tmpdir)

pytestmark = pytest.mark.root

OPENSSL = "/usr/bin/openssl"


def snapshot(top):
    """Owner, mode and content of top and everything under it."""
    out = {}
    for p in [Path(top), *sorted(Path(top).rglob("*"))]:
        st = os.lstat(p)
        data = p.read_bytes() if stat.S_ISREG(st.st_mode) else None
        out[str(p)] = (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), data)
    return out


def plant_link(target, link):
    """A link made as the user ternd runs as would make it."""
    os.symlink(target, link)
    os.lchown(link, RUN_AS[1], RUN_AS[2])


@pytest.fixture
def world():
    """A state dir owned by ternd's user, and a root-only place holding a
    real key pair that no one but root may read."""
    require_build()
    require(OPENSSL, "openssl")
    top = world_tmpdir("tern-privdrop-")
    state = make_state_dir(top / "state")
    # root, 0700, under /root: a path only root can change (not /tmp)
    secret = Path(tempfile.mkdtemp(prefix="tern-rootonly-", dir="/root"))
    subprocess.run([OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=mx.test",
                    "-days", "2", "-keyout", str(secret / "key.pem"),
                    "-out", str(secret / "cert.pem")],
                   check=True, capture_output=True)
    os.chmod(secret / "key.pem", 0o600)
    yield state, secret
    shutil.rmtree(top, ignore_errors=True)
    shutil.rmtree(secret, ignore_errors=True)


def start_root_ternd(state, *extra):
    """ternd as root with user=: (started, exit status, log).  One that
    comes up anyway is stopped and reported as started."""
    port = free_port()
    argv = [str(TERND), *base_args(state), "-o", f"listen.smtp=127.0.0.1:{port}",
            "-o", "listen.submission=off", *extra]
    env = dict(os.environ)
    env.pop("TERN_CONFIG", None)
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, cwd="/", env=env)
    started = False
    try:
        p.wait(5 * SLOW)
    except subprocess.TimeoutExpired:
        started = True
        p.terminate()
        p.wait(15 * SLOW)
    log = p.stdout.read().decode(errors="replace")
    p.stdout.close()
    if ASAN:
        for m in SANITIZER_MARKERS:
            assert m not in log, log
    return started, p.returncode, log


def test_state_tls_linked_to_a_root_directory(world):
    state, secret = world
    victim = Path(tempfile.mkdtemp(prefix="tern-rootdir-"))
    try:
        os.chmod(victim, 0o755)
        (victim / "keep").write_text("root's\n")
        before = snapshot(victim)
        plant_link(victim, state / "tls")
        started, rc, log = start_root_ternd(state)
        assert snapshot(victim) == before, log
        assert not started and rc == 1, log
        assert f"{state}/tls is a symbolic link" in log, log
    finally:
        shutil.rmtree(victim, ignore_errors=True)


@pytest.mark.parametrize("configured", [False, True],
                         ids=["selfsigned", "tls_key_option"])
def test_state_key_linked_to_a_root_only_key(world, configured):
    """The file form: STATE/tls/key.pem -> a root-only key (and cert.pem its
    public certificate, so a ternd that followed the link would serve with
    root's key).  Also when the admin names those paths in tls.cert and
    tls.key: a path through STATE is read only with the user's rights."""
    state, secret = world
    tls = state / "tls"
    tls.mkdir(mode=0o700)
    os.chown(tls, RUN_AS[1], RUN_AS[2])
    shutil.copy(secret / "cert.pem", tls / "cert.pem")
    os.chown(tls / "cert.pem", RUN_AS[1], RUN_AS[2])
    plant_link(secret / "key.pem", tls / "key.pem")
    before = snapshot(secret)
    extra = (["-o", f"tls.cert={tls}/cert.pem", "-o", f"tls.key={tls}/key.pem"]
             if configured else [])
    started, rc, log = start_root_ternd(state, *extra)
    assert snapshot(secret) == before, log
    assert not started and rc == 1, log
    if configured:
        assert f"{tls}/key.pem: Permission denied" in log, log
        assert f"event=startup step=read_as_user path={tls}/cert.pem" in log, log
    else:
        assert f"{tls}/key.pem is a symbolic link" in log, log


def test_root_only_admin_key_still_read_as_root(world):
    """What the drop must not break: an admin's key that only root can read,
    on a root-only path, is read before the drop."""
    state, secret = world
    started, rc, log = start_root_ternd(
        state, "-o", f"tls.cert={secret}/cert.pem", "-o", f"tls.key={secret}/key.pem")
    assert started, log
    assert "read_as_user" not in log and "event=ready" in log, log


def test_selfsigned_pair_made_by_the_user(world):
    """The generated pair is made after the drop: the user's from birth."""
    state, _ = world
    started, rc, log = start_root_ternd(state)
    assert started, log
    for p in (state / "tls", state / "tls" / "key.pem", state / "tls" / "cert.pem"):
        st = os.lstat(p)
        assert (st.st_uid, st.st_gid) == (RUN_AS[1], RUN_AS[2]), (p, log)
    assert stat.S_IMODE(os.stat(state / "tls" / "key.pem").st_mode) == 0o600


def test_state_dir_link_refused(world):
    """STATE itself as a link (its parent is the user's): refused, not
    followed."""
    state, secret = world
    link = state.parent / "linked-state"
    plant_link(state, link)
    started, rc, log = start_root_ternd(link)
    assert not started and rc == 1, log
    assert f"path={link} error=\"a symbolic link" in log, log


def test_missing_state_dir_made_for_the_user_under_a_root_only_parent():
    """The usual /var/lib/tern: root makes it (nobody else can touch its
    parent) and hands it to the user by descriptor."""
    require_build()
    parent = Path(tempfile.mkdtemp(prefix="tern-privdrop-", dir="/run"))
    try:
        os.chmod(parent, 0o711)
        state = parent / "state"
        started, rc, log = start_root_ternd(state)
        assert started, log
        st = os.lstat(state)
        assert stat.S_ISDIR(st.st_mode) and st.st_uid == RUN_AS[1], log
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def test_missing_state_dir_under_a_path_others_can_change(world):
    """Under /tmp (anyone can swap what a name there means) root makes
    nothing: the user tries, is refused by the root-owned parent, and
    ternd says where."""
    state, _ = world
    missing = state.parent / "not-yet"
    started, rc, log = start_root_ternd(missing)
    assert not started and rc == 1, log
    assert f"step=state_dir path={missing}" in log and "Permission denied" in log, log
    assert not missing.exists()
