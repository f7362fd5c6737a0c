/*
 * tlsrptd: SMTP TLS Reporting (RFC 8460) in ternd.
 *
 * The outbound delivery code counts every TLS outcome into the table
 * tlsrptd_table() returns (tlsrpt/tlsrpt.h, remote_conf.tlsrpt).  This
 * module keeps that table durable in STATE/tlsrpt.state (written every
 * TLSRPTD_FLUSH_SECS when it changed, and at shutdown; a report run in
 * progress keeps its period in STATE/tlsrpt.pending until it is done),
 * and once per tlsrpt.report_interval sends each counted domain its
 * report: the domain's "_smtp._tls" TXT record names where (rua); a
 * mailto: gets a mail through tern's own queue (RFC 8460 5.3, signed
 * like a DSN when a DKIM key applies), an https: the gzipped JSON POSTed
 * with libcurl on a worker thread.  A run is due one interval after the
 * period began (kept across restarts).  A domain without a record gets no
 * report (its counts are dropped at the run); one whose lookup failed
 * for now goes back to the current period.
 *
 * Owns: struct tlsrptd (the table, the timers, one report run at a time,
 * the file writes, one at a time, in the order asked).  May call: tlsrpt,
 * deliver/dns.h, dmarcdb (gzip), mailauth (the report mail), store
 * (inject_submit), dkimsign, fs, workers, util, libcurl, struct server.
 *
 * Threads: every function here runs on the loop; file writes, gzip and
 * the HTTPS POSTs run on the worker pool.  Nothing blocks the loop.
 */
#ifndef TERN_SERVER_TLSRPTD_H
#define TERN_SERVER_TLSRPTD_H

#include <stdbool.h>

#include "util/util.h"

struct server;
struct tlsrpt;
struct tlsrptd;

#define TLSRPTD_FLUSH_SECS  10 /* the table goes to disk this often */
#define TLSRPTD_POST_SECS   60 /* an HTTPS POST's whole time */
#define TLSRPTD_GZ_MAX	    ((size_t)4 << 20) /* a report, gzipped */
#define TLSRPTD_START_DELAY 10 /* s: an overdue run after a start */

/*
 * Read STATE/tlsrpt.state (and .pending); NULL when tlsrpt.reports = no.
 * Start-up only; fatal when the file cannot be read or is of a newer
 * format (the message names the file and the versions).
 */
struct tlsrptd *tlsrptd_open(struct server *s);
/* The table the delivery code counts into (NULL when td is NULL). */
struct tlsrpt *tlsrptd_table(struct tlsrptd *td);
/* Arm the timers (after the workers and the queue manager exist). */
void tlsrptd_start(struct tlsrptd *td);
/*
 * A reload.  tlsrptd_check, before the switch: are nc's report_from and
 * report_org usable (0; else -1 with err, the reload is refused)?  Then,
 * with srv->conf the new one, tlsrptd_reload (td NULL ok): the current
 * period's table takes tlsrpt.max_domains (the domains counted stay).
 * tlsrpt.report_from and report_org are taken by the next run as it
 * starts; a run under way finishes under the names it began with.
 */
struct conf;
int tlsrptd_check(const struct conf *nc, char *err, size_t errlen);
void tlsrptd_reload(struct tlsrptd *td);
/*
 * The control socket's "TLSRPT-SEND": a report run now (the current
 * period ends here), then done(arg) with a JSON line in out:
 * {"ok":true,"domains":N,"mailed":N,"posted":N,"skipped":N,"failed":N}.
 */
void tlsrptd_control(
    struct tlsrptd *td, struct buf *out, void (*done)(void *), void *arg);
/* SIGTERM: no new run; the table is written one last time. */
void tlsrptd_stop(struct tlsrptd *td);
/* Nothing in flight (a run, a write, a POST): ternd may exit. */
bool tlsrptd_idle(const struct tlsrptd *td);
void tlsrptd_free(struct tlsrptd *td);

#endif
