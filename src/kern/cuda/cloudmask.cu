/*
 * cloudmask.cu - the cloud mask with dilation on a CUDA device, the same
 * three passes as cloudmask.c: classes to bytes, the row window, then the
 * column window and nodata.  The strip comes with its halo rows, as on
 * the CPU, so strips join without seams.  Exact: the same mask bits.
 */
#include <math.h>

#include "cuda.cuh"

#define NANF __int_as_float(0x7fc00000)

__global__ static void
classes_kernel(const float *__restrict__ in, unsigned char *__restrict__ m, size_t n,
    unsigned long long classes)
{
	MEM_CUDA_FOR(i, n) {
		float v = in[i];
		bool inside = v == v && v >= 0 && v < 64;
		int k = inside ? (int)v : 0;

		m[i] = inside && (float)k == v && (classes >> k & 1ULL);
	}
}

__global__ static void
rows_kernel(const unsigned char *__restrict__ m, unsigned char *__restrict__ h, int w, int nrows,
    int dilate)
{
	MEM_CUDA_FOR(i, (size_t)w * nrows) {
		int x = (int)(i % w);
		size_t row = i - x;
		int x0 = x - dilate < 0 ? 0 : x - dilate;
		int x1 = x + dilate >= w ? w - 1 : x + dilate;
		unsigned char any = 0;

		for (int k = x0; k <= x1; k++)
			any |= m[row + k];
		h[i] = any;
	}
}

__global__ static void
cols_kernel(const float *__restrict__ in, const unsigned char *__restrict__ h,
    float *__restrict__ out, int w, int in_rows, int top, int rows, int dilate, int has_nodata,
    float nodata)
{
	MEM_CUDA_FOR(i, (size_t)w * rows) {
		int x = (int)(i % w), y = (int)(i / w), yi = top + y;
		int y0 = yi - dilate < 0 ? 0 : yi - dilate;
		int y1 = yi + dilate >= in_rows ? in_rows - 1 : yi + dilate;
		float src = in[(size_t)yi * w + x], o = 0;

		for (int k = y0; k <= y1; k++)
			o = h[(size_t)k * w + x] ? 1.0f : o;
		out[i] = (src != src) | (has_nodata & (src == nodata)) ? NANF : o;
	}
}

extern "C" int
mem_kern_cloudmask_cuda(const float *in, float *out, int w, int in_rows, int top, int rows,
    unsigned long long classes, int has_nodata, float nodata, int dilate)
{
	struct mem_cuda_ctx *c = mem_cuda_ctx();
	size_t np = (size_t)w * in_rows, no = (size_t)w * rows;
	float *din, *dout;
	unsigned char *m, *h;
	cudaStream_t st;

	if (c == NULL || dilate < 0)
		return -1;
	st = c->st[0];
	din = (float *)mem_cuda_big(c, 0, np * sizeof(float));
	dout = (float *)mem_cuda_big(c, 1, no * sizeof(float));
	m = (unsigned char *)mem_cuda_big(c, 2, 2 * np);
	if (din == NULL || dout == NULL || m == NULL)
		return -1;
	h = dilate > 0 ? m + np : m;
	if (cudaMemcpyAsync(din, in, np * sizeof(float), cudaMemcpyHostToDevice, st) != cudaSuccess)
		return mem_cuda_check(cudaGetLastError());
	classes_kernel<<<mem_cuda_blocks(np), MEM_CUDA_THREADS, 0, st>>>(din, m, np, classes);
	if (dilate > 0)
		rows_kernel<<<mem_cuda_blocks(np), MEM_CUDA_THREADS, 0, st>>>(m, h, w, in_rows, dilate);
	cols_kernel<<<mem_cuda_blocks(no), MEM_CUDA_THREADS, 0, st>>>(din, h, dout, w, in_rows, top,
	    rows, dilate, has_nodata, nodata);
	if (cudaMemcpyAsync(out, dout, no * sizeof(float), cudaMemcpyDeviceToHost, st) != cudaSuccess)
		return mem_cuda_check(cudaGetLastError());
	if (mem_cuda_check(cudaStreamSynchronize(st)) < 0)
		return -1;
	return mem_cuda_check(cudaGetLastError());
}
