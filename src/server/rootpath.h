/*
 * rootpath: may ternd, still root, open this path by name?
 *
 * Owns: the root-only path check.  May call: util and libc (lstat, stat,
 * readlink).  Called by server/main.c before the privilege drop.
 *
 * ternd starts as root and reads a few files the admin names (tls.cert,
 * tls.key, relay.smarthost_password_file) before it drops to `user`,
 * because such files are often readable by root only.  Opening a path by
 * name follows every symbolic link on it, so a path that passes through a
 * directory `user` can write (state_dir, the user's home, a sticky /tmp)
 * would let that user point root at any file: ternd would then load, say,
 * another service's private key.  A path is root-only when every
 * directory it passes through, following its links, is owned by root and
 * writable by nobody else; only such a path is opened as root.  Anything
 * else is opened after the drop, with `user`'s own rights.
 */
#ifndef TERN_ROOTPATH_H
#define TERN_ROOTPATH_H

#include <stdbool.h>
#include <stddef.h>

/*
 * true: path resolves (through at most 40 links) to an existing file
 * through root-owned directories that neither group nor others may write
 * (the path itself too when it names a directory; a file may belong to
 * anyone: whoever owns it can change what it says, not where it is).
 * false, with why in err (naming the directory): any other answer,
 * including a path that does not resolve.
 */
bool rootpath_root_only(const char *path, char *err, size_t errlen);

#endif
