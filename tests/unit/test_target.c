/*
 * Unit tests for src/deliver/target.c: relay.smarthost and delivery.lmtp
 * targets, one table row per spelling, good and bad.
 */
#include <string.h>

#include "deliver/target.h"

#include "t.h"

enum kind { SMARTHOST, LMTP };

struct row {
	enum kind kind;
	const char *in;
	int rc;
	const char *query, *host; /* when rc == 0 */
	uint16_t port;
	bool implicit;
	const char *path;
};

static const struct row rows[] = {
    /* smarthost; 25 when no port is given */
    {SMARTHOST, "relay.example.org", 0, "relay.example.org",
	"relay.example.org", 25, false, ""},
    {SMARTHOST, "relay.example.org:587", 0, "relay.example.org",
	"relay.example.org", 587, false, ""},
    {SMARTHOST, "smtps:relay.example.org", 0, "relay.example.org",
	"relay.example.org", 465, true, ""},
    {SMARTHOST, "SMTPS:relay.example.org:2465", 0, "relay.example.org",
	"relay.example.org", 2465, true, ""},
    {SMARTHOST, "192.0.2.1", 0, "[192.0.2.1]", "192.0.2.1", 25, false, ""},
    {SMARTHOST, "192.0.2.1:2525", 0, "[192.0.2.1]", "192.0.2.1", 2525, false,
	""},
    {SMARTHOST, "[192.0.2.1]:2525", 0, "[192.0.2.1]", "192.0.2.1", 2525, false,
	""},
    {SMARTHOST, "[IPv6:2001:db8::1]:26", 0, "[IPv6:2001:db8::1]", "2001:db8::1",
	26, false, ""},
    {SMARTHOST, "[2001:db8::1]:26", 0, "[IPv6:2001:db8::1]", "2001:db8::1", 26,
	false, ""},
    {SMARTHOST, "2001:db8::1", 0, "[IPv6:2001:db8::1]", "2001:db8::1", 25,
	false, ""},
    {SMARTHOST, "[relay.example.org]", 0, "relay.example.org",
	"relay.example.org", 25, false, ""},
    {SMARTHOST, "smtps:[192.0.2.1]", 0, "[192.0.2.1]", "192.0.2.1", 465, true,
	""},
    {SMARTHOST, "", -1, NULL, NULL, 0, false, NULL},
    {SMARTHOST, "smtps:", -1, NULL, NULL, 0, false, NULL},
    {SMARTHOST, ":25", -1, NULL, NULL, 0, false, NULL},
    {SMARTHOST, "relay.example.org:0", -1, NULL, NULL, 0, false, NULL},
    {SMARTHOST, "relay.example.org:65536", -1, NULL, NULL, 0, false, NULL},
    {SMARTHOST, "relay.example.org:x", -1, NULL, NULL, 0, false, NULL},
    {SMARTHOST, "relay.example.org:", -1, NULL, NULL, 0, false, NULL},
    {SMARTHOST, "[192.0.2.1", -1, NULL, NULL, 0, false, NULL},
    {SMARTHOST, "[192.0.2.1]x", -1, NULL, NULL, 0, false, NULL},
    {SMARTHOST, "[192.0.2.1]:", -1, NULL, NULL, 0, false, NULL},
    {SMARTHOST, "[]", -1, NULL, NULL, 0, false, NULL},
    {SMARTHOST, "bad host", -1, NULL, NULL, 0, false, NULL},
    {SMARTHOST, "a:b:c", -1, NULL, NULL, 0, false, NULL},
    {SMARTHOST, "unix:/run/lmtp", -1, NULL, NULL, 0, false, NULL},
    /* LMTP; 24 when no port is given */
    {LMTP, "unix:/run/dovecot/lmtp", 0, "", "", 24, false, "/run/dovecot/lmtp"},
    {LMTP, "mbox.example.org", 0, "mbox.example.org", "mbox.example.org", 24,
	false, ""},
    {LMTP, "mbox.example.org:2424", 0, "mbox.example.org", "mbox.example.org",
	2424, false, ""},
    {LMTP, "[192.0.2.7]", 0, "[192.0.2.7]", "192.0.2.7", 24, false, ""},
    {LMTP, "unix:run/lmtp", -1, NULL, NULL, 0, false, NULL},
    {LMTP, "unix:", -1, NULL, NULL, 0, false, NULL},
    {LMTP, "smtps:mbox.example.org", -1, NULL, NULL, 0, false, NULL},
    {LMTP, "mbox.example.org:0", -1, NULL, NULL, 0, false, NULL},
};

static int
parse(enum kind kind, const char *in, struct target *t)
{
	return kind == SMARTHOST ? target_smarthost_parse(in, 25, t)
				 : target_lmtp_parse(in, t);
}

static void
test_rows(void)
{
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *w = &rows[i];
		struct target t;

		t_case(w->in);
		T_CHECK_INT(parse(w->kind, w->in, &t), w->rc);
		if (w->rc != 0)
			continue;
		T_CHECK_STR(t.query, w->query);
		T_CHECK_STR(t.host, w->host);
		T_CHECK_INT(t.port, w->port);
		T_CHECK_INT(t.implicit_tls, w->implicit);
		T_CHECK_STR(t.unix_path, w->path);
	}
}

/* The longest name and socket path that fit, and one octet more. */
static void
test_limits(void)
{
	char in[8 + DNS_NAME_MAX + 2];
	struct target t;

	t_case("a name of DNS_NAME_MAX octets, and one more");
	memset(in, 'a', DNS_NAME_MAX);
	in[DNS_NAME_MAX] = '\0';
	T_CHECK_INT(target_smarthost_parse(in, 25, &t), 0);
	T_CHECK_INT(strlen(t.host), DNS_NAME_MAX);
	in[DNS_NAME_MAX] = 'a';
	in[DNS_NAME_MAX + 1] = '\0';
	T_CHECK_INT(target_smarthost_parse(in, 25, &t), -1);

	t_case("a socket path that fills sun_path, and one octet more");
	memcpy(in, "unix:/", 6);
	memset(in + 6, 'p', TARGET_PATH_MAX - 2);
	in[5 + TARGET_PATH_MAX - 1] = '\0';
	T_CHECK_INT(target_lmtp_parse(in, &t), 0);
	T_CHECK_INT(strlen(t.unix_path), TARGET_PATH_MAX - 1);
	in[5 + TARGET_PATH_MAX - 1] = 'p';
	in[5 + TARGET_PATH_MAX] = '\0';
	T_CHECK_INT(target_lmtp_parse(in, &t), -1);
}

int
main(void)
{
	test_rows();
	test_limits();
	return t_summary();
}
