/*
 * warp.c - GDAL's warp kernel driven window by window (see warp.h).
 */
#include "config.h"

#include <cpl_conv.h>
#include <cpl_string.h>
#include <gdal_alg.h>
#include <gdalwarper.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raster.h"
#include "warp.h"

struct mem_warper {
	GDALDatasetH src;
	void *gen;		/* the GenImgProj transformer (owned by approx) */
	void *approx;		/* what the warp calls */
	GDALResampleAlg alg;
	int band;
	int has_src_nodata;
	double src_nodata, nodata;
	GDALDataType type;
	GDALDriverH mem;
	void *tbuf;		/* the window in the source's type */
	size_t tcap;
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

/*
 * The overview gdalwarp would read for pixels of res (its -ovr AUTO): the
 * one whose decimation is closest to, and not beyond, the target's; -1 for
 * the full resolution.  ratio is the target pixel over the source pixel,
 * both in the target CRS.
 */
static int
auto_overview(GDALRasterBandH b, int xsize, double ratio)
{
	int n = GDALGetOverviewCount(b), i = -1;

	if (!(ratio > 1.0) || n == 0)
		return -1;
	for (; i < n - 1; i++) {
		double r = i < 0 ? 1.0 : (double)xsize / GDALGetRasterBandXSize(GDALGetOverview(b, i));
		double next = (double)xsize / GDALGetRasterBandXSize(GDALGetOverview(b, i + 1));

		if (r < ratio && next > ratio)
			break;
		if (fabs(r - ratio) < 1e-1)
			break;
	}
	return i;
}

static void *
transformer(struct mem_warper *w, const char *dst_srs)
{
	char **to = CSLSetNameValue(NULL, "DST_SRS", dst_srs);
	void *t = GDALCreateGenImgProjTransformer2(w->src, NULL, to);

	CSLDestroy(to);
	return t;
}

struct mem_warper *
mem_warper_new(const char *href, int band, const char *dst_srs, const char *resample,
    int has_nodata, double nodata, double res, struct mem_err *err)
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
	w->mem = GDALGetDriverByName("MEM");
	w->src = mem_raster_open(href, err);
	if (w->src == NULL)
		goto bad;
	if (band < 1 || band > GDALGetRasterCount(w->src)) {
		mem_err_set(err, MEM_EITEM, "'%s' has no band %d", href, band);
		goto bad;
	}
	b = GDALGetRasterBand(w->src, band);
	w->type = GDALGetRasterDataType(b);
	if (has_nodata) {
		w->has_src_nodata = 1;
		w->src_nodata = nodata;
	} else {
		double v = GDALGetRasterNoDataValue(b, &has);

		w->has_src_nodata = has;
		w->src_nodata = has ? v : 0;
	}
	w->nodata = w->src_nodata;
	CPLErrorReset();
	w->gen = transformer(w, dst_srs);
	if (w->gen && res > 0) {
		double sgt[6], ext[4];
		int nx, ny, ov;

		/* downsampling: read the overview gdalwarp would, not every source pixel */
		if (GDALSuggestedWarpOutput2(w->src, GDALGenImgProjTransform, w->gen, sgt, &nx, &ny, ext,
		    0) == CE_None && (ov = auto_overview(b, GDALGetRasterXSize(w->src),
		    res / sgt[1])) >= 0) {
			char *path = mem_raster_gdal_path(href), lv[32];
			char *oo[] = { lv, NULL };
			GDALDatasetH ovds;

			snprintf(lv, sizeof lv, "OVERVIEW_LEVEL=%d", ov);
			ovds = GDALOpenEx(path, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL,
			    (const char *const *)oo, NULL);
			free(path);
			if (ovds) {
				GDALDestroyGenImgProjTransformer(w->gen);
				GDALClose(w->src);
				w->src = ovds;
				w->gen = transformer(w, dst_srs);
			}
		}
	}
	if (w->gen == NULL) {
		mem_err_set(err, MEM_EITEM, "cannot reproject '%s' to %s: %s", href, dst_srs,
		    CPLGetLastErrorMsg());
		goto bad;
	}
	/* gdalwarp's default: a linear approximation good to 1/8 pixel */
	w->approx = GDALCreateApproxTransformer(GDALGenImgProjTransform, w->gen, 0.125);
	GDALApproxTransformerOwnsSubtransformer(w->approx, TRUE);
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

int
mem_warper_run(struct mem_warper *w, const double gt[6], int xsize, int ysize, double *buf,
    struct mem_err *err)
{
	GDALWarpOptions *wo;
	GDALWarpOperationH op;
	GDALDatasetH dst;
	char opt[64], **bo = NULL;
	double dgt[6];
	CPLErr e;

	size_t n = (size_t)xsize * (size_t)ysize, tsz = (size_t)GDALGetDataTypeSizeBytes(w->type);

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
	memcpy(dgt, gt, sizeof dgt);
	dst = GDALCreate(w->mem, "", xsize, ysize, 0, w->type, NULL);
	if (dst == NULL)
		return mem_err_set(err, MEM_EITEM, "cannot make a %dx%d warp buffer", xsize, ysize);
	snprintf(opt, sizeof opt, "DATAPOINTER=%p", w->tbuf);
	bo = CSLAddString(bo, opt);
	GDALAddBand(dst, w->type, bo);
	CSLDestroy(bo);
	GDALSetGeoTransform(dst, dgt);
	GDALSetGenImgProjTransformerDstGeoTransform(w->gen, dgt);

	wo = GDALCreateWarpOptions();
	wo->hSrcDS = w->src;
	wo->hDstDS = dst;
	wo->nBandCount = 1;
	wo->panSrcBands = CPLMalloc(sizeof(int));
	wo->panDstBands = CPLMalloc(sizeof(int));
	wo->panSrcBands[0] = w->band;
	wo->panDstBands[0] = 1;
	wo->eResampleAlg = w->alg;
	wo->pfnTransformer = GDALApproxTransform;
	wo->pTransformerArg = w->approx;
	/* a window is small; this bounds the chunks GDAL reads at once */
	wo->dfWarpMemoryLimit = w->limit;
	wo->padfDstNoDataReal = CPLMalloc(sizeof(double));
	wo->padfDstNoDataReal[0] = w->nodata;
	if (w->has_src_nodata) {
		wo->padfSrcNoDataReal = CPLMalloc(sizeof(double));
		wo->padfSrcNoDataReal[0] = w->src_nodata;
	}
	wo->papszWarpOptions = CSLSetNameValue(wo->papszWarpOptions, "INIT_DEST", "NO_DATA");
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
		return mem_err_set(err, MEM_EITEM, "cannot warp '%s': %s", GDALGetDescription(w->src),
		    CPLGetLastErrorMsg());
	GDALCopyWords64(w->tbuf, w->type, (int)tsz, buf, GDT_Float64, 8, (GPtrDiff_t)n);
	return 0;
}

void
mem_warper_free(struct mem_warper *w)
{
	if (w == NULL)
		return;
	if (w->approx)
		GDALDestroyApproxTransformer(w->approx);
	if (w->src)
		GDALClose(w->src);
	free(w->tbuf);
	free(w);
}
