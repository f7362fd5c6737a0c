/*
 * connauth: DKIM, DMARC and Authentication-Results of mail received on
 * the MX port, at the end of data (docs/mailauth.md).
 *
 * Applies where SPF does: the MX port, a client neither authenticated,
 * local nor in relay.networks, with dkim.verify or dmarc.check on.  When
 * the content is in and the SPF check is over, conn_auth_start runs the
 * check (authcheck.h: the DKIM keys and the DMARC policy from DNS, the
 * cryptography on a worker).  conn_auth_finish then evaluates DMARC with
 * the SPF result and the DKIM results, decides the action and logs the
 * one event=auth line; auth_evaluated() is the single place where the
 * evaluation is complete (the DMARC aggregate reports record it there).
 *
 * Actions (dmarc.enforce = yes): a DMARC fail whose disposition, after
 * pct and dmarc.override, is reject is refused 550 5.7.1; quarantine
 * stores the local copies in each mailbox's .Junk folder (remote
 * recipients get the message with its header); none only records.  A
 * temperror never refuses.  The stored copy gets our
 * Authentication-Results on top, and every Authentication-Results field
 * that claims our authserv-id (the hostname) is left out of it (RFC 8601
 * 5): the content is written in pieces around those fields, copied only
 * when there are more of them than the store takes pieces.
 *
 * ARC (arc.verify): the chain is validated with DKIM (authcheck.h) and
 * reported in the A-R and the event=auth line only: it never overrides a
 * DMARC fail.  A message forwarded through an alias is sealed
 * (conn_auth_seal, arc.seal) on the worker that stores it.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include "addr/addr.h"
#include "mailauth/authres.h"
#include "mailauth/inbound.h"
#include "mailauth/spf.h"
#include "server/arcseal.h"
#include "server/conn.h"
#include "server/dmarcrep.h"
#include "server/netlist.h"

bool
conn_auth_applies(const struct conn *c)
{
	const struct conf *cf = c->cf;

	return (cf->dkim_verify || cf->dmarc_check || cf->arc_verify) &&
	       c->l->kind == LISTEN_SMTP && !c->local && !c->authenticated &&
	       !netlist_match(
		   c->snap->relay_nets, (const struct sockaddr *)&c->sa);
}

bool
conn_auth_start(struct conn *c, authcheck_cb done)
{
	struct txn *t = c->txn;
	struct authcheck_request req = {0};

	if (!conn_auth_applies(c))
		return false;
	t->auth_on = true;
	req.msg = txn_content(t, &req.len);
	req.now = (int64_t)time(NULL);
	req.dkim = c->cf->dkim_verify;
	req.arc = c->cf->arc_verify;
	if (c->cf->dmarc_check) {
		t->from_status = inbound_from_domain(
		    req.msg, req.len, t->from_domain, sizeof(t->from_domain));
		if (t->from_status == INBOUND_FROM_OK) {
			req.psl = c->srv->psl;
			req.from_domain = t->from_domain;
		}
	}
	t->auth = authcheck_start(
	    c->srv->base, c->srv->dns, c->srv->workers, &req, done, c);
	/* the check reads the content: the session is held as for a job */
	c->pending = true;
	c->job_running = true;
	return true;
}

/* ---- the verdict ------------------------------------------------------ */

static enum spf_result
auth_spf(const struct txn *t)
{
	if (t->spf == NULL || !spfcheck_done(t->spf))
		return SPF_NONE;
	return spf_result(spfcheck_spf(t->spf));
}

/* The domain SPF checked: MAIL FROM's, or the HELO name for <>. */
static const char *
auth_spf_domain(const struct conn *c)
{
	const struct txn *t = c->txn;
	const char *at = strrchr(t->sender, '@');

	if (t->sender[0] == '\0')
		return smtp_server_helo(c->smtp);
	return at != NULL ? at + 1 : "";
}

static void
auth_evaluate(struct conn *c)
{
	struct txn *t = c->txn;
	const struct dkim_verify *v = authcheck_dkim(t->auth);
	const struct dmarc_lookup *lk = authcheck_dmarc(t->auth);
	struct dmarc_dkim dk[DKIM_SIG_CHECKED];
	struct dmarc_input in = {0};
	size_t n = v != NULL ? dkim_verify_count(v) : 0;

	if (lk == NULL) {
		t->dmarc.result =
		    c->cf->dmarc_check && t->from_status != INBOUND_FROM_OK
			? DMARC_RESULT_PERMERROR
			: DMARC_RESULT_NONE;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const struct dkim_sig_result *r = dkim_verify_result(v, i);

		dk[i] = (struct dmarc_dkim){
		    r->d, strlen(r->d), r->result == DKIM_PASS};
	}
	in.spf_domain = auth_spf_domain(c);
	in.spf_len = strlen(in.spf_domain);
	in.spf_pass = auth_spf(t) == SPF_PASS;
	in.dkim = dk;
	in.ndkim = n;
	in.from_nxdomain = authcheck_from_nxdomain(t->auth);
	in.draw = arc4random_uniform(100);
	in.overrides = c->srv->overrides;
	in.noverrides = c->srv->noverrides;
	dmarc_evaluate(lk, c->srv->psl, &in, &t->dmarc);
	t->dmarc_evaluated = true;
}

static const char *
auth_action_name(enum conn_auth_action a)
{
	return a == CONN_AUTH_REJECT	   ? "reject"
	       : a == CONN_AUTH_QUARANTINE ? "quarantine"
					   : "accept";
}

/* "pass(d=a.example),fail(d=b.example)", or "none" */
static void
auth_dkim_text(const struct txn *t, char *out, size_t outlen)
{
	const struct dkim_verify *v = authcheck_dkim(t->auth);
	size_t n = v != NULL ? dkim_verify_count(v) : 0, used = 0;

	str_fmt_cut(out, outlen, "none");
	for (size_t i = 0; i < n && used < outlen; i++) {
		const struct dkim_sig_result *r = dkim_verify_result(v, i);
		char d[DKIM_DOMAIN_MAX * 4 + 1];

		log_sanitize(d, sizeof(d), r->d, strlen(r->d));
		str_fmt_cut(out + used, outlen - used, "%s%s(d=%s)",
		    i > 0 ? "," : "", dkim_result_name(r->result), d);
		used += strlen(out + used);
	}
}

/*
 * The evaluation of one message is complete here, once: the event=auth
 * line.  DMARC aggregate reports (issue 13, item 8) record each evaluated
 * message from this function (t->dmarc, the lookup, the DKIM and SPF
 * results, the client's address, the action).
 */
static void auth_record(const struct conn *c);

/* "pass", "fail", "none", "fail(temp)" for the log; "-" when not run */
static const char *
auth_arc_text(const struct txn *t)
{
	const struct arc_outcome *r = authcheck_arc(t->auth);

	if (r == NULL)
		return "-";
	return r->result == ARC_FAIL && r->temp ? "fail(temp)"
						: arc_result_name(r->result);
}

static void
auth_evaluated(const struct conn *c)
{
	const struct txn *t = c->txn;
	const struct dmarc_lookup *lk = authcheck_dmarc(t->auth);
	const struct dkim_verify *v = authcheck_dkim(t->auth);
	char dkim[512], from[PSL_NAME_MAX * 4 + 1];

	auth_dkim_text(t, dkim, sizeof(dkim));
	log_sanitize(
	    from, sizeof(from), t->from_domain, strlen(t->from_domain));
	log_info("id=%s sid=%s event=auth ip=%s spf=%s dkim=%s "
		 "dkim_skipped=%zu arc=%s dmarc=%s from_domain=%s policy=%s "
		 "disposition=%s action=%s reason=%s queries=%u ms=%u "
		 "timeout=%s",
	    t->id, c->sid, c->ip, spf_result_name(auth_spf(t)), dkim,
	    v != NULL ? dkim_verify_skipped(v) : 0, auth_arc_text(t),
	    dmarc_result_name(t->dmarc.result), from[0] != '\0' ? from : "-",
	    t->dmarc_evaluated ? dmarc_policy_name(t->dmarc.policy) : "-",
	    t->dmarc_evaluated ? dmarc_policy_name(t->dmarc.disposition) : "-",
	    auth_action_name(t->auth_action),
	    t->dmarc.overridden	   ? "override"
	    : t->dmarc.sampled_out ? "pct"
	    : lk == NULL && t->from_status != INBOUND_FROM_OK
		? inbound_from_name(t->from_status)
		: "-",
	    authcheck_queries(t->auth), authcheck_ms(t->auth),
	    authcheck_timed_out(t->auth) ? "yes" : "no");
	auth_record(c);
}

/*
 * The verdict to the DMARC aggregate reports (dmarcrep.h; nothing when
 * they are off, or when no policy was found: there is nobody to report
 * to).  On the loop: dmarcrep_record copies what it keeps.
 */
static void
auth_record(const struct conn *c)
{
	const struct txn *t = c->txn;
	const struct dmarc_lookup *lk = authcheck_dmarc(t->auth);
	const struct dkim_verify *v = authcheck_dkim(t->auth);
	struct dmarcxml_auth_dkim dk[DKIM_SIG_CHECKED];
	struct dmarcxml_msg m = {0};
	size_t n = v != NULL ? dkim_verify_count(v) : 0, k = 0;
	const char *at = strrchr(t->sender, '@');

	if (c->srv->dmarcrep == NULL || lk == NULL || !t->dmarc_evaluated)
		return;
	for (size_t i = 0; i < n && k < DKIM_SIG_CHECKED; i++) {
		const struct dkim_sig_result *r = dkim_verify_result(v, i);

		if (r->d[0] == '\0')
			continue; /* did not parse: no domain to report */
		dk[k].domain = r->d;
		dk[k].selector = r->s[0] != '\0' ? r->s : NULL;
		dk[k].result = dkim_result_name(r->result);
		k++;
	}
	m.source_ip = c->ip;
	m.envelope_from = at != NULL ? at + 1 : "";
	m.dkim = dk;
	m.ndkim = k;
	m.spf_domain = auth_spf_domain(c);
	m.spf_helo = t->sender[0] == '\0';
	m.spf_result = spf_result_name(auth_spf(t));
	dmarcrep_record(c->srv->dmarcrep, lk, &t->dmarc, &m);
}

/*
 * A fail that a temporary failure may have caused: an identifier aligned
 * with the From domain whose check ended in temperror (a DKIM key lookup,
 * or SPF) could still pass, so the verdict is temperror (RFC 7489 6.6.2
 * leaves it open; refusing for good on a DNS hiccup would be wrong).
 */
static bool
auth_fail_is_temp(const struct conn *c)
{
	const struct txn *t = c->txn;
	const struct dmarc_lookup *lk = authcheck_dmarc(t->auth);
	const struct dkim_verify *v = authcheck_dkim(t->auth);
	size_t n = v != NULL ? dkim_verify_count(v) : 0;
	const char *sd = auth_spf_domain(c);

	for (size_t i = 0; i < n; i++) {
		const struct dkim_sig_result *r = dkim_verify_result(v, i);

		if (r->result == DKIM_TEMPERROR &&
		    dmarc_aligned(c->srv->psl, r->d, strlen(r->d), lk->from,
			strlen(lk->from), lk->rec.adkim))
			return true;
	}
	return auth_spf(t) == SPF_TEMPERROR &&
	       dmarc_aligned(c->srv->psl, sd, strlen(sd), lk->from,
		   strlen(lk->from), lk->rec.aspf);
}

void
conn_auth_finish(struct conn *c)
{
	struct txn *t = c->txn;

	auth_evaluate(c);
	if (t->dmarc_evaluated && t->dmarc.result == DMARC_RESULT_FAIL &&
	    auth_fail_is_temp(c)) {
		t->dmarc.result = DMARC_RESULT_TEMPERROR;
		t->dmarc.why = DMARC_WHY_DNS;
	}
	t->auth_action = CONN_AUTH_ACCEPT;
	if (t->dmarc_evaluated && c->cf->dmarc_enforce &&
	    t->dmarc.result == DMARC_RESULT_FAIL) {
		if (t->dmarc.disposition == DMARC_P_REJECT)
			t->auth_action = CONN_AUTH_REJECT;
		else if (t->dmarc.disposition == DMARC_P_QUARANTINE)
			t->auth_action = CONN_AUTH_QUARANTINE;
	}
	auth_evaluated(c);
}

bool
conn_auth_refuses(struct conn *c)
{
	struct txn *t = c->txn;
	char text[PSL_NAME_MAX + 96];

	if (!t->auth_on || t->auth_action != CONN_AUTH_REJECT)
		return false;
	/* the From domain is an addr_parse_mailbox'd name: printable */
	str_fmt_cut(text, sizeof(text),
	    "DMARC policy of %s rejects this message (RFC 7489)",
	    t->from_domain);
	smtp_server_reject(c->smtp, 550, "5.7.1", text);
	return true;
}

/* ---- the stored copy -------------------------------------------------- */

/* One A-R resinfo per signature: header.d, header.s, header.i, header.b */
static size_t
auth_dkim_res(const struct txn *t, struct authres_result *res, size_t max,
    char reasons[][DKIM_REASON_MAX + 64])
{
	const struct dkim_verify *v = authcheck_dkim(t->auth);
	size_t n = v != NULL ? dkim_verify_count(v) : 0, k = 0;

	if (v == NULL)
		return 0;
	if (n == 0 && max > 0) {
		res[k++] =
		    (struct authres_result){.method = "dkim", .result = "none"};
		return k;
	}
	for (size_t i = 0; i < n && k < max; i++) {
		const struct dkim_sig_result *r = dkim_verify_result(v, i);
		struct authres_result *a = &res[k++];

		*a = (struct authres_result){
		    .method = "dkim", .result = dkim_result_name(r->result)};
		if (r->result == DKIM_PASS && r->has_l && r->l < r->body_len)
			str_fmt_cut(reasons[i], sizeof(reasons[i]),
			    "l=%llu of %llu body octets signed",
			    (unsigned long long)r->l,
			    (unsigned long long)r->body_len);
		else
			str_fmt_cut(
			    reasons[i], sizeof(reasons[i]), "%s", r->reason);
		a->reason = reasons[i][0] != '\0' ? reasons[i] : NULL;
		if (r->d[0] == '\0')
			continue;
		a->props[a->nprops++] =
		    (struct authres_prop){"header", "d", r->d};
		a->props[a->nprops++] =
		    (struct authres_prop){"header", "s", r->s};
		a->props[a->nprops++] =
		    (struct authres_prop){"header", "i", r->i};
		a->props[a->nprops++] =
		    (struct authres_prop){"header", "b", r->b8};
	}
	return k;
}

int
conn_auth_header(const struct conn *c, struct buf *h)
{
	const struct txn *t = c->txn;
	struct authres_result res[DKIM_SIG_CHECKED + 3];
	char reasons[DKIM_SIG_CHECKED][DKIM_REASON_MAX + 64];
	size_t n = 0;
	const struct spf *s;
	const char *prop;

	if (!t->auth_on || t->auth == NULL)
		return 0;
	if (t->spf != NULL && spfcheck_done(t->spf)) {
		s = spfcheck_spf(t->spf);
		res[n] = (struct authres_result){
		    .method = "spf", .result = spf_result_name(spf_result(s))};
		/* spf.h names it "smtp.mailfrom": ptype and property */
		prop = spf_authres_property(
		    t->sender[0] == '\0' ? SPF_ID_HELO : SPF_ID_MAILFROM);
		if (strncmp(prop, "smtp.", 5) == 0)
			prop += 5;
		res[n].props[0] =
		    (struct authres_prop){"smtp", prop, spf_authres_value(s)};
		res[n++].nprops = 1;
	}
	n += auth_dkim_res(t, res + n, DKIM_SIG_CHECKED, reasons);
	if (c->cf->dmarc_check) {
		const struct dmarc_lookup *lk = authcheck_dmarc(t->auth);

		if (lk != NULL && t->dmarc_evaluated) {
			dmarc_authres(lk, &t->dmarc, &res[n]);
			if (t->dmarc.result == DMARC_RESULT_FAIL)
				res[n].props[res[n].nprops++] =
				    (struct authres_prop){"policy", "dmarc",
					dmarc_policy_name(
					    t->dmarc.disposition)};
		} else {
			res[n] = (struct authres_result){.method = "dmarc",
			    .result = dmarc_result_name(t->dmarc.result),
			    .reason = t->from_status != INBOUND_FROM_OK
					  ? inbound_from_name(t->from_status)
					  : NULL};
		}
		n++;
	}
	/* reported only: a passing chain never overrides a DMARC fail
	   (RFC 8617 7.2 leaves it to local policy; docs/mailauth.md) */
	if (authcheck_arc(t->auth) != NULL)
		arc_authres(authcheck_arc(t->auth), c->ip, &res[n++]);
	if (authres_build(h, c->cf->hostname, res, n, AUTHRES_WIDTH) != 0)
		/* a value authres refuses (a control byte in the client's
		   HELO or sender): the message goes on without the field */
		log_warn(
		    "id=%s sid=%s event=authres_unbuildable", t->id, c->sid);
	return 0;
}

void
conn_auth_store(struct conn *c, struct inject *ij)
{
	struct txn *t = c->txn;
	struct authres_span spans[INJECT_BODY_IOV - 1];
	struct inbound_piece p[INJECT_BODY_IOV];
	size_t len, n, k;
	const char *msg;

	if (!t->auth_on)
		return;
	if (t->auth_action == CONN_AUTH_QUARANTINE)
		for (size_t i = 0; i < ij->nboxes; i++)
			ij->boxes[i].folder = CONN_AUTH_JUNK;
	msg = txn_content(t, &len);
	n = authres_ours_in(
	    msg, len, c->cf->hostname, spans, INJECT_BODY_IOV - 1);
	if (n == 0)
		return; /* the common case: the content as it is */
	log_info(
	    "id=%s sid=%s event=authres_removed fields=%zu", t->id, c->sid, n);
	if (n <= INJECT_BODY_IOV - 1) {
		k = inbound_pieces(len, spans, n, p, INJECT_BODY_IOV);
		ij->body_len = 0;
		for (size_t i = 0; i < k; i++) {
			t->body_iov[i] = (struct iovec){
			    (void *)(uintptr_t)(msg + p[i].off), p[i].len};
			ij->body_len += p[i].len;
		}
		ij->body_iov = t->body_iov;
		ij->body_iovcnt = (int)k;
		return;
	}
	/* more of them than pieces: a copy without them (rare, hostile) */
	{
		struct authres_span *all = xcalloc(n, sizeof(*all));
		struct inbound_piece *pp = xcalloc(n + 1, sizeof(*pp));

		n = authres_ours_in(msg, len, c->cf->hostname, all, n);
		k = inbound_pieces(len, all, n, pp, n + 1);
		buf_init(&t->stripped, len);
		for (size_t i = 0; i < k; i++)
			if (buf_append(
				&t->stripped, msg + pp[i].off, pp[i].len) != 0)
				panic("event=authres_strip error=buf");
		free(all);
		free(pp);
		ij->body = t->stripped.data != NULL ? t->stripped.data : "";
		ij->body_len = t->stripped.len;
	}
}

/* ---- the ARC seal of a forwarded message -------------------------------- */

/*
 * A message an alias forwards to a remote address gets our ARC set
 * (arcseal.h), with the cv of our validation and the resinfos of our
 * Authentication-Results (the field conn_auth_header put on top of
 * head).  Not when the chain was not validated (arc.verify = no, or the
 * checks did not apply), nor when a key lookup failed for now: a seal
 * with cv=fail would end a chain the next hop may still find valid.
 */
void
conn_auth_seal(struct conn *c, struct inject *ij)
{
	struct txn *t = c->txn;
	const struct arc_outcome *r;
	struct addr_hdr_field f;
	const char *res = "", *semi;
	size_t res_len = 0;

	if (!t->auth_on || !t->forwarded || ij->env == NULL ||
	    ij->env->nrcpt == 0 || (r = authcheck_arc(t->auth)) == NULL)
		return;
	if (r->temp) {
		log_info("id=%s sid=%s event=arc_seal_skipped reason=temperror",
		    t->id, c->sid);
		return;
	}
	if (addr_hdr_find(
		ij->head.data, ij->head.len, "Authentication-Results", &f) &&
	    (semi = memchr(f.value, ';', f.value_len)) != NULL) {
		res = semi + 1;
		res_len = f.value_len - (size_t)(res - f.value);
	}
	arcseal_attach(c->srv, ij, res, res_len, arc_seal_cv(r), t->id, c->sid);
}
