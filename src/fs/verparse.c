/*
 * fs/verparse: the pure half of STATE/versions (versions.h): the formats
 * this tern reads and the check of the file's text.  In libcore (no I/O),
 * so fuzz/fuzz_formats.c can run it; versions.c reads the file.
 */
#include <string.h>

#include "fs/versions.h"

const struct state_format state_formats[] = {
    {"dkim", 1},    /* STATE/dkim/DOMAIN/SELECTOR.ALG.key and active */
    {"srs.key", 1}, /* one base64 secret a line, postsrsd's form */
    {"tls", 1},	    /* STATE/tls: the self-signed pair, PEM */
    {"acme", 1},    /* STATE/acme: account.key (PEM), account.url */
    {NULL, 0},
};

static const struct state_format *
sv_find(const char *name, size_t n)
{
	const struct state_format *f;

	for (f = state_formats; f->name != NULL; f++)
		if (strlen(f->name) == n && memcmp(f->name, name, n) == 0)
			return f;
	return NULL;
}

static bool
sv_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
	       c == '_' || c == '-';
}

/* One line without its newline: 0, or -1 with err. */
static int
sv_line(const char *p, size_t n, unsigned line, char *err, size_t errlen)
{
	const struct state_format *f;
	unsigned long v = 0;
	size_t i = 0, name;

	while (i < n && sv_name_char(p[i]))
		i++;
	name = i;
	if (name == 0 || name > 64 || i + 2 > n || p[i] != ' ' ||
	    p[i + 1] < '1' || p[i + 1] > '9' || n - i - 1 > 9) {
		str_fmt_cut(err, errlen,
		    "line %u: not NAME VERSION (a newer or a damaged file)",
		    line);
		return -1;
	}
	for (i++; i < n; i++) {
		if (p[i] < '0' || p[i] > '9') {
			str_fmt_cut(err, errlen, "line %u: bad version", line);
			return -1;
		}
		v = v * 10 + (unsigned long)(p[i] - '0');
	}
	f = sv_find(p, name);
	if (f != NULL && v > f->version) {
		str_fmt_cut(err, errlen,
		    "format %s is at version %lu, this tern reads version %u "
		    "only",
		    f->name, v, f->version);
		return -1;
	}
	return 0;
}

int
state_versions_parse(const char *text, size_t len, char *err, size_t errlen)
{
	size_t off = 0;
	unsigned line = 0;

	while (off < len) {
		const char *nl = memchr(text + off, '\n', len - off);

		line++;
		if (nl == NULL) {
			str_fmt_cut(err, errlen, "line %u: no newline", line);
			return -1;
		}
		if (sv_line(text + off, (size_t)(nl - (text + off)), line, err,
			errlen) != 0)
			return -1;
		off = (size_t)(nl - text) + 1;
	}
	return 0;
}
