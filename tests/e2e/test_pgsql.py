"""The PostgreSQL table engine (tables.users = pgsql:CONNINFO) end to end:
a private PostgreSQL (the `postgres` fixture), ternd and tern on it.
Lookups at RCPT, live changes, two nodes on one database, the schema,
a database that goes away and comes back, AUTH, an unreachable server."""

import base64
import contextlib
import re
import subprocess
import time

from conftest import (DEFAULT_USERS, PASSWORD, SLOW, check, free_port,
                      submit_ternd, wait_for)

MSG = b"Subject: pgsql\r\nFrom: a@remote.test\r\n\r\nstored in PostgreSQL\r\n"


def pg_ternd(ternd, pg, overrides=None, **kw):
    o = {"tables.users": pg.users_spec}
    o.update(overrides or {})
    return ternd(o, **kw)


def rcpt(t, address):
    """The reply to RCPT TO:<address> in a fresh transaction."""
    with t.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@remote.test>", 250)
        r = c.cmd(f"RCPT TO:<{address}>")
        c.expect("QUIT", 221)
        return r


def delivered(t, address, n=1):
    return wait_for(lambda: len(t.files(address)) >= n,
                    f"{n} message(s) in the Maildir of {address}")


def test_pgsql_lookups_and_delivery(postgres, ternd):
    t = pg_ternd(ternd, postgres)
    # the fixture's "tern user add" went to PostgreSQL, not to a tern.db
    assert postgres.psql("SELECT address FROM users ORDER BY address") == \
        "\n".join(sorted(DEFAULT_USERS))
    assert not (t.state_dir / "tern.db").exists()
    check(rcpt(t, "ben@example.org"), 250, "2.1.5")
    check(rcpt(t, "Ben@EXAMPLE.org"), 250, "2.1.5")
    check(rcpt(t, "nobody@example.org"), 550, "5.1.1")
    check(rcpt(t, "ben@other.test"), 554, "5.7.1")
    rep = t.send_raw("a@remote.test", ["ben@example.org"], MSG)
    check(rep, 250)
    delivered(t, "ben@example.org")
    assert (t.state_dir / "mail/example.org/ben/new").is_dir()
    [d] = t.messages("ben@example.org")
    assert d.body == MSG
    # administration behaves as with SQLite: sorted list, duplicates refused
    out = t.tern("user", "list").stdout.decode()
    assert [ln.split()[0] for ln in out.splitlines()] == sorted(DEFAULT_USERS), out
    r = t.tern("user", "add", "BEN@example.org", check=False)
    assert r.returncode != 0 and b"already exists" in r.stderr, r
    r = t.tern("user", "del", "nobody@example.org", check=False)
    assert r.returncode != 0 and b"no such user" in r.stderr, r


def test_pgsql_live_changes(postgres, ternd):
    t = pg_ternd(ternd, postgres)
    check(rcpt(t, "eve@example.org"), 550, "5.1.1")
    t.tern("user", "add", "eve@example.org")
    check(rcpt(t, "eve@example.org"), 250, "2.1.5")
    check(rcpt(t, "info@example.org"), 550, "5.1.1")
    t.tern("alias", "add", "info@example.org", "ben@example.org")
    t.tern("alias", "add", "info@example.org", "eve@example.org")
    check(rcpt(t, "info@example.org"), 250, "2.1.5")
    check(t.send_raw("a@remote.test", ["info@example.org"], MSG), 250)
    delivered(t, "ben@example.org")
    delivered(t, "eve@example.org")
    out = t.tern("alias", "list").stdout.decode()
    assert "info@example.org" in out and "eve@example.org" in out, out
    t.tern("alias", "del", "info@example.org")
    check(rcpt(t, "info@example.org"), 550, "5.1.1")
    t.tern("user", "del", "eve@example.org")
    check(rcpt(t, "eve@example.org"), 550, "5.1.1")
    assert postgres.psql("SELECT count(*) FROM aliases") == "0"


def test_pgsql_two_nodes_share_users(postgres, ternd):
    a = pg_ternd(ternd, postgres, state="A")
    b = pg_ternd(ternd, postgres, state="B", users=())
    for t in (a, b):
        check(rcpt(t, "claire@example.org"), 250, "2.1.5")
        check(rcpt(t, "zoe@example.org"), 550, "5.1.1")
    a.tern("user", "add", "zoe@example.org")          # on node A
    for t in (a, b):
        check(rcpt(t, "zoe@example.org"), 250, "2.1.5")
    b.tern("alias", "add", "@example.net", "zoe@example.org")   # on node B
    check(a.send_raw("a@remote.test", ["anyone@example.net"], MSG), 250)
    delivered(a, "zoe@example.org")
    b.tern("user", "del", "zoe@example.org")
    check(rcpt(a, "zoe@example.org"), 550, "5.1.1")
    assert b.tern("user", "list").stdout == a.tern("user", "list").stdout


def test_pgsql_schema_created_and_reused(postgres, ternd):
    assert postgres.psql("SELECT count(*) FROM pg_tables WHERE "
                         "schemaname = 'public'") == "0"
    # example.net is no configured domain: only the tables can make it local
    t = pg_ternd(ternd, postgres, {"domains": "example.org"},
                 users=("ben@example.org",))
    assert postgres.psql("SELECT version FROM tern_schema") == "1"
    assert postgres.psql(
        "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables "
        "WHERE schemaname = 'public'") == "aliases,domains,tern_schema,users"
    plan = postgres.psql(
        "SET enable_seqscan = off; EXPLAIN SELECT 1 FROM users "
        "WHERE split_part(address, '@', 2) = 'example.net'")
    assert "users_domain" in plan, plan
    check(rcpt(t, "dave@example.net"), 554, "5.7.1")
    postgres.psql("INSERT INTO users(address) VALUES ('dave@example.net')")
    check(rcpt(t, "dave@example.net"), 250, "2.1.5")
    check(rcpt(t, "nobody@example.net"), 550, "5.1.1")
    check(t.send_raw("a@remote.test", ["dave@example.net"], MSG), 250)
    delivered(t, "dave@example.net")
    # a domain row alone makes a domain local too
    check(rcpt(t, "postmaster@example.com"), 554, "5.7.1")
    postgres.psql("INSERT INTO domains(name) VALUES ('example.com')")
    check(rcpt(t, "postmaster@example.com"), 250, "2.1.5")
    # a restart reuses the schema and its rows
    assert t.stop() == 0
    t.start()
    check(rcpt(t, "dave@example.net"), 250, "2.1.5")
    assert postgres.psql("SELECT count(*) FROM tern_schema") == "1"


def test_pgsql_newer_schema_refused(postgres, ternd):
    t = pg_ternd(ternd, postgres, start=False)
    postgres.psql("UPDATE tern_schema SET version = 2")
    r = t.tern("user", "list", check=False)
    assert r.returncode != 0, r
    assert b"schema version 2 is newer than this tern knows (1)" in r.stderr, r
    postgres.psql("UPDATE tern_schema SET version = 1")
    t.tern("user", "list")


def test_pgsql_database_down_is_temporary(postgres, ternd):
    secret = "NotInAnyLog-42"
    spec = f"pgsql:{postgres.conninfo} password={secret}"   # trust: unused
    t = ternd({"tables.users": spec})
    check(rcpt(t, "ben@example.org"), 250, "2.1.5")
    postgres.stop()
    for _ in range(2):     # the broken connection, then a refused reconnect
        check(rcpt(t, "ben@example.org"), 451, "4.3.0")
    assert t.proc.poll() is None, "ternd exited when the database went away"
    # the admin sees why in the log; the client only gets 451
    assert re.search(r"event=table_error error=\"pgsql 127\.0\.0\.1:\d+/tern: ", t.log()), \
        t.log()[-2000:]
    postgres.start()
    # after a failed reconnect ternd waits 5 s before trying the server
    # again (lookups fail fast meanwhile, so the event loop never stalls)
    deadline = time.monotonic() + 15 * SLOW
    while True:
        r = rcpt(t, "ben@example.org")
        if r.code == 250 or time.monotonic() > deadline:
            break
        check(r, 451, "4.3.0")
        time.sleep(0.5)
    check(r, 250, "2.1.5")
    check(rcpt(t, "nobody@example.org"), 550, "5.1.1")
    check(t.send_raw("a@remote.test", ["ben@example.org"], MSG), 250)
    delivered(t, "ben@example.org")
    assert secret not in t.log()


def test_pgsql_slow_lookup_delays_only_its_session(postgres, ternd):
    """A lookup waiting on the database waits on a lookup thread, not on
    the event loop: a new session is served in full meanwhile, and the
    waiting RCPT gets its answer when the database gives it."""
    t = pg_ternd(ternd, postgres)
    check(rcpt(t, "ben@example.org"), 250, "2.1.5")
    locks = "SELECT count(*) FROM pg_locks WHERE relation = 'users'::regclass AND "
    holder = postgres.psql_background(
        "BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE; "
        "SELECT pg_sleep(4); COMMIT;")
    try:
        wait_for(lambda: postgres.psql(locks + "granted AND mode = "
                                         "'AccessExclusiveLock'") == "1",
                 "the lock on users")
        with t.client() as slow:
            slow.ehlo()
            slow.expect("MAIL FROM:<a@remote.test>", 250)
            slow.send("RCPT TO:<ben@example.org>\r\n")
            # ternd's lookup now queues behind the lock
            wait_for(lambda: postgres.psql(locks + "NOT granted") != "0",
                     "ternd's lookup waiting for the lock")
            with t.client() as other:
                other.ehlo()
                other.expect("NOOP", 250)
                other.expect("QUIT", 221)
            assert holder.poll() is None, \
                "the lock went away before the other session was served"
            check(slow.reply(timeout=15 * SLOW), 250, "2.1.5")
            slow.expect("QUIT", 221)
    finally:
        holder.wait(timeout=30)
    assert holder.returncode == 0, holder.stderr.read()


def test_pgsql_lookups_that_waited_too_long_are_not_asked(postgres, ternd):
    """The users table locked: each of the 4 lookup threads waits up to the
    5 s statement timeout per question.  16 RCPTs at once: the first 8 are
    asked (451 after the timeout), the last 8 have waited over 8 s for a
    thread by then and get their 451 without being asked, instead of
    piling more work on the database."""
    t = pg_ternd(ternd, postgres)
    check(rcpt(t, "ben@example.org"), 250, "2.1.5")
    holder = postgres.psql_background(
        "BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE; "
        "SELECT pg_sleep(60); COMMIT;")
    try:
        wait_for(lambda: postgres.psql(
            "SELECT count(*) FROM pg_locks WHERE relation = 'users'::regclass "
            "AND granted AND mode = 'AccessExclusiveLock'") == "1",
            "the lock on users")
        with contextlib.ExitStack() as stack:
            clients = [stack.enter_context(t.client()) for _ in range(16)]
            for c in clients:
                c.ehlo()
                c.expect("MAIL FROM:<a@remote.test>", 250)
            for c in clients:
                c.send("RCPT TO:<ben@example.org>\r\n")
            for c in clients:
                check(c.reply(timeout=40 * SLOW), 451, "4.3.0")
        assert holder.poll() is None, "the lock went away: nothing was proven"
    finally:
        postgres.psql("SELECT pg_cancel_backend(pid) FROM pg_stat_activity "
                      "WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()")
        holder.wait(timeout=30)
    log = t.log()
    skipped = log.count("not asked: waited ")
    assert 1 <= skipped <= 12, log[-3000:]
    assert log.count("event=table_error") == 16, log[-3000:]
    # the database is back: lookups work again
    check(rcpt(t, "ben@example.org"), 250, "2.1.5")


def test_pgsql_down_during_submission_is_temporary(postgres, ternd):
    """RFC 4954 6: AUTH that cannot read the users table is 454 4.7.0 (not
    535, which would count against the client); the sender check at MAIL
    is 451 4.3.0 (not 553)."""
    t = submit_ternd(ternd, {"tables.users": postgres.users_spec})
    good = base64.b64encode(f"\0claire@example.org\0{PASSWORD}".encode())
    with t.sub_client() as c:
        c.expect(f"AUTH PLAIN {good.decode()}", 235, "2.7.0")
        postgres.stop()
        # another user's address: only the table can say it is hers
        c.expect("MAIL FROM:<ben@example.org>", 451, "4.3.0")
        c.expect("MAIL FROM:<claire@example.org>", 250)
    with t.sub_client() as c:
        c.expect(f"AUTH PLAIN {good.decode()}", 454, "4.7.0")
        c.expect("QUIT", 221)
    log = t.log()
    assert "event=table_error step=auth" in log, log[-2000:]
    assert "event=table_error step=sender" in log, log[-2000:]
    assert "event=auth_failed" not in log, log[-2000:]


def test_pgsql_auth(postgres, ternd):
    t = submit_ternd(ternd, {"tables.users": postgres.users_spec})
    assert postgres.psql("SELECT count(*) FROM users WHERE password "
                         "LIKE '$%'") == str(len(DEFAULT_USERS))
    good = base64.b64encode(f"\0claire@example.org\0{PASSWORD}".encode())
    bad = base64.b64encode(b"\0claire@example.org\0wrong")
    with t.sub_client() as c:
        c.expect(f"AUTH PLAIN {bad.decode()}", 535, "5.7.8")
    with t.sub_client() as c:
        c.expect(f"AUTH PLAIN {good.decode()}", 235, "2.7.0")
        c.expect("MAIL FROM:<claire@example.org>", 250)
        c.expect("RCPT TO:<ben@example.org>", 250)
        c.expect("DATA", 354)
        c.send(b"Subject: hi\r\nFrom: claire@example.org\r\n\r\nhello\r\n.\r\n")
        check(c.reply(), 250)
        c.expect("QUIT", 221)
    delivered(t, "ben@example.org")


def test_pgsql_unreachable_is_a_clear_error(ternd):
    port = free_port()        # nobody listens there
    spec = (f"pgsql:host=127.0.0.1 port={port} dbname=tern user=tern "
            f"password=s3cr3t-pw")
    t = ternd({"tables.users": spec}, users=(), start=False)
    r = t.tern("user", "list", check=False)
    err = r.stderr.decode()
    assert r.returncode != 0, r
    assert f"pgsql 127.0.0.1:{port}/tern: connect: " in err, err
    assert "Connection refused" in err, err
    assert "password=" not in err and "s3cr3t" not in err, err
    # ternd refuses to start, with the same reason
    p = subprocess.run(t.argv(), capture_output=True, timeout=30,
                       cwd=str(t.state_dir))
    assert p.returncode != 0, p
    log = p.stderr.decode()
    assert "Connection refused" in log and "s3cr3t" not in log, log
