/*
 * acme/client: the I/O of an ACME order, with libcurl: runs an acme_sm
 * (acme.h), sending what it asks and waiting as it says.  Blocking: call
 * it from a worker thread, never the loop (server/acmed.c does).
 *
 * Owns: one libcurl easy handle per request.  May call: acme, util,
 * libcurl.  curl_global_init must have run before any thread calls it
 * (sts_fetch_global_init does, at start-up).
 *
 * Every request: HTTPS only, no redirect followed, no proxy from the
 * environment, the server's certificate checked against ca_file/ca_path
 * (tls.ca_file, tls.ca_path; else the system store), the answer at most
 * ACME_JSON_MAX octets (ACME_CHAIN_MAX for the chain; more fails the
 * order, never a cut answer), each header kept at most
 * ACME_CLIENT_HEADER_MAX octets, the whole request within
 * ACME_CLIENT_TIMEOUT_S seconds and no slower than the low-speed floor.
 * The name is resolved by libcurl (the system resolver): the directory
 * is the administrator's choice, not a peer's.
 */
#ifndef TERN_ACME_CLIENT_H
#define TERN_ACME_CLIENT_H

#include <stdatomic.h>

#include "acme/acme.h"

#define ACME_CLIENT_TIMEOUT_S  30
#define ACME_CLIENT_HEADER_MAX ACME_URL_MAX
#define ACME_CLIENT_LOW_SPEED  64 /* octets/s ... */
#define ACME_CLIENT_LOW_TIME   10 /* ... for this long: cut off */

struct acme_client_conf {
	const char *ca_file, *ca_path; /* NULL: the system store */
	/* set from another thread to abort within about a second */
	const atomic_bool *cancel;
};

/*
 * Run sm until it asks to publish its challenges (ACME_SM_PUBLISH), is
 * done (ACME_SM_DONE) or fails (ACME_SM_FAIL: a transport error fails sm
 * too, so acme_sm_error() always has the reason).
 */
enum acme_act acme_client_run(
    struct acme_sm *sm, const struct acme_client_conf *cc);

#endif
