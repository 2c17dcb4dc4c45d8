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

/* 1 when a CUDA device can run the kernels (always 0 in a CPU-only build). */
int mem_kern_cuda_available(void);

/*
 * The same NDVI on the GPU: copies in, computes, copies out, in batches
 * with copies overlapped with compute.  Returns 0, or -1 when the device
 * failed (the caller then uses the CPU).
 */
int mem_kern_ndvi_cuda(const float *red, const float *nir, float *out, size_t n,
    const struct mem_kern_ndvi_params *p);

#ifdef __cplusplus
}
#endif

#endif
