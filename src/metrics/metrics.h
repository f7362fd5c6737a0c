/*
 * metrics: ternd's Prometheus counters, gauges and histograms, and their
 * text exposition (format 0.0.4).  docs/metrics.md lists every family.
 *
 * Owns: the one process-wide registry.  It is the one global of ternd on
 * purpose, as a client library's default registry is: an increment sits
 * in the loop, on the disk workers and on the lookup threads, and handing
 * a pointer down through every module for a counter would cost more
 * reading than it saves.  May call: util.  Pure: no I/O, no clock (the
 * caller measures and passes microseconds), no allocation.
 *
 * Threads: every function is thread-safe.  Fixed-label families are
 * relaxed C11 atomics (one uncontended fetch_add per event: no ordering
 * is needed, a scrape may see one family a few events ahead of another);
 * the two families whose label values come from the network (enhanced
 * reply codes, destination domains) take a mutex that only the loop ever
 * contends for.  Their label sets are bounded: METRICS_REPLY_SLOTS codes,
 * METRICS_DEST_TOP domains plus "other".
 */
#ifndef TERN_METRICS_H
#define TERN_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

/* distinct (class, enhanced code) reply series before "other" */
#define METRICS_REPLY_SLOTS 64
/* destinations named in the per-destination families; the rest "other" */
#define METRICS_DEST_TOP 10
/* a label value from the network is cut to this many octets */
#define METRICS_LABEL_MAX 255

enum metrics_listener {
	METRICS_L_SMTP,
	METRICS_L_SUBMISSION,
	METRICS_L_SUBMISSIONS,
	METRICS_L_LOCAL, /* public/submit.sock */
	METRICS_L_N
};

enum metrics_refusal {
	METRICS_R_SHUTDOWN,
	METRICS_R_CONNECTIONS,
	METRICS_R_PER_IP,
	METRICS_R_PER_UID,
	METRICS_R_DESCRIPTORS, /* EMFILE: the backlog shed */
	METRICS_R_N
};

enum metrics_transport {
	METRICS_T_MAILDIR,
	METRICS_T_LMTP,
	METRICS_T_SMTP,
	METRICS_T_N
};

enum metrics_outcome {
	METRICS_O_DELIVERED,
	METRICS_O_DEFERRED,
	METRICS_O_BOUNCED,
	METRICS_O_N
};

enum metrics_dns_type {
	METRICS_DNS_ROUTE, /* the MX route of a destination (MX, then A/AAAA) */
	METRICS_DNS_TXT,
	METRICS_DNS_A,
	METRICS_DNS_AAAA,
	METRICS_DNS_MX,
	METRICS_DNS_PTR,
	METRICS_DNS_TYPES
};

/* the results a lookup is counted under (dns_reason_name's words) */
enum metrics_dns_result {
	METRICS_DNSR_OK,
	METRICS_DNSR_NXDOMAIN,
	METRICS_DNSR_NULL_MX,
	METRICS_DNSR_NO_ADDRESS,
	METRICS_DNSR_BAD_NAME,
	METRICS_DNSR_SERVFAIL,
	METRICS_DNSR_REFUSED,
	METRICS_DNSR_TIMEOUT,
	METRICS_DNSR_NETWORK,
	METRICS_DNSR_RESOLVER,
	METRICS_DNSR_N
};

enum metrics_tls_dir { METRICS_TLS_IN, METRICS_TLS_OUT, METRICS_TLS_DIRS };
enum metrics_tls_verify {
	METRICS_V_YES,
	METRICS_V_NO,
	METRICS_V_NONE, /* inbound: no client certificate is asked for */
	METRICS_V_N
};

/* gauges the shell sets when it is scraped */
enum metrics_gauge {
	METRICS_G_QUEUE_MESSAGES,
	METRICS_G_QUEUE_OLDEST_AGE, /* seconds */
	METRICS_G_LOOKUP_QUEUE,
	METRICS_G_RSS_BYTES,
	METRICS_G_OPEN_FDS,
	METRICS_G_N
};

/* ---- events ------------------------------------------------------------ */

void metrics_conn_open(enum metrics_listener l);
void metrics_conn_close(enum metrics_listener l);
void metrics_conn_refused(enum metrics_refusal r);
/* Every reply in p[0..n) (a session's output, whole lines): the final
 * line of each reply ("250 ", not "250-") is counted by its class and
 * enhanced code. */
void metrics_replies(const char *p, size_t n);
void metrics_message_received(enum metrics_listener l);
/* One recipient's result.  domain: the destination of an SMTP delivery
 * (NULL otherwise); latency_us: creation to delivery, for DELIVERED. */
void metrics_delivery(enum metrics_transport t, enum metrics_outcome o,
    const char *domain, uint64_t latency_us);
/* A recipient failed by age (queue.lifetime, 4.4.7). */
void metrics_expired(void);
/* version: SSL_get_version()'s text */
void metrics_tls(
    enum metrics_tls_dir d, const char *version, enum metrics_tls_verify v);
void metrics_tls_failed(enum metrics_tls_dir d);
/* mech: the client's word ("PLAIN", "LOGIN"; anything else is "other") */
void metrics_auth(const char *mech, bool ok);
void metrics_dns(enum metrics_dns_type t, enum metrics_dns_result r);
void metrics_commit_latency(uint64_t us);	/* end of data to 250 */
void metrics_table_lookup_latency(uint64_t us); /* one table question */
void metrics_gauge_set(enum metrics_gauge g, int64_t v);

/* ---- the exposition ---------------------------------------------------- */

/* Append every family to out in text format 0.0.4.  0, or -1 when out's
 * maximum was reached (the registry is bounded: 64 KiB is ample). */
int metrics_render(struct buf *out) WUR;

/* Append v as a label value: \ " and newline escaped (format 0.0.4). */
int metrics_escape_label(struct buf *out, const char *v, size_t n) WUR;
/* A label value taken from the network into out (size
 * METRICS_LABEL_MAX + 1): lower-cased, anything but printable ASCII
 * replaced by '_', cut to METRICS_LABEL_MAX octets. */
void metrics_label_clean(char *out, const char *v, size_t n);

/* Back to zero: the unit tests only. */
void metrics_reset(void);

#endif
