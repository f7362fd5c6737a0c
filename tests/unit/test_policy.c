/*
 * test_policy: the policy protocol codec (src/policy/policy.c): the
 * request byte for byte, values that must be refused, a table of replies
 * (well-formed and garbage) parsed whole at a guard page and at every
 * prefix, and a table of actions with what each means.
 */
#include "policy/policy.h"
#include "t.h"

static void
test_request(void)
{
	struct buf b;
	const struct policy_request r = {
	    .protocol_state = "RCPT",
	    .protocol_name = "ESMTP",
	    .helo_name = "client.example",
	    .queue_id = "Q1",
	    .sender = "a@b.example",
	    .recipient = "c@d.example",
	    .recipient_count = 0,
	    .client_address = "192.0.2.1",
	    .client_name = "unknown",
	    .reverse_client_name = "unknown",
	    .client_port = 40000,
	    .instance = "S1.1",
	    .sasl_method = "PLAIN",
	    .sasl_username = "ben",
	    .size = 1234,
	    .encryption_protocol = "TLSv1.3",
	    .encryption_cipher = "TLS_AES_256_GCM_SHA384",
	    .encryption_keysize = 256,
	    .server_address = "127.0.0.1",
	    .server_port = 25,
	};
	const char want[] = "request=smtpd_access_policy\n"
			    "protocol_state=RCPT\n"
			    "protocol_name=ESMTP\n"
			    "helo_name=client.example\n"
			    "queue_id=Q1\n"
			    "sender=a@b.example\n"
			    "recipient=c@d.example\n"
			    "recipient_count=0\n"
			    "client_address=192.0.2.1\n"
			    "client_name=unknown\n"
			    "reverse_client_name=unknown\n"
			    "instance=S1.1\n"
			    "sasl_method=PLAIN\n"
			    "sasl_username=ben\n"
			    "sasl_sender=\n"
			    "size=1234\n"
			    "ccert_subject=\n"
			    "ccert_issuer=\n"
			    "ccert_fingerprint=\n"
			    "encryption_protocol=TLSv1.3\n"
			    "encryption_cipher=TLS_AES_256_GCM_SHA384\n"
			    "encryption_keysize=256\n"
			    "etrn_domain=\n"
			    "stress=\n"
			    "ccert_pubkey_fingerprint=\n"
			    "client_port=40000\n"
			    "policy_context=\n"
			    "server_address=127.0.0.1\n"
			    "server_port=25\n"
			    "\n";
	struct policy_request bad = r;
	char big[POLICY_VALUE_MAX + 2];

	buf_init(&b, 1 << 16);
	t_case("request: every attribute, Postfix's order");
	T_CHECK(policy_request_encode(&r, &b) == 0);
	T_CHECK(b.len == sizeof(want) - 1 && memcmp(b.data, want, b.len) == 0);

	t_case("request: LF in a value refused");
	buf_reset(&b);
	bad.helo_name = "x\nrecipient=evil@example";
	T_CHECK(policy_request_encode(&bad, &b) == -1);
	t_case("request: CR in a value refused");
	buf_reset(&b);
	bad.helo_name = "x\r";
	T_CHECK(policy_request_encode(&bad, &b) == -1);
	t_case("request: value at the limit taken, one more refused");
	memset(big, 'a', sizeof(big));
	big[POLICY_VALUE_MAX] = '\0';
	buf_reset(&b);
	T_CHECK(policy_attr_add(&b, "helo_name", big) == 0);
	big[POLICY_VALUE_MAX] = 'a';
	big[POLICY_VALUE_MAX + 1] = '\0';
	T_CHECK(policy_attr_add(&b, "helo_name", big) == -1);
	t_case("request: bad names refused");
	T_CHECK(policy_attr_add(&b, "Helo", "x") == -1);
	T_CHECK(policy_attr_add(&b, "a=b", "x") == -1);
	T_CHECK(policy_attr_add(&b, "", "x") == -1);
	t_case("request: a full buffer is -1");
	buf_free(&b);
	buf_init(&b, 40);
	T_CHECK(policy_request_encode(&r, &b) == -1);
	buf_free(&b);
}

struct reply_case {
	const char *name;
	const char *data;
	int rc;
	const char *action; /* rc 1 */
	size_t used;	    /* rc 1: 0 means all of data */
};

static const struct reply_case reply_cases[] = {
    {"plain", "action=DUNNO\n\n", 1, "DUNNO", 0},
    {"crlf", "action=OK\r\n\r\n", 1, "OK", 0},
    {"other attributes ignored", "foo=bar\naction=REJECT no\nx_y=\n\n", 1,
	"REJECT no", 0},
    {"empty action value", "action=\n\n", 1, "", 0},
    {"value with =", "action=REJECT a=b\n\n", 1, "REJECT a=b", 0},
    {"8-bit text taken", "action=REJECT caf\xc3\xa9\n\n", 1,
	"REJECT caf\xc3\xa9", 0},
    {"bytes after the reply not used", "action=OK\n\nrest", 1, "OK", 11},
    {"no action", "foo=bar\n\n", -1, NULL, 0},
    {"empty line first", "\naction=OK\n\n", -1, NULL, 0},
    {"two actions", "action=OK\naction=REJECT\n\n", -1, NULL, 0},
    {"no equals", "action OK\n\n", -1, NULL, 0},
    {"upper-case name", "ACTION=OK\n\n", -1, NULL, 0},
    {"NUL", "action=O\0K\n\n", -1, NULL, 0},
    {"bare CR inside", "action=O\rK\n\n", -1, NULL, 0},
    {"escape", "action=REJECT \x1b[2J\n\n", -1, NULL, 0},
    {"DEL", "action=REJECT \x7f\n\n", -1, NULL, 0},
    {"HTTP", "HTTP/1.1 400 Bad Request\r\n\r\n", -1, NULL, 0},
    {"empty name", "=OK\n\n", -1, NULL, 0},
};

static void
test_replies(void)
{
	for (size_t i = 0; i < sizeof(reply_cases) / sizeof(reply_cases[0]);
	     i++) {
		const struct reply_case *c = &reply_cases[i];
		size_t n = strlen(c->data), used = 0;
		struct policy_str act;
		const char *g;
		void *map;
		size_t maplen;

		/* the NUL case: strlen stops at it; count to the end */
		if (strcmp(c->name, "NUL") == 0)
			n = 12;
		t_case(c->name);
		g = t_guard(c->data, n, &map, &maplen);
		T_CHECK_INT(policy_reply_parse(g, n, &act, &used), c->rc);
		if (c->rc == 1) {
			T_CHECK(used == (c->used ? c->used : n));
			T_CHECK(act.len == strlen(c->action) &&
				memcmp(act.p, c->action, act.len) == 0);
			T_CHECK(act.p >= g && act.p + act.len <= g + n);
		}
		t_unguard(map, maplen);
		/* a prefix never ends early: it asks for more, or is
		 * garbage already when the garbage is in it */
		for (size_t k = 0; k < (c->rc == 1 ? used : n); k++) {
			const char *gk = t_guard(c->data, k, &map, &maplen);
			int rc = policy_reply_parse(gk, k, &act, &used);

			T_CHECK(rc == 0 || (rc == -1 && c->rc == -1));
			t_unguard(map, maplen);
		}
	}
}

static void
test_reply_length(void)
{
	char *p = malloc(POLICY_REPLY_MAX + 16);
	struct policy_str act;
	size_t used;

	t_case("reply: no end within POLICY_REPLY_MAX is garbage");
	memcpy(p, "action=REJECT ", 14);
	memset(p + 14, 'x', POLICY_REPLY_MAX + 2 - 14);
	T_CHECK_INT(
	    policy_reply_parse(p, POLICY_REPLY_MAX - 1, &act, &used), 0);
	T_CHECK_INT(policy_reply_parse(p, POLICY_REPLY_MAX, &act, &used), -1);
	T_CHECK_INT(
	    policy_reply_parse(p, POLICY_REPLY_MAX + 2, &act, &used), -1);
	t_case("reply: ending exactly at POLICY_REPLY_MAX is taken");
	p[POLICY_REPLY_MAX - 2] = '\n';
	p[POLICY_REPLY_MAX - 1] = '\n';
	T_CHECK_INT(
	    policy_reply_parse(p, POLICY_REPLY_MAX + 2, &act, &used), 1);
	T_CHECK(used == POLICY_REPLY_MAX);
	free(p);
}

struct action_case {
	const char *in;
	int rc;
	enum policy_kind kind;
	int code;
	const char *enh;
	const char *text;
	const char *name; /* PREPEND */
};

static const struct action_case action_cases[] = {
    {"OK", 0, POLICY_OK, 0, "", "", NULL},
    {"ok", 0, POLICY_OK, 0, "", "", NULL},
    {"  dunno  ", 0, POLICY_DUNNO, 0, "", "", NULL},
    {"OKAY", 0, POLICY_UNKNOWN, 0, "", "OKAY", NULL},
    {"REJECT", 0, POLICY_REJECT, 550, "5.7.1", "", NULL},
    {"REJECT go away", 0, POLICY_REJECT, 550, "5.7.1", "go away", NULL},
    {"reject 5.7.2 go away", 0, POLICY_REJECT, 550, "5.7.2", "go away", NULL},
    {"REJECT 4.7.1 wrong class", -1, POLICY_REJECT, 550, "", "", NULL},
    {"REJECT 5.7 not enhanced", 0, POLICY_REJECT, 550, "5.7.1",
	"5.7 not enhanced", NULL},
    {"REJECT 5.1234.1 too long", 0, POLICY_REJECT, 550, "5.7.1",
	"5.1234.1 too long", NULL},
    {"DEFER later", 0, POLICY_DEFER, 450, "4.7.1", "later", NULL},
    {"DEFER_IF_PERMIT 4.7.0 busy", 0, POLICY_DEFER_IF_PERMIT, 450, "4.7.0",
	"busy", NULL},
    {"DEFER_IF_REJECT", 0, POLICY_DEFER_IF_REJECT, 450, "4.7.1", "", NULL},
    {"554 5.7.1 blocked", 0, POLICY_CODE, 554, "5.7.1", "blocked", NULL},
    {"450 slow down", 0, POLICY_CODE, 450, "4.7.1", "slow down", NULL},
    {"421 4.7.0 bye", 0, POLICY_CODE, 421, "4.7.0", "bye", NULL},
    {"451", 0, POLICY_CODE, 451, "4.7.1", "", NULL},
    {"250 fine", -1, POLICY_CODE, 0, "", "", NULL},
    {"354 go", -1, POLICY_CODE, 0, "", "", NULL},
    {"599 nope", -1, POLICY_CODE, 0, "", "", NULL},
    {"550 4.7.1 mismatch", -1, POLICY_CODE, 550, "", "", NULL},
    {"5500 no", 0, POLICY_UNKNOWN, 0, "", "5500 no", NULL},
    {"DISCARD spam", 0, POLICY_DISCARD, 0, "", "spam", NULL},
    {"HOLD review", 0, POLICY_HOLD, 0, "", "review", NULL},
    {"PREPEND X-Policy: checked", 0, POLICY_PREPEND, 0, "", "X-Policy: checked",
	"X-Policy"},
    {"PREPEND X-Empty:", 0, POLICY_PREPEND, 0, "", "X-Empty:", "X-Empty"},
    {"PREPEND no colon", -1, POLICY_PREPEND, 0, "", "", NULL},
    {"PREPEND : no name", -1, POLICY_PREPEND, 0, "", "", NULL},
    {"PREPEND Bad Name: x", -1, POLICY_PREPEND, 0, "", "", NULL},
    {"PREPEND", -1, POLICY_PREPEND, 0, "", "", NULL},
    {"WARN odd", 0, POLICY_WARN, 0, "", "odd", NULL},
    {"INFO note", 0, POLICY_INFO, 0, "", "note", NULL},
    {"REDIRECT a@b.example", 0, POLICY_REDIRECT, 0, "", "a@b.example", NULL},
    {"FILTER smtp:[127.0.0.1]:10025", 0, POLICY_FILTER, 0, "",
	"smtp:[127.0.0.1]:10025", NULL},
    {"BCC a@b.example", 0, POLICY_UNKNOWN, 0, "", "BCC a@b.example", NULL},
    {"reject_unknown_sender_domain", 0, POLICY_UNKNOWN, 0, "",
	"reject_unknown_sender_domain", NULL},
    {"", 0, POLICY_UNKNOWN, 0, "", "", NULL},
    {"REJECT \x01", -1, POLICY_REJECT, 0, "", "", NULL},
};

static void
test_actions(void)
{
	char big[POLICY_HEADER_MAX + 16];
	struct policy_action a;

	for (size_t i = 0; i < sizeof(action_cases) / sizeof(action_cases[0]);
	     i++) {
		const struct action_case *c = &action_cases[i];
		size_t n = strlen(c->in);
		void *map;
		size_t maplen;
		const char *g;

		t_case(c->in[0] ? c->in : "(empty)");
		g = t_guard(c->in, n, &map, &maplen);
		T_CHECK_INT(policy_action_parse(g, n, &a), c->rc);
		if (c->rc == 0) {
			T_CHECK_INT((int)a.kind, (int)c->kind);
			T_CHECK_INT(a.code, c->code);
			T_CHECK_STR(a.enh, c->enh);
			T_CHECK(a.text.len == strlen(c->text) &&
				(a.text.len == 0 || memcmp(a.text.p, c->text,
							a.text.len) == 0));
			if (c->name != NULL)
				T_CHECK(
				    a.name.len == strlen(c->name) &&
				    memcmp(a.name.p, c->name, a.name.len) == 0);
		}
		t_unguard(map, maplen);
	}
	t_case("PREPEND: at most POLICY_HEADER_MAX octets");
	memcpy(big, "PREPEND X: ", 11);
	memset(big + 11, 'v', POLICY_HEADER_MAX - 3);
	/* "X: " + value = POLICY_HEADER_MAX */
	T_CHECK_INT(policy_action_parse(big, 8 + POLICY_HEADER_MAX, &a), 0);
	T_CHECK(a.text.len == POLICY_HEADER_MAX);
	big[8 + POLICY_HEADER_MAX] = 'v';
	T_CHECK_INT(
	    policy_action_parse(big, 8 + POLICY_HEADER_MAX + 1, &a), -1);
	t_case("names");
	T_CHECK_STR(
	    policy_kind_name(POLICY_DEFER_IF_PERMIT), "defer_if_permit");
	T_CHECK_STR(policy_kind_name(POLICY_UNKNOWN), "unknown");
}

int
main(void)
{
	T_RUN(test_request);
	T_RUN(test_replies);
	T_RUN(test_reply_length);
	T_RUN(test_actions);
	return t_summary();
}
