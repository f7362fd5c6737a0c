/*
 * Unit tests for src/queue/dsn.c, the DSNs an attempt owes: the decision
 * table for every recipient state before and after the attempt, final
 * delivery or not, each NOTIFY (none, SUCCESS, FAILURE, DELAY, NEVER) with
 * and without the delay warning due; owed reports from an earlier
 * attempt; the plan of an attempt's end (who is in which report, the
 * null sender, the warning sent once, removal, the next try); the rate
 * limit's drop, the owed marks of a failed store; and the reports built
 * from the envelope (actions, status, the whole last reply, Remote-MTA,
 * Will-Retry-Until) and the "delivered" report of the end of data.
 */
#include <stdint.h>

#include "t.h"
#include "queue/dsn.h"

#define T0 ((time_t)1700000000)

enum {
	P = QUEUE_RCPT_PENDING,
	D = QUEUE_RCPT_DELIVERED,
	F = QUEUE_RCPT_FAILED,
	R = QUEUE_RCPT_RELAYED
};

/* NOTIFY columns of the table, in this order */
static const unsigned notifies[5] = {0, SMTP_NOTIFY_SUCCESS,
    SMTP_NOTIFY_FAILURE, SMTP_NOTIFY_DELAY, SMTP_NOTIFY_NEVER};

/*
 * want: the report for NOTIFY none, SUCCESS, FAILURE, DELAY, NEVER without
 * the delay warning due, then the same five with it due.  'F' failure,
 * 'D' delay, 'S' success, '.' none.
 */
struct row {
	int before, after;
	bool final;
	const char *want;
};

static const struct row rows[] = {
    /* still pending: only the delay warning, on by default */
    {P, P, false, ".....D..D."},
    {P, P, true, ".....D..D."},
    {D, P, false, ".....D..D."},
    {F, P, false, ".....D..D."},
    {R, P, true, ".....D..D."},
    /* failed in this attempt: failure, on by default */
    {P, F, false, "F.F..F.F.."},
    {P, F, true, "F.F..F.F.."},
    {D, F, false, "F.F..F.F.."},
    {R, F, true, "F.F..F.F.."},
    /* failed before: reported then */
    {F, F, false, ".........."},
    {F, F, true, ".........."},
    /* relayed now to a next hop without DSN: success if asked */
    {P, R, false, ".S....S..."},
    {P, R, true, ".S....S..."},
    {D, R, false, ".S....S..."},
    {F, R, false, ".S....S..."},
    {R, R, false, ".........."},
    {R, R, true, ".........."},
    /* delivered: "delivered" only by the mailbox itself (LMTP, Maildir) */
    {P, D, false, ".........."},
    {P, D, true, ".S....S..."},
    {D, D, false, ".........."},
    {D, D, true, ".S....S..."},
    {F, D, false, ".........."},
    {F, D, true, ".S....S..."},
    {R, D, false, ".........."},
    {R, D, true, ".S....S..."},
    {D, P, true, ".....D..D."},
    {F, P, true, ".....D..D."},
    {R, P, false, ".....D..D."},
    {D, F, true, "F.F..F.F.."},
    {R, F, false, "F.F..F.F.."},
    {D, R, true, ".S....S..."},
    {F, R, true, ".S....S..."},
};

static char
kind_char(int k)
{
	return k == DSN_FAILURE	  ? 'F'
	       : k == DSN_DELAY	  ? 'D'
	       : k == DSN_SUCCESS ? 'S'
	       : k == -1	  ? '.'
				  : '?';
}

static void
test_table(void)
{
	bool seen[4][4][2] = {{{false}}};
	size_t i, j;

	t_case("every state pair and finality has a row");
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		seen[rows[i].before][rows[i].after][rows[i].final] = true;
	for (i = 0; i < 32; i++)
		T_CHECK(seen[i / 8][(i / 2) % 4][i % 2]);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *w = &rows[i];
		char got[11] = {0};
		struct queue_rcpt r;

		t_case("decision table row");
		for (j = 0; j < 10; j++) {
			memset(&r, 0, sizeof(r));
			r.state = (enum queue_rcpt_state)w->after;
			r.notify = notifies[j % 5];
			got[j] = kind_char(
			    dsn_kind_for(&r, (enum queue_rcpt_state)w->before,
				w->final, j >= 5));
		}
		if (strcmp(got, w->want) != 0)
			fprintf(stderr,
			    "row %zu: before=%d after=%d final=%d\n", i,
			    w->before, w->after, w->final);
		T_CHECK_STR(got, w->want);
	}
	t_case("NOTIFY=SUCCESS,FAILURE,DELAY combined");
	{
		struct queue_rcpt r;

		memset(&r, 0, sizeof(r));
		r.notify = SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE |
			   SMTP_NOTIFY_DELAY;
		r.state = QUEUE_RCPT_FAILED;
		T_CHECK_INT(dsn_kind_for(&r, QUEUE_RCPT_PENDING, false, true),
		    DSN_FAILURE);
		r.state = QUEUE_RCPT_PENDING;
		T_CHECK_INT(dsn_kind_for(&r, QUEUE_RCPT_PENDING, false, true),
		    DSN_DELAY);
		r.state = QUEUE_RCPT_RELAYED;
		T_CHECK_INT(dsn_kind_for(&r, QUEUE_RCPT_PENDING, false, true),
		    DSN_SUCCESS);
		t_case("NEVER wins over any other bit (the parser refuses "
		       "the mix; the decision does not rely on it)");
		r.notify |= SMTP_NOTIFY_NEVER;
		T_CHECK_INT(
		    dsn_kind_new(&r, QUEUE_RCPT_PENDING, true, true), -1);
		r.state = QUEUE_RCPT_FAILED;
		T_CHECK_INT(
		    dsn_kind_new(&r, QUEUE_RCPT_PENDING, true, true), -1);
		r.state = QUEUE_RCPT_PENDING;
		T_CHECK_INT(
		    dsn_kind_new(&r, QUEUE_RCPT_PENDING, true, true), -1);
	}
}

/* A report an earlier attempt owes (its store failed). */
static void
test_owed(void)
{
	struct queue_rcpt r;

	memset(&r, 0, sizeof(r));
	t_case("owed failure: made again though nothing changed");
	r.state = QUEUE_RCPT_FAILED;
	r.dsn_owed = QUEUE_DSN_FAILURE;
	T_CHECK_INT(dsn_kind_new(&r, QUEUE_RCPT_FAILED, false, false), -1);
	T_CHECK_INT(
	    dsn_kind_for(&r, QUEUE_RCPT_FAILED, false, false), DSN_FAILURE);
	t_case("owed success after a relay");
	r.state = QUEUE_RCPT_RELAYED;
	r.dsn_owed = QUEUE_DSN_SUCCESS;
	r.notify = SMTP_NOTIFY_SUCCESS;
	T_CHECK_INT(
	    dsn_kind_for(&r, QUEUE_RCPT_RELAYED, false, false), DSN_SUCCESS);
	t_case("owed delay while still pending, warning no longer due");
	r.state = QUEUE_RCPT_PENDING;
	r.dsn_owed = QUEUE_DSN_DELAY;
	r.notify = 0;
	T_CHECK_INT(
	    dsn_kind_for(&r, QUEUE_RCPT_PENDING, false, false), DSN_DELAY);
	t_case("owed delay is moot once final");
	r.state = QUEUE_RCPT_DELIVERED;
	T_CHECK_INT(dsn_kind_for(&r, QUEUE_RCPT_PENDING, false, false), -1);
	t_case("owed delay, then failed: the failure goes instead");
	r.state = QUEUE_RCPT_FAILED;
	T_CHECK_INT(
	    dsn_kind_for(&r, QUEUE_RCPT_PENDING, false, false), DSN_FAILURE);
}

static void
env_make(struct queue_env *env, const char *sender, size_t n)
{
	char addr[64];
	size_t i;

	queue_env_init(env);
	T_CHECK(
	    str_copy(env->id, sizeof(env->id), "00000000000000d1", 16) == 0);
	T_CHECK(str_copy(env->sender, sizeof(env->sender), sender,
		    strlen(sender)) == 0);
	env->created = T0;
	for (i = 0; i < n; i++) {
		T_CHECK(str_fmt(addr, sizeof(addr), "r%zu@b.example", i) == 0);
		T_CHECK(queue_env_add_rcpt(env, addr) != NULL);
	}
}

static void
test_plan(void)
{
	struct queue_env env;
	struct attempt_rcpt *track;
	struct dsn_plan p;

	env_make(&env, "s@a.example", 5);
	track = attempt_track(&env); /* all were pending */
	env.rcpt[0].state = QUEUE_RCPT_FAILED;
	env.rcpt[1].state = QUEUE_RCPT_FAILED;
	env.rcpt[1].notify = SMTP_NOTIFY_NEVER;
	env.rcpt[2].state = QUEUE_RCPT_RELAYED;
	env.rcpt[2].notify = SMTP_NOTIFY_SUCCESS;
	env.rcpt[3].next_try = T0 + 900;
	env.rcpt[4].next_try = T0 + 600;
	env.rcpt[4].dsn_owed = QUEUE_DSN_DELAY;
	dsn_plan_make(&p, &env, track, true, T0 + 7200);
	t_case("plan: who is in which report");
	T_CHECK(
	    p.want[DSN_FAILURE] && p.want[DSN_DELAY] && p.want[DSN_SUCCESS]);
	T_CHECK_INT(p.marks[0], DSN_FAILURE + 1);
	T_CHECK_INT(p.marks[1], 0);
	T_CHECK_INT(p.marks[2], DSN_SUCCESS + 1);
	T_CHECK_INT(p.marks[3], DSN_DELAY + 1);
	T_CHECK_INT(p.marks[4], DSN_DELAY + 1);
	t_case("plan: the owed mark counted, then cleared");
	T_CHECK(p.was_owed[DSN_DELAY] && !p.was_owed[DSN_FAILURE]);
	T_CHECK_INT(env.rcpt[4].dsn_owed, QUEUE_DSN_NONE);
	t_case("plan: warned once, next try, kept");
	T_CHECK_INT(env.warned, T0 + 7200);
	T_CHECK_INT(env.next_try, T0 + 600);
	T_CHECK(!p.remove);
	t_case("plan: suppressed failure says why");
	T_CHECK_STR(
	    dsn_suppressed(&env, &env.rcpt[1], QUEUE_RCPT_PENDING, p.kinds[1]),
	    "notify_never");
	T_CHECK(dsn_suppressed(&env, &env.rcpt[0], QUEUE_RCPT_PENDING,
		    p.kinds[0]) == NULL);
	T_CHECK(dsn_suppressed(
		    &env, &env.rcpt[1], QUEUE_RCPT_FAILED, p.kinds[1]) == NULL);
	env.rcpt[1].notify = SMTP_NOTIFY_SUCCESS;
	T_CHECK_STR(dsn_suppressed(&env, &env.rcpt[1], QUEUE_RCPT_PENDING, -1),
	    "notify_without_failure");
	t_case("rate limit drop: nobody in the report");
	dsn_plan_drop(&p, DSN_DELAY);
	T_CHECK(!p.want[DSN_DELAY]);
	T_CHECK_INT(p.marks[3], 0);
	T_CHECK_INT(p.marks[4], 0);
	T_CHECK_INT(p.marks[0], DSN_FAILURE + 1);
	t_case("store failed: owed marks, kept, retried soon");
	dsn_plan_owe(&p, &env, DSN_SUCCESS);
	T_CHECK(p.owed);
	T_CHECK_INT(env.rcpt[2].dsn_owed, QUEUE_DSN_SUCCESS);
	T_CHECK_INT(env.rcpt[0].dsn_owed, QUEUE_DSN_NONE);
	p.remove = true;
	{
		struct retry_policy rp;

		retry_policy_default(&rp);
		rp.first = 120;
		T_CHECK_INT(
		    dsn_plan_owed_reschedule(&p, &env, &rp, T0 + 100), 120);
		T_CHECK(!p.remove);
		T_CHECK_INT(env.next_try, T0 + 220);
		env.next_try = T0 + 150;
		(void)dsn_plan_owed_reschedule(&p, &env, &rp, T0 + 100);
		T_CHECK_INT(env.next_try, T0 + 150);
	}
	dsn_plan_free(&p);
	free(track);
	queue_env_free(&env);
}

static void
test_plan_null_sender(void)
{
	struct queue_env env;
	struct attempt_rcpt *track;
	struct dsn_plan p;

	env_make(&env, "", 2);
	track = attempt_track(&env);
	env.rcpt[0].state = QUEUE_RCPT_FAILED;
	env.rcpt[1].state = QUEUE_RCPT_DELIVERED;
	dsn_plan_make(&p, &env, track, true, T0 + 50);
	t_case("null sender: never a report, and the log says why");
	T_CHECK(!p.want[0] && !p.want[1] && !p.want[2]);
	T_CHECK_INT(p.marks[0], 0);
	T_CHECK_INT(p.kinds[0], DSN_FAILURE);
	T_CHECK_STR(
	    dsn_suppressed(&env, &env.rcpt[0], QUEUE_RCPT_PENDING, p.kinds[0]),
	    "null_sender");
	t_case("nothing pending: removed, no next try, not warned");
	T_CHECK(p.remove);
	T_CHECK_INT(env.next_try, 0);
	T_CHECK_INT(env.warned, 0);
	dsn_plan_free(&p);
	free(track);
	queue_env_free(&env);
}

static void
test_untrusted(void)
{
	struct queue_env env;

	queue_env_init(&env);
	t_case("network without AUTH: untrusted");
	T_CHECK(str_copy(env.ip, sizeof(env.ip), "192.0.2.1", 9) == 0);
	T_CHECK(str_copy(env.proto, sizeof(env.proto), "ESMTP", 5) == 0);
	T_CHECK(queue_env_untrusted(&env));
	t_case("AUTH, sendmail's socket, our own DSNs: trusted");
	T_CHECK(str_copy(env.auth, sizeof(env.auth), "ann", 3) == 0);
	T_CHECK(!queue_env_untrusted(&env));
	env.auth[0] = '\0';
	T_CHECK(str_copy(env.ip, sizeof(env.ip), "uid=1000", 8) == 0);
	T_CHECK(!queue_env_untrusted(&env));
	T_CHECK(str_copy(env.ip, sizeof(env.ip), "", 0) == 0);
	T_CHECK(str_copy(env.proto, sizeof(env.proto), "local", 5) == 0);
	T_CHECK(!queue_env_untrusted(&env));
}

#define ORIG_BODY "body line"
static const char orig[] = "From: s@a.example\r\nTo: r0@b.example\r\n"
			   "Subject: hello\r\n\r\n" ORIG_BODY "\r\n";

static void
test_build(void)
{
	struct dsn_origin o = {"mta.a.example",
	    "Tue, 14 Nov 2023 22:13:20 +0000", "<x.dsn@mta.a.example>",
	    T0 + 5 * 86400};
	struct queue_env env;
	struct attempt_rcpt *track;
	struct dsn_plan p;
	struct buf out;

	env_make(&env, "s@a.example", 3);
	track = attempt_track(&env);
	/* r0: expired after a 451; r1: a 550; r2: still pending */
	env.rcpt[0].code = 451;
	T_CHECK(str_copy(env.rcpt[0].enh, 16, "4.7.1", 5) == 0);
	T_CHECK(str_copy(env.rcpt[0].text, 64, "greylisted", 10) == 0);
	queue_rcpt_expire(&env.rcpt[0]);
	T_CHECK(str_copy(
		    track[0].mx, sizeof(track[0].mx), "mx.b.example", 12) == 0);
	env.rcpt[1].state = QUEUE_RCPT_FAILED;
	env.rcpt[1].code = 550;
	T_CHECK(str_copy(env.rcpt[1].enh, 16, "5.1.1", 5) == 0);
	T_CHECK(str_copy(env.rcpt[1].text, 64, "no such user", 12) == 0);
	dsn_plan_make(&p, &env, track, true, T0 + 7200);
	buf_init(&out, 1 << 20);
	t_case("failure report: both failed recipients, whole replies");
	T_CHECK(dsn_build(&env, &p, track, DSN_FAILURE, &o, orig, strlen(orig),
		    &out) == 0);
	T_CHECK(
	    strstr(out.data, "Final-Recipient: rfc822; r0@b.example") != NULL);
	T_CHECK(
	    strstr(out.data, "Final-Recipient: rfc822; r1@b.example") != NULL);
	T_CHECK(strstr(out.data, "r2@b.example\r\nAction") == NULL);
	T_CHECK(strstr(out.data, "Status: 4.4.7") != NULL);
	T_CHECK(strstr(out.data,
		    "Diagnostic-Code: smtp; 451 4.7.1 greylisted") != NULL);
	T_CHECK(strstr(out.data,
		    "Diagnostic-Code: smtp; 550 5.1.1 no such user") != NULL);
	T_CHECK(strstr(out.data, "Remote-MTA: dns; mx.b.example") != NULL);
	T_CHECK(strstr(out.data, "Action: failed") != NULL);
	T_CHECK(strstr(out.data, "Message-ID: <x.dsn@mta.a.example>") != NULL);
	T_CHECK(strstr(out.data, "Reporting-MTA: dns; mta.a.example") != NULL);
	T_CHECK(strstr(out.data, "Subject: hello") != NULL);
	T_CHECK(strstr(out.data, "Will-Retry-Until") == NULL);
	t_case("REQUIRETLS: the header only, even with RET=FULL (RFC 8689 5)");
	env.ret = SMTP_RET_FULL;
	buf_reset(&out);
	T_CHECK(dsn_build(&env, &p, track, DSN_FAILURE, &o, orig, strlen(orig),
		    &out) == 0);
	T_CHECK(strstr(out.data, ORIG_BODY) != NULL);
	T_CHECK(strstr(out.data, "text/rfc822-headers") == NULL);
	env.requiretls = true;
	buf_reset(&out);
	T_CHECK(dsn_build(&env, &p, track, DSN_FAILURE, &o, orig, strlen(orig),
		    &out) == 0);
	T_CHECK(strstr(out.data, "text/rfc822-headers") != NULL);
	T_CHECK(strstr(out.data, "Subject: hello") != NULL);
	T_CHECK(strstr(out.data, ORIG_BODY) == NULL);
	env.requiretls = false;
	env.ret = SMTP_RET_UNSPEC;
	t_case("delay report: the pending one, with Will-Retry-Until");
	buf_reset(&out);
	T_CHECK(dsn_build(&env, &p, track, DSN_DELAY, &o, orig, strlen(orig),
		    &out) == 0);
	T_CHECK(strstr(out.data, "Action: delayed") != NULL);
	T_CHECK(strstr(out.data, "r2@b.example") != NULL);
	T_CHECK(strstr(out.data, "r1@b.example") == NULL);
	T_CHECK(strstr(out.data, "Will-Retry-Until: ") != NULL);
	t_case("nobody in it: no report");
	buf_reset(&out);
	T_CHECK(dsn_build(&env, &p, track, DSN_SUCCESS, &o, orig, strlen(orig),
		    &out) == -1);
	T_CHECK_INT(out.len, 0);
	t_case("success report: relayed, or delivered by the mailbox");
	env.rcpt[2].state = QUEUE_RCPT_DELIVERED;
	env.rcpt[2].notify = SMTP_NOTIFY_SUCCESS;
	track[2].final = true;
	dsn_plan_free(&p);
	dsn_plan_make(&p, &env, track, false, T0 + 7200);
	T_CHECK(dsn_build(&env, &p, track, DSN_SUCCESS, &o, orig, strlen(orig),
		    &out) == 0);
	T_CHECK(strstr(out.data, "Action: delivered") != NULL);
	buf_free(&out);
	dsn_plan_free(&p);
	free(track);
	queue_env_free(&env);
}

static void
test_build_delivered(void)
{
	struct dsn_origin o = {"mta.a.example",
	    "Tue, 14 Nov 2023 22:13:20 +0000", "<y.dsn@mta.a.example>", 0};
	struct dsn_delivered_rcpt r[2] = {{"box@a.example", NULL, NULL, false},
	    {"list@a.example", "rfc822", "List@a.example", true}};
	struct dsn_delivered d = {0};
	struct buf out;

	d.id = "00000000000000e1";
	d.sender = "s@b.example";
	d.envid = "env-1";
	d.rcpts = r;
	d.nrcpts = 2;
	d.msg = orig;
	d.msg_len = strlen(orig);
	buf_init(&out, 1 << 20);
	t_case("delivered at the end of data: delivered and expanded");
	T_CHECK(dsn_build_delivered(&d, &o, T0, &out) == 0);
	T_CHECK(strstr(out.data, "Action: delivered") != NULL);
	T_CHECK(strstr(out.data, "Action: expanded") != NULL);
	T_CHECK(strstr(out.data,
		    "Original-Recipient: rfc822; List@a.example") != NULL);
	T_CHECK(strstr(out.data, "Original-Envelope-Id: env-1") != NULL);
	T_CHECK(strstr(out.data, "Status: 2.0.0") != NULL);
	T_CHECK(strstr(out.data, "To: <s@b.example>") != NULL ||
		strstr(out.data, "To: s@b.example") != NULL);
	buf_free(&out);
}

int
main(void)
{
	T_RUN(test_table);
	T_RUN(test_owed);
	T_RUN(test_plan);
	T_RUN(test_plan_null_sender);
	T_RUN(test_untrusted);
	T_RUN(test_build);
	T_RUN(test_build_delivered);
	return t_summary();
}
