/*
 * greylist_pg: the greylist store in the PostgreSQL database of
 * tables.users = pgsql:CONNINFO, so several MX nodes on one database
 * share triplets and whitelisted networks (docs/defence.md
 * "Greylisting").
 *
 * Schema (greylist_schema.version = GREYLIST_PG_SCHEMA_VERSION), beside
 * and apart from the table engine's (its own version, so either evolves
 * alone):
 *   greylist_triplets(net, sender, rcpt, first_seen, last_seen)
 *   greylist_clients(net, until_t)
 * Made inside one transaction holding the table engine's advisory lock
 * (two nodes starting on a new database serialise), no DDL when already
 * at this version, a newer version refused.
 *
 * Bounded: connect_timeout 3 s (unless CONNINFO says), statement_timeout
 * GP_STATEMENT_MS, and a node holding a transaction open cannot keep
 * others' rows locked beyond idle_in_transaction_session_timeout.  After
 * a failed reconnect the store fails at once for GP_RETRY_AFTER seconds
 * instead of each RCPT waiting for the connect timeout, and after a
 * statement timed out it is not asked for as long (the checks queued
 * behind the mutex then fail at once, not one timeout each).  A connection
 * broken under BEGIN (the server restarted) is reset and BEGIN tried once
 * more; a failure after BEGIN fails that one check (rolled back).
 *
 * Times are the nodes' own clocks (seconds): nodes sharing a database
 * must keep them in step (NTP), as they do for the queue.
 *
 * Values travel only as parameters.  The CONNINFO (it may hold a
 * password) is never logged: errors name host:port/dbname.
 */
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "greylist/greylist.h"
#include "greylist/greylist_store.h"

#define GP_CONNECT_TIMEOUT "3" /* seconds, unless CONNINFO says */
#define GP_STATEMENT_MS	   "3000"
#define GP_IDLE_TX_MS	   "10000"
#define GP_LOCK_KEY	   "1952805486" /* the table engine's: all DDL */
#define GP_RETRY_AFTER	   5		/* s without reconnecting */
#define GP_PURGE_BATCH	   "1000"	/* rows per table per purge */
#define GP_QUERY_CANCELED  "57014"
#define GP_SERVER_MAX	   300
#define GP_STR_(x)	   #x
#define GP_STR(x)	   GP_STR_(x)

static const char gp_schema[] =
    "CREATE TABLE IF NOT EXISTS greylist_schema(version INT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS greylist_triplets(net TEXT NOT NULL, "
    "sender TEXT NOT NULL, rcpt TEXT NOT NULL, first_seen BIGINT NOT NULL, "
    "last_seen BIGINT NOT NULL, PRIMARY KEY(net, sender, rcpt));"
    "CREATE INDEX IF NOT EXISTS greylist_triplets_last "
    "ON greylist_triplets(last_seen);"
    "CREATE TABLE IF NOT EXISTS greylist_clients(net TEXT PRIMARY KEY, "
    "until_t BIGINT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS greylist_clients_until "
    "ON greylist_clients(until_t);"
    "DELETE FROM greylist_schema;"
    "INSERT INTO greylist_schema(version) "
    "VALUES(" GP_STR(GREYLIST_PG_SCHEMA_VERSION) ");";

static const char gp_sql_client_get[] =
    "SELECT until_t FROM greylist_clients WHERE net = $1";
static const char gp_sql_client_put[] =
    "INSERT INTO greylist_clients(net, until_t) VALUES($1, $2) "
    "ON CONFLICT(net) DO UPDATE SET until_t = "
    "greatest(greylist_clients.until_t, excluded.until_t)";
/* FOR UPDATE: two nodes checking one triplet at once take turns */
static const char gp_sql_triplet_get[] =
    "SELECT first_seen, last_seen FROM greylist_triplets WHERE net = $1 "
    "AND sender = $2 AND rcpt = $3 FOR UPDATE";
static const char gp_sql_triplet_new[] =
    "INSERT INTO greylist_triplets(net, sender, rcpt, first_seen, "
    "last_seen) VALUES($1, $2, $3, $4, $4) ON CONFLICT(net, sender, rcpt) "
    "DO UPDATE SET first_seen = excluded.first_seen, "
    "last_seen = excluded.last_seen";
static const char gp_sql_triplet_seen[] =
    "UPDATE greylist_triplets SET last_seen = $4 WHERE net = $1 AND "
    "sender = $2 AND rcpt = $3";
/* bounded: one run removes at most GP_PURGE_BATCH rows of each table,
 * and SKIP LOCKED leaves rows another node is using alone */
static const char gp_sql_purge_triplets[] =
    "DELETE FROM greylist_triplets WHERE ctid = ANY(ARRAY("
    "SELECT ctid FROM greylist_triplets WHERE last_seen < $1 "
    "LIMIT " GP_PURGE_BATCH " FOR UPDATE SKIP LOCKED))";
static const char gp_sql_purge_clients[] =
    "DELETE FROM greylist_clients WHERE ctid = ANY(ARRAY("
    "SELECT ctid FROM greylist_clients WHERE until_t < $1 "
    "LIMIT " GP_PURGE_BATCH " FOR UPDATE SKIP LOCKED))";

struct gl_pg {
	PGconn *conn;
	time_t down_until; /* no reconnect before this */
	time_t slow_until; /* a statement timed out: fail at once until */
};

/* "host:port/dbname": names the server without the CONNINFO */
static const char *
gp_server(const struct gl_pg *p, char *out, size_t outlen)
{
	const char *h = PQhost(p->conn), *port = PQport(p->conn),
		   *d = PQdb(p->conn);

	/* for error texts only: a long name is cut, not replaced */
	str_fmt_cut(out, outlen, "%s:%s/%s", h != NULL ? h : "?",
	    port != NULL ? port : "?", d != NULL ? d : "?");
	return out;
}

/* statement_timeout fired (query_canceled) */
static bool
gp_is_timeout(const PGresult *r)
{
	const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);

	return state != NULL && strcmp(state, GP_QUERY_CANCELED) == 0;
}

/* "pgsql host:port/dbname: what: first line of the message"; a timeout
 * also opens the slow pause (gp_begin). */
static int
gp_fail(
    struct gl_pg *p, PGresult *r, const char *what, char *err, size_t errlen)
{
	char server[GP_SERVER_MAX];
	const char *m = NULL;

	if (r != NULL)
		m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
	if (r != NULL && gp_is_timeout(r))
		p->slow_until = time(NULL) + GP_RETRY_AFTER;
	if (m == NULL || *m == '\0')
		m = PQerrorMessage(p->conn);
	if (m == NULL || *m == '\0')
		m = "unknown error";
	str_fmt_cut(err, errlen, "pgsql %s: %s: %.*s",
	    gp_server(p, server, sizeof(server)), what, (int)strcspn(m, "\r\n"),
	    m);
	PQclear(r);
	return -1;
}

static bool
gp_ok(const PGresult *r)
{
	ExecStatusType s = PQresultStatus(r);

	return r != NULL && (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK);
}

static int
gp_simple(struct gl_pg *p, const char *sql, const char *what, char *err,
    size_t errlen)
{
	PGresult *r = PQexec(p->conn, sql);

	if (!gp_ok(r))
		return gp_fail(p, r, what, err, errlen);
	PQclear(r);
	return 0;
}

/* sql with n parameters: *out (PQclear it), or -1 with err. */
static int
gp_query(struct gl_pg *p, const char *what, const char *sql, int n,
    const char *const *v, PGresult **out, char *err, size_t errlen)
{
	PGresult *r = PQexecParams(p->conn, sql, n, NULL, v, NULL, NULL, 0);

	*out = NULL;
	if (!gp_ok(r))
		return gp_fail(p, r, what, err, errlen);
	*out = r;
	return 0;
}

static int
gp_write(struct gl_pg *p, const char *what, const char *sql, int n,
    const char *const *v, char *err, size_t errlen)
{
	PGresult *r;

	if (gp_query(p, what, sql, n, v, &r, err, errlen) != 0)
		return -1;
	PQclear(r);
	return 0;
}

static int
gp_session_setup(struct gl_pg *p, char *err, size_t errlen)
{
	if (PQsetClientEncoding(p->conn, "UTF8") != 0)
		return gp_fail(p, NULL, "client_encoding", err, errlen);
	return gp_simple(p,
	    "SET statement_timeout = " GP_STATEMENT_MS
	    "; SET idle_in_transaction_session_timeout = " GP_IDLE_TX_MS,
	    "session setup", err, errlen);
}

/* Reconnect, at most once every GP_RETRY_AFTER seconds. */
static int
gp_reset(struct gl_pg *p, char *err, size_t errlen)
{
	char server[GP_SERVER_MAX];
	time_t now = time(NULL);

	if (now < p->down_until) {
		str_fmt_cut(err, errlen,
		    "pgsql %s: reconnect: server unreachable, retrying in "
		    "%lld s",
		    gp_server(p, server, sizeof(server)),
		    (long long)(p->down_until - now));
		return -1;
	}
	PQreset(p->conn);
	if (PQstatus(p->conn) != CONNECTION_OK) {
		p->down_until = time(NULL) + GP_RETRY_AFTER;
		return gp_fail(p, NULL, "reconnect", err, errlen);
	}
	p->down_until = 0;
	return gp_session_setup(p, err, errlen);
}

static int
gp_begin(void *h, char *err, size_t errlen)
{
	struct gl_pg *p = h;
	char server[GP_SERVER_MAX];
	bool reset = false;
	time_t now = time(NULL);

	/* a database that just timed out is not asked for a while: checks
	 * queued behind the lock then cost nothing instead of a statement
	 * timeout each, and the worker threads stay free */
	if (now < p->slow_until) {
		str_fmt_cut(err, errlen,
		    "pgsql %s: a statement timed out, not asking for %lld s",
		    gp_server(p, server, sizeof(server)),
		    (long long)(p->slow_until - now));
		return -1;
	}
	if (PQstatus(p->conn) != CONNECTION_OK) {
		if (gp_reset(p, err, errlen) != 0)
			return -1;
		reset = true;
	}
	if (gp_simple(p, "BEGIN", "begin", err, errlen) == 0)
		return 0;
	/* broken since the last check (a server restart): once more */
	if (reset || PQstatus(p->conn) == CONNECTION_OK ||
	    gp_reset(p, err, errlen) != 0)
		return -1;
	return gp_simple(p, "BEGIN", "begin", err, errlen);
}

static int
gp_commit(void *h, char *err, size_t errlen)
{
	return gp_simple(h, "COMMIT", "commit", err, errlen);
}

static void
gp_rollback(void *h)
{
	struct gl_pg *p = h;

	if (PQstatus(p->conn) == CONNECTION_OK)
		PQclear(PQexec(p->conn, "ROLLBACK"));
}

/* v as decimal text into buf */
static const char *
gp_int(char *buf, size_t len, int64_t v)
{
	str_fmt_cut(buf, len, "%lld", (long long)v);
	return buf;
}

static int
gp_client_get(
    void *h, const char *net, int64_t *until, char *err, size_t errlen)
{
	const char *v[1] = {net};
	PGresult *r;
	int found;

	if (gp_query(h, "client", gp_sql_client_get, 1, v, &r, err, errlen) !=
	    0)
		return -1;
	found = PQntuples(r) > 0;
	if (found)
		*until = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return found;
}

static int
gp_client_put(void *h, const char *net, int64_t until, char *err, size_t errlen)
{
	char u[24];
	const char *v[2] = {net, gp_int(u, sizeof(u), until)};

	return gp_write(h, "whitelist", gp_sql_client_put, 2, v, err, errlen);
}

static int
gp_triplet_get(void *h, const char *net, const char *sender, const char *rcpt,
    int64_t *first, int64_t *last, char *err, size_t errlen)
{
	const char *v[3] = {net, sender, rcpt};
	PGresult *r;
	int found;

	if (gp_query(h, "triplet", gp_sql_triplet_get, 3, v, &r, err, errlen) !=
	    0)
		return -1;
	found = PQntuples(r) > 0;
	if (found) {
		*first = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		*last = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
	}
	PQclear(r);
	return found;
}

static int
gp_triplet_new(void *h, const char *net, const char *sender, const char *rcpt,
    int64_t now, char *err, size_t errlen)
{
	char t[24];
	const char *v[4] = {net, sender, rcpt, gp_int(t, sizeof(t), now)};

	return gp_write(h, "insert", gp_sql_triplet_new, 4, v, err, errlen);
}

static int
gp_triplet_seen(void *h, const char *net, const char *sender, const char *rcpt,
    int64_t last, char *err, size_t errlen)
{
	char t[24];
	const char *v[4] = {net, sender, rcpt, gp_int(t, sizeof(t), last)};

	return gp_write(h, "update", gp_sql_triplet_seen, 4, v, err, errlen);
}

static int
gp_purge(void *h, int64_t now, int64_t expire, char *err, size_t errlen)
{
	char t1[24], t2[24];
	const char *v1[1] = {gp_int(t1, sizeof(t1), now - expire)};
	const char *v2[1] = {gp_int(t2, sizeof(t2), now)};

	if (gp_write(h, "purge", gp_sql_purge_triplets, 1, v1, err, errlen) !=
	    0)
		return -1;
	return gp_write(h, "purge", gp_sql_purge_clients, 1, v2, err, errlen);
}

static void
gp_close(void *h)
{
	struct gl_pg *p = h;

	if (p == NULL)
		return;
	PQfinish(p->conn);
	free(p);
}

/* Version in greylist_schema, 0 when the table does not exist yet. */
static int
gp_schema_version(struct gl_pg *p, int *v, char *err, size_t errlen)
{
	PGresult *r = PQexec(p->conn,
	    "SELECT CASE WHEN to_regclass('greylist_schema') IS NULL THEN 0 "
	    "ELSE 1 END");

	if (!gp_ok(r) || PQntuples(r) != 1)
		return gp_fail(p, r, "schema version", err, errlen);
	*v = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	if (*v == 0)
		return 0;
	r = PQexec(
	    p->conn, "SELECT coalesce(max(version), 0) FROM greylist_schema");
	if (!gp_ok(r) || PQntuples(r) != 1)
		return gp_fail(p, r, "schema version", err, errlen);
	*v = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	return 0;
}

static int
gp_schema_setup(struct gl_pg *p, char *err, size_t errlen)
{
	char server[GP_SERVER_MAX];
	int v = 0;

	if (gp_simple(p, "BEGIN", "begin", err, errlen) != 0)
		return -1;
	if (gp_simple(p, "SELECT pg_advisory_xact_lock(" GP_LOCK_KEY ")",
		"schema lock", err, errlen) != 0 ||
	    gp_schema_version(p, &v, err, errlen) != 0)
		goto fail;
	if (v > GREYLIST_PG_SCHEMA_VERSION) {
		str_fmt_cut(err, errlen,
		    "pgsql %s: greylist schema version %d is newer than this "
		    "tern knows (%d)",
		    gp_server(p, server, sizeof(server)), v,
		    GREYLIST_PG_SCHEMA_VERSION);
		goto fail;
	}
	if (v < GREYLIST_PG_SCHEMA_VERSION &&
	    gp_simple(p, gp_schema, "create schema", err, errlen) != 0)
		goto fail;
	return gp_simple(p, "COMMIT", "commit", err, errlen);
fail:
	PQclear(PQexec(p->conn, "ROLLBACK"));
	return -1;
}

static const struct gl_ops gl_pg_ops = {
    .name = "pgsql",
    .begin = gp_begin,
    .commit = gp_commit,
    .rollback = gp_rollback,
    .client_get = gp_client_get,
    .client_put = gp_client_put,
    .triplet_get = gp_triplet_get,
    .triplet_new = gp_triplet_new,
    .triplet_seen = gp_triplet_seen,
    .purge = gp_purge,
    .close = gp_close,
};

/*
 * connect_timeout first and the CONNINFO (expanded from dbname) after
 * it: libpq keeps the last value of a repeated keyword, so a CONNINFO
 * with its own connect_timeout wins.
 */
int
greylist_open_pgsql(
    const char *conninfo, struct greylist **out, char *err, size_t errlen)
{
	static const char *const kw[] = {
	    "connect_timeout", "fallback_application_name", "dbname", NULL};
	const char *val[] = {
	    GP_CONNECT_TIMEOUT, "tern-greylist", conninfo, NULL};
	struct gl_pg *p = xcalloc(1, sizeof(*p));

	*out = NULL;
	p->conn = PQconnectdbParams(kw, val, 1);
	if (p->conn == NULL) {
		str_fmt_cut(err, errlen, "pgsql: out of memory");
		free(p);
		return -1;
	}
	if (PQstatus(p->conn) != CONNECTION_OK) {
		(void)gp_fail(p, NULL, "connect", err, errlen);
		goto fail;
	}
	if (gp_session_setup(p, err, errlen) != 0 ||
	    gp_schema_setup(p, err, errlen) != 0)
		goto fail;
	*out = gl_new(&gl_pg_ops, p);
	return 0;
fail:
	gp_close(p);
	return -1;
}
