/*
 * tile.h - cutting scenes into grid cells (mem-tile).
 *
 * Scenes arrive one by one; those of one UTC date (and, for the UTM grid,
 * one zone) are held as a group and mosaicked into each cell they cover
 * when the date changes or the input ends.  Holding a group costs only the
 * items, never pixels.
 */
#ifndef MEM_TILE_H
#define MEM_TILE_H

#include <jansson.h>

#include "grid.h"
#include "memories.h"

struct mem_tile_opts {
	struct mem_grid grid;
	const char *grid_spec;
	int has_bbox;
	double bbox[4];
	char **bands;		/* NULL-terminated asset keys or band names, or NULL for all rasters */
	const char *resample;	/* gdalwarp -r name */
	const char *workdir;
	int shard, nshards;	/* this run makes the cells of shard I of N (N <= 1: all) */
	int list_cells;		/* only name the cells, into cells (an object used as a set) */
	json_t *cells;
};

/* 1 when the cell belongs to shard I of N: a stable hash of its name. */
int mem_tile_in_shard(const char *cell, int shard, int nshards);

/* Adds to cells the names of the cells the lon/lat box o->bbox meets (in o's shard). */
int mem_tile_list_box(const struct mem_tile_opts *o, json_t *cells, struct mem_err *err);

struct mem_tiler;

/* Called with each finished tile item (borrowed); returns 0 or -1 to stop. */
typedef int (*mem_tile_emit_fn)(json_t *tile, void *ctx);
/* Called with each failure of one cell; the run goes on. */
typedef void (*mem_tile_fail_fn)(const struct mem_err *err, void *ctx);

/* Returns a new tiler; free it with mem_tiler_free(). */
struct mem_tiler *mem_tiler_new(const struct mem_tile_opts *o, mem_tile_emit_fn emit,
    mem_tile_fail_fn fail, void *ctx);
/*
 * Adds a scene; tiles of earlier dates are made and emitted first.
 * Returns -1 only for a scene that cannot be tiled at all (err says why).
 */
int mem_tiler_add(struct mem_tiler *t, const json_t *scene, struct mem_err *err);
/* Makes and emits the tiles of the scenes still held. */
int mem_tiler_flush(struct mem_tiler *t, struct mem_err *err);
void mem_tiler_free(struct mem_tiler *t);

#endif
