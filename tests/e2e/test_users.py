"""Users and aliases changed with `tern` are seen by a running ternd."""

import os
import sqlite3
import time

from conftest import SLOW, check

MSG = b"Subject: users test\r\n\r\nhello\r\n"


def rcpt_reply(t, rcpt):
    with t.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<claire@example.net>", 250)
        return c.cmd(f"RCPT TO:<{rcpt}>")


def deliver(t, rcpt, msg=MSG):
    rep = t.send_raw("claire@example.net", [rcpt], msg)
    check(rep, 250, what=f"end of data for {rcpt}")


def listing(t, *args):
    return t.tern(*args).stdout.decode()


def test_user_add_without_restart(ternd):
    t = ternd(users=("ben@example.org",))
    check(rcpt_reply(t, "newbie@example.org"), 550, "5.1.1")
    t.tern("user", "add", "newbie@example.org")
    assert "newbie@example.org" in listing(t, "user", "list")
    check(rcpt_reply(t, "newbie@example.org"), 250)
    deliver(t, "newbie@example.org")
    [d] = t.messages("newbie@example.org")
    assert d.body == MSG


def test_user_del(ternd):
    t = ternd(users=("ben@example.org", "claire@example.org"))
    check(rcpt_reply(t, "claire@example.org"), 250)
    t.tern("user", "del", "claire@example.org")
    out = listing(t, "user", "list")
    assert "claire@example.org" not in out and "ben@example.org" in out, out
    check(rcpt_reply(t, "claire@example.org"), 550, "5.1.1")
    check(rcpt_reply(t, "ben@example.org"), 250)


def test_alias_to_several_users(ternd):
    t = ternd()
    t.tern("alias", "add", "team@example.org", "ben@example.org",
           "claire@example.org", "dave@example.net")
    out = listing(t, "alias", "list")
    assert "team@example.org" in out, out
    deliver(t, "team@example.org")
    for u in ("ben@example.org", "claire@example.org", "dave@example.net"):
        [d] = t.messages(u)
        assert d.body == MSG
        assert d.return_path == "claire@example.net"
    assert t.files("team@example.org") == []

    # removing one target leaves the others
    t.tern("alias", "del", "team@example.org", "claire@example.org")
    deliver(t, "team@example.org")
    assert len(t.files("ben@example.org")) == 2
    assert len(t.files("claire@example.org")) == 1
    assert len(t.files("dave@example.net")) == 2

    # removing the alias: unknown again
    t.tern("alias", "del", "team@example.org")
    check(rcpt_reply(t, "team@example.org"), 550, "5.1.1")


def test_nested_alias_delivers_once(ternd):
    t = ternd()
    t.tern("alias", "add", "all@example.org", "ben@example.org", "devs@example.org")
    t.tern("alias", "add", "devs@example.org", "ben@example.org", "claire@example.org")
    deliver(t, "all@example.org")
    assert len(t.files("ben@example.org")) == 1, "duplicate target delivered twice"
    assert len(t.files("claire@example.org")) == 1


def test_catch_all(ternd):
    t = ternd()
    check(rcpt_reply(t, "anything@example.net"), 550, "5.1.1")
    t.tern("alias", "add", "@example.net", "ben@example.org")
    check(rcpt_reply(t, "anything@example.net"), 250)
    deliver(t, "anything@example.net")
    [d] = t.messages("ben@example.org")
    assert d.body == MSG
    # a real user of the domain still gets its own mail, not the catch-all
    deliver(t, "dave@example.net")
    assert len(t.messages("dave@example.net")) == 1
    assert len(t.messages("ben@example.org")) == 1
    # the catch-all is for its domain only
    check(rcpt_reply(t, "anything@example.org"), 550, "5.1.1")


def test_alias_loop_does_not_hang(ternd):
    """`tern alias add` refuses to close a loop; a loop that reaches the
    table anyway (another writer of the database) is refused at RCPT with
    550 5.4.6 at once, and the daemon goes on serving."""
    t = ternd()
    t.tern("alias", "add", "loop1@example.org", "loop2@example.org")
    r = t.tern("alias", "add", "loop2@example.org", "loop1@example.org",
               check=False)
    assert r.returncode != 0 and b"loop" in r.stderr, (r.returncode, r.stderr)
    with t.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<claire@example.net>", 250)
        # loop1 -> loop2, which is nobody: no mailbox, refused for good
        c.expect("RCPT TO:<loop1@example.org>", 550, "5.1.1")
    # close the loop behind tern's back, in the sqlite table itself
    db = sqlite3.connect(t.state_dir / "tern.db")
    with db:
        db.execute("INSERT INTO aliases(address, target) VALUES (?, ?)",
                   ("loop2@example.org", "loop1@example.org"))
    db.close()
    with t.client() as c:
        c.ehlo()
        c.expect("MAIL FROM:<claire@example.net>", 250)
        t0 = time.monotonic()
        for rcpt in ("loop1@example.org", "loop2@example.org"):
            c.expect(f"RCPT TO:<{rcpt}>", 550, "5.4.6", timeout=5 * SLOW)
        assert time.monotonic() - t0 < 3 * SLOW
        c.expect("VRFY x", 252)
        c.expect("RCPT TO:<ben@example.org>", 250)
    # and the daemon still serves others
    deliver(t, "ben@example.org")
    assert len(t.files("ben@example.org")) == 1


def test_user_with_own_maildir(ternd, world_tmp):
    """docs/design.md, "Contracts": a user's row may name another Maildir: tern user add
    --maildir puts it there (made at once), and mail lands in its new/."""
    # the sandbox lets ternd write there (docs/configuration.md, sandbox_write)
    t = ternd({"sandbox_write": str(world_tmp)}, users=("ben@example.org",))
    home = world_tmp / "home-ann"
    home.mkdir()
    os.chmod(home, 0o777)              # ternd's user makes the Maildir in it
    box = home / "Maildir"
    t.tern("user", "add", "ann@example.org", "--maildir", str(box))
    assert sorted(p.name for p in box.iterdir()) == ["cur", "new", "tmp"]
    deliver(t, "ann@example.org")
    [f] = list((box / "new").iterdir())
    assert f.read_bytes().endswith(MSG)
    assert t.files("ann@example.org") == []  # nothing under state_dir/mail
    for bad in ("relative/Maildir", "/tmp/../etc/x", "/tmp//x", "/tmp/x/"):
        r = t.tern("user", "add", "bad@example.org", "--maildir", bad, check=False)
        assert r.returncode != 0 and b"absolute path" in r.stderr, (bad, r)
        assert "bad@example.org" not in listing(t, "user", "list")
    r = t.tern("user", "passwd", "ben@example.org", "--maildir", "/x", check=False)
    assert r.returncode != 0
