/*
 * maildir_bench: deliveries per second of maildir_deliver, every delivery
 * durable (file fsync, new/ fsync), from T threads into the same mailbox.
 *
 *   maildir_bench [-t threads] [-n per-thread] [-s size] [-b boxes] [dir]
 *
 * dir (default $TMPDIR or /tmp) gets a fresh mkdtemp directory, removed at
 * the end.  -b delivers each message to that many mailboxes at once.
 * Prints one key=value line.  Not part of the tests.
 *
 * Build: cc -std=c17 -D_GNU_SOURCE -O2 -Isrc bench/maildir_bench.c
 *        src/deliver/maildir.c src/util/[a-z]*.c -lpthread -o build/maildir_bench
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deliver/deliver.h"
#include "util/util.h"

#define BENCH_MAX_THREADS 64
#define BENCH_MAX_BOXES 64

struct bench {
	int root_fd;
	int per_thread;
	int nboxes;
	struct iovec iov;
	struct maildir_box boxes[BENCH_MAX_BOXES];
	char paths[BENCH_MAX_BOXES][32];
};

static void *
bench_thread(void *arg)
{
	const struct bench *b = arg;
	char name[NAME_MAX + 1], err[256];
	int i;

	for (i = 0; i < b->per_thread; i++)
		if (maildir_deliver(b->root_fd, b->boxes, (size_t)b->nboxes,
		    &b->iov, 1, name, sizeof(name), err, sizeof(err)) != 0)
			fatalx("deliver: %s", err);
	return NULL;
}

static int
bench_rm(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(p) : unlink(p);
}

static int
bench_arg(const char *s, int lo, int hi)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < lo || v > hi)
		fatalx("bad number: %s", s);
	return (int)v;
}

static void
bench_setup(struct bench *b, const char *base, char *dir, size_t dirlen,
    int size)
{
	char *body = xmalloc((size_t)size);
	int i;

	memset(body, 'x', (size_t)size);
	b->iov.iov_base = body;
	b->iov.iov_len = (size_t)size;
	if (str_fmt(dir, dirlen, "%s/tern-bench-XXXXXX", base) != 0 ||
	    mkdtemp(dir) == NULL)
		fatal("mkdtemp %s", base);
	b->root_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (b->root_fd < 0)
		fatal("open %s", dir);
	for (i = 0; i < b->nboxes; i++) {
		if (str_fmt(b->paths[i], sizeof(b->paths[i]),
		    "bench.example/u%d", i) != 0)
			fatalx("path");
		b->boxes[i].path = b->paths[i];
	}
}

int
main(int argc, char **argv)
{
	static struct bench b = { .per_thread = 1000, .nboxes = 1 };
	pthread_t th[BENCH_MAX_THREADS];
	const char *base = getenv("TMPDIR");
	char dir[PATH_MAX], err[256];
	int c, i, threads = 1, size = 2048;
	uint64_t t0, t1;

	while ((c = getopt(argc, argv, "t:n:s:b:")) != -1) {
		if (c == 't')
			threads = bench_arg(optarg, 1, BENCH_MAX_THREADS);
		else if (c == 'n')
			b.per_thread = bench_arg(optarg, 1, 10000000);
		else if (c == 's')
			size = bench_arg(optarg, 1, 64 << 20);
		else if (c == 'b')
			b.nboxes = bench_arg(optarg, 1, BENCH_MAX_BOXES);
		else
			fatalx("usage: maildir_bench [-t T] [-n N] [-s SIZE] "
			    "[-b BOXES] [dir]");
	}
	if (optind < argc)
		base = argv[optind];
	bench_setup(&b, base != NULL && *base ? base : "/tmp", dir,
	    sizeof(dir), size);
	for (i = 0; i < b.nboxes; i++)	/* not timed: mailbox creation */
		if (maildir_create(b.root_fd, b.paths[i], err, sizeof(err)) != 0)
			fatalx("create: %s", err);
	t0 = time_now_ms();
	for (i = 0; i < threads; i++)
		if (pthread_create(&th[i], NULL, bench_thread, &b) != 0)
			fatalx("pthread_create");
	for (i = 0; i < threads; i++)
		(void)pthread_join(th[i], NULL);
	t1 = time_now_ms();
	printf("threads=%d deliveries=%d size=%d boxes=%d ms=%llu per_sec=%.0f\n",
	    threads, threads * b.per_thread, size, b.nboxes,
	    (unsigned long long)(t1 - t0),
	    (double)threads * b.per_thread * 1000.0 /
	    (double)(t1 - t0 ? t1 - t0 : 1));
	close(b.root_fd);
	(void)nftw(dir, bench_rm, 16, FTW_DEPTH | FTW_PHYS);
	free(b.iov.iov_base);
	return 0;
}
