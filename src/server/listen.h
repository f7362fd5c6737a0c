/*
 * listen.h: the listening sockets and the accept path (listen.c).
 *
 * Owns: struct listener (one per listen.* key, and public/submit.sock,
 * which control.c adds), the reserve descriptor for EMFILE, and the
 * per-client connection counts (struct server's client_buckets).  May
 * call: conf, util (client keys), and conn.h's conn_new for an accepted
 * client.  Each listener carries its server (the accept callback's
 * context); event loop only, except listeners_bind (before the privilege
 * drop, as root).
 */
#ifndef TERN_SERVER_LISTEN_H
#define TERN_SERVER_LISTEN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "util/clientkey.h"

struct server;
struct conf;

enum listener_kind {
	LISTEN_SMTP,
	LISTEN_SUBMISSION,
	LISTEN_SUBMISSIONS,
	LISTEN_LOCAL /* STATE/public/submit.sock: tern sendmail */
};

struct listener {
	enum listener_kind kind;
	const char *name; /* "smtp", "submission", ... */
	int fd;		  /* bound, listening */
	struct server *srv;
	struct evconnlistener *ev;
	struct event *resume;	 /* re-enables ev after EMFILE */
	struct event *errlog;	 /* writes the held-back accept_error line */
	uint64_t errlog_last;	 /* ms of the last accept_error line */
	unsigned errlog_refused; /* refused since that line */
	int errlog_errno;
	/* live reload (listeners_reload): a slot whose address left the
	   configuration stops accepting (active false, fd -1) and is reused
	   once the sessions it accepted (nconns) have ended */
	bool active;
	unsigned nconns;
	char addr[128]; /* the listen.* value it was bound for */
};

/* Slots of struct server's listeners: three TCP kinds and the local
 * socket, and room for listeners retired by reloads whose sessions are
 * still running. */
#define LISTEN_SLOTS 16

int listeners_bind(struct server *s); /* before privdrop */
/* A listening TCP socket on spec ("ip:port", "[ip6]:port"), non-blocking;
 * errors are logged (errno kept: the bind's, for a reload).  listen.metrics
 * binds through it too. */
int listen_socket(const char *spec, int *fd_out);
void listeners_enable(struct server *s); /* on the loop */
void listeners_close(struct server *s);
/*
 * A reload (reload.c) with the new configuration nc, the running one oc.
 * A listen.* whose value is unchanged keeps its socket (no window without
 * one); a new or moved one is bound first: when any bind fails, every
 * socket bound here is closed again and -1 returned, nothing changed.  A
 * port below 1024 that cannot be bound (EACCES: root was dropped, no
 * CAP_NET_BIND_SERVICE) is not an error: that key is logged
 * needs_restart and nc gets oc's value back.  Then the removed
 * and moved ones stop accepting (their sessions go on; the slot is freed
 * after the last one) and the new ones start.
 */
int listeners_reload(struct server *s, struct conf *nc, const struct conf *oc);
/* a session accepted on l opened (+1) or ended (-1) */
void listener_conns_add(struct server *s, const struct listener *l, int delta);

/*
 * Client keys (util/clientkey.h) of connections: an IPv4 address, an IPv6
 * /64, or on public/submit.sock the peer's uid (SO_PEERCRED; UINT32_MAX if
 * unknown).  Every per-client limit counts by these keys; a later rate
 * limit per client IP calls client_key_from_sockaddr() and hashes with
 * client_key_hash().
 */
void client_key_from_sockaddr(struct client_key *k, const struct sockaddr *sa);
void client_key_of(const struct listener *l, int fd, const struct sockaddr *sa,
    struct client_key *k, unsigned *uid_out);
/* open connections per client key, used by accept and conn_free */
unsigned client_count_get(struct server *s, const struct client_key *k);
void client_count_add(struct server *s, const struct client_key *k, int delta);

#endif
