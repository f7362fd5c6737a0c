/*
 * conf: the configuration of ternd and tern.  Embedded defaults, then an
 * INI file read with inih, then "-o section.key=value" overrides, then the
 * values computed from others (tables.users follows state_dir).
 *
 * One table (conf_keys) names every key, its type, where it lives in
 * struct conf and its range; parsing, checking and conf_dump all walk it,
 * so a key cannot be settable without also being dumped and checked.
 *
 * Invariants:
 *  - A struct conf handed out is complete and valid: every number in its
 *    range, every domain checked with addr_parse_domain and lower-cased,
 *    state_dir and the file paths absolute, tables.users set.
 *  - The first error wins and is returned as one line of text naming the
 *    place ("tern.conf:12: ..." or "-o key=value: ...") and the key.
 *  - Strict: unknown sections and keys, a key given twice in one file, an
 *    over-long line and trailing junk after a number are all errors, since
 *    a silently ignored typo in a mail server's configuration is a relay
 *    or a lost message waiting to happen.
 *
 * Limits: a file of CONF_FILE_MAX bytes, a value of CONF_VALUE_MAX bytes,
 * a line as long as inih's buffer (200 bytes in Debian's build; list keys
 * continue on indented lines), CONF_DOMAINS_MAX domains.
 */
#include "conf/conf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr/addr.h"
#include "mailauth/inbound.h"
#include "milter/milter.h"
#include "queue/slowdown.h"
#include "screen/dnsbl.h"
#include "util/util.h"

#define CONF_FILE_MAX	      (1024 * 1024)
#define CONF_VALUE_MAX	      4096
#define CONF_DOMAINS_MAX      10000
#define CONF_MSG_MAX	      512
#define CONF_ACME_DOMAINS_MAX 50 /* ACME_DOMAINS_MAX (acme/acme.h) */

enum conf_type {
	CONF_T_NAME,	 /* a domain name (hostname) */
	CONF_T_DOMAINS,	 /* list of domain names */
	CONF_T_DIR,	 /* a path that must be set, made absolute */
	CONF_T_PATH,	 /* a path or unset, made absolute */
	CONF_T_STR,	 /* free text or unset */
	CONF_T_LISTEN,	 /* host:port, or "" / "off" */
	CONF_T_TABLE,	 /* sqlite:PATH or pgsql:CONNINFO */
	CONF_T_SIZE,	 /* uint64_t bytes, suffixes k m g */
	CONF_T_UINT,	 /* unsigned */
	CONF_T_SECS,	 /* unsigned seconds, suffixes s m h */
	CONF_T_NETWORKS, /* list of address[/prefix] */
	CONF_T_HOSTPORT, /* host[:port] or unset */
	CONF_T_LMTP,	 /* unix:/absolute/path, host[:port] or unset */
	CONF_T_SERVERS,	 /* list of ip[:port] */
	CONF_T_LEVEL,	 /* debug|info|warn|err */
	CONF_T_BOOL,	 /* yes|no|true|false|on|off|1|0 */
	CONF_T_SMHOST,	 /* [smtps:]host[:port] or unset */
	CONF_T_SMTLS,	 /* may|encrypt|verify */
	CONF_T_SENDERS,	 /* any|own */
	CONF_T_MILTERS,	 /* list of inet:host:port / unix:/path */
	CONF_T_MACTION,	 /* tempfail|accept */
	CONF_T_GSTORE,	 /* auto|sqlite */
	CONF_T_DNSBL,	 /* list of zone[=127.x.y.z][*weight] */
	CONF_T_DNSWL,	 /* list of zone[=127.x.y.z] */
	CONF_T_NAMES,	 /* list of domain names, kept as one string */
	CONF_T_DELIM,	 /* recipient delimiter characters, or unset */
	CONF_T_DESTCONC, /* list of domain:connections */
	CONF_T_LOGFMT,	 /* kv|json */
	CONF_T_LOGTGT,	 /* stderr|syslog|journald */
};

struct conf_key {
	const char *section; /* "" for top-level keys */
	const char *name;
	enum conf_type type;
	size_t off;	   /* of the field in struct conf */
	uint64_t min, max; /* numbers only */
};

/* one key a line reads better than the formatter's layout */
/* clang-format off */
#define K(s, n, t, f, lo, hi) { s, n, t, offsetof(struct conf, f), lo, hi }
static const struct conf_key conf_keys[] = {
	K("", "hostname", CONF_T_NAME, hostname, 0, 0),
	K("", "domains", CONF_T_DOMAINS, domains, 0, 0),
	K("", "state_dir", CONF_T_DIR, state_dir, 0, 0),
	K("", "user", CONF_T_STR, user, 0, 0),
	K("", "sandbox", CONF_T_BOOL, sandbox, 0, 0),
	K("", "sandbox_write", CONF_T_STR, sandbox_write, 0, 0),
	K("", "recipient_delimiter", CONF_T_DELIM, recipient_delimiter, 0, 0),
	K("listen", "smtp", CONF_T_LISTEN, listen_smtp, 0, 0),
	K("listen", "submission", CONF_T_LISTEN, listen_submission, 0, 0),
	K("listen", "submissions", CONF_T_LISTEN, listen_submissions, 0, 0),
	K("listen", "metrics", CONF_T_LISTEN, listen_metrics, 0, 0),
	K("tls", "cert", CONF_T_PATH, tls_cert, 0, 0),
	K("tls", "key", CONF_T_PATH, tls_key, 0, 0),
	K("tables", "users", CONF_T_TABLE, tables_users, 0, 0),
	K("limits", "message_size", CONF_T_SIZE, message_size, 1,
	    (uint64_t)1 << 40),
	K("limits", "inflight_memory", CONF_T_SIZE, inflight_memory, (uint64_t)1 << 20,
	    (uint64_t)1 << 40),
	K("limits", "inflight_scratch", CONF_T_SIZE, inflight_scratch, (uint64_t)1 << 20,
	    (uint64_t)1 << 50),
	K("limits", "recipients", CONF_T_UINT, recipients, 1, 100000),
	K("limits", "connections", CONF_T_UINT, connections, 1, 1000000),
	K("limits", "connections_per_ip", CONF_T_UINT, connections_per_ip, 1,
	    1000000),
	K("limits", "connections_per_uid", CONF_T_UINT, connections_per_uid, 1,
	    1000000),
	K("limits", "errors", CONF_T_UINT, errors, 1, 10000),
	K("limits", "hops", CONF_T_UINT, hops, 10, 10000),
	K("limits", "dsn_per_client", CONF_T_UINT, dsn_per_client, 0, 1000000),
	K("limits", "dsn_per_domain", CONF_T_UINT, dsn_per_domain, 0, 1000000),
	K("timeout", "command", CONF_T_SECS, timeout_command, 1, 86400),
	K("timeout", "line", CONF_T_SECS, timeout_line, 1, 86400),
	K("timeout", "data", CONF_T_SECS, timeout_data, 1, 86400),
	K("timeout", "shutdown", CONF_T_SECS, timeout_shutdown, 0, 86400),
	K("relay", "networks", CONF_T_NETWORKS, relay_networks, 0, 0),
	K("relay", "smarthost", CONF_T_SMHOST, relay_smarthost, 0, 0),
	K("relay", "port", CONF_T_UINT, relay_port, 1, 65535),
	K("relay", "smarthost_user", CONF_T_STR, relay_smarthost_user, 0, 0),
	K("relay", "smarthost_password_file", CONF_T_PATH, relay_smarthost_password_file, 0, 0),
	K("relay", "smarthost_tls", CONF_T_SMTLS, relay_smarthost_tls, 0, 0),
	K("relay", "smarthost_ca_file", CONF_T_PATH, relay_smarthost_ca_file, 0, 0),
	K("relay", "smarthost_require_tls", CONF_T_BOOL, relay_smarthost_require_tls, 0, 0),
	K("dns", "servers", CONF_T_SERVERS, dns_servers, 0, 0),
	K("dns", "cache_max_ttl", CONF_T_SECS, dns_cache_max_ttl, 0, 86400),
	K("dns", "cache_entries", CONF_T_UINT, dns_cache_entries, 1, 1000000),
	K("dns", "dnssec", CONF_T_BOOL, dns_dnssec, 0, 0),
	K("delivery", "lmtp", CONF_T_LMTP, delivery_lmtp, 0, 0),
	K("delivery", "concurrency_per_destination", CONF_T_UINT,
	    delivery_concurrency_per_destination, 1, SLOWDOWN_MAX_LIMIT),
	K("delivery", "destination_concurrency", CONF_T_DESTCONC,
	    delivery_destination_concurrency, 0, 0),
	K("log", "level", CONF_T_LEVEL, log_level, 0, 0),
	K("log", "format", CONF_T_LOGFMT, log_format, 0, 0),
	K("log", "target", CONF_T_LOGTGT, log_target, 0, 0),
	K("log", "socket", CONF_T_PATH, log_socket, 0, 0),
	K("queue", "retry_first", CONF_T_SECS, queue_retry_first, 1, 86400),
	K("queue", "retry_max", CONF_T_SECS, queue_retry_max, 1, 7 * 86400),
	K("queue", "lifetime", CONF_T_SECS, queue_lifetime, 0, 100 * 86400),
	K("queue", "delay_warning", CONF_T_SECS, queue_delay_warning, 0, 100 * 86400),
	K("queue", "log", CONF_T_BOOL, queue_log, 0, 0),
	K("auth", "plaintext_loopback", CONF_T_BOOL, auth_plaintext_loopback, 0, 0),
	K("submission", "any_sender", CONF_T_BOOL, submission_any_sender, 0, 0),
	K("submission", "local_senders", CONF_T_SENDERS, submission_local_senders, 0, 0),
	K("spf", "check", CONF_T_BOOL, spf_check, 0, 0),
	K("spf", "reject_fail", CONF_T_BOOL, spf_reject_fail, 0, 0),
	K("dmarc", "reports", CONF_T_BOOL, dmarc_reports, 0, 0),
	K("dmarc", "report_interval", CONF_T_SECS, dmarc_report_interval, 60, 31 * 86400),
	K("dmarc", "report_from", CONF_T_STR, dmarc_report_from, 0, 0),
	K("dmarc", "report_org", CONF_T_STR, dmarc_report_org, 0, 0),
	K("dmarc", "report_max_rows", CONF_T_UINT, dmarc_report_max_rows, 1, 10000000),
	K("srs", "enable", CONF_T_BOOL, srs_enable, 0, 0),
	K("srs", "domain", CONF_T_NAME, srs_domain, 0, 0),
	K("srs", "max_age", CONF_T_UINT, srs_max_age, 1, 1000),
	K("dkim", "verify", CONF_T_BOOL, dkim_verify, 0, 0),
	K("dmarc", "check", CONF_T_BOOL, dmarc_check, 0, 0),
	K("dmarc", "enforce", CONF_T_BOOL, dmarc_enforce, 0, 0),
	K("dmarc", "override", CONF_T_STR, dmarc_override, 0, 0),
	K("dmarc", "public_suffix_list", CONF_T_PATH, dmarc_public_suffix_list, 0, 0),
	K("dkim", "sign", CONF_T_BOOL, dkim_sign, 0, 0),
	K("dkim", "expire", CONF_T_SECS, dkim_expire, 0, 366 * 86400),
	K("arc", "verify", CONF_T_BOOL, arc_verify, 0, 0),
	K("arc", "seal", CONF_T_BOOL, arc_seal, 0, 0),
	K("milter", "servers", CONF_T_MILTERS, milter_servers, 0, 0),
	K("milter", "default_action", CONF_T_MACTION, milter_default_action, 0, 0),
	K("milter", "connect_timeout", CONF_T_SECS, milter_connect_timeout, 1, 3600),
	K("milter", "command_timeout", CONF_T_SECS, milter_command_timeout, 1, 3600),
	K("milter", "eom_timeout", CONF_T_SECS, milter_eom_timeout, 1, 3600),
	K("screen", "greet_pause", CONF_T_SECS, screen_greet_pause, 0, 60),
	K("screen", "dnsbl", CONF_T_DNSBL, screen_dnsbl, 0, 0),
	K("screen", "dnswl", CONF_T_DNSWL, screen_dnswl, 0, 0),
	K("screen", "threshold", CONF_T_UINT, screen_threshold, 1, 1000),
	K("screen", "cache_ttl", CONF_T_SECS, screen_cache_ttl, 0, 7 * 86400),
	K("screen", "cache_entries", CONF_T_UINT, screen_cache_entries, 1, 10000000),
	K("screen", "dns_timeout", CONF_T_SECS, screen_dns_timeout, 1, 60),
	K("greylist", "enable", CONF_T_BOOL, greylist_enable, 0, 0),
	K("greylist", "delay", CONF_T_SECS, greylist_delay, 1, 86400),
	K("greylist", "expire", CONF_T_SECS, greylist_expire, 3600, 366 * 86400),
	K("greylist", "whitelist_domains", CONF_T_NAMES, greylist_whitelist_domains, 0, 0),
	K("greylist", "store", CONF_T_GSTORE, greylist_store, 0, 0),
	K("rate", "connections_per_ip", CONF_T_UINT, rate_connections_per_ip, 0, 1000000),
	K("rate", "messages_per_ip", CONF_T_UINT, rate_messages_per_ip, 0, 10000000),
	K("rate", "recipients_per_ip", CONF_T_UINT, rate_recipients_per_ip, 0, 10000000),
	K("rate", "messages_per_user_hour", CONF_T_UINT, rate_messages_per_user_hour, 0, 10000000),
	K("rate", "messages_per_user_day", CONF_T_UINT, rate_messages_per_user_day, 0, 10000000),
	K("rate", "recipients_per_user_hour", CONF_T_UINT, rate_recipients_per_user_hour, 0, 10000000),
	K("rate", "recipients_per_user_day", CONF_T_UINT, rate_recipients_per_user_day, 0, 10000000),
	K("rate", "unknown_recipients", CONF_T_UINT, rate_unknown_recipients, 0, 100000),
	K("rate", "penalty", CONF_T_SECS, rate_penalty, 0, 7 * 86400),
	K("rate", "exempt_networks", CONF_T_NETWORKS, rate_exempt_networks, 0, 0),
	K("policy", "servers", CONF_T_MILTERS, policy_servers, 0, 0),
	K("policy", "default_action", CONF_T_MACTION, policy_default_action, 0, 0),
	K("policy", "timeout", CONF_T_SECS, policy_timeout, 1, 3600),
	K("policy", "idle_timeout", CONF_T_SECS, policy_idle_timeout, 1, 86400),
	K("policy", "skip_authenticated", CONF_T_BOOL, policy_skip_authenticated, 0, 0),
	K("metrics", "allow_remote", CONF_T_BOOL, metrics_allow_remote, 0, 0),
	/* MTA-STS and the trust store (docs/tls-auth.md) */
	K("tls", "ca_file", CONF_T_PATH, tls_ca_file, 0, 0),
	K("tls", "ca_path", CONF_T_PATH, tls_ca_path, 0, 0),
	K("sts", "enable", CONF_T_BOOL, sts_enable, 0, 0),
	K("sts", "cache_entries", CONF_T_UINT, sts_cache_entries, 1, 1000000),
	K("sts", "fetch_timeout", CONF_T_SECS, sts_fetch_timeout, 1, 300),
	/* TLS-RPT (RFC 8460): server/tlsrptd.h, docs/tls-auth.md */
	K("tlsrpt", "reports", CONF_T_BOOL, tlsrpt_reports, 0, 0),
	K("tlsrpt", "report_interval", CONF_T_SECS, tlsrpt_report_interval, 60, 31 * 86400),
	K("tlsrpt", "report_from", CONF_T_STR, tlsrpt_report_from, 0, 0),
	K("tlsrpt", "report_org", CONF_T_STR, tlsrpt_report_org, 0, 0),
	K("tlsrpt", "max_domains", CONF_T_UINT, tlsrpt_max_domains, 1, 1000000),
	/* ACME (RFC 8555): server/acmed.h, docs/tls-auth.md */
	K("acme", "directory", CONF_T_STR, acme_directory, 0, 0),
	K("acme", "email", CONF_T_STR, acme_email, 0, 0),
	K("acme", "domains", CONF_T_NAMES, acme_domains, 0, 0),
	K("acme", "http", CONF_T_LISTEN, acme_http, 0, 0),
	K("acme", "webroot", CONF_T_PATH, acme_webroot, 0, 0),
	K("acme", "renew_before", CONF_T_SECS, acme_renew_before, 86400, 365 * 86400),
	K("acme", "retry_first", CONF_T_SECS, acme_retry_first, 1, 86400),
};
#undef K
#define CONF_NKEYS (sizeof(conf_keys) / sizeof(conf_keys[0]))

static const char *const conf_sections[] = {
	"listen", "tls", "tables", "limits", "timeout", "relay", "dns", "log",
	"auth", "submission", "queue", "delivery", "spf", "dkim", "dmarc",
	"srs", "arc", "milter", "screen", "greylist", "rate", "policy",
	"metrics", "tls_policy", "sts", "tlsrpt", "acme",
};
/* clang-format on */

/* Where a value comes from, for error texts and list continuation. */
struct conf_ctx {
	struct conf *c;
	const char *path;
	int lineno;	       /* of the line inih is handling */
	bool indented;	       /* that line began with white space */
	bool seen[CONF_NKEYS]; /* keys set by this file */
	bool users_set;	       /* tables.users given explicitly */
	int err_line;	       /* first error, 0 = none */
	char err[CONF_MSG_MAX];
	/* conf_check: every file error, not only the first (NULL: off) */
	void (*report)(void *rctx, const char *msg);
	void *rctx;
};

/* The bytes of the file and the reader's position, for ini_parse_stream. */
struct conf_reader {
	const char *p;
	size_t len, pos;
	struct conf_ctx *ctx;
};

static void *
conf_field(struct conf *c, const struct conf_key *k)
{
	return (char *)c + k->off;
}

static const void *
conf_cfield(const struct conf *c, const struct conf_key *k)
{
	return (const char *)c + k->off;
}

static void
conf_keyname(const struct conf_key *k, char *out, size_t outlen)
{
	int r;

	/* a key's name is a value: a cut one would name another key */
	if (k->section[0] == '\0')
		r = str_fmt(out, outlen, "%s", k->name);
	else
		r = str_fmt(out, outlen, "%s.%s", k->section, k->name);
	if (r != 0)
		panic("event=conf_keyname key=%s outlen=%zu", k->name, outlen);
}

static const struct conf_key *
conf_find_key(const char *section, const char *name)
{
	size_t i;

	for (i = 0; i < CONF_NKEYS; i++)
		if (strcasecmp(conf_keys[i].section, section) == 0 &&
		    strcasecmp(conf_keys[i].name, name) == 0)
			return &conf_keys[i];
	return NULL;
}

static bool
conf_known_section(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < sizeof(conf_sections) / sizeof(conf_sections[0]); i++)
		if (strlen(conf_sections[i]) == n &&
		    strncasecmp(conf_sections[i], s, n) == 0)
			return true;
	return false;
}

/* ---- paths ------------------------------------------------------------- */

/*
 * Absolute form of p against the cwd, with "." and empty components
 * dropped.  ".." is kept: resolving it lexically would be wrong across a
 * symlink, and the kernel resolves it correctly anyway.
 */
static char *
conf_abs_path(const char *p, char *msg, size_t msglen)
{
	char cwd[PATH_MAX];
	struct buf b;
	const char *s;

	buf_init(&b, PATH_MAX);
	if (p[0] != '/') {
		if (getcwd(cwd, sizeof(cwd)) == NULL) {
			str_fmt_cut(msg, msglen,
			    "cannot get the current "
			    "directory: %s",
			    strerror(errno));
			return NULL;
		}
		/* "/" adds nothing: every component below brings its '/' */
		if (strcmp(cwd, "/") != 0 && buf_append_str(&b, cwd) != 0)
			p = NULL;
	}
	for (s = p; s != NULL && *s != '\0';) {
		size_t n = strcspn(s, "/");
		bool dot = n == 0 || (n == 1 && s[0] == '.');

		if (!dot &&
		    (buf_append(&b, "/", 1) != 0 || buf_append(&b, s, n) != 0))
			s = NULL;
		else
			s += n + (s[n] == '/');
	}
	if (s == NULL) {
		buf_free(&b);
		str_fmt_cut(msg, msglen, "path too long");
		return NULL;
	}
	if (b.len == 0 && buf_append(&b, "/", 1) != 0)
		panic("event=conf_abs_path");
	return b.data;
}

/* ---- value checkers ---------------------------------------------------- */

/* A number with an optional one-letter unit from units (factor each). */
static int
conf_number(const char *v, const char *units, const uint64_t *factors,
    uint64_t *out, char *msg, size_t msglen)
{
	size_t n = strlen(v);
	uint64_t f = 1, x;
	const char *u;

	if (n > 1 && units != NULL && (u = strchr(units, v[n - 1])) != NULL) {
		f = factors[u - units];
		n--;
	}
	if (str_to_u64(v, n, &x) != 0) {
		str_fmt_cut(msg, msglen, "not a number");
		return -1;
	}
	if (x > UINT64_MAX / f) {
		str_fmt_cut(msg, msglen, "number too large");
		return -1;
	}
	*out = x * f;
	return 0;
}

static int
conf_range(uint64_t x, const struct conf_key *k, char *msg, size_t msglen)
{
	if (x >= k->min && x <= k->max)
		return 0;
	str_fmt_cut(msg, msglen, "out of range (%llu..%llu)",
	    (unsigned long long)k->min, (unsigned long long)k->max);
	return -1;
}

static bool
conf_is_ip(int af, const char *s, size_t n)
{
	char tmp[INET6_ADDRSTRLEN + 1];
	unsigned char bin[16];

	if (str_copy(tmp, sizeof(tmp), s, n) != 0)
		return false;
	return inet_pton(af, tmp, bin) == 1;
}

static bool
conf_is_domain_name(const char *s, size_t n)
{
	char out[ADDR_DOMAIN_MAX + 1];
	enum addr_domain_kind kind;

	return addr_parse_domain(s, n, 0, out, sizeof(out), &kind) == ADDR_OK &&
	       kind == ADDR_DOMAIN_NAME;
}

static int
conf_port(const char *s, unsigned *port_out)
{
	uint64_t x;

	if (str_to_u64(s, strlen(s), &x) != 0 || x == 0 || x > 65535)
		return -1;
	*port_out = (unsigned)x;
	return 0;
}

int
conf_split_hostport(const char *s, char *host_out, size_t hostlen,
    unsigned *port_out, bool port_required)
{
	const char *end, *colon;
	size_t hn;

	*port_out = 0;
	if (s[0] == '[') {
		if ((end = strchr(s, ']')) == NULL ||
		    !conf_is_ip(AF_INET6, s + 1, (size_t)(end - s - 1)))
			return -1;
		if (str_copy(host_out, hostlen, s + 1, (size_t)(end - s - 1)) !=
		    0)
			return -1;
		if (end[1] == '\0')
			return port_required ? -1 : 0;
		return end[1] == ':' ? conf_port(end + 2, port_out) : -1;
	}
	colon = strchr(s, ':');
	if (colon != NULL && strchr(colon + 1, ':') != NULL) {
		/* a bare IPv6 address: allowed only without a port */
		if (port_required || !conf_is_ip(AF_INET6, s, strlen(s)))
			return -1;
		return str_copy(host_out, hostlen, s, strlen(s));
	}
	hn = colon != NULL ? (size_t)(colon - s) : strlen(s);
	if (hn == 0 ||
	    (!conf_is_ip(AF_INET, s, hn) && !conf_is_domain_name(s, hn)) ||
	    str_copy(host_out, hostlen, s, hn) != 0)
		return -1;
	if (colon == NULL)
		return port_required ? -1 : 0;
	return conf_port(colon + 1, port_out);
}

/* "address[/prefix]" of relay.networks */
static bool
conf_is_network(const char *s, size_t n)
{
	const char *slash = memchr(s, '/', n);
	size_t an = slash != NULL ? (size_t)(slash - s) : n;
	int af = memchr(s, ':', an) != NULL ? AF_INET6 : AF_INET;
	uint64_t bits;

	if (!conf_is_ip(af, s, an))
		return false;
	if (slash == NULL)
		return true;
	if (str_to_u64(slash + 1, n - an - 1, &bits) != 0)
		return false;
	return bits <= (af == AF_INET ? 32u : 128u);
}

static bool
conf_is_server(const char *s, size_t n)
{
	char tmp[INET6_ADDRSTRLEN + 16], host[INET6_ADDRSTRLEN + 1];
	unsigned port;

	if (str_copy(tmp, sizeof(tmp), s, n) != 0 ||
	    conf_split_hostport(tmp, host, sizeof(host), &port, false) != 0)
		return false;
	return conf_is_ip(AF_INET, host, strlen(host)) ||
	       conf_is_ip(AF_INET6, host, strlen(host));
}

/* ---- lists ------------------------------------------------------------- */

/* Next item of a comma or white-space separated list; false at the end. */
static bool
conf_list_next(const char **pp, const char **item, size_t *n)
{
	const char *p = *pp + strspn(*pp, ", \t");

	if (*p == '\0')
		return false;
	*item = p;
	*n = strcspn(p, ", \t");
	*pp = p + *n;
	return true;
}

static bool
conf_has_domain(const struct conf *c, const char *d)
{
	size_t i;

	for (i = 0; i < c->ndomains; i++)
		if (strcmp(c->domains[i], d) == 0)
			return true;
	return false;
}

static void
conf_free_domains(struct conf *c)
{
	size_t i;

	for (i = 0; i < c->ndomains; i++)
		free(c->domains[i]);
	free(c->domains);
	c->domains = NULL;
	c->ndomains = 0;
}

static int
conf_add_domain(
    struct conf *c, const char *s, size_t n, char *msg, size_t msglen)
{
	char d[ADDR_DOMAIN_MAX + 1];
	enum addr_domain_kind kind;
	enum addr_status st;

	st = addr_parse_domain(s, n, 0, d, sizeof(d), &kind);
	if (st == ADDR_OK && kind != ADDR_DOMAIN_NAME) {
		str_fmt_cut(msg, msglen,
		    "\"%.*s\": address literals cannot "
		    "be local domains",
		    (int)n, s);
		return -1;
	}
	if (st != ADDR_OK) {
		str_fmt_cut(msg, msglen, "bad domain \"%.*s\": %s",
		    (int)(n > 64 ? 64 : n), s, addr_strerror(st));
		return -1;
	}
	str_lower(d);
	if (conf_has_domain(c, d))
		return 0;
	if (c->ndomains >= CONF_DOMAINS_MAX) {
		str_fmt_cut(
		    msg, msglen, "more than %d domains", CONF_DOMAINS_MAX);
		return -1;
	}
	c->domains = realloc(c->domains, (c->ndomains + 1) * sizeof(char *));
	if (c->domains == NULL)
		panic("event=oom where=conf_add_domain");
	c->domains[c->ndomains++] = xstrdup(d);
	return 0;
}

static int
conf_set_domains(
    struct conf *c, const char *v, bool append, char *msg, size_t msglen)
{
	const char *item;
	size_t n;

	if (!append)
		conf_free_domains(c);
	while (conf_list_next(&v, &item, &n))
		if (conf_add_domain(c, item, n, msg, msglen) != 0)
			return -1;
	return 0;
}

/*
 * A list kept as one string, items joined with ',' (the form c-ares'
 * ares_set_servers_ports_csv() takes).  Each item is checked by ok().
 */
static int
conf_set_list(char **field, const char *v, bool append,
    bool (*ok)(const char *, size_t), const char *what, char *msg,
    size_t msglen)
{
	struct buf b;
	const char *item;
	size_t n;
	int r = 0;

	buf_init(&b, CONF_VALUE_MAX * 4);
	if (append && *field != NULL)
		r |= buf_append_str(&b, *field);
	while (r == 0 && conf_list_next(&v, &item, &n)) {
		if (!ok(item, n)) {
			str_fmt_cut(msg, msglen, "\"%.*s\" is not %s",
			    (int)(n > 64 ? 64 : n), item, what);
			buf_free(&b);
			return -1;
		}
		if (b.len > 0)
			r |= buf_append(&b, ",", 1);
		r |= buf_append(&b, item, n);
	}
	if (r != 0) {
		str_fmt_cut(msg, msglen, "list too long");
		buf_free(&b);
		return -1;
	}
	free(*field);
	*field = b.data; /* NULL when the list is empty: unset */
	return 0;
}

/* ---- setting one key --------------------------------------------------- */

static void
conf_put_str(char **field, const char *v)
{
	free(*field);
	*field = v != NULL ? xstrdup(v) : NULL;
}

static int
conf_set_name(char **field, const char *v, char *msg, size_t msglen)
{
	char *d;

	if (!conf_is_domain_name(v, strlen(v))) {
		str_fmt_cut(msg, msglen, "\"%s\" is not a domain name", v);
		return -1;
	}
	d = xstrdup(v);
	str_lower(d);
	free(*field);
	*field = d;
	return 0;
}

static int
conf_set_path(
    char **field, const char *v, bool required, char *msg, size_t msglen)
{
	char *p;

	if (v[0] == '\0') {
		if (required) {
			str_fmt_cut(msg, msglen, "a path is needed");
			return -1;
		}
		conf_put_str(field, NULL);
		return 0;
	}
	if ((p = conf_abs_path(v, msg, msglen)) == NULL)
		return -1;
	free(*field);
	*field = p;
	return 0;
}

static int
conf_set_listen(
    char **field, const char *v, bool port_optional, char *msg, size_t msglen)
{
	char host[ADDR_DOMAIN_MAX + 1];
	unsigned port;

	if (v[0] == '\0' || strcasecmp(v, "off") == 0) {
		conf_put_str(field, NULL);
		return 0;
	}
	if (conf_split_hostport(v, host, sizeof(host), &port, !port_optional) !=
	    0) {
		str_fmt_cut(msg, msglen,
		    port_optional
			? "expected host, host:port or [ipv6]:port"
			: "expected host:port or [ipv6]:port, or off");
		return -1;
	}
	conf_put_str(field, v);
	return 0;
}

/* relay.smarthost: what conf_set_listen takes, maybe after "smtps:". */
static int
conf_set_smarthost(char **field, const char *v, char *msg, size_t msglen)
{
	char host[ADDR_DOMAIN_MAX + 1];
	unsigned port;
	const char *hp = v;

	if (strncasecmp(v, "smtps:", 6) == 0)
		hp = v + 6;
	else if (v[0] == '\0' || strcasecmp(v, "off") == 0)
		return conf_set_listen(field, v, true, msg, msglen);
	if (conf_split_hostport(hp, host, sizeof(host), &port, false) != 0) {
		str_fmt_cut(msg, msglen,
		    "expected host, host:port or "
		    "[ipv6]:port, maybe after smtps:");
		return -1;
	}
	conf_put_str(field, v);
	return 0;
}

static const char *const conf_smtls_names[] = {
    [CONF_SMTLS_UNSET] = "",
    [CONF_SMTLS_MAY] = "may",
    [CONF_SMTLS_ENCRYPT] = "encrypt",
    [CONF_SMTLS_VERIFY] = "verify",
};

const char *
conf_smarthost_tls_name(enum conf_smarthost_tls t)
{
	if ((size_t)t >= sizeof(conf_smtls_names) / sizeof(conf_smtls_names[0]))
		return "";
	return conf_smtls_names[t];
}

static int
conf_set_smtls(
    enum conf_smarthost_tls *f, const char *v, char *msg, size_t msglen)
{
	size_t i;

	if (v[0] == '\0') { /* back to the default */
		*f = CONF_SMTLS_UNSET;
		return 0;
	}
	for (i = CONF_SMTLS_MAY; i <= CONF_SMTLS_VERIFY; i++)
		if (strcasecmp(v, conf_smtls_names[i]) == 0) {
			*f = (enum conf_smarthost_tls)i;
			return 0;
		}
	str_fmt_cut(msg, msglen, "expected verify, encrypt or may");
	return -1;
}

/* delivery.lmtp: a unix socket (absolute path, fits sun_path) or a host. */
static int
conf_set_lmtp(char **field, const char *v, char *msg, size_t msglen)
{
	if (strncmp(v, "unix:", 5) != 0)
		return conf_set_listen(field, v, true, msg, msglen);
	if (v[5] != '/' || strlen(v + 5) > 107) {
		str_fmt_cut(msg, msglen,
		    "expected unix:/absolute/path (at most "
		    "107 octets), host, host:port or [ipv6]:port");
		return -1;
	}
	conf_put_str(field, v);
	return 0;
}

static int
conf_set_table(struct conf_ctx *x, const char *v, char *msg, size_t msglen)
{
	char *p;
	size_t n;

	x->users_set = true;
	if (strncmp(v, "pgsql:", 6) == 0) {
		conf_put_str(&x->c->tables_users, v);
		return 0;
	}
	if (strncmp(v, "sqlite:", 7) != 0 || v[7] == '\0') {
		str_fmt_cut(
		    msg, msglen, "expected sqlite:PATH or pgsql:CONNINFO");
		return -1;
	}
	if ((p = conf_abs_path(v + 7, msg, msglen)) == NULL)
		return -1;
	n = strlen(p) + 8;
	free(x->c->tables_users);
	x->c->tables_users = xmalloc(n);
	if (str_fmt(x->c->tables_users, n, "sqlite:%s", p) != 0)
		panic("event=conf_users_spec len=%zu", n); /* n counts it all */
	free(p);
	return 0;
}

static int
conf_set_level(char **field, const char *v, char *msg, size_t msglen)
{
	static const char *const names[][2] = {
	    {"debug", "debug"},
	    {"info", "info"},
	    {"warn", "warn"},
	    {"warning", "warn"},
	    {"err", "err"},
	    {"error", "err"},
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(v, names[i][0]) == 0) {
			conf_put_str(field, names[i][1]);
			return 0;
		}
	str_fmt_cut(msg, msglen, "expected debug, info, warn or err");
	return -1;
}

static int
conf_set_senders(char **field, const char *v, char *msg, size_t msglen)
{
	if (strcasecmp(v, "any") == 0 || strcasecmp(v, "own") == 0) {
		conf_put_str(field, strcasecmp(v, "any") == 0 ? "any" : "own");
		return 0;
	}
	str_fmt_cut(msg, msglen, "expected any or own");
	return -1;
}

static int
conf_set_milteract(char **field, const char *v, char *msg, size_t msglen)
{
	if (strcasecmp(v, "tempfail") == 0 || strcasecmp(v, "accept") == 0) {
		conf_put_str(field,
		    strcasecmp(v, "accept") == 0 ? "accept" : "tempfail");
		return 0;
	}
	str_fmt_cut(msg, msglen, "expected tempfail or accept");
	return -1;
}

/* One of names (NULL-terminated), stored lower-case. */
static int
conf_set_choice(char **field, const char *v, const char *const *names,
    const char *expected, char *msg, size_t msglen)
{
	for (; *names != NULL; names++)
		if (strcasecmp(v, *names) == 0) {
			conf_put_str(field, *names);
			return 0;
		}
	str_fmt_cut(msg, msglen, "expected %s", expected);
	return -1;
}

static int
conf_set_gstore(char **field, const char *v, char *msg, size_t msglen)
{
	if (strcasecmp(v, "auto") == 0 || strcasecmp(v, "sqlite") == 0) {
		conf_put_str(
		    field, strcasecmp(v, "auto") == 0 ? "auto" : "sqlite");
		return 0;
	}
	str_fmt_cut(msg, msglen, "expected auto or sqlite");
	return -1;
}

static bool
conf_is_milter(const char *s, size_t n)
{
	struct milter_spec spec;
	size_t hl;

	if (milter_parse_spec(s, n, &spec) != 0)
		return false;
	/* an address, never a name: ternd resolves nothing on the loop
	 * for a milter (localhost is 127.0.0.1) */
	hl = strlen(spec.host);
	return spec.unix_path || strcmp(spec.host, "localhost") == 0 ||
	       conf_is_ip(AF_INET, spec.host, hl) ||
	       conf_is_ip(AF_INET6, spec.host, hl);
}

static bool
conf_is_dnsbl(const char *s, size_t n)
{
	struct dnsbl_site site;

	return dnsbl_parse_item(s, n, true, &site) == 0;
}

static bool
conf_is_dnswl(const char *s, size_t n)
{
	struct dnsbl_site site;

	return dnsbl_parse_item(s, n, false, &site) == 0;
}

/* delivery.destination_concurrency: "domain:N" */
static bool
conf_is_destconc(const char *s, size_t n)
{
	size_t dl;
	unsigned max;

	return slowdown_conf_item(s, n, &dl, &max) == 0 &&
	       conf_is_domain_name(s, dl);
}

static int
conf_set_num(struct conf *c, const struct conf_key *k, const char *v, char *msg,
    size_t msglen)
{
	static const uint64_t size_f[] = {
	    1024, 1024, 1 << 20, 1 << 20, 1 << 30, 1 << 30};
	static const uint64_t secs_f[] = {1, 60, 3600};
	uint64_t x;
	int r;

	if (k->type == CONF_T_SIZE)
		r = conf_number(v, "kKmMgG", size_f, &x, msg, msglen);
	else if (k->type == CONF_T_SECS)
		r = conf_number(v, "smh", secs_f, &x, msg, msglen);
	else
		r = conf_number(v, NULL, NULL, &x, msg, msglen);
	if (r != 0 || conf_range(x, k, msg, msglen) != 0)
		return -1;
	if (k->type == CONF_T_SIZE)
		*(uint64_t *)conf_field(c, k) = x;
	else
		*(unsigned *)conf_field(c, k) = (unsigned)x;
	return 0;
}

/*
 * recipient_delimiter: 1 to CONF_DELIM_MAX characters, each a delimiter
 * of its own (Postfix); printable ASCII that can stand in an unquoted
 * local part, neither a letter, a digit nor '.' (a local part's dots and
 * names must stay what they are).  Empty: unset.
 */
static int
conf_set_delim(char **field, const char *v, char *msg, size_t msglen)
{
	size_t i, n = strlen(v);

	if (n > CONF_DELIM_MAX) {
		str_fmt_cut(
		    msg, msglen, "at most %d characters", CONF_DELIM_MAX);
		return -1;
	}
	for (i = 0; i < n; i++)
		if (strchr("!#$%&'*+-/=?^_`{|}~", v[i]) == NULL) {
			str_fmt_cut(msg, msglen,
			    "\"%c\" cannot be a delimiter (one of "
			    "!#$%%&'*+-/=?^_`{|}~)",
			    (unsigned char)v[i] >= 0x20 &&
				    (unsigned char)v[i] < 0x7f
				? v[i]
				: '?');
			return -1;
		}
	conf_put_str(field, n > 0 ? v : NULL);
	return 0;
}

static bool
conf_is_list(enum conf_type t)
{
	return t == CONF_T_DOMAINS || t == CONF_T_NETWORKS ||
	       t == CONF_T_SERVERS || t == CONF_T_NAMES || t == CONF_T_DESTCONC;
}

static int
conf_set_bool(bool *f, const char *v, char *msg, size_t msglen)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};
	size_t i;

	for (i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0 || strcasecmp(v, no[i]) == 0) {
			*f = strcasecmp(v, yes[i]) == 0;
			return 0;
		}
	}
	str_fmt_cut(msg, msglen, "not yes or no: \"%s\"", v);
	return -1;
}

/* Fields of these types are malloc'ed strings in struct conf. */
static bool
conf_type_is_string(enum conf_type t)
{
	return t != CONF_T_DOMAINS && t != CONF_T_SIZE && t != CONF_T_UINT &&
	       t != CONF_T_SECS && t != CONF_T_BOOL && t != CONF_T_SMTLS;
}

/*
 * Set key k to v.  append: v continues the previous line of a list
 * (an indented line in the file).  The message in msg names no key; the
 * caller adds the place.
 */
static int
conf_set(struct conf_ctx *x, const struct conf_key *k, const char *v,
    bool append, char *msg, size_t msglen)
{
	char **f = conf_field(x->c, k);

	if (strlen(v) > CONF_VALUE_MAX) {
		str_fmt_cut(
		    msg, msglen, "value longer than %d bytes", CONF_VALUE_MAX);
		return -1;
	}
	switch (k->type) {
	case CONF_T_NAME:
		return conf_set_name(f, v, msg, msglen);
	case CONF_T_DOMAINS:
		return conf_set_domains(x->c, v, append, msg, msglen);
	case CONF_T_DIR:
	case CONF_T_PATH:
		return conf_set_path(f, v, k->type == CONF_T_DIR, msg, msglen);
	case CONF_T_STR:
		conf_put_str(f, v[0] != '\0' ? v : NULL);
		return 0;
	case CONF_T_LMTP:
		return conf_set_lmtp(f, v, msg, msglen);
	case CONF_T_LISTEN:
	case CONF_T_HOSTPORT:
		return conf_set_listen(
		    f, v, k->type == CONF_T_HOSTPORT, msg, msglen);
	case CONF_T_TABLE:
		return conf_set_table(x, v, msg, msglen);
	case CONF_T_SIZE:
	case CONF_T_UINT:
	case CONF_T_SECS:
		return conf_set_num(x->c, k, v, msg, msglen);
	case CONF_T_NETWORKS:
		return conf_set_list(f, v, append, conf_is_network,
		    "an address or address/prefix", msg, msglen);
	case CONF_T_SERVERS:
		return conf_set_list(f, v, append, conf_is_server,
		    "ip, ip:port or [ipv6]:port", msg, msglen);
	case CONF_T_LEVEL:
		return conf_set_level(f, v, msg, msglen);
	case CONF_T_BOOL:
		return conf_set_bool((bool *)(void *)f, v, msg, msglen);
	case CONF_T_SMHOST:
		return conf_set_smarthost(f, v, msg, msglen);
	case CONF_T_SMTLS:
		return conf_set_smtls(
		    (enum conf_smarthost_tls *)(void *)f, v, msg, msglen);
	case CONF_T_SENDERS:
		return conf_set_senders(f, v, msg, msglen);
	case CONF_T_MILTERS:
		return conf_set_list(f, v, append, conf_is_milter,
		    "inet:address:port or unix:/path", msg, msglen);
	case CONF_T_MACTION:
		return conf_set_milteract(f, v, msg, msglen);
	case CONF_T_GSTORE:
		return conf_set_gstore(f, v, msg, msglen);
	case CONF_T_LOGFMT: {
		static const char *const fmts[] = {"kv", "json", NULL};

		return conf_set_choice(f, v, fmts, "kv or json", msg, msglen);
	}
	case CONF_T_LOGTGT: {
		static const char *const tgts[] = {
		    "stderr", "syslog", "journald", NULL};

		return conf_set_choice(
		    f, v, tgts, "stderr, syslog or journald", msg, msglen);
	}
	case CONF_T_DNSBL:
		return conf_set_list(f, v, append, conf_is_dnsbl,
		    "zone[=127.x.y.z][*weight 1..100]", msg, msglen);
	case CONF_T_DNSWL:
		return conf_set_list(f, v, append, conf_is_dnswl,
		    "zone[=127.x.y.z]", msg, msglen);
	case CONF_T_DELIM:
		return conf_set_delim(f, v, msg, msglen);
	case CONF_T_NAMES:
		return conf_set_list(f, v, append, conf_is_domain_name,
		    "a domain name", msg, msglen);
	case CONF_T_DESTCONC:
		return conf_set_list(f, v, append, conf_is_destconc,
		    "domain:connections (1..1000)", msg, msglen);
	}
	panic("event=conf_set type=%d", (int)k->type);
}

/*
 * Debian's inih leaves an inline "; comment" on continuation lines; cut
 * it as it does on first lines (';' after white space).
 */
static const char *
conf_cut_comment(const char *v, char *tmp, size_t tmplen)
{
	const char *p;

	for (p = v; *p != '\0'; p++)
		if (*p == ';' && p > v && (p[-1] == ' ' || p[-1] == '\t'))
			break;
	if (*p == '\0' || str_copy(tmp, tmplen, v, (size_t)(p - v)) != 0)
		return v;
	return tmp;
}

/* "value" -> value, so an empty value can be written "". */
static const char *
conf_unquote(const char *v, char *tmp, size_t tmplen)
{
	size_t n = strlen(v);

	if (n < 2 || v[0] != '"' || v[n - 1] != '"')
		return v;
	if (str_copy(tmp, tmplen, v + 1, n - 2) != 0)
		return v;
	return tmp;
}

/* ---- the file ---------------------------------------------------------- */

static void conf_file_error(struct conf_ctx *x, const char *fmt, ...)
    PRINTF_LIKE(2, 3);

static void
conf_file_error(struct conf_ctx *x, const char *fmt, ...)
{
	char msg[CONF_MSG_MAX], line[CONF_MSG_MAX + 64];
	va_list ap;

	if (x->err_line != 0 && x->report == NULL)
		return;
	va_start(ap, fmt);
	str_vfmt_cut(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (x->report != NULL) {
		str_fmt_cut(
		    line, sizeof(line), "%s:%d: %s", x->path, x->lineno, msg);
		x->report(x->rctx, line);
	}
	if (x->err_line != 0)
		return;
	x->err_line = x->lineno;
	str_fmt_cut(
	    x->err, sizeof(x->err), "%s:%d: %s", x->path, x->lineno, msg);
}

/* ---- [tls_policy]: per-destination TLS (deliver/tlspolicy.h) ---------- */

/*
 * "domain = level" (".domain": its subdomains) appended to c->tls_policy
 * as "domain:level,...", the form deliver/tlspolicy.c parses; the names
 * are Postfix's smtp_tls_policy_maps levels.  0, or -1 with msg.
 */
static int
conf_tls_policy_set(
    struct conf *c, const char *name, const char *value, char *msg, size_t len)
{
	static const char *const levels[] = {
	    "none", "may", "encrypt", "verify", "dane", "dane-only"};
	char dom[ADDR_DOMAIN_MAX + 1], ent[ADDR_DOMAIN_MAX + 16];
	enum addr_domain_kind kind;
	const char *d = name + (name[0] == '.'), *lvl = NULL;
	struct buf b;

	if (addr_parse_domain(d, strlen(d), 0, dom, sizeof(dom), &kind) !=
		ADDR_OK ||
	    kind != ADDR_DOMAIN_NAME) {
		str_fmt_cut(msg, len,
		    "\"%s\" is not a domain (or .domain for its subdomains)",
		    name);
		return -1;
	}
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (strcasecmp(value, levels[i]) == 0)
			lvl = levels[i];
	if (lvl == NULL) {
		str_fmt_cut(msg, len,
		    "expected none, may, encrypt, verify, dane or dane-only");
		return -1;
	}
	str_lower(dom);
	if (str_fmt(
		ent, sizeof(ent), "%s%s:", name[0] == '.' ? "." : "", dom) != 0)
		return -1;
	for (const char *p = c->tls_policy; p != NULL && *p != '\0';) {
		size_t n = strcspn(p, ",");

		if (strncmp(p, ent, strlen(ent)) == 0) {
			str_fmt_cut(msg, len, "%s given twice", name);
			return -1;
		}
		p += n + (p[n] == ',');
	}
	buf_init(&b, CONF_VALUE_MAX * 16);
	if (buf_printf(&b, "%s%s%s%s", c->tls_policy ? c->tls_policy : "",
		c->tls_policy ? "," : "", ent, lvl) != 0) {
		buf_free(&b);
		str_fmt_cut(msg, len, "too many entries");
		return -1;
	}
	free(c->tls_policy);
	c->tls_policy = b.data;
	return 0;
}

/* Edit distance of a and b (lower-cased), capped at 3: close typos only. */
static unsigned
conf_distance(const char *a, const char *b)
{
	unsigned row[65], prev, cur, i, j;
	size_t na = strlen(a), nb = strlen(b);

	if (na > 64 || nb > 64)
		return 3;
	for (j = 0; j <= nb; j++)
		row[j] = j;
	for (i = 1; i <= na; i++) {
		prev = row[0];
		row[0] = i;
		for (j = 1; j <= nb; j++) {
			unsigned sub =
			    prev + (tolower((unsigned char)a[i - 1]) !=
				       tolower((unsigned char)b[j - 1]));

			cur = row[j];
			row[j] = sub;
			if (cur + 1 < row[j])
				row[j] = cur + 1;
			if (row[j - 1] + 1 < row[j])
				row[j] = row[j - 1] + 1;
			prev = cur;
		}
	}
	return row[nb] < 3 ? row[nb] : 3;
}

/*
 * The key an unknown "section.name" was probably meant to be: the same
 * name in another section, else a name at most two edits away in the
 * same section.  "" when none.
 */
static void
conf_suggest(const char *section, const char *name, char *out, size_t outlen)
{
	size_t i, best = CONF_NKEYS;
	unsigned d, bestd = 3;

	out[0] = '\0';
	for (i = 0; i < CONF_NKEYS; i++) {
		const struct conf_key *k = &conf_keys[i];

		if (strcasecmp(k->name, name) == 0) {
			best = i;
			break;
		}
		if (strcasecmp(k->section, section) == 0 &&
		    (d = conf_distance(k->name, name)) < bestd) {
			bestd = d;
			best = i;
		}
	}
	if (best < CONF_NKEYS)
		conf_keyname(&conf_keys[best], out, outlen);
}

static int
conf_ini_handler(
    void *user, const char *section, const char *name, const char *value)
{
	struct conf_ctx *x = user;
	const struct conf_key *k = conf_find_key(section, name);
	char msg[CONF_MSG_MAX], key[128], tmp[CONF_VALUE_MAX + 1];
	char nocomment[CONF_VALUE_MAX + 1];
	size_t i;

	if (strcasecmp(section, "tls_policy") == 0) {
		if (conf_tls_policy_set(x->c, name,
			conf_unquote(value, tmp, sizeof(tmp)), msg,
			sizeof(msg)) != 0) {
			conf_file_error(x, "tls_policy.%s: %s", name, msg);
			return 0;
		}
		return 1;
	}
	if (k == NULL) {
		conf_suggest(section, name, key, sizeof(key));
		conf_file_error(x, "unknown key \"%s%s%s\"%s%s%s", section,
		    section[0] != '\0' ? "." : "", name,
		    key[0] != '\0' ? " (did you mean " : "", key,
		    key[0] != '\0' ? "?)" : "");
		return 0;
	}
	conf_keyname(k, key, sizeof(key));
	i = (size_t)(k - conf_keys);
	if (x->indented && !conf_is_list(k->type)) {
		conf_file_error(
		    x, "%s: only lists continue on indented lines", key);
		return 0;
	}
	if (!x->indented && x->seen[i]) {
		conf_file_error(x, "%s: given twice", key);
		return 0;
	}
	x->seen[i] = true;
	if (x->indented)
		value = conf_cut_comment(value, nocomment, sizeof(nocomment));
	if (conf_set(x, k, conf_unquote(value, tmp, sizeof(tmp)), x->indented,
		msg, sizeof(msg)) != 0) {
		conf_file_error(x, "%s: %s", key, msg);
		return 0;
	}
	return 1;
}

/* A "[name]" line naming no known section is an error, even if empty. */
static void
conf_check_section(struct conf_ctx *x, const char *line, size_t n)
{
	const char *end;

	if (n == 0 || line[0] != '[')
		return;
	end = memchr(line, ']', n);
	if (end != NULL &&
	    !conf_known_section(line + 1, (size_t)(end - line - 1)))
		conf_file_error(x, "unknown section \"%.*s\"",
		    (int)(end - line + 1 > 64 ? 64 : end - line + 1), line);
}

/*
 * inih reads every indented line as the continuation of the previous
 * value, so "[limits]" followed by indented "key = value" lines would
 * pile up into one value.  An indented line holding '=' or starting with
 * '[' is a key or a section of its own: its indentation is removed before
 * inih sees it.  Only other indented lines continue (lists) a value.
 */
static size_t
conf_indent(struct conf_ctx *x, const char **s, size_t n)
{
	size_t lead = 0;

	while (lead < n && ((*s)[lead] == ' ' || (*s)[lead] == '\t'))
		lead++;
	x->indented = false;
	if (lead == 0 || lead == n)
		return n;
	if ((*s)[lead] == '[' || memchr(*s + lead, '=', n - lead) != NULL) {
		*s += lead;
		return n - lead;
	}
	x->indented = true;
	return n;
}

/*
 * fgets-style reader for ini_parse_stream.  Counting lines here is how
 * errors get their line numbers (Debian's inih does not pass them to the
 * handler).  A line that does not fit inih's buffer would be split and
 * its tail parsed as a line of its own, so it is refused instead.
 */
static char *
conf_read_line(char *str, int num, void *stream)
{
	struct conf_reader *r = stream;
	const char *s = r->p + r->pos, *nl;
	size_t n;

	if (r->pos >= r->len || num < 2)
		return NULL;
	nl = memchr(s, '\n', r->len - r->pos);
	n = nl != NULL ? (size_t)(nl - s) + 1 : r->len - r->pos;
	r->pos += n;
	r->ctx->lineno++;
	n = conf_indent(r->ctx, &s, n);
	if (n > (size_t)num - 1) {
		conf_file_error(r->ctx,
		    "line longer than %d bytes (a list can "
		    "continue on indented lines)",
		    num - 2);
		memcpy(str, "\n", 2);
		return str;
	}
	memcpy(str, s, n);
	str[n] = '\0';
	conf_check_section(r->ctx, s, n);
	return str;
}

static int
conf_slurp(const char *path, struct buf *b, char *msg, size_t msglen)
{
	char chunk[8192];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		str_fmt_cut(msg, msglen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || buf_append(b, chunk, (size_t)n) != 0) {
			str_fmt_cut(msg, msglen, "%s: %s", path,
			    n < 0 ? strerror(errno) : "file too large");
			(void)close(fd);
			return -1;
		}
	}
	(void)close(fd); /* read-only: nothing can be lost on close */
	if (b->len > 0 && memchr(b->data, '\0', b->len) != NULL) {
		str_fmt_cut(msg, msglen, "%s: contains a NUL byte", path);
		return -1;
	}
	return 0;
}

static int
conf_read_file(struct conf_ctx *x, const char *path, char *err, size_t errlen)
{
	struct conf_reader r;
	struct buf b;
	int ret;

	buf_init(&b, CONF_FILE_MAX);
	if (conf_slurp(path, &b, err, errlen) != 0) {
		buf_free(&b);
		return -1;
	}
	x->path = path;
	r.p = b.data != NULL ? b.data : "";
	r.len = b.len;
	r.pos = 0;
	r.ctx = x;
	ret = ini_parse_stream(conf_read_line, &r, conf_ini_handler, x);
	buf_free(&b);
	if (ret > 0 && (x->err_line == 0 || ret < x->err_line)) {
		str_fmt_cut(err, errlen,
		    "%s:%d: syntax error: expected "
		    "\"key = value\" or \"[section]\"",
		    path, ret);
		return -1;
	}
	if (x->err_line != 0 || ret != 0) {
		str_fmt_cut(err, errlen, "%s",
		    x->err_line != 0 ? x->err
				     : "cannot parse the configuration");
		return -1;
	}
	return 0;
}

/* ---- -o overrides ------------------------------------------------------ */

static void
conf_trim(const char **s, size_t *n)
{
	while (*n > 0 && (**s == ' ' || **s == '\t')) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
		(*n)--;
}

/* The key named "section.key" ("key" at top level) by k[0..kn). */
static const struct conf_key *
conf_key_by_name(const char *k, size_t kn)
{
	char section[64] = "", name[64];
	const char *dot = memchr(k, '.', kn);
	const char *n = dot != NULL ? dot + 1 : k;

	if (dot != NULL && (dot == k || str_copy(section, sizeof(section), k,
					    (size_t)(dot - k)) != 0))
		return NULL;
	if (str_copy(name, sizeof(name), n, kn - (size_t)(n - k)) != 0)
		return NULL;
	return conf_find_key(section, name);
}

static int
conf_override(struct conf_ctx *x, const char *kv, char *err, size_t errlen)
{
	char msg[CONF_MSG_MAX], value[CONF_VALUE_MAX + 1];
	char tmp[CONF_VALUE_MAX + 1];
	const char *eq = strchr(kv, '='), *k = kv, *v;
	const struct conf_key *key;
	size_t kn, vn;

	if (eq == NULL) {
		str_fmt_cut(
		    err, errlen, "-o %s: expected section.key=value", kv);
		return -1;
	}
	kn = (size_t)(eq - kv);
	conf_trim(&k, &kn);
	v = eq + 1;
	vn = strlen(v);
	conf_trim(&v, &vn);
	if (kn > 11 && strncasecmp(k, "tls_policy.", 11) == 0 &&
	    str_copy(tmp, sizeof(tmp), k + 11, kn - 11) == 0 &&
	    str_copy(value, sizeof(value), v, vn) == 0) {
		if (conf_tls_policy_set(x->c, tmp, value, msg, sizeof(msg)) ==
		    0)
			return 0;
		str_fmt_cut(err, errlen, "-o %s: %s", kv, msg);
		return -1;
	}
	if ((key = conf_key_by_name(k, kn)) == NULL) {
		str_fmt_cut(err, errlen, "-o %s: unknown key \"%.*s\"", kv,
		    (int)(kn > 64 ? 64 : kn), k);
		return -1;
	}
	if (str_copy(value, sizeof(value), v, vn) != 0) {
		str_fmt_cut(err, errlen, "-o %.*s: value longer than %d bytes",
		    (int)(kn > 64 ? 64 : kn), k, CONF_VALUE_MAX);
		return -1;
	}
	v = conf_unquote(value, tmp, sizeof(tmp));
	if (conf_set(x, key, v, false, msg, sizeof(msg)) != 0) {
		str_fmt_cut(err, errlen, "-o %s: %s", kv, msg);
		return -1;
	}
	return 0;
}

/* ---- whole configurations ---------------------------------------------- */

static int
conf_defaults(struct conf *c, char *err, size_t errlen)
{
	char host[256];

	if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0' ||
	    memchr(host, '\0', sizeof(host)) == NULL ||
	    !conf_is_domain_name(host, strlen(host)))
		memcpy(host, "localhost", sizeof("localhost"));
	str_lower(host);
	c->hostname = xstrdup(host);
	c->domains = xcalloc(1, sizeof(char *));
	c->domains[0] = xstrdup("localhost");
	c->ndomains = 1;
	if ((c->state_dir = conf_abs_path("./var", err, errlen)) == NULL)
		return -1;
	c->listen_smtp = xstrdup("127.0.0.1:2525");
	c->listen_submission = xstrdup("127.0.0.1:2587");
	c->message_size = 26214400;
	c->inflight_memory = (uint64_t)256 << 20;
	c->inflight_scratch = (uint64_t)4 << 30;
	c->recipients = 1000;
	c->connections = 4096;
	c->connections_per_ip = 50;
	c->connections_per_uid = 20;
	c->errors = 20;
	c->hops = 100;
	c->dsn_per_client = 30;
	c->dsn_per_domain = 100;
	c->timeout_command = 300;
	c->timeout_line = 60;
	c->timeout_data = 300;
	c->timeout_shutdown = 30;
	c->relay_port = 25;
	c->delivery_concurrency_per_destination = 10;
	c->dns_cache_max_ttl = 300;
	c->dns_cache_entries = 4096;
	c->queue_retry_first = 300;
	c->queue_retry_max = 4000;
	c->queue_lifetime = 5 * 86400;
	c->queue_log = true;
	c->log_level = xstrdup("info");
	c->log_format = xstrdup("kv");
	c->log_target = xstrdup("stderr");
	c->submission_local_senders = xstrdup("any");
	c->sandbox = true;
	c->spf_check = true;
	c->dmarc_report_interval = 86400;
	c->dmarc_report_max_rows = 100000;
	c->tlsrpt_report_interval = 86400;
	c->tlsrpt_max_domains = 10000;
	c->srs_enable = true;
	c->srs_max_age = 21;
	c->dkim_verify = true;
	c->dmarc_check = true;
	c->dmarc_enforce = true;
	c->dkim_sign = true;
	c->dkim_expire = CONF_DKIM_EXPIRE;
	c->arc_verify = true;
	c->arc_seal = true;
	c->milter_default_action = xstrdup("tempfail");
	c->milter_connect_timeout = 30;
	c->milter_command_timeout = 30;
	c->milter_eom_timeout = 300;
	c->screen_threshold = 1;
	c->screen_cache_ttl = 3600;
	c->screen_cache_entries = 100000;
	c->screen_dns_timeout = 5;
	c->greylist_delay = 300;
	c->greylist_expire = 35 * 86400;
	c->greylist_store = xstrdup("auto");
	c->sts_enable = true;
	c->sts_cache_entries = 1000;
	c->sts_fetch_timeout = 20;
	c->acme_renew_before = 30 * 86400;
	c->acme_retry_first = 600;
	/* rate limits: docs/defence.md "Rate limits" says why these */
	c->rate_connections_per_ip = 60;
	c->rate_messages_per_ip = 500;
	c->rate_recipients_per_ip = 2000;
	c->rate_messages_per_user_hour = 200;
	c->rate_messages_per_user_day = 1000;
	c->rate_recipients_per_user_hour = 500;
	c->rate_recipients_per_user_day = 2000;
	c->rate_unknown_recipients = 10;
	c->rate_penalty = 900;
	c->rate_exempt_networks = xstrdup("127.0.0.0/8,::1");
	c->policy_default_action = xstrdup("tempfail");
	c->policy_timeout = 100;
	c->policy_idle_timeout = 300;
	return 0;
}

/*
 * relay.smarthost_tls when not given: verify when there are credentials
 * to protect, else may; the deprecated smarthost_require_tls = yes makes
 * that at least encrypt, and contradicts an explicit may.
 */
static int
conf_finish_smarthost_tls(struct conf *c, char *err, size_t errlen)
{
	if (c->relay_smarthost_require_tls &&
	    c->relay_smarthost_tls == CONF_SMTLS_MAY) {
		str_fmt_cut(err, errlen,
		    "relay.smarthost_require_tls = yes contradicts "
		    "relay.smarthost_tls = may (drop the deprecated key)");
		return -1;
	}
	if (c->relay_smarthost_tls != CONF_SMTLS_UNSET)
		return 0;
	if (c->relay_smarthost_user != NULL)
		c->relay_smarthost_tls = CONF_SMTLS_VERIFY;
	else if (c->relay_smarthost_require_tls)
		c->relay_smarthost_tls = CONF_SMTLS_ENCRYPT;
	else
		c->relay_smarthost_tls = CONF_SMTLS_MAY;
	return 0;
}

/* dmarc.override parses (ternd parses it again at start-up, its copy) */
static int
conf_check_dmarc_override(const struct conf *c, char *err, size_t errlen)
{
	struct dmarc_override *o;
	char *copy;
	size_t n;
	int r;

	if (c->dmarc_override == NULL)
		return 0;
	copy = xstrdup(c->dmarc_override);
	o = xcalloc(INBOUND_OVERRIDES_MAX, sizeof(*o));
	r = inbound_overrides_parse(
	    copy, o, INBOUND_OVERRIDES_MAX, &n, err, errlen);
	free(o);
	free(copy);
	return r;
}

/*
 * listen.metrics tells whoever can connect how much mail flows where
 * (destination domains, AUTH failures) and takes no credentials: on
 * loopback only (127.0.0.0/8, ::1), unless metrics.allow_remote says the
 * administrator put it behind a firewall or a proxy on purpose.
 */
static int
conf_check_metrics(const struct conf *c, char *err, size_t errlen)
{
	char host[ADDR_DOMAIN_MAX + 1];
	unsigned port;
	struct in_addr a4;

	if (c->listen_metrics == NULL || c->metrics_allow_remote)
		return 0;
	if (conf_split_hostport(
		c->listen_metrics, host, sizeof(host), &port, true) == 0 &&
	    ((inet_pton(AF_INET, host, &a4) == 1 &&
		 (ntohl(a4.s_addr) >> 24) == 127) ||
		strcmp(host, "::1") == 0))
		return 0;
	str_fmt_cut(err, errlen,
	    "listen.metrics: %s is not a loopback address (127.0.0.0/8, "
	    "[::1]); set metrics.allow_remote = yes to serve the metrics "
	    "there",
	    c->listen_metrics);
	return -1;
}

/* Items of a comma-joined list (conf_set_list's form). */
static size_t
conf_count_items(const char *list)
{
	size_t n = 1;

	for (; *list != '\0'; list++)
		n += *list == ',';
	return n;
}

/*
 * ACME writes the pair where tls.cert and tls.key say (so they must be
 * given) and needs one way to answer HTTP-01 (acme.http or acme.webroot,
 * not both: the validator asks one of them).
 */
static int
conf_check_acme(struct conf *c, char *err, size_t errlen)
{
	const char *d = c->acme_directory;

	if (d == NULL)
		return 0;
	if (strncmp(d, "https://", 8) != 0 || strpbrk(d, "\" \\") != NULL)
		str_fmt_cut(err, errlen,
		    "acme.directory: %s is not an https: "
		    "URL",
		    d);
	else if (c->tls_cert == NULL || c->tls_key == NULL)
		str_fmt_cut(err, errlen,
		    "acme.directory: set tls.cert and tls.key too (where the "
		    "certificate and its key are written)");
	else if ((c->acme_http == NULL) == (c->acme_webroot == NULL))
		str_fmt_cut(err, errlen,
		    "acme.directory: set one of acme.http (ternd answers "
		    "HTTP-01) and acme.webroot (a web server does)");
	else if (c->acme_email != NULL &&
		 (strpbrk(c->acme_email, "\" \\,") != NULL ||
		     strchr(c->acme_email, '@') == NULL))
		str_fmt_cut(err, errlen, "acme.email: %s is not an address",
		    c->acme_email);
	else if (c->acme_domains != NULL &&
		 conf_count_items(c->acme_domains) > CONF_ACME_DOMAINS_MAX)
		str_fmt_cut(err, errlen, "acme.domains: more than %d names",
		    CONF_ACME_DOMAINS_MAX);
	else {
		if (c->acme_domains == NULL)
			c->acme_domains = xstrdup(c->hostname);
		return 0;
	}
	return -1;
}

/* Values that depend on others, computed once everything is read. */
static int
conf_finish(struct conf_ctx *x, char *err, size_t errlen)
{
	struct conf *c = x->c;
	size_t n;

	if (conf_finish_smarthost_tls(c, err, errlen) != 0 ||
	    conf_check_dmarc_override(c, err, errlen) != 0 ||
	    conf_check_metrics(c, err, errlen) != 0 ||
	    conf_check_acme(c, err, errlen) != 0)
		return -1;
	if (c->ndomains == 0) {
		str_fmt_cut(err, errlen,
		    "domains: at least one domain is "
		    "needed");
		return -1;
	}
	/* the SRS domain: the first local domain unless named (it needs an
	 * MX pointing here, which the first domain has) */
	if (c->srs_domain == NULL)
		c->srs_domain = xstrdup(c->domains[0]);
	if (!x->users_set) {
		n = strlen(c->state_dir) + sizeof("sqlite:/tern.db");
		free(c->tables_users);
		c->tables_users = xmalloc(n);
		if (str_fmt(c->tables_users, n, "sqlite:%s/tern.db",
			c->state_dir) != 0)
			panic("event=conf_finish");
	}
	return 0;
}

static struct conf *
conf_load_x(const char *path, char *const *overrides, size_t n, char *err,
    size_t errlen, void (*report)(void *, const char *), void *rctx)
{
	struct conf_ctx *x = xcalloc(1, sizeof(*x));
	struct conf *c = xcalloc(1, sizeof(*c));
	size_t i;

	x->c = c;
	x->report = report;
	x->rctx = rctx;
	if (conf_defaults(c, err, errlen) != 0)
		goto fail;
	if (path != NULL) {
		c->path = xstrdup(path);
		if (conf_read_file(x, path, err, errlen) != 0)
			goto fail;
	}
	for (i = 0; i < n; i++)
		if (conf_override(x, overrides[i], err, errlen) != 0)
			goto fail;
	if (conf_finish(x, err, errlen) != 0)
		goto fail;
	free(x);
	return c;
fail:
	free(x);
	conf_free(c);
	return NULL;
}

struct conf *
conf_load(const char *path, char *const *overrides, size_t n, char *err,
    size_t errlen)
{
	return conf_load_x(path, overrides, n, err, errlen, NULL, NULL);
}

struct conf *
conf_check(const char *path, char *const *overrides, size_t n,
    void (*report)(void *rctx, const char *msg), void *rctx, char *err,
    size_t errlen)
{
	return conf_load_x(path, overrides, n, err, errlen, report, rctx);
}

struct conf *
conf_from_args(int *argc, char ***argv, char *err, size_t errlen)
{
	char **av = *argv, **ov;
	int ac = *argc, i = ac > 0 ? 1 : 0;
	const char *path = NULL, *env;
	size_t nov = 0;
	struct conf *c;

	ov = xcalloc((size_t)(ac > 0 ? ac : 1), sizeof(char *));
	for (; i < ac; i++) {
		char *a = av[i], *val;

		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (a[0] != '-' || (a[1] != 'c' && a[1] != 'o'))
			break;
		val = a[2] != '\0' ? a + 2 : (i + 1 < ac ? av[++i] : NULL);
		if (val == NULL) {
			str_fmt_cut(err, errlen, "-%c: %s is missing", a[1],
			    a[1] == 'c' ? "the file name" : "key=value");
			free(ov);
			return NULL;
		}
		if (a[1] == 'c')
			path = val;
		else
			ov[nov++] = val;
	}
	if (path == NULL && (env = getenv("TERN_CONFIG")) != NULL &&
	    env[0] != '\0')
		path = env;
	/* the system file when there is one: ternd, tern, sendmail and mailq
	 * run from cron or an init system all agree without -c */
	if (path == NULL && access(CONF_SYSTEM_FILE, F_OK) == 0)
		path = CONF_SYSTEM_FILE;
	c = conf_load(path, ov, nov, err, errlen);
	free(ov);
	if (c != NULL) {
		*argc = ac - i;
		*argv = av + i;
	}
	return c;
}

void
conf_free(struct conf *c)
{
	size_t i;

	if (c == NULL)
		return;
	conf_free_domains(c);
	free(c->path);
	free(c->tls_policy);
	for (i = 0; i < CONF_NKEYS; i++) {
		const struct conf_key *k = &conf_keys[i];

		if (conf_type_is_string(k->type))
			free(*(char **)conf_field(c, k));
	}
	free(c);
}

bool
conf_domain_is_local(const struct conf *c, const char *domain)
{
	size_t i;

	for (i = 0; i < c->ndomains; i++)
		if (strcasecmp(c->domains[i], domain) == 0)
			return true;
	return false;
}

/* ---- dump -------------------------------------------------------------- */

static void
conf_format_value(const struct conf *c, const struct conf_key *k, struct buf *b)
{
	const char *s;
	size_t i;
	int r = 0;

	switch (k->type) {
	case CONF_T_DOMAINS:
		for (i = 0; i < c->ndomains; i++)
			r |=
			    buf_printf(b, "%s%s", i ? ", " : "", c->domains[i]);
		break;
	case CONF_T_SIZE:
		r = buf_printf(b, "%llu",
		    (unsigned long long)*(const uint64_t *)conf_cfield(c, k));
		break;
	case CONF_T_UINT:
	case CONF_T_SECS:
		r = buf_printf(b, "%u", *(const unsigned *)conf_cfield(c, k));
		break;
	case CONF_T_BOOL:
		r = buf_append_str(
		    b, *(const bool *)conf_cfield(c, k) ? "yes" : "no");
		break;
	case CONF_T_SMTLS:
		r = buf_append_str(b,
		    conf_smarthost_tls_name(
			*(const enum conf_smarthost_tls *)conf_cfield(c, k)));
		break;
	default:
		s = *(char *const *)conf_cfield(c, k);
		if (s == NULL && k->type == CONF_T_LISTEN)
			s = "off";
		r = buf_append_str(b, s != NULL ? s : "");
		break;
	}
	if (r != 0)
		panic("event=conf_dump key=%s", k->name);
}

/*
 * A libpq CONNINFO may carry "password=SECRET" (or ":SECRET@" in a URI):
 * shown as "password=***" / ":***@", so `tern config` output can be
 * pasted into a bug report.
 */
static void
conf_mask_password(const char *in, struct buf *out)
{
	const char *p = in, *pw, *uri = strstr(in, "://"), *at, *colon;

	buf_reset(out);
	while ((pw = strstr(p, "password=")) != NULL) {
		if (buf_append(out, p, (size_t)(pw - p) + 9) != 0 ||
		    buf_append_str(out, "***") != 0)
			panic("event=conf_dump");
		p = pw + 9;
		if (*p == '\'') { /* 'quoted value', \' escapes */
			for (p++; *p != '\0' && *p != '\''; p++)
				if (*p == '\\' && p[1] != '\0')
					p++;
			if (*p == '\'')
				p++;
		} else {
			p += strcspn(p, " \t");
		}
	}
	if (p == in && uri != NULL && (at = strchr(uri + 3, '@')) != NULL &&
	    (colon = memchr(uri + 3, ':', (size_t)(at - (uri + 3)))) != NULL) {
		if (buf_append(out, in, (size_t)(colon - in) + 1) != 0 ||
		    buf_append_str(out, "***") != 0)
			panic("event=conf_dump");
		p = at;
	}
	if (buf_append_str(out, p) != 0)
		panic("event=conf_dump");
}

void
conf_dump(
    const struct conf *c, void (*out)(const char *line, void *ctx), void *ctx)
{
	char key[128];
	struct buf b, m;
	size_t i;

	buf_init(&b, (size_t)CONF_DOMAINS_MAX * (ADDR_DOMAIN_MAX + 2) + 256);
	buf_init(&m, b.max + 64);
	for (i = 0; i < CONF_NKEYS; i++) {
		buf_reset(&b);
		conf_keyname(&conf_keys[i], key, sizeof(key));
		if (buf_printf(&b, "%s = ", key) != 0)
			panic("event=conf_dump");
		conf_format_value(c, &conf_keys[i], &b);
		conf_mask_password(b.data, &m);
		out(m.data, ctx);
	}
	/* [tls_policy]: one "tls_policy.domain = level" line each */
	for (const char *p = c->tls_policy; p != NULL && *p != '\0';) {
		size_t n = strcspn(p, ","), colon = n;

		while (colon > 0 && p[colon - 1] != ':')
			colon--;
		buf_reset(&b);
		if (colon > 0 &&
		    buf_printf(&b, "tls_policy.%.*s = %.*s", (int)(colon - 1),
			p, (int)(n - colon), p + colon) == 0)
			out(b.data, ctx);
		p += n + (p[n] == ',');
	}
	buf_free(&m);
	buf_free(&b);
}

/* ---- reload (server/reload.c) ------------------------------------------ */

bool
conf_key_differs(const struct conf *a, const struct conf *b, const char *key)
{
	const struct conf_key *k = conf_key_by_name(key, strlen(key));
	struct buf va, vb;
	bool differs;

	if (k == NULL)
		panic("event=conf_key_differs key=%s", key);
	buf_init(&va, (size_t)CONF_DOMAINS_MAX * (ADDR_DOMAIN_MAX + 2) + 256);
	buf_init(&vb, va.max);
	conf_format_value(a, k, &va);
	conf_format_value(b, k, &vb);
	differs = va.len != vb.len ||
		  (va.len > 0 && memcmp(va.data, vb.data, va.len) != 0);
	buf_free(&va);
	buf_free(&vb);
	return differs;
}

void
conf_key_keep(struct conf *dst, const struct conf *src, const char *key)
{
	const struct conf_key *k = conf_key_by_name(key, strlen(key));
	size_t i;

	if (k == NULL)
		panic("event=conf_key_keep key=%s", key);
	switch (k->type) {
	case CONF_T_DOMAINS:
		conf_free_domains(dst);
		dst->domains = xcalloc(src->ndomains, sizeof(char *));
		for (i = 0; i < src->ndomains; i++)
			dst->domains[i] = xstrdup(src->domains[i]);
		dst->ndomains = src->ndomains;
		break;
	case CONF_T_SIZE:
		*(uint64_t *)conf_field(dst, k) =
		    *(const uint64_t *)conf_cfield(src, k);
		break;
	case CONF_T_UINT:
	case CONF_T_SECS:
		*(unsigned *)conf_field(dst, k) =
		    *(const unsigned *)conf_cfield(src, k);
		break;
	case CONF_T_BOOL:
		*(bool *)conf_field(dst, k) =
		    *(const bool *)conf_cfield(src, k);
		break;
	case CONF_T_SMTLS:
		*(enum conf_smarthost_tls *)conf_field(dst, k) =
		    *(const enum conf_smarthost_tls *)conf_cfield(src, k);
		break;
	default: {
		char **d = conf_field(dst, k);
		char *const *sv = conf_cfield(src, k);

		free(*d);
		*d = *sv != NULL ? xstrdup(*sv) : NULL;
		break;
	}
	}
}
