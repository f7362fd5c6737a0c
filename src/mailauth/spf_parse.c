/*
 * spf_parse.c: the pure pieces of SPF (RFC 7208): IP address text, the
 * record syntax of section 12, and macro expansion (section 7).
 *
 * Invariants: every input is (pointer, length) and may hold any octet;
 * nothing reads past its length; expansion output is bounded by
 * SPF_EXPAND_WINDOW however often a long macro repeats.
 */
#include <stdlib.h>
#include <string.h>

#include "mailauth/spf_int.h"

/* ---- addresses --------------------------------------------------------- */

static bool
ip4_parse(const char *s, size_t len, uint8_t out[4])
{
	size_t i = 0;
	int part;

	for (part = 0; part < 4; part++) {
		unsigned v = 0, nd = 0;

		if (part > 0) {
			if (i >= len || s[i] != '.')
				return false;
			i++;
		}
		while (i < len && s[i] >= '0' && s[i] <= '9' && nd < 4) {
			v = v * 10 + (unsigned)(s[i] - '0');
			nd++;
			i++;
		}
		/* qnum of RFC 7208 12: no leading zero, at most 255 */
		if (nd == 0 || nd > 3 || v > 255 ||
		    (nd > 1 && s[i - nd] == '0'))
			return false;
		out[part] = (uint8_t)v;
	}
	return i == len;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* RFC 4291 2.2 text forms, including a trailing dotted quad */
static bool
ip6_parse(const char *s, size_t len, uint8_t out[16])
{
	uint8_t w[16];
	size_t i = 0, n = 0;
	int gap = -1;

	if (len >= 2 && s[0] == ':' && s[1] == ':') {
		gap = 0;
		i = 2;
	} else if (len >= 1 && s[0] == ':')
		return false;
	while (i < len) {
		size_t st = i;
		unsigned v = 0;

		while (i < len && hexval(s[i]) >= 0 && i - st < 4)
			v = v * 16 + (unsigned)hexval(s[i++]);
		if (i < len && s[i] == '.') {
			if (n > 12 || !ip4_parse(s + st, len - st, w + n))
				return false;
			n += 4;
			i = len;
			break;
		}
		if (i == st || n > 14)
			return false;
		w[n++] = (uint8_t)(v >> 8);
		w[n++] = (uint8_t)v;
		if (i == len)
			break;
		if (s[i] != ':')
			return false;
		i++;
		if (i < len && s[i] == ':') {
			if (gap >= 0)
				return false;
			gap = (int)n;
			i++;
		} else if (i == len)
			return false;
	}
	if (gap < 0 && n != 16)
		return false;
	if (gap >= 0 && n > 14)
		return false;
	memset(out, 0, 16);
	if (gap < 0) {
		memcpy(out, w, 16);
		return true;
	}
	memcpy(out, w, (size_t)gap);
	memcpy(out + 16 - (n - (size_t)gap), w + gap, n - (size_t)gap);
	return true;
}

int
spf_ip_parse(const char *s, size_t len, struct spf_ip *ip)
{
	memset(ip, 0, sizeof(*ip));
	if (memchr(s, ':', len) != NULL) {
		ip->v6 = true;
		return ip6_parse(s, len, ip->addr) ? 0 : -1;
	}
	return ip4_parse(s, len, ip->addr) ? 0 : -1;
}

bool
spf_ip_match(const struct spf_ip *ip, const uint8_t *net, unsigned bits)
{
	unsigned full = bits / 8, rest = bits % 8;

	if (memcmp(ip->addr, net, full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((ip->addr[full] ^ net[full]) & (0xff00u >> rest)) == 0;
}

/* ---- record syntax ----------------------------------------------------- */

static bool
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * One macro-expand or literal at in[*i]: the letter (0 for a literal
 * octet or %%, %_, %-), its transformers and delimiters.  false on a
 * syntax error (RFC 7208 7.1: "%" followed by anything else).
 */
bool
spf_macro_next(const char *in, size_t len, size_t *i, struct spf_macro *m)
{
	size_t k = *i;

	memset(m, 0, sizeof(*m));
	if ((unsigned char)in[k] < 0x21 || (unsigned char)in[k] > 0x7e)
		return false;
	if (in[k] != '%') {
		m->lit = in[k];
		*i = k + 1;
		return true;
	}
	if (k + 1 >= len)
		return false;
	switch (in[k + 1]) {
	case '%':
		m->lit = '%';
		*i = k + 2;
		return true;
	case '_':
		m->lit = ' ';
		*i = k + 2;
		return true;
	case '-':
		m->lit = '-';
		m->space20 = true;
		*i = k + 2;
		return true;
	case '{':
		break;
	default:
		return false;
	}
	k += 2;
	if (k >= len || strchr("slodipvhcrtSLODIPVHCRT", in[k]) == NULL ||
	    in[k] == '\0')
		return false;
	m->letter = in[k++];
	while (k < len && is_digit(in[k])) {
		if (m->digits < 1000000)
			m->digits = m->digits * 10 + (unsigned)(in[k] - '0');
		m->has_digits = true;
		k++;
	}
	/* RFC 7208 7.3: a DIGIT transformer must be nonzero */
	if (m->has_digits && m->digits == 0)
		return false;
	if (k < len && (in[k] == 'r' || in[k] == 'R')) {
		m->reverse = true;
		k++;
	}
	while (k < len && in[k] != '}') {
		if (strchr(".-+,/_=", in[k]) == NULL || in[k] == '\0')
			return false;
		if (m->ndelim < sizeof(m->delims) - 1)
			m->delims[m->ndelim++] = in[k];
		k++;
	}
	if (k >= len)
		return false;
	*i = k + 1;
	return true;
}

static bool
exp_only(char letter)
{
	return strchr("crtCRT", letter) != NULL;
}

/* macro-string: every macro well formed, c/r/t only where exp is true */
bool
spf_macro_string_ok(const char *in, size_t len, bool exp)
{
	size_t i = 0;
	struct spf_macro m;

	while (i < len) {
		if (!spf_macro_next(in, len, &i, &m))
			return false;
		if (m.letter != 0 && !exp && exp_only(m.letter))
			return false;
	}
	return true;
}

/* toplabel of RFC 7208 12 */
static bool
toplabel_ok(const char *s, size_t len)
{
	size_t k;
	bool alpha = false, hyphen = false;

	if (len == 0 || s[0] == '-' || s[len - 1] == '-')
		return false;
	for (k = 0; k < len; k++) {
		if (s[k] == '-')
			hyphen = true;
		else if (is_alpha(s[k]))
			alpha = true;
		else if (!is_digit(s[k]))
			return false;
	}
	return alpha || hyphen;
}

/* domain-spec = macro-string domain-end (RFC 7208 12) */
bool
spf_domain_spec_ok(const char *in, size_t len)
{
	size_t i = 0, last = 0, end = len, k;
	struct spf_macro m;

	if (len == 0 || !spf_macro_string_ok(in, len, false))
		return false;
	/* a macro-expand at the very end is a domain-end */
	while (i < len) {
		last = i;
		(void)spf_macro_next(in, len, &i, &m);
	}
	if (in[last] == '%')
		return true;
	if (end > 0 && in[end - 1] == '.')
		end--;
	for (k = end; k > 0 && in[k - 1] != '.'; k--)
		;
	if (k == 0)
		return false;
	return toplabel_ok(in + k, end - k);
}

static const struct {
	const char *name;
	enum spf_kind kind;
} mech_names[] = {
    {"all", SPF_M_ALL},
    {"include", SPF_M_INCLUDE},
    {"a", SPF_M_A},
    {"mx", SPF_M_MX},
    {"ptr", SPF_M_PTR},
    {"ip4", SPF_M_IP4},
    {"ip6", SPF_M_IP6},
    {"exists", SPF_M_EXISTS},
};

/* "/" cidr at the end of s[0..*len), max bits; strips it.  -1 bad, 0 none */
static int
cidr_tail(const char *s, size_t *len, unsigned max, int *out)
{
	size_t k = *len, nd;
	unsigned v = 0;
	size_t j;

	while (k > 0 && is_digit(s[k - 1]))
		k--;
	nd = *len - k;
	if (nd == 0 || k == 0 || s[k - 1] != '/')
		return 0;
	if (nd > 3 || (nd > 1 && s[k] == '0'))
		return -1;
	for (j = k; j < *len; j++)
		v = v * 10 + (unsigned)(s[j] - '0');
	if (v > max)
		return -1;
	*out = (int)v;
	*len = k - 1;
	return 1;
}

/* dual-cidr-length: [ "/" ip4 ] [ "//" ip6 ] */
static bool
dual_cidr(const char *s, size_t *len, int *c4, int *c6)
{
	size_t l = *len;
	int r;

	r = cidr_tail(s, &l, 128, c6);
	if (r < 0)
		return false;
	if (r == 1 && l > 0 && s[l - 1] == '/') {
		l--;
		if (cidr_tail(s, &l, 32, c4) < 0)
			return false;
	} else if (r == 1) {
		/* a single "/N" is the IPv4 length */
		*c6 = -1;
		l = *len;
		if (cidr_tail(s, &l, 32, c4) != 1)
			return false;
	}
	*len = l;
	return true;
}

static bool
term_mech_args(struct spf_term *t, const char *a, size_t alen)
{
	bool need_spec = t->kind == SPF_M_INCLUDE || t->kind == SPF_M_EXISTS;
	bool cidr = t->kind == SPF_M_A || t->kind == SPF_M_MX;

	if (t->kind == SPF_M_ALL)
		return alen == 0;
	if (t->kind == SPF_M_IP4 || t->kind == SPF_M_IP6) {
		unsigned max = t->kind == SPF_M_IP4 ? 32 : 128;

		if (alen < 2 || a[0] != ':')
			return false;
		a++, alen--;
		if (cidr_tail(a, &alen, max, &t->c4) < 0)
			return false;
		if (spf_ip_parse(a, alen, &t->net) != 0 ||
		    t->net.v6 != (t->kind == SPF_M_IP6))
			return false;
		return true;
	}
	if (cidr && !dual_cidr(a, &alen, &t->c4, &t->c6))
		return false;
	if (alen == 0)
		return !need_spec;
	if (a[0] != ':')
		return false;
	t->spec = a + 1;
	t->spec_len = alen - 1;
	return spf_domain_spec_ok(t->spec, t->spec_len);
}

/* a modifier, name = s[0..k), the value after "=" (RFC 7208 6, 12) */
static int
term_modifier(struct spf_term *t, const char *s, size_t len, size_t k,
    char *err, size_t errlen)
{
	t->spec = s + k + 1;
	t->spec_len = len - k - 1;
	if (k == 8 && str_case_eq(s, k, "redirect"))
		t->kind = SPF_MOD_REDIRECT;
	else if (k == 3 && str_case_eq(s, k, "exp"))
		t->kind = SPF_MOD_EXP;
	else {
		/* unknown: ignored, but its macro-string must be valid */
		t->kind = SPF_MOD_UNKNOWN;
		if (spf_macro_string_ok(t->spec, t->spec_len, false))
			return 0;
		str_fmt_cut(err, errlen, "bad modifier");
		return -1;
	}
	if (spf_domain_spec_ok(t->spec, t->spec_len))
		return 0;
	str_fmt_cut(err, errlen, "bad domain-spec");
	return -1;
}

static int
term_parse(
    struct spf_term *t, const char *s, size_t len, char *err, size_t errlen)
{
	size_t k = 0, n, i;

	memset(t, 0, sizeof(*t));
	t->text = s;
	t->text_len = len;
	t->c4 = t->c6 = -1;
	t->qual = '+';
	/* modifier: name "=" ... (name = ALPHA *(ALPHA/DIGIT/-/_/.)) */
	if (is_alpha(s[0])) {
		for (k = 1;
		     k < len && (is_alpha(s[k]) || is_digit(s[k]) ||
				    s[k] == '-' || s[k] == '_' || s[k] == '.');
		     k++)
			;
		if (k < len && s[k] == '=')
			return term_modifier(t, s, len, k, err, errlen);
	}
	k = 0;
	if (s[0] == '+' || s[0] == '-' || s[0] == '~' || s[0] == '?')
		t->qual = s[k++];
	for (n = k; n < len && s[n] != ':' && s[n] != '/'; n++)
		;
	for (i = 0; i < sizeof(mech_names) / sizeof(mech_names[0]); i++) {
		if (strlen(mech_names[i].name) == n - k &&
		    str_case_eq(s + k, n - k, mech_names[i].name))
			break;
	}
	if (i == sizeof(mech_names) / sizeof(mech_names[0])) {
		str_fmt_cut(err, errlen, "unknown mechanism");
		return -1;
	}
	t->kind = mech_names[i].kind;
	if (!term_mech_args(t, s + n, len - n)) {
		str_fmt_cut(err, errlen, "bad %s", mech_names[i].name);
		return -1;
	}
	return 0;
}

int
spf_record_parse(
    const char *rec, size_t len, struct spf_parsed *p, char *err, size_t errlen)
{
	size_t i = 6, st;

	memset(p, 0, sizeof(*p));
	if (len > SPF_RECORD_MAX) {
		str_fmt_cut(err, errlen, "record too long");
		return -1;
	}
	if (len < 6 || !str_case_eq(rec, 6, "v=spf1") ||
	    (len > 6 && rec[6] != ' ')) {
		str_fmt_cut(err, errlen, "not an SPF record");
		return -1;
	}
	/* a record is ASCII text (RFC 7208 3, 12): a NUL or a control octet
	   from DNS must not pass for a separator or a qualifier */
	for (st = 0; st < len; st++) {
		if ((unsigned char)rec[st] < 0x20 ||
		    (unsigned char)rec[st] > 0x7e) {
			str_fmt_cut(err, errlen, "not ASCII text");
			return -1;
		}
	}
	for (;;) {
		struct spf_term t;

		while (i < len && rec[i] == ' ')
			i++;
		if (i == len)
			return 0;
		st = i;
		while (i < len && rec[i] != ' ')
			i++;
		if (term_parse(&t, rec + st, i - st, err, errlen) != 0)
			return -1;
		if (t.kind == SPF_MOD_REDIRECT || t.kind == SPF_MOD_EXP) {
			const struct spf_term **slot =
			    t.kind == SPF_MOD_REDIRECT ? &p->redirect : &p->exp;
			/* RFC 7208 6: each at most once */
			if (*slot != NULL) {
				str_fmt_cut(err, errlen, "duplicate %s",
				    t.kind == SPF_MOD_EXP ? "exp" : "redirect");
				return -1;
			}
		}
		if (t.kind == SPF_MOD_UNKNOWN)
			continue;
		if (p->n == SPF_TERMS_MAX) {
			str_fmt_cut(err, errlen, "too many terms");
			return -1;
		}
		p->terms[p->n] = t;
		if (t.kind == SPF_MOD_REDIRECT)
			p->redirect = &p->terms[p->n];
		else if (t.kind == SPF_MOD_EXP)
			p->exp = &p->terms[p->n];
		p->n++;
	}
}

int
spf_record_check(const char *rec, size_t len, char *err, size_t errlen)
{
	struct spf_parsed *p = xmalloc(sizeof(*p));
	int r = spf_record_parse(rec, len, p, err, errlen);

	free(p);
	return r;
}

bool
spf_is_record(const char *rec, size_t len)
{
	return len >= 6 && str_case_eq(rec, 6, "v=spf1") &&
	       (len == 6 || rec[6] == ' ');
}

/* ---- macro expansion --------------------------------------------------- */

/*
 * The output of one expansion.  A domain keeps only its last
 * SPF_EXPAND_WINDOW octets (the left is cut by 7.3 anyway and the window
 * is far over 253); text keeps its first ones.
 */
struct sink {
	char b[SPF_EXPAND_WINDOW * 2];
	size_t len;
	bool tail;
};

static void
sink_put(struct sink *k, const char *p, size_t n)
{
	while (n > 0) {
		size_t room = sizeof(k->b) - k->len, take = n < room ? n : room;

		if (room == 0) {
			if (!k->tail)
				return;
			memmove(k->b, k->b + SPF_EXPAND_WINDOW,
			    sizeof(k->b) - SPF_EXPAND_WINDOW);
			k->len -= SPF_EXPAND_WINDOW;
			continue;
		}
		memcpy(k->b + k->len, p, take);
		k->len += take;
		p += take;
		n -= take;
	}
}

static void
sink_put_escaped(struct sink *k, const char *p, size_t n, bool url)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i;

	if (!url) {
		sink_put(k, p, n);
		return;
	}
	/* RFC 7208 7.3: uppercase macros are URL-escaped (RFC 3986 2.3) */
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		char e[3] = {'%', hex[c >> 4], hex[c & 15]};

		if (is_alpha((char)c) || is_digit((char)c) || c == '-' ||
		    c == '.' || c == '_' || c == '~')
			sink_put(k, p + i, 1);
		else
			sink_put(k, e, 3);
	}
}

static bool
is_delim(const struct spf_macro *m, char c)
{
	const char *delims = m->ndelim ? m->delims : ".";

	return c != '\0' && strchr(delims, c) != NULL;
}

/*
 * The value split on the delimiters, optionally reversed, its rightmost
 * parts (RFC 7208 7.3), joined with ".".  Linear in the value: a long
 * local-part of many parts must not cost its square.
 */
static void
transform(struct sink *k, const char *v, size_t vlen, const struct spf_macro *m,
    bool url)
{
	size_t nparts = 1, i, want, *st, pos;

	for (i = 0; i < vlen; i++)
		nparts += is_delim(m, v[i]);
	st = xmalloc((nparts + 1) * sizeof(*st));
	st[0] = 0;
	for (i = 0, pos = 1; i < vlen; i++)
		if (is_delim(m, v[i]))
			st[pos++] = i + 1;
	st[nparts] = vlen + 1; /* one past the last part's delimiter slot */
	want = m->has_digits && m->digits < nparts ? m->digits : nparts;
	for (i = 0; i < want; i++) {
		/* the i-th of the last `want` parts of the (reversed) list */
		size_t idx = nparts - want + i;
		size_t part = m->reverse ? nparts - 1 - idx : idx;

		if (i > 0)
			sink_put(k, ".", 1);
		sink_put_escaped(
		    k, v + st[part], st[part + 1] - 1 - st[part], url);
	}
	free(st);
}

static size_t
fmt_dec(char *out, uint64_t v)
{
	char tmp[24];
	size_t n = 0, k;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	for (k = 0; k < n; k++)
		out[k] = tmp[n - 1 - k];
	return n;
}

/* %{i}: dotted quad, or the 32 nibbles of RFC 7208 7.3 */
static size_t
fmt_ip_dotted(char *out, const struct spf_ip *ip)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0, k;

	if (!ip->v6) {
		for (k = 0; k < 4; k++) {
			if (k > 0)
				out[n++] = '.';
			n += fmt_dec(out + n, ip->addr[k]);
		}
		return n;
	}
	for (k = 0; k < 16; k++) {
		if (k > 0)
			out[n++] = '.';
		out[n++] = hex[ip->addr[k] >> 4];
		out[n++] = '.';
		out[n++] = hex[ip->addr[k] & 15];
	}
	return n;
}

/* %{c}: dotted quad, or RFC 5952 text */
size_t
spf_ip_text(char *out, const struct spf_ip *ip)
{
	static const char hex[] = "0123456789abcdef";
	int best = -1, bestlen = 1, run = 0, g;
	size_t n = 0;

	if (!ip->v6)
		return fmt_ip_dotted(out, ip);
	for (g = 0; g < 8; g++) {
		run = (ip->addr[2 * g] | ip->addr[2 * g + 1]) ? 0 : run + 1;
		if (run > bestlen) {
			bestlen = run;
			best = g - run + 1;
		}
	}
	for (g = 0; g < 8; g++) {
		unsigned v =
		    (unsigned)ip->addr[2 * g] << 8 | ip->addr[2 * g + 1];
		int sh;
		bool lead = true;

		if (g == best) {
			out[n++] = ':';
			if (g == 0)
				out[n++] = ':';
			g += bestlen - 1;
			continue;
		}
		for (sh = 12; sh >= 0; sh -= 4) {
			unsigned d = (v >> sh) & 15;

			if (d == 0 && lead && sh > 0)
				continue;
			lead = false;
			out[n++] = hex[d];
		}
		if (g < 7)
			out[n++] = ':';
	}
	return n;
}

/* the value of a macro letter; buf holds numbers and addresses */
static void
macro_value(const struct spf_request *req, const char *d, const char *p,
    char letter, char *buf, const char **v, size_t *vlen)
{
	const char *at = strrchr(req->sender, '@');

	*v = buf;
	switch (letter | 0x20) {
	case 's':
		*v = req->sender;
		break;
	case 'l':
		if (at == NULL || at == req->sender) {
			*v = "postmaster";
			break;
		}
		*vlen = (size_t)(at - req->sender);
		*v = req->sender;
		return;
	case 'o':
		*v = at != NULL ? at + 1 : req->sender;
		break;
	case 'd':
		*v = d;
		break;
	case 'i':
		*vlen = fmt_ip_dotted(buf, &req->ip);
		return;
	case 'c':
		*vlen = spf_ip_text(buf, &req->ip);
		return;
	case 'p':
		*v = p != NULL ? p : "unknown";
		break;
	case 'v':
		*v = req->ip.v6 ? "ip6" : "in-addr";
		break;
	case 'h':
		*v = req->helo != NULL ? req->helo : "unknown";
		break;
	case 'r':
		*v = req->receiver != NULL ? req->receiver : "unknown";
		break;
	default: /* 't' */
		*vlen = fmt_dec(buf, req->now < 0 ? 0 : (uint64_t)req->now);
		return;
	}
	*vlen = strlen(*v);
}

/* RFC 7208 7.3 end: drop labels from the left until 253 octets remain */
static void
domain_truncate(const char **s, size_t *len)
{
	if (*len > 0 && (*s)[*len - 1] == '.')
		(*len)--;
	while (*len > SPF_NAME_MAX) {
		const char *dot = memchr(*s, '.', *len);

		if (dot == NULL)
			return;
		*len -= (size_t)(dot + 1 - *s);
		*s = dot + 1;
	}
}

int
spf_expand(const struct spf_request *req, const char *d, const char *p,
    const char *in, size_t len, bool as_domain, bool exp, struct buf *out)
{
	struct sink *k = xmalloc(sizeof(*k));
	struct spf_macro m;
	size_t i = 0;
	int r = 0;

	k->len = 0;
	k->tail = as_domain;
	while (i < len) {
		char nb[80];
		const char *v;
		size_t vlen;

		/* explain-string = *( macro-string / SP ) (RFC 7208 12) */
		if (exp && in[i] == ' ') {
			sink_put(k, " ", 1);
			i++;
			continue;
		}
		if (!spf_macro_next(in, len, &i, &m) ||
		    (m.letter != 0 && !exp && exp_only(m.letter))) {
			r = -1;
			break;
		}
		if (m.letter == 0) {
			sink_put(
			    k, m.space20 ? "%20" : &m.lit, m.space20 ? 3 : 1);
			continue;
		}
		macro_value(req, d, p, m.letter, nb, &v, &vlen);
		transform(k, v, vlen, &m, m.letter >= 'A' && m.letter <= 'Z');
	}
	if (r == 0) {
		const char *s = k->b;
		size_t n = k->len;

		if (as_domain)
			domain_truncate(&s, &n);
		r = buf_append(out, s, n);
	}
	free(k);
	return r;
}
