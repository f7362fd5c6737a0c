/*
 * tls: OpenSSL 3 contexts for ternd, and the self-signed default pair.
 *
 * What: tls_server_ctx() builds the context for STARTTLS and implicit TLS,
 * from the admin's certificate chain and key, or from a pair it makes
 * itself in STATE/tls/ on first use; tls_client_ctx() builds the one for
 * outbound delivery (system CA store or an admin's CA file) and
 * tls_peer_verified() says whether a peer proved its name against it;
 * tls_describe() formats the negotiated parameters.  The client contexts
 * hand their sessions to sesscache.c, for resumption.
 *
 * Policy, the same both ways: TLS 1.2 and 1.3 only (RFC 8996 retired
 * 1.0/1.1; RFC 8314 4.1 asks for 1.2 or later); OpenSSL's default cipher
 * lists and groups, which follow the distribution's security level; no
 * compression (CRIME); no renegotiation (a client-driven CPU sink and a
 * history of bugs); session tickets left on, so clients resume cheaply.
 * The server prefers its own cipher order.  A peer that closes without
 * close_notify is a normal end of stream: SMTP frames its own content
 * (the final dot, QUIT), so a truncation cannot pass for a whole message,
 * and most MTAs close that way.
 *
 * Invariants: a context is returned fully configured or not at all; on
 * every failure err names the file and the reason, and the thread's
 * OpenSSL error queue is cleared so a stale entry cannot be mistaken for
 * the cause of a later SSL_get_error().
 *
 * Limits: paths up to PATH_MAX; a generated certificate's CN is omitted
 * when the hostname is longer than 64 octets (X.520's bound); its SAN
 * always holds the name.
 *
 * Security: the self-signed pair is made and read as ternd's user, never
 * as root, and nothing in STATE/tls is reached through a symbolic link or
 * accepted from an owner other than that user or root (docs/security.md,
 * "Files ternd touches as root").  The private key is written 0600
 * through a fresh temporary file (O_CREAT|O_EXCL, so no planted file or
 * symlink is followed), then
 * fsync'ed and renamed over the final name, and the directory fsync'ed:
 * a crash leaves the old pair or the new one, never a torn key.  The key
 * is written before the certificate, so a certificate on disk always has
 * its key; if either file is missing both are made anew.  Encrypted key
 * files are refused rather than prompting on a terminal.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "fs/file.h"
#include "tls/sesscache.h"
#include "tls/tls.h"

#define TLS_WHO "tls" /* the fault hook's name for this writer */

#define TLS_CN_MAX 64

/* ---- errors ------------------------------------------------------------- */

/*
 * err = what + ": " + the newest OpenSSL reason (or strerror(sys_errno)
 * when it is not 0).  Clears the OpenSSL error queue.
 */
static void tls_err(char *err, size_t errlen, int sys_errno, const char *fmt,
    ...) PRINTF_LIKE(4, 5);

static void
tls_err(char *err, size_t errlen, int sys_errno, const char *fmt, ...)
{
	char what[PATH_MAX + 128];
	const char *why = NULL;
	unsigned long e = ERR_peek_last_error();
	va_list ap;

	va_start(ap, fmt);
	str_vfmt_cut(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (sys_errno != 0)
		why = strerror(sys_errno);
	else if (e != 0)
		why = ERR_reason_error_string(e);
	str_fmt_cut(err, errlen, "%s%s%s", what, why != NULL ? ": " : "",
	    why != NULL ? why : "");
	ERR_clear_error();
}

/* ---- policy ------------------------------------------------------------- */

static int
tls_policy(SSL_CTX *ctx)
{
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
		return -1;
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
				     SSL_OP_NO_RENEGOTIATION |
				     SSL_OP_IGNORE_UNEXPECTED_EOF);
	return 0;
}

/* Trust ca_file's and ca_path's certificates, or the system store; 0
 * ok. */
static int
tls_client_trust(SSL_CTX *ctx, bool verify, const char *ca_file,
    const char *ca_path, char *err, size_t errlen)
{
	if (ca_file != NULL || ca_path != NULL) {
		if (SSL_CTX_load_verify_locations(ctx, ca_file, ca_path) != 1) {
			tls_err(err, errlen, 0, "CA %s %s",
			    ca_file != NULL ? "file" : "directory",
			    ca_file != NULL ? ca_file : ca_path);
			return -1;
		}
		return 0;
	}
	/*
	 * The system store is loaded even when not verifying, so the caller
	 * can still log whether a peer was trusted (tls_peer_verified()).
	 */
	if (SSL_CTX_set_default_verify_paths(ctx) != 1 && verify) {
		tls_err(err, errlen, 0, "system CA store");
		return -1;
	}
	ERR_clear_error();
	return 0;
}

SSL_CTX *
tls_client_ctx(bool verify, const char *ca_file, char *err, size_t errlen)
{
	return tls_client_ctx_store(verify, ca_file, NULL, err, errlen);
}

SSL_CTX *
tls_client_ctx_store(bool verify, const char *ca_file, const char *ca_path,
    char *err, size_t errlen)
{
	SSL_CTX *ctx;

	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL || tls_policy(ctx) != 0) {
		tls_err(err, errlen, 0, "TLS client context");
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (tls_client_trust(ctx, verify, ca_file, ca_path, err, errlen) != 0) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	/* without VERIFY_PEER the chain and name are still checked and the
	   outcome kept for SSL_get_verify_result(); only the abort is off */
	SSL_CTX_set_verify(
	    ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	/* sessions go to the caller's cache (tls/sesscache.h), never to
	   OpenSSL's own, which a client never looks up; TLS 1.3 tickets come
	   after the handshake, so only the callback sees them */
	SSL_CTX_set_session_cache_mode(
	    ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, tls_sess_cache_on_new);
	return ctx;
}

bool
tls_peer_verified(const SSL *ssl, char *why, size_t whylen)
{
	const char *reason = NULL;
	long v;

	if (ssl == NULL || !SSL_is_init_finished(ssl))
		reason = "no TLS session";
	else if (SSL_get0_peer_certificate(ssl) == NULL)
		reason = "no certificate";
	else if ((v = SSL_get_verify_result(ssl)) != X509_V_OK)
		reason = X509_verify_cert_error_string(v);
	str_fmt_cut(why, whylen, "%s", reason != NULL ? reason : "");
	return reason == NULL;
}

static bool
tls_is_ip(const char *s, unsigned char addr[16], int *af_out)
{
	if (inet_pton(AF_INET, s, addr) == 1) {
		*af_out = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, s, addr) == 1) {
		*af_out = AF_INET6;
		return true;
	}
	return false;
}

int
tls_client_set_host(SSL *ssl, const char *host)
{
	char name[256];
	unsigned char addr[16];
	size_t n = strlen(host);
	int af;

	/* DNS names may end in the root's dot; SNI (RFC 6066 3) has none */
	if (n > 0 && host[n - 1] == '.')
		n--;
	if (n == 0 || str_copy(name, sizeof(name), host, n) != 0)
		return -1;
	if (tls_is_ip(name, addr, &af)) {
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) !=
		    1)
			goto fail;
		return 0;
	}
	if (SSL_set_tlsext_host_name(ssl, name) != 1 ||
	    SSL_set1_host(ssl, name) != 1)
		goto fail;
	return 0;
fail:
	ERR_clear_error();
	return -1;
}

void
tls_describe(const SSL *ssl, char *out, size_t outlen)
{
	const char *ver = "none", *cipher = "none";

	if (outlen == 0)
		return;
	if (ssl != NULL && SSL_is_init_finished(ssl)) {
		const SSL_CIPHER *c = SSL_get_current_cipher(ssl);

		ver = SSL_get_version(ssl);
		if (c != NULL)
			cipher = SSL_CIPHER_get_name(c);
	}
	/* cut rather than fail: this is for a log line */
	str_fmt_cut(out, outlen, "version=%s cipher=%s", ver, cipher);
}

/* ---- loading ------------------------------------------------------------ */

/* Refuse to prompt for a passphrase: ternd has no terminal to ask on. */
static int
tls_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

static EVP_PKEY *
tls_read_key(const char *path, char *err, size_t errlen)
{
	BIO *bio;
	EVP_PKEY *pkey;

	bio = BIO_new_file(path, "r");
	if (bio == NULL) {
		tls_err(err, errlen, errno, "private key %s", path);
		return NULL;
	}
	pkey = PEM_read_bio_PrivateKey(bio, NULL, tls_no_passphrase, NULL);
	BIO_free(bio);
	if (pkey == NULL)
		tls_err(err, errlen, 0,
		    "private key %s: not an unencrypted "
		    "PEM private key",
		    path);
	return pkey;
}

static int
tls_load_pair(
    SSL_CTX *ctx, const char *cert, const char *key, char *err, size_t errlen)
{
	EVP_PKEY *pkey;
	int rc = -1;

	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		tls_err(err, errlen, 0, "certificate %s", cert);
		return -1;
	}
	if ((pkey = tls_read_key(key, err, errlen)) == NULL)
		return -1;
	/* checked here first so the message says which files disagree */
	if (X509_check_private_key(SSL_CTX_get0_certificate(ctx), pkey) != 1) {
		ERR_clear_error();
		tls_err(err, errlen, 0,
		    "private key %s does not match the "
		    "certificate in %s",
		    key, cert);
	} else if (SSL_CTX_use_PrivateKey(ctx, pkey) != 1 ||
		   SSL_CTX_check_private_key(ctx) != 1) {
		tls_err(err, errlen, 0, "private key %s", key);
	} else {
		rc = 0;
	}
	EVP_PKEY_free(pkey);
	return rc;
}

/* ---- the self-signed pair ----------------------------------------------- */

/* One character of a host name label: letters, digits, '-', '_'. */
static bool
tls_label_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/*
 * A name we can put in a certificate: an IP address, or dot-separated
 * labels of 1..63 label characters (no empty label, no final dot).
 */
static bool
tls_hostname_ok(const char *h)
{
	unsigned char addr[16];
	size_t n = strlen(h), i, label = 0;
	int af;

	if (tls_is_ip(h, addr, &af))
		return true;
	if (n == 0 || n > 253)
		return false;
	for (i = 0; i < n; i++) {
		if (h[i] == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (!tls_label_char(h[i]) || ++label > 63) {
			return false;
		}
	}
	return label > 0;
}

static int
tls_cert_serial(X509 *x)
{
	BIGNUM *bn = BN_new();
	int ok;

	/* 159 random bits with the top one set: positive, never zero, and
	   within RFC 5280's 20 octets */
	ok = bn != NULL &&
	     BN_rand(bn, 159, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) == 1 &&
	     BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
	BN_free(bn);
	return ok ? 0 : -1;
}

static int
tls_cert_name(X509 *x, const char *hostname)
{
	X509_NAME *name = X509_get_subject_name(x);

	if (strlen(hostname) <= TLS_CN_MAX &&
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
		(const unsigned char *)hostname, -1, -1, 0) != 1)
		return -1;
	return X509_set_issuer_name(x, name) == 1 ? 0 : -1;
}

/*
 * subjectAltName with one entry, built as a structure rather than from
 * "DNS:" text, so a hostname can never add entries of its own.
 */
static int
tls_cert_san(X509 *x, const char *hostname)
{
	GENERAL_NAMES *gens = GENERAL_NAMES_new();
	GENERAL_NAME *gn = GENERAL_NAME_new();
	ASN1_STRING *val = NULL;
	unsigned char addr[16];
	int af, type = GEN_DNS, rc = -1;

	if (gens == NULL || gn == NULL)
		goto done;
	if (tls_is_ip(hostname, addr, &af)) {
		type = GEN_IPADD;
		val = ASN1_OCTET_STRING_new();
		if (val == NULL || ASN1_OCTET_STRING_set(
				       val, addr, af == AF_INET ? 4 : 16) != 1)
			goto done;
	} else {
		val = ASN1_IA5STRING_new();
		if (val == NULL || ASN1_STRING_set(val, hostname, -1) != 1)
			goto done;
	}
	GENERAL_NAME_set0_value(gn, type, val);
	val = NULL;
	if (sk_GENERAL_NAME_push(gens, gn) <= 0)
		goto done;
	gn = NULL;
	rc = X509_add1_ext_i2d(
		 x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) == 1
		 ? 0
		 : -1;
done:
	ASN1_STRING_free(val);
	GENERAL_NAME_free(gn);
	GENERAL_NAMES_free(gens);
	return rc;
}

/* The fixed extensions of a leaf server certificate. */
static int
tls_cert_exts(X509 *x)
{
	static const struct {
		int nid;
		const char *val;
	} exts[] = {
	    {NID_basic_constraints, "critical,CA:FALSE"},
	    {NID_key_usage, "critical,digitalSignature"},
	    {NID_ext_key_usage, "serverAuth"},
	    {NID_subject_key_identifier, "hash"},
	};
	X509V3_CTX v3;
	size_t i;

	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	X509V3_set_ctx_nodb(&v3);
	for (i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
		X509_EXTENSION *ext =
		    X509V3_EXT_nconf_nid(NULL, &v3, exts[i].nid, exts[i].val);
		int ok = ext != NULL && X509_add_ext(x, ext, -1) == 1;

		X509_EXTENSION_free(ext);
		if (!ok)
			return -1;
	}
	return 0;
}

static X509 *
tls_make_cert(EVP_PKEY *pkey, const char *hostname)
{
	X509 *x = X509_new();

	if (x == NULL || X509_set_version(x, X509_VERSION_3) != 1 ||
	    tls_cert_serial(x) != 0 ||
	    /* an hour back, for clients whose clock runs a little slow */
	    X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
	    X509_time_adj_ex(
		X509_getm_notAfter(x), TLS_SELF_SIGNED_DAYS, 0, NULL) == NULL ||
	    tls_cert_name(x, hostname) != 0 || X509_set_pubkey(x, pkey) != 1 ||
	    tls_cert_san(x, hostname) != 0 || tls_cert_exts(x) != 0 ||
	    X509_sign(x, pkey, EVP_sha256()) <= 0) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* unencrypted PKCS#8: the file's mode is its protection */
static int
tls_emit_key(BIO *bio, const void *pkey)
{
	return PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL);
}

static int
tls_emit_cert(BIO *bio, const void *x)
{
	return PEM_write_bio_X509(bio, x);
}

/*
 * dir/name gets the PEM of obj, mode exactly, durably (fs/file.h): a
 * temporary file made with O_EXCL (no planted file or link is followed),
 * written, fsync'ed, renamed.  The caller fsyncs the directory.  The PEM
 * is built in OpenSSL's secure memory BIO, cleared when freed.
 */
static int
tls_write_file(int dfd, const char *dir, const char *name, mode_t mode,
    int (*emit)(BIO *, const void *), const void *obj, char *err, size_t errlen)
{
	char tmp[NAME_MAX + 1];
	BIO *bio;
	char *pem;
	long len;
	struct iovec iov;
	const char *step;
	int rc = -1;

	if (str_fmt(tmp, sizeof(tmp), "%s.tmp.%ld", name, (long)getpid())) {
		tls_err(err, errlen, ENAMETOOLONG, "%s/%s", dir, name);
		return -1;
	}
	/* a leftover from a crash of a process with our pid */
	if (unlinkat(dfd, tmp, 0) != 0 && errno != ENOENT) {
		tls_err(err, errlen, errno, "%s/%s", dir, tmp);
		return -1;
	}
	bio = BIO_new(BIO_s_secmem());
	if (bio == NULL || emit(bio, obj) != 1 ||
	    (len = BIO_get_mem_data(bio, &pem)) <= 0) {
		tls_err(err, errlen, 0, "encoding %s/%s", dir, name);
		goto done;
	}
	iov.iov_base = pem;
	iov.iov_len = (size_t)len;
	if (file_write_new_mode(
		TLS_WHO, dfd, tmp, mode, &iov, 1, true, NULL, &step) != 0) {
		tls_err(err, errlen, errno, "%s %s/%s", step, dir, tmp);
		goto done;
	}
	if (file_rename(TLS_WHO, dfd, tmp, dfd, name, 0) != 0) {
		tls_err(err, errlen, errno, "rename %s/%s", dir, name);
		unlinkat_quiet(dfd, tmp);
		goto done;
	}
	rc = 0;
done:
	BIO_free(bio);
	return rc;
}

struct tls_paths {
	char dir[PATH_MAX];
	char cert[PATH_MAX];
	char key[PATH_MAX];
};

static int
tls_generate(int dfd, const struct tls_paths *p, const char *hostname,
    char *err, size_t errlen)
{
	EVP_PKEY *pkey;
	X509 *x = NULL;
	int rc = -1;

	if (hostname == NULL || !tls_hostname_ok(hostname)) {
		tls_err(err, errlen, 0,
		    "cannot make a certificate for hostname "
		    "\"%s\"",
		    hostname ? hostname : "");
		return -1;
	}
	pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (pkey == NULL || (x = tls_make_cert(pkey, hostname)) == NULL) {
		tls_err(err, errlen, 0, "making a self-signed certificate");
		goto done;
	}
	/* key first: a certificate on disk always has its key beside it */
	if (tls_write_file(dfd, p->dir, TLS_STATE_KEY, 0600, tls_emit_key, pkey,
		err, errlen) ||
	    tls_write_file(dfd, p->dir, TLS_STATE_CERT, 0644, tls_emit_cert, x,
		err, errlen))
		goto done;
	if (file_sync_dir(TLS_WHO, dfd) != 0) {
		tls_err(err, errlen, errno, "fsync %s", p->dir);
		goto done;
	}
	rc = 0;
done:
	X509_free(x);
	EVP_PKEY_free(pkey);
	return rc;
}

/*
 * What ternd keeps in its state directory it reaches without following a
 * link, and only when it belongs to ternd's user (or root): a link or a
 * stranger's file there is refused, naming it, rather than used.
 */
static int
tls_state_owner_ok(
    const struct stat *st, const char *path, char *err, size_t errlen)
{
	if (st->st_uid == 0 || st->st_uid == geteuid())
		return 0;
	tls_err(err, errlen, 0,
	    "%s is owned by uid %u, neither root nor the user ternd runs as "
	    "(uid %u): remove it",
	    path, (unsigned)st->st_uid, (unsigned)geteuid());
	return -1;
}

/* STATE/tls, made 0700 if missing, opened without following a link. */
static int
tls_state_dir_open(const char *dir, char *err, size_t errlen)
{
	struct stat st;
	int fd;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		tls_err(err, errlen, errno, "mkdir %s", dir);
		return -1;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	/* O_NOFOLLOW with O_DIRECTORY: a link fails as ENOTDIR */
	if (fd < 0 && (errno == ELOOP || errno == ENOTDIR)) {
		tls_err(err, errlen, 0,
		    "%s is %s; ternd follows no link in its state directory: "
		    "remove it",
		    dir,
		    lstat(dir, &st) == 0 && S_ISLNK(st.st_mode)
			? "a symbolic link"
			: "not a directory");
		return -1;
	}
	if (fd < 0 || fstat(fd, &st) != 0) {
		tls_err(err, errlen, errno, "%s", dir);
		if (fd >= 0)
			(void)close(fd);
		return -1;
	}
	if (tls_state_owner_ok(&st, dir, err, errlen) != 0) {
		(void)close(fd);
		return -1;
	}
	return fd;
}

/* 1 if dir/name is there (a regular file of ours), 0 if not, -1 (err). */
static int
tls_exists(
    int dfd, const char *path, const char *name, char *err, size_t errlen)
{
	struct stat st;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
		if (errno == ENOENT)
			return 0;
		tls_err(err, errlen, errno, "%s", path);
		return -1;
	}
	if (S_ISLNK(st.st_mode) || !S_ISREG(st.st_mode)) {
		tls_err(err, errlen, 0,
		    "%s is %s; ternd follows no link in its state "
		    "directory: remove it",
		    path,
		    S_ISLNK(st.st_mode) ? "a symbolic link"
					: "not a regular file");
		return -1;
	}
	return tls_state_owner_ok(&st, path, err, errlen) == 0 ? 1 : -1;
}

/*
 * Make sure STATE/tls/ holds a pair, generating it when either file is
 * missing.  Fills p.  Runs as ternd's user, never as root: what it makes
 * is that user's without a chown.
 */
static int
tls_state_pair(struct tls_paths *p, const char *state_dir, const char *hostname,
    bool *generated, char *err, size_t errlen)
{
	int c, k, dfd, rc = -1;

	if (str_fmt(
		p->dir, sizeof(p->dir), "%s/%s", state_dir, TLS_STATE_SUBDIR) ||
	    str_fmt(
		p->cert, sizeof(p->cert), "%s/%s", p->dir, TLS_STATE_CERT) ||
	    str_fmt(p->key, sizeof(p->key), "%s/%s", p->dir, TLS_STATE_KEY)) {
		tls_err(err, errlen, ENAMETOOLONG, "state_dir %s", state_dir);
		return -1;
	}
	if ((dfd = tls_state_dir_open(p->dir, err, errlen)) < 0)
		return -1;
	if ((c = tls_exists(dfd, p->cert, TLS_STATE_CERT, err, errlen)) < 0 ||
	    (k = tls_exists(dfd, p->key, TLS_STATE_KEY, err, errlen)) < 0)
		goto done;
	if (c && k) {
		rc = 0;
		goto done;
	}
	if (tls_generate(dfd, p, hostname, err, errlen) != 0)
		goto done;
	*generated = true;
	rc = 0;
done:
	(void)close(dfd);
	return rc;
}

SSL_CTX *
tls_server_ctx(const char *cert, const char *key, const char *state_dir,
    const char *hostname, bool *generated_out, char *err, size_t errlen)
{
	struct tls_paths p;
	bool generated = false;
	SSL_CTX *ctx = NULL;
	static const unsigned char sid_ctx[] = "ternd";

	ERR_clear_error();
	if ((cert == NULL) != (key == NULL)) {
		tls_err(err, errlen, 0,
		    "tls.cert and tls.key go together: "
		    "set both or neither");
		goto fail;
	}
	if (cert == NULL && state_dir == NULL) {
		tls_err(err, errlen, 0, "no tls.cert and no state_dir");
		goto fail;
	}
	if (cert == NULL) {
		if (tls_state_pair(
			&p, state_dir, hostname, &generated, err, errlen) != 0)
			goto fail;
		cert = p.cert;
		key = p.key;
	}
	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL || tls_policy(ctx) != 0 ||
	    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1) !=
		1) {
		tls_err(err, errlen, 0, "TLS server context");
		goto fail;
	}
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* OpenSSL's built-in DH groups, for DHE with an admin's RSA key */
	if (SSL_CTX_set_dh_auto(ctx, 1) != 1) {
		tls_err(err, errlen, 0, "TLS server context");
		goto fail;
	}
	if (tls_load_pair(ctx, cert, key, err, errlen) != 0)
		goto fail;
	if (generated_out != NULL)
		*generated_out = generated;
	return ctx;
fail:
	SSL_CTX_free(ctx);
	if (generated_out != NULL)
		*generated_out = false;
	return NULL;
}
