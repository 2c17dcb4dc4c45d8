/*
 * change.c - change between two dates of the same cell: the difference of
 * an index and its thresholded mask.  NaN (nodata on either date) stays
 * NaN, so a cloud or an edge on one date is never called a change.
 */
#include "config.h"

#include <math.h>

#include "kern.h"
#include "simd.h"

MEM_KERN_CLONES void
mem_kern_diff_f32(const float *after, const float *before, float *out, size_t n)
{
#pragma omp simd
	for (size_t i = 0; i < n; i++)
		out[i] = after[i] - before[i];
}

MEM_KERN_CLONES void
mem_kern_threshold_f32(const float *d, float *out, size_t n, double t)
{
	float ft = (float)t;

	/*
	 * d is float: compare with t as float, as numpy does for a float32
	 * array; one loop per direction, so that each vectorizes
	 */
	if (t < 0) {
#pragma omp simd
		for (size_t i = 0; i < n; i++) {
			const float v = d[i];

			out[i] = v != v ? NAN : v <= ft ? 1.0f : 0.0f;
		}
	} else {
#pragma omp simd
		for (size_t i = 0; i < n; i++) {
			const float v = d[i];

			out[i] = v != v ? NAN : v >= ft ? 1.0f : 0.0f;
		}
	}
}
