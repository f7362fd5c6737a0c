/*
 * t_pycheck: for the unit tests whose output an independent checker in
 * Python judges (tests/unit/check_*.py, reading with the standard email
 * package): a temporary directory for each case's files, the script found
 * beside the test's source, and /usr/bin/python3 run on one case.  The
 * directory is kept when a check failed, for a look.
 */
#ifndef TERN_TESTS_T_PYCHECK_H
#define TERN_TESTS_T_PYCHECK_H

#include <errno.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "t.h"
#include "util/util.h"

#define T_PYTHON "/usr/bin/python3"

extern char **environ;

struct t_pycheck {
	const char *test; /* the test binary's name, for messages */
	char dir[512];	  /* the cases' files */
	char script[512]; /* the checker */
};

/* A temporary directory, and script beside source_file (__FILE__). */
static inline bool
t_pycheck_open(struct t_pycheck *pc, const char *test, const char *script,
    const char *source_file)
{
	const char *t = getenv("TMPDIR");
	const char *slash = strrchr(source_file, '/');

	pc->test = test;
	if (str_fmt(pc->dir, sizeof(pc->dir), "%s/%s-XXXXXX",
		t && *t ? t : "/tmp", test) != 0 ||
	    mkdtemp(pc->dir) == NULL)
		return false;
	if (slash == NULL)
		return str_fmt(pc->script, sizeof(pc->script), "%s", script) ==
		       0;
	return str_fmt(pc->script, sizeof(pc->script), "%.*s/%s",
		   (int)(slash - source_file), source_file, script) == 0 &&
	       access(pc->script, R_OK) == 0;
}

/* DIR/NAME.EXT holding p[0..n). */
static inline bool
t_pycheck_write(const struct t_pycheck *pc, const char *name, const char *ext,
    const void *p, size_t n)
{
	char path[700];
	FILE *f;
	bool ok;

	if (str_fmt(path, sizeof(path), "%s/%s%s", pc->dir, name, ext) != 0 ||
	    (f = fopen(path, "wb")) == NULL)
		return false;
	ok = fwrite(p, 1, n, f) == n;
	return fclose(f) == 0 && ok;
}

/* DIR/FILE holding key as a traditional PEM (PKCS#1 for RSA), the form
 * dkimpy reads. */
static inline bool
t_pycheck_write_pem(const struct t_pycheck *pc, const char *file, EVP_PKEY *key)
{
	char path[700];
	BIO *bio;
	int ok;

	if (str_fmt(path, sizeof(path), "%s/%s", pc->dir, file) != 0 ||
	    (bio = BIO_new_file(path, "w")) == NULL)
		return false;
	ok = PEM_write_bio_PrivateKey_traditional(
	    bio, key, NULL, NULL, 0, NULL, NULL);
	BIO_free(bio);
	return ok == 1;
}

/* DIR/NAME.EXT appended to out (what the checker wrote). */
static inline bool
t_pycheck_read(const struct t_pycheck *pc, const char *name, const char *ext,
    struct buf *out)
{
	char path[700], chunk[4096];
	FILE *f;
	size_t n;
	bool ok = true;

	if (str_fmt(path, sizeof(path), "%s/%s%s", pc->dir, name, ext) != 0 ||
	    (f = fopen(path, "rb")) == NULL)
		return false;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		ok = ok && buf_append(out, chunk, n) == 0;
	fclose(f);
	return ok;
}

/* A JSON object of n names and their string values (DNS TXT records for
 * the checker's dnsfunc), appended to j; none may need escaping. */
static inline bool
t_pycheck_json_map(struct buf *j, const char *const *names,
    const char *const *values, size_t n)
{
	size_t k;
	bool ok = buf_append_str(j, "{") == 0;

	for (k = 0; k < n; k++)
		ok = ok && buf_printf(j, "%s\"%s\": \"%s\"", k ? ", " : "",
			       names[k], values[k]) == 0;
	return ok && buf_append_str(j, "}") == 0;
}

/* The checker on case NAME: true when it exits 0. */
static inline bool
t_pycheck_run(const struct t_pycheck *pc, const char *name)
{
	static char py[] = T_PYTHON;
	char script[sizeof(pc->script)], dir[sizeof(pc->dir)], nm[128];
	char *argv[] = {py, script, dir, nm, NULL};
	pid_t pid;
	int st;

	if (str_copy(nm, sizeof(nm), name, strlen(name)) != 0 ||
	    str_copy(script, sizeof(script), pc->script, strlen(pc->script)) !=
		0 ||
	    str_copy(dir, sizeof(dir), pc->dir, strlen(pc->dir)) != 0)
		return false;
	if (access(T_PYTHON, X_OK) != 0) {
		fprintf(stderr,
		    "FAIL: %s is missing (apt-get install python3)\n",
		    T_PYTHON);
		return false;
	}
	if (posix_spawn(&pid, T_PYTHON, NULL, NULL, argv, environ) != 0)
		return false;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return false;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* Remove the directory, unless a check failed. */
static inline void
t_pycheck_close(const struct t_pycheck *pc)
{
	char cmd[600];

	if (t_failed) {
		fprintf(stderr, "%s: files kept in %s\n", pc->test, pc->dir);
		return;
	}
	if (str_fmt(cmd, sizeof(cmd), "rm -rf '%s'", pc->dir) == 0 &&
	    system(cmd) != 0)
		fprintf(stderr, "%s: could not remove %s\n", pc->test, pc->dir);
}

#endif
