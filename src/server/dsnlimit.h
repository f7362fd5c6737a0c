/*
 * dsnlimit: how many DSNs tern originates, per hour, for the mail of one
 * client address and to one domain (limits.dsn_per_client,
 * limits.dsn_per_domain), so that the MX port cannot be used to make tern
 * send reports to forged senders (backscatter).  docs/security.md.
 *
 * Owns: struct dsn_limit (two rate tables and their key).  May call:
 * rate/rate.h, util/clientkey.h, conf.  Called by server/qmgr.c.
 *
 * Applies to success and delay reports of mail that came over the network
 * without AUTH; failure reports, and everything from authenticated or
 * local (sendmail) clients, are never limited.  Event loop only.
 */
#ifndef TERN_SERVER_DSNLIMIT_H
#define TERN_SERVER_DSNLIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "conf/conf.h"

struct dsn_limit;

struct dsn_limit *dsn_limit_new(const struct conf *cf);
void dsn_limit_free(struct dsn_limit *dl); /* NULL ok */

/*
 * May a DSN to sender (its domain counts) caused by mail from client_ip
 * go out at now_ms?  Yes: it is counted against both.  No: *which_out is
 * "client" or "domain", the limit that stopped it, and nothing is counted.
 */
bool dsn_limit_allow(struct dsn_limit *dl, const char *client_ip,
    const char *sender, uint64_t now_ms, const char **which_out);

/* A reload: cf's limits from now_ms on; every count is kept, so DSNs sent
 * in the last hour count against the new limits (rate.h). */
void dsn_limit_reload(
    struct dsn_limit *dl, const struct conf *cf, uint64_t now_ms);

#endif
