/*
 * expr.cu - band math on a CUDA device: the program expr.c compiled,
 * evaluated per pixel by one thread with its slots in registers (local
 * memory when they are many).  The same double operations as the CPU's
 * loops; + - * / and sqrt are correctly rounded on both, while CUDA's
 * log, exp and pow are within 1-2 ulp of glibc's in double, which after
 * the rounding to float almost always gives the same float (the test
 * allows 1e-6 relative).  A program with more than MAX_SLOTS slots runs
 * on the CPU (the entry point returns -1).
 */
#include <math.h>
#include <string.h>

#include "cuda.cuh"
#include "../expr.h"
#include "../expr-prog.h"

#define MAX_SLOTS 96
#define MAX_VARS 64

struct vars {
	const float *v[MAX_VARS];
};

__global__ static void
expr_kernel(vars in, const struct ins *__restrict__ code, const double *__restrict__ consts,
    int nvars, int nconsts, int ncode, int root, float *__restrict__ out, size_t n)
{
	double s[MAX_SLOTS];

	for (int k = 0; k < nconsts; k++)
		s[nvars + k] = consts[k];
	MEM_CUDA_FOR(i, n) {
		for (int v = 0; v < nvars; v++)
			s[v] = in.v[v][i];
		for (int k = 0; k < ncode; k++) {
			struct ins c = code[k];
			double a = s[c.a], b = s[c.b], cc = s[c.c], d;

			switch (c.op) {
			case OP_NEG: d = -a; break;
			case OP_NOT: d = a == 0 ? 1.0 : 0.0; break;
			case OP_ABS: d = fabs(a); break;
			case OP_SQRT: d = sqrt(a); break;
			case OP_LOG: d = log(a); break;
			case OP_EXP: d = exp(a); break;
			case OP_ADD: d = a + b; break;
			case OP_SUB: d = a - b; break;
			case OP_MUL: d = a * b; break;
			case OP_DIV: d = a / b; break;
			case OP_LT: d = a < b ? 1.0 : 0.0; break;
			case OP_LE: d = a <= b ? 1.0 : 0.0; break;
			case OP_GT: d = a > b ? 1.0 : 0.0; break;
			case OP_GE: d = a >= b ? 1.0 : 0.0; break;
			case OP_EQ: d = a == b ? 1.0 : 0.0; break;
			case OP_NE: d = a != b ? 1.0 : 0.0; break;
			case OP_AND: d = (a != 0) & (b != 0) ? 1.0 : 0.0; break;
			case OP_OR: d = (a != 0) | (b != 0) ? 1.0 : 0.0; break;
			case OP_MIN: d = a != a ? a : b != b ? b : (b < a ? b : a); break;
			case OP_MAX: d = a != a ? a : b != b ? b : (b > a ? b : a); break;
			case OP_POW: d = pow(a, b); break;
			case OP_SEL: d = cc != 0 ? a : b; break;
			default: d = __longlong_as_double(0x7ff8000000000000LL); break;
			}
			s[c.d] = d;
		}
		out[i] = (float)s[root];
	}
}

extern "C" int
mem_expr_eval_cuda(const struct mem_expr *x, const float *const *vars, float *out, size_t n)
{
	struct mem_cuda_ctx *c = mem_cuda_ctx();
	struct mem_expr_prog p;
	size_t cb, kb;
	unsigned char *dev;
	struct ins *dcode;
	double *dconst;

	if (c == NULL)
		return -1;
	mem_expr_prog(x, &p);
	if (p.nslots > MAX_SLOTS || p.nvars > MAX_VARS)
		return -1;
	cb = (p.ncode + 1) * sizeof(struct ins);
	cb = (cb + 15) / 16 * 16;
	kb = (p.nconsts + 1) * sizeof(double);
	dev = (unsigned char *)mem_cuda_big(c, 3, cb + kb);
	if (dev == NULL)
		return -1;
	dcode = (struct ins *)dev;
	dconst = (double *)(dev + cb);
	/* the program is small: copied, and waited for, before any batch */
	if ((p.ncode && cudaMemcpyAsync(dcode, p.code, p.ncode * sizeof(struct ins),
	    cudaMemcpyHostToDevice, c->st[0]) != cudaSuccess) ||
	    (p.nconsts && cudaMemcpyAsync(dconst, p.consts, p.nconsts * sizeof(double),
	    cudaMemcpyHostToDevice, c->st[0]) != cudaSuccess) ||
	    cudaStreamSynchronize(c->st[0]) != cudaSuccess)
		return mem_cuda_check(cudaGetLastError());
	return mem_cuda_batches((int)p.nvars, vars, 1, &out, n,
	    [&](cudaStream_t st, const float *const *d, float *const *o, size_t len) {
		    struct vars v;

		    memset(&v, 0, sizeof v);
		    for (size_t k = 0; k < p.nvars; k++)
			    v.v[k] = d[k];
		    expr_kernel<<<mem_cuda_blocks(len), MEM_CUDA_THREADS, 0, st>>>(v, dcode, dconst,
			(int)p.nvars, (int)p.nconsts, (int)p.ncode, (int)p.root, o[0], len);
	    });
}
