/*
 * index.c - spectral indices that are not a plain normalized difference,
 * and the small per-pixel passes the stages share.
 *
 * EVI and SAVI have constants (the +1 of EVI, L of SAVI) that assume
 * reflectance, so they are not scale-invariant: a stored Sentinel-2 DN,
 * or one missing the 2022+ BOA offset, gives a wrong value, not just a
 * scaled one.  The caller passes each band's scale and offset.  Like
 * ndvi.c: double arithmetic, one rounding to float, branch-free loops.
 */
#include "config.h"

#include <math.h>

#include "kern.h"
#include "simd.h"

/*
 * The band parameters are copied into locals before each loop: out may
 * alias a struct mem_kern_band as far as the compiler knows, and reloading
 * them every pixel kept the loops from being vectorized.
 */
#define BAND(k) \
	const double s##k = b[k].scale, o##k = b[k].offset; \
	const float n##k = b[k].has_nodata ? b[k].nodata : NAN	/* NaN: equals nothing */

MEM_KERN_CLONES void
mem_kern_evi_f32(const float *restrict nir, const float *restrict red, const float *restrict blue,
    float *restrict out, size_t n, const struct mem_kern_band b[3])
{
	BAND(0);
	BAND(1);
	BAND(2);

#pragma omp simd
	for (size_t i = 0; i < n; i++) {
		double v = nir[i] * s0 + o0, r = red[i] * s1 + o1, u = blue[i] * s2 + o2;
		double den = v + 6.0 * r - 7.5 * u + 1.0;
		int bad = (nir[i] == n0) | (red[i] == n1) | (blue[i] == n2) | (den == 0.0);
		double q = 2.5 * (v - r) / (bad ? 1.0 : den);

		out[i] = bad ? NAN : (float)q;
	}
}

MEM_KERN_CLONES void
mem_kern_savi_f32(const float *restrict nir, const float *restrict red, float *restrict out,
    size_t n, const struct mem_kern_band b[2], double L)
{
	BAND(0);
	BAND(1);
	const double L1 = 1.0 + L;

#pragma omp simd
	for (size_t i = 0; i < n; i++) {
		double v = nir[i] * s0 + o0, r = red[i] * s1 + o1;
		double den = v + r + L;
		int bad = (nir[i] == n0) | (red[i] == n1) | (den == 0.0);
		double q = L1 * (v - r) / (bad ? 1.0 : den);

		out[i] = bad ? NAN : (float)q;
	}
}

MEM_KERN_CLONES void
mem_kern_reflectance_f32(const float *restrict in, float *restrict out, size_t n,
    const struct mem_kern_band *b)
{
	const double s = b->scale, o = b->offset;
	const float nd = b->has_nodata ? b->nodata : NAN;	/* NaN: equals nothing */

#pragma omp simd
	for (size_t i = 0; i < n; i++)
		out[i] = in[i] == nd ? NAN : (float)(in[i] * s + o);
}

MEM_KERN_CLONES void
mem_kern_apply_mask_f32(float *restrict out, const float *restrict mask, size_t n)
{
#pragma omp simd
	for (size_t i = 0; i < n; i++)
		out[i] = mask[i] != 0 ? NAN : out[i];
}
