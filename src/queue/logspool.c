/*
 * logspool: the log-structured queue (docs/queue.md, "The log" is the
 * contract; qlog.c is the record codec).
 *
 * Layout: STATE/queue/seg/NNNNNNNNNNNNNNNN (segment numbers, 16 hex
 * digits, increasing), each preallocated to LSPOOL_SEG_SIZE, a versioned
 * header then records; STATE/queue/corrupt/ for what recovery cannot use.
 * Only the highest-numbered segment (the active one) is appended to.
 *
 * Durability, and why:
 *   - An append is a pwritev at the active segment's end, made under the
 *     spool's mutex, so records are laid down in order and a record is
 *     never written after a hole.  It is acknowledged once an fdatasync
 *     that started after it was written has completed: threads share
 *     them (group commit, gsync.h: the same generation scheme as the
 *     file spool's directory fsyncs).  The
 *     segment is preallocated, so the fdatasync has no size to write.
 *   - A new segment is created, preallocated, given its header,
 *     fdatasync'ed, then seg/ is fsync'ed, and the previous segment is
 *     fdatasync'ed, all before the new one takes any record: so neither
 *     its name nor a record behind it in an older segment can be missing
 *     when its first record is acknowledged.
 *   - A segment is unlinked (and seg/ fsync'ed at once) only when no live
 *     message has a record in it and no removal record in it still
 *     hides a message record of an older segment (a tombstone, below).
 *   - A failed fdatasync makes the spool refuse every later write (on
 *     Linux a later success proves nothing about the failed pages).
 *
 * Index: id -> where its content, its latest envelope and its latest
 * hold state are (segment and offset), in an open-addressing hash table.
 * Each such place holds a reference on its segment.  A removed message
 * stays in the table as a tombstone while its message record's segment
 * exists: it references the segment of its REMOVE record, so that record
 * cannot go first and let the message come back at the next replay.
 *
 * Recovery (lspool_open) replays the segments in order.  In the active
 * (last) segment, the first torn or bad record and everything after it
 * is cut off (zeroed); nothing acknowledged is there, since appends are
 * in order and each is acknowledged only after it and all before it are
 * durable.  A bad record in an older segment is damage: the segment is
 * hard-linked into corrupt/ for the admin, logged once, and what was
 * read before the damage is used.
 *
 * Threads: one mutex (mu) for the index, the segments and the appends;
 * the group sync has its own (gs.mu); never both held at once.
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
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "queue/gsync.h"
#include "queue/logspool.h"
#include "queue/qfail.h"
#include "queue/queue.h"
#include "fs/file.h"

#define LS_DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
#define LS_ERR_MAX   256
#define LS_ID_TRIES  8
#define LS_IOV_MAX   64
#define LS_WHO	     "logspool" /* the fault hook's module (fs/file.h) */

uint64_t lspool_seg_size = LSPOOL_SEG_SIZE;

struct seg {
	uint64_t num;
	int fd;
	uint64_t end;  /* append offset (the active one) or replay end */
	uint64_t refs; /* places in the index that point here */
	uint64_t nrec; /* records written into it */
	uint64_t live; /* live messages whose content is here */
	unsigned pins; /* a sync running on fd */
	bool damaged;  /* a bad record was found in it */
};

enum ent_state { ENT_FREE = 0, ENT_LIVE, ENT_DEAD, ENT_GONE };

struct ent {
	uint64_t id;
	struct seg *cseg, *eseg, *sseg; /* content, envelope, hold state */
	struct seg *rseg;		/* dead: its REMOVE record */
	uint64_t coff, clen, eoff;
	uint32_t elen;
	uint8_t state;
	bool held;
	bool newer; /* its envelope is of a version newer than this tern's */
};

struct lspool {
	int root_fd, seg_fd, corrupt_fd;
	pthread_mutex_t mu;
	struct ent *tab; /* a power of two of slots */
	size_t tab_cap, tab_used, nlive;
	struct seg **segs; /* by number */
	size_t nsegs, segs_cap;
	struct seg *active;
	int broken;	/* errno of a failed fdatasync: every write fails */
	bool replaying; /* lspool_open: segments are freed at the end */
	char refused[LS_ERR_MAX]; /* replay met a newer tern's format */
	struct gsync gs;	  /* the active segment's group fdatasync */
	atomic_uint_least64_t commits, updates, removes, appends, fdatasyncs,
	    sync_waits, dir_fsyncs, freed, compacted, copied;
};

/* ---- helpers ------------------------------------------------------------- */

static uint64_t
ls_id_num(const char *id)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < QUEUE_ID_LEN; i++)
		v = v << 4 |
		    (uint64_t)(id[i] <= '9' ? id[i] - '0' : id[i] - 'a' + 10);
	return v;
}

static void
ls_id_str(uint64_t v, char out[QUEUE_ID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	int i;

	for (i = QUEUE_ID_LEN - 1; i >= 0; i--, v >>= 4)
		out[i] = hex[v & 15];
	out[QUEUE_ID_LEN] = '\0';
}

static int
ls_pwritev_all(int fd, struct iovec *iov, int iovcnt, uint64_t off)
{
	while (iovcnt > 0) {
		ssize_t n = pwritev(fd, iov, iovcnt, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		off += (uint64_t)n;
		while (iovcnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

static int
ls_pread_all(int fd, void *p, size_t n, uint64_t off)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r =
		    pread(fd, (char *)p + got, n - got, (off_t)(off + got));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = EIO; /* the segment is shorter */
			return -1;
		}
		got += (size_t)r;
	}
	return 0;
}

static int
ls_sync_dir(struct lspool *sp)
{
	atomic_fetch_add(&sp->dir_fsyncs, 1);
	if (FILE_FAULT(LS_WHO, "fsync_dir") != 0)
		return -1;
	return fsync(sp->seg_fd);
}

/* ---- the index ----------------------------------------------------------- */

static size_t
ls_hash(uint64_t id, size_t cap)
{
	return (size_t)((id * 0x9e3779b97f4a7c15ull) >> 17) & (cap - 1);
}

/* The slot of id, or NULL. */
static struct ent *
ls_find(struct lspool *sp, uint64_t id)
{
	size_t i;

	if (sp->tab_cap == 0)
		return NULL;
	for (i = ls_hash(id, sp->tab_cap);; i = (i + 1) & (sp->tab_cap - 1)) {
		struct ent *e = &sp->tab[i];

		if (e->state == ENT_FREE)
			return NULL;
		if (e->state != ENT_GONE && e->id == id)
			return e;
	}
}

static void ls_grow(struct lspool *sp);

/* The slot of id, made (state ENT_GONE, for the caller to fill). */
static struct ent *
ls_get(struct lspool *sp, uint64_t id)
{
	struct ent *e = ls_find(sp, id);
	size_t i;

	if (e != NULL)
		return e;
	if ((sp->tab_used + 1) * 2 > sp->tab_cap)
		ls_grow(sp);
	for (i = ls_hash(id, sp->tab_cap);; i = (i + 1) & (sp->tab_cap - 1))
		if (sp->tab[i].state == ENT_FREE ||
		    sp->tab[i].state == ENT_GONE)
			break;
	e = &sp->tab[i];
	if (e->state == ENT_FREE)
		sp->tab_used++;
	memset(e, 0, sizeof(*e));
	e->id = id;
	e->state = ENT_GONE;
	return e;
}

static void
ls_grow(struct lspool *sp)
{
	struct ent *old = sp->tab;
	size_t cap = sp->tab_cap, i, n = 0;

	for (i = 0; i < cap; i++)
		if (old[i].state == ENT_LIVE || old[i].state == ENT_DEAD)
			n++;
	sp->tab_cap = cap == 0 ? 1024 : cap;
	while ((n + 1) * 4 > sp->tab_cap)
		sp->tab_cap *= 2;
	sp->tab = xcalloc(sp->tab_cap, sizeof(*sp->tab));
	sp->tab_used = 0;
	for (i = 0; i < cap; i++) {
		size_t j;

		if (old[i].state != ENT_LIVE && old[i].state != ENT_DEAD)
			continue;
		for (j = ls_hash(old[i].id, sp->tab_cap);
		     sp->tab[j].state != ENT_FREE;
		     j = (j + 1) & (sp->tab_cap - 1))
			;
		sp->tab[j] = old[i];
		sp->tab_used++;
	}
	free(old);
}

/* ---- segments ------------------------------------------------------------ */

static void
ls_seg_name(uint64_t num, char out[QUEUE_ID_LEN + 1])
{
	ls_id_str(num, out);
}

static void
ls_segs_add(struct lspool *sp, struct seg *s)
{
	if (sp->nsegs == sp->segs_cap) {
		size_t cap = sp->segs_cap ? sp->segs_cap * 2 : 16;
		struct seg **v = xcalloc(cap, sizeof(*v));

		if (sp->nsegs > 0)
			memcpy(v, sp->segs, sp->nsegs * sizeof(*v));
		free(sp->segs);
		sp->segs = v;
		sp->segs_cap = cap;
	}
	sp->segs[sp->nsegs++] = s;
}

static void ls_release(struct lspool *sp, struct seg *s);

/*
 * Unlink s (no reference left), fsync seg/ at once, then drop the
 * tombstones whose message record was in s: they hid nothing any more,
 * and their REMOVE records' segments may go in turn.
 */
static void
ls_seg_free(struct lspool *sp, struct seg *s)
{
	char name[QUEUE_ID_LEN + 1];
	size_t i;

	ls_seg_name(s->num, name);
	if (unlinkat(sp->seg_fd, name, 0) != 0 || ls_sync_dir(sp) != 0) {
		log_err("event=queue_segment_free segment=%s errno=%d "
			"note=\"kept\"",
		    name, errno);
		s->refs = 1; /* leaked on purpose: the next start frees it */
		return;
	}
	log_info("event=queue_segment_freed segment=%s", name);
	atomic_fetch_add(&sp->freed, 1);
	for (i = 0; i < sp->nsegs; i++)
		if (sp->segs[i] == s)
			break;
	if (i < sp->nsegs) {
		memmove(&sp->segs[i], &sp->segs[i + 1],
		    (sp->nsegs - i - 1) * sizeof(sp->segs[0]));
		sp->nsegs--;
	}
	fd_close_quiet(s->fd);
	s->fd = -1;
	s->refs = 1; /* guards the walk below against a second free */
	for (i = 0; i < sp->tab_cap; i++) {
		struct ent *e = &sp->tab[i];

		if (e->state == ENT_DEAD && e->cseg == s) {
			struct seg *r = e->rseg;

			e->state = ENT_GONE;
			if (r != s)
				ls_release(sp, r);
		}
	}
	free(s);
}

/* Drop one reference on s; unlink it when none is left (not the active
 * one, not while a sync runs on it). */
static void
ls_release(struct lspool *sp, struct seg *s)
{
	if (s == NULL || s->refs == 0)
		return;
	s->refs--;
	if (s->refs == 0 && s != sp->active && s->pins == 0 && !sp->replaying)
		ls_seg_free(sp, s);
}

static void
ls_ref(struct seg *s)
{
	s->refs++;
}

/* The octets to preallocate a segment with: lspool_seg_size, or an
 * eighth of the free space when that is less (at least one page). */
static uint64_t
ls_prealloc(int fd)
{
	struct statvfs vs;
	uint64_t free8;

	if (fstatvfs(fd, &vs) != 0)
		return lspool_seg_size;
	free8 = (uint64_t)vs.f_bavail * vs.f_frsize / 8;
	if (free8 < 4096)
		free8 = 4096;
	return free8 < lspool_seg_size ? free8 : lspool_seg_size;
}

/* Create segment num: preallocated, header written and synced, seg/
 * synced.  The caller makes it active. */
static struct seg *
ls_seg_create(struct lspool *sp, uint64_t num)
{
	char name[QUEUE_ID_LEN + 1];
	uint8_t head[QLOG_SEG_HEAD];
	struct iovec iov = {head, sizeof(head)};
	struct seg *s;
	int fd, e;

	ls_seg_name(num, name);
	if (FILE_FAULT(LS_WHO, "create") != 0)
		return NULL;
	fd = openat(sp->seg_fd, name,
	    O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return NULL;
	qlog_seg_head(head, num);
	/* preallocated: the appends' fdatasyncs then have no size to write.
	   At most an eighth of the free space, so a small file system is
	   not filled by an empty segment; a file system without fallocate,
	   or without the room, just grows the file (each fdatasync then
	   writes the size too) */
	if ((e = posix_fallocate(fd, 0, (off_t)ls_prealloc(fd))) != 0) {
		if (e != EOPNOTSUPP && e != EINVAL && e != ENOSPC &&
		    e != EDQUOT) {
			errno = e;
			goto fail;
		}
		if (ftruncate(fd, 0) != 0)
			goto fail;
	}
	if (FILE_FAULT(LS_WHO, "seg_write") != 0 ||
	    ls_pwritev_all(fd, &iov, 1, 0) != 0 ||
	    FILE_FAULT(LS_WHO, "seg_sync") != 0 || fdatasync(fd) != 0)
		goto fail;
	atomic_fetch_add(&sp->fdatasyncs, 1);
	if (ls_sync_dir(sp) != 0)
		goto fail;
	s = xcalloc(1, sizeof(*s));
	s->num = num;
	s->fd = fd;
	s->end = QLOG_SEG_HEAD;
	log_info("event=queue_segment_new segment=%s", name);
	return s;
fail:
	e = errno;
	fd_close_quiet(fd);
	(void)unlinkat(sp->seg_fd, name, 0);
	errno = e;
	return NULL;
}

/* A new active segment after the current one (which is synced first). */
static int
ls_roll(struct lspool *sp)
{
	struct seg *old = sp->active, *s;

	s = ls_seg_create(
	    sp, sp->nsegs > 0 ? sp->segs[sp->nsegs - 1]->num + 1 : 1);
	if (s == NULL)
		return -1;
	if (old != NULL) {
		if (FILE_FAULT(LS_WHO, "roll_sync") != 0 ||
		    fdatasync(old->fd) != 0) {
			sp->broken = errno;
			log_err("event=queue_fdatasync_failed errno=%d "
				"note=\"the queue refuses writes\"",
			    errno);
		}
		atomic_fetch_add(&sp->fdatasyncs, 1);
	}
	ls_segs_add(sp, s);
	sp->active = s;
	if (old != NULL && old->refs == 0 && old->pins == 0)
		ls_seg_free(sp, old);
	if (sp->broken != 0) {
		errno = sp->broken;
		return -1;
	}
	return 0;
}

/*
 * Append record r (content iov for MSG) to the active segment; mu held.
 * *seg_out and *off_out: where it went.  A failed write is zeroed again,
 * so a segment never holds anything after its last good record.
 */
static int
ls_append(struct lspool *sp, const struct qlog_rec *r,
    const struct iovec *content, int iovcnt, struct seg **seg_out,
    uint64_t *off_out)
{
	uint8_t head[QLOG_REC_HEAD_MAX];
	struct iovec iov[LS_IOV_MAX + 2];
	size_t h, total;
	int i, n = 0;

	if (sp->broken != 0) {
		errno = sp->broken;
		return -1;
	}
	if (iovcnt > LS_IOV_MAX ||
	    qlog_rec_head(head, &h, r, content, iovcnt) != 0) {
		errno = EINVAL;
		return -1;
	}
	iov[n++] = (struct iovec){head, h};
	total = h + r->envlen;
	if (r->envlen > 0)
		iov[n++] = (struct iovec){(void *)(uintptr_t)r->env, r->envlen};
	for (i = 0; i < iovcnt; i++) {
		total += content[i].iov_len;
		if (content[i].iov_len > 0)
			iov[n++] = content[i];
	}
	/* "seg_full": the fault build's way to make a test roll now */
	if (sp->active->end > QLOG_SEG_HEAD &&
	    (sp->active->end + total > lspool_seg_size ||
		FILE_FAULT(LS_WHO, "seg_full") != 0) &&
	    ls_roll(sp) != 0)
		return -1;
	if (FILE_FAULT(LS_WHO, "write") != 0 ||
	    ls_pwritev_all(sp->active->fd, iov, n, sp->active->end) != 0) {
		int e = errno;

		if (fallocate(sp->active->fd, FALLOC_FL_ZERO_RANGE,
			(off_t)sp->active->end, (off_t)total) != 0 &&
		    fallocate(sp->active->fd,
			FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			(off_t)sp->active->end, (off_t)total) != 0)
			sp->broken = EIO; /* cannot clean up: stop writing */
		errno = e;
		return -1;
	}
	*seg_out = sp->active;
	*off_out = sp->active->end;
	sp->active->end += total;
	sp->active->nrec++;
	atomic_fetch_add(&sp->appends, 1);
	return 0;
}

/* ---- group sync ---------------------------------------------------------- */

/* One fdatasync of the active segment (gsync's leader, gs's lock not
 * held): the segment pinned meanwhile, so it is not freed under it. */
static int
ls_sync_run(void *ctx)
{
	struct lspool *sp = ctx;
	struct seg *s;
	int rc, re = 0;

	gsync_lock(&sp->mu);
	s = sp->active;
	s->pins++;
	gsync_unlock(&sp->mu);
	rc = FILE_FAULT(LS_WHO, "fdatasync") != 0 ? -1 : fdatasync(s->fd);
	if (rc != 0)
		re = errno;
	atomic_fetch_add(&sp->fdatasyncs, 1);
	gsync_lock(&sp->mu);
	s->pins--;
	/* after a failed one, a success proves nothing: the failed pages
	   may never reach the disk, and replay would stop at them, before
	   the records of this sync (a later fdatasync does not report an
	   error twice) */
	if (rc == 0 && sp->broken != 0)
		re = sp->broken;
	else if (rc != 0 && sp->broken == 0) {
		sp->broken = re;
		log_err("event=queue_fdatasync_failed errno=%d "
			"note=\"the queue refuses writes\"",
		    re);
	}
	if (s->pins == 0 && s->refs == 0 && s != sp->active)
		ls_seg_free(sp, s);
	gsync_unlock(&sp->mu);
	return re;
}

/* Return once an fdatasync of the active segment that started after this
 * call began has completed: 0, or -1 with its errno (gsync.h). */
static int
ls_sync(struct lspool *sp)
{
	atomic_fetch_add(&sp->sync_waits, 1);
	return gsync_wait(&sp->gs, ls_sync_run, sp);
}

/* ---- applying records to the index (replay and the write paths) --------- */

static void
ls_set_live(struct lspool *sp, struct ent *e, struct seg *s, uint64_t off,
    const struct qlog_rec *r)
{
	if (e->state == ENT_LIVE) {
		e->cseg->live--;
		ls_release(sp, e->cseg);
		ls_release(sp, e->eseg);
		ls_release(sp, e->sseg);
	} else if (e->state == ENT_DEAD) {
		ls_release(sp, e->rseg);
	}
	if (e->state != ENT_LIVE)
		sp->nlive++;
	e->state = ENT_LIVE;
	e->cseg = e->eseg = e->sseg = s;
	e->rseg = NULL;
	s->refs += 3;
	s->live++;
	e->coff = off + r->content_off;
	e->clen = r->content_len;
	e->eoff = off + r->env_off;
	e->elen = (uint32_t)r->envlen;
	e->held = (r->flags & QLOG_F_HELD) != 0;
	e->newer =
	    queue_env_peek_version(r->env, r->envlen) > QUEUE_ENV_VERSION;
}

/* Record r, found at off in s, changes the index (replay); mu held. */
static void
ls_apply(
    struct lspool *sp, struct seg *s, uint64_t off, const struct qlog_rec *r)
{
	struct ent *e;

	if (r->type == QLOG_MSG) {
		ls_set_live(sp, ls_get(sp, r->id), s, off, r);
		return;
	}
	e = ls_find(sp, r->id);
	if (e == NULL)
		return; /* its message record's segment is gone: stale */
	if (e->state == ENT_DEAD && r->type == QLOG_REMOVE) {
		ls_ref(s); /* a later copy of the removal (compaction) */
		ls_release(sp, e->rseg);
		e->rseg = s;
		return;
	}
	if (e->state != ENT_LIVE)
		return;
	switch (r->type) {
	case QLOG_ENV:
		ls_ref(s);
		ls_release(sp, e->eseg);
		e->eseg = s;
		e->eoff = off + r->env_off;
		e->elen = (uint32_t)r->envlen;
		e->newer = queue_env_peek_version(r->env, r->envlen) >
			   QUEUE_ENV_VERSION;
		break;
	case QLOG_HOLD:
	case QLOG_RELEASE:
		ls_ref(s);
		ls_release(sp, e->sseg);
		e->sseg = s;
		e->held = r->type == QLOG_HOLD;
		break;
	case QLOG_REMOVE:
		sp->nlive--;
		e->cseg->live--;
		ls_release(sp, e->eseg);
		ls_release(sp, e->sseg);
		/* a tombstone keeps the REMOVE record's segment while the MSG
		   record's exists (no reference on the latter: it goes when
		   that goes).  None is needed when both are in one segment
		   (they go together; a tombstone there would hold its own
		   segment forever), or when the MSG record's segment goes now
		 */
		if (e->cseg == s ||
		    (!sp->replaying && e->cseg->refs == 1 &&
			e->cseg != sp->active && e->cseg->pins == 0)) {
			e->state = ENT_GONE;
			ls_release(sp, e->cseg);
		} else {
			ls_ref(s);
			e->state = ENT_DEAD;
			e->rseg = s;
			e->cseg->refs--;
		}
		break;
	default:
		break;
	}
}

/* ---- writing ------------------------------------------------------------- */

static int
ls_content_size(const struct iovec *iov, int iovcnt, uint64_t *size_out)
{
	uint64_t total = 0;
	int i;

	if (iovcnt < 0 || iovcnt > LS_IOV_MAX || (iov == NULL && iovcnt > 0)) {
		errno = EINVAL;
		return -1;
	}
	for (i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	if (total > QLOG_REC_MAX / 2) {
		errno = EFBIG;
		return -1;
	}
	*size_out = total;
	return 0;
}

int
lspool_commit(struct lspool *sp, struct queue_env *env,
    const struct iovec *content, int iovcnt, char *err, size_t errlen)
{
	struct qlog_rec r = {0};
	struct seg *s;
	struct ent *e;
	uint64_t off;
	struct buf b;
	int tries;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (sp == NULL || env == NULL ||
	    ls_content_size(content, iovcnt, &env->size) != 0) {
		if (errno != EFBIG)
			errno = EINVAL;
		queue_fail(err, errlen, "check", "arguments", NULL);
		return -1;
	}
	env->version = queue_env_version(env);
	if (env->created == 0)
		env->created = time(NULL);
	buf_init(&b, QUEUE_ENV_FILE_MAX);
	gsync_lock(&sp->mu);
	/* the id env has (the transaction's, named in the 250) unless it is
	   in use: then a fresh one */
	for (tries = 0; tries < LS_ID_TRIES; tries++) {
		if (tries > 0 || !queue_id_valid(env->id))
			id_new(env->id);
		e = ls_find(sp, ls_id_num(env->id));
		if (e == NULL || e->state == ENT_GONE)
			break;
	}
	buf_reset(&b);
	if (tries == LS_ID_TRIES) {
		errno = EEXIST;
		queue_fail(err, errlen, "pick", "queue id", NULL);
		goto fail;
	}
	if (queue_env_encode(env, &b) != 0) {
		queue_fail(err, errlen, "encode", "envelope", NULL);
		goto fail;
	}
	r.type = QLOG_MSG;
	r.id = ls_id_num(env->id);
	r.env = b.data;
	r.envlen = b.len;
	if (ls_append(sp, &r, content, iovcnt, &s, &off) != 0) {
		queue_fail(err, errlen, "append", "message", env->id);
		goto fail;
	}
	r.content_off = QLOG_REC_HEAD_MAX + b.len;
	r.content_len = env->size;
	r.env_off = QLOG_REC_HEAD_MAX;
	ls_set_live(sp, ls_get(sp, r.id), s, off, &r);
	gsync_unlock(&sp->mu);
	buf_free(&b);
	if (ls_sync(sp) != 0) {
		/* the record may still be on disk after a crash: at worst a
		   message delivered that the client was told to retry */
		queue_fail(err, errlen, "fdatasync", "segment", env->id);
		gsync_lock(&sp->mu);
		e = ls_find(sp, r.id);
		if (e != NULL && e->state == ENT_LIVE) {
			e->state = ENT_GONE;
			sp->nlive--;
			e->cseg->live--;
			ls_release(sp, e->cseg);
			ls_release(sp, e->eseg);
			ls_release(sp, e->sseg);
		}
		gsync_unlock(&sp->mu);
		env->id[0] = '\0';
		return -1;
	}
	atomic_fetch_add(&sp->commits, 1);
	return 0;
fail:
	gsync_unlock(&sp->mu);
	buf_free(&b);
	env->id[0] = '\0';
	return -1;
}

/* Append a small record (ENV, REMOVE, HOLD, RELEASE) for a live id and
 * apply it; then, with wait, wait for it to be durable. */
static int
ls_small(struct lspool *sp, unsigned type, const char *id, const char *env,
    size_t envlen, bool wait, char *err, size_t errlen)
{
	struct qlog_rec r = {0};
	struct seg *s;
	struct ent *e;
	uint64_t off;

	r.type = type;
	r.id = ls_id_num(id);
	r.env = env;
	r.envlen = envlen;
	r.env_off = QLOG_REC_HEAD_MIN;
	gsync_lock(&sp->mu);
	e = ls_find(sp, r.id);
	if (e == NULL || e->state != ENT_LIVE ||
	    (type == QLOG_ENV && e->held) || (type == QLOG_HOLD && e->held) ||
	    (type == QLOG_RELEASE && !e->held)) {
		gsync_unlock(&sp->mu);
		errno = e != NULL && e->state == ENT_LIVE && type == QLOG_HOLD
			    ? EEXIST
			    : ENOENT;
		queue_fail(err, errlen, "find", "message", id);
		return -1;
	}
	if (ls_append(sp, &r, NULL, 0, &s, &off) != 0) {
		gsync_unlock(&sp->mu);
		queue_fail(err, errlen, "append", "record", id);
		return -1;
	}
	ls_apply(sp, s, off, &r);
	gsync_unlock(&sp->mu);
	if (wait && ls_sync(sp) != 0) {
		queue_fail(err, errlen, "fdatasync", "segment", id);
		return -1;
	}
	return 0;
}

int
lspool_update(struct lspool *sp, const struct queue_env *env)
{
	char err[LS_ERR_MAX];
	struct buf b;
	int r = -1;

	buf_init(&b, QUEUE_ENV_FILE_MAX);
	if (queue_check_id(env->id, err, sizeof(err)) != 0)
		goto out;
	if (queue_env_encode(env, &b) != 0) {
		queue_fail(err, sizeof(err), "encode", "envelope", env->id);
		goto out;
	}
	r = ls_small(
	    sp, QLOG_ENV, env->id, b.data, b.len, true, err, sizeof(err));
out:
	buf_free(&b);
	if (r != 0)
		return queue_log_fail("update", env->id, err);
	atomic_fetch_add(&sp->updates, 1);
	return 0;
}

static void ls_compact(struct lspool *sp);

static int
ls_remove(struct lspool *sp, const char *id, bool wait)
{
	char err[LS_ERR_MAX];

	if (queue_check_id(id, err, sizeof(err)) != 0 ||
	    ls_small(sp, QLOG_REMOVE, id, "", 0, wait, err, sizeof(err)) != 0)
		return queue_log_fail("remove", id, err);
	atomic_fetch_add(&sp->removes, 1);
	gsync_lock(&sp->mu);
	ls_compact(sp);
	gsync_unlock(&sp->mu);
	return 0;
}

int
lspool_remove(struct lspool *sp, const char *id)
{
	return ls_remove(sp, id, true);
}

/*
 * Not waited for: a REMOVE record lost to a power failure only brings a
 * delivered message back, to be delivered again (at least once,
 * design.md principle 1), never loses one; it is durable with the next
 * fdatasync of the segment (the next commit or update, a new segment, a
 * compaction), and survives a crash of ternd alone once written.  Under
 * a flow of mail that saves a thread's sleep and wake-up per message.
 */
int
lspool_remove_done(struct lspool *sp, const char *id)
{
	return ls_remove(sp, id, false);
}

static int
ls_hold_op(struct lspool *sp, const char *id, unsigned type, const char *op)
{
	char err[LS_ERR_MAX];

	if (queue_check_id(id, err, sizeof(err)) != 0 ||
	    ls_small(sp, type, id, "", 0, true, err, sizeof(err)) != 0)
		return queue_log_fail(op, id, err);
	log_info("id=%s event=queue_%s", id, op);
	return 0;
}

int
lspool_hold(struct lspool *sp, const char *id)
{
	return ls_hold_op(sp, id, QLOG_HOLD, "hold");
}

int
lspool_release(struct lspool *sp, const char *id)
{
	return ls_hold_op(sp, id, QLOG_RELEASE, "release");
}

/* ---- compaction ---------------------------------------------------------- */

/* Copy live message e (content and latest envelope) into the active
 * segment as one MSG record; mu held. */
static int
ls_copy_msg(struct lspool *sp, struct ent *e)
{
	struct qlog_rec r = {0};
	struct iovec iov;
	char *env = xmalloc(e->elen + 1);
	void *content = xmalloc(e->clen + 1);
	struct seg *s;
	uint64_t off;
	int rc = -1;

	if (ls_pread_all(e->eseg->fd, env, e->elen, e->eoff) != 0 ||
	    ls_pread_all(e->cseg->fd, content, e->clen, e->coff) != 0)
		goto out;
	r.type = QLOG_MSG;
	r.flags = e->held ? QLOG_F_HELD : 0;
	r.id = e->id;
	r.env = env;
	r.envlen = e->elen;
	iov.iov_base = content;
	iov.iov_len = e->clen;
	if (ls_append(sp, &r, &iov, 1, &s, &off) != 0)
		goto out;
	r.env_off = QLOG_REC_HEAD_MAX;
	r.content_off = QLOG_REC_HEAD_MAX + e->elen;
	r.content_len = e->clen;
	ls_set_live(sp, e, s, off, &r);
	rc = 0;
out:
	free(env);
	free(content);
	return rc;
}

/* Compact segment s: its survivors (and removals still needed) copied,
 * synced, then s unlinked (by the last release); mu held. */
static int
ls_compact_seg(struct lspool *sp, struct seg *s)
{
	char name[QUEUE_ID_LEN + 1];
	size_t i, n = 0;

	ls_seg_name(s->num, name);
	s->pins++; /* not freed under the walk */
	for (i = 0; i < sp->tab_cap; i++) {
		struct ent *e = &sp->tab[i];

		if (e->state == ENT_LIVE &&
		    (e->cseg == s || e->eseg == s || e->sseg == s)) {
			if (ls_copy_msg(sp, e) != 0)
				goto fail;
			n++;
		} else if (e->state == ENT_DEAD && e->rseg == s) {
			struct qlog_rec r = {0};
			struct seg *t;
			uint64_t off;

			r.type = QLOG_REMOVE;
			r.id = e->id;
			if (ls_append(sp, &r, NULL, 0, &t, &off) != 0)
				goto fail;
			ls_ref(t);
			e->rseg = t;
			ls_release(sp, s);
			n++;
		}
	}
	/* the copies durable before the originals can go */
	if (fdatasync(sp->active->fd) != 0) {
		sp->broken = errno;
		goto fail;
	}
	atomic_fetch_add(&sp->fdatasyncs, 1);
	atomic_fetch_add(&sp->copied, n);
	atomic_fetch_add(&sp->compacted, 1);
	log_info(
	    "event=queue_segment_compacted segment=%s copied=%zu", name, n);
	s->pins--;
	if (s->refs == 0)
		ls_seg_free(sp, s);
	return 0;
fail:
	s->pins--;
	log_err("event=queue_compact_failed segment=%s errno=%d", name, errno);
	return -1;
}

/* Compact every old segment few of whose messages are still live. */
static void
ls_compact(struct lspool *sp)
{
	struct seg *s;
	size_t i;

	while (sp->broken == 0) {
		for (i = 0, s = NULL; i < sp->nsegs && s == NULL; i++)
			if (sp->segs[i] != sp->active &&
			    sp->segs[i]->refs > 0 &&
			    sp->segs[i]->refs * LSPOOL_COMPACT_RATIO <
				sp->segs[i]->nrec)
				s = sp->segs[i];
		if (s == NULL || ls_compact_seg(sp, s) != 0)
			break;
	}
}

/* ---- reading ------------------------------------------------------------- */

/* Where e's content is, on a descriptor of its own: the segment may be
 * compacted or freed while the caller reads; the open file stays.  mu
 * held; out->fd < 0 when the duplicate failed. */
static void
ls_data_of(const struct ent *e, struct spool_data *out)
{
	out->fd = fcntl(e->cseg->fd, F_DUPFD_CLOEXEC, 0);
	out->off = e->coff;
	out->len = e->clen;
}

int
lspool_open_data(struct lspool *sp, const char *id, struct spool_data *out)
{
	struct ent *e;

	out->fd = -1;
	if (queue_check_id(id, NULL, 0) != 0)
		return -1;
	gsync_lock(&sp->mu);
	e = ls_find(sp, ls_id_num(id));
	if (e == NULL || e->state != ENT_LIVE) {
		gsync_unlock(&sp->mu);
		errno = ENOENT;
		return -1;
	}
	ls_data_of(e, out);
	gsync_unlock(&sp->mu);
	return out->fd < 0 ? -1 : 0;
}

/* Read and decode the latest envelope of id; mu held. */
static int
ls_load_locked(struct lspool *sp, uint64_t id, struct queue_env *out, char *err,
    size_t errlen)
{
	char name[QUEUE_ID_LEN + 1];
	struct ent *e = ls_find(sp, id);
	char *p;
	int r;

	ls_id_str(id, name);
	if (e == NULL || e->state != ENT_LIVE) {
		errno = ENOENT;
		queue_fail(err, errlen, "find", "message", name);
		return -1;
	}
	p = xmalloc(e->elen + 1);
	if (ls_pread_all(e->eseg->fd, p, e->elen, e->eoff) != 0) {
		queue_fail(err, errlen, "read", "envelope", name);
		free(p);
		return -1;
	}
	r = queue_env_decode(p, e->elen, out, err, errlen);
	free(p);
	if (r != 0) {
		if (errno != ENOTSUP) /* a newer tern's: not damage */
			errno = EINVAL;
		return -1;
	}
	if (strcmp(out->id, name) != 0 || out->size != e->clen) {
		if (err != NULL)
			str_fmt_cut(err, errlen,
			    "envelope names id %s size %llu", out->id,
			    (unsigned long long)out->size);
		queue_env_free(out);
		errno = EINVAL;
		return -1;
	}
	out->held = e->held;
	return 0;
}

int
lspool_load(struct lspool *sp, const char *id, struct queue_env *out, char *err,
    size_t errlen)
{
	int r;

	queue_env_init(out);
	if (queue_check_id(id, err, errlen) != 0)
		return -1;
	gsync_lock(&sp->mu);
	r = ls_load_locked(sp, ls_id_num(id), out, err, errlen);
	gsync_unlock(&sp->mu);
	return r;
}

void
lspool_test_hold(struct lspool *sp, bool hold)
{
	if (hold)
		gsync_lock(&sp->mu);
	else
		gsync_unlock(&sp->mu);
}

int
lspool_load_now(struct lspool *sp, const char *id, struct queue_env *out,
    struct spool_data *data, char *err, size_t errlen)
{
	struct ent *e;
	int r;

	if (queue_check_id(id, err, errlen) != 0)
		return -1;
	/* a commit holds it for a pwritev, a new segment for its
	   fallocate and syncs: never wait for that on the loop */
	if (pthread_mutex_trylock(&sp->mu) != 0)
		return -2;
	queue_env_init(out);
	data->fd = -1;
	r = ls_load_locked(sp, ls_id_num(id), out, err, errlen);
	if (r == 0) {
		e = ls_find(sp, ls_id_num(id));
		ls_data_of(e, data);
		if (data->fd < 0) {
			queue_fail(err, errlen, "dup", "segment", id);
			r = -1;
		}
	}
	gsync_unlock(&sp->mu);
	return r;
}

/* Write p[0..n) as corrupt/name (never over one there), synced. */
static void
ls_corrupt_file(
    struct lspool *sp, const char *name, int fd, uint64_t off, uint64_t n)
{
	char *p = xmalloc(n + 1);
	struct iovec iov = {p, n};
	int out;

	out = openat(sp->corrupt_fd, name,
	    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0 || ls_pread_all(fd, p, n, off) != 0 ||
	    ls_pwritev_all(out, &iov, 1, 0) != 0 || fsync(out) != 0)
		log_err(
		    "event=queue_corrupt_copy name=%s errno=%d", name, errno);
	fd_close_quiet(out);
	free(p);
}

/*
 * An envelope that does not decode: its envelope and content are copied
 * to corrupt/ID.env and corrupt/ID.data for the admin, then the message
 * is removed from the log (logged once, with the reason).
 */
static void
ls_quarantine(struct lspool *sp, uint64_t id, const char *why)
{
	char name[QUEUE_ID_LEN + 8], safe[LS_ERR_MAX];
	struct ent *e;

	ls_id_str(id, name);
	log_quote(safe, sizeof(safe), why, strlen(why));
	log_err("id=%s event=queue_corrupt reason=\"%s\"", name, safe);
	gsync_lock(&sp->mu);
	e = ls_find(sp, id);
	if (e != NULL && e->state == ENT_LIVE) {
		ls_id_str(id, name);
		memcpy(name + QUEUE_ID_LEN, ".env", 5);
		ls_corrupt_file(sp, name, e->eseg->fd, e->eoff, e->elen);
		memcpy(name + QUEUE_ID_LEN, ".data", 6);
		ls_corrupt_file(sp, name, e->cseg->fd, e->coff, e->clen);
		if (fsync(sp->corrupt_fd) != 0)
			log_err("event=queue_corrupt_sync errno=%d", errno);
	}
	gsync_unlock(&sp->mu);
	ls_id_str(id, name);
	if (ls_small(sp, QLOG_REMOVE, name, "", 0, true, safe, sizeof(safe)) !=
	    0)
		log_err("id=%s event=queue_corrupt_remove error=\"%s\"", name,
		    safe);
}

int
lspool_scan(
    struct lspool *sp, void (*cb)(struct queue_env *env, void *ctx), void *ctx)
{
	uint64_t *ids;
	size_t n = 0, i;
	int count = 0;

	gsync_lock(&sp->mu);
	ids = xcalloc(sp->nlive + 1, sizeof(*ids));
	for (i = 0; i < sp->tab_cap && n < sp->nlive; i++)
		if (sp->tab[i].state == ENT_LIVE)
			ids[n++] = sp->tab[i].id;
	gsync_unlock(&sp->mu);
	for (i = 0; i < n; i++) {
		struct queue_env env;
		char err[LS_ERR_MAX];
		int r;

		gsync_lock(&sp->mu);
		r = ls_load_locked(sp, ids[i], &env, err, sizeof(err));
		gsync_unlock(&sp->mu);
		if (r != 0) {
			if (errno == EINVAL)
				ls_quarantine(sp, ids[i], err);
			else if (errno != ENOENT)
				log_err("event=queue_scan_read errno=%d "
					"error=\"%s\"",
				    errno, err);
			continue;
		}
		cb(&env, ctx);
		queue_env_free(&env);
		count++;
	}
	free(ids);
	return count;
}

void
lspool_get_stats(struct lspool *sp, struct lspool_stats *out)
{
	out->commits = atomic_load(&sp->commits);
	out->updates = atomic_load(&sp->updates);
	out->removes = atomic_load(&sp->removes);
	out->appends = atomic_load(&sp->appends);
	out->fdatasyncs = atomic_load(&sp->fdatasyncs);
	out->sync_waits = atomic_load(&sp->sync_waits);
	out->dir_fsyncs = atomic_load(&sp->dir_fsyncs);
	out->freed = atomic_load(&sp->freed);
	out->compacted = atomic_load(&sp->compacted);
	out->copied = atomic_load(&sp->copied);
	gsync_lock(&sp->mu);
	out->segments = sp->nsegs;
	out->live = sp->nlive;
	gsync_unlock(&sp->mu);
}

void
lspool_active(struct lspool *sp, uint64_t *num, uint64_t *end)
{
	gsync_lock(&sp->mu);
	*num = sp->active->num;
	*end = sp->active->end;
	gsync_unlock(&sp->mu);
}

/* ---- recovery ------------------------------------------------------------ */

/* Zero s from off to its preallocated end and sync it (the cut tail of
 * the active segment). */
static int
ls_cut(struct seg *s, uint64_t off)
{
	if (ftruncate(s->fd, (off_t)off) != 0)
		return -1;
	(void)posix_fallocate(s->fd, 0, (off_t)ls_prealloc(s->fd));
	return fsync(s->fd);
}

/* Replay segment s (the last one when last); mu held (single thread). */
static int
ls_replay_seg(struct lspool *sp, struct seg *s, bool last, size_t *cut)
{
	char name[QUEUE_ID_LEN + 1], cname[QUEUE_ID_LEN + 16];
	struct stat st;
	const uint8_t *p;
	uint64_t off = QLOG_SEG_HEAD, seq = 0;
	enum qlog_res res;
	struct qlog_rec r;
	void *map = NULL;
	size_t len;

	ls_seg_name(s->num, name);
	if (fstat(s->fd, &st) != 0)
		return -1;
	len = (size_t)st.st_size;
	if (len > 0) {
		map = mmap(NULL, len, PROT_READ, MAP_SHARED, s->fd, 0);
		if (map == MAP_FAILED)
			return -1;
		(void)madvise(map, len, MADV_SEQUENTIAL);
	}
	p = map;
	res = qlog_seg_parse(p, len, &seq);
	if (res == QLOG_OK && seq != s->num)
		res = QLOG_BAD;
	if (res != QLOG_OK) {
		bool blank = true;
		uint32_t version = 0;
		size_t i;

		for (i = 0; i < len && i < QLOG_SEG_HEAD; i++)
			blank = blank && p[i] == 0;
		for (i = 0; res == QLOG_VERSION_UNKNOWN && i < 4; i++)
			version |= (uint32_t)p[8 + i] << (8 * i); /* LE */
		if (map != NULL)
			(void)munmap(map, len);
		if (last && (res == QLOG_TORN || blank)) {
			/* made, its header not yet durable: no record in it
			   was ever acknowledged (docs/queue.md) */
			uint8_t head[QLOG_SEG_HEAD];
			struct iovec iov = {head, sizeof(head)};

			log_warn("event=queue_recover_segment segment=%s "
				 "action=reinit",
			    name);
			qlog_seg_head(head, s->num);
			if (ls_cut(s, 0) != 0 ||
			    ls_pwritev_all(s->fd, &iov, 1, 0) != 0 ||
			    fsync(s->fd) != 0)
				return -1;
			s->end = QLOG_SEG_HEAD;
			(*cut)++;
			return 0;
		}
		if (res == QLOG_VERSION_UNKNOWN) {
			/* a newer tern's queue: refused, nothing touched */
			str_fmt_cut(sp->refused, sizeof(sp->refused),
			    "queue/seg/%s: segment format version %u, "
			    "this tern reads version %d only; refusing "
			    "to run on a queue written by a newer tern "
			    "(docs/formats.md, Downgrades)",
			    name, (unsigned)version, QLOG_VERSION);
			errno = ENOTSUP;
			return -1;
		}
		log_err("event=queue_corrupt segment=%s reason=\"bad segment "
			"header\" note=\"linked into corrupt/, its messages "
			"lost\"",
		    name);
		str_fmt_cut(cname, sizeof(cname), "seg-%s", name);
		if (linkat(sp->seg_fd, name, sp->corrupt_fd, cname, 0) != 0 &&
		    errno != EEXIST)
			log_err("event=queue_corrupt_link segment=%s errno=%d",
			    name, errno);
		s->damaged = true;
		s->end = lspool_seg_size;
		return 0;
	}
	for (;;) {
		res = qlog_rec_parse(p + off, len - off, &r);
		if (res != QLOG_OK)
			break;
		s->nrec++;
		ls_apply(sp, s, off, &r);
		off += r.size;
	}
	if (map != NULL)
		(void)munmap(map, len);
	s->end = off;
	if (res == QLOG_END)
		return 0;
	if (last) {
		log_warn("event=queue_recover_tail segment=%s offset=%llu "
			 "kind=%s action=cut",
		    name, (unsigned long long)off,
		    res == QLOG_TORN ? "torn" : "bad");
		(*cut)++;
		return ls_cut(s, off);
	}
	log_err("event=queue_corrupt segment=%s offset=%llu reason=\"%s "
		"record\" note=\"linked into corrupt/; the records after "
		"it are lost\"",
	    name, (unsigned long long)off, res == QLOG_TORN ? "torn" : "bad");
	str_fmt_cut(cname, sizeof(cname), "seg-%s", name);
	if (linkat(sp->seg_fd, name, sp->corrupt_fd, cname, 0) != 0 &&
	    errno != EEXIST)
		log_err("event=queue_corrupt_link segment=%s errno=%d", name,
		    errno);
	s->damaged = true;
	return 0;
}

static int
ls_u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The numbers of the segments in seg/, sorted; foreign names logged. */
static int
ls_list_segs(struct lspool *sp, uint64_t **out, size_t *nout)
{
	struct dirent *de;
	uint64_t *v = NULL;
	size_t n = 0, cap = 0;
	DIR *d;
	int fd;

	fd = openat(sp->seg_fd, ".", LS_DIR_FLAGS);
	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		fd_close_quiet(fd);
		return -1;
	}
	while ((errno = 0, de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (!queue_id_valid(de->d_name)) {
			char safe[NAME_MAX * 4 + 4];

			log_warn("event=queue_foreign_file dir=seg name=%s "
				 "note=\"left alone\"",
			    log_sanitize(safe, sizeof(safe), de->d_name,
				strlen(de->d_name)));
			continue;
		}
		if (n == cap) {
			uint64_t *w;

			cap = cap ? cap * 2 : 64;
			w = xcalloc(cap, sizeof(*w));
			if (n > 0)
				memcpy(w, v, n * sizeof(*w));
			free(v);
			v = w;
		}
		v[n++] = ls_id_num(de->d_name);
	}
	(void)closedir(d);
	if (n > 1)
		qsort(v, n, sizeof(*v), ls_u64_cmp);
	*out = v;
	*nout = n;
	return 0;
}

/*
 * After the records are read and before anything is written (the tail
 * cut aside, which only drops what was never acknowledged): a live
 * message whose latest envelope a newer tern wrote stops the open, with
 * the decoder's words (both versions) and the message named.
 */
static int
ls_refuse_newer(struct lspool *sp, char *err, size_t errlen)
{
	char name[QUEUE_ID_LEN + 1], why[LS_ERR_MAX], seg[QUEUE_ID_LEN + 1];
	struct queue_env env;
	size_t i;

	for (i = 0; i < sp->tab_cap; i++) {
		struct ent *e = &sp->tab[i];

		if (e->state != ENT_LIVE || !e->newer)
			continue;
		ls_id_str(e->id, name);
		ls_seg_name(e->eseg->num, seg);
		if (ls_load_locked(sp, e->id, &env, why, sizeof(why)) == 0) {
			queue_env_free(&env); /* cannot be: it peeked newer */
			str_fmt_cut(why, sizeof(why), "%s", "newer envelope");
		}
		if (err != NULL)
			str_fmt_cut(err, errlen,
			    "queue/seg/%s: message %s: %s; refusing to run on "
			    "a queue written by a newer tern (docs/formats.md, "
			    "Downgrades)",
			    seg, name, why);
		errno = ENOTSUP;
		return -1;
	}
	return 0;
}

static int
ls_replay(struct lspool *sp, char *err, size_t errlen)
{
	uint64_t *nums = NULL;
	size_t n = 0, i, cut = 0, freed = 0;

	sp->replaying = true;
	if (ls_list_segs(sp, &nums, &n) != 0) {
		queue_fail(err, errlen, "read", "directory seg/", NULL);
		return -1;
	}
	for (i = 0; i < n; i++) {
		char name[QUEUE_ID_LEN + 1];
		struct seg *s = xcalloc(1, sizeof(*s));

		ls_seg_name(nums[i], name);
		s->num = nums[i];
		s->fd =
		    openat(sp->seg_fd, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
		if (s->fd < 0) {
			free(s);
			queue_fail(err, errlen, "open", "segment", name);
			free(nums);
			return -1;
		}
		ls_segs_add(sp, s);
		if (ls_replay_seg(sp, s, i + 1 == n, &cut) != 0) {
			if (sp->refused[0] != '\0' && err != NULL)
				str_fmt_cut(err, errlen, "%s", sp->refused);
			else
				queue_fail(
				    err, errlen, "replay", "segment", name);
			free(nums);
			return -1;
		}
	}
	free(nums);
	if (ls_refuse_newer(sp, err, errlen) != 0)
		return -1;
	/* the last segment goes on taking records unless it is full or
	   damaged */
	if (sp->nsegs > 0 && !sp->segs[sp->nsegs - 1]->damaged &&
	    sp->segs[sp->nsegs - 1]->end < lspool_seg_size)
		sp->active = sp->segs[sp->nsegs - 1];
	else if (ls_roll(sp) != 0) {
		queue_fail(err, errlen, "create", "segment", NULL);
		return -1;
	}
	sp->replaying = false;
	for (i = 0; i < sp->nsegs;) {
		struct seg *s = sp->segs[i];

		if (s->refs == 0 && s != sp->active) {
			ls_seg_free(sp, s);
			freed++;
			i = 0; /* a free may free others (tombstones) */
			continue;
		}
		i++;
	}
	log_info("event=queue_recovered queued=%zu segments=%zu cut=%zu "
		 "freed=%zu",
	    sp->nlive, sp->nsegs, cut, freed);
	return 0;
}

/* ---- legacy import (the file queue of earlier releases) ------------------ */

static const char *const ls_legacy_dirs[] = {"held", "env", "data", "tmp"};
#define LS_LEGACY_N 4

/* Read all of dir/name into b. */
static int
ls_read_file(int dir_fd, const char *name, struct buf *b)
{
	int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	ssize_t r;

	if (fd < 0)
		return -1;
	buf_reset(b);
	for (;;) {
		if (buf_reserve(b, 65536) != 0)
			break;
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

struct ls_import {
	int fd[LS_LEGACY_N];
	struct buf env, data;
	size_t imported, skipped, corrupt;
};

/* One legacy envelope dir/name (held/ or env/) into the log; mu held. */
static int
ls_import_one(
    struct lspool *sp, struct ls_import *im, int which, const char *name)
{
	char err[LS_ERR_MAX], cname[QUEUE_ID_LEN + 8];
	struct queue_env env;
	struct qlog_rec r = {0};
	struct iovec iov;
	struct ent *e;
	struct seg *s;
	uint64_t off;
	bool bad;

	if (!queue_id_valid(name))
		return 0; /* left alone (the old spool logged these too) */
	e = ls_find(sp, ls_id_num(name));
	if (e != NULL && e->state != ENT_GONE) {
		im->skipped++; /* imported before a crash: the log's copy */
		return 0;
	}
	queue_env_init(&env);
	bad = ls_read_file(im->fd[which], name, &im->env) != 0;
	if (!bad && queue_env_decode(im->env.data, im->env.len, &env, err,
			sizeof(err)) != 0) {
		if (errno == ENOTSUP) {
			/* a newer tern's file queue: stop, file untouched */
			str_fmt_cut(sp->refused, sizeof(sp->refused),
			    "queue/%s/%s: %s; refusing to run on a queue "
			    "written by a newer tern (docs/formats.md, "
			    "Downgrades)",
			    ls_legacy_dirs[which], name, err);
			return -1;
		}
		bad = true;
	}
	if (bad || strcmp(env.id, name) != 0 ||
	    ls_read_file(im->fd[2], name, &im->data) != 0) {
		queue_env_free(&env);
		log_err("id=%s event=queue_corrupt dir=%s reason=\"legacy "
			"envelope or content unreadable\"",
		    name, ls_legacy_dirs[which]);
		str_fmt_cut(cname, sizeof(cname), "%s.env", name);
		(void)renameat2(im->fd[which], name, sp->corrupt_fd, cname,
		    RENAME_NOREPLACE);
		str_fmt_cut(cname, sizeof(cname), "%s.data", name);
		(void)renameat2(
		    im->fd[2], name, sp->corrupt_fd, cname, RENAME_NOREPLACE);
		im->corrupt++;
		return 0;
	}
	queue_env_free(&env);
	r.type = QLOG_MSG;
	r.flags = which == 0 ? QLOG_F_HELD : 0;
	r.id = ls_id_num(name);
	r.env = im->env.data;
	r.envlen = im->env.len;
	iov.iov_base = im->data.data;
	iov.iov_len = im->data.len;
	if (ls_append(sp, &r, &iov, 1, &s, &off) != 0)
		return -1;
	r.env_off = QLOG_REC_HEAD_MAX;
	r.content_off = QLOG_REC_HEAD_MAX + im->env.len;
	r.content_len = im->data.len;
	ls_set_live(sp, ls_get(sp, r.id), s, off, &r);
	im->imported++;
	return 0;
}

/* Each valid envelope of dir `which`; fn per name. */
static int
ls_import_dir(struct lspool *sp, struct ls_import *im, int which, bool unlink)
{
	struct dirent *de;
	DIR *d;
	int fd, r = 0;

	if (im->fd[which] < 0)
		return 0;
	fd = openat(im->fd[which], ".", LS_DIR_FLAGS);
	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		fd_close_quiet(fd);
		return -1;
	}
	while (r == 0 && (errno = 0, de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (unlink) {
			if (queue_id_valid(de->d_name) &&
			    (FILE_FAULT(LS_WHO, "unlink") != 0 ||
				unlinkat(im->fd[which], de->d_name, 0) != 0))
				r = -1;
		} else {
			r = ls_import_one(sp, im, which, de->d_name);
		}
	}
	(void)closedir(d);
	return r;
}

/*
 * Before the log writes anything (its first segment, the import): an
 * envelope in held/ or env/ that a newer tern wrote stops the open, with
 * every file as it is.  Only the first line of each is read.
 */
static int
ls_legacy_refuse_newer(struct lspool *sp, char *err, size_t errlen)
{
	int i, fd, r = 0;

	for (i = 0; r == 0 && i < 2; i++) { /* held/, env/ */
		struct dirent *de;
		DIR *d;

		fd = openat(sp->root_fd, ls_legacy_dirs[i], LS_DIR_FLAGS);
		if (fd < 0 || (d = fdopendir(fd)) == NULL) {
			fd_close_quiet(fd);
			continue; /* none, or ls_import says why */
		}
		while (r == 0 && (de = readdir(d)) != NULL) {
			char head[24];
			unsigned long v;
			ssize_t n;
			int f;

			if (!queue_id_valid(de->d_name))
				continue;
			f = openat(dirfd(d), de->d_name,
			    O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
			n = f >= 0 ? pread(f, head, sizeof(head), 0) : -1;
			fd_close_quiet(f);
			v = n > 0 ? queue_env_peek_version(head, (size_t)n) : 0;
			if (v <= QUEUE_ENV_VERSION)
				continue; /* damage is ls_import's to judge */
			if (err != NULL)
				str_fmt_cut(err, errlen,
				    "queue/%s/%s: envelope version %lu "
				    "is newer than this tern reads (%d); "
				    "refusing to run on a queue written "
				    "by a newer tern (docs/formats.md, "
				    "Downgrades)",
				    ls_legacy_dirs[i], de->d_name, v,
				    QUEUE_ENV_VERSION);
			r = -1;
		}
		(void)closedir(d); /* read only: nothing to lose */
	}
	if (r != 0)
		errno = ENOTSUP; /* after closedir, which may set it */
	return r;
}

/*
 * A queue of the file spool (env/, held/, data/, tmp/): every message is
 * appended to the log and made durable, and only then are the old files
 * removed, envelopes first (docs/queue.md, "Upgrade").  A crash between
 * leaves both; the next open finds the ids in the log and only removes.
 */
static int
ls_import(struct lspool *sp, char *err, size_t errlen)
{
	struct ls_import im;
	bool any = false;
	int i, r = 0;

	memset(&im, 0, sizeof(im));
	for (i = 0; i < LS_LEGACY_N; i++) {
		im.fd[i] = openat(sp->root_fd, ls_legacy_dirs[i], LS_DIR_FLAGS);
		if (im.fd[i] < 0 && errno != ENOENT) {
			queue_fail(
			    err, errlen, "open", ls_legacy_dirs[i], NULL);
			r = -1;
			goto out;
		}
		any = any || im.fd[i] >= 0;
	}
	if (!any)
		goto out;
	buf_init(&im.env, QUEUE_ENV_FILE_MAX);
	buf_init(&im.data, (size_t)QLOG_REC_MAX / 2);
	if (im.fd[2] >= 0 && (ls_import_dir(sp, &im, 0, false) != 0 ||
				 ls_import_dir(sp, &im, 1, false) != 0)) {
		if (sp->refused[0] != '\0' && err != NULL) {
			str_fmt_cut(err, errlen, "%s", sp->refused);
			errno = ENOTSUP;
		} else
			queue_fail(err, errlen, "import", "legacy queue", NULL);
		r = -1;
		goto bufs;
	}
	gsync_unlock(&sp->mu);
	r = im.imported > 0 ? ls_sync(sp) : 0;
	gsync_lock(&sp->mu);
	if (r == 0 && fsync(sp->corrupt_fd) != 0)
		r = -1;
	/* durable in the log: now the old files may go, envelopes first */
	for (i = 0; r == 0 && i < LS_LEGACY_N; i++)
		if (ls_import_dir(sp, &im, i, true) != 0 ||
		    (im.fd[i] >= 0 && fsync(im.fd[i]) != 0))
			r = -1;
	for (i = 0; r == 0 && i < LS_LEGACY_N; i++)
		if (im.fd[i] >= 0 &&
		    unlinkat(sp->root_fd, ls_legacy_dirs[i], AT_REMOVEDIR) !=
			0 &&
		    errno != ENOTEMPTY)
			r = -1;
	if (r == 0 && fsync(sp->root_fd) != 0)
		r = -1;
	if (r != 0)
		queue_fail(err, errlen, "import", "legacy queue", NULL);
	else
		log_info("event=queue_imported messages=%zu already=%zu "
			 "corrupt=%zu",
		    im.imported, im.skipped, im.corrupt);
bufs:
	buf_free(&im.env);
	buf_free(&im.data);
out:
	for (i = 0; i < LS_LEGACY_N; i++)
		fd_close_quiet(im.fd[i]);
	return r;
}

/* ---- open and close ------------------------------------------------------ */

static int
ls_open_dir(int parent, const char *name)
{
	int fd = openat(parent, name, LS_DIR_FLAGS);

	if (fd >= 0 || errno != ENOENT)
		return fd;
	if (mkdirat(parent, name, 0700) != 0 && errno != EEXIST)
		return -1;
	if (fsync(parent) != 0)
		return -1;
	return openat(parent, name, LS_DIR_FLAGS);
}

struct lspool *
lspool_open(const char *state_dir, char *err, size_t errlen)
{
	struct lspool *sp = xcalloc(1, sizeof(*sp));
	int state, saved;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	sp->root_fd = sp->seg_fd = sp->corrupt_fd = -1;
	if (pthread_mutex_init(&sp->mu, NULL) != 0)
		panic("event=lspool_init");
	gsync_init(&sp->gs);
	if ((state = open(state_dir, LS_DIR_FLAGS & ~O_NOFOLLOW)) < 0) {
		queue_fail(err, errlen, "open", "state directory", NULL);
		goto fail;
	}
	sp->root_fd = ls_open_dir(state, "queue");
	fd_close_quiet(state);
	if (sp->root_fd < 0) {
		queue_fail(err, errlen, "open", "queue directory", "queue");
		goto fail;
	}
	if (flock(sp->root_fd, LOCK_EX | LOCK_NB) != 0) {
		queue_fail(err, errlen, "lock",
		    "queue (is another ternd or tern using it?)", NULL);
		goto fail;
	}
	if ((sp->seg_fd = ls_open_dir(sp->root_fd, "seg")) < 0 ||
	    (sp->corrupt_fd = ls_open_dir(sp->root_fd, "corrupt")) < 0) {
		queue_fail(err, errlen, "open", "queue directory", "seg");
		goto fail;
	}
	if (ls_legacy_refuse_newer(sp, err, errlen) != 0)
		goto fail;
	gsync_lock(&sp->mu);
	if (ls_replay(sp, err, errlen) != 0 ||
	    ls_import(sp, err, errlen) != 0) {
		gsync_unlock(&sp->mu);
		goto fail;
	}
	ls_compact(sp);
	gsync_unlock(&sp->mu);
	return sp;
fail:
	saved = errno;
	lspool_close(sp);
	errno = saved;
	return NULL;
}

void
lspool_close(struct lspool *sp)
{
	size_t i;

	if (sp == NULL)
		return;
	for (i = 0; i < sp->nsegs; i++) {
		fd_close_quiet(sp->segs[i]->fd);
		free(sp->segs[i]);
	}
	free(sp->segs);
	free(sp->tab);
	fd_close_quiet(sp->seg_fd);
	fd_close_quiet(sp->corrupt_fd);
	fd_close_quiet(sp->root_fd);
	(void)pthread_mutex_destroy(&sp->mu);
	gsync_destroy(&sp->gs);
	free(sp);
}
