"""The Makefile itself: the README's first command (make run) must work on
a machine that has none of the build's libraries yet, so nothing may ask
pkg-config for their flags before scripts/deps.sh has installed them, and
the build must run only after deps, even under -j."""

import os
import stat
import subprocess

from conftest import REPO, world_tmpdir


def fake_pkg_config(tmp):
    """A pkg-config on PATH that records each call and answers nothing."""
    log = tmp / "pkg-config.calls"
    exe = tmp / "pkg-config"
    exe.write_text(f"#!/bin/sh\necho \"$*\" >>{log}\nexit 1\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return log


def make_n(tmp, *targets):
    env = dict(os.environ, PATH=f"{tmp}:{os.environ.get('PATH', '/usr/bin:/bin')}",
               MAKEFLAGS="")
    return subprocess.run(["make", "-n", "-j4", "B=" + str(tmp / "b"), *targets],
                          cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=60)


def test_makefile_parse_asks_pkg_config_nothing():
    """Before the fix LDLIBS := $(shell pkg-config ...) ran at parse time:
    on a fresh machine the answer was empty and the first link failed."""
    tmp = world_tmpdir("tern-make-")
    log = fake_pkg_config(tmp)
    r = make_n(tmp, "deps")
    assert r.returncode == 0, r.stderr
    assert "scripts/deps.sh" in r.stdout
    assert not log.exists(), f"pkg-config called while parsing: {log.read_text()}"


def test_run_builds_in_a_sub_make_after_deps():
    """`make -j run`: deps.sh must finish before the first compile starts,
    so the build is a separate make invoked by run's recipe after deps."""
    tmp = world_tmpdir("tern-make-")
    fake_pkg_config(tmp)
    r = make_n(tmp, "run")
    lines = r.stdout.splitlines()
    deps = [i for i, l in enumerate(lines) if "scripts/deps.sh" in l]
    compiles = [i for i, l in enumerate(lines) if " -c src/" in l]
    assert deps, r.stdout[-2000:]
    assert compiles, r.stdout[-2000:]
    assert deps[0] < compiles[0], r.stdout[-2000:]
    # the sub-make (not a prerequisite list) is what orders them
    out = subprocess.run(["make", "-p", "-n", "-q", "run"], cwd=REPO,
                         capture_output=True, text=True, timeout=60).stdout
    rule = [l for l in out.splitlines() if l.startswith("run:")]
    assert rule and rule[0].split(":", 1)[1].split() == ["deps"], rule


def test_bench_postfix_starts_from_debian_master_cf():
    """bench/lib.sh must not depend on an administrator's customised
    /etc/postfix/master.cf: it starts from the packaged master.cf.dist."""
    text = (REPO / "bench" / "lib.sh").read_text()
    assert "/usr/share/postfix/master.cf.dist" in text
    assert "/etc/postfix/master.cf" not in text
