/*
 * dnsbl.c: screening's site lists, query names, answers and verdict cache
 * (dnsbl.h).  Pure: the configuration is trusted text, the answers are
 * four octets, the cache is given the time.
 */
#include "screen/dnsbl.h"

#include <stdlib.h>
#include <string.h>

#include "util/util.h"

/* ---- the site lists --------------------------------------------------- */

/* A DNS name: labels of 1..63 letters, digits, '-' and '_', dots between. */
static bool
dnsbl_zone_ok(const char *s, size_t n)
{
	size_t label = 0;

	if (n == 0 || n > DNSBL_ZONE_MAX || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			(ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
			return false;
		if (++label > 63)
			return false;
	}
	return true;
}

/* a.b.c.d, each 0..255 without leading zeros beyond one digit */
static int
dnsbl_parse_v4(const char *s, size_t n, uint8_t out[4])
{
	size_t i = 0;

	for (int part = 0; part < 4; part++) {
		unsigned v = 0;
		size_t digits = 0;

		if (part > 0) {
			if (i >= n || s[i] != '.')
				return -1;
			i++;
		}
		while (i < n && s[i] >= '0' && s[i] <= '9' && digits < 4) {
			v = v * 10 + (unsigned)(s[i] - '0');
			digits++;
			i++;
		}
		if (digits == 0 || digits > 3 || v > 255)
			return -1;
		out[part] = (uint8_t)v;
	}
	return i == n ? 0 : -1;
}

int
dnsbl_parse_item(
    const char *s, size_t n, bool allow_weight, struct dnsbl_site *out)
{
	const char *star = memchr(s, '*', n);
	size_t zn = star != NULL ? (size_t)(star - s) : n;
	const char *eq = memchr(s, '=', zn);

	memset(out, 0, sizeof(*out));
	out->weight = 1;
	if (star != NULL) {
		uint64_t w;
		size_t wl = n - zn - 1;

		if (!allow_weight || str_to_u64(star + 1, wl, &w) != 0 ||
		    w < 1 || w > DNSBL_WEIGHT_MAX)
			return -1;
		out->weight = (int)w;
	}
	if (eq != NULL) {
		size_t al = zn - (size_t)(eq - s) - 1;

		if (dnsbl_parse_v4(eq + 1, al, out->answer) != 0 ||
		    out->answer[0] != 127)
			return -1;
		out->filter = true;
		zn = (size_t)(eq - s);
	}
	if (!dnsbl_zone_ok(s, zn) ||
	    str_copy(out->zone, sizeof(out->zone), s, zn) != 0)
		return -1;
	str_lower(out->zone);
	return 0;
}

int
dnsbl_parse_list(const char *csv, bool allow_weight, struct dnsbl_site *out,
    size_t max, char *err, size_t errlen)
{
	size_t count = 0;
	const char *p = csv != NULL ? csv : "";

	for (;;) {
		size_t n;

		while (*p == ',' || *p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		n = strcspn(p, ", \t");
		if (count == max) {
			str_fmt_cut(err, errlen, "more than %zu zones", max);
			return -1;
		}
		if (dnsbl_parse_item(p, n, allow_weight, &out[count]) != 0) {
			str_fmt_cut(err, errlen,
			    "\"%.*s\" is not zone[=127.x.y.z]%s",
			    (int)(n > 64 ? 64 : n), p,
			    allow_weight ? "[*weight 1..100]" : "");
			return -1;
		}
		count++;
		p += n;
	}
	return (int)count;
}

int
dnsbl_qname(
    const uint8_t *ip, size_t iplen, const char *zone, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	char rev[64 + 1];
	size_t k = 0;

	if (iplen == 4) {
		return str_fmt(out, outlen, "%u.%u.%u.%u.%s", ip[3], ip[2],
		    ip[1], ip[0], zone);
	}
	if (iplen != 16)
		return -1;
	for (size_t i = 16; i-- > 0;) {
		rev[k++] = hex[ip[i] & 0xf];
		rev[k++] = '.';
		rev[k++] = hex[ip[i] >> 4];
		rev[k++] = '.';
	}
	rev[k - 1] = '\0'; /* the last dot: "%s.%s" puts it back */
	return str_fmt(out, outlen, "%s.%s", rev, zone);
}

enum dnsbl_answer
dnsbl_classify(const struct dnsbl_site *site, const uint8_t a[4])
{
	if (a[0] != 127)
		return DNSBL_BOGUS;
	if (a[1] == 255 && a[2] == 255)
		return DNSBL_REFUSED;
	if (site->filter && memcmp(site->answer, a, 4) != 0)
		return DNSBL_UNLISTED;
	return DNSBL_LISTED;
}

/* ---- the verdict cache ------------------------------------------------ */

struct sc_ent {
	uint8_t key[SCREEN_KEY_LEN];
	bool pass;
	char text[SCREEN_TEXT_MAX];
	uint64_t expires;
	struct sc_ent *hnext;	    /* bucket chain */
	struct sc_ent *prev, *next; /* oldest first */
};

struct screen_cache {
	struct sc_ent **buckets;
	size_t nbuckets; /* a power of two */
	struct sc_ent *oldest, *newest;
	size_t count, max;
	unsigned ttl;
};

struct screen_cache *
screen_cache_new(size_t max, unsigned ttl)
{
	struct screen_cache *sc = xcalloc(1, sizeof(*sc));

	sc->max = max > 0 ? max : 1;
	sc->ttl = ttl;
	sc->nbuckets = 16;
	while (sc->nbuckets < sc->max && sc->nbuckets < ((size_t)1 << 24))
		sc->nbuckets <<= 1;
	sc->buckets = xcalloc(sc->nbuckets, sizeof(*sc->buckets));
	return sc;
}

void
screen_cache_free(struct screen_cache *sc)
{
	struct sc_ent *e, *next;

	if (sc == NULL)
		return;
	for (e = sc->oldest; e != NULL; e = next) {
		next = e->next;
		free(e);
	}
	free(sc->buckets);
	free(sc);
}

void
screen_cache_key(const uint8_t *ip, size_t iplen, uint8_t key[SCREEN_KEY_LEN])
{
	memset(key, 0, SCREEN_KEY_LEN);
	if (iplen == 4) {
		memcpy(key, ip, 4);
		key[15] = 4; /* never equal to a /64 key */
	} else if (iplen == 16) {
		memcpy(key, ip, 8); /* the /64: one subscriber */
		key[15] = 6;
	}
}

static size_t
sc_hash(const struct screen_cache *sc, const uint8_t *key)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (size_t i = 0; i < SCREEN_KEY_LEN; i++) {
		h ^= key[i];
		h *= 1099511628211ull;
	}
	return (size_t)(h ^ (h >> 29)) & (sc->nbuckets - 1);
}

static struct sc_ent **
sc_find(struct screen_cache *sc, const uint8_t *key)
{
	struct sc_ent **pp = &sc->buckets[sc_hash(sc, key)];

	while (*pp != NULL && memcmp((*pp)->key, key, SCREEN_KEY_LEN) != 0)
		pp = &(*pp)->hnext;
	return pp;
}

static void
sc_remove(struct screen_cache *sc, struct sc_ent **pp)
{
	struct sc_ent *e = *pp;

	*pp = e->hnext;
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		sc->oldest = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		sc->newest = e->prev;
	sc->count--;
	free(e);
}

void
screen_cache_put(struct screen_cache *sc, const uint8_t key[SCREEN_KEY_LEN],
    bool pass, const char *text, uint64_t now)
{
	screen_cache_put_for(sc, key, pass, text, now, sc->ttl);
}

void
screen_cache_put_for(struct screen_cache *sc, const uint8_t key[SCREEN_KEY_LEN],
    bool pass, const char *text, uint64_t now, uint64_t left)
{
	struct sc_ent **pp = sc_find(sc, key);
	struct sc_ent *e;

	if (*pp != NULL)
		sc_remove(sc, pp);
	if (left > sc->ttl)
		left = sc->ttl; /* a clock set back makes no one wait longer */
	if (left == 0)
		return;
	if (sc->count >= sc->max)
		sc_remove(sc, sc_find(sc, sc->oldest->key));
	e = xcalloc(1, sizeof(*e));
	memcpy(e->key, key, SCREEN_KEY_LEN);
	e->pass = pass;
	str_fmt_cut(e->text, sizeof(e->text), "%s", text != NULL ? text : "");
	e->expires = now + left;
	pp = sc_find(sc, key);
	*pp = e;
	e->prev = sc->newest;
	if (sc->newest != NULL)
		sc->newest->next = e;
	else
		sc->oldest = e;
	sc->newest = e;
	sc->count++;
}

int
screen_cache_get(struct screen_cache *sc, const uint8_t key[SCREEN_KEY_LEN],
    uint64_t now, char *text, size_t textlen)
{
	struct sc_ent **pp = sc_find(sc, key);

	if (*pp == NULL)
		return -1;
	if (now >= (*pp)->expires) {
		sc_remove(sc, pp);
		return -1;
	}
	if (!(*pp)->pass && text != NULL && textlen > 0)
		str_fmt_cut(text, textlen, "%s", (*pp)->text);
	return (*pp)->pass ? 1 : 0;
}

void
screen_cache_set_ttl(struct screen_cache *sc, unsigned ttl, uint64_t now)
{
	/* the list stays oldest first by insertion: only cut what would
	 * outlive the new ttl, so a verdict is never older than it says */
	for (struct sc_ent *e = sc->oldest; e != NULL; e = e->next)
		if (e->expires > now + ttl)
			e->expires = now + ttl;
	sc->ttl = ttl;
}

size_t
screen_cache_count(const struct screen_cache *sc)
{
	return sc->count;
}

void
screen_cache_each(
    const struct screen_cache *sc, uint64_t now, screen_cache_fn fn, void *arg)
{
	for (const struct sc_ent *e = sc->oldest; e != NULL; e = e->next)
		if (e->expires > now)
			fn(e->key, e->pass, e->text, e->expires - now, arg);
}

/* ---- the verdicts in a file ------------------------------------------- */

/* A key as the cache makes them: an IPv4 address or the /64 of an IPv6
 * one, the rest zero, the family in the last octet. */
static bool
screen_key_ok(const uint8_t key[SCREEN_KEY_LEN])
{
	size_t used;

	if (key[15] == 4)
		used = 4;
	else if (key[15] == 6)
		used = 8;
	else
		return false;
	for (size_t i = used; i < SCREEN_KEY_LEN - 1; i++)
		if (key[i] != 0)
			return false;
	return true;
}

static bool
screen_text_ok(const char *text, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (text[i] < 0x20 || text[i] > 0x7e)
			return false;
	return true;
}

unsigned long
screen_file_version(const char *line, size_t len)
{
	static const char prefix[] = "tern-screen-cache ";
	size_t n = sizeof(prefix) - 1, i;
	unsigned long v = 0;

	if (len <= n || memcmp(line, prefix, n) != 0 || line[n] < '1' ||
	    line[n] > '9' || len - n > 9)
		return 0;
	for (i = n; i < len; i++) {
		if (line[i] < '0' || line[i] > '9')
			return 0;
		v = v * 10 + (unsigned long)(line[i] - '0');
	}
	return v;
}

int
screen_line_format(char *out, size_t outlen, const uint8_t key[SCREEN_KEY_LEN],
    bool pass, uint64_t expires, const char *text)
{
	char hex[2 * SCREEN_KEY_LEN + 1];

	if (text == NULL)
		text = "";
	if (!screen_key_ok(key) || strlen(text) >= SCREEN_TEXT_MAX ||
	    !screen_text_ok(text, strlen(text)))
		return -1;
	for (size_t i = 0; i < SCREEN_KEY_LEN; i++) {
		hex[2 * i] = "0123456789abcdef"[key[i] >> 4];
		hex[2 * i + 1] = "0123456789abcdef"[key[i] & 0xf];
	}
	hex[sizeof(hex) - 1] = '\0';
	return str_fmt(out, outlen, "%s %c %llu %s", hex, pass ? 'P' : 'F',
	    (unsigned long long)expires, text);
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int
screen_line_parse(const char *line, size_t len, uint8_t key[SCREEN_KEY_LEN],
    bool *pass, uint64_t *expires, char *text, size_t textlen)
{
	size_t i = 2 * SCREEN_KEY_LEN, digits = 0;
	uint64_t v = 0;

	if (len > SCREEN_LINE_MAX || len < i + 5 || line[i] != ' ' ||
	    (line[i + 1] != 'P' && line[i + 1] != 'F') || line[i + 2] != ' ')
		return -1;
	for (size_t k = 0; k < SCREEN_KEY_LEN; k++) {
		int hi = hexval(line[2 * k]), lo = hexval(line[2 * k + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		key[k] = (uint8_t)(hi << 4 | lo);
	}
	if (!screen_key_ok(key))
		return -1;
	*pass = line[i + 1] == 'P';
	for (i += 3; i < len && line[i] >= '0' && line[i] <= '9'; i++) {
		if (++digits > 19)
			return -1; /* no overflow: 19 digits fit */
		v = v * 10 + (uint64_t)(line[i] - '0');
	}
	/* the writer never puts a leading zero: a line it did not write is
	 * refused rather than read into a different one */
	if (digits == 0 ||
	    (digits > 1 && line[2 * SCREEN_KEY_LEN + 3] == '0') || i >= len ||
	    line[i] != ' ')
		return -1;
	i++;
	if (len - i >= SCREEN_TEXT_MAX || len - i >= textlen ||
	    !screen_text_ok(line + i, len - i) || (*pass && len > i))
		return -1;
	memcpy(text, line + i, len - i);
	text[len - i] = '\0';
	*expires = v;
	return 0;
}
