/*
 * expr.h - band math: a small expression language compiled once into a
 * register program and evaluated over float arrays.
 *
 * The language: numbers, names (bands or earlier stages, resolved by the
 * caller), + - * / and unary -, < <= > >= == !=, && || !, cond ? a : b,
 * parentheses, and the functions min, max (two or more arguments), abs,
 * sqrt, log, exp and pow.  Comparisons and logic give 1 or 0; a value is
 * true when it is not 0 (NaN is true, as in C and numpy).  Arithmetic is
 * IEEE double: x / 0 is an infinity or NaN, NaN carries through.
 *
 * Nothing is executed but the fixed operations of the program; the text
 * is never handed to an interpreter.  Like the other kernels this knows
 * nothing of files or items: names are slots the caller fills.
 */
#ifndef MEM_EXPR_H
#define MEM_EXPR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Limits that keep hostile input bounded: text length, nesting, program size. */
#define MEM_EXPR_MAX_LEN 4096
#define MEM_EXPR_MAX_DEPTH 64
#define MEM_EXPR_MAX_NODES 1024

/* Where and why compiling failed: column is 1-based, 0 when it has none. */
struct mem_expr_error {
	int column;
	char msg[160];
};

struct mem_expr;

/*
 * Compiles src.  Returns a new program that the caller frees with
 * mem_expr_free(), or NULL with e filled (the column of the offending
 * token and a message such as "expected ')'").
 */
struct mem_expr *mem_expr_compile(const char *src, struct mem_expr_error *e);
void mem_expr_free(struct mem_expr *p);

/* The names the expression uses, in order of first use: the caller's slots. */
size_t mem_expr_nvars(const struct mem_expr *p);
const char *mem_expr_var(const struct mem_expr *p, size_t i);
/* The number of operations after constant folding (for tests and messages). */
size_t mem_expr_nops(const struct mem_expr *p);

/*
 * Evaluates p over n pixels: vars[i] holds the values of name i (NaN for
 * nodata), out receives float32 results.  Each operation runs over a chunk
 * of pixels at a time, so the loops vectorise.  Thread-safe for one
 * program; returns 0, or -1 when its scratch could not be allocated.
 */
int mem_expr_eval(const struct mem_expr *p, const float *const *vars, float *out, size_t n);

/*
 * The same on a CUDA device (src/kern/cuda/expr.cu): 0, or -1 when there
 * is no device, it failed, or the program is too large for it (the caller
 * then uses mem_expr_eval).  Always -1 in a build without CUDA.
 */
int mem_expr_eval_cuda(const struct mem_expr *p, const float *const *vars, float *out, size_t n);

#ifdef __cplusplus
}
#endif

#endif
