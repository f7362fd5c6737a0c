/*
 * envjson.c: an envelope as the JSON object `tern queue list/show` prints
 * (queue_env_json, queue.h).  Pure: strings are escaped as RFC 8259 7
 * wants them, control characters as \u00XX, so text from a peer (a reply)
 * cannot break the document.
 */
#include <string.h>

#include "queue/queue.h"

static int
ej_str(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	int r = buf_append(b, "\"", 1);

	for (; *s && r == 0; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			char esc[2] = {'\\', (char)c};
			r = buf_append(b, esc, 2);
		} else if (c < 0x20 || c == 0x7f) {
			char esc[6] = {
			    '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
			r = buf_append(b, esc, 6);
		} else {
			r = buf_append(b, s, 1);
		}
	}
	return r | buf_append(b, "\"", 1);
}

static int
ej_rcpt(struct buf *b, const struct queue_rcpt *rc, bool first)
{
	int r = buf_append_str(b, first ? "{\"addr\":" : ",{\"addr\":");

	r |= ej_str(b, rc->addr);
	r |= buf_printf(b,
	    ",\"state\":\"%s\",\"attempts\":%u,\"next_try\":%lld,"
	    "\"code\":%d,\"enh\":",
	    queue_rcpt_state_name(rc->state), rc->attempts,
	    (long long)rc->next_try, rc->code);
	r |= ej_str(b, rc->enh);
	r |= buf_append_str(b, ",\"text\":");
	r |= ej_str(b, rc->text);
	return r | buf_append_str(b, "}");
}

int
queue_env_json(const struct queue_env *env, struct buf *out)
{
	size_t i;
	int r = 0;

	r |= buf_append_str(out, "{\"id\":");
	r |= ej_str(out, env->id);
	r |= buf_printf(out,
	    ",\"created\":%lld,\"size\":%llu,\"held\":%s,\"next_try\":%lld,"
	    "\"sender\":",
	    (long long)env->created, (unsigned long long)env->size,
	    env->held ? "true" : "false", (long long)env->next_try);
	r |= ej_str(out, env->sender);
	/* RFC 8689: the MAIL parameter and the header field as received */
	r |= buf_printf(out, ",\"requiretls\":%s,\"tls_required_no\":%s",
	    env->requiretls ? "true" : "false",
	    env->tls_required_no ? "true" : "false");
	r |= buf_append_str(out, ",\"recipients\":[");
	for (i = 0; i < env->nrcpt; i++)
		r |= ej_rcpt(out, &env->rcpt[i], i == 0);
	r |= buf_append_str(out, "]}");
	return r != 0 ? -1 : 0;
}
