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
    /* the reporters and what they have counted since start (their
       names and bounds are live: dmarcrep.h, tlsrptd.h) */
    "dmarc.reports",
    "tlsrpt.reports",
    /* parsed once (the overrides) and read before the sandbox (the list) */
    "dmarc.override",
    "dmarc.public_suffix_list",
    /* screening's verdict cache is a hash table sized for it once
       (screen/dnsbl.h): a new size would need a second cache, and the
       verdicts are the state a reload keeps */
    "screen.cache_entries",
    /* greylisting's store (SQLite in STATE, or the tables' PostgreSQL):
       opened once, its triplets kept; moving them is a restart */
    "greylist.store",
    /* ACME: acme.http is bound as root at start (port 80), and the
       sandbox's write rules for tls.cert's directory and the webroot are
       made once; the other acme.* keys are read by each check */
    "acme.directory",
    "acme.http",
    "acme.webroot",
    /* the log's format and target are set up once, before the worker
       threads that write with them (log.level is live: an atomic) */
    "log.format",
    "log.target",
    "log.socket",
    NULL,
};
