/*
 * dkimkeys: ternd's DKIM keyring, the active signing keys of every domain
 * under STATE/dkim (docs/mailauth.md, "DKIM signing").
 *
 * Owns: struct dkimkeys, one immutable snapshot of the keys, loaded at
 * start and again on SIGHUP or the control request DKIM-RELOAD.  May
 * call: mailauth (dkim.h, dkimsel.h: the rotation rule), util; reads
 * files only through directory descriptors (O_NOFOLLOW), as ternd's user.
 *
 * Threads: load, hold and drop run on the loop thread.  A signing job
 * holds the snapshot it started with (dkimkeys_hold on the loop, drop on
 * the loop when the job is cleared), so a reload never frees keys a
 * worker is using; a worker only reads a held snapshot (OpenSSL allows
 * concurrent signing with one EVP_PKEY).
 */
#ifndef TERN_SERVER_DKIMKEYS_H
#define TERN_SERVER_DKIMKEYS_H

#include <stddef.h>

#include <openssl/evp.h>

#include "mailauth/dkim.h"
#include "util/util.h"

/* Domains with keys loaded; more are ignored, and said. */
#define DKIMKEYS_DOMAINS_MAX 4096

/* One active key: at most one per algorithm. */
struct dkimkey {
	char selector[DKIM_DOMAIN_MAX + 1];
	enum dkim_key_type type;
	EVP_PKEY *pkey;
};

struct dkimkeys_domain {
	char name[DKIM_DOMAIN_MAX + 1]; /* lower case */
	struct dkimkey keys[2];		/* rsa first, then ed25519 */
	size_t n;
};

struct dkimkeys;

/*
 * Load STATE/dkim (state_dir's "dkim" folder): every domain folder, its
 * active file and its active keys.  Never NULL: a missing folder is an
 * empty keyring, and each key that cannot be used (a link, not ternd's,
 * readable by group or others, not a key of its algorithm) is left out
 * with an error line saying what to do.  The result is held once.
 */
struct dkimkeys *dkimkeys_load(const char *state_dir);
void dkimkeys_hold(struct dkimkeys *k);
/* Release a hold; the last one frees.  NULL does nothing. */
void dkimkeys_drop(struct dkimkeys *k);
/* Domains and keys loaded. */
size_t dkimkeys_domains(const struct dkimkeys *k);
size_t dkimkeys_keys(const struct dkimkeys *k);
/* The active keys of domain[0..len) (ASCII case-insensitive), or NULL. */
const struct dkimkeys_domain *dkimkeys_find(
    const struct dkimkeys *k, const char *domain, size_t len);

#endif
