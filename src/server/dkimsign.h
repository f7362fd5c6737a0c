/*
 * dkimsign: ternd's DKIM signer (docs/mailauth.md, "DKIM signing"): the
 * step that puts DKIM-Signature fields on a message tern is about to
 * store, when it originates it (authenticated submission, sendmail, its
 * own DSNs) and its From domain, or else its envelope sender's, has an
 * active key.
 *
 * Owns: the signing request hung on a struct inject (store.h's prepare
 * hook), and ternd's current keyring (dkimsign_reload).  May call: store,
 * mailauth, addr, util, server/dkimkeys.h.
 *
 * Threads: dkimsign_attach and dkimsign_reload on the loop; the signing
 * itself runs on the worker that stores the message, before its first
 * write, so the ~1 ms of an RSA signature never blocks the loop.  A
 * signing failure never loses the message: it is stored unsigned and the
 * error line says so (action=stored_unsigned).
 */
#ifndef TERN_SERVER_DKIMSIGN_H
#define TERN_SERVER_DKIMSIGN_H

#include "store/store.h"

struct server;

/*
 * Sign ij when it is stored, if dkim.sign is on and a key may apply; the
 * From domain is read from the content on the worker.  sender is the
 * envelope sender ("" for <>), id the queue id, sid the session ("" for
 * none): all three are copied.
 */
void dkimsign_attach(struct server *s, struct inject *ij, const char *sender,
    const char *id, const char *sid);
/* (Re)load STATE/dkim into s->dkim: start, SIGHUP, DKIM-RELOAD. */
void dkimsign_reload(struct server *s);

#endif
