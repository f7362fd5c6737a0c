/*
 * dkimsel: which of a domain's DKIM keys sign (the rotation rule of
 * docs/mailauth.md), as pure code shared by ternd's keyring
 * (src/server/dkimkeys.c) and `tern dkim` (src/cli/dkim.c).
 *
 * Owns: the key file names (SELECTOR.ALG.key) and the text of the
 * domain's "active" file.  May call: util, mailauth/dkim.h.  No I/O: the
 * caller lists the directory and reads the file.
 *
 * The rule.  STATE/dkim/DOMAIN/active names the selectors that sign, one
 * a line ('#' starts a comment), at most one per algorithm (rsa,
 * ed25519): two active algorithms sign twice (RFC 8463 3, dual signing).
 * A selector named twice for one algorithm: the first line wins.  A name
 * with no key file is ignored.  Without the file (keys made before it
 * existed, or copied in by hand) an algorithm with exactly one key has it
 * active, and one with several has none: tern never guesses which of two
 * keys has its record published.  `tern dkim keygen` writes the file:
 * the first key of an algorithm is active, a later one waits for `tern
 * dkim activate` (its DNS record must be published first).
 */
#ifndef TERN_MAILAUTH_DKIMSEL_H
#define TERN_MAILAUTH_DKIMSEL_H

#include <stdbool.h>
#include <stddef.h>

#include "mailauth/dkim.h"
#include "util/util.h"

/* Key files of one domain considered; more are ignored (and said). */
#define DKIMSEL_KEYS_MAX 64
/* Octets of the active file read. */
#define DKIMSEL_ACTIVE_MAX 4096

struct dkimsel_key {
	char selector[DKIM_DOMAIN_MAX + 1];
	enum dkim_key_type type;
	bool active; /* out of dkimsel_choose */
};

/* "rsa" or "ed25519", the name in the file name and in `tern dkim list`. */
const char *dkimsel_type_name(enum dkim_key_type t);

/*
 * A key file name, SELECTOR.rsa.key or SELECTOR.ed25519.key, with a
 * selector of DNS label characters (letters, digits, '-', '_', '.'; no
 * empty label): true and out filled (active false), else false.
 */
bool dkimsel_file_name(const char *name, struct dkimsel_key *out);

/*
 * Set keys[i].active for keys[0..n) by the rule above; active is the
 * file's text (len octets) or NULL when there is none.  Each problem (a
 * name without a key, a second selector for one algorithm, several keys
 * and no file) is one line appended to warn ("" when none), for the
 * caller to log or print.
 */
void dkimsel_choose(struct dkimsel_key *keys, size_t n, const char *active,
    size_t len, struct buf *warn);

/*
 * The active file's new text into out after activating selector sel: it
 * replaces the active key of its algorithm, the others stay.  0, or -1
 * when no key has that selector.
 */
int dkimsel_activate(const struct dkimsel_key *keys, size_t n, const char *sel,
    struct buf *out) WUR;

#endif
