"""tern --version, ternd --version and the version on ternd's event=ready
line (issue 18 item 4): the release comes from the file VERSION, the
revision from git, and a tree without git says "unknown"."""

import shutil
import subprocess

from conftest import REPO, TERN, TERND, require_build, world_tmpdir


def release():
    return (REPO / "VERSION").read_text().strip()


def git_revision():
    """What the Makefile's REV is for this tree, asked the same way."""
    r = subprocess.run(["git", "-c", f"safe.directory={REPO}", "-C",
                        str(REPO), "describe", "--tags",
                        "--always", "--dirty", "--match", "v[0-9]*"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_version_file_names_a_release():
    v = release()
    parts = v.split(".")
    assert len(parts) == 3 and all(p.isdigit() for p in parts), v


def test_tern_and_ternd_print_version_and_revision():
    require_build()
    for prog, name in ((TERN, "tern"), (TERND, "ternd")):
        r = subprocess.run([str(prog), "--version"], capture_output=True,
                           text=True, timeout=10)
        assert r.returncode == 0, (prog, r.stdout, r.stderr)
        words = r.stdout.split()
        assert words[:3] == [name, release(), "rev"], r.stdout
        # the build may predate the last commit or edit: a revision of this
        # tree, never empty or "unknown" in a git work tree
        assert len(words) == 4 and words[3] not in ("", "unknown"), r.stdout
        assert r.stderr == ""


def test_build_revision_is_this_trees():
    """The Makefile's REV is `git describe` of the tree, also for a user
    who does not own the checkout (make check's test user), and the build
    carries it (make check builds just before; after an edit or a commit
    since the last build, rebuild)."""
    require_build()
    out = subprocess.run(["make", "-s", "--no-print-directory", "version"],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [release(), git_revision()], out.stdout
    r = subprocess.run([str(TERND), "--version"], capture_output=True,
                       text=True, timeout=10)
    assert r.stdout.split()[3] == git_revision(), \
        f"{r.stdout.strip()}: build older than the tree? run make"


def test_revision_unknown_outside_git():
    """A source tarball has no .git: the revision says so (and REV= can
    name it, as make deb does for the copy it builds)."""
    tmp = world_tmpdir("tern-version-")
    try:
        for f in ("Makefile", "VERSION"):
            shutil.copy(REPO / f, tmp / f)
        r = subprocess.run(["make", "-s", "--no-print-directory", "version"],
                           cwd=tmp, capture_output=True, text=True, timeout=60)
        assert r.stdout.split() == [release(), "unknown"], (r.stdout, r.stderr)
        r = subprocess.run(["make", "-s", "--no-print-directory", "version",
                            "REV=v9-g1234"], cwd=tmp, capture_output=True,
                           text=True, timeout=60)
        assert r.stdout.split() == [release(), "v9-g1234"], r.stdout
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_ready_line_carries_version(ternd):
    t = ternd()
    r = subprocess.run([str(TERND), "--version"], capture_output=True,
                       text=True, timeout=10)
    rev = r.stdout.split()[3]
    ready = [l for l in t.log().splitlines() if "event=ready" in l]
    assert ready, t.log()
    assert f" version={release()} rev={rev} " in ready[0], ready[0]
