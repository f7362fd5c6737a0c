/*
 * Unit tests for the pure parts of src/cli/sendmail.c, table-driven: the
 * sendmail flag parser (the flag sets real programs pass), the message
 * reader (LF to CRLF, the lone "." rule, long lines, the size limit), the
 * sender and recipient parsing, the header composition of -t / -F (Bcc
 * removal, a body without header), and the exit codes of replies.
 *
 * The reader is a stream parser: each input is fed whole, one byte at a
 * time and at random split points (t_next_chunk), and every mode must
 * give the same output, status and line number.
 */
#include <sysexits.h>

#include "t.h"
#include "cli/cli.h"

#define DOM "host.example"

/* ---- flags ------------------------------------------------------------ */

struct flag_row {
	const char *name;
	const char *argv[8];
	int rc;
	enum sendmail_mode mode;
	bool extract, dots_ok, verbose;
	const char *from, *fullname;
	unsigned notify;
	enum smtp_ret ret;
	int body;
	int nrcpt;
	const char *rcpt0;
};

static const struct flag_row flag_rows[] = {
    {"php mail()", {"-t", "-i"}, 0, SENDMAIL_MODE_SEND, true, true,
	.rcpt0 = NULL},
    {"mutt", {"-oem", "-oi", "--", "a@b"}, 0, SENDMAIL_MODE_SEND, false, true,
	.nrcpt = 1, .rcpt0 = "a@b"},
    {"combined -ti", {"-ti"}, 0, SENDMAIL_MODE_SEND, true, true, .rcpt0 = NULL},
    {"combined -it", {"-it"}, 0, SENDMAIL_MODE_SEND, true, true, .rcpt0 = NULL},
    {"debian cron", {"-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"}, 0,
	SENDMAIL_MODE_SEND, false, true, .fullname = "CronDaemon", .body = 8,
	.nrcpt = 1, .rcpt0 = "root"},
    {"-F separate", {"-F", "Cron Daemon", "x"}, 0, .fullname = "Cron Daemon",
	.nrcpt = 1, .rcpt0 = "x"},
    {"-f separate", {"-f", "a@b", "x@y"}, 0, .from = "a@b", .nrcpt = 1,
	.rcpt0 = "x@y"},
    {"-f attached", {"-fa@b", "x@y", "z@w"}, 0, .from = "a@b", .nrcpt = 2,
	.rcpt0 = "x@y"},
    {"-f empty: null sender", {"-f", "", "x"}, 0, .from = "", .nrcpt = 1,
	.rcpt0 = "x"},
    {"-r is -f", {"-r", "a@b"}, 0, .from = "a@b"},
    {"-tf combined", {"-tfa@b"}, 0, SENDMAIL_MODE_SEND, true, .from = "a@b"},
    {"-bm", {"-bm", "x"}, 0, SENDMAIL_MODE_SEND, .nrcpt = 1, .rcpt0 = "x"},
    {"-bp", {"-bp"}, 0, SENDMAIL_MODE_MAILQ, .rcpt0 = NULL},
    {"-bs", {"-bs"}, 0, SENDMAIL_MODE_SMTP, .rcpt0 = NULL},
    {"-b s separate", {"-b", "s"}, 0, SENDMAIL_MODE_SMTP, .rcpt0 = NULL},
    {"-bi", {"-bi"}, 0, SENDMAIL_MODE_NOOP, .rcpt0 = NULL},
    {"-bd refused", {"-bd"}, EX_USAGE, .rcpt0 = NULL},
    {"-bv refused", {"-bv", "x"}, EX_USAGE, .rcpt0 = NULL},
    {"-q", {"-q"}, 0, SENDMAIL_MODE_FLUSH, .rcpt0 = NULL},
    {"-q30m", {"-q30m"}, 0, SENDMAIL_MODE_FLUSH, .rcpt0 = NULL},
    {"-v -q", {"-v", "-q"}, 0, SENDMAIL_MODE_FLUSH, false, false, true,
	.rcpt0 = NULL},
    {"error and delivery modes",
	{"-oem", "-oep", "-oeq", "-odb", "-odi", "-om", "x"}, 0, .nrcpt = 1,
	.rcpt0 = "x"},
    {"-o i separate", {"-o", "i"}, 0, SENDMAIL_MODE_SEND, false, true,
	.rcpt0 = NULL},
    {"-N list", {"-N", "success,delay", "x"}, 0,
	.notify = SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_DELAY, .nrcpt = 1,
	.rcpt0 = "x"},
    {"-N never", {"-Nnever"}, 0, .notify = SMTP_NOTIFY_NEVER},
    {"-N never plus", {"-N", "never,success"}, EX_USAGE, .rcpt0 = NULL},
    {"-N junk", {"-N", "sometimes"}, EX_USAGE, .rcpt0 = NULL},
    {"-N empty", {"-N", ""}, EX_USAGE, .rcpt0 = NULL},
    {"-R hdrs", {"-R", "hdrs"}, 0, .ret = SMTP_RET_HDRS},
    {"-R FULL", {"-RFULL"}, 0, .ret = SMTP_RET_FULL},
    {"-R junk", {"-R", "some"}, EX_USAGE, .rcpt0 = NULL},
    {"-V", {"-V", "env-1"}, 0, .rcpt0 = NULL},
    {"-V with space", {"-V", "a b"}, EX_USAGE, .rcpt0 = NULL},
    {"-B 7BIT", {"-B", "7bit"}, 0, .body = 7},
    {"-B junk", {"-B", "binarymime"}, EX_USAGE, .rcpt0 = NULL},
    {"ignored ones", {"-G", "-U", "-m", "-n", "-L", "tag", "-h5", "-Oa=b"}, 0,
	.rcpt0 = NULL},
    {"-p ignored", {"-p", "smtp", "x"}, 0, .nrcpt = 1, .rcpt0 = "x"},
    {"-- ends options", {"--", "-x@y"}, 0, .nrcpt = 1, .rcpt0 = "-x@y"},
    {"options stop at a recipient", {"x@y", "-t"}, 0, .nrcpt = 2,
	.rcpt0 = "x@y"},
    {"lone dash is a recipient", {"-"}, 0, .nrcpt = 1, .rcpt0 = "-"},
    {"unknown -X", {"-X", "/tmp/log"}, EX_USAGE, .rcpt0 = NULL},
    {"unknown -C", {"-C", "/etc/mail/sendmail.cf"}, EX_USAGE, .rcpt0 = NULL},
    {"unknown in a bundle", {"-tx"}, EX_USAGE, .rcpt0 = NULL},
    {"long option", {"--help"}, EX_USAGE, .rcpt0 = NULL},
    {"value missing", {"-f"}, EX_USAGE, .rcpt0 = NULL},
    {"-F control char", {"-F", "a\nBcc: x@y"}, EX_USAGE, .rcpt0 = NULL},
    {"-f control char", {"-f", "a@b\r\n"}, EX_USAGE, .rcpt0 = NULL},
    {"nothing", {NULL}, 0, .rcpt0 = NULL},
};

static void
test_flags(void)
{
	size_t i;

	for (i = 0; i < sizeof(flag_rows) / sizeof(flag_rows[0]); i++) {
		const struct flag_row *r = &flag_rows[i];
		struct sendmail_opts o;
		char err[256] = "", *argv[8];
		int argc = 0, rc;

		t_case(r->name);
		while (argc < 8 && r->argv[argc] != NULL) {
			argv[argc] = (char *)(uintptr_t)r->argv[argc];
			argc++;
		}
		rc = sendmail_parse_args(argc, argv, &o, err, sizeof(err));
		T_CHECK_INT(rc, r->rc);
		if (rc != 0) {
			T_CHECK(err[0] != '\0');
			continue;
		}
		T_CHECK_INT(o.mode, r->mode);
		T_CHECK_INT(o.extract, r->extract);
		T_CHECK_INT(o.dots_ok, r->dots_ok);
		T_CHECK_INT(o.verbose, r->verbose);
		T_CHECK((o.from == NULL) == (r->from == NULL));
		if (r->from != NULL && o.from != NULL)
			T_CHECK_STR(o.from, r->from);
		if (r->fullname != NULL)
			T_CHECK_STR(o.fullname, r->fullname);
		T_CHECK_INT(o.notify, r->notify);
		T_CHECK_INT(o.ret, r->ret);
		T_CHECK_INT(o.body, r->body);
		T_CHECK_INT(o.nrcpt, r->nrcpt);
		if (r->rcpt0 != NULL && o.nrcpt > 0)
			T_CHECK_STR(o.rcpt[0], r->rcpt0);
	}
}

/* ---- the reader ------------------------------------------------------- */

struct read_row {
	const char *name;
	const char *in;
	bool dots_ok;
	const char *out;
	enum sendmail_read_status st;
	size_t max; /* 0: 1 MiB */
};

static const struct read_row read_rows[] = {
    {"LF to CRLF", "a\nb\n", false, "a\r\nb\r\n", SENDMAIL_READ_MORE, .max = 0},
    {"CRLF kept", "a\r\nb\r\n", false, "a\r\nb\r\n", SENDMAIL_READ_MORE,
	.max = 0},
    {"last line ended", "a\nb", false, "a\r\nb\r\n", SENDMAIL_READ_MORE,
	.max = 0},
    {"empty", "", false, "", SENDMAIL_READ_MORE, .max = 0},
    {"empty lines", "\n\n", false, "\r\n\r\n", SENDMAIL_READ_MORE, .max = 0},
    {"bare CR is a line end", "a\rb\n", false, "a\r\nb\r\n", SENDMAIL_READ_MORE,
	.max = 0},
    {"CR CR LF", "a\r\r\nb", false, "a\r\n\r\nb\r\n", SENDMAIL_READ_MORE,
	.max = 0},
    {"dot ends input", "a\n.\nb\n", false, "a\r\n", SENDMAIL_READ_END,
	.max = 0},
    {"dot CRLF ends input", "a\r\n.\r\nb", false, "a\r\n", SENDMAIL_READ_END,
	.max = 0},
    {"dot first", ".\nrest\n", false, "", SENDMAIL_READ_END, .max = 0},
    {"dot at EOF", "a\n.", false, "a\r\n", SENDMAIL_READ_END, .max = 0},
    {"-i: dot is content", "a\n.\nb\n", true, "a\r\n.\r\nb\r\n",
	SENDMAIL_READ_MORE, .max = 0},
    {"two dots", "..\n", false, "..\r\n", SENDMAIL_READ_MORE, .max = 0},
    {"dot space", ". \n", false, ". \r\n", SENDMAIL_READ_MORE, .max = 0},
    {"dot after bare CR", "a\r.\rb", false, "a\r\n", SENDMAIL_READ_END,
	.max = 0},
    {"8-bit and NUL kept", "\xc3\xa9\0x\n", false, "\xc3\xa9\0x\r\n",
	SENDMAIL_READ_MORE, .max = 0},
    {"too big", "0123456789\n", false, NULL, SENDMAIL_READ_BIG, 8},
    {"just fits", "012345\n", false, "012345\r\n", SENDMAIL_READ_MORE, 8},
};

static void
feed_row(const char *in, size_t len, bool dots_ok, size_t max, enum t_feed mode,
    struct buf *out, struct sendmail_reader *r)
{
	size_t off = 0, n;

	buf_init(out, max);
	sendmail_reader_init(r, out, dots_ok);
	while ((n = t_next_chunk(mode, len - off)) > 0) {
		void *map;
		size_t maplen;
		const char *g = t_guard(in + off, n, &map, &maplen);

		(void)sendmail_read_feed(r, g, n);
		t_unguard(map, maplen);
		off += n;
	}
	(void)sendmail_read_finish(r);
}

static size_t
row_len(const struct read_row *r)
{
	return strcmp(r->name, "8-bit and NUL kept") == 0 ? 5 : strlen(r->in);
}

static void
test_reader(void)
{
	size_t i;
	enum t_feed m;

	for (i = 0; i < sizeof(read_rows) / sizeof(read_rows[0]); i++) {
		const struct read_row *row = &read_rows[i];
		size_t olen = row->out == NULL ? 0
			      : strcmp(row->name, "8-bit and NUL kept") == 0
				  ? 6
				  : strlen(row->out);

		t_case(row->name);
		for (m = T_FEED_WHOLE; m < T_FEED_NMODES; m++) {
			struct sendmail_reader r;
			struct buf out;

			feed_row(row->in, row_len(row), row->dots_ok,
			    row->max ? row->max : 1u << 20, m, &out, &r);
			T_CHECK_INT(r.st, row->st);
			if (row->out != NULL) {
				T_CHECK_INT(out.len, olen);
				T_CHECK(olen == 0 ||
					memcmp(out.data, row->out, olen) == 0);
			}
			buf_free(&out);
		}
	}
}

/* Lines of 998 and 999 octets, after n short lines. */
static void
test_long_lines(void)
{
	char in[3000];
	enum t_feed m;
	int crlf;

	for (crlf = 0; crlf <= 1; crlf++) {
		for (m = T_FEED_WHOLE; m < T_FEED_NMODES; m++) {
			struct sendmail_reader r;
			struct buf out;
			size_t n = 0;

			t_case(crlf ? "998 + CRLF fits" : "998 + LF fits");
			memcpy(in, "x\ny\n", 4);
			n = 4;
			memset(in + n, 'a', 998);
			n += 998;
			memcpy(in + n, crlf ? "\r\n" : "\n", crlf ? 2u : 1u);
			n += crlf ? 2 : 1;
			feed_row(in, n, false, 1u << 20, m, &out, &r);
			T_CHECK_INT(r.st, SENDMAIL_READ_MORE);
			T_CHECK_INT(out.len, 3 + 3 + 998 + 2);
			buf_free(&out);

			t_case("999 refused, line 3");
			in[n - (crlf ? 2 : 1)] = 'b';
			feed_row(in, n, false, 1u << 20, m, &out, &r);
			T_CHECK_INT(r.st, SENDMAIL_READ_LONG);
			T_CHECK_INT(r.line, 3);
			buf_free(&out);
		}
	}
	t_case("999 at EOF without line end");
	{
		struct sendmail_reader r;
		struct buf out;

		memset(in, 'c', 999);
		feed_row(in, 999, false, 1u << 20, T_FEED_WHOLE, &out, &r);
		T_CHECK_INT(r.st, SENDMAIL_READ_LONG);
		T_CHECK_INT(r.line, 1);
		buf_free(&out);
	}
}

/* ---- sender and recipients -------------------------------------------- */

struct sender_row {
	const char *from;
	const char *login;
	int rc;
	const char *sender;
};

static const struct sender_row sender_rows[] = {
    {NULL, "ben", 0, "ben@" DOM},
    {NULL, "bad login", EX_USAGE, NULL},
    {"", "ben", 0, ""},
    {"<>", "ben", 0, ""},
    {"a@b.example", "ben", 0, "a@b.example"},
    {"<a@b.example>", "ben", 0, "a@b.example"},
    {"Ben <a@b.example>", "ben", 0, "a@b.example"},
    {"root", "ben", 0, "root@" DOM},
    {"a@b.example, c@d.example", "ben", EX_USAGE, NULL},
    {"a@", "ben", EX_USAGE, NULL},
};

static void
test_sender(void)
{
	size_t i;

	for (i = 0; i < sizeof(sender_rows) / sizeof(sender_rows[0]); i++) {
		const struct sender_row *r = &sender_rows[i];
		struct sendmail_env e = {.nrcpt = 0};
		char err[256] = "";
		int rc;

		t_case(r->from != NULL ? r->from : r->login);
		rc = sendmail_set_sender(
		    &e, r->from, r->login, DOM, err, sizeof(err));
		T_CHECK_INT(rc, r->rc);
		if (rc == 0)
			T_CHECK_STR(e.sender, r->sender);
		else
			T_CHECK(err[0] != '\0');
	}
}

struct rcpt_row {
	const char *list;
	int rc;
	const char *joined; /* the envelope, comma-joined */
};

static const struct rcpt_row rcpt_rows[] = {
    {"a@b.example", 0, "a@b.example"},
    {"a@b.example,c@d.example", 0, "a@b.example,c@d.example"},
    {"a@b.example, Ben <c@d.example>", 0, "a@b.example,c@d.example"},
    {"root", 0, "root@" DOM},
    {"root, Root@" DOM, 0, "root@" DOM ",Root@" DOM},
    {"a@B.Example, a@b.example", 0, "a@b.example"},
    {"team: a@b.example, c@d.example;", 0, "a@b.example,c@d.example"},
    {"undisclosed-recipients:;", 0, ""},
    {"\"a b\"@c.example", 0, "\"a b\"@c.example"},
    {"j\xc3\xb6rg@b.example", 0, "j\xc3\xb6rg@b.example"},
    {"a@", -1, NULL},
    {"a@b.example,,", 0, "a@b.example"},
    {"<a@b.example", -1, NULL},
};

static void
join_rcpts(const struct sendmail_env *e, char *out, size_t len)
{
	size_t k, n = 0;

	out[0] = '\0';
	for (k = 0; k < e->nrcpt; k++) {
		int w = snprintf(
		    out + n, len - n, "%s%s", k ? "," : "", e->rcpt[k]);

		if (w < 0 || (size_t)w >= len - n)
			return;
		n += (size_t)w;
	}
}

static void
test_rcpts(void)
{
	char err[256], joined[1024];
	size_t i;

	for (i = 0; i < sizeof(rcpt_rows) / sizeof(rcpt_rows[0]); i++) {
		const struct rcpt_row *r = &rcpt_rows[i];
		struct sendmail_env e = {.nrcpt = 0};
		int rc;

		t_case(r->list);
		rc = sendmail_add_rcpts(
		    &e, r->list, strlen(r->list), DOM, err, sizeof(err));
		T_CHECK_INT(rc, r->rc);
		if (rc == 0) {
			join_rcpts(&e, joined, sizeof(joined));
			T_CHECK_STR(joined, r->joined);
		}
		sendmail_env_free(&e);
	}
	t_case("utf8 flag");
	{
		struct sendmail_env e = {.nrcpt = 0};

		T_CHECK(sendmail_add_rcpts(&e, "j\xc3\xb6rg@b.example", 11, DOM,
			    err, sizeof(err)) == 0 &&
			e.utf8);
		sendmail_env_free(&e);
	}
	t_case("at most SENDMAIL_RCPT_MAX");
	{
		struct sendmail_env e = {.nrcpt = 0};
		char a[64];
		int k, rc = 0;

		for (k = 0; k <= SENDMAIL_RCPT_MAX && rc == 0; k++) {
			(void)snprintf(a, sizeof(a), "u%d@b.example", k);
			rc = sendmail_add_rcpts(
			    &e, a, strlen(a), DOM, err, sizeof(err));
		}
		T_CHECK_INT(rc, -1);
		T_CHECK_INT(e.nrcpt, SENDMAIL_RCPT_MAX);
		sendmail_env_free(&e);
	}
}

/* ---- composition ------------------------------------------------------ */

struct compose_row {
	const char *name;
	const char *in;
	const char *fullname;
	bool extract;
	const char *sender;
	int rc;
	const char *out;
	const char *rcpts;
};

static const struct compose_row compose_rows[] = {
    {"-t To", "To: a@b.example\r\n\r\nbody\r\n", NULL, true, "s@h.example", 0,
	"To: a@b.example\r\n\r\nbody\r\n", "a@b.example"},
    {"-t To Cc Bcc, Bcc removed",
	"To: a@b.example, Ben <c@d.example>\r\nCc: e@f.example\r\n"
	"Bcc: g@h.example\r\nSubject: x\r\n\r\nbody\r\n",
	NULL, true, "s@h.example", 0,
	"To: a@b.example, Ben <c@d.example>\r\nCc: e@f.example\r\n"
	"Subject: x\r\n\r\nbody\r\n",
	"a@b.example,c@d.example,e@f.example,g@h.example"},
    {"-t folded To", "To: a@b.example,\r\n c@d.example\r\n\r\nx\r\n", NULL,
	true, "s@h.example", 0, "To: a@b.example,\r\n c@d.example\r\n\r\nx\r\n",
	"a@b.example,c@d.example"},
    {"-t folded Bcc removed whole",
	"Bcc: a@b.example,\r\n\tc@d.example\r\nTo: e@f.example\r\n\r\nx\r\n",
	NULL, true, "s@h.example", 0, "To: e@f.example\r\n\r\nx\r\n",
	"a@b.example,c@d.example,e@f.example"},
    {"-t bare name", "To: root\r\n\r\n", NULL, true, "s@h.example", 0,
	"To: root\r\n\r\n", "root@" DOM},
    {"-t names in any case",
	"tO: a@b.example\r\nCC: c@d.example\r\n"
	"bcc: e@f.example\r\n\r\n",
	NULL, true, "s@h.example", 0,
	"tO: a@b.example\r\nCC: c@d.example\r\n\r\n",
	"a@b.example,c@d.example,e@f.example"},
    {"-t duplicates once", "To: a@b.example\r\nCc: a@b.example\r\n\r\n", NULL,
	true, "s@h.example", 0, "To: a@b.example\r\nCc: a@b.example\r\n\r\n",
	"a@b.example"},
    {"-t undisclosed", "To: undisclosed-recipients:;\r\n\r\nx\r\n", NULL, true,
	"s@h.example", 0, "To: undisclosed-recipients:;\r\n\r\nx\r\n", ""},
    {"-t bad To", "To: a@@b\r\n\r\n", NULL, true, "s@h.example", EX_DATAERR,
	NULL, NULL},
    {"-t stops at a non-field line",
	"To: a@b.example\r\nnot a header\r\nCc: c@d.example\r\n\r\nbody\r\n",
	NULL, true, "s@h.example", 0,
	"To: a@b.example\r\n\r\nnot a header\r\nCc: c@d.example\r\n\r\n"
	"body\r\n",
	"a@b.example"},
    {"no -t: To ignored, Bcc still removed",
	"To: a@b.example\r\nBcc: c@d.example\r\n\r\nx\r\n", NULL, false,
	"s@h.example", 0, "To: a@b.example\r\n\r\nx\r\n", ""},
    {"Resent-Bcc removed", "Resent-Bcc: a@b.example\r\nX: y\r\n\r\n", NULL,
	false, "s@h.example", 0, "X: y\r\n\r\n", ""},
    {"no header: an empty line first", "hi\r\n", NULL, false, "s@h.example", 0,
	"\r\nhi\r\n", ""},
    {"-F on no header", "hi\r\n", "Cron Daemon", false, "s@h.example", 0,
	"From: Cron Daemon <s@h.example>\r\n\r\nhi\r\n", ""},
    {"-F with a header", "Subject: x\r\n\r\nhi\r\n", "Cron", false,
	"s@h.example", 0,
	"From: Cron <s@h.example>\r\nSubject: x\r\n\r\nhi\r\n", ""},
    {"-F but From present", "from: a@b.example\r\n\r\nhi\r\n", "Cron", false,
	"s@h.example", 0, "from: a@b.example\r\n\r\nhi\r\n", ""},
    {"-F quoted", "\r\nx\r\n", "J. \"Jo\" Smith", false, "s@h.example", 0,
	"From: \"J. \\\"Jo\\\" Smith\" <s@h.example>\r\n\r\nx\r\n", ""},
    {"-F with null sender", "\r\nx\r\n", "Cron", false, "", 0, "\r\nx\r\n", ""},
    {"empty message", "", NULL, true, "s@h.example", 0, "", ""},
    {"empty line first", "\r\nTo: a@b.example\r\n", NULL, true, "s@h.example",
	0, "\r\nTo: a@b.example\r\n", ""},
    {"header only", "To: a@b.example\r\n", NULL, true, "s@h.example", 0,
	"To: a@b.example\r\n", "a@b.example"},
};

static void
test_compose(void)
{
	char err[256], joined[1024];
	size_t i;

	for (i = 0; i < sizeof(compose_rows) / sizeof(compose_rows[0]); i++) {
		const struct compose_row *r = &compose_rows[i];
		struct sendmail_env e = {.nrcpt = 0};
		struct buf out;
		void *map;
		size_t maplen, len = strlen(r->in);
		const char *g = t_guard(r->in, len, &map, &maplen);
		int rc;

		t_case(r->name);
		buf_init(&out, 1u << 20);
		T_CHECK(str_copy(e.sender, sizeof(e.sender), r->sender,
			    strlen(r->sender)) == 0);
		rc = sendmail_compose(g, len, r->fullname, r->extract, DOM, &e,
		    &out, err, sizeof(err));
		T_CHECK_INT(rc, r->rc);
		if (rc == 0) {
			T_CHECK_STR(out.data != NULL ? out.data : "", r->out);
			join_rcpts(&e, joined, sizeof(joined));
			T_CHECK_STR(joined, r->rcpts);
		} else {
			T_CHECK(err[0] != '\0');
		}
		t_unguard(map, maplen);
		buf_free(&out);
		sendmail_env_free(&e);
	}
}

/* ---- exit codes ------------------------------------------------------- */

struct exit_row {
	int code;
	const char *enh;
	bool after_data;
	int rc;
};

static const struct exit_row exit_rows[] = {
    {250, "2.0.0", true, 0},
    {354, "", false, 0},
    {421, "4.3.2", false, EX_TEMPFAIL},
    {451, "4.3.0", true, EX_TEMPFAIL},
    {452, "4.5.3", false, EX_TEMPFAIL},
    {550, "5.1.1", false, EX_UNAVAILABLE},
    {554, "5.7.1", false, EX_UNAVAILABLE},
    {530, "5.7.0", false, EX_UNAVAILABLE},
    {553, "5.1.3", false, EX_DATAERR},
    {553, "5.1.7", false, EX_DATAERR},
    {552, "5.3.4", false, EX_DATAERR},
    {554, "5.6.0", false, EX_DATAERR},
    {554, "", true, EX_DATAERR},
    {550, "", false, EX_UNAVAILABLE},
};

static void
test_exit_codes(void)
{
	size_t i;

	for (i = 0; i < sizeof(exit_rows) / sizeof(exit_rows[0]); i++) {
		const struct exit_row *r = &exit_rows[i];
		char name[32];

		(void)snprintf(name, sizeof(name), "%d %s%s", r->code, r->enh,
		    r->after_data ? " after data" : "");
		t_case(name);
		T_CHECK_INT(
		    sendmail_exit_code(r->code, r->enh, r->after_data), r->rc);
	}
}

int
main(void)
{
	T_RUN(test_flags);
	T_RUN(test_reader);
	T_RUN(test_long_lines);
	T_RUN(test_sender);
	T_RUN(test_rcpts);
	T_RUN(test_compose);
	T_RUN(test_exit_codes);
	return t_summary();
}
