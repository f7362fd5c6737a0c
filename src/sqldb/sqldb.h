/*
 * sqldb: the few SQLite steps tern's own state files share (the DMARC
 * report store, the greylist): an error message naming the file, a
 * statement reset for reuse, a plain exec, and the schema version kept in
 * PRAGMA user_version.  Each store keeps its own schema and statements.
 *
 * Owns nothing.  May call: util.  Called by dmarcdb and greylist.
 */
#ifndef TERN_SQLDB_H
#define TERN_SQLDB_H

#include <sqlite3.h>
#include <stddef.h>

/* err = "sqlite PATH: WHAT: <SQLite's message>"; returns -1. */
int sqldb_err(
    sqlite3 *db, const char *path, const char *what, char *err, size_t errlen);
/* A prepared statement ready to be bound and stepped again. */
void sqldb_reset(sqlite3_stmt *s);
/* sqlite3_exec of sql: 0, or -1 with err filled (sqldb_err). */
int sqldb_exec(
    sqlite3 *db, const char *path, const char *sql, char *err, size_t errlen);
/* PRAGMA user_version into *v: 0, or -1 when it cannot be read. */
int sqldb_user_version(sqlite3 *db, int *v);

#endif
