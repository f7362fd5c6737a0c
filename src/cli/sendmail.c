/*
 * sendmail: the sendmail(1) personality of tern ("tern sendmail", or tern
 * invoked as sendmail or mailq), so that cron, git send-email, PHP's
 * mail() and every Unix program that sends mail work unchanged.
 *
 * The message is read from stdin whole (LF line ends become CRLF; without
 * -i a line that is a lone "." ends it), its header section is checked
 * (-t takes the recipients from To, Cc, Bcc; Bcc fields never go out; -F
 * adds a From field when there is none), then it is handed to ternd over
 * the unix socket STATE/public/submit.sock in plain ESMTP.  ternd knows
 * the calling user from SO_PEERCRED, so no secret is involved here.
 *
 * There is no drop directory: when ternd cannot be reached, or answers
 * 4xx, the message is not sent and the exit status is 75 (EX_TEMPFAIL), so
 * the caller keeps it and reports the failure (cron mails or logs it,
 * most programs show it).  Exit 0 only after ternd's 250 to the final dot,
 * which (docs/design.md, principle 1) means the message is on stable
 * storage.  A connection lost after the dot but before the reply is
 * reported as 75 too: at worst the caller sends the message twice, never
 * zero times.
 *
 * Pure parts (flag parser, message reader, header composition, exit
 * codes) are declared in cli.h and tested in tests/unit/test_sendmail.c.
 *
 * Limits: a line of SENDMAIL_LINE_MAX octets (longer ones are refused,
 * exit 65, never folded); the message of limits.message_size octets;
 * SENDMAIL_RCPT_MAX recipients; a reply of SMTP_REPLY_IN_* octets.
 *
 * Security: tern runs as the calling user, never set-id.  -F and -f
 * values are checked (no control characters: no header injection), and
 * reply texts are cleaned of control characters before they are printed.
 */
#include <errno.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sysexits.h>
#include <unistd.h>

#include "cli/cli.h"
#include "conf/conf.h"

#define SM_CHUNK     65536 /* octets read or stuffed at a time */
#define SM_CMD_MAX   2048  /* a command line with its parameters */
#define SM_IN_MAX    65536 /* unparsed reply octets kept */
#define SM_ENVID_MAX 100   /* RFC 3461 4.4 */

/* ---- flags ------------------------------------------------------------ */

/* Flags that take a value, attached ("-fME") or as the next argument. */
static const char sm_value_flags[] = "BbFfhLNOopRrV";
/* Flags without a value; G, m, n, U are accepted and ignored. */
static const char sm_plain_flags[] = "GimntUv";

static int
sm_usage(char *err, size_t errlen, const char *what, const char *arg)
{
	str_fmt_cut(err, errlen, "%s%s", what, arg);
	return EX_USAGE;
}

/* -N: "never", or a list of success, failure, delay. */
static int
sm_notify(const char *v, unsigned *out)
{
	static const char *const names[] = {
	    "never", "success", "failure", "delay"};
	static const unsigned bits[] = {SMTP_NOTIFY_NEVER, SMTP_NOTIFY_SUCCESS,
	    SMTP_NOTIFY_FAILURE, SMTP_NOTIFY_DELAY};
	unsigned acc = 0;
	size_t k, n;

	while (*v != '\0') {
		n = strcspn(v, ",");
		for (k = 0; k < 4; k++)
			if (strlen(names[k]) == n &&
			    strncasecmp(v, names[k], n) == 0)
				break;
		if (k == 4)
			return -1;
		acc |= bits[k];
		v += n + (v[n] == ',');
	}
	if (acc == 0 || ((acc & SMTP_NOTIFY_NEVER) && acc != SMTP_NOTIFY_NEVER))
		return -1;
	*out = acc;
	return 0;
}

/* Printable ASCII only (-V), or no control characters at all (-F, -f). */
static bool
sm_clean_value(const char *v, bool ascii)
{
	for (; *v != '\0'; v++) {
		unsigned char c = (unsigned char)*v;

		if (c < 0x20 || c == 0x7f || (ascii && (c > 0x7e || c == ' ')))
			return false;
	}
	return true;
}

static int
sm_mode(struct sendmail_opts *o, const char *v, char *err, size_t errlen)
{
	if (strcmp(v, "m") == 0)
		o->mode = SENDMAIL_MODE_SEND;
	else if (strcmp(v, "p") == 0)
		o->mode = SENDMAIL_MODE_MAILQ;
	else if (strcmp(v, "s") == 0)
		o->mode = SENDMAIL_MODE_SMTP;
	else if (strcmp(v, "i") == 0)
		o->mode = SENDMAIL_MODE_NOOP;
	else
		return sm_usage(err, errlen, "unsupported mode -b", v);
	return 0;
}

/* The DSN and body flags -B, -N, -R, -V with their value v. */
static int
sm_apply_dsn(
    struct sendmail_opts *o, char f, const char *v, char *err, size_t errlen)
{
	if (f == 'B') {
		if (strcasecmp(v, "7BIT") != 0 &&
		    strcasecmp(v, "8BITMIME") != 0)
			return sm_usage(err, errlen,
			    "-B: expected 7BIT or 8BITMIME, not ", v);
		o->body = v[0] == '7' ? 7 : 8;
	} else if (f == 'N') {
		if (sm_notify(v, &o->notify) != 0)
			return sm_usage(err, errlen,
			    "-N: expected never, or success,failure,delay, "
			    "not ",
			    v);
	} else if (f == 'R') {
		if (strcasecmp(v, "full") != 0 && strcasecmp(v, "hdrs") != 0)
			return sm_usage(
			    err, errlen, "-R: expected full or hdrs, not ", v);
		o->ret = (v[0] == 'f' || v[0] == 'F') ? SMTP_RET_FULL
						      : SMTP_RET_HDRS;
	} else { /* 'V' */
		if (!sm_clean_value(v, true) || strlen(v) > SM_ENVID_MAX ||
		    v[0] == '\0')
			return sm_usage(err, errlen,
			    "-V: an envelope id is 1 to 100 printable ASCII "
			    "characters",
			    "");
		o->envid = v;
	}
	return 0;
}

/* One flag f with its value v. */
static int
sm_apply(
    struct sendmail_opts *o, char f, const char *v, char *err, size_t errlen)
{
	switch (f) {
	case 'B':
	case 'N':
	case 'R':
	case 'V':
		return sm_apply_dsn(o, f, v, err, errlen);
	case 'b':
		return sm_mode(o, v, err, errlen);
	case 'F':
		if (!sm_clean_value(v, false) || strlen(v) > SENDMAIL_NAME_MAX)
			return sm_usage(err, errlen,
			    "-F: a name without control characters, at most "
			    "256 octets",
			    "");
		o->fullname = v;
		return 0;
	case 'f':
	case 'r':
		if (!sm_clean_value(v, false))
			return sm_usage(
			    err, errlen, "-f: control characters", "");
		o->from = v;
		return 0;
	case 'o':
		if (v[0] == 'i' && v[1] == '\0')
			o->dots_ok = true;
		return 0; /* every other -oX: ignored (-oem, -odb, ...) */
	default:
		return 0; /* -h, -L, -O, -p: ignored */
	}
}

static void
sm_apply_plain(struct sendmail_opts *o, char f)
{
	if (f == 't')
		o->extract = true;
	else if (f == 'i')
		o->dots_ok = true;
	else if (f == 'v')
		o->verbose = true;
}

/* One "-xyz" argument at argv[*k]; may use argv[*k + 1] as a value. */
static int
sm_flag_arg(int argc, char **argv, int *k, struct sendmail_opts *o, char *err,
    size_t errlen)
{
	const char *a = argv[*k];
	char flag[3] = {'-', 0, 0};
	size_t j;

	for (j = 1; a[j] != '\0'; j++) {
		flag[1] = a[j];
		if (strchr(sm_plain_flags, a[j]) != NULL) {
			sm_apply_plain(o, a[j]);
			continue;
		}
		if (a[j] == 'q') { /* -q, -q30m, -qI...: flush once, now */
			o->mode = SENDMAIL_MODE_FLUSH;
			return 0;
		}
		if (strchr(sm_value_flags, a[j]) == NULL)
			return sm_usage(err, errlen, "unknown flag ", flag);
		if (a[j + 1] != '\0')
			return sm_apply(o, a[j], a + j + 1, err, errlen);
		if (*k + 1 >= argc)
			return sm_usage(
			    err, errlen, "a value is needed after ", flag);
		return sm_apply(o, a[j], argv[++*k], err, errlen);
	}
	return 0;
}

int
sendmail_parse_args(
    int argc, char **argv, struct sendmail_opts *o, char *err, size_t errlen)
{
	int k, r;

	memset(o, 0, sizeof(*o));
	o->ret = SMTP_RET_UNSPEC;
	for (k = 0; k < argc; k++) {
		if (strcmp(argv[k], "--") == 0) {
			k++;
			break;
		}
		if (argv[k][0] != '-' || argv[k][1] == '\0')
			break;
		if ((r = sm_flag_arg(argc, argv, &k, o, err, errlen)) != 0)
			return r;
	}
	o->rcpt = argv + k;
	o->nrcpt = argc - k;
	return 0;
}

/* ---- the message reader ----------------------------------------------- */

void
sendmail_reader_init(struct sendmail_reader *r, struct buf *out, bool dots_ok)
{
	memset(r, 0, sizeof(*r));
	r->out = out;
	r->dots_ok = dots_ok;
	r->line = 1;
}

static enum sendmail_read_status
sm_put(struct sendmail_reader *r, const char *p, size_t n)
{
	if (buf_append(r->out, p, n) != 0)
		r->st = SENDMAIL_READ_BIG;
	return r->st;
}

/* The current line ends (at a LF, a CR or the end of input). */
static enum sendmail_read_status
sm_line_end(struct sendmail_reader *r)
{
	if (!r->dots_ok && r->line_len == 1 &&
	    r->out->data[r->out->len - 1] == '.') {
		r->out->data[--r->out->len] = '\0'; /* the "." is no content */
		r->st = SENDMAIL_READ_END;
		return r->st;
	}
	r->line_len = 0;
	r->line++;
	return sm_put(r, "\r\n", 2);
}

enum sendmail_read_status
sendmail_read_feed(struct sendmail_reader *r, const char *in, size_t len)
{
	size_t i = 0, run;

	while (r->st == SENDMAIL_READ_MORE && i < len) {
		if (in[i] == '\n' || in[i] == '\r') {
			/* CRLF is one line end; a bare CR or LF is one too */
			if (!(in[i] == '\n' && r->cr))
				(void)sm_line_end(r);
			r->cr = in[i++] == '\r';
			continue;
		}
		r->cr = false;
		for (run = i; run < len && in[run] != '\n' && in[run] != '\r';)
			run++;
		run -= i;
		if (run > SENDMAIL_LINE_MAX - r->line_len) {
			r->st = SENDMAIL_READ_LONG;
			break;
		}
		r->line_len += run;
		(void)sm_put(r, in + i, run);
		i += run;
	}
	return r->st;
}

enum sendmail_read_status
sendmail_read_finish(struct sendmail_reader *r)
{
	if (r->st == SENDMAIL_READ_MORE && r->line_len > 0)
		(void)sm_line_end(r);
	return r->st;
}

/* ---- envelope --------------------------------------------------------- */

void
sendmail_env_free(struct sendmail_env *e)
{
	size_t k;

	for (k = 0; k < e->nrcpt; k++)
		free(e->rcpt[k]);
	free(e->rcpt);
	e->rcpt = NULL;
	e->nrcpt = 0;
}

/* a with "@domain" when it has none, formatted into out. */
static int
sm_qualify(struct addr *a, const char *domain, char *out, size_t outlen)
{
	if (!a->null && a->domain[0] == '\0') {
		if (str_copy(a->domain, sizeof(a->domain), domain,
			strlen(domain)) != 0)
			return -1;
		str_lower(a->domain);
		a->kind = ADDR_DOMAIN_NAME;
	}
	return addr_format(a, out, outlen) < 0 ? -1 : 0;
}

static void
sm_list_error(const struct addr_list *l, const char *list, size_t len,
    char *err, size_t errlen)
{
	const char *why = l->st == ADDR_LIST_ADDR ? addr_strerror(l->addr_err)
						  : addr_list_strerror(l->st);
	int show = len > 200 ? 200 : (int)len;

	str_fmt_cut(err, errlen, "\"%.*s%s\": %s (at octet %zu)", show, list,
	    (size_t)show < len ? "..." : "", why, l->err_pos);
}

/* Add one formatted address unless it is there already. */
static int
sm_add_one(struct sendmail_env *e, const char *s, char *err, size_t errlen)
{
	size_t k;

	for (k = 0; k < e->nrcpt; k++)
		if (strcmp(e->rcpt[k], s) == 0)
			return 0;
	if (e->nrcpt >= SENDMAIL_RCPT_MAX) {
		str_fmt_cut(
		    err, errlen, "more than %d recipients", SENDMAIL_RCPT_MAX);
		return -1;
	}
	if (e->nrcpt % 16 == 0) {
		char **n = realloc(e->rcpt, (e->nrcpt + 16) * sizeof(*n));

		if (n == NULL)
			panic("event=oom");
		e->rcpt = n;
	}
	e->rcpt[e->nrcpt++] = xstrdup(s);
	return 0;
}

int
sendmail_add_rcpts(struct sendmail_env *e, const char *list, size_t len,
    const char *domain, char *err, size_t errlen)
{
	char out[ADDR_PATH_MAX + 1];
	struct addr_list l;
	struct addr a;
	enum addr_list_status st;

	addr_list_init(&l, list, len, ADDR_F_UTF8 | ADDR_LIST_F_LOCAL);
	while ((st = addr_list_next(&l, &a)) == ADDR_LIST_OK) {
		if (sm_qualify(&a, domain, out, sizeof(out)) != 0) {
			str_fmt_cut(err, errlen,
			    "an address with @%s is "
			    "too long",
			    domain);
			return -1;
		}
		e->utf8 |= a.utf8;
		if (sm_add_one(e, out, err, errlen) != 0)
			return -1;
	}
	if (st != ADDR_LIST_END) {
		sm_list_error(&l, list, len, err, errlen);
		return -1;
	}
	return 0;
}

/* -f's value: exactly one address, or the null sender. */
static int
sm_parse_from(struct sendmail_env *e, const char *from, const char *domain,
    char *err, size_t errlen)
{
	struct addr_list l;
	struct addr a, extra;

	if (from[0] == '\0' || strcmp(from, "<>") == 0) {
		e->sender[0] = '\0';
		return 0;
	}
	addr_list_init(&l, from, strlen(from), ADDR_F_UTF8 | ADDR_LIST_F_LOCAL);
	if (addr_list_next(&l, &a) != ADDR_LIST_OK ||
	    addr_list_next(&l, &extra) != ADDR_LIST_END) {
		str_fmt_cut(err, errlen, "-f %s: not one address", from);
		return EX_USAGE;
	}
	if (sm_qualify(&a, domain, e->sender, sizeof(e->sender)) != 0) {
		str_fmt_cut(err, errlen, "-f %s: too long", from);
		return EX_USAGE;
	}
	e->utf8 |= a.utf8;
	return 0;
}

int
sendmail_set_sender(struct sendmail_env *e, const char *from, const char *login,
    const char *domain, char *err, size_t errlen)
{
	char s[ADDR_PATH_MAX + 1];
	struct addr a;

	if (from != NULL)
		return sm_parse_from(e, from, domain, err, errlen);
	if (str_fmt(s, sizeof(s), "%s@%s", login, domain) != 0 ||
	    addr_parse_mailbox(s, strlen(s), ADDR_F_UTF8, &a) != ADDR_OK ||
	    addr_format(&a, e->sender, sizeof(e->sender)) < 0) {
		str_fmt_cut(err, errlen,
		    "cannot make a sender address of "
		    "login \"%s\" and hostname \"%s\"; give one with -f",
		    login, domain);
		return EX_USAGE;
	}
	e->utf8 |= a.utf8;
	return 0;
}

/* ---- the header section ----------------------------------------------- */

static bool
sm_is_atext_phrase(const char *s)
{
	static const char specials[] = "()<>[]:;@\\,.\"";

	if (s[0] == ' ' || s[0] == '\0' || s[strlen(s) - 1] == ' ')
		return false;
	for (; *s != '\0'; s++)
		if (strchr(specials, *s) != NULL)
			return false;
	return true;
}

/* "From: NAME <sender>" CRLF; NAME as atoms or a quoted-string. */
static int
sm_put_from(struct buf *out, const char *name, const char *sender)
{
	const char *p;

	if (buf_append_str(out, "From: ") != 0)
		return -1;
	if (sm_is_atext_phrase(name)) {
		if (buf_append_str(out, name) != 0)
			return -1;
	} else {
		if (buf_append(out, "\"", 1) != 0)
			return -1;
		for (p = name; *p != '\0'; p++) {
			bool esc = *p == '"' || *p == '\\';

			if ((esc && buf_append(out, "\\", 1) != 0) ||
			    buf_append(out, p, 1) != 0)
				return -1;
		}
		if (buf_append(out, "\"", 1) != 0)
			return -1;
	}
	return buf_printf(out, " <%s>\r\n", sender);
}

struct sm_hdr {
	size_t end; /* the good fields end here */
	bool cut;   /* ... at a line that is no field: add an empty line */
	bool has_from;
};

/* Where the fields end, and whether there is a From. */
static void
sm_hdr_survey(const char *msg, size_t len, struct sm_hdr *h)
{
	struct addr_hdr_scan s;
	struct addr_hdr_field f;

	memset(h, 0, sizeof(*h));
	addr_hdr_scan_init(&s, msg, len);
	while (addr_hdr_next(&s, &f)) {
		if (f.bad & ADDR_HDR_BAD_NAME) {
			h->cut = true;
			h->end = f.off;
			return;
		}
		h->has_from |= addr_hdr_name_is(&f, "From");
		h->end = f.off + f.raw_len;
	}
}

/* One good field: its recipients (with -t), then copied unless a Bcc. */
static int
sm_hdr_field(const char *msg, const struct addr_hdr_field *f, bool extract,
    const char *domain, struct sendmail_env *e, struct buf *out, char *err,
    size_t errlen)
{
	bool bcc =
	    addr_hdr_name_is(f, "Bcc") || addr_hdr_name_is(f, "Resent-Bcc");
	char what[64];

	if (extract &&
	    (bcc || addr_hdr_name_is(f, "To") || addr_hdr_name_is(f, "Cc")) &&
	    sendmail_add_rcpts(
		e, f->value, f->value_len, domain, what, sizeof(what)) != 0) {
		str_fmt_cut(err, errlen, "%.*s field: %s", (int)f->name_len,
		    f->name, what);
		return EX_DATAERR;
	}
	if (!bcc && buf_append(out, msg + f->off, f->raw_len) != 0) {
		str_fmt_cut(err, errlen, "the message is too big");
		return EX_DATAERR;
	}
	return 0;
}

int
sendmail_compose(const char *msg, size_t len, const char *fullname,
    bool extract, const char *domain, struct sendmail_env *e, struct buf *out,
    char *err, size_t errlen)
{
	struct addr_hdr_scan s;
	struct addr_hdr_field f;
	struct sm_hdr h;
	int r;

	sm_hdr_survey(msg, len, &h);
	if (fullname != NULL && !h.has_from && e->sender[0] != '\0' &&
	    sm_put_from(out, fullname, e->sender) != 0)
		goto big;
	addr_hdr_scan_init(&s, msg, len);
	while (addr_hdr_next(&s, &f) && f.off < h.end)
		if ((r = sm_hdr_field(
			 msg, &f, extract, domain, e, out, err, errlen)) != 0)
			return r;
	if (h.cut && buf_append(out, "\r\n", 2) != 0)
		goto big;
	if (buf_append(out, msg + h.end, len - h.end) != 0)
		goto big;
	return 0;
big:
	str_fmt_cut(err, errlen, "the message is too big");
	return EX_DATAERR;
}

/* ---- exit codes ------------------------------------------------------- */

int
sendmail_exit_code(int code, const char *enh, bool after_data)
{
	static const char *const data_enh[] = {
	    "5.6.", "5.3.4", "5.1.3", "5.1.7", "5.5.4"};
	size_t k;

	if (code >= 200 && code < 400)
		return 0;
	if (code >= 400 && code < 500)
		return EX_TEMPFAIL;
	if (after_data)
		return EX_DATAERR;
	for (k = 0; k < sizeof(data_enh) / sizeof(data_enh[0]); k++)
		if (strncmp(enh, data_enh[k], strlen(data_enh[k])) == 0)
			return EX_DATAERR;
	return EX_UNAVAILABLE;
}

/* ---- talking to ternd ------------------------------------------------- */

struct sm_conn {
	int fd;
	struct buf in; /* reply octets not parsed yet */
	bool verbose;
	bool lost;  /* the connection is unusable */
	bool quiet; /* the outcome is known: report no loss */
};

struct sm_job {
	const struct conf *conf;
	const struct sendmail_opts *o;
	const struct sendmail_env *e;
	const struct buf *msg;
};

/* -v: one line of the dialogue on stderr. */
static void
sm_show(const struct sm_conn *c, const char *dir, const char *line)
{
	char clean[SM_CMD_MAX];

	if (!c->verbose)
		return;
	cli_clean(clean, sizeof(clean), line);
	fprintf(stderr, "%s %s\n", dir, clean);
}

static int
sm_lost(struct sm_conn *c, const char *why)
{
	if (!c->lost && !c->quiet)
		cli_warnx("lost the connection to ternd (%s); the message was "
			  "not sent",
		    why);
	c->lost = true;
	return EX_TEMPFAIL;
}

/* Send one command line (CRLF added). */
static int
sm_cmd(struct sm_conn *c, struct buf *line)
{
	sm_show(c, ">>>", line->data);
	if (buf_append(line, "\r\n", 2) != 0)
		return sm_lost(c, "command too long");
	if (cli_write_all(c->fd, line->data, line->len) != 0)
		return sm_lost(c, strerror(errno));
	return 0;
}

/* Read one reply into *r. */
static int
sm_reply(struct sm_conn *c, struct smtp_parsed_reply *r)
{
	char chunk[4096];
	size_t used;
	ssize_t n;
	int pr;

	while ((pr = smtp_reply_parse(c->in.data != NULL ? c->in.data : "",
		    c->in.len, r, &used)) == 0) {
		int w = cli_wait_readable(c->fd, CLI_TIMEOUT_MS);

		if (w <= 0)
			return sm_lost(
			    c, w == 0 ? "no reply in time" : strerror(errno));
		n = read(c->fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return sm_lost(
			    c, n == 0 ? "closed by ternd" : strerror(errno));
		if (buf_append(&c->in, chunk, (size_t)n) != 0)
			return sm_lost(c, "reply too long");
	}
	if (pr < 0)
		return sm_lost(c, "not an SMTP reply");
	buf_consume(&c->in, used);
	if (c->verbose) {
		char clean[SMTP_REPLY_IN_TEXT_MAX];

		cli_clean(clean, sizeof(clean), r->text);
		fprintf(stderr, "<<< %d %s%s%s\n", r->code, r->enh,
		    r->enh[0] != '\0' ? " " : "", clean);
	}
	return 0;
}

/* ternd said no to what: say so; the exit status. */
static int
sm_refused(const char *what, const struct smtp_parsed_reply *r, bool after_data)
{
	char text[SMTP_REPLY_IN_TEXT_MAX];

	cli_clean(text, sizeof(text), r->text);
	cli_warnx("ternd refused %s: %d %s%s%s; the message was not sent", what,
	    r->code, r->enh, r->enh[0] != '\0' ? " " : "", text);
	return sendmail_exit_code(r->code, r->enh, after_data);
}

/* Read a reply; anything but class cls (2 or 3) is a refusal of what. */
static int
sm_expect(struct sm_conn *c, int cls, const char *what, bool after_data)
{
	struct smtp_parsed_reply r;
	int rc;

	if ((rc = sm_reply(c, &r)) != 0)
		return rc;
	if (r.code / 100 == cls)
		return 0;
	rc = sm_refused(what, &r, after_data);
	return rc != 0 ? rc : EX_PROTOCOL;
}

/* Send line, then expect class cls. */
static int
sm_step(struct sm_conn *c, struct buf *line, int cls, const char *what)
{
	int rc = sm_cmd(c, line);

	return rc != 0 ? rc : sm_expect(c, cls, what, false);
}

static bool
sm_has_8bit(const char *p, size_t n)
{
	size_t k;

	for (k = 0; k < n; k++)
		if ((unsigned char)p[k] >= 0x80)
			return true;
	return false;
}

/* EHLO, and the capabilities its reply announces. */
static int
sm_ehlo(struct sm_conn *c, const struct sm_job *j, struct smtp_caps *caps)
{
	struct smtp_parsed_reply r;
	struct buf line;
	int rc;

	buf_init(&line, SM_CMD_MAX);
	if (buf_printf(&line, "EHLO %s", j->conf->hostname) != 0)
		rc = sm_lost(c, "hostname too long");
	else if ((rc = sm_cmd(c, &line)) == 0 && (rc = sm_reply(c, &r)) == 0 &&
		 r.code != 250)
		rc = sm_refused("EHLO", &r, false);
	if (rc == 0)
		smtp_ehlo_caps(&r, caps);
	buf_free(&line);
	return rc;
}

/* The MAIL parameters the message needs and the server offers. */
static int
sm_mail_params(
    const struct sm_job *j, const struct smtp_caps *caps, struct buf *line)
{
	const struct buf *m = j->msg;
	bool eight = j->o->body == 8 ||
		     (j->o->body == 0 && sm_has_8bit(m->data, m->len));
	char x[3 * SM_ENVID_MAX + 1];
	int r = 0;

	if (caps->flags & SMTP_CAP_SIZE)
		r |= buf_printf(line, " SIZE=%zu", m->len);
	if (j->o->body == 7)
		r |= buf_append_str(line, " BODY=7BIT");
	else if (eight && (caps->flags & SMTP_CAP_8BITMIME))
		r |= buf_append_str(line, " BODY=8BITMIME");
	if ((j->e->utf8 ||
		sm_has_8bit(m->data, addr_hdr_end(m->data, m->len, NULL))) &&
	    (caps->flags & SMTP_CAP_SMTPUTF8))
		r |= buf_append_str(line, " SMTPUTF8");
	if (!(caps->flags & SMTP_CAP_DSN))
		return r; /* -R, -V and -N need DSN: dropped without it */
	if (j->o->ret != SMTP_RET_UNSPEC)
		r |= buf_append_str(line,
		    j->o->ret == SMTP_RET_FULL ? " RET=FULL" : " RET=HDRS");
	if (j->o->envid != NULL && smtp_xtext_encode(j->o->envid,
				       strlen(j->o->envid), x, sizeof(x)) >= 0)
		r |= buf_printf(line, " ENVID=%s", x);
	return r;
}

static int
sm_mail(struct sm_conn *c, const struct sm_job *j, const struct smtp_caps *caps)
{
	struct buf line;
	char what[ADDR_PATH_MAX + 32];
	int rc;

	buf_init(&line, SM_CMD_MAX);
	str_fmt_cut(what, sizeof(what), "the sender <%s>", j->e->sender);
	if (buf_printf(&line, "MAIL FROM:<%s>", j->e->sender) != 0 ||
	    sm_mail_params(j, caps, &line) != 0)
		rc = sm_lost(c, "MAIL command too long");
	else
		rc = sm_step(c, &line, 2, what);
	buf_free(&line);
	return rc;
}

static int
sm_notify_param(unsigned bits, struct buf *line)
{
	static const char *const names[] = {
	    "NEVER", "SUCCESS", "FAILURE", "DELAY"};
	const char *sep = " NOTIFY=";
	unsigned k;

	for (k = 0; k < 4; k++) {
		if (!(bits & (1u << k)))
			continue;
		if (buf_printf(line, "%s%s", sep, names[k]) != 0)
			return -1;
		sep = ",";
	}
	return 0;
}

/* Every RCPT; each refusal is reported, the worst decides the status. */
static int
sm_rcpts(
    struct sm_conn *c, const struct sm_job *j, const struct smtp_caps *caps)
{
	char what[ADDR_PATH_MAX + 32];
	struct buf line;
	size_t k;
	int rc, worst = 0;

	buf_init(&line, SM_CMD_MAX);
	for (k = 0; k < j->e->nrcpt && !c->lost; k++) {
		buf_reset(&line);
		str_fmt_cut(
		    what, sizeof(what), "the recipient <%s>", j->e->rcpt[k]);
		if (buf_printf(&line, "RCPT TO:<%s>", j->e->rcpt[k]) != 0 ||
		    ((caps->flags & SMTP_CAP_DSN) && j->o->notify != 0 &&
			sm_notify_param(j->o->notify, &line) != 0))
			rc = sm_lost(c, "RCPT command too long");
		else
			rc = sm_step(c, &line, 2, what);
		if (rc != 0 && (worst == 0 || worst == EX_TEMPFAIL))
			worst = rc;
	}
	buf_free(&line);
	return c->lost ? EX_TEMPFAIL : worst;
}

static int
sm_write(struct sm_conn *c, const struct buf *b)
{
	if (b->len > 0 && cli_write_all(c->fd, b->data, b->len) != 0)
		return sm_lost(c, strerror(errno));
	return 0;
}

/* The content, dot-stuffed, then CRLF "." CRLF. */
static int
sm_body(struct sm_conn *c, const struct buf *msg)
{
	struct smtp_stuff st;
	struct buf out;
	size_t off = 0, n;
	int rc = 0;

	smtp_stuff_init(&st);
	/* stuffing at most doubles a chunk (LF -> CRLF, "." -> "..") */
	buf_init(&out, 2 * SM_CHUNK + 8);
	while (rc == 0 && off < msg->len) {
		n = msg->len - off < SM_CHUNK ? msg->len - off : SM_CHUNK;
		buf_reset(&out);
		if (smtp_stuff_feed(&st, msg->data + off, n, &out) != 0)
			panic("event=stuff_overflow");
		off += n;
		rc = sm_write(c, &out);
	}
	buf_reset(&out);
	if (rc == 0 && smtp_stuff_finish(&st, &out) != 0)
		panic("event=stuff_overflow");
	if (rc == 0)
		rc = sm_write(c, &out);
	buf_free(&out);
	if (rc == 0 && c->verbose)
		fprintf(stderr, ">>> (%zu octets of message, then \".\")\n",
		    msg->len);
	return rc;
}

static int
sm_session(struct sm_conn *c, const struct sm_job *j)
{
	struct smtp_caps caps;
	struct buf line;
	int rc;

	if ((rc = sm_expect(c, 2, "the connection", false)) != 0 ||
	    (rc = sm_ehlo(c, j, &caps)) != 0 ||
	    (rc = sm_mail(c, j, &caps)) != 0 ||
	    (rc = sm_rcpts(c, j, &caps)) != 0)
		return rc;
	buf_init(&line, SM_CMD_MAX);
	if (buf_append_str(&line, "DATA") != 0)
		panic("event=oom");
	rc = sm_step(c, &line, 3, "DATA");
	buf_free(&line);
	if (rc == 0 && (rc = sm_body(c, j->msg)) == 0)
		rc = sm_expect(c, 2, "the message", true);
	return rc;
}

/* QUIT politely; the reply does not matter any more. */
static void
sm_quit(struct sm_conn *c)
{
	struct smtp_parsed_reply r;
	struct buf line;

	if (c->lost)
		return;
	buf_init(&line, SM_CMD_MAX);
	if (buf_append_str(&line, "QUIT") == 0 && sm_cmd(c, &line) == 0)
		(void)sm_reply(c, &r);
	buf_free(&line);
}

static int
sm_deliver(const struct sm_job *j)
{
	char path[4096];
	struct sm_conn c = {-1, {0}, j->o->verbose, false, false};
	int rc;

	if (cli_sock_path(j->conf, CLI_SUBMIT_SOCK, path, sizeof(path)) != 0)
		return EX_CONFIG;
	if ((c.fd = cli_connect(path, "; the message was not sent")) < 0)
		return EX_TEMPFAIL;
	buf_init(&c.in, SM_IN_MAX);
	rc = sm_session(&c, j);
	c.quiet = true; /* sent or not, that is said: QUIT's fate is moot */
	sm_quit(&c);
	(void)close(c.fd);
	buf_free(&c.in);
	return rc;
}

/* ---- sendmail, the command -------------------------------------------- */

/* Read stdin into raw (CRLF text). */
static int
sm_read_message(bool dots_ok, uint64_t max, struct buf *raw)
{
	struct sendmail_reader r;
	static char chunk[SM_CHUNK];
	ssize_t n;

	sendmail_reader_init(&r, raw, dots_ok);
	for (;;) {
		n = read(STDIN_FILENO, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			cli_warnx("reading the message: %s; the message was "
				  "not sent",
			    strerror(errno));
			return EX_IOERR;
		}
		if (n == 0) {
			(void)sendmail_read_finish(&r);
			break;
		}
		if (sendmail_read_feed(&r, chunk, (size_t)n) !=
		    SENDMAIL_READ_MORE)
			break;
	}
	if (r.st == SENDMAIL_READ_LONG)
		cli_warnx("line %lu of the message is longer than %d octets "
			  "(RFC 5322 2.1.1); the message was not sent",
		    r.line, SENDMAIL_LINE_MAX);
	if (r.st == SENDMAIL_READ_BIG)
		cli_warnx("the message is bigger than limits.message_size "
			  "(%llu octets); the message was not sent",
		    (unsigned long long)max);
	return r.st == SENDMAIL_READ_LONG || r.st == SENDMAIL_READ_BIG
		   ? EX_DATAERR
		   : 0;
}

/* The sender, and the recipients named on the command line. */
static int
sm_envelope(const struct conf *cf, const struct sendmail_opts *o,
    struct sendmail_env *e)
{
	const struct passwd *pw = NULL;
	char err[512];
	int k, rc;

	if (o->from == NULL && (pw = getpwuid(getuid())) == NULL) {
		cli_warnx("uid %lu has no name in the passwd database; give a "
			  "sender with -f",
		    (unsigned long)getuid());
		return EX_NOUSER;
	}
	rc = sendmail_set_sender(e, o->from, pw != NULL ? pw->pw_name : "",
	    cf->hostname, err, sizeof(err));
	if (rc != 0) {
		cli_warnx("%s", err);
		return rc;
	}
	for (k = 0; k < o->nrcpt; k++)
		if (sendmail_add_rcpts(e, o->rcpt[k], strlen(o->rcpt[k]),
			cf->hostname, err, sizeof(err)) != 0) {
			cli_warnx(
			    "recipient %s; the message was not sent", err);
			return EX_USAGE;
		}
	return 0;
}

static size_t
sm_limit(uint64_t v)
{
	return v > SIZE_MAX / 4 ? SIZE_MAX / 4 : (size_t)v;
}

static int
sm_send(const struct conf *cf, const struct sendmail_opts *o)
{
	struct sendmail_env e = {.nrcpt = 0};
	struct buf raw, msg;
	char err[512];
	int rc;

	if (!o->extract && o->nrcpt == 0) {
		cli_warnx("no recipients: name them, or use -t to take them "
			  "from the message");
		return EX_USAGE;
	}
	buf_init(&raw, sm_limit(cf->message_size));
	buf_init(&msg, sm_limit(cf->message_size));
	if ((rc = sm_envelope(cf, o, &e)) == 0 &&
	    (rc = sm_read_message(o->dots_ok, cf->message_size, &raw)) == 0 &&
	    (rc = sendmail_compose(raw.data != NULL ? raw.data : "", raw.len,
		 o->fullname, o->extract, cf->hostname, &e, &msg, err,
		 sizeof(err))) != 0)
		cli_warnx("%s; the message was not sent", err);
	buf_free(&raw);
	if (rc == 0 && e.nrcpt == 0) {
		cli_warnx("no recipients in To, Cc or Bcc; the message was not "
			  "sent");
		rc = EX_DATAERR;
	}
	if (rc == 0) {
		struct sm_job j = {cf, o, &e, &msg};

		rc = sm_deliver(&j);
	}
	buf_free(&msg);
	sendmail_env_free(&e);
	return rc;
}

/* Copy one read of from to to; false when the session is over. */
static bool
sm_relay_one(int from, int to)
{
	char chunk[SM_CHUNK];
	ssize_t n = read(from, chunk, sizeof(chunk));

	if (n < 0 && errno == EINTR)
		return true;
	return n > 0 && cli_write_all(to, chunk, (size_t)n) == 0;
}

/*
 * -bs: relay octets between stdin/stdout and the submission socket until
 * ternd closes (after QUIT, or its timeout).  The end of stdin is passed
 * on as a half-close, so ternd sees the client go.
 */
static int
sm_relay_smtp(const struct conf *cf)
{
	char path[4096];
	struct pollfd pf[2];
	int fd;

	if (cli_sock_path(cf, CLI_SUBMIT_SOCK, path, sizeof(path)) != 0)
		return EX_CONFIG;
	if ((fd = cli_connect(path, "")) < 0) {
		fputs("421 4.3.2 ternd is not running, try again later\r\n",
		    stdout);
		return EX_TEMPFAIL;
	}
	pf[0].fd = STDIN_FILENO;
	pf[1].fd = fd;
	pf[0].events = pf[1].events = POLLIN;
	for (;;) {
		int r = poll(pf, 2, -1);

		if (r < 0 && errno == EINTR)
			continue; /* revents are not set */
		if (r < 0)
			break;
		if (pf[1].revents != 0 && !sm_relay_one(fd, STDOUT_FILENO))
			break;
		if (pf[0].fd >= 0 && pf[0].revents != 0 &&
		    !sm_relay_one(STDIN_FILENO, fd)) {
			pf[0].fd = -1; /* poll ignores it from now on */
			(void)shutdown(fd, SHUT_WR);
		}
	}
	(void)close(fd);
	return 0;
}

int
cli_sendmail(const struct conf *c, int argc, char **argv)
{
	struct sendmail_opts o;
	char err[256];
	int rc;

	(void)signal(SIGPIPE, SIG_IGN);
	if ((rc = sendmail_parse_args(argc > 0 ? argc - 1 : 0, argv + 1, &o,
		 err, sizeof(err))) != 0) {
		cli_warnx("sendmail: %s", err);
		return rc;
	}
	switch (o.mode) {
	case SENDMAIL_MODE_MAILQ:
		return cli_mailq(c, 0, NULL);
	case SENDMAIL_MODE_FLUSH:
		return cli_queue_flush(c, !o.verbose);
	case SENDMAIL_MODE_SMTP:
		return sm_relay_smtp(c);
	case SENDMAIL_MODE_NOOP:
		cli_warnx("nothing to rebuild: aliases live in tern's tables "
			  "(tern alias)");
		return 0;
	default:
		return sm_send(c, &o);
	}
}

int
cli_persona_main(enum cli_persona p, int argc, char **argv)
{
	const char *path = getenv("TERN_CONFIG");
	struct conf *c;
	char err[512];
	int rc;

	if (path == NULL && access(TERN_SYSCONF, F_OK) == 0)
		path = TERN_SYSCONF;
	if ((c = conf_load(path, NULL, 0, err, sizeof(err))) == NULL) {
		cli_warnx("%s", err);
		return EX_CONFIG;
	}
	rc = p == CLI_AS_MAILQ ? cli_mailq(c, argc, argv)
			       : cli_sendmail(c, argc, argv);
	conf_free(c);
	return rc;
}
