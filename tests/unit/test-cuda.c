/*
 * test-cuda.c - every CUDA kernel against its CPU kernel on generated
 * inputs: nodata, NaN, zero denominators, several batches (the copies
 * overlap on two streams), and strips with halo rows at their edges.
 *
 * Tolerances: masks, thresholds, classes, differences, reflectance and
 * zone counts, minima and maxima must be the same (NaN where NaN); the
 * indices (NDVI, EVI, SAVI) and the classifier's sums are the same
 * double operations in the same order on both (the CUDA code is built
 * with -fmad=false), so they must be within 1 ulp of float (identical in
 * practice; the test reports how many differ at all); band math and the
 * classifier's probabilities use log/exp/pow, whose CUDA versions are not
 * glibc's: 1e-6 relative (absolute near 0).  Zone sums: 1e-9 relative
 * (atomic additions come in any order).
 *
 * Without a device each case prints "# SKIP no CUDA device"; in a build
 * without --enable-cuda, "# SKIP built without --enable-cuda".  The CPU
 * moments of zones (for the GPU's zonal accumulation) are checked always.
 */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr.h"
#include "kern.h"
#include "tap.h"

static uint64_t rng = 0x243f6a8885a308d3ULL;

static double
urand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (rng >> 11) * (1.0 / 9007199254740992.0);
}

static float *
fvec(size_t n)
{
	float *v = calloc(n ? n : 1, sizeof *v);

	if (v == NULL) {
		fprintf(stderr, "out of memory\n");
		exit(99);
	}
	return v;
}

/* Stored Sentinel-2 values: 0 (nodata) now and then, NaN now and then. */
static void
fill_dn(float *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		double u = urand();

		v[i] = u < 0.01 ? 0.0f : u < 0.015 ? NAN : (float)(int)(urand() * 10000);
	}
}

static int64_t
ulps(float a, float b)
{
	int32_t x, y;

	memcpy(&x, &a, 4);
	memcpy(&y, &b, 4);
	if (x < 0)
		x = INT32_MIN - x;
	if (y < 0)
		y = INT32_MIN - y;
	return x > y ? (int64_t)x - y : (int64_t)y - x;
}

/*
 * Compares got (GPU) with want (CPU): NaN where NaN, and within maxulp
 * ulps or rel relative (absolute below 1).  Reports the differing count.
 */
static int
same(const float *got, const float *want, size_t n, int64_t maxulp, double rel, const char *what)
{
	size_t bad = 0, differ = 0, first = n;
	int64_t worst = 0;

	for (size_t i = 0; i < n; i++) {
		int gn = isnan(got[i]), wn = isnan(want[i]);
		int pass;

		if (gn || wn) {
			pass = gn && wn;
		} else {
			int64_t u = ulps(got[i], want[i]);
			double d = fabs((double)got[i] - want[i]);
			double s = fabs(want[i]) > 1 ? fabs(want[i]) : 1;

			worst = u > worst ? u : worst;
			differ += u != 0;
			pass = rel > 0 ? d <= rel * s : u <= maxulp;
		}
		if (!pass && bad++ == 0)
			first = i;
	}
	if (bad)
		diag("%s: %zu of %zu pixels differ beyond the tolerance, the first at %zu: GPU %.9g, CPU %.9g",
		    what, bad, n, first, got[first], want[first]);
	else
		diag("%s: %zu pixels, %zu not bit-identical, worst %lld ulp", what, n, differ,
		    (long long)worst);
	return ok(bad == 0, "%s: CUDA equals CPU", what);
}

static const char *why_skip;

/* 1 when the case can run on a device; else prints n loud skips. */
static int
gpu(int n, const char *what)
{
	if (why_skip == NULL)
		return 1;
	diag("%s: SKIPPED: %s", what, why_skip);
	skip(n, "%s (%s)", why_skip, what);
	return 0;
}

static void
test_indices(void)
{
	/* three batches and a bit: the batches alternate between two streams */
	size_t n = ((size_t)3 << 21) + 4099;
	float *red = fvec(n), *nir = fvec(n), *blue = fvec(n), *a = fvec(n), *b = fvec(n);
	struct mem_kern_ndvi_params p = { 1e-4, -0.1, 1e-4, -0.1, 1, 1, 0, 0 };
	struct mem_kern_band kb[3] = { { 1e-4, -0.1, 1, 0 }, { 1e-4, -0.1, 1, 0 },
		{ 1e-4, -0.1, 1, 0 } };

	fill_dn(red, n);
	fill_dn(nir, n);
	fill_dn(blue, n);
	/* nir + red == 0 after the offset: a zero denominator */
	red[5] = 500;
	nir[5] = 1500;
	red[6] = 1000;
	nir[6] = 1000;
	if (gpu(6, "indices")) {
		mem_kern_ndvi_f32(red, nir, a, n, &p);
		ok(mem_kern_ndvi_cuda(red, nir, b, n, &p) == 0, "NDVI runs on the device");
		same(b, a, n, 1, 0, "NDVI (normalized difference)");
		mem_kern_evi_f32(nir, red, blue, a, n, kb);
		ok(mem_kern_evi_cuda(nir, red, blue, b, n, kb) == 0 && same(b, a, n, 1, 0, "EVI"),
		    "EVI runs");
		mem_kern_savi_f32(nir, red, a, n, kb, 0.5);
		ok(mem_kern_savi_cuda(nir, red, b, n, kb, 0.5) == 0 && same(b, a, n, 1, 0, "SAVI"),
		    "SAVI runs");
	}
	free(red);
	free(nir);
	free(blue);
	free(a);
	free(b);
}

static void
test_pixels(void)
{
	size_t n = ((size_t)1 << 21) + 77;
	float *x = fvec(n), *y = fvec(n), *m = fvec(n), *a = fvec(n), *b = fvec(n);
	struct mem_kern_band kb = { 2.75e-5, -0.2, 1, 0 };

	fill_dn(x, n);
	fill_dn(y, n);
	for (size_t i = 0; i < n; i++)
		m[i] = urand() < 0.3 ? 1.0f : urand() < 0.05 ? NAN : 0.0f;
	if (gpu(9, "reflectance, mask, diff, threshold")) {
		mem_kern_reflectance_f32(x, a, n, &kb);
		ok(mem_kern_reflectance_cuda(x, b, n, &kb) == 0, "reflectance runs");
		same(b, a, n, 0, 0, "reflectance (Landsat scale and offset)");
		mem_kern_apply_mask_f32(a, m, n);
		ok(mem_kern_apply_mask_cuda(b, m, n) == 0 && same(b, a, n, 0, 0, "apply_mask"),
		    "apply_mask runs in place");
		mem_kern_diff_f32(x, y, a, n);
		memcpy(b, x, n * sizeof *b);
		/* in place, as mem-infer's diff stage calls it */
		ok(mem_kern_diff_cuda(b, y, b, n) == 0 && same(b, a, n, 0, 0, "diff (after - before)"),
		    "diff runs");
		for (size_t i = 0; i < n; i++)
			y[i] = isnan(x[i]) ? NAN : (float)(urand() * 2 - 1);
		y[0] = -0.2f;
		y[1] = 0.2f;
		mem_kern_threshold_f32(y, a, n, -0.2);
		ok(mem_kern_threshold_cuda(y, b, n, -0.2) == 0 && same(b, a, n, 0, 0,
		    "threshold -0.2 (loss)"), "threshold runs");
		mem_kern_threshold_f32(y, a, n, 0.2);
		mem_kern_threshold_cuda(y, b, n, 0.2);
		same(b, a, n, 0, 0, "threshold 0.2 (gain)");
	}
	free(x);
	free(y);
	free(m);
	free(a);
	free(b);
}

/* The cloud mask of the whole image on the CPU, strips with halos on the GPU. */
static void
test_cloudmask(void)
{
	int w = 517, h = 301, dil = 3, strip = 64;
	size_t np = (size_t)w * h;
	float *scl = fvec(np), *a = fvec(np), *b = fvec(np);
	unsigned char *scratch = malloc(2 * np);
	unsigned long long classes = 1ULL << 3 | 1ULL << 8 | 1ULL << 9 | 1ULL << 10;
	int okall = 1;

	for (size_t i = 0; i < np; i++) {
		double u = urand();

		/* mostly clear (4, 5), some clouds (3, 8-10), nodata 0, NaN, odd values */
		scl[i] = u < 0.03 ? 8 + (int)(urand() * 3) : u < 0.04 ? 3 : u < 0.05 ? 0 :
		    u < 0.055 ? NAN : u < 0.06 ? 70 : u < 0.065 ? 3.5f : 4 + (int)(urand() * 2);
	}
	if (!gpu(3, "cloudmask")) {
		free(scl);
		free(a);
		free(b);
		free(scratch);
		return;
	}
	mem_kern_cloudmask_f32(scl, a, w, h, 0, h, classes, 1, 0, dil, scratch);
	for (int y0 = 0; y0 < h; y0 += strip) {
		int rows = h - y0 < strip ? h - y0 : strip;
		int top = y0 < dil ? y0 : dil, bot = h - (y0 + rows) < dil ? h - (y0 + rows) : dil;

		okall &= mem_kern_cloudmask_cuda(scl + (size_t)(y0 - top) * w, b + (size_t)y0 * w, w,
		    rows + top + bot, top, rows, classes, 1, 0, dil) == 0;
	}
	ok(okall, "cloudmask runs on strips of %d rows with %d rows of halo", strip, dil);
	same(b, a, np, 0, 0, "cloudmask, dilation 3, strips vs whole image");
	mem_kern_cloudmask_f32(scl, a, w, h, 0, h, classes, 0, 0, 0, scratch);
	mem_kern_cloudmask_cuda(scl, b, w, h, 0, h, classes, 0, 0, 0);
	same(b, a, np, 0, 0, "cloudmask, no dilation, no nodata value");
	free(scl);
	free(a);
	free(b);
	free(scratch);
}

static void
test_expr(void)
{
	static const char *const src[] = {
		"(b - a) / (b + a)",
		"a > 0.3 && b < 0.5 ? sqrt(abs(a - b)) : -1",
		"max(a, b, c) - min(a, 0.1) + log(b) * exp(-c) + pow(a, 1.5)",
		"!(a == b) || c != 0 ? 2.5 * (b - a) / (b + 6 * a - 7.5 * c + 1) : 0",
	};
	size_t n = ((size_t)1 << 21) + 333;
	float *v[3] = { fvec(n), fvec(n), fvec(n) }, *a = fvec(n), *b = fvec(n);
	const float *vars[3];

	for (int k = 0; k < 3; k++)
		for (size_t i = 0; i < n; i++)
			v[k][i] = urand() < 0.02 ? NAN : urand() < 0.01 ? 0.0f : (float)urand();
	if (gpu(2 * 4, "expr")) {
		for (int e = 0; e < 4; e++) {
			struct mem_expr_error err;
			struct mem_expr *x = mem_expr_compile(src[e], &err);
			char what[200];

			if (x == NULL) {
				ok(0, "compile '%s': %s", src[e], err.msg);
				ok(0, "skipped");
				continue;
			}
			/* the slots in the order of the program's names: a, b, c */
			for (size_t k = 0; k < mem_expr_nvars(x); k++)
				vars[k] = v[mem_expr_var(x, k)[0] - 'a'];
			mem_expr_eval(x, vars, a, n);
			ok(mem_expr_eval_cuda(x, vars, b, n) == 0, "expr '%s' runs on the device", src[e]);
			snprintf(what, sizeof what, "expr '%s'", src[e]);
			same(b, a, n, 0, e == 2 ? 1e-6 : 0, what);
			mem_expr_free(x);
		}
	}
	for (int k = 0; k < 3; k++)
		free(v[k]);
	free(a);
	free(b);
}

static void
rand_layer(struct mem_kern_layer *L, int type, int act, int nin, int nout)
{
	size_t nw = (size_t)nout * nin * (type == MEM_KERN_CONV3 ? 9 : 1);

	L->type = type;
	L->act = act;
	L->nin = nin;
	L->nout = nout;
	L->w = fvec(nw);
	L->b = fvec(nout);
	for (size_t i = 0; i < nw; i++)
		L->w[i] = (float)(urand() * 2 - 1) / sqrtf((float)nin);
	for (int k = 0; k < nout; k++)
		L->b[k] = (float)(urand() * 0.2 - 0.1);
}

/* A conv-conv-dense network: strips with a halo of 2 on the GPU against the whole image on the CPU. */
static void
test_classify(void)
{
	int w = 300, h = 203, nb = 4, strip = 50, okall = 1;
	size_t np = (size_t)w * h;
	double mean[4] = { 0.1, 0.12, 0.3, 0.2 }, sd[4] = { 0.05, 0.06, 0.1, 0.08 };
	struct mem_kern_layer L[3];
	struct mem_kern_model m = { nb, mean, sd, 3, L, 5 };
	float *band[4], *ca = fvec(np), *cb = fvec(np), *pa = fvec(5 * np), *pb = fvec(5 * np);
	float *sp = fvec(5 * (size_t)w * strip);
	const float *in[4];
	int halo;

	rand_layer(&L[0], MEM_KERN_CONV3, MEM_KERN_RELU, nb, 8);
	rand_layer(&L[1], MEM_KERN_CONV3, MEM_KERN_RELU, 8, 8);
	rand_layer(&L[2], MEM_KERN_DENSE, MEM_KERN_SOFTMAX, 8, 5);
	halo = mem_kern_model_halo(&m);
	for (int i = 0; i < nb; i++) {
		band[i] = fvec(np);
		for (size_t p = 0; p < np; p++)
			band[i][p] = urand() < 0.01 ? NAN : (float)(mean[i] + sd[i] * (urand() * 4 - 2));
		in[i] = band[i];
	}
	if (gpu(3, "classify")) {
		mem_kern_classify_f32(&m, in, w, h, 0, h, ca, pa);
		for (int y0 = 0; y0 < h; y0 += strip) {
			int rows = h - y0 < strip ? h - y0 : strip;
			int top = y0 < halo ? y0 : halo, bot = h - (y0 + rows) < halo ? h - (y0 + rows) : halo;
			const float *sin[4];

			for (int i = 0; i < nb; i++)
				sin[i] = band[i] + (size_t)(y0 - top) * w;
			okall &= mem_kern_classify_cuda(&m, sin, w, rows + top + bot, top, rows,
			    cb + (size_t)y0 * w, sp) == 0;
			for (int k = 0; k < 5; k++)
				memcpy(pb + (size_t)k * np + (size_t)y0 * w, sp + (size_t)k * w * rows,
				    (size_t)w * rows * sizeof *sp);
		}
		ok(okall, "classify runs on strips of %d rows with %d rows of halo", strip, halo);
		same(cb, ca, np, 0, 0, "classes (3x3 conv, conv, dense softmax), strips vs whole image");
		same(pb, pa, 5 * np, 0, 1e-6, "class probabilities");
	}
	for (int i = 0; i < nb; i++)
		free(band[i]);
	for (int l = 0; l < 3; l++) {
		free(L[l].w);
		free(L[l].b);
	}
	free(ca);
	free(cb);
	free(pa);
	free(pb);
	free(sp);
}

static void
test_zonal(size_t nz)
{
	size_t n = ((size_t)1 << 21) + 5000;
	int *ids = malloc(n * sizeof *ids);
	float *v = fvec(n);
	struct mem_kern_zonal_acc *a = calloc(nz, sizeof *a), *b = calloc(nz, sizeof *b);
	struct mem_kern_zone *zz = calloc(nz, sizeof *zz);
	struct mem_kern_zonal_stats st;
	int id = 1, good = 1;

	if (ids == NULL || a == NULL || b == NULL || zz == NULL)
		exit(99);
	/* runs of one zone, as a field's pixels along a row; 0 and out-of-range ids too */
	for (size_t i = 0; i < n; i++) {
		if (urand() < 0.01)
			id = (int)(urand() * (nz + 3)) - 1;
		ids[i] = id;
		v[i] = urand() < 0.02 ? NAN : (float)(urand() * 2 - 1);
	}
	mem_kern_zonal_acc_init(a, nz);
	/* two strips: accumulation adds to what is there */
	mem_kern_zonal_moments_f32(a, nz, ids, v, n / 2);
	mem_kern_zonal_moments_f32(a, nz, ids + n / 2, v + n / 2, n - n / 2);
	/* CPU moments against the exact statistics of the gathered values */
	mem_kern_zonal_add(zz, nz, ids, v, n);
	for (size_t z = 0; z < nz; z++) {
		mem_kern_zonal_stats(zz[z].v, zz[z].n, NULL, 0, &st);
		good &= a[z].count == st.count;
		if (st.count)
			good &= a[z].min == st.min && a[z].max == st.max &&
			    fabs(a[z].sum / a[z].count - st.mean) < 1e-12;
		free(zz[z].v);
	}
	ok(good, "%zu zones: CPU moments agree with the exact statistics", nz);
	if (gpu(2, "zonal moments")) {
		int r;

		mem_kern_zonal_acc_init(b, nz);
		r = mem_kern_zonal_moments_cuda(b, nz, ids, v, n / 2);
		r |= mem_kern_zonal_moments_cuda(b, nz, ids + n / 2, v + n / 2, n - n / 2);
		ok(r == 0, "%zu zones: zonal moments run on the device (%s)", nz,
		    nz <= 512 ? "shared memory" : "global atomics");
		good = 1;
		for (size_t z = 0; z < nz; z++) {
			int g = a[z].count == b[z].count && a[z].min == b[z].min && a[z].max == b[z].max &&
			    fabs(a[z].sum - b[z].sum) <= 1e-9 * (fabs(a[z].sum) + 1) &&
			    fabs(a[z].sumsq - b[z].sumsq) <= 1e-9 * (a[z].sumsq + 1);

			if (!g && good)
				diag("zone %zu: GPU count %llu sum %.17g min %g max %g, CPU %llu %.17g %g %g",
				    z + 1, b[z].count, b[z].sum, b[z].min, b[z].max, a[z].count, a[z].sum,
				    a[z].min, a[z].max);
			good &= g;
		}
		ok(good, "%zu zones: counts, minima, maxima exact, sums within 1e-9", nz);
	}
	free(ids);
	free(v);
	free(a);
	free(b);
	free(zz);
}

int
main(void)
{
#ifndef HAVE_CUDA
	why_skip = "built without --enable-cuda";
#else
	if (!mem_kern_cuda_available())
		why_skip = "no CUDA device";
#endif
	if (why_skip)
		diag("######## GPU CHECKS SKIPPED: %s ########", why_skip);
	else
		diag("CUDA device present: comparing every kernel with the CPU");
	test_indices();
	test_pixels();
	test_cloudmask();
	test_expr();
	test_classify();
	test_zonal(300);
	test_zonal(2000);
	mem_kern_cuda_release();
	done_testing();
	return tap_exit();
}
