/*
 * tern config check [-c FILE]: the checks ternd makes of tern.conf at
 * start and on SIGHUP, without touching a running ternd.  Every error of
 * the file with file:line (conf_check), then the files the configuration
 * names (confcheck.h).  Unknown keys are errors, as they are for ternd,
 * which refuses to start, or to reload, with one: each names the key it
 * probably meant.  Exit status 0 when ternd would take the file, 1 when
 * not, 64 for a usage error.
 */
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "confcheck/confcheck.h"

struct check_out {
	unsigned n;
	char first[1024]; /* conf_check's err repeats the first error */
};

static void
check_print(void *ctx, const char *msg)
{
	struct check_out *o = ctx;

	if (o->n++ == 0)
		str_fmt_cut(o->first, sizeof(o->first), "%s", msg);
	printf("error: %s\n", msg);
}

/* Is argv[i] an option of tern's own (-c FILE, -o K=V) and how many
 * arguments does it take?  0: not one. */
static int
cli_option_len(int argc, char **argv, int i)
{
	const char *a = argv[i];

	if (a[0] != '-' || (a[1] != 'c' && a[1] != 'o'))
		return 0;
	return a[2] != '\0' ? 1 : (i + 1 < argc ? 2 : 1);
}

bool
cli_is_config_check(int argc, char **argv)
{
	int i = 1, n;

	while (i < argc && strcmp(argv[i], "--") != 0 &&
	       (n = cli_option_len(argc, argv, i)) > 0)
		i += n;
	if (i < argc && strcmp(argv[i], "--") == 0)
		i++;
	return i + 1 < argc && strcmp(argv[i], "config") == 0 &&
	       strcmp(argv[i + 1], "check") == 0;
}

int
cli_config_check(int argc, char **argv)
{
	char **ov = xcalloc((size_t)argc + 1, sizeof(char *));
	const char *path = NULL, *env;
	struct check_out out = {0, ""};
	char err[1024];
	struct conf *c;
	size_t nov = 0;
	int i, rc;

	/* -c and -o before "config check" (tern's own) and after it */
	for (i = 1; i < argc; i++) {
		char *a = argv[i], *val;

		if (strcmp(a, "--") == 0 || strcmp(a, "config") == 0 ||
		    strcmp(a, "check") == 0)
			continue;
		if (cli_option_len(argc, argv, i) == 0) {
			free(ov);
			fprintf(stderr,
			    "tern: config check: unexpected %s (expected "
			    "[-c FILE])\n",
			    a);
			return 64;
		}
		val = a[2] != '\0' ? a + 2 : (i + 1 < argc ? argv[++i] : NULL);
		if (val == NULL) {
			free(ov);
			fprintf(stderr, "tern: -%c needs a value\n", a[1]);
			return 64;
		}
		if (a[1] == 'c')
			path = val;
		else
			ov[nov++] = val;
	}
	if (path == NULL && (env = getenv("TERN_CONFIG")) != NULL &&
	    env[0] != '\0')
		path = env;
	if (path == NULL && access(CONF_SYSTEM_FILE, F_OK) == 0)
		path = CONF_SYSTEM_FILE;
	c = conf_check(path, ov, nov, check_print, &out, err, sizeof(err));
	free(ov);
	/* an error conf_check did not report (syntax, -o, the whole) */
	if (c == NULL && strcmp(err, out.first) != 0)
		check_print(&out, err);
	if (c != NULL)
		(void)confcheck_run(c, NULL, check_print, &out);
	if (out.n == 0)
		printf("ok: %s: ternd would start with it and a reload would "
		       "take it\n",
		    path != NULL ? path : "(defaults)");
	else
		printf("%s: %u error%s: ternd would refuse to start with it "
		       "and a running ternd would refuse the reload\n",
		    path != NULL ? path : "(defaults)", out.n,
		    out.n == 1 ? "" : "s");
	rc = out.n == 0 ? 0 : 1;
	conf_free(c);
	return rc;
}
