/*
 * sts/fetch: the MTA-STS policy fetch over HTTPS (RFC 8461 3.3), with
 * libcurl.  Blocking: call it from a worker thread, never the loop
 * (deliver/mtasts.c runs it on its own small pool).
 *
 * Owns: one libcurl easy handle per call.  May call: sts (the parser),
 * util, libcurl.  sts_fetch_global_init() once, before any thread calls
 * sts_fetch(); it refuses a libcurl whose init is not thread-safe.
 *
 * What the RFC asks and how: the URL is
 * https://mta-sts.DOMAIN/.well-known/mta-sts.txt (port 443, no other
 * scheme); the certificate must chain to the trust store given (tls.ca_file
 * / tls.ca_path, else the system store) and name mta-sts.DOMAIN; no
 * redirect is followed (a 3xx is an error); only 200 is a policy; the
 * media type must be text/plain (parameters allowed); the body stops at
 * STS_POLICY_MAX octets (more is an error, never a cut policy); the whole
 * fetch has a deadline and a low-speed floor, so a server that sends a
 * byte at a time is cut off.  The name is never resolved by libcurl: the
 * caller resolves it with tern's own resolver (dns.servers) and hands the
 * addresses in (CURLOPT_RESOLVE).  No proxy from the environment is used.
 */
#ifndef TERN_STS_FETCH_H
#define TERN_STS_FETCH_H

#include <stdatomic.h>
#include <stddef.h>

#include "util/util.h"
#include "sts/sts.h"

/* below STS_FETCH_LOW_SPEED octets/s for STS_FETCH_LOW_TIME s: cut off */
#define STS_FETCH_LOW_SPEED 256
#define STS_FETCH_LOW_TIME  5
#define STS_FETCH_ADDRS_MAX 20 /* addresses handed to libcurl */

/* What went wrong, as the RFC 8460 result-type a report would name. */
enum sts_fetch_status {
	STS_FETCH_OK,
	STS_FETCH_ERROR,   /* sts-policy-fetch-error: network, HTTP, size,
			      media type, timeout */
	STS_FETCH_WEBPKI,  /* sts-webpki-invalid: the certificate */
	STS_FETCH_INVALID, /* sts-policy-invalid: the body does not parse */
};

struct sts_fetch_req {
	const char *domain; /* the policy domain, lower case */
	/* the addresses of mta-sts.DOMAIN as text, "192.0.2.1", "2001:db8::1"
	 */
	const char *const *addrs;
	size_t naddrs;
	const char *ca_file, *ca_path; /* NULL: the system store */
	unsigned timeout_s;	       /* the whole fetch */
	/* set (from another thread) to abort: the fetch ends within about
	   a second, STS_FETCH_ERROR; NULL: never */
	const atomic_bool *cancel;
};

/* curl_global_init; 0, or -1 with err filled. */
int sts_fetch_global_init(char *err, size_t errlen) WUR;

/*
 * Fetch and parse.  body gets the policy as served (a buf the caller
 * made, at least STS_POLICY_MAX + 1 large), pol the parsed policy on
 * STS_FETCH_OK; err the reason otherwise (NUL terminated, cut).
 */
enum sts_fetch_status sts_fetch(const struct sts_fetch_req *req,
    struct buf *body, struct sts_policy *pol, char *err, size_t errlen);

/* "sts-policy-fetch-error", ...; "" for OK. */
const char *sts_fetch_result_type(enum sts_fetch_status st);

#endif
