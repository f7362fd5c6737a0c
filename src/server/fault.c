/*
 * fault: test-only fault injection for ternd (compiled in only when
 * TERN_FAULT_INJECTION is defined: the build/ternd-fault binary that the
 * e2e tests use; build/ternd has none of this).
 *
 * $TERN_FAULT_FILE names a file holding "MODULE:STEP:ERRNO" (e.g.
 * "maildir:fsync:28"); while it exists, that durable step of that module
 * fails with that errno.  The file is read at every step, so a test turns
 * faults on and off while ternd runs and can check that it recovers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

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
	if (fgets(line, sizeof(line), f) != NULL &&
	    (colon = strrchr(line, ':')) != NULL &&
	    str_fmt(want, sizeof(want), "%s:%s", module, step) == 0 &&
	    strncmp(line, want, (size_t)(colon - line)) == 0 &&
	    strlen(want) == (size_t)(colon - line))
		e = atoi(colon + 1);
	fclose(f);
	if (e != 0)
		log_warn("event=fault_injected module=%s step=%s errno=%d", module, step, e);
	return e;
}

static int
fault_maildir(const char *step)
{
	return fault_check("maildir", step);
}

static int
fault_spool(const char *step)
{
	return fault_check("spool", step);
}

void
fault_install(void)
{
	maildir_fault_hook = fault_maildir;
	spool_fault_hook = fault_spool;
	log_warn("event=fault_injection_build note=\"test binary: faults from $TERN_FAULT_FILE\"");
}

#else

void
fault_install(void)
{
}

#endif
