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

#include "memories.h"

enum mem_device { MEM_DEVICE_AUTO, MEM_DEVICE_CPU, MEM_DEVICE_CUDA };

struct mem_infer_opts {
	char **stages;		/* NULL-terminated stage names */
	const char *workdir;
	enum mem_device device;
	char **co;		/* GeoTIFF creation options KEY=VALUE, NULL-terminated */
	int threads;		/* 0 = all CPUs */
};

/* 1 when name is a known stage. */
int mem_infer_stage_known(const char *name);
/* The known stage names, comma-separated, for messages. */
const char *mem_infer_stage_list(void);

/*
 * Runs the stages on item and returns a new result item whose assets are
 * the stages' outputs under WORKDIR/results/ID/.  Outputs already present
 * (same deterministic id) are reused.
 */
json_t *mem_infer_item(const json_t *item, const struct mem_infer_opts *o, struct mem_err *err);

/* The device the last NDVI ran on ("cpu" or "cuda"), for messages. */
const char *mem_infer_last_device(void);

#endif
