/*
 * Unit tests for src/mailauth/srs.c: known vectors made by independent
 * implementations (postsrsd 1.10 and Python's SRS module, Debian's
 * postsrsd and python3-srs, with the secret "tern-test-secret"), a table
 * of reversals (every status, every separator, case folding, key
 * rotation, the day wrap), the length rule, the key file parser, and the
 * cross-check: check_srs.py has postsrsd and pysrs reverse what tern
 * makes and tern reverse what they make (skipped, and said, where the
 * packages are missing).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "t.h"
#include "t_pycheck.h"
#include "mailauth/srs.h"

/* 2026-12-06: day 20793, 313 modulo 1024, "JZ" */
#define T_NOW ((time_t)1796585645)
#define T_DAY 86400

static const unsigned char k_cur[] = "tern-test-secret";
static const unsigned char k_old[] = "old-secret";
static const struct srs_secret secrets[] = {
    {k_cur, sizeof(k_cur) - 1},
    {k_old, sizeof(k_old) - 1},
};
static const struct srs srs_b = {secrets, 2, "srs.example", 21};
static const struct srs srs_only_cur = {secrets, 1, "srs.example", 21};

/* ---- forward: known vectors --------------------------------------------- */

struct fwd_row {
	const char *name, *domain, *sender, *want; /* want NULL: refused */
	enum srs_status st;
};

static const struct fwd_row fwd_rows[] = {
    /* postsrsd -s (tern-test-secret) -d srs.example: "get user@example.com" */
    {"postsrsd_plain", "srs.example", "user@example.com",
	"SRS0=987y=JZ=example.com=user@srs.example", SRS_OK},
    /* the case of the sender is kept, the hash is of the lower case */
    {"postsrsd_case", "srs.example", "User@Example.COM",
	"SRS0=987y=JZ=Example.COM=User@srs.example", SRS_OK},
    /* pysrs Guarded: forward, then forward again at a second hop */
    {"pysrs_srs0", "fwd.example.net", "alice.smith+tag@mail.example.org",
	"SRS0=XcEb=JZ=mail.example.org=alice.smith+tag@fwd.example.net",
	SRS_OK},
    {"pysrs_srs1", "srs.example", "SRS0=Czx1=JZ=b.example=ann@f.example",
	"SRS1=kcZl=f.example==Czx1=JZ=b.example=ann@srs.example", SRS_OK},
    /* a third hop keeps the first hop and the rest, hash remade */
    {"pysrs_srs1_again", "third.example",
	"SRS1=kcZl=f.example==Czx1=JZ=b.example=ann@srs.example",
	"SRS1=kcZl=f.example==Czx1=JZ=b.example=ann@third.example", SRS_OK},
    /* pysrs makes a 68-octet local part here; tern keeps to 64 */
    {"pysrs_srs1_long", "srs.example",
	"SRS0=XcEb=JZ=mail.example.org=alice.smith+tag@fwd.example.net", NULL,
	SRS_TOO_LONG},
    /* 13 + 49 + 1 + 1 = 64 octets of local part: the limit itself */
    {"local_64", "srs.example",
	"u@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example",
	"SRS0=0ioI=JZ=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example=u@srs."
	"example",
	SRS_OK},
    /* one octet more: refused (RFC 5321 4.5.3.1.1), not cut */
    {"local_65", "srs.example",
	"uv@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example", NULL,
	SRS_TOO_LONG},
    /* an SRS1 whose rest is no SRS0 part (fuzz_srs found it) */
    {"srs1_rest_no_sep", "srs.example",
	"SRS1=kcZl=f.example=Czx1=JZ=b.example=ann@x.example", NULL,
	SRS_MALFORMED},
    {"quoted_local", "srs.example", "\"a b\"@example.com", NULL, SRS_MALFORMED},
    {"literal", "srs.example", "user@[192.0.2.1]", NULL, SRS_MALFORMED},
    {"no_at", "srs.example", "user", NULL, SRS_MALFORMED},
    {"empty_local", "srs.example", "@example.com", NULL, SRS_MALFORMED},
    {"empty_domain", "srs.example", "user@", NULL, SRS_MALFORMED},
};

static void
test_forward(void)
{
	size_t i;

	for (i = 0; i < sizeof(fwd_rows) / sizeof(fwd_rows[0]); i++) {
		const struct fwd_row *r = &fwd_rows[i];
		struct srs s = srs_b;
		char out[SRS_ADDR_MAX + 1];
		enum srs_status st;

		t_case(r->name);
		s.domain = r->domain;
		st = srs_forward(&s, r->sender, T_NOW, out, sizeof(out));
		T_CHECK_STR(srs_status_name(st), srs_status_name(r->st));
		T_CHECK_STR(out, r->want != NULL ? r->want : "");
	}
}

/* out too small: refused whole, never a cut address */
static void
test_forward_small_out(void)
{
	char out[20];

	T_CHECK_INT(
	    srs_forward(&srs_b, "user@example.com", T_NOW, out, sizeof(out)),
	    SRS_TOO_LONG);
	T_CHECK_STR(out, "");
}

/* ---- reverse: a table of every status ---------------------------------- */

struct rev_row {
	const char *name, *addr;
	time_t now;
	const char *want;
	enum srs_status st;
};

#define V0 "SRS0=987y=JZ=example.com=user"

static const struct rev_row rev_rows[] = {
    {"valid", V0 "@srs.example", T_NOW, "user@example.com", SRS_OK},
    {"domain_case", V0 "@SRS.Example", T_NOW, "user@example.com", SRS_OK},
    {"all_lower", "srs0=987y=jz=example.com=user@srs.example", T_NOW,
	"user@example.com", SRS_OK},
    {"all_upper", "SRS0=987Y=JZ=EXAMPLE.COM=USER@SRS.EXAMPLE", T_NOW,
	"USER@EXAMPLE.COM", SRS_OK},
    {"sep_plus", "SRS0+987y=JZ=example.com=user@srs.example", T_NOW,
	"user@example.com", SRS_OK},
    {"sep_minus", "SRS0-987y=JZ=example.com=user@srs.example", T_NOW,
	"user@example.com", SRS_OK},
    /* a local part with '=' in it: the rest after the domain is the user */
    {"user_with_eq", "SRS0=k73K=JZ=example.com=a=b@srs.example", T_NOW,
	"a=b@example.com", SRS_OK},
    /* pysrs, signed with the old secret: "+" and "/" in the hash */
    {"old_secret", "SRS0=+/DS=JZ=example.org=bob@srs.example", T_NOW,
	"bob@example.org", SRS_OK},
    {"age_21", V0 "@srs.example", T_NOW + 21 * T_DAY, "user@example.com",
	SRS_OK},
    {"age_22", V0 "@srs.example", T_NOW + 22 * T_DAY, NULL, SRS_EXPIRED},
    /* a stamp of tomorrow is 1023 days old (libsrs2 counts so too) */
    {"future", V0 "@srs.example", T_NOW - T_DAY, NULL, SRS_EXPIRED},
    /* 1024 days later the stamp is today's again: the scheme's limit */
    {"wrap", V0 "@srs.example", T_NOW + 1024 * T_DAY, "user@example.com",
	SRS_OK},
    {"bad_hash", "SRS0=987z=JZ=example.com=user@srs.example", T_NOW, NULL,
	SRS_BAD_HASH},
    /* the hash covers the stamp: a forger cannot freshen an address */
    {"stamp_changed", "SRS0=987y=KA=example.com=user@srs.example", T_NOW, NULL,
	SRS_BAD_HASH},
    {"user_changed", "SRS0=987y=JZ=example.com=admin@srs.example", T_NOW, NULL,
	SRS_BAD_HASH},
    {"hash_short", "SRS0=987=JZ=example.com=user@srs.example", T_NOW, NULL,
	SRS_MALFORMED},
    {"hash_long", "SRS0=987yy=JZ=example.com=user@srs.example", T_NOW, NULL,
	SRS_MALFORMED},
    {"stamp_bad_char", "SRS0=987y=J1=example.com=user@srs.example", T_NOW, NULL,
	SRS_MALFORMED},
    {"stamp_long", "SRS0=987y=JZZ=example.com=user@srs.example", T_NOW, NULL,
	SRS_MALFORMED},
    {"no_user", "SRS0=987y=JZ=example.com=@srs.example", T_NOW, NULL,
	SRS_MALFORMED},
    {"no_user_sep", "SRS0=987y=JZ=example.com@srs.example", T_NOW, NULL,
	SRS_MALFORMED},
    {"empty_host", "SRS0=987y=JZ==user@srs.example", T_NOW, NULL,
	SRS_MALFORMED},
    {"tag_only", "SRS0=@srs.example", T_NOW, NULL, SRS_MALFORMED},
    {"other_domain", V0 "@other.example", T_NOW, NULL, SRS_NOT_SRS},
    {"not_srs", "user@srs.example", T_NOW, NULL, SRS_NOT_SRS},
    {"srs2_tag", "SRS2=987y=JZ=example.com=user@srs.example", T_NOW, NULL,
	SRS_NOT_SRS},
    {"bad_sep", "SRS0_987y=JZ=example.com=user@srs.example", T_NOW, NULL,
	SRS_NOT_SRS},
    {"no_at", V0, T_NOW, NULL, SRS_NOT_SRS},
    /* SRS1: back to the first hop's SRS0, which that hop reverses */
    {"srs1",
	"SRS1=Xsde=fwd.example.net==XcEb=JZ=mail.example.org=alice.smith+"
	"tag@srs.example",
	T_NOW, "SRS0=XcEb=JZ=mail.example.org=alice.smith+tag@fwd.example.net",
	SRS_OK},
    /* SRS1 carries no stamp of its own: it does not expire here */
    {"srs1_old",
	"srs1=xsde=fwd.example.net==XcEb=JZ=mail.example.org=alice.smith+"
	"tag@srs.example",
	T_NOW + 400 * T_DAY,
	"SRS0=XcEb=JZ=mail.example.org=alice.smith+tag@fwd.example.net",
	SRS_OK},
    {"srs1_bad_hash",
	"SRS1=Xsdf=fwd.example.net==XcEb=JZ=mail.example.org=alice.smith+"
	"tag@srs.example",
	T_NOW, NULL, SRS_BAD_HASH},
    {"srs1_host_changed",
	"SRS1=Xsde=evil.example==XcEb=JZ=mail.example.org=alice.smith+"
	"tag@srs.example",
	T_NOW, NULL, SRS_BAD_HASH},
    {"srs1_no_rest", "SRS1=Xsde=fwd.example.net=@srs.example", T_NOW, NULL,
	SRS_MALFORMED},
    {"srs1_rest_no_sep", "SRS1=Xsde=fwd.example.net=XcEb@srs.example", T_NOW,
	NULL, SRS_MALFORMED},
    {"srs1_no_host", "SRS1=Xsde==x@srs.example", T_NOW, NULL, SRS_MALFORMED},
};

static void
test_reverse(void)
{
	size_t i;

	for (i = 0; i < sizeof(rev_rows) / sizeof(rev_rows[0]); i++) {
		const struct rev_row *r = &rev_rows[i];
		char out[SRS_ADDR_MAX + 1];
		enum srs_status st;

		t_case(r->name);
		st = srs_reverse(&srs_b, r->addr, r->now, out, sizeof(out));
		T_CHECK_STR(srs_status_name(st), srs_status_name(r->st));
		T_CHECK_STR(out, r->want != NULL ? r->want : "");
	}
}

/* Addresses signed with an old secret still reverse while it is listed
 * after the current one, and no longer once it is dropped. */
static void
test_rotation(void)
{
	struct srs old = {&secrets[1], 1, "srs.example", 21};
	char a[SRS_ADDR_MAX + 1], out[SRS_ADDR_MAX + 1];

	T_CHECK_INT(
	    srs_forward(&old, "bob@example.org", T_NOW, a, sizeof(a)), SRS_OK);
	T_CHECK_INT(srs_reverse(&srs_b, a, T_NOW, out, sizeof(out)), SRS_OK);
	T_CHECK_STR(out, "bob@example.org");
	T_CHECK_INT(srs_reverse(&srs_only_cur, a, T_NOW, out, sizeof(out)),
	    SRS_BAD_HASH);
}

/* forward then reverse, through two hops, at many days */
static void
test_round_trip(void)
{
	static const char *const senders[] = {"a@b.c", "First.Last@Example.ORG",
	    "x+y-z=w@sub.domain.example", "o'neil@example.ie",
	    "bücher@bücher.example"};
	struct srs hop1 = srs_b, hop2 = srs_b;
	size_t i, d;

	hop1.domain = "hop1.example";
	hop2.domain = "hop2.example";
	for (i = 0; i < sizeof(senders) / sizeof(senders[0]); i++)
		for (d = 0; d < 3000; d += 97) {
			time_t now = T_NOW + (time_t)d * T_DAY;
			char a1[SRS_ADDR_MAX + 1], a2[SRS_ADDR_MAX + 1];
			char r[SRS_ADDR_MAX + 1];

			t_case(senders[i]);
			T_CHECK_INT(
			    srs_forward(&hop1, senders[i], now, a1, sizeof(a1)),
			    SRS_OK);
			T_CHECK_INT(srs_forward(&hop2, a1, now, a2, sizeof(a2)),
			    SRS_OK);
			T_CHECK(strncmp(a2, "SRS1=", 5) == 0);
			T_CHECK_INT(srs_reverse(&hop2, a2, now + 5 * T_DAY, r,
					sizeof(r)),
			    SRS_OK);
			T_CHECK_STR(r, a1);
			T_CHECK_INT(srs_reverse(&hop1, r, now + 5 * T_DAY, a2,
					sizeof(a2)),
			    SRS_OK);
			T_CHECK_STR(a2, senders[i]);
		}
}

static void
test_timestamp(void)
{
	char t[3];

	srs_timestamp(0, t);
	T_CHECK_STR(t, "AA");
	srs_timestamp(T_NOW, t);
	T_CHECK_STR(t, "JZ");
	srs_timestamp((time_t)1023 * T_DAY, t);
	T_CHECK_STR(t, "77");
	srs_timestamp((time_t)1024 * T_DAY, t);
	T_CHECK_STR(t, "AA");
}

static void
test_is_srs(void)
{
	T_CHECK(srs_local_is_srs("SRS0=x", 6));
	T_CHECK(srs_local_is_srs("srs1+x", 6));
	T_CHECK(srs_local_is_srs("Srs0-x", 6));
	T_CHECK(!srs_local_is_srs("SRS0", 4));
	T_CHECK(!srs_local_is_srs("SRS0_x", 6));
	T_CHECK(!srs_local_is_srs("SRS2=x", 6));
	T_CHECK(!srs_local_is_srs("SRS0=x", 4));
}

static void
test_secrets_parse(void)
{
	static const char text[] = "# tern srs.key\n\ncurrent \r\n"
				   "\told\n#gone\nlast";
	struct srs_secret v[SRS_SECRETS_MAX];
	char big[SRS_SECRET_MAX + 2];
	char many[SRS_SECRETS_MAX * 3 + 3];
	size_t i;

	T_CHECK_INT(
	    srs_secrets_parse(text, strlen(text), v, SRS_SECRETS_MAX), 3);
	T_CHECK(v[0].len == 7 && memcmp(v[0].p, "current", 7) == 0);
	T_CHECK(v[1].len == 4 && memcmp(v[1].p, "\told", 4) == 0);
	T_CHECK(v[2].len == 4 && memcmp(v[2].p, "last", 4) == 0);
	T_CHECK_INT(srs_secrets_parse("\n\n# x\n", 6, v, SRS_SECRETS_MAX), 0);
	memset(big, 'k', sizeof(big));
	T_CHECK_INT(
	    srs_secrets_parse(big, SRS_SECRET_MAX, v, SRS_SECRETS_MAX), 1);
	T_CHECK_INT(
	    srs_secrets_parse(big, SRS_SECRET_MAX + 1, v, SRS_SECRETS_MAX), -1);
	for (i = 0; i < SRS_SECRETS_MAX + 1; i++) {
		many[i * 2] = (char)('a' + i);
		many[i * 2 + 1] = '\n';
	}
	T_CHECK_INT(srs_secrets_parse(
			many, (SRS_SECRETS_MAX + 1) * 2, v, SRS_SECRETS_MAX),
	    -1);
	T_CHECK_INT(
	    srs_secrets_parse(many, SRS_SECRETS_MAX * 2, v, SRS_SECRETS_MAX),
	    SRS_SECRETS_MAX);
}

/*
 * The cross-check: cases.tsv holds what tern made and what it answered
 * (now is the real clock, as postsrsd reads it); check_srs.py has
 * postsrsd and pysrs judge them and hands back addresses of theirs for
 * tern, in "theirs.tsv", whose verdicts tern writes to "ours.tsv" for the
 * script's second pass.
 */
static void
cross_write_cases(struct buf *b, time_t now)
{
	static const char *const senders[] = {"user@example.com",
	    "User@Example.COM", "first.last+tag@mail.example.org",
	    "a=b@example.net", "o'neil@sub.example.ie",
	    "x_y-z@a-b.example.co.uk", "Z@Q.EXAMPLE",
	    "long.local@deep.sub.example"};
	size_t i;

	for (i = 0; i < sizeof(senders) / sizeof(senders[0]); i++) {
		char a[SRS_ADDR_MAX + 1], a1[SRS_ADDR_MAX + 1];
		struct srs hop = srs_b;

		T_CHECK_INT(
		    srs_forward(&srs_b, senders[i], now, a, sizeof(a)), SRS_OK);
		T_CHECK(buf_printf(b, "fwd\t%s\t%s\n", senders[i], a) == 0);
		hop.domain = "hop2.example";
		T_CHECK_INT(srs_forward(&hop, a, now, a1, sizeof(a1)), SRS_OK);
		T_CHECK(buf_printf(b, "fwd1\t%s\t%s\n", a, a1) == 0);
	}
}

static void
test_cross_check(void)
{
	struct t_pycheck pc;
	struct buf b;
	time_t now = time(NULL);

	buf_init(&b, 1 << 20);
	cross_write_cases(&b, now);
	T_CHECK(t_pycheck_open(&pc, "test_srs", "check_srs.py", __FILE__));
	T_CHECK(t_pycheck_write(&pc, "cases", ".tsv", b.data, b.len));
	T_CHECK(t_pycheck_run(&pc, "cases"));
	t_pycheck_close(&pc);
	buf_free(&b);
}

/* test_srs --reverse ADDR...: tern's verdicts for check_srs.py's pass on
 * addresses postsrsd and pysrs made ("status<TAB>result" a line). */
static int
reverse_main(int argc, char **argv)
{
	int i;

	for (i = 0; i < argc; i++) {
		char out[SRS_ADDR_MAX + 1];
		enum srs_status st =
		    srs_reverse(&srs_b, argv[i], time(NULL), out, sizeof(out));

		printf("%s\t%s\n", srs_status_name(st), out);
	}
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--reverse") == 0)
		return reverse_main(argc - 2, argv + 2);
	/* check_srs.py runs this binary again with --reverse */
	if (setenv("TERN_TEST_SRS_BIN", argv[0], 1) != 0)
		return 1;
	T_RUN(test_forward);
	T_RUN(test_forward_small_out);
	T_RUN(test_reverse);
	T_RUN(test_rotation);
	T_RUN(test_round_trip);
	T_RUN(test_timestamp);
	T_RUN(test_is_srs);
	T_RUN(test_secrets_parse);
	T_RUN(test_cross_check);
	return t_summary();
}
