/*
 * fetch.h - what mem-fetch does to one item: filter it, bring its assets
 * into the work directory, and describe the local copies.
 */
#ifndef MEM_FETCH_H
#define MEM_FETCH_H

#include <jansson.h>

#include "http.h"
#include "item.h"

struct mem_fetch_opts {
	int has_bbox;
	double bbox[4];
	int has_datetime;
	struct mem_interval datetime;
	char **collections;	/* NULL-terminated, or NULL for any */
	int has_max_cloud;
	double max_cloud;
	char **assets;		/* NULL-terminated names, or NULL for every data asset */
	const char *workdir;
	struct mem_http_opts http;
};

/* 1 when item passes the filters, else 0. */
int mem_fetch_match(const json_t *item, const struct mem_fetch_opts *o);

/*
 * The keys of the assets to bring, as a new json array of strings: the
 * requested names (asset keys, or band names found by mem_item_find_band),
 * else every asset with role "data" (or with no roles but a raster type).
 */
json_t *mem_fetch_select(const json_t *item, const struct mem_fetch_opts *o,
    struct mem_err *err);

/*
 * Brings the selected assets of item into WORKDIR/scenes/ID/ and returns a
 * new scene item describing the local copies (href, file:size,
 * file:checksum, proj:* read from each raster).  Files already present are
 * kept: they were written atomically, so a present file is whole.
 */
json_t *mem_fetch_item(const json_t *item, const struct mem_fetch_opts *o, struct mem_err *err);

#endif
