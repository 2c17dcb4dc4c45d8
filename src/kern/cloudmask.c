/*
 * cloudmask.c - a mask from classes of a scene classification band
 * (Sentinel-2 SCL), with dilation.
 *
 * Dilation is separable: a square window is a row window then a column
 * window, so it costs 2(2N+1) byte reads per pixel instead of (2N+1)^2.
 * The caller reads the strip with N rows of halo above and below, which
 * is why strips cut anywhere give the same mask as the whole image.
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "kern.h"

void
mem_kern_cloudmask_f32(const float *in, float *out, int w, int in_rows, int top, int rows,
    unsigned long long classes, int has_nodata, float nodata, int dilate, unsigned char *scratch)
{
	size_t np = (size_t)w * (size_t)in_rows;
	unsigned char *m = scratch, *h = scratch + np;

	for (size_t i = 0; i < np; i++) {
		float v = in[i];
		int k = (int)v;

		/* classes outside 0-63 or fractional values are never masked */
		m[i] = v == v && v >= 0 && v < 64 && (float)k == v && (classes >> k & 1ULL);
	}
	if (dilate > 0) {
		for (int y = 0; y < in_rows; y++) {
			const unsigned char *r = m + (size_t)y * w;
			unsigned char *o = h + (size_t)y * w;

			for (int x = 0; x < w; x++) {
				int x0 = x - dilate < 0 ? 0 : x - dilate;
				int x1 = x + dilate >= w ? w - 1 : x + dilate;
				unsigned char any = 0;

				for (int k = x0; k <= x1; k++)
					any |= r[k];
				o[x] = any;
			}
		}
	} else
		memcpy(h, m, np);
	for (int y = 0; y < rows; y++) {
		int yi = top + y;
		int y0 = yi - dilate < 0 ? 0 : yi - dilate;
		int y1 = yi + dilate >= in_rows ? in_rows - 1 : yi + dilate;
		const float *src = in + (size_t)yi * w;
		float *o = out + (size_t)y * w;

		for (int x = 0; x < w; x++)
			o[x] = 0;
		for (int k = y0; k <= y1; k++) {
			const unsigned char *r = h + (size_t)k * w;

#pragma omp simd
			for (int x = 0; x < w; x++)
				o[x] = r[x] ? 1.0f : o[x];
		}
#pragma omp simd
		for (int x = 0; x < w; x++)
			o[x] = (src[x] != src[x]) | (has_nodata & (src[x] == nodata)) ? NAN : o[x];
	}
}
