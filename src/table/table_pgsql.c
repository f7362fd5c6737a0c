/*
 * table_pgsql: the shared table engine, users, aliases and domains in one
 * PostgreSQL database that several ternd nodes use at once
 * (tables.users = pgsql:CONNINFO, CONNINFO a libpq connection string or
 * URI).  Behaves as table_sqlite.c does: same statuses, same error texts,
 * same ordering of lists (bytewise: COLLATE "C", as SQLite's BINARY).
 *
 * Schema (tern_schema.version = TP_SCHEMA_VERSION):
 *   users(address TEXT PRIMARY KEY, password TEXT, maildir TEXT,
 *         created BIGINT)
 *   aliases(address TEXT, target TEXT, PRIMARY KEY(address, target))
 *   domains(name TEXT PRIMARY KEY)
 *   tern_schema(version INT)
 * plus expression indexes on the domain part (split_part(address, '@', 2))
 * of users and aliases, so "is this domain local" is an index lookup.
 * table.c refuses local parts holding '@', so the part after the first
 * '@' is the domain.
 *
 * Invariants:
 *  - Values only ever travel as parameters ($1, $2, $3) of PQexecParams;
 *    no SQL text is built from a value.
 *  - The schema is created on open inside one transaction holding
 *    pg_advisory_xact_lock(TP_LOCK_KEY): two nodes opening a new database
 *    at once serialise instead of clashing on CREATE TABLE.  A database
 *    already at this version gets no DDL at all, so a role without CREATE
 *    rights can use a schema made by another.
 *  - Lookups are synchronous: connect_timeout defaults to 5 s (the
 *    CONNINFO may set its own) and statement_timeout is 5 s, so a stuck
 *    server costs a caller at most that long, then TABLE_TEMPFAIL; after
 *    a failed reconnect, lookups fail at once for TP_RETRY_AFTER seconds
 *    instead of each waiting for the connect timeout.
 *  - Nothing is cached: a running ternd sees a row committed by tern or by
 *    another node at its next lookup.
 *  - A query that fails because the connection broke (server restart,
 *    network) is retried once after PQreset; a connection found broken
 *    before a query is reset first.  So a ternd survives a database
 *    restart without being restarted itself.
 *  - A handle (one PGconn) is used by one thread at a time.
 *
 * Security: error texts name the server by host, port and database only;
 * the CONNINFO (which may hold a password) is never logged or returned.
 */
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "table/table_engine.h"

#define TP_SCHEMA_VERSION    1
#define TP_CONNECT_TIMEOUT   "5"	  /* seconds, unless CONNINFO says */
#define TP_STATEMENT_TIMEOUT "5000"	  /* milliseconds */
#define TP_LOCK_KEY	     "1952805486" /* 'tern': schema creation */
#define TP_DOMAIN_EXPR	     "split_part(address, '@', 2)"
#define TP_UNIQUE_VIOLATION  "23505"
#define TP_MSG_MAX	     300
#define TP_STR_(x)	     #x
#define TP_STR(x)	     TP_STR_(x)

static const char tp_sql_alias_get[] =
    "SELECT target FROM aliases WHERE address = $1 ORDER BY target COLLATE "
    "\"C\"";
static const char tp_sql_user_get[] =
    "SELECT maildir FROM users WHERE address = $1";
static const char tp_sql_domain_known[] =
    "SELECT EXISTS(SELECT 1 FROM domains WHERE name = $1) "
    "OR EXISTS(SELECT 1 FROM users WHERE " TP_DOMAIN_EXPR " = $1) "
    "OR EXISTS(SELECT 1 FROM aliases WHERE " TP_DOMAIN_EXPR " = $1)";
static const char tp_sql_user_add[] =
    "INSERT INTO users(address, password, maildir, created) "
    "VALUES($1, $2, NULL, $3)";
static const char tp_sql_user_del[] = "DELETE FROM users WHERE address = $1";
static const char tp_sql_user_passwd[] =
    "UPDATE users SET password = $2 WHERE address = $1";
static const char tp_sql_user_maildir[] =
    "UPDATE users SET maildir = $2 WHERE address = $1";
static const char tp_sql_user_pwhash[] =
    "SELECT password FROM users WHERE address = $1";
static const char tp_sql_user_list[] =
    "SELECT address, password IS NOT NULL FROM users "
    "ORDER BY address COLLATE \"C\"";
static const char tp_sql_alias_add[] =
    "INSERT INTO aliases(address, target) VALUES($1, $2)";
static const char tp_sql_alias_del_one[] =
    "DELETE FROM aliases WHERE address = $1 AND target = $2";
static const char tp_sql_alias_del_all[] =
    "DELETE FROM aliases WHERE address = $1";
static const char tp_sql_alias_list_all[] =
    "SELECT address, target FROM aliases "
    "ORDER BY address COLLATE \"C\", target COLLATE \"C\"";
static const char tp_sql_alias_list_one[] =
    "SELECT address, target FROM aliases WHERE address = $1 "
    "ORDER BY target COLLATE \"C\"";

/* Run only while holding the advisory lock, on a database without it. */
static const char tp_schema[] =
    "CREATE TABLE IF NOT EXISTS tern_schema(version INT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS users(address TEXT PRIMARY KEY, "
    "password TEXT, maildir TEXT, created BIGINT);"
    "CREATE TABLE IF NOT EXISTS aliases(address TEXT, target TEXT, "
    "PRIMARY KEY(address, target));"
    "CREATE TABLE IF NOT EXISTS domains(name TEXT PRIMARY KEY);"
    "CREATE INDEX IF NOT EXISTS users_domain ON users((" TP_DOMAIN_EXPR "));"
    "CREATE INDEX IF NOT EXISTS aliases_domain ON aliases((" TP_DOMAIN_EXPR
    "));"
    "DELETE FROM tern_schema;"
    "INSERT INTO tern_schema(version) VALUES(" TP_STR(TP_SCHEMA_VERSION) ");";

#define TP_RETRY_AFTER                                                         \
	5 /* s: a server that failed to answer is not tried                    \
	     again sooner, so lookups fail fast meanwhile */

struct tp {
	PGconn *conn;
	time_t down_until; /* no reconnect before this */
};

static PGconn *
tp_conn(struct table *t)
{
	return ((struct tp *)t->h)->conn;
}

/* ---- errors ------------------------------------------------------------ */

/* "host:port/dbname" of the server: names it without the CONNINFO. */
static void
tp_server(PGconn *conn, char *out, size_t outlen)
{
	const char *h = PQhost(conn), *p = PQport(conn), *d = PQdb(conn);

	/* for error messages only: a long name is cut, not replaced */
	str_fmt_cut(out, outlen, "%s:%s/%s", h != NULL ? h : "?",
	    p != NULL ? p : "?", d != NULL ? d : "?");
}

/* The first line of libpq's message: the primary text of a server error,
 * else the connection's own message. */
static void
tp_message(PGconn *conn, const PGresult *r, char *out, size_t outlen)
{
	const char *m = NULL;

	if (r != NULL)
		m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
	if ((m == NULL || *m == '\0') && r != NULL)
		m = PQresultErrorMessage(r);
	if (m == NULL || *m == '\0')
		m = PQerrorMessage(conn);
	if (m == NULL || *m == '\0')
		m = "unknown error";
	str_fmt_cut(out, outlen, "%.*s", (int)strcspn(m, "\r\n"), m);
}

/* Database trouble: note it (r may be NULL), free r. */
static enum table_status
tp_fail(struct table *t, PGresult *r, const char *what)
{
	char server[TP_MSG_MAX], msg[TP_MSG_MAX];

	tp_server(tp_conn(t), server, sizeof(server));
	tp_message(tp_conn(t), r, msg, sizeof(msg));
	table_set_error(t, "pgsql %s: %s: %s", server, what, msg);
	PQclear(r);
	return TABLE_TEMPFAIL;
}

static bool
tp_ok(const PGresult *r)
{
	ExecStatusType s = PQresultStatus(r);

	return r != NULL && (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK);
}

static bool
tp_is_unique_violation(const PGresult *r)
{
	const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);

	return state != NULL && strcmp(state, TP_UNIQUE_VIOLATION) == 0;
}

/* ---- running statements ------------------------------------------------ */

/* One parameterless statement at open time; -1 with the error set. */
static int
tp_simple(struct table *t, const char *sql, const char *what)
{
	PGresult *r = PQexec(tp_conn(t), sql);

	if (!tp_ok(r)) {
		(void)tp_fail(t, r, what);
		return -1;
	}
	PQclear(r);
	return 0;
}

/* What every session needs, on connect and after each reconnect. */
static int
tp_session_setup(struct table *t)
{
	if (PQsetClientEncoding(tp_conn(t), "UTF8") != 0) {
		(void)tp_fail(t, NULL, "client_encoding");
		return -1;
	}
	return tp_simple(t, "SET statement_timeout = " TP_STATEMENT_TIMEOUT,
	    "statement_timeout");
}

/* Reconnect with the same parameters; -1 with the error set (for the
 * operation what, so "add user: connection ... refused"). */
static int
tp_reset(struct table *t, const char *what)
{
	struct tp *tp = t->h;
	time_t now = time(NULL);

	/* ternd looks up on its event loop: a dead server (connect_timeout
	 * each time) must not stall every RCPT, so wait before trying again */
	if (now < tp->down_until) {
		char server[TP_MSG_MAX];

		tp_server(tp->conn, server, sizeof(server));
		table_set_error(t,
		    "pgsql %s: %s: server unreachable, retrying in "
		    "%lld s",
		    server, what, (long long)(tp->down_until - now));
		return -1;
	}
	PQreset(tp->conn);
	if (PQstatus(tp->conn) != CONNECTION_OK) {
		tp->down_until = time(NULL) + TP_RETRY_AFTER;
		(void)tp_fail(t, NULL, what);
		return -1;
	}
	tp->down_until = 0;
	return tp_session_setup(t);
}

/*
 * Run sql with n text parameters (a NULL value is SQL NULL).  TABLE_OK
 * with *out (the caller PQclears it), TABLE_EXISTS on a unique violation,
 * TABLE_TEMPFAIL with the error set.  A broken connection is reset and
 * the statement run again, once: every statement here is a single
 * autocommitted one, so running it again is safe (an insert whose commit
 * was lost with the connection comes back as TABLE_EXISTS).
 */
static enum table_status
tp_query(struct table *t, const char *what, const char *sql, int n,
    const char *const *v, PGresult **out)
{
	bool reset = false;
	PGresult *r;

	*out = NULL;
	if (PQstatus(tp_conn(t)) != CONNECTION_OK) {
		/* broken by an earlier failure: try the server again now */
		if (tp_reset(t, what) != 0)
			return TABLE_TEMPFAIL;
		reset = true;
	}
	r = PQexecParams(tp_conn(t), sql, n, NULL, v, NULL, NULL, 0);
	if (!tp_ok(r) && !reset && PQstatus(tp_conn(t)) != CONNECTION_OK) {
		PQclear(r);
		if (tp_reset(t, what) != 0)
			return TABLE_TEMPFAIL;
		r = PQexecParams(tp_conn(t), sql, n, NULL, v, NULL, NULL, 0);
	}
	if (tp_ok(r)) {
		*out = r;
		return TABLE_OK;
	}
	if (r != NULL && tp_is_unique_violation(r)) {
		PQclear(r);
		return TABLE_EXISTS;
	}
	return tp_fail(t, r, what);
}

/* A statement that changes rows; *changes_out gets how many. */
static enum table_status
tp_exec(struct table *t, const char *what, const char *sql, int n,
    const char *const *v, int *changes_out)
{
	PGresult *r;
	enum table_status st = tp_query(t, what, sql, n, v, &r);

	if (st != TABLE_OK)
		return st;
	if (changes_out != NULL)
		*changes_out = atoi(PQcmdTuples(r));
	PQclear(r);
	return TABLE_OK;
}

/*
 * A query for at most one row whose first column is text (or NULL).
 * TABLE_OK with out filled (NULL column: *null_out), TABLE_NOTFOUND.
 */
static enum table_status
tp_get_text(struct table *t, const char *sql, const char *key, char *out,
    size_t outlen, bool *null_out)
{
	const char *v[1] = {key};
	PGresult *r;
	enum table_status st = tp_query(t, "read", sql, 1, v, &r);

	if (st != TABLE_OK)
		return st;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return TABLE_NOTFOUND;
	}
	*null_out = PQgetisnull(r, 0, 0) != 0;
	if (str_copy(out, outlen, PQgetvalue(r, 0, 0),
		(size_t)PQgetlength(r, 0, 0)) != 0) {
		PQclear(r);
		table_set_error(t, "%s: stored value too long", key);
		return TABLE_TEMPFAIL;
	}
	PQclear(r);
	return TABLE_OK;
}

/* ---- opening ----------------------------------------------------------- */

/* Version in tern_schema, 0 when the table does not exist yet. */
static int
tp_schema_version(struct table *t, int *v)
{
	PGresult *r = PQexec(tp_conn(t),
	    "SELECT CASE WHEN to_regclass('tern_schema') IS NULL THEN NULL "
	    "ELSE 1 END");

	if (!tp_ok(r) || PQntuples(r) != 1) {
		(void)tp_fail(t, r, "schema version");
		return -1;
	}
	*v = 0;
	if (PQgetisnull(r, 0, 0)) {
		PQclear(r);
		return 0;
	}
	PQclear(r);
	r = PQexec(
	    tp_conn(t), "SELECT coalesce(max(version), 0) FROM tern_schema");
	if (!tp_ok(r) || PQntuples(r) != 1) {
		(void)tp_fail(t, r, "schema version");
		return -1;
	}
	*v = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	return 0;
}

/* Create or check the schema, in one transaction under the lock. */
static int
tp_schema_setup(struct table *t)
{
	char server[TP_MSG_MAX];
	int v = 0;

	if (tp_simple(t, "BEGIN", "begin") != 0)
		return -1;
	if (tp_simple(t, "SELECT pg_advisory_xact_lock(" TP_LOCK_KEY ")",
		"schema lock") != 0 ||
	    tp_schema_version(t, &v) != 0)
		goto fail;
	if (v > TP_SCHEMA_VERSION) {
		tp_server(tp_conn(t), server, sizeof(server));
		table_set_error(t,
		    "pgsql %s: schema version %d is newer than "
		    "this tern knows (%d)",
		    server, v, TP_SCHEMA_VERSION);
		goto fail;
	}
	if (v < TP_SCHEMA_VERSION &&
	    tp_simple(t, tp_schema, "create schema") != 0)
		goto fail;
	return tp_simple(t, "COMMIT", "commit");
fail:
	PQclear(PQexec(tp_conn(t), "ROLLBACK"));
	return -1;
}

static void
tp_close(struct table *t)
{
	struct tp *tp = t->h;

	if (tp == NULL)
		return;
	PQfinish(tp->conn);
	free(tp);
	t->h = NULL;
}

/*
 * connect_timeout comes first and the CONNINFO (expanded from dbname)
 * after it: libpq keeps the last value of a repeated keyword, so a
 * CONNINFO with its own connect_timeout wins over the default.
 */
static int
tp_open(struct table *t, const char *conninfo)
{
	static const char *const kw[] = {
	    "connect_timeout", "fallback_application_name", "dbname", NULL};
	const char *val[] = {TP_CONNECT_TIMEOUT, "tern", conninfo, NULL};
	struct tp *tp = xcalloc(1, sizeof(*tp));

	t->h = tp;
	tp->conn = PQconnectdbParams(kw, val, 1);
	if (tp->conn == NULL) {
		table_set_error(t, "pgsql: out of memory");
		goto fail;
	}
	if (PQstatus(tp->conn) != CONNECTION_OK) {
		(void)tp_fail(t, NULL, "connect");
		goto fail;
	}
	if (tp_session_setup(t) != 0 || tp_schema_setup(t) != 0)
		goto fail;
	return 0;
fail:
	tp_close(t);
	return -1;
}

/* ---- lookups ----------------------------------------------------------- */

static enum table_status
tp_alias_get(struct table *t, const char *key,
    void (*cb)(const char *target, void *ctx), void *ctx)
{
	const char *v[1] = {key};
	PGresult *r;
	enum table_status st =
	    tp_query(t, "read aliases", tp_sql_alias_get, 1, v, &r);
	int i;

	if (st != TABLE_OK)
		return st;
	for (i = 0; i < PQntuples(r); i++)
		if (!PQgetisnull(r, i, 0))
			cb(PQgetvalue(r, i, 0), ctx);
	PQclear(r);
	return TABLE_OK;
}

static enum table_status
tp_user_get(struct table *t, const char *key, char *maildir, size_t len)
{
	bool null;

	return tp_get_text(t, tp_sql_user_get, key, maildir, len, &null);
}

static enum table_status
tp_domain_known(struct table *t, const char *domain)
{
	const char *v[1] = {domain};
	PGresult *r;
	enum table_status st =
	    tp_query(t, "read domains", tp_sql_domain_known, 1, v, &r);
	bool known;

	if (st != TABLE_OK)
		return st;
	known = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	PQclear(r);
	return known ? TABLE_OK : TABLE_NOTFOUND;
}

/* ---- administration ---------------------------------------------------- */

static enum table_status
tp_user_add(struct table *t, const char *key, const char *pwhash)
{
	char created[32];
	const char *v[3] = {key, pwhash, created};
	enum table_status st;

	if (str_fmt(created, sizeof(created), "%lld", (long long)time(NULL)) !=
	    0) {
		table_set_error(t, "add user %s: time too long", key);
		return TABLE_TEMPFAIL;
	}
	st = tp_exec(t, "add user", tp_sql_user_add, 3, v, NULL);
	if (st == TABLE_EXISTS)
		table_set_error(t, "user %s already exists", key);
	return st;
}

static enum table_status
tp_user_del(struct table *t, const char *key)
{
	const char *v[1] = {key};
	int n = 0;
	enum table_status st = tp_exec(t, "write", tp_sql_user_del, 1, v, &n);

	return table_changed(t, st, n, "user", key);
}

static enum table_status
tp_user_passwd(struct table *t, const char *key, const char *pwhash)
{
	const char *v[2] = {key, pwhash};
	int n = 0;
	enum table_status st =
	    tp_exec(t, "write", tp_sql_user_passwd, 2, v, &n);

	return table_changed(t, st, n, "user", key);
}

static enum table_status
tp_user_set_maildir(struct table *t, const char *key, const char *maildir)
{
	const char *v[2] = {key, maildir};
	int n = 0;
	enum table_status st =
	    tp_exec(t, "write", tp_sql_user_maildir, 2, v, &n);

	return table_changed(t, st, n, "user", key);
}

static enum table_status
tp_user_pwhash(
    struct table *t, const char *key, char *out, size_t outlen, bool *null)
{
	return tp_get_text(t, tp_sql_user_pwhash, key, out, outlen, null);
}

static enum table_status
tp_user_list(struct table *t,
    void (*cb)(const char *address, bool has_password, void *ctx), void *ctx)
{
	PGresult *r;
	enum table_status st =
	    tp_query(t, "list users", tp_sql_user_list, 0, NULL, &r);
	int i;

	if (st != TABLE_OK)
		return st;
	for (i = 0; i < PQntuples(r); i++)
		if (!PQgetisnull(r, i, 0))
			cb(PQgetvalue(r, i, 0),
			    strcmp(PQgetvalue(r, i, 1), "t") == 0, ctx);
	PQclear(r);
	return TABLE_OK;
}

static enum table_status
tp_alias_add(struct table *t, const char *key, const char *target)
{
	const char *v[2] = {key, target};
	enum table_status st =
	    tp_exec(t, "write", tp_sql_alias_add, 2, v, NULL);

	if (st == TABLE_EXISTS)
		table_set_error(
		    t, "alias %s -> %s already exists", key, target);
	return st;
}

static enum table_status
tp_alias_del(struct table *t, const char *key, const char *target)
{
	const char *v[2] = {key, target};
	int n = 0;
	enum table_status st;

	if (target != NULL)
		st = tp_exec(t, "write", tp_sql_alias_del_one, 2, v, &n);
	else
		st = tp_exec(t, "write", tp_sql_alias_del_all, 1, v, &n);
	if (st == TABLE_OK && n == 0 && target != NULL) {
		table_set_error(t, "no such alias: %s -> %s", key, target);
		return TABLE_NOTFOUND;
	}
	return table_changed(t, st, n, "alias", key);
}

static enum table_status
tp_alias_list(struct table *t, const char *key,
    void (*cb)(const char *address, const char *target, void *ctx), void *ctx)
{
	const char *v[1] = {key};
	PGresult *r;
	enum table_status st;
	int i;

	if (key == NULL)
		st = tp_query(
		    t, "list aliases", tp_sql_alias_list_all, 0, NULL, &r);
	else
		st = tp_query(
		    t, "list aliases", tp_sql_alias_list_one, 1, v, &r);
	if (st != TABLE_OK)
		return st;
	for (i = 0; i < PQntuples(r); i++)
		if (!PQgetisnull(r, i, 0) && !PQgetisnull(r, i, 1))
			cb(PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), ctx);
	PQclear(r);
	return TABLE_OK;
}

const struct table_engine table_engine_pgsql = {
    .prefix = "pgsql:",
    .remote = true,
    .open = tp_open,
    .close = tp_close,
    .alias_get = tp_alias_get,
    .user_get = tp_user_get,
    .domain_known = tp_domain_known,
    .user_add = tp_user_add,
    .user_del = tp_user_del,
    .user_passwd = tp_user_passwd,
    .user_set_maildir = tp_user_set_maildir,
    .user_pwhash = tp_user_pwhash,
    .user_list = tp_user_list,
    .alias_add = tp_alias_add,
    .alias_del = tp_alias_del,
    .alias_list = tp_alias_list,
};
