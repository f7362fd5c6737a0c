/*
 * metrics: the registry and its exposition.  Families with fixed label
 * values are arrays of relaxed atomics indexed by the product of their
 * label indexes (struct mx_family); a histogram's series is its buckets
 * (not cumulative: an observation touches one), its count and its sum in
 * microseconds.  The two families whose label values come from the
 * network live in small tables behind one mutex each, bounded:
 *
 * - replies: METRICS_REPLY_SLOTS (class, enhanced code) pairs, then one
 *   "other" series per class.  An enhanced code that is not
 *   class.subject.detail (RFC 3463: 1 digit, 1-3, 1-3) counts as "none".
 * - destinations: the busiest METRICS_DEST_TOP domains by a decaying
 *   score, tracked among DEST_CANDIDATES candidates (a Space-Saving
 *   summary: a new domain replaces the least busy candidate).  A
 *   candidate whose score passes twice the lowest named one takes that
 *   name's slot: the old domain's series goes away, the new one starts
 *   at zero, so every series stays monotonic.  What is not named is
 *   counted under domain="other".
 *
 * Invariant: rendering reads each value once, and a histogram's +Inf
 * bucket and _count are the sum of the buckets it read, so a scrape
 * racing an observation is still a valid histogram.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "metrics/metrics.h"

enum mx_type { MX_COUNTER, MX_GAUGE, MX_HISTOGRAM };

struct mx_dim {
	const char *name;
	const char *const *vals;
	unsigned n;
};

struct mx_family {
	const char *name;
	const char *help;
	enum mx_type type;
	struct mx_dim dim[3];
	unsigned ndim;
	const uint64_t *bounds_us; /* histograms: bucket upper bounds */
	unsigned nbounds;
	_Atomic uint64_t *v;
};

/* ---- label values ------------------------------------------------------ */

static const char *const mx_listeners[] = {
    "smtp", "submission", "submissions", "local"};
static const char *const mx_refusals[] = {"shutdown", "connections",
    "connections_per_ip", "connections_per_uid", "descriptors"};
static const char *const mx_transports[] = {"maildir", "lmtp", "smtp"};
static const char *const mx_dns_types[] = {
    "route", "txt", "a", "aaaa", "mx", "ptr"};
static const char *const mx_dns_results[] = {"ok", "nxdomain", "null_mx",
    "no_address", "bad_name", "servfail", "refused", "timeout", "network",
    "resolver"};
static const char *const mx_dirs[] = {"in", "out"};
static const char *const mx_versions[] = {"TLSv1.3", "TLSv1.2", "other"};
static const char *const mx_verified[] = {"yes", "no", "none"};
static const char *const mx_mechs[] = {"PLAIN", "LOGIN", "other"};
static const char *const mx_results[] = {"success", "failure"};

#define MX_STR2(x) #x
#define MX_STR(x)  MX_STR2(x)
#define MX_N(a)	   (unsigned)(sizeof(a) / sizeof((a)[0]))
#define MX_DIM(name, vals)                                                     \
	{                                                                      \
		name, vals, MX_N(vals)                                         \
	}

/* ---- histogram buckets (microseconds) ---------------------------------- */

/* a group commit is one syncfs: milliseconds on a disk, seconds when it
 * is saturated */
static const uint64_t mx_commit_bounds[] = {1000, 2500, 5000, 10000, 25000,
    50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};
/* from creation to the last hop: seconds when all goes well, days on
 * the retry schedule */
static const uint64_t mx_delivery_bounds[] = {1000000, 5000000, 15000000,
    60000000, 300000000, 900000000, 3600000000, 14400000000, 86400000000,
    432000000000};
/* SQLite answers in microseconds, PostgreSQL in a round trip */
static const uint64_t mx_lookup_bounds[] = {50, 100, 250, 500, 1000, 2500, 5000,
    10000, 25000, 50000, 100000, 250000, 1000000};

#define MX_HSLOTS(b) (MX_N(b) + 3) /* buckets, +Inf, count, sum */

/* ---- storage ----------------------------------------------------------- */

static _Atomic uint64_t v_conn_cur[METRICS_L_N];
static _Atomic uint64_t v_conn_total[METRICS_L_N];
static _Atomic uint64_t v_refused[METRICS_R_N];
static _Atomic uint64_t v_received[METRICS_L_N];
static _Atomic uint64_t v_expired;
static _Atomic uint64_t v_outcome[METRICS_O_N][METRICS_T_N];
static _Atomic uint64_t v_tls[METRICS_TLS_DIRS * 3 * METRICS_V_N];
static _Atomic uint64_t v_tls_failed[METRICS_TLS_DIRS];
static _Atomic uint64_t v_auth[3 * 2];
static _Atomic uint64_t v_dns[METRICS_DNS_TYPES * METRICS_DNSR_N];
static _Atomic uint64_t v_gauge[METRICS_G_N];
static _Atomic uint64_t v_commit[MX_HSLOTS(mx_commit_bounds)];
static _Atomic uint64_t v_delivery[METRICS_T_N * MX_HSLOTS(mx_delivery_bounds)];
static _Atomic uint64_t v_lookup[MX_HSLOTS(mx_lookup_bounds)];

/* the order of the exposition */
static const struct mx_family mx_fixed_head[] = {
    {"tern_connections_current", "Open SMTP sessions by listener.", MX_GAUGE,
	{MX_DIM("listener", mx_listeners)}, 1, NULL, 0, v_conn_cur},
    {"tern_connections_total", "SMTP sessions accepted by listener.",
	MX_COUNTER, {MX_DIM("listener", mx_listeners)}, 1, NULL, 0,
	v_conn_total},
    {"tern_connections_refused_total",
	"Connections refused before the greeting, by reason.", MX_COUNTER,
	{MX_DIM("reason", mx_refusals)}, 1, NULL, 0, v_refused},
};

static const struct mx_family mx_fixed_tail[] = {
    {"tern_messages_received_total",
	"Messages accepted (250 at the end of data) by listener.", MX_COUNTER,
	{MX_DIM("listener", mx_listeners)}, 1, NULL, 0, v_received},
    {"tern_messages_delivered_total", "Recipients delivered, by transport.",
	MX_COUNTER, {MX_DIM("transport", mx_transports)}, 1, NULL, 0,
	v_outcome[METRICS_O_DELIVERED]},
    {"tern_messages_deferred_total",
	"Recipients deferred (a temporary failure), by transport.", MX_COUNTER,
	{MX_DIM("transport", mx_transports)}, 1, NULL, 0,
	v_outcome[METRICS_O_DEFERRED]},
    {"tern_messages_bounced_total",
	"Recipients failed for good (a DSN is owed), by transport.", MX_COUNTER,
	{MX_DIM("transport", mx_transports)}, 1, NULL, 0,
	v_outcome[METRICS_O_BOUNCED]},
    {"tern_messages_expired_total",
	"Recipients failed by age (queue.lifetime) in the queue.", MX_COUNTER,
	{{0}}, 0, NULL, 0, &v_expired},
    {"tern_queue_messages", "Messages in the queue.", MX_GAUGE, {{0}}, 0, NULL,
	0, &v_gauge[METRICS_G_QUEUE_MESSAGES]},
    {"tern_queue_oldest_message_age_seconds",
	"Age of the oldest message in the queue (0: empty).", MX_GAUGE, {{0}},
	0, NULL, 0, &v_gauge[METRICS_G_QUEUE_OLDEST_AGE]},
    {"tern_tls_sessions_total",
	"TLS handshakes completed, by direction, version and peer "
	"verification.",
	MX_COUNTER,
	{MX_DIM("direction", mx_dirs), MX_DIM("version", mx_versions),
	    MX_DIM("verified", mx_verified)},
	3, NULL, 0, v_tls},
    {"tern_tls_failures_total", "TLS handshakes that failed, by direction.",
	MX_COUNTER, {MX_DIM("direction", mx_dirs)}, 1, NULL, 0, v_tls_failed},
    {"tern_auth_total", "SMTP AUTH attempts by mechanism and result.",
	MX_COUNTER,
	{MX_DIM("mechanism", mx_mechs), MX_DIM("result", mx_results)}, 2, NULL,
	0, v_auth},
    {"tern_dns_lookups_total", "DNS lookups by type and result.", MX_COUNTER,
	{MX_DIM("type", mx_dns_types), MX_DIM("result", mx_dns_results)}, 2,
	NULL, 0, v_dns},
    {"tern_commit_latency_seconds",
	"From the end of a message's data to its 250 (the durable store).",
	MX_HISTOGRAM, {{0}}, 0, mx_commit_bounds, MX_N(mx_commit_bounds),
	v_commit},
    {"tern_delivery_latency_seconds",
	"From a queued message's creation to a recipient's delivery.",
	MX_HISTOGRAM, {MX_DIM("transport", mx_transports)}, 1,
	mx_delivery_bounds, MX_N(mx_delivery_bounds), v_delivery},
    {"tern_table_lookup_seconds", "Time one table question takes to answer.",
	MX_HISTOGRAM, {{0}}, 0, mx_lookup_bounds, MX_N(mx_lookup_bounds),
	v_lookup},
    {"tern_lookup_queue_length",
	"Table questions waiting for or on a lookup thread.", MX_GAUGE, {{0}},
	0, NULL, 0, &v_gauge[METRICS_G_LOOKUP_QUEUE]},
    {"process_resident_memory_bytes", "Resident memory size in bytes.",
	MX_GAUGE, {{0}}, 0, NULL, 0, &v_gauge[METRICS_G_RSS_BYTES]},
    {"process_open_fds", "Number of open file descriptors.", MX_GAUGE, {{0}}, 0,
	NULL, 0, &v_gauge[METRICS_G_OPEN_FDS]},
};

/* replies: (class digit, enhanced code or "none") */
struct mx_reply {
	char cls;
	char enh[12];
	uint64_t n;
};
static struct {
	pthread_mutex_t mu;
	struct mx_reply slot[METRICS_REPLY_SLOTS];
	unsigned n;
	uint64_t other[4]; /* classes 2..5 */
} mx_rep = {.mu = PTHREAD_MUTEX_INITIALIZER};

#define DEST_CANDIDATES	 (4 * METRICS_DEST_TOP)
#define DEST_DECAY_EVERY 4096 /* events between halvings of the scores */

struct mx_cand {
	char domain[METRICS_LABEL_MAX + 1];
	uint64_t score;
	int named; /* slot in mx_dest.named, or -1 */
};
struct mx_named {
	struct mx_cand *cand; /* NULL: free */
	uint64_t n[2];	      /* deliveries, deferrals */
};
static struct {
	pthread_mutex_t mu;
	struct mx_cand cand[DEST_CANDIDATES];
	unsigned ncand;
	struct mx_named named[METRICS_DEST_TOP];
	uint64_t other[2];
	unsigned events;
} mx_dest = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* ---- increments -------------------------------------------------------- */

static void
mx_add(_Atomic uint64_t *v, uint64_t n)
{
	atomic_fetch_add_explicit(v, n, memory_order_relaxed);
}

static uint64_t
mx_get(_Atomic uint64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

void
metrics_conn_open(enum metrics_listener l)
{
	mx_add(&v_conn_cur[l], 1);
	mx_add(&v_conn_total[l], 1);
}

void
metrics_conn_close(enum metrics_listener l)
{
	atomic_fetch_sub_explicit(&v_conn_cur[l], 1, memory_order_relaxed);
}

void
metrics_conn_refused(enum metrics_refusal r)
{
	mx_add(&v_refused[r], 1);
}

void
metrics_expired(void)
{
	mx_add(&v_expired, 1);
}

void
metrics_message_received(enum metrics_listener l)
{
	mx_add(&v_received[l], 1);
}

static void
mx_observe(
    _Atomic uint64_t *h, const uint64_t *bounds, unsigned nb, uint64_t us)
{
	unsigned i = 0;

	while (i < nb && us > bounds[i])
		i++;
	mx_add(&h[i], 1); /* i == nb: the +Inf bucket alone */
	mx_add(&h[nb + 2], us);
}

void
metrics_commit_latency(uint64_t us)
{
	mx_observe(v_commit, mx_commit_bounds, MX_N(mx_commit_bounds), us);
}

void
metrics_table_lookup_latency(uint64_t us)
{
	mx_observe(v_lookup, mx_lookup_bounds, MX_N(mx_lookup_bounds), us);
}

void
metrics_gauge_set(enum metrics_gauge g, int64_t v)
{
	atomic_store_explicit(&v_gauge[g], (uint64_t)v, memory_order_relaxed);
}

void
metrics_tls(
    enum metrics_tls_dir d, const char *version, enum metrics_tls_verify v)
{
	unsigned ver = 2;

	if (version != NULL && strcmp(version, "TLSv1.3") == 0)
		ver = 0;
	else if (version != NULL && strcmp(version, "TLSv1.2") == 0)
		ver = 1;
	mx_add(&v_tls[((unsigned)d * 3 + ver) * METRICS_V_N + (unsigned)v], 1);
}

void
metrics_tls_failed(enum metrics_tls_dir d)
{
	mx_add(&v_tls_failed[d], 1);
}

void
metrics_auth(const char *mech, bool ok)
{
	unsigned m = 2;

	if (mech != NULL && strcasecmp(mech, "PLAIN") == 0)
		m = 0;
	else if (mech != NULL && strcasecmp(mech, "LOGIN") == 0)
		m = 1;
	mx_add(&v_auth[m * 2 + (ok ? 0 : 1)], 1);
}

void
metrics_dns(enum metrics_dns_type t, enum metrics_dns_result r)
{
	if ((unsigned)t >= METRICS_DNS_TYPES || (unsigned)r >= METRICS_DNSR_N)
		return;
	mx_add(&v_dns[(unsigned)t * METRICS_DNSR_N + (unsigned)r], 1);
}

/* ---- replies ----------------------------------------------------------- */

static bool
mx_digits(const char *p, size_t n, size_t min, size_t max, size_t *len_out)
{
	size_t i = 0;

	while (i < n && i < max && p[i] >= '0' && p[i] <= '9')
		i++;
	*len_out = i;
	return i >= min;
}

/* The enhanced code at the start of p (RFC 3463 2: class "." subject "."
 * detail, then a space or the end), or 0. */
static size_t
mx_enhanced(const char *p, size_t n, char cls)
{
	size_t a, b, c;

	if (n < 5 || p[0] != cls || p[1] != '.' ||
	    !mx_digits(p + 2, n - 2, 1, 3, &a) || 2 + a >= n ||
	    p[2 + a] != '.' || !mx_digits(p + 3 + a, n - 3 - a, 1, 3, &b))
		return 0;
	c = 3 + a + b;
	if (c < n && p[c] != ' ' && p[c] != '\r' && p[c] != '\n')
		return 0;
	return c;
}

static void
mx_reply_count(char cls, const char *enh, size_t elen)
{
	unsigned i;

	pthread_mutex_lock(&mx_rep.mu);
	for (i = 0; i < mx_rep.n; i++)
		if (mx_rep.slot[i].cls == cls &&
		    strlen(mx_rep.slot[i].enh) == elen &&
		    memcmp(mx_rep.slot[i].enh, enh, elen) == 0)
			break;
	if (i == mx_rep.n && i < METRICS_REPLY_SLOTS) {
		mx_rep.slot[i].cls = cls;
		memcpy(mx_rep.slot[i].enh, enh, elen); /* elen < 12 */
		mx_rep.slot[i].enh[elen] = '\0';
		mx_rep.slot[i].n = 0;
		mx_rep.n++;
	}
	if (i < METRICS_REPLY_SLOTS)
		mx_rep.slot[i].n++;
	else
		mx_rep.other[cls - '2']++;
	pthread_mutex_unlock(&mx_rep.mu);
}

/* One line (without its CRLF): counted when it ends a reply. */
static void
mx_reply_line(const char *p, size_t n)
{
	size_t elen;

	if (n < 3 || p[0] < '2' || p[0] > '5' || p[1] < '0' || p[1] > '9' ||
	    p[2] < '0' || p[2] > '9' || (n > 3 && p[3] != ' '))
		return; /* not a reply, or a "250-" continuation */
	elen = n > 4 ? mx_enhanced(p + 4, n - 4, p[0]) : 0;
	if (elen == 0)
		mx_reply_count(p[0], "none", 4);
	else
		mx_reply_count(p[0], p + 4, elen);
}

void
metrics_replies(const char *p, size_t n)
{
	const char *end = p + n, *nl;

	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		mx_reply_line(
		    p, (size_t)(nl - p) - (nl > p && nl[-1] == '\r' ? 1 : 0));
		p = nl + 1;
	}
}

/* ---- destinations ------------------------------------------------------ */

static struct mx_cand *
dest_find(const char *d)
{
	unsigned i, min = 0;

	for (i = 0; i < mx_dest.ncand; i++)
		if (strcmp(mx_dest.cand[i].domain, d) == 0)
			return &mx_dest.cand[i];
	if (mx_dest.ncand < DEST_CANDIDATES) {
		struct mx_cand *c = &mx_dest.cand[mx_dest.ncand++];

		c->score = 0;
		c->named = -1;
		memcpy(c->domain, d, strlen(d) + 1);
		return c;
	}
	/* full: the least busy candidate without a name gives way, and the
	 * newcomer inherits its score (Space-Saving) */
	for (i = 0; i < DEST_CANDIDATES; i++)
		if (mx_dest.cand[i].named < 0 &&
		    (mx_dest.cand[min].named >= 0 ||
			mx_dest.cand[i].score < mx_dest.cand[min].score))
			min = i;
	memcpy(mx_dest.cand[min].domain, d, strlen(d) + 1);
	return &mx_dest.cand[min];
}

/* Give c a name when one is free, or when it is now much busier than the
 * least busy named domain. */
static void
dest_promote(struct mx_cand *c)
{
	int i, low = -1;

	for (i = 0; i < METRICS_DEST_TOP; i++) {
		const struct mx_cand *o = mx_dest.named[i].cand;

		if (o == NULL) {
			low = i;
			break;
		}
		if (low < 0 || o->score < mx_dest.named[low].cand->score)
			low = i;
	}
	if (mx_dest.named[low].cand != NULL) {
		struct mx_cand *old = mx_dest.named[low].cand;

		if (c->score <= 2 * old->score)
			return;
		old->named = -1;
	}
	mx_dest.named[low].cand = c;
	mx_dest.named[low].n[0] = mx_dest.named[low].n[1] = 0;
	c->named = low;
}

static void
dest_decay(void)
{
	unsigned i;

	if (++mx_dest.events < DEST_DECAY_EVERY)
		return;
	mx_dest.events = 0;
	for (i = 0; i < mx_dest.ncand; i++)
		mx_dest.cand[i].score /= 2;
}

static void
dest_count(const char *domain, unsigned which)
{
	char d[METRICS_LABEL_MAX + 1];
	struct mx_cand *c;

	metrics_label_clean(d, domain, strlen(domain));
	pthread_mutex_lock(&mx_dest.mu);
	c = dest_find(d);
	c->score++;
	if (c->named < 0)
		dest_promote(c);
	if (c->named >= 0)
		mx_dest.named[c->named].n[which]++;
	else
		mx_dest.other[which]++;
	dest_decay();
	pthread_mutex_unlock(&mx_dest.mu);
}

void
metrics_delivery(enum metrics_transport t, enum metrics_outcome o,
    const char *domain, uint64_t latency_us)
{
	mx_add(&v_outcome[o][t], 1);
	if (o == METRICS_O_DELIVERED)
		mx_observe(
		    &v_delivery[(unsigned)t * MX_HSLOTS(mx_delivery_bounds)],
		    mx_delivery_bounds, MX_N(mx_delivery_bounds), latency_us);
	if (domain != NULL && domain[0] != '\0' && o != METRICS_O_BOUNCED)
		dest_count(domain, o == METRICS_O_DELIVERED ? 0 : 1);
}

/* ---- text -------------------------------------------------------------- */

void
metrics_label_clean(char *out, const char *v, size_t n)
{
	size_t i;

	if (n > METRICS_LABEL_MAX)
		n = METRICS_LABEL_MAX;
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)v[i];

		if (ch >= 'A' && ch <= 'Z')
			ch = (unsigned char)(ch - 'A' + 'a');
		else if (ch < 0x21 || ch > 0x7e)
			ch = '_';
		out[i] = (char)ch;
	}
	out[n] = '\0';
}

int
metrics_escape_label(struct buf *out, const char *v, size_t n)
{
	size_t i, run = 0;

	for (i = 0; i < n; i++) {
		const char *esc = v[i] == '\\'	 ? "\\\\"
				  : v[i] == '"'	 ? "\\\""
				  : v[i] == '\n' ? "\\n"
						 : NULL;

		if (esc == NULL)
			continue;
		if (buf_append(out, v + run, i - run) != 0 ||
		    buf_append_str(out, esc) != 0)
			return -1;
		run = i + 1;
	}
	return buf_append(out, v + run, n - run);
}

/* "{a="x",b="y"" without the closing brace; nothing when no label */
static int
mx_labels_open(struct buf *out, const struct mx_family *f, unsigned idx)
{
	unsigned k, div = 1, pos;

	for (k = 0; k < f->ndim; k++)
		div *= f->dim[k].n;
	for (k = 0; k < f->ndim; k++) {
		div /= f->dim[k].n;
		pos = (idx / div) % f->dim[k].n;
		if (buf_printf(out, "%s%s=\"", k == 0 ? "{" : ",",
			f->dim[k].name) != 0 ||
		    metrics_escape_label(out, f->dim[k].vals[pos],
			strlen(f->dim[k].vals[pos])) != 0 ||
		    buf_append_str(out, "\"") != 0)
			return -1;
	}
	return 0;
}

static int
mx_head(struct buf *out, const char *name, const char *help, const char *type)
{
	return buf_printf(
	    out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static unsigned
mx_nseries(const struct mx_family *f)
{
	unsigned k, n = 1;

	for (k = 0; k < f->ndim; k++)
		n *= f->dim[k].n;
	return n;
}

static int
mx_le(struct buf *out, const struct mx_family *f, unsigned s, const char *le,
    uint64_t n)
{
	if (buf_printf(out, "%s_bucket", f->name) != 0 ||
	    mx_labels_open(out, f, s) != 0 ||
	    buf_printf(out, "%sle=\"%s\"} %llu\n", f->ndim > 0 ? "," : "{", le,
		(unsigned long long)n) != 0)
		return -1;
	return 0;
}

static int
mx_histogram_series(struct buf *out, const struct mx_family *f, unsigned s)
{
	_Atomic uint64_t *h = &f->v[s * (f->nbounds + 3)];
	uint64_t cum = 0, sum = mx_get(&h[f->nbounds + 2]);
	char le[32];
	unsigned b;

	for (b = 0; b < f->nbounds; b++) {
		uint64_t us = f->bounds_us[b];

		cum += mx_get(&h[b]);
		/* seconds, the fraction without trailing zeros */
		if (str_fmt(le, sizeof(le), "%llu.%06llu",
			(unsigned long long)(us / 1000000),
			(unsigned long long)(us % 1000000)) != 0)
			return -1;
		while (le[strlen(le) - 1] == '0')
			le[strlen(le) - 1] = '\0';
		if (le[strlen(le) - 1] == '.')
			le[strlen(le) - 1] = '\0';
		if (mx_le(out, f, s, le, cum) != 0)
			return -1;
	}
	cum += mx_get(&h[f->nbounds]);
	if (mx_le(out, f, s, "+Inf", cum) != 0 ||
	    buf_printf(out, "%s_sum", f->name) != 0 ||
	    mx_labels_open(out, f, s) != 0 ||
	    buf_printf(out, "%s %llu.%06llu\n%s_count", f->ndim ? "}" : "",
		(unsigned long long)(sum / 1000000),
		(unsigned long long)(sum % 1000000), f->name) != 0 ||
	    mx_labels_open(out, f, s) != 0 ||
	    buf_printf(out, "%s %llu\n", f->ndim ? "}" : "",
		(unsigned long long)cum) != 0)
		return -1;
	return 0;
}

static int
mx_render_family(struct buf *out, const struct mx_family *f)
{
	static const char *const types[] = {"counter", "gauge", "histogram"};
	unsigned s, n = mx_nseries(f);

	if (mx_head(out, f->name, f->help, types[f->type]) != 0)
		return -1;
	for (s = 0; s < n; s++) {
		if (f->type == MX_HISTOGRAM) {
			if (mx_histogram_series(out, f, s) != 0)
				return -1;
			continue;
		}
		if (buf_append_str(out, f->name) != 0 ||
		    mx_labels_open(out, f, s) != 0)
			return -1;
		if (f->type == MX_GAUGE
			? buf_printf(out, "%s %lld\n", f->ndim ? "}" : "",
			      (long long)(int64_t)mx_get(&f->v[s]))
			: buf_printf(out, "%s %llu\n", f->ndim ? "}" : "",
			      (unsigned long long)mx_get(&f->v[s])))
			return -1;
	}
	return 0;
}

static int
mx_render_replies(struct buf *out)
{
	static const char *const cls[] = {"2xx", "3xx", "4xx", "5xx"};
	const char *name = "tern_smtp_replies_total";
	int r = mx_head(out, name,
	    "Replies sent to SMTP clients, by class and enhanced code.",
	    "counter");
	unsigned i;

	pthread_mutex_lock(&mx_rep.mu);
	for (i = 0; r == 0 && i < mx_rep.n; i++)
		r = buf_printf(out, "%s{class=\"%s\",enhanced=\"%s\"} %llu\n",
		    name, cls[mx_rep.slot[i].cls - '2'], mx_rep.slot[i].enh,
		    (unsigned long long)mx_rep.slot[i].n);
	for (i = 0; r == 0 && i < 4; i++)
		if (mx_rep.other[i] != 0)
			r = buf_printf(out,
			    "%s{class=\"%s\",enhanced=\"other\"} %llu\n", name,
			    cls[i], (unsigned long long)mx_rep.other[i]);
	pthread_mutex_unlock(&mx_rep.mu);
	return r;
}

static int
mx_render_dest_one(
    struct buf *out, const char *name, const char *domain, uint64_t n)
{
	if (buf_printf(out, "%s{domain=\"", name) != 0 ||
	    metrics_escape_label(out, domain, strlen(domain)) != 0 ||
	    buf_printf(out, "\"} %llu\n", (unsigned long long)n) != 0)
		return -1;
	return 0;
}

static int
mx_render_dest(struct buf *out)
{
	static const char *const names[] = {"tern_destination_deliveries_total",
	    "tern_destination_deferrals_total"};
	static const char *const helps[] = {
	    "Recipients delivered over SMTP, by destination domain (the "
	    "busiest " MX_STR(METRICS_DEST_TOP) ", the rest \"other\").",
	    "Recipients deferred over SMTP, by destination domain (the "
	    "busiest " MX_STR(METRICS_DEST_TOP) ", the rest \"other\")."};
	unsigned w, i;
	int r = 0;

	pthread_mutex_lock(&mx_dest.mu);
	for (w = 0; r == 0 && w < 2; w++) {
		r = mx_head(out, names[w], helps[w], "counter");
		for (i = 0; r == 0 && i < METRICS_DEST_TOP; i++)
			if (mx_dest.named[i].cand != NULL)
				r = mx_render_dest_one(out, names[w],
				    mx_dest.named[i].cand->domain,
				    mx_dest.named[i].n[w]);
		if (r == 0)
			r = mx_render_dest_one(
			    out, names[w], "other", mx_dest.other[w]);
	}
	pthread_mutex_unlock(&mx_dest.mu);
	return r;
}

int
metrics_render(struct buf *out)
{
	size_t i;

	for (i = 0; i < MX_N(mx_fixed_head); i++)
		if (mx_render_family(out, &mx_fixed_head[i]) != 0)
			return -1;
	if (mx_render_replies(out) != 0)
		return -1;
	for (i = 0; i < MX_N(mx_fixed_tail); i++)
		if (mx_render_family(out, &mx_fixed_tail[i]) != 0)
			return -1;
	return mx_render_dest(out);
}

static void
mx_zero(_Atomic uint64_t *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		atomic_store_explicit(&v[i], 0, memory_order_relaxed);
}

void
metrics_reset(void)
{
	mx_zero(v_conn_cur, MX_N(v_conn_cur));
	mx_zero(v_conn_total, MX_N(v_conn_total));
	mx_zero(v_refused, MX_N(v_refused));
	mx_zero(v_received, MX_N(v_received));
	mx_zero(&v_expired, 1);
	mx_zero(&v_outcome[0][0], METRICS_O_N * METRICS_T_N);
	mx_zero(v_tls, MX_N(v_tls));
	mx_zero(v_tls_failed, MX_N(v_tls_failed));
	mx_zero(v_auth, MX_N(v_auth));
	mx_zero(v_dns, MX_N(v_dns));
	mx_zero(v_gauge, MX_N(v_gauge));
	mx_zero(v_commit, MX_N(v_commit));
	mx_zero(v_delivery, MX_N(v_delivery));
	mx_zero(v_lookup, MX_N(v_lookup));
	pthread_mutex_lock(&mx_rep.mu);
	mx_rep.n = 0;
	memset(mx_rep.other, 0, sizeof(mx_rep.other));
	pthread_mutex_unlock(&mx_rep.mu);
	pthread_mutex_lock(&mx_dest.mu);
	memset(mx_dest.cand, 0, sizeof(mx_dest.cand));
	memset(mx_dest.named, 0, sizeof(mx_dest.named));
	memset(mx_dest.other, 0, sizeof(mx_dest.other));
	mx_dest.ncand = mx_dest.events = 0;
	pthread_mutex_unlock(&mx_dest.mu);
}
