/*
 * fuzz_sts: libFuzzer harness for src/sts/sts.c (RFC 8461).
 *
 * The input is fed whole to the policy parser (an HTTPS body as fetched
 * or read back from the cache), as one TXT record to sts_txt_parse, and,
 * split at each NUL, as the TXT records of one name to sts_txt_pick.
 * Besides the sanitisers, it aborts when:
 *  - a parsed policy breaks its own bounds: a mode out of the enum,
 *    max_age above STS_MAX_AGE_MAX, more than STS_MX_MAX patterns, a
 *    pattern that is empty, not lower case, or does not match a host
 *    made from it (its own name, "x." + the wildcard's base);
 *  - a policy outside the bounds (mode other than none without mx) is
 *    accepted, or a refusal leaves err empty;
 *  - a record's id is accepted while empty, longer than STS_ID_MAX or
 *    not alphanumeric, or a refusal leaves the id non-empty;
 *  - sts_txt_pick says OK for records sts_txt_parse refuses;
 *  - a cache file decodes but its record does not encode and decode
 *    again to the same record.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sts/sts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_policy(const struct sts_policy *p)
{
	char host[STS_NAME_MAX + 8];
	size_t i, j, n;

	if (p->mode > STS_MODE_ENFORCE || p->max_age > STS_MAX_AGE_MAX ||
	    p->nmx > STS_MX_MAX || (p->mode != STS_MODE_NONE && p->nmx == 0))
		abort();
	for (i = 0; i < p->nmx; i++) {
		n = strlen(p->mx[i]);
		if (n == 0 || n > STS_NAME_MAX + 2)
			abort();
		for (j = 0; j < n; j++)
			if (p->mx[i][j] >= 'A' && p->mx[i][j] <= 'Z')
				abort();
		if (p->mx[i][0] == '*') {
			host[0] = 'x';
			memcpy(host + 1, p->mx[i] + 1, n);
		} else {
			memcpy(host, p->mx[i], n + 1);
		}
		if (!sts_pattern_match(p->mx[i], host) ||
		    !sts_mx_match(p, host))
			abort();
	}
}

static void
check_id(int rc, const char *id)
{
	size_t n = strlen(id), i;

	if (rc != 0) {
		if (n != 0)
			abort();
		return;
	}
	if (n == 0 || n > STS_ID_MAX)
		abort();
	for (i = 0; i < n; i++)
		if (!((id[i] >= 'a' && id[i] <= 'z') ||
			(id[i] >= 'A' && id[i] <= 'Z') ||
			(id[i] >= '0' && id[i] <= '9')))
			abort();
}

static void
check_pick(const uint8_t *data, size_t size)
{
	struct sts_txt_rec recs[8];
	size_t n = 0, start = 0, i;
	char id[STS_ID_MAX + 1], id2[STS_ID_MAX + 1];
	enum sts_txt_status st;

	for (i = 0; i <= size && n < 8; i++) {
		if (i < size && data[i] != '\0')
			continue;
		recs[n].s = (const char *)data + start;
		recs[n].len = i - start;
		n++;
		start = i + 1;
	}
	st = sts_txt_pick(recs, n, id);
	if (st > STS_TXT_INVALID || (st != STS_TXT_OK && id[0] != '\0'))
		abort();
	if (st == STS_TXT_OK) {
		for (i = 0; i < n; i++)
			if (recs[i].len >= 7 &&
			    memcmp(recs[i].s, "v=STSv1", 7) == 0 &&
			    sts_txt_parse(recs[i].s, recs[i].len, id2) == 0)
				break;
		if (i == n || strcmp(id, id2) != 0)
			abort();
	}
}

static void
check_cache(const uint8_t *data, size_t size)
{
	static struct sts_policy p, p2;
	struct sts_cache_rec r, r2;
	char err[256];
	struct buf b;

	if (sts_cache_decode((const char *)data, size, &r, &p, err,
		sizeof(err)) != STS_CACHE_OK) {
		if (err[0] == '\0')
			abort();
		return;
	}
	check_policy(&p);
	buf_init(&b, STS_CACHE_MAX);
	if (sts_cache_encode(&r, &b) != 0 ||
	    sts_cache_decode(b.data, b.len, &r2, &p2, err, sizeof(err)) !=
		STS_CACHE_OK ||
	    strcmp(r.domain, r2.domain) != 0 || strcmp(r.id, r2.id) != 0 ||
	    r.fetched != r2.fetched || r.expires != r2.expires ||
	    r.len != r2.len || memcmp(r.text, r2.text, r.len) != 0 ||
	    p.mode != p2.mode || p.nmx != p2.nmx)
		abort();
	buf_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sts_policy p;
	char err[256], id[STS_ID_MAX + 1];
	int rc;

	if (size > STS_POLICY_MAX + 16)
		return 0;
	rc = sts_policy_parse((const char *)data, size, &p, err, sizeof(err));
	if (rc == 0)
		check_policy(&p);
	else if (err[0] == '\0')
		abort();
	rc = sts_txt_parse((const char *)data, size, id);
	check_id(rc, id);
	check_pick(data, size);
	check_cache(data, size);
	return 0;
}
