/*
 * Unit tests for src/queue/envjson.c, an envelope as `tern queue show`
 * prints it: every field, recipients in order, strings escaped (quotes,
 * backslashes, control characters from a peer's reply), and a full
 * buffer reported.
 */
#include "t.h"
#include "queue/queue.h"

static void
env_make(struct queue_env *env)
{
	static const char text[] = "no \"such\"\\user\r\n\x01";
	struct queue_rcpt *r;

	queue_env_init(env);
	T_CHECK(
	    str_copy(env->id, sizeof(env->id), "0123456789abcdef", 16) == 0);
	T_CHECK(
	    str_copy(env->sender, sizeof(env->sender), "s@a.example", 11) == 0);
	env->created = 1700000000;
	env->size = 1234;
	env->next_try = 1700000300;
	r = queue_env_add_rcpt(env, "a@b.example");
	T_CHECK(r != NULL);
	r = queue_env_add_rcpt(env, "c@d.example");
	T_CHECK(r != NULL);
	if (r == NULL)
		return;
	r->state = QUEUE_RCPT_FAILED;
	r->attempts = 3;
	r->code = 550;
	T_CHECK(str_copy(r->enh, sizeof(r->enh), "5.1.1", 5) == 0);
	T_CHECK(str_copy(r->text, sizeof(r->text), text, strlen(text)) == 0);
}

static void
test_json(void)
{
	static const char want[] =
	    "{\"id\":\"0123456789abcdef\",\"created\":1700000000,"
	    "\"size\":1234,\"held\":false,\"next_try\":1700000300,"
	    "\"sender\":\"s@a.example\",\"requiretls\":false,"
	    "\"tls_required_no\":false,\"recipients\":["
	    "{\"addr\":\"a@b.example\",\"state\":\"PENDING\",\"attempts\":0,"
	    "\"next_try\":0,\"code\":0,\"enh\":\"\",\"text\":\"\"},"
	    "{\"addr\":\"c@d.example\",\"state\":\"FAILED\",\"attempts\":3,"
	    "\"next_try\":0,\"code\":550,\"enh\":\"5.1.1\","
	    "\"text\":\"no \\\"such\\\"\\\\user\\u000d\\u000a\\u0001\"}]}";
	struct queue_env env;
	struct buf b;

	t_case("every field, escaped");
	env_make(&env);
	buf_init(&b, 4096);
	T_CHECK(queue_env_json(&env, &b) == 0);
	T_CHECK_STR(b.data, want);
	t_case("held");
	buf_reset(&b);
	env.held = true;
	T_CHECK(queue_env_json(&env, &b) == 0);
	T_CHECK(strstr(b.data, "\"held\":true") != NULL);
	t_case("RFC 8689 flags");
	buf_reset(&b);
	env.requiretls = true;
	env.tls_required_no = true;
	T_CHECK(queue_env_json(&env, &b) == 0);
	T_CHECK(strstr(b.data,
		    "\"requiretls\":true,\"tls_required_no\":true,") != NULL);
	buf_free(&b);
	t_case("full buffer: -1");
	buf_init(&b, 40);
	T_CHECK(queue_env_json(&env, &b) == -1);
	buf_free(&b);
	queue_env_free(&env);
}

int
main(void)
{
	T_RUN(test_json);
	return t_summary();
}
