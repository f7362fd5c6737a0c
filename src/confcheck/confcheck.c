/*
 * confcheck: what ternd checks of a configuration beyond conf.c's syntax
 * and ranges, by reading the files it names (see confcheck.h).
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "confcheck/confcheck.h"
#include "mailauth/psl.h"
#include "tls/tls.h"
#include "util/util.h"

static void reportf(void (*report)(void *, const char *), void *rctx,
    unsigned *n, const char *fmt, ...) PRINTF_LIKE(4, 5);

static void
reportf(void (*report)(void *, const char *), void *rctx, unsigned *n,
    const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	str_vfmt_cut(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	report(rctx, msg);
	(*n)++;
}

static void
check_readable(const char *key, const char *path,
    void (*report)(void *, const char *), void *rctx, unsigned *n)
{
	if (path != NULL && access(path, R_OK) != 0)
		reportf(report, rctx, n,
		    "%s: cannot read %s: %s (fix the path or the file's "
		    "permissions: ternd reads it as its user)",
		    key, path, strerror(errno));
}

/* tables.users = sqlite:PATH: its directory must exist (ternd makes the
 * file); a pgsql: table is only reached by connecting, at start. */
static void
check_table(const struct conf *cf, void (*report)(void *, const char *),
    void *rctx, unsigned *n)
{
	char dir[4096];
	struct stat st;
	const char *p;

	if (cf->tables_users == NULL ||
	    strncmp(cf->tables_users, "sqlite:", 7) != 0)
		return;
	p = cf->tables_users + 7;
	if (str_copy(dir, sizeof(dir), p, strlen(p)) != 0)
		return;
	if (stat(p, &st) == 0) {
		check_readable("tables.users", p, report, rctx, n);
		return;
	}
	/* its directory: state_dir's is made at start, others must exist */
	if (strncmp(p, cf->state_dir, strlen(cf->state_dir)) != 0 &&
	    stat(dirname(dir), &st) != 0)
		reportf(report, rctx, n,
		    "tables.users: the directory of %s does not exist: %s "
		    "(make it, or point the table elsewhere)",
		    p, strerror(errno));
}

/* The running configuration's own password file may be root-only (ternd
 * read it as root at start): the reload decides (server/qmgr.c). */
static bool
same_password_file(const struct conf *cf, const struct conf *running)
{
	return running != NULL && cf->relay_smarthost_password_file != NULL &&
	       running->relay_smarthost_password_file != NULL &&
	       strcmp(cf->relay_smarthost_password_file,
		   running->relay_smarthost_password_file) == 0;
}

/* The outbound trust store, for `tern config check`: a reload loads it
 * itself, before the switch (server/qsettings.c, step=delivery). */
static void
check_trust_store(const struct conf *cf, void (*report)(void *, const char *),
    void *rctx, unsigned *n)
{
	char err[PATH_MAX + 256];
	SSL_CTX *ctx;

	if (cf->tls_ca_file == NULL && cf->tls_ca_path == NULL)
		return;
	if ((ctx = tls_client_ctx_store(false, cf->tls_ca_file, cf->tls_ca_path,
		 err, sizeof(err))) == NULL)
		reportf(report, rctx, n,
		    "tls.ca_file, tls.ca_path: %s (a PEM file of CA "
		    "certificates, a directory hashed by openssl rehash, "
		    "readable by ternd's user)",
		    err);
	SSL_CTX_free(ctx);
}

unsigned
confcheck_run(const struct conf *cf, const struct conf *running,
    void (*report)(void *, const char *), void *rctx)
{
	char err[512];
	SSL_CTX *ctx;
	bool gen = false;
	unsigned n = 0;

	/* the admin's pair; the self-signed one (no tls.cert) is ternd's,
	   and so is the pair ACME writes (acme.directory: server/acmed.h),
	   which may not be there yet */
	if (cf->tls_cert != NULL && cf->acme_directory == NULL) {
		if ((ctx = tls_server_ctx(cf->tls_cert, cf->tls_key,
			 cf->state_dir, cf->hostname, &gen, err,
			 sizeof(err))) == NULL)
			reportf(report, rctx, &n,
			    "tls.cert, tls.key: %s (check that both files "
			    "exist, are readable by ternd's user and belong "
			    "together)",
			    err);
		SSL_CTX_free(ctx);
	}
	check_readable("relay.smarthost_ca_file", cf->relay_smarthost_ca_file,
	    report, rctx, &n);
	if (running == NULL)
		check_trust_store(cf, report, rctx, &n);
	if (!same_password_file(cf, running))
		check_readable("relay.smarthost_password_file",
		    cf->relay_smarthost_password_file, report, rctx, &n);
	if (cf->dmarc_check || cf->dmarc_reports)
		check_readable("dmarc.public_suffix_list",
		    cf->dmarc_public_suffix_list != NULL
			? cf->dmarc_public_suffix_list
			: PSL_DEFAULT_PATH,
		    report, rctx, &n);
	check_table(cf, report, rctx, &n);
	return n;
}
