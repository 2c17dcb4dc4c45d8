/*
 * cuda.cuh - what the CUDA kernels share: a context per host thread with
 * two streams and device buffers that grow and are kept from call to call,
 * and a helper that runs a per-pixel kernel over arrays in batches.
 *
 * Why per host thread: mem-infer runs one strip per OpenMP thread, and each
 * thread's copies and kernels then queue on its own streams, so several
 * strips are in flight on the device at once.  A batch's copy in, kernel
 * and copy out go to one stream and batches alternate between the two, so
 * the copies of one overlap the kernel of the other.  They only overlap
 * when the host memory is pinned: mem-infer allocates its strip buffers
 * with mem_kern_cuda_host_alloc (cudaHostAlloc) when it runs on the GPU.
 *
 * The kernels are built with -fmad=false (Makefile.am): nvcc would
 * otherwise contract a * b + c into one fused multiply-add, rounded once,
 * where the CPU rounds twice, and the results would differ in the last bit.
 */
#ifndef MEM_KERN_CUDA_CUH
#define MEM_KERN_CUDA_CUH

#include <cuda_runtime.h>
#include <stddef.h>

#include "../kern.h"

#define MEM_CUDA_NSTREAMS 2
#define MEM_CUDA_BATCH ((size_t)1 << 21) /* pixels per batch: 8 MiB a plane */
#define MEM_CUDA_THREADS 256

struct mem_cuda_ctx {
	cudaStream_t st[MEM_CUDA_NSTREAMS];
	void *buf[MEM_CUDA_NSTREAMS];	/* a batch's planes, per stream */
	size_t cap[MEM_CUDA_NSTREAMS];
	void *big[4];			/* whole strips: cloudmask, classify, zonal */
	size_t bigcap[4];
};

/* The calling thread's context, made on first use; NULL when the device failed. */
struct mem_cuda_ctx *mem_cuda_ctx(void);
/* A device buffer of at least bytes: stream s's batch buffer or strip buffer k. */
void *mem_cuda_batch_buf(struct mem_cuda_ctx *c, int s, size_t bytes);
void *mem_cuda_big(struct mem_cuda_ctx *c, int k, size_t bytes);
/* 0 when every call since the last check succeeded; clears the error. */
int mem_cuda_check(cudaError_t e);

static inline int
mem_cuda_blocks(size_t n)
{
	size_t b = (n + MEM_CUDA_THREADS - 1) / MEM_CUDA_THREADS;

	return b > 65535 * 16 ? 65535 * 16 : b == 0 ? 1 : (int)b;
}

#define MEM_CUDA_FOR(i, n)                                                        \
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); \
	     i += (size_t)gridDim.x * blockDim.x)

/*
 * Runs launch(stream, din, dout, len) over n pixels in batches: nin input
 * arrays copied in, nout output arrays copied out (an output may also be
 * an input: list it in both, it is copied in and out).  Returns 0, or -1
 * when the device failed.
 */
template <class F>
static int
mem_cuda_batches(int nin, const float *const *in, int nout, float *const *out, size_t n, F launch)
{
	struct mem_cuda_ctx *c = mem_cuda_ctx();
	size_t batch = MEM_CUDA_BATCH;
	int s = 0;

	if (c == NULL || nin > 64 || nout > 64)
		return -1;
	for (size_t off = 0; off < n; off += batch, s = (s + 1) % MEM_CUDA_NSTREAMS) {
		size_t len = n - off < batch ? n - off : batch;
		float *b = (float *)mem_cuda_batch_buf(c, s, (size_t)(nin + nout) * batch * sizeof(float));
		const float *din[64];
		float *dout[64];

		if (b == NULL)
			return -1;
		for (int k = 0; k < nin; k++) {
			din[k] = b + (size_t)k * batch;
			if (cudaMemcpyAsync((void *)din[k], in[k] + off, len * sizeof(float),
			    cudaMemcpyHostToDevice, c->st[s]) != cudaSuccess)
				return mem_cuda_check(cudaGetLastError()), -1;
		}
		for (int k = 0; k < nout; k++) {
			dout[k] = b + (size_t)(nin + k) * batch;
			/* an output that is also an input works in place on its copy */
			for (int j = 0; j < nin; j++)
				if (in[j] == out[k])
					dout[k] = (float *)din[j];
		}
		launch(c->st[s], din, dout, len);
		for (int k = 0; k < nout; k++)
			if (cudaMemcpyAsync(out[k] + off, dout[k], len * sizeof(float),
			    cudaMemcpyDeviceToHost, c->st[s]) != cudaSuccess)
				return mem_cuda_check(cudaGetLastError()), -1;
	}
	for (s = 0; s < MEM_CUDA_NSTREAMS; s++)
		if (mem_cuda_check(cudaStreamSynchronize(c->st[s])) < 0)
			return -1;
	return mem_cuda_check(cudaGetLastError());
}

#endif
