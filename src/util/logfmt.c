/*
 * logfmt: a key=value log line as JSON or as a journald datagram
 * (logfmt.h).  Invariants: nothing is written past outlen; a JSON line is
 * always one complete object of valid UTF-8 ending in '\n', whatever bytes
 * the line held; a journal datagram holds only whole fields.
 */
#include <stdint.h>
#include <string.h>

#include "util/logfmt.h"

static bool
lf_key_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

bool
logfmt_next(const char *line, size_t len, size_t *pos, struct logfmt_field *f)
{
	size_t p = *pos, k = 0, q;

	while (p < len && line[p] == ' ')
		p++;
	if (p >= len) {
		*pos = p;
		return false;
	}
	while (p + k < len && lf_key_byte((unsigned char)line[p + k]))
		k++;
	if (k > 0 && k <= LOGFMT_KEY_MAX && p + k < len && line[p + k] == '=') {
		f->key = line + p;
		f->keylen = k;
		q = p + k + 1;
		f->val = line + q;
		if (q < len && line[q] == '"') {
			for (q++; q < len && line[q] != '"'; q++)
				if (line[q] == '\\' && q + 1 < len)
					q++;
			if (q < len)
				q++; /* the closing quote */
		} else {
			while (q < len && line[q] != ' ')
				q++;
		}
		f->vallen = (size_t)(line + q - f->val);
		*pos = q;
		return true;
	}
	f->key = NULL;
	f->keylen = 0;
	f->val = line + p;
	for (q = p; q < len && line[q] != ' '; q++)
		;
	f->vallen = q - p;
	*pos = q;
	return true;
}

static int
lf_hex(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

size_t
logfmt_value(const struct logfmt_field *f, char *out, size_t outlen)
{
	const char *v = f->val;
	size_t n = f->vallen, i = 0, o = 0;
	bool quoted = n > 0 && v[0] == '"';

	if (quoted)
		i = 1;
	while (i < n && o < outlen) {
		unsigned char c = (unsigned char)v[i];

		if (quoted && c == '"')
			break; /* the closing quote */
		if (c == '\\' && i + 3 < n && v[i + 1] == 'x' &&
		    lf_hex((unsigned char)v[i + 2]) >= 0 &&
		    lf_hex((unsigned char)v[i + 3]) >= 0) {
			out[o++] = (char)(lf_hex((unsigned char)v[i + 2]) * 16 +
					  lf_hex((unsigned char)v[i + 3]));
			i += 4;
		} else if (c == '\\' && i + 1 < n &&
			   (v[i + 1] == '\\' || v[i + 1] == '"')) {
			out[o++] = v[i + 1];
			i += 2;
		} else {
			out[o++] = (char)c;
			i++;
		}
	}
	return o;
}

/*
 * The length of the well-formed UTF-8 sequence at s (RFC 3629: no
 * overlong forms, no surrogates, nothing past U+10FFFF), or 0.
 */
static size_t
lf_utf8_len(const unsigned char *s, size_t n)
{
	size_t need, i;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		need = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		need = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		need = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n < need)
		return 0;
	for (i = 1; i < need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((need == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (need == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return need;
}

/* ---- JSON ------------------------------------------------------------- */

/* room kept at the end for ,"cut":true}\n */
#define LF_JSON_TAIL 13

struct lf_json {
	char *p;
	size_t len, lim; /* lim: where content must stop (tail kept) */
	bool full;
};

static bool
lf_room(const struct lf_json *j, size_t n)
{
	return !j->full && j->len + n <= j->lim;
}

static void
lf_put(struct lf_json *j, const char *s, size_t n)
{
	memcpy(j->p + j->len, s, n);
	j->len += n;
}

/* The escaped form of the unit at s into unit; its input length. */
static size_t
lf_json_unit(const unsigned char *s, size_t n, char unit[8], size_t *ulen)
{
	static const char hex[] = "0123456789abcdef";
	size_t k;

	if (s[0] == '"' || s[0] == '\\') {
		unit[0] = '\\';
		unit[1] = (char)s[0];
		*ulen = 2;
		return 1;
	}
	if (s[0] == '\n' || s[0] == '\r' || s[0] == '\t') {
		unit[0] = '\\';
		unit[1] = s[0] == '\n' ? 'n' : s[0] == '\r' ? 'r' : 't';
		*ulen = 2;
		return 1;
	}
	if (s[0] < 0x20 || s[0] == 0x7f) {
		memcpy(unit, "\\u00", 4);
		unit[4] = hex[s[0] >> 4];
		unit[5] = hex[s[0] & 15];
		*ulen = 6;
		return 1;
	}
	if ((k = lf_utf8_len(s, n)) == 0) {
		memcpy(unit, "\\ufffd", 6);
		*ulen = 6;
		return 1;
	}
	memcpy(unit, s, k);
	*ulen = k;
	return k;
}

/* A JSON string of s[0..n); when it does not fit, cut with "..." and
 * the line is full.  The caller checked room for at least "...". */
static void
lf_json_str(struct lf_json *j, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	char unit[8];
	size_t i = 0, ulen, used;

	lf_put(j, "\"", 1);
	while (i < n) {
		used = lf_json_unit(u + i, n - i, unit, &ulen);
		if (j->len + ulen + 4 > j->lim) {
			lf_put(j, "...", 3);
			j->full = true;
			break;
		}
		lf_put(j, unit, ulen);
		i += used;
	}
	lf_put(j, "\"", 1);
}

static void
lf_json_key(struct lf_json *j, const char *k, size_t n)
{
	lf_put(j, ",\"", 2);
	lf_put(j, k, n);
	lf_put(j, "\":", 2);
}

/* A bare value JSON can carry as a number without losing a digit. */
static bool
lf_is_number(const struct logfmt_field *f)
{
	size_t i, d = f->vallen;

	if (f->keylen >= 2 &&
	    (f->key[f->keylen - 2] == 'i' || f->key[f->keylen - 2] == 'I') &&
	    (f->key[f->keylen - 1] == 'd' || f->key[f->keylen - 1] == 'D'))
		return false;
	if (d == 0 || d > 15 || (d > 1 && f->val[0] == '0'))
		return false;
	for (i = 0; i < d; i++)
		if (f->val[i] < '0' || f->val[i] > '9')
			return false;
	return true;
}

static void
lf_json_field(struct lf_json *j, const struct logfmt_field *f)
{
	char val[LOGFMT_LINE_MAX];
	size_t n;

	if (lf_is_number(f)) {
		if (!lf_room(j, f->keylen + 4 + f->vallen)) {
			j->full = true;
			return;
		}
		lf_json_key(j, f->key, f->keylen);
		lf_put(j, f->val, f->vallen);
		return;
	}
	/* the key and at least "..." */
	if (!lf_room(j, f->keylen + 4 + 5)) {
		j->full = true;
		return;
	}
	n = logfmt_value(f, val, sizeof(val));
	lf_json_key(j, f->key, f->keylen);
	lf_json_str(j, val, n);
}

/* "msg": the free words of the line, one space between them. */
static void
lf_json_words(struct lf_json *j, const char *msg, size_t msglen)
{
	char words[LOGFMT_LINE_MAX];
	struct logfmt_field f;
	size_t pos = 0, n = 0;

	while (logfmt_next(msg, msglen, &pos, &f)) {
		if (f.key != NULL || n + f.vallen + 1 > sizeof(words))
			continue;
		if (n > 0)
			words[n++] = ' ';
		memcpy(words + n, f.val, f.vallen);
		n += f.vallen;
	}
	if (n == 0)
		return;
	if (!lf_room(j, 3 + 4 + 5)) { /* ,"msg": and "..." */
		j->full = true;
		return;
	}
	lf_json_key(j, "msg", 3);
	lf_json_str(j, words, n);
}

size_t
logfmt_json(char *out, size_t outlen, const char *ts, const char *level,
    const char *prog, int pid, const char *msg, size_t msglen)
{
	struct lf_json j = {out, 0, 0, false};
	struct logfmt_field f;
	char num[24];
	size_t pos = 0, i;

	if (outlen > LOGFMT_LINE_MAX)
		outlen = LOGFMT_LINE_MAX;
	if (outlen < 128)
		return 0;
	j.lim = outlen - LF_JSON_TAIL;
	lf_put(&j, "{\"ts\":", 6);
	lf_json_str(&j, ts, strnlen(ts, 40));
	lf_json_key(&j, "level", 5);
	lf_json_str(&j, level, strnlen(level, 16));
	lf_json_key(&j, "prog", 4);
	lf_json_str(&j, prog, strnlen(prog, 32));
	lf_json_key(&j, "pid", 3);
	i = sizeof(num);
	do {
		num[--i] = (char)('0' + (pid < 0 ? 0 : pid % 10));
		pid /= 10;
	} while (pid > 0 && i > 0);
	lf_put(&j, num + i, sizeof(num) - i);
	while (!j.full && logfmt_next(msg, msglen, &pos, &f))
		if (f.key != NULL)
			lf_json_field(&j, &f);
	if (!j.full)
		lf_json_words(&j, msg, msglen);
	if (j.full)
		lf_put(&j, ",\"cut\":true", 11);
	lf_put(&j, "}\n", 2);
	return j.len;
}

/* ---- journald --------------------------------------------------------- */

/*
 * One field NAME=value\n, or NAME\n<64-bit LE length>value\n when the value
 * holds a '\n' (the native protocol's two forms).  false if it does not
 * fit in out[*len..outlen).
 */
static bool
lf_jfield(char *out, size_t outlen, size_t *len, const char *name, size_t nlen,
    const char *v, size_t vlen)
{
	bool bin = memchr(v, '\n', vlen) != NULL;
	size_t need = nlen + 1 + vlen + 1 + (bin ? 8 : 0), i;
	char *p = out + *len;

	if (*len + need > outlen)
		return false;
	memcpy(p, name, nlen);
	p += nlen;
	if (bin) {
		uint64_t l = vlen;

		*p++ = '\n';
		for (i = 0; i < 8; i++)
			*p++ = (char)(l >> (8 * i) & 0xff);
	} else {
		*p++ = '=';
	}
	memcpy(p, v, vlen);
	p += vlen;
	*p = '\n';
	*len += need;
	return true;
}

static size_t
lf_jname(const struct logfmt_field *f, char *name, size_t cap)
{
	size_t n = 5, i;

	if (f->keylen == 2 && (f->key[0] | 0x20) == 'i' &&
	    (f->key[1] | 0x20) == 'd') {
		memcpy(name, "TERN_QUEUE_ID", 13);
		return 13;
	}
	memcpy(name, "TERN_", 5);
	for (i = 0; i < f->keylen && n < cap; i++) {
		char c = f->key[i];

		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		else if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
			c = '_';
		name[n++] = c;
	}
	return n;
}

size_t
logfmt_journal(char *out, size_t outlen, int priority, const char *ident,
    int pid, const char *message, size_t mlen, const char *kv, size_t kvlen)
{
	char name[8 + LOGFMT_KEY_MAX], val[LOGFMT_LINE_MAX], num[16];
	struct logfmt_field f;
	size_t len = 0, pos = 0, n;

	if (outlen < 512)
		return 0;
	/* MESSAGE is the point of the entry: cut it to leave room for the
	 * fixed fields (at most 160 octets) */
	if (mlen > outlen - 256)
		mlen = outlen - 256;
	if (!lf_jfield(out, outlen, &len, "MESSAGE", 7, message, mlen))
		return 0;
	num[0] = (char)('0' + (priority & 7));
	(void)lf_jfield(out, outlen, &len, "PRIORITY", 8, num, 1);
	(void)lf_jfield(out, outlen, &len, "SYSLOG_FACILITY", 15, "2", 1);
	(void)lf_jfield(out, outlen, &len, "SYSLOG_IDENTIFIER", 17, ident,
	    strnlen(ident, 64));
	n = sizeof(num);
	do {
		num[--n] = (char)('0' + (pid < 0 ? 0 : pid % 10));
		pid /= 10;
	} while (pid > 0 && n > 0);
	(void)lf_jfield(
	    out, outlen, &len, "SYSLOG_PID", 10, num + n, sizeof(num) - n);
	while (logfmt_next(kv, kvlen, &pos, &f)) {
		size_t nl, vl;

		if (f.key == NULL)
			continue;
		nl = lf_jname(&f, name, sizeof(name));
		vl = logfmt_value(&f, val, sizeof(val));
		if (!lf_jfield(out, outlen, &len, name, nl, val, vl))
			break;
	}
	return len;
}
