/*
 * test-classify.c - the classifier's kernels: a hand-made two-layer
 * network against values worked out by hand, a 3x3 convolution with its
 * zero padding, strips that give the same bits as the whole image, and
 * training that separates what is separable, the same for the same seed;
 * and random networks against a plain reference written here.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kern.h"
#include "tap.h"

/*
 * The network as the model's documentation says it (mem-model(5)), written
 * plainly here: every map over all the rows given, pixel by pixel, each
 * sum taken in the documented order (bias, then input, row, column; what
 * lies beyond the rows and columns left out), every map 0 at a pixel with
 * a nodata band.  The kernel computes rows in chunks with a halo and whole
 * rows at a time; its bits must be these.
 */
static void
ref_classify(const struct mem_kern_model *m, const float *const *in, int w, int h, int top,
    int rows, float *cls, float *prob)
{
	size_t np = (size_t)w * h, n = (size_t)w * rows;
	int C = mem_kern_model_maxwidth(m), nc = m->nbands;
	float *cur = malloc(np * C * sizeof *cur), *nxt = malloc(np * C * sizeof *nxt), *t;
	unsigned char *bad = calloc(np, 1);

	for (size_t p = 0; p < np; p++)
		for (int i = 0; i < nc; i++) {
			float v = in[i][p];

			bad[p] |= v != v;
			cur[p * nc + i] = v == v ? (float)((v - m->mean[i]) / m->std[i]) : 0.0f;
		}
	for (int l = 0; l < m->nlayers; l++) {
		const struct mem_kern_layer *L = &m->layer[l];

		for (int y = 0; y < h; y++)
			for (int x = 0; x < w; x++) {
				size_t p = (size_t)y * w + x;
				float *o = nxt + p * L->nout;

				for (int k = 0; k < L->nout; k++) {
					double s = L->b[k];

					for (int i = 0; i < L->nin; i++) {
						if (L->type == MEM_KERN_DENSE) {
							s += (double)L->w[k * L->nin + i] * cur[p * L->nin + i];
							continue;
						}
						for (int dy = -1; dy <= 1; dy++)
							for (int dx = -1; dx <= 1; dx++)
								if (y + dy >= 0 && y + dy < h && x + dx >= 0 &&
								    x + dx < w)
									s += (double)L->w[((k * L->nin + i) * 3 +
									    dy + 1) * 3 + dx + 1] * cur[((size_t)(y +
									    dy) * w + x + dx) * L->nin + i];
					}
					o[k] = (float)s;
				}
				if (L->act == MEM_KERN_RELU)
					for (int k = 0; k < L->nout; k++)
						o[k] = o[k] > 0 ? o[k] : 0;
				else if (L->act == MEM_KERN_SOFTMAX) {
					double mx = o[0], sum = 0;

					for (int k = 1; k < L->nout; k++)
						mx = o[k] > mx ? o[k] : mx;
					for (int k = 0; k < L->nout; k++)
						sum += exp((double)o[k] - mx);
					for (int k = 0; k < L->nout; k++)
						o[k] = (float)(exp((double)o[k] - mx) / sum);
				}
				for (int k = 0; bad[p] && k < L->nout; k++)
					o[k] = 0;
			}
		t = cur;
		cur = nxt;
		nxt = t;
		nc = L->nout;
	}
	for (int y = top; y < top + rows; y++)
		for (int x = 0; x < w; x++) {
			size_t p = (size_t)y * w + x, q = (size_t)(y - top) * w + x;
			int best = 0;

			for (int k = 1; k < nc; k++)
				if (cur[p * nc + k] > cur[p * nc + best])
					best = k;
			cls[q] = bad[p] ? MEM_KERN_CLASS_NODATA : (float)best;
			for (int k = 0; k < nc; k++)
				prob[(size_t)k * n + q] = bad[p] ? NAN : cur[p * nc + k];
		}
	free(cur);
	free(nxt);
	free(bad);
}

static unsigned rnd_state = 1;

static float
rnd(float scale)
{
	rnd_state = rnd_state * 1103515245u + 12345u;
	return ((rnd_state >> 8 & 0xffff) / 65536.0f * 2 - 1) * scale;
}

/*
 * Random networks (dense, one and two convolutions, linear, ReLU and
 * softmax; weights up to 300, whose softmax underflows), inputs with and
 * without nodata, widths 1 to 301, whole images and windows of rows
 * inside a strip: the kernel gives the reference's bits.
 */
static void
test_against_reference(void)
{
	const int ws[] = { 1, 2, 3, 17, 301 };
	/* layer types, 1 a convolution; -1 ends */
	const int nets[][4] = { { 1, 0, -1, -1 }, { 0, 0, -1, -1 }, { 1, 1, 0, -1 }, { 1, 1, 1, 0 },
		{ 0, 1, 0, -1 } };
	const int win[][2] = { { 0, 40 }, { 3, 30 }, { 10, 1 }, { 39, 1 } };
	const int h = 40, nb = 3;
	static double mean[3] = { 0.1, 0.2, 0.3 }, sd[3] = { 0.5, 0.7, 1.1 };

	for (size_t t = 0; t < sizeof nets / sizeof *nets; t++)
		for (int big = 0; big <= 1; big++) {
			struct mem_kern_layer L[4];
			int nl = 0, nin = nb, bad = 0, cases = 0;

			for (int l = 0; l < 4 && nets[t][l] >= 0; l++, nl++) {
				int last = l == 3 || nets[t][l + 1] < 0, nout = last ? 5 : 6;
				size_t nw = (size_t)nout * nin * (nets[t][l] ? 9 : 1);

				L[l].type = nets[t][l] ? MEM_KERN_CONV3 : MEM_KERN_DENSE;
				L[l].act = last ? (t == 3 ? MEM_KERN_LINEAR : MEM_KERN_SOFTMAX) :
				    l % 2 ? MEM_KERN_LINEAR : MEM_KERN_RELU;
				L[l].nin = nin;
				L[l].nout = nout;
				L[l].w = malloc(nw * sizeof *L[l].w);
				L[l].b = malloc(nout * sizeof *L[l].b);
				for (size_t i = 0; i < nw; i++)
					L[l].w[i] = rnd(big ? 300 : 1);
				for (int i = 0; i < nout; i++)
					L[l].b[i] = rnd(0.1f);
				nin = nout;
			}
			struct mem_kern_model m = { nb, mean, sd, nl, L, 5 };

			for (size_t wi = 0; wi < sizeof ws / sizeof *ws; wi++)
				for (int nd = 0; nd <= 1; nd++) {
					int w = ws[wi];
					float *in[3];

					for (int i = 0; i < nb; i++) {
						in[i] = malloc((size_t)w * h * sizeof *in[i]);
						for (int p = 0; p < w * h; p++)
							in[i][p] = nd && (p * 7 + i) % 13 == 0 ? NAN : rnd(1);
					}
					for (size_t k = 0; k < sizeof win / sizeof *win; k++) {
						int top = win[k][0], rows = win[k][1];
						size_t n = (size_t)w * rows;
						float *c1 = calloc(n, 4), *c2 = calloc(n, 4);
						float *p1 = calloc(n * 5, 4), *p2 = calloc(n * 5, 4);

						mem_kern_classify_f32(&m, (const float *const *)in, w, h, top,
						    rows, c1, p1);
						ref_classify(&m, (const float *const *)in, w, h, top, rows, c2,
						    p2);
						cases++;
						if (memcmp(c1, c2, n * 4) || memcmp(p1, p2, n * 5 * 4)) {
							bad++;
							diag("width %d, nodata %d, rows %d+%d differ", w, nd,
							    top, rows);
						}
						free(c1);
						free(c2);
						free(p1);
						free(p2);
					}
					for (int i = 0; i < nb; i++)
						free(in[i]);
				}
			ok(bad == 0, "network %zu (%d layers%s): the reference's bits in %d cases", t, nl,
			    big ? ", large weights" : "", cases);
			for (int l = 0; l < nl; l++) {
				free(L[l].w);
				free(L[l].b);
			}
		}
}

int
main(void)
{
	/* 2 bands -> dense 2 relu -> dense 2 softmax */
	float w0[] = { 1, -1, 0.5f, 2 }, b0[] = { 0, -1 };
	float w1[] = { 2, -1, -1, 1 }, b1[] = { 0.5f, 0 };
	double mean[] = { 0.1, 0.2 }, sd[] = { 0.5, 2 };
	struct mem_kern_layer L[2] = {
		{ MEM_KERN_DENSE, MEM_KERN_RELU, 2, 2, w0, b0 },
		{ MEM_KERN_DENSE, MEM_KERN_SOFTMAX, 2, 2, w1, b1 },
	};
	struct mem_kern_model m = { 2, mean, sd, 2, L, 2 };
	float red[] = { 0.6f, 0.1f, NAN }, nir[] = { 1.2f, 4.2f, 0.3f };
	const float *in[] = { red, nir };
	float cls[3], prob[6];

	ok(mem_kern_model_halo(&m) == 0, "a dense network needs no halo");
	ok(mem_kern_classify_f32(&m, in, 3, 1, 0, 1, cls, prob) == 0, "classify runs");
	/*
	 * (0.6, 1.2) normalised (1, 0.5); hidden relu(1 - 0.5) = 0.5,
	 * relu(0.5 + 1 - 1) = 0.5; outputs 1 - 0.5 + 0.5 = 1 and -0.5 + 0.5 = 0;
	 * softmax e / (e + 1).
	 */
	is_int((int)cls[0], 0, "pixel 1: class 0");
	is_double(prob[0], 0.7310585786300049, 1e-6, "pixel 1: p0 = e / (e + 1)");
	is_double(prob[3], 0.2689414213699951, 1e-6, "pixel 1: p1 = 1 / (e + 1)");
	/* (0.1, 4.2) normalised (0, 2); hidden 0, 3; outputs -2.5, 3; p1 = 1 / (1 + e^-5.5) */
	is_int((int)cls[1], 1, "pixel 2: class 1");
	is_double(prob[4], 0.9959298622841039, 1e-6, "pixel 2: p1 = 1 / (1 + e^-5.5)");
	is_int((int)cls[2], MEM_KERN_CLASS_NODATA, "a NaN input is nodata (255)");
	ok(isnan(prob[2]) && isnan(prob[5]), "and its probabilities NaN");

	/* a 3x3 box sum and a constant 4.5: class 1 where the sum is below 4.5 */
	{
		float cw[18] = { 1, 1, 1, 1, 1, 1, 1, 1, 1 }, cb[2] = { 0, 4.5f };
		double cm[] = { 0 }, cs[] = { 1 };
		struct mem_kern_layer c = { MEM_KERN_CONV3, MEM_KERN_LINEAR, 1, 2, cw, cb };
		struct mem_kern_model k = { 1, cm, cs, 1, &c, 2 };
		float img[5 * 4], whole[20], wp[40], part[20], pp[40];
		const float *ci[] = { img };
		int same = 1;

		for (int i = 0; i < 20; i++)
			img[i] = 1;
		ok(mem_kern_model_halo(&k) == 1, "a convolution needs one row of halo");
		mem_kern_classify_f32(&k, ci, 4, 5, 0, 5, whole, wp);
		is_double(wp[0], 4, 0, "corner: 4 neighbours (zero padding)");
		is_double(wp[1], 6, 0, "edge: 6");
		is_double(wp[5], 9, 0, "inside: 9");
		ok(whole[0] == 1 && whole[1] == 0 && whole[5] == 0, "classes: corner 1, edge and inside 0");
		/* a varied image in strips of 2, 2 and 1 rows, each with its halo */
		for (int i = 0; i < 20; i++)
			img[i] = (float)(i * 7 % 5);
		mem_kern_classify_f32(&k, ci, 4, 5, 0, 5, whole, wp);
		for (int y0 = 0; y0 < 5; y0 += 2) {
			int rows = 5 - y0 < 2 ? 5 - y0 : 2;
			int top = y0 > 0, bot = y0 + rows < 5;
			const float *si[] = { img + (y0 - top) * 4 };
			float sc[8], sp[16];

			mem_kern_classify_f32(&k, si, 4, rows + top + bot, top, rows, sc, sp);
			for (int i = 0; i < rows * 4; i++) {
				same &= sc[i] == whole[y0 * 4 + i];
				same &= sp[i] == wp[y0 * 4 + i] && sp[rows * 4 + i] == wp[20 + y0 * 4 + i];
				part[y0 * 4 + i] = sc[i];
				pp[y0 * 4 + i] = sp[i];
			}
		}
		ok(same && memcmp(part, whole, sizeof whole) == 0 && memcmp(pp, wp, 20 * sizeof *pp) == 0,
		    "strips of 2 rows with a halo give the whole image's bits");
		for (int i = 0; i < 20; i++)
			img[i] = 1;
		img[0] = NAN;
		mem_kern_classify_f32(&k, ci, 4, 5, 0, 5, whole, wp);
		ok(whole[0] == MEM_KERN_CLASS_NODATA && wp[1] == 5,
		    "a nodata pixel is 255 and reads as the mean (0) for its neighbours");
	}

	/* training: two clusters, softmax regression and a hidden layer */
	{
		enum { N = 400 };
		static float x[N * 2];
		static int y[N];
		float tw[4], tb[2], uw[4], ub[2], hw[2 * 8], hb[8], ow[8 * 2], ob[2];
		double zm[2] = { 0, 0 }, zs[2] = { 1, 1 }, loss = -1, loss2;
		struct mem_kern_layer t = { MEM_KERN_DENSE, MEM_KERN_SOFTMAX, 2, 2, tw, tb };
		struct mem_kern_layer u = { MEM_KERN_DENSE, MEM_KERN_SOFTMAX, 2, 2, uw, ub };
		struct mem_kern_layer h[2] = {
			{ MEM_KERN_DENSE, MEM_KERN_RELU, 2, 8, hw, hb },
			{ MEM_KERN_DENSE, MEM_KERN_SOFTMAX, 8, 2, ow, ob },
		};
		struct mem_kern_model mt = { 2, zm, zs, 1, &t, 2 }, mu = { 2, zm, zs, 1, &u, 2 };
		struct mem_kern_model mh = { 2, zm, zs, 2, h, 2 };
		struct mem_kern_train_opts o = { 30, 16, 0.05, 0, 7 };
		unsigned s = 12345;

		for (int i = 0; i < N; i++) {
			double a, b;

			s = s * 1103515245u + 12345u;
			a = (s >> 8 & 0xffff) / 65536.0 - 0.5;
			s = s * 1103515245u + 12345u;
			b = (s >> 8 & 0xffff) / 65536.0 - 0.5;
			y[i] = i % 2;
			x[2 * i] = (float)(a + (y[i] ? 1.5 : -1.5));
			x[2 * i + 1] = (float)(b + (y[i] ? -1 : 1));
		}
		ok(mem_kern_train(&mt, x, y, N, &o, &loss) == 0, "softmax regression trains");
		is_double(mem_kern_accuracy(&mt, x, y, N), 1, 0, "and separates two clusters");
		ok(loss >= 0 && loss < 0.1, "mean loss %g below 0.1", loss);
		mem_kern_train(&mu, x, y, N, &o, &loss2);
		ok(memcmp(tw, uw, sizeof tw) == 0 && memcmp(tb, ub, sizeof tb) == 0 && loss == loss2,
		    "the same seed gives the same weights");
		ok(mem_kern_train(&mh, x, y, N, &o, &loss) == 0 && mem_kern_accuracy(&mh, x, y, N) == 1,
		    "a hidden ReLU layer trains too (loss %g)", loss);
	}
	test_against_reference();
	done_testing();
	return tap_exit();
}
