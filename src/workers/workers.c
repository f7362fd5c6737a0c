/*
 * workers: a fixed pool of threads for blocking work.  Jobs are taken
 * in FIFO order; when one has run, it goes on a done list and the eventfd
 * is bumped; the loop drains the list and calls each job's done() on the
 * loop thread, so completions never race with connection state.
 * Invariant: a job is on exactly one of the lists (todo, running, done)
 * until its done() has been called; workers_busy() counts all three.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/util.h"
#include "workers/workers.h"

struct workers {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *todo_head, *todo_tail;
	struct job *done_head, *done_tail;
	unsigned busy;
	/* after each batch of done() calls: a job's end may be what a
	 * stopping server waits for, whoever's done() it was */
	void (*drained)(void *);
	void *drained_arg;
	bool quit;
	int efd;
	struct event *ev;
	pthread_t *threads;
	unsigned nthreads;
};

static void
list_push(struct job **head, struct job **tail, struct job *j)
{
	j->next = NULL;
	if (*tail != NULL)
		(*tail)->next = j;
	else
		*head = j;
	*tail = j;
}

static void *
worker_main(void *arg)
{
	struct workers *w = arg;
	uint64_t one = 1;
	bool wake;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		struct job *j;

		while (w->todo_head == NULL && !w->quit)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->todo_head == NULL)
			break;
		j = w->todo_head;
		w->todo_head = j->next;
		if (w->todo_head == NULL)
			w->todo_tail = NULL;
		pthread_mutex_unlock(&w->mu);
		j->run(j);
		pthread_mutex_lock(&w->mu);
		wake = w->done_head == NULL;
		list_push(&w->done_head, &w->done_tail, j);
		/*
		 * Only the first job of a done list wakes the loop: while the
		 * list is not empty a wake-up is pending, since the loop reads
		 * the eventfd before it takes the list.  An eventfd write is
		 * whole or fails, and fails only with EAGAIN (the counter at
		 * 2^64-1: a wake-up is pending already, nothing is lost) or
		 * for a bad descriptor (a bug).
		 */
		if (wake && write(w->efd, &one, sizeof(one)) < 0 &&
		    errno != EAGAIN)
			panic("event=worker_wake errno=%d", errno);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static void
workers_on_done(evutil_socket_t fd, short what, void *arg)
{
	struct workers *w = arg;
	struct job *j, *next;
	uint64_t n;

	(void)what;
	/* resets the counter; EAGAIN: another callback read it first, and
	 * the done list is taken below either way (eventfd(2)) */
	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		panic("event=worker_done errno=%d", errno);
	pthread_mutex_lock(&w->mu);
	j = w->done_head;
	w->done_head = w->done_tail = NULL;
	pthread_mutex_unlock(&w->mu);
	for (; j != NULL; j = next) {
		next = j->next;
		w->busy--;
		j->done(j);
	}
	if (w->drained != NULL)
		w->drained(w->drained_arg);
}

void
workers_on_drained(struct workers *w, void (*fn)(void *), void *arg)
{
	w->drained = fn;
	w->drained_arg = arg;
}

struct workers *
workers_start(struct event_base *base, unsigned nthreads)
{
	struct workers *w = xcalloc(1, sizeof(*w));
	unsigned i;

	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	if ((w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1)
		fatal("event=startup step=eventfd");
	w->ev =
	    event_new(base, w->efd, EV_READ | EV_PERSIST, workers_on_done, w);
	if (w->ev == NULL || event_add(w->ev, NULL) != 0)
		fatalx("event=startup step=worker_event");
	w->nthreads = nthreads;
	w->threads = xcalloc(nthreads, sizeof(*w->threads));
	for (i = 0; i < nthreads; i++)
		if ((errno = pthread_create(
			 &w->threads[i], NULL, worker_main, w)) != 0)
			fatal("event=startup step=pthread_create");
	return w;
}

void
workers_submit(struct workers *w, struct job *j)
{
	w->busy++;
	pthread_mutex_lock(&w->mu);
	list_push(&w->todo_head, &w->todo_tail, j);
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

unsigned
workers_busy(const struct workers *w)
{
	return w->busy;
}

void
workers_stop(struct workers *w)
{
	unsigned i;

	if (w == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	w->quit = true;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	for (i = 0; i < w->nthreads; i++)
		pthread_join(w->threads[i], NULL);
	event_free(w->ev);
	close(w->efd);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	free(w->threads);
	free(w);
}
