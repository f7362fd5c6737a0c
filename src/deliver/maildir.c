/*
 * maildir: deliver one message into one or more Maildirs (maildir(5)).
 *
 * Durability ordering, and why (docs/design.md, principle 1: a 250 means the
 * message is on stable storage; fs/file.c does each step, this file
 * decides their order):
 *   1. Every mailbox is opened, and made when missing, before the message
 *      is written.  Each directory made is fsync'ed into its parent at
 *      once: a new directory entry is not on disk until its parent is, and
 *      a message linked beneath a directory a crash forgets is lost with it.
 *   2. The content goes into tmp/ of the first mailbox under a maildir(5)
 *      unique name "<secs>.M<usecs>P<pid>Q<counter>.<host>,S=<size>",
 *      opened O_CREAT|O_EXCL (a collision is an error, never an overwrite),
 *      written with writev (short writes and EINTR resumed), fsync'ed, then
 *      closed with the result checked (NFS reports write errors at close).
 *   3. The file is hard-linked into new/ of each mailbox, and each new/ is
 *      fsync'ed: only then is the name durable.  A reader never sees a
 *      partial file, since the name appears in new/ only once the content
 *      is complete and synced.  When link says EXDEV (that mailbox is on
 *      another file system) the content is written again into that
 *      mailbox's tmp/, same steps, and linked from there.
 *   4. The tmp/ names are unlinked last, without an fsync: a crash may
 *      leave a stale tmp/ file, which maildir readers sweep, but never loses
 *      or duplicates a message.
 *
 * Failure: everything this call created in tmp/ is removed; a name already
 * linked into some new/ is left there.  The caller tempfails, the sender
 * retries, so a mailbox may see the message twice but never zero times
 * (docs/design.md: delivery is at least once).  Unlinking those names instead
 * could delete a message a reader has already taken, and would itself need
 * an fsync that can fail.  Path checks and mailbox opening come before any
 * write, so a bad or hostile mailbox fails the call before it has
 * delivered anywhere.
 *
 * Security: a relative mailbox path is walked one component at a time from
 * root_fd with O_NOFOLLOW|O_DIRECTORY, so a symlink planted anywhere (the
 * domain directory, the mailbox, tmp/, new/) fails the delivery with ELOOP
 * and nothing is written through it.  Empty, "." and ".." components and
 * control characters are refused (EINVAL) before anything is touched.  An
 * absolute path (a user's own Maildir) follows symlinks above its last
 * component (home directories often are), never at or below it.  Files are
 * created 0600, directories 0700 (both less the umask).
 *
 * Threads: the name counter is a process-wide atomic, so worker threads
 * never collide.  Making directories takes a process-wide write lock and
 * every walk a read lock, so no thread links into a directory another
 * thread has made but not yet fsync'ed into its parent.
 *
 * Held open: the tmp/ and new/ descriptors of the last MD_CACHE mailboxes
 * stay open between calls (the mailbox cache below), each reuse checked
 * against the mailbox's name first.
 *
 * Limits: a path is shorter than PATH_MAX, a component at most NAME_MAX.
 * The first MAILDIR_KEEP mailboxes keep their descriptors open from the
 * opening pass to the linking pass; the rest are reopened, so n costs no
 * more than MAILDIR_KEEP * 2 + 2 descriptors.  A directory another process
 * made and crashed before fsync'ing is not fsync'ed again here.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "deliver/deliver.h"
#include "fs/file.h"
#include "util/util.h"

#define MAILDIR_DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
#define MD_WHO		  "maildir" /* the fault hook's module (fs/file.h) */

struct md_cached;

struct md_dirs {
	int tmp_fd;
	int new_fd;
	struct md_cached *ce; /* the descriptors are the cache's, or NULL */
};

/* The message of one call: the caller's iovecs and their total size. */
struct md_msg {
	const struct iovec *iov;
	int iovcnt;
	size_t size;
};

/* The error channel of one call: the caller's buffer and the mailbox. */
struct md_err {
	char *buf;
	size_t len;
	const char *box;
};

static atomic_ulong md_counter;
static char md_host[MAILDIR_HOST_MAX];
static pthread_once_t md_host_once = PTHREAD_ONCE_INIT;
/* Writer-preferring: a rare mkdir must not starve behind busy deliveries. */
static pthread_rwlock_t md_dir_lock =
    PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;

/* Fill the caller's err: "<step> <what> of <mailbox>: <strerror>". */
static void
md_fail(struct md_err *e, const char *step, const char *what)
{
	int saved = errno;
	char box[160], ebuf[128];
	const char *hint = saved == ELOOP ? " (symbolic link refused)" : "";
	const char *b = e->box != NULL ? e->box : "(none)";

	if (e->buf == NULL || e->len == 0)
		return;
	log_sanitize(box, sizeof(box), b, strlen(b));
	/* a cut error text still names the step; truncation is harmless here */
	str_fmt_cut(e->buf, e->len, "%s %s of %s: %s%s", step, what, box,
	    strerror_r(saved, ebuf, sizeof(ebuf)), hint);
	errno = saved;
}

/* ---- unique names ------------------------------------------------------ */

int
maildir_escape_host(char *out, size_t outlen, const char *host)
{
	size_t o = 0;

	if (outlen == 0)
		goto toolong;
	for (; *host != '\0'; host++) {
		const char *rep = *host == '/'	 ? "\\057"
				  : *host == ':' ? "\\072"
						 : NULL;
		size_t n = rep != NULL ? 4 : 1;

		if (o + n >= outlen)
			goto toolong;
		if (rep != NULL)
			memcpy(out + o, rep, n);
		else
			out[o] = *host;
		o += n;
	}
	out[o] = '\0';
	return 0;
toolong:
	errno = ENAMETOOLONG;
	return -1;
}

/* getpid() once (tern never forks a process that delivers) */
static long md_pid;

static void
md_host_init(void)
{
	char raw[HOST_NAME_MAX + 1];

	md_pid = (long)getpid();

	if (gethostname(raw, sizeof(raw)) != 0)
		raw[0] = '\0';
	raw[sizeof(raw) - 1] = '\0';
	if (raw[0] == '\0' ||
	    maildir_escape_host(md_host, sizeof(md_host), raw) != 0)
		memcpy(md_host, "localhost", sizeof("localhost"));
}

static int WUR
md_unique_name(char *out, size_t outlen, size_t size)
{
	struct timespec ts;
	unsigned long q;

	(void)pthread_once(&md_host_once, md_host_init);
	/* relaxed is enough: the counter only has to be unique, not ordered */
	q = atomic_fetch_add_explicit(&md_counter, 1, memory_order_relaxed) + 1;
	if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
		return -1;
	if (str_fmt(out, outlen, "%lld.M%ldP%ldQ%lu.%s,S=%zu",
		(long long)ts.tv_sec, ts.tv_nsec / 1000, md_pid, q, md_host,
		size) != 0 ||
	    strlen(out) > NAME_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/*
 * Is name one of ours from another process: "SECS.MUSECSPPIDQN.HOST,S=SIZE"
 * with HOST this host and PID not ours?
 */
static bool
md_name_is_stale_ours(const char *name)
{
	const char *p = name, *host;
	unsigned long long pid = 0;
	size_t hl;

	(void)pthread_once(&md_host_once, md_host_init);
	while (*p >= '0' && *p <= '9')
		p++;
	if (p == name || strncmp(p, ".M", 2) != 0)
		return false;
	for (p += 2; *p >= '0' && *p <= '9'; p++)
		;
	if (*p++ != 'P' || !(*p >= '0' && *p <= '9'))
		return false;
	for (; *p >= '0' && *p <= '9'; p++)
		pid = pid * 10 + (unsigned)(*p - '0');
	if (*p++ != 'Q' || !(*p >= '0' && *p <= '9'))
		return false;
	while (*p >= '0' && *p <= '9')
		p++;
	if (*p++ != '.')
		return false;
	host = p;
	hl = strlen(md_host);
	if (strncmp(host, md_host, hl) != 0 ||
	    strncmp(host + hl, ",S=", 3) != 0)
		return false;
	return pid != (unsigned long long)md_pid;
}

static bool
md_older(const struct stat *st, const struct timespec *t)
{
	return st->st_mtim.tv_sec < t->tv_sec ||
	       (st->st_mtim.tv_sec == t->tv_sec &&
		   st->st_mtim.tv_nsec < t->tv_nsec);
}

static size_t
md_sweep_box(int box_fd, const struct timespec *before)
{
	int tmp_fd = openat(
	    box_fd, "tmp", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct dirent *de;
	struct stat st;
	size_t n = 0;
	DIR *dir;

	if (tmp_fd < 0 || (dir = fdopendir(tmp_fd)) == NULL) {
		if (tmp_fd >= 0)
			(void)close(tmp_fd);
		return 0;
	}
	while ((de = readdir(dir)) != NULL) {
		if (!md_name_is_stale_ours(de->d_name) ||
		    fstatat(tmp_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) !=
			0 ||
		    !S_ISREG(st.st_mode) || !md_older(&st, before))
			continue;
		if (unlinkat(tmp_fd, de->d_name, 0) == 0)
			n++;
	}
	(void)closedir(dir);
	return n;
}

/* Each subdirectory of dir_fd, opened without following links. */
static DIR *
md_opendir_at(int dir_fd, const char *name)
{
	int fd = openat(
	    dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d;

	if (fd < 0)
		return NULL;
	if ((d = fdopendir(fd)) == NULL)
		(void)close(fd);
	return d;
}

size_t
maildir_sweep_tmp(int root_fd, const struct timespec *before, size_t *mailboxes)
{
	struct dirent *dd, *ud;
	DIR *root, *dom;
	size_t n = 0;

	*mailboxes = 0;
	if ((root = md_opendir_at(root_fd, ".")) == NULL)
		return 0;
	while ((dd = readdir(root)) != NULL) {
		if (dd->d_name[0] == '.' ||
		    (dom = md_opendir_at(dirfd(root), dd->d_name)) == NULL)
			continue;
		while ((ud = readdir(dom)) != NULL) {
			int box_fd;

			if (ud->d_name[0] == '.')
				continue;
			box_fd = openat(dirfd(dom), ud->d_name,
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (box_fd < 0)
				continue;
			(*mailboxes)++;
			n += md_sweep_box(box_fd, before);
			(void)close(box_fd);
		}
		(void)closedir(dom);
	}
	(void)closedir(root);
	return n;
}

/* ---- paths --------------------------------------------------------------- */

static int WUR
md_component_check(const char *c, size_t n)
{
	size_t i;

	if (n == 0 || (n == 1 && c[0] == '.') ||
	    (n == 2 && c[0] == '.' && c[1] == '.'))
		goto bad;
	if (n > NAME_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (i = 0; i < n; i++)
		if ((unsigned char)c[i] < 0x20 || c[i] == 0x7f)
			goto bad;
	return 0;
bad:
	errno = EINVAL;
	return -1;
}

/* Every component of path (after a leading '/') must pass the check. */
static int WUR
md_path_check(const char *path)
{
	const char *p, *end;
	size_t len;

	if (path == NULL || (len = strnlen(path, PATH_MAX)) == 0) {
		errno = EINVAL;
		return -1;
	}
	if (len >= PATH_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	p = path[0] == '/' ? path + 1 : path;
	for (;;) {
		end = strchrnul(p, '/');
		if (md_component_check(p, (size_t)(end - p)) != 0)
			return -1;
		if (*end == '\0')
			return 0;
		p = end + 1;
	}
}

/* ---- directories --------------------------------------------------------- */

/* O_NOFOLLOW|O_DIRECTORY on a symlink says ENOTDIR; say what it is. */
static int
md_openat_dir(int parent, const char *name)
{
	struct stat st;
	int fd = openat(parent, name, MAILDIR_DIR_FLAGS);

	if (fd < 0 && errno == ENOTDIR &&
	    fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISLNK(st.st_mode))
		errno = ELOOP;
	return fd;
}

/* md_fail for directory name: what is "<prefix><name>/". */
static void
md_fail_dir(
    struct md_err *e, const char *step, const char *prefix, const char *name)
{
	char what[NAME_MAX + 32];
	int saved = errno;

	/* part of an error message; names are at most NAME_MAX, so this
	 * is never cut anyway */
	str_fmt_cut(what, sizeof(what), "%s%s/", prefix, name);
	errno = saved;
	md_fail(e, step, what);
}

/*
 * Open directory name beneath parent, never through a symlink.  With
 * create, a missing one is made 0700 and parent fsync'ed before it is
 * opened.  EEXIST from mkdir means another process won the race and may
 * not have synced yet, so parent is fsync'ed then too.
 */
static int
md_open_dir(int parent, const char *name, bool create, struct md_err *e)
{
	int fd = md_openat_dir(parent, name);
	const char *step;

	if (fd >= 0)
		return fd;
	if (errno != ENOENT || !create)
		goto fail;
	if (file_mkdir(MD_WHO, parent, name, &step) != 0) {
		md_fail_dir(e, step,
		    strcmp(step, "mkdir") == 0 ? "" : "directory above ", name);
		return -1;
	}
	fd = md_openat_dir(parent, name);
	if (fd >= 0)
		return fd;
fail:
	md_fail_dir(e, "open", "", name);
	return -1;
}

/* Walk a relative path beneath root_fd; returns the mailbox's own fd. */
static int
md_walk_rel(int root_fd, const char *path, bool create, struct md_err *e)
{
	char comp[NAME_MAX + 1];
	const char *p = path, *end;
	int fd = root_fd, child;

	for (;;) {
		end = strchrnul(p, '/');
		if (str_copy(comp, sizeof(comp), p, (size_t)(end - p)) != 0) {
			errno = ENAMETOOLONG; /* md_path_check prevents it */
			child = -1;
			md_fail(e, "open", "path component");
		} else {
			child = md_open_dir(fd, comp, create, e);
		}
		if (fd != root_fd)
			fd_close_quiet(fd);
		if (child < 0 || *end == '\0')
			return child;
		fd = child;
		p = end + 1;
	}
}

/* Walk an absolute path: symlinks above the last component are allowed. */
static int
md_walk_abs(const char *path, bool create, struct md_err *e)
{
	char parent[PATH_MAX];
	const char *last = strrchr(path, '/');
	size_t plen = last == path ? 1 : (size_t)(last - path);
	int pfd, fd;

	if (str_copy(parent, sizeof(parent), path, plen) != 0) {
		errno = ENAMETOOLONG; /* md_path_check prevents it */
		md_fail(e, "open", "parent directory");
		return -1;
	}
	pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pfd < 0) {
		md_fail(e, "open", "parent directory");
		return -1;
	}
	fd = md_open_dir(pfd, last + 1, create, e);
	fd_close_quiet(pfd);
	return fd;
}

static void md_cache_release(struct md_cached *ce);

static void
md_dirs_close(struct md_dirs *d)
{
	if (d->ce != NULL) {
		md_cache_release(d->ce);
	} else {
		fd_close_quiet(d->tmp_fd);
		fd_close_quiet(d->new_fd);
	}
	d->tmp_fd = d->new_fd = -1;
	d->ce = NULL;
}

/*
 * From the mailbox to its Maildir++ folder (box is closed, the folder's
 * fd returned).  With create, the mailbox gets its own tmp/new/cur first
 * (a mail client reads it as the INBOX above the folder), then the
 * folder, then its maildirfolder file (Maildir++: "this is a folder").
 */
static int
md_open_folder(int box, const char *folder, bool create, struct md_err *e)
{
	static const char *const sub[] = {"tmp", "new", "cur"};
	int fd;

	for (size_t i = 0; create && i < 3; i++) {
		if ((fd = md_open_dir(box, sub[i], true, e)) < 0) {
			fd_close_quiet(box);
			return -1;
		}
		fd_close_quiet(fd);
	}
	fd = md_open_dir(box, folder, create, e);
	fd_close_quiet(box);
	if (fd < 0 || !create)
		return fd;
	box = openat(fd, "maildirfolder",
	    O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (box < 0) {
		md_fail(e, "create", "maildirfolder");
		fd_close_quiet(fd);
		return -1;
	}
	fd_close_quiet(box);
	return fd;
}

/*
 * The optional folder of plus-addressing: its fd when it is a directory
 * (box closed), else box itself (the INBOX) when it does not exist.  A
 * symlink or a non-directory in its place is an error, not the INBOX:
 * someone put it there.
 */
static int
md_open_subfolder(int box, const char *folder, struct md_err *e)
{
	int fd = md_openat_dir(box, folder);

	if (fd >= 0) {
		fd_close_quiet(box);
		return fd;
	}
	if (errno == ENOENT)
		return box;
	md_fail_dir(e, "open", "", folder);
	fd_close_quiet(box);
	return -1;
}

/* Open tmp/ and new/ of the box (and with create, make cur/ too). */
static int
md_open_box_locked(int root_fd, const struct maildir_box *b, bool create,
    struct md_dirs *d, struct md_err *e)
{
	const char *path = b->path;
	int box, cur;

	box = path[0] == '/' ? md_walk_abs(path, create, e)
			     : md_walk_rel(root_fd, path, create, e);
	if (box >= 0 && b->folder != NULL)
		box = md_open_folder(box, b->folder, create, e);
	else if (box >= 0 && b->subfolder != NULL)
		box = md_open_subfolder(box, b->subfolder, e);
	if (box < 0)
		return -1;
	d->tmp_fd = md_open_dir(box, "tmp", create, e);
	if (d->tmp_fd >= 0)
		d->new_fd = md_open_dir(box, "new", create, e);
	cur = -1;
	if (d->new_fd >= 0 && create)
		cur = md_open_dir(box, "cur", create, e);
	fd_close_quiet(box);
	if (d->new_fd < 0 || (create && cur < 0)) {
		md_dirs_close(d);
		return -1;
	}
	fd_close_quiet(cur);
	return 0;
}

static void
md_lock(bool write)
{
	int r = write ? pthread_rwlock_wrlock(&md_dir_lock)
		      : pthread_rwlock_rdlock(&md_dir_lock);

	if (r != 0)
		panic("event=maildir_lock error=%d", r);
}

static void
md_unlock(void)
{
	int r = pthread_rwlock_unlock(&md_dir_lock);

	if (r != 0)
		panic("event=maildir_unlock error=%d", r);
}

/* The folder a box's cache entry is keyed on: folder, else the optional
 * subfolder (its entry then holds the INBOX when the folder is missing;
 * md_cache_get's fstatat of <folder>/new sends it back to the walk). */
static const char *
md_box_folder(const struct maildir_box *b)
{
	return b->folder != NULL ? b->folder : b->subfolder;
}

/* ---- the mailbox cache ----------------------------------------------------
 *
 * Opening a mailbox walks its path one component at a time: four openat
 * and two close per message for "domain/user".  The last MD_CACHE
 * mailboxes keep their tmp/ and new/ descriptors here instead.  A hit is
 * trusted only after one fstatat of "<path>[/<folder>]/new" (from the
 * root, the last component not followed) names the very directory the
 * cached new/ descriptor is: a mailbox removed, renamed or replaced since
 * (by a symlink too) no longer matches, and is then walked afresh with
 * every check above, so a message never goes into a directory its
 * mailbox's name has left.  A tmp/ replaced behind a valid new/ only
 * holds the file for the moment before the link; a tmp/ removed fails the
 * create, and any failed delivery drops the entries it used.
 * Entries are used under md_cache_lock; one in use (refs > 0) is never
 * closed: a stale or evicted one is closed by its last user.
 */
#define MD_CACHE 32 /* mailboxes: 2 descriptors each */

struct md_cached {
	int root_fd;
	char *key; /* path, '\0', folder or "" */
	size_t path_len, folder_len;
	int tmp_fd, new_fd;
	dev_t dev;
	ino_t ino; /* of new/ */
	unsigned refs;
	bool stale; /* out of the table: closed by its last user */
	uint64_t used;
};

static pthread_mutex_t md_cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct md_cached *md_cache[MD_CACHE];
static uint64_t md_cache_tick;

static void
md_cache_free(struct md_cached *ce)
{
	fd_close_quiet(ce->tmp_fd);
	fd_close_quiet(ce->new_fd);
	free(ce->key);
	free(ce);
}

static void
md_cache_release(struct md_cached *ce)
{
	bool last;

	(void)pthread_mutex_lock(&md_cache_lock);
	last = --ce->refs == 0 && ce->stale;
	(void)pthread_mutex_unlock(&md_cache_lock);
	if (last)
		md_cache_free(ce);
}

/* A failed delivery forgets the mailbox: the next one walks it again. */
static void
md_cache_forget(struct md_dirs *d)
{
	struct md_cached *ce = d->ce;

	if (ce == NULL)
		return;
	(void)pthread_mutex_lock(&md_cache_lock);
	for (size_t i = 0; i < MD_CACHE; i++)
		if (md_cache[i] == ce) {
			md_cache[i] = NULL;
			ce->stale = true;
		}
	(void)pthread_mutex_unlock(&md_cache_lock);
}

static bool
md_cache_match(const struct md_cached *ce, int root_fd,
    const struct maildir_box *b, size_t plen, size_t flen)
{
	return ce->root_fd == root_fd && ce->path_len == plen &&
	       ce->folder_len == flen && memcmp(ce->key, b->path, plen) == 0 &&
	       (flen == 0 ||
		   memcmp(ce->key + plen + 1, md_box_folder(b), flen) == 0);
}

/* "<path>[/<folder>]/new" into out; false when it does not fit. */
static bool
md_cache_new_path(char *out, size_t outlen, const struct maildir_box *b,
    size_t plen, size_t flen)
{
	size_t n = 0;

	if (plen + flen + sizeof("//new") > outlen)
		return false;
	memcpy(out, b->path, plen);
	n = plen;
	if (flen > 0) {
		out[n++] = '/';
		memcpy(out + n, md_box_folder(b), flen);
		n += flen;
	}
	memcpy(out + n, "/new", sizeof("/new"));
	return true;
}

/* A valid cached entry for b, taken (refs + 1), or NULL. */
static struct md_cached *
md_cache_get(int root_fd, const struct maildir_box *b)
{
	size_t plen = strlen(b->path),
	       flen = md_box_folder(b) != NULL ? strlen(md_box_folder(b)) : 0;
	struct md_cached *ce = NULL, *gone = NULL;
	char path[PATH_MAX];
	struct stat st;
	size_t i;

	(void)pthread_mutex_lock(&md_cache_lock);
	for (i = 0; i < MD_CACHE; i++)
		if (md_cache[i] != NULL &&
		    md_cache_match(md_cache[i], root_fd, b, plen, flen)) {
			ce = md_cache[i];
			ce->refs++;
			ce->used = ++md_cache_tick;
			break;
		}
	(void)pthread_mutex_unlock(&md_cache_lock);
	if (ce == NULL)
		return NULL;
	if (md_cache_new_path(path, sizeof(path), b, plen, flen) &&
	    fstatat(b->path[0] == '/' ? AT_FDCWD : root_fd, path, &st,
		AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISDIR(st.st_mode) && st.st_dev == ce->dev && st.st_ino == ce->ino)
		return ce;
	(void)pthread_mutex_lock(&md_cache_lock);
	if (md_cache[i] == ce)
		md_cache[i] = NULL;
	ce->stale = true;
	if (--ce->refs == 0)
		gone = ce;
	(void)pthread_mutex_unlock(&md_cache_lock);
	if (gone != NULL)
		md_cache_free(gone);
	return NULL;
}

/*
 * Hand d's fresh descriptors to the cache (d then uses them through the
 * entry).  Best effort: when every slot is busy, or memory or fstat
 * fails, d keeps its own descriptors.
 */
static void
md_cache_put(int root_fd, const struct maildir_box *b, struct md_dirs *d)
{
	size_t plen = strlen(b->path),
	       flen = md_box_folder(b) != NULL ? strlen(md_box_folder(b)) : 0;
	struct md_cached *ce, *gone = NULL;
	struct stat st;
	size_t i, slot = MD_CACHE;

	if (fstat(d->new_fd, &st) != 0 || (ce = calloc(1, sizeof(*ce))) == NULL)
		return;
	if ((ce->key = malloc(plen + flen + 2)) == NULL) {
		free(ce);
		return;
	}
	memcpy(ce->key, b->path, plen + 1);
	if (flen > 0)
		memcpy(ce->key + plen + 1, md_box_folder(b), flen);
	ce->key[plen + 1 + flen] = '\0';
	ce->root_fd = root_fd;
	ce->path_len = plen;
	ce->folder_len = flen;
	ce->tmp_fd = d->tmp_fd;
	ce->new_fd = d->new_fd;
	ce->dev = st.st_dev;
	ce->ino = st.st_ino;
	ce->refs = 1;
	(void)pthread_mutex_lock(&md_cache_lock);
	for (i = 0; i < MD_CACHE; i++) {
		if (md_cache[i] == NULL) {
			slot = i;
			break;
		}
		if (md_cache[i]->refs == 0 &&
		    (slot == MD_CACHE ||
			md_cache[i]->used < md_cache[slot]->used))
			slot = i;
	}
	if (slot < MD_CACHE) {
		gone = md_cache[slot]; /* NULL, or unused: refs == 0 */
		if (gone != NULL)
			gone->stale = true;
		md_cache[slot] = ce;
		ce->used = ++md_cache_tick;
	}
	(void)pthread_mutex_unlock(&md_cache_lock);
	if (gone != NULL)
		md_cache_free(gone);
	if (slot == MD_CACHE) {
		free(ce->key);
		free(ce);
		return;
	}
	d->ce = ce;
}

/*
 * Open a mailbox: the cache first; then without making anything (the
 * common case, under the shared lock), and only when something is missing
 * again under the exclusive lock, making what is missing.
 */
static int
md_open_box(int root_fd, const struct maildir_box *b, struct md_dirs *d,
    struct md_err *e)
{
	struct md_cached *ce;
	int r;

	d->tmp_fd = d->new_fd = -1;
	d->ce = NULL;
	e->box = b->path;
	if ((ce = md_cache_get(root_fd, b)) != NULL) {
		*d = (struct md_dirs){ce->tmp_fd, ce->new_fd, ce};
		return 0;
	}
	md_lock(false);
	r = md_open_box_locked(root_fd, b, false, d, e);
	md_unlock();
	if (r != 0 && errno == ENOENT) {
		if (e->buf != NULL && e->len > 0)
			e->buf[0] =
			    '\0'; /* the miss is not an error: make it */
		md_lock(true);
		r = md_open_box_locked(root_fd, b, true, d, e);
		md_unlock();
	}
	if (r == 0)
		md_cache_put(root_fd, b, d);
	return r;
}

/* ---- the message file ---------------------------------------------------- */

/*
 * Write m into tmp_fd/name: O_EXCL create, write, fsync (when sync),
 * close.  On failure the file is removed again, so tmp/ holds nothing of
 * this call.  st_out, when not NULL, gets the file's identity (for
 * duplicate boxes).
 */
static int
md_write_tmp(int tmp_fd, const char *name, const struct md_msg *m, bool sync,
    struct stat *st_out, struct md_err *e)
{
	const char *step;

	if (file_write_new(MD_WHO, tmp_fd, name, m->iov, m->iovcnt, sync,
		st_out, &step) != 0) {
		md_fail(e, step, "file in tmp/");
		return -1;
	}
	return 0;
}

/* ---- linking into new/ --------------------------------------------------- */

/*
 * The mailbox's new/ is on another file system: write the content again
 * into its tmp/ under a fresh unique name and link that as name.  An entry
 * already called name is ours (the names are unique to this call): the
 * same mailbox was listed twice.
 */
static int
md_copy_box(const char *name, const struct md_dirs *d, const struct md_msg *m,
    bool sync, struct md_err *e)
{
	char tname[NAME_MAX + 1];
	const char *step;
	struct stat st;

	if (fstatat(d->new_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(st.st_mode) && (size_t)st.st_size == m->size)
		return 0;
	if (md_unique_name(tname, sizeof(tname), m->size) != 0) {
		md_fail(e, "name", "copy in tmp/");
		return -1;
	}
	if (md_write_tmp(d->tmp_fd, tname, m, sync, NULL, e) != 0)
		return -1;
	if (file_link(MD_WHO, d->tmp_fd, tname, d->new_fd, name, sync, &step) !=
	    0) {
		md_fail(e, step,
		    strcmp(step, "link") == 0 ? "copy into new/" : "new/");
		unlinkat_quiet(d->tmp_fd, tname);
		return -1;
	}
	unlinkat_quiet(d->tmp_fd, tname);
	return 0;
}

static bool
md_same_file(int dir_fd, const char *name, const struct stat *src)
{
	struct stat st;

	return fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       st.st_dev == src->st_dev && st.st_ino == src->st_ino;
}

/*
 * Link src_dir/name into d's new/ and (when sync) fsync new/, or copy on
 * EXDEV.  A failed fsync takes the name back (file_link), since the
 * caller answers 4xx and the client sends again.
 */
static int
md_link_box(int src_dir, const char *name, const struct stat *src,
    const struct md_dirs *d, const struct md_msg *m, bool sync,
    struct md_err *e)
{
	bool sync_new = sync;
	const char *step;

#ifdef TERN_CRASHSTATE_PLANT_NOFSYNC
	/* the crash-state checker's planted bug (build/ternd-plant only):
	 * no fsync of new/, so the 250 comes before the name is durable */
	sync_new = false;
#endif
	if (file_link(
		MD_WHO, src_dir, name, d->new_fd, name, sync_new, &step) == 0)
		return 0;
	if (strcmp(step, "link") != 0) {
		md_fail(e, step, "new/");
		return -1;
	}
	if (errno == EXDEV)
		return md_copy_box(name, d, m, sync, e);
	/* our inode already there: a mailbox listed twice, and the first
	 * listing fsync'ed this new/ already */
	if (errno == EEXIST && md_same_file(d->new_fd, name, src))
		return 0;
	md_fail(e, "link", "into new/");
	return -1;
}

/* After a failure: the mailboxes of the call are walked afresh next time. */
static void
md_keep_forget(struct md_dirs *keep, size_t n)
{
	size_t i;

	for (i = 0; i < n && i < MAILDIR_KEEP; i++)
		md_cache_forget(&keep[i]);
}

static void
md_keep_close(struct md_dirs *keep, size_t n)
{
	size_t i;

	for (i = 0; i < n && i < MAILDIR_KEEP; i++)
		md_dirs_close(&keep[i]);
}

/* Pass 1: open (or make) every mailbox before a byte is written. */
static int
md_open_all(int root_fd, const struct maildir_box *boxes, size_t n,
    struct md_dirs *keep, struct md_err *e)
{
	struct md_dirs d;
	size_t i;

	for (i = 0; i < n; i++) {
		if (md_open_box(root_fd, &boxes[i], &d, e) != 0)
			return -1;
		if (i < MAILDIR_KEEP)
			keep[i] = d;
		else
			md_dirs_close(&d);
	}
	return 0;
}

/* Pass 2: link the tmp/ file of the first mailbox into every new/. */
static int
md_link_all(int root_fd, const struct maildir_box *boxes, size_t n,
    const struct md_dirs *keep, const char *name, const struct stat *src,
    const struct md_msg *m, bool sync, struct md_err *e)
{
	struct md_dirs d;
	size_t i;
	int r;

	for (i = 0; i < n; i++) {
		if (i < MAILDIR_KEEP)
			d = keep[i];
		else if (md_open_box(root_fd, &boxes[i], &d, e) != 0)
			return -1;
		e->box = boxes[i].path;
		r = md_link_box(keep[0].tmp_fd, name, src, &d, m, sync, e);
		if (i >= MAILDIR_KEEP)
			md_dirs_close(&d);
		if (r != 0)
			return -1;
	}
	return 0;
}

/* A Maildir++ folder name: one "." and a name, one path component. */
static bool
md_folder_ok(const char *f)
{
	return f[0] == '.' && strchr(f, '/') == NULL &&
	       md_component_check(f, strlen(f)) == 0;
}

/* Everything that can be refused before touching the disk. */
static int
md_check_args(const struct maildir_box *boxes, size_t n, struct md_msg *m,
    const char *name_out, size_t name_len, struct md_err *e)
{
	size_t i;

	errno = EINVAL;
	if (boxes == NULL || n == 0 || m->iovcnt < 0 ||
	    (m->iov == NULL && m->iovcnt > 0) || name_out == NULL ||
	    name_len == 0) {
		md_fail(e, "check", "arguments");
		return -1;
	}
	for (i = 0; i < (size_t)m->iovcnt; i++) {
		if (m->iov[i].iov_len > (size_t)SSIZE_MAX - m->size) {
			errno = EFBIG;
			md_fail(e, "check", "message size");
			return -1;
		}
		m->size += m->iov[i].iov_len;
	}
	for (i = 0; i < n; i++) {
		e->box = boxes[i].path;
		if (md_path_check(boxes[i].path) != 0) {
			md_fail(e, "check",
			    "path (empty, \".\", \"..\" or "
			    "control character)");
			return -1;
		}
		if ((boxes[i].folder != NULL &&
			!md_folder_ok(boxes[i].folder)) ||
		    (boxes[i].subfolder != NULL &&
			!md_folder_ok(boxes[i].subfolder))) {
			errno = EINVAL;
			md_fail(e, "check", "folder name");
			return -1;
		}
	}
	return 0;
}

/* A fresh unique name, also copied out to the caller. */
static int
md_name(char name[NAME_MAX + 1], char *name_out, size_t name_len, size_t size,
    struct md_err *e)
{
	if (md_unique_name(name, NAME_MAX + 1, size) != 0) {
		md_fail(e, "name", "file");
		return -1;
	}
	if (str_copy(name_out, name_len, name, strlen(name)) != 0) {
		errno = ERANGE;
		md_fail(e, "copy", "name to caller (buffer too small)");
		return -1;
	}
	return 0;
}

int
maildir_deliver(int root_fd, const struct maildir_box *boxes, size_t n,
    const struct iovec *iov, int iovcnt, char *name_out, size_t name_len,
    char *err, size_t errlen)
{
	struct md_dirs keep[MAILDIR_KEEP];
	struct md_err e = {err, errlen, NULL};
	struct md_msg m = {iov, iovcnt, 0};
	char name[NAME_MAX + 1];
	struct stat src = {0}; /* the file's identity: needed for n > 1 only */
	bool written = false;
	size_t i;
	int saved;

	for (i = 0; i < MAILDIR_KEEP; i++)
		keep[i] = (struct md_dirs){-1, -1, NULL};
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (md_check_args(boxes, n, &m, name_out, name_len, &e) != 0)
		return -1;
	if (md_open_all(root_fd, boxes, n, keep, &e) != 0)
		goto fail;
	e.box = boxes[0].path;
	if (md_name(name, name_out, name_len, m.size, &e) != 0 ||
	    md_write_tmp(
		keep[0].tmp_fd, name, &m, true, n > 1 ? &src : NULL, &e) != 0)
		goto fail;
	written = true;
	if (md_link_all(root_fd, boxes, n, keep, name, &src, &m, true, &e) != 0)
		goto fail;
	/* delivered and durable: a failed unlink leaves a stale tmp/ file for
	 * the reader's sweep, and failing now would only deliver twice */
	if (unlinkat(keep[0].tmp_fd, name, 0) != 0)
		log_warn(
		    "event=maildir_tmp_unlink name=%s errno=%d", name, errno);
	md_keep_close(keep, n);
	return 0;
fail:
	saved = errno;
	if (written)
		unlinkat_quiet(keep[0].tmp_fd, name);
	md_keep_forget(keep, n);
	md_keep_close(keep, n);
	errno = saved;
	return -1;
}

int
maildir_create(int root_fd, const char *path, char *err, size_t errlen)
{
	struct md_err e = {err, errlen, path};
	struct md_dirs d = {-1, -1, NULL};
	int r;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (md_path_check(path) != 0) {
		md_fail(&e, "check",
		    "path (empty, \".\", \"..\" or "
		    "control character)");
		return -1;
	}
	md_lock(true);
	r = md_open_box_locked(
	    root_fd, &(struct maildir_box){.path = path}, true, &d, &e);
	md_unlock();
	md_dirs_close(&d);
	return r;
}

/* ---- staged delivery: group commit --------------------------------------- */

struct maildir_staged {
	int root_fd;
	const struct maildir_box *boxes;
	size_t n;
	struct md_dirs keep[MAILDIR_KEEP];
	struct md_msg m;
	char name[NAME_MAX + 1];
	struct stat src;
};

struct maildir_staged *
maildir_stage(int root_fd, const struct maildir_box *boxes, size_t n,
    const struct iovec *iov, int iovcnt, char *name_out, size_t name_len,
    char *err, size_t errlen)
{
	struct maildir_staged *st = calloc(1, sizeof(*st));
	struct md_err e = {err, errlen, NULL};
	size_t i;
	int saved;

	if (st == NULL)
		return NULL;
	for (i = 0; i < MAILDIR_KEEP; i++)
		st->keep[i] = (struct md_dirs){-1, -1, NULL};
	st->root_fd = root_fd;
	st->boxes = boxes;
	st->n = n;
	st->m.iov = iov;
	st->m.iovcnt = iovcnt;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (md_check_args(boxes, n, &st->m, name_out, name_len, &e) != 0 ||
	    md_open_all(root_fd, boxes, n, st->keep, &e) != 0)
		goto fail;
	e.box = boxes[0].path;
	/* no fsync: the caller's syncfs makes the whole batch durable */
	if (md_name(st->name, name_out, name_len, st->m.size, &e) != 0 ||
	    md_write_tmp(st->keep[0].tmp_fd, st->name, &st->m, false,
		n > 1 ? &st->src : NULL, &e) != 0)
		goto fail;
	return st;
fail:
	saved = errno;
	md_keep_forget(st->keep, n);
	md_keep_close(st->keep, n);
	free(st);
	errno = saved;
	return NULL;
}

int
maildir_publish(struct maildir_staged *st, char *err, size_t errlen)
{
	struct md_err e = {err, errlen, NULL};
	int r, saved;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	/* no fsync of new/: the caller's second syncfs covers every link */
	r = md_link_all(st->root_fd, st->boxes, st->n, st->keep, st->name,
	    &st->src, &st->m, false, &e);
	saved = errno;
	if (unlinkat(st->keep[0].tmp_fd, st->name, 0) != 0 && r == 0)
		log_warn("event=maildir_tmp_unlink name=%s errno=%d", st->name,
		    errno);
	if (r != 0)
		md_keep_forget(st->keep, st->n);
	md_keep_close(st->keep, st->n);
	free(st);
	errno = saved;
	return r;
}

void
maildir_abort(struct maildir_staged *st)
{
	if (st == NULL)
		return;
	unlinkat_quiet(st->keep[0].tmp_fd, st->name);
	md_keep_forget(st->keep, st->n);
	md_keep_close(st->keep, st->n);
	free(st);
}
