/*
 * smtp_int.h: helpers shared by the files of the smtp module only
 * (smtp_cmd.c and smtp_param.c).  smtp.h is the module's interface.
 *
 * Owns: nothing of its own; it shares parser helpers inside the module.
 * May call: what smtp.h may (addr, util).
 */
#ifndef TERN_SMTP_INT_H
#define TERN_SMTP_INT_H

#include "smtp/smtp.h"

/* Fill err with code, enh and a formatted text; returns -1. */
int smtp_cmd_fail(struct smtp_err *err, int code, const char *enh,
    const char *fmt, ...) PRINTF_LIKE(4, 5);
/* Client text quoted in a reply: cut, non-printable bytes as '?'. */
const char *smtp_cmd_echo(char *out, size_t outlen, const char *s, size_t n);
/* The ESMTP parameters of MAIL (mail) or RCPT after the path. */
int smtp_param_parse(const char *s, size_t len, unsigned flags, bool mail,
    struct smtp_cmd *cmd, struct smtp_err *err, unsigned *count_out);

#endif
