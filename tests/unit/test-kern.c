/*
 * test-kern.c - the NDVI kernel, CPU and (when a device is there) CUDA, and
 * the cloud mask kernel against a plain loop.
 *
 * Expected values are worked out by hand or by a plain double-precision
 * loop written here, not by calling the kernel twice.  The CPU kernel must
 * match that loop bit for bit: both compute value * scale + offset and the
 * quotient in double and round once to float.  (A build that lets the
 * compiler contract a*b+c into an FMA in one place and not the other would
 * break that; the default flags do not.)  The GPU may contract, so it is
 * held to 1 ulp of the CPU.
 */
#include "config.h"

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kern.h"
#include "tap.h"

static struct mem_kern_ndvi_params
params(float scale, float offset)
{
	struct mem_kern_ndvi_params p;

	memset(&p, 0, sizeof p);
	p.red_scale = p.nir_scale = scale;
	p.red_offset = p.nir_offset = offset;
	return p;
}

static float
ndvi1(float red, float nir, const struct mem_kern_ndvi_params *p)
{
	float out = -42;

	mem_kern_ndvi_f32(&red, &nir, &out, 1, p);
	return out;
}

/* The straightforward reference: one pixel, double precision, one rounding. */
static float
reference(float red, float nir, const struct mem_kern_ndvi_params *p)
{
	double r, v;

	if ((p->red_has_nodata && red == p->red_nodata) ||
	    (p->nir_has_nodata && nir == p->nir_nodata))
		return NAN;
	r = (double)red * (double)p->red_scale + (double)p->red_offset;
	v = (double)nir * (double)p->nir_scale + (double)p->nir_offset;
	if (v + r == 0.0)
		return NAN;
	return (float)((v - r) / (v + r));
}

static uint32_t
bits(float f)
{
	uint32_t u;

	memcpy(&u, &f, sizeof u);
	return u;
}

/* Distance in units in the last place between two finite floats. */
static long long
ulps(float a, float b)
{
	int32_t ia, ib;

	memcpy(&ia, &a, sizeof ia);
	memcpy(&ib, &b, sizeof ib);
	if (ia < 0)
		ia = INT32_MIN - ia;
	if (ib < 0)
		ib = INT32_MIN - ib;
	return llabs((long long)ia - (long long)ib);
}

/* The float nearest to p/q (ties to even), exactly: f*q is exact in double. */
static float
rounded_quotient(long p, long q)
{
	float f = (float)((double)p / (double)q), best = f;
	float c[2] = { nextafterf(f, -INFINITY), nextafterf(f, INFINITY) };
	double e = fabs((double)f * (double)q - (double)p);
	int i;

	for (i = 0; i < 2; i++) {
		double ec = fabs((double)c[i] * (double)q - (double)p);

		if (ec < e || (ec == e && (bits(c[i]) & 1) == 0)) {
			best = c[i];
			e = ec;
		}
	}
	return best;
}

static void
test_known_values(void)
{
	struct mem_kern_ndvi_params p = params(1e-4f, 0);
	long red, nir, worst = 0, off = 0, n = 0;

	/* Sentinel-2 L2A digital numbers, reflectance = DN / 10000 */
	is_double(ndvi1(1000, 3000, &p), (0.3 - 0.1) / (0.3 + 0.1), 1e-7, "(0.3-0.1)/(0.3+0.1)");
	is_double(ndvi1(500, 4500, &p), (0.45 - 0.05) / (0.45 + 0.05), 1e-7, "dense vegetation 0.8");
	is_double(ndvi1(3000, 1000, &p), -0.5, 1e-7, "water-like -0.5");
	is_double(ndvi1(2000, 2000, &p), 0, 0, "equal bands give 0");
	is_double(ndvi1(0, 5000, &p), 1, 0, "red 0 gives 1");
	is_double(ndvi1(5000, 0, &p), -1, 0, "nir 0 gives -1");
	is_double(ndvi1(1234, 5678, &p), 4444.0 / 6912.0, 1e-7, "(5678-1234)/(5678+1234)");
	ok(ndvi1(1000, 3000, &p) == 0.5f, "0.5 is exact");

	/* integer reflectances: within 1 ulp of the exactly rounded quotient */
	for (red = 0; red <= 10000; red += 97)
		for (nir = 1; nir <= 10000; nir += 89) {
			float got = ndvi1((float)red, (float)nir, &p);
			long long d = ulps(got, rounded_quotient(nir - red, nir + red));

			n++;
			if (d > worst)
				worst = (long)d;
			off += d != 0;
		}
	ok(worst <= 1, "%ld DN pairs at scale 1e-4 are within 1 ulp of the exact quotient "
	    "(worst %ld, %ld not exact)", n, worst, off);

	p = params(1, 0);
	for (red = 0, worst = 0, off = 0; red <= 10000; red += 97)
		for (nir = 1; nir <= 10000; nir += 89)
			off += bits(ndvi1((float)red, (float)nir, &p)) !=
			    bits(rounded_quotient(nir - red, nir + red));
	ok(off == 0, "at scale 1 the float is the correctly rounded quotient (%ld differ)", off);
}

static void
test_nodata_and_nan(void)
{
	struct mem_kern_ndvi_params p = params(1e-4f, 0);

	p.red_has_nodata = 1;
	p.red_nodata = 0;
	ok(isnan(ndvi1(0, 3000, &p)), "red nodata gives NaN");
	ok(!isnan(ndvi1(1000, 0, &p)), "nir 0 is data when only red has nodata");
	p.nir_has_nodata = 1;
	p.nir_nodata = 65535;
	ok(isnan(ndvi1(1000, 65535, &p)), "nir nodata gives NaN");
	ok(isnan(ndvi1(0, 65535, &p)), "both nodata gives NaN");
	ok(!isnan(ndvi1(65535, 0, &p)), "nodata values are per band");

	p = params(1e-4f, 0);
	p.red_nodata = 0;	/* has_nodata is 0: the value is ignored */
	is_double(ndvi1(0, 3000, &p), 1, 0, "a nodata value without has_nodata is data");
	ok(isnan(ndvi1(0, 0, &p)), "nir + red == 0 gives NaN");
	p = params(1, 0);
	ok(isnan(ndvi1(-5, 5, &p)), "nir + red == 0 with negative values gives NaN");
	ok(isnan(ndvi1(NAN, 3000, &p)), "NaN red gives NaN");
	ok(isnan(ndvi1(1000, NAN, &p)), "NaN nir gives NaN");
	p.red_has_nodata = p.nir_has_nodata = 1;
	p.red_nodata = p.nir_nodata = NAN;
	ok(isnan(ndvi1(NAN, 3, &p)) && ndvi1(1, 3, &p) == 0.5f,
	    "a NaN nodata value is harmless");
}

static void
test_scale_offset(void)
{
	struct mem_kern_ndvi_params p = params(1e-4f, -0.1f);
	double r, v;

	/* processing baseline 04.00+: reflectance = DN / 10000 - 0.1 */
	r = 2000 * (double)1e-4f + (double)-0.1f;
	v = 4000 * (double)1e-4f + (double)-0.1f;
	is_double(ndvi1(2000, 4000, &p), (v - r) / (v + r), 1e-7, "BOA offset -0.1 applied");
	is_double(ndvi1(2000, 4000, &p), 0.5, 1e-6, "(0.3-0.1)/(0.3+0.1) after the offset");
	is_double(ndvi1(3000, 500, &p), -0.25 / 0.15, 1e-6,
	    "negative reflectance after the offset is kept, not clamped");
	ok(ndvi1(3000, 500, &p) < -1, "so NDVI can be below -1");
	ok(!isnan(ndvi1(1000, 1000, &p)), "reflectance near 0 on both bands is not nodata");

	p = params(1, 0);
	p.red_scale = 2e-4f;
	p.nir_scale = 1e-4f;
	is_double(ndvi1(1000, 4000, &p), (0.4 - 0.2) / (0.4 + 0.2), 1e-7, "per-band scales");
	p.red_offset = 0.05f;
	is_double(ndvi1(1000, 4000, &p), (0.4 - 0.25) / (0.4 + 0.25), 1e-7, "per-band offsets");
}

static uint64_t lcg_state = 0x853c49e6748fea9bULL;

static uint32_t
lcg(void)
{
	lcg_state = lcg_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (uint32_t)(lcg_state >> 33);
}

/* Fills DNs 0..10000, with some nodata 0 and some NaN. */
static void
fill(float *red, float *nir, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		red[i] = (float)(lcg() % 10001);
		nir[i] = (float)(lcg() % 10001);
		if (lcg() % 1000 == 0)
			red[i] = 0;
		if (lcg() % 1000 == 0)
			nir[i] = NAN;
	}
}

/* Number of elements where out differs from the reference (bits, or NaN-ness). */
static size_t
mismatches(const float *red, const float *nir, const float *out, size_t n,
    const struct mem_kern_ndvi_params *p)
{
	size_t i, bad = 0;

	for (i = 0; i < n; i++) {
		float want = reference(red[i], nir[i], p);

		if (isnan(want) ? !isnan(out[i]) : bits(out[i]) != bits(want))
			bad++;
	}
	return bad;
}

static void
test_small_and_tails(void)
{
	struct mem_kern_ndvi_params p = params(1e-4f, -0.1f);
	float red[80], nir[80], out[82];
	size_t n, bad = 0, spill = 0;
	int start;

	p.red_has_nodata = p.nir_has_nodata = 1;
	fill(red, nir, 80);
	/* every length up to 65 and unaligned starts: vector tails and peeling */
	for (start = 0; start < 3; start++)
		for (n = 0; n <= 65; n++) {
			size_t i;

			for (i = 0; i < 82; i++)
				out[i] = -7;
			mem_kern_ndvi_f32(red + start, nir + start, out + 1, n, &p);
			bad += mismatches(red + start, nir + start, out + 1, n, &p);
			spill += out[0] != -7 || out[n + 1] != -7;
		}
	is_int((long long)bad, 0, "lengths 0..65 at unaligned starts match the reference");
	is_int((long long)spill, 0, "nothing is written outside out[0..n)");
}

static void
test_large(void)
{
	const size_t n = 5000000;
	struct mem_kern_ndvi_params p = params(1e-4f, -0.1f);
	float *red = malloc(n * sizeof *red), *nir = malloc(n * sizeof *nir);
	float *out = malloc(n * sizeof *out), *out2 = malloc(n * sizeof *out2);
	size_t bad, i, nans = 0;
	int avail;

	if (red == NULL || nir == NULL || out == NULL || out2 == NULL) {
		skip(6, "cannot allocate %zu MB", 4 * n * sizeof(float) >> 20);
		free(red);
		free(nir);
		free(out);
		free(out2);
		return;
	}
	p.red_has_nodata = p.nir_has_nodata = 1;
	fill(red, nir, n);
	memset(out, 0xff, n * sizeof *out);
	mem_kern_ndvi_f32(red, nir, out, n, &p);
	bad = mismatches(red, nir, out, n, &p);
	for (i = 0; i < n; i++)
		nans += isnan(out[i]);
	ok(bad == 0, "5 million pixels (%d threads) equal the double reference bit for bit "
	    "(%zu differ)", omp_get_max_threads(), bad);
	ok(nans > 5000 && nans < 20000, "with the nodata and NaN pixels as NaN (%zu)", nans);

	/* called from inside a parallel region it runs serially, same result */
	memset(out2, 0, n * sizeof *out2);
#pragma omp parallel num_threads(4)
	{
		int t = omp_get_thread_num(), nt = omp_get_num_threads();
		size_t lo = n * (size_t)t / (size_t)nt, hi = n * (size_t)(t + 1) / (size_t)nt;

		mem_kern_ndvi_f32(red + lo, nir + lo, out2 + lo, hi - lo, &p);
	}
	ok(memcmp(out, out2, n * sizeof *out) == 0, "slices from inside a parallel region agree");

	avail = mem_kern_cuda_available();
	ok(avail == 0 || avail == 1, "mem_kern_cuda_available() is 0 or 1 (%d)", avail);
	if (avail == 1) {
		long long worst = 0;
		size_t nanbad = 0;
		int rc;

		memset(out2, 0, n * sizeof *out2);
		rc = mem_kern_ndvi_cuda(red, nir, out2, n, &p);
		is_int(rc, 0, "mem_kern_ndvi_cuda succeeds on 5 million pixels");
		for (i = 0; i < n; i++) {
			if (isnan(out[i]) || isnan(out2[i])) {
				nanbad += isnan(out[i]) != isnan(out2[i]);
				continue;
			}
			if (ulps(out[i], out2[i]) > worst)
				worst = ulps(out[i], out2[i]);
		}
		ok(rc == 0 && worst <= 1 && nanbad == 0,
		    "CUDA equals the CPU within 1 ulp (worst %lld ulp, %zu NaN mismatches)",
		    worst, nanbad);
	} else {
		is_int(mem_kern_ndvi_cuda(red, nir, out2, n, &p), -1,
		    "without a device mem_kern_ndvi_cuda returns -1 (the caller falls back)");
		skip(1, "no CUDA device");
	}
	free(red);
	free(nir);
	free(out);
	free(out2);
}

/*
 * The cloud mask against a plain loop written here: a pixel is masked when
 * its value is exactly one of the classes (not a fraction, not outside
 * 0-63), nodata or NaN is NaN, and a dilation of d masks every pixel within
 * d pixels (a square) of a masked one, reading the halo rows above and
 * below the strip.  Up to 8 classes and more than 8 take different paths.
 */
static float
ref_mask_at(const float *in, int w, int in_rows, int x, int y, unsigned long long cls,
    int has_nd, float nd, int d)
{
	float v = in[(size_t)y * w + x];

	if (v != v || (has_nd && v == nd))
		return NAN;
	for (int yy = y - d; yy <= y + d; yy++)
		for (int xx = x - d; xx <= x + d; xx++) {
			float u;

			if (yy < 0 || yy >= in_rows || xx < 0 || xx >= w)
				continue;
			u = in[(size_t)yy * w + xx];
			if (u == u && !(has_nd && u == nd) && u >= 0 && u < 64 && u == floorf(u) &&
			    (cls >> (int)u & 1ULL))
				return 1;
		}
	return 0;
}

static void
test_cloudmask_reference(void)
{
	/* a strip, an image narrower than its dilation window, a single pixel */
	const int geo[][2] = { { 53, 23 }, { 5, 3 }, { 1, 1 } };
	/* 0-3: the one-pass row and column windows; 5 and 9 (19 rows): the general ones */
	const int dil[] = { 0, 1, 2, 3, 5, 9 };
	const unsigned long long sets[] = { 1ULL << 3 | 1ULL << 8 | 1ULL << 9 | 1ULL << 10,
		0x5555555555555555ULL, 1ULL << 63 | 1ULL };

	for (size_t g = 0; g < sizeof geo / sizeof *geo; g++) {
		const int w = geo[g][0], in_rows = geo[g][1];
		float *in = malloc(sizeof *in * w * in_rows), *out = malloc(sizeof *out * w * in_rows);
		unsigned char *scr = malloc(2 * (size_t)w * in_rows);
		unsigned seed = 7 + (unsigned)g;

		for (int i = 0; i < w * in_rows; i++) {
			seed = seed * 1103515245u + 12345u;
			switch (seed >> 16 & 15) {
			case 0: in[i] = NAN; break;
			case 1: in[i] = 0; break;		/* the nodata value */
			case 2: in[i] = 8.5f; break;		/* a fraction: never masked */
			case 3: in[i] = -1; break;
			case 4: in[i] = 64; break;
			case 5: in[i] = 1e30f; break;
			default: in[i] = (float)(seed >> 20 & 63); break;
			}
		}
		for (size_t j = 0; j < sizeof dil / sizeof *dil; j++)
			for (int whole = 0; whole <= 1; whole++) {
				int d = dil[j], bad = 0;
				/* the middle rows of the strip (top = d rows of halo above), or every row */
				int top = whole ? 0 : d, rows = whole ? in_rows : in_rows - 2 * d;

				if (rows <= 0)
					continue;
				for (size_t k = 0; k < sizeof sets / sizeof *sets && !bad; k++)
					for (int has_nd = 0; has_nd <= 1 && !bad; has_nd++) {
						mem_kern_cloudmask_f32(in, out, w, in_rows, top, rows, sets[k],
						    has_nd, 0, d, scr);
						for (int y = 0; y < rows && !bad; y++)
							for (int x = 0; x < w && !bad; x++) {
								float a = out[(size_t)y * w + x];
								float b = ref_mask_at(in, w, in_rows, x, top + y,
								    sets[k], has_nd, 0, d);

								bad = !(a == b || (a != a && b != b));
								if (bad)
									diag("classes %#llx nodata %d x %d y %d: "
									    "%g, want %g", sets[k], has_nd, x, y,
									    a, b);
							}
					}
				ok(!bad, "cloudmask %dx%d, dilation %d, %s: as the plain loop (3 class "
				    "sets, with and without nodata)", w, in_rows, d,
				    whole ? "every row" : "the rows inside the halo");
			}
		free(in);
		free(out);
		free(scr);
	}
}

/*
 * The zonal gather against a plain loop: runs of 1 to 40 pixels of one id
 * (ids 0, negative and beyond the zones among them), NaN here and there
 * and in whole runs, added in pieces that cut runs anywhere: each zone
 * holds its values in pixel order, NaN left out.
 */
static void
test_zonal_gather(void)
{
	const size_t n = 20000, nz = 7;
	int *ids = malloc(n * sizeof *ids);
	float *v = malloc(n * sizeof *v);
	struct mem_kern_zone z[7], *ref = calloc(nz, sizeof *ref);
	unsigned seed = 99;
	int bad = 0;

	memset(z, 0, sizeof z);
	for (size_t i = 0; i < n;) {
		size_t len;
		int id, nanrun;

		seed = seed * 1103515245u + 12345u;
		len = 1 + (seed >> 16) % 40;
		id = (int)((seed >> 8) % 11) - 2;	/* -2 .. 8: 1..7 are zones */
		nanrun = (seed >> 4 & 15) == 0;
		for (size_t k = 0; k < len && i < n; k++, i++) {
			seed = seed * 1103515245u + 12345u;
			ids[i] = id;
			v[i] = nanrun || (seed >> 16) % 9 == 0 ? NAN : (float)(seed >> 12 & 1023);
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (ids[i] < 1 || ids[i] > (int)nz || v[i] != v[i])
			continue;
		struct mem_kern_zone *r = &ref[ids[i] - 1];

		if (r->n == r->cap) {
			r->cap = r->cap ? 2 * r->cap : 64;
			r->v = realloc(r->v, r->cap * sizeof *r->v);
		}
		r->v[r->n++] = v[i];
	}
	for (size_t off = 0, piece = 1; off < n; off += piece, piece = piece * 3 % 997 + 1) {
		size_t len = n - off < piece ? n - off : piece;

		if (mem_kern_zonal_add(z, nz, ids + off, v + off, len) < 0)
			bad = 1;
	}
	for (size_t k = 0; k < nz && !bad; k++)
		if (z[k].n != ref[k].n || (z[k].n && memcmp(z[k].v, ref[k].v, z[k].n * sizeof *z[k].v))) {
			diag("zone %zu: %zu values, want %zu", k + 1, z[k].n, ref[k].n);
			bad = 1;
		}
	ok(!bad, "zonal gather: every zone's values in pixel order, NaN and other ids left out");
	{
		/*
		 * three "threads" gather a third each; the third's zones merge
		 * into the second's (chains), then into the first's: the
		 * statistics over the chains equal those of the values gathered
		 * in one place (radix sort above 256 values, qsort below)
		 */
		struct mem_kern_zone t[3][7];
		double pct[] = { 0, 10, 50, 90, 100 };
		int same = 1;

		memset(t, 0, sizeof t);
		for (int k = 0; k < 3; k++)
			mem_kern_zonal_add(t[k], nz, ids + k * n / 3, v + k * n / 3,
			    (k + 1) * n / 3 - k * n / 3);
		for (size_t k = 0; k < nz; k++) {
			struct mem_kern_zonal_stats a, b;
			float *copy = malloc((ref[k].n + 1) * sizeof *copy);
			size_t cut = k == 0 ? 100 : ref[k].n;	/* a small zone: the qsort path */

			mem_kern_zonal_merge(&t[1][k], &t[2][k]);
			mem_kern_zonal_merge(&t[0][k], &t[1][k]);
			if (k == 0) {
				/* keep the first 100 pixel-order values only, in both */
				mem_kern_zone_free(&t[0][k]);
				t[0][k].v = malloc(cut * sizeof *t[0][k].v);
				memcpy(t[0][k].v, ref[k].v, 60 * sizeof *t[0][k].v);
				t[0][k].n = t[0][k].cap = 60;
				t[1][k].v = malloc(40 * sizeof *t[1][k].v);
				memcpy(t[1][k].v, ref[k].v + 60, 40 * sizeof *t[1][k].v);
				t[1][k].n = t[1][k].cap = 40;
				mem_kern_zonal_merge(&t[0][k], &t[1][k]);
			}
			memcpy(copy, ref[k].v, cut * sizeof *copy);
			mem_kern_zonal_stats(copy, cut, pct, 5, &a);
			if (mem_kern_zonal_stats_zone(&t[0][k], pct, 5, &b) < 0 || a.count != b.count ||
			    a.mean != b.mean || a.std != b.std || a.min != b.min || a.max != b.max ||
			    memcmp(a.pct, b.pct, 5 * sizeof *a.pct) || t[0][k].more != NULL) {
				diag("zone %zu: %zu values, %g/%g", k + 1, a.count, a.mean, b.mean);
				same = 0;
			}
			mem_kern_zone_free(&t[0][k]);
			free(copy);
		}
		ok(same, "zonal statistics over zones merged from three threads (chains) equal those "
		    "of the values in one buffer");
	}
	for (size_t k = 0; k < nz; k++) {
		mem_kern_zone_free(&z[k]);
		free(ref[k].v);
	}
	free(ref);
	free(ids);
	free(v);
}

int
main(void)
{
	test_known_values();
	test_nodata_and_nan();
	test_scale_offset();
	test_small_and_tails();
	test_large();
	test_cloudmask_reference();
	test_zonal_gather();
	return tap_exit();
}
