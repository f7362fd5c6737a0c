/*
 * lookup.h: questions to the users/aliases/domains table, answered by
 * callback.  One API for both kinds of table: lookup_ask() runs ask() and
 * then answer().  With the embedded SQLite table both run at once, on the
 * loop, before lookup_ask() returns (a hop through a thread would cost
 * more than the lookup).  With a remote table (PostgreSQL) ask() runs on
 * a lookup thread that holds its own connection, so a slow or unreachable
 * database delays only the sessions that asked, not the loop; answer()
 * runs later on the loop.
 *
 * Re-entrancy rule for callers: answer() may run before lookup_ask()
 * returns.  So a caller sets up everything answer() needs (and counts the
 * question as outstanding) *before* lookup_ask(), touches neither lk nor
 * what answer() may have freed after it, and answer() must be safe to run
 * inside the caller's own frame (conn.c: conn_process() called inside
 * conn_process() returns at once; see conn_ask()).
 *
 * Owns: struct lookups, the pool: the loop's own table handle, the lookup
 * threads (only for a remote table) and table_gen (bumped by SIGHUP, read
 * by the threads: each reopens its handle when it moved).  May call:
 * table, conf, util, and the worker pool of server.h (the threads are a
 * struct workers).  Event loop only, except ask(), which runs on a lookup
 * thread for a remote table and must then touch only what its lookup
 * carries (and the read-only configuration).
 */
#ifndef TERN_SERVER_LOOKUP_H
#define TERN_SERVER_LOOKUP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "addr/addr.h"
#include "conf/conf.h"
#include "table/table.h"
#include "workers/workers.h"

struct lookups {
	/* the configuration tables are opened with (domains): a reload
	   stores a new one, lookup threads load it when table_gen moved
	   (every configuration lives until exit: reload.h) */
	_Atomic(const struct conf *) conf;
	struct event_base *base;
	struct table *table;	    /* the loop's handle: asked inline */
	struct workers *threads;    /* NULL: the table is asked inline */
	_Atomic unsigned table_gen; /* bumped by SIGHUP (lookup threads) */
	/* lookups_start's callback, for threads a reload starts */
	void (*drained)(void *);
	void *drained_arg;
};

struct lookup {
	struct job job;	       /* private (and free for the answer) */
	struct lookups *pool;  /* private */
	uint64_t submitted_ms; /* private */
	/* t NULL: no table (could not open, or waited too long) */
	void (*ask)(struct lookup *, struct table *t);
	void (*answer)(struct lookup *); /* on the loop; may free lk */
	char err[256];			 /* table_strerror() after ask */
};

/* The common question: the targets of an address (table_resolve). */
struct resolve_lookup {
	struct lookup lk;
	struct addr addr;	 /* in */
	struct table_targets tt; /* out (table_targets_free) */
	enum table_status st;	 /* out; TEMPFAIL without a table */
};
void resolve_ask(struct lookup *lk, struct table *t);

/* Opens the loop's table handle (fatal for the caller on failure: 0 or
 * -1 with err); no thread yet, so the sandbox can still be applied. */
int lookups_init(struct lookups *ls, const struct conf *cf,
    struct event_base *base, char *err, size_t errlen);
/* Threads only for a remote table; drained(arg) after each batch of
 * answers (a stopping ternd waits for them). */
void lookups_start(struct lookups *ls, void (*drained)(void *), void *arg);
/* The threads whatever the engine (lookups_start; the unit test runs the
 * threaded path on SQLite with it). */
void lookups_start_threads(
    struct lookups *ls, unsigned nthreads, void (*drained)(void *), void *arg);
void lookups_stop(struct lookups *ls); /* joins threads, closes the table */
/*
 * SIGHUP, after the caller opened t with cf (table_open; NULL when the
 * same tables.users could not be opened now; cf NULL: the configuration
 * the tables were opened with stays): t becomes the loop's
 * handle and the old one is closed (inline questions are over when they
 * return, so none is using it); with t NULL the old one stays.  Every
 * lookup thread opens cf's table before its next question: one asking
 * now finishes on its old handle, which it closes then.  A remote table
 * (PostgreSQL) that had no threads gets them now, so it is never asked
 * on the loop.
 */
void lookups_reload(struct lookups *ls, const struct conf *cf, struct table *t);
unsigned lookups_busy(const struct lookups *ls); /* questions in flight */

/* Ask lk (ask and answer set by the caller); see the re-entrancy rule. */
void lookup_ask(struct lookups *ls, struct lookup *lk);

#endif
