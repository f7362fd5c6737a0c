/*
 * Unit tests for src/queue/attempt.c, an attempt's decisions: the retry
 * schedule a deferred recipient follows under queue.retry_* settings, the
 * expiry at queue.lifetime (status 4.4.7 with the last reply kept whole),
 * grouping by domain (case-insensitive), by smarthost, by LMTP target and
 * into Maildirs, routing that changes between attempts (remote in the
 * first, LMTP, Maildir or a smarthost in the second), the recipients the
 * table could not place, the merge of 2xx/4xx/5xx per recipient, and a
 * 4xx that comes after the deadline.
 */
#include <stdint.h>

#include "t.h"
#include "queue/attempt.h"

#define T0 ((time_t)1700000000)

static uint32_t jitter_value;

static uint32_t
fixed_jitter(void)
{
	return jitter_value;
}

static struct retry_policy
policy(unsigned first, unsigned max, unsigned lifetime)
{
	struct retry_policy p;

	retry_policy_default(&p);
	p.first = first;
	p.max_interval = max;
	p.lifetime = lifetime;
	return p;
}

static void
env_make(struct queue_env *env, const char *const *addrs, size_t n)
{
	size_t i;

	queue_env_init(env);
	T_CHECK(
	    str_copy(env->id, sizeof(env->id), "00000000000000a1", 16) == 0);
	T_CHECK(
	    str_copy(env->sender, sizeof(env->sender), "s@a.example", 11) == 0);
	env->created = T0;
	for (i = 0; i < n; i++)
		T_CHECK(queue_env_add_rcpt(env, addrs[i]) != NULL);
}

static struct smtp_client_result
res(enum smtp_result_class cls, int code, const char *enh, const char *text)
{
	struct smtp_client_result r;

	smtp_client_result_set(&r, cls, code, enh, text);
	r.remote = true;
	return r;
}

static void
ways_all(struct attempt_way *w, size_t n, enum attempt_route route)
{
	size_t i;

	memset(w, 0, n * sizeof(*w));
	for (i = 0; i < n; i++)
		w[i].route = route;
}

/* within +-10% of want seconds after now */
static bool
near(time_t next, time_t now, long long want)
{
	long long d = (long long)(next - now);

	return d >= want - want / 10 && d <= want + want / 10;
}

/* queue.retry_first 60, retry_max 240, lifetime 1000: a recipient that
 * always gets 451 is tried at about +60, +120, +240, +240..., never past
 * the lifetime, then expires with 4.4.7 and its last reply. */
static void
test_retry_schedule(void)
{
	static const char *const a[] = {"r@b.example"};
	struct retry_policy p = policy(60, 240, 1000);
	struct attempt_clock clk = {&p, T0, fixed_jitter};
	struct smtp_client_result tmp =
	    res(SMTP_RESULT_TEMP, 451, "4.7.1", "greylisted, come back later");
	static const long long want[] = {60, 120, 240, 240};
	struct queue_env env;
	struct attempt_rcpt *track;
	struct attempt_plan plan;
	struct attempt_way w;
	unsigned n;

	env_make(&env, a, 1);
	ways_all(&w, 1, ATTEMPT_ROUTE_REMOTE);
	t_case("retry_first doubles to retry_max");
	for (n = 0; n < 4; n++) {
		jitter_value = n * 2654435761u;
		attempt_plan_build(&plan, &env, &w, NULL, &clk);
		T_CHECK_INT(plan.ngroups, 1);
		track = attempt_track(&env);
		attempt_merge(&env, track, &plan.groups[0], &tmp, 1,
		    "mx.b.example", &clk);
		T_CHECK_INT(env.rcpt[0].state, QUEUE_RCPT_PENDING);
		T_CHECK_INT(env.rcpt[0].attempts, n + 1);
		T_CHECK_INT(env.rcpt[0].last_try, clk.now);
		T_CHECK(near(env.rcpt[0].next_try, clk.now, want[n]));
		T_CHECK_INT(queue_env_next_try(&env), env.rcpt[0].next_try);
		T_CHECK_INT(attempt_expire(&env, track, &p, clk.now), 0);
		clk.now = env.rcpt[0].next_try;
		attempt_plan_free(&plan);
		free(track);
	}
	t_case("the last try is at the lifetime, not past it");
	while (clk.now < T0 + 1000) {
		attempt_plan_build(&plan, &env, &w, NULL, &clk);
		track = attempt_track(&env);
		attempt_merge(
		    &env, track, &plan.groups[0], &tmp, 1, NULL, &clk);
		T_CHECK(env.rcpt[0].next_try <= T0 + 1000);
		T_CHECK(env.rcpt[0].next_try > clk.now);
		clk.now = env.rcpt[0].next_try;
		attempt_plan_free(&plan);
		free(track);
	}
	T_CHECK_INT(clk.now, T0 + 1000);
	t_case("expired at the lifetime: 4.4.7, the last reply kept");
	track = attempt_track(&env);
	T_CHECK_INT(attempt_expire(&env, track, &p, T0 + 999), 0);
	T_CHECK_INT(env.rcpt[0].state, QUEUE_RCPT_PENDING);
	T_CHECK_INT(attempt_expire(&env, track, &p, T0 + 1000), 1);
	T_CHECK(track[0].expired);
	T_CHECK_INT(env.rcpt[0].state, QUEUE_RCPT_FAILED);
	T_CHECK_STR(env.rcpt[0].enh, "4.4.7");
	T_CHECK_INT(env.rcpt[0].code, 451);
	T_CHECK_STR(env.rcpt[0].text, "4.7.1 greylisted, come back later");
	T_CHECK(queue_rcpt_expired(&env.rcpt[0]));
	T_CHECK_INT(queue_env_next_try(&env), 0);
	free(track);
	queue_env_free(&env);
}

static void
test_expire_cases(void)
{
	static const char *const a[] = {
	    "p@b.example", "d@b.example", "f@b.example", "never@b.example"};
	struct retry_policy p = policy(60, 240, 1000);
	struct queue_env env;
	struct attempt_rcpt *track;

	env_make(&env, a, 4);
	env.rcpt[1].state = QUEUE_RCPT_DELIVERED;
	env.rcpt[2].state = QUEUE_RCPT_FAILED;
	env.rcpt[2].code = 550;
	T_CHECK(str_copy(env.rcpt[2].enh, 16, "5.1.1", 5) == 0);
	track = attempt_track(&env);
	t_case("only pending recipients expire");
	T_CHECK_INT(attempt_expire(&env, track, &p, T0 + 5000), 2);
	T_CHECK(track[0].expired && !track[1].expired && !track[2].expired);
	T_CHECK_INT(env.rcpt[1].state, QUEUE_RCPT_DELIVERED);
	T_CHECK_STR(env.rcpt[2].enh, "5.1.1");
	T_CHECK(!queue_rcpt_expired(&env.rcpt[2]));
	t_case("never tried: 4.4.7 without a reply");
	T_CHECK_INT(env.rcpt[3].state, QUEUE_RCPT_FAILED);
	T_CHECK_INT(env.rcpt[3].code, 0);
	T_CHECK_STR(env.rcpt[3].text, "");
	T_CHECK(queue_rcpt_expired(&env.rcpt[3]));
	t_case("lifetime 0: the first look expires it");
	env.rcpt[0].state = QUEUE_RCPT_PENDING;
	p.lifetime = 0;
	T_CHECK_INT(attempt_expire(&env, track, &p, T0), 1);
	free(track);
	queue_env_free(&env);
}

/* Attempt 1 sends everything by MX, grouped by domain; attempt 2 routes
 * what is left to LMTP, Maildirs and, with a smarthost, one group. */
static void
test_routing_changes(void)
{
	static const char *const a[] = {"a@remote.example", "b@Remote.Example",
	    "c@Other.EXAMPLE", "d@local.example", "e@REMOTE.example"};
	static const char *const boxes[] = {
	    "local.example/d", "shared/box", "local.example/d"};
	struct retry_policy p = policy(60, 240, 100000);
	struct attempt_clock clk = {&p, T0, fixed_jitter};
	struct smtp_client_result r1[3], r2[1];
	struct attempt_way w[5];
	struct queue_env env;
	struct attempt_plan plan;
	struct attempt_rcpt *track;

	env_make(&env, a, 5);
	env.rcpt[1].notify = SMTP_NOTIFY_SUCCESS;
	t_case("attempt 1: by domain, case-insensitive, lowercased");
	ways_all(w, 5, ATTEMPT_ROUTE_REMOTE);
	attempt_plan_build(&plan, &env, w, NULL, &clk);
	T_CHECK_INT(plan.ngroups, 3);
	T_CHECK_STR(plan.groups[0].domain, "remote.example");
	T_CHECK_INT(plan.groups[0].n, 3);
	T_CHECK_INT(plan.groups[0].idx[0], 0);
	T_CHECK_INT(plan.groups[0].idx[1], 1);
	T_CHECK_INT(plan.groups[0].idx[2], 4);
	T_CHECK_STR(plan.groups[0].rcpts[1].addr, "b@Remote.Example");
	T_CHECK_INT(plan.groups[0].rcpts[1].notify, SMTP_NOTIFY_SUCCESS);
	T_CHECK(!plan.groups[0].lmtp && !plan.groups[0].local);
	T_CHECK_STR(plan.groups[1].domain, "other.example");
	T_CHECK_STR(plan.groups[2].domain, "local.example");
	t_case("attempt 1: 2xx, 4xx and 5xx merged per recipient");
	track = attempt_track(&env);
	r1[0] = res(SMTP_RESULT_OK, 250, "2.0.0", "ok");
	r1[1] = res(SMTP_RESULT_OK, 250, "2.0.0", "ok"); /* no DSN passed */
	r1[2] = res(SMTP_RESULT_TEMP, 452, "4.2.2", "mailbox full");
	attempt_merge(
	    &env, track, &plan.groups[0], r1, 3, "mx1.remote.example", &clk);
	r2[0] = res(SMTP_RESULT_PERM, 550, "5.1.1", "no such user");
	attempt_merge(
	    &env, track, &plan.groups[1], r2, 1, "mx.other.example", &clk);
	r2[0] = res(SMTP_RESULT_TEMP, 421, "4.4.2", "lost");
	attempt_merge(&env, track, &plan.groups[2], r2, 1, NULL, &clk);
	T_CHECK_INT(env.rcpt[0].state, QUEUE_RCPT_DELIVERED);
	T_CHECK_INT(env.rcpt[1].state, QUEUE_RCPT_RELAYED);
	T_CHECK_INT(env.rcpt[2].state, QUEUE_RCPT_FAILED);
	T_CHECK_INT(env.rcpt[2].code, 550);
	T_CHECK_STR(env.rcpt[2].text, "no such user");
	T_CHECK_INT(env.rcpt[3].state, QUEUE_RCPT_PENDING);
	T_CHECK_INT(env.rcpt[4].state, QUEUE_RCPT_PENDING);
	T_CHECK_STR(env.rcpt[4].enh, "4.2.2");
	T_CHECK_STR(track[0].mx, "mx1.remote.example");
	T_CHECK_STR(track[2].mx, "mx.other.example");
	T_CHECK_STR(track[3].mx, "");
	T_CHECK(!track[0].final); /* a relay, not the mailbox */
	attempt_plan_free(&plan);
	free(track);

	t_case("attempt 2: LMTP and Maildirs now; final states not retried");
	clk.now = T0 + 600;
	ways_all(w, 5, ATTEMPT_ROUTE_REMOTE);
	w[3].route = ATTEMPT_ROUTE_MAILDIR;
	w[3].boxes = boxes;
	w[3].nboxes = 3;
	w[4].route = ATTEMPT_ROUTE_LMTP;
	w[4].lmtp = "unix:/run/dovecot/lmtp";
	attempt_plan_build(&plan, &env, w, NULL, &clk);
	T_CHECK_INT(plan.ngroups, 2);
	T_CHECK(plan.groups[0].local && !plan.groups[0].lmtp);
	T_CHECK_INT(plan.groups[0].npaths, 2); /* each Maildir once */
	T_CHECK_STR(plan.groups[0].paths[0], "local.example/d");
	T_CHECK_STR(plan.groups[0].paths[1], "shared/box");
	T_CHECK(plan.groups[1].lmtp && !plan.groups[1].local);
	T_CHECK_STR(plan.groups[1].domain, "unix:/run/dovecot/lmtp");
	T_CHECK_INT(plan.groups[1].idx[0], 4);
	track = attempt_track(&env);
	r2[0] = res(SMTP_RESULT_OK, 250, "2.0.0", "Delivered");
	r2[0].remote = false;
	attempt_merge(&env, track, &plan.groups[0], r2, 1, NULL, &clk);
	r2[0] = res(SMTP_RESULT_OK, 250, "2.0.0", "saved");
	attempt_merge(&env, track, &plan.groups[1], r2, 1, "lmtp-host", &clk);
	T_CHECK_INT(env.rcpt[3].state, QUEUE_RCPT_DELIVERED);
	T_CHECK_INT(env.rcpt[4].state, QUEUE_RCPT_DELIVERED);
	T_CHECK(track[3].final && track[4].final);
	T_CHECK_STR(track[4].mx, ""); /* an LMTP server is no MTA */
	T_CHECK_INT(env.rcpt[4].attempts, 2);
	T_CHECK_INT(queue_env_next_try(&env), 0);
	attempt_plan_free(&plan);
	free(track);

	t_case("a smarthost: every remote domain in one group");
	env.rcpt[2].state = QUEUE_RCPT_PENDING;
	env.rcpt[3].state = QUEUE_RCPT_PENDING;
	ways_all(w, 5, ATTEMPT_ROUTE_REMOTE);
	attempt_plan_build(&plan, &env, w, "[relay.example]:587", &clk);
	T_CHECK_INT(plan.ngroups, 1);
	T_CHECK_STR(plan.groups[0].domain, "[relay.example]:587");
	T_CHECK_INT(plan.groups[0].n, 2);
	attempt_plan_free(&plan);
	queue_env_free(&env);
}

static void
test_unrouted(void)
{
	static const char *const a[] = {
	    "t@l.example", "n@l.example", "m@l.example", "s@l.example"};
	struct retry_policy p = policy(60, 240, 100000);
	struct attempt_clock clk = {&p, T0, fixed_jitter};
	struct attempt_way w[4];
	struct queue_env env;
	struct attempt_plan plan;

	env_make(&env, a, 4);
	ways_all(w, 4, ATTEMPT_ROUTE_SKIP);
	w[0].route = ATTEMPT_ROUTE_TEMP;
	w[1].route = ATTEMPT_ROUTE_NOUSER;
	w[2].route = ATTEMPT_ROUTE_MOVED;
	attempt_plan_build(&plan, &env, w, NULL, &clk);
	t_case("no group for what the table could not place");
	T_CHECK_INT(plan.ngroups, 0);
	T_CHECK(plan.route_temp);
	t_case("table failure: 451 4.3.0, retried");
	T_CHECK_INT(env.rcpt[0].state, QUEUE_RCPT_PENDING);
	T_CHECK_INT(env.rcpt[0].code, 451);
	T_CHECK_STR(env.rcpt[0].enh, "4.3.0");
	T_CHECK(near(env.rcpt[0].next_try, T0, 60));
	t_case("no such user in a local domain: 550 5.1.1, failed");
	T_CHECK_INT(env.rcpt[1].state, QUEUE_RCPT_FAILED);
	T_CHECK_INT(env.rcpt[1].code, 550);
	T_CHECK_STR(env.rcpt[1].enh, "5.1.1");
	t_case("aliased elsewhere since: 451, waits for the admin");
	T_CHECK_INT(env.rcpt[2].state, QUEUE_RCPT_PENDING);
	T_CHECK_INT(env.rcpt[2].code, 451);
	T_CHECK(strstr(env.rcpt[2].text, "alias") != NULL);
	t_case("skipped: untouched");
	T_CHECK_INT(env.rcpt[3].attempts, 0);
	T_CHECK_INT(env.rcpt[3].code, 0);
	attempt_plan_free(&plan);
	t_case("moved alone does not report a table failure");
	queue_env_free(&env);
	env_make(&env, a, 1);
	w[0].route = ATTEMPT_ROUTE_MOVED;
	attempt_plan_build(&plan, &env, w, NULL, &clk);
	T_CHECK(!plan.route_temp);
	attempt_plan_free(&plan);
	queue_env_free(&env);
}

/* RFC 3461 5.2.2: who is "relayed" and who "delivered". */
static void
test_merge_success(void)
{
	static const char *const a[] = {"a@r.example", "b@r.example"};
	struct retry_policy p = policy(60, 240, 100000);
	struct attempt_clock clk = {&p, T0, fixed_jitter};
	struct smtp_client_result r[2];
	struct attempt_way w[2];
	struct queue_env env;
	struct attempt_plan plan;
	struct attempt_rcpt *track;

	env_make(&env, a, 2);
	env.rcpt[0].notify = SMTP_NOTIFY_SUCCESS;
	env.rcpt[1].notify = SMTP_NOTIFY_SUCCESS;
	ways_all(w, 2, ATTEMPT_ROUTE_REMOTE);
	attempt_plan_build(&plan, &env, w, NULL, &clk);
	track = attempt_track(&env);
	r[0] = res(SMTP_RESULT_OK, 250, "2.1.5", "ok");
	r[0].dsn_passed = true;
	r[1] = res(SMTP_RESULT_OK, 250, "2.1.5", "ok");
	attempt_merge(&env, track, &plan.groups[0], r, 2, "mx", &clk);
	t_case("the relay took NOTIFY on: delivered, it reports");
	T_CHECK_INT(env.rcpt[0].state, QUEUE_RCPT_DELIVERED);
	t_case("the relay has no DSN: relayed, we report");
	T_CHECK_INT(env.rcpt[1].state, QUEUE_RCPT_RELAYED);
	t_case("fewer results than recipients: the rest untouched");
	attempt_plan_free(&plan);
	free(track);
	env.rcpt[0].state = QUEUE_RCPT_PENDING;
	env.rcpt[1].state = QUEUE_RCPT_PENDING;
	env.rcpt[1].attempts = 0;
	attempt_plan_build(&plan, &env, w, NULL, &clk);
	track = attempt_track(&env);
	attempt_merge(&env, track, &plan.groups[0], r, 1, "mx", &clk);
	T_CHECK_INT(env.rcpt[1].state, QUEUE_RCPT_PENDING);
	T_CHECK_INT(env.rcpt[1].attempts, 0);
	attempt_plan_free(&plan);
	free(track);
	t_case("the mailbox took it (LMTP): delivered, not relayed");
	w[0].route = ATTEMPT_ROUTE_SKIP;
	w[1].route = ATTEMPT_ROUTE_LMTP;
	w[1].lmtp = "127.0.0.1:24";
	attempt_plan_build(&plan, &env, w, NULL, &clk);
	track = attempt_track(&env);
	T_CHECK_INT(plan.ngroups, 1);
	attempt_merge(&env, track, &plan.groups[0], &r[1], 1, "lmtp", &clk);
	T_CHECK_INT(env.rcpt[1].state, QUEUE_RCPT_DELIVERED);
	T_CHECK(track[1].final);
	attempt_plan_free(&plan);
	free(track);
	queue_env_free(&env);
}

/* A 4xx at the deadline: the retry is clamped to it, and the end of that
 * attempt expires the recipient with the 4xx quoted. */
static void
test_late_4xx(void)
{
	static const char *const a[] = {"late@r.example"};
	struct retry_policy p = policy(300, 4000, 3600);
	struct attempt_clock clk = {&p, T0 + 3600, fixed_jitter};
	struct smtp_client_result r =
	    res(SMTP_RESULT_TEMP, 450, "4.2.0", "try later");
	struct attempt_way w;
	struct queue_env env;
	struct attempt_plan plan;
	struct attempt_rcpt *track;

	env_make(&env, a, 1);
	ways_all(&w, 1, ATTEMPT_ROUTE_REMOTE);
	attempt_plan_build(&plan, &env, &w, NULL, &clk);
	track = attempt_track(&env);
	attempt_merge(&env, track, &plan.groups[0], &r, 1, "mx", &clk);
	t_case("4xx after the deadline: expired with 4.4.7");
	T_CHECK_INT(env.rcpt[0].state, QUEUE_RCPT_PENDING);
	T_CHECK_INT(attempt_expire(&env, track, &p, clk.now), 1);
	T_CHECK_INT(env.rcpt[0].state, QUEUE_RCPT_FAILED);
	T_CHECK_STR(env.rcpt[0].enh, "4.4.7");
	T_CHECK_STR(env.rcpt[0].text, "4.2.0 try later");
	T_CHECK_INT(env.rcpt[0].code, 450);
	T_CHECK_STR(track[0].mx, "mx");
	attempt_plan_free(&plan);
	free(track);
	queue_env_free(&env);
}

/* Past ATTEMPT_GROUPS_MAX destinations the rest waits, untouched. */
static void
test_group_limit(void)
{
	enum { N = ATTEMPT_GROUPS_MAX + 3 };
	struct retry_policy p = policy(60, 240, 100000);
	struct attempt_clock clk = {&p, T0, fixed_jitter};
	struct attempt_way w[N];
	struct queue_env env;
	struct attempt_plan plan;
	char addr[64];
	size_t i, grouped = 0;

	t_case("at most ATTEMPT_GROUPS_MAX groups");
	queue_env_init(&env);
	env.created = T0;
	for (i = 0; i < N; i++) {
		T_CHECK(str_fmt(addr, sizeof(addr), "x@d%zu.example", i) == 0);
		T_CHECK(queue_env_add_rcpt(&env, addr) != NULL);
	}
	ways_all(w, N, ATTEMPT_ROUTE_REMOTE);
	attempt_plan_build(&plan, &env, w, NULL, &clk);
	T_CHECK_INT(plan.ngroups, ATTEMPT_GROUPS_MAX);
	for (i = 0; i < plan.ngroups; i++)
		grouped += plan.groups[i].n;
	T_CHECK_INT(grouped, ATTEMPT_GROUPS_MAX);
	T_CHECK_INT(env.rcpt[N - 1].state, QUEUE_RCPT_PENDING);
	T_CHECK_INT(env.rcpt[N - 1].attempts, 0);
	attempt_plan_free(&plan);
	queue_env_free(&env);
}

int
main(void)
{
	T_RUN(test_retry_schedule);
	T_RUN(test_expire_cases);
	T_RUN(test_routing_changes);
	T_RUN(test_unrouted);
	T_RUN(test_merge_success);
	T_RUN(test_late_4xx);
	T_RUN(test_group_limit);
	return t_summary();
}
