/*
 * logspool: the log-structured queue (docs/queue.md, "The log"): segment
 * files under STATE/queue/seg/, an index in memory, one group-committed
 * fdatasync per batch of appends.  The same operations as spool_* in
 * queue.h, with the same durability promise; the spool ternd opens by
 * default (queue.log = yes, spool_open_log).  Private to the queue
 * module, its unit test and its bench.  In the fault build
 * (TERN_FAULT_INJECTION) each durable step asks fs/file.h's hook first,
 * module "logspool" (docs/queue.md, "Fault injection").
 */
#ifndef TERN_QUEUE_LOGSPOOL_H
#define TERN_QUEUE_LOGSPOOL_H

#include "queue/queue.h"

/* Segments are preallocated to this size and rolled when full. */
#define LSPOOL_SEG_SIZE (64u << 20)
/* The size segments are made with: LSPOOL_SEG_SIZE; the unit test
 * lowers it before lspool_open, to roll and compact after a few dozen
 * messages. */
extern uint64_t lspool_seg_size;
/* A segment that is not the active one is compacted (its survivors
 * copied into the active one, then it is unlinked) once fewer than one
 * in LSPOOL_COMPACT_RATIO of the messages written into it are live. */
#define LSPOOL_COMPACT_RATIO 32

struct lspool;

/* spool_open: STATE/queue/seg/ replayed, a legacy queue (env/, data/,
 * held/) imported, recovery done.  NULL with err and errno on failure. */
struct lspool *lspool_open(const char *state_dir, char *err, size_t errlen) WUR;
void lspool_close(struct lspool *sp);
int lspool_commit(struct lspool *sp, struct queue_env *env,
    const struct iovec *content, int iovcnt, char *err, size_t errlen) WUR;
int lspool_update(struct lspool *sp, const struct queue_env *env) WUR;
int lspool_remove(struct lspool *sp, const char *id) WUR;
/* The same, for a message whose delivery is over: the REMOVE record is
 * appended and applied but not waited for (queue.h, spool_remove_done). */
int lspool_remove_done(struct lspool *sp, const char *id) WUR;
/* For the unit test: hold (or let go of) the lock as a thread in the
 * middle of an append holds it. */
void lspool_test_hold(struct lspool *sp, bool hold);
/* spool_load_now (queue.h): -2 when the lock is held by another thread. */
int lspool_load_now(struct lspool *sp, const char *id, struct queue_env *out,
    struct spool_data *data, char *err, size_t errlen) WUR;
int lspool_hold(struct lspool *sp, const char *id) WUR;
int lspool_release(struct lspool *sp, const char *id) WUR;
/* The content of id: out->fd (the caller closes it), out->off, out->len. */
int lspool_open_data(
    struct lspool *sp, const char *id, struct spool_data *out) WUR;
int lspool_load(struct lspool *sp, const char *id, struct queue_env *out,
    char *err, size_t errlen) WUR;
int lspool_scan(struct lspool *sp, void (*cb)(struct queue_env *env, void *ctx),
    void *ctx) WUR;

struct lspool_stats {
	uint64_t commits, updates, removes;
	uint64_t appends;    /* records written */
	uint64_t fdatasyncs; /* of the active segment (shared by a batch) */
	uint64_t sync_waits; /* appends that waited for one */
	uint64_t dir_fsyncs; /* of seg/: new and freed segments */
	uint64_t segments;   /* present now */
	uint64_t freed;	     /* segments unlinked */
	uint64_t compacted;  /* of them, after their survivors were copied */
	uint64_t copied;     /* records copied by compaction */
	uint64_t live;	     /* messages queued or held now */
};
void lspool_get_stats(struct lspool *sp, struct lspool_stats *out);
/* The active segment's number and append offset (for tests). */
void lspool_active(struct lspool *sp, uint64_t *num, uint64_t *end);

#endif
