/*
 * spf_int.h: private to src/mailauth/spf*.c (and the tests and fuzzer):
 * the parsed record and the macro scanner shared by the parser and the
 * evaluator.
 */
#ifndef TERN_MAILAUTH_SPF_INT_H
#define TERN_MAILAUTH_SPF_INT_H

#include "mailauth/spf.h"

/* octets of expansion output kept (a domain keeps its right end) */
#define SPF_EXPAND_WINDOW 2048

enum spf_kind {
	SPF_M_ALL = 0,
	SPF_M_INCLUDE,
	SPF_M_A,
	SPF_M_MX,
	SPF_M_PTR,
	SPF_M_IP4,
	SPF_M_IP6,
	SPF_M_EXISTS,
	SPF_MOD_REDIRECT,
	SPF_MOD_EXP,
	SPF_MOD_UNKNOWN,
};

/* One term; text and spec point into the record. */
struct spf_term {
	enum spf_kind kind;
	char qual;	  /* + - ~ ? */
	const char *text; /* the whole term, for spf_mechanism() */
	size_t text_len;
	const char *spec; /* domain-spec, or NULL for the current domain */
	size_t spec_len;
	int c4, c6;	   /* CIDR lengths, -1 when absent */
	struct spf_ip net; /* ip4 / ip6 */
};

struct spf_parsed {
	struct spf_term terms[SPF_TERMS_MAX]; /* mechanisms and the two */
	size_t n;			      /* known modifiers, in order */
	const struct spf_term *redirect, *exp;
};

struct spf_macro {
	char letter; /* 0: a literal octet in lit */
	char lit;
	bool space20; /* %- */
	bool has_digits, reverse;
	unsigned digits;
	char delims[8];
	size_t ndelim;
};

int spf_record_parse(const char *rec, size_t len, struct spf_parsed *p,
    char *err, size_t errlen);
bool spf_is_record(const char *rec, size_t len);
bool spf_macro_next(const char *in, size_t len, size_t *i, struct spf_macro *m);
bool spf_macro_string_ok(const char *in, size_t len, bool exp);
bool spf_domain_spec_ok(const char *in, size_t len);
bool spf_ip_match(const struct spf_ip *ip, const uint8_t *net, unsigned bits);
/* %{c} form of ip into out (at least 46 octets); its length */
size_t spf_ip_text(char *out, const struct spf_ip *ip);

#endif
