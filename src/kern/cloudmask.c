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
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kern.h"
#include "simd.h"

/* Marks one row of w pixels: 0 clear, 1 masked, 2 nodata. */
typedef void mark_fn(const float *in, unsigned char *m, int w, const void *ctx);

/*
 * h = m with bit 0 dilated d pixels along the row.  Dilations up to 3 (7
 * pixels) run as one pass that ors 7 shifted loads, short windows
 * repeating offset 0, which or changes nothing; wider ones a pass per
 * offset.  The d pixels at each end take the bounds-checked loop.
 */
static inline void
dilate_row(const unsigned char *m, unsigned char *h, int w, int d)
{
	int lo = d < w ? d : w, hi = w - d > lo ? w - d : lo;

	if (d == 0) {
		memcpy(h, m, (size_t)w);
		return;
	}
	/* the ends, [0, lo) and [hi, w) */
	for (int x = 0; x < w; x = x + 1 == lo ? hi : x + 1) {
		unsigned char v = m[x];

		for (int k = 1; k <= d; k++)
			v |= ((x - k >= 0 ? m[x - k] : 0) | (x + k < w ? m[x + k] : 0)) & 1;
		h[x] = v;
	}
	if (d <= 3) {
		const int k1 = 1, k2 = d >= 2 ? 2 : 1, k3 = d >= 3 ? 3 : 1;

#pragma omp simd
		for (int x = lo; x < hi; x++)
			h[x] = m[x] | ((m[x - k1] | m[x + k1] | m[x - k2] | m[x + k2] | m[x - k3] |
			    m[x + k3]) & 1);
		return;
	}
	memcpy(h + lo, m + lo, (size_t)(hi - lo));
	for (int k = 1; k <= d; k++) {
#pragma omp simd
		for (int x = lo; x < hi; x++)
			h[x] |= (m[x - k] | m[x + k]) & 1;
	}
}

/* 0, 1 or NaN by their bits, which vectorizes where a select on bytes does not */
static inline float
mask_value(unsigned char self, unsigned char any)
{
	uint32_t nd = (uint32_t)(self >> 1 & 1), on = (uint32_t)(any & 1);
	uint32_t bits = ((0u - nd) & 0x7fc00000u) | ((0u - on) & ~(0u - nd) & 0x3f800000u);
	float f;

	memcpy(&f, &bits, sizeof f);
	return f;
}

/*
 * The rows are marked and dilated along the row one at a time, into a ring
 * of 2 dilate + 1 rows of bytes that stays in the cache, and each output
 * row is the or of the ring's rows around it: the input is read once and
 * the output written once, and nothing else leaves the cache.  A ring byte
 * holds bit 0, masked after the row dilation, and bit 1, the pixel's own
 * nodata.  scratch: the ring, a row of marks and, for windows of more than
 * 7 rows, a row for the or; they fit in the 2 w in_rows bytes the callers
 * give (a one-row strip has a one-row window).
 */
static MEM_KERN_CLONES void
mask_rows(const float *in, float *out, int w, int in_rows, int top, int rows, int dilate,
    unsigned char *scratch, mark_fn *mark, const void *ctx)
{
	int R = 2 * dilate + 1 < in_rows ? 2 * dilate + 1 : in_rows;
	unsigned char *ring = scratch, *m = scratch + (size_t)R * w, *acc = m + w;
	int next = top - dilate < 0 ? 0 : top - dilate;

	for (int y = 0; y < rows; y++) {
		int yi = top + y;
		int y0 = yi - dilate < 0 ? 0 : yi - dilate;
		int y1 = yi + dilate >= in_rows ? in_rows - 1 : yi + dilate;
		int n = y1 - y0 + 1;
		const unsigned char *hc, *r[7];
		float *o = out + (size_t)y * w;

		for (; next <= y1; next++) {
			mark(in + (size_t)next * w, m, w, ctx);
			dilate_row(m, ring + (size_t)(next % R) * w, w, dilate);
		}
		hc = ring + (size_t)(yi % R) * w;
		if (n == 1) {
#pragma omp simd
			for (int x = 0; x < w; x++)
				o[x] = mask_value(hc[x], hc[x]);
		} else if (n <= 7) {
			/* short windows repeat their last row: or is idempotent */
			for (int k = 0; k < 7; k++)
				r[k] = ring + (size_t)((y0 + (k < n ? k : n - 1)) % R) * w;
			{
				const unsigned char *r0 = r[0], *r1 = r[1], *r2 = r[2], *r3 = r[3];
				const unsigned char *r4 = r[4], *r5 = r[5], *r6 = r[6];

#pragma omp simd
				for (int x = 0; x < w; x++)
					o[x] = mask_value(hc[x], r0[x] | r1[x] | r2[x] | r3[x] | r4[x] |
					    r5[x] | r6[x]);
			}
		} else {
			memcpy(acc, ring + (size_t)(y0 % R) * w, (size_t)w);
			for (int k = y0 + 1; k <= y1; k++) {
				const unsigned char *rk = ring + (size_t)(k % R) * w;

#pragma omp simd
				for (int x = 0; x < w; x++)
					acc[x] |= rk[x];
			}
#pragma omp simd
			for (int x = 0; x < w; x++)
				o[x] = mask_value(hc[x], acc[x]);
		}
	}
}

struct scl {
	float cl[64];	/* the classes, then NaN up to 8 */
	int nc;
	float nd;	/* nodata, or NaN (equals nothing) */
};

/* a class is masked where the value is exactly it: fractions and others never are */
static MEM_KERN_CLONES void
mark_scl(const float *in, unsigned char *m, int w, const void *ctx)
{
	const struct scl *c = ctx;
	const float c0 = c->cl[0], c1 = c->cl[1], c2 = c->cl[2], c3 = c->cl[3], nd = c->nd;

	if (c->nc <= 4) {
#pragma omp simd
		for (int x = 0; x < w; x++) {
			const float v = in[x];
			const unsigned char r = (v == c0) | (v == c1) | (v == c2) | (v == c3);

			m[x] = (v != v) | (v == nd) ? 2 : r;
		}
		return;
	}
	{
		const float c4 = c->cl[4], c5 = c->cl[5], c6 = c->cl[6], c7 = c->cl[7];

#pragma omp simd
		for (int x = 0; x < w; x++) {
			const float v = in[x];
			const unsigned char r = (v == c0) | (v == c1) | (v == c2) | (v == c3) |
			    (v == c4) | (v == c5) | (v == c6) | (v == c7);

			m[x] = (v != v) | (v == nd) ? 2 : r;
		}
	}
	for (int j = 8; j < c->nc; j++) {
		const float cj = c->cl[j];

#pragma omp simd
		for (int x = 0; x < w; x++)
			m[x] |= (m[x] != 2) & (in[x] == cj);
	}
}

void
mem_kern_cloudmask_f32(const float *in, float *out, int w, int in_rows, int top, int rows,
    unsigned long long classes, int has_nodata, float nodata, int dilate, unsigned char *scratch)
{
	struct scl c;

	c.nc = 0;
	for (int k = 0; k < 64; k++)
		if (classes >> k & 1ULL)
			c.cl[c.nc++] = (float)k;
	for (int j = c.nc; j < 8; j++)
		c.cl[j] = NAN;
	c.nd = has_nodata ? nodata : NAN;
	mask_rows(in, out, w, in_rows, top, rows, dilate, scratch, mark_scl, &c);
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

struct qa {
	const struct mem_kern_qa *q;
	unsigned char hi[256];	/* the high byte holds only confidence pairs: one table */
	int has_nodata;
	float nodata;
};

static void
mark_qa(const float *in, unsigned char *m, int w, const void *ctx)
{
	const struct qa *c = ctx;
	unsigned lo = c->q->bits & 0xffu;

	for (int x = 0; x < w; x++) {
		float v = in[x];
		unsigned u = (unsigned)(v >= 0 && v < 65536 ? v : 0);

		/* fill (bit 0), nodata, and what is no 16-bit word are no data */
		if (v != v || (c->has_nodata && v == c->nodata) || !(v >= 0 && v < 65536) ||
		    (float)u != v || (u & 1u))
			m[x] = 2;
		else
			m[x] = (u & lo) != 0 || c->hi[u >> 8];
	}
}

void
mem_kern_qamask_f32(const float *in, float *out, int w, int in_rows, int top, int rows,
    const struct mem_kern_qa *q, int has_nodata, float nodata, int dilate, unsigned char *scratch)
{
	struct qa c;

	c.q = q;
	c.has_nodata = has_nodata;
	c.nodata = nodata;
	for (unsigned k = 0; k < 256; k++)
		c.hi[k] = (unsigned char)mem_kern_qa_masked(k << 8, q);
	mask_rows(in, out, w, in_rows, top, rows, dilate, scratch, mark_qa, &c);
}
