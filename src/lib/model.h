/*
 * model.h - the classifier's model file (HDF5), read and written.
 *
 * The layout is documented in mem-model(5): the input bands by name,
 * their mean and standard deviation, the layers in /layers/0, /layers/1...
 * and the class names.
 */
#ifndef MEM_MODEL_H
#define MEM_MODEL_H

#include "kern.h"
#include "memories.h"

struct mem_model {
	struct mem_kern_model k;
	char **bands;	/* k.nbands names, read as reflectance */
	char **classes; /* k.nclasses names */
};

/*
 * Reads and checks the model at path.  Returns a new model, freed with
 * mem_model_free(), or NULL with err (MEM_EUSAGE) naming the file and what
 * is wrong in it.
 */
struct mem_model *mem_model_load(const char *path, struct mem_err *err);

/* Writes m to path atomically (a temporary name, then a rename). */
int mem_model_save(const struct mem_model *m, const char *path, struct mem_err *err);

/*
 * A model of the given shape with zeroed weights: nbands inputs, a first
 * layer (conv: a 3x3 convolution) of hidden ReLU units when hidden > 0,
 * then a softmax over nclasses.  bands and classes are copied.
 */
struct mem_model *mem_model_new(int nbands, char *const *bands, int nclasses,
    char *const *classes, int hidden, int conv);

void mem_model_free(struct mem_model *m);

#endif
