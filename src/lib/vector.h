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

#endif
