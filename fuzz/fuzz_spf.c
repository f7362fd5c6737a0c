/*
 * fuzz_spf: libFuzzer harness for src/mailauth/spf*.c (RFC 7208).
 *
 * Input: two control octets (flags, client address choice), then fields
 * separated by NUL.  Field 0 is expanded as a macro-string in the four
 * modes (domain or text, exp letters or not); field 1 is parsed as a
 * record; then a whole check_host() runs against a fake zone made of the
 * fields: each query picks a field by a hash of its name and type, "|"
 * splits it into TXT strings or names, a leading "!" answers a temporary
 * error and "#" NXDOMAIN; addresses are made from the hash (sometimes the
 * client's own).
 *
 * Besides the sanitisers, it aborts when a property breaks:
 *  - an expansion as a domain is at most 253 octets or holds no dot (a
 *    single label too long to cut, RFC 7208 7.3), and never passes the
 *    expansion window; a text expansion never passes the window either;
 *  - a check ends within SPF_QUERIES_MAX queries with one of the seven
 *    results, asks only for names of at most 253 octets, and stays done;
 *  - a record spf_record_check() accepts is printable ASCII;
 *  - the Received-SPF text is printable ASCII folded with CRLF TAB only,
 *    no line over 998 octets (RFC 5322 2.1.1).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mailauth/spf.h"
#include "mailauth/spf_int.h"

#define FIELDS_MAX 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct input {
	const char *f[FIELDS_MAX];
	size_t len[FIELDS_MAX];
	size_t n;
	struct spf_ip ip;
};

static uint32_t
hash(const char *s, uint32_t h)
{
	for (; *s != '\0'; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

static void
check_expand(const struct spf_request *req, const char *in, size_t len)
{
	int mode;

	for (mode = 0; mode < 4; mode++) {
		bool dom = mode & 1, exp = mode & 2;
		struct buf b;

		buf_init(&b, 1u << 16);
		if (spf_expand(req, "d.example", "p.example", in, len, dom, exp,
			&b) == 0) {
			if (b.len > 2 * SPF_EXPAND_WINDOW)
				abort();
			if (dom && b.len > SPF_NAME_MAX &&
			    memchr(b.data, '.', b.len) != NULL)
				abort();
		}
		buf_free(&b);
	}
}

static size_t
split(const char *f, size_t len, struct spf_rr *rr, size_t max, bool txt)
{
	size_t n = 0, st = 0, k;

	for (k = 0; k <= len && n < max; k++) {
		if (k < len && f[k] != '|')
			continue;
		rr[n].data = f + st;
		rr[n].len = k - st;
		rr[n].txt_continue = txt && n > 0 && (f[st] & 1);
		n++;
		st = k + 1;
	}
	return n;
}

static void
answer(struct spf *s, const struct spf_query *q, const struct input *in)
{
	uint32_t h = hash(q->name, 2166136261u + (uint32_t)q->type);
	const char *f = in->f[h % in->n];
	size_t len = in->len[h % in->n];
	struct spf_rr rr[24];
	uint8_t addrs[3][16];
	size_t n = 0, k;

	if (strlen(q->name) > SPF_NAME_MAX)
		abort();
	if (len > 0 && f[0] == '!') {
		(void)!spf_answer(s, SPF_DNS_TEMP, NULL, 0);
		return;
	}
	if (len > 0 && f[0] == '#') {
		(void)!spf_answer(s, SPF_DNS_NXDOMAIN, NULL, 0);
		return;
	}
	if (q->type == SPF_Q_A || q->type == SPF_Q_AAAA) {
		for (k = 0; k < (h >> 8) % 4; k++) {
			memcpy(addrs[k], in->ip.addr, 16);
			if ((h >> (12 + k)) & 1)
				addrs[k][(h >> 20) % 4] ^= (uint8_t)(h >> 24);
			rr[n].data = addrs[k];
			rr[n].len = q->type == SPF_Q_A ? 4 : 16;
			rr[n++].txt_continue = false;
		}
	} else
		n = split(f, len, rr, 24, q->type == SPF_Q_TXT);
	if (spf_answer(s, SPF_DNS_OK, rr, n) != 0)
		abort();
}

static void
check_header(const struct spf *s)
{
	struct buf b;
	size_t k, line = 0;

	buf_init(&b, 1u << 16);
	if (spf_received_spf(&b, s) != 0)
		abort();
	for (k = 0; k < b.len; k++, line++) {
		uint8_t c = (uint8_t)b.data[k];

		if (c == '\r') {
			if (k + 2 >= b.len || b.data[k + 1] != '\n' ||
			    b.data[k + 2] != '\t')
				abort();
			line = 0;
			k += 2;
		} else if (c < 0x20 || c > 0x7e)
			abort();
		if (line > 998)
			abort();
	}
	buf_free(&b);
}

static void
check_host_run(const struct spf_request *req, const struct input *in)
{
	struct spf *s = spf_new(req);
	struct spf_query q;
	size_t steps = 0;

	if (s == NULL)
		return;
	while (spf_next(s, &q) == SPF_STEP_QUERY) {
		if (++steps > SPF_QUERIES_MAX + 1)
			abort();
		answer(s, &q, in);
	}
	if ((unsigned)spf_result(s) > SPF_PERMERROR ||
	    spf_next(s, &q) != SPF_STEP_DONE)
		abort();
	check_header(s);
	spf_free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const ips[] = {
	    "192.0.2.1", "2001:db8::cb01", "::ffff:198.51.100.7", "10.0.0.4"};
	struct spf_request req;
	struct input in;
	char err[64];
	char *copy;
	size_t k, st;

	if (size < 2)
		return 0;
	memset(&in, 0, sizeof(in));
	copy = malloc(size - 2 + 1);
	memcpy(copy, data + 2, size - 2);
	copy[size - 2] = '\0';
	for (k = 0, st = 0; k <= size - 2 && in.n < FIELDS_MAX; k++) {
		if (k < size - 2 && copy[k] != '\0')
			continue;
		in.f[in.n] = copy + st;
		in.len[in.n++] = k - st;
		st = k + 1;
	}
	(void)!spf_ip_parse(ips[data[1] % 4], strlen(ips[data[1] % 4]), &in.ip);
	memset(&req, 0, sizeof(req));
	req.ip = in.ip;
	req.domain = "d.example";
	req.sender = data[0] & 1 ? "strong-bad@d.example" : "@d.example";
	req.helo = data[0] & 2 ? "h.example" : NULL;
	req.receiver = data[0] & 4 ? "r.example" : NULL;
	req.identity = data[0] & 8 ? SPF_ID_HELO : SPF_ID_MAILFROM;
	req.now = 1700000000;
	check_expand(&req, in.f[0], in.len[0]);
	/* an accepted record is printable ASCII (a NUL once passed for "+") */
	if (in.n > 1 &&
	    spf_record_check(in.f[1], in.len[1], err, sizeof(err)) == 0)
		for (k = 0; k < in.len[1]; k++)
			if (in.f[1][k] < 0x20 || in.f[1][k] > 0x7e)
				abort();
	/* the top domain's record is field 1 when the hash picks it;
	   anything else is as likely */
	check_host_run(&req, &in);
	free(copy);
	return 0;
}
