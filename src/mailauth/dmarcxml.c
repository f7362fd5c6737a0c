/*
 * dmarcxml: the aggregate report of RFC 7489 7.2 as XML (appendix C), its
 * file name and mail, and the rule for each rua URI.  Pure: everything is
 * appended to the caller's buffer; a row is checked against the schema's
 * enumerations before a byte of it is written, so the output is valid
 * whatever the store held.
 */
#include <inttypes.h>
#include <string.h>

#include "auth/auth.h"
#include "mailauth/dmarcxml.h"

static const char *const dx_dkim_results[] = {
    "none",
    "pass",
    "fail",
    "policy",
    "neutral",
    "temperror",
    "permerror",
};
static const char *const dx_spf_results[] = {
    "none",
    "neutral",
    "pass",
    "fail",
    "softfail",
    "temperror",
    "permerror",
};
/* PolicyOverrideType */
static const char *const dx_reasons[] = {
    "forwarded",
    "sampled_out",
    "trusted_forwarder",
    "mailing_list",
    "local_policy",
    "other",
};

static bool
dx_in(const char *s, const char *const *set, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(s, set[i]) == 0)
			return true;
	return false;
}

bool
dmarcxml_dkim_result_ok(const char *s)
{
	return dx_in(s, dx_dkim_results,
	    sizeof(dx_dkim_results) / sizeof(dx_dkim_results[0]));
}

bool
dmarcxml_spf_result_ok(const char *s)
{
	return dx_in(s, dx_spf_results,
	    sizeof(dx_spf_results) / sizeof(dx_spf_results[0]));
}

bool
dmarcxml_reason_ok(const char *s)
{
	return s[0] == '\0' ||
	       dx_in(s, dx_reasons, sizeof(dx_reasons) / sizeof(dx_reasons[0]));
}

static bool
dx_disposition_ok(enum dmarc_policy p)
{
	return p == DMARC_P_NONE || p == DMARC_P_QUARANTINE ||
	       p == DMARC_P_REJECT;
}

bool
dmarcxml_row_ok(const struct dmarcxml_row *row)
{
	size_t i;

	if (row->count == 0 || row->source_ip[0] == '\0' ||
	    row->header_from[0] == '\0' ||
	    !dx_disposition_ok(row->disposition) ||
	    !dmarcxml_reason_ok(row->reason) ||
	    row->ndkim > DMARCXML_DKIM_MAX || row->spf_domain[0] == '\0' ||
	    (strcmp(row->spf_scope, "mfrom") != 0 &&
		strcmp(row->spf_scope, "helo") != 0) ||
	    !dmarcxml_spf_result_ok(row->spf_result))
		return false;
	for (i = 0; i < row->ndkim; i++)
		if (row->dkim[i].domain[0] == '\0' ||
		    !dmarcxml_dkim_result_ok(row->dkim[i].result))
			return false;
	return true;
}

/* ---- XML ------------------------------------------------------------------
 */

/* s escaped as XML character data; control bytes (invalid in XML 1.0)
 * become '?' so that a stray byte cannot make the document ill-formed */
static int
dx_text(struct buf *out, const char *s)
{
	const char *rep;
	char one[2] = {0, 0};
	int rc = 0;

	for (; *s != '\0' && rc == 0; s++) {
		unsigned char c = (unsigned char)*s;

		switch (c) {
		case '&':
			rep = "&amp;";
			break;
		case '<':
			rep = "&lt;";
			break;
		case '>':
			rep = "&gt;";
			break;
		case '"':
			rep = "&quot;";
			break;
		case '\'':
			rep = "&apos;";
			break;
		default:
			one[0] = (char)(c < 0x20 || c == 0x7f ? '?' : c);
			rep = one;
		}
		rc = buf_append_str(out, rep);
	}
	return rc;
}

/* <name>text</name> at an indentation of depth tabs */
static int
dx_elem(struct buf *out, int depth, const char *name, const char *text)
{
	if (buf_printf(out, "%.*s<%s>", depth, "\t\t\t\t\t\t", name) != 0 ||
	    dx_text(out, text) != 0 || buf_printf(out, "</%s>\n", name) != 0)
		return -1;
	return 0;
}

static int
dx_open(struct buf *out, int depth, const char *name)
{
	return buf_printf(out, "%.*s<%s>\n", depth, "\t\t\t\t\t\t", name);
}

static int
dx_close(struct buf *out, int depth, const char *name)
{
	return buf_printf(out, "%.*s</%s>\n", depth, "\t\t\t\t\t\t", name);
}

static const char *
dx_align(enum dmarc_align a)
{
	return a == DMARC_ALIGN_STRICT ? "s" : "r";
}

/* a disposition word; anything else (unset, invalid) reads as none */
static const char *
dx_disp(enum dmarc_policy p)
{
	return p == DMARC_P_REJECT	 ? "reject"
	       : p == DMARC_P_QUARANTINE ? "quarantine"
					 : "none";
}

int
dmarcxml_begin(const struct dmarcxml_meta *m, const struct dmarcxml_policy *pol,
    struct buf *out)
{
	char n[24];

	if (buf_append_str(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
				"<feedback>\n") != 0 ||
	    dx_open(out, 1, "report_metadata") != 0 ||
	    dx_elem(out, 2, "org_name", m->org_name) != 0 ||
	    dx_elem(out, 2, "email", m->email) != 0 ||
	    dx_elem(out, 2, "report_id", m->report_id) != 0 ||
	    dx_open(out, 2, "date_range") != 0 ||
	    buf_printf(out, "\t\t\t<begin>%" PRId64 "</begin>\n", m->begin) !=
		0 ||
	    buf_printf(out, "\t\t\t<end>%" PRId64 "</end>\n", m->end) != 0 ||
	    dx_close(out, 2, "date_range") != 0 ||
	    dx_close(out, 1, "report_metadata") != 0)
		return -1;
	if (str_fmt(n, sizeof(n), "%u", pol->pct > 100 ? 100 : pol->pct) != 0)
		return -1;
	if (dx_open(out, 1, "policy_published") != 0 ||
	    dx_elem(out, 2, "domain", pol->domain) != 0 ||
	    dx_elem(out, 2, "adkim", dx_align(pol->adkim)) != 0 ||
	    dx_elem(out, 2, "aspf", dx_align(pol->aspf)) != 0 ||
	    dx_elem(out, 2, "p", dx_disp(pol->p)) != 0 ||
	    dx_elem(out, 2, "sp", dx_disp(pol->sp)) != 0 ||
	    dx_elem(out, 2, "pct", n) != 0 ||
	    dx_close(out, 1, "policy_published") != 0)
		return -1;
	return 0;
}

static int
dx_row_head(const struct dmarcxml_row *row, struct buf *out)
{
	char n[24];

	if (str_fmt(n, sizeof(n), "%" PRIu64, row->count) != 0 ||
	    dx_open(out, 2, "row") != 0 ||
	    dx_elem(out, 3, "source_ip", row->source_ip) != 0 ||
	    dx_elem(out, 3, "count", n) != 0 ||
	    dx_open(out, 3, "policy_evaluated") != 0 ||
	    dx_elem(out, 4, "disposition", dx_disp(row->disposition)) != 0 ||
	    dx_elem(out, 4, "dkim", row->dkim_pass ? "pass" : "fail") != 0 ||
	    dx_elem(out, 4, "spf", row->spf_pass ? "pass" : "fail") != 0)
		return -1;
	if (row->reason[0] != '\0' &&
	    (dx_open(out, 4, "reason") != 0 ||
		dx_elem(out, 5, "type", row->reason) != 0 ||
		dx_close(out, 4, "reason") != 0))
		return -1;
	if (dx_close(out, 3, "policy_evaluated") != 0 ||
	    dx_close(out, 2, "row") != 0)
		return -1;
	return 0;
}

static int
dx_row_ids(const struct dmarcxml_row *row, struct buf *out)
{
	if (dx_open(out, 2, "identifiers") != 0 ||
	    (row->envelope_from[0] != '\0' &&
		dx_elem(out, 3, "envelope_from", row->envelope_from) != 0) ||
	    dx_elem(out, 3, "header_from", row->header_from) != 0 ||
	    dx_close(out, 2, "identifiers") != 0)
		return -1;
	return 0;
}

static int
dx_row_auth(const struct dmarcxml_row *row, struct buf *out)
{
	size_t i;

	if (dx_open(out, 2, "auth_results") != 0)
		return -1;
	for (i = 0; i < row->ndkim; i++) {
		const struct dmarcxml_dkim *d = &row->dkim[i];

		if (dx_open(out, 3, "dkim") != 0 ||
		    dx_elem(out, 4, "domain", d->domain) != 0 ||
		    (d->selector[0] != '\0' &&
			dx_elem(out, 4, "selector", d->selector) != 0) ||
		    dx_elem(out, 4, "result", d->result) != 0 ||
		    dx_close(out, 3, "dkim") != 0)
			return -1;
	}
	if (dx_open(out, 3, "spf") != 0 ||
	    dx_elem(out, 4, "domain", row->spf_domain) != 0 ||
	    dx_elem(out, 4, "scope", row->spf_scope) != 0 ||
	    dx_elem(out, 4, "result", row->spf_result) != 0 ||
	    dx_close(out, 3, "spf") != 0 ||
	    dx_close(out, 2, "auth_results") != 0)
		return -1;
	return 0;
}

int
dmarcxml_row(const struct dmarcxml_row *row, struct buf *out)
{
	size_t mark = out->len;

	if (!dmarcxml_row_ok(row))
		return -1;
	if (dx_open(out, 1, "record") != 0 || dx_row_head(row, out) != 0 ||
	    dx_row_ids(row, out) != 0 || dx_row_auth(row, out) != 0 ||
	    dx_close(out, 1, "record") != 0) {
		/* no half record: the caller may stop here and end the
		 * document */
		out->len = mark;
		if (out->data != NULL)
			out->data[mark] = '\0';
		return -1;
	}
	return 0;
}

int
dmarcxml_end(struct buf *out)
{
	return buf_append_str(out, "</feedback>\n");
}

/* ---- the DKIM results as text --------------------------------------------
 */

int
dmarcxml_dkim_encode(const struct dmarcxml_row *row, char *out, size_t outlen)
{
	size_t i, at = 0;

	if (outlen == 0)
		return -1;
	out[0] = '\0';
	for (i = 0; i < row->ndkim; i++) {
		const struct dmarcxml_dkim *d = &row->dkim[i];

		if (strpbrk(d->domain, "/ ") != NULL ||
		    strpbrk(d->selector, "/ ") != NULL ||
		    str_fmt(out + at, outlen - at, "%s%s/%s/%s", i ? " " : "",
			d->domain, d->selector, d->result) != 0) {
			out[0] = '\0';
			return -1;
		}
		at += strlen(out + at);
	}
	return 0;
}

/* one "d/s/result" item of n octets */
static int
dx_dkim_item(const char *s, size_t n, struct dmarcxml_dkim *d)
{
	const char *s1 = memchr(s, '/', n), *s2;
	size_t dl, sl, rl;

	if (s1 == NULL ||
	    (s2 = memchr(s1 + 1, '/', (size_t)(s + n - s1 - 1))) == NULL)
		return -1;
	dl = (size_t)(s1 - s);
	sl = (size_t)(s2 - s1 - 1);
	rl = (size_t)(s + n - s2 - 1);
	if (dl == 0 || str_copy(d->domain, sizeof(d->domain), s, dl) != 0 ||
	    str_copy(d->selector, sizeof(d->selector), s1 + 1, sl) != 0 ||
	    str_copy(d->result, sizeof(d->result), s2 + 1, rl) != 0 ||
	    !dmarcxml_dkim_result_ok(d->result))
		return -1;
	return 0;
}

int
dmarcxml_dkim_decode(const char *text, struct dmarcxml_row *row)
{
	const char *p = text;

	row->ndkim = 0;
	while (*p != '\0') {
		const char *sp = strchr(p, ' ');
		size_t n = sp ? (size_t)(sp - p) : strlen(p);

		if (row->ndkim == DMARCXML_DKIM_MAX ||
		    dx_dkim_item(p, n, &row->dkim[row->ndkim]) != 0) {
			row->ndkim = 0;
			return -1;
		}
		row->ndkim++;
		p += n;
		if (*p == ' ' && *++p == '\0') {
			row->ndkim = 0; /* a trailing blank: not our form */
			return -1;
		}
	}
	return 0;
}

int
dmarcxml_filename(const char *receiver, const char *domain, int64_t begin,
    int64_t end, char *out, size_t outlen)
{
	return str_fmt(out, outlen, "%s!%s!%" PRId64 "!%" PRId64 ".xml.gz",
	    receiver, domain, begin, end);
}

/* ---- the mail ---------------------------------------------------------- */

static bool
dx_line_safe(const char *s)
{
	return strpbrk(s, "\r\n") == NULL;
}

static int
dx_to(const struct dmarcxml_mail *m, struct buf *out)
{
	size_t i;

	if (buf_append_str(out, "To: ") != 0)
		return -1;
	for (i = 0; i < m->nto; i++) {
		if (!dx_line_safe(m->to[i]) ||
		    buf_printf(out, "%s<%s>", i ? ",\r\n " : "", m->to[i]) != 0)
			return -1;
	}
	return buf_append_str(out, "\r\n");
}

int
dmarcxml_mail_head(const struct dmarcxml_mail *m, struct buf *out)
{
	if (!dx_line_safe(m->from) || !dx_line_safe(m->domain) ||
	    !dx_line_safe(m->submitter) || !dx_line_safe(m->report_id) ||
	    !dx_line_safe(m->date) || !dx_line_safe(m->message_id) ||
	    !dx_line_safe(m->boundary) || m->nto == 0 ||
	    (m->content_type != NULL && !dx_line_safe(m->content_type)))
		return -1;
	if (buf_printf(out, "From: <%s>\r\n", m->from) != 0 ||
	    dx_to(m, out) != 0 ||
	    buf_printf(out, "Date: %s\r\nMessage-ID: %s\r\n", m->date,
		m->message_id) != 0 ||
	    /* 7.2.1.1: the Subject names the domain, the submitter and the
	     * report's id, so a mailbox of reports can be sorted by it */
	    buf_printf(out,
		"Subject: Report Domain: %s\r\n Submitter: %s\r\n"
		" Report-ID: <%s>\r\n",
		m->domain, m->submitter, m->report_id) != 0 ||
	    (m->extra != NULL && buf_append_str(out, m->extra) != 0) ||
	    buf_printf(out,
		"MIME-Version: 1.0\r\n"
		"Content-Type: %s; boundary=\"%s\"\r\n"
		"\r\n",
		m->content_type != NULL ? m->content_type : "multipart/mixed",
		m->boundary) != 0)
		return -1;
	return 0;
}

/* gz in base64, lines of 76 (RFC 2045 6.8) */
static int
dx_b64_lines(const unsigned char *gz, size_t gzlen, struct buf *out)
{
	/* 57 octets make one 76-character line */
	char line[80];
	size_t i, n, w;

	for (i = 0; i < gzlen; i += n) {
		n = gzlen - i < 57 ? gzlen - i : 57;
		if (auth_b64_encode(gz + i, n, line, sizeof(line), &w) != 0 ||
		    buf_append(out, line, w) != 0 ||
		    buf_append(out, "\r\n", 2) != 0)
			return -1;
	}
	return 0;
}

int
dmarcxml_mail_parts(const char *boundary, const char *preamble,
    const char *text, const char *type, const char *filename,
    const unsigned char *gz, size_t gzlen, struct buf *out)
{
	if (!dx_line_safe(boundary) || !dx_line_safe(type) ||
	    !dx_line_safe(filename) || strchr(filename, '"') != NULL)
		return -1;
	if (buf_printf(out,
		"%s\r\n\r\n--%s\r\n"
		"Content-Type: text/plain; charset=us-ascii\r\n\r\n"
		"%s\r\n"
		"\r\n--%s\r\n"
		"Content-Type: %s; name=\"%s\"\r\n"
		"Content-Transfer-Encoding: base64\r\n"
		"Content-Disposition: attachment; filename=\"%s\"\r\n\r\n",
		preamble, boundary, text, boundary, type, filename,
		filename) != 0 ||
	    dx_b64_lines(gz, gzlen, out) != 0 ||
	    buf_printf(out, "\r\n--%s--\r\n", boundary) != 0)
		return -1;
	return 0;
}

int
dmarcxml_mail_body(const char *boundary, const char *domain,
    const char *filename, const unsigned char *gz, size_t gzlen,
    struct buf *out)
{
	char text[DMARCXML_NAME_MAX + 96];

	if (!dx_line_safe(domain) ||
	    str_fmt(text, sizeof(text),
		"DMARC aggregate report for %s: see the attached file.",
		domain) != 0)
		return -1;
	return dmarcxml_mail_parts(boundary,
	    "This is a DMARC aggregate report (RFC 7489 7.2) in MIME format.",
	    text, "application/gzip", filename, gz, gzlen, out);
}

/* ---- one evaluated message ----------------------------------------------- */

static int
dx_copy(char *out, size_t outlen, const char *s)
{
	if (s == NULL)
		s = "";
	if (str_copy(out, outlen, s, strlen(s)) != 0)
		return -1;
	str_lower(out);
	return 0;
}

/* the rec's mailto: URIs as the store keeps them; 0 when none */
static size_t
dx_rua_text(const struct dmarc_record *rec, char *out, size_t outlen)
{
	size_t i, n = 0, at = 0;

	out[0] = '\0';
	for (i = 0; i < rec->nrua; i++) {
		const struct dmarc_uri *u = &rec->rua[i];
		int r;

		if (!u->mailto)
			continue;
		if (u->max_size != 0)
			r = str_fmt(out + at, outlen - at, "%s%.*s!%llu",
			    n ? "," : "", (int)u->uri_len, u->uri,
			    (unsigned long long)u->max_size);
		else
			r = str_fmt(out + at, outlen - at, "%s%.*s",
			    n ? "," : "", (int)u->uri_len, u->uri);
		if (r != 0)
			break; /* the URIs that fit are kept */
		at += strlen(out + at);
		n++;
	}
	return n;
}

static void
dx_fill_policy(const struct dmarc_lookup *lk, struct dmarcxml_policy *pol)
{
	const struct dmarc_record *rec = &lk->rec;

	pol->adkim = rec->adkim;
	pol->aspf = rec->aspf;
	pol->p = lk->p_defaulted || rec->p == DMARC_P_UNSET ||
			 rec->p == DMARC_P_INVALID
		     ? DMARC_P_NONE
		     : rec->p;
	/* sp defaults to p (6.3) */
	pol->sp = rec->sp == DMARC_P_UNSET || rec->sp == DMARC_P_INVALID
		      ? pol->p
		      : rec->sp;
	pol->pct = rec->pct;
}

static int
dx_fill_row(const struct dmarc_lookup *lk, const struct dmarc_verdict *v,
    const struct dmarcxml_msg *m, struct dmarcxml_row *row)
{
	size_t i;

	row->count = 1;
	row->disposition = v->disposition;
	row->dkim_pass = v->dkim_aligned;
	row->spf_pass = v->spf_aligned;
	if (v->overridden)
		memcpy(row->reason, "local_policy", sizeof("local_policy"));
	else if (v->sampled_out)
		memcpy(row->reason, "sampled_out", sizeof("sampled_out"));
	if (dx_copy(row->source_ip, sizeof(row->source_ip), m->source_ip) !=
		0 ||
	    dx_copy(row->header_from, sizeof(row->header_from), lk->from) !=
		0 ||
	    dx_copy(row->envelope_from, sizeof(row->envelope_from),
		m->envelope_from) != 0 ||
	    dx_copy(row->spf_domain, sizeof(row->spf_domain), m->spf_domain) !=
		0 ||
	    dx_copy(row->spf_result, sizeof(row->spf_result), m->spf_result) !=
		0)
		return -1;
	memcpy(row->spf_scope, m->spf_helo ? "helo" : "mfrom",
	    m->spf_helo ? sizeof("helo") : sizeof("mfrom"));
	for (i = 0; i < m->ndkim && row->ndkim < DMARCXML_DKIM_MAX; i++) {
		struct dmarcxml_dkim *d = &row->dkim[row->ndkim];

		if (dx_copy(d->domain, sizeof(d->domain), m->dkim[i].domain) !=
			0 ||
		    dx_copy(d->result, sizeof(d->result), m->dkim[i].result) !=
			0)
			continue;
		/* a selector too long for the report is left out, not cut */
		if (dx_copy(d->selector, sizeof(d->selector),
			m->dkim[i].selector) != 0)
			d->selector[0] = '\0';
		row->ndkim++;
	}
	return dmarcxml_row_ok(row) ? 0 : -1;
}

int
dmarcxml_record(const struct dmarc_lookup *lk, const struct dmarc_verdict *v,
    const struct dmarcxml_msg *m, struct dmarcxml_policy *pol, char *rua,
    size_t rualen, struct dmarcxml_row *row)
{
	memset(pol, 0, sizeof(*pol));
	memset(row, 0, sizeof(*row));
	if (rualen == 0)
		return -1;
	rua[0] = '\0';
	if (v->result != DMARC_RESULT_PASS && v->result != DMARC_RESULT_FAIL)
		return 1;
	if (dx_rua_text(&lk->rec, rua, rualen) == 0)
		return 1;
	if (v->policy_domain == NULL ||
	    dx_copy(pol->domain, sizeof(pol->domain), v->policy_domain) != 0 ||
	    dx_fill_row(lk, v, m, row) != 0)
		return -1;
	dx_fill_policy(lk, pol);
	return 0;
}

/* ---- destinations ------------------------------------------------------ */

static int
dx_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int
dmarcxml_mailto_addr(const struct dmarc_uri *u, char *out, size_t outlen)
{
	const char *s, *end;
	size_t at = 0;

	if (!u->mailto || outlen == 0)
		return -1;
	s = memchr(u->uri, ':', u->uri_len);
	if (s == NULL)
		return -1;
	s++;
	end = memchr(s, '?', (size_t)(u->uri + u->uri_len - s));
	if (end == NULL)
		end = u->uri + u->uri_len;
	for (; s < end; s++) {
		int c = (unsigned char)*s;

		if (c == '%') {
			if (end - s < 3 || dx_hex(s[1]) < 0 || dx_hex(s[2]) < 0)
				return -1;
			c = dx_hex(s[1]) * 16 + dx_hex(s[2]);
			s += 2;
		}
		if (c <= 0x20 || c == 0x7f || c == ',' || at + 1 >= outlen)
			return -1;
		out[at++] = (char)c;
	}
	if (at == 0)
		return -1;
	out[at] = '\0';
	return 0;
}

enum dmarcxml_dest
dmarcxml_dest_check(const struct psl *psl, const char *policy_domain,
    const struct dmarc_uri *u, uint64_t size)
{
	char addr[320];

	if (!u->mailto)
		return DMARCXML_DEST_NOT_MAILTO;
	if (dmarcxml_mailto_addr(u, addr, sizeof(addr)) != 0 ||
	    u->host == NULL || u->host_len == 0)
		return DMARCXML_DEST_BAD;
	/* 6.2: a report larger than the URI's limit is not sent there */
	if (u->max_size != 0 && size > u->max_size)
		return DMARCXML_DEST_TOO_BIG;
	if (dmarc_rua_external(psl, policy_domain, u->host, u->host_len))
		return DMARCXML_DEST_NEEDS_AUTH;
	return DMARCXML_DEST_SEND;
}

const char *
dmarcxml_dest_name(enum dmarcxml_dest d)
{
	switch (d) {
	case DMARCXML_DEST_SEND:
		return "send";
	case DMARCXML_DEST_NEEDS_AUTH:
		return "needs_authorisation";
	case DMARCXML_DEST_TOO_BIG:
		return "too_big";
	case DMARCXML_DEST_NOT_MAILTO:
		return "not_mailto";
	case DMARCXML_DEST_BAD:
		return "bad_address";
	}
	return "?";
}
