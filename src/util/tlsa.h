/*
 * tlsa: TLSA records (RFC 6698 2.1) read out of a raw DNS answer, for
 * DANE on outbound SMTP (RFC 7672).  Pure: no I/O, unit tested
 * (tests/unit/test_tlsa.c) and fuzzed (fuzz/fuzz_tlsa.c).
 *
 * Owns: struct tlsa_rr and struct tlsa_set (plain data, no pointers).
 * May call: util/dnscache.h (dns_skip_name).  Asked by deliver/dns.c, which
 * hands a host's records to delivery in struct dns_host.
 *
 * tlsa_rdata_parse() sorts one record's RDATA into three outcomes:
 *   TLSA_USABLE     DANE-TA(2) or DANE-EE(3), selector Cert(0) or
 *                   SPKI(1), matching type SHA2-256(1) with 32 octets
 *                   of data, SHA2-512(2) with 64, or Full(0) with
 *                   1..TLSA_DATA_MAX octets;
 *   TLSA_UNUSABLE   well formed, but not something RFC 7672 lets an
 *                   SMTP client use: PKIX-TA(0) and PKIX-EE(1) (RFC 7672
 *                   3.1.3), unknown usages, selectors or matching types,
 *                   and Full(0) data longer than tern keeps;
 *   TLSA_MALFORMED  fewer than 4 octets, no data, or a digest of the
 *                   wrong length (RFC 7671 4.1 treats those as unusable
 *                   too; they are counted apart for TLS-RPT's
 *                   "tlsa-invalid").
 *
 * tlsa_msg_parse() walks a DNS message (RFC 1035 4.1): header, questions,
 * then every answer record of type TLSA (52) and class IN, whatever owner
 * name (the resolver followed any CNAME).  It never reads outside
 * msg[0..len) and follows no compression pointer (names are skipped).
 * The first TLSA_MAX usable records are kept; the rest are counted.
 */
#ifndef TERN_TLSA_H
#define TERN_TLSA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TLSA_TYPE     52 /* RR type (RFC 6698 7.1) */
#define TLSA_MAX      8	 /* usable records kept per RRset */
#define TLSA_DATA_MAX 64 /* octets of data kept: a SHA2-512 digest */
#define TLSA_SHA256   32 /* octets of a SHA2-256 digest */
#define TLSA_SHA512   64

enum tlsa_usage {
	TLSA_PKIX_TA = 0,
	TLSA_PKIX_EE = 1,
	TLSA_DANE_TA = 2,
	TLSA_DANE_EE = 3,
};

enum tlsa_verdict { TLSA_USABLE, TLSA_UNUSABLE, TLSA_MALFORMED };

struct tlsa_rr {
	uint8_t usage, selector, mtype;
	uint8_t len; /* octets of data, 1..TLSA_DATA_MAX */
	unsigned char data[TLSA_DATA_MAX];
};

struct tlsa_set {
	size_t n;	  /* usable records in rr[] */
	size_t unusable;  /* well formed records tern cannot use */
	size_t malformed; /* records of a wrong length */
	struct tlsa_rr rr[TLSA_MAX];
};

/* One record's RDATA; out is filled only for TLSA_USABLE. */
enum tlsa_verdict tlsa_rdata_parse(
    const unsigned char *rd, size_t len, struct tlsa_rr *out);

/* Every TLSA record of the answer section into set (zeroed first);
 * 0, or -1 when the message is malformed (set then holds nothing). */
int tlsa_msg_parse(const unsigned char *msg, size_t len, struct tlsa_set *set);

/* Records of the set at all: usable, unusable and malformed. */
size_t tlsa_set_count(const struct tlsa_set *set);

#endif
