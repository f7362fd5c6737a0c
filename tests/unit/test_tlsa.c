/*
 * Unit tests for src/util/tlsa.c: a table of TLSA RDATA (usages,
 * selectors, matching types, digest lengths) and DNS answers built here
 * (several records, other types mixed in, a CNAME owner, compression
 * pointers), each answer also cut at every length under t_guard so that
 * a one-byte over-read crashes.
 */
#include <stdint.h>
#include <string.h>

#include "util/tlsa.h"

#include "t.h"

struct rd_case {
	const char *name;
	unsigned usage, selector, mtype;
	size_t dlen;
	enum tlsa_verdict want;
};

static const struct rd_case rd_cases[] = {
    {"3 1 1 sha256", 3, 1, 1, 32, TLSA_USABLE},
    {"3 0 1 sha256", 3, 0, 1, 32, TLSA_USABLE},
    {"2 0 1 sha256", 2, 0, 1, 32, TLSA_USABLE},
    {"3 1 2 sha512", 3, 1, 2, 64, TLSA_USABLE},
    {"2 1 2 sha512", 2, 1, 2, 64, TLSA_USABLE},
    {"3 1 0 full short", 3, 1, 0, 48, TLSA_USABLE},
    {"3 1 0 full too long to keep", 3, 1, 0, 300, TLSA_UNUSABLE},
    {"3 1 1 sha256 31 octets", 3, 1, 1, 31, TLSA_MALFORMED},
    {"3 1 1 sha256 33 octets", 3, 1, 1, 33, TLSA_MALFORMED},
    {"3 1 2 sha512 32 octets", 3, 1, 2, 32, TLSA_MALFORMED},
    {"3 1 2 sha512 65 octets", 3, 1, 2, 65, TLSA_MALFORMED},
    {"3 1 1 no data", 3, 1, 1, 0, TLSA_MALFORMED},
    {"3 1 0 no data", 3, 1, 0, 0, TLSA_MALFORMED},
    {"0 0 1 PKIX-TA ignored", 0, 0, 1, 32, TLSA_UNUSABLE},
    {"1 1 1 PKIX-EE ignored", 1, 1, 1, 32, TLSA_UNUSABLE},
    {"4 1 1 unknown usage", 4, 1, 1, 32, TLSA_UNUSABLE},
    {"255 1 1 private usage", 255, 1, 1, 32, TLSA_UNUSABLE},
    {"3 2 1 unknown selector", 3, 2, 1, 32, TLSA_UNUSABLE},
    {"3 1 3 unknown matching type", 3, 1, 3, 32, TLSA_UNUSABLE},
    {"3 1 255 private matching type", 3, 1, 255, 5, TLSA_UNUSABLE},
};

static void
test_rdata_table(void)
{
	unsigned char rd[3 + 300];
	struct tlsa_rr rr;

	for (size_t i = 0; i < sizeof(rd_cases) / sizeof(rd_cases[0]); i++) {
		const struct rd_case *c = &rd_cases[i];
		void *map;
		size_t maplen;
		const unsigned char *g;
		enum tlsa_verdict v;

		t_case(c->name);
		rd[0] = (unsigned char)c->usage;
		rd[1] = (unsigned char)c->selector;
		rd[2] = (unsigned char)c->mtype;
		for (size_t k = 0; k < c->dlen; k++)
			rd[3 + k] = (unsigned char)(k * 7 + 1);
		g = (const unsigned char *)t_guard(
		    rd, 3 + c->dlen, &map, &maplen);
		memset(&rr, 0xAA, sizeof(rr));
		v = tlsa_rdata_parse(g, 3 + c->dlen, &rr);
		T_CHECK_INT(v, c->want);
		if (v == TLSA_USABLE) {
			T_CHECK_INT(rr.usage, c->usage);
			T_CHECK_INT(rr.selector, c->selector);
			T_CHECK_INT(rr.mtype, c->mtype);
			T_CHECK_INT(rr.len, c->dlen);
			T_CHECK(memcmp(rr.data, rd + 3, c->dlen) == 0);
		}
		t_unguard(map, maplen);
	}
	t_case("rdata shorter than 4 octets");
	for (size_t n = 0; n < 4; n++)
		T_CHECK_INT(tlsa_rdata_parse(rd, n, &rr), TLSA_MALFORMED);
}

/* ---- answers ------------------------------------------------------------ */

struct msg {
	unsigned char b[2048];
	size_t n;
};

static void
put8(struct msg *m, unsigned v)
{
	if (m->n < sizeof(m->b))
		m->b[m->n++] = (unsigned char)v;
}

static void
put16(struct msg *m, unsigned v)
{
	put8(m, v >> 8 & 0xFF);
	put8(m, v & 0xFF);
}

static void
put_name(struct msg *m, const char *name)
{
	if (strcmp(name, "@") == 0) {
		put16(m, 0xC00C);
		return;
	}
	while (*name != '\0') {
		const char *dot = strchr(name, '.');
		size_t l = dot != NULL ? (size_t)(dot - name) : strlen(name);

		put8(m, (unsigned)l);
		for (size_t i = 0; i < l; i++)
			put8(m, (unsigned char)name[i]);
		name += l + (dot != NULL);
	}
	put8(m, 0);
}

static void
put_header(struct msg *m, unsigned an)
{
	m->n = 0;
	put16(m, 0x1234);
	put16(m, 0x81A0); /* QR RD RA AD */
	put16(m, 1);
	put16(m, an);
	put16(m, 0);
	put16(m, 0);
	put_name(m, "_25._tcp.mx.example.org");
	put16(m, TLSA_TYPE);
	put16(m, 1);
}

static void
put_tlsa(struct msg *m, const char *owner, unsigned u, unsigned s, unsigned t,
    size_t dlen)
{
	put_name(m, owner);
	put16(m, TLSA_TYPE);
	put16(m, 1);
	put16(m, 0);
	put16(m, 300);
	put16(m, (unsigned)(3 + dlen));
	put8(m, u);
	put8(m, s);
	put8(m, t);
	for (size_t i = 0; i < dlen; i++)
		put8(m, (unsigned)(0xA0 + i));
}

static void
put_cname(struct msg *m, const char *owner, const char *target)
{
	struct msg tmp = {.n = 0};

	put_name(&tmp, target);
	put_name(m, owner);
	put16(m, 5);
	put16(m, 1);
	put16(m, 0);
	put16(m, 300);
	put16(m, (unsigned)tmp.n);
	for (size_t i = 0; i < tmp.n; i++)
		put8(m, tmp.b[i]);
}

/* msg parses as want, and every shorter cut of it is refused whole. */
static void
check_msg(const struct msg *m, size_t n, size_t unusable, size_t malformed)
{
	struct tlsa_set set;
	void *map;
	size_t maplen;
	const unsigned char *g =
	    (const unsigned char *)t_guard(m->b, m->n, &map, &maplen);

	T_CHECK_INT(tlsa_msg_parse(g, m->n, &set), 0);
	T_CHECK_INT(set.n, n);
	T_CHECK_INT(set.unusable, unusable);
	T_CHECK_INT(set.malformed, malformed);
	T_CHECK_INT(tlsa_set_count(&set), n + unusable + malformed);
	t_unguard(map, maplen);
	for (size_t cut = 0; cut < m->n; cut++) {
		g = (const unsigned char *)t_guard(m->b, cut, &map, &maplen);
		if (tlsa_msg_parse(g, cut, &set) != 0)
			T_CHECK_INT(tlsa_set_count(&set), 0);
		t_unguard(map, maplen);
	}
}

static void
test_msgs(void)
{
	struct msg m;
	struct tlsa_set set;

	t_case("one 3 1 1");
	put_header(&m, 1);
	put_tlsa(&m, "@", 3, 1, 1, 32);
	check_msg(&m, 1, 0, 0);

	t_case("3 1 1 with 2 0 1 and 0 0 1");
	put_header(&m, 3);
	put_tlsa(&m, "@", 3, 1, 1, 32);
	put_tlsa(&m, "@", 2, 0, 1, 32);
	put_tlsa(&m, "@", 0, 0, 1, 32);
	check_msg(&m, 2, 1, 0);

	t_case("unknown usage only");
	put_header(&m, 2);
	put_tlsa(&m, "@", 7, 1, 1, 32);
	put_tlsa(&m, "@", 1, 1, 1, 32);
	check_msg(&m, 0, 2, 0);

	t_case("wrong length only");
	put_header(&m, 2);
	put_tlsa(&m, "@", 3, 1, 1, 20);
	put_tlsa(&m, "@", 3, 1, 2, 32);
	check_msg(&m, 0, 0, 2);

	t_case("CNAME then TLSA at the target");
	put_header(&m, 2);
	put_cname(&m, "@", "_25._tcp.other.example.net");
	put_tlsa(&m, "_25._tcp.other.example.net", 3, 1, 1, 32);
	check_msg(&m, 1, 0, 0);

	t_case("no answer records (NODATA)");
	put_header(&m, 0);
	check_msg(&m, 0, 0, 0);

	t_case("more usable records than kept");
	put_header(&m, TLSA_MAX + 2);
	for (unsigned i = 0; i < TLSA_MAX + 2; i++)
		put_tlsa(&m, "@", 3, 1, 1, 32);
	check_msg(&m, TLSA_MAX, 2, 0);

	t_case("record of another class ignored");
	put_header(&m, 1);
	put_name(&m, "@");
	put16(&m, TLSA_TYPE);
	put16(&m, 3); /* CH */
	put16(&m, 0);
	put16(&m, 300);
	put16(&m, 4);
	put16(&m, 0x0301);
	put16(&m, 0x0100);
	check_msg(&m, 0, 0, 0);

	t_case("answer count beyond the message");
	put_header(&m, 2);
	put_tlsa(&m, "@", 3, 1, 1, 32);
	T_CHECK_INT(tlsa_msg_parse(m.b, m.n, &set), -1);
	T_CHECK_INT(tlsa_set_count(&set), 0);

	t_case("reserved label type");
	put_header(&m, 1);
	put8(&m, 0x80);
	T_CHECK_INT(tlsa_msg_parse(m.b, m.n, &set), -1);

	t_case("shorter than a header");
	T_CHECK_INT(tlsa_msg_parse(m.b, 11, &set), -1);
}

int
main(void)
{
	T_RUN(test_rdata_table);
	T_RUN(test_msgs);
	return t_summary();
}
