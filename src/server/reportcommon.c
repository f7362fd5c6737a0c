/*
 * reportcommon: the report senders' shared helpers; see reportcommon.h.
 */
#include <stdlib.h>
#include <string.h>

#include "server/reportcommon.h"
#include "util/util.h"

static int
report_names_into(const char *from_conf, const char *default_local,
    const char *hostname, const char *org_conf, const char *from_key,
    const char *org_key, const struct report_names *out, char *err,
    size_t errlen)
{
	char *from = out->from;
	const char *at;
	const char *o = org_conf != NULL ? org_conf : hostname;

	if (from_conf != NULL) {
		if (str_copy(from, out->fromlen, from_conf,
			strlen(from_conf)) != 0) {
			str_fmt_cut(err, errlen, "%s is too long", from_key);
			return -1;
		}
	} else if (str_fmt(from, out->fromlen, "%s@%s", default_local,
		       hostname) != 0) {
		str_fmt_cut(err, errlen, "hostname too long");
		return -1;
	}
	at = strrchr(from, '@');
	if (at == NULL || at == from || at[1] == '\0' ||
	    strpbrk(from, " \t\r\n<>,\"") != NULL ||
	    str_copy(out->submitter, out->submitterlen, at + 1,
		strlen(at + 1)) != 0) {
		str_fmt_cut(
		    err, errlen, "%s is not an address: %s", from_key, from);
		return -1;
	}
	str_lower(out->submitter);
	if (str_copy(out->org, out->orglen, o, strlen(o)) != 0 ||
	    strpbrk(out->org, "\r\n") != NULL) {
		str_fmt_cut(err, errlen, "%s is too long or holds a line break",
		    org_key);
		return -1;
	}
	return 0;
}

/* Made in buffers of their own, copied out whole: a failure (a reload's
 * names, taken by a run) leaves the names in use as they were. */
int
report_names(const char *from_conf, const char *default_local,
    const char *hostname, const char *org_conf, const char *from_key,
    const char *org_key, const struct report_names *out, char *err,
    size_t errlen)
{
	struct report_names t = {xmalloc(out->fromlen), out->fromlen,
	    xmalloc(out->submitterlen), out->submitterlen, xmalloc(out->orglen),
	    out->orglen};
	int r = report_names_into(from_conf, default_local, hostname, org_conf,
	    from_key, org_key, &t, err, errlen);

	if (r == 0) {
		memcpy(out->from, t.from, t.fromlen);
		memcpy(out->submitter, t.submitter, t.submitterlen);
		memcpy(out->org, t.org, t.orglen);
	}
	free(t.from);
	free(t.submitter);
	free(t.org);
	return r;
}

size_t
report_txt_records(
    const struct dns_answer *ans, const char **txt, size_t *len, char *store)
{
	size_t n = 0, i;
	char *at = store;

	for (i = 0; i < ans->n; i++) {
		if (!ans->rrs[i].txt_continue || n == 0) {
			txt[n] = at;
			len[n++] = 0;
		}
		memcpy(at, ans->rrs[i].data, ans->rrs[i].len);
		at += ans->rrs[i].len;
		len[n - 1] += ans->rrs[i].len;
	}
	return n;
}
