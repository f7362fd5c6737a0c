/*
 * remote: outbound SMTP delivery on ternd's libevent loop (RFC 5321 5.1).
 *
 * The queue hands remote_deliver() one message for one destination domain
 * (every recipient in it); the module finds where the mail goes (MX hosts
 * through deliver/dns.h, or the configured smarthost), connects, speaks
 * SMTP through the pure client state machine of smtp/smtp.h (opportunistic
 * STARTTLS through tls/tls.h to MX hosts; to the smarthost as
 * remote_conf.smarthost_tls says, STARTTLS or implicit TLS), streams the
 * dot-stuffed body from the stored file and reports one result per
 * recipient through a callback.  Every TLS session is logged with
 * verified=yes|no: whether the peer's certificate chained to a trusted CA
 * and matched the expected name, and tls_resumed=yes|no: each peer's
 * session is kept (tls/sesscache.h) and offered on the next connection to
 * it, never across names, addresses, ports or TLS policies.
 *
 * Destinations are domains, or the one smarthost.  Per destination at most
 * max_per_dest connections are open; messages beyond that wait in a FIFO
 * and go out in order, over a connection that finished its message when
 * one does (RSET/MAIL on the same session), else over a new one.  MX hosts
 * are tried in preference order, each host's addresses in order.  A
 * connection failure, a timeout, a greeting other than 220 or a session
 * failure before any recipient was decided moves on to the next address;
 * when all are tried, every recipient is TEMP with the last error, and so
 * is every message still waiting for that destination, unless the last
 * error was the receiver asking to slow down (421, 4.7.x): then the
 * waiting messages stay for later connections.  A receiver that asks to
 * slow down, or cannot be reached, gets fewer connections and a pause
 * before new ones (queue/slowdown.h, docs/queue.md).  DNS_PERM (NXDOMAIN,
 * null MX, no address) bounces every recipient (PERM), DNS_TEMP defers.
 *
 * Everything runs on the loop's thread; nothing here blocks.
 *
 * Owns: struct remote (the delivery engine).  May call: smtp, mime, tls,
 * dns, util; called by the queue's adapter (server/qmgr.c) only.
 */
#ifndef TERN_REMOTE_H
#define TERN_REMOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "smtp/smtp.h"
#include "deliver/dns.h"

struct event_base;
struct remote;
struct sockaddr_storage;
struct tlsrpt;

#define REMOTE_SELF_MAX	  8  /* listening sockets remote_conf.self holds */
#define REMOTE_IFADDR_MAX 64 /* interface addresses remembered */

/*
 * TLS towards the smarthost, weakest first (docs/tls-auth.md).  In every
 * mode the credentials go only over TLS, and over an unverified session
 * only in ENCRYPT; otherwise the mail is deferred (451 4.7.5), never sent
 * with them in clear or to a peer that did not prove its name.
 */
enum remote_tls {
	REMOTE_TLS_MAY = 0, /* STARTTLS when offered, plaintext otherwise */
	REMOTE_TLS_ENCRYPT, /* TLS required; any certificate */
	REMOTE_TLS_VERIFY,  /* TLS required; chain to a trusted CA and the
			       smarthost's name, else 451 4.7.5 */
};

struct remote_conf {
	const char *helo; /* our hostname, for EHLO */
	unsigned port;	  /* relay.port: port of MX hosts; 0: 25 */
	/*
	 * relay.smarthost, or NULL.  "host", "host:port", "1.2.3.4[:port]",
	 * "[1.2.3.4]:port", "[2001:db8::1]:port" or a bare IPv6 address.  No
	 * port: the port above.  An address is used as it is; a name goes
	 * through dns_resolve_mx(), so its A/AAAA records are used (its own
	 * MX records, should it have any, would be followed: dns.h has no
	 * address-only lookup).
	 */
	const char *smarthost;
	const char *smarthost_user,
	    *smarthost_pass; /* AUTH PLAIN (or LOGIN), TLS only */
	/*
	 * How the smarthost's TLS is trusted (relay.smarthost_tls).  Its
	 * certificate is checked against the name in smarthost (the host
	 * part: a name, or an address literal against the certificate's IP
	 * entries), never against MX names DNS gave, since DNS is not
	 * authenticated.  A smarthost written "smtps:host[:port]" (port 465
	 * by default) speaks TLS from the first byte (RFC 8314 implicit
	 * TLS): no STARTTLS, no plaintext fallback, the rules below alike.
	 */
	enum remote_tls smarthost_tls;
	SSL_CTX *smarthost_ctx; /* tls_client_ctx() for the smarthost, with its
				   CA file and verify set for REMOTE_TLS_VERIFY
				   (a reference is taken); NULL: client_ctx */
	/*
	 * delivery.lmtp, or NULL: only checked here (a bad one fails
	 * remote_new); messages name their LMTP server in remote_msg.lmtp
	 * (RFC 2033: "unix:/absolute/path" or host[:port] as for the
	 * smarthost, port 24 when none).  No STARTTLS, no AUTH; LHLO, then
	 * one reply per recipient after the data.
	 */
	const char *lmtp;
	/*
	 * The sockets this server listens on (bound addresses; a wildcard
	 * stands for every address of this machine).  An MX host reached at
	 * one of them is this server: RFC 5321 5.1 says to drop it and every
	 * less preferred MX, and to bounce the mail if none is left (550
	 * 5.4.6 "loops back to myself"; a smarthost that is this server
	 * defers instead, 451 4.4.6, since that is a setting to fix).
	 */
	const struct sockaddr_storage *self;
	size_t nself;	       /* at most REMOTE_SELF_MAX are used */
	unsigned max_per_dest; /* connections per destination at most
				  (delivery.concurrency_per_destination);
				  0: 10 */
	/* delivery.destination_concurrency: "domain:N,..." (checked by
	   conf), N for those domains instead of max_per_dest; or NULL */
	const char *destination_concurrency;
	/*
	 * MTA-STS (deliver/mtasts.h, docs/tls-auth.md), or NULL: none.
	 * sts_ctx: a verifying tls_client_ctx_store() on tls.ca_file /
	 * ca_path for MX hosts under an enforce policy (a reference is
	 * taken); without one such hosts are deferred, never sent to
	 * unverified.
	 */
	struct mtasts *sts;
	SSL_CTX *sts_ctx;
	/*
	 * TLS-RPT (RFC 8460): every outbound TLS outcome towards an MX host
	 * (STARTTLS not offered, handshake failed, TLS up) is counted here
	 * with tlsrpt_record(), on the loop; NULL: not counted.  Not taken
	 * over: the caller keeps it alive until remote_free().  Smarthost
	 * and LMTP sessions are not counted (no policy domain's MX).
	 */
	struct tlsrpt *tlsrpt;
	unsigned timeout_connect; /* seconds, 0: 30 */
	unsigned timeout_command; /* seconds per reply, 0: 300; the reply
				     to the final dot gets twice this
				     (RFC 5321 4.5.3.2: 10 minutes) */
	/*
	 * TLS policy of MX delivery (deliver/tlspolicy.h): dnssec is
	 * dns.dnssec (the resolver validates: DANE for hosts with secure
	 * TLSA records, RFC 7672); tls_policy the [tls_policy] overrides as
	 * conf keeps them ("domain:level,..."), or NULL.  dane-only without
	 * dnssec fails remote_new().
	 */
	bool dnssec;
	const char *tls_policy;
};

/*
 * A delivery engine on base.  dns is the loop's resolver; client_ctx a
 * tls_client_ctx() (a reference is taken; NULL: no STARTTLS at all).
 * Everything in conf is copied.  Returns NULL, with a log line, when the
 * smarthost does not parse.
 */
struct remote *remote_new(struct event_base *base, struct dns *dns,
    SSL_CTX *client_ctx, const struct remote_conf *conf);

/*
 * Close every connection and forget every delivery: pending deliveries
 * are dropped silently, their callbacks never run (the queue keeps the
 * messages and retries them after a restart).  remote_free(NULL) is a
 * no-op.  Allowed from inside a remote_done_fn (the free happens when it
 * returns).  Call it before dns_free() and event_base_free().
 */
void remote_free(struct remote *r);

struct remote_msg {
	const char *id;	    /* queue id, for logs */
	const char *domain; /* every recipient is in this domain */
	const char *sender; /* "" for <> */
	const struct smtp_client_rcpt *rcpts;
	size_t nrcpts;	   /* 1..SMTP_CLIENT_RCPT_MAX */
	int data_fd;	   /* the message as stored (CRLF): data_len
			      octets at data_off; it is mmap()ed, the
			      caller may close the fd after the call */
	uint64_t data_off; /* any offset (the queue's log): mapped from
			      the page below */
	uint64_t data_len;
	uint64_t size; /* for SIZE= */
	bool body_8bit;
	bool smtputf8;
	bool requiretls;      /* RFC 8689: only to a policy-verified hop
				 offering REQUIRETLS, else 5.7.10/5.7.30 */
	bool tls_required_no; /* "TLS-Required: No" (reqtls.h) */
	enum smtp_ret ret;
	const char *envid; /* NULL or "" for none */
	const char *lmtp;  /* NULL; else to this LMTP server ("unix:/path"
			      or host[:port], 24 by default), not to domain */
};

/*
 * results[i] is for rcpts[i] (n == nrcpts); mx is the MX host that
 * answered last ("" if none did), for the DSN's Remote-MTA.  Both are
 * valid during the call only.
 */
typedef void (*remote_done_fn)(void *arg,
    const struct smtp_client_result *results, size_t n, const char *mx);

/*
 * Deliver one message.  Everything in m is copied.  done(arg, ...) runs
 * exactly once, later, from the loop (never inside remote_deliver()),
 * unless remote_cancel(arg) or remote_free() comes first.  An envelope
 * the client state machine refuses (bad address, no recipient) or a data
 * file that cannot be mapped gives PERM / TEMP results at once.  done may
 * call remote_deliver(), remote_cancel() and remote_free().
 */
void remote_deliver(struct remote *r, const struct remote_msg *m,
    remote_done_fn done, void *arg);

/*
 * Forget every delivery whose arg is arg: their done never runs.  A
 * message in the middle of a transaction has its connection closed at
 * once (no QUIT; the peer discards the unfinished transaction, unless the
 * final dot was already sent, so the message may still arrive).  Returns
 * the number of deliveries forgotten.
 */
size_t remote_cancel(struct remote *r, void *arg);

/*
 * The daemon is stopping: messages waiting for a destination's pause
 * (docs/queue.md, "Destinations that ask to slow down") or for its
 * MTA-STS policy (whose fetch is aborted) are finished TEMP (451 4.3.2)
 * now instead of after it; connections under way go on.
 */
void remote_stop(struct remote *r);

/* Forget the DNS answer kept for domain (NULL: every destination's), so
 * the next connection asks again (`tern queue requeue`; dest.c). */
void remote_forget_dns(struct remote *r, const char *domain);

/* Every session kept idle for the next message (REMOTE_IDLE_SECS,
 * remote.c) QUITs now instead of when its time is up. */
void remote_idle_quit(struct remote *r);

/*
 * r's last user is done with it while ternd runs (a reload made another
 * engine): its idle sessions QUIT (RFC 5321 4.1.1.10: a client does not
 * just close), and r frees itself once the last of them is answered, at
 * once when none is open.  r takes no job after this.
 */
void remote_retire(struct remote *r);

/* At exit: every remote retired and not yet gone, freed now. */
void remote_free_retired(void);

/* Connections open now (all destinations), for tests and metrics. */
unsigned remote_connections(const struct remote *r);

#endif
