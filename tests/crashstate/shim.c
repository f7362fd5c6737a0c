/*
 * crashstate shim: an LD_PRELOAD library that records, in order, every
 * file-system call of a process that can change what a power cut leaves
 * on disk, for the crash-state replayer (tests/crashstate/crashstate.py).
 *
 * Recorded (only for paths beneath $TERN_CRASHSTATE_ROOT, and only when
 * the call succeeded): open/openat/creat (with O_CREAT, O_TRUNC,
 * O_TMPFILE), write/pwrite/writev/pwritev (the bytes go to the .data
 * file), ftruncate, fsync/fdatasync/syncfs/sync (a begin record before
 * the call, an end record after it), rename/renameat/renameat2 (with its
 * flags), link/linkat, unlink/unlinkat/rmdir, mkdir/mkdirat.  And one
 * "ack" record whenever the process writes "250 2.0.0 Ok: queued as ID"
 * to a socket: the moment ternd acknowledges a message; and a "ctl_ok"
 * record for the control socket's plain {"ok":true} (a hold or release
 * done).
 *
 * Ordering: a mutating call runs with the trace lock held, so the order of
 * the records is the order in which the kernel applied them, whatever the
 * threads.  A sync does not hold the lock while it runs (group commit
 * relies on threads writing while another one fsyncs): its begin record
 * is taken before the call, so the replayer credits it only with what was
 * recorded before it started, which is what fsync(2) promises.  An ack is
 * recorded before the reply is written (a crash "between" them counts the
 * message as acknowledged: the stricter reading).
 *
 * Not recorded: sync_file_range (it makes nothing durable), stdio writes
 * (ternd writes no durable state through stdio; its cert is made before
 * a recorded run starts), memory-mapped writes (none in ternd).
 *
 * Trace: $TERN_CRASHSTATE_TRACE.log, one line per record,
 * "SEQ TID OP FIELD...", paths %XX-escaped; written bytes appended to
 * $TERN_CRASHSTATE_TRACE.data, a record naming their offset and length.
 * Test-only code, never linked into tern.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <regex.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#define CS_LINE_MAX (3 * PATH_MAX * 2 + 256)

static pthread_mutex_t cs_mu = PTHREAD_MUTEX_INITIALIZER;
static int cs_log = -1, cs_data = -1;
static unsigned long long cs_seq;
static unsigned long long cs_data_off;
static char cs_root[PATH_MAX];
static size_t cs_root_len;

/* ---- raw output, never through the wrapped functions ------------------- */

static void
cs_raw_write(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		long w = syscall(SYS_write, fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			abort(); /* a lost record would make the replay a lie */
		c += w;
		n -= (size_t)w;
	}
}

__attribute__((constructor)) static void
cs_init(void)
{
	const char *t = getenv("TERN_CRASHSTATE_TRACE");
	const char *r = getenv("TERN_CRASHSTATE_ROOT");
	char path[PATH_MAX];

	if (t == NULL || r == NULL || strlen(r) >= sizeof(cs_root))
		return;
	memcpy(cs_root, r, strlen(r) + 1);
	cs_root_len = strlen(cs_root);
	if ((size_t)snprintf(path, sizeof(path), "%s.log", t) >= sizeof(path))
		abort();
	cs_log = (int)syscall(SYS_openat, AT_FDCWD, path,
	    O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if ((size_t)snprintf(path, sizeof(path), "%s.data", t) >= sizeof(path))
		abort();
	cs_data = (int)syscall(SYS_openat, AT_FDCWD, path,
	    O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (cs_log < 0 || cs_data < 0)
		abort();
	cs_data_off = (unsigned long long)lseek(cs_data, 0, SEEK_END);
}

/* ---- paths ------------------------------------------------------------- */

static bool
cs_fd_path(int fd, char *out, size_t outlen)
{
	char link[64];
	ssize_t n;

	if (fd == AT_FDCWD)
		return getcwd(out, outlen) != NULL;
	(void)snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, out, outlen - 1);
	if (n < 0)
		return false;
	out[n] = '\0';
	return true;
}

/* dirfd + name -> absolute path (not normalised; the replayer does that) */
static bool
cs_at_path(int dirfd, const char *name, char *out, size_t outlen)
{
	char dir[PATH_MAX];

	if (name == NULL)
		return false;
	if (name[0] == '/')
		return (size_t)snprintf(out, outlen, "%s", name) < outlen;
	if (!cs_fd_path(dirfd, dir, sizeof(dir)))
		return false;
	return (size_t)snprintf(out, outlen, "%s/%s", dir, name) < outlen;
}

static bool
cs_under_root(const char *path)
{
	return cs_log >= 0 && strncmp(path, cs_root, cs_root_len) == 0 &&
	       (path[cs_root_len] == '/' || path[cs_root_len] == '\0');
}

/* %XX-escape so a path is one space-free field */
static size_t
cs_escape(char *out, size_t outlen, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (; *s != '\0' && o + 4 < outlen; s++) {
		unsigned char c = (unsigned char)*s;

		if (c <= 0x20 || c >= 0x7f || c == '%') {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		} else {
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
	return o;
}

/* one record; the caller holds cs_mu.  Returns the record's sequence. */
__attribute__((format(printf, 1, 2))) static unsigned long long
cs_rec(const char *fmt, ...)
{
	char line[CS_LINE_MAX];
	unsigned long long seq = ++cs_seq;
	int n, m;
	va_list ap;

	n = snprintf(
	    line, sizeof(line), "%llu %ld ", seq, (long)syscall(SYS_gettid));
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0 || (size_t)(n + m) >= sizeof(line) - 1)
		abort();
	line[n + m] = '\n';
	cs_raw_write(cs_log, line, (size_t)(n + m + 1));
	return seq;
}

#define REAL(name)                                                             \
	static __typeof__(name) *real_##name;                                  \
	if (real_##name == NULL)                                               \
	real_##name = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

/* ---- which fds to trace ---------------------------------------------- */

enum cs_kind { CS_OTHER, CS_FILE, CS_SOCK };

static enum cs_kind
cs_fd_kind(int fd, struct stat *st, char *path, size_t pathlen)
{
	if (cs_log < 0 || fstat(fd, st) != 0)
		return CS_OTHER;
	if (S_ISSOCK(st->st_mode))
		return CS_SOCK;
	if (!S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode))
		return CS_OTHER;
	if (!cs_fd_path(fd, path, pathlen) || !cs_under_root(path))
		return CS_OTHER;
	return CS_FILE;
}

/* "250 2.0.0 Ok: queued as ID" in bytes going to a socket: an ack */
static void
cs_scan_ack(const struct iovec *iov, int iovcnt)
{
	static const char pat[] = "250 2.0.0 Ok: queued as ";
	char id[17];
	int i;

	/* the control socket's plain success reply: a hold or release done */
	if (iovcnt > 0 && iov[0].iov_len == 12 &&
	    memcmp(iov[0].iov_base, "{\"ok\":true}\n", 12) == 0) {
		pthread_mutex_lock(&cs_mu);
		cs_rec("ctl_ok");
		pthread_mutex_unlock(&cs_mu);
	}
	for (i = 0; i < iovcnt; i++) {
		const char *p = iov[i].iov_base, *end = p + iov[i].iov_len;
		const char *q = p;

		while ((q = memmem(q, (size_t)(end - q), pat,
			    sizeof(pat) - 1)) != NULL) {
			q += sizeof(pat) - 1;
			if (end - q < 16)
				break;
			memcpy(id, q, 16);
			id[16] = '\0';
			pthread_mutex_lock(&cs_mu);
			cs_rec("ack id=%s", id);
			pthread_mutex_unlock(&cs_mu);
		}
	}
}

/* the bytes written: to .data, and a record; the caller holds cs_mu */
static void
cs_rec_write(const struct stat *st, long long off, const struct iovec *iov,
    int iovcnt, size_t total)
{
	unsigned long long doff = cs_data_off;
	size_t left = total;
	int i;

	for (i = 0; i < iovcnt && left > 0; i++) {
		size_t n = iov[i].iov_len < left ? iov[i].iov_len : left;

		cs_raw_write(cs_data, iov[i].iov_base, n);
		left -= n;
	}
	cs_data_off += total;
	cs_rec("write ino=%llu off=%lld len=%zu doff=%llu",
	    (unsigned long long)st->st_ino, off, total, doff);
}

/*
 * The common path of every write: off < 0 means "at the file offset"
 * (write, writev), else pwrite's offset.
 */
static ssize_t
cs_writev_common(int fd, const struct iovec *iov, int iovcnt, long long off,
    ssize_t (*call)(int, const struct iovec *, int, long long))
{
	char path[PATH_MAX];
	struct stat st;
	long long at = off;
	ssize_t r;
	int saved;

	switch (cs_fd_kind(fd, &st, path, sizeof(path))) {
	case CS_SOCK:
		cs_scan_ack(iov, iovcnt);
		return call(fd, iov, iovcnt, off);
	case CS_OTHER:
		return call(fd, iov, iovcnt, off);
	case CS_FILE:
		break;
	}
	pthread_mutex_lock(&cs_mu);
	if (at < 0) {
		int fl = fcntl(fd, F_GETFL);

		at = (fl >= 0 && (fl & O_APPEND)) && fstat(fd, &st) == 0
			 ? (long long)st.st_size
			 : (long long)lseek(fd, 0, SEEK_CUR);
	}
	r = call(fd, iov, iovcnt, off);
	saved = errno;
	if (r > 0)
		cs_rec_write(&st, at, iov, iovcnt, (size_t)r);
	pthread_mutex_unlock(&cs_mu);
	errno = saved;
	return r;
}

static ssize_t
call_writev(int fd, const struct iovec *iov, int iovcnt, long long off)
{
	REAL(writev);
	(void)off;
	return real_writev(fd, iov, iovcnt);
}

static ssize_t
call_pwritev(int fd, const struct iovec *iov, int iovcnt, long long off)
{
	REAL(pwritev);
	return real_pwritev(fd, iov, iovcnt, (off_t)off);
}

static ssize_t
call_write(int fd, const struct iovec *iov, int iovcnt, long long off)
{
	REAL(write);
	(void)iovcnt;
	(void)off;
	return real_write(fd, iov[0].iov_base, iov[0].iov_len);
}

static ssize_t
call_pwrite(int fd, const struct iovec *iov, int iovcnt, long long off)
{
	REAL(pwrite);
	(void)iovcnt;
	return real_pwrite(fd, iov[0].iov_base, iov[0].iov_len, (off_t)off);
}

ssize_t
write(int fd, const void *buf, size_t n)
{
	struct iovec v = {(void *)(uintptr_t)buf, n};

	return cs_writev_common(fd, &v, 1, -1, call_write);
}

ssize_t
writev(int fd, const struct iovec *iov, int iovcnt)
{
	return cs_writev_common(fd, iov, iovcnt, -1, call_writev);
}

ssize_t
pwrite(int fd, const void *buf, size_t n, off_t off)
{
	struct iovec v = {(void *)(uintptr_t)buf, n};

	return cs_writev_common(fd, &v, 1, (long long)off, call_pwrite);
}

ssize_t
pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	return pwrite(fd, buf, n, off);
}

ssize_t
pwritev(int fd, const struct iovec *iov, int iovcnt, off_t off)
{
	return cs_writev_common(fd, iov, iovcnt, (long long)off, call_pwritev);
}

ssize_t
pwritev64(int fd, const struct iovec *iov, int iovcnt, off_t off)
{
	return pwritev(fd, iov, iovcnt, off);
}

ssize_t
send(int fd, const void *buf, size_t n, int flags)
{
	struct iovec v = {(void *)(uintptr_t)buf, n};

	REAL(send);
	if (cs_log >= 0)
		cs_scan_ack(&v, 1);
	return real_send(fd, buf, n, flags);
}

ssize_t
sendmsg(int fd, const struct msghdr *msg, int flags)
{
	REAL(sendmsg);
	if (cs_log >= 0)
		cs_scan_ack(msg->msg_iov, (int)msg->msg_iovlen);
	return real_sendmsg(fd, msg, flags);
}

/* ---- open -------------------------------------------------------------- */

static int
cs_openat_common(int dirfd, const char *name, int flags, mode_t mode)
{
	char path[PATH_MAX], esc[3 * PATH_MAX];
	struct stat st;
	bool existed, traced;
	int fd, saved;

	REAL(openat);
	traced =
	    cs_log >= 0 && (flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)) &&
	    cs_at_path(dirfd, name, path, sizeof(path)) && cs_under_root(path);
	if (!traced)
		return real_openat(dirfd, name, flags, mode);
	pthread_mutex_lock(&cs_mu);
	existed = (flags & O_TMPFILE) != O_TMPFILE &&
		  fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
	fd = real_openat(dirfd, name, flags, mode);
	saved = errno;
	if (fd >= 0 && fstat(fd, &st) == 0) {
		(void)cs_escape(esc, sizeof(esc), path);
		cs_rec("open %s ino=%llu created=%d trunc=%d tmpfile=%d", esc,
		    (unsigned long long)st.st_ino, !existed,
		    (flags & O_TRUNC) != 0, (flags & O_TMPFILE) == O_TMPFILE);
	}
	pthread_mutex_unlock(&cs_mu);
	errno = saved;
	return fd;
}

static mode_t
cs_mode(int flags, va_list ap)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE
		   ? (mode_t)va_arg(ap, int)
		   : 0;
}

int
open(const char *name, int flags, ...)
{
	va_list ap;
	mode_t m;

	va_start(ap, flags);
	m = cs_mode(flags, ap);
	va_end(ap);
	return cs_openat_common(AT_FDCWD, name, flags, m);
}

int
open64(const char *name, int flags, ...)
{
	va_list ap;
	mode_t m;

	va_start(ap, flags);
	m = cs_mode(flags, ap);
	va_end(ap);
	return cs_openat_common(AT_FDCWD, name, flags, m);
}

int
openat(int dirfd, const char *name, int flags, ...)
{
	va_list ap;
	mode_t m;

	va_start(ap, flags);
	m = cs_mode(flags, ap);
	va_end(ap);
	return cs_openat_common(dirfd, name, flags, m);
}

int
openat64(int dirfd, const char *name, int flags, ...)
{
	va_list ap;
	mode_t m;

	va_start(ap, flags);
	m = cs_mode(flags, ap);
	va_end(ap);
	return cs_openat_common(dirfd, name, flags, m);
}

/* _FORTIFY_SOURCE's checked variants (no mode: no O_CREAT) */
int __open_2(const char *name, int flags);
int __open64_2(const char *name, int flags);
int __openat_2(int dirfd, const char *name, int flags);
int __openat64_2(int dirfd, const char *name, int flags);

int
__open_2(const char *name, int flags)
{
	return cs_openat_common(AT_FDCWD, name, flags, 0);
}

int
__open64_2(const char *name, int flags)
{
	return cs_openat_common(AT_FDCWD, name, flags, 0);
}

int
__openat_2(int dirfd, const char *name, int flags)
{
	return cs_openat_common(dirfd, name, flags, 0);
}

int
__openat64_2(int dirfd, const char *name, int flags)
{
	return cs_openat_common(dirfd, name, flags, 0);
}

int
creat(const char *name, mode_t mode)
{
	return cs_openat_common(
	    AT_FDCWD, name, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

int
creat64(const char *name, mode_t mode)
{
	return creat(name, mode);
}

/* ---- truncate ---------------------------------------------------------- */

int
ftruncate(int fd, off_t len)
{
	char path[PATH_MAX];
	struct stat st;
	int r, saved;

	REAL(ftruncate);
	if (cs_fd_kind(fd, &st, path, sizeof(path)) != CS_FILE)
		return real_ftruncate(fd, len);
	pthread_mutex_lock(&cs_mu);
	r = real_ftruncate(fd, len);
	saved = errno;
	if (r == 0)
		cs_rec("trunc ino=%llu len=%lld", (unsigned long long)st.st_ino,
		    (long long)len);
	pthread_mutex_unlock(&cs_mu);
	errno = saved;
	return r;
}

int
ftruncate64(int fd, off_t len)
{
	return ftruncate(fd, len);
}

/* ---- syncs ------------------------------------------------------------- */

/* the call site: "OBJECT+0xOFFSET" of the return address (ternd+0x1c2f4) */
static void
cs_site(const void *caller, char *out, size_t outlen)
{
	Dl_info di;
	const char *obj;

	if (dladdr(caller, &di) == 0 || di.dli_fname == NULL) {
		(void)snprintf(out, outlen, "?+%p", caller);
		return;
	}
	obj = strrchr(di.dli_fname, '/');
	obj = obj != NULL ? obj + 1 : di.dli_fname;
	(void)snprintf(out, outlen, "%s+0x%lx", obj,
	    (unsigned long)((uintptr_t)caller - (uintptr_t)di.dli_fbase));
}

/*
 * $TERN_CRASHSTATE_DROP, an extended regex matched against "KIND RELPATH
 * @SITE" (e.g. "fsync queue/env @ternd+0x1c2f4"): a sync it matches is not
 * done at all, and recorded as dropped, a missing fsync planted at run time
 * (the checker's --mutate mode drops each sync call site in turn).
 */
static bool
cs_drop(const char *kind, const char *path, const char *site)
{
	static regex_t re;
	static int state; /* 0 unread, 1 none, 2 compiled */
	char key[PATH_MAX + 128];
	const char *rel = path + cs_root_len;
	const char *d;

	if (state == 0) {
		d = getenv("TERN_CRASHSTATE_DROP");
		state = d != NULL && *d != '\0' &&
				regcomp(&re, d, REG_EXTENDED | REG_NOSUB) == 0
			    ? 2
			    : 1;
	}
	if (state != 2)
		return false;
	while (*rel == '/')
		rel++;
	(void)snprintf(key, sizeof(key), "%s %s @%s", kind, rel, site);
	return regexec(&re, key, 0, NULL, 0) == 0;
}

/* begin before, end after; kind names the call */
static int
cs_sync_fd(int fd, const char *kind, int (*call)(int), const void *caller)
{
	char path[PATH_MAX], esc[3 * PATH_MAX], site[PATH_MAX];
	struct stat st;
	unsigned long long b;
	int r, saved;

	if (cs_log < 0 || fstat(fd, &st) != 0 ||
	    !cs_fd_path(fd, path, sizeof(path)) ||
	    (!cs_under_root(path) && strcmp(kind, "syncfs") != 0))
		return call(fd);
	(void)cs_escape(esc, sizeof(esc), path);
	cs_site(caller, site, sizeof(site));
	pthread_mutex_lock(&cs_mu);
	if (cs_under_root(path) && cs_drop(kind, path, site)) {
		cs_rec("dropped %s kind=%s ino=%llu site=%s", esc, kind,
		    (unsigned long long)st.st_ino, site);
		pthread_mutex_unlock(&cs_mu);
		return 0;
	}
	b = cs_rec("sync_begin %s kind=%s ino=%llu dir=%d site=%s", esc, kind,
	    (unsigned long long)st.st_ino, S_ISDIR(st.st_mode) ? 1 : 0, site);
	pthread_mutex_unlock(&cs_mu);
	r = call(fd);
	saved = errno;
	pthread_mutex_lock(&cs_mu);
	cs_rec("sync_end begin=%llu ret=%d", b, r);
	pthread_mutex_unlock(&cs_mu);
	errno = saved;
	return r;
}

static int
call_fsync(int fd)
{
	REAL(fsync);
	return real_fsync(fd);
}

static int
call_fdatasync(int fd)
{
	REAL(fdatasync);
	return real_fdatasync(fd);
}

static int
call_syncfs(int fd)
{
	REAL(syncfs);
	return real_syncfs(fd);
}

int
fsync(int fd)
{
	return cs_sync_fd(fd, "fsync", call_fsync, __builtin_return_address(0));
}

int
fdatasync(int fd)
{
	return cs_sync_fd(
	    fd, "fdatasync", call_fdatasync, __builtin_return_address(0));
}

int
syncfs(int fd)
{
	return cs_sync_fd(
	    fd, "syncfs", call_syncfs, __builtin_return_address(0));
}

void
sync(void)
{
	unsigned long long b = 0;

	REAL(sync);
	if (cs_log >= 0) {
		pthread_mutex_lock(&cs_mu);
		b = cs_rec("sync_begin kind=sync ino=0 dir=0");
		pthread_mutex_unlock(&cs_mu);
	}
	real_sync();
	if (cs_log >= 0) {
		pthread_mutex_lock(&cs_mu);
		cs_rec("sync_end begin=%llu ret=0", b);
		pthread_mutex_unlock(&cs_mu);
	}
}

/* ---- names ------------------------------------------------------------- */

static int
cs_rename_common(int od, const char *on, int nd, const char *nn, unsigned flags)
{
	char op[PATH_MAX], np[PATH_MAX], e1[3 * PATH_MAX], e2[3 * PATH_MAX];
	int r, saved;

	REAL(renameat2);
	if (cs_log < 0 || !cs_at_path(od, on, op, sizeof(op)) ||
	    !cs_at_path(nd, nn, np, sizeof(np)) ||
	    (!cs_under_root(op) && !cs_under_root(np)))
		return real_renameat2(od, on, nd, nn, flags);
	pthread_mutex_lock(&cs_mu);
	r = real_renameat2(od, on, nd, nn, flags);
	saved = errno;
	if (r == 0) {
		(void)cs_escape(e1, sizeof(e1), op);
		(void)cs_escape(e2, sizeof(e2), np);
		cs_rec("rename %s %s flags=%u", e1, e2, flags);
	}
	pthread_mutex_unlock(&cs_mu);
	errno = saved;
	return r;
}

int
rename(const char *o, const char *n)
{
	return cs_rename_common(AT_FDCWD, o, AT_FDCWD, n, 0);
}

int
renameat(int od, const char *o, int nd, const char *n)
{
	return cs_rename_common(od, o, nd, n, 0);
}

int
renameat2(int od, const char *o, int nd, const char *n, unsigned flags)
{
	return cs_rename_common(od, o, nd, n, flags);
}

static int
cs_link_common(int od, const char *on, int nd, const char *nn, int flags)
{
	char op[PATH_MAX], np[PATH_MAX], e1[3 * PATH_MAX], e2[3 * PATH_MAX];
	int r, saved;

	REAL(linkat);
	if (cs_log < 0 || !cs_at_path(od, on, op, sizeof(op)) ||
	    !cs_at_path(nd, nn, np, sizeof(np)) || !cs_under_root(np))
		return real_linkat(od, on, nd, nn, flags);
	pthread_mutex_lock(&cs_mu);
	r = real_linkat(od, on, nd, nn, flags);
	saved = errno;
	if (r == 0) {
		(void)cs_escape(e1, sizeof(e1), op);
		(void)cs_escape(e2, sizeof(e2), np);
		cs_rec("link %s %s", e1, e2);
	}
	pthread_mutex_unlock(&cs_mu);
	errno = saved;
	return r;
}

int
link(const char *o, const char *n)
{
	return cs_link_common(AT_FDCWD, o, AT_FDCWD, n, 0);
}

int
linkat(int od, const char *o, int nd, const char *n, int flags)
{
	return cs_link_common(od, o, nd, n, flags);
}

static int
cs_unlink_common(int dirfd, const char *name, int flags)
{
	char path[PATH_MAX], esc[3 * PATH_MAX];
	int r, saved;

	REAL(unlinkat);
	if (cs_log < 0 || !cs_at_path(dirfd, name, path, sizeof(path)) ||
	    !cs_under_root(path))
		return real_unlinkat(dirfd, name, flags);
	pthread_mutex_lock(&cs_mu);
	r = real_unlinkat(dirfd, name, flags);
	saved = errno;
	if (r == 0) {
		(void)cs_escape(esc, sizeof(esc), path);
		cs_rec("unlink %s dir=%d", esc, (flags & AT_REMOVEDIR) != 0);
	}
	pthread_mutex_unlock(&cs_mu);
	errno = saved;
	return r;
}

int
unlink(const char *name)
{
	return cs_unlink_common(AT_FDCWD, name, 0);
}

int
unlinkat(int dirfd, const char *name, int flags)
{
	return cs_unlink_common(dirfd, name, flags);
}

int
rmdir(const char *name)
{
	return cs_unlink_common(AT_FDCWD, name, AT_REMOVEDIR);
}

static int
cs_mkdir_common(int dirfd, const char *name, mode_t mode)
{
	char path[PATH_MAX], esc[3 * PATH_MAX];
	struct stat st;
	int r, saved;

	REAL(mkdirat);
	if (cs_log < 0 || !cs_at_path(dirfd, name, path, sizeof(path)) ||
	    !cs_under_root(path))
		return real_mkdirat(dirfd, name, mode);
	pthread_mutex_lock(&cs_mu);
	r = real_mkdirat(dirfd, name, mode);
	saved = errno;
	if (r == 0 && fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		(void)cs_escape(esc, sizeof(esc), path);
		cs_rec("mkdir %s ino=%llu", esc, (unsigned long long)st.st_ino);
	}
	pthread_mutex_unlock(&cs_mu);
	errno = saved;
	return r;
}

int
mkdir(const char *name, mode_t mode)
{
	return cs_mkdir_common(AT_FDCWD, name, mode);
}

int
mkdirat(int dirfd, const char *name, mode_t mode)
{
	return cs_mkdir_common(dirfd, name, mode);
}
