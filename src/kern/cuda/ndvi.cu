/*
 * ndvi.cu - the NDVI kernel on a CUDA device.
 *
 * Batches alternate between two streams.  The host buffers are the
 * caller's pageable memory, so copies do not yet overlap compute; pinned
 * staging buffers would let them (issue 5).  Any CUDA error makes
 * the entry point return -1 and the caller falls back to the CPU kernel, so
 * a build with --enable-cuda still runs on machines without a GPU.
 */
#include <cuda_runtime.h>
#include <math.h>
#include <string.h>

#include "../kern.h"

__global__ static void
ndvi_kernel(const float *__restrict__ red, const float *__restrict__ nir, float *__restrict__ out,
    size_t n, mem_kern_ndvi_params p)
{
	size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
	size_t stride = (size_t)gridDim.x * blockDim.x;

	for (; i < n; i += stride) {
		float rv = red[i], nv = nir[i];
		double r = rv * p.red_scale + p.red_offset;
		double v = nv * p.nir_scale + p.nir_offset;
		double den = v + r;
		bool bad = (p.red_has_nodata && rv == p.red_nodata) ||
		    (p.nir_has_nodata && nv == p.nir_nodata) || den == 0.0;

		out[i] = bad ? nanf("") : (float)((v - r) / den);
	}
}

extern "C" int
mem_kern_cuda_available(void)
{
	int n = 0;

	if (cudaGetDeviceCount(&n) != cudaSuccess) {
		cudaGetLastError();
		return 0;
	}
	return n > 0;
}

extern "C" int
mem_kern_ndvi_cuda(const float *red, const float *nir, float *out, size_t n,
    const struct mem_kern_ndvi_params *p)
{
	const size_t batch = (size_t)1 << 22;	/* 4 Mi pixels, 48 MiB per set */
	cudaStream_t st[2] = { 0, 0 };
	float *d[2][3] = { { 0 } };
	int rc = -1, s, k;
	size_t off;

	if (!mem_kern_cuda_available())
		return -1;
	for (s = 0; s < 2; s++) {
		if (cudaStreamCreate(&st[s]) != cudaSuccess)
			goto out;
		for (k = 0; k < 3; k++)
			if (cudaMalloc(&d[s][k], batch * sizeof(float)) != cudaSuccess)
				goto out;
	}
	for (off = 0, s = 0; off < n; off += batch, s ^= 1) {
		size_t len = n - off < batch ? n - off : batch;
		int threads = 256, blocks = (int)((len + threads - 1) / threads);

		if (blocks > 65535 * 4)
			blocks = 65535 * 4;
		if (cudaMemcpyAsync(d[s][0], red + off, len * sizeof(float), cudaMemcpyHostToDevice,
		    st[s]) != cudaSuccess ||
		    cudaMemcpyAsync(d[s][1], nir + off, len * sizeof(float), cudaMemcpyHostToDevice,
		    st[s]) != cudaSuccess)
			goto out;
		ndvi_kernel<<<blocks, threads, 0, st[s]>>>(d[s][0], d[s][1], d[s][2], len, *p);
		if (cudaMemcpyAsync(out + off, d[s][2], len * sizeof(float), cudaMemcpyDeviceToHost,
		    st[s]) != cudaSuccess)
			goto out;
	}
	if (cudaDeviceSynchronize() != cudaSuccess || cudaGetLastError() != cudaSuccess)
		goto out;
	rc = 0;
out:
	for (s = 0; s < 2; s++) {
		for (k = 0; k < 3; k++)
			if (d[s][k])
				cudaFree(d[s][k]);
		if (st[s])
			cudaStreamDestroy(st[s]);
	}
	cudaGetLastError();
	return rc;
}
