"""Greylisting shared through PostgreSQL (docs/defence.md, "Greylisting"):
with tables.users = pgsql:..., the greylist (triplets, whitelisted
networks) lives in that database, so two ternd nodes on it agree; the
database failing or slow lets mail through (logged); a newer greylist
schema is refused; greylist.store = sqlite keeps one file per node."""

import re
import subprocess
import time

from conftest import SLOW, check, wait_for
from test_greylist import DELAY, GREY, RCPT, RCPT2, deferred, rcpt


def node(ternd, pg, state, store="auto", **kw):
    o = dict(GREY, **{"tables.users": pg.users_spec, "greylist.store": store})
    return ternd(o, state=state, **kw)


def two_nodes(ternd, pg, store="auto"):
    a = node(ternd, pg, "A", store)
    b = node(ternd, pg, "B", store, users=())      # the users are shared
    return a, b


def test_greylist_pgsql_two_nodes_share_triplets(postgres, ternd):
    a, b = two_nodes(ternd, postgres)
    assert deferred(rcpt(a, "a@remote.test")) == DELAY       # first on A
    time.sleep(DELAY + 1)
    # B never saw this triplet itself: it passes on what A recorded
    check(rcpt(b, "a@remote.test"), 250, None, "on B after the delay")
    assert len(b.messages(RCPT)) == 1
    assert "event=greylist_open store=pgsql" in b.log()
    assert "event=greylist result=pass net=127.0.0.0/24" in b.log()
    assert postgres.psql(
        "SELECT net || ' ' || sender || ' ' || rcpt FROM greylist_triplets") \
        == f"127.0.0.0/24 a@remote.test {RCPT}"
    assert postgres.psql("SELECT version FROM greylist_schema") == "1"
    for t in (a, b):
        assert not (t.state_dir / "greylist.db").exists()


def test_greylist_pgsql_auto_whitelist_seen_by_other_node(postgres, ternd):
    a, b = two_nodes(ternd, postgres)
    deferred(rcpt(a, "a@remote.test"))
    time.sleep(DELAY + 1)
    check(rcpt(a, "a@remote.test"), 250, None, "on A after the delay")
    # the /24 passed on A: B takes another sender and recipient at once
    check(rcpt(b, "other@elsewhere.test", RCPT2), 250, None,
          "whitelisted by A")
    assert "event=greylist result=known" in b.log()
    assert postgres.psql("SELECT net FROM greylist_clients") == "127.0.0.0/24"


def test_greylist_sqlite_store_is_per_node(postgres, ternd):
    """greylist.store = sqlite: each node its own STATE/greylist.db even
    with the tables in PostgreSQL, so B greylists what A let wait."""
    a, b = two_nodes(ternd, postgres, store="sqlite")
    assert deferred(rcpt(a, "a@remote.test")) == DELAY
    time.sleep(DELAY + 1)
    assert deferred(rcpt(b, "a@remote.test")) == DELAY
    check(rcpt(a, "a@remote.test"), 250, None, "on A after the delay")
    for t in (a, b):
        assert (t.state_dir / "greylist.db").exists()
        assert "event=greylist_open store=sqlite" in t.log()
    assert postgres.psql("SELECT count(*) FROM pg_tables WHERE "
                         "tablename LIKE 'greylist%'") == "0"


def test_greylist_pgsql_failing_store_accepts_and_logs(postgres, ternd):
    """The greylist's statements failing (its table gone; the users are
    still found): the RCPT is accepted at once and the error logged;
    greylisting resumes when the table is back."""
    t = node(ternd, postgres, "A")
    deferred(rcpt(t, "a@remote.test"))
    postgres.psql("ALTER TABLE greylist_triplets RENAME TO gone")
    try:
        for sender in ("b@remote.test", "c@remote.test"):
            start = time.monotonic()
            check(rcpt(t, sender), 250, None, "greylist failing")
            assert time.monotonic() - start < 2 * SLOW
        assert re.search(r"event=greylist result=error action=accept "
                         r"error=\"pgsql 127\.0\.0\.1:\d+/tern: triplet: "
                         r"relation \\x22greylist_triplets\\x22 does not "
                         r"exist\"", t.log()), t.log()[-2000:]
    finally:
        postgres.psql("ALTER TABLE gone RENAME TO greylist_triplets")
    assert t.proc.poll() is None
    deferred(rcpt(t, "d@remote.test", RCPT2))


def warm_lookup_threads(t, pg, threads=4):
    """Make each of ternd's lookup threads open its own connection to the
    tables (they connect at their first lookup): with users locked, each
    RCPT holds one thread while the next one takes another."""
    apps = ("SELECT count(*) FROM pg_stat_activity WHERE "
            "application_name = 'tern'")
    holder = pg.psql_background("BEGIN; LOCK TABLE users IN ACCESS "
                                "EXCLUSIVE MODE; SELECT pg_sleep(3); COMMIT;")
    clients = []
    try:
        wait_for(lambda: pg.psql("SELECT count(*) FROM pg_locks WHERE "
                                 "relation = 'users'::regclass AND "
                                 "granted") != "0", "the lock on users")
        for _ in range(threads):
            c = t.client(timeout=10 * SLOW).__enter__()
            clients.append(c)
            c.ehlo("client.test")
            c.expect("MAIL FROM:<warm@remote.test>", 250)
            c.send(f"RCPT TO:<{RCPT}>\r\n")
        # the opening one plus one per thread
        wait_for(lambda: int(pg.psql(apps)) >= threads + 1,
                 "a table connection per lookup thread")
    finally:
        holder.wait(timeout=30)
        for c in clients:
            c.reply(timeout=10 * SLOW)
            c.__exit__(None, None, None)


def test_greylist_pgsql_unreachable_accepts_and_logs(postgres, ternd):
    """The greylist's connection lost and the database refusing new ones,
    while the users are still found on the tables' open connections: the
    RCPT is accepted at once, the error logged; greylisting resumes by
    itself when the database takes connections again."""
    t = node(ternd, postgres, "A")
    deferred(rcpt(t, "a@remote.test"))
    warm_lookup_threads(t, postgres)
    postgres.psql("ALTER DATABASE tern ALLOW_CONNECTIONS false", db="postgres")
    try:
        postgres.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE application_name = 'tern-greylist'",
                      db="postgres")
        for sender in ("b@remote.test", "c@remote.test", "e@remote.test"):
            start = time.monotonic()
            check(rcpt(t, sender), 250, None, "greylist unreachable")
            assert time.monotonic() - start < 2 * SLOW
        assert re.search(r"event=greylist result=error action=accept "
                         r"error=\"pgsql 127\.0\.0\.1:\d+/tern: reconnect: ",
                         t.log()), t.log()[-2000:]
        assert "server unreachable, retrying in" in t.log()
    finally:
        postgres.psql("ALTER DATABASE tern ALLOW_CONNECTIONS true",
                      db="postgres")
    assert t.proc.poll() is None
    # after the 5 s pause ternd reconnects: a new triplet waits again
    deadline = time.monotonic() + 15 * SLOW
    while True:
        r = rcpt(t, "d@remote.test", RCPT2)
        if r.code == 451 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    deferred(r)


def test_greylist_pgsql_survives_database_restart(postgres, ternd):
    """PostgreSQL stopped: the users (same database) cannot be looked up,
    so RCPT is 451 4.3.0 (the table engine's rule) and ternd lives on;
    once it is back the greylist reconnects by itself and its rows are
    still there: the triplet deferred before passes."""
    t = node(ternd, postgres, "A")
    deferred(rcpt(t, "a@remote.test"))
    postgres.stop()
    check(rcpt(t, "a@remote.test"), 451, "4.3.0")
    assert t.proc.poll() is None
    postgres.start()
    time.sleep(DELAY + 1)
    deadline = time.monotonic() + 15 * SLOW
    while True:
        r = rcpt(t, "a@remote.test")
        if r.code != 451 or time.monotonic() > deadline:
            break
        check(r, 451, "4.3.0")          # the tables' retry pause
        time.sleep(0.5)
    check(r, 250, None, "after the restart")
    assert "event=greylist result=pass" in t.log()
    assert "event=greylist result=error" not in t.log(), t.log()[-2000:]


def test_greylist_pgsql_slow_database_accepts_and_logs(postgres, ternd):
    """A greylist table locked longer than statement_timeout (3 s): the
    RCPT waits that long (on a worker thread), then is accepted."""
    t = node(ternd, postgres, "A")
    deferred(rcpt(t, "a@remote.test"))
    holder = postgres.psql_background(
        "BEGIN; LOCK TABLE greylist_triplets IN ACCESS EXCLUSIVE MODE; "
        "SELECT pg_sleep(8); COMMIT;")
    try:
        wait_for(lambda: postgres.psql(
            "SELECT count(*) FROM pg_locks WHERE relation = "
            "'greylist_triplets'::regclass AND granted") != "0",
            "the lock on greylist_triplets")
        start = time.monotonic()
        with t.client(timeout=10 * SLOW) as slow:
            slow.ehlo("client.test")
            slow.expect("MAIL FROM:<b@remote.test>", 250)
            slow.send(f"RCPT TO:<{RCPT}>\r\n")
            # meanwhile the loop serves another session in full
            with t.client() as other:
                other.ehlo()
                other.expect("NOOP", 250)
                other.expect("QUIT", 221)
            check(slow.reply(timeout=10 * SLOW), 250, None, "timed out")
            slow.expect("QUIT", 221)
        assert 2.5 < time.monotonic() - start < 8, time.monotonic() - start
        # right after a timeout the database is not asked for 5 s: the
        # next RCPT is accepted at once instead of waiting 3 s again
        start = time.monotonic()
        check(rcpt(t, "c@remote.test"), 250, None, "slow pause")
        assert time.monotonic() - start < 1.5 * SLOW
        assert "a statement timed out, not asking for" in t.log()
        assert "canceling statement due to statement timeout" in t.log(), \
            t.log()[-2000:]
        assert "event=greylist result=error action=accept" in t.log()
    finally:
        holder.wait(timeout=30)


def test_greylist_pgsql_newer_schema_refused(postgres, ternd):
    t = node(ternd, postgres, "A")
    assert t.stop() == 0
    postgres.psql("UPDATE greylist_schema SET version = 2")
    p = subprocess.run(t.argv(), capture_output=True, timeout=30 * SLOW,
                       cwd=str(t.state_dir))
    assert p.returncode != 0, p
    log = p.stderr.decode()
    assert "greylist schema version 2 is newer than this tern knows (1)" \
        in log, log
    # the table engine's own version is another thing, untouched
    assert postgres.psql("SELECT version FROM tern_schema") == "1"
    postgres.psql("UPDATE greylist_schema SET version = 1")
    t.start()
    deferred(rcpt(t, "new@remote.test"))
