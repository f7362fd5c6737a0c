/*
 * submit.h: what the submission ports add to a session (submit.c): AUTH
 * (RFC 4954) with its throttle and delays, and whose sender a submission
 * or local client may use.
 *
 * Owns: each AUTH attempt (struct auth_job) until its answer, and the
 * session's AUTH timers (c->delay, c->hold).  May call: auth, table
 * through lookup.h, the worker pool (the password hashing), conn.h's
 * session functions.  Event loop only; the context is the struct conn
 * (and its c->srv).
 */
#ifndef TERN_SERVER_SUBMIT_H
#define TERN_SERVER_SUBMIT_H

struct conn;
struct auth_job;

/* conn_free: drop an AUTH attempt still waiting (wipes its password) and
 * the user name of a successful one. */
void submit_drop_auth(struct conn *c);
/* The user name AUTH succeeded with; "" before (and for a name too long
 * for the queue's envelope). */
const char *submit_auth_user(const struct conn *c);
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

#endif
