/*
 * nocuda.c - the CUDA entry points of a build without --enable-cuda: no
 * device, every call returns -1 and the callers run the CPU kernels.
 */
#include "config.h"

#include <stdlib.h>

#include "expr.h"
#include "kern.h"

#ifndef HAVE_CUDA
int
mem_kern_cuda_available(void)
{
	return 0;
}

int
mem_kern_cuda_count(void)
{
	return 0;
}

int
mem_kern_cuda_select(int dev)
{
	(void)dev;
	return -1;
}

void *
mem_kern_cuda_host_alloc(size_t bytes)
{
	return malloc(bytes);
}

void
mem_kern_cuda_host_free(void *p)
{
	free(p);
}

void
mem_kern_cuda_release(void)
{
}

int
mem_kern_cuda_copy_bw(size_t bytes, double *h2d, double *d2h, double *d2d)
{
	*h2d = *d2h = *d2d = 0;
	return -1;
}

int
mem_kern_ndvi_cuda(const float *red, const float *nir, float *out, size_t n,
    const struct mem_kern_ndvi_params *p)
{
	return -1;
}

int
mem_kern_evi_cuda(const float *nir, const float *red, const float *blue, float *out, size_t n,
    const struct mem_kern_band b[3])
{
	return -1;
}

int
mem_kern_savi_cuda(const float *nir, const float *red, float *out, size_t n,
    const struct mem_kern_band b[2], double L)
{
	return -1;
}

int
mem_kern_reflectance_cuda(const float *in, float *out, size_t n, const struct mem_kern_band *b)
{
	return -1;
}

int
mem_kern_apply_mask_cuda(float *out, const float *mask, size_t n)
{
	return -1;
}

int
mem_kern_cloudmask_cuda(const float *in, float *out, int w, int in_rows, int top, int rows,
    unsigned long long classes, int has_nodata, float nodata, int dilate)
{
	return -1;
}

int
mem_kern_diff_cuda(const float *after, const float *before, float *out, size_t n)
{
	return -1;
}

int
mem_kern_threshold_cuda(const float *d, float *out, size_t n, double t)
{
	return -1;
}

int
mem_kern_classify_cuda(const struct mem_kern_model *m, const float *const *in, int w,
    int in_rows, int top, int rows, float *cls, float *prob)
{
	return -1;
}

int
mem_kern_zonal_moments_cuda(struct mem_kern_zonal_acc *acc, size_t nzones, const int *ids,
    const float *v, size_t n)
{
	return -1;
}

int
mem_expr_eval_cuda(const struct mem_expr *p, const float *const *vars, float *out, size_t n)
{
	return -1;
}
#else
/* ISO C wants a translation unit to declare something */
extern int mem_kern_nocuda_unused;
#endif
