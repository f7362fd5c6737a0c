/*
 * libFuzzer harness for the configuration reader (src/conf/conf.c over
 * inih): the input is a configuration file.  The first line may instead
 * be "-o key=value" overrides separated by NUL bytes, to reach the
 * override path too.  Every successful load is dumped (conf_dump) so the
 * formatting of every field is exercised; conf_free must leave nothing
 * behind (LeakSanitizer).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conf/conf.h"

static void
sink(const char *line, void *ctx)
{
	(void)line;
	(void)ctx;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64], err[512];
	char *ov[8];
	size_t nov = 0, split = 0;
	char *copy = NULL;
	struct conf *c;
	int fd;

	/* "OVR" prefix: the part up to the first newline holds overrides */
	if (size > 3 && memcmp(data, "OVR", 3) == 0) {
		const uint8_t *nl = memchr(data, '\n', size);

		size_t n, off = 0;

		split = nl ? (size_t)(nl - data) + 1 : size;
		n = split - 3;
		copy = malloc(n + 1);
		memcpy(copy, data + 3, n);
		copy[n] = '\0'; /* NULs inside separate the overrides */
		while (off < n && nov < 8) {
			ov[nov++] = copy + off;
			off += strlen(copy + off) + 1;
		}
	}
	fd = memfd_create("conf", 0);
	if (fd < 0)
		abort();
	if (write(fd, data + split, size - split) != (ssize_t)(size - split))
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	c = conf_load(path, ov, nov, err, sizeof(err));
	if (c != NULL) {
		conf_dump(c, sink, NULL);
		conf_free(c);
	} else if (err[0] == '\0') {
		abort(); /* a refusal must say why */
	}
	close(fd);
	free(copy);
	return 0;
}
