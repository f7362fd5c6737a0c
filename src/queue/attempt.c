/*
 * attempt.c: the decisions of one delivery attempt (attempt.h): its groups
 * from the route answers, the merge of each group's results, expiry and
 * the message's next try.  A recipient's state only moves forward here:
 * PENDING to DELIVERED, RELAYED or FAILED, or PENDING with a later next
 * try; what was final when the envelope was loaded is never tried again.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "queue/attempt.h"

static const char *
at_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at ? at + 1 : "";
}

struct attempt_rcpt *
attempt_track(const struct queue_env *env)
{
	struct attempt_rcpt *t =
	    xcalloc(env->nrcpt ? env->nrcpt : 1, sizeof(*t));
	size_t i;

	for (i = 0; i < env->nrcpt; i++)
		t[i].before = env->rcpt[i].state;
	return t;
}

void
attempt_result_apply(struct queue_rcpt *r, time_t created,
    const struct smtp_client_result *res, bool final,
    const struct attempt_clock *clk)
{
	r->attempts++;
	r->last_try = clk->now;
	r->code = res->code;
	str_fmt_cut(r->enh, sizeof(r->enh), "%s", res->enh);
	/* a reply text is a diagnostic: cut to fit, marked "..." */
	str_fmt_cut(r->text, sizeof(r->text), "%s", res->text);
	if (res->cls == SMTP_RESULT_OK) {
		/* RFC 3461 5.2.2: SUCCESS asked but not passed on: "relayed" */
		r->state = (r->notify & SMTP_NOTIFY_SUCCESS) &&
				   !res->dsn_passed && !final
			       ? QUEUE_RCPT_RELAYED
			       : QUEUE_RCPT_DELIVERED;
	} else if (res->cls == SMTP_RESULT_PERM) {
		r->state = QUEUE_RCPT_FAILED;
	} else {
		r->next_try = retry_next(
		    clk->retry, created, r->attempts, clk->now, clk->jitter());
	}
}

/* The group of this destination, made if need be; NULL when full. */
static struct attempt_group *
at_group_for(struct attempt_plan *p, size_t nrcpt, const char *domain,
    bool lmtp, bool local)
{
	struct attempt_group *g;
	size_t i;

	for (i = 0; i < p->ngroups; i++) {
		g = &p->groups[i];
		if (g->lmtp == lmtp && g->local == local &&
		    (local || (lmtp ? strcmp(g->domain, domain)
				    : strcasecmp(g->domain, domain)) == 0))
			return g;
	}
	if (p->ngroups == ATTEMPT_GROUPS_MAX)
		return NULL; /* the rest waits for the next attempt */
	g = &p->groups[p->ngroups++];
	g->lmtp = lmtp;
	g->local = local;
	if (str_copy(g->domain, sizeof(g->domain), domain, strlen(domain)) != 0)
		g->domain[0] = '\0';
	if (!lmtp)
		str_lower(g->domain);
	g->idx = xcalloc(nrcpt, sizeof(*g->idx));
	g->rcpts = xcalloc(nrcpt, sizeof(*g->rcpts));
	return g;
}

/* The Maildirs of w into the local group g, each once. */
static void
at_group_add_paths(struct attempt_group *g, const struct attempt_way *w)
{
	size_t i, j;

	for (i = 0; i < w->nboxes; i++) {
		for (j = 0; j < g->npaths; j++)
			if (strcmp(g->paths[j], w->boxes[i]) == 0)
				break;
		if (j < g->npaths)
			continue;
		char **np = xcalloc(g->npaths + 1, sizeof(*np));

		if (g->npaths > 0)
			memcpy(np, g->paths, g->npaths * sizeof(*np));
		free(g->paths);
		g->paths = np;
		g->paths[g->npaths++] = xstrdup(w->boxes[i]);
	}
}

/* The result of a recipient the table could not place (TEMP, NOUSER,
 * MOVED); the texts stay vague, the caller's log says what to fix. */
static void
at_unrouted(struct queue_env *env, struct queue_rcpt *r, enum attempt_route rt,
    const struct attempt_clock *clk)
{
	struct smtp_client_result res;

	if (rt == ATTEMPT_ROUTE_NOUSER)
		smtp_client_result_set(&res, SMTP_RESULT_PERM, 550, "5.1.1",
		    "No such user here (the recipient's domain is local)");
	else if (rt == ATTEMPT_ROUTE_MOVED)
		smtp_client_result_set(&res, SMTP_RESULT_TEMP, 451, "4.3.0",
		    "The recipient became an alias to other places since "
		    "this mail was queued: waiting for the admin");
	else
		smtp_client_result_set(&res, SMTP_RESULT_TEMP, 451, "4.3.0",
		    "Temporary lookup failure of the local domains");
	attempt_result_apply(
	    r, env->created, &res, rt == ATTEMPT_ROUTE_NOUSER, clk);
}

void
attempt_plan_build(struct attempt_plan *p, struct queue_env *env,
    const struct attempt_way *ways, const char *smarthost,
    const struct attempt_clock *clk)
{
	size_t i;

	memset(p, 0, sizeof(*p));
	for (i = 0; i < env->nrcpt; i++) {
		struct queue_rcpt *r = &env->rcpt[i];
		const struct attempt_way *w = &ways[i];
		struct attempt_group *g;

		if (w->route == ATTEMPT_ROUTE_SKIP ||
		    r->state != QUEUE_RCPT_PENDING)
			continue;
		if (w->route == ATTEMPT_ROUTE_TEMP ||
		    w->route == ATTEMPT_ROUTE_NOUSER ||
		    w->route == ATTEMPT_ROUTE_MOVED) {
			p->route_temp |= w->route == ATTEMPT_ROUTE_TEMP;
			at_unrouted(env, r, w->route, clk);
			continue;
		}
		g = at_group_for(p, env->nrcpt,
		    w->route == ATTEMPT_ROUTE_LMTP ? w->lmtp
		    : smarthost			   ? smarthost
						   : at_domain(r->addr),
		    w->route == ATTEMPT_ROUTE_LMTP,
		    w->route == ATTEMPT_ROUTE_MAILDIR);
		if (g == NULL)
			continue;
		if (w->route == ATTEMPT_ROUTE_MAILDIR)
			at_group_add_paths(g, w);
		g->idx[g->n] = i;
		g->rcpts[g->n].addr = r->addr;
		g->rcpts[g->n].notify = r->notify;
		g->rcpts[g->n].orcpt_type =
		    r->orcpt_type[0] ? r->orcpt_type : NULL;
		g->rcpts[g->n].orcpt = r->orcpt_type[0] ? r->orcpt : NULL;
		g->n++;
	}
}

void
attempt_plan_free(struct attempt_plan *p)
{
	size_t i, k;

	for (i = 0; i < p->ngroups; i++) {
		struct attempt_group *g = &p->groups[i];

		free(g->idx);
		free(g->rcpts);
		for (k = 0; k < g->npaths; k++)
			free(g->paths[k]);
		free(g->paths);
	}
	p->ngroups = 0;
}

void
attempt_merge(struct queue_env *env, struct attempt_rcpt *track,
    const struct attempt_group *g, const struct smtp_client_result *res,
    size_t n, const char *mx, const struct attempt_clock *clk)
{
	bool final = g->lmtp || g->local;
	size_t i;

	for (i = 0; i < n && i < g->n; i++) {
		struct attempt_rcpt *t = &track[g->idx[i]];

		attempt_result_apply(
		    &env->rcpt[g->idx[i]], env->created, &res[i], final, clk);
		if (final && res[i].cls == SMTP_RESULT_OK)
			t->final = true;
		/* an LMTP server is the mailbox, not an MTA */
		if (mx != NULL && res[i].remote && !g->lmtp &&
		    str_copy(t->mx, sizeof(t->mx), mx, strlen(mx)) != 0)
			t->mx[0] = '\0';
	}
}

void
queue_rcpt_expire(struct queue_rcpt *r)
{
	char text[QUEUE_TEXT_MAX + 1];

	r->state = QUEUE_RCPT_FAILED;
	if (r->code != 0 && r->enh[0] != '\0') {
		/* cut (terminated) if it does not fit: it is a diagnostic */
		if (str_fmt(text, sizeof(text), "%s %s", r->enh, r->text) != 0)
			text[sizeof(text) - 1] = '\0';
		memcpy(r->text, text, sizeof(r->text));
	}
	str_fmt_cut(r->enh, sizeof(r->enh), "4.4.7");
}

bool
queue_rcpt_expired(const struct queue_rcpt *r)
{
	return r->state == QUEUE_RCPT_FAILED && strcmp(r->enh, "4.4.7") == 0 &&
	       (r->code == 0 || (r->code >= 400 && r->code < 500));
}

size_t
attempt_expire(struct queue_env *env, struct attempt_rcpt *track,
    const struct retry_policy *p, time_t now)
{
	size_t i, n = 0;

	if (!retry_expired(p, env->created, now))
		return 0;
	for (i = 0; i < env->nrcpt; i++) {
		if (env->rcpt[i].state != QUEUE_RCPT_PENDING)
			continue;
		queue_rcpt_expire(&env->rcpt[i]);
		track[i].expired = true;
		n++;
	}
	return n;
}

time_t
queue_env_next_try(const struct queue_env *env)
{
	time_t next = 0;
	size_t i;

	for (i = 0; i < env->nrcpt; i++)
		if (env->rcpt[i].state == QUEUE_RCPT_PENDING &&
		    (next == 0 || env->rcpt[i].next_try < next))
			next = env->rcpt[i].next_try;
	return next;
}
