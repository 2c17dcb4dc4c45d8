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

static inline double
refl(float v, const struct mem_kern_band *b)
{
	return v * b->scale + b->offset;
}

static inline int
is_nodata(float v, const struct mem_kern_band *b)
{
	return b->has_nodata & (v == b->nodata);
}

void
mem_kern_evi_f32(const float *restrict nir, const float *restrict red, const float *restrict blue,
    float *restrict out, size_t n, const struct mem_kern_band b[3])
{
#pragma omp simd
	for (size_t i = 0; i < n; i++) {
		double v = refl(nir[i], &b[0]), r = refl(red[i], &b[1]), u = refl(blue[i], &b[2]);
		double den = v + 6.0 * r - 7.5 * u + 1.0;
		int bad = is_nodata(nir[i], &b[0]) | is_nodata(red[i], &b[1]) |
		    is_nodata(blue[i], &b[2]) | (den == 0.0);
		double q = 2.5 * (v - r) / (bad ? 1.0 : den);

		out[i] = bad ? NAN : (float)q;
	}
}

void
mem_kern_savi_f32(const float *restrict nir, const float *restrict red, float *restrict out,
    size_t n, const struct mem_kern_band b[2], double L)
{
#pragma omp simd
	for (size_t i = 0; i < n; i++) {
		double v = refl(nir[i], &b[0]), r = refl(red[i], &b[1]);
		double den = v + r + L;
		int bad = is_nodata(nir[i], &b[0]) | is_nodata(red[i], &b[1]) | (den == 0.0);
		double q = (1.0 + L) * (v - r) / (bad ? 1.0 : den);

		out[i] = bad ? NAN : (float)q;
	}
}

void
mem_kern_reflectance_f32(const float *restrict in, float *restrict out, size_t n,
    const struct mem_kern_band *b)
{
#pragma omp simd
	for (size_t i = 0; i < n; i++)
		out[i] = is_nodata(in[i], b) ? NAN : (float)refl(in[i], b);
}

void
mem_kern_apply_mask_f32(float *restrict out, const float *restrict mask, size_t n)
{
#pragma omp simd
	for (size_t i = 0; i < n; i++)
		out[i] = mask[i] != 0 ? NAN : out[i];
}
