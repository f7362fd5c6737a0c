/*
 * connrate: the inbound rate limits (connrate.h, docs/defence.md "Rate
 * limits"), on the rate tables of rate/rate.h.
 *
 * Who is counted:
 *   - per client address (IPv4 whole, IPv6 by its /64: the session's
 *     client key, util/clientkey.h): connections per minute, MAILs and
 *     RCPTs per hour, the dictionary penalty.  Only on the MX port, for
 *     sessions neither authenticated nor local, from addresses outside
 *     relay.networks and rate.exempt_networks.  The submission ports are
 *     left to the AUTH throttle and the per-user limits: many users
 *     behind one NAT address must not stop each other.
 *   - per authenticated user (the AUTH identity, lower-cased, on any
 *     port): MAILs and RCPTs per hour and per day, so one phished
 *     password stops at its own limit and the other users go on.
 * Every MAIL and RCPT command that reaches its check counts, accepted or
 * not later; a refused one does not.
 *
 * Keys: a client key hashed under the process key (client_key_hash); a
 * user name under this module's own random key, so no client can aim its
 * keys at a chosen slot.  Log lines are limited to one per limit and key
 * per minute (a table of its own), so a client hammering a limit cannot
 * flood the log.
 */
#include <ctype.h>
#include <inttypes.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "rate/rate.h"
#include "server/conn.h"
#include "server/connrate.h"
#include "server/netlist.h"

/*
 * Slots per table: 16 bytes each, 256 KiB a table.  A table this size
 * holds the 16384 busiest keys of a window; a key pushed out early gets a
 * fresh budget, so a flood of other addresses can at worst let one client
 * through twice, never lock anyone out.
 */
#define CONNRATE_SLOTS	  16384
#define CONNRATE_MIN_MS	  ((uint64_t)60 * 1000)
#define CONNRATE_HOUR_MS  (60 * CONNRATE_MIN_MS)
#define CONNRATE_DAY_MS	  (24 * CONNRATE_HOUR_MS)
#define CONNRATE_USER_MAX 256 /* octets of a user name hashed */

enum cr_limit {
	CR_CONN,
	CR_MSG_IP,
	CR_RCPT_IP,
	CR_MSG_USER_HOUR,
	CR_MSG_USER_DAY,
	CR_RCPT_USER_HOUR,
	CR_RCPT_USER_DAY,
	CR_PENALTY,
	CR_N
};

/* The key names of the limits, as logged (limit=) and configured. */
static const char *const cr_names[CR_N] = {
    "connections_per_ip",
    "messages_per_ip",
    "recipients_per_ip",
    "messages_per_user_hour",
    "messages_per_user_day",
    "recipients_per_user_hour",
    "recipients_per_user_day",
    "penalty",
};

struct connrate {
	struct rate_table *t[CR_N];
	unsigned max[CR_N];	   /* the configured limits, for replies */
	struct rate_table *logged; /* one log line per limit, key, minute */
	struct netlist *exempt;	   /* rate.exempt_networks */
	unsigned unknown_max;	   /* rate.unknown_recipients; 0: off */
	uint64_t penalty_ms;	   /* rate.penalty */
	uint8_t sipkey[16];	   /* users' keys */
};

static struct rate_table *
cr_table(unsigned limit, uint64_t window)
{
	struct rate_table *t = rate_table_new(CONNRATE_SLOTS, limit, window);

	if (t == NULL)
		panic("event=oom where=connrate");
	return t;
}

/* The configured limits (connrate_new, connrate_reload). */
static void
cr_limits(struct connrate *cr, const struct conf *cf)
{
	cr->max[CR_CONN] = cf->rate_connections_per_ip;
	cr->max[CR_MSG_IP] = cf->rate_messages_per_ip;
	cr->max[CR_RCPT_IP] = cf->rate_recipients_per_ip;
	cr->max[CR_MSG_USER_HOUR] = cf->rate_messages_per_user_hour;
	cr->max[CR_MSG_USER_DAY] = cf->rate_messages_per_user_day;
	cr->max[CR_RCPT_USER_HOUR] = cf->rate_recipients_per_user_hour;
	cr->max[CR_RCPT_USER_DAY] = cf->rate_recipients_per_user_day;
	/* as logged; the table itself is always a plain "blocked until"
	 * table (rate.h: limit 1 per ms), so that the penalties already
	 * given run out when a reload turns rate.penalty off */
	cr->max[CR_PENALTY] = cf->rate_penalty > 0 ? 1 : 0;
	cr->unknown_max = cf->rate_unknown_recipients;
	/* each 550 counts towards limits.errors, whose 421 would come first
	 * and without the penalty: the rule fires one error before it */
	if (cf->errors > 1 && cr->unknown_max >= cf->errors)
		cr->unknown_max = cf->errors - 1;
	cr->penalty_ms = (uint64_t)cf->rate_penalty * 1000;
}

struct connrate *
connrate_new(const struct conf *cf, char *err, size_t errlen)
{
	struct connrate *cr = xcalloc(1, sizeof(*cr));
	static const uint64_t windows[CR_N] = {CONNRATE_MIN_MS,
	    CONNRATE_HOUR_MS, CONNRATE_HOUR_MS, CONNRATE_HOUR_MS,
	    CONNRATE_DAY_MS, CONNRATE_HOUR_MS, CONNRATE_DAY_MS, 1};
	size_t i;

	if ((cr->exempt = netlist_parse(
		 cf->rate_exempt_networks, err, errlen)) == NULL) {
		free(cr);
		return NULL;
	}
	if (getrandom(cr->sipkey, sizeof(cr->sipkey), 0) !=
	    (ssize_t)sizeof(cr->sipkey))
		fatal("event=startup step=connrate_key");
	cr_limits(cr, cf);
	for (i = 0; i < CR_N; i++)
		cr->t[i] =
		    cr_table(i == CR_PENALTY ? 1 : cr->max[i], windows[i]);
	cr->logged = cr_table(1, CONNRATE_MIN_MS);
	return cr;
}

void
connrate_reload(
    struct connrate *cr, const struct conf *cf, struct netlist *exempt)
{
	uint64_t now = time_now_ms();
	size_t i;

	cr_limits(cr, cf);
	for (i = 0; i < CR_N; i++)
		if (i != CR_PENALTY)
			rate_table_set_limit(cr->t[i], cr->max[i], now);
	/* no session keeps the list between two events: the old one is
	 * read by nobody from here on */
	netlist_free(cr->exempt);
	cr->exempt = exempt;
}

void
connrate_free(struct connrate *cr)
{
	size_t i;

	if (cr == NULL)
		return;
	for (i = 0; i < CR_N; i++)
		rate_table_free(cr->t[i]);
	rate_table_free(cr->logged);
	netlist_free(cr->exempt);
	free(cr);
}

/* ---- who is counted ---------------------------------------------------- */

/* Do the per-address limits apply to this session? */
static bool
cr_ip_applies(const struct conn *c)
{
	const struct sockaddr *sa = (const struct sockaddr *)&c->sa;

	return c->srv->rate != NULL && c->l->kind == LISTEN_SMTP && !c->local &&
	       !c->authenticated && !netlist_match(c->snap->relay_nets, sa) &&
	       !netlist_match(c->srv->rate->exempt, sa);
}

static bool
cr_user_applies(const struct conn *c)
{
	return c->srv->rate != NULL && c->authenticated && !c->local &&
	       c->auth_user[0] != '\0';
}

static uint64_t
cr_ip_key(const struct conn *c)
{
	return client_key_hash(&c->key);
}

/* The AUTH identity, lower-cased, under the module's own key. */
static uint64_t
cr_user_key(const struct connrate *cr, const char *user)
{
	uint8_t b[CONNRATE_USER_MAX];
	size_t n;

	for (n = 0; n < sizeof(b) && user[n] != '\0'; n++)
		b[n] = (uint8_t)tolower((unsigned char)user[n]);
	return siphash24(cr->sipkey, b, n);
}

/* ---- logging ----------------------------------------------------------- */

/* Log a refusal unless this limit and key logged one this minute. */
static void
cr_log(struct conn *c, enum cr_limit which, uint64_t key, uint64_t now)
{
	struct connrate *cr = c->srv->rate;
	uint64_t lk[2] = {key, (uint64_t)which};
	uint64_t h = siphash24(cr->sipkey, lk, sizeof(lk));
	char who[TABLE_ADDR_MAX + 80], q[TABLE_ADDR_MAX + 8];
	uint64_t wait = rate_retry_after(cr->t[which], key, now);

	if (!rate_check(cr->logged, h, now))
		return;
	rate_take(cr->logged, h, now);
	if (which >= CR_MSG_USER_HOUR && which <= CR_RCPT_USER_DAY)
		str_fmt_cut(who, sizeof(who), "user=\"%s\"",
		    log_quote(
			q, sizeof(q), c->auth_user, strlen(c->auth_user)));
	else if (client_key_format(&c->key, q, sizeof(q)) == 0)
		str_fmt_cut(who, sizeof(who), "ip=%s client=%s", c->ip, q);
	else
		str_fmt_cut(who, sizeof(who), "ip=%s", c->ip);
	log_warn(
	    "sid=%s event=ratelimit %s limit=%s max=%u retry_after=%" PRIu64,
	    c->sid, who, cr_names[which], cr->max[which], (wait + 999) / 1000);
}

/* ---- the checks -------------------------------------------------------- */

bool
conn_rate_connect(struct conn *c)
{
	struct connrate *cr = c->srv->rate;
	uint64_t now, key;

	if (!cr_ip_applies(c))
		return false;
	now = time_now_ms();
	key = cr_ip_key(c);
	if (!rate_check(cr->t[CR_PENALTY], key, now)) {
		cr_log(c, CR_PENALTY, key, now);
		smtp_server_reject(c->smtp, 421, "4.7.0",
		    "Too many unknown recipients from your address, try "
		    "again later");
		return true;
	}
	if (!rate_check(cr->t[CR_CONN], key, now)) {
		cr_log(c, CR_CONN, key, now);
		smtp_server_reject(c->smtp, 421, "4.7.0",
		    "Too many connections from your address, try again later");
		return true;
	}
	rate_take(cr->t[CR_CONN], key, now);
	return false;
}

/*
 * One event (a MAIL or an RCPT) against a per-address limit and a user's
 * hour and day: the first that refuses is answered 450 4.7.1; nothing is
 * counted then.  Else all that apply count it.
 */
static bool
cr_event(struct conn *c, const char *cmd, const char *addr, enum cr_limit ip,
    enum cr_limit hour, enum cr_limit day)
{
	struct connrate *cr = c->srv->rate;
	enum cr_limit all[3] = {ip, hour, day};
	uint64_t keys[3] = {0, 0, 0}, now = time_now_ms();
	bool on[3] = {cr_ip_applies(c), cr_user_applies(c), false};
	char text[160];
	size_t i;

	on[2] = on[1];
	if (on[0])
		keys[0] = cr_ip_key(c);
	if (on[1])
		keys[1] = keys[2] = cr_user_key(cr, c->auth_user);
	for (i = 0; i < 3; i++) {
		if (!on[i] || rate_check(cr->t[all[i]], keys[i], now))
			continue;
		cr_log(c, all[i], keys[i], now);
		/* a real MTA retries anyway; the wait helps a person */
		str_fmt_cut(text, sizeof(text),
		    "Rate limit exceeded (%u %s per %s), try again in %" PRIu64
		    " seconds",
		    cr->max[all[i]],
		    ip == CR_MSG_IP ? "messages" : "recipients",
		    all[i] == day ? "day" : "hour",
		    (rate_retry_after(cr->t[all[i]], keys[i], now) + 999) /
			1000);
		conn_reject(c, cmd, 450, "4.7.1", text, addr);
		return true;
	}
	for (i = 0; i < 3; i++)
		if (on[i])
			rate_take(cr->t[all[i]], keys[i], now);
	return false;
}

bool
conn_rate_mail(struct conn *c)
{
	return cr_event(
	    c, "mail", "", CR_MSG_IP, CR_MSG_USER_HOUR, CR_MSG_USER_DAY);
}

bool
conn_rate_rcpt(struct conn *c, const char *rcpt)
{
	return cr_event(
	    c, "rcpt", rcpt, CR_RCPT_IP, CR_RCPT_USER_HOUR, CR_RCPT_USER_DAY);
}

bool
conn_rate_unknown(struct conn *c, const char *rcpt)
{
	struct connrate *cr = c->srv->rate;
	uint64_t now;

	if (!cr_ip_applies(c) || cr->unknown_max == 0 ||
	    ++c->unknown_rcpts <= cr->unknown_max)
		return false;
	now = time_now_ms();
	if (cr->penalty_ms > 0)
		rate_block(
		    cr->t[CR_PENALTY], cr_ip_key(c), now, cr->penalty_ms);
	log_warn("sid=%s event=ratelimit ip=%s limit=unknown_recipients "
		 "max=%u penalty=%" PRIu64,
	    c->sid, c->ip, cr->unknown_max, cr->penalty_ms / 1000);
	conn_reject(c, "rcpt", 421, "4.7.0",
	    "Too many unknown recipients, closing connection", rcpt);
	return true;
}
