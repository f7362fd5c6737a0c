/*
 * arcseal: seal a forwarded message on the worker that stores it
 * (arcseal.h).
 *
 * The seal is the last change to the message (arc.h): the prepare step
 * that was on the request before (dkimsign's, when there is one) runs
 * first, then arc_seal on head + content exactly as the store writes them
 * (the body whole, or in the pieces connauth.c left around our own
 * Authentication-Results fields), and the three fields go on top of head.
 * The store writes one head for every copy, so the local copies of the
 * same transaction carry the set too (docs/mailauth.md says why that is
 * harmless).
 */
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include "server/arcseal.h"
#include "server/dkimkeys.h"
#include "server/server.h"

struct as_req {
	struct dkimkeys *keys;	   /* held */
	const struct dkimkey *key; /* in keys */
	char domain[DKIM_DOMAIN_MAX + 1];
	char results[ARC_RESULTS_MAX + 1];
	char authserv_id[AUTHRES_ID_MAX + 1];
	enum arc_cv cv;
	char id[ID_LEN + 1];
	char sid[ID_LEN + 1];
	/* the prepare step this one follows */
	void (*prev)(struct inject *, void *);
	void (*prev_free)(void *);
	void *prev_arg;
};

/* The active RSA key of name, or NULL. */
static const struct dkimkey *
as_rsa_key(const struct dkimkeys *k, const char *name)
{
	const struct dkimkeys_domain *d = dkimkeys_find(k, name, strlen(name));

	for (size_t i = 0; d != NULL && i < d->n; i++)
		if (d->keys[i].type == DKIM_KEY_RSA)
			return &d->keys[i];
	return NULL;
}

/* srs.domain's key, else the first of domains' (arcseal.h). */
static const char *
as_choose(const struct server *s, const struct dkimkey **key_out)
{
	const struct conf *cf = s->conf;

	if (cf->srs_domain != NULL &&
	    (*key_out = as_rsa_key(s->dkim, cf->srs_domain)) != NULL)
		return cf->srs_domain;
	for (size_t i = 0; i < cf->ndomains; i++)
		if ((*key_out = as_rsa_key(s->dkim, cf->domains[i])) != NULL)
			return cf->domains[i];
	return NULL;
}

/* head + content, as the store will write them, into one buffer */
static int
as_message(const struct inject *ij, struct buf *msg)
{
	if (buf_append(msg, ij->head.data, ij->head.len) != 0)
		return -1;
	if (ij->body_iovcnt <= 0)
		return buf_append(msg, ij->body, ij->body_len);
	for (int i = 0; i < ij->body_iovcnt && i < INJECT_BODY_IOV; i++)
		if (buf_append(msg, ij->body_iov[i].iov_base,
			ij->body_iov[i].iov_len) != 0)
			return -1;
	return 0;
}

static void
as_run(struct inject *ij, void *arg)
{
	struct as_req *r = arg;
	struct arc_seal_opts o = {r->authserv_id, r->results, r->cv, r->domain,
	    r->key->selector, r->key->pkey, (int64_t)time(NULL)};
	struct buf msg, out, head;
	char err[160] = "";

	if (r->prev != NULL)
		r->prev(ij, r->prev_arg);
	buf_init(&msg, ij->head.len + ij->body_len + 1);
	buf_init(&out, 3 * ARC_FIELD_MAX + 16);
	buf_init(&head, ij->head.max + 3 * ARC_FIELD_MAX + 16);
	if (as_message(ij, &msg) != 0)
		str_fmt_cut(err, sizeof(err), "message too large to copy");
	else if (arc_seal(&o, msg.data, msg.len, &out, err, sizeof(err)) != 0)
		; /* err says why */
	else if (buf_append(&head, out.data, out.len) != 0 ||
		 buf_append(&head, ij->head.data, ij->head.len) != 0)
		str_fmt_cut(err, sizeof(err), "header too large");
	if (err[0] != '\0') {
		log_err("id=%s sid=%s event=arc_seal_failed d=%s s=%s cv=%s "
			"error=\"%s\" action=forwarded_unsealed",
		    r->id, r->sid, r->domain, r->key->selector,
		    arc_cv_name(r->cv), err);
		buf_free(&head);
	} else {
		buf_free(&ij->head);
		ij->head = head;
		log_info("id=%s sid=%s event=arc_sealed d=%s s=%s cv=%s", r->id,
		    r->sid, r->domain, r->key->selector, arc_cv_name(r->cv));
	}
	buf_free(&msg);
	buf_free(&out);
}

static void
as_free(void *arg)
{
	struct as_req *r = arg;

	if (r->prev_free != NULL)
		r->prev_free(r->prev_arg);
	dkimkeys_drop(r->keys);
	free(r);
}

void
arcseal_attach(struct server *s, struct inject *ij, const char *results,
    size_t results_len, enum arc_cv cv, const char *id, const char *sid)
{
	const struct dkimkey *key = NULL;
	const char *domain;
	struct as_req *r;

	if (!s->conf->arc_seal || s->dkim == NULL)
		return;
	if ((domain = as_choose(s, &key)) == NULL) {
		log_debug("id=%s sid=%s event=arc_seal_skipped reason=no_key",
		    id, sid);
		return;
	}
	r = xcalloc(1, sizeof(*r));
	if (str_copy(r->results, sizeof(r->results), results, results_len) !=
		0 ||
	    str_copy(r->authserv_id, sizeof(r->authserv_id), s->conf->hostname,
		strlen(s->conf->hostname)) != 0 ||
	    str_copy(r->domain, sizeof(r->domain), domain, strlen(domain)) !=
		0) {
		log_warn("id=%s sid=%s event=arc_seal_skipped "
			 "reason=too_long",
		    id, sid);
		free(r);
		return;
	}
	r->keys = s->dkim;
	dkimkeys_hold(r->keys);
	r->key = key;
	r->cv = cv;
	str_fmt_cut(r->id, sizeof(r->id), "%s", id);
	str_fmt_cut(r->sid, sizeof(r->sid), "%s", sid[0] ? sid : "-");
	r->prev = ij->prepare;
	r->prev_free = ij->prepare_free;
	r->prev_arg = ij->prepare_arg;
	ij->prepare = as_run;
	ij->prepare_free = as_free;
	ij->prepare_arg = r;
}
