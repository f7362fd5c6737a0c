/*
 * Unit tests for src/mailauth/inbound.c: the author domain DMARC judges
 * (RFC 7489 6.6.1), the dmarc.override list, and the pieces of a message
 * kept once our own Authentication-Results fields are cut out.
 */
#include "t.h"
#include "mailauth/inbound.h"

struct from_row {
	const char *msg;
	enum inbound_from r;
	const char *domain;
};

static const struct from_row from_rows[] = {
    {"From: a@Example.COM\r\n\r\nbody", INBOUND_FROM_OK, "example.com"},
    {"Subject: x\r\nFROM: \"A, B\" <a@b.example>\r\n\r\n", INBOUND_FROM_OK,
	"b.example"},
    {"From: Ann\r\n <ann@folded.example> (comment)\r\n\r\n", INBOUND_FROM_OK,
	"folded.example"},
    {"Subject: none\r\n\r\nFrom: a@body.example\r\n", INBOUND_FROM_NONE, NULL},
    {"From: a@x.example\r\nFrom: b@y.example\r\n\r\n", INBOUND_FROM_MULTIPLE,
	NULL},
    {"From: a@x.example, b@y.example\r\n\r\n", INBOUND_FROM_MULTIPLE, NULL},
    {"From: not an address\r\n\r\n", INBOUND_FROM_BAD, NULL},
    {"From: a@[192.0.2.1]\r\n\r\n", INBOUND_FROM_BAD, NULL},
    {"From: \r\n\r\n", INBOUND_FROM_BAD, NULL},
};

static void
test_from(void)
{
	char out[256];

	for (size_t i = 0; i < sizeof(from_rows) / sizeof(from_rows[0]); i++) {
		const struct from_row *r = &from_rows[i];
		enum inbound_from got = inbound_from_domain(
		    r->msg, strlen(r->msg), out, sizeof(out));

		T_CHECK_STR(inbound_from_name(got), inbound_from_name(r->r));
		if (r->domain != NULL && got == INBOUND_FROM_OK)
			T_CHECK_STR(out, r->domain);
	}
	/* a domain that does not fit out is not cut short */
	T_CHECK(inbound_from_domain("From: a@long.example\r\n\r\n", 24, out,
		    5) == INBOUND_FROM_BAD);
}

static void
test_overrides(void)
{
	struct dmarc_override o[4];
	char text[] =
	    "example.com:none, *.Bank.example:REJECT\tx.org:quarantine";
	char bad1[] = "example.com";
	char bad2[] = "example.com:maybe";
	char bad3[] = ":none";
	char bad4[] = "a.example:none b.example:none c.example:none "
		      "d.example:none e.example:none";
	char empty[] = "  , ";
	char err[256];
	size_t n;

	T_CHECK(inbound_overrides_parse(text, o, 4, &n, err, sizeof(err)) == 0);
	T_CHECK(n == 3);
	T_CHECK_STR(o[0].domain, "example.com");
	T_CHECK(!o[0].subdomains && o[0].disposition == DMARC_P_NONE);
	T_CHECK_STR(o[1].domain, "Bank.example");
	T_CHECK(o[1].subdomains && o[1].disposition == DMARC_P_REJECT);
	T_CHECK_STR(o[2].domain, "x.org");
	T_CHECK(o[2].disposition == DMARC_P_QUARANTINE);
	T_CHECK(
	    inbound_overrides_parse(bad1, o, 4, &n, err, sizeof(err)) == -1);
	T_CHECK(strstr(err, "domain:policy") != NULL);
	T_CHECK(
	    inbound_overrides_parse(bad2, o, 4, &n, err, sizeof(err)) == -1);
	T_CHECK(
	    inbound_overrides_parse(bad3, o, 4, &n, err, sizeof(err)) == -1);
	T_CHECK(
	    inbound_overrides_parse(bad4, o, 4, &n, err, sizeof(err)) == -1);
	T_CHECK(strstr(err, "more than 4") != NULL);
	T_CHECK(
	    inbound_overrides_parse(empty, o, 4, &n, err, sizeof(err)) == 0 &&
	    n == 0);
	T_CHECK(
	    inbound_overrides_parse(NULL, o, 4, &n, err, sizeof(err)) == 0 &&
	    n == 0);
}

static void
test_pieces(void)
{
	const char *msg = "Authentication-Results: me; none\r\n"
			  "Subject: x\r\n"
			  "Authentication-Results: me; none\r\n"
			  "Authentication-Results: them; none\r\n"
			  "\r\nbody\r\n";
	struct authres_span spans[4];
	struct inbound_piece p[5];
	size_t n = authres_ours_in(msg, strlen(msg), "me", spans, 4), k;
	char kept[256];
	size_t kl = 0;

	T_CHECK(n == 2);
	k = inbound_pieces(strlen(msg), spans, n, p, 5);
	T_CHECK(k == 1 + 1); /* nothing before the first span */
	for (size_t i = 0; i < k; i++) {
		memcpy(kept + kl, msg + p[i].off, p[i].len);
		kl += p[i].len;
	}
	kept[kl] = '\0';
	T_CHECK_STR(kept, "Subject: x\r\n"
			  "Authentication-Results: them; none\r\n"
			  "\r\nbody\r\n");
	/* no span: the message whole; too small an array: 0 */
	T_CHECK(inbound_pieces(10, spans, 0, p, 1) == 1 && p[0].len == 10);
	T_CHECK(inbound_pieces(10, spans, 2, p, 2) == 0);
	/* a span at the very end leaves no empty piece */
	spans[0] = (struct authres_span){4, 6};
	T_CHECK(inbound_pieces(10, spans, 1, p, 2) == 1 && p[0].len == 4);
}

int
main(void)
{
	T_RUN(test_from);
	T_RUN(test_overrides);
	T_RUN(test_pieces);
	return t_summary();
}
