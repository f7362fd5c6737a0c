/*
 * fs/versions: STATE/versions, the version of each durable format that
 * has no place of its own for one (docs/formats.md).  The queue, the
 * SQLite files, the PostgreSQL tables and screen.cache carry their
 * version inside; these do not, since their bytes are fixed by others:
 * the DKIM key store (PKCS#8 PEM files and the active file under
 * STATE/dkim), STATE/srs.key (postsrsd's key file) and the TLS pair in
 * STATE/tls.
 *
 * The file is text, one "NAME VERSION" line per format (a name of
 * [a-z0-9._-], a version 1 to 999999999 without leading zeros).  A format
 * that is not listed, and every format when the file is absent, is at
 * version 1: what every release up to v0.1.0 wrote, so an old state
 * directory needs no migration.  A release that changes one of these
 * formats migrates it and then writes its new version here; a tern that
 * finds a version above its own refuses to start (it would misread the
 * format), naming the file, the format and both versions.  A name this
 * tern does not know is a format it does not read: ignored.  A file that
 * is not of this form is refused too (it cannot be told from a newer one).
 *
 * Owns nothing.  May call: libc, util.  Called by ternd's start-up and
 * tern dkim, before either touches these formats.
 */
#ifndef TERN_FS_VERSIONS_H
#define TERN_FS_VERSIONS_H

#include <stddef.h>

#include "util/util.h"

#define STATE_VERSIONS_FILE "versions"
#define STATE_VERSIONS_MAX  4096 /* octets: a few lines */

/* The formats this tern reads from the file and the newest version of
 * each it knows; NULL-terminated. */
struct state_format {
	const char *name;
	unsigned version;
};
extern const struct state_format state_formats[];

/*
 * Check the text of STATE/versions (pure): 0 when every format this tern
 * knows is at a version it reads, else -1 with err ("line N: ..." for a
 * malformed line, or the format and both versions).
 */
int state_versions_parse(
    const char *text, size_t len, char *err, size_t errlen) WUR;

/* Read and check STATE_VERSIONS_FILE under state_dir (never following a
 * link): 0 when it is absent or fine, else -1 with err naming the file. */
int state_versions_check(const char *state_dir, char *err, size_t errlen) WUR;

#endif
