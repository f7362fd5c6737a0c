/*
 * qfail: the queue stores' error wording (qfail.h).
 */
#include <errno.h>
#include <string.h>

#include "queue/qfail.h"
#include "queue/queue.h"
#include "util/util.h"

void
queue_fail(char *err, size_t errlen, const char *step, const char *what,
    const char *id)
{
	int saved = errno;
	char ebuf[128];

	if (err != NULL)
		str_fmt_cut(err, errlen, "%s %s%s%s: %s", step, what,
		    id != NULL ? " of " : "", id != NULL ? id : "",
		    strerror_r(saved, ebuf, sizeof(ebuf)));
	errno = saved;
}

int
queue_check_id(const char *id, char *err, size_t errlen)
{
	if (id != NULL && queue_id_valid(id))
		return 0;
	errno = EINVAL;
	queue_fail(err, errlen, "check", "queue id", NULL);
	return -1;
}

int
queue_log_fail(const char *op, const char *id, const char *err)
{
	int saved = errno;
	char safe_id[QUEUE_ID_LEN * 4 + 4];

	log_err("id=%s event=queue_%s_failed errno=%d error=\"%s\"",
	    log_sanitize(safe_id, sizeof(safe_id), id != NULL ? id : "-",
		id != NULL ? strnlen(id, QUEUE_ID_LEN + 1) : 1),
	    op, saved, err);
	errno = saved;
	return -1;
}
