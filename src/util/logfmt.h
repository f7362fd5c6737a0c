/*
 * logfmt: the shapes a log line takes besides key=value (util's second
 * small interface).  Pure: no I/O, no clock, no allocation; every output
 * goes to a caller's bounded buffer.
 *
 * A log line's fields are the "key=value" text log_msg() formats.  A value
 * is bare (up to the next space) or between double quotes; the text
 * tern puts in values has been through log_sanitize()/log_quote(), which
 * write a byte a peer chose as \xHH, but the readers here trust nothing:
 * any byte may appear anywhere (a caller that forgot to sanitise, a cut in
 * the middle of an escape) and the outputs stay well formed.
 *
 *   logfmt_next   walks the fields of a line (and its free words).
 *   logfmt_value  a field's value with the quotes and \xHH escapes undone.
 *   logfmt_json   the line as one JSON object (log.format = json).
 *   logfmt_journal the line as one datagram of systemd-journald's native
 *                 protocol, one TERN_<KEY> field per key.
 */
#ifndef TERN_UTIL_LOGFMT_H
#define TERN_UTIL_LOGFMT_H

#include <stdbool.h>
#include <stddef.h>

#define LOGFMT_LINE_MAX	   4096	 /* a JSON line, its '\n' included */
#define LOGFMT_JOURNAL_MAX 24576 /* one journal datagram */
#define LOGFMT_KEY_MAX	   48	 /* a key longer than this is free text */

struct logfmt_field {
	const char *key; /* NULL for a free word (text without '=') */
	size_t keylen;
	const char *val; /* as written: quotes and escapes still there */
	size_t vallen;
};

/*
 * The next field of line[0..len) at *pos; advances *pos.  false at the
 * end.  A key is [A-Za-z0-9_.-]+ of at most LOGFMT_KEY_MAX; a value that
 * opens with '"' runs to the next '"' not escaped by '\\' (or to the end).
 */
bool logfmt_next(
    const char *line, size_t len, size_t *pos, struct logfmt_field *f);

/* The value's bytes, unquoted and with \xHH, \\ and \" undone, into out
 * (at most outlen, no NUL added).  Returns the length; a value longer
 * than outlen is cut. */
size_t logfmt_value(const struct logfmt_field *f, char *out, size_t outlen);

/*
 * One JSON object and '\n' into out (at most outlen, and at most
 * LOGFMT_LINE_MAX): {"ts":TS,"level":LEVEL,"prog":PROG,"pid":PID, then
 * each field of msg in order, then "msg" with its free words if it has
 * any}.  A bare value that is a decimal integer of at most 15 digits
 * (no leading zero) is a JSON number, except for keys ending in "id"
 * (queue and session ids stay strings); everything else is a string.
 * Strings are escaped per RFC 8259 (control bytes as \u00XX) and a byte
 * that is not part of well-formed UTF-8 becomes U+FFFD, so the line is
 * valid UTF-8 JSON whatever the input.  A line that would not fit ends
 * its last value in "..." and gets "cut":true.  Returns the length.
 */
size_t logfmt_json(char *out, size_t outlen, const char *ts, const char *level,
    const char *prog, int pid, const char *msg, size_t msglen);

/*
 * One datagram of journald's native protocol into out (at most outlen):
 * MESSAGE=message, PRIORITY=priority, SYSLOG_FACILITY=2 (mail),
 * SYSLOG_IDENTIFIER=ident, SYSLOG_PID=pid, then for each field of kv
 * TERN_<KEY>=<value as logfmt_value gives it>, the key upper-cased with
 * other bytes than [A-Z0-9_] as '_'; the key "id" (the queue id) is
 * TERN_QUEUE_ID.  A value with a '\n' uses the protocol's length-prefixed
 * form.  Fields that do not fit are left out (MESSAGE always fits: it is
 * cut first).  Returns the length.
 */
size_t logfmt_journal(char *out, size_t outlen, int priority, const char *ident,
    int pid, const char *message, size_t mlen, const char *kv, size_t kvlen);

#endif
