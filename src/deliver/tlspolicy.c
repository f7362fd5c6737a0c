/*
 * tlspolicy: the outbound TLS policy of one MX host (see tlspolicy.h).
 *
 * Order (RFC 8461 2: DANE wins over MTA-STS; an administrator's override
 * wins over both, like Postfix's smtp_tls_policy_maps): override, DANE,
 * MTA-STS, opportunistic.  DANE applies to a host when the MX answer and
 * the host's addresses were validated and its TLSA answer was secure
 * (RFC 7672 2.2): usable records authenticate the peer; a secure RRset
 * of only unusable records still makes TLS mandatory (RFC 7672 2.2, "the
 * SMTP client MUST use TLS"); a failed TLSA lookup of such a host (bogus,
 * SERVFAIL, timeout) defers that host, never falls back to plaintext.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/util.h"
#include "deliver/tlspolicy.h"

struct tlspol_ent {
	char *domain; /* lower case; ".example.org": its subdomains */
	enum tlspol_level level;
};

struct tlspol_map {
	size_t n;
	struct tlspol_ent *ents;
};

static const char *const level_names[] = {
    [TLSPOL_NONE] = "none",
    [TLSPOL_MAY] = "may",
    [TLSPOL_ENCRYPT] = "encrypt",
    [TLSPOL_VERIFY] = "verify",
    [TLSPOL_DANE] = "dane",
    [TLSPOL_DANE_ONLY] = "dane-only",
};

int
tlspol_level_parse(const char *s, size_t n, enum tlspol_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]);
	     i++) {
		if (strlen(level_names[i]) == n &&
		    strncasecmp(level_names[i], s, n) == 0) {
			*out = (enum tlspol_level)i;
			return 0;
		}
	}
	return -1;
}

const char *
tlspol_level_name(enum tlspol_level l)
{
	if ((size_t)l >= sizeof(level_names) / sizeof(level_names[0]))
		return "?";
	return level_names[l];
}

const char *
tlspol_source_name(enum tlspol_source s)
{
	switch (s) {
	case TLSPOL_SRC_OPPORTUNISTIC:
		return "opportunistic";
	case TLSPOL_SRC_DANE:
		return "dane";
	case TLSPOL_SRC_MTA_STS:
		return "mta-sts";
	case TLSPOL_SRC_OVERRIDE:
		return "override";
	}
	return "?";
}

void
tlspol_map_free(struct tlspol_map *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->n; i++)
		free(m->ents[i].domain);
	free(m->ents);
	free(m);
}

/* One "domain:level" entry of p[0..n) into m; -1 if it is not one. */
static int
tp_entry(struct tlspol_map *m, const char *p, size_t n)
{
	const char *colon = memrchr(p, ':', n);
	struct tlspol_ent *e;
	enum tlspol_level l;

	if (colon == NULL || colon == p ||
	    tlspol_level_parse(colon + 1, n - (size_t)(colon + 1 - p), &l) != 0)
		return -1;
	e = &m->ents[m->n++]; /* sized by tlspol_map_parse */
	e->domain = xmalloc((size_t)(colon - p) + 1);
	memcpy(e->domain, p, (size_t)(colon - p));
	e->domain[colon - p] = '\0';
	str_lower(e->domain);
	e->level = l;
	return 0;
}

struct tlspol_map *
tlspol_map_parse(const char *spec)
{
	struct tlspol_map *m = xcalloc(1, sizeof(*m));
	const char *p = spec != NULL ? spec : "";
	size_t max = 1;

	for (const char *q = p; *q != '\0'; q++)
		max += *q == ',';
	m->ents = xcalloc(max, sizeof(*m->ents));
	while (*p != '\0') {
		const char *end = strchr(p, ',');
		size_t n = end != NULL ? (size_t)(end - p) : strlen(p);

		if (n > 0 && tp_entry(m, p, n) != 0) {
			tlspol_map_free(m);
			return NULL;
		}
		p += n;
		if (*p == ',')
			p++;
	}
	return m;
}

bool
tlspol_map_wants_dane(const struct tlspol_map *m)
{
	for (size_t i = 0; m != NULL && i < m->n; i++)
		if (m->ents[i].level == TLSPOL_DANE ||
		    m->ents[i].level == TLSPOL_DANE_ONLY)
			return true;
	return false;
}

/* The entry for domain: exact first, then the nearest ".parent". */
static bool
tp_find(const struct tlspol_map *m, const char *domain, enum tlspol_level *out)
{
	const char *d = domain;

	if (m == NULL)
		return false;
	for (size_t i = 0; i < m->n; i++)
		if (strcasecmp(m->ents[i].domain, domain) == 0) {
			*out = m->ents[i].level;
			return true;
		}
	while ((d = strchr(d, '.')) != NULL) {
		for (size_t i = 0; i < m->n; i++)
			if (strcasecmp(m->ents[i].domain, d) == 0) {
				*out = m->ents[i].level;
				return true;
			}
		d++;
	}
	return false;
}

static void
tp_set(struct tlspol *p, enum tlspol_source src, enum tlspol_level l)
{
	memset(p, 0, sizeof(*p));
	p->source = src;
	p->level = l;
	p->starttls = l != TLSPOL_NONE;
	p->require_tls = l >= TLSPOL_ENCRYPT;
	p->verify_ca = l == TLSPOL_VERIFY;
}

static void
tp_defer(struct tlspol *p, const char *why, const char *tlsrpt)
{
	p->defer = true;
	p->why = why;
	p->tlsrpt = tlsrpt;
}

/*
 * DANE for host h (RFC 7672 2.2), if it applies: true with p filled.
 * The MX answer and the host's addresses must have been validated.
 */
static bool
tp_dane(const struct dns_result *res, const struct dns_host *h,
    enum tlspol_source src, struct tlspol *p)
{
	if (!res->secure || !h->secure)
		return false;
	switch (h->tlsa) {
	case DNS_TLSA_FAILED:
		tp_set(p, src, TLSPOL_DANE);
		tp_defer(p,
		    "DANE: the TLSA lookup of this secure MX host failed "
		    "(bogus or unanswered): not delivering without it",
		    "dnssec-invalid");
		return true;
	case DNS_TLSA_SECURE:
		tp_set(p, src, TLSPOL_DANE);
		p->require_tls = true;
		/* no usable record: TLS still mandatory, unauthenticated */
		p->dane = h->tlsa_set.n > 0;
		return true;
	default:
		return false;
	}
}

void
tlspol_choose(const struct tlspol_map *m, const char *domain,
    const struct dns_result *res, size_t host, bool dnssec,
    const struct sts_policy *sts, struct tlspol *out)
{
	const struct dns_host *h = &res->hosts[host];
	enum tlspol_level l;

	if (tp_find(m, domain, &l)) {
		if (l != TLSPOL_DANE && l != TLSPOL_DANE_ONLY) {
			tp_set(out, TLSPOL_SRC_OVERRIDE, l);
			return;
		}
		if (dnssec && tp_dane(res, h, TLSPOL_SRC_OVERRIDE, out)) {
			out->level = l;
			return;
		}
		tp_set(out, TLSPOL_SRC_OVERRIDE,
		    l == TLSPOL_DANE ? TLSPOL_MAY : TLSPOL_DANE_ONLY);
		out->level = l;
		if (l == TLSPOL_DANE_ONLY)
			tp_defer(out,
			    "DANE is required for this domain (tls_policy "
			    "dane-only) and this MX host has no secure TLSA "
			    "records",
			    "dane-required");
		return;
	}
	if (dnssec && tp_dane(res, h, TLSPOL_SRC_DANE, out))
		return;
	/* MTA-STS after DANE (RFC 8461 2), before opportunistic TLS.  The
	   MX list was cut to the policy's hosts already (dest.c); enforce:
	   TLS with a certificate that a trusted CA issued for the MX host
	   (RFC 8461 4.2); testing: as opportunistic, failures reported */
	if (sts != NULL && sts->mode == STS_MODE_ENFORCE) {
		tp_set(out, TLSPOL_SRC_MTA_STS, TLSPOL_VERIFY);
		return;
	}
	if (sts != NULL && sts->mode == STS_MODE_TESTING) {
		tp_set(out, TLSPOL_SRC_MTA_STS, TLSPOL_MAY);
		return;
	}
	tp_set(out, TLSPOL_SRC_OPPORTUNISTIC, TLSPOL_MAY);
}
