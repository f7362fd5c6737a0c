/*
 * reload.h: live reload of tern.conf on SIGHUP (reload.c).
 *
 * A reload reads the file (and the -o overrides ternd was started with)
 * again, checks the result completely and either refuses it, logging why
 * with file:line, with nothing changed, or switches over on the loop in
 * one step.  Everything that can fail is made first: the TLS context, the
 * queue's delivery settings (qsettings.h: the smarthost password file
 * read, and a new delivery engine with its TLS contexts on the trust
 * store of tls.ca_file / tls.ca_path when one of its keys or CA files
 * changed), the tables (tables.users opened, engine and DSN), the
 * defences' new parameters (rate.exempt_networks and screening's lists
 * parsed; screening's cache or greylisting's store opened when a reload
 * turns them on) and the new listeners.  Then the switch: struct
 * server's conf and relay_nets, the TLS context, the delivery settings,
 * the tables' handle, the defences' parameters, log.level, the listeners.
 * Keys that cannot change while ternd runs (reload_restart_keys) keep
 * their running value and are logged needs_restart=KEY.
 *
 * What is in use when the switch comes finishes under what it began
 * with: a session keeps the configuration current when it was accepted
 * (conn.h: c->cf, c->snap) to its end, so no session sees half of two
 * configurations; a delivery attempt keeps its delivery settings (qmgr.c)
 * to its end, and an old engine retires with its last attempt (its idle
 * sessions QUIT, remote_retire); a table
 * question asked on a lookup thread finishes on that thread's old handle,
 * which the thread closes before its next question.  The defences keep
 * their state and take the new parameters in place, on the loop where
 * every check of theirs runs (connrate.h, dsnlimit.h: the counts kept;
 * screen.h: a session being screened keeps its lists); log.level is an
 * atomic every thread reads per line (util.h).  Everything else
 * outside a session reads the current configuration (srv->conf).  Every
 * configuration a reload made lives until exit: objects made at start-up,
 * queue attempts and lookup threads may hold pointers into an older one,
 * and a few KiB per reload is a price worth that simplicity.
 *
 * Owns: struct reload and struct cfgsnap.  May call: conf, confcheck,
 * table, listen.h, netlist.h, tlsconn.h, lookup.h, qmgr.h, qsettings.h,
 * dkimsign.h, connrate.h, screen.h, conn.h (greylisting), greylist,
 * util.  Loop only.
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

/* The keys a reload does not change (NULL-terminated), each with its
 * reason in reloadkeys.c; docs/configuration.md tags them "(restart)". */
extern const char *const reload_restart_keys[];

#endif
