/*
 * demo.h - the demo scene: a deterministic synthetic Sentinel-2 L2A look-alike.
 */
#ifndef MEM_DEMO_H
#define MEM_DEMO_H

#include "memories.h"

/*
 * Writes DIR/catalog.json, DIR/sentinel-2-l2a-demo/collection.json and one
 * item with B02, B03, B04, B08 (10 m, UInt16, nodata 0) and SCL (20 m) COGs
 * of size x size pixels.  The same bytes every run.
 */
int mem_demo_write(const char *dir, int size, struct mem_err *err);

#endif
