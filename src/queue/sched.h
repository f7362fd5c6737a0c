/*
 * sched: the queue's schedule.  One entry per queued message (its id, when
 * it is tried next, whether it is held), found by id in a hash table and
 * ordered by next try in a binary heap, so neither a new message nor the
 * next due one costs a walk of the queue.
 *
 * Owns: struct sched and its entries.  May call: util.  Used by the queue
 * manager's adapter (server/qmgr.c), which keeps the timer and says what
 * time it is.
 *
 * Pure: no clock, no I/O, no threads; every time is a parameter.  The
 * entries are the schedule only: the envelope on disk is the truth.
 *
 * An entry is "waiting" while it is in the heap: not held and not taken.
 * A held entry is never due; sched_take removes an entry from the heap
 * while an attempt or a control job has it, and sched_reschedule puts it
 * back (unless it is held).
 */
#ifndef TERN_QUEUE_SCHED_H
#define TERN_QUEUE_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "queue/queue.h"

struct sched_ent {
	char id[QUEUE_ID_LEN + 1];
	time_t next_try;
	bool held;
	bool busy;    /* the caller's: an attempt or a control job has it */
	bool deleted; /* the caller's: delete asked while busy */
	bool bounce;  /* the caller's: return it to its sender when next
			 tried (`tern queue bounce`) */
	bool requeue; /* the caller's: ask DNS afresh when next tried
			 (`tern queue requeue`) */
	/* private */
	struct sched_ent *hnext;
	size_t heap_idx; /* SIZE_MAX: not waiting */
};

struct sched;

struct sched *sched_new(void);
void sched_free(struct sched *s); /* every entry with it; NULL ok */

/* The entry of id, or NULL. */
struct sched_ent *sched_find(struct sched *s, const char *id);
/* A new entry (id must be a queue id not yet in s); waiting unless held. */
struct sched_ent *sched_add(
    struct sched *s, const char *id, time_t next_try, bool held);
/* Forget e (and free it). */
void sched_del(struct sched *s, struct sched_ent *e);

/* e is tried at when: it waits again unless it is held. */
void sched_reschedule(struct sched *s, struct sched_ent *e, time_t when);
/* Out of the heap until sched_reschedule (an attempt or a job has it). */
void sched_take(struct sched *s, struct sched_ent *e);
/* Held: never due until released. */
void sched_hold(struct sched *s, struct sched_ent *e);
/* Released: waiting again, due at now. */
void sched_release(struct sched *s, struct sched_ent *e, time_t now);

/* The waiting entry with the earliest next try if it is due at now
 * (next_try <= now), taken out of the heap; else NULL. */
struct sched_ent *sched_pop_due(struct sched *s, time_t now);
/* The earliest next try of the waiting entries; false if none waits. */
bool sched_next(const struct sched *s, time_t *when_out);
/* Every waiting entry due at now; returns how many. */
size_t sched_flush(struct sched *s, time_t now);

size_t sched_count(const struct sched *s);   /* entries */
size_t sched_waiting(const struct sched *s); /* entries in the heap */
/* fn(e, ctx) for every entry, in no particular order; fn must not add or
 * delete entries. */
void sched_each(
    struct sched *s, void (*fn)(struct sched_ent *e, void *ctx), void *ctx);

#endif
