/*
 * logsink: where ternd's log lines go (log.target) and in what form
 * (log.format).  Owns one unbound datagram socket for syslog (RFC 3164
 * lines to /dev/log) or journald (the native protocol to
 * /run/systemd/journal/socket, fields built by util/logfmt.c); log.socket
 * names another socket path.  May call util and conf only.
 *
 * logsink_setup() runs once at start, before any thread: it sets the
 * format, and for syslog/journald installs the sink log.c calls from any
 * thread.  A line the socket does not take (no such socket, receiver
 * gone, its buffer full) goes to stderr instead, and the first such
 * failure is said once on stderr (event=log_target_unavailable); the
 * next line tries the socket again, so a restarted journald is used at
 * once.  A line waits at most half a second for room at a busy receiver,
 * and after a failure none waits until a send works again: a stuck
 * receiver never stalls ternd for more than one such wait.
 */
#ifndef TERN_SERVER_LOGSINK_H
#define TERN_SERVER_LOGSINK_H

#include "conf/conf.h"

/* 0, or -1 with err set (a socket path too long, no socket). */
int logsink_setup(const struct conf *c, char *err, size_t errlen);

#endif
