/*
 * tile.h - cutting scenes into grid cells (mem-tile).
 *
 * Scenes arrive one by one and are held (items only, never pixels) in
 * groups: one per period (a UTC date unless a composite names another) and,
 * for the UTM grid, per zone.  When the input ends each group is made into
 * the cells it covers, groups in order of period, cells in parallel and
 * emitted in a fixed order, so a run's output does not depend on -j or on
 * the order the scenes came in.
 */
#ifndef MEM_TILE_H
#define MEM_TILE_H

#include <jansson.h>

#include "grid.h"
#include "memories.h"

/* How the scenes of a group make one pixel. */
enum mem_composite {
	MEM_COMP_LATEST,	/* the latest valid pixel (a mosaic, latest on top) */
	MEM_COMP_FIRST,		/* the earliest valid pixel */
	MEM_COMP_LEAST_CLOUDY,	/* the clear pixel of the least cloudy scene */
	MEM_COMP_MEDIAN,	/* the median of the clear valid values */
	MEM_COMP_MAX_NDVI,	/* every band from the scene of highest NDVI */
};

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
	enum mem_composite composite;
	int composite_set;	/* --composite given: the group is the period, or the whole run */
	const char *period;	/* ISO 8601 duration (P1D, P10D, P2W, P1M, P1Y), or NULL */
	int jobs;		/* cells made at once (0: one per CPU) */
	double mem;		/* memory budget in bytes (0: no budget) */
	double cache;		/* GDAL's block cache, set from mem */
	/*
	 * --ledger: claim a cell by its tile id before making it (returns
	 * MEM_LEDGER_WON, _DONE, _TAKEN, or -1), mark it done once its files
	 * are synced (0 or -1); NULL: no ledger.  Cells of other workers are
	 * waited for, level by level.
	 */
	int (*claim)(void *ctx, const char *id, struct mem_err *err);
	int (*done)(void *ctx, const char *id, struct mem_err *err);
	void *ledger_ctx;
};

/* Parses METHOD[:PERIOD] of --composite into o. */
int mem_tile_composite_parse(const char *s, struct mem_tile_opts *o, struct mem_err *err);
/*
 * Checks that the run can keep within o->mem and sets GDAL's cache from it;
 * returns -1 (MEM_EUSAGE) naming the least budget that would do.
 */
int mem_tile_plan_memory(struct mem_tile_opts *o, struct mem_err *err);
/* What a run holds besides its workers: the program, GDAL, the block cache. */
double mem_tile_base_mem(const struct mem_tile_opts *o);
/* The share of the budget each worker may use for its buffers and warps. */
double mem_tile_worker_mem(const struct mem_tile_opts *o);

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
