/*
 * logcmd: "tern log ID [--file PATH|-] [--directory DIR]", the log lines
 * of one message, oldest first: what `tern queue show ID` summarises as
 * its last reply, told line by line (queued, each attempt, deferred,
 * delivered or bounced, expired, the DSN made for it).
 *
 * Where the lines come from:
 *   --file PATH   a file of ternd's lines (its stderr, kept by the service
 *                 manager or a redirection; "-" is stdin), key=value or
 *                 JSON.  A line is the message's when it has the field
 *                 id=ID (kv) or "id":"ID" (json), whole: id=ID0 is
 *                 another message.
 *   (no --file)   with log.target = journald, journalctl(1) is run with
 *                 the field match TERN_QUEUE_ID=ID (and --directory DIR
 *                 when given: a journal kept elsewhere); with any other
 *                 target tern says it needs --file.
 *
 * Exit status: 0 when some line was found, 1 when none, 64 usage, and
 * journalctl's own status when it ran.
 * Security: the ID is checked (queue_id_valid) before it reaches a file
 * match or journalctl's argument list, and journalctl is executed
 * directly (no shell).  Lines are printed through cli_clean(): a log line
 * holds text from the network.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "cli/cli.h"
#include "conf/conf.h"
#include "queue/queue.h"

#define LOGCMD_LINE_MAX 16384

static int
lc_usage(const char *what)
{
	cli_warnx("log: %s", what);
	fputs("usage: tern [-c file] [-o key=value]... log ID "
	      "[--file PATH|-] [--directory DIR]\n",
	    stderr);
	return EX_USAGE;
}

/* Does line carry the field id=ID (kv) or "id":"ID" (JSON)? */
static bool
lc_line_is(const char *line, const char *id)
{
	char kv[32], js[40];
	const char *p;
	size_t k;

	if (str_fmt(kv, sizeof(kv), "id=%s", id) != 0 ||
	    str_fmt(js, sizeof(js), "\"id\":\"%s\"", id) != 0)
		return false;
	if (strstr(line, js) != NULL)
		return true;
	k = strlen(kv);
	for (p = line; (p = strstr(p, kv)) != NULL; p++)
		if ((p == line || p[-1] == ' ') &&
		    (p[k] == ' ' || p[k] == '\n' || p[k] == '\0'))
			return true;
	return false;
}

static int
lc_file(const char *path, const char *id)
{
	char line[LOGCMD_LINE_MAX], clean[LOGCMD_LINE_MAX];
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	unsigned found = 0;

	if (f == NULL) {
		cli_warnx("log: %s: %s", path, strerror(errno));
		return 1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (!lc_line_is(line, id))
			continue;
		cli_clean(clean, sizeof(clean), line);
		printf("%s\n", clean);
		found++;
	}
	if (f != stdin)
		fclose(f);
	if (found == 0)
		cli_warnx("log: no line about %s in %s", id,
		    strcmp(path, "-") == 0 ? "stdin" : path);
	return found > 0 ? 0 : 1;
}

/* journalctl --no-pager -o short-iso-precise [--directory DIR]
 * TERN_QUEUE_ID=ID, and its exit status. */
static int
lc_journal(const char *dir, const char *id)
{
	char match[64];
	const char *argv[8];
	int n = 0, st;
	pid_t pid;

	if (str_fmt(match, sizeof(match), "TERN_QUEUE_ID=%s", id) != 0)
		return EX_SOFTWARE;
	argv[n++] = "journalctl";
	argv[n++] = "--no-pager";
	argv[n++] = "-o";
	argv[n++] = "short-iso-precise";
	if (dir != NULL) {
		argv[n++] = "--directory";
		argv[n++] = dir;
	}
	argv[n++] = match;
	argv[n] = NULL;
	fflush(stdout);
	if ((pid = fork()) < 0) {
		cli_warnx("log: fork: %s", strerror(errno));
		return EX_OSERR;
	}
	if (pid == 0) {
		execvp("journalctl", (char *const *)(uintptr_t)argv);
		cli_warnx("log: cannot run journalctl: %s", strerror(errno));
		_exit(EX_UNAVAILABLE);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return EX_OSERR;
	return WIFEXITED(st) ? WEXITSTATUS(st) : EX_SOFTWARE;
}

int
cli_log(const struct conf *c, int argc, char **argv)
{
	const char *id = NULL, *file = NULL, *dir = NULL;
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--file") == 0 && i + 1 < argc)
			file = argv[++i];
		else if (strcmp(argv[i], "--directory") == 0 && i + 1 < argc)
			dir = argv[++i];
		else if (argv[i][0] == '-')
			return lc_usage("unknown option (or no value)");
		else if (id != NULL)
			return lc_usage("one ID only");
		else
			id = argv[i];
	}
	if (id == NULL)
		return lc_usage("a queue ID is needed");
	if (!queue_id_valid(id))
		return lc_usage("a queue ID is 16 lowercase hex digits");
	if (file != NULL)
		return lc_file(file, id);
	if (dir != NULL ||
	    (c->log_target != NULL && strcmp(c->log_target, "journald") == 0))
		return lc_journal(dir, id);
	cli_warnx("log: log.target is %s: give the file ternd's lines go "
		  "to with --file PATH (or --file - for stdin)",
	    c->log_target != NULL ? c->log_target : "stderr");
	return EX_USAGE;
}
