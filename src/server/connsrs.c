/*
 * connsrs: the Sender Rewriting Scheme in an SMTP session (srsmap.h has
 * the key, mailauth/srs.h the form).
 *
 * Forward: a transaction in which an alias sent a recipient to a remote
 * address (txn->forwarded) queues its remote copy with an SRS sender, so
 * the next hop's SPF check of the envelope sender sees our domain.  The
 * queue envelope is one for all of a transaction's remote recipients:
 * any other remote recipient of it (a relay client's) gets the same SRS
 * sender, whose bounces reverse to the true sender as well.  <> and our
 * own domains (domains, and srs.domain) are never rewritten; nor an
 * address the scheme cannot carry, or one whose SRS local part would
 * pass 64 octets (RFC 5321 4.5.3.1.1): those go as they are, logged.
 *
 * Reverse: an RCPT to an SRS0/SRS1 address at srs.domain is checked
 * before any table lookup; valid, it stands for the original address
 * (local: delivered here; remote: queued, as a relay would, for this
 * address only); forged, expired or malformed, 550 5.1.1: no mailbox of
 * that name exists here (RFC 3463: a bad destination mailbox, not a
 * policy refusal the sender could act on).
 */
#include <string.h>
#include <time.h>

#include "server/conn.h"
#include "server/srsmap.h"

/* Is the sender's domain one of ours (it needs no rewriting)? */
static bool
srs_sender_is_ours(const struct conf *cf, const char *sender)
{
	const char *at = strrchr(sender, '@');

	if (at == NULL)
		return true; /* nothing to rewrite: leave it */
	return conf_domain_is_local(cf, at + 1) ||
	       strcasecmp(at + 1, cf->srs_domain) == 0;
}

void
conn_srs_forward(struct conn *c, struct queue_env *env)
{
	const struct srs *s = srsmap_srs(c->srv->srs);
	char out[SRS_ADDR_MAX + 1], lq[600], lq2[600];
	enum srs_status st;

	if (s == NULL || c->txn == NULL || !c->txn->forwarded ||
	    env->sender[0] == '\0' || srs_sender_is_ours(c->cf, env->sender))
		return;
	st = srs_forward(s, env->sender, time(NULL), out, sizeof(out));
	if (st != SRS_OK ||
	    str_copy(env->sender, sizeof(env->sender), out, strlen(out)) != 0) {
		log_warn("id=%s event=srs_skip from=<%s> reason=%s", env->id,
		    log_quote(lq, sizeof(lq), env->sender, strlen(env->sender)),
		    st != SRS_OK ? srs_status_name(st) : "too_long");
		return;
	}
	log_info("id=%s event=srs_forward from=<%s> to=<%s>", env->id,
	    log_quote(lq, sizeof(lq), c->txn->sender, strlen(c->txn->sender)),
	    log_quote(lq2, sizeof(lq2), env->sender, strlen(env->sender)));
}

static const char *
srs_refusal(enum srs_status st)
{
	switch (st) {
	case SRS_BAD_HASH:
		return "Invalid SRS address: the hash does not match "
		       "(forged or damaged)";
	case SRS_EXPIRED:
		return "SRS address expired: it is older than the days "
		       "it is valid";
	default:
		return "Malformed SRS address";
	}
}

bool
conn_srs_rcpt(struct conn *c, struct resolve_lookup *q)
{
	char rcpt[SRS_ADDR_MAX + 1], out[SRS_ADDR_MAX + 1], lq[600];
	enum srs_status st;

	c->rcpt_srs = false;
	if (c->srv->srs == NULL || q->addr.null || q->addr.postmaster ||
	    q->addr.kind != ADDR_DOMAIN_NAME ||
	    addr_format(&q->addr, rcpt, sizeof(rcpt)) < 0)
		return false;
	st = srsmap_reverse(c->srv->srs, rcpt, time(NULL), out, sizeof(out));
	if (st == SRS_NOT_SRS)
		return false;
	if (st == SRS_OK && addr_parse_mailbox(out, strlen(out), ADDR_F_UTF8,
				&q->addr) == ADDR_OK) {
		c->rcpt_srs = true;
		log_info("sid=%s event=srs_reverse rcpt=<%s> to=<%s>", c->sid,
		    log_quote(lq, sizeof(lq), rcpt, strlen(rcpt)), out);
		return false;
	}
	if (st == SRS_OK)
		st = SRS_MALFORMED; /* it reversed to no usable address */
	log_info("sid=%s event=srs_refused rcpt=<%s> reason=%s", c->sid,
	    log_quote(lq, sizeof(lq), rcpt, strlen(rcpt)), srs_status_name(st));
	conn_reject(c, "rcpt", 550, "5.1.1", srs_refusal(st), rcpt);
	return true;
}
