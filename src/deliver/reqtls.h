/*
 * reqtls: the outbound side of RFC 8689 (REQUIRETLS and the TLS-Required
 * header field) for the delivery shell.  Two predicates, one decision
 * each, so that the TLS policies (DANE, MTA-STS) plug in here and nowhere
 * else:
 *
 *   reqtls_hop_policy()   is the next hop of d one that a policy names
 *                         and whose certificate the handshake must verify?
 *                         With a verified handshake and REQUIRETLS in the
 *                         peer's EHLO (smtp_client), a REQUIRETLS message
 *                         may go there.
 *   reqtls_job_tls_optional()  may recipient-domain TLS policies be
 *                         ignored for this job ("TLS-Required: No" and no
 *                         REQUIRETLS)?
 *
 * Owns nothing.  Called on the loop thread by remote.c; includes only
 * src/deliver/ headers.  See docs/tls-auth.md, "REQUIRETLS".
 */
#ifndef TERN_REQTLS_H
#define TERN_REQTLS_H

#include <stdbool.h>

#include "deliver/dest.h"
#include "deliver/job.h"
#include "deliver/tlspolicy.h"

/*
 * A smarthost with relay.smarthost_tls = verify (its CA file and name
 * checked, the handshake aborted otherwise), or an MX host whose policy
 * (pol, tlspolicy.h; NULL for the smarthost and LMTP) authenticates it
 * by DANE or by MTA-STS enforce (RFC 8689 4.2.1).  A certificate that
 * merely happens to verify is no policy, nor is a [tls_policy] verify
 * override (the MX name itself was not authenticated).  LMTP is the
 * final hop and never asks.
 */
bool reqtls_hop_policy(const struct rdest *d, const struct tlspol *pol);

/*
 * RFC 8689 5: the sender's TLS-Required: No lets the policy code deliver
 * despite a DANE or MTA-STS failure (opportunistic TLS is still tried);
 * ignored when the message came with REQUIRETLS (RFC 8689 4.1).  Nothing
 * consults it yet: tern has no recipient-domain policy before DANE and
 * MTA-STS, and relay.smarthost_tls is the administrator's, not the
 * recipient's, so it is never relaxed.
 */
bool reqtls_job_tls_optional(const struct rjob *j);

#endif
