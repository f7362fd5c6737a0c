/*
 * Unit tests for the greylisting store (src/greylist/greylist.c): the
 * delay, a new triplet per recipient, the /24 and /64 networks, the
 * auto-whitelist, expiry, a clock gone backwards, reopening (state on
 * disk) and the schema version.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <unistd.h>

#include <sqlite3.h>

#include "t.h"
#include "greylist/greylist.h"

static char dir[] = "/tmp/tern-test-greylist-XXXXXX";

static void
db_path(char *out, size_t outlen, const char *name)
{
	T_CHECK(str_fmt(out, outlen, "%s/%s", dir, name) == 0);
}

static enum greylist_verdict
check(struct greylist *g, const char *net, const char *from, const char *to,
    int64_t now, int64_t *wait)
{
	char err[256] = "";
	enum greylist_verdict v = greylist_check(
	    g, net, from, to, now, 300, 86400, wait, err, sizeof(err));

	if (v == GREYLIST_TEMPFAIL)
		fprintf(stderr, "greylist: %s\n", err);
	return v;
}

static void
test_net(void)
{
	struct sockaddr_in s4 = {.sin_family = AF_INET};
	struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
	char out[GREYLIST_NET_MAX];

	T_CHECK(inet_pton(AF_INET, "192.0.2.77", &s4.sin_addr) == 1);
	T_CHECK(greylist_net((struct sockaddr *)&s4, out, sizeof(out)) == 0);
	T_CHECK_STR(out, "192.0.2.0/24");
	T_CHECK(
	    inet_pton(AF_INET6, "2001:db8:1:2:3:4:5:6", &s6.sin6_addr) == 1);
	T_CHECK(greylist_net((struct sockaddr *)&s6, out, sizeof(out)) == 0);
	T_CHECK_STR(out, "2001:db8:1:2::/64");
	T_CHECK(inet_pton(AF_INET6, "::ffff:198.51.100.9", &s6.sin6_addr) == 1);
	T_CHECK(greylist_net((struct sockaddr *)&s6, out, sizeof(out)) == 0);
	T_CHECK_STR(out, "198.51.100.0/24");
	s4.sin_family = AF_UNIX;
	T_CHECK(greylist_net((struct sockaddr *)&s4, out, sizeof(out)) == -1);
	T_CHECK(greylist_net((struct sockaddr *)&s6, out, 4) == -1);
}

static void
test_delay_and_whitelist(void)
{
	struct greylist *g = NULL;
	char path[600], err[256];
	int64_t wait = 0;

	db_path(path, sizeof(path), "delay.db");
	T_CHECK(greylist_open(path, &g, err, sizeof(err)) == 0);
	if (g == NULL)
		return;
	T_CHECK_INT(
	    check(g, "192.0.2.0/24", "a@x.example", "b@y.example", 1000, &wait),
	    GREYLIST_DEFER);
	T_CHECK_INT((int)wait, 300);
	/* too early, whatever the case of the addresses */
	T_CHECK_INT(
	    check(g, "192.0.2.0/24", "A@X.example", "b@Y.EXAMPLE", 1100, &wait),
	    GREYLIST_DEFER);
	T_CHECK_INT((int)wait, 200);
	/* another recipient is another triplet */
	T_CHECK_INT(
	    check(g, "192.0.2.0/24", "a@x.example", "c@y.example", 1200, &wait),
	    GREYLIST_DEFER);
	T_CHECK_INT((int)wait, 300);
	/* a clock gone back unblocks nobody */
	T_CHECK_INT(
	    check(g, "192.0.2.0/24", "a@x.example", "b@y.example", 10, &wait),
	    GREYLIST_DEFER);
	T_CHECK_INT(
	    check(g, "192.0.2.0/24", "a@x.example", "b@y.example", 1300, &wait),
	    GREYLIST_PASS);
	/* the /24 passed once: whitelisted, a new triplet passes at once */
	T_CHECK_INT(
	    check(g, "192.0.2.0/24", "z@q.example", "c@y.example", 1301, &wait),
	    GREYLIST_KNOWN);
	/* another network is not */
	T_CHECK_INT(
	    check(g, "192.0.3.0/24", "a@x.example", "b@y.example", 1302, &wait),
	    GREYLIST_DEFER);
	greylist_close(g);

	/* the state is on disk */
	T_CHECK(greylist_open(path, &g, err, sizeof(err)) == 0);
	if (g == NULL)
		return;
	T_CHECK_INT(check(g, "192.0.2.0/24", "new@x.example", "b@y.example",
			2000, &wait),
	    GREYLIST_KNOWN);
	T_CHECK_INT(
	    check(g, "192.0.3.0/24", "a@x.example", "b@y.example", 1700, &wait),
	    GREYLIST_PASS);
	/* the whitelisting expires (expire 86400 after the last use) */
	T_CHECK_INT(check(g, "192.0.2.0/24", "n2@x.example", "b@y.example",
			2000 + 86401, &wait),
	    GREYLIST_DEFER);
	greylist_close(g);
}

static void
test_expire(void)
{
	struct greylist *g = NULL;
	char path[600], err[256];
	int64_t wait = 0;

	db_path(path, sizeof(path), "expire.db");
	T_CHECK(greylist_open(path, &g, err, sizeof(err)) == 0);
	if (g == NULL)
		return;
	T_CHECK_INT(
	    check(g, "10.0.0.0/24", "a@x.example", "b@y.example", 0, &wait),
	    GREYLIST_DEFER);
	/* seen again only after expire: a new triplet, its delay anew */
	T_CHECK_INT(
	    check(g, "10.0.0.0/24", "a@x.example", "b@y.example", 86401, &wait),
	    GREYLIST_DEFER);
	T_CHECK_INT((int)wait, 300);
	T_CHECK_INT(check(g, "10.0.0.0/24", "a@x.example", "b@y.example",
			86401 + 300, &wait),
	    GREYLIST_PASS);
	greylist_close(g);
}

static void
test_schema_version(void)
{
	struct greylist *g = NULL;
	sqlite3 *db;
	char path[600], err[256] = "";

	db_path(path, sizeof(path), "newer.db");
	T_CHECK(greylist_open(path, &g, err, sizeof(err)) == 0);
	greylist_close(g);
	g = NULL;
	T_CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	T_CHECK(sqlite3_exec(db, "PRAGMA user_version = 9", NULL, NULL, NULL) ==
		SQLITE_OK);
	sqlite3_close(db);
	T_CHECK(greylist_open(path, &g, err, sizeof(err)) == -1);
	T_CHECK(g == NULL);
	T_CHECK(strstr(err, "schema version 9 is newer") != NULL);
	db_path(path, sizeof(path), "nodir/x.db");
	T_CHECK(greylist_open(path, &g, err, sizeof(err)) == -1);
}

int
main(void)
{
	char cmd[128];

	if (mkdtemp(dir) == NULL)
		return 1;
	T_RUN(test_net);
	T_RUN(test_delay_and_whitelist);
	T_RUN(test_expire);
	T_RUN(test_schema_version);
	if (str_fmt(cmd, sizeof(cmd), "rm -rf %s", dir) == 0 &&
	    system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
	return t_summary();
}
