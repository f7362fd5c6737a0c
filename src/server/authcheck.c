/*
 * authcheck: DKIM keys and the DMARC policy asked on the loop, the
 * cryptography on a worker.
 *
 * Start: dkim_verify_new indexes the header section and parses the
 * signatures (no hashing); every signature that needs a key gets its TXT
 * query, and the DMARC lookup its first, all at once.  Each answer is
 * copied (the key records joined, per signature) or handed to
 * dmarc_lookup_answer (which keeps its own copy); ARC's key names
 * (arc_verify_queries) are asked with them, each answer handed to
 * arc_verify_key in its callback (a parse, cheap).  When the last answer
 * is in, or the deadline comes first, the job runs dkim_verify_key for
 * every signature and arc_verify_run on a worker thread: the body hashes
 * and the RSA/Ed25519 operations never run on the loop.  Each query's argument
 * is its own slot (a key, or the DMARC slot), so dns_cancel of a slot cancels
 * exactly its query.
 *
 * np= (RFC 9091): when the policy came from the organisational domain and
 * names an np, the From domain's A, AAAA and MX are asked too, after the
 * DMARC answer; it does not exist when each is NXDOMAIN or NODATA.  A
 * temporary failure of any of them counts as existing, so sp (or p)
 * applies: np is the stricter policy in practice, and a resolver hiccup
 * must not turn it on.
 */
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/dns.h"
#include "server/authcheck.h"
#include "util/util.h"
#include "workers/workers.h"

#define AC_DMARC_RECORDS 32 /* TXT records at a _dmarc name looked at */

struct ac_key {
	struct authcheck *ac;
	size_t i;
	bool asking;
	enum dkim_dns status;
	struct buf data; /* the records, joined, one after the other */
	size_t off[AUTHCHECK_KEY_RECORDS], len[AUTHCHECK_KEY_RECORDS];
	size_t n;
};

struct ac_dmarc {
	struct authcheck *ac;
	bool asking;
};

/* One of the From domain's A, AAAA, MX queries, for np= (RFC 9091). */
struct ac_exist {
	struct authcheck *ac;
	bool asking;
	bool absent; /* NXDOMAIN or NODATA */
};

#define AC_EXIST_QUERIES 3

/* One ARC key query: the answer goes to arc_verify_key at once. */
struct ac_arc {
	struct authcheck *ac;
	size_t k;
	bool asking;
};

struct authcheck {
	struct job job; /* first: the job is the check */
	struct dns *dns;
	struct workers *workers;
	struct event *timer;
	struct event *now; /* the check without cryptography, on the loop */
	struct event_base *base;
	authcheck_cb cb;
	void *arg;
	struct dkim_verify *v;
	struct ac_key keys[DKIM_SIG_CHECKED];
	struct dmarc_lookup *lk; /* NULL: no DMARC lookup */
	struct ac_dmarc dm;
	struct ac_exist ex[AC_EXIST_QUERIES]; /* A, AAAA, MX of the From */
	bool from_nxdomain;
	struct arc_verify *arc; /* NULL: no ARC validation */
	struct ac_arc *arckeys; /* one per arc_verify_query */
	size_t narc;
	unsigned outstanding; /* queries not yet answered */
	unsigned queries;
	bool timed_out, running;
	uint64_t started, ms;
};

/*
 * The TXT records of ans, each record's strings joined, into out: their
 * offsets and lengths, max records at most.  false when out is full.
 */
static bool
ac_join(const struct dns_answer *ans, struct buf *out, size_t *off, size_t *len,
    size_t max, size_t *n_out)
{
	size_t n = 0;

	for (size_t i = 0; i < ans->n; i++) {
		const struct dns_rr *rr = &ans->rrs[i];

		if (!rr->txt_continue || n == 0) {
			if (n == max)
				break;
			off[n] = out->len;
			len[n++] = 0;
		}
		if (buf_append(out, rr->data, rr->len) != 0)
			return false;
		len[n - 1] += rr->len;
	}
	*n_out = n;
	return true;
}

static void ac_run(struct job *j);
static void on_dmarc(const struct dns_answer *ans, void *arg);
static void ac_exist_ask(struct authcheck *ac);
static void ac_done(struct job *j);

/* No signature to verify and no ARC key: nothing for a worker to do. */
static bool
ac_trivial(const struct authcheck *ac)
{
	return (ac->v == NULL || dkim_verify_count(ac->v) == 0) &&
	       ac->narc == 0;
}

/* The trivial check, from the loop's active queue (no thread, no wake-up
 * of one), still after authcheck_start has returned. */
static void
on_now(evutil_socket_t fd, short what, void *arg)
{
	struct authcheck *ac = arg;

	(void)fd;
	(void)what;
	ac_run(&ac->job);
	ac_done(&ac->job);
}

/* Every answer is in (or the deadline came): the cryptography. */
static void
ac_submit(struct authcheck *ac)
{
	if (event_del(ac->timer) != 0)
		panic("event=authcheck error=event_del");
	ac->running = true;
	ac->job.run = ac_run;
	ac->job.done = ac_done;
	if (ac_trivial(ac)) {
		if (ac->now == NULL &&
		    (ac->now = event_new(ac->base, -1, 0, on_now, ac)) == NULL)
			panic("event=authcheck error=event_new");
		event_active(ac->now, EV_TIMEOUT, 1);
		return;
	}
	workers_submit(ac->workers, &ac->job);
}

static void
ac_answered(struct authcheck *ac)
{
	if (--ac->outstanding == 0)
		ac_submit(ac);
}

static void
on_key(const struct dns_answer *ans, void *arg)
{
	struct ac_key *k = arg;

	k->asking = false;
	if (ans->rcode == DNS_ANS_NXDOMAIN) {
		k->status = DKIM_DNS_NOKEY;
	} else if (ans->rcode != DNS_ANS_OK) {
		k->status = DKIM_DNS_TEMP;
	} else if (!ac_join(ans, &k->data, k->off, k->len,
		       AUTHCHECK_KEY_RECORDS, &k->n)) {
		k->status = DKIM_DNS_TEMP; /* DNS_ANSWER_DATA bounds it */
	} else {
		k->status = k->n > 0 ? DKIM_DNS_OK : DKIM_DNS_NOKEY;
	}
	ac_answered(k->ac);
}

static void
on_arc_key(const struct dns_answer *ans, void *arg)
{
	struct ac_arc *q = arg;
	struct authcheck *ac = q->ac;
	struct buf data;
	const char *txt[AUTHCHECK_KEY_RECORDS];
	size_t off[AUTHCHECK_KEY_RECORDS] = {0},
	       len[AUTHCHECK_KEY_RECORDS] = {0};
	size_t n = 0;
	enum dkim_dns st = DKIM_DNS_TEMP;

	q->asking = false;
	buf_init(&data, DNS_ANSWER_DATA);
	if (ans->rcode == DNS_ANS_NXDOMAIN)
		st = DKIM_DNS_NOKEY;
	else if (ans->rcode == DNS_ANS_OK &&
		 ac_join(ans, &data, off, len, AUTHCHECK_KEY_RECORDS, &n))
		st = n > 0 ? DKIM_DNS_OK : DKIM_DNS_NOKEY;
	for (size_t r = 0; r < n; r++)
		txt[r] = data.data + off[r];
	arc_verify_key(ac->arc, q->k, st, txt, len, st == DKIM_DNS_OK ? n : 0);
	buf_free(&data);
	ac_answered(ac);
}

/* The chain's key names, asked with the DKIM keys (arc.h: on the loop). */
static void
ac_arc_start(struct authcheck *ac, const struct authcheck_request *req)
{
	ac->arc = arc_verify_new(req->msg, req->len, req->now);
	ac->narc = arc_verify_queries(ac->arc);
	if (ac->narc == 0)
		return;
	ac->arckeys = xcalloc(ac->narc, sizeof(*ac->arckeys));
	for (size_t k = 0; k < ac->narc; k++) {
		ac->arckeys[k] = (struct ac_arc){ac, k, true};
		ac->outstanding++;
		ac->queries++;
		dns_lookup(ac->dns, DNS_Q_TXT, arc_verify_query(ac->arc, k),
		    on_arc_key, &ac->arckeys[k]);
	}
}

static void
ac_dmarc_ask(struct authcheck *ac)
{
	ac->dm.asking = true;
	ac->queries++;
	dns_lookup(ac->dns, DNS_Q_TXT, ac->lk->qname, on_dmarc, &ac->dm);
}

static void
on_dmarc(const struct dns_answer *ans, void *arg)
{
	struct ac_dmarc *dm = arg;
	struct authcheck *ac = dm->ac;
	struct buf text;
	const char *txt[AC_DMARC_RECORDS];
	size_t off[AC_DMARC_RECORDS], len[AC_DMARC_RECORDS], n = 0;
	struct dmarc_txt t = {DMARC_DNS_TEMPFAIL, txt, len, 0};

	dm->asking = false;
	buf_init(&text, DNS_ANSWER_DATA);
	if (ans->rcode == DNS_ANS_NXDOMAIN) {
		t.status = DMARC_DNS_NXDOMAIN;
	} else if (ans->rcode == DNS_ANS_OK &&
		   ac_join(ans, &text, off, len, AC_DMARC_RECORDS, &n)) {
		t.status = DMARC_DNS_OK;
		for (size_t i = 0; i < n; i++)
			txt[i] = text.data + off[i];
		t.n = n;
	}
	if (dmarc_lookup_answer(ac->lk, &t) == DMARC_STEP_QUERY) {
		buf_free(&text);
		ac_dmarc_ask(ac); /* the organisational domain's record */
		return;
	}
	buf_free(&text);
	if (ac->lk->why == DMARC_WHY_NONE && ac->lk->at_org &&
	    ac->lk->rec.np != DMARC_P_UNSET)
		ac_exist_ask(ac);
	ac_answered(ac);
}

static void
on_exist(const struct dns_answer *ans, void *arg)
{
	struct ac_exist *e = arg;
	struct authcheck *ac = e->ac;
	bool all = true;

	e->asking = false;
	/* a name the resolver cannot ask (a U-label) is not known absent */
	e->absent = (ans->rcode == DNS_ANS_NXDOMAIN &&
			ans->reason != DNS_REASON_BAD_NAME) ||
		    (ans->rcode == DNS_ANS_OK && ans->n == 0);
	for (size_t i = 0; i < AC_EXIST_QUERIES; i++)
		all = all && ac->ex[i].absent;
	ac->from_nxdomain = all;
	ac_answered(ac);
}

/* Does the From domain exist?  Asked only when np= would matter. */
static void
ac_exist_ask(struct authcheck *ac)
{
	static const enum dns_qtype qt[AC_EXIST_QUERIES] = {
	    DNS_Q_A, DNS_Q_AAAA, DNS_Q_MX};

	for (size_t i = 0; i < AC_EXIST_QUERIES; i++) {
		ac->ex[i].asking = true;
		ac->outstanding++;
		ac->queries++;
		dns_lookup(ac->dns, qt[i], ac->lk->from, on_exist, &ac->ex[i]);
	}
}

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct authcheck *ac = arg;
	struct dmarc_txt temp = {DMARC_DNS_TEMPFAIL, NULL, NULL, 0};

	(void)fd;
	(void)what;
	ac->timed_out = true;
	for (size_t i = 0; i < DKIM_SIG_CHECKED; i++) {
		struct ac_key *k = &ac->keys[i];

		if (!k->asking)
			continue;
		(void)dns_cancel(ac->dns, k);
		k->asking = false;
		k->status = DKIM_DNS_TEMP;
	}
	/* an ARC key never answered is a temporary failure (arc.h) */
	for (size_t k = 0; k < ac->narc; k++) {
		if (!ac->arckeys[k].asking)
			continue;
		(void)dns_cancel(ac->dns, &ac->arckeys[k]);
		ac->arckeys[k].asking = false;
	}
	if (ac->dm.asking) {
		(void)dns_cancel(ac->dns, &ac->dm);
		ac->dm.asking = false;
		/* a temporary failure ends discovery (6.6.3): bounded anyway */
		for (int i = 0; i < 3 && dmarc_lookup_answer(ac->lk, &temp) ==
					     DMARC_STEP_QUERY;
		     i++)
			;
	}
	for (size_t i = 0; i < AC_EXIST_QUERIES; i++) {
		if (!ac->ex[i].asking)
			continue;
		(void)dns_cancel(ac->dns, &ac->ex[i]);
		ac->ex[i].asking = false;
		ac->from_nxdomain = false; /* not known: it exists */
	}
	ac->outstanding = 0;
	ac_submit(ac);
}

/* On a worker thread: every key through the verifier. */
static void
ac_run(struct job *j)
{
	struct authcheck *ac = (struct authcheck *)j;

	if (ac->arc != NULL)
		arc_verify_run(ac->arc);
	if (ac->v == NULL)
		return;
	for (size_t i = 0; i < dkim_verify_count(ac->v); i++) {
		struct ac_key *k = &ac->keys[i];
		const char *txt[AUTHCHECK_KEY_RECORDS];

		for (size_t r = 0; r < k->n; r++)
			txt[r] = k->data.data + k->off[r];
		dkim_verify_key(ac->v, i, k->status, txt, k->len, k->n);
	}
}

static void
ac_done(struct job *j)
{
	struct authcheck *ac = (struct authcheck *)j;

	ac->running = false;
	ac->ms = time_now_ms() - ac->started;
	ac->cb(ac, ac->arg); /* may free ac */
}

struct authcheck *
authcheck_start(struct event_base *base, struct dns *dns, struct workers *w,
    const struct authcheck_request *req, authcheck_cb cb, void *arg)
{
	struct authcheck *ac = xcalloc(1, sizeof(*ac));
	struct timeval tv = {
	    AUTHCHECK_TIMEOUT_MS / 1000, (AUTHCHECK_TIMEOUT_MS % 1000) * 1000};

	ac->dns = dns;
	ac->workers = w;
	ac->base = base;
	ac->cb = cb;
	ac->arg = arg;
	ac->dm.ac = ac;
	for (size_t i = 0; i < AC_EXIST_QUERIES; i++)
		ac->ex[i].ac = ac;
	ac->started = time_now_ms();
	ac->timer = evtimer_new(base, on_deadline, ac);
	if (ac->timer == NULL || evtimer_add(ac->timer, &tv) != 0)
		panic("event=authcheck error=evtimer_add");
	for (size_t i = 0; i < DKIM_SIG_CHECKED; i++) {
		ac->keys[i].ac = ac;
		ac->keys[i].i = i;
		buf_init(&ac->keys[i].data, DNS_ANSWER_DATA);
	}
	if (req->dkim)
		ac->v = dkim_verify_new(req->msg, req->len, req->now);
	if (req->from_domain != NULL && req->psl != NULL) {
		ac->lk = xcalloc(1, sizeof(*ac->lk));
		if (dmarc_lookup_init(ac->lk, req->psl, req->from_domain,
			strlen(req->from_domain)) == DMARC_STEP_QUERY) {
			ac->outstanding++;
			ac_dmarc_ask(ac);
		}
	}
	for (size_t i = 0; ac->v != NULL && i < dkim_verify_count(ac->v); i++) {
		const char *q = dkim_verify_query(ac->v, i);

		if (q == NULL)
			continue;
		ac->keys[i].asking = true;
		ac->outstanding++;
		ac->queries++;
		dns_lookup(dns, DNS_Q_TXT, q, on_key, &ac->keys[i]);
	}
	if (req->arc)
		ac_arc_start(ac, req);
	if (ac->outstanding == 0)
		ac_submit(ac); /* nothing to ask: the callback still comes
				  later, from the job's completion */
	return ac;
}

const struct dkim_verify *
authcheck_dkim(const struct authcheck *ac)
{
	return ac->v;
}

const struct arc_outcome *
authcheck_arc(const struct authcheck *ac)
{
	return ac->arc != NULL ? arc_verify_result(ac->arc) : NULL;
}

const struct dmarc_lookup *
authcheck_dmarc(const struct authcheck *ac)
{
	return ac->lk;
}

bool
authcheck_from_nxdomain(const struct authcheck *ac)
{
	return ac->from_nxdomain;
}

unsigned
authcheck_ms(const struct authcheck *ac)
{
	return (unsigned)ac->ms;
}

unsigned
authcheck_queries(const struct authcheck *ac)
{
	return ac->queries;
}

bool
authcheck_timed_out(const struct authcheck *ac)
{
	return ac->timed_out;
}

void
authcheck_free(struct authcheck *ac)
{
	if (ac == NULL)
		return;
	if (ac->running)
		panic("event=authcheck error=\"freed while its job runs\"");
	for (size_t i = 0; i < DKIM_SIG_CHECKED; i++) {
		if (ac->keys[i].asking)
			(void)dns_cancel(ac->dns, &ac->keys[i]);
		buf_free(&ac->keys[i].data);
	}
	if (ac->dm.asking)
		(void)dns_cancel(ac->dns, &ac->dm);
	for (size_t i = 0; i < AC_EXIST_QUERIES; i++)
		if (ac->ex[i].asking)
			(void)dns_cancel(ac->dns, &ac->ex[i]);
	for (size_t k = 0; k < ac->narc; k++)
		if (ac->arckeys[k].asking)
			(void)dns_cancel(ac->dns, &ac->arckeys[k]);
	free(ac->arckeys);
	arc_verify_free(ac->arc);
	event_free(ac->timer);
	if (ac->now != NULL)
		event_free(ac->now);
	dkim_verify_free(ac->v);
	free(ac->lk);
	free(ac);
}
