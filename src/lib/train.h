/*
 * train.h - mem-infer --train: fit a classifier (mem-model(5)) to labelled
 * pixels of items.
 */
#ifndef MEM_TRAIN_H
#define MEM_TRAIN_H

#include <jansson.h>
#include <stddef.h>

#include "memories.h"

struct mem_train_opts {
	const char *out;	/* the model file, written atomically */
	const char *labels;	/* polygons (any OGR format, any CRS) */
	const char *layer;	/* their layer, or NULL for the first */
	const char *field;	/* the field that names each polygon's class */
	/*
	 * Or, instead of labels: a class band, FILE[:BAND] (any grid and CRS,
	 * taken by nearest neighbour) or the name of a band of each item.
	 */
	const char *labels_band;
	char **label_classes;	/* VALUE=NAME, NULL-terminated; NULL: each value a class */
	char **bands;		/* input band names, NULL-terminated */
	int hidden;		/* hidden ReLU units; 0: softmax regression */
	int conv;		/* 1: the first layer is a 3x3 convolution */
	int epochs, batch;
	double lr;
	unsigned long long seed;
	size_t max_samples;	/* a seeded random subset beyond this many pixels */
};

struct mem_train_result {
	size_t samples;		/* labelled pixels trained on */
	int nclasses;
	double loss;		/* the last epoch's mean cross-entropy */
	double accuracy;	/* on the samples trained on */
};

/*
 * With labels_band: the band's value at each pixel (nodata: none) is its
 * label; label_classes names values (several may share a name, values not
 * named are left out), else each distinct value is a class named by its
 * number, in numeric order.  Otherwise:
 * rasterizes the labels onto each item's grid (pixel centres inside, the
 * later polygon on overlaps), takes the pixels where every band is valid,
 * fits the network and writes it.  Classes are the distinct values of the
 * field, sorted.  Returns 0, or -1 with err: MEM_EUSAGE for bad labels or
 * options, MEM_EITEM when an item cannot be read.
 */
int mem_train(json_t *const *items, size_t n, const struct mem_train_opts *o,
    struct mem_train_result *res, struct mem_err *err);

#endif
