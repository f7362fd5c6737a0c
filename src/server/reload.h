/*
 * reload.h: live reload of tern.conf on SIGHUP (reload.c).
 *
 * A reload reads the file (and the -o overrides ternd was started with)
 * again, checks the result completely and either refuses it, logging why
 * with file:line, with nothing changed, or switches over on the loop in
 * one step: struct server's conf and relay_nets, the TLS context and the
 * listeners.  Keys that cannot change while ternd runs (reload_restart_keys)
 * keep their running value and are logged needs_restart=KEY.
 *
 * A session takes the configuration current when it was accepted (conn.h:
 * c->cf, c->snap) and keeps it to its end: no session sees half of two
 * configurations.  The queue, the listeners' admission limits and
 * everything else outside a session read the current one (srv->conf).
 * Every configuration a reload made lives until exit: objects made at
 * start-up, queue attempts and lookup threads may hold pointers into an
 * older one, and a few KiB per reload is a price worth that simplicity.
 *
 * Owns: struct reload and struct cfgsnap.  May call: conf, confcheck,
 * listen.h, netlist.h, tlsconn.h, lookup.h, dkimsign.h, util.  Loop only.
 */
#ifndef TERN_SERVER_RELOAD_H
#define TERN_SERVER_RELOAD_H

#include <stdbool.h>

#include "conf/conf.h"

struct server;
struct netlist;

/* One configuration and what is made from it for sessions. */
struct cfgsnap {
	struct cfgsnap *next; /* every one, newest first */
	unsigned gen;	      /* 0 at start, +1 per reload */
	unsigned sessions;    /* sessions started under it, still open */
	struct conf *conf;
	struct netlist *relay_nets;
};

/* After start-up made s->conf and s->relay_nets: they become snapshot 0.
 * argc/argv: ternd's own, for reading the same file and -o again. */
void reload_init(struct server *s, int argc, char **argv);
/* A new session (conn_new) takes the current snapshot; conn_free gives
 * it back. */
struct cfgsnap *reload_hold(struct server *s);
void reload_release(struct server *s, struct cfgsnap *sn);
/* SIGHUP. */
void reload_run(struct server *s);
/* At exit: every configuration (s->conf and s->relay_nets among them). */
void reload_free(struct server *s);

/* The keys a reload does not change (NULL-terminated), for `tern config`
 * and the documentation's list. */
extern const char *const reload_restart_keys[];

#endif
