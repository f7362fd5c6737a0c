/*
 * password: check and make crypt(3) password hashes with libcrypt.
 *
 * What: auth_password_ok() verifies a password against a stored hash
 * of an accepted method (yescrypt, bcrypt, sha512crypt, sha256crypt; new
 * hashes are yescrypt, "$y$", Debian's default); auth_password_hash()
 * makes a new yescrypt hash.
 *
 * Invariants: the answer for "no such user" and for "wrong password"
 * costs the same work: a missing, empty, locked or unparsable hash is
 * replaced (like one of a refused method) by a fixed dummy yescrypt hash
 * (libcrypt's default cost, the same as auth_password_hash() uses) that no
 * password matches, and the result is then forced to false.  The computed hash
 * is compared with the stored one in time that depends only on their lengths,
 * which are public (they follow from the method and cost).
 *
 * Limits: hashes up to CRYPT_OUTPUT_SIZE (384) bytes; longer ones are
 * refused.  A stored hash with a much higher cost than the default still
 * takes longer than the dummy: keep hashes at one cost.
 *
 * Security: crypt_ra's work area holds the password-derived output; it is
 * wiped before it is freed, and so is every local copy.  Nothing here
 * logs.  Each call is about as costly as one yescrypt run (tens of ms):
 * the caller runs it on a worker thread and throttles (see throttle.c).
 */
#include <crypt.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"

/*
 * yescrypt of a random string with libcrypt's default parameters (j9T);
 * the password it was made from was thrown away, and the result is
 * forced to false anyway.
 */
static const char password_dummy_hash[] =
    "$y$j9T$BnjyM20lkaIxEgUM7DT/G.$n3W.DPW7j0VEmNVsLJkPFxEC9Xe7YCKdnKiCwUx6rw8";

/*
 * Equal strings, in time that depends on the lengths only.  volatile
 * keeps the compiler from stopping at the first difference.
 */
static bool
password_ct_eq(const char *a, size_t alen, const char *b, size_t blen)
{
	volatile unsigned char diff = (unsigned char)(alen != blen);
	size_t i;

	for (i = 0; i < alen; i++)
		diff |= (unsigned char)(a[i] ^ (i < blen ? b[i] : 0));
	return diff == 0;
}

/*
 * The accepted methods, by prefix.  DES crypt reads 8 characters of a
 * password and falls to a search in hours; MD5-crypt ("$1$") and the
 * other legacy ones are as cheap: a stored hash of theirs is a weakness,
 * not a credential to honour.
 */
static const struct {
	const char *prefix;
	size_t tail; /* characters after the last '$': the hash (bcrypt: salt
			and hash) in crypt's base64 */
} password_methods[] = {{"$y$", 43}, {"$2a$", 53}, {"$2b$", 53}, {"$2y$", 53},
    {"$6$", 86}, {"$5$", 43}};

#define PASSWORD_NMETHODS                                                      \
	(sizeof(password_methods) / sizeof(password_methods[0]))

/* A whole hash, not a bare setting ("$6$salt") nor a cut one. */
static bool
password_hash_complete(const char *hash, size_t tail)
{
	const char *last = strrchr(hash, '$');
	const char *p;

	if (last == NULL || strlen(last + 1) != tail)
		return false;
	for (p = last + 1; *p != '\0'; p++)
		if (strchr("./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			   "abcdefghijklmnopqrstuvwxyz",
			*p) == NULL)
			return false;
	return true;
}

bool
auth_hash_method_ok(const char *hash)
{
	size_t i;

	if (hash == NULL ||
	    strnlen(hash, CRYPT_OUTPUT_SIZE) >= CRYPT_OUTPUT_SIZE)
		return false;
	for (i = 0; i < PASSWORD_NMETHODS; i++)
		if (strncmp(hash, password_methods[i].prefix,
			strlen(password_methods[i].prefix)) == 0)
			break;
	if (i == PASSWORD_NMETHODS ||
	    !password_hash_complete(hash, password_methods[i].tail))
		return false;
	/* and libcrypt can parse it.  The prefix decided the method:
	   libxcrypt calls sha256crypt METHOD_LEGACY, and a low cost of a good
	   method (TOO_CHEAP) is the administrator's choice */
	switch (crypt_checksalt(hash)) {
	case CRYPT_SALT_OK:
	case CRYPT_SALT_METHOD_LEGACY:
	case CRYPT_SALT_TOO_CHEAP:
		return true;
	default:
		return false;
	}
}

/* Run crypt with setting; true if its output equals setting. */
static bool
password_crypt_eq(const char *password, const char *setting)
{
	void *data = NULL;
	int size = 0;
	const char *out;
	bool eq = false;

	out = crypt_ra(password, setting, &data, &size);
	if (out != NULL && out[0] != '*')
		eq = password_ct_eq(out, strlen(out), setting, strlen(setting));
	if (data != NULL) {
		explicit_bzero(data, (size_t)size);
		free(data);
	}
	return eq;
}

bool
auth_password_ok(const char *hash_or_null, const char *password)
{
	bool usable = auth_hash_method_ok(hash_or_null);
	const char *setting = usable ? hash_or_null : password_dummy_hash;
	bool eq;

	/* run crypt even without a password, so no path returns early */
	eq = password_crypt_eq(password != NULL ? password : "", setting);
	return eq && usable && password != NULL;
}

int
auth_password_hash(const char *password, char *out, size_t outlen)
{
	char *salt;
	bool ok = false;
	void *data = NULL;
	int size = 0;
	const char *h;

	if (outlen > 0)
		out[0] = '\0';
	if (password == NULL)
		return -1;
	/* count 0: libcrypt's default cost; NULL rbytes: getrandom(2) */
	salt = crypt_gensalt_ra("$y$", 0, NULL, 0);
	if (salt == NULL)
		return -1;
	h = crypt_ra(password, salt, &data, &size);
	if (h != NULL && h[0] == '$')
		ok = str_copy(out, outlen, h, strlen(h)) == 0;
	if (data != NULL) {
		explicit_bzero(data, (size_t)size);
		free(data);
	}
	free(salt);
	if (!ok && outlen > 0)
		out[0] = '\0';
	return ok ? 0 : -1;
}
