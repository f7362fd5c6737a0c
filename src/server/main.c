/*
 * ternd: the mail daemon.  Start-up order matters for safety:
 *   1. configuration (-c/-o), logging
 *   2. as root (if started so): state_dir made for `user` under a root-only
 *      parent, listeners bound (ports below 1024 need root), the admin's
 *      TLS pair and smarthost password read when their paths are root-only
 *   3. privileges dropped to `user` (refused to run as root without one)
 *   4. as that user: state_dir checked, the self-signed TLS pair and any
 *      file not read as root, tables, mail root; the sandbox; threads
 *   Root opens nothing by a name `user` could redirect: docs/security.md,
 *   "Files ternd touches as root", lists every such operation.
 *   5. the event loop: SIGTERM drains and exits 0, SIGHUP reloads
 *      tern.conf (reload.h) and reopens tables, certificates, DKIM keys
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "auth/auth.h"
#include "deliver/deliver.h"
#include "deliver/dns.h"
#include "fs/versions.h"
#include "mailauth/inbound.h"
#include "mailauth/psl.h"
#include "tls/tls.h"
#include "server/conn.h"
#include "server/connrate.h"
#include "server/control.h"
#include "server/dmarcrep.h"
#include "server/tlsrptd.h"
#include "server/acmed.h"
#include "server/dkimkeys.h"
#include "server/dkimsign.h"
#include "server/fault.h"
#include "server/listen.h"
#include "server/logsink.h"
#include "server/lookup.h"
#include "server/metricsrv.h"
#include "server/netlist.h"
#include "server/qsettings.h"
#include "server/reload.h"
#include "server/rootpath.h"
#include "server/sandbox.h"
#include "server/server.h"
#include "server/screen.h"
#include "server/srsmap.h"
#include "server/tlsconn.h"
#include "util/version.h"

/*
 * Disk workers.  Most of their time is spent waiting in fsync; many
 * concurrent fsyncs on one file system share journal commits (ext4 jbd2),
 * so more threads means fewer commits per message, not more CPU.
 */
#define WORKERS 16

/* Descriptors besides the connections: listeners, control sockets, the
 * tables, the queue and mail roots, workers, DNS, outgoing deliveries. */
#define FD_RESERVE 256

/*
 * Each connection holds a descriptor, and the usual soft limit (1024) is
 * below the default limits.connections (4096): raise the soft limit as far
 * as the configuration needs and the hard limit allows, and say so when
 * that is not enough (the admin raises the hard limit, e.g. systemd's
 * LimitNOFILE=).  c-ares and libevent use epoll, never select(), so
 * descriptors above FD_SETSIZE are fine.
 */
static void
raise_nofile(const struct conf *cf)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)cf->connections + FD_RESERVE;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < want) {
		rl.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want
				  ? rl.rlim_max
				  : want;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0 ||
		    getrlimit(RLIMIT_NOFILE, &rl) != 0)
			log_warn("event=startup step=rlimit error=\"%s\"",
			    strerror(errno));
	}
	if (rl.rlim_cur < want)
		log_warn("event=startup step=rlimit nofile=%llu want=%llu "
			 "note=\"fewer "
			 "descriptors than limits.connections needs; raise the "
			 "hard limit\"",
		    (unsigned long long)rl.rlim_cur, (unsigned long long)want);
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: ternd [-c FILE] [-o section.key=value]...\n"
	    "       ternd --version\n"
	    "Runs in the foreground and logs to stderr; see ternd(8).\n");
	exit(64);
}

/*
 * Started as root with a state_dir that does not exist yet: make it for
 * `user` when its parent is one only root can change (rootpath.h), the
 * usual /var/lib/tern.  Then nobody can swap the new directory for a link
 * or another directory between mkdir() and fchown(); and the fchown() is
 * on a descriptor opened O_NOFOLLOW besides.  Under any other parent the
 * directory is left for state_dir_prepare() to make with the user's own
 * rights, after the drop: root creates and chowns nothing by a name
 * someone else could redirect.
 */
static void
state_dir_make_as_root(const struct conf *cf, const struct passwd *pw)
{
	char parent[4096], why[512];
	const char *dir = cf->state_dir;
	int fd;

	if (pw == NULL || access(dir, F_OK) == 0 || errno != ENOENT)
		return;
	/* state_dir is absolute (conf makes it so): its parent by name */
	if (str_copy(parent, sizeof(parent), dir, strlen(dir)) != 0 ||
	    !rootpath_root_only(dirname(parent), why, sizeof(why)))
		return;
	if (mkdir(dir, 0700) != 0)
		fatal("event=startup step=state_dir path=%s", dir);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fchown(fd, pw->pw_uid, pw->pw_gid) != 0)
		fatal("event=startup step=state_dir_chown path=%s", dir);
	(void)close(fd);
}

/*
 * As ternd's user: make state_dir if missing, then check it by descriptor
 * (opened O_NOFOLLOW: a link is refused, not followed) and refuse one
 * that others own or can write.
 */
static void
state_dir_prepare(const struct conf *cf)
{
	const char *dir = cf->state_dir;
	struct stat st;
	int fd;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		fatal("event=startup step=state_dir path=%s", dir);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	/* O_NOFOLLOW with O_DIRECTORY: a link fails as ENOTDIR */
	if (fd < 0 && (errno == ELOOP || errno == ENOTDIR))
		fatalx("event=startup step=state_dir path=%s error=\"%s\"", dir,
		    lstat(dir, &st) == 0 && S_ISLNK(st.st_mode)
			? "a symbolic link: "
			  "set state_dir to the directory itself"
			: "not a directory");
	if (fd < 0 || fstat(fd, &st) != 0)
		fatal("event=startup step=state_dir path=%s", dir);
	(void)close(fd);
	/* an existing one owned by someone else is refused: that someone
	 * could plant files (or symlinks) in the queue and the mailboxes */
	if (st.st_uid != geteuid())
		fatalx("event=startup step=state_dir path=%s error=\"owned by "
		       "uid %u, "
		       "not by the user ternd runs as (uid %u): chown it or "
		       "choose "
		       "another state_dir\"",
		    dir, (unsigned)st.st_uid, (unsigned)geteuid());
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		fatalx(
		    "event=startup step=state_dir path=%s error=\"writable by "
		    "group or others; run chmod 700 %s\"",
		    dir, dir);
}

/*
 * May this admin-named file be opened now?  As root only when its path is
 * one only root can change; otherwise it waits for the drop and is read
 * with `user`'s rights (a root-only file there then fails, naming it).
 */
static bool
readable_now(const char *path, const struct passwd *pw, bool dropped)
{
	char why[512];

	if (pw == NULL || dropped)
		return true;
	if (rootpath_root_only(path, why, sizeof(why)))
		return true;
	log_info(
	    "event=startup step=read_as_user path=%s reason=\"%s\"", path, why);
	return false;
}

/* The smarthost password: read as root (see readable_now), so the file may
 * be root-only. */
static void
read_smarthost_password(struct server *s, const struct passwd *pw, bool dropped)
{
	const char *path = s->conf->relay_smarthost_password_file;
	char err[1200];

	if (path == NULL || s->smarthost_pass[0] != '\0' ||
	    (!dropped && pw == NULL) || !readable_now(path, pw, dropped))
		return;
	if (qsettings_password_read(path, s->smarthost_pass,
		sizeof(s->smarthost_pass), err, sizeof(err)) != 0)
		fatalx(
		    "event=startup step=smarthost_password error=\"%s\"", err);
}

/*
 * The server's TLS context.  The admin's tls.cert and tls.key are read as
 * root when their paths allow it (readable_now); the self-signed pair in
 * STATE/tls is always made and read after the drop, as `user`.
 */
static void
load_tls(struct server *s, const struct passwd *pw, bool dropped)
{
	const struct conf *cf = s->conf;

	if (s->tls_ctx != NULL)
		return;
	/* not started as root: everything after state_dir_prepare() */
	/* ACME's pair (acmed.h) is ternd's own: read and made as user */
	if (!dropped &&
	    (pw == NULL || cf->tls_cert == NULL || cf->acme_directory != NULL ||
		!readable_now(cf->tls_cert, pw, false) ||
		!readable_now(cf->tls_key, pw, false)))
		return;
	if (tlsconn_ctx_load(s->conf, &s->tls_ctx) != 0)
		fatalx("event=startup step=tls error=\"see above\"");
}

static void
drop_privileges(const struct conf *cf, const struct passwd *pw)
{
	if (pw == NULL)
		return;
	if (setgroups(1, &pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 ||
	    setuid(pw->pw_uid) != 0)
		fatal("event=startup step=privdrop user=%s", cf->user);
	if (setuid(0) == 0)
		fatalx(
		    "event=startup step=privdrop error=\"could regain root\"");
	log_info(
	    "event=privdrop user=%s uid=%u", cf->user, (unsigned)pw->pw_uid);
}

static const struct passwd *
lookup_user(const struct conf *cf)
{
	const struct passwd *pw;

	if (geteuid() != 0)
		return NULL;
	if (cf->user == NULL)
		fatalx(
		    "event=startup error=\"started as root without user=: set "
		    "user (e.g. -o user=tern) so ternd can drop privileges\"");
	if ((pw = getpwnam(cf->user)) == NULL)
		fatalx("event=startup error=\"no such user: %s\"", cf->user);
	if (pw->pw_uid == 0)
		fatalx("event=startup error=\"user=%s is root\"", cf->user);
	return pw;
}

static void
open_mail_root(struct server *s)
{
	char path[4096];

	if (str_fmt(path, sizeof(path), "%s/mail", s->conf->state_dir) != 0)
		fatalx("event=startup error=\"state_dir path too long\"");
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		fatal("event=startup step=mail_root path=%s", path);
	s->mail_root_fd =
	    open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (s->mail_root_fd == -1)
		fatal("event=startup step=mail_root path=%s", path);
}

/*
 * The users' own Maildirs (a users row naming an absolute path, outside
 * STATE/mail), for the sandbox to allow.  Read once, at start: the
 * sandbox cannot be widened later.
 */
struct own_boxes {
	char **addr, **box;
	size_t naddr, nbox;
};

static void
strv_push(char ***v, size_t *n, const char *str)
{
	char **nv = realloc(*v, (*n + 1) * sizeof(**v));

	if (nv == NULL)
		panic("event=oom where=own_boxes");
	*v = nv;
	nv[(*n)++] = xstrdup(str);
}

static void
own_boxes_addr(const char *address, bool has_password, void *ctx)
{
	struct own_boxes *o = ctx;

	(void)has_password;
	strv_push(&o->addr, &o->naddr, address);
}

static void
own_boxes_collect(struct server *s, struct own_boxes *o)
{
	char box[512];
	size_t i;

	if (!s->conf->sandbox ||
	    table_user_list(s->lookups->table, own_boxes_addr, o) != TABLE_OK)
		return;
	for (i = 0; i < o->naddr; i++) {
		if (table_user_mailbox(s->lookups->table, o->addr[i], box,
			sizeof(box)) == TABLE_OK &&
		    box[0] == '/')
			strv_push(&o->box, &o->nbox, box);
		free(o->addr[i]);
	}
	free(o->addr);
}

static void
confine(struct server *s)
{
	struct own_boxes o = {0};
	size_t i;

	own_boxes_collect(s, &o);
	sandbox_apply(s->conf, o.box, o.nbox, fault_sandbox_dir());
	for (i = 0; i < o.nbox; i++)
		free(o.box[i]);
	free(o.box);
}

void
server_maybe_exit(struct server *s)
{
	if (s->stopping && s->nconns == 0 && workers_busy(s->workers) == 0 &&
	    lookups_busy(s->lookups) == 0 && qmgr_idle(s->qmgr) &&
	    dmarcrep_idle(s->dmarcrep) && tlsrptd_idle(s->tlsrptd) &&
	    acmed_idle(s))
		event_base_loopexit(s->base, NULL);
}

/*
 * A stopping ternd waits for its jobs (a Maildir commit, a DSN's store, a
 * lookup); whichever finishes last may belong to code that does not know
 * about shutdown, so the check runs after every batch of completions.
 */
static void
after_jobs(void *arg)
{
	server_maybe_exit(arg);
}

/* The store committed a queue entry: the scheduler takes it. */
static void
on_queued(void *arg, struct queue_env *env)
{
	struct server *s = arg;

	qmgr_add(s->qmgr, env);
}

static void
on_stop_timer(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;

	(void)fd;
	(void)what;
	log_warn("event=shutdown_timeout connections=%u", s->nconns);
	conns_close_all(s, "shutdown");
	server_maybe_exit(s);
}

/* arg: the server (run_loop) */
static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct server *s = arg;
	struct timeval tv = {(time_t)s->conf->timeout_shutdown, 0};

	(void)what;
	if (sig == SIGHUP) {
		if (!s->stopping)
			reload_run(s);
		return;
	}
	if (s->stopping)
		return;
	log_info("event=shutdown signal=%s connections=%u",
	    sig == SIGTERM ? "TERM" : "INT", s->nconns);
	s->stopping = true;
	listeners_close(s);
	control_close(s);
	metricsrv_stop(s);
	dmarcrep_stop(s->dmarcrep);
	tlsrptd_stop(s->tlsrptd);
	acmed_stop(s);
	s->stop_timer = evtimer_new(s->base, on_stop_timer, s);
	evtimer_add(s->stop_timer, &tv);
	conns_shutdown(s);
	qmgr_stop(s->qmgr);
	server_maybe_exit(s);
}

static void
run_loop(struct server *s)
{
	int sigs[] = {SIGTERM, SIGINT, SIGHUP};
	struct event *sev[3];
	size_t i;

	for (i = 0; i < 3; i++) {
		sev[i] = evsignal_new(s->base, sigs[i], on_signal, s);
		if (sev[i] == NULL || event_add(sev[i], NULL) != 0)
			fatalx("event=startup step=signals");
	}
	listeners_enable(s);
	metricsrv_start(s);
	log_info("event=ready version=%s rev=%s hostname=%s state_dir=%s",
	    tern_version(), tern_revision(), s->conf->hostname,
	    s->conf->state_dir);
	event_base_dispatch(s->base);
	for (i = 0; i < 3; i++)
		event_free(sev[i]);
}

/*
 * Files a killed ternd left in Maildir tmp/ directories: removed once, in
 * the background, at start (maildir_sweep_tmp says which files qualify).
 * Static, so a stop before it finishes leaks nothing.
 */
static struct sweep {
	struct job job;
	int root_fd;
	struct timespec before;
	size_t removed, boxes;
	uint64_t ms;
} sweep;

static void
sweep_run(struct job *j)
{
	struct sweep *w = (struct sweep *)j;
	uint64_t t0 = time_now_ms();

	w->removed = maildir_sweep_tmp(w->root_fd, &w->before, &w->boxes);
	w->ms = time_now_ms() - t0;
}

static void
sweep_done(struct job *j)
{
	struct sweep *w = (struct sweep *)j;

	log_info("event=maildir_tmp_swept removed=%zu mailboxes=%zu ms=%llu",
	    w->removed, w->boxes, (unsigned long long)w->ms);
}

/*
 * DMARC's start-up: the Public Suffix List (read once, before the
 * sandbox closes the file system) and dmarc.override (conf.c checked it).
 */
static void
load_dmarc(struct server *s)
{
	const char *path = s->conf->dmarc_public_suffix_list != NULL
			       ? s->conf->dmarc_public_suffix_list
			       : PSL_DEFAULT_PATH;
	char err[256];

	/* the reports need it too: an external rua is judged by the
	 * organisational domains (RFC 7489 7.1) */
	if (!s->conf->dmarc_check && !s->conf->dmarc_reports)
		return;
	if (psl_load_file(path, &s->psl) != 0)
		fatal("event=startup step=public_suffix_list path=%s", path);
	log_info(
	    "event=psl_loaded path=%s rules=%zu", path, psl_rule_count(s->psl));
	if (s->conf->dmarc_override == NULL)
		return;
	s->overrides_text = xstrdup(s->conf->dmarc_override);
	s->overrides = xcalloc(INBOUND_OVERRIDES_MAX, sizeof(*s->overrides));
	if (inbound_overrides_parse(s->overrides_text, s->overrides,
		INBOUND_OVERRIDES_MAX, &s->noverrides, err, sizeof(err)) != 0)
		fatalx("event=startup step=config error=\"%s\"", err);
}

static void
sweep_start(struct server *s, const struct timespec *started)
{
	sweep.root_fd = s->mail_root_fd;
	sweep.before = *started;
	sweep.job.run = sweep_run;
	sweep.job.done = sweep_done;
	workers_submit(s->workers, &sweep.job);
}

int
main(int argc, char **argv)
{
	struct server s = {0};
	struct lookups lookups = {0};
	struct store_stats stats;
	const struct passwd *pw;
	struct timespec started;
	char err[512];
	int argc0 = argc;
	char **argv0 = argv; /* read again by a reload */

	(void)clock_gettime(CLOCK_REALTIME, &started);
	log_init("ternd", LOG_LEVEL_INFO);
	if (argc > 1 &&
	    (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))
		usage();
	if (argc > 1 && strcmp(argv[1], "--version") == 0) {
		printf("ternd %s rev %s\n", tern_version(), tern_revision());
		return fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
	}
	if ((s.conf = conf_from_args(&argc, &argv, err, sizeof(err))) == NULL)
		fatalx("event=startup step=config error=\"%s\"", err);
	if (argc > 0)
		usage();
	log_init("ternd", log_level_from_name(s.conf->log_level));
	if (logsink_setup(s.conf, err, sizeof(err)) != 0)
		fatalx("event=startup step=log error=\"%s\"", err);
	signal(SIGPIPE, SIG_IGN);
	fault_install();
	pw = lookup_user(s.conf);
	state_dir_make_as_root(s.conf, pw);
	raise_nofile(s.conf);
	if (listeners_bind(&s) != 0 || metricsrv_bind(&s) != 0 ||
	    acmed_bind(&s) != 0)
		fatalx("event=startup step=listen error=\"cannot listen, see "
		       "above\"");
	load_tls(&s, pw, false);
	read_smarthost_password(&s, pw, false);
	if ((s.relay_nets = netlist_parse(
		 s.conf->relay_networks, err, sizeof(err))) == NULL)
		fatalx("event=startup step=config error=\"%s\"", err);
	reload_init(&s, argc0, argv0);
	drop_privileges(s.conf, pw);
	umask(077);
	state_dir_prepare(s.conf);
	/* before the TLS pair, srs.key and the DKIM keys are read or made */
	if (state_versions_check(s.conf->state_dir, err, sizeof(err)) != 0)
		fatalx("event=startup step=versions error=\"%s\"", err);
	load_tls(&s, pw, true);
	read_smarthost_password(&s, pw, true);
	/* as user, before the sandbox: it may make STATE/srs.key */
	s.srs = srsmap_open(s.conf);
	if ((s.base = event_base_new()) == NULL)
		fatalx("event=startup step=event_base");
	open_mail_root(&s);
	dkimsign_reload(&s); /* STATE/dkim, as user */
	if (lookups_init(&lookups, s.conf, s.base, err, sizeof(err)) != 0)
		fatalx("event=startup step=tables error=\"%s\"", err);
	s.lookups = &lookups;
	/* the per-client tables' hash key, before any client */
	client_key_seed();
	s.throttle = auth_throttle_new(4096);
	/* made once: SIGHUP keeps every count (connrate.h) */
	if ((s.rate = connrate_new(s.conf, err, sizeof(err))) == NULL)
		fatalx("event=startup step=config error=\"%s\"", err);
	if ((s.spool = s.conf->queue_log
			   ? spool_open_log(s.conf->state_dir, err, sizeof(err))
			   : spool_open(s.conf->state_dir, err, sizeof(err))) ==
	    NULL)
		fatalx("event=startup step=queue error=\"%s\"", err);
	load_dmarc(&s);
	s.dmarcrep = dmarcrep_open(&s);
	s.tlsrptd = tlsrptd_open(&s);
	conn_grey_open(&s);
	/* before any thread: Landlock confines this thread and later ones */
	confine(&s);
	s.workers = workers_start(s.base, WORKERS);
	workers_on_drained(s.workers, after_jobs, &s);
	lookups_start(s.lookups, after_jobs, &s);
	sweep_start(&s, &started);
	s.store = store_new(
	    s.base, s.mail_root_fd, s.spool, s.workers, on_queued, &s);
	if ((s.dns = dns_new(s.base, s.conf->dns_servers, err, sizeof(err))) ==
	    NULL)
		fatalx("event=startup step=dns error=\"%s\"", err);
	/* dns.dnssec: only a validating resolver on loopback (dns.h) */
	if (dns_set_dnssec(s.dns, s.conf->dns_dnssec, err, sizeof(err)) != 0)
		fatalx("event=startup step=dns error=\"%s\"", err);
	/* about 1 KiB of answer per entry on average (TXT keys are larger) */
	dns_set_cache(s.dns, s.conf->dns_cache_max_ttl,
	    s.conf->dns_cache_entries,
	    (size_t)s.conf->dns_cache_entries * 1024);
	if (screen_open(&s, err, sizeof(err)) != 0)
		fatalx("event=startup step=screen error=\"%s\"", err);
	s.qmgr = qmgr_new(&s);
	dmarcrep_start(s.dmarcrep);
	tlsrptd_start(s.tlsrptd);
	acmed_start(&s);
	if (control_listen(&s) != 0)
		fatalx("event=startup step=control error=\"cannot make the "
		       "control sockets\"");
	run_loop(&s);
	metricsrv_stop(&s);
	qmgr_free(s.qmgr);
	conn_policy_close(&s);
	screen_free(s.screen);
	dns_free(s.dns);
	workers_stop(s.workers);
	conn_grey_close(&s);
	dmarcrep_free(s.dmarcrep);
	tlsrptd_free(s.tlsrptd);
	acmed_free(&s);
	store_stats(s.store, &stats);
	store_free(s.store);
	lookups_stop(s.lookups);
	spool_close(s.spool);
	if (s.stop_timer != NULL)
		event_free(s.stop_timer);
	close(s.mail_root_fd);
	log_info("event=stopped messages=%llu commit_batches=%llu "
		 "commit_messages=%llu commit_syncs=%llu",
	    (unsigned long long)s.messages,
	    (unsigned long long)stats.commit_batches,
	    (unsigned long long)stats.commit_messages,
	    (unsigned long long)stats.commit_syncs);
	free(s.client_buckets);
	SSL_CTX_free(s.tls_ctx);
	dkimkeys_drop(s.dkim);
	auth_throttle_free(s.throttle);
	connrate_free(s.rate);
	srsmap_free(s.srs);
	psl_free(s.psl);
	free(s.overrides);
	free(s.overrides_text);
	event_base_free(s.base);
	explicit_bzero(s.smarthost_pass, sizeof(s.smarthost_pass));
	reload_free(&s); /* every configuration, s.conf among them */
	return 0;
}
