/*
 * Unit tests for src/tls: the self-signed pair (made once, modes, reused,
 * remade when half of it is missing), the errors for wrong files, and
 * real handshakes between tls_server_ctx() and tls_client_ctx() over a
 * socketpair, the server side on its own thread.
 */
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "t.h"
#include "tls/sesscache.h"
#include "tls/tls.h"

#define HOST "mx.example.org"

static char tmp_root[64];

/* ---- helpers ------------------------------------------------------------ */

static void
mkdir_state(char *out, size_t outlen, const char *name)
{
	if (str_fmt(out, outlen, "%s/%s", tmp_root, name) != 0 ||
	    mkdir(out, 0755) != 0)
		abort();
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(path);
}

static X509 *
read_cert(const char *path)
{
	FILE *f = fopen(path, "r");
	X509 *x;

	if (f == NULL)
		return NULL;
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	return x;
}

static mode_t
file_mode(const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return (mode_t)-1;
	return st.st_mode & 07777;
}

static SSL_CTX *
server_in(const char *state, bool *gen, char *err, size_t errlen)
{
	return tls_server_ctx(NULL, NULL, state, HOST, gen, err, errlen);
}

/* ---- the self-signed pair ----------------------------------------------- */

static void
test_generate(void)
{
	char state[128], cert[192], key[192], dir[192], err[512];
	bool gen = false;
	SSL_CTX *ctx;
	X509 *x;
	mode_t old = umask(077); /* the cert must still come out 0644 */

	mkdir_state(state, sizeof(state), "gen");
	ctx = server_in(state, &gen, err, sizeof(err));
	umask(old);
	T_CHECK(ctx != NULL);
	T_CHECK(gen);
	T_CHECK(str_fmt(dir, sizeof(dir), "%s/tls", state) == 0);
	T_CHECK(str_fmt(cert, sizeof(cert), "%s/cert.pem", dir) == 0);
	T_CHECK(str_fmt(key, sizeof(key), "%s/key.pem", dir) == 0);
	T_CHECK_INT(file_mode(dir), 0700);
	T_CHECK_INT(file_mode(key), 0600);
	T_CHECK_INT(file_mode(cert), 0644);
	x = read_cert(cert);
	T_CHECK(x != NULL);
	if (x != NULL) {
		EVP_PKEY *pk = X509_get0_pubkey(x);
		int days = 0, secs = 0;

		T_CHECK_INT(X509_get_version(x), X509_VERSION_3);
		T_CHECK_INT(X509_check_host(x, HOST, 0, 0, NULL), 1);
		T_CHECK_INT(
		    X509_check_host(x, "other.example.org", 0, 0, NULL), 0);
		T_CHECK(X509_verify(x, X509_get0_pubkey(x)) == 1);
		T_CHECK(pk != NULL && EVP_PKEY_is_a(pk, "EC") &&
			EVP_PKEY_get_bits(pk) == 256);
		T_CHECK(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x),
			    X509_get0_notAfter(x)) == 1);
		T_CHECK(days >= 3650 && days <= 3651);
		T_CHECK(ASN1_INTEGER_get_int64(&(int64_t){0},
			    X509_get0_serialNumber(x)) == 0); /* > 64 bits */
		T_CHECK(X509_get_extension_flags(x) & EXFLAG_SS);
		X509_free(x);
	}
	SSL_CTX_free(ctx);
}

/*
 * A link in STATE/tls (the directory itself or either file) is refused,
 * naming it, and what it points at is left alone: ternd writes nothing
 * through it and reads no key through it.
 */
static void
test_state_links_refused(void)
{
	char state[128], dir[192], other[192], path[256], err[512];
	struct stat before, after;
	bool gen = false;

	mkdir_state(state, sizeof(state), "linkdir");
	mkdir_state(other, sizeof(other), "elsewhere");
	T_CHECK(str_fmt(dir, sizeof(dir), "%s/tls", state) == 0);
	T_CHECK(symlink(other, dir) == 0);
	T_CHECK(stat(other, &before) == 0);
	T_CHECK(server_in(state, &gen, err, sizeof(err)) == NULL);
	T_CHECK(
	    strstr(err, dir) != NULL && strstr(err, "symbolic link") != NULL);
	T_CHECK(str_fmt(path, sizeof(path), "%s/key.pem", other) == 0);
	T_CHECK(access(path, F_OK) != 0);
	T_CHECK(stat(other, &after) == 0 && after.st_mtime == before.st_mtime &&
		after.st_uid == before.st_uid &&
		after.st_mode == before.st_mode);

	/* the file form: a pair made once, then key.pem replaced by a link */
	mkdir_state(state, sizeof(state), "linkfile");
	SSL_CTX_free(server_in(state, &gen, err, sizeof(err)));
	T_CHECK(gen);
	T_CHECK(str_fmt(path, sizeof(path), "%s/tls/key.pem", state) == 0);
	T_CHECK(
	    str_fmt(other, sizeof(other), "%s/gen/tls/key.pem", tmp_root) == 0);
	T_CHECK(unlink(path) == 0 && symlink(other, path) == 0);
	T_CHECK(server_in(state, &gen, err, sizeof(err)) == NULL);
	T_CHECK(
	    strstr(err, path) != NULL && strstr(err, "symbolic link") != NULL);
}

static void
test_reload_same(void)
{
	char state[128], cert[192], key[192], err[512];
	bool gen = true;
	SSL_CTX *a, *b, *c;

	mkdir_state(state, sizeof(state), "reload");
	a = server_in(state, &gen, err, sizeof(err));
	T_CHECK(a != NULL && gen);
	b = server_in(state, &gen, err, sizeof(err));
	T_CHECK(b != NULL);
	T_CHECK(!gen);
	if (a != NULL && b != NULL)
		T_CHECK(X509_cmp(SSL_CTX_get0_certificate(a),
			    SSL_CTX_get0_certificate(b)) == 0);
	t_case("explicit paths to the generated pair");
	T_CHECK(str_fmt(cert, sizeof(cert), "%s/tls/cert.pem", state) == 0);
	T_CHECK(str_fmt(key, sizeof(key), "%s/tls/key.pem", state) == 0);
	c = tls_server_ctx(cert, key, NULL, NULL, &gen, err, sizeof(err));
	T_CHECK(c != NULL && !gen);
	t_case("a missing certificate makes a new pair");
	T_CHECK(unlink(cert) == 0);
	SSL_CTX_free(b);
	b = server_in(state, &gen, err, sizeof(err));
	T_CHECK(b != NULL && gen);
	if (a != NULL && b != NULL)
		T_CHECK(X509_cmp(SSL_CTX_get0_certificate(a),
			    SSL_CTX_get0_certificate(b)) != 0);
	SSL_CTX_free(a);
	SSL_CTX_free(b);
	SSL_CTX_free(c);
}

static void
test_errors(void)
{
	char s1[128], s2[128], cert[192], key[192], err[512];
	SSL_CTX *a, *b, *ctx;

	mkdir_state(s1, sizeof(s1), "e1");
	mkdir_state(s2, sizeof(s2), "e2");
	a = server_in(s1, NULL, err, sizeof(err));
	b = server_in(s2, NULL, err, sizeof(err));
	T_CHECK(a != NULL && b != NULL);
	T_CHECK(str_fmt(cert, sizeof(cert), "%s/tls/cert.pem", s1) == 0);
	T_CHECK(str_fmt(key, sizeof(key), "%s/tls/key.pem", s2) == 0);

	t_case("mismatched key");
	ctx = tls_server_ctx(cert, key, NULL, NULL, NULL, err, sizeof(err));
	T_CHECK(ctx == NULL);
	T_CHECK(strstr(err, key) != NULL);
	T_CHECK(strstr(err, "does not match") != NULL);
	fprintf(stderr, "  (expected) %s\n", err);
	T_CHECK(ERR_peek_error() == 0);

	t_case("key file is a certificate");
	ctx = tls_server_ctx(cert, cert, NULL, NULL, NULL, err, sizeof(err));
	T_CHECK(ctx == NULL);
	T_CHECK(strstr(err, "private key") != NULL);

	t_case("missing certificate");
	ctx = tls_server_ctx(
	    "/nonexistent/cert.pem", key, NULL, NULL, NULL, err, sizeof(err));
	T_CHECK(ctx == NULL);
	T_CHECK(strstr(err, "certificate /nonexistent/cert.pem") != NULL);

	t_case("missing key");
	ctx = tls_server_ctx(
	    cert, "/nonexistent/key.pem", NULL, NULL, NULL, err, sizeof(err));
	T_CHECK(ctx == NULL);
	T_CHECK(strstr(err, "/nonexistent/key.pem") != NULL);
	T_CHECK(strstr(err, "No such file") != NULL);

	t_case("cert without key");
	ctx = tls_server_ctx(cert, NULL, NULL, NULL, NULL, err, sizeof(err));
	T_CHECK(ctx == NULL && strstr(err, "together") != NULL);

	t_case("tiny err buffer");
	ctx = tls_server_ctx(cert, key, NULL, NULL, NULL, err, 8);
	T_CHECK(ctx == NULL && strlen(err) == 7);
	SSL_CTX_free(a);
	SSL_CTX_free(b);
}

static void
test_bad_hostname(void)
{
	char state[128], err[512];
	SSL_CTX *ctx;

	mkdir_state(state, sizeof(state), "badhost");
	ctx = tls_server_ctx(
	    NULL, NULL, state, "bad host,DNS:evil", NULL, err, sizeof(err));
	T_CHECK(ctx == NULL);
	T_CHECK(strstr(err, "hostname") != NULL);
	t_case("more bad hostnames");
	T_CHECK(tls_server_ctx(NULL, NULL, state, "mx.example.org.", NULL, err,
		    sizeof(err)) == NULL);
	T_CHECK(tls_server_ctx(NULL, NULL, state, "mx..example.org", NULL, err,
		    sizeof(err)) == NULL);
	T_CHECK(tls_server_ctx(NULL, NULL, state, "", NULL, err, sizeof(err)) ==
		NULL);
	t_case("no state dir");
	ctx = tls_server_ctx(
	    NULL, NULL, "/nonexistent/state", HOST, NULL, err, sizeof(err));
	T_CHECK(ctx == NULL && strstr(err, "/nonexistent/state/tls") != NULL);
	t_case("ip literal hostname");
	mkdir_state(state, sizeof(state), "iphost");
	ctx = tls_server_ctx(
	    NULL, NULL, state, "192.0.2.25", NULL, err, sizeof(err));
	T_CHECK(ctx != NULL);
	if (ctx != NULL)
		T_CHECK_INT(X509_check_ip_asc(
				SSL_CTX_get0_certificate(ctx), "192.0.2.25", 0),
		    1);
	SSL_CTX_free(ctx);
}

/* An encrypted key is refused, without asking for a passphrase. */
static void
test_encrypted_key(void)
{
	char state[128], cert[192], key[192], err[512];
	SSL_CTX *ctx;
	EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	FILE *f;

	mkdir_state(state, sizeof(state), "enc");
	T_CHECK(str_fmt(key, sizeof(key), "%s/enc.pem", state) == 0);
	T_CHECK(str_fmt(cert, sizeof(cert), "%s/tls/cert.pem", state) == 0);
	ctx = server_in(state, NULL, err, sizeof(err));
	SSL_CTX_free(ctx);
	f = fopen(key, "w");
	T_CHECK(f != NULL && pk != NULL);
	if (f == NULL || pk == NULL)
		return;
	T_CHECK(PEM_write_PrivateKey(f, pk, EVP_aes_256_cbc(),
		    (const unsigned char *)"secret", 6, NULL, NULL) == 1);
	fclose(f);
	ctx = tls_server_ctx(cert, key, NULL, NULL, NULL, err, sizeof(err));
	T_CHECK(ctx == NULL);
	T_CHECK(strstr(err, "unencrypted") != NULL);
	EVP_PKEY_free(pk);
}

/* ---- handshakes --------------------------------------------------------- */

struct server_side {
	SSL *ssl;
	int accept_rc;
	int echoed;
};

static void *
server_main(void *arg)
{
	struct server_side *s = arg;
	char buf[16];
	int n;

	s->accept_rc = SSL_accept(s->ssl);
	if (s->accept_rc == 1) {
		n = SSL_read(s->ssl, buf, sizeof(buf));
		if (n > 0 && SSL_write(s->ssl, buf, n) == n)
			s->echoed = n;
		(void)SSL_shutdown(s->ssl);
	}
	ERR_clear_error();
	return NULL;
}

/*
 * When hs_cache is set, handshake() offers the client the session kept
 * under hs_key (need: hs_need_verified) and ends the client with a
 * close_notify when hs_close_notify.
 */
static struct tls_sess_cache *hs_cache;
static struct tls_sess_key hs_key;
static bool hs_need_verified, hs_close_notify;

struct hs_result {
	bool offered, resumed; /* with hs_cache */
	int connect_rc;
	int accept_rc;
	int version;
	long verify;
	char desc[128];
	bool echoed;
	bool verified; /* tls_peer_verified() */
	char why[128]; /* its reason */
};

static void
set_timeout(int fd)
{
	struct timeval tv = {10, 0};

	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0)
		abort();
}

/* One connection: client in this thread, server on another. */
static void
handshake(SSL_CTX *sctx, SSL_CTX *cctx, const char *host, struct hs_result *r)
{
	int sv[2];
	pthread_t th;
	struct server_side s = {0};
	SSL *c;
	char buf[16];

	memset(r, 0, sizeof(*r));
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		abort();
	set_timeout(sv[0]);
	set_timeout(sv[1]);
	s.ssl = SSL_new(sctx);
	c = SSL_new(cctx);
	if (s.ssl == NULL || c == NULL || SSL_set_fd(s.ssl, sv[0]) != 1 ||
	    SSL_set_fd(c, sv[1]) != 1)
		abort();
	if (host != NULL && tls_client_set_host(c, host) != 0)
		abort();
	if (hs_cache != NULL)
		r->offered = tls_sess_cache_offer(
		    hs_cache, c, &hs_key, hs_need_verified, time(NULL));
	if (pthread_create(&th, NULL, server_main, &s) != 0)
		abort();
	r->connect_rc = SSL_connect(c);
	if (r->connect_rc == 1) {
		r->version = SSL_version(c);
		tls_describe(c, r->desc, sizeof(r->desc));
		if (SSL_write(c, "hello", 5) == 5 &&
		    SSL_read(c, buf, sizeof(buf)) == 5)
			r->echoed = memcmp(buf, "hello", 5) == 0;
	}
	r->verify = SSL_get_verify_result(c);
	r->verified = tls_peer_verified(c, r->why, sizeof(r->why));
	r->resumed = SSL_session_reused(c) == 1;
	if (hs_close_notify && r->connect_rc == 1) {
		(void)SSL_shutdown(c);
		tls_sess_cache_done(hs_cache, c);
	}
	/* unblock the server if the client gave up first */
	shutdown(sv[1], SHUT_RDWR);
	pthread_join(th, NULL);
	r->accept_rc = s.accept_rc;
	ERR_clear_error();
	SSL_free(c);
	SSL_free(s.ssl);
	close(sv[0]);
	close(sv[1]);
}

static char hs_state[128];

static SSL_CTX *
test_server(void)
{
	char *state = hs_state;
	char err[512];
	SSL_CTX *ctx;

	if (state[0] == '\0')
		mkdir_state(state, sizeof(hs_state), "hs");
	ctx = server_in(state, NULL, err, sizeof(err));
	if (ctx == NULL) {
		fprintf(stderr, "server ctx: %s\n", err);
		abort();
	}
	return ctx;
}

static void
test_handshake_tls13(void)
{
	SSL_CTX *s = test_server();
	char err[256];
	SSL_CTX *c = tls_client_ctx(false, NULL, err, sizeof(err));
	struct hs_result r;
	uint64_t opts;

	T_CHECK(c != NULL);
	handshake(s, c, HOST ".", &r);
	T_CHECK_INT(r.connect_rc, 1);
	T_CHECK_INT(r.accept_rc, 1);
	T_CHECK_INT(r.version, TLS1_3_VERSION);
	T_CHECK(r.echoed);
	T_CHECK(strncmp(r.desc, "version=TLSv1.3 cipher=TLS_", 27) == 0);
	printf("negotiated: %s\n", r.desc);
	t_case("policy options");
	opts = SSL_CTX_get_options(s);
	T_CHECK(opts & SSL_OP_NO_COMPRESSION);
	T_CHECK(opts & SSL_OP_NO_RENEGOTIATION);
	T_CHECK(opts & SSL_OP_CIPHER_SERVER_PREFERENCE);
	T_CHECK_INT(SSL_CTX_get_min_proto_version(s), TLS1_2_VERSION);
	T_CHECK_INT(SSL_CTX_get_min_proto_version(c), TLS1_2_VERSION);
	T_CHECK(SSL_CTX_get_options(c) & SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_free(c);
	SSL_CTX_free(s);
}

static void
test_handshake_tls12(void)
{
	SSL_CTX *s = test_server();
	char err[256];
	SSL_CTX *c = tls_client_ctx(false, NULL, err, sizeof(err));
	struct hs_result r;

	T_CHECK(
	    c != NULL && SSL_CTX_set_max_proto_version(c, TLS1_2_VERSION) == 1);
	handshake(s, c, HOST, &r);
	T_CHECK_INT(r.connect_rc, 1);
	T_CHECK_INT(r.version, TLS1_2_VERSION);
	T_CHECK(r.echoed);
	T_CHECK(
	    strncmp(r.desc, "version=TLSv1.2 cipher=ECDHE-ECDSA-", 35) == 0);
	SSL_CTX_free(c);
	SSL_CTX_free(s);
}

/* A client that can only speak TLS 1.1 gets no connection. */
static void
test_handshake_tls11_refused(void)
{
	SSL_CTX *s = test_server();
	SSL_CTX *c = SSL_CTX_new(TLS_client_method());
	struct hs_result r;

	T_CHECK(c != NULL);
	if (c == NULL)
		return;
	/* OpenSSL 3 itself would not offer 1.1 above security level 0 */
	SSL_CTX_set_security_level(c, 0);
	T_CHECK(SSL_CTX_set_min_proto_version(c, TLS1_1_VERSION) == 1);
	T_CHECK(SSL_CTX_set_max_proto_version(c, TLS1_1_VERSION) == 1);
	handshake(s, c, NULL, &r);
	T_CHECK(r.connect_rc != 1);
	T_CHECK(r.accept_rc != 1);
	SSL_CTX_free(c);
	SSL_CTX_free(s);
}

/* verify=true: refused against an unknown CA, accepted once trusted. */
static void
test_handshake_verify(void)
{
	SSL_CTX *s = test_server();
	char err[256];
	SSL_CTX *c = tls_client_ctx(true, NULL, err, sizeof(err));
	struct hs_result r;

	T_CHECK(c != NULL);
	if (c == NULL) {
		fprintf(stderr, "client ctx: %s\n", err);
		SSL_CTX_free(s);
		return;
	}
	handshake(s, c, HOST, &r);
	T_CHECK(r.connect_rc != 1);
	T_CHECK(r.verify != X509_V_OK);
	t_case("verify: trusted certificate, right name");
	T_CHECK(X509_STORE_add_cert(SSL_CTX_get_cert_store(c),
		    SSL_CTX_get0_certificate(s)) == 1);
	handshake(s, c, HOST, &r);
	T_CHECK_INT(r.connect_rc, 1);
	T_CHECK_INT(r.verify, X509_V_OK);
	T_CHECK(r.echoed);
	t_case("verify: trusted certificate, wrong name");
	handshake(s, c, "other.example.org", &r);
	T_CHECK(r.connect_rc != 1);
	T_CHECK_INT(r.verify, X509_V_ERR_HOSTNAME_MISMATCH);
	SSL_CTX_free(c);
	SSL_CTX_free(s);
}

/*
 * tls_peer_verified() and a CA file: without verify the handshake goes on
 * whatever the certificate, and the verdict says whether the peer proved
 * its name and why not (what remote.c logs as verified=yes|no).
 */
static void
test_peer_verified(void)
{
	SSL_CTX *s = test_server(), *c;
	char ca[256], err[512], why[64];
	struct hs_result r;

	t_case("system store, self-signed peer");
	c = tls_client_ctx(false, NULL, err, sizeof(err));
	T_CHECK(c != NULL);
	handshake(s, c, HOST, &r);
	T_CHECK_INT(r.connect_rc, 1);
	T_CHECK(!r.verified);
	T_CHECK_STR(r.why, "self-signed certificate");
	SSL_CTX_free(c);

	t_case("CA file holding the peer's certificate, right name");
	if (str_fmt(ca, sizeof(ca), "%s/tls/cert.pem", hs_state) != 0)
		abort();
	c = tls_client_ctx(false, ca, err, sizeof(err));
	T_CHECK(c != NULL);
	if (c == NULL) {
		SSL_CTX_free(s);
		return;
	}
	handshake(s, c, HOST, &r);
	T_CHECK_INT(r.connect_rc, 1);
	T_CHECK(r.verified);
	T_CHECK_STR(r.why, "");
	t_case("CA file, wrong name: not verified, handshake not refused");
	handshake(s, c, "other.example.org", &r);
	T_CHECK_INT(r.connect_rc, 1);
	T_CHECK(!r.verified);
	T_CHECK_STR(r.why, "hostname mismatch");
	SSL_CTX_free(c);

	t_case("CA file, verify: right name only");
	c = tls_client_ctx(true, ca, err, sizeof(err));
	T_CHECK(c != NULL);
	handshake(s, c, HOST, &r);
	T_CHECK_INT(r.connect_rc, 1);
	T_CHECK(r.verified);
	handshake(s, c, "other.example.org", &r);
	T_CHECK(r.connect_rc != 1);
	T_CHECK_INT(r.verify, X509_V_ERR_HOSTNAME_MISMATCH);
	SSL_CTX_free(c);

	t_case("CA file missing: an error naming it");
	c = tls_client_ctx(true, "/nonexistent/ca.pem", err, sizeof(err));
	T_CHECK(c == NULL);
	T_CHECK(strstr(err, "CA file /nonexistent/ca.pem") != NULL);
	SSL_CTX_free(c);

	t_case("no session");
	T_CHECK(!tls_peer_verified(NULL, why, sizeof(why)));
	T_CHECK_STR(why, "no TLS session");
	SSL_CTX_free(s);
}

static void
test_describe(void)
{
	char out[64];
	SSL_CTX *c = tls_client_ctx(false, NULL, out, sizeof(out));
	SSL *ssl = c != NULL ? SSL_new(c) : NULL;

	tls_describe(NULL, out, sizeof(out));
	T_CHECK_STR(out, "version=none cipher=none");
	tls_describe(ssl, out, sizeof(out));
	T_CHECK_STR(out, "version=none cipher=none");
	tls_describe(NULL, out, 8);
	T_CHECK_STR(out, "vers...");
	t_case("set host");
	T_CHECK(
	    ssl != NULL && tls_client_set_host(ssl, "mx1.example.net.") == 0);
	if (ssl != NULL)
		T_CHECK_STR(SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name),
		    "mx1.example.net");
	T_CHECK(ssl != NULL && tls_client_set_host(ssl, "2001:db8::25") == 0);
	T_CHECK(ssl != NULL && tls_client_set_host(ssl, "") != 0);
	T_CHECK(ssl != NULL && tls_client_set_host(ssl, ".") != 0);
	SSL_free(ssl);
	SSL_CTX_free(c);
}

/* ---- session resumption (sesscache.h) ---------------------------------- */

/* A resumable TLS 1.2 session made by hand: id and master key from tag. */
static SSL_SESSION *
mk_sess(unsigned char tag, time_t created, long timeout)
{
	SSL_SESSION *x = SSL_SESSION_new();
	unsigned char id[8], mk[48];

	memset(id, tag, sizeof(id));
	memset(mk, tag, sizeof(mk));
	if (x == NULL || SSL_SESSION_set1_id(x, id, sizeof(id)) != 1 ||
	    SSL_SESSION_set1_master_key(x, mk, sizeof(mk)) != 1 ||
	    SSL_SESSION_set_protocol_version(x, TLS1_2_VERSION) != 1 ||
	    SSL_SESSION_set_time(x, (long)created) == 0 ||
	    SSL_SESSION_set_timeout(x, timeout) == 0)
		abort();
	return x;
}

/* Put a fresh session under k; returns it (the caller's reference
   dropped: the cache holds its own). */
static SSL_SESSION *
put_new(struct tls_sess_cache *c, const struct tls_sess_key *k,
    unsigned char tag, time_t created, long timeout, bool verified)
{
	SSL_SESSION *x = mk_sess(tag, created, timeout);

	tls_sess_cache_put(c, k, x, verified);
	SSL_SESSION_free(x);
	return x;
}

/* Take one out of c for k: is it want (NULL: none)?  The reference the
   take gave is dropped. */
static bool
took(struct tls_sess_cache *c, const struct tls_sess_key *k, bool need,
    time_t now, const SSL_SESSION *want)
{
	SSL_SESSION *x = tls_sess_cache_take(c, k, need, now);
	bool ok = x == want;

	if (!ok)
		fprintf(stderr, "  took %p, wanted %p\n", (void *)x,
		    (const void *)want);
	SSL_SESSION_free(x);
	return ok;
}

static void
test_sess_cache_keys(void)
{
	struct tls_sess_cache *c = tls_sess_cache_new(64, 3600);
	time_t now = time(NULL);
	struct tls_sess_key k = {"mx.example.net", "192.0.2.1", 25, 1}, o;
	SSL_SESSION *a, *b, *x[12];
	char longname[300];
	int i;

	a = put_new(c, &k, 1, now, 300, false);
	T_CHECK_INT(tls_sess_cache_count(c), 1);
	t_case("an unverified session never satisfies a verified lookup");
	T_CHECK(took(c, &k, true, now, NULL));
	T_CHECK_INT(tls_sess_cache_count(c), 1);
	t_case("every field of the key counts");
	o = k;
	o.name = "mx2.example.net";
	T_CHECK(took(c, &o, false, now, NULL));
	o = k;
	o.addr = "192.0.2.2";
	T_CHECK(took(c, &o, false, now, NULL));
	o = k;
	o.port = 587;
	T_CHECK(took(c, &o, false, now, NULL));
	o = k;
	o.policy = 2;
	T_CHECK(took(c, &o, false, now, NULL));
	/* the NUL between name and address keeps these two keys apart */
	o = k;
	o.name = "mx.example.net1";
	o.addr = "92.0.2.1";
	T_CHECK(took(c, &o, false, now, NULL));
	T_CHECK_INT(tls_sess_cache_count(c), 1);
	t_case("one use: taken out");
	T_CHECK(took(c, &k, false, now, a));
	T_CHECK(took(c, &k, false, now, NULL));
	T_CHECK_INT(tls_sess_cache_count(c), 0);
	t_case("newest first; a verified lookup skips an unverified one");
	a = put_new(c, &k, 1, now, 300, true);
	b = put_new(c, &k, 2, now, 300, false);
	T_CHECK(took(c, &k, true, now, a));
	T_CHECK(took(c, &k, false, now, b));
	t_case("at most TLS_SESS_PER_PEER per peer, the oldest go");
	for (i = 0; i < 12; i++)
		x[i] = put_new(c, &k, (unsigned char)(i + 1), now, 300, false);
	T_CHECK_INT(tls_sess_cache_count(c), TLS_SESS_PER_PEER);
	for (i = 11; i >= 12 - TLS_SESS_PER_PEER; i--)
		T_CHECK(took(c, &k, false, now, x[i]));
	T_CHECK(took(c, &k, false, now, NULL));
	t_case("a name that does not fit is neither kept nor offered");
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	o = k;
	o.name = longname;
	(void)put_new(c, &o, 3, now, 300, false);
	T_CHECK_INT(tls_sess_cache_count(c), 0);
	T_CHECK(took(c, &o, false, now, NULL));
	tls_sess_cache_free(c);
	tls_sess_cache_free(NULL);
}

static void
test_sess_cache_expiry(void)
{
	struct tls_sess_cache *c = tls_sess_cache_new(16, 60);
	time_t now = time(NULL);
	struct tls_sess_key k = {"mx.example.net", "192.0.2.1", 25, 1};
	SSL_SESSION *x;

	t_case("the session's own timeout");
	(void)put_new(c, &k, 1, now - 30, 40, false);
	T_CHECK(took(c, &k, false, now + 10, NULL));
	T_CHECK_INT(tls_sess_cache_count(c), 0); /* dropped */
	x = put_new(c, &k, 1, now - 30, 40, false);
	T_CHECK(took(c, &k, false, now + 9, x));
	t_case("the cache's cap, shorter than the session's timeout");
	(void)put_new(c, &k, 2, now - 59, 7200, false);
	T_CHECK(took(c, &k, false, now + 1, NULL));
	x = put_new(c, &k, 2, now - 59, 7200, false);
	T_CHECK(took(c, &k, false, now, x));
	t_case("a session that is not resumable is dropped");
	x = mk_sess(3, now, 300);
	T_CHECK(SSL_SESSION_set1_id(x, (const unsigned char *)"", 0) == 1);
	T_CHECK(!SSL_SESSION_is_resumable(x));
	tls_sess_cache_put(c, &k, x, false);
	SSL_SESSION_free(x);
	T_CHECK_INT(tls_sess_cache_count(c), 1);
	T_CHECK(took(c, &k, false, now, NULL));
	T_CHECK_INT(tls_sess_cache_count(c), 0);
	tls_sess_cache_free(c);
}

static void
test_sess_cache_bound(void)
{
	struct tls_sess_cache *c = tls_sess_cache_new(3, 3600);
	time_t now = time(NULL);
	struct tls_sess_key k[3] = {
	    {"a.example", "192.0.2.1", 25, 1},
	    {"b.example", "192.0.2.1", 25, 1},
	    {"c.example", "192.0.2.1", 25, 1},
	};
	SSL_SESSION *x[4];
	int i;

	for (i = 0; i < 3; i++)
		x[i] =
		    put_new(c, &k[i], (unsigned char)(i + 1), now, 300, false);
	/* a's second session: b is now the least recently used peer */
	x[3] = put_new(c, &k[0], 4, now, 300, false);
	T_CHECK_INT(tls_sess_cache_count(c), 3);
	T_CHECK(took(c, &k[1], false, now, NULL));
	T_CHECK(took(c, &k[0], false, now, x[3]));
	T_CHECK(took(c, &k[0], false, now, x[0]));
	T_CHECK(took(c, &k[2], false, now, x[2]));
	T_CHECK_INT(tls_sess_cache_count(c), 0);
	tls_sess_cache_free(c);
}

/*
 * Real handshakes through tls_client_ctx()'s new-session callback: the
 * second connection resumes the first one's session (TLS 1.3: a ticket
 * that came after the handshake; TLS 1.2: the session itself), the
 * verify result comes back with it, and a lookup that needs a verified
 * peer or another name gets nothing.
 */
static void
sess_resume(int max_version)
{
	SSL_CTX *s = test_server();
	char err[256];
	SSL_CTX *c = tls_client_ctx(false, NULL, err, sizeof(err));
	struct hs_result r, r2;
	struct tls_sess_key k = {HOST, "unix", 25, 1};

	T_CHECK(
	    c != NULL && SSL_CTX_set_max_proto_version(c, max_version) == 1);
	hs_cache = tls_sess_cache_new(16, 3600);
	hs_key = k;
	hs_need_verified = false;
	hs_close_notify = true;
	handshake(s, c, HOST, &r);
	T_CHECK_INT(r.connect_rc, 1);
	T_CHECK_INT(r.version, max_version);
	T_CHECK(!r.offered && !r.resumed);
	/* TLS 1.3: OpenSSL's server sends two tickets */
	T_CHECK_INT(tls_sess_cache_count(hs_cache),
	    max_version == TLS1_3_VERSION ? 2 : 1);
	handshake(s, c, HOST, &r2);
	T_CHECK_INT(r2.connect_rc, 1);
	T_CHECK(r2.offered && r2.resumed);
	/* the self-signed peer's verdict comes back with the session */
	T_CHECK(!r2.verified);
	T_CHECK_INT(r2.verify, r.verify);
	T_CHECK(r2.echoed);
	t_case("no unverified session where the peer must verify");
	hs_need_verified = true;
	handshake(s, c, HOST, &r2);
	T_CHECK(!r2.offered && !r2.resumed && r2.connect_rc == 1);
	hs_need_verified = false;
	t_case("another name: its own full handshake");
	hs_key.name = "other.example.org";
	handshake(s, c, "other.example.org", &r2);
	T_CHECK(!r2.offered && !r2.resumed && r2.connect_rc == 1);
	hs_key = k;
	tls_sess_cache_free(hs_cache);
	hs_cache = NULL;
	SSL_CTX_free(c);
	SSL_CTX_free(s);
}

/*
 * A server that resumes and sends no new session: a TLS 1.2 session goes
 * back and serves the next connections; a TLS 1.3 ticket is used once
 * (OpenSSL's client marks it), so the next handshake is a full one.
 */
static void
sess_no_new(int version)
{
	SSL_CTX *s = test_server();
	char err[256];
	SSL_CTX *c = tls_client_ctx(false, NULL, err, sizeof(err));
	struct hs_result r;
	struct tls_sess_key k = {HOST, "unix", 25, 1};
	int i;

	T_CHECK(c != NULL && SSL_CTX_set_max_proto_version(c, version) == 1);
	hs_cache = tls_sess_cache_new(16, 3600);
	hs_key = k;
	hs_need_verified = false;
	hs_close_notify = true;
	T_CHECK(SSL_CTX_set_num_tickets(s, 1) == 1);
	handshake(s, c, HOST, &r);
	T_CHECK(r.connect_rc == 1 && !r.offered);
	T_CHECK(SSL_CTX_set_num_tickets(s, 0) == 1);
	handshake(s, c, HOST, &r);
	T_CHECK(r.connect_rc == 1 && r.offered && r.resumed);
	for (i = 0; i < 2; i++) {
		T_CHECK_INT(tls_sess_cache_count(hs_cache),
		    version == TLS1_2_VERSION ? 1 : 0);
		handshake(s, c, HOST, &r);
		T_CHECK(r.connect_rc == 1);
		T_CHECK_INT(r.resumed, version == TLS1_2_VERSION);
	}
	tls_sess_cache_free(hs_cache);
	hs_cache = NULL;
	SSL_CTX_free(c);
	SSL_CTX_free(s);
}

static void
test_sess_no_new_tls12(void)
{
	sess_no_new(TLS1_2_VERSION);
}

static void
test_sess_no_new_tls13(void)
{
	sess_no_new(TLS1_3_VERSION);
}

static void
test_sess_resume_tls13(void)
{
	sess_resume(TLS1_3_VERSION);
}

static void
test_sess_resume_tls12(void)
{
	sess_resume(TLS1_2_VERSION);
}

/* A verified session stays verified when resumed, and serves a lookup
   that needs a verified peer. */
static void
test_sess_resume_verified(void)
{
	SSL_CTX *s = test_server();
	char err[256];
	SSL_CTX *c = tls_client_ctx(true, NULL, err, sizeof(err));
	struct hs_result r;
	struct tls_sess_key k = {HOST, "unix", 587, 0x12};

	T_CHECK(c != NULL && X509_STORE_add_cert(SSL_CTX_get_cert_store(c),
				 SSL_CTX_get0_certificate(s)) == 1);
	hs_cache = tls_sess_cache_new(16, 3600);
	hs_key = k;
	hs_need_verified = true;
	hs_close_notify = true;
	handshake(s, c, HOST, &r);
	T_CHECK(r.connect_rc == 1 && r.verified && !r.offered);
	handshake(s, c, HOST, &r);
	T_CHECK(r.connect_rc == 1 && r.offered && r.resumed);
	T_CHECK(r.verified);
	T_CHECK_INT(r.verify, X509_V_OK);
	hs_need_verified = false;
	tls_sess_cache_free(hs_cache);
	hs_cache = NULL;
	SSL_CTX_free(c);
	SSL_CTX_free(s);
}

int
main(void)
{
	/*
	 * A side that gives up may still be writing an alert when the other
	 * has shut the socket: EPIPE, not a silent death (ternd ignores
	 * SIGPIPE too).
	 */
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		abort();
	if (str_fmt(tmp_root, sizeof(tmp_root), "/tmp/tern-tls-XXXXXX") != 0 ||
	    mkdtemp(tmp_root) == NULL)
		abort();
	T_RUN(test_generate);
	T_RUN(test_state_links_refused);
	T_RUN(test_reload_same);
	T_RUN(test_errors);
	T_RUN(test_bad_hostname);
	T_RUN(test_encrypted_key);
	T_RUN(test_handshake_tls13);
	T_RUN(test_handshake_tls12);
	T_RUN(test_handshake_tls11_refused);
	T_RUN(test_handshake_verify);
	T_RUN(test_describe);
	T_RUN(test_peer_verified);
	T_RUN(test_sess_cache_keys);
	T_RUN(test_sess_cache_expiry);
	T_RUN(test_sess_cache_bound);
	T_RUN(test_sess_resume_tls13);
	T_RUN(test_sess_resume_tls12);
	T_RUN(test_sess_resume_verified);
	T_RUN(test_sess_no_new_tls12);
	T_RUN(test_sess_no_new_tls13);
	if (nftw(tmp_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
		fprintf(
		    stderr, "cleanup of %s: %s\n", tmp_root, strerror(errno));
	return t_summary();
}
