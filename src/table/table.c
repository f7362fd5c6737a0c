/*
 * table: the engine-independent half of users, aliases and domains.  It
 * picks the engine named by tables.users, checks and normalises every
 * address before an engine sees it, and resolves recipients (aliases,
 * users, catch-all, postmaster) on top of the engines' plain lookups.
 *
 * Keys: "local@domain" as addr_format() writes it (the local part quoted
 * only when it must be), local part and domain lower-cased; "@domain" for
 * a catch-all alias.  A stored local part may not hold '@' (the engines
 * find a row's domain after the first '@'), and a user's local part, which
 * becomes a directory name under STATE/mail/DOMAIN/, may not hold '/',
 * start with '.', or hold control characters.
 *
 * Resolution order for a recipient: its exact alias (targets expanded
 * recursively), else its user, else the "@domain" catch-all alias, else
 * postmaster@ a local domain goes to the mailbox DOMAIN/postmaster
 * (RFC 5321 4.5.1).  A target that is a user stops there (so "ben ->
 * ben, archive" delivers to user ben, it is no loop); other local targets
 * resolve as above; remote targets are returned as they are.  A local
 * target that resolves to nothing makes the whole recipient NOTFOUND:
 * refusing at RCPT is better than accepting mail no one will get.
 *
 * Limits: TABLE_ALIAS_DEPTH nested aliases, TABLE_TARGETS_MAX targets per
 * recipient; a cycle or passing a limit gives TABLE_LOOP.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "table/table_engine.h"

#define TABLE_KEY_MAX (TABLE_ADDR_MAX + 3) /* room for quotes */

static const struct table_engine *const table_engines[] = {
    &table_engine_sqlite,
    &table_engine_pgsql,
};

void
table_set_error(struct table *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	str_vfmt_cut(t->err, sizeof(t->err), fmt, ap);
	va_end(ap);
}

const char *
table_strerror(const struct table *t)
{
	return t->err[0] != '\0' ? t->err : "no error";
}

/* ---- open and close ---------------------------------------------------- */

static const struct table_engine *
table_find_engine(const char *spec, char *err, size_t errlen)
{
	size_t i;

	for (i = 0; i < sizeof(table_engines) / sizeof(table_engines[0]); i++)
		if (strncmp(spec, table_engines[i]->prefix,
			strlen(table_engines[i]->prefix)) == 0)
			return table_engines[i];
	/* at most 40 bytes of spec: a misspelt prefix may precede a
	 * connection string holding a password */
	str_fmt_cut(err, errlen,
	    "tables.users: unknown engine in "
	    "\"%.40s\" (expected sqlite:PATH or pgsql:CONNINFO)",
	    spec);
	return NULL;
}

struct table *
table_open(const struct conf *c, char *err, size_t errlen)
{
	const struct table_engine *eng;
	struct table *t;
	size_t i;

	if ((eng = table_find_engine(c->tables_users, err, errlen)) == NULL)
		return NULL;
	t = xcalloc(1, sizeof(*t));
	t->eng = eng;
	t->domains = xcalloc(c->ndomains + 1, sizeof(char *));
	for (i = 0; i < c->ndomains; i++)
		t->domains[i] = xstrdup(c->domains[i]);
	t->ndomains = c->ndomains;
	if (c->recipient_delimiter != NULL &&
	    str_copy(t->delim, sizeof(t->delim), c->recipient_delimiter,
		strlen(c->recipient_delimiter)) != 0)
		t->delim[0] = '\0'; /* conf.c allows CONF_DELIM_MAX */
	if (eng->open(t, c->tables_users + strlen(eng->prefix)) != 0) {
		str_fmt_cut(err, errlen, "%s", t->err);
		table_close(t);
		return NULL;
	}
	return t;
}

bool
table_is_remote(const struct table *t)
{
	return t->eng->remote;
}

void
table_close(struct table *t)
{
	size_t i;

	if (t == NULL)
		return;
	if (t->h != NULL)
		t->eng->close(t);
	for (i = 0; i < t->ndomains; i++)
		free(t->domains[i]);
	free(t->domains);
	free(t);
}

/* ---- checking and normalising addresses -------------------------------- */

/* A local part safe as one directory name: no '/', no leading '.', no
 * control characters (they would also break logs and Maildir names). */
static bool
table_local_is_path_safe(const char *local)
{
	const unsigned char *p;

	if (local[0] == '.' || local[0] == '\0')
		return false;
	for (p = (const unsigned char *)local; *p != '\0'; p++)
		if (*p == '/' || *p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

/* Key of a parsed address: lower-cased and formatted. */
static int
table_key_of(const struct addr *a, char *key, size_t keylen)
{
	struct addr n = *a;

	str_lower(n.local);
	str_lower(n.domain);
	n.postmaster = false;
	n.null = false;
	return addr_format(&n, key, keylen) < 0 ? -1 : 0;
}

enum table_norm {
	TABLE_NORM_LOOKUP, /* any mailbox */
	TABLE_NORM_USER,   /* its local part becomes a directory */
	TABLE_NORM_ALIAS,  /* a mailbox, or "@domain" */
};

static enum table_status
table_norm_catchall(struct table *t, const char *in, char *key, size_t keylen)
{
	char d[ADDR_DOMAIN_MAX + 1];
	enum addr_domain_kind kind;
	enum addr_status st;

	st = addr_parse_domain(
	    in + 1, strlen(in + 1), ADDR_F_UTF8, d, sizeof(d), &kind);
	if (st != ADDR_OK || kind != ADDR_DOMAIN_NAME) {
		table_set_error(t, "\"%.80s\": not @domain: %s", in,
		    st != ADDR_OK ? addr_strerror(st) : "address literal");
		return TABLE_INVALID;
	}
	str_lower(d);
	if (str_fmt(key, keylen, "@%s", d) != 0) {
		table_set_error(t, "\"%.80s\": too long", in);
		return TABLE_INVALID;
	}
	return TABLE_OK;
}

/*
 * Check an address typed by an administrator (or an AUTH user name) and
 * write its key.  Errors are TABLE_INVALID with the reason in t->err.
 */
static enum table_status
table_norm(struct table *t, const char *in, enum table_norm how, char *key,
    size_t keylen)
{
	struct addr a;
	enum addr_status st;

	if (how == TABLE_NORM_ALIAS && in[0] == '@')
		return table_norm_catchall(t, in, key, keylen);
	st = addr_parse_mailbox(in, strlen(in), ADDR_F_UTF8, &a);
	if (st != ADDR_OK) {
		table_set_error(
		    t, "\"%.80s\": not an address (%s)", in, addr_strerror(st));
		return TABLE_INVALID;
	}
	if (a.kind != ADDR_DOMAIN_NAME) {
		table_set_error(t,
		    "\"%.80s\": address literals are not "
		    "supported here",
		    in);
		return TABLE_INVALID;
	}
	if (strchr(a.local, '@') != NULL) {
		table_set_error(t,
		    "\"%.80s\": '@' in the local part is not "
		    "supported",
		    in);
		return TABLE_INVALID;
	}
	if (how == TABLE_NORM_USER && !table_local_is_path_safe(a.local)) {
		table_set_error(t,
		    "\"%.80s\": a user's local part cannot "
		    "contain '/', start with '.' or hold control characters "
		    "(it names the mailbox directory)",
		    in);
		return TABLE_INVALID;
	}
	if (table_key_of(&a, key, keylen) != 0) {
		table_set_error(t, "\"%.80s\": too long", in);
		return TABLE_INVALID;
	}
	return TABLE_OK;
}

/* The domain of a key ("local@domain" or "@domain"). */
static const char *
table_key_domain(const char *key)
{
	const char *at = strrchr(key, '@');

	return at != NULL ? at + 1 : "";
}

/* ---- domains ----------------------------------------------------------- */

enum table_status
table_domain_is_local(struct table *t, const char *domain)
{
	char d[ADDR_DOMAIN_MAX + 1];
	enum table_status st;
	size_t i;

	if (str_copy(d, sizeof(d), domain, strlen(domain)) != 0)
		return TABLE_NOTLOCAL;
	str_lower(d);
	for (i = 0; i < t->ndomains; i++)
		if (strcmp(t->domains[i], d) == 0)
			return TABLE_OK;
	st = t->eng->domain_known(t, d);
	return st == TABLE_NOTFOUND ? TABLE_NOTLOCAL : st;
}

/* ---- resolution -------------------------------------------------------- */

/* One recipient being resolved: the keys being expanded, for loops. */
struct table_walk {
	struct table *t;
	struct table_targets *out;
	size_t start; /* out->v[start..] are ours */
	char stack[TABLE_ALIAS_DEPTH][TABLE_KEY_MAX + 1];
	size_t depth;
};

/* Targets of one alias, copied out before recursing (the engine's
 * statement must be finished before it is used again). */
struct table_list {
	char (*v)[TABLE_KEY_MAX + 1];
	size_t n, cap;
	bool over;
};

static void
table_list_add(const char *target, void *ctx)
{
	struct table_list *l = ctx;

	if (l->n >= TABLE_TARGETS_MAX || strlen(target) > TABLE_KEY_MAX) {
		l->over = true;
		return;
	}
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 8;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		if (l->v == NULL)
			panic("event=oom where=table_list_add");
	}
	memcpy(l->v[l->n++], target, strlen(target) + 1);
}

static enum table_status
table_add_target(struct table_walk *w, const char *address, bool local,
    const char *mailbox, const char *folder)
{
	struct table_targets *o = w->out;
	struct table_target *tg;
	size_t i;

	for (i = w->start; i < o->n; i++)
		if (strcmp(o->v[i].address, address) == 0)
			return TABLE_OK;
	if (o->n - w->start >= TABLE_TARGETS_MAX) {
		table_set_error(
		    w->t, "more than %d targets", TABLE_TARGETS_MAX);
		return TABLE_LOOP;
	}
	if (o->n == o->cap) {
		o->cap = o->cap ? o->cap * 2 : 4;
		o->v = realloc(o->v, o->cap * sizeof(*o->v));
		if (o->v == NULL)
			panic("event=oom where=table_add_target");
	}
	tg = &o->v[o->n];
	memset(tg, 0, sizeof(*tg));
	tg->local = local;
	if (str_copy(tg->address, sizeof(tg->address), address,
		strlen(address)) != 0 ||
	    str_copy(tg->mailbox, sizeof(tg->mailbox), mailbox,
		strlen(mailbox)) != 0 ||
	    str_copy(tg->folder, sizeof(tg->folder), folder, strlen(folder)) !=
		0) {
		table_set_error(
		    w->t, "%s: address or mailbox too long", address);
		return TABLE_TEMPFAIL;
	}
	o->n++;
	return TABLE_OK;
}

/* The mailbox of user key: its maildir column, else DOMAIN/LOCAL. */
static enum table_status
table_user_box(struct table *t, const char *key, const char *maildir, char *out,
    size_t outlen)
{
	struct addr a;

	if (maildir[0] != '\0')
		return str_copy(out, outlen, maildir, strlen(maildir)) == 0
			   ? TABLE_OK
			   : TABLE_TEMPFAIL;
	/* re-checked here: the row may have been written by hand */
	if (addr_parse_mailbox(key, strlen(key), ADDR_F_UTF8, &a) != ADDR_OK ||
	    !table_local_is_path_safe(a.local) ||
	    str_fmt(out, outlen, "%s/%s", a.domain, a.local) != 0) {
		table_set_error(
		    t, "users table: unusable address \"%.80s\"", key);
		return TABLE_TEMPFAIL;
	}
	return TABLE_OK;
}

/* If key is a user, add it as a local target (into folder, "" INBOX) and
 * set *found. */
static enum table_status
table_walk_user(
    struct table_walk *w, const char *key, const char *folder, bool *found)
{
	char maildir[sizeof(w->out->v[0].mailbox)], box[sizeof(maildir)];
	enum table_status st;

	*found = false;
	st = w->t->eng->user_get(w->t, key, maildir, sizeof(maildir));
	if (st == TABLE_NOTFOUND)
		return TABLE_OK;
	if (st != TABLE_OK)
		return st;
	*found = true;
	st = table_user_box(w->t, key, maildir, box, sizeof(box));
	return st != TABLE_OK ? st
			      : table_add_target(w, key, true, box, folder);
}

static enum table_status table_walk_address(
    struct table_walk *w, const char *key, bool as_target);

static enum table_status
table_walk_target(struct table_walk *w, const char *target)
{
	enum table_status st =
	    table_domain_is_local(w->t, table_key_domain(target));

	if (st == TABLE_NOTLOCAL)
		return table_add_target(w, target, false, "", "");
	if (st != TABLE_OK)
		return st;
	st = table_walk_address(w, target, true);
	if (st == TABLE_NOTFOUND)
		table_set_error(w->t, "alias target %s: no such user", target);
	return st;
}

static enum table_status
table_walk_push(struct table_walk *w, const char *key)
{
	size_t i;

	for (i = 0; i < w->depth; i++)
		if (strcmp(w->stack[i], key) == 0) {
			table_set_error(w->t, "alias loop through %s", key);
			return TABLE_LOOP;
		}
	if (w->depth >= TABLE_ALIAS_DEPTH) {
		table_set_error(w->t, "aliases nested deeper than %d at %s",
		    TABLE_ALIAS_DEPTH, key);
		return TABLE_LOOP;
	}
	memcpy(w->stack[w->depth++], key, strlen(key) + 1);
	return TABLE_OK;
}

/* Expand the alias key if there is one; *found tells. */
static enum table_status
table_walk_alias(struct table_walk *w, const char *key, bool *found)
{
	struct table_list l = {NULL, 0, 0, false};
	enum table_status st;
	size_t i;

	*found = false;
	st = w->t->eng->alias_get(w->t, key, table_list_add, &l);
	if (st == TABLE_OK && l.over) {
		table_set_error(w->t, "alias %s: too many targets", key);
		st = TABLE_LOOP;
	}
	if (st == TABLE_OK && l.n > 0) {
		*found = true;
		st = table_walk_push(w, key);
		if (st == TABLE_OK) {
			for (i = 0; st == TABLE_OK && i < l.n; i++)
				st = table_walk_target(w, l.v[i]);
			w->depth--;
		}
	}
	free(l.v);
	return st;
}

static bool
table_key_is_postmaster(const char *key)
{
	const char *at = strrchr(key, '@');

	return at != NULL && (size_t)(at - key) == 10 &&
	       strncmp(key, "postmaster", 10) == 0;
}

/* key's own alias or user, in the order as_target asks (see below). */
static enum table_status
table_walk_exact(struct table_walk *w, const char *key, bool as_target,
    const char *folder, bool *found)
{
	enum table_status st;

	if (as_target &&
	    ((st = table_walk_user(w, key, folder, found)) != TABLE_OK ||
		*found))
		return st;
	if ((st = table_walk_alias(w, key, found)) != TABLE_OK || *found)
		return st;
	return as_target ? TABLE_OK : table_walk_user(w, key, folder, found);
}

/*
 * Plus-addressing (recipient_delimiter): "ben+shop@d" is the base "ben@d"
 * with the extension "shop", split at the first delimiter character (as
 * Postfix does).  false: no delimiter configured or in the local part, a
 * quoted local part, or an empty base.
 */
static bool
table_split_ext(const struct table *t, const char *key, char *base,
    size_t baselen, const char **ext, size_t *extlen)
{
	const char *at = strrchr(key, '@');
	size_t i;

	if (t->delim[0] == '\0' || at == NULL || key[0] == '"')
		return false;
	for (i = 0; key + i < at && strchr(t->delim, key[i]) == NULL; i++)
		;
	if (key + i == at || i == 0)
		return false;
	*ext = key + i + 1;
	*extlen = (size_t)(at - *ext);
	return str_fmt(base, baselen, "%.*s%s", (int)i, key, at) == 0;
}

/*
 * The Maildir++ folder of an extension: "." and the extension when it is
 * safe as one directory name (1 to TABLE_FOLDER_MAX - 1 octets of
 * letters, digits, '-', '_' and '.', no leading or trailing '.', no
 * ".."), else "" (the INBOX: an odd extension still reaches its user).
 */
static void
table_ext_folder(const char *ext, size_t n, char *out, size_t outlen)
{
	size_t i;

	out[0] = '\0';
	if (n == 0 || n + 2 > outlen || n + 1 > TABLE_FOLDER_MAX ||
	    ext[0] == '.' || ext[n - 1] == '.')
		return;
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)ext[i];

		if (!(ch < 0x80 &&
			(isalnum(ch) || ch == '-' || ch == '_' || ch == '.')) ||
		    (ch == '.' && ext[i + 1] == '.'))
			return;
	}
	out[0] = '.';
	memcpy(out + 1, ext, n);
	out[n + 1] = '\0';
}

/*
 * key is in a local domain.  as_target: it was reached through an alias,
 * so a user of that name ends the expansion.  With recipient_delimiter,
 * "ben+shop@d" that is neither an alias nor a user is tried as "ben@d"
 * (its alias, or its user with the folder ".shop"), before the catch-all.
 */
static enum table_status
table_walk_address(struct table_walk *w, const char *key, bool as_target)
{
	char catchall[TABLE_KEY_MAX + 1], box[ADDR_DOMAIN_MAX + 16];
	char base[TABLE_KEY_MAX + 1], folder[TABLE_FOLDER_MAX + 1];
	const char *domain = table_key_domain(key), *ext;
	enum table_status st;
	size_t extlen;
	bool found;

	if ((st = table_walk_exact(w, key, as_target, "", &found)) !=
		TABLE_OK ||
	    found)
		return st;
	if (table_split_ext(w->t, key, base, sizeof(base), &ext, &extlen)) {
		table_ext_folder(ext, extlen, folder, sizeof(folder));
		if ((st = table_walk_exact(
			 w, base, as_target, folder, &found)) != TABLE_OK ||
		    found)
			return st;
	}
	if (str_fmt(catchall, sizeof(catchall), "@%s", domain) == 0 &&
	    ((st = table_walk_alias(w, catchall, &found)) != TABLE_OK || found))
		return st;
	if (table_key_is_postmaster(key)) {
		/* a mailbox name: cut, it would name another mailbox */
		if (str_fmt(box, sizeof(box), "%s/postmaster", domain) != 0) {
			table_set_error(
			    w->t, "postmaster mailbox of %s: too long", domain);
			return TABLE_TEMPFAIL;
		}
		return table_add_target(w, key, true, box, "");
	}
	return TABLE_NOTFOUND;
}

/* The key to resolve for a parsed recipient; TABLE_OK or a final status. */
static enum table_status
table_recipient_key(
    struct table *t, const struct addr *a, char *key, size_t keylen)
{
	if (a->postmaster) {
		if (t->ndomains == 0 ||
		    str_fmt(key, keylen, "postmaster@%s", t->domains[0]) != 0)
			return TABLE_NOTFOUND;
		return TABLE_OK;
	}
	if (a->null || a->domain[0] == '\0')
		return TABLE_NOTFOUND;
	if (a->kind != ADDR_DOMAIN_NAME)
		return TABLE_NOTLOCAL; /* no address literal is local */
	if (table_key_of(a, key, keylen) != 0)
		return TABLE_NOTFOUND;
	return TABLE_OK;
}

enum table_status
table_resolve(struct table *t, const struct addr *a, struct table_targets *out)
{
	struct table_walk *w;
	char key[TABLE_KEY_MAX + 1];
	enum table_status st;

	t->err[0] = '\0';
	st = table_recipient_key(t, a, key, sizeof(key));
	if (st == TABLE_OK)
		st = table_domain_is_local(t, table_key_domain(key));
	if (st != TABLE_OK)
		return st;
	w = xcalloc(1, sizeof(*w));
	w->t = t;
	w->out = out;
	w->start = out->n;
	st = table_walk_address(w, key, false);
	if (st != TABLE_OK)
		out->n = w->start; /* all or nothing */
	free(w);
	return st;
}

void
table_targets_free(struct table_targets *tt)
{
	free(tt->v);
	tt->v = NULL;
	tt->n = tt->cap = 0;
}

enum table_status
table_changed(struct table *t, enum table_status st, int changes,
    const char *what, const char *key)
{
	if (st == TABLE_OK && changes == 0) {
		table_set_error(t, "no such %s: %s", what, key);
		return TABLE_NOTFOUND;
	}
	return st;
}

bool
table_mailbox_is_lmtp(const char *mailbox)
{
	return strncmp(mailbox, TABLE_LMTP_PREFIX, strlen(TABLE_LMTP_PREFIX)) ==
	       0;
}

/* ---- administration ---------------------------------------------------- */

enum table_status
table_user_add(struct table *t, const char *address, const char *pwhash)
{
	char key[TABLE_KEY_MAX + 1];
	enum table_status st =
	    table_norm(t, address, TABLE_NORM_USER, key, sizeof(key));

	return st != TABLE_OK ? st : t->eng->user_add(t, key, pwhash);
}

enum table_status
table_user_del(struct table *t, const char *address)
{
	char key[TABLE_KEY_MAX + 1];
	enum table_status st =
	    table_norm(t, address, TABLE_NORM_LOOKUP, key, sizeof(key));

	return st != TABLE_OK ? st : t->eng->user_del(t, key);
}

enum table_status
table_user_passwd(struct table *t, const char *address, const char *pwhash)
{
	char key[TABLE_KEY_MAX + 1];
	enum table_status st =
	    table_norm(t, address, TABLE_NORM_LOOKUP, key, sizeof(key));

	return st != TABLE_OK ? st : t->eng->user_passwd(t, key, pwhash);
}

/*
 * A Maildir of the user's own: an absolute path of plain components (no
 * "." or "..", no empty one, no control byte), as maildir.c will open it.
 */
static bool
table_maildir_ok(const char *p)
{
	const char *c, *end;
	size_t n = strlen(p);

	if (p[0] != '/' || n < 2 || n >= 500 || p[n - 1] == '/')
		return false;
	for (c = p + 1;; c = end + 1) {
		end = strchrnul(c, '/');
		if (end == c || (end - c == 1 && c[0] == '.') ||
		    (end - c == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		for (const char *q = c; q < end; q++)
			if ((unsigned char)*q < 0x20 || *q == 0x7f)
				return false;
		if (*end == '\0')
			return true;
	}
}

/* "lmtp:unix:/absolute/path" or "lmtp:host[:port]" (remote.c parses it
 * fully when it delivers; this keeps junk out of the table). */
static bool
table_lmtp_ok(const char *p)
{
	const char *q = p + strlen(TABLE_LMTP_PREFIX);

	if (strncmp(q, "unix:", 5) == 0)
		return q[5] == '/' && strlen(q + 5) <= 107 &&
		       table_maildir_ok(q + 5);
	if (*q == '\0' || strlen(q) > 255)
		return false;
	for (; *q != '\0'; q++)
		if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
			(*q >= '0' && *q <= '9') ||
			strchr(".-:[]", *q) != NULL))
			return false;
	return true;
}

enum table_status
table_user_set_maildir(struct table *t, const char *address, const char *path)
{
	char key[TABLE_KEY_MAX + 1];
	enum table_status st =
	    table_norm(t, address, TABLE_NORM_LOOKUP, key, sizeof(key));

	if (st != TABLE_OK)
		return st;
	if (path != NULL && table_mailbox_is_lmtp(path) &&
	    !table_lmtp_ok(path)) {
		table_set_error(t,
		    "%s: an LMTP server is lmtp:unix:/absolute/path "
		    "or lmtp:host[:port]",
		    path);
		return TABLE_INVALID;
	}
	if (path != NULL && !table_mailbox_is_lmtp(path) &&
	    !table_maildir_ok(path)) {
		table_set_error(t,
		    "%s: a Maildir must be an absolute path of "
		    "plain components (no ., .., // or trailing /)",
		    path);
		return TABLE_INVALID;
	}
	return t->eng->user_set_maildir(t, key, path);
}

enum table_status
table_user_pwhash(
    struct table *t, const char *address, char *out, size_t outlen)
{
	char key[TABLE_KEY_MAX + 1];
	enum table_status st =
	    table_norm(t, address, TABLE_NORM_LOOKUP, key, sizeof(key));

	bool null = true;

	/* an AUTH name that is no address is simply no user */
	if (st == TABLE_INVALID)
		return TABLE_NOTFOUND;
	if (st != TABLE_OK)
		return st;
	st = t->eng->user_pwhash(t, key, out, outlen, &null);
	if (st == TABLE_OK && null) {
		table_set_error(t, "user %s has no password", key);
		return TABLE_NOTFOUND;
	}
	if (st == TABLE_NOTFOUND)
		table_set_error(t, "no such user: %s", key);
	return st;
}

enum table_status
table_user_mailbox(
    struct table *t, const char *address, char *out, size_t outlen)
{
	char key[TABLE_KEY_MAX + 1], maildir[512];
	enum table_status st =
	    table_norm(t, address, TABLE_NORM_LOOKUP, key, sizeof(key));

	if (st != TABLE_OK)
		return st;
	st = t->eng->user_get(t, key, maildir, sizeof(maildir));
	if (st == TABLE_NOTFOUND)
		table_set_error(t, "no such user: %s", key);
	if (st != TABLE_OK)
		return st;
	return table_user_box(t, key, maildir, out, outlen);
}

enum table_status
table_user_list(struct table *t,
    void (*cb)(const char *address, bool has_password, void *ctx), void *ctx)
{
	return t->eng->user_list(t, cb, ctx);
}

enum table_status
table_alias_add(struct table *t, const char *address, const char *target)
{
	char key[TABLE_KEY_MAX + 1], tkey[TABLE_KEY_MAX + 1];
	enum table_status st;

	st = table_norm(t, address, TABLE_NORM_ALIAS, key, sizeof(key));
	if (st == TABLE_OK)
		st = table_norm(
		    t, target, TABLE_NORM_LOOKUP, tkey, sizeof(tkey));
	return st != TABLE_OK ? st : t->eng->alias_add(t, key, tkey);
}

enum table_status
table_alias_del(struct table *t, const char *address, const char *target)
{
	char key[TABLE_KEY_MAX + 1], tkey[TABLE_KEY_MAX + 1];
	enum table_status st;

	st = table_norm(t, address, TABLE_NORM_ALIAS, key, sizeof(key));
	if (st == TABLE_OK && target != NULL)
		st = table_norm(
		    t, target, TABLE_NORM_LOOKUP, tkey, sizeof(tkey));
	if (st != TABLE_OK)
		return st;
	return t->eng->alias_del(t, key, target != NULL ? tkey : NULL);
}

enum table_status
table_alias_list(struct table *t, const char *address,
    void (*cb)(const char *address, const char *target, void *ctx), void *ctx)
{
	char key[TABLE_KEY_MAX + 1];
	enum table_status st;

	if (address == NULL)
		return t->eng->alias_list(t, NULL, cb, ctx);
	st = table_norm(t, address, TABLE_NORM_ALIAS, key, sizeof(key));
	return st != TABLE_OK ? st : t->eng->alias_list(t, key, cb, ctx);
}
