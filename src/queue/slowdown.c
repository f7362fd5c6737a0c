/*
 * slowdown: the limit and pause rule of one destination (slowdown.h has
 * the rule; docs/queue.md the why).  Invariants: 1 <= limit <= max;
 * next_pause is within SLOWDOWN_PAUSE_FIRST..SLOWDOWN_PAUSE_MAX;
 * pause_until only moves forward.
 */
#include "queue/slowdown.h"

void
slowdown_init(struct slowdown *s, unsigned max)
{
	s->max = max > 0 ? max : 1;
	s->limit = s->max;
	s->epoch = 0;
	s->successes = 0;
	s->pause = 0;
	s->next_pause = SLOWDOWN_PAUSE_FIRST;
	s->pause_until = 0;
	s->last_signal = 0;
}

enum slowdown_change
slowdown_signal(struct slowdown *s, unsigned *conn_epoch, uint64_t now_ms)
{
	unsigned old_limit = s->limit;
	uint32_t old_pause = s->pause;
	uint64_t until;

	/* a connection of the round before the last decrease: that
	   decrease already answered the overload it saw */
	if (*conn_epoch == s->epoch) {
		s->limit = s->limit > 1 ? s->limit / 2 : 1;
		s->epoch++;
	}
	*conn_epoch = s->epoch;
	s->successes = 0;
	s->pause = s->next_pause;
	if (s->next_pause < SLOWDOWN_PAUSE_MAX / 2)
		s->next_pause *= 2;
	else
		s->next_pause = SLOWDOWN_PAUSE_MAX;
	until = now_ms + s->pause;
	if (until > s->pause_until)
		s->pause_until = until;
	s->last_signal = now_ms > 0 ? now_ms : 1;
	return s->limit != old_limit || s->pause != old_pause ? SLOWDOWN_CHANGED
							      : SLOWDOWN_SAME;
}

enum slowdown_change
slowdown_success(struct slowdown *s)
{
	enum slowdown_change ch = SLOWDOWN_SAME;

	if (s->pause != 0) {
		s->pause = 0;
		s->next_pause = SLOWDOWN_PAUSE_FIRST;
		ch = SLOWDOWN_CHANGED;
	}
	if (s->limit >= s->max)
		return ch;
	if (++s->successes >= SLOWDOWN_RAISE_EVERY) {
		s->successes = 0;
		s->limit++;
		ch = SLOWDOWN_CHANGED;
	}
	return ch;
}

uint64_t
slowdown_wait(const struct slowdown *s, uint64_t now_ms)
{
	return now_ms < s->pause_until ? s->pause_until - now_ms : 0;
}

uint32_t
slowdown_pause(const struct slowdown *s)
{
	return s->pause;
}

bool
slowdown_forgettable(
    const struct slowdown *s, uint64_t now_ms, uint64_t *when_out)
{
	uint64_t forget = s->last_signal + SLOWDOWN_FORGET;

	if (s->limit >= s->max && now_ms >= s->pause_until)
		return true;
	if (s->last_signal != 0 && now_ms >= forget)
		return true;
	/* at rest once the pause ends, if the limit is already back */
	*when_out = s->limit >= s->max && s->pause_until < forget
			? s->pause_until
			: forget;
	return false;
}
