/*
 * log: one line per event on stderr, "key=value" fields after a time stamp,
 * the program name and the level, or the same fields as one JSON object
 * (log.format = json, util/logfmt.c).  A sink (log_set_sink: ternd's
 * syslog and journald targets) may take each line instead of stderr; what
 * it refuses still reaches stderr.  Lines are written with one write(2) so
 * lines from worker threads never interleave.  Client text must pass
 * through log_sanitize() before it reaches a field.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "util/logfmt.h"
#include "util/util.h"

static const char *log_prog = "tern";
/*
 * The least level written: read by every thread for every line, and
 * changed by a reload (log_set_level, ternd's loop) while workers and
 * lookup threads log.  An atomic, read and written relaxed: a thread
 * needs no other memory ordered with it, only a whole value, and a line
 * being filtered at the switch may go by either level.
 */
static _Atomic int log_min = LOG_LEVEL_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "err"};
static _Atomic enum log_format log_format = LOG_FORMAT_KV;
static log_sink_fn _Atomic log_sink;

void
log_init(const char *progname, enum log_level min)
{
	log_prog = progname;
	atomic_store_explicit(&log_min, (int)min, memory_order_relaxed);
}

void
log_set_level(enum log_level min)
{
	atomic_store_explicit(&log_min, (int)min, memory_order_relaxed);
}

enum log_level
log_level_from_name(const char *name)
{
	if (name == NULL || strcmp(name, "info") == 0)
		return LOG_LEVEL_INFO;
	if (strcmp(name, "debug") == 0)
		return LOG_LEVEL_DEBUG;
	if (strcmp(name, "warn") == 0)
		return LOG_LEVEL_WARN;
	return LOG_LEVEL_ERR;
}

void
log_set_format(enum log_format f)
{
	log_format = f;
}

void
log_set_sink(log_sink_fn fn)
{
	log_sink = fn;
}

/*
 * The sink assembles its line from parts (stamp, message, suffix), each
 * cut to the room the ones before left: a long message is cut
 * (str_vfmt_cut, "..."), never dropped.  The '\n' takes the place of the
 * last part's NUL, so a line is at most PIPE_BUF (4096) octets and one
 * write(2) of it is never interleaved with another's.
 */
/*
 * The stamp's "YYYY-MM-DDTHH:MM:SS" changes once a second: each thread
 * keeps its last one instead of gmtime_r + strftime per line (a
 * busy server logs a few lines per message).
 */
static size_t
log_stamp(char *out, time_t sec)
{
	static _Thread_local time_t last = (time_t)-1;
	static _Thread_local char text[32];
	static _Thread_local size_t len;
	struct tm tm;

	if (sec != last) {
		gmtime_r(&sec, &tm);
		len = strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &tm);
		last = sec;
	}
	memcpy(out, text, len);
	return len;
}

/*
 * getpid() is a system call per line otherwise.  tern never forks a
 * process that goes on logging (fault.c's child execs at once), so the
 * first answer stays true; a benign race between threads writes the
 * same value.
 */
static int
log_pid(void)
{
	static _Atomic int pid;
	int p = pid;

	if (p == 0)
		pid = p = (int)getpid();
	return p;
}

static void
log_vwrite(enum log_level lvl, const char *fmt, va_list ap, const char *suffix)
{
	char msg[LOGFMT_LINE_MAX], line[LOGFMT_LINE_MAX], ts[40];
	const char *body = msg;
	struct timeval tv;
	size_t n, m, blen;

	/* the fields alone: what a sink gets besides the whole line */
	str_vfmt_cut(msg, sizeof(msg) - 1, fmt, ap);
	m = strlen(msg);
	if (suffix != NULL) {
		str_fmt_cut(msg + m, sizeof(msg) - 1 - m, "%s", suffix);
		m += strlen(msg + m);
	}
	blen = m;
	gettimeofday(&tv, NULL);
	n = log_stamp(ts, tv.tv_sec);
	str_fmt_cut(ts + n, sizeof(ts) - n, ".%03dZ", (int)(tv.tv_usec / 1000));
	if (log_format == LOG_FORMAT_JSON) {
		n = logfmt_json(line, sizeof(line), ts, level_names[lvl],
		    log_prog, log_pid(), msg, m);
		body = line;
		blen = n > 0 ? n - 1 : 0;
	} else {
		str_fmt_cut(line, sizeof(line), "%s %s[%d]: %s ", ts, log_prog,
		    log_pid(), level_names[lvl]);
		n = strlen(line);
		/* msg is at most sizeof(line) - 1: cut the end if the
		 * prefix left less room */
		if (m > sizeof(line) - 1 - n) {
			m = sizeof(line) - 1 - n;
			memcpy(msg + m - 3, "...", 3);
		}
		memcpy(line + n, msg, m);
		n += m;
		line[n++] = '\n';
	}
	if (log_sink != NULL && log_sink(lvl, body, blen, msg, strlen(msg)))
		return;
	/* the log is where failures are told: a failed write of it has
	 * nowhere left to go, and the caller goes on either way */
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}

void
log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	if ((int)lvl < atomic_load_explicit(&log_min, memory_order_relaxed))
		return;
	va_start(ap, fmt);
	log_vwrite(lvl, fmt, ap, NULL);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	char suffix[160];
	va_list ap;

	str_fmt_cut(suffix, sizeof(suffix), " error=\"%s\"", strerror(errno));
	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_ERR, fmt, ap, suffix);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_ERR, fmt, ap, NULL);
	va_end(ap);
	exit(1);
}

void
panic(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_ERR, fmt, ap, " event=panic");
	va_end(ap);
	abort();
}

static bool
log_byte_plain(unsigned char c, bool space_ok)
{
	return (c > 0x20 || (c == 0x20 && space_ok)) && c < 0x7f && c != '"' &&
	       c != '\\' && c != '=';
}

static char *log_escape(
    char *out, size_t outlen, const char *in, size_t inlen, bool space_ok);

char *
log_sanitize(char *out, size_t outlen, const char *in, size_t inlen)
{
	return log_escape(out, outlen, in, inlen, false);
}

char *
log_quote(char *out, size_t outlen, const char *in, size_t inlen)
{
	return log_escape(out, outlen, in, inlen, true);
}

static char *
log_escape(
    char *out, size_t outlen, const char *in, size_t inlen, bool space_ok)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, i;

	if (outlen == 0)
		return out;
	for (i = 0; i < inlen; i++) {
		unsigned char c = (unsigned char)in[i];
		size_t need = log_byte_plain(c, space_ok) ? 1 : 4;

		/* keep room for "..." and the NUL */
		if (o + need + 4 > outlen) {
			if (outlen >= 4) {
				while (o + 4 > outlen)
					o--;
				memcpy(out + o, "...", 3);
				o += 3;
			}
			break;
		}
		if (need == 1) {
			out[o++] = (char)c;
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
	return out;
}
