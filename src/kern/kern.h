/*
 * kern.h - compute kernels: buffers in, buffers out.
 *
 * Kernels know nothing of files, GDAL or items, so that the CPU and CUDA
 * versions can be built and checked on a machine with only a compiler.
 */
#ifndef MEM_KERN_H
#define MEM_KERN_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * How to turn stored values into reflectance, and which stored values are
 * nodata: reflectance = value * scale + offset.
 */
struct mem_kern_ndvi_params {
	double red_scale, red_offset;
	double nir_scale, nir_offset;
	int red_has_nodata, nir_has_nodata;
	float red_nodata, nir_nodata;
};

/*
 * NDVI = (nir - red) / (nir + red), computed in double precision and stored
 * as float32.  out[i] is NaN where either input is nodata or NaN, or where
 * nir + red == 0.  Values outside [-1, 1] (negative reflectance after a BOA
 * offset) are kept as computed, not clamped.  Uses OpenMP threads when the
 * caller is not already in a parallel region.
 */
void mem_kern_ndvi_f32(const float *red, const float *nir, float *out, size_t n,
    const struct mem_kern_ndvi_params *p);

/*
 * Any normalized difference (a - b) / (a + b) is mem_kern_ndvi_f32 with
 * nir = a and red = b: NDWI, MNDWI, NBR, NDBI and NDSI share its exact
 * arithmetic and its GPU path.
 */

/* One input band: reflectance = value * scale + offset; nodata as stored. */
struct mem_kern_band {
	double scale, offset;
	int has_nodata;
	float nodata;
};

/*
 * EVI = 2.5 (nir - red) / (nir + 6 red - 7.5 blue + 1) on reflectance, in
 * double precision, stored as float32; NaN where an input is nodata or NaN
 * or the denominator is 0.  b[] describes nir, red and blue in that order.
 */
void mem_kern_evi_f32(const float *nir, const float *red, const float *blue, float *out, size_t n,
    const struct mem_kern_band b[3]);

/*
 * SAVI = (1 + L) (nir - red) / (nir + red + L) on reflectance, as for EVI;
 * b[] describes nir and red.
 */
void mem_kern_savi_f32(const float *nir, const float *red, float *out, size_t n,
    const struct mem_kern_band b[2], double L);

/* Reflectance of one band: value * scale + offset, NaN where nodata. */
void mem_kern_reflectance_f32(const float *in, float *out, size_t n, const struct mem_kern_band *b);

/* out[i] = NaN where mask[i] is not 0 (NaN included): a mask hides what it covers. */
void mem_kern_apply_mask_f32(float *out, const float *mask, size_t n);

/*
 * Cloud mask from a classification band (Sentinel-2 SCL): 1 where the
 * class is in the set (bit k of classes for class k, 0-63), 0 where not,
 * NaN where the input is nodata or NaN; then every clear pixel within
 * dilate pixels (a square window) of a masked one becomes 1.
 *
 * in holds in_rows rows of w pixels; out receives rows rows of w pixels,
 * those of in starting at row top.  The rows of in above and below are the
 * halo that dilation reads, so strips join without seams; at the edge of
 * the image there is less halo and the window is cut there.  scratch holds
 * 2 * w * in_rows bytes.
 */
void mem_kern_cloudmask_f32(const float *in, float *out, int w, int in_rows, int top, int rows,
    unsigned long long classes, int has_nodata, float nodata, int dilate, unsigned char *scratch);

/*
 * Landsat Collection 2 QA_PIXEL: bit 0 fill, 1 dilated cloud, 2 cirrus,
 * 3 cloud, 4 cloud shadow, 5 snow, 6 clear, 7 water; then confidence
 * pairs (0 none, 1 low, 2 medium, 3 high): bits 8-9 cloud, 10-11 cloud
 * shadow, 12-13 snow/ice, 14-15 cirrus.
 */
enum { MEM_KERN_QA_CLOUD, MEM_KERN_QA_SHADOW, MEM_KERN_QA_SNOW, MEM_KERN_QA_CIRRUS };
struct mem_kern_qa {
	unsigned bits;		/* a pixel with any of these bits set is masked */
	unsigned char conf[4];	/* MEM_KERN_QA_*: masked at this confidence or above; 0: unused */
};

/* 1 when the QA_PIXEL word v is masked by q (its fill bit is not looked at). */
int mem_kern_qa_masked(unsigned v, const struct mem_kern_qa *q);

/*
 * The same mask as mem_kern_cloudmask_f32 (strips, halo, dilation, scratch)
 * from a QA_PIXEL band: 1 where mem_kern_qa_masked, 0 where not, NaN where
 * the input is nodata, NaN, not a 16-bit integer, or has its fill bit set.
 */
void mem_kern_qamask_f32(const float *in, float *out, int w, int in_rows, int top, int rows,
    const struct mem_kern_qa *q, int has_nodata, float nodata, int dilate, unsigned char *scratch);

/* Change: out = after - before (NaN where either is NaN). */
void mem_kern_diff_f32(const float *after, const float *before, float *out, size_t n);

/*
 * Change mask of a difference: 1 where d <= t (t < 0, a loss) or d >= t
 * (t > 0, a gain), 0 elsewhere, NaN where d is NaN.
 */
void mem_kern_threshold_f32(const float *d, float *out, size_t n, double t);

/*
 * The values of one zone, gathered from strips (zonal.c): v holds n of
 * them; more, other threads' values merged in, each a zone of its own
 * (NULL: none).  Free with mem_kern_zone_free.
 */
struct mem_kern_zone {
	float *v;
	size_t n, cap;
	struct mem_kern_zone *more;
};

/*
 * Appends v[i] to zone ids[i] - 1 for every pixel whose id is 1..nzones
 * and whose value is not NaN.  Returns 0, or -1 when out of memory.
 */
int mem_kern_zonal_add(struct mem_kern_zone *z, size_t nzones, const int *ids, const float *v,
    size_t n);
/*
 * Moves src's values into dst (src is left empty): its buffer becomes
 * dst's when dst is empty, else it is chained to dst, never copied.
 * Returns 0, or -1 when out of memory.
 */
int mem_kern_zonal_merge(struct mem_kern_zone *dst, struct mem_kern_zone *src);
/* The values z holds, its chain included. */
size_t mem_kern_zone_count(const struct mem_kern_zone *z);
/* Frees z's values and chain and leaves it empty. */
void mem_kern_zone_free(struct mem_kern_zone *z);

struct mem_kern_zonal_stats {
	size_t count;
	double mean, std, min, max; /* std: population (divided by count) */
	double pct[16];
};

/*
 * Statistics of n values (sorted in place): an exact mean (compensated
 * sum over the sorted values), the population standard deviation in two
 * passes, and percentiles with linear interpolation between the closest
 * ranks (numpy's default: rank p/100 * (n - 1)).  n = 0 gives count 0 and
 * NaN elsewhere.
 */
void mem_kern_zonal_stats(float *v, size_t n, const double *pct, int npct,
    struct mem_kern_zonal_stats *out);
/*
 * The same statistics of a zone's values, its chain included; the sort
 * reads the chain as it makes its keys, so merged values are never copied
 * twice.  z is left holding its values sorted in z->v, with no chain.
 * Returns 0, or -1 when out of memory (z unchanged).
 */
int mem_kern_zonal_stats_zone(struct mem_kern_zone *z, const double *pct, int npct,
    struct mem_kern_zonal_stats *out);

/* --- a per-pixel classifier (classify.c) ----------------------------------- */

enum mem_kern_layer_type { MEM_KERN_DENSE, MEM_KERN_CONV3 };
enum mem_kern_act { MEM_KERN_LINEAR, MEM_KERN_RELU, MEM_KERN_SOFTMAX };

/* The class written where an input is nodata. */
#define MEM_KERN_CLASS_NODATA 255

/*
 * One layer: dense, w[k * nin + i]; a 3x3 convolution ("same", zero
 * padding), w[((k * nin + i) * 3 + ky) * 3 + kx] with ky, kx 0..2 for the
 * rows and columns above/left (0) to below/right (2); b[nout].
 */
struct mem_kern_layer {
	int type, act;
	int nin, nout;
	float *w, *b;
};

/*
 * The network: nbands inputs, normalised as (value - mean) / std, then the
 * layers in order; the class is the index of the largest last output.
 */
struct mem_kern_model {
	int nbands;
	double *mean, *std;
	int nlayers;
	struct mem_kern_layer *layer;
	int nclasses;
};

/* Rows of context a strip needs above and below: one per convolution. */
int mem_kern_model_halo(const struct mem_kern_model *m);
/* The widest map of the network (inputs included). */
int mem_kern_model_maxwidth(const struct mem_kern_model *m);

/*
 * Runs the network on each pixel of rows [top, top + rows) of in_rows rows
 * of w pixels: in[i] is band i (reflectance, NaN for nodata), with the
 * rows above and below as halo, as for mem_kern_cloudmask_f32.  cls gets
 * the class index (MEM_KERN_CLASS_NODATA where an input of the pixel is
 * NaN); prob, when not NULL, nclasses planes of w * rows: the last layer's
 * outputs (probabilities after a softmax), NaN where nodata.  A nodata
 * band of a neighbour reads as the band's mean, and every layer's outputs
 * are 0 at a pixel with a nodata band, as beyond the image's edge (zero
 * padding): so a tile read with its neighbours, where a missing neighbour
 * is nodata, gives the whole image's classes for any number of
 * convolutions.  Returns 0, or -1 when out of memory.
 */
int mem_kern_classify_f32(const struct mem_kern_model *m, const float *const *in, int w,
    int in_rows, int top, int rows, float *cls, float *prob);

struct mem_kern_train_opts {
	int epochs, batch;
	double lr, l2;		/* Adam's step size; L2 penalty on the weights */
	unsigned long long seed;
};

/*
 * Fits m's weights (its shapes set, its memory allocated) to n samples:
 * x[n][fan_in of layer 0] normalised inputs (for a first 3x3 convolution
 * the patch, band-major then row then column, zero beyond the image),
 * y[n] class indices.  Hidden layers must be ReLU and only layer 0 a
 * convolution; the last is softmax, trained on cross-entropy by mini-batch
 * Adam.  Deterministic for a seed.  *loss gets the last epoch's mean loss.
 * Returns 0, or -1 when out of memory.
 */
int mem_kern_train(struct mem_kern_model *m, const float *x, const int *y, size_t n,
    const struct mem_kern_train_opts *o, double *loss);

/* The fraction of n samples (as for mem_kern_train) given their class y. */
double mem_kern_accuracy(const struct mem_kern_model *m, const float *x, const int *y, size_t n);

/* 1 when a CUDA device can run the kernels (always 0 in a CPU-only build). */
int mem_kern_cuda_available(void);
/* How many CUDA devices there are (0 in a CPU-only build). */
int mem_kern_cuda_count(void);
/*
 * Makes device dev (0 to count - 1) the one every thread's kernels run on
 * from now on (--device cuda:N).  Returns 0, or -1 when there is no such
 * device.
 */
int mem_kern_cuda_select(int dev);

/*
 * The same NDVI on the GPU: copies in, computes, copies out, in batches
 * with copies overlapped with compute.  Returns 0, or -1 when the device
 * failed (the caller then uses the CPU).
 */
int mem_kern_ndvi_cuda(const float *red, const float *nir, float *out, size_t n,
    const struct mem_kern_ndvi_params *p);

/*
 * --- the CUDA side (src/kern/cuda, configure --enable-cuda) ---------------------
 *
 * Each *_cuda function computes what the CPU kernel of the same name does,
 * on the GPU: the same arithmetic in the same order (double, one rounding
 * to float, no fused multiply-add), so masks, classes and thresholds are
 * the same bits and float results the same to the test's tolerance (see
 * tests/unit/test-cuda.c).  Each returns 0, or -1 when there is no device
 * or it failed: the caller then runs the CPU kernel.  In a build without
 * CUDA they are stubs that return -1 (nocuda.c), so callers need no #ifdef.
 * HAVE_CUDA is defined in the builds where they are real.
 */

/* Host memory the GPU copies by DMA (cudaHostAlloc; malloc without a GPU). */
void *mem_kern_cuda_host_alloc(size_t bytes);
void mem_kern_cuda_host_free(void *p);
/* Frees the calling thread's streams and device buffers (kept between calls). */
void mem_kern_cuda_release(void);
/*
 * The device's memory-bound limits in GB/s, for the benchmarks: pinned host
 * to device, device to host, and device to device (read + write) copies.
 */
int mem_kern_cuda_copy_bw(size_t bytes, double *h2d, double *d2h, double *d2d);

int mem_kern_evi_cuda(const float *nir, const float *red, const float *blue, float *out, size_t n,
    const struct mem_kern_band b[3]);
int mem_kern_savi_cuda(const float *nir, const float *red, float *out, size_t n,
    const struct mem_kern_band b[2], double L);
int mem_kern_reflectance_cuda(const float *in, float *out, size_t n, const struct mem_kern_band *b);
int mem_kern_apply_mask_cuda(float *out, const float *mask, size_t n);
/* As mem_kern_cloudmask_f32, without the host scratch. */
int mem_kern_cloudmask_cuda(const float *in, float *out, int w, int in_rows, int top, int rows,
    unsigned long long classes, int has_nodata, float nodata, int dilate);
int mem_kern_diff_cuda(const float *after, const float *before, float *out, size_t n);
int mem_kern_threshold_cuda(const float *d, float *out, size_t n, double t);
int mem_kern_classify_cuda(const struct mem_kern_model *m, const float *const *in, int w,
    int in_rows, int top, int rows, float *cls, float *prob);

/*
 * Running moments of each zone, for the GPU: count, sum, sum of squares,
 * min and max of the non-NaN values whose id is 1..nzones.  Accumulates
 * into acc (start it with mem_kern_zonal_acc_init), so strips add up.
 * The exact statistics (percentiles, compensated mean) need every value
 * and stay on the CPU (mem_kern_zonal_add / mem_kern_zonal_stats).
 */
struct mem_kern_zonal_acc {
	unsigned long long count;
	double sum, sumsq;
	float min, max;
};
void mem_kern_zonal_acc_init(struct mem_kern_zonal_acc *acc, size_t nzones);
void mem_kern_zonal_moments_f32(struct mem_kern_zonal_acc *acc, size_t nzones, const int *ids,
    const float *v, size_t n);
int mem_kern_zonal_moments_cuda(struct mem_kern_zonal_acc *acc, size_t nzones, const int *ids,
    const float *v, size_t n);

#ifdef __cplusplus
}
#endif

#endif
