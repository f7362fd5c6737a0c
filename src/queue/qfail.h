/*
 * qfail: how the queue's two stores (spool.c, a file per message;
 * logspool.c, the log) word a failure, so that an administrator reads the
 * same error whichever store ternd runs on.  Private to the queue module.
 */
#ifndef TERN_QUEUE_QFAIL_H
#define TERN_QUEUE_QFAIL_H

#include <stddef.h>

/* err = "<step> <what>[ of <id>]: <strerror(errno)>", cut to errlen;
 * err may be NULL; errno is kept. */
void queue_fail(char *err, size_t errlen, const char *step, const char *what,
    const char *id);

/* 0 when id is a well-formed queue id; else -1, errno EINVAL, err set. */
int queue_check_id(const char *id, char *err, size_t errlen);

/* Logs "id=… event=queue_<op>_failed errno=… error=…" with id sanitised;
 * errno is kept; returns -1 for the caller to return. */
int queue_log_fail(const char *op, const char *id, const char *err);

#endif
