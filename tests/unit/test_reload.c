/*
 * test_reload: the list of keys a reload cannot change
 * (reload_restart_keys, src/server/reloadkeys.c) against the configuration's
 * keys and against docs/configuration.md, which tags every key's row
 * "(live)" or "(restart)": a key made live in the code but still tagged
 * restart in the documentation, or the other way round, fails here.  Run
 * from the top of the tree (tests/run.py does).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "confcheck/confcheck.h"
#include "server/qsettings.h"
#include "server/reload.h"
#include "server/sandbox.h"
#include "t.h"

#define DOC_PATH "docs/configuration.md"
#define KEYS_MAX 512

static char *keys[KEYS_MAX]; /* every key of the configuration */
static size_t nkeys;
static char *doc; /* docs/configuration.md, whole */

static void
key_add(const char *line, void *ctx)
{
	size_t n = strcspn(line, " ");

	(void)ctx;
	if (nkeys == KEYS_MAX || strncmp(line, "tls_policy.", 11) == 0)
		return;
	keys[nkeys] = strndup(line, n);
	if (keys[nkeys] == NULL)
		abort();
	nkeys++;
}

static bool
is_key(const char *k)
{
	size_t i;

	for (i = 0; i < nkeys; i++)
		if (strcmp(keys[i], k) == 0)
			return true;
	return false;
}

static bool
is_restart(const char *k)
{
	size_t i;

	for (i = 0; reload_restart_keys[i] != NULL; i++)
		if (strcmp(reload_restart_keys[i], k) == 0)
			return true;
	return false;
}

static char *
read_doc(void)
{
	FILE *f = fopen(DOC_PATH, "rb");
	char *p;
	long n;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0 || (p = malloc((size_t)n + 1)) == NULL)
		abort();
	if (fread(p, 1, (size_t)n, f) != (size_t)n)
		abort();
	p[n] = '\0';
	fclose(f);
	return p;
}

/* The tag of key's row: "live", "restart", or NULL when the row is
 * missing or untagged. */
static const char *
doc_tag(const char *k)
{
	char row[256];
	const char *tags[] = {"live", "restart"};
	size_t i;

	for (i = 0; i < 2; i++) {
		snprintf(row, sizeof(row), "\n| `%s` (%s) |", k, tags[i]);
		if (strstr(doc, row) != NULL)
			return tags[i];
	}
	return NULL;
}

static void
test_restart_keys_are_keys(void)
{
	size_t i, j;

	for (i = 0; reload_restart_keys[i] != NULL; i++) {
		t_case(reload_restart_keys[i]);
		T_CHECK(is_key(reload_restart_keys[i]));
		for (j = 0; j < i; j++)
			T_CHECK(strcmp(reload_restart_keys[i],
				    reload_restart_keys[j]) != 0);
	}
}

static void
test_docs_tag_every_key(void)
{
	size_t i;

	for (i = 0; i < nkeys; i++) {
		const char *tag = doc_tag(keys[i]);
		const char *want = is_restart(keys[i]) ? "restart" : "live";

		t_case(keys[i]);
		if (tag == NULL || strcmp(tag, want) != 0)
			fprintf(stderr,
			    "%s: docs say (%s), reloadkeys.c says (%s)\n",
			    keys[i], tag != NULL ? tag : "no tag", want);
		T_CHECK(tag != NULL && strcmp(tag, want) == 0);
	}
}

/* The delivery settings and the tables switch live now (issue 17). */
static void
test_delivery_keys_live(void)
{
	static const char *const live[] = {"relay.smarthost", "relay.port",
	    "relay.smarthost_password_file", "delivery.lmtp",
	    "delivery.concurrency_per_destination", "queue.retry_first",
	    "queue.retry_max", "queue.lifetime", "queue.delay_warning",
	    "tables.users", "tls.ca_file", "tls.ca_path", "sts.enable",
	    "sts.fetch_timeout", NULL};
	size_t i;

	for (i = 0; live[i] != NULL; i++) {
		t_case(live[i]);
		T_CHECK(!is_restart(live[i]));
	}
}

static void
count_report(void *rctx, const char *msg)
{
	(void)msg;
	(*(unsigned *)rctx)++;
}

/* A reload leaves the running configuration's own password file to the
 * queue manager (ternd read it as root at start); any other path, and
 * `tern config check` (running NULL), must be readable. */
static void
test_confcheck_password_file(void)
{
	static const struct {
		const char *file, *running; /* NULL: no running configuration */
		unsigned problems;
	} cases[] = {
	    {"/nonexistent/tern-pw", NULL, 1},
	    {"/nonexistent/tern-pw", "/nonexistent/tern-pw", 0},
	    {"/nonexistent/tern-pw", "/nonexistent/other-pw", 1},
	    {"/nonexistent/tern-pw", "", 1}, /* running has none */
	};
	char err[512], o1[600], o2[600];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *ov1[] = {o1}, *ov2[] = {o2};
		struct conf *cf, *run = NULL;
		unsigned n = 0;

		t_case(cases[i].running != NULL ? cases[i].running : "(none)");
		snprintf(o1, sizeof(o1), "relay.smarthost_password_file=%s",
		    cases[i].file);
		cf = conf_load(NULL, ov1, 1, err, sizeof(err));
		T_CHECK(cf != NULL);
		if (cases[i].running != NULL && cases[i].running[0] != '\0') {
			snprintf(o2, sizeof(o2),
			    "relay.smarthost_password_file=%s",
			    cases[i].running);
			run = conf_load(NULL, ov2, 1, err, sizeof(err));
		} else if (cases[i].running != NULL) {
			run = conf_load(NULL, NULL, 0, err, sizeof(err));
		}
		if (cf != NULL)
			(void)confcheck_run(cf, run, count_report, &n);
		T_CHECK_INT(n, cases[i].problems);
		conf_free(run);
		conf_free(cf);
	}
}

/* errno says why the password file was not read: the caller keeps the
 * start copy on EACCES only. */
static void
test_password_read_errno(void)
{
	char path[] = "/tmp/tern-test-pw-XXXXXX", out[64], err[256];
	int fd = mkstemp(path);

	T_CHECK(fd >= 0);
	t_case("missing");
	T_CHECK_INT(qsettings_password_read("/nonexistent/tern-pw", out,
			sizeof(out), err, sizeof(err)),
	    -1);
	T_CHECK_INT(errno, ENOENT);
	T_CHECK(strstr(err, "/nonexistent/tern-pw") != NULL);
	t_case("empty");
	T_CHECK_INT(
	    qsettings_password_read(path, out, sizeof(out), err, sizeof(err)),
	    -1);
	T_CHECK_INT(errno, 0);
	T_CHECK(strstr(err, "empty") != NULL);
	t_case("one line");
	T_CHECK(write(fd, "s3cret\r\nnext\n", 14) == 14);
	T_CHECK_INT(
	    qsettings_password_read(path, out, sizeof(out), err, sizeof(err)),
	    0);
	T_CHECK_STR(out, "s3cret");
	close(fd);
	unlink(path);
}

/* Without the sandbox applied, sandbox_readable says what open() said. */
static void
test_sandbox_readable(void)
{
	char err[512];

	t_case("a file");
	T_CHECK_INT(
	    sandbox_readable("docs/configuration.md", false, err, sizeof(err)),
	    0);
	t_case("a directory");
	T_CHECK_INT(sandbox_readable("docs", true, err, sizeof(err)), 0);
	t_case("a file as a directory");
	T_CHECK_INT(
	    sandbox_readable("docs/configuration.md", true, err, sizeof(err)),
	    -1);
	T_CHECK(strstr(err, "Not a directory") != NULL);
	t_case("missing");
	T_CHECK_INT(
	    sandbox_readable("/nonexistent/ca.pem", false, err, sizeof(err)),
	    -1);
	T_CHECK_STR(err, "/nonexistent/ca.pem: No such file or directory");
}

int
main(void)
{
	char err[512] = "";
	struct conf *c = conf_load(NULL, NULL, 0, err, sizeof(err));
	size_t i;

	if (c == NULL) {
		fprintf(stderr, "conf_load: %s\n", err);
		return 1;
	}
	conf_dump(c, key_add, NULL);
	doc = read_doc();
	T_RUN(test_restart_keys_are_keys);
	T_RUN(test_docs_tag_every_key);
	T_RUN(test_delivery_keys_live);
	T_RUN(test_confcheck_password_file);
	T_RUN(test_password_read_errno);
	T_RUN(test_sandbox_readable);
	for (i = 0; i < nkeys; i++)
		free(keys[i]);
	free(doc);
	conf_free(c);
	return t_summary();
}
