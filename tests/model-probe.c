/*
 * model-probe - makes model files for tests/cli/infer-halo.sh that
 * mem-infer --train does not: it trains one convolution at most.
 *
 *   model-probe deepen IN.h5 OUT.h5
 *
 * writes IN's model with a second 3x3 convolution (ReLU) inserted before
 * its last layer, as wide as the layer before it: the centre tap passes
 * each map through (weight 1) and the eight around it add small fixed
 * weights, so the classes stay close to IN's but every pixel's depends on
 * its 5x5 neighbourhood.  Exit 1 when IN cannot be read, has no hidden
 * layer, or OUT cannot be written.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

int
main(int argc, char **argv)
{
	struct mem_err err = { 0 };
	struct mem_model *m;
	struct mem_kern_layer *L, *nl;
	int c, last;

	if (argc != 4 || strcmp(argv[1], "deepen") != 0) {
		fprintf(stderr, "usage: model-probe deepen IN.h5 OUT.h5\n");
		return 2;
	}
	if ((m = mem_model_load(argv[2], &err)) == NULL) {
		fprintf(stderr, "model-probe: %s\n", err.msg);
		return 1;
	}
	last = m->k.nlayers - 1;
	if (last < 1) {
		fprintf(stderr, "model-probe: '%s' has no hidden layer\n", argv[2]);
		return 1;
	}
	c = m->k.layer[last].nin;
	L = calloc(m->k.nlayers + 1, sizeof *L);
	if (L == NULL)
		return 1;
	memcpy(L, m->k.layer, last * sizeof *L);
	L[last + 1] = m->k.layer[last];
	nl = &L[last];
	*nl = (struct mem_kern_layer){ MEM_KERN_CONV3, MEM_KERN_RELU, c, c,
		calloc((size_t)c * c * 9, sizeof(float)), calloc((size_t)c, sizeof(float)) };
	if (nl->w == NULL || nl->b == NULL)
		return 1;
	for (int k = 0; k < c; k++)
		for (int i = 0; i < c; i++)
			for (int t = 0; t < 9; t++)
				nl->w[((size_t)k * c + i) * 9 + t] = t == 4 ? (k == i) :
				    (float)((k * 7 + i * 3 + t * 5) % 11 - 5) / 25.0f;
	free(m->k.layer);
	m->k.layer = L;
	m->k.nlayers++;
	if (mem_model_save(m, argv[3], &err) < 0) {
		fprintf(stderr, "model-probe: %s\n", err.msg);
		return 1;
	}
	mem_model_free(m);
	return 0;
}
