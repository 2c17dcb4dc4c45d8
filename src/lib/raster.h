/*
 * raster.h - the GDAL side of libmemories.
 *
 * Opening hrefs (local paths, file://, http(s)://, s3://) through GDAL's
 * virtual file systems, reading projection facts into STAC fields, writing
 * GeoTIFFs and COGs atomically, and warping scenes into grid cells.
 */
#ifndef MEM_RASTER_H
#define MEM_RASTER_H

#include <gdal.h>
#include <jansson.h>
#include <ogr_srs_api.h>

#include "grid.h"
#include "memories.h"

/* Registers GDAL drivers and silences GDAL's own printing (errors come back in mem_err). */
void mem_raster_init(void);
/* Threads GDAL may use for warping and compression (0: all CPUs); call before work starts. */
void mem_raster_set_threads(int n);
/* Releases GDAL's global state at exit. */
void mem_raster_done(void);

/* Closes a dataset written to; returns -1 when flushing it failed. */
int mem_raster_close(GDALDatasetH ds);
/* Returns a new GDAL path for href: /vsicurl/ for http(s), /vsis3/ for s3://. */
char *mem_raster_gdal_path(const char *href);
/* Opens href read-only; err carries GDAL's message. */
GDALDatasetH mem_raster_open(const char *href, struct mem_err *err);

/*
 * Sets proj:epsg (or proj:wkt2), proj:transform and proj:shape of obj (an
 * asset or an item's properties) from ds.
 */
void mem_raster_proj_fields(GDALDatasetH ds, json_t *obj);
/* A new spatial reference for an EPSG code, x = easting or longitude; free with OSRDestroySpatialReference. */
OGRSpatialReferenceH mem_raster_srs_epsg(int epsg);
/* Transforms a box between CRSs, sampling its edges (they bow); returns 0 or -1. */
int mem_raster_box_transform(OGRSpatialReferenceH from, OGRSpatialReferenceH to, const double in[4],
    double out[4]);
/* The lon/lat bbox of ds (corners and edge points transformed). */
int mem_raster_lonlat_bbox(GDALDatasetH ds, double bbox[4], struct mem_err *err);
/* The EPSG code of ds's CRS, or 0. */
int mem_raster_epsg(GDALDatasetH ds);

/*
 * Writes src to path as a Cloud Optimized GeoTIFF (COG driver: internal
 * tiling, overviews), atomically.  opts are KEY=VALUE creation options
 * (NULL-terminated) added to COMPRESS=DEFLATE, OVERVIEWS=AUTO.
 */
int mem_raster_write_cog(GDALDatasetH src, const char *path, char **opts, struct mem_err *err);
/*
 * Checks COG creation options KEY=VALUE (NULL-terminated) against the COG
 * driver: an unknown key or a value it does not take fails with MEM_EUSAGE.
 */
int mem_raster_check_cog_options(char **opts, struct mem_err *err);
/* The same against any GDAL driver, by its short name ("GTiff"). */
int mem_raster_check_options(const char *driver, char **opts, struct mem_err *err);

/*
 * Returns a new in-memory VRT mosaic of the rasters at hrefs (NULL-terminated;
 * one grid, any number of tiles); a single band without a description gets
 * desc.  The caller closes it with GDALClose.
 */
GDALDatasetH mem_raster_mosaic_vrt(char **hrefs, const char *desc, struct mem_err *err);

/* Creates the GeoTIFF creation options list for intermediate files; free with CSLDestroy. */
char **mem_raster_tiff_options(const char *compress);

/*
 * Warps the given band (0: every band) of every source (GDAL paths) into one grid cell:
 * bounds b in the grid CRS (EPSG epsg), size x size pixels.  Writes a tiled
 * GeoTIFF to path atomically, unless no pixel is valid, in which case
 * nothing is written and *empty is set.  resample is a gdalwarp -r name.
 * nodata (when has_nodata) is used for source and destination.
 */
int mem_raster_warp_cell(char **srcs, int band, int epsg, const double b[4], int xsize,
    int ysize, const char *resample, int has_nodata, double nodata, const char *path,
    int *empty, struct mem_err *err);

/*
 * The pixel window (xoff, yoff, xsize, ysize) of ds that covers the lon/lat
 * box ll, in whole pixels and cut to the raster.  Returns 0, 1 when the box
 * misses the raster, -1 on error.
 */
int mem_raster_window(GDALDatasetH ds, const double ll[4], int win[4], struct mem_err *err);

/* Writes the window win of src to path as a COG, atomically (what gdal_translate -srcwin does). */
int mem_raster_write_window(GDALDatasetH src, const int win[4], const char *path,
    struct mem_err *err);

#endif
