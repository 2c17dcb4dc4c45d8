/*
 * expr.c - the band-math language: a recursive-descent parser into a
 * small tree, constant folding, then a register program.
 *
 * Why a register program: a tree walked per pixel costs a branch and a
 * call per node per pixel.  Here each operation runs as one tight loop
 * over a chunk of pixels (registers are chunk-sized double arrays that
 * stay in cache), so the loops vectorise and the dispatch is paid once per
 * chunk.  Registers are handed out as a stack while the tree is lowered,
 * so a program needs as many as its deepest subexpression, not one per
 * node.  Both branches of ?: and && || are computed for every pixel;
 * there are no side effects, so that only costs time, never meaning.
 */
#include "config.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr.h"
#include "simd.h"
#include "expr-prog.h"

struct node {
	enum op op;
	int a, b, c; /* children, -1 when unused */
	double v;    /* OP_CONST: the value; OP_VAR: the variable's index */
};

#define MAX_VARS 64
#define CHUNK 256

struct parser {
	const char *src;
	size_t pos;
	int depth;
	struct node nodes[MEM_EXPR_MAX_NODES];
	int nnodes;
	char *vars[MAX_VARS];
	int nvars;
	struct mem_expr_error *e;
	int failed;
};

struct mem_expr {
	char **vars;
	size_t nvars;
	double *consts; /* values of the slots after the variables */
	size_t nconsts;
	size_t nslots; /* variables, constants, then temporaries */
	struct ins *code;
	size_t ncode;
	size_t root; /* the slot holding the result */
};

static int
fail(struct parser *p, size_t col0, const char *fmt, ...)
{
	va_list ap;

	if (p->failed)
		return -1;
	p->failed = 1;
	p->e->column = (int)col0 + 1;
	va_start(ap, fmt);
	vsnprintf(p->e->msg, sizeof p->e->msg, fmt, ap);
	va_end(ap);
	return -1;
}

static void
skip_space(struct parser *p)
{
	while (p->src[p->pos] == ' ' || p->src[p->pos] == '\t' || p->src[p->pos] == '\n' ||
	    p->src[p->pos] == '\r')
		p->pos++;
}

/* 1 and consumes the operator when the next token is exactly tok. */
static int
accept(struct parser *p, const char *tok)
{
	size_t n = strlen(tok);
	const char *s;

	skip_space(p);
	s = p->src + p->pos;
	if (strncmp(s, tok, n) != 0)
		return 0;
	/* "<" must not take the first half of "<=", nor "!" of "!=", nor "=" alone */
	if (n == 1 && (tok[0] == '<' || tok[0] == '>' || tok[0] == '!') && s[1] == '=')
		return 0;
	p->pos += n;
	return 1;
}

/* Describes the token at the current position for a message. */
static void
token_text(struct parser *p, char *buf, size_t n)
{
	const char *s = p->src + p->pos;
	size_t len = 0;

	if (*s == '\0') {
		snprintf(buf, n, "end of expression");
		return;
	}
	if (isalnum((unsigned char)*s) || *s == '_' || *s == '.')
		while (
		    (isalnum((unsigned char)s[len]) || s[len] == '_' || s[len] == '.') && len < 24)
			len++;
	else
		len = 1;
	if (isprint((unsigned char)*s))
		snprintf(buf, n, "'%.*s'", (int)len, s);
	else
		snprintf(buf, n, "byte 0x%02x", (unsigned char)*s);
}

static int
unexpected(struct parser *p)
{
	char t[48];

	skip_space(p);
	token_text(p, t, sizeof t);
	return fail(p, p->pos, "unexpected %s", t);
}

static int
expect(struct parser *p, const char *tok)
{
	if (accept(p, tok))
		return 0;
	skip_space(p);
	return fail(p, p->pos, "expected '%s'", tok);
}

static int arity(enum op op);

/* The value of op on scalars: the same expressions as the vector loops. */
static double
apply(enum op op, double a, double b, double c)
{
	switch (op) {
	case OP_NEG:
		return -a;
	case OP_NOT:
		return a == 0 ? 1.0 : 0.0;
	case OP_ABS:
		return fabs(a);
	case OP_SQRT:
		return sqrt(a);
	case OP_LOG:
		return log(a);
	case OP_EXP:
		return exp(a);
	case OP_ADD:
		return a + b;
	case OP_SUB:
		return a - b;
	case OP_MUL:
		return a * b;
	case OP_DIV:
		return a / b;
	case OP_LT:
		return a < b ? 1.0 : 0.0;
	case OP_LE:
		return a <= b ? 1.0 : 0.0;
	case OP_GT:
		return a > b ? 1.0 : 0.0;
	case OP_GE:
		return a >= b ? 1.0 : 0.0;
	case OP_EQ:
		return a == b ? 1.0 : 0.0;
	case OP_NE:
		return a != b ? 1.0 : 0.0;
	case OP_AND:
		return (a != 0) & (b != 0) ? 1.0 : 0.0;
	case OP_OR:
		return (a != 0) | (b != 0) ? 1.0 : 0.0;
	/* NaN in, NaN out, as numpy.minimum: nodata stays nodata */
	case OP_MIN:
		return a != a ? a : b != b ? b : (b < a ? b : a);
	case OP_MAX:
		return a != a ? a : b != b ? b : (b > a ? b : a);
	case OP_POW:
		return pow(a, b);
	case OP_SEL:
		return c != 0 ? a : b;
	default:
		return NAN;
	}
}

static int
arity(enum op op)
{
	if (op == OP_VAR || op == OP_CONST)
		return 0;
	if (op <= OP_EXP)
		return 1;
	if (op == OP_SEL)
		return 3;
	return 2;
}

/* A new node; folds it when every child is a constant.  -1 when full. */
static int
mk(struct parser *p, enum op op, int a, int b, int c, double v)
{
	struct node *n;
	int k = arity(op);

	if (p->failed)
		return -1;
	if ((k >= 1 && a < 0) || (k >= 2 && b < 0) || (k >= 3 && c < 0))
		return -1;
	if (k > 0 && p->nodes[a].op == OP_CONST && (k < 2 || p->nodes[b].op == OP_CONST) &&
	    (k < 3 || p->nodes[c].op == OP_CONST)) {
		double r = apply(op, p->nodes[a].v, k >= 2 ? p->nodes[b].v : 0,
		    k >= 3 ? p->nodes[c].v : 0);

		/* a tree: the first child belongs to this node alone, so it can hold the value */
		p->nodes[a].v = r;
		return a;
	}
	/* a constant condition picks its branch */
	if (op == OP_SEL && p->nodes[c].op == OP_CONST)
		return p->nodes[c].v != 0 ? a : b;
	if (p->nnodes >= MEM_EXPR_MAX_NODES)
		return fail(p, p->pos, "expression too large (more than %d terms)",
		    MEM_EXPR_MAX_NODES);
	n = &p->nodes[p->nnodes];
	n->op = op;
	n->a = a;
	n->b = b;
	n->c = c;
	n->v = v;
	return p->nnodes++;
}

static int parse_cond(struct parser *p);

static int
enter(struct parser *p)
{
	if (++p->depth > MEM_EXPR_MAX_DEPTH) {
		skip_space(p);
		return fail(p, p->pos, "expression nested too deeply (more than %d levels)",
		    MEM_EXPR_MAX_DEPTH);
	}
	return 0;
}

static int
parse_number(struct parser *p)
{
	const char *s = p->src + p->pos;
	size_t n = 0, start = p->pos;
	char buf[64];
	double v;

	while (isdigit((unsigned char)s[n]))
		n++;
	if (s[n] == '.') {
		n++;
		while (isdigit((unsigned char)s[n]))
			n++;
	}
	if (n == 1 && s[0] == '.')
		return unexpected(p);
	if ((s[n] == 'e' || s[n] == 'E') &&
	    (isdigit((unsigned char)s[n + 1]) ||
		((s[n + 1] == '+' || s[n + 1] == '-') && isdigit((unsigned char)s[n + 2])))) {
		n += 2;
		while (isdigit((unsigned char)s[n]))
			n++;
	}
	if (isalpha((unsigned char)s[n]) || s[n] == '_' || s[n] == '.')
		return fail(p, start, "malformed number '%.*s'", (int)(n + 1 < 24 ? n + 1 : 24), s);
	if (n >= sizeof buf)
		return fail(p, start, "number too long");
	memcpy(buf, s, n);
	buf[n] = '\0';
	/* only the span scanned above reaches strtod: no hex, no "inf", no "nan" */
	v = strtod(buf, NULL);
	if (isinf(v))
		return fail(p, start, "number out of range '%s'", buf);
	p->pos += n;
	return mk(p, OP_CONST, -1, -1, -1, v);
}

static const struct {
	const char *name;
	enum op op;
	int min, max; /* arguments; max 0 = any number from min */
} funcs[] = {
	{ "min", OP_MIN, 2, 0 },
	{ "max", OP_MAX, 2, 0 },
	{ "abs", OP_ABS, 1, 1 },
	{ "sqrt", OP_SQRT, 1, 1 },
	{ "log", OP_LOG, 1, 1 },
	{ "exp", OP_EXP, 1, 1 },
	{ "pow", OP_POW, 2, 2 },
};

static int
parse_call(struct parser *p, const char *name, size_t len, size_t col)
{
	size_t f;
	int args[MEM_EXPR_MAX_NODES / 4] = { -1 }, nargs = 0, r;

	for (f = 0; f < sizeof funcs / sizeof *funcs; f++)
		if (strlen(funcs[f].name) == len && strncmp(funcs[f].name, name, len) == 0)
			break;
	if (f == sizeof funcs / sizeof *funcs)
		return fail(p, col, "unknown function '%.*s'", (int)len, name);
	skip_space(p);
	if (!accept(p, ")")) {
		do {
			if (nargs == (int)(sizeof args / sizeof *args))
				return fail(p, p->pos, "too many arguments");
			if ((args[nargs++] = parse_cond(p)) < 0)
				return -1;
		} while (accept(p, ","));
		if (expect(p, ")") < 0)
			return -1;
	}
	if (nargs < funcs[f].min || (funcs[f].max && nargs > funcs[f].max)) {
		if (funcs[f].max == 0)
			return fail(p, col, "'%s' takes %d or more arguments, not %d",
			    funcs[f].name, funcs[f].min, nargs);
		return fail(p, col, "'%s' takes %d argument%s, not %d", funcs[f].name, funcs[f].min,
		    funcs[f].min == 1 ? "" : "s", nargs);
	}
	if (nargs == 1)
		return mk(p, funcs[f].op, args[0], -1, -1, 0);
	r = args[0];
	for (int i = 1; i < nargs; i++)
		r = mk(p, funcs[f].op, r, args[i], -1, 0);
	return r;
}

static int
parse_primary(struct parser *p)
{
	const char *s;
	size_t col;

	skip_space(p);
	col = p->pos;
	s = p->src + p->pos;
	if (isdigit((unsigned char)*s) || *s == '.')
		return parse_number(p);
	if (isalpha((unsigned char)*s) || *s == '_') {
		size_t len = 0;
		int i;

		while (isalnum((unsigned char)s[len]) || s[len] == '_')
			len++;
		p->pos += len;
		if (accept(p, "("))
			return parse_call(p, s, len, col);
		if (len > 64)
			return fail(p, col, "name too long");
		for (i = 0; i < p->nvars; i++)
			if (strlen(p->vars[i]) == len && strncmp(p->vars[i], s, len) == 0)
				break;
		if (i == p->nvars) {
			if (p->nvars == MAX_VARS)
				return fail(p, col, "too many names (more than %d)", MAX_VARS);
			p->vars[p->nvars] = malloc(len + 1);
			if (p->vars[p->nvars] == NULL)
				return fail(p, col, "out of memory");
			memcpy(p->vars[p->nvars], s, len);
			p->vars[p->nvars++][len] = '\0';
		}
		return mk(p, OP_VAR, -1, -1, -1, i);
	}
	if (accept(p, "(")) {
		int r = parse_cond(p);

		if (r < 0 || expect(p, ")") < 0)
			return -1;
		return r;
	}
	return unexpected(p);
}

static int
parse_unary(struct parser *p)
{
	int r;

	if (enter(p) < 0)
		return -1;
	if (accept(p, "-"))
		r = mk(p, OP_NEG, parse_unary(p), -1, -1, 0);
	else if (accept(p, "!"))
		r = mk(p, OP_NOT, parse_unary(p), -1, -1, 0);
	else if (accept(p, "+"))
		r = parse_unary(p);
	else
		r = parse_primary(p);
	p->depth--;
	return r;
}

/* One level of left-associative binary operators. */
struct level {
	const char *tok[4];
	enum op op[4];
};

static const struct level levels[] = {
	{ { "||" }, { OP_OR } },
	{ { "&&" }, { OP_AND } },
	{ { "==", "!=" }, { OP_EQ, OP_NE } },
	{ { "<=", ">=", "<", ">" }, { OP_LE, OP_GE, OP_LT, OP_GT } },
	{ { "+", "-" }, { OP_ADD, OP_SUB } },
	{ { "*", "/" }, { OP_MUL, OP_DIV } },
};

static int
parse_level(struct parser *p, size_t lv)
{
	int l, k;

	if (lv == sizeof levels / sizeof *levels)
		return parse_unary(p);
	l = parse_level(p, lv + 1);
	for (;;) {
		for (k = 0; k < 4 && levels[lv].tok[k]; k++)
			if (accept(p, levels[lv].tok[k]))
				break;
		if (k == 4 || levels[lv].tok[k] == NULL || l < 0)
			return l;
		l = mk(p, levels[lv].op[k], l, parse_level(p, lv + 1), -1, 0);
	}
}

static int
parse_cond(struct parser *p)
{
	int c, a, b;

	if (enter(p) < 0)
		return -1;
	c = parse_level(p, 0);
	if (c >= 0 && accept(p, "?")) {
		a = parse_cond(p);
		if (a >= 0 && expect(p, ":") == 0) {
			b = parse_cond(p);
			c = mk(p, OP_SEL, a, b, c, 0);
		} else
			c = -1;
	}
	p->depth--;
	return c;
}

/* Lowering: slots are encoded as kind << 14 | index until the counts are known. */
#define SLOT_VAR 0
#define SLOT_CONST 1
#define SLOT_TEMP 2

struct lower {
	struct parser *p;
	struct mem_expr *x;
	size_t tsp, tmax;
	int oom;
};

static unsigned
lower_node(struct lower *L, int n)
{
	struct node *nd = &L->p->nodes[n];
	unsigned s[3] = { 0, 0, 0 }, d;
	size_t base = L->tsp;
	int k = arity(nd->op), kids[3] = { nd->a, nd->b, nd->c };

	if (nd->op == OP_VAR)
		return SLOT_VAR << 14 | (unsigned)nd->v;
	if (nd->op == OP_CONST) {
		size_t i;

		for (i = 0; i < L->x->nconsts; i++)
			if (memcmp(&L->x->consts[i], &nd->v, sizeof nd->v) == 0)
				return SLOT_CONST << 14 | (unsigned)i;
		L->x->consts[L->x->nconsts] = nd->v;
		return SLOT_CONST << 14 | (unsigned)L->x->nconsts++;
	}
	for (int i = 0; i < k; i++)
		s[i] = lower_node(L, kids[i]);
	/* the children's temporaries are free again: the result takes the lowest */
	d = SLOT_TEMP << 14 | (unsigned)base;
	L->tsp = base + 1;
	if (L->tsp > L->tmax)
		L->tmax = L->tsp;
	L->x->code[L->x->ncode].op = (uint8_t)nd->op;
	L->x->code[L->x->ncode].d = (uint16_t)d;
	L->x->code[L->x->ncode].a = (uint16_t)s[0];
	L->x->code[L->x->ncode].b = (uint16_t)s[1];
	L->x->code[L->x->ncode].c = (uint16_t)s[2];
	L->x->ncode++;
	return d;
}

static uint16_t
resolve(const struct mem_expr *x, unsigned s)
{
	unsigned kind = s >> 14, i = s & 0x3fff;

	return (uint16_t)(kind == SLOT_VAR ? i :
		kind == SLOT_CONST	   ? x->nvars + i :
					     x->nvars + x->nconsts + i);
}

struct mem_expr *
mem_expr_compile(const char *src, struct mem_expr_error *e)
{
	struct parser *p;
	struct lower L;
	struct mem_expr *x = NULL;
	int root, i;

	e->column = 0;
	e->msg[0] = '\0';
	if (strlen(src) > MEM_EXPR_MAX_LEN) {
		snprintf(e->msg, sizeof e->msg, "expression too long (more than %d characters)",
		    MEM_EXPR_MAX_LEN);
		return NULL;
	}
	p = calloc(1, sizeof *p);
	if (p == NULL) {
		snprintf(e->msg, sizeof e->msg, "out of memory");
		return NULL;
	}
	p->src = src;
	p->e = e;
	root = parse_cond(p);
	skip_space(p);
	if (root >= 0 && p->src[p->pos] != '\0')
		root = unexpected(p);
	if (root < 0 || p->failed)
		goto done;
	x = calloc(1, sizeof *x);
	if (x)
		x->code = calloc((size_t)p->nnodes, sizeof *x->code);
	if (x)
		x->consts = calloc((size_t)p->nnodes, sizeof *x->consts);
	if (x)
		x->vars = calloc((size_t)p->nvars + 1, sizeof *x->vars);
	if (x == NULL || x->code == NULL || x->consts == NULL || x->vars == NULL) {
		mem_expr_free(x);
		x = NULL;
		snprintf(e->msg, sizeof e->msg, "out of memory");
		goto done;
	}
	x->nvars = (size_t)p->nvars;
	for (i = 0; i < p->nvars; i++) {
		x->vars[i] = p->vars[i];
		p->vars[i] = NULL;
	}
	memset(&L, 0, sizeof L);
	L.p = p;
	L.x = x;
	{
		unsigned r = lower_node(&L, root);

		x->nslots = x->nvars + x->nconsts + L.tmax;
		for (size_t k = 0; k < x->ncode; k++) {
			struct ins *in = &x->code[k];

			in->d = resolve(x, in->d);
			in->a = resolve(x, in->a);
			in->b = resolve(x, in->b);
			in->c = resolve(x, in->c);
		}
		x->root = resolve(x, r);
	}
done:
	for (i = 0; i < p->nvars; i++)
		free(p->vars[i]);
	free(p);
	return x;
}

void
mem_expr_free(struct mem_expr *x)
{
	if (x == NULL)
		return;
	for (size_t i = 0; x->vars && i < x->nvars; i++)
		free(x->vars[i]);
	free(x->vars);
	free(x->consts);
	free(x->code);
	free(x);
}

size_t
mem_expr_nvars(const struct mem_expr *x)
{
	return x->nvars;
}

const char *
mem_expr_var(const struct mem_expr *x, size_t i)
{
	return i < x->nvars ? x->vars[i] : NULL;
}

size_t
mem_expr_nops(const struct mem_expr *x)
{
	return x->ncode;
}

void
mem_expr_prog(const struct mem_expr *x, struct mem_expr_prog *out)
{
	out->nvars = x->nvars;
	out->nconsts = x->nconsts;
	out->nslots = x->nslots;
	out->ncode = x->ncode;
	out->root = x->root;
	out->consts = x->consts;
	out->code = x->code;
}

#define LOOP(e)                                                                  \
	do {                                                                     \
		_Pragma("omp simd") for (size_t i = 0; i < len; i++) d[i] = (e); \
	} while (0)

static MEM_KERN_CLONES void
run(const struct ins *in, double *s, size_t len)
{
	double *restrict d = s + (size_t)in->d * CHUNK;
	const double *a = s + (size_t)in->a * CHUNK, *b = s + (size_t)in->b * CHUNK;
	const double *c = s + (size_t)in->c * CHUNK;

	/* d may be a, b or c: each loop reads and writes only index i */
	switch ((enum op)in->op) {
	case OP_NEG:
		LOOP(-a[i]);
		break;
	case OP_NOT:
		LOOP(a[i] == 0 ? 1.0 : 0.0);
		break;
	case OP_ABS:
		LOOP(fabs(a[i]));
		break;
	case OP_SQRT:
		LOOP(sqrt(a[i]));
		break;
	case OP_LOG:
		LOOP(log(a[i]));
		break;
	case OP_EXP:
		LOOP(exp(a[i]));
		break;
	case OP_ADD:
		LOOP(a[i] + b[i]);
		break;
	case OP_SUB:
		LOOP(a[i] - b[i]);
		break;
	case OP_MUL:
		LOOP(a[i] * b[i]);
		break;
	case OP_DIV:
		LOOP(a[i] / b[i]);
		break;
	case OP_LT:
		LOOP(a[i] < b[i] ? 1.0 : 0.0);
		break;
	case OP_LE:
		LOOP(a[i] <= b[i] ? 1.0 : 0.0);
		break;
	case OP_GT:
		LOOP(a[i] > b[i] ? 1.0 : 0.0);
		break;
	case OP_GE:
		LOOP(a[i] >= b[i] ? 1.0 : 0.0);
		break;
	case OP_EQ:
		LOOP(a[i] == b[i] ? 1.0 : 0.0);
		break;
	case OP_NE:
		LOOP(a[i] != b[i] ? 1.0 : 0.0);
		break;
	case OP_AND:
		LOOP((a[i] != 0) & (b[i] != 0) ? 1.0 : 0.0);
		break;
	case OP_OR:
		LOOP((a[i] != 0) | (b[i] != 0) ? 1.0 : 0.0);
		break;
	case OP_MIN:
		LOOP(a[i] != a[i] ? a[i] : b[i] != b[i] ? b[i] : (b[i] < a[i] ? b[i] : a[i]));
		break;
	case OP_MAX:
		LOOP(a[i] != a[i] ? a[i] : b[i] != b[i] ? b[i] : (b[i] > a[i] ? b[i] : a[i]));
		break;
	case OP_POW:
		LOOP(pow(a[i], b[i]));
		break;
	case OP_SEL:
		LOOP(c[i] != 0 ? a[i] : b[i]);
		break;
	default:
		break;
	}
}

MEM_KERN_CLONES int
mem_expr_eval(const struct mem_expr *x, const float *const *vars, float *out, size_t n)
{
	double *s = malloc(x->nslots * CHUNK * sizeof *s);

	if (s == NULL)
		return -1;
	for (size_t k = 0; k < x->nconsts; k++)
		for (size_t i = 0; i < CHUNK; i++)
			s[(x->nvars + k) * CHUNK + i] = x->consts[k];
	for (size_t off = 0; off < n; off += CHUNK) {
		size_t len = n - off < CHUNK ? n - off : CHUNK;
		const double *r = s + x->root * CHUNK;

		for (size_t v = 0; v < x->nvars; v++) {
			double *restrict d = s + v * CHUNK;
			const float *restrict in = vars[v] + off;

#pragma omp simd
			for (size_t i = 0; i < len; i++)
				d[i] = in[i];
		}
		for (size_t k = 0; k < x->ncode; k++)
			run(&x->code[k], s, len);
#pragma omp simd
		for (size_t i = 0; i < len; i++)
			out[off + i] = (float)r[i];
	}
	free(s);
	return 0;
}
