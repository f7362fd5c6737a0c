/*
 * queue: "tern queue list|show|flush|delete|hold|release|requeue|bounce|
 * purge" and mailq(1), which see ternd's queue through its control socket
 * STATE/control.sock (mode 0600: ternd's user and root only).  The
 * protocol is one request line ("LIST [FILTER]", "SHOW ID", "FLUSH",
 * "DELETE ID", "HOLD ID", "RELEASE ID", "REQUEUE ID|ALL", "BOUNCE ID",
 * "PURGE FILTER"; FILTER: words to=DOMAIN from=ADDR|DOMAIN|<> older=SECS
 * deferred, queue/admin.h), answered by one JSON object, after which
 * ternd closes the connection:
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
#include "queue/admin.h"
#include "queue/queue.h"

#define Q_TEXT_MAX     2048 /* one printed string, cleaned */
#define Q_REQ_MAX      900  /* a request line (control.c takes 1024) */
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
	char path[4096], line[Q_REQ_MAX + 2];
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

/* Under a row: each recipient still to do, and why it waits (as mailq). */
static void
q_list_rcpts(const struct q_msg *q)
{
	char addr[Q_TEXT_MAX], last[Q_TEXT_MAX];
	const struct json_node *r;
	const char *a;

	for (r = q->rcpts != NULL ? q->rcpts->child : NULL; r; r = r->next) {
		if (!q_rcpt_pending(r) || (a = json_get_str(r, "addr")) == NULL)
			continue;
		printf("    to %s", q_str(a, addr, sizeof(addr)));
		if (q_last_reply(r, last, sizeof(last)))
			printf("  (%s)", last);
		putchar('\n');
	}
}

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
	q_list_rcpts(q);
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
	bool id;     /* takes an ID */
	bool filter; /* takes --to --from --older --deferred */
	int (*print)(const struct json_node *root);
};

static int
q_print_requeue(const struct json_node *root)
{
	int64_t n = 0;

	(void)json_get_int(root, "requeued", &n);
	printf("%" PRId64 " message%s requeued: routed again now\n", n,
	    n == 1 ? "" : "s");
	return 0;
}

static int
q_print_purge(const struct json_node *root)
{
	int64_t n = 0;

	(void)json_get_int(root, "purged", &n);
	printf(
	    "%" PRId64 " message%s deleted (no DSN)\n", n, n == 1 ? "" : "s");
	return 0;
}

static int
q_print_bounce(const struct json_node *root)
{
	(void)root;
	printf("returned to the sender: a DSN goes out at once\n");
	return 0;
}

static const struct q_verb q_verbs[] = {
    {"list", "LIST", false, true, q_print_list},
    {"show", "SHOW", true, false, q_print_show},
    {"flush", "FLUSH", false, false, q_print_flush},
    {"delete", "DELETE", true, false, NULL},
    {"hold", "HOLD", true, false, NULL},
    {"release", "RELEASE", true, false, NULL},
    {"requeue", "REQUEUE", true, false, q_print_requeue},
    {"bounce", "BOUNCE", true, false, q_print_bounce},
    {"purge", "PURGE", false, true, q_print_purge},
};

static int
q_usage(const char *what)
{
	cli_warnx("queue: %s", what);
	fputs("usage: tern [-c file] [-o key=value]... queue\n"
	      "  list [--to DOMAIN] [--from ADDR|DOMAIN|<>] [--older 1h] "
	      "[--deferred]\n"
	      "  show ID | flush | delete ID | hold ID | release ID\n"
	      "  requeue ID|--all | bounce ID\n"
	      "  purge FILTER... [--yes]   (FILTER as for list; without "
	      "--yes, shows)\n"
	      "  each with --json\n",
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
q_run(const struct conf *c, const char *req,
    int (*print)(const struct json_node *), bool json)
{
	struct q_answer a;
	int rc;

	rc = q_call(c, req, &a);
	if (json && a.doc != NULL)
		q_print_raw(&a.raw);
	else if (rc == 0 && print != NULL)
		rc = print(a.root);
	q_answer_free(&a);
	return rc;
}

struct q_args {
	const char *id;
	char filter[Q_REQ_MAX - 16]; /* " to=... from=..." */
	bool json, yes, all;
};

/* One filter option into a->filter as a request word; 0 or EX_USAGE. */
static int
q_filter_opt(struct q_args *a, const char *opt, const char *val)
{
	struct queue_filter f;
	char word[400], err[128];
	uint64_t secs;
	size_t n = strlen(a->filter);

	if (strcmp(opt, "--deferred") == 0)
		str_fmt_cut(word, sizeof(word), " deferred");
	else if (val == NULL)
		return q_usage("a filter option needs a value");
	else if (strcmp(opt, "--older") == 0) {
		if (queue_duration_parse(val, &secs) != 0)
			return q_usage("--older: a duration (30m, 1h, 2d, 1w)");
		str_fmt_cut(word, sizeof(word), " older=%llu",
		    (unsigned long long)secs);
	} else if (str_fmt(word, sizeof(word), " %s=%s",
		       strcmp(opt, "--to") == 0 ? "to" : "from", val) != 0)
		return q_usage("filter value too long");
	/* what ternd will parse, checked here first: no word can slip in */
	if (queue_filter_parse(&f, word, err, sizeof(err)) != 0)
		return q_usage(err);
	if (str_copy(
		a->filter + n, sizeof(a->filter) - n, word, strlen(word)) != 0)
		return q_usage("filters too long");
	return 0;
}

static bool
q_is_filter(const char *opt)
{
	return strcmp(opt, "--to") == 0 || strcmp(opt, "--from") == 0 ||
	       strcmp(opt, "--older") == 0 || strcmp(opt, "--deferred") == 0;
}

static int
q_parse(const struct q_verb *v, int argc, char **argv, struct q_args *a)
{
	int i, rc;

	memset(a, 0, sizeof(*a));
	for (i = 2; i < argc; i++) {
		const char *o = argv[i];

		if (strcmp(o, "--json") == 0)
			a->json = true;
		else if (strcmp(o, "--yes") == 0 &&
			 strcmp(v->name, "purge") == 0)
			a->yes = true;
		else if (strcmp(o, "--all") == 0 &&
			 strcmp(v->name, "requeue") == 0)
			a->all = true;
		else if (v->filter && q_is_filter(o)) {
			bool flag = strcmp(o, "--deferred") == 0;

			if (!flag && i + 1 >= argc)
				return q_usage("a filter option needs a value");
			if ((rc = q_filter_opt(
				 a, o, flag ? NULL : argv[i + 1])) != 0)
				return rc;
			i += flag ? 0 : 1;
		} else if (o[0] == '-')
			return q_usage("unknown option");
		else if (!v->id || a->id != NULL)
			return q_usage("too many arguments");
		else
			a->id = o;
	}
	if (a->all && a->id != NULL)
		return q_usage("an ID or --all, not both");
	if (v->id && a->id == NULL && !a->all)
		return q_usage(strcmp(v->name, "requeue") == 0
				   ? "an ID or --all is needed"
				   : "a queue ID is needed");
	if (a->id != NULL && !queue_id_valid(a->id))
		return q_usage("a queue ID is 16 lowercase hex digits");
	if (strcmp(v->name, "purge") == 0 && a->filter[0] == '\0')
		return q_usage("purge needs a filter (--to DOMAIN, --from, "
			       "--older, --deferred)");
	return 0;
}

/*
 * purge without --yes changes nothing: it lists what the filter selects
 * and says how to go on (exit 1), as an administrator expects of a
 * command that deletes mail without telling its senders.
 */
static int
q_purge_preview(const struct conf *c, const struct q_args *a)
{
	char req[Q_REQ_MAX];
	int rc;

	if (str_fmt(req, sizeof(req), "LIST%s", a->filter) != 0)
		panic("event=request_too_long");
	rc = q_run(c, req, q_print_list, a->json);
	if (rc == 0) {
		cli_warnx("queue purge: nothing deleted; run it again with "
			  "--yes to delete %s without a DSN",
		    a->json ? "the messages listed" : "these messages");
		rc = 1;
	}
	return rc;
}

int
cli_queue(const struct conf *c, int argc, char **argv)
{
	const struct q_verb *v = NULL;
	struct q_args a;
	char req[Q_REQ_MAX];
	size_t k;
	int rc;

	for (k = 0; argc > 1 && k < sizeof(q_verbs) / sizeof(q_verbs[0]); k++)
		if (strcmp(argv[1], q_verbs[k].name) == 0)
			v = &q_verbs[k];
	if (v == NULL)
		return q_usage("expected list, show, flush, delete, hold, "
			       "release, requeue, bounce or purge");
	if ((rc = q_parse(v, argc, argv, &a)) != 0)
		return rc;
	if (strcmp(v->name, "purge") == 0 && !a.yes)
		return q_purge_preview(c, &a);
	if (str_fmt(req, sizeof(req), "%s%s%s%s", v->req,
		a.id != NULL || a.all ? " " : "",
		a.all	       ? "ALL"
		: a.id != NULL ? a.id
			       : "",
		a.filter) != 0)
		panic("event=request_too_long");
	return q_run(c, req, v->print, a.json);
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
