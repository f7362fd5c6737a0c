/*
 * psl: the Public Suffix List and the organisational domain of a name
 * (RFC 7489 3.2), for DMARC alignment and policy discovery.
 *
 * Owns: struct psl, a read-only hash set of the list's rules.  May call:
 * util only.  psl_load_file() reads a file (the one I/O of the module, done
 * once at start-up); psl_parse() and every lookup are pure, allocate nothing
 * and touch only the caller's memory, so a loaded list may be shared by any
 * number of threads without locks.
 *
 * The list is Debian's publicsuffix package (PSL_DEFAULT_PATH), in the
 * format of publicsuffix.org: one rule per line, "*." wildcards, "!"
 * exceptions, comments, and the ICANN and PRIVATE sections.  Rules written
 * in Unicode (U-labels) are also stored as their A-labels (RFC 3492
 * Punycode with the "xn--" prefix), because names reach DNS, and so this
 * module, as A-labels; a name written in UTF-8 still matches the rule as
 * written.  Matching is ASCII case-insensitive and a trailing dot is
 * ignored.
 *
 * Which sections: DMARC uses the whole list by default (PRIVATE included).
 * RFC 7489 3.2 says only "a public suffix list"; a PRIVATE entry such as
 * github.io marks a boundary below which names belong to different owners,
 * so treating a.github.io and b.github.io as one organisation would let one
 * owner pass relaxed alignment for another's From.  PSL_ICANN_ONLY is there
 * for a caller that decides otherwise.
 */
#ifndef TERN_MAILAUTH_PSL_H
#define TERN_MAILAUTH_PSL_H

#include <stdbool.h>
#include <stddef.h>

#include "util/util.h"

#define PSL_DEFAULT_PATH "/usr/share/publicsuffix/public_suffix_list.dat"
/* a domain name of 253 octets without its trailing dot (RFC 1035 2.3.4) */
#define PSL_NAME_MAX  253
#define PSL_LABEL_MAX 63
/* refuse a list file larger than this (the 2023 list is 246 kB) */
#define PSL_FILE_MAX (16u * 1024 * 1024)
/* rules kept; the 2023 list has about 9,400 */
#define PSL_RULES_MAX 200000

/* flags for the lookups */
#define PSL_ICANN_ONLY 0x1 /* ignore the rules of the PRIVATE section */

struct psl;

/*
 * Build the rule set from the text of a list file (len octets, no NUL
 * needed).  Returns NULL when the text holds no rule, or more than
 * PSL_RULES_MAX, or len > PSL_FILE_MAX.  Lines that are not rules (bad
 * UTF-8, empty labels, over-long names) are skipped and counted in
 * *skipped_out (may be NULL).
 */
struct psl *psl_parse(const char *text, size_t len, size_t *skipped_out);
/* Read and parse a list file.  0, or -1 with errno set (EINVAL: no rules). */
int psl_load_file(const char *path, struct psl **out) WUR;
void psl_free(struct psl *p);
size_t psl_rule_count(const struct psl *p);

/*
 * The organisational domain of name (len octets, trailing dot allowed):
 * the longest public suffix the list gives it (an exception rule wins; no
 * rule at all means the last label, the implicit "*" rule) plus one more
 * label, written to out lower-cased (ASCII) without a trailing dot.  When
 * the name is itself a public suffix ("co.uk"), there is no further label
 * and the name itself is its organisational domain (what a policy lookup at
 * that name needs).  Returns 0, or -1 when name is not a domain name (empty
 * or over-long label, over PSL_NAME_MAX, control bytes or space) or does
 * not fit outlen.
 */
int psl_org_domain(const struct psl *p, const char *name, size_t len,
    unsigned flags, char *out, size_t outlen) WUR;
/*
 * Whether the name is exactly a public suffix (so a registrant's domain is
 * one label longer).  false for a name that is not a domain name.
 */
bool psl_is_public_suffix(
    const struct psl *p, const char *name, size_t len, unsigned flags);

/*
 * RFC 3492 Punycode of one label given in UTF-8 (len octets), written as
 * "xn--..." into out; a label of ASCII only is copied lower-cased.
 * Returns the length written, or -1 on bad UTF-8 or when out is too small.
 * Exposed for the tests; the caller of lookups never needs it.
 */
int psl_label_to_alabel(
    const char *label, size_t len, char *out, size_t outlen) WUR;

#endif
