/*
 * tern dkim: DKIM signing keys (RFC 6376, RFC 8463).
 *
 *   tern dkim keygen DOMAIN [--selector S] [--algorithm rsa|ed25519]
 *                           [--bits N]
 *   tern dkim list
 *
 * Layout: STATE/dkim/DOMAIN/SELECTOR.ALG.key, ALG "rsa" or "ed25519", a
 * PKCS#8 PEM private key, mode 0600, in directories of mode 0700.  One
 * file per selector: a selector names one TXT record, so one key.  Run as
 * root with "user" configured, tern becomes that user first, so the files
 * are ternd's.  keygen never overwrites a key (O_EXCL), and refuses a
 * selector already used by a key of the other algorithm.
 *
 * The default selector is dated, tern-ALG-YYYYMM ("tern-rsa-202612"), so
 * a new key made for a rotation gets a new name and both can be published
 * at once; the date is UTC.  The default algorithm is rsa, 2048 bits:
 * every verifier checks RSA, while many still ignore Ed25519 (RFC 8463
 * signers are asked to sign with both: keygen a second key with
 * --algorithm ed25519, and ternd signs with both).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "cli/cli.h"
#include "mailauth/dkim.h"

#define DKIM_KEY_FILE_MAX (16 * 1024) /* a 4096-bit PEM is 3.3 kB */
#define DKIM_TXT_STRING	  255	      /* octets of one TXT string (RFC 1035) */

static const char dk_usage[] = "usage: tern dkim keygen DOMAIN [--selector S] "
			       "[--algorithm rsa|ed25519] [--bits N]\n"
			       "       tern dkim list\n";

struct dk_args {
	const char *domain, *selector, *alg;
	unsigned bits;
};

static int
dk_usage_err(const char *what)
{
	cli_warnx("dkim: %s", what);
	fputs(dk_usage, stderr);
	return EX_USAGE;
}

/* A DNS name of letters, digits, '-' and '.' ('_' too in a selector),
 * lower-cased in place. */
static bool
dk_name_ok(char *s, bool selector)
{
	size_t n = strlen(s), k;
	char prev = '.';

	if (n == 0 || n > 200)
		return false;
	for (k = 0; k < n; k++) {
		char c = s[k];

		if (c >= 'A' && c <= 'Z')
			s[k] = c = (char)(c - 'A' + 'a');
		if (c == '.'
			? prev == '.'
			: !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			      c == '-' || (selector && c == '_')))
			return false;
		prev = c;
	}
	return prev != '.' && s[0] != '-';
}

static int
dk_parse(int argc, char **argv, struct dk_args *a)
{
	int i;

	memset(a, 0, sizeof(*a));
	a->alg = "rsa";
	a->bits = 2048;
	for (i = 0; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(argv[i], "--selector") == 0 && v != NULL)
			a->selector = argv[++i];
		else if (strcmp(argv[i], "--algorithm") == 0 && v != NULL)
			a->alg = argv[++i];
		else if (strcmp(argv[i], "--bits") == 0 && v != NULL) {
			char *end;
			unsigned long b = strtoul(v, &end, 10);

			if (*end != '\0' || b < DKIM_RSA_BITS_MIN ||
			    b > DKIM_RSA_BITS_MAX)
				return dk_usage_err("--bits: 1024 to 4096");
			a->bits = (unsigned)b;
			i++;
		} else if (argv[i][0] == '-')
			return dk_usage_err("unknown option or missing value");
		else if (a->domain == NULL)
			a->domain = argv[i];
		else
			return dk_usage_err("one DOMAIN only");
	}
	if (a->domain == NULL)
		return dk_usage_err("keygen needs a DOMAIN");
	if (strcmp(a->alg, "rsa") != 0 && strcmp(a->alg, "ed25519") != 0)
		return dk_usage_err("--algorithm is rsa or ed25519");
	return 0;
}

/* ---- the record ---------------------------------------------------------- */

/*
 * The zone-file line: NAME. IN TXT ( "..." "..." ), the value cut into
 * strings of at most 255 octets (RFC 1035 3.3.14; verifiers join them,
 * RFC 6376 3.6.2.2).
 */
static void
dk_print_record(const char *selector, const char *domain, const char *rec)
{
	size_t n = strlen(rec), k;

	printf("%s._domainkey.%s. IN TXT (", selector, domain);
	for (k = 0; k < n; k += DKIM_TXT_STRING)
		printf(" \"%.*s\"",
		    (int)(n - k < DKIM_TXT_STRING ? n - k : DKIM_TXT_STRING),
		    rec + k);
	printf(" )\n");
}

static int
dk_record(EVP_PKEY *k, char *out, size_t outlen, unsigned *bits)
{
	struct buf b;
	int rc;

	buf_init(&b, outlen - 1);
	rc = dkim_pkey_record(k, &b, bits) == 0 &&
		     str_copy(out, outlen, b.data, b.len) == 0
		 ? 0
		 : -1;
	buf_free(&b);
	return rc;
}

/* ---- keygen ----------------------------------------------------------------
 */

static int
dk_mkdir(const char *path)
{
	if (mkdir(path, 0700) != 0 && errno != EEXIST) {
		cli_warnx("mkdir %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Write pem to path, created exclusively, 0600, fsync'ed. */
static int
dk_write_new(const char *path, const char *pem, size_t len)
{
	int fd = open(
	    path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	size_t off = 0;
	ssize_t w;

	if (fd < 0) {
		cli_warnx("%s: %s%s", path, strerror(errno),
		    errno == EEXIST ? " (keys are never overwritten)" : "");
		return -1;
	}
	while (off < len) {
		w = write(fd, pem + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	if (off != len || fsync(fd) != 0) {
		cli_warnx("%s: %s", path, strerror(errno));
		fd_close_quiet(fd);
		(void)unlink(path);
		return -1;
	}
	if (close(fd) != 0) {
		cli_warnx("%s: %s", path, strerror(errno));
		(void)unlink(path);
		return -1;
	}
	return 0;
}

static EVP_PKEY *
dk_generate(const struct dk_args *a)
{
	if (strcmp(a->alg, "ed25519") == 0)
		return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)a->bits);
}

/* The PEM text of k into a buffer; NULL on failure.  Caller wipes. */
static char *
dk_pem(EVP_PKEY *k, size_t *len)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *p, *copy = NULL;
	long n;

	if (bio != NULL &&
	    PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL) == 1 &&
	    (n = BIO_get_mem_data(bio, &p)) > 0) {
		copy = xmalloc((size_t)n);
		memcpy(copy, p, (size_t)n);
		*len = (size_t)n;
	}
	BIO_free(bio);
	return copy;
}

static int
dk_keygen(const struct conf *c, struct dk_args *a)
{
	char dom[256], sel[256], path[4096], other[4096], rec[2048];
	char *pem;
	size_t pem_len;
	unsigned bits;
	EVP_PKEY *k;
	time_t now = time(NULL);
	struct tm tm;
	int rc;

	if (str_copy(dom, sizeof(dom), a->domain, strlen(a->domain)) != 0 ||
	    !dk_name_ok(dom, false))
		return dk_usage_err("DOMAIN is not a domain name");
	if (a->selector != NULL) {
		if (str_copy(sel, sizeof(sel), a->selector,
			strlen(a->selector)) != 0 ||
		    !dk_name_ok(sel, true))
			return dk_usage_err("--selector is not a DNS label");
	} else if (gmtime_r(&now, &tm) == NULL ||
		   str_fmt(sel, sizeof(sel), "tern-%s-%04d%02d", a->alg,
		       tm.tm_year + 1900, tm.tm_mon + 1) != 0) {
		return dk_usage_err("no date for the default selector");
	}
	if (cli_become_user(c) != 0)
		return 1;
	umask(077);
	if (dk_mkdir(c->state_dir) != 0 ||
	    str_fmt(path, sizeof(path), "%s/dkim", c->state_dir) != 0 ||
	    dk_mkdir(path) != 0 ||
	    str_fmt(path, sizeof(path), "%s/dkim/%s", c->state_dir, dom) != 0 ||
	    dk_mkdir(path) != 0)
		return 1;
	str_fmt_cut(other, sizeof(other), "%s/%s.%s.key", path, sel,
	    strcmp(a->alg, "rsa") == 0 ? "ed25519" : "rsa");
	if (access(other, F_OK) == 0) {
		cli_warnx("selector %s is taken by %s: one key per selector",
		    sel, other);
		return 1;
	}
	if (str_fmt(path, sizeof(path), "%s/dkim/%s/%s.%s.key", c->state_dir,
		dom, sel, a->alg) != 0)
		return 1;
	if ((k = dk_generate(a)) == NULL) {
		cli_warnx("key generation failed");
		return 1;
	}
	pem = dk_pem(k, &pem_len);
	rc = pem == NULL || dk_record(k, rec, sizeof(rec), &bits) != 0 ||
	     dk_write_new(path, pem, pem_len) != 0;
	if (pem != NULL) {
		explicit_bzero(pem, pem_len);
		free(pem);
	}
	EVP_PKEY_free(k);
	if (rc)
		return 1;
	printf(
	    "# %s: %s key of %u bits written to %s\n", dom, a->alg, bits, path);
	printf("# publish this TXT record, then sign:\n");
	dk_print_record(sel, dom, rec);
	return 0;
}

/* ---- list ------------------------------------------------------------------
 */

/* SELECTOR.ALG.key: selector and algorithm, or false. */
static bool
dk_file_name(const char *name, char *sel, size_t sellen, const char **alg)
{
	size_t n = strlen(name);
	const char *dot;

	if (n < 5 || strcmp(name + n - 4, ".key") != 0)
		return false;
	if (n > 12 && strncmp(name + n - 12, ".ed25519.key", 12) == 0) {
		*alg = "ed25519";
		dot = name + n - 12;
	} else if (n > 8 && strncmp(name + n - 8, ".rsa.key", 8) == 0) {
		*alg = "rsa";
		dot = name + n - 8;
	} else {
		return false;
	}
	return str_copy(sel, sellen, name, (size_t)(dot - name)) == 0;
}

static EVP_PKEY *
dk_load(const char *path)
{
	char pem[DKIM_KEY_FILE_MAX], err[128];
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	ssize_t n;
	EVP_PKEY *k;

	if (fd < 0) {
		cli_warnx("%s: %s", path, strerror(errno));
		return NULL;
	}
	n = read(fd, pem, sizeof(pem));
	(void)close(fd);
	if (n <= 0 || (size_t)n == sizeof(pem)) {
		cli_warnx("%s: unreadable or too large", path);
		return NULL;
	}
	k = dkim_pkey_from_pem(pem, (size_t)n, err, sizeof(err));
	explicit_bzero(pem, sizeof(pem));
	if (k == NULL)
		cli_warnx("%s: %s", path, err);
	return k;
}

static int
dk_list_domain(const char *root, const char *dom)
{
	char dir[4096], path[4096], sel[256], rec[2048];
	const char *alg;
	struct dirent *e;
	unsigned bits;
	int rc = 0;
	DIR *d;

	if (str_fmt(dir, sizeof(dir), "%s/%s", root, dom) != 0 ||
	    (d = opendir(dir)) == NULL)
		return 0; /* not a directory */
	while ((e = readdir(d)) != NULL) {
		EVP_PKEY *k;

		if (!dk_file_name(e->d_name, sel, sizeof(sel), &alg) ||
		    str_fmt(path, sizeof(path), "%s/%s", dir, e->d_name) != 0)
			continue;
		if ((k = dk_load(path)) == NULL) {
			rc = 1;
			continue;
		}
		if (dk_record(k, rec, sizeof(rec), &bits) == 0) {
			printf("%s %s %s %u\n", dom, sel, alg, bits);
			dk_print_record(sel, dom, rec);
		} else {
			rc = 1;
		}
		EVP_PKEY_free(k);
	}
	closedir(d);
	return rc;
}

static int
dk_list(const struct conf *c)
{
	char root[4096];
	struct dirent *e;
	int rc = 0;
	DIR *d;

	if (cli_become_user(c) != 0)
		return 1;
	if (str_fmt(root, sizeof(root), "%s/dkim", c->state_dir) != 0)
		return 1;
	if ((d = opendir(root)) == NULL) {
		if (errno == ENOENT)
			return 0; /* no key yet */
		cli_warnx("%s: %s", root, strerror(errno));
		return 1;
	}
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			rc |= dk_list_domain(root, e->d_name);
	closedir(d);
	return rc;
}

int
cli_dkim(const struct conf *c, int argc, char **argv)
{
	struct dk_args a;
	int rc;

	if (argc < 2)
		return dk_usage_err("keygen or list");
	if (strcmp(argv[1], "list") == 0) {
		if (argc > 2)
			return dk_usage_err("list takes no arguments");
		return dk_list(c);
	}
	if (strcmp(argv[1], "keygen") != 0)
		return dk_usage_err("keygen or list");
	if ((rc = dk_parse(argc - 2, argv + 2, &a)) != 0)
		return rc;
	return dk_keygen(c, &a);
}
