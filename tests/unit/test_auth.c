/*
 * Unit tests for src/auth: strict base64, SASL PLAIN and LOGIN, password
 * hashing and verification, and the failure throttle.  Parser inputs sit
 * right before an unreadable page (t_guard), so an over-read crashes.
 */
#include <crypt.h>
#include <time.h>

#include "t.h"
#include "auth/auth.h"
#include "util/clientkey.h"

/* ---- base64 ------------------------------------------------------------- */

struct b64_case {
	const char *raw;
	size_t rawlen;
	const char *enc;
};

#define B(s) s, sizeof(s) - 1

static const struct b64_case b64_valid[] = {
    /* RFC 4648 10 */
    {B(""), ""},
    {B("f"), "Zg=="},
    {B("fo"), "Zm8="},
    {B("foo"), "Zm9v"},
    {B("foob"), "Zm9vYg=="},
    {B("fooba"), "Zm9vYmE="},
    {B("foobar"), "Zm9vYmFy"},
    /* the SASL strings */
    {B("Username:"), "VXNlcm5hbWU6"},
    {B("Password:"), "UGFzc3dvcmQ6"},
    {B("\0user\0pass"), "AHVzZXIAcGFzcw=="},
    /* every alphabet character, both ends of the byte range */
    {B("\x00\x10\x83\x10\x51\x87\x20\x92\x8b\x30\xd3\x8f\x41\x14\x93\x51"
       "\x55\x97\x61\x96\x9b\x71\xd7\x9f\x82\x18\xa3\x92\x59\xa7\xa2\x9a"
       "\xab\xb2\xdb\xaf\xc3\x1c\xb3\xd3\x5d\xb7\xe3\x9e\xbb\xf3\xdf\xbf"),
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"},
    {B("\xff\xff\xff"), "////"},
    {B("\xfb\xff"), "+/8="},
};

static void
test_b64_valid(void)
{
	size_t i;

	for (i = 0; i < sizeof(b64_valid) / sizeof(b64_valid[0]); i++) {
		const struct b64_case *c = &b64_valid[i];
		unsigned char dec[128];
		char enc[128];
		size_t n, enclen = strlen(c->enc);
		void *map;
		size_t maplen;
		const char *g = t_guard(c->enc, enclen, &map, &maplen);

		t_case(c->enc);
		T_CHECK_INT(
		    auth_b64_decode(g, enclen, dec, sizeof(dec), &n), 0);
		T_CHECK_INT(n, c->rawlen);
		T_CHECK(memcmp(dec, c->raw, c->rawlen) == 0);
		/* exactly the room it needs */
		T_CHECK_INT(auth_b64_decode(g, enclen, dec, c->rawlen, &n), 0);
		t_unguard(map, maplen);
		T_CHECK_INT(auth_b64_encode((const unsigned char *)c->raw,
				c->rawlen, enc, sizeof(enc), &n),
		    0);
		T_CHECK_STR(enc, c->enc);
		T_CHECK_INT(n, enclen);
		T_CHECK_INT(auth_b64_encoded_len(c->rawlen), enclen);
	}
}

/* Every way base64 text can be wrong. */
static const char *const b64_invalid[] = {
    "Z", "Zg", "Zg=", "Zm9vY", "Zm9vYg", "Zm9vYg=", /* length % 4 */
    "Zm9v\r\n", "Zm9v\n", " Zm9v", "Zm9v ", "Zm 9v", "Zm9\tv",
    "Zm9v\r\nYmFy",				    /* whitespace */
    "Zg==Zm9v", "Zm8=Zm9v",			    /* pad mid-way */
    "Z===", "====", "=Zm9", "Zm=v", "Zg=a", "==Zm", /* pad placement */
    "Zm9v====", "Zm9v=", "Zm9vYg===",		    /* extra pad */
    "Zh==", "Zv==", "Zm9=", "Zm+=",		    /* non-zero pad bits */
    "Zm-_", "Zm9v.", "Zm9*", "Zm9!", "Zm9%",	    /* other alphabets */
    "Zm9\xc3", "Zm9\x80", "\xffZm9",		    /* 8-bit */
};

static void
test_b64_invalid(void)
{
	size_t i;

	for (i = 0; i < sizeof(b64_invalid) / sizeof(b64_invalid[0]); i++) {
		const char *s = b64_invalid[i];
		unsigned char dec[64];
		size_t n = 99;
		void *map;
		size_t maplen;
		const char *g = t_guard(s, strlen(s), &map, &maplen);

		t_case(s);
		T_CHECK_INT(
		    auth_b64_decode(g, strlen(s), dec, sizeof(dec), &n), -1);
		T_CHECK_INT(n, 0);
		t_unguard(map, maplen);
	}
	t_case("nul inside");
	{
		unsigned char dec[8];
		size_t n;

		T_CHECK_INT(
		    auth_b64_decode("Zm9\0", 4, dec, sizeof(dec), &n), -1);
		T_CHECK_INT(
		    auth_b64_decode("Zm9v\0\0\0\0", 8, dec, sizeof(dec), &n),
		    -1);
	}
}

static void
test_b64_bounds(void)
{
	unsigned char dec[8];
	char enc[8];
	size_t n;

	t_case("decode too small");
	T_CHECK_INT(auth_b64_decode("Zm9vYmFy", 8, dec, 5, &n), -1);
	T_CHECK_INT(auth_b64_decode("Zm9vYg==", 8, dec, 3, &n), -1);
	T_CHECK_INT(auth_b64_decode("Zm9vYg==", 8, dec, 4, &n), 0);
	T_CHECK_INT(auth_b64_decode("", 0, dec, 0, &n), 0);
	T_CHECK_INT(n, 0);
	t_case("encode too small");
	T_CHECK_INT(
	    auth_b64_encode((const unsigned char *)"foo", 3, enc, 4, &n), -1);
	T_CHECK_STR(enc, "");
	T_CHECK_INT(
	    auth_b64_encode((const unsigned char *)"foo", 3, enc, 5, &n), 0);
	T_CHECK_STR(enc, "Zm9v");
	T_CHECK_INT(
	    auth_b64_encode((const unsigned char *)"", 0, enc, 1, &n), 0);
	T_CHECK_STR(enc, "");
	T_CHECK_INT(
	    auth_b64_encode((const unsigned char *)"", 0, enc, 0, &n), -1);
	T_CHECK_INT(
	    auth_b64_encode((const unsigned char *)"x", 1, enc, 4, &n), -1);
}

static void
test_b64_roundtrip(void)
{
	unsigned char raw[200], dec[200];
	char enc[300];
	size_t len, i, n, m;

	for (len = 0; len <= sizeof(raw); len++) {
		for (i = 0; i < len; i++)
			raw[i] = (unsigned char)t_rand();
		t_case("roundtrip");
		T_CHECK_INT(auth_b64_encode(raw, len, enc, sizeof(enc), &n), 0);
		T_CHECK_INT(n, auth_b64_encoded_len(len));
		T_CHECK_INT(auth_b64_decode(enc, n, dec, sizeof(dec), &m), 0);
		T_CHECK(m == len && memcmp(raw, dec, len) == 0);
	}
}

/* ---- PLAIN -------------------------------------------------------------- */

struct plain_case {
	const char *name;
	const char *msg;
	size_t n;
	int rc;
	const char *az, *ac, *pw;
};

#define P(s) s, sizeof(s) - 1

static const struct plain_case plain_cases[] = {
    {"simple", P("\0user\0pass"), SASL_OK, "", "user", "pass"},
    {"authzid same", P("user\0user\0pass"), SASL_OK, "user", "user", "pass"},
    {"authzid other", P("admin\0user\0pass"), SASL_ERR_AUTHZ, 0, 0, 0},
    {"authzid case", P("User\0user\0pass"), SASL_ERR_AUTHZ, 0, 0, 0},
    {"authzid prefix", P("use\0user\0pass"), SASL_ERR_AUTHZ, 0, 0, 0},
    {"address", P("\0claire@example.org\0s3cr3t pass"), SASL_OK, "",
	"claire@example.org", "s3cr3t pass"},
    {"utf8", P("\0j\xc3\xb6rg\0p\xc3\xa4ss \xf0\x9f\x94\x91"), SASL_OK, "",
	"j\xc3\xb6rg", "p\xc3\xa4ss \xf0\x9f\x94\x91"},
    {"empty", P(""), SASL_ERR_SYNTAX, 0, 0, 0},
    {"no nul", P("userpass"), SASL_ERR_SYNTAX, 0, 0, 0},
    {"one nul", P("user\0pass"), SASL_ERR_SYNTAX, 0, 0, 0},
    {"three nuls", P("\0user\0pass\0"), SASL_ERR_SYNTAX, 0, 0, 0},
    {"nul in pass", P("\0user\0pa\0ss"), SASL_ERR_SYNTAX, 0, 0, 0},
    {"only nuls", P("\0\0"), SASL_ERR_SYNTAX, 0, 0, 0},
    {"empty authcid", P("\0\0pass"), SASL_ERR_SYNTAX, 0, 0, 0},
    {"empty password", P("\0user\0"), SASL_ERR_SYNTAX, 0, 0, 0},
    {"bad utf8 pass", P("\0user\0\xff"), SASL_ERR_SYNTAX, 0, 0, 0},
    {"bad utf8 user", P("\0us\x80r\0pass"), SASL_ERR_SYNTAX, 0, 0, 0},
    {"bad utf8 authzid", P("\xc3\0user\0pass"), SASL_ERR_SYNTAX, 0, 0, 0},
    {"overlong", P("\0user\0\xc0\xaf"), SASL_ERR_SYNTAX, 0, 0, 0},
    {"overlong 3", P("\0user\0\xe0\x80\xaf"), SASL_ERR_SYNTAX, 0, 0, 0},
    {"surrogate", P("\0user\0\xed\xa0\x80"), SASL_ERR_SYNTAX, 0, 0, 0},
    {"past 10ffff", P("\0user\0\xf4\x90\x80\x80"), SASL_ERR_SYNTAX, 0, 0, 0},
    {"truncated seq", P("\0user\0ab\xe2\x82"), SASL_ERR_SYNTAX, 0, 0, 0},
    {"f5 lead", P("\0user\0\xf5\x80\x80\x80"), SASL_ERR_SYNTAX, 0, 0, 0},
};

static void
plain_check(const char *name, const char *msg, size_t n, int rc, const char *az,
    const char *ac, const char *pw)
{
	char a[AUTH_FIELD_MAX + 1], c[AUTH_FIELD_MAX + 1],
	    p[AUTH_FIELD_MAX + 1];
	void *map;
	size_t maplen;
	const char *g = t_guard(msg, n, &map, &maplen);

	t_case(name);
	T_CHECK_INT(sasl_plain_parse((const unsigned char *)g, n, a, sizeof(a),
			c, sizeof(c), p, sizeof(p)),
	    rc);
	if (rc == SASL_OK) {
		T_CHECK_STR(a, az);
		T_CHECK_STR(c, ac);
		T_CHECK_STR(p, pw);
	} else {
		T_CHECK(a[0] == '\0' && c[0] == '\0' && p[0] == '\0');
	}
	t_unguard(map, maplen);
}

static void
test_plain_table(void)
{
	size_t i;

	for (i = 0; i < sizeof(plain_cases) / sizeof(plain_cases[0]); i++) {
		const struct plain_case *pc = &plain_cases[i];

		plain_check(
		    pc->name, pc->msg, pc->n, pc->rc, pc->az, pc->ac, pc->pw);
	}
}

/* Field lengths at and past the 255-octet limit. */
static void
test_plain_lengths(void)
{
	char f255[256], f256[257], msg[AUTH_PLAIN_MAX + 16];
	size_t n;

	memset(f255, 'a', 255);
	f255[255] = '\0';
	memset(f256, 'b', 256);
	f256[256] = '\0';

	n = (size_t)snprintf(msg, sizeof(msg), "%c%s%cpass", 0, f255, 0);
	plain_check("authcid 255", msg, n, SASL_OK, "", f255, "pass");
	n = (size_t)snprintf(msg, sizeof(msg), "%c%s%cpass", 0, f256, 0);
	plain_check("authcid 256", msg, n, SASL_ERR_SYNTAX, 0, 0, 0);
	n = (size_t)snprintf(msg, sizeof(msg), "%cuser%c%s", 0, 0, f255);
	plain_check("pass 255", msg, n, SASL_OK, "", "user", f255);
	n = (size_t)snprintf(msg, sizeof(msg), "%cuser%c%s", 0, 0, f256);
	plain_check("pass 256", msg, n, SASL_ERR_SYNTAX, 0, 0, 0);
	n = (size_t)snprintf(msg, sizeof(msg), "%s%cuser%cpass", f256, 0, 0);
	plain_check("authzid 256", msg, n, SASL_ERR_SYNTAX, 0, 0, 0);
	n = (size_t)snprintf(
	    msg, sizeof(msg), "%s%c%s%c%s", f255, 0, f255, 0, f255);
	plain_check("all 255", msg, n, SASL_OK, f255, f255, f255);
	T_CHECK_INT(n, AUTH_PLAIN_MAX);
}

static void
test_plain_small_buffers(void)
{
	char a[8], c[5], p[8];

	t_case("authcid does not fit");
	memset(p, 'x', sizeof(p));
	T_CHECK_INT(sasl_plain_parse((const unsigned char *)"\0user5\0pass", 11,
			a, sizeof(a), c, sizeof(c), p, sizeof(p)),
	    SASL_ERR_SYNTAX);
	T_CHECK(p[0] == '\0' && p[7] == '\0'); /* wiped */
	t_case("fits exactly");
	T_CHECK_INT(sasl_plain_parse((const unsigned char *)"\0user\0pass", 10,
			a, sizeof(a), c, sizeof(c), p, sizeof(p)),
	    SASL_OK);
	T_CHECK_STR(c, "user");
}

static void
test_plain_b64(void)
{
	char a[AUTH_FIELD_MAX + 1], c[AUTH_FIELD_MAX + 1],
	    p[AUTH_FIELD_MAX + 1];
	char big[1100];

	t_case("b64 ok");
	T_CHECK_INT(sasl_plain_parse_b64("AHVzZXIAcGFzcw==", 16, a, sizeof(a),
			c, sizeof(c), p, sizeof(p)),
	    SASL_OK);
	T_CHECK_STR(c, "user");
	T_CHECK_STR(p, "pass");
	t_case("b64 authzid");
	/* "admin\0user\0pass" */
	T_CHECK_INT(sasl_plain_parse_b64("YWRtaW4AdXNlcgBwYXNz", 20, a,
			sizeof(a), c, sizeof(c), p, sizeof(p)),
	    SASL_ERR_AUTHZ);
	t_case("b64 =");
	T_CHECK_INT(sasl_plain_parse_b64(
			"=", 1, a, sizeof(a), c, sizeof(c), p, sizeof(p)),
	    SASL_ERR_SYNTAX);
	t_case("b64 bad");
	T_CHECK_INT(sasl_plain_parse_b64("AHVzZXIAcGFzcw=", 15, a, sizeof(a), c,
			sizeof(c), p, sizeof(p)),
	    SASL_ERR_SYNTAX);
	T_CHECK(c[0] == '\0' && p[0] == '\0');
	t_case("b64 longer than any PLAIN message");
	memset(big, 'A', sizeof(big));
	T_CHECK_INT(sasl_plain_parse_b64(
			big, 1028, a, sizeof(a), c, sizeof(c), p, sizeof(p)),
	    SASL_ERR_SYNTAX);
}

/* ---- LOGIN -------------------------------------------------------------- */

static int
login_feed(struct sasl_login *l, const char *line, char *chal)
{
	return sasl_login_step(
	    l, line, line ? strlen(line) : 0, chal, SASL_LOGIN_CHAL_MAX);
}

static void
test_login_flow(void)
{
	struct sasl_login l;
	char chal[SASL_LOGIN_CHAL_MAX];

	t_case("login three steps");
	sasl_login_init(&l);
	T_CHECK_INT(login_feed(&l, NULL, chal), SASL_CONTINUE);
	T_CHECK_STR(chal, "VXNlcm5hbWU6");
	T_CHECK_INT(l.state, SASL_LOGIN_USER);
	T_CHECK_INT(login_feed(&l, "dXNlcg==", chal), SASL_CONTINUE);
	T_CHECK_STR(chal, "UGFzc3dvcmQ6");
	T_CHECK_INT(l.state, SASL_LOGIN_PASS);
	T_CHECK_INT(login_feed(&l, "cGFzcw==", chal), SASL_OK);
	T_CHECK_STR(l.user, "user");
	T_CHECK_STR(l.pass, "pass");
	T_CHECK_STR(chal, "");
	T_CHECK_INT(l.state, SASL_LOGIN_DONE);
	t_case("login step after done");
	T_CHECK_INT(login_feed(&l, "cGFzcw==", chal), SASL_ERR_SYNTAX);
	T_CHECK(l.pass[0] == '\0');
	t_case("login wipe");
	sasl_login_init(&l);
	T_CHECK_INT(login_feed(&l, "dXNlcg==", chal), SASL_CONTINUE);
	T_CHECK_INT(login_feed(&l, "cGFzcw==", chal), SASL_OK);
	sasl_login_wipe(&l);
	T_CHECK(l.user[0] == '\0' && l.pass[0] == '\0');
}

static void
test_login_initial(void)
{
	struct sasl_login l;
	char chal[SASL_LOGIN_CHAL_MAX];

	t_case("login initial response is the user");
	sasl_login_init(&l);
	T_CHECK_INT(login_feed(&l, "dXNlcg==", chal), SASL_CONTINUE);
	T_CHECK_STR(chal, "UGFzc3dvcmQ6");
	T_CHECK_STR(l.user, "user");
	T_CHECK_INT(login_feed(&l, "cGFzcw==", chal), SASL_OK);
	t_case("login initial =");
	sasl_login_init(&l);
	T_CHECK_INT(login_feed(&l, "=", chal), SASL_ERR_SYNTAX);
	T_CHECK_INT(l.state, SASL_LOGIN_FAILED);
}

struct login_bad {
	const char *name;
	const char *user, *pass; /* base64 lines; pass NULL: user fails */
};

static const struct login_bad login_bads[] = {
    {"bad b64 user", "dXNlcg=", NULL}, {"space in b64", "dXNl cg==", NULL},
    {"empty user", "", NULL}, {"nul in user", "dQBy", NULL}, /* "u\0r" */
    {"bad utf8 user", "/w==", NULL},			     /* "\xff" */
    {"empty password", "dXNlcg==", ""},
    {"bad b64 password", "dXNlcg==", "cGFzcw"},
    {"nul in password", "dXNlcg==", "cGEAc3M="}, /* "pa\0ss" */
    {"surrogate password", "dXNlcg==", "7aCA"},	 /* ED A0 80 */
};

static void
test_login_bad(void)
{
	size_t i;

	for (i = 0; i < sizeof(login_bads) / sizeof(login_bads[0]); i++) {
		const struct login_bad *b = &login_bads[i];
		struct sasl_login l;
		char chal[SASL_LOGIN_CHAL_MAX];
		int rc;

		t_case(b->name);
		sasl_login_init(&l);
		T_CHECK_INT(login_feed(&l, NULL, chal), SASL_CONTINUE);
		rc = login_feed(&l, b->user, chal);
		if (b->pass != NULL) {
			T_CHECK_INT(rc, SASL_CONTINUE);
			rc = login_feed(&l, b->pass, chal);
		}
		T_CHECK_INT(rc, SASL_ERR_SYNTAX);
		T_CHECK_INT(l.state, SASL_LOGIN_FAILED);
		T_CHECK(l.user[0] == '\0' && l.pass[0] == '\0');
		T_CHECK_INT(login_feed(&l, "dXNlcg==", chal), SASL_ERR_SYNTAX);
	}
	{
		struct sasl_login l;
		char chal[SASL_LOGIN_CHAL_MAX];

		t_case("no response in user state");
		sasl_login_init(&l);
		T_CHECK_INT(login_feed(&l, NULL, chal), SASL_CONTINUE);
		T_CHECK_INT(login_feed(&l, NULL, chal), SASL_ERR_SYNTAX);
	}
}

static void
test_login_lengths(void)
{
	unsigned char raw[256];
	char enc[400], chal[SASL_LOGIN_CHAL_MAX];
	struct sasl_login l;
	size_t n;

	memset(raw, 'p', sizeof(raw));
	t_case("login pass 255");
	sasl_login_init(&l);
	T_CHECK_INT(login_feed(&l, "dXNlcg==", chal), SASL_CONTINUE);
	T_CHECK_INT(auth_b64_encode(raw, 255, enc, sizeof(enc), &n), 0);
	T_CHECK_INT(login_feed(&l, enc, chal), SASL_OK);
	T_CHECK_INT(strlen(l.pass), 255);
	t_case("login pass 256");
	sasl_login_init(&l);
	T_CHECK_INT(login_feed(&l, "dXNlcg==", chal), SASL_CONTINUE);
	T_CHECK_INT(auth_b64_encode(raw, 256, enc, sizeof(enc), &n), 0);
	T_CHECK_INT(login_feed(&l, enc, chal), SASL_ERR_SYNTAX);
	t_case("login user 256");
	sasl_login_init(&l);
	T_CHECK_INT(login_feed(&l, enc, chal), SASL_ERR_SYNTAX);
	T_CHECK(l.user[0] == '\0');
}

/* ---- passwords ---------------------------------------------------------- */

static double
elapsed_ms(const char *hash, const char *pw)
{
	struct timespec a, b;
	bool r;

	clock_gettime(CLOCK_MONOTONIC, &a);
	r = auth_password_ok(hash, pw);
	clock_gettime(CLOCK_MONOTONIC, &b);
	(void)r;
	return (double)(b.tv_sec - a.tv_sec) * 1e3 +
	       (double)(b.tv_nsec - a.tv_nsec) / 1e6;
}

static void
test_password_roundtrip(void)
{
	char h1[AUTH_HASH_MAX], h2[AUTH_HASH_MAX], locked[AUTH_HASH_MAX + 1];

	t_case("hash");
	T_CHECK_INT(auth_password_hash("correct horse", h1, sizeof(h1)), 0);
	T_CHECK(strncmp(h1, "$y$", 3) == 0);
	T_CHECK_INT(auth_password_hash("correct horse", h2, sizeof(h2)), 0);
	T_CHECK(strcmp(h1, h2) != 0); /* fresh salt each time */
	t_case("verify");
	T_CHECK(auth_password_ok(h1, "correct horse"));
	T_CHECK(auth_password_ok(h2, "correct horse"));
	t_case("wrong password");
	T_CHECK(!auth_password_ok(h1, "correct horsE"));
	T_CHECK(!auth_password_ok(h1, "correct horse "));
	T_CHECK(!auth_password_ok(h1, ""));
	T_CHECK(!auth_password_ok(h1, NULL));
	t_case("locked and broken hashes");
	T_CHECK(str_fmt(locked, sizeof(locked), "!%s", h1) == 0);
	T_CHECK(!auth_password_ok(locked, "correct horse"));
	T_CHECK(!auth_password_ok("*", "correct horse"));
	T_CHECK(!auth_password_ok("", ""));
	T_CHECK(!auth_password_ok("$y$", "correct horse"));
	T_CHECK(!auth_password_ok("$y$j9T$", ""));
	t_case("hash buffer too small");
	T_CHECK_INT(auth_password_hash("x", h2, 10), -1);
	T_CHECK_STR(h2, "");
	T_CHECK_INT(auth_password_hash(NULL, h2, sizeof(h2)), -1);
}

/* Hashes made elsewhere (e.g. imported from /etc/shadow) still verify. */
static void
test_password_legacy(void)
{
	char *salt = crypt_gensalt_ra("$6$", 0, NULL, 0);
	void *data = NULL;
	int size = 0;
	const char *h;

	t_case("sha512crypt");
	T_CHECK(salt != NULL);
	if (salt == NULL)
		return;
	h = crypt_ra("legacy pw", salt, &data, &size);
	T_CHECK(h != NULL && strncmp(h, "$6$", 3) == 0);
	if (h != NULL) {
		T_CHECK(auth_password_ok(h, "legacy pw"));
		T_CHECK(!auth_password_ok(h, "legacy pW"));
	}
	free(data);
	free(salt);
}

/* A crypt(3) hash of pw with the given setting prefix (malloc'ed). */
static char *
make_hash(const char *prefix, const char *pw)
{
	char *salt = crypt_gensalt_ra(prefix, 0, NULL, 0);
	struct crypt_data d;
	char *h, *out = NULL;

	if (salt == NULL)
		return NULL;
	memset(&d, 0, sizeof(d));
	h = crypt_r(pw, salt, &d);
	if (h != NULL && h[0] != '*')
		out = strdup(h);
	free(salt);
	return out;
}

/*
 * Issue 11 item 11: only yescrypt, bcrypt, sha512crypt and sha256crypt.
 * DES crypt (8 characters of the password count), MD5-crypt and the rest
 * are refused even with the right password.
 */
static void
test_hash_methods(void)
{
	static const struct {
		const char *prefix;
		bool ok;
	} m[] = {
	    {"$y$", true},
	    {"$2b$", true},
	    {"$2a$", true},
	    {"$2y$", true},
	    {"$6$", true},
	    {"$5$", true},
	    {"$1$", false},
	    {"", false} /* DES */,
	    {"_", false} /* BSDi DES */,
	    {"$7$", false} /* scrypt */,
	    {"$gy$", false},
	    {"$3$", false} /* NT */,
	};
	size_t i;

	for (i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		char *h;

		t_case(m[i].prefix[0] ? m[i].prefix : "DES");
		if (m[i].prefix[0] == '\0') {
			/* traditional DES: a two-character salt */
			struct crypt_data d;

			memset(&d, 0, sizeof(d));
			h = crypt_r("pass word", "ab", &d);
			h = h != NULL ? strdup(h) : NULL;
		} else {
			h = make_hash(m[i].prefix, "pass word");
		}
		T_CHECK(h != NULL);
		if (h == NULL)
			continue;
		T_CHECK_INT(auth_hash_method_ok(h), m[i].ok);
		T_CHECK_INT(auth_password_ok(h, "pass word"), m[i].ok);
		T_CHECK(!auth_password_ok(h, "pass worD"));
		free(h);
	}
	t_case("DES truncation no longer lets 8 characters in");
	{
		struct crypt_data d;
		const char *h;

		memset(&d, 0, sizeof(d));
		h = crypt_r("password-long", "ab", &d);
		T_CHECK(h != NULL && !auth_password_ok(h, "password"));
	}
	t_case("not hashes");
	T_CHECK(!auth_hash_method_ok(NULL));
	T_CHECK(!auth_hash_method_ok(""));
	T_CHECK(!auth_hash_method_ok("!$y$j9T$abc"));
	T_CHECK(!auth_hash_method_ok("*"));
	T_CHECK(!auth_hash_method_ok("$y$"));
	T_CHECK(!auth_hash_method_ok("$6$"));
	T_CHECK(!auth_hash_method_ok("$6$saltsalt$"));
	T_CHECK(!auth_hash_method_ok(
	    "$y$j9T$BnjyM20lkaIxEgUM7DT/"
	    "G.$n3W.DPW7j0VEmNVsLJkPFxEC9Xe7YCKdnKiCwUx6rw"));
	T_CHECK(auth_hash_method_ok(
	    "$y$j9T$BnjyM20lkaIxEgUM7DT/"
	    "G.$n3W.DPW7j0VEmNVsLJkPFxEC9Xe7YCKdnKiCwUx6rw8"));
	T_CHECK(!auth_hash_method_ok(
	    "$y$j9T$BnjyM20lkaIxEgUM7DT/"
	    "G.$n3W.DPW7j0VEmNVsLJkPFxEC9Xe7YCKdnKiCwUx6r!8"));
	T_CHECK(!auth_hash_method_ok("plain text"));
}

/*
 * No such user: false, and about as slow as a wrong password (crypt
 * really runs).  A loose bound keeps this from flaking on a busy machine.
 */
static void
test_password_unknown_user(void)
{
	char h[AUTH_HASH_MAX];
	double real = 1e9, dummy = 1e9;
	int i;

	t_case("unknown user");
	T_CHECK_INT(auth_password_hash("pw", h, sizeof(h)), 0);
	T_CHECK(!auth_password_ok(NULL, "pw"));
	T_CHECK(!auth_password_ok(NULL, ""));
	T_CHECK(!auth_password_ok(NULL, NULL));
	for (i = 0; i < 5; i++) {
		double r = elapsed_ms(h, "wrong"),
		       d = elapsed_ms(NULL, "wrong");

		real = r < real ? r : real;
		dummy = d < dummy ? d : dummy;
	}
	t_case("unknown user costs a crypt");
	T_CHECK(dummy > real / 4);
	T_CHECK(real > dummy / 4);
	printf("yescrypt: wrong password %.1f ms, unknown user %.1f ms\n", real,
	    dummy);
}

/* ---- throttle ----------------------------------------------------------- */

/* A client key for ip[0..n); a ring of them so one call may use two. */
static const struct client_key *
ck(const void *ip, size_t n)
{
	static struct client_key ring[4];
	static unsigned next;
	struct client_key *k = &ring[next++ % 4];

	client_key_ip(k, ip, n);
	return k;
}

static void
test_throttle_growth(void)
{
	static const unsigned want[] = {0, 0, 0, 1000, 2000, 4000, 8000, 16000,
	    30000, 30000}; /* after failure 1, 2, ... */
	struct auth_throttle *t = auth_throttle_new(16);
	const unsigned char ip[4] = {192, 0, 2, 1}, other[4] = {192, 0, 2, 2};
	uint64_t now = 1000;
	size_t i;

	t_case("fresh");
	T_CHECK_INT(auth_throttle_delay_ms(t, ck(ip, 4), now), 0);
	T_CHECK_INT(auth_throttle_count(t), 0);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		t_case("growth");
		auth_throttle_fail(t, ck(ip, 4), now);
		T_CHECK_INT(auth_throttle_delay_ms(t, ck(ip, 4), now), want[i]);
		now += 1000;
	}
	for (i = 0; i < 1000; i++)
		auth_throttle_fail(t, ck(ip, 4), now);
	t_case("capped");
	T_CHECK_INT(auth_throttle_delay_ms(t, ck(ip, 4), now), 30000);
	t_case("others unaffected");
	T_CHECK_INT(auth_throttle_delay_ms(t, ck(other, 4), now), 0);
	t_case("success forgets");
	auth_throttle_success(t, ck(ip, 4));
	T_CHECK_INT(auth_throttle_delay_ms(t, ck(ip, 4), now), 0);
	T_CHECK_INT(auth_throttle_count(t), 0);
	auth_throttle_success(t, ck(other, 4)); /* unknown: no-op */
	auth_throttle_free(t);
	auth_throttle_free(NULL);
}

static void
test_throttle_decay(void)
{
	struct auth_throttle *t = auth_throttle_new(16);
	const unsigned char ip[4] = {198, 51, 100, 7};
	uint64_t now = 5000;
	int i;

	for (i = 0; i < 5; i++)
		auth_throttle_fail(t, ck(ip, 4), now);
	t_case("decay: still remembered just before");
	T_CHECK_INT(auth_throttle_delay_ms(
			t, ck(ip, 4), now + AUTH_THROTTLE_FORGET_MS - 1),
	    2000);
	t_case("decay: forgotten after 15 minutes");
	T_CHECK_INT(
	    auth_throttle_delay_ms(t, ck(ip, 4), now + AUTH_THROTTLE_FORGET_MS),
	    0);
	T_CHECK_INT(auth_throttle_count(t), 0);
	t_case("decay: counting restarts");
	now += AUTH_THROTTLE_FORGET_MS + 10;
	for (i = 0; i < 3; i++)
		auth_throttle_fail(t, ck(ip, 4), now);
	T_CHECK_INT(auth_throttle_delay_ms(t, ck(ip, 4), now), 0);
	auth_throttle_fail(t, ck(ip, 4), now);
	T_CHECK_INT(auth_throttle_delay_ms(t, ck(ip, 4), now), 1000);
	t_case("decay: fail() prunes expired entries");
	{
		const unsigned char ip2[4] = {198, 51, 100, 8};

		auth_throttle_fail(
		    t, ck(ip2, 4), now + AUTH_THROTTLE_FORGET_MS);
		T_CHECK_INT(auth_throttle_count(t), 1);
	}
	auth_throttle_free(t);
}

static void
test_throttle_v6(void)
{
	struct auth_throttle *t = auth_throttle_new(16);
	unsigned char a[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1};
	unsigned char b[16], c[16];
	unsigned char mapped[16] = {
	    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 203, 0, 113, 9};
	const unsigned char v4[4] = {203, 0, 113, 9};
	int i;

	memcpy(b, a, 16);
	b[15] = 0x42; /* same /64 */
	memcpy(c, a, 16);
	c[7] = 2; /* next /64 */
	for (i = 0; i < 4; i++)
		auth_throttle_fail(t, ck(a, 16), 100);
	t_case("v6 same /64 shares");
	T_CHECK_INT(auth_throttle_delay_ms(t, ck(b, 16), 100), 1000);
	t_case("v6 other /64 apart");
	T_CHECK_INT(auth_throttle_delay_ms(t, ck(c, 16), 100), 0);
	t_case("v4-mapped is v4");
	for (i = 0; i < 5; i++)
		auth_throttle_fail(t, ck(mapped, 16), 100);
	T_CHECK_INT(auth_throttle_delay_ms(t, ck(v4, 4), 100), 2000);
	T_CHECK_INT(auth_throttle_count(t), 2);
	auth_throttle_free(t);
}

static void
test_throttle_evict(void)
{
	struct auth_throttle *t = auth_throttle_new(4);
	unsigned char ip[4] = {10, 0, 0, 0};
	uint64_t now = 1;
	int i, k;

	for (k = 1; k <= 4; k++) {
		ip[3] = (unsigned char)k;
		for (i = 0; i < 4; i++)
			auth_throttle_fail(t, ck(ip, 4), now++);
	}
	/* 1 fails again: 2 is now the oldest */
	ip[3] = 1;
	auth_throttle_fail(t, ck(ip, 4), now++);
	ip[3] = 5;
	auth_throttle_fail(t, ck(ip, 4), now++);
	t_case("evict: bounded");
	T_CHECK_INT(auth_throttle_count(t), 4);
	t_case("evict: oldest gone");
	ip[3] = 2;
	T_CHECK_INT(auth_throttle_delay_ms(t, ck(ip, 4), now), 0);
	t_case("evict: recent kept");
	ip[3] = 1;
	T_CHECK_INT(auth_throttle_delay_ms(t, ck(ip, 4), now), 2000);
	ip[3] = 3;
	T_CHECK_INT(auth_throttle_delay_ms(t, ck(ip, 4), now), 1000);
	auth_throttle_free(t);
}

/*
 * Issue 11 item 2: the penalty is served before the verdict.  Past the
 * free failures an attempt waits out the penalty of the last failure
 * whatever its password, and a second attempt of the same client while
 * one is held or being checked is refused (BUSY), so neither hanging up
 * nor parallel connections speed a guesser up.
 */
static void
test_throttle_admit(void)
{
	struct auth_throttle *t = auth_throttle_new(16);
	const unsigned char ip[4] = {192, 0, 2, 7}, other[4] = {192, 0, 2, 8};
	unsigned wait;
	uint64_t tk, tk2, now = 10000;
	int i;

	t_case("admit: fresh client, no wait");
	T_CHECK_INT(auth_throttle_admit(t, ck(ip, 4), now, &wait, &tk),
	    AUTH_THROTTLE_GO);
	T_CHECK_INT(wait, 0);
	T_CHECK(tk != 0);
	auth_throttle_release(t, ck(ip, 4), tk);
	T_CHECK_INT(auth_throttle_count(t), 0); /* nothing left behind */

	t_case("admit: free failures run in parallel, up to three");
	{
		uint64_t tks[3];

		for (i = 0; i < 3; i++)
			T_CHECK_INT(auth_throttle_admit(
					t, ck(ip, 4), now, &wait, &tks[i]),
			    AUTH_THROTTLE_GO);
		T_CHECK_INT(auth_throttle_admit(t, ck(ip, 4), now, &wait, &tk2),
		    AUTH_THROTTLE_BUSY);
		for (i = 0; i < 3; i++) {
			auth_throttle_fail(t, ck(ip, 4), now);
			auth_throttle_release(t, ck(ip, 4), tks[i]);
		}
	}
	t_case("admit: after 3 failures, one at a time, no wait yet");
	T_CHECK_INT(auth_throttle_admit(t, ck(ip, 4), now, &wait, &tk),
	    AUTH_THROTTLE_GO);
	T_CHECK_INT(wait, 0);
	T_CHECK_INT(auth_throttle_admit(t, ck(ip, 4), now, &wait, &tk2),
	    AUTH_THROTTLE_BUSY);
	t_case("admit: other clients unaffected");
	T_CHECK_INT(auth_throttle_admit(t, ck(other, 4), now, &wait, &tk2),
	    AUTH_THROTTLE_GO);
	T_CHECK_INT(wait, 0);
	auth_throttle_release(t, ck(other, 4), tk2);

	t_case("admit: 4th failure, 1 s penalty for the next attempt");
	auth_throttle_fail(t, ck(ip, 4), now);
	T_CHECK_INT(auth_throttle_delay_ms(t, ck(ip, 4), now), 1000);
	auth_throttle_release(t, ck(ip, 4), tk);
	/* a guesser that hung up comes back 150 ms later: it still waits */
	T_CHECK_INT(auth_throttle_admit(t, ck(ip, 4), now + 150, &wait, &tk),
	    AUTH_THROTTLE_GO);
	T_CHECK_INT(wait, 850);
	t_case("admit: a second attempt meanwhile is refused");
	T_CHECK_INT(auth_throttle_admit(t, ck(ip, 4), now + 200, &wait, &tk2),
	    AUTH_THROTTLE_BUSY);
	t_case("admit: the held one given up frees the slot, same wait");
	auth_throttle_release(t, ck(ip, 4), tk);
	T_CHECK_INT(auth_throttle_admit(t, ck(ip, 4), now + 300, &wait, &tk),
	    AUTH_THROTTLE_GO);
	T_CHECK_INT(wait, 700);
	t_case("admit: a release twice, or a stale ticket, frees nothing more");
	auth_throttle_release(t, ck(ip, 4), tk2); /* tk2 was never issued: 0 */
	auth_throttle_release(t, ck(ip, 4), tk + 1);
	T_CHECK_INT(auth_throttle_admit(t, ck(ip, 4), now + 310, &wait, &tk2),
	    AUTH_THROTTLE_BUSY);
	t_case("admit: 5th failure: 2 s from then");
	auth_throttle_fail(t, ck(ip, 4), now + 1000);
	auth_throttle_release(t, ck(ip, 4), tk);
	T_CHECK_INT(auth_throttle_admit(t, ck(ip, 4), now + 1000, &wait, &tk),
	    AUTH_THROTTLE_GO);
	T_CHECK_INT(wait, 2000);
	t_case("admit: a success forgets the client and voids its tickets");
	auth_throttle_success(t, ck(ip, 4));
	auth_throttle_release(t, ck(ip, 4), tk);
	T_CHECK_INT(auth_throttle_count(t), 0);
	T_CHECK_INT(auth_throttle_admit(t, ck(ip, 4), now + 1001, &wait, &tk),
	    AUTH_THROTTLE_GO);
	T_CHECK_INT(wait, 0);
	auth_throttle_release(t, ck(ip, 4), tk);
	t_case("admit: penalty served, no wait");
	for (i = 0; i < 4; i++)
		auth_throttle_fail(t, ck(ip, 4), now + 2000);
	T_CHECK_INT(auth_throttle_admit(t, ck(ip, 4), now + 3000, &wait, &tk),
	    AUTH_THROTTLE_GO);
	T_CHECK_INT(wait, 0);
	auth_throttle_release(t, ck(ip, 4), tk);
	t_case("admit: a client in IPv6 is its /64");
	{
		unsigned char a[16] = {
		    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 1};
		unsigned char b[16];

		memcpy(b, a, 16);
		b[15] = 2;
		for (i = 0; i < 5; i++)
			auth_throttle_fail(t, ck(a, 16), now);
		T_CHECK_INT(
		    auth_throttle_admit(t, ck(b, 16), now + 500, &wait, &tk),
		    AUTH_THROTTLE_GO);
		T_CHECK_INT(wait, 1500);
		b[15] = 3;
		T_CHECK_INT(
		    auth_throttle_admit(t, ck(b, 16), now + 500, &wait, &tk2),
		    AUTH_THROTTLE_BUSY);
	}
	auth_throttle_free(t);
}

/* Many addresses through a small table: stays bounded and consistent. */
static void
test_throttle_churn(void)
{
	struct auth_throttle *t = auth_throttle_new(64);
	struct auth_throttle *one = auth_throttle_new(0);
	uint64_t now = 0;
	int i;

	t_case("churn");
	for (i = 0; i < 100000; i++) {
		unsigned char ip[4];
		uint64_t r = t_rand();

		memcpy(ip, &r, 4);
		ip[0] &= 0x7f; /* a few thousand distinct addresses */
		ip[1] = ip[2] = 0;
		now += r % 50000;
		if ((r >> 40) % 10 == 0)
			auth_throttle_success(t, ck(ip, 4));
		else
			auth_throttle_fail(t, ck(ip, 4), now);
		if (auth_throttle_delay_ms(t, ck(ip, 4), now) > 30000 ||
		    auth_throttle_count(t) > 64)
			T_CHECK(0);
		auth_throttle_fail(one, ck(ip, 4), now);
		if (auth_throttle_count(one) != 1)
			T_CHECK(0);
	}
	auth_throttle_free(t);
	auth_throttle_free(one);
}

int
main(void)
{
	T_RUN(test_b64_valid);
	T_RUN(test_b64_invalid);
	T_RUN(test_b64_bounds);
	T_RUN(test_b64_roundtrip);
	T_RUN(test_plain_table);
	T_RUN(test_plain_lengths);
	T_RUN(test_plain_small_buffers);
	T_RUN(test_plain_b64);
	T_RUN(test_login_flow);
	T_RUN(test_login_initial);
	T_RUN(test_login_bad);
	T_RUN(test_login_lengths);
	T_RUN(test_password_roundtrip);
	T_RUN(test_password_legacy);
	T_RUN(test_hash_methods);
	T_RUN(test_password_unknown_user);
	T_RUN(test_throttle_growth);
	T_RUN(test_throttle_decay);
	T_RUN(test_throttle_v6);
	T_RUN(test_throttle_evict);
	T_RUN(test_throttle_churn);
	T_RUN(test_throttle_admit);
	return t_summary();
}
