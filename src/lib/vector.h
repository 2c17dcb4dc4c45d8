/*
 * vector.h - vector data through OGR: areas of interest.
 */
#ifndef MEM_VECTOR_H
#define MEM_VECTOR_H

#include <jansson.h>

#include "memories.h"

/*
 * Reads every feature of every layer of path (GeoJSON, GeoPackage,
 * Shapefile, anything OGR reads), unions their geometries, reprojects them
 * to lon/lat (EPSG:4326, x = lon) and returns the union as a new GeoJSON
 * geometry; bbox gets its lon/lat box.
 */
json_t *mem_vector_aoi(const char *path, double bbox[4], struct mem_err *err);

struct mem_vector_opts {
	const json_t *aoi;	/* lon/lat GeoJSON geometry to clip to, or NULL */
	int has_bbox;		/* else clip to this lon/lat box, when set */
	double bbox[4];
	int t_epsg;		/* reproject to this EPSG code; 0 keeps each layer's CRS */
	char **layers;		/* NULL-terminated layer names, or NULL for all */
	const char *workdir;
};

/* Called with each layer item (borrowed); returns 0, or -1 to stop. */
typedef int (*mem_vector_emit_fn)(json_t *item, void *ctx);

/*
 * Reads each layer of src (any OGR source: GeoJSON, GeoPackage, Shapefile,
 * OSM PBF), keeps the features that meet the AOI or box, cuts those that
 * cross its edge (they are clipped, not dropped), reprojects on request,
 * and writes the layer to WORKDIR/vectors/ID.gpkg atomically.  Emits one
 * item per layer.  Returns the number of layers, or -1.
 */
int mem_vector_fetch(const char *src, const struct mem_vector_opts *o, mem_vector_emit_fn emit,
    void *ctx, struct mem_err *err);

/*
 * Copies the vector source src (a GeoPackage, or anything OGR reads) into
 * a new GeoPackage at path, atomically: a single layer becomes the table
 * named table, several keep their names; each table gets an R-tree
 * spatial index.  date (RFC 3339, may be NULL) stamps the tables, so the
 * same source gives the same bytes.  *tables (when not NULL) gets a new
 * JSON array of the table names.  Returns the number of features, or -1.
 */
long mem_vector_store_gpkg(const char *src, const char *path, const char *table,
    const char *date, json_t **tables, struct mem_err *err);

#endif
