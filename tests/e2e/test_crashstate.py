"""
The crash-state checker (tests/crashstate), a short run: every power-cut
state of a recorded lone-message run, a queued relay message (and its
hold and release), a DSN and a restart's recovery,
recovered and checked, must be clean with ternd; and the same lone run of
ternd-plant (the fsync of new/ left out) must show violations, or the
checker could not tell a missing fsync from a present one.  The whole
checker, with the group-commit scenario, is `make crashstate`.
"""
import re
import subprocess

import pytest

import conftest as C

CHECKER = C.REPO / "tests" / "crashstate" / "crashstate.py"
SHIM = C.BUILD / "crashstate" / "shim.so"
PLANT = C.BUILD / "ternd-plant"


def run_checker(ternd, *args):
    for p in (ternd, SHIM):
        if not p.exists():
            pytest.fail(f"{p} missing: make check (or make {p}) builds it",
                        pytrace=False)
    p = subprocess.run(["/usr/bin/python3", str(CHECKER), "--ternd", str(ternd),
                        "--shim", str(SHIM)] + list(args),
                       capture_output=True, text=True, timeout=300 * C.SLOW)
    total = re.search(r"^total: .*$", p.stdout, re.M)
    assert total, f"no total line\n{p.stdout}\n{p.stderr}"
    fields = dict(kv.split("=") for kv in total.group(0).split()[1:])
    return p, {k: int(v) for k, v in fields.items()}


@pytest.mark.parametrize("queue", ["log", "file"])
def test_crashstate_clean(queue):
    """queue: the log (the default) or the queue of files."""
    p, t = run_checker(C.TERND, "--scenario", "lone", "--scenario", "relay",
                       "--scenario", "hold", "--scenario", "dsn",
                       "--scenario", "recover",
                       *(["--file-spool"] if queue == "file" else []))
    assert p.returncode == 0 and t["violations"] == 0, p.stdout + p.stderr
    # the run did explore: every crash point, more than one state each
    assert t["crash_points"] >= 100 and t["distinct"] >= 50, p.stdout


def test_crashstate_catches_planted_missing_fsync():
    # a few states per crash point are enough to see the planted loss
    # (every acknowledged message of the run is lost in most of them)
    p, t = run_checker(PLANT, "--scenario", "lone", "--expect-violations",
                       "--limit", "8", "--sample", "4")
    assert p.returncode == 0 and t["violations"] > 0, p.stdout + p.stderr
    assert "acknowledged, found 0 times" in p.stdout, p.stdout
