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
 * screen.greet_pause, screen.threshold and screen.dns_timeout are read
 * from the session's configuration (c->cf), the lists from those current
 * when its screening began: a reload changes neither for a session
 * already screening.
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

/*
 * A reload (reload.c), in two steps.  screen_reload_prepare, before the
 * switch: nc's lists parsed into *lists_out, and when screening was off
 * and nc turns it on, the screen made into *screen_out (its cache and
 * STATE/screen.cache read); -1 with err when either fails (the reload is
 * refused).  Then screen_reload at the switch, which cannot fail: new
 * sessions screen with the new lists (sessions being screened finish
 * with theirs; a session accepted before the switch whose screening
 * starts after it uses the lists of its own configuration, gen being
 * the reload's generation), and the cache, kept, takes nc's
 * screen.cache_ttl.
 * Turned off, the screen stays with its cache, asked by no session, and
 * is saved at exit.  Or, refused, screen_lists_free and screen_free.
 */
struct conf;
struct screen_lists;
int screen_reload_prepare(struct server *s, const struct conf *nc,
    struct screen_lists **lists_out, struct screen **screen_out, char *err,
    size_t errlen);
void screen_reload(struct server *s, const struct conf *nc,
    struct screen_lists *lists, struct screen *made, unsigned gen);
struct screen_lists *screen_lists_parse(
    const struct conf *cf, char *err, size_t errlen);
void screen_lists_free(struct screen_lists *l); /* NULL ok, and older */

#endif
