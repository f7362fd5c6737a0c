/*
 * ratelimit: "at most N events per window for each key", for keys the
 * caller has already hashed to 64 bits (with a secret: see dsnlimit.c).
 *
 * Owns: struct rate_table.  May call: libc only.  Used by
 * server/dsnlimit.c.
 *
 * Each key has a theoretical arrival time (GCRA, the generic cell rate
 * algorithm): an event is allowed when it would not push that time more
 * than one window ahead of now, and then moves it one interval
 * (window / N) on.  So a quiet key may burst N events at once, and after
 * that gets one event per interval: exactly "N per window" sustained.
 *
 * A fixed table of slots, allocated once; each key may live in one of two
 * slots picked from its hash.  When both hold other live keys, the one
 * whose state matters least (the earliest arrival time) is replaced: that
 * key is forgotten early, i.e. it gets a fresh budget.  Keys come from a
 * keyed hash, so nobody can aim keys at a chosen slot.
 *
 * Pure: no clock, no I/O, no locking (one table belongs to one thread).
 */
#ifndef TERN_QUEUE_RATELIMIT_H
#define TERN_QUEUE_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct rate_table;

/* slots: rounded up to a power of two (at least 2, at most 2^20);
 * limit 0: every event is allowed.  NULL only if memory is short. */
struct rate_table *rate_table_new(
    unsigned slots, unsigned limit, uint64_t window_ms);
void rate_table_free(struct rate_table *t); /* NULL ok */

/* Would an event for key be allowed at now_ms?  Changes nothing. */
bool rate_check(const struct rate_table *t, uint64_t key, uint64_t now_ms);
/* Count an event for key at now_ms (whether or not it was allowed). */
void rate_take(struct rate_table *t, uint64_t key, uint64_t now_ms);

#endif
