/*
 * confcheck: the checks of a configuration beyond conf.c's syntax and
 * ranges that need the files it names: tls.cert with tls.key (when set),
 * the smarthost's CA file and password file, the trust store
 * (tls.ca_file, tls.ca_path: `tern config check` only, a reload loads it
 * as it makes the delivery settings), the SQLite table's
 * directory, the Public Suffix List when DMARC is on.  ternd makes them
 * on every SIGHUP before it switches (server/reload.h; at start the same
 * files are opened for use and a failure is fatal), and `tern config
 * check` makes them without touching a running ternd.
 *
 * Owns: nothing.  May call: conf, tls, mailauth (the PSL's default
 * path), util.  Reads files, writes none; any thread.
 */
#ifndef TERN_CONFCHECK_H
#define TERN_CONFCHECK_H

#include "conf/conf.h"

/* Each problem goes to report() as one line naming the key, what is
 * wrong and the fix.  Returns how many were found.  running: the
 * configuration ternd runs (a reload), whose smarthost password file, if
 * cf names the same, is left to the reload: ternd read it as root at
 * start and keeps that copy when it is root-only; NULL: check it, and
 * load the trust store. */
unsigned confcheck_run(const struct conf *cf, const struct conf *running,
    void (*report)(void *rctx, const char *msg), void *rctx);

#endif
