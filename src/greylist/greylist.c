/*
 * greylist: the greylisting store (greylist.h).
 *
 * Schema (PRAGMA user_version = GREYLIST_SCHEMA_VERSION):
 *  - triplets(net, sender, rcpt, first, last): first: when the triplet
 *    was first seen (its delay counts from there), last: when it was last
 *    seen (its row expires from there).  sender and rcpt lower-cased.
 *  - clients(net, until): networks whitelisted until that time.
 *  - The schema is made or migrated inside BEGIN IMMEDIATE; a file of a
 *    newer version is refused rather than misread.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sqldb/sqldb.h"
#include "greylist/greylist.h"
#include "greylist/greylist_store.h"

#define GL_BUSY_MS	     5000
#define GREYLIST_PURGE_EVERY 4096

enum gl_stmt {
	GL_CLIENT_GET,
	GL_CLIENT_PUT,
	GL_TRIPLET_GET,
	GL_TRIPLET_NEW,
	GL_TRIPLET_SEEN,
	GL_PURGE_TRIPLETS,
	GL_PURGE_CLIENTS,
	GL_NSTMT
};

static const char *const gl_sql[GL_NSTMT] = {
    [GL_CLIENT_GET] = "SELECT until FROM clients WHERE net = ?1",
    [GL_CLIENT_PUT] = "INSERT INTO clients(net, until) VALUES(?1, ?2) "
		      "ON CONFLICT(net) DO UPDATE SET until = excluded.until",
    [GL_TRIPLET_GET] = "SELECT first, last FROM triplets WHERE net = ?1 "
		       "AND sender = ?2 AND rcpt = ?3",
    [GL_TRIPLET_NEW] =
	"INSERT INTO triplets(net, sender, rcpt, first, last) "
	"VALUES(?1, ?2, ?3, ?4, ?4) ON CONFLICT(net, sender, rcpt) DO "
	"UPDATE SET first = excluded.first, last = excluded.last",
    [GL_TRIPLET_SEEN] = "UPDATE triplets SET last = ?4 WHERE net = ?1 AND "
			"sender = ?2 AND rcpt = ?3",
    [GL_PURGE_TRIPLETS] = "DELETE FROM triplets WHERE last < ?1",
    [GL_PURGE_CLIENTS] = "DELETE FROM clients WHERE until < ?1",
};

static const char gl_schema_v1[] =
    "CREATE TABLE IF NOT EXISTS triplets(net TEXT NOT NULL, "
    "sender TEXT NOT NULL, rcpt TEXT NOT NULL, first INTEGER NOT NULL, "
    "last INTEGER NOT NULL, PRIMARY KEY(net, sender, rcpt));"
    "CREATE INDEX IF NOT EXISTS triplets_last ON triplets(last);"
    "CREATE TABLE IF NOT EXISTS clients(net TEXT PRIMARY KEY, "
    "until INTEGER NOT NULL);";

struct gl_sqlite {
	sqlite3 *db;
	sqlite3_stmt *st[GL_NSTMT];
	char path[512];
};

/* Make or migrate the schema; each version's step runs in order from the
 * file's version (version 1 is the first). */
static int
gl_schema(struct gl_sqlite *g, char *err, size_t errlen)
{
	int v = 0;

	if (sqldb_exec(g->db, g->path, "BEGIN IMMEDIATE", err, errlen) != 0)
		return -1;
	if (sqldb_user_version(g->db, &v) != 0) {
		sqldb_err(g->db, g->path, "user_version", err, errlen);
		goto fail;
	}
	if (v > GREYLIST_SCHEMA_VERSION) {
		str_fmt_cut(err, errlen,
		    "sqlite %s: schema version %d is newer than this tern "
		    "knows (%d)",
		    g->path, v, GREYLIST_SCHEMA_VERSION);
		goto fail;
	}
	if (v < 1 && sqldb_exec(g->db, g->path, gl_schema_v1, err, errlen) != 0)
		goto fail;
	if (v < GREYLIST_SCHEMA_VERSION &&
	    sqldb_exec(
		g->db, g->path, "PRAGMA user_version = 1", err, errlen) != 0)
		goto fail;
	return sqldb_exec(g->db, g->path, "COMMIT", err, errlen);
fail:
	if (sqlite3_exec(g->db, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
		log_warn("event=greylist step=rollback path=%s", g->path);
	return -1;
}

static void
gs_close(void *h)
{
	struct gl_sqlite *g = h;
	int i;

	if (g == NULL)
		return;
	for (i = 0; i < GL_NSTMT; i++)
		sqlite3_finalize(g->st[i]);
	if (g->db != NULL && sqlite3_close(g->db) != SQLITE_OK)
		log_warn("event=greylist step=close path=%s", g->path);
	free(g);
}

static int
gs_open(const char *path, struct gl_sqlite **out, char *err, size_t errlen)
{
	struct gl_sqlite *g = xcalloc(1, sizeof(*g));
	int i, fd;

	*out = NULL;
	if (str_copy(g->path, sizeof(g->path), path, strlen(path)) != 0) {
		str_fmt_cut(err, errlen, "%s: path too long", path);
		free(g);
		return -1;
	}
	/* the file holds peers' addresses: 0600 from its first byte */
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		str_fmt_cut(err, errlen, "%s: %s", path, strerror(errno));
		gs_close(g);
		return -1;
	}
	if (close(fd) != 0) /* nothing written: a failed close loses nothing */
		log_debug("event=greylist step=close path=%s", path);
	if (sqlite3_open_v2(path, &g->db,
		SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
		    SQLITE_OPEN_FULLMUTEX,
		NULL) != SQLITE_OK) {
		sqldb_err(g->db, g->path, "open", err, errlen);
		goto fail;
	}
	sqlite3_extended_result_codes(g->db, 1);
	/* WAL with synchronous NORMAL: a crash may lose the last seconds of
	 * triplets (they are greylisted once more), never corrupt the file */
	if (sqlite3_busy_timeout(g->db, GL_BUSY_MS) != SQLITE_OK ||
	    sqldb_exec(g->db, g->path, "PRAGMA journal_mode = WAL", err,
		errlen) != 0 ||
	    sqldb_exec(g->db, g->path, "PRAGMA synchronous = NORMAL", err,
		errlen) != 0 ||
	    gl_schema(g, err, errlen) != 0)
		goto fail;
	for (i = 0; i < GL_NSTMT; i++)
		if (sqlite3_prepare_v3(g->db, gl_sql[i], -1,
			SQLITE_PREPARE_PERSISTENT, &g->st[i],
			NULL) != SQLITE_OK) {
			sqldb_err(g->db, g->path, "prepare", err, errlen);
			goto fail;
		}
	*out = g;
	return 0;
fail:
	gs_close(g);
	return -1;
}

static void
gl_bind_key(
    sqlite3_stmt *s, const char *net, const char *sender, const char *rcpt)
{
	sqlite3_bind_text(s, 1, net, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, sender, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, rcpt, -1, SQLITE_STATIC);
}

/* Step s once (a write): 0, or -1 with err. */
static int
gl_write(struct gl_sqlite *g, sqlite3_stmt *s, const char *what, char *err,
    size_t errlen)
{
	int rc = sqlite3_step(s);

	sqldb_reset(s);
	return rc == SQLITE_DONE ? 0
				 : sqldb_err(g->db, g->path, what, err, errlen);
}

static int
gs_begin(void *h, char *err, size_t errlen)
{
	struct gl_sqlite *g = h;

	return sqldb_exec(g->db, g->path, "BEGIN IMMEDIATE", err, errlen);
}

static int
gs_commit(void *h, char *err, size_t errlen)
{
	struct gl_sqlite *g = h;

	return sqldb_exec(g->db, g->path, "COMMIT", err, errlen);
}

static void
gs_rollback(void *h)
{
	struct gl_sqlite *g = h;

	if (sqlite3_exec(g->db, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
		log_warn("event=greylist step=rollback path=%s", g->path);
}

static int
gs_purge(void *h, int64_t now, int64_t expire, char *err, size_t errlen)
{
	struct gl_sqlite *g = h;

	sqlite3_bind_int64(g->st[GL_PURGE_TRIPLETS], 1, now - expire);
	if (gl_write(g, g->st[GL_PURGE_TRIPLETS], "purge", err, errlen) != 0)
		return -1;
	sqlite3_bind_int64(g->st[GL_PURGE_CLIENTS], 1, now);
	return gl_write(g, g->st[GL_PURGE_CLIENTS], "purge", err, errlen);
}

static int
gs_client_get(
    void *h, const char *net, int64_t *until, char *err, size_t errlen)
{
	struct gl_sqlite *g = h;
	sqlite3_stmt *s = g->st[GL_CLIENT_GET];
	int rc;

	sqlite3_bind_text(s, 1, net, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*until = sqlite3_column_int64(s, 0);
	sqldb_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sqldb_err(g->db, g->path, "client", err, errlen);
	return rc == SQLITE_ROW;
}

static int
gs_client_put(void *h, const char *net, int64_t until, char *err, size_t errlen)
{
	struct gl_sqlite *g = h;
	sqlite3_stmt *s = g->st[GL_CLIENT_PUT];

	sqlite3_bind_text(s, 1, net, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, until);
	return gl_write(g, s, "whitelist", err, errlen);
}

static int
gs_triplet_get(void *h, const char *net, const char *sender, const char *rcpt,
    int64_t *first, int64_t *last, char *err, size_t errlen)
{
	struct gl_sqlite *g = h;
	sqlite3_stmt *s = g->st[GL_TRIPLET_GET];
	int rc;

	gl_bind_key(s, net, sender, rcpt);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*first = sqlite3_column_int64(s, 0);
		*last = sqlite3_column_int64(s, 1);
	}
	sqldb_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sqldb_err(g->db, g->path, "triplet", err, errlen);
	return rc == SQLITE_ROW;
}

static int
gs_triplet_new(void *h, const char *net, const char *sender, const char *rcpt,
    int64_t now, char *err, size_t errlen)
{
	struct gl_sqlite *g = h;
	sqlite3_stmt *s = g->st[GL_TRIPLET_NEW];

	gl_bind_key(s, net, sender, rcpt);
	sqlite3_bind_int64(s, 4, now);
	return gl_write(g, s, "insert", err, errlen);
}

static int
gs_triplet_seen(void *h, const char *net, const char *sender, const char *rcpt,
    int64_t last, char *err, size_t errlen)
{
	struct gl_sqlite *g = h;
	sqlite3_stmt *s = g->st[GL_TRIPLET_SEEN];

	gl_bind_key(s, net, sender, rcpt);
	sqlite3_bind_int64(s, 4, last);
	return gl_write(g, s, "update", err, errlen);
}

static const struct gl_ops gl_sqlite_ops = {
    .name = "sqlite",
    .begin = gs_begin,
    .commit = gs_commit,
    .rollback = gs_rollback,
    .client_get = gs_client_get,
    .client_put = gs_client_put,
    .triplet_get = gs_triplet_get,
    .triplet_new = gs_triplet_new,
    .triplet_seen = gs_triplet_seen,
    .purge = gs_purge,
    .close = gs_close,
};

/* ---- the decision, whatever the store ----------------------------------- */

struct greylist *
gl_new(const struct gl_ops *ops, void *h)
{
	struct greylist *g = xcalloc(1, sizeof(*g));

	g->ops = ops;
	g->h = h;
	if (pthread_mutex_init(&g->lock, NULL) != 0)
		fatalx("event=greylist step=mutex");
	return g;
}

int
greylist_open(const char *path, struct greylist **out, char *err, size_t errlen)
{
	struct gl_sqlite *h;

	*out = NULL;
	if (gs_open(path, &h, err, errlen) != 0)
		return -1;
	*out = gl_new(&gl_sqlite_ops, h);
	return 0;
}

void
greylist_close(struct greylist *g)
{
	if (g == NULL)
		return;
	g->ops->close(g->h);
	pthread_mutex_destroy(&g->lock);
	free(g);
}

const char *
greylist_store_name(const struct greylist *g)
{
	return g->ops->name;
}

/* s lower-cased into out, cut to GREYLIST_ADDR_MAX octets. */
static void
gl_lower(char *out, const char *s)
{
	size_t i;

	for (i = 0; i < GREYLIST_ADDR_MAX && s[i] != '\0'; i++)
		out[i] = (char)tolower((unsigned char)s[i]);
	out[i] = '\0';
}

/* The verdict, with g locked and inside a transaction. */
static enum greylist_verdict
gl_decide(struct greylist *g, const char *net, const char *sender,
    const char *rcpt, int64_t now, int64_t delay, int64_t expire, int64_t *wait,
    char *err, size_t errlen)
{
	const struct gl_ops *o = g->ops;
	int64_t first = 0, last = 0, until = 0;
	int rc;

	if ((rc = o->client_get(g->h, net, &until, err, errlen)) < 0)
		return GREYLIST_TEMPFAIL;
	if (rc == 1 && until >= now) /* lasts expire after its last use */
		return o->client_put(g->h, net, now + expire, err, errlen) == 0
			   ? GREYLIST_KNOWN
			   : GREYLIST_TEMPFAIL;
	rc =
	    o->triplet_get(g->h, net, sender, rcpt, &first, &last, err, errlen);
	if (rc < 0)
		return GREYLIST_TEMPFAIL;
	if (rc == 0 || last < now - expire) {
		/* new, or expired: its delay starts now */
		*wait = delay;
		return o->triplet_new(
			   g->h, net, sender, rcpt, now, err, errlen) == 0
			   ? GREYLIST_DEFER
			   : GREYLIST_TEMPFAIL;
	}
	if (o->triplet_seen(g->h, net, sender, rcpt, now > last ? now : last,
		err, errlen) != 0)
		return GREYLIST_TEMPFAIL;
	/* a clock gone back (now < first) leaves it deferred */
	if (now < first || now - first < delay) {
		*wait = now < first ? delay : first + delay - now;
		return GREYLIST_DEFER;
	}
	return o->client_put(g->h, net, now + expire, err, errlen) == 0
		   ? GREYLIST_PASS
		   : GREYLIST_TEMPFAIL;
}

enum greylist_verdict
greylist_check(struct greylist *g, const char *net, const char *sender,
    const char *rcpt, int64_t now, int64_t delay, int64_t expire, int64_t *wait,
    char *err, size_t errlen)
{
	char ls[GREYLIST_ADDR_MAX + 1], lr[GREYLIST_ADDR_MAX + 1];
	enum greylist_verdict v;

	*wait = 0;
	gl_lower(ls, sender);
	gl_lower(lr, rcpt);
	pthread_mutex_lock(&g->lock);
	if (g->ops->begin(g->h, err, errlen) != 0) {
		pthread_mutex_unlock(&g->lock);
		return GREYLIST_TEMPFAIL;
	}
	v = gl_decide(g, net, ls, lr, now, delay, expire, wait, err, errlen);
	if (v != GREYLIST_TEMPFAIL && ++g->checks >= GREYLIST_PURGE_EVERY) {
		g->checks = 0;
		if (g->ops->purge(g->h, now, expire, err, errlen) != 0)
			v = GREYLIST_TEMPFAIL;
	}
	if (v == GREYLIST_TEMPFAIL)
		g->ops->rollback(g->h);
	else if (g->ops->commit(g->h, err, errlen) != 0)
		v = GREYLIST_TEMPFAIL;
	pthread_mutex_unlock(&g->lock);
	return v;
}

int
greylist_net(const struct sockaddr *sa, char *out, size_t outlen)
{
	unsigned char a[16];
	char txt[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		memcpy(a,
		    &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
		    4);
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *in6 =
		    &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(in6)) {
			memcpy(a, in6->s6_addr + 12, 4);
		} else {
			memcpy(a, in6->s6_addr, 8);
			memset(a + 8, 0, 8);
			if (inet_ntop(AF_INET6, a, txt, sizeof(txt)) == NULL)
				return -1;
			return str_fmt(out, outlen, "%s/64", txt) == 0 ? 0 : -1;
		}
	} else {
		return -1;
	}
	return str_fmt(out, outlen, "%u.%u.%u.0/24", a[0], a[1], a[2]) == 0
		   ? 0
		   : -1;
}
