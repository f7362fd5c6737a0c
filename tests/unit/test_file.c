/*
 * Unit tests for src/fs/file.c (durable files) in a fresh mkdtemp
 * directory ($TMPDIR or /tmp).
 *
 * The Makefile links this test with the fault build of file.c
 * ($(B)/fault/src/fs/file.o, compiled with TERN_FAULT_INJECTION, as in
 * ternd-fault) ahead of the archives, so the tests see every step through
 * the fault hook file.h declares: which steps run, in which order, under
 * which who, and what a failure at each leaves behind.
 */
#define TERN_FAULT_INJECTION 1 /* file.h: declare file_fault_hook */
#include "fs/file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "t.h"

static char tdir[PATH_MAX];
static int dir_fd = -1;

/* ---- the hook: a trace of "who:step", and one step to fail ------------- */

static char trace[512];
static const char *fail_step; /* NULL: none */
static int fail_at;	      /* its fail_at-th call fails (1-based) */
static int fail_calls;

static int
hook(const char *who, const char *step)
{
	if (str_fmt(trace + strlen(trace), sizeof(trace) - strlen(trace),
		"%s%s:%s", trace[0] ? " " : "", who, step) != 0)
		abort();
	if (fail_step != NULL && strcmp(step, fail_step) == 0 &&
	    ++fail_calls == fail_at)
		return EIO;
	return 0;
}

static void
hook_reset(const char *step, int at)
{
	trace[0] = '\0';
	fail_step = step;
	fail_at = at;
	fail_calls = 0;
	file_fault_hook = hook;
}

static bool
exists(int fd, const char *name)
{
	struct stat st;

	return fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* The content of dir_fd/name into out (NUL-terminated); its length. */
static ssize_t
slurp(const char *name, char *out, size_t outlen)
{
	int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, out, outlen - 1);
	(void)close(fd);
	if (n >= 0)
		out[n] = '\0';
	return n;
}

/* ---- tests --------------------------------------------------------------- */

/* Many iovecs (more than one writev's worth, some empty) arrive in order. */
static void
test_write_many_iovecs(void)
{
	static char data[300], got[400];
	struct iovec iov[300];
	const char *step;
	size_t i, w = 0;
	char want[300];

	for (i = 0; i < 300; i++) {
		data[i] = (char)('a' + i % 26);
		iov[i].iov_base = &data[i];
		iov[i].iov_len = i % 5 == 2 ? 0 : 1;
		if (iov[i].iov_len)
			want[w++] = data[i];
	}
	hook_reset(NULL, 0);
	T_CHECK(file_write_new(
		    "t", dir_fd, "many", iov, 300, true, NULL, &step) == 0);
	T_CHECK_INT(slurp("many", got, sizeof(got)), w);
	T_CHECK(memcmp(got, want, w) == 0);
	/* 300 iovecs are at least five writev calls of 64 */
	T_CHECK(
	    strstr(trace, "t:write t:write t:write t:write t:write") != NULL);
}

/* The steps and their order; sync=false leaves the fsync out. */
static void
test_write_new_steps(void)
{
	struct iovec iov = {(void *)"x\n", 2};
	struct stat st;
	const char *step;

	hook_reset(NULL, 0);
	T_CHECK(file_write_new(
		    "maildir", dir_fd, "a", &iov, 1, true, &st, &step) == 0);
	T_CHECK_STR(trace, "maildir:create maildir:write maildir:fsync "
			   "maildir:close");
	T_CHECK_INT(st.st_size, 2);
	T_CHECK_INT(st.st_mode & 07777, 0600);
	hook_reset(NULL, 0);
	T_CHECK(file_write_new(
		    "spool", dir_fd, "b", &iov, 1, false, NULL, &step) == 0);
	T_CHECK_STR(trace, "spool:create spool:write spool:close");
}

/* file_write_new_mode: exactly the mode whatever the umask, the same
 * steps, and nothing left when a step fails. */
static void
test_write_new_mode(void)
{
	struct iovec iov = {(void *)"cert\n", 5};
	struct stat st;
	const char *step;
	mode_t old = umask(077);

	hook_reset(NULL, 0);
	T_CHECK(file_write_new_mode(
		    "tls", dir_fd, "m", 0644, &iov, 1, true, &st, &step) == 0);
	T_CHECK_STR(trace, "tls:create tls:write tls:fsync tls:close");
	T_CHECK_INT(st.st_mode & 07777, 0644);
	T_CHECK_INT(st.st_size, 5);
	hook_reset("fsync", 1);
	T_CHECK_INT(file_write_new_mode(
			"tls", dir_fd, "n", 0644, &iov, 1, true, NULL, &step),
	    -1);
	T_CHECK_STR(step, "fsync");
	T_CHECK(!exists(dir_fd, "n"));
	umask(old);
}

/* A failure at each step: -1, its errno, its step, and no file left. */
static void
test_write_new_fails_cleanly(void)
{
	static const char *const steps[] = {
	    "create", "write", "fsync", "close"};
	struct iovec iov = {(void *)"y\n", 2};
	const char *step;
	size_t i;

	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		hook_reset(steps[i], 1);
		errno = 0;
		T_CHECK_INT(file_write_new(
				"t", dir_fd, "f", &iov, 1, true, NULL, &step),
		    -1);
		T_CHECK_INT(errno, EIO);
		T_CHECK_STR(step, steps[i]);
		T_CHECK(!exists(dir_fd, "f"));
	}
}

/* O_EXCL: a name that exists is someone else's, never touched. */
static void
test_write_new_exclusive(void)
{
	struct iovec one = {(void *)"first", 5}, two = {(void *)"2nd", 3};
	const char *step;
	char got[16];

	hook_reset(NULL, 0);
	T_CHECK(
	    file_write_new("t", dir_fd, "x", &one, 1, true, NULL, &step) == 0);
	T_CHECK_INT(
	    file_write_new("t", dir_fd, "x", &two, 1, true, NULL, &step), -1);
	T_CHECK_INT(errno, EEXIST);
	T_CHECK_STR(step, "create");
	T_CHECK_INT(slurp("x", got, sizeof(got)), 5);
	T_CHECK_STR(got, "first");
	/* nor through a symlink */
	T_CHECK(symlinkat("x", dir_fd, "sym") == 0);
	T_CHECK_INT(
	    file_write_new("t", dir_fd, "sym", &two, 1, true, NULL, &step), -1);
	T_CHECK_INT(errno, EEXIST);
}

/* link + fsync of the target directory; a failed fsync takes it back. */
static void
test_link(void)
{
	struct iovec iov = {(void *)"z", 1};
	const char *step;

	hook_reset(NULL, 0);
	T_CHECK(file_write_new(
		    "t", dir_fd, "src", &iov, 1, true, NULL, &step) == 0);
	hook_reset(NULL, 0);
	T_CHECK(file_link("t", dir_fd, "src", dir_fd, "l1", true, &step) == 0);
	T_CHECK_STR(trace, "t:link t:fsync_dir");
	T_CHECK(exists(dir_fd, "l1"));
	hook_reset(NULL, 0);
	T_CHECK(file_link("t", dir_fd, "src", dir_fd, "l2", false, &step) == 0);
	T_CHECK_STR(trace, "t:link");
	hook_reset("fsync_dir", 1);
	T_CHECK_INT(
	    file_link("t", dir_fd, "src", dir_fd, "l3", true, &step), -1);
	T_CHECK_INT(errno, EIO);
	T_CHECK_STR(step, "fsync");
	T_CHECK(!exists(dir_fd, "l3") && exists(dir_fd, "src"));
	hook_reset(NULL, 0);
	T_CHECK_INT(
	    file_link("t", dir_fd, "src", dir_fd, "l1", true, &step), -1);
	T_CHECK_INT(errno, EEXIST);
	T_CHECK_STR(step, "link");
}

/* mkdir + fsync of the parent, EEXIST included. */
static void
test_mkdir(void)
{
	struct stat st;
	const char *step;

	hook_reset(NULL, 0);
	T_CHECK(file_mkdir("t", dir_fd, "d", &step) == 0);
	T_CHECK_STR(trace, "t:mkdir t:fsync_dir");
	T_CHECK(fstatat(dir_fd, "d", &st, 0) == 0 && S_ISDIR(st.st_mode));
	T_CHECK_INT(st.st_mode & 0077, 0);
	hook_reset(NULL, 0);
	T_CHECK(file_mkdir("t", dir_fd, "d", &step) == 0);
	T_CHECK_STR(trace, "t:mkdir t:fsync_dir"); /* synced again */
	hook_reset("mkdir", 1);
	T_CHECK_INT(file_mkdir("t", dir_fd, "e", &step), -1);
	T_CHECK_STR(step, "mkdir");
	hook_reset("fsync_dir", 1);
	T_CHECK_INT(file_mkdir("t", dir_fd, "e", &step), -1);
	T_CHECK_INT(errno, EIO);
	T_CHECK_STR(step, "fsync");
}

/* rename, unlink, syncfs: one step each, failing with the hook's errno. */
static void
test_single_steps(void)
{
	struct iovec iov = {(void *)"r", 1};
	const char *step;

	hook_reset(NULL, 0);
	T_CHECK(file_write_new(
		    "t", dir_fd, "r1", &iov, 1, false, NULL, &step) == 0);
	hook_reset(NULL, 0);
	T_CHECK(file_rename(
		    "t", dir_fd, "r1", dir_fd, "r2", RENAME_NOREPLACE) == 0);
	T_CHECK(file_unlink("t", dir_fd, "r2") == 0);
	T_CHECK(file_syncfs("t", dir_fd) == 0);
	T_CHECK(file_sync_dir("t", dir_fd) == 0);
	T_CHECK_STR(trace, "t:rename t:unlink t:syncfs t:fsync_dir");
	T_CHECK_INT(file_unlink("t", dir_fd, "r2"), -1);
	T_CHECK_INT(errno, ENOENT);
	hook_reset("syncfs", 1);
	T_CHECK_INT(file_syncfs("t", dir_fd), -1);
	T_CHECK_INT(errno, EIO);
}

static int
setup(void)
{
	const char *base = getenv("TMPDIR");

	if (str_fmt(tdir, sizeof(tdir), "%s/tern-file-XXXXXX",
		base && *base ? base : "/tmp") != 0 ||
	    mkdtemp(tdir) == NULL ||
	    (dir_fd = open(tdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		perror("setup");
		return -1;
	}
	return 0;
}

/* The directory holds only files and one level of directories. */
static void
teardown(void)
{
	struct dirent *de;
	DIR *d = fdopendir(dir_fd);

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' &&
		    unlinkat(dirfd(d), de->d_name, 0) != 0)
			(void)unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR);
	(void)closedir(d);
	(void)rmdir(tdir);
}

int
main(void)
{
	if (setup() != 0)
		return 1;
	T_RUN(test_write_many_iovecs);
	T_RUN(test_write_new_steps);
	T_RUN(test_write_new_fails_cleanly);
	T_RUN(test_write_new_mode);
	T_RUN(test_write_new_exclusive);
	T_RUN(test_link);
	T_RUN(test_mkdir);
	T_RUN(test_single_steps);
	teardown();
	return t_summary();
}
