/*
 * version.c: the two strings of version.h.  The Makefile compiles this
 * file alone with -DTERN_VERSION and -DTERN_REV (and recompiles it when
 * either changes: $(B)/version.flags); the fallbacks serve builds that do
 * not go through the Makefile's rule (the fuzzers' copy of libcore).
 */
#include "util/version.h"

#ifndef TERN_VERSION
#define TERN_VERSION "unknown"
#endif
#ifndef TERN_REV
#define TERN_REV "unknown"
#endif

const char *
tern_version(void)
{
	return TERN_VERSION;
}

const char *
tern_revision(void)
{
	return TERN_REV;
}
