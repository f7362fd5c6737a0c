/*
 * deliver: putting a message where it goes.  This part: Maildir
 * (maildir(5)).  Functions here block on the disk; ternd calls them from
 * its worker threads, never from the event loop.
 *
 * Durability rule (docs/design.md, principle 1): maildir_deliver returns 0 only
 * when the message file and its directory entry in every new/ are on
 * stable storage (file fsync'ed, each new/ fsync'ed, and any directory it
 * had to create fsync'ed into its parent).
 *
 * Owns: Maildir writes (maildir.c).  May call: fs, util; called by the
 * store, the server (start-up sweep, LMTP checks) and the CLI (Maildir
 * creation).
 */
#ifndef TERN_DELIVER_H
#define TERN_DELIVER_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>
#include <time.h>

struct maildir_box {
	/* Relative to the mail root ("example.org/ben"), each component
	 * opened with O_NOFOLLOW beneath the root and created (0700) when
	 * missing; or an absolute path (a user's own Maildir), whose last
	 * component and tmp/new/cur are opened with O_NOFOLLOW. */
	const char *path;
	/* NULL: the mailbox itself (INBOX); else a Maildir++ folder inside
	 * it, ".Junk": made with its tmp/new/cur and the maildirfolder file
	 * (and the mailbox's own) when missing.  One "." and a name. */
	const char *folder;
	/* With folder NULL: a Maildir++ folder (".shop", plus-addressing)
	 * used when it exists as a directory; never made: when it is missing
	 * the message goes to the mailbox itself.  Same rules as folder. */
	const char *subfolder;
};

/*
 * Deliver one message to n mailboxes: the content (iov, e.g. the headers
 * tern adds then the body) is written once into the first mailbox's tmp/
 * under a maildir(5) unique name, fsync'ed, then hard-linked into each
 * new/ (a copy if a link is impossible, e.g. another file system), each
 * new/ fsync'ed, and the tmp/ name removed.  Nothing is left in tmp/ on
 * failure.  root_fd is an O_DIRECTORY descriptor of STATE/mail.
 * Returns 0, or -1 with errno set and err filled with text naming the
 * mailbox and the step ("fsync new/ of example.org/ben: No space left").
 * The unique name used is written to name_out.
 */
int maildir_deliver(int root_fd, const struct maildir_box *boxes, size_t n,
    const struct iovec *iov, int iovcnt, char *name_out, size_t name_len,
    char *err, size_t errlen);

/*
 * Group commit: the same delivery in two phases whose durability the
 * caller provides for a whole batch at once:
 *
 *   st = maildir_stage(...)      write tmp/ (no fsync)        for each
 *   syncfs(root_fd)              the files are durable         once
 *   maildir_publish(st, ...)     link into every new/          for each
 *   syncfs(root_fd)              the names are durable: 250    once
 *
 * Linking only after the first syncfs keeps maildir(5)'s promise that
 * new/ never holds a partial file, even across a crash.  boxes and iov
 * must stay valid until publish or abort; both free st.  Only for
 * mailboxes beneath root_fd's file system (relative paths).
 */
struct maildir_staged;
struct maildir_staged *maildir_stage(int root_fd,
    const struct maildir_box *boxes, size_t n, const struct iovec *iov,
    int iovcnt, char *name_out, size_t name_len, char *err, size_t errlen);
int maildir_publish(struct maildir_staged *st, char *err, size_t errlen);
void maildir_abort(struct maildir_staged *st);

/*
 * Remove what a killed ternd left in tmp/ of the mailboxes beneath the mail
 * root (DOMAIN/LOCAL/tmp; a user's own absolute Maildir is not visited):
 * regular files named as maildir_deliver names them, on this host, by
 * another process than this one, last changed before `before`.  Anything
 * else (a mail client's or another MDA's files) is left alone.  Returns
 * the files removed; *mailboxes gets the tmp/ directories seen.
 */
size_t maildir_sweep_tmp(
    int root_fd, const struct timespec *before, size_t *mailboxes);

/* Make STATE/mail/.../tmp,new,cur for path now (tern user add uses it). */
int maildir_create(int root_fd, const char *path, char *err, size_t errlen);

/*
 * The host part of maildir(5) unique names: host with '/' written as the
 * four characters \057 and ':' as \072.  Returns 0, or -1 (ENAMETOOLONG)
 * when it does not fit outlen with its NUL.  Exposed for tests, with
 * MAILDIR_HOST_MAX (an out that always fits) and MAILDIR_KEEP (the
 * mailboxes of one call whose descriptors stay open between its passes,
 * which tests/unit/test_maildir.c goes past).
 */
#define MAILDIR_HOST_MAX (4 * HOST_NAME_MAX + 1) /* every byte escaped */
#define MAILDIR_KEEP	 16 /* mailboxes whose fds span both passes */
int maildir_escape_host(char *out, size_t outlen, const char *host)
    __attribute__((warn_unused_result));

/*
 * The durable steps (mkdir, create, write, fsync, close, link, the fsyncs
 * of directories) are fs/file.h's; its test build's fault hook sees
 * them with who "maildir".
 */

#endif
