/*
 * connspf: SPF (RFC 7208) of mail received on the MX port.
 *
 * The identity is MAIL FROM, or postmaster@HELO for the null reverse-path
 * (RFC 7208 2.4).  The check starts when the first RCPT of a transaction
 * is about to be accepted (not at MAIL: a transaction with no recipient
 * costs no DNS), runs on the loop (spfcheck.h) and its result is
 * recorded as a Received-SPF field above tern's Received (RFC 7208 9.1)
 * and an event=spf log line.  With spf.reject_fail = yes the RCPT waits
 * for the result: "fail" is refused 550 5.7.23 (RFC 7208 8.4, RFC 7372
 * 3.2) with the domain's explanation, "temperror" is deferred 451 4.7.24
 * (RFC 7208 8.6 allows accepting or a 4xx; never a 5xx); every other
 * result is accepted.  conn.c does the waiting (c->spf_wait).
 */
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "server/conn.h"
#include "server/netlist.h"
#include "server/qmgr.h"

#define CONN_SPF_REPLY_MAX 200 /* octets of the domain's explanation kept */

static bool
spf_applies(const struct conn *c)
{
	return c->cf->spf_check && c->l->kind == LISTEN_SMTP && !c->local &&
	       !c->authenticated &&
	       !netlist_match(
		   c->snap->relay_nets, (const struct sockaddr *)&c->sa);
}

/* The client's address; false if it is neither IPv4 nor IPv6. */
static bool
spf_client_ip(const struct conn *c, struct spf_ip *ip)
{
	memset(ip, 0, sizeof(*ip));
	if (c->sa.ss_family == AF_INET) {
		const struct sockaddr_in *s4 =
		    (const struct sockaddr_in *)&c->sa;

		memcpy(ip->addr, &s4->sin_addr, 4);
		return true;
	}
	if (c->sa.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 =
		    (const struct sockaddr_in6 *)&c->sa;

		/* spf.h: ::ffff:a.b.c.d is taken as the IPv4 client it is */
		ip->v6 = true;
		memcpy(ip->addr, &s6->sin6_addr, 16);
		return true;
	}
	return false;
}

void
conn_spf_start(struct conn *c, spfcheck_cb done)
{
	struct txn *t = c->txn;
	const char *helo = smtp_server_helo(c->smtp);
	char sender[TABLE_ADDR_MAX + 8 + 256];
	const char *at = strrchr(t->sender, '@');
	struct spf_request req = {0};

	if (t->spf_tried)
		return;
	t->spf_tried = true;
	if (!spf_applies(c) || !spf_client_ip(c, &req.ip))
		return;
	if (t->sender[0] == '\0') {
		/* RFC 7208 2.4: the null path is checked as postmaster@HELO */
		if (str_fmt(sender, sizeof(sender), "postmaster@%s", helo) != 0)
			return;
		req.sender = sender;
		req.domain = helo;
		req.identity = SPF_ID_HELO;
	} else if (at == NULL) {
		return; /* no domain (postmaster alone): nothing to check */
	} else {
		req.sender = t->sender; /* spf_new keeps its own copy */
		req.domain = at + 1;
		req.identity = SPF_ID_MAILFROM;
	}
	req.helo = helo[0] != '\0' ? helo : NULL;
	req.receiver = c->cf->hostname;
	req.now = (int64_t)time(NULL);
	t->spf = spfcheck_start(c->srv->base, c->srv->dns, &req, done, c);
	if (t->spf == NULL)
		log_info("id=%s sid=%s event=spf result=none ip=%s "
			 "reason=unusable_identity",
		    t->id, c->sid, c->ip);
	else if (spfcheck_done(t->spf))
		conn_spf_log(c);
}

void
conn_spf_log(struct conn *c)
{
	struct txn *t = c->txn;
	const struct spf *s;
	char from[TABLE_ADDR_MAX * 4 + 1], helo[300], prob[300];

	if (t == NULL || t->spf == NULL || t->spf_logged ||
	    !spfcheck_done(t->spf))
		return;
	t->spf_logged = true;
	s = spfcheck_spf(t->spf);
	log_sanitize(from, sizeof(from), t->sender, strlen(t->sender));
	log_quote(helo, sizeof(helo), smtp_server_helo(c->smtp),
	    strlen(smtp_server_helo(c->smtp)));
	log_quote(prob, sizeof(prob), spf_problem(s), strlen(spf_problem(s)));
	log_info("id=%s sid=%s event=spf result=%s ip=%s mailfrom=<%s> "
		 "helo=\"%s\" identity=%s queries=%zu ms=%u problem=\"%s\"",
	    t->id, c->sid, spf_result_name(spf_result(s)), c->ip, from, helo,
	    t->sender[0] == '\0' ? "helo" : "mailfrom", spf_queries(s),
	    spfcheck_ms(t->spf), prob);
}

/* The domain's explanation (RFC 7208 6.2) made fit for a reply line:
 * printable ASCII only, cut to CONN_SPF_REPLY_MAX. */
static void
reply_text(char *out, size_t outlen, const struct spf *s, const char *ip)
{
	const char *exp = spf_explanation(s);
	char clean[CONN_SPF_REPLY_MAX + 1];
	size_t n = 0;

	for (size_t i = 0; exp[i] != '\0' && n < CONN_SPF_REPLY_MAX; i++) {
		unsigned char ch = (unsigned char)exp[i];

		clean[n++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
	}
	clean[n] = '\0';
	if (n > 0)
		str_fmt_cut(out, outlen, "SPF validation failed: %s", clean);
	else
		str_fmt_cut(out, outlen,
		    "SPF validation failed: %s may not send this sender's "
		    "mail (RFC 7208)",
		    ip);
}

bool
conn_spf_refuses(struct conn *c, const char *rcpt)
{
	struct txn *t = c->txn;
	char text[CONN_SPF_REPLY_MAX + 128];
	enum spf_result r;

	if (!c->cf->spf_reject_fail || t->spf == NULL || !spfcheck_done(t->spf))
		return false;
	r = spf_result(spfcheck_spf(t->spf));
	if (r == SPF_FAIL) {
		reply_text(text, sizeof(text), spfcheck_spf(t->spf), c->ip);
		conn_reject(c, "rcpt", 550, "5.7.23", text, rcpt);
		return true;
	}
	if (r == SPF_TEMPERROR) {
		conn_reject(c, "rcpt", 451, "4.7.24",
		    "SPF check could not be completed (DNS), try again later",
		    rcpt);
		return true;
	}
	return false;
}

int
conn_spf_header(const struct conn *c, struct buf *h)
{
	const struct txn *t = c->txn;

	if (t->spf == NULL || !spfcheck_done(t->spf))
		return 0;
	if (buf_append_str(h, "Received-SPF: ") != 0 ||
	    spf_received_spf(h, spfcheck_spf(t->spf)) != 0)
		return -1;
	return buf_append_str(h, "\r\n");
}
