/*
 * classify.cu - the per-pixel network on a CUDA device.
 *
 * The same computation as classify.c, in the same order: the strip is
 * processed in chunks of rows with the model's halo around each, a kernel
 * per layer with one thread per pixel computing all its outputs, each
 * output a double sum in the CPU's order (bias, then input, row, column),
 * rounded once to float; no fused multiply-add (-fmad=false).  So the
 * class maps are the same and the probabilities the same up to CUDA's
 * exp in the softmax (within 1-2 ulp of glibc's in double, so almost
 * always the same float; the test allows 1e-6).
 */
#include <math.h>
#include <string.h>

#include "cuda.cuh"

#define NANF __int_as_float(0x7fc00000)
#define MAX_BANDS 32
#define MAX_WIDTH 256 /* outputs of a layer a thread keeps (softmax) */
#define GCHUNK 256    /* output rows per pass */

struct bands {
	const float *b[MAX_BANDS];
};

__global__ static void
norm_kernel(bands in, int nb, const double *__restrict__ mean, const double *__restrict__ sd,
    int w, int lo, int nr, float *__restrict__ cur)
{
	MEM_CUDA_FOR(p, (size_t)w * nr) {
		size_t src = (size_t)lo * w + p;

		for (int i = 0; i < nb; i++) {
			float v = in.b[i][src];

			cur[p * nb + i] = v == v ? (float)((v - mean[i]) / sd[i]) : 0.0f;
		}
	}
}

/* As classify.c's layer_run: a pixel with a nodata band (in rows from lo) has outputs 0. */
__global__ static void
layer_kernel(int type, int act, int nin, int nout, const float *__restrict__ wt,
    const float *__restrict__ bias, const float *__restrict__ in, float *__restrict__ out, int w,
    int nr, bands bs, int nb, int lo)
{
	MEM_CUDA_FOR(p, (size_t)w * nr) {
		int y = (int)(p / w), x = (int)(p % w);
		float *o = out + p * nout;
		bool bad = false;

		for (int i = 0; i < nb; i++) {
			float v = bs.b[i][(size_t)lo * w + p];

			bad |= v != v;
		}
		if (bad) {
			for (int k = 0; k < nout; k++)
				o[k] = 0.0f;
			continue;
		}
		for (int k = 0; k < nout; k++) {
			double s = bias[k];

			if (type == MEM_KERN_DENSE) {
				const float *wk = wt + (size_t)k * nin, *a = in + p * nin;

				for (int i = 0; i < nin; i++)
					s += (double)wk[i] * a[i];
			} else {
				for (int i = 0; i < nin; i++)
					for (int dy = -1; dy <= 1; dy++) {
						if (y + dy < 0 || y + dy >= nr)
							continue;
						for (int dx = -1; dx <= 1; dx++) {
							if (x + dx < 0 || x + dx >= w)
								continue;
							s += (double)wt[(((size_t)k * nin + i) * 3 + (dy + 1)) * 3 +
							    (dx + 1)] * in[((size_t)(y + dy) * w + x + dx) * nin + i];
						}
					}
			}
			o[k] = (float)s;
		}
		if (act == MEM_KERN_RELU) {
			for (int k = 0; k < nout; k++)
				o[k] = o[k] > 0 ? o[k] : 0;
		} else if (act == MEM_KERN_SOFTMAX) {
			double mx = o[0], s = 0;

			for (int k = 1; k < nout; k++)
				mx = o[k] > mx ? o[k] : mx;
			for (int k = 0; k < nout; k++)
				s += exp((double)o[k] - mx);
			for (int k = 0; k < nout; k++)
				o[k] = (float)(exp((double)o[k] - mx) / s);
		}
	}
}

__global__ static void
out_kernel(bands in, int nb, const float *__restrict__ cur, int nc, int w, int lo, int cy, int cr,
    int top, size_t n, float *__restrict__ cls, float *__restrict__ prob)
{
	MEM_CUDA_FOR(p, (size_t)w * cr) {
		int y = cy + (int)(p / w), x = (int)(p % w);
		const float *o = cur + ((size_t)(y - lo) * w + x) * nc;
		size_t q = (size_t)(y - top) * w + x;
		int best = 0;
		bool bad = false;

		for (int i = 0; i < nb; i++) {
			float v = in.b[i][(size_t)y * w + x];

			bad |= v != v;
		}
		for (int k = 1; k < nc; k++)
			if (o[k] > o[best])
				best = k;
		cls[q] = bad ? MEM_KERN_CLASS_NODATA : (float)best;
		for (int k = 0; prob && k < nc; k++)
			prob[(size_t)k * n + q] = bad ? NANF : o[k];
	}
}

extern "C" int
mem_kern_classify_cuda(const struct mem_kern_model *m, const float *const *in, int w,
    int in_rows, int top, int rows, float *cls, float *prob)
{
	struct mem_cuda_ctx *c = mem_cuda_ctx();
	int halo = mem_kern_model_halo(m), C = mem_kern_model_maxwidth(m), nb = m->nbands;
	size_t np = (size_t)w * in_rows, n = (size_t)w * rows, nw = 0, off;
	size_t maps = (size_t)(GCHUNK + 2 * halo) * w * C;
	size_t nout = (size_t)(1 + (prob ? m->nclasses : 0)) * n;
	cudaStream_t st;
	float *din, *dout, *da, *db, *dw;
	double *dms;
	bands bs;

	if (c == NULL || nb > MAX_BANDS || C > MAX_WIDTH || rows <= 0)
		return c == NULL || nb > MAX_BANDS || C > MAX_WIDTH ? -1 : 0;
	st = c->st[0];
	for (int l = 0; l < m->nlayers; l++) {
		const struct mem_kern_layer *L = &m->layer[l];

		nw += (size_t)L->nout * L->nin * (L->type == MEM_KERN_CONV3 ? 9 : 1) + L->nout;
	}
	din = (float *)mem_cuda_big(c, 0, (size_t)nb * np * sizeof(float));
	dout = (float *)mem_cuda_big(c, 1, nout * sizeof(float));
	da = (float *)mem_cuda_big(c, 2, 2 * maps * sizeof(float));
	dms = (double *)mem_cuda_big(c, 3, 2 * (size_t)nb * sizeof(double) + nw * sizeof(float));
	if (din == NULL || dout == NULL || da == NULL || dms == NULL)
		return -1;
	db = da + maps;
	dw = (float *)(dms + 2 * nb);
	memset(&bs, 0, sizeof bs);
	for (int i = 0; i < nb; i++) {
		bs.b[i] = din + (size_t)i * np;
		if (cudaMemcpyAsync((void *)bs.b[i], in[i], np * sizeof(float), cudaMemcpyHostToDevice,
		    st) != cudaSuccess)
			return mem_cuda_check(cudaGetLastError());
	}
	if (cudaMemcpyAsync(dms, m->mean, nb * sizeof(double), cudaMemcpyHostToDevice, st) !=
	    cudaSuccess || cudaMemcpyAsync(dms + nb, m->std, nb * sizeof(double),
	    cudaMemcpyHostToDevice, st) != cudaSuccess)
		return mem_cuda_check(cudaGetLastError());
	off = 0;
	for (int l = 0; l < m->nlayers; l++) {
		const struct mem_kern_layer *L = &m->layer[l];
		size_t k = (size_t)L->nout * L->nin * (L->type == MEM_KERN_CONV3 ? 9 : 1);

		if (cudaMemcpyAsync(dw + off, L->w, k * sizeof(float), cudaMemcpyHostToDevice, st) !=
		    cudaSuccess || cudaMemcpyAsync(dw + off + k, L->b, L->nout * sizeof(float),
		    cudaMemcpyHostToDevice, st) != cudaSuccess)
			return mem_cuda_check(cudaGetLastError());
		off += k + L->nout;
	}
	for (int cy = top; cy < top + rows; cy += GCHUNK) {
		int cr = top + rows - cy < GCHUNK ? top + rows - cy : GCHUNK;
		int lo = cy - halo < 0 ? 0 : cy - halo;
		int hi = cy + cr + halo > in_rows ? in_rows : cy + cr + halo;
		int nr = hi - lo, nc = nb;
		float *cur = da, *nxt = db, *t;
		size_t np2 = (size_t)w * nr;

		norm_kernel<<<mem_cuda_blocks(np2), MEM_CUDA_THREADS, 0, st>>>(bs, nb, dms, dms + nb, w,
		    lo, nr, cur);
		off = 0;
		for (int l = 0; l < m->nlayers; l++) {
			const struct mem_kern_layer *L = &m->layer[l];
			size_t k = (size_t)L->nout * L->nin * (L->type == MEM_KERN_CONV3 ? 9 : 1);

			layer_kernel<<<mem_cuda_blocks(np2), MEM_CUDA_THREADS, 0, st>>>(L->type, L->act,
			    L->nin, L->nout, dw + off, dw + off + k, cur, nxt, w, nr, bs, nb, lo);
			off += k + L->nout;
			nc = L->nout;
			t = cur;
			cur = nxt;
			nxt = t;
		}
		out_kernel<<<mem_cuda_blocks((size_t)w * cr), MEM_CUDA_THREADS, 0, st>>>(bs, nb, cur, nc,
		    w, lo, cy, cr, top, n, dout, prob ? dout + n : NULL);
	}
	if (cudaMemcpyAsync(cls, dout, n * sizeof(float), cudaMemcpyDeviceToHost, st) != cudaSuccess ||
	    (prob && cudaMemcpyAsync(prob, dout + n, (size_t)m->nclasses * n * sizeof(float),
	    cudaMemcpyDeviceToHost, st) != cudaSuccess))
		return mem_cuda_check(cudaGetLastError());
	if (mem_cuda_check(cudaStreamSynchronize(st)) < 0)
		return -1;
	return mem_cuda_check(cudaGetLastError());
}
