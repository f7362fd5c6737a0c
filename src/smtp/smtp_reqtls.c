/*
 * smtp_reqtls: the TLS-Required header field of RFC 8689 3, pure.  The
 * field's one defined value is "No": the sender asks that recipient-domain
 * TLS policies (DANE, MTA-STS) be ignored for this message.  Any other
 * value is not a request and is ignored, as is the field when the message
 * came with REQUIRETLS (RFC 8689 4.1: the MAIL parameter wins).
 *
 * Only the header is read (addr_hdr_end); the first TLS-Required field
 * decides, its value unfolded and compared without case.
 */
#include <stdbool.h>
#include <stddef.h>

#include "addr/addr.h"
#include "smtp/smtp.h"
#include "util/util.h"

/* "No", folded or not: the longest value worth unfolding to compare */
#define REQTLS_VALUE_MAX 16

bool
smtp_tls_required_no(const char *msg, size_t len)
{
	struct addr_hdr_field f;
	char v[REQTLS_VALUE_MAX + 1];
	size_t end = addr_hdr_end(msg, len, NULL);
	int n;

	if (!addr_hdr_find(msg, end, "TLS-Required", &f))
		return false;
	if (f.value_len > REQTLS_VALUE_MAX)
		return false; /* longer than any folding of "No" we accept */
	n = addr_hdr_unfold(f.value, f.value_len, v, sizeof(v));
	return n == 2 && str_case_eq(v, 2, "No");
}

bool
smtp_tls_optional(bool requiretls, bool tls_required_no)
{
	return tls_required_no && !requiretls;
}
