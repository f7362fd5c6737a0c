"""`tern dkim keygen` and `tern dkim list`: DKIM signing keys under
STATE/dkim/DOMAIN/SELECTOR.ALG.key (0600, never overwritten, ternd's user's
when made by root) and the exact TXT record to publish, which an
independent verifier (dkimpy) reads as the key that signs."""

import base64
import os
import re
import shutil
import stat
import subprocess
import time

import pytest

from conftest import (RUN_AS, TERN, _run_as_kw, make_state_dir, require,
                      require_build, world_tmpdir)

import dkim
import dkim.crypto  # noqa: F401 (evaluate_pk needs it loaded)

OPENSSL = "/usr/bin/openssl"


@pytest.fixture
def state():
    require_build()
    top = world_tmpdir("tern-dkim-")
    st = make_state_dir(top / "state")
    yield st
    shutil.rmtree(top, ignore_errors=True)


def tern(state, *args, as_root=False):
    argv = [str(TERN), "-o", f"state_dir={state}"]
    kw = {} if as_root else _run_as_kw()
    if as_root:
        argv += ["-o", f"user={RUN_AS[0]}"]
    env = dict(os.environ)
    env.pop("TERN_CONFIG", None)
    return subprocess.run(argv + list(args), capture_output=True, env=env,
                          timeout=120, stdin=subprocess.DEVNULL, **kw)


def records(out):
    """{name: joined value} of the zone lines in out; each string checked."""
    found = {}
    for m in re.finditer(r'^(\S+)\. IN TXT \((.*)\)$', out, re.M):
        strings = re.findall(r'"([^"]*)"', m.group(2))
        assert strings and all(len(s) <= 255 for s in strings), m.group(0)
        assert all(len(s) == 255 for s in strings[:-1]), m.group(0)
        found[m.group(1)] = "".join(strings)
    return found


def public_der(key_path):
    r = subprocess.run([OPENSSL, "pkey", "-in", str(key_path), "-pubout",
                        "-outform", "DER"], capture_output=True, check=True)
    return r.stdout


def test_keygen_rsa_default(state):
    require(OPENSSL, "openssl")
    r = tern(state, "dkim", "keygen", "Example.ORG")
    assert r.returncode == 0, r.stderr
    sel = time.strftime("tern-rsa-%Y%m", time.gmtime())
    path = state / "dkim" / "example.org" / f"{sel}.rsa.key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    recs = records(r.stdout.decode())
    rec = recs[f"{sel}._domainkey.example.org"]
    assert rec.startswith("v=DKIM1; k=rsa; p="), rec
    # the published p= is this key's public half
    p = rec.split("p=", 1)[1]
    assert base64.b64decode(p) == public_der(path)
    # and dkimpy reads the record as a 2048-bit RSA key
    _, bits, ktag, _ = dkim.evaluate_pk(b"x", rec.encode())
    assert (bits, ktag) == (2048, b"rsa")


def test_keygen_ed25519_and_list(state):
    require(OPENSSL, "openssl")
    r = tern(state, "dkim", "keygen", "example.org", "--algorithm", "ed25519",
             "--selector", "ed1")
    assert r.returncode == 0, r.stderr
    rec = records(r.stdout.decode())["ed1._domainkey.example.org"]
    assert rec.startswith("v=DKIM1; k=ed25519; p="), rec
    path = state / "dkim" / "example.org" / "ed1.ed25519.key"
    # RFC 8463 4: p= is the raw 32-octet key (the last 32 of the SPKI)
    raw = base64.b64decode(rec.split("p=", 1)[1])
    assert len(raw) == 32 and public_der(path)[-32:] == raw
    assert tern(state, "dkim", "keygen", "example.org", "--selector", "rsa1",
                "--bits", "1024").returncode == 0
    r = tern(state, "dkim", "list")
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert "example.org ed1 ed25519 256" in out, out
    assert "example.org rsa1 rsa 1024" in out, out
    assert set(records(out)) == {"ed1._domainkey.example.org",
                                 "rsa1._domainkey.example.org"}


def test_keygen_signs_what_dkimpy_verifies(state):
    """The key file signs (dkimpy, through openssl's PKCS#1 form) and the
    printed record verifies it."""
    require(OPENSSL, "openssl")
    r = tern(state, "dkim", "keygen", "example.org", "--selector", "s")
    assert r.returncode == 0, r.stderr
    rec = records(r.stdout.decode())["s._domainkey.example.org"]
    path = state / "dkim" / "example.org" / "s.rsa.key"
    pkcs1 = subprocess.run([OPENSSL, "pkey", "-in", str(path), "-traditional"],
                           capture_output=True, check=True).stdout
    msg = b"From: a@example.org\r\nSubject: hi\r\n\r\nbody\r\n"
    sig = dkim.sign(msg, b"s", b"example.org", pkcs1)
    assert dkim.verify(sig + msg, dnsfunc=lambda n, timeout=5: rec.encode())


def test_keygen_never_overwrites(state):
    assert tern(state, "dkim", "keygen", "example.org", "--selector",
                "s1", "--algorithm", "ed25519").returncode == 0
    path = state / "dkim" / "example.org" / "s1.ed25519.key"
    before = path.read_bytes()
    r = tern(state, "dkim", "keygen", "example.org", "--selector", "s1",
             "--algorithm", "ed25519")
    assert r.returncode == 1 and b"never overwritten" in r.stderr, r.stderr
    assert path.read_bytes() == before
    # one key per selector: the other algorithm may not take it either
    r = tern(state, "dkim", "keygen", "example.org", "--selector", "s1")
    assert r.returncode == 1 and b"one key per selector" in r.stderr
    assert not (path.parent / "s1.rsa.key").exists()


@pytest.mark.parametrize("args", [
    ["keygen"],
    ["keygen", "bad..example"],
    ["keygen", "example.org", "--bits", "512"],
    ["keygen", "example.org", "--algorithm", "dsa"],
    ["keygen", "example.org", "--selector", "a b"],
    ["keygen", "example.org", "--selector"],
    ["list", "extra"],
    ["rotate"],
])
def test_keygen_usage(state, args):
    r = tern(state, "dkim", *args)
    assert r.returncode == 64, (args, r.stderr)
    assert not (state / "dkim").exists() or not any(
        (state / "dkim").rglob("*.key"))


def test_list_without_keys(state):
    r = tern(state, "dkim", "list")
    assert r.returncode == 0 and r.stdout == b"", r


@pytest.mark.root
def test_keygen_as_root_belongs_to_ternd_user(state):
    if RUN_AS is None:
        pytest.fail("root test run without root", pytrace=False)
    r = tern(state, "dkim", "keygen", "example.org", "--selector", "r",
             "--algorithm", "ed25519", as_root=True)
    assert r.returncode == 0, r.stderr
    path = state / "dkim" / "example.org" / "r.ed25519.key"
    for p in (path, path.parent, path.parent.parent):
        st = os.stat(p)
        assert (st.st_uid, st.st_gid) == (RUN_AS[1], RUN_AS[2]), p
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
