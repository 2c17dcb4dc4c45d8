/*
 * grid.h - tile grids: WebMercatorQuad and native UTM.
 *
 * webmercator:Z[:SIZE]  OGC WebMercatorQuad (EPSG:3857), zoom Z, tiles of
 *                       SIZE pixels (256 by default), column x from the west
 *                       and row y from the north, as z/x/y tile servers use.
 * utm[:RES[:SIZE]]      the scene's own UTM zone (or the zone of its centre),
 *                       pixels of RES metres (the scene's finest by default),
 *                       tiles of SIZE pixels (1024 by default) aligned on
 *                       multiples of RES*SIZE from the zone's origin; column
 *                       x eastwards, row y northwards (floor(N / span)).
 */
#ifndef MEM_GRID_H
#define MEM_GRID_H

#include "memories.h"

#define MEM_ZOOM_MAX 30
#define MEM_WEBMERC_HALF 20037508.342789244

enum mem_grid_kind { MEM_GRID_WEBMERCATOR, MEM_GRID_UTM };

struct mem_grid {
	enum mem_grid_kind kind;
	int zoom;		/* webmercator */
	int epsg;		/* 3857, or the UTM zone's EPSG; 0 = from the scene */
	double res;		/* metres per pixel; 0 = from the scene (utm) */
	int tile_size;		/* pixels per tile side */
};

/* Parses a grid spec as described above. */
int mem_grid_parse(const char *spec, struct mem_grid *g, struct mem_err *err);
/* Pixel size of the grid in its CRS units. */
double mem_grid_res(const struct mem_grid *g);
/* Tile span (one side) in CRS units. */
double mem_grid_span(const struct mem_grid *g);
/* Bounds (minx, miny, maxx, maxy) of tile x, y in the grid CRS. */
void mem_grid_tile_bounds(const struct mem_grid *g, long x, long y, double b[4]);
/*
 * The range of tiles [x0..x1] x [y0..y1] covering a box in the grid CRS;
 * returns 0, or -1 when the box lies outside the grid.
 */
int mem_grid_tile_range(const struct mem_grid *g, const double b[4], long *x0, long *y0,
    long *x1, long *y1);
/* Writes the cell name, e.g. "webmercator/13/4290/2918" or "utm/32629/10/1024/23/280". */
void mem_grid_cell_name(const struct mem_grid *g, long x, long y, char *buf, size_t n);
/* EPSG of the UTM zone of a lon/lat point (326zz north, 327zz south). */
int mem_grid_utm_epsg(double lon, double lat);
/* Tile x, y containing lon/lat at zoom z of WebMercatorQuad. */
void mem_grid_webmercator_tile(double lon, double lat, int z, long *x, long *y);

#endif
