/*
 * qsettings: the settings a delivery attempt of the queue runs under, made
 * from one configuration: the retry schedule (queue.*) and the delivery
 * engine (deliver/remote.h: relay.port, the smarthost and its credentials
 * and TLS, delivery.lmtp, the concurrency limits, [tls_policy], the
 * trust store of tls.ca_file and tls.ca_path with its TLS contexts, and
 * whether MTA-STS applies, sts.enable).
 *
 * The queue manager (qmgr.c) keeps the current settings and every older
 * one an attempt still holds; an attempt takes the current one when it
 * begins and keeps it to its end, so a reload never changes what an
 * attempt under way does, and the next attempt gets the new settings.
 * A reload that changes none of the engine's keys (nor the CA files they
 * name) shares the engine of the settings before it (its DNS answers, TLS
 * sessions and slowdown pauses go on); an engine is freed with the last
 * settings using it, and its TLS contexts with their last connection.
 *
 * Owns: struct qsettings, struct qengine.  May call: deliver (remote),
 * queue (retry), tls, conf, util, sandbox.h (is a CA path readable).  Made and
 * freed on the loop; the retry policy is also read by the queue's worker jobs,
 * which is safe because nothing in a struct qsettings changes after
 * qsettings_new.
 */
#ifndef TERN_SERVER_QSETTINGS_H
#define TERN_SERVER_QSETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "conf/conf.h"
#include "deliver/remote.h"
#include "queue/retry.h"

struct dns;
struct event_base;
struct mtasts;
struct qengine;
struct tlsrpt;

#define QSETTINGS_PASS_MAX 256 /* relay.smarthost_password_file's line */

/* What every engine shares, made at start (qmgr.c; the MTA-STS policies
 * when sts.enable is first on, maybe by a reload); the caller keeps it
 * alive until the last settings are freed. */
struct qsettings_world {
	struct event_base *base;
	struct dns *dns;
	struct mtasts *sts; /* or NULL; an engine uses it with sts.enable */
	struct tlsrpt *tlsrpt;
	struct sockaddr_storage self[REMOTE_SELF_MAX]; /* our listeners */
	size_t nself;
};

struct qsettings {
	struct qsettings *next;	 /* the queue manager's list of live ones */
	unsigned refs;		 /* the queue manager's: attempts, +1 current */
	unsigned gen;		 /* the reload's generation; 0 at start */
	const struct conf *conf; /* lives until exit (reload.h) */
	struct retry_policy retry;
	struct remote *remote; /* the engine's, for remote_deliver() */
	struct qengine *eng;
	bool new_engine; /* made for these settings, not shared */
	bool new_store;	 /* its MX contexts made for it: a new trust store */
	char pass[QSETTINGS_PASS_MAX]; /* the smarthost password, or "" */
};

/*
 * Settings from cf.  pass: the smarthost's password ("" or NULL: none).
 * prev: the settings in force (NULL at start), whose engine is shared
 * when cf and pass change none of its keys.  NULL with err when a TLS
 * context (err names the key and the file) or the engine cannot be made
 * (the engine's own log line says which key).
 */
struct qsettings *qsettings_new(const struct qsettings_world *w,
    const struct conf *cf, const char *pass, const struct qsettings *prev,
    char *err, size_t errlen);
/* Drop st and its engine reference (the engine is freed with its last
 * one: connections still closing are cut).  NULL: nothing.  At exit, and
 * for settings that were never used. */
void qsettings_free(struct qsettings *st);
/* The same while ternd runs: an engine that goes with st retires
 * (remote_retire: its idle sessions QUIT before it is freed). */
void qsettings_retire(struct qsettings *st);
/* Does b retry on another schedule than a? */
bool qsettings_retry_differs(
    const struct qsettings *a, const struct qsettings *b);

/*
 * The first line of relay.smarthost_password_file (path), without its
 * line end, into out.  -1 with err when it cannot be read (errno: why) or
 * is empty (errno 0).
 */
int qsettings_password_read(
    const char *path, char *out, size_t outlen, char *err, size_t errlen);

#endif
