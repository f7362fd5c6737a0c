/*
 * screen.c: screening before the greeting (screen.h, docs/screening.md).
 *
 * At the connect event of a session on the MX port, from a client outside
 * relay.networks: a cached verdict answers at once; otherwise the session
 * is held (c->pending, no 220 yet) while two things run side by side on
 * the loop: the greet pause (a timer) and one A lookup of the client's
 * address per DNSBL and DNSWL zone (dns_lookup on the server's resolver,
 * all sent at once, with their own deadline, screen.dns_timeout).  When
 * both are over (or a DNSWL lists the client, or the client talks before
 * its greeting) the verdict is made, logged once, cached, and conn.c is
 * called back.  A clean client waits max(pause, lookups), once per
 * screen.cache_ttl.
 *
 * An answer that is not a listing is never a reason to refuse: a lookup
 * that fails or times out counts as not listed, and so does an answer in
 * 127.255.255.0/24 (the list refusing the query: Spamhaus answers it to
 * public resolvers and over-quota users) or outside 127/8 (a resolver
 * that makes up answers), each logged.
 *
 * The verdicts outlive a restart: screen_free writes the live ones to
 * STATE/screen.cache (a new file renamed over the old one, so a crash
 * while writing leaves the previous file or none), screen_open reads back
 * those not expired by the wall clock.  A crash loses what was learnt
 * since the last clean stop; a file that is not ours is ignored.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "deliver/dns.h"
#include "screen/dnsbl.h"
#include "server/conn.h"
#include "server/netlist.h"
#include "server/screen.h"

/*
 * The zones of screen.dnsbl and screen.dnswl.  A session screens with the
 * lists of its own configuration (the newest whose gen is not above its
 * c->snap->gen), like every other screen.* key it reads from c->cf, and
 * its lookups point into them (struct screen_q's site); so a reload makes
 * new lists and keeps the old ones until exit: a lookup in flight
 * finishes under the lists it began with.  Only a reload that changes a
 * list makes one (a few KiB).
 */
struct screen_lists {
	struct screen_lists *next; /* every one, newest first */
	unsigned gen;		   /* the configuration they came with */
	struct dnsbl_site bl[DNSBL_SITES_MAX], wl[DNSBL_SITES_MAX];
	size_t nbl, nwl;
};

/* One per server, loop only; kept across reloads with its cache. */
struct screen {
	struct screen_lists *lists; /* current; older ones follow it */
	struct screen_cache *cache;
	const struct conf *conf; /* state_dir (restart-only), for the file */
	unsigned ttl;		 /* screen.cache_ttl now */
};

/* One zone's lookup for one session; its address is the lookup's arg. */
struct screen_q {
	struct conn_screen *cs;
	const struct dnsbl_site *site; /* in the session's lists */
	bool white;
	bool pending;
	bool listed;
};

struct conn_screen {
	struct conn *c;
	void (*done)(struct conn *);
	struct event *pause_ev; /* the greet pause; NULL when over or off */
	struct event *dns_ev;	/* the lookups' deadline */
	size_t outstanding;	/* lookups not answered yet */
	struct screen_q q[2 * DNSBL_SITES_MAX];
	size_t nq;
	uint8_t key[SCREEN_KEY_LEN];
	uint64_t started; /* ms, for the log */
};

/* ---- the server's part ------------------------------------------------ */

#define SCREEN_FILE "screen.cache"

static uint64_t now_secs(void);

/*
 * The verdicts of a previous run, their time left by the wall clock.  A
 * file that is not ours is ignored (and replaced at the next stop); one a
 * newer tern wrote is refused: -1 with err, ternd does not start.
 */
static int
screen_load(struct screen *sc, char *err, size_t errlen)
{
	char path[4096], line[SCREEN_LINE_MAX + 2], text[SCREEN_TEXT_MAX];
	size_t loaded = 0, expired = 0, bad = 0;
	uint64_t wall = (uint64_t)time(NULL), mono = now_secs();
	FILE *f;
	int fd;

	if (str_fmt(path, sizeof(path), "%s/%s", sc->conf->state_dir,
		SCREEN_FILE) != 0)
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || (f = fdopen(fd, "r")) == NULL) {
		if (errno != ENOENT)
			log_warn("event=screen_cache_load path=%s error=\"%s\"",
			    path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 0;
	}
	line[0] = '\0';
	if (fgets(line, sizeof(line), f) == NULL ||
	    strcmp(line, SCREEN_FILE_MAGIC "\n") != 0) {
		size_t n = strcspn(line, "\n");
		unsigned long v = screen_file_version(line, n);

		fclose(f);
		if (v > SCREEN_FILE_VERSION) {
			str_fmt_cut(err, errlen,
			    "%s: verdict file version %lu, this tern reads "
			    "version %d only; refusing to start rather than "
			    "overwrite a newer tern's file (docs/formats.md, "
			    "Downgrades)",
			    path, v, SCREEN_FILE_VERSION);
			return -1;
		}
		log_warn("event=screen_cache_load path=%s error=\"not a "
			 "verdict file of this version\" action=ignored",
		    path);
		return 0;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		size_t n = strlen(line);
		uint8_t key[SCREEN_KEY_LEN];
		uint64_t expires;
		bool pass;

		if (n == 0 || line[n - 1] != '\n') {
			bad++; /* too long, or the last line cut */
			while (n > 0 && line[n - 1] != '\n' &&
			       fgets(line, sizeof(line), f) != NULL)
				n = strlen(line);
			continue;
		}
		if (screen_line_parse(line, n - 1, key, &pass, &expires, text,
			sizeof(text)) != 0) {
			bad++;
			continue;
		}
		if (expires <= wall) {
			expired++;
			continue;
		}
		screen_cache_put_for(
		    sc->cache, key, pass, text, mono, expires - wall);
		loaded++;
	}
	fclose(f);
	log_info("event=screen_cache_load path=%s verdicts=%zu expired=%zu "
		 "bad=%zu",
	    path, loaded, expired, bad);
	return 0;
}

struct save_ctx {
	FILE *f;
	uint64_t wall;
	size_t n;
};

static void
save_one(const uint8_t key[SCREEN_KEY_LEN], bool pass, const char *text,
    uint64_t left, void *arg)
{
	struct save_ctx *sv = arg;
	char line[SCREEN_LINE_MAX + 1];

	if (screen_line_format(
		line, sizeof(line), key, pass, sv->wall + left, text) != 0)
		return; /* our own text is always printable: cannot happen */
	fprintf(sv->f, "%s\n", line);
	sv->n++;
}

/* STATE/screen.cache.new, fsync'ed, renamed over STATE/screen.cache. */
static void
screen_save(const struct screen *sc)
{
	char path[4096], tmp[4096];
	struct save_ctx sv = {NULL, (uint64_t)time(NULL), 0};
	int fd;

	if (str_fmt(path, sizeof(path), "%s/%s", sc->conf->state_dir,
		SCREEN_FILE) != 0 ||
	    str_fmt(tmp, sizeof(tmp), "%s.new", path) != 0)
		return;
	fd = open(
	    tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || (sv.f = fdopen(fd, "w")) == NULL) {
		log_err("event=screen_cache_save path=%s error=\"%s\"", tmp,
		    strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	fprintf(sv.f, "%s\n", SCREEN_FILE_MAGIC);
	screen_cache_each(sc->cache, now_secs(), save_one, &sv);
	if (fflush(sv.f) != 0 || ferror(sv.f) || fsync(fd) != 0) {
		log_err("event=screen_cache_save path=%s error=\"%s\"", tmp,
		    strerror(errno));
		fclose(sv.f);
		unlink(tmp);
		return;
	}
	fclose(sv.f);
	if (rename(tmp, path) != 0) {
		log_err("event=screen_cache_save path=%s error=\"%s\"", path,
		    strerror(errno));
		unlink(tmp);
		return;
	}
	log_info("event=screen_cache_save path=%s verdicts=%zu", path, sv.n);
}

struct screen_lists *
screen_lists_parse(const struct conf *cf, char *err, size_t errlen)
{
	struct screen_lists *l = xcalloc(1, sizeof(*l));
	int nbl, nwl;

	nbl = dnsbl_parse_list(
	    cf->screen_dnsbl, true, l->bl, DNSBL_SITES_MAX, err, errlen);
	nwl = nbl < 0 ? -1
		      : dnsbl_parse_list(cf->screen_dnswl, false, l->wl,
			    DNSBL_SITES_MAX, err, errlen);
	if (nwl < 0) {
		free(l);
		return NULL;
	}
	l->nbl = (size_t)nbl;
	l->nwl = (size_t)nwl;
	return l;
}

void
screen_lists_free(struct screen_lists *l)
{
	struct screen_lists *next;

	for (; l != NULL; l = next) {
		next = l->next;
		free(l);
	}
}

/* Is screening on under cf with these lists (NULL: none then)? */
static bool
screen_on(const struct conf *cf, const struct screen_lists *l)
{
	return l != NULL && (l->nbl + l->nwl > 0 || cf->screen_greet_pause > 0);
}

/* The lists of configuration gen; NULL: screening was off then. */
static const struct screen_lists *
screen_lists_of(const struct screen *sc, unsigned gen)
{
	const struct screen_lists *l = sc->lists;

	while (l != NULL && l->gen > gen)
		l = l->next;
	return l;
}

static void
screen_log_start(
    const char *event, const struct conf *cf, const struct screen_lists *l)
{
	log_info("event=%s greet_pause=%u dnsbl=%zu dnswl=%zu threshold=%u "
		 "cache_ttl=%u",
	    event, cf->screen_greet_pause, l->nbl, l->nwl, cf->screen_threshold,
	    cf->screen_cache_ttl);
}

/* The screen, its cache and its file's verdicts; l is the screen's. */
static struct screen *
screen_make(
    const struct conf *cf, struct screen_lists *l, char *err, size_t errlen)
{
	struct screen *sc = xcalloc(1, sizeof(*sc));

	sc->lists = l;
	sc->conf = cf;
	sc->ttl = cf->screen_cache_ttl;
	sc->cache =
	    screen_cache_new(cf->screen_cache_entries, cf->screen_cache_ttl);
	if (sc->ttl > 0 && screen_load(sc, err, errlen) != 0) {
		screen_cache_free(sc->cache);
		free(sc);
		return NULL;
	}
	return sc;
}

int
screen_open(struct server *s, char *err, size_t errlen)
{
	const struct conf *cf = s->conf;
	struct screen_lists *l;

	s->screen = NULL;
	if ((l = screen_lists_parse(cf, err, errlen)) == NULL)
		return -1;
	if (!screen_on(cf, l)) {
		free(l);
		return 0; /* off: no session pays anything */
	}
	if ((s->screen = screen_make(cf, l, err, errlen)) == NULL) {
		free(l);
		return -1;
	}
	screen_log_start("screen_start", cf, l);
	return 0;
}

int
screen_reload_prepare(struct server *s, const struct conf *nc,
    struct screen_lists **lists_out, struct screen **screen_out, char *err,
    size_t errlen)
{
	*lists_out = NULL;
	*screen_out = NULL;
	if ((*lists_out = screen_lists_parse(nc, err, errlen)) == NULL)
		return -1;
	if (s->screen != NULL || !screen_on(nc, *lists_out))
		return 0;
	/* turned on: made here, where a failure can still refuse */
	if ((*screen_out = screen_make(nc, *lists_out, err, errlen)) == NULL) {
		screen_lists_free(*lists_out);
		*lists_out = NULL;
		return -1;
	}
	return 0;
}

/* Two lists that screen the same way. */
static bool
screen_lists_same(const struct screen_lists *a, const struct screen_lists *b)
{
	return a->nbl == b->nbl && a->nwl == b->nwl &&
	       memcmp(a->bl, b->bl, a->nbl * sizeof(a->bl[0])) == 0 &&
	       memcmp(a->wl, b->wl, a->nwl * sizeof(a->wl[0])) == 0;
}

void
screen_reload(struct server *s, const struct conf *nc,
    struct screen_lists *lists, struct screen *made, unsigned gen)
{
	struct screen *sc = s->screen;

	lists->gen = gen;
	if (made != NULL) {
		s->screen = made;
		screen_log_start("screen_start", nc, lists);
		return;
	}
	if (sc == NULL) {
		free(lists); /* off before and after */
		return;
	}
	if (screen_lists_same(sc->lists, lists)) {
		free(lists);
	} else {
		lists->next = sc->lists;
		sc->lists = lists;
	}
	if (sc->ttl != nc->screen_cache_ttl)
		screen_cache_set_ttl(
		    sc->cache, nc->screen_cache_ttl, now_secs());
	sc->ttl = nc->screen_cache_ttl;
	screen_log_start("screen_reload", nc, sc->lists);
}

void
screen_free(struct screen *sc)
{
	if (sc == NULL)
		return;
	if (sc->ttl > 0)
		screen_save(sc);
	screen_cache_free(sc->cache);
	screen_lists_free(sc->lists);
	free(sc);
}

/* ---- one session ------------------------------------------------------ */

/* The client's address as 4 octets (IPv4, also when IPv4-mapped) or 16. */
static size_t
client_ip(const struct conn *c, const uint8_t **ip)
{
	static const uint8_t mapped[12] = {
	    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	size_t n = sockaddr_ip_bytes((const struct sockaddr *)&c->sa, ip);

	if (n == 16 && memcmp(*ip, mapped, 12) == 0) {
		*ip += 12;
		return 4;
	}
	return n;
}

static uint64_t
now_secs(void)
{
	return time_now_ms() / 1000; /* monotonic: a clock set back
					unblocks no one */
}

static void
cs_log(const struct conn *c, int score, const char *listed, const char *action,
    bool cached, uint64_t ms)
{
	log_info("sid=%s event=screen client=%s score=%d listed=\"%s\" "
		 "action=%s cached=%s ms=%llu",
	    c->sid, c->ip, score, listed, action, cached ? "yes" : "no",
	    (unsigned long long)ms);
}

/* The session stops waiting: its lookups and timers go. */
static void
cs_release(struct conn_screen *cs)
{
	struct conn *c = cs->c;

	for (size_t i = 0; i < cs->nq; i++)
		if (cs->q[i].pending)
			(void)dns_cancel(c->srv->dns, &cs->q[i]);
	if (cs->pause_ev != NULL)
		event_free(cs->pause_ev);
	if (cs->dns_ev != NULL)
		event_free(cs->dns_ev);
	c->screen = NULL;
	free(cs);
}

static void
cs_end(struct conn_screen *cs)
{
	struct conn *c = cs->c;
	void (*done)(struct conn *) = cs->done;

	cs_release(cs);
	c->pending = false;
	done(c);
}

static void
cs_cache(struct conn_screen *cs, bool pass, const char *text)
{
	const struct screen *sc = cs->c->srv->screen;

	if (sc->ttl > 0)
		screen_cache_put(sc->cache, cs->key, pass, text, now_secs());
}

/* The zones that list the client (of the DNSBLs, or of the DNSWLs). */
static int
cs_listed(const struct conn_screen *cs, bool white, char *out, size_t outlen)
{
	int score = 0;
	size_t len = 0;

	out[0] = '\0';
	for (size_t i = 0; i < cs->nq; i++) {
		const struct screen_q *q = &cs->q[i];

		if (!q->listed || q->white != white)
			continue;
		score += q->site->weight;
		str_fmt_cut(out + len, outlen - len, "%s%s", len > 0 ? "," : "",
		    q->site->zone);
		len = strlen(out);
	}
	return score;
}

/* Everything known: pass or refuse, log, cache, call conn.c back. */
static void
cs_decide(struct conn_screen *cs)
{
	struct conn *c = cs->c;
	const struct conf *cf = c->cf;
	char listed[DNSBL_SITES_MAX * (DNSBL_ZONE_MAX + 1)];
	uint64_t ms = time_now_ms() - cs->started;
	int score;

	if (cs_listed(cs, true, listed, sizeof(listed)) > 0) {
		cs_log(c, 0, listed, "pass", false, ms);
		cs_cache(cs, true, "");
		cs_end(cs);
		return;
	}
	score = cs_listed(cs, false, listed, sizeof(listed));
	if (score >= (int)cf->screen_threshold) {
		str_fmt_cut(c->screen_reply, sizeof(c->screen_reply),
		    "Service refused: %s is listed by %s", c->ip, listed);
		cs_log(c, score, listed, "reject", false, ms);
		cs_cache(cs, false, c->screen_reply);
	} else {
		cs_log(c, score, listed, "pass", false, ms);
		cs_cache(cs, true, "");
	}
	cs_end(cs);
}

static void
cs_check(struct conn_screen *cs)
{
	if (cs->pause_ev == NULL && cs->outstanding == 0)
		cs_decide(cs);
}

static void
on_answer(const struct dns_answer *ans, void *arg)
{
	struct screen_q *q = arg;
	struct conn_screen *cs = q->cs;
	const struct conn *c = cs->c;

	q->pending = false;
	cs->outstanding--;
	if (ans->rcode == DNS_ANS_TEMP)
		log_info("sid=%s event=screen_dns zone=%s result=temp "
			 "reason=%s",
		    c->sid, q->site->zone, dns_reason_name(ans->reason));
	for (size_t i = 0; ans->rcode == DNS_ANS_OK && i < ans->n; i++) {
		const uint8_t *a = ans->rrs[i].data;
		enum dnsbl_answer k;

		if (ans->rrs[i].len != 4)
			continue;
		k = dnsbl_classify(q->site, a);
		if (k == DNSBL_LISTED)
			q->listed = true;
		else if (k == DNSBL_REFUSED || k == DNSBL_BOGUS)
			log_warn("sid=%s event=screen_dns zone=%s "
				 "answer=%u.%u.%u.%u result=%s",
			    c->sid, q->site->zone, a[0], a[1], a[2], a[3],
			    k == DNSBL_REFUSED ? "refused" : "bogus");
	}
	if (q->white && q->listed) {
		cs_decide(cs); /* a DNSWL listing ends the screening */
		return;
	}
	cs_check(cs);
}

static void
on_pause(evutil_socket_t fd, short what, void *arg)
{
	struct conn_screen *cs = arg;

	(void)fd;
	(void)what;
	event_free(cs->pause_ev);
	cs->pause_ev = NULL;
	cs_check(cs);
}

/* The deadline: what has not answered counts as not listed. */
static void
on_dns_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct conn_screen *cs = arg;
	struct conn *c = cs->c;

	(void)fd;
	(void)what;
	for (size_t i = 0; i < cs->nq; i++) {
		struct screen_q *q = &cs->q[i];

		if (!q->pending)
			continue;
		(void)dns_cancel(c->srv->dns, q);
		q->pending = false;
		log_info("sid=%s event=screen_dns zone=%s result=timeout",
		    c->sid, q->site->zone);
	}
	cs->outstanding = 0;
	cs_check(cs);
}

static void
cs_timer(struct conn_screen *cs, struct event **ev, event_callback_fn fn,
    unsigned secs)
{
	struct timeval tv = {(time_t)secs, 0};

	*ev = evtimer_new(cs->c->srv->base, fn, cs);
	if (*ev == NULL || evtimer_add(*ev, &tv) != 0)
		panic("event=oom where=screen_timer");
}

static void
cs_ask(struct conn_screen *cs, const struct dnsbl_site *site, bool white,
    const uint8_t *ip, size_t iplen)
{
	struct screen_q *q = &cs->q[cs->nq];
	char name[DNSBL_QNAME_MAX + 1];

	if (dnsbl_qname(ip, iplen, site->zone, name, sizeof(name)) != 0)
		return; /* cannot happen: DNSBL_ZONE_MAX leaves room */
	q->cs = cs;
	q->site = site;
	q->white = white;
	q->pending = true;
	cs->nq++;
	cs->outstanding++;
	dns_lookup(cs->c->srv->dns, DNS_Q_A, name, on_answer, q);
}

enum conn_screen_start
conn_screen_start(struct conn *c, void (*done)(struct conn *))
{
	const struct screen *sc = c->srv->screen;
	const struct conf *cf = c->cf;
	const struct screen_lists *l;
	struct conn_screen *cs;
	const uint8_t *ip;
	size_t iplen;
	uint8_t key[SCREEN_KEY_LEN];
	int hit;

	c->screen_reply[0] = '\0';
	/* relay.networks and the submission ports are exempt; loopback is
	 * not (a test screens 127.0.0.1) */
	if (sc == NULL || c->l->kind != LISTEN_SMTP || c->srv->dns == NULL ||
	    netlist_match(c->snap->relay_nets, (const struct sockaddr *)&c->sa))
		return CONN_SCREEN_PASS;
	/* the session's lists, of its configuration (screen_lists);
	 * turned off by a reload: the cache is kept, but not asked */
	l = screen_lists_of(sc, c->snap->gen);
	if (!screen_on(cf, l))
		return CONN_SCREEN_PASS;
	iplen = client_ip(c, &ip);
	screen_cache_key(ip, iplen, key);
	hit = screen_cache_get(sc->cache, key, now_secs(), c->screen_reply,
	    sizeof(c->screen_reply));
	if (hit >= 0) {
		cs_log(c, 0, "", hit == 1 ? "pass" : "reject", true, 0);
		return hit == 1 ? CONN_SCREEN_PASS : CONN_SCREEN_REFUSE;
	}
	c->screen_reply[0] = '\0';
	cs = xcalloc(1, sizeof(*cs));
	cs->c = c;
	cs->done = done;
	cs->started = time_now_ms();
	memcpy(cs->key, key, sizeof(key));
	c->screen = cs;
	c->pending = true;
	if (cf->screen_greet_pause > 0)
		cs_timer(cs, &cs->pause_ev, on_pause, cf->screen_greet_pause);
	if (l->nbl + l->nwl > 0)
		cs_timer(
		    cs, &cs->dns_ev, on_dns_deadline, cf->screen_dns_timeout);
	for (size_t i = 0; i < l->nwl; i++)
		cs_ask(cs, &l->wl[i], true, ip, iplen);
	for (size_t i = 0; i < l->nbl; i++)
		cs_ask(cs, &l->bl[i], false, ip, iplen);
	/* every answer comes later, from the loop: nothing decided yet */
	return CONN_SCREEN_WAIT;
}

bool
conn_screen_input(struct conn *c)
{
	struct conn_screen *cs = c->screen;
	char listed[DNSBL_SITES_MAX * (DNSBL_ZONE_MAX + 1)];
	int score;

	if (cs == NULL)
		return false;
	/* without a greet pause, input before the 220 waits for it (the
	 * lookups take milliseconds); with one, it is an early talker */
	if (c->cf->screen_greet_pause == 0 ||
	    evbuffer_get_length(bufferevent_get_input(c->bev)) == 0)
		return true;
	score = cs_listed(cs, false, listed, sizeof(listed));
	str_fmt_cut(c->screen_reply, sizeof(c->screen_reply),
	    "Service refused: %s talked before the greeting", c->ip);
	cs_log(c, score, listed, "early_talker", false,
	    time_now_ms() - cs->started);
	cs_cache(cs, false, c->screen_reply);
	cs_end(cs);
	return true;
}

void
conn_screen_free(struct conn *c)
{
	if (c->screen != NULL)
		cs_release(c->screen);
}
