/*
 * curltls: what every HTTPS client of ternd's (the MTA-STS fetch, ACME)
 * sets on a libcurl handle the same way: the CAs it trusts (tls.ca_file,
 * tls.ca_path; NULL for the system's) and a stop flag that ends a
 * transfer within a second of being set.
 */
#ifndef TERN_TLS_CURLTLS_H
#define TERN_TLS_CURLTLS_H

#include <curl/curl.h>
#include <stdatomic.h>

/* 0, or -1 when libcurl refused an option.  cancel may be NULL. */
int curltls_setup(CURL *h, const char *ca_file, const char *ca_path,
    const atomic_bool *cancel);

#endif
