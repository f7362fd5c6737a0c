/*
 * dkimsel: the choice of a domain's signing keys (dkimsel.h has the rule).
 * Names are compared ASCII case-insensitively: DNS names are, and keygen
 * writes them lower-cased.
 */
#include <stdarg.h>
#include <string.h>

#include "mailauth/dkimsel.h"

const char *
dkimsel_type_name(enum dkim_key_type t)
{
	return t == DKIM_KEY_ED25519 ? "ed25519" : "rsa";
}

static bool
ds_label_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static bool
ds_selector_ok(const char *s, size_t n)
{
	size_t k;
	char prev = '.';

	if (n == 0 || n > DKIM_DOMAIN_MAX)
		return false;
	for (k = 0; k < n; k++) {
		if (s[k] == '.' ? prev == '.' : !ds_label_char(s[k]))
			return false;
		prev = s[k];
	}
	return prev != '.';
}

bool
dkimsel_file_name(const char *name, struct dkimsel_key *out)
{
	static const struct {
		const char *suffix;
		enum dkim_key_type type;
	} sfx[] = {
	    {".rsa.key", DKIM_KEY_RSA},
	    {".ed25519.key", DKIM_KEY_ED25519},
	};
	size_t n = strlen(name), k, sl;

	for (k = 0; k < sizeof(sfx) / sizeof(*sfx); k++) {
		sl = strlen(sfx[k].suffix);
		if (n <= sl || strcmp(name + n - sl, sfx[k].suffix) != 0)
			continue;
		if (!ds_selector_ok(name, n - sl) ||
		    str_copy(out->selector, sizeof(out->selector), name,
			n - sl) != 0)
			return false;
		out->type = sfx[k].type;
		out->active = false;
		return true;
	}
	return false;
}

/* One warning line; warn is advice for the admin, so a line that no
 * longer fits in it is left out rather than failing the choice. */
static void PRINTF_LIKE(2, 3) ds_warn(struct buf *warn, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = buf_vprintf(warn, fmt, ap);
	va_end(ap);
	if (rc != 0)
		return; /* full: the lines already there say enough */
}

static bool
ds_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* Mark the key named s[0..len) active unless its algorithm has one. */
static void
ds_mark(struct dkimsel_key *keys, size_t n, const char *s, size_t len,
    struct buf *warn)
{
	size_t k, j;

	for (k = 0; k < n; k++)
		if (str_case_eq(s, len, keys[k].selector))
			break;
	if (k == n) {
		ds_warn(warn,
		    "active names selector \"%.*s\" but there is no key "
		    "file for it\n",
		    (int)(len > 64 ? 64 : len), s);
		return;
	}
	for (j = 0; j < n; j++)
		if (j != k && keys[j].active && keys[j].type == keys[k].type) {
			ds_warn(warn,
			    "active names two %s selectors, %s and %s: %s "
			    "signs\n",
			    dkimsel_type_name(keys[k].type), keys[j].selector,
			    keys[k].selector, keys[j].selector);
			return;
		}
	keys[k].active = true;
}

static void
ds_from_file(struct dkimsel_key *keys, size_t n, const char *p, size_t len,
    struct buf *warn)
{
	size_t i = 0, e, b;

	while (i < len) {
		const char *nl = memchr(p + i, '\n', len - i);

		e = nl != NULL ? (size_t)(nl - p) : len;
		b = i;
		while (b < e && ds_wsp(p[b]))
			b++;
		{
			size_t end = b;

			while (end < e && !ds_wsp(p[end]) && p[end] != '#')
				end++;
			if (end > b)
				ds_mark(keys, n, p + b, end - b, warn);
		}
		i = e + 1;
	}
}

/* No active file: an algorithm's only key is active. */
static void
ds_without_file(struct dkimsel_key *keys, size_t n, struct buf *warn)
{
	enum dkim_key_type t;
	size_t k, count, last = 0;

	for (t = DKIM_KEY_RSA; t <= DKIM_KEY_ED25519; t++) {
		count = 0;
		for (k = 0; k < n; k++)
			if (keys[k].type == t) {
				count++;
				last = k;
			}
		if (count == 1)
			keys[last].active = true;
		else if (count > 1)
			ds_warn(warn,
			    "%zu %s keys and no active file: none signs "
			    "until `tern dkim activate` names one\n",
			    count, dkimsel_type_name(t));
	}
}

void
dkimsel_choose(struct dkimsel_key *keys, size_t n, const char *active,
    size_t len, struct buf *warn)
{
	size_t k;

	for (k = 0; k < n; k++)
		keys[k].active = false;
	if (active == NULL)
		ds_without_file(keys, n, warn);
	else
		ds_from_file(keys, n, active, len, warn);
}

int
dkimsel_activate(
    const struct dkimsel_key *keys, size_t n, const char *sel, struct buf *out)
{
	size_t k, which = n;

	for (k = 0; k < n; k++)
		if (str_case_eq(sel, strlen(sel), keys[k].selector))
			which = k;
	if (which == n)
		return -1;
	if (buf_printf(out, "%s\n", keys[which].selector) != 0)
		return -1;
	for (k = 0; k < n; k++)
		if (k != which && keys[k].active &&
		    keys[k].type != keys[which].type &&
		    buf_printf(out, "%s\n", keys[k].selector) != 0)
			return -1;
	return 0;
}
