/*
 * spool: the queue's files under STATE/queue (docs/queue.md is the
 * contract: the state table, the transitions and the recovery table).
 *
 * Durability ordering, and why (docs/design.md, principle 1: a 250 means the
 * message is on stable storage; fs/file.c does each step, this file
 * decides their order and shares the directory fsyncs):
 *   1. data/ID is created O_EXCL (its uniqueness is the id's), written
 *      with writev, fsync'ed, closed with the result checked.
 *   2. data/ is fsync'ed: the content's name is durable before any
 *      envelope can point at it, so on disk env/ID never exists without
 *      data/ID, which is what lets recovery call that state corruption.
 *   3. The envelope is written into tmp/ID, fsync'ed, closed, and renamed
 *      into env/ (RENAME_NOREPLACE), so env/ only ever holds whole files.
 *   4. env/ is fsync'ed: the commit point.  Only then does spool_commit
 *      return 0.
 * A failure at any step removes what the call made.  Removal unlinks
 * env/ID first, fsyncs env/, then unlinks data/ID: the envelope's
 * existence is the message, so whatever a crash leaves behind is an
 * orphan data file, which recovery deletes.  Updates swap a new envelope
 * in with RENAME_EXCHANGE, which fails when env/ID is gone, so a late
 * update never resurrects a held or removed message.
 *
 * Group commit: a directory fsync makes durable every entry made before it
 * started, so the fsyncs of each directory are shared between threads
 * (gsync.h: the generation scheme, one struct gsync per directory).
 *
 * Threads: all functions are thread-safe; the only shared mutable state is
 * the per-directory group-fsync records (a mutex each) and atomic
 * counters.  One message is handled by one thread at a time (the caller's
 * rule); hold racing an update or a remove makes those fail with ENOENT.
 * One process: spool_open takes flock(LOCK_EX|LOCK_NB) on STATE/queue, so
 * recovery never runs under another process's feet.
 *
 * Limits: an envelope file is at most QUEUE_ENV_FILE_MAX bytes; needs a
 * file system with renameat2 RENAME_NOREPLACE and RENAME_EXCHANGE (ext4,
 * xfs, btrfs, tmpfs).  Recovery holds every id of data/ and env/ in
 * memory (8 bytes each).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue/gsync.h"
#include "queue/logspool.h"
#include "queue/qfail.h"
#include "queue/queue.h"
#include "queue/spool_int.h"
#include "fs/file.h"

#define SPOOL_ID_TRIES	8 /* fresh ids tried when data/ID exists */
#define SPOOL_DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
#define SPOOL_ERR_MAX	256
#define SP_WHO		"spool" /* the fault hook's module (fs/file.h) */

enum spool_dir { SP_TMP, SP_DATA, SP_ENV, SP_CORRUPT, SP_HELD, SP_NDIRS };

static const char *const sp_dir_names[SP_NDIRS] = {
    "tmp", "data", "env", "corrupt", "held"};

struct spool {
	struct lspool *log; /* spool_open_log: every call goes there */
	int root_fd;	    /* STATE/queue, holding the flock */
	int fd[SP_NDIRS];
	struct gsync gs[SP_NDIRS]; /* each directory's group fsync */
	atomic_uint_least64_t commits, updates, removes;
	atomic_uint_least64_t file_fsyncs, dir_waits;
	atomic_uint_least64_t dir_fsyncs[SP_NDIRS];
};

/* The ids of one directory, as numbers, for recovery's set operations. */
struct sp_ids {
	uint64_t *v;
	size_t n, cap;
};

/* What recovery did, for its summary line. */
struct sp_rec {
	struct sp_ids data, live;
	struct buf b; /* one read buffer for every envelope */
	size_t queued, held, tmp, orphans, corrupt;
	bool changed[SP_NDIRS];
	char newer[SPOOL_ERR_MAX]; /* an envelope of a newer tern: refused */
};

/* ---- small helpers ------------------------------------------------------- */

/* ---- group fsync of a directory ------------------------------------------ */

struct sp_dsync {
	struct spool *sp;
	enum spool_dir which;
};

static int
sp_dsync_run(void *ctx)
{
	struct sp_dsync *d = ctx;
	int r = file_sync_dir(SP_WHO, d->sp->fd[d->which]), e = errno;

	atomic_fetch_add(&d->sp->dir_fsyncs[d->which], 1);
	return r != 0 ? e : 0;
}

/*
 * Return once a fsync of directory `which` that started after this call
 * began has completed: 0, or -1 with its errno (gsync.h).
 */
static int
sp_dir_sync(struct spool *sp, enum spool_dir which)
{
	struct sp_dsync d = {sp, which};

	atomic_fetch_add(&sp->dir_waits, 1);
	return gsync_wait(&sp->gs[which], sp_dsync_run, &d);
}

/* ---- writing files ------------------------------------------------------- */

/* The encoded envelope b into tmp/id, synced; nothing left on failure. */
static int
sp_write_tmp(struct spool *sp, const char *id, const struct buf *b, char *err,
    size_t errlen)
{
	struct iovec iov = {b->data, b->len};
	const char *step;

	if (file_write_new(
		SP_WHO, sp->fd[SP_TMP], id, &iov, 1, true, NULL, &step) != 0) {
		queue_fail(err, errlen, step, "envelope in tmp/", id);
		return -1;
	}
	atomic_fetch_add(&sp->file_fsyncs, 1);
	return 0;
}

static int
sp_rename(struct spool *sp, enum spool_dir from, enum spool_dir to,
    const char *id, unsigned flags)
{
	return file_rename(SP_WHO, sp->fd[from], id, sp->fd[to], id, flags);
}

/* ---- commit -------------------------------------------------------------- */

/* Total size of the content, or -1 (EINVAL, EFBIG). */
static int
sp_content_size(const struct iovec *iov, int iovcnt, uint64_t *size_out)
{
	size_t total = 0;
	int i;

	if (iovcnt < 0 || (iov == NULL && iovcnt > 0)) {
		errno = EINVAL;
		return -1;
	}
	for (i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > (size_t)SSIZE_MAX - total) {
			errno = EFBIG;
			return -1;
		}
		total += iov[i].iov_len;
	}
	*size_out = total;
	return 0;
}

/*
 * Pick an id (the one env already has, e.g. the SMTP transaction's, so the
 * "queued as" reply names the queue entry; else or when taken a fresh
 * one), encode env with it into b, and write the content into data/ID,
 * synced: the O_EXCL create is what makes the id unique among queued
 * messages.  Nothing is left in data/ on failure.
 */
static int
sp_new_data(struct spool *sp, struct queue_env *env,
    const struct iovec *content, int iovcnt, struct buf *b, char *err,
    size_t errlen)
{
	const char *step = "create";
	int tries;

	for (tries = 0; tries < SPOOL_ID_TRIES; tries++) {
		if (tries > 0 || !queue_id_valid(env->id))
			id_new(env->id);
		buf_reset(b);
		if (queue_env_encode(env, b) != 0) {
			queue_fail(err, errlen, "encode", "envelope", NULL);
			return -1;
		}
		if (file_write_new(SP_WHO, sp->fd[SP_DATA], env->id, content,
			iovcnt, true, NULL, &step) == 0) {
			atomic_fetch_add(&sp->file_fsyncs, 1);
			return 0;
		}
		if (strcmp(step, "create") != 0 || errno != EEXIST)
			break;
	}
	queue_fail(err, errlen, step, "content in data/", env->id);
	return -1;
}

/*
 * Undo a failed commit.  After the rename, env/ID goes first and env/ is
 * synced before data/ID goes: if that sync fails, data/ID stays (for
 * recovery), since the envelope might come back after a crash and must
 * find its content.  At worst a message is delivered that the client was
 * told to retry; never lost.
 */
static void
sp_undo_commit(struct spool *sp, const char *id, bool made_data, bool renamed)
{
	int saved = errno;

	if (renamed && (unlinkat(sp->fd[SP_ENV], id, 0) != 0 ||
			   sp_dir_sync(sp, SP_ENV) != 0)) {
		log_err("id=%s event=queue_commit_undo step=env errno=%d "
			"keep=data",
		    id, errno);
		made_data = false;
	}
	if (made_data)
		unlinkat_quiet(sp->fd[SP_DATA], id);
	errno = saved;
}

/* Steps 2 to 4 of the header comment; *renamed tells the undo. */
static int
sp_commit_env(struct spool *sp, const char *id, const struct buf *b,
    bool *renamed, char *err, size_t errlen)
{
	if (sp_dir_sync(sp, SP_DATA) != 0) {
		queue_fail(err, errlen, "fsync", "directory data/", id);
		return -1;
	}
	if (sp_write_tmp(sp, id, b, err, errlen) != 0)
		return -1;
	if (sp_rename(sp, SP_TMP, SP_ENV, id, RENAME_NOREPLACE) != 0) {
		queue_fail(err, errlen, "rename", "envelope into env/", id);
		unlinkat_quiet(sp->fd[SP_TMP], id);
		return -1;
	}
	*renamed = true;
	if (sp_dir_sync(sp, SP_ENV) != 0) {
		queue_fail(err, errlen, "fsync", "directory env/", id);
		return -1;
	}
	return 0;
}

int
spool_commit(struct spool *sp, struct queue_env *env,
    const struct iovec *content, int iovcnt, char *err, size_t errlen)
{
	bool made_data = false, renamed = false;
	struct buf b;

	if (sp != NULL && sp->log != NULL)
		return lspool_commit(
		    sp->log, env, content, iovcnt, err, errlen);
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (sp == NULL || env == NULL ||
	    sp_content_size(content, iovcnt, &env->size) != 0) {
		if (errno != EFBIG)
			errno = EINVAL;
		queue_fail(err, errlen, "check", "arguments", NULL);
		return -1;
	}
	env->version = queue_env_version(env);
	if (env->created == 0)
		env->created = time(NULL);
	buf_init(&b, QUEUE_ENV_FILE_MAX);
	if (sp_new_data(sp, env, content, iovcnt, &b, err, errlen) != 0)
		goto fail;
	made_data = true;
	if (sp_commit_env(sp, env->id, &b, &renamed, err, errlen) != 0)
		goto fail;
	buf_free(&b);
	atomic_fetch_add(&sp->commits, 1);
	return 0;
fail:
	if (made_data)
		sp_undo_commit(sp, env->id, made_data, renamed);
	env->id[0] = '\0';
	buf_free(&b);
	return -1;
}

/* ---- update, remove, hold, release --------------------------------------- */

static int
sp_update(
    struct spool *sp, const struct queue_env *env, char *err, size_t errlen)
{
	struct buf b;
	int r = -1;

	buf_init(&b, QUEUE_ENV_FILE_MAX);
	if (queue_env_encode(env, &b) != 0) {
		queue_fail(err, errlen, "encode", "envelope", NULL);
		goto out;
	}
	/* a stale copy from an update that could not clean up after itself */
	(void)unlinkat(sp->fd[SP_TMP], env->id, 0);
	if (sp_write_tmp(sp, env->id, &b, err, errlen) != 0)
		goto out;
	if (sp_rename(sp, SP_TMP, SP_ENV, env->id, RENAME_EXCHANGE) != 0) {
		queue_fail(
		    err, errlen, "exchange", "envelope in env/", env->id);
		unlinkat_quiet(sp->fd[SP_TMP], env->id);
		goto out;
	}
	/* tmp/ID is the old envelope now: either one in env/ is whole */
	if (sp_dir_sync(sp, SP_ENV) != 0)
		queue_fail(err, errlen, "fsync", "directory env/", env->id);
	else
		r = 0;
	if (unlinkat(sp->fd[SP_TMP], env->id, 0) != 0)
		log_warn("id=%s event=queue_update_cleanup errno=%d", env->id,
		    errno);
out:
	buf_free(&b);
	return r;
}

int
spool_update(struct spool *sp, const struct queue_env *env)
{
	char err[SPOOL_ERR_MAX];

	if (sp->log != NULL)
		return lspool_update(sp->log, env);
	if (queue_check_id(env->id, err, sizeof(err)) != 0 ||
	    sp_update(sp, env, err, sizeof(err)) != 0)
		return queue_log_fail("update", env->id, err);
	atomic_fetch_add(&sp->updates, 1);
	return 0;
}

static int
sp_unlink_env(struct spool *sp, const char *id, enum spool_dir *dir_out)
{
	*dir_out = SP_ENV;
	if (file_unlink(SP_WHO, sp->fd[SP_ENV], id) == 0)
		return 0;
	if (errno != ENOENT)
		return -1;
	*dir_out = SP_HELD;
	return file_unlink(SP_WHO, sp->fd[SP_HELD], id);
}

int
spool_remove_done(struct spool *sp, const char *id)
{
	if (sp->log != NULL)
		return lspool_remove_done(sp->log, id);
	return spool_remove(sp, id);
}

int
spool_remove(struct spool *sp, const char *id)
{
	char err[SPOOL_ERR_MAX];
	enum spool_dir dir;

	if (sp->log != NULL)
		return lspool_remove(sp->log, id);
	if (queue_check_id(id, err, sizeof(err)) != 0)
		return queue_log_fail("remove", id, err);
	if (sp_unlink_env(sp, id, &dir) != 0) {
		queue_fail(err, sizeof(err), "unlink", "envelope", id);
		return queue_log_fail("remove", id, err);
	}
	/* the envelope's removal is durable before the content goes, so on
	 * disk an envelope never outlives its data (docs/queue.md) */
	if (sp_dir_sync(sp, dir) != 0) {
		queue_fail(err, sizeof(err), "fsync", sp_dir_names[dir], id);
		return queue_log_fail("remove", id, err);
	}
	if (file_unlink(SP_WHO, sp->fd[SP_DATA], id) != 0)
		log_warn("id=%s event=queue_remove_data errno=%d "
			 "note=\"recovery removes it\"",
		    id, errno);
	atomic_fetch_add(&sp->removes, 1);
	return 0;
}

/* Rename from/id to to/id (never over one there), sync both directories. */
static int
sp_move(struct spool *sp, const char *id, enum spool_dir from,
    enum spool_dir to, const char *op)
{
	char err[SPOOL_ERR_MAX];

	if (queue_check_id(id, err, sizeof(err)) != 0)
		return queue_log_fail(op, id, err);
	if (sp_rename(sp, from, to, id, RENAME_NOREPLACE) != 0) {
		queue_fail(err, sizeof(err), "rename", sp_dir_names[from], id);
		return queue_log_fail(op, id, err);
	}
	/* destination first: a crash between leaves the message at least
	 * where it was going (both: recovery keeps held/, docs/queue.md) */
	if (sp_dir_sync(sp, to) != 0 || sp_dir_sync(sp, from) != 0) {
		queue_fail(err, sizeof(err), "fsync", "directories", id);
		return queue_log_fail(op, id, err);
	}
	log_info("id=%s event=queue_%s", id, op);
	return 0;
}

int
spool_hold(struct spool *sp, const char *id)
{
	if (sp->log != NULL)
		return lspool_hold(sp->log, id);
	return sp_move(sp, id, SP_ENV, SP_HELD, "hold");
}

int
spool_release(struct spool *sp, const char *id)
{
	if (sp->log != NULL)
		return lspool_release(sp->log, id);
	return sp_move(sp, id, SP_HELD, SP_ENV, "release");
}

/* ---- reading ------------------------------------------------------------- */

int
spool_open_data(struct spool *sp, const char *id, struct spool_data *out)
{
	struct stat st;
	int saved;

	if (sp->log != NULL)
		return lspool_open_data(sp->log, id, out);
	out->fd = -1;
	out->off = out->len = 0;
	if (queue_check_id(id, NULL, 0) != 0)
		return -1;
	out->fd =
	    openat(sp->fd[SP_DATA], id, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (out->fd < 0)
		return -1;
	if (fstat(out->fd, &st) != 0) {
		saved = errno;
		fd_close_quiet(out->fd);
		out->fd = -1;
		errno = saved;
		return -1;
	}
	out->len = (uint64_t)st.st_size;
	return 0;
}

/* Read all of dir/name into b (reset first). */
static int
sp_read_file(int dir_fd, const char *name, struct buf *b)
{
	int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	ssize_t r;

	if (fd < 0)
		return -1;
	buf_reset(b);
	for (;;) {
		if (buf_reserve(b, 4096) != 0) {
			if (errno == EMSGSIZE)
				errno = EFBIG;
			break;
		}
		r = read(fd, b->data + b->len, b->cap - 1 - b->len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			fd_close_quiet(fd);
			b->data[b->len] = '\0';
			return r == 0 ? 0 : -1;
		}
		b->len += (size_t)r;
	}
	fd_close_quiet(fd);
	return -1;
}

/* Load and decode dir/id, whose I record must name id.  EINVAL: corrupt. */
static int
sp_load_from(struct spool *sp, enum spool_dir dir, const char *id,
    struct buf *b, struct queue_env *out, char *err, size_t errlen)
{
	queue_env_init(out);
	if (sp_read_file(sp->fd[dir], id, b) != 0) {
		queue_fail(err, errlen, "read", sp_dir_names[dir], id);
		return -1;
	}
	if (queue_env_decode(b->data, b->len, out, err, errlen) != 0)
		return -1;
	if (strcmp(out->id, id) != 0) {
		if (err != NULL)
			str_fmt_cut(
			    err, errlen, "envelope names id %s", out->id);
		queue_env_free(out);
		errno = EINVAL;
		return -1;
	}
	out->held = dir == SP_HELD;
	return 0;
}

int
spool_load_now(struct spool *sp, const char *id, struct queue_env *out,
    struct spool_data *data, char *err, size_t errlen)
{
	if (sp->log == NULL)
		return -2;
	return lspool_load_now(sp->log, id, out, data, err, errlen);
}

int
spool_load(struct spool *sp, const char *id, struct queue_env *out, char *err,
    size_t errlen)
{
	struct buf b;
	int r;

	if (sp->log != NULL)
		return lspool_load(sp->log, id, out, err, errlen);
	queue_env_init(out);
	if (queue_check_id(id, err, errlen) != 0)
		return -1;
	buf_init(&b, QUEUE_ENV_FILE_MAX);
	r = sp_load_from(sp, SP_ENV, id, &b, out, err, errlen);
	if (r != 0 && errno == ENOENT)
		r = sp_load_from(sp, SP_HELD, id, &b, out, err, errlen);
	buf_free(&b);
	return r;
}

/* ---- corrupt ------------------------------------------------------------- */

/* Rename dir/id to corrupt/id.suffix; a name there is never replaced. */
static int
sp_to_corrupt(
    struct spool *sp, enum spool_dir dir, const char *id, const char *suffix)
{
	char name[QUEUE_ID_LEN + 8];

	if (str_fmt(name, sizeof(name), "%s.%s", id, suffix) != 0) {
		errno = ENAMETOOLONG; /* ids are 16 characters */
		return -1;
	}
	return renameat2(
	    sp->fd[dir], id, sp->fd[SP_CORRUPT], name, RENAME_NOREPLACE);
}

/*
 * Move the envelope dir/id (and data/id when with_data) to corrupt/, sync
 * the directories, and log why.  Nothing is deleted.
 */
static void
sp_quarantine(struct spool *sp, enum spool_dir dir, const char *id,
    bool with_data, const char *why)
{
	char safe[SPOOL_ERR_MAX];

	log_quote(safe, sizeof(safe), why, strlen(why));
	log_err("id=%s event=queue_corrupt dir=%s reason=\"%s\"", id,
	    sp_dir_names[dir], safe);
	if (sp_to_corrupt(sp, dir, id, "env") != 0) {
		log_err("id=%s event=queue_corrupt_move step=env errno=%d", id,
		    errno);
		return;
	}
	if (with_data && sp_to_corrupt(sp, SP_DATA, id, "data") != 0 &&
	    errno != ENOENT)
		log_err("id=%s event=queue_corrupt_move step=data errno=%d", id,
		    errno);
	if (sp_dir_sync(sp, SP_CORRUPT) != 0 || sp_dir_sync(sp, dir) != 0 ||
	    (with_data && sp_dir_sync(sp, SP_DATA) != 0))
		log_err("id=%s event=queue_corrupt_sync errno=%d", id, errno);
}

/* ---- scan ---------------------------------------------------------------- */

/* Call fn for each name in dir (but . and ..); stop when fn returns < 0. */
static int
sp_each(struct spool *sp, enum spool_dir dir,
    int (*fn)(struct spool *, enum spool_dir, const char *, void *), void *ctx)
{
	struct dirent *de;
	DIR *d;
	int fd, r = 0;

	fd = openat(sp->fd[dir], ".", SPOOL_DIR_FLAGS);
	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		fd_close_quiet(fd);
		return -1;
	}
	for (;;) {
		errno = 0;
		if ((de = readdir(d)) == NULL) {
			r = errno != 0 ? -1 : 0;
			break;
		}
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if ((r = fn(sp, dir, de->d_name, ctx)) < 0)
			break;
	}
	(void)closedir(d); /* read-only: nothing to lose */
	return r;
}

struct sp_scan {
	void (*cb)(struct queue_env *, void *);
	void *ctx;
	struct buf b;
	int n;
};

static int
sp_scan_one(struct spool *sp, enum spool_dir dir, const char *name, void *v)
{
	struct sp_scan *s = v;
	struct queue_env env;
	char err[SPOOL_ERR_MAX];

	if (!queue_id_valid(name))
		return 0; /* not ours: recovery logged it */
	if (sp_load_from(sp, dir, name, &s->b, &env, err, sizeof(err)) != 0) {
		if (errno == EINVAL)
			sp_quarantine(sp, dir, name, true, err);
		else if (errno != ENOENT)
			log_err("id=%s event=queue_scan_read errno=%d "
				"error=\"%s\"",
			    name, errno, err);
		return 0;
	}
	s->cb(&env, s->ctx);
	queue_env_free(&env);
	s->n++;
	return 0;
}

int
spool_scan(
    struct spool *sp, void (*cb)(struct queue_env *env, void *ctx), void *ctx)
{
	struct sp_scan s = {cb, ctx, {0}, 0};
	int r;

	if (sp->log != NULL)
		return lspool_scan(sp->log, cb, ctx);
	buf_init(&s.b, QUEUE_ENV_FILE_MAX);
	r = sp_each(sp, SP_ENV, sp_scan_one, &s);
	if (r == 0)
		r = sp_each(sp, SP_HELD, sp_scan_one, &s);
	buf_free(&s.b);
	return r < 0 ? -1 : s.n;
}

void
spool_get_stats(struct spool *sp, struct spool_stats *out)
{
	int i;

	memset(out, 0, sizeof(*out));
	if (sp->log != NULL) {
		struct lspool_stats l;

		lspool_get_stats(sp->log, &l);
		out->commits = l.commits;
		out->updates = l.updates;
		out->removes = l.removes;
		out->appends = l.appends;
		out->fdatasyncs = l.fdatasyncs;
		out->dir_fsyncs = l.dir_fsyncs;
		out->dir_waits = l.sync_waits;
		out->segments = l.segments;
		out->compacted = l.compacted;
		return;
	}
	out->commits = atomic_load(&sp->commits);
	out->updates = atomic_load(&sp->updates);
	out->removes = atomic_load(&sp->removes);
	out->file_fsyncs = atomic_load(&sp->file_fsyncs);
	out->dir_waits = atomic_load(&sp->dir_waits);
	out->dir_fsyncs = 0;
	for (i = 0; i < SP_NDIRS; i++)
		out->dir_fsyncs += atomic_load(&sp->dir_fsyncs[i]);
	out->env_fsyncs = atomic_load(&sp->dir_fsyncs[SP_ENV]);
}

/* ---- recovery ------------------------------------------------------------ */

static uint64_t
sp_id_num(const char *id)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < QUEUE_ID_LEN; i++)
		v = v << 4 |
		    (uint64_t)(id[i] <= '9' ? id[i] - '0' : id[i] - 'a' + 10);
	return v;
}

static int
sp_ids_add(struct sp_ids *s, uint64_t v)
{
	uint64_t *p;
	size_t cap;

	if (s->n == s->cap) {
		cap = s->cap == 0 ? 256 : s->cap * 2;
		if (cap > SIZE_MAX / sizeof(*p) ||
		    (p = realloc(s->v, cap * sizeof(*p))) == NULL) {
			errno = ENOMEM;
			return -1;
		}
		s->v = p;
		s->cap = cap;
	}
	s->v[s->n++] = v;
	return 0;
}

static int
sp_u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void
sp_ids_sort(struct sp_ids *s)
{
	if (s->n > 1)
		qsort(s->v, s->n, sizeof(s->v[0]), sp_u64_cmp);
}

static bool
sp_ids_has(const struct sp_ids *s, uint64_t v)
{
	return s->n > 0 &&
	       bsearch(&v, s->v, s->n, sizeof(s->v[0]), sp_u64_cmp) != NULL;
}

static void
sp_log_foreign(enum spool_dir dir, const char *name)
{
	char safe[NAME_MAX * 4 + 4];

	log_warn("event=queue_foreign_file dir=%s name=%s note=\"left alone\"",
	    sp_dir_names[dir],
	    log_sanitize(safe, sizeof(safe), name, strlen(name)));
}

/* tmp/: nothing there was ever committed (docs/queue.md). */
static int
sp_rec_tmp(struct spool *sp, enum spool_dir dir, const char *name, void *v)
{
	struct sp_rec *rec = v;
	char safe[NAME_MAX * 4 + 4];

	if (unlinkat(sp->fd[dir], name, 0) != 0) {
		log_warn("event=queue_recover_tmp name=%s errno=%d",
		    log_sanitize(safe, sizeof(safe), name, strlen(name)),
		    errno);
		return 0;
	}
	log_info("id=%s event=queue_recover_tmp action=unlink",
	    log_sanitize(safe, sizeof(safe), name, strlen(name)));
	rec->tmp++;
	rec->changed[dir] = true;
	return 0;
}

static int
sp_rec_list_data(
    struct spool *sp, enum spool_dir dir, const char *name, void *v)
{
	struct sp_rec *rec = v;

	(void)sp;
	if (!queue_id_valid(name)) {
		sp_log_foreign(dir, name);
		return 0;
	}
	return sp_ids_add(&rec->data, sp_id_num(name));
}

/* An envelope in env/ or held/: keep it, or move it to corrupt/. */
static int
sp_rec_env(struct spool *sp, enum spool_dir dir, const char *name, void *v)
{
	struct sp_rec *rec = v;
	char err[SPOOL_ERR_MAX];
	struct queue_env env;
	uint64_t num;
	int r;

	if (!queue_id_valid(name)) {
		sp_log_foreign(dir, name);
		return 0;
	}
	num = sp_id_num(name);
	/* held/ is scanned first: an id in both keeps its held/ copy */
	if (dir == SP_ENV && sp_ids_has(&rec->live, num)) {
		sp_quarantine(sp, dir, name, false, "also in held/");
		goto moved;
	}
	if (!sp_ids_has(&rec->data, num)) {
		sp_quarantine(sp, dir, name, false, "no data file");
		goto moved;
	}
	r = sp_load_from(sp, dir, name, &rec->b, &env, err, sizeof(err));
	queue_env_free(&env);
	if (r != 0 && errno == ENOTSUP) {
		/* a newer tern's queue: stop, touch nothing more */
		str_fmt_cut(rec->newer, sizeof(rec->newer),
		    "queue/%s/%s: %s; refusing to run on a queue written by "
		    "a newer tern (docs/formats.md, Downgrades)",
		    sp_dir_names[dir], name, err);
		return -1;
	}
	if (r != 0) {
		sp_quarantine(sp, dir, name, true, err);
		goto moved;
	}
	if (dir == SP_HELD)
		rec->held++;
	else
		rec->queued++;
	return sp_ids_add(&rec->live, num);
moved:
	rec->corrupt++;
	rec->changed[dir] = rec->changed[SP_CORRUPT] = true;
	return 0;
}

/* data/: content whose envelope is gone (never committed, or removed). */
static int
sp_rec_orphans(struct spool *sp, struct sp_rec *rec)
{
	char id[QUEUE_ID_LEN + 1];
	size_t i;

	for (i = 0; i < rec->data.n; i++) {
		if (sp_ids_has(&rec->live, rec->data.v[i]))
			continue;
		if (str_fmt(id, sizeof(id), "%016llx",
			(unsigned long long)rec->data.v[i]) != 0)
			return -1; /* 16 digits always fit */
		if (unlinkat(sp->fd[SP_DATA], id, 0) != 0) {
			if (errno != ENOENT) /* moved to corrupt/ */
				log_warn("id=%s event=queue_recover_orphan "
					 "errno=%d",
				    id, errno);
			continue;
		}
		log_info("id=%s event=queue_recover_orphan action=unlink", id);
		rec->orphans++;
		rec->changed[SP_DATA] = true;
	}
	return 0;
}

/* Recovery as in docs/queue.md; logs one line per action and a summary. */
static int
sp_recover(struct spool *sp, char *err, size_t errlen)
{
	struct sp_rec rec;
	int r, i;

	memset(&rec, 0, sizeof(rec));
	buf_init(&rec.b, QUEUE_ENV_FILE_MAX);
	r = sp_each(sp, SP_TMP, sp_rec_tmp, &rec);
	if (r == 0 && (r = sp_each(sp, SP_DATA, sp_rec_list_data, &rec)) == 0) {
		sp_ids_sort(&rec.data);
		r = sp_each(sp, SP_HELD, sp_rec_env, &rec);
	}
	if (r == 0) {
		sp_ids_sort(&rec.live);
		r = sp_each(sp, SP_ENV, sp_rec_env, &rec);
	}
	if (r == 0) {
		sp_ids_sort(&rec.live);
		r = sp_rec_orphans(sp, &rec);
	}
	for (i = 0; r == 0 && i < SP_NDIRS; i++)
		if (rec.changed[i] && sp_dir_sync(sp, (enum spool_dir)i) != 0)
			r = -1;
	if (r != 0 && rec.newer[0] != '\0') {
		errno = ENOTSUP;
		if (err != NULL)
			str_fmt_cut(err, errlen, "%s", rec.newer);
	} else if (r != 0)
		queue_fail(err, errlen, "recover", "queue", NULL);
	else
		log_info("event=queue_recovered queued=%zu held=%zu "
			 "tmp_removed=%zu orphans_removed=%zu corrupt=%zu",
		    rec.queued, rec.held, rec.tmp, rec.orphans, rec.corrupt);
	free(rec.data.v);
	free(rec.live.v);
	buf_free(&rec.b);
	return r;
}

/* ---- open and close ------------------------------------------------------ */

/* Open parent/name as a directory, making it (0700, parent synced). */
static int
sp_open_dir(int parent, const char *name, char *err, size_t errlen)
{
	int fd = openat(parent, name, SPOOL_DIR_FLAGS);
	const char *step;

	if (fd >= 0)
		return fd;
	if (errno != ENOENT)
		goto fail;
	if (file_mkdir(SP_WHO, parent, name, &step) != 0)
		goto fail;
	if ((fd = openat(parent, name, SPOOL_DIR_FLAGS)) >= 0)
		return fd;
fail:
	queue_fail(err, errlen, "open", "queue directory", name);
	return -1;
}

static struct spool *
sp_new(void)
{
	struct spool *sp = xcalloc(1, sizeof(*sp));
	int i;

	sp->root_fd = -1;
	for (i = 0; i < SP_NDIRS; i++) {
		sp->fd[i] = -1;
		gsync_init(&sp->gs[i]);
	}
	return sp;
}

/* STATE/queue and its subdirectories, made when missing, and the lock. */
static int
sp_open_dirs(struct spool *sp, const char *state_dir, char *err, size_t errlen)
{
	int state, i;

	if ((state = open(state_dir, SPOOL_DIR_FLAGS & ~O_NOFOLLOW)) < 0) {
		queue_fail(err, errlen, "open", "state directory", NULL);
		return -1;
	}
	sp->root_fd = sp_open_dir(state, "queue", err, errlen);
	fd_close_quiet(state);
	if (sp->root_fd < 0)
		return -1;
	if (flock(sp->root_fd, LOCK_EX | LOCK_NB) != 0) {
		queue_fail(err, errlen, "lock",
		    "queue (is another ternd or tern "
		    "using it?)",
		    NULL);
		return -1;
	}
	for (i = 0; i < SP_NDIRS; i++)
		if ((sp->fd[i] = sp_open_dir(
			 sp->root_fd, sp_dir_names[i], err, errlen)) < 0)
			return -1;
	return 0;
}

/* A queue the log has taken over (seg/ with a segment in it): the file
 * spool must not run on it, its messages would be stranded. */
static int
sp_refuse_log(struct spool *sp, char *err, size_t errlen)
{
	int fd = openat(sp->root_fd, "seg", SPOOL_DIR_FLAGS);
	struct dirent *de;
	bool any = false;
	DIR *d;

	if (fd < 0)
		return 0;
	if ((d = fdopendir(fd)) == NULL) {
		fd_close_quiet(fd);
		return 0;
	}
	while (!any && (de = readdir(d)) != NULL)
		any = de->d_name[0] != '.';
	(void)closedir(d);
	if (!any)
		return 0;
	errno = EEXIST;
	queue_fail(err, errlen, "open",
	    "queue (STATE/queue/seg/ holds it in the log format: set "
	    "queue.log = yes, the default; to go back to files, drain it "
	    "first: docs/queue.md, \"Going back\")",
	    NULL);
	return -1;
}

struct spool *
spool_open_log(const char *state_dir, char *err, size_t errlen)
{
	struct spool *sp = sp_new();
	int saved;

	if ((sp->log = lspool_open(state_dir, err, errlen)) != NULL)
		return sp;
	saved = errno;
	spool_close(sp);
	errno = saved;
	return NULL;
}

struct spool *
spool_open(const char *state_dir, char *err, size_t errlen)
{
	struct spool *sp = sp_new();
	int saved;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (sp_open_dirs(sp, state_dir, err, errlen) != 0 ||
	    sp_refuse_log(sp, err, errlen) != 0 ||
	    sp_recover(sp, err, errlen) != 0)
		goto fail;
	return sp;
fail:
	saved = errno;
	spool_close(sp);
	errno = saved;
	return NULL;
}

void
spool_close(struct spool *sp)
{
	int i;

	if (sp == NULL)
		return;
	lspool_close(sp->log);
	for (i = 0; i < SP_NDIRS; i++) {
		fd_close_quiet(sp->fd[i]);
		gsync_destroy(&sp->gs[i]);
	}
	fd_close_quiet(sp->root_fd); /* releases the flock */
	free(sp);
}

/* spool_int.h: the group fsync of env/ alone, for test_spool */
int
spool_sync_env_dir(struct spool *sp)
{
	return sp_dir_sync(sp, SP_ENV);
}
