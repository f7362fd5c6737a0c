/*
 * table_engine: the inside of the table module, shared by table.c (checks,
 * normalisation, alias resolution: engine-independent) and the engines
 * (table_sqlite.c, table_pgsql.c), OpenSMTPD style: one struct of function
 * pointers per engine.  Not for use outside src/table/.
 *
 * Owns: the engine interface (struct table_engine).  The engines may call
 * util and their own library (libsqlite3, libpq) only.
 *
 * Engines receive keys already checked and normalised by table.c:
 * "local@domain" as addr_format() writes it, lower-cased, or "@domain"
 * for a catch-all alias.  They report failures as text through
 * table_set_error() and return TABLE_TEMPFAIL for database trouble.
 */
#ifndef TERN_TABLE_ENGINE_H
#define TERN_TABLE_ENGINE_H

#include <stdbool.h>
#include <stddef.h>

#include "table/table.h"
#include "util/util.h"

struct table_engine {
	const char *prefix; /* "sqlite:" of tables.users */
	/* a lookup may wait on the network (ternd asks off its event loop) */
	bool remote;
	/* Open with the text after the prefix; sets t->h.  -1 on error. */
	int (*open)(struct table *t, const char *arg);
	void (*close)(struct table *t);
	/* cb once per target of the exact alias key; TABLE_OK even if none */
	enum table_status (*alias_get)(struct table *t, const char *key,
	    void (*cb)(const char *target, void *ctx), void *ctx);
	/* TABLE_OK: the user exists; maildir gets its column ("" if unset) */
	enum table_status (*user_get)(
	    struct table *t, const char *key, char *maildir, size_t len);
	/* TABLE_OK: domains table, a user or an alias names the domain;
	 * else TABLE_NOTFOUND */
	enum table_status (*domain_known)(struct table *t, const char *domain);
	enum table_status (*user_add)(
	    struct table *t, const char *key, const char *pwhash);
	enum table_status (*user_del)(struct table *t, const char *key);
	enum table_status (*user_passwd)(
	    struct table *t, const char *key, const char *pwhash);
	/* maildir NULL: back to the default DOMAIN/LOCAL */
	enum table_status (*user_set_maildir)(
	    struct table *t, const char *key, const char *maildir);
	/* the users row's password column; *null when it is NULL (table.c
	 * words what is missing) */
	enum table_status (*user_pwhash)(struct table *t, const char *key,
	    char *out, size_t outlen, bool *null);
	enum table_status (*user_list)(struct table *t,
	    void (*cb)(const char *address, bool has_password, void *ctx),
	    void *ctx);
	enum table_status (*alias_add)(
	    struct table *t, const char *key, const char *target);
	enum table_status (*alias_del)(
	    struct table *t, const char *key, const char *target);
	enum table_status (*alias_list)(struct table *t, const char *key,
	    void (*cb)(const char *address, const char *target, void *ctx),
	    void *ctx);
};

struct table {
	const struct table_engine *eng;
	void *h;	/* the engine's handle */
	char **domains; /* copy of conf domains: the first is the
			   domain of bare <Postmaster> */
	size_t ndomains;
	char delim[CONF_DELIM_MAX + 1]; /* recipient_delimiter, "" off */
	char err[512];			/* table_strerror() */
};

void table_set_error(struct table *t, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* After a write: st, or TABLE_NOTFOUND ("no such WHAT: KEY") when it
 * changed no row.  The engines share it so they say the same thing. */
enum table_status table_changed(struct table *t, enum table_status st,
    int changes, const char *what, const char *key);

extern const struct table_engine table_engine_sqlite;
extern const struct table_engine table_engine_pgsql;

#endif
