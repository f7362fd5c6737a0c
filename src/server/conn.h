/*
 * conn.h: the connection and transaction structures shared by the files
 * of ternd's shell (conn.c: protocol glue and delivery; submit.c: AUTH,
 * sender policy and submission fix-ups; tlsconn.c: STARTTLS).  Private to
 * src/server.
 *
 * Owns: struct conn and struct txn, one client session and its
 * transaction, on the event loop only.  Its files may call what server.h
 * may, and drive the session through smtp.h's smtp_server_* only.
 */
#ifndef TERN_SERVER_CONN_H
#define TERN_SERVER_CONN_H

#include <netinet/in.h>
#include <arpa/inet.h>

#include <event2/bufferevent.h>

#include "../auth/auth.h"
#include "../smtp/smtp.h"
#include "server.h"

struct txn {
	char id[ID_LEN + 1];
	char sender[TABLE_ADDR_MAX + 1];
	char first_rcpt[TABLE_ADDR_MAX + 1];
	unsigned nrcpt;
	struct smtp_mail_params params;
	struct table_targets targets;	 /* local mailboxes, deduplicated */
	struct queue_env *remote;	 /* remote recipients, or NULL */
	struct buf body;		 /* content, while it is small */
	int spill_fd;			 /* -1; else the content is in this
					    unlinked file (see body_sink) */
	uint64_t spill_len;		 /* counted in srv->scratch_bytes */
	uint64_t spill_unchecked;	 /* written since the last look
					    at free space */
	uint64_t storing;		 /* counted in srv->storing_bytes
					    while its job writes it */
	char *map;			 /* the spill file, mapped at the
					    end of data */
	bool body_failed;		 /* could not store the content */
	int body_errno;			 /* why: 0 memory, else write's */
	void *owner;			 /* the conn, while a job stores it */
	struct dsn_delivered_rcpt *succ; /* local RCPTs with NOTIFY=SUCCESS */
	size_t nsucc;
};

struct conn {
	struct conn *next, *prev;
	struct server *srv;
	const struct listener *l;
	struct bufferevent *bev;
	int fd; /* owned by bev once TLS is on */
	struct smtp_server *smtp;
	struct buf out;
	struct sockaddr_storage sa;
	char ip[INET6_ADDRSTRLEN];
	struct client_key key; /* the client, for every per-client
				  count (clientkey.h) */
	char sid[ID_LEN + 1];
	struct event *timer;
	uint64_t line_started; /* ms; 0: no partial line */
	struct txn *txn;
	bool pending;	  /* the current event awaits a job
			     or a delay */
	bool job_running; /* a worker job points here */
	bool closing;	  /* flush, then free */
	bool dead;	  /* socket gone, job still running */
	bool eof;	  /* the client shut its side: finish
			     what it sent, then close */
	bool authenticated;
	bool local;	      /* came in on public/submit.sock */
	unsigned local_uid;   /* its SO_PEERCRED uid */
	char local_login[64]; /* its login name, lower-cased,
				 once asked (submit.c) */
	bool tls;	      /* TLS is on (STARTTLS or 465) */
	char auth_user[TABLE_ADDR_MAX + 1];
	unsigned auth_failures;
	struct sasl_login *login; /* LOGIN exchange in progress */
	struct event *delay;	  /* failed-AUTH reply delay */
	struct auth_job *held;	  /* AUTH waiting out its client's
				     penalty (submit.c) */
	struct event *hold;	  /* ends that wait */
	unsigned messages;
	const char *close_reason;
};

void conn_process(struct conn *c);
void conn_free(struct conn *c);
void conn_close_soon(struct conn *c, const char *reason);
/* A worker job that pointed at c has finished: true if c was freed. */
bool conn_job_finished(struct conn *c);
/* Ask lk off the loop for c's current command: c waits until the answer. */
void conn_ask(struct conn *c, struct lookup *lk);
/* In an answer (or a job's done): false if c went away meanwhile, else
 * c stops waiting; the caller replies, then conn_process(c). */
bool conn_answered(struct conn *c);
void conn_setup_bev(struct conn *c);
void conn_reject(struct conn *c, const char *cmd, int code, const char *enh,
    const char *text, const char *addr);

/* submit.c */
struct auth_job;
/* conn_free: drop an AUTH attempt still waiting (wipes its password). */
void submit_drop_auth(struct conn *c);
/* SIGTERM: an AUTH held for its penalty is dropped, a delayed 535 sent
 * now, so the session can get its 421 instead of keeping ternd up. */
void submit_shutdown(struct conn *c);
void submit_on_auth(struct conn *c);
void submit_on_auth_data(struct conn *c);
/* MAIL on a submission port: if the authenticated user may use the
 * command's sender, then(c) (now, or when the table has answered);
 * else the reply is sent. */
void submit_check_sender(struct conn *c, void (*then)(struct conn *));
void submit_update_auth(struct conn *c);

/* tlsconn.c */
/* cmd_len: octets of the STARTTLS line still in the input buffer */
void tlsconn_starttls(struct conn *c, size_t cmd_len);
int tlsconn_wrap_implicit(struct conn *c, int fd);
void tlsconn_describe(const struct conn *c, char *out, size_t outlen);

#endif
