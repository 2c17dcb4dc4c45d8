/*
 * grid.h - tile grids: WebMercatorQuad, native UTM, and OGC TileMatrixSets.
 *
 * webmercator:Z[:SIZE]  OGC WebMercatorQuad (EPSG:3857), zoom Z, tiles of
 *                       SIZE pixels (256 by default), column x from the west
 *                       and row y from the north, as z/x/y tile servers use.
 *                       Z may be a range, Z0-Z1: a pyramid, the finest level
 *                       warped, each coarser one reduced from the one below.
 * utm[:RES[:SIZE]]      the scene's own UTM zone (or the zone of its centre),
 *                       pixels of RES metres (the scene's finest by default),
 *                       tiles of SIZE pixels (1024 by default) aligned on
 *                       multiples of RES*SIZE from the zone's origin; column
 *                       x eastwards, row y northwards (floor(N / span)).
 * tms:FILE:LEVEL[-LEVEL] an OGC TileMatrixSet (2.0 JSON, or the 1.0 JSON GDAL
 *                       ships), one tile matrix by its id, or a range of them.
 *
 * Every grid is described the same way once parsed: an origin corner, a
 * pixel size, a tile size and a direction for rows, so that one set of
 * functions serves all three.  No GDAL here; the CRS axis order of a
 * TileMatrixSet is settled by the caller (mem_grid_set_axes).
 */
#ifndef MEM_GRID_H
#define MEM_GRID_H

#include <stddef.h>

#include "memories.h"

#define MEM_ZOOM_MAX 30
#define MEM_WEBMERC_HALF 20037508.342789244

enum mem_grid_kind { MEM_GRID_WEBMERCATOR, MEM_GRID_UTM, MEM_GRID_TMS };

struct mem_tms;

struct mem_grid {
	enum mem_grid_kind kind;
	int zoom;		/* webmercator zoom, or index of the TMS tile matrix */
	int zmin, zmax;		/* levels to make (zmax the finest); both = zoom for one */
	int epsg;		/* the grid CRS; 0 = from the scene (utm) */
	double res;		/* CRS units per pixel; 0 = from the scene (utm) */
	int tile_size;		/* pixels per tile, across */
	int tile_h;		/* pixels per tile, down */
	double ox, oy;		/* corner of origin (x = easting / longitude) */
	int y_down;		/* rows counted down from a top-left origin, else up */
	long mw, mh;		/* matrix width and height in tiles; 0 = unbounded */
	const struct mem_tms *tms;	/* the TileMatrixSet, or NULL */
};

/* Parses a grid spec as described above; a tms: grid stays valid until mem_grid_free. */
int mem_grid_parse(const char *spec, struct mem_grid *g, struct mem_err *err);
/* Frees what mem_grid_parse allocated (the TileMatrixSet of a tms: grid). */
void mem_grid_free(struct mem_grid *g);
/* g set to level z of its pyramid (zmin <= z <= zmax); returns 0, or -1 when out of range. */
int mem_grid_level(const struct mem_grid *g, int z, struct mem_grid *out);
/*
 * A TileMatrixSet whose CRS puts northing (or latitude) first gives its
 * corners in that order: the caller, who can ask PROJ, says so here.
 */
void mem_grid_set_axes(struct mem_grid *g, int northing_first);
/* For a tms: grid, the CRS as the file names it ("EPSG:2193"), else NULL. */
const char *mem_grid_tms_crs(const struct mem_grid *g);
/* 1 when the TileMatrixSet's file states its axis order (orderedAxes). */
int mem_grid_tms_axes_known(const struct mem_grid *g);

/* Pixel size of the grid in its CRS units. */
double mem_grid_res(const struct mem_grid *g);
/* Tile span (one side, across) in CRS units. */
double mem_grid_span(const struct mem_grid *g);
/* Bounds (minx, miny, maxx, maxy) of tile x, y in the grid CRS. */
void mem_grid_tile_bounds(const struct mem_grid *g, long x, long y, double b[4]);
/*
 * The range of tiles [x0..x1] x [y0..y1] covering a box in the grid CRS;
 * returns 0, or -1 when the box lies outside the grid.
 */
int mem_grid_tile_range(const struct mem_grid *g, const double b[4], long *x0, long *y0,
    long *x1, long *y1);
/*
 * Writes the cell name, e.g. "webmercator/13/4290/2918",
 * "utm/32629/10/1024/23/280" or "tms/NZTM2000/5/12/30".
 */
void mem_grid_cell_name(const struct mem_grid *g, long x, long y, char *buf, size_t n);
/* EPSG of the UTM zone of a lon/lat point (326zz north, 327zz south). */
int mem_grid_utm_epsg(double lon, double lat);
/* Tile x, y containing lon/lat at zoom z of WebMercatorQuad. */
void mem_grid_webmercator_tile(double lon, double lat, int z, long *x, long *y);

#endif
