/*
 * cloudmask.c - a cloud and shadow mask, with dilation, from a scene
 * classification band (Sentinel-2 SCL: classes) or a quality band
 * (Landsat Collection 2 QA_PIXEL: bits and confidence pairs).
 *
 * Both first mark each pixel of the strip clear (0), masked (1) or nodata
 * (2), then share the dilation.  Dilation is separable: a square window is
 * a row window then a column window, so it costs 2(2N+1) byte reads per
 * pixel instead of (2N+1)^2.  The caller reads the strip with N rows of
 * halo above and below, which is why strips cut anywhere give the same
 * mask as the whole image.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kern.h"

/* m[] marks 0 clear, 1 masked, 2 nodata; h[] is scratch of the same size. */
static void
dilate_out(const unsigned char *m, unsigned char *h, float *out, int w, int in_rows, int top,
    int rows, int dilate)
{
	size_t np = (size_t)w * (size_t)in_rows;

#pragma omp simd
	for (size_t i = 0; i < np; i++)
		h[i] = m[i] & 1;
	/* along the rows: or in the pixels 1 to dilate away on each side */
	for (int y = 0; dilate > 0 && y < in_rows; y++) {
		const unsigned char *r = m + (size_t)y * w;
		unsigned char *o = h + (size_t)y * w;

		for (int d = 1; d <= dilate && d < w; d++) {
#pragma omp simd
			for (int x = d; x < w; x++)
				o[x] |= r[x - d] & 1;
#pragma omp simd
			for (int x = 0; x < w - d; x++)
				o[x] |= r[x + d] & 1;
		}
	}
	/* down the columns: the rows dilate above and below, as bytes, then to float */
	unsigned char *acc = malloc(w > 0 ? (size_t)w : 1);

	for (int y = 0; y < rows; y++) {
		int yi = top + y;
		int y0 = yi - dilate < 0 ? 0 : yi - dilate;
		int y1 = yi + dilate >= in_rows ? in_rows - 1 : yi + dilate;
		const unsigned char *c = m + (size_t)yi * w;
		float *o = out + (size_t)y * w;

		if (acc) {
			memcpy(acc, h + (size_t)y0 * w, (size_t)w);
			for (int k = y0 + 1; k <= y1; k++) {
				const unsigned char *r = h + (size_t)k * w;

#pragma omp simd
				for (int x = 0; x < w; x++)
					acc[x] |= r[x];
			}
#pragma omp simd
			for (int x = 0; x < w; x++)
				o[x] = c[x] == 2 ? NAN : (float)acc[x];
			continue;
		}
		/* no memory for a row of bytes: the same on the floats */
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
			o[x] = c[x] == 2 ? NAN : o[x];
	}
	free(acc);
}

void
mem_kern_cloudmask_f32(const float *in, float *out, int w, int in_rows, int top, int rows,
    unsigned long long classes, int has_nodata, float nodata, int dilate, unsigned char *scratch)
{
	size_t np = (size_t)w * (size_t)in_rows;
	unsigned char *m = scratch, *h = scratch + np;
	const float nd = has_nodata ? nodata : NAN;	/* NaN: equals nothing */
	float cl[64];
	int nc = 0;

	/* a class is masked where the value is exactly it: fractions and others never are */
	for (int k = 0; k < 64; k++)
		if (classes >> k & 1ULL)
			cl[nc++] = (float)k;
	/*
	 * one vectorized pass for the first 8 classes (NaN, which equals
	 * nothing, fills the list) and nodata, then one pass for each other
	 */
	for (int j = nc; j < 8; j++)
		cl[j] = NAN;
	{
		const float c0 = cl[0], c1 = cl[1], c2 = cl[2], c3 = cl[3];
		const float c4 = cl[4], c5 = cl[5], c6 = cl[6], c7 = cl[7];

#pragma omp simd
		for (size_t i = 0; i < np; i++) {
			const float v = in[i];
			const unsigned char r = (v == c0) | (v == c1) | (v == c2) | (v == c3) |
			    (v == c4) | (v == c5) | (v == c6) | (v == c7);

			m[i] = (v != v) | (v == nd) ? 2 : r;
		}
	}
	for (int j = 8; j < nc; j++) {
		const float c = cl[j];

#pragma omp simd
		for (size_t i = 0; i < np; i++)
			m[i] |= (m[i] != 2) & (in[i] == c);
	}
	dilate_out(m, h, out, w, in_rows, top, rows, dilate);
}

int
mem_kern_qa_masked(unsigned v, const struct mem_kern_qa *q)
{
	if (v & q->bits)
		return 1;
	for (int p = 0; p < 4; p++)
		if (q->conf[p] && (v >> (8 + 2 * p) & 3u) >= q->conf[p])
			return 1;
	return 0;
}

void
mem_kern_qamask_f32(const float *in, float *out, int w, int in_rows, int top, int rows,
    const struct mem_kern_qa *q, int has_nodata, float nodata, int dilate, unsigned char *scratch)
{
	size_t np = (size_t)w * (size_t)in_rows;
	unsigned char *m = scratch, *h = scratch + np, hi[256];
	unsigned lo = q->bits & 0xffu;

	/* the high byte holds only confidence pairs: one table for all of them */
	for (unsigned k = 0; k < 256; k++)
		hi[k] = (unsigned char)mem_kern_qa_masked(k << 8, q);
	for (size_t i = 0; i < np; i++) {
		float v = in[i];
		unsigned u = (unsigned)(v >= 0 && v < 65536 ? v : 0);

		/* fill (bit 0), nodata, and what is no 16-bit word are no data */
		if (v != v || (has_nodata && v == nodata) || !(v >= 0 && v < 65536) ||
		    (float)u != v || (u & 1u))
			m[i] = 2;
		else
			m[i] = (u & lo) != 0 || hi[u >> 8];
	}
	dilate_out(m, h, out, w, in_rows, top, rows, dilate);
}
