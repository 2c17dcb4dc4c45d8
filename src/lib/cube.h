/*
 * cube.h - a netCDF-4 (HDF5) CF-1.8 datacube of items on one grid.
 *
 * The cube has dimensions time, y, x, one variable per single-band raster
 * asset key (ndvi, red, ...), projection coordinates x/y, a time
 * coordinate, and a grid mapping variable "crs" with the CRS as WKT and CF
 * attributes.  Items of one UTC date make one time step (their pixels
 * mosaicked); each item's pixels are placed at its geotransform offset, and
 * the cube's extent is the union of the items' extents.
 *
 * A builder collects items (mem_cube_add), then writes the whole cube to a
 * temporary name beside the target and renames it over the target
 * (mem_cube_commit): a reader, or a crash, only ever sees the previous cube
 * or the new one, whole.  With append, the previous cube's dates are copied
 * into the new one; a date it holds gets no second time step.
 */
#ifndef MEM_CUBE_H
#define MEM_CUBE_H

#include <jansson.h>

#include "memories.h"

struct mem_cube_opts {
	const char *path;	/* the cube file (FILE.nc) */
	int append;		/* keep the dates of an existing cube at path */
	const char *history;	/* who writes, for the history line ("NAME: added DATES"); NULL: mem-store --cube */
};

struct mem_cube;

/*
 * Returns a new builder; with append and an existing cube at o->path, the
 * cube's grid, variables and dates are read from it (err names the file
 * when it is not a cube this program can extend).  Free it with
 * mem_cube_free().  o is borrowed until then.
 */
struct mem_cube *mem_cube_new(const struct mem_cube_opts *o, struct mem_err *err);

/*
 * Adds an item's single-band raster assets.  Returns 0, or -1 (err names
 * the item, status MEM_EITEM) when it is not on the cube's grid: another
 * CRS, another pixel size, or pixels that do not fall on the cube's pixel
 * corners.  The first item added, or the existing cube, fixes the grid.
 * An asset whose date and variable the existing cube holds, with data
 * where it goes, is dropped at commit: a rerun adds nothing, while cells
 * of that date that the cube lacks (another shard's) are filled in.
 */
int mem_cube_add(struct mem_cube *c, const json_t *item, struct mem_err *err);

/*
 * Writes the cube atomically when there is something new; *changed (when
 * not NULL) says whether the file was written.  With nothing to write at
 * all (no item, no existing cube) it fails with MEM_EUSAGE.
 */
int mem_cube_commit(struct mem_cube *c, int *changed, struct mem_err *err);

/*
 * Returns a new STAC item describing the cube file (after a commit): its
 * bbox, time span, and one asset with file:size and file:checksum.
 */
json_t *mem_cube_item(struct mem_cube *c, struct mem_err *err);

void mem_cube_free(struct mem_cube *c);

#endif
