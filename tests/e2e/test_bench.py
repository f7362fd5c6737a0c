"""bench/ without running an MTA: bench/limit (the machine's ceiling) in
its quick mode, run.sh's table read from a made-up results file (% of
the ceiling, the goals of issue 14), lib.sh's order of the two halves of
a pair and its settling of the disk, and the private Postfix's master.cf.
No root needed; about 10 s in all (limit --quick is time-bounded).  One
root test runs scenario K (rspamd) for real, briefly (about a minute)."""

import os
import re
import subprocess
import time

import pytest

from conftest import BUILD, REPO, world_tmpdir

LIB = REPO / "bench" / "lib.sh"
RUN = REPO / "bench" / "run.sh"


def build_limit(tmp):
    """The Makefile's own rule, into a private build directory."""
    b = tmp / "b"
    r = subprocess.run(["make", "-s", "--no-print-directory", f"B={b}",
                        f"{b}/bench/limit"], cwd=REPO, capture_output=True,
                       text=True, timeout=120,
                       env=dict(os.environ, MAKEFLAGS=""))
    assert r.returncode == 0, r.stdout + r.stderr
    return b / "bench" / "limit"


def limit_lines(out):
    recs = []
    for line in out.splitlines():
        assert line.startswith("limit test="), line
        recs.append(dict(f.split("=", 1) for f in line.split()[1:]))
    return recs


def test_limit_quick_measures_every_ceiling():
    tmp = world_tmpdir("tern-limit-")
    exe = build_limit(tmp)
    fs = tmp / "fs"
    fs.mkdir()
    t0 = time.monotonic()
    r = subprocess.run([str(exe), "--quick", str(fs)], capture_output=True,
                       text=True, timeout=120)
    wall = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    recs = limit_lines(r.stdout)
    got = sorted((x["test"], x.get("sync", ""), x.get("batch", ""))
                 for x in recs)
    assert got == sorted([("maildir_file", "fsync", "1"),
                          ("maildir_group", "syncfs", "32"),
                          ("maildir_group", "fdatasync", "32"),
                          ("log", "fdatasync", "1"),
                          ("log", "fdatasync", "16"),
                          ("log", "fdatasync", "64"),
                          ("tcp_rtt", "", "")]), r.stdout
    for x in recs:
        ops, secs = int(x["ops"]), float(x["seconds"])
        assert ops > 0 and 0.3 < secs < 3, x
        assert abs(float(x["per_sec"]) - ops / secs) <= 1 + ops / secs / 100, x
        assert float(x["cpu_us_op"]) > 0, x
    # the quick budget: 7 measurements of 0.4 s (the clean-up comes on top;
    # the wall time is loose because the machine is shared)
    assert sum(float(x["seconds"]) for x in recs) < 5, r.stdout
    assert wall < 30, wall
    one = {(x["test"], x.get("sync"), x.get("batch")): x for x in recs}
    f = one[("maildir_file", "fsync", "1")]
    assert int(f["syncs"]) == 2 * int(f["ops"]), f  # the file and new/
    group = max(float(one[("maildir_group", s, "32")]["per_sec"])
                for s in ("syncfs", "fdatasync"))
    assert group >= float(f["per_sec"]), r.stdout
    for s in ("syncfs", "fdatasync"):
        g = one[("maildir_group", s, "32")]
        assert int(g["commits"]) >= 1 and float(g["batch_avg"]) >= 1, g
    for b in (1, 16, 64):
        lg = one[("log", "fdatasync", str(b))]
        assert int(lg["ops"]) == b * int(lg["syncs"]), lg  # whole batches
    assert (float(one[("log", "fdatasync", "64")]["per_sec"]) >
            float(one[("log", "fdatasync", "1")]["per_sec"])), r.stdout
    t = one[("tcp_rtt", None, None)]
    assert 0 < float(t["p50_us"]) <= float(t["p99_us"]) < 100000, t
    assert "Maildir group commit" in r.stderr and "round trip" in r.stderr
    assert os.listdir(fs) == [], "bench/limit left files behind"


def test_limit_options_and_refusals():
    tmp = world_tmpdir("tern-limit-")
    exe = build_limit(tmp)
    r = subprocess.run([str(exe), "-d", "0.2", "-s", "100", "-B", "2,3",
                        "-T", "log", str(tmp)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    recs = limit_lines(r.stdout)
    assert [(x["size"], x["batch"]) for x in recs] == [("100", "2"),
                                                        ("100", "3")]
    for bad in (["-T", "file,nosuch"], ["-s", "0"], ["-d", "0"], []):
        r = subprocess.run([str(exe), *bad] + ([str(tmp)] if bad else []),
                           capture_output=True, text=True, timeout=60)
        assert r.returncode != 0 and r.stdout == "", (bad, r.stdout)
    assert sorted(os.listdir(tmp)) == ["b"]


RESULTS = """\
limit test=maildir_file sync=fsync size=2048 threads=1 batch=1 ops=3000 seconds=1.000 per_sec=3000 syncs=6000 cpu_us_op=80.0
limit test=maildir_group sync=syncfs size=2048 threads=8 batch=32 ops=9000 seconds=1.000 per_sec=9000 syncs=280 cpu_us_op=80.0 commits=280 batch_avg=32.1
limit test=maildir_group sync=fdatasync size=2048 threads=8 batch=32 ops=8000 seconds=1.000 per_sec=8000 syncs=8300 cpu_us_op=90.0 commits=250 batch_avg=32.0
limit test=maildir_group sync=syncfs size=102400 threads=8 batch=32 ops=900 seconds=1.000 per_sec=900 syncs=28 cpu_us_op=800.0 commits=28 batch_avg=32.1
limit test=log sync=fdatasync size=2048 threads=1 batch=1 ops=8000 seconds=1.000 per_sec=8000 syncs=8000 cpu_us_op=30.0
limit test=log sync=fdatasync size=2048 threads=1 batch=10 ops=40000 seconds=1.000 per_sec=40000 syncs=4000 cpu_us_op=10.0
limit test=log sync=fdatasync size=2048 threads=1 batch=16 ops=64000 seconds=1.000 per_sec=64000 syncs=4000 cpu_us_op=6.0
limit test=tcp_rtt msg=64 ops=60000 seconds=1.000 per_sec=60000 syncs=0 cpu_us_op=14.0 p50_us=13.0 p99_us=30.0
"""


def result(scen, mta, run, mps, p99, cpu):
    return (f"result scen={scen} mta={mta} run={run} ok={mps} e2e_mps={mps} "
            f"mps={mps} p50_ms=1 p99_ms={p99} p999_ms=30 cpu_us_msg={cpu} "
            f"hwm_kib=10240 load1=0.5 order={1 + run % 2} settle_s=0.1\n")


def test_table_percent_of_ceiling_and_goals():
    """The ceiling of a row: per-file for one session, the best group
    commit for more, the log batch of the session count for relaying;
    medians of the runs; each goal of issue 14 checked."""
    tmp = world_tmpdir("tern-table-")
    res = tmp / "results"
    text = RESULTS
    # x1: 1500 / 3000 per-file = 50 %, 5x, p99 1.5 ms, 140 us: all met
    text += result("A-2048-1", "tern", 1, 1500, 1.5, 140)
    text += result("A-2048-1", "postfix", 1, 300, 5, 900)
    # x50 over three runs: medians 7200 msg/s (80 % of the better group
    # figure, 9000), 18x Postfix's 400, p99 12 ms, 160 us: two goals missed
    for run, t, p in ((1, 7200, 400), (2, 100, 390), (3, 8000, 800)):
        text += result("A-2048-50", "tern", run, t, 12, 160)
        text += result("A-2048-50", "postfix", run, p, 90, 900)
    # 100 KiB x10: 2000 / 900 = 222 %, 4x Postfix: the 5x goal missed
    text += result("A-102400-10", "tern", 1, 2000, 20, 400)
    text += result("A-102400-10", "postfix", 1, 500, 40, 2000)
    # relay x10 against the log with one fdatasync per 10: 4000 / 40000
    text += result("B-2048-10", "tern", 1, 4000, 5, 300)
    text += result("B-2048-10", "postfix", 1, 400, 9, 300)
    res.write_text(text)
    r = subprocess.run(["bash", str(RUN), "--table", str(res)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    rows = {}
    for line in r.stdout.splitlines():
        for name in ("A deliver 2KiB x1 ", "A deliver 2KiB x50",
                     "A deliver 100KiB x10", "B relay 2KiB x10"):
            if line.startswith(name):
                rows[name.strip()] = line.split("|")[0].split()
    assert rows["A deliver 2KiB x1"][4:9] == [
        "1500", "300", "5.0x", "50", ">=4x,p99<2ms,cpu<=150us"], r.stdout
    assert rows["A deliver 2KiB x1"][9] == "yes", r.stdout
    assert rows["A deliver 2KiB x50"][4:10] == [
        "7200", "400", "18.0x", "80", ">=15x,>=80%,p99<10ms,cpu<=150us",
        "no:p99<10ms,cpu<=150us"], r.stdout
    assert rows["A deliver 100KiB x10"][4:10] == [
        "2000", "500", "4.0x", "222", ">=5x", "no:>=5x"], r.stdout
    assert rows["B relay 2KiB x10"][4:10] == [
        "4000", "400", "10.0x", "10", ">=10x", "yes"], r.stdout
    assert "Medians of 3 run(s)" in r.stdout
    assert "test=log sync=fdatasync size=2048 batch=10" in r.stdout
    assert "p50_us=13.0 p99_us=30.0" in r.stdout


def bash_lib(script, tmp, env=None):
    """Runs SCRIPT in bash after sourcing bench/lib.sh, with a fake sync
    on PATH that only says it ran (the order is what is tested)."""
    fake = tmp / "fakebin"
    fake.mkdir(exist_ok=True)
    (fake / "sync").write_text(f"#!/bin/sh\necho sync >>{tmp}/trace\n")
    (fake / "sync").chmod(0o755)
    e = dict(os.environ, PATH=f"{fake}:/usr/sbin:/usr/bin:/sbin:/bin",
             MEMINFO=str(tmp / "meminfo"), **(env or {}))
    return subprocess.run(["bash", "-c", f". {LIB}\n{script}"], env=e,
                          capture_output=True, text=True, timeout=60)


def meminfo(path, dirty, writeback):
    tmp = path.with_suffix(".new")
    tmp.write_text(f"MemTotal: 1000000 kB\nDirty: {dirty} kB\n"
                   f"Writeback: {writeback} kB\nWritebackTmp: 99999 kB\n")
    tmp.rename(path)


def test_run_pair_alternates_and_settles_before_each_half():
    tmp = world_tmpdir("tern-pair-")
    meminfo(tmp / "meminfo", 100, 0)
    r = bash_lib(f'half() {{ echo "$1 run=$2 pos=$PAIR_POS '
                 f'settle=$SETTLE_S" >>{tmp}/trace; }}\n'
                 'for run in 1 2 3 4; do\n'
                 '  run_pair "$run" "half tern $run" "half postfix $run"\n'
                 'done', tmp)
    assert r.returncode == 0, r.stderr
    trace = (tmp / "trace").read_text().split("\n")[:-1]
    order = [" ".join(line.split()[:3]) for line in trace]
    assert order == [
        "sync", "tern run=1 pos=1", "sync", "postfix run=1 pos=2",
        "sync", "postfix run=2 pos=1", "sync", "tern run=2 pos=2",
        "sync", "tern run=3 pos=1", "sync", "postfix run=3 pos=2",
        "sync", "postfix run=4 pos=1", "sync", "tern run=4 pos=2"], trace
    for line in trace:
        if line != "sync":
            assert float(line.split("settle=")[1]) < 5, line


def test_settle_waits_for_dirty_plus_writeback():
    """Dirty and Writeback are added (neither alone is over the 8 MiB
    threshold); the wait ends when they fall, not at the timeout."""
    tmp = world_tmpdir("tern-settle-")
    meminfo(tmp / "meminfo", 5000, 5000)
    r = bash_lib(f'( sleep 0.8; printf "Dirty: 300 kB\\nWriteback: 0 kB\\n" '
                 f'>{tmp}/m.new && mv {tmp}/m.new {tmp}/meminfo ) &\n'
                 'SETTLE_TIMEOUT=20 settle_disk\n'
                 'echo "$SETTLE_S $SETTLE_DIRTY $SETTLE_TIMEDOUT"', tmp)
    assert r.returncode == 0, r.stderr
    s, dirty, timedout = r.stdout.split()
    assert 0.7 <= float(s) < 10 and dirty == "300" and timedout == "0", r.stdout


def test_settle_gives_up_after_its_timeout():
    tmp = world_tmpdir("tern-settle-")
    meminfo(tmp / "meminfo", 900000, 0)
    r = bash_lib('SETTLE_TIMEOUT=0.5 settle_disk\n'
                 'echo "$SETTLE_S $SETTLE_DIRTY $SETTLE_TIMEDOUT"', tmp)
    assert r.returncode == 0, r.stderr
    s, dirty, timedout = r.stdout.split()
    assert 0.5 <= float(s) < 5 and dirty == "900000" and timedout == "1", \
        r.stdout


def test_bench_postfix_master_cf_ignores_the_live_one():
    """pf_setup run with /etc/postfix/master.cf replaced (a private mount
    namespace) by an administrator's file without the smtp inet line,
    which made the bench's Postfix fail to start when lib.sh edited a
    copy of it: the private master.cf must still be Debian's
    master.cf.dist with smtpd on the bench's port."""
    tmp = world_tmpdir("tern-pfcf-")
    custom = tmp / "custom-master.cf"
    custom.write_text("# customised by an admin\n"
                      "submission inet n - y - - smtpd\n"
                      "custom-only unix - - y - - pipe\n")
    fake = tmp / "fakebin"
    fake.mkdir()
    (fake / "postfix").write_text("#!/bin/sh\nexit 0\n")
    (fake / "postfix").chmod(0o755)
    script = (f"mount --bind {custom} /etc/postfix/master.cf || exit 3\n"
              f"grep -q custom-only /etc/postfix/master.cf || exit 4\n"
              f"export PATH={fake}:$PATH\n"
              f". {LIB}\nW={tmp}\npf_setup 12345 12346 2>/dev/null\n")
    r = subprocess.run(["unshare", "-rm", "bash", "-c", script],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, (r.returncode, r.stderr)
    made = (tmp / "postfix" / "conf" / "master.cf").read_text()
    assert "custom-only" not in made
    lines = [l.split() for l in made.splitlines()
             if l and not l[0].isspace() and not l.startswith("#")]
    assert ["127.0.0.1:12345", "inet", "n", "-", "n", "-", "-",
            "smtpd"] in lines, made
    names = {l[0] for l in lines}
    assert {"pickup", "cleanup", "qmgr", "local", "smtp", "relay"} <= names
    # no chroot anywhere (the private queue is not a jail)
    assert all(l[4] == "n" for l in lines if len(l) >= 8), made


# -- scenario K: the same rspamd milter behind tern and Postfix (issue 15) ---

K_FIGURES = ("e2e_mps", "mps", "p50_ms", "p99_ms", "cpu_us_msg",
             "rspamd_cpu_us_msg", "rspamd_scans", "rspamd_scan_ms",
             "rspamd_scan_p50_ms")


def k_result(mta, run, mps, cpu, rcpu, scan):
    return (f"result scen=K-2048-10 mta={mta} run={run} ok={mps} "
            f"e2e_mps={mps} mps={mps} p50_ms=5 p99_ms=20 p999_ms=30 "
            f"cpu_us_msg={cpu} rspamd_cpu_us_msg={rcpu} rspamd_scans={mps} "
            f"rspamd_scan_ms={scan} rspamd_scan_p50_ms={scan} load1=0.5 "
            f"order={1 + run % 2} settle_s=0.1\n")


def test_table_k_row_and_rspamd_apart():
    """K's row compares tern with Postfix (goal: not slower, >=1x), and
    rspamd's own figures (scan time from its log, its CPU per message)
    come on a line of their own, for each MTA."""
    tmp = world_tmpdir("tern-table-")
    res = tmp / "results"
    res.write_text(k_result("tern", 1, 300, 600, 2000, 1.5) +
                   k_result("postfix", 1, 250, 2700, 2100, 1.75))
    r = subprocess.run(["bash", str(RUN), "--table", str(res)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    row = [ln for ln in r.stdout.splitlines()
           if ln.startswith("K rspamd 2KiB x10 ")]
    assert len(row) == 1, r.stdout
    assert row[0].split("|")[0].split()[4:10] == [
        "300", "250", "1.2x", "-", ">=1x", "yes"], r.stdout
    line = [ln for ln in r.stdout.splitlines()
            if ln.startswith("rspamd itself in K rspamd 2KiB x10")]
    assert len(line) == 1, r.stdout
    assert ("1.5 ms mean, 1.5 ms median (tern) / 1.75 ms, 1.75 ms (Postfix)"
            in line[0]), line
    assert "rspamd CPU 2000 us/msg (tern) / 2100 us/msg (Postfix)" in line[0]


@pytest.mark.root
def test_scenario_k_runs_and_reports_rspamd_apart():
    """bench/run.sh's scenario K for one second per MTA: a private Postfix
    and ternd, each with the same rspamd (tests/e2e/rspamd) as milter; the
    result lines carry the MTA's figures and rspamd's own (scan time from
    its log, its CPU), every accepted message was scanned (else NOSCAN)
    and arrived (else LOSS).  The figures are not judged, only present."""
    import shutil
    if not shutil.which("rspamd"):
        pytest.fail("rspamd not found: install the Debian package 'rspamd'",
                    pytrace=False)
    env = dict(os.environ, QUICK="1", SCENARIOS="K", RUNS="1", LIMIT="0",
               K_SECONDS="1", WATCH_TIMEOUT="120", B=str(BUILD))
    r = subprocess.run(["bash", str(RUN)], env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    recs = {}
    for line in r.stdout.splitlines():
        if line.startswith("result scen=K-2048-10 "):
            f = dict(x.split("=", 1) for x in line.split()[1:])
            recs[f["mta"]] = f
    assert sorted(recs) == ["postfix", "tern"], r.stdout
    for mta, f in recs.items():
        for k in K_FIGURES:
            float(f[k])                 # a number, whatever its value
        assert int(f["ok"]) > 0, (mta, f)
        assert int(f["rspamd_scans"]) >= int(f["ok"]), (mta, f)
        assert f["arrived"] == f["ok"], (mta, f)
    assert re.search(r"^K rspamd 2KiB x10 +\d+ +\d+ +[\d.]+x ", r.stdout,
                     re.M), r.stdout
    assert "rspamd itself" in r.stdout, r.stdout
    assert "LOSS" not in r.stdout and "NOSCAN" not in r.stdout, r.stdout
