/*
 * t_loop.h: run a libevent loop in a unit test with a deadline, so a
 * completion that never comes fails the test instead of hanging it.  The
 * test's own callback calls event_base_loopbreak() when it has seen what
 * it waits for; t_loop_dispatch returns then, or after seconds.
 */
#ifndef TERN_T_LOOP_H
#define TERN_T_LOOP_H

#include <stdlib.h>

#include <event2/event.h>

static void
t_loop_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

static inline void
t_loop_dispatch(struct event_base *base, long seconds)
{
	struct timeval tv = {seconds, 0};
	struct event *ev = evtimer_new(base, t_loop_deadline, base);

	if (ev == NULL || evtimer_add(ev, &tv) != 0)
		abort();
	event_base_dispatch(base);
	event_free(ev);
}

#endif
