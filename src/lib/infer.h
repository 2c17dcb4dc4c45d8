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

struct mem_chain;

struct mem_infer_opts {
	char **stages;		/* NULL-terminated stage specs as given (they name the result) */
	const struct mem_chain *chain;	/* the same, parsed (mem_chain_parse) */
	const char *workdir;
	enum mem_device device;
	char **co;		/* GeoTIFF creation options KEY=VALUE, NULL-terminated */
	int threads;		/* 0 = all CPUs */
};

/*
 * Runs the chain on item, fused over strips, and returns a new result item
 * whose assets are the outputs asked for, under WORKDIR/results/ID/.
 * Outputs already present (same deterministic id) are reused.
 */
json_t *mem_infer_item(const json_t *item, const struct mem_infer_opts *o, struct mem_err *err);

/* The device the last NDVI ran on ("cpu" or "cuda"), for messages. */
const char *mem_infer_last_device(void);

#endif
