/*
 * pixel.cu - the per-pixel kernels on a CUDA device: normalized
 * differences (NDVI and its kin), EVI, SAVI, reflectance, masks, change.
 *
 * Each is the CPU kernel's expression, in the same order and precision
 * (double, one rounding to float; no fused multiply-add), so the results
 * are the same bits as on the CPU.  All are memory-bound: they run in
 * batches through mem_cuda_batches, copies overlapping compute.
 */
#include <math.h>

#include "cuda.cuh"

#define NANF __int_as_float(0x7fc00000)

__global__ static void
nd_kernel(const float *__restrict__ red, const float *__restrict__ nir, float *__restrict__ out,
    size_t n, mem_kern_ndvi_params p)
{
	const float rnd = p.red_has_nodata ? p.red_nodata : NANF;
	const float nnd = p.nir_has_nodata ? p.nir_nodata : NANF;

	MEM_CUDA_FOR(i, n) {
		float rv = red[i], nv = nir[i];
		double r = rv * p.red_scale + p.red_offset, v = nv * p.nir_scale + p.nir_offset;
		double den = v + r;
		bool bad = (rv == rnd) | (nv == nnd) | (den == 0.0);

		out[i] = bad ? NANF : (float)((v - r) / den);
	}
}

__device__ static inline double
refl(float v, const mem_kern_band &b)
{
	return v * b.scale + b.offset;
}

__device__ static inline bool
is_nodata(float v, const mem_kern_band &b)
{
	return b.has_nodata & (v == b.nodata);
}

struct band3 {
	mem_kern_band b[3];
};

__global__ static void
evi_kernel(const float *__restrict__ nir, const float *__restrict__ red,
    const float *__restrict__ blue, float *__restrict__ out, size_t n, band3 b)
{
	MEM_CUDA_FOR(i, n) {
		double v = refl(nir[i], b.b[0]), r = refl(red[i], b.b[1]), u = refl(blue[i], b.b[2]);
		double den = v + 6.0 * r - 7.5 * u + 1.0;
		bool bad = is_nodata(nir[i], b.b[0]) | is_nodata(red[i], b.b[1]) |
		    is_nodata(blue[i], b.b[2]) | (den == 0.0);

		out[i] = bad ? NANF : (float)(2.5 * (v - r) / den);
	}
}

__global__ static void
savi_kernel(const float *__restrict__ nir, const float *__restrict__ red, float *__restrict__ out,
    size_t n, band3 b, double L)
{
	MEM_CUDA_FOR(i, n) {
		double v = refl(nir[i], b.b[0]), r = refl(red[i], b.b[1]);
		double den = v + r + L;
		bool bad = is_nodata(nir[i], b.b[0]) | is_nodata(red[i], b.b[1]) | (den == 0.0);

		out[i] = bad ? NANF : (float)((1.0 + L) * (v - r) / den);
	}
}

__global__ static void
refl_kernel(const float *__restrict__ in, float *__restrict__ out, size_t n, mem_kern_band b)
{
	MEM_CUDA_FOR(i, n)
		out[i] = is_nodata(in[i], b) ? NANF : (float)refl(in[i], b);
}

__global__ static void
mask_kernel(float *out, const float *__restrict__ mask, size_t n)
{
	MEM_CUDA_FOR(i, n)
		out[i] = mask[i] != 0 ? NANF : out[i];
}

__global__ static void
diff_kernel(const float *a, const float *b, float *out, size_t n)
{
	MEM_CUDA_FOR(i, n)
		out[i] = a[i] - b[i];
}

__global__ static void
threshold_kernel(const float *__restrict__ d, float *__restrict__ out, size_t n, double t)
{
	float ft = (float)t;

	MEM_CUDA_FOR(i, n)
		out[i] = isnan(d[i]) ? NANF : (t < 0 ? d[i] <= ft : d[i] >= ft) ? 1.0f : 0.0f;
}

#define LAUNCH(len, st) <<<mem_cuda_blocks(len), MEM_CUDA_THREADS, 0, st>>>

extern "C" int
mem_kern_ndvi_cuda(const float *red, const float *nir, float *out, size_t n,
    const struct mem_kern_ndvi_params *p)
{
	const float *in[2] = { red, nir };
	mem_kern_ndvi_params q = *p;

	return mem_cuda_batches(2, in, 1, &out, n,
	    [&](cudaStream_t st, const float *const *d, float *const *o, size_t len) {
		    nd_kernel LAUNCH(len, st)(d[0], d[1], o[0], len, q);
	    });
}

extern "C" int
mem_kern_evi_cuda(const float *nir, const float *red, const float *blue, float *out, size_t n,
    const struct mem_kern_band b[3])
{
	const float *in[3] = { nir, red, blue };
	band3 q = { { b[0], b[1], b[2] } };

	return mem_cuda_batches(3, in, 1, &out, n,
	    [&](cudaStream_t st, const float *const *d, float *const *o, size_t len) {
		    evi_kernel LAUNCH(len, st)(d[0], d[1], d[2], o[0], len, q);
	    });
}

extern "C" int
mem_kern_savi_cuda(const float *nir, const float *red, float *out, size_t n,
    const struct mem_kern_band b[2], double L)
{
	const float *in[2] = { nir, red };
	band3 q = { { b[0], b[1], b[1] } };

	return mem_cuda_batches(2, in, 1, &out, n,
	    [&](cudaStream_t st, const float *const *d, float *const *o, size_t len) {
		    savi_kernel LAUNCH(len, st)(d[0], d[1], o[0], len, q, L);
	    });
}

extern "C" int
mem_kern_reflectance_cuda(const float *in, float *out, size_t n, const struct mem_kern_band *b)
{
	mem_kern_band q = *b;

	return mem_cuda_batches(1, &in, 1, &out, n,
	    [&](cudaStream_t st, const float *const *d, float *const *o, size_t len) {
		    refl_kernel LAUNCH(len, st)(d[0], o[0], len, q);
	    });
}

extern "C" int
mem_kern_apply_mask_cuda(float *out, const float *mask, size_t n)
{
	const float *in[2] = { out, mask };

	return mem_cuda_batches(2, in, 1, &out, n,
	    [&](cudaStream_t st, const float *const *d, float *const *o, size_t len) {
		    mask_kernel LAUNCH(len, st)(o[0], d[1], len);
	    });
}

extern "C" int
mem_kern_diff_cuda(const float *after, const float *before, float *out, size_t n)
{
	const float *in[2] = { after, before };

	return mem_cuda_batches(2, in, 1, &out, n,
	    [&](cudaStream_t st, const float *const *d, float *const *o, size_t len) {
		    diff_kernel LAUNCH(len, st)(d[0], d[1], o[0], len);
	    });
}

extern "C" int
mem_kern_threshold_cuda(const float *d, float *out, size_t n, double t)
{
	return mem_cuda_batches(1, &d, 1, &out, n,
	    [&](cudaStream_t st, const float *const *dd, float *const *o, size_t len) {
		    threshold_kernel LAUNCH(len, st)(dd[0], o[0], len, t);
	    });
}
