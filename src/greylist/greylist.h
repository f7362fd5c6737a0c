/*
 * greylist: the greylisting store, one SQLite file (STATE/greylist.db)
 * or tables in the tables' PostgreSQL database shared by several nodes
 * (greylist_pg.c), docs/defence.md "Greylisting".
 *
 * Owns: struct greylist (the store, a mutex; greylist_store.h is the
 * module's private interface between the decision and its two stores)
 * and both schemas (SQLite: PRAGMA user_version GREYLIST_SCHEMA_VERSION;
 * PostgreSQL: greylist_schema.version GREYLIST_PG_SCHEMA_VERSION; a
 * newer version is refused, an older one is migrated in one
 * transaction).  May call: util, SQLite, libpq, pthreads.  Used by ternd
 * (server/conngrey.c) on its worker threads: every call may block on the
 * disk or the database (bounded), never on the event loop.
 *
 * Threads: greylist_check may be called from several threads at once;
 * the mutex serialises them (one question is a few indexed rows).
 *
 * A triplet (client network, sender, recipient) seen for the first time
 * is deferred; it passes once delay seconds have gone by since then.
 * Its row is kept expire seconds after it was last seen.  A network one
 * of whose triplets passed is whitelisted for expire seconds after its
 * last pass (a client that retries once is a real MTA).  A clock that
 * goes backwards unblocks nobody: a triplet first seen "in the future"
 * stays deferred.
 */
#ifndef TERN_GREYLIST_H
#define TERN_GREYLIST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "util/util.h"

#define GREYLIST_SCHEMA_VERSION	   1
#define GREYLIST_PG_SCHEMA_VERSION 1  /* greylist_schema.version */
#define GREYLIST_NET_MAX	   64 /* "2001:db8:1:2::/64" fits */
#define GREYLIST_ADDR_MAX	   320 /* sender, recipient: longer ones are cut */

struct greylist;

enum greylist_verdict {
	GREYLIST_PASS,	   /* the triplet waited long enough */
	GREYLIST_KNOWN,	   /* the client network is whitelisted */
	GREYLIST_DEFER,	   /* first seen, or too early: 451 4.7.1 */
	GREYLIST_TEMPFAIL, /* the store failed (err): 451 4.3.0 */
};

/* Open or create path (0600, WAL), make or migrate the schema and purge
 * the expired rows.  0, or -1 with err. */
int greylist_open(
    const char *path, struct greylist **out, char *err, size_t errlen) WUR;
void greylist_close(struct greylist *g); /* NULL ok */

/* The same store in the PostgreSQL database of tables.users =
 * pgsql:CONNINFO (greylist_pg.c), shared by every node using it: its own
 * tables greylist_triplets, greylist_clients, greylist_schema (version
 * GREYLIST_PG_SCHEMA_VERSION; newer refused), made under the table
 * engine's advisory lock.  A database that fails later makes
 * greylist_check answer GREYLIST_TEMPFAIL, within its timeouts.  0, or -1
 * with err (never holding the CONNINFO). */
int greylist_open_pgsql(
    const char *conninfo, struct greylist **out, char *err, size_t errlen) WUR;

/* "sqlite" or "pgsql" */
const char *greylist_store_name(const struct greylist *g);

/*
 * The verdict on a triplet at time now (seconds).  net from
 * greylist_net; sender and rcpt are compared without case.  *wait: the
 * seconds left before a DEFER'd triplet passes.  Every GREYLIST_PURGE_EVERY
 * calls the expired rows are removed.
 */
enum greylist_verdict greylist_check(struct greylist *g, const char *net,
    const char *sender, const char *rcpt, int64_t now, int64_t delay,
    int64_t expire, int64_t *wait, char *err, size_t errlen);

/* The client's network: an IPv4 address (or ::ffff:a.b.c.d) as its /24
 * "a.b.c.0/24", an IPv6 one as its /64.  0, or -1 for another family. */
int greylist_net(const struct sockaddr *sa, char *out, size_t outlen);

#endif
