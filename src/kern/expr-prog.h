/*
 * expr-prog.h - the compiled form of a band-math expression (expr.c),
 * shared by the CPU evaluator and the CUDA one (cuda/expr.cu), so both run
 * the same flat program: slots are the variables, then the constants,
 * then temporaries; each instruction reads slots a, b, c and writes d.
 * Internal to the kernels: callers use expr.h.
 */
#ifndef MEM_EXPR_PROG_H
#define MEM_EXPR_PROG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct mem_expr;

enum op {
	OP_VAR,
	OP_CONST,
	OP_NEG,
	OP_NOT,
	OP_ABS,
	OP_SQRT,
	OP_LOG,
	OP_EXP,
	OP_ADD,
	OP_SUB,
	OP_MUL,
	OP_DIV,
	OP_LT,
	OP_LE,
	OP_GT,
	OP_GE,
	OP_EQ,
	OP_NE,
	OP_AND,
	OP_OR,
	OP_MIN,
	OP_MAX,
	OP_POW,
	OP_SEL
};

struct ins {
	uint8_t op;
	uint16_t d, a, b, c;
};

/* A read-only view of a compiled program. */
struct mem_expr_prog {
	size_t nvars, nconsts, nslots, ncode, root;
	const double *consts;	/* the values of slots nvars .. nvars + nconsts - 1 */
	const struct ins *code;
};

void mem_expr_prog(const struct mem_expr *x, struct mem_expr_prog *out);

#ifdef __cplusplus
}
#endif

#endif
