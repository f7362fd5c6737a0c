/*
 * dmarcdb: the store of DMARC aggregate report data, one SQLite file
 * (STATE/dmarc.db, docs/mailauth.md "DMARC aggregate reports"), and the
 * gzip of a report.
 *
 * Owns: struct dmarcdb (the connection and its statements) and the file's
 * schema (PRAGMA user_version DMARCDB_SCHEMA_VERSION; a file of a newer
 * version is refused, an older one is migrated in one transaction).
 * May call: mailauth/dmarcxml (the row and policy types, the XML), util,
 * SQLite, zlib.  Used by ternd (server/dmarcrep.c, on its worker threads)
 * and by `tern dmarc report --dry-run` (read-only).
 *
 * Threads: one struct dmarcdb is used by one thread at a time (ternd runs
 * its store operations one after another); every call blocks on the disk.
 *
 * Rows are counted per (period, policy domain, every field of struct
 * dmarcxml_row but count): adding an equal row adds to its count.  A
 * period is the time its reporting interval began; a report covers every
 * period before a cutoff and its rows are then removed with
 * dmarcdb_clear(), after the report is queued (a crash in between sends
 * the same rows again next time: a duplicate, never a loss).
 */
#ifndef TERN_DMARCDB_H
#define TERN_DMARCDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mailauth/dmarcxml.h"
#include "util/util.h"

#define DMARCDB_SCHEMA_VERSION 1
/* the policy's rua URIs as the store keeps them: "uri!size,..." */
#define DMARCDB_RUA_MAX 1024

struct dmarcdb;

/* One evaluated message, or several equal ones (row.count). */
struct dmarcdb_entry {
	int64_t period;
	struct dmarcxml_policy pol;
	char rua[DMARCDB_RUA_MAX + 1];
	struct dmarcxml_row row;
};

/*
 * Open (readonly: never create, never write) or create path.  0, or -1
 * with err.  A writable open switches the file to WAL and sets up or
 * migrates the schema.
 */
int dmarcdb_open(const char *path, bool readonly, struct dmarcdb **out,
    char *err, size_t errlen) WUR;
void dmarcdb_close(struct dmarcdb *db); /* NULL ok */

/* Distinct rows held now (the bound of dmarcdb_add counts these). */
uint64_t dmarcdb_rows(const struct dmarcdb *db);

/*
 * Add n entries in one transaction.  An entry that would make a new row
 * when max_rows rows exist already is dropped and counted in
 * *dropped_out; an entry whose row is not valid (dmarcxml_row_ok) too.
 * 0, or -1 with err (then nothing of the batch was written).
 */
int dmarcdb_add(struct dmarcdb *db, const struct dmarcdb_entry *e, size_t n,
    uint64_t max_rows, size_t *dropped_out, char *err, size_t errlen) WUR;

/* The policy domains with rows of a period before cutoff, sorted. */
int dmarcdb_domains(struct dmarcdb *db, int64_t cutoff, char ***out,
    size_t *n_out, char *err, size_t errlen) WUR;
void dmarcdb_domains_free(char **v, size_t n);

/* One domain's report, built from the store. */
struct dmarcdb_report {
	struct dmarcxml_policy pol;
	char rua[DMARCDB_RUA_MAX + 1];
	int64_t begin, end; /* the date_range */
	size_t nrows;	    /* records in the XML */
	uint64_t messages;  /* their counts added up */
	size_t bad_rows;    /* rows of the file that were not valid */
	struct buf xml;	    /* the whole document */
};

/*
 * The report of domain for the periods before cutoff: its XML (meta's
 * begin and end are set from the rows: the first period to cutoff - 1),
 * into r (r->xml is made with buf_init(xml_max) here; dmarcdb_report_free
 * frees it).  0; 1 when the domain has no rows (or only invalid ones);
 * 2 with err when the XML would pass xml_max (no report can be made of
 * these rows: the caller drops them, or they would block every run);
 * -1 with err (the store failed).
 */
int dmarcdb_report(struct dmarcdb *db, const char *domain, int64_t cutoff,
    struct dmarcxml_meta *meta, size_t xml_max, struct dmarcdb_report *r,
    char *err, size_t errlen) WUR;
void dmarcdb_report_free(struct dmarcdb_report *r);

/* Remove domain's rows of the periods before cutoff (after its report
 * was queued), and its policy once no row is left. */
int dmarcdb_clear(struct dmarcdb *db, const char *domain, int64_t cutoff,
    char *err, size_t errlen) WUR;

/* in[0..len) gzip-compressed (RFC 1952) into out.  0, or -1 (full). */
int dmarcdb_gzip(const void *in, size_t len, struct buf *out) WUR;

#endif
