/*
 * arcseal: ternd's ARC sealer (RFC 8617 5.1; docs/mailauth.md, "ARC in
 * ternd"): the set ternd adds on top of a message it received on the MX
 * port and forwards, through an alias, to a remote address.
 *
 * Owns: the sealing request hung on a struct inject (store.h's prepare
 * hook, chained after one already there, such as dkimsign's).  May call:
 * store, mailauth (arc.h), util, server/dkimkeys.h.
 *
 * The key: the active RSA key of srs.domain, else of the first of
 * `domains` that has one (RFC 8617 defines rsa-sha256 only, and the
 * verifiers in use know no other; an Ed25519-only domain is skipped).  No
 * such key: no seal, nothing logged but at debug level.
 *
 * Threads: arcseal_attach on the loop (the key is chosen there, in the
 * keyring snapshot it holds); the seal runs on the worker that stores the
 * message, before its first write, after the chained prepare step, on the
 * content as stored (head and body, copied once into one buffer: arc_seal
 * reads a whole message).  A sealing failure never loses the message: it
 * is stored and forwarded unsealed, and the error line says so.
 */
#ifndef TERN_SERVER_ARCSEAL_H
#define TERN_SERVER_ARCSEAL_H

#include "mailauth/arc.h"
#include "store/store.h"

struct server;

/*
 * Seal ij when it is stored, with cv and the resinfo text results (that
 * of our Authentication-Results, after "hostname;"); results, id and sid
 * are copied.  Nothing is attached when arc.seal is off or no key
 * applies.
 */
void arcseal_attach(struct server *s, struct inject *ij, const char *results,
    size_t results_len, enum arc_cv cv, const char *id, const char *sid);

#endif
