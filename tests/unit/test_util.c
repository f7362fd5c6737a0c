/*
 * Unit tests for src/util: the bounded buffer, the log sanitiser, SipHash
 * (the paper's reference vectors) and client keys.
 */
#include <string.h>
#include <unistd.h>

#include "t.h"
#include "util/clientkey.h"
#include "util/util.h"

static void
test_buf_max(void)
{
	struct buf b;

	buf_init(&b, 8);
	T_CHECK(buf_append(&b, "12345678", 8) == 0);
	T_CHECK(buf_append(&b, "9", 1) == -1);
	T_CHECK_INT(b.len, 8);
	T_CHECK_STR(b.data, "12345678");
	buf_consume(&b, 3);
	T_CHECK_STR(b.data, "45678");
	T_CHECK(buf_printf(&b, "%d", 123) == 0);
	T_CHECK_STR(b.data, "45678123");
	T_CHECK(buf_printf(&b, "x") == -1);
	T_CHECK(buf_reserve(&b, SIZE_MAX) == -1);
	buf_free(&b);
}

static void
test_sanitize(void)
{
	char out[16];

	T_CHECK_STR(log_sanitize(out, sizeof(out), "abc", 3), "abc");
	T_CHECK_STR(
	    log_sanitize(out, sizeof(out), "a b=\"\n", 6), "a\\x20b\\x3d...");
	T_CHECK_STR(log_sanitize(out, sizeof(out), "0123456789abcdefghij", 20),
	    "0123456789ab...");
}

/* One log line as written to stderr (a pipe), at most cap octets. */
static size_t
log_capture(char *got, size_t cap, const char *msg)
{
	int p[2], saved = dup(STDERR_FILENO);
	ssize_t n;

	if (saved < 0 || pipe(p) != 0 || dup2(p[1], STDERR_FILENO) < 0)
		abort();
	log_info("msg=%s", msg);
	if (dup2(saved, STDERR_FILENO) < 0)
		abort();
	close(saved);
	close(p[1]);
	n = read(p[0], got, cap);
	close(p[0]);
	return n > 0 ? (size_t)n : 0;
}

/* The log sink cuts a long line to 4096 octets, marked, '\n' last. */
static void
test_log_line_cut(void)
{
	static char msg[6000], got[8192];
	size_t n;

	log_init("tern-test", LOG_LEVEL_INFO);
	memset(msg, 'x', sizeof(msg) - 1);
	n = log_capture(got, sizeof(got), msg);
	T_CHECK_INT(n, 4096);
	T_CHECK(n == 4096 && memcmp(got + n - 4, "...\n", 4) == 0);
	T_CHECK(n == 4096 && memchr(got, '\n', n) == got + n - 1);

	t_case("log line that fits is whole");
	n = log_capture(got, sizeof(got), "short");
	T_CHECK(n > 10 && memcmp(got + n - 11, " msg=short\n", 11) == 0);
}

static void
test_u64(void)
{
	uint64_t v;

	T_CHECK(
	    str_to_u64("18446744073709551615", 20, &v) == 0 && v == UINT64_MAX);
	T_CHECK(str_to_u64("18446744073709551616", 20, &v) == -1);
	T_CHECK(str_to_u64("", 0, &v) == -1);
	T_CHECK(str_to_u64("12a", 3, &v) == -1);
	T_CHECK(str_case_eq("MaIl", 4, "mail"));
	T_CHECK(!str_case_eq("MaIl", 4, "mails"));
}

/*
 * SipHash-2-4 with the key 00 01 .. 0f over the messages (), (00),
 * (00 01), ... (00 .. 3e): the 64 outputs of the reference vectors that
 * come with the paper (Aumasson, Bernstein, "SipHash: a fast short-input
 * PRF", 2012; Appendix A is entry 15).  Every length class mod 8 and
 * eight full blocks are covered.
 */
static const uint64_t sip_vectors[64] = {
    0x726fdb47dd0e0e31ull,
    0x74f839c593dc67fdull,
    0x0d6c8009d9a94f5aull,
    0x85676696d7fb7e2dull,
    0xcf2794e0277187b7ull,
    0x18765564cd99a68dull,
    0xcbc9466e58fee3ceull,
    0xab0200f58b01d137ull,
    0x93f5f5799a932462ull,
    0x9e0082df0ba9e4b0ull,
    0x7a5dbbc594ddb9f3ull,
    0xf4b32f46226bada7ull,
    0x751e8fbc860ee5fbull,
    0x14ea5627c0843d90ull,
    0xf723ca908e7af2eeull,
    0xa129ca6149be45e5ull,
    0x3f2acc7f57c29bdbull,
    0x699ae9f52cbe4794ull,
    0x4bc1b3f0968dd39cull,
    0xbb6dc91da77961bdull,
    0xbed65cf21aa2ee98ull,
    0xd0f2cbb02e3b67c7ull,
    0x93536795e3a33e88ull,
    0xa80c038ccd5ccec8ull,
    0xb8ad50c6f649af94ull,
    0xbce192de8a85b8eaull,
    0x17d835b85bbb15f3ull,
    0x2f2e6163076bcfadull,
    0xde4daaaca71dc9a5ull,
    0xa6a2506687956571ull,
    0xad87a3535c49ef28ull,
    0x32d892fad841c342ull,
    0x7127512f72f27cceull,
    0xa7f32346f95978e3ull,
    0x12e0b01abb051238ull,
    0x15e034d40fa197aeull,
    0x314dffbe0815a3b4ull,
    0x027990f029623981ull,
    0xcadcd4e59ef40c4dull,
    0x9abfd8766a33735cull,
    0x0e3ea96b5304a7d0ull,
    0xad0c42d6fc585992ull,
    0x187306c89bc215a9ull,
    0xd4a60abcf3792b95ull,
    0xf935451de4f21df2ull,
    0xa9538f0419755787ull,
    0xdb9acddff56ca510ull,
    0xd06c98cd5c0975ebull,
    0xe612a3cb9ecba951ull,
    0xc766e62cfcadaf96ull,
    0xee64435a9752fe72ull,
    0xa192d576b245165aull,
    0x0a8787bf8ecb74b2ull,
    0x81b3e73d20b49b6full,
    0x7fa8220ba3b2eceaull,
    0x245731c13ca42499ull,
    0xb78dbfaf3a8d83bdull,
    0xea1ad565322a1a0bull,
    0x60e61c23a3795013ull,
    0x6606d7e446282b93ull,
    0x6ca4ecb15c5f91e1ull,
    0x9f626da15c9625f3ull,
    0xe51b38608ef25f57ull,
    0x958a324ceb064572ull,
};

static void
test_siphash_vectors(void)
{
	uint8_t key[16], msg[64];
	size_t i;

	for (i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (i = 0; i < 64; i++)
		msg[i] = (uint8_t)i;
	for (i = 0; i < 64; i++) {
		t_case("siphash vector");
		T_CHECK(siphash24(key, msg, i) == sip_vectors[i]);
	}
	t_case("siphash key matters");
	key[0] ^= 1;
	T_CHECK(siphash24(key, msg, 15) != sip_vectors[15]);
}

static void
test_client_key(void)
{
	const uint8_t v4[4] = {192, 0, 2, 1}, v4b[4] = {192, 0, 2, 2};
	uint8_t a[16] = {
	    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1};
	uint8_t b[16], c[16];
	const uint8_t mapped[16] = {
	    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1};
	struct client_key ka, kb, kc, k4, k4b, km, ku, ku2;
	char out[64];

	memcpy(b, a, 16);
	b[8] = 0xfe; /* other host, same /64 */
	b[15] = 0x99;
	memcpy(c, a, 16);
	c[7] = 2; /* the next /64 */
	client_key_ip(&ka, a, 16);
	client_key_ip(&kb, b, 16);
	client_key_ip(&kc, c, 16);
	client_key_ip(&k4, v4, 4);
	client_key_ip(&k4b, v4b, 4);
	client_key_ip(&km, mapped, 16);
	client_key_uid(&ku, 1000);
	client_key_uid(&ku2, 1001);
	t_case("v6 same /64 is one client");
	T_CHECK(client_key_eq(&ka, &kb));
	T_CHECK(client_key_hash(&ka) == client_key_hash(&kb));
	t_case("v6 other /64 is another");
	T_CHECK(!client_key_eq(&ka, &kc));
	t_case("v4 apart, v4-mapped is v4");
	T_CHECK(!client_key_eq(&k4, &k4b));
	T_CHECK(client_key_eq(&k4, &km));
	T_CHECK(client_key_hash(&k4) == client_key_hash(&km));
	t_case("uid keys: kinds never meet");
	T_CHECK(!client_key_eq(&ku, &ku2));
	{
		/* uid 0xc0000201 has the bytes of 192.0.2.1 */
		struct client_key kx;

		client_key_uid(&kx, 0xc0000201u);
		T_CHECK(!client_key_eq(&kx, &k4));
	}
	t_case("format");
	T_CHECK(client_key_format(&k4, out, sizeof(out)) == 0);
	T_CHECK_STR(out, "192.0.2.1");
	T_CHECK(client_key_format(&ka, out, sizeof(out)) == 0);
	T_CHECK_STR(out, "2001:db8:0:1::/64");
	T_CHECK(client_key_format(&ku, out, sizeof(out)) == 0);
	T_CHECK_STR(out, "uid=1000");
	T_CHECK(client_key_format(&ka, out, 8) == -1);
}

/* The hash spreads: 4096 addresses of one /48 over 64 buckets. */
static void
test_client_key_spread(void)
{
	unsigned counts[64] = {0}, i, max = 0;
	uint8_t a[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0x42};

	t_case("client key hash spreads");
	for (i = 0; i < 4096; i++) {
		struct client_key k;

		a[6] = (uint8_t)(i >> 8);
		a[7] = (uint8_t)i;
		client_key_ip(&k, a, 16);
		counts[client_key_hash(&k) % 64]++;
	}
	for (i = 0; i < 64; i++)
		max = counts[i] > max ? counts[i] : max;
	T_CHECK(max < 3 * 4096 / 64); /* mean 64; chance of failing ~0 */
}

int
main(void)
{
	T_RUN(test_buf_max);
	T_RUN(test_sanitize);
	T_RUN(test_log_line_cut);
	T_RUN(test_u64);
	T_RUN(test_siphash_vectors);
	T_RUN(test_client_key);
	T_RUN(test_client_key_spread);
	return t_summary();
}
