/*
 * dkimsign: sign a message on the worker that stores it (dkimsign.h).
 *
 * Which domain: the RFC5322.From domain when it has an active key (what
 * DMARC aligns with), else the envelope sender's.  From is looked for in
 * the client's header section, then in the head tern put on top (a DSN
 * has everything in its content).  A From with several mailboxes signs
 * with the first one's domain.
 *
 * What is signed: head + content, exactly as stored (dkim_sign_parts:
 * the body is hashed in place, not copied), so the Date and Message-ID
 * tern added are covered; the new fields are put on top of head.  Each
 * active key of the domain signs (rsa, then ed25519: dual signing), all
 * at the same t=.
 */
#include <string.h>
#include <time.h>

#include "addr/addr.h"
#include "mailauth/dkim.h"
#include "mailauth/dkimsel.h"
#include "server/dkimkeys.h"
#include "server/dkimsign.h"
#include "server/server.h"

struct ds_req {
	struct dkimkeys *keys; /* held */
	int64_t expire;
	char sender_domain[ADDR_DOMAIN_MAX + 1];
	char id[ID_LEN + 1];
	char sid[ID_LEN + 1];
};

/* The domain of the first mailbox of the From field in msg, or false. */
static bool
ds_from_domain(const char *msg, size_t len, char *out, size_t outlen)
{
	struct addr_hdr_field f;
	struct addr_list l;
	struct addr a;
	size_t end = addr_hdr_end(msg, len, NULL);

	if (!addr_hdr_find(msg, end, "From", &f))
		return false;
	addr_list_init(&l, f.value, f.value_len, ADDR_F_UTF8);
	if (addr_list_next(&l, &a) != ADDR_LIST_OK || a.domain[0] == '\0')
		return false;
	return str_copy(out, outlen, a.domain, strlen(a.domain)) == 0;
}

static const struct dkimkeys_domain *
ds_domain(const struct inject *ij, const struct ds_req *r)
{
	char from[ADDR_DOMAIN_MAX + 1];
	const struct dkimkeys_domain *d = NULL;

	if (ds_from_domain(ij->body, ij->body_len, from, sizeof(from)) ||
	    (ij->head.len > 0 && ds_from_domain(ij->head.data, ij->head.len,
				     from, sizeof(from))))
		d = dkimkeys_find(r->keys, from, strlen(from));
	if (d == NULL && r->sender_domain[0] != '\0')
		d = dkimkeys_find(
		    r->keys, r->sender_domain, strlen(r->sender_domain));
	return d;
}

static void
ds_run(struct inject *ij, void *arg)
{
	struct ds_req *r = arg;
	const struct dkimkeys_domain *d = ds_domain(ij, r);
	struct dkim_sign_opts o;
	struct buf sigs, head;
	char err[160], sels[2 * (DKIM_DOMAIN_MAX + 1)] = "";
	size_t k;

	if (d == NULL)
		return; /* no key for this mail: nothing to say */
	if (ij->body_iovcnt > 0) {
		/* stored in pieces (connauth.c leaves fields out of MX mail,
		 * which is never signed): a signature of ij->body would not
		 * be one of what is stored */
		log_err("id=%s sid=%s event=dkim_sign_failed d=%s "
			"error=\"content stored in pieces\" "
			"action=stored_unsigned",
		    r->id, r->sid, d->name);
		return;
	}
	buf_init(&sigs, 2 * DKIM_SIG_FIELD_MAX);
	memset(&o, 0, sizeof(o));
	o.domain = d->name;
	o.t = (int64_t)time(NULL);
	o.expire = r->expire;
	for (k = 0; k < d->n; k++) {
		o.selector = d->keys[k].selector;
		o.key = d->keys[k].pkey;
		if (dkim_sign_parts(&o, ij->head.data, ij->head.len, ij->body,
			ij->body_len, &sigs, err, sizeof(err)) != 0) {
			log_err("id=%s sid=%s event=dkim_sign_failed d=%s s=%s "
				"error=\"%s\" action=stored_unsigned",
			    r->id, r->sid, d->name, d->keys[k].selector, err);
			buf_free(&sigs);
			return;
		}
		str_fmt_cut(sels + strlen(sels), sizeof(sels) - strlen(sels),
		    "%s%s", k > 0 ? "," : "", d->keys[k].selector);
	}
	buf_init(&head, ij->head.max + 2 * DKIM_SIG_FIELD_MAX);
	if (buf_append(&head, sigs.data, sigs.len) != 0 ||
	    buf_append(&head, ij->head.data, ij->head.len) != 0) {
		log_err("id=%s sid=%s event=dkim_sign_failed d=%s "
			"error=\"header too large\" action=stored_unsigned",
		    r->id, r->sid, d->name);
		buf_free(&head);
	} else {
		buf_free(&ij->head);
		ij->head = head;
		log_info("id=%s sid=%s event=dkim_signed d=%s s=%s", r->id,
		    r->sid, d->name, sels);
	}
	buf_free(&sigs);
}

static void
ds_free(void *arg)
{
	struct ds_req *r = arg;

	dkimkeys_drop(r->keys);
	free(r);
}

void
dkimsign_attach(struct server *s, struct inject *ij, const char *sender,
    const char *id, const char *sid)
{
	struct ds_req *r;
	const char *at;

	if (!s->conf->dkim_sign || s->dkim == NULL ||
	    dkimkeys_domains(s->dkim) == 0 || ij->prepare != NULL)
		return;
	r = xcalloc(1, sizeof(*r));
	r->keys = s->dkim;
	dkimkeys_hold(r->keys);
	r->expire = (int64_t)s->conf->dkim_expire;
	at = strrchr(sender, '@');
	if (at != NULL && str_copy(r->sender_domain, sizeof(r->sender_domain),
			      at + 1, strlen(at + 1)) != 0)
		r->sender_domain[0] = '\0';
	str_fmt_cut(r->id, sizeof(r->id), "%s", id);
	str_fmt_cut(r->sid, sizeof(r->sid), "%s", sid[0] ? sid : "-");
	ij->prepare = ds_run;
	ij->prepare_free = ds_free;
	ij->prepare_arg = r;
}

void
dkimsign_reload(struct server *s)
{
	struct dkimkeys *old = s->dkim;

	s->dkim = dkimkeys_load(s->conf->state_dir);
	dkimkeys_drop(old);
}
