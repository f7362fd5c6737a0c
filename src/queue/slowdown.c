/*
 * slowdown: the limit and pause rule of one destination (slowdown.h has
 * the rule; docs/queue.md the why).  Invariants: 1 <= limit <= max;
 * next_pause is within SLOWDOWN_PAUSE_FIRST..SLOWDOWN_PAUSE_MAX;
 * pause_until only moves forward.
 */
#include <string.h>
#include <strings.h>

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
	if (++s->successes >= SLOWDOWN_RAISE_EVERY * s->limit) {
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

int
slowdown_conf_item(
    const char *item, size_t n, size_t *domlen_out, unsigned *max_out)
{
	const char *colon = memrchr(item, ':', n);
	unsigned v = 0;
	size_t i;

	if (colon == NULL || colon == item || colon + 1 == item + n)
		return -1;
	for (i = (size_t)(colon + 1 - item); i < n; i++) {
		if (item[i] < '0' || item[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(item[i] - '0');
		if (v > SLOWDOWN_MAX_LIMIT)
			return -1;
	}
	if (v == 0)
		return -1;
	*domlen_out = (size_t)(colon - item);
	*max_out = v;
	return 0;
}

unsigned
slowdown_conf_find(const char *list, const char *domain, unsigned dflt)
{
	size_t dl = strlen(domain), n, len;
	const char *p = list, *end;
	unsigned v, found = dflt;

	while (p != NULL && *p != '\0') {
		end = strchr(p, ',');
		n = end != NULL ? (size_t)(end - p) : strlen(p);
		if (slowdown_conf_item(p, n, &len, &v) == 0 && len == dl &&
		    strncasecmp(p, domain, dl) == 0)
			found = v;
		p = end != NULL ? end + 1 : NULL;
	}
	return found;
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
