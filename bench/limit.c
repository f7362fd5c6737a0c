/*
 * limit: this machine's ceiling for the work tern does, so that a tern
 * figure can be read as a share of what the disk, the kernel and the CPU
 * allow here (bench/run.sh prints "% of ceiling"; docs/performance.md).
 *
 *   limit [-d seconds] [-s size] [-t threads] [-b batch] [-B log-batches]
 *         [-T tests] [--quick] DIR
 *
 * DIR is on the file system to measure (the bench's state directories);
 * limit makes a fresh mkdtemp directory in it and removes it at the end,
 * not between the tests: ext4 without a journal skips inodes deleted in
 * the last dirty_expire_centisecs (30 s) when it allocates one
 * (recently_deleted()), so files removed by one test would slow the
 * file creation of the next.
 * The tests (-T, comma-separated, default all):
 *
 *   file   durable Maildir files, one at a time, one thread: create
 *          tmp/NAME, write, fsync, close, rename into new/, fsync new/
 *          (what one SMTP session with a lone message costs at best).
 *   group  the same files from -t threads into ten Maildir-like
 *          directories, group-committed: writers never sync; a committer
 *          makes the files durable every -b files, once with one
 *          syncfs(2), once with fdatasync of each file by its writer and
 *          an fsync of each new/ touched.  At most 2 x batch files wait
 *          for a commit (a writer blocks past that), so one batch is
 *          written while the previous one is synced.
 *   log    appends of -s byte records to one log file preallocated with
 *          fallocate in 64 MiB segments (as a log-structured queue would),
 *          one fdatasync per batch of 1, 16 and 64 records (-B).
 *   tcp    loopback TCP round trip: 64 bytes to an echo thread and back
 *          (TCP_NODELAY), median and p99.
 *
 * Each measurement runs -d seconds (default 3; --quick: 0.4) and prints
 * one line "limit test=... key=value ..." on stdout: ops, seconds,
 * per_sec, syncs and cpu_us_op, the CPU time of this process (user +
 * system, all threads, getrusage) per operation.  Work the kernel does in
 * its own threads (writeback) is not in it, as it is not in ternd's.
 * A human summary goes to stderr.
 *
 * Build: make build/bench/limit
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LIM_DIRS	10
#define LIM_MAX_THREADS 256
#define LIM_MAX_BATCHES 8
#define LIM_SEGMENT	(64L << 20) /* bytes per preallocated log segment */
#define LIM_PING	64	    /* bytes of one TCP round trip */
#define LIM_RTT_MAX	(1L << 24)  /* round trips kept for percentiles */

struct lim_opts {
	double seconds;
	size_t size;
	int threads;
	int batch;
	int log_batch[LIM_MAX_BATCHES];
	int nlog_batch;
	const char *tests;
	char top[PATH_MAX]; /* the mkdtemp directory */
};

/* one measurement's result, printed as a "limit" line */
struct lim_result {
	uint64_t ops;
	uint64_t syncs;
	uint64_t commits; /* group commit: the commits made */
	double seconds;
	double cpu_s;
};

/* ten Maildir-like directories, each with tmp/ and new/ held open */
struct lim_boxes {
	char path[PATH_MAX];
	int tmp[LIM_DIRS];
	int new[LIM_DIRS];
};

/* the shared state of a group-committed run */
struct lim_group {
	pthread_mutex_t mu;
	pthread_cond_t can_write; /* the window has room, or stop */
	pthread_cond_t can_sync;  /* a batch is pending, or stop */
	const struct lim_opts *o;
	struct lim_boxes *bx;
	const char *data;
	int per_file_sync; /* fdatasync by the writer, fsync new/ by commit */
	uint64_t written;  /* files renamed into new/ */
	uint64_t committed;
	int touched[LIM_DIRS]; /* new/ directories since the last commit */
	int stop;
	double deadline;
	int failed;
};

struct lim_writer {
	struct lim_group *g;
	int id;
};

static void
die(const char *fmt, ...)
{
	va_list ap;
	int e = errno;

	fputs("limit: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (e != 0)
		fprintf(stderr, ": %s", strerror(e));
	fputc('\n', stderr);
	exit(1);
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
cpu_s(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		die("getrusage");
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void
fmt_path(char *dst, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(dst, len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len) {
		errno = ENAMETOOLONG;
		die("path %s", fmt);
	}
}

static void
write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("write");
		p += n;
		len -= (size_t)n;
	}
}

static void
read_all(int fd, char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("read");
		p += n;
		len -= (size_t)n;
	}
}

static int
rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if ((flag == FTW_DP ? rmdir(p) : unlink(p)) != 0)
		die("remove %s", p);
	return 0;
}

static void
rm_tree(const char *path)
{
	if (nftw(path, rm_entry, 32, FTW_DEPTH | FTW_PHYS) != 0)
		die("remove %s", path);
}

static int
open_dir(const char *path)
{
	int fd;

	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		die("mkdir %s", path);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		die("open %s", path);
	return fd;
}

/* NAME/m0..m9/{tmp,new} under the run's directory */
static void
boxes_open(struct lim_boxes *bx, const struct lim_opts *o, const char *name)
{
	char p[PATH_MAX];
	int i;

	fmt_path(bx->path, sizeof(bx->path), "%s/%s", o->top, name);
	close(open_dir(bx->path));
	for (i = 0; i < LIM_DIRS; i++) {
		fmt_path(p, sizeof(p), "%s/m%d", bx->path, i);
		close(open_dir(p));
		fmt_path(p, sizeof(p), "%s/m%d/tmp", bx->path, i);
		bx->tmp[i] = open_dir(p);
		fmt_path(p, sizeof(p), "%s/m%d/new", bx->path, i);
		bx->new[i] = open_dir(p);
	}
}

static void
boxes_close(struct lim_boxes *bx)
{
	int i;

	for (i = 0; i < LIM_DIRS; i++) {
		close(bx->tmp[i]);
		close(bx->new[i]);
	}
}

/*
 * One Maildir file: tmp/NAME written (and fsync'ed or fdatasync'ed when
 * sync says so), closed, renamed into new/.  Returns the directory used.
 */
static int
maildir_file(const struct lim_boxes *bx, int writer, uint64_t seq,
    const char *data, size_t size, int sync)
{
	char name[64];
	int d = (int)(seq % LIM_DIRS), fd;

	fmt_path(name, sizeof(name), "%llu.w%d.limit", (unsigned long long)seq,
	    writer);
	fd = openat(
	    bx->tmp[d], name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		die("create tmp/%s", name);
	write_all(fd, data, size);
	if (sync == 1 && fsync(fd) != 0)
		die("fsync");
	if (sync == 2 && fdatasync(fd) != 0)
		die("fdatasync");
	if (close(fd) != 0)
		die("close");
	if (renameat(bx->tmp[d], name, bx->new[d], name) != 0)
		die("rename %s", name);
	return d;
}

static void
test_file(const struct lim_opts *o, const char *data, struct lim_result *r)
{
	struct lim_boxes bx;
	double t0, c0, end;
	uint64_t n = 0;
	int d;

	boxes_open(&bx, o, "file");
	c0 = cpu_s();
	t0 = now_s();
	end = t0 + o->seconds;
	do {
		d = maildir_file(&bx, 0, n++, data, o->size, 1);
		if (fsync(bx.new[d]) != 0)
			die("fsync new/");
	} while (now_s() < end);
	r->seconds = now_s() - t0;
	r->cpu_s = cpu_s() - c0;
	r->ops = n;
	r->syncs = 2 * n;
	boxes_close(&bx);
}

static void *
group_writer(void *arg)
{
	const struct lim_writer *w = arg;
	struct lim_group *g = w->g;
	uint64_t seq = (uint64_t)w->id; /* spread over the ten directories */
	int d;

	for (;;) {
		pthread_mutex_lock(&g->mu);
		while (!g->stop &&
		       g->written - g->committed >= 2 * (uint64_t)g->o->batch)
			pthread_cond_wait(&g->can_write, &g->mu);
		if (g->stop) {
			pthread_mutex_unlock(&g->mu);
			return NULL;
		}
		pthread_mutex_unlock(&g->mu);
		d = maildir_file(g->bx, w->id, seq, g->data, g->o->size,
		    g->per_file_sync ? 2 : 0);
		seq += (uint64_t)g->o->threads;
		pthread_mutex_lock(&g->mu);
		g->written++;
		g->touched[d] = 1;
		if (g->written - g->committed >= (uint64_t)g->o->batch)
			pthread_cond_signal(&g->can_sync);
		if (now_s() >= g->deadline) {
			g->stop = 1;
			pthread_cond_broadcast(&g->can_write);
			pthread_cond_signal(&g->can_sync);
		}
		pthread_mutex_unlock(&g->mu);
	}
}

/* one commit: everything written so far becomes durable */
static void
group_commit(struct lim_group *g, struct lim_result *r)
{
	int touched[LIM_DIRS], i;
	uint64_t upto;

	upto = g->written;
	memcpy(touched, g->touched, sizeof(touched));
	memset(g->touched, 0, sizeof(g->touched));
	pthread_mutex_unlock(&g->mu);
	if (!g->per_file_sync) {
		if (syncfs(g->bx->new[0]) != 0)
			die("syncfs");
		r->syncs++;
	} else {
		for (i = 0; i < LIM_DIRS; i++) {
			if (touched[i] && fsync(g->bx->new[i]) != 0)
				die("fsync new/");
			r->syncs += (uint64_t)touched[i];
		}
	}
	pthread_mutex_lock(&g->mu);
	/* fdatasync by the writers: one per file */
	if (g->per_file_sync)
		r->syncs += upto - g->committed;
	r->commits++;
	g->committed = upto;
	pthread_cond_broadcast(&g->can_write);
}

static void
test_group(const struct lim_opts *o, const char *data, int per_file_sync,
    struct lim_result *r)
{
	static struct lim_writer w[LIM_MAX_THREADS];
	pthread_t th[LIM_MAX_THREADS];
	struct lim_boxes bx;
	struct lim_group g = {
	    .mu = PTHREAD_MUTEX_INITIALIZER,
	    .can_write = PTHREAD_COND_INITIALIZER,
	    .can_sync = PTHREAD_COND_INITIALIZER,
	    .o = o,
	    .bx = &bx,
	    .data = data,
	    .per_file_sync = per_file_sync,
	};
	double t0, c0;
	int i;

	boxes_open(&bx, o, per_file_sync ? "group-fdatasync" : "group-syncfs");
	if (syncfs(bx.new[0]) != 0) /* start from a clean file system */
		die("syncfs");
	c0 = cpu_s();
	t0 = now_s();
	g.deadline = t0 + o->seconds;
	for (i = 0; i < o->threads; i++) {
		w[i].g = &g;
		w[i].id = i;
		if (pthread_create(&th[i], NULL, group_writer, &w[i]) != 0)
			die("pthread_create");
	}
	/* this thread is the committer */
	pthread_mutex_lock(&g.mu);
	while (!g.stop) {
		while (!g.stop && g.written - g.committed < (uint64_t)o->batch)
			pthread_cond_wait(&g.can_sync, &g.mu);
		if (g.written > g.committed)
			group_commit(&g, r);
	}
	pthread_mutex_unlock(&g.mu);
	for (i = 0; i < o->threads; i++)
		pthread_join(th[i], NULL);
	/* the files written after the stop are made durable too */
	pthread_mutex_lock(&g.mu);
	if (g.written > g.committed)
		group_commit(&g, r);
	pthread_mutex_unlock(&g.mu);
	r->seconds = now_s() - t0;
	r->cpu_s = cpu_s() - c0;
	r->ops = g.committed;
	boxes_close(&bx);
}

static int
log_segment(const char *dir, int n)
{
	char p[PATH_MAX];
	int fd, e;

	fmt_path(p, sizeof(p), "%s/seg.%06d", dir, n);
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		die("create %s", p);
	e = posix_fallocate(fd, 0, LIM_SEGMENT);
	if (e != 0) {
		errno = e;
		die("fallocate %s", p);
	}
	/* the segment itself is durable before records go in */
	if (fsync(fd) != 0)
		die("fsync %s", p);
	return fd;
}

/* one record: an 8-byte length and sequence header, then the payload */
static void
log_record(int fd, char *rec, size_t size, uint64_t seq, off_t off)
{
	uint32_t hdr[2] = {(uint32_t)size, (uint32_t)seq};
	ssize_t n;

	memcpy(rec, hdr, sizeof(hdr) < size ? sizeof(hdr) : size);
	n = pwrite(fd, rec, size, off);
	if (n < 0 || (size_t)n != size)
		die("pwrite");
}

static void
test_log(const struct lim_opts *o, char *rec, int batch, struct lim_result *r)
{
	char dir[PATH_MAX];
	double t0, c0, end;
	uint64_t n = 0;
	off_t off = 0;
	int fd, seg = 0, i, dfd;

	fmt_path(dir, sizeof(dir), "%s/log-%d", o->top, batch);
	dfd = open_dir(dir);
	fd = log_segment(dir, seg);
	if (fsync(dfd) != 0)
		die("fsync %s", dir);
	c0 = cpu_s();
	t0 = now_s();
	end = t0 + o->seconds;
	do {
		for (i = 0; i < batch; i++) {
			if (off + (off_t)o->size > LIM_SEGMENT) {
				/* a new segment is part of the cost */
				if (fdatasync(fd) != 0 || close(fd) != 0)
					die("fdatasync");
				fd = log_segment(dir, ++seg);
				if (fsync(dfd) != 0)
					die("fsync %s", dir);
				off = 0;
			}
			log_record(fd, rec, o->size, n++, off);
			off += (off_t)o->size;
		}
		if (fdatasync(fd) != 0)
			die("fdatasync");
		r->syncs++;
	} while (now_s() < end);
	r->seconds = now_s() - t0;
	r->cpu_s = cpu_s() - c0;
	r->ops = n;
	close(fd);
	close(dfd);
}

static void *
tcp_echo(void *arg)
{
	int fd = *(int *)arg;
	char b[LIM_PING];

	for (;;) {
		ssize_t n = read(fd, b, sizeof(b));

		if (n <= 0)
			break;
		write_all(fd, b, (size_t)n);
	}
	close(fd);
	return NULL;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void
tcp_pair(int *client, int *server)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int l, one = 1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(l, 1) != 0 ||
	    getsockname(l, (struct sockaddr *)&sa, &len) != 0)
		die("listen on loopback");
	*client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*client < 0 ||
	    connect(*client, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		die("connect");
	*server = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (*server < 0)
		die("accept");
	close(l);
	if (setsockopt(*client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) !=
		0 ||
	    setsockopt(*server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) !=
		0)
		die("TCP_NODELAY");
}

static void
test_tcp(const struct lim_opts *o, struct lim_result *r, double *p50_us,
    double *p99_us)
{
	double *rtt = malloc(LIM_RTT_MAX * sizeof(double));
	char b[LIM_PING];
	pthread_t th;
	int c, s;
	double t0, c0, end, t;
	uint64_t n = 0;

	if (rtt == NULL)
		die("malloc");
	memset(b, 'p', sizeof(b));
	tcp_pair(&c, &s);
	if (pthread_create(&th, NULL, tcp_echo, &s) != 0)
		die("pthread_create");
	c0 = cpu_s();
	t0 = now_s();
	end = t0 + o->seconds;
	do {
		t = now_s();
		write_all(c, b, sizeof(b));
		read_all(c, b, sizeof(b));
		if (n < (uint64_t)LIM_RTT_MAX)
			rtt[n] = (now_s() - t) * 1e6;
		n++;
	} while (t < end);
	r->seconds = now_s() - t0;
	r->cpu_s = cpu_s() - c0;
	r->ops = n;
	close(c);
	pthread_join(th, NULL);
	if (n > (uint64_t)LIM_RTT_MAX)
		n = LIM_RTT_MAX;
	qsort(rtt, n, sizeof(double), cmp_double);
	*p50_us = rtt[n / 2];
	*p99_us = rtt[n * 99 / 100];
	free(rtt);
}

static double
per_sec(const struct lim_result *r)
{
	return r->seconds > 0 ? (double)r->ops / r->seconds : 0;
}

static double
cpu_us_op(const struct lim_result *r)
{
	return r->ops ? r->cpu_s * 1e6 / (double)r->ops : 0;
}

/* "limit test=T KEYS ops=... seconds=... per_sec=... syncs=... cpu_us_op=" */
static void
report(const char *test, const char *keys, const struct lim_result *r,
    const char *extra)
{
	printf("limit test=%s %s ops=%llu seconds=%.3f per_sec=%.0f "
	       "syncs=%llu cpu_us_op=%.1f%s\n",
	    test, keys, (unsigned long long)r->ops, r->seconds, per_sec(r),
	    (unsigned long long)r->syncs, cpu_us_op(r), extra);
	fflush(stdout);
}

static void
summary(const char *what, const struct lim_result *r, const char *more)
{
	fprintf(stderr, "  %-44s %9.0f /s  %7.1f us CPU/op%s\n", what,
	    per_sec(r), cpu_us_op(r), more);
}

static int
wanted(const struct lim_opts *o, const char *test)
{
	size_t n = strlen(test);
	const char *p = o->tests;

	while ((p = strstr(p, test)) != NULL) {
		if ((p == o->tests || p[-1] == ',') &&
		    (p[n] == '\0' || p[n] == ','))
			return 1;
		p += n;
	}
	return 0;
}

static void
run_maildir(const struct lim_opts *o, const char *data)
{
	struct lim_result r = {0};
	char keys[128], what[128], more[64];
	int mode;

	if (wanted(o, "file")) {
		test_file(o, data, &r);
		fmt_path(keys, sizeof(keys),
		    "sync=fsync size=%zu threads=1 "
		    "batch=1",
		    o->size);
		report("maildir_file", keys, &r, "");
		fmt_path(
		    what, sizeof(what), "Maildir file+new/ fsync, 1 thread");
		summary(what, &r, "");
	}
	for (mode = 0; mode < 2 && wanted(o, "group"); mode++) {
		memset(&r, 0, sizeof(r));
		test_group(o, data, mode, &r);
		fmt_path(keys, sizeof(keys),
		    "sync=%s size=%zu threads=%d "
		    "batch=%d",
		    mode ? "fdatasync" : "syncfs", o->size, o->threads,
		    o->batch);
		fmt_path(more, sizeof(more), " commits=%llu batch_avg=%.1f",
		    (unsigned long long)r.commits,
		    r.commits ? (double)r.ops / (double)r.commits : 0.0);
		report("maildir_group", keys, &r, more);
		fmt_path(what, sizeof(what), "Maildir group commit, %s, %d thr",
		    mode ? "fdatasync+dirs" : "syncfs", o->threads);
		summary(what, &r, more);
	}
}

static void
run_log_tcp(const struct lim_opts *o, char *rec)
{
	struct lim_result r;
	char keys[128], what[128], extra[96];
	double p50, p99;
	int i;

	for (i = 0; i < o->nlog_batch && wanted(o, "log"); i++) {
		memset(&r, 0, sizeof(r));
		test_log(o, rec, o->log_batch[i], &r);
		fmt_path(keys, sizeof(keys),
		    "sync=fdatasync size=%zu "
		    "threads=1 batch=%d",
		    o->size, o->log_batch[i]);
		report("log", keys, &r, "");
		fmt_path(what, sizeof(what), "log append, fdatasync per %d",
		    o->log_batch[i]);
		summary(what, &r, "");
	}
	if (wanted(o, "tcp")) {
		memset(&r, 0, sizeof(r));
		test_tcp(o, &r, &p50, &p99);
		fmt_path(
		    extra, sizeof(extra), " p50_us=%.1f p99_us=%.1f", p50, p99);
		report("tcp_rtt", "msg=64", &r, extra);
		summary("loopback TCP round trip (64 B)", &r, extra);
	}
}

static long
num_arg(const char *s, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v < lo || v > hi) {
		errno = 0;
		die("bad number %s (%ld..%ld)", s, lo, hi);
	}
	return v;
}

static void
batches_arg(struct lim_opts *o, const char *s)
{
	char buf[128], *p, *save = NULL;

	fmt_path(buf, sizeof(buf), "%s", s);
	o->nlog_batch = 0;
	for (p = strtok_r(buf, ",", &save); p != NULL;
	     p = strtok_r(NULL, ",", &save)) {
		if (o->nlog_batch == LIM_MAX_BATCHES) {
			errno = 0;
			die("at most %d log batch sizes", LIM_MAX_BATCHES);
		}
		o->log_batch[o->nlog_batch++] = (int)num_arg(p, 1, 100000);
	}
}

/* every name in the -T list is a test limit has */
static int
tests_known(const char *list)
{
	static const char *const names[] = {"file", "group", "log", "tcp"};
	const char *p = list;
	size_t n, i;

	for (;;) {
		n = strcspn(p, ",");
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (strlen(names[i]) == n &&
			    strncmp(p, names[i], n) == 0)
				break;
		if (i == sizeof(names) / sizeof(names[0]))
			return 0;
		if (p[n] == '\0')
			return 1;
		p += n + 1;
	}
}

static void
usage(void)
{
	fputs("usage: limit [-d seconds] [-s size] [-t threads] [-b batch] "
	      "[-B log,batches] [-T file,group,log,tcp] [--quick] DIR\n",
	    stderr);
	exit(2);
}

static void
parse_args(struct lim_opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"quick", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c, quick = 0, seconds_set = 0;
	char *end;

	while ((c = getopt_long(
		    argc, argv, "d:s:t:b:B:T:qh", longopts, NULL)) != -1) {
		if (c == 'd') {
			o->seconds = strtod(optarg, &end);
			if (*end != '\0' ||
			    !(o->seconds > 0 && o->seconds < 3600))
				usage();
			seconds_set = 1;
		} else if (c == 's')
			o->size = (size_t)num_arg(optarg, 1, 64L << 20);
		else if (c == 't')
			o->threads = (int)num_arg(optarg, 1, LIM_MAX_THREADS);
		else if (c == 'b')
			o->batch = (int)num_arg(optarg, 1, 100000);
		else if (c == 'B')
			batches_arg(o, optarg);
		else if (c == 'T')
			o->tests = optarg;
		else if (c == 'q')
			quick = 1;
		else
			usage();
	}
	if (optind != argc - 1 || !tests_known(o->tests))
		usage();
	if (quick && !seconds_set)
		o->seconds = 0.4;
	fmt_path(o->top, sizeof(o->top), "%s/tern-limit.XXXXXX", argv[optind]);
}

int
main(int argc, char **argv)
{
	static struct lim_opts o = {
	    .seconds = 3,
	    .size = 2048,
	    .threads = 8,
	    .batch = 32,
	    .log_batch = {1, 16, 64},
	    .nlog_batch = 3,
	    .tests = "file,group,log,tcp",
	};
	char *data;

	parse_args(&o, argc, argv);
	if (mkdtemp(o.top) == NULL)
		die("mkdtemp %s", o.top);
	data = malloc(o.size);
	if (data == NULL)
		die("malloc");
	memset(data, 'x', o.size);
	fprintf(stderr, "limit: %s, %.1f s each, %zu-byte files/records\n",
	    o.top, o.seconds, o.size);
	run_maildir(&o, data);
	run_log_tcp(&o, data);
	rm_tree(o.top);
	free(data);
	return 0;
}
