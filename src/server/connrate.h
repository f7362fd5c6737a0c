/*
 * connrate: the inbound rate limits of ternd (docs/defence.md "Rate
 * limits"): connections, messages and recipients per client address on
 * the MX port, messages and recipients per authenticated user, and the
 * dictionary-attack rule (too many unknown recipients in one session:
 * 421, and the address is refused for rate.penalty).
 *
 * Owns: struct connrate, its rate tables (rate/rate.h) and their keys.
 * May call: rate, util (client keys, SipHash, the monotonic clock), conf,
 * netlist; the session through conn.h (conn_reject, smtp_server_reject).
 * Called by conn.c at the greeting, MAIL and RCPT.  Event loop only.
 *
 * The tables are made once at start-up and live until exit: a reload
 * (SIGHUP, reload.h) changes the limits, the exemptions and the penalty
 * in place and keeps every count, so a client that sent k messages before
 * it has k counted against the new limit (rate.h, rate_table_set_limit).
 * Loop only, like every check here, so a check sees the limits before or
 * after a reload, never half of each; the next MAIL or RCPT of a session
 * open across the reload is counted against the new ones.  Time is
 * CLOCK_MONOTONIC: setting the wall clock back frees nobody.  The state is this
 * process's alone; it is not shared between MX nodes.
 */
#ifndef TERN_SERVER_CONNRATE_H
#define TERN_SERVER_CONNRATE_H

#include <stdbool.h>
#include <stddef.h>

#include "conf/conf.h"

struct conn;
struct connrate;
struct netlist;

/* NULL and err filled when rate.exempt_networks cannot be parsed. */
struct connrate *connrate_new(const struct conf *cf, char *err, size_t errlen);
void connrate_free(struct connrate *cr); /* NULL ok */
/* A reload: cf's limits, and exempt (rate.exempt_networks, parsed by the
 * caller before the switch; owned from here on) for the old list. */
void connrate_reload(
    struct connrate *cr, const struct conf *cf, struct netlist *exempt);

/*
 * At the connect event, before screening: a client address under a
 * penalty, or over rate.connections_per_ip, gets 421 4.7.0 as its
 * greeting and the session closes (true: replied).  Counts the connection
 * otherwise.
 */
bool conn_rate_connect(struct conn *c);
/* At MAIL resp. RCPT: over a per-address or per-user limit, 450 4.7.1
 * (true: replied); else the message or recipient is counted. */
bool conn_rate_mail(struct conn *c);
bool conn_rate_rcpt(struct conn *c, const char *rcpt);
/*
 * An unknown recipient (the 550 5.1.1 case): past rate.unknown_recipients
 * in this session, 421 4.7.0 instead, the session closes and the address
 * is refused for rate.penalty (true: replied); else false, and the caller
 * sends its 550.
 */
bool conn_rate_unknown(struct conn *c, const char *rcpt);

#endif
