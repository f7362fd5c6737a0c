/*
 * log: one line per event on stderr, "key=value" fields after a time stamp,
 * the program name and the level.  Lines are written with one write(2) so
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

#include "util/util.h"

static const char *log_prog = "tern";
static enum log_level log_min = LOG_LEVEL_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "err"};

void
log_init(const char *progname, enum log_level min)
{
	log_prog = progname;
	log_min = min;
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
	char line[4096];
	struct timeval tv;
	size_t n;

	gettimeofday(&tv, NULL);
	n = log_stamp(line, tv.tv_sec);
	str_fmt_cut(line + n, sizeof(line) - n, ".%03dZ %s[%d]: %s ",
	    (int)(tv.tv_usec / 1000), log_prog, log_pid(), level_names[lvl]);
	n += strlen(line + n);
	str_vfmt_cut(line + n, sizeof(line) - n, fmt, ap);
	n += strlen(line + n);
	if (suffix != NULL) {
		str_fmt_cut(line + n, sizeof(line) - n, "%s", suffix);
		n += strlen(line + n);
	}
	line[n++] = '\n';
	/* the log is where failures are told: a failed write of it has
	 * nowhere left to go, and the caller goes on either way */
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}

void
log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	if (lvl < log_min)
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
