/*
 * logsink: the syslog and journald targets of ternd's log (logsink.h).
 * Invariants: a sink call makes no log call (it runs inside log.c), sends
 * one datagram per line with one sendto(2) on a socket shared by all
 * threads (datagrams do not interleave), and waits at most LOGSINK_WAIT_MS
 * for a receiver, once.
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "server/logsink.h"
#include "util/logfmt.h"
#include "util/util.h"

#define LOGSINK_SYSLOG_PATH  "/dev/log"
#define LOGSINK_JOURNAL_PATH "/run/systemd/journal/socket"
#define LOGSINK_SNDBUF	     (1 << 20)
#define LOGSINK_WAIT_MS	     500

static int ls_fd = -1;
static struct sockaddr_un ls_addr;
static socklen_t ls_addrlen;
static const char *ls_target = "stderr";
static atomic_bool ls_failing;

/* syslog severities (RFC 5424 table 2) of log.c's levels */
static const int ls_severity[] = {7, 6, 4, 3};

/*
 * A failed send: said once on stderr until a send works again, with the
 * same stamp-less key=value form the fallback lines use.
 */
static void
ls_failed(int err)
{
	char line[512];

	if (atomic_exchange(&ls_failing, true))
		return;
	str_fmt_cut(line, sizeof(line) - 1,
	    "ternd[%d]: warn event=log_target_unavailable target=%s "
	    "path=%s error=\"%s\" note=\"lines go to stderr until it "
	    "works again\"",
	    (int)getpid(), ls_target, ls_addr.sun_path, strerror(err));
	memcpy(line + strlen(line), "\n", 2);
	if (write(STDERR_FILENO, line, strlen(line)) < 0)
		return;
}

/*
 * A line waits at most LOGSINK_WAIT_MS for room at a busy receiver (a
 * burst fills a datagram socket's short queue, net.unix.max_dgram_qlen);
 * once a send failed, the next ones do not wait (MSG_DONTWAIT) until one
 * gets through, so a stuck receiver costs one wait, not one per line.
 */
static bool
ls_send(const char *p, size_t n)
{
	int flags =
	    MSG_NOSIGNAL | (atomic_load(&ls_failing) ? MSG_DONTWAIT : 0);

	if (sendto(ls_fd, p, n, flags, (struct sockaddr *)&ls_addr,
		ls_addrlen) == (ssize_t)n) {
		atomic_store(&ls_failing, false);
		return true;
	}
	ls_failed(errno);
	return false;
}

/* "<PRI>Mmm dd hh:mm:ss ternd[pid]: body", facility mail (2). */
static bool
ls_syslog(enum log_level lvl, const char *body, size_t bodylen, const char *kv,
    size_t kvlen)
{
	char line[LOGFMT_LINE_MAX + 64], stamp[32];
	time_t now = time(NULL);
	struct tm tm;
	size_t n;

	(void)kv;
	(void)kvlen;
	if (localtime_r(&now, &tm) == NULL ||
	    strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm) == 0)
		stamp[0] = '\0';
	str_fmt_cut(line, sizeof(line),
	    "<%d>%s ternd[%d]: ", 2 * 8 + ls_severity[lvl], stamp,
	    (int)getpid());
	n = strlen(line);
	if (bodylen > sizeof(line) - n)
		bodylen = sizeof(line) - n;
	memcpy(line + n, body, bodylen);
	return ls_send(line, n + bodylen);
}

static bool
ls_journal(enum log_level lvl, const char *body, size_t bodylen, const char *kv,
    size_t kvlen)
{
	char dgram[LOGFMT_JOURNAL_MAX];
	size_t n = logfmt_journal(dgram, sizeof(dgram), ls_severity[lvl],
	    "ternd", (int)getpid(), body, bodylen, kv, kvlen);

	return n > 0 && ls_send(dgram, n);
}

int
logsink_setup(const struct conf *c, char *err, size_t errlen)
{
	const char *path;
	struct timeval wait = {0, LOGSINK_WAIT_MS * 1000};
	int sz = LOGSINK_SNDBUF;

	log_set_format(
	    c->log_format != NULL && strcmp(c->log_format, "json") == 0
		? LOG_FORMAT_JSON
		: LOG_FORMAT_KV);
	if (c->log_target == NULL || strcmp(c->log_target, "stderr") == 0)
		return 0;
	ls_target = c->log_target;
	path = c->log_socket != NULL		  ? c->log_socket
	       : strcmp(ls_target, "syslog") == 0 ? LOGSINK_SYSLOG_PATH
						  : LOGSINK_JOURNAL_PATH;
	ls_addr.sun_family = AF_UNIX;
	if (str_copy(ls_addr.sun_path, sizeof(ls_addr.sun_path), path,
		strlen(path)) != 0) {
		str_fmt_cut(err, errlen, "log.socket: path too long");
		return -1;
	}
	ls_addrlen = (socklen_t)sizeof(ls_addr);
	ls_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (ls_fd == -1) {
		str_fmt_cut(err, errlen, "log socket: %s", strerror(errno));
		return -1;
	}
	/* a burst of lines waits in the kernel rather than falling back */
	(void)setsockopt(ls_fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	(void)setsockopt(ls_fd, SOL_SOCKET, SO_SNDTIMEO, &wait, sizeof(wait));
	log_set_sink(strcmp(ls_target, "syslog") == 0 ? ls_syslog : ls_journal);
	return 0;
}
