/*
 * reload: SIGHUP re-reads tern.conf (see reload.h for the model).
 *
 * The order of a reload is the order of what can fail: read and check
 * the new configuration (conf.c, then confcheck.h), put back the keys
 * that need a restart, load the new TLS context, then bind the new
 * listeners (listeners_reload, which undoes its own binds on failure).
 * Only then, with nothing left that can fail, the switch: s->conf,
 * s->relay_nets and s->tls_ctx, and the tables and DKIM keys reopened as
 * SIGHUP always did.
 */
#include <stdlib.h>
#include <string.h>

#include "confcheck/confcheck.h"
#include "greylist/greylist.h"
#include "server/acmed.h"
#include "server/conn.h"
#include "server/connrate.h"
#include "server/dkimsign.h"
#include "server/dmarcrep.h"
#include "server/listen.h"
#include "server/lookup.h"
#include "server/netlist.h"
#include "server/qsettings.h"
#include "server/reload.h"
#include "server/screen.h"
#include "server/server.h"
#include "server/tlsconn.h"
#include "server/tlsrptd.h"

struct reload {
	int argc;
	char **argv;
	struct cfgsnap *snaps; /* every configuration, newest first */
	struct cfgsnap *cur;
	unsigned gen;
};

static struct cfgsnap *
snap_new(struct reload *r, struct conf *cf, struct netlist *nets)
{
	struct cfgsnap *sn = xcalloc(1, sizeof(*sn));

	sn->gen = r->gen;
	sn->conf = cf;
	sn->relay_nets = nets;
	sn->next = r->snaps;
	r->snaps = sn;
	r->cur = sn;
	return sn;
}

void
reload_init(struct server *s, int argc, char **argv)
{
	struct reload *r = xcalloc(1, sizeof(*r));

	r->argc = argc;
	r->argv = argv;
	s->reload = r;
	(void)snap_new(r, s->conf, s->relay_nets);
}

struct cfgsnap *
reload_hold(struct server *s)
{
	struct cfgsnap *sn = s->reload->cur;

	sn->sessions++;
	return sn;
}

void
reload_release(struct server *s, struct cfgsnap *sn)
{
	if (sn == NULL)
		return;
	sn->sessions--;
	if (sn->sessions == 0 && sn != s->reload->cur && !s->stopping)
		log_info("event=reload_config_done generation=%u "
			 "note=\"the last session under it ended\"",
		    sn->gen);
}

void
reload_free(struct server *s)
{
	struct reload *r = s->reload;
	struct cfgsnap *sn, *next;

	if (r == NULL)
		return;
	for (sn = r->snaps; sn != NULL; sn = next) {
		next = sn->next;
		netlist_free(sn->relay_nets);
		conf_free(sn->conf);
		free(sn);
	}
	free(r);
	s->reload = NULL;
	s->conf = NULL;
	s->relay_nets = NULL;
}

/* ---- SIGHUP ------------------------------------------------------------- */

static void
log_report(void *rctx, const char *msg)
{
	const char *path = rctx;
	char q[1200];

	log_err("event=reload result=refused file=%s error=\"%s\" "
		"action=kept_old",
	    path != NULL ? path : "-",
	    log_quote(q, sizeof(q), msg, strlen(msg)));
}

/* The configuration as ternd was started: the same file (-c,
 * $TERN_CONFIG or the system file) and the same -o overrides. */
static struct conf *
reread(struct reload *r, char *err, size_t errlen)
{
	int ac = r->argc;
	char **av = r->argv;

	return conf_from_args(&ac, &av, err, errlen);
}

/* Put back what cannot change live; each one logged. */
static void
keep_restart_keys(struct server *s, struct conf *nc, const struct conf *oc)
{
	size_t i;

	for (i = 0; reload_restart_keys[i] != NULL; i++) {
		if (!conf_key_differs(oc, nc, reload_restart_keys[i]))
			continue;
		log_warn("event=reload needs_restart=%s note=\"kept the "
			 "running value; restart ternd to change it\"",
		    reload_restart_keys[i]);
		conf_key_keep(nc, oc, reload_restart_keys[i]);
	}
	/* DMARC's list is loaded at start only when DMARC is on */
	if (s->psl == NULL && (nc->dmarc_check != oc->dmarc_check)) {
		log_warn("event=reload needs_restart=dmarc.check note=\"the "
			 "Public Suffix List is loaded at start\"");
		conf_key_keep(nc, oc, "dmarc.check");
	}
}

/* conf_dump's lines, for naming what changed */
struct lines {
	char **v;
	size_t n;
};

static void
lines_add(const char *line, void *ctx)
{
	struct lines *l = ctx;

	char **v = realloc(l->v, (l->n + 1) * sizeof(*l->v));

	if (v == NULL)
		panic("event=oom where=reload");
	l->v = v;
	l->v[l->n++] = xstrdup(line);
}

static void
log_changed(const struct conf *oc, const struct conf *nc, unsigned gen)
{
	struct lines a = {0}, b = {0};
	struct buf out;
	bool full = false;
	size_t i;

	conf_dump(oc, lines_add, &a);
	conf_dump(nc, lines_add, &b);
	buf_init(&out, 2048);
	for (i = 0; i < a.n && i < b.n; i++) {
		/* a list too long for the buffer stops at what fits */
		if (!full && strcmp(a.v[i], b.v[i]) != 0 &&
		    buf_printf(&out, "%s%.*s", out.len ? "," : "",
			(int)strcspn(b.v[i], " "), b.v[i]) != 0)
			full = true;
		free(a.v[i]);
		free(b.v[i]);
	}
	for (; i < a.n; i++)
		free(a.v[i]);
	for (; i < b.n; i++)
		free(b.v[i]);
	free(a.v);
	free(b.v);
	log_info("event=reload result=ok generation=%u changed=%s", gen,
	    out.len ? out.data : "none");
	buf_free(&out);
}

/* What a reload makes before the switch: all of it, or none. */
struct next {
	struct conf *conf;
	struct netlist *nets;
	SSL_CTX *ctx;			   /* the server's TLS context */
	struct qsettings *dl;		   /* the queue's delivery settings */
	struct table *table;		   /* NULL: the running handle stays */
	struct netlist *exempt;		   /* rate.exempt_networks */
	struct screen_lists *screen_lists; /* screen.dnsbl, screen.dnswl */
	struct screen *screen;		   /* screening turned on; else NULL */
	struct greylist *grey; /* greylisting turned on; else NULL */
};

static void
next_undo(struct next *n)
{
	qsettings_free(n->dl);
	table_close(n->table);
	greylist_close(n->grey);
	if (n->screen != NULL)
		screen_free(n->screen); /* and its lists */
	else
		screen_lists_free(n->screen_lists);
	netlist_free(n->exempt);
	SSL_CTX_free(n->ctx);
	netlist_free(n->nets);
	conf_free(n->conf);
}

/*
 * The tables (tables.users, with the new domains) opened and checked
 * before the switch.  A new tables.users that does not open refuses the
 * reload; the same one that cannot be reached now (a database restarting)
 * keeps the running handle, as a SIGHUP always did.
 */
static int
next_table(struct next *n, const struct conf *oc)
{
	char err[512], q[700];

	if ((n->table = table_open(n->conf, err, sizeof(err))) != NULL)
		return 0;
	log_quote(q, sizeof(q), err, strlen(err));
	if (conf_key_differs(oc, n->conf, "tables.users")) {
		log_err("event=reload result=refused step=tables "
			"key=tables.users error=\"%s\" action=kept_old",
		    q);
		return -1;
	}
	log_err("event=reload step=tables error=\"%s\" action=kept_old", q);
	return 0;
}

/*
 * The defences' new parameters, made before the switch: their state (the
 * rate counters, screening's cache, greylisting's store) stays where it
 * is and only takes these.  conf.c has checked the lists' syntax with
 * file:line already; a list refused here anyway names the file.
 */
static int
next_defence(struct server *s, struct next *n)
{
	char err[1024], q[1200];

	if ((n->exempt = netlist_parse(
		 n->conf->rate_exempt_networks, err, sizeof(err))) == NULL) {
		log_report(n->conf->path, err);
		return -1;
	}
	if (screen_reload_prepare(s, n->conf, &n->screen_lists, &n->screen, err,
		sizeof(err)) != 0) {
		log_err("event=reload result=refused step=screen error=\"%s\" "
			"action=kept_old",
		    log_quote(q, sizeof(q), err, strlen(err)));
		return -1;
	}
	if (conn_grey_reload_prepare(s, n->conf, &n->grey, err, sizeof(err)) !=
	    0) {
		log_err(
		    "event=reload result=refused step=greylist error=\"%s\" "
		    "action=kept_old",
		    log_quote(q, sizeof(q), err, strlen(err)));
		return -1;
	}
	if ((s->dmarcrep != NULL &&
		dmarcrep_check(n->conf, err, sizeof(err)) != 0) ||
	    (s->tlsrptd != NULL &&
		tlsrptd_check(n->conf, err, sizeof(err)) != 0)) {
		log_err("event=reload result=refused step=reports error=\"%s\" "
			"action=kept_old",
		    log_quote(q, sizeof(q), err, strlen(err)));
		return -1;
	}
	return 0;
}

/*
 * The switch of the defences, on the loop like every check of theirs, so
 * a check sees all of the old parameters or all of the new.  The rate
 * and DSN limits change in place, counts kept (rate.h); screening's
 * sessions under way keep their lists (screen.h); a session greylists and
 * screens by its own c->cf.
 */
static void
switch_defence(
    struct server *s, struct next *n, const struct conf *oc, unsigned gen)
{
	if (s->rate != NULL)
		connrate_reload(s->rate, n->conf, n->exempt);
	else
		netlist_free(n->exempt);
	qmgr_dsn_limits(s->qmgr, n->conf);
	screen_reload(s, n->conf, n->screen_lists, n->screen, gen);
	if (n->grey != NULL)
		s->greylist = n->grey;
	dmarcrep_reload(s->dmarcrep, oc); /* and the reporter's interval */
	tlsrptd_reload(s->tlsrptd);
}

/* Every step that can fail, in order; each failure logged once. */
static int
next_make(struct server *s, struct next *n, const struct conf *oc)
{
	char err[1024], q[1200];

	if (confcheck_run(n->conf, oc, log_report, n->conf->path) != 0)
		return -1;
	if ((n->nets = netlist_parse(
		 n->conf->relay_networks, err, sizeof(err))) == NULL) {
		log_report(n->conf->path, err);
		return -1;
	}
	if (tlsconn_ctx_load(n->conf, &n->ctx) != 0) {
		log_err("event=reload result=refused step=tls action=kept_old");
		return -1;
	}
	if ((n->dl = qmgr_settings_new(s->qmgr, n->conf, err, sizeof(err))) ==
	    NULL) {
		log_err(
		    "event=reload result=refused step=delivery error=\"%s\" "
		    "action=kept_old",
		    log_quote(q, sizeof(q), err, strlen(err)));
		return -1;
	}
	if (next_table(n, oc) != 0)
		return -1;
	if (next_defence(s, n) != 0)
		return -1;
	/* the last step that can fail; it undoes itself */
	if (listeners_reload(s, n->conf, oc) != 0) {
		log_err("event=reload result=refused step=listen "
			"action=kept_old");
		return -1;
	}
	return 0;
}

void
reload_run(struct server *s)
{
	struct reload *r = s->reload;
	struct conf *oc = s->conf;
	struct next n = {0};
	enum log_level new_level, old_level;
	char err[1024], q[1200];

	log_info("event=reload step=start file=%s",
	    oc->path != NULL ? oc->path : "-");
	if ((n.conf = reread(r, err, sizeof(err))) == NULL) {
		log_err(
		    "event=reload result=refused error=\"%s\" action=kept_old",
		    log_quote(q, sizeof(q), err, strlen(err)));
		return;
	}
	keep_restart_keys(s, n.conf, oc);
	if (next_make(s, &n, oc) != 0) {
		next_undo(&n);
		return;
	}
	/* nothing can fail from here: the switch, at once on the loop */
	r->gen++;
	(void)snap_new(r, n.conf, n.nets);
	s->conf = n.conf;
	s->relay_nets = n.nets;
	SSL_CTX_free(s->tls_ctx); /* sessions keep their reference */
	s->tls_ctx = n.ctx;
	qmgr_settings_use(s->qmgr, n.dl, r->gen);
	lookups_reload(s->lookups, n.conf, n.table);
	dkimsign_reload(s);
	switch_defence(s, &n, oc, r->gen);
	/* log.level for every thread at once (util.h); the reload itself is
	 * logged under the more verbose of the two, so that a reload to
	 * "warn" still says what it changed */
	new_level = log_level_from_name(n.conf->log_level);
	old_level = log_level_from_name(oc->log_level);
	log_set_level(new_level < old_level ? new_level : old_level);
	log_changed(oc, n.conf, r->gen);
	log_set_level(new_level);
	acmed_reloaded(s); /* acme.domains or tls.cert may have changed */
}
