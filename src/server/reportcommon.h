/*
 * reportcommon: what the two report senders of ternd share, the DMARC
 * aggregate reports (dmarcrep.c) and the TLS reports (tlsrptd.c): the
 * names a report goes out under, and the records of a TXT answer.
 *
 * Owns: nothing.  May call: deliver/dns.h (the answer's type), util.
 * Threads: any; no state.
 */
#ifndef TERN_SERVER_REPORTCOMMON_H
#define TERN_SERVER_REPORTCOMMON_H

#include <stddef.h>

#include "deliver/dns.h"

/*
 * The report's sender: from = the configured address, else
 * default_local@hostname; submitter = its domain, lower case; org = the
 * configured organisation, else hostname.  0, or -1 with err set naming
 * from_key or org_key (an address without '@' or with a blank, CR, LF,
 * '<', '>', ',' or '"'; a value that does not fit its buffer).  On
 * failure out is left as it was.
 */
struct report_names {
	char *from;
	size_t fromlen;
	char *submitter;
	size_t submitterlen;
	char *org;
	size_t orglen;
};
int report_names(const char *from_conf, const char *default_local,
    const char *hostname, const char *org_conf, const char *from_key,
    const char *org_key, const struct report_names *out, char *err,
    size_t errlen);

/*
 * The TXT records of ans, the strings of one record joined (c-ares gives
 * them apart): txt[i] (len[i] octets) for i < the count returned, which
 * point into store.  txt and len hold ans->n entries, store
 * DNS_ANSWER_DATA octets.
 */
size_t report_txt_records(
    const struct dns_answer *ans, const char **txt, size_t *len, char *store);

#endif
