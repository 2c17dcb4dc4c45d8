/*
 * warp.c - GDAL's warp kernel driven window by window (see warp.h).
 */
#include "config.h"

#include <cpl_conv.h>
#include <cpl_string.h>
#include <gdal_alg.h>
#include <gdalwarper.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raster.h"
#include "warp.h"

#define MAX_LEVELS 32

/* The source at one resolution: the full one, or an overview. */
struct level {
	GDALDatasetH ds;
	void *gen;		/* the GenImgProj transformer (owned by approx) */
	void *approx;		/* what the warp calls */
};

struct mem_warper {
	char *href;		/* as GDAL opens it */
	char *dst_srs;
	struct level lv[MAX_LEVELS + 1];	/* [0] full resolution, [i + 1] overview i */
	int nov;
	GDALResampleAlg alg;
	int band;
	int has_src_nodata;
	double src_nodata, nodata;
	GDALDataType type;
	GDALDriverH mem;
	void *tbuf;		/* the window in the source's type */
	size_t tcap;
	void *sbuf;		/* the source window a clean-window check reads */
	size_t scap;
	double limit;		/* bytes GDAL may hold for one chunk of a warp */
};

static const struct {
	const char *name;
	GDALResampleAlg alg;
} algs[] = {
	{ "near", GRA_NearestNeighbour }, { "nearest", GRA_NearestNeighbour },
	{ "bilinear", GRA_Bilinear }, { "cubic", GRA_Cubic },
	{ "cubicspline", GRA_CubicSpline }, { "lanczos", GRA_Lanczos },
	{ "average", GRA_Average }, { "rms", GRA_RMS }, { "mode", GRA_Mode },
	{ "max", GRA_Max }, { "min", GRA_Min }, { "med", GRA_Med }, { "q1", GRA_Q1 },
	{ "q3", GRA_Q3 }, { "sum", GRA_Sum },
};

int
mem_warp_known_resampling(const char *name)
{
	for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++)
		if (strcmp(algs[i].name, name) == 0)
			return 1;
	return 0;
}

/* Opens level i (0: the full resolution) with its transformers; 0 or -1. */
static int
open_level(struct mem_warper *w, int i, struct mem_err *err)
{
	struct level *l = &w->lv[i];
	char **to;

	if (l->approx)
		return 0;
	if (i == 0)
		l->ds = mem_raster_open(w->href, err);
	else {
		char lv[32], *path = mem_raster_gdal_path(w->href);
		char *oo[] = { lv, NULL };

		snprintf(lv, sizeof lv, "OVERVIEW_LEVEL=%d", i - 1);
		CPLErrorReset();
		l->ds = GDALOpenEx(path, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL,
		    (const char *const *)oo, NULL);
		free(path);
		if (l->ds == NULL)
			mem_err_set(err, MEM_EITEM, "cannot open overview %d of '%s': %s", i - 1,
			    w->href, CPLGetLastErrorMsg());
	}
	if (l->ds == NULL)
		return -1;
	to = CSLSetNameValue(NULL, "DST_SRS", w->dst_srs);
	CPLErrorReset();
	l->gen = GDALCreateGenImgProjTransformer2(l->ds, NULL, to);
	CSLDestroy(to);
	if (l->gen == NULL)
		return mem_err_set(err, MEM_EITEM, "cannot reproject '%s' to %s: %s", w->href,
		    w->dst_srs, CPLGetLastErrorMsg());
	/* gdalwarp's default: a linear approximation good to 1/8 pixel */
	l->approx = GDALCreateApproxTransformer(GDALGenImgProjTransform, l->gen, 0.125);
	GDALApproxTransformerOwnsSubtransformer(l->approx, TRUE);
	return 0;
}

struct mem_warper *
mem_warper_new(const char *href, int band, const char *dst_srs, const char *resample,
    int has_nodata, double nodata, struct mem_err *err)
{
	struct mem_warper *w = mem_xcalloc(1, sizeof *w);
	GDALRasterBandH b;
	int has = 0;

	w->alg = GRA_Bilinear;
	w->limit = 32.0 * 1024 * 1024;
	for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++)
		if (strcmp(algs[i].name, resample) == 0)
			w->alg = algs[i].alg;
	w->band = band;
	w->href = mem_xstrdup(href);
	w->dst_srs = mem_xstrdup(dst_srs);
	w->mem = GDALGetDriverByName("MEM");
	if (open_level(w, 0, err) < 0)
		goto bad;
	if (band < 1 || band > GDALGetRasterCount(w->lv[0].ds)) {
		mem_err_set(err, MEM_EITEM, "'%s' has no band %d", href, band);
		goto bad;
	}
	b = GDALGetRasterBand(w->lv[0].ds, band);
	w->type = GDALGetRasterDataType(b);
	w->nov = GDALGetOverviewCount(GDALGetRasterBand(w->lv[0].ds, 1));
	if (w->nov > MAX_LEVELS)
		w->nov = MAX_LEVELS;
	if (has_nodata) {
		w->has_src_nodata = 1;
		w->src_nodata = nodata;
	} else {
		double v = GDALGetRasterNoDataValue(b, &has);

		w->has_src_nodata = has;
		w->src_nodata = has ? v : 0;
	}
	w->nodata = w->src_nodata;
	return w;
bad:
	mem_warper_free(w);
	return NULL;
}

void
mem_warper_set_limit(struct mem_warper *w, double bytes)
{
	/* GDAL splits a window in chunks to keep under it; below 1 MB it only thrashes */
	w->limit = bytes < 1024 * 1024 ? 1024 * 1024 : bytes;
}

GDALDataType
mem_warper_type(const struct mem_warper *w)
{
	return w->type;
}

double
mem_warper_nodata(const struct mem_warper *w)
{
	return w->nodata;
}

/*
 * The level gdalwarp would read for this window (its -ovr AUTO with a
 * target extent): the source columns a 10 x 10 grid of the window's pixels
 * spans, over its width, against each overview's decimation: the level
 * whose decimation brackets that ratio from below, or lies within 0.1 of it.
 */
static int
choose_level(struct mem_warper *w, int xsize, int ysize)
{
	double x[100], y[100], z[100], lo = INFINITY, hi = -INFINITY, ratio;
	int ok[100], n = 0, i;
	GDALRasterBandH b = GDALGetRasterBand(w->lv[0].ds, 1);
	int full = GDALGetRasterXSize(w->lv[0].ds);

	if (w->nov == 0)
		return 0;
	for (int ix = 0; ix < 10; ix++)
		for (int iy = 0; iy < 10; iy++) {
			x[n] = xsize * (double)ix / 9;
			y[n] = ysize * (double)iy / 9;
			z[n] = 0;
			n++;
		}
	if (!GDALGenImgProjTransform(w->lv[0].gen, TRUE, n, x, y, z, ok))
		return 0;
	for (i = 0; i < n; i++)
		if (ok[i]) {
			lo = fmin(lo, x[i]);
			hi = fmax(hi, x[i]);
		}
	if (!(hi > lo))
		return 0;
	ratio = (hi - lo) / xsize;
	if (!(ratio > 1.0))
		return 0;
	for (i = -1; i < w->nov - 1; i++) {
		double r = i < 0 ? 1.0 : (double)full / GDALGetRasterBandXSize(GDALGetOverview(b, i));
		double next = (double)full / GDALGetRasterBandXSize(GDALGetOverview(b, i + 1));

		if (r < ratio && next > ratio)
			break;
		if (fabs(r - ratio) < 1e-1)
			break;
	}
	return i + 1;
}

/* The kernel radius in source pixels of a resampling at scale s (< 1: downsampling). */
static double
kernel_radius(GDALResampleAlg alg, double s)
{
	double r;

	switch (alg) {
	case GRA_NearestNeighbour: r = 1; break;
	case GRA_Bilinear: r = 1; break;
	case GRA_Cubic: case GRA_CubicSpline: r = 2; break;
	case GRA_Lanczos: r = 3; break;
	default: return -1;	/* average, mode and the rest: no fast path */
	}
	return s < 1 ? ceil(r / s) : r;
}

/* 1 when any of the n values of type t at p equals v (or is NaN when v is). */
static int
has_value(const void *p, GDALDataType t, size_t n, double v)
{
	size_t i;

#define SCAN(T) do { const T *q = p; T tv = (T)v; \
		if ((double)tv != v) return 0; \
		for (i = 0; i < n; i++) if (q[i] == tv) return 1; \
		return 0; } while (0)
	switch (t) {
	case GDT_Byte: SCAN(unsigned char);
	case GDT_UInt16: SCAN(unsigned short);
	case GDT_Int16: SCAN(short);
	case GDT_UInt32: SCAN(unsigned int);
	case GDT_Int32: SCAN(int);
	case GDT_Float32:
		if (isnan(v)) {
			const float *q = p;

			for (i = 0; i < n; i++)
				if (isnan(q[i]))
					return 1;
			return 0;
		}
		SCAN(float);
	case GDT_Float64:
		if (isnan(v)) {
			const double *q = p;

			for (i = 0; i < n; i++)
				if (isnan(q[i]))
					return 1;
			return 0;
		}
		SCAN(double);
	default:
		return 1;	/* a type not scanned: take the general path */
	}
#undef SCAN
}

/*
 * Whether the window can be warped without nodata masks: its footprint in
 * level l, widened by the kernel's radius and a margin, lies inside the
 * source and holds no nodata pixel.  Then every output pixel is computed,
 * from valid pixels only, and GDAL's unmasked kernels (2-3x faster for
 * bilinear and cubic) give the very values its masked one would.
 */
static int
window_is_clean(struct mem_warper *w, struct level *l, int xsize, int ysize)
{
	enum { N = 17 };
	double x[4 * N], y[4 * N], z[4 * N], x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY,
	    y1 = -INFINITY, s, r;
	int ok[4 * N], n = 0, sx = GDALGetRasterXSize(l->ds), sy = GDALGetRasterYSize(l->ds);
	int wx0, wy0, wx1, wy1;
	size_t cnt, tsz = (size_t)GDALGetDataTypeSizeBytes(w->type);

	for (int i = 0; i < N; i++) {
		double f = (double)i / (N - 1);

		x[n] = f * xsize; y[n++] = 0;
		x[n] = f * xsize; y[n++] = ysize;
		x[n] = 0; y[n++] = f * ysize;
		x[n] = xsize; y[n++] = f * ysize;
	}
	memset(z, 0, sizeof z);
	if (!GDALGenImgProjTransform(l->gen, TRUE, n, x, y, z, ok))
		return 0;
	for (int i = 0; i < n; i++) {
		if (!ok[i] || !isfinite(x[i]) || !isfinite(y[i]))
			return 0;
		x0 = fmin(x0, x[i]); x1 = fmax(x1, x[i]);
		y0 = fmin(y0, y[i]); y1 = fmax(y1, y[i]);
	}
	if (!(x1 > x0 && y1 > y0))
		return 0;
	s = fmin(xsize / (x1 - x0), ysize / (y1 - y0));
	r = kernel_radius(w->alg, s);
	if (r < 0)
		return 0;
	r += 3;	/* a margin for the approximation and the bbox of a curved edge */
	wx0 = (int)floor(x0 - r); wx1 = (int)ceil(x1 + r);
	wy0 = (int)floor(y0 - r); wy1 = (int)ceil(y1 + r);
	if (wx0 < 0 || wy0 < 0 || wx1 > sx || wy1 > sy)
		return 0;	/* the edge of the source: masked, as GDAL does */
	if (!w->has_src_nodata)
		return 1;
	cnt = (size_t)(wx1 - wx0) * (size_t)(wy1 - wy0);
	if (cnt * tsz > w->scap) {
		free(w->sbuf);
		w->scap = cnt * tsz;
		w->sbuf = mem_xcalloc(1, w->scap);
	}
	if (GDALRasterIO(GDALGetRasterBand(l->ds, w->band), GF_Read, wx0, wy0, wx1 - wx0, wy1 - wy0,
	    w->sbuf, wx1 - wx0, wy1 - wy0, w->type, 0, 0) != CE_None)
		return 0;
	return !has_value(w->sbuf, w->type, cnt, w->src_nodata);
}

/*
 * A computed value equal to the nodata value is moved off it, as GDAL's
 * masked kernels do (nodata + 1 at the type's minimum, else nodata - 1), so
 * that it does not read as a hole.
 */
static void
shift_off_nodata(void *p, GDALDataType t, size_t n, double nd)
{
	size_t i;

#define SHIFT(T, MIN) do { T *q = p; T tv = (T)nd; \
		if ((double)tv != nd) return; \
		for (i = 0; i < n; i++) if (q[i] == tv) q[i] = tv == (MIN) ? tv + 1 : tv - 1; \
		} while (0)
	switch (t) {
	case GDT_Byte: SHIFT(unsigned char, 0); break;
	case GDT_UInt16: SHIFT(unsigned short, 0); break;
	case GDT_Int16: SHIFT(short, SHRT_MIN); break;
	case GDT_UInt32: SHIFT(unsigned int, 0); break;
	case GDT_Int32: SHIFT(int, INT_MIN); break;
	default: break;
	}
#undef SHIFT
}

int
mem_warper_run(struct mem_warper *w, const double gt[6], int xsize, int ysize, double *buf,
    struct mem_err *err)
{
	GDALWarpOptions *wo;
	GDALWarpOperationH op;
	GDALDatasetH dst;
	struct level *l;
	char opt[64], **bo = NULL;
	double dgt[6];
	CPLErr e;
	size_t n = (size_t)xsize * (size_t)ysize, tsz = (size_t)GDALGetDataTypeSizeBytes(w->type);
	int li, clean;

	memcpy(dgt, gt, sizeof dgt);
	GDALSetGenImgProjTransformerDstGeoTransform(w->lv[0].gen, dgt);
	li = choose_level(w, xsize, ysize);
	if (open_level(w, li, err) < 0)
		return -1;
	l = &w->lv[li];
	GDALSetGenImgProjTransformerDstGeoTransform(l->gen, dgt);
	clean = window_is_clean(w, l, xsize, ysize);
	/*
	 * Warped in the source's own type, as gdalwarp does (its kernels for
	 * 8 and 16 bit data are several times faster than the general one, and
	 * the rounding is then gdalwarp's), and widened after.
	 */
	if (n * tsz > w->tcap) {
		free(w->tbuf);
		w->tcap = n * tsz;
		w->tbuf = mem_xcalloc(1, w->tcap);
	}
	dst = GDALCreate(w->mem, "", xsize, ysize, 0, w->type, NULL);
	if (dst == NULL)
		return mem_err_set(err, MEM_EITEM, "cannot make a %dx%d warp buffer", xsize, ysize);
	snprintf(opt, sizeof opt, "DATAPOINTER=%p", w->tbuf);
	bo = CSLAddString(bo, opt);
	GDALAddBand(dst, w->type, bo);
	CSLDestroy(bo);
	GDALSetGeoTransform(dst, dgt);

	wo = GDALCreateWarpOptions();
	wo->hSrcDS = l->ds;
	wo->hDstDS = dst;
	wo->nBandCount = 1;
	wo->panSrcBands = CPLMalloc(sizeof(int));
	wo->panDstBands = CPLMalloc(sizeof(int));
	wo->panSrcBands[0] = w->band;
	wo->panDstBands[0] = 1;
	wo->eResampleAlg = w->alg;
	wo->pfnTransformer = GDALApproxTransform;
	wo->pTransformerArg = l->approx;
	/* a window is small; this bounds the chunks GDAL reads at once */
	wo->dfWarpMemoryLimit = w->limit;
	if (clean) {
		/* no masks at all (a destination nodata value makes one) */
		snprintf(opt, sizeof opt, "%.17g", w->nodata);
		wo->papszWarpOptions = CSLSetNameValue(wo->papszWarpOptions, "INIT_DEST", opt);
	} else {
		wo->padfDstNoDataReal = CPLMalloc(sizeof(double));
		wo->padfDstNoDataReal[0] = w->nodata;
		if (w->has_src_nodata) {
			wo->padfSrcNoDataReal = CPLMalloc(sizeof(double));
			wo->padfSrcNoDataReal[0] = w->src_nodata;
		}
		wo->papszWarpOptions = CSLSetNameValue(wo->papszWarpOptions, "INIT_DEST", "NO_DATA");
	}
	wo->papszWarpOptions = CSLSetNameValue(wo->papszWarpOptions, "NUM_THREADS", "1");
	CPLErrorReset();
	op = GDALCreateWarpOperation(wo);
	e = op ? GDALChunkAndWarpImage(op, 0, 0, xsize, ysize) : CE_Failure;
	if (op)
		GDALDestroyWarpOperation(op);
	wo->pTransformerArg = NULL;	/* ours: kept for the next window */
	GDALDestroyWarpOptions(wo);
	GDALClose(dst);
	if (e != CE_None)
		return mem_err_set(err, MEM_EITEM, "cannot warp '%s': %s", w->href, CPLGetLastErrorMsg());
	if (clean)
		shift_off_nodata(w->tbuf, w->type, n, w->nodata);
	GDALCopyWords64(w->tbuf, w->type, (int)tsz, buf, GDT_Float64, 8, (GPtrDiff_t)n);
	return 0;
}

void
mem_warper_free(struct mem_warper *w)
{
	if (w == NULL)
		return;
	for (int i = 0; i <= MAX_LEVELS; i++) {
		if (w->lv[i].approx)
			GDALDestroyApproxTransformer(w->lv[i].approx);
		else if (w->lv[i].gen)
			GDALDestroyGenImgProjTransformer(w->lv[i].gen);
		if (w->lv[i].ds)
			GDALClose(w->lv[i].ds);
	}
	free(w->href);
	free(w->dst_srs);
	free(w->tbuf);
	free(w->sbuf);
	free(w);
}
