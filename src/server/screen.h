/*
 * screen.h: screening before the greeting on the MX port, like Postfix's
 * postscreen (docs/screening.md).  A client is held before its 220 for
 * screen.greet_pause (anything it sends meanwhile makes it an early
 * talker) while its address is looked up in every zone of screen.dnsbl
 * and screen.dnswl, in parallel, on the loop, through the server's
 * resolver; the listings' weights are summed against screen.threshold.
 * The verdict is kept per client (an IPv4 address, an IPv6 /64) for
 * screen.cache_ttl, so a client screened once is not held again, also
 * after a restart: the verdicts are written to STATE/screen.cache at
 * shutdown and read back at start-up.
 *
 * Owns: struct screen (the parsed lists and the verdict cache, one per
 * server, loop only) and each session's screening state (c->screen).
 * May call: server.h's modules, deliver/dns.h, screen/dnsbl.h (pure).
 * Called by main.c (screen_open, screen_free) and conn.c (conn_screen_*,
 * conn.h).
 */
#ifndef TERN_SERVER_SCREEN_H
#define TERN_SERVER_SCREEN_H

#include <stddef.h>

struct server;
struct screen;

/* s->screen from s->conf: NULL when screening is off (no greet pause, no
 * DNSBL, no DNSWL).  -1 with err filled on a bad list.  The verdicts of
 * STATE/screen.cache that have not expired are loaded. */
int screen_open(struct server *s, char *err, size_t errlen);
/* At shutdown: the live verdicts go to STATE/screen.cache (replaced
 * whole, fsync'ed), then everything is freed. */
void screen_free(struct screen *sc);

#endif
