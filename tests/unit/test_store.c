/*
 * Unit tests for src/store/store.c: the store on a real worker pool and
 * loop, over a mkdtemp directory (mail root and spool).
 *
 * The pool has one thread, so its jobs run in the order submitted and the
 * group commit's batches are deterministic: four Maildir-only messages
 * submitted at once go one alone (the plain fsync path), then a batch of
 * one (the first staged), then a batch of the two staged while it ran.
 * A message with a remote envelope reaches the on_queued callback before
 * its done(), and the store keeps nothing of it.
 */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <sys/stat.h>

#include <event2/event.h>

#include "deliver/deliver.h"
#include "queue/queue.h"
#include "store/store.h"
#include "t.h"
#include "t_loop.h"
#include "workers/workers.h"

#define DEADLINE_S 10

static char tdir[PATH_MAX];

static struct {
	struct event_base *base;
	struct workers *w;
	struct spool *sp;
	struct store *st;
	int root_fd;
	unsigned want, ndone;
	unsigned nqueued;
	bool queued_before_done; /* every on_queued came before its done */
	char queued_id[QUEUE_ID_LEN + 1];
} S;

/* ---- the directory ------------------------------------------------------ */

static int
rm_one(const char *p, const struct stat *sb, int f, struct FTW *fw)
{
	(void)sb;
	(void)f;
	(void)fw;
	return remove(p);
}

static int
count_in(const char *box, const char *sub)
{
	char p[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int n = 0;

	if (str_fmt(p, sizeof(p), "%s/mail/%s/%s", tdir, box, sub) != 0)
		abort();
	if ((d = opendir(p)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* ---- the store and its loop --------------------------------------------- */

static void
on_queued(void *arg, struct queue_env *env)
{
	T_CHECK(arg == &S);
	S.nqueued++;
	memcpy(S.queued_id, env->id, sizeof(S.queued_id));
	queue_env_free(env); /* the callee owns it */
	free(env);
}

static void
loop_until_done(unsigned want)
{
	S.want = want;
	if (S.ndone < S.want)
		t_loop_dispatch(S.base, DEADLINE_S);
}

static void
setup(void)
{
	const char *t = getenv("TMPDIR");
	char p[PATH_MAX], err[256];

	memset(&S, 0, sizeof(S));
	if (str_fmt(tdir, sizeof(tdir), "%s/tern-store-XXXXXX",
		t != NULL ? t : "/tmp") != 0 ||
	    mkdtemp(tdir) == NULL ||
	    str_fmt(p, sizeof(p), "%s/mail", tdir) != 0 || mkdir(p, 0700) != 0)
		abort();
	if ((S.root_fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		abort();
	if ((S.sp = spool_open(tdir, err, sizeof(err))) == NULL) {
		fprintf(stderr, "spool_open: %s\n", err);
		abort();
	}
	if ((S.base = event_base_new()) == NULL)
		abort();
	S.w = workers_start(S.base, 1);
	S.st = store_new(S.base, S.root_fd, S.sp, S.w, on_queued, &S);
	S.queued_before_done = true;
}

static void
teardown(void)
{
	workers_stop(S.w);
	store_free(S.st); /* asserts nothing is left in flight */
	spool_close(S.sp);
	event_base_free(S.base);
	close(S.root_fd);
	(void)nftw(tdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- requests ----------------------------------------------------------- */

struct req {
	struct inject ij;
	int rc;
	bool finished;
	unsigned nqueued_at_done;
};

static void
req_done(struct inject *ij)
{
	struct req *r = (struct req *)ij;

	r->rc = ij->rc;
	r->finished = true;
	r->nqueued_at_done = S.nqueued;
	if (ij->queued && ij->env != NULL)
		S.queued_before_done = false;
	if (++S.ndone == S.want)
		event_base_loopbreak(S.base);
}

static const char body[] = "Subject: t\r\n\r\nhello\r\n";

/* A request for the mailbox box (relative to the mail root). */
static void
req_maildir(struct req *r, const char *box)
{
	memset(r, 0, sizeof(*r));
	inject_init(&r->ij, S.st);
	if (buf_append_str(
		&r->ij.return_path, "Return-Path: <a@b.example>\r\n") ||
	    buf_append_str(&r->ij.head, "Received: by test\r\n"))
		abort();
	r->ij.body = body;
	r->ij.body_len = sizeof(body) - 1;
	r->ij.boxes = xcalloc(1, sizeof(*r->ij.boxes));
	r->ij.boxes[0].path = box;
	r->ij.nboxes = 1;
	r->rc = -2;
}

static void
noop_prepare(struct inject *ij, void *arg)
{
	(void)ij;
	(void)arg;
}

/* ---- tests -------------------------------------------------------------- */

static void
test_group_commit_batches(void)
{
	struct req r[4];
	struct store_stats stats;
	unsigned i;

	setup();
	for (i = 0; i < 4; i++) {
		req_maildir(&r[i], "example.org/ann");
		inject_submit(&r[i].ij, req_done);
	}
	loop_until_done(4);
	store_stats(S.st, &stats);
	for (i = 0; i < 4; i++) {
		T_CHECK(r[i].finished);
		T_CHECK_INT(r[i].rc, 0);
		inject_clear(&r[i].ij);
	}
	/* r[0] alone (fsync), then {r[1]}, then {r[2], r[3]}; three syncfs,
	 * not four: the one that makes r[1]'s link durable also flushes the
	 * content of r[2] and r[3], staged meanwhile */
	T_CHECK_INT(stats.commit_batches, 2);
	T_CHECK_INT(stats.commit_messages, 3);
	T_CHECK_INT(stats.commit_syncs, 3);
	T_CHECK_INT(count_in("example.org/ann", "new"), 4);
	T_CHECK_INT(count_in("example.org/ann", "tmp"), 0);
	T_CHECK_INT(S.nqueued, 0);

	/* quiet again: the next message is alone, no batch */
	S.ndone = 0;
	req_maildir(&r[0], "example.org/ann");
	inject_submit(&r[0].ij, req_done);
	loop_until_done(1);
	store_stats(S.st, &stats);
	T_CHECK_INT(r[0].rc, 0);
	T_CHECK_INT(stats.commit_batches, 2);
	T_CHECK_INT(stats.commit_messages, 3);
	T_CHECK_INT(count_in("example.org/ann", "new"), 5);
	inject_clear(&r[0].ij);
	teardown();
}

/* A message whose tmp/ file cannot be made fails alone: it is not counted
 * in a batch and the staging count comes back down (store_free asserts). */
static void
test_group_commit_failure(void)
{
	struct req r[3];
	struct store_stats stats;
	unsigned i;

	setup();
	req_maildir(&r[0], "example.org/ann");
	req_maildir(&r[1], "../outside"); /* refused beneath the root */
	req_maildir(&r[2], "example.org/bob");
	for (i = 0; i < 3; i++)
		inject_submit(&r[i].ij, req_done);
	loop_until_done(3);
	store_stats(S.st, &stats);
	T_CHECK_INT(r[0].rc, 0);
	T_CHECK_INT(r[1].rc, -1);
	T_CHECK(r[1].ij.err[0] != '\0');
	T_CHECK_INT(r[2].rc, 0);
	T_CHECK_INT(stats.commit_batches, 1);
	T_CHECK_INT(stats.commit_messages, 1);
	T_CHECK_INT(count_in("example.org/bob", "new"), 1);
	for (i = 0; i < 3; i++)
		inject_clear(&r[i].ij);
	teardown();
}

/* A queue entry goes to on_queued (which owns it) before the done(). */
static void
test_queued_callback(void)
{
	struct req r;
	struct queue_env *env = xcalloc(1, sizeof(*env));
	char p[PATH_MAX];
	struct stat sb;

	setup();
	queue_env_init(env);
	if (str_copy(env->sender, sizeof(env->sender), "a@b.example", 11) !=
		0 ||
	    queue_env_add_rcpt(env, "c@d.example") == NULL)
		abort();
	req_maildir(&r, "example.org/ann");
	r.ij.env = env;
	inject_submit(&r.ij, req_done);
	loop_until_done(1);
	T_CHECK_INT(r.rc, 0);
	T_CHECK(r.ij.queued);
	T_CHECK(r.ij.env == NULL);
	T_CHECK_INT(r.nqueued_at_done, 1);
	T_CHECK(S.queued_before_done);
	T_CHECK_INT(count_in("example.org/ann", "new"), 1);
	T_CHECK(
	    str_fmt(p, sizeof(p), "%s/queue/env/%s", tdir, S.queued_id) == 0 &&
	    stat(p, &sb) == 0);
	inject_clear(&r.ij);
	teardown();
}

/*
 * on_loop: a lone Maildir-only message is stored on the loop thread, no
 * job on the pool, its done() still after inject_submit has returned.  A
 * message with a prepare() step (DKIM signing) stays on a worker.
 */
static void
test_on_loop(void)
{
	struct req r;

	setup();
	req_maildir(&r, "example.org/ann");
	r.ij.on_loop = true;
	inject_submit(&r.ij, req_done);
	T_CHECK(!r.finished);
	T_CHECK_INT(workers_busy(S.w), 0);
	loop_until_done(1);
	T_CHECK(r.finished);
	T_CHECK_INT(r.rc, 0);
	T_CHECK_INT(count_in("example.org/ann", "new"), 1);
	T_CHECK_INT(count_in("example.org/ann", "tmp"), 0);
	inject_clear(&r.ij);

	S.ndone = 0;
	req_maildir(&r, "example.org/ann");
	r.ij.on_loop = true;
	r.ij.prepare = noop_prepare;
	inject_submit(&r.ij, req_done);
	T_CHECK_INT(workers_busy(S.w), 1);
	loop_until_done(1);
	T_CHECK_INT(r.rc, 0);
	T_CHECK_INT(count_in("example.org/ann", "new"), 2);
	inject_clear(&r.ij);
	teardown();
}

int
main(void)
{
	T_RUN(test_group_commit_batches);
	T_RUN(test_group_commit_failure);
	T_RUN(test_queued_callback);
	T_RUN(test_on_loop);
	return t_summary();
}
