/*
 * netlist.h: client networks in CIDR form (relay.networks) and the
 * socket-address helpers the per-client code shares.
 *
 * Owns: struct netlist, immutable once parsed (read by the loop on every
 * RCPT).  May call: util.  Pure apart from allocation: no I/O, any thread.
 */
#ifndef TERN_SERVER_NETLIST_H
#define TERN_SERVER_NETLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct netlist;
/* "192.0.2.0/24, 2001:db8::/32, 127.0.0.1"; NULL or "" is an empty list */
struct netlist *netlist_parse(const char *csv, char *err, size_t errlen);
bool netlist_match(const struct netlist *nl, const struct sockaddr *sa);
void netlist_free(struct netlist *nl);
bool sockaddr_is_loopback(const struct sockaddr *sa);
/* the address bytes of sa (4 or 16) */
size_t sockaddr_ip_bytes(
    const struct sockaddr *sa, const unsigned char **p_out);

#endif
