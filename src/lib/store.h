/*
 * store.h - durable outputs (mem-store): COGs and a STAC catalog.
 *
 * Layout under the output directory DIR:
 *   DIR/catalog.json
 *   DIR/COLLECTION/collection.json
 *   DIR/COLLECTION/ITEM/ITEM.json      hrefs relative to the item file
 *   DIR/COLLECTION/ITEM/ASSET.tif      Cloud Optimized GeoTIFF
 *   DIR/COLLECTION/ID/ASSET.tif        with --mosaic, ID = COLLECTION-mosaic-DATE-HASH
 */
#ifndef MEM_STORE_H
#define MEM_STORE_H

#include <jansson.h>

#include "memories.h"

struct mem_store_opts {
	const char *outdir;	/* with remote: the local staging copy of the catalog */
	const char *remote;	/* s3://bucket/prefix to store into, or NULL */
	char **co;		/* COG creation options KEY=VALUE, NULL-terminated */
	const char *catalog_id;
	const char *title;
	const char *tier;	/* with --tier: each stored asset's storage:tier is "hot" */
};

/*
 * Stores one item: every raster asset as a COG, other local assets copied,
 * and the item JSON, each atomically, item JSON last.  Returns a new item
 * with absolute hrefs to the stored files.  An item already stored (its
 * JSON present) is not written again; *skipped is then set.
 */
json_t *mem_store_item(const json_t *item, const struct mem_store_opts *o, int *skipped,
    struct mem_err *err);

/*
 * Returns a new copy of the item stored as outdir/COLLECTION/ID/ID.json,
 * with absolute hrefs, as mem_store_item emits it.
 */
json_t *mem_store_load(const char *outdir, const char *collection, const char *id,
    struct mem_err *err);

/*
 * --mosaic: items grouped by collection and UTC date; each group is stored
 * as one item whose raster assets are each one COG over the group's tiles
 * (a VRT of them written by the COG driver), with statistics, and whose
 * derived_from links are the tiles' own.  Its id is derived from the ids
 * of the tiles, so a rerun over the same tiles skips it.
 */
struct mem_mosaic;

/* Returns a new, empty set of groups; free it with mem_mosaic_free(). */
struct mem_mosaic *mem_mosaic_new(void);
void mem_mosaic_free(struct mem_mosaic *m);
/* 1 when item has a raster asset to mosaic; the others are stored with mem_store_item. */
int mem_mosaic_wants(const json_t *item);
/* Adds item (a reference is kept) to the group of its collection and date. */
int mem_mosaic_add(struct mem_mosaic *m, const json_t *item, struct mem_err *err);
/* The number of groups. */
size_t mem_mosaic_count(const struct mem_mosaic *m);
/*
 * Stores group index (0 .. count-1) as in mem_store_item: the COGs, then the
 * item JSON, each atomically.  Returns a new item with absolute hrefs.
 */
json_t *mem_mosaic_store(struct mem_mosaic *m, size_t index, const struct mem_store_opts *o,
    int *skipped, struct mem_err *err);

/*
 * With o->remote, everything is written under o->outdir first, then
 * uploaded (files, then the item JSON), the assets' local copies removed,
 * and the emitted hrefs are s3:// URLs; an item whose JSON is in the
 * bucket already is skipped.
 *
 * Rebuilds DIR/catalog.json and each DIR/COLLECTION/collection.json from
 * the item files present, so that reruns and several runs accumulate.
 * With o->remote, the item files in the bucket are fetched first, and the
 * collections and catalog uploaded after.
 */
int mem_store_finish(const struct mem_store_opts *o, struct mem_err *err);

/* Called by mem_store_verify with each problem: the file concerned, and what is wrong. */
typedef void (*mem_store_problem_fn)(void *ctx, const char *path, const char *problem);

struct mem_store_verified {
	int documents;		/* catalogs, collections and items read */
	int files;		/* assets checked */
	int problems;
};

/*
 * Checks the catalog stored in dir (or s3://BUCKET/PREFIX, read through
 * /vsis3/ once mem_objstore_configure is done): from dir/catalog.json, every child,
 * item, parent, root and collection link resolves to a file that parses,
 * and every local asset exists with the file:size and file:checksum its
 * item states (the checksum recomputed); an asset in a cold-tier archive
 * is the member at its archive:start, under its archive:href name.  With
 * objects, s3:// assets (the object store tier) are checked as well,
 * through /vsis3/ as configured.  Calls fn with each problem and
 * counts them in *n.  Returns 0 when the walk was done (problems or not),
 * -1 when dir holds no catalog.json (MEM_EUSAGE; MEM_EITEM for a bucket).
 */
int mem_store_verify(const char *dir, int objects, mem_store_problem_fn fn, void *ctx,
    struct mem_store_verified *n, struct mem_err *err);

#endif
