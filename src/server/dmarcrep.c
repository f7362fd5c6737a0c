/*
 * dmarcrep: DMARC aggregate reports in ternd.
 *
 * Recording: dmarcrep_record() copies a message's values into the batch
 * (dr->batch) and returns.  The batch goes to the store when it is full
 * (DMARCREP_BATCH) or DMARCREP_BATCH_MS after its first record, as one
 * transaction on a worker.  Past DMARCREP_PENDING_MAX records waiting,
 * or past dmarc.report_max_rows distinct rows in the file, a record is
 * dropped, counted, and a line is logged per batch that dropped some.
 *
 * The lane: every store operation (write a batch, list the domains,
 * build a report, clear a sent report's rows) is a struct dr_op run on
 * the worker pool one at a time, in the order asked, so the SQLite
 * connection has one user and a batch asked before a run is in the file
 * before the run reads it.
 *
 * A report run: the current period ends (records from now on carry the
 * new period and are not touched by the run), then for each domain with
 * rows of earlier periods: build (worker: XML, gzip, MIME body), choose
 * the destinations (loop: !size, mailto:, the 7.1 TXT lookup for an
 * external one), queue the mail (inject_submit), and only once it is in
 * the queue clear the rows (worker).  A crash between the queueing and
 * the clearing sends those rows again next time: a duplicate report,
 * never a lost one.  A domain whose every destination failed a DNS
 * lookup keeps its rows for the next run; one that no destination may
 * receive (refused, too big, not mailto:) is cleared, or it would grow.
 */
#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "addr/addr.h"
#include "deliver/dns.h"
#include "dmarcdb/dmarcdb.h"
#include "mailauth/dmarcxml.h"
#include "mailauth/psl.h"
#include "queue/queue.h"
#include "server/dkimsign.h"
#include "server/dmarcrep.h"
#include "server/reportcommon.h"
#include "server/server.h"
#include "store/store.h"

#define DR_ADDR_MAX 320

struct dr_built;
struct dr_run;

enum dr_kind { DR_ADD, DR_LIST, DR_BUILD, DR_CLEAR };

struct dr_op {
	struct job job;
	struct dmarcrep *dr;
	enum dr_kind kind;
	int rc;
	char err[256];
	struct dmarcdb_entry *ents; /* DR_ADD */
	size_t n, dropped;
	unsigned max_rows; /* DR_ADD: dmarc.report_max_rows when asked */
	char **domains;	   /* DR_LIST */
	size_t ndomains;
	char domain[DMARCXML_NAME_MAX + 1]; /* DR_BUILD, DR_CLEAR */
	int64_t cutoff;
	struct dr_built *b; /* DR_BUILD */
	struct dr_op *next;
};

/* One domain's report between its build and its queueing. */
struct dr_built {
	char domain[DMARCXML_NAME_MAX + 1];
	char rua[DMARCDB_RUA_MAX + 1];
	char report_id[64];
	char boundary[64];
	char filename[DMARCXML_NAME_MAX * 2 + 64];
	int64_t begin, end;
	size_t nrows, bad_rows;
	uint64_t messages;
	struct buf body; /* the MIME body: text part, the .xml.gz part */
};

struct dr_run {
	struct dmarcrep *dr;
	int64_t cutoff;
	char **domains;
	size_t ndomains, i;
	struct dr_built *b; /* the domain being sent */
	char rua_text[DMARCDB_RUA_MAX + 32];
	struct dmarc_record rec; /* views rua_text */
	char **to;
	size_t nto;
	size_t asking;	   /* TXT lookups outstanding */
	unsigned tempfail; /* destinations whose consent was not known */
	unsigned queued, skipped, failed;
	struct buf *out; /* the control request's reply, or NULL */
	void (*done)(void *arg);
	void *arg;
};

/* One external destination's consent being asked (7.1). */
struct dr_ask {
	struct dr_run *run;
	size_t uri; /* index in run->rec.rua */
};

struct dmarcrep {
	struct server *srv;
	struct dmarcdb *db;
	char from[DR_ADDR_MAX + 1];	       /* report_from */
	char submitter[DMARCXML_NAME_MAX + 1]; /* its domain */
	char org[256];
	int64_t period; /* when the current period began */
	struct dmarcdb_entry *batch;
	size_t nbatch;
	struct event *batch_timer, *report_timer;
	bool batch_armed;
	struct dr_op *lane, *lane_tail;
	bool lane_busy;
	struct dr_run *run;
	uint64_t recorded, dropped;
	bool stopping;
};

static void dr_lane_push(struct dmarcrep *dr, struct dr_op *op);
static void dr_names_for_run(struct dmarcrep *dr);
static void dr_run_next(struct dr_run *run);

/* ---- recording --------------------------------------------------------- */

static void
dr_batch_flush(struct dmarcrep *dr)
{
	struct dr_op *op;

	if (dr->batch_armed) {
		if (event_del(dr->batch_timer) != 0)
			panic("event=dmarc_report error=event_del");
		dr->batch_armed = false;
	}
	if (dr->nbatch == 0)
		return;
	op = xcalloc(1, sizeof(*op));
	op->kind = DR_ADD;
	/* read here, on the loop: the worker never reads srv->conf, which a
	 * reload switches */
	op->max_rows = dr->srv->conf->dmarc_report_max_rows;
	op->ents = dr->batch;
	op->n = dr->nbatch;
	dr->batch = NULL;
	dr->nbatch = 0;
	dr_lane_push(dr, op);
}

static void
on_batch_timer(evutil_socket_t fd, short what, void *arg)
{
	struct dmarcrep *dr = arg;

	(void)fd;
	(void)what;
	dr->batch_armed = false;
	dr_batch_flush(dr);
}

/* records waiting: the batch and the batches queued on the lane */
static size_t
dr_pending(const struct dmarcrep *dr)
{
	const struct dr_op *op;
	size_t n = dr->nbatch;

	for (op = dr->lane; op != NULL; op = op->next)
		if (op->kind == DR_ADD)
			n += op->n;
	return n;
}

void
dmarcrep_record(struct dmarcrep *dr, const struct dmarc_lookup *lk,
    const struct dmarc_verdict *v, const struct dmarcxml_msg *m)
{
	struct dmarcdb_entry *e;
	int r;
	struct timeval tv = {
	    DMARCREP_BATCH_MS / 1000, (DMARCREP_BATCH_MS % 1000) * 1000};

	if (dr == NULL || dr->stopping ||
	    (v->result != DMARC_RESULT_PASS && v->result != DMARC_RESULT_FAIL))
		return;
	if (dr_pending(dr) >= DMARCREP_PENDING_MAX) {
		/* the disk is behind: one line per thousand dropped */
		if (dr->dropped++ % 1000 == 0)
			log_warn("event=dmarc_record_dropped reason=backlog "
				 "pending=%zu dropped_total=%llu",
			    dr_pending(dr), (unsigned long long)dr->dropped);
		return;
	}
	if (dr->batch == NULL)
		dr->batch = xcalloc(DMARCREP_BATCH, sizeof(*dr->batch));
	e = &dr->batch[dr->nbatch];
	memset(e, 0, sizeof(*e));
	r = dmarcxml_record(lk, v, m, &e->pol, e->rua, sizeof(e->rua), &e->row);
	if (r == 1)
		return; /* no policy, or no rua mailto: nobody asked */
	if (r != 0) {
		dr->dropped++;
		log_warn("event=dmarc_record_dropped reason=bad_values "
			 "header_from=%s",
		    lk->from);
		return;
	}
	e->period = dr->period;
	dr->nbatch++;
	dr->recorded++;
	if (dr->nbatch == DMARCREP_BATCH) {
		dr_batch_flush(dr);
	} else if (!dr->batch_armed) {
		if (event_add(dr->batch_timer, &tv) != 0)
			panic("event=dmarc_report error=event_add");
		dr->batch_armed = true;
	}
}

/* ---- the lane of store operations -------------------------------------- */

static void
dr_op_build_run(struct dr_op *op)
{
	struct dmarcrep *dr = op->dr;
	struct dr_built *b = op->b;
	struct dmarcxml_meta meta = {dr->org, dr->from, b->report_id, 0, 0};
	struct dmarcdb_report r;
	struct buf gz;

	op->rc = dmarcdb_report(dr->db, op->domain, op->cutoff, &meta,
	    DMARCREP_XML_MAX, &r, op->err, sizeof(op->err));
	b->nrows = r.nrows;
	b->bad_rows = r.bad_rows;
	b->messages = r.messages;
	b->begin = r.begin;
	b->end = r.end;
	memcpy(b->rua, r.rua, sizeof(b->rua));
	buf_init(&gz, DMARCREP_XML_MAX);
	if (op->rc == 0 &&
	    (dmarcdb_gzip(r.xml.data, r.xml.len, &gz) != 0 ||
		dmarcxml_filename(dr->submitter, op->domain, r.begin, r.end,
		    b->filename, sizeof(b->filename)) != 0 ||
		dmarcxml_mail_body(b->boundary, op->domain, b->filename,
		    (const unsigned char *)gz.data, gz.len, &b->body) != 0)) {
		str_fmt_cut(op->err, sizeof(op->err),
		    "report of %s: cannot compress or encode it", op->domain);
		op->rc = -1;
	}
	buf_free(&gz);
	dmarcdb_report_free(&r);
}

static void
dr_op_run(struct job *j)
{
	struct dr_op *op = (struct dr_op *)j;
	struct dmarcdb *db = op->dr->db;

	switch (op->kind) {
	case DR_ADD:
		op->rc = dmarcdb_add(db, op->ents, op->n, op->max_rows,
		    &op->dropped, op->err, sizeof(op->err));
		break;
	case DR_LIST:
		op->rc = dmarcdb_domains(db, op->cutoff, &op->domains,
		    &op->ndomains, op->err, sizeof(op->err));
		break;
	case DR_BUILD:
		dr_op_build_run(op);
		break;
	case DR_CLEAR:
		op->rc = dmarcdb_clear(
		    db, op->domain, op->cutoff, op->err, sizeof(op->err));
		break;
	}
}

static void dr_op_done(struct job *j);

static void
dr_lane_kick(struct dmarcrep *dr)
{
	if (dr->lane_busy || dr->lane == NULL)
		return;
	dr->lane_busy = true;
	dr->lane->job.run = dr_op_run;
	dr->lane->job.done = dr_op_done;
	workers_submit(dr->srv->workers, &dr->lane->job);
}

static void
dr_lane_push(struct dmarcrep *dr, struct dr_op *op)
{
	op->dr = dr;
	op->next = NULL;
	if (dr->lane_tail != NULL)
		dr->lane_tail->next = op;
	else
		dr->lane = op;
	dr->lane_tail = op;
	dr_lane_kick(dr);
}

static void
dr_add_done(struct dr_op *op)
{
	struct dmarcrep *dr = op->dr;

	if (op->rc != 0) {
		dr->dropped += op->n;
		log_err("event=dmarc_store_failed records=%zu error=\"%s\"",
		    op->n, op->err);
	} else if (op->dropped > 0) {
		dr->dropped += op->dropped;
		log_warn("event=dmarc_record_dropped reason=store_full "
			 "dropped=%zu max_rows=%u dropped_total=%llu",
		    op->dropped, op->max_rows, (unsigned long long)dr->dropped);
	}
	free(op->ents);
}

static void dr_run_built(struct dr_run *run, struct dr_op *op);

static void
dr_op_done(struct job *j)
{
	struct dr_op *op = (struct dr_op *)j;
	struct dmarcrep *dr = op->dr;

	dr->lane = op->next;
	if (dr->lane == NULL)
		dr->lane_tail = NULL;
	dr->lane_busy = false;
	switch (op->kind) {
	case DR_ADD:
		dr_add_done(op);
		break;
	case DR_LIST:
		if (op->rc != 0)
			log_err("event=dmarc_report_failed step=list "
				"error=\"%s\"",
			    op->err);
		dr->run->domains = op->domains;
		dr->run->ndomains = op->ndomains;
		dr_run_next(dr->run);
		break;
	case DR_BUILD:
		dr_run_built(dr->run, op);
		break;
	case DR_CLEAR:
		if (op->rc != 0)
			log_err("event=dmarc_report_failed step=clear "
				"domain=%s error=\"%s\" (the rows stay: the "
				"next report repeats them)",
			    op->domain, op->err);
		dr_run_next(dr->run);
		break;
	}
	free(op);
	dr_lane_kick(dr);
}

/* ---- a report run ------------------------------------------------------ */

static void
dr_run_finish(struct dr_run *run)
{
	struct dmarcrep *dr = run->dr;

	log_info("event=dmarc_report_run domains=%zu queued=%u skipped=%u "
		 "failed=%u",
	    run->ndomains, run->queued, run->skipped, run->failed);
	if (run->out != NULL) {
		buf_reset(run->out);
		if (buf_printf(run->out,
			"{\"ok\":true,\"domains\":%zu,\"queued\":%u,"
			"\"skipped\":%u,\"failed\":%u}\n",
			run->ndomains, run->queued, run->skipped,
			run->failed) != 0)
			log_err("event=control error=\"no room for a reply\"");
		run->done(run->arg);
	}
	dmarcdb_domains_free(run->domains, run->ndomains);
	free(run);
	dr->run = NULL;
	server_maybe_exit(dr->srv);
}

static void
dr_built_free(struct dr_built *b)
{
	if (b == NULL)
		return;
	buf_free(&b->body);
	free(b);
}

static void
dr_run_reset_domain(struct dr_run *run)
{
	size_t i;

	for (i = 0; i < run->nto; i++)
		free(run->to[i]);
	free(run->to);
	run->to = NULL;
	run->nto = 0;
	run->tempfail = 0;
	dr_built_free(run->b);
	run->b = NULL;
}

static void
dr_run_clear(struct dr_run *run, const char *domain)
{
	struct dr_op *op = xcalloc(1, sizeof(*op));

	op->kind = DR_CLEAR;
	op->cutoff = run->cutoff;
	memcpy(op->domain, domain, sizeof(op->domain));
	dr_lane_push(run->dr, op);
}

static void
dr_run_next(struct dr_run *run)
{
	struct dr_op *op;
	const char *dom;
	char nid[ID_LEN + 1];

	dr_run_reset_domain(run);
	if (run->i >= run->ndomains) {
		dr_run_finish(run);
		return;
	}
	op = xcalloc(1, sizeof(*op));
	op->kind = DR_BUILD;
	op->cutoff = run->cutoff;
	op->b = xcalloc(1, sizeof(*op->b));
	buf_init(&op->b->body, DMARCREP_XML_MAX);
	/* the store's domains are lower case already (dmarcxml_record) */
	dom = run->domains[run->i++];
	if (str_copy(op->domain, sizeof(op->domain), dom, strlen(dom)) != 0)
		op->domain[0] = '\0';
	memcpy(op->b->domain, op->domain, sizeof(op->domain));
	id_new(nid);
	/* unique per report (7.2.1.1 report_id); the period's start first,
	 * so ids sort by time */
	if (str_fmt(op->b->report_id, sizeof(op->b->report_id), "%lld.%s",
		(long long)run->cutoff, nid) != 0 ||
	    str_fmt(op->b->boundary, sizeof(op->b->boundary), "=_dmarc_%s",
		nid) != 0)
		panic("event=dmarc_report error=\"id does not fit\"");
	dr_lane_push(run->dr, op);
}

static void
dr_run_add_to(struct dr_run *run, const char *addr)
{
	size_t i;

	for (i = 0; i < run->nto; i++)
		if (strcasecmp(run->to[i], addr) == 0)
			return;
	if (run->nto == 0)
		run->to = xcalloc(
		    DMARC_URI_MAX * (DMARC_URI_MAX + 1), sizeof(*run->to));
	if (run->nto < DMARC_URI_MAX * (DMARC_URI_MAX + 1))
		run->to[run->nto++] = xstrdup(addr);
}

static void dr_run_send(struct dr_run *run);

/* A URI the destinations' consent named instead of the original (7.1). */
static void
dr_run_override(struct dr_run *run, const char *text, size_t len)
{
	struct dmarc_record r;
	char addr[DR_ADDR_MAX + 1];
	size_t k;
	uint64_t size = run->b->body.len + 4096;

	if (dmarc_record_parse(text, len, &r) != DMARC_PARSE_OK)
		return;
	for (k = 0; k < r.nrua; k++) {
		if (r.rua[k].max_size != 0 && size > r.rua[k].max_size)
			continue;
		if (dmarcxml_mailto_addr(&r.rua[k], addr, sizeof(addr)) == 0)
			dr_run_add_to(run, addr);
	}
}

/* The TXT records of ans as dmarc_txt (strings of one record joined). */
static void
dr_on_consent(const struct dns_answer *ans, void *arg)
{
	struct dr_ask *ask = arg;
	struct dr_run *run = ask->run;
	const struct dmarc_uri *u = &run->rec.rua[ask->uri];
	const char **txt = xcalloc(ans->n + 1, sizeof(*txt));
	size_t *len = xcalloc(ans->n + 1, sizeof(*len)), idx = 0;
	char *store = xcalloc(1, DNS_ANSWER_DATA + 1);
	struct dmarc_txt t = {DMARC_DNS_OK, txt, len, 0};
	char addr[DR_ADDR_MAX + 1];
	enum dmarc_rua_auth a;

	t.n = report_txt_records(ans, txt, len, store);
	t.status = ans->rcode == DNS_ANS_OK	    ? DMARC_DNS_OK
		   : ans->rcode == DNS_ANS_NXDOMAIN ? DMARC_DNS_NXDOMAIN
						    : DMARC_DNS_TEMPFAIL;
	a = dmarc_rua_auth_judge(&t, u->host, u->host_len, &idx);
	if (a == DMARC_RUA_AUTHORISED &&
	    dmarcxml_mailto_addr(u, addr, sizeof(addr)) == 0)
		dr_run_add_to(run, addr);
	else if (a == DMARC_RUA_OVERRIDE)
		dr_run_override(run, txt[idx], len[idx]);
	else if (a == DMARC_RUA_TEMPFAIL)
		run->tempfail++;
	if (a == DMARC_RUA_REFUSED || a == DMARC_RUA_TEMPFAIL)
		log_info("event=dmarc_report_skip domain=%s uri=\"%.*s\" "
			 "reason=%s",
		    run->b->domain, (int)u->uri_len, u->uri,
		    a == DMARC_RUA_REFUSED ? "not_authorised" : "dns_tempfail");
	free(txt);
	free(len);
	free(store);
	free(ask);
	if (--run->asking == 0)
		dr_run_send(run);
}

static void
dr_run_dest(struct dr_run *run, size_t i, uint64_t size)
{
	const struct dmarc_uri *u = &run->rec.rua[i];
	enum dmarcxml_dest d =
	    dmarcxml_dest_check(run->dr->srv->psl, run->b->domain, u, size);
	char addr[DR_ADDR_MAX + 1], qname[DMARC_QNAME_MAX + 1];
	struct dr_ask *ask;

	if (d == DMARCXML_DEST_SEND &&
	    dmarcxml_mailto_addr(u, addr, sizeof(addr)) == 0) {
		dr_run_add_to(run, addr);
		return;
	}
	if (d == DMARCXML_DEST_NEEDS_AUTH &&
	    dmarc_rua_auth_name(run->b->domain, u->host, u->host_len, qname,
		sizeof(qname)) == 0) {
		ask = xcalloc(1, sizeof(*ask));
		ask->run = run;
		ask->uri = i;
		run->asking++;
		dns_lookup(
		    run->dr->srv->dns, DNS_Q_TXT, qname, dr_on_consent, ask);
		return;
	}
	log_info("event=dmarc_report_skip domain=%s uri=\"%.*s\" reason=%s "
		 "size=%llu",
	    run->b->domain, (int)u->uri_len, u->uri, dmarcxml_dest_name(d),
	    (unsigned long long)size);
}

static void
dr_run_built(struct dr_run *run, struct dr_op *op)
{
	size_t i;
	/* the mail as queued: the body and a header section of a few kB */
	uint64_t size;
	int n;

	run->b = op->b;
	if (op->rc == 2) {
		run->failed++;
		log_warn("event=dmarc_report_dropped domain=%s "
			 "reason=too_large error=\"%s\"",
		    op->domain, op->err);
		dr_run_clear(run, op->domain);
		return;
	}
	if (op->rc != 0) {
		if (op->rc < 0) {
			run->failed++;
			log_err("event=dmarc_report_failed step=build "
				"domain=%s error=\"%s\"",
			    op->domain, op->err);
		} else if (op->b->bad_rows > 0) {
			/* rows the file cannot make a report of: gone */
			log_warn("event=dmarc_report_skip domain=%s "
				 "reason=invalid_rows rows=%zu",
			    op->domain, op->b->bad_rows);
			dr_run_clear(run, op->domain);
			return;
		}
		dr_run_next(run);
		return;
	}
	size = op->b->body.len + 4096;
	n = str_fmt(run->rua_text, sizeof(run->rua_text), "v=DMARC1; rua=%s",
	    run->b->rua);
	if (n != 0 || dmarc_record_parse(run->rua_text, strlen(run->rua_text),
			  &run->rec) != DMARC_PARSE_OK)
		run->rec.nrua = 0;
	run->asking = 1; /* held until every URI has been looked at */
	for (i = 0; i < run->rec.nrua; i++)
		dr_run_dest(run, i, size);
	if (--run->asking == 0)
		dr_run_send(run);
}

static void
dr_sent(struct inject *ij)
{
	struct dr_run *run = ij->arg;
	struct dr_built *b = run->b;

	if (ij->rc != 0) {
		run->failed++;
		log_err("event=dmarc_report_failed step=queue domain=%s "
			"error=\"%s\"",
		    b->domain, ij->err);
		inject_clear(ij);
		free(ij);
		dr_run_next(run);
		return;
	}
	run->queued++;
	log_info("event=dmarc_report_queued domain=%s report_id=%s rows=%zu "
		 "messages=%llu recipients=%zu size=%zu",
	    b->domain, b->report_id, b->nrows, (unsigned long long)b->messages,
	    run->nto, b->body.len);
	inject_clear(ij);
	free(ij);
	dr_run_clear(run, b->domain);
}

static int
dr_envelope(struct dr_run *run, struct inject *ij)
{
	size_t i;

	ij->env = xcalloc(1, sizeof(*ij->env));
	queue_env_init(ij->env);
	if (str_copy(ij->env->proto, sizeof(ij->env->proto), "local",
		strlen("local")) != 0 ||
	    str_copy(ij->env->sender, sizeof(ij->env->sender), run->dr->from,
		strlen(run->dr->from)) != 0)
		return -1;
	for (i = 0; i < run->nto; i++)
		if (queue_env_add_rcpt(ij->env, run->to[i]) == NULL)
			return -1;
	return 0;
}

static void
dr_run_send(struct dr_run *run)
{
	struct dmarcrep *dr = run->dr;
	struct dr_built *b = run->b;
	struct inject *ij;
	char date[64], msgid[DMARCXML_NAME_MAX + 96];
	struct dmarcxml_mail m = {dr->from, (const char *const *)run->to,
	    run->nto, b->domain, dr->submitter, b->report_id, date, msgid,
	    b->boundary, NULL, NULL};

	if (run->nto == 0) {
		run->skipped++;
		if (run->tempfail > 0) {
			dr_run_next(run); /* kept: consent asked again */
			return;
		}
		log_info("event=dmarc_report_dropped domain=%s rows=%zu "
			 "reason=no_destination",
		    b->domain, b->nrows);
		dr_run_clear(run, b->domain);
		return;
	}
	if (time_rfc5322(date, sizeof(date), (int64_t)time(NULL)) == 0 ||
	    str_fmt(msgid, sizeof(msgid), "<%s.dmarc@%s>", b->report_id,
		dr->srv->conf->hostname) != 0)
		panic("event=dmarc_report error=\"date or id does not fit\"");
	ij = xcalloc(1, sizeof(*ij));
	inject_init(ij, dr->srv->store);
	if (dmarcxml_mail_head(&m, &ij->head) != 0 ||
	    dr_envelope(run, ij) != 0) {
		run->failed++;
		log_err("event=dmarc_report_failed step=envelope domain=%s",
		    b->domain);
		inject_clear(ij);
		free(ij);
		dr_run_next(run);
		return;
	}
	ij->body = b->body.data;
	ij->body_len = b->body.len;
	/* a report is a message tern makes, like a DSN: signed with the key
	 * of report_from's domain when it has one (dkimsign.h) */
	dkimsign_attach(dr->srv, ij, dr->from, ij->env->id, "");
	ij->arg = run;
	inject_submit(ij, dr_sent);
}

/* End the current period and report every earlier one. */
static int
dr_run_start(
    struct dmarcrep *dr, struct buf *out, void (*done)(void *), void *arg)
{
	struct dr_run *run;
	struct dr_op *op;
	int64_t now = (int64_t)time(NULL);

	if (dr->run != NULL)
		return -1;
	dr_batch_flush(dr);
	dr_names_for_run(dr);
	run = xcalloc(1, sizeof(*run));
	run->dr = dr;
	run->cutoff = now;
	run->out = out;
	run->done = done;
	run->arg = arg;
	dr->run = run;
	dr->period = now;
	op = xcalloc(1, sizeof(*op));
	op->kind = DR_LIST;
	op->cutoff = now;
	dr_lane_push(dr, op);
	return 0;
}

static void
dr_arm_report(struct dmarcrep *dr)
{
	struct timeval tv = {(time_t)dr->srv->conf->dmarc_report_interval, 0};

	if (event_add(dr->report_timer, &tv) != 0)
		panic("event=dmarc_report error=event_add");
}

static void
on_report_timer(evutil_socket_t fd, short what, void *arg)
{
	struct dmarcrep *dr = arg;

	(void)fd;
	(void)what;
	if (dr->stopping)
		return;
	if (dr_run_start(dr, NULL, NULL, NULL) != 0)
		log_warn("event=dmarc_report_run skipped=\"a run is still in "
			 "progress\"");
	dr_arm_report(dr);
}

void
dmarcrep_control(
    struct dmarcrep *dr, struct buf *out, void (*done)(void *arg), void *arg)
{
	if (dr->stopping || dr_run_start(dr, out, done, arg) != 0) {
		buf_reset(out);
		if (buf_append_str(out,
			"{\"ok\":false,\"error\":\"a report run is in "
			"progress; try again\"}\n") != 0)
			log_err("event=control error=\"no room for a reply\"");
		done(arg);
	}
}

/* ---- life -------------------------------------------------------------- */

/* The names of report_from and report_org into from, submitter, org
 * (each DR_ADDR_MAX + 1, DMARCXML_NAME_MAX + 1, 256 octets). */
static int
dr_names_of(const struct conf *cf, char *from, char *submitter, char *org,
    char *err, size_t errlen)
{
	struct report_names n = {
	    from, DR_ADDR_MAX + 1, submitter, DMARCXML_NAME_MAX + 1, org, 256};

	return report_names(cf->dmarc_report_from, "dmarc-noreply",
	    cf->hostname, cf->dmarc_report_org, "dmarc.report_from",
	    "dmarc.report_org", &n, err, errlen);
}

static void
dr_names(struct dmarcrep *dr, const struct conf *cf)
{
	char err[512];

	if (dr_names_of(
		cf, dr->from, dr->submitter, dr->org, err, sizeof(err)) != 0)
		fatalx("event=startup step=dmarc error=\"%s\"", err);
}

int
dmarcrep_check(const struct conf *cf, char *err, size_t errlen)
{
	char from[DR_ADDR_MAX + 1], submitter[DMARCXML_NAME_MAX + 1], org[256];

	return dr_names_of(cf, from, submitter, org, err, errlen);
}

/*
 * A run's names, taken from the configuration current when it starts
 * (a reload may have changed them): no run is under way, so no job on a
 * worker reads them while they change, and a run keeps one set from its
 * first report to its last.  dmarcrep_check vetted them at the reload.
 */
static void
dr_names_for_run(struct dmarcrep *dr)
{
	char err[512];

	/* all three or none (reportcommon.h) */
	if (dr_names_of(dr->srv->conf, dr->from, dr->submitter, dr->org, err,
		sizeof(err)) != 0)
		log_err("event=dmarc_report_run error=\"%s\" action=kept_names",
		    err);
}

void
dmarcrep_reload(struct dmarcrep *dr, const struct conf *oc)
{
	if (dr == NULL || dr->stopping || dr->report_timer == NULL ||
	    oc->dmarc_report_interval == dr->srv->conf->dmarc_report_interval)
		return;
	/* the next run one new interval from now, not at the old time */
	dr_arm_report(dr);
	log_info("event=dmarc_reports step=reload interval=%u",
	    dr->srv->conf->dmarc_report_interval);
}

struct dmarcrep *
dmarcrep_open(struct server *s)
{
	struct dmarcrep *dr;
	char path[4096], err[512];

	if (!s->conf->dmarc_reports)
		return NULL;
	dr = xcalloc(1, sizeof(*dr));
	dr->srv = s;
	dr_names(dr, s->conf);
	if (str_fmt(path, sizeof(path), "%s/dmarc.db", s->conf->state_dir) != 0)
		fatalx("event=startup step=dmarc error=\"state_dir too long\"");
	if (dmarcdb_open(path, false, &dr->db, err, sizeof(err)) != 0)
		fatalx("event=startup step=dmarc error=\"%s\"", err);
	dr->period = (int64_t)time(NULL);
	log_info("event=dmarc_reports from=%s interval=%u rows=%llu", dr->from,
	    s->conf->dmarc_report_interval,
	    (unsigned long long)dmarcdb_rows(dr->db));
	return dr;
}

void
dmarcrep_start(struct dmarcrep *dr)
{
	if (dr == NULL)
		return;
	dr->batch_timer = evtimer_new(dr->srv->base, on_batch_timer, dr);
	dr->report_timer = evtimer_new(dr->srv->base, on_report_timer, dr);
	if (dr->batch_timer == NULL || dr->report_timer == NULL)
		fatalx("event=startup step=dmarc error=\"no timer\"");
	dr_arm_report(dr);
}

void
dmarcrep_stop(struct dmarcrep *dr)
{
	if (dr == NULL || dr->stopping)
		return;
	dr->stopping = true;
	dr_batch_flush(dr);
	if (dr->report_timer != NULL && event_del(dr->report_timer) != 0)
		panic("event=dmarc_report error=event_del");
}

const struct psl *
dmarcrep_psl(const struct dmarcrep *dr)
{
	return dr != NULL ? dr->srv->psl : NULL;
}

bool
dmarcrep_idle(const struct dmarcrep *dr)
{
	return dr == NULL ||
	       (dr->nbatch == 0 && dr->lane == NULL && dr->run == NULL);
}

void
dmarcrep_free(struct dmarcrep *dr)
{
	struct dr_op *op, *next;

	if (dr == NULL)
		return;
	for (op = dr->lane; op != NULL; op = next) {
		next = op->next;
		free(op->ents);
		if (op->b != NULL)
			dr_built_free(op->b);
		dmarcdb_domains_free(op->domains, op->ndomains);
		free(op);
	}
	free(dr->batch);
	if (dr->batch_timer != NULL)
		event_free(dr->batch_timer);
	if (dr->report_timer != NULL)
		event_free(dr->report_timer);
	log_info("event=dmarc_reports_stopped recorded=%llu dropped=%llu",
	    (unsigned long long)dr->recorded, (unsigned long long)dr->dropped);
	dmarcdb_close(dr->db);
	free(dr);
}
