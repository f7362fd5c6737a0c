/*
 * acme/jws: the cryptography of an ACME order, with libcrypto: the ES256
 * account and certificate keys, the JWK and its thumbprint (RFC 7638),
 * the flattened JWS of every request (RFC 8555 6.2), the key authorization
 * (8.1), the CSR of finalize (7.4) and the check of a pair on disk.
 *
 * Invariants: every output goes to a caller's bounded buf or a sized
 * array; the OpenSSL error queue is left empty on every path (a worker
 * thread must not leave its errors to the next user of the thread).
 */
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "acme/acme.h"

#define JWS_COORD 32 /* octets of a P-256 coordinate, and of r and s */

EVP_PKEY *
acme_key_new(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	ERR_clear_error();
	return k;
}

int
acme_key_pem(EVP_PKEY *key, struct buf *out)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p;
	long n;
	int rc = -1;

	if (b != NULL &&
	    PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) == 1 &&
	    (n = BIO_get_mem_data(b, &p)) > 0)
		rc = buf_append(out, p, (size_t)n);
	BIO_free(b);
	ERR_clear_error();
	return rc;
}

static bool
jws_is_p256(EVP_PKEY *k)
{
	char group[32];

	return EVP_PKEY_is_a(k, "EC") &&
	       EVP_PKEY_get_group_name(k, group, sizeof(group), NULL) == 1 &&
	       strcmp(group, "prime256v1") == 0;
}

EVP_PKEY *
acme_key_from_pem(const char *pem, size_t len)
{
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	EVP_PKEY *k = NULL;

	if (b != NULL && len <= INT32_MAX)
		k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	if (k != NULL && !jws_is_p256(k)) {
		EVP_PKEY_free(k);
		k = NULL;
	}
	ERR_clear_error();
	return k;
}

int
acme_b64url(struct buf *out, const void *in, size_t len)
{
	size_t cap = 4 * ((len + 2) / 3) + 1, i, n;
	unsigned char *tmp;
	int rc;

	if (len > (size_t)1 << 24)
		return -1;
	tmp = xmalloc(cap);
	n = (size_t)EVP_EncodeBlock(tmp, in, (int)len);
	while (n > 0 && tmp[n - 1] == '=')
		n--;
	for (i = 0; i < n; i++)
		if (tmp[i] == '+')
			tmp[i] = '-';
		else if (tmp[i] == '/')
			tmp[i] = '_';
	rc = buf_append(out, tmp, n);
	free(tmp);
	return rc;
}

static int
jws_coord(EVP_PKEY *key, const char *param, struct buf *out)
{
	BIGNUM *bn = NULL;
	unsigned char raw[JWS_COORD];
	int rc = -1;

	if (EVP_PKEY_get_bn_param(key, param, &bn) == 1 &&
	    BN_bn2binpad(bn, raw, sizeof(raw)) == JWS_COORD)
		rc = acme_b64url(out, raw, sizeof(raw));
	BN_free(bn);
	return rc;
}

int
acme_jwk(EVP_PKEY *key, struct buf *out)
{
	int rc;

	rc = buf_append_str(out, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"");
	rc |= rc == 0 ? jws_coord(key, OSSL_PKEY_PARAM_EC_PUB_X, out) : -1;
	rc |= rc == 0 ? buf_append_str(out, "\",\"y\":\"") : -1;
	rc |= rc == 0 ? jws_coord(key, OSSL_PKEY_PARAM_EC_PUB_Y, out) : -1;
	rc |= rc == 0 ? buf_append_str(out, "\"}") : -1;
	ERR_clear_error();
	return rc;
}

int
acme_thumbprint(EVP_PKEY *key, char out[ACME_THUMB_LEN + 1])
{
	unsigned char md[32];
	struct buf jwk, enc;
	int rc = -1;

	buf_init(&jwk, 512);
	buf_init(&enc, 64);
	if (acme_jwk(key, &jwk) == 0 &&
	    EVP_Digest(jwk.data, jwk.len, md, NULL, EVP_sha256(), NULL) == 1 &&
	    acme_b64url(&enc, md, sizeof(md)) == 0 &&
	    enc.len == ACME_THUMB_LEN) {
		memcpy(out, enc.data, ACME_THUMB_LEN + 1);
		rc = 0;
	}
	buf_free(&jwk);
	buf_free(&enc);
	ERR_clear_error();
	return rc;
}

/* ES256: the DER signature of OpenSSL turned into JWS's r||s (RFC 7518
 * 3.4), base64url, appended. */
static int
jws_sign(EVP_PKEY *key, const char *in, size_t len, struct buf *out)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char der[80], raw[2 * JWS_COORD];
	const unsigned char *p = der;
	size_t dlen = sizeof(der);
	ECDSA_SIG *sig = NULL;
	const BIGNUM *r, *s;
	int rc = -1;

	if (md != NULL &&
	    EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
	    EVP_DigestSign(md, der, &dlen, (const unsigned char *)in, len) ==
		1 &&
	    (sig = d2i_ECDSA_SIG(NULL, &p, (long)dlen)) != NULL) {
		ECDSA_SIG_get0(sig, &r, &s);
		if (BN_bn2binpad(r, raw, JWS_COORD) == JWS_COORD &&
		    BN_bn2binpad(s, raw + JWS_COORD, JWS_COORD) == JWS_COORD)
			rc = acme_b64url(out, raw, sizeof(raw));
	}
	ECDSA_SIG_free(sig);
	EVP_MD_CTX_free(md);
	ERR_clear_error();
	return rc;
}

/* The protected header, as JSON (the URL and nonce are the server's:
 * they are checked to need no escaping by the parsers that kept them). */
static int
jws_header(EVP_PKEY *key, const char *kid, const char *nonce, const char *url,
    struct buf *out)
{
	int rc = buf_append_str(out, "{\"alg\":\"ES256\",");

	if (kid != NULL)
		rc |= buf_printf(out, "\"kid\":\"%s\"", kid);
	else
		rc |= buf_append_str(out, "\"jwk\":") | acme_jwk(key, out);
	rc |= buf_printf(out, ",\"nonce\":\"%s\",\"url\":\"%s\"}", nonce, url);
	return rc != 0 ? -1 : 0;
}

int
acme_jws(EVP_PKEY *key, const char *kid, const char *nonce, const char *url,
    const char *payload, struct buf *out)
{
	struct buf hdr, input;
	size_t mark;
	int rc = -1;

	buf_init(&hdr, 4096);
	buf_init(&input, ACME_JSON_MAX * 2);
	if (jws_header(key, kid, nonce, url, &hdr) != 0 ||
	    acme_b64url(&input, hdr.data, hdr.len) != 0 ||
	    buf_append(&input, ".", 1) != 0 ||
	    acme_b64url(&input, payload, strlen(payload)) != 0)
		goto done;
	mark = strcspn(input.data, ".");
	if (buf_printf(out,
		"{\"protected\":\"%.*s\",\"payload\":\"%s\","
		"\"signature\":\"",
		(int)mark, input.data, input.data + mark + 1) != 0 ||
	    jws_sign(key, input.data, input.len, out) != 0 ||
	    buf_append_str(out, "\"}") != 0)
		goto done;
	rc = 0;
done:
	buf_free(&hdr);
	buf_free(&input);
	return rc;
}

static bool
jws_b64url_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '_';
}

int
acme_key_authz(const char *token, const char *thumb, char *out, size_t outlen)
{
	size_t i;

	for (i = 0; token[i] != '\0'; i++)
		if (!jws_b64url_char(token[i]))
			return -1;
	if (i == 0)
		return -1;
	return str_fmt(out, outlen, "%s.%s", token, thumb);
}

/* subjectAltName with every domain as a dNSName. */
static X509_EXTENSION *
csr_san(const char *const *domains, size_t n)
{
	GENERAL_NAMES *names = GENERAL_NAMES_new();
	X509_EXTENSION *ext = NULL;
	GENERAL_NAME *g;
	ASN1_IA5STRING *s;
	size_t i;

	for (i = 0; names != NULL && i < n; i++) {
		g = GENERAL_NAME_new();
		s = ASN1_IA5STRING_new();
		if (g == NULL || s == NULL ||
		    ASN1_STRING_set(s, domains[i], (int)strlen(domains[i])) !=
			1) {
			GENERAL_NAME_free(g);
			ASN1_IA5STRING_free(s);
			goto done;
		}
		GENERAL_NAME_set0_value(g, GEN_DNS, s);
		if (sk_GENERAL_NAME_push(names, g) <= 0) {
			GENERAL_NAME_free(g);
			goto done;
		}
	}
	if (names != NULL)
		ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, names);
done:
	GENERAL_NAMES_free(names);
	return ext;
}

static int
csr_fill(X509_REQ *req, EVP_PKEY *key, const char *const *domains, size_t n)
{
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	X509_EXTENSION *san = csr_san(domains, n);
	X509_NAME *name = X509_REQ_get_subject_name(req);
	int rc = -1;

	if (exts == NULL || san == NULL ||
	    sk_X509_EXTENSION_push(exts, san) <= 0) {
		X509_EXTENSION_free(san);
		goto done;
	}
	if (X509_REQ_set_version(req, 0) == 1 &&
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
		(const unsigned char *)domains[0], -1, -1, 0) == 1 &&
	    X509_REQ_add_extensions(req, exts) == 1 &&
	    X509_REQ_set_pubkey(req, key) == 1 &&
	    X509_REQ_sign(req, key, EVP_sha256()) > 0)
		rc = 0;
done:
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return rc;
}

int
acme_csr(EVP_PKEY *key, const char *const *domains, size_t n, struct buf *out)
{
	X509_REQ *req = X509_REQ_new();
	unsigned char *der = NULL;
	int len, rc = -1;

	if (req != NULL && n > 0 && n <= ACME_DOMAINS_MAX &&
	    csr_fill(req, key, domains, n) == 0 &&
	    (len = i2d_X509_REQ(req, &der)) > 0)
		rc = acme_b64url(out, der, (size_t)len);
	OPENSSL_free(der);
	X509_REQ_free(req);
	ERR_clear_error();
	return rc;
}

/* ---- a pair on disk ------------------------------------------------------ */

static int
pair_not_after(X509 *x, int64_t *out)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1)
		return -1;
	*out = (int64_t)timegm(&tm);
	return 0;
}

static int
pair_names(
    X509 *x, const char *const *domains, size_t n, char *why, size_t whylen)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (X509_check_host(x, domains[i], 0, 0, NULL) != 1) {
			str_fmt_cut(
			    why, whylen, "does not name %s", domains[i]);
			return -1;
		}
	return 0;
}

int
acme_pair_check(const char *cert, size_t clen, const char *key, size_t klen,
    const char *const *domains, size_t n, int64_t *not_after_out, char *why,
    size_t whylen)
{
	BIO *b = BIO_new_mem_buf(cert, (int)clen);
	X509 *x = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	EVP_PKEY *k = NULL;
	int rc = -1;

	BIO_free(b);
	b = BIO_new_mem_buf(key, (int)klen);
	if (b != NULL)
		k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	if (x == NULL || pair_not_after(x, not_after_out) != 0)
		str_fmt_cut(why, whylen, "no certificate");
	else if (k == NULL || X509_check_private_key(x, k) != 1)
		str_fmt_cut(why, whylen, "key does not match the certificate");
	else
		rc = pair_names(x, domains, n, why, whylen);
	BIO_free(b);
	EVP_PKEY_free(k);
	X509_free(x);
	ERR_clear_error();
	return rc;
}
