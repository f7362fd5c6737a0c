/*
 * tern dmarc: DMARC aggregate reports (RFC 7489 7.2).
 *
 *   tern dmarc report            ask ternd (control.sock, DMARC-REPORT) to
 *                                end the current period and send every
 *                                report due now
 *   tern dmarc report --dry-run  print what would be sent, read from
 *                                STATE/dmarc.db: per domain the policy,
 *                                each rua destination and what tern would
 *                                do with it, the rows, and the XML; sends
 *                                nothing and clears nothing
 *
 * The dry run opens the store read-only (WAL: a running ternd goes on
 * writing) and asks no DNS: an external destination is shown with the
 * TXT name whose record must authorise it (7.1), which ternd asks when it
 * sends.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <time.h>

#include "cli/cli.h"
#include "dmarcdb/dmarcdb.h"
#include "mailauth/dmarcxml.h"
#include "mailauth/psl.h"

static const char dm_usage[] = "usage: tern dmarc report [--dry-run]\n";

/* report_from and report_org as ternd derives them (server/dmarcrep.c) */
static int
dm_names(const struct conf *c, char *from, size_t fromlen, const char **org,
    const char **submitter)
{
	const char *at;

	if (str_fmt(from, fromlen, "%s",
		c->dmarc_report_from ? c->dmarc_report_from : "") != 0 ||
	    (c->dmarc_report_from == NULL &&
		str_fmt(from, fromlen, "dmarc-noreply@%s", c->hostname) != 0))
		return -1;
	at = strrchr(from, '@');
	if (at == NULL || at[1] == '\0')
		return -1;
	*submitter = at + 1;
	*org = c->dmarc_report_org ? c->dmarc_report_org : c->hostname;
	return 0;
}

static void
dm_print_dest(const struct psl *psl, const char *domain,
    const struct dmarc_uri *u, uint64_t size)
{
	enum dmarcxml_dest d = dmarcxml_dest_check(psl, domain, u, size);
	char qname[DMARC_QNAME_MAX + 1];

	printf(
	    "  rua %.*s: %s", (int)u->uri_len, u->uri, dmarcxml_dest_name(d));
	if (d == DMARCXML_DEST_NEEDS_AUTH &&
	    dmarc_rua_auth_name(
		domain, u->host, u->host_len, qname, sizeof(qname)) == 0)
		printf(" (sent if TXT %s holds v=DMARC1)", qname);
	if (d == DMARCXML_DEST_TOO_BIG)
		printf(" (limit %" PRIu64 ", report about %" PRIu64 ")",
		    u->max_size, size);
	putchar('\n');
}

/* The mail's size as ternd would queue it: body plus a header section. */
static uint64_t
dm_mail_size(
    const char *domain, const struct dmarcdb_report *r, const char *submitter)
{
	struct buf gz, body;
	char name[DMARCXML_NAME_MAX * 2 + 64];
	uint64_t size = 0;

	buf_init(&gz, r->xml.len + 4096);
	buf_init(&body, (r->xml.len + 4096) * 2);
	if (dmarcdb_gzip(r->xml.data, r->xml.len, &gz) == 0 &&
	    dmarcxml_filename(
		submitter, domain, r->begin, r->end, name, sizeof(name)) == 0 &&
	    dmarcxml_mail_body("=_dmarc_dry_run", domain, name,
		(const unsigned char *)gz.data, gz.len, &body) == 0)
		size = body.len + 4096;
	buf_free(&gz);
	buf_free(&body);
	return size;
}

static int
dm_dry_domain(struct dmarcdb *db, const struct psl *psl, const char *domain,
    const char *from, const char *org, const char *submitter)
{
	struct dmarcxml_meta meta = {org, from, "dry-run", 0, 0};
	struct dmarcdb_report r;
	struct dmarc_record rec;
	char err[512], text[DMARCDB_RUA_MAX + 32];
	uint64_t size;
	size_t i;
	int rc;

	/* every row up to this second (ternd's run ends the period now) */
	rc = dmarcdb_report(db, domain, (int64_t)time(NULL) + 1, &meta,
	    (size_t)64 << 20, &r, err, sizeof(err));
	if (rc == 2) {
		printf("domain %s: %s (ternd drops these rows)\n", domain, err);
		dmarcdb_report_free(&r);
		return 0;
	}
	if (rc != 0) {
		if (rc < 0)
			cli_warnx("dmarc: %s", err);
		else
			printf("domain %s: nothing to report (%zu invalid "
			       "rows)\n",
			    domain, r.bad_rows);
		dmarcdb_report_free(&r);
		return rc < 0 ? EX_SOFTWARE : 0;
	}
	size = dm_mail_size(domain, &r, submitter);
	printf("domain %s: %zu rows, %" PRIu64 " messages, from %" PRId64
	       " to now\n",
	    domain, r.nrows, r.messages, r.begin);
	if (r.bad_rows > 0)
		printf("  %zu invalid rows left out\n", r.bad_rows);
	if (str_fmt(text, sizeof(text), "v=DMARC1; rua=%s", r.rua) == 0 &&
	    dmarc_record_parse(text, strlen(text), &rec) == DMARC_PARSE_OK)
		for (i = 0; i < rec.nrua; i++)
			dm_print_dest(psl, domain, &rec.rua[i], size);
	fwrite(r.xml.data, 1, r.xml.len, stdout);
	dmarcdb_report_free(&r);
	return 0;
}

static int
dm_dry_run(const struct conf *c)
{
	char path[4096], err[512], from[400];
	const char *org, *submitter;
	struct dmarcdb *db;
	struct psl *psl;
	struct stat st;
	char **domains;
	size_t n, i;
	int rc = 0;

	if (dm_names(c, from, sizeof(from), &org, &submitter) != 0) {
		cli_warnx("dmarc: dmarc.report_from is not an address");
		return EX_CONFIG;
	}
	if (str_fmt(path, sizeof(path), "%s/dmarc.db", c->state_dir) != 0)
		return EX_CONFIG;
	if (stat(path, &st) != 0 && errno == ENOENT) {
		printf("no DMARC report data (%s does not exist)\n", path);
		return 0;
	}
	if (psl_load_file(PSL_DEFAULT_PATH, &psl) != 0) {
		cli_warnx("dmarc: %s: %s", PSL_DEFAULT_PATH, strerror(errno));
		return EX_OSFILE;
	}
	if (dmarcdb_open(path, true, &db, err, sizeof(err)) != 0) {
		cli_warnx("dmarc: %s", err);
		psl_free(psl);
		return EX_IOERR;
	}
	if (dmarcdb_domains(db, INT64_MAX, &domains, &n, err, sizeof(err)) !=
	    0) {
		cli_warnx("dmarc: %s", err);
		rc = EX_IOERR;
		n = 0;
		domains = NULL;
	}
	if (rc == 0 && n == 0)
		printf("no DMARC reports due\n");
	for (i = 0; i < n && rc == 0; i++)
		rc = dm_dry_domain(db, psl, domains[i], from, org, submitter);
	dmarcdb_domains_free(domains, n);
	dmarcdb_close(db);
	psl_free(psl);
	return rc;
}

static int
dm_send(const struct conf *c)
{
	static const char *const keys[] = {
	    "domains", "queued", "skipped", "failed"};
	int64_t v[4];
	int rc = cli_control_ints(c, "DMARC-REPORT", keys, v, 4);

	if (rc != 0)
		return rc;
	printf("domains %" PRId64 ", reports queued %" PRId64
	       ", skipped %" PRId64 ", failed %" PRId64 "\n",
	    v[0], v[1], v[2], v[3]);
	return v[3] > 0 ? 1 : 0;
}

int
cli_dmarc(const struct conf *c, int argc, char **argv)
{
	bool dry = false;

	if (argc < 2 || strcmp(argv[1], "report") != 0 || argc > 3 ||
	    (argc == 3 && !(dry = strcmp(argv[2], "--dry-run") == 0))) {
		fputs(dm_usage, stderr);
		return EX_USAGE;
	}
	if (!dry)
		return dm_send(c);
	if (cli_become_user(c) != 0)
		return 1;
	return dm_dry_run(c);
}
