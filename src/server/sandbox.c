/*
 * sandbox: Landlock and seccomp for ternd after start-up (see sandbox.h).
 *
 * Landlock (raw system calls, <linux/landlock.h>): a ruleset handling
 * every file-system right the running kernel knows (ABI 2 at least: ABI 1
 * cannot allow a rename or link across directories, which Maildir
 * delivery needs), then rules granting
 *   - all but EXECUTE beneath state_dir (queue, Maildirs, sockets, the
 *     self-signed pair), beneath each user's own Maildir that the table
 *     names at start (an absolute path: one added later is reached after
 *     a restart, or at once when it lies beneath a sandbox_write
 *     directory), and beneath the directory of an SQLite table (its
 *     -journal and -wal files come and go beside it);
 *   - READ beneath the directories of tls.cert and tls.key as they
 *     resolve now (a renewal that adds a file there is read on SIGHUP),
 *     and beneath the directory of tern.conf (SIGHUP reads it again);
 *   - READ beneath /usr, /lib, /lib64 (libraries NSS and OpenSSL load on
 *     demand, the CA certificates, zoneinfo), /etc/ssl, /etc/pki,
 *     /etc/ca-certificates, /etc/postgresql-common, and what
 *     $SSL_CERT_FILE and $SSL_CERT_DIR name;
 *   - READ_FILE on the few /etc files the resolver, NSS and libpq read
 *     (and, where one is a link, beneath the directory it leads to, so
 *     a resolver manager that replaces the target is still read), on
 *     ~/.pgpass and ~/.postgresql for a PostgreSQL table, on
 *     /dev/urandom; read and write on /dev/null.
 * Connecting to a unix socket (LMTP, PostgreSQL) is not a file access
 * Landlock controls (up to ABI 7), so delivery.lmtp = unix:/path needs no
 * rule.  Network access is not restricted: ternd's job is the network.
 *
 * seccomp: a classic BPF filter, installed with TSYNC, that checks the
 * architecture (another one is killed: its numbers mean other calls),
 * refuses x32 numbers on x86_64, and answers EPERM to the calls in
 * denied[]; everything else is allowed.  ternd never executes a program
 * (no per-message fork, no helpers), so execve is one of them.
 *
 * PR_SET_NO_NEW_PRIVS comes first: both layers need it when unprivileged,
 * and it keeps a set-uid program from lifting the confinement.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <pwd.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/util.h"
#include "server/sandbox.h"

/* rights newer than Debian 12's header */
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif

/*
 * A sanitizer build (make asan) keeps what LeakSanitizer needs at exit:
 * it lists /proc/self/task and ptrace-attaches to every thread to stop
 * them.  Production builds deny both.
 */
#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANDBOX_SANITIZER 1
#endif
#endif

#define FS_READ (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define FS_FILE                                                                \
	(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |          \
	    LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_TRUNCATE |       \
	    LANDLOCK_ACCESS_FS_IOCTL_DEV)
#define FS_ALL	  (~0ULL)
#define FS_NOEXEC (FS_ALL & ~LANDLOCK_ACCESS_FS_EXECUTE)

struct ll {
	int fd;
	uint64_t handled;
	unsigned rules;
};

/* ---- Landlock ----------------------------------------------------------- */

static uint64_t
ll_handled(int abi)
{
	uint64_t h = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1; /* ABI 1 */

	h |= LANDLOCK_ACCESS_FS_REFER; /* ABI 2 */
	if (abi >= 3)
		h |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		h |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	return h;
}

/*
 * Allow access on path (a file) or beneath it (a directory).  1 added,
 * 0 skipped (path missing or unreachable: nothing there to allow), -1
 * error.
 */
static int
ll_allow(struct ll *l, const char *path, uint64_t access)
{
	struct landlock_path_beneath_attr pb;
	struct stat st;
	int fd = open(path, O_PATH | O_CLOEXEC), rc;

	if (fd < 0)
		return errno == ENOENT || errno == ENOTDIR || errno == EACCES
			   ? 0
			   : -1;
	if (fstat(fd, &st) != 0) {
		(void)close(fd);
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		access &= FS_FILE;
	memset(&pb, 0, sizeof(pb));
	pb.allowed_access = access & l->handled;
	pb.parent_fd = fd;
	rc = (int)syscall(
	    SYS_landlock_add_rule, l->fd, LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
	(void)close(fd);
	if (rc != 0)
		return -1;
	l->rules++;
	return 1;
}

/* A file, and if it is a link also beneath the directory it leads to. */
static int
ll_allow_file(struct ll *l, const char *path, uint64_t access)
{
	char real[PATH_MAX];
	struct stat st;

	if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode) &&
	    realpath(path, real) != NULL &&
	    ll_allow(l, dirname(real), access | LANDLOCK_ACCESS_FS_READ_DIR) <
		0)
		return -1;
	return ll_allow(l, path, access);
}

/* Beneath the directory a path is in (the file itself may not exist
 * yet: ACME writes tls.cert there). */
static int
ll_allow_parent(struct ll *l, const char *path, uint64_t access)
{
	char dir[PATH_MAX], real[PATH_MAX];

	if (path == NULL ||
	    str_copy(dir, sizeof(dir), path, strlen(path)) != 0 ||
	    realpath(dirname(dir), real) == NULL)
		return 0;
	return ll_allow(l, real, access);
}

/* acme.directory: tls.cert's and tls.key's directories and the webroot
 * are written (server/acmed.h). */
static int
ll_allow_acme(struct ll *l, const struct conf *cf)
{
	if (cf->acme_directory == NULL)
		return 0;
	if (ll_allow_parent(l, cf->tls_cert, FS_NOEXEC) < 0 ||
	    ll_allow_parent(l, cf->tls_key, FS_NOEXEC) < 0 ||
	    (cf->acme_webroot != NULL &&
		ll_allow(l, cf->acme_webroot, FS_NOEXEC) < 0))
		return -1;
	return 0;
}

/* Beneath the directory holding what path resolves to now. */
static int
ll_allow_dir_of(struct ll *l, const char *path, uint64_t access)
{
	char real[PATH_MAX];

	if (path == NULL || realpath(path, real) == NULL)
		return 0;
	return ll_allow(l, dirname(real), access);
}

static const char *const sys_dirs[] = {
    "/usr",
    "/lib",
    "/lib64",
    "/etc/ssl",
    "/etc/pki",
    "/etc/ca-certificates",
    "/etc/postgresql-common",
};

static const char *const sys_files[] = {
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/gai.conf",
    "/etc/services",
    "/etc/protocols",
    "/etc/passwd",
    "/etc/group",
    "/etc/localtime",
    "/etc/ld.so.cache",
    "/dev/urandom",
    "/dev/random",
};

/* A CA store moved by OpenSSL's environment (a colon-separated list). */
static int
ll_allow_ca_env(struct ll *l)
{
	const char *file = getenv("SSL_CERT_FILE"),
		   *dirs = getenv("SSL_CERT_DIR");
	char dir[PATH_MAX];
	size_t n;

	if (file != NULL &&
	    ll_allow_file(l, file, LANDLOCK_ACCESS_FS_READ_FILE) < 0)
		return -1;
	while (dirs != NULL && *dirs != '\0') {
		n = strcspn(dirs, ":");
		if (n > 0 && str_copy(dir, sizeof(dir), dirs, n) == 0 &&
		    ll_allow(l, dir, FS_READ) < 0)
			return -1;
		dirs += n + (dirs[n] == ':');
	}
	return 0;
}

/* libpq's password file and client certificates, in the user's home */
static int
ll_allow_pgsql(struct ll *l, const struct conf *cf)
{
	const struct passwd *pw = getpwuid(getuid());
	char path[PATH_MAX];
	const char *env = getenv("PGPASSFILE");

	if (cf->tables_users == NULL ||
	    strncmp(cf->tables_users, "pgsql:", 6) != 0)
		return 0;
	if (env != NULL && ll_allow_file(l, env, FS_READ) < 0)
		return -1;
	if (pw == NULL || pw->pw_dir == NULL)
		return 0;
	if (str_fmt(path, sizeof(path), "%s/.pgpass", pw->pw_dir) == 0 &&
	    ll_allow_file(l, path, FS_READ) < 0)
		return -1;
	if (str_fmt(path, sizeof(path), "%s/.postgresql", pw->pw_dir) == 0 &&
	    ll_allow(l, path, FS_READ) < 0)
		return -1;
	return 0;
}

/*
 * A user's own Maildir; its parent only to open it (delivery walks from
 * the parent's descriptor) and make it again.  A Maildir missing at start
 * gets its whole parent, or it could not be filled once made.
 */
static int
ll_allow_maildir(struct ll *l, char *box)
{
	int rc = ll_allow(l, box, FS_NOEXEC);

	if (rc < 0)
		return -1;
	return ll_allow(l, dirname(box),
	    rc == 1 ? LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_MAKE_DIR
		    : FS_NOEXEC);
}

/* sandbox_write: absolute directories, separated by spaces or commas */
static int
ll_allow_configured(struct ll *l, const char *list)
{
	char dir[PATH_MAX];
	size_t n;

	while (list != NULL && *(list += strspn(list, " \t,")) != '\0') {
		n = strcspn(list, " \t,");
		if (*list != '/' || str_copy(dir, sizeof(dir), list, n) != 0)
			fatalx(
			    "event=startup step=sandbox error=\"sandbox_write: "
			    "\\\"%.*s\\\" is not an absolute path\"",
			    (int)n, list);
		switch (ll_allow(l, dir, FS_NOEXEC)) {
		case -1:
			return -1;
		case 0:
			log_warn("event=sandbox sandbox_write=%s "
				 "note=\"missing at start, "
				 "so not allowed: make it and restart\"",
			    dir);
			break;
		}
		list += n;
	}
	return 0;
}

static int
ll_rules(struct ll *l, const struct conf *cf, char *const *rw, size_t nrw,
    const char *extra_read)
{
	size_t i;

	if (ll_allow(l, cf->state_dir, FS_NOEXEC) != 1 ||
	    ll_allow_configured(l, cf->sandbox_write) != 0)
		return -1;
	for (i = 0; i < nrw; i++)
		if (ll_allow_maildir(l, rw[i]) < 0)
			return -1;
	if (cf->tables_users != NULL &&
	    strncmp(cf->tables_users, "sqlite:", 7) == 0 &&
	    ll_allow_dir_of(l, cf->tables_users + 7, FS_NOEXEC) < 0)
		return -1;
	if (ll_allow_acme(l, cf) != 0 ||
	    ll_allow_dir_of(l, cf->tls_cert, FS_READ) < 0 ||
	    ll_allow_dir_of(l, cf->tls_key, FS_READ) < 0 ||
	    ll_allow_dir_of(l, cf->relay_smarthost_ca_file, FS_READ) < 0 ||
	    ll_allow_dir_of(l, cf->tls_ca_file, FS_READ) < 0 ||
	    (cf->tls_ca_path != NULL &&
		ll_allow(l, cf->tls_ca_path, FS_READ) < 0) ||
	    /* tern.conf, read again by SIGHUP (reload.h): its directory,
	       since an editor replaces the file by renaming a new one */
	    ll_allow_dir_of(l, cf->path, FS_READ) < 0 ||
	    (extra_read != NULL && ll_allow(l, extra_read, FS_READ) < 0))
		return -1;
	for (i = 0; i < sizeof(sys_dirs) / sizeof(sys_dirs[0]); i++)
		if (ll_allow(l, sys_dirs[i], FS_READ) < 0)
			return -1;
	for (i = 0; i < sizeof(sys_files) / sizeof(sys_files[0]); i++)
		if (ll_allow_file(
			l, sys_files[i], LANDLOCK_ACCESS_FS_READ_FILE) < 0)
			return -1;
#ifdef SANDBOX_SANITIZER
	if (ll_allow(l, "/proc/self", FS_READ) < 0)
		return -1;
#endif
	/* listen.metrics: the process's own size and descriptors, read by
	 * a scrape (metricsrv.c) */
	if (cf->listen_metrics != NULL &&
	    (ll_allow(l, "/proc/self/statm", LANDLOCK_ACCESS_FS_READ_FILE) <
		    0 ||
		ll_allow(l, "/proc/self/fd", FS_READ) < 0))
		return -1;
	if (ll_allow(l, "/dev/null",
		LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE |
		    LANDLOCK_ACCESS_FS_TRUNCATE) < 0)
		return -1;
	if (ll_allow_ca_env(l) != 0)
		return -1;
	return ll_allow_pgsql(l, cf);
}

/* Landlock confines the process (set once, before any thread starts). */
static bool sb_landlock;

/* "abi=N rules=M", or why Landlock is off, for the log line. */
static void
landlock_apply(const struct conf *cf, char *const *rw, size_t nrw,
    const char *extra_read, char *what, size_t whatlen)
{
	struct landlock_ruleset_attr attr;
	struct ll l = {-1, 0, 0};
	int abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0,
	    LANDLOCK_CREATE_RULESET_VERSION);

	/* EPERM: a seccomp filter of the service manager or container */
	if (abi < 0 &&
	    (errno == ENOSYS || errno == EOPNOTSUPP || errno == EPERM)) {
		str_fmt_cut(what, whatlen, "landlock=unavailable reason=\"%s\"",
		    errno == ENOSYS ? "kernel without Landlock"
		    : errno == EPERM
			? "landlock calls refused (a seccomp filter)"
			: "Landlock disabled at boot");
		return;
	}
	if (abi < 0)
		fatal("event=startup step=sandbox what=landlock_version");
	if (abi < 2) {
		str_fmt_cut(what, whatlen,
		    "landlock=unavailable reason=\"ABI %d: "
		    "no rename across directories\"",
		    abi);
		return;
	}
	memset(&attr, 0, sizeof(attr));
	attr.handled_access_fs = l.handled = ll_handled(abi);
	l.fd =
	    (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (l.fd < 0)
		fatal("event=startup step=sandbox what=landlock_ruleset");
	if (ll_rules(&l, cf, rw, nrw, extra_read) != 0)
		fatal("event=startup step=sandbox what=landlock_rule");
	if (syscall(SYS_landlock_restrict_self, l.fd, 0) != 0)
		fatal("event=startup step=sandbox what=landlock_restrict");
	(void)close(l.fd);
	sb_landlock = true;
	str_fmt_cut(what, whatlen, "landlock=abi%d rules=%u own_maildirs=%zu",
	    abi, l.rules, nrw);
}

/* ---- seccomp ------------------------------------------------------------ */

#if defined(__x86_64__)
#define SANDBOX_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SANDBOX_ARCH AUDIT_ARCH_AARCH64
#endif

#ifdef SANDBOX_ARCH
/* what ternd never does: run programs, debug others, change the system */
static const int denied[] = {
    SYS_execve,
    SYS_execveat,
#ifndef SANDBOX_SANITIZER
    SYS_ptrace,
#endif
    SYS_process_vm_readv,
    SYS_process_vm_writev,
    SYS_init_module,
    SYS_finit_module,
    SYS_delete_module,
    SYS_mount,
    SYS_umount2,
    SYS_pivot_root,
    SYS_chroot,
    SYS_kexec_load,
    SYS_kexec_file_load,
    SYS_reboot,
    SYS_swapon,
    SYS_swapoff,
    SYS_acct,
    SYS_bpf,
    SYS_perf_event_open,
    SYS_userfaultfd,
    SYS_unshare,
    SYS_setns,
    SYS_open_by_handle_at,
    SYS_name_to_handle_at,
    SYS_keyctl,
    SYS_add_key,
    SYS_request_key,
    SYS_fsopen,
    SYS_fsconfig,
    SYS_fsmount,
    SYS_fspick,
    SYS_move_mount,
    SYS_open_tree,
    SYS_settimeofday,
    SYS_clock_settime,
    SYS_clock_adjtime,
    SYS_adjtimex,
    SYS_sethostname,
    SYS_setdomainname,
    SYS_syslog,
    SYS_quotactl,
    SYS_vhangup,
    SYS_kcmp,
#if defined(__x86_64__)
    SYS_iopl,
    SYS_ioperm,
    SYS_uselib,
#endif
};

#define DENIED_N (sizeof(denied) / sizeof(denied[0]))

static const char *
seccomp_apply(void)
{
	struct sock_filter f[DENIED_N + 8];
	struct sock_fprog prog;
	size_t n = 0, i;

	f[n++] = (struct sock_filter)BPF_STMT(
	    BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
	f[n++] = (struct sock_filter)BPF_JUMP(
	    BPF_JMP | BPF_JEQ | BPF_K, SANDBOX_ARCH, 1, 0);
	f[n++] = (struct sock_filter)BPF_STMT(
	    BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
	f[n++] = (struct sock_filter)BPF_STMT(
	    BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
#if defined(__x86_64__)
	/* x32 numbers reach the same calls under other numbers */
	f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K,
	    0x40000000u, (unsigned char)(DENIED_N + 1), 0);
#endif
	/* each match jumps to the EPERM at the end */
	for (i = 0; i < DENIED_N; i++)
		f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
		    (unsigned)denied[i], (unsigned char)(DENIED_N - i), 0);
	f[n++] =
	    (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	f[n++] = (struct sock_filter)BPF_STMT(
	    BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA));
	prog.len = (unsigned short)n;
	prog.filter = f;
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
		SECCOMP_FILTER_FLAG_TSYNC, &prog) == 0)
		return "seccomp=on";
	if (errno == ENOSYS || errno == EINVAL || errno == EPERM)
		return "seccomp=unavailable reason=\"seccomp refused\"";
	fatal("event=startup step=sandbox what=seccomp");
}
#else
static const char *
seccomp_apply(void)
{
	return "seccomp=unavailable reason=\"no filter for this architecture\"";
}
#endif

/* ---- both --------------------------------------------------------------- */

void
sandbox_apply(
    const struct conf *cf, char *const *rw, size_t nrw, const char *extra_read)
{
	char ll[256];
	const char *sc;

	if (!cf->sandbox) {
		log_warn("event=sandbox state=off note=\"sandbox = no in the "
			 "configuration\"");
		return;
	}
	/* SQLite's temporary files (large sorts) go where the rules allow */
	if (setenv("SQLITE_TMPDIR", cf->state_dir, 1) != 0)
		fatal("event=startup step=sandbox what=setenv");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		fatal("event=startup step=sandbox what=no_new_privs");
	landlock_apply(cf, rw, nrw, extra_read, ll, sizeof(ll));
	sc = seccomp_apply();
	/* one line; a warning when the kernel lacks a layer */
	log_msg(strstr(ll, "unavailable") != NULL ||
			strstr(sc, "unavailable") != NULL
		    ? LOG_LEVEL_WARN
		    : LOG_LEVEL_INFO,
	    "event=sandbox %s %s", ll, sc);
}

/*
 * Landlock checks the opening of a file, not access(2), which asks the
 * file's mode alone: a path the mode lets ternd read but open() refuses
 * with EACCES is one the rules made at start do not cover.
 */
int
sandbox_readable(const char *path, bool dir, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | (dir ? O_DIRECTORY : 0));
	int e = errno;

	if (fd >= 0) {
		(void)close(fd);
		return 0;
	}
	if (e == EACCES && sb_landlock && access(path, R_OK) == 0)
		str_fmt_cut(err, errlen,
		    "%s: not readable by ternd's sandbox: the sandbox is set "
		    "at start; restart ternd to use it",
		    path);
	else
		str_fmt_cut(err, errlen, "%s: %s", path, strerror(e));
	return -1;
}
