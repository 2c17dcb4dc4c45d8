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
	json_t *aoi;		/* a lon/lat GeoJSON geometry for searches, or NULL */
	const char *sas_url;	/* Planetary Computer token endpoint: sign asset hrefs */
	json_t *sas_tokens;	/* tokens by collection, filled as they are fetched */
	int whole;		/* copy whole assets even when a box or AOI is given */
	int jobs;		/* transfers at once (0: 4) */
	int per_host;		/* transfers at once to one host (0: 4) */
	struct mem_fetch_stats *stats;	/* counters, or NULL */
};

/* What the windows saved: bytes read over the network against asset sizes. */
struct mem_fetch_stats {
	long long fetched, full;
	int windows;
};

/*
 * The body of a STAC API search for these options: bbox or intersects,
 * datetime (an RFC 3339 interval), collections, limit, sortby ("field" or
 * "-field", comma-separated), the query extension (query, a JSON object,
 * with --max-cloud added as eo:cloud_cover lte) and a CQL2-JSON filter.
 * Returns a new object.
 */
json_t *mem_fetch_search_body(const struct mem_fetch_opts *o, long limit, const char *sortby,
    const json_t *query, const json_t *filter);

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
 * new scene item.  With a box or an AOI (and not whole), a GeoTIFF asset
 * is not copied whole: only the window of pixels covering the box is read
 * (over HTTP, with range requests) and written as a local COG, recorded in
 * the asset as "mem:window" (srcwin, bytes read, size of the source).
 * Otherwise returns a
 * new scene item describing the local copies (href, file:size,
 * file:checksum, proj:* read from each raster).  Files already present are
 * kept: they were written atomically, so a present file is whole.
 */
json_t *mem_fetch_item(const json_t *item, const struct mem_fetch_opts *o, struct mem_err *err);

/*
 * Asks the Overpass API at url for query (Overpass QL; {{bbox}} becomes the
 * box as south,west,north,east) and keeps the OSM XML answer in
 * WORKDIR/vectors/overpass-HASH.osm, which a rerun of the same query reuses.
 * Returns the new path.
 */
char *mem_fetch_overpass(const char *url, const char *query, const struct mem_fetch_opts *o,
    struct mem_err *err);

/* The size of an asset: its file:size, else asked of the server (HEAD) or the file system; -1 unknown. */
long long mem_fetch_asset_size(const json_t *asset);

#endif
