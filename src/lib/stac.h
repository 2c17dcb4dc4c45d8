/*
 * stac.h - reading STAC documents: catalogs, collections, items, item
 * collections and item manifests, from paths, file:// and http(s):// URLs.
 */
#ifndef MEM_STAC_H
#define MEM_STAC_H

#include <jansson.h>

#include "http.h"
#include "memories.h"

/*
 * Called with each item found; the item's asset hrefs and links have been
 * resolved to absolute paths or URLs.  The callback borrows item.  It
 * returns 0 to go on, 1 to stop the walk early (not an error), -1 to stop
 * with an error already in err.
 */
typedef int (*mem_stac_item_fn)(json_t *item, void *ctx, struct mem_err *err);

/* Reads a JSON document from a path or URL. Returns a new reference. */
json_t *mem_stac_load(const char *href, const struct mem_http_opts *o, struct mem_err *err);

/*
 * Walks source: a Catalog or Collection (following child and item links
 * to max_depth), a Feature, a FeatureCollection, or a file of one item per
 * line.  Errors in the source itself fail the walk (MEM_EUSAGE for a
 * malformed or missing document, MEM_ETEMP for network trouble); a broken
 * child link is reported through warn (when not NULL) and skipped.
 */
int mem_stac_walk(const char *source, int max_depth, const struct mem_http_opts *o,
    mem_stac_item_fn fn, void *ctx, void (*warn)(const struct mem_err *, void *),
    struct mem_err *err);

/* Rewrites the item's asset hrefs and link hrefs as absolute, against base. */
void mem_stac_resolve_item(json_t *item, const char *base);

#endif
