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

struct greylist {
	sqlite3 *db;
	sqlite3_stmt *st[GL_NSTMT];
	pthread_mutex_t lock;
	unsigned checks; /* since the last purge */
	char path[512];
};

/* Make or migrate the schema; each version's step runs in order from the
 * file's version (version 1 is the first). */
static int
gl_schema(struct greylist *g, char *err, size_t errlen)
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

int
greylist_open(const char *path, struct greylist **out, char *err, size_t errlen)
{
	struct greylist *g = xcalloc(1, sizeof(*g));
	int i, fd;

	*out = NULL;
	if (str_copy(g->path, sizeof(g->path), path, strlen(path)) != 0) {
		str_fmt_cut(err, errlen, "%s: path too long", path);
		free(g);
		return -1;
	}
	if (pthread_mutex_init(&g->lock, NULL) != 0)
		fatalx("event=greylist step=mutex");
	/* the file holds peers' addresses: 0600 from its first byte */
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		str_fmt_cut(err, errlen, "%s: %s", path, strerror(errno));
		greylist_close(g);
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
	greylist_close(g);
	return -1;
}

void
greylist_close(struct greylist *g)
{
	int i;

	if (g == NULL)
		return;
	for (i = 0; i < GL_NSTMT; i++)
		sqlite3_finalize(g->st[i]);
	if (g->db != NULL && sqlite3_close(g->db) != SQLITE_OK)
		log_warn("event=greylist step=close path=%s", g->path);
	pthread_mutex_destroy(&g->lock);
	free(g);
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
gl_write(struct greylist *g, sqlite3_stmt *s, const char *what, char *err,
    size_t errlen)
{
	int rc = sqlite3_step(s);

	sqldb_reset(s);
	return rc == SQLITE_DONE ? 0
				 : sqldb_err(g->db, g->path, what, err, errlen);
}

static int
gl_purge(
    struct greylist *g, int64_t now, int64_t expire, char *err, size_t errlen)
{
	sqlite3_bind_int64(g->st[GL_PURGE_TRIPLETS], 1, now - expire);
	if (gl_write(g, g->st[GL_PURGE_TRIPLETS], "purge", err, errlen) != 0)
		return -1;
	sqlite3_bind_int64(g->st[GL_PURGE_CLIENTS], 1, now);
	return gl_write(g, g->st[GL_PURGE_CLIENTS], "purge", err, errlen);
}

/* Is net whitelisted at now?  1 yes, 0 no, -1 error. */
static int
gl_client_known(
    struct greylist *g, const char *net, int64_t now, char *err, size_t errlen)
{
	sqlite3_stmt *s = g->st[GL_CLIENT_GET];
	int rc, known = 0;

	sqlite3_bind_text(s, 1, net, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		known = sqlite3_column_int64(s, 0) >= now;
	sqldb_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sqldb_err(g->db, g->path, "client", err, errlen);
	return known;
}

static int
gl_client_put(struct greylist *g, const char *net, int64_t until, char *err,
    size_t errlen)
{
	sqlite3_stmt *s = g->st[GL_CLIENT_PUT];

	sqlite3_bind_text(s, 1, net, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, until);
	return gl_write(g, s, "whitelist", err, errlen);
}

/* The verdict, with g locked and inside a transaction. */
static enum greylist_verdict
gl_decide(struct greylist *g, const char *net, const char *sender,
    const char *rcpt, int64_t now, int64_t delay, int64_t expire, int64_t *wait,
    char *err, size_t errlen)
{
	sqlite3_stmt *s = g->st[GL_TRIPLET_GET];
	int64_t first = 0, last = 0;
	int rc, known;

	if ((known = gl_client_known(g, net, now, err, errlen)) < 0)
		return GREYLIST_TEMPFAIL;
	if (known) /* the whitelisting lasts expire after its last use */
		return gl_client_put(g, net, now + expire, err, errlen) == 0
			   ? GREYLIST_KNOWN
			   : GREYLIST_TEMPFAIL;
	gl_bind_key(s, net, sender, rcpt);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		first = sqlite3_column_int64(s, 0);
		last = sqlite3_column_int64(s, 1);
	}
	sqldb_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		sqldb_err(g->db, g->path, "triplet", err, errlen);
		return GREYLIST_TEMPFAIL;
	}
	if (rc == SQLITE_DONE || last < now - expire) {
		/* new, or expired: its delay starts now */
		s = g->st[GL_TRIPLET_NEW];
		gl_bind_key(s, net, sender, rcpt);
		sqlite3_bind_int64(s, 4, now);
		*wait = delay;
		return gl_write(g, s, "insert", err, errlen) == 0
			   ? GREYLIST_DEFER
			   : GREYLIST_TEMPFAIL;
	}
	s = g->st[GL_TRIPLET_SEEN];
	gl_bind_key(s, net, sender, rcpt);
	sqlite3_bind_int64(s, 4, now > last ? now : last);
	if (gl_write(g, s, "update", err, errlen) != 0)
		return GREYLIST_TEMPFAIL;
	/* a clock gone back (now < first) leaves it deferred */
	if (now < first || now - first < delay) {
		*wait = now < first ? delay : first + delay - now;
		return GREYLIST_DEFER;
	}
	return gl_client_put(g, net, now + expire, err, errlen) == 0
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
	if (sqldb_exec(g->db, g->path, "BEGIN IMMEDIATE", err, errlen) != 0) {
		pthread_mutex_unlock(&g->lock);
		return GREYLIST_TEMPFAIL;
	}
	v = gl_decide(g, net, ls, lr, now, delay, expire, wait, err, errlen);
	if (v != GREYLIST_TEMPFAIL && ++g->checks >= GREYLIST_PURGE_EVERY) {
		g->checks = 0;
		if (gl_purge(g, now, expire, err, errlen) != 0)
			v = GREYLIST_TEMPFAIL;
	}
	if (v == GREYLIST_TEMPFAIL) {
		if (sqlite3_exec(g->db, "ROLLBACK", NULL, NULL, NULL) !=
		    SQLITE_OK)
			log_warn(
			    "event=greylist step=rollback path=%s", g->path);
	} else if (sqldb_exec(g->db, g->path, "COMMIT", err, errlen) != 0) {
		v = GREYLIST_TEMPFAIL;
	}
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
