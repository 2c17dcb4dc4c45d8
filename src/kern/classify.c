/*
 * classify.c - a small neural network per pixel: dense layers and 3x3
 * convolutions, ReLU and softmax, and its training by mini-batch
 * gradient descent.
 *
 * Convolutions read one row of context above and below per layer: the
 * caller gives the strip with that many rows of halo, and every layer's
 * map is zero beyond the rows it was given (zero padding, "same"
 * convolution).  Beyond a strip's halo the values are wrong, but wrong
 * rows move inward one row per layer, so the strip's own rows are right;
 * at the image's edge the halo is cut and zero is the padding itself.
 * The sums of each output run in the same order whatever the strip, so
 * strips of any height give the same bits.
 */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kern.h"
#include "simd.h"

#define CHUNK 16 /* output rows per pass: bounds the maps to (16 + 2 halo) rows */

int
mem_kern_model_halo(const struct mem_kern_model *m)
{
	int h = 0;

	for (int l = 0; l < m->nlayers; l++)
		h += m->layer[l].type == MEM_KERN_CONV3;
	return h;
}

int
mem_kern_model_maxwidth(const struct mem_kern_model *m)
{
	int c = m->nbands;

	for (int l = 0; l < m->nlayers; l++)
		if (m->layer[l].nout > c)
			c = m->layer[l].nout;
	return c;
}

/*
 * One layer over nr rows of w pixels.  Maps are planar (channel c of row y
 * at c * plane + y * w), so each output is computed for a whole row at
 * once in a vectorized loop; each pixel's sum still takes its terms in the
 * order classify.cu does (bias, then input, row, column), leaving out
 * those beyond the rows and columns given, so the bits do not depend on
 * the vector width.  bad[p] marks a pixel with a nodata band: its outputs
 * are 0, as beyond the image's edge.  acc holds w doubles, e the layer's
 * outputs of one pixel.
 */
static MEM_KERN_CLONES void
layer_run(const struct mem_kern_layer *L, const float *in, float *out, int w, int nr,
    size_t plane, const unsigned char *bad, double *restrict acc, double *e)
{
	for (int y = 0; y < nr; y++) {
		const unsigned char *bd = bad + (size_t)y * w;

		for (int k = 0; k < L->nout; k++) {
			float *restrict o = out + (size_t)k * plane + (size_t)y * w;
			const double b = L->b[k];

#pragma omp simd
			for (int x = 0; x < w; x++)
				acc[x] = b;
			for (int i = 0; i < L->nin; i++) {
				if (L->type == MEM_KERN_DENSE) {
					const float *restrict a = in + (size_t)i * plane + (size_t)y * w;
					const double wt = L->w[(size_t)k * L->nin + i];

#pragma omp simd
					for (int x = 0; x < w; x++)
						acc[x] += wt * a[x];
					continue;
				}
				for (int dy = -1; dy <= 1; dy++) {
					const float *restrict r = in + (size_t)i * plane + (size_t)(y + dy) * w;
					const float *wk = L->w + (((size_t)k * L->nin + i) * 3 + (dy + 1)) * 3;
					const double w0 = wk[0], w1 = wk[1], w2 = wk[2];

					if (y + dy < 0 || y + dy >= nr)
						continue;
					/* dx = -1, 0, 1 in turn: each pixel's terms in that order */
#pragma omp simd
					for (int x = 1; x < w; x++)
						acc[x] += w0 * r[x - 1];
#pragma omp simd
					for (int x = 0; x < w; x++)
						acc[x] += w1 * r[x];
#pragma omp simd
					for (int x = 0; x < w - 1; x++)
						acc[x] += w2 * r[x + 1];
				}
			}
#pragma omp simd
			for (int x = 0; x < w; x++)
				o[x] = (float)acc[x];
			if (L->act == MEM_KERN_RELU) {
#pragma omp simd
				for (int x = 0; x < w; x++)
					o[x] = o[x] > 0 ? o[x] : 0;
			}
		}
		if (L->act == MEM_KERN_SOFTMAX) {
			float *o = out + (size_t)y * w;

			for (int x = 0; x < w; x++) {
				double mx = o[x], s = 0;

				for (int k = 1; k < L->nout; k++)
					mx = o[(size_t)k * plane + x] > mx ? o[(size_t)k * plane + x] : mx;
				for (int k = 0; k < L->nout; k++) {
					double d = (double)o[(size_t)k * plane + x] - mx;

					/* below -746, exp is 0: skip libm's slow underflow path */
					e[k] = d < -746.0 ? 0.0 : exp(d);
					s += e[k];
				}
				for (int k = 0; k < L->nout; k++)
					o[(size_t)k * plane + x] = (float)(e[k] / s);
			}
		}
		for (int x = 0; x < w; x++)
			if (bd[x])
				for (int k = 0; k < L->nout; k++)
					out[(size_t)k * plane + (size_t)y * w + x] = 0;
	}
}

int
mem_kern_classify_f32(const struct mem_kern_model *m, const float *const *in, int w, int in_rows,
    int top, int rows, float *cls, float *prob)
{
	int halo = mem_kern_model_halo(m), C = mem_kern_model_maxwidth(m);
	size_t plane = (size_t)(CHUNK + 2 * halo) * w, cap = plane * C;
	float *a = malloc(cap * sizeof *a), *b = malloc(cap * sizeof *b);
	unsigned char *bad = malloc(plane);
	double *acc = malloc((size_t)w * sizeof *acc), *e = malloc((size_t)C * sizeof *e);
	size_t n = (size_t)w * rows;

	if (a == NULL || b == NULL || bad == NULL || acc == NULL || e == NULL) {
		free(a);
		free(b);
		free(bad);
		free(acc);
		free(e);
		return -1;
	}
	for (int cy = top; cy < top + rows; cy += CHUNK) {
		int cr = top + rows - cy < CHUNK ? top + rows - cy : CHUNK;
		int lo = cy - halo < 0 ? 0 : cy - halo;
		int hi = cy + cr + halo > in_rows ? in_rows : cy + cr + halo;
		int nr = hi - lo, nc = m->nbands;
		size_t np = (size_t)nr * w;
		float *cur = a, *nxt = b, *t;

		/*
		 * normalised inputs, a nodata band reading as 0 (its mean); every
		 * layer's map is 0 at a pixel with a nodata band, so that nodata
		 * is to the network what the image's edge is, whatever its depth
		 */
		memset(bad, 0, np);
		for (int i = 0; i < nc; i++) {
			const float *v = in[i] + (size_t)lo * w;
			float *c = cur + (size_t)i * plane;
			const double mean = m->mean[i], sd = m->std[i];

			for (size_t p = 0; p < np; p++) {
				bad[p] |= v[p] != v[p];
				c[p] = v[p] == v[p] ? (float)((v[p] - mean) / sd) : 0.0f;
			}
		}
		for (int l = 0; l < m->nlayers; l++) {
			layer_run(&m->layer[l], cur, nxt, w, nr, plane, bad, acc, e);
			nc = m->layer[l].nout;
			t = cur;
			cur = nxt;
			nxt = t;
		}
		for (int y = cy; y < cy + cr; y++)
			for (int x = 0; x < w; x++) {
				size_t p = (size_t)(y - lo) * w + x, q = (size_t)(y - top) * w + x;
				int best = 0;

				for (int k = 1; k < nc; k++)
					if (cur[(size_t)k * plane + p] > cur[(size_t)best * plane + p])
						best = k;
				cls[q] = bad[p] ? MEM_KERN_CLASS_NODATA : (float)best;
				for (int k = 0; prob && k < nc; k++)
					prob[(size_t)k * n + q] = bad[p] ? NAN : cur[(size_t)k * plane + p];
			}
	}
	free(a);
	free(b);
	free(bad);
	free(acc);
	free(e);
	return 0;
}

/* --- training ------------------------------------------------------------ */

static void
activate(float *v, int n, int act)
{
	if (act == MEM_KERN_RELU) {
		for (int i = 0; i < n; i++)
			v[i] = v[i] > 0 ? v[i] : 0;
	} else if (act == MEM_KERN_SOFTMAX) {
		double mx = v[0], s = 0;

		for (int i = 1; i < n; i++)
			mx = v[i] > mx ? v[i] : mx;
		for (int i = 0; i < n; i++)
			s += exp((double)v[i] - mx);
		for (int i = 0; i < n; i++)
			v[i] = (float)(exp((double)v[i] - mx) / s);
	}
}

static uint64_t
splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static double
uniform(uint64_t *s)
{
	return (splitmix(s) >> 11) * (1.0 / 9007199254740992.0);
}

/* A layer's inputs as the training sees them: a conv layer is dense over a 3x3 patch. */
static int
fan_in(const struct mem_kern_layer *L)
{
	return L->type == MEM_KERN_CONV3 ? 9 * L->nin : L->nin;
}

int
mem_kern_train(struct mem_kern_model *m, const float *x, const int *y, size_t n,
    const struct mem_kern_train_opts *o, double *loss)
{
	int nl = m->nlayers, C = 0, rc = -1;
	uint64_t seed = o->seed;
	size_t nw = 0, batch = o->batch > 0 ? (size_t)o->batch : 64;
	float **act = calloc(nl + 1, sizeof *act), **del = calloc(nl + 1, sizeof *del);
	double *g = NULL, *mo = NULL, *ve = NULL;
	size_t *order = malloc((n ? n : 1) * sizeof *order);
	long step = 0;

	for (int l = 0; l < nl; l++) {
		nw += (size_t)m->layer[l].nout * fan_in(&m->layer[l]) + m->layer[l].nout;
		C = fan_in(&m->layer[l]) > C ? fan_in(&m->layer[l]) : C;
		C = m->layer[l].nout > C ? m->layer[l].nout : C;
	}
	g = calloc(nw, sizeof *g);
	mo = calloc(nw, sizeof *mo);
	ve = calloc(nw, sizeof *ve);
	if (act == NULL || del == NULL || g == NULL || mo == NULL || ve == NULL || order == NULL)
		goto done;
	for (int l = 0; l <= nl; l++)
		if ((act[l] = malloc((size_t)C * sizeof **act)) == NULL ||
		    (del[l] = malloc((size_t)C * sizeof **del)) == NULL)
			goto done;
	/* Glorot-uniform weights, zero biases, from the seed alone */
	for (int l = 0; l < nl; l++) {
		struct mem_kern_layer *L = &m->layer[l];
		size_t nwl = (size_t)L->nout * fan_in(L);
		double r = sqrt(6.0 / (fan_in(L) + L->nout));

		for (size_t i = 0; i < nwl; i++)
			L->w[i] = (float)((2 * uniform(&seed) - 1) * r);
		memset(L->b, 0, (size_t)L->nout * sizeof *L->b);
	}
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	for (int e = 0; e < o->epochs; e++) {
		double sum = 0;

		for (size_t i = n; i > 1; i--) {
			size_t j = splitmix(&seed) % i, t = order[i - 1];

			order[i - 1] = order[j];
			order[j] = t;
		}
		for (size_t b0 = 0; b0 < n; b0 += batch) {
			size_t bn = n - b0 < batch ? n - b0 : batch, off;

			memset(g, 0, nw * sizeof *g);
			for (size_t s = b0; s < b0 + bn; s++) {
				size_t id = order[s];
				int nin0 = fan_in(&m->layer[0]), cls = y[id];

				memcpy(act[0], x + id * nin0, (size_t)nin0 * sizeof **act);
				for (int l = 0; l < nl; l++) {
					const struct mem_kern_layer *L = &m->layer[l];
					int fi = fan_in(L);

					for (int k = 0; k < L->nout; k++) {
						double v = L->b[k];

						for (int i = 0; i < fi; i++)
							v += (double)L->w[(size_t)k * fi + i] * act[l][i];
						act[l + 1][k] = (float)v;
					}
					activate(act[l + 1], L->nout, L->act);
				}
				/* softmax with cross-entropy: the gradient is p - onehot */
				{
					const struct mem_kern_layer *L = &m->layer[nl - 1];

					for (int k = 0; k < L->nout; k++)
						del[nl][k] = act[nl][k] - (k == cls);
					sum -= log(act[nl][cls] > 1e-12f ? act[nl][cls] : 1e-12);
				}
				off = nw;
				for (int l = nl - 1; l >= 0; l--) {
					const struct mem_kern_layer *L = &m->layer[l];
					int fi = fan_in(L);
					double *gw, *gb;

					off -= (size_t)L->nout * fi + L->nout;
					gw = g + off;
					gb = gw + (size_t)L->nout * fi;
					for (int k = 0; k < L->nout; k++) {
						gb[k] += del[l + 1][k];
						for (int i = 0; i < fi; i++)
							gw[(size_t)k * fi + i] += (double)del[l + 1][k] * act[l][i];
					}
					if (l == 0)
						break;
					for (int i = 0; i < fi; i++) {
						double d = 0;

						for (int k = 0; k < L->nout; k++)
							d += (double)L->w[(size_t)k * fi + i] * del[l + 1][k];
						/* the layer below is ReLU (only the last is softmax) */
						del[l][i] = act[l][i] > 0 ? (float)d : 0.0f;
					}
				}
			}
			/* Adam on the batch's mean gradient */
			step++;
			off = 0;
			for (int l = 0; l < nl; l++) {
				struct mem_kern_layer *L = &m->layer[l];
				size_t nwl = (size_t)L->nout * fan_in(L);
				double c1 = 1 - pow(0.9, (double)step), c2 = 1 - pow(0.999, (double)step);

				for (size_t i = 0; i < nwl + (size_t)L->nout; i++) {
					double gi = g[off + i] / bn;
					float *p = i < nwl ? &L->w[i] : &L->b[i - nwl];

					if (i < nwl)
						gi += o->l2 * *p;
					mo[off + i] = 0.9 * mo[off + i] + 0.1 * gi;
					ve[off + i] = 0.999 * ve[off + i] + 0.001 * gi * gi;
					*p -= (float)(o->lr * (mo[off + i] / c1) /
					    (sqrt(ve[off + i] / c2) + 1e-8));
				}
				off += nwl + L->nout;
			}
		}
		if (loss)
			*loss = n ? sum / n : 0;
	}
	rc = 0;
done:
	for (int l = 0; act && del && l <= nl; l++) {
		free(act[l]);
		free(del[l]);
	}
	free(act);
	free(del);
	free(g);
	free(mo);
	free(ve);
	free(order);
	return rc;
}

double
mem_kern_accuracy(const struct mem_kern_model *m, const float *x, const int *y, size_t n)
{
	int C = mem_kern_model_maxwidth(m), nin0 = fan_in(&m->layer[0]);
	float *a, *b;
	size_t good = 0;

	C = nin0 > C ? nin0 : C;
	a = malloc((size_t)C * sizeof *a);
	b = malloc((size_t)C * sizeof *b);
	if (a == NULL || b == NULL || n == 0) {
		free(a);
		free(b);
		return NAN;
	}
	for (size_t s = 0; s < n; s++) {
		float *cur = a, *nxt = b, *t;
		int best = 0;

		memcpy(cur, x + s * nin0, (size_t)nin0 * sizeof *cur);
		for (int l = 0; l < m->nlayers; l++) {
			const struct mem_kern_layer *L = &m->layer[l];
			int fi = fan_in(L);

			for (int k = 0; k < L->nout; k++) {
				double v = L->b[k];

				for (int i = 0; i < fi; i++)
					v += (double)L->w[(size_t)k * fi + i] * cur[i];
				nxt[k] = (float)v;
			}
			activate(nxt, L->nout, L->act);
			t = cur;
			cur = nxt;
			nxt = t;
		}
		for (int k = 1; k < m->nclasses; k++)
			if (cur[k] > cur[best])
				best = k;
		good += best == y[s];
	}
	free(a);
	free(b);
	return (double)good / n;
}
