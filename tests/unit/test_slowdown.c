/*
 * Unit tests of a destination's adaptive pace (src/queue/slowdown.c): a
 * table of scenarios, each a list of steps (a signal from connection k,
 * a delivery, a look at the clock) with the limit, the pause and the
 * wait expected after each step.
 */
#include "queue/slowdown.h"
#include "t.h"

enum op { SIG, OK, LOOK, OPEN };

struct step {
	enum op op;
	unsigned conn; /* SIG/OPEN: which connection (its epoch copy) */
	uint64_t now;  /* ms */
	unsigned limit;
	uint32_t pause;
	uint64_t wait; /* slowdown_wait at now */
	int changed;   /* SIG/OK: SLOWDOWN_CHANGED expected; -1: any */
};

#define NCONN 8
#define STEPS 24 /* rows of a scenario at most */

struct scenario {
	const char *name;
	unsigned max;
	struct step steps[STEPS];
};

static const struct scenario scenarios[] = {
    {"one signal halves and pauses 1 s", 10,
	{{OPEN, 0, 0, 10, 0, 0, -1}, {SIG, 0, 1000, 5, 1000, 1000, 1},
	    {LOOK, 0, 1500, 5, 1000, 500, -1},
	    {LOOK, 0, 2000, 5, 1000, 0, -1}}},
    {"the limit never goes below 1", 3,
	{{OPEN, 0, 0, 3, 0, 0, -1}, {SIG, 0, 10, 1, 1000, 1000, 1},
	    {OPEN, 1, 10, 1, 1000, 1000, -1}, {SIG, 1, 20, 1, 2000, 2000, 1},
	    {OPEN, 2, 20, 1, 2000, 2000, -1}, {SIG, 2, 30, 1, 4000, 4000, 1}}},
    {"one decrease per round of connections", 16,
	{{OPEN, 0, 0, 16, 0, 0, -1}, {OPEN, 1, 0, 16, 0, 0, -1},
	    {OPEN, 2, 0, 16, 0, 0, -1}, {SIG, 0, 100, 8, 1000, 1000, 1},
	    /* same round: the pause restarts and grows, the limit stays */
	    {SIG, 1, 200, 8, 2000, 2000, 1}, {SIG, 2, 300, 8, 4000, 4000, 1},
	    /* a connection of the new round halves again */
	    {OPEN, 3, 5000, 8, 4000, 0, -1}, {SIG, 3, 5000, 4, 8000, 8000, 1},
	    /* connection 1 saw the first decrease, not the second */
	    {SIG, 1, 5100, 4, 16000, 16000, 1},
	    /* now it has seen both: its next signal counts */
	    {SIG, 1, 5200, 2, 32000, 32000, 1}}},
    {"pauses double up to 300 s", 1,
	{{OPEN, 0, 0, 1, 0, 0, -1}, {SIG, 0, 0, 1, 1000, 1000, 1},
	    {SIG, 0, 0, 1, 2000, 2000, 1}, {SIG, 0, 0, 1, 4000, 4000, 1},
	    {SIG, 0, 0, 1, 8000, 8000, 1}, {SIG, 0, 0, 1, 16000, 16000, 1},
	    {SIG, 0, 0, 1, 32000, 32000, 1}, {SIG, 0, 0, 1, 64000, 64000, 1},
	    {SIG, 0, 0, 1, 128000, 128000, 1},
	    {SIG, 0, 0, 1, 256000, 256000, 1},
	    {SIG, 0, 0, 1, 300000, 300000, 1},
	    {SIG, 0, 0, 1, 300000, 300000, 0},
	    {LOOK, 0, 299999, 1, 300000, 1, -1},
	    {LOOK, 0, 300000, 1, 300000, 0, -1}}},
    {"a success resets the growth, not the running pause", 4,
	{{OPEN, 0, 0, 4, 0, 0, -1}, {SIG, 0, 0, 2, 1000, 1000, 1},
	    {SIG, 0, 0, 1, 2000, 2000, 1}, {OK, 0, 500, 1, 0, 1500, 1},
	    {SIG, 0, 600, 1, 1000, 1400, 1}, {LOOK, 0, 2000, 1, 1000, 0, -1}}},
    /* limit 1: five deliveries to 2; limit 2: ten more to 3 (the 15th) */
    {"five deliveries per connection allowed, per step back up", 3,
	{{OPEN, 0, 0, 3, 0, 0, -1}, {SIG, 0, 0, 1, 1000, 1000, 1},
	    {OK, 0, 1, 1, 0, 999, 1}, {OK, 0, 2, 1, 0, 998, 0},
	    {OK, 0, 3, 1, 0, 997, 0}, {OK, 0, 4, 1, 0, 996, 0},
	    {OK, 0, 5, 2, 0, 995, 1}, {OK, 0, 6, 2, 0, 994, 0},
	    {OK, 0, 7, 2, 0, 993, 0}, {OK, 0, 8, 2, 0, 992, 0},
	    {OK, 0, 9, 2, 0, 991, 0}, {OK, 0, 10, 2, 0, 990, 0},
	    {OK, 0, 11, 2, 0, 989, 0}, {OK, 0, 12, 2, 0, 988, 0},
	    {OK, 0, 13, 2, 0, 987, 0}, {OK, 0, 14, 2, 0, 986, 0},
	    {OK, 0, 15, 3, 0, 985, 1}, {OK, 0, 16, 3, 0, 984, 0},
	    {OK, 0, 17, 3, 0, 983, 0}, {OK, 0, 18, 3, 0, 982, 0},
	    {OK, 0, 19, 3, 0, 981, 0}, {OK, 0, 20, 3, 0, 980, 0}}},
    {"a signal forgets the deliveries counted toward a raise", 4,
	{{OPEN, 0, 0, 4, 0, 0, -1}, {SIG, 0, 0, 2, 1000, 1000, 1},
	    {OK, 0, 0, 2, 0, 1000, 1}, {OK, 0, 0, 2, 0, 1000, 0},
	    {OK, 0, 0, 2, 0, 1000, 0}, {OK, 0, 0, 2, 0, 1000, 0},
	    {OPEN, 1, 0, 2, 0, 1000, -1}, {SIG, 1, 0, 1, 1000, 1000, 1},
	    {OK, 0, 0, 1, 0, 1000, 1}, {OK, 0, 0, 1, 0, 1000, 0},
	    {OK, 0, 0, 1, 0, 1000, 0}, {OK, 0, 0, 1, 0, 1000, 0},
	    {OK, 0, 0, 2, 0, 1000, 1}}},
    {"a clock going backwards only lengthens the wait", 2,
	{{OPEN, 0, 0, 2, 0, 0, -1}, {SIG, 0, 50000, 1, 1000, 1000, 1},
	    {LOOK, 0, 40000, 1, 1000, 11000, -1},
	    {LOOK, 0, 51000, 1, 1000, 0, -1}}},
};

static void
run_step(struct slowdown *s, unsigned *epochs, const struct step *st, size_t i)
{
	int ch = -1;

	switch (st->op) {
	case OPEN:
		epochs[st->conn] = s->epoch;
		break;
	case SIG:
		ch = slowdown_signal(s, &epochs[st->conn], st->now) ==
		     SLOWDOWN_CHANGED;
		break;
	case OK:
		ch = slowdown_success(s) == SLOWDOWN_CHANGED;
		break;
	case LOOK:
		break;
	}
	if (s->limit != st->limit || slowdown_pause(s) != st->pause ||
	    slowdown_wait(s, st->now) != st->wait ||
	    (st->changed >= 0 && ch != st->changed))
		fprintf(stderr,
		    "  step %zu: limit=%u pause=%u wait=%llu changed=%d\n", i,
		    s->limit, (unsigned)slowdown_pause(s),
		    (unsigned long long)slowdown_wait(s, st->now), ch);
	T_CHECK_INT(s->limit, st->limit);
	T_CHECK_INT(slowdown_pause(s), st->pause);
	T_CHECK_INT(slowdown_wait(s, st->now), st->wait);
	if (st->changed >= 0)
		T_CHECK_INT(ch, st->changed);
	T_CHECK(s->limit >= 1 && s->limit <= s->max);
}

static void
test_scenarios(void)
{
	size_t i, k;

	for (i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
		const struct scenario *sc = &scenarios[i];
		struct slowdown s;
		unsigned epochs[NCONN] = {0};

		t_case(sc->name);
		slowdown_init(&s, sc->max);
		/* a zero row ends the list (OPEN of connection 0 at 0 with
		   limit 0 is no real step: the limit is never 0) */
		for (k = 0; k < STEPS && sc->steps[k].limit != 0; k++)
			run_step(&s, epochs, &sc->steps[k], k);
	}
}

static void
test_forget(void)
{
	struct slowdown s;
	unsigned e = 0;
	uint64_t when = 0;

	t_case("at rest: forgettable at once");
	slowdown_init(&s, 5);
	T_CHECK(slowdown_forgettable(&s, 0, &when));
	T_CHECK(slowdown_forgettable(&s, 123456, &when));

	t_case("slowed: kept until SLOWDOWN_FORGET after the last signal");
	slowdown_init(&s, 5);
	(void)slowdown_signal(&s, &e, 10000);
	T_CHECK(!slowdown_forgettable(&s, 10000, &when));
	T_CHECK_INT(when, 10000 + SLOWDOWN_FORGET);
	T_CHECK(!slowdown_forgettable(&s, 10000 + SLOWDOWN_FORGET - 1, &when));
	T_CHECK(slowdown_forgettable(&s, 10000 + SLOWDOWN_FORGET, &when));

	t_case("limit back at max: forgettable when the pause ends");
	slowdown_init(&s, 1);
	(void)slowdown_signal(&s, &e, 10000);
	T_CHECK(!slowdown_forgettable(&s, 10500, &when));
	T_CHECK_INT(when, 11000);
	T_CHECK(slowdown_forgettable(&s, 11000, &when));

	t_case("max 0 is taken as 1");
	slowdown_init(&s, 0);
	T_CHECK_INT(s.limit, 1);
	T_CHECK_INT(s.max, 1);
}

static void
test_conf_items(void)
{
	static const struct {
		const char *item;
		int rc;
		size_t domlen;
		unsigned max;
	} rows[] = {
	    {"gmail.com:5", 0, 9, 5},
	    {"a:1", 0, 1, 1},
	    {"example.org:1000", 0, 11, 1000},
	    {"example.org:1001", -1, 0, 0},
	    {"example.org:0", -1, 0, 0},
	    {"example.org:", -1, 0, 0},
	    {":5", -1, 0, 0},
	    {"example.org", -1, 0, 0},
	    {"example.org:5x", -1, 0, 0},
	    {"example.org:-5", -1, 0, 0},
	    {"example.org: 5", -1, 0, 0},
	    {"example.org:99999999999999999999", -1, 0, 0},
	    /* the last ':' splits; the caller refuses such a domain */
	    {"a:b:7", 0, 3, 7},
	};
	size_t i, len, maplen;
	unsigned max;
	void *map;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const char *it = rows[i].item;
		/* no NUL after the item: only n octets may be read */
		const char *g = t_guard(it, strlen(it), &map, &maplen);

		t_case(it);
		len = 0;
		max = 0;
		T_CHECK_INT(
		    slowdown_conf_item(g, strlen(it), &len, &max), rows[i].rc);
		if (rows[i].rc == 0) {
			T_CHECK_INT(len, rows[i].domlen);
			T_CHECK_INT(max, rows[i].max);
		}
		t_unguard(map, maplen);
	}
}

static void
test_conf_find(void)
{
	const char *list = "gmail.com:5,Example.ORG:2,mail.example.org:30,"
			   "gmail.com:4";

	t_case("found, without case, the last item winning");
	T_CHECK_INT(slowdown_conf_find(list, "example.org", 10), 2);
	T_CHECK_INT(slowdown_conf_find(list, "EXAMPLE.org", 10), 2);
	T_CHECK_INT(slowdown_conf_find(list, "mail.example.org", 10), 30);
	T_CHECK_INT(slowdown_conf_find(list, "gmail.com", 10), 4);
	t_case("not found: the default; no suffix match");
	T_CHECK_INT(slowdown_conf_find(list, "org", 10), 10);
	T_CHECK_INT(slowdown_conf_find(list, "le.org", 10), 10);
	T_CHECK_INT(slowdown_conf_find(list, "gmail.co", 7), 7);
	T_CHECK_INT(slowdown_conf_find(list, "", 7), 7);
	T_CHECK_INT(slowdown_conf_find(NULL, "gmail.com", 3), 3);
	T_CHECK_INT(slowdown_conf_find("", "gmail.com", 3), 3);
}

int
main(void)
{
	T_RUN(test_scenarios);
	T_RUN(test_forget);
	T_RUN(test_conf_items);
	T_RUN(test_conf_find);
	return t_summary();
}
