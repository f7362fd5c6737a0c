/*
 * fuzz_srs: libFuzzer harness for src/mailauth/srs.c.
 *
 * The input (cut at its first NUL, at most SRS_ADDR_MAX + 16 octets) is
 * an address handed to srs_reverse at the SRS domain "srs.example" and to
 * srs_forward.  Besides the sanitisers, it aborts when:
 *  - a status is not one of the enum's, or out is not "" on a failure;
 *  - a reversal succeeds for an address that is not an SRS0/SRS1 local
 *    part at srs.example (classification and reversal disagree);
 *  - a reversed SRS0 gives no '@', or a reversed SRS1 is not an SRS0;
 *  - a forward succeeds with a local part over SRS_LOCAL_MAX, or what it
 *    made does not reverse (at the same time) to what it was given, for
 *    SRS0, or to the first hop's SRS0 for SRS1.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mailauth/srs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned char k0[] = "fuzz-secret", k1[] = "older";
static const struct srs_secret keys[] = {{k0, 11}, {k1, 5}};
static const struct srs srs = {keys, 2, "srs.example", 21};
#define NOW ((time_t)1796585645)

static void
check_reverse(const char *in)
{
	char out[SRS_ADDR_MAX + 1];
	enum srs_status st = srs_reverse(&srs, in, NOW, out, sizeof(out));
	const char *at = strrchr(in, '@');

	if (st > SRS_TOO_LONG || (st != SRS_OK && out[0] != '\0'))
		abort();
	if (st != SRS_OK)
		return;
	if (at == NULL || strcasecmp(at + 1, "srs.example") != 0 ||
	    !srs_local_is_srs(in, (size_t)(at - in)) ||
	    strchr(out, '@') == NULL)
		abort();
	if (in[3] == '1' && strncmp(out, "SRS0", 4) != 0)
		abort();
}

static void
check_forward(const char *in)
{
	char out[SRS_ADDR_MAX + 1], back[SRS_ADDR_MAX + 1];
	enum srs_status st = srs_forward(&srs, in, NOW, out, sizeof(out));
	const char *at;

	if (st > SRS_TOO_LONG || (st != SRS_OK && out[0] != '\0'))
		abort();
	if (st != SRS_OK)
		return;
	at = strrchr(out, '@');
	if (at == NULL || (size_t)(at - out) > SRS_LOCAL_MAX)
		abort();
	if (srs_reverse(&srs, out, NOW, back, sizeof(back)) != SRS_OK)
		abort();
	if (strncmp(out, "SRS0", 4) == 0 && strcmp(back, in) != 0)
		abort();
	if (strncmp(out, "SRS1", 4) == 0 && strncmp(back, "SRS0", 4) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char in[SRS_ADDR_MAX + 17];
	size_t n = size < sizeof(in) - 1 ? size : sizeof(in) - 1;
	const char *nul = memchr(data, '\0', n);

	if (nul != NULL)
		n = (size_t)(nul - (const char *)data);
	memcpy(in, data, n);
	in[n] = '\0';
	check_reverse(in);
	check_forward(in);
	return 0;
}
