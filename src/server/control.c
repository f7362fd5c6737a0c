/*
 * control: ternd's two unix sockets.
 *
 *   STATE/control.sock        0600: `tern queue ...` (ternd's user, root).
 *                             One request line in, one JSON object out.
 *   STATE/public/submit.sock  0666: `tern sendmail` for every local user.
 *                             Plain ESMTP, handled by the same connection
 *                             code as TCP; the peer's uid comes from
 *                             SO_PEERCRED, never from what it says, and
 *                             such a session may relay like an
 *                             authenticated one (it is a local user).
 *
 * STATE itself stays 0711 (traversable, not listable, not writable by
 * others) so that public/ is reachable without exposing the rest.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "server/control.h"
#include "server/dmarcrep.h"
#include "server/tlsrptd.h"
#include "server/dkimkeys.h"
#include "server/dkimsign.h"
#include "server/fault.h"
#include "server/server.h"

#define CONTROL_LINE_MAX 1024 /* LIST and PURGE carry filters */

struct ctl_conn {
	struct server *srv;
	struct bufferevent *bev;
	struct buf out;
	bool busy;
};

static int
unix_listen(const char *path, mode_t mode)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd;

	if (str_copy(sun.sun_path, sizeof(sun.sun_path), path, strlen(path)) !=
	    0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (unlink(path) != 0 && errno != ENOENT)
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 ||
	    chmod(path, mode) != 0 || listen(fd, 128) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void
ctl_free(struct ctl_conn *cc)
{
	bufferevent_free(cc->bev);
	buf_free(&cc->out);
	free(cc);
}

static void
ctl_on_write(struct bufferevent *bev, void *arg)
{
	struct ctl_conn *cc = arg;

	if (!cc->busy && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		ctl_free(cc);
}

static void
ctl_answered(void *arg)
{
	struct ctl_conn *cc = arg;

	cc->busy = false;
	if (bufferevent_write(cc->bev, cc->out.data, cc->out.len) != 0 ||
	    cc->out.len == 0)
		ctl_free(cc);
}

#ifdef TERN_FAULT_INJECTION
/*
 * test-only: "DMARC-RECORD-TEST N IP DOMAIN" records N messages from IP,
 * From DOMAIN, judged by "v=DMARC1; p=reject; rua=mailto:dmarc@DOMAIN"
 * with an aligned SPF pass, through dmarcrep_record() as the inbound
 * evaluation will (tests/e2e/test_dmarc_reports.py).
 */
static void
ctl_dmarc_record_test(struct ctl_conn *cc, const char *args)
{
	struct dmarcrep *dr = cc->srv->dmarcrep;
	char ip[64], dom[254], rec[400];
	unsigned n = 0, i;
	struct dmarc_lookup *lk = xcalloc(1, sizeof(*lk));
	struct dmarc_verdict v;
	const char *txt[1] = {rec};
	size_t len[1];
	struct dmarc_txt ans = {DMARC_DNS_OK, txt, len, 1};
	struct dmarc_input in = {0};
	struct dmarcxml_msg m = {ip, dom, NULL, 0, dom, false, "pass"};
	const char *reply = "{\"ok\":true}\n";

	if (dr == NULL || sscanf(args, "%u %63s %253s", &n, ip, dom) != 3 ||
	    str_fmt(rec, sizeof(rec), "v=DMARC1; p=reject; rua=mailto:dmarc@%s",
		dom) != 0 ||
	    dmarc_lookup_init(lk, dmarcrep_psl(dr), dom, strlen(dom)) !=
		DMARC_STEP_QUERY) {
		reply = "{\"ok\":false,\"error\":\"bad request\"}\n";
		n = 0;
	} else {
		len[0] = strlen(rec);
		if (dmarc_lookup_answer(lk, &ans) != DMARC_STEP_DONE)
			n = 0;
		in.spf_domain = dom;
		in.spf_len = strlen(dom);
		in.spf_pass = true;
		dmarc_evaluate(lk, dmarcrep_psl(dr), &in, &v);
	}
	for (i = 0; i < n; i++)
		dmarcrep_record(dr, lk, &v, &m);
	free(lk);
	if (buf_append_str(&cc->out, reply) != 0)
		log_err("event=control error=\"no room for a reply\"");
	ctl_answered(cc);
}
#endif

/* `tern dmarc report`: the reports due now (dmarcrep.h) */
static void
ctl_dmarc(struct ctl_conn *cc)
{
	if (cc->srv->dmarcrep != NULL) {
		dmarcrep_control(cc->srv->dmarcrep, &cc->out, ctl_answered, cc);
		return;
	}
	if (buf_append_str(&cc->out,
		"{\"ok\":false,\"error\":\"DMARC reports are off "
		"(dmarc.reports = no)\"}\n") != 0)
		log_err("event=control error=\"no room for a reply\"");
	ctl_answered(cc);
}

/* `tern tlsrpt send --now`: the TLS reports due now (tlsrptd.h) */
static void
ctl_tlsrpt(struct ctl_conn *cc)
{
	if (cc->srv->tlsrptd != NULL) {
		tlsrptd_control(cc->srv->tlsrptd, &cc->out, ctl_answered, cc);
		return;
	}
	if (buf_append_str(&cc->out,
		"{\"ok\":false,\"error\":\"TLS reports are off "
		"(tlsrpt.reports = no)\"}\n") != 0)
		log_err("event=control error=\"no room for a reply\"");
	ctl_answered(cc);
}

/* `tern dkim activate`: load STATE/dkim again, say what is active. */
static void
ctl_dkim_reload(struct ctl_conn *cc)
{
	struct dkimkeys *k;

	dkimsign_reload(cc->srv);
	k = cc->srv->dkim;
	if (buf_printf(&cc->out, "{\"ok\":true,\"domains\":%zu,\"keys\":%zu}\n",
		dkimkeys_domains(k), dkimkeys_keys(k)) != 0)
		buf_reset(&cc->out);
	ctl_answered(cc);
}

static void
ctl_on_read(struct bufferevent *bev, void *arg)
{
	struct ctl_conn *cc = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n;
	char *line;

	if (cc->busy)
		return;
	line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF);
	if (line == NULL) {
		if (evbuffer_get_length(in) > CONTROL_LINE_MAX)
			ctl_free(cc);
		return;
	}
	cc->busy = true;
	bufferevent_disable(bev, EV_READ);
	log_info(
	    "event=control request=\"%.*s\"", (int)(n < 80 ? n : 80), line);
#ifdef TERN_FAULT_INJECTION
	/* test-only: does the sandbox hold? (fault.c) */
	if (strncmp(line, "SANDBOX-PROBE ", 14) == 0) {
		fault_sandbox_probe(line + 14, &cc->out);
		free(line);
		ctl_answered(cc);
		return;
	}
	if (strncmp(line, "DMARC-RECORD-TEST ", 18) == 0) {
		ctl_dmarc_record_test(cc, line + 18);
		free(line);
		return;
	}
#endif
	if (strcmp(line, "DMARC-REPORT") == 0) {
		free(line);
		ctl_dmarc(cc);
		return;
	}
	if (strcmp(line, "TLSRPT-SEND") == 0) {
		free(line);
		ctl_tlsrpt(cc);
		return;
	}
	if (strcmp(line, "DKIM-RELOAD") == 0) {
		ctl_dkim_reload(cc);
		free(line);
		return;
	}
	qmgr_control(cc->srv->qmgr, line, &cc->out, ctl_answered, cc);
	free(line);
}

static void
ctl_on_event(struct bufferevent *bev, short what, void *arg)
{
	struct ctl_conn *cc = arg;

	(void)bev;
	if ((what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) && !cc->busy)
		ctl_free(cc);
}

static void
ctl_on_accept(struct evconnlistener *ev, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct ctl_conn *cc = xcalloc(1, sizeof(*cc));

	(void)ev;
	(void)sa;
	(void)salen;
	cc->srv = arg;
	buf_init(&cc->out, 256u << 20);
	cc->bev =
	    bufferevent_socket_new(cc->srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (cc->bev == NULL)
		panic("event=oom where=control");
	bufferevent_setcb(cc->bev, ctl_on_read, ctl_on_write, ctl_on_event, cc);
	bufferevent_enable(cc->bev, EV_READ);
}

int
control_listen(struct server *s)
{
	char path[4096], pub[4096];
	int fd;

	if (str_fmt(path, sizeof(path), "%s/control.sock",
		s->conf->state_dir) != 0 ||
	    str_fmt(pub, sizeof(pub), "%s/public", s->conf->state_dir) != 0)
		return -1;
	if ((fd = unix_listen(path, 0600)) < 0) {
		log_err("event=startup step=control path=%s error=\"%s\"", path,
		    strerror(errno));
		return -1;
	}
	s->control = evconnlistener_new(s->base, ctl_on_accept, s,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
	if ((mkdir(pub, 0755) != 0 && errno != EEXIST) ||
	    chmod(pub, 0755) != 0 || chmod(s->conf->state_dir, 0711) != 0)
		return -1;
	if (str_fmt(path, sizeof(path), "%s/submit.sock", pub) != 0 ||
	    (fd = unix_listen(path, 0666)) < 0) {
		log_err("event=startup step=submit_socket path=%s error=\"%s\"",
		    path, strerror(errno));
		return -1;
	}
	s->listeners[s->nlisteners].kind = LISTEN_LOCAL;
	s->listeners[s->nlisteners].name = "local";
	s->listeners[s->nlisteners].fd = fd;
	s->nlisteners++;
	return s->control != NULL ? 0 : -1;
}

void
control_close(struct server *s)
{
	if (s->control != NULL)
		evconnlistener_free(s->control);
	s->control = NULL;
}
