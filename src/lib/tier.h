/*
 * tier.h - mem-store's storage tiers, and moves between them.
 *
 * hot:  the item's assets are files in its folder, DIR/COLLECTION/ID/.
 * cold: they are members of an uncompressed ustar archive beside the
 *       items, DIR/COLLECTION/archive-YYYY-MM-HASH.tar, one per collection
 *       and month of the items' dates.  The asset's href names the archive,
 *       and the STAC archive extension's fields say where inside it:
 *       archive:href (ID/FILE), archive:start and archive:end (its bytes,
 *       so GDAL reads it in place through /vsitar/ or a range request),
 *       archive:format and archive:type; file:size and file:checksum stay
 *       those of the member.  HASH comes from the members, so an archive
 *       is never changed, only replaced by another.
 * warm: single-band GeoTIFF assets are time slices of the collection's
 *       datacube, DIR/COLLECTION/cube.nc (netCDF-4 CF-1.8, see cube.h),
 *       appended to it.  The asset's href is ../cube.nc, type
 *       application/x-netcdf, and warm:* fields say where: warm:variable,
 *       warm:datetime (its time step, found by UTC day), warm:transform and
 *       warm:shape (the item's geotransform and [rows, cols]: its window,
 *       found from the cube's geotransform), warm:band and warm:window (the
 *       GDAL band and [xoff, yoff, xsize, ysize] when written; warm:gdal is
 *       the GDAL name NETCDF:"../cube.nc":VAR), warm:file, warm:type and
 *       warm:nodata (the file it came from).  The cube's bytes change on
 *       every append, so the asset has no file:checksum but warm:checksum:
 *       the SHA-256 multihash ("1220" + hex) of the window's values in the
 *       variable's data type, little-endian, row-major from the top row
 *       (north up, as GDAL reads it).  Back to hot, the file is rebuilt as
 *       a COG of the same values (new file:checksum and file:size); the
 *       cube keeps the slice, which no item names any longer.  Only hot
 *       items go warm; warm ones go cold or to the object store by way of
 *       hot.
 * object: they are objects in an S3-compatible bucket,
 *       s3://BUCKET/PREFIX/COLLECTION/ID/FILE, and the href is that URL.
 * Each asset carries storage:tier (the STAC storage extension).
 *
 * A move is made so that a kill at any point leaves a catalog that
 * verifies: the new files are written (temporary name, fsync, rename),
 * then each item JSON is replaced atomically, then the files no item names
 * any longer are removed.  What an interrupted move left behind is removed
 * by the next move; a move repeated finds nothing to do and writes nothing.
 */
#ifndef MEM_TIER_H
#define MEM_TIER_H

#include <jansson.h>

#include "memories.h"

#define MEM_EXT_STORAGE "https://stac-extensions.github.io/storage/v1.0.0/schema.json"

enum mem_tier { MEM_TIER_HOT, MEM_TIER_WARM, MEM_TIER_COLD, MEM_TIER_OBJECT };

/* Parses "hot", "warm" or "cold" ("object" is named by its s3:// URL); -1 for anything else. */
int mem_tier_parse(const char *s);
const char *mem_tier_name(enum mem_tier t);

struct mem_tier_opts {
	const char *dir;	/* the stored catalog (mem-store -o DIR) */
	enum mem_tier to;
	const char *remote;	/* with to MEM_TIER_OBJECT: s3://BUCKET/PREFIX, the store configured */
	double older_than;	/* seconds: items whose date ends before now - this; < 0: any */
	double accessed_before;	/* epoch seconds: items whose files were last read before; NAN: any */
	const json_t *only;	/* when not NULL, an object with keys "COLLECTION/ID": those items only */
	int dry_run;		/* say what would move, write nothing */
	/* when not NULL, called with each item that cannot move to or from warm */
	void (*failed)(void *ctx, const struct mem_err *err);
	void *failed_ctx;
};

/* Called with each item moved (or that would be, with dry_run). */
typedef void (*mem_tier_fn)(void *ctx, const char *collection, const char *id,
    enum mem_tier from, enum mem_tier to);

struct mem_tier_moved {
	int items;		/* items moved (with dry_run: that would move) */
	int archives;		/* archives written */
	int removed;		/* files removed: moved-from copies, replaced archives */
	int failed;		/* items that could not be moved (err holds the last) */
};

/*
 * Moves the items of o->dir that match o's filters to tier o->to.  Returns
 * 0 when the walk was done (n->failed says whether every item moved), -1
 * (MEM_EUSAGE) when dir holds no catalog or o->to is not supported.
 */
int mem_tier_move(const struct mem_tier_opts *o, mem_tier_fn fn, void *ctx,
    struct mem_tier_moved *n, struct mem_err *err);

/*
 * The checksum of a warm asset's slice (see above): its values read from
 * the cube file cube through GDAL, as a "1220..." SHA-256 multihash.
 * Returns -1 with err when the cube or the slice cannot be read.
 */
int mem_tier_warm_slice(const char *cube, const json_t *asset, char sum[69],
    struct mem_err *err);

/* Parses an age such as 30d, 12h, 2w or 90m (minutes) or plain seconds into seconds. */
int mem_tier_parse_age(const char *s, double *seconds, struct mem_err *err);

#endif
