/*
 * conf: the configuration.  An INI file (inih) plus "-o section.key=value"
 * overrides, over embedded defaults that serve a developer on loopback.
 * ternd and tern read it the same way so they agree on state_dir, tables
 * and the control socket.  Unknown keys and bad values are errors with a
 * message naming the key and the file line.
 *
 * Owns: struct conf (every key, its default and its check).  May call:
 * addr (domain syntax), util, inih.  Every module above reads struct conf;
 * none writes it after conf_load().
 */
#ifndef TERN_CONF_H
#define TERN_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * relay.smarthost_tls, weakest first.  MAY: STARTTLS when offered;
 * credentials only over a verified session (else the mail is deferred).
 * ENCRYPT: TLS required, the certificate not checked; credentials go over
 * it (the admin named that risk).  VERIFY: TLS required, the certificate
 * must chain to a trusted CA and match the smarthost's name.
 */
enum conf_smarthost_tls {
	CONF_SMTLS_UNSET = 0,
	CONF_SMTLS_MAY,
	CONF_SMTLS_ENCRYPT,
	CONF_SMTLS_VERIFY,
};

/* "may", "encrypt", "verify" ("" for UNSET). */
const char *conf_smarthost_tls_name(enum conf_smarthost_tls t);

#define CONF_DELIM_MAX 8 /* characters of recipient_delimiter */

struct conf {
	char *path;	/* file read, or NULL */
	char *hostname; /* default: gethostname() */
	char **domains; /* lower-cased; default {"localhost"} */
	size_t ndomains;
	char *recipient_delimiter;   /* recipient_delimiter: "+" or "+-"...
					(each character one), NULL: off */
	char *state_dir;	     /* default "./var", made absolute */
	char *user;		     /* NULL: no privilege drop */
	bool sandbox;		     /* sandbox, true: Landlock + seccomp after
					start-up (server/sandbox.h) */
	char *sandbox_write;	     /* sandbox_write: NULL, or absolute
					directories (space or comma separated)
					the sandbox lets ternd write beneath:
					users' own Maildirs */
	char *listen_smtp;	     /* "127.0.0.1:2525"; NULL or "" = off */
	char *listen_submission;     /* "127.0.0.1:2587" */
	char *listen_submissions;    /* NULL (off) */
	char *listen_metrics;	     /* Prometheus, "127.0.0.1:9125"; NULL
					(off) */
	char *tls_cert, *tls_key;    /* NULL: self-signed pair in state_dir */
	char *tables_users;	     /* "sqlite:STATE/tern.db" */
	uint64_t message_size;	     /* limits.message_size, 26214400 */
	uint64_t inflight_memory;    /* limits.inflight_memory, 256 MiB: content
					of unfinished messages held in memory,
					all sessions together */
	uint64_t inflight_scratch;   /* limits.inflight_scratch, 4 GiB: the same
					in scratch files (content past 1 MiB) */
	unsigned recipients;	     /* limits.recipients, 1000 */
	unsigned connections;	     /* limits.connections, 4096 */
	unsigned connections_per_ip; /* limits.connections_per_ip, 50; an IPv6
					client counts per /64 */
	unsigned connections_per_uid; /* limits.connections_per_uid, 20: on
					public/submit.sock, per local uid */
	unsigned errors;	  /* limits.errors, 20: 421 after that many */
	unsigned hops;		  /* limits.hops, 100: a message carrying this
				     many Received fields is a loop (RFC 5321
				     6.3) and is refused with 554 5.4.6 */
	unsigned dsn_per_client;  /* limits.dsn_per_client, 30 an hour: DSNs
				     (success, delay) for unauthenticated
				     mail of one client address; 0: none */
	unsigned dsn_per_domain;  /* limits.dsn_per_domain, 100 an hour: the
				     same DSNs to one domain; 0: none */
	unsigned timeout_command; /* timeout.command, 300 s idle between
				     commands (RFC 5321 4.5.3.2.7) */
	unsigned timeout_line;	  /* timeout.line, 60 s: a line must be
				     complete this long after its first byte */
	unsigned timeout_data;	  /* timeout.data, 300 s without a byte while
				     reading content */
	unsigned
	    timeout_shutdown;  /* timeout.shutdown, 30 s to finish on TERM */
	char *relay_networks;  /* NULL; else "net[/prefix],..." checked
				  with inet_pton, joined with ',' */
	char *relay_smarthost; /* NULL; "[smtps:]host[:port]": smtps: is
				  TLS from the first byte (RFC 8314) */
	char *delivery_lmtp;   /* NULL: local mail goes to Maildirs; else
				  "unix:/path" or host[:port], where it is
				  handed over LMTP after queueing */
	unsigned relay_port;   /* 25 */
	/* delivery.concurrency_per_destination, 10: connections to one
	   destination at most (docs/queue.md) */
	unsigned delivery_concurrency_per_destination;
	/* delivery.destination_concurrency: "domain:N,..." overriding it per
	   domain, or NULL */
	char *delivery_destination_concurrency;
	char *relay_smarthost_user; /* relay.smarthost_user: AUTH PLAIN as */
	char *relay_smarthost_password_file; /* its password, first line; read
				       before the privilege drop */
	enum conf_smarthost_tls
	    relay_smarthost_tls;	  /* never CONF_SMTLS_UNSET
			    once loaded: verify with a user, else may */
	bool relay_smarthost_require_tls; /* deprecated: yes = at least encrypt
					   */
	char *relay_smarthost_ca_file;	  /* NULL: the system CA store */
	char *dns_servers;	    /* NULL: system resolver; else "ip[:port],
				       [v6]:port,..." (ares_set_servers_ports_csv
				       form) */
	unsigned dns_cache_max_ttl; /* dns.cache_max_ttl, 300 s; 0: no cache */
	unsigned dns_cache_entries; /* dns.cache_entries, 4096 answers */
	bool dns_dnssec;	    /* dns.dnssec: ask and trust the AD bit of
				       dns.servers (loopback only, checked by ternd) */
	char *tls_policy; /* [tls_policy]: "domain:level,..." (".domain"
			     for subdomains), or NULL (deliver/tlspolicy.h) */
	char *log_level;  /* log.level: debug|info|warn|err, "info" */
	char *log_format; /* log.format: "kv" (default) or "json" */
	char *log_target; /* log.target: "stderr" (default), "syslog",
			     "journald" */
	char *log_socket; /* log.socket: NULL, the target's usual socket */
	unsigned queue_retry_first; /* queue.retry_first, 300 s */
	unsigned queue_retry_max;   /* queue.retry_max, 4000 s */
	unsigned queue_lifetime;    /* queue.lifetime, 5 days; 0: no retries */
	unsigned queue_delay_warning; /* queue.delay_warning, 0 = off */
	bool queue_log; /* queue.log, true: the log-structured queue
			   (docs/queue.md, "The log"); false: files */
	bool auth_plaintext_loopback; /* auth.plaintext_loopback, false: AUTH
				       without TLS for 127.0.0.0/8 and ::1 */
	bool submission_any_sender;   /* submission.any_sender, false: an
					 authenticated user may send only as
					 itself or an alias that points to it */
	bool spf_check;		      /* spf.check, true: SPF (RFC 7208) of mail
					 on the MX port (docs/mailauth.md) */
	bool spf_reject_fail; /* spf.reject_fail, false: a "fail" is refused
				 at RCPT (550 5.7.23), a "temperror"
				 deferred (451 4.7.24); else recorded */
	bool dmarc_reports;   /* dmarc.reports, false: record DMARC
				 results and send aggregate reports
				 (RFC 7489 7.2) */
	unsigned dmarc_report_interval; /* dmarc.report_interval, 86400 s */
	char *dmarc_report_from;	/* dmarc.report_from: NULL means
					   dmarc-noreply@HOSTNAME */
	char *dmarc_report_org; /* dmarc.report_org: NULL means HOSTNAME */
	unsigned dmarc_report_max_rows; /* dmarc.report_max_rows, 100000:
					   distinct rows kept until sent */
	/* TLS-RPT (RFC 8460, server/tlsrptd.h) */
	bool tlsrpt_reports; /* tlsrpt.reports, false: count outbound TLS
				outcomes and send the daily reports */
	unsigned tlsrpt_report_interval; /* tlsrpt.report_interval, 86400 s */
	char *tlsrpt_report_from;	 /* NULL: tlsrpt-noreply@HOSTNAME */
	char *tlsrpt_report_org;	 /* NULL: HOSTNAME */
	unsigned tlsrpt_max_domains;	 /* distinct policy domains per period,
					    10000; more are counted as dropped */
	bool srs_enable;      /* srs.enable, true: SRS of forwarded mail's
				 sender, reversal of bounces (docs/mailauth.md) */
	char *srs_domain;     /* srs.domain: default the first of domains */
	unsigned srs_max_age; /* srs.max_age, 21 days: SRS0 addresses older
				 are refused */
	bool dkim_verify;     /* dkim.verify, true: DKIM signatures of mail on
				 the MX port checked at the end of data */
	bool dmarc_check;     /* dmarc.check, true: DMARC (RFC 7489) of mail on
				 the MX port, and Authentication-Results */
	bool dmarc_enforce;   /* dmarc.enforce, true: a DMARC fail gets the
				 policy's action (reject: 550 5.7.1, quarantine:
				 the .Junk folder); false: header only */
	char *dmarc_override; /* dmarc.override: "domain:policy, *.domain:
				 policy" (mailauth/inbound.h), or NULL */
	char *dmarc_public_suffix_list; /* NULL: PSL_DEFAULT_PATH */
	bool dkim_sign;	      /* dkim.sign, true: ternd signs submitted mail,
				 sendmail's and its DSNs with the active key
				 of the From (or sender) domain, when there
				 is one (docs/mailauth.md) */
	unsigned dkim_expire; /* dkim.expire, CONF_DKIM_EXPIRE: x= this many
				 seconds after t=; 0: no x= */
	bool arc_verify;      /* arc.verify, true: the ARC chain (RFC 8617) of
				 mail on the MX port, reported in A-R */
	bool arc_seal;	      /* arc.seal, true: forwarded mail gets our ARC
				 set when a sealing key exists */
	char *submission_local_senders; /* submission.local_senders: "any"
				       (default) or "own": the senders a
				       local uid may use on submit.sock */
	/* milters (docs/milter.md) */
	char *milter_servers;		 /* milter.servers: "inet:host:port,
					    unix:/path" in call order, or NULL */
	char *milter_default_action;	 /* milter.default_action: "tempfail"
					    (default) or "accept" when a milter
					    is down, times out or misbehaves */
	unsigned milter_connect_timeout; /* seconds, 30 */
	unsigned milter_command_timeout; /* seconds per reply, 30 */
	unsigned milter_eom_timeout;	 /* seconds for the end of message's
					    replies, 300 */
	/* screening before the greeting (docs/screening.md) */
	unsigned screen_greet_pause; /* screen.greet_pause, seconds; 0 off */
	char *screen_dnsbl;	     /* screen.dnsbl: "zone[=127.x.y.z][*w],..."
					or NULL */
	char *screen_dnswl;	     /* screen.dnswl: "zone[=127.x.y.z],..." */
	unsigned screen_threshold;   /* score refused from, 1 */
	unsigned screen_cache_ttl;   /* seconds a verdict is kept, 3600 */
	unsigned screen_cache_entries; /* verdicts kept at most, 100000 */
	unsigned screen_dns_timeout;   /* seconds for the lookups, 5 */
	/* greylisting (docs/defence.md) */
	bool greylist_enable;		  /* greylist.enable, false */
	unsigned greylist_delay;	  /* seconds a new triplet waits, 300 */
	unsigned greylist_expire;	  /* seconds a triplet or a whitelisted
					     network is kept, 35 days */
	char *greylist_whitelist_domains; /* "a.example,b.example": senders
					     with SPF pass for these skip it */
	char *greylist_store; /* greylist.store: "auto" (PostgreSQL when
				 tables.users is pgsql:, else SQLite) or
				 "sqlite" (STATE/greylist.db always) */
	/* rate limits (docs/defence.md "Rate limits"); 0: no limit */
	unsigned rate_connections_per_ip; /* MX port, per minute, 60 */
	unsigned rate_messages_per_ip;	  /* MX port, MAILs per hour, 500 */
	unsigned rate_recipients_per_ip;  /* MX port, RCPTs per hour, 2000 */
	unsigned rate_messages_per_user_hour;	/* AUTH user, MAILs, 200 */
	unsigned rate_messages_per_user_day;	/* AUTH user, MAILs, 1000 */
	unsigned rate_recipients_per_user_hour; /* AUTH user, RCPTs, 500 */
	unsigned rate_recipients_per_user_day;	/* AUTH user, RCPTs, 2000 */
	unsigned rate_unknown_recipients;	/* 550 5.1.1 per session before
						   421 and the penalty, 10 */
	unsigned rate_penalty;	    /* seconds a dictionary attacker's
				       address is refused, 900 */
	char *rate_exempt_networks; /* "127.0.0.0/8,::1": no per-IP
				       limits (nor relay.networks) */
	/* policy delegation (docs/policy.md) */
	char *policy_servers;		/* policy.servers: "inet:host:port,
					   unix:/path" asked in order, or NULL */
	char *policy_default_action;	/* policy.default_action: "tempfail"
					   (default) or "accept" when a server
					   is down, stalls or answers garbage */
	unsigned policy_timeout;	/* seconds to connect and answer, 100 */
	unsigned policy_idle_timeout;	/* seconds an idle connection is kept,
					   300 */
	bool policy_skip_authenticated; /* authenticated sessions not asked */
	/* Prometheus metrics (docs/metrics.md) */
	bool metrics_allow_remote; /* listen.metrics may be off loopback */
	/* the trust store of every peer verification (docs/tls-auth.md):
	   NULL, NULL: the system store */
	char *tls_ca_file; /* tls.ca_file: PEM CA certificates */
	char *tls_ca_path; /* tls.ca_path: a hashed CA directory */
	/* MTA-STS, RFC 8461 (docs/tls-auth.md "MTA-STS") */
	bool sts_enable;	    /* sts.enable, true */
	unsigned sts_cache_entries; /* sts.cache_entries, 1000 domains */
	unsigned sts_fetch_timeout; /* sts.fetch_timeout, 20 s */
	/* ACME, RFC 8555 (server/acmed.h, docs/tls-auth.md) */
	char *acme_directory;	    /* acme.directory URL; NULL: ACME off */
	char *acme_email;	    /* acme.email: the account's contact */
	char *acme_domains;	    /* acme.domains, "a,b"; default hostname */
	char *acme_http;	    /* acme.http ADDR:PORT (HTTP-01), or NULL */
	char *acme_webroot;	    /* acme.webroot DIR, or NULL */
	unsigned acme_renew_before; /* acme.renew_before, 30 days */
	unsigned acme_retry_first;  /* acme.retry_first, 600 s */
};

/*
 * Parse leading "-c FILE" and "-o key=value" options of argv (getopt
 * style, stops at the first other argument) and load the configuration.
 * argc and argv are advanced past what was used.  Without -c, the file named
 * by $TERN_CONFIG is read if set, else CONF_SYSTEM_FILE if it exists.  Returns
 * NULL and fills err on failure.
 */
struct conf *conf_from_args(int *argc, char ***argv, char *err, size_t errlen);
/* Read by conf_from_args when neither -c nor $TERN_CONFIG names a file. */
/*
 * dkim.expire's default, a week: longer than queue.lifetime's 5 days, so
 * a message still verifies when its last retry delivers it and when a
 * receiver or a forwarder checks it again days later, while a signed
 * message replayed by a spammer stops verifying after a week.
 */
#define CONF_DKIM_EXPIRE (7u * 86400u)

#ifndef CONF_SYSTEM_FILE
#define CONF_SYSTEM_FILE "/etc/tern/tern.conf"
#endif

/* Load path (NULL: defaults only) then apply overrides "key=value". */
struct conf *conf_load(const char *path, char *const *overrides, size_t n,
    char *err, size_t errlen);
void conf_free(struct conf *c);
/*
 * conf_load for `tern config check`: every error of the file is passed
 * to report() ("file:line: what"), not only the first; an error of an
 * override or of the whole (conf_finish) ends the check as in conf_load.
 * Returns the configuration (NULL when any error was found; err has the
 * first one).
 */
struct conf *conf_check(const char *path, char *const *overrides, size_t n,
    void (*report)(void *rctx, const char *msg), void *rctx, char *err,
    size_t errlen);
/* For a reload (server/reload.c): does key ("section.key", a known key)
 * have another value in b than in a; set dst's key to src's value. */
bool conf_key_differs(
    const struct conf *a, const struct conf *b, const char *key);
void conf_key_keep(struct conf *dst, const struct conf *src, const char *key);

/* Is domain (lower-cased) one of the configured domains? */
bool conf_domain_is_local(const struct conf *c, const char *domain);

/*
 * Split "host:port", "[ipv6]:port", or without port_required also "host",
 * "[ipv6]" and a bare IPv6 address.  host_out gets the host without
 * brackets; *port_out the port (1..65535), 0 when absent.  Returns 0, or
 * -1 if the text is not of that form or the host does not fit hostlen.
 * The host is an IPv4 or IPv6 address or a domain name.
 */
int conf_split_hostport(const char *s, char *host_out, size_t hostlen,
    unsigned *port_out, bool port_required);

/* Print every key with its effective value (for "tern config"), one
 * "section.key = value" line each (the names -o takes); unset is empty. */
void conf_dump(
    const struct conf *c, void (*out)(const char *line, void *ctx), void *ctx);

#endif
