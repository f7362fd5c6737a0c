/*
 * Unit tests for src/queue/logspool.c, the log-structured queue, on a
 * fresh mkdtemp directory per test ($TMPDIR or /tmp), with segments of
 * 256 KiB (lspool_seg_size), so rolling, freeing and compaction happen
 * after a hundred messages or so.
 *
 * The legacy queue the import test reads is written by the file spool
 * (src/queue/spool.c, the spool ternd runs today), the real previous
 * format, not a copy of it.
 *
 * The Makefile links the fault build of logspool.c and fs/file.c
 * ($(B)/fault/, as ternd-fault) ahead of the archives, so the tests can
 * make any durable step of the log fail through file.h's hook.
 *
 * `test_logspool --bench N` measures instead: N 2 KiB messages committed
 * by 16 threads (fdatasyncs per commit), then lspool_open over them after
 * the page cache is dropped (as root) and lspool_scan.
 */
#define TERN_FAULT_INJECTION 1 /* file.h: declare file_fault_hook */
#include "queue/logspool.h"
#include "queue/queue.h"
#include "fs/file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include "t.h"

static char tdir[PATH_MAX];

static int
rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static void
setup(void)
{
	const char *t = getenv("TMPDIR");

	if (str_fmt(tdir, sizeof(tdir), "%s/tern-lspool-XXXXXX",
		t != NULL ? t : "/tmp") != 0 ||
	    mkdtemp(tdir) == NULL)
		abort();
}

static void
teardown(void)
{
	(void)nftw(tdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *
qpath(char *out, size_t len, const char *rel)
{
	if (str_fmt(out, len, "%s/queue/%s", tdir, rel) != 0)
		abort();
	return out;
}

static int
count(const char *rel)
{
	char p[PATH_MAX];
	struct dirent *de;
	DIR *d = opendir(qpath(p, sizeof(p), rel));
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static void
mk_env(struct queue_env *e, const char *rcpt)
{
	queue_env_init(e);
	(void)!str_copy(e->sender, sizeof(e->sender), "claire@example.org", 18);
	(void)!str_copy(e->helo, sizeof(e->helo), "laptop.example.org", 18);
	(void)!str_copy(e->ip, sizeof(e->ip), "192.0.2.7", 9);
	(void)!str_copy(e->proto, sizeof(e->proto), "ESMTPSA", 7);
	if (queue_env_add_rcpt(e, rcpt) == NULL)
		abort();
}

/* Commit a message whose content is body (repeated to n octets). */
static int
commit(struct lspool *sp, char id[QUEUE_ID_LEN + 1], const char *body, size_t n)
{
	struct queue_env e;
	char *c = xmalloc(n + 1), err[256];
	struct iovec iov[2];
	size_t i, half = n / 2;
	int r;

	for (i = 0; i < n; i++)
		c[i] = body[i % strlen(body)];
	iov[0] = (struct iovec){c, half};
	iov[1] = (struct iovec){c + half, n - half};
	mk_env(&e, "ben@example.net");
	r = lspool_commit(sp, &e, iov, 2, err, sizeof(err));
	if (r == 0)
		memcpy(id, e.id, QUEUE_ID_LEN + 1);
	else
		fprintf(stderr, "commit: %s\n", err);
	queue_env_free(&e);
	free(c);
	return r;
}

/* The content of id equals body repeated to n octets. */
static bool
content_is(struct lspool *sp, const char *id, const char *body, size_t n)
{
	struct spool_data d;
	char *c;
	bool ok = true;
	size_t i;

	if (lspool_open_data(sp, id, &d) != 0)
		return false;
	c = xmalloc(n + 1);
	if (d.len != n || pread(d.fd, c, n, (off_t)d.off) != (ssize_t)n)
		ok = false;
	for (i = 0; ok && i < n; i++)
		ok = c[i] == body[i % strlen(body)];
	close(d.fd);
	free(c);
	return ok;
}

static struct lspool *
reopen(struct lspool *sp)
{
	char err[256];
	struct lspool *n;

	lspool_close(sp);
	n = lspool_open(tdir, err, sizeof(err));
	if (n == NULL)
		fprintf(stderr, "reopen: %s\n", err);
	return n;
}

static void
count_cb(struct queue_env *env, void *ctx)
{
	(void)env;
	(*(int *)ctx)++;
}

static int
scan_count(struct lspool *sp)
{
	int n = 0;

	if (lspool_scan(sp, count_cb, &n) != n)
		return -1;
	return n;
}

/* ---- tests --------------------------------------------------------------- */

static void
test_basic(void)
{
	char err[256], a[QUEUE_ID_LEN + 1], b[QUEUE_ID_LEN + 1];
	struct lspool *sp;
	struct queue_env e;

	setup();
	t_case("open makes seg/ and corrupt/ and one segment");
	sp = lspool_open(tdir, err, sizeof(err));
	T_CHECK(sp != NULL);
	if (sp == NULL)
		goto out;
	T_CHECK_INT(count("seg"), 1);
	T_CHECK_INT(count("corrupt"), 0);
	T_CHECK_INT(count("env"), -1);

	t_case("commit, load, content");
	T_CHECK_INT(commit(sp, a, "hello\r\n", 2048), 0);
	T_CHECK_INT(commit(sp, b, "other\r\n", 100), 0);
	T_CHECK(strcmp(a, b) != 0);
	T_CHECK_INT(lspool_load(sp, a, &e, err, sizeof(err)), 0);
	T_CHECK(e.size == 2048 && !e.held);
	T_CHECK_STR(e.rcpt[0].addr, "ben@example.net");
	T_CHECK(content_is(sp, a, "hello\r\n", 2048));
	T_CHECK(content_is(sp, b, "other\r\n", 100));

	t_case("the id the caller gives is kept, a taken one replaced");
	{
		struct queue_env f;
		struct iovec iov = {"x", 1};

		mk_env(&f, "x@example.com");
		memcpy(f.id, a, sizeof(f.id));
		T_CHECK_INT(
		    lspool_commit(sp, &f, &iov, 1, err, sizeof(err)), 0);
		T_CHECK(strcmp(f.id, a) != 0 && queue_id_valid(f.id));
		T_CHECK_INT(lspool_remove(sp, f.id), 0);
		queue_env_free(&f);
	}

	t_case("update, hold, release, remove");
	e.rcpt[0].attempts = 3;
	e.rcpt[0].code = 451;
	T_CHECK_INT(lspool_update(sp, &e), 0);
	T_CHECK_INT(lspool_hold(sp, a), 0);
	T_CHECK_INT(lspool_hold(sp, a), -1);
	T_CHECK_INT(errno, EEXIST);
	T_CHECK_INT(lspool_update(sp, &e), -1); /* held: as env/ gone */
	T_CHECK_INT(errno, ENOENT);
	queue_env_free(&e);
	T_CHECK_INT(lspool_load(sp, a, &e, err, sizeof(err)), 0);
	T_CHECK(e.held && e.rcpt[0].attempts == 3 && e.rcpt[0].code == 451);
	queue_env_free(&e);
	T_CHECK_INT(lspool_release(sp, b), -1);
	T_CHECK_INT(errno, ENOENT);
	T_CHECK_INT(lspool_remove(sp, b), 0);
	T_CHECK_INT(lspool_remove(sp, b), -1);
	T_CHECK_INT(errno, ENOENT);
	T_CHECK_INT(lspool_load(sp, b, &e, err, sizeof(err)), -1);
	T_CHECK_INT(errno, ENOENT);

	t_case("reopen: the same state");
	sp = reopen(sp);
	T_CHECK(sp != NULL);
	if (sp == NULL)
		goto out;
	T_CHECK_INT(scan_count(sp), 1);
	T_CHECK_INT(lspool_load(sp, a, &e, err, sizeof(err)), 0);
	T_CHECK(e.held && e.rcpt[0].attempts == 3);
	queue_env_free(&e);
	T_CHECK(content_is(sp, a, "hello\r\n", 2048));
	T_CHECK_INT(lspool_release(sp, a), 0);
	sp = reopen(sp);
	T_CHECK(sp != NULL);
	if (sp == NULL)
		goto out;
	T_CHECK_INT(lspool_load(sp, a, &e, err, sizeof(err)), 0);
	T_CHECK(!e.held);
	queue_env_free(&e);
	T_CHECK_INT(lspool_load(sp, b, &e, err, sizeof(err)), -1);

	t_case("stats: one fdatasync per lone commit");
	{
		struct lspool_stats st;

		lspool_get_stats(sp, &st);
		T_CHECK(st.live == 1 && st.segments == 1);
	}

	t_case("a second open is refused (the lock)");
	T_CHECK(lspool_open(tdir, err, sizeof(err)) == NULL);
	lspool_close(sp);
out:
	teardown();
}

/* The path of the only (or last) segment. */
static void
last_seg(char *out, size_t len)
{
	char p[PATH_MAX];
	struct dirent *de;
	DIR *d = opendir(qpath(p, sizeof(p), "seg"));
	char best[NAME_MAX + 1] = "";

	if (d == NULL)
		abort();
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' && strcmp(de->d_name, best) > 0)
			(void)!str_copy(
			    best, sizeof(best), de->d_name, strlen(de->d_name));
	closedir(d);
	(void)!str_fmt(out, len, "%s/queue/seg/%s", tdir, best);
}

static void
patch(const char *path, off_t off, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY);

	if (fd < 0 || pwrite(fd, p, n, off) != (ssize_t)n)
		abort();
	close(fd);
}

static void
test_torn_tail(void)
{
	char err[256], path[PATH_MAX], ids[3][QUEUE_ID_LEN + 1];
	struct lspool *sp;
	struct lspool_stats st;
	uint64_t end, num, num2;
	int i;

	setup();
	sp = lspool_open(tdir, err, sizeof(err));
	T_CHECK(sp != NULL);
	if (sp == NULL)
		goto out;
	for (i = 0; i < 3; i++)
		T_CHECK_INT(commit(sp, ids[i], "acked\r\n", 500), 0);
	lspool_active(sp, &num, &end);
	lspool_close(sp);
	last_seg(path, sizeof(path));

	t_case("a torn record after the acknowledged ones is cut");
	{
		/* the first 30 octets of a record: its length says more */
		uint8_t torn[30] = {200, 1, 0, 0, 1, 2, 3, 4, QLOG_MSG};

		patch(path, (off_t)end, torn, sizeof(torn));
	}
	sp = lspool_open(tdir, err, sizeof(err));
	T_CHECK(sp != NULL);
	if (sp == NULL)
		goto out;
	T_CHECK_INT(scan_count(sp), 3);
	for (i = 0; i < 3; i++)
		T_CHECK(content_is(sp, ids[i], "acked\r\n", 500));
	lspool_active(sp, &num, &num2);
	T_CHECK(num2 == end);

	t_case("after the cut, appends go on and read back");
	{
		char d[QUEUE_ID_LEN + 1];

		T_CHECK_INT(commit(sp, d, "later\r\n", 64), 0);
		lspool_active(sp, &num, &end);
		sp = reopen(sp);
		T_CHECK(sp != NULL);
		if (sp == NULL)
			goto out;
		T_CHECK_INT(scan_count(sp), 4);
		T_CHECK(content_is(sp, d, "later\r\n", 64));
	}
	lspool_close(sp);

	t_case("a bad checksum in the last record is cut, never the rest");
	{
		uint8_t x = 0x55;

		patch(path, (off_t)end - 3, &x, 1); /* in "later"'s content */
	}
	sp = lspool_open(tdir, err, sizeof(err));
	T_CHECK(sp != NULL);
	if (sp == NULL)
		goto out;
	T_CHECK_INT(scan_count(sp), 3);
	for (i = 0; i < 3; i++)
		T_CHECK(content_is(sp, ids[i], "acked\r\n", 500));
	lspool_get_stats(sp, &st);
	T_CHECK(st.live == 3);
	T_CHECK_INT(count("corrupt"), 0);
	lspool_close(sp);

	t_case("a segment of an unknown version is not touched");
	{
		uint8_t v = 9;

		patch(path, 8, &v, 1);
		/* the header checksum is now wrong too: bad, so it goes to
		   corrupt/ (a real newer version is refused: test_qlog) */
	}
	sp = lspool_open(tdir, err, sizeof(err));
	T_CHECK(sp != NULL);
	if (sp != NULL) {
		T_CHECK_INT(scan_count(sp), 0);
		T_CHECK_INT(count("corrupt"), 1);
		lspool_close(sp);
	}
out:
	teardown();
}

static void
test_blank_header(void)
{
	char err[256], path[PATH_MAX];
	struct lspool *sp;
	uint8_t z[QLOG_SEG_HEAD] = {0};

	setup();
	t_case("a last segment whose header never reached the disk");
	sp = lspool_open(tdir, err, sizeof(err));
	T_CHECK(sp != NULL);
	if (sp == NULL)
		goto out;
	lspool_close(sp);
	last_seg(path, sizeof(path));
	patch(path, 0, z, sizeof(z));
	sp = lspool_open(tdir, err, sizeof(err));
	T_CHECK(sp != NULL);
	if (sp != NULL) {
		char id[QUEUE_ID_LEN + 1];

		T_CHECK_INT(commit(sp, id, "x", 10), 0);
		sp = reopen(sp);
		T_CHECK(sp != NULL && scan_count(sp) == 1);
		lspool_close(sp);
	}
	T_CHECK_INT(count("corrupt"), 0);
out:
	teardown();
}

static void
test_old_segment_damage(void)
{
	char err[256], path[PATH_MAX], first[QUEUE_ID_LEN + 1];
	char id[QUEUE_ID_LEN + 1];
	struct lspool *sp;
	uint64_t firstseg, off = 0;
	struct lspool_stats st = {0};
	int i, n;

	setup();
	sp = lspool_open(tdir, err, sizeof(err));
	T_CHECK(sp != NULL);
	if (sp == NULL)
		goto out;
	T_CHECK_INT(commit(sp, first, "first\r\n", 1000), 0);
	lspool_active(sp, &firstseg, &off);
	for (i = 0; st.segments < 2; i++) {
		T_CHECK_INT(commit(sp, id, "filler\r\n", 8000), 0);
		lspool_get_stats(sp, &st);
	}
	n = i + 1;
	/* the second record of the first segment */
	{
		struct spool_data d;

		T_CHECK_INT(lspool_open_data(sp, first, &d), 0);
		off = d.off + d.len + 100;
		close(d.fd);
	}
	lspool_close(sp);
	(void)!str_fmt(path, sizeof(path), "%s/queue/seg/%016llx", tdir,
	    (unsigned long long)firstseg);

	t_case("a bad record in an older segment: linked into corrupt/");
	{
		uint8_t x = 0xff;

		patch(path, (off_t)off, &x, 1);
	}
	sp = lspool_open(tdir, err, sizeof(err));
	T_CHECK(sp != NULL);
	if (sp == NULL)
		goto out;
	T_CHECK_INT(count("corrupt"), 1);
	/* the record before the damage is kept; those after it in that
	   segment are lost; the later segment's are all there */
	T_CHECK(content_is(sp, first, "first\r\n", 1000));
	i = scan_count(sp);
	T_CHECK(i >= 2 && i < n);
	T_CHECK(content_is(sp, id, "filler\r\n", 8000));
	lspool_close(sp);
out:
	teardown();
}

static void
test_corrupt_envelope(void)
{
	char err[256], path[PATH_MAX], name[PATH_MAX];
	struct lspool *sp;
	uint64_t end, num;
	struct qlog_rec r = {0};
	uint8_t head[QLOG_REC_HEAD_MAX];
	struct iovec iov = {"content", 7};
	const char *bad = "V 1\nI 00000000000000aa\nnonsense\n";
	size_t h;
	int fd;

	setup();
	sp = lspool_open(tdir, err, sizeof(err));
	T_CHECK(sp != NULL);
	if (sp == NULL)
		goto out;
	lspool_active(sp, &num, &end);
	lspool_close(sp);

	t_case("an envelope that does not decode goes to corrupt/, once");
	r.type = QLOG_MSG;
	r.id = 0xaa;
	r.env = bad;
	r.envlen = strlen(bad);
	T_CHECK_INT(qlog_rec_head(head, &h, &r, &iov, 1), 0);
	last_seg(path, sizeof(path));
	fd = open(path, O_WRONLY);
	T_CHECK(fd >= 0);
	{
		struct iovec w[3] = {
		    {head, h}, {(void *)(uintptr_t)bad, strlen(bad)}, iov};

		T_CHECK(pwritev(fd, w, 3, (off_t)end) ==
			(ssize_t)(h + strlen(bad) + 7));
	}
	close(fd);
	sp = lspool_open(tdir, err, sizeof(err));
	T_CHECK(sp != NULL);
	if (sp == NULL)
		goto out;
	T_CHECK_INT(scan_count(sp), 0);
	(void)!str_fmt(
	    name, sizeof(name), "%s/queue/corrupt/00000000000000aa.data", tdir);
	T_CHECK(access(name, F_OK) == 0);
	sp = reopen(sp);
	T_CHECK(sp != NULL);
	if (sp != NULL) {
		T_CHECK_INT(scan_count(sp), 0);
		T_CHECK_INT(count("corrupt"), 2);
		lspool_close(sp);
	}
out:
	teardown();
}

/* The whole of file path, for "unchanged" checks (caller frees). */
static char *
slurp(const char *path, size_t *n)
{
	struct stat st;
	char *b;
	int fd = open(path, O_RDONLY);

	if (fd < 0 || fstat(fd, &st) != 0)
		abort();
	b = xmalloc((size_t)st.st_size + 1);
	if (pread(fd, b, (size_t)st.st_size, 0) != st.st_size)
		abort();
	close(fd);
	*n = (size_t)st.st_size;
	return b;
}

/*
 * A live message whose envelope a newer tern wrote, and a segment of a
 * newer version: the open fails with ENOTSUP and both versions named,
 * the segment unchanged byte for byte, nothing in corrupt/ (a downgrade
 * never takes a newer queue for damage).
 */
static void
test_newer_refused(void)
{
	char err[256], path[PATH_MAX];
	struct lspool *sp;
	uint64_t end, num;
	struct qlog_rec r = {0};
	uint8_t head[QLOG_REC_HEAD_MAX], v[4] = {2, 0, 0, 0}, crc[4];
	struct iovec iov = {"content", 7};
	const char *newer = "V 9\nI 00000000000000bb\nX a field of version 9\n";
	char *before, *after;
	size_t h, nb, na;
	uint32_t c;
	int fd;

	setup();
	sp = lspool_open(tdir, err, sizeof(err));
	T_CHECK(sp != NULL);
	if (sp == NULL)
		goto out;
	lspool_active(sp, &num, &end);
	lspool_close(sp);

	t_case("a live envelope of version 9: refused, nothing moved");
	r.type = QLOG_MSG;
	r.id = 0xbb;
	r.env = newer;
	r.envlen = strlen(newer);
	T_CHECK_INT(qlog_rec_head(head, &h, &r, &iov, 1), 0);
	last_seg(path, sizeof(path));
	fd = open(path, O_WRONLY);
	T_CHECK(fd >= 0);
	{
		struct iovec w[3] = {
		    {head, h}, {(void *)(uintptr_t)newer, strlen(newer)}, iov};

		T_CHECK(pwritev(fd, w, 3, (off_t)end) ==
			(ssize_t)(h + strlen(newer) + 7));
	}
	close(fd);
	before = slurp(path, &nb);
	errno = 0;
	sp = lspool_open(tdir, err, sizeof(err));
	T_CHECK(sp == NULL);
	T_CHECK_INT(errno, ENOTSUP);
	T_CHECK(strstr(err, "message 00000000000000bb: line 1: envelope "
			    "version 9 is newer than this tern reads") != NULL);
	lspool_close(sp);
	after = slurp(path, &na);
	T_CHECK(na == nb && memcmp(before, after, nb) == 0);
	T_CHECK_INT(count("corrupt"), 0);
	free(before);
	free(after);

	t_case("a segment header of version 2: refused, unchanged");
	patch(path, 8, v, sizeof(v));
	before = slurp(path, &nb);
	c = qlog_crc32c(0, before, 28);
	crc[0] = (uint8_t)c;
	crc[1] = (uint8_t)(c >> 8);
	crc[2] = (uint8_t)(c >> 16);
	crc[3] = (uint8_t)(c >> 24);
	free(before);
	patch(path, 28, crc, sizeof(crc));
	before = slurp(path, &nb);
	errno = 0;
	sp = lspool_open(tdir, err, sizeof(err));
	T_CHECK(sp == NULL);
	T_CHECK_INT(errno, ENOTSUP);
	T_CHECK(strstr(err, "segment format version 2, this tern reads "
			    "version 1 only") != NULL);
	lspool_close(sp);
	after = slurp(path, &na);
	T_CHECK(na == nb && memcmp(before, after, nb) == 0);
	T_CHECK_INT(count("corrupt"), 0);
	free(before);
	free(after);
out:
	teardown();
}

static void
test_compaction(void)
{
	char err[256], (*ids)[QUEUE_ID_LEN + 1], keep[3][QUEUE_ID_LEN + 1];
	struct lspool_stats st;
	struct lspool *sp;
	int i, n = 300, k = 0;

	setup();
	ids = xcalloc((size_t)n, sizeof(*ids));
	sp = lspool_open(tdir, err, sizeof(err));
	T_CHECK(sp != NULL);
	if (sp == NULL)
		goto out;
	t_case("segments roll at the size limit");
	for (i = 0; i < n; i++)
		T_CHECK_INT(commit(sp, ids[i], "msg\r\n", 2048), 0);
	lspool_get_stats(sp, &st);
	T_CHECK(st.segments >= 3);

	t_case("a segment whose messages are all done is freed");
	for (i = 0; i < 130; i++) /* a segment holds about 115 */
		T_CHECK_INT(lspool_remove(sp, ids[i]), 0);
	lspool_get_stats(sp, &st);
	T_CHECK(st.freed >= 1);

	t_case("few survivors: copied into the active segment, then freed");
	for (i = 130; i < n - 1; i++) {
		if (i == 150 || i == 200 || i == 250) {
			memcpy(keep[k++], ids[i], sizeof(keep[0]));
			continue;
		}
		T_CHECK_INT(lspool_remove(sp, ids[i]), 0);
	}
	T_CHECK_INT(lspool_hold(sp, keep[1]), 0);
	lspool_get_stats(sp, &st);
	T_CHECK(st.compacted >= 1 && st.copied >= 1);
	T_CHECK(st.segments <= 2);
	T_CHECK(st.live == 4);
	for (i = 0; i < 3; i++)
		T_CHECK(content_is(sp, keep[i], "msg\r\n", 2048));

	t_case("after compaction, a reopen finds exactly the live ones");
	sp = reopen(sp);
	T_CHECK(sp != NULL);
	if (sp == NULL)
		goto out;
	T_CHECK_INT(scan_count(sp), 4);
	for (i = 0; i < 3; i++)
		T_CHECK(content_is(sp, keep[i], "msg\r\n", 2048));
	{
		struct queue_env e;

		T_CHECK_INT(lspool_load(sp, keep[1], &e, err, sizeof(err)), 0);
		T_CHECK(e.held);
		queue_env_free(&e);
	}
	t_case("removed messages never come back (tombstones)");
	for (i = 0; i < n - 1; i++) {
		struct queue_env e;

		if (strcmp(ids[i], keep[0]) == 0 ||
		    strcmp(ids[i], keep[1]) == 0 ||
		    strcmp(ids[i], keep[2]) == 0)
			continue;
		if (lspool_load(sp, ids[i], &e, err, sizeof(err)) == 0) {
			T_CHECK(0);
			queue_env_free(&e);
			break;
		}
	}
	lspool_close(sp);
out:
	free(ids);
	teardown();
}

static void
test_free_same_segment(void)
{
	char err[256], id[QUEUE_ID_LEN + 1];
	struct lspool_stats st;
	struct lspool *sp;
	int i;

	setup();
	t_case("messages removed in the segment they were written in free it");
	sp = lspool_open(tdir, err, sizeof(err));
	T_CHECK(sp != NULL);
	if (sp == NULL)
		goto out;
	for (i = 0; i < 400; i++) {
		T_CHECK_INT(commit(sp, id, "once\r\n", 2048), 0);
		T_CHECK_INT(lspool_remove(sp, id), 0);
	}
	lspool_get_stats(sp, &st);
	/* a removal's tombstone once held its own segment for ever */
	T_CHECK(st.freed >= 2 && st.segments == 1 && st.live == 0);
	sp = reopen(sp);
	T_CHECK(sp != NULL && scan_count(sp) == 0);
	lspool_close(sp);
out:
	teardown();
}

/* The removal of a delivered message is not waited for: no fdatasync
 * of its own; the next commit's makes it durable; a reopen (what a
 * restart after a crash of ternd alone reads) no longer has it. */
static void
test_remove_done(void)
{
	char err[256], a[QUEUE_ID_LEN + 1], b[QUEUE_ID_LEN + 1];
	struct lspool_stats st0, st1;
	struct lspool *sp;

	setup();
	t_case("remove_done: appended and applied, not synced");
	sp = lspool_open(tdir, err, sizeof(err));
	T_CHECK(sp != NULL);
	if (sp == NULL)
		goto out;
	T_CHECK_INT(commit(sp, a, "first\r\n", 2048), 0);
	T_CHECK_INT(commit(sp, b, "second\r\n", 2048), 0);
	lspool_get_stats(sp, &st0);
	T_CHECK_INT(lspool_remove_done(sp, a), 0);
	lspool_get_stats(sp, &st1);
	T_CHECK(st1.appends == st0.appends + 1);
	T_CHECK(st1.fdatasyncs == st0.fdatasyncs);
	T_CHECK(st1.sync_waits == st0.sync_waits);
	T_CHECK(st1.removes == st0.removes + 1 && st1.live == 1);
	/* gone for the queue at once: a second removal finds nothing */
	T_CHECK(lspool_remove_done(sp, a) != 0 && errno == ENOENT);
	T_CHECK_INT(lspool_remove(sp, b), 0);
	lspool_get_stats(sp, &st1);
	T_CHECK(st1.fdatasyncs == st0.fdatasyncs + 1);
	sp = reopen(sp);
	T_CHECK(sp != NULL && scan_count(sp) == 0);
	lspool_close(sp);
out:
	teardown();
}

/* lspool_load_now: what lspool_load and lspool_open_data give, in one
 * call; ENOENT for a removed id; -2 while another thread holds the lock
 * (a commit in flight), so the loop never waits for it. */
struct holder {
	struct lspool *sp;
	char id[QUEUE_ID_LEN + 1];
	int r;
};

static void *
load_now_elsewhere(void *arg)
{
	struct holder *h = arg;
	struct queue_env e;
	struct spool_data d;
	char err[256];

	h->r = lspool_load_now(h->sp, h->id, &e, &d, err, sizeof(err));
	if (h->r == 0) {
		queue_env_free(&e);
		close(d.fd);
	}
	return NULL;
}

static void
test_load_now(void)
{
	char err[256], a[QUEUE_ID_LEN + 1], got[16];
	struct queue_env e;
	struct spool_data d;
	struct lspool *sp;
	struct holder h;
	pthread_t th;

	setup();
	t_case("load_now: the envelope and the content, without a worker");
	sp = lspool_open(tdir, err, sizeof(err));
	T_CHECK(sp != NULL);
	if (sp == NULL)
		goto out;
	T_CHECK_INT(commit(sp, a, "loaded\r\n", 2048), 0);
	T_CHECK_INT(lspool_load_now(sp, a, &e, &d, err, sizeof(err)), 0);
	T_CHECK_STR(e.id, a);
	T_CHECK_STR(e.rcpt[0].addr, "ben@example.net");
	T_CHECK(d.fd >= 0 && d.len == 2048);
	T_CHECK(pread(d.fd, got, 8, (off_t)d.off) == 8 &&
		memcmp(got, "loaded\r\n", 8) == 0);
	queue_env_free(&e);
	close(d.fd);

	t_case("load_now: -2 while another thread holds the lock");
	h.sp = sp;
	memcpy(h.id, a, sizeof(h.id));
	lspool_test_hold(sp, true);
	T_CHECK(pthread_create(&th, NULL, load_now_elsewhere, &h) == 0);
	T_CHECK(pthread_join(th, NULL) == 0);
	lspool_test_hold(sp, false);
	T_CHECK_INT(h.r, -2);

	t_case("load_now: a removed message is ENOENT");
	T_CHECK_INT(lspool_remove(sp, a), 0);
	T_CHECK_INT(lspool_load_now(sp, a, &e, &d, err, sizeof(err)), -1);
	T_CHECK_INT(errno, ENOENT);
	T_CHECK_INT(d.fd, -1);
	lspool_close(sp);
out:
	teardown();
}

/* The legacy queue: made by the file spool (spool.c) itself. */
static void
test_import(void)
{
	char err[256], ids[3][QUEUE_ID_LEN + 1], saved[PATH_MAX * 2];
	struct spool *old;
	struct lspool *sp;
	struct queue_env e;
	int i;

	setup();
	t_case("a queue of the file spool: three messages, one held");
	old = spool_open(tdir, err, sizeof(err));
	T_CHECK(old != NULL);
	if (old == NULL)
		goto out;
	for (i = 0; i < 3; i++) {
		char body[64];
		struct iovec iov = {body, 0};

		iov.iov_len = (size_t)snprintf(body, sizeof(body),
		    "Subject: legacy %d\r\n\r\nbody\r\n", i);
		mk_env(&e, "ben@example.net");
		T_CHECK_INT(
		    spool_commit(old, &e, &iov, 1, err, sizeof(err)), 0);
		memcpy(ids[i], e.id, sizeof(ids[i]));
		if (i == 1) {
			e.rcpt[0].attempts = 2;
			T_CHECK_INT(spool_update(old, &e), 0);
		}
		queue_env_free(&e);
	}
	T_CHECK_INT(spool_hold(old, ids[2]), 0);
	spool_close(old);
	T_CHECK_INT(count("env"), 2);
	T_CHECK_INT(count("held"), 1);
	/* a copy of the legacy files, to play a crash after the import
	   was durable but before the old files were all gone */
	(void)!str_fmt(
	    saved, sizeof(saved), "cp -a %s/queue %s/saved", tdir, tdir);
	T_CHECK_INT(system(saved), 0);

	t_case("imported into the log, the old files removed");
	sp = lspool_open(tdir, err, sizeof(err));
	T_CHECK(sp != NULL);
	if (sp == NULL)
		goto out;
	T_CHECK_INT(count("env"), -1);
	T_CHECK_INT(count("data"), -1);
	T_CHECK_INT(count("held"), -1);
	T_CHECK_INT(count("tmp"), -1);
	T_CHECK_INT(scan_count(sp), 3);
	T_CHECK_INT(lspool_load(sp, ids[1], &e, err, sizeof(err)), 0);
	T_CHECK(e.rcpt[0].attempts == 2 && !e.held);
	queue_env_free(&e);
	T_CHECK_INT(lspool_load(sp, ids[2], &e, err, sizeof(err)), 0);
	T_CHECK(e.held);
	queue_env_free(&e);
	T_CHECK(content_is(sp, ids[0], "Subject: legacy 0\r\n\r\nbody\r\n",
	    strlen("Subject: legacy 0\r\n\r\nbody\r\n")));

	t_case("a crash between: the log's copy wins, no duplicate");
	lspool_close(sp);
	(void)!str_fmt(saved, sizeof(saved),
	    "cp -a %s/saved/env %s/saved/data %s/saved/held %s/saved/tmp "
	    "%s/queue/",
	    tdir, tdir, tdir, tdir, tdir);
	T_CHECK_INT(system(saved), 0);
	sp = lspool_open(tdir, err, sizeof(err));
	T_CHECK(sp != NULL);
	if (sp == NULL)
		goto out;
	T_CHECK_INT(count("env"), -1);
	T_CHECK_INT(scan_count(sp), 3);
	{
		struct lspool_stats st;

		lspool_get_stats(sp, &st);
		T_CHECK(st.appends == 0); /* nothing imported twice */
	}
	lspool_close(sp);
out:
	teardown();
}

/* spool_* on a queue opened by spool_open_log go to the log. */
static void
test_dispatch(void)
{
	char err[256];
	struct spool *sp;
	struct spool_stats st;
	struct queue_env e, l;
	struct spool_data d;
	struct iovec iov = {"Subject: x\r\n\r\nhi\r\n", 19};

	setup();
	t_case("spool_open_log: the spool_* calls work on the log");
	sp = spool_open_log(tdir, err, sizeof(err));
	T_CHECK(sp != NULL);
	if (sp == NULL)
		goto out;
	mk_env(&e, "ben@example.net");
	T_CHECK_INT(spool_commit(sp, &e, &iov, 1, err, sizeof(err)), 0);
	T_CHECK_INT(spool_open_data(sp, e.id, &d), 0);
	T_CHECK(d.len == 19 && d.off > QLOG_SEG_HEAD);
	close(d.fd);
	T_CHECK_INT(spool_hold(sp, e.id), 0);
	T_CHECK_INT(spool_load(sp, e.id, &l, err, sizeof(err)), 0);
	T_CHECK(l.held);
	queue_env_free(&l);
	spool_get_stats(sp, &st);
	T_CHECK(st.commits == 1 && st.appends == 2 && st.fdatasyncs >= 2 &&
		st.segments == 1);
	T_CHECK_INT(count("env"), -1);
	spool_close(sp);

	t_case("the file spool refuses a queue the log has taken over");
	errno = 0;
	T_CHECK(spool_open(tdir, err, sizeof(err)) == NULL);
	T_CHECK_INT(errno, EEXIST);
	sp = spool_open_log(tdir, err, sizeof(err));
	T_CHECK(sp != NULL);
	if (sp != NULL) {
		T_CHECK_INT(spool_remove(sp, e.id), 0);
		spool_close(sp);
	}
	queue_env_free(&e);
out:
	teardown();
}

/* ---- concurrency ----------------------------------------------------------
 */

struct worker {
	struct lspool *sp;
	int n, fails;
};

static void *
work(void *v)
{
	struct worker *w = v;
	char id[QUEUE_ID_LEN + 1];
	int i;

	for (i = 0; i < w->n; i++) {
		if (commit(w->sp, id, "concurrent\r\n", 2048) != 0)
			w->fails++;
		else if (i % 2 == 0 && lspool_remove(w->sp, id) != 0)
			w->fails++;
	}
	return NULL;
}

static void
test_concurrent(void)
{
	char err[256];
	struct lspool *sp;
	struct lspool_stats st;
	struct worker w[8];
	pthread_t th[8];
	int i, fails = 0;

	setup();
	t_case("8 threads: group commit shares the fdatasyncs");
	sp = lspool_open(tdir, err, sizeof(err));
	T_CHECK(sp != NULL);
	if (sp == NULL)
		goto out;
	for (i = 0; i < 8; i++) {
		w[i] = (struct worker){sp, 100, 0};
		T_CHECK_INT(pthread_create(&th[i], NULL, work, &w[i]), 0);
	}
	for (i = 0; i < 8; i++) {
		T_CHECK_INT(pthread_join(th[i], NULL), 0);
		fails += w[i].fails;
	}
	T_CHECK_INT(fails, 0);
	lspool_get_stats(sp, &st);
	T_CHECK(st.commits == 800 && st.live == 400);
	T_CHECK(st.fdatasyncs < st.sync_waits);
	printf("concurrent: %llu appends, %llu fdatasyncs for %llu waits, "
	       "%llu segments freed\n",
	    (unsigned long long)st.appends, (unsigned long long)st.fdatasyncs,
	    (unsigned long long)st.sync_waits, (unsigned long long)st.freed);
	sp = reopen(sp);
	T_CHECK(sp != NULL && scan_count(sp) == 400);
	lspool_close(sp);
out:
	teardown();
}

/* ---- faults --------------------------------------------------------------
 */

static const char *fault_steps[4]; /* failing with EIO; NULL-ended */
static bool fault_full;		   /* and "seg_full": roll at each append */

static int
fault_hook(const char *who, const char *step)
{
	int i;

	if (strcmp(who, "logspool") != 0)
		return 0;
	if (fault_full && strcmp(step, "seg_full") == 0)
		return 1;
	for (i = 0; fault_steps[i] != NULL; i++)
		if (strcmp(step, fault_steps[i]) == 0)
			return EIO;
	return 0;
}

struct fault_case {
	const char *step;
	bool full;   /* the step is on the way to a new segment */
	bool sticky; /* a failed sync: writes refused until reopened */
};

/*
 * Each durable step of the log failing under a commit: the commit fails
 * with the step's errno, the message is not live, nothing queued before
 * is touched; once the fault is gone the next commit succeeds (a failed
 * fdatasync: only after a reopen, the spool refuses writes until then),
 * and a reopen finds every acknowledged message whole.
 */
static void
test_fault_steps(void)
{
	static const struct fault_case cases[] = {
	    {"write", false, false},
	    {"fdatasync", false, true},
	    {"create", true, false},
	    {"seg_write", true, false},
	    {"seg_sync", true, false},
	    {"fsync_dir", true, false},
	    {"roll_sync", true, true},
	};
	char err[256], id[QUEUE_ID_LEN + 1], id2[QUEUE_ID_LEN + 1];
	struct lspool *sp;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct fault_case *c = &cases[i];
		int n;

		setup();
		t_case(c->step);
		sp = lspool_open(tdir, err, sizeof(err));
		T_CHECK(sp != NULL);
		if (sp == NULL) {
			teardown();
			continue;
		}
		T_CHECK_INT(commit(sp, id, "before the fault\r\n", 700), 0);
		fault_steps[0] = c->step;
		fault_full = c->full;
		file_fault_hook = fault_hook;
		T_CHECK(commit(sp, id2, "under the fault\r\n", 700) != 0);
		T_CHECK_INT(errno, EIO);
		file_fault_hook = NULL;
		fault_steps[0] = NULL;
		fault_full = false;
		T_CHECK_INT(scan_count(sp), 1);
		if (c->sticky) {
			T_CHECK(commit(sp, id2, "after\r\n", 700) != 0);
			sp = reopen(sp);
			T_CHECK(sp != NULL);
			if (sp == NULL) {
				teardown();
				continue;
			}
		}
		T_CHECK_INT(commit(sp, id2, "after the fault\r\n", 700), 0);
		sp = reopen(sp);
		T_CHECK(sp != NULL);
		if (sp != NULL) {
			/* the failed commit's record may be back (its
			   client was told 4xx: at worst a duplicate) */
			n = scan_count(sp);
			T_CHECK(n == 2 || (c->sticky && n == 3));
			T_CHECK(
			    content_is(sp, id, "before the fault\r\n", 700));
			T_CHECK(
			    content_is(sp, id2, "after the fault\r\n", 700));
			lspool_close(sp);
		}
		teardown();
	}
}

/* The first fdatasync fails only once a second commit's record lies
 * behind it, waiting for the next one. */
static struct lspool *race_sp;
static atomic_int race_calls;

static int
race_hook(const char *who, const char *step)
{
	struct lspool_stats st;
	int i;

	if (strcmp(who, "logspool") != 0 || strcmp(step, "fdatasync") != 0 ||
	    atomic_fetch_add(&race_calls, 1) != 0)
		return 0;
	for (i = 0; i < 10000; i++) {
		lspool_get_stats(race_sp, &st);
		if (st.appends >= 2)
			break;
		usleep(1000);
	}
	return EIO;
}

static void *
race_work(void *v)
{
	char id[QUEUE_ID_LEN + 1];

	*(int *)v = commit(race_sp, id, "race\r\n", 512);
	return NULL;
}

/*
 * A failed fdatasync, then a later one that succeeds (Linux reports a
 * writeback error to a file descriptor once): the record written behind
 * the failed one must not be acknowledged, since the failed pages may
 * never reach the disk and replay stops where they are.
 */
static void
test_sync_after_failure(void)
{
	char err[256];
	pthread_t th[2];
	int r[2] = {0, 0};

	setup();
	t_case("a commit behind a failed fdatasync is not acknowledged");
	race_sp = lspool_open(tdir, err, sizeof(err));
	T_CHECK(race_sp != NULL);
	if (race_sp == NULL)
		goto out;
	atomic_store(&race_calls, 0);
	file_fault_hook = race_hook;
	T_CHECK_INT(pthread_create(&th[0], NULL, race_work, &r[0]), 0);
	T_CHECK_INT(pthread_create(&th[1], NULL, race_work, &r[1]), 0);
	T_CHECK_INT(pthread_join(th[0], NULL), 0);
	T_CHECK_INT(pthread_join(th[1], NULL), 0);
	file_fault_hook = NULL;
	T_CHECK_INT(atomic_load(&race_calls), 2);
	T_CHECK(r[0] != 0 && r[1] != 0);
	lspool_close(race_sp);
out:
	teardown();
}

/* ---- bench ----------------------------------------------------------------
 */

static double
now(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

struct bworker {
	struct lspool *sp;
	int n;
};

static void *
bwork(void *v)
{
	struct bworker *w = v;
	char id[QUEUE_ID_LEN + 1];
	int i;

	for (i = 0; i < w->n; i++)
		if (commit(w->sp, id, "Subject: bench\r\n\r\nxxxxxxxx\r\n",
			2048) != 0)
			abort();
	return NULL;
}

static int
bench(int n)
{
	char err[256];
	struct lspool *sp;
	struct lspool_stats st;
	struct bworker w[16];
	pthread_t th[16];
	double t0, t1, t2;
	int i, c;
	FILE *f;

	setup();
	sp = lspool_open(tdir, err, sizeof(err));
	if (sp == NULL)
		return 1;
	t0 = now();
	for (i = 0; i < 16; i++) {
		w[i] = (struct bworker){sp, n / 16};
		if (pthread_create(&th[i], NULL, bwork, &w[i]) != 0)
			abort();
	}
	for (i = 0; i < 16; i++)
		(void)pthread_join(th[i], NULL);
	t1 = now();
	lspool_get_stats(sp, &st);
	printf("bench: %llu commits in %.2f s (%.0f/s), %.3f fdatasyncs per "
	       "commit, %llu segments\n",
	    (unsigned long long)st.commits, t1 - t0,
	    (double)st.commits / (t1 - t0),
	    (double)st.fdatasyncs / (double)st.commits,
	    (unsigned long long)st.segments);
	lspool_close(sp);
	sync();
	if ((f = fopen("/proc/sys/vm/drop_caches", "w")) != NULL) {
		fputs("3\n", f);
		fclose(f);
		printf("bench: page cache dropped (cold open)\n");
	}
	t0 = now();
	sp = lspool_open(tdir, err, sizeof(err));
	t1 = now();
	if (sp == NULL)
		return 1;
	c = scan_count(sp);
	t2 = now();
	printf("bench: lspool_open %.3f s, lspool_scan %.3f s, %d messages\n",
	    t1 - t0, t2 - t1, c);
	lspool_close(sp);
	teardown();
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--bench") == 0)
		return bench(atoi(argv[2]));
	lspool_seg_size = 256u << 10; /* rolls after about 115 messages */
	log_init("test_logspool", LOG_LEVEL_WARN);
	T_RUN(test_basic);
	T_RUN(test_torn_tail);
	T_RUN(test_blank_header);
	T_RUN(test_old_segment_damage);
	T_RUN(test_corrupt_envelope);
	T_RUN(test_newer_refused);
	T_RUN(test_compaction);
	T_RUN(test_free_same_segment);
	T_RUN(test_remove_done);
	T_RUN(test_load_now);
	T_RUN(test_import);
	T_RUN(test_dispatch);
	T_RUN(test_concurrent);
	T_RUN(test_fault_steps);
	T_RUN(test_sync_after_failure);
	return t_summary();
}
