/*
 * warp.h - one source band warped into many windows of one target CRS.
 *
 * gdalwarp builds a reprojection (a PROJ pipeline, found in proj.db) and
 * opens its source for every call; a tiler that calls it once per cell
 * spends most of its time there and decodes each source block again for
 * every cell it meets.  A warper is made once per thread and source: it
 * keeps its dataset handle (so GDAL's block cache serves neighbouring
 * cells) and one transformer whose destination geotransform is moved to
 * each window.  The arithmetic is GDAL's own warp kernel, with the same
 * approximation (0.125 px) gdalwarp uses, so pixels equal gdalwarp's.
 */
#ifndef MEM_WARP_H
#define MEM_WARP_H

#include <gdal.h>

#include "memories.h"

struct mem_warper;

/*
 * Opens band `band` (1-based) of href for warping into the CRS dst_srs (any
 * string OSRSetFromUserInput takes, e.g. "EPSG:3857") with resampling alg
 * (a gdalwarp -r name).  Nodata: the given value when has_nodata, else the
 * band's own, else none (then 0 marks pixels no source covers).
 */
struct mem_warper *mem_warper_new(const char *href, int band, const char *dst_srs,
    const char *resample, int has_nodata, double nodata, struct mem_err *err);
/* Bounds what GDAL holds at once for one warp (32 MB by default). */
void mem_warper_set_limit(struct mem_warper *w, double bytes);
/* The source band's data type. */
GDALDataType mem_warper_type(const struct mem_warper *w);
/* The nodata value of the warped output (see mem_warper_new). */
double mem_warper_nodata(const struct mem_warper *w);
/*
 * Warps into buf (xsize x ysize doubles, row-major) the window whose
 * geotransform is gt (north-up).  Pixels no valid source pixel reaches are
 * set to the nodata value.  When the window's pixels are coarser than the
 * source's, the overview gdalwarp would read for this target extent (its
 * -ovr AUTO) is read instead: pixels equal gdalwarp's, and a coarse level
 * does not decode every source pixel.
 */
int mem_warper_run(struct mem_warper *w, const double gt[6], int xsize, int ysize, double *buf,
    struct mem_err *err);
void mem_warper_free(struct mem_warper *w);

/* 1 when name is a resampling mem_warper_new knows. */
int mem_warp_known_resampling(const char *name);

#endif
