/*
 * test_admin: the filters and the administrator's bounce of `tern queue`
 * (queue/admin.c): parse tables (good and refused words), match tables
 * over one envelope, durations, and the bounce's recipient states.
 */
#include <stdlib.h>
#include <string.h>

#include "queue/admin.h"
#include "t.h"

#define NOW ((time_t)1800000000)

static void
test_duration(void)
{
	static const struct {
		const char *in;
		int rc;
		uint64_t secs;
	} rows[] = {
	    {"0", 0, 0},
	    {"90", 0, 90},
	    {"30s", 0, 30},
	    {"90m", 0, 5400},
	    {"1h", 0, 3600},
	    {"2d", 0, 172800},
	    {"1w", 0, 604800},
	    {"", -1, 0},
	    {"h", -1, 0},
	    {"1x", -1, 0},
	    {"1hh", -1, 0},
	    {"-1h", -1, 0},
	    {"1 h", -1, 0},
	    {"99999999999999999999", -1, 0},
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		uint64_t s = 12345;

		t_case(rows[i].in);
		T_CHECK_INT(queue_duration_parse(rows[i].in, &s), rows[i].rc);
		if (rows[i].rc == 0)
			T_CHECK_INT(s, rows[i].secs);
	}
}

static void
test_parse(void)
{
	static const struct {
		const char *in;
		int rc;
	} rows[] = {
	    {"", 0},
	    {" to=example.net", 0},
	    {"from=<>", 0},
	    {"from=a@b.example older=3600 deferred", 0},
	    {"to=", -1},
	    {"to=a\"b", -1},
	    {"to=a\\b", -1},
	    {"to=a=b", -1},
	    {"bogus", -1},
	    {"older=1x", -1},
	    {"deferredx", -1},
	    {"to=\x01", -1},
	    {"to=\xc3\xa9", -1},
	};
	char err[128];

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct queue_filter f;

		t_case(rows[i].in);
		err[0] = '\0';
		T_CHECK_INT(
		    queue_filter_parse(&f, rows[i].in, err, sizeof(err)),
		    rows[i].rc);
		/* an error text goes into JSON as it is */
		T_CHECK(strchr(err, '"') == NULL && strchr(err, '\\') == NULL);
		if (rows[i].rc != 0)
			T_CHECK(err[0] != '\0');
	}
}

static struct queue_rcpt *
rcpt_add(struct queue_env *env, const char *addr)
{
	struct queue_rcpt *r = queue_env_add_rcpt(env, addr);

	if (r == NULL)
		abort();
	return r;
}

static void
env_make(struct queue_env *env)
{
	queue_env_init(env);
	env->created = NOW - 7200;
	memcpy(env->sender, "Claire@Example.ORG", 19);
	rcpt_add(env, "ben@example.net")->attempts = 1;
	rcpt_add(env, "done@example.com")->state = QUEUE_RCPT_DELIVERED;
	(void)rcpt_add(env, "new@example.de");
}

static void
test_match(void)
{
	static const struct {
		const char *filter;
		bool want;
	} rows[] = {
	    {"", true},
	    {"to=example.net", true},
	    {"to=EXAMPLE.NET", true},
	    {"to=example.de", true},
	    {"to=example.com", false}, /* delivered: not to do */
	    {"to=net", false},
	    {"from=claire@example.org", true},
	    {"from=example.org", true},
	    {"from=other.example", false},
	    {"from=<>", false},
	    {"older=3600", true},
	    {"older=7200", true},
	    {"older=7201", false},
	    {"deferred", true},
	    {"to=example.net older=3600 deferred from=example.org", true},
	    {"to=example.net older=9000", false},
	};
	struct queue_env env;

	env_make(&env);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct queue_filter f;
		char err[128];

		t_case(rows[i].filter);
		T_CHECK(queue_filter_parse(
			    &f, rows[i].filter, err, sizeof(err)) == 0);
		T_CHECK(queue_filter_match(&f, &env, NOW) == rows[i].want);
	}
	t_case("deferred needs a tried pending recipient");
	{
		struct queue_filter f;
		char err[128];

		env.rcpt[0].attempts = 0;
		T_CHECK(
		    queue_filter_parse(&f, "deferred", err, sizeof(err)) == 0);
		T_CHECK(!queue_filter_match(&f, &env, NOW));
	}
	t_case("the null sender");
	{
		struct queue_filter f;
		char err[128];

		env.sender[0] = '\0';
		T_CHECK(
		    queue_filter_parse(&f, "from=<>", err, sizeof(err)) == 0);
		T_CHECK(queue_filter_match(&f, &env, NOW));
		T_CHECK(queue_filter_parse(
			    &f, "from=example.org", err, sizeof(err)) == 0);
		T_CHECK(!queue_filter_match(&f, &env, NOW));
	}
	queue_env_free(&env);
}

static void
test_bounce(void)
{
	struct queue_env env;

	t_case("bounce fails the pending recipients only");
	env_make(&env);
	T_CHECK_INT(queue_env_admin_bounce(&env, NOW), 2);
	T_CHECK(env.rcpt[0].state == QUEUE_RCPT_FAILED);
	T_CHECK_INT(env.rcpt[0].code, 550);
	T_CHECK_STR(env.rcpt[0].enh, "5.0.0");
	T_CHECK_STR(env.rcpt[0].text, "bounced by the administrator");
	T_CHECK(env.rcpt[0].last_try == NOW);
	T_CHECK(env.rcpt[1].state == QUEUE_RCPT_DELIVERED);
	T_CHECK(env.rcpt[2].state == QUEUE_RCPT_FAILED);
	T_CHECK_INT(queue_env_admin_bounce(&env, NOW), 0);
	queue_env_free(&env);
}

int
main(void)
{
	T_RUN(test_duration);
	T_RUN(test_parse);
	T_RUN(test_match);
	T_RUN(test_bounce);
	return t_summary();
}
