/*
 * test_rootpath: which paths ternd may open by name while still root.
 * System paths (/etc, /usr) are root-only on any sane system; /tmp is
 * world-writable (sticky or not, whoever owns an entry there can swap it
 * for a link), so nothing reached through it is.
 */
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "server/rootpath.h"
#include "t.h"
#include "util/util.h"

static void
test_system_paths(void)
{
	char err[512];

	t_case("plain file under /etc");
	T_CHECK(rootpath_root_only("/etc/passwd", err, sizeof(err)));
	t_case("dot and dot-dot are walked");
	T_CHECK(rootpath_root_only("/etc/./../etc//passwd", err, sizeof(err)));
	t_case("a relative root-owned link (/etc/os-release) is followed");
	T_CHECK(rootpath_root_only("/etc/os-release", err, sizeof(err)));
	t_case("a directory is checked itself");
	T_CHECK(rootpath_root_only("/usr/lib", err, sizeof(err)));
	t_case("a missing file names itself");
	T_CHECK(
	    !rootpath_root_only("/etc/no-such-file-here", err, sizeof(err)));
	T_CHECK(strstr(err, "/etc/no-such-file-here") != NULL);
}

static void
test_user_writable(void)
{
	char dir[] = "/tmp/tern-rootpath-XXXXXX", link[128], file[128],
	     err[512];

	t_case("a file in /tmp");
	T_CHECK(mkdtemp(dir) != NULL);
	T_CHECK(str_fmt(file, sizeof(file), "%s/f", dir) == 0);
	T_CHECK(str_fmt(link, sizeof(link), "%s/l", dir) == 0);
	T_CHECK(symlink("/etc/passwd", link) == 0);
	T_CHECK(!rootpath_root_only("/tmp/.", err, sizeof(err)));
	T_CHECK(strstr(err, "/tmp") != NULL &&
		strstr(err, "writable by group or others") != NULL);

	t_case("a link to /etc/passwd planted in /tmp");
	T_CHECK(!rootpath_root_only(link, err, sizeof(err)));

	t_case("a link from a root-only place through /tmp is seen");
	/* /proc/self/cwd leads wherever the process stands: put it in /tmp */
	T_CHECK(chdir(dir) == 0);
	T_CHECK(!rootpath_root_only("/proc/self/cwd/l", err, sizeof(err)));
	t_case("a relative path is taken from the working directory");
	T_CHECK(!rootpath_root_only("l", err, sizeof(err)));
	T_CHECK(chdir("/") == 0);
	T_CHECK(unlink(link) == 0 && rmdir(dir) == 0);
}

int
main(void)
{
	T_RUN(test_system_paths);
	T_RUN(test_user_writable);
	return t_summary();
}
