/*
 * fs/file: durable files, the one copy of the steps behind docs/design.md
 * principle 1 (a 250 means the message is on stable storage).  Maildir
 * (deliver/maildir.c), the queue (queue/spool.c), the group commit of
 * local deliveries (store/store.c) and the self-signed TLS pair
 * (tls/tls.c) write through these functions.
 *
 * Each function does one durable step the way every writer must: files
 * are created O_EXCL|O_NOFOLLOW 0600 (a collision is an error, never an
 * overwrite), written whole (short writes and EINTR resumed), fsync'ed
 * when asked (fdatasync: a new file's size and blocks are data-relevant
 * metadata, so the content is as durable as with fsync, without a
 * separate write of timestamps only), and closed with the result checked (NFS
 * reports write errors at close).  Whether to fsync is an explicit `sync`
 * argument: a caller that makes a whole batch durable with one syncfs() passes
 * false.
 *
 * Errors: 0, or -1 with errno of the failed system call (kept across the
 * cleanup).  Functions of several steps also name the failed step in
 * *step_out ("create", "chmod", "write", "fsync", "stat", "close",
 * "mkdir", "link"), so the caller writes one message with its own context
 * (queue id, mailbox) and logs it once.  Nothing here logs.
 *
 * `who` names the caller ("maildir", "spool", "tls") for the test build's fault
 * hook and nothing else.
 *
 * Owns: nothing (steps on descriptors it is handed).  May call: libc and
 * util only; called by deliver, queue, store, tls and the server's fault
 * hooks.
 */
#ifndef TERN_FS_FILE_H
#define TERN_FS_FILE_H

#include <stdbool.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "util/util.h"

/* Write all of iov to fd (any number of iovecs).  A write that makes no
 * progress fails with EIO, so a full device never spins. */
int file_write_all(
    const char *who, int fd, const struct iovec *iov, int iovcnt) WUR;

/*
 * Create dir_fd/name (O_EXCL, 0600, never through a symlink), write iov,
 * fsync when sync, fstat into st_out when not NULL, close.  On failure the
 * name is removed again (unless the create itself failed, e.g. EEXIST: the
 * name is someone else's), so dir_fd holds nothing of this call.
 */
int file_write_new(const char *who, int dir_fd, const char *name,
    const struct iovec *iov, int iovcnt, bool sync, struct stat *st_out,
    const char **step_out) WUR;

/* file_write_new, with the file's mode exactly mode whatever the umask
 * (fchmod'ed before the write): a file other users must read. */
int file_write_new_mode(const char *who, int dir_fd, const char *name,
    mode_t mode, const struct iovec *iov, int iovcnt, bool sync,
    struct stat *st_out, const char **step_out) WUR;

/* fsync a directory: the entries made or removed in it are durable. */
int file_sync_dir(const char *who, int dir_fd) WUR;

/*
 * Make parent/name (0700 less the umask) and fsync parent, so the new
 * entry survives a crash.  EEXIST is success and parent is fsync'ed then
 * too: another process may have won the race and not synced yet.
 */
int file_mkdir(
    const char *who, int parent, const char *name, const char **step_out) WUR;

/*
 * Hard-link from_dir/from as to_dir/to and, when sync, fsync to_dir: only
 * then is the name durable.  When that fsync fails the new name is
 * unlinked again: the caller answers 4xx and the sender retries, so a
 * reader must not see (and the retry must not duplicate) a name we could
 * not make durable.  *step_out is "link" or "fsync".
 */
int file_link(const char *who, int from_dir, const char *from, int to_dir,
    const char *to, bool sync, const char **step_out) WUR;

/* renameat2(2) with flags (RENAME_NOREPLACE, RENAME_EXCHANGE); the caller
 * fsyncs the directories (the spool shares those fsyncs between threads). */
int file_rename(const char *who, int from_dir, const char *from, int to_dir,
    const char *to, unsigned flags) WUR;

/* unlinkat(2) of a file; the caller fsyncs the directory when it must. */
int file_unlink(const char *who, int dir_fd, const char *name) WUR;

/* syncfs(2): every file and name on fd's file system made before it began
 * is durable (the group commit of local deliveries). */
int file_syncfs(const char *who, int fd) WUR;

#ifdef TERN_FAULT_INJECTION
/*
 * Tests only (compiled out otherwise): called before each step with the
 * caller's who; a nonzero return is an errno value that step then fails
 * with.  Steps: "create" (the O_EXCL open), "write" (each writev),
 * "fsync" (a file), "close", "mkdir", "fsync_dir" (any directory fsync),
 * "link", "rename", "unlink", "syncfs".
 */
extern int (*file_fault_hook)(const char *who, const char *step);
/* The hook's answer for (who, step): 0, or -1 with errno set to it.
 * FILE_FAULT is how a durable step asks (the log-structured queue's
 * steps, src/queue/logspool.c, ask it too); in every other build it is
 * the constant 0. */
int file_fault(const char *who, const char *step);
#define FILE_FAULT(who, step) file_fault(who, step)
#else
#define FILE_FAULT(who, step) ((void)(who), 0)
#endif

#endif
