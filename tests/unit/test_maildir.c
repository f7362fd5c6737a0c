/*
 * Unit tests for src/deliver/maildir.c on a fresh mkdtemp directory
 * ($TMPDIR or /tmp).
 *
 * The Makefile links this test with the fault build of the durable-file
 * layer ($(B)/fault/src/fs/file.o, compiled with TERN_FAULT_INJECTION,
 * as in ternd-fault) ahead of the archives, so the tests can make any
 * step of maildir.c fail through file.h's hook and watch the order of
 * steps.
 */
#define TERN_FAULT_INJECTION 1 /* file.h: declare file_fault_hook */
#include "deliver/deliver.h"
#include "fs/file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "t.h"

static char tdir[PATH_MAX]; /* the mkdtemp directory */
static int root_fd = -1;    /* tdir/mail */

/* ---- helpers ------------------------------------------------------------- */

/* tdir/rel into out; the tests' paths are short, so no truncation. */
static const char *
tpath(char *out, size_t len, const char *rel)
{
	if (str_fmt(out, len, "%s/%s", tdir, rel) != 0)
		abort();
	return out;
}

/* Entries of tdir/rel besides . and .., or -1 when it cannot be opened. */
static int
count_entries(const char *rel)
{
	char p[PATH_MAX];
	struct dirent *de;
	DIR *d = opendir(tpath(p, sizeof(p), rel));
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

/* tmp/ of mail/box holds nothing (or does not exist). */
static bool
tmp_empty(const char *box)
{
	char rel[PATH_MAX];

	if (str_fmt(rel, sizeof(rel), "%s%s/tmp", box[0] == '/' ? "" : "mail/",
		box[0] == '/' ? box + strlen(tdir) + 1 : box) != 0)
		abort();
	return count_entries(rel) <= 0;
}

static int
new_count(const char *box)
{
	char rel[PATH_MAX];

	if (str_fmt(rel, sizeof(rel), "mail/%s/new", box) != 0)
		abort();
	return count_entries(rel);
}

/* stat of tdir/mail/box/new/name */
static int
stat_new(const char *box, const char *name, struct stat *st)
{
	char rel[PATH_MAX], p[PATH_MAX];

	if (str_fmt(rel, sizeof(rel), "mail/%s/new/%s", box, name) != 0)
		abort();
	return lstat(tpath(p, sizeof(p), rel), st);
}

/* The file delivered to box equals want (len bytes). */
static bool
content_is(const char *box, const char *name, const char *want, size_t len)
{
	char rel[PATH_MAX], p[PATH_MAX];
	char *got = xmalloc(len + 1);
	FILE *f;
	size_t n;
	bool ok;

	if (str_fmt(rel, sizeof(rel), "mail/%s/new/%s", box, name) != 0)
		abort();
	f = fopen(tpath(p, sizeof(p), rel), "rb");
	if (f == NULL) {
		free(got);
		return false;
	}
	n = fread(got, 1, len + 1, f);
	fclose(f);
	ok = n == len && memcmp(got, want, len) == 0;
	free(got);
	return ok;
}

static void
mkdir_rel(const char *rel)
{
	char p[PATH_MAX];

	if (mkdir(tpath(p, sizeof(p), rel), 0700) != 0)
		abort();
}

static void
symlink_rel(const char *target, const char *rel)
{
	char p[PATH_MAX];

	if (symlink(target, tpath(p, sizeof(p), rel)) != 0)
		abort();
}

static int
rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(p) : unlink(p);
}

static int
deliver1(const char *box, const char *msg, char *name, size_t nlen, char *err,
    size_t elen)
{
	struct maildir_box b = {box, NULL, NULL};
	struct iovec iov = {(void *)(uintptr_t)msg, strlen(msg)};

	return maildir_deliver(root_fd, &b, 1, &iov, 1, name, nlen, err, elen);
}

/* ---- the fault hook: rules, and a trace of every step seen --------------- */

struct rule {
	const char *step;
	int at; /* fail the at-th call of step (1-based) */
	int err;
	int calls;
};

static struct rule rules[3];
static char trace[1024];
static bool tracing;

static int
hook(const char *who, const char *step)
{
	size_t i;

	if (strcmp(who, "maildir") != 0)
		abort(); /* every step here is the Maildir's */
	if (tracing &&
	    str_fmt(trace + strlen(trace), sizeof(trace) - strlen(trace),
		"%s%s", trace[0] ? " " : "", step) != 0)
		abort();
	for (i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
		if (rules[i].step == NULL || strcmp(rules[i].step, step) != 0)
			continue;
		if (++rules[i].calls == rules[i].at)
			return rules[i].err;
	}
	return 0;
}

static void
hook_reset(void)
{
	memset(rules, 0, sizeof(rules));
	trace[0] = '\0';
	tracing = false;
	file_fault_hook = hook;
}

/* ---- tests --------------------------------------------------------------- */

static void
test_escape_host(void)
{
	char out[32];

	T_CHECK(maildir_escape_host(out, sizeof(out), "mx.example.org") == 0);
	T_CHECK_STR(out, "mx.example.org");
	T_CHECK(maildir_escape_host(out, sizeof(out), "a/b:c") == 0);
	T_CHECK_STR(out, "a\\057b\\072c");
	T_CHECK(maildir_escape_host(out, 5, "a/b") == -1);
	T_CHECK_INT(errno, ENAMETOOLONG);
	T_CHECK(maildir_escape_host(out, 4, "abc") == 0);
	T_CHECK(maildir_escape_host(out, 3, "abc") == -1);
}

/* One mailbox, made on the fly: name, content, modes, tmp/ empty. */
static void
test_one(void)
{
	const char *msg = "Subject: hi\r\n\r\nbody\r\n";
	char name[NAME_MAX + 1], err[256], host[HOST_NAME_MAX + 1];
	char esc[MAILDIR_HOST_MAX], want[512], p[PATH_MAX];
	long long secs;
	long usecs, pid;
	unsigned long q;
	int used = 0;
	struct stat st;

	T_CHECK(deliver1("one.example/ben", msg, name, sizeof(name), err,
		    sizeof(err)) == 0);
	T_CHECK_STR(err, "");
	T_CHECK(sscanf(name, "%lld.M%ldP%ldQ%lu.%n", &secs, &usecs, &pid, &q,
		    &used) == 4 &&
		used > 0);
	T_CHECK_INT(pid, getpid());
	T_CHECK(usecs >= 0 && usecs < 1000000);
	T_CHECK(gethostname(host, sizeof(host)) == 0);
	host[sizeof(host) - 1] = '\0';
	T_CHECK(maildir_escape_host(esc, sizeof(esc), host) == 0);
	T_CHECK(str_fmt(want, sizeof(want), "%s,S=%zu", esc, strlen(msg)) == 0);
	T_CHECK_STR(name + used, want);
	T_CHECK(strchr(name, ':') == NULL && strchr(name, '/') == NULL);
	T_CHECK(content_is("one.example/ben", name, msg, strlen(msg)));
	T_CHECK(stat_new("one.example/ben", name, &st) == 0);
	T_CHECK_INT(st.st_mode & 07777, 0600);
	T_CHECK(S_ISREG(st.st_mode));
	T_CHECK_INT(st.st_nlink, 1);
	T_CHECK(tmp_empty("one.example/ben"));
	T_CHECK_INT(new_count("one.example/ben"), 1);
	T_CHECK_INT(count_entries("mail/one.example/ben/cur"), 0);
	T_CHECK(stat(tpath(p, sizeof(p), "mail/one.example"), &st) == 0);
	T_CHECK_INT(st.st_mode & 07777, 0700);
	T_CHECK(
	    stat(tpath(p, sizeof(p), "mail/one.example/ben/new"), &st) == 0);
	T_CHECK_INT(st.st_mode & 07777, 0700);
	/* a second delivery gets another name, into the same mailbox */
	T_CHECK(deliver1("one.example/ben", msg, want, sizeof(want), err,
		    sizeof(err)) == 0);
	T_CHECK(strcmp(want, name) != 0);
	T_CHECK_INT(new_count("one.example/ben"), 2);
}

/* Three mailboxes: one inode, three links; the iovecs concatenated. */
static void
test_three(void)
{
	struct maildir_box b[3] = {{"three.example/a", NULL, NULL},
	    {"three.example/b", NULL, NULL}, {"other.example/c", NULL, NULL}};
	char h[] = "Received: by tern\r\n", body[] = "x\r\n", empty[] = "";
	struct iovec iov[3] = {
	    {h, strlen(h)}, {empty, 0}, {body, strlen(body)}};
	char name[NAME_MAX + 1], err[256];
	struct stat s0, s;
	int i;

	T_CHECK(maildir_deliver(root_fd, b, 3, iov, 3, name, sizeof(name), err,
		    sizeof(err)) == 0);
	T_CHECK(stat_new(b[0].path, name, &s0) == 0);
	T_CHECK_INT(s0.st_nlink, 3);
	for (i = 0; i < 3; i++) {
		T_CHECK(stat_new(b[i].path, name, &s) == 0);
		T_CHECK(s.st_ino == s0.st_ino && s.st_dev == s0.st_dev);
		T_CHECK(content_is(
		    b[i].path, name, "Received: by tern\r\nx\r\n", 22));
		T_CHECK(tmp_empty(b[i].path));
		T_CHECK_INT(new_count(b[i].path), 1);
	}
}

/* More boxes than keep descriptors open, one listed twice, many iovecs. */
static void
test_many(void)
{
	struct maildir_box b[MAILDIR_KEEP + 5] = {0};
	char paths[MAILDIR_KEEP + 5][32], name[NAME_MAX + 1], err[256];
	struct iovec iov[1500];
	char data[1500];
	size_t i, n = sizeof(b) / sizeof(b[0]);
	struct stat st;

	for (i = 0; i < n; i++) {
		T_CHECK(str_fmt(paths[i], sizeof(paths[i]), "many.example/u%zu",
			    i) == 0);
		b[i].path = paths[i];
	}
	b[n - 1].path = paths[2]; /* duplicate: linked once, no error */
	for (i = 0; i < 1500; i++) {
		data[i] = (char)('a' + i % 26);
		iov[i].iov_base = &data[i];
		iov[i].iov_len = i % 7 == 3 ? 0 : 1; /* some empty */
	}
	T_CHECK(maildir_deliver(root_fd, b, n, iov, 1500, name, sizeof(name),
		    err, sizeof(err)) == 0);
	T_CHECK_STR(err, "");
	T_CHECK(stat_new(paths[0], name, &st) == 0);
	T_CHECK_INT(st.st_nlink, n - 1);
	{
		char want[1500];
		size_t w = 0;

		for (i = 0; i < 1500; i++)
			if (iov[i].iov_len)
				want[w++] = data[i];
		T_CHECK(content_is(paths[n - 2], name, want, w));
		T_CHECK_INT(st.st_size, w);
	}
	for (i = 0; i < n; i++)
		T_CHECK(tmp_empty(paths[i]));
}

/* Durability order: each mkdir fsync'ed into its parent, all before link. */
static void
test_order(void)
{
	char name[NAME_MAX + 1], err[256];

	hook_reset();
	tracing = true;
	T_CHECK(deliver1("order.example/ben", "m\r\n", name, sizeof(name), err,
		    sizeof(err)) == 0);
	T_CHECK_STR(trace,
	    "mkdir fsync_dir mkdir fsync_dir mkdir fsync_dir "
	    "mkdir fsync_dir mkdir fsync_dir create write fsync close link "
	    "fsync_dir");
	trace[0] = '\0';
	T_CHECK(deliver1("order.example/ben", "m\r\n", name, sizeof(name), err,
		    sizeof(err)) == 0);
	T_CHECK_STR(trace, "create write fsync close link fsync_dir");
	hook_reset();
	file_fault_hook = NULL;
}

static void
test_create(void)
{
	char err[256];

	T_CHECK(maildir_create(
		    root_fd, "create.example/ann", err, sizeof(err)) == 0);
	T_CHECK_INT(count_entries("mail/create.example/ann"), 3);
	T_CHECK_INT(count_entries("mail/create.example/ann/cur"), 0);
	T_CHECK(maildir_create(
		    root_fd, "create.example/ann", err, sizeof(err)) == 0);
	T_CHECK(maildir_create(
		    root_fd, "create.example/../x", err, sizeof(err)) == -1);
	T_CHECK_INT(errno, EINVAL);
	T_CHECK_INT(count_entries("mail/x"), -1);
}

/* Paths refused before anything is touched. */
static void
test_bad_paths(void)
{
	static const char *const bad[] = {"..", "../x", "a/../b", "a/..", ".",
	    "./a", "a/./b", "a//b", "a/", "/", "", "a\nb/c", "a/b\x7f", "a/\tb",
	    "/tmp/../etc/x", "/tmp//x", "/tmp/x/"};
	char name[NAME_MAX + 1], err[256], longc[NAME_MAX + 8];
	size_t i;
	int before = count_entries("mail");

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		t_case(bad[i]);
		errno = 0;
		T_CHECK(deliver1(bad[i], "m\r\n", name, sizeof(name), err,
			    sizeof(err)) == -1);
		T_CHECK_INT(errno, EINVAL);
		T_CHECK(strncmp(err, "check path", 10) == 0);
		T_CHECK_INT(count_entries("mail"), before);
	}
	t_case("long component");
	memset(longc, 'a', sizeof(longc) - 1);
	longc[sizeof(longc) - 1] = '\0';
	T_CHECK(deliver1(longc, "m\r\n", name, sizeof(name), err,
		    sizeof(err)) == -1);
	T_CHECK_INT(errno, ENAMETOOLONG);
	t_case("null path");
	{
		struct maildir_box b = {NULL, NULL, NULL};
		struct iovec iov = {longc, 1};

		T_CHECK(maildir_deliver(root_fd, &b, 1, &iov, 1, name,
			    sizeof(name), err, sizeof(err)) == -1);
		T_CHECK_INT(errno, EINVAL);
		T_CHECK(maildir_deliver(root_fd, &b, 0, &iov, 1, name,
			    sizeof(name), err, sizeof(err)) == -1);
	}
	T_CHECK_INT(count_entries("mail"), before);
}

/* Is err the symlink refusal for box? */
static bool
is_symlink_err(const char *err, const char *box)
{
	return strstr(err, box) != NULL &&
	       strstr(err, "symbolic link refused") != NULL &&
	       strncmp(err, "open ", 5) == 0;
}

/* A symlink anywhere in the path fails the delivery; nothing goes through. */
static void
rename_rel(const char *from, const char *to)
{
	char p[PATH_MAX], q[PATH_MAX];

	if (rename(tpath(p, sizeof(p), from), tpath(q, sizeof(q), to)) != 0)
		abort();
}

/*
 * The mailbox cache (maildir.c) keeps tmp/ and new/ open between
 * deliveries: a mailbox renamed, removed or replaced by a symlink since
 * must be walked afresh, never written through the old descriptors.
 */
static void
test_cached_box(void)
{
	char name[NAME_MAX + 1], err[256], p[PATH_MAX], rel[PATH_MAX];

	t_case("cached mailbox renamed away");
	T_CHECK(deliver1("cache.example/ann", "m1", name, sizeof(name), err,
		    sizeof(err)) == 0);
	rename_rel("mail/cache.example/ann", "mail/cache.example/ann.old");
	T_CHECK(deliver1("cache.example/ann", "m2", name, sizeof(name), err,
		    sizeof(err)) == 0);
	T_CHECK_INT(new_count("cache.example/ann"), 1);
	T_CHECK(content_is("cache.example/ann", name, "m2", 2));
	T_CHECK_INT(new_count("cache.example/ann.old"), 1);

	t_case("cached mailbox removed");
	if (str_fmt(rel, sizeof(rel), "%s/mail/cache.example/ann", tdir) != 0)
		abort();
	T_CHECK(nftw(rel, rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0);
	T_CHECK(deliver1("cache.example/ann", "m3", name, sizeof(name), err,
		    sizeof(err)) == 0);
	T_CHECK_INT(new_count("cache.example/ann"), 1);
	T_CHECK(content_is("cache.example/ann", name, "m3", 2));

	t_case("cached mailbox replaced by a symlink");
	mkdir_rel("elsewhere");
	mkdir_rel("elsewhere/tmp");
	mkdir_rel("elsewhere/new");
	mkdir_rel("elsewhere/cur");
	rename_rel("mail/cache.example/ann", "mail/cache.example/ann.2");
	symlink_rel(tpath(p, sizeof(p), "elsewhere"), "mail/cache.example/ann");
	T_CHECK(deliver1("cache.example/ann", "m4", name, sizeof(name), err,
		    sizeof(err)) == -1);
	T_CHECK_INT(errno, ELOOP);
	T_CHECK_INT(count_entries("elsewhere/new"), 0);
	T_CHECK_INT(new_count("cache.example/ann.2"), 1);

	t_case("cached new/ replaced by a symlink");
	T_CHECK(deliver1("cache.example/bob", "m5", name, sizeof(name), err,
		    sizeof(err)) == 0);
	rename_rel("mail/cache.example/bob/new", "mail/cache.example/bob/n2");
	symlink_rel(
	    tpath(p, sizeof(p), "elsewhere/new"), "mail/cache.example/bob/new");
	T_CHECK(deliver1("cache.example/bob", "m6", name, sizeof(name), err,
		    sizeof(err)) == -1);
	T_CHECK_INT(errno, ELOOP);
	T_CHECK_INT(count_entries("elsewhere/new"), 0);
	T_CHECK_INT(count_entries("mail/cache.example/bob/n2"), 1);
}

static void
test_symlinks(void)
{
	char name[NAME_MAX + 1], err[256], p[PATH_MAX], q[PATH_MAX];

	mkdir_rel("outside");
	mkdir_rel("outside/tmp");
	mkdir_rel("outside/new");
	mkdir_rel("outside/cur");
	tpath(p, sizeof(p), "outside");

	t_case("domain symlink");
	symlink_rel(p, "mail/evil.example");
	T_CHECK(deliver1("evil.example/ben", "m", name, sizeof(name), err,
		    sizeof(err)) == -1);
	T_CHECK_INT(errno, ELOOP);
	T_CHECK(is_symlink_err(err, "evil.example/ben"));
	T_CHECK_INT(count_entries("outside"), 3);

	t_case("mailbox symlink");
	mkdir_rel("mail/sym.example");
	symlink_rel(p, "mail/sym.example/ben");
	T_CHECK(deliver1("sym.example/ben", "m", name, sizeof(name), err,
		    sizeof(err)) == -1);
	T_CHECK_INT(errno, ELOOP);
	T_CHECK(is_symlink_err(err, "sym.example/ben"));

	t_case("tmp symlink");
	mkdir_rel("mail/sym.example/tom");
	mkdir_rel("mail/sym.example/tom/new");
	mkdir_rel("mail/sym.example/tom/cur");
	symlink_rel(
	    tpath(q, sizeof(q), "outside/tmp"), "mail/sym.example/tom/tmp");
	T_CHECK(deliver1("sym.example/tom", "m", name, sizeof(name), err,
		    sizeof(err)) == -1);
	T_CHECK_INT(errno, ELOOP);
	T_CHECK(is_symlink_err(err, "sym.example/tom"));
	T_CHECK(strstr(err, "tmp/") != NULL);
	T_CHECK_INT(new_count("sym.example/tom"), 0);

	t_case("new symlink");
	mkdir_rel("mail/sym.example/nat");
	mkdir_rel("mail/sym.example/nat/tmp");
	mkdir_rel("mail/sym.example/nat/cur");
	symlink_rel(
	    tpath(q, sizeof(q), "outside/new"), "mail/sym.example/nat/new");
	T_CHECK(deliver1("sym.example/nat", "m", name, sizeof(name), err,
		    sizeof(err)) == -1);
	T_CHECK_INT(errno, ELOOP);
	T_CHECK(strstr(err, "new/") != NULL);
	T_CHECK(tmp_empty("sym.example/nat"));

	t_case("dangling symlink");
	symlink_rel("/nonexistent-tern-target", "mail/sym.example/gone");
	T_CHECK(deliver1("sym.example/gone", "m", name, sizeof(name), err,
		    sizeof(err)) == -1);
	T_CHECK_INT(errno, ELOOP);
	T_CHECK(access("/nonexistent-tern-target", F_OK) != 0);

	t_case("absolute last component symlink");
	symlink_rel(p, "abslink");
	T_CHECK(deliver1(tpath(q, sizeof(q), "abslink"), "m", name,
		    sizeof(name), err, sizeof(err)) == -1);
	T_CHECK_INT(errno, ELOOP);

	t_case("nothing written outside");
	T_CHECK_INT(count_entries("outside"), 3);
	T_CHECK_INT(count_entries("outside/tmp"), 0);
	T_CHECK_INT(count_entries("outside/new"), 0);
	T_CHECK_INT(count_entries("outside/cur"), 0);
}

/* Absolute paths: made when missing; symlinks above the last are fine. */
static void
test_absolute(void)
{
	char name[NAME_MAX + 1], err[256], p[PATH_MAX], home[PATH_MAX];
	struct stat st;

	mkdir_rel("home");
	symlink_rel(tpath(home, sizeof(home), "home"), "homelink");
	T_CHECK(deliver1(tpath(p, sizeof(p), "homelink/Maildir"), "abs\n", name,
		    sizeof(name), err, sizeof(err)) == 0);
	T_CHECK_STR(err, "");
	T_CHECK_INT(count_entries("home/Maildir/new"), 1);
	T_CHECK(tmp_empty(tpath(p, sizeof(p), "home/Maildir")));
	T_CHECK(str_fmt(p, sizeof(p), "%s/Maildir/new/%s", home, name) == 0);
	T_CHECK(stat(p, &st) == 0 && st.st_size == 4);
	/* missing parent: not made */
	T_CHECK(deliver1(tpath(p, sizeof(p), "nohome/Maildir"), "abs\n", name,
		    sizeof(name), err, sizeof(err)) == -1);
	T_CHECK_INT(errno, ENOENT);
	T_CHECK(strstr(err, "parent directory") != NULL);
}

/* EXDEV from link: a copy written into that mailbox's tmp/ and linked. */
static void
test_exdev(void)
{
	struct maildir_box b[3] = {{"xdev.example/a", NULL, NULL},
	    {"xdev.example/b", NULL, NULL}, {"xdev.example/c", NULL, NULL}};
	struct iovec iov = {(char *)(uintptr_t) "copy me\r\n", 9};
	char name[NAME_MAX + 1], err[256];
	struct stat sa, sb, sc;
	int i;

	hook_reset();
	rules[0] = (struct rule){"link", 2, EXDEV, 0};
	T_CHECK(maildir_deliver(root_fd, b, 3, &iov, 1, name, sizeof(name), err,
		    sizeof(err)) == 0);
	T_CHECK(stat_new(b[0].path, name, &sa) == 0);
	T_CHECK(stat_new(b[1].path, name, &sb) == 0);
	T_CHECK(stat_new(b[2].path, name, &sc) == 0);
	T_CHECK(sa.st_ino == sc.st_ino && sa.st_ino != sb.st_ino);
	T_CHECK_INT(sa.st_nlink, 2);
	T_CHECK_INT(sb.st_nlink, 1);
	T_CHECK_INT(sb.st_mode & 07777, 0600);
	for (i = 0; i < 3; i++) {
		T_CHECK(content_is(b[i].path, name, "copy me\r\n", 9));
		T_CHECK(tmp_empty(b[i].path));
	}

	t_case("exdev copy fails");
	hook_reset();
	rules[0] = (struct rule){"link", 2, EXDEV, 0};
	rules[1] = (struct rule){"write", 2, ENOSPC, 0};
	T_CHECK(maildir_deliver(root_fd, b, 3, &iov, 1, name, sizeof(name), err,
		    sizeof(err)) == -1);
	T_CHECK_INT(errno, ENOSPC);
	T_CHECK(strstr(err, "xdev.example/b") != NULL);
	for (i = 0; i < 3; i++)
		T_CHECK(tmp_empty(b[i].path));
	T_CHECK_INT(new_count(b[0].path), 2); /* at least once */
	T_CHECK_INT(new_count(b[1].path), 1);

	t_case("exdev copy link fails");
	hook_reset();
	rules[0] = (struct rule){"link", 2, EXDEV, 0};
	rules[1] = (struct rule){"link", 3, EIO, 0};
	T_CHECK(maildir_deliver(root_fd, b, 3, &iov, 1, name, sizeof(name), err,
		    sizeof(err)) == -1);
	T_CHECK_INT(errno, EIO);
	for (i = 0; i < 3; i++)
		T_CHECK(tmp_empty(b[i].path));
	file_fault_hook = NULL;
}

/* The err text expected to start a failure of each hook step. */
static const char *
step_word(const char *step)
{
	return strcmp(step, "fsync_dir") == 0 ? "fsync " : step;
}

/*
 * One injected failure: the k-th call of step fails with ENOSPC.  Returns
 * false once the delivery no longer reaches a k-th call (it then succeeds).
 */
static bool
fault_once(const char *step, int si, int k)
{
	char paths[3][64], name[NAME_MAX + 1], err[256], es[128];
	struct maildir_box b[3] = {0};
	struct iovec iov = {(char *)(uintptr_t) "faulty\r\n", 8};
	int i, r, saved;

	for (i = 0; i < 3; i++) {
		T_CHECK(str_fmt(paths[i], sizeof(paths[i]), "f%d-%d.example/%s",
			    si, k,
			    i == 2 ? "c/deep"
			    : i	   ? "b"
				   : "a") == 0);
		b[i].path = paths[i];
	}
	hook_reset();
	rules[0] = (struct rule){step, k, ENOSPC, 0};
	r = maildir_deliver(
	    root_fd, b, 3, &iov, 1, name, sizeof(name), err, sizeof(err));
	saved = errno;
	file_fault_hook = NULL;
	for (i = 0; i < 3; i++)
		T_CHECK(tmp_empty(paths[i]));
	if (r == 0) {
		T_CHECK(rules[0].calls < k);
		return false;
	}
	T_CHECK_INT(saved, ENOSPC);
	T_CHECK(strncmp(err, step_word(step), strlen(step_word(step))) == 0);
	T_CHECK(strstr(err, strerror_r(ENOSPC, es, sizeof(es))) != NULL);
	T_CHECK(strstr(err, ".example/") != NULL);
	if (strcmp(step, "link") != 0 && strcmp(step, "fsync_dir") != 0)
		for (i = 0; i < 3; i++)
			T_CHECK(new_count(paths[i]) <= 0);
	return true;
}

static void
test_faults(void)
{
	static const char *const steps[] = {
	    "mkdir", "fsync_dir", "create", "write", "fsync", "close", "link"};
	char label[64];
	size_t si;
	int k;

	for (si = 0; si < sizeof(steps) / sizeof(steps[0]); si++) {
		for (k = 1; k < 100; k++) {
			bool failed;

			if (str_fmt(label, sizeof(label), "fault %s #%d",
				steps[si], k) != 0)
				abort();
			t_case(label);
			failed = fault_once(steps[si], (int)si, k);
			if (!failed)
				break;
		}
		T_CHECK(k > 1); /* every step failed at least once */
	}
}

/* EINTR from writev is resumed, not a failure. */
static void
test_eintr(void)
{
	char name[NAME_MAX + 1], err[256];

	hook_reset();
	rules[0] = (struct rule){"write", 1, EINTR, 0};
	T_CHECK(deliver1("eintr.example/a", "resumed\n", name, sizeof(name),
		    err, sizeof(err)) == 0);
	T_CHECK(content_is("eintr.example/a", name, "resumed\n", 8));
	T_CHECK_INT(rules[0].calls, 2);
	file_fault_hook = NULL;
}

/* A short write (file size limit) is resumed, then its error reported. */
static void
test_short_write(void)
{
	struct rlimit old, lim;
	char name[NAME_MAX + 1], err[256], *big = xmalloc(3000);
	struct iovec iov[2] = {{big, 1500}, {big + 1500, 1500}};
	struct maildir_box b = {"short.example/a", NULL, NULL};
	int r;

	memset(big, 'z', 3000);
	T_CHECK(maildir_create(root_fd, b.path, err, sizeof(err)) == 0);
	signal(SIGXFSZ, SIG_IGN);
	T_CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0);
	lim = old;
	lim.rlim_cur = 1000;
	T_CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
	r = maildir_deliver(
	    root_fd, &b, 1, iov, 2, name, sizeof(name), err, sizeof(err));
	T_CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0);
	T_CHECK(r == -1);
	T_CHECK_INT(errno, EFBIG);
	T_CHECK(strncmp(err, "write file in tmp/ of short.example/a", 37) == 0);
	T_CHECK(tmp_empty(b.path));
	T_CHECK_INT(new_count(b.path), 0);
	free(big);
}

/* The caller's name buffer too small: refused before anything is left. */
static void
test_small_name(void)
{
	char name[8], err[256];

	T_CHECK(deliver1("small.example/a", "m", name, sizeof(name), err,
		    sizeof(err)) == -1);
	T_CHECK_INT(errno, ERANGE);
	T_CHECK(tmp_empty("small.example/a"));
	T_CHECK_INT(new_count("small.example/a"), 0);
	/* a tiny err buffer is cut (marked "..."), never overrun */
	T_CHECK(deliver1("..", "m", name, sizeof(name), err, 5) == -1);
	T_CHECK_STR(err, "c...");
}

/* ---- threads: unique names under concurrency ----------------------------- */

#define T_THREADS    4
#define T_PER_THREAD 1000

static char (*names)[NAME_MAX + 1];
static atomic_int thread_failures;

static void *
deliver_thread(void *arg)
{
	size_t t = (size_t)(uintptr_t)arg, i;
	char err[256], msg[64];

	for (i = 0; i < T_PER_THREAD; i++) {
		if (str_fmt(msg, sizeof(msg), "t%zu m%zu\r\n", t, i) != 0 ||
		    deliver1("threads.example/all", msg,
			names[t * T_PER_THREAD + i], NAME_MAX + 1, err,
			sizeof(err)) != 0) {
			fprintf(stderr, "thread %zu: %s\n", t, err);
			atomic_fetch_add(&thread_failures, 1);
		}
	}
	return NULL;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void
test_threads(void)
{
	pthread_t th[T_THREADS];
	size_t i, dup = 0, n = T_THREADS * T_PER_THREAD;

	names = xcalloc(n, NAME_MAX + 1);
	for (i = 0; i < T_THREADS; i++)
		T_CHECK(pthread_create(&th[i], NULL, deliver_thread,
			    (void *)(uintptr_t)i) == 0);
	for (i = 0; i < T_THREADS; i++)
		T_CHECK(pthread_join(th[i], NULL) == 0);
	T_CHECK_INT(atomic_load(&thread_failures), 0);
	qsort(names, n, NAME_MAX + 1, name_cmp);
	for (i = 1; i < n; i++)
		if (strcmp(names[i - 1], names[i]) == 0)
			dup++;
	T_CHECK_INT(dup, 0);
	T_CHECK_INT(new_count("threads.example/all"), n);
	T_CHECK(tmp_empty("threads.example/all"));
	free(names);
}

static void
setup(void)
{
	const char *base = getenv("TMPDIR");
	char p[PATH_MAX];

	umask(022);
	if (str_fmt(tdir, sizeof(tdir), "%s/tern-maildir-XXXXXX",
		base && *base ? base : "/tmp") != 0 ||
	    mkdtemp(tdir) == NULL) {
		perror("mkdtemp");
		exit(2);
	}
	mkdir_rel("mail");
	root_fd = open(tpath(p, sizeof(p), "mail"), O_RDONLY | O_DIRECTORY);
	if (root_fd < 0)
		abort();
}

/* Group commit: stage writes tmp/ only, publish links, abort cleans up. */
static void
test_staged(void)
{
	struct maildir_box b[2] = {
	    {"staged.example/a", NULL, NULL}, {"staged.example/b", NULL, NULL}};
	char body[] = "Subject: s\r\n\r\nstaged\r\n";
	struct iovec iov[1] = {{body, strlen(body)}};
	char name[NAME_MAX + 1], err[256];
	struct maildir_staged *st;
	int i;

	st = maildir_stage(
	    root_fd, b, 2, iov, 1, name, sizeof(name), err, sizeof(err));
	T_CHECK(st != NULL);
	if (st == NULL)
		return;
	T_CHECK(!tmp_empty(b[0].path)); /* written, not yet visible */
	T_CHECK_INT(new_count(b[0].path), 0);
	T_CHECK_INT(new_count(b[1].path), 0);
	T_CHECK(maildir_publish(st, err, sizeof(err)) == 0);
	for (i = 0; i < 2; i++) {
		T_CHECK(content_is(b[i].path, name, body, strlen(body)));
		T_CHECK(tmp_empty(b[i].path));
		T_CHECK_INT(new_count(b[i].path), 1);
	}
	st = maildir_stage(
	    root_fd, b, 1, iov, 1, name, sizeof(name), err, sizeof(err));
	T_CHECK(st != NULL);
	maildir_abort(st);
	T_CHECK(tmp_empty(b[0].path));
	T_CHECK_INT(new_count(b[0].path), 1);
}

/* A Maildir++ folder (.Junk): made with the mailbox's own tmp/new/cur, its
 * own and the maildirfolder file; the INBOX stays empty; bad names refused. */
static void
test_folder(void)
{
	const char *msg = "Subject: junk\r\n\r\nbody\r\n";
	char name[NAME_MAX + 1], err[256], p[PATH_MAX];
	struct maildir_box b = {"folder.example/ben", ".Junk", NULL};
	struct iovec iov = {(void *)(uintptr_t)msg, strlen(msg)};
	struct stat st;
	static const char *const bad[] = {"Junk", ".", "..", ".a/b", ""};

	T_CHECK(maildir_deliver(root_fd, &b, 1, &iov, 1, name, sizeof(name),
		    err, sizeof(err)) == 0);
	T_CHECK_STR(err, "");
	T_CHECK(content_is("folder.example/ben/.Junk", name, msg, strlen(msg)));
	T_CHECK(stat(tpath(p, sizeof(p),
			 "mail/folder.example/ben/.Junk/maildirfolder"),
		    &st) == 0 &&
		S_ISREG(st.st_mode));
	T_CHECK_INT(count_entries("mail/folder.example/ben/new"), 0);
	T_CHECK_INT(count_entries("mail/folder.example/ben/cur"), 0);
	T_CHECK_INT(count_entries("mail/folder.example/ben/tmp"), 0);
	T_CHECK_INT(count_entries("mail/folder.example/ben/.Junk/cur"), 0);
	/* a second one finds everything made */
	T_CHECK(maildir_deliver(root_fd, &b, 1, &iov, 1, name, sizeof(name),
		    err, sizeof(err)) == 0);
	T_CHECK_INT(count_entries("mail/folder.example/ben/.Junk/new"), 2);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		b.folder = bad[i];
		T_CHECK(maildir_deliver(root_fd, &b, 1, &iov, 1, name,
			    sizeof(name), err, sizeof(err)) == -1);
		T_CHECK_INT(errno, EINVAL);
	}
}

/* Plus-addressing's optional folder: the INBOX while it does not exist
 * (never made), the folder once it does, even with the mailbox cached;
 * a symlink in its place is refused. */
static void
test_subfolder(void)
{
	const char *msg = "Subject: plus\r\n\r\nbody\r\n";
	char name[NAME_MAX + 1], err[256], p[PATH_MAX];
	struct maildir_box b = {"sub.example/ben", NULL, ".shop"};
	struct iovec iov = {(void *)(uintptr_t)msg, strlen(msg)};
	struct stat st;

	T_CHECK(maildir_deliver(root_fd, &b, 1, &iov, 1, name, sizeof(name),
		    err, sizeof(err)) == 0);
	T_CHECK_INT(count_entries("mail/sub.example/ben/new"), 1);
	T_CHECK(
	    stat(tpath(p, sizeof(p), "mail/sub.example/ben/.shop"), &st) != 0);
	/* the folder made (as a mail client does): the next one goes there */
	T_CHECK(mkdir(tpath(p, sizeof(p), "mail/sub.example/ben/.shop"),
		    0700) == 0);
	T_CHECK(maildir_deliver(root_fd, &b, 1, &iov, 1, name, sizeof(name),
		    err, sizeof(err)) == 0);
	T_CHECK(content_is("sub.example/ben/.shop", name, msg, strlen(msg)));
	T_CHECK_INT(count_entries("mail/sub.example/ben/new"), 1);
	b.subfolder = ".evil";
	T_CHECK(symlink("/tmp",
		    tpath(p, sizeof(p), "mail/sub.example/ben/.evil")) == 0);
	T_CHECK(maildir_deliver(root_fd, &b, 1, &iov, 1, name, sizeof(name),
		    err, sizeof(err)) == -1);
	b.subfolder = "..";
	T_CHECK(maildir_deliver(root_fd, &b, 1, &iov, 1, name, sizeof(name),
		    err, sizeof(err)) == -1);
	T_CHECK_INT(errno, EINVAL);
}

int
main(void)
{
	setup();
	T_RUN(test_subfolder);
	T_RUN(test_escape_host);
	T_RUN(test_one);
	T_RUN(test_three);
	T_RUN(test_many);
	T_RUN(test_order);
	T_RUN(test_create);
	T_RUN(test_bad_paths);
	T_RUN(test_symlinks);
	T_RUN(test_cached_box);
	T_RUN(test_absolute);
	T_RUN(test_exdev);
	T_RUN(test_faults);
	T_RUN(test_eintr);
	T_RUN(test_short_write);
	T_RUN(test_small_name);
	T_RUN(test_threads);
	T_RUN(test_staged);
	T_RUN(test_folder);
	close(root_fd);
	if (getenv("TERN_KEEP_TMP") == NULL)
		(void)nftw(tdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return t_summary();
}
