/*
 * slowdown: the adaptive pace of one outbound destination (docs/queue.md,
 * "Destinations that ask to slow down").  A receiver that answers 421 or
 * a 4.7.x temporary reply is asking tern to send less (one that cannot be
 * reached is down, not busy: the retry schedule handles it); this is the
 * rule that decides how much less, AIMD-like:
 *
 *   signal   the limit on open connections halves (never below 1) and new
 *            connections wait a pause, 1 s the first time, doubling with
 *            each further signal up to SLOWDOWN_PAUSE_MAX.  Signals from
 *            connections opened before the last decrease do not halve it
 *            again (one decrease per round of connections, as TCP takes
 *            one per window), but still restart the pause.
 *   success  every SLOWDOWN_RAISE_EVERY x limit delivered messages (five
 *            per connection allowed: at limit 2, ten) raise the limit by
 *            one, up to the configured maximum, so the climb back takes
 *            longer the higher it goes; the first success after a signal
 *            resets the pause's growth (the next signal pauses 1 s
 *            again).  A pause already running is not cut short.
 *
 * Owns: struct slowdown.  May call: nothing (libc types only).  Used by
 * deliver/dest.c and deliver/remote.c, one per destination, on the loop.
 *
 * Pure: no clock, no I/O; now_ms is a parameter and any monotonic
 * millisecond clock works (a clock going backwards only lengthens a
 * pause: "not before" times are compared, never subtracted blindly).
 */
#ifndef TERN_QUEUE_SLOWDOWN_H
#define TERN_QUEUE_SLOWDOWN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SLOWDOWN_PAUSE_FIRST 1000u	    /* ms: the first pause */
#define SLOWDOWN_PAUSE_MAX   (300u * 1000u) /* ms: pauses stop doubling */
#define SLOWDOWN_RAISE_EVERY 5u /* deliveries per +1, per unit of limit */
/* ms after the last signal an idle destination's state is forgotten */
#define SLOWDOWN_FORGET	   (600u * 1000u)
#define SLOWDOWN_MAX_LIMIT 1000u /* connections to one destination */

struct slowdown {
	unsigned max;	      /* configured connections per destination */
	unsigned limit;	      /* 1..max: connections allowed now */
	unsigned epoch;	      /* bumped at each decrease */
	unsigned successes;   /* deliveries since the last raise */
	uint32_t pause;	      /* ms the last signal paused, 0: none since
				 a success */
	uint32_t next_pause;  /* ms the next signal pauses */
	uint64_t pause_until; /* no new connection before (ms), 0: none */
	uint64_t last_signal; /* ms of the last signal, 0: none */
};

/* What a call changed, so the caller logs once (event=dest_throttle). */
enum slowdown_change {
	SLOWDOWN_SAME = 0,
	SLOWDOWN_CHANGED,
};

/* At rest: limit max (at least 1), no pause. */
void slowdown_init(struct slowdown *s, unsigned max);

/*
 * A slow-down signal at now_ms from a connection opened in epoch
 * *conn_epoch (its copy of s->epoch), which is brought up to date.
 */
enum slowdown_change slowdown_signal(
    struct slowdown *s, unsigned *conn_epoch, uint64_t now_ms);

/* One message delivered. */
enum slowdown_change slowdown_success(struct slowdown *s);

/* ms to wait before a new connection may start (0: now). */
uint64_t slowdown_wait(const struct slowdown *s, uint64_t now_ms);

/* The pause the last signal set, in ms (0: none since a success). */
uint32_t slowdown_pause(const struct slowdown *s);

/*
 * May an idle destination be forgotten at now_ms?  At rest (limit at the
 * maximum, no pause running), or SLOWDOWN_FORGET after its last signal.
 * *when_out: the ms at which it may, when it may not yet.
 */
bool slowdown_forgettable(
    const struct slowdown *s, uint64_t now_ms, uint64_t *when_out);

/*
 * delivery.destination_concurrency items, "domain:N" (N 1 to
 * SLOWDOWN_MAX_LIMIT): the n octets at item split into the domain's
 * length and N; -1 when there is no ':' or N is out of range (the
 * domain's syntax is the caller's to check).
 */
int slowdown_conf_item(
    const char *item, size_t n, size_t *domlen_out, unsigned *max_out);

/*
 * The N of domain (compared without case) in list, items joined by ','
 * as the configuration keeps them; dflt when it has none (or list is
 * NULL).  The last item for a domain wins.
 */
unsigned slowdown_conf_find(
    const char *list, const char *domain, unsigned dflt);

#endif
