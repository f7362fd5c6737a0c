/*
 * log: one line per event on stderr, "key=value" fields after a time stamp,
 * the program name and the level.  Lines are written with one write(2) so
 * lines from worker threads never interleave.  Client text must pass
 * through log_sanitize() before it reaches a field.
 */
#include <errno.h>
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
static void
log_vwrite(enum log_level lvl, const char *fmt, va_list ap, const char *suffix)
{
	char line[4096];
	struct timeval tv;
	struct tm tm;
	size_t n;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	str_fmt_cut(line + n, sizeof(line) - n, ".%03dZ %s[%d]: %s ",
	    (int)(tv.tv_usec / 1000), log_prog, (int)getpid(),
	    level_names[lvl]);
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
