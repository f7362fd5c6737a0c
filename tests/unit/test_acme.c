/*
 * Unit tests for src/acme/ (acme.c, jws.c): the parsers of an ACME
 * server's answers (each input placed right before an unreadable page),
 * Retry-After, the JWK of RFC 7515 A.3's key and its RFC 7638 thumbprint,
 * a JWS verified with OpenSSL, the CSR, a pair's check, and the state
 * machine driven through a whole order by a scripted server (with a
 * badNonce retried once, Retry-After waits and a refused identifier).
 */
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "t.h"
#include "acme/acme.h"
#include "util/json.h"

/* ---- parsers --------------------------------------------------------------
 */

#define DIR_OK                                                                 \
	"{\"newNonce\":\"https://a.example/nonce\",\"newAccount\":"            \
	"\"https://a.example/acct\",\"newOrder\":\"https://a.example/order\"," \
	"\"meta\":{\"termsOfService\":\"x\"}}"

static const struct {
	const char *in;
	int want;
} dir_rows[] = {
    {DIR_OK, 0},
    {"{\"newNonce\":\"https://a/n\",\"newAccount\":\"https://a/a\"}", -1},
    {"{\"newNonce\":\"http://a/n\",\"newAccount\":\"https://a/a\","
     "\"newOrder\":\"https://a/o\"}",
	-1},
    {"{\"newNonce\":\"https://a/n\\\"x\",\"newAccount\":\"https://a/a\","
     "\"newOrder\":\"https://a/o\"}",
	-1},
    {"{\"newNonce\":\"https://a/n\\u0001\",\"newAccount\":\"https://a/a\","
     "\"newOrder\":\"https://a/o\"}",
	-1},
    {"[1]", -1},
    {"", -1},
    {"{\"newNonce\":5}", -1},
};

static void
test_directory(void)
{
	struct acme_directory d;
	char err[200];
	void *map;
	size_t ml, i;

	for (i = 0; i < sizeof(dir_rows) / sizeof(dir_rows[0]); i++) {
		size_t n = strlen(dir_rows[i].in);
		const char *g = t_guard(dir_rows[i].in, n, &map, &ml);

		t_case(dir_rows[i].in);
		T_CHECK_INT(acme_directory_parse(g, n, &d, err, sizeof(err)),
		    dir_rows[i].want);
		if (dir_rows[i].want == 0)
			T_CHECK_STR(d.new_order, "https://a.example/order");
		t_unguard(map, ml);
	}
}

static const struct {
	const char *in;
	int want;
	enum acme_status st;
	size_t nauthz;
} order_rows[] = {
    {"{\"status\":\"pending\",\"authorizations\":[\"https://a/z/1\","
     "\"https://a/z/2\"],\"finalize\":\"https://a/f\"}",
	0, ACME_ST_PENDING, 2},
    {"{\"status\":\"valid\",\"authorizations\":[\"https://a/z/1\"],"
     "\"finalize\":\"https://a/f\",\"certificate\":\"https://a/c\"}",
	0, ACME_ST_VALID, 1},
    {"{\"status\":\"deactivated\",\"authorizations\":[\"https://a/z/1\"],"
     "\"finalize\":\"https://a/f\"}",
	0, ACME_ST_INVALID, 1},
    {"{\"status\":\"bogus\",\"authorizations\":[\"https://a/z/1\"],"
     "\"finalize\":\"https://a/f\"}",
	-1, 0, 0},
    {"{\"status\":\"pending\",\"authorizations\":[],"
     "\"finalize\":\"https://a/f\"}",
	-1, 0, 0},
    {"{\"status\":\"pending\",\"authorizations\":[7],"
     "\"finalize\":\"https://a/f\"}",
	-1, 0, 0},
    {"{\"status\":\"pending\",\"authorizations\":[\"https://a/z/1\"]}", -1, 0,
	0},
    {"{\"status\":\"valid\",\"authorizations\":[\"https://a/z/1\"],"
     "\"finalize\":\"https://a/f\",\"certificate\":\"ftp://a/c\"}",
	-1, 0, 0},
};

static void
test_order(void)
{
	static struct acme_order o;
	char err[200];
	void *map;
	size_t ml, i;

	for (i = 0; i < sizeof(order_rows) / sizeof(order_rows[0]); i++) {
		size_t n = strlen(order_rows[i].in);
		const char *g = t_guard(order_rows[i].in, n, &map, &ml);

		t_case(order_rows[i].in);
		T_CHECK_INT(acme_order_parse(g, n, &o, err, sizeof(err)),
		    order_rows[i].want);
		if (order_rows[i].want == 0) {
			T_CHECK_INT(o.status, order_rows[i].st);
			T_CHECK_INT(o.nauthz, order_rows[i].nauthz);
		}
		t_unguard(map, ml);
	}
}

/* More authorizations than a certificate may name: refused. */
static void
test_order_too_many(void)
{
	static struct acme_order o;
	struct buf b;
	char err[200];
	int i, rc = 0;

	t_case("order: ACME_DOMAINS_MAX + 1 authorizations");
	buf_init(&b, 1 << 16);
	rc |=
	    buf_append_str(&b, "{\"status\":\"pending\",\"authorizations\":[");
	for (i = 0; i <= ACME_DOMAINS_MAX; i++)
		rc |= buf_printf(&b, "%s\"https://a/z/%d\"", i ? "," : "", i);
	rc |= buf_append_str(&b, "],\"finalize\":\"https://a/f\"}");
	T_CHECK(rc == 0);
	T_CHECK_INT(acme_order_parse(b.data, b.len, &o, err, sizeof(err)), -1);
	T_CHECK(strstr(err, "more than") != NULL);
	buf_free(&b);
}

#define AUTHZ(status, chal)                                                    \
	"{\"status\":\"" status "\",\"identifier\":{\"type\":\"dns\","         \
	"\"value\":\"mail.example.org\"},\"challenges\":[" chal "]}"
#define CHAL_DNS                                                               \
	"{\"type\":\"dns-01\",\"url\":\"https://a/c/9\",\"token\":\"dd\"}"
#define CHAL_HTTP(tok)                                                         \
	"{\"type\":\"http-01\",\"url\":\"https://a/c/1\",\"token\":\"" tok     \
	"\",\"status\":\"pending\"}"

static const struct {
	const char *in;
	int want;
	bool http01;
	const char *token;
} authz_rows[] = {
    {AUTHZ("pending", CHAL_DNS "," CHAL_HTTP("tok-EN_1")), 0, true, "tok-EN_1"},
    {AUTHZ("pending", CHAL_DNS), 0, false, ""},
    {AUTHZ("valid", ""), 0, false, ""},
    {AUTHZ("pending", CHAL_HTTP("bad/token")), -1, false, ""},
    {AUTHZ("pending", CHAL_HTTP("")), -1, false, ""},
    {AUTHZ("pending", "{\"type\":\"http-01\",\"url\":\"https://a/c/1\"}"), -1,
	false, ""},
    {"{\"status\":\"pending\",\"challenges\":[]}", -1, false, ""},
    {AUTHZ("sleepy", ""), -1, false, ""},
};

static void
test_authz(void)
{
	struct acme_authz a;
	char err[200];
	void *map;
	size_t ml, i;

	for (i = 0; i < sizeof(authz_rows) / sizeof(authz_rows[0]); i++) {
		size_t n = strlen(authz_rows[i].in);
		const char *g = t_guard(authz_rows[i].in, n, &map, &ml);

		t_case(authz_rows[i].in);
		T_CHECK_INT(acme_authz_parse(g, n, &a, err, sizeof(err)),
		    authz_rows[i].want);
		if (authz_rows[i].want == 0) {
			T_CHECK(a.has_http01 == authz_rows[i].http01);
			T_CHECK_STR(a.token, authz_rows[i].token);
			T_CHECK_STR(a.domain, "mail.example.org");
		}
		t_unguard(map, ml);
	}
}

static void
test_problem(void)
{
	static const char in[] =
	    "{\"type\":\"urn:ietf:params:acme:error:rejectedIdentifier\","
	    "\"detail\":\"no\",\"status\":400}";
	struct acme_problem p;

	t_case("problem document");
	T_CHECK_INT(acme_problem_parse(in, strlen(in), &p), 0);
	T_CHECK_STR(p.type, "urn:ietf:params:acme:error:rejectedIdentifier");
	T_CHECK_STR(p.detail, "no");
	t_case("not a problem");
	T_CHECK_INT(acme_problem_parse("{}", 2, &p), -1);
	T_CHECK_INT(acme_problem_parse("<html>", 6, &p), -1);
}

static const struct {
	const char *in;
	int want;
	unsigned secs;
} retry_rows[] = {
    {"120", 0, 120},
    {" 7 ", 0, 7},
    {"0", 0, 0},
    /* 1700000000 is Tue, 14 Nov 2023 22:13:20 GMT */
    {"Tue, 14 Nov 2023 22:14:20 GMT", 0, 60},
    {"Tue, 14 Nov 2023 22:00:00 GMT", 0, 0},
    {"Tue, 14 Nov 2023 22:14:20 UTC", -1, 0},
    {"soon", -1, 0},
    {"", -1, 0},
    {"-5", -1, 0},
};

static void
test_retry_after(void)
{
	unsigned secs;
	void *map;
	size_t ml, i;

	for (i = 0; i < sizeof(retry_rows) / sizeof(retry_rows[0]); i++) {
		size_t n = strlen(retry_rows[i].in);
		const char *g = t_guard(retry_rows[i].in, n, &map, &ml);

		t_case(retry_rows[i].in);
		secs = 12345;
		T_CHECK_INT(acme_retry_after_parse(g, n, 1700000000, &secs),
		    retry_rows[i].want);
		if (retry_rows[i].want == 0)
			T_CHECK_INT(secs, retry_rows[i].secs);
		t_unguard(map, ml);
	}
}

/* ---- keys, JWK, JWS, CSR ----------------------------------------------------
 */

/* b64url decoded into out (padding put back). */
static size_t
b64url_decode(const char *in, size_t n, unsigned char *out, size_t outlen)
{
	char tmp[8192];
	size_t i, m = n;
	int r;

	if (n + 4 > sizeof(tmp) || outlen < 3 * (n / 4 + 1))
		return 0;
	for (i = 0; i < n; i++)
		tmp[i] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
	while (m % 4 != 0)
		tmp[m++] = '=';
	r = EVP_DecodeBlock(out, (unsigned char *)tmp, (int)m);
	return r < 0 ? 0 : (size_t)r - (m - n);
}

/* RFC 7515 A.3's P-256 key. */
static EVP_PKEY *
rfc7515_key(void)
{
	static const char x[] = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
	static const char y[] = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
	static const char d[] = "jpsQnnGQmL-YBIffH1136cLv2ByQFKhmCTEQ1-gHHYQ";
	unsigned char pub[65], tmp[48], priv[64];
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	EVP_PKEY *k = NULL;
	BIGNUM *bn;

	/* each decode writes 33 octets (the padding's): through tmp */
	pub[0] = 4;
	b64url_decode(x, strlen(x), tmp, sizeof(tmp));
	memcpy(pub + 1, tmp, 32);
	b64url_decode(y, strlen(y), tmp, sizeof(tmp));
	memcpy(pub + 33, tmp, 32);
	b64url_decode(d, strlen(d), priv, sizeof(priv));
	bn = BN_bin2bn(priv, 32, NULL);
	OSSL_PARAM_BLD_push_utf8_string(
	    bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
	OSSL_PARAM_BLD_push_octet_string(
	    bld, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub));
	OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, bn);
	params = OSSL_PARAM_BLD_to_param(bld);
	if (EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_KEYPAIR, params) != 1)
		k = NULL;
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(ctx);
	BN_free(bn);
	return k;
}

static void
test_jwk(void)
{
	EVP_PKEY *k = rfc7515_key();
	char thumb[ACME_THUMB_LEN + 1];
	struct buf b;

	t_case("JWK of RFC 7515 A.3's key, RFC 7638 member order");
	T_CHECK(k != NULL);
	if (k == NULL)
		return;
	buf_init(&b, 4096);
	T_CHECK_INT(acme_jwk(k, &b), 0);
	T_CHECK_STR(b.data,
	    "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":"
	    "\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\",\"y\":"
	    "\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}");
	t_case("thumbprint (hashlib's answer)");
	T_CHECK_INT(acme_thumbprint(k, thumb), 0);
	T_CHECK_STR(thumb, "oKIywvGUpTVTyxMQ3bwIIeQUudfr_CkLMjCE19ECD-U");
	t_case("key authorization");
	{
		char ka[ACME_KEYAUTH_MAX + 1];

		T_CHECK_INT(
		    acme_key_authz("tok_1-x", thumb, ka, sizeof(ka)), 0);
		T_CHECK_STR(
		    ka, "tok_1-x.oKIywvGUpTVTyxMQ3bwIIeQUudfr_CkLMjCE19ECD-U");
		T_CHECK_INT(
		    acme_key_authz("../etc", thumb, ka, sizeof(ka)), -1);
		T_CHECK_INT(acme_key_authz("", thumb, ka, sizeof(ka)), -1);
	}
	buf_free(&b);
	EVP_PKEY_free(k);
}

/* The member of a flattened JWS, decoded. */
static size_t
jws_part(const struct json_node *root, const char *name, unsigned char *out,
    size_t outlen)
{
	const char *v = json_get_str(root, name);

	return v == NULL ? 0 : b64url_decode(v, strlen(v), out, outlen);
}

static bool
jws_verify(
    EVP_PKEY *k, const char *prot, const char *payload, const unsigned char *rs)
{
	ECDSA_SIG *sig = ECDSA_SIG_new();
	unsigned char *der = NULL;
	char input[8192];
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int dlen, ok = 0;

	ECDSA_SIG_set0(
	    sig, BN_bin2bn(rs, 32, NULL), BN_bin2bn(rs + 32, 32, NULL));
	dlen = i2d_ECDSA_SIG(sig, &der);
	if (str_fmt(input, sizeof(input), "%s.%s", prot, payload) == 0 &&
	    EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k) == 1)
		ok = EVP_DigestVerify(md, der, (size_t)dlen,
		    (unsigned char *)input, strlen(input));
	OPENSSL_free(der);
	ECDSA_SIG_free(sig);
	EVP_MD_CTX_free(md);
	return ok == 1;
}

static void
test_jws(void)
{
	EVP_PKEY *k = acme_key_new();
	struct json_doc *d;
	const struct json_node *root;
	unsigned char hdr[2048], sig[128];
	char err[200];
	struct buf b;
	size_t n;

	t_case("JWS with kid: header, payload and ES256 signature");
	buf_init(&b, 1 << 16);
	T_CHECK_INT(acme_jws(k, "https://a/acct/1", "Tm9uY2U",
			"https://a/order", "{\"x\":1}", &b),
	    0);
	d = json_parse(b.data, b.len, NULL, err, sizeof(err));
	T_CHECK(d != NULL);
	if (d == NULL)
		return;
	root = json_root(d);
	n = jws_part(root, "protected", hdr, sizeof(hdr) - 1);
	hdr[n] = '\0';
	T_CHECK_STR((char *)hdr,
	    "{\"alg\":\"ES256\",\"kid\":\"https://a/acct/1\",\"nonce\":"
	    "\"Tm9uY2U\",\"url\":\"https://a/order\"}");
	T_CHECK_INT(jws_part(root, "signature", sig, sizeof(sig)), 64);
	T_CHECK(jws_verify(k, json_get_str(root, "protected"),
	    json_get_str(root, "payload"), sig));
	t_case("a changed payload does not verify");
	T_CHECK(!jws_verify(k, json_get_str(root, "protected"), "e30", sig));
	json_free(d);
	t_case("JWS with jwk (newAccount), POST-as-GET payload");
	buf_reset(&b);
	T_CHECK_INT(acme_jws(k, NULL, "Tm9uY2U", "https://a/acct", "", &b), 0);
	T_CHECK(strstr(b.data, "\"payload\":\"\"") != NULL);
	d = json_parse(b.data, b.len, NULL, err, sizeof(err));
	n = d != NULL
		? jws_part(json_root(d), "protected", hdr, sizeof(hdr) - 1)
		: 0;
	hdr[n] = '\0';
	T_CHECK(strstr((char *)hdr, "\"jwk\":{\"crv\":\"P-256\"") != NULL);
	json_free(d);
	buf_free(&b);
	EVP_PKEY_free(k);
}

static void
test_key_pem(void)
{
	EVP_PKEY *k = acme_key_new(), *k2;
	struct buf b;

	t_case("key to PEM and back");
	buf_init(&b, 1 << 16);
	T_CHECK_INT(acme_key_pem(k, &b), 0);
	k2 = acme_key_from_pem(b.data, b.len);
	T_CHECK(k2 != NULL && EVP_PKEY_eq(k, k2) == 1);
	t_case("not a key");
	T_CHECK(acme_key_from_pem("junk", 4) == NULL);
	EVP_PKEY_free(k2);
	EVP_PKEY_free(k);
	buf_free(&b);
}

static void
test_csr(void)
{
	const char *names[] = {"mail.example.org", "mx.example.org"};
	EVP_PKEY *k = acme_key_new();
	unsigned char der[4096];
	const unsigned char *p = der;
	X509_REQ *req;
	STACK_OF(X509_EXTENSION) * exts;
	GENERAL_NAMES *gn = NULL;
	struct buf b;
	size_t n;

	t_case("CSR: signed, CN and both names in subjectAltName");
	buf_init(&b, 1 << 16);
	T_CHECK_INT(acme_csr(k, names, 2, &b), 0);
	n = b64url_decode(b.data, b.len, der, sizeof(der));
	req = d2i_X509_REQ(NULL, &p, (long)n);
	T_CHECK(req != NULL);
	if (req == NULL)
		return;
	T_CHECK_INT(X509_REQ_verify(req, k), 1);
	exts = X509_REQ_get_extensions(req);
	for (int i = 0; exts != NULL && i < sk_X509_EXTENSION_num(exts); i++)
		if (OBJ_obj2nid(X509_EXTENSION_get_object(
			sk_X509_EXTENSION_value(exts, i))) ==
		    NID_subject_alt_name)
			gn = X509V3_EXT_d2i(sk_X509_EXTENSION_value(exts, i));
	T_CHECK(gn != NULL && sk_GENERAL_NAME_num(gn) == 2);
	GENERAL_NAMES_free(gn);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(req);
	t_case("CSR: no names");
	T_CHECK_INT(acme_csr(k, names, 0, &b), -1);
	buf_free(&b);
	EVP_PKEY_free(k);
}

/* A self-signed certificate for name, valid days, as PEM. */
static void
make_cert(EVP_PKEY *k, const char *name, long days, struct buf *out)
{
	X509 *x = X509_new();
	BIO *bio = BIO_new(BIO_s_mem());
	X509_EXTENSION *ext;
	char san[300], *p;
	long n;

	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), days * 86400);
	X509_set_pubkey(x, k);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	    (const unsigned char *)name, -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	if (str_fmt(san, sizeof(san), "DNS:%s", name) != 0)
		abort();
	ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san);
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	X509_sign(x, k, EVP_sha256());
	PEM_write_bio_X509(bio, x);
	n = BIO_get_mem_data(bio, &p);
	if (buf_append(out, p, (size_t)n) != 0)
		abort();
	BIO_free(bio);
	X509_free(x);
}

static void
test_pair_check(void)
{
	const char *names[] = {"mail.example.org"};
	const char *other[] = {"mail.example.org", "mx.example.org"};
	EVP_PKEY *k = acme_key_new(), *k2 = acme_key_new();
	struct buf cert, key, key2;
	int64_t na = 0;
	char why[160];

	buf_init(&cert, 1 << 16);
	buf_init(&key, 1 << 16);
	buf_init(&key2, 1 << 16);
	make_cert(k, "mail.example.org", 90, &cert);
	T_CHECK(acme_key_pem(k, &key) == 0 && acme_key_pem(k2, &key2) == 0);
	t_case("pair: good, 90 days");
	T_CHECK_INT(acme_pair_check(cert.data, cert.len, key.data, key.len,
			names, 1, &na, why, sizeof(why)),
	    0);
	T_CHECK(na > (int64_t)time(NULL) + 89 * 86400 &&
		na <= (int64_t)time(NULL) + 90 * 86400 + 5);
	t_case("pair: another key");
	T_CHECK_INT(acme_pair_check(cert.data, cert.len, key2.data, key2.len,
			names, 1, &na, why, sizeof(why)),
	    -1);
	T_CHECK_STR(why, "key does not match the certificate");
	t_case("pair: a name missing");
	T_CHECK_INT(acme_pair_check(cert.data, cert.len, key.data, key.len,
			other, 2, &na, why, sizeof(why)),
	    -1);
	T_CHECK_STR(why, "does not name mx.example.org");
	t_case("pair: no certificate");
	T_CHECK_INT(acme_pair_check("x", 1, key.data, key.len, names, 1, &na,
			why, sizeof(why)),
	    -1);
	buf_free(&cert);
	buf_wipe(&key);
	buf_wipe(&key2);
	EVP_PKEY_free(k);
	EVP_PKEY_free(k2);
}

/* ---- the state machine ------------------------------------------------------
 */

/* One scripted exchange: what the machine must ask, what it is told. */
struct step {
	enum acme_act act;   /* what acme_sm_next must return */
	enum acme_method m;  /* SEND: the method */
	const char *url;     /* SEND: the URL */
	const char *payload; /* SEND POST: a text the payload must hold */
	long status;	     /* the answer */
	const char *location, *retry_after, *body;
	unsigned wait; /* WAIT: the seconds */
};

#define DIR_BODY                                                               \
	"{\"newNonce\":\"https://a/nonce\",\"newAccount\":\"https://a/acct\"," \
	"\"newOrder\":\"https://a/new-order\"}"
#define ORDER(st, cert)                                                        \
	"{\"status\":\"" st "\",\"authorizations\":[\"https://a/z/1\","        \
	"\"https://a/z/2\"],\"finalize\":\"https://a/fin\"" cert "}"
#define AZ(st)                                                                 \
	"{\"status\":\"" st                                                    \
	"\",\"identifier\":{\"value\":\"mx.example.org\"},"                    \
	"\"challenges\":[{\"type\":\"http-01\",\"url\":\"https://a/ch/2\","    \
	"\"token\":\"T0k\"}]}"
#define BADNONCE                                                               \
	"{\"type\":\"urn:ietf:params:acme:error:badNonce\",\"detail\":\"x\"}"
#define CHAIN "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

static const struct step order_script[] = {
    {ACME_SM_SEND, ACME_GET, "https://a/dir", NULL, 200, NULL, NULL, DIR_BODY,
	0},
    {ACME_SM_SEND, ACME_HEAD, "https://a/nonce", NULL, 200, NULL, NULL, "", 0},
    {ACME_SM_SEND, ACME_POST, "https://a/acct",
	"\"contact\":[\"mailto:ops@example.org\"]", 201, "https://a/acct/7",
	NULL, "{}", 0},
    {ACME_SM_SEND, ACME_POST, "https://a/new-order", "mx.example.org", 400,
	NULL, NULL, BADNONCE, 0},
    /* the same request again, with the nonce of the refusal */
    {ACME_SM_SEND, ACME_POST, "https://a/new-order", "mail.example.org", 201,
	"https://a/o/1", NULL, ORDER("pending", ""), 0},
    {ACME_SM_SEND, ACME_POST, "https://a/z/1", NULL, 200, NULL, NULL,
	"{\"status\":\"valid\",\"identifier\":{\"value\":\"mail.example."
	"org\"},\"challenges\":[]}",
	0},
    {ACME_SM_SEND, ACME_POST, "https://a/z/2", NULL, 200, NULL, NULL,
	AZ("pending"), 0},
    {ACME_SM_PUBLISH, 0, NULL, NULL, 0, NULL, NULL, NULL, 0},
    {ACME_SM_SEND, ACME_POST, "https://a/ch/2", "{}", 200, NULL, NULL, "{}", 0},
    {ACME_SM_SEND, ACME_POST, "https://a/z/2", NULL, 200, NULL, "3",
	AZ("pending"), 0},
    {ACME_SM_WAIT, 0, NULL, NULL, 0, NULL, NULL, NULL, 3},
    {ACME_SM_SEND, ACME_POST, "https://a/z/2", NULL, 200, NULL, NULL,
	AZ("valid"), 0},
    {ACME_SM_SEND, ACME_POST, "https://a/o/1", NULL, 200, NULL, NULL,
	ORDER("ready", ""), 0},
    {ACME_SM_SEND, ACME_POST, "https://a/fin", "\"csr\":\"", 200, NULL, "999",
	ORDER("processing", ""), 0},
    {ACME_SM_WAIT, 0, NULL, NULL, 0, NULL, NULL, NULL, ACME_WAIT_MAX},
    {ACME_SM_SEND, ACME_POST, "https://a/o/1", NULL, 200, NULL, NULL,
	ORDER("valid", ",\"certificate\":\"https://a/cert/1\""), 0},
    {ACME_SM_SEND, ACME_POST, "https://a/cert/1", NULL, 200, NULL, NULL, CHAIN,
	0},
    {ACME_SM_DONE, 0, NULL, NULL, 0, NULL, NULL, NULL, 0},
};

/* The payload of the JWS being sent, decoded. */
static void
sent_payload(const struct acme_req *req, char *out, size_t outlen)
{
	char err[100];
	struct json_doc *d = json_parse(req->body, req->len, NULL, err, 100);
	size_t n = d != NULL ? jws_part(json_root(d), "payload",
				   (unsigned char *)out, outlen - 1)
			     : 0;

	out[n] = '\0';
	json_free(d);
}

/* Drive sm through script; the index of the first step that differs, or
 * n when all matched. */
static size_t
run_script(struct acme_sm *sm, const struct step *script, size_t n)
{
	struct acme_req req;
	struct acme_resp r;
	unsigned wait;
	char payload[8192];
	size_t i;
	enum acme_act act = acme_sm_next(sm, NULL, &req, &wait);

	for (i = 0; i < n; i++) {
		const struct step *s = &script[i];

		if (act != s->act)
			return i;
		if (act == ACME_SM_WAIT && wait != s->wait)
			return i;
		if (act != ACME_SM_SEND) {
			act = acme_sm_next(sm, NULL, &req, &wait);
			continue;
		}
		if (req.method != s->m || strcmp(req.url, s->url) != 0)
			return i;
		if (s->payload != NULL) {
			sent_payload(&req, payload, sizeof(payload));
			if (strstr(payload, s->payload) == NULL)
				return i;
		}
		memset(&r, 0, sizeof(r));
		r.status = s->status;
		r.location = s->location;
		r.retry_after = s->retry_after;
		r.nonce = "bm9uY2U";
		r.body = s->body;
		r.len = strlen(s->body);
		r.now = 1700000000;
		act = acme_sm_next(sm, &r, &req, &wait);
	}
	return i;
}

static void
test_sm_order(void)
{
	const char *names[] = {"mail.example.org", "mx.example.org"};
	EVP_PKEY *ak = acme_key_new(), *ck = acme_key_new();
	struct acme_sm *sm =
	    acme_sm_new("https://a/dir", ak, ck, "ops@example.org", names, 2);
	size_t n = sizeof(order_script) / sizeof(order_script[0]), at, nch;
	const struct acme_chal *ch;

	t_case("state machine: a whole order, badNonce retried once");
	at = run_script(sm, order_script, n);
	T_CHECK_INT(at, n);
	if (at != n)
		fprintf(stderr, "  stopped at step %zu: %s\n", at,
		    acme_sm_error(sm));
	T_CHECK_STR(acme_sm_chain(sm)->data, CHAIN);
	T_CHECK_STR(acme_sm_account(sm), "https://a/acct/7");
	ch = acme_sm_challenges(sm, &nch);
	T_CHECK_INT(nch, 1);
	T_CHECK(strncmp(ch[0].keyauth, "T0k.", 4) == 0);
	acme_sm_free(sm);
	EVP_PKEY_free(ak);
	EVP_PKEY_free(ck);
}

static const struct step refused_script[] = {
    {ACME_SM_SEND, ACME_GET, "https://a/dir", NULL, 200, NULL, NULL, DIR_BODY,
	0},
    {ACME_SM_SEND, ACME_HEAD, "https://a/nonce", NULL, 204, NULL, NULL, "", 0},
    {ACME_SM_SEND, ACME_POST, "https://a/acct",
	"{\"termsOfServiceAgreed\":true}", 200, "https://a/acct/7", NULL, "{}",
	0},
    {ACME_SM_SEND, ACME_POST, "https://a/new-order", NULL, 400, NULL, NULL,
	"{\"type\":\"urn:ietf:params:acme:error:rejectedIdentifier\","
	"\"detail\":\"policy forbids\"}",
	0},
    {ACME_SM_FAIL, 0, NULL, NULL, 0, NULL, NULL, NULL, 0},
};

static const struct step badnonce_twice[] = {
    {ACME_SM_SEND, ACME_GET, "https://a/dir", NULL, 200, NULL, NULL, DIR_BODY,
	0},
    {ACME_SM_SEND, ACME_HEAD, "https://a/nonce", NULL, 200, NULL, NULL, "", 0},
    {ACME_SM_SEND, ACME_POST, "https://a/acct", NULL, 400, NULL, NULL, BADNONCE,
	0},
    {ACME_SM_SEND, ACME_POST, "https://a/acct", NULL, 400, NULL, NULL, BADNONCE,
	0},
    {ACME_SM_FAIL, 0, NULL, NULL, 0, NULL, NULL, NULL, 0},
};

static void
test_sm_refused(void)
{
	const char *names[] = {"bad.example"};
	EVP_PKEY *k = acme_key_new();
	struct acme_sm *sm;
	size_t n;

	t_case("state machine: a refused identifier fails, rejected");
	sm = acme_sm_new("https://a/dir", k, k, NULL, names, 1);
	n = sizeof(refused_script) / sizeof(refused_script[0]);
	T_CHECK_INT(run_script(sm, refused_script, n), n);
	T_CHECK(acme_sm_rejected(sm));
	T_CHECK(strstr(acme_sm_error(sm), "newOrder: HTTP 400 "
					  "urn:ietf:params:acme:error:"
					  "rejectedIdentifier: policy "
					  "forbids") != NULL);
	acme_sm_free(sm);
	t_case("state machine: badNonce twice in a row fails");
	sm = acme_sm_new("https://a/dir", k, k, NULL, names, 1);
	n = sizeof(badnonce_twice) / sizeof(badnonce_twice[0]);
	T_CHECK_INT(run_script(sm, badnonce_twice, n), n);
	T_CHECK(strstr(acme_sm_error(sm), "badNonce") != NULL);
	acme_sm_free(sm);
	t_case("state machine: an http: directory is refused at once");
	sm = acme_sm_new("http://a/dir", k, k, NULL, names, 1);
	T_CHECK_INT(run_script(sm, &refused_script[4], 1), 1);
	acme_sm_free(sm);
	EVP_PKEY_free(k);
}

int
main(void)
{
	T_RUN(test_directory);
	T_RUN(test_order);
	T_RUN(test_order_too_many);
	T_RUN(test_authz);
	T_RUN(test_problem);
	T_RUN(test_retry_after);
	T_RUN(test_jwk);
	T_RUN(test_jws);
	T_RUN(test_key_pem);
	T_RUN(test_csr);
	T_RUN(test_pair_check);
	T_RUN(test_sm_order);
	T_RUN(test_sm_refused);
	return t_summary();
}
