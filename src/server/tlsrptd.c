/*
 * tlsrptd: TLS-RPT (RFC 8460) reports in ternd; see tlsrptd.h.
 *
 * The file lane: every write of STATE/tlsrpt.state or .pending (and the
 * removal of .pending) is a struct td_write run on the worker pool one at
 * a time, in the order asked, so a later write never lands before an
 * earlier one.  A file is written whole as NAME.tmp, fsync'ed, renamed
 * over NAME and the directory fsync'ed: a crash leaves the old or the new
 * content, never a mix.
 *
 * A report run: the current period ends (tlsrpt_take: the delivery code
 * goes on counting into the same, now empty, table), the old period is
 * written to .pending, then for each of its domains: the "_smtp._tls" TXT
 * lookup (loop), the JSON (loop: bounded, a few kB), gzip and the MIME
 * body (worker), then one mail to every mailto: address (inject_submit)
 * and one POST per https: URI (worker, libcurl, the host resolved by
 * ternd's own resolver and handed to libcurl with CURLOPT_RESOLVE).
 * When every domain is done, .pending is removed.  A crash in between
 * reports the pending period again after the restart: a duplicate
 * report, never a lost count.
 */
#include <curl/curl.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "deliver/dns.h"
#include "dmarcdb/dmarcdb.h"
#include "fs/file.h"
#include "mailauth/dmarcxml.h"
#include "queue/queue.h"
#include "server/dkimsign.h"
#include "server/reportcommon.h"
#include "server/server.h"
#include "server/tlsrptd.h"
#include "store/store.h"
#include "tlsrpt/tlsrpt.h"

#define TD_ADDR_MAX    320
#define TD_STATE       "tlsrpt.state"
#define TD_PENDING     "tlsrpt.pending"
#define TD_FILE_MAX    ((size_t)256 << 20)
#define TD_JSON_MAX    ((size_t)16 << 20)
#define TD_REPORT_TYPE "multipart/report; report-type=\"tlsrpt\""
#define TD_MEDIA_TYPE  "application/tlsrpt+gzip"

struct td_run;

/* one file step on the lane */
struct td_write {
	struct job job;
	struct tlsrptd *td;
	char name[32];
	bool unlink; /* else write data, or rename */
	bool rename; /* name becomes TD_PENDING */
	struct buf data;
	int rc;
	char err[160];
	struct td_write *next;
};

/* one domain's report being built on a worker */
struct td_build {
	struct job job;
	struct td_run *run;
	struct buf json, gz, body;
	char filename[TLSRPT_DOMAIN_MAX * 2 + 128];
	char boundary[64];
	int rc;
};

/* one POST to an https: rua */
struct td_post {
	struct job job;
	struct td_run *run;
	char url[TLSRPT_URI_MAX + 1];
	char host[TLSRPT_URI_MAX + 1];
	unsigned port;
	char resolve[TLSRPT_URI_MAX + 80];
	/* tls.ca_file and tls.ca_path, copied on the loop (a reload may
	   free the conf while the POST runs), or NULL: the system store */
	char *ca, *capath;
	long status;
	int rc;
	char err[CURL_ERROR_SIZE];
};

struct td_run {
	struct tlsrptd *td;
	struct tlsrpt *t; /* the period being reported */
	int64_t end;
	size_t i; /* the domain at hand */
	struct tlsrpt_record rec;
	char report_id[160];
	struct buf gz;	 /* the domain's report, gzipped */
	struct buf body; /* and as a MIME body */
	char filename[TLSRPT_DOMAIN_MAX * 2 + 128];
	char boundary[64];
	unsigned outstanding; /* mail and POSTs of this domain under way */
	unsigned mailed, posted, skipped, failed;
	struct buf *out;
	void (*done)(void *arg);
	void *arg;
};

struct tlsrptd {
	struct server *srv;
	struct tlsrpt *cur;
	int dir_fd; /* state_dir */
	char from[TD_ADDR_MAX + 1];
	char submitter[TLSRPT_DOMAIN_MAX + 1];
	char org[256];
	struct event *flush_timer, *report_timer;
	struct td_write *lane, *lane_tail;
	bool lane_busy;
	unsigned posts; /* POSTs and builds on the workers */
	struct td_run *run;
	bool had_pending; /* .pending was read at start */
	uint64_t written_sessions, written_dropped;
	bool stopping;
};

static void td_run_next(struct td_run *run);

/* ---- the file lane ------------------------------------------------------- */

static void
td_write_run(struct job *j)
{
	struct td_write *w = (struct td_write *)j;
	int dfd = w->td->dir_fd;
	char tmp[48];
	const char *step = "name";
	struct iovec iov;

	w->rc = -1;
	if (w->rename) {
		if (file_rename("tlsrpt", dfd, w->name, dfd, TD_PENDING, 0) !=
			0 ||
		    file_sync_dir("tlsrpt", dfd) != 0) {
			str_fmt_cut(w->err, sizeof(w->err), "rename: %s",
			    strerror(errno));
			return;
		}
		w->rc = 0;
		return;
	}
	if (w->unlink) {
		if (unlinkat(dfd, w->name, 0) != 0 && errno != ENOENT) {
			str_fmt_cut(w->err, sizeof(w->err), "unlink: %s",
			    strerror(errno));
			return;
		}
		if (file_sync_dir("tlsrpt", dfd) != 0) {
			str_fmt_cut(w->err, sizeof(w->err), "fsync dir: %s",
			    strerror(errno));
			return;
		}
		w->rc = 0;
		return;
	}
	if (str_fmt(tmp, sizeof(tmp), "%s.tmp", w->name) != 0)
		return;
	(void)unlinkat(dfd, tmp, 0); /* a crash's leftover */
	iov.iov_base = w->data.data;
	iov.iov_len = w->data.len;
	if (file_write_new("tlsrpt", dfd, tmp, &iov, 1, true, NULL, &step) !=
		0 ||
	    (step = "rename",
		file_rename("tlsrpt", dfd, tmp, dfd, w->name, 0)) != 0 ||
	    (step = "fsync_dir", file_sync_dir("tlsrpt", dfd)) != 0) {
		str_fmt_cut(w->err, sizeof(w->err), "%s %s: %s", step, tmp,
		    strerror(errno));
		(void)unlinkat(dfd, tmp, 0);
		return;
	}
	w->rc = 0;
}

static void td_write_done(struct job *j);

static void
td_lane_kick(struct tlsrptd *td)
{
	if (td->lane_busy || td->lane == NULL)
		return;
	td->lane_busy = true;
	td->lane->job.run = td_write_run;
	td->lane->job.done = td_write_done;
	workers_submit(td->srv->workers, &td->lane->job);
}

static void
td_write_done(struct job *j)
{
	struct td_write *w = (struct td_write *)j;
	struct tlsrptd *td = w->td;

	td->lane = w->next;
	if (td->lane == NULL)
		td->lane_tail = NULL;
	td->lane_busy = false;
	if (w->rc != 0)
		log_err("event=tlsrpt_store_failed file=%s error=\"%s\"",
		    w->name, w->err);
	buf_free(&w->data);
	free(w);
	td_lane_kick(td);
	server_maybe_exit(td->srv);
}

/* t: write it as name; NULL: unlink name, or with rename, rename name
 * to TD_PENDING */
static void
td_lane_push2(
    struct tlsrptd *td, const char *name, const struct tlsrpt *t, bool rename)
{
	struct td_write *w = xcalloc(1, sizeof(*w));

	w->td = td;
	memcpy(w->name, name, strlen(name) + 1);
	buf_init(&w->data, TD_FILE_MAX);
	if (rename) {
		w->rename = true;
	} else if (t == NULL) {
		w->unlink = true;
	} else if (tlsrpt_encode(t, &w->data) != 0) {
		log_err("event=tlsrpt_store_failed file=%s error=\"the state "
			"does not fit %zu octets\"",
		    name, TD_FILE_MAX);
		buf_free(&w->data);
		free(w);
		return;
	}
	if (td->lane_tail != NULL)
		td->lane_tail->next = w;
	else
		td->lane = w;
	td->lane_tail = w;
	td_lane_kick(td);
}

static void
td_lane_push(struct tlsrptd *td, const char *name, const struct tlsrpt *t)
{
	td_lane_push2(td, name, t, false);
}

/* The current table to disk when it changed since the last write. */
static void
td_flush(struct tlsrptd *td, bool force)
{
	uint64_t s = tlsrpt_sessions(td->cur), d = tlsrpt_dropped(td->cur);

	if (!force && s == td->written_sessions && d == td->written_dropped)
		return;
	td->written_sessions = s;
	td->written_dropped = d;
	td_lane_push(td, TD_STATE, td->cur);
}

static void
on_flush_timer(evutil_socket_t fd, short what, void *arg)
{
	struct tlsrptd *td = arg;

	(void)fd;
	(void)what;
	if (td->lane == NULL) /* else the disk is behind: next tick */
		td_flush(td, false);
}

/* ---- a report run: one domain ------------------------------------------- */

static void
td_domain_done(struct td_run *run)
{
	buf_free(&run->gz);
	buf_free(&run->body);
	run->i++;
	td_run_next(run);
}

static void
td_piece_done(struct td_run *run)
{
	if (--run->outstanding == 0)
		td_domain_done(run);
}

static void
td_sent(struct inject *ij)
{
	struct td_run *run = ij->arg;
	const char *dom = tlsrpt_domain(run->t, run->i);

	if (ij->rc != 0) {
		run->failed++;
		log_err("event=tlsrpt_report_failed step=queue domain=%s "
			"error=\"%s\"",
		    dom, ij->err);
	} else {
		run->mailed++;
		log_info("event=tlsrpt_report_queued domain=%s report_id=%s "
			 "size=%zu",
		    dom, run->report_id, run->body.len);
	}
	inject_clear(ij);
	free(ij);
	td_piece_done(run);
}

static void
td_mail(struct td_run *run)
{
	struct tlsrptd *td = run->td;
	const char *dom = tlsrpt_domain(run->t, run->i);
	const char *to[TLSRPT_RUA_MAX];
	char date[64], msgid[TLSRPT_DOMAIN_MAX + 200], extra[600];
	struct dmarcxml_mail m = {td->from, to, 0, dom, td->submitter,
	    run->report_id, date, msgid, run->boundary, TD_REPORT_TYPE, extra};
	struct inject *ij;
	size_t k, n = 0, j;

	for (k = 0; k < run->rec.nrua; k++) {
		if (!run->rec.rua[k].mailto)
			continue;
		for (j = 0; j < n; j++)
			if (strcasecmp(to[j], run->rec.rua[k].addr) == 0)
				break;
		if (j == n)
			to[n++] = run->rec.rua[k].addr;
	}
	if (n == 0)
		return;
	m.nto = n;
	if (time_rfc5322(date, sizeof(date), (int64_t)time(NULL)) == 0 ||
	    str_fmt(msgid, sizeof(msgid), "<%s.tlsrpt@%s>", run->report_id,
		td->srv->conf->hostname) != 0 ||
	    tlsrpt_mail_fields(dom, td->submitter, extra, sizeof(extra)) != 0)
		panic("event=tlsrpt_report error=\"date or id does not fit\"");
	ij = xcalloc(1, sizeof(*ij));
	inject_init(ij, td->srv->store);
	ij->env = xcalloc(1, sizeof(*ij->env));
	queue_env_init(ij->env);
	if (dmarcxml_mail_head(&m, &ij->head) != 0 ||
	    str_copy(ij->env->proto, sizeof(ij->env->proto), "local", 5) != 0 ||
	    str_copy(ij->env->sender, sizeof(ij->env->sender), td->from,
		strlen(td->from)) != 0) {
		run->failed++;
		log_err(
		    "event=tlsrpt_report_failed step=envelope domain=%s", dom);
		inject_clear(ij);
		free(ij);
		return;
	}
	for (k = 0; k < n; k++)
		if (queue_env_add_rcpt(ij->env, to[k]) == NULL) {
			run->failed++;
			log_err("event=tlsrpt_report_failed step=envelope "
				"domain=%s rcpt=%s",
			    dom, to[k]);
			inject_clear(ij);
			free(ij);
			return;
		}
	ij->body = run->body.data;
	ij->body_len = run->body.len;
	/* signed with report_from's domain key when one exists (RFC 8460
	 * 5.3 asks reports to be DKIM-signed), like the DMARC reports */
	dkimsign_attach(td->srv, ij, td->from, ij->env->id, "");
	ij->arg = run;
	run->outstanding++;
	inject_submit(ij, td_sent);
}

/* ---- https: -------------------------------------------------------------- */

static size_t
td_discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n; /* the answer's body is not used */
}

static void
td_post_run(struct job *j)
{
	struct td_post *p = (struct td_post *)j;
	struct td_run *run = p->run;
	const char *ca = p->ca, *capath = p->capath;
	struct curl_slist *hdr = NULL, *res = NULL;
	CURL *c = curl_easy_init();
	CURLcode rc = CURLE_FAILED_INIT;

	p->rc = -1;
	if (c == NULL) {
		str_fmt_cut(p->err, sizeof(p->err), "curl_easy_init");
		return;
	}
	hdr = curl_slist_append(hdr, "Content-Type: " TD_MEDIA_TYPE);
	if (p->resolve[0] != '\0')
		res = curl_slist_append(res, p->resolve);
	if (hdr == NULL || (p->resolve[0] != '\0' && res == NULL))
		goto out;
	p->err[0] = '\0';
	/* https only, no redirect (RFC 8460 5.4: a POST to the URI as
	 * given), the certificate verified, bounded in time */
	if (curl_easy_setopt(c, CURLOPT_URL, p->url) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
	    (ca != NULL &&
		curl_easy_setopt(c, CURLOPT_CAINFO, ca) != CURLE_OK) ||
	    (capath != NULL &&
		curl_easy_setopt(c, CURLOPT_CAPATH, capath) != CURLE_OK) ||
	    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)TLSRPTD_POST_SECS) !=
		CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 20L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr) != CURLE_OK ||
	    (res != NULL &&
		curl_easy_setopt(c, CURLOPT_RESOLVE, res) != CURLE_OK) ||
	    curl_easy_setopt(c, CURLOPT_USERAGENT, "tern-tlsrpt") != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_POSTFIELDS, run->gz.data) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
		(curl_off_t)run->gz.len) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, td_discard) !=
		CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, p->err) != CURLE_OK)
		goto out;
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK) {
		(void)curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &p->status);
		p->rc = p->status >= 200 && p->status < 300 ? 0 : -1;
		if (p->rc != 0)
			str_fmt_cut(p->err, sizeof(p->err), "HTTP status %ld",
			    p->status);
	}
out:
	if (p->rc != 0 && p->err[0] == '\0')
		str_fmt_cut(
		    p->err, sizeof(p->err), "%s", curl_easy_strerror(rc));
	curl_slist_free_all(hdr);
	curl_slist_free_all(res);
	curl_easy_cleanup(c);
}

static void
td_post_done(struct job *j)
{
	struct td_post *p = (struct td_post *)j;
	struct td_run *run = p->run;
	const char *dom = tlsrpt_domain(run->t, run->i);
	char q[CURL_ERROR_SIZE + 16];

	run->td->posts--;
	if (p->rc == 0) {
		run->posted++;
		log_info("event=tlsrpt_report_posted domain=%s uri=\"%s\" "
			 "status=%ld report_id=%s size=%zu",
		    dom, p->url, p->status, run->report_id, run->gz.len);
	} else {
		run->failed++;
		log_warn("event=tlsrpt_report_failed step=post domain=%s "
			 "uri=\"%s\" error=\"%s\"",
		    dom, p->url,
		    log_quote(q, sizeof(q), p->err, strlen(p->err)));
	}
	free(p->ca);
	free(p->capath);
	free(p);
	td_piece_done(run);
}

static void
td_post_submit(struct td_post *p)
{
	p->job.run = td_post_run;
	p->job.done = td_post_done;
	p->run->td->posts++;
	workers_submit(p->run->td->srv->workers, &p->job);
}

static void
td_on_addr(const struct dns_answer *ans, void *arg)
{
	struct td_post *p = arg;
	char ip[INET6_ADDRSTRLEN];

	if (ans->rcode != DNS_ANS_OK || ans->n == 0 || ans->rrs[0].len != 4 ||
	    inet_ntop(AF_INET, ans->rrs[0].data, ip, sizeof(ip)) == NULL ||
	    str_fmt(p->resolve, sizeof(p->resolve), "%s:%u:%s", p->host,
		p->port, ip) != 0) {
		struct td_run *run = p->run;

		run->failed++;
		log_warn("event=tlsrpt_report_failed step=resolve domain=%s "
			 "uri=\"%s\" host=%s",
		    tlsrpt_domain(run->t, run->i), p->url, p->host);
		free(p->ca);
		free(p->capath);
		free(p);
		td_piece_done(run);
		return;
	}
	td_post_submit(p);
}

/* "https://host[:port]/..." into p->host and p->port; -1 when it is not
 * of that form (an IPv6 literal host is not supported) */
static int
td_url_host(struct td_post *p)
{
	const char *h = p->url + 8, *e = h;
	uint64_t port = 443;

	while (*e != '\0' && *e != '/' && *e != ':' && *e != '?' && *e != '#')
		e++;
	if (e == h || *h == '[' || memchr(h, '@', (size_t)(e - h)) != NULL ||
	    str_copy(p->host, sizeof(p->host), h, (size_t)(e - h)) != 0)
		return -1;
	if (*e == ':') {
		const char *ps = ++e;

		while (*e >= '0' && *e <= '9')
			e++;
		if (str_to_u64(ps, (size_t)(e - ps), &port) != 0 || port == 0 ||
		    port > 65535)
			return -1;
	}
	p->port = (unsigned)port;
	return 0;
}

static char *
dup_ca(const char *ca)
{
	return ca != NULL ? xstrdup(ca) : NULL;
}

static void
td_post(struct td_run *run, const char *url)
{
	struct td_post *p = xcalloc(1, sizeof(*p));
	struct in_addr a4;

	p->run = run;
	memcpy(p->url, url, strlen(url) + 1);
	p->ca = dup_ca(run->td->srv->conf->tls_ca_file);
	p->capath = dup_ca(run->td->srv->conf->tls_ca_path);
	if (td_url_host(p) != 0) {
		run->failed++;
		log_warn("event=tlsrpt_report_failed step=uri domain=%s "
			 "uri=\"%s\" error=\"not https://host[:port]/...\"",
		    tlsrpt_domain(run->t, run->i), url);
		free(p->ca);
		free(p->capath);
		free(p);
		return;
	}
	run->outstanding++;
	if (inet_pton(AF_INET, p->host, &a4) == 1) {
		td_post_submit(p); /* an address: nothing to resolve */
		return;
	}
	/* ternd's resolver, never libcurl's own (dns.servers applies) */
	dns_lookup(run->td->srv->dns, DNS_Q_A, p->host, td_on_addr, p);
}

/* ---- a report run: the steps --------------------------------------------- */

static void
td_build_run(struct job *j)
{
	struct td_build *b = (struct td_build *)j;
	char text[TLSRPT_DOMAIN_MAX + 80];
	const char *dom = tlsrpt_domain(b->run->t, b->run->i);

	b->rc = -1;
	if (dmarcdb_gzip(b->json.data, b->json.len, &b->gz) != 0 ||
	    str_fmt(text, sizeof(text),
		"TLS report (RFC 8460) for %s: see the attached file.",
		dom) != 0 ||
	    dmarcxml_mail_parts(b->boundary,
		"This is an aggregate TLS report (RFC 8460) in MIME format.",
		text, TD_MEDIA_TYPE, b->filename,
		(const unsigned char *)b->gz.data, b->gz.len, &b->body) != 0)
		return;
	b->rc = 0;
}

static void
td_build_done(struct job *j)
{
	struct td_build *b = (struct td_build *)j;
	struct td_run *run = b->run;
	size_t k;

	run->td->posts--;
	if (b->rc != 0) {
		run->failed++;
		log_err("event=tlsrpt_report_failed step=build domain=%s",
		    tlsrpt_domain(run->t, run->i));
		buf_free(&b->json);
		buf_free(&b->gz);
		buf_free(&b->body);
		free(b);
		td_domain_done(run);
		return;
	}
	run->gz = b->gz;
	run->body = b->body;
	buf_free(&b->json);
	free(b);
	run->outstanding = 1; /* held until every destination is started */
	td_mail(run);
	for (k = 0; k < run->rec.nrua; k++)
		if (!run->rec.rua[k].mailto)
			td_post(run, run->rec.rua[k].uri);
	td_piece_done(run);
}

static void
td_build(struct td_run *run)
{
	struct tlsrptd *td = run->td;
	struct td_build *b = xcalloc(1, sizeof(*b));
	const char *dom = tlsrpt_domain(run->t, run->i);
	char nid[ID_LEN + 1];
	struct tlsrpt_meta m = {
	    td->org, td->from, run->report_id, tlsrpt_begin(run->t), run->end};

	id_new(nid);
	if (str_fmt(run->report_id, sizeof(run->report_id), "%lld.%s@%s",
		(long long)run->end, nid, td->submitter) != 0 ||
	    str_fmt(run->boundary, sizeof(run->boundary), "=_tlsrpt_%s", nid) !=
		0 ||
	    tlsrpt_filename(td->submitter, dom, tlsrpt_begin(run->t), run->end,
		nid, run->filename, sizeof(run->filename)) != 0)
		panic("event=tlsrpt_report error=\"id does not fit\"");
	b->run = run;
	memcpy(b->boundary, run->boundary, sizeof(b->boundary));
	memcpy(b->filename, run->filename, sizeof(b->filename));
	buf_init(&b->json, TD_JSON_MAX);
	buf_init(&b->gz, TLSRPTD_GZ_MAX);
	buf_init(&b->body, TLSRPTD_GZ_MAX * 2);
	if (tlsrpt_report_json(run->t, run->i, &m, &b->json) != 0) {
		run->failed++;
		log_err("event=tlsrpt_report_failed step=json domain=%s", dom);
		buf_free(&b->json);
		buf_free(&b->gz);
		buf_free(&b->body);
		free(b);
		td_domain_done(run);
		return;
	}
	b->job.run = td_build_run;
	b->job.done = td_build_done;
	td->posts++;
	workers_submit(td->srv->workers, &b->job);
}

/* The TXT records of the answer, the strings of one record joined. */
static void
td_on_txt(const struct dns_answer *ans, void *arg)
{
	struct td_run *run = arg;
	const char *dom = tlsrpt_domain(run->t, run->i);
	const char **txt = xcalloc(ans->n + 1, sizeof(*txt));
	size_t *len = xcalloc(ans->n + 1, sizeof(*len));
	char *store = xcalloc(1, DNS_ANSWER_DATA + 1);
	enum tlsrpt_parse pr = TLSRPT_PARSE_NOT_TLSRPT;
	int pick = -1;
	size_t n = report_txt_records(ans, txt, len, store);

	if (ans->rcode == DNS_ANS_OK &&
	    (pick = tlsrpt_record_pick(txt, len, n)) >= 0)
		pr = tlsrpt_record_parse(txt[pick], len[pick], &run->rec);
	free(txt);
	free(len);
	free(store);
	if (ans->rcode == DNS_ANS_TEMP) {
		/* not known now: the counts go back to the current period */
		tlsrpt_merge_domain(run->td->cur, run->t, run->i);
		run->skipped++;
		log_info(
		    "event=tlsrpt_report_skip domain=%s reason=dns_tempfail "
		    "(kept for the next run)",
		    dom);
		td_domain_done(run);
		return;
	}
	if (pr != TLSRPT_PARSE_OK) {
		run->skipped++;
		log_info("event=tlsrpt_report_skip domain=%s reason=%s", dom,
		    pick == -2			 ? "several_records"
		    : pick < 0			 ? "no_record"
		    : pr == TLSRPT_PARSE_INVALID ? "invalid_record"
						 : "no_record");
		td_domain_done(run);
		return;
	}
	if (run->rec.skipped > 0)
		log_info("event=tlsrpt_report_uri_skipped domain=%s uris=%zu "
			 "reason=\"not mailto: or https:, or malformed\"",
		    dom, run->rec.skipped);
	td_build(run);
}

static void
td_run_finish(struct td_run *run)
{
	struct tlsrptd *td = run->td;

	log_info("event=tlsrpt_report_run domains=%zu mailed=%u posted=%u "
		 "skipped=%u failed=%u dropped=%llu",
	    tlsrpt_ndomains(run->t), run->mailed, run->posted, run->skipped,
	    run->failed, (unsigned long long)tlsrpt_dropped(run->t));
	if (run->out != NULL) {
		buf_reset(run->out);
		if (buf_printf(run->out,
			"{\"ok\":true,\"domains\":%zu,\"mailed\":%u,"
			"\"posted\":%u,\"skipped\":%u,\"failed\":%u}\n",
			tlsrpt_ndomains(run->t), run->mailed, run->posted,
			run->skipped, run->failed) != 0)
			log_err("event=control error=\"no room for a reply\"");
		run->done(run->arg);
	}
	/* the period is reported (or back in cur): .pending is done with;
	 * cur goes first, since it may hold counts merged back */
	td_flush(td, true);
	td_lane_push(td, TD_PENDING, NULL);
	tlsrpt_free(run->t);
	free(run);
	td->run = NULL;
	server_maybe_exit(td->srv);
}

static void
td_run_next(struct td_run *run)
{
	char qname[TLSRPT_DOMAIN_MAX + 16];
	const char *dom;

	memset(&run->rec, 0, sizeof(run->rec));
	run->outstanding = 0;
	if (run->i >= tlsrpt_ndomains(run->t)) {
		td_run_finish(run);
		return;
	}
	dom = tlsrpt_domain(run->t, run->i);
	if (str_fmt(qname, sizeof(qname), "_smtp._tls.%s", dom) != 0) {
		run->skipped++;
		run->i++;
		td_run_next(run);
		return;
	}
	dns_lookup(run->td->srv->dns, DNS_Q_TXT, qname, td_on_txt, run);
}

static void td_arm_report(struct tlsrptd *td);
static void td_names_for_run(struct tlsrptd *td);

static int
td_run_start(
    struct tlsrptd *td, struct buf *out, void (*done)(void *), void *arg)
{
	struct td_run *run;
	int64_t now = (int64_t)time(NULL);

	if (td->run != NULL)
		return -1;
	td_names_for_run(td);
	run = xcalloc(1, sizeof(*run));
	run->td = td;
	run->end = now;
	run->t = tlsrpt_take(td->cur, now);
	run->out = out;
	run->done = done;
	run->arg = arg;
	td->run = run;
	/* the old period stays on disk until it is reported: written whole
	 * as the state, which then becomes .pending in one rename, so no
	 * crash finds it in both files or in neither */
	td_lane_push(td, TD_STATE, run->t);
	td_lane_push2(td, TD_STATE, NULL, true);
	td->written_sessions = td->written_dropped = 0;
	if (td->report_timer != NULL) /* the next one, from this period */
		td_arm_report(td);
	td_run_next(run);
	return 0;
}

/*
 * The next run is due one interval after the current period began, and
 * the period's start survives restarts (STATE/tlsrpt.state): a ternd
 * restarted more often than the interval still reports.  One overdue at
 * start waits TLSRPTD_START_DELAY for the resolver and the queue.
 */
static void
td_arm_report(struct tlsrptd *td)
{
	int64_t iv = (int64_t)td->srv->conf->tlsrpt_report_interval;
	int64_t d = tlsrpt_begin(td->cur) + iv - (int64_t)time(NULL);
	struct timeval tv;

	if (d < TLSRPTD_START_DELAY)
		d = TLSRPTD_START_DELAY;
	if (d > iv)
		d = iv;
	tv.tv_sec = (time_t)d;
	tv.tv_usec = 0;
	if (event_add(td->report_timer, &tv) != 0)
		panic("event=tlsrpt_report error=event_add");
}

static void
on_report_timer(evutil_socket_t fd, short what, void *arg)
{
	struct tlsrptd *td = arg;

	(void)fd;
	(void)what;
	if (td->stopping)
		return;
	if (td_run_start(td, NULL, NULL, NULL) != 0)
		log_warn("event=tlsrpt_report_run skipped=\"a run is still in "
			 "progress\"");
	td_arm_report(td);
}

void
tlsrptd_control(
    struct tlsrptd *td, struct buf *out, void (*done)(void *), void *arg)
{
	if (td->stopping || td_run_start(td, out, done, arg) != 0) {
		buf_reset(out);
		if (buf_append_str(out,
			"{\"ok\":false,\"error\":\"a TLS report run is in "
			"progress; try again\"}\n") != 0)
			log_err("event=control error=\"no room for a reply\"");
		done(arg);
	}
}

/* ---- life ---------------------------------------------------------------- */

/* report_from and report_org into from, submitter, org (each
 * TD_ADDR_MAX + 1, TLSRPT_DOMAIN_MAX + 1, 256 octets). */
static int
td_names_of(const struct conf *cf, char *from, char *submitter, char *org,
    char *err, size_t errlen)
{
	struct report_names n = {
	    from, TD_ADDR_MAX + 1, submitter, TLSRPT_DOMAIN_MAX + 1, org, 256};

	return report_names(cf->tlsrpt_report_from, "tlsrpt-noreply",
	    cf->hostname, cf->tlsrpt_report_org, "tlsrpt.report_from",
	    "tlsrpt.report_org", &n, err, errlen);
}

static void
td_names(struct tlsrptd *td, const struct conf *cf)
{
	char err[512];

	if (td_names_of(
		cf, td->from, td->submitter, td->org, err, sizeof(err)) != 0)
		fatalx("event=startup step=tlsrpt error=\"%s\"", err);
}

int
tlsrptd_check(const struct conf *cf, char *err, size_t errlen)
{
	char from[TD_ADDR_MAX + 1], submitter[TLSRPT_DOMAIN_MAX + 1], org[256];

	return td_names_of(cf, from, submitter, org, err, errlen);
}

/*
 * A run's names, from the configuration current when it starts: every
 * use of them is on the loop within a run (the builds, the mails, the
 * POSTs' reports), so a run keeps one set to its end and a reload's new
 * names wait for the next run.  tlsrptd_check vetted them at the reload.
 */
static void
td_names_for_run(struct tlsrptd *td)
{
	char err[512];

	/* all three or none (reportcommon.h) */
	if (td_names_of(td->srv->conf, td->from, td->submitter, td->org, err,
		sizeof(err)) != 0)
		log_err(
		    "event=tlsrpt_report_run error=\"%s\" action=kept_names",
		    err);
}

void
tlsrptd_reload(struct tlsrptd *td)
{
	if (td == NULL)
		return;
	/* the delivery code counts on the loop too: no count sees half */
	tlsrpt_set_max_domains(td->cur, td->srv->conf->tlsrpt_max_domains);
}

/* STATE/name into td->cur; false when it does not exist */
static bool
td_load(struct tlsrptd *td, const char *name)
{
	char err[256];
	struct buf b;
	struct stat st;
	ssize_t n;
	int fd = openat(td->dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT)
		return false;
	if (fd < 0 || fstat(fd, &st) != 0)
		fatal("event=startup step=tlsrpt file=%s/%s",
		    td->srv->conf->state_dir, name);
	if ((uint64_t)st.st_size > TD_FILE_MAX)
		fatalx("event=startup step=tlsrpt file=%s/%s error=\"larger "
		       "than %zu octets\"",
		    td->srv->conf->state_dir, name, TD_FILE_MAX);
	buf_init(&b, TD_FILE_MAX + 1);
	if (buf_reserve(&b, (size_t)st.st_size + 1) != 0)
		fatalx("event=startup step=tlsrpt error=\"no memory\"");
	while ((n = read(fd, b.data + b.len, b.cap - b.len - 1)) > 0)
		b.len += (size_t)n;
	if (n < 0)
		fatal("event=startup step=tlsrpt file=%s/%s",
		    td->srv->conf->state_dir, name);
	(void)close(fd);
	if (tlsrpt_decode(td->cur, b.data, b.len, err, sizeof(err)) != 0)
		fatalx("event=startup step=tlsrpt file=%s/%s error=\"%s\" "
		       "(move the file away to start with no counts)",
		    td->srv->conf->state_dir, name, err);
	buf_free(&b);
	return true;
}

struct tlsrptd *
tlsrptd_open(struct server *s)
{
	struct tlsrptd *td;

	if (!s->conf->tlsrpt_reports)
		return NULL;
	/* before any thread exists (curl_global_init is not thread-safe) */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		fatalx("event=startup step=tlsrpt error=curl_global_init");
	td = xcalloc(1, sizeof(*td));
	td->srv = s;
	td_names(td, s->conf);
	td->dir_fd =
	    open(s->conf->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (td->dir_fd < 0)
		fatal("event=startup step=tlsrpt dir=%s", s->conf->state_dir);
	td->cur = tlsrpt_new((int64_t)time(NULL), s->conf->tlsrpt_max_domains);
	(void)td_load(td, TD_STATE);
	td->had_pending = td_load(td, TD_PENDING);
	td->written_sessions = tlsrpt_sessions(td->cur);
	td->written_dropped = tlsrpt_dropped(td->cur);
	log_info("event=tlsrpt_reports from=%s interval=%u domains=%zu "
		 "sessions=%llu dropped=%llu pending=%s",
	    td->from, s->conf->tlsrpt_report_interval, tlsrpt_ndomains(td->cur),
	    (unsigned long long)tlsrpt_sessions(td->cur),
	    (unsigned long long)tlsrpt_dropped(td->cur),
	    td->had_pending ? "yes" : "no");
	return td;
}

struct tlsrpt *
tlsrptd_table(struct tlsrptd *td)
{
	return td != NULL ? td->cur : NULL;
}

void
tlsrptd_start(struct tlsrptd *td)
{
	struct timeval tv = {TLSRPTD_FLUSH_SECS, 0};

	if (td == NULL)
		return;
	td->flush_timer =
	    event_new(td->srv->base, -1, EV_PERSIST, on_flush_timer, td);
	td->report_timer = evtimer_new(td->srv->base, on_report_timer, td);
	if (td->flush_timer == NULL || td->report_timer == NULL ||
	    event_add(td->flush_timer, &tv) != 0)
		fatalx("event=startup step=tlsrpt error=\"no timer\"");
	td_arm_report(td);
	if (td->had_pending) {
		/* an unfinished run's period is in cur now: one file */
		td_flush(td, true);
		td_lane_push(td, TD_PENDING, NULL);
	}
}

void
tlsrptd_stop(struct tlsrptd *td)
{
	if (td == NULL || td->stopping)
		return;
	td->stopping = true;
	if (td->flush_timer != NULL && event_del(td->flush_timer) != 0)
		panic("event=tlsrpt error=event_del");
	if (td->report_timer != NULL && event_del(td->report_timer) != 0)
		panic("event=tlsrpt error=event_del");
	td_flush(td, false);
}

bool
tlsrptd_idle(const struct tlsrptd *td)
{
	return td == NULL ||
	       (td->lane == NULL && td->run == NULL && td->posts == 0);
}

void
tlsrptd_free(struct tlsrptd *td)
{
	struct td_write *w, *next;

	if (td == NULL)
		return;
	for (w = td->lane; w != NULL; w = next) {
		next = w->next;
		buf_free(&w->data);
		free(w);
	}
	if (td->flush_timer != NULL)
		event_free(td->flush_timer);
	if (td->report_timer != NULL)
		event_free(td->report_timer);
	log_info("event=tlsrpt_reports_stopped domains=%zu sessions=%llu "
		 "dropped=%llu",
	    tlsrpt_ndomains(td->cur),
	    (unsigned long long)tlsrpt_sessions(td->cur),
	    (unsigned long long)tlsrpt_dropped(td->cur));
	if (td->run != NULL) {
		/* stopped mid-run: .pending has the period for the restart */
		buf_free(&td->run->gz);
		buf_free(&td->run->body);
		tlsrpt_free(td->run->t);
		free(td->run);
	}
	tlsrpt_free(td->cur);
	if (td->dir_fd >= 0)
		(void)close(td->dir_fd);
	free(td);
	curl_global_cleanup();
}
