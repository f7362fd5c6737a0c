/*
 * sts/cache: STATE/mta-sts/, the MTA-STS policies kept across restarts.
 * See cache.h for the directory's rules; the file format is sts.h's.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/file.h"
#include "util/util.h"
#include "sts/cache.h"
#include "sts/sts.h"

#define STS_CACHE_TMP ".tmp."

int
sts_cache_open(const char *state_dir, char *err, size_t errlen)
{
	const char *step = "open";
	int root, fd = -1;

	root = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root < 0 ||
	    file_mkdir("mta-sts", root, STS_CACHE_SUBDIR, &step) != 0 ||
	    (fd = openat(root, STS_CACHE_SUBDIR,
		 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		str_fmt_cut(err, errlen, "%s/%s: %s: %s", state_dir,
		    STS_CACHE_SUBDIR, step, strerror(errno));
	fd_close_quiet(root);
	return fd;
}

/* Read dir_fd/name whole into b (at most STS_CACHE_MAX); 0 or -1. */
static int
cache_read(int dir_fd, const char *name, struct buf *b)
{
	char chunk[8192];
	ssize_t n;
	int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return -1;
	buf_reset(b);
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || buf_append(b, chunk, (size_t)n) != 0) {
			fd_close_quiet(fd);
			if (n >= 0)
				errno = EFBIG;
			return -1;
		}
	}
	fd_close_quiet(fd);
	return 0;
}

/* One file: 0 (used or skipped), -1 for a newer format. */
static int
cache_load_one(int dir_fd, const char *name, struct buf *b,
    sts_cache_each_fn fn, void *arg, char *err, size_t errlen)
{
	struct sts_cache_rec r;
	struct sts_policy *p = xmalloc(sizeof(*p));
	enum sts_cache_status st;
	char why[256], q[300];

	log_sanitize(q, sizeof(q), name, strlen(name));
	if (cache_read(dir_fd, name, b) != 0) {
		log_warn("event=mta_sts_cache file=%s status=skipped "
			 "error=\"%s\"",
		    q, strerror(errno));
		free(p);
		return 0;
	}
	st = sts_cache_decode(
	    b->data != NULL ? b->data : "", b->len, &r, p, why, sizeof(why));
	if (st == STS_CACHE_NEWER) {
		str_fmt_cut(err, errlen,
		    "%s/%s: %s; run that tern, or remove the file (a cache: "
		    "the policy is fetched again)",
		    STS_CACHE_SUBDIR, q, why);
		free(p);
		return -1;
	}
	if (st != STS_CACHE_OK || strcmp(r.domain, name) != 0)
		log_warn("event=mta_sts_cache file=%s status=skipped "
			 "error=\"%s\"",
		    q, st != STS_CACHE_OK ? why : "named for another domain");
	else
		fn(arg, &r, p);
	free(p);
	return 0;
}

int
sts_cache_load(
    int dir_fd, sts_cache_each_fn fn, void *arg, char *err, size_t errlen)
{
	struct dirent *de;
	struct buf b;
	int rc = 0, fd = dup(dir_fd);
	DIR *dir;

	if (fd < 0 || (dir = fdopendir(fd)) == NULL) {
		fd_close_quiet(fd);
		str_fmt_cut(
		    err, errlen, "%s: %s", STS_CACHE_SUBDIR, strerror(errno));
		return -1;
	}
	rewinddir(dir);
	buf_init(&b, STS_CACHE_MAX);
	while (rc == 0 && (de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.')
			continue; /* ".", "..", a temporary file of a crash */
		rc = cache_load_one(
		    dirfd(dir), de->d_name, &b, fn, arg, err, errlen);
	}
	buf_free(&b);
	(void)closedir(dir);
	return rc;
}

int
sts_cache_store(
    int dir_fd, const struct sts_cache_rec *r, char *err, size_t errlen)
{
	char tmp[STS_NAME_MAX + 8];
	const char *step = "encode";
	struct iovec iov;
	struct buf b;
	int rc = -1;

	buf_init(&b, STS_CACHE_MAX);
	if (str_fmt(tmp, sizeof(tmp), "%s%s", STS_CACHE_TMP, r->domain) != 0 ||
	    sts_cache_encode(r, &b) != 0) {
		errno = EINVAL;
		goto out;
	}
	unlinkat_quiet(dir_fd, tmp); /* left by a crash */
	iov.iov_base = b.data;
	iov.iov_len = b.len;
	if (file_write_new(
		"mta-sts", dir_fd, tmp, &iov, 1, true, NULL, &step) != 0)
		goto out;
	step = "rename";
	if (file_rename("mta-sts", dir_fd, tmp, dir_fd, r->domain, 0) != 0) {
		unlinkat_quiet(dir_fd, tmp);
		goto out;
	}
	step = "fsync_dir";
	rc = file_sync_dir("mta-sts", dir_fd);
out:
	if (rc != 0)
		str_fmt_cut(err, errlen, "%s/%s: %s: %s", STS_CACHE_SUBDIR,
		    r->domain, step, strerror(errno));
	buf_free(&b);
	return rc;
}

int
sts_cache_remove(int dir_fd, const char *domain, char *err, size_t errlen)
{
	if (!sts_domain_ok(domain, strlen(domain)))
		return 0; /* never a name of this directory */
	if ((file_unlink("mta-sts", dir_fd, domain) != 0 && errno != ENOENT) ||
	    file_sync_dir("mta-sts", dir_fd) != 0) {
		str_fmt_cut(err, errlen, "%s/%s: remove: %s", STS_CACHE_SUBDIR,
		    domain, strerror(errno));
		return -1;
	}
	return 0;
}
