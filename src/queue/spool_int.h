/*
 * spool_int: spool.c's internals that tests/unit/test_spool.c drives on
 * their own.  Private to the queue module and its unit test: nothing else
 * includes this header.
 */
#ifndef TERN_QUEUE_SPOOL_INT_H
#define TERN_QUEUE_SPOOL_INT_H

#include "queue/queue.h"

/*
 * The group fsync of env/ that every commit, update and removal waits on:
 * returns once a fsync of env/ that started after this call began has
 * completed (0), or -1 with its errno.  Lets the test race many waiters
 * against one fsync without a whole commit around each.
 */
int spool_sync_env_dir(struct spool *sp) WUR;

#endif
