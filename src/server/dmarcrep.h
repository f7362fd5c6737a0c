/*
 * dmarcrep: DMARC aggregate reports in ternd (RFC 7489 7.2): the record of
 * each evaluated message, kept in STATE/dmarc.db (dmarcdb.h), and once per
 * dmarc.report_interval one report per policy domain, gzipped XML mailed
 * through tern's own queue to each rua mailto: destination that may have
 * it (its !size, and the 7.1 consent of an external one, asked of DNS).
 *
 * Owns: struct dmarcrep (the batch of records waiting to be written, the
 * lane of store operations, the report timer, one report run at a time,
 * the drop counters) and the store's connection.  May call: dmarcdb,
 * mailauth (dmarc, dmarcxml, psl), deliver/dns.h (TXT lookups through
 * the server's resolver), store (inject_submit), dkimsign (a report is
 * signed like a DSN), workers, util, and struct server.
 *
 * Threads: every function here runs on the loop.  The store is touched
 * only by jobs on the worker pool, one at a time (the lane), in the order
 * they were asked: a batch recorded before a report run is written before
 * the run reads.  Recording copies the message's values into the batch
 * and returns: it never waits on the disk.
 */
#ifndef TERN_SERVER_DMARCREP_H
#define TERN_SERVER_DMARCREP_H

#include <stdbool.h>
#include <stddef.h>

#include "mailauth/dmarc.h"
#include "mailauth/dmarcxml.h"
#include "util/util.h"

struct server;
struct dmarcrep;

/* records waiting in memory for the next write; more are dropped */
#define DMARCREP_PENDING_MAX 4096
/* a batch is written when it has this many records, or after the delay */
#define DMARCREP_BATCH	  256
#define DMARCREP_BATCH_MS 2000
/* the largest report tern builds (XML, before gzip) */
#define DMARCREP_XML_MAX ((size_t)64 << 20)

/*
 * Open STATE/dmarc.db and load the Public Suffix List; NULL when
 * dmarc.reports = no.  Start-up only, before the sandbox; fatal on error.
 */
struct dmarcrep *dmarcrep_open(struct server *s);
/* Arm the report timer (after the workers and the queue manager exist). */
void dmarcrep_start(struct dmarcrep *dr);
/*
 * A reload.  dmarcrep_check, before the switch: are nc's report_from and
 * report_org usable (0; else -1 with err, the reload is refused)?  Then,
 * with srv->conf already the new one, dmarcrep_reload (dr NULL ok; oc the
 * old configuration): a new dmarc.report_interval re-arms the next run
 * one interval from now.  dmarc.report_from and report_org are taken by
 * the next run as it starts, dmarc.report_max_rows by the next batch
 * written; a run under way finishes under what it began with.
 */
struct conf;
int dmarcrep_check(const struct conf *nc, char *err, size_t errlen);
void dmarcrep_reload(struct dmarcrep *dr, const struct conf *oc);
/*
 * Record one evaluated message.  lk is the finished policy lookup and v
 * its verdict; nothing is recorded unless a policy was found (v->result
 * PASS or FAIL) with at least one rua mailto: URI (dmarcxml_record says
 * what is kept, and m's fields).  Copies what it needs:
 * the caller's structs may go at once.  dr NULL (reports off) is a no-op.
 */
void dmarcrep_record(struct dmarcrep *dr, const struct dmarc_lookup *lk,
    const struct dmarc_verdict *v, const struct dmarcxml_msg *m);
/*
 * The control socket's "DMARC-REPORT": send the reports due now (the
 * current period ends here), then done(arg) with a JSON line in out.
 */
void dmarcrep_control(
    struct dmarcrep *dr, struct buf *out, void (*done)(void *arg), void *arg);
/*
 * The Public Suffix List ternd loaded for reports (the 7.1 rule), for the
 * inbound DMARC evaluation to share; NULL when reports are off.
 */
const struct psl *dmarcrep_psl(const struct dmarcrep *dr);
/* SIGTERM: write the batch now; stop the timer. */
void dmarcrep_stop(struct dmarcrep *dr);
/* No batch, no store operation and no report run in flight. */
bool dmarcrep_idle(const struct dmarcrep *dr);
/* After the worker pool has stopped. */
void dmarcrep_free(struct dmarcrep *dr);

#endif
