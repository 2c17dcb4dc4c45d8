/*
 * halo.h - the tiles beside a tile: which items of a run are an item's
 * neighbours for stages that read pixels around each pixel (a 3x3
 * convolution, a dilated mask), and the VRT that joins a band of the item
 * with the same band of its neighbours.
 */
#ifndef MEM_HALO_H
#define MEM_HALO_H

#include <jansson.h>
#include <ogr_srs_api.h>
#include <stddef.h>

struct mem_halo_index;

/*
 * Reads what decides neighbourhood from each item's JSON (proj:epsg,
 * proj:code or proj:wkt2, proj:transform, proj:shape, the acquisition
 * time, platform and collection).  The items must outlive the index.
 * Returns a new index; the caller frees it with mem_halo_index_free().
 */
struct mem_halo_index *mem_halo_index_new(json_t *const *items, size_t n);
void mem_halo_index_free(struct mem_halo_index *x);

/*
 * The neighbours of item i for a halo of halo pixels: other items of the
 * same CRS, pixel size and acquisition (datetime, or start_datetime and
 * end_datetime; platform and collection), whose pixel grid is aligned
 * with item i's (offsets a whole number of pixels, within 1e-6) and whose
 * extent touches or overlaps item i's grown by halo pixels on every side.
 * near holds at least n entries (the index's); returns how many were
 * written, by item id (then input order).  An item without a grid in its
 * JSON has none.
 */
size_t mem_halo_neighbours(const struct mem_halo_index *x, size_t i, int halo, size_t *near);

/* One source of a halo VRT: a band of a file placed on the VRT's grid. */
struct mem_halo_src {
	const char *href;	/* a name GDAL opens (mem_raster_gdal_path) */
	int band;
	int x, y, w, h;		/* its pixels in the VRT's pixel grid (may reach outside) */
	int has_nodata;		/* its nodata pixels let the sources below show through */
	double nodata;
};

/*
 * The XML of a float32 VRT of w x h pixels on grid gt (srs may be NULL),
 * its nodata (where no source has a pixel) nodata when has_nodata, else
 * NaN, the sources drawn in order (the last on top).  Returns a new
 * string; the caller frees it with free().
 */
char *mem_halo_vrt(int w, int h, const double gt[6], OGRSpatialReferenceH srs, int has_nodata,
    double nodata, const struct mem_halo_src *src, size_t n);

#endif
