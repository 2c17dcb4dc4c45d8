/*
 * infer.h - the inference stages of mem-infer.
 *
 * A stage reads bands of an item (a scene or a tile alike), runs a kernel
 * over blocks, and writes one asset.  Several stages given together run on
 * the same item and land in one result item.
 */
#ifndef MEM_INFER_H
#define MEM_INFER_H

#include <jansson.h>
#include <ogr_srs_api.h>

#include "memories.h"

enum mem_device { MEM_DEVICE_AUTO, MEM_DEVICE_CPU, MEM_DEVICE_CUDA };

struct mem_chain;
struct mem_llm_opts;

struct mem_infer_opts {
	char **stages;		/* NULL-terminated stage specs as given (they name the result) */
	const struct mem_chain *chain;	/* the same, parsed (mem_chain_parse) */
	const char *workdir;
	enum mem_device device;
	char **co;		/* GeoTIFF creation options KEY=VALUE, NULL-terminated */
	int threads;		/* 0 = all CPUs */
	struct mem_llm_opts *llm; /* the llm stage's options and counters, or NULL */
};

/*
 * Runs the chain on item, fused over strips, and returns a new result item
 * whose assets are the outputs asked for, under WORKDIR/results/ID/.
 * Outputs already present (same deterministic id) are reused.
 */
json_t *mem_infer_item(const json_t *item, const struct mem_infer_opts *o, struct mem_err *err);

/*
 * The same for a change stage: item is the later date, before the earlier
 * one of the same cell; the result derives from item and links to both.
 */
json_t *mem_infer_pair(const json_t *before, const json_t *item, const struct mem_infer_opts *o,
    struct mem_err *err);

/* The items beside an item (and beside the date before), from mem_halo_neighbours(). */
struct mem_infer_near {
	json_t *const *item;
	size_t nitem;
	json_t *const *before;
	size_t nbefore;
};

/*
 * mem_infer_pair (before may be NULL) reading across the item's seams:
 * when the chain has a halo (a dilation, a 3x3 convolution), each band is
 * read over the item's grid grown by the halo, from the same asset of the
 * neighbours in near, so results of adjacent tiles join without seams.
 * Only the item's own pixels are written and counted.  near NULL or empty
 * is mem_infer_pair; the neighbours' ids and inputs are part of the id.
 */
json_t *mem_infer_near(const json_t *before, const json_t *item, const struct mem_infer_near *near,
    const struct mem_infer_opts *o, struct mem_err *err);

struct mem_infer_pair {
	size_t before, after; /* indices into the items */
};

/*
 * Pairs items of the same cell (mem:grid, else grid:code) by date:
 * each item with the one just before it.  pairs holds n entries, lonely n
 * indices: the items of a cell with one date, or with no cell or date.
 * Returns the number of pairs, ordered by cell then date.
 */
size_t mem_infer_pairs(json_t *const *items, size_t n, struct mem_infer_pair *pairs,
    size_t *lonely, size_t *nlonely);

/*
 * The llm stage with scope=run: one question about all the results, whose
 * answer goes into each (mem:llm).  Returns 0, or -1 with err for a usage
 * error (a missing key).
 */
int mem_infer_llm_run(json_t *const *results, size_t n, const struct mem_infer_opts *o,
    struct mem_err *err);

/*
 * Reads bands (by common name or alias) of item whole, as reflectance,
 * NaN for nodata, on the grid of the finest: out[i] gets a w x h buffer
 * (free with VSIFree), gt the grid, *srs a clone of its CRS or NULL.
 * For training: an item of more than 1e8 pixels is refused.
 */
int mem_infer_read_bands(const json_t *item, char *const *names, int nb, float **out, int *w,
    int *h, double gt[6], OGRSpatialReferenceH *srs, struct mem_err *err);

/* The device the last NDVI ran on ("cpu" or "cuda"), for messages. */
const char *mem_infer_last_device(void);

#endif
