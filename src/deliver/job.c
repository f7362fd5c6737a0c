/*
 * job: the jobs of remote delivery and their FIFOs (job.h).  A job owns
 * copies of everything in its remote_msg and the read-only map of the
 * message; job_free() unmaps it.  Finished jobs go to the engine's done
 * list, whose callbacks run from a zero-delay event (remote.c), never
 * inside the code that finished them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "mime/mime.h"
#include "util/util.h"
#include "deliver/job.h"
#include "deliver/remote.h"
#include "deliver/remote_int.h"

/* ======================================================================
 * Job queues
 * ====================================================================== */

void
jobq_init(struct jobq *q)
{
	q->head = NULL;
	q->tail = &q->head;
}

void
jobq_push(struct jobq *q, struct rjob *j)
{
	j->next = NULL;
	*q->tail = j;
	q->tail = &j->next;
}

struct rjob *
jobq_pop(struct jobq *q)
{
	struct rjob *j = q->head;

	if (j == NULL)
		return NULL;
	q->head = j->next;
	if (q->head == NULL)
		q->tail = &q->head;
	j->next = NULL;
	return j;
}

/* Free every job whose arg is arg (all when all); returns how many. */
size_t
jobq_drop(struct jobq *q, void *arg, bool all)
{
	struct rjob **pp = &q->head, *j;
	size_t n = 0;

	while ((j = *pp) != NULL) {
		if (!all && j->arg != arg) {
			pp = &j->next;
			continue;
		}
		*pp = j->next;
		job_free(j);
		n++;
	}
	q->tail = &q->head;
	while (*q->tail != NULL)
		q->tail = &(*q->tail)->next;
	return n;
}

/* ======================================================================
 * Jobs
 * ====================================================================== */

void
job_free(struct rjob *j)
{
	size_t i;

	if (j == NULL)
		return;
	for (i = 0; i < j->nrcpts; i++) {
		free((char *)(uintptr_t)j->rcpts[i].addr);
		free((char *)(uintptr_t)j->rcpts[i].orcpt_type);
		free((char *)(uintptr_t)j->rcpts[i].orcpt);
	}
	mime_plan_free(j->plan);
	free(j->plan);
	if (j->mapbase != NULL && munmap(j->mapbase, j->mapbaselen) != 0)
		log_warn(
		    "id=%s event=munmap error=\"%s\"", j->id, strerror(errno));
	free(j->rcpts);
	free(j->results);
	free(j->lmtp);
	free(j->id);
	free(j->sender);
	free(j->envid);
	free(j);
}

struct rjob *
job_new(const struct remote_msg *m, remote_done_fn done, void *arg)
{
	struct rjob *j = xcalloc(1, sizeof(*j));
	size_t i;

	j->id = xstrdup(m->id != NULL ? m->id : "-");
	j->sender = xstrdup(m->sender != NULL ? m->sender : "");
	j->envid = dup_or_null(m->envid);
	j->nrcpts = m->rcpts != NULL ? m->nrcpts : 0;
	j->rcpts = xcalloc(j->nrcpts + 1, sizeof(*j->rcpts));
	j->results = xcalloc(j->nrcpts + 1, sizeof(*j->results));
	for (i = 0; i < j->nrcpts; i++) {
		const struct smtp_client_rcpt *in = &m->rcpts[i];

		j->rcpts[i].addr = xstrdup(in->addr != NULL ? in->addr : "");
		j->rcpts[i].notify = in->notify;
		j->rcpts[i].orcpt_type = dup_or_null(in->orcpt_type);
		j->rcpts[i].orcpt = dup_or_null(in->orcpt);
	}
	j->size = m->size;
	j->body_8bit = m->body_8bit;
	j->smtputf8 = m->smtputf8;
	j->requiretls = m->requiretls;
	j->tls_required_no = m->tls_required_no;
	j->ret = m->ret;
	j->lmtp = dup_or_null(m->lmtp);
	j->done = done;
	j->arg = arg;
	return j;
}

/*
 * Map len octets at off in fd read-only; 0, or -1 with err filled.  A
 * mapping starts at a page boundary: the one below off (the queue's log
 * keeps messages at any offset of a segment).
 */
int
job_map(struct rjob *j, int fd, uint64_t off, uint64_t len, char *err,
    size_t errlen)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE),
		 base = off - off % page;
	struct stat st;
	void *p;

	if (fstat(fd, &st) != 0) {
		str_fmt_cut(err, errlen, "cannot read the message: fstat: %s",
		    strerror(errno));
		return -1;
	}
	if (len == 0)
		return 0;
	if (off > (uint64_t)st.st_size || len > (uint64_t)st.st_size - off ||
	    len + (off - base) > SIZE_MAX) {
		str_fmt_cut(err, errlen,
		    "cannot read the message: the file is shorter");
		return -1;
	}
	p = mmap(NULL, (size_t)(len + (off - base)), PROT_READ, MAP_PRIVATE, fd,
	    (off_t)base);
	if (p == MAP_FAILED) {
		str_fmt_cut(err, errlen, "cannot read the message: mmap: %s",
		    strerror(errno));
		return -1;
	}
	(void)madvise(p, (size_t)(len + (off - base)), MADV_SEQUENTIAL);
	j->mapbase = p;
	j->mapbaselen = (size_t)(len + (off - base));
	j->map = (char *)p + (off - base);
	j->maplen = (size_t)len;
	/* an 8-bit message: its 7-bit form is planned now, for the SIZE= and
	   the go/no-go a peer without 8BITMIME needs before MAIL (RFC 6152);
	   one pass over the message, no copy of it */
	if (j->body_8bit || mime_has_8bit(j->map, j->maplen)) {
		j->plan = xcalloc(1, sizeof(*j->plan));
		mime_plan_7bit(j->plan, j->map, j->maplen);
		if (j->plan->flags & MIME_F_IMPOSSIBLE)
			log_info("id=%s event=mime_7bit status=impossible "
				 "text=\"%s\"",
			    j->id, j->plan->why);
	}
	return 0;
}

/* The message part of a client configuration. */
void
job_client_conf(
    const struct remote *r, const struct rjob *j, struct smtp_client_conf *cf)
{
	memset(cf, 0, sizeof(*cf));
	cf->helo = r->helo;
	cf->sender = j->sender;
	cf->rcpts = j->rcpts;
	cf->nrcpts = j->nrcpts;
	cf->size = j->size;
	/* declared 8BITMIME or found 8-bit: job_map() made a plan (an empty
	   message has none, and nothing 8-bit to declare) */
	cf->body_8bit = j->plan != NULL;
	cf->smtputf8 = j->smtputf8;
	cf->requiretls = j->requiretls;
	if (j->plan != NULL) {
		if (!(j->plan->flags & MIME_F_IMPOSSIBLE))
			cf->downgrade |= SMTP_DOWNGRADE_OK;
		else
			cf->downgrade_why = j->plan->why;
		if (j->plan->flags & MIME_F_HDR_8BIT)
			cf->downgrade |= SMTP_DOWNGRADE_HDR_8BIT;
		/* SIZE= counts what is sent: the stored size, changed by as
		   much as the conversion changes the file */
		cf->size_7bit = j->size - j->maplen + j->plan->out_size;
	}
	cf->ret = j->ret;
	cf->envid = j->envid;
}

void
job_set_tls(struct rjob *j, const char *policy, bool verified)
{
	j->tls_policy = policy;
	j->tls_verified = verified;
}

void
job_set_all(struct rjob *j, const struct smtp_client_result *res)
{
	size_t i;

	for (i = 0; i < j->nrcpts; i++)
		j->results[i] = *res;
}

static const char *
result_event(enum smtp_result_class cls)
{
	return cls == SMTP_RESULT_OK	 ? "delivered"
	       : cls == SMTP_RESULT_PERM ? "bounced"
					 : "deferred";
}

/* One line per recipient: where it went and what the peer said. */
static void
job_log(const struct rjob *j, const char *mx, const char *addr)
{
	char to[ADDR_PATH_MAX * 2], text[1024];
	size_t i;

	for (i = 0; i < j->nrcpts; i++) {
		const struct smtp_client_result *res = &j->results[i];

		log_info("id=%s mx=%s addr=%s event=%s to=<%s> code=%d enh=%s "
			 "%s%s%s%s%stext=\"%s\"",
		    j->id, mx[0] != '\0' ? mx : "none", addr,
		    result_event(res->cls),
		    log_sanitize(to, sizeof(to), j->rcpts[i].addr,
			strlen(j->rcpts[i].addr)),
		    res->code, res->enh[0] != '\0' ? res->enh : "none",
		    j->tls_policy != NULL ? "verified=" : "",
		    j->tls_policy == NULL ? ""
		    : j->tls_verified	  ? "yes"
					  : "no",
		    j->tls_policy != NULL ? " tls_policy=" : "",
		    j->tls_policy != NULL ? j->tls_policy : "",
		    j->tls_policy != NULL ? " " : "",
		    log_quote(
			text, sizeof(text), res->text, strlen(res->text)));
	}
}

/* The job's results are final: queue its callback. */
void
job_finish(
    struct remote *r, struct rjob *j, const char *mx_log, const char *addr_log)
{
	job_log(j, mx_log, addr_log);
	jobq_push(&r->done, j);
	event_active(r->done_ev, EV_TIMEOUT, 0);
}
