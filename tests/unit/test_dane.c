/*
 * Unit tests for src/tls/dane.c: the session cache tag of a TLSA RRset
 * (any change of a record gives another tag, so a session made under one
 * RRset is never resumed under another) and tls_dane_setup() on a real
 * OpenSSL client SSL (records taken, the next-hop name added, an SSL of
 * a context without DANE refused).
 */
#include <string.h>

#include <openssl/ssl.h>

#include "tls/dane.h"
#include "util/tlsa.h"

#include "t.h"

static void
set_one(struct tlsa_set *s, unsigned usage, unsigned sel, unsigned mtype,
    unsigned char fill, size_t len)
{
	memset(s, 0, sizeof(*s));
	s->n = 1;
	s->rr[0].usage = (uint8_t)usage;
	s->rr[0].selector = (uint8_t)sel;
	s->rr[0].mtype = (uint8_t)mtype;
	s->rr[0].len = (uint8_t)len;
	memset(s->rr[0].data, fill, len);
}

static void
test_tag(void)
{
	struct tlsa_set a, b;
	unsigned base;

	t_case("same records, same tag");
	set_one(&a, 3, 1, 1, 0x11, 32);
	set_one(&b, 3, 1, 1, 0x11, 32);
	base = tls_dane_tag(&a);
	T_CHECK(base == tls_dane_tag(&b));

	t_case("every field changes the tag");
	set_one(&b, 2, 1, 1, 0x11, 32);
	T_CHECK(base != tls_dane_tag(&b));
	set_one(&b, 3, 0, 1, 0x11, 32);
	T_CHECK(base != tls_dane_tag(&b));
	set_one(&b, 3, 1, 2, 0x11, 32);
	T_CHECK(base != tls_dane_tag(&b));
	set_one(&b, 3, 1, 1, 0x12, 32);
	T_CHECK(base != tls_dane_tag(&b));
	set_one(&b, 3, 1, 1, 0x11, 31);
	T_CHECK(base != tls_dane_tag(&b));

	t_case("a second record changes the tag");
	b = a;
	b.n = 2;
	b.rr[1] = a.rr[0];
	T_CHECK(base != tls_dane_tag(&b));
}

static void
test_setup(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method()), *plain;
	struct tlsa_set s;
	const char *why = NULL;
	SSL *ssl;

	t_case("records taken");
	T_CHECK(ctx != NULL && tls_dane_ctx(ctx) == 0);
	ssl = SSL_new(ctx);
	set_one(&s, 3, 1, 1, 0x22, 32);
	s.n = 2;
	s.rr[1] = s.rr[0];
	s.rr[1].usage = 2;
	s.rr[1].mtype = 2;
	s.rr[1].len = 64;
	memset(s.rr[1].data, 0x33, 64);
	T_CHECK_INT(
	    tls_dane_setup(ssl, "mx.example.net", "example.net", &s, &why), 2);
	/* before a handshake nothing has matched */
	T_CHECK(tls_dane_authority(ssl) == NULL);
	SSL_free(ssl);

	t_case("no records: nothing taken");
	ssl = SSL_new(ctx);
	memset(&s, 0, sizeof(s));
	T_CHECK_INT(tls_dane_setup(ssl, "mx.example.net", NULL, &s, &why), 0);
	SSL_free(ssl);

	t_case("a context without DANE is refused");
	plain = SSL_CTX_new(TLS_client_method());
	ssl = SSL_new(plain);
	set_one(&s, 3, 1, 1, 0x22, 32);
	why = NULL;
	T_CHECK_INT(tls_dane_setup(ssl, "mx.example.net", NULL, &s, &why), -1);
	T_CHECK(why != NULL);
	SSL_free(ssl);
	SSL_CTX_free(plain);
	SSL_CTX_free(ctx);
}

int
main(void)
{
	T_RUN(test_tag);
	T_RUN(test_setup);
	return t_summary();
}
