/*
 * item.h - reading and making STAC Items (jansson values).
 *
 * Helpers that every stage needs: an item's time span and bounding box,
 * RFC 3339 instants and intervals, finding a band the way real catalogs
 * name it, resolving hrefs against the document they came from, and the
 * deterministic ids of derived items.
 */
#ifndef MEM_ITEM_H
#define MEM_ITEM_H

#include <jansson.h>

#include "memories.h"

#define MEM_STAC_VERSION "1.0.0"
#define MEM_EXT_PROJ "https://stac-extensions.github.io/projection/v1.1.0/schema.json"
#define MEM_EXT_RASTER "https://stac-extensions.github.io/raster/v1.1.0/schema.json"
#define MEM_EXT_EO "https://stac-extensions.github.io/eo/v1.1.0/schema.json"
#define MEM_EXT_FILE "https://stac-extensions.github.io/file/v2.1.0/schema.json"
#define MEM_EXT_PROCESSING "https://stac-extensions.github.io/processing/v1.1.0/schema.json"

/* A closed time interval in seconds since the epoch; infinities mean open. */
struct mem_interval {
	double start, end;
};

/*
 * Parses an RFC 3339 instant ("2024-06-01T10:00:00Z", offsets and fractions
 * allowed) or a date ("2024-06-01").  For a date, *t is its first second;
 * *date_only (when not NULL) is set so that callers can widen it to a day.
 */
int mem_time_parse(const char *s, double *t, int *date_only, struct mem_err *err);
/* Formats t as "YYYY-MM-DDTHH:MM:SS[.ffffff]Z" into buf (at least 32 bytes). */
void mem_time_format(double t, char *buf, size_t n);
/*
 * Parses a STAC datetime filter: an instant, a date (the whole day), or an
 * interval "A/B" with ".." or an empty side for an open end.
 */
int mem_interval_parse(const char *s, struct mem_interval *iv, struct mem_err *err);

/* The time span of an item: datetime, or start_datetime/end_datetime. */
int mem_item_time(const json_t *item, struct mem_interval *iv, struct mem_err *err);
/* The item's UTC date as "YYYY-MM-DD" (from datetime or start_datetime). */
int mem_item_date(const json_t *item, char buf[11], struct mem_err *err);

/* The item's lon/lat bbox: its "bbox" member, else computed from its geometry. */
int mem_item_bbox(const json_t *item, double bbox[4], struct mem_err *err);
/* 1 when the boxes (west, south, east, north) overlap, antimeridian-naive. */
int mem_bbox_intersects(const double a[4], const double b[4]);
/* Parses "W,S,E,N". */
int mem_bbox_parse(const char *s, double bbox[4], struct mem_err *err);

const char *mem_item_id(const json_t *item);
/* A string property, or NULL. */
const char *mem_item_prop_string(const json_t *item, const char *key);
/* A number property into *v; returns 0, or -1 when missing. */
int mem_item_prop_number(const json_t *item, const char *key, double *v);

/* Where a band lives: an asset and a 1-based band index inside it. */
struct mem_band {
	const char *asset_key;	/* borrowed from the item */
	json_t *asset;		/* borrowed */
	int index;		/* 1-based band of the asset's raster */
	double scale, offset;	/* raster:bands; 1 and 0 when absent */
	int has_scale, has_offset;	/* whether the item stated them */
	int has_nodata;
	double nodata;
};

/*
 * Finds the band called name in item: an asset key ("B04", "red"), then an
 * eo:bands or bands entry by name or common_name, preferring single-band
 * data assets over multi-band ones and GeoTIFFs over other formats, and
 * never a visual/overview/thumbnail asset.  Returns 0, or -1 with err
 * naming the item and the band.
 */
int mem_item_find_band(const json_t *item, const char *name, struct mem_band *band,
    struct mem_err *err);

/*
 * Resolves href against base (the URL or path of the document that held
 * it).  Returns a new string: an absolute URL, or a path.
 */
char *mem_href_resolve(const char *base, const char *href);
/* 1 when s starts with a URL scheme such as "http://" or "s3://". */
int mem_href_is_url(const char *s);

/*
 * A deterministic id: stem, "-", then 16 hex digits of the SHA-256 of the
 * tool name, version and params (a JSON value dumped with sorted keys).
 * Returns a new string.
 */
char *mem_item_derive_id(const char *stem, const char *tool, const json_t *params);

/*
 * Returns a new item with the given id that copies geometry, bbox,
 * datetime fields and projection of parent, links rel=derived_from to
 * parent, names the software, and has empty assets.
 */
json_t *mem_item_derive(const json_t *parent, const char *id, const char *tool);

/* Adds ext to the item's stac_extensions unless it is there. */
void mem_item_add_extension(json_t *item, const char *ext);

/* Returns the asset's href, or NULL. */
const char *mem_asset_href(const json_t *asset);

#endif
