/*
 * test_dkimsel: the rotation rule of DKIM keys (mailauth/dkimsel.h): key
 * file names, the active file, the no-file fallback, activation.
 */
#include <string.h>

#include "t.h"
#include "mailauth/dkimsel.h"

static void
keys_of(struct dkimsel_key *k, size_t *n, const char *const *names)
{
	*n = 0;
	for (; *names != NULL; names++)
		if (dkimsel_file_name(*names, &k[*n]))
			(*n)++;
}

/* "sel,sel" of the active keys, in key order */
static void
actives(const struct dkimsel_key *k, size_t n, char *out, size_t outlen)
{
	size_t i;

	out[0] = '\0';
	for (i = 0; i < n; i++)
		if (k[i].active) {
			if (out[0] != '\0')
				str_fmt_cut(out + strlen(out),
				    outlen - strlen(out), ",");
			str_fmt_cut(out + strlen(out), outlen - strlen(out),
			    "%s", k[i].selector);
		}
}

static void
test_file_names(void)
{
	static const struct {
		const char *name;
		bool ok;
		const char *sel;
		enum dkim_key_type type;
	} t[] = {
	    {"tern-rsa-202612.rsa.key", true, "tern-rsa-202612", DKIM_KEY_RSA},
	    {"s1.ed25519.key", true, "s1", DKIM_KEY_ED25519},
	    {"a.b_c.rsa.key", true, "a.b_c", DKIM_KEY_RSA},
	    {".rsa.key", false, "", DKIM_KEY_RSA},
	    {"x.dsa.key", false, "", DKIM_KEY_RSA},
	    {"x.rsa.key.tmp", false, "", DKIM_KEY_RSA},
	    {"a..b.rsa.key", false, "", DKIM_KEY_RSA},
	    {"a/b.rsa.key", false, "", DKIM_KEY_RSA},
	    {"a b.rsa.key", false, "", DKIM_KEY_RSA},
	    {"active", false, "", DKIM_KEY_RSA},
	    {"x.ed25519", false, "", DKIM_KEY_RSA},
	};
	struct dkimsel_key k;
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(*t); i++) {
		t_case(t[i].name);
		T_CHECK(dkimsel_file_name(t[i].name, &k) == t[i].ok);
		if (t[i].ok) {
			T_CHECK_STR(k.selector, t[i].sel);
			T_CHECK(k.type == t[i].type && !k.active);
		}
	}
}

static void
test_choose(void)
{
	static const struct {
		const char *name;
		const char *files[6];
		const char *active; /* NULL: no file */
		const char *want;
		bool warns;
	} t[] = {
	    {"one rsa, no file", {"a.rsa.key", NULL}, NULL, "a", false},
	    {"rsa + ed25519, no file: dual",
		{"a.rsa.key", "b.ed25519.key", NULL}, NULL, "a,b", false},
	    {"two rsa, no file: none",
		{"a.rsa.key", "b.rsa.key", "e.ed25519.key", NULL}, NULL, "e",
		true},
	    {"file names the new one", {"a.rsa.key", "b.rsa.key", NULL}, "b\n",
		"b", false},
	    {"file: old stays, new waits", {"old.rsa.key", "new.rsa.key", NULL},
		"old\n", "old", false},
	    {"file: comment, blanks, CRLF, case",
		{"a.rsa.key", "b.ed25519.key", NULL},
		"# active keys\r\n  A  # rsa\r\n\r\nb\r\n", "a,b", false},
	    {"file: two of one algorithm, first wins",
		{"a.rsa.key", "b.rsa.key", NULL}, "b\na\n", "b", true},
	    {"file: unknown selector ignored", {"a.rsa.key", NULL}, "gone\na\n",
		"a", true},
	    {"empty file: nothing signs", {"a.rsa.key", NULL}, "", "", false},
	    {"no keys", {NULL}, "a\n", "", true},
	    {"last line without newline", {"a.rsa.key", NULL}, "a", "a", false},
	};
	struct dkimsel_key k[DKIMSEL_KEYS_MAX];
	struct buf warn;
	char got[256];
	size_t i, n;

	buf_init(&warn, 4096);
	for (i = 0; i < sizeof(t) / sizeof(*t); i++) {
		t_case(t[i].name);
		buf_reset(&warn);
		keys_of(k, &n, t[i].files);
		dkimsel_choose(k, n, t[i].active,
		    t[i].active ? strlen(t[i].active) : 0, &warn);
		actives(k, n, got, sizeof(got));
		T_CHECK_STR(got, t[i].want);
		T_CHECK((warn.len > 0) == t[i].warns);
	}
	buf_free(&warn);
}

static void
test_activate(void)
{
	static const char *const files[] = {
	    "old.rsa.key", "new.rsa.key", "ed.ed25519.key", NULL};
	struct dkimsel_key k[8];
	struct buf out, warn;
	char got[256];
	size_t n;

	buf_init(&out, 4096);
	buf_init(&warn, 4096);
	keys_of(k, &n, files);
	dkimsel_choose(k, n, "old\ned\n", 7, &warn);
	t_case("activate replaces its algorithm's key, keeps the other");
	T_CHECK(dkimsel_activate(k, n, "new", &out) == 0);
	T_CHECK_STR(out.data, "new\ned\n");
	dkimsel_choose(k, n, out.data, out.len, &warn);
	actives(k, n, got, sizeof(got));
	T_CHECK_STR(got, "new,ed");
	T_CHECK(warn.len == 0);
	t_case("activate an unknown selector");
	buf_reset(&out);
	T_CHECK(dkimsel_activate(k, n, "nope", &out) != 0);
	t_case("activate what is active: same file");
	buf_reset(&out);
	T_CHECK(dkimsel_activate(k, n, "ed", &out) == 0);
	T_CHECK_STR(out.data, "ed\nnew\n");
	buf_free(&out);
	buf_free(&warn);
}

int
main(void)
{
	T_RUN(test_file_names);
	T_RUN(test_choose);
	T_RUN(test_activate);
	return t_summary();
}
