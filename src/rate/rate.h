/*
 * rate: "at most N events per window for each key", the one rate module
 * of tern (docs/defence.md "Rate limits"), for keys the caller has
 * already hashed to 64 bits with a secret (util/clientkey.h's
 * client_key_hash for a client, IPv4 whole and IPv6 by its /64; siphash24
 * under the caller's own key for names).
 *
 * Owns: struct rate_table.  May call: libc only.  Used by
 * server/dsnlimit.c (DSNs per client and domain) and server/connrate.c
 * (connections, messages and recipients per client and per user, the
 * dictionary-attack penalty).
 *
 * Each key has a theoretical arrival time (GCRA, the generic cell rate
 * algorithm): an event is allowed when it would not push that time more
 * than one window ahead of now, and then moves it one interval
 * (window / N) on.  So a quiet key may burst N events at once, and after
 * that gets one event per interval: exactly "N per window" sustained.
 *
 * Time is the caller's, in ms of a monotonic clock (CLOCK_MONOTONIC in
 * ternd).  A "now" earlier than one seen before (a clock that went back)
 * never frees anything: a key's arrival time only moves forward, so the
 * earlier now only makes the key wait longer.
 *
 * A fixed table of slots, allocated once; each key may live in one of two
 * slots picked from its hash.  When both hold other live keys, the one
 * whose state matters least (the earliest arrival time) is replaced: that
 * key is forgotten early, i.e. it gets a fresh budget.  Keys come from a
 * keyed hash, so nobody can aim keys at a chosen slot.
 *
 * Pure: no clock, no I/O, no locking (one table belongs to one thread).
 */
#ifndef TERN_RATE_RATE_H
#define TERN_RATE_RATE_H

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
/* How many events key may still have at now_ms (limit 0: UINT32_MAX). */
unsigned rate_remaining(
    const struct rate_table *t, uint64_t key, uint64_t now_ms);
/* In how many ms an event for key would be allowed (0: now). */
uint64_t rate_retry_after(
    const struct rate_table *t, uint64_t key, uint64_t now_ms);

/*
 * Refuse every event for key until now_ms + ms (a penalty), whatever its
 * count; a longer block already in place stays.  Needs a limit (a table of
 * limit 0 allows everything); a table of limit 1 and window 1 ms is a
 * plain "blocked until" table.
 */
void rate_block(
    struct rate_table *t, uint64_t key, uint64_t now_ms, uint64_t ms);

/*
 * A new limit for the same window (a reload, server/reload.h), the
 * counts kept: a key that had k events counted still has k, now against
 * the new limit (its time ahead of now_ms is rescaled by the ratio of the
 * intervals, capped as rate_take caps it).  A new limit of 0 forgets
 * every key (nothing was counted while there is no limit); from 0, the
 * keys start empty.  O(slots): once per reload, not per event.
 */
void rate_table_set_limit(
    struct rate_table *t, unsigned limit, uint64_t now_ms);

#endif
