/*
 * fault: test-only fault injection for ternd (compiled in only when
 * TERN_FAULT_INJECTION is defined: the build/ternd-fault binary that the
 * e2e tests use; build/ternd has none of this).
 *
 * $TERN_FAULT_FILE names a file holding "MODULE:STEP:ERRNO" lines (e.g.
 * "maildir:fsync:28"); while it exists, each durable step named in it
 * fails with its errno (a step named twice: the first line).  A negative number
 * is a delay instead: the step waits that many milliseconds, then runs (a slow
 * disk, to hold a worker busy while a test acts).  The file is read at every
 * step, so a test turns faults on and off while ternd runs and can check that
 * it recovers.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fs/file.h"
#include "server/fault.h"

#ifdef TERN_FAULT_INJECTION

static int
fault_check(const char *module, const char *step)
{
	const char *path = getenv("TERN_FAULT_FILE");
	char line[128], want[64];
	FILE *f;
	char *colon;
	int e = 0;

	if (path == NULL || (f = fopen(path, "r")) == NULL)
		return 0;
	if (str_fmt(want, sizeof(want), "%s:%s", module, step) != 0) {
		fclose(f);
		return 0;
	}
	/* one fault a line; the first line naming this step wins */
	while (e == 0 && fgets(line, sizeof(line), f) != NULL)
		if ((colon = strrchr(line, ':')) != NULL &&
		    strncmp(line, want, (size_t)(colon - line)) == 0 &&
		    strlen(want) == (size_t)(colon - line))
			e = atoi(colon + 1);
	fclose(f);
	if (e < 0) {
		log_warn("event=fault_injected module=%s step=%s delay_ms=%d",
		    module, step, -e);
		(void)usleep((useconds_t)-e * 1000u);
		return 0;
	}
	if (e != 0)
		log_warn("event=fault_injected module=%s step=%s errno=%d",
		    module, step, e);
	return e;
}

void
fault_install(void)
{
	file_fault_hook = fault_check; /* who is the MODULE */
	log_warn("event=fault_injection_build note=\"test binary: faults from "
		 "$TERN_FAULT_FILE\"");
}

const char *
fault_sandbox_dir(void)
{
	static char dir[PATH_MAX];
	const char *path = getenv("TERN_FAULT_FILE");

	if (path == NULL || str_copy(dir, sizeof(dir), path, strlen(path)) != 0)
		return NULL;
	return dirname(dir);
}

/* errno of execve("/bin/true") in a child: 0 when it ran (and exited 0) */
static int
fault_exec_errno(void)
{
	char *const argv[] = {(char *)"/bin/true", NULL};
	char *const envp[] = {NULL};
	int st;
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		execve("/bin/true", argv, envp);
		_exit(errno & 0x7f);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void
fault_sandbox_probe(const char *path, struct buf *out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int open_errno = fd < 0 ? errno : 0;

	if (fd >= 0)
		(void)close(fd);
	if (buf_printf(out,
		"{\"ok\":true,\"open_errno\":%d,\"exec_errno\":%d}\n",
		open_errno, fault_exec_errno()) != 0)
		out->len = 0;
}

#else

void
fault_install(void)
{
}

const char *
fault_sandbox_dir(void)
{
	return NULL;
}

void
fault_sandbox_probe(const char *path, struct buf *out)
{
	(void)path;
	(void)out;
}

#endif
