/*
 * fuzz_dkim_sig: libFuzzer harness for the DKIM-Signature side of
 * src/mailauth/ (dkim.c, dkim_canon.c, dkim_verify.c).
 *
 * The first byte picks how the rest is used:
 *   even: as a DKIM-Signature value: the tag-list parser and the
 *         signature parser, whose output must keep its bounds, then a
 *         whole verification of RFC 8463 A.3's message carrying it;
 *   odd:  as a whole message: both body canonicalisations (their
 *         invariants checked) and a whole verification.
 * Every lookup is answered with RFC 8463 A.2's Ed25519 record for
 * selector brisbane and its RSA record for any other, so the hashing and
 * the public key operations run.  Any broken invariant aborts.
 */
#include <stdlib.h>
#include <string.h>

#include "mailauth/dkim.h"
#include "mailauth/dkim_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                               \
	do {                                                                   \
		if (!(c))                                                      \
			abort();                                               \
	} while (0)

static const char ed_rec[] =
    "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
static const char rsa_rec[] =
    "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWR"
    "iGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutAC"
    "DfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3"
    "Ip3G+2kryOTIKT+l/K4w3QIDAQAB";
static const char body_msg[] =
    "From: Joe SixPack <joe@football.example.com>\r\n"
    "To: Suzie Q <suzie@shopping.example.net>\r\n"
    "Subject: Is dinner ready?\r\n"
    "Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
    "Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n"
    "\r\n"
    "Hi.\r\n"
    "\r\n"
    "We lost the game.  Are you hungry yet?\r\n"
    "\r\n"
    "Joe.\r\n";

static void
verify_all(const char *msg, size_t len)
{
	struct dkim_verify *v = dkim_verify_new(msg, len, 1528637909);
	size_t i;

	CHECK(dkim_verify_count(v) <= DKIM_SIG_CHECKED);
	for (i = 0; i < dkim_verify_count(v); i++) {
		const char *q = dkim_verify_query(v, i);
		const struct dkim_sig_result *r;

		if (q != NULL) {
			const char *t =
			    strncmp(q, "brisbane.", 9) == 0 ? ed_rec : rsa_rec;
			size_t tl = strlen(t);

			CHECK(strstr(q, "._domainkey.") != NULL);
			dkim_verify_key(v, i, DKIM_DNS_OK, &t, &tl, 1);
			CHECK(dkim_verify_query(v, i) == NULL);
		}
		r = dkim_verify_result(v, i);
		CHECK(r->result >= DKIM_PASS && r->result <= DKIM_PERMERROR);
		CHECK(strlen(r->reason) < sizeof(r->reason));
		CHECK(r->result == DKIM_PASS || r->reason[0] != '\0');
	}
	dkim_verify_free(v);
}

static void
fuzz_sig(const char *p, size_t n)
{
	static struct dkim_sig s;
	struct dkim_tag tags[DKIM_TAGS_MAX];
	const char *why;
	size_t nt, k;
	struct buf m;

	if (dkim_tags_parse(p, n, tags, DKIM_TAGS_MAX, &nt, &why) == 0) {
		CHECK(nt <= DKIM_TAGS_MAX);
		for (k = 0; k < nt; k++)
			CHECK(tags[k].name >= p &&
			      tags[k].value + tags[k].value_len <= p + n);
	}
	if (dkim_sig_parse(p, n, &s, &why) == DKIM_PASS) {
		bool from = false;

		CHECK(s.n_names >= 1 && s.n_names <= DKIM_H_NAMES_MAX);
		for (k = 0; k < s.n_names; k++)
			from = from ||
			       str_case_eq(s.names[k], s.names_len[k], "from");
		CHECK(from && s.b_len > 0 && s.bh_len > 0);
		CHECK(strlen(s.d) > 0 && strchr(s.i, '@') != NULL);
		CHECK(!(s.has_t && s.has_x) || s.x >= s.t);
	} else {
		CHECK(why != NULL && why[0] != '\0');
	}
	buf_init(&m, n + sizeof(body_msg) + 64);
	CHECK(buf_append_str(&m, "DKIM-Signature:") == 0 &&
	      buf_append(&m, p, n) == 0 && buf_append_str(&m, "\r\n") == 0 &&
	      buf_append_str(&m, body_msg) == 0);
	verify_all(m.data, m.len);
	buf_free(&m);
}

static void
check_body(enum dkim_canon c, const char *p, size_t n)
{
	struct buf o;
	size_t k;

	buf_init(&o, 4 * n + 16);
	CHECK(dkim_canon_body(c, p, n, &o) == 0);
	if (c == DKIM_CANON_SIMPLE)
		CHECK(o.len >= 2);
	if (o.len > 0) {
		/* it ends with one line end, not an empty line (but the
		 * simple empty body, which is one CRLF) */
		CHECK(o.len >= 2 && memcmp(o.data + o.len - 2, "\r\n", 2) == 0);
		CHECK(o.len == 2 || o.len < 4 ||
		      memcmp(o.data + o.len - 4, "\r\n\r\n", 4) != 0);
	}
	if (c == DKIM_CANON_RELAXED)
		for (k = 0; k + 1 < o.len; k++) {
			CHECK(o.data[k] != '\t');
			CHECK(!(o.data[k] == ' ' && o.data[k + 1] == ' '));
			/* a bare CR is content, not a line end */
			CHECK(!(o.data[k] == ' ' && k + 2 < o.len &&
				memcmp(o.data + k + 1, "\r\n", 2) == 0));
		}
	buf_free(&o);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data + 1;

	if (size == 0 || size > 65536)
		return 0;
	if ((data[0] & 1) == 0) {
		fuzz_sig(p, size - 1);
		return 0;
	}
	check_body(DKIM_CANON_SIMPLE, p, size - 1);
	check_body(DKIM_CANON_RELAXED, p, size - 1);
	verify_all(p, size - 1);
	return 0;
}
