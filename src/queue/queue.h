/*
 * queue: tern's durable message store.  docs/queue.md is the contract: the
 * directories, the envelope file format, the state table, every
 * transition and what recovery does after a crash in each state.
 *
 *   queue_env_*   the envelope (sender, recipients with per-recipient
 *                 state, DSN parameters), its text encoding (envelope.c)
 *                 and its JSON form for `tern queue` (envjson.c); pure,
 *                 no I/O
 *   spool_*       the files under STATE/queue: commit, update, remove,
 *                 hold, release, load, scan, crash recovery (spool.c)
 *
 * Durability rule (docs/design.md, principle 1): spool_commit returns 0 only
 * when data/ID and env/ID are on stable storage, files and directory
 * entries; only then may the 250 be sent.  Every spool_* function blocks
 * on the disk and is thread-safe: ternd calls them from worker threads,
 * never from the event loop.
 *
 * Owns: the spool (STATE/queue) and struct queue_env.  May call: addr,
 * smtp (parameter types), fs, util; called by the store, the queue's
 * adapter and the CLI.
 */
#ifndef TERN_QUEUE_H
#define TERN_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <time.h>

#include "smtp/smtp.h"
#include "util/util.h"

/* ---- limits (octets, not counting the NUL) ------------------------------- */

/* The newest envelope version; each file is written in the oldest one
 * that can hold it (docs/queue.md): version 1 unless a DSN is owed (2)
 * or the message carries a REQUIRETLS / TLS-Required flag (3, the T
 * record). */
#define QUEUE_ENV_VERSION    3
#define QUEUE_ID_LEN	     ID_LEN	    /* 16 lowercase hex digits */
#define QUEUE_ADDR_MAX	     320	    /* 64 local + '@' + 255 domain */
#define QUEUE_ENVID_MAX	     SMTP_ENVID_MAX /* 100, RFC 3461 4.4 */
#define QUEUE_ORCPT_MAX	     SMTP_ORCPT_MAX /* 500, RFC 3461 4.2 */
#define QUEUE_ORCPT_TYPE_MAX 31		    /* "rfc822", "utf-8" */
#define QUEUE_HELO_MAX	     255
#define QUEUE_IP_MAX	     63
#define QUEUE_AUTH_MAX	     320
#define QUEUE_PROTO_MAX	     31
#define QUEUE_ENH_MAX	     15		 /* "5.7.1" */
#define QUEUE_TEXT_MAX	     512	 /* last reply text of a recipient */
#define QUEUE_RCPT_MAX	     100000	 /* recipients per envelope */
#define QUEUE_ENV_FILE_MAX   (64u << 20) /* an encoded envelope */

/* ---- the envelope -------------------------------------------------------- */

enum queue_rcpt_state {
	QUEUE_RCPT_PENDING = 0, /* still to be tried */
	QUEUE_RCPT_DELIVERED,	/* accepted by the mailbox or a DSN MTA */
	QUEUE_RCPT_FAILED,	/* permanent failure: bounced */
	QUEUE_RCPT_RELAYED,	/* handed to an MTA without DSN (RFC 3461) */
};

/*
 * A DSN that could not be made durable when it was due (its store failed):
 * the recipient keeps this mark until a later attempt stores the DSN, so
 * the report is never lost.  The values are the report kinds in qmgr's
 * order, plus one.
 */
enum queue_dsn_owed {
	QUEUE_DSN_NONE = 0,
	QUEUE_DSN_FAILURE,
	QUEUE_DSN_DELAY,
	QUEUE_DSN_SUCCESS,
};

struct queue_rcpt {
	char addr[QUEUE_ADDR_MAX + 1];		   /* local@domain, never "" */
	unsigned notify;			   /* SMTP_NOTIFY_*; 0 none */
	char orcpt_type[QUEUE_ORCPT_TYPE_MAX + 1]; /* "" = no ORCPT */
	char orcpt[QUEUE_ORCPT_MAX + 1];
	enum queue_rcpt_state state;
	unsigned attempts;
	time_t next_try;	       /* 0 = at once */
	time_t last_try;	       /* 0 = never tried */
	int code;		       /* last reply, 0 = none */
	char enh[QUEUE_ENH_MAX + 1];   /* "4.7.1" or "" */
	char text[QUEUE_TEXT_MAX + 1]; /* cut by the caller */
	enum queue_dsn_owed dsn_owed;  /* version 2 files only */
};

struct queue_env {
	char id[QUEUE_ID_LEN + 1]; /* spool_commit keeps a valid one that is
				      free, else sets a fresh one */
	unsigned version;	   /* set by decode; encode writes the
				      oldest version that holds env */
	time_t created;		   /* 0 in spool_commit: now */
	char sender[QUEUE_ADDR_MAX + 1]; /* "" for <> */
	enum smtp_ret ret; /* DSN RET, SMTP_RET_UNSPEC when absent */
	char envid[QUEUE_ENVID_MAX + 1]; /* "" when absent */
	char helo[QUEUE_HELO_MAX + 1];
	char ip[QUEUE_IP_MAX + 1];
	char auth[QUEUE_AUTH_MAX + 1];	 /* AUTH identity, "" when none */
	char proto[QUEUE_PROTO_MAX + 1]; /* "ESMTPSA" ... */
	bool body_8bit;			 /* BODY=8BITMIME */
	bool smtputf8;
	bool requiretls;      /* MAIL ... REQUIRETLS (RFC 8689), version 3 */
	bool tls_required_no; /* "TLS-Required: No" in the header, version 3 */
	uint64_t size;	      /* octets of data/ID, set by spool_commit */
	time_t next_try;      /* next attempt of the message, 0: now */
	time_t warned;	      /* delay DSN sent at, 0 = not sent */
	struct queue_rcpt *rcpt; /* nrcpt of them, heap */
	size_t nrcpt;
	size_t rcpt_cap; /* private */
	bool held;	 /* not stored: load/scan saw it in held/ */
};

/* Zero an envelope (no recipients). */
void queue_env_init(struct queue_env *env);
/* Free the recipients and zero env.  env may be zeroed already; NULL ok. */
void queue_env_free(struct queue_env *env);
/*
 * Append a recipient addr (PENDING, everything else zero) and return it,
 * or NULL with errno: EINVAL (addr empty or over QUEUE_ADDR_MAX), E2BIG
 * (QUEUE_RCPT_MAX reached), ENOMEM.
 */
struct queue_rcpt *queue_env_add_rcpt(
    struct queue_env *env, const char *addr) WUR;

/*
 * Append the text form of env (docs/queue.md) to out.  Returns 0, or -1
 * with errno: EINVAL (an envelope no decoder would accept: bad id, no or
 * too many recipients, an empty or unterminated field, a negative time, a
 * bad code or notify bit), EMSGSIZE or ENOMEM (out is full).  On failure
 * out keeps its old length.
 */
int queue_env_encode(const struct queue_env *env, struct buf *out) WUR;

/*
 * Decode p[0..n) into out (overwritten, not freed first).  Returns 0, or
 * -1 with err naming the line and the reason, and out zeroed: an envelope
 * is accepted whole or not at all.  errno is ENOTSUP when the V record
 * names a version newer than QUEUE_ENV_VERSION (written by a newer tern:
 * the caller must refuse to run on it, not treat it as damage), else
 * EINVAL.  Accepts exactly what queue_env_encode writes.
 */
int queue_env_decode(const char *p, size_t n, struct queue_env *out, char *err,
    size_t errlen) WUR;

/*
 * The version on the first line of an envelope text ("V 2\n"), without
 * decoding the rest; 0 when the line is not of that form.  The log's
 * replay uses it to find an envelope a newer tern wrote before anything
 * is written (docs/formats.md).
 */
unsigned long queue_env_peek_version(const char *p, size_t n);

/* The version queue_env_encode writes for env: 1, or 2 when a recipient
 * owes a DSN (dsn_owed), or 3 when requiretls or tls_required_no is set. */
unsigned queue_env_version(const struct queue_env *env);

/* true if s is a queue id: exactly 16 lowercase hex digits. */
bool queue_id_valid(const char *s);

/* Names for logs and `tern queue`: "PENDING"..., NULL when out of range. */
const char *queue_rcpt_state_name(enum queue_rcpt_state st);

/*
 * Append env as the JSON object of `tern queue list/show` (id, created,
 * size, held, next_try, sender, recipients with state, attempts, next_try
 * and last reply) to out (envjson.c).  Returns 0, or -1 when out is full
 * (out then holds part of it).
 */
int queue_env_json(const struct queue_env *env, struct buf *out) WUR;

/* ---- the log: segment and record codec (qlog.c; pure) -------------------- */

/*
 * docs/queue.md, "The log".  A segment is a 32-byte header then records;
 * a record is a u32 body length, a u32 CRC32C of the body, and the body:
 * type, flags, id, and by type the envelope text and the content.
 */
#define QLOG_MAGIC	  "TERNQLOG"
#define QLOG_VERSION	  1
#define QLOG_SEG_HEAD	  32
#define QLOG_REC_HEAD_MIN 20	     /* len, crc, type, flags, zero, id */
#define QLOG_REC_HEAD_MAX 24	     /* and a MSG record's envelope length */
#define QLOG_REC_MAX	  (1u << 30) /* body octets: 1 GiB */

enum qlog_type {
	QLOG_MSG = 1, /* a new message: envelope and content */
	QLOG_ENV,     /* a new envelope for a queued message */
	QLOG_REMOVE,  /* the message is done */
	QLOG_HOLD,
	QLOG_RELEASE,
};
#define QLOG_F_HELD 0x01 /* MSG: the message is held (a compaction copy) */

enum qlog_res {
	QLOG_OK,
	QLOG_END,	      /* a zero length word (or no bytes): the end */
	QLOG_TORN,	      /* fewer bytes than the record needs */
	QLOG_BAD,	      /* checksum, type, flags or lengths wrong */
	QLOG_VERSION_UNKNOWN, /* a segment header of another version */
};

struct qlog_rec {
	unsigned type, flags;
	uint64_t id;	 /* the queue id as a number */
	const char *env; /* into the parsed bytes */
	size_t envlen;
	size_t env_off;	    /* of env from the record's start */
	size_t content_off; /* MSG: of the content from the start */
	size_t content_len;
	size_t size; /* octets of the whole record */
};

/* CRC32C of data, continuing crc (0 to start). */
uint32_t qlog_crc32c(uint32_t crc, const void *data, size_t n);
/* The header of segment number seq. */
void qlog_seg_head(uint8_t out[QLOG_SEG_HEAD], uint64_t seq);
/* Check a segment header: QLOG_OK (*seq_out set), TORN, BAD, or
 * QLOG_VERSION_UNKNOWN. */
enum qlog_res qlog_seg_parse(const uint8_t *p, size_t n, uint64_t *seq_out);
/*
 * The head of record r (type, flags, id, envlen; r->env the envelope)
 * whose content is iov[0..iovcnt) (MSG only), checksum included: the
 * record is head[0..*head_len), then env, then the content.  -1 when r
 * is not a record qlog_rec_parse would accept.
 */
int qlog_rec_head(uint8_t out[QLOG_REC_HEAD_MAX], size_t *head_len,
    const struct qlog_rec *r, const struct iovec *content, int iovcnt) WUR;
/* Parse the record at p[0..n) into r (pointing into p). */
enum qlog_res qlog_rec_parse(const uint8_t *p, size_t n, struct qlog_rec *r);

/* ---- the spool ----------------------------------------------------------- */

struct spool;

/*
 * Open STATE/queue (state_dir must exist; queue/ and its subdirectories
 * are made 0700 when missing),
 * lock it against other processes, and run crash recovery (docs/queue.md:
 * delete tmp/ files and orphan data, move what cannot be used to
 * corrupt/).  Returns NULL with err filled and errno set on failure.
 */
struct spool *spool_open(const char *state_dir, char *err, size_t errlen) WUR;
/*
 * The same queue in the log-structured format (queue.log; docs/queue.md,
 * "The log"): segments in STATE/queue/seg/, a queue of files found there
 * imported first.  Every spool_* function below works on either.  The
 * file spool refuses a queue that has segments (its messages would be
 * stranded).
 */
struct spool *spool_open_log(
    const char *state_dir, char *err, size_t errlen) WUR;
void spool_close(struct spool *sp); /* NULL ok; call after the workers */

/*
 * Store a new message: content (iovcnt iovecs, total = env->size) into
 * data/ID, env into env/ID, both fsync'ed with their directories.  Sets
 * env->id, env->version, env->size, and env->created when 0.  Returns 0 at
 * the commit point, or -1 with errno (ENOSPC/EDQUOT: say 452) and err
 * filled; then nothing of the message is left in the queue.
 */
int spool_commit(struct spool *sp, struct queue_env *env,
    const struct iovec *content, int iovcnt, char *err, size_t errlen) WUR;

/*
 * Rewrite env/ID (env->id) atomically and durably.  ENOENT if the message
 * is no longer in env/ (held or removed meanwhile): nothing changes.
 * These and the functions below log their own failures (id, step, errno).
 */
int spool_update(struct spool *sp, const struct queue_env *env) WUR;
/* Remove a message, queued or held: env/ID (or held/ID), then data/ID. */
int spool_remove(struct spool *sp, const char *id) WUR;
/*
 * The same, for a message whose delivery is over (every recipient done,
 * its DSNs queued).  The log (spool_open_log) does not wait for the
 * removal to be durable: it becomes so with the next group fdatasync, and
 * a power failure before that delivers the message again, never loses
 * one.  The file spool removes as spool_remove does.
 */
int spool_remove_done(struct spool *sp, const char *id) WUR;
int spool_hold(struct spool *sp, const char *id) WUR;	 /* env/ -> held/ */
int spool_release(struct spool *sp, const char *id) WUR; /* held/ -> env/ */

/* Where a message's content is: len octets at off in fd (read-only,
 * O_CLOEXEC; the caller closes it).  The file spool's off is 0; the log's
 * is anywhere in a segment (not page-aligned: a mapping starts at the
 * page below and is adjusted). */
struct spool_data {
	int fd;
	uint64_t off, len;
};

/* The content of id (data/ID opened read-only), or -1 with errno and
 * out->fd -1. */
int spool_open_data(
    struct spool *sp, const char *id, struct spool_data *out) WUR;

/*
 * Load the envelope of id from env/ (or held/, then out->held is set).
 * Returns 0, or -1 with errno (ENOENT, EINVAL for a bad id or an envelope
 * that does not decode) and err filled.
 */
int spool_load(struct spool *sp, const char *id, struct queue_env *out,
    char *err, size_t errlen) WUR;

/*
 * spool_load and spool_open_data together, only when that cannot block
 * on a lock or a directory: the log (spool_open_log) with its lock free
 * reads the envelope from its index's place (a pread, in the page cache
 * for a message just committed).  Returns 0 or -1 as those two do (data
 * opened only when the envelope loaded), or -2 (nothing done, out and
 * data untouched): the file spool, or the log busy; then load on a
 * thread.
 */
int spool_load_now(struct spool *sp, const char *id, struct queue_env *out,
    struct spool_data *data, char *err, size_t errlen) WUR;

/*
 * Call cb once for every envelope in env/ and held/ (env->held tells
 * which), in directory order.  env is freed when cb returns; cb keeps it by
 * moving it: `*mine = *env; queue_env_init(env);`.  An envelope that does
 * not decode goes to corrupt/.  Returns the number passed to cb, or -1
 * with errno if a directory cannot be read.
 */
int spool_scan(struct spool *sp, void (*cb)(struct queue_env *env, void *ctx),
    void *ctx) WUR;

struct spool_stats {
	uint64_t commits;     /* successful spool_commit */
	uint64_t updates;     /* successful spool_update */
	uint64_t removes;     /* successful spool_remove */
	uint64_t file_fsyncs; /* data and envelope files */
	uint64_t dir_fsyncs;  /* directory fsyncs actually run (shared) */
	uint64_t env_fsyncs;  /* of them, env/'s: the commit points */
	uint64_t dir_waits;   /* directory fsyncs asked for */
	/* the log (spool_open_log; 0 for the file spool) */
	uint64_t appends;    /* records appended */
	uint64_t fdatasyncs; /* of segments: one per batch of appends */
	uint64_t segments;   /* segment files now */
	uint64_t compacted;  /* segments compacted */
};
void spool_get_stats(struct spool *sp, struct spool_stats *out);

/*
 * The durable steps are fs/file.h's; its test build's fault hook sees
 * them with who "spool": "create" (an O_EXCL open in data/ or tmp/),
 * "write", "fsync" (a file), "close", "fsync_dir", "rename", "unlink"
 * (spool_remove's two).  The spool never links: every move is a rename.
 */

#endif
