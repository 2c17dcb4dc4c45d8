/*
 * kern.h - compute kernels: buffers in, buffers out.
 *
 * Kernels know nothing of files, GDAL or items, so that the CPU and CUDA
 * versions can be built and checked on a machine with only a compiler.
 */
#ifndef MEM_KERN_H
#define MEM_KERN_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * How to turn stored values into reflectance, and which stored values are
 * nodata: reflectance = value * scale + offset.
 */
struct mem_kern_ndvi_params {
	double red_scale, red_offset;
	double nir_scale, nir_offset;
	int red_has_nodata, nir_has_nodata;
	float red_nodata, nir_nodata;
};

/*
 * NDVI = (nir - red) / (nir + red), computed in double precision and stored
 * as float32.  out[i] is NaN where either input is nodata or NaN, or where
 * nir + red == 0.  Values outside [-1, 1] (negative reflectance after a BOA
 * offset) are kept as computed, not clamped.  Uses OpenMP threads when the
 * caller is not already in a parallel region.
 */
void mem_kern_ndvi_f32(const float *red, const float *nir, float *out, size_t n,
    const struct mem_kern_ndvi_params *p);

/*
 * Any normalized difference (a - b) / (a + b) is mem_kern_ndvi_f32 with
 * nir = a and red = b: NDWI, MNDWI, NBR, NDBI and NDSI share its exact
 * arithmetic and its GPU path.
 */

/* One input band: reflectance = value * scale + offset; nodata as stored. */
struct mem_kern_band {
	double scale, offset;
	int has_nodata;
	float nodata;
};

/*
 * EVI = 2.5 (nir - red) / (nir + 6 red - 7.5 blue + 1) on reflectance, in
 * double precision, stored as float32; NaN where an input is nodata or NaN
 * or the denominator is 0.  b[] describes nir, red and blue in that order.
 */
void mem_kern_evi_f32(const float *nir, const float *red, const float *blue, float *out, size_t n,
    const struct mem_kern_band b[3]);

/*
 * SAVI = (1 + L) (nir - red) / (nir + red + L) on reflectance, as for EVI;
 * b[] describes nir and red.
 */
void mem_kern_savi_f32(const float *nir, const float *red, float *out, size_t n,
    const struct mem_kern_band b[2], double L);

/* Reflectance of one band: value * scale + offset, NaN where nodata. */
void mem_kern_reflectance_f32(const float *in, float *out, size_t n, const struct mem_kern_band *b);

/* out[i] = NaN where mask[i] is not 0 (NaN included): a mask hides what it covers. */
void mem_kern_apply_mask_f32(float *out, const float *mask, size_t n);

/*
 * Cloud mask from a classification band (Sentinel-2 SCL): 1 where the
 * class is in the set (bit k of classes for class k, 0-63), 0 where not,
 * NaN where the input is nodata or NaN; then every clear pixel within
 * dilate pixels (a square window) of a masked one becomes 1.
 *
 * in holds in_rows rows of w pixels; out receives rows rows of w pixels,
 * those of in starting at row top.  The rows of in above and below are the
 * halo that dilation reads, so strips join without seams; at the edge of
 * the image there is less halo and the window is cut there.  scratch holds
 * 2 * w * in_rows bytes.
 */
void mem_kern_cloudmask_f32(const float *in, float *out, int w, int in_rows, int top, int rows,
    unsigned long long classes, int has_nodata, float nodata, int dilate, unsigned char *scratch);

/* Change: out = after - before (NaN where either is NaN). */
void mem_kern_diff_f32(const float *after, const float *before, float *out, size_t n);

/*
 * Change mask of a difference: 1 where d <= t (t < 0, a loss) or d >= t
 * (t > 0, a gain), 0 elsewhere, NaN where d is NaN.
 */
void mem_kern_threshold_f32(const float *d, float *out, size_t n, double t);

/* The values of one zone, gathered from strips (zonal.c). */
struct mem_kern_zone {
	float *v;
	size_t n, cap;
};

/*
 * Appends v[i] to zone ids[i] - 1 for every pixel whose id is 1..nzones
 * and whose value is not NaN.  Returns 0, or -1 when out of memory.
 */
int mem_kern_zonal_add(struct mem_kern_zone *z, size_t nzones, const int *ids, const float *v,
    size_t n);
/* Moves src's values to the end of dst (src is left empty); -1 when out of memory. */
int mem_kern_zonal_merge(struct mem_kern_zone *dst, struct mem_kern_zone *src);

struct mem_kern_zonal_stats {
	size_t count;
	double mean, std, min, max; /* std: population (divided by count) */
	double pct[16];
};

/*
 * Statistics of n values (sorted in place): an exact mean (compensated
 * sum over the sorted values), the population standard deviation in two
 * passes, and percentiles with linear interpolation between the closest
 * ranks (numpy's default: rank p/100 * (n - 1)).  n = 0 gives count 0 and
 * NaN elsewhere.
 */
void mem_kern_zonal_stats(float *v, size_t n, const double *pct, int npct,
    struct mem_kern_zonal_stats *out);

/* 1 when a CUDA device can run the kernels (always 0 in a CPU-only build). */
int mem_kern_cuda_available(void);

/*
 * The same NDVI on the GPU: copies in, computes, copies out, in batches
 * with copies overlapped with compute.  Returns 0, or -1 when the device
 * failed (the caller then uses the CPU).
 */
int mem_kern_ndvi_cuda(const float *red, const float *nir, float *out, size_t n,
    const struct mem_kern_ndvi_params *p);

#ifdef __cplusplus
}
#endif

#endif
