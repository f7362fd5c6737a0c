/*
 * fs/versions: read and check STATE/versions (versions.h).  Reading it
 * never changes it: only a release that migrates a format writes it.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "fs/versions.h"

int
state_versions_check(const char *state_dir, char *err, size_t errlen)
{
	char path[4096], text[STATE_VERSIONS_MAX + 1], why[160];
	size_t got = 0;
	ssize_t r = 1;
	int fd;

	if (str_fmt(path, sizeof(path), "%s/%s", state_dir,
		STATE_VERSIONS_FILE) != 0) {
		str_fmt_cut(err, errlen, "%s: path too long", state_dir);
		return -1;
	}
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 && errno == ENOENT)
		return 0; /* every format at version 1 */
	if (fd < 0) {
		str_fmt_cut(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (got < sizeof(text) && r != 0) {
		r = read(fd, text + got, sizeof(text) - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		got += (size_t)r;
	}
	fd_close_quiet(fd);
	if (r < 0 || got > STATE_VERSIONS_MAX) {
		str_fmt_cut(err, errlen, "%s: %s", path,
		    r < 0 ? strerror(errno) : "larger than 4096 octets");
		return -1;
	}
	if (state_versions_parse(text, got, why, sizeof(why)) != 0) {
		str_fmt_cut(err, errlen,
		    "%s: %s; refusing to run on a state directory written by "
		    "a newer tern (docs/formats.md, Downgrades)",
		    path, why);
		return -1;
	}
	return 0;
}
