/*
 * test_arc: src/mailauth/arc.c.
 *
 * A table of chain forms (5.2 steps 1 to 4: missing fields, duplicates,
 * gaps, instances out of range, wrong cv=), what the sealer refuses, seal
 * and validate round trips with RSA and Ed25519, several hops with
 * oldest-pass, tampering after each hop, key answers of every kind, and
 * cross cases run by check_arc.py: dkimpy validates the chains tern
 * seals, tern validates the chains dkimpy seals (and mixed chains), and
 * for every case both verdicts must agree with each other and with the
 * expected one.
 */
#include <time.h>

#include "mailauth/arc.h"
#include "mailauth/authres.h"
#include "t.h"
#include "t_pycheck.h"

static struct t_pycheck pc;
static int64_t now;
static unsigned cross_tern_seals, cross_dkimpy_seals, cross_mixed,
    cross_disagree;

static EVP_PKEY *k_rsa, *k_ed, *k_rsa2;

static const char msg_plain[] =
    "Authentication-Results: mx.example.org; spf=pass "
    "smtp.mailfrom=claire@example.com\r\n"
    "From: Claire <claire@example.com>\r\n"
    "To: Ben <ben@list.example.org>\r\n"
    "Subject: the minutes\r\n"
    "Date: Sun, 06 Dec 2026 10:00:00 +0000\r\n"
    "Message-ID: <m1@example.com>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "Hello Ben,\r\n"
    "\r\n"
    "the minutes  are attached.\t \r\n"
    "Claire\r\n";

/* ---- keys -------------------------------------------------------------------
 */

/* The key records of k_rsa, k_ed, k_rsa2, made once in main(). */
static char rec_rsa[2048], rec_ed[2048], rec_rsa2[2048];

static void
record(EVP_PKEY *k, char *out, size_t outlen)
{
	struct buf b;

	buf_init(&b, outlen - 1);
	if (dkim_pkey_record(k, &b, NULL) != 0)
		abort();
	memcpy(out, b.data, b.len + 1);
	buf_free(&b);
}

struct keytab {
	const char *name[4];
	const char *rec[4];
	size_t n;
	enum dkim_dns status; /* for every lookup */
};

static struct keytab
keys_all(void)
{
	struct keytab kt = {
	    {"rsa._domainkey.example.org", "ed._domainkey.fwd.example",
		"rsa2._domainkey.fwd.example"},
	    {rec_rsa, rec_ed, rec_rsa2}, 3, DKIM_DNS_OK};

	return kt;
}

static void
answer_all(struct arc_verify *v, const struct keytab *kt)
{
	size_t k, j;

	for (k = 0; k < arc_verify_queries(v); k++) {
		const char *q = arc_verify_query(v, k);
		const char *txt[1] = {NULL};
		size_t len[1] = {0};

		for (j = 0; j < kt->n; j++)
			if (strcmp(kt->name[j], q) == 0) {
				txt[0] = kt->rec[j];
				len[0] = strlen(kt->rec[j]);
			}
		if (kt->status != DKIM_DNS_OK)
			arc_verify_key(v, k, kt->status, NULL, NULL, 0);
		else if (txt[0] == NULL)
			arc_verify_key(v, k, DKIM_DNS_NOKEY, NULL, NULL, 0);
		else
			arc_verify_key(v, k, DKIM_DNS_OK, txt, len, 1);
	}
}

/* Validate msg; its outcome copied into out. */
static void
validate(const char *msg, size_t len, const struct keytab *kt,
    struct arc_outcome *out)
{
	struct arc_verify *v = arc_verify_new(msg, len, now);

	answer_all(v, kt);
	arc_verify_run(v);
	*out = *arc_verify_result(v);
	if (getenv("ARC_DEBUG") && out->result != ARC_PASS)
		fprintf(stderr, "  arc: %s (%s)\n",
		    arc_result_name(out->result), out->reason);
	arc_verify_free(v);
}

static const char *
verdict(const char *msg, size_t len, const struct keytab *kt)
{
	struct arc_outcome o;

	validate(msg, len, kt, &o);
	return arc_result_name(o.result);
}

/* Seal m (in place: the set goes on top).  0 or -1. */
static int
seal(struct buf *m, EVP_PKEY *key, const char *domain, const char *sel,
    enum arc_cv cv, const char *results)
{
	struct arc_seal_opts o = {
	    "mx.example.org", results, cv, domain, sel, key, now};
	struct buf out;
	char err[256];
	int rc;

	buf_init(&out, 1 << 20);
	rc = arc_seal(&o, m->data, m->len, &out, err, sizeof(err));
	if (rc == 0 && (buf_append(&out, m->data, m->len) != 0 ||
			   (m->len = 0, buf_append(m, out.data, out.len)) != 0))
		rc = -1;
	if (rc != 0 && getenv("ARC_DEBUG"))
		fprintf(stderr, "  seal: %s\n", err);
	buf_free(&out);
	return rc;
}

static void
set_msg(struct buf *m, const char *s)
{
	m->len = 0;
	if (buf_append_str(m, s) != 0)
		abort();
}

/* Flip a byte of the first occurrence of what (its first octet). */
static bool
tamper(struct buf *m, const char *what)
{
	char *p = strstr(m->data, what);

	if (p == NULL)
		return false;
	*p ^= 0x01;
	return true;
}

/* ---- the form of chains -----------------------------------------------------
 */

/*
 * A chain from a spec: words separated by spaces, each one field put on
 * top in order of the words (so the first word is the top field):
 *   SIc  ARC-Seal of instance I with cv c (n none, p pass, f fail,
 *        ? "maybe", h none with an h= tag)
 *   MI   ARC-Message-Signature of instance I (MIs: one whose h= names
 *        ARC-Seal; MIb: one without bh=)
 *   AI   ARC-Authentication-Results of instance I (A-: without i=;
 *        AL: of instance 1 and 9000 octets)
 *   XI   a whole set of instance I, cv= as it should be
 *   W    an ARC-Seal whose i= is a word
 * The signatures are well formed and verify nothing.  Then From, To, a
 * body.
 */
static void
put_field(struct buf *b, const char *w)
{
	int i = atoi(w + 1);
	char last = w[strlen(w) - 1];
	const char *cv = last == 'n' || last == 'h' ? "none"
			 : last == 'p'		    ? "pass"
			 : last == 'f'		    ? "fail"
						    : "maybe";
	int k;

	switch (w[0]) {
	case 'S':
		(void)!buf_printf(b,
		    "ARC-Seal: i=%d; cv=%s; a=rsa-sha256; d=example.org; "
		    "s=rsa;%s b=AAAA\r\n",
		    i, cv, last == 'h' ? " h=from;" : "");
		return;
	case 'M':
		(void)!buf_printf(b,
		    "ARC-Message-Signature: i=%d; a=rsa-sha256; "
		    "c=relaxed/relaxed; d=example.org; s=rsa; h=from:to%s;%s "
		    "b=AAAA\r\n",
		    i, last == 's' ? ":arc-seal" : "",
		    last == 'b' ? "" : " bh=AAAA;");
		return;
	case 'A':
		if (w[1] == '-') {
			(void)!buf_append_str(b, "ARC-Authentication-Results: "
						 "mx.example.org; none\r\n");
			return;
		}
		(void)!buf_printf(b,
		    "ARC-Authentication-Results: i=%d; mx.example.org; ",
		    w[1] == 'L' ? 1 : i);
		for (k = 0; w[1] == 'L' && k < 9000; k++)
			(void)!buf_append_str(b, "y");
		(void)!buf_append_str(
		    b, "spf=pass smtp.mailfrom=a@b.example\r\n");
		return;
	case 'W':
		(void)!buf_append_str(b, "ARC-Seal: i=one; cv=none; "
					 "a=rsa-sha256; d=x.example; s=s; "
					 "b=AAAA\r\n");
		return;
	default:
		abort();
	}
}

static void
build_chain(const char *spec, struct buf *b)
{
	char w[16];
	const char *p = spec;
	size_t n;

	b->len = 0;
	while (*p != '\0') {
		n = strcspn(p, " ");
		if (n == 0 || n >= sizeof(w))
			abort();
		memcpy(w, p, n);
		w[n] = '\0';
		if (w[0] == 'X') {
			char s[16];
			int i = atoi(w + 1);

			(void)!str_fmt(
			    s, sizeof(s), "S%d%c", i, i == 1 ? 'n' : 'p');
			put_field(b, s);
			(void)!str_fmt(s, sizeof(s), "M%d", i);
			put_field(b, s);
			(void)!str_fmt(s, sizeof(s), "A%d", i);
			put_field(b, s);
		} else {
			put_field(b, w);
		}
		p += n + (p[n] == ' ');
	}
	(void)!buf_append_str(b, "From: a@b.example\r\nTo: c@d.example\r\n"
				 "\r\nbody\r\n");
}

/* Fifty whole sets, newest on top. */
static void
build_fifty(struct buf *b)
{
	char spec[50 * 4 + 1];
	size_t o = 0;
	int i;

	for (i = 50; i >= 1; i--)
		o += (size_t)snprintf(
		    spec + o, sizeof(spec) - o, "%sX%d", o ? " " : "", i);
	build_chain(spec, b);
}

static void
test_forms(void)
{
	static const struct {
		const char *name, *spec;
		enum arc_result r; /* before any lookup */
		unsigned n;
		size_t queries;
		const char *why; /* part of the reason */
	} cases[] = {
	    {"one set: waits for its key", "X1", ARC_NONE, 1, 1, ""},
	    {"two sets", "X2 X1", ARC_NONE, 2, 1, ""},
	    {"sets in any order", "A1 X2 M1 S1n", ARC_NONE, 2, 1, ""},
	    {"missing AS", "M1 A1", ARC_FAIL, 1, 0, "incomplete"},
	    {"missing AMS", "S1n A1", ARC_FAIL, 1, 0, "incomplete"},
	    {"missing AAR", "S1n M1", ARC_FAIL, 1, 0, "incomplete"},
	    {"duplicate AMS", "X1 M1", ARC_FAIL, 1, 0, "two ARC fields"},
	    {"duplicate AAR", "A1 X1", ARC_FAIL, 1, 0, "two ARC fields"},
	    {"gap: 1 and 3", "X3 X1", ARC_FAIL, 3, 0, "incomplete"},
	    {"i=51", "X51", ARC_FAIL, 0, 0, "1 to 50"},
	    {"i=0", "X0", ARC_FAIL, 0, 0, "1 to 50"},
	    {"i=one", "W M1 A1", ARC_FAIL, 1, 0, "1 to 50"},
	    {"cv=none on i=2", "S2n M2 A2 X1", ARC_FAIL, 2, 0, "not pass"},
	    {"cv=pass on i=1", "S1p M1 A1", ARC_FAIL, 1, 0, "not none"},
	    {"newest cv=fail", "S2f M2 A2 X1", ARC_FAIL, 2, 0, "cv=fail"},
	    {"older cv=fail", "X3 S2f M2 A2 X1", ARC_FAIL, 3, 0, "not pass"},
	    {"cv=maybe", "S1? M1 A1", ARC_FAIL, 1, 0, "unknown cv"},
	    {"AS with h=", "S1h M1 A1", ARC_FAIL, 1, 0, "malformed ARC-Seal"},
	    {"AMS without bh=", "S1n M1b A1", ARC_FAIL, 1, 0,
		"malformed ARC-Message"},
	    {"AMS signs ARC-Seal", "S1n M1s A1", ARC_FAIL, 1, 0,
		"malformed ARC-Message"},
	    {"AAR without i=", "S1n M1 A-", ARC_FAIL, 1, 0, "1 to 50"},
	    {"AAR of 9000 octets", "S1n M1 AL", ARC_FAIL, 1, 0, "too long"},
	    {"AAR of instance 2 alone", "A2 X1", ARC_FAIL, 2, 0, "incomplete"},
	    {"no ARC field: none", NULL, ARC_NONE, 0, 0, ""},
	    {"fifty sets", NULL, ARC_NONE, 50, 1, ""},
	};
	struct buf b;
	size_t k;

	buf_init(&b, 1 << 20);
	for (k = 0; k < sizeof(cases) / sizeof(*cases); k++) {
		struct arc_verify *v;
		const struct arc_outcome *o;
		void *map;
		size_t maplen;
		const char *g;

		t_case(cases[k].name);
		if (cases[k].spec != NULL)
			build_chain(cases[k].spec, &b);
		else if (cases[k].n == 50)
			build_fifty(&b);
		else
			set_msg(&b, msg_plain);
		g = t_guard(b.data, b.len, &map, &maplen);
		v = arc_verify_new(g, b.len, now);
		o = arc_verify_result(v);
		T_CHECK_INT(o->result, cases[k].r);
		T_CHECK_INT(o->n, cases[k].n);
		T_CHECK_INT(arc_verify_queries(v), cases[k].queries);
		T_CHECK(strstr(o->reason, cases[k].why) != NULL);
		if (cases[k].queries > 0)
			T_CHECK_STR(arc_verify_query(v, 0),
			    "rsa._domainkey.example.org");
		T_CHECK(arc_verify_query(v, cases[k].queries) == NULL);
		/* unanswered, or signatures of nothing: never a pass */
		arc_verify_run(v);
		T_CHECK(o->result != ARC_PASS);
		if (cases[k].r == ARC_NONE && cases[k].n > 0) {
			T_CHECK_INT(o->result, ARC_FAIL);
			T_CHECK(o->temp);
		}
		arc_verify_free(v);
		t_unguard(map, maplen);
	}
	buf_free(&b);
}

/* ---- sealing and validating -------------------------------------------------
 */

static void
test_roundtrip(void)
{
	struct keytab kt = keys_all();
	struct arc_outcome o;
	struct buf m, ar;
	struct authres_result res;

	buf_init(&m, 1 << 20);
	buf_init(&ar, 4096);
	t_case("rsa: seal, validate");
	set_msg(&m, msg_plain);
	T_CHECK(seal(&m, k_rsa, "example.org", "rsa", ARC_CV_NONE,
		    "spf=pass smtp.mailfrom=claire@example.com") == 0);
	T_CHECK(
	    strncmp(m.data, "ARC-Seal: i=1; cv=none; a=rsa-sha256;", 37) == 0);
	T_CHECK(strstr(m.data, "\r\nARC-Message-Signature: i=1; "
			       "a=rsa-sha256; c=relaxed/relaxed;") != NULL);
	T_CHECK(strstr(m.data, "\r\nARC-Authentication-Results: i=1; "
			       "mx.example.org;\r\n\tspf=pass "
			       "smtp.mailfrom=claire@example.com\r\n") != NULL);
	validate(m.data, m.len, &kt, &o);
	T_CHECK_INT(o.result, ARC_PASS);
	T_CHECK_INT(o.n, 1);
	T_CHECK_INT(o.oldest_pass, 0);
	T_CHECK_STR(o.ams_d, "example.org");
	T_CHECK_STR(o.reason, "");
	T_CHECK_INT(arc_seal_cv(&o), ARC_CV_PASS);
	t_case("the arc resinfo of A-R");
	arc_authres(&o, "192.0.2.1", &res);
	T_CHECK(authres_build(&ar, "mx.fwd.example", &res, 1, 78) == 0);
	T_CHECK_STR(ar.data, "Authentication-Results: mx.fwd.example;\r\n"
			     "\tarc=pass header.oldest-pass=0 "
			     "smtp.remote-ip=192.0.2.1\r\n");
	t_case("ed25519: seal, validate");
	set_msg(&m, msg_plain);
	T_CHECK(seal(&m, k_ed, "fwd.example", "ed", ARC_CV_NONE, NULL) == 0);
	T_CHECK(strstr(m.data, "a=ed25519-sha256") != NULL);
	T_CHECK(strstr(m.data, "i=1; mx.example.org; none\r\n") != NULL);
	T_CHECK_STR(verdict(m.data, m.len, &kt), "pass");
	t_case("ed25519: body changed");
	T_CHECK(tamper(&m, "Hello Ben"));
	validate(m.data, m.len, &kt, &o);
	T_CHECK_INT(o.result, ARC_FAIL);
	T_CHECK(strstr(o.reason, "ARC-Message-Signature 1") != NULL);
	T_CHECK_INT(o.oldest_pass, -1);
	t_case("rsa: the AAR changed");
	set_msg(&m, msg_plain);
	T_CHECK(seal(&m, k_rsa, "example.org", "rsa", ARC_CV_NONE,
		    "spf=pass smtp.mailfrom=claire@example.com") == 0);
	/* the AAR, above the Authentication-Results it came from */
	T_CHECK(tamper(&m, "spf=pass smtp.mailfrom=claire@example.com\r\n"
			   "Authentication-Results"));
	validate(m.data, m.len, &kt, &o);
	T_CHECK_INT(o.result, ARC_FAIL);
	T_CHECK(strstr(o.reason, "ARC-Seal 1") != NULL);
	t_case("rsa: refolded in transit still passes (relaxed)");
	{
		struct buf r;
		size_t k;

		buf_init(&r, 1 << 20);
		set_msg(&m, msg_plain);
		T_CHECK(seal(&m, k_rsa, "example.org", "rsa", ARC_CV_NONE,
			    "spf=pass smtp.mailfrom=claire@example.com") == 0);
		for (k = 0; k < m.len; k++) {
			if (m.data[k] == ' ' && k > 0 && m.data[k - 1] == ';' &&
			    k < (size_t)(strstr(m.data, "\r\n\r\n") - m.data))
				(void)!buf_append_str(&r, "\r\n  ");
			else
				(void)!buf_append(&r, m.data + k, 1);
		}
		T_CHECK(r.len > m.len);
		T_CHECK_STR(verdict(r.data, r.len, &kt), "pass");
		buf_free(&r);
	}
	buf_free(&m);
	buf_free(&ar);
}

static void
test_hops(void)
{
	struct keytab kt = keys_all();
	struct arc_outcome o;
	struct buf m, keep;
	struct arc_seal_opts so;
	char err[256];

	buf_init(&m, 1 << 20);
	buf_init(&keep, 1 << 20);
	t_case("two hops: rsa then ed25519");
	set_msg(&m, msg_plain);
	T_CHECK(seal(&m, k_rsa, "example.org", "rsa", ARC_CV_NONE,
		    "spf=pass smtp.mailfrom=claire@example.com") == 0);
	validate(m.data, m.len, &kt, &o);
	T_CHECK_INT(o.result, ARC_PASS);
	T_CHECK(seal(&m, k_ed, "fwd.example", "ed", arc_seal_cv(&o),
		    "arc=pass header.oldest-pass=0") == 0);
	T_CHECK(strncmp(m.data, "ARC-Seal: i=2; cv=pass;", 23) == 0);
	validate(m.data, m.len, &kt, &o);
	T_CHECK_INT(o.result, ARC_PASS);
	T_CHECK_INT(o.n, 2);
	T_CHECK_INT(o.oldest_pass, 0);
	T_CHECK_STR(o.as_d, "fwd.example");
	(void)!buf_append(&keep, m.data, m.len);
	t_case("three hops");
	T_CHECK(seal(&m, k_rsa2, "fwd.example", "rsa2", ARC_CV_PASS,
		    "arc=pass") == 0);
	validate(m.data, m.len, &kt, &o);
	T_CHECK_INT(o.result, ARC_PASS);
	T_CHECK_INT(o.n, 3);
	t_case("two hops, then the body changed: newest AMS fails");
	set_msg(&m, keep.data);
	T_CHECK(tamper(&m, "Hello Ben"));
	validate(m.data, m.len, &kt, &o);
	T_CHECK_INT(o.result, ARC_FAIL);
	T_CHECK(strstr(o.reason, "ARC-Message-Signature 2") != NULL);
	t_case("two hops, then the first AAR changed: the newest seal fails");
	set_msg(&m, keep.data);
	T_CHECK(tamper(&m, "spf=pass smtp.mailfrom=claire@example.com\r\n"
			   "Authentication-Results"));
	validate(m.data, m.len, &kt, &o);
	T_CHECK_INT(o.result, ARC_FAIL);
	T_CHECK(strstr(o.reason, "ARC-Seal 2") != NULL);
	t_case("the subject changed between hops: pass, oldest-pass=2");
	set_msg(&m, msg_plain);
	T_CHECK(seal(&m, k_rsa, "example.org", "rsa", ARC_CV_NONE,
		    "spf=pass smtp.mailfrom=claire@example.com") == 0);
	T_CHECK(tamper(&m, "the minutes"));
	validate(m.data, m.len, &kt, &o);
	T_CHECK_INT(o.result, ARC_FAIL);
	/* the list forwarder saw a failed chain and says so */
	T_CHECK(
	    seal(&m, k_ed, "fwd.example", "ed", ARC_CV_PASS, "arc=fail") == 0);
	validate(m.data, m.len, &kt, &o);
	T_CHECK_INT(o.result, ARC_PASS);
	T_CHECK_INT(o.oldest_pass, 2);
	T_CHECK_STR(o.oldest_pass_str, "2");
	t_case("a broken chain sealed with cv=fail, once");
	set_msg(&m, keep.data);
	T_CHECK(tamper(&m, "Hello Ben"));
	validate(m.data, m.len, &kt, &o);
	T_CHECK_INT(arc_seal_cv(&o), ARC_CV_FAIL);
	T_CHECK(
	    seal(&m, k_ed, "fwd.example", "ed", ARC_CV_FAIL, "arc=fail") == 0);
	T_CHECK(strncmp(m.data, "ARC-Seal: i=3; cv=fail;", 23) == 0);
	validate(m.data, m.len, &kt, &o);
	T_CHECK_INT(o.result, ARC_FAIL);
	T_CHECK(strstr(o.reason, "cv=fail") != NULL);
	T_CHECK_INT(arc_seal_cv(&o), ARC_CV_FAIL);
	T_CHECK(
	    seal(&m, k_ed, "fwd.example", "ed", ARC_CV_FAIL, "arc=fail") != 0);
	t_case("the cv=fail seal covers its own set only (5.1.2)");
	{
		/* its sets 1 and 2 may change: the seal does not cover them */
		struct arc_verify *v;

		T_CHECK(tamper(&m, "i=1; mx.example.org;"));
		v = arc_verify_new(m.data, m.len, now);
		T_CHECK_INT(arc_verify_queries(v), 0);
		arc_verify_free(v);
	}
	t_case("sealer refusals");
	memset(&so, 0, sizeof(so));
	so = (struct arc_seal_opts){"mx.example.org", "arc=none", ARC_CV_PASS,
	    "example.org", "rsa", k_rsa, now};
	{
		struct buf out;
		struct buf fifty;

		buf_init(&out, 1 << 20);
		buf_init(&fifty, 1 << 20);
		/* cv=pass without a chain; cv=none on a chain */
		T_CHECK(arc_seal(&so, msg_plain, sizeof(msg_plain) - 1, &out,
			    err, sizeof(err)) != 0);
		T_CHECK(strstr(err, "cv must be none") != NULL);
		so.cv = ARC_CV_NONE;
		T_CHECK(arc_seal(&so, keep.data, keep.len, &out, err,
			    sizeof(err)) != 0);
		T_CHECK(strstr(err, "cannot be none") != NULL);
		/* a malformed chain takes cv=fail only */
		build_chain("X3 X1", &fifty);
		so.cv = ARC_CV_PASS;
		T_CHECK(arc_seal(&so, fifty.data, fifty.len, &out, err,
			    sizeof(err)) != 0);
		so.cv = ARC_CV_FAIL;
		T_CHECK(arc_seal(&so, fifty.data, fifty.len, &out, err,
			    sizeof(err)) == 0);
		T_CHECK(strncmp(out.data, "ARC-Seal: i=4; cv=fail;", 23) == 0);
		/* fifty sets: no fifty-first */
		out.len = 0;
		build_fifty(&fifty);
		so.cv = ARC_CV_PASS;
		T_CHECK(arc_seal(&so, fifty.data, fifty.len, &out, err,
			    sizeof(err)) != 0);
		T_CHECK(strstr(err, "50 sets") != NULL);
		T_CHECK_INT(out.len, 0);
		/* the results text: folds only, no bare line ends */
		so.cv = ARC_CV_NONE;
		so.results = "spf=pass\r\nX-Injected: yes";
		T_CHECK(arc_seal(&so, msg_plain, sizeof(msg_plain) - 1, &out,
			    err, sizeof(err)) != 0);
		so.results = "spf=pass\nX: y";
		T_CHECK(arc_seal(&so, msg_plain, sizeof(msg_plain) - 1, &out,
			    err, sizeof(err)) != 0);
		so.results = "spf=pass;\r\n\tdkim=none";
		T_CHECK(arc_seal(&so, msg_plain, sizeof(msg_plain) - 1, &out,
			    err, sizeof(err)) == 0);
		/* a first line in WSP would become part of our AAR */
		{
			struct buf f;

			buf_init(&f, 1 << 16);
			T_CHECK(buf_append_str(&f, "\tfolded: yes\r\n") == 0 &&
				buf_append_str(&f, msg_plain) == 0);
			out.len = 0;
			T_CHECK(arc_seal(&so, f.data, f.len, &out, err,
				    sizeof(err)) != 0);
			T_CHECK(strstr(err, "folded line") != NULL);
			buf_free(&f);
		}
		so.authserv_id = "mx example";
		T_CHECK(arc_seal(&so, msg_plain, sizeof(msg_plain) - 1, &out,
			    err, sizeof(err)) != 0);
		buf_free(&out);
		buf_free(&fifty);
	}
	buf_free(&m);
	buf_free(&keep);
}

static void
test_keys(void)
{
	struct keytab kt = keys_all();
	struct arc_outcome o;
	struct buf m;

	buf_init(&m, 1 << 20);
	set_msg(&m, msg_plain);
	T_CHECK(seal(&m, k_rsa, "example.org", "rsa", ARC_CV_NONE, "x=y") == 0);
	t_case("lookup timed out: fail, temporary");
	kt.status = DKIM_DNS_TEMP;
	validate(m.data, m.len, &kt, &o);
	T_CHECK_INT(o.result, ARC_FAIL);
	T_CHECK(o.temp);
	t_case("no key record: fail, not temporary");
	kt.status = DKIM_DNS_NOKEY;
	validate(m.data, m.len, &kt, &o);
	T_CHECK_INT(o.result, ARC_FAIL);
	T_CHECK(!o.temp);
	{
		struct authres_result res;
		struct buf ar;

		buf_init(&ar, 4096);
		arc_authres(&o, NULL, &res);
		T_CHECK(authres_build(&ar, "mx.fwd.example", &res, 1, 78) == 0);
		T_CHECK(
		    strstr(ar.data, "arc=fail reason=\"ARC-Message-Signature "
				    "1: no key record\"") != NULL);
		T_CHECK(strstr(ar.data, "oldest-pass") == NULL);
		buf_free(&ar);
	}
	t_case("revoked key");
	kt = keys_all();
	kt.rec[0] = "v=DKIM1; k=rsa; p=";
	validate(m.data, m.len, &kt, &o);
	T_CHECK_INT(o.result, ARC_FAIL);
	T_CHECK(strstr(o.reason, "revoked") != NULL);
	t_case("another domain's key");
	kt = keys_all();
	kt.rec[0] = kt.rec[2];
	validate(m.data, m.len, &kt, &o);
	T_CHECK_INT(o.result, ARC_FAIL);
	t_case("ed25519 record for an rsa seal");
	kt = keys_all();
	kt.rec[0] = kt.rec[1];
	validate(m.data, m.len, &kt, &o);
	T_CHECK_INT(o.result, ARC_FAIL);
	t_case("one answer for AMS and AS");
	{
		struct arc_verify *v = arc_verify_new(m.data, m.len, now);

		T_CHECK_INT(arc_verify_queries(v), 1);
		kt = keys_all();
		answer_all(v, &kt);
		/* a second answer for the same query is ignored */
		arc_verify_key(v, 0, DKIM_DNS_TEMP, NULL, NULL, 0);
		arc_verify_run(v);
		arc_verify_run(v);
		T_CHECK_INT(arc_verify_result(v)->result, ARC_PASS);
		T_CHECK_INT(arc_verify_queries(v), 0);
		arc_verify_free(v);
		arc_verify_free(NULL);
	}
	buf_free(&m);
}

/* ---- cross cases
 * -------------------------------------------------------------
 */

/* dkimpy's chain status of msg ("pass", "fail", ...), into out. */
static bool
dkimpy_verify(const char *name, const struct buf *m, const struct keytab *kt,
    char *out, size_t outlen)
{
	struct buf j, v;
	bool ok;
	char *sp;

	buf_init(&j, 1 << 16);
	buf_init(&v, 4096);
	(void)!buf_append_str(&j, "{\"op\": \"verify\", \"keys\": ");
	(void)!t_pycheck_json_map(&j, kt->name, kt->rec, kt->n);
	(void)!buf_append_str(&j, "}");
	ok = t_pycheck_write(&pc, name, ".eml", m->data, m->len) &&
	     t_pycheck_write(&pc, name, ".json", j.data, j.len) &&
	     t_pycheck_run(&pc, name) &&
	     t_pycheck_read(&pc, name, ".verdict", &v);
	out[0] = '\0';
	if (ok) {
		if (getenv("ARC_DEBUG"))
			fprintf(stderr, "  dkimpy: %s\n", v.data);
		(void)!str_fmt(out, outlen, "%s", v.data);
		if ((sp = strchr(out, ' ')) != NULL)
			*sp = '\0';
	}
	buf_free(&j);
	buf_free(&v);
	return ok;
}

/* dkimpy seals m (in place) for srv_id with the rsa key of example.org
 * or fwd.example. */
static bool
dkimpy_seal(const char *name, struct buf *m, const char *domain,
    const char *sel, const char *keyfile, const char *srv_id)
{
	char json[1024];

	(void)!str_fmt(json, sizeof(json),
	    "{\"op\": \"seal\", \"key\": \"%s/%s\", \"selector\": "
	    "\"%s\", \"domain\": \"%s\", \"srv_id\": \"%s\", "
	    "\"t\": %lld}",
	    pc.dir, keyfile, sel, domain, srv_id, (long long)now);
	return t_pycheck_write(&pc, name, ".eml", m->data, m->len) &&
	       t_pycheck_write(&pc, name, ".json", json, strlen(json)) &&
	       t_pycheck_run(&pc, name) &&
	       (m->len = 0, t_pycheck_read(&pc, name, ".signed", m));
}

static void
agree(
    const char *name, const struct buf *m, const char *want, unsigned *counter)
{
	struct keytab kt = keys_all();
	char theirs[64];
	const char *ours = verdict(m->data, m->len, &kt);

	T_CHECK(dkimpy_verify(name, m, &kt, theirs, sizeof(theirs)));
	T_CHECK_STR(ours, want);
	T_CHECK_STR(theirs, want);
	if (strcmp(ours, theirs) != 0)
		cross_disagree++;
	(*counter)++;
}

static bool
write_keys(void)
{
	return t_pycheck_write_pem(&pc, "rsa.pem", k_rsa) &&
	       t_pycheck_write_pem(&pc, "rsa2.pem", k_rsa2);
}

/* Put "Authentication-Results: ID; TEXT" on top of m. */
static void
add_ar(struct buf *m, const char *id, const char *text)
{
	struct buf t;

	buf_init(&t, 1 << 20);
	(void)!buf_printf(&t, "Authentication-Results: %s; %s\r\n", id, text);
	(void)!buf_append(&t, m->data, m->len);
	m->len = 0;
	(void)!buf_append(m, t.data, t.len);
	buf_free(&t);
}

enum cross_mut { CM_NONE, CM_BODY, CM_REFOLD, CM_SUBJECT };

static void
cross_mutate(enum cross_mut mu, struct buf *m)
{
	struct buf r;
	size_t k, hend;

	switch (mu) {
	case CM_BODY:
		(void)tamper(m, "Hello Ben");
		return;
	case CM_SUBJECT:
		(void)tamper(m, "the minutes");
		return;
	case CM_REFOLD:
		buf_init(&r, 1 << 20);
		hend = (size_t)(strstr(m->data, "\r\n\r\n") - m->data);
		for (k = 0; k < m->len; k++)
			if (k < hend && m->data[k] == ' ' && k > 0 &&
			    m->data[k - 1] == ';')
				(void)!buf_append_str(&r, "\r\n\t");
			else
				(void)!buf_append(&r, m->data + k, 1);
		m->len = 0;
		(void)!buf_append(m, r.data, r.len);
		buf_free(&r);
		return;
	default:
		return;
	}
}

static void
test_cross(void)
{
	static const struct {
		const char *name;
		enum cross_mut mu;
		const char *want;
	} muts[] = {
	    {"asis", CM_NONE, "pass"},
	    {"refolded", CM_REFOLD, "pass"},
	    {"body", CM_BODY, "fail"},
	};
	struct buf m;
	char name[128];
	size_t u, hops;

	buf_init(&m, 1 << 20);
	/* tern seals (rsa: dkimpy 1.1 validates no other ARC algorithm) */
	for (hops = 1; hops <= 3; hops++)
		for (u = 0; u < sizeof(muts) / sizeof(*muts); u++) {
			struct arc_outcome o;
			struct keytab kt = keys_all();
			size_t h;

			(void)!str_fmt(name, sizeof(name), "tern-seals-%zu-%s",
			    hops, muts[u].name);
			t_case(name);
			set_msg(&m, msg_plain);
			for (h = 0; h < hops; h++) {
				validate(m.data, m.len, &kt, &o);
				T_CHECK(
				    seal(&m, h % 2 ? k_rsa2 : k_rsa,
					h % 2 ? "fwd.example" : "example.org",
					h % 2 ? "rsa2" : "rsa", arc_seal_cv(&o),
					"spf=pass smtp.mailfrom=claire@"
					"example.com;\r\n\tarc=none") == 0);
			}
			cross_mutate(muts[u].mu, &m);
			agree(name, &m, muts[u].want, &cross_tern_seals);
		}
	/* dkimpy seals, one hop and two (each hop adds its own A-R) */
	for (hops = 1; hops <= 2; hops++)
		for (u = 0; u < sizeof(muts) / sizeof(*muts); u++) {
			(void)!str_fmt(name, sizeof(name),
			    "dkimpy-seals-%zu-%s", hops, muts[u].name);
			t_case(name);
			set_msg(&m, msg_plain);
			T_CHECK(dkimpy_seal(name, &m, "example.org", "rsa",
			    "rsa.pem", "mx.example.org"));
			if (hops == 2) {
				add_ar(&m, "mx.fwd.example",
				    "arc=pass header.oldest-pass=0");
				T_CHECK(dkimpy_seal(name, &m, "fwd.example",
				    "rsa2", "rsa2.pem", "mx.fwd.example"));
			}
			T_CHECK(strstr(m.data, "ARC-Seal") != NULL);
			cross_mutate(muts[u].mu, &m);
			agree(name, &m, muts[u].want, &cross_dkimpy_seals);
		}
	/* mixed chains: dkimpy then tern, tern then dkimpy */
	for (u = 0; u < sizeof(muts) / sizeof(*muts); u++) {
		struct arc_outcome o;
		struct keytab kt = keys_all();

		(void)!str_fmt(
		    name, sizeof(name), "dkimpy-then-tern-%s", muts[u].name);
		t_case(name);
		set_msg(&m, msg_plain);
		T_CHECK(dkimpy_seal(name, &m, "example.org", "rsa", "rsa.pem",
		    "mx.example.org"));
		validate(m.data, m.len, &kt, &o);
		T_CHECK_INT(o.result, ARC_PASS);
		T_CHECK(seal(&m, k_rsa2, "fwd.example", "rsa2", arc_seal_cv(&o),
			    "arc=pass header.oldest-pass=0") == 0);
		cross_mutate(muts[u].mu, &m);
		agree(name, &m, muts[u].want, &cross_mixed);

		(void)!str_fmt(
		    name, sizeof(name), "tern-then-dkimpy-%s", muts[u].name);
		t_case(name);
		set_msg(&m, msg_plain);
		T_CHECK(seal(&m, k_rsa, "example.org", "rsa", ARC_CV_NONE,
			    "spf=pass smtp.mailfrom=claire@example.com") == 0);
		add_ar(&m, "mx.fwd.example", "arc=pass header.oldest-pass=0");
		T_CHECK(dkimpy_seal(name, &m, "fwd.example", "rsa2", "rsa2.pem",
		    "mx.fwd.example"));
		cross_mutate(muts[u].mu, &m);
		agree(name, &m, muts[u].want, &cross_mixed);
	}
	/* a subject changed after hop 1, sealed again: both pass, and
	 * tern's oldest-pass says the first AMS no longer verifies */
	t_case("tern-subject-between-hops");
	{
		struct arc_outcome o;
		struct keytab kt = keys_all();

		set_msg(&m, msg_plain);
		T_CHECK(seal(&m, k_rsa, "example.org", "rsa", ARC_CV_NONE,
			    "spf=pass") == 0);
		cross_mutate(CM_SUBJECT, &m);
		T_CHECK(seal(&m, k_rsa2, "fwd.example", "rsa2", ARC_CV_PASS,
			    "arc=fail") == 0);
		agree(
		    "tern-subject-between-hops", &m, "pass", &cross_tern_seals);
		validate(m.data, m.len, &kt, &o);
		T_CHECK_INT(o.oldest_pass, 2);
	}
	buf_free(&m);
}

int
main(void)
{
	bool pc_ok;

	now = (int64_t)time(NULL);
	k_rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	k_rsa2 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	k_ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (!k_rsa || !k_rsa2 || !k_ed) {
		fprintf(stderr, "test_arc: key generation failed\n");
		return 1;
	}
	record(k_rsa, rec_rsa, sizeof(rec_rsa));
	record(k_ed, rec_ed, sizeof(rec_ed));
	record(k_rsa2, rec_rsa2, sizeof(rec_rsa2));
	T_RUN(test_forms);
	T_RUN(test_roundtrip);
	T_RUN(test_hops);
	T_RUN(test_keys);
	t_case("checker set-up");
	pc_ok = t_pycheck_open(&pc, "test_arc", "check_arc.py", __FILE__) &&
		write_keys();
	T_CHECK(pc_ok);
	if (pc_ok) {
		test_cross();
		t_case("cross counts");
		fprintf(stderr,
		    "test_arc: cross cases: tern seals/dkimpy validates %u, "
		    "dkimpy seals/tern validates %u, mixed chains %u, "
		    "disagreements %u\n",
		    cross_tern_seals, cross_dkimpy_seals, cross_mixed,
		    cross_disagree);
		T_CHECK(cross_tern_seals >= 10 && cross_dkimpy_seals >= 6 &&
			cross_mixed >= 6);
		T_CHECK_INT(cross_disagree, 0);
		t_pycheck_close(&pc);
	}
	EVP_PKEY_free(k_rsa);
	EVP_PKEY_free(k_rsa2);
	EVP_PKEY_free(k_ed);
	return t_summary();
}
