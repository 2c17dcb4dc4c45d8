/*
 * zonal.h - zones for zonal statistics, and the GeoPackages of results.
 *
 * Zones are the polygons of a vector file, reprojected once per item to
 * the raster's CRS and rasterized strip by strip into a buffer of zone ids
 * (1..n, 0 outside): a pixel belongs to a zone when its centre is inside
 * the polygon (GDAL's rasterization without ALL_TOUCHED); where polygons
 * overlap, the later feature takes the pixel.
 */
#ifndef MEM_ZONAL_H
#define MEM_ZONAL_H

#include <gdal.h>
#include <jansson.h>
#include <ogr_api.h>
#include <ogr_srs_api.h>

#include "kern.h"
#include "memories.h"
#include "stage.h"

struct mem_zones {
	OGRFeatureH *feat; /* clones of the source features, geometry in the raster's CRS */
	size_t n;
	OGRSpatialReferenceH srs; /* the raster's CRS (a clone), or NULL */
};

/*
 * Reads layer (NULL: the first) of path, keeps its polygons and reprojects
 * them to srs (NULL: kept as they are).  Release with mem_zones_release().
 */
int mem_zones_load(struct mem_zones *z, const char *path, const char *layer,
    OGRSpatialReferenceH srs, struct mem_err *err);
void mem_zones_release(struct mem_zones *z);

/* A thread's own copy of the geometries; free with mem_zones_geoms_free(). */
OGRGeometryH *mem_zones_geoms(const struct mem_zones *z);
void mem_zones_geoms_free(OGRGeometryH *g, size_t n);

/*
 * Fills ids (w x rows) with the zone of each pixel of rows [y0, y0 + rows)
 * of the grid gt: 1 + the index of the zone, or 0.
 */
int mem_zones_rasterize(OGRGeometryH *g, size_t n, const double gt[6], int w, int y0, int rows,
    int *ids, struct mem_err *err);

/*
 * Reduces the values of each zone (vals[n], emptied) and writes the
 * GeoPackage path atomically: one table named after what was measured
 * (s->of) with the polygons, their source fields and fid, and a column per
 * statistic.  *summary gets a new object for the item's mem:zonal.
 */
int mem_zones_write(const struct mem_zones *z, struct mem_kern_zone *vals,
    const struct mem_stage *s, const char *path, json_t **summary, struct mem_err *err);

/*
 * Polygonizes the pixels equal to 1 of the mask band (4-connected,
 * as gdal_polygonize) into table of the GeoPackage path, atomically, with
 * each polygon's area in the CRS's units squared.  *summary gets the
 * number of polygons and the total area.
 */
int mem_polygons_write(const char *mask, const char *path, const char *table, json_t **summary,
    struct mem_err *err);

#endif
