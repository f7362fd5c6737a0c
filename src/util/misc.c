/*
 * misc: ids, clocks, allocation that cannot fail silently, and bounded
 * string helpers that replace the banned libc functions.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

#include "util/util.h"

void
id_new(char out[ID_LEN + 1])
{
	uint32_t rnd = 0;
	uint32_t secs = (uint32_t)time(NULL);

	if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		rnd = (uint32_t)random();
	snprintf(out, ID_LEN + 1, "%08x%08x", (unsigned)secs, (unsigned)rnd);
}

uint64_t
time_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t
time_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

size_t
time_rfc5322(char *out, size_t outlen, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	localtime_r(&tt, &tm);
	/* strftime's %a/%b follow the C locale, which is what RFC 5322 wants */
	return strftime(out, outlen, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		panic("event=oom size=%zu", n);
	return p;
}

void *
xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz ? sz : 1);

	if (p == NULL)
		panic("event=oom size=%zu", n * sz);
	return p;
}

char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

int
str_vfmt(char *out, size_t outlen, const char *fmt, va_list ap)
{
	int n = vsnprintf(out, outlen, fmt, ap);

	/* strlen: a NUL from %c would cut the value without a word */
	if (n >= 0 && (size_t)n < outlen && strlen(out) == (size_t)n)
		return 0;
	if (outlen > 0)
		out[0] = '\0';
	return -1;
}

int
str_fmt(char *out, size_t outlen, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = str_vfmt(out, outlen, fmt, ap);
	va_end(ap);
	return r;
}

/* A UTF-8 continuation byte (10xxxxxx): no character starts there. */
static bool
utf8_cont(char c)
{
	return ((unsigned char)c & 0xc0) == 0x80;
}

void
str_vfmt_cut(char *out, size_t outlen, const char *fmt, va_list ap)
{
	static const char mark[] = "...";
	size_t keep, back, m;
	int n;

	if (outlen == 0)
		return;
	n = vsnprintf(out, outlen, fmt, ap);
	if (n < 0) {
		out[0] = '\0';
		return;
	}
	if ((size_t)n < outlen)
		return;
	/* cut: the marker first, as much of it as fits before the NUL */
	m = outlen - 1 < sizeof(mark) - 1 ? outlen - 1 : sizeof(mark) - 1;
	keep = outlen - 1 - m;
	/*
	 * out[keep] is the first byte dropped; if it continues a character,
	 * drop that character's earlier bytes too (at most 3: RFC 3629 4).
	 */
	for (back = 0; back < 3 && keep > 0 && utf8_cont(out[keep]); back++)
		keep--;
	if (utf8_cont(out[keep]) && keep > 0)
		keep = outlen - 1 - m; /* not UTF-8: a byte cut is all we can */
	memcpy(out + keep, mark, m);
	out[keep + m] = '\0';
}

void
str_fmt_cut(char *out, size_t outlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	str_vfmt_cut(out, outlen, fmt, ap);
	va_end(ap);
}

int
str_copy(char *out, size_t outlen, const char *src, size_t srclen)
{
	if (outlen == 0 || srclen >= outlen)
		return -1;
	memcpy(out, src, srclen);
	out[srclen] = '\0';
	return 0;
}

void
str_lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

static char
ascii_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

bool
str_case_eq(const char *a, size_t alen, const char *b)
{
	size_t i;

	for (i = 0; i < alen; i++)
		if (b[i] == '\0' || ascii_lower(a[i]) != ascii_lower(b[i]))
			return false;
	return b[alen] == '\0';
}

int
str_to_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0 || len > 20)
		return -1;
	for (i = 0; i < len; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return -1;
		d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

void
fd_close_quiet(int fd)
{
	int saved = errno;

	if (fd >= 0)
		(void)close(fd);
	errno = saved;
}

void
unlinkat_quiet(int dir_fd, const char *name)
{
	int saved = errno;

	(void)unlinkat(dir_fd, name, 0);
	errno = saved;
}
