"""A format newer than this ternd reads is refused, never misread
(issue 18 item 3; docs/formats.md).

For each durable format: ternd writes it, stops; the test raises the
version the way a newer tern would write it; ternd must then refuse to
start (exit status not 0) with an error that names the file, the version
found and the highest this binary reads, and leave the file exactly as it
was.  Then the version is put back and ternd starts on the same state, so
the refusal damaged nothing.
"""
import hashlib
import re
import sqlite3
import struct
import subprocess
from pathlib import Path

import qlog
from conftest import REPO, free_port, wait_for

RCPT = "rcpt@remote.example"
# the newest envelope version this build reads (REQUIRETLS may raise it)
ENV_MAX = int(re.search(r"#define QUEUE_ENV_VERSION\s+(\d+)",
                        (REPO / "src/queue/queue.h").read_text()).group(1))
ENV_NEWER = ENV_MAX + 1
assert ENV_NEWER < 10       # the tests rewrite one digit in place


def digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def tree(d):
    """{relative path: sha256} of every file beneath d."""
    d = Path(d)
    return {str(p.relative_to(d)): digest(p)
            for p in sorted(d.rglob("*")) if p.is_file()}


def refused(t, *needles):
    """Start t's ternd (argv as configured); it must exit non-zero, and
    its output holds every needle.  Returns the output."""
    r = subprocess.run(t.argv(), capture_output=True, timeout=30,
                       cwd=str(t.state_dir), stdin=subprocess.DEVNULL)
    out = (r.stdout + r.stderr).decode(errors="replace")
    assert r.returncode != 0, f"ternd started on a newer format:\n{out[-3000:]}"
    for n in needles:
        assert n in out, f"{n!r} not in:\n{out[-3000:]}"
    return out


def set_user_version(path, v):
    db = sqlite3.connect(str(path))
    try:
        db.execute(f"PRAGMA user_version = {int(v)}")
        db.commit()
    finally:
        db.close()


def user_version(path):
    db = sqlite3.connect(str(path))
    try:
        return db.execute("PRAGMA user_version").fetchone()[0]
    finally:
        db.close()


def sqlite_case(t, name, current):
    """STATE/name at user_version current + 1: refused, untouched; back
    at current: ternd starts."""
    path = Path(t.state_dir) / name
    assert user_version(path) == current
    set_user_version(path, current + 1)
    before = digest(path)
    refused(t, str(path), f"schema version {current + 1} is newer",
            f"({current})")
    assert digest(path) == before
    assert user_version(path) == current + 1
    set_user_version(path, current)
    t.start()


def test_users_db_newer_refused(ternd):
    t = ternd()
    assert t.stop() == 0
    sqlite_case(t, "tern.db", 1)
    # tern (the CLI) refuses it too, with the same words
    t.stop()
    path = Path(t.state_dir) / "tern.db"
    set_user_version(path, 2)
    r = t.tern("user", "list", check=False)
    assert r.returncode != 0
    assert b"schema version 2 is newer" in r.stderr, r.stderr
    assert user_version(path) == 2
    set_user_version(path, 1)
    t.start()


def test_greylist_db_newer_refused(ternd):
    t = ternd({"greylist.enable": "yes"})
    assert t.stop() == 0
    sqlite_case(t, "greylist.db", 1)


def test_dmarc_db_newer_refused(ternd):
    t = ternd({"dmarc.reports": "yes"})
    assert t.stop() == 0
    sqlite_case(t, "dmarc.db", 1)


def queued_ternd(ternd, log):
    """A ternd holding one message for a next hop that is down."""
    t = ternd({"relay.networks": "127.0.0.1/32",
               "relay.smarthost": f"127.0.0.1:{free_port()}",
               "queue.retry_first": "600",
               "queue.log": "yes" if log else "no"})
    rep = t.send_raw("claire@example.net", [RCPT],
                     b"Subject: formats\r\n\r\nbody\r\n")
    assert rep.code == 250, rep
    qid = re.search(r"queued as ([0-9a-f]{16})", rep.text).group(1)
    wait_for(lambda: "event=deferred" in t.log(), "the first attempt")
    assert t.stop() == 0
    return t, qid


def test_queue_segment_newer_refused(ternd):
    t, qid = queued_ternd(ternd, log=True)
    q = Path(t.state_dir) / "queue"
    seg = sorted((q / "seg").iterdir())[-1]
    b = bytearray(seg.read_bytes())
    struct.pack_into("<I", b, 8, 2)
    struct.pack_into("<I", b, 28, qlog.crc32c(bytes(b[:28])))
    seg.write_bytes(bytes(b))
    before = tree(q)
    refused(t, f"queue/seg/{seg.name}", "segment format version 2",
            "reads version 1 only")
    assert tree(q) == before
    struct.pack_into("<I", b, 8, 1)
    struct.pack_into("<I", b, 28, qlog.crc32c(bytes(b[:28])))
    seg.write_bytes(bytes(b))
    t.start()
    assert [m["id"] for m in t.queue_list()] == [qid]


def rewrite_log_envelopes(q, qid, old, new):
    """Every record of qid that carries an envelope: its first line old ->
    new (same length), the record's checksum made again."""
    n = 0
    for seg in sorted((q / "seg").iterdir()):
        b = bytearray(seg.read_bytes())
        off = qlog.SEG_HEAD
        while off + 8 <= len(b):
            body, _ = struct.unpack_from("<II", b, off)
            if body == 0:
                break
            typ, _, _, rid = struct.unpack_from("<BBHQ", b, off + 8)
            env = off + 8 + (16 if typ == qlog.MSG else 12)
            if f"{rid:016x}" == qid and typ in (qlog.MSG, qlog.ENV):
                assert b[env:env + len(old)] == old
                b[env:env + len(old)] = new
                struct.pack_into("<I", b, off + 4,
                                 qlog.crc32c(bytes(b[off + 8:off + 8 + body])))
                n += 1
            off += 8 + body
        seg.write_bytes(bytes(b))
    assert n >= 1
    return n


def test_queue_envelope_in_log_newer_refused(ternd):
    t, qid = queued_ternd(ternd, log=True)
    q = Path(t.state_dir) / "queue"
    newer = f"V {ENV_NEWER}\n".encode()
    rewrite_log_envelopes(q, qid, b"V 1\n", newer)
    before = tree(q)
    refused(t, f"message {qid}", f"envelope version {ENV_NEWER} is newer "
            f"than this tern reads ({ENV_MAX})")
    assert tree(q) == before
    assert not list((q / "corrupt").iterdir())
    rewrite_log_envelopes(q, qid, newer, b"V 1\n")
    t.start()
    assert [m["id"] for m in t.queue_list()] == [qid]


def test_queue_envelope_file_newer_refused(ternd):
    """The queue of files (queue.log = no), and the log's take-over of
    one (queue.log = yes): both refuse, neither moves it to corrupt/."""
    t, qid = queued_ternd(ternd, log=False)
    q = Path(t.state_dir) / "queue"
    env = q / "env" / qid
    text = env.read_bytes()
    assert text.startswith(b"V 1\n")
    env.write_bytes(f"V {ENV_NEWER}\n".encode() + text[4:])
    before = tree(q)
    for log in ("no", "yes"):
        t.overrides["queue.log"] = log
        refused(t, f"queue/env/{qid}", f"envelope version {ENV_NEWER} is "
                f"newer than this tern reads ({ENV_MAX})")
        assert tree(q) == before, log
        assert not (q / "seg").exists() or not list((q / "seg").iterdir())
    env.write_bytes(text)
    t.overrides["queue.log"] = "no"
    t.start()
    assert [m["id"] for m in t.queue_list()] == [qid]


def test_screen_cache_newer_refused(ternd):
    t = ternd({"screen.greet_pause": "1s"})
    assert t.stop() == 0
    path = Path(t.state_dir) / "screen.cache"
    assert path.read_bytes().startswith(b"tern-screen-cache 1\n")
    path.write_bytes(b"tern-screen-cache 2\nsomething a newer tern keeps\n")
    before = digest(path)
    refused(t, str(path), "verdict file version 2",
            "reads version 1 only")
    assert digest(path) == before
    # not ours at all: ignored as before (a cache), replaced at the stop
    path.write_bytes(b"# notes\n")
    t.start()
    assert "event=screen_cache_load" in t.log()
    assert t.stop() == 0
    assert path.read_bytes().startswith(b"tern-screen-cache 1\n")


def test_pgsql_schemas_newer_refused(ternd, postgres):
    """The PostgreSQL tables (tern_schema) and greylist
    (greylist_schema) carry their version in a table: one newer is
    refused at start, and the row is left as it was."""
    t = ternd({"tables.users": postgres.users_spec,
               "greylist.enable": "yes"})
    assert t.stop() == 0
    for table, what in (("tern_schema", "schema version 2 is newer"),
                        ("greylist_schema",
                         "greylist schema version 2 is newer")):
        assert postgres.psql(f"SELECT version FROM {table}") == "1"
        postgres.psql(f"UPDATE {table} SET version = 2")
        refused(t, f"127.0.0.1:{postgres.port}/tern", what, "(1)")
        assert postgres.psql(f"SELECT version FROM {table}") == "2"
        postgres.psql(f"UPDATE {table} SET version = 1")
    t.start()


def test_state_versions_newer_refused(ternd):
    """STATE/versions holds the version of the formats that have no place
    for one (DKIM key store, srs.key, the TLS pair).  Absent: all at 1
    (every other test).  A newer one stops ternd and tern dkim."""
    t = ternd()
    t.tern("dkim", "keygen", "example.org", "--algorithm", "ed25519")
    assert t.stop() == 0
    path = Path(t.state_dir) / "versions"
    for name in ("dkim", "srs.key", "tls"):
        path.write_text(f"tls 1\n{name} 2\n")
        before = tree(t.state_dir)
        refused(t, str(path), f"format {name} is at version 2, this tern "
                "reads version 1 only")
        assert tree(t.state_dir) == before
    path.write_text("dkim 2\n")
    r = t.tern("dkim", "list", check=False)
    assert r.returncode != 0 and b"format dkim is at version 2" in r.stderr, r
    # what this tern writes and reads: version 1, and formats it does not
    # read at all are no reason to stop
    path.write_text("dkim 1\nsrs.key 1\ntls 1\nsomething-newer 4\n")
    t.start()
    assert "event=dkim_keys domains=1 keys=1" in t.log()
