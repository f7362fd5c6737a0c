/*
 * test_dnsbl: screening's pure half (src/screen/dnsbl.c): a table of
 * screen.dnsbl / screen.dnswl items, accepted and refused; the query
 * names of IPv4 and IPv6 clients; what each kind of answer means; the
 * verdict cache's expiry, /64 keys and bound.
 */
#include "screen/dnsbl.h"
#include "t.h"
#include "util/util.h"

static const struct {
	const char *in;
	bool weight_ok; /* DNSBL (true) or DNSWL list */
	int ok;		/* 0 or -1 */
	const char *zone;
	int weight;
	bool filter;
	uint8_t answer[4];
} items[] = {
    {"zen.spamhaus.org*3", true, 0, "zen.spamhaus.org", 3, false, {0}},
    {"bl.spamcop.net", true, 0, "bl.spamcop.net", 1, false, {0}},
    {"Zone.TEST*100", true, 0, "zone.test", 100, false, {0}},
    {"zen.spamhaus.org=127.0.0.2*3", true, 0, "zen.spamhaus.org", 3, true,
	{127, 0, 0, 2}},
    {"list.dnswl.org=127.0.5.1", false, 0, "list.dnswl.org", 1, true,
	{127, 0, 5, 1}},
    {"list.dnswl.org", false, 0, "list.dnswl.org", 1, false, {0}},
    {"list.dnswl.org*2", false, -1, NULL, 0, false, {0}}, /* no weight */
    {"zone.test*0", true, -1, NULL, 0, false, {0}},
    {"zone.test*101", true, -1, NULL, 0, false, {0}},
    {"zone.test*-3", true, -1, NULL, 0, false, {0}},
    {"zone.test*", true, -1, NULL, 0, false, {0}},
    {"zone.test*3x", true, -1, NULL, 0, false, {0}},
    {"zone.test=", true, -1, NULL, 0, false, {0}},
    {"zone.test=10.0.0.2", true, -1, NULL, 0, false, {0}}, /* not 127/8 */
    {"zone.test=127.0.0.256", true, -1, NULL, 0, false, {0}},
    {"zone.test=127.0.0", true, -1, NULL, 0, false, {0}},
    {"zone.test=127.0.0.2.1", true, -1, NULL, 0, false, {0}},
    {"=127.0.0.2", true, -1, NULL, 0, false, {0}},
    {"*3", true, -1, NULL, 0, false, {0}},
    {".zone.test", true, -1, NULL, 0, false, {0}},
    {"zone.test.", true, -1, NULL, 0, false, {0}},
    {"zone..test", true, -1, NULL, 0, false, {0}},
    {"zo ne.test", true, -1, NULL, 0, false, {0}},
    {"zo/ne.test", true, -1, NULL, 0, false, {0}},
    {"", true, -1, NULL, 0, false, {0}},
    {"a234567890123456789012345678901234567890123456789012345678901234."
     "test",
	true, -1, NULL, 0, false, {0}}, /* a 64-octet label */
};

static void
test_items(void)
{
	for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
		struct dnsbl_site s;
		int r = dnsbl_parse_item(
		    items[i].in, strlen(items[i].in), items[i].weight_ok, &s);

		t_case(items[i].in);
		T_CHECK(r == items[i].ok);
		if (r != 0 || items[i].ok != 0)
			continue;
		T_CHECK(strcmp(s.zone, items[i].zone) == 0);
		T_CHECK(s.weight == items[i].weight);
		T_CHECK(s.filter == items[i].filter);
		if (s.filter)
			T_CHECK(memcmp(s.answer, items[i].answer, 4) == 0);
	}
}

static void
test_lists(void)
{
	struct dnsbl_site s[DNSBL_SITES_MAX];
	char err[160];
	char many[2048] = "";

	t_case("list");
	T_CHECK(dnsbl_parse_list(" a.test*3, b.test*1 ,c.test=127.0.0.4*2",
		    true, s, DNSBL_SITES_MAX, err, sizeof(err)) == 3);
	T_CHECK(strcmp(s[0].zone, "a.test") == 0 && s[0].weight == 3);
	T_CHECK(strcmp(s[1].zone, "b.test") == 0 && s[1].weight == 1);
	T_CHECK(s[2].filter && s[2].answer[3] == 4 && s[2].weight == 2);
	t_case("empty");
	T_CHECK(dnsbl_parse_list(NULL, true, s, 4, err, sizeof(err)) == 0);
	T_CHECK(dnsbl_parse_list(" , ", true, s, 4, err, sizeof(err)) == 0);
	t_case("bad item named");
	T_CHECK(dnsbl_parse_list(
		    "a.test, b.test*x", true, s, 4, err, sizeof(err)) == -1);
	T_CHECK(strstr(err, "b.test*x") != NULL);
	t_case("too many");
	for (int i = 0; i <= DNSBL_SITES_MAX; i++) {
		size_t l = strlen(many);

		T_CHECK(
		    str_fmt(many + l, sizeof(many) - l, "z%d.test,", i) == 0);
	}
	T_CHECK(dnsbl_parse_list(
		    many, true, s, DNSBL_SITES_MAX, err, sizeof(err)) == -1);
}

static void
test_qname(void)
{
	const uint8_t v4[4] = {127, 0, 0, 2};
	uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8};
	char out[DNSBL_QNAME_MAX + 1];

	t_case("ipv4");
	T_CHECK(dnsbl_qname(v4, 4, "zone.test", out, sizeof(out)) == 0);
	T_CHECK(strcmp(out, "2.0.0.127.zone.test") == 0);
	t_case("ipv6");
	v6[15] = 0x1b;
	T_CHECK(dnsbl_qname(v6, 16, "zone.test", out, sizeof(out)) == 0);
	T_CHECK(strcmp(out, "b.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
			    "8.b.d.0.1.0.0.2.zone.test") == 0);
	t_case("too long");
	T_CHECK(dnsbl_qname(v4, 4, "zone.test", out, 12) == -1);
	T_CHECK(dnsbl_qname(v4, 5, "zone.test", out, sizeof(out)) == -1);
}

static void
test_classify(void)
{
	struct dnsbl_site any, only2;
	const uint8_t a2[4] = {127, 0, 0, 2}, a4[4] = {127, 0, 0, 4};
	const uint8_t ref[4] = {127, 255, 255, 254}, bog[4] = {10, 0, 0, 2};

	t_case("any 127/8");
	T_CHECK(dnsbl_parse_item("z.test", 6, true, &any) == 0);
	T_CHECK(dnsbl_classify(&any, a2) == DNSBL_LISTED);
	T_CHECK(dnsbl_classify(&any, a4) == DNSBL_LISTED);
	t_case("filter");
	T_CHECK(dnsbl_parse_item("z.test=127.0.0.2", 16, true, &only2) == 0);
	T_CHECK(dnsbl_classify(&only2, a2) == DNSBL_LISTED);
	T_CHECK(dnsbl_classify(&only2, a4) == DNSBL_UNLISTED);
	t_case("refused and bogus");
	T_CHECK(dnsbl_classify(&any, ref) == DNSBL_REFUSED);
	T_CHECK(dnsbl_classify(&only2, ref) == DNSBL_REFUSED);
	T_CHECK(dnsbl_classify(&any, bog) == DNSBL_BOGUS);
}

static void
test_cache(void)
{
	struct screen_cache *sc = screen_cache_new(3, 60);
	const uint8_t a[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 9, 9};
	uint8_t b[16], k1[SCREEN_KEY_LEN], k2[SCREEN_KEY_LEN];
	uint8_t v4[4] = {192, 0, 2, 1};
	char text[SCREEN_TEXT_MAX];

	t_case("miss, pass, fail");
	screen_cache_key(a, 16, k1);
	T_CHECK(screen_cache_get(sc, k1, 100, text, sizeof(text)) == -1);
	screen_cache_put(sc, k1, false, "listed by z.test", 100);
	T_CHECK(screen_cache_get(sc, k1, 159, text, sizeof(text)) == 0);
	T_CHECK(strcmp(text, "listed by z.test") == 0);
	t_case("same /64");
	memcpy(b, a, 16);
	b[15] = 0x77;
	b[8] = 0xff;
	screen_cache_key(b, 16, k2);
	T_CHECK(memcmp(k1, k2, SCREEN_KEY_LEN) == 0);
	b[7] = 2;
	screen_cache_key(b, 16, k2);
	T_CHECK(memcmp(k1, k2, SCREEN_KEY_LEN) != 0);
	t_case("expires");
	T_CHECK(screen_cache_get(sc, k1, 160, text, sizeof(text)) == -1);
	T_CHECK(screen_cache_count(sc) == 0);
	t_case("replace");
	screen_cache_put(sc, k1, false, "x", 200);
	screen_cache_put(sc, k1, true, "", 201);
	T_CHECK(screen_cache_get(sc, k1, 202, NULL, 0) == 1);
	T_CHECK(screen_cache_count(sc) == 1);
	t_case("bounded, oldest out");
	for (uint8_t i = 1; i <= 3; i++) {
		uint8_t k[SCREEN_KEY_LEN];

		v4[3] = i;
		screen_cache_key(v4, 4, k);
		screen_cache_put(sc, k, true, "", 210 + i);
	}
	T_CHECK(screen_cache_count(sc) == 3);
	T_CHECK(screen_cache_get(sc, k1, 220, NULL, 0) == -1);
	v4[3] = 1;
	screen_cache_key(v4, 4, k2);
	T_CHECK(screen_cache_get(sc, k2, 220, NULL, 0) == 1);
	screen_cache_free(sc);
}

/* A reload's new screen.cache_ttl: the verdicts stay, none outlives it. */
static void
test_cache_ttl(void)
{
	struct screen_cache *sc = screen_cache_new(8, 600);
	uint8_t v4[4] = {192, 0, 2, 1}, k1[SCREEN_KEY_LEN], k2[SCREEN_KEY_LEN];

	screen_cache_key(v4, 4, k1);
	v4[3] = 2;
	screen_cache_key(v4, 4, k2);
	screen_cache_put(sc, k1, false, "listed", 100);
	screen_cache_put(sc, k2, true, "", 500);
	t_case("ttl lowered: cut to now + ttl");
	screen_cache_set_ttl(sc, 60, 600);
	T_CHECK(screen_cache_count(sc) == 2);
	T_CHECK(screen_cache_get(sc, k1, 659, NULL, 0) == 0);
	T_CHECK(screen_cache_get(sc, k1, 660, NULL, 0) == -1);
	T_CHECK(screen_cache_get(sc, k2, 659, NULL, 0) == 1);
	t_case("ttl raised: a kept verdict keeps its end, a new one gets it");
	screen_cache_set_ttl(sc, 1000, 600);
	T_CHECK(screen_cache_get(sc, k2, 660, NULL, 0) == -1);
	screen_cache_put(sc, k1, true, "", 700);
	T_CHECK(screen_cache_get(sc, k1, 1699, NULL, 0) == 1);
	screen_cache_free(sc);
}

/* Lines of STATE/screen.cache: what is read back, what is refused. */
static const struct {
	const char *line;
	int ok;
	bool pass;
	unsigned long long expires;
	const char *text;
} lines[] = {
    {"c0000201000000000000000000000004 F 1800000000 Service refused: "
     "192.0.2.1 is listed by bl.test",
	0, false, 1800000000ull,
	"Service refused: 192.0.2.1 is listed by bl.test"},
    {"20010db8000000010000000000000006 P 1800000000 ", 0, true, 1800000000ull,
	""},
    {"20010db8000000010000000000000006 F 1 x", 0, false, 1, "x"},
    /* a pass with a text, a key that is no key, torn lines */
    {"20010db8000000010000000000000006 P 1800000000 x", -1, false, 0, 0},
    {"20010db8000000010000000000000106 P 1800000000 ", -1, false, 0, 0},
    {"c0000201000000000000000000000005 F 1800000000 x", -1, false, 0, 0},
    {"c0000201000000000000000000000104 F 1800000000 x", -1, false, 0, 0},
    {"C0000201000000000000000000000004 F 1800000000 x", -1, false, 0, 0},
    {"c0000201000000000000000000000004 F 1800000000", -1, false, 0, 0},
    {"c0000201000000000000000000000004 F  x", -1, false, 0, 0},
    {"c0000201000000000000000000000004 X 1 x", -1, false, 0, 0},
    {"c0000201000000000000000000000004 F 99999999999999999999 x", -1, false, 0,
	0},
    {"c0000201000000000000000000000004 F 1 a\tb", -1, false, 0, 0},
    /* a leading zero the writer never puts (found by fuzz_formats) */
    {"01238800000000000000000000000004 P 01238802 ", -1, false, 0, 0},
    {"c0000201000000000000000000000004 F 0 x", 0, false, 0, "x"},
    {"c000020100000000000000000000004 F 1 x", -1, false, 0, 0},
    {"", -1, false, 0, 0},
    {SCREEN_FILE_MAGIC, -1, false, 0, 0},
};

static void
test_file_lines(void)
{
	uint8_t key[SCREEN_KEY_LEN];
	char text[SCREEN_TEXT_MAX], out[SCREEN_LINE_MAX + 1];
	bool pass;
	uint64_t exp;

	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		int r = screen_line_parse(lines[i].line, strlen(lines[i].line),
		    key, &pass, &exp, text, sizeof(text));

		t_case(lines[i].line);
		T_CHECK(r == lines[i].ok);
		if (r != 0)
			continue;
		T_CHECK(pass == lines[i].pass && exp == lines[i].expires);
		T_CHECK(strcmp(text, lines[i].text) == 0);
		/* and written back the same */
		T_CHECK(screen_line_format(
			    out, sizeof(out), key, pass, exp, text) == 0);
		T_CHECK(strcmp(out, lines[i].line) == 0);
	}
	t_case("the longest text fits SCREEN_LINE_MAX");
	{
		char longest[SCREEN_TEXT_MAX];
		uint8_t v4[4] = {192, 0, 2, 1};

		memset(longest, 'z', sizeof(longest) - 1);
		longest[sizeof(longest) - 1] = '\0';
		screen_cache_key(v4, 4, key);
		T_CHECK(screen_line_format(out, sizeof(out), key, false,
			    UINT64_C(9999999999999999999), longest) == 0);
		T_CHECK(strlen(out) == SCREEN_LINE_MAX);
		T_CHECK(screen_line_parse(out, strlen(out), key, &pass, &exp,
			    text, sizeof(text)) == 0);
		T_CHECK(strcmp(text, longest) == 0);
	}
	t_case("a text that cannot be written");
	T_CHECK(
	    screen_line_format(out, sizeof(out), key, false, 1, "a\nb") == -1);
}

static void
each_count(const uint8_t key[SCREEN_KEY_LEN], bool pass, const char *text,
    uint64_t left, void *arg)
{
	uint64_t *sum = arg;

	(void)key;
	(void)text;
	sum[0]++;
	sum[1] += left;
	sum[2] += pass;
}

static void
test_cache_restore(void)
{
	struct screen_cache *sc = screen_cache_new(10, 60);
	uint8_t v4[4] = {192, 0, 2, 1}, k[SCREEN_KEY_LEN];
	uint64_t sum[3] = {0, 0, 0};

	t_case("put_for: the time left, never past the ttl");
	screen_cache_key(v4, 4, k);
	screen_cache_put_for(sc, k, false, "x", 1000, 10);
	T_CHECK(screen_cache_get(sc, k, 1009, NULL, 0) == 0);
	T_CHECK(screen_cache_get(sc, k, 1010, NULL, 0) == -1);
	screen_cache_put_for(sc, k, false, "x", 1000, 100000);
	T_CHECK(screen_cache_get(sc, k, 1059, NULL, 0) == 0);
	T_CHECK(screen_cache_get(sc, k, 1060, NULL, 0) == -1);
	screen_cache_put_for(sc, k, true, "", 2000, 0);
	T_CHECK(screen_cache_count(sc) == 0);
	t_case("each: the live entries with their time left");
	screen_cache_put(sc, k, true, "", 3000); /* until 3060 */
	v4[3] = 2;
	screen_cache_key(v4, 4, k);
	screen_cache_put(sc, k, false, "y", 3030); /* until 3090 */
	screen_cache_each(sc, 3070, each_count, sum);
	T_CHECK(sum[0] == 1 && sum[1] == 20 && sum[2] == 0);
	sum[0] = sum[1] = sum[2] = 0;
	screen_cache_each(sc, 3010, each_count, sum);
	T_CHECK(sum[0] == 2 && sum[1] == 50 + 80 && sum[2] == 1);
	screen_cache_free(sc);
}

/* The first line's version: ours (any N), or not ours (0). */
static void
test_file_version(void)
{
	static const struct {
		const char *line;
		unsigned long v;
	} rows[] = {
	    {SCREEN_FILE_MAGIC, SCREEN_FILE_VERSION},
	    {"tern-screen-cache 2", 2},
	    {"tern-screen-cache 123456789", 123456789},
	    {"tern-screen-cache 1234567890", 0},
	    {"tern-screen-cache 0", 0},
	    {"tern-screen-cache 02", 0},
	    {"tern-screen-cache 2 ", 0},
	    {"tern-screen-cache ", 0},
	    {"tern-screen-cache", 0},
	    {"TERN-screen-cache 2", 0},
	    {"", 0},
	};
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		t_case(rows[i].line);
		T_CHECK(screen_file_version(
			    rows[i].line, strlen(rows[i].line)) == rows[i].v);
	}
}

int
main(void)
{
	T_RUN(test_items);
	T_RUN(test_lists);
	T_RUN(test_qname);
	T_RUN(test_classify);
	T_RUN(test_cache);
	T_RUN(test_cache_ttl);
	T_RUN(test_file_lines);
	T_RUN(test_cache_restore);
	T_RUN(test_file_version);
	return t_summary();
}
