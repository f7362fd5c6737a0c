/*
 * fuzz_acme: libFuzzer harness for src/acme/acme.c, the parsers of an
 * ACME server's answers (RFC 8555) and the order's state machine.
 *
 * The input is fed whole to each parser (directory, order, authorization,
 * problem, Retry-After), and as the body of every answer a state machine
 * gets, the first octet choosing the HTTP status, until it fails, is done
 * or has been answered 64 times.  Besides the sanitisers, it aborts when:
 *  - a parsed URL is not https: or holds '"', '\\' or a control octet
 *    (jws.c writes them into JSON as they are);
 *  - a token is empty or not base64url, or more authorizations than
 *    ACME_DOMAINS_MAX are kept;
 *  - the machine asks to send without a URL, or a POST without a body;
 *  - a failed machine has no reason.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acme/acme.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static EVP_PKEY *fz_key;

static void
check_url(const char *u, bool may_be_empty)
{
	if (u[0] == '\0' && may_be_empty)
		return;
	if (strncmp(u, "https://", 8) != 0)
		abort();
	for (; *u != '\0'; u++)
		if ((unsigned char)*u < 0x20 || *u == '"' || *u == '\\')
			abort();
}

static void
check_token(const char *t)
{
	if (t[0] == '\0')
		abort();
	for (; *t != '\0'; t++)
		if (!((*t >= 'A' && *t <= 'Z') || (*t >= 'a' && *t <= 'z') ||
			(*t >= '0' && *t <= '9') || *t == '-' || *t == '_'))
			abort();
}

static void
fz_parsers(const char *in, size_t len)
{
	struct acme_directory d;
	static struct acme_order o;
	struct acme_authz a;
	struct acme_problem p;
	char err[200];
	unsigned secs;
	size_t i;

	if (acme_directory_parse(in, len, &d, err, sizeof(err)) == 0) {
		check_url(d.new_nonce, false);
		check_url(d.new_account, false);
		check_url(d.new_order, false);
	}
	if (acme_order_parse(in, len, &o, err, sizeof(err)) == 0) {
		if (o.nauthz == 0 || o.nauthz > ACME_DOMAINS_MAX)
			abort();
		for (i = 0; i < o.nauthz; i++)
			check_url(o.authz[i], false);
		check_url(o.finalize, false);
		check_url(o.certificate, true);
	}
	if (acme_authz_parse(in, len, &a, err, sizeof(err)) == 0 &&
	    a.has_http01) {
		check_token(a.token);
		check_url(a.chal_url, false);
	}
	(void)acme_problem_parse(in, len, &p);
	if (acme_retry_after_parse(in, len, 1700000000, &secs) != 0)
		return;
}

static void
fz_machine(const char *in, size_t len)
{
	static const long codes[] = {200, 201, 204, 400, 403, 500};
	const char *domains[] = {"mail.example.org"};
	struct acme_sm *sm = acme_sm_new("https://acme.example/dir", fz_key,
	    fz_key, "a@example.org", domains, 1);
	struct acme_resp r;
	struct acme_req req;
	enum acme_act act;
	unsigned wait, turns = 0;

	act = acme_sm_next(sm, NULL, &req, &wait);
	while (turns++ < 64 && act != ACME_SM_DONE && act != ACME_SM_FAIL) {
		if (act == ACME_SM_SEND &&
		    (req.url == NULL ||
			(req.method == ACME_POST && req.body == NULL)))
			abort();
		if (act != ACME_SM_SEND) {
			act = acme_sm_next(sm, NULL, &req, &wait);
			continue;
		}
		memset(&r, 0, sizeof(r));
		r.status = codes[(len > 0 ? (unsigned char)in[0] : 0) % 6];
		r.location = "https://acme.example/x/1";
		r.nonce = "bm9uY2U";
		r.body = len > 0 ? in + 1 : in;
		r.len = len > 0 ? len - 1 : 0;
		act = acme_sm_next(sm, &r, &req, &wait);
	}
	if (act == ACME_SM_FAIL && acme_sm_error(sm)[0] == '\0')
		abort();
	acme_sm_free(sm);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (fz_key == NULL && (fz_key = acme_key_new()) == NULL)
		abort();
	if (size > ACME_JSON_MAX)
		return 0;
	fz_parsers((const char *)data, size);
	fz_machine((const char *)data, size);
	return 0;
}
