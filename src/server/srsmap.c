/*
 * srsmap.c: STATE/srs.key read (or made) once at start-up; the reversal
 * that follows our own SRS1 to its SRS0.
 *
 * The key file is opened through a descriptor of state_dir, O_NOFOLLOW,
 * and judged by fstat of what was opened (no check-then-open race); it is
 * made with file_write_new (O_EXCL, 0600, fsync'ed, then the directory).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "conf/conf.h"
#include "fs/file.h"
#include "server/srsmap.h"
#include "util/util.h"

#define SRSMAP_NEW_SECRET 32 /* random octets of a made key */

struct srsmap {
	char text[SRSMAP_FILE_MAX + 1];
	size_t len;
	struct srs_secret secrets[SRS_SECRETS_MAX];
	struct srs srs;
	char *domain;
};

/* A new key: 32 random octets in base64, one line. */
static void
srsmap_make(int dir_fd)
{
	unsigned char raw[SRSMAP_NEW_SECRET];
	unsigned char line[4 * ((SRSMAP_NEW_SECRET + 2) / 3) + 2];
	struct iovec iov;
	const char *step = "";
	size_t got = 0;
	int n;

	while (got < sizeof(raw)) {
		ssize_t r = getrandom(raw + got, sizeof(raw) - got, 0);

		if (r < 0 && errno != EINTR)
			fatal("event=startup step=srs_key_random");
		got += r > 0 ? (size_t)r : 0;
	}
	n = EVP_EncodeBlock(line, raw, (int)sizeof(raw));
	explicit_bzero(raw, sizeof(raw));
	line[n] = '\n';
	iov.iov_base = line;
	iov.iov_len = (size_t)n + 1;
	if (file_write_new("srs_key", dir_fd, SRSMAP_KEY_FILE, &iov, 1, true,
		NULL, &step) != 0 &&
	    errno != EEXIST)
		fatal("event=startup step=srs_key_%s file=%s", step,
		    SRSMAP_KEY_FILE);
	explicit_bzero(line, sizeof(line));
	if (file_sync_dir("srs_key", dir_fd) != 0)
		fatal("event=startup step=srs_key_fsync_dir");
	log_info("event=srs_key_created file=%s", SRSMAP_KEY_FILE);
}

/* The key file's descriptor, made first if missing; fatal otherwise. */
static int
srsmap_open_key(const struct conf *cf, int dir_fd)
{
	int fd = openat(dir_fd, SRSMAP_KEY_FILE,
	    O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0 && errno == ENOENT) {
		srsmap_make(dir_fd);
		fd = openat(dir_fd, SRSMAP_KEY_FILE,
		    O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	}
	if (fd < 0 && errno == ELOOP)
		fatalx("event=startup step=srs_key path=%s/%s error=\"a "
		       "symbolic link; ternd follows no link in its state "
		       "directory: remove it\"",
		    cf->state_dir, SRSMAP_KEY_FILE);
	if (fd < 0)
		fatal("event=startup step=srs_key path=%s/%s", cf->state_dir,
		    SRSMAP_KEY_FILE);
	return fd;
}

/* Only ternd's user may read the secret, and the file must be a file. */
static void
srsmap_check(const struct conf *cf, int fd)
{
	struct stat st;
	const char *why = NULL;

	if (fstat(fd, &st) != 0)
		fatal("event=startup step=srs_key_stat");
	if (!S_ISREG(st.st_mode))
		why = "not a regular file";
	else if (st.st_uid != geteuid())
		why = "not owned by the user ternd runs as";
	else if (st.st_mode & (S_IRWXG | S_IRWXO))
		why = "readable or writable by group or others: chmod 600 it";
	else if (st.st_size > SRSMAP_FILE_MAX)
		why = "larger than 4096 octets";
	if (why != NULL)
		fatalx("event=startup step=srs_key path=%s/%s error=\"%s\"",
		    cf->state_dir, SRSMAP_KEY_FILE, why);
}

static void
srsmap_read(struct srsmap *m, const struct conf *cf, int fd)
{
	int n;

	for (;;) {
		ssize_t r =
		    read(fd, m->text + m->len, SRSMAP_FILE_MAX - m->len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			fatal("event=startup step=srs_key_read");
		if (r == 0 || (m->len += (size_t)r) == SRSMAP_FILE_MAX)
			break;
	}
	n = srs_secrets_parse(m->text, m->len, m->secrets, SRS_SECRETS_MAX);
	if (n <= 0)
		fatalx("event=startup step=srs_key path=%s/%s error=\"%s\"",
		    cf->state_dir, SRSMAP_KEY_FILE,
		    n == 0 ? "no secret in it"
			   : "a line longer than 256 octets or more than 8 "
			     "secrets");
	m->srs.secrets = m->secrets;
	m->srs.nsecrets = (size_t)n;
}

struct srsmap *
srsmap_open(const struct conf *cf)
{
	struct srsmap *m;
	int dir_fd, fd;

	if (!cf->srs_enable)
		return NULL;
	dir_fd = open(
	    cf->state_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dir_fd < 0)
		fatal("event=startup step=srs_key path=%s", cf->state_dir);
	fd = srsmap_open_key(cf, dir_fd);
	srsmap_check(cf, fd);
	m = xcalloc(1, sizeof(*m));
	srsmap_read(m, cf, fd);
	(void)close(fd);
	(void)close(dir_fd);
	m->domain = xstrdup(cf->srs_domain);
	m->srs.domain = m->domain;
	m->srs.max_age = cf->srs_max_age;
	log_info("event=srs domain=%s secrets=%zu max_age=%u", m->domain,
	    m->srs.nsecrets, m->srs.max_age);
	return m;
}

void
srsmap_free(struct srsmap *m)
{
	if (m == NULL)
		return;
	free(m->domain);
	explicit_bzero(m, sizeof(*m));
	free(m);
}

const struct srs *
srsmap_srs(const struct srsmap *m)
{
	return m != NULL ? &m->srs : NULL;
}

enum srs_status
srsmap_reverse(const struct srsmap *m, const char *addr, time_t now, char *out,
    size_t outlen)
{
	enum srs_status st;
	char once[SRS_ADDR_MAX + 1];

	if (m == NULL) {
		if (outlen > 0)
			out[0] = '\0';
		return SRS_NOT_SRS;
	}
	if (outlen > 0)
		out[0] = '\0';
	st = srs_reverse(&m->srs, addr, now, once, sizeof(once));
	if (st != SRS_OK)
		return st;
	/* an SRS1 whose first hop was us: its SRS0 is ours to reverse too */
	st = srs_reverse(&m->srs, once, now, out, outlen);
	if (st == SRS_NOT_SRS)
		return str_copy(out, outlen, once, strlen(once)) == 0
			   ? SRS_OK
			   : SRS_TOO_LONG;
	return st;
}
