/*
 * srsmap: the daemon's SRS state: the secrets of STATE/srs.key and the
 * [srs] settings, as the struct srs of mailauth/srs.h that rewrites
 * senders (conn.c, connsrs.c) and reverses SRS addresses (connsrs.c at
 * RCPT, qmgr.c for the DSNs tern makes).
 *
 * Owns: struct srsmap and the key file's bytes (wiped by srsmap_free).
 * May call: mailauth/srs, fs, conf, util.  Made once at start-up, after
 * the privilege drop and before the sandbox; read-only afterwards, so
 * any thread may use it.
 *
 * STATE/srs.key: one secret a line (postsrsd's secret file form: a file
 * copied from postsrsd works here and the other way round); the first
 * signs, every one is accepted on reversal (key rotation: put a new line
 * first, drop the old one after srs.max_age days).  Made at first start
 * with 32 random octets in base64, 0600; a key file that is a link, not
 * a regular file, not ternd's user's own or readable by group or others
 * stops the start (docs/security.md).
 */
#ifndef TERN_SERVER_SRSMAP_H
#define TERN_SERVER_SRSMAP_H

#include <stddef.h>
#include <time.h>

#include "mailauth/srs.h"

struct conf;
struct srsmap;

#define SRSMAP_KEY_FILE "srs.key"
#define SRSMAP_FILE_MAX 4096 /* octets of STATE/srs.key */

/* The key loaded (made when missing); NULL when srs.enable = no.  Fatal
 * (start-up) when the file is unusable. */
struct srsmap *srsmap_open(const struct conf *cf);
void srsmap_free(struct srsmap *m); /* NULL ok */
const struct srs *srsmap_srs(const struct srsmap *m);

/*
 * Where an SRS address at our SRS domain leads, at time now: out gets the
 * original address (an SRS1 of our own first hop is followed through to
 * its SRS0 once more).  SRS_NOT_SRS for any other address, m NULL too.
 */
enum srs_status srsmap_reverse(const struct srsmap *m, const char *addr,
    time_t now, char *out, size_t outlen);

#endif
