"""Crash safety under load (issue: tern survives the internet): runs
tests/crash/crashtest.py with a few SIGKILLs, in both modes.  Nothing that
got a 250 after its data may be missing afterwards; `make crashtest` runs
the same script with 500 kills."""
import os
import re
import subprocess
import sys

import pytest

from conftest import BUILD, REPO, SLOW, require_build

CRASHTEST = REPO / "tests" / "crash" / "crashtest.py"
KILLS = 10
SUMMARY = re.compile(r"^kills=(\d+) acknowledged=(\d+) lost=(\d+) duplicated=(\d+)$", re.M)


@pytest.mark.parametrize("queue", ["log", "file"])
@pytest.mark.parametrize("mode", ["local", "relay"])
def test_sigkill_under_load_loses_nothing(mode, queue, record_property):
    """queue: the log (the default) or the queue of files."""
    require_build()
    p = subprocess.run([sys.executable, str(CRASHTEST), "--kills", str(KILLS),
                        "--mode", mode] +
                       (["--file-spool"] if queue == "file" else []),
                       capture_output=True, text=True, timeout=300 * SLOW,
                       env=dict(os.environ, TERN_BUILD=str(BUILD)))
    out = p.stdout + p.stderr
    print(out)
    m = SUMMARY.search(p.stdout)
    assert m, f"no summary line from crashtest (status {p.returncode}):\n{out[-4000:]}"
    kills, acked, lost, dup = map(int, m.groups())
    for k, v in (("kills", kills), ("acknowledged", acked), ("lost", lost),
                 ("duplicated", dup)):
        record_property(k, v)
    assert kills == KILLS
    assert acked > 0, out
    assert lost == 0, out
    if mode == "local":
        # the client never sends a message twice: a second copy is a bug
        assert dup == 0, out
    assert p.returncode == 0, out
