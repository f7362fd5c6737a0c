/*
 * fault.h: test builds only (TERN_FAULT_INJECTION, build/ternd-fault); in
 * a production build every function is a no-op (fault.c).
 *
 * Owns: the fault hook of the durable steps (fs/file.h) and the
 * sandbox probe.  May call: store, util.  fault_install before any thread.
 */
#ifndef TERN_SERVER_FAULT_H
#define TERN_SERVER_FAULT_H

#include "util/util.h"

void fault_install(void);
/* The directory of $TERN_FAULT_FILE, for the sandbox to let ternd read
 * (NULL in a production build or without the variable). */
const char *fault_sandbox_dir(void);
/* "SANDBOX-PROBE PATH" on control.sock (fault build only): try to open
 * PATH and to execute /bin/true in a child, and answer with the errnos. */
void fault_sandbox_probe(const char *path, struct buf *out);

#endif
