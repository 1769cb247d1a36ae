/* What the unit tests share: one assertion helper that counts and names
 * what failed, and the file helpers for their scratch directories. */
#ifndef SV_TEST_CHECK_H
#define SV_TEST_CHECK_H

#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

static int passed, failed;

__attribute__((format(printf, 2, 3))) static int check(int ok, const char *fmt, ...)
{
	va_list ap;

	if (ok) {
		passed++;
		return 1;
	}
	failed++;
	fprintf(stderr, "FAIL: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 0;
}

/* snprintf into a PATH_MAX buffer; a cut path would test the wrong file. */
__attribute__((format(printf, 2, 3))) static inline void pathf(char *out, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, PATH_MAX, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= PATH_MAX) {
		fprintf(stderr, "FAIL: path too long\n");
		exit(1);
	}
}

/* Writes a whole file or ends the test: its setup failed. */
static inline void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(data, 1, len, f) != len || fclose(f)) {
		fprintf(stderr, "FAIL: cannot write %s\n", path);
		exit(1);
	}
}

/* A new scratch directory $TMPDIR/NAME.XXXXXX into out, or the test ends. */
static inline void scratch_dir(char *out, const char *name)
{
	const char *tmp = getenv("TMPDIR");

	pathf(out, "%s/%s.XXXXXX", tmp && *tmp ? tmp : "/tmp", name);
	if (!mkdtemp(out)) {
		perror("mkdtemp");
		exit(1);
	}
}

static inline int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static inline void rm_rf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
