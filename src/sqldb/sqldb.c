#include "sqldb/sqldb.h"
#include "util/util.h"

int
sqldb_err(
    sqlite3 *db, const char *path, const char *what, char *err, size_t errlen)
{
	str_fmt_cut(err, errlen, "sqlite %s: %s: %s", path, what,
	    db != NULL ? sqlite3_errmsg(db) : "out of memory");
	return -1;
}

void
sqldb_reset(sqlite3_stmt *s)
{
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
}

int
sqldb_exec(
    sqlite3 *db, const char *path, const char *sql, char *err, size_t errlen)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK)
		return 0;
	return sqldb_err(db, path, "exec", err, errlen);
}

int
sqldb_user_version(sqlite3 *db, int *v)
{
	sqlite3_stmt *s;
	int rc;

	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL) !=
	    SQLITE_OK)
		return -1;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*v = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? 0 : -1;
}
