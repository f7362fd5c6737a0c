/*
 * tern tlsrpt: SMTP TLS Reporting (RFC 8460).
 *
 *   tern tlsrpt send --now   ask ternd (control.sock, TLSRPT-SEND) to end
 *                            the current period and send every domain's
 *                            report now, instead of at the next
 *                            tlsrpt.report_interval
 *
 * The counts live in ternd's memory and STATE/tlsrpt.state
 * (server/tlsrptd.h); nothing here reads them.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "cli/cli.h"

static const char tr_usage[] = "usage: tern tlsrpt send --now\n";

int
cli_tlsrpt(const struct conf *c, int argc, char **argv)
{
	static const char *const keys[] = {
	    "domains", "mailed", "posted", "skipped", "failed"};
	int64_t v[5];
	int rc;

	if (argc != 3 || strcmp(argv[1], "send") != 0 ||
	    strcmp(argv[2], "--now") != 0) {
		fputs(tr_usage, stderr);
		return EX_USAGE;
	}
	if ((rc = cli_control_ints(c, "TLSRPT-SEND", keys, v, 5)) != 0)
		return rc;
	printf("domains %" PRId64 ", reports mailed %" PRId64
	       ", posted %" PRId64 ", skipped %" PRId64 ", failed %" PRId64
	       "\n",
	    v[0], v[1], v[2], v[3], v[4]);
	return v[4] > 0 ? 1 : 0;
}
