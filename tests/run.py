#!/usr/bin/python3
"""Run tern's whole test suite: every unit-test binary, then the pytest
end-to-end suite against the daemon in the same build directory.  Prints
one line per unit binary, pytest's own output, and ends with the line
"N passed, N failed" (CI greps it).  Exit status 0 only if nothing failed.
"""
import argparse
import glob
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_unit(build):
    passed = failed = 0
    bins = sorted(glob.glob(os.path.join(ROOT, build, "tests", "test_*")))
    if not bins:
        print(f"unit: no test binaries in {build}/tests", flush=True)
        return 0, 1
    for b in bins:
        name = os.path.basename(b)
        p = subprocess.run([b], cwd=ROOT, capture_output=True, text=True,
                           timeout=600)
        m = re.search(r"RESULT passed=(\d+) failed=(\d+)", p.stdout)
        if m is None or p.returncode not in (0, 1):
            # crashed (sanitizer, signal) before printing its summary
            print(f"unit {name}: CRASHED status={p.returncode}", flush=True)
            sys.stdout.write(p.stdout[-4000:])
            sys.stdout.write(p.stderr[-8000:])
            failed += 1
            continue
        np, nf = int(m.group(1)), int(m.group(2))
        passed += np
        failed += nf
        print(f"unit {name}: {np} passed, {nf} failed", flush=True)
        if nf or p.returncode:
            sys.stdout.write(p.stderr[-8000:])
            if nf == 0:
                failed += 1
    return passed, failed


TEST_USER = "terntest"


def as_test_user(cmd):
    """As root, run the e2e suite as an unprivileged user, the way an admin's
    ternd runs after its privilege drop: ternd refuses to stay root, and the
    files it and tern create must belong to the user that runs them."""
    if os.geteuid() != 0:
        return cmd
    if subprocess.run(["id", "-u", TEST_USER], capture_output=True).returncode:
        subprocess.run(["useradd", "--system", "--create-home", "--shell",
                        "/bin/sh", TEST_USER], check=True)
    return ["runuser", "-u", TEST_USER, "--"] + cmd


def names_tests(extra):
    """Do pytest's extra arguments name test files or directories (then
    only they run) rather than only options such as -k (then all of
    tests/e2e is collected)?"""
    for arg in extra:
        if arg.startswith("-"):
            continue
        path = arg.split("::", 1)[0]
        if os.path.exists(os.path.join(ROOT, path)) or os.path.exists(path):
            return True
    return False


def e2e_jobs():
    """Parallel pytest workers for the unprivileged pass: TERN_E2E_JOBS,
    else 2 when pytest-xdist (python3-pytest-xdist) is installed."""
    env = os.environ.get("TERN_E2E_JOBS")
    if env is not None:
        return max(1, int(env))
    try:
        import xdist  # noqa: F401
    except ImportError:
        return 1
    return 2


def run_e2e_pass(build, extra, marks, as_root):
    """One pytest pass over tests/e2e with -m marks: as the unprivileged
    test user, or as root (the tests marked "root").  (passed, failed)."""
    outdir = tempfile.mkdtemp(prefix="tern-e2e-")
    os.chmod(outdir, 0o777)
    xml = os.path.join(outdir, "results.xml")
    env = dict(os.environ, TERN_BUILD=build, HOME="/tmp")
    cmd = ["env", f"TERN_BUILD={build}", "/usr/bin/python3", "-m", "pytest",
           "-q", "-p", "no:cacheprovider", f"--junitxml={xml}", "-m", marks]
    cmd += extra if names_tests(extra) else [
        os.path.join(ROOT, "tests", "e2e")] + extra
    jobs = e2e_jobs()
    if not as_root and jobs > 1:
        # Most e2e time is waiting (timeouts, retries, peers starting): two
        # workers overlap it.  A file's tests stay on one worker (its
        # module fixtures); the root pass (network namespaces, a private
        # Postfix on fixed paths) stays serial.
        cmd += ["-n", str(jobs), "--dist", "loadfile"]
    if as_root:
        if os.geteuid() == 0:
            # the root tests must run: one that finds itself without root fails
            cmd.insert(1, "TERN_E2E_ROOT_TESTS=1")
        else:
            print("e2e: not root: the tests marked 'root' (a private Postfix) "
                  "cannot run and count as failed; run 'make check' as root",
                  flush=True)
    else:
        cmd = as_test_user(cmd)
    p = subprocess.run(cmd, cwd=ROOT, env=env)
    try:
        suite = ET.parse(xml).getroot()
        if suite.tag == "testsuites":
            suite = suite[0]
        total = int(suite.get("tests", 0))
        bad = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skipped = int(suite.get("skipped", 0))
    except (OSError, ET.ParseError):
        return 0, 1, 0
    # 5: no test selected in this pass (run_e2e checks that one ran)
    if p.returncode not in (0, 1, 5) and bad == 0:
        bad = 1  # pytest itself failed (collection error, interrupted)
    # A skip is a test that did not run: count it as failed, loudly.
    if skipped:
        print(f"e2e: {skipped} skipped tests count as failed", flush=True)
    return total - bad - skipped, bad + skipped, total


def run_e2e(build, extra):
    """Two passes: everything but the root tests as the unprivileged test
    user (as ternd runs after its privilege drop), then the tests marked
    "root" as root (Postfix's master must start as root)."""
    p1, f1, n1 = run_e2e_pass(build, extra, "not root", as_root=False)
    root = "root"
    if "asan" in os.path.basename(os.path.normpath(build)):
        # the tests marked own_build (the Debian packages) test binaries
        # they build themselves: once, in the plain build's run
        root = "root and not own_build"
    p2, f2, n2 = run_e2e_pass(build, extra, root, as_root=True)
    if n1 + n2 == 0:
        print("e2e: no test ran", flush=True)
        f2 += 1
    return p1 + p2, f1 + f2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--unit-only", action="store_true")
    ap.add_argument("pytest_args", nargs="*")
    a = ap.parse_args()
    passed, failed = run_unit(a.build)
    if not a.unit_only:
        p2, f2 = run_e2e(a.build, a.pytest_args)
        passed += p2
        failed += f2
    print(f"{passed} passed, {failed} failed", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
