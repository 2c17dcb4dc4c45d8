/*
 * test-classify.c - the classifier's kernels: a hand-made two-layer
 * network against values worked out by hand, a 3x3 convolution with its
 * zero padding, strips that give the same bits as the whole image, and
 * training that separates what is separable, the same for the same seed.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kern.h"
#include "tap.h"

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
	done_testing();
	return tap_exit();
}
