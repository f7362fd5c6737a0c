/*
 * conngrey: greylisting at RCPT on the MX port (docs/defence.md
 * "Greylisting").
 *
 * A recipient tern would take is first checked against the greylist
 * store (greylist.h, STATE/greylist.db): the triplet (client /24 or /64,
 * sender, recipient) seen first is deferred 451 4.7.1 until greylist.delay
 * has passed.  The store is asked on the worker pool (SQLite writes may
 * wait on the disk; the loop never does); c is pending meanwhile, like a
 * table lookup.  Exempt: the submission ports, local and authenticated
 * sessions, relay.networks, and senders whose MAIL FROM domain is in
 * greylist.whitelist_domains with SPF pass (the RCPT then waits for the
 * SPF result: conn.c's rcpt_spf_hold asks conn_grey_wants_spf).  A store
 * that fails lets the mail through (logged): greylisting is a filter, an
 * outage of it must not stop mail.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "greylist/greylist.h"
#include "server/conn.h"
#include "server/netlist.h"

struct grey_job {
	struct job job;
	struct conn *c;
	struct greylist *g;
	char net[GREYLIST_NET_MAX];
	char sender[TABLE_ADDR_MAX + 1];
	char rcpt[TABLE_ADDR_MAX + 1];
	int64_t now, delay, expire;
	enum greylist_verdict verdict; /* out */
	int64_t wait;		       /* out */
	char err[256];		       /* out */
};

/* Does greylisting apply to this session and RCPT at all? */
static bool
grey_applies(const struct conn *c)
{
	const struct server *s = c->srv;

	return c->cf->greylist_enable && s->greylist != NULL &&
	       c->l->kind == LISTEN_SMTP && !c->local && !c->authenticated &&
	       c->txn != NULL &&
	       ((c->rcpt_q != NULL && c->rcpt_q->st == TABLE_OK) ||
		   c->rcpt_srs) &&
	       !netlist_match(
		   c->snap->relay_nets, (const struct sockaddr *)&c->sa);
}

/* Is the sender's domain (or a parent of it) in whitelist_domains? */
static bool
grey_domain_listed(const struct conn *c)
{
	const char *list = c->cf->greylist_whitelist_domains;
	const char *at = strrchr(c->txn->sender, '@'), *dom, *item, *end;
	size_t dl, n;

	if (list == NULL || at == NULL)
		return false;
	dom = at + 1;
	dl = strlen(dom);
	for (item = list; *item != '\0'; item = *end ? end + 1 : end) {
		end = strchr(item, ',');
		if (end == NULL)
			end = item + strlen(item);
		n = (size_t)(end - item);
		if (n == 0 || n > dl)
			continue;
		/* dom is the item, or ends with "." item */
		if (strncasecmp(dom + dl - n, item, n) == 0 &&
		    (n == dl || dom[dl - n - 1] == '.'))
			return true;
	}
	return false;
}

bool
conn_grey_wants_spf(const struct conn *c)
{
	return grey_applies(c) && grey_domain_listed(c);
}

/* SPF has its say first: a fail/temperror that spf.reject_fail refuses,
 * or a pass for a whitelisted domain, skips greylisting. */
static bool
grey_spf_skips(const struct conn *c)
{
	const struct txn *t = c->txn;
	enum spf_result r;

	if (t->spf == NULL || !spfcheck_done(t->spf))
		return false;
	r = spf_result(spfcheck_spf(t->spf));
	if (c->cf->spf_reject_fail && (r == SPF_FAIL || r == SPF_TEMPERROR))
		return true;
	if (r == SPF_PASS && grey_domain_listed(c)) {
		log_info("id=%s sid=%s event=greylist result=whitelisted "
			 "ip=%s reason=spf_pass",
		    t->id, c->sid, c->ip);
		return true;
	}
	return false;
}

static void
grey_run(struct job *j)
{
	struct grey_job *gj = (struct grey_job *)(void *)j;

	gj->verdict =
	    greylist_check(gj->g, gj->net, gj->sender, gj->rcpt, gj->now,
		gj->delay, gj->expire, &gj->wait, gj->err, sizeof(gj->err));
}

static const char *
grey_result_name(enum greylist_verdict v)
{
	switch (v) {
	case GREYLIST_PASS:
		return "pass";
	case GREYLIST_KNOWN:
		return "known";
	case GREYLIST_DEFER:
		return "defer";
	case GREYLIST_TEMPFAIL:
		break;
	}
	return "error";
}

static void
grey_done(struct job *j)
{
	struct grey_job *gj = (struct grey_job *)(void *)j;
	struct conn *c = gj->c;
	char from[TABLE_ADDR_MAX * 4 + 1], to[TABLE_ADDR_MAX * 4 + 1];
	char eq[600];

	log_sanitize(from, sizeof(from), gj->sender, strlen(gj->sender));
	log_sanitize(to, sizeof(to), gj->rcpt, strlen(gj->rcpt));
	if (gj->verdict == GREYLIST_TEMPFAIL)
		log_warn("sid=%s event=greylist result=error action=accept "
			 "error=\"%s\"",
		    c->sid,
		    log_quote(eq, sizeof(eq), gj->err, strlen(gj->err)));
	else
		log_info("sid=%s event=greylist result=%s net=%s from=<%s> "
			 "to=<%s> wait=%lld",
		    c->sid, grey_result_name(gj->verdict), gj->net, from, to,
		    (long long)gj->wait);
	c->grey_defer = gj->verdict == GREYLIST_DEFER;
	c->grey_wait = gj->wait > 0 ? (unsigned)gj->wait : 0;
	free(gj);
	if (!conn_answered(c))
		return; /* c went away */
	c->grey_cont(c);
}

bool
conn_grey_stage(struct conn *c, void (*done)(struct conn *))
{
	const struct conf *cf = c->cf;
	struct grey_job *gj;

	c->grey_defer = false;
	if (!grey_applies(c) || grey_spf_skips(c))
		return false;
	gj = xcalloc(1, sizeof(*gj));
	if (greylist_net((const struct sockaddr *)&c->sa, gj->net,
		sizeof(gj->net)) != 0) {
		free(gj);
		return false; /* neither IPv4 nor IPv6: nothing to key on */
	}
	gj->c = c;
	gj->g = c->srv->greylist;
	/* both fit: each is as large as the field it comes from */
	if (str_copy(gj->sender, sizeof(gj->sender), c->txn->sender,
		strlen(c->txn->sender)) != 0 ||
	    addr_format(&c->rcpt_q->addr, gj->rcpt, sizeof(gj->rcpt)) < 0) {
		free(gj);
		return false;
	}
	gj->now = (int64_t)time(NULL);
	gj->delay = cf->greylist_delay;
	gj->expire = cf->greylist_expire;
	gj->job.run = grey_run;
	gj->job.done = grey_done;
	c->grey_cont = done;
	c->pending = true;
	c->job_running = true;
	workers_submit(c->srv->workers, &gj->job);
	return true;
}

bool
conn_grey_refused(struct conn *c, const char *rcpt)
{
	char text[128];

	if (!c->grey_defer)
		return false;
	c->grey_defer = false;
	str_fmt_cut(text, sizeof(text), "Greylisted, try again in %u seconds",
	    c->grey_wait);
	conn_reject(c, "rcpt", 451, "4.7.1", text, rcpt);
	return true;
}

/* Does the greylist live in the tables' PostgreSQL database? */
static bool
grey_shared(const struct conf *cf)
{
	return strcmp(cf->greylist_store, "auto") == 0 &&
	       cf->tables_users != NULL &&
	       strncmp(cf->tables_users, "pgsql:", 6) == 0;
}

/* The store of cf: its database's, or STATE/greylist.db.  -1 with err. */
static int
grey_open(
    const struct conf *cf, struct greylist **out, char *err, size_t errlen)
{
	char path[PATH_MAX];

	if (grey_shared(cf)) {
		/* several MX nodes on one database agree on every triplet */
		if (greylist_open_pgsql(
			cf->tables_users + 6, out, err, errlen) != 0)
			return -1;
		log_info("event=greylist_open store=pgsql delay=%u expire=%u",
		    cf->greylist_delay, cf->greylist_expire);
		return 0;
	}
	if (str_fmt(path, sizeof(path), "%s/greylist.db", cf->state_dir) != 0) {
		str_fmt_cut(err, errlen, "state_dir too long");
		return -1;
	}
	if (greylist_open(path, out, err, errlen) != 0)
		return -1;
	log_info("event=greylist_open store=sqlite path=%s delay=%u expire=%u",
	    path, cf->greylist_delay, cf->greylist_expire);
	return 0;
}

void
conn_grey_open(struct server *s)
{
	char err[700], q[800];

	if (!s->conf->greylist_enable)
		return;
	if (grey_open(s->conf, &s->greylist, err, sizeof(err)) != 0)
		fatalx("event=startup step=greylist error=\"%s\"",
		    log_quote(q, sizeof(q), err, strlen(err)));
}

int
conn_grey_reload_prepare(struct server *s, const struct conf *nc,
    struct greylist **out, char *err, size_t errlen)
{
	*out = NULL;
	if (!nc->greylist_enable || s->greylist != NULL)
		return 0;
	return grey_open(nc, out, err, errlen);
}

void
conn_grey_close(struct server *s)
{
	greylist_close(s->greylist);
	s->greylist = NULL;
}
