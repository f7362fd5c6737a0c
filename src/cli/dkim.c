/*
 * tern dkim: DKIM signing keys (RFC 6376, RFC 8463).
 *
 *   tern dkim keygen DOMAIN [--selector S] [--algorithm rsa|ed25519]
 *                           [--bits N]
 *   tern dkim list
 *   tern dkim activate DOMAIN SELECTOR
 *   tern dkim check DOMAIN [SELECTOR]
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
 *
 * Which keys sign is the rule of mailauth/dkimsel.h, kept in
 * STATE/dkim/DOMAIN/active: keygen makes the first key of an algorithm
 * active and a later one inactive, for `activate` once its record is
 * published (it then asks ternd to reload over control.sock).  `check`
 * looks the record up (dns.servers, or the system resolver) and compares
 * it with the key on disk.
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

#include <event2/event.h>

#include "cli/cli.h"
#include "cli/resolve.h"
#include "deliver/dns.h"
#include "fs/versions.h"
#include "mailauth/dkim.h"
#include "mailauth/dkimsel.h"

#define DKIM_KEY_FILE_MAX (16 * 1024) /* a 4096-bit PEM is 3.3 kB */
#define DKIM_TXT_STRING	  255	      /* octets of one TXT string (RFC 1035) */

static const char dk_usage[] = "usage: tern dkim keygen DOMAIN [--selector S] "
			       "[--algorithm rsa|ed25519] [--bits N]\n"
			       "       tern dkim list\n"
			       "       tern dkim activate DOMAIN SELECTOR\n"
			       "       tern dkim check DOMAIN [SELECTOR]\n";

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

struct dk_domain;
static int dk_domain_read(
    const struct conf *c, const char *dom, struct dk_domain *d);
static int dk_keygen_active(const struct dk_domain *before, const char *dom,
    const char *sel, const char *alg);
static struct dk_domain *dk_domain_new(void);

static int
dk_keygen(const struct conf *c, struct dk_args *a)
{
	struct dk_domain *before;
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
	if (dk_domain_read(c, dom, before = dk_domain_new()) != 0) {
		free(before);
		return 1;
	}
	if ((k = dk_generate(a)) == NULL) {
		cli_warnx("key generation failed");
		free(before);
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
	if (rc) {
		free(before);
		return 1;
	}
	printf(
	    "# %s: %s key of %u bits written to %s\n", dom, a->alg, bits, path);
	rc = dk_keygen_active(before, dom, sel, a->alg);
	free(before);
	printf("# the TXT record to publish:\n");
	dk_print_record(sel, dom, rec);
	return rc;
}

/* ---- a domain's keys --------------------------------------------------
 */

struct dk_domain {
	char dir[4096];
	struct dkimsel_key keys[DKIMSEL_KEYS_MAX];
	size_t n;
};

static struct dk_domain *
dk_domain_new(void)
{
	return xcalloc(1, sizeof(struct dk_domain));
}

/* Print the rule's warnings (one a line) for dir. */
static void
dk_warn_lines(const char *dir, const struct buf *warn)
{
	const char *p = warn->data, *nl;

	while (p != NULL && *p != '\0' && (nl = strchr(p, '\n')) != NULL) {
		cli_warnx("%s: %.*s", dir, (int)(nl - p), p);
		p = nl + 1;
	}
}

/*
 * STATE/dkim/dom: its key files and which are active (dkimsel_choose).
 * 0 (a missing folder has no keys), or 1 after a message.
 */
static int
dk_domain_read(const struct conf *c, const char *dom, struct dk_domain *d)
{
	char path[4096], active[DKIMSEL_ACTIVE_MAX];
	struct dirent *e;
	struct buf warn;
	ssize_t alen = -1;
	int fd;
	DIR *dir;

	d->n = 0;
	if (str_fmt(d->dir, sizeof(d->dir), "%s/dkim/%s", c->state_dir, dom) !=
	    0)
		return 1;
	if ((dir = opendir(d->dir)) == NULL) {
		if (errno == ENOENT)
			return 0;
		cli_warnx("%s: %s", d->dir, strerror(errno));
		return 1;
	}
	while ((e = readdir(dir)) != NULL && d->n + 1 < DKIMSEL_KEYS_MAX)
		if (dkimsel_file_name(e->d_name, &d->keys[d->n]))
			d->n++;
	closedir(dir);
	if (str_fmt(path, sizeof(path), "%s/active", d->dir) != 0)
		return 1;
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) >= 0) {
		alen = read(fd, active, sizeof(active) - 1);
		(void)close(fd);
		if (alen < 0) {
			cli_warnx("%s: %s", path, strerror(errno));
			return 1;
		}
	} else if (errno != ENOENT) {
		cli_warnx("%s: %s", path, strerror(errno));
		return 1;
	}
	buf_init(&warn, 8192);
	dkimsel_choose(d->keys, d->n, alen >= 0 ? active : NULL,
	    alen >= 0 ? (size_t)alen : 0, &warn);
	dk_warn_lines(d->dir, &warn);
	buf_free(&warn);
	return 0;
}

/* Replace dir/active with text: a new file, fsync'ed, renamed over. */
static int
dk_active_write(const char *dir, const struct buf *text)
{
	char tmp[4096], path[4096];

	if (str_fmt(tmp, sizeof(tmp), "%s/active.new", dir) != 0 ||
	    str_fmt(path, sizeof(path), "%s/active", dir) != 0)
		return -1;
	if (unlink(tmp) != 0 && errno != ENOENT) {
		cli_warnx("%s: %s", tmp, strerror(errno));
		return -1;
	}
	if (dk_write_new(tmp, text->data ? text->data : "", text->len) != 0)
		return -1;
	if (rename(tmp, path) != 0) {
		cli_warnx("%s: %s", path, strerror(errno));
		(void)unlink(tmp);
		return -1;
	}
	return 0;
}

/* The active file text of d as it is now (the selectors that sign). */
static int
dk_active_text(const struct dk_domain *d, struct buf *out)
{
	size_t k;

	for (k = 0; k < d->n; k++)
		if (d->keys[k].active &&
		    buf_printf(out, "%s\n", d->keys[k].selector) != 0)
			return -1;
	return 0;
}

/*
 * keygen's step after the key is written: the first key of its
 * algorithm in the domain signs at once (nothing signed before, so an
 * unpublished record loses nothing); a later one waits for `activate`.
 */
static int
dk_keygen_active(const struct dk_domain *before, const char *dom,
    const char *sel, const char *alg)
{
	enum dkim_key_type t =
	    strcmp(alg, "ed25519") == 0 ? DKIM_KEY_ED25519 : DKIM_KEY_RSA;
	bool first = true;
	struct buf text;
	size_t k;
	int rc;

	for (k = 0; k < before->n; k++)
		if (before->keys[k].type == t)
			first = false;
	buf_init(&text, DKIMSEL_ACTIVE_MAX);
	rc = dk_active_text(before, &text) != 0 ||
	     (first && buf_printf(&text, "%s\n", sel) != 0) ||
	     dk_active_write(before->dir, &text) != 0;
	buf_free(&text);
	if (rc)
		return 1;
	if (first)
		printf("# %s: the first %s key of %s: active; publish the "
		       "record, then run `tern dkim activate %s %s` (it also "
		       "tells ternd)\n",
		    sel, alg, dom, dom, sel);
	else
		printf("# %s: inactive (%s already has a %s key): publish "
		       "the record, check it with `tern dkim check %s %s`, "
		       "then run `tern dkim activate %s %s`\n",
		    sel, dom, alg, dom, sel, dom, sel);
	return 0;
}

/* ---- list ------------------------------------------------------------------
 */

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

static EVP_PKEY *
dk_load_key(const struct dk_domain *d, const struct dkimsel_key *k)
{
	char path[4096];

	if (str_fmt(path, sizeof(path), "%s/%s.%s.key", d->dir, k->selector,
		dkimsel_type_name(k->type)) != 0)
		return NULL;
	return dk_load(path);
}

static int
dk_list_domain(const struct conf *c, const char *dom)
{
	struct dk_domain *d = xmalloc(sizeof(*d));
	char rec[2048];
	unsigned bits;
	size_t i;
	int rc;

	rc = dk_domain_read(c, dom, d);
	for (i = 0; rc == 0 && i < d->n; i++) {
		EVP_PKEY *k = dk_load_key(d, &d->keys[i]);

		if (k == NULL) {
			rc = 1;
			continue;
		}
		if (dk_record(k, rec, sizeof(rec), &bits) == 0) {
			printf("%s %s %s %u %s\n", dom, d->keys[i].selector,
			    dkimsel_type_name(d->keys[i].type), bits,
			    d->keys[i].active ? "active" : "inactive");
			dk_print_record(d->keys[i].selector, dom, rec);
		} else {
			rc = 1;
		}
		EVP_PKEY_free(k);
	}
	free(d);
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
			rc |= dk_list_domain(c, e->d_name);
	closedir(d);
	return rc;
}

/* ---- activate --------------------------------------------------------------
 */

/* Ask a running ternd to load its keys again (control DKIM-RELOAD). */
static void
dk_reload(const struct conf *c)
{
	static const char req[] = "DKIM-RELOAD\n";
	char path[4096], ans[512];
	ssize_t n = -1;
	int fd;

	if (cli_sock_path(c, CLI_CONTROL_SOCK, path, sizeof(path)) != 0)
		return;
	if ((fd = cli_connect(path, " (ternd reads the keys when it "
				    "starts)")) < 0)
		return;
	if (cli_write_all(fd, req, sizeof(req) - 1) == 0 &&
	    cli_wait_readable(fd, CLI_TIMEOUT_MS) > 0)
		n = read(fd, ans, sizeof(ans) - 1);
	(void)close(fd);
	if (n > 0 && (ans[n] = '\0', strstr(ans, "\"ok\":true") != NULL))
		printf("ternd reloaded its DKIM keys\n");
	else
		cli_warnx("ternd did not confirm the reload: send it SIGHUP");
}

static int
dk_activate(const struct conf *c, char *dom, char *sel)
{
	struct dk_domain *d;
	struct buf text;
	int rc = 1;

	if (!dk_name_ok(dom, false) || !dk_name_ok(sel, true))
		return dk_usage_err("activate DOMAIN SELECTOR");
	if (cli_become_user(c) != 0)
		return 1;
	d = xmalloc(sizeof(*d));
	buf_init(&text, DKIMSEL_ACTIVE_MAX);
	if (dk_domain_read(c, dom, d) != 0)
		goto out;
	if (dkimsel_activate(d->keys, d->n, sel, &text) != 0) {
		cli_warnx("%s has no key with selector %s (tern dkim list)",
		    dom, sel);
		goto out;
	}
	if (dk_active_write(d->dir, &text) != 0)
		goto out;
	printf("%s %s: active\n", dom, sel);
	rc = 0;
	dk_reload(c);
out:
	buf_free(&text);
	free(d);
	return rc;
}

/* ---- check -----------------------------------------------------------------
 */

struct cli_resolver {
	struct event_base *base;
	struct dns *dns;
};

struct cli_resolver *
cli_resolver_new(const struct conf *c, unsigned timeout_ms)
{
	struct cli_resolver *r = xcalloc(1, sizeof(*r));
	char err[256];

	if ((r->base = event_base_new()) == NULL) {
		cli_warnx("resolver: no event loop");
		free(r);
		return NULL;
	}
	if ((r->dns = dns_new(r->base, c->dns_servers, err, sizeof(err))) ==
	    NULL) {
		cli_warnx("resolver: %s", err);
		cli_resolver_free(r);
		return NULL;
	}
	if (timeout_ms > 0 && dns_set_timeout(r->dns, timeout_ms) != 0)
		panic("event=resolver error=\"timeout set while busy\"");
	return r;
}

void
cli_resolver_free(struct cli_resolver *r)
{
	if (r == NULL)
		return;
	dns_free(r->dns);
	if (r->base != NULL)
		event_base_free(r->base);
	free(r);
}

struct dk_pending {
	bool done;
	struct cli_dns_answer *a;
};

static void
dk_on_answer(const struct dns_answer *ans, void *arg)
{
	struct dk_pending *p = arg;
	struct cli_dns_answer *l = p->a;
	size_t i, used = 0;

	p->done = true;
	l->rcode = ans->rcode;
	l->reason = ans->reason;
	l->n = 0;
	for (i = 0; i < ans->n; i++) {
		const struct dns_rr *rr = &ans->rrs[i];
		bool join = rr->txt_continue && l->n > 0;

		if (used + rr->len + 1 > sizeof(l->recs))
			break;
		if (join) {
			used--; /* over the NUL of the record it continues */
		} else {
			if (l->n == DNS_ANSWER_RRS)
				break;
			l->off[l->n] = used;
			l->len[l->n++] = 0;
		}
		memcpy(l->recs + used, rr->data, rr->len);
		used += rr->len;
		l->recs[used++] = '\0';
		l->len[l->n - 1] += rr->len;
	}
}

void
cli_resolve(struct cli_resolver *r, enum dns_qtype type, const char *name,
    struct cli_dns_answer *a)
{
	struct dk_pending p = {false, a};

	a->n = 0;
	a->rcode = DNS_ANS_TEMP;
	a->reason = DNS_REASON_RESOLVER;
	dns_lookup(r->dns, type, name, dk_on_answer, &p);
	while (!p.done && event_base_loop(r->base, EVLOOP_ONCE) == 0)
		;
	if (!p.done)
		(void)dns_cancel(r->dns, &p);
}

/* One key against its published record: out filled, 0 ok, 1 otherwise. */
static int
dk_check_key(struct cli_resolver *r, const char *dom, const struct dk_domain *d,
    const struct dkimsel_key *k, struct cli_dns_answer *l,
    struct cli_dkim_check *out)
{
	const char *err = NULL;
	struct dkim_key ours, pub;
	EVP_PKEY *pk = dk_load_key(d, k);
	size_t i;
	bool found = false;

	memset(out, 0, sizeof(*out));
	out->domain = dom;
	out->selector = k->selector;
	out->alg = dkimsel_type_name(k->type);
	out->active = k->active;
	out->verdict = "missing";
	str_fmt_cut(
	    out->name, sizeof(out->name), "%s._domainkey.%s", k->selector, dom);
	if (pk == NULL ||
	    dk_record(pk, out->rec, sizeof(out->rec), NULL) != 0 ||
	    dkim_key_parse(out->rec, strlen(out->rec), &ours, &err) !=
		DKIM_PASS) {
		EVP_PKEY_free(pk);
		out->verdict = "error";
		str_fmt_cut(out->why, sizeof(out->why), "the key file");
		return 1;
	}
	EVP_PKEY_free(pk);
	cli_resolve(r, DNS_Q_TXT, out->name, l);
	if (l->rcode == DNS_ANS_TEMP) {
		out->verdict = "error";
		str_fmt_cut(out->why, sizeof(out->why), "DNS %s, try again",
		    dns_reason_name(l->reason));
	} else if (l->rcode == DNS_ANS_NXDOMAIN || l->n == 0) {
		str_fmt_cut(out->why, sizeof(out->why), "no TXT record at %s",
		    out->name);
	} else {
		out->verdict = "mismatch";
		for (i = 0; i < l->n && !found; i++) {
			enum dkim_result res = dkim_key_parse(
			    l->recs + l->off[i], l->len[i], &pub, &err);

			if (res != DKIM_PASS) {
				str_fmt_cut(out->why, sizeof(out->why),
				    "the record is not a DKIM key: %s", err);
				continue;
			}
			if (pub.revoked) {
				out->verdict = "revoked";
				str_fmt_cut(out->why, sizeof(out->why),
				    "p= is empty: the key is withdrawn");
			} else if (pub.type == ours.type &&
				   EVP_PKEY_eq(pub.pkey, ours.pkey) == 1) {
				out->verdict = "ok";
				found = true;
				str_fmt_cut(out->why, sizeof(out->why), "%s",
				    pub.testing ? "published, t=y (testing)"
						: "published");
			} else {
				str_fmt_cut(out->why, sizeof(out->why),
				    "the published p= is another key");
			}
			dkim_key_clear(&pub);
		}
	}
	dkim_key_clear(&ours);
	return strcmp(out->verdict, "ok") == 0 ? 0 : 1;
}

/*
 * Every key of dom (or only the one named sel), each handed to fn: the
 * number checked, or -1 after a message.  *bad: some key that matters
 * (active, or named) is not published as it is on disk.
 */
static int
dk_check_keys(const struct conf *c, struct cli_resolver *r, const char *dom,
    const char *sel, void (*fn)(const struct cli_dkim_check *, void *),
    void *arg, bool *bad)
{
	struct dk_domain *d = xmalloc(sizeof(*d));
	struct cli_dns_answer *l = xmalloc(sizeof(*l));
	struct cli_dkim_check *out = xmalloc(sizeof(*out));
	int checked = 0;
	size_t i;

	*bad = false;
	if (dk_domain_read(c, dom, d) != 0) {
		checked = -1;
		goto out;
	}
	for (i = 0; i < d->n; i++) {
		if (sel != NULL && strcmp(d->keys[i].selector, sel) != 0)
			continue;
		checked++;
		if (dk_check_key(r, dom, d, &d->keys[i], l, out) != 0 &&
		    (sel != NULL || d->keys[i].active))
			*bad = true;
		fn(out, arg);
	}
out:
	free(out);
	free(l);
	free(d);
	return checked;
}

int
cli_dkim_check_domain(const struct conf *c, struct cli_resolver *r,
    const char *dom, void (*fn)(const struct cli_dkim_check *, void *),
    void *arg)
{
	bool bad;

	return dk_check_keys(c, r, dom, NULL, fn, arg, &bad);
}

static void
dk_print_check(const struct cli_dkim_check *k, void *arg)
{
	(void)arg;
	printf("%s %s %s %s: %s (%s)\n", k->domain, k->selector, k->alg,
	    k->active ? "active" : "inactive", k->verdict, k->why);
}

/*
 * Every key of dom (or the one selector named): 0 when each checked key
 * that matters is published as it is on disk.  Without SELECTOR, an
 * inactive key is shown but does not make the exit status (its record
 * may not be out yet); named, it does.
 */
static int
dk_check(const struct conf *c, char *dom, char *sel)
{
	struct cli_resolver *r;
	bool bad = false;
	int checked;

	if (!dk_name_ok(dom, false) || (sel != NULL && !dk_name_ok(sel, true)))
		return dk_usage_err("check DOMAIN [SELECTOR]");
	if (cli_become_user(c) != 0)
		return 1;
	if ((r = cli_resolver_new(c, 0)) == NULL)
		return 1;
	checked = dk_check_keys(c, r, dom, sel, dk_print_check, NULL, &bad);
	cli_resolver_free(r);
	if (checked == 0)
		cli_warnx("%s has no key%s%s (tern dkim list)", dom,
		    sel ? " with selector " : "", sel ? sel : "");
	return checked <= 0 || bad ? 1 : 0;
}

int
cli_dkim(const struct conf *c, int argc, char **argv)
{
	struct dk_args a;
	char err[512];
	int rc;

	if (argc < 2)
		return dk_usage_err("keygen, list, activate or check");
	/* the key store of a newer tern is neither read nor written here */
	if (state_versions_check(c->state_dir, err, sizeof(err)) != 0) {
		cli_warnx("dkim: %s", err);
		return EX_DATAERR;
	}
	if (strcmp(argv[1], "list") == 0) {
		if (argc > 2)
			return dk_usage_err("list takes no arguments");
		return dk_list(c);
	}
	if (strcmp(argv[1], "activate") == 0) {
		if (argc != 4)
			return dk_usage_err("activate DOMAIN SELECTOR");
		return dk_activate(c, argv[2], argv[3]);
	}
	if (strcmp(argv[1], "check") == 0) {
		if (argc != 3 && argc != 4)
			return dk_usage_err("check DOMAIN [SELECTOR]");
		return dk_check(c, argv[2], argc == 4 ? argv[3] : NULL);
	}
	if (strcmp(argv[1], "keygen") != 0)
		return dk_usage_err("keygen, list, activate or check");
	if ((rc = dk_parse(argc - 2, argv + 2, &a)) != 0)
		return rc;
	return dk_keygen(c, &a);
}
