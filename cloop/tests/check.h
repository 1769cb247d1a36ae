/* The unit tests' one assertion helper: counts, and names what failed. */
#ifndef HC_TEST_CHECK_H
#define HC_TEST_CHECK_H

#include <stdarg.h>
#include <stdio.h>

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

#endif
