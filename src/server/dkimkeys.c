/*
 * dkimkeys: load STATE/dkim into an immutable, reference-counted keyring
 * (dkimkeys.h).  Every open is relative to a directory descriptor and
 * O_NOFOLLOW, and every file and folder is checked with fstat on its own
 * descriptor: it must be ternd's user's, and a key file readable by
 * nobody else (0600 or stricter), a folder writable by nobody else.
 * keygen makes them so; anything else was changed by hand, and a key
 * others can read is no longer a secret: it is refused, not used.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mailauth/dkimsel.h"
#include "server/dkimkeys.h"

#define DK_FILE_MAX (16 * 1024) /* a 4096-bit PEM is 3.3 kB */

struct dkimkeys {
	unsigned refs;
	struct dkimkeys_domain *d;
	size_t n, cap;
	size_t nkeys;
};

/* What dk_check asks of a file: a folder, a key, the active file. */
enum dk_kind { DK_DIR, DK_KEY, DK_ACTIVE };

/*
 * Is this descriptor's file ternd's, and not open to others?  A key may
 * be read by nobody else (it is a secret); a folder and the active file
 * may be written by nobody else (they say which key signs).
 */
static bool
dk_check(int fd, enum dk_kind kind, const char *path)
{
	static const char *const what[] = {
	    "every key in it", "key", "active file"};
	bool dir = kind == DK_DIR;
	mode_t deny = kind == DK_KEY ? 077 : 022;
	struct stat st;

	if (fstat(fd, &st) != 0) {
		log_err("event=dkim_keys path=%s error=\"%s\"", path,
		    strerror(errno));
		return false;
	}
	if (dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) {
		log_err("event=dkim_keys path=%s error=\"not a %s\" "
			"action=ignored",
		    path, dir ? "directory" : "regular file");
		return false;
	}
	if (st.st_uid != geteuid()) {
		log_err("event=dkim_keys path=%s error=\"owned by uid %u, not "
			"ternd's uid %u\" action=\"%s ignored: chown it to "
			"ternd's user\"",
		    path, (unsigned)st.st_uid, (unsigned)geteuid(), what[kind]);
		return false;
	}
	if ((st.st_mode & deny) != 0) {
		log_err("event=dkim_keys path=%s error=\"mode %04o: %s by "
			"group or others\" action=\"%s ignored: chmod %s %s\"",
		    path, (unsigned)(st.st_mode & 07777),
		    kind == DK_KEY ? "readable" : "writable", what[kind],
		    dir ? "700" : "600", path);
		return false;
	}
	return true;
}

/* A folder name that is a domain: letters, digits, '-', '.', no '..'. */
static bool
dk_domain_ok(const char *s)
{
	size_t n = strlen(s), k;
	char prev = '.';

	if (n == 0 || n > DKIM_DOMAIN_MAX || s[0] == '-')
		return false;
	for (k = 0; k < n; k++) {
		char c = s[k];

		if (c == '.'
			? prev == '.'
			: !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			      c == '-' || (c >= 'A' && c <= 'Z')))
			return false;
		prev = c;
	}
	return prev != '.';
}

/*
 * Read at most max - 1 octets of name under dfd: the length; -1 when
 * there is no such file; -2 when it is there but refused or unreadable
 * (said in the log).
 */
static ssize_t
dk_read(int dfd, const char *name, const char *path, char *out, size_t max,
    enum dk_kind kind)
{
	int fd = openat(dfd, name,
	    O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	size_t got = 0;
	ssize_t r = 0;

	if (fd < 0) {
		if (errno == ENOENT)
			return -1;
		log_err("event=dkim_keys path=%s error=\"%s\"%s", path,
		    strerror(errno),
		    errno == ELOOP ? " action=\"a symbolic link: ternd "
				     "follows none here\""
				   : "");
		return -2;
	}
	if (!dk_check(fd, kind, path)) {
		(void)close(fd);
		return -2;
	}
	while (got + 1 < max && ((r = read(fd, out + got, max - 1 - got)) > 0 ||
				    (r < 0 && errno == EINTR)))
		if (r > 0)
			got += (size_t)r;
	(void)close(fd);
	if (r < 0 || got + 1 >= max) {
		log_err("event=dkim_keys path=%s error=\"%s\" action=ignored",
		    path, r < 0 ? strerror(errno) : "too large");
		return -2;
	}
	out[got] = '\0';
	return (ssize_t)got;
}

static EVP_PKEY *
dk_load_key(
    int dfd, const char *name, const char *path, enum dkim_key_type type)
{
	char *pem = xmalloc(DK_FILE_MAX), err[128];
	ssize_t n = dk_read(dfd, name, path, pem, DK_FILE_MAX, DK_KEY);
	EVP_PKEY *k = NULL;
	int want = type == DKIM_KEY_ED25519 ? EVP_PKEY_ED25519 : EVP_PKEY_RSA;

	if (n > 0)
		k = dkim_pkey_from_pem(pem, (size_t)n, err, sizeof(err));
	explicit_bzero(pem, DK_FILE_MAX);
	free(pem);
	if (n > 0 && k == NULL)
		log_err("event=dkim_keys path=%s error=\"%s\" action=ignored",
		    path, err);
	if (k != NULL && EVP_PKEY_get_base_id(k) != want) {
		log_err("event=dkim_keys path=%s error=\"not a %s key\" "
			"action=ignored",
		    path, dkimsel_type_name(type));
		EVP_PKEY_free(k);
		k = NULL;
	}
	return k;
}

/* The key files of the folder dfd: their names, at most max. */
static size_t
dk_list(int dfd, const char *dir, struct dkimsel_key *keys, size_t max)
{
	int fd = dup(dfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;
	size_t n = 0;

	if (d == NULL) {
		log_err("event=dkim_keys path=%s error=\"%s\"", dir,
		    strerror(errno));
		if (fd >= 0)
			(void)close(fd);
		return 0;
	}
	while ((e = readdir(d)) != NULL) {
		if (!dkimsel_file_name(e->d_name, &keys[n]))
			continue;
		if (n + 1 == max) {
			log_warn("event=dkim_keys path=%s note=\"more than %zu "
				 "keys: the rest ignored\"",
			    dir, max);
			break;
		}
		n++;
	}
	(void)closedir(d);
	return n;
}

static void
dk_warn_lines(const char *dir, const struct buf *warn)
{
	const char *p = warn->data, *nl;

	while (p != NULL && *p != '\0' && (nl = strchr(p, '\n')) != NULL) {
		log_warn("event=dkim_keys path=%s warning=\"%.*s\"", dir,
		    (int)(nl - p), p);
		p = nl + 1;
	}
}

/* One domain folder: its active keys into a new entry of k. */
static void
dk_domain(struct dkimkeys *k, int root, const char *root_path, const char *name)
{
	struct dkimsel_key sel[DKIMSEL_KEYS_MAX];
	char dir[4096], path[4096], active[DKIMSEL_ACTIVE_MAX];
	struct dkimkeys_domain dom;
	struct buf warn;
	ssize_t alen;
	size_t n, i;
	int t, dfd;

	str_fmt_cut(dir, sizeof(dir), "%s/%s", root_path, name);
	dfd =
	    openat(root, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0) {
		log_err("event=dkim_keys path=%s error=\"%s\" action=ignored",
		    dir, strerror(errno));
		return;
	}
	if (!dk_check(dfd, DK_DIR, dir)) {
		(void)close(dfd);
		return;
	}
	memset(&dom, 0, sizeof(dom));
	if (str_copy(dom.name, sizeof(dom.name), name, strlen(name)) != 0)
		panic("event=dkim_keys error=\"domain too long\"");
	str_lower(dom.name);
	n = dk_list(dfd, dir, sel, DKIMSEL_KEYS_MAX);
	str_fmt_cut(path, sizeof(path), "%s/active", dir);
	alen = dk_read(dfd, "active", path, active, sizeof(active), DK_ACTIVE);
	if (alen == -2) {
		/* there, but not to be trusted: which key signs is unknown,
		 * so none does (the "no file" rule could pick a key whose
		 * record is not published) */
		log_err("event=dkim_keys path=%s action=\"no key of %s signs "
			"until the active file is fixed\"",
		    path, dom.name);
		(void)close(dfd);
		return;
	}
	buf_init(&warn, 8192);
	dkimsel_choose(sel, n, alen >= 0 ? active : NULL,
	    alen >= 0 ? (size_t)alen : 0, &warn);
	dk_warn_lines(dir, &warn);
	buf_free(&warn);
	for (t = DKIM_KEY_RSA; t <= DKIM_KEY_ED25519; t++)
		for (i = 0; i < n; i++) {
			struct dkimkey *dk = &dom.keys[dom.n];
			char file[DKIM_DOMAIN_MAX + 16];

			if (!sel[i].active || (int)sel[i].type != t)
				continue;
			str_fmt_cut(file, sizeof(file), "%s.%s.key",
			    sel[i].selector, dkimsel_type_name(sel[i].type));
			str_fmt_cut(path, sizeof(path), "%s/%s", dir, file);
			dk->pkey = dk_load_key(dfd, file, path, sel[i].type);
			if (dk->pkey == NULL)
				continue;
			dk->type = sel[i].type;
			memcpy(dk->selector, sel[i].selector,
			    sizeof(dk->selector));
			log_info("event=dkim_key domain=%s selector=%s alg=%s "
				 "bits=%d status=active",
			    dom.name, dk->selector, dkimsel_type_name(dk->type),
			    dk->type == DKIM_KEY_RSA
				? EVP_PKEY_get_bits(dk->pkey)
				: 256);
			dom.n++;
		}
	(void)close(dfd);
	if (dom.n == 0)
		return;
	if (k->n == k->cap) {
		struct dkimkeys_domain *grown;

		k->cap = k->cap ? 2 * k->cap : 16;
		grown = xcalloc(k->cap, sizeof(*grown));
		if (k->n > 0)
			memcpy(grown, k->d, k->n * sizeof(*grown));
		free(k->d);
		k->d = grown;
	}
	k->d[k->n++] = dom;
	k->nkeys += dom.n;
}

struct dkimkeys *
dkimkeys_load(const char *state_dir)
{
	struct dkimkeys *k = xcalloc(1, sizeof(*k));
	char root_path[4096];
	struct dirent *e;
	int root, fd;
	DIR *d;

	k->refs = 1;
	str_fmt_cut(root_path, sizeof(root_path), "%s/dkim", state_dir);
	root = open(root_path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (root < 0) {
		if (errno != ENOENT)
			log_err("event=dkim_keys path=%s error=\"%s\" "
				"action=\"no DKIM signing\"",
			    root_path, strerror(errno));
		return k;
	}
	if (!dk_check(root, DK_DIR, root_path) || (fd = dup(root)) < 0 ||
	    (d = fdopendir(fd)) == NULL) {
		(void)close(root);
		return k;
	}
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (!dk_domain_ok(e->d_name)) {
			log_warn("event=dkim_keys path=%s/%s note=\"not a "
				 "domain name: ignored\"",
			    root_path, e->d_name);
			continue;
		}
		if (k->n == DKIMKEYS_DOMAINS_MAX) {
			log_warn("event=dkim_keys path=%s note=\"more than %d "
				 "domains: the rest ignored\"",
			    root_path, DKIMKEYS_DOMAINS_MAX);
			break;
		}
		dk_domain(k, root, root_path, e->d_name);
	}
	(void)closedir(d);
	(void)close(root);
	log_info("event=dkim_keys domains=%zu keys=%zu", k->n, k->nkeys);
	return k;
}

void
dkimkeys_hold(struct dkimkeys *k)
{
	k->refs++;
}

void
dkimkeys_drop(struct dkimkeys *k)
{
	size_t i, j;

	if (k == NULL || --k->refs > 0)
		return;
	for (i = 0; i < k->n; i++)
		for (j = 0; j < k->d[i].n; j++)
			EVP_PKEY_free(k->d[i].keys[j].pkey);
	free(k->d);
	free(k);
}

size_t
dkimkeys_domains(const struct dkimkeys *k)
{
	return k->n;
}

size_t
dkimkeys_keys(const struct dkimkeys *k)
{
	return k->nkeys;
}

const struct dkimkeys_domain *
dkimkeys_find(const struct dkimkeys *k, const char *domain, size_t len)
{
	size_t i;

	for (i = 0; i < k->n; i++)
		if (str_case_eq(domain, len, k->d[i].name))
			return &k->d[i];
	return NULL;
}
