/*
 * ndvi-loop.c - the memory-bound limit for the NDVI benchmark.
 *
 * Usage: ndvi-loop RED.tif NIR.tif
 *
 * Decodes two single-band rasters of the same size fully into float32
 * arrays with GDALRasterIO (timed as "decode"; row strips in parallel, one
 * dataset handle per thread, since a GDAL handle is not thread-safe), then
 * runs a plain OpenMP loop NDVI = (n - r) / (n + r) over the arrays, NaN
 * where either input is 0 (nodata) or n + r == 0.  All arrays are faulted
 * in before any timing.  The loop runs 5 times after one untimed warm-up; the
 * best pass is reported, with the bandwidth it implies: two float32 loads
 * and one float32 store per pixel, 12 bytes.
 *
 * Self-contained on purpose: it uses only GDAL's C API, OpenMP and the
 * standard library, not the project's headers.
 *
 * Prints, one per line:
 *   size WxH, threads T, decode_s S, loop_s S, loop_GBps G,
 *   valid_pixels N, ndvi_mean M (a checksum, so the loop cannot be elided)
 */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include <cpl_conv.h>
#include <gdal.h>

#define PASSES 5

static int
raster_size(const char *path, int *w, int *h)
{
	GDALDatasetH ds = GDALOpenEx(path, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL, NULL);

	if (ds == NULL) {
		fprintf(stderr, "ndvi-loop: cannot open %s: %s\n", path, CPLGetLastErrorMsg());
		return -1;
	}
	if (GDALGetRasterCount(ds) < 1) {
		fprintf(stderr, "ndvi-loop: %s has no band\n", path);
		GDALClose(ds);
		return -1;
	}
	*w = GDALGetRasterXSize(ds);
	*h = GDALGetRasterYSize(ds);
	GDALClose(ds);
	return 0;
}

/*
 * Reads band 1 of two files into a and b, in strips of `strip` rows spread
 * over the OpenMP threads; each thread opens its own handles.  Returns the
 * number of failed strips (0 on success).
 */
static int
decode_pair(const char *path_a, const char *path_b, float *a, float *b, int w, int h, int strip)
{
	int failed = 0;
	int nstrips = (h + strip - 1) / strip;

#pragma omp parallel reduction(+ : failed)
	{
		GDALDatasetH da = GDALOpenEx(path_a, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL, NULL);
		GDALDatasetH db = GDALOpenEx(path_b, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL, NULL);

		if (da == NULL || db == NULL) {
#pragma omp critical
			fprintf(stderr, "ndvi-loop: cannot open inputs in a thread: %s\n",
			    CPLGetLastErrorMsg());
			failed++;
		}
#pragma omp for schedule(dynamic, 1)
		for (int s = 0; s < nstrips; s++) {
			int y0 = s * strip, rows = h - y0 < strip ? h - y0 : strip;
			size_t off = (size_t)y0 * (size_t)w;

			if (da == NULL || db == NULL)
				continue;
			if (GDALRasterIO(GDALGetRasterBand(da, 1), GF_Read, 0, y0, w, rows, a + off, w,
			    rows, GDT_Float32, 0, 0) != CE_None ||
			    GDALRasterIO(GDALGetRasterBand(db, 1), GF_Read, 0, y0, w, rows, b + off, w,
			    rows, GDT_Float32, 0, 0) != CE_None) {
#pragma omp critical
				fprintf(stderr, "ndvi-loop: read of rows %d..%d failed: %s\n", y0,
				    y0 + rows - 1, CPLGetLastErrorMsg());
				failed++;
			}
		}
		if (da != NULL)
			GDALClose(da);
		if (db != NULL)
			GDALClose(db);
	}
	return failed;
}

/*
 * The loop under test.  Branch-free: the quotient is always computed, with
 * a harmless denominator where the pixel is invalid, and NaN is added in
 * arithmetically rather than selected, because gcc 12 does not vectorise a
 * `bad ? NAN : q` select under the default -ftrapping-math (this file is
 * built with the project's plain CFLAGS; check with -fopt-info-vec).
 * Double precision, as the project's kernel does; the loop is memory-bound
 * either way.
 */
static void
ndvi_loop(const float *restrict red, const float *restrict nir, float *restrict out, size_t n)
{
#pragma omp parallel for simd schedule(static)
	for (size_t i = 0; i < n; i++) {
		double r = red[i], v = nir[i], den = v + r;
		double ok = (red[i] != 0.0f) & (nir[i] != 0.0f) & (den != 0.0);
		double q = (v - r) / (den + (1.0 - ok));

		out[i] = (float)(q + (ok == 0.0 ? NAN : 0.0));
	}
}

static void *
xmalloc_floats(size_t n)
{
	/* 64-byte alignment for full-width vector loads; C11 wants a multiple */
	size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
	void *p = aligned_alloc(64, bytes);

	if (p == NULL) {
		fprintf(stderr, "ndvi-loop: out of memory (%zu floats)\n", n);
		exit(1);
	}
	return p;
}

int
main(int argc, char **argv)
{
	int w, h, w2, h2;
	size_t n;
	float *red, *nir, *out;
	double t0, t, best = INFINITY, decode_s, sum = 0.0;
	long long valid = 0;

	if (argc != 3) {
		fprintf(stderr, "usage: ndvi-loop RED.tif NIR.tif\n");
		return 2;
	}
	/*
	 * Each block is read exactly once: a small block cache avoids filling
	 * and evicting GDAL's default one (5 % of RAM) on the way.  An explicit
	 * GDAL_CACHEMAX in the environment wins.
	 */
	if (CPLGetConfigOption("GDAL_CACHEMAX", NULL) == NULL)
		CPLSetConfigOption("GDAL_CACHEMAX", "64");
	GDALAllRegister();
	if (raster_size(argv[1], &w, &h) != 0 || raster_size(argv[2], &w2, &h2) != 0)
		return 1;
	if (w != w2 || h != h2) {
		fprintf(stderr, "ndvi-loop: sizes differ: %dx%d and %dx%d\n", w, h, w2, h2);
		return 1;
	}
	n = (size_t)w * (size_t)h;
	red = xmalloc_floats(n);
	nir = xmalloc_floats(n);
	out = xmalloc_floats(n);

	/*
	 * Fault the pages in first (in parallel, as the loop touches them), so
	 * that "decode" is the codec and GDAL's copies, not the kernel zeroing
	 * a gigabyte of fresh pages.
	 */
#pragma omp parallel for schedule(static)
	for (size_t i = 0; i < n; i++) {
		red[i] = 0.0f;
		nir[i] = 0.0f;
		out[i] = 0.0f;
	}

	/* decode: 512-row strips match the COG block height */
	t0 = omp_get_wtime();
	if (decode_pair(argv[1], argv[2], red, nir, w, h, 512) != 0)
		return 1;
	decode_s = omp_get_wtime() - t0;

	ndvi_loop(red, nir, out, n);	/* warm-up */
	for (int pass = 0; pass < PASSES; pass++) {
		t0 = omp_get_wtime();
		ndvi_loop(red, nir, out, n);
		t = omp_get_wtime() - t0;
		if (t < best)
			best = t;
	}

#pragma omp parallel for reduction(+ : sum, valid) schedule(static)
	for (size_t i = 0; i < n; i++) {
		if (!isnan(out[i])) {
			sum += out[i];
			valid++;
		}
	}

	printf("size %dx%d\n", w, h);
	printf("threads %d\n", omp_get_max_threads());
	printf("decode_s %.3f\n", decode_s);
	printf("loop_s %.4f\n", best);
	printf("loop_GBps %.1f\n", 3.0 * 4.0 * (double)n / best / 1e9);
	printf("valid_pixels %lld\n", valid);
	printf("ndvi_mean %.6f\n", valid ? sum / (double)valid : NAN);

	free(red);
	free(nir);
	free(out);
	return 0;
}
