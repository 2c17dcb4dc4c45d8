/*
 * zonal.cu - per-zone count, sum, sum of squares, min and max on a CUDA
 * device.  Each block accumulates in shared memory when the zones fit
 * (SHARED_ZONES), then adds its partial results to the totals with atomic
 * operations; with more zones the pixels go straight to the totals.
 *
 * Counts, minima and maxima are exact.  Sums are double and added in an
 * order that depends on the scheduling, so they differ from the CPU's in
 * the last bits (relative 1e-12 for the test's sizes).  Exact percentiles
 * and the compensated mean of mem-infer's zonal stage stay on the CPU: they
 * need every value of a zone (mem_kern_zonal_add/stats).
 */
#include <math.h>

#include "cuda.cuh"

#define SHARED_ZONES 512

__device__ static inline void
atomic_min_f(float *a, float v)
{
	if (v >= 0)
		atomicMin((int *)a, __float_as_int(v));
	else
		atomicMax((unsigned *)a, __float_as_uint(v));
}

__device__ static inline void
atomic_max_f(float *a, float v)
{
	if (v >= 0)
		atomicMax((int *)a, __float_as_int(v));
	else
		atomicMin((unsigned *)a, __float_as_uint(v));
}

__global__ static void
zonal_global(const int *__restrict__ ids, const float *__restrict__ v, size_t n, int nz,
    mem_kern_zonal_acc *acc)
{
	MEM_CUDA_FOR(i, n) {
		int z = ids[i];
		float x = v[i];

		if (z <= 0 || z > nz || x != x)
			continue;
		x = x == 0 ? 0.0f : x;	/* -0 would be the smallest of the integer orders */
		mem_kern_zonal_acc *a = &acc[z - 1];
		atomicAdd(&a->count, 1ULL);
		atomicAdd(&a->sum, (double)x);
		atomicAdd(&a->sumsq, (double)x * x);
		atomic_min_f(&a->min, x);
		atomic_max_f(&a->max, x);
	}
}

__global__ static void
zonal_shared(const int *__restrict__ ids, const float *__restrict__ v, size_t n, int nz,
    mem_kern_zonal_acc *acc)
{
	__shared__ unsigned long long cnt[SHARED_ZONES];
	__shared__ double sum[SHARED_ZONES], ss[SHARED_ZONES];
	__shared__ float mn[SHARED_ZONES], mx[SHARED_ZONES];

	for (int z = threadIdx.x; z < nz; z += blockDim.x) {
		cnt[z] = 0;
		sum[z] = ss[z] = 0;
		mn[z] = INFINITY;
		mx[z] = -INFINITY;
	}
	__syncthreads();
	MEM_CUDA_FOR(i, n) {
		int z = ids[i];
		float x = v[i];

		if (z <= 0 || z > nz || x != x)
			continue;
		x = x == 0 ? 0.0f : x;	/* -0 would be the smallest of the integer orders */
		z--;
		atomicAdd(&cnt[z], 1ULL);
		atomicAdd(&sum[z], (double)x);
		atomicAdd(&ss[z], (double)x * x);
		atomic_min_f(&mn[z], x);
		atomic_max_f(&mx[z], x);
	}
	__syncthreads();
	for (int z = threadIdx.x; z < nz; z += blockDim.x) {
		if (cnt[z] == 0)
			continue;
		atomicAdd(&acc[z].count, cnt[z]);
		atomicAdd(&acc[z].sum, sum[z]);
		atomicAdd(&acc[z].sumsq, ss[z]);
		atomic_min_f(&acc[z].min, mn[z]);
		atomic_max_f(&acc[z].max, mx[z]);
	}
}

extern "C" int
mem_kern_zonal_moments_cuda(struct mem_kern_zonal_acc *acc, size_t nzones, const int *ids,
    const float *v, size_t n)
{
	struct mem_cuda_ctx *c = mem_cuda_ctx();
	const float *in[2] = { (const float *)ids, v };
	mem_kern_zonal_acc *dacc;
	int rc;

	if (c == NULL || nzones > 0x7fffffff)
		return -1;
	if (nzones == 0)
		return 0;
	dacc = (mem_kern_zonal_acc *)mem_cuda_big(c, 0, nzones * sizeof *acc);
	if (dacc == NULL)
		return -1;
	if (cudaMemcpyAsync(dacc, acc, nzones * sizeof *acc, cudaMemcpyHostToDevice, c->st[0]) !=
	    cudaSuccess || cudaStreamSynchronize(c->st[0]) != cudaSuccess)
		return mem_cuda_check(cudaGetLastError());
	/* the batches only read: the totals come back once at the end */
	rc = mem_cuda_batches(2, in, 0, NULL, n,
	    [&](cudaStream_t st, const float *const *d, float *const *o, size_t len) {
		    /* fewer, fuller blocks: each flushes its zones once */
		    int blocks = mem_cuda_blocks(len) / 8 + 1;

		    if (nzones <= SHARED_ZONES)
			    zonal_shared<<<blocks, MEM_CUDA_THREADS, 0, st>>>((const int *)d[0], d[1], len,
				(int)nzones, dacc);
		    else
			    zonal_global<<<mem_cuda_blocks(len), MEM_CUDA_THREADS, 0, st>>>(
				(const int *)d[0], d[1], len, (int)nzones, dacc);
	    });
	if (rc < 0)
		return -1;
	if (cudaMemcpy(acc, dacc, nzones * sizeof *acc, cudaMemcpyDeviceToHost) != cudaSuccess)
		return mem_cuda_check(cudaGetLastError());
	return 0;
}
