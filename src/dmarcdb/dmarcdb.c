/*
 * dmarcdb: DMARC aggregate report data in SQLite.
 *
 * Schema (PRAGMA user_version = DMARCDB_SCHEMA_VERSION):
 *   policy(domain TEXT PRIMARY KEY, adkim, aspf, p, sp, pct, rua, seen)
 *     the last record seen for each policy domain (what the report's
 *     <policy_published> says, and where it goes)
 *   records(period, domain, source_ip, header_from, envelope_from,
 *           disposition, dkim, spf, reason, dkim_auth, spf_domain,
 *           spf_scope, spf_result, count, PRIMARY KEY(every column but
 *           count))
 *     one row of a report, counted; the words are the XML's own
 *     ("quarantine", "pass", "mfrom"), dkim_auth is dmarcxml_dkim_encode's
 *     text.
 *
 * Invariants:
 *  - The schema is made or migrated inside BEGIN IMMEDIATE; a file of a
 *    newer version than this tern knows is refused, never rewritten.
 *  - WAL mode, so `tern dmarc report --dry-run` reads while ternd writes.
 *  - A batch is one transaction: all of it is counted, or none.
 *  - A row is read back through dmarcxml_row_ok before it reaches a
 *    report, so a damaged or hand-edited file cannot make invalid XML.
 */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "sqldb/sqldb.h"
#include "dmarcdb/dmarcdb.h"

#define DD_BUSY_MS 5000

enum dd_stmt {
	DD_UPDATE,
	DD_INSERT,
	DD_POLICY_PUT,
	DD_DOMAINS,
	DD_POLICY_GET,
	DD_FIRST,
	DD_ROWS,
	DD_CLEAR,
	DD_CLEAR_POLICY,
	DD_COUNT,
	DD_NSTMT
};

#define DD_KEY_WHERE                                                           \
	"period = ?1 AND domain = ?2 AND source_ip = ?3 AND header_from = ?4 " \
	"AND envelope_from = ?5 AND disposition = ?6 AND dkim = ?7 AND "       \
	"spf = ?8 AND reason = ?9 AND dkim_auth = ?10 AND spf_domain = ?11 "   \
	"AND spf_scope = ?12 AND spf_result = ?13"
#define DD_COLS                                                                \
	"source_ip, header_from, envelope_from, disposition, dkim, spf, "      \
	"reason, dkim_auth, spf_domain, spf_scope, spf_result"

static const char *const dd_sql[DD_NSTMT] = {
    [DD_UPDATE] = "UPDATE records SET count = count + ?14 WHERE " DD_KEY_WHERE,
    [DD_INSERT] = "INSERT INTO records(period, domain, " DD_COLS ", count) "
		  "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
		  "?13, ?14)",
    [DD_POLICY_PUT] =
	"INSERT INTO policy(domain, adkim, aspf, p, sp, pct, rua, seen) "
	"VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT(domain) DO UPDATE "
	"SET adkim = excluded.adkim, aspf = excluded.aspf, p = excluded.p, "
	"sp = excluded.sp, pct = excluded.pct, rua = excluded.rua, "
	"seen = excluded.seen",
    [DD_DOMAINS] = "SELECT DISTINCT domain FROM records WHERE period < ?1 "
		   "ORDER BY domain",
    [DD_POLICY_GET] = "SELECT adkim, aspf, p, sp, pct, rua FROM policy "
		      "WHERE domain = ?1",
    [DD_FIRST] = "SELECT MIN(period) FROM records WHERE domain = ?1 AND "
		 "period < ?2",
    [DD_ROWS] =
	"SELECT " DD_COLS ", SUM(count) FROM records WHERE "
	"domain = ?1 AND period < ?2 GROUP BY " DD_COLS " ORDER BY " DD_COLS,
    [DD_CLEAR] = "DELETE FROM records WHERE domain = ?1 AND period < ?2",
    [DD_CLEAR_POLICY] = "DELETE FROM policy WHERE domain = ?1 AND NOT "
			"EXISTS(SELECT 1 FROM records WHERE domain = ?1)",
    [DD_COUNT] = "SELECT count(*) FROM records",
};

static const char dd_schema_v1[] =
    "CREATE TABLE IF NOT EXISTS policy(domain TEXT PRIMARY KEY, "
    "adkim TEXT NOT NULL, aspf TEXT NOT NULL, p TEXT NOT NULL, "
    "sp TEXT NOT NULL, pct INTEGER NOT NULL, rua TEXT NOT NULL, "
    "seen INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS records(period INTEGER NOT NULL, "
    "domain TEXT NOT NULL, source_ip TEXT NOT NULL, "
    "header_from TEXT NOT NULL, envelope_from TEXT NOT NULL, "
    "disposition TEXT NOT NULL, dkim TEXT NOT NULL, spf TEXT NOT NULL, "
    "reason TEXT NOT NULL, dkim_auth TEXT NOT NULL, "
    "spf_domain TEXT NOT NULL, spf_scope TEXT NOT NULL, "
    "spf_result TEXT NOT NULL, count INTEGER NOT NULL, "
    "PRIMARY KEY(period, domain, " DD_COLS "));";

struct dmarcdb {
	sqlite3 *db;
	sqlite3_stmt *st[DD_NSTMT];
	uint64_t rows; /* distinct rows in records */
	char path[512];
};

/*
 * Make or migrate the schema.  Each version's step runs in order from the
 * file's version; version 1 is the first, so today there is one step.
 */
static int
dd_schema(struct dmarcdb *d, bool readonly, char *err, size_t errlen)
{
	int v = 0;

	if (!readonly &&
	    sqldb_exec(d->db, d->path, "BEGIN IMMEDIATE", err, errlen) != 0)
		return -1;
	if (sqldb_user_version(d->db, &v) != 0) {
		sqldb_err(d->db, d->path, "user_version", err, errlen);
		goto fail;
	}
	if (v > DMARCDB_SCHEMA_VERSION) {
		str_fmt_cut(err, errlen,
		    "sqlite %s: schema version %d is newer than this tern "
		    "knows (%d)",
		    d->path, v, DMARCDB_SCHEMA_VERSION);
		goto fail;
	}
	if (readonly) {
		if (v == DMARCDB_SCHEMA_VERSION)
			return 0;
		str_fmt_cut(err, errlen,
		    "sqlite %s: schema version %d, expected %d (ternd "
		    "migrates it)",
		    d->path, v, DMARCDB_SCHEMA_VERSION);
		return -1;
	}
	if (v < 1 && sqldb_exec(d->db, d->path, dd_schema_v1, err, errlen) != 0)
		goto fail;
	if (v < DMARCDB_SCHEMA_VERSION &&
	    sqldb_exec(
		d->db, d->path, "PRAGMA user_version = 1", err, errlen) != 0)
		goto fail;
	return sqldb_exec(d->db, d->path, "COMMIT", err, errlen);
fail:
	if (!readonly &&
	    sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
		log_warn("event=dmarcdb step=rollback path=%s", d->path);
	return -1;
}

static int
dd_count(struct dmarcdb *d, char *err, size_t errlen)
{
	sqlite3_stmt *s = d->st[DD_COUNT];
	int rc = sqlite3_step(s);

	if (rc == SQLITE_ROW)
		d->rows = (uint64_t)sqlite3_column_int64(s, 0);
	sqldb_reset(s);
	return rc == SQLITE_ROW
		   ? 0
		   : sqldb_err(d->db, d->path, "count", err, errlen);
}

int
dmarcdb_open(const char *path, bool readonly, struct dmarcdb **out, char *err,
    size_t errlen)
{
	struct dmarcdb *d = xcalloc(1, sizeof(*d));
	int i, fd;

	*out = NULL;
	if (str_copy(d->path, sizeof(d->path), path, strlen(path)) != 0) {
		str_fmt_cut(err, errlen, "%s: path too long", path);
		free(d);
		return -1;
	}
	if (!readonly) {
		/* the file holds peers' addresses: 0600 from its first byte */
		fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0) {
			str_fmt_cut(
			    err, errlen, "%s: %s", path, strerror(errno));
			free(d);
			return -1;
		}
		/* nothing written: a failed close loses nothing */
		if (close(fd) != 0)
			log_debug("event=dmarcdb step=close path=%s", path);
	}
	if (sqlite3_open_v2(path, &d->db,
		readonly ? SQLITE_OPEN_READONLY
			 : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
		NULL) != SQLITE_OK) {
		sqldb_err(d->db, d->path, "open", err, errlen);
		goto fail;
	}
	sqlite3_extended_result_codes(d->db, 1);
	if (sqlite3_busy_timeout(d->db, DD_BUSY_MS) != SQLITE_OK ||
	    (!readonly && sqldb_exec(d->db, d->path,
			      "PRAGMA journal_mode = WAL", err, errlen) != 0) ||
	    dd_schema(d, readonly, err, errlen) != 0)
		goto fail;
	for (i = 0; i < DD_NSTMT; i++)
		if (sqlite3_prepare_v3(d->db, dd_sql[i], -1,
			SQLITE_PREPARE_PERSISTENT, &d->st[i],
			NULL) != SQLITE_OK) {
			sqldb_err(d->db, d->path, "prepare", err, errlen);
			goto fail;
		}
	if (dd_count(d, err, errlen) != 0)
		goto fail;
	*out = d;
	return 0;
fail:
	dmarcdb_close(d);
	return -1;
}

void
dmarcdb_close(struct dmarcdb *d)
{
	int i;

	if (d == NULL)
		return;
	for (i = 0; i < DD_NSTMT; i++)
		sqlite3_finalize(d->st[i]);
	/* every statement is finalized, so close cannot be busy */
	if (sqlite3_close(d->db) != SQLITE_OK)
		log_warn("event=dmarcdb step=close path=%s", d->path);
	free(d);
}

uint64_t
dmarcdb_rows(const struct dmarcdb *d)
{
	return d->rows;
}

/* ---- adding ------------------------------------------------------------ */

static const char *
dd_disp(enum dmarc_policy p)
{
	return p == DMARC_P_REJECT	 ? "reject"
	       : p == DMARC_P_QUARANTINE ? "quarantine"
					 : "none";
}

static enum dmarc_policy
dd_disp_parse(const char *s)
{
	if (strcmp(s, "none") == 0)
		return DMARC_P_NONE;
	if (strcmp(s, "quarantine") == 0)
		return DMARC_P_QUARANTINE;
	if (strcmp(s, "reject") == 0)
		return DMARC_P_REJECT;
	return DMARC_P_INVALID;
}

static int
dd_bind_key(sqlite3_stmt *s, const struct dmarcdb_entry *e, const char *dkim)
{
	const struct dmarcxml_row *r = &e->row;
	const char *t[] = {e->pol.domain, r->source_ip, r->header_from,
	    r->envelope_from, dd_disp(r->disposition),
	    r->dkim_pass ? "pass" : "fail", r->spf_pass ? "pass" : "fail",
	    r->reason, dkim, r->spf_domain, r->spf_scope, r->spf_result};
	int i;

	if (sqlite3_bind_int64(s, 1, e->period) != SQLITE_OK)
		return -1;
	for (i = 0; i < 12; i++)
		if (sqlite3_bind_text(s, i + 2, t[i], -1, SQLITE_STATIC) !=
		    SQLITE_OK)
			return -1;
	return sqlite3_bind_int64(s, 14, (sqlite3_int64)r->count) == SQLITE_OK
		   ? 0
		   : -1;
}

/* run s (bound) to its end; 0 or -1 */
static int
dd_step_done(sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);

	sqldb_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int
dd_policy_put(struct dmarcdb *d, const struct dmarcdb_entry *e)
{
	sqlite3_stmt *s = d->st[DD_POLICY_PUT];
	const struct dmarcxml_policy *p = &e->pol;

	if (sqlite3_bind_text(s, 1, p->domain, -1, SQLITE_STATIC) !=
		SQLITE_OK ||
	    sqlite3_bind_text(s, 2, p->adkim == DMARC_ALIGN_STRICT ? "s" : "r",
		-1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(s, 3, p->aspf == DMARC_ALIGN_STRICT ? "s" : "r",
		-1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(s, 4, dd_disp(p->p), -1, SQLITE_STATIC) !=
		SQLITE_OK ||
	    sqlite3_bind_text(s, 5, dd_disp(p->sp), -1, SQLITE_STATIC) !=
		SQLITE_OK ||
	    sqlite3_bind_int(s, 6, (int)(p->pct > 100 ? 100 : p->pct)) !=
		SQLITE_OK ||
	    sqlite3_bind_text(s, 7, e->rua, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 8, e->period) != SQLITE_OK) {
		sqldb_reset(s);
		return -1;
	}
	return dd_step_done(s);
}

/* one entry: 1 added, 0 dropped, -1 failed */
static int
dd_add_one(struct dmarcdb *d, const struct dmarcdb_entry *e, uint64_t max_rows)
{
	char dkim[DMARCXML_DKIM_TEXT_MAX + 1];
	sqlite3_stmt *s;

	if (!dmarcxml_row_ok(&e->row) || e->pol.domain[0] == '\0' ||
	    dmarcxml_dkim_encode(&e->row, dkim, sizeof(dkim)) != 0)
		return 0;
	s = d->st[DD_UPDATE];
	if (dd_bind_key(s, e, dkim) != 0 || dd_step_done(s) != 0)
		return -1;
	if (sqlite3_changes(d->db) == 0) {
		if (d->rows >= max_rows)
			return 0;
		s = d->st[DD_INSERT];
		if (dd_bind_key(s, e, dkim) != 0 || dd_step_done(s) != 0)
			return -1;
		d->rows++;
	}
	return dd_policy_put(d, e) == 0 ? 1 : -1;
}

int
dmarcdb_add(struct dmarcdb *d, const struct dmarcdb_entry *e, size_t n,
    uint64_t max_rows, size_t *dropped_out, char *err, size_t errlen)
{
	uint64_t rows_before = d->rows;
	size_t i, dropped = 0;
	int r;

	*dropped_out = 0;
	if (sqldb_exec(d->db, d->path, "BEGIN IMMEDIATE", err, errlen) != 0)
		return -1;
	for (i = 0; i < n; i++) {
		if ((r = dd_add_one(d, &e[i], max_rows)) < 0) {
			sqldb_err(d->db, d->path, "add", err, errlen);
			goto fail;
		}
		if (r == 0)
			dropped++;
	}
	if (sqldb_exec(d->db, d->path, "COMMIT", err, errlen) != 0)
		goto fail;
	*dropped_out = dropped;
	return 0;
fail:
	if (sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
		log_warn("event=dmarcdb step=rollback path=%s", d->path);
	d->rows = rows_before;
	return -1;
}

/* ---- reading ----------------------------------------------------------- */

int
dmarcdb_domains(struct dmarcdb *d, int64_t cutoff, char ***out, size_t *n_out,
    char *err, size_t errlen)
{
	sqlite3_stmt *s = d->st[DD_DOMAINS];
	char **v = NULL;
	size_t n = 0, cap = 0;
	int rc;

	*out = NULL;
	*n_out = 0;
	if (sqlite3_bind_int64(s, 1, cutoff) != SQLITE_OK)
		return sqldb_err(d->db, d->path, "bind", err, errlen);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(s, 0);

		if (t == NULL)
			continue;
		if (n == cap) {
			char **nv;

			cap = cap ? cap * 2 : 16;
			nv = xcalloc(cap, sizeof(*nv));
			if (n > 0)
				memcpy(nv, v, n * sizeof(*v));
			free(v);
			v = nv;
		}
		v[n++] = xstrdup((const char *)t);
	}
	sqldb_reset(s);
	if (rc != SQLITE_DONE) {
		dmarcdb_domains_free(v, n);
		return sqldb_err(d->db, d->path, "domains", err, errlen);
	}
	*out = v;
	*n_out = n;
	return 0;
}

void
dmarcdb_domains_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static int
dd_col(sqlite3_stmt *s, int i, char *out, size_t outlen)
{
	const unsigned char *t = sqlite3_column_text(s, i);

	if (t == NULL)
		return -1;
	return str_copy(
	    out, outlen, (const char *)t, (size_t)sqlite3_column_bytes(s, i));
}

/* 0 found, 1 no policy row, -1 error */
static int
dd_policy_get(struct dmarcdb *d, const char *domain, struct dmarcdb_report *r)
{
	sqlite3_stmt *s = d->st[DD_POLICY_GET];
	char a[4], b[4], p[16], sp[16];
	int rc, out = 1;

	if (sqlite3_bind_text(s, 1, domain, -1, SQLITE_STATIC) != SQLITE_OK)
		return -1;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		out = -1;
		if (str_copy(r->pol.domain, sizeof(r->pol.domain), domain,
			strlen(domain)) == 0 &&
		    dd_col(s, 0, a, sizeof(a)) == 0 &&
		    dd_col(s, 1, b, sizeof(b)) == 0 &&
		    dd_col(s, 2, p, sizeof(p)) == 0 &&
		    dd_col(s, 3, sp, sizeof(sp)) == 0 &&
		    dd_col(s, 5, r->rua, sizeof(r->rua)) == 0) {
			r->pol.adkim = a[0] == 's' ? DMARC_ALIGN_STRICT
						   : DMARC_ALIGN_RELAXED;
			r->pol.aspf = b[0] == 's' ? DMARC_ALIGN_STRICT
						  : DMARC_ALIGN_RELAXED;
			r->pol.p = dd_disp_parse(p);
			r->pol.sp = dd_disp_parse(sp);
			r->pol.pct = (unsigned)sqlite3_column_int(s, 4);
			out = 0;
		}
	} else if (rc != SQLITE_DONE) {
		out = -1;
	}
	sqldb_reset(s);
	return out;
}

static int
dd_first_period(struct dmarcdb *d, const char *domain, int64_t cutoff,
    int64_t *first, bool *any)
{
	sqlite3_stmt *s = d->st[DD_FIRST];
	int rc;

	*any = false;
	if (sqlite3_bind_text(s, 1, domain, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 2, cutoff) != SQLITE_OK) {
		sqldb_reset(s);
		return -1;
	}
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL) {
		*first = sqlite3_column_int64(s, 0);
		*any = true;
	}
	sqldb_reset(s);
	return rc == SQLITE_ROW ? 0 : -1;
}

/* one row of DD_ROWS into row: 0, or -1 when it is not valid */
static int
dd_row_read(sqlite3_stmt *s, struct dmarcxml_row *row)
{
	char disp[16], dk[8], sp[8], dkim[DMARCXML_DKIM_TEXT_MAX + 1];
	sqlite3_int64 count;

	memset(row, 0, sizeof(*row));
	if (dd_col(s, 0, row->source_ip, sizeof(row->source_ip)) != 0 ||
	    dd_col(s, 1, row->header_from, sizeof(row->header_from)) != 0 ||
	    dd_col(s, 2, row->envelope_from, sizeof(row->envelope_from)) != 0 ||
	    dd_col(s, 3, disp, sizeof(disp)) != 0 ||
	    dd_col(s, 4, dk, sizeof(dk)) != 0 ||
	    dd_col(s, 5, sp, sizeof(sp)) != 0 ||
	    dd_col(s, 6, row->reason, sizeof(row->reason)) != 0 ||
	    dd_col(s, 7, dkim, sizeof(dkim)) != 0 ||
	    dd_col(s, 8, row->spf_domain, sizeof(row->spf_domain)) != 0 ||
	    dd_col(s, 9, row->spf_scope, sizeof(row->spf_scope)) != 0 ||
	    dd_col(s, 10, row->spf_result, sizeof(row->spf_result)) != 0 ||
	    dmarcxml_dkim_decode(dkim, row) != 0)
		return -1;
	row->disposition = dd_disp_parse(disp);
	if ((strcmp(dk, "pass") != 0 && strcmp(dk, "fail") != 0) ||
	    (strcmp(sp, "pass") != 0 && strcmp(sp, "fail") != 0))
		return -1;
	row->dkim_pass = dk[0] == 'p';
	row->spf_pass = sp[0] == 'p';
	count = sqlite3_column_int64(s, 11);
	if (count <= 0)
		return -1;
	row->count = (uint64_t)count;
	return dmarcxml_row_ok(row) ? 0 : -1;
}

/* every row of domain into r->xml */
static int
dd_rows(struct dmarcdb *d, const char *domain, int64_t cutoff,
    struct dmarcdb_report *r)
{
	sqlite3_stmt *s = d->st[DD_ROWS];
	struct dmarcxml_row *row = xcalloc(1, sizeof(*row));
	int rc, out = 0;

	if (sqlite3_bind_text(s, 1, domain, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 2, cutoff) != SQLITE_OK) {
		sqldb_reset(s);
		free(row);
		return -1;
	}
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (dd_row_read(s, row) != 0) {
			r->bad_rows++;
			continue;
		}
		if (dmarcxml_row(row, &r->xml) != 0) {
			out = -2; /* a valid row: the report outgrew xml_max */
			break;
		}
		r->nrows++;
		r->messages += row->count;
	}
	if (out == 0 && rc != SQLITE_DONE)
		out = -1;
	sqldb_reset(s);
	free(row);
	return out;
}

int
dmarcdb_report(struct dmarcdb *d, const char *domain, int64_t cutoff,
    struct dmarcxml_meta *meta, size_t xml_max, struct dmarcdb_report *r,
    char *err, size_t errlen)
{
	bool any;
	int rc;

	memset(r, 0, sizeof(*r));
	buf_init(&r->xml, xml_max);
	if (dd_first_period(d, domain, cutoff, &r->begin, &any) != 0)
		return sqldb_err(d->db, d->path, "first period", err, errlen);
	if (!any)
		return 1;
	if ((rc = dd_policy_get(d, domain, r)) < 0)
		return sqldb_err(d->db, d->path, "policy", err, errlen);
	if (rc == 1) {
		r->bad_rows = 1;
		return 1; /* rows without a policy: nothing to report by */
	}
	r->end = cutoff - 1;
	meta->begin = r->begin;
	meta->end = r->end;
	if (dmarcxml_begin(meta, &r->pol, &r->xml) != 0) {
		str_fmt_cut(err, errlen, "report of %s: larger than %zu octets",
		    domain, xml_max);
		return 2;
	}
	if ((rc = dd_rows(d, domain, cutoff, r)) == -1)
		return sqldb_err(d->db, d->path, "rows", err, errlen);
	if (r->nrows == 0 && rc == 0)
		return 1;
	if (rc == -2 || dmarcxml_end(&r->xml) != 0) {
		str_fmt_cut(err, errlen, "report of %s: larger than %zu octets",
		    domain, xml_max);
		return 2;
	}
	return 0;
}

void
dmarcdb_report_free(struct dmarcdb_report *r)
{
	buf_free(&r->xml);
}

int
dmarcdb_clear(struct dmarcdb *d, const char *domain, int64_t cutoff, char *err,
    size_t errlen)
{
	sqlite3_stmt *s = d->st[DD_CLEAR], *p = d->st[DD_CLEAR_POLICY];

	if (sqldb_exec(d->db, d->path, "BEGIN IMMEDIATE", err, errlen) != 0)
		return -1;
	if (sqlite3_bind_text(s, 1, domain, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 2, cutoff) != SQLITE_OK ||
	    dd_step_done(s) != 0)
		goto fail;
	if (sqlite3_bind_text(p, 1, domain, -1, SQLITE_STATIC) != SQLITE_OK ||
	    dd_step_done(p) != 0)
		goto fail;
	if (sqldb_exec(d->db, d->path, "COMMIT", err, errlen) != 0)
		goto fail_quiet;
	return dd_count(d, err, errlen);
fail:
	sqldb_err(d->db, d->path, "clear", err, errlen);
fail_quiet:
	sqldb_reset(s);
	sqldb_reset(p);
	if (sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
		log_warn("event=dmarcdb step=rollback path=%s", d->path);
	return -1;
}

/* ---- gzip -------------------------------------------------------------- */

int
dmarcdb_gzip(const void *in, size_t len, struct buf *out)
{
	z_stream z;
	uLong bound;
	int rc;

	memset(&z, 0, sizeof(z));
	/* 15 + 16: a gzip wrapper (RFC 1952), not zlib's own */
	if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
		Z_DEFAULT_STRATEGY) != Z_OK)
		return -1;
	bound = deflateBound(&z, (uLong)len) + 32;
	if (len > UINT32_MAX || buf_reserve(out, bound) != 0) {
		deflateEnd(&z);
		return -1;
	}
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)len;
	z.next_out = (Bytef *)out->data + out->len;
	z.avail_out = (uInt)(out->cap - out->len - 1);
	rc = deflate(&z, Z_FINISH);
	if (rc == Z_STREAM_END) {
		out->len += z.total_out;
		out->data[out->len] = '\0';
	}
	deflateEnd(&z);
	return rc == Z_STREAM_END ? 0 : -1;
}
