/*
 * fs/file: durable files (the interface and its promises are in
 * file.h).  Each step that can fail on a full or broken disk is preceded
 * by FILE_FAULT(who, step), the test build's one fault hook; in every
 * other build it is the constant 0 and costs nothing.
 *
 * Why each order: a file's content is fsync'ed before its name is linked
 * or renamed anywhere a reader (or recovery) looks, and a directory is
 * fsync'ed after an entry is made in it before anyone is told the entry
 * exists.  The callers' header comments say which orders they rely on.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fs/file.h"

#define FILE_IOV_CHUNK 64 /* iovecs per writev (well under IOV_MAX) */

#ifdef TERN_FAULT_INJECTION
int (*file_fault_hook)(const char *who, const char *step);

int
file_fault(const char *who, const char *step)
{
	int e;

	if (file_fault_hook == NULL || (e = file_fault_hook(who, step)) == 0)
		return 0;
	errno = e;
	return -1;
}
#endif

/* The (index, offset) cursor of file_write_all over the caller's iovecs. */
struct file_cursor {
	const struct iovec *iov;
	int iovcnt;
	int i;
	size_t off;
};

/* Move the cursor past w written bytes. */
static void
file_advance(struct file_cursor *c, size_t w)
{
	while (w > 0 && c->i < c->iovcnt) {
		size_t left = c->iov[c->i].iov_len - c->off;

		if (w < left) {
			c->off += w;
			return;
		}
		w -= left;
		c->i++;
		c->off = 0;
	}
}

/* Up to FILE_IOV_CHUNK iovecs of what is left, from the cursor on. */
static int
file_chunk(const struct file_cursor *c, struct iovec *chunk)
{
	int n;

	for (n = 0; n < FILE_IOV_CHUNK && c->i + n < c->iovcnt; n++) {
		size_t skip = n == 0 ? c->off : 0;

		chunk[n].iov_base = (char *)c->iov[c->i + n].iov_base + skip;
		chunk[n].iov_len = c->iov[c->i + n].iov_len - skip;
	}
	return n;
}

int
file_write_all(const char *who, int fd, const struct iovec *iov, int iovcnt)
{
	struct file_cursor c = {iov, iovcnt, 0, 0};
	struct iovec chunk[FILE_IOV_CHUNK];
	ssize_t w;

	while (c.i < c.iovcnt) {
		if (c.off == c.iov[c.i].iov_len) {
			c.i++;
			c.off = 0;
			continue;
		}
		w = FILE_FAULT(who, "write") != 0
			? -1
			: writev(fd, chunk, file_chunk(&c, chunk));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO; /* no progress: never spin */
			return -1;
		}
		file_advance(&c, (size_t)w);
	}
	return 0;
}

/* Write, fsync when sync, fstat when st_out, close (always closes). */
static int
file_fill(const char *who, int fd, const struct iovec *iov, int iovcnt,
    bool sync, struct stat *st_out, const char **step_out)
{
	int r;

	*step_out = "write";
	if (file_write_all(who, fd, iov, iovcnt) != 0)
		goto fail;
	*step_out = "fsync";
	if (sync && (FILE_FAULT(who, "fsync") != 0 || fdatasync(fd) != 0))
		goto fail;
	*step_out = "stat";
	if (st_out != NULL && fstat(fd, st_out) != 0)
		goto fail;
	*step_out = "close";
	r = close(fd);
	/* NFS and some disks report write errors only here */
	if (FILE_FAULT(who, "close") != 0 || r != 0)
		return -1;
	return 0;
fail:
	fd_close_quiet(fd);
	return -1;
}

/* The O_EXCL create of file_write_new*, 0600 less the umask. */
static int
file_create(const char *who, int dir_fd, const char *name)
{
	if (FILE_FAULT(who, "create") != 0)
		return -1;
	return openat(dir_fd, name,
	    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
}

/* mode FILE_MODE_KEEP: the 0600 (less the umask) of file_create */
#define FILE_MODE_KEEP ((mode_t)-1)

static int
file_write_new_as(const char *who, int dir_fd, const char *name, mode_t mode,
    const struct iovec *iov, int iovcnt, bool sync, struct stat *st_out,
    const char **step_out)
{
	int fd;

	*step_out = "create";
	if ((fd = file_create(who, dir_fd, name)) < 0)
		return -1;
	*step_out = "chmod";
	if (mode != FILE_MODE_KEEP && fchmod(fd, mode) != 0) {
		fd_close_quiet(fd);
		unlinkat_quiet(dir_fd, name);
		return -1;
	}
	if (file_fill(who, fd, iov, iovcnt, sync, st_out, step_out) != 0) {
		unlinkat_quiet(dir_fd, name);
		return -1;
	}
	return 0;
}

int
file_write_new(const char *who, int dir_fd, const char *name,
    const struct iovec *iov, int iovcnt, bool sync, struct stat *st_out,
    const char **step_out)
{
	return file_write_new_as(who, dir_fd, name, FILE_MODE_KEEP, iov, iovcnt,
	    sync, st_out, step_out);
}

int
file_write_new_mode(const char *who, int dir_fd, const char *name, mode_t mode,
    const struct iovec *iov, int iovcnt, bool sync, struct stat *st_out,
    const char **step_out)
{
	return file_write_new_as(
	    who, dir_fd, name, mode, iov, iovcnt, sync, st_out, step_out);
}

int
file_sync_dir(const char *who, int dir_fd)
{
	if (FILE_FAULT(who, "fsync_dir") != 0)
		return -1;
	return fsync(dir_fd);
}

int
file_mkdir(const char *who, int parent, const char *name, const char **step_out)
{
	*step_out = "mkdir";
	if ((FILE_FAULT(who, "mkdir") != 0 ||
		mkdirat(parent, name, 0700) != 0) &&
	    errno != EEXIST)
		return -1;
	*step_out = "fsync";
	return file_sync_dir(who, parent);
}

int
file_link(const char *who, int from_dir, const char *from, int to_dir,
    const char *to, bool sync, const char **step_out)
{
	*step_out = "link";
	if (FILE_FAULT(who, "link") != 0 ||
	    linkat(from_dir, from, to_dir, to, 0) != 0)
		return -1;
	*step_out = "fsync";
	if (sync && file_sync_dir(who, to_dir) != 0) {
		unlinkat_quiet(to_dir, to);
		return -1;
	}
	return 0;
}

int
file_rename(const char *who, int from_dir, const char *from, int to_dir,
    const char *to, unsigned flags)
{
	if (FILE_FAULT(who, "rename") != 0)
		return -1;
	return renameat2(from_dir, from, to_dir, to, flags);
}

int
file_unlink(const char *who, int dir_fd, const char *name)
{
	if (FILE_FAULT(who, "unlink") != 0)
		return -1;
	return unlinkat(dir_fd, name, 0);
}

int
file_syncfs(const char *who, int fd)
{
	if (FILE_FAULT(who, "syncfs") != 0)
		return -1;
	return syncfs(fd);
}
