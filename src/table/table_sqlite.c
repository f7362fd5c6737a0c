/*
 * table_sqlite: the embedded table engine, one SQLite file (by default
 * STATE/tern.db) holding users, aliases and domains.
 *
 * Schema (PRAGMA user_version = TS_SCHEMA_VERSION):
 *   users(address TEXT PRIMARY KEY, password TEXT, maildir TEXT,
 *         created INTEGER)
 *   aliases(address TEXT, target TEXT, PRIMARY KEY(address, target))
 *   domains(name TEXT PRIMARY KEY)
 * plus an index on the domain part of users and aliases, so "is this
 * domain local" is an index lookup, not a scan.  The domain part is what
 * follows the first '@'; table.c refuses local parts holding '@'.
 *
 * Invariants:
 *  - The schema is created on open, inside BEGIN IMMEDIATE, so two
 *    processes opening a new file at once cannot both create it.
 *  - WAL mode and a 2000 ms busy timeout: ternd reads while "tern user add"
 *    writes, and a writer waits for another instead of failing at once.
 *  - Nothing is cached: every call runs its query, so a running ternd sees
 *    a change committed by tern at its next lookup.  Statements are
 *    prepared once per handle and reset after each use.
 *  - A handle is used by one thread at a time.
 *  - A new file is created mode 0600 (it holds password hashes); SQLite
 *    gives its -wal and -shm files the mode of the database.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "table/table_engine.h"

#define TS_SCHEMA_VERSION 1
#define TS_BUSY_MS	  2000
#define TS_DOMAIN_EXPR	  "substr(address, instr(address, '@') + 1)"

enum ts_stmt {
	TS_ALIAS_GET,
	TS_USER_GET,
	TS_DOMAIN_KNOWN,
	TS_USER_ADD,
	TS_USER_DEL,
	TS_USER_PASSWD,
	TS_USER_MAILDIR,
	TS_USER_PWHASH,
	TS_USER_LIST,
	TS_ALIAS_ADD,
	TS_ALIAS_DEL_ONE,
	TS_ALIAS_DEL_ALL,
	TS_ALIAS_LIST_ALL,
	TS_ALIAS_LIST_ONE,
	TS_NSTMT
};

static const char *const ts_sql[TS_NSTMT] = {
    [TS_ALIAS_GET] = "SELECT target FROM aliases WHERE address = ?1 "
		     "ORDER BY target",
    [TS_USER_GET] = "SELECT maildir FROM users WHERE address = ?1",
    [TS_DOMAIN_KNOWN] =
	"SELECT EXISTS(SELECT 1 FROM domains WHERE "
	"name = ?1) OR EXISTS(SELECT 1 FROM users WHERE " TS_DOMAIN_EXPR
	" = ?1) OR EXISTS(SELECT 1 FROM aliases WHERE " TS_DOMAIN_EXPR " = ?1)",
    [TS_USER_ADD] = "INSERT INTO users(address, password, maildir, "
		    "created) VALUES(?1, ?2, NULL, ?3)",
    [TS_USER_DEL] = "DELETE FROM users WHERE address = ?1",
    [TS_USER_PASSWD] = "UPDATE users SET password = ?2 WHERE address = ?1",
    [TS_USER_MAILDIR] = "UPDATE users SET maildir = ?2 WHERE address = ?1",
    [TS_USER_PWHASH] = "SELECT password FROM users WHERE address = ?1",
    [TS_USER_LIST] = "SELECT address, password IS NOT NULL FROM users "
		     "ORDER BY address",
    [TS_ALIAS_ADD] = "INSERT INTO aliases(address, target) VALUES(?1, ?2)",
    [TS_ALIAS_DEL_ONE] = "DELETE FROM aliases WHERE address = ?1 AND "
			 "target = ?2",
    [TS_ALIAS_DEL_ALL] = "DELETE FROM aliases WHERE address = ?1",
    [TS_ALIAS_LIST_ALL] = "SELECT address, target FROM aliases "
			  "ORDER BY address, target",
    [TS_ALIAS_LIST_ONE] = "SELECT address, target FROM aliases "
			  "WHERE address = ?1 ORDER BY target",
};

static const char ts_schema[] =
    "CREATE TABLE IF NOT EXISTS users(address TEXT PRIMARY KEY, "
    "password TEXT, maildir TEXT, created INTEGER);"
    "CREATE TABLE IF NOT EXISTS aliases(address TEXT, target TEXT, "
    "PRIMARY KEY(address, target));"
    "CREATE TABLE IF NOT EXISTS domains(name TEXT PRIMARY KEY);"
    "CREATE INDEX IF NOT EXISTS users_domain ON users(" TS_DOMAIN_EXPR ");"
    "CREATE INDEX IF NOT EXISTS aliases_domain ON aliases(" TS_DOMAIN_EXPR ");";

struct ts {
	sqlite3 *db;
	char path[PATH_MAX];
	sqlite3_stmt *st[TS_NSTMT];
};

static struct ts *
ts_of(struct table *t)
{
	return t->h;
}

/* Database trouble: note it, leave the statement reusable. */
static enum table_status
ts_fail(struct table *t, sqlite3_stmt *s, const char *what)
{
	struct ts *ts = ts_of(t);

	table_set_error(
	    t, "sqlite %s: %s: %s", ts->path, what, sqlite3_errmsg(ts->db));
	if (s != NULL) {
		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
	}
	return TABLE_TEMPFAIL;
}

/* Bind one or two texts (b may be NULL: SQL NULL, or absent if nb=1). */
static sqlite3_stmt *
ts_bind(
    struct table *t, enum ts_stmt which, const char *a, const char *b, int nb)
{
	sqlite3_stmt *s = ts_of(t)->st[which];

	if (sqlite3_bind_text(s, 1, a, -1, SQLITE_STATIC) != SQLITE_OK)
		return NULL;
	if (nb == 2 &&
	    (b != NULL ? sqlite3_bind_text(s, 2, b, -1, SQLITE_STATIC)
		       : sqlite3_bind_null(s, 2)) != SQLITE_OK)
		return NULL;
	return s;
}

static void
ts_done(sqlite3_stmt *s)
{
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
}

/* Run a statement that changes rows; *changes_out gets how many. */
static enum table_status
ts_exec(struct table *t, enum ts_stmt which, const char *a, const char *b,
    int nb, int *changes_out)
{
	sqlite3_stmt *s = ts_bind(t, which, a, b, nb);
	int rc;

	if (s == NULL)
		return ts_fail(t, ts_of(t)->st[which], "bind");
	rc = sqlite3_step(s);
	if ((rc & 0xff) == SQLITE_CONSTRAINT) {
		ts_done(s);
		return TABLE_EXISTS;
	}
	if (rc != SQLITE_DONE)
		return ts_fail(t, s, "write");
	ts_done(s);
	if (changes_out != NULL)
		*changes_out = sqlite3_changes(ts_of(t)->db);
	return TABLE_OK;
}

/*
 * A query for at most one row whose first column is text (or NULL).
 * TABLE_OK with out filled (NULL column: *null_out), TABLE_NOTFOUND.
 */
static enum table_status
ts_get_text(struct table *t, enum ts_stmt which, const char *key, char *out,
    size_t outlen, bool *null_out)
{
	sqlite3_stmt *s = ts_bind(t, which, key, NULL, 1);
	const unsigned char *v;
	int rc;

	if (s == NULL)
		return ts_fail(t, ts_of(t)->st[which], "bind");
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		ts_done(s);
		return TABLE_NOTFOUND;
	}
	if (rc != SQLITE_ROW)
		return ts_fail(t, s, "read");
	v = sqlite3_column_text(s, 0);
	*null_out = v == NULL;
	if (str_copy(out, outlen, v != NULL ? (const char *)v : "",
		v != NULL ? (size_t)sqlite3_column_bytes(s, 0) : 0) != 0) {
		ts_done(s);
		table_set_error(t, "%s: stored value too long", key);
		return TABLE_TEMPFAIL;
	}
	ts_done(s);
	return TABLE_OK;
}

/* ---- opening ----------------------------------------------------------- */

/* mkdir -p of the directory holding path (0700: mail lives below it). */
static int
ts_mkdirs(struct table *t, const char *path)
{
	char dir[PATH_MAX];
	char *p;
	const char *slash = strrchr(path, '/');

	if (slash == NULL || slash == path)
		return 0;
	if (str_copy(dir, sizeof(dir), path, (size_t)(slash - path)) != 0) {
		table_set_error(t, "%s: path too long", path);
		return -1;
	}
	for (p = dir + 1;; p++) {
		bool end = *p == '\0';

		if (*p != '/' && !end)
			continue;
		*p = '\0';
		if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
			table_set_error(
			    t, "mkdir %s: %s", dir, strerror(errno));
			return -1;
		}
		if (end)
			return 0;
		*p = '/';
	}
}

/* Create the file 0600 if missing, so SQLite never makes it 0644. */
static int
ts_precreate(struct table *t, const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0) {
		table_set_error(t, "%s: %s", path, strerror(errno));
		return -1;
	}
	(void)close(fd); /* nothing written: a failed close loses nothing */
	return 0;
}

static int
ts_exec_sql(struct table *t, const char *sql, const char *what)
{
	if (sqlite3_exec(ts_of(t)->db, sql, NULL, NULL, NULL) == SQLITE_OK)
		return 0;
	(void)ts_fail(t, NULL, what);
	return -1;
}

static int
ts_user_version(struct table *t, int *v)
{
	sqlite3_stmt *s;
	int rc;

	if (sqlite3_prepare_v2(ts_of(t)->db, "PRAGMA user_version", -1, &s,
		NULL) != SQLITE_OK) {
		(void)ts_fail(t, NULL, "user_version");
		return -1;
	}
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*v = sqlite3_column_int(s, 0);
	else
		(void)ts_fail(t, NULL, "user_version");
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? 0 : -1;
}

/* Create or check the schema, in one write transaction. */
static int
ts_schema_setup(struct table *t)
{
	char sql[64];
	int v = 0;

	if (ts_exec_sql(t, "BEGIN IMMEDIATE", "begin") != 0)
		return -1;
	if (ts_user_version(t, &v) != 0)
		goto fail;
	if (v > TS_SCHEMA_VERSION) {
		table_set_error(t,
		    "sqlite %s: schema version %d is newer than "
		    "this tern knows (%d)",
		    ts_of(t)->path, v, TS_SCHEMA_VERSION);
		goto fail;
	}
	if (ts_exec_sql(t, ts_schema, "create schema") != 0)
		goto fail;
	if (v < TS_SCHEMA_VERSION) {
		if (str_fmt(sql, sizeof(sql), "PRAGMA user_version = %d",
			TS_SCHEMA_VERSION) != 0) {
			table_set_error(t,
			    "sqlite %s: set user_version: "
			    "statement too long",
			    ts_of(t)->path);
			goto fail;
		}
		if (ts_exec_sql(t, sql, "set user_version") != 0)
			goto fail;
	}
	return ts_exec_sql(t, "COMMIT", "commit");
fail:
	(void)sqlite3_exec(ts_of(t)->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

static int
ts_wal(struct table *t)
{
	sqlite3_stmt *s;
	const unsigned char *mode;
	int ok;

	if (sqlite3_prepare_v2(ts_of(t)->db, "PRAGMA journal_mode = WAL", -1,
		&s, NULL) != SQLITE_OK) {
		(void)ts_fail(t, NULL, "journal_mode");
		return -1;
	}
	ok = sqlite3_step(s) == SQLITE_ROW &&
	     (mode = sqlite3_column_text(s, 0)) != NULL &&
	     strcmp((const char *)mode, "wal") == 0;
	if (!ok)
		table_set_error(t, "sqlite %s: cannot switch to WAL mode: %s",
		    ts_of(t)->path, sqlite3_errmsg(ts_of(t)->db));
	sqlite3_finalize(s);
	return ok ? 0 : -1;
}

static int
ts_prepare_all(struct table *t)
{
	struct ts *ts = ts_of(t);
	int i;

	for (i = 0; i < TS_NSTMT; i++)
		if (sqlite3_prepare_v3(ts->db, ts_sql[i], -1,
			SQLITE_PREPARE_PERSISTENT, &ts->st[i],
			NULL) != SQLITE_OK) {
			(void)ts_fail(t, NULL, "prepare");
			return -1;
		}
	return 0;
}

static void
ts_close(struct table *t)
{
	struct ts *ts = ts_of(t);
	int i;

	if (ts == NULL)
		return;
	for (i = 0; i < TS_NSTMT; i++)
		sqlite3_finalize(ts->st[i]);
	/* every statement is finalized, so close cannot be busy; what was
	 * committed is on disk already */
	(void)sqlite3_close(ts->db);
	free(ts);
	t->h = NULL;
}

static int
ts_open(struct table *t, const char *path)
{
	struct ts *ts = xcalloc(1, sizeof(*ts));

	t->h = ts;
	if (str_copy(ts->path, sizeof(ts->path), path, strlen(path)) != 0) {
		table_set_error(t, "sqlite: path too long");
		goto fail;
	}
	if (ts_mkdirs(t, path) != 0 || ts_precreate(t, path) != 0)
		goto fail;
	if (sqlite3_open_v2(path, &ts->db,
		SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
		    SQLITE_OPEN_NOMUTEX,
		NULL) != SQLITE_OK) {
		table_set_error(t, "sqlite %s: %s", path,
		    ts->db != NULL ? sqlite3_errmsg(ts->db) : "out of memory");
		goto fail;
	}
	sqlite3_extended_result_codes(ts->db, 1);
	if (sqlite3_busy_timeout(ts->db, TS_BUSY_MS) != SQLITE_OK ||
	    ts_wal(t) != 0 || ts_schema_setup(t) != 0 || ts_prepare_all(t) != 0)
		goto fail;
	return 0;
fail:
	ts_close(t);
	return -1;
}

/* ---- lookups ----------------------------------------------------------- */

static enum table_status
ts_alias_get(struct table *t, const char *key,
    void (*cb)(const char *target, void *ctx), void *ctx)
{
	sqlite3_stmt *s = ts_bind(t, TS_ALIAS_GET, key, NULL, 1);
	int rc;

	if (s == NULL)
		return ts_fail(t, ts_of(t)->st[TS_ALIAS_GET], "bind");
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const unsigned char *v = sqlite3_column_text(s, 0);

		if (v != NULL)
			cb((const char *)v, ctx);
	}
	if (rc != SQLITE_DONE)
		return ts_fail(t, s, "read aliases");
	ts_done(s);
	return TABLE_OK;
}

static enum table_status
ts_user_get(struct table *t, const char *key, char *maildir, size_t len)
{
	bool null;

	return ts_get_text(t, TS_USER_GET, key, maildir, len, &null);
}

static enum table_status
ts_domain_known(struct table *t, const char *domain)
{
	sqlite3_stmt *s = ts_bind(t, TS_DOMAIN_KNOWN, domain, NULL, 1);
	int rc, known;

	if (s == NULL)
		return ts_fail(t, ts_of(t)->st[TS_DOMAIN_KNOWN], "bind");
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW)
		return ts_fail(t, s, "read domains");
	known = sqlite3_column_int(s, 0);
	ts_done(s);
	return known ? TABLE_OK : TABLE_NOTFOUND;
}

/* ---- administration ---------------------------------------------------- */

static enum table_status
ts_user_add(struct table *t, const char *key, const char *pwhash)
{
	sqlite3_stmt *s = ts_bind(t, TS_USER_ADD, key, pwhash, 2);
	int rc;

	if (s == NULL ||
	    sqlite3_bind_int64(s, 3, (sqlite3_int64)time(NULL)) != SQLITE_OK)
		return ts_fail(t, ts_of(t)->st[TS_USER_ADD], "bind");
	rc = sqlite3_step(s);
	if ((rc & 0xff) == SQLITE_CONSTRAINT) {
		ts_done(s);
		table_set_error(t, "user %s already exists", key);
		return TABLE_EXISTS;
	}
	if (rc != SQLITE_DONE)
		return ts_fail(t, s, "add user");
	ts_done(s);
	return TABLE_OK;
}

static enum table_status
ts_user_del(struct table *t, const char *key)
{
	int n = 0;
	enum table_status st = ts_exec(t, TS_USER_DEL, key, NULL, 1, &n);

	return table_changed(t, st, n, "user", key);
}

static enum table_status
ts_user_passwd(struct table *t, const char *key, const char *pwhash)
{
	int n = 0;
	enum table_status st = ts_exec(t, TS_USER_PASSWD, key, pwhash, 2, &n);

	return table_changed(t, st, n, "user", key);
}

static enum table_status
ts_user_set_maildir(struct table *t, const char *key, const char *maildir)
{
	int n = 0;
	enum table_status st = ts_exec(t, TS_USER_MAILDIR, key, maildir, 2, &n);

	return table_changed(t, st, n, "user", key);
}

static enum table_status
ts_user_pwhash(
    struct table *t, const char *key, char *out, size_t outlen, bool *null)
{
	return ts_get_text(t, TS_USER_PWHASH, key, out, outlen, null);
}

static enum table_status
ts_user_list(struct table *t,
    void (*cb)(const char *address, bool has_password, void *ctx), void *ctx)
{
	sqlite3_stmt *s = ts_of(t)->st[TS_USER_LIST];
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const unsigned char *a = sqlite3_column_text(s, 0);

		if (a != NULL)
			cb((const char *)a, sqlite3_column_int(s, 1) != 0, ctx);
	}
	if (rc != SQLITE_DONE)
		return ts_fail(t, s, "list users");
	ts_done(s);
	return TABLE_OK;
}

static enum table_status
ts_alias_add(struct table *t, const char *key, const char *target)
{
	enum table_status st = ts_exec(t, TS_ALIAS_ADD, key, target, 2, NULL);

	if (st == TABLE_EXISTS)
		table_set_error(
		    t, "alias %s -> %s already exists", key, target);
	return st;
}

static enum table_status
ts_alias_del(struct table *t, const char *key, const char *target)
{
	int n = 0;
	enum table_status st;

	if (target != NULL)
		st = ts_exec(t, TS_ALIAS_DEL_ONE, key, target, 2, &n);
	else
		st = ts_exec(t, TS_ALIAS_DEL_ALL, key, NULL, 1, &n);
	if (st == TABLE_OK && n == 0 && target != NULL) {
		table_set_error(t, "no such alias: %s -> %s", key, target);
		return TABLE_NOTFOUND;
	}
	return table_changed(t, st, n, "alias", key);
}

static enum table_status
ts_alias_list(struct table *t, const char *key,
    void (*cb)(const char *address, const char *target, void *ctx), void *ctx)
{
	sqlite3_stmt *s;
	int rc;

	if (key == NULL)
		s = ts_of(t)->st[TS_ALIAS_LIST_ALL];
	else if ((s = ts_bind(t, TS_ALIAS_LIST_ONE, key, NULL, 1)) == NULL)
		return ts_fail(t, ts_of(t)->st[TS_ALIAS_LIST_ONE], "bind");
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const unsigned char *a = sqlite3_column_text(s, 0);
		const unsigned char *g = sqlite3_column_text(s, 1);

		if (a != NULL && g != NULL)
			cb((const char *)a, (const char *)g, ctx);
	}
	if (rc != SQLITE_DONE)
		return ts_fail(t, s, "list aliases");
	ts_done(s);
	return TABLE_OK;
}

const struct table_engine table_engine_sqlite = {
    .prefix = "sqlite:",
    .open = ts_open,
    .close = ts_close,
    .alias_get = ts_alias_get,
    .user_get = ts_user_get,
    .domain_known = ts_domain_known,
    .user_add = ts_user_add,
    .user_del = ts_user_del,
    .user_passwd = ts_user_passwd,
    .user_set_maildir = ts_user_set_maildir,
    .user_pwhash = ts_user_pwhash,
    .user_list = ts_user_list,
    .alias_add = ts_alias_add,
    .alias_del = ts_alias_del,
    .alias_list = ts_alias_list,
};
