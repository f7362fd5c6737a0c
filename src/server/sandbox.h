/*
 * sandbox: confine ternd once it runs as its user (defence in depth).
 *
 * Owns: the Landlock ruleset and the seccomp filter.  May call: conf, util
 * and raw system calls (no libseccomp).  Applied once by server/main.c;
 * sandbox_readable() tells a later reader what the rules left out.
 *
 * Landlock limits the file system to what ternd needs: everything under
 * state_dir, the users' own Maildirs (a users row that names an absolute
 * path) and the directory of an SQLite table, read-only the TLS
 * files' directories, the resolver's and NSS's files, the CA store and
 * the libraries under /usr; nothing anywhere may be executed.  A seccomp
 * filter makes execve, ptrace, module, mount, namespace and other
 * system-administration calls fail with EPERM for every thread.
 * docs/security.md, "The sandbox", lists the policy.
 *
 * Call it once, after the privilege drop and before any thread starts:
 * Landlock confines the calling thread and the threads it starts later,
 * never those already running.
 */
#ifndef TERN_SANDBOX_H
#define TERN_SANDBOX_H

#include "conf/conf.h"

#include <stdbool.h>
#include <stddef.h>

/*
 * Apply both layers unless cf->sandbox is off.  rw: directories to allow
 * reading and writing besides state_dir (users' own Maildirs), nrw of
 * them.  extra_read: one more directory to allow reading (the fault
 * build's $TERN_FAULT_FILE), or NULL.  A kernel without Landlock or
 * seccomp gets one log line and ternd goes on without that layer; any
 * other failure is fatal.
 */
void sandbox_apply(
    const struct conf *cf, char *const *rw, size_t nrw, const char *extra_read);

/*
 * May ternd open path (a directory when dir) for reading now?  0, or -1
 * with err naming path and why; when the sandbox is what refuses it (the
 * file's mode allows it), err says so and that a restart is the fix.
 * Any thread, any time.
 */
int sandbox_readable(const char *path, bool dir, char *err, size_t errlen);

#endif
