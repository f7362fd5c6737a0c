/*
 * greylist_store: the greylist module's private interface between its
 * decision (greylist.c) and its two stores, SQLite (greylist.c) and
 * PostgreSQL (greylist_pg.c).  Not for use outside src/greylist.
 *
 * Every step is called with the greylist's mutex held, between begin and
 * commit (or rollback); a step that fails returns -1 with err set and the
 * caller rolls back.  Getters return 1 (found), 0 (no row) or -1.
 */
#ifndef TERN_GREYLIST_STORE_H
#define TERN_GREYLIST_STORE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct gl_ops {
	const char *name; /* "sqlite", "pgsql": for the log */
	int (*begin)(void *h, char *err, size_t errlen);
	int (*commit)(void *h, char *err, size_t errlen);
	void (*rollback)(void *h);
	int (*client_get)(
	    void *h, const char *net, int64_t *until, char *err, size_t errlen);
	int (*client_put)(
	    void *h, const char *net, int64_t until, char *err, size_t errlen);
	int (*triplet_get)(void *h, const char *net, const char *sender,
	    const char *rcpt, int64_t *first, int64_t *last, char *err,
	    size_t errlen);
	/* new (or expired) triplet: first = last = now */
	int (*triplet_new)(void *h, const char *net, const char *sender,
	    const char *rcpt, int64_t now, char *err, size_t errlen);
	int (*triplet_seen)(void *h, const char *net, const char *sender,
	    const char *rcpt, int64_t last, char *err, size_t errlen);
	/* remove rows expired at now (bounded per call) */
	int (*purge)(
	    void *h, int64_t now, int64_t expire, char *err, size_t errlen);
	void (*close)(void *h);
};

struct greylist {
	const struct gl_ops *ops;
	void *h;
	pthread_mutex_t lock;
	unsigned checks; /* since the last purge */
};

/* A greylist on an opened store h (ops->close frees h). */
struct greylist *gl_new(const struct gl_ops *ops, void *h);

#endif
