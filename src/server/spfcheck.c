/*
 * spfcheck: the SPF evaluator driven by c-ares on the loop.
 *
 * Each step: spf_next() names one query; dns_lookup() asks it with this
 * check as the argument; the answer goes to spf_answer() and the next
 * step follows, until SPF_STEP_DONE.  One query is outstanding at a time,
 * so dns_cancel(dns, sc) in spfcheck_free() is the whole clean-up on the
 * DNS side.  The overall deadline is a timer of its own: the per-query
 * deadline of dns.c (DNS_TIMEOUT_MS) bounds one query, this one the
 * check.
 */
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "deliver/dns.h"
#include "server/spfcheck.h"
#include "util/util.h"

struct spfcheck {
	struct spf *spf;
	struct dns *dns;
	struct event *timer;
	spfcheck_cb cb;
	void *arg;
	bool done;
	bool asking; /* a dns_lookup for this check is outstanding */
	uint64_t started, ms;
	struct spf_rr rrs[DNS_ANSWER_RRS];
};

static const enum dns_qtype qtypes[] = {
    [SPF_Q_TXT] = DNS_Q_TXT,
    [SPF_Q_A] = DNS_Q_A,
    [SPF_Q_AAAA] = DNS_Q_AAAA,
    [SPF_Q_MX] = DNS_Q_MX,
    [SPF_Q_PTR] = DNS_Q_PTR,
};

static void
check_finish(struct spfcheck *sc)
{
	sc->done = true;
	sc->ms = (unsigned)(time_now_ms() - sc->started);
	if (event_del(sc->timer) != 0)
		panic("event=spfcheck error=event_del");
}

static void on_answer(const struct dns_answer *ans, void *arg);

/* Run the evaluator to its next query (asked) or to its result. */
static void
check_step(struct spfcheck *sc)
{
	struct spf_query q;

	if (spf_next(sc->spf, &q) == SPF_STEP_DONE) {
		check_finish(sc);
		return;
	}
	sc->asking = true;
	dns_lookup(sc->dns, qtypes[q.type], q.name, on_answer, sc);
}

static void
on_answer(const struct dns_answer *ans, void *arg)
{
	struct spfcheck *sc = arg;
	enum spf_rcode rc = SPF_DNS_TEMP;

	sc->asking = false;
	if (ans->rcode == DNS_ANS_OK)
		rc = SPF_DNS_OK;
	else if (ans->rcode == DNS_ANS_NXDOMAIN)
		rc = SPF_DNS_NXDOMAIN;
	for (size_t i = 0; i < ans->n; i++)
		sc->rrs[i] = (struct spf_rr){ans->rrs[i].data, ans->rrs[i].len,
		    ans->rrs[i].txt_continue};
	if (spf_answer(sc->spf, rc, sc->rrs, rc == SPF_DNS_OK ? ans->n : 0) !=
	    0)
		panic("event=spfcheck error=\"answer without a question\"");
	check_step(sc);
	if (sc->done)
		sc->cb(sc, sc->arg); /* may free sc */
}

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct spfcheck *sc = arg;

	(void)fd;
	(void)what;
	if (sc->asking)
		(void)dns_cancel(sc->dns, sc);
	sc->asking = false;
	spf_timeout(sc->spf);
	check_finish(sc);
	sc->cb(sc, sc->arg); /* may free sc */
}

struct spfcheck *
spfcheck_start(struct event_base *base, struct dns *dns,
    const struct spf_request *req, spfcheck_cb cb, void *arg)
{
	struct spfcheck *sc;
	struct spf *s = spf_new(req);
	struct timeval tv = {
	    SPFCHECK_TIMEOUT_MS / 1000, (SPFCHECK_TIMEOUT_MS % 1000) * 1000};

	if (s == NULL)
		return NULL;
	sc = xcalloc(1, sizeof(*sc));
	sc->spf = s;
	sc->dns = dns;
	sc->cb = cb;
	sc->arg = arg;
	sc->started = time_now_ms();
	sc->timer = evtimer_new(base, on_deadline, sc);
	if (sc->timer == NULL || evtimer_add(sc->timer, &tv) != 0)
		panic("event=spfcheck error=evtimer_add");
	check_step(sc);
	return sc;
}

bool
spfcheck_done(const struct spfcheck *sc)
{
	return sc->done;
}

const struct spf *
spfcheck_spf(const struct spfcheck *sc)
{
	return sc->spf;
}

unsigned
spfcheck_ms(const struct spfcheck *sc)
{
	return (unsigned)sc->ms;
}

void
spfcheck_free(struct spfcheck *sc)
{
	if (sc == NULL)
		return;
	if (sc->asking)
		(void)dns_cancel(sc->dns, sc);
	event_free(sc->timer);
	spf_free(sc->spf);
	free(sc);
}
