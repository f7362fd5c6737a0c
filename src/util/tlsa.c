/*
 * tlsa: TLSA RDATA and the TLSA records of a raw DNS answer (see
 * tlsa.h).  Invariants: every read is checked against the message's
 * length first; a name is skipped label by label, a compression pointer
 * ends it (never followed), so the walk is linear in len.
 */
#include <string.h>

#include "util/dnscache.h"
#include "util/tlsa.h"

#define TLSA_HDR 12 /* DNS header octets (RFC 1035 4.1.1) */
#define TLSA_IN	 1  /* class IN */

static unsigned
t_get16(const unsigned char *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

/* The data length a matching type needs; 0: any (Full), -1: unknown. */
static int
t_digest_len(unsigned mtype)
{
	switch (mtype) {
	case 0:
		return 0;
	case 1:
		return TLSA_SHA256;
	case 2:
		return TLSA_SHA512;
	default:
		return -1;
	}
}

enum tlsa_verdict
tlsa_rdata_parse(const unsigned char *rd, size_t len, struct tlsa_rr *out)
{
	size_t dlen;
	int want;

	if (len < 4)
		return TLSA_MALFORMED;
	dlen = len - 3;
	want = t_digest_len(rd[2]);
	if (want > 0 && dlen != (size_t)want)
		return TLSA_MALFORMED;
	if (rd[0] != TLSA_DANE_TA && rd[0] != TLSA_DANE_EE)
		return TLSA_UNUSABLE;
	if (rd[1] > 1 || want < 0 || dlen > TLSA_DATA_MAX)
		return TLSA_UNUSABLE;
	memset(out, 0, sizeof(*out));
	out->usage = rd[0];
	out->selector = rd[1];
	out->mtype = rd[2];
	out->len = (uint8_t)dlen;
	memcpy(out->data, rd + 3, dlen);
	return TLSA_USABLE;
}

static void
t_take(struct tlsa_set *set, const unsigned char *rd, size_t rdlen)
{
	struct tlsa_rr rr;

	switch (tlsa_rdata_parse(rd, rdlen, &rr)) {
	case TLSA_USABLE:
		if (set->n < TLSA_MAX)
			set->rr[set->n++] = rr;
		else
			set->unusable++; /* kept no more: counted */
		break;
	case TLSA_UNUSABLE:
		set->unusable++;
		break;
	case TLSA_MALFORMED:
		set->malformed++;
		break;
	}
}

int
tlsa_msg_parse(const unsigned char *msg, size_t len, struct tlsa_set *set)
{
	size_t o = TLSA_HDR;
	unsigned qd, an;

	memset(set, 0, sizeof(*set));
	if (len < TLSA_HDR)
		return -1;
	qd = t_get16(msg + 4);
	an = t_get16(msg + 6);
	for (unsigned i = 0; i < qd; i++) {
		if (!dns_skip_name(msg, len, &o) || len - o < 4)
			goto bad;
		o += 4;
	}
	for (unsigned i = 0; i < an; i++) {
		unsigned type, cls, rdlen;

		if (!dns_skip_name(msg, len, &o) || len - o < 10)
			goto bad;
		type = t_get16(msg + o);
		cls = t_get16(msg + o + 2);
		rdlen = t_get16(msg + o + 8);
		o += 10;
		if (len - o < rdlen)
			goto bad;
		if (type == TLSA_TYPE && cls == TLSA_IN)
			t_take(set, msg + o, rdlen);
		o += rdlen;
	}
	return 0;
bad:
	memset(set, 0, sizeof(*set));
	return -1;
}

size_t
tlsa_set_count(const struct tlsa_set *set)
{
	return set->n + set->unusable + set->malformed;
}
