/*
 * util: bounded byte buffers, key=value logging, ids, small helpers.
 *
 * Owns: struct buf, the log functions and their format, ids, the str_*
 * helpers, xmalloc/fatal/panic.  May call: libc only (stderr, the clock and
 * getrandom for ids).  Every module may call it.
 *
 * The buffer type is the one growable string of the tree: every buffer has
 * a maximum, growth is overflow-checked, and an append that would pass the
 * maximum fails instead of truncating.  Logging writes one line per event
 * to stderr in key=value form; client-supplied text must go through
 * log_sanitize() first.
 */
#ifndef TERN_UTIL_H
#define TERN_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WUR		  __attribute__((warn_unused_result))
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#define NORETURN	  __attribute__((noreturn))

/* ---- bounded buffer ---------------------------------------------------- */

struct buf {
	char *data; /* always NUL-terminated when data != NULL */
	size_t len; /* bytes in use, not counting the NUL */
	size_t cap; /* allocated, including room for the NUL */
	size_t max; /* largest len allowed; appends past it fail */
};

void buf_init(struct buf *b, size_t max);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);			  /* len = 0, keeps memory */
int buf_reserve(struct buf *b, size_t extra) WUR; /* 0, or -1 (max/ENOMEM) */
int buf_append(struct buf *b, const void *p, size_t n) WUR;
int buf_append_str(struct buf *b, const char *s) WUR;
int buf_printf(struct buf *b, const char *fmt, ...) WUR PRINTF_LIKE(2, 3);
int buf_vprintf(struct buf *b, const char *fmt, va_list ap) WUR;
void buf_consume(struct buf *b, size_t n); /* drop n bytes at the front */
void buf_wipe(struct buf *b);		   /* explicit_bzero, then free */

/* ---- logging ----------------------------------------------------------- */

enum log_level {
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERR
};

void log_init(const char *progname, enum log_level min);
/* The least level logged, from any thread at any time (a reload);
 * log.level's names: "debug", "info", "warn", anything else "err". */
void log_set_level(enum log_level min);
enum log_level log_level_from_name(const char *name);
enum log_format { LOG_FORMAT_KV, LOG_FORMAT_JSON };
void log_set_format(enum log_format f); /* before threads start */
/*
 * A sink takes a line instead of stderr: body is what to send (the fields,
 * or with LOG_FORMAT_JSON the JSON object, no '\n'), kv the fields as
 * key=value text.  It returns false to have the line written to stderr.
 * Called from any thread, so it must be thread-safe and must not log.
 */
typedef bool (*log_sink_fn)(enum log_level lvl, const char *body,
    size_t bodylen, const char *kv, size_t kvlen);
void log_set_sink(log_sink_fn fn);
/* One line: "<time> <prog>[pid]: <level> <fields>\n".  fields are key=value. */
void log_msg(enum log_level lvl, const char *fmt, ...) PRINTF_LIKE(2, 3);
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_err(...)   log_msg(LOG_LEVEL_ERR, __VA_ARGS__)
/* Start-up failures: log and exit(1).  fatal() appends strerror(errno). */
NORETURN void fatal(const char *fmt, ...) PRINTF_LIKE(1, 2);
NORETURN void fatalx(const char *fmt, ...) PRINTF_LIKE(1, 2);
/* A broken invariant: log and abort(). */
NORETURN void panic(const char *fmt, ...) PRINTF_LIKE(1, 2);

/*
 * Copy client text for a log line: control bytes, space, '"', '\\', '='
 * and bytes >= 0x7f become \xHH, so a value never breaks the key=value
 * form.  The result is cut to fit outlen (ending in "..." when cut) and is
 * always NUL-terminated.  Returns out.
 */
char *log_sanitize(char *out, size_t outlen, const char *in, size_t inlen);
/* The same, but spaces stay: for values the caller puts between quotes. */
char *log_quote(char *out, size_t outlen, const char *in, size_t inlen);

/* ---- ids and time ------------------------------------------------------ */

#define ID_LEN 16 /* hex characters */
/* 16 hex chars: 32 bits of seconds + 32 random bits, sortable by time. */
void id_new(char out[ID_LEN + 1]);
uint64_t time_now_ms(void); /* CLOCK_MONOTONIC */
uint64_t time_now_us(void); /* CLOCK_MONOTONIC, for latencies */
/* RFC 5322 date-time of t (local time zone), e.g. "Sat, 28 Nov 2026 21:08:36
 * +0000". */
size_t time_rfc5322(char *out, size_t outlen, int64_t t);

/* ---- small helpers ----------------------------------------------------- */

void *xmalloc(size_t n); /* panic on ENOMEM */
void *xcalloc(size_t n, size_t sz);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/*
 * Formatting into a fixed buffer: one of two policies, chosen by what the
 * text is (docs/style.md, "Memory and strings").
 *
 * str_fmt, str_vfmt: a value that a cut would make wrong (a path, an
 * address, a protocol argument, an id, a number).  0, or -1 when the result
 * does not fit with its NUL, on an encoding error, or when a %c put a NUL
 * inside it; on -1 out holds "" (outlen > 0), so no part of a value can be
 * used by mistake.
 *
 * str_fmt_cut, str_vfmt_cut: text a person reads (an error message, a log
 * detail, a reply text), where a shorter text is still useful.  A text that
 * does not fit is cut and ends in "..." (shortened to "." or ".." when outlen
 * is 2 or 3); the cut never splits a UTF-8 sequence.  An encoding error
 * gives "".  out is always NUL-terminated when outlen > 0.
 */
int str_fmt(char *out, size_t outlen, const char *fmt, ...) WUR
    PRINTF_LIKE(3, 4);
int str_vfmt(char *out, size_t outlen, const char *fmt, va_list ap) WUR
    PRINTF_LIKE(3, 0);
void str_fmt_cut(char *out, size_t outlen, const char *fmt, ...)
    PRINTF_LIKE(3, 4);
void str_vfmt_cut(char *out, size_t outlen, const char *fmt, va_list ap)
    PRINTF_LIKE(3, 0);
/* Bounded copy; 0 ok, -1 if src (srclen) does not fit with its NUL. */
int str_copy(char *out, size_t outlen, const char *src, size_t srclen) WUR;
void str_lower(char *s);
bool str_case_eq(
    const char *a, size_t alen, const char *b); /* ASCII, b NUL-term */
/*
 * Clean-up on an error path: close or unlink, keeping errno (the error
 * being reported).  Only for descriptors with no data to lose (read-only,
 * or a file already being abandoned) and names being taken back.
 */
void fd_close_quiet(int fd);
void unlinkat_quiet(int dir_fd, const char *name);
/* Parse a decimal uint64 from exactly s[0..len); 0 ok, -1 on junk/overflow. */
int str_to_u64(const char *s, size_t len, uint64_t *out) WUR;

#endif
