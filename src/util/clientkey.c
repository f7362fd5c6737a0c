/*
 * clientkey: client keys (IPv4 address, IPv6 /64, local uid) and the
 * keyed SipHash-2-4 that per-client tables hash them with.
 *
 * Invariants: a key's unused bytes are zero and its kind is set, so two
 * keys are equal exactly when their structs are byte for byte, and the
 * hash covers kind, length and all bytes.
 *
 * Security: the hash key is 128 random bits drawn once per process
 * (getrandom(2), blocking until the kernel pool is ready: ternd starts
 * late enough at boot for that to be at once).  An attacker who does not
 * know it cannot choose addresses that share a bucket; the key is never
 * logged or exposed.  SipHash is the paper's; the unit tests check the
 * paper's 64 reference vectors.
 */
#include <pthread.h>
#include <string.h>
#include <sys/random.h>

#include "util/clientkey.h"
#include "util/util.h"

static uint8_t ck_secret[16];
static pthread_once_t ck_once = PTHREAD_ONCE_INIT;

/* ---- SipHash-2-4 -------------------------------------------------------- */

static uint64_t
sip_rotl(uint64_t x, unsigned b)
{
	return (x << b) | (x >> (64 - b));
}

static void
sip_round(uint64_t v[4])
{
	v[0] += v[1];
	v[1] = sip_rotl(v[1], 13);
	v[1] ^= v[0];
	v[0] = sip_rotl(v[0], 32);
	v[2] += v[3];
	v[3] = sip_rotl(v[3], 16);
	v[3] ^= v[2];
	v[0] += v[3];
	v[3] = sip_rotl(v[3], 21);
	v[3] ^= v[0];
	v[2] += v[1];
	v[1] = sip_rotl(v[1], 17);
	v[1] ^= v[2];
	v[2] = sip_rotl(v[2], 32);
}

/* c = 2 compression rounds per message word */
static void
sip_absorb(uint64_t v[4], uint64_t m)
{
	v[3] ^= m;
	sip_round(v);
	sip_round(v);
	v[0] ^= m;
}

static uint64_t
sip_le64(const uint8_t *p)
{
	uint64_t m = 0;
	int j;

	for (j = 7; j >= 0; j--)
		m = (m << 8) | p[j];
	return m;
}

uint64_t
siphash24(const uint8_t k[16], const void *in, size_t n)
{
	const uint8_t *p = in;
	uint64_t k0 = sip_le64(k), k1 = sip_le64(k + 8);
	uint64_t v[4] = {k0 ^ 0x736f6d6570736575ull, k1 ^ 0x646f72616e646f6dull,
	    k0 ^ 0x6c7967656e657261ull, k1 ^ 0x7465646279746573ull};
	uint64_t last = (uint64_t)n << 56; /* the length byte, mod 256 */
	size_t i, full = n - n % 8;
	int r;

	for (i = 0; i < full; i += 8)
		sip_absorb(v, sip_le64(p + i));
	for (i = full; i < n; i++)
		last |= (uint64_t)p[i] << (8 * (i - full));
	sip_absorb(v, last);
	v[2] ^= 0xff;
	for (r = 0; r < 4; r++) /* d = 4 finalization rounds */
		sip_round(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/* ---- keys --------------------------------------------------------------- */

static const uint8_t ck_v4mapped[12] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

void
client_key_ip(struct client_key *k, const void *ip, size_t iplen)
{
	const uint8_t *p = ip;

	if (iplen > CLIENT_KEY_BYTES)
		panic("client_key: key of %zu bytes", iplen);
	memset(k, 0, sizeof(*k));
	if (iplen == 16 && memcmp(p, ck_v4mapped, 12) == 0) {
		k->kind = CLIENT_KEY_V4;
		k->len = 4;
		memcpy(k->b, p + 12, 4);
	} else if (iplen == 16) {
		k->kind = CLIENT_KEY_V6;
		k->len =
		    8; /* the /64: the interface identifier is the host's */
		memcpy(k->b, p, 8);
	} else {
		k->kind = iplen == 4 ? CLIENT_KEY_V4 : CLIENT_KEY_RAW;
		k->len = (uint8_t)iplen;
		memcpy(k->b, p, iplen);
	}
}

void
client_key_uid(struct client_key *k, uint32_t uid)
{
	memset(k, 0, sizeof(*k));
	k->kind = CLIENT_KEY_UID;
	k->len = 4;
	k->b[0] = (uint8_t)(uid >> 24);
	k->b[1] = (uint8_t)(uid >> 16);
	k->b[2] = (uint8_t)(uid >> 8);
	k->b[3] = (uint8_t)uid;
}

bool
client_key_eq(const struct client_key *a, const struct client_key *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

int
client_key_format(const struct client_key *k, char *out, size_t outlen)
{
	const uint8_t *b = k->b;

	switch (k->kind) {
	case CLIENT_KEY_V4:
		return str_fmt(
		    out, outlen, "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
	case CLIENT_KEY_V6:
		return str_fmt(out, outlen, "%x:%x:%x:%x::/64",
		    (unsigned)(b[0] << 8 | b[1]), (unsigned)(b[2] << 8 | b[3]),
		    (unsigned)(b[4] << 8 | b[5]), (unsigned)(b[6] << 8 | b[7]));
	case CLIENT_KEY_UID:
		return str_fmt(out, outlen, "uid=%u",
		    (unsigned)((uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
			       (uint32_t)b[2] << 8 | b[3]));
	default:
		return str_fmt(out, outlen, "raw/%u", (unsigned)k->len);
	}
}

static void
ck_draw(void)
{
	size_t got = 0;

	while (got < sizeof(ck_secret)) {
		ssize_t r =
		    getrandom(ck_secret + got, sizeof(ck_secret) - got, 0);

		if (r <= 0)
			fatal("event=startup step=getrandom"); /* EINTR never at
								  16 B */
		got += (size_t)r;
	}
}

void
client_key_seed(void)
{
	(void)pthread_once(&ck_once, ck_draw);
}

uint64_t
client_key_hash(const struct client_key *k)
{
	client_key_seed();
	return siphash24(ck_secret, k, sizeof(*k));
}
