/*
 * mtasts: the MTA-STS policies of outbound delivery on the loop.  See
 * mtasts.h for what a question gets; here is how.
 *
 * Objects:
 *   struct mts_ent    a policy in memory: the copy of a cache file
 *                     (STATE/mta-sts/DOMAIN), at most m->max of them, the
 *                     least recently asked forgotten first (file too).
 *   struct mts_req    one mtasts_get(): asking DNS for the TXT record (in
 *                     m->reqs), or waiting for a fetch (in its waiters).
 *   struct mts_fetch  a job of the pool: a fetch (A and AAAA of
 *                     mta-sts.DOMAIN on the loop, then the HTTPS GET and
 *                     the cache file on a worker) or a cache file's
 *                     removal.  At most one fetch per domain at a time.
 *                     A fetch copies the trust store and deadline of
 *                     its start (mtasts_configure may change them on the
 *                     loop while a worker runs it).
 *
 * Invariants: a question is answered once, from a callback of the loop
 * (DNS or a job's done), after it has left every list, so the callback
 * may call mtasts_get or mtasts_cancel; every job is in m->jobs from its
 * start to its done, so mtasts_free can free the ones whose done never
 * ran (workers_stop runs them, then drops their done).
 */
#include <arpa/inet.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sts/cache.h"
#include "sts/fetch.h"
#include "sts/sts.h"
#include "util/util.h"
#include "workers/workers.h"
#include "deliver/dns.h"
#include "deliver/mtasts.h"

struct mts_ent {
	struct mts_ent *next;
	char domain[STS_NAME_MAX + 1];
	char id[STS_ID_MAX + 1];
	int64_t fetched, expires; /* wall clock */
	uint64_t used;		  /* m->clock when last asked */
	struct sts_policy pol;
};

struct mts_fetch;

struct mts_req {
	struct mts_req *next;
	struct mtasts *m;
	char domain[STS_NAME_MAX + 1];
	mtasts_cb cb;
	void *arg;
};

enum mts_kind { MTS_FETCH, MTS_REMOVE };

struct mts_fetch {
	struct job job; /* first: the pool hands it back */
	struct mts_fetch *next;
	struct mtasts *m;
	enum mts_kind kind;
	char domain[STS_NAME_MAX + 1];
	char id[STS_ID_MAX + 1];
	unsigned lookups; /* A and AAAA still to come */
	bool in_pool;
	/* the fetcher's settings when the fetch began (mtasts_configure):
	   the worker reads these, never the ones a reload changes */
	char *ca_file, *ca_path;
	unsigned timeout;
	char addrs[STS_FETCH_ADDRS_MAX][INET6_ADDRSTRLEN];
	size_t naddrs;
	struct mts_req *waiters;
	/* set by the worker */
	enum sts_fetch_status st;
	int64_t now;
	struct sts_policy pol;
	char err[256], store_err[256];
};

struct mtasts {
	struct event_base *base;
	struct dns *dns;
	struct workers *w;
	int dir_fd;
	atomic_bool stopping; /* mtasts_free: fetches under way end now */
	char *ca_file, *ca_path;
	unsigned max, timeout;
	struct mts_ent *ents;
	size_t nents;
	uint64_t clock;
	struct mts_req *reqs;
	struct mts_fetch *jobs;
};

/* ======================================================================
 * Policies in memory
 * ====================================================================== */

static struct mts_ent *
mts_find(struct mtasts *m, const char *domain)
{
	struct mts_ent *e;

	for (e = m->ents; e != NULL; e = e->next)
		if (strcmp(e->domain, domain) == 0)
			return e;
	return NULL;
}

static bool
mts_valid(const struct mts_ent *e, int64_t now)
{
	return e != NULL && e->expires > now;
}

static void mts_job_start(struct mts_fetch *f);

static void
mts_fetch_free(struct mts_fetch *f)
{
	free(f->ca_file);
	free(f->ca_path);
	free(f);
}

static char *
mts_dup(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

/* The file of domain goes too (on a worker). */
static void
mts_remove_file(struct mtasts *m, const char *domain)
{
	struct mts_fetch *f = xcalloc(1, sizeof(*f));

	f->m = m;
	f->kind = MTS_REMOVE;
	str_fmt_cut(f->domain, sizeof(f->domain), "%s", domain);
	f->next = m->jobs;
	m->jobs = f;
	mts_job_start(f);
}

/* Make room for one more: the least recently asked goes. */
static void
mts_evict(struct mtasts *m)
{
	struct mts_ent **pp, **old = NULL;

	if (m->nents < m->max)
		return;
	for (pp = &m->ents; *pp != NULL; pp = &(*pp)->next)
		if (old == NULL || (*pp)->used < (*old)->used)
			old = pp;
	if (old == NULL)
		return;
	struct mts_ent *e = *old;

	*old = e->next;
	m->nents--;
	log_info("domain=%s event=mta_sts_cache status=forgotten "
		 "text=\"sts.cache_entries reached: least recently used\"",
	    e->domain);
	mts_remove_file(m, e->domain);
	free(e);
}

/* The entry of domain, made (evicting another) if there is none. */
static struct mts_ent *
mts_put(struct mtasts *m, const char *domain)
{
	struct mts_ent *e = mts_find(m, domain);

	if (e != NULL)
		return e;
	mts_evict(m);
	e = xcalloc(1, sizeof(*e));
	str_fmt_cut(e->domain, sizeof(e->domain), "%s", domain);
	e->next = m->ents;
	m->ents = e;
	m->nents++;
	return e;
}

/* ======================================================================
 * Answers
 * ====================================================================== */

/* Answer r with pol (NULL: no policy) and free it; r is in no list. */
static void
mts_answer(struct mts_req *r, const struct sts_policy *pol, const char *id,
    const char *tlsrpt, const char *why)
{
	struct mtasts_verdict *v = xcalloc(1, sizeof(*v));

	v->policy = pol != NULL && pol->mode != STS_MODE_NONE;
	if (v->policy) {
		v->pol = *pol;
		str_fmt_cut(v->id, sizeof(v->id), "%s", id);
	}
	v->tlsrpt_result = tlsrpt != NULL ? tlsrpt : "";
	str_fmt_cut(v->why, sizeof(v->why), "%s", why != NULL ? why : "");
	r->cb(v, r->arg);
	free(v);
	free(r);
}

static void
mts_answer_ent(struct mtasts *m, struct mts_req *r, struct mts_ent *e)
{
	e->used = ++m->clock;
	mts_answer(r, &e->pol, e->id, NULL, NULL);
}

/* ======================================================================
 * Fetches
 * ====================================================================== */

static void
mts_job_run(struct job *j)
{
	struct mts_fetch *f = (struct mts_fetch *)(void *)j;
	struct mtasts *m = f->m;
	const char *addrs[STS_FETCH_ADDRS_MAX];
	struct sts_fetch_req req = {f->domain, addrs, f->naddrs, f->ca_file,
	    f->ca_path, f->timeout, &m->stopping};
	struct sts_cache_rec rec;
	struct buf body;
	size_t i;

	if (f->kind == MTS_REMOVE) {
		if (sts_cache_remove(m->dir_fd, f->domain, f->store_err,
			sizeof(f->store_err)) != 0)
			f->st = STS_FETCH_ERROR;
		return;
	}
	for (i = 0; i < f->naddrs; i++)
		addrs[i] = f->addrs[i];
	buf_init(&body, STS_POLICY_MAX + 1);
	f->st = sts_fetch(&req, &body, &f->pol, f->err, sizeof(f->err));
	f->now = (int64_t)time(NULL);
	if (f->st == STS_FETCH_OK) {
		memset(&rec, 0, sizeof(rec));
		str_fmt_cut(rec.domain, sizeof(rec.domain), "%s", f->domain);
		str_fmt_cut(rec.id, sizeof(rec.id), "%s", f->id);
		rec.fetched = f->now;
		rec.expires = f->now + (int64_t)f->pol.max_age;
		rec.text = body.data != NULL ? body.data : "";
		rec.len = body.len;
		/* a failure leaves store_err set: the policy is kept in
		   memory all the same, and the done logs it */
		if (sts_cache_store(m->dir_fd, &rec, f->store_err,
			sizeof(f->store_err)) != 0 &&
		    f->store_err[0] == '\0')
			str_fmt_cut(f->store_err, sizeof(f->store_err),
			    "cannot write the cache file");
	}
	buf_free(&body);
}

static void
mts_unlink_job(struct mtasts *m, struct mts_fetch *f)
{
	struct mts_fetch **pp = &m->jobs;

	while (*pp != f)
		pp = &(*pp)->next;
	*pp = f->next;
}

/* A fetch is over: keep its policy, answer its waiters. */
static void
mts_fetch_finish(struct mts_fetch *f)
{
	struct mtasts *m = f->m;
	struct mts_ent *e = NULL;
	struct mts_req *r;
	char q[600];
	bool ok = f->st == STS_FETCH_OK;

	if (ok) {
		log_info(
		    "domain=%s event=mta_sts_fetch status=ok id=%s mode=%s "
		    "max_age=%u mx_patterns=%zu",
		    f->domain, f->id, sts_mode_name(f->pol.mode),
		    f->pol.max_age, f->pol.nmx);
		if (f->store_err[0] != '\0')
			log_warn("domain=%s event=mta_sts_cache status=failed "
				 "error=\"%s\"",
			    f->domain,
			    log_quote(q, sizeof(q), f->store_err,
				strlen(f->store_err)));
		e = mts_put(m, f->domain);
		str_fmt_cut(e->id, sizeof(e->id), "%s", f->id);
		e->fetched = f->now;
		e->expires = f->now + (int64_t)f->pol.max_age;
		e->pol = f->pol;
	} else {
		e = mts_find(m, f->domain);
		log_warn("domain=%s event=mta_sts_fetch status=failed "
			 "tlsrpt_result=%s cached_policy=%s error=\"%s\"",
		    f->domain, sts_fetch_result_type(f->st),
		    mts_valid(e, (int64_t)time(NULL)) ? "used" : "none",
		    log_quote(q, sizeof(q), f->err, strlen(f->err)));
	}
	while ((r = f->waiters) != NULL) {
		f->waiters = r->next;
		if (ok)
			mts_answer(r, &f->pol, f->id, NULL, NULL);
		else if (mts_valid(e, (int64_t)time(NULL)))
			mts_answer_ent(m, r, e);
		else
			mts_answer(r, NULL, NULL, sts_fetch_result_type(f->st),
			    f->err);
	}
	mts_fetch_free(f);
}

static void
mts_job_done(struct job *j)
{
	struct mts_fetch *f = (struct mts_fetch *)(void *)j;
	char q[600];

	mts_unlink_job(f->m, f);
	if (f->kind == MTS_FETCH) {
		mts_fetch_finish(f);
		return;
	}
	if (f->st != STS_FETCH_OK)
		log_warn("domain=%s event=mta_sts_cache status=failed "
			 "error=\"%s\"",
		    f->domain,
		    log_quote(
			q, sizeof(q), f->store_err, strlen(f->store_err)));
	mts_fetch_free(f);
}

static void
mts_job_start(struct mts_fetch *f)
{
	f->in_pool = true;
	f->job.run = mts_job_run;
	f->job.done = mts_job_done;
	workers_submit(f->m->w, &f->job);
}

/* An A or AAAA answer for mta-sts.DOMAIN; the fetch starts after both. */
static void
mts_on_addr(const struct dns_answer *ans, void *arg)
{
	struct mts_fetch *f = arg;
	size_t i;

	for (i = 0; ans->rcode == DNS_ANS_OK && i < ans->n &&
		    f->naddrs < STS_FETCH_ADDRS_MAX;
	     i++) {
		int af = ans->rrs[i].len == 16 ? AF_INET6 : AF_INET;

		if ((ans->rrs[i].len == 4 || ans->rrs[i].len == 16) &&
		    inet_ntop(af, ans->rrs[i].data, f->addrs[f->naddrs],
			sizeof(f->addrs[0])) != NULL)
			f->naddrs++;
	}
	if (--f->lookups > 0)
		return;
	if (f->naddrs > 0) {
		mts_job_start(f);
		return;
	}
	mts_unlink_job(f->m, f);
	f->st = STS_FETCH_ERROR;
	str_fmt_cut(
	    f->err, sizeof(f->err), "no address for mta-sts.%s", f->domain);
	mts_fetch_finish(f);
}

/* Fetch domain's policy (id from its TXT) unless a fetch runs; r, if
 * not NULL, waits for it. */
static void
mts_fetch_start(
    struct mtasts *m, const char *domain, const char *id, struct mts_req *r)
{
	struct mts_fetch *f;
	char name[STS_NAME_MAX + 16];

	for (f = m->jobs; f != NULL; f = f->next)
		if (f->kind == MTS_FETCH && strcmp(f->domain, domain) == 0)
			break;
	if (f == NULL) {
		f = xcalloc(1, sizeof(*f));
		f->m = m;
		f->kind = MTS_FETCH;
		str_fmt_cut(f->domain, sizeof(f->domain), "%s", domain);
		str_fmt_cut(f->id, sizeof(f->id), "%s", id);
		f->ca_file = mts_dup(m->ca_file);
		f->ca_path = mts_dup(m->ca_path);
		f->timeout = m->timeout;
		f->next = m->jobs;
		m->jobs = f;
		f->lookups = 2;
		log_info("domain=%s event=mta_sts_fetch status=started id=%s",
		    domain, id);
		str_fmt_cut(name, sizeof(name), "mta-sts.%s", domain);
		dns_lookup(m->dns, DNS_Q_A, name, mts_on_addr, f);
		dns_lookup(m->dns, DNS_Q_AAAA, name, mts_on_addr, f);
	}
	if (r != NULL) {
		r->next = f->waiters;
		f->waiters = r;
	}
}

/* ======================================================================
 * The TXT record
 * ====================================================================== */

/* The records of ans (each one's strings joined) and what they say. */
static enum sts_txt_status
mts_txt_status(const struct dns_answer *ans, char id[STS_ID_MAX + 1])
{
	struct sts_txt_rec *recs;
	size_t *off;
	struct buf b;
	size_t i, n = 0;
	enum sts_txt_status st;

	id[0] = '\0';
	if (ans->rcode != DNS_ANS_OK || ans->n == 0)
		return STS_TXT_NONE;
	recs = xcalloc(ans->n, sizeof(*recs));
	off = xcalloc(ans->n, sizeof(*off));
	buf_init(&b, DNS_ANSWER_DATA + 1);
	for (i = 0; i < ans->n; i++) {
		if (!ans->rrs[i].txt_continue || n == 0)
			off[n++] = b.len;
		/* sized for the largest answer dns.h hands over */
		if (buf_append(&b, ans->rrs[i].data, ans->rrs[i].len) != 0)
			panic("mtasts: TXT answer larger than its bound");
		recs[n - 1].len += ans->rrs[i].len;
	}
	for (i = 0; i < n; i++)
		recs[i].s = b.data != NULL ? b.data + off[i] : "";
	st = sts_txt_pick(recs, n, id);
	buf_free(&b);
	free(off);
	free(recs);
	return st;
}

static const char *
mts_txt_name(enum sts_txt_status st)
{
	switch (st) {
	case STS_TXT_MANY:
		return "several_records";
	case STS_TXT_INVALID:
		return "invalid_record";
	case STS_TXT_OK:
		return "ok";
	case STS_TXT_NONE:
	default:
		return "none";
	}
}

static void
mts_unlink_req(struct mtasts *m, struct mts_req *r)
{
	struct mts_req **pp = &m->reqs;

	while (*pp != r)
		pp = &(*pp)->next;
	*pp = r->next;
}

static void
mts_on_txt(const struct dns_answer *ans, void *arg)
{
	struct mts_req *r = arg;
	struct mtasts *m = r->m;
	struct mts_ent *e = mts_find(m, r->domain);
	int64_t now = (int64_t)time(NULL);
	char id[STS_ID_MAX + 1];
	enum sts_txt_status st = mts_txt_status(ans, id);

	mts_unlink_req(m, r);
	if (st == STS_TXT_OK && mts_valid(e, now)) {
		/* a new id, or half of max_age gone: refresh behind it */
		if (strcmp(e->id, id) != 0 ||
		    now - e->fetched > (e->expires - e->fetched) / 2)
			mts_fetch_start(m, r->domain, id, NULL);
		mts_answer_ent(m, r, e);
		return;
	}
	if (st == STS_TXT_OK) {
		mts_fetch_start(m, r->domain, id, r);
		return;
	}
	if (st != STS_TXT_NONE || ans->rcode == DNS_ANS_TEMP)
		log_info(
		    "domain=%s event=mta_sts_txt status=%s cached_policy=%s "
		    "text=\"no MTA-STS from DNS (RFC 8461 3.1)\"",
		    r->domain,
		    ans->rcode == DNS_ANS_TEMP ? "temp" : mts_txt_name(st),
		    mts_valid(e, now) ? "used" : "none");
	if (mts_valid(e, now))
		mts_answer_ent(m, r, e);
	else
		mts_answer(r, NULL, NULL, NULL, NULL);
}

void
mtasts_get(struct mtasts *m, const char *domain, mtasts_cb cb, void *arg)
{
	struct mts_req *r = xcalloc(1, sizeof(*r));
	char name[STS_NAME_MAX + 16];

	r->m = m;
	r->cb = cb;
	r->arg = arg;
	str_fmt_cut(r->domain, sizeof(r->domain), "%s", domain);
	r->next = m->reqs;
	m->reqs = r;
	str_fmt_cut(name, sizeof(name), "_mta-sts.%s", domain);
	dns_lookup(m->dns, DNS_Q_TXT, name, mts_on_txt, r);
}

/* Drop r from *pp's list when its arg is arg; 1 if it was. */
static size_t
mts_drop_reqs(struct mts_req **pp, void *arg, struct dns *dns)
{
	size_t n = 0;

	while (*pp != NULL) {
		struct mts_req *r = *pp;

		if (arg != NULL && r->arg != arg) {
			pp = &r->next;
			continue;
		}
		*pp = r->next;
		if (dns != NULL)
			(void)dns_cancel(dns, r);
		free(r);
		n++;
	}
	return n;
}

size_t
mtasts_cancel(struct mtasts *m, void *arg)
{
	struct mts_fetch *f;
	size_t n = mts_drop_reqs(&m->reqs, arg, m->dns);

	for (f = m->jobs; f != NULL; f = f->next)
		n += mts_drop_reqs(&f->waiters, arg, NULL);
	return n;
}

void
mtasts_stop(struct mtasts *m)
{
	atomic_store_explicit(&m->stopping, true, memory_order_relaxed);
}

size_t
mtasts_cached(const struct mtasts *m)
{
	return m->nents;
}

/* ======================================================================
 * Start and stop
 * ====================================================================== */

/* A file of the cache at start-up. */
static void
mts_load_one(
    void *arg, const struct sts_cache_rec *r, const struct sts_policy *p)
{
	struct mtasts *m = arg;
	struct mts_ent *e;

	if (r->expires <= (int64_t)time(NULL)) {
		mts_remove_file(m, r->domain);
		return;
	}
	e = mts_put(m, r->domain);
	str_fmt_cut(e->id, sizeof(e->id), "%s", r->id);
	e->fetched = r->fetched;
	e->expires = r->expires;
	e->used = (uint64_t)(r->fetched > 0 ? r->fetched : 0);
	e->pol = *p;
}

void
mtasts_configure(struct mtasts *m, const struct mtasts_conf *conf)
{
	free(m->ca_file);
	free(m->ca_path);
	m->ca_file = mts_dup(conf->ca_file);
	m->ca_path = mts_dup(conf->ca_path);
	m->timeout = conf->fetch_timeout > 0 ? conf->fetch_timeout
					     : MTASTS_FETCH_TIMEOUT;
}

struct mtasts *
mtasts_new(struct event_base *base, struct dns *dns,
    const struct mtasts_conf *conf, char *err, size_t errlen)
{
	struct mtasts *m;
	int fd;

	if (sts_fetch_global_init(err, errlen) != 0 ||
	    (fd = sts_cache_open(conf->state_dir, err, errlen)) < 0)
		return NULL;
	m = xcalloc(1, sizeof(*m));
	atomic_init(&m->stopping, false);
	m->base = base;
	m->dns = dns;
	m->dir_fd = fd;
	m->max = conf->cache_max > 0 ? conf->cache_max : MTASTS_CACHE_DEFAULT;
	mtasts_configure(m, conf);
	m->w = workers_start(base, MTASTS_THREADS);
	if (sts_cache_load(fd, mts_load_one, m, err, errlen) != 0) {
		mtasts_free(m);
		return NULL;
	}
	/* the loaded ones are as recent as their fetch; asks come after */
	m->clock = (uint64_t)time(NULL);
	log_info("event=mta_sts_cache status=loaded policies=%zu max=%u",
	    m->nents, m->max);
	return m;
}

void
mtasts_free(struct mtasts *m)
{
	struct mts_fetch *f;
	struct mts_ent *e;

	if (m == NULL)
		return;
	(void)mts_drop_reqs(&m->reqs, NULL, m->dns);
	for (f = m->jobs; f != NULL; f = f->next) {
		(void)mts_drop_reqs(&f->waiters, NULL, NULL);
		if (!f->in_pool)
			(void)dns_cancel(m->dns, f);
	}
	/* a fetch under way ends within a second, those still queued at
	   once; then the pool stops (no done() runs) */
	atomic_store_explicit(&m->stopping, true, memory_order_relaxed);
	workers_stop(m->w);
	while ((f = m->jobs) != NULL) {
		m->jobs = f->next;
		mts_fetch_free(f);
	}
	while ((e = m->ents) != NULL) {
		m->ents = e->next;
		free(e);
	}
	fd_close_quiet(m->dir_fd);
	free(m->ca_file);
	free(m->ca_path);
	free(m);
}
