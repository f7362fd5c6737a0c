/*
 * control.h: ternd's two unix sockets (control.c): STATE/control.sock for
 * `tern queue ...`, answered by the queue manager, and the listener of
 * STATE/public/submit.sock (its sessions are ordinary connections, conn.c).
 *
 * Owns: the control listener and each control connection (struct
 * ctl_conn), which carries its server.  May call: the queue manager
 * (qmgr_control), fault.h (the fault build's probe), util.  Event loop
 * only; made after the privilege drop.
 */
#ifndef TERN_SERVER_CONTROL_H
#define TERN_SERVER_CONTROL_H

struct server;

int control_listen(struct server *s);
void control_close(struct server *s);

#endif
