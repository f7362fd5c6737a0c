/*
 * queue: "tern queue list|show|flush|delete|hold|release" and mailq(1),
 * which see ternd's queue through its control socket STATE/control.sock
 * (mode 0600: ternd's user and root only).  The protocol is one request
 * line ("LIST", "SHOW ID", "FLUSH", "DELETE ID", "HOLD ID", "RELEASE ID"),
 * answered by one JSON object, after which ternd closes the connection:
 * {"ok":true,...} or {"ok":false,"error":"no such message"}.
 *
 * Also the small helpers sendmail.c shares: socket paths, connecting
 * (with the one "cannot reach ternd" message), bounded writes and waits,
 * and cleaning of text from the network before it reaches a terminal.
 *
 * Exit status: 0; 1 when ternd refused the request (no such message);
 * 64 usage; 75 ternd not reachable; 76 an answer that is not the
 * protocol.  --json prints ternd's answer exactly as it came.
 *
 * Limits: an answer of JSON_INPUT_MAX octets; CLI_TIMEOUT_MS per read.
 * Security: ids are checked (queue_id_valid) before they go into a
 * request line, so no argument can add a second request; every string
 * from the answer is printed through cli_clean().
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "conf/conf.h"
#include "queue/queue.h"

#define Q_TEXT_MAX     2048 /* one printed string, cleaned */
#define Q_MAILQ_INDENT 48   /* the sender column of a mailq line */
/* the heading of "tern queue list", with the widths of its rows */
#define Q_LIST_HEAD "%-16s %8s  %-19s  %-19s  %5s  %s\n"

/* ---- helpers shared with sendmail.c ----------------------------------- */

void
cli_warnx(const char *fmt, ...)
{
	va_list ap;

	fputs("tern: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int
cli_sock_path(const struct conf *c, const char *name, char *out, size_t outlen)
{
	if (str_fmt(out, outlen, "%s/%s", c->state_dir, name) != 0) {
		cli_warnx("state_dir %s: path too long", c->state_dir);
		return -1;
	}
	return 0;
}

int
cli_connect(const char *path, const char *tail)
{
	struct sockaddr_un sa;
	int fd, e;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (str_copy(sa.sun_path, sizeof(sa.sun_path), path, strlen(path)) !=
	    0) {
		cli_warnx("cannot reach ternd at %s: path too long for a unix "
			  "socket%s",
		    path, tail);
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	e = errno;
	if (fd >= 0)
		(void)close(fd);
	cli_warnx("cannot reach ternd at %s: %s%s", path, strerror(e), tail);
	return -1;
}

static int
cli_wait(int fd, short events, int timeout_ms)
{
	struct pollfd pf = {fd, events, 0};
	int r;

	while ((r = poll(&pf, 1, timeout_ms)) < 0 && errno == EINTR)
		;
	if (r == 0)
		errno = ETIMEDOUT;
	return r;
}

int
cli_wait_readable(int fd, int timeout_ms)
{
	return cli_wait(fd, POLLIN, timeout_ms);
}

int
cli_write_all(int fd, const void *p, size_t n)
{
	const char *s = p;
	ssize_t w;

	while (n > 0) {
		if (cli_wait(fd, POLLOUT, CLI_TIMEOUT_MS) <= 0)
			return -1;
		w = write(fd, s, n);
		if (w < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (w < 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

void
cli_clean(char *out, size_t outlen, const char *s)
{
	size_t k = 0;

	if (outlen == 0)
		return;
	for (; *s != '\0' && k + 1 < outlen; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '\n' || c == '\r' || c == '\t')
			c = ' ';
		else if (c < 0x20 || c == 0x7f)
			c = '?';
		out[k++] = (char)c;
	}
	out[k] = '\0';
}

/* ---- one request ------------------------------------------------------ */

struct q_answer {
	struct buf raw;
	struct json_doc *doc;
	const struct json_node *root;
};

static int
q_read_all(int fd, struct buf *raw, const char *path)
{
	char chunk[8192];
	ssize_t n;

	for (;;) {
		if (cli_wait_readable(fd, CLI_TIMEOUT_MS) <= 0)
			break;
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0)
			return 0;
		if (n < 0)
			break;
		if (buf_append(raw, chunk, (size_t)n) != 0) {
			cli_warnx(
			    "ternd's answer is over %u octets", JSON_INPUT_MAX);
			return EX_PROTOCOL;
		}
	}
	cli_warnx("reading ternd's answer from %s: %s", path, strerror(errno));
	return EX_TEMPFAIL;
}

/* Send req, read the answer whole. */
static int
q_request(const struct conf *c, const char *req, struct buf *raw)
{
	char path[4096], line[128];
	int fd, rc;

	if (cli_sock_path(c, CLI_CONTROL_SOCK, path, sizeof(path)) != 0)
		return EX_CONFIG;
	if (str_fmt(line, sizeof(line), "%s\n", req) != 0)
		panic("event=request_too_long");
	if ((fd = cli_connect(path, "")) < 0)
		return EX_TEMPFAIL;
	if (cli_write_all(fd, line, strlen(line)) != 0) {
		cli_warnx("writing to ternd at %s: %s", path, strerror(errno));
		(void)close(fd);
		return EX_TEMPFAIL;
	}
	rc = q_read_all(fd, raw, path);
	(void)close(fd);
	return rc;
}

static void
q_answer_free(struct q_answer *a)
{
	json_free(a->doc);
	buf_free(&a->raw);
}

/* Run req; 0 with a->root an {"ok":true} object, else the exit status. */
static int
q_call(const struct conf *c, const char *req, struct q_answer *a)
{
	char err[256], text[Q_TEXT_MAX];
	const char *why;
	bool ok;
	int rc;

	memset(a, 0, sizeof(*a));
	buf_init(&a->raw, JSON_INPUT_MAX);
	if ((rc = q_request(c, req, &a->raw)) != 0)
		return rc;
	a->doc = json_parse(a->raw.data != NULL ? a->raw.data : "", a->raw.len,
	    NULL, err, sizeof(err));
	a->root = json_root(a->doc);
	if (a->doc == NULL || !json_get_bool(a->root, "ok", &ok)) {
		cli_warnx("ternd's answer is not the control protocol: %s",
		    a->doc == NULL ? err : "no \"ok\"");
		return EX_PROTOCOL;
	}
	if (ok)
		return 0;
	why = json_get_str(a->root, "error");
	cli_clean(text, sizeof(text), why != NULL ? why : "refused");
	cli_warnx("%s", text);
	return 1;
}

int
cli_control_ints(const struct conf *c, const char *req, const char *const *keys,
    int64_t *vals, size_t n)
{
	struct q_answer a;
	size_t i;
	int rc = q_call(c, req, &a);

	for (i = 0; i < n && rc == 0; i++)
		if (!json_get_int(a.root, keys[i], &vals[i])) {
			cli_warnx("ternd's answer has no \"%s\"", keys[i]);
			rc = EX_PROTOCOL;
		}
	q_answer_free(&a);
	return rc;
}

/* ---- reading messages ------------------------------------------------- */

struct q_msg {
	const char *id;
	const char *sender;
	int64_t created, size, next_try;
	bool held;
	bool requiretls, tls_required_no; /* RFC 8689 */
	const struct json_node *rcpts;	  /* an array, or NULL */
};

/* The fields of a message object; missing ones are zero or empty. */
static int
q_msg_get(const struct json_node *m, struct q_msg *q)
{
	memset(q, 0, sizeof(*q));
	if (m == NULL || m->type != JSON_OBJECT ||
	    (q->id = json_get_str(m, "id")) == NULL)
		return -1;
	if ((q->sender = json_get_str(m, "sender")) == NULL)
		q->sender = "";
	(void)json_get_int(m, "created", &q->created);
	(void)json_get_int(m, "size", &q->size);
	(void)json_get_int(m, "next_try", &q->next_try);
	(void)json_get_bool(m, "held", &q->held);
	(void)json_get_bool(m, "requiretls", &q->requiretls);
	(void)json_get_bool(m, "tls_required_no", &q->tls_required_no);
	q->rcpts = json_get(m, "recipients");
	if (q->rcpts != NULL && q->rcpts->type != JSON_ARRAY)
		q->rcpts = NULL;
	return 0;
}

static bool
q_rcpt_pending(const struct json_node *r)
{
	const char *st = json_get_str(r, "state");

	return st != NULL && strcasecmp(st, "pending") == 0;
}

/* Local time of t with fmt, or dflt for 0 (never / at once). */
static const char *
q_time(int64_t t, const char *fmt, const char *dflt, char *out, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t <= 0 || localtime_r(&tt, &tm) == NULL ||
	    strftime(out, len, fmt, &tm) == 0)
		return dflt;
	return out;
}

static const char *
q_str(const char *s, char *out, size_t len)
{
	cli_clean(out, len, s);
	return out;
}

/* "451 4.3.0 text" of a recipient's last reply into out; false if none. */
static bool
q_last_reply(const struct json_node *r, char *out, size_t len)
{
	char text[Q_TEXT_MAX];
	const char *enh = json_get_str(r, "enh"), *t = json_get_str(r, "text");
	int64_t code = 0;

	if (!json_get_int(r, "code", &code) || code == 0)
		return false;
	cli_clean(text, sizeof(text), t != NULL ? t : "");
	str_fmt_cut(out, len, "%" PRId64 "%s%s%s%s", code,
	    enh != NULL && enh[0] != '\0' ? " " : "", enh != NULL ? enh : "",
	    text[0] != '\0' ? " " : "", text);
	return true;
}

/* ---- list, show ------------------------------------------------------- */

static void
q_list_line(const struct q_msg *q)
{
	char id[64], when[32], next[32], sender[Q_TEXT_MAX], todo[32];
	const struct json_node *r;
	unsigned n = 0, pending = 0;

	for (r = q->rcpts != NULL ? q->rcpts->child : NULL; r; r = r->next) {
		n++;
		pending += q_rcpt_pending(r);
	}
	str_fmt_cut(todo, sizeof(todo), "%u/%u", pending, n);
	printf("%-16s %8" PRId64 "  %-19s  %-19s  %5s  %s\n",
	    q_str(q->id, id, sizeof(id)), q->size,
	    q_time(q->created, "%Y-%m-%d %H:%M:%S", "-", when, sizeof(when)),
	    q->held ? "held"
		    : q_time(q->next_try, "%Y-%m-%d %H:%M:%S", "now", next,
			  sizeof(next)),
	    todo,
	    q->sender[0] ? q_str(q->sender, sender, sizeof(sender)) : "<>");
}

static int
q_msg_cmp(const void *a, const void *b)
{
	const struct q_msg *x = a, *y = b;

	if (x->created != y->created)
		return x->created < y->created ? -1 : 1;
	return strcmp(x->id, y->id);
}

/* The messages of a LIST answer, oldest first: *n_out of them, heap. */
static int
q_msgs(const struct json_node *root, struct q_msg **out, size_t *n_out)
{
	const struct json_node *msgs = json_get(root, "messages"), *m;
	size_t n = 0;

	*out = NULL;
	*n_out = 0;
	if (msgs == NULL || msgs->type != JSON_ARRAY) {
		cli_warnx("ternd's answer has no \"messages\" list");
		return EX_PROTOCOL;
	}
	*out = xcalloc(msgs->len ? msgs->len : 1, sizeof(**out));
	for (m = msgs->child; m != NULL && n < msgs->len; m = m->next)
		if (q_msg_get(m, &(*out)[n]) == 0)
			n++;
	qsort(*out, n, sizeof(**out), q_msg_cmp);
	*n_out = n;
	return 0;
}

static int
q_print_list(const struct json_node *root)
{
	struct q_msg *q;
	size_t k, n;
	int rc;

	if ((rc = q_msgs(root, &q, &n)) != 0)
		return rc;
	if (n > 0)
		printf(Q_LIST_HEAD, "ID", "SIZE", "ARRIVED", "NEXT TRY",
		    "TO DO", "SENDER");
	for (k = 0; k < n; k++)
		q_list_line(&q[k]);
	if (n == 0)
		printf("queue is empty\n");
	else
		printf("%zu message%s\n", n, n == 1 ? "" : "s");
	free(q);
	return 0;
}

static void
q_show_rcpt(const struct json_node *r)
{
	char addr[Q_TEXT_MAX], st[64], next[32], last[Q_TEXT_MAX];
	const char *a = json_get_str(r, "addr"), *s = json_get_str(r, "state");
	int64_t attempts = 0, nt = 0;

	(void)json_get_int(r, "attempts", &attempts);
	(void)json_get_int(r, "next_try", &nt);
	printf("  %s\n    %s, %" PRId64 " attempt%s",
	    q_str(a ? a : "?", addr, sizeof(addr)),
	    q_str(s ? s : "?", st, sizeof(st)), attempts,
	    attempts == 1 ? "" : "s");
	if (s != NULL && strcasecmp(s, "pending") == 0)
		printf(", next try %s",
		    q_time(nt, "%Y-%m-%d %H:%M:%S", "now", next, sizeof(next)));
	putchar('\n');
	if (q_last_reply(r, last, sizeof(last)))
		printf("    last reply: %s\n", last);
}

static int
q_print_show(const struct json_node *root)
{
	char id[64], when[64], next[32], sender[Q_TEXT_MAX];
	const struct json_node *r;
	struct q_msg q;

	if (q_msg_get(json_get(root, "message"), &q) != 0) {
		cli_warnx("ternd's answer has no \"message\"");
		return EX_PROTOCOL;
	}
	printf("id:         %s\n", q_str(q.id, id, sizeof(id)));
	printf("status:     %s\n", q.held ? "held" : "queued");
	printf("arrived:    %s\n",
	    q_time(q.created, "%Y-%m-%d %H:%M:%S %z", "-", when, sizeof(when)));
	printf("size:       %" PRId64 " octets\n", q.size);
	printf("sender:     %s\n",
	    q.sender[0] ? q_str(q.sender, sender, sizeof(sender)) : "<>");
	printf("next try:   %s\n", q.held
				       ? "(held)"
				       : q_time(q.next_try, "%Y-%m-%d %H:%M:%S",
					     "now", next, sizeof(next)));
	printf("requiretls: %s\n", q.requiretls ? "yes" : "no");
	/* RFC 8689 4.1: with REQUIRETLS the header field counts for nothing */
	if (q.tls_required_no)
		printf("tls-required: No%s\n",
		    q.requiretls ? " (ignored: REQUIRETLS)"
				 : " (recipient TLS policies may be ignored)");
	printf("recipients:\n");
	for (r = q.rcpts != NULL ? q.rcpts->child : NULL; r; r = r->next)
		q_show_rcpt(r);
	return 0;
}

static int
q_print_flush(const struct json_node *root)
{
	int64_t n = 0;

	(void)json_get_int(root, "flushed", &n);
	printf("%" PRId64 " message%s scheduled for delivery now\n", n,
	    n == 1 ? "" : "s");
	return 0;
}

/* ---- mailq ------------------------------------------------------------ */

static void
q_mailq_msg(const struct q_msg *q)
{
	char id[64], idm[72], when[32], s[Q_TEXT_MAX], last[Q_TEXT_MAX];
	const struct json_node *r;
	const char *a;

	str_fmt_cut(idm, sizeof(idm), "%s%s", q_str(q->id, id, sizeof(id)),
	    q->held ? "!" : "");
	printf("%-17s %8" PRId64 " %-20s %s\n", idm, q->size,
	    q_time(q->created, "%a %b %d %H:%M:%S", "-", when, sizeof(when)),
	    q->sender[0] ? q_str(q->sender, s, sizeof(s)) : "MAILER-DAEMON");
	for (r = q->rcpts != NULL ? q->rcpts->child : NULL; r; r = r->next) {
		if (!q_rcpt_pending(r) || (a = json_get_str(r, "addr")) == NULL)
			continue;
		if (q_last_reply(r, last, sizeof(last)))
			printf("%*s(%s)\n", Q_MAILQ_INDENT, "", last);
		printf("%*s%s\n", Q_MAILQ_INDENT, "", q_str(a, s, sizeof(s)));
	}
}

static int
q_print_mailq(const struct json_node *root)
{
	int64_t bytes = 0;
	struct q_msg *q;
	size_t k, n;
	int rc;

	if ((rc = q_msgs(root, &q, &n)) != 0)
		return rc;
	for (k = 0; k < n; k++) {
		fputs(k == 0 ? "-Queue ID-  --Size-- ----Arrival Time---- "
			       "-Sender/Recipient-------\n"
			     : "\n",
		    stdout);
		q_mailq_msg(&q[k]);
		if (q[k].size > 0 && bytes <= INT64_MAX - q[k].size)
			bytes += q[k].size;
	}
	if (n == 0)
		printf("Mail queue is empty\n");
	else
		printf("\n-- %" PRId64 " Kbytes in %zu Request%s.\n",
		    bytes / 1024 + (bytes % 1024 != 0), n, n == 1 ? "" : "s");
	free(q);
	return 0;
}

/* ---- the commands ----------------------------------------------------- */

struct q_verb {
	const char *name;
	const char *req;
	bool id;
	int (*print)(const struct json_node *root);
};

static const struct q_verb q_verbs[] = {
    {"list", "LIST", false, q_print_list},
    {"show", "SHOW", true, q_print_show},
    {"flush", "FLUSH", false, q_print_flush},
    {"delete", "DELETE", true, NULL},
    {"hold", "HOLD", true, NULL},
    {"release", "RELEASE", true, NULL},
};

static int
q_usage(const char *what)
{
	cli_warnx("queue: %s", what);
	fputs("usage: tern [-c file] [-o key=value]... queue list [--json] | "
	      "show ID [--json] | flush | delete ID | hold ID | release ID\n",
	    stderr);
	return EX_USAGE;
}

/* --json: ternd's answer as it came, with a final newline. */
static void
q_print_raw(const struct buf *raw)
{
	if (raw->len == 0)
		return;
	fwrite(raw->data, 1, raw->len, stdout);
	if (raw->data[raw->len - 1] != '\n')
		putchar('\n');
}

static int
q_run(const struct conf *c, const struct q_verb *v, const char *id, bool json)
{
	struct q_answer a;
	char req[64];
	int rc;

	if (str_fmt(req, sizeof(req), "%s%s%s", v->req, id ? " " : "",
		id ? id : "") != 0)
		panic("event=request_too_long");
	rc = q_call(c, req, &a);
	if (json && a.doc != NULL)
		q_print_raw(&a.raw);
	else if (rc == 0 && v->print != NULL)
		rc = v->print(a.root);
	q_answer_free(&a);
	return rc;
}

int
cli_queue(const struct conf *c, int argc, char **argv)
{
	const struct q_verb *v = NULL;
	const char *id = NULL;
	bool json = false;
	size_t k;
	int i;

	for (k = 0; argc > 1 && k < sizeof(q_verbs) / sizeof(q_verbs[0]); k++)
		if (strcmp(argv[1], q_verbs[k].name) == 0)
			v = &q_verbs[k];
	if (v == NULL)
		return q_usage("expected list, show, flush, delete, hold or "
			       "release");
	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (argv[i][0] == '-')
			return q_usage("unknown option");
		else if (!v->id || id != NULL)
			return q_usage("too many arguments");
		else
			id = argv[i];
	}
	if (v->id && id == NULL)
		return q_usage("a queue ID is needed");
	if (id != NULL && !queue_id_valid(id))
		return q_usage("a queue ID is 16 lowercase hex digits");
	return q_run(c, v, id, json);
}

int
cli_queue_flush(const struct conf *c, bool quiet)
{
	struct q_answer a;
	int rc = q_call(c, "FLUSH", &a);

	if (rc == 0 && !quiet)
		rc = q_print_flush(a.root);
	q_answer_free(&a);
	return rc;
}

int
cli_mailq(const struct conf *c, int argc, char **argv)
{
	struct sendmail_opts o;
	struct q_answer a;
	char err[256];
	int rc;

	if (argc > 1 && ((rc = sendmail_parse_args(
			      argc - 1, argv + 1, &o, err, sizeof(err))) != 0 ||
			    o.nrcpt > 0)) {
		cli_warnx(
		    "mailq: %s", rc != 0 ? err : "no arguments are taken");
		return EX_USAGE;
	}
	rc = q_call(c, "LIST", &a);
	if (rc == 0)
		rc = q_print_mailq(a.root);
	q_answer_free(&a);
	return rc;
}

int
cli_queue_oldest(const struct conf *c, size_t *n, int64_t *oldest)
{
	const struct json_node *msgs, *m;
	struct q_answer a;
	int64_t created;
	int rc = q_call(c, "LIST", &a);

	*n = 0;
	*oldest = 0;
	if (rc == 0) {
		msgs = json_get(a.root, "messages");
		for (m = msgs != NULL && msgs->type == JSON_ARRAY ? msgs->child
								  : NULL;
		     m != NULL; m = m->next) {
			if (!json_get_int(m, "created", &created))
				continue;
			if (*n == 0 || created < *oldest)
				*oldest = created;
			(*n)++;
		}
	}
	q_answer_free(&a);
	return rc;
}
