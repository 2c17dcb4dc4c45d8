/*
 * tap.h - a header-only Test Anything Protocol helper for the unit tests.
 *
 * The tests are run by automake's tap-driver.sh, which reads the TAP lines
 * on stdout and also checks the exit status, so a test program ends with
 * `return tap_exit();`.  Everything here is static inline: each test is
 * one translation unit and uses only part of it.
 *
 *   plan(n) / done_testing()      the "1..N" line, first or last
 *   ok(cond, fmt, ...)            one test point; returns cond
 *   is_int, is_double, is_str     comparisons that print got/want on failure
 *   skip(n, fmt, ...)             "ok N # SKIP reason", n times
 *   todo_start(fmt, ...)          following points are "# TODO reason": a
 *   todo_end()                    known bug, reported but not failing
 *   diag(fmt, ...)                a "# " comment line
 *   tap_exit()                    0 when every point passed, else 1
 */
#ifndef MEM_TAP_H
#define MEM_TAP_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAP_PRINTF(f, a) __attribute__((format(printf, f, a)))

static int tap_count;		/* test points printed */
static int tap_failed;		/* failed points outside TODO blocks */
static int tap_planned = -1;	/* -1 until plan() or done_testing() */
static char tap_todo[256];	/* reason of the open TODO block, or "" */

static inline void
plan(int n)
{
	tap_planned = n;
	printf("1..%d\n", n);
	fflush(stdout);
}

static inline void
done_testing(void)
{
	if (tap_planned >= 0)
		return;
	tap_planned = tap_count;
	printf("1..%d\n", tap_count);
	fflush(stdout);
}

static inline void TAP_PRINTF(1, 0)
tap_vdiag(const char *fmt, va_list ap)
{
	char buf[4096], *line, *save = NULL;

	vsnprintf(buf, sizeof buf, fmt, ap);
	/* one "# " per line, so a multi-line message stays a comment */
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		printf("# %s\n", line);
	fflush(stdout);
}

static inline void TAP_PRINTF(1, 2)
diag(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tap_vdiag(fmt, ap);
	va_end(ap);
}

static inline void TAP_PRINTF(1, 2)
todo_start(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tap_todo, sizeof tap_todo, fmt, ap);
	va_end(ap);
}

static inline void
todo_end(void)
{
	tap_todo[0] = '\0';
}

/* Prints one test point; the name must not start with a digit or hold '#'. */
static inline int TAP_PRINTF(2, 0)
tap_vok(int pass, const char *fmt, va_list ap)
{
	char name[1024];

	vsnprintf(name, sizeof name, fmt, ap);
	tap_count++;
	printf("%sok %d - %s", pass ? "" : "not ", tap_count, name);
	if (tap_todo[0] != '\0')
		printf(" # TODO %s", tap_todo);
	else if (!pass)
		tap_failed++;
	printf("\n");
	fflush(stdout);
	return pass;
}

static inline int TAP_PRINTF(2, 3)
ok(int pass, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tap_vok(pass, fmt, ap);
	va_end(ap);
	return pass;
}

static inline int TAP_PRINTF(3, 4)
is_int(long long got, long long want, const char *fmt, ...)
{
	va_list ap;
	int pass = got == want;

	va_start(ap, fmt);
	tap_vok(pass, fmt, ap);
	va_end(ap);
	if (!pass)
		diag("     got: %lld\n    want: %lld", got, want);
	return pass;
}

/* Passes when |got - want| <= tol; NaN equals NaN, an infinity itself. */
static inline int TAP_PRINTF(4, 5)
is_double(double got, double want, double tol, const char *fmt, ...)
{
	va_list ap;
	int pass;

	if (isnan(want) || isnan(got))
		pass = isnan(want) && isnan(got);
	else if (isinf(want) || isinf(got))
		pass = got == want;
	else
		pass = fabs(got - want) <= tol;
	va_start(ap, fmt);
	tap_vok(pass, fmt, ap);
	va_end(ap);
	if (!pass)
		diag("     got: %.17g\n    want: %.17g (tolerance %g)", got, want, tol);
	return pass;
}

/* NULL equals only NULL. */
static inline int TAP_PRINTF(3, 4)
is_str(const char *got, const char *want, const char *fmt, ...)
{
	va_list ap;
	int pass = (got == NULL || want == NULL) ? got == want : strcmp(got, want) == 0;

	va_start(ap, fmt);
	tap_vok(pass, fmt, ap);
	va_end(ap);
	if (!pass)
		diag("     got: %s%s%s\n    want: %s%s%s", got ? "'" : "", got ? got : "NULL",
		    got ? "'" : "", want ? "'" : "", want ? want : "NULL", want ? "'" : "");
	return pass;
}

/* Passes when haystack contains needle (for error messages). */
static inline int TAP_PRINTF(3, 4)
like(const char *got, const char *needle, const char *fmt, ...)
{
	va_list ap;
	int pass = got != NULL && strstr(got, needle) != NULL;

	va_start(ap, fmt);
	tap_vok(pass, fmt, ap);
	va_end(ap);
	if (!pass)
		diag("     got: '%s'\n    want: a string containing '%s'", got ? got : "NULL",
		    needle);
	return pass;
}

static inline void TAP_PRINTF(2, 3)
skip(int n, const char *fmt, ...)
{
	char reason[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof reason, fmt, ap);
	va_end(ap);
	while (n-- > 0) {
		tap_count++;
		printf("ok %d # SKIP %s\n", tap_count, reason);
	}
	fflush(stdout);
}

/* 0 when every point passed and the plan was kept, else 1. */
static inline int
exit_status(void)
{
	if (tap_planned >= 0 && tap_planned != tap_count) {
		diag("planned %d tests but ran %d", tap_planned, tap_count);
		return 1;
	}
	if (tap_failed > 0)
		diag("failed %d of %d tests", tap_failed, tap_count);
	return tap_failed > 0 ? 1 : 0;
}

/* Prints the plan when none was given, then returns the exit status. */
static inline int
tap_exit(void)
{
	done_testing();
	return exit_status();
}

#endif
