/*
 * ctx.cu - the CUDA context of each host thread, pinned host memory, and
 * whether there is a device at all.
 *
 * Any CUDA error makes an entry point return -1 and the caller run the CPU
 * kernel instead, so a build with --enable-cuda still runs on machines
 * without a GPU or driver (cudaGetDeviceCount then fails: 35 with no
 * driver, 100 with a driver but no device).
 */
#include <cuda_runtime.h>
#include <stdlib.h>
#include <string.h>

#include "cuda.cuh"

static thread_local struct mem_cuda_ctx *ctx;
static thread_local int ctx_failed;
static int device;	/* the device every thread's context is made on */

int
mem_cuda_check(cudaError_t e)
{
	if (e != cudaSuccess) {
		cudaGetLastError();
		return -1;
	}
	return 0;
}

extern "C" int
mem_kern_cuda_available(void)
{
	static int avail = -1;
	int n = 0;

	if (avail >= 0)
		return avail;
	if (cudaGetDeviceCount(&n) != cudaSuccess) {
		cudaGetLastError();
		n = 0;
	}
	avail = n > 0;
	return avail;
}

extern "C" int
mem_kern_cuda_count(void)
{
	int n = 0;

	if (!mem_kern_cuda_available() || cudaGetDeviceCount(&n) != cudaSuccess) {
		cudaGetLastError();
		return 0;
	}
	return n;
}

extern "C" int
mem_kern_cuda_select(int dev)
{
	if (dev < 0 || dev >= mem_kern_cuda_count())
		return -1;
	device = dev;
	return mem_cuda_check(cudaSetDevice(dev));
}

struct mem_cuda_ctx *
mem_cuda_ctx(void)
{
	struct mem_cuda_ctx *c;

	if (ctx || ctx_failed)
		return ctx;
	if (!mem_kern_cuda_available()) {
		ctx_failed = 1;
		return NULL;
	}
	/* the current device is per host thread: each worker thread sets it */
	if (cudaSetDevice(device) != cudaSuccess) {
		cudaGetLastError();
		ctx_failed = 1;
		return NULL;
	}
	c = (struct mem_cuda_ctx *)calloc(1, sizeof *c);
	if (c == NULL)
		return NULL;
	for (int s = 0; s < MEM_CUDA_NSTREAMS; s++)
		if (cudaStreamCreateWithFlags(&c->st[s], cudaStreamNonBlocking) != cudaSuccess) {
			cudaGetLastError();
			for (int k = 0; k < s; k++)
				cudaStreamDestroy(c->st[k]);
			free(c);
			ctx_failed = 1;
			return NULL;
		}
	ctx = c;
	return c;
}

static void *
grow(void **p, size_t *cap, size_t bytes)
{
	if (*cap >= bytes && *p)
		return *p;
	if (*p)
		cudaFree(*p);
	*p = NULL;
	*cap = 0;
	/* a little more than asked, so that a slightly larger strip does not reallocate */
	bytes += bytes / 8;
	if (cudaMalloc(p, bytes) != cudaSuccess) {
		cudaGetLastError();
		*p = NULL;
		return NULL;
	}
	*cap = bytes;
	return *p;
}

void *
mem_cuda_batch_buf(struct mem_cuda_ctx *c, int s, size_t bytes)
{
	/* the stream may still be reading the old buffer */
	if (c->cap[s] < bytes && c->buf[s] && cudaStreamSynchronize(c->st[s]) != cudaSuccess)
		return NULL;
	return grow(&c->buf[s], &c->cap[s], bytes);
}

void *
mem_cuda_big(struct mem_cuda_ctx *c, int k, size_t bytes)
{
	if (c->bigcap[k] < bytes && c->big[k] && cudaDeviceSynchronize() != cudaSuccess)
		return NULL;
	return grow(&c->big[k], &c->bigcap[k], bytes);
}

extern "C" void
mem_kern_cuda_release(void)
{
	struct mem_cuda_ctx *c = ctx;

	if (c == NULL)
		return;
	for (int s = 0; s < MEM_CUDA_NSTREAMS; s++) {
		cudaStreamSynchronize(c->st[s]);
		cudaStreamDestroy(c->st[s]);
		if (c->buf[s])
			cudaFree(c->buf[s]);
	}
	for (int k = 0; k < 4; k++)
		if (c->big[k])
			cudaFree(c->big[k]);
	cudaGetLastError();
	free(c);
	ctx = NULL;
}

/*
 * Pinned memory is page-locked: the device copies it by DMA while the
 * kernels run.  The allocation is recorded in a small header so that
 * mem_kern_cuda_host_free knows which of the two allocators made it.
 */
#define HOST_HDR 64

extern "C" void *
mem_kern_cuda_host_alloc(size_t bytes)
{
	unsigned char *p = NULL;

	if (mem_kern_cuda_available() &&
	    cudaHostAlloc((void **)&p, bytes + HOST_HDR, cudaHostAllocPortable) == cudaSuccess) {
		p[0] = 1;
		return p + HOST_HDR;
	}
	cudaGetLastError();
	p = (unsigned char *)malloc(bytes + HOST_HDR);
	if (p == NULL)
		return NULL;
	p[0] = 0;
	return p + HOST_HDR;
}

extern "C" void
mem_kern_cuda_host_free(void *q)
{
	unsigned char *p = (unsigned char *)q;

	if (p == NULL)
		return;
	p -= HOST_HDR;
	if (p[0] == 1) {
		cudaFreeHost(p);
		cudaGetLastError();
	} else
		free(p);
}

/*
 * The memory-bound limits of the device, for bench/infer: pinned host to
 * device, device to host, and device to device copies of bytes, best of a
 * few, in GB/s (a device-to-device copy reads and writes: 2 * bytes moved).
 */
extern "C" int
mem_kern_cuda_copy_bw(size_t bytes, double *h2d, double *d2h, double *d2d)
{
	void *h = NULL, *a = NULL, *b = NULL;
	cudaEvent_t e0 = NULL, e1 = NULL;
	int rc = -1;

	*h2d = *d2h = *d2d = 0;
	if (!mem_kern_cuda_available() || cudaSetDevice(device) != cudaSuccess)
		return -1;
	if (cudaHostAlloc(&h, bytes, cudaHostAllocDefault) != cudaSuccess ||
	    cudaMalloc(&a, bytes) != cudaSuccess || cudaMalloc(&b, bytes) != cudaSuccess ||
	    cudaEventCreate(&e0) != cudaSuccess || cudaEventCreate(&e1) != cudaSuccess)
		goto out;
	memset(h, 1, bytes);
	for (int k = 0; k < 3; k++) {
		for (int rep = 0; rep < 4; rep++) {
			float ms = 0;
			double gb;

			cudaEventRecord(e0, 0);
			if (k == 0)
				cudaMemcpyAsync(a, h, bytes, cudaMemcpyHostToDevice, 0);
			else if (k == 1)
				cudaMemcpyAsync(h, a, bytes, cudaMemcpyDeviceToHost, 0);
			else
				cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, 0);
			cudaEventRecord(e1, 0);
			if (cudaEventSynchronize(e1) != cudaSuccess ||
			    cudaEventElapsedTime(&ms, e0, e1) != cudaSuccess)
				goto out;
			gb = (k == 2 ? 2.0 : 1.0) * bytes / (ms * 1e-3) / 1e9;
			double *dst = k == 0 ? h2d : k == 1 ? d2h : d2d;
			if (rep > 0 && gb > *dst)	/* the first is a warm-up */
				*dst = gb;
		}
	}
	rc = 0;
out:
	if (e0)
		cudaEventDestroy(e0);
	if (e1)
		cudaEventDestroy(e1);
	if (a)
		cudaFree(a);
	if (b)
		cudaFree(b);
	if (h)
		cudaFreeHost(h);
	cudaGetLastError();
	return rc;
}
