/*
 * submit: what the submission ports add to a session (RFC 6409, RFC 4954).
 *
 * AUTH is offered only on the submission ports and only under TLS (or,
 * when auth.plaintext_loopback is set, to loopback clients).  PLAIN and
 * LOGIN are decoded by src/auth; the password hash is read from the users
 * table (lookup_ask: on the loop for SQLite, on a lookup thread for a
 * remote table), then the slow yescrypt comparison runs on a disk worker,
 * off the loop, the same for both.  A table that
 * cannot answer gets 454 4.7.0, not a failure that counts against the
 * client.  An unknown user and a wrong password get the same 535 5.7.8
 * after the same work (auth_password_ok hashes a dummy for unknown users)
 * and the same delay.  A stored hash of a refused method (DES crypt, MD5,
 * ...: auth_hash_method_ok) fails like a wrong password and is logged
 * reason=weak_hash, so the administrator sees whose hash to replace.
 *
 * Brute force (auth_throttle, per client key: an IPv4 address, an IPv6
 * /64): after the free failures, every AUTH attempt of that client waits
 * out the penalty of its last failure *before* its password is checked,
 * so no answer, 235 or 535, leaves early and hanging up gains nothing; an
 * attempt made while another of the same client is held or checked gets
 * 454 4.7.0 at once, without hashing.  The 535 of a failure in penalty is
 * itself sent only when its penalty ends, and the third failure on one
 * connection ends it with 421.  Passwords are wiped as soon as they are
 * checked and are never logged.
 *
 * Senders: an authenticated user may use its own address or an alias of
 * it (unless submission.any_sender).  On public/submit.sock, with
 * submission.local_senders = own, a uid other than 0 may use login@D (its
 * login name, D our hostname or one of our domains) and the addresses the table
 * resolves to one of those; with "any" (the default, as sendmail users expect)
 * any sender, the Received: line naming the uid either way.
 */
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "metrics/metrics.h"
#include "server/conn.h"
#include "server/netlist.h"

#define AUTH_FAILURES_MAX 3

struct auth_job {
	struct lookup lk; /* the hash's question; then lk.job hashes */
	struct conn *c;
	struct server *srv;
	struct client_key key; /* the client, for the throttle */
	uint64_t ticket;       /* auth_throttle_admit's */
	bool weak;	       /* the stored hash's method is refused */
	char user[AUTH_FIELD_MAX + 1];
	char pass[AUTH_FIELD_MAX + 1];
	char hash[AUTH_HASH_MAX];
	enum table_status hash_st;
	bool ok;
	const char *mech;
};

void
submit_update_auth(struct conn *c)
{
	const struct conf *cf = c->cf;
	bool on = c->l->kind != LISTEN_SMTP && !c->authenticated &&
		  (c->tls || (cf->auth_plaintext_loopback &&
				 sockaddr_is_loopback(
				     (const struct sockaddr *)&c->sa)));

	smtp_server_set_auth_available(c->smtp, on);
}

static void
auth_run(struct job *j)
{
	struct auth_job *aj = (struct auth_job *)j;

	/* an unknown user costs the same work (a dummy hash) as a known one */
	if (aj->hash_st != TABLE_TEMPFAIL)
		aj->ok = auth_password_ok(
		    aj->hash_st == TABLE_OK ? aj->hash : NULL, aj->pass);
	aj->weak = aj->hash_st == TABLE_OK && !auth_hash_method_ok(aj->hash);
	explicit_bzero(aj->pass, sizeof(aj->pass));
}

static void
auth_lookup_hash(struct lookup *lk, struct table *t)
{
	struct auth_job *aj = (struct auth_job *)lk;

	if (aj->user[0] == '\0')
		aj->hash_st = TABLE_NOTFOUND;
	else if (t == NULL)
		aj->hash_st = TABLE_TEMPFAIL;
	else
		aj->hash_st =
		    table_user_pwhash(t, aj->user, aj->hash, sizeof(aj->hash));
	if (aj->hash_st != TABLE_OK && aj->hash_st != TABLE_TEMPFAIL)
		aj->hash_st = TABLE_NOTFOUND;
}

static void
auth_reply_failure(struct conn *c)
{
	smtp_server_reject(
	    c->smtp, 535, "5.7.8", "Authentication credentials invalid");
	if (c->auth_failures >= AUTH_FAILURES_MAX) {
		smtp_server_shutdown(
		    c->smtp, "4.7.0", "Too many authentication failures");
		conn_close_soon(c, "auth_failures");
	}
}

static void
on_auth_delay(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	c->pending = false;
	auth_reply_failure(c);
	conn_process(c);
}

static void
auth_failed(
    struct conn *c, const char *user, const char *mech, const char *reason)
{
	uint64_t now = time_now_ms();
	unsigned delay;
	char safe[300];

	c->auth_failures++;
	metrics_auth(mech, false);
	auth_throttle_fail(c->srv->throttle, &c->key, now);
	delay = auth_throttle_delay_ms(c->srv->throttle, &c->key, now);
	log_warn("sid=%s event=auth_failed mech=%s user=%s client=%s reason=%s "
		 "failures=%u delay_ms=%u",
	    c->sid, mech, log_sanitize(safe, sizeof(safe), user, strlen(user)),
	    c->ip, reason, c->auth_failures, delay);
	if (delay == 0) {
		auth_reply_failure(c);
		return;
	}
	if (c->delay == NULL)
		c->delay = evtimer_new(c->srv->base, on_auth_delay, c);
	struct timeval tv = {
	    (time_t)(delay / 1000), (suseconds_t)(delay % 1000) * 1000};
	c->pending = true;
	evtimer_add(c->delay, &tv);
}

static void
auth_succeeded(struct conn *c, const char *user, const char *mech)
{
	auth_throttle_success(c->srv->throttle, &c->key);
	metrics_auth(mech, true);
	c->authenticated = true;
	/* SASL allows 255 octets (auth.h); one that would not fit the
	   queue's envelope is not kept, as before */
	free(c->auth_user);
	c->auth_user = strlen(user) <= TABLE_ADDR_MAX ? xstrdup(user) : NULL;
	str_fmt_cut(c->auth_mech, sizeof(c->auth_mech), "%s", mech);
	log_info("sid=%s event=auth mech=%s user=%s client=%s", c->sid, mech,
	    user, c->ip);
	smtp_server_accept(c->smtp);
}

/* RFC 4954 6: the users table could not be read; try again later. */
static void
auth_tempfail(struct conn *c, const struct auth_job *aj)
{
	char q[600];

	log_warn("sid=%s event=table_error step=auth error=\"%s\"", c->sid,
	    log_quote(q, sizeof(q), aj->lk.err, strlen(aj->lk.err)));
	smtp_server_reject(c->smtp, 454, "4.7.0",
	    "Temporary authentication failure, try again later");
}

static void
auth_decide(struct conn *c, const struct auth_job *aj)
{
	if (aj->hash_st == TABLE_TEMPFAIL)
		auth_tempfail(c, aj);
	else if (aj->ok)
		auth_succeeded(c, aj->user, aj->mech);
	else
		auth_failed(c, aj->user, aj->mech,
		    aj->weak ? "weak_hash" : "bad_credentials");
}

/* The attempt is over, answered or not: its throttle ticket goes back. */
static void
auth_job_free(struct auth_job *aj)
{
	auth_throttle_release(aj->srv->throttle, &aj->key, aj->ticket);
	explicit_bzero(aj, sizeof(*aj));
	free(aj);
}

static void
auth_finish(struct auth_job *aj)
{
	struct conn *c = aj->c;

	if (conn_answered(c)) {
		auth_decide(c, aj);
		conn_process(c);
	}
	auth_job_free(aj);
}

static void
auth_done(struct job *j)
{
	auth_finish((struct auth_job *)j);
}

/*
 * The table has answered (inside auth_check with SQLite, later on the
 * loop with a remote table): no hash, 454 at once; else the comparison on
 * a worker, c still waiting.
 */
static void
auth_hashed(struct lookup *lk)
{
	struct auth_job *aj = (struct auth_job *)lk;

	if (aj->hash_st == TABLE_TEMPFAIL) {
		explicit_bzero(aj->pass, sizeof(aj->pass));
		auth_finish(aj);
		return;
	}
	aj->lk.job.run = auth_run;
	aj->lk.job.done = auth_done;
	workers_submit(aj->srv->workers, &aj->lk.job);
}

/* Check user/pass: the hash from the table, then the hashing. */
static void
auth_check(struct conn *c, struct auth_job *aj)
{
	aj->lk.ask = auth_lookup_hash;
	aj->lk.answer = auth_hashed;
	conn_ask(c, &aj->lk);
}

static void
auth_check_held(struct conn *c, void *aj)
{
	auth_check(c, aj);
}

/* The client's penalty is over: check the attempt that waited for it. */
static void
on_auth_hold(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct auth_job *aj = c->held;

	(void)fd;
	(void)what;
	c->held = NULL;
	c->pending = false;
	/* an answer that comes at once must not process c under our feet */
	conn_resume(c, auth_check_held, aj);
}

const char *
submit_auth_user(const struct conn *c)
{
	return c->auth_user != NULL ? c->auth_user : "";
}

void
submit_drop_auth(struct conn *c)
{
	free(c->auth_user);
	c->auth_user = NULL;
	if (c->held != NULL)
		auth_job_free(c->held);
	c->held = NULL;
	if (c->hold != NULL)
		event_free(c->hold);
	c->hold = NULL;
}

void
submit_shutdown(struct conn *c)
{
	if (c->held != NULL) {
		/* no verdict: the 421 of the shutdown follows */
		event_del(c->hold);
		auth_job_free(c->held);
		c->held = NULL;
		c->pending = false;
	}
	if (c->delay != NULL && evtimer_pending(c->delay, NULL)) {
		/* a failure's 535 need not outlive the daemon */
		event_del(c->delay);
		c->pending = false;
		auth_reply_failure(c);
	}
}

/*
 * An attempt: admitted by the throttle (else 454 now, no hashing), held
 * until the client's penalty is over, then checked.
 */
static void
auth_verify(
    struct conn *c, const char *user, const char *pass, const char *mech)
{
	struct auth_job *aj;
	unsigned wait;
	uint64_t ticket;
	char safe[300];

	if (auth_throttle_admit(c->srv->throttle, &c->key, time_now_ms(), &wait,
		&ticket) == AUTH_THROTTLE_BUSY) {
		log_warn("sid=%s event=auth_busy mech=%s user=%s client=%s",
		    c->sid, mech,
		    log_sanitize(safe, sizeof(safe), user, strlen(user)),
		    c->ip);
		smtp_server_reject(c->smtp, 454, "4.7.0",
		    "Too many authentication attempts, try again later");
		return;
	}
	aj = xcalloc(1, sizeof(*aj));
	aj->c = c;
	aj->srv = c->srv;
	aj->key = c->key;
	aj->ticket = ticket;
	aj->mech = mech;
	if (str_copy(aj->user, sizeof(aj->user), user, strlen(user)) != 0 ||
	    str_copy(aj->pass, sizeof(aj->pass), pass, strlen(pass)) != 0)
		aj->user[0] = aj->pass[0] = '\0';
	str_lower(aj->user);
	if (wait == 0) {
		auth_check(c, aj);
		return;
	}
	if (c->hold == NULL &&
	    (c->hold = evtimer_new(c->srv->base, on_auth_hold, c)) == NULL)
		panic("event=oom where=auth_hold");
	struct timeval tv = {
	    (time_t)(wait / 1000), (suseconds_t)(wait % 1000) * 1000};
	log_info("sid=%s event=auth_held mech=%s client=%s wait_ms=%u", c->sid,
	    mech, c->ip, wait);
	c->held = aj;
	c->pending = true;
	evtimer_add(c->hold, &tv);
}

static void
auth_plain(struct conn *c, const char *b64, size_t len)
{
	char authz[AUTH_FIELD_MAX + 1], user[AUTH_FIELD_MAX + 1];
	char pass[AUTH_FIELD_MAX + 1];
	int st = sasl_plain_parse_b64(b64, len, authz, sizeof(authz), user,
	    sizeof(user), pass, sizeof(pass));

	if (st == SASL_OK)
		auth_verify(c, user, pass, "PLAIN");
	else if (st == SASL_ERR_AUTHZ)
		auth_failed(c, user, "PLAIN", "authzid");
	else
		smtp_server_reject(c->smtp, 501, "5.5.2",
		    "Cannot decode the AUTH PLAIN response");
	explicit_bzero(pass, sizeof(pass));
}

static void
auth_login_step(struct conn *c, const char *resp, size_t len)
{
	char chal[SASL_LOGIN_CHAL_MAX];
	int st = sasl_login_step(c->login, resp, len, chal, sizeof(chal));

	if (st == SASL_CONTINUE) {
		smtp_server_auth_challenge(c->smtp, chal);
		return;
	}
	if (st == SASL_OK)
		auth_verify(c, c->login->user, c->login->pass, "LOGIN");
	else
		smtp_server_reject(c->smtp, 501, "5.5.2",
		    "Cannot decode the AUTH LOGIN response");
	sasl_login_wipe(c->login);
	free(c->login);
	c->login = NULL;
}

void
submit_on_auth(struct conn *c)
{
	const struct smtp_cmd *cmd = smtp_server_cmd(c->smtp);

	if (strcmp(cmd->auth_mech, "PLAIN") == 0) {
		if (cmd->auth_initial != NULL)
			auth_plain(c, cmd->auth_initial, cmd->auth_initial_len);
		else
			smtp_server_auth_challenge(c->smtp, "");
	} else if (strcmp(cmd->auth_mech, "LOGIN") == 0) {
		c->login = xcalloc(1, sizeof(*c->login));
		sasl_login_init(c->login);
		auth_login_step(c, cmd->auth_initial, cmd->auth_initial_len);
	} else {
		smtp_server_reject(
		    c->smtp, 504, "5.5.4", "Unrecognized authentication type");
	}
}

void
submit_on_auth_data(struct conn *c)
{
	size_t len;
	const char *data = smtp_server_auth_data(c->smtp, &len);

	if (c->login != NULL)
		auth_login_step(c, data, len);
	else
		auth_plain(c, data, len);
}

static bool
targets_include(const struct table_targets *tt, const char *user)
{
	size_t i;

	for (i = 0; i < tt->n; i++)
		if (strcasecmp(tt->v[i].address, user) == 0)
			return true;
	return false;
}

/*
 * submission.local_senders = own: the addresses a local uid owns are
 * login@D for its login name (getpwuid) and D our hostname (what tern
 * sendmail uses without -f) or any of our domains, and every address the
 * table resolves to one of those (an alias of it).
 */
static bool
local_owns(const struct conn *c, const char *address)
{
	const char *at = strrchr(address, '@');
	size_t n = strlen(c->local_login);

	return at != NULL && c->local_login[0] != '\0' &&
	       (size_t)(at - address) == n &&
	       strncasecmp(address, c->local_login, n) == 0 &&
	       (conf_domain_is_local(c->cf, at + 1) ||
		   strcasecmp(at + 1, c->cf->hostname) == 0);
}

static bool
local_targets_owned(const struct conn *c, const struct table_targets *tt)
{
	size_t i;

	for (i = 0; i < tt->n; i++)
		if (local_owns(c, tt->v[i].address))
			return true;
	return false;
}

/* The uid's login name into c->local_login, once; false if it has none. */
static bool
local_login_name(struct conn *c)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (c->local_login[0] != '\0')
		return true;
	/* NSS on the loop: once per connection, only with local_senders=own */
	if (getpwuid_r((uid_t)c->local_uid, &pw, buf, sizeof(buf), &res) != 0 ||
	    res == NULL ||
	    str_copy(c->local_login, sizeof(c->local_login), pw.pw_name,
		strlen(pw.pw_name)) != 0) {
		c->local_login[0] = '\0';
		return false;
	}
	str_lower(c->local_login);
	return true;
}

/* MAIL's question on the submission ports: may this user send as sender? */
struct sender_lookup {
	struct resolve_lookup q; /* q.addr: the sender */
	struct conn *c;
	void (*then)(struct conn *);
};

static bool
sender_owned(const struct conn *c, const struct sender_lookup *sl)
{
	if (sl->q.st != TABLE_OK)
		return false;
	return c->local ? local_targets_owned(c, &sl->q.tt)
			: targets_include(&sl->q.tt, submit_auth_user(c));
}

static void
sender_refuse(struct conn *c, const char *from)
{
	char text[128];

	if (!c->local) {
		conn_reject(c, "mail", 553, "5.7.1",
		    "Sender address is not owned by the authenticated user",
		    from);
		return;
	}
	if (str_fmt(text, sizeof(text), "Sender address is not owned by uid %u",
		c->local_uid) != 0)
		text[0] = '\0';
	log_warn("sid=%s event=local_sender_refused uid=%u login=%s", c->sid,
	    c->local_uid, c->local_login[0] ? c->local_login : "-");
	conn_reject(c, "mail", 553, "5.7.1", text, from);
}

static void
sender_decide(struct conn *c, struct sender_lookup *sl)
{
	char from[TABLE_ADDR_MAX + 1], q[600];

	if (sender_owned(c, sl)) {
		sl->then(c);
		return;
	}
	if (addr_format(&sl->q.addr, from, sizeof(from)) < 0)
		from[0] = '\0';
	if (sl->q.st == TABLE_TEMPFAIL) {
		log_warn("sid=%s event=table_error step=sender error=\"%s\"",
		    c->sid,
		    log_quote(
			q, sizeof(q), sl->q.lk.err, strlen(sl->q.lk.err)));
		conn_reject(c, "mail", 451, "4.3.0",
		    "Temporary lookup failure, try again later", from);
	} else {
		sender_refuse(c, from);
	}
}

static void
sender_answer(struct lookup *lk)
{
	struct sender_lookup *sl = (struct sender_lookup *)lk;
	struct conn *c = sl->c;

	if (conn_answered(c)) {
		sender_decide(c, sl);
		conn_process(c);
	}
	table_targets_free(&sl->q.tt);
	free(sl);
}

/*
 * Is the sender's policy for this session satisfied without a lookup?
 * 1: yes, 0: ask the table, -1: refused (the reply is sent).
 */
static int
sender_quick(struct conn *c, const struct addr *sender)
{
	char from[TABLE_ADDR_MAX + 1];
	bool formatted = addr_format(sender, from, sizeof(from)) >= 0;

	if (c->local) {
		/* root may send as anyone; so may everyone with "any" */
		if (strcmp(c->cf->submission_local_senders, "own") != 0 ||
		    c->local_uid == 0 || sender->null)
			return 1;
		if (!local_login_name(c)) {
			sender_refuse(c, formatted ? from : "");
			return -1;
		}
		return formatted && local_owns(c, from) ? 1 : 0;
	}
	if (c->l->kind == LISTEN_SMTP || !c->authenticated || sender->null ||
	    c->cf->submission_any_sender)
		return 1;
	return formatted && strcasecmp(from, submit_auth_user(c)) == 0 ? 1 : 0;
}

void
submit_check_sender(struct conn *c, void (*then)(struct conn *))
{
	const struct addr *sender = &smtp_server_cmd(c->smtp)->path;
	struct sender_lookup *sl;
	int quick = sender_quick(c, sender);

	if (quick != 0) {
		if (quick > 0)
			then(c);
		return;
	}
	/* else an alias of the user's: the table says (the rare path: one
	 * allocation, freed by the answer) */
	sl = xcalloc(1, sizeof(*sl));
	sl->c = c;
	sl->q.addr = *sender;
	sl->then = then;
	sl->q.lk.ask = resolve_ask;
	sl->q.lk.answer = sender_answer;
	conn_ask(c, &sl->q.lk);
}
