/*
 * tern: the administration command.  It reads the same configuration as
 * ternd (-c FILE, -o section.key=value, $TERN_CONFIG) and edits the same
 * tables, which ternd reads live, so a change is in effect at once.
 *
 *   tern user add|del|list|passwd ADDRESS [--password-stdin | --hash-stdin]
 *   tern alias add ADDRESS TARGET... | del ADDRESS [TARGET...] | list [ADDRESS]
 *   tern config, tern config check [-c FILE]   (config.c)
 *   tern queue list|show ID|flush|delete ID|hold ID|release ID [--json]
 *   tern dkim keygen DOMAIN [...] | list   (dkim.c)
 *   tern doctor [DOMAIN...] [--address IP] [--json]   (doctor.c)
 *   tern sendmail [FLAGS] [RCPT...], tern mailq; argv[0] sendmail, mailq
 *
 * The queue, sendmail and mailq commands live in queue.c and sendmail.c
 * (interface: cli.h); they use sysexits(3) codes as sendmail(1) does.
 *
 * Exit status: 0 success, 1 failure, 64 usage error (sysexits EX_USAGE).
 * Every message starts with "tern: ".
 *
 * Security: passwords are read without echo from the terminal, or one
 * line from stdin with --password-stdin, never from the command line
 * (other users see argv).  They are hashed with yescrypt and wiped with
 * explicit_bzero() as soon as hashed; read(2) is used instead of stdio so
 * no copy stays in a FILE buffer.  --hash-stdin imports a hash made
 * elsewhere: only the methods AUTH accepts (auth_hash_method_ok: yescrypt,
 * bcrypt, sha512crypt, sha256crypt) are stored; DES, MD5 and the rest are
 * refused with a message, never stored to fail at every login.  Run as root
 * with "user" configured, tern becomes that user first, so the files it creates
 * belong to ternd.
 *
 * Limits: a password of CLI_PASSWORD_MAX bytes.
 */
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <termios.h>
#include <unistd.h>

#include "addr/addr.h"
#include "auth/auth.h"
#include "cli/cli.h"
#include "conf/conf.h"
#include "deliver/deliver.h"
#include "table/table.h"
#include "util/util.h"
#include "util/version.h"

#define CLI_PASSWORD_MAX 1024

static const char cli_usage_text[] =
    "usage: tern [-c file] [-o section.key=value]... command\n"
    "       tern --version                   the release and git revision\n"
    "\n"
    "  user add ADDRESS [--password-stdin | --hash-stdin]\n"
    "           [--maildir /PATH | --lmtp TARGET]\n"
    "                                        add a user and its Maildir\n"
    "  user del ADDRESS                      remove a user (mail is kept)\n"
    "  user passwd ADDRESS [--password-stdin | --hash-stdin]\n"
    "                                        set a user's password (or its\n"
    "                                        crypt(5) hash, from stdin)\n"
    "  user list                             list users\n"
    "  alias add ADDRESS TARGET...           add targets to an alias\n"
    "  alias del ADDRESS [TARGET...]         remove targets, or the alias\n"
    "  alias list [ADDRESS]                  list aliases\n"
    "  config                                print the configuration\n"
    "  config check [-c FILE]                check a configuration file as\n"
    "                                        ternd would (exit 0 ok, 1 not)\n"
    "  queue list|show ID [--json]           the queue (list: a table)\n"
    "  queue list [--to DOMAIN] [--from ADDR|DOMAIN|<>] [--older 1h]\n"
    "             [--deferred]               only the messages that match\n"
    "  queue flush|delete ID|hold ID|release ID\n"
    "  queue requeue ID|--all | bounce ID | purge --to DOMAIN [--yes]\n"
    "                                        route again now, return to the\n"
    "                                        sender with a DSN, delete\n"
    "  log ID [--file PATH|-] [--directory DIR]\n"
    "                                        the log lines of one message\n"
    "  dkim keygen DOMAIN [--selector S] [--algorithm rsa|ed25519]\n"
    "             [--bits N]                 make a DKIM signing key and\n"
    "                                        print its DNS record\n"
    "  dkim list                             the DKIM keys and records\n"
    "  dmarc report [--dry-run]              send the DMARC aggregate reports\n"
    "                                        due now (--dry-run: print them)\n"
    "  tlsrpt send --now                     send the TLS reports (RFC 8460)\n"
    "                                        now\n"
    "  doctor [DOMAIN...] [--address IP] [--json]\n"
    "                                        check DNS (MX, PTR, SPF, DKIM,\n"
    "                                        DMARC), certificate, state_dir,\n"
    "                                        queue and port 25 from here\n"
    "  sendmail [FLAGS] [RCPT...]            send stdin (sendmail(1) flags)\n"
    "  mailq                                 the queue, as mailq(1) shows it\n"
    "\n"
    "ADDRESS is local@domain; an alias ADDRESS may be @domain (catch-all).\n"
    "See tern(1) and docs/configuration.md.\n";

struct cli {
	struct conf *conf;
	struct table *table;
};

static int cli_err(const char *fmt, ...) PRINTF_LIKE(1, 2);
static int cli_usage_err(const char *fmt, ...) PRINTF_LIKE(1, 2);

static void
cli_vmsg(const char *fmt, va_list ap)
{
	fputs("tern: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static void cli_msg(const char *fmt, ...) PRINTF_LIKE(1, 2);

static void
cli_msg(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cli_vmsg(fmt, ap);
	va_end(ap);
}

/* A failure: say it, return the exit status 1. */
static int
cli_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cli_vmsg(fmt, ap);
	va_end(ap);
	return 1;
}

static int
cli_usage_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cli_vmsg(fmt, ap);
	va_end(ap);
	fputs("usage: tern [-c file] [-o key=value]... "
	      "user|alias|config|queue|sendmail|mailq ...\n"
	      "(tern help for more)\n",
	    stderr);
	return EX_USAGE;
}

/* ---- passwords --------------------------------------------------------- */

static struct termios cli_saved_tio;
static volatile sig_atomic_t cli_tio_changed;

/* A signal while echo is off: put the terminal back, then die of it. */
static void
cli_restore_tty(int sig)
{
	if (cli_tio_changed)
		(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &cli_saved_tio);
	(void)signal(sig, SIG_DFL);
	(void)raise(sig);
}

/* One line from fd 0 into buf (no newline); -1 at EOF/error/too long. */
static int
cli_read_line(char *buf, size_t len, const char **why)
{
	size_t n = 0;
	char c;

	for (;;) {
		ssize_t r = read(STDIN_FILENO, &c, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			*why = r < 0 ? strerror(errno)
				     : "no password given "
				       "(end of input)";
			if (r == 0 && n > 0)
				break; /* a last line without newline */
			return -1;
		}
		if (c == '\n')
			break;
		if (n + 1 >= len) {
			*why = "password too long";
			return -1;
		}
		buf[n++] = c;
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	if (n == 0) {
		*why = "empty password";
		return -1;
	}
	return 0;
}

static int
cli_prompt(const char *prompt, char *buf, size_t len, const char **why)
{
	struct termios tio;
	int r;

	fputs(prompt, stderr);
	fflush(stderr);
	if (tcgetattr(STDIN_FILENO, &cli_saved_tio) != 0) {
		*why = strerror(errno);
		return -1;
	}
	tio = cli_saved_tio;
	tio.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
	tio.c_lflag |= ICANON;
	cli_tio_changed = 1;
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &tio) != 0) {
		cli_tio_changed = 0;
		*why = strerror(errno);
		return -1;
	}
	r = cli_read_line(buf, len, why);
	(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &cli_saved_tio);
	cli_tio_changed = 0;
	fputc('\n', stderr);
	return r;
}

/* Ask twice on the terminal; both answers must match. */
static int
cli_ask_password(const char *address, char *pw, size_t len)
{
	char again[CLI_PASSWORD_MAX], prompt[TABLE_ADDR_MAX + 32];
	const char *why = "";
	int r;

	(void)signal(SIGINT, cli_restore_tty);
	(void)signal(SIGTERM, cli_restore_tty);
	(void)signal(SIGHUP, cli_restore_tty);
	(void)signal(SIGQUIT, cli_restore_tty);
	str_fmt_cut(prompt, sizeof(prompt), "Password for %s: ", address);
	r = cli_prompt(prompt, pw, len, &why);
	if (r == 0)
		r = cli_prompt("Again: ", again, sizeof(again), &why);
	if (r == 0 && strcmp(pw, again) != 0) {
		why = "the passwords do not match";
		r = -1;
	}
	explicit_bzero(again, sizeof(again));
	if (r != 0) {
		explicit_bzero(pw, len);
		cli_msg("%s", why);
	}
	return r;
}

/*
 * The password for address into pw: from stdin with --password-stdin,
 * else from the terminal.  1: none to be had (no flag, no terminal).
 */
static int
cli_get_password(const char *address, bool from_stdin, char *pw, size_t len)
{
	const char *why = "";

	if (from_stdin) {
		if (cli_read_line(pw, len, &why) == 0)
			return 0;
		explicit_bzero(pw, len);
		cli_msg("%s", why);
		return -1;
	}
	if (!isatty(STDIN_FILENO))
		return 1;
	return cli_ask_password(address, pw, len);
}

/* yescrypt hash of pw (malloc'ed), or NULL. */
static char *
cli_hash(const char *pw)
{
	char *setting, *h, *out = NULL;
	void *data = NULL;
	int size = 0;

	if ((setting = crypt_gensalt_ra("$y$", 0, NULL, 0)) == NULL) {
		cli_msg("cannot make a salt: %s", strerror(errno));
		return NULL;
	}
	h = crypt_ra(pw, setting, &data, &size);
	if (h == NULL || h[0] == '*')
		cli_msg("cannot hash the password: %s", strerror(errno));
	else
		out = xstrdup(h);
	if (data != NULL)
		explicit_bzero(data, (size_t)size);
	free(data);
	free(setting);
	return out;
}

/* Read and hash a password: 0 (*hash_out set), 1 none available, -1. */
static int
cli_password_hash(const char *address, bool from_stdin, char **hash_out)
{
	char pw[CLI_PASSWORD_MAX];
	int r = cli_get_password(address, from_stdin, pw, sizeof(pw));

	*hash_out = NULL;
	if (r != 0)
		return r;
	*hash_out = cli_hash(pw);
	explicit_bzero(pw, sizeof(pw));
	return *hash_out != NULL ? 0 : -1;
}

/*
 * --hash-stdin: one line, a crypt(5) hash made elsewhere (an import).
 * 0 (*hash_out set) or -1 after a message.
 */
static int
cli_import_hash(const char *address, char **hash_out)
{
	char line[AUTH_HASH_MAX];
	const char *why = "";

	*hash_out = NULL;
	if (cli_read_line(line, sizeof(line), &why) != 0) {
		cli_msg("no hash for %s read from stdin: %s", address, why);
		return -1;
	}
	if (!auth_hash_method_ok(line)) {
		cli_msg(
		    "refused the hash for %s: not a complete yescrypt ($y$), "
		    "bcrypt ($2b$, $2a$, $2y$), sha512crypt ($6$) or "
		    "sha256crypt "
		    "($5$) hash; DES, MD5 and other weak methods are not "
		    "accepted "
		    "(set a new password instead: tern user passwd %s)",
		    address, address);
		return -1;
	}
	*hash_out = xstrdup(line);
	return 0;
}

/* --password-stdin or --hash-stdin or the terminal: 0, 1 (none), -1. */
static int
cli_credential(
    const char *address, bool pw_stdin, bool hash_stdin, char **hash_out)
{
	if (hash_stdin)
		return cli_import_hash(address, hash_out);
	return cli_password_hash(address, pw_stdin, hash_out);
}

/* ---- set-up shared by commands ----------------------------------------- */

/* As root with "user" set, become that user so our files are ternd's. */
int
cli_become_user(const struct conf *c)
{
	const struct passwd *pw;

	if (geteuid() != 0 || c->user == NULL)
		return 0;
	if ((pw = getpwnam(c->user)) == NULL)
		return cli_err(
		    "user %s (from the configuration) does not exist", c->user);
	if (setgroups(1, &pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 ||
	    setuid(pw->pw_uid) != 0)
		return cli_err(
		    "cannot become user %s: %s", c->user, strerror(errno));
	return 0;
}

static int
cli_open_table(struct cli *cl)
{
	char err[512];

	if (cli_become_user(cl->conf) != 0)
		return 1;
	umask(077);
	if ((cl->table = table_open(cl->conf, err, sizeof(err))) == NULL)
		return cli_err("%s", err);
	return 0;
}

/* mkdir -p path, 0700. */
static int
cli_mkdirs(const char *path)
{
	char dir[PATH_MAX];
	size_t i, n = strlen(path);

	if (str_copy(dir, sizeof(dir), path, n) != 0)
		return cli_err("%s: path too long", path);
	for (i = 1; i <= n; i++) {
		if (dir[i] != '/' && dir[i] != '\0')
			continue;
		dir[i] = '\0';
		if (mkdir(dir, 0700) != 0 && errno != EEXIST)
			return cli_err("mkdir %s: %s", dir, strerror(errno));
		if (i < n)
			dir[i] = '/';
	}
	return 0;
}

/* Create the Maildir of a new user under STATE/mail. */
static int
cli_make_maildir(struct cli *cl, const char *address)
{
	char root[PATH_MAX], box[512], err[512];
	int fd, r;

	if (table_user_mailbox(cl->table, address, box, sizeof(box)) !=
	    TABLE_OK)
		return cli_err("%s", table_strerror(cl->table));
	if (str_fmt(root, sizeof(root), "%s/mail", cl->conf->state_dir) != 0)
		return cli_err("%s/mail: path too long", cl->conf->state_dir);
	if (cli_mkdirs(root) != 0)
		return 1;
	fd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return cli_err("%s: %s", root, strerror(errno));
	r = maildir_create(fd, box, err, sizeof(err));
	(void)close(fd);
	if (r != 0)
		return cli_err(
		    "user %s added, but its Maildir was not made: %s", address,
		    err);
	return 0;
}

/* ---- tern user --------------------------------------------------------- */

struct cli_args {
	char *pos[3]; /* positional arguments after the verb */
	int npos;
	bool password_stdin;
	bool hash_stdin;     /* user add/passwd --hash-stdin */
	const char *maildir; /* user add --maildir PATH */
	const char *lmtp;    /* user add --lmtp TARGET */
};

/* Split args into positionals (at most max) and known flags. */
static int
cli_parse_args(int argc, char **argv, int max, bool pw_flag, struct cli_args *a)
{
	int i;

	memset(a, 0, sizeof(*a));
	for (i = 0; i < argc; i++) {
		if (pw_flag && strcmp(argv[i], "--password-stdin") == 0)
			a->password_stdin = true;
		else if (pw_flag && strcmp(argv[i], "--hash-stdin") == 0)
			a->hash_stdin = true;
		else if (pw_flag && strcmp(argv[i], "--maildir") == 0) {
			if (++i == argc)
				return cli_usage_err("--maildir needs a PATH");
			a->maildir = argv[i];
		} else if (pw_flag && strncmp(argv[i], "--maildir=", 10) == 0) {
			a->maildir = argv[i] + 10;
		} else if (pw_flag && strcmp(argv[i], "--lmtp") == 0) {
			if (++i == argc)
				return cli_usage_err("--lmtp needs a TARGET");
			a->lmtp = argv[i];
		} else if (pw_flag && strncmp(argv[i], "--lmtp=", 7) == 0) {
			a->lmtp = argv[i] + 7;
		} else if (strncmp(argv[i], "--", 2) == 0)
			return cli_usage_err("unknown option %s", argv[i]);
		else if (a->npos >= max)
			return cli_usage_err("too many arguments");
		else
			a->pos[a->npos++] = argv[i];
	}
	return 0;
}

static int
cli_user_add(struct cli *cl, const struct cli_args *a)
{
	char box[512], *hash = NULL;
	const char *addr = a->pos[0];
	enum table_status st;
	int r;

	/* before asking for a password: is there any point? */
	st = table_user_mailbox(cl->table, addr, box, sizeof(box));
	if (st == TABLE_OK)
		return cli_err("user %s already exists", addr);
	if (st != TABLE_NOTFOUND)
		return cli_err("%s", table_strerror(cl->table));
	if ((r = cli_credential(
		 addr, a->password_stdin, a->hash_stdin, &hash)) < 0)
		return 1;
	st = table_user_add(cl->table, addr, hash);
	free(hash);
	if (st != TABLE_OK)
		return cli_err("%s", table_strerror(cl->table));
	if (a->lmtp != NULL &&
	    str_fmt(box, sizeof(box), "%s%s", TABLE_LMTP_PREFIX, a->lmtp) != 0)
		box[0] = '\0'; /* too long: refused just below */
	if ((a->lmtp != NULL || a->maildir != NULL) &&
	    table_user_set_maildir(cl->table, addr,
		a->lmtp != NULL ? box : a->maildir) != TABLE_OK) {
		int rc = cli_err("%s", table_strerror(cl->table));

		(void)table_user_del(cl->table, addr); /* all or nothing */
		return rc;
	}
	if (r == 1)
		cli_msg("note: %s has no password: it receives mail but cannot "
			"log in (set one with: tern user passwd %s)",
		    addr, addr);
	if (a->lmtp != NULL)
		return 0; /* the LMTP server keeps the mailbox */
	return cli_make_maildir(cl, addr);
}

static int
cli_user_passwd(struct cli *cl, const struct cli_args *a)
{
	char box[512], *hash = NULL;
	int r;

	/* ask for nothing if the user is not there */
	if (table_user_mailbox(cl->table, a->pos[0], box, sizeof(box)) !=
	    TABLE_OK)
		return cli_err("%s", table_strerror(cl->table));
	r = cli_credential(a->pos[0], a->password_stdin, a->hash_stdin, &hash);
	if (r == 1)
		return cli_err("no terminal to ask the password on; use "
			       "--password-stdin");
	if (r < 0)
		return 1;
	r = table_user_passwd(cl->table, a->pos[0], hash) == TABLE_OK
		? 0
		: cli_err("%s", table_strerror(cl->table));
	free(hash);
	return r;
}

static void
cli_print_user(const char *address, bool has_password, void *ctx)
{
	(void)has_password;
	(void)ctx;
	printf("%s\n", address);
}

static int
cli_user(struct cli *cl, int argc, char **argv)
{
	const char *verb = argc > 1 ? argv[1] : "";
	bool list = strcmp(verb, "list") == 0;
	struct cli_args a;
	int r;

	if (!list && strcmp(verb, "add") != 0 && strcmp(verb, "del") != 0 &&
	    strcmp(verb, "passwd") != 0)
		return cli_usage_err("user: expected add, del, list or passwd");
	if ((r = cli_parse_args(argc - 2, argv + 2, list ? 0 : 1,
		 strcmp(verb, "add") == 0 || strcmp(verb, "passwd") == 0,
		 &a)) != 0)
		return r;
	if (!list && a.npos != 1)
		return cli_usage_err("user %s: expected one ADDRESS", verb);
	if ((a.maildir != NULL || a.lmtp != NULL) && strcmp(verb, "add") != 0)
		return cli_usage_err("--maildir and --lmtp go with user add");
	if (a.maildir != NULL && a.lmtp != NULL)
		return cli_usage_err("--maildir or --lmtp, not both");
	if (a.password_stdin && a.hash_stdin)
		return cli_usage_err(
		    "--password-stdin or --hash-stdin, not both");
	if (cli_open_table(cl) != 0)
		return 1;
	if (list)
		return table_user_list(cl->table, cli_print_user, NULL) ==
			       TABLE_OK
			   ? 0
			   : cli_err("%s", table_strerror(cl->table));
	if (strcmp(verb, "add") == 0)
		return cli_user_add(cl, &a);
	if (strcmp(verb, "passwd") == 0)
		return cli_user_passwd(cl, &a);
	return table_user_del(cl->table, a.pos[0]) == TABLE_OK
		   ? 0
		   : cli_err("%s", table_strerror(cl->table));
}

/* ---- tern alias -------------------------------------------------------- */

/* The status of resolving address (LOOP matters; catch-alls: OK). */
static enum table_status
cli_alias_check(struct cli *cl, const char *address)
{
	struct table_targets tt = {0};
	struct addr a;
	enum table_status st;

	if (address[0] == '@' || addr_parse_mailbox(address, strlen(address),
				     ADDR_F_UTF8, &a) != ADDR_OK)
		return TABLE_OK;
	st = table_resolve(cl->table, &a, &tt);
	table_targets_free(&tt);
	return st;
}

/* Remove what this command added, after it made a loop. */
static int
cli_alias_undo(struct cli *cl, const char *address, char **added, int n)
{
	char why[512];
	int i;

	str_fmt_cut(why, sizeof(why), "%s", table_strerror(cl->table));
	for (i = 0; i < n; i++)
		if (table_alias_del(cl->table, address, added[i]) != TABLE_OK)
			cli_msg("could not undo %s -> %s: %s", address,
			    added[i], table_strerror(cl->table));
	return cli_err(
	    "%s: not added, it would make a loop (%s)", address, why);
}

static int
cli_alias_add(struct cli *cl, int argc, char **argv)
{
	const char *address = argv[0];
	char **added = xcalloc((size_t)argc, sizeof(char *));
	bool looped_before = cli_alias_check(cl, address) == TABLE_LOOP;
	int i, n = 0, rc = 0;
	struct addr a;

	for (i = 1; i < argc; i++)
		if (addr_parse_mailbox(
			argv[i], strlen(argv[i]), ADDR_F_UTF8, &a) != ADDR_OK) {
			free(added);
			return cli_err("\"%s\": not an address", argv[i]);
		}
	for (i = 1; i < argc; i++) {
		enum table_status st =
		    table_alias_add(cl->table, address, argv[i]);

		if (st == TABLE_OK)
			added[n++] = argv[i];
		else
			rc = cli_err("%s", table_strerror(cl->table));
		if (st != TABLE_OK && st != TABLE_EXISTS)
			break;
	}
	if (n > 0 && !looped_before &&
	    cli_alias_check(cl, address) == TABLE_LOOP)
		rc = cli_alias_undo(cl, address, added, n);
	free(added);
	return rc;
}

static int
cli_alias_del(struct cli *cl, int argc, char **argv)
{
	int i, rc = 0;

	if (argc == 1)
		return table_alias_del(cl->table, argv[0], NULL) == TABLE_OK
			   ? 0
			   : cli_err("%s", table_strerror(cl->table));
	for (i = 1; i < argc; i++)
		if (table_alias_del(cl->table, argv[0], argv[i]) != TABLE_OK)
			rc = cli_err("%s", table_strerror(cl->table));
	return rc;
}

static void
cli_print_alias(const char *address, const char *target, void *ctx)
{
	size_t *n = ctx;

	(*n)++;
	printf("%s\t%s\n", address, target);
}

static int
cli_alias_list(struct cli *cl, const char *address)
{
	size_t n = 0;

	if (table_alias_list(cl->table, address, cli_print_alias, &n) !=
	    TABLE_OK)
		return cli_err("%s", table_strerror(cl->table));
	if (address != NULL && n == 0)
		return cli_err("no such alias: %s", address);
	return 0;
}

static int
cli_alias(struct cli *cl, int argc, char **argv)
{
	const char *verb = argc > 1 ? argv[1] : "";
	int i;

	if (strcmp(verb, "add") != 0 && strcmp(verb, "del") != 0 &&
	    strcmp(verb, "list") != 0)
		return cli_usage_err("alias: expected add, del or list");
	for (i = 2; i < argc; i++)
		if (strncmp(argv[i], "--", 2) == 0)
			return cli_usage_err("unknown option %s", argv[i]);
	if (strcmp(verb, "add") == 0 && argc < 4)
		return cli_usage_err("alias add: expected ADDRESS TARGET...");
	if (strcmp(verb, "del") == 0 && argc < 3)
		return cli_usage_err("alias del: expected ADDRESS [TARGET...]");
	if (strcmp(verb, "list") == 0 && argc > 3)
		return cli_usage_err(
		    "alias list: expected at most one ADDRESS");
	if (cli_open_table(cl) != 0)
		return 1;
	if (strcmp(verb, "add") == 0)
		return cli_alias_add(cl, argc - 2, argv + 2);
	if (strcmp(verb, "del") == 0)
		return cli_alias_del(cl, argc - 2, argv + 2);
	return cli_alias_list(cl, argc == 3 ? argv[2] : NULL);
}

/* ---- the rest ---------------------------------------------------------- */

static void
cli_print_line(const char *line, void *ctx)
{
	(void)ctx;
	printf("%s\n", line);
}

static bool
cli_is_help(const char *s)
{
	return strcmp(s, "help") == 0 || strcmp(s, "--help") == 0 ||
	       strcmp(s, "-h") == 0;
}

static int
cli_run(struct cli *cl, int argc, char **argv)
{
	const char *cmd = argv[0];

	if (cli_is_help(cmd)) {
		fputs(cli_usage_text, stdout);
		return 0;
	}
	if (strcmp(cmd, "user") == 0)
		return cli_user(cl, argc, argv);
	if (strcmp(cmd, "alias") == 0)
		return cli_alias(cl, argc, argv);
	if (strcmp(cmd, "config") == 0) {
		if (argc > 1)
			return cli_usage_err("config takes no arguments but "
					     "check [-c FILE]");
		conf_dump(cl->conf, cli_print_line, NULL);
		return 0;
	}
	if (strcmp(cmd, "queue") == 0)
		return cli_queue(cl->conf, argc, argv);
	if (strcmp(cmd, "log") == 0)
		return cli_log(cl->conf, argc, argv);
	if (strcmp(cmd, "dkim") == 0)
		return cli_dkim(cl->conf, argc, argv);
	if (strcmp(cmd, "dmarc") == 0)
		return cli_dmarc(cl->conf, argc, argv);
	if (strcmp(cmd, "tlsrpt") == 0)
		return cli_tlsrpt(cl->conf, argc, argv);
	if (strcmp(cmd, "doctor") == 0)
		return cli_doctor(cl->conf, argc, argv);
	if (strcmp(cmd, "mailq") == 0)
		return cli_mailq(cl->conf, argc, argv);
	if (strcmp(cmd, "sendmail") == 0)
		return cli_sendmail(cl->conf, argc, argv);
	return cli_usage_err("unknown command \"%s\"", cmd);
}

/* Output that did not reach its file is a failure (tern user list >full). */
static int
cli_flush(int rc)
{
	if (fflush(stdout) != 0 || ferror(stdout))
		return cli_err("writing the output: %s", strerror(errno));
	return rc;
}

int
main(int argc, char **argv)
{
	const char *base = argc > 0 ? strrchr(argv[0], '/') : NULL;
	struct cli cl = {NULL, NULL};
	char err[512];
	int rc;

	log_init("tern", LOG_LEVEL_WARN);
	base = base != NULL ? base + 1 : (argc > 0 ? argv[0] : "tern");
	/* sendmail(1) flags are not ours to parse: -oi is no -o override */
	if (strcmp(base, "sendmail") == 0)
		return cli_flush(cli_persona_main(CLI_AS_SENDMAIL, argc, argv));
	if (strcmp(base, "mailq") == 0)
		return cli_flush(cli_persona_main(CLI_AS_MAILQ, argc, argv));
	if (argc > 1 && cli_is_help(argv[1])) {
		fputs(cli_usage_text, stdout);
		return cli_flush(0);
	}
	if (argc > 1 && strcmp(argv[1], "--version") == 0) {
		printf("tern %s rev %s\n", tern_version(), tern_revision());
		return cli_flush(0);
	}
	if (cli_is_config_check(argc, argv))
		return cli_flush(cli_config_check(argc, argv));
	if ((cl.conf = conf_from_args(&argc, &argv, err, sizeof(err))) == NULL)
		return cli_err("%s", err);
	rc = argc < 1 ? cli_usage_err("a command is needed")
		      : cli_run(&cl, argc, argv);
	table_close(cl.table);
	conf_free(cl.conf);
	return cli_flush(rc);
}
