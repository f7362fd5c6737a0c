/*
 * version: the release and the source revision this binary was built from.
 *
 * Owns nothing but two strings.  May call: nothing.  The release comes
 * from the VERSION file at the top of the tree and the revision from git
 * (`git describe`), both handed to the compiler by the Makefile for
 * version.c alone; a tree without git (a source tarball, the copy that
 * `make deb` builds) says "unknown" unless REV= names it.  `tern
 * --version`, `ternd --version` and ternd's event=ready line print them.
 */
#ifndef TERN_VERSION_H
#define TERN_VERSION_H

const char *tern_version(void);	 /* "0.2.0" */
const char *tern_revision(void); /* "v0.1.0-61-g1a2b3c4", or "unknown" */

#endif
