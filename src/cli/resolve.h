/*
 * cli/resolve: the tern command's synchronous DNS and the DKIM record
 * check that `tern dkim check` and `tern doctor` share (both in dkim.c).
 * Kept out of cli.h because cli.h is also the interface of the pure JSON
 * reader (libcore), which must not see deliver/dns.h.
 */
#ifndef TERN_CLI_RESOLVE_H
#define TERN_CLI_RESOLVE_H

#include <stdbool.h>
#include <stddef.h>

#include "conf/conf.h"
#include "deliver/dns.h"

/*
 * The CLI's resolver: one c-ares channel (deliver/dns.h) on a private
 * event loop that cli_resolve() runs until the answer is in; every lookup
 * ends by the resolver's deadline (dns_set_timeout), so none hangs.
 */
struct cli_resolver;
/* NULL after a message when dns.servers is unusable. */
struct cli_resolver *cli_resolver_new(
    const struct conf *c, unsigned timeout_ms);
void cli_resolver_free(struct cli_resolver *r); /* NULL ok */

/* One answer: TXT records with their strings joined, A/AAAA addresses
 * (4 or 16 octets), MX/PTR names; each record NUL-terminated. */
struct cli_dns_answer {
	enum dns_rcode rcode;
	enum dns_reason reason;
	char recs[DNS_ANSWER_DATA + DNS_ANSWER_RRS];
	size_t off[DNS_ANSWER_RRS], len[DNS_ANSWER_RRS], n;
};

/* Look name up (type); a is always filled (DNS_ANS_TEMP on trouble). */
void cli_resolve(struct cli_resolver *r, enum dns_qtype type, const char *name,
    struct cli_dns_answer *a);

/* One DKIM key of a domain against its published record. */
struct cli_dkim_check {
	const char *domain, *selector, *alg;
	bool active;
	const char *verdict; /* "ok", "missing", "mismatch", "revoked",
				"error" */
	char why[160];
	char name[600]; /* SELECTOR._domainkey.DOMAIN */
	char rec[2048]; /* the record to publish for the key on disk */
};

/*
 * Check every key of dom in STATE/dkim (dkim check's logic), calling
 * fn for each: the number of keys, or -1 after a message.
 */
int cli_dkim_check_domain(const struct conf *c, struct cli_resolver *r,
    const char *dom, void (*fn)(const struct cli_dkim_check *, void *),
    void *arg);

#endif
