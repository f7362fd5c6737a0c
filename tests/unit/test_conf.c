/*
 * test_conf: the configuration module.  Defaults, a full file, -o
 * overrides over it, every error path (file and -o), relative paths made
 * absolute, tables.users following state_dir, conf_from_args' option
 * forms, conf_dump and conf_split_hostport.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "t.h"

static char tmpdir[PATH_MAX];
static char cwd[PATH_MAX];

/* Write text to tmpdir/name; returns the path (static buffer). */
static const char *
write_file(const char *name, const char *text)
{
	static char path[PATH_MAX + 64];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0)
		abort();
	return path;
}

static struct conf *
load_text(const char *text, char *const *ov, size_t n, char *err, size_t errlen)
{
	return conf_load(write_file("t.conf", text), ov, n, err, errlen);
}

static void
test_defaults(void)
{
	char err[512] = "", want[PATH_MAX + 64];
	struct conf *c = conf_load(NULL, NULL, 0, err, sizeof(err));

	T_CHECK(c != NULL);
	if (c == NULL)
		return;
	T_CHECK(c->path == NULL);
	T_CHECK(c->hostname != NULL && c->hostname[0] != '\0');
	T_CHECK_INT(c->ndomains, 1);
	T_CHECK_STR(c->domains[0], "localhost");
	snprintf(want, sizeof(want), "%s/var", cwd);
	T_CHECK_STR(c->state_dir, want);
	snprintf(want, sizeof(want), "sqlite:%s/var/tern.db", cwd);
	T_CHECK_STR(c->tables_users, want);
	T_CHECK(c->user == NULL);
	T_CHECK_STR(c->listen_smtp, "127.0.0.1:2525");
	T_CHECK_STR(c->listen_submission, "127.0.0.1:2587");
	T_CHECK(c->listen_submissions == NULL);
	T_CHECK(c->tls_cert == NULL && c->tls_key == NULL);
	T_CHECK_INT(c->message_size, 26214400);
	T_CHECK(c->inflight_memory == (uint64_t)256 << 20);
	T_CHECK(c->inflight_scratch == (uint64_t)4 << 30);
	T_CHECK_INT(c->recipients, 1000);
	T_CHECK_INT(c->delivery_concurrency_per_destination, 10);
	T_CHECK_INT(c->connections, 4096);
	T_CHECK_INT(c->connections_per_ip, 50);
	T_CHECK_INT(c->errors, 20);
	T_CHECK_INT(c->timeout_command, 300);
	T_CHECK_INT(c->timeout_line, 60);
	T_CHECK_INT(c->timeout_data, 300);
	T_CHECK_INT(c->timeout_shutdown, 30);
	T_CHECK(c->relay_networks == NULL && c->relay_smarthost == NULL);
	T_CHECK_INT(c->relay_port, 25);
	T_CHECK(c->dns_servers == NULL);
	T_CHECK_INT(c->dns_cache_max_ttl, 300);
	T_CHECK_INT(c->dns_cache_entries, 4096);
	T_CHECK_STR(c->log_level, "info");
	T_CHECK(conf_domain_is_local(c, "localhost"));
	T_CHECK(!conf_domain_is_local(c, "example.org"));
	conf_free(c);
}

static const char full_file[] =
    "# a full configuration\n"
    "hostname = MX.Example.ORG\n"
    "domains = Example.org, example.net  example.com,example.org\n"
    "state_dir = /srv/tern/\n"
    "user = tern\n"
    "\n"
    "[listen]\n"
    "smtp = 0.0.0.0:25\n"
    "submission = [::1]:587 ; inline comment\n"
    "submissions = 127.0.0.1:465\n"
    "[tls]\n"
    "cert = /etc/tern/cert.pem\n"
    "key = \"/etc/tern/key.pem\"\n"
    "[limits]\n"
    "    message_size = 10M\n"
    "    inflight_memory = 64m\n"
    "    inflight_scratch = 2g\n"
    "    recipients = 100\n"
    "    connections = 10\n"
    "    connections_per_ip = 2\n"
    "    errors = 5\n"
    "[timeout]\n"
    "command = 5m\n"
    "line = 30s\n"
    "data = 1h\n"
    "shutdown = 0\n"
    "[relay]\n"
    "networks = 10.0.0.0/8 192.168.1.1\n"
    "  2001:db8::/32\n"
    "smarthost = smtp.example.net:587\n"
    "port = 2525\n"
    "[dns]\n"
    "servers = 127.0.0.1:5353, [::1]:53\n"
    "[log]\n"
    "level = DEBUG\n";

static void
test_full_file(void)
{
	char err[512] = "";
	struct conf *c = load_text(full_file, NULL, 0, err, sizeof(err));

	T_CHECK_STR(err, "");
	if (c == NULL)
		return;
	T_CHECK_STR(c->hostname, "mx.example.org");
	T_CHECK_INT(c->ndomains, 3);
	T_CHECK_STR(c->domains[0], "example.org");
	T_CHECK_STR(c->domains[1], "example.net");
	T_CHECK_STR(c->domains[2], "example.com");
	T_CHECK_STR(c->state_dir, "/srv/tern");
	T_CHECK_STR(c->tables_users, "sqlite:/srv/tern/tern.db");
	T_CHECK_STR(c->user, "tern");
	T_CHECK_STR(c->listen_smtp, "0.0.0.0:25");
	T_CHECK_STR(c->listen_submission, "[::1]:587");
	T_CHECK_STR(c->listen_submissions, "127.0.0.1:465");
	T_CHECK_STR(c->tls_cert, "/etc/tern/cert.pem");
	T_CHECK_STR(c->tls_key, "/etc/tern/key.pem");
	T_CHECK_INT(c->message_size, 10 * 1024 * 1024);
	T_CHECK(c->inflight_memory == (uint64_t)64 << 20);
	T_CHECK(c->inflight_scratch == (uint64_t)2 << 30);
	T_CHECK_INT(c->recipients, 100);
	T_CHECK_INT(c->connections, 10);
	T_CHECK_INT(c->connections_per_ip, 2);
	T_CHECK_INT(c->errors, 5);
	T_CHECK_INT(c->timeout_command, 300);
	T_CHECK_INT(c->timeout_line, 30);
	T_CHECK_INT(c->timeout_data, 3600);
	T_CHECK_INT(c->timeout_shutdown, 0);
	T_CHECK_STR(c->relay_networks, "10.0.0.0/8,192.168.1.1,2001:db8::/32");
	T_CHECK_STR(c->relay_smarthost, "smtp.example.net:587");
	T_CHECK_INT(c->relay_port, 2525);
	T_CHECK_STR(c->dns_servers, "127.0.0.1:5353,[::1]:53");
	T_CHECK_STR(c->log_level, "debug");
	T_CHECK(conf_domain_is_local(c, "example.net"));
	T_CHECK(!conf_domain_is_local(c, "localhost"));
	T_CHECK_STR(c->path, write_file("t.conf", full_file));
	conf_free(c);
}

static void
test_overrides(void)
{
	char *ov[] = {
	    "state_dir=/var/lib/tern",
	    "limits.recipients = 7",
	    "listen.smtp=off",
	    "listen.submission=\"\"",
	    "domains=a.example b.example",
	    "hostname=h.example",
	    "limits.recipients=8",
	    "relay.networks=",
	    "log.level=warning",
	    "tls.cert=",
	};
	char err[512] = "";
	struct conf *c = load_text(
	    full_file, ov, sizeof(ov) / sizeof(ov[0]), err, sizeof(err));

	T_CHECK_STR(err, "");
	if (c == NULL)
		return;
	T_CHECK_STR(c->state_dir, "/var/lib/tern");
	/* tables.users follows a state_dir that came from -o */
	T_CHECK_STR(c->tables_users, "sqlite:/var/lib/tern/tern.db");
	T_CHECK_INT(c->recipients, 8);
	T_CHECK(c->listen_smtp == NULL);
	T_CHECK(c->listen_submission == NULL);
	T_CHECK_STR(c->listen_submissions, "127.0.0.1:465");
	T_CHECK_INT(c->ndomains, 2);
	T_CHECK_STR(c->domains[1], "b.example");
	T_CHECK_STR(c->hostname, "h.example");
	T_CHECK(c->relay_networks == NULL);
	T_CHECK_STR(c->log_level, "warn");
	T_CHECK(c->tls_cert == NULL);
	conf_free(c);
}

static void
test_explicit_users(void)
{
	char *ov[] = {"tables.users=sqlite:db/x.db", "state_dir=elsewhere"};
	char *ov2[] = {"tables.users=pgsql:host=db dbname=tern"};
	char err[512] = "", want[PATH_MAX + 64];
	struct conf *c = conf_load(NULL, ov, 2, err, sizeof(err));

	T_CHECK(c != NULL);
	if (c != NULL) {
		snprintf(want, sizeof(want), "sqlite:%s/db/x.db", cwd);
		T_CHECK_STR(c->tables_users, want);
		snprintf(want, sizeof(want), "%s/elsewhere", cwd);
		T_CHECK_STR(c->state_dir, want);
		conf_free(c);
	}
	c = conf_load(NULL, ov2, 1, err, sizeof(err));
	T_CHECK(c != NULL);
	if (c != NULL)
		T_CHECK_STR(c->tables_users, "pgsql:host=db dbname=tern");
	conf_free(c);
}

static void
test_relative_state_dir(void)
{
	static const char *const cases[][2] = {
	    {"state_dir = var2\n", "/var2"},
	    {"state_dir = ./a/./b//c/\n", "/a/b/c"},
	    {"state_dir = ../up\n", "/../up"},
	    {"state_dir = .\n", ""},
	};
	char err[512], want[PATH_MAX * 2];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct conf *c;

		t_case(cases[i][0]);
		c = load_text(cases[i][0], NULL, 0, err, sizeof(err));
		T_CHECK(c != NULL);
		if (c == NULL)
			continue;
		snprintf(want, sizeof(want), "%s%s", cwd, cases[i][1]);
		T_CHECK_STR(c->state_dir, want);
		snprintf(want, sizeof(want), "sqlite:%s%s/tern.db", cwd,
		    cases[i][1]);
		T_CHECK_STR(c->tables_users, want);
		conf_free(c);
	}
}

static void
test_root_cwd(void)
{
	char *ov[] = {"state_dir=x", "tls.key=./k.pem"};
	char err[512];
	struct conf *c;

	if (chdir("/") != 0)
		abort();
	c = conf_load(NULL, ov, 2, err, sizeof(err));
	T_CHECK(c != NULL);
	if (c != NULL) {
		T_CHECK_STR(c->state_dir, "/x");
		T_CHECK_STR(c->tls_key, "/k.pem");
		conf_free(c);
	}
	if (chdir(cwd) != 0)
		abort();
}

/* File errors: the text, and the message expected after "PATH:". */
static const char *const file_errors[][2] = {
    {"[limits]\nfoo = 1\n", "2: unknown key \"limits.foo\""},
    {"bogus = 1\n", "1: unknown key \"bogus\""},
    {"\n\n[nosuch]\n", "3: unknown section \"[nosuch]\""},
    {"[nosuch]\nx = 1\n", "1: unknown section \"[nosuch]\""},
    {"[limits]\nrecipients = abc\n", "2: limits.recipients: not a number"},
    {"[limits]\nrecipients = 0\n",
	"2: limits.recipients: out of range (1..100000)"},
    {"[limits]\nrecipients = 12x\n", "2: limits.recipients: not a number"},
    {"[limits]\nrecipients = -1\n", "2: limits.recipients: not a number"},
    {"[limits]\nrecipients =\n", "2: limits.recipients: not a number"},
    {"recipient_delimiter = +a\n",
	"1: recipient_delimiter: \"a\" cannot be a delimiter (one of "
	"!#$%&'*+-/=?^_`{|}~)"},
    {"recipient_delimiter = +-=_#$%&!\n",
	"1: recipient_delimiter: at most 8 characters"},
    {"[greylist]\ndelay = 0\n", "2: greylist.delay: out of range (1..86400)"},
    {"[tls_policy]\nexample.org = secure\n",
	"2: tls_policy.example.org: expected none, may, encrypt, verify, dane "
	"or dane-only"},
    {"[tls_policy]\nexa_mple.org = may\n",
	"2: tls_policy.exa_mple.org: \"exa_mple.org\" is not a domain (or "
	".domain for its subdomains)"},
    {"[tls_policy]\nexample.org = may\nExample.ORG = none\n",
	"3: tls_policy.Example.ORG: Example.ORG given twice"},
    {"[dns]\ndnssec = maybe\n", "2: dns.dnssec: not yes or no: \"maybe\""},
    {"[greylist]\nstore = redis\n",
	"2: greylist.store: expected auto or sqlite"},
    {"[greylist]\nwhitelist_domains = a..b\n",
	"2: greylist.whitelist_domains: \"a..b\" is not a domain name"},
    {"[limits]\nconnections = 0\n",
	"2: limits.connections: out of range (1..1000000)"},
    {"[submission]\nlocal_senders = mine\n",
	"2: submission.local_senders: expected any or own"},
    {"[limits]\nconnections_per_uid = 0\n",
	"2: limits.connections_per_uid: out of range (1..1000000)"},
    {"[limits]\nconnections_per_ip = 0\n",
	"2: limits.connections_per_ip: out of range (1..1000000)"},
    {"[limits]\nerrors = 0\n", "2: limits.errors: out of range (1..10000)"},
    {"[limits]\nmessage_size = 0\n",
	"2: limits.message_size: out of range (1..1099511627776)"},
    {"[limits]\ninflight_memory = 1000k\n",
	"2: limits.inflight_memory: out of range (1048576..1099511627776)"},
    {"[limits]\ninflight_scratch = 0\n",
	"2: limits.inflight_scratch: out of range (1048576..1125899906842624)"},
    {"[limits]\nmessage_size = 99999999999999999999999\n",
	"2: limits.message_size: not a number"},
    {"[limits]\nmessage_size = 20000000000000G\n",
	"2: limits.message_size: number too large"},
    {"[timeout]\ncommand = 0\n", "2: timeout.command: out of range (1..86400)"},
    {"[timeout]\ndata = 2d\n", "2: timeout.data: not a number"},
    {"[timeout]\nline = 25h\n", "2: timeout.line: out of range (1..86400)"},
    {"[relay]\nport = 0\n", "2: relay.port: out of range (1..65535)"},
    {"[relay]\nport = 65536\n", "2: relay.port: out of range (1..65535)"},
    {"domains = example.org bad..domain\n",
	"1: domains: bad domain \"bad..domain\": "},
    {"domains = [192.0.2.1]\n", "1: domains: \"[192.0.2.1]\": address literals "
				"cannot be local domains"},
    {"domains = a_b.example\n", "1: domains: bad domain \"a_b.example\": "},
    {"hostname = not a host\n",
	"1: hostname: \"not a host\" is not a domain name"},
    {"state_dir =\n", "1: state_dir: a path is needed"},
    {"[listen]\nsmtp = 127.0.0.1\n",
	"2: listen.smtp: expected host:port or [ipv6]:port, or off"},
    {"[listen]\nsmtp = ::1:25\n",
	"2: listen.smtp: expected host:port or [ipv6]:port, or off"},
    {"[listen]\nsubmission = [::1:25\n",
	"2: listen.submission: expected host:port or [ipv6]:port, or off"},
    {"[listen]\nsmtp = 1.2.3.4:0\n",
	"2: listen.smtp: expected host:port or [ipv6]:port, or off"},
    {"[relay]\nsmarthost = a b:25\n",
	"2: relay.smarthost: expected host, host:port or [ipv6]:port, maybe "
	"after smtps:"},
    {"[relay]\nsmarthost = smtps:\n",
	"2: relay.smarthost: expected host, host:port or [ipv6]:port, maybe "
	"after smtps:"},
    {"[relay]\nsmarthost_tls = yes\n",
	"2: relay.smarthost_tls: expected verify, encrypt or may"},
    {"[relay]\nsmarthost_tls = none\n",
	"2: relay.smarthost_tls: expected verify, encrypt or may"},
    {"[relay]\nsmarthost_tls = may\nsmarthost_require_tls = yes\n",
	"relay.smarthost_require_tls = yes contradicts relay.smarthost_tls = "
	"may"},
    {"[delivery]\nlmtp = unix:relative/lmtp\n",
	"2: delivery.lmtp: expected unix:/absolute/path (at most 107 octets), "
	"host, host:port or [ipv6]:port"},
    {"[delivery]\nlmtp = a b\n",
	"2: delivery.lmtp: expected host, host:port or [ipv6]:port"},
    {"[limits]\nhops = 5\n", "2: limits.hops: out of range (10..10000)"},
    {"[relay]\nnetworks = 10.0.0.0/33\n",
	"2: relay.networks: \"10.0.0.0/33\" is not an address or "
	"address/prefix"},
    {"[relay]\nnetworks = example.org\n",
	"2: relay.networks: \"example.org\" is not an address or "
	"address/prefix"},
    {"[dns]\nservers = ns.example.org\n",
	"2: dns.servers: \"ns.example.org\" is not ip, ip:port or "
	"[ipv6]:port"},
    {"[tables]\nusers = mysql:x\n",
	"2: tables.users: expected sqlite:PATH or pgsql:CONNINFO"},
    {"[tables]\nusers = sqlite:\n",
	"2: tables.users: expected sqlite:PATH or pgsql:CONNINFO"},
    {"[log]\nlevel = loud\n",
	"2: log.level: expected debug, info, warn or err"},
    {"hostname = a.example\nhostname = b.example\n",
	"2: hostname: given twice"},
    {"[limits]\nrecipients = 5\n  10\n",
	"3: limits.recipients: only lists continue on indented lines"},
    {"this is not ini\n", "1: syntax error: expected \"key = value\" or "
			  "\"[section]\""},
    {"[limits\n", "1: syntax error: expected \"key = value\" or "
		  "\"[section]\""},
    {"domains =\n", "domains: at least one domain is needed"},
};

static void
test_file_errors(void)
{
	char err[512], want[PATH_MAX + 600];
	size_t i;

	for (i = 0; i < sizeof(file_errors) / sizeof(file_errors[0]); i++) {
		const char *path = write_file("e.conf", file_errors[i][0]);
		struct conf *c;

		t_case(file_errors[i][0]);
		err[0] = '\0';
		c = conf_load(path, NULL, 0, err, sizeof(err));
		T_CHECK(c == NULL);
		conf_free(c);
		/* messages with a line number carry the path before it */
		if (file_errors[i][1][0] >= '0' && file_errors[i][1][0] <= '9')
			snprintf(want, sizeof(want), "%s:%s", path,
			    file_errors[i][1]);
		else
			snprintf(want, sizeof(want), "%s", file_errors[i][1]);
		if (strncmp(err, want, strlen(want)) != 0) {
			T_CHECK_STR(err, want);
		}
	}
}

static void
test_file_special(void)
{
	char err[512], big[1024], want[PATH_MAX + 100];
	const char *path;
	struct conf *c;

	t_case("missing file");
	snprintf(want, sizeof(want), "%s/none.conf", tmpdir);
	c = conf_load(want, NULL, 0, err, sizeof(err));
	T_CHECK(c == NULL);
	T_CHECK(strstr(err, "none.conf: No such file or directory") != NULL);

	t_case("line too long");
	memset(big, 'a', sizeof(big));
	memcpy(big, "domains = ", 10);
	memcpy(big + sizeof(big) - 2, "\n", 2);
	path = write_file("long.conf", big);
	c = conf_load(path, NULL, 0, err, sizeof(err));
	T_CHECK(c == NULL);
	snprintf(want, sizeof(want), "%s:1: line longer than", path);
	T_CHECK(strncmp(err, want, strlen(want)) == 0);

	t_case("NUL byte");
	path = write_file("nul.conf", "x");
	{
		FILE *f = fopen(path, "wb");

		if (f == NULL || fwrite("a = 1\n\0\n", 1, 8, f) != 8 ||
		    fclose(f) != 0)
			abort();
	}
	c = conf_load(path, NULL, 0, err, sizeof(err));
	T_CHECK(c == NULL);
	T_CHECK(strstr(err, "contains a NUL byte") != NULL);

	t_case("empty file");
	c = load_text("", NULL, 0, err, sizeof(err));
	T_CHECK(c != NULL);
	conf_free(c);
}

static void
test_continuation(void)
{
	static const char text[] = "domains =\n"
				   "    one.example, two.example\n"
				   "    three.example ; a comment\n"
				   "\t\n"
				   "user = mail\n"
				   "  [limits]\n"
				   "  recipients = 3\n"
				   "  connections = 4\n";
	char err[512] = "";
	struct conf *c = load_text(text, NULL, 0, err, sizeof(err));

	T_CHECK_STR(err, "");
	if (c == NULL)
		return;
	T_CHECK_INT(c->ndomains, 3);
	T_CHECK_STR(c->domains[2], "three.example");
	T_CHECK_STR(c->user, "mail");
	T_CHECK_INT(c->recipients, 3);
	T_CHECK_INT(c->connections, 4);
	conf_free(c);
}

static const char *const override_errors[][2] = {
    {"limits.recipients=abc", "-o limits.recipients=abc: not a number"},
    {"limits.recipients=0", "-o limits.recipients=0: out of range (1..100000)"},
    /* SRS stamps repeat after 1024 days: an age must stay well below */
    {"srs.max_age=1001", "-o srs.max_age=1001: out of range (1..1000)"},
    {"srs.domain=[127.0.0.1]",
	"-o srs.domain=[127.0.0.1]: \"[127.0.0.1]\" is not a domain name"},
    {"limits.foo=1", "-o limits.foo=1: unknown key \"limits.foo\""},
    {"foo=1", "-o foo=1: unknown key \"foo\""},
    {".hostname=x", "-o .hostname=x: unknown key \".hostname\""},
    {"recipients=1", "-o recipients=1: unknown key \"recipients\""},
    {"hostname", "-o hostname: expected section.key=value"},
    {"domains=", "domains: at least one domain is needed"},
    {"domains=x..y", "-o domains=x..y: bad domain \"x..y\": "},
    {"state_dir=", "-o state_dir=: a path is needed"},
    {"timeout.data=5x", "-o timeout.data=5x: not a number"},
    {"listen.smtp=localhost", "-o listen.smtp=localhost: expected "
			      "host:port or [ipv6]:port, or off"},
};

static void
test_override_errors(void)
{
	char err[512];
	size_t i;

	for (i = 0; i < sizeof(override_errors) / sizeof(override_errors[0]);
	     i++) {
		char *ov[1];
		struct conf *c;

		ov[0] = (char *)(uintptr_t)override_errors[i][0];
		t_case(override_errors[i][0]);
		err[0] = '\0';
		c = conf_load(NULL, ov, 1, err, sizeof(err));
		T_CHECK(c == NULL);
		conf_free(c);
		if (strncmp(err, override_errors[i][1],
			strlen(override_errors[i][1])) != 0) {
			T_CHECK_STR(err, override_errors[i][1]);
		}
	}
}

static void
test_value_forms(void)
{
	char *ov[] = {
	    "limits.message_size=1k",
	    "timeout.command=2m",
	    "timeout.line=7",
	    "LIMITS.Errors=9",
	    "listen.smtp=localhost:25",
	    "listen.submission=[2001:db8::1]:587",
	    "dns.servers=::1",
	    "dns.cache_max_ttl=0",
	    "dns.cache_entries=10",
	    "relay.smarthost=[::1]",
	    "user=\"\"",
	    "delivery.lmtp=unix:/run/dovecot/lmtp",
	    "limits.hops=50",
	    "srs.domain=SRS.Example.ORG",
	    "srs.max_age=7",
	};
	char err[512] = "";
	struct conf *c =
	    conf_load(NULL, ov, sizeof(ov) / sizeof(ov[0]), err, sizeof(err));

	T_CHECK_STR(err, "");
	if (c == NULL)
		return;
	T_CHECK_INT(c->message_size, 1024);
	T_CHECK_INT(c->timeout_command, 120);
	T_CHECK_INT(c->timeout_line, 7);
	T_CHECK_INT(c->errors, 9);
	T_CHECK_STR(c->listen_smtp, "localhost:25");
	T_CHECK_STR(c->listen_submission, "[2001:db8::1]:587");
	T_CHECK_STR(c->dns_servers, "::1");
	T_CHECK_INT(c->dns_cache_max_ttl, 0);
	T_CHECK_INT(c->dns_cache_entries, 10);
	T_CHECK_STR(c->relay_smarthost, "[::1]");
	T_CHECK(c->user == NULL);
	T_CHECK_STR(c->delivery_lmtp, "unix:/run/dovecot/lmtp");
	T_CHECK_INT(c->hops, 50);
	T_CHECK_STR(c->srs_domain, "srs.example.org");
	T_CHECK_INT(c->srs_max_age, 7);
	conf_free(c);
}

static void
test_from_args(void)
{
	const char *path = write_file("a.conf", "hostname = file.example\n"
						"[limits]\nrecipients = 5\n");
	char pathopt[PATH_MAX + 8], err[512] = "";
	char *args[] = {"tern", "-c", (char *)(uintptr_t)path, "-o",
	    "limits.errors=3", "-olimits.connections=9", "user", "add", "-o",
	    "x"};
	int argc = 10;
	char **argv = args;
	struct conf *c = conf_from_args(&argc, &argv, err, sizeof(err));

	T_CHECK(c != NULL);
	T_CHECK_INT(argc, 4);
	T_CHECK(argv == args + 6);
	if (c != NULL) {
		T_CHECK_STR(c->hostname, "file.example");
		T_CHECK_INT(c->recipients, 5);
		T_CHECK_INT(c->errors, 3);
		T_CHECK_INT(c->connections, 9);
		T_CHECK_STR(c->path, path);
	}
	conf_free(c);

	t_case("-cFILE, --, TERN_CONFIG ignored");
	snprintf(pathopt, sizeof(pathopt), "-c%s", path);
	setenv("TERN_CONFIG", "/nonexistent/tern.conf", 1);
	{
		char *a2[] = {"ternd", pathopt, "--", "-o", "x=y"};

		argc = 5;
		argv = a2;
		c = conf_from_args(&argc, &argv, err, sizeof(err));
		T_CHECK(c != NULL);
		T_CHECK_INT(argc, 2);
		T_CHECK(argv == a2 + 3);
		if (c != NULL)
			T_CHECK_STR(c->hostname, "file.example");
		conf_free(c);
	}

	t_case("TERN_CONFIG read without -c");
	setenv("TERN_CONFIG", path, 1);
	{
		char *a3[] = {"tern", "config"};

		argc = 2;
		argv = a3;
		c = conf_from_args(&argc, &argv, err, sizeof(err));
		T_CHECK(c != NULL);
		T_CHECK_INT(argc, 1);
		T_CHECK_STR(argv[0], "config");
		if (c != NULL)
			T_CHECK_STR(c->hostname, "file.example");
		conf_free(c);
	}

	t_case("TERN_CONFIG missing file is an error");
	setenv("TERN_CONFIG", "/nonexistent/tern.conf", 1);
	{
		char *a4[] = {"tern"};

		argc = 1;
		argv = a4;
		c = conf_from_args(&argc, &argv, err, sizeof(err));
		T_CHECK(c == NULL);
		T_CHECK(strstr(err, "/nonexistent/tern.conf") != NULL);
		T_CHECK_INT(argc, 1);
	}
	unsetenv("TERN_CONFIG");

	t_case("missing argument");
	{
		char *a5[] = {"tern", "-o"};
		char *a6[] = {"tern", "-c"};

		argc = 2;
		argv = a5;
		T_CHECK(conf_from_args(&argc, &argv, err, sizeof(err)) == NULL);
		T_CHECK_STR(err, "-o: key=value is missing");
		argc = 2;
		argv = a6;
		T_CHECK(conf_from_args(&argc, &argv, err, sizeof(err)) == NULL);
		T_CHECK_STR(err, "-c: the file name is missing");
	}

	t_case("bad override via args");
	{
		char *a7[] = {"tern", "-o", "limits.recipients=abc", "user"};

		argc = 4;
		argv = a7;
		T_CHECK(conf_from_args(&argc, &argv, err, sizeof(err)) == NULL);
		T_CHECK_STR(err, "-o limits.recipients=abc: not a number");
	}

	t_case("no arguments at all");
	{
		char *a8[] = {"tern", NULL};

		argc = 1;
		argv = a8;
		c = conf_from_args(&argc, &argv, err, sizeof(err));
		T_CHECK(c != NULL);
		T_CHECK_INT(argc, 0);
		conf_free(c);
	}
}

struct lines {
	char text[8192];
	size_t len;
	int n;
};

static void
collect(const char *line, void *ctx)
{
	struct lines *l = ctx;
	int r =
	    snprintf(l->text + l->len, sizeof(l->text) - l->len, "%s\n", line);

	if (r > 0 && (size_t)r < sizeof(l->text) - l->len)
		l->len += (size_t)r;
	l->n++;
}

/* [tls_policy]: entries kept as "domain:level" (lower case), from the
 * file and from -o tls_policy.DOMAIN=LEVEL, and dumped one a line. */
static void
test_tls_policy(void)
{
	char *ov[] = {"tls_policy.b.example=dane-only", "dns.dnssec=yes"};
	char err[512];
	struct lines l = {"", 0, 0};
	struct conf *c;

	t_case("file and -o");
	c = load_text("[tls_policy]\nA.Example = May\n.sub.example = none\n",
	    ov, 2, err, sizeof(err));
	T_CHECK(c != NULL);
	if (c == NULL)
		return;
	T_CHECK_STR(c->tls_policy,
	    "a.example:may,.sub.example:none,b.example:dane-only");
	T_CHECK(c->dns_dnssec);
	conf_dump(c, collect, &l);
	T_CHECK(strstr(l.text, "tls_policy.a.example = may\n") != NULL);
	T_CHECK(strstr(l.text, "tls_policy..sub.example = none\n") != NULL);
	T_CHECK(strstr(l.text, "tls_policy.b.example = dane-only\n") != NULL);
	T_CHECK(strstr(l.text, "dns.dnssec = yes\n") != NULL);
	conf_free(c);

	t_case("-o with a bad level");
	{
		char *bad[] = {"tls_policy.a.example=sometimes"};

		c = conf_load(NULL, bad, 1, err, sizeof(err));
		T_CHECK(c == NULL);
		T_CHECK(strstr(err, "expected none, may") != NULL);
		conf_free(c);
	}
	t_case("defaults");
	c = conf_load(NULL, NULL, 0, err, sizeof(err));
	T_CHECK(c != NULL && c->tls_policy == NULL && !c->dns_dnssec);
	conf_free(c);
}

static void
test_dump_masks_passwords(void)
{
	static const char *const rows[][2] = {
	    {"tables.users=pgsql:host=db password=s3cret dbname=t",
		"tables.users = pgsql:host=db password=*** dbname=t\n"},
	    {"tables.users=pgsql:password='a b\\' c' user=u",
		"tables.users = pgsql:password=*** user=u\n"},
	    {"tables.users=pgsql:postgresql://u:s3cret@db/t",
		"tables.users = pgsql:postgresql://u:***@db/t\n"},
	    {"tables.users=pgsql:postgresql://u@db/t",
		"tables.users = pgsql:postgresql://u@db/t\n"},
	};
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *ov[] = {(char *)(uintptr_t)rows[i][0]};
		char err[512];
		struct lines l = {"", 0, 0};
		struct conf *c = conf_load(NULL, ov, 1, err, sizeof(err));

		t_case(rows[i][0]);
		T_CHECK(c != NULL);
		if (c == NULL)
			continue;
		conf_dump(c, collect, &l);
		T_CHECK(strstr(l.text, rows[i][1]) != NULL);
		T_CHECK(strstr(l.text, "s3cret") == NULL);
		conf_free(c);
	}
}

static void
test_milter_keys(void)
{
	static const struct {
		const char *ov, *want; /* want NULL: refused */
	} rows[] = {
	    {"milter.servers=inet:127.0.0.1:11332, unix:/run/m.sock",
		"milter.servers = inet:127.0.0.1:11332,unix:/run/m.sock\n"},
	    {"milter.servers=inet:[::1]:8891",
		"milter.servers = inet:[::1]:8891\n"},
	    {"milter.servers=inet:localhost:8891",
		"milter.servers = inet:localhost:8891\n"},
	    {"milter.servers=127.0.0.1:11332", NULL},
	    {"milter.servers=inet:milter.example:11332", NULL},
	    {"milter.servers=inet:127.0.0.1", NULL},
	    {"milter.servers=inet:127.0.0.1:0", NULL},
	    {"milter.servers=inet:127.0.0.1:65536", NULL},
	    {"milter.servers=inet:::1:25", NULL},
	    {"milter.servers=unix:relative", NULL},
	    {"milter.default_action=ACCEPT",
		"milter.default_action = accept\n"},
	    {"milter.default_action=reject", NULL},
	    {"milter.eom_timeout=2m", "milter.eom_timeout = 120\n"},
	    {"milter.command_timeout=0", NULL},
	    /* screening (docs/screening.md) */
	    {"screen.dnsbl=zen.spamhaus.org*3, bl.spamcop.net",
		"screen.dnsbl = zen.spamhaus.org*3,bl.spamcop.net\n"},
	    {"screen.dnsbl=zone.test=127.0.0.2*2",
		"screen.dnsbl = zone.test=127.0.0.2*2\n"},
	    {"screen.dnsbl=zone.test*0", NULL},
	    {"screen.dnsbl=zone.test*x", NULL},
	    {"screen.dnsbl=zone.test=10.0.0.1", NULL},
	    {"screen.dnsbl=zone..test", NULL},
	    {"screen.dnswl=list.dnswl.org=127.0.5.1",
		"screen.dnswl = list.dnswl.org=127.0.5.1\n"},
	    {"screen.dnswl=list.dnswl.org*2", NULL},
	    {"screen.greet_pause=3s", "screen.greet_pause = 3\n"},
	    {"screen.greet_pause=2m", NULL},
	    {"screen.threshold=0", NULL},
	    {"screen.threshold=3", "screen.threshold = 3\n"},
	    {"screen.cache_ttl=1h", "screen.cache_ttl = 3600\n"},
	    {"screen.dns_timeout=0", NULL},
	    /* policy delegation (docs/policy.md) */
	    {"policy.servers=inet:127.0.0.1:10040, unix:/run/p.sock",
		"policy.servers = inet:127.0.0.1:10040,unix:/run/p.sock\n"},
	    {"policy.servers=inet:policy.example:10040", NULL},
	    {"policy.servers=10040", NULL},
	    {"policy.default_action=accept",
		"policy.default_action = accept\n"},
	    {"policy.default_action=dunno", NULL},
	    {"policy.timeout=0", NULL},
	    {"policy.timeout=1m", "policy.timeout = 60\n"},
	    {"policy.idle_timeout=5m", "policy.idle_timeout = 300\n"},
	    {"policy.skip_authenticated=yes",
		"policy.skip_authenticated = yes\n"},
	    /* outbound pace (docs/queue.md) */
	    {"delivery.concurrency_per_destination=3",
		"delivery.concurrency_per_destination = 3\n"},
	    {"delivery.concurrency_per_destination=0", NULL},
	    {"delivery.concurrency_per_destination=1001", NULL},
	    {"delivery.destination_concurrency=gmail.com:5, example.org:20",
		"delivery.destination_concurrency = "
		"gmail.com:5,example.org:20\n"},
	    {"delivery.destination_concurrency=gmail.com", NULL},
	    {"delivery.destination_concurrency=gmail.com:0", NULL},
	    {"delivery.destination_concurrency=gmail.com:1001", NULL},
	    {"delivery.destination_concurrency=[127.0.0.1]:5", NULL},
	    {"delivery.destination_concurrency=a..b:5", NULL},
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *ov[] = {"state_dir=/s", (char *)(uintptr_t)rows[i].ov};
		char err[512];
		struct lines l = {"", 0, 0};
		struct conf *c = conf_load(NULL, ov, 2, err, sizeof(err));

		t_case(rows[i].ov);
		T_CHECK((c != NULL) == (rows[i].want != NULL));
		if (c == NULL)
			continue;
		conf_dump(c, collect, &l);
		T_CHECK(strstr(l.text, rows[i].want) != NULL);
		conf_free(c);
	}
}

/* rate limits (docs/defence.md "Rate limits"): defaults and ranges */
static void
test_rate_keys(void)
{
	static const struct {
		const char *ov, *want; /* want NULL: refused */
	} rows[] = {
	    {"state_dir=/s", "rate.connections_per_ip = 60\n"},
	    {"state_dir=/s", "rate.unknown_recipients = 10\n"},
	    {"state_dir=/s", "rate.penalty = 900\n"},
	    {"state_dir=/s", "rate.exempt_networks = 127.0.0.0/8,::1\n"},
	    {"rate.exempt_networks=", "rate.exempt_networks = \n"},
	    {"rate.exempt_networks=10.0.0.0/8 2001:db8::/32",
		"rate.exempt_networks = 10.0.0.0/8,2001:db8::/32\n"},
	    {"rate.exempt_networks=10.0.0.0/33", NULL},
	    {"rate.messages_per_user_hour=0",
		"rate.messages_per_user_hour = 0\n"},
	    {"rate.recipients_per_user_day=5000",
		"rate.recipients_per_user_day = 5000\n"},
	    {"rate.penalty=1h", "rate.penalty = 3600\n"},
	    {"rate.penalty=8d", NULL},
	    {"rate.connections_per_ip=-1", NULL},
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *ov[] = {"state_dir=/s", (char *)(uintptr_t)rows[i].ov};
		char err[512];
		struct lines l = {"", 0, 0};
		struct conf *c = conf_load(NULL, ov, 2, err, sizeof(err));

		t_case(rows[i].ov);
		T_CHECK((c != NULL) == (rows[i].want != NULL));
		if (c == NULL)
			continue;
		conf_dump(c, collect, &l);
		T_CHECK(strstr(l.text, rows[i].want) != NULL);
		conf_free(c);
	}
}

/* listen.metrics: loopback only unless metrics.allow_remote */
static void
test_metrics_keys(void)
{
	static const struct {
		const char *ov1, *ov2, *want; /* want NULL: refused */
	} rows[] = {
	    {"listen.metrics=off", NULL, "listen.metrics = off\n"},
	    {"listen.metrics=127.0.0.1:9125", NULL,
		"listen.metrics = 127.0.0.1:9125\n"},
	    {"listen.metrics=127.9.9.9:9125", NULL,
		"listen.metrics = 127.9.9.9:9125\n"},
	    {"listen.metrics=[::1]:9125", NULL,
		"listen.metrics = [::1]:9125\n"},
	    {"listen.metrics=192.0.2.1:9125", NULL, NULL},
	    {"listen.metrics=[2001:db8::1]:9125", NULL, NULL},
	    {"listen.metrics=0.0.0.0:9125", NULL, NULL},
	    {"listen.metrics=localhost:9125", NULL, NULL}, /* not a number */
	    {"listen.metrics=127.0.0.1", NULL, NULL},	   /* no port */
	    {"listen.metrics=0.0.0.0:9125", "metrics.allow_remote=yes",
		"listen.metrics = 0.0.0.0:9125\n"},
	    {"listen.metrics=192.0.2.1:9125", "metrics.allow_remote=no", NULL},
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *ov[] = {"state_dir=/s", (char *)(uintptr_t)rows[i].ov1,
		    (char *)(uintptr_t)rows[i].ov2};
		char err[512];
		struct lines l = {"", 0, 0};
		struct conf *c = conf_load(
		    NULL, ov, rows[i].ov2 != NULL ? 3 : 2, err, sizeof(err));

		t_case(rows[i].ov1);
		T_CHECK((c != NULL) == (rows[i].want != NULL));
		if (c == NULL) {
			T_CHECK(strstr(err, "listen.metrics") != NULL);
			continue;
		}
		conf_dump(c, collect, &l);
		T_CHECK(strstr(l.text, rows[i].want) != NULL);
		conf_free(c);
	}
}

/* sts.* and tls.ca_file / ca_path: defaults, values, ranges */
static void
test_sts_keys(void)
{
	static const struct {
		const char *ov, *want; /* want NULL: refused */
	} rows[] = {
	    {"state_dir=/s", "sts.enable = yes\n"},
	    {"state_dir=/s", "sts.cache_entries = 1000\n"},
	    {"state_dir=/s", "sts.fetch_timeout = 20\n"},
	    {"sts.enable=no", "sts.enable = no\n"},
	    {"sts.cache_entries=5", "sts.cache_entries = 5\n"},
	    {"sts.cache_entries=0", NULL},
	    {"sts.fetch_timeout=1m", "sts.fetch_timeout = 60\n"},
	    {"sts.fetch_timeout=301", NULL},
	    {"tls.ca_file=/etc/tern/ca.pem",
		"tls.ca_file = /etc/tern/ca.pem\n"},
	    {"tls.ca_path=/etc/ssl/certs", "tls.ca_path = /etc/ssl/certs\n"},
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *ov[] = {"state_dir=/s", (char *)(uintptr_t)rows[i].ov};
		char err[512];
		struct lines l = {"", 0, 0};
		struct conf *c = conf_load(NULL, ov, 2, err, sizeof(err));

		t_case(rows[i].ov);
		T_CHECK((c != NULL) == (rows[i].want != NULL));
		if (c == NULL) {
			T_CHECK(strstr(err, "sts.") != NULL);
			continue;
		}
		conf_dump(c, collect, &l);
		T_CHECK(strstr(l.text, rows[i].want) != NULL);
		if (strstr(l.text, rows[i].want) == NULL)
			fprintf(stderr, "%s", l.text);
		conf_free(c);
	}
}

/* acme.*: off by default; what it needs with it; defaults and ranges */
static void
test_acme_keys(void)
{
#define ACME_ON "acme.directory=https://acme.example/dir"
#define PAIR	"tls.cert=/c.pem", "tls.key=/k.pem"
	static const struct {
		const char *ov[5];
		bool ok;	  /* accepted: the dump holds want */
		const char *want; /* else the error does */
	} rows[] = {
	    {{"state_dir=/s"}, true, "acme.directory = \n"},
	    {{"state_dir=/s"}, true, "acme.renew_before = 2592000\n"},
	    {{"state_dir=/s"}, true, "acme.retry_first = 600\n"},
	    {{ACME_ON, PAIR, "acme.http=0.0.0.0:80"}, true,
		"acme.domains = mx.test\n"},
	    {{ACME_ON, PAIR, "acme.webroot=/var/www"}, true,
		"acme.webroot = /var/www\n"},
	    {{ACME_ON, PAIR, "acme.http=127.0.0.1:80",
		 "acme.domains=a.example b.example"},
		true, "acme.domains = a.example,b.example\n"},
	    {{ACME_ON, "acme.http=0.0.0.0:80"}, false,
		"set tls.cert and tls.key"},
	    {{ACME_ON, PAIR}, false, "set one of acme.http"},
	    {{ACME_ON, PAIR, "acme.http=0.0.0.0:80", "acme.webroot=/w"}, false,
		"set one of acme.http"},
	    {{"acme.directory=http://acme.example/", PAIR,
		 "acme.http=0.0.0.0:80"},
		false, "not an https: URL"},
	    {{ACME_ON, PAIR, "acme.http=0.0.0.0:80", "acme.email=nobody"},
		false, "not an address"},
	    {{"acme.renew_before=1h"}, false, "acme.renew_before"},
	    {{"acme.retry_first=2d"}, false, "acme.retry_first"},
	    {{"acme.domains=not..name"}, false, "acme.domains"},
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *ov[7] = {"state_dir=/s", "hostname=mx.test"};
		int n = 2;
		char err[512] = "";
		struct lines l = {"", 0, 0};
		struct conf *c;

		for (int j = 0; j < 5 && rows[i].ov[j] != NULL; j++)
			ov[n++] = (char *)(uintptr_t)rows[i].ov[j];
		c = conf_load(NULL, ov, n, err, sizeof(err));
		t_case(rows[i].ov[0]);
		T_CHECK((c != NULL) == rows[i].ok);
		if (c == NULL) {
			T_CHECK(strstr(err, rows[i].want) != NULL);
			if (strstr(err, rows[i].want) == NULL)
				fprintf(stderr, "  err: %s\n", err);
			continue;
		}
		conf_dump(c, collect, &l);
		T_CHECK(strstr(l.text, rows[i].want) != NULL);
		if (strstr(l.text, rows[i].want) == NULL)
			fprintf(stderr, "%s", l.text);
		conf_free(c);
	}
#undef ACME_ON
#undef PAIR
}

static void
test_log_keys(void)
{
	static const struct {
		const char *ov, *want; /* want NULL: refused */
	} rows[] = {
	    {"log.format=kv", "log.format = kv\n"},
	    {"log.format=JSON", "log.format = json\n"},
	    {"log.format=xml", NULL},
	    {"log.target=stderr", "log.target = stderr\n"},
	    {"log.target=syslog", "log.target = syslog\n"},
	    {"log.target=Journald", "log.target = journald\n"},
	    {"log.target=file", NULL},
	    {"log.socket=/run/x.sock", "log.socket = /run/x.sock\n"},
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *ov[] = {"state_dir=/s", (char *)(uintptr_t)rows[i].ov};
		char err[512];
		struct lines l = {"", 0, 0};
		struct conf *c = conf_load(NULL, ov, 2, err, sizeof(err));

		t_case(rows[i].ov);
		T_CHECK((c != NULL) == (rows[i].want != NULL));
		if (c == NULL) {
			T_CHECK(strstr(err, "log.") != NULL);
			continue;
		}
		conf_dump(c, collect, &l);
		T_CHECK(strstr(l.text, rows[i].want) != NULL);
		conf_free(c);
	}
	t_case("log defaults");
	{
		char *ov[] = {"state_dir=/s"};
		char err[512];
		struct conf *c = conf_load(NULL, ov, 1, err, sizeof(err));

		T_CHECK(c != NULL);
		if (c != NULL) {
			T_CHECK_STR(c->log_format, "kv");
			T_CHECK_STR(c->log_target, "stderr");
			T_CHECK(c->log_socket == NULL);
		}
		conf_free(c);
	}
}

static void
test_dump(void)
{
	char *ov[] = {"domains=a.example,b.example", "state_dir=/s",
	    "listen.smtp=off", "relay.networks=10.0.0.0/8 ::1"};
	char err[512];
	struct lines l = {"", 0, 0};
	struct conf *c = conf_load(NULL, ov, 4, err, sizeof(err));

	T_CHECK(c != NULL);
	if (c == NULL)
		return;
	conf_dump(c, collect, &l);
	T_CHECK_INT(l.n, 125);
	T_CHECK(strstr(l.text, "tlsrpt.reports = no\n") != NULL);
	T_CHECK(strstr(l.text, "tlsrpt.report_interval = 86400\n") != NULL);
	T_CHECK(strstr(l.text, "tlsrpt.max_domains = 10000\n") != NULL);
	T_CHECK(strstr(l.text, "milter.servers = \n") != NULL);
	T_CHECK(strstr(l.text, "policy.timeout = 100\n") != NULL);
	T_CHECK(strstr(l.text, "policy.default_action = tempfail\n") != NULL);
	T_CHECK(strstr(l.text, "screen.greet_pause = 0\n") != NULL);
	T_CHECK(strstr(l.text, "screen.dnsbl = \n") != NULL);
	T_CHECK(strstr(l.text, "screen.threshold = 1\n") != NULL);
	T_CHECK(strstr(l.text, "screen.cache_ttl = 3600\n") != NULL);
	T_CHECK(strstr(l.text, "screen.dns_timeout = 5\n") != NULL);
	T_CHECK(strstr(l.text, "milter.default_action = tempfail\n") != NULL);
	T_CHECK(strstr(l.text, "milter.connect_timeout = 30\n") != NULL);
	T_CHECK(strstr(l.text, "milter.command_timeout = 30\n") != NULL);
	T_CHECK(strstr(l.text, "milter.eom_timeout = 300\n") != NULL);
	T_CHECK(strstr(l.text, "arc.verify = yes\n") != NULL);
	T_CHECK(strstr(l.text, "queue.log = yes\n") != NULL);
	T_CHECK(strstr(l.text, "arc.seal = yes\n") != NULL);
	T_CHECK(strstr(l.text, "dns.cache_max_ttl = 300\n") != NULL);
	T_CHECK(strstr(l.text, "dns.cache_entries = 4096\n") != NULL);
	T_CHECK(strstr(l.text, "dmarc.reports = no\n") != NULL);
	T_CHECK(strstr(l.text, "dmarc.report_interval = 86400\n") != NULL);
	T_CHECK(strstr(l.text, "dmarc.report_max_rows = 100000\n") != NULL);
	T_CHECK(strstr(l.text, "dmarc.enforce = yes\n") != NULL);
	T_CHECK(strstr(l.text, "dkim.verify = yes\n") != NULL);
	T_CHECK(strstr(l.text, "dkim.sign = yes\n") != NULL);
	T_CHECK(strstr(l.text, "dkim.expire = 604800\n") != NULL);
	T_CHECK(strstr(l.text, "limits.connections_per_uid = 20\n") != NULL);
	T_CHECK(strstr(l.text, "submission.local_senders = any\n") != NULL);
	T_CHECK(strstr(l.text, "limits.dsn_per_client = 30\n") != NULL);
	T_CHECK(strstr(l.text, "limits.dsn_per_domain = 100\n") != NULL);
	T_CHECK(strstr(l.text, "domains = a.example, b.example\n") != NULL);
	T_CHECK(strstr(l.text, "sandbox = yes\n") != NULL);
	T_CHECK(strstr(l.text, "sandbox_write = \n") != NULL);
	T_CHECK(strstr(l.text, "state_dir = /s\n") != NULL);
	T_CHECK(strstr(l.text, "tables.users = sqlite:/s/tern.db\n") != NULL);
	T_CHECK(strstr(l.text, "listen.smtp = off\n") != NULL);
	T_CHECK(strstr(l.text, "listen.submissions = off\n") != NULL);
	T_CHECK(strstr(l.text, "user = \n") != NULL);
	T_CHECK(strstr(l.text, "limits.message_size = 26214400\n") != NULL);
	T_CHECK(strstr(l.text, "limits.inflight_memory = 268435456\n") != NULL);
	T_CHECK(
	    strstr(l.text, "limits.inflight_scratch = 4294967296\n") != NULL);
	T_CHECK(strstr(l.text, "timeout.shutdown = 30\n") != NULL);
	T_CHECK(strstr(l.text, "relay.networks = 10.0.0.0/8,::1\n") != NULL);
	T_CHECK(strstr(l.text, "log.level = info\n") != NULL);
	T_CHECK(strstr(l.text, "spf.check = yes\n") != NULL);
	T_CHECK(strstr(l.text, "spf.reject_fail = no\n") != NULL);
	/* the SRS domain defaults to the first local domain */
	T_CHECK(strstr(l.text, "srs.enable = yes\n") != NULL);
	T_CHECK(strstr(l.text, "srs.domain = a.example\n") != NULL);
	T_CHECK(strstr(l.text, "srs.max_age = 21\n") != NULL);
	T_CHECK(strncmp(l.text, "hostname = ", 11) == 0);
	conf_free(c);
}

/*
 * relay.smarthost_tls: the effective mode for each combination; verify
 * whenever credentials are set and the mode is not named.
 */
static void
test_smarthost_tls(void)
{
	static const struct {
		const char *ov[3];
		enum conf_smarthost_tls want;
	} rows[] = {
	    {{NULL}, CONF_SMTLS_MAY},
	    {{"relay.smarthost_user=u"}, CONF_SMTLS_VERIFY},
	    {{"relay.smarthost_user=u", "relay.smarthost_tls=encrypt"},
		CONF_SMTLS_ENCRYPT},
	    {{"relay.smarthost_user=u", "relay.smarthost_tls=may"},
		CONF_SMTLS_MAY},
	    {{"relay.smarthost_tls=VERIFY"}, CONF_SMTLS_VERIFY},
	    {{"relay.smarthost_tls=verify", "relay.smarthost_tls="},
		CONF_SMTLS_MAY},
	    /* the deprecated key: at least encrypt, never weaker than the
	       default for credentials */
	    {{"relay.smarthost_require_tls=yes"}, CONF_SMTLS_ENCRYPT},
	    {{"relay.smarthost_require_tls=yes", "relay.smarthost_user=u"},
		CONF_SMTLS_VERIFY},
	    {{"relay.smarthost_require_tls=yes", "relay.smarthost_tls=verify"},
		CONF_SMTLS_VERIFY},
	};
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char err[512] = "", *ov[3];
		size_t n = 0;
		struct conf *c;

		while (n < 3 && rows[i].ov[n] != NULL) {
			ov[n] = (char *)(uintptr_t)rows[i].ov[n];
			n++;
		}
		t_case(n > 0 ? rows[i].ov[n - 1] : "defaults");
		c = conf_load(NULL, ov, n, err, sizeof(err));
		T_CHECK(c != NULL);
		if (c == NULL) {
			fprintf(stderr, "  %s\n", err);
			continue;
		}
		T_CHECK_STR(conf_smarthost_tls_name(c->relay_smarthost_tls),
		    conf_smarthost_tls_name(rows[i].want));
		conf_free(c);
	}
}

/* smtps: before the host; the CA file is made absolute and dumped. */
static void
test_smarthost_forms(void)
{
	static const char *const ok[] = {"smtps:relay.example.net",
	    "SMTPS:relay.example.net:1465", "smtps:[2001:db8::1]:465",
	    "smtps:192.0.2.1", "relay.example.net:587"};
	char *ov[] = {
	    "relay.smarthost_ca_file=ca.pem", "relay.smarthost_user=u", NULL};
	char err[512], want[PATH_MAX + 64];
	struct lines l = {"", 0, 0};
	struct conf *c;
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		char opt[128];

		t_case(ok[i]);
		snprintf(opt, sizeof(opt), "relay.smarthost=%s", ok[i]);
		ov[2] = opt;
		c = conf_load(NULL, ov + 2, 1, err, sizeof(err));
		T_CHECK(c != NULL);
		if (c != NULL)
			T_CHECK_STR(c->relay_smarthost, ok[i]);
		conf_free(c);
	}
	t_case("ca_file and dump");
	c = conf_load(NULL, ov, 2, err, sizeof(err));
	T_CHECK(c != NULL);
	if (c == NULL)
		return;
	snprintf(want, sizeof(want), "%s/ca.pem", cwd);
	T_CHECK_STR(c->relay_smarthost_ca_file, want);
	conf_dump(c, collect, &l);
	T_CHECK(strstr(l.text, "relay.smarthost_tls = verify\n") != NULL);
	conf_free(c);
}

static void
test_split_hostport(void)
{
	static const struct {
		const char *in;
		bool need_port;
		int ret;
		const char *host;
		unsigned port;
	} cases[] = {
	    {"127.0.0.1:25", true, 0, "127.0.0.1", 25},
	    {"[::1]:587", true, 0, "::1", 587},
	    {"mx.example.org:2525", true, 0, "mx.example.org", 2525},
	    {"mx.example.org", false, 0, "mx.example.org", 0},
	    {"mx.example.org", true, -1, NULL, 0},
	    {"[::1]", false, 0, "::1", 0},
	    {"::1", false, 0, "::1", 0},
	    {"::1", true, -1, NULL, 0},
	    {"[::1]x", false, -1, NULL, 0},
	    {"[1.2.3.4]:25", true, -1, NULL, 0},
	    {"1.2.3.4:65536", true, -1, NULL, 0},
	    {"1.2.3.4:", true, -1, NULL, 0},
	    {":25", true, -1, NULL, 0},
	    {"", false, -1, NULL, 0},
	    {"a b:25", true, -1, NULL, 0},
	};
	char host[256];
	unsigned port;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r;

		t_case(cases[i].in);
		r = conf_split_hostport(
		    cases[i].in, host, sizeof(host), &port, cases[i].need_port);
		T_CHECK_INT(r, cases[i].ret);
		if (r == 0 && cases[i].ret == 0) {
			T_CHECK_STR(host, cases[i].host);
			T_CHECK_INT(port, cases[i].port);
		}
	}
	t_case("host buffer too small");
	T_CHECK_INT(
	    conf_split_hostport("mx.example.org:25", host, 4, &port, true), -1);
}

/* [dkim] and [dmarc]: defaults, and dmarc.override checked at load time */
static void
test_mailauth_keys(void)
{
	char *good[] = {"dmarc.override=a.example:none, *.b.example:reject",
	    "dmarc.enforce=no", "dkim.verify=no",
	    "dmarc.public_suffix_list=/x/psl.dat"};
	char *bad[] = {"dmarc.override=a.example:maybe"};
	char *bad2[] = {"dmarc.override=a.example"};
	char err[512] = "";
	struct conf *c = conf_load(NULL, NULL, 0, err, sizeof(err));

	T_CHECK(c != NULL);
	if (c != NULL) {
		T_CHECK(c->dkim_verify && c->dmarc_check && c->dmarc_enforce);
		T_CHECK(c->dmarc_override == NULL);
		T_CHECK(c->dmarc_public_suffix_list == NULL);
		conf_free(c);
	}
	c = conf_load(NULL, good, 4, err, sizeof(err));
	T_CHECK(c != NULL);
	if (c != NULL) {
		T_CHECK(!c->dkim_verify && c->dmarc_check && !c->dmarc_enforce);
		T_CHECK_STR(
		    c->dmarc_override, "a.example:none, *.b.example:reject");
		T_CHECK_STR(c->dmarc_public_suffix_list, "/x/psl.dat");
		conf_free(c);
	}
	T_CHECK(conf_load(NULL, bad, 1, err, sizeof(err)) == NULL);
	T_CHECK(strstr(err, "dmarc.override") != NULL);
	T_CHECK(strstr(err, "quarantine") != NULL);
	T_CHECK(conf_load(NULL, bad2, 1, err, sizeof(err)) == NULL);
	T_CHECK(strstr(err, "domain:policy") != NULL);
}

/* ---- tern config check and reload (conf_check, conf_key_*) ---------- */

struct collected {
	char lines[8][512];
	size_t n;
};

static void
collect_error(void *ctx, const char *msg)
{
	struct collected *c = ctx;

	if (c->n < 8)
		snprintf(c->lines[c->n], sizeof(c->lines[0]), "%s", msg);
	c->n++;
}

static void
test_check_every_error(void)
{
	const char *path = write_file("check.conf", "domains = example.org\n"
						    "[limits]\n"
						    "message_sise = 10m\n"
						    "recipients = 0\n"
						    "smtp = 127.0.0.1:25\n"
						    "frobnicate = 1\n");
	struct collected got = {0};
	char err[512], want[PATH_MAX + 200];
	struct conf *c;

	t_case("every error, with its line and a guess");
	c = conf_check(path, NULL, 0, collect_error, &got, err, sizeof(err));
	T_CHECK(c == NULL);
	T_CHECK_INT(got.n, 4);
	snprintf(want, sizeof(want),
	    "%s:3: unknown key \"limits.message_sise\" (did you mean "
	    "limits.message_size?)",
	    path);
	T_CHECK_STR(got.lines[0], want);
	snprintf(want, sizeof(want),
	    "%s:4: limits.recipients: out of range (1..100000)", path);
	T_CHECK_STR(got.lines[1], want);
	/* the same name in another section */
	snprintf(want, sizeof(want),
	    "%s:5: unknown key \"limits.smtp\" (did you mean listen.smtp?)",
	    path);
	T_CHECK_STR(got.lines[2], want);
	/* nothing close: no guess */
	snprintf(want, sizeof(want), "%s:6: unknown key \"limits.frobnicate\"",
	    path);
	T_CHECK_STR(got.lines[3], want);
	/* conf_load stops at the first, and says the same */
	snprintf(want, sizeof(want), "%s", got.lines[0]);
	T_CHECK_STR(err, want);

	t_case("a good file: nothing reported");
	memset(&got, 0, sizeof(got));
	path = write_file("check2.conf", "domains = example.org\n");
	c = conf_check(path, NULL, 0, collect_error, &got, err, sizeof(err));
	T_CHECK(c != NULL);
	T_CHECK_INT(got.n, 0);
	conf_free(c);
}

static void
test_key_keep(void)
{
	char err[512];
	struct conf *a = load_text("domains = a.example, b.example\n"
				   "[limits]\nmessage_size = 1m\n"
				   "[relay]\nsmarthost = relay.example\n"
				   "[queue]\nlog = no\n",
	    NULL, 0, err, sizeof(err));
	struct conf *b = load_text("domains = c.example\n"
				   "[limits]\nmessage_size = 2m\n"
				   "[queue]\nlog = yes\n",
	    NULL, 0, err, sizeof(err));

	t_case("differs and keep, per type");
	T_CHECK(a != NULL && b != NULL);
	if (a == NULL || b == NULL)
		goto out;
	T_CHECK(conf_key_differs(a, b, "domains"));
	T_CHECK(conf_key_differs(a, b, "limits.message_size"));
	T_CHECK(conf_key_differs(a, b, "relay.smarthost"));
	T_CHECK(conf_key_differs(a, b, "queue.log"));
	T_CHECK(!conf_key_differs(a, b, "limits.recipients"));
	T_CHECK(!conf_key_differs(a, a, "domains"));
	conf_key_keep(b, a, "domains");
	conf_key_keep(b, a, "limits.message_size");
	conf_key_keep(b, a, "relay.smarthost");
	conf_key_keep(b, a, "queue.log");
	T_CHECK_INT(b->ndomains, 2);
	T_CHECK_STR(b->domains[1], "b.example");
	T_CHECK_INT(b->message_size, 1048576);
	T_CHECK_STR(b->relay_smarthost, "relay.example");
	T_CHECK(!b->queue_log);
	T_CHECK(!conf_key_differs(a, b, "domains"));
	T_CHECK(!conf_key_differs(a, b, "relay.smarthost"));
	/* an unset string kept: NULL again */
	conf_key_keep(a, b, "relay.smarthost_user");
	T_CHECK(a->relay_smarthost_user == NULL);
out:
	conf_free(a);
	conf_free(b);
}

int
main(void)
{
	char tmpl[] = "/tmp/test_conf.XXXXXX";

	if (mkdtemp(tmpl) == NULL || getcwd(cwd, sizeof(cwd)) == NULL)
		abort();
	snprintf(tmpdir, sizeof(tmpdir), "%s", tmpl);
	unsetenv("TERN_CONFIG");
	T_RUN(test_defaults);
	T_RUN(test_full_file);
	T_RUN(test_overrides);
	T_RUN(test_explicit_users);
	T_RUN(test_relative_state_dir);
	T_RUN(test_root_cwd);
	T_RUN(test_file_errors);
	T_RUN(test_file_special);
	T_RUN(test_continuation);
	T_RUN(test_override_errors);
	T_RUN(test_value_forms);
	T_RUN(test_from_args);
	T_RUN(test_dump);
	T_RUN(test_dump_masks_passwords);
	T_RUN(test_split_hostport);
	T_RUN(test_smarthost_tls);
	T_RUN(test_smarthost_forms);
	T_RUN(test_mailauth_keys);
	T_RUN(test_milter_keys);
	T_RUN(test_rate_keys);
	T_RUN(test_metrics_keys);
	T_RUN(test_acme_keys);
	T_RUN(test_tls_policy);
	test_sts_keys();
	T_RUN(test_log_keys);
	T_RUN(test_check_every_error);
	T_RUN(test_key_keep);
	{
		char cmd[PATH_MAX + 16];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tmpdir);
	}
	return t_summary();
}
