/*
 * queue/admin: filters and the administrator's bounce (queue/admin.h).
 * Invariants: a parsed filter holds only bytes of domains and addresses
 * (no space, no control byte, no quote or backslash), so it can be
 * written back into a control request; an error text is fixed ASCII
 * without quotes (it goes into a JSON reply as it is); matching reads
 * env and changes nothing.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "queue/admin.h"
#include "util/util.h"

/* A byte an address or a domain may carry in a filter word. */
static bool
qa_byte_ok(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '=';
}

static int
qa_value(char *out, size_t outlen, const char *v, size_t n, const char *key,
    char *err, size_t errlen)
{
	size_t i;

	if (n == 0 || n >= outlen) {
		str_fmt_cut(err, errlen, "filter %s=: empty or too long", key);
		return -1;
	}
	for (i = 0; i < n; i++)
		if (!qa_byte_ok((unsigned char)v[i])) {
			str_fmt_cut(err, errlen,
			    "filter %s=: a byte that is not "
			    "an address's",
			    key);
			return -1;
		}
	memcpy(out, v, n);
	out[n] = '\0';
	return 0;
}

int
queue_duration_parse(const char *s, uint64_t *secs)
{
	uint64_t n = 0, mul = 1;
	size_t i = 0;

	if (s == NULL || s[0] < '0' || s[0] > '9')
		return -1;
	for (; s[i] >= '0' && s[i] <= '9'; i++) {
		if (n > UINT64_MAX / 10 / 604800)
			return -1;
		n = n * 10 + (uint64_t)(s[i] - '0');
	}
	switch (s[i]) {
	case '\0':
		return *secs = n, 0;
	case 's':
		break;
	case 'm':
		mul = 60;
		break;
	case 'h':
		mul = 3600;
		break;
	case 'd':
		mul = 86400;
		break;
	case 'w':
		mul = 604800;
		break;
	default:
		return -1;
	}
	if (s[i + 1] != '\0')
		return -1;
	*secs = n * mul;
	return 0;
}

static int
qa_word(
    struct queue_filter *f, const char *w, size_t n, char *err, size_t errlen)
{
	char num[32];

	if (n == 8 && memcmp(w, "deferred", 8) == 0) {
		f->deferred = true;
	} else if (n > 3 && memcmp(w, "to=", 3) == 0) {
		if (qa_value(f->to, sizeof(f->to), w + 3, n - 3, "to", err,
			errlen) != 0)
			return -1;
	} else if (n > 5 && memcmp(w, "from=", 5) == 0) {
		if (qa_value(f->from, sizeof(f->from), w + 5, n - 5, "from",
			err, errlen) != 0)
			return -1;
	} else if (n > 6 && memcmp(w, "older=", 6) == 0) {
		if (qa_value(num, sizeof(num), w + 6, n - 6, "older", err,
			errlen) != 0 ||
		    queue_duration_parse(num, &f->older) != 0) {
			str_fmt_cut(
			    err, errlen, "older: a duration (30m, 1h, 2d, 1w)");
			return -1;
		}
	} else {
		/* the word is not echoed: err goes into JSON as it is */
		str_fmt_cut(err, errlen,
		    "unknown filter (to=, from=, older=, deferred)");
		return -1;
	}
	f->any = true;
	return 0;
}

int
queue_filter_parse(
    struct queue_filter *f, const char *args, char *err, size_t errlen)
{
	const char *p = args, *e;

	memset(f, 0, sizeof(*f));
	while (p != NULL && *p != '\0') {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		for (e = p; *e != '\0' && *e != ' '; e++)
			;
		if (qa_word(f, p, (size_t)(e - p), err, errlen) != 0)
			return -1;
		p = e;
	}
	return 0;
}

static const char *
qa_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at != NULL ? at + 1 : "";
}

static bool
qa_from(const struct queue_filter *f, const struct queue_env *env)
{
	if (strcmp(f->from, "<>") == 0)
		return env->sender[0] == '\0';
	if (strchr(f->from, '@') != NULL)
		return strcasecmp(env->sender, f->from) == 0;
	return env->sender[0] != '\0' &&
	       strcasecmp(qa_domain(env->sender), f->from) == 0;
}

bool
queue_filter_match(
    const struct queue_filter *f, const struct queue_env *env, time_t now)
{
	bool to = f->to[0] == '\0', tried = !f->deferred;
	size_t i;

	if (f->from[0] != '\0' && !qa_from(f, env))
		return false;
	if (f->older > 0 &&
	    (env->created > now || (uint64_t)(now - env->created) < f->older))
		return false;
	for (i = 0; i < env->nrcpt; i++) {
		const struct queue_rcpt *r = &env->rcpt[i];

		if (r->state != QUEUE_RCPT_PENDING)
			continue;
		if (!to && strcasecmp(qa_domain(r->addr), f->to) == 0)
			to = true;
		if (r->attempts > 0)
			tried = true;
	}
	return to && tried;
}

size_t
queue_env_admin_bounce(struct queue_env *env, time_t now)
{
	size_t i, n = 0;

	for (i = 0; i < env->nrcpt; i++) {
		struct queue_rcpt *r = &env->rcpt[i];

		if (r->state != QUEUE_RCPT_PENDING)
			continue;
		r->state = QUEUE_RCPT_FAILED;
		r->code = QUEUE_ADMIN_BOUNCE_CODE;
		str_fmt_cut(
		    r->enh, sizeof(r->enh), "%s", QUEUE_ADMIN_BOUNCE_ENH);
		str_fmt_cut(
		    r->text, sizeof(r->text), "%s", QUEUE_ADMIN_BOUNCE_TEXT);
		r->last_try = now;
		n++;
	}
	return n;
}
