/*
 * cli: the private interface of the tern command's own files.  main.c
 * (user, alias, config) calls the entry points below; sendmail.c holds the
 * sendmail(1) and mailq(1) personalities, queue.c the "tern queue"
 * commands and the control-socket client (its answers read with
 * util/json.h), dkim.c and dmarc.c those commands,
 * doctor.c "tern doctor", config.c "tern config check" (its DNS and DKIM check
 * shared with dkim.c through cli/resolve.h).  The pure parts (flag parser,
 * message reader, recipient extraction, exit codes) are declared here
 * too, for tests/unit/test_sendmail.c.
 *
 * Owns: the tern command.  May call: addr, auth, conf, confcheck, deliver
 * (Maildir creation, the resolver), mailauth (DKIM keys, the SPF evaluator, the
 * DMARC record parser), queue (ids), smtp (reply parsing), table, tls
 * (where the self-signed pair lives), util; reaches a
 * running ternd only through control.sock and public/submit.sock.
 *
 * Exit codes are sysexits(3): 0, 64 EX_USAGE, 65 EX_DATAERR, 69
 * EX_UNAVAILABLE, 75 EX_TEMPFAIL (ternd not reachable, or a 4xx), 76
 * EX_PROTOCOL (ternd answered nonsense), 1 for a refusal by the queue.
 */
#ifndef TERN_CLI_H
#define TERN_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr/addr.h"
#include "conf/conf.h"
#include "smtp/smtp.h"
#include "util/util.h"
#include "util/json.h"

struct conf;

/* ---- entry points for main.c ------------------------------------------ */

/* Used for the sendmail/mailq personalities when $TERN_CONFIG is unset. */
#ifndef TERN_SYSCONF
#define TERN_SYSCONF CONF_SYSTEM_FILE
#endif

enum cli_persona { CLI_AS_SENDMAIL, CLI_AS_MAILQ };

/* argv[0] is "sendmail" or "mailq": argv[1..] are sendmail flags only. */
int cli_persona_main(enum cli_persona p, int argc, char **argv);
/* "tern ... sendmail FLAGS [RCPT...]": argv[0] is "sendmail". */
int cli_sendmail(const struct conf *c, int argc, char **argv);
/* "tern ... mailq": argv[0] is "mailq". */
int cli_mailq(const struct conf *c, int argc, char **argv);
/* "tern ... queue VERB ...": argv[0] is "queue". */
int cli_queue(const struct conf *c, int argc, char **argv);
/* "tern ... log ID [--file PATH|-] [--directory DIR]" (logcmd.c). */
int cli_log(const struct conf *c, int argc, char **argv);
/* "tern ... dkim keygen|list ...": argv[0] is "dkim" (dkim.c). */
int cli_dkim(const struct conf *c, int argc, char **argv);
/* "tern ... dmarc report [--dry-run]": argv[0] is "dmarc" (dmarc.c). */
int cli_dmarc(const struct conf *c, int argc, char **argv);
/* "tern ... tlsrpt send --now" (tlsrpt.c). */
int cli_tlsrpt(const struct conf *c, int argc, char **argv);
/* "tern ... doctor [DOMAIN...] [--address IP] [--json]" (doctor.c). */
int cli_doctor(const struct conf *c, int argc, char **argv);
/* tern config check (config.c): run before the configuration is loaded,
 * since checking a broken one is its point; argc/argv are main's. */
bool cli_is_config_check(int argc, char **argv);
int cli_config_check(int argc, char **argv);
/* As root with "user" configured, become that user (main.c): 0, or 1
 * after a message. */
int cli_become_user(const struct conf *c);

/* ---- shared by sendmail.c and queue.c (queue.c) ----------------------- */

#define CLI_SUBMIT_SOCK	 "public/submit.sock" /* under state_dir */
#define CLI_CONTROL_SOCK "control.sock"
#define CLI_TIMEOUT_MS	 (300 * 1000) /* one read or write */

void cli_warnx(const char *fmt, ...) PRINTF_LIKE(1, 2);
/* STATE/name into out; -1 (and a message) if it does not fit. */
int cli_sock_path(
    const struct conf *c, const char *name, char *out, size_t outlen) WUR;
/*
 * Connect to the unix socket path: a descriptor, or -1 after printing
 * "tern: cannot reach ternd at PATH: REASON" followed by tail.
 */
int cli_connect(const char *path, const char *tail) WUR;
/* Write all of p[0..n) (poll + write, CLI_TIMEOUT_MS): 0, or -1 (errno). */
int cli_write_all(int fd, const void *p, size_t n) WUR;
/* Wait until fd is readable: 1, 0 on timeout, -1 (errno). */
int cli_wait_readable(int fd, int timeout_ms) WUR;
/* Copy s to out with control bytes as '?' (text from the network). */
void cli_clean(char *out, size_t outlen, const char *s);
/*
 * Run one control request whose answer is {"ok":true, KEY: integer...}:
 * vals[i] gets keys[i].  0, or the exit code after a message.
 */
int cli_control_ints(const struct conf *c, const char *req,
    const char *const *keys, int64_t *vals, size_t n);
/* Run one control request ("FLUSH"): the exit code; -q uses it too. */
int cli_queue_flush(const struct conf *c, bool quiet);

/*
 * The queue's size and the creation time of its oldest message (LIST over
 * control.sock, queue.c): 0, or the exit code after a message.
 */
int cli_queue_oldest(const struct conf *c, size_t *n, int64_t *oldest);

/* ---- sendmail: the pure parts (sendmail.c) ---------------------------- */

#define SENDMAIL_RCPT_MAX 1000 /* recipients of one message */
#define SENDMAIL_LINE_MAX 998  /* octets of a line without CRLF (RFC 5322) */
#define SENDMAIL_NAME_MAX 256  /* -F full name */

enum sendmail_mode {
	SENDMAIL_MODE_SEND = 0, /* -bm, the default */
	SENDMAIL_MODE_MAILQ,	/* -bp, or argv[0] mailq */
	SENDMAIL_MODE_SMTP,	/* -bs: SMTP on stdin/stdout */
	SENDMAIL_MODE_FLUSH,	/* -q */
	SENDMAIL_MODE_NOOP,	/* -bi (newaliases): nothing to rebuild */
};

struct sendmail_opts {
	enum sendmail_mode mode;
	bool extract;	      /* -t: recipients from To, Cc, Bcc */
	bool dots_ok;	      /* -i, -oi: a lone "." is content */
	bool verbose;	      /* -v: show the SMTP dialogue on stderr */
	const char *from;     /* -f, -r: NULL = the login name */
	const char *fullname; /* -F: NULL = none */
	unsigned notify;      /* -N: SMTP_NOTIFY_* bits, 0 = absent */
	enum smtp_ret ret;    /* -R */
	const char *envid;    /* -V: NULL = absent */
	int body;	      /* -B: 0 by content, 7 (7BIT), 8 (8BITMIME) */
	char **rcpt;	      /* arguments after the options */
	int nrcpt;
};

/*
 * Parse sendmail flags argv[0..argc) (argv[0] is the first flag, not a
 * program name).  Returns 0, or EX_USAGE with err filled.  argv is not
 * changed; o's strings point into it.
 */
int sendmail_parse_args(int argc, char **argv, struct sendmail_opts *o,
    char *err, size_t errlen) WUR;

/* The message reader: stdin bytes in, CRLF text out. */
enum sendmail_read_status {
	SENDMAIL_READ_MORE = 0, /* go on */
	SENDMAIL_READ_END,	/* a lone "." line (without -i): stop reading */
	SENDMAIL_READ_LONG,	/* a line over SENDMAIL_LINE_MAX octets */
	SENDMAIL_READ_BIG,	/* out is full (the message size limit) */
};

struct sendmail_reader {
	struct buf *out;
	bool dots_ok;
	bool cr;	    /* the last byte was a CR (its CRLF written) */
	size_t line_len;    /* octets of the current line so far */
	unsigned long line; /* number of the current line, from 1 */
	enum sendmail_read_status st; /* sticky once not MORE */
};

void sendmail_reader_init(
    struct sendmail_reader *r, struct buf *out, bool dots_ok);
enum sendmail_read_status sendmail_read_feed(
    struct sendmail_reader *r, const char *in, size_t len);
/* At end of input: ends an unterminated last line with CRLF. */
enum sendmail_read_status sendmail_read_finish(struct sendmail_reader *r);

/* The envelope being built: addresses as addr_format() writes them. */
struct sendmail_env {
	char sender[ADDR_PATH_MAX + 1]; /* "" for the null sender <> */
	char **rcpt;			/* nrcpt of them, heap, no duplicates */
	size_t nrcpt;
	bool utf8; /* some address has UTF-8 */
};

void sendmail_env_free(struct sendmail_env *e);
/*
 * Set e->sender from -f's value (NULL: login@domain).  "" and "<>" give
 * the null sender; a bare local part gets "@domain".  Returns 0, or
 * EX_USAGE / EX_DATAERR with err filled.
 */
int sendmail_set_sender(struct sendmail_env *e, const char *from,
    const char *login, const char *domain, char *err, size_t errlen) WUR;
/*
 * Add the addresses of an RFC 5322 address list (a command-line argument
 * "a@b, Ben <c@d>" or a header value), bare local parts qualified with
 * "@domain", duplicates dropped.  Returns 0, or -1 with err (the caller
 * picks the exit code: a bad argument is EX_USAGE, a bad field EX_DATAERR).
 */
int sendmail_add_rcpts(struct sendmail_env *e, const char *list, size_t len,
    const char *domain, char *err, size_t errlen) WUR;
/*
 * Write the message to send into out, from msg (CRLF text): a "From:
 * fullname <sender>" field first when fullname is set and msg has no
 * From; with extract, the addresses of To, Cc and Bcc added to e.  Bcc
 * and Resent-Bcc fields are always left out (as Sendmail and Postfix do).  When
 * the header section stops at a line that is not a field (or the message starts
 * with one), an empty line is put there so the rest is body.  Returns 0, or
 * EX_DATAERR with err.
 */
int sendmail_compose(const char *msg, size_t len, const char *fullname,
    bool extract, const char *domain, struct sendmail_env *e, struct buf *out,
    char *err, size_t errlen) WUR;
/* Exit status for a reply (code, enh); after_data: to the final dot. */
int sendmail_exit_code(int code, const char *enh, bool after_data);

/* The JSON reader moved to util/json.h (ternd's ACME client reads
 * JSON too); included here for the commands that use it. */

#endif
