/*
 * sts: the MTA-STS TXT record, policy and MX match parsers (RFC 8461
 * 3.1, 3.2, 3.4).  See sts.h.
 *
 * Invariants: input is a pointer and a length, never read past len and
 * never assumed NUL-terminated; a NUL anywhere refuses the input (a C
 * string made of it later would say less than the wire did); outputs are
 * written only on success, and err always ends in a NUL.
 */
#include <stdarg.h>
#include <string.h>
#include <strings.h>

#include "util/util.h"
#include "sts/sts.h"

static bool
sts_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

static bool
sts_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* sts-ext-name / sts-policy-ext-name: (ALPHA / DIGIT) *31(ALPHA / DIGIT
 * / "_" / "-" / ".") */
static bool
sts_ext_name_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > 32 || !sts_alnum((unsigned char)s[0]))
		return false;
	for (i = 1; i < n; i++)
		if (!sts_alnum((unsigned char)s[i]) && s[i] != '_' &&
		    s[i] != '-' && s[i] != '.')
			return false;
	return true;
}

/* ======================================================================
 * The TXT record (3.1)
 * ====================================================================== */

/* sts-ext-value: 1*(%x21-3A / %x3C / %x3E-7E) */
static bool
sts_ext_value_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x21 || c > 0x7e || c == ';' || c == '=')
			return false;
	}
	return true;
}

/* One sts-field, s[0..n): "id=..." or an extension. */
static int
sts_txt_field(const char *s, size_t n, char *id, bool *have_id)
{
	const char *eq = memchr(s, '=', n);
	size_t kn, vn, i;

	if (eq == NULL)
		return -1;
	kn = (size_t)(eq - s);
	vn = n - kn - 1;
	if (kn == 2 && memcmp(s, "id", 2) == 0) {
		if (*have_id || vn == 0 || vn > STS_ID_MAX)
			return -1;
		for (i = 0; i < vn; i++)
			if (!sts_alnum((unsigned char)eq[1 + i]))
				return -1;
		memcpy(id, eq + 1, vn);
		id[vn] = '\0';
		*have_id = true;
		return 0;
	}
	return sts_ext_name_ok(s, kn) && sts_ext_value_ok(eq + 1, vn) ? 0 : -1;
}

int
sts_txt_parse(const char *s, size_t len, char id_out[STS_ID_MAX + 1])
{
	char id[STS_ID_MAX + 1];
	bool have_id = false;
	size_t i = 7, start, end;

	id_out[0] = '\0';
	if (len < 7 || memcmp(s, "v=STSv1", 7) != 0)
		return -1;
	/* 1*(sts-field-delim sts-field) [sts-field-delim] */
	while (i < len) {
		while (i < len && sts_wsp(s[i]))
			i++;
		if (i == len || s[i] != ';')
			return -1;
		i++;
		while (i < len && sts_wsp(s[i]))
			i++;
		if (i == len)
			break; /* the final delimiter */
		start = i;
		while (i < len && s[i] != ';' && !sts_wsp(s[i]))
			i++;
		end = i;
		if (sts_txt_field(s + start, end - start, id, &have_id) != 0)
			return -1;
	}
	if (!have_id)
		return -1;
	memcpy(id_out, id, strlen(id) + 1);
	return 0;
}

static bool
sts_txt_is_sts(const struct sts_txt_rec *r)
{
	return r->len >= 7 && memcmp(r->s, "v=STSv1", 7) == 0 &&
	       (r->len == 7 || r->s[7] == ';' || sts_wsp(r->s[7]));
}

enum sts_txt_status
sts_txt_pick(
    const struct sts_txt_rec *recs, size_t n, char id_out[STS_ID_MAX + 1])
{
	const struct sts_txt_rec *one = NULL;
	size_t i;

	id_out[0] = '\0';
	for (i = 0; i < n; i++) {
		if (!sts_txt_is_sts(&recs[i]))
			continue;
		if (one != NULL)
			return STS_TXT_MANY;
		one = &recs[i];
	}
	if (one == NULL)
		return STS_TXT_NONE;
	if (memchr(one->s, '\0', one->len) != NULL ||
	    sts_txt_parse(one->s, one->len, id_out) != 0)
		return STS_TXT_INVALID;
	return STS_TXT_OK;
}

/* ======================================================================
 * The policy (3.2)
 * ====================================================================== */

struct sts_pstate {
	struct sts_policy p;
	bool version, mode, max_age;
	char *err;
	size_t errlen;
};

static int sts_perr(struct sts_pstate *st, const char *fmt, ...)
    PRINTF_LIKE(2, 3);

static int
sts_perr(struct sts_pstate *st, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	str_vfmt_cut(st->err, st->errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* An LDH label: 1..63 of letters, digits, hyphens, no hyphen at an end. */
static bool
sts_label_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (i = 0; i < n; i++)
		if (!sts_alnum((unsigned char)s[i]) && s[i] != '-')
			return false;
	return true;
}

/* RFC 5321 Domain in LDH form (A-labels for IDNs). */
bool
sts_domain_ok(const char *s, size_t n)
{
	size_t i, start = 0;

	if (n == 0 || n > STS_NAME_MAX)
		return false;
	for (i = 0; i <= n; i++) {
		if (i < n && s[i] != '.')
			continue;
		if (!sts_label_ok(s + start, i - start))
			return false;
		start = i + 1;
	}
	return true;
}

/* sts-policy-mx-value = ["*."] Domain */
static int
sts_mx_add(struct sts_pstate *st, const char *v, size_t n)
{
	size_t skip = n >= 2 && v[0] == '*' && v[1] == '.' ? 2 : 0;

	if (!sts_domain_ok(v + skip, n - skip))
		return sts_perr(st, "mx pattern is not [*.]domain");
	if (st->p.nmx == STS_MX_MAX)
		return sts_perr(st, "more than %d mx patterns", STS_MX_MAX);
	memcpy(st->p.mx[st->p.nmx], v, n);
	st->p.mx[st->p.nmx][n] = '\0';
	str_lower(st->p.mx[st->p.nmx]);
	st->p.nmx++;
	return 0;
}

static int
sts_max_age(struct sts_pstate *st, const char *v, size_t n)
{
	uint64_t age = 0;
	size_t i;

	/* 1*10DIGIT */
	if (n == 0 || n > 10)
		return sts_perr(st, "max_age is not 1 to 10 digits");
	for (i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return sts_perr(st, "max_age is not 1 to 10 digits");
		age = age * 10 + (uint64_t)(v[i] - '0');
	}
	st->p.max_age = age > STS_MAX_AGE_MAX ? STS_MAX_AGE_MAX : (uint32_t)age;
	st->max_age = true;
	return 0;
}

static int
sts_mode(struct sts_pstate *st, const char *v, size_t n)
{
	if (n == 7 && memcmp(v, "enforce", 7) == 0)
		st->p.mode = STS_MODE_ENFORCE;
	else if (n == 7 && memcmp(v, "testing", 7) == 0)
		st->p.mode = STS_MODE_TESTING;
	else if (n == 4 && memcmp(v, "none", 4) == 0)
		st->p.mode = STS_MODE_NONE;
	else
		return sts_perr(st, "mode is not enforce, testing or none");
	st->mode = true;
	return 0;
}

static bool
sts_key_is(const char *k, size_t kn, const char *name)
{
	return kn == strlen(name) && memcmp(k, name, kn) == 0;
}

/* One field: key k[0..kn), value v[0..vn) (trimmed). */
static int
sts_field(
    struct sts_pstate *st, const char *k, size_t kn, const char *v, size_t vn)
{
	if (sts_key_is(k, kn, "mx"))
		return sts_mx_add(st, v, vn);
	/* a repeated key keeps its first value */
	if (sts_key_is(k, kn, "version") && !st->version) {
		if (vn != 5 || memcmp(v, "STSv1", 5) != 0)
			return sts_perr(st, "version is not STSv1");
		st->version = true;
		return 0;
	}
	if (sts_key_is(k, kn, "mode") && !st->mode)
		return sts_mode(st, v, vn);
	if (sts_key_is(k, kn, "max_age") && !st->max_age)
		return sts_max_age(st, v, vn);
	return 0; /* an extension, or a repeat */
}

/* One line without its terminator: "key:" *WSP value *WSP. */
static int
sts_line(struct sts_pstate *st, const char *s, size_t n, size_t lineno)
{
	const char *colon = memchr(s, ':', n);
	size_t kn, v, e, i;

	if (colon == NULL || !sts_ext_name_ok(s, (size_t)(colon - s)))
		return sts_perr(
		    st, "line %zu is not a key: value field", lineno);
	kn = (size_t)(colon - s);
	for (v = kn + 1; v < n && sts_wsp(s[v]); v++)
		;
	for (e = n; e > v && sts_wsp(s[e - 1]); e--)
		;
	if (e == v)
		return sts_perr(st, "line %zu has no value", lineno);
	/* sts-policy-vchar (VCHAR) with inner spaces and tabs */
	for (i = v; i < e; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c < 0x21 || c > 0x7e) && !sts_wsp((char)c))
			return sts_perr(st,
			    "line %zu has a control or 8-bit "
			    "octet",
			    lineno);
	}
	return sts_field(st, s, kn, s + v, e - v);
}

static int
sts_policy_done(struct sts_pstate *st)
{
	if (!st->version)
		return sts_perr(st, "no version field");
	if (!st->mode)
		return sts_perr(st, "no mode field");
	if (!st->max_age)
		return sts_perr(st, "no max_age field");
	if (st->p.mode != STS_MODE_NONE && st->p.nmx == 0)
		return sts_perr(st, "no mx field");
	return 0;
}

int
sts_policy_parse(
    const char *s, size_t len, struct sts_policy *out, char *err, size_t errlen)
{
	/* static would not be thread-safe; the struct is ~16 KiB */
	struct sts_pstate st;
	size_t i = 0, lineno = 0;

	memset(&st, 0, sizeof(st));
	st.err = err;
	st.errlen = errlen;
	if (errlen > 0)
		err[0] = '\0';
	if (len > STS_POLICY_MAX)
		return sts_perr(
		    &st, "policy larger than %d octets", STS_POLICY_MAX);
	if (memchr(s, '\0', len) != NULL)
		return sts_perr(&st, "policy holds a NUL octet");
	while (i < len) {
		const char *lf = memchr(s + i, '\n', len - i);
		size_t end = lf != NULL ? (size_t)(lf - s) : len, n;

		n = end - i;
		if (n > 0 && s[i + n - 1] == '\r')
			n--; /* CRLF */
		lineno++;
		if (n > 0 && sts_line(&st, s + i, n, lineno) != 0)
			return -1;
		i = end + (lf != NULL ? 1 : 0);
	}
	if (sts_policy_done(&st) != 0)
		return -1;
	memcpy(out, &st.p, sizeof(*out));
	return 0;
}

/* ======================================================================
 * MX match (3.4)
 * ====================================================================== */

bool
sts_pattern_match(const char *pattern, const char *host)
{
	size_t hn = strlen(host), pn = strlen(pattern);
	const char *dot;

	if (hn > 0 && host[hn - 1] == '.')
		hn--;
	if (pn >= 2 && pattern[0] == '*' && pattern[1] == '.') {
		/* exactly one label in place of the "*" */
		dot = memchr(host, '.', hn);
		if (dot == NULL || dot == host)
			return false;
		hn -= (size_t)(dot + 1 - host);
		host = dot + 1;
		pattern += 2;
		pn -= 2;
	}
	return hn == pn && hn > 0 && strncasecmp(host, pattern, hn) == 0;
}

bool
sts_mx_match(const struct sts_policy *p, const char *host)
{
	size_t i;

	for (i = 0; i < p->nmx; i++)
		if (sts_pattern_match(p->mx[i], host))
			return true;
	return false;
}

const char *
sts_mode_name(enum sts_mode m)
{
	switch (m) {
	case STS_MODE_ENFORCE:
		return "enforce";
	case STS_MODE_TESTING:
		return "testing";
	case STS_MODE_NONE:
	default:
		return "none";
	}
}

/* ======================================================================
 * The cache file
 * ====================================================================== */

static bool
sts_id_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > STS_ID_MAX)
		return false;
	for (i = 0; i < n; i++)
		if (!sts_alnum((unsigned char)s[i]))
			return false;
	return true;
}

int
sts_cache_encode(const struct sts_cache_rec *r, struct buf *out)
{
	if (!sts_domain_ok(r->domain, strlen(r->domain)) ||
	    !sts_id_ok(r->id, strlen(r->id)) || r->len > STS_POLICY_MAX)
		return -1;
	if (buf_printf(out,
		"%s %d\ndomain %s\nid %s\nfetched %lld\nexpires %lld\n\n",
		STS_CACHE_MAGIC, STS_CACHE_VERSION, r->domain, r->id,
		(long long)r->fetched, (long long)r->expires) != 0 ||
	    buf_append(out, r->text, r->len) != 0)
		return -1;
	return 0;
}

/* The next header line "key value"; the value's view in *v, *vn. */
static int
sts_cache_line(const char *s, size_t len, size_t *pos, const char *key,
    const char **v, size_t *vn)
{
	size_t kn = strlen(key), i = *pos;
	const char *lf;

	if (len - i < kn + 1 || memcmp(s + i, key, kn) != 0 || s[i + kn] != ' ')
		return -1;
	i += kn + 1;
	if ((lf = memchr(s + i, '\n', len - i)) == NULL)
		return -1;
	*v = s + i;
	*vn = (size_t)(lf - (s + i));
	*pos = (size_t)(lf - s) + 1;
	return 0;
}

static int
sts_cache_num(const char *v, size_t n, int64_t *out)
{
	uint64_t x;

	/* str_to_u64 takes digits only; 18 of them stay in int64_t */
	if (n == 0 || n > 18 || str_to_u64(v, n, &x) != 0)
		return -1;
	*out = (int64_t)x;
	return 0;
}

/* The first line: the magic and a version. */
static enum sts_cache_status
sts_cache_version(
    const char *s, size_t len, size_t *pos, char *err, size_t errlen)
{
	const char *v;
	size_t vn;
	int64_t ver;

	if (sts_cache_line(s, len, pos, STS_CACHE_MAGIC, &v, &vn) != 0 ||
	    sts_cache_num(v, vn, &ver) != 0) {
		str_fmt_cut(err, errlen, "not an MTA-STS cache file");
		return STS_CACHE_BAD;
	}
	if (ver > STS_CACHE_VERSION) {
		str_fmt_cut(err, errlen,
		    "format version %lld is newer than this tern's (%d)",
		    (long long)ver, STS_CACHE_VERSION);
		return STS_CACHE_NEWER;
	}
	if (ver != STS_CACHE_VERSION) {
		str_fmt_cut(
		    err, errlen, "unknown format version %lld", (long long)ver);
		return STS_CACHE_BAD;
	}
	return STS_CACHE_OK;
}

enum sts_cache_status
sts_cache_decode(const char *s, size_t len, struct sts_cache_rec *out,
    struct sts_policy *pol, char *err, size_t errlen)
{
	struct sts_cache_rec r;
	const char *v;
	size_t vn, pos = 0;
	enum sts_cache_status st;
	char perr[160];

	if (errlen > 0)
		err[0] = '\0';
	if (len > STS_CACHE_MAX || memchr(s, '\0', len) != NULL) {
		str_fmt_cut(err, errlen, "too large, or holds a NUL");
		return STS_CACHE_BAD;
	}
	if ((st = sts_cache_version(s, len, &pos, err, errlen)) != STS_CACHE_OK)
		return st;
	memset(&r, 0, sizeof(r));
	if (sts_cache_line(s, len, &pos, "domain", &v, &vn) != 0 ||
	    !sts_domain_ok(v, vn) ||
	    str_copy(r.domain, sizeof(r.domain), v, vn) != 0 ||
	    sts_cache_line(s, len, &pos, "id", &v, &vn) != 0 ||
	    !sts_id_ok(v, vn) || str_copy(r.id, sizeof(r.id), v, vn) != 0 ||
	    sts_cache_line(s, len, &pos, "fetched", &v, &vn) != 0 ||
	    sts_cache_num(v, vn, &r.fetched) != 0 ||
	    sts_cache_line(s, len, &pos, "expires", &v, &vn) != 0 ||
	    sts_cache_num(v, vn, &r.expires) != 0 || pos >= len ||
	    s[pos] != '\n') {
		str_fmt_cut(err, errlen, "malformed header");
		return STS_CACHE_BAD;
	}
	str_lower(r.domain);
	r.text = s + pos + 1;
	r.len = len - pos - 1;
	if (sts_policy_parse(r.text, r.len, pol, perr, sizeof(perr)) != 0) {
		str_fmt_cut(err, errlen, "policy: %s", perr);
		return STS_CACHE_BAD;
	}
	*out = r;
	return STS_CACHE_OK;
}
