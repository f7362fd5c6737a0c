/*
 * test_table: the table module on a SQLite file in a temporary directory.
 * Users, aliases (one to many, nested, catch-all, loops, depth), the
 * postmaster rule, bare <Postmaster>, case-insensitivity, local and
 * non-local domains, refused addresses, and a change made through one
 * handle seen at once through another (as tern and ternd do).  The
 * pgsql engine only as far as a server that is not there (the e2e tests
 * run it against a real PostgreSQL: tests/e2e/test_pgsql.py).
 */
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "table/table.h"
#include "t.h"

static char tmpdir[PATH_MAX];
static char dbpath[PATH_MAX + 32];
static struct conf *conf;
static struct table *tab;

/* Run SQL on the database file behind the module's back. */
static void
raw_sql(const char *sql)
{
	sqlite3 *db;
	char *msg = NULL;

	if (sqlite3_open(dbpath, &db) != SQLITE_OK)
		abort();
	sqlite3_busy_timeout(db, 2000);
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		fprintf(stderr, "raw_sql: %s: %s\n", sql, msg);
		abort();
	}
	sqlite3_close(db);
}

static long long
raw_int(const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *s;
	long long v = -1;

	if (sqlite3_open(dbpath, &db) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		abort();
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

static const char *
raw_text(const char *sql)
{
	static char out[256];
	sqlite3 *db;
	sqlite3_stmt *s;

	out[0] = '\0';
	if (sqlite3_open(dbpath, &db) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		abort();
	if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0) != NULL)
		snprintf(out, sizeof(out), "%s", sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	sqlite3_close(db);
	return out;
}

/*
 * Resolve path ("<x@y>" or "<Postmaster>") through t; returns the status
 * and writes "address=mailbox" (local) or "address" (remote) items joined
 * by ' ' into got, in the order found.
 */
static enum table_status
resolve(struct table *t, const char *path, char *got, size_t gotlen)
{
	struct table_targets tt = {0};
	struct addr a;
	size_t used, i, len = 0;
	enum table_status st;

	got[0] = '\0';
	if (addr_parse_path(path, strlen(path),
		ADDR_F_ALLOW_POSTMASTER | ADDR_F_ALLOW_NULL | ADDR_F_UTF8, &a,
		&used) != ADDR_OK)
		return (enum table_status) - 1;
	st = table_resolve(t, &a, &tt);
	for (i = 0; i < tt.n; i++) {
		int r = snprintf(got + len, gotlen - len, "%s%s%s%s%s%s",
		    i ? " " : "", tt.v[i].address, tt.v[i].local ? "=" : "",
		    tt.v[i].local ? tt.v[i].mailbox : "",
		    tt.v[i].folder[0] ? "/" : "", tt.v[i].folder);

		if (r < 0 || (size_t)r >= gotlen - len)
			break;
		len += (size_t)r;
	}
	if (st != TABLE_OK)
		T_CHECK_INT(tt.n, 0);
	table_targets_free(&tt);
	return st;
}

#define CHECK_RESOLVE(path, want_st, want)                                     \
	do {                                                                   \
		char got_[4096];                                               \
		T_CHECK_INT(resolve(tab, path, got_, sizeof(got_)), want_st);  \
		T_CHECK_STR(got_, want);                                       \
	} while (0)

static void
test_open_schema(void)
{
	struct stat st;

	T_CHECK(tab != NULL);
	T_CHECK_INT(raw_int("PRAGMA user_version"), 1);
	T_CHECK_STR(raw_text("PRAGMA journal_mode"), "wal");
	T_CHECK_INT(
	    raw_int(
		"SELECT count(*) FROM sqlite_master WHERE "
		"type = 'table' AND name IN ('users', 'aliases', 'domains')"),
	    3);
	T_CHECK(stat(dbpath, &st) == 0 && (st.st_mode & 077) == 0);
	/* a local file: ternd asks it on its event loop */
	T_CHECK(!table_is_remote(tab));
}

/* A loopback port that refuses connections: bound, never listening. */
static int
closed_port(int *fd_out)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
		abort();
	*fd_out = fd;
	return ntohs(sa.sin_port);
}

/* pgsql: a server that is not there fails the open at once, with a
 * message naming host and port but never the password. */
static void
test_pgsql_and_bad_engine(void)
{
	char ov0[160], *ov[1] = {ov0};
	char err[512] = "", want[64];
	struct conf *c;
	int fd, port = closed_port(&fd);

	snprintf(ov0, sizeof(ov0),
	    "tables.users=pgsql:host=127.0.0.1 port=%d dbname=tern "
	    "user=tern password=s3cr3t",
	    port);
	c = conf_load(NULL, ov, 1, err, sizeof(err));
	T_CHECK(c != NULL);
	if (c == NULL)
		return;
	T_CHECK(table_open(c, err, sizeof(err)) == NULL);
	close(fd);
	snprintf(
	    want, sizeof(want), "pgsql 127.0.0.1:%d/tern: connect: ", port);
	T_CHECK(strncmp(err, want, strlen(want)) == 0);
	T_CHECK(strstr(err, "s3cr3t") == NULL);
	T_CHECK(strstr(err, "password") == NULL);
	free(c->tables_users);
	/* a regular file where a directory should be */
	{
		char spec[PATH_MAX + 64];
		FILE *f;

		snprintf(spec, sizeof(spec), "%s/plainfile", tmpdir);
		if ((f = fopen(spec, "w")) == NULL || fclose(f) != 0)
			abort();
		snprintf(spec, sizeof(spec), "sqlite:%s/plainfile/sub/tern.db",
		    tmpdir);
		c->tables_users = strdup(spec);
	}
	T_CHECK(table_open(c, err, sizeof(err)) == NULL);
	T_CHECK(err[0] != '\0');
	conf_free(c);
}

static void
test_users(void)
{
	char hash[256];

	T_CHECK_INT(table_user_add(tab, "ben@example.org", NULL), TABLE_OK);
	T_CHECK_INT(
	    table_user_add(tab, "Claire@Example.ORG", "$y$hash"), TABLE_OK);
	T_CHECK_INT(table_user_add(tab, "dave@example.net", NULL), TABLE_OK);
	T_CHECK_INT(table_user_add(tab, "BEN@example.org", NULL), TABLE_EXISTS);
	T_CHECK(strstr(table_strerror(tab), "already exists") != NULL);
	T_CHECK_INT(raw_int("SELECT count(*) FROM users WHERE address = "
			    "'claire@example.org' AND created > 0"),
	    1);

	t_case("pwhash");
	T_CHECK_INT(
	    table_user_pwhash(tab, "claire@example.org", hash, sizeof(hash)),
	    TABLE_OK);
	T_CHECK_STR(hash, "$y$hash");
	T_CHECK_INT(
	    table_user_pwhash(tab, "ben@example.org", hash, sizeof(hash)),
	    TABLE_NOTFOUND);
	T_CHECK_INT(
	    table_user_pwhash(tab, "nobody@example.org", hash, sizeof(hash)),
	    TABLE_NOTFOUND);
	T_CHECK_INT(
	    table_user_pwhash(tab, "not an address", hash, sizeof(hash)),
	    TABLE_NOTFOUND);
	T_CHECK_INT(table_user_pwhash(tab, "claire@example.org", hash, 4),
	    TABLE_TEMPFAIL);

	t_case("passwd");
	T_CHECK_INT(
	    table_user_passwd(tab, "BEN@EXAMPLE.ORG", "$y$b"), TABLE_OK);
	T_CHECK_INT(
	    table_user_pwhash(tab, "ben@example.org", hash, sizeof(hash)),
	    TABLE_OK);
	T_CHECK_STR(hash, "$y$b");
	T_CHECK_INT(table_user_passwd(tab, "ben@example.org", NULL), TABLE_OK);
	T_CHECK_INT(
	    table_user_pwhash(tab, "ben@example.org", hash, sizeof(hash)),
	    TABLE_NOTFOUND);
	T_CHECK_INT(
	    table_user_passwd(tab, "ghost@example.org", "x"), TABLE_NOTFOUND);
}

static void
test_bad_addresses(void)
{
	static const char *const bad[] = {
	    "no-at-sign",
	    "a/b@example.org",
	    "\"a/b\"@example.org",
	    "\".hidden\"@example.org",
	    "\"..\"@example.org",
	    "\"a@b\"@example.org",
	    "x@[192.0.2.1]",
	    "@example.org",
	    "x@",
	    "x@bad..example",
	    "",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		t_case(bad[i]);
		T_CHECK_INT(table_user_add(tab, bad[i], NULL), TABLE_INVALID);
		T_CHECK(strlen(table_strerror(tab)) > 0);
	}
	t_case("path message");
	T_CHECK_INT(
	    table_user_add(tab, "\"../etc\"@example.org", NULL), TABLE_INVALID);
	T_CHECK(strstr(table_strerror(tab), "cannot contain '/'") != NULL);
	t_case("alias with bad target");
	T_CHECK_INT(table_alias_add(tab, "x@example.org", "@example.org"),
	    TABLE_INVALID);
	T_CHECK_INT(table_alias_add(tab, "@bad..example", "ben@example.org"),
	    TABLE_INVALID);
	T_CHECK_INT(
	    table_alias_add(tab, "x@example.org", "nope"), TABLE_INVALID);
	/* quoted local parts that are no path trouble are fine */
	t_case("quoted user");
	T_CHECK_INT(
	    table_user_add(tab, "\"Fred Bloggs\"@example.org", NULL), TABLE_OK);
	CHECK_RESOLVE("<\"fred bloggs\"@example.org>", TABLE_OK,
	    "\"fred bloggs\"@example.org=example.org/fred bloggs");
	T_CHECK_INT(
	    table_user_del(tab, "\"fred bloggs\"@example.org"), TABLE_OK);
}

static void
test_resolve_users(void)
{
	CHECK_RESOLVE(
	    "<ben@example.org>", TABLE_OK, "ben@example.org=example.org/ben");
	CHECK_RESOLVE(
	    "<BEN@Example.Org>", TABLE_OK, "ben@example.org=example.org/ben");
	CHECK_RESOLVE("<claire@EXAMPLE.ORG>", TABLE_OK,
	    "claire@example.org=example.org/claire");
	CHECK_RESOLVE("<nobody@example.org>", TABLE_NOTFOUND, "");
	CHECK_RESOLVE("<someone@far.example>", TABLE_NOTLOCAL, "");
	CHECK_RESOLVE("<x@[192.0.2.1]>", TABLE_NOTLOCAL, "");
	CHECK_RESOLVE("<>", TABLE_NOTFOUND, "");
	T_CHECK_INT(table_domain_is_local(tab, "example.org"), TABLE_OK);
	T_CHECK_INT(table_domain_is_local(tab, "EXAMPLE.NET"), TABLE_OK);
	T_CHECK_INT(table_domain_is_local(tab, "far.example"), TABLE_NOTLOCAL);

	t_case("maildir column");
	raw_sql("UPDATE users SET maildir = '/home/dave/Maildir' "
		"WHERE address = 'dave@example.net'");
	CHECK_RESOLVE("<dave@example.net>", TABLE_OK,
	    "dave@example.net=/home/dave/Maildir");
	{
		char box[512];

		T_CHECK_INT(table_user_mailbox(
				tab, "Dave@example.net", box, sizeof(box)),
		    TABLE_OK);
		T_CHECK_STR(box, "/home/dave/Maildir");
		T_CHECK_INT(table_user_mailbox(
				tab, "ben@example.org", box, sizeof(box)),
		    TABLE_OK);
		T_CHECK_STR(box, "example.org/ben");
		T_CHECK_INT(table_user_mailbox(
				tab, "ghost@example.org", box, sizeof(box)),
		    TABLE_NOTFOUND);
	}
	raw_sql("UPDATE users SET maildir = NULL");

	t_case("table_user_set_maildir");
	{
		static const char *const bad[] = {"relative", "/", "/a/",
		    "/a//b", "/a/./b", "/a/../b", "/..", "/a\nb", ""};
		char box[512];
		size_t i;

		T_CHECK_INT(table_user_set_maildir(
				tab, "Dave@example.net", "/srv/mail/dave"),
		    TABLE_OK);
		CHECK_RESOLVE("<dave@example.net>", TABLE_OK,
		    "dave@example.net=/srv/mail/dave");
		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
			T_CHECK_INT(table_user_set_maildir(
					tab, "dave@example.net", bad[i]),
			    TABLE_INVALID);
		T_CHECK_INT(table_user_set_maildir(
				tab, "ghost@example.net", "/srv/mail/ghost"),
		    TABLE_NOTFOUND);
		T_CHECK_INT(table_user_set_maildir(tab, "dave@example.net",
				"lmtp:unix:/run/dovecot/lmtp"),
		    TABLE_OK);
		CHECK_RESOLVE("<dave@example.net>", TABLE_OK,
		    "dave@example.net=lmtp:unix:/run/dovecot/lmtp");
		T_CHECK(table_mailbox_is_lmtp("lmtp:unix:/run/dovecot/lmtp"));
		T_CHECK(!table_mailbox_is_lmtp("/srv/lmtp:x"));
		T_CHECK_INT(table_user_set_maildir(
				tab, "dave@example.net", "lmtp:[::1]:24"),
		    TABLE_OK);
		T_CHECK_INT(table_user_set_maildir(tab, "dave@example.net",
				"lmtp:mbox.example.net"),
		    TABLE_OK);
		T_CHECK_INT(table_user_set_maildir(
				tab, "dave@example.net", "lmtp:unix:relative"),
		    TABLE_INVALID);
		T_CHECK_INT(
		    table_user_set_maildir(tab, "dave@example.net", "lmtp:"),
		    TABLE_INVALID);
		T_CHECK_INT(
		    table_user_set_maildir(tab, "dave@example.net", "lmtp:a b"),
		    TABLE_INVALID);
		T_CHECK_INT(
		    table_user_set_maildir(tab, "dave@example.net", NULL),
		    TABLE_OK);
		T_CHECK_INT(table_user_mailbox(
				tab, "dave@example.net", box, sizeof(box)),
		    TABLE_OK);
		T_CHECK_STR(box, "example.net/dave");
	}

	t_case("row written by hand with a path in it");
	raw_sql("INSERT INTO users(address) VALUES('\"../evil\"@example.org')");
	CHECK_RESOLVE("<\"../evil\"@example.org>", TABLE_TEMPFAIL, "");
	raw_sql("DELETE FROM users WHERE address = '\"../evil\"@example.org'");
}

static void
test_aliases(void)
{
	T_CHECK_INT(table_alias_add(tab, "Team@example.org", "ben@example.org"),
	    TABLE_OK);
	T_CHECK_INT(
	    table_alias_add(tab, "team@example.org", "CLAIRE@example.org"),
	    TABLE_OK);
	T_CHECK_INT(
	    table_alias_add(tab, "team@example.org", "Remote@Far.Example"),
	    TABLE_OK);
	T_CHECK_INT(table_alias_add(tab, "team@example.org", "ben@example.org"),
	    TABLE_EXISTS);
	CHECK_RESOLVE("<TEAM@example.org>", TABLE_OK,
	    "ben@example.org=example.org/ben "
	    "claire@example.org=example.org/claire remote@far.example");

	t_case("nested, duplicates removed");
	T_CHECK_INT(table_alias_add(tab, "all@example.org", "ben@example.org"),
	    TABLE_OK);
	T_CHECK_INT(table_alias_add(tab, "all@example.org", "team@example.org"),
	    TABLE_OK);
	CHECK_RESOLVE("<all@example.org>", TABLE_OK,
	    "ben@example.org=example.org/ben "
	    "claire@example.org=example.org/claire remote@far.example");

	t_case("alias over a user, to itself and elsewhere");
	T_CHECK_INT(table_alias_add(tab, "ben@example.org", "ben@example.org"),
	    TABLE_OK);
	T_CHECK_INT(table_alias_add(tab, "ben@example.org", "arch@far.example"),
	    TABLE_OK);
	CHECK_RESOLVE("<ben@example.org>", TABLE_OK,
	    "arch@far.example ben@example.org=example.org/ben");
	/* team's target ben is a user: it stops there, no copy to arch */
	CHECK_RESOLVE("<team@example.org>", TABLE_OK,
	    "ben@example.org=example.org/ben "
	    "claire@example.org=example.org/claire remote@far.example");
	T_CHECK_INT(table_alias_del(tab, "ben@example.org", NULL), TABLE_OK);
	CHECK_RESOLVE(
	    "<ben@example.org>", TABLE_OK, "ben@example.org=example.org/ben");

	t_case("dangling target");
	T_CHECK_INT(
	    table_alias_add(tab, "broken@example.org", "ghost@example.org"),
	    TABLE_OK);
	CHECK_RESOLVE("<broken@example.org>", TABLE_NOTFOUND, "");
	T_CHECK(strstr(table_strerror(tab), "ghost@example.org") != NULL);
	T_CHECK_INT(table_alias_del(tab, "broken@example.org", NULL), TABLE_OK);

	t_case("alias domain is local");
	T_CHECK_INT(
	    table_domain_is_local(tab, "aliases.example"), TABLE_NOTLOCAL);
	T_CHECK_INT(
	    table_alias_add(tab, "x@aliases.example", "ben@example.org"),
	    TABLE_OK);
	T_CHECK_INT(table_domain_is_local(tab, "aliases.example"), TABLE_OK);
	CHECK_RESOLVE(
	    "<x@aliases.example>", TABLE_OK, "ben@example.org=example.org/ben");
	CHECK_RESOLVE("<y@aliases.example>", TABLE_NOTFOUND, "");
}

/* recipient_delimiter: the full address first, then the base (alias,
 * user with the folder), then the catch-all; unsafe extensions. */
static void
test_plus(void)
{
	char err[512], sd[PATH_MAX + 32], got[4096];
	char *ov[3] = {
	    sd, "domains=example.org example.net", "recipient_delimiter=+-"};
	struct conf *pc;
	struct table *keep = tab;

	snprintf(sd, sizeof(sd), "state_dir=%s/state", tmpdir);
	pc = conf_load(NULL, ov, 3, err, sizeof(err));
	T_CHECK(pc != NULL);
	if (pc == NULL)
		return;
	tab = table_open(pc, err, sizeof(err));
	T_CHECK(tab != NULL);
	if (tab == NULL) {
		tab = keep;
		conf_free(pc);
		return;
	}
	T_CHECK_INT(table_user_add(tab, "pat@example.org", NULL), TABLE_OK);
	T_CHECK_INT(table_user_add(tab, "quin@example.org", NULL), TABLE_OK);
	CHECK_RESOLVE("<pat+shop@example.org>", TABLE_OK,
	    "pat@example.org=example.org/pat/.shop");
	CHECK_RESOLVE("<Pat-Shop.Old@example.org>", TABLE_OK,
	    "pat@example.org=example.org/pat/.shop.old");
	/* split at the first delimiter: the rest is the extension */
	CHECK_RESOLVE("<pat+a-b@example.org>", TABLE_OK,
	    "pat@example.org=example.org/pat/.a-b");
	CHECK_RESOLVE(
	    "<pat+@example.org>", TABLE_OK, "pat@example.org=example.org/pat");
	CHECK_RESOLVE("<pat+.x@example.org>", TABLE_OK,
	    "pat@example.org=example.org/pat");
	CHECK_RESOLVE("<pat+a/b@example.org>", TABLE_OK,
	    "pat@example.org=example.org/pat");
	CHECK_RESOLVE("<pat+a+b@example.org>", TABLE_OK,
	    "pat@example.org=example.org/pat");
	/* quoted only when it must be: "pat+x" is pat+x */
	CHECK_RESOLVE("<\"pat+x\"@example.org>", TABLE_OK,
	    "pat@example.org=example.org/pat/.x");
	CHECK_RESOLVE("<\"pat+x y\"@example.org>", TABLE_NOTFOUND, "");
	CHECK_RESOLVE("<+x@example.org>", TABLE_NOTFOUND, "");
	CHECK_RESOLVE("<nobody+x@example.org>", TABLE_NOTFOUND, "");
	/* an alias on the full address wins over the base user */
	T_CHECK_INT(
	    table_alias_add(tab, "pat+sales@example.org", "quin@example.org"),
	    TABLE_OK);
	CHECK_RESOLVE("<pat+sales@example.org>", TABLE_OK,
	    "quin@example.org=example.org/quin");
	/* the base's alias; an alias target with an extension */
	T_CHECK_INT(
	    table_alias_add(tab, "crew@example.org", "quin+crew@example.org"),
	    TABLE_OK);
	CHECK_RESOLVE("<crew+x@example.org>", TABLE_OK,
	    "quin@example.org=example.org/quin/.crew");
	/* the base user before the catch-all */
	T_CHECK_INT(
	    table_alias_add(tab, "@example.org", "quin@example.org"), TABLE_OK);
	CHECK_RESOLVE("<pat+x@example.org>", TABLE_OK,
	    "pat@example.org=example.org/pat/.x");
	CHECK_RESOLVE("<zed+x@example.org>", TABLE_OK,
	    "quin@example.org=example.org/quin");
	T_CHECK_INT(table_alias_del(tab, "@example.org", NULL), TABLE_OK);
	T_CHECK_INT(table_alias_del(tab, "crew@example.org", NULL), TABLE_OK);
	T_CHECK_INT(
	    table_alias_del(tab, "pat+sales@example.org", NULL), TABLE_OK);
	T_CHECK_INT(table_user_del(tab, "pat@example.org"), TABLE_OK);
	T_CHECK_INT(table_user_del(tab, "quin@example.org"), TABLE_OK);
	table_close(tab);
	tab = keep;
	conf_free(pc);
	/* without the delimiter, no splitting */
	CHECK_RESOLVE("<ben+shop@example.org>", TABLE_NOTFOUND, "");
	(void)got;
}

static void
test_catch_all(void)
{
	CHECK_RESOLVE("<anything@example.net>", TABLE_NOTFOUND, "");
	T_CHECK_INT(
	    table_alias_add(tab, "@Example.NET", "ben@example.org"), TABLE_OK);
	CHECK_RESOLVE("<anything@example.net>", TABLE_OK,
	    "ben@example.org=example.org/ben");
	CHECK_RESOLVE("<dave@example.net>", TABLE_OK,
	    "dave@example.net=example.net/dave");
	CHECK_RESOLVE("<anything@example.org>", TABLE_NOTFOUND, "");
	/* postmaster of a domain with a catch-all goes to the catch-all */
	CHECK_RESOLVE("<postmaster@example.net>", TABLE_OK,
	    "ben@example.org=example.org/ben");

	t_case("catch-all to its own domain loops");
	T_CHECK_INT(
	    table_alias_add(tab, "@loop.example", "a@loop.example"), TABLE_OK);
	CHECK_RESOLVE("<z@loop.example>", TABLE_LOOP, "");
	T_CHECK_INT(
	    table_alias_del(tab, "@loop.example", "a@loop.example"), TABLE_OK);
	T_CHECK_INT(table_alias_del(tab, "@example.net", NULL), TABLE_OK);
}

static void
test_loops(void)
{
	char a[64], b[64];
	int i;

	T_CHECK_INT(
	    table_alias_add(tab, "loop1@example.org", "loop2@example.org"),
	    TABLE_OK);
	T_CHECK_INT(
	    table_alias_add(tab, "loop2@example.org", "loop1@example.org"),
	    TABLE_OK);
	CHECK_RESOLVE("<loop1@example.org>", TABLE_LOOP, "");
	T_CHECK(strstr(table_strerror(tab), "loop") != NULL);
	T_CHECK_INT(
	    table_alias_add(tab, "self@example.org", "self@example.org"),
	    TABLE_OK);
	CHECK_RESOLVE("<self@example.org>", TABLE_LOOP, "");

	t_case("depth: 8 levels resolve, 9 do not");
	for (i = 1; i <= 9; i++) {
		snprintf(a, sizeof(a), "d%d@example.org", i);
		snprintf(b, sizeof(b), "d%d@example.org", i + 1);
		T_CHECK_INT(
		    table_alias_add(tab, a, i < 9 ? b : "claire@example.org"),
		    TABLE_OK);
	}
	/* d2..d9: 8 aliases, then the user */
	CHECK_RESOLVE("<d2@example.org>", TABLE_OK,
	    "claire@example.org=example.org/claire");
	CHECK_RESOLVE("<d1@example.org>", TABLE_LOOP, "");

	t_case("too many targets");
	raw_sql("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
		"FROM n WHERE i < 1001) INSERT INTO aliases SELECT "
		"'big@example.org', 'u' || i || '@far.example' FROM n");
	CHECK_RESOLVE("<big@example.org>", TABLE_LOOP, "");
	raw_sql("DELETE FROM aliases WHERE address = 'big@example.org' AND "
		"target = 'u1001@far.example'");
	{
		struct table_targets tt = {0};
		struct addr ad;
		size_t used;

		T_CHECK(addr_parse_path(
			    "<big@example.org>", 17, 0, &ad, &used) == ADDR_OK);
		T_CHECK_INT(table_resolve(tab, &ad, &tt), TABLE_OK);
		T_CHECK_INT(tt.n, 1000);
		table_targets_free(&tt);
	}
	raw_sql("DELETE FROM aliases WHERE address = 'big@example.org'");

	t_case("a failed resolve leaves earlier targets alone");
	{
		struct table_targets tt = {0};
		struct addr ad;
		size_t used;

		T_CHECK(addr_parse_path(
			    "<ben@example.org>", 17, 0, &ad, &used) == ADDR_OK);
		T_CHECK_INT(table_resolve(tab, &ad, &tt), TABLE_OK);
		T_CHECK(addr_parse_path("<loop1@example.org>", 19, 0, &ad,
			    &used) == ADDR_OK);
		T_CHECK_INT(table_resolve(tab, &ad, &tt), TABLE_LOOP);
		T_CHECK_INT(tt.n, 1);
		T_CHECK_STR(tt.v[0].address, "ben@example.org");
		table_targets_free(&tt);
	}
}

static void
test_postmaster(void)
{
	CHECK_RESOLVE("<postmaster@example.org>", TABLE_OK,
	    "postmaster@example.org=example.org/postmaster");
	CHECK_RESOLVE("<PostMaster@Example.Org>", TABLE_OK,
	    "postmaster@example.org=example.org/postmaster");
	CHECK_RESOLVE("<Postmaster>", TABLE_OK,
	    "postmaster@example.org=example.org/postmaster");
	CHECK_RESOLVE("<postmaster@far.example>", TABLE_NOTLOCAL, "");

	t_case("postmaster with an alias");
	T_CHECK_INT(table_alias_add(
			tab, "postmaster@example.org", "claire@example.org"),
	    TABLE_OK);
	CHECK_RESOLVE(
	    "<POSTMASTER>", TABLE_OK, "claire@example.org=example.org/claire");
	CHECK_RESOLVE("<postmaster@example.org>", TABLE_OK,
	    "claire@example.org=example.org/claire");
	CHECK_RESOLVE("<postmaster@example.net>", TABLE_OK,
	    "postmaster@example.net=example.net/postmaster");

	t_case("postmaster as a user");
	T_CHECK_INT(
	    table_user_add(tab, "postmaster@example.net", NULL), TABLE_OK);
	CHECK_RESOLVE("<postmaster@example.net>", TABLE_OK,
	    "postmaster@example.net=example.net/postmaster");

	t_case("postmaster of a domain from the domains table");
	CHECK_RESOLVE("<postmaster@other.example>", TABLE_NOTLOCAL, "");
	raw_sql("INSERT INTO domains(name) VALUES('other.example')");
	CHECK_RESOLVE("<postmaster@other.example>", TABLE_OK,
	    "postmaster@other.example=other.example/postmaster");
	CHECK_RESOLVE("<nobody@other.example>", TABLE_NOTFOUND, "");
	T_CHECK_INT(
	    table_alias_del(tab, "postmaster@example.org", NULL), TABLE_OK);
}

struct collect {
	char text[4096];
	size_t len;
};

static void
collect_user(const char *address, bool has_password, void *ctx)
{
	struct collect *c = ctx;
	int r = snprintf(c->text + c->len, sizeof(c->text) - c->len, "%s%s\n",
	    address, has_password ? " +pw" : "");

	if (r > 0 && (size_t)r < sizeof(c->text) - c->len)
		c->len += (size_t)r;
}

static void
collect_alias(const char *address, const char *target, void *ctx)
{
	struct collect *c = ctx;
	int r = snprintf(c->text + c->len, sizeof(c->text) - c->len, "%s %s\n",
	    address, target);

	if (r > 0 && (size_t)r < sizeof(c->text) - c->len)
		c->len += (size_t)r;
}

static void
test_lists_and_deletes(void)
{
	struct collect c = {"", 0};

	T_CHECK_INT(table_user_list(tab, collect_user, &c), TABLE_OK);
	T_CHECK_STR(c.text, "ben@example.org\nclaire@example.org +pw\n"
			    "dave@example.net\npostmaster@example.net\n");
	c.len = 0;
	c.text[0] = '\0';
	T_CHECK_INT(
	    table_alias_list(tab, "TEAM@example.org", collect_alias, &c),
	    TABLE_OK);
	T_CHECK_STR(c.text, "team@example.org ben@example.org\n"
			    "team@example.org claire@example.org\n"
			    "team@example.org remote@far.example\n");
	c.len = 0;
	c.text[0] = '\0';
	T_CHECK_INT(table_alias_list(tab, NULL, collect_alias, &c), TABLE_OK);
	T_CHECK(strncmp(c.text,
		    "all@example.org ben@example.org\n"
		    "all@example.org team@example.org\nd1@example.org "
		    "d2@example.org\n",
		    strlen("all@example.org ben@example.org\n")) == 0);

	t_case("deletes");
	T_CHECK_INT(
	    table_alias_del(tab, "team@example.org", "claire@example.org"),
	    TABLE_OK);
	T_CHECK_INT(
	    table_alias_del(tab, "team@example.org", "claire@example.org"),
	    TABLE_NOTFOUND);
	CHECK_RESOLVE("<team@example.org>", TABLE_OK,
	    "ben@example.org=example.org/ben remote@far.example");
	T_CHECK_INT(table_alias_del(tab, "team@example.org", NULL), TABLE_OK);
	T_CHECK_INT(
	    table_alias_del(tab, "team@example.org", NULL), TABLE_NOTFOUND);
	CHECK_RESOLVE("<team@example.org>", TABLE_NOTFOUND, "");
	T_CHECK_INT(table_user_del(tab, "Claire@example.org"), TABLE_OK);
	T_CHECK_INT(table_user_del(tab, "claire@example.org"), TABLE_NOTFOUND);
	CHECK_RESOLVE("<claire@example.org>", TABLE_NOTFOUND, "");
}

static void
test_two_handles(void)
{
	char err[512] = "", got[1024];
	struct table *t2 = table_open(conf, err, sizeof(err));

	T_CHECK(t2 != NULL);
	if (t2 == NULL)
		return;
	T_CHECK_INT(resolve(tab, "<newbie@example.org>", got, sizeof(got)),
	    TABLE_NOTFOUND);
	T_CHECK_INT(table_user_add(t2, "newbie@example.org", NULL), TABLE_OK);
	T_CHECK_INT(
	    resolve(tab, "<newbie@example.org>", got, sizeof(got)), TABLE_OK);
	T_CHECK_STR(got, "newbie@example.org=example.org/newbie");
	T_CHECK_INT(table_alias_add(t2, "n2@new.example", "newbie@example.org"),
	    TABLE_OK);
	T_CHECK_INT(table_domain_is_local(tab, "new.example"), TABLE_OK);
	T_CHECK_INT(table_user_del(t2, "newbie@example.org"), TABLE_OK);
	T_CHECK_INT(resolve(tab, "<newbie@example.org>", got, sizeof(got)),
	    TABLE_NOTFOUND);
	T_CHECK_INT(
	    resolve(tab, "<n2@new.example>", got, sizeof(got)), TABLE_NOTFOUND);
	table_close(t2);

	t_case("reopen keeps data and schema");
	table_close(tab);
	tab = table_open(conf, err, sizeof(err));
	T_CHECK(tab != NULL);
	if (tab != NULL)
		T_CHECK_INT(resolve(tab, "<ben@example.org>", got, sizeof(got)),
		    TABLE_OK);

	t_case("newer schema refused");
	raw_sql("PRAGMA user_version = 99");
	T_CHECK(table_open(conf, err, sizeof(err)) == NULL);
	T_CHECK(strstr(err, "schema version 99") != NULL);
	raw_sql("PRAGMA user_version = 1");
}

int
main(void)
{
	char tmpl[] = "/tmp/test_table.XXXXXX", err[512] = "";
	char sd[PATH_MAX + 32];
	char *ov[2];

	if (mkdtemp(tmpl) == NULL)
		abort();
	snprintf(tmpdir, sizeof(tmpdir), "%s", tmpl);
	/* a state_dir that does not exist yet: table_open makes it */
	snprintf(sd, sizeof(sd), "state_dir=%s/state", tmpdir);
	snprintf(dbpath, sizeof(dbpath), "%s/state/tern.db", tmpdir);
	ov[0] = sd;
	ov[1] = "domains=example.org example.net";
	conf = conf_load(NULL, ov, 2, err, sizeof(err));
	if (conf == NULL) {
		fprintf(stderr, "conf: %s\n", err);
		return 1;
	}
	tab = table_open(conf, err, sizeof(err));
	if (tab == NULL) {
		fprintf(stderr, "table_open: %s\n", err);
		return 1;
	}
	T_RUN(test_open_schema);
	T_RUN(test_pgsql_and_bad_engine);
	T_RUN(test_users);
	T_RUN(test_bad_addresses);
	T_RUN(test_resolve_users);
	T_RUN(test_aliases);
	T_RUN(test_catch_all);
	T_RUN(test_plus);
	T_RUN(test_loops);
	T_RUN(test_postmaster);
	T_RUN(test_lists_and_deletes);
	T_RUN(test_two_handles);
	table_close(tab);
	conf_free(conf);
	{
		char cmd[PATH_MAX + 16];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tmpdir);
	}
	return t_summary();
}
