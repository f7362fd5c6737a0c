/*
 * sts/cache: the durable MTA-STS policy cache, STATE/mta-sts/ (one file
 * per policy domain, named by the domain, in the versioned format of
 * sts.h: "tern-mta-sts-cache 1").  Blocking file I/O: start-up (load) and
 * worker threads (store, remove), never the loop.
 *
 * Owns: the directory's files.  May call: sts, fs, util.  The bound on
 * the number of domains and the choice of what to forget is the caller's
 * (deliver/mtasts.c); this layer keeps no state besides the descriptor.
 *
 * A file is written whole under a temporary name (".tmp." and the
 * domain: no domain starts with a dot), fsync'ed, renamed over the old one
 * and the directory fsync'ed: a crash leaves the old policy or the new
 * one, never a part.  A file that does not decode is skipped at load with
 * a log line (a cache: its policy is fetched again); a file of a newer
 * format makes the load fail, so that ternd stops and says so rather
 * than overwrite what a newer tern wrote.
 */
#ifndef TERN_STS_CACHE_H
#define TERN_STS_CACHE_H

#include "util/util.h"
#include "sts/sts.h"

#define STS_CACHE_SUBDIR "mta-sts"

/* STATE/mta-sts made if missing and opened; its fd, or -1 with err. */
int sts_cache_open(const char *state_dir, char *err, size_t errlen) WUR;

typedef void (*sts_cache_each_fn)(
    void *arg, const struct sts_cache_rec *r, const struct sts_policy *p);

/*
 * fn(arg, record, policy) for each valid file (the record's text is valid
 * during the call only).  0, or -1 with err: a file of a newer format, or
 * the directory unreadable.
 */
int sts_cache_load(
    int dir_fd, sts_cache_each_fn fn, void *arg, char *err, size_t errlen) WUR;

/* r written durably as dir_fd/r->domain; 0, or -1 with err. */
int sts_cache_store(
    int dir_fd, const struct sts_cache_rec *r, char *err, size_t errlen) WUR;

/* dir_fd/domain removed (and the directory fsync'ed); 0, or -1 with err
 * (a file already gone is success). */
int sts_cache_remove(
    int dir_fd, const char *domain, char *err, size_t errlen) WUR;

#endif
