/*
 * dane: OpenSSL's DANE support for outbound MX sessions (see dane.h).
 * Invariant: the OpenSSL error queue is left empty on every return.
 */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "tls/dane.h"

int
tls_dane_ctx(SSL_CTX *ctx)
{
	if (SSL_CTX_dane_enable(ctx) <= 0) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}

int
tls_dane_setup(SSL *ssl, const char *host, const char *nexthop,
    const struct tlsa_set *set, const char **why)
{
	int taken = 0;

	if (SSL_dane_enable(ssl, host) <= 0) {
		*why = "cannot enable DANE for the MX host name";
		goto fail;
	}
	/* DANE-TA chains may name the next-hop domain (RFC 7672 3.2.2) */
	if (nexthop != NULL && nexthop[0] != '\0' &&
	    SSL_add1_host(ssl, nexthop) != 1) {
		*why = "cannot add the next-hop domain";
		goto fail;
	}
	(void)SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
	for (size_t i = 0; i < set->n; i++) {
		const struct tlsa_rr *r = &set->rr[i];
		int rc = SSL_dane_tlsa_add(
		    ssl, r->usage, r->selector, r->mtype, r->data, r->len);

		if (rc > 0)
			taken++;
		else if (rc < 0) { /* malformed to OpenSSL: unusable */
			ERR_clear_error();
		}
	}
	ERR_clear_error();
	return taken;
fail:
	ERR_clear_error();
	return -1;
}

const char *
tls_dane_authority(SSL *ssl)
{
	uint8_t usage = 0, sel = 0, mtype = 0;
	int depth = SSL_get0_dane_tlsa(ssl, &usage, &sel, &mtype, NULL, NULL);

	if (depth < 0 || SSL_get_verify_result(ssl) != X509_V_OK)
		return NULL;
	return usage == 3 ? "dane-ee" : usage == 2 ? "dane-ta" : "dane";
}

unsigned
tls_dane_tag(const struct tlsa_set *set)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (size_t i = 0; i < set->n; i++) {
		const struct tlsa_rr *r = &set->rr[i];
		const unsigned char hdr[4] = {
		    r->usage, r->selector, r->mtype, r->len};

		for (size_t k = 0; k < sizeof(hdr); k++)
			h = (h ^ hdr[k]) * 16777619u;
		for (size_t k = 0; k < r->len; k++)
			h = (h ^ r->data[k]) * 16777619u;
	}
	return h;
}
