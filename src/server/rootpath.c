/*
 * rootpath: is a path one that only root can redirect? (see rootpath.h)
 *
 * The path is resolved here by hand, one component at a time, with lstat
 * and readlink, so every directory it passes through is seen, including
 * those a symbolic link leads through: realpath() would hide a link that
 * `user` planted half way.  Each directory must be owned by root and not
 * writable by group (unless the group is root's) or others.  Once that
 * holds, only root can change what the path names, so a later open() by
 * name as root reaches the file checked here: nothing to race.
 *
 * Limits: PATH_MAX for the path and for what its links expand to, 40
 * links (the kernel's own bound).
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/util.h"
#include "server/rootpath.h"

#define ROOTPATH_LINKS 40

static bool
dir_root_only(const char *dir, char *err, size_t errlen)
{
	struct stat st;

	if (stat(dir, &st) != 0) {
		str_fmt_cut(err, errlen, "%s: %s", dir, strerror(errno));
		return false;
	}
	if (!S_ISDIR(st.st_mode)) {
		str_fmt_cut(err, errlen, "%s: not a directory", dir);
		return false;
	}
	if (st.st_uid != 0) {
		str_fmt_cut(err, errlen,
		    "directory %s is owned by uid %u, not root", dir,
		    (unsigned)st.st_uid);
		return false;
	}
	if ((st.st_mode & S_IWOTH) ||
	    ((st.st_mode & S_IWGRP) && st.st_gid != 0)) {
		str_fmt_cut(err, errlen,
		    "directory %s is writable by group or others", dir);
		return false;
	}
	return true;
}

/* Take the first component of *rest (leading slashes skipped) into comp. */
static int
next_component(const char **rest, char *comp, size_t complen)
{
	const char *s = *rest, *e;

	while (*s == '/')
		s++;
	e = strchrnul(s, '/');
	if (str_copy(comp, complen, s, (size_t)(e - s)) != 0)
		return -1;
	*rest = e;
	return 0;
}

static bool
only_slashes(const char *s)
{
	return s[strspn(s, "/")] == '\0';
}

/* rest = link + "/" + rest; cur goes back to "/" for an absolute link. */
static int
splice_link(
    const char *at, char *cur, char *rest, size_t restlen, const char *tail)
{
	char link[PATH_MAX], joined[PATH_MAX];
	ssize_t n = readlink(at, link, sizeof(link) - 1);

	if (n < 0)
		return -1;
	link[n] = '\0';
	if (str_fmt(joined, sizeof(joined), "%s/%s", link, tail) != 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (link[0] == '/')
		cur[0] = '\0';
	return str_copy(rest, restlen, joined, strlen(joined));
}

bool
rootpath_root_only(const char *path, char *err, size_t errlen)
{
	char cur[PATH_MAX] = ""; /* resolved so far, checked; "" is "/" */
	char rest[PATH_MAX], comp[NAME_MAX + 1], at[PATH_MAX], cwd[PATH_MAX];
	const char *r;
	unsigned links = 0;
	struct stat st;

	if (path[0] != '/' && getcwd(cwd, sizeof(cwd)) == NULL)
		goto sys;
	if (str_fmt(rest, sizeof(rest), "%s/%s", path[0] == '/' ? "" : cwd,
		path) != 0) {
		errno = ENAMETOOLONG;
		goto sys;
	}
	if (!dir_root_only("/", err, errlen))
		return false;
	for (;;) {
		r = rest;
		if (next_component(&r, comp, sizeof(comp)) != 0) {
			errno = ENAMETOOLONG;
			goto sys;
		}
		if (comp[0] == '\0')
			return true; /* ended on a checked directory */
		memmove(rest, r, strlen(r) + 1);
		if (strcmp(comp, ".") == 0)
			continue;
		if (strcmp(comp, "..") == 0) {
			if (cur[0] != '\0')
				*strrchr(cur, '/') = '\0';
			continue;
		}
		if (str_fmt(at, sizeof(at), "%s/%s", cur, comp) != 0) {
			errno = ENAMETOOLONG;
			goto sys;
		}
		if (lstat(at, &st) != 0)
			goto sys_at;
		if (S_ISLNK(st.st_mode)) {
			if (++links > ROOTPATH_LINKS) {
				errno = ELOOP;
				goto sys;
			}
			if (splice_link(at, cur, rest, sizeof(rest), rest) != 0)
				goto sys_at;
			continue;
		}
		if (only_slashes(rest) && !S_ISDIR(st.st_mode))
			return true; /* the file itself: any owner */
		if (!dir_root_only(at, err, errlen))
			return false;
		memcpy(cur, at, strlen(at) + 1);
	}
sys_at:
	str_fmt_cut(err, errlen, "%s: %s", at, strerror(errno));
	return false;
sys:
	str_fmt_cut(err, errlen, "%s: %s", path, strerror(errno));
	return false;
}
