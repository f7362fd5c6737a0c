/*
 * test_metrics: the registry and its text (src/metrics/metrics.c): label
 * escaping and cleaning tables, the replies a session's output counts
 * (continuations, enhanced codes valid and not, CRLF and bare LF), the
 * histogram's cumulative buckets, sum and count, the bounds of the two
 * network-labelled families (reply slots, busiest destinations), and a
 * render that fits the format's line grammar.
 */
#include <pthread.h>
#include <stdio.h>

#include "metrics/metrics.h"
#include "t.h"
#include "util/util.h"

/* the exposition of the registry, rendered afresh */
static struct buf page;

static const char *
render(void)
{
	buf_free(&page);
	buf_init(&page, 1 << 20);
	if (metrics_render(&page) != 0)
		return "";
	return page.data;
}

/* does the page hold this exact line? */
static bool
has_line(const char *line)
{
	const char *p = render();
	size_t n = strlen(line);

	for (; (p = strstr(p, line)) != NULL; p += n)
		if ((p == page.data || p[-1] == '\n') && p[n] == '\n')
			return true;
	return false;
}

static const struct {
	const char *in, *out;
} escapes[] = {
    {"plain", "plain"},
    {"a\"b", "a\\\"b"},
    {"back\\slash", "back\\\\slash"},
    {"new\nline", "new\\nline"},
    {"\\\"\n", "\\\\\\\"\\n"},
    {"", ""},
};

static void
test_escape(void)
{
	size_t i;

	for (i = 0; i < sizeof(escapes) / sizeof(escapes[0]); i++) {
		struct buf b;

		t_case(escapes[i].in);
		buf_init(&b, 64);
		T_CHECK(metrics_escape_label(
			    &b, escapes[i].in, strlen(escapes[i].in)) == 0);
		T_CHECK_STR(b.data != NULL ? b.data : "", escapes[i].out);
		buf_free(&b);
	}
	t_case("escape past the buffer's maximum fails");
	{
		struct buf b;

		buf_init(&b, 4);
		T_CHECK(metrics_escape_label(&b, "\"\"\"", 3) == -1);
		buf_free(&b);
	}
}

static void
test_clean(void)
{
	char out[METRICS_LABEL_MAX + 1], big[METRICS_LABEL_MAX + 20];

	t_case("clean: lower case, controls and 8-bit replaced");
	metrics_label_clean(out, "Ex\x01 \xc3\xa9.ORG", 10);
	T_CHECK_STR(out, "ex____.org");
	t_case("clean: cut to METRICS_LABEL_MAX");
	memset(big, 'a', sizeof(big));
	metrics_label_clean(out, big, sizeof(big));
	T_CHECK(strlen(out) == METRICS_LABEL_MAX);
}

static const struct {
	const char *out; /* a session's output */
	const char *line;
	bool present;
} replies[] = {
    {"250 2.0.0 Ok\r\n", "{class=\"2xx\",enhanced=\"2.0.0\"} 1", true},
    {"250-big\r\n250-PIPELINING\r\n250 SMTPUTF8\r\n",
	"{class=\"2xx\",enhanced=\"none\"} 1", true},
    {"550 5.1.1 No such user\r\n550 5.1.1 again\r\n",
	"{class=\"5xx\",enhanced=\"5.1.1\"} 2", true},
    {"451 4.7.24 SPF\n", "{class=\"4xx\",enhanced=\"4.7.24\"} 1", true},
    /* the class of the code and of the enhanced code differ: "none" */
    {"550 4.1.1 odd\r\n", "{class=\"5xx\",enhanced=\"none\"} 1", true},
    {"554 5.1234.1 long\r\n", "{class=\"5xx\",enhanced=\"none\"} 1", true},
    {"221 2.0.0\r\n", "{class=\"2xx\",enhanced=\"2.0.0\"} 1", true},
    {"354 End data with <CR><LF>.<CR><LF>\r\n",
	"{class=\"3xx\",enhanced=\"none\"} 1", true},
    {"599x\r\nhello\r\n100 1.0.0 x\r\n", "tern_smtp_replies_total{", false},
    {"421 4.7.0a\r\n", "{class=\"4xx\",enhanced=\"none\"} 1", true},
};

static void
test_replies(void)
{
	size_t i;
	char line[128];

	for (i = 0; i < sizeof(replies) / sizeof(replies[0]); i++) {
		t_case(replies[i].out);
		metrics_reset();
		metrics_replies(replies[i].out, strlen(replies[i].out));
		if (!replies[i].present) {
			T_CHECK(strstr(render(), replies[i].line) == NULL);
			continue;
		}
		T_CHECK(str_fmt(line, sizeof(line), "tern_smtp_replies_total%s",
			    replies[i].line) == 0);
		T_CHECK(has_line(line));
	}
}

static void
test_reply_bound(void)
{
	char out[64];
	unsigned i;

	t_case("reply slots: the code past the bound goes to other");
	metrics_reset();
	for (i = 0; i < METRICS_REPLY_SLOTS + 5; i++) {
		T_CHECK(str_fmt(out, sizeof(out), "550 5.%u.%u x\r\n", i / 100,
			    i % 100) == 0);
		metrics_replies(out, strlen(out));
	}
	T_CHECK(has_line("tern_smtp_replies_total{class=\"5xx\","
			 "enhanced=\"other\"} 5"));
	T_CHECK(has_line("tern_smtp_replies_total{class=\"5xx\","
			 "enhanced=\"5.0.0\"} 1"));
}

static void
test_counters(void)
{
	t_case("connections, refusals, received, auth, tls, dns");
	metrics_reset();
	metrics_conn_open(METRICS_L_SMTP);
	metrics_conn_open(METRICS_L_SMTP);
	metrics_conn_close(METRICS_L_SMTP);
	metrics_conn_refused(METRICS_R_PER_IP);
	metrics_message_received(METRICS_L_SUBMISSION);
	metrics_auth("plain", true);
	metrics_auth("CRAM-MD5", false);
	metrics_tls(METRICS_TLS_OUT, "TLSv1.3", METRICS_V_NO);
	metrics_tls(METRICS_TLS_IN, "SSLv3", METRICS_V_NONE);
	metrics_dns(METRICS_DNS_TXT, METRICS_DNSR_NXDOMAIN);
	metrics_expired();
	metrics_gauge_set(METRICS_G_QUEUE_MESSAGES, 7);
	metrics_gauge_set(METRICS_G_QUEUE_OLDEST_AGE, -1);
	T_CHECK(has_line("tern_connections_current{listener=\"smtp\"} 1"));
	T_CHECK(has_line("tern_connections_total{listener=\"smtp\"} 2"));
	T_CHECK(has_line("tern_connections_total{listener=\"local\"} 0"));
	T_CHECK(has_line("tern_connections_refused_total{reason="
			 "\"connections_per_ip\"} 1"));
	T_CHECK(has_line(
	    "tern_messages_received_total{listener=\"submission\"} 1"));
	T_CHECK(has_line("tern_auth_total{mechanism=\"PLAIN\","
			 "result=\"success\"} 1"));
	T_CHECK(has_line("tern_auth_total{mechanism=\"other\","
			 "result=\"failure\"} 1"));
	T_CHECK(has_line("tern_tls_sessions_total{direction=\"out\","
			 "version=\"TLSv1.3\",verified=\"no\"} 1"));
	T_CHECK(has_line("tern_tls_sessions_total{direction=\"in\","
			 "version=\"other\",verified=\"none\"} 1"));
	T_CHECK(has_line(
	    "tern_dns_lookups_total{type=\"txt\",result=\"nxdomain\"} 1"));
	T_CHECK(has_line("tern_queue_messages 7"));
	T_CHECK(has_line("tern_messages_expired_total 1"));
	T_CHECK(has_line("tern_queue_oldest_message_age_seconds -1"));
	T_CHECK(has_line("# TYPE tern_queue_messages gauge"));
	T_CHECK(has_line("# TYPE tern_auth_total counter"));
}

static void
test_histogram(void)
{
	t_case("histogram: cumulative buckets, +Inf, sum, count");
	metrics_reset();
	metrics_commit_latency(800);	  /* <= 0.001 */
	metrics_commit_latency(1000);	  /* <= 0.001, on the bound */
	metrics_commit_latency(30000);	  /* <= 0.05 */
	metrics_commit_latency(20000000); /* past 10 s */
	T_CHECK(has_line("# TYPE tern_commit_latency_seconds histogram"));
	T_CHECK(has_line("tern_commit_latency_seconds_bucket{le=\"0.001\"} 2"));
	T_CHECK(has_line("tern_commit_latency_seconds_bucket{le=\"0.025\"} 2"));
	T_CHECK(has_line("tern_commit_latency_seconds_bucket{le=\"0.05\"} 3"));
	T_CHECK(has_line("tern_commit_latency_seconds_bucket{le=\"10\"} 3"));
	T_CHECK(has_line("tern_commit_latency_seconds_bucket{le=\"+Inf\"} 4"));
	T_CHECK(has_line("tern_commit_latency_seconds_sum 20.031800"));
	T_CHECK(has_line("tern_commit_latency_seconds_count 4"));
	t_case("histogram with a label");
	metrics_delivery(METRICS_T_LMTP, METRICS_O_DELIVERED, NULL, 2000000);
	T_CHECK(has_line("tern_delivery_latency_seconds_bucket{transport="
			 "\"lmtp\",le=\"5\"} 1"));
	T_CHECK(has_line("tern_delivery_latency_seconds_bucket{transport="
			 "\"lmtp\",le=\"1\"} 0"));
	T_CHECK(has_line("tern_delivery_latency_seconds_count{transport="
			 "\"lmtp\"} 1"));
	T_CHECK(
	    has_line("tern_messages_delivered_total{transport=\"lmtp\"} 1"));
	t_case("lookup buckets below a millisecond");
	metrics_table_lookup_latency(60);
	T_CHECK(has_line("tern_table_lookup_seconds_bucket{le=\"0.0001\"} 1"));
	T_CHECK(has_line("tern_table_lookup_seconds_bucket{le=\"0.00005\"} 0"));
}

static void
test_destinations(void)
{
	char d[64];
	unsigned i, k;
	const char *p;
	size_t named = 0;

	t_case("destinations: busiest named, the rest other, label escaped");
	metrics_reset();
	/* twenty quiet domains, then one busy one */
	for (i = 0; i < 20; i++) {
		T_CHECK(str_fmt(d, sizeof(d), "quiet%u.example", i) == 0);
		metrics_delivery(METRICS_T_SMTP, METRICS_O_DELIVERED, d, 0);
	}
	for (k = 0; k < 50; k++)
		metrics_delivery(
		    METRICS_T_SMTP, METRICS_O_DEFERRED, "Busy.\"Example\"", 0);
	T_CHECK(has_line("tern_destination_deferrals_total{domain="
			 "\"busy.\\\"example\\\"\"} 48"));
	T_CHECK(has_line(
	    "tern_destination_deliveries_total{domain=\"quiet1.example\"} 1"));
	T_CHECK(
	    has_line("tern_destination_deliveries_total{domain=\"other\"} 10"));
	T_CHECK(
	    has_line("tern_destination_deferrals_total{domain=\"other\"} 2"));
	for (p = render(); (p = strstr(p, "tern_destination_deliveries_total{"
					  "domain=\"")) != NULL;
	     p++)
		named++;
	T_CHECK(named == METRICS_DEST_TOP + 1); /* the named and other */
	t_case("a bounce is not a destination's deferral");
	metrics_reset();
	metrics_delivery(METRICS_T_SMTP, METRICS_O_BOUNCED, "x.example", 0);
	T_CHECK(has_line("tern_messages_bounced_total{transport=\"smtp\"} 1"));
	T_CHECK(strstr(render(), "x.example") == NULL);
}

/* Threads bump the same series at once: no increment is lost. */
#define HAMMER_THREADS 4
#define HAMMER_ROUNDS  20000

static pthread_barrier_t hammer_start;

static void *
hammer(void *arg)
{
	unsigned i;

	(void)arg;
	pthread_barrier_wait(&hammer_start); /* all at once */
	/* a tight loop first: a plain load and store would lose some */
	for (i = 0; i < 10 * HAMMER_ROUNDS; i++)
		metrics_message_received(METRICS_L_LOCAL);
	for (i = 0; i < HAMMER_ROUNDS; i++) {
		metrics_conn_open(METRICS_L_SMTP);
		metrics_table_lookup_latency(i % 3000);
		metrics_replies("250 2.0.0 ok\r\n", 14);
		metrics_delivery(METRICS_T_SMTP, METRICS_O_DEFERRED,
		    i % 2 ? "a.example" : "b.example", 0);
		metrics_conn_close(METRICS_L_SMTP);
	}
	return NULL;
}

static void
test_threads(void)
{
	pthread_t th[HAMMER_THREADS];
	char line[160];
	int i;

	t_case("four threads: every increment counted");
	metrics_reset();
	T_CHECK(pthread_barrier_init(&hammer_start, NULL, HAMMER_THREADS) == 0);
	for (i = 0; i < HAMMER_THREADS; i++)
		T_CHECK(pthread_create(&th[i], NULL, hammer, NULL) == 0);
	for (i = 0; i < HAMMER_THREADS; i++)
		T_CHECK(pthread_join(th[i], NULL) == 0);
	pthread_barrier_destroy(&hammer_start);
	T_CHECK(str_fmt(line, sizeof(line),
		    "tern_connections_total{listener=\"smtp\"} %d",
		    HAMMER_THREADS * HAMMER_ROUNDS) == 0);
	T_CHECK(has_line(line));
	T_CHECK(has_line("tern_connections_current{listener=\"smtp\"} 0"));
	T_CHECK(str_fmt(line, sizeof(line),
		    "tern_messages_received_total{listener=\"local\"} %d",
		    10 * HAMMER_THREADS * HAMMER_ROUNDS) == 0);
	T_CHECK(has_line(line));
	T_CHECK(
	    str_fmt(line, sizeof(line), "tern_table_lookup_seconds_count %d",
		HAMMER_THREADS * HAMMER_ROUNDS) == 0);
	T_CHECK(has_line(line));
	T_CHECK(str_fmt(line, sizeof(line),
		    "tern_smtp_replies_total{class=\"2xx\",enhanced=\"2.0.0\"} "
		    "%d",
		    HAMMER_THREADS * HAMMER_ROUNDS) == 0);
	T_CHECK(has_line(line));
	/* a free name is taken at a domain's first event: none in other */
	T_CHECK(str_fmt(line, sizeof(line),
		    "tern_destination_deferrals_total{domain=\"a.example\"} %d",
		    HAMMER_THREADS * HAMMER_ROUNDS / 2) == 0);
	T_CHECK(has_line(line));
	T_CHECK(
	    has_line("tern_destination_deferrals_total{domain=\"other\"} 0"));
	T_CHECK(str_fmt(line, sizeof(line),
		    "tern_messages_deferred_total{transport=\"smtp\"} %d",
		    HAMMER_THREADS * HAMMER_ROUNDS) == 0);
	T_CHECK(has_line(line));
}

/* Every line is a comment or "name{labels} value" with a known name. */
static void
test_grammar(void)
{
	const char *p, *nl;

	t_case("every sample line parses");
	metrics_reset();
	metrics_replies("250 2.0.0 ok\r\n", 14);
	metrics_delivery(METRICS_T_SMTP, METRICS_O_DELIVERED, "a.example", 5);
	for (p = render(); *p != '\0'; p = nl + 1) {
		const char *sp;

		nl = strchr(p, '\n');
		T_CHECK(nl != NULL);
		if (nl == NULL)
			break;
		if (*p == '#') {
			T_CHECK(strncmp(p, "# HELP ", 7) == 0 ||
				strncmp(p, "# TYPE ", 7) == 0);
			continue;
		}
		T_CHECK(strncmp(p, "tern_", 5) == 0 ||
			strncmp(p, "process_", 8) == 0);
		sp = memrchr(p, ' ', (size_t)(nl - p));
		T_CHECK(sp != NULL && sp + 1 < nl);
		T_CHECK(sp != NULL &&
			(sp[-1] == '}' ||
			    memchr(p, '{', (size_t)(sp - p)) == NULL));
	}
}

int
main(void)
{
	T_RUN(test_escape);
	T_RUN(test_clean);
	T_RUN(test_replies);
	T_RUN(test_reply_bound);
	T_RUN(test_counters);
	T_RUN(test_histogram);
	T_RUN(test_destinations);
	T_RUN(test_grammar);
	T_RUN(test_threads);
	buf_free(&page);
	return t_summary();
}
