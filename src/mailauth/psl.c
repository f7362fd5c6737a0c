/*
 * psl: the Public Suffix List as an open-addressing hash set of suffixes.
 *
 * Each key is a rule's name without its "*." or "!" (lower-cased), with a
 * flag per kind of rule and section: "ck" carries WILD (from "*.ck"),
 * "www.ck" carries EXC.  A lookup walks the suffixes of the name from the
 * longest down and asks the set about each, so its cost is one hash probe
 * per label, never a scan of the list.
 *
 * Invariants: keys are stored once (flags are or-ed together); the table
 * is at most half full, so every probe ends at an empty slot; keys live in
 * one arena and slots hold offsets, so the arena may grow while parsing.
 */
#include "mailauth/psl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* rule kinds, for the ICANN section; the PRIVATE section's are << 3 */
#define F_RULE	   0x01
#define F_WILD	   0x02
#define F_EXC	   0x04
#define F_PRIVATE  3 /* shift */
#define F_ALL_MASK 0x3f

struct psl_slot {
	uint32_t off;  /* into arena */
	uint8_t len;   /* 0: empty slot */
	uint8_t flags; /* F_* of both sections */
};

struct psl {
	struct buf arena;
	struct psl_slot *slots;
	size_t mask; /* slots - 1, a power of two minus one */
	size_t keys;
	size_t rules;
};

static char
pl_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static uint32_t
pl_hash(const char *s, size_t n)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= (uint8_t)s[i];
		h *= 16777619u;
	}
	return h;
}

/* The slot holding key s[0..n), or the empty slot where it would go. */
static struct psl_slot *
pl_find(const struct psl *p, const char *s, size_t n)
{
	size_t i = pl_hash(s, n) & p->mask;

	for (;; i = (i + 1) & p->mask) {
		struct psl_slot *sl = &p->slots[i];

		if (sl->len == 0)
			return sl;
		if (sl->len == n && memcmp(p->arena.data + sl->off, s, n) == 0)
			return sl;
	}
}

static unsigned
pl_flags(const struct psl *p, const char *s, size_t n, unsigned flags)
{
	const struct psl_slot *sl;
	unsigned f;

	if (n == 0 || n > PSL_NAME_MAX)
		return 0;
	sl = pl_find(p, s, n);
	if (sl->len == 0)
		return 0;
	f = sl->flags;
	if (flags & PSL_ICANN_ONLY)
		f &= (1u << F_PRIVATE) - 1;
	return (f | f >> F_PRIVATE) & (F_RULE | F_WILD | F_EXC);
}

/* ---- Punycode (RFC 3492) ---------------------------------------------- */

/* Decode one UTF-8 sequence at s[*i]; -1 on a bad one. */
static int32_t
pl_utf8(const unsigned char *s, size_t len, size_t *i)
{
	unsigned char c = s[*i];
	uint32_t cp, min;
	size_t n, k;

	if (c < 0x80) {
		(*i)++;
		return c;
	}
	if (c >= 0xc2 && c <= 0xdf)
		n = 1, cp = c & 0x1f, min = 0x80;
	else if (c >= 0xe0 && c <= 0xef)
		n = 2, cp = c & 0x0f, min = 0x800;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 3, cp = c & 0x07, min = 0x10000;
	else
		return -1;
	if (len - *i <= n)
		return -1;
	for (k = 1; k <= n; k++) {
		if ((s[*i + k] & 0xc0) != 0x80)
			return -1;
		cp = cp << 6 | (s[*i + k] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	*i += n + 1;
	return (int32_t)cp;
}

static uint32_t
pl_adapt(uint32_t delta, uint32_t points, bool first)
{
	uint32_t k = 0;

	delta = first ? delta / 700 : delta / 2;
	delta += delta / points;
	while (delta > ((36 - 1) * 26) / 2) {
		delta /= 36 - 1;
		k += 36;
	}
	return k + (36 * delta) / (delta + 38);
}

static int
pl_put(char *out, size_t outlen, size_t *o, char c)
{
	if (*o + 1 >= outlen)
		return -1;
	out[(*o)++] = c;
	return 0;
}

static char
pl_digit(uint32_t d)
{
	return (char)(d < 26 ? 'a' + d : '0' + (d - 26));
}

/* The variable-length integer q with bias (RFC 3492 6.3). */
static int
pl_put_int(char *out, size_t outlen, size_t *o, uint32_t q, uint32_t bias)
{
	uint32_t k, t;

	for (k = 36;; k += 36) {
		t = k <= bias ? 1 : k >= bias + 26 ? 26 : k - bias;
		if (q < t)
			break;
		if (pl_put(out, outlen, o, pl_digit(t + (q - t) % (36 - t))))
			return -1;
		q = (q - t) / (36 - t);
	}
	return pl_put(out, outlen, o, pl_digit(q));
}

static int
pl_encode(const uint32_t *cp, size_t ncp, char *out, size_t outlen, size_t *o)
{
	uint32_t n = 128, delta = 0, bias = 72, h, b = 0, m;
	size_t j;

	for (j = 0; j < ncp; j++) {
		if (cp[j] >= 0x80)
			continue;
		if (pl_put(out, outlen, o, (char)cp[j]))
			return -1;
		b++;
	}
	if (b > 0 && pl_put(out, outlen, o, '-'))
		return -1;
	for (h = b; h < ncp; delta++, n++) {
		for (m = UINT32_MAX, j = 0; j < ncp; j++)
			if (cp[j] >= n && cp[j] < m)
				m = cp[j];
		/* ncp <= 63 and code points < 2^21: no overflow */
		delta += (m - n) * (h + 1);
		n = m;
		for (j = 0; j < ncp; j++) {
			if (cp[j] < n)
				delta++;
			if (cp[j] != n)
				continue;
			if (pl_put_int(out, outlen, o, delta, bias))
				return -1;
			bias = pl_adapt(delta, h + 1, h == b);
			delta = 0;
			h++;
		}
	}
	return 0;
}

int
psl_label_to_alabel(const char *label, size_t len, char *out, size_t outlen)
{
	const unsigned char *s = (const unsigned char *)label;
	uint32_t cp[PSL_LABEL_MAX];
	size_t i = 0, ncp = 0, o = 0;
	bool ascii = true;

	if (outlen == 0)
		return -1;
	while (i < len) {
		int32_t c = pl_utf8(s, len, &i);

		if (c <= 0x20 || c == 0x7f || ncp == PSL_LABEL_MAX)
			return -1;
		if (c >= 0x80)
			ascii = false;
		cp[ncp++] = (uint32_t)(c < 0x80 ? (uint8_t)pl_lower((char)c)
						: (uint32_t)c);
	}
	if (!ascii) {
		for (i = 0; i < 4; i++)
			if (pl_put(out, outlen, &o, "xn--"[i]))
				return -1;
		if (pl_encode(cp, ncp, out, outlen, &o))
			return -1;
	} else {
		for (i = 0; i < ncp; i++)
			if (pl_put(out, outlen, &o, (char)cp[i]))
				return -1;
	}
	out[o] = '\0';
	return (int)o;
}

/* ---- names ------------------------------------------------------------- */

/*
 * Copy name lower-cased without its trailing dot into out (PSL_NAME_MAX + 1)
 * and note where each label starts.  Returns the number of labels, or -1.
 */
static int
pl_norm(const char *name, size_t len, char *out, size_t *starts)
{
	size_t i, lab = 0, nl = 0;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > PSL_NAME_MAX)
		return -1;
	for (i = 0; i <= len; i++) {
		unsigned char c = i < len ? (unsigned char)name[i] : '.';

		if (c == '.') {
			if (i == lab || i - lab > PSL_LABEL_MAX)
				return -1;
			starts[nl++] = lab;
			lab = i + 1;
			if (i < len)
				out[i] = '.';
			continue;
		}
		if (c <= 0x20 || c == 0x7f)
			return -1;
		out[i] = pl_lower((char)c);
	}
	out[len] = '\0';
	return (int)nl;
}

/* ---- building ---------------------------------------------------------- */

static int
pl_add(struct psl *p, const char *s, size_t n, unsigned flag)
{
	struct psl_slot *sl = pl_find(p, s, n);

	if (sl->len != 0) {
		sl->flags |= (uint8_t)flag;
		return 0;
	}
	if (p->keys + 1 > (p->mask + 1) / 2 || p->arena.len > UINT32_MAX)
		return -1;
	sl->off = (uint32_t)p->arena.len;
	if (buf_append(&p->arena, s, n) != 0)
		return -1;
	sl->len = (uint8_t)n;
	sl->flags = (uint8_t)flag;
	p->keys++;
	return 0;
}

/*
 * The A-label form of a normalised name with UTF-8 labels, into out
 * (PSL_NAME_MAX + 1).  Returns its length or -1.
 */
static int
pl_alabels(const char *s, size_t n, char *out)
{
	size_t i = 0, o = 0;

	while (i < n) {
		const char *dot = memchr(s + i, '.', n - i);
		size_t ll = dot ? (size_t)(dot - (s + i)) : n - i;
		char lab[PSL_LABEL_MAX + 1];
		int w = psl_label_to_alabel(s + i, ll, lab, sizeof(lab));

		if (w < 0 || o + (size_t)w + (dot ? 1 : 0) > PSL_NAME_MAX)
			return -1;
		memcpy(out + o, lab, (size_t)w);
		o += (size_t)w;
		if (dot)
			out[o++] = '.';
		i += ll + (dot ? 1 : 0);
	}
	out[o] = '\0';
	return (int)o;
}

/* One line of the file (without its line end).  -1: skipped. */
static int
pl_line(struct psl *p, const char *s, size_t n, bool private_sec)
{
	char norm[PSL_NAME_MAX + 1], alab[PSL_NAME_MAX + 1];
	size_t starts[PSL_NAME_MAX], i;
	unsigned flag = F_RULE;
	bool utf8 = false;
	int nl, an;

	for (i = 0; i < n && s[i] != ' ' && s[i] != '\t' && s[i] != '\r';)
		i++;
	n = i; /* a rule ends at the first blank (publicsuffix.org format) */
	if (n > 0 && s[0] == '!')
		flag = F_EXC, s++, n--;
	else if (n > 1 && s[0] == '*' && s[1] == '.')
		flag = F_WILD, s += 2, n -= 2;
	if (n > 0 && s[n - 1] == '.')
		return -1; /* the list never writes a root dot */
	nl = pl_norm(s, n, norm, starts);
	if (nl < 0 || (flag == F_EXC && nl < 2) || memchr(norm, '*', n))
		return -1;
	if (private_sec)
		flag <<= F_PRIVATE;
	for (i = 0; i < n; i++)
		if ((unsigned char)norm[i] >= 0x80)
			utf8 = true;
	if (utf8) {
		an = pl_alabels(norm, n, alab);
		if (an < 0)
			return -1;
		if (pl_add(p, alab, (size_t)an, flag) != 0)
			return -2;
	}
	if (pl_add(p, norm, n, flag) != 0)
		return -2;
	p->rules++;
	return 0;
}

static bool
pl_starts(const char *s, size_t n, const char *prefix)
{
	size_t k = strlen(prefix);

	return n >= k && memcmp(s, prefix, k) == 0;
}

static bool
pl_contains(const char *s, size_t n, const char *needle)
{
	size_t k = strlen(needle), i;

	for (i = 0; i + k <= n; i++)
		if (memcmp(s + i, needle, k) == 0)
			return true;
	return false;
}

/*
 * Keys the text may need: one per line that may hold a rule, and one more
 * for a line with UTF-8 (its A-label form).
 */
static size_t
pl_count(const char *text, size_t len)
{
	size_t i, n = 0;
	bool line_start = true, counted_utf8 = false;

	for (i = 0; i < len; i++) {
		if (line_start && text[i] != '\n' && text[i] != '/')
			n++;
		if ((unsigned char)text[i] >= 0x80 && !counted_utf8)
			n++, counted_utf8 = true;
		line_start = text[i] == '\n';
		if (line_start)
			counted_utf8 = false;
	}
	return n;
}

struct psl *
psl_parse(const char *text, size_t len, size_t *skipped_out)
{
	struct psl *p;
	size_t want = pl_count(text, len), slots = 64, i = 0, skipped = 0;
	bool private_sec = false, failed = false;

	if (skipped_out)
		*skipped_out = 0;
	if (len > PSL_FILE_MAX || want == 0 || want > 2 * PSL_RULES_MAX)
		return NULL;
	while (slots < 2 * want)
		slots *= 2;
	p = xcalloc(1, sizeof(*p));
	p->slots = xcalloc(slots, sizeof(*p->slots));
	p->mask = slots - 1;
	buf_init(&p->arena, PSL_FILE_MAX * 2);
	while (i < len && !failed) {
		const char *nl = memchr(text + i, '\n', len - i);
		size_t ll = nl ? (size_t)(nl - (text + i)) : len - i;
		const char *s = text + i;

		i += ll + 1;
		if (pl_starts(s, ll, "//")) {
			if (pl_contains(s, ll, "===BEGIN PRIVATE DOMAINS==="))
				private_sec = true;
			else if (pl_contains(
				     s, ll, "===END PRIVATE DOMAINS==="))
				private_sec = false;
			continue;
		}
		if (ll == 0 || (ll == 1 && s[0] == '\r'))
			continue;
		switch (pl_line(p, s, ll, private_sec)) {
		case -1:
			skipped++;
			break;
		case -2:
			failed = true;
			break;
		}
	}
	if (skipped_out)
		*skipped_out = skipped;
	if (failed || p->rules == 0 || p->rules > PSL_RULES_MAX) {
		psl_free(p);
		return NULL;
	}
	return p;
}

int
psl_load_file(const char *path, struct psl **out)
{
	struct stat st;
	char *text;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	*out = NULL;
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) != 0) {
		fd_close_quiet(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > PSL_FILE_MAX) {
		fd_close_quiet(fd);
		errno = S_ISREG(st.st_mode) ? EFBIG : EINVAL;
		return -1;
	}
	text = xmalloc((size_t)st.st_size + 1);
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, text + got, (size_t)st.st_size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fd_close_quiet(fd);
			free(text);
			return -1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	fd_close_quiet(fd);
	*out = psl_parse(text, got, NULL);
	free(text);
	if (*out == NULL) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

void
psl_free(struct psl *p)
{
	if (p == NULL)
		return;
	buf_free(&p->arena);
	free(p->slots);
	free(p);
}

size_t
psl_rule_count(const struct psl *p)
{
	return p->rules;
}

/* ---- lookups ----------------------------------------------------------- */

/*
 * Number of labels of the public suffix of the normalised name (nl labels
 * starting at starts[]), by the publicsuffix.org algorithm: an exception
 * rule prevails and loses its leftmost label; otherwise the matching rule
 * with the most labels; otherwise the implicit "*" (one label).
 */
static size_t
pl_suffix_labels(const struct psl *p, const char *norm, size_t len,
    const size_t *starts, size_t nl, unsigned flags)
{
	size_t i, best = 1;

	for (i = 0; i < nl; i++) {
		const char *s = norm + starts[i];
		size_t n = len - starts[i];
		unsigned f = pl_flags(p, s, n, flags);

		if (f & F_EXC)
			return nl - i - 1;
		if ((f & F_RULE) && nl - i > best)
			best = nl - i;
		if (i + 1 < nl && nl - i > best &&
		    (pl_flags(
			 p, norm + starts[i + 1], len - starts[i + 1], flags) &
			F_WILD))
			best = nl - i;
	}
	return best;
}

int
psl_org_domain(const struct psl *p, const char *name, size_t len,
    unsigned flags, char *out, size_t outlen)
{
	char norm[PSL_NAME_MAX + 1];
	size_t starts[PSL_NAME_MAX], ps, n;
	int nl = pl_norm(name, len, norm, starts);

	if (nl < 0)
		return -1;
	n = strlen(norm);
	ps = pl_suffix_labels(p, norm, n, starts, (size_t)nl, flags);
	if ((size_t)nl > ps) {
		size_t at = starts[(size_t)nl - ps - 1];

		return str_copy(out, outlen, norm + at, n - at);
	}
	return str_copy(out, outlen, norm, n);
}

bool
psl_is_public_suffix(
    const struct psl *p, const char *name, size_t len, unsigned flags)
{
	char norm[PSL_NAME_MAX + 1];
	size_t starts[PSL_NAME_MAX];
	int nl = pl_norm(name, len, norm, starts);

	if (nl < 0)
		return false;
	return pl_suffix_labels(p, norm, strlen(norm), starts, (size_t)nl,
		   flags) == (size_t)nl;
}
