/*
 * reloadkeys: the keys a reload cannot change (reload.h), in a file of
 * their own so that tests/unit/test_reload.c links this list and nothing
 * of the daemon.
 */
#include <stddef.h>

#include "server/reload.h"

/*
 * The keys a reload cannot change, each group with its reason: what the
 * process is, and what is made from a key once at start and keeps state
 * that a second copy could not share.  Every other key is live: sessions
 * take the new configuration when they start (reload.h), the queue's
 * delivery settings when an attempt starts (qsettings.h: the trust store
 * and MTA-STS's switch among them; the MTA-STS fetcher's store and
 * deadline at the switch), the tables and the TLS context at the switch.
 * docs/configuration.md tags every key
 * "(restart)" or "(live)" to match this list (tests/unit/test_reload.c).
 */
const char *const reload_restart_keys[] = {
    /* what the process is: its name (greeting, EHLO, Received, DSNs,
       reports), its state directory, the user it became and the
       sandbox it confined itself in, which cannot be widened */
    "hostname",
    "state_dir",
    "user",
    "sandbox",
    "sandbox_write",
    /* bound before the privilege drop and served apart from the mail
       listeners (metricsrv.c) */
    "listen.metrics",
    "metrics.allow_remote",
    /* the DSN rate limits' counters (dsnlimit.h) */
    "limits.dsn_per_client",
    "limits.dsn_per_domain",
    /* the resolver, shared by every lookup in flight, and its cache */
    "dns.servers",
    "dns.cache_max_ttl",
    "dns.cache_entries",
    "dns.dnssec",
    /* MTA-STS's policy cache (STATE/mta-sts), sized when it is made */
    "sts.cache_entries",
    /* the queue's on-disk format, chosen when the spool opens */
    "queue.log",
    /* the SRS key and the addresses already made with it */
    "srs.enable",
    "srs.domain",
    "srs.max_age",
    /* the reporters and what they have counted since start */
    "dmarc.reports",
    "dmarc.report_interval",
    "dmarc.report_from",
    "dmarc.report_org",
    "dmarc.report_max_rows",
    "tlsrpt.reports",
    "tlsrpt.report_from",
    "tlsrpt.report_org",
    "tlsrpt.max_domains",
    /* parsed once (the overrides) and read before the sandbox (the list) */
    "dmarc.override",
    "dmarc.public_suffix_list",
    /* screening's cache, greylisting's store, the rate-limit counters
       and the policy pool: state kept across a reload on purpose */
    "screen.greet_pause",
    "screen.dnsbl",
    "screen.dnswl",
    "screen.threshold",
    "screen.cache_ttl",
    "screen.cache_entries",
    "screen.dns_timeout",
    "greylist.enable",
    "greylist.expire",
    "greylist.store",
    "rate.connections_per_ip",
    "rate.messages_per_ip",
    "rate.recipients_per_ip",
    "rate.messages_per_user_hour",
    "rate.messages_per_user_day",
    "rate.recipients_per_user_hour",
    "rate.recipients_per_user_day",
    "rate.unknown_recipients",
    "rate.penalty",
    "rate.exempt_networks",
    "policy.servers",
    "policy.idle_timeout",
    /* ACME: acme.http is bound as root at start (port 80), and the
       sandbox's write rules for tls.cert's directory and the webroot are
       made once; the other acme.* keys are read by each check */
    "acme.directory",
    "acme.http",
    "acme.webroot",
    /* worker threads read the level while they log, and the log's
       format and target are set up once: written once */
    "log.level",
    "log.format",
    "log.target",
    "log.socket",
    NULL,
};
