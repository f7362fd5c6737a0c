/*
 * reqtls: RFC 8689's decisions for outbound delivery (reqtls.h).  Pure
 * functions of the destination and the job: no I/O, no logging; the
 * session applies them (smtp_client: the 5.7.10 / 5.7.30 refusals and the
 * MAIL parameter).
 */
#include "smtp/smtp.h"
#include "deliver/remote_int.h"
#include "deliver/reqtls.h"

bool
reqtls_hop_policy(const struct rdest *d, const struct tlspol *pol)
{
	if (d->lmtp)
		return false;
	if (pol != NULL)
		return pol->dane ||
		       (pol->source == TLSPOL_SRC_MTA_STS && pol->verify_ca);
	return d->smarthost && d->r->sm_tls == REMOTE_TLS_VERIFY;
}

bool
reqtls_job_tls_optional(const struct rjob *j)
{
	return smtp_tls_optional(j->requiretls, j->tls_required_no);
}
