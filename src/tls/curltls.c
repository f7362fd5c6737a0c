/*
 * curltls: trust and cancellation of ternd's libcurl handles (curltls.h).
 */
#include "tls/curltls.h"

/* libcurl calls it at least once a second, transferring or not. */
static int
curltls_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow,
    curl_off_t ultotal, curl_off_t ulnow)
{
	const atomic_bool *cancel = arg;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return atomic_load_explicit(cancel, memory_order_relaxed) ? 1 : 0;
}

int
curltls_setup(CURL *h, const char *ca_file, const char *ca_path,
    const atomic_bool *cancel)
{
	if (ca_file != NULL &&
	    curl_easy_setopt(h, CURLOPT_CAINFO, ca_file) != CURLE_OK)
		return -1;
	if (ca_path != NULL &&
	    curl_easy_setopt(h, CURLOPT_CAPATH, ca_path) != CURLE_OK)
		return -1;
	if (cancel != NULL &&
	    (curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, curltls_progress) !=
		    CURLE_OK ||
		curl_easy_setopt(h, CURLOPT_XFERINFODATA, cancel) != CURLE_OK ||
		curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L) != CURLE_OK))
		return -1;
	return 0;
}
