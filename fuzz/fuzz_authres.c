/*
 * fuzz_authres: libFuzzer harness for src/mailauth/authres.c.
 *
 * The input is an Authentication-Results field value.  Besides the
 * sanitisers, it aborts when:
 *  - a view the parser returns leaves the input, or counts pass maxima;
 *  - authres_is_ours() disagrees with the parsed id;
 *  - authres_ours_in() on the input as a message finds spans outside it,
 *    out of order, or not named Authentication-Results;
 *  - the parsed id and results, built again with authres_build() (when
 *    they are valid keywords), do not parse back to the same id and the
 *    same methods and results, or a built line passes the width.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mailauth/authres.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
in_bounds(const struct authres_view *v, const char *s, size_t n)
{
	if (v->p != NULL && (v->p < s || v->p + v->n > s + n))
		abort();
}

/* Copy a view that is a plain token into out (NUL-terminated). */
static bool
token(const struct authres_view *v, char *out, size_t outlen)
{
	return v->p != NULL && v->n > 0 && v->p[0] != '"' &&
	       str_copy(out, outlen, v->p, v->n) == 0;
}

static void
rebuild(const struct authres_parsed *p)
{
	struct authres_result r[AUTHRES_RESULTS_MAX];
	char m[AUTHRES_RESULTS_MAX][80], res[AUTHRES_RESULTS_MAX][80];
	struct authres_parsed back;
	struct buf b;
	size_t i, n = p->nresults < AUTHRES_RESULTS_MAX ? p->nresults
							: AUTHRES_RESULTS_MAX;
	const char *line, *hv;

	memset(r, 0, sizeof(r));
	for (i = 0; i < n; i++) {
		if (!token(&p->res[i].method, m[i], sizeof(m[i])) ||
		    !token(&p->res[i].result, res[i], sizeof(res[i])))
			return;
		r[i].method = m[i];
		r[i].result = res[i];
	}
	buf_init(&b, 1 << 16);
	if (authres_build(&b, p->id, r, n, 60) != 0) {
		buf_free(&b);
		return;
	}
	/*
	 * Only methods and results besides the id: a line past the width is
	 * one word alone, unless it holds the id as a quoted-string (whose
	 * spaces are not places to fold).
	 */
	for (line = b.data; line < b.data + b.len;) {
		const char *e = strstr(line, "\r\n");
		size_t ll;

		if (e == NULL)
			abort();
		ll = (size_t)(e - line);
		if (ll > 60 && memchr(line + 1, ' ', ll - 1) &&
		    memchr(line, '"', ll) == NULL)
			abort();
		line = e + 2;
	}
	hv = b.data + strlen("Authentication-Results:");
	if (authres_parse(hv, b.len - (size_t)(hv - b.data), &back) !=
		AUTHRES_OK ||
	    strcmp(back.id, p->id) != 0 || back.nresults != n)
		abort();
	for (i = 0; i < n; i++)
		if (back.res[i].method.n != strlen(m[i]) ||
		    memcmp(back.res[i].method.p, m[i], back.res[i].method.n) ||
		    back.res[i].result.n != strlen(res[i]) ||
		    memcmp(back.res[i].result.p, res[i], back.res[i].result.n))
			abort();
	buf_free(&b);
}

/* The input as a message: the fields found lie in it, in order, named. */
static void
check_ours_in(const char *s, size_t size, const char *id)
{
	struct authres_span sp[8];
	size_t n = authres_ours_in(s, size, id, sp, 8), i, last = 0;

	for (i = 0; i < n && i < 8; i++) {
		if (sp[i].off < last || sp[i].len < 23 ||
		    sp[i].off + sp[i].len > size ||
		    strncasecmp(s + sp[i].off, "Authentication-Results", 22) !=
			0)
			abort();
		last = sp[i].off + sp[i].len;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct authres_parsed p;
	char *s = malloc(size ? size : 1);
	enum authres_status st;
	size_t i, k;

	memcpy(s, data, size);
	st = authres_parse(s, size, &p);
	if (st != AUTHRES_BAD_ID) {
		if (strlen(p.id) == 0 || strlen(p.id) > AUTHRES_ID_MAX)
			abort();
		if (!authres_is_ours(s, size, p.id))
			abort();
	} else if (authres_is_ours(s, size, "x")) {
		abort();
	}
	for (i = 0; i < p.nresults && i < AUTHRES_RESULTS_MAX; i++) {
		in_bounds(&p.res[i].method, s, size);
		in_bounds(&p.res[i].result, s, size);
		in_bounds(&p.res[i].reason, s, size);
		if (p.res[i].nprops > AUTHRES_PROPS_MAX)
			abort();
		for (k = 0; k < p.res[i].nprops; k++) {
			in_bounds(&p.res[i].props[k].ptype, s, size);
			in_bounds(&p.res[i].props[k].property, s, size);
			in_bounds(&p.res[i].props[k].value, s, size);
		}
	}
	if (st == AUTHRES_OK)
		rebuild(&p);
	check_ours_in(s, size, st != AUTHRES_BAD_ID ? p.id : "x");
	free(s);
	return 0;
}
