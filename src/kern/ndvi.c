/*
 * ndvi.c - the NDVI kernel on the CPU.
 *
 * Memory-bound: two loads and a store per pixel.  The loop is written
 * branch-free (a mask blend) so that gcc vectorises it even when the
 * division could trap; see -fopt-info-vec.  Double precision keeps the
 * float32 result the correctly rounded value of the exact quotient for
 * integer reflectances, which is what reference products are made from.
 */
#include "config.h"

#include <math.h>
#include <omp.h>

#include "kern.h"
#include "simd.h"

static MEM_KERN_CLONES void
ndvi_span(const float *restrict red, const float *restrict nir, float *restrict out, size_t n,
    const struct mem_kern_ndvi_params *p)
{
	const double rs = p->red_scale, ro = p->red_offset, ns = p->nir_scale, no = p->nir_offset;
	const float rnd = p->red_has_nodata ? p->red_nodata : NAN;
	const float nnd = p->nir_has_nodata ? p->nir_nodata : NAN;
	size_t i;

#pragma omp simd
	for (i = 0; i < n; i++) {
		double r = red[i] * rs + ro, v = nir[i] * ns + no;
		double den = v + r;
		/* den == 0 or a nodata input gives NaN; NaN inputs carry through */
		int bad = (red[i] == rnd) | (nir[i] == nnd) | (den == 0.0);
		double q = (v - r) / (bad ? 1.0 : den);

		out[i] = bad ? NAN : (float)q;
	}
}

void
mem_kern_ndvi_f32(const float *red, const float *nir, float *out, size_t n,
    const struct mem_kern_ndvi_params *p)
{
	const size_t chunk = 1 << 16;

	if (omp_in_parallel() || n < 2 * chunk) {
		ndvi_span(red, nir, out, n, p);
		return;
	}
#pragma omp parallel for schedule(static)
	for (size_t c = 0; c < (n + chunk - 1) / chunk; c++) {
		size_t off = c * chunk, len = n - off < chunk ? n - off : chunk;

		ndvi_span(red + off, nir + off, out + off, len, p);
	}
}
