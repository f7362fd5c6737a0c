/*
 * Unit tests for src/queue/spool.c on a fresh mkdtemp directory per test
 * ($TMPDIR or /tmp).
 *
 * The Makefile links this test with the fault build of the durable-file
 * layer ($(B)/fault/src/fs/file.o, compiled with TERN_FAULT_INJECTION,
 * as in ternd-fault) ahead of the archives, so the tests can make any
 * step of spool.c fail through file.h's hook; spool_int.h gives them the
 * group fsync of env/ on its own.
 *
 * `test_spool --bench` measures instead of testing: commits per second
 * and directory fsyncs per commit with 1, 4 and 16 threads committing
 * 2 KiB messages, and spool_open + spool_scan over 100,000 envelopes.
 */
#define TERN_FAULT_INJECTION 1 /* file.h: declare file_fault_hook */
#include "queue/queue.h"
#include "queue/spool_int.h"
#include "fs/file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "t.h"

static char tdir[PATH_MAX]; /* the state directory of the current test */

/* ---- helpers ------------------------------------------------------------- */

static const char *
tpath(char *out, size_t len, const char *rel)
{
	if (str_fmt(out, len, "%s/queue/%s", tdir, rel) != 0)
		abort();
	return out;
}

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

	if (str_fmt(tdir, sizeof(tdir), "%s/tern-spool-XXXXXX",
		t != NULL ? t : "/tmp") != 0 ||
	    mkdtemp(tdir) == NULL)
		abort();
}

static void
teardown(void)
{
	(void)nftw(tdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Entries of queue/rel besides . and .., or -1. */
static int
count(const char *rel)
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

static bool
exists(const char *dir, const char *name)
{
	char rel[PATH_MAX], p[PATH_MAX];
	struct stat st;

	if (str_fmt(rel, sizeof(rel), "%s/%s", dir, name) != 0)
		abort();
	return stat(tpath(p, sizeof(p), rel), &st) == 0;
}

static void
put_file(const char *dir, const char *name, const void *data, size_t n)
{
	char rel[PATH_MAX], p[PATH_MAX];
	FILE *f;

	if (str_fmt(rel, sizeof(rel), "%s/%s", dir, name) != 0 ||
	    (f = fopen(tpath(p, sizeof(p), rel), "w")) == NULL)
		abort();
	if (n > 0 && fwrite(data, 1, n, f) != n)
		abort();
	if (fclose(f) != 0)
		abort();
}

static void
mk_env(struct queue_env *e, size_t nrcpt)
{
	size_t i;

	queue_env_init(e);
	(void)!str_copy(e->sender, sizeof(e->sender), "claire@example.org", 18);
	(void)!str_copy(e->helo, sizeof(e->helo), "laptop.example.org", 18);
	(void)!str_copy(e->ip, sizeof(e->ip), "192.0.2.7", 9);
	(void)!str_copy(e->proto, sizeof(e->proto), "ESMTPSA", 7);
	for (i = 0; i < nrcpt; i++)
		if (queue_env_add_rcpt(e,
			i % 2 ? "ben@example.net" : "dave@example.com") == NULL)
			abort();
}

/* The encoded form of e with id (for envelopes made by hand). */
static void
put_env(const char *dir, const char *name, const char *id)
{
	struct queue_env e;
	struct buf b;

	mk_env(&e, 1);
	memcpy(e.id, id, QUEUE_ID_LEN + 1);
	buf_init(&b, QUEUE_ENV_FILE_MAX);
	if (queue_env_encode(&e, &b) != 0)
		abort();
	put_file(dir, name, b.data, b.len);
	buf_free(&b);
	queue_env_free(&e);
}

static struct spool *
open_spool(void)
{
	char err[256];
	struct spool *sp = spool_open(tdir, err, sizeof(err));

	if (sp == NULL)
		fprintf(stderr, "spool_open: %s\n", err);
	return sp;
}

static char content_a[] = "Received: from x\r\n";
static char content_b[] = "Subject: hi\r\n\r\nbody\r\n";

/* Commit a two-recipient message; returns 0 and the id in e->id. */
static int
commit(struct spool *sp, struct queue_env *e, char *err, size_t errlen)
{
	struct iovec iov[2] = {
	    {content_a, sizeof(content_a) - 1},
	    {content_b, sizeof(content_b) - 1},
	};

	mk_env(e, 2);
	return spool_commit(sp, e, iov, 2, err, errlen);
}

/* ---- fault hook ---------------------------------------------------------- */

static const char *fault_step; /* the step to fail, NULL: none */
static int fault_at;	       /* fail its fault_at-th call (1-based) */
static bool fault_persist;     /* and every later one */
static int fault_errno;
static int fault_seen; /* calls of fault_step so far */

static int
fault_hook(const char *who, const char *step)
{
	if (strcmp(who, "spool") != 0)
		abort(); /* every step here is the spool's */
	if (fault_step == NULL || strcmp(step, fault_step) != 0)
		return 0;
	fault_seen++;
	if (fault_seen == fault_at ||
	    (fault_persist && fault_seen > fault_at && fault_at > 0))
		return fault_errno;
	return 0;
}

/* A disk whose directory fsync takes 10 ms, so that commits overlap. */
static int
slow_fsync_hook(const char *who, const char *step)
{
	struct timespec ts = {0, 10 * 1000 * 1000};

	(void)who;
	if (strcmp(step, "fsync_dir") == 0)
		nanosleep(&ts, NULL);
	return 0;
}

static void
fault_set(const char *step, int at, int e, bool persist)
{
	fault_step = step;
	fault_at = at;
	fault_errno = e;
	fault_persist = persist;
	fault_seen = 0;
	file_fault_hook = fault_hook;
}

static void
fault_clear(void)
{
	fault_step = NULL;
	file_fault_hook = NULL;
}

/* ---- tests --------------------------------------------------------------- */

static void
test_open_layout(void)
{
	static const char *const dirs[] = {
	    "tmp", "data", "env", "corrupt", "held"};
	char p[PATH_MAX], err[256];
	struct spool *sp, *sp2;
	struct stat st;
	size_t i;

	setup();
	sp = open_spool();
	T_CHECK(sp != NULL);
	for (i = 0; i < 5; i++) {
		T_CHECK(stat(tpath(p, sizeof(p), dirs[i]), &st) == 0);
		T_CHECK_INT(st.st_mode & 0777, 0700);
	}
	sp2 = spool_open(tdir, err, sizeof(err)); /* locked */
	T_CHECK(sp2 == NULL);
	T_CHECK_INT(errno, EWOULDBLOCK);
	T_CHECK(strstr(err, "lock") != NULL);
	spool_close(sp);
	sp = open_spool(); /* the lock went with the close */
	T_CHECK(sp != NULL);
	spool_close(sp);
	spool_close(NULL);
	T_CHECK(spool_open("/nonexistent/tern", err, sizeof(err)) == NULL);
	T_CHECK_INT(errno, ENOENT);
	teardown();
}

static void
test_commit_load(void)
{
	struct queue_env e, l;
	struct spool_stats s;
	struct spool *sp;
	char err[256], p[PATH_MAX], rel[64], got[128];
	struct spool_data d;
	struct stat st;
	ssize_t n;
	int fd;

	setup();
	sp = open_spool();
	T_CHECK_INT(commit(sp, &e, err, sizeof(err)), 0);
	T_CHECK(queue_id_valid(e.id));
	T_CHECK_INT(e.size, sizeof(content_a) + sizeof(content_b) - 2);
	T_CHECK(e.created > 0);
	T_CHECK(exists("env", e.id) && exists("data", e.id));
	T_CHECK_INT(count("tmp"), 0);
	(void)!str_fmt(rel, sizeof(rel), "data/%s", e.id);
	T_CHECK(stat(tpath(p, sizeof(p), rel), &st) == 0);
	T_CHECK_INT(st.st_mode & 0777, 0600);
	T_CHECK_INT(st.st_size, (long long)e.size);
	T_CHECK_INT(spool_open_data(sp, e.id, &d), 0);
	fd = d.fd;
	T_CHECK(fd >= 0 && d.off == 0 && d.len == e.size);
	n = read(fd, got, sizeof(got));
	T_CHECK_INT(n, (long long)e.size);
	T_CHECK(n > 0 && memcmp(got, content_a, sizeof(content_a) - 1) == 0);
	close(fd);
	T_CHECK_INT(spool_load(sp, e.id, &l, err, sizeof(err)), 0);
	T_CHECK_STR(l.id, e.id);
	T_CHECK_STR(l.sender, "claire@example.org");
	T_CHECK_INT(l.nrcpt, 2);
	T_CHECK_STR(l.rcpt[1].addr, "ben@example.net");
	T_CHECK(!l.held);
	T_CHECK_INT(l.created, e.created);
	spool_get_stats(sp, &s);
	T_CHECK_INT(s.commits, 1);
	T_CHECK_INT(s.file_fsyncs, 2);
	T_CHECK_INT(s.dir_waits, 2);
	queue_env_free(&l);
	T_CHECK_INT(
	    spool_load(sp, "0123456789abcdef", &l, err, sizeof(err)), -1);
	T_CHECK_INT(errno, ENOENT);
	T_CHECK_INT(
	    spool_load(sp, "../../etc/passwd", &l, err, sizeof(err)), -1);
	T_CHECK_INT(errno, EINVAL);
	T_CHECK_INT(spool_open_data(sp, "../x", &d), -1);
	T_CHECK_INT(d.fd, -1);
	queue_env_free(&l);
	queue_env_free(&e);
	spool_close(sp);
	teardown();
}

static void
test_commit_refusals(void)
{
	struct queue_env e;
	struct spool *sp;
	char err[256];
	struct iovec iov = {(void *)"x", 1};

	setup();
	sp = open_spool();
	mk_env(&e, 0); /* no recipients: no decoder would take it */
	T_CHECK_INT(spool_commit(sp, &e, &iov, 1, err, sizeof(err)), -1);
	T_CHECK_INT(errno, EINVAL);
	T_CHECK(strstr(err, "encode") != NULL);
	queue_env_free(&e);
	mk_env(&e, 1);
	T_CHECK_INT(spool_commit(sp, &e, &iov, -1, err, sizeof(err)), -1);
	T_CHECK_INT(errno, EINVAL);
	T_CHECK_INT(spool_commit(sp, &e, NULL, 1, err, sizeof(err)), -1);
	T_CHECK_INT(spool_commit(sp, &e, NULL, 0, err, sizeof(err)), 0);
	T_CHECK_INT(e.size, 0); /* an empty message is a message */
	T_CHECK_INT(count("data") + count("env") + count("tmp"), 2);
	queue_env_free(&e);
	spool_close(sp);
	teardown();
}

static void
test_update(void)
{
	struct queue_env e, l;
	struct spool *sp;
	char err[256];

	setup();
	sp = open_spool();
	T_CHECK_INT(commit(sp, &e, err, sizeof(err)), 0);
	e.rcpt[0].state = QUEUE_RCPT_DELIVERED;
	e.rcpt[0].attempts = 1;
	e.rcpt[0].code = 250;
	(void)!str_copy(e.rcpt[0].text, sizeof(e.rcpt[0].text), "ok\r\nE 0", 7);
	T_CHECK_INT(spool_update(sp, &e), 0);
	T_CHECK_INT(spool_load(sp, e.id, &l, err, sizeof(err)), 0);
	T_CHECK_INT(l.rcpt[0].state, QUEUE_RCPT_DELIVERED);
	T_CHECK_STR(l.rcpt[0].text, "ok\r\nE 0");
	T_CHECK_INT(count("tmp"), 0);
	T_CHECK_INT(count("env"), 1);
	queue_env_free(&l);
	/* an update never creates an envelope */
	memcpy(e.id, "0123456789abcdef", QUEUE_ID_LEN + 1);
	T_CHECK_INT(spool_update(sp, &e), -1);
	T_CHECK_INT(errno, ENOENT);
	T_CHECK(!exists("env", "0123456789abcdef"));
	T_CHECK_INT(count("tmp"), 0);
	memcpy(e.id, "../../x/abcdef00", QUEUE_ID_LEN + 1);
	T_CHECK_INT(spool_update(sp, &e), -1);
	T_CHECK_INT(errno, EINVAL);
	queue_env_free(&e);
	spool_close(sp);
	teardown();
}

static void
test_hold_release(void)
{
	struct queue_env e, l;
	struct spool *sp;
	char err[256];

	setup();
	sp = open_spool();
	T_CHECK_INT(commit(sp, &e, err, sizeof(err)), 0);
	T_CHECK_INT(spool_hold(sp, e.id), 0);
	T_CHECK(!exists("env", e.id) && exists("held", e.id));
	T_CHECK(exists("data", e.id));
	T_CHECK_INT(spool_load(sp, e.id, &l, err, sizeof(err)), 0);
	T_CHECK(l.held);
	queue_env_free(&l);
	T_CHECK_INT(spool_update(sp, &e), -1); /* a late update: refused */
	T_CHECK_INT(errno, ENOENT);
	T_CHECK(!exists("env", e.id));
	T_CHECK_INT(spool_hold(sp, e.id), -1);
	T_CHECK_INT(errno, ENOENT);
	T_CHECK_INT(spool_release(sp, e.id), 0);
	T_CHECK(exists("env", e.id) && !exists("held", e.id));
	T_CHECK_INT(spool_release(sp, e.id), -1);
	T_CHECK_INT(errno, ENOENT);
	T_CHECK_INT(spool_hold(sp, "nothex!!nothex!!"), -1);
	T_CHECK_INT(errno, EINVAL);
	queue_env_free(&e);
	spool_close(sp);
	teardown();
}

static void
test_remove(void)
{
	struct queue_env e, h;
	struct spool_stats s;
	struct spool *sp;
	char err[256];

	setup();
	sp = open_spool();
	T_CHECK_INT(commit(sp, &e, err, sizeof(err)), 0);
	T_CHECK_INT(commit(sp, &h, err, sizeof(err)), 0);
	T_CHECK_INT(spool_hold(sp, h.id), 0);
	T_CHECK_INT(spool_remove(sp, e.id), 0);
	T_CHECK(!exists("env", e.id) && !exists("data", e.id));
	T_CHECK_INT(spool_remove(sp, e.id), -1);
	T_CHECK_INT(errno, ENOENT);
	T_CHECK_INT(spool_remove(sp, h.id), 0); /* a held one too */
	T_CHECK_INT(count("held") + count("data") + count("env"), 0);
	T_CHECK_INT(spool_remove(sp, "../data/abcdef0"), -1);
	T_CHECK_INT(errno, EINVAL);
	spool_get_stats(sp, &s);
	T_CHECK_INT(s.removes, 2);
	queue_env_free(&e);
	queue_env_free(&h);
	spool_close(sp);
	teardown();
}

struct scan_ctx {
	int n, held;
	struct queue_env kept;
};

static void
scan_cb(struct queue_env *env, void *v)
{
	struct scan_ctx *c = v;

	c->n++;
	c->held += env->held;
	if (c->kept.nrcpt == 0) { /* keep the first: a move */
		c->kept = *env;
		queue_env_init(env);
	}
}

static void
test_scan(void)
{
	struct scan_ctx c = {0, 0, {.nrcpt = 0}};
	struct queue_env e;
	struct spool *sp;
	char err[256];
	int i;

	setup();
	sp = open_spool();
	for (i = 0; i < 4; i++) {
		T_CHECK_INT(commit(sp, &e, err, sizeof(err)), 0);
		if (i == 0)
			T_CHECK_INT(spool_hold(sp, e.id), 0);
		queue_env_free(&e);
	}
	T_CHECK_INT(spool_scan(sp, scan_cb, &c), 4);
	T_CHECK_INT(c.n, 4);
	T_CHECK_INT(c.held, 1);
	T_CHECK_INT(c.kept.nrcpt, 2);
	T_CHECK_STR(c.kept.rcpt[0].addr, "dave@example.com");
	queue_env_free(&c.kept);
	/* damaged after start-up: the scan moves it aside and goes on */
	put_file("env", "00000000deadbeef", "V 1\nI 00", 8);
	put_file("data", "00000000deadbeef", "x", 1);
	memset(&c, 0, sizeof(c));
	T_CHECK_INT(spool_scan(sp, scan_cb, &c), 4);
	queue_env_free(&c.kept);
	T_CHECK(exists("corrupt", "00000000deadbeef.env"));
	T_CHECK(exists("corrupt", "00000000deadbeef.data"));
	T_CHECK(!exists("env", "00000000deadbeef"));
	spool_close(sp);
	teardown();
}

/* ---- concurrency --------------------------------------------------------- */

struct worker {
	struct spool *sp;
	int n, ok;
	char (*ids)[QUEUE_ID_LEN + 1];
	double seconds; /* bench: run this long instead of n */
};

static void *
worker_run(void *v)
{
	struct worker *w = v;
	char body[2048];
	struct iovec iov = {body, sizeof(body)};
	struct queue_env e;
	char err[256];
	uint64_t end = time_now_ms() + (uint64_t)(w->seconds * 1000);
	int i;

	memset(body, 'x', sizeof(body));
	for (i = 0; w->seconds > 0 ? time_now_ms() < end : i < w->n; i++) {
		mk_env(&e, 1);
		if (spool_commit(w->sp, &e, &iov, 1, err, sizeof(err)) == 0) {
			if (w->ids != NULL)
				memcpy(w->ids[w->ok], e.id, QUEUE_ID_LEN + 1);
			w->ok++;
		}
		queue_env_free(&e);
	}
	return NULL;
}

static int
id_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void
test_concurrent(void)
{
	enum { NT = 8, PER = 40 };
	struct worker w[NT];
	pthread_t th[NT];
	char(*ids)[QUEUE_ID_LEN + 1] = xcalloc(NT * PER, sizeof(*ids));
	struct scan_ctx c;
	struct spool_stats s;
	struct spool *sp;
	int i, total = 0;

	setup();
	sp = open_spool();
	file_fault_hook = slow_fsync_hook;
	for (i = 0; i < NT; i++) {
		w[i] = (struct worker){sp, PER, 0, ids + i * PER, 0};
		T_CHECK(pthread_create(&th[i], NULL, worker_run, &w[i]) == 0);
	}
	for (i = 0; i < NT; i++) {
		pthread_join(th[i], NULL);
		total += w[i].ok;
	}
	file_fault_hook = NULL;
	T_CHECK_INT(total, NT * PER);
	qsort(ids, NT * PER, sizeof(*ids), id_cmp);
	for (i = 1; i < NT * PER; i++)
		T_CHECK(strcmp(ids[i - 1], ids[i]) != 0);
	memset(&c, 0, sizeof(c));
	T_CHECK_INT(spool_scan(sp, scan_cb, &c), NT * PER);
	queue_env_free(&c.kept);
	T_CHECK_INT(count("data"), NT * PER);
	spool_get_stats(sp, &s);
	T_CHECK_INT(s.commits, NT * PER);
	T_CHECK_INT(s.dir_waits, 2 * NT * PER);
	/* shared: fewer fsyncs of env/ than commits, fewer of all the
	 * directories than asked for (test_group_sync counts exactly) */
	T_CHECK(s.env_fsyncs < s.commits);
	T_CHECK(s.dir_fsyncs < s.dir_waits);
	fprintf(stderr,
	    "concurrent: %d commits by %d threads: %llu fsyncs "
	    "of env/, %llu directory fsyncs (10 ms each) for %llu waits\n",
	    total, NT, (unsigned long long)s.env_fsyncs,
	    (unsigned long long)s.dir_fsyncs, (unsigned long long)s.dir_waits);
	spool_close(sp);
	free(ids);
	teardown();
}

/*
 * Leader and followers, exactly: one thread's fsync of env/ is held in the
 * hook until seven more threads wait for theirs; all seven must then be
 * served by one more fsync (they made their entries after the first
 * started), and a failure must reach exactly the waiters of its
 * generation.
 */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int gate_state; /* 1: first fsync held, 2: released */
static int gate_calls;
static int gate_fail; /* the fsync_dir call that fails, 0: none */

static int
gate_hook(const char *who, const char *step)
{
	int call, e = 0;

	(void)who;
	if (strcmp(step, "fsync_dir") != 0)
		return 0;
	pthread_mutex_lock(&gate_mu);
	call = ++gate_calls;
	if (call == 1) {
		gate_state = 1;
		pthread_cond_broadcast(&gate_cv);
		while (gate_state != 2)
			pthread_cond_wait(&gate_cv, &gate_mu);
	}
	if (call == gate_fail)
		e = EIO;
	pthread_mutex_unlock(&gate_mu);
	return e;
}

struct syncer {
	struct spool *sp;
	int r, e;
};

static void *
syncer_run(void *v)
{
	struct syncer *s = v;

	s->r = spool_sync_env_dir(s->sp);
	s->e = errno;
	return NULL;
}

static uint64_t
stat_waits(struct spool *sp)
{
	struct spool_stats s;

	spool_get_stats(sp, &s);
	return s.dir_waits;
}

/* Eight waiters on env/ as above; returns the fsyncs run. */
static int
run_group(int fail, struct syncer s[8])
{
	struct timespec ms = {0, 1000 * 1000}, settle = {0, 100000000};
	struct spool_stats st;
	struct spool *sp;
	pthread_t th[8];
	uint64_t base;
	int i;

	setup();
	sp = open_spool();
	gate_state = gate_calls = 0;
	gate_fail = fail;
	spool_get_stats(sp, &st);
	base = st.dir_fsyncs;
	file_fault_hook = gate_hook;
	for (i = 0; i < 8; i++) {
		s[i] = (struct syncer){sp, 0, 0};
		if (pthread_create(&th[i], NULL, syncer_run, &s[i]) != 0)
			abort();
		pthread_mutex_lock(&gate_mu);
		while (i == 0 && gate_state != 1)
			pthread_cond_wait(&gate_cv, &gate_mu);
		pthread_mutex_unlock(&gate_mu);
	}
	while (stat_waits(sp) < st.dir_waits + 8)
		nanosleep(&ms, NULL);
	nanosleep(&settle, NULL); /* let them reach the condition wait */
	pthread_mutex_lock(&gate_mu);
	gate_state = 2;
	pthread_cond_broadcast(&gate_cv);
	pthread_mutex_unlock(&gate_mu);
	for (i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	file_fault_hook = NULL;
	spool_get_stats(sp, &st);
	spool_close(sp);
	teardown();
	return (int)(st.dir_fsyncs - base);
}

static void
test_group_sync(void)
{
	struct syncer s[8];
	int i;

	T_CHECK_INT(run_group(0, s), 2); /* not 8 */
	for (i = 0; i < 8; i++)
		T_CHECK_INT(s[i].r, 0);
	T_CHECK_INT(run_group(1, s), 2); /* the first fails */
	T_CHECK_INT(s[0].r, -1);
	T_CHECK_INT(s[0].e, EIO);
	for (i = 1; i < 8; i++)
		T_CHECK_INT(s[i].r, 0);
	T_CHECK_INT(run_group(2, s), 2); /* the shared one fails */
	T_CHECK_INT(s[0].r, 0);
	for (i = 1; i < 8; i++) {
		T_CHECK_INT(s[i].r, -1);
		T_CHECK_INT(s[i].e, EIO);
	}
}

/* ---- faults -------------------------------------------------------------- */

static const char *const commit_steps[] = {
    "create", "write", "fsync", "close", "fsync_dir", "rename"};

/* How often a clean commit runs step. */
static int
steps_in_commit(struct spool *sp, const char *step)
{
	struct queue_env e;
	char err[256];
	int n;

	fault_set(step, 0, 0, false);
	if (commit(sp, &e, err, sizeof(err)) != 0)
		abort();
	n = fault_seen;
	fault_clear();
	if (spool_remove(sp, e.id) != 0)
		abort();
	queue_env_free(&e);
	return n;
}

static void
test_commit_faults(void)
{
	static const int errs[] = {ENOSPC, EIO, EDQUOT};
	struct queue_env e;
	struct spool *sp;
	char err[256];
	size_t i;
	int k, n, tried = 0;

	setup();
	sp = open_spool();
	for (i = 0; i < sizeof(commit_steps) / sizeof(commit_steps[0]); i++) {
		n = steps_in_commit(sp, commit_steps[i]);
		T_CHECK(n >= 1);
		for (k = 1; k <= n; k++) {
			int want = errs[(size_t)k % 3];

			fault_set(commit_steps[i], k, want, false);
			T_CHECK_INT(commit(sp, &e, err, sizeof(err)), -1);
			T_CHECK_INT(errno, want);
			T_CHECK(err[0] != '\0' && e.id[0] == '\0');
			fault_clear();
			T_CHECK_INT(
			    count("tmp") + count("data") + count("env"), 0);
			queue_env_free(&e);
			tried++;
		}
	}
	T_CHECK(tried >= 8);
	/* and the spool still works */
	T_CHECK_INT(commit(sp, &e, err, sizeof(err)), 0);
	queue_env_free(&e);
	spool_close(sp);
	teardown();
}

/*
 * env/ cannot be synced at all: the envelope goes, the content stays for
 * recovery (the envelope might come back after a crash), and the next
 * start removes it.
 */
static void
test_commit_env_sync_broken(void)
{
	struct queue_env e;
	struct spool *sp;
	char err[256];

	setup();
	sp = open_spool();
	fault_set("fsync_dir", 2, EIO, true); /* data/ passes, env/ never */
	T_CHECK_INT(commit(sp, &e, err, sizeof(err)), -1);
	T_CHECK_INT(errno, EIO);
	fault_clear();
	T_CHECK_INT(count("env") + count("tmp"), 0);
	T_CHECK_INT(count("data"), 1);
	queue_env_free(&e);
	spool_close(sp);
	sp = open_spool();
	T_CHECK_INT(count("data"), 0); /* an orphan: removed */
	spool_close(sp);
	teardown();
}

/* All of path into out (reset first, NUL-terminated): 0, or -1. */
static int
read_file(const char *path, struct buf *out)
{
	FILE *f = fopen(path, "rb");
	char chunk[4096];
	size_t n;
	int rc = 0;

	if (f == NULL)
		return -1;
	buf_reset(out);
	while (rc == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		rc = buf_append(out, chunk, n);
	if (ferror(f))
		rc = -1;
	fclose(f);
	return rc;
}

/* Read env/id into out (for before/after comparisons). */
static void
slurp_env(const char *id, struct buf *out)
{
	char rel[64], p[PATH_MAX];

	(void)!str_fmt(rel, sizeof(rel), "env/%s", id);
	if (read_file(tpath(p, sizeof(p), rel), out) != 0)
		abort();
}

static void
test_update_faults(void)
{
	static const char *const steps[] = {
	    "create", "write", "fsync", "close", "rename", "fsync_dir"};
	struct queue_env e;
	struct buf before, after;
	struct spool *sp;
	char err[256];
	size_t i;

	setup();
	sp = open_spool();
	buf_init(&before, 1 << 20);
	buf_init(&after, 1 << 20);
	T_CHECK_INT(commit(sp, &e, err, sizeof(err)), 0);
	slurp_env(e.id, &before);
	e.rcpt[0].state = QUEUE_RCPT_FAILED;
	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		fault_set(steps[i], 1, ENOSPC, false);
		T_CHECK_INT(spool_update(sp, &e), -1);
		T_CHECK_INT(errno, ENOSPC);
		fault_clear();
		T_CHECK_INT(count("tmp"), 0);
		T_CHECK_INT(count("env"), 1);
		slurp_env(e.id, &after);
		/* before the exchange the old one stays; after it (the sync
		 * failed) the new one is in place: either is whole */
		if (strcmp(steps[i], "fsync_dir") != 0)
			T_CHECK(
			    after.len == before.len &&
			    memcmp(after.data, before.data, after.len) == 0);
		else
			T_CHECK(strstr(after.data, "FAILED") != NULL);
	}
	buf_free(&before);
	buf_free(&after);
	queue_env_free(&e);
	spool_close(sp);
	teardown();
}

static void
test_remove_hold_faults(void)
{
	struct queue_env e;
	struct spool *sp;
	char err[256];

	setup();
	sp = open_spool();
	T_CHECK_INT(commit(sp, &e, err, sizeof(err)), 0);
	fault_set("unlink", 1, EIO, false); /* the envelope's unlink */
	T_CHECK_INT(spool_remove(sp, e.id), -1);
	T_CHECK_INT(errno, EIO);
	T_CHECK(exists("env", e.id) && exists("data", e.id));
	fault_set("rename", 1, ENOSPC, false);
	T_CHECK_INT(spool_hold(sp, e.id), -1);
	T_CHECK_INT(errno, ENOSPC);
	T_CHECK(exists("env", e.id) && !exists("held", e.id));
	fault_set("fsync_dir", 1, EIO, false); /* removal not durable */
	T_CHECK_INT(spool_remove(sp, e.id), -1);
	T_CHECK(!exists("env", e.id) && exists("data", e.id));
	fault_clear();
	spool_close(sp);
	sp = open_spool();
	T_CHECK_INT(count("data"), 0);
	queue_env_free(&e);
	T_CHECK_INT(commit(sp, &e, err, sizeof(err)), 0);
	fault_set("unlink", 2, EIO, false); /* the data's: still removed */
	T_CHECK_INT(spool_remove(sp, e.id), 0);
	fault_clear();
	T_CHECK(!exists("env", e.id) && exists("data", e.id));
	queue_env_free(&e);
	spool_close(sp);
	teardown();
}

/* ---- recovery ------------------------------------------------------------ */

/* Every crash state of docs/queue.md's recovery table, made by hand. */
static void
make_crash_states(void)
{
	char rel[64], p[PATH_MAX];
	struct stat st;

	put_file("data", "00000000000000a1", "orphan", 6);
	put_file("tmp", "00000000000000a2", "half an envelope", 16);
	put_file("tmp", "junk name", "x", 1);
	put_file("env", "00000000000000c1", "garbage\n", 8);
	put_file("data", "00000000000000c1", "content", 7);
	put_env("env", "00000000000000c2", "00000000000000c2"); /* no data */
	put_env("env", "00000000000000c3", "00000000000000c4"); /* wrong id */
	put_file("data", "00000000000000c3", "content", 7);
	put_env("env", "00000000000000c5", "00000000000000c5");
	put_file("data", "00000000000000c5", "content", 7);
	put_env("held", "00000000000000c5", "00000000000000c5"); /* both */
	put_env("held", "00000000000000b1", "00000000000000b1");
	put_file("data", "00000000000000b1", "held content", 12);
	put_file("data", "README", "not ours", 8);
	put_file("env", "notes.txt", "not ours", 8);
	put_env("env", "00000000000000c6", "00000000000000c6");
	put_file("data", "00000000000000c6", "content", 7);
	(void)!str_fmt(rel, sizeof(rel), "env/%s", "00000000000000c6");
	if (stat(tpath(p, sizeof(p), rel), &st) != 0 ||
	    truncate(p, st.st_size / 2) != 0) /* cut in the middle */
		abort();
}

/* What recovery made of make_crash_states(), good being a real commit. */
static void
check_recovered(const char *good)
{
	T_CHECK(exists("env", good) && exists("data", good));
	T_CHECK(!exists("data", "00000000000000a1"));
	T_CHECK_INT(count("tmp"), 0);
	T_CHECK(exists("corrupt", "00000000000000c1.env"));
	T_CHECK(exists("corrupt", "00000000000000c1.data"));
	T_CHECK(exists("corrupt", "00000000000000c2.env"));
	T_CHECK(exists("corrupt", "00000000000000c3.env"));
	T_CHECK(exists("corrupt", "00000000000000c3.data"));
	T_CHECK(exists("corrupt", "00000000000000c6.env"));
	T_CHECK(exists("corrupt", "00000000000000c6.data"));
	/* in both env/ and held/: env/ aside, held/ and its data kept */
	T_CHECK(exists("corrupt", "00000000000000c5.env"));
	T_CHECK(exists("held", "00000000000000c5"));
	T_CHECK(exists("data", "00000000000000c5"));
	T_CHECK(exists("held", "00000000000000b1"));
	T_CHECK(exists("data", "00000000000000b1"));
	T_CHECK(exists("data", "README") && exists("env", "notes.txt"));
	T_CHECK_INT(count("corrupt"), 8);
}

static void
test_recovery(void)
{
	struct scan_ctx c;
	struct queue_env e;
	struct spool *sp;
	char err[256], good[QUEUE_ID_LEN + 1];
	int pass;

	setup();
	sp = open_spool();
	T_CHECK_INT(commit(sp, &e, err, sizeof(err)), 0);
	memcpy(good, e.id, sizeof(good));
	queue_env_free(&e);
	spool_close(sp);
	make_crash_states();
	/* the second pass finds nothing more to do */
	for (pass = 0; pass < 2; pass++) {
		sp = open_spool();
		T_CHECK(sp != NULL);
		check_recovered(good);
		memset(&c, 0, sizeof(c));
		T_CHECK_INT(spool_scan(sp, scan_cb, &c), 3);
		T_CHECK_INT(c.held, 2);
		queue_env_free(&c.kept);
		spool_close(sp);
	}
	teardown();
}

/* ---- benchmarks (--bench) ------------------------------------------------ */

static double
now_s(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static void
bench_commits(int nthreads, double seconds)
{
	struct worker w[16];
	pthread_t th[16];
	struct spool_stats s;
	struct spool *sp;
	double t0, t;
	int i, total = 0;

	setup();
	sp = open_spool();
	t0 = now_s();
	for (i = 0; i < nthreads; i++) {
		w[i] = (struct worker){sp, 0, 0, NULL, seconds};
		if (pthread_create(&th[i], NULL, worker_run, &w[i]) != 0)
			abort();
	}
	for (i = 0; i < nthreads; i++) {
		pthread_join(th[i], NULL);
		total += w[i].ok;
	}
	t = now_s() - t0;
	spool_get_stats(sp, &s);
	printf("bench commit threads=%d commits=%d seconds=%.2f "
	       "commits_per_s=%.0f dir_fsyncs_per_commit=%.3f "
	       "env_fsyncs_per_commit=%.3f (unshared: 2 and 1)\n",
	    nthreads, total, t, total / t, (double)s.dir_fsyncs / (double)total,
	    (double)s.env_fsyncs / (double)total);
	spool_close(sp);
	teardown();
}

static void
bench_count_cb(struct queue_env *env, void *v)
{
	(void)env;
	(*(int *)v)++;
}

/* 100,000 small envelopes written by hand (no fsync), then open + scan. */
static void
bench_scan(int n)
{
	struct spool *sp;
	struct queue_env e;
	struct buf b;
	double t0, t1, t2;
	int i, seen = 0;

	setup();
	sp = open_spool();
	spool_close(sp);
	mk_env(&e, 2);
	buf_init(&b, QUEUE_ENV_FILE_MAX);
	for (i = 0; i < n; i++) {
		if (str_fmt(e.id, sizeof(e.id), "%016x", i) != 0)
			abort();
		buf_reset(&b);
		if (queue_env_encode(&e, &b) != 0)
			abort();
		put_file("env", e.id, b.data, b.len);
		put_file("data", e.id, "x", 1);
	}
	buf_free(&b);
	queue_env_free(&e);
	t0 = now_s();
	sp = open_spool();
	t1 = now_s();
	if (spool_scan(sp, bench_count_cb, &seen) != n || seen != n)
		abort();
	t2 = now_s();
	printf("bench scan envelopes=%d open_recovery_s=%.2f scan_s=%.2f "
	       "total_s=%.2f\n",
	    n, t1 - t0, t2 - t1, t2 - t0);
	spool_close(sp);
	teardown();
}

int
main(int argc, char **argv)
{
	log_init("test_spool", LOG_LEVEL_WARN);
	if (argc > 1 && strcmp(argv[1], "--bench") == 0) {
		bench_commits(1, 3);
		bench_commits(4, 3);
		bench_commits(16, 3);
		bench_scan(100000);
		return 0;
	}
	T_RUN(test_open_layout);
	T_RUN(test_commit_load);
	T_RUN(test_commit_refusals);
	T_RUN(test_update);
	T_RUN(test_hold_release);
	T_RUN(test_remove);
	T_RUN(test_scan);
	T_RUN(test_concurrent);
	T_RUN(test_group_sync);
	T_RUN(test_commit_faults);
	T_RUN(test_commit_env_sync_broken);
	T_RUN(test_update_faults);
	T_RUN(test_remove_hold_faults);
	T_RUN(test_recovery);
	return t_summary();
}
