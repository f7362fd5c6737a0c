/*
 * envelope: the queue envelope and its text form (docs/queue.md, "Envelope
 * file format").  Pure: no I/O, no clock, no logging; the only allocation
 * is the recipient array.  Builds with src/util alone (the fuzzer does).
 *
 * Invariants:
 *   - Every value is written as escaped fields: bytes below 0x21, 0x7f
 *     and '\' become \xHH, so no value can contain the space, CR or LF
 *     that frame fields and records.  A newline injected anywhere (a
 *     sender, a remote reply text) stays inside its field: the
 *     CVE-2020-8794 class of queue-file injection cannot happen.
 *   - The format is canonical: one fixed record order, numbers without
 *     leading zeros, escapes only where needed.  The decoder accepts a
 *     file only if encoding what it decoded gives the same bytes back
 *     (fuzz/fuzz_envelope.c checks exactly that).
 *   - Decoding is all or nothing: on any error the output is zeroed, so a
 *     caller never holds half an envelope.  The last record, END, carries
 *     the recipient count, so a file cut at any byte is refused.
 *
 * Limits: every field has its array size in queue.h and a longer one is
 * refused, never cut; at most QUEUE_RCPT_MAX recipients (the array grows
 * with the file, so memory follows the input, about 1.4 KB a recipient).
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue/queue.h"

_Static_assert(sizeof(time_t) == 8, "times are stored as 64-bit");

#define ENV_RCPT_FIELDS_V1 11 /* the recipient record of version 1 */
#define ENV_FIELDS_MAX	   12 /* version 2's: one more, the owed DSN */
#define ENV_TIME_MAX	   ((uint64_t)INT64_MAX)
#define ENV_NELEM(a)	   (sizeof(a) / sizeof((a)[0]))

/* The fields of the line being decoded: views into the input. */
struct env_dec {
	const char *p, *end; /* the input not yet read */
	unsigned line;
	char type;
	const char *f[ENV_FIELDS_MAX];
	size_t flen[ENV_FIELDS_MAX];
	size_t nf;
	char *err;
	size_t errlen;
	bool newer; /* the V record names a version this tern does not know */
};

/* One record type: its fields, its codec, and for the generic string and
 * time records the member of struct queue_env it holds. */
struct env_rec {
	char type;
	size_t nfields;
	int (*enc)(
	    struct buf *, const struct queue_env *, const struct env_rec *);
	int (*dec)(
	    struct env_dec *, struct queue_env *, const struct env_rec *);
	size_t off;
	size_t size;
};

static const char env_hex[] = "0123456789abcdef";
static const char *const env_notify_names[] = {
    "NEVER", "SUCCESS", "FAILURE", "DELAY"};
static const unsigned env_notify_bits[] = {SMTP_NOTIFY_NEVER,
    SMTP_NOTIFY_SUCCESS, SMTP_NOTIFY_FAILURE, SMTP_NOTIFY_DELAY};
static const char *const env_state_names[] = {
    "PENDING", "DELIVERED", "FAILED", "RELAYED"};
static const char *const env_ret_names[] = {"-", "FULL", "HDRS"};
static const char *const env_owed_names[] = {
    "-", "FAILURE", "DELAY", "SUCCESS"};

/* ---- the envelope in memory ---------------------------------------------- */

void
queue_env_init(struct queue_env *env)
{
	memset(env, 0, sizeof(*env));
}

void
queue_env_free(struct queue_env *env)
{
	if (env == NULL)
		return;
	free(env->rcpt);
	queue_env_init(env);
}

/* Room for one more recipient, or -1 (E2BIG at the limit, ENOMEM). */
static int
env_grow(struct queue_env *env)
{
	struct queue_rcpt *r;
	size_t cap;

	if (env->nrcpt < env->rcpt_cap)
		return 0;
	if (env->nrcpt >= QUEUE_RCPT_MAX) {
		errno = E2BIG;
		return -1;
	}
	cap = env->rcpt_cap == 0 ? 4 : env->rcpt_cap * 2;
	if (cap > QUEUE_RCPT_MAX)
		cap = QUEUE_RCPT_MAX;
	/* cap <= 100,000: cap * sizeof cannot overflow */
	if ((r = realloc(env->rcpt, cap * sizeof(*r))) == NULL)
		return -1;
	env->rcpt = r;
	env->rcpt_cap = cap;
	return 0;
}

struct queue_rcpt *
queue_env_add_rcpt(struct queue_env *env, const char *addr)
{
	struct queue_rcpt *r;
	size_t n = strnlen(addr, QUEUE_ADDR_MAX + 1);

	if (n == 0 || n > QUEUE_ADDR_MAX) {
		errno = EINVAL;
		return NULL;
	}
	if (env_grow(env) != 0)
		return NULL;
	r = &env->rcpt[env->nrcpt++];
	memset(r, 0, sizeof(*r));
	memcpy(r->addr, addr, n);
	return r;
}

bool
queue_id_valid(const char *s)
{
	size_t i;

	for (i = 0; i < QUEUE_ID_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
			(s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[QUEUE_ID_LEN] == '\0';
}

/* Version 1 unless a recipient owes a DSN: a file stays readable by a
 * ternd that knows only version 1 (a downgrade) whenever it can. */
unsigned
queue_env_version(const struct queue_env *env)
{
	size_t i;

	/* a reader that predates the T record refuses the file by its
	   version, instead of sending such a message in clear */
	if (env->requiretls || env->tls_required_no)
		return 3;
	for (i = 0; i < env->nrcpt; i++)
		if (env->rcpt[i].dsn_owed != QUEUE_DSN_NONE)
			return 2;
	return 1;
}

const char *
queue_rcpt_state_name(enum queue_rcpt_state st)
{
	if ((unsigned)st >= ENV_NELEM(env_state_names))
		return NULL;
	return env_state_names[st];
}

/* ---- encoding ------------------------------------------------------------ */

static bool
env_must_escape(unsigned char c)
{
	return c < 0x21 || c == 0x7f || c == '\\';
}

static int
env_einval(void)
{
	errno = EINVAL;
	return -1;
}

/* Append " " and s escaped ("-" when empty).  s must end within max+1. */
static int
env_put_str(struct buf *out, const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1), i;
	char *w;

	if (n > max)
		return env_einval(); /* unterminated: not a value we know */
	if (buf_reserve(out, 1 + 4 * (n > 0 ? n : 1)) != 0)
		return -1;
	w = out->data + out->len;
	*w++ = ' ';
	if (n == 0)
		*w++ = '-';
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (env_must_escape(c) || (n == 1 && c == '-')) {
			*w++ = '\\';
			*w++ = 'x';
			*w++ = env_hex[c >> 4];
			*w++ = env_hex[c & 0xf];
		} else {
			*w++ = (char)c;
		}
	}
	out->len = (size_t)(w - out->data);
	out->data[out->len] = '\0';
	return 0;
}

static int
env_put_u64(struct buf *out, uint64_t v)
{
	return buf_printf(out, " %llu", (unsigned long long)v);
}

static int
env_put_time(struct buf *out, time_t t)
{
	if (t < 0)
		return env_einval();
	return env_put_u64(out, (uint64_t)t);
}

static int
env_put_word(struct buf *out, const char *w)
{
	return buf_printf(out, " %s", w);
}

static int
enc_version(struct buf *out, const struct queue_env *e, const struct env_rec *r)
{
	(void)r;
	return env_put_u64(out, queue_env_version(e));
}

static int
enc_id(struct buf *out, const struct queue_env *e, const struct env_rec *r)
{
	(void)r;
	if (!queue_id_valid(e->id))
		return env_einval();
	return env_put_word(out, e->id);
}

static int
enc_str(struct buf *out, const struct queue_env *e, const struct env_rec *r)
{
	return env_put_str(out, (const char *)e + r->off, r->size - 1);
}

static int
enc_time(struct buf *out, const struct queue_env *e, const struct env_rec *r)
{
	time_t t;

	memcpy(&t, (const char *)e + r->off, sizeof(t));
	return env_put_time(out, t);
}

static int
enc_dsn(struct buf *out, const struct queue_env *e, const struct env_rec *r)
{
	(void)r;
	if ((unsigned)e->ret >= ENV_NELEM(env_ret_names))
		return env_einval();
	if (env_put_word(out, env_ret_names[e->ret]) != 0)
		return -1;
	return env_put_str(out, e->envid, QUEUE_ENVID_MAX);
}

static int
enc_body(struct buf *out, const struct queue_env *e, const struct env_rec *r)
{
	(void)r;
	return buf_printf(out, " %s %d", e->body_8bit ? "8BITMIME" : "7BIT",
	    e->smtputf8 ? 1 : 0);
}

/* T REQUIRETLS TLS-REQUIRED-NO: 0 or 1 each; version 3 only */
static int
enc_tls(struct buf *out, const struct queue_env *e, const struct env_rec *r)
{
	(void)r;
	return buf_printf(
	    out, " %d %d", e->requiretls ? 1 : 0, e->tls_required_no ? 1 : 0);
}

static int
enc_size(struct buf *out, const struct queue_env *e, const struct env_rec *r)
{
	(void)r;
	return env_put_u64(out, e->size);
}

static int
env_put_notify(struct buf *out, unsigned notify)
{
	const char *sep = " ";
	size_t i;

	if (notify > 0xf)
		return env_einval();
	if (notify == 0)
		return env_put_word(out, "-");
	for (i = 0; i < 4; i++) {
		if ((notify & env_notify_bits[i]) == 0)
			continue;
		if (buf_printf(out, "%s%s", sep, env_notify_names[i]) != 0)
			return -1;
		sep = ",";
	}
	return 0;
}

static int
env_put_rcpt(struct buf *out, const struct queue_rcpt *rc, unsigned version)
{
	const char *st = queue_rcpt_state_name(rc->state);

	if (rc->addr[0] == '\0' || st == NULL || rc->code < 0 ||
	    rc->code > 999 ||
	    (unsigned)rc->dsn_owed >= ENV_NELEM(env_owed_names))
		return env_einval();
	if (buf_append(out, "r", 1) != 0 ||
	    env_put_str(out, rc->addr, QUEUE_ADDR_MAX) != 0 ||
	    env_put_notify(out, rc->notify) != 0 ||
	    env_put_str(out, rc->orcpt_type, QUEUE_ORCPT_TYPE_MAX) != 0 ||
	    env_put_str(out, rc->orcpt, QUEUE_ORCPT_MAX) != 0 ||
	    env_put_word(out, st) != 0 || env_put_u64(out, rc->attempts) != 0 ||
	    env_put_time(out, rc->next_try) != 0 ||
	    env_put_time(out, rc->last_try) != 0 ||
	    env_put_u64(out, (uint64_t)rc->code) != 0 ||
	    env_put_str(out, rc->enh, QUEUE_ENH_MAX) != 0 ||
	    env_put_str(out, rc->text, QUEUE_TEXT_MAX) != 0)
		return -1;
	if (version >= 2 &&
	    env_put_word(out, env_owed_names[rc->dsn_owed]) != 0)
		return -1;
	return buf_append(out, "\n", 1);
}

/* The recipient records, all of them, on behalf of the 'r' entry. */
static int
enc_rcpts(struct buf *out, const struct queue_env *e, const struct env_rec *r)
{
	unsigned version = queue_env_version(e);
	size_t i;

	(void)r;
	if (e->nrcpt == 0 || e->nrcpt > QUEUE_RCPT_MAX || e->rcpt == NULL)
		return env_einval();
	for (i = 0; i < e->nrcpt; i++)
		if (env_put_rcpt(out, &e->rcpt[i], version) != 0)
			return -1;
	return 0;
}

static int
enc_end(struct buf *out, const struct queue_env *e, const struct env_rec *r)
{
	(void)r;
	return env_put_u64(out, e->nrcpt);
}

unsigned long
queue_env_peek_version(const char *p, size_t n)
{
	unsigned long v = 0;
	size_t i;

	if (n < 4 || p[0] != 'V' || p[1] != ' ' || p[2] < '1' || p[2] > '9')
		return 0;
	for (i = 2; i < n && i < 12 && p[i] >= '0' && p[i] <= '9'; i++)
		v = v * 10 + (unsigned long)(p[i] - '0');
	return i < n && p[i] == '\n' ? v : 0;
}

/* ---- decoding: errors and fields ----------------------------------------- */

static int PRINTF_LIKE(2, 3) dec_fail(struct env_dec *d, const char *fmt, ...)
{
	char why[160];
	va_list ap;

	/* an error message: cut to fit, it still names the line */
	va_start(ap, fmt);
	str_vfmt_cut(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (d->err != NULL)
		str_fmt_cut(d->err, d->errlen, "line %u: %s", d->line, why);
	errno = EINVAL;
	return -1;
}

static int
dec_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1; /* upper case is not canonical */
}

/* One \xHH escape at s (n bytes left) into *out; whole: the field is it. */
static int
dec_escape(struct env_dec *d, const char *s, size_t n, bool whole, char *out)
{
	int hi, lo;
	unsigned char c;

	if (n < 4 || s[1] != 'x' || (hi = dec_hex(s[2])) < 0 ||
	    (lo = dec_hex(s[3])) < 0)
		return dec_fail(d, "bad escape in record '%c'", d->type);
	c = (unsigned char)(hi << 4 | lo);
	if (c == 0)
		return dec_fail(d, "NUL byte in record '%c'", d->type);
	if (!env_must_escape(c) && !(whole && c == '-'))
		return dec_fail(d, "needless escape in record '%c'", d->type);
	*out = (char)c;
	return 0;
}

/* Field i unescaped into dst (size bytes with the NUL); "-" is "". */
static int
dec_str(struct env_dec *d, size_t i, char *dst, size_t size, const char *what)
{
	const char *s = d->f[i];
	size_t n = d->flen[i], k = 0, o = 0;

	if (n == 1 && s[0] == '-') {
		dst[0] = '\0';
		return 0;
	}
	while (k < n) {
		if (o + 1 >= size)
			return dec_fail(d,
			    "%s of record '%c' longer than %zu "
			    "octets",
			    what, d->type, size - 1);
		if (s[k] == '\\') {
			if (dec_escape(d, s + k, n - k, n == 4, &dst[o]) != 0)
				return -1;
			k += 4;
		} else {
			dst[o] = s[k++]; /* dec_line refused controls */
		}
		o++;
	}
	dst[o] = '\0';
	return 0;
}

/* Field i as a canonical decimal number no greater than max. */
static int
dec_u64(struct env_dec *d, size_t i, uint64_t max, uint64_t *out)
{
	const char *s = d->f[i];
	size_t n = d->flen[i];

	if ((n > 1 && s[0] == '0') || str_to_u64(s, n, out) != 0 || *out > max)
		return dec_fail(d, "bad number in record '%c'", d->type);
	return 0;
}

static int
dec_time_field(struct env_dec *d, size_t i, time_t *out)
{
	uint64_t v;

	if (dec_u64(d, i, ENV_TIME_MAX, &v) != 0)
		return -1;
	*out = (time_t)v;
	return 0;
}

static bool
dec_is(const struct env_dec *d, size_t i, const char *word)
{
	size_t n = strlen(word);

	return d->flen[i] == n && memcmp(d->f[i], word, n) == 0;
}

/* Field i as one of words[0..n); -1 when none. */
static int
dec_word(const struct env_dec *d, size_t i, const char *const *words, size_t n)
{
	size_t k;

	for (k = 0; k < n; k++)
		if (dec_is(d, i, words[k]))
			return (int)k;
	return -1;
}

/* ---- decoding: records --------------------------------------------------- */

static int
dec_version(struct env_dec *d, struct queue_env *e, const struct env_rec *r)
{
	uint64_t v;

	(void)r;
	if (dec_u64(d, 0, UINT32_MAX, &v) != 0)
		return -1;
	if (v > QUEUE_ENV_VERSION) {
		/* a newer tern wrote it: refused, never taken for damage */
		d->newer = true;
		return dec_fail(d,
		    "envelope version %llu is newer than this tern reads (%d)",
		    (unsigned long long)v, QUEUE_ENV_VERSION);
	}
	if (v < 1)
		return dec_fail(
		    d, "unsupported version %llu", (unsigned long long)v);
	e->version = (unsigned)v;
	return 0;
}

static int
dec_id(struct env_dec *d, struct queue_env *e, const struct env_rec *r)
{
	(void)r;
	if (d->flen[0] != QUEUE_ID_LEN)
		return dec_fail(d, "bad queue id");
	memcpy(e->id, d->f[0], QUEUE_ID_LEN);
	e->id[QUEUE_ID_LEN] = '\0';
	if (!queue_id_valid(e->id))
		return dec_fail(d, "bad queue id");
	return 0;
}

static int
dec_strrec(struct env_dec *d, struct queue_env *e, const struct env_rec *r)
{
	return dec_str(d, 0, (char *)e + r->off, r->size, "field");
}

static int
dec_time(struct env_dec *d, struct queue_env *e, const struct env_rec *r)
{
	time_t t;

	if (dec_time_field(d, 0, &t) != 0)
		return -1;
	memcpy((char *)e + r->off, &t, sizeof(t));
	return 0;
}

static int
dec_dsn(struct env_dec *d, struct queue_env *e, const struct env_rec *r)
{
	int ret = dec_word(d, 0, env_ret_names, ENV_NELEM(env_ret_names));

	(void)r;
	if (ret < 0)
		return dec_fail(d, "bad DSN RET");
	e->ret = (enum smtp_ret)ret;
	return dec_str(d, 1, e->envid, sizeof(e->envid), "ENVID");
}

static int
dec_body(struct env_dec *d, struct queue_env *e, const struct env_rec *r)
{
	(void)r;
	if (!dec_is(d, 0, "7BIT") && !dec_is(d, 0, "8BITMIME"))
		return dec_fail(d, "bad body type");
	if (!dec_is(d, 1, "0") && !dec_is(d, 1, "1"))
		return dec_fail(d, "bad SMTPUTF8 flag");
	e->body_8bit = dec_is(d, 0, "8BITMIME");
	e->smtputf8 = dec_is(d, 1, "1");
	return 0;
}

static int
dec_tls(struct env_dec *d, struct queue_env *e, const struct env_rec *r)
{
	(void)r;
	if ((!dec_is(d, 0, "0") && !dec_is(d, 0, "1")) ||
	    (!dec_is(d, 1, "0") && !dec_is(d, 1, "1")))
		return dec_fail(d, "bad TLS flags");
	e->requiretls = dec_is(d, 0, "1");
	e->tls_required_no = dec_is(d, 1, "1");
	return 0;
}

static int
dec_size(struct env_dec *d, struct queue_env *e, const struct env_rec *r)
{
	(void)r;
	return dec_u64(d, 0, UINT64_MAX, &e->size);
}

/* "-" or names from NEVER,SUCCESS,FAILURE,DELAY, in that order, by ','. */
static int
dec_notify(struct env_dec *d, size_t i, unsigned *out)
{
	const char *s = d->f[i], *end = s + d->flen[i];
	size_t k = 0;

	*out = 0;
	if (dec_is(d, i, "-"))
		return 0;
	while (s < end) {
		const char *c = memchr(s, ',', (size_t)(end - s));
		size_t n = (size_t)((c != NULL ? c : end) - s);

		while (k < 4 && (strlen(env_notify_names[k]) != n ||
				    memcmp(s, env_notify_names[k], n) != 0))
			k++;
		if (k == 4 || (c != NULL && c + 1 == end))
			return dec_fail(d, "bad NOTIFY");
		*out |= env_notify_bits[k++];
		s = c != NULL ? c + 1 : end;
	}
	return 0;
}

/* r ADDR NOTIFY ORCPT-TYPE ORCPT STATE ATTEMPTS NEXT LAST CODE ENH TEXT,
 * and in version 2 OWED */
static int
dec_rcpt_fields(struct env_dec *d, struct queue_rcpt *rc)
{
	uint64_t attempts, code;
	int st, owed;

	if (dec_is(d, 0, "-"))
		return dec_fail(d, "empty recipient address");
	if (dec_str(d, 0, rc->addr, sizeof(rc->addr), "address") != 0 ||
	    dec_notify(d, 1, &rc->notify) != 0 ||
	    dec_str(d, 2, rc->orcpt_type, sizeof(rc->orcpt_type),
		"ORCPT type") != 0 ||
	    dec_str(d, 3, rc->orcpt, sizeof(rc->orcpt), "ORCPT") != 0)
		return -1;
	st = dec_word(d, 4, env_state_names, ENV_NELEM(env_state_names));
	if (st < 0)
		return dec_fail(d, "bad recipient state");
	rc->state = (enum queue_rcpt_state)st;
	if (dec_u64(d, 5, UINT32_MAX, &attempts) != 0 ||
	    dec_time_field(d, 6, &rc->next_try) != 0 ||
	    dec_time_field(d, 7, &rc->last_try) != 0 ||
	    dec_u64(d, 8, 999, &code) != 0 ||
	    dec_str(d, 9, rc->enh, sizeof(rc->enh), "enhanced code") != 0 ||
	    dec_str(d, 10, rc->text, sizeof(rc->text), "reply text") != 0)
		return -1;
	rc->attempts = (unsigned)attempts;
	rc->code = (int)code;
	if (d->nf > ENV_RCPT_FIELDS_V1) {
		owed =
		    dec_word(d, 11, env_owed_names, ENV_NELEM(env_owed_names));
		if (owed < 0)
			return dec_fail(d, "bad owed DSN");
		rc->dsn_owed = (enum queue_dsn_owed)owed;
	}
	return 0;
}

static int
dec_rcpt(struct env_dec *d, struct queue_env *e, const struct env_rec *r)
{
	(void)r;
	if (env_grow(e) != 0 && errno == E2BIG)
		return dec_fail(d, "more than %d recipients", QUEUE_RCPT_MAX);
	if (e->nrcpt == e->rcpt_cap)
		return dec_fail(d, "out of memory at recipient %zu", e->nrcpt);
	memset(&e->rcpt[e->nrcpt], 0, sizeof(e->rcpt[0]));
	if (dec_rcpt_fields(d, &e->rcpt[e->nrcpt]) != 0)
		return -1;
	e->nrcpt++;
	return 0;
}

static int
dec_end(struct env_dec *d, struct queue_env *e, const struct env_rec *r)
{
	uint64_t n;

	(void)r;
	if (dec_u64(d, 0, QUEUE_RCPT_MAX, &n) != 0)
		return -1;
	if (n != e->nrcpt)
		return dec_fail(d, "END says %llu recipients, found %zu",
		    (unsigned long long)n, e->nrcpt);
	/* canonical: the oldest version that holds it (2: an owed DSN,
	   3: a TLS flag) */
	if (e->version != queue_env_version(e))
		return dec_fail(d, "version %u for what version %u holds",
		    e->version, queue_env_version(e));
	return 0;
}

#define ENV_STR(t, m)                                                          \
	{                                                                      \
		t, 1, enc_str, dec_strrec, offsetof(struct queue_env, m),      \
		    sizeof(((struct queue_env *)0)->m)                         \
	}
#define ENV_TIME(t, m)                                                         \
	{                                                                      \
		t, 1, enc_time, dec_time, offsetof(struct queue_env, m),       \
		    sizeof(time_t)                                             \
	}

/* The records in the one order they are written and accepted in. */
static const struct env_rec env_recs[] = {
    {'V', 1, enc_version, dec_version, 0, 0},
    {'I', 1, enc_id, dec_id, 0, 0},
    ENV_TIME('C', created),
    ENV_STR('S', sender),
    {'D', 2, enc_dsn, dec_dsn, 0, 0},
    {'B', 2, enc_body, dec_body, 0, 0},
    {'T', 2, enc_tls, dec_tls, 0, 0}, /* version 3 only */
    {'Z', 1, enc_size, dec_size, 0, 0},
    ENV_STR('H', helo),
    ENV_STR('A', ip),
    ENV_STR('U', auth),
    ENV_STR('P', proto),
    ENV_TIME('N', next_try),
    ENV_TIME('W', warned),
    {'r', ENV_FIELDS_MAX, enc_rcpts, dec_rcpt, 0, 0},
    {'E', 1, enc_end, dec_end, 0, 0},
};
#define ENV_NRECS (sizeof(env_recs) / sizeof(env_recs[0]))

/* ---- encoding: the file -------------------------------------------------- */

/* Is r a record that files of this version do not have? */
static bool
env_rec_absent(const struct env_rec *r, unsigned version)
{
	return r->type == 'T' && version < 3;
}

static int
env_encode_all(const struct queue_env *env, struct buf *out)
{
	const struct env_rec *r;

	for (r = env_recs; r < env_recs + ENV_NRECS; r++) {
		if (env_rec_absent(r, queue_env_version(env)))
			continue;
		if (r->type == 'r') { /* writes whole lines itself */
			if (r->enc(out, env, r) != 0)
				return -1;
			continue;
		}
		if (buf_append(out, &r->type, 1) != 0 ||
		    r->enc(out, env, r) != 0 || buf_append(out, "\n", 1) != 0)
			return -1;
	}
	return 0;
}

int
queue_env_encode(const struct queue_env *env, struct buf *out)
{
	size_t old = out->len;
	int saved;

	if (env_encode_all(env, out) == 0)
		return 0;
	saved = errno;
	out->len = old;
	if (out->data != NULL)
		out->data[old] = '\0';
	errno = saved;
	return -1;
}

/* ---- decoding: the file -------------------------------------------------- */

/* Split the next line into d->type and d->f[]; d->p moves past it. */
static int
dec_line(struct env_dec *d)
{
	const char *nl = memchr(d->p, '\n', (size_t)(d->end - d->p));
	const char *s, *q;

	d->line++;
	if (nl == NULL)
		return dec_fail(d, "no newline (file cut short)");
	if (nl - d->p < 3 || d->p[1] != ' ')
		return dec_fail(d, "not a record");
	d->type = d->p[0];
	d->nf = 0;
	for (s = q = d->p + 2; q <= nl; q++) {
		if (q < nl && *q != ' ') {
			if ((unsigned char)*q < 0x20 || *q == 0x7f)
				return dec_fail(d, "control byte 0x%02x",
				    (unsigned char)*q);
			continue;
		}
		if (q == s)
			return dec_fail(d, "empty field");
		if (d->nf == ENV_FIELDS_MAX)
			return dec_fail(d, "too many fields");
		d->f[d->nf] = s;
		d->flen[d->nf++] = (size_t)(q - s);
		s = q + 1;
	}
	d->p = nl + 1;
	return 0;
}

static const struct env_rec *
dec_find(char type, size_t *idx)
{
	size_t i;

	for (i = 0; i < ENV_NRECS; i++)
		if (env_recs[i].type == type) {
			*idx = i;
			return &env_recs[i];
		}
	return NULL;
}

/* Is the record d->type allowed at *pos?  Moves *pos past it. */
static const struct env_rec *
dec_order(struct env_dec *d, const struct queue_env *e, size_t *pos)
{
	const struct env_rec *r;
	size_t idx;
	char t = d->type;

	if ((r = dec_find(t, &idx)) == NULL) {
		(void)dec_fail(d,
		    (unsigned char)t > 0x20 && t != 0x7f
			? "unknown record type '%c'"
			: "unknown record type 0x%02x",
		    (unsigned char)t);
		return NULL;
	}
	if (env_recs[*pos].type == 'r' && e->nrcpt > 0 && t != 'r')
		(*pos)++; /* the recipient run is over */
	if (env_rec_absent(&env_recs[*pos], e->version))
		(*pos)++; /* V came first: the version is known */
	if (idx < *pos) {
		(void)dec_fail(d, "duplicate record '%c'", t);
		return NULL;
	}
	if (idx > *pos) {
		(void)dec_fail(d, "record '%c' missing before '%c'",
		    env_recs[*pos].type, t);
		return NULL;
	}
	if (t != 'r')
		(*pos)++;
	return r;
}

/* Fields of record r in an envelope of out's version. */
static size_t
env_nfields(const struct env_rec *r, const struct queue_env *out)
{
	if (r->type == 'r' && out->version < 2)
		return ENV_RCPT_FIELDS_V1;
	return r->nfields;
}

int
queue_env_decode(
    const char *p, size_t n, struct queue_env *out, char *err, size_t errlen)
{
	struct env_dec d = {.p = p, .end = p + n, .err = err, .errlen = errlen};
	const struct env_rec *r;
	size_t pos = 0;

	queue_env_init(out);
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	while (d.p < d.end && pos < ENV_NRECS) {
		if (dec_line(&d) != 0 || (r = dec_order(&d, out, &pos)) == NULL)
			goto fail;
		if (d.nf != env_nfields(r, out)) {
			(void)dec_fail(&d,
			    "record '%c' has %zu fields, not "
			    "%zu",
			    r->type, d.nf, env_nfields(r, out));
			goto fail;
		}
		if (r->dec(&d, out, r) != 0)
			goto fail;
	}
	d.line++;
	if (pos < ENV_NRECS) {
		(void)dec_fail(&d, "record '%c' missing (file cut short)",
		    env_recs[pos].type);
		goto fail;
	}
	if (d.p < d.end) {
		(void)dec_fail(&d, "data after the END record");
		goto fail;
	}
	return 0;
fail:
	queue_env_free(out);
	errno = d.newer ? ENOTSUP : EINVAL;
	return -1;
}
