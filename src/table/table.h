/*
 * table: users, aliases and domains behind one interface.  The embedded
 * engine is SQLite (STATE/tern.db); "pgsql:CONNINFO" is the shared one,
 * a PostgreSQL database several ternd nodes use at once.  Lookups read the
 * database live, so "tern user add" is seen by a running ternd without a
 * restart.  Addresses are stored normalised: local part and domain lower-cased.
 *
 * Owns: struct table, the schema, checks and alias resolution, and the
 * engines behind it.  May call: addr, conf, util, libsqlite3 and libpq.
 * Called by server (RCPT, AUTH, routing) and cli (user, alias).
 */
#ifndef TERN_TABLE_H
#define TERN_TABLE_H

#include <stdbool.h>
#include <stddef.h>

#include "addr/addr.h"
#include "conf/conf.h"

/* local@domain */
#define TABLE_FOLDER_MAX  64 /* "." and a plus-address extension */
#define TABLE_ADDR_MAX	  (ADDR_LOCAL_MAX + 1 + ADDR_DOMAIN_MAX)
#define TABLE_ALIAS_DEPTH 8    /* nested alias levels followed */
#define TABLE_TARGETS_MAX 1000 /* final targets of one address */

enum table_status {
	TABLE_OK = 0,
	TABLE_NOTFOUND, /* no such user/alias (550 5.1.1) */
	TABLE_NOTLOCAL, /* the domain is not ours (relay question) */
	TABLE_TEMPFAIL, /* database trouble (451 4.3.0) */
	TABLE_LOOP,	/* alias loop or too deep / too many targets */
	/* administration only (never from table_resolve/_domain_is_local): */
	TABLE_EXISTS,  /* user or alias already there */
	TABLE_INVALID, /* the address given is not acceptable */
};

/* A mailbox (the users row's maildir column) that is an LMTP server:
 * "lmtp:unix:/path" or "lmtp:host[:port]"; the queue delivers to it. */
#define TABLE_LMTP_PREFIX "lmtp:"
bool table_mailbox_is_lmtp(const char *mailbox);

struct table_target {
	char address[TABLE_ADDR_MAX + 1]; /* final address, normalised */
	bool local;			  /* true: deliver to mailbox */
	/* For local targets: the Maildir, relative to STATE/mail
	 * ("example.org/ben") unless the user's row names an absolute path. */
	char mailbox[512];
	/* A local target reached by plus-addressing ("ben+shop@"): the
	 * Maildir++ folder ".shop", used when it exists; "" the INBOX. */
	char folder[TABLE_FOLDER_MAX + 1];
};

struct table_targets {
	struct table_target *v;
	size_t n, cap;
};

struct table;

/*
 * Open the users table named by c->tables_users; creates the schema.  The
 * conf domains are copied.  A struct table is for one thread at a time
 * (ternd: one per thread that looks things up).  Every failing call leaves
 * its reason in table_strerror().
 */
struct table *table_open(const struct conf *c, char *err, size_t errlen);
void table_close(struct table *t);
/* A lookup may wait on the network (PostgreSQL), not only on a local file. */
bool table_is_remote(const struct table *t);

/* Is this domain local: in conf domains or in the tables (domains table,
 * or a user or alias of that domain)?  TABLE_OK: local; TABLE_NOTLOCAL;
 * TABLE_TEMPFAIL. */
enum table_status table_domain_is_local(struct table *t, const char *domain);

/*
 * Resolve a recipient to its final targets: aliases expanded (recursively,
 * up to TABLE_ALIAS_DEPTH, duplicates removed), users found, the
 * "@domain" catch-all last.  postmaster@ any local domain always resolves
 * (to its alias or user, else to the mailbox DOMAIN/postmaster).  a->
 * postmaster (bare <Postmaster>) means postmaster@ the first conf domain.
 * Targets are appended to out (table_targets_free to release); on any
 * status but TABLE_OK, out is left as it was.  Duplicates are removed
 * among the targets of this call only.  A local target's address is its
 * key ("local@domain" lower-cased, quoted as addr_format() does).
 */
enum table_status table_resolve(
    struct table *t, const struct addr *a, struct table_targets *out);
void table_targets_free(struct table_targets *tt);

/* Administration (tern user / tern alias).  address is "local@domain". */
enum table_status table_user_add(struct table *t, const char *address,
    const char *pwhash); /* pwhash NULL: no password */
enum table_status table_user_del(struct table *t, const char *address);
enum table_status table_user_passwd(
    struct table *t, const char *address, const char *pwhash);
/* Deliver address's mail into the Maildir at path (absolute), or to the
 * LMTP server "lmtp:unix:/path" / "lmtp:host[:port]", or NULL: back to
 * STATE/mail/DOMAIN/LOCAL.  TABLE_INVALID for a bad path. */
enum table_status table_user_set_maildir(
    struct table *t, const char *address, const char *path);
/* The stored hash (for AUTH); TABLE_NOTFOUND if no user or no password. */
enum table_status table_user_pwhash(
    struct table *t, const char *address, char *out, size_t outlen);
/* The mailbox of a user, as in struct table_target (for maildir_create). */
enum table_status table_user_mailbox(
    struct table *t, const char *address, char *out, size_t outlen);
/* Every user, sorted by address.  cb must not call table_user_list. */
enum table_status table_user_list(struct table *t,
    void (*cb)(const char *address, bool has_password, void *ctx), void *ctx);
/* alias: "ben@example.org" or "@example.org" (catch-all) -> target. */
enum table_status table_alias_add(
    struct table *t, const char *address, const char *target);
/* target NULL: every target of address.  TABLE_NOTFOUND: nothing deleted */
enum table_status table_alias_del(
    struct table *t, const char *address, const char *target);
/* address NULL: every alias; sorted by address then target. */
enum table_status table_alias_list(struct table *t, const char *address,
    void (*cb)(const char *address, const char *target, void *ctx), void *ctx);

const char *table_strerror(const struct table *t); /* last error text */

#endif
