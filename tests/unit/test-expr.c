/*
 * test-expr.c - the band-math compiler and evaluator (src/kern/expr.c).
 *
 * Values are worked out by hand or by a plain C loop written here; errors
 * are checked for their column and message; hostile input (deep nesting,
 * huge literals, endless terms, stray bytes) must be refused cleanly, which
 * the sanitizer build also watches.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr.h"
#include "tap.h"

/* The value of a constant expression (no names). */
static double
value(const char *src)
{
	struct mem_expr_error e;
	struct mem_expr *x = mem_expr_compile(src, &e);
	float out = -42;

	if (x == NULL) {
		diag("'%s': column %d: %s", src, e.column, e.msg);
		return -999;
	}
	mem_expr_eval(x, NULL, &out, 1);
	mem_expr_free(x);
	return out;
}

/* Compiles src, which must fail at column col with a message containing msg. */
static void
fails(const char *src, int col, const char *msg)
{
	struct mem_expr_error e;
	struct mem_expr *x = mem_expr_compile(src, &e);

	if (x) {
		ok(0, "'%.40s' is refused", src);
		mem_expr_free(x);
		return;
	}
	if (col >= 0)
		is_int(e.column, col, "'%.40s': column %d", src, col);
	like(e.msg, msg, "'%.40s': %s", src, msg);
}

static void
test_precedence(void)
{
	is_double(value("1 + 2 * 3"), 7, 0, "* binds tighter than +");
	is_double(value("(1 + 2) * 3"), 9, 0, "parentheses");
	is_double(value("1 - 2 - 3"), -4, 0, "- is left-associative");
	is_double(value("8 / 4 / 2"), 1, 0, "/ is left-associative");
	is_double(value("-2 * -3"), 6, 0, "unary minus");
	is_double(value("- - 2"), 2, 0, "unary minus twice");
	is_double(value("+2"), 2, 0, "unary plus");
	is_double(value("2 * 3 > 5 && 1"), 1, 0, "arithmetic before comparison before &&");
	is_double(value("1 || 0 && 0"), 1, 0, "&& binds tighter than ||");
	is_double(value("1 < 2 == 1"), 1, 0, "comparison before ==");
	is_double(value("!0 + 1"), 2, 0, "! binds tightest");
	is_double(value("!(0 + 1)"), 0, 0, "! of a parenthesis");
	is_double(value("1 ? 2 : 0 ? 3 : 4"), 2, 0, "?: is right-associative (first)");
	is_double(value("0 ? 2 : 0 ? 3 : 4"), 4, 0, "?: is right-associative (last)");
	is_double(value("0 ? 2 : 1 ? 3 : 4"), 3, 0, "?: is right-associative (middle)");
	is_double(value("1 > 2 ? 10 : 20"), 20, 0, "comparison in a condition");
	is_double(value("3 <= 3 && 3 >= 3 && 2 != 3 && !(2 == 3)"), 1, 0, "<= >= != ==");
	is_double(value("1.5e2 + .5 + 2."), 152.5, 0, "number forms");
	is_double(value("min(3, 1, 2) + max(4, 9, 5)"), 10, 0, "min and max of three");
	is_double(value("abs(-2) + sqrt(16) + pow(2, 10)"), 1030, 0, "abs sqrt pow");
	is_double(value("log(exp(2))"), 2, 1e-6, "log and exp");
	is_double(value("1 / 0"), INFINITY, 0, "1 / 0 is an infinity");
	ok(isnan(value("0 / 0")), "0 / 0 is NaN");
	ok(isnan(value("min(0 / 0, 1)")), "min keeps NaN (nodata stays nodata)");
	ok(isnan(value("max(1, 0 / 0)")), "max keeps NaN from either side");
	ok(isnan(value("min(1, 0 / 0)")), "min keeps NaN from either side");
	is_double(value("(0 / 0) ? 1 : 2"), 1, 0, "NaN is true, as in C and numpy");
	is_double(value("(0 / 0) > 0"), 0, 0, "a comparison with NaN is false");
	is_double(value("  1\t+\n1 "), 2, 0, "white space anywhere");
}

static void
test_program(void)
{
	struct mem_expr_error e;
	struct mem_expr *x;

	x = mem_expr_compile("1 + 2 * 3 - pow(2, 3)", &e);
	ok(x && mem_expr_nops(x) == 0, "constants fold to no operations");
	mem_expr_free(x);
	x = mem_expr_compile("(nir - red) / (nir + red) > 0.3 ? nir : 0 - red", &e);
	ok(x != NULL, "an NDVI threshold compiles");
	if (x) {
		is_int((long long)mem_expr_nvars(x), 2, "two names");
		is_str(mem_expr_var(x, 0), "nir", "names in order of first use (nir)");
		is_str(mem_expr_var(x, 1), "red", "names in order of first use (red)");
		ok(mem_expr_var(x, 2) == NULL, "no third name");
		is_int((long long)mem_expr_nops(x), 6, "six operations");
	}
	mem_expr_free(x);
	x = mem_expr_compile("1 ? a : b", &e);
	ok(x && mem_expr_nops(x) == 0, "a constant condition picks its branch at compile time");
	mem_expr_free(x);
}

static void
test_arrays(void)
{
	enum {
		N = 1000
	}; /* more than one chunk, not a multiple of it */
	static float a[N], b[N], c[N], out[N];
	const float *vars[3] = { a, b, c };
	struct mem_expr_error e;
	struct mem_expr *x;
	int bad = 0, nan_ok = 1;

	for (int i = 0; i < N; i++) {
		a[i] = (float)(i % 37) / 10.0f - 1.0f;
		b[i] = (float)(i % 11) / 7.0f;
		c[i] = (i % 97 == 0) ? NAN : (float)(i % 5);
	}
	x = mem_expr_compile(
	    "a > 0 && b < 1 ? min(a, b, c) * 2 + sqrt(abs(a)) : -(a + (b + (c + a)))", &e);
	ok(x != NULL, "a nested expression compiles");
	if (x == NULL)
		return;
	is_int(mem_expr_eval(x, vars, out, N), 0, "evaluates %d pixels", N);
	for (int i = 0; i < N; i++) {
		double A = a[i], B = b[i], C = c[i], m, want;

		m = A;
		m = m != m || B != B ? m + B : (B < m ? B : m);
		m = m != m || C != C ? m + C : (C < m ? C : m);
		want = (A > 0) && (B < 1) ? m * 2 + sqrt(fabs(A)) : -(A + (B + (C + A)));
		if (isnan(want) || isnan(out[i]))
			nan_ok &= isnan(want) && isnan(out[i]);
		else if (out[i] != (float)want)
			bad++;
	}
	is_int(bad, 0, "equals a plain double loop rounded once, pixel by pixel");
	ok(nan_ok, "NaN exactly where the loop has NaN");
	mem_expr_free(x);

	x = mem_expr_compile("a", &e);
	mem_expr_eval(x, vars, out, N);
	ok(memcmp(out, a, sizeof out) == 0, "a bare name copies its band");
	mem_expr_free(x);
	x = mem_expr_compile("2.5", &e);
	mem_expr_eval(x, vars, out, N);
	ok(out[0] == 2.5f && out[N - 1] == 2.5f, "a constant fills every pixel");
	mem_expr_free(x);
}

static void
test_errors(void)
{
	char *s;
	size_t i, n;

	fails("(a + b", 7, "expected ')'");
	fails("red +", 6, "unexpected end of expression");
	fails("1 +* 2", 4, "unexpected '*'");
	fails("", 1, "unexpected end of expression");
	fails("a b", 3, "unexpected 'b'");
	fails("a = b", 3, "unexpected '='");
	fails("a & b", 3, "unexpected '&'");
	fails("a | b", 3, "unexpected '|'");
	fails("a $ b", 3, "unexpected '$'");
	fails("a \x01 b", 3, "unexpected byte 0x01");
	fails("a ? b", 6, "expected ':'");
	fails("foo(1)", 1, "unknown function 'foo'");
	fails("system(1)", 1, "unknown function 'system'");
	fails("min(1)", 1, "'min' takes 2 or more arguments, not 1");
	fails("sqrt(1, 2)", 1, "'sqrt' takes 1 argument, not 2");
	fails("pow(2)", 1, "'pow' takes 2 arguments, not 1");
	fails("max(1,)", 7, "unexpected ')'");
	fails("1e999", 1, "number out of range");
	fails("2 * 1e400", 5, "number out of range");
	fails("0x10", 1, "malformed number");
	fails("1.2.3", 1, "malformed number");
	fails("12abc", 1, "malformed number");
	fails(".", 1, "unexpected '.'");

	/* deep nesting: refused, not a stack overflow */
	n = 10000;
	s = malloc(2 * n + 2);
	for (i = 0; i < n; i++)
		s[i] = '(';
	s[n] = '1';
	for (i = 0; i < n; i++)
		s[n + 1 + i] = ')';
	s[2 * n + 1] = '\0';
	fails(s, -1, "expression too long");
	s[MEM_EXPR_MAX_DEPTH + 10] = '\0';
	fails(s, -1, "nested too deeply");
	memset(s, '-', 200);
	strcpy(s + 200, "1");
	fails(s, -1, "nested too deeply");
	free(s);

	/* many terms within the length limit: bounded by the node limit */
	s = malloc(MEM_EXPR_MAX_LEN + 1);
	for (i = 0; i + 2 <= MEM_EXPR_MAX_LEN; i += 2)
		memcpy(s + i, "a+", 2);
	s[i - 1] = '\0';
	fails(s, -1, "expression too large");
	free(s);

	/* many names */
	s = malloc(4096);
	s[0] = '\0';
	for (i = 0; i < 70; i++)
		snprintf(s + strlen(s), 4096 - strlen(s), "%sb%zu", i ? "+" : "", i);
	fails(s, -1, "too many names");
	free(s);
}

int
main(void)
{
	test_precedence();
	test_program();
	test_arrays();
	test_errors();
	done_testing();
	return tap_exit();
}
